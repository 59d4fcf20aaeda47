"""Unit tests for the pure-domain RBAC core (keyless.rbac.evaluator / keyless.rbac.builtin_roles)."""

from __future__ import annotations

import pytest

from keyless.rbac.builtin_roles import (
    BUILTIN_ROLES,
    builtin_role_by_name,
    get_builtin_role,
)
from keyless.rbac.evaluator import (
    EVERYONE_PRINCIPAL_ID,
    AuthorizationIndex,
    DenyAssignment,
    Permission,
    RoleAssignment,
    RoleDefinition,
    action_matches,
    is_at_or_below,
    normalize_scope,
    parent_scope,
    role_assignable_at,
    role_definition_id,
    scope_ancestors,
)

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
MEDIA_OPERATOR = "e4395492-1534-4db2-bedf-88c14621589c"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KV_ADMIN = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
RG = f"{SUB}/resourceGroups/rg-media"
SIBLING_RG = f"{SUB}/resourceGroups/rg-other"
MEDIA = f"{RG}/providers/Microsoft.Media/mediaservices/ams1"
ASSET = f"{MEDIA}/assets/asset1"
STORAGE = f"{RG}/providers/Microsoft.Storage/storageAccounts/st1"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv1"

ALICE = "aaaaaaaa-0000-0000-0000-000000000001"
BOB = "bbbbbbbb-0000-0000-0000-000000000002"
GROUP = "99999999-0000-0000-0000-000000000009"

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
MEDIA_WRITE = "Microsoft.Media/mediaservices/write"
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"

_counter = 0


def assign(
    role: str,
    scope: str,
    principal: str = ALICE,
    *,
    name: str | None = None,
    principal_type: str = "User",
    condition: str | None = None,
    condition_version: str | None = None,
) -> RoleAssignment:
    global _counter
    _counter += 1
    return RoleAssignment(
        name=name or f"00000000-aaaa-0000-0000-{_counter:012d}",
        scope=scope,
        role_definition_name=role,
        principal_id=principal,
        principal_type=principal_type,
        condition=condition,
        condition_version=condition_version,
    )


def index(*assignments: RoleAssignment, denies: tuple[DenyAssignment, ...] = ()) -> AuthorizationIndex:
    return AuthorizationIndex.from_records(BUILTIN_ROLES, assignments, denies)


def custom_role(name: str, *permissions: Permission, scopes: tuple[str, ...] = (SUB,)) -> RoleDefinition:
    return RoleDefinition(
        name=name,
        role_name=f"custom {name[:8]}",
        role_type="CustomRole",
        description="test role",
        assignable_scopes=scopes,
        permissions=permissions,
    )


def deny(
    scope: str,
    principals: tuple[str, ...],
    *,
    actions: tuple[str, ...] = ("*",),
    not_actions: tuple[str, ...] = (),
    data_actions: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    child_scopes: bool = True,
    condition: str | None = None,
    name: str = "deny-1",
) -> DenyAssignment:
    return DenyAssignment(
        name=name,
        scope=scope,
        permissions=Permission(
            actions=actions, not_actions=not_actions, data_actions=data_actions, condition=condition
        ),
        principal_ids=principals,
        exclude_principal_ids=exclude,
        do_not_apply_to_child_scopes=not child_scopes,
    )


def allowed(
    ix: AuthorizationIndex,
    action: str,
    scope: str,
    *,
    principals: str | set[str] | list[str] = ALICE,
    data: bool = False,
) -> bool:
    ids = principals
    fast = ix.decide(ids, action, scope, data_action=data)
    full = ix.explain(ids, action, scope, data_action=data)
    # decide and explain must always agree on the outcome.
    assert fast.allowed == full.allowed
    assert fast.decision == full.decision
    return fast.allowed


# ---------------------------------------------------------------------------------------------- scopes


def test_normalize_scope() -> None:
    assert normalize_scope("subscriptions/S/resourceGroups/RG/") == "/subscriptions/s/resourcegroups/rg"
    assert normalize_scope("/") == "/"
    assert normalize_scope("") == "/"
    assert normalize_scope("//subscriptions//s") == "/subscriptions/s"


def test_scope_ancestors_nested_resource() -> None:
    scope = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Foo/bars/b/children/c"
    assert scope_ancestors(scope) == (
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.foo/bars/b/children/c",
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.foo/bars/b",
        "/subscriptions/s/resourcegroups/rg",
        "/subscriptions/s",
        "/",
    )


def test_scope_ancestors_provider_namespace_is_not_a_scope() -> None:
    chain = scope_ancestors("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Foo/bars/b")
    assert "/subscriptions/s/resourcegroups/rg/providers" not in chain
    assert "/subscriptions/s/resourcegroups/rg/providers/microsoft.foo" not in chain
    assert chain[1] == "/subscriptions/s/resourcegroups/rg"


def test_scope_ancestors_extension_resource_and_root() -> None:
    ext = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Foo/bars/b"
        "/providers/Microsoft.Authorization/roleAssignments/x"
    )
    assert scope_ancestors(ext)[1] == "/subscriptions/s/resourcegroups/rg/providers/microsoft.foo/bars/b"
    assert scope_ancestors("/") == ("/",)
    assert scope_ancestors("/providers/Microsoft.Management/managementGroups/mg") == (
        "/providers/microsoft.management/managementgroups/mg",
        "/",
    )
    assert parent_scope("/subscriptions/s") == "/"
    assert parent_scope("/") is None


def test_is_at_or_below_is_segment_aware_and_case_insensitive() -> None:
    assert is_at_or_below(ASSET, RG)
    assert is_at_or_below(RG.upper(), RG.lower())
    assert is_at_or_below(RG, RG + "/")
    assert is_at_or_below(RG, "/")
    assert not is_at_or_below(RG, ASSET)
    assert not is_at_or_below(f"{SUB}/resourceGroups/rg10", f"{SUB}/resourceGroups/rg1")
    assert not is_at_or_below(SIBLING_RG, RG)


# ---------------------------------------------------------------------------------------------- patterns


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "Microsoft.Foo/bars/write", True),
        ("*/read", "Microsoft.Network/virtualNetworks/subnets/read", True),
        ("*/read", "Microsoft.Network/virtualNetworks/write", False),
        ("Microsoft.Compute/*", "Microsoft.Compute/virtualMachines/start/action", True),
        ("Microsoft.Compute/*", "Microsoft.ComputeX/virtualMachines/read", False),
        ("Microsoft.Authorization/*/Delete", "microsoft.authorization/roleassignments/delete", True),
        ("Microsoft.CostManagement/*/query/*", "Microsoft.CostManagement/exports/query/action", True),
        ("Microsoft.CostManagement/*/query/*", "Microsoft.CostManagement/a/b/query/read", True),
        ("Microsoft.CostManagement/*/query/*", "Microsoft.CostManagement/query/read", False),
        ("Microsoft.CostManagement/*/query/*", "Microsoft.Consumption/x/query/read", False),
        ("Microsoft.Storage/x/read", "MicrosoftXStorage/x/read", False),  # '.' is literal
        ("Microsoft.Storage/x/read", "Microsoft.Storage/x/read/extra", False),  # anchored
    ],
)
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


def test_wildcard_in_the_middle_in_a_custom_role() -> None:
    role = custom_role(
        "c0570000-0000-0000-0000-000000000001", Permission(actions=("Microsoft.CostManagement/*/query/*",))
    )
    ix = index(assign(role.name, SUB))
    ix.put_role_definition(role)
    assert allowed(ix, "Microsoft.CostManagement/billingAccounts/query/action", RG)
    assert not allowed(ix, "Microsoft.CostManagement/query/action", RG)
    assert not allowed(ix, "Microsoft.CostManagement/billingAccounts/exports/write", RG)


# ---------------------------------------------------------------------------------------------- built-ins


def test_owner_allowed_control_plane_at_subscription_and_below() -> None:
    ix = index(assign(OWNER, SUB))
    for scope in (SUB, RG, MEDIA, ASSET):
        assert allowed(ix, MEDIA_WRITE, scope)
    assert allowed(ix, ROLE_ASSIGNMENT_WRITE, RG)


def test_owner_not_allowed_data_actions() -> None:
    ix = index(assign(OWNER, SUB))
    assert not allowed(ix, BLOB_READ, STORAGE, data=True)
    d = ix.explain({ALICE}, BLOB_READ, STORAGE, data_action=True)
    assert d.decision == "not_granted"
    assert len(d.non_matching_assignments) == 1
    assert "control-plane wildcard '*' does not grant data actions" in d.non_matching_assignments[0].reason


def test_data_action_patterns_do_not_grant_control_plane() -> None:
    ix = index(assign(KV_ADMIN, VAULT))
    assert allowed(ix, GET_SECRET, VAULT + "/secrets/s1", data=True)
    assert not allowed(ix, "Microsoft.KeyVault/vaults/write", VAULT)
    d = ix.explain({ALICE}, "Microsoft.KeyVault/vaults/write", VAULT, data_action=False)
    assert "does not grant control-plane actions" in d.non_matching_assignments[0].reason
    # The same string checked as a data action is granted: the plane flag matters.
    assert allowed(ix, "Microsoft.KeyVault/vaults/write", VAULT, data=True)


def test_contributor_cannot_write_role_assignments_case_insensitive() -> None:
    ix = index(assign(CONTRIBUTOR, SUB))
    assert allowed(ix, MEDIA_WRITE, MEDIA)
    assert not allowed(ix, ROLE_ASSIGNMENT_WRITE, RG)
    assert not allowed(ix, "Microsoft.Authorization/roleAssignments/Write", RG)
    assert not allowed(ix, "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/DELETE", RG)
    assert allowed(ix, "Microsoft.Authorization/roleAssignments/read", RG)
    d = ix.explain({ALICE}, "Microsoft.Authorization/roleAssignments/Write", RG, data_action=False)
    assert d.non_matching_assignments[0].reason == "excluded by NotActions 'Microsoft.Authorization/*/Write'"


def test_reader_allows_reads_only() -> None:
    ix = index(assign(READER, SUB))
    assert allowed(ix, "Microsoft.Media/mediaservices/read", MEDIA)
    assert allowed(ix, "Microsoft.Resources/subscriptions/resourceGroups/read", RG)
    assert not allowed(ix, MEDIA_WRITE, MEDIA)
    assert not allowed(ix, "Microsoft.Media/mediaservices/delete", MEDIA)
    assert not allowed(ix, "Microsoft.Storage/storageAccounts/listKeys/action", STORAGE)
    assert not allowed(ix, BLOB_READ, STORAGE, data=True)


def test_media_operator() -> None:
    ix = index(assign(MEDIA_OPERATOR, MEDIA))
    assert allowed(ix, "Microsoft.Media/mediaservices/assets/write", ASSET)
    assert allowed(ix, "Microsoft.Media/mediaservices/transforms/jobs/write", MEDIA + "/transforms/t/jobs/j")
    assert not allowed(ix, "Microsoft.Media/mediaservices/assets/getEncryptionKey/action", ASSET)
    assert not allowed(ix, "Microsoft.Media/mediaservices/streamingLocators/listContentKeys/action", MEDIA)
    assert not allowed(ix, MEDIA_WRITE, MEDIA)
    assert not allowed(ix, "Microsoft.Media/mediaservices/liveEvents/write", MEDIA)


def test_key_vault_secrets_user_and_blob_roles() -> None:
    ix = index(
        assign(KV_SECRETS_USER, VAULT),
        assign(BLOB_READER, STORAGE),
        assign(BLOB_DELEGATOR, STORAGE, principal=BOB),
    )
    assert allowed(ix, GET_SECRET, VAULT + "/secrets/db-password", data=True)
    assert not allowed(ix, "Microsoft.KeyVault/vaults/secrets/setSecret/action", VAULT, data=True)
    assert not allowed(ix, GET_SECRET, VAULT + "/secrets/db-password", data=False)
    assert allowed(ix, BLOB_READ, STORAGE + "/blobServices/default/containers/c", data=True)
    assert not allowed(
        ix, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write", STORAGE, data=True
    )
    delegation_key = "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"
    assert allowed(ix, delegation_key, STORAGE, principals=BOB)
    assert not allowed(ix, BLOB_READ, STORAGE, principals=BOB, data=True)


# ---------------------------------------------------------------------------------------------- scope


def test_assignment_at_rg_applies_below_not_above_or_sibling() -> None:
    ix = index(assign(OWNER, RG))
    assert allowed(ix, MEDIA_WRITE, RG)
    assert allowed(ix, MEDIA_WRITE, ASSET)
    assert not allowed(ix, MEDIA_WRITE, SUB)
    assert not allowed(ix, MEDIA_WRITE, SIBLING_RG)
    assert not allowed(ix, MEDIA_WRITE, f"{SUB}/resourceGroups/rg-media2")


def test_root_scope_assignment_applies_everywhere() -> None:
    ix = index(assign(READER, "/"))
    assert allowed(ix, "Microsoft.Foo/bars/read", ASSET)
    assert allowed(ix, "Microsoft.Foo/bars/read", "/subscriptions/other")


def test_case_insensitive_scopes_actions_principals_and_role_ids() -> None:
    ix = index(
        assign(
            OWNER.upper(),
            "/SUBSCRIPTIONS/11111111-1111-1111-1111-111111111111/RESOURCEGROUPS/RG-MEDIA/",
            ALICE.upper(),
        )
    )
    assert allowed(ix, "MICROSOFT.MEDIA/MEDIASERVICES/WRITE", MEDIA.lower(), principals=ALICE.lower())
    assert allowed(
        ix, MEDIA_WRITE, "subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-media"
    )


def test_full_role_definition_id_is_tolerated() -> None:
    ix = index(assign(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{OWNER}", SUB))
    assert allowed(ix, MEDIA_WRITE, MEDIA)


# ---------------------------------------------------------------------------------------------- union


def test_union_of_roles_overrides_not_actions() -> None:
    ix = index(assign(CONTRIBUTOR, SUB))
    assert not allowed(ix, ROLE_ASSIGNMENT_WRITE, RG)
    ix.put_assignment(assign(RBAC_ADMIN, RG))
    assert allowed(ix, ROLE_ASSIGNMENT_WRITE, RG)
    d = ix.explain({ALICE}, ROLE_ASSIGNMENT_WRITE, RG, data_action=False)
    assert [m.role_name for m in d.matched_assignments] == ["Role Based Access Control Administrator"]
    assert [m.role_name for m in d.non_matching_assignments] == ["Contributor"]
    # Not at the subscription: the RBAC admin assignment does not reach up there.
    assert not allowed(ix, ROLE_ASSIGNMENT_WRITE, SUB)


def test_not_actions_only_subtract_within_their_block() -> None:
    role = custom_role(
        "b10c0000-0000-0000-0000-000000000001",
        Permission(actions=("Microsoft.Foo/*",), not_actions=("Microsoft.Foo/bars/delete",)),
        Permission(actions=("Microsoft.Foo/bars/delete",)),
    )
    ix = index(assign(role.name, SUB))
    ix.put_role_definition(role)
    assert allowed(ix, "Microsoft.Foo/bars/delete", RG)


def test_group_membership() -> None:
    ix = index(assign(OWNER, RG, principal=GROUP, principal_type="Group"))
    assert not allowed(ix, MEDIA_WRITE, MEDIA, principals={ALICE})
    assert allowed(ix, MEDIA_WRITE, MEDIA, principals={ALICE, GROUP})
    assert allowed(ix, MEDIA_WRITE, MEDIA, principals=[ALICE, GROUP.upper()])


# ---------------------------------------------------------------------------------------------- deny


def test_deny_assignment_beats_owner() -> None:
    ix = index(assign(OWNER, SUB), denies=(deny(RG, (ALICE,), actions=("Microsoft.Media/*",)),))
    assert not allowed(ix, MEDIA_WRITE, MEDIA)
    assert allowed(ix, "Microsoft.Storage/storageAccounts/write", STORAGE)
    assert allowed(ix, MEDIA_WRITE, SIBLING_RG)
    fast = ix.decide({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert fast.decision == "denied_by_deny_assignment"
    assert fast.deny_assignments[0].deny_assignment.name == "deny-1"
    d = ix.explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert d.decision == "denied_by_deny_assignment"
    assert not d.allowed
    assert d.deny_assignments[0].matched_pattern == "Microsoft.Media/*"
    assert d.deny_assignments[0].reason == f"applies to principal {ALICE}"
    assert [m.role_name for m in d.matched_assignments] == ["Owner"]  # would have granted


def test_deny_not_actions_carve_out() -> None:
    ix = index(assign(OWNER, SUB), denies=(deny(RG, (ALICE,), not_actions=("*/read",)),))
    assert allowed(ix, "Microsoft.Media/mediaservices/read", MEDIA)
    assert not allowed(ix, MEDIA_WRITE, MEDIA)


def test_deny_is_plane_specific() -> None:
    ix = index(
        assign(OWNER, SUB),
        assign(BLOB_READER, SUB),
        denies=(deny(SUB, (ALICE,), actions=(), data_actions=("*",)),),
    )
    assert not allowed(ix, BLOB_READ, STORAGE, data=True)
    assert allowed(ix, MEDIA_WRITE, MEDIA)


def test_everyone_deny_with_exclusions() -> None:
    ix = index(
        assign(OWNER, SUB, ALICE),
        assign(OWNER, SUB, BOB),
        denies=(deny(RG, (EVERYONE_PRINCIPAL_ID,), exclude=(BOB, GROUP)),),
    )
    assert not allowed(ix, MEDIA_WRITE, MEDIA, principals=ALICE)
    assert allowed(ix, MEDIA_WRITE, MEDIA, principals=BOB)
    # Excluding a group excludes its members too.
    assert allowed(ix, MEDIA_WRITE, MEDIA, principals={ALICE, GROUP})
    d = ix.explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert d.deny_assignments[0].reason == "applies to everyone (zero GUID)"


def test_deny_do_not_apply_to_child_scopes() -> None:
    ix = index(assign(OWNER, SUB), denies=(deny(RG, (ALICE,), child_scopes=False),))
    assert not allowed(ix, MEDIA_WRITE, RG)
    assert allowed(ix, MEDIA_WRITE, MEDIA)
    assert allowed(ix, MEDIA_WRITE, SUB)


def test_deny_for_other_principal_does_not_apply() -> None:
    ix = index(assign(OWNER, SUB), denies=(deny(SUB, (BOB,)),))
    assert allowed(ix, MEDIA_WRITE, MEDIA)


def test_deny_with_unevaluated_condition_still_denies() -> None:
    ix = index(assign(OWNER, SUB), denies=(deny(SUB, (ALICE,), condition="@Resource[x] StringEquals 'y'"),))
    assert not allowed(ix, MEDIA_WRITE, MEDIA)


def test_put_and_remove_deny_assignment() -> None:
    ix = index(assign(OWNER, SUB))
    ix.put_deny_assignment(deny(SUB, (ALICE,)))
    assert not allowed(ix, MEDIA_WRITE, MEDIA)
    assert ix.remove_deny_assignment("DENY-1")
    assert not ix.remove_deny_assignment("deny-1")
    assert allowed(ix, MEDIA_WRITE, MEDIA)


# ---------------------------------------------------------------------------------------------- conditions


def test_a_condition_that_does_not_parse_never_grants() -> None:
    # `GuidEquals 1` is not valid condition syntax: such an assignment grants nothing (conditions
    # that parse are evaluated; see tests/unit/test_condition_eval.py).
    cond = (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[x] GuidEquals 1))"
    )
    ix = index(assign(OWNER, SUB, condition=cond, condition_version="2.0"))
    assert not allowed(ix, MEDIA_WRITE, MEDIA)
    d = ix.explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert d.decision == "not_granted"
    assert "condition not evaluated (unsupported)" in d.non_matching_assignments[0].reason
    assert "role grants via '*'" in d.non_matching_assignments[0].reason


def test_condition_version_must_be_2_0() -> None:
    ix = index(assign(OWNER, SUB, condition="@Resource[x] StringEquals 'y'", condition_version="1.0"))
    d = ix.explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert not d.allowed
    assert "conditionVersion '1.0' is not supported" in d.non_matching_assignments[0].reason


def test_blank_condition_is_no_condition() -> None:
    ix = index(assign(OWNER, SUB, condition="  ", condition_version="2.0"))
    assert allowed(ix, MEDIA_WRITE, MEDIA)


def test_conditional_permission_block_does_not_grant() -> None:
    role = custom_role(
        "c0de0000-0000-0000-0000-000000000001",
        Permission(
            actions=("Microsoft.Foo/*",), condition="@Resource[x] StringEquals 'y'", condition_version="2.0"
        ),
    )
    ix = index(assign(role.name, SUB))
    ix.put_role_definition(role)
    d = ix.explain({ALICE}, "Microsoft.Foo/bars/write", RG, data_action=False)
    assert not d.allowed
    assert d.non_matching_assignments[0].reason == "permission condition not evaluated (unsupported)"


# ---------------------------------------------------------------------------------------------- explain


def test_explain_contents() -> None:
    at_sub = assign(READER, SUB, name="a-reader-sub")
    at_rg = assign(MEDIA_OPERATOR, RG, principal=GROUP, principal_type="Group", name="a-mediaop-rg")
    at_media = assign(OWNER, MEDIA, name="a-owner-media")
    elsewhere = assign(OWNER, SIBLING_RG, name="a-owner-sibling")
    ix = index(at_sub, at_rg, at_media, elsewhere)

    d = ix.explain({ALICE, GROUP}, "Microsoft.Media/mediaservices/assets/write", ASSET, data_action=False)
    assert d.allowed and d.decision == "allowed" and d.explained
    # Nearest scope first; inherited_from names the assignment scope.
    assert [
        (m.assignment.name, m.role_name, m.inherited_from, m.matched_pattern) for m in d.matched_assignments
    ] == [
        ("a-owner-media", "Owner", MEDIA, "*"),
        ("a-mediaop-rg", "Media Services Media Operator", RG, "Microsoft.Media/mediaservices/assets/*"),
    ]
    misses = {m.assignment.name: m for m in d.non_matching_assignments}
    assert misses["a-reader-sub"].reason == "no Actions pattern matches"
    assert misses["a-reader-sub"].applies_at_scope
    assert misses["a-reader-sub"].inherited_from == SUB
    assert not misses["a-owner-sibling"].applies_at_scope
    assert "does not contain the target scope" in misses["a-owner-sibling"].reason
    assert d.deny_assignments == ()

    at_scope = ix.explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert at_scope.matched_assignments[0].inherited_from is None

    payload = d.to_dict()
    assert payload["decision"] == "allowed"
    assert payload["isDataAction"] is False
    assert isinstance(payload["matchedAssignments"], list) and len(payload["matchedAssignments"]) == 2
    text = d.summary()
    assert "granted by 'Owner'" in text
    assert "not granted by 'Reader'" in text


def test_decide_is_minimal_and_matches_explain() -> None:
    ix = index(assign(OWNER, SUB), assign(READER, RG))
    fast = ix.decide(ALICE, MEDIA_WRITE, MEDIA, data_action=False)
    assert fast.allowed and not fast.explained
    assert len(fast.matched_assignments) == 1
    assert fast.non_matching_assignments == ()
    assert ix.is_allowed(ALICE, MEDIA_WRITE, MEDIA, data_action=False)
    assert not ix.is_allowed(BOB, MEDIA_WRITE, MEDIA, data_action=False)


def test_unknown_role_definition_is_reported() -> None:
    ix = index(assign("12345678-0000-0000-0000-000000000000", SUB))
    d = ix.explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert not d.allowed
    assert d.non_matching_assignments[0].role_name is None
    assert "not found" in d.non_matching_assignments[0].reason


def test_no_assignments_at_all() -> None:
    d = index().explain({ALICE}, MEDIA_WRITE, MEDIA, data_action=False)
    assert d.decision == "not_granted"
    assert d.matched_assignments == () and d.non_matching_assignments == ()


# ---------------------------------------------------------------------------------------------- mutation


def test_put_and_remove_assignment() -> None:
    ix = index()
    a = assign(OWNER, RG, name="A1")
    ix.put_assignment(a)
    assert allowed(ix, MEDIA_WRITE, MEDIA)
    assert ix.get_assignment("a1") == a
    # Re-putting under the same name replaces (here: moves it to another principal).
    ix.put_assignment(assign(OWNER, RG, principal=BOB, name="a1"))
    assert not allowed(ix, MEDIA_WRITE, MEDIA, principals=ALICE)
    assert allowed(ix, MEDIA_WRITE, MEDIA, principals=BOB)
    assert len(list(ix.assignments())) == 1
    assert ix.remove_assignment("A1")
    assert not ix.remove_assignment("A1")
    assert not allowed(ix, MEDIA_WRITE, MEDIA, principals=BOB)


def test_replace_and_remove_role_definition_invalidates_results() -> None:
    name = "c0570000-0000-0000-0000-0000000000aa"
    ix = index(assign(name, SUB))
    ix.put_role_definition(custom_role(name, Permission(actions=("Microsoft.Foo/bars/read",))))
    assert allowed(ix, "Microsoft.Foo/bars/read", RG)
    assert not allowed(ix, "Microsoft.Foo/bars/write", RG)
    ix.put_role_definition(custom_role(name, Permission(actions=("Microsoft.Foo/bars/write",))))
    assert not allowed(ix, "Microsoft.Foo/bars/read", RG)
    assert allowed(ix, "Microsoft.Foo/bars/write", RG)
    assert ix.get_role_definition(name.upper()) is not None
    assert ix.remove_role_definition(name)
    assert not ix.remove_role_definition(name)
    assert not allowed(ix, "Microsoft.Foo/bars/write", RG)


# ---------------------------------------------------------------------------------------------- permissions


def test_permissions_for() -> None:
    ix = index(
        assign(READER, SUB),
        assign(MEDIA_OPERATOR, RG, principal=GROUP),
        assign(OWNER, SIBLING_RG),
        assign(OWNER, RG, condition="@Resource[x] StringEquals 'y'", condition_version="2.0"),
        assign(READER, RG),  # duplicate role: reported once
    )
    perms = ix.permissions_for({ALICE, GROUP}, MEDIA)
    operator = get_builtin_role(MEDIA_OPERATOR)
    reader = get_builtin_role(READER)
    assert operator is not None and reader is not None
    assert perms == [*reader.permissions, *operator.permissions] or perms == [
        *operator.permissions,
        *reader.permissions,
    ]
    assert len(perms) == 2
    assert ix.permissions_for({ALICE}, SUB) == list(reader.permissions)
    assert ix.permissions_for({BOB}, SUB) == []


def test_role_assignable_at() -> None:
    owner = get_builtin_role(OWNER)
    assert owner is not None
    assert role_assignable_at(owner, ASSET)
    assert role_assignable_at(owner, "/")
    role = custom_role(
        "a55a0000-0000-0000-0000-000000000001", Permission(actions=("*/read",)), scopes=(RG.upper(),)
    )
    assert role_assignable_at(role, RG)
    assert role_assignable_at(role, ASSET)
    assert not role_assignable_at(role, SUB)
    assert not role_assignable_at(role, SIBLING_RG)


# ---------------------------------------------------------------------------------------------- data


def test_builtin_role_catalogue() -> None:
    names = [r.name for r in BUILTIN_ROLES]
    assert len(names) == len(set(names)) >= 25
    for role in BUILTIN_ROLES:
        assert role.role_type == "BuiltInRole"
        assert role.assignable_scopes == ("/",)
        assert role.description
        assert role.permissions
        assert get_builtin_role(role.name.upper()) is role
        assert get_builtin_role(role_definition_id(role.name)) is role
        assert builtin_role_by_name(role.role_name.lower()) is role
    assert get_builtin_role("00000000-0000-0000-0000-00000000dead") is None
    assert builtin_role_by_name("no such role") is None


@pytest.mark.parametrize(
    ("role_name", "guid"),
    [
        ("Owner", OWNER),
        ("Key Vault Secrets User", KV_SECRETS_USER),
        ("Storage Blob Delegator", BLOB_DELEGATOR),
        ("Media Services Account Administrator", "054126f8-9a2b-4f1c-a9ad-eca461f08466"),
        ("Media Services Live Events Administrator", "532bc159-b25e-42c0-969e-a1d439f60d77"),
        ("Media Services Media Operator", MEDIA_OPERATOR),
        ("Media Services Policy Administrator", "c4bba371-dacd-4a26-b320-7250bca963ae"),
        ("Media Services Streaming Endpoints Administrator", "99dba123-b5fe-44d5-874c-ced7199a5804"),
        ("Website Contributor", "de139f84-1756-47ae-9be6-808fbbe84772"),
        ("Managed Identity Operator", "f1a07417-d97a-45cb-824c-7a7467783830"),
    ],
)
def test_builtin_role_guids(role_name: str, guid: str) -> None:
    role = builtin_role_by_name(role_name)
    assert role is not None
    assert role.name == guid


def test_key_vault_secrets_user_exact_permissions() -> None:
    role = get_builtin_role(KV_SECRETS_USER)
    assert role is not None
    assert role.permissions == (
        Permission(
            data_actions=(
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            )
        ),
    )
