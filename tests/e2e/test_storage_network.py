"""Storage's firewall with workloads' network origins (issue: Storage, part 5): IP rules match the
caller's public IP, virtual-network rules its subnet, public network access Disabled keeps everyone
out, the local host is always outside a Deny firewall, and the resource manager is never behind it.
Each rule is shown both letting in and keeping out, through azure-storage-blob under `keyless run
--as` a VM with Storage Blob Data Contributor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    SDK_STEPS,
    account_path,
    assert_blob_error,
    blob_client,
    create_account,
    grant,
    sdk_json,
    storage_token,
    update_account,
)
from tests.e2e.workload_helpers import Unique, cli_ok, create_group, create_vm
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


def _steps(srv: KeylessServer, account: str, vm_id: str, tag: str) -> dict[str, Any]:
    steps = [["upload", "ingest", f"{tag}.txt", tag], ["download", "ingest", f"{tag}.txt"]]
    return dict(
        sdk_json(
            srv,
            SDK_STEPS,
            {"url": f"https://{account}.blob.core.windows.net", "steps": steps, "mi": True},
            "--as",
            vm_id,
        )
    )


def test_ip_and_subnet_rules_let_in_and_keep_out(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    base = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/"
    subnet = (
        f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Network/"
        "virtualNetworks/media/subnets/encoders"
    )
    inside = create_vm(server, group, "ip-vm", "")
    in_subnet = create_vm(server, group, "subnet-vm", "")
    outside = create_vm(server, group, "outside-vm", "")
    cli_ok(server, "vm", "update", "-g", group, "-n", "ip-vm", "--public-ip", "52.10.20.30")
    cli_ok(
        server, "vm", "update", "-g", group, "-n", "subnet-vm", "--public-ip", "52.99.0.1", "--subnet", subnet
    )
    cli_ok(server, "vm", "update", "-g", group, "-n", "outside-vm", "--public-ip", "52.99.0.2")
    account = unique("st")
    doc = create_account(server, group, account)
    for principal in (inside, in_subnet, outside):
        grant(server, principal["identity"]["principalId"], BLOB_ROLES["contributor"], doc["id"])
    grant(server, server.admin["objectId"], BLOB_ROLES["reader"], doc["id"])
    with blob_client(server, account, storage_token(server)) as http:
        assert http.put("/ingest", params={"restype": "container"}).status_code == 201
    update_account(
        server,
        group,
        account,
        {
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "AzureServices",
                "ipRules": [{"value": "52.10.20.0/24", "action": "Allow"}],
                "virtualNetworkRules": [{"id": subnet, "action": "Allow"}],
            }
        },
    )
    assert _steps(server, account, base + "ip-vm", "a") == {"upload": "ok", "download": "a"}
    assert _steps(server, account, base + "subnet-vm", "b") == {"upload": "ok", "download": "b"}
    assert _steps(server, account, base + "outside-vm", "c") == {
        "upload": [403, "AuthorizationFailure"],
        "download": [403, "AuthorizationFailure"],
    }
    # The local host (the admin here) is outside a Deny firewall: no rule can name loopback.
    with blob_client(server, account, storage_token(server)) as http:
        assert_blob_error(http.get("/ingest/a.txt"), 403, "AuthorizationFailure")
    with server.arm() as arm:
        r = arm.put(
            account_path(server, group, account),
            params={"api-version": "2026-09-01"},
            json={
                "location": "westeurope",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "properties": {
                    "networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "127.0.0.0/8"}]}
                },
            },
        )
        assert r.status_code == 400, r.text
        # The resource manager is not behind the firewall.
        assert (
            arm.get(account_path(server, group, account), params={"api-version": "2026-09-01"}).status_code
            == 200
        )
    # Public network access Disabled keeps even the allowed ones out.
    update_account(server, group, account, {"publicNetworkAccess": "Disabled"})
    for vm in ("ip-vm", "subnet-vm"):
        assert _steps(server, account, base + vm, "d")["download"] == [403, "AuthorizationFailure"]
    # Back to Enabled and Allow: everyone with the role is in again, and nothing was written while out.
    update_account(
        server, group, account, {"publicNetworkAccess": "Enabled", "networkAcls": {"defaultAction": "Allow"}}
    )
    with blob_client(server, account, storage_token(server)) as http:
        listing = http.get("/ingest", params={"restype": "container", "comp": "list"}).text
    assert "<Name>a.txt</Name>" in listing and "<Name>b.txt</Name>" in listing
    assert "<Name>c.txt</Name>" not in listing and "<Name>d.txt</Name>" not in listing


def test_container_scope_roles_and_account_audience_tokens(server: KeylessServer, unique: Unique) -> None:
    """A role assigned at one container grants there only; a token for the account's own URL
    (``https://{account}.blob.core.windows.net``) is accepted as Entra issues it."""
    group = create_group(server, unique)
    account = unique("st")
    doc = create_account(server, group, account)
    with blob_client(server, account, storage_token(server)) as http:
        for container in ("shared", "private"):
            assert http.put(f"/{container}", params={"restype": "container"}).status_code == 201
    container_scope = f"{doc['id']}/blobServices/default/containers/shared"
    grant(server, server.admin["objectId"], BLOB_ROLES["contributor"], container_scope)
    with server.arm() as arm:
        listed = arm.get(
            f"{container_scope}/providers/Microsoft.Authorization/roleAssignments",
            params={"api-version": "2022-04-01", "$filter": "atScope()"},
        )
        assert listed.status_code == 200, listed.text
        assert container_scope in [a["properties"]["scope"] for a in listed.json()["value"]]
    own_audience = server.admin_token(f"https://{account}.blob.core.windows.net")
    for token in (storage_token(server), own_audience):
        with blob_client(server, account, token) as http:
            assert (
                http.put("/shared/a.txt", content=b"a", headers={"x-ms-blob-type": "BlockBlob"}).status_code
                == 201
            )
            assert http.get("/shared/a.txt").content == b"a"
            assert_blob_error(
                http.put("/private/a.txt", content=b"a", headers={"x-ms-blob-type": "BlockBlob"}),
                403,
                "AuthorizationPermissionMismatch",
            )
    # A scope under a container that does not exist in ARM's sense still needs the account.
    with server.arm() as arm:
        r = arm.put(
            f"{doc['id'].replace(account, unique('gone'))}/blobServices/default/containers/shared/providers/"
            f"Microsoft.Authorization/roleAssignments/{__import__('uuid').uuid4()}",
            params={"api-version": "2022-04-01"},
            json={
                "properties": {
                    "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                    "principalId": server.admin["objectId"],
                }
            },
        )
        assert r.status_code == 404, r.text
