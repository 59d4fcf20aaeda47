"""ABAC condition evaluation (keyless.rbac.condition_eval): every operator family, each quantifier,
the logic operators, missing and ill-typed attributes, both outcomes; the Azure docs' own examples
(conditions-format.md "Operator examples", storage-auth-abac-examples.md); the evaluator honouring
conditions; bounds and linear time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyless.arm.errors import ArmError
from keyless.authority import principals
from keyless.authority.tokens import Caller
from keyless.directory import Directory
from keyless.rbac.builtin_roles import BUILTIN_ROLES
from keyless.rbac.condition_eval import (
    BLOB_PATH,
    BLOB_TAG_KEYS,
    BLOB_TAGS,
    BLOB_VERSION_ID,
    CONTAINER_NAME,
    ENCRYPTION_SCOPE_NAME,
    IS_CURRENT_VERSION,
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTE_VALUES,
    SUB_OPERATION,
    SUB_OPERATION_BLOB_LIST,
    SUB_OPERATION_WITH_TAG_HEADERS,
    AttributeValue,
    MappingAttributes,
    attribute_key,
    blob_tag_values,
    compile_condition,
    evaluate,
    outcome,
)
from keyless.rbac.conditions import parse_condition
from keyless.rbac.evaluator import AuthorizationIndex, DenyAssignment, Permission, RoleAssignment
from keyless.rbac.service import RbacService
from keyless.store.db import Database
from tests.keyless_server import fresh_database_url

BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
READ, WRITE, ADD, DELETE = f"{BLOBS}/read", f"{BLOBS}/write", f"{BLOBS}/add/action", f"{BLOBS}/delete"
TAG_PROJECT = f"{BLOBS}/tags:Project<$key_case_sensitive$>"
# storage-auth-abac-examples.md, "Read blobs with a blob index tag".
READ_TAGGED = (
    f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR "
    f"(@Resource[{TAG_PROJECT}] StringEquals 'Cascade'))"
)
# storage-auth-abac-examples.md, "New blobs must include a blob index tag".
NEW_TAGGED = (
    f"((!(ActionMatches{{'{WRITE}'}} AND SubOperationMatches{{'Blob.Write.WithTagHeaders'}}) AND "
    f"!(ActionMatches{{'{ADD}'}} AND SubOperationMatches{{'Blob.Write.WithTagHeaders'}})) OR "
    f"(@Request[{TAG_PROJECT}] StringEquals 'Cascade'))"
)
# "Read, write, or delete blobs in named containers".
NAMED_CONTAINER = (
    f"((!(ActionMatches{{'{DELETE}'}})) AND (!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches"
    f"{{'Blob.List'}})) AND (!(ActionMatches{{'{WRITE}'}})) AND (!(ActionMatches{{'{ADD}'}}))) OR "
    f"(@Resource[{CONTAINER_NAME}] StringEquals 'ingest')"
)


def res(**values: AttributeValue) -> MappingAttributes:
    """Resource attributes named by short keys: a -> @Resource[a]."""
    return MappingAttributes(resource_values=values)


def holds(text: str, attributes: MappingAttributes | None = None, action: str = READ) -> bool:
    return evaluate(parse_condition(text), action, attributes)


# ---------------------------------------------------------------------------------------- functions


def test_action_matches_as_documented() -> None:
    assert holds(
        "ActionMatches{'Microsoft.Authorization/roleAssignments/*'}",
        None,
        "Microsoft.Authorization/roleAssignments/write",
    )
    assert not holds(
        "ActionMatches{'Microsoft.Authorization/roleDefinitions/*'}",
        None,
        "Microsoft.Authorization/roleAssignments/write",
    )
    assert holds(f"ActionMatches{{'{READ.upper()}'}}", None, READ)  # actions ignore case
    assert not holds(f"ActionMatches{{'{READ}'}}", None, WRITE)


def test_sub_operation_matches() -> None:
    listing = MappingAttributes(request_values={SUB_OPERATION: SUB_OPERATION_BLOB_LIST})
    plain = MappingAttributes()
    assert holds("SubOperationMatches{'Blob.List'}", listing)
    assert holds("SubOperationMatches{'blob.list'}", listing)
    assert not holds("SubOperationMatches{'Blob.List'}", plain)  # a Get Blob has no sub-operation
    assert holds("NOT SubOperationMatches{'Blob.List'}", plain)
    # Without attributes the sub-operation is unknown, and so is its negation.
    assert not holds("SubOperationMatches{'Blob.List'}", None)
    assert not holds("NOT SubOperationMatches{'Blob.List'}", None)
    bad = MappingAttributes(request_values={SUB_OPERATION: 7})
    assert not holds("SubOperationMatches{'Blob.List'}", bad)
    assert not holds("NOT SubOperationMatches{'Blob.List'}", bad)


def test_exists() -> None:
    version = MappingAttributes(request_values={BLOB_VERSION_ID: "2022-06-01T00:00:00.0000000Z"})
    assert holds(f"Exists @Request[{BLOB_VERSION_ID}]", version)
    assert not holds(f"Exists @Request[{BLOB_VERSION_ID}]", MappingAttributes())
    assert holds(f"NOT Exists @Request[{BLOB_VERSION_ID}]", MappingAttributes())
    assert not holds(f"NOT Exists @Request[{BLOB_VERSION_ID}]", None)  # unknown without attributes
    assert not holds(f"Exists @Resource[{BLOB_TAG_KEYS}]", res(**{BLOB_TAG_KEYS: []}))


# ---------------------------------------------------------------------------------- string operators


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("StringEquals", "Photos", True),
        ("StringEquals", "photos", False),  # case-sensitive
        ("StringEqualsIgnoreCase", "PHOTOS", True),
        ("StringNotEquals", "photos", True),
        ("StringNotEquals", "Photos", False),
        ("StringNotEqualsIgnoreCase", "photos", False),
        ("StringNotEqualsIgnoreCase", "videos", True),
        ("StringStartsWith", "Pho", True),
        ("StringStartsWith", "pho", False),
        ("StringStartsWithIgnoreCase", "pHO", True),
        ("StringNotStartsWith", "Vid", True),
        ("StringNotStartsWith", "Pho", False),
        ("StringNotStartsWithIgnoreCase", "pho", False),
        ("StringLike", "P*s", True),
        ("StringLike", "p*s", False),
        ("StringLikeIgnoreCase", "p*S", True),
        ("StringNotLike", "V*", True),
        ("StringNotLike", "P?otos", False),
        ("StringNotLikeIgnoreCase", "p?otos", False),
    ],
)
def test_string_operators(operator: str, value: str, expected: bool) -> None:
    assert (
        holds(f"@Resource[{CONTAINER_NAME}] {operator} '{value}'", res(**{CONTAINER_NAME: "Photos"}))
        is expected
    )


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a*c?", "abcd", True),  # conditions-format.md, "StringLike"
        ("A*C?", "abcd", False),
        ("a*c", "abcd", False),
        ("readonly/*", "readonly/x/y.txt", True),
        ("readonly/*", "readonly", False),
        ("*", "", True),
        ("", "", True),
        ("?", "", False),
        ("a*b*c", "abc", True),
        ("a*b*c", "acb", False),
        ("*ab*ab*", "xabyab", True),
        ("*ab*ab*", "xaby", False),
        ("a?*?c", "abc", False),
        ("a?*?c", "abxc", True),
        (r"a\*", "a*", True),
        (r"a\*", "ab", False),
        (r"\?", "?", True),
        (r"\?", "x", False),
        (r"a\b", r"a\b", True),  # any other backslash is itself
    ],
)
def test_like_wildcards_and_escapes(pattern: str, text: str, expected: bool) -> None:
    condition = f"@Resource[{BLOB_PATH}] StringLike '{pattern}'"
    assert holds(condition, res(**{BLOB_PATH: text})) is expected


def test_like_is_linear_on_hostile_input() -> None:
    text = "a" * MAX_ATTRIBUTE_CHARS
    started = time.perf_counter()
    for pattern in (
        "*" + "a?" * 2000 + "b*",  # a classic backtracking trap, and a long '?' part
        "*" + "*".join(["a"] * 2000) + "*b",  # many parts
        "*" + "?" * 3000 + "b",
    ):
        assert not holds(f"@Resource[{BLOB_PATH}] StringLike '{pattern}'", res(**{BLOB_PATH: text}))
    assert holds(f"@Resource[{BLOB_PATH}] StringLike '*{'a?' * 2000}*'", res(**{BLOB_PATH: text}))
    assert time.perf_counter() - started < 1.0


def test_one_evaluation_does_bounded_work() -> None:
    values = ["a" * MAX_ATTRIBUTE_CHARS] * MAX_ATTRIBUTE_VALUES
    patterns = ", ".join(["'*?b'"] * 900)
    started = time.perf_counter()
    held, why = outcome(
        parse_condition(f"@Resource[a] ForAnyOfAnyValues:StringNotLike {{{patterns}}}"), READ, res(a=values)
    )
    assert (held, why) == (False, "the condition could not be evaluated (too much work)")
    # The budget is per evaluation, not per comparison.
    one = "@Resource[a] ForAnyOfAnyValues:StringLike {'*?b'}"
    many = " OR ".join([one] * 100)
    held, why = outcome(parse_condition(many), READ, res(a=values[:100]))
    assert (held, why) == (False, "the condition could not be evaluated (too much work)")
    assert time.perf_counter() - started < 1.0
    assert holds(one, res(a=[*values[:10], "xb"]))


# ----------------------------------------------------------------------- numeric, date, GUID, bool


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("NumericEquals", 10, True),
        ("NumericNotEquals", 10, False),
        ("NumericGreaterThan", 9, True),
        ("NumericGreaterThan", 10, False),
        ("NumericGreaterThanEquals", 10, True),
        ("NumericLessThan", 11, True),
        ("NumericLessThan", 10, False),
        ("NumericLessThanEquals", 10, True),
        ("NumericLessThanEquals", 9, False),
    ],
)
def test_numeric_operators(operator: str, value: int, expected: bool) -> None:
    assert holds(f"@Resource[n] {operator} {value}", res(n=10)) is expected
    assert holds(f"@Resource[n] {operator} {value}", res(n="10")) is expected  # digits as text


def test_datetime_full_precision() -> None:
    version = "2022-06-01T00:00:00.0000001Z"
    at = MappingAttributes(request_values={BLOB_VERSION_ID: version})
    field = f"@Request[{BLOB_VERSION_ID}]"
    assert holds(f"{field} DateTimeGreaterThan '2022-06-01T00:00:00.0Z'", at)
    assert not holds(f"{field} DateTimeEquals '2022-06-01T00:00:00.0Z'", at)
    assert holds(f"{field} DateTimeNotEquals '2022-06-01T00:00:00Z'", at)
    assert holds(f"{field} DateTimeEquals '2022-06-01T00:00:00.0000001Z'", at)
    assert holds(f"{field} DateTimeLessThan '2022-06-01T00:00:00.00001Z'", at)
    assert holds(f"{field} DateTimeLessThanEquals '2022-06-01T00:00:00.0000001Z'", at)
    assert not holds(f"{field} DateTimeGreaterThanEquals '2023-01-01T00:00:00Z'", at)
    garbled = MappingAttributes(request_values={BLOB_VERSION_ID: "yesterday"})
    assert not holds(f"{field} DateTimeNotEquals '2022-06-01T00:00:00Z'", garbled)


def test_utc_now_is_the_clock() -> None:
    assert holds("@Environment[UtcNow] DateTimeGreaterThan '2020-01-01T00:00:00.0Z'", MappingAttributes())
    assert holds("@Environment[UtcNow] DateTimeLessThan '2999-01-01T00:00:00.0Z'", None)


def test_guid_and_bool() -> None:
    guid = "4633458B-17DE-408A-B874-0445C86B69E6"
    at = MappingAttributes(request_values={"r:RoleDefinitionId": guid})
    assert holds(f"@Request[r:RoleDefinitionId] GuidEquals {guid.lower()}", at)
    assert holds("@Request[r:RoleDefinitionId] GuidNotEquals 21090545-7ca7-4776-b22c-e363652d74d2", at)
    not_a_guid = MappingAttributes(request_values={"r:RoleDefinitionId": "nope"})
    assert not holds(
        "@Request[r:RoleDefinitionId] GuidNotEquals 21090545-7ca7-4776-b22c-e363652d74d2", not_a_guid
    )
    assert holds(f"@Resource[{IS_CURRENT_VERSION}] BoolEquals true", res(**{IS_CURRENT_VERSION: True}))
    assert holds(f"@Resource[{IS_CURRENT_VERSION}] BoolEquals TRUE", res(**{IS_CURRENT_VERSION: "true"}))
    assert holds(f"@Resource[{IS_CURRENT_VERSION}] BoolNotEquals true", res(**{IS_CURRENT_VERSION: False}))
    assert not holds(f"@Resource[{IS_CURRENT_VERSION}] BoolEquals true", res(**{IS_CURRENT_VERSION: "yes"}))


# --------------------------------------------------------------------------------------- quantifiers


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # conditions-format.md, "Cross product comparison operators"
        ("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'blue', 'green'}", True),
        ("{'red', 'blue'} ForAnyOfAnyValues:StringEquals {'orange', 'green'}", False),
        ("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'orange', 'red', 'blue'}", True),
        ("{'red', 'blue'} ForAllOfAnyValues:StringEquals {'red', 'green'}", False),
        ("{10, 20} ForAnyOfAllValues:NumericLessThan {15, 18}", True),
        ("{10, 20} ForAnyOfAllValues:NumericLessThan {5, 18}", False),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {5, 15, 18}", False),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {25, 30}", True),
        ("{10, 20} ForAllOfAllValues:NumericLessThan {15, 25, 30}", False),
        ("{'a', 'b'} ForAnyOfAnyValues:StringNotEquals {'a'}", True),  # the Not is per pair
        ("{'a', 'b'} ForAllOfAnyValues:StringNotEquals {'a'}", False),
        ("{'A'} ForAnyOfAnyValues:StringEqualsIgnoreCase {'a'}", True),
        ("{'ab'} ForAllOfAllValues:StringLike {'a*', '*b'}", True),
    ],
)
def test_documented_quantifier_examples(text: str, expected: bool) -> None:
    assert holds(text, MappingAttributes()) is expected


def test_quantifiers_over_attributes() -> None:
    keys = f"@Request[{BLOB_TAG_KEYS}] ForAllOfAnyValues:StringEquals {{'Project', 'Program'}}"
    request = MappingAttributes(request_values=blob_tag_values({"Project": "x", "Program": "y"}))
    assert holds(keys, request)
    assert not holds(keys, MappingAttributes(request_values=blob_tag_values({"Project": "x", "Cost": "1"})))
    # No tags at all: the list is empty, which is no vacuous "for all" (the safe answer).
    assert not holds(keys, MappingAttributes(request_values=blob_tag_values({})))
    # One value counts as a one-value list (the docs' encryption scope example).
    scopes = (
        f"@Resource[{ENCRYPTION_SCOPE_NAME}] ForAnyOfAnyValues:StringEquals {{'validScope1', 'validScope2'}}"
    )
    assert holds(scopes, res(**{ENCRYPTION_SCOPE_NAME: "validScope2"}))
    assert not holds(scopes, res(**{ENCRYPTION_SCOPE_NAME: "other"}))
    # A list where one value is expected cannot be evaluated.
    assert not holds(f"@Request[{BLOB_TAG_KEYS}] StringEquals 'Project'", request)
    assert not holds(f"@Request[{BLOB_TAG_KEYS}] StringNotEquals 'Project'", request)


# ----------------------------------------------------------------------------- logic and unknowns


def test_logic_operators_and_three_values() -> None:
    at = res(a="x")
    true, false, unknown = (
        "@Resource[a] StringEquals 'x'",
        "@Resource[a] StringEquals 'y'",
        "@Resource[b] StringEquals 'x'",
    )
    assert holds(f"{true} AND {true}", at) and not holds(f"{true} && {false}", at)
    assert holds(f"{false} OR {true}", at) and not holds(f"{false} || {false}", at)
    assert holds(f"!({false})", at) and not holds(f"NOT ({true})", at)
    assert holds(f"({unknown}) OR ({true})", at)  # unknown OR true: true
    assert not holds(f"({unknown}) OR ({false})", at)
    assert not holds(f"({unknown}) AND ({true})", at)
    assert not holds(f"!({unknown}) AND ({true})", at)  # a negated unknown is still unknown
    assert holds(f"!(({unknown}) AND ({false}))", at)  # unknown AND false: false


def test_a_missing_attribute_never_grants_even_negated() -> None:
    for operator in ("StringEquals", "StringNotEquals", "StringNotLike", "StringNotStartsWith"):
        condition = f"@Resource[{TAG_PROJECT}] {operator} 'Cascade'"
        assert not holds(condition, MappingAttributes()), operator
        assert not holds(f"NOT ({condition})", MappingAttributes()), operator
    assert not holds("@Resource[n] NumericNotEquals 3", MappingAttributes())


def test_values_of_the_wrong_type_never_grant() -> None:
    assert not holds("@Resource[a] StringNotEquals 'x'", res(a=True))
    assert not holds("@Resource[a] StringNotEquals 'x'", res(a=3))
    assert not holds("@Resource[a] NumericNotEquals 3", res(a="three"))
    assert not holds("@Resource[a] NumericNotEquals 3", res(a=True))  # a bool is not a number
    assert not holds("@Resource[a] BoolNotEquals true", res(a=1))


def test_bounds_on_attribute_values() -> None:
    assert holds("@Resource[a] StringStartsWith 'x'", res(a="x" * MAX_ATTRIBUTE_CHARS))
    assert not holds("@Resource[a] StringNotEquals 'y'", res(a="x" * (MAX_ATTRIBUTE_CHARS + 1)))
    many = ["v"] * (MAX_ATTRIBUTE_VALUES + 1)
    assert not holds("@Resource[a] ForAnyOfAnyValues:StringEquals {'v'}", res(a=many))
    assert holds("@Resource[a] ForAnyOfAnyValues:StringEquals {'v'}", res(a=many[1:]))


def test_a_provider_that_fails_does_not_grant() -> None:
    class Broken(MappingAttributes):
        def resource(self, name: str) -> AttributeValue | None:
            raise KeyError(name)

    held, why = outcome(parse_condition("@Resource[a] StringNotEquals 'x'"), READ, Broken())
    assert not held and "could not be evaluated" in why


def test_outcome_says_why() -> None:
    cond = parse_condition(READ_TAGGED)
    assert outcome(cond, READ, res(**{TAG_PROJECT: "Cascade"})) == (True, "the condition holds")
    assert outcome(cond, READ, res(**{TAG_PROJECT: "Baker"})) == (False, "the condition does not hold")
    held, why = outcome(cond, READ, MappingAttributes())
    assert not held and "is missing" in why and "tags:Project" in why
    held, why = outcome(cond, READ, None)
    assert not held and "no attributes" in why


# ------------------------------------------------------------------------- attribute names and tags


def test_attribute_names_fold_case_but_tag_keys_do_not() -> None:
    assert attribute_key(CONTAINER_NAME.upper()) == attribute_key(CONTAINER_NAME)
    assert attribute_key(f"{BLOBS.upper()}/TAGS:Project") == attribute_key(TAG_PROJECT)
    assert attribute_key(f"{BLOBS}/tags:project<$key_case_sensitive$>") != attribute_key(TAG_PROJECT)
    tags = res(**blob_tag_values({"Project": "Cascade"}))
    assert holds(f"@Resource[{TAG_PROJECT}] StringEquals 'Cascade'", tags)
    assert holds(f"@Resource[{BLOBS}/tags:Project] StringEquals 'Cascade'", tags)
    assert not holds(f"@Resource[{BLOBS}/tags:project<$key_case_sensitive$>] StringEquals 'Cascade'", tags)
    assert not holds(f"@Resource[{BLOB_TAGS}:Project<$key_case_sensitive$>] StringEquals 'cascade'", tags)


# ---------------------------------------------------------------------- documented blob conditions


def test_read_blobs_with_a_blob_index_tag() -> None:
    cascade = res(**blob_tag_values({"Project": "Cascade"}))
    baker = res(**blob_tag_values({"Project": "Baker"}))
    untagged = res(**blob_tag_values({}))
    listing = MappingAttributes(request_values={SUB_OPERATION: SUB_OPERATION_BLOB_LIST})
    assert holds(READ_TAGGED, cascade) and not holds(READ_TAGGED, baker) and not holds(READ_TAGGED, untagged)
    assert holds(READ_TAGGED, listing)  # List Blobs is not targeted
    assert holds(READ_TAGGED, untagged, WRITE)  # nor are other actions
    assert holds(READ_TAGGED, None, WRITE)  # ... which needs no attributes at all
    assert not holds(READ_TAGGED, None, READ)  # a read cannot be decided without them


def test_new_blobs_must_include_a_blob_index_tag() -> None:
    def put(tags: dict[str, str] | None) -> MappingAttributes:
        if tags is None:
            return MappingAttributes()
        return MappingAttributes(
            request_values={SUB_OPERATION: SUB_OPERATION_WITH_TAG_HEADERS, **blob_tag_values(tags)}
        )

    assert holds(NEW_TAGGED, put({"Project": "Cascade"}), WRITE)
    assert holds(NEW_TAGGED, put({"Project": "Cascade"}), ADD)
    assert not holds(NEW_TAGGED, put({"Project": "Baker"}), WRITE)
    assert not holds(NEW_TAGGED, put({"Other": "Cascade"}), ADD)
    assert holds(NEW_TAGGED, put(None), WRITE)  # no tag headers: the sub-operation is not targeted


def test_read_write_or_delete_blobs_in_named_containers() -> None:
    ingest, other = res(**{CONTAINER_NAME: "ingest"}), res(**{CONTAINER_NAME: "archive"})
    for action in (READ, WRITE, ADD, DELETE):
        assert holds(NAMED_CONTAINER, ingest, action), action
        assert not holds(NAMED_CONTAINER, other, action), action
    assert holds(NAMED_CONTAINER, other, f"{BLOBS}/tags/read")  # not targeted


# --------------------------------------------------------------------------------------- compiling


def test_compile_condition_remembers_and_reports() -> None:
    first = compile_condition(READ_TAGGED, None)
    assert compile_condition(READ_TAGGED, None) is first
    assert not isinstance(first, str)
    problem = compile_condition("only on Tuesdays", None)
    assert isinstance(problem, str) and problem.startswith("condition not evaluated (unsupported)")
    assert isinstance(compile_condition(READ_TAGGED, "1.0"), str)


# ------------------------------------------------------------------- the evaluator honours conditions

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
ACCOUNT_PATH = "/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default/containers/c1"
CONTAINER = f"{SUB}/resourceGroups/rg{ACCOUNT_PATH}"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
ALICE = "aaaaaaaa-0000-0000-0000-000000000001"
CONTAINERS_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/read"


def _index(*assignments: RoleAssignment, denies: tuple[DenyAssignment, ...] = ()) -> AuthorizationIndex:
    return AuthorizationIndex.from_records(BUILTIN_ROLES, assignments, denies)


def _assign(role: str, condition: str | None, name: str = "ra-1") -> RoleAssignment:
    return RoleAssignment(name, SUB, role, ALICE, "ServicePrincipal", condition, "2.0" if condition else None)


def test_a_conditional_assignment_grants_exactly_when_its_condition_holds() -> None:
    ix = _index(_assign(BLOB_CONTRIBUTOR, NAMED_CONTAINER))
    ingest, archive = res(**{CONTAINER_NAME: "ingest"}), res(**{CONTAINER_NAME: "archive"})
    for action in (READ, WRITE, DELETE):
        assert ix.decide(ALICE, action, CONTAINER, data_action=True, attributes=ingest).allowed
        decision = ix.explain(ALICE, action, CONTAINER, data_action=True, attributes=archive)
        assert decision.decision == "not_granted"
        [miss] = decision.non_matching_assignments
        assert miss.blocked_by_condition
        assert miss.reason.endswith("but the condition does not hold; assignment does not grant")
    # Without attributes: a targeted action is not granted, one the condition leaves alone is.
    assert not ix.decide(ALICE, READ, CONTAINER, data_action=True).allowed
    assert ix.decide(ALICE, f"{BLOBS}/move/action", CONTAINER, data_action=True).allowed
    assert ix.decide(ALICE, CONTAINERS_READ, CONTAINER, data_action=False).allowed  # control plane
    # A conditional assignment is no effective permission block.
    assert ix.permissions_for(ALICE, CONTAINER) == []


def test_deny_assignments_and_other_grants_are_unaffected() -> None:
    deny = DenyAssignment("deny-1", SUB, Permission(data_actions=(f"{BLOBS}/delete",)), (ALICE,))
    ix = _index(_assign(BLOB_CONTRIBUTOR, NAMED_CONTAINER), denies=(deny,))
    ingest = res(**{CONTAINER_NAME: "ingest"})
    decision = ix.decide(ALICE, DELETE, CONTAINER, data_action=True, attributes=ingest)
    assert decision.decision == "denied_by_deny_assignment"
    # An unconditional assignment of another role still grants whatever the condition says.
    ix = _index(_assign(BLOB_CONTRIBUTOR, NAMED_CONTAINER), _assign(BLOB_READER, None, "ra-2"))
    archive = res(**{CONTAINER_NAME: "archive"})
    assert ix.decide(ALICE, READ, CONTAINER, data_action=True, attributes=archive).allowed
    assert not ix.decide(ALICE, WRITE, CONTAINER, data_action=True, attributes=archive).allowed


# --------------------------------------------------------------- RbacService over a real database


@pytest.fixture
def rbac(tmp_path: Path) -> Iterator[tuple[RbacService, RbacService, Caller, str]]:
    """Two replicas on one database, the admin, and the subscription scope."""
    with fresh_database_url() as url:
        db = Database(url or f"sqlite:///{tmp_path / 'keyless.db'}")
        db.migrate()
        tenant, sub, admin_oid = Directory(db).bootstrap()
        admin = Caller(admin_oid, admin_oid, tenant, "ServicePrincipal", "https://management.azure.com", {})
        try:
            yield RbacService(db), RbacService(db), admin, f"/subscriptions/{sub}"
        finally:
            db.dispose()


def _principal(service: RbacService, tenant: str) -> Caller:
    with service.db.write() as conn:
        p = principals.create_principal(
            conn, tenant_id=tenant, principal_type=principals.SERVICE_PRINCIPAL, display_name="app"
        )
    return Caller(p.object_id, p.app_id, tenant, p.principal_type, "https://storage.azure.com", {})


def test_authorize_data_action_evaluates_conditions_on_every_replica(
    rbac: tuple[RbacService, RbacService, Caller, str],
) -> None:
    a, b, admin, sub = rbac
    app = _principal(a, admin.tenant_id)
    body = {
        "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}",
        "principalId": app.object_id,
        "condition": READ_TAGGED,
    }
    a.create_assignment(admin, sub, str(uuid.uuid4()), body)
    scope = f"{sub}/resourceGroups/rg{ACCOUNT_PATH}"
    cascade = res(**blob_tag_values({"Project": "Cascade"}))
    baker = res(**blob_tag_values({"Project": "Baker"}))
    for replica in (a, b):
        assert replica.authorize_data_action(app, READ, scope, cascade).allowed
        assert not replica.authorize_data_action(app, READ, scope, baker).allowed
        assert not replica.authorize_data_action(app, READ, scope).allowed
        listing = MappingAttributes(request_values={SUB_OPERATION: SUB_OPERATION_BLOB_LIST})
        assert replica.authorize_data_action(app, READ, scope, listing).allowed
    _, _, why = b.explain(admin, app.object_id, READ, scope, data_action=True, attributes=baker)
    assert why.non_matching_assignments[0].blocked_by_condition


def test_the_control_plane_decides_conditions_by_their_actions(
    rbac: tuple[RbacService, RbacService, Caller, str],
) -> None:
    a, b, admin, sub = rbac
    app = _principal(a, admin.tenant_id)
    rg_write = "Microsoft.Resources/subscriptions/resourceGroups/write"
    body = {
        "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{READER}",
        "principalId": app.object_id,
        "condition": f"(!(ActionMatches{{'{READ}'}})) OR (@Resource[{CONTAINER_NAME}] StringEquals 'x')",
    }
    a.create_assignment(admin, sub, str(uuid.uuid4()), body)  # Reader, with a blob condition
    b.check(app, "Microsoft.Resources/subscriptions/resourceGroups/read", f"{sub}/resourceGroups/rg")
    with pytest.raises(ArmError) as caught:
        b.check(app, rg_write, f"{sub}/resourceGroups/rg")
    assert "does not have authorization to perform" in caught.value.message  # no ABAC wording: no role
