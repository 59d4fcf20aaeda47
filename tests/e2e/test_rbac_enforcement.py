"""Enforcement on every resource-manager operation: a missing role is refused with ARM's
AuthorizationFailed, a granted one works at its scope and below (not above), changes take effect on
the next request — on every replica — and nobody grants themselves more than they have."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.e2e.rbac_helpers import (
    AUTH_API,
    BLOB_READ,
    BLOB_READER,
    CONTRIBUTOR,
    DIRECTORY_API,
    MI_OPERATOR,
    MSI_API,
    OWNER,
    READER,
    RG_API,
    SUB_API,
    USER_ACCESS_ADMIN,
    VM_API,
    all_assignments,
    assert_error,
    assign,
    authorization_failed,
    create_group,
    create_sp,
    create_uami,
    put_assignment,
    rg_scope,
    sub_scope,
    token_for,
    uami_id,
)
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]
RG_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
RG_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
UAMI_READ = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
UAMI_WRITE = "Microsoft.ManagedIdentity/userAssignedIdentities/write"
RA_WRITE = "Microsoft.Authorization/roleAssignments/write"
FIC_BODY = {
    "properties": {
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:contoso/app:ref:refs/heads/main",
        "audiences": ["api://AzureADTokenExchange"],
    }
}


def test_a_principal_without_a_role_is_refused_with_arms_message(
    server: KeylessServer, unique: Unique
) -> None:
    group = unique("rg-")
    create_group(server, group)
    sp = create_sp(server, unique("norole-"))
    oid = sp["objectId"]
    identity = uami_id(server, group, "id1")
    with server.arm(token_for(server, sp)) as arm:
        r = arm.get(rg_scope(server, group), params={"api-version": RG_API})
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            oid, RG_READ, rg_scope(server, group)
        )
        r = arm.put(identity, params={"api-version": MSI_API}, json={"location": "westeurope"})
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(oid, UAMI_WRITE, identity)
        r = arm.get(
            f"{rg_scope(server, group)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            params={"api-version": MSI_API},
        )
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            oid, UAMI_READ, rg_scope(server, group)
        )
        r = arm.get(f"{sub_scope(server)}/resourcegroups", params={"api-version": RG_API})
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            oid, RG_READ, sub_scope(server)
        )
        r = arm.get(sub_scope(server), params={"api-version": SUB_API})
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            oid, "Microsoft.Resources/subscriptions/read", sub_scope(server)
        )
        assert arm.get("/subscriptions", params={"api-version": SUB_API}).json() == {"value": []}
        assert arm.get("/tenants", params={"api-version": SUB_API}).json() == {"value": []}
        # The directory is the admin's alone.
        r = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": DIRECTORY_API},
            json={"displayName": "mine"},
        )
        assert_error(r, 403, "AuthorizationFailed")
    with server.arm() as arm:
        assert arm.get(identity, params={"api-version": MSI_API}).status_code == 404  # nothing was made


def test_a_granted_role_works_at_its_scope_and_below_but_not_above(
    server: KeylessServer, unique: Unique
) -> None:
    group, other = unique("rg-"), unique("rg-")
    create_group(server, group)
    create_group(server, other)
    sp = create_sp(server, unique("contrib-"))
    assign(server, rg_scope(server, group), sp["objectId"], CONTRIBUTOR)
    token = token_for(server, sp)
    identity = uami_id(server, group, "id1")
    with server.arm(token) as arm:
        assert arm.get(rg_scope(server, group), params={"api-version": RG_API}).status_code == 200
        r = arm.put(identity, params={"api-version": MSI_API}, json={"location": "westeurope"})
        assert r.status_code == 201, r.text
        r = arm.put(
            f"{identity}/federatedIdentityCredentials/github", params={"api-version": MSI_API}, json=FIC_BODY
        )
        assert r.status_code == 201, r.text  # a child resource: below the scope
        r = arm.put(
            uami_id(server, other, "id1"), params={"api-version": MSI_API}, json={"location": "westeurope"}
        )
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            sp["objectId"], UAMI_WRITE, uami_id(server, other, "id1")
        )
        assert_error(
            arm.get(rg_scope(server, other), params={"api-version": RG_API}), 403, "AuthorizationFailed"
        )
        assert_error(arm.get(sub_scope(server), params={"api-version": SUB_API}), 403, "AuthorizationFailed")
        r = arm.put(
            rg_scope(server, unique("rg-")), params={"api-version": RG_API}, json={"location": "westeurope"}
        )
        assert assert_error(r, 403, "AuthorizationFailed").endswith(
            "or the scope is invalid. If access was recently granted, please refresh your credentials."
        )
        # Listing at the tenant root shows what the caller may read: its own assignment here.
        r = arm.get("/providers/Microsoft.Authorization/roleAssignments", params={"api-version": AUTH_API})
        assert r.status_code == 200, r.text
        assert {a["properties"]["scope"] for a in r.json()["value"]} == {rg_scope(server, group)}

    # An assignment on one resource: that resource and its children, not its group.
    reader = create_sp(server, unique("reader-"))
    assign(server, identity, reader["objectId"], READER)
    with server.arm(token_for(server, reader)) as arm:
        assert arm.get(identity, params={"api-version": MSI_API}).status_code == 200
        r = arm.get(f"{identity}/federatedIdentityCredentials", params={"api-version": MSI_API})
        assert r.status_code == 200 and [f["name"] for f in r.json()["value"]] == ["github"]
        assert_error(
            arm.get(rg_scope(server, group), params={"api-version": RG_API}), 403, "AuthorizationFailed"
        )
        r = arm.delete(identity, params={"api-version": MSI_API})
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            reader["objectId"], "Microsoft.ManagedIdentity/userAssignedIdentities/delete", identity
        )

    # The Contributor deletes its group and polls the operation it got back; others may not poll it.
    with server.arm(token) as arm:
        r = arm.delete(rg_scope(server, group), params={"api-version": RG_API})
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        assert arm.get(location).status_code == 200
    with server.arm(token_for(server, reader)) as arm:
        assert_error(arm.get(location), 403, "AuthorizationFailed")


def test_grants_and_revocations_count_from_the_next_request(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    create_group(server, group)
    sp = create_sp(server, unique("app-"))
    token = token_for(server, sp)  # one token throughout: no refresh needed, unlike Azure
    with server.arm(token) as arm:
        assert arm.get(rg_scope(server, group), params={"api-version": RG_API}).status_code == 403
        created = assign(server, rg_scope(server, group), sp["objectId"], READER)
        assert arm.get(rg_scope(server, group), params={"api-version": RG_API}).status_code == 200
        with server.arm() as admin:
            r = admin.delete(created["id"], params={"api-version": AUTH_API})
            assert r.status_code == 200 and r.json()["name"] == created["name"]
        assert arm.get(rg_scope(server, group), params={"api-version": RG_API}).status_code == 403


def test_nobody_grants_themselves_more_than_they_have(server: KeylessServer, unique: Unique) -> None:
    group, other = unique("rg-"), unique("rg-")
    create_group(server, group)
    create_group(server, other)
    contributor = create_sp(server, unique("contrib-"))
    admin_of_group = create_sp(server, unique("uaa-"))
    bystander = create_sp(server, unique("bystander-"))
    mine = assign(server, rg_scope(server, group), contributor["objectId"], CONTRIBUTOR)
    assign(server, rg_scope(server, group), admin_of_group["objectId"], USER_ACCESS_ADMIN)
    before = all_assignments(server)

    with server.arm(token_for(server, contributor)) as arm:
        name = str(uuid.uuid4())
        r = put_assignment(arm, server, rg_scope(server, group), contributor["objectId"], OWNER, name)
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            contributor["objectId"],
            RA_WRITE,
            f"{rg_scope(server, group)}/providers/Microsoft.Authorization/roleAssignments/{name}",
        )
        r = arm.delete(mine["id"], params={"api-version": AUTH_API})
        assert_error(r, 403, "AuthorizationFailed")
        r = arm.put(
            f"{rg_scope(server, group)}/providers/Microsoft.Authorization/roleDefinitions/{uuid.uuid4()}",
            params={"api-version": AUTH_API},
            json={
                "properties": {
                    "roleName": unique("all "),
                    "assignableScopes": [rg_scope(server, group)],
                    "permissions": [{"actions": ["*"]}],
                }
            },
        )
        assert_error(r, 403, "AuthorizationFailed")

    with server.arm(token_for(server, admin_of_group)) as arm:
        # Within its group a User Access Administrator may grant; above or beside it, not.
        for scope in (rg_scope(server, other), sub_scope(server)):
            r = put_assignment(arm, server, scope, admin_of_group["objectId"], OWNER)
            assert_error(r, 403, "AuthorizationFailed")
        r = put_assignment(arm, server, rg_scope(server, group), bystander["objectId"], READER)
        assert r.status_code == 201, r.text
        granted = r.json()
    after = all_assignments(server)
    assert [a for a in after if a["name"] != granted["name"]] == before


def test_assigning_someone_elses_identity_needs_the_assign_action(
    server: KeylessServer, unique: Unique
) -> None:
    group, identities = unique("rg-"), unique("rg-ids-")
    create_group(server, group)
    create_group(server, identities)
    identity = create_uami(server, identities, "shared")["id"]
    sp = create_sp(server, unique("deployer-"))
    assign(server, rg_scope(server, group), sp["objectId"], CONTRIBUTOR)
    vm = f"{rg_scope(server, group)}/providers/Microsoft.Compute/virtualMachines/vm1"
    body = {
        "location": "westeurope",
        "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"}},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}},
    }
    with server.arm(token_for(server, sp)) as arm:
        r = arm.put(vm, params={"api-version": VM_API}, json=body)
        assert assert_error(r, 403, "AuthorizationFailed") == authorization_failed(
            sp["objectId"], "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", identity
        )
        assert arm.get(vm, params={"api-version": VM_API}).status_code == 404
        assign(server, identity, sp["objectId"], MI_OPERATOR)
        r = arm.put(vm, params={"api-version": VM_API}, json=body)
        assert r.status_code == 201, r.text
        assert list(r.json()["identity"]["userAssignedIdentities"]) == [identity]


def test_a_group_assignment_grants_its_members(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    create_group(server, group)
    sp = create_sp(server, unique("member-"))
    with server.arm() as arm:
        r = arm.post(
            "/providers/Keyless.Directory/groups",
            params={"api-version": DIRECTORY_API},
            json={"displayName": unique("readers-")},
        )
        assert r.status_code == 201, r.text
        security_group = r.json()["objectId"]
        r = arm.put(
            f"/providers/Keyless.Directory/groups/{security_group}/members/{sp['objectId']}",
            params={"api-version": DIRECTORY_API},
        )
        assert r.status_code == 201 and r.json()["members"] == [sp["objectId"]]
    created = assign(server, rg_scope(server, group), security_group, READER, principalType="Group")
    assert created["properties"]["principalType"] == "Group"
    token = token_for(server, sp)
    with server.arm(token) as arm:
        assert arm.get(rg_scope(server, group), params={"api-version": RG_API}).status_code == 200
    with server.arm() as arm:
        path = f"{rg_scope(server, group)}/providers/Microsoft.Authorization/roleAssignments"
        by_member = arm.get(
            path, params={"api-version": AUTH_API, "$filter": f"assignedTo('{sp['objectId']}')"}
        )
        assert [a["name"] for a in by_member.json()["value"]] == [created["name"]]
        direct = arm.get(
            path, params={"api-version": AUTH_API, "$filter": f"principalId eq '{sp['objectId']}'"}
        )
        assert direct.json()["value"] == []
        r = arm.delete(
            f"/providers/Keyless.Directory/groups/{security_group}/members/{sp['objectId']}",
            params={"api-version": DIRECTORY_API},
        )
        assert r.status_code == 200
    with server.arm(token) as arm:
        assert_error(
            arm.get(rg_scope(server, group), params={"api-version": RG_API}), 403, "AuthorizationFailed"
        )


def test_an_assignment_with_a_condition_does_not_grant(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    create_group(server, group)
    sp = create_sp(server, unique("abac-"))
    condition = "((!(ActionMatches{'Microsoft.Resources/subscriptions/resourceGroups/read'})))"
    created = assign(
        server, rg_scope(server, group), sp["objectId"], READER, condition=condition, conditionVersion="2.0"
    )
    assert created["properties"]["condition"] == condition
    assert created["properties"]["conditionVersion"] == "2.0"
    with server.arm(token_for(server, sp)) as arm:
        message = assert_error(
            arm.get(rg_scope(server, group), params={"api-version": RG_API}), 403, "AuthorizationFailed"
        )
    assert message == authorization_failed(sp["objectId"], RG_READ, rg_scope(server, group)).replace(
        "does not have authorization to", "does not have authorization or an ABAC condition not fulfilled to"
    )


def test_owner_cannot_read_blobs_without_a_data_role(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    create_group(server, group)
    sp = create_sp(server, unique("owner-"))
    assign(server, rg_scope(server, group), sp["objectId"], OWNER)
    container = (
        f"{rg_scope(server, group)}/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default/"
        "containers/c1"
    )
    question = {"principalId": sp["objectId"], "action": BLOB_READ, "isDataAction": True}
    with server.arm() as arm:
        r = arm.post(
            f"{container}/providers/Microsoft.Authorization/explain",
            params={"api-version": AUTH_API},
            json=question,
        )
        assert r.status_code == 200, r.text
        why = r.json()
        assert (why["allowed"], why["decision"], why["isDataAction"]) == (False, "not_granted", True)
        [miss] = why["nonMatchingAssignments"]
        assert miss["roleName"] == "Owner"
        assert miss["reason"] == "control-plane wildcard '*' does not grant data actions"
        # The same Owner may manage the container (a control-plane action).
        r = arm.post(
            f"{container}/providers/Microsoft.Authorization/explain",
            params={"api-version": AUTH_API},
            json={
                **question,
                "action": "Microsoft.Storage/storageAccounts/blobServices/containers/write",
                "isDataAction": False,
            },
        )
        assert r.json()["allowed"] is True
    with server.arm(token_for(server, sp)) as arm:
        r = arm.get(
            f"{rg_scope(server, group)}/providers/Microsoft.Authorization/permissions",
            params={"api-version": AUTH_API},
        )
        assert r.json() == {
            "value": [{"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}]
        }
    assign(server, rg_scope(server, group), sp["objectId"], BLOB_READER)
    with server.arm() as arm:
        r = arm.post(
            f"{container}/providers/Microsoft.Authorization/explain",
            params={"api-version": AUTH_API},
            json=question,
        )
        why = r.json()
        assert why["allowed"] is True
        assert [m["roleName"] for m in why["matchedAssignments"]] == ["Storage Blob Data Reader"]
        assert why["matchedAssignments"][0]["inheritedFrom"] == rg_scope(server, group)


def test_replicas_sharing_a_database_agree_at_once(
    new_server: Callable[..., KeylessServer], tmp_path: Path
) -> None:
    first = new_server()
    # A second replica: its own data directory, the same database, the same root key and CA.
    data = tmp_path / "replica-b"
    data.mkdir()
    shutil.copy(first.data_dir / "root.key", data / "root.key")
    shutil.copytree(first.data_dir / "ca", data / "ca")
    url = first.database_url or f"sqlite:///{first.data_dir / 'keyless.db'}"
    second = KeylessServer(data, url).start()
    try:
        create_group(first, "rg1")
        sp = create_sp(first, "app")
        token = token_for(second, sp)
        target = rg_scope(first, "rg1")
        with first.arm(token) as on_first, second.arm(token) as on_second:
            assert on_second.get(target, params={"api-version": RG_API}).status_code == 403
            created = assign(first, target, sp["objectId"], CONTRIBUTOR)
            assert on_second.get(target, params={"api-version": RG_API}).status_code == 200
            r = on_second.put(
                uami_id(first, "rg1", "id1"), params={"api-version": MSI_API}, json={"location": "westeurope"}
            )
            assert r.status_code == 201, r.text
            with second.arm() as admin_on_second:
                r = admin_on_second.delete(created["id"], params={"api-version": AUTH_API})
                assert r.status_code == 200
            assert on_first.get(target, params={"api-version": RG_API}).status_code == 403
            assert on_second.get(target, params={"api-version": RG_API}).status_code == 403
    finally:
        second.stop()


def test_deleting_a_scope_deletes_the_role_assignments_at_and_below_it(
    server: KeylessServer, unique: Unique
) -> None:
    """A group created again under the same name does not inherit its predecessor's grants."""
    group, identity = unique("rg-"), unique("id-")
    create_group(server, group)
    create_uami(server, group, identity)
    sp = create_sp(server, unique("app-"))
    at_group = assign(server, rg_scope(server, group), sp["objectId"], READER)
    at_identity = assign(server, uami_id(server, group, identity), sp["objectId"], READER)
    names = {a["name"] for a in all_assignments(server)}
    assert {at_group["name"], at_identity["name"]} <= names
    with server.arm() as admin:
        deleted = admin.delete(rg_scope(server, group), params={"api-version": RG_API})
        assert deleted.status_code == 202
    names = {a["name"] for a in all_assignments(server)}
    assert at_group["name"] not in names and at_identity["name"] not in names
    create_group(server, group)
    with server.arm(token_for(server, sp)) as arm:
        r = arm.get(rg_scope(server, group), params={"api-version": RG_API})
    assert_error(r, 403, "AuthorizationFailed")
