"""Issue 7, breaks 2, 3 and 5 at the domain level: bounded scopes and memos, linear wildcard
matching, pattern validation, and one id parser that never folds two strings into one scope."""

from __future__ import annotations

import random
import time

import pytest

from keyless.arm.errors import ArmError
from keyless.arm.ids import MAX_ID_SEGMENTS, MAX_PATH_LENGTH, id_segments, is_guid, parse_resource_id
from keyless.arm.resource_types import NameRule
from keyless.authority import resources
from keyless.rbac import evaluator, matching
from keyless.rbac.builtin_roles import BUILTIN_ROLES
from keyless.rbac.evaluator import (
    AuthorizationIndex,
    Permission,
    RoleAssignment,
    RoleDefinition,
    ScopeOutOfBounds,
    action_matches,
    is_at_or_below,
    normalize_scope,
    pattern_problem,
    scope_ancestors,
)

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
RG = f"{SUB}/resourceGroups/rg1"
PROD = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/prod-id"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
ALICE = "aaaaaaaa-0000-0000-0000-000000000001"
GUID = "c0ffee00-0000-0000-0000-000000000001"


def _glob_reference(pattern: str, text: str) -> bool:
    """The textbook dynamic programme for '*'-only globs, O(len(pattern) * len(text))."""
    row = [True] + [False] * len(text)
    for ch in pattern:
        if ch == "*":
            for j in range(1, len(text) + 1):
                row[j] = row[j] or row[j - 1]
        else:
            row = [False] + [row[j - 1] and text[j - 1] == ch for j in range(1, len(text) + 1)]
    return row[-1]


def _index_with(role_patterns: tuple[str, ...], scope: str) -> AuthorizationIndex:
    role = RoleDefinition(GUID, "custom", "CustomRole", "", (SUB,), (Permission(actions=role_patterns),))
    ix = AuthorizationIndex.from_records([*BUILTIN_ROLES, role])
    ix.put_assignment(RoleAssignment("a1", scope, GUID, ALICE, "ServicePrincipal"))
    return ix


# --------------------------------------------------------------------------------- break 3: matching


def test_wildcard_matching_agrees_with_the_reference_on_random_globs() -> None:
    rng = random.Random(7)
    for _ in range(4000):
        pattern = "".join(rng.choice("ab*/") for _ in range(rng.randint(1, 8)))
        text = "".join(rng.choice("ab/") for _ in range(rng.randint(0, 10)))
        assert action_matches(pattern, text) is _glob_reference(pattern, text), (pattern, text)


@pytest.mark.parametrize(
    "pattern",
    [
        "********x!",  # the role of the issue (stored before validation existed)
        "microsoft.foo/" + "*a" * 200 + "*b*",  # catastrophic for a backtracking regex
        "*" + "a*" * 250,
    ],
)
def test_wildcard_matching_is_linear_on_pathological_patterns(pattern: str) -> None:
    action = "microsoft.foo/" + "a" * 1_000_000
    started = time.perf_counter()
    for _ in range(20):
        action_matches(pattern, action)
    ix = _index_with((pattern,), RG)
    for _ in range(20):
        ix.explain(ALICE, action, RG, data_action=False)
    # A backtracking matcher takes hours on these; the linear one scans the action a few times.
    assert time.perf_counter() - started < 2.0


def test_wildcard_matching_time_grows_linearly() -> None:
    pattern = "microsoft.foo/" + "*a" * 50 + "*b*"

    def cost(n: int) -> float:
        action = "microsoft.foo/" + "a" * n
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(20):
                assert not action_matches(pattern, action)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(200_000), cost(3_200_000)
    assert large < small * 16 * 4  # 16x the input: well under 64x the time (quadratic would be 256x)


def test_builtin_patterns_are_all_valid_and_bad_ones_are_named() -> None:
    for role in BUILTIN_ROLES:
        for p in role.permissions:
            for pattern in (*p.actions, *p.not_actions, *p.data_actions, *p.not_data_actions):
                assert pattern_problem(pattern) is None, pattern
    for good in (
        "*",
        "*/read",
        "Microsoft.Compute/*",
        "Microsoft.CostManagement/*/query/*",
        "Microsoft.*/read",
    ):
        assert pattern_problem(good) is None
    for bad in (
        "********x!",
        "",
        "Microsoft.Compute/**",
        "Microsoft.Compute//read",
        "Microsoft.Compute/read/",
        " Microsoft.Compute/read",
        "Microsoft.Compute/read\n",
        "Microsoft.Compute/re ad",
        "Compute/virtualMachines/read",
        "Microsoft.Compute",
        "Microsoft..Compute/read",
        "Microsoft.Compute/" + "a" * 600,
    ):
        assert pattern_problem(bad) is not None, bad


# --------------------------------------------------------------------------------- break 2: bounds


def test_scopes_past_the_bounds_are_refused_before_any_work() -> None:
    deep = SUB + "/a/b" * 4000  # the 8,000 segments
    assert id_segments(deep) is None
    assert id_segments("/x" * (MAX_ID_SEGMENTS + 1)) is None
    assert id_segments("/" + "x" * MAX_PATH_LENGTH) is None
    assert id_segments("/x" * MAX_ID_SEGMENTS) == ["x"] * MAX_ID_SEGMENTS
    for call in (normalize_scope, scope_ancestors):
        with pytest.raises(ScopeOutOfBounds):
            call(deep)
    with pytest.raises(ScopeOutOfBounds):
        AuthorizationIndex.from_records(BUILTIN_ROLES).explain(ALICE, "x/y/read", deep, data_action=False)


def test_the_scope_memo_is_bounded_by_entries_and_characters() -> None:
    memo = matching._ScopeMemo()
    long_scope = RG + "/providers/Microsoft.Foo" + ("/t/" + "n" * 60) * 28
    for i in range(3000):
        memo.get(f"{long_scope}{i}")
        assert memo._chars <= matching._SCOPE_MEMO_CHARS
    for i in range(matching._SCOPE_MEMO_ENTRIES + 10):
        memo.get(f"{SUB}/resourceGroups/g{i}")
        assert len(memo.entries) <= matching._SCOPE_MEMO_ENTRIES


def test_the_verdict_memo_is_bounded_and_never_keeps_long_actions() -> None:
    ix = _index_with(("Microsoft.Foo/*",), RG)
    for i in range(evaluator._VERDICT_MEMO_ENTRIES // 2 + 100):
        ix.decide(ALICE, f"Microsoft.Foo/bars{i}/read", RG, data_action=False)
        assert ix._verdicts._count <= evaluator._VERDICT_MEMO_ENTRIES
    ix = _index_with(("Microsoft.Foo/*",), RG)
    long_action = "Microsoft.Foo/" + "a" * 400
    assert ix.decide(ALICE, long_action, RG, data_action=False).allowed
    assert long_action.lower() not in ix._verdicts.control


# --------------------------------------------------------------------------------- break 5: one parser


@pytest.mark.parametrize("suffix", ["\n", "\r", "\t", " ", "\x00", "\n\n"])
def test_a_trailing_character_makes_a_different_scope(suffix: str) -> None:
    assert normalize_scope(PROD + suffix) != normalize_scope(PROD)
    assert not is_at_or_below(PROD + suffix, PROD)
    ix = AuthorizationIndex.from_records(BUILTIN_ROLES, [RoleAssignment("r1", PROD, READER, ALICE, "User")])
    read = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
    assert ix.decide(ALICE, read, PROD, data_action=False).allowed
    assert not ix.decide(ALICE, read, PROD + suffix, data_action=False).allowed
    # The resource manager's parser sees the same two names.
    parsed, plain = parse_resource_id(PROD + suffix), parse_resource_id(PROD)
    assert parsed is not None and plain is not None
    assert parsed.name == "prod-id" + suffix and parsed.key != plain.key


def test_ids_match_whole_strings() -> None:
    assert is_guid(GUID) and not is_guid(GUID + "\n") and not is_guid(" " + GUID)
    rule = NameRule()
    rule.check("solo", "Microsoft.ManagedIdentity/userAssignedIdentities")
    for bad in ("solo\n", "solo\r", "so\tlo", "solo\x7f", "solo\x85", "a/b", "x" * 261):
        with pytest.raises(ArmError) as caught:
            rule.check(bad, "Microsoft.ManagedIdentity/userAssignedIdentities")
        assert caught.value.code == "InvalidResourceName"


def test_the_audience_memo_never_keeps_long_strings() -> None:
    assert resources.is_known_resource("https://myvault.vault.azure.net/")
    before = resources._is_known_resource.cache_info().currsize
    for i in range(50):
        assert not resources.is_known_resource(f"https://{'v' * 300}{i}.vault.azure.net")
    assert resources._is_known_resource.cache_info().currsize == before
    assert resources._is_known_resource.cache_info().maxsize == 4096
