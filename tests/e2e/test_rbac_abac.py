"""ABAC conditions evaluated end to end: role assignments with Azure-documented conditions created
through ARM (raw HTTP and azure-mgmt-authorization), then decided over the wire, by the resource
manager's authorizer (bearer tokens) and by ``POST {scope}/providers/Microsoft.Authorization/explain``
for data actions.  Without request attributes (the explain endpoint takes none) a condition is
decided only by its ``ActionMatches`` parts: actions it does not target are granted, the ones it
targets are not ("could not be evaluated"); the attribute-driven outcomes are covered against a real
RbacService in tests/unit/test_condition_eval.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.e2e.rbac_helpers import (
    AUTH_API,
    BLOB_READ,
    BLOB_READER,
    CONTRIBUTOR,
    MSI_API,
    RG_API,
    all_assignments,
    assert_error,
    assign,
    authorization_failed,
    create_group,
    create_sp,
    rg_scope,
    role_id,
    token_for,
    uami_id,
)
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]
CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
BLOBS = f"{CONTAINERS}/blobs"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
CONTAINER_NAME = "Microsoft.Storage/storageAccounts/blobServices/containers:name"
# storage-auth-abac-examples.md: "Read blobs in named containers" (read only in 'ingest').
READ_INGEST_ONLY = (
    f"((!(ActionMatches{{'{BLOB_READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR "
    f"(@Resource[{CONTAINER_NAME}] StringEquals 'ingest'))"
)
# storage-auth-abac-examples.md: "Read blobs with a blob index tag" (Project=Media).
READ_TAGGED = (
    f"((!(ActionMatches{{'{BLOB_READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR "
    f"(@Resource[{BLOBS}/tags:Project<$key_case_sensitive$>] StringEquals 'Media'))"
)
UAMI_WRITE = "Microsoft.ManagedIdentity/userAssignedIdentities/write"


def _container(srv: KeylessServer, group: str, name: str) -> str:
    return (
        f"{rg_scope(srv, group)}/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default/"
        f"containers/{name}"
    )


def _explain(srv: KeylessServer, scope: str, principal: str, action: str, data: bool) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.post(
            f"{scope}/providers/Microsoft.Authorization/explain",
            params={"api-version": AUTH_API},
            json={"principalId": principal, "action": action, "isDataAction": data},
        )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_a_blob_condition_is_decided_by_its_actions_without_attributes(
    server: KeylessServer, unique: Unique
) -> None:
    group = unique("rg-abac-")
    create_group(server, group)
    sp = create_sp(server, unique("abac-"))
    created = assign(
        server, rg_scope(server, group), sp["objectId"], BLOB_CONTRIBUTOR, condition=READ_INGEST_ONLY
    )
    assert created["properties"]["condition"] == READ_INGEST_ONLY
    assert created["properties"]["conditionVersion"] == "2.0"
    ingest = _container(server, group, "ingest")
    # The targeted action needs the container's name, which no explain request carries.
    why = _explain(server, ingest, sp["objectId"], BLOB_READ, True)
    assert (why["allowed"], why["decision"]) == (False, "not_granted")
    [miss] = why["nonMatchingAssignments"]
    assert miss["roleName"] == "Storage Blob Data Contributor" and miss["blockedByCondition"] is True
    assert miss["reason"] == (
        f"role grants via '{BLOB_READ}', but the condition could not be evaluated (no attributes: "
        "sub-operation); assignment does not grant"
    )
    # Actions the condition does not target are granted by the role as usual ...
    for action in (f"{BLOBS}/write", f"{BLOBS}/delete", f"{BLOBS}/add/action"):
        why = _explain(server, ingest, sp["objectId"], action, True)
        assert why["allowed"] is True, action
        assert [m["roleName"] for m in why["matchedAssignments"]] == ["Storage Blob Data Contributor"]
    # ... on the control plane too (the role's containers/write), and nothing the role lacks.
    assert _explain(server, ingest, sp["objectId"], f"{CONTAINERS}/write", False)["allowed"]
    why = _explain(server, ingest, sp["objectId"], f"{BLOBS}/tags/write", True)
    assert why["allowed"] is False and why["nonMatchingAssignments"][0]["blockedByCondition"] is False


def test_a_condition_created_with_the_sdk_round_trips_and_governs(
    server: KeylessServer, unique: Unique
) -> None:
    group = unique("rg-abac-")
    create_group(server, group)
    sp = create_sp(server, unique("abac-"))
    code = f"""
import json, os
from uuid import uuid4
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
auth = AuthorizationManagementClient(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
made = auth.role_assignments.create({rg_scope(server, group)!r}, str(uuid4()), {{
    "role_definition_id": {role_id(server, BLOB_READER)!r},
    "principal_id": {sp["objectId"]!r}, "principal_type": "ServicePrincipal",
    "condition": {READ_TAGGED!r}, "condition_version": "2.0"}})
got = auth.role_assignments.get_by_id(made.id)
print(json.dumps([got.condition, got.condition_version]))
"""
    result = server.run_python(code)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [READ_TAGGED, "2.0"]
    container = _container(server, group, "media")
    why = _explain(server, container, sp["objectId"], BLOB_READ, True)
    assert why["allowed"] is False and why["nonMatchingAssignments"][0]["blockedByCondition"] is True
    # The container itself (control plane, not targeted) may be read.
    assert _explain(server, container, sp["objectId"], f"{CONTAINERS}/read", False)["allowed"]


def test_the_resource_manager_grants_what_a_condition_leaves_alone(
    server: KeylessServer, unique: Unique
) -> None:
    group = unique("rg-abac-")
    create_group(server, group)
    sp = create_sp(server, unique("abac-"))
    # Contributor, except that writing identities needs an attribute no ARM request carries.
    condition = (
        f"((!(ActionMatches{{'{UAMI_WRITE}'}})) OR "
        "(@Request[Microsoft.ManagedIdentity/userAssignedIdentities:name] StringStartsWith 'ok-'))"
    )
    assign(server, rg_scope(server, group), sp["objectId"], CONTRIBUTOR, condition=condition)
    before = all_assignments(server)
    identity = uami_id(server, group, unique("ok-id"))
    with server.arm(token_for(server, sp)) as arm:
        r = arm.get(rg_scope(server, group), params={"api-version": RG_API})
        assert r.status_code == 200, r.text
        r = arm.put(rg_scope(server, group), params={"api-version": RG_API}, json={"location": "westeurope"})
        assert r.status_code == 200, r.text
        message = assert_error(
            arm.put(identity, params={"api-version": MSI_API}, json={"location": "westeurope"}),
            403,
            "AuthorizationFailed",
        )
    assert message == authorization_failed(sp["objectId"], UAMI_WRITE, identity).replace(
        "does not have authorization to", "does not have authorization or an ABAC condition not fulfilled to"
    )
    with server.arm() as arm:  # nothing was created
        assert arm.get(identity, params={"api-version": MSI_API}).status_code == 404
    assert all_assignments(server) == before
