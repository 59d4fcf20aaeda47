"""Bad input to Microsoft.Authorization: each gets ARM's status, code and message, and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.rbac_helpers import (
    AUTH_API,
    CONTRIBUTOR,
    OWNER,
    READER,
    all_assignments,
    assert_error,
    assign,
    create_group,
    create_sp,
    create_uami,
    custom_roles,
    put_assignment,
    rg_scope,
    role_id,
    sub_scope,
    uami_id,
)
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]


@pytest.fixture
def setup(server: KeylessServer, unique: Unique) -> Iterator[dict[str, Any]]:
    group = unique("rg-")
    create_group(server, group)
    sp = create_sp(server, unique("target-"))
    yield {"group": group, "scope": rg_scope(server, group), "principal": sp["objectId"]}


def _unchanged(server: KeylessServer, before: list[dict[str, Any]]) -> None:
    assert all_assignments(server) == before


def _put(arm: httpx.Client, scope: str, name: str, properties: Any) -> httpx.Response:
    return arm.put(
        f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        params={"api-version": AUTH_API},
        json={"properties": properties},
    )


def test_malformed_guids(server: KeylessServer, setup: dict[str, Any]) -> None:
    scope, principal = setup["scope"], setup["principal"]
    good_role = role_id(server, READER)
    before = all_assignments(server)
    with server.arm() as arm:
        message = assert_error(
            _put(arm, scope, "not-a-guid", {"roleDefinitionId": good_role, "principalId": principal}),
            400,
            "InvalidRoleAssignmentId",
        )
        assert (
            message
            == "The role assignment ID 'not-a-guid' is not valid. The role assignment ID must be a GUID."
        )
        message = assert_error(
            _put(arm, scope, str(uuid.uuid4()), {"roleDefinitionId": good_role, "principalId": "alice"}),
            400,
            "InvalidPrincipalId",
        )
        assert message == "The Principal ID 'alice' is not valid. Principal ID must be a GUID."
        for bad in (
            "Reader",
            f"{sub_scope(server)}/providers/Microsoft.Authorization/roleDefinitions/reader",
        ):
            message = assert_error(
                _put(arm, scope, str(uuid.uuid4()), {"roleDefinitionId": bad, "principalId": principal}),
                400,
                "InvalidRoleDefinitionId",
            )
            assert message == f"The role definition ID '{bad}' is not valid."
        assert_error(
            arm.get(
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/x1",
                params={"api-version": AUTH_API},
            ),
            400,
            "InvalidRoleAssignmentId",
        )
        assert_error(
            arm.delete(
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/x1",
                params={"api-version": AUTH_API},
            ),
            400,
            "InvalidRoleAssignmentId",
        )
    _unchanged(server, before)


def test_unknown_role_and_unknown_principal(server: KeylessServer, setup: dict[str, Any]) -> None:
    scope, principal = setup["scope"], setup["principal"]
    before = all_assignments(server)
    unknown_role, nobody = str(uuid.uuid4()), str(uuid.uuid4())
    with server.arm() as arm:
        r = put_assignment(arm, server, scope, principal, unknown_role)
        assert assert_error(r, 400, "RoleDefinitionDoesNotExist") == (
            f"The specified role definition with ID '{unknown_role.replace('-', '')}' does not exist."
        )
        # Without principalType ARM looks the principal up (with it, it does not: test_rbac_conditions).
        r = put_assignment(arm, server, scope, nobody, READER)
        message = assert_error(r, 400, "PrincipalNotFound")
        assert message.startswith(
            f"Principal {nobody.replace('-', '')} does not exist in the directory "
            f"{server.tenant_id}. Check that you have the correct principal ID."
        )
        r = put_assignment(arm, server, scope, principal, READER, principalType="User")
        assert assert_error(r, 400, "UnmatchedPrincipalType") == (
            f"The PrincipalId '{principal.replace('-', '')}' has type 'ServicePrincipal' , which is different "
            "from specified PrincipalType 'User'."
        )
        r = put_assignment(arm, server, scope, principal, READER, principalType="Robot")
        assert_error(r, 400, "InvalidPrincipalType")
        r = arm.get(
            f"{sub_scope(server)}/providers/Microsoft.Authorization/roleDefinitions/{unknown_role}",
            params={"api-version": AUTH_API},
        )
        assert_error(r, 404, "RoleDefinitionDoesNotExist")
    _unchanged(server, before)


def test_scopes_that_do_not_exist(server: KeylessServer, setup: dict[str, Any], unique: Unique) -> None:
    principal = setup["principal"]
    before = all_assignments(server)
    missing_group = unique("rg-missing-")
    with server.arm() as arm:
        r = put_assignment(arm, server, rg_scope(server, missing_group), principal, READER)
        assert (
            assert_error(r, 404, "ResourceGroupNotFound")
            == f"Resource group '{missing_group}' could not be found."
        )
        r = put_assignment(arm, server, uami_id(server, setup["group"], "ghost"), principal, READER)
        assert assert_error(r, 404, "ResourceNotFound").startswith(
            "The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/ghost' under resource group"
        )
        other_sub = str(uuid.uuid4())
        r = put_assignment(arm, server, f"/subscriptions/{other_sub}", principal, READER)
        assert (
            assert_error(r, 404, "SubscriptionNotFound")
            == f"The subscription '{other_sub}' could not be found."
        )
        r = put_assignment(arm, server, "/subscriptions/not-a-sub", principal, READER)
        assert_error(r, 400, "InvalidSubscriptionId")
        r = arm.get(
            f"{rg_scope(server, missing_group)}/providers/Microsoft.Authorization/roleAssignments",
            params={"api-version": AUTH_API},
        )
        assert_error(r, 404, "ResourceGroupNotFound")
        r = arm.get(
            f"{rg_scope(server, missing_group)}/providers/Microsoft.Authorization/permissions",
            params={"api-version": AUTH_API},
        )
        assert_error(r, 404, "ResourceGroupNotFound")
    _unchanged(server, before)


def test_custom_role_outside_its_assignable_scopes(
    server: KeylessServer, setup: dict[str, Any], unique: Unique
) -> None:
    other = unique("rg-")
    create_group(server, other)
    guid = str(uuid.uuid4())
    with server.arm() as arm:
        r = arm.put(
            f"{setup['scope']}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            params={"api-version": AUTH_API},
            json={
                "properties": {
                    "roleName": unique("group reader "),
                    "type": "CustomRole",
                    "assignableScopes": [setup["scope"]],
                    "permissions": [{"actions": ["Microsoft.Resources/subscriptions/resourceGroups/read"]}],
                }
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["properties"]["type"] == "CustomRole"
        assert (
            r.json()["id"] == f"{sub_scope(server)}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        )
        before = all_assignments(server)
        for scope in (rg_scope(server, other), sub_scope(server)):
            r = put_assignment(arm, server, scope, setup["principal"], guid)
            assert_error(r, 400, "RoleDefinitionDoesNotExist")
        _unchanged(server, before)
        r = put_assignment(arm, server, setup["scope"], setup["principal"], guid)
        assert r.status_code == 201, r.text


def test_duplicates_and_updates_that_are_not_allowed(
    server: KeylessServer, setup: dict[str, Any], unique: Unique
) -> None:
    scope, principal = setup["scope"], setup["principal"]
    existing = assign(server, scope, principal, READER)
    another = create_sp(server, unique("other-"))
    other_group = unique("rg-")
    create_group(server, other_group)
    before = all_assignments(server)
    with server.arm() as arm:
        r = put_assignment(arm, server, scope, principal, READER)
        message = assert_error(r, 409, "RoleAssignmentExists")
        assert message.startswith("The role assignment already exists.")
        assert existing["name"].replace("-", "") in message
        for change in (
            {"principal": another["objectId"], "role": READER, "scope": scope},
            {"principal": principal, "role": CONTRIBUTOR, "scope": scope},
            {"principal": principal, "role": READER, "scope": rg_scope(server, other_group)},
        ):
            r = put_assignment(
                arm, server, change["scope"], change["principal"], change["role"], existing["name"]
            )
            assert assert_error(r, 400, "RoleAssignmentUpdateNotPermitted") == (
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."
            )
        _unchanged(server, before)
        # What may change: the description (200, same assignment).
        r = put_assignment(
            arm, server, scope, principal, READER, existing["name"], description="now described"
        )
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["description"] == "now described"
        assert r.json()["properties"]["createdOn"] == existing["properties"]["createdOn"]


def test_request_shape_errors(server: KeylessServer, setup: dict[str, Any]) -> None:
    scope = setup["scope"]
    before = all_assignments(server)
    path = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    with server.arm() as arm:
        assert_error(
            arm.put(path, params={"api-version": AUTH_API}, content=b"{nope"), 400, "InvalidRequestContent"
        )
        assert_error(arm.put(path, params={"api-version": AUTH_API}, json={}), 400, "InvalidRequestContent")
        r = arm.put(
            path, params={"api-version": AUTH_API}, json={"properties": {"principalId": setup["principal"]}}
        )
        assert_error(r, 400, "InvalidRequestContent")
        assert_error(arm.put(path, json={"properties": {}}), 400, "MissingApiVersionParameter")
        assert_error(
            arm.put(path, params={"api-version": "2023-01-01"}, json={"properties": {}}),
            400,
            "InvalidApiVersionParameter",
        )
        assert_error(arm.post(path, params={"api-version": AUTH_API}), 405, "MethodNotAllowed")
        r = arm.get(
            f"{scope}/providers/Microsoft.Authorization/roleAssignments",
            params={"api-version": AUTH_API, "$filter": "roleName eq 'x'"},
        )
        assert_error(r, 400, "InvalidFilter")
        r = arm.get(
            f"{scope}/providers/Microsoft.Authorization/policyAssignments", params={"api-version": AUTH_API}
        )
        assert_error(r, 400, "InvalidResourceType")
        # Data-action roles need api-version 2018-01-01-preview or later.
        r = arm.put(
            path,
            params={"api-version": "2015-07-01"},
            json={
                "properties": {
                    "roleDefinitionId": role_id(server, "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
                    "principalId": setup["principal"],
                }
            },
        )
        assert_error(r, 400, "UnsupportedApiVersionForRoleDefinitionHasDataActions")
        # Absent: GET 404, DELETE 204.
        assert_error(arm.get(path, params={"api-version": AUTH_API}), 404, "RoleAssignmentNotFound")
        assert arm.delete(path, params={"api-version": AUTH_API}).status_code == 204
    _unchanged(server, before)


def test_role_definition_errors(server: KeylessServer, setup: dict[str, Any], unique: Unique) -> None:
    scope = setup["scope"]
    defs = f"{scope}/providers/Microsoft.Authorization/roleDefinitions"
    name = unique("custom ")

    def body(role_name: str, scopes: list[str], actions: list[str] | None = None) -> dict[str, Any]:
        return {
            "properties": {
                "roleName": role_name,
                "assignableScopes": scopes,
                "permissions": [{"actions": actions or ["*/read"]}],
            }
        }

    with server.arm() as arm:
        guid = str(uuid.uuid4())
        assert (
            arm.put(f"{defs}/{guid}", params={"api-version": AUTH_API}, json=body(name, [scope])).status_code
            == 201
        )
        roles_before, assignments_before = custom_roles(server), all_assignments(server)
        for builtin in (OWNER, READER):
            r = arm.put(
                f"{defs}/{builtin}", params={"api-version": AUTH_API}, json=body(unique("x "), [scope])
            )
            assert_error(r, 400, "BuiltInRoleDefinitionReadOnly")
            assert_error(
                arm.delete(f"{defs}/{builtin}", params={"api-version": AUTH_API}),
                400,
                "BuiltInRoleDefinitionReadOnly",
            )
        r = arm.put(
            f"{defs}/{uuid.uuid4()}", params={"api-version": AUTH_API}, json=body(name.upper(), [scope])
        )
        assert assert_error(r, 409, "RoleDefinitionWithSameNameExists") == (
            "A custom role with the same name already exists in this directory. Use a different name."
        )
        r = arm.put(
            f"{defs}/{uuid.uuid4()}", params={"api-version": AUTH_API}, json=body(unique("r "), ["/"])
        )
        assert_error(r, 400, "InvalidAssignableScope")
        r = arm.put(
            f"{defs}/{uuid.uuid4()}",
            params={"api-version": AUTH_API},
            json=body(unique("r "), [rg_scope(server, unique("rg-missing-"))]),
        )
        assert_error(r, 404, "ResourceGroupNotFound")
        r = arm.put(
            f"{defs}/{uuid.uuid4()}",
            params={"api-version": AUTH_API},
            json={"properties": {"roleName": unique("r "), "assignableScopes": [scope], "permissions": []}},
        )
        assert_error(r, 400, "InvalidRoleDefinition")
        r = arm.put(f"{defs}/not-a-guid", params={"api-version": AUTH_API}, json=body(unique("r "), [scope]))
        assert_error(r, 400, "InvalidRoleDefinitionId")
        assert custom_roles(server) == roles_before
        # In use: cannot be deleted.
        assign(server, scope, setup["principal"], guid)
        r = arm.delete(f"{defs}/{guid}", params={"api-version": AUTH_API})
        assert assert_error(r, 409, "RoleDefinitionHasAssignments") == (
            "There are existing role assignments referencing role."
        )
        assert custom_roles(server) == roles_before
        assert len(all_assignments(server)) == len(assignments_before) + 1


def test_the_last_admin_assignment_stays(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    before = all_assignments(srv)
    [owner] = before
    with srv.arm() as arm:
        r = arm.delete(owner["id"], params={"api-version": AUTH_API})
        assert (
            assert_error(r, 400, "LastRbacAdminAssignment") == "Cannot delete the last RBAC admin assignment."
        )
    _unchanged(srv, before)


def test_the_role_assignment_limit(
    new_server: Callable[..., KeylessServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYLESS_ROLE_ASSIGNMENT_LIMIT", "3")
    srv = new_server()
    create_group(srv, "rg1")
    identity = create_uami(srv, "rg1", "id1")["properties"]["principalId"]
    assign(srv, rg_scope(srv, "rg1"), identity, READER)
    assign(srv, uami_id(srv, "rg1", "id1"), identity, CONTRIBUTOR)  # 3 with the admin's Owner
    before = all_assignments(srv)
    with srv.arm() as arm:
        r = put_assignment(arm, srv, sub_scope(srv), identity, READER)
        assert (
            assert_error(r, 400, "RoleAssignmentLimitExceeded") == "No more role assignments can be created."
        )
    _unchanged(srv, before)
