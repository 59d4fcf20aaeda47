"""The RBAC issue's program, unchanged, with azure-mgmt-authorization under `keyless run`; then the
VM's own identity (under `keyless run --as`) can do what Media Services Media Operator allows on
that scope and below, and nothing more."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.e2e.rbac_helpers import (
    AUTH_API,
    MEDIA_OPERATOR,
    VM_API,
    assert_error,
    authorization_failed,
    create_group,
    rg_scope,
    sub_scope,
)
from tests.keyless_server import KeylessServer

ISSUE_PROGRAM = """
import json, os
from uuid import uuid4
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
scope, vm_principal_id = SCOPE, VM_PRINCIPAL_ID

auth = AuthorizationManagementClient(DefaultAzureCredential(), sub)
auth.role_assignments.create(scope, str(uuid4()), {
    "role_definition_id": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/e4395492-1534-4db2-bedf-88c14621589c",
    "principal_id": vm_principal_id, "principal_type": "ServicePrincipal"})
print(json.dumps([a.as_dict() for a in auth.role_assignments.list_for_scope(
    scope, filter=f"principalId eq '{vm_principal_id}'")]))
"""

# The rest of the client surface an admin script uses, in one program.
SDK_TOUR = """
import json, os
from uuid import uuid4
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
scope, principal, group = SCOPE, VM_PRINCIPAL_ID, GROUP
auth = AuthorizationManagementClient(DefaultAzureCredential(), sub)
out = {}
reader = list(auth.role_definitions.list(scope, filter="roleName eq 'Reader'"))
out["reader"] = [(d.name, d.role_name, d.role_type, d.permissions[0].actions) for d in reader]
out["by_id"] = auth.role_definitions.get_by_id(reader[0].id).role_name
out["builtins"] = len(list(auth.role_definitions.list(f"/subscriptions/{sub}", filter="type eq 'BuiltInRole'")))
name = str(uuid4())
created = auth.role_assignments.create(scope, name, {
    "role_definition_id": reader[0].id, "principal_id": principal, "principal_type": "ServicePrincipal",
    "description": "read the group"})
out["created"] = created.as_dict()
out["get"] = auth.role_assignments.get(scope, name).as_dict()
out["get_by_id"] = auth.role_assignments.get_by_id(created.id).name
try:
    auth.role_assignments.create(scope, str(uuid4()), {"role_definition_id": reader[0].id, "principal_id": principal})
except HttpResponseError as exc:
    out["duplicate"] = [exc.status_code, exc.error.code]
out["at_scope"] = sorted(a.name for a in auth.role_assignments.list_for_scope(scope, filter="atScope()"))
out["for_group"] = sorted(a.name for a in auth.role_assignments.list_for_resource_group(group))
out["for_sub"] = sorted(a.name for a in auth.role_assignments.list_for_subscription(
    filter=f"assignedTo('{principal}')"))
out["permissions"] = [p.as_dict() for p in auth.permissions.list_for_resource_group(group)]
deleted = auth.role_assignments.delete(scope, name)
out["deleted"] = deleted.name
out["deleted_again"] = auth.role_assignments.delete(scope, name)
try:
    auth.role_assignments.get(scope, name)
except ResourceNotFoundError as exc:
    out["gone"] = [exc.status_code, exc.error.code]
print(json.dumps(out))
"""

# Runs as the VM: its identity, no secret.
AS_THE_VM = """
import json, os
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
sub, group, other = SUB, GROUP, OTHER
credential = ManagedIdentityCredential()
out = {}
auth = AuthorizationManagementClient(credential, sub)
out["permissions"] = [p.as_dict() for p in auth.permissions.list_for_resource_group(group)]
rm = ResourceManagementClient(credential, sub)
out["own_group"] = rm.resource_groups.get(group).name
for label, call in (("other_group", lambda: rm.resource_groups.get(other)),
                    ("create_group", lambda: rm.resource_groups.create_or_update(group + "x", {"location": "westeurope"}))):
    try:
        call()
        out[label] = "allowed"
    except HttpResponseError as exc:
        out[label] = [exc.status_code, exc.error.code, exc.error.message]
print(json.dumps(out))
"""


def _run(srv: KeylessServer, code: str, *run_args: str, **values: str) -> Any:
    head = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    result = srv.run_python(head + code, *run_args)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def _vm(srv: KeylessServer, group: str, name: str) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.put(
            f"{rg_scope(srv, group)}/providers/Microsoft.Compute/virtualMachines/{name}",
            params={"api-version": VM_API},
            json={
                "location": "westeurope",
                "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"}},
                "identity": {"type": "SystemAssigned"},
            },
        )
    assert r.status_code in (200, 201), r.text
    created: dict[str, Any] = r.json()
    return created


def test_the_issue_program_grants_media_operator_to_a_vm(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group, other, vm_name = unique("rg-media-"), unique("rg-other-"), unique("vm")
    create_group(server, group)
    create_group(server, other)
    vm = _vm(server, group, vm_name)
    principal = vm["identity"]["principalId"]
    scope = rg_scope(server, group)

    listed = _run(server, ISSUE_PROGRAM, SCOPE=scope, VM_PRINCIPAL_ID=principal)
    assert len(listed) == 1
    assignment = listed[0]
    assert assignment["role_definition_id"] == (
        f"/subscriptions/{server.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{MEDIA_OPERATOR}"
    )
    assert assignment["principal_id"] == principal
    assert assignment["principal_type"] == "ServicePrincipal"
    assert assignment["scope"] == scope
    assert assignment["type"] == "Microsoft.Authorization/roleAssignments"
    assert (
        assignment["id"] == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment['name']}"
    )

    # From now on the VM's identity can do exactly what the role allows, there and below.
    seen = _run(server, AS_THE_VM, "--as", vm_name, SUB=server.subscription_id, GROUP=group, OTHER=other)
    actions = seen["permissions"][0]["actions"]
    assert "Microsoft.Media/mediaservices/assets/*" in actions
    assert seen["permissions"][0]["not_actions"] == [
        "Microsoft.Media/mediaservices/assets/getEncryptionKey/action",
        "Microsoft.Media/mediaservices/streamingLocators/listContentKeys/action",
    ]
    assert seen["own_group"] == group  # the role includes resourceGroups/read
    status, code, message = seen["other_group"]
    assert (status, code) == (403, "AuthorizationFailed")
    assert message == authorization_failed(
        principal, "Microsoft.Resources/subscriptions/resourceGroups/read", rg_scope(server, other)
    )
    assert seen["create_group"][:2] == [403, "AuthorizationFailed"]

    # Below the scope: a media account's assets, but not its content keys; above it: nothing.
    account = f"{scope}/providers/Microsoft.Media/mediaservices/ams1"
    with server.arm() as arm:
        for target, action, allowed in (
            (f"{account}/assets/a1", "Microsoft.Media/mediaservices/assets/write", True),
            (f"{account}/transforms/t1/jobs/j1", "Microsoft.Media/mediaservices/transforms/jobs/write", True),
            (f"{account}/assets/a1", "Microsoft.Media/mediaservices/assets/getEncryptionKey/action", False),
            (account, "Microsoft.Media/mediaservices/write", False),
            (sub_scope(server), "Microsoft.Media/mediaservices/assets/write", False),
        ):
            r = arm.post(
                f"{target}/providers/Microsoft.Authorization/explain",
                params={"api-version": AUTH_API},
                json={"principalId": principal, "action": action},
            )
            assert r.status_code == 200, r.text
            assert r.json()["allowed"] is allowed, (target, action, r.json()["summary"])


def test_the_sdk_surface_an_admin_script_uses(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-sdk-")
    create_group(server, group)
    vm = _vm(server, group, unique("vm"))
    principal = vm["identity"]["principalId"]
    scope = rg_scope(server, group)
    out = _run(server, SDK_TOUR, SCOPE=scope, VM_PRINCIPAL_ID=principal, GROUP=group)
    assert out["reader"] == [["acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "BuiltInRole", ["*/read"]]]
    assert out["by_id"] == "Reader"
    assert out["builtins"] >= 25
    created = out["created"]
    assert created["description"] == "read the group"
    assert created["scope"] == scope
    assert created["role_definition_id"].endswith("/acdd72a7-3385-48ef-bd42-f606fba81ae7")
    assert out["get"] == created
    assert out["get_by_id"] == created["name"]
    assert out["duplicate"] == [409, "RoleAssignmentExists"]
    assert created["name"] in out["at_scope"]
    assert created["name"] in out["for_group"]
    assert created["name"] in out["for_sub"]
    assert out["permissions"] == [
        {"actions": ["*"], "not_actions": [], "data_actions": [], "not_data_actions": []}
    ]  # the admin's Owner, inherited from the subscription
    assert out["deleted"] == created["name"]
    assert out["deleted_again"] is None  # 204
    assert out["gone"] == [404, "RoleAssignmentNotFound"]


def test_api_versions_the_sdk_sends_are_accepted_and_others_refused(server: KeylessServer) -> None:
    path = f"{sub_scope(server)}/providers/Microsoft.Authorization/roleAssignments"
    with server.arm() as arm:
        for version in (
            "2015-07-01",
            "2018-01-01-preview",
            "2018-09-01-preview",
            "2020-04-01-preview",
            "2020-10-01-preview",
            "2022-04-01",
        ):
            r = arm.get(path, params={"api-version": version})
            assert r.status_code == 200, (version, r.text)
        for version in ("2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview"):
            r = arm.get(path.replace("roleAssignments", "roleDefinitions"), params={"api-version": version})
            assert r.status_code == 200, (version, r.text)
        message = assert_error(
            arm.get(path, params={"api-version": "2099-01-01"}), 400, "InvalidApiVersionParameter"
        )
        assert message.startswith("The api-version '2099-01-01' is invalid. The supported versions are '")
        assert "2022-04-01" in message
        assert_error(arm.get(path), 400, "MissingApiVersionParameter")
        assert_error(
            arm.get(rg_scope(server, "nope"), params={"api-version": "2099-01-01"}),
            400,
            "InvalidApiVersionParameter",
        )
