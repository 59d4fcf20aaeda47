"""Shared by the RBAC end-to-end tests: principals with secrets, tokens, assignments, snapshots."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.arm_helpers import assert_arm_error, rg_path, uami_path
from tests.keyless_server import KeylessServer

AUTH_API = "2022-04-01"
DIRECTORY_API = "2024-01-01"
RG_API = "2021-04-01"
MSI_API = "2023-01-31"
VM_API = "2024-07-01"
SUB_API = "2022-12-01"

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMIN = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
MI_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"
MEDIA_OPERATOR = "e4395492-1534-4db2-bedf-88c14621589c"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"

FAILED = (
    "The client '{oid}' with object id '{oid}' does not have authorization to perform action "
    "'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, "
    "please refresh your credentials."
)


def authorization_failed(oid: str, action: str, scope: str) -> str:
    """ARM's message; the echoed scope spells the resource-group segment in lower case."""
    return FAILED.format(oid=oid, action=action, scope=scope.replace("/resourceGroups/", "/resourcegroups/"))


def sub_scope(srv: KeylessServer) -> str:
    return f"/subscriptions/{srv.subscription_id}"


# One definition of these paths and of the error check serves every e2e module.
rg_scope = rg_path
uami_id = uami_path


def role_id(srv: KeylessServer, guid: str) -> str:
    return f"{sub_scope(srv)}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def create_sp(srv: KeylessServer, name: str = "app") -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": DIRECTORY_API},
            json={"displayName": name},
        )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def token_for(srv: KeylessServer, sp: dict[str, Any]) -> str:
    return srv.client_token(sp["appId"], sp["clientSecret"])


def put_assignment(
    arm: httpx.Client,
    srv: KeylessServer,
    scope: str,
    principal_id: str,
    role: str,
    name: str | None = None,
    **extra: Any,
) -> httpx.Response:
    properties: dict[str, Any] = {"roleDefinitionId": role_id(srv, role), "principalId": principal_id}
    properties.update(extra)
    return arm.put(
        f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name or uuid.uuid4()}",
        params={"api-version": AUTH_API},
        json={"properties": properties},
    )


def assign(srv: KeylessServer, scope: str, principal_id: str, role: str, **extra: Any) -> dict[str, Any]:
    with srv.arm() as arm:
        r = put_assignment(arm, srv, scope, principal_id, role, **extra)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def create_group(srv: KeylessServer, group: str) -> None:
    with srv.arm() as arm:
        r = arm.put(rg_scope(srv, group), params={"api-version": RG_API}, json={"location": "westeurope"})
    assert r.status_code in (200, 201), r.text


def create_uami(srv: KeylessServer, group: str, name: str) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.put(
            uami_id(srv, group, name), params={"api-version": MSI_API}, json={"location": "westeurope"}
        )
    assert r.status_code in (200, 201), r.text
    created: dict[str, Any] = r.json()
    return created


def all_assignments(srv: KeylessServer) -> list[dict[str, Any]]:
    """Every role assignment in the subscription (the admin's view), for "nothing changed" checks."""
    with srv.arm() as arm:
        r = arm.get(
            f"{sub_scope(srv)}/providers/Microsoft.Authorization/roleAssignments",
            params={"api-version": AUTH_API},
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["value"]
        while r.json().get("nextLink"):
            r = arm.get(r.json()["nextLink"])
            assert r.status_code == 200, r.text
            items.extend(r.json()["value"])
    return sorted(items, key=lambda a: a["id"])


def custom_roles(srv: KeylessServer) -> list[dict[str, Any]]:
    with srv.arm() as arm:
        r = arm.get(
            f"{sub_scope(srv)}/providers/Microsoft.Authorization/roleDefinitions",
            params={"api-version": AUTH_API, "$filter": "type eq 'CustomRole'"},
        )
    assert r.status_code == 200, r.text
    return sorted(r.json()["value"], key=lambda d: d["name"])


assert_error = assert_arm_error
