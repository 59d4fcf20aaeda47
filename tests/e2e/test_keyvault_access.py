"""Who reaches a vault: the issue's program under `keyless run --as app-vm` with a managed identity;
access-policy and RBAC vaults with a permitted and a refused caller; and a firewall that lets in
and keeps out by public IP, subnet and public network access (issue: Key Vault)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.keyvault_helpers import (
    DATA_API,
    assert_kv_error,
    create_vault,
    grant,
    policy,
    sdk_json,
    update_vault,
    vault_client,
    vault_path,
    vault_token,
)
from tests.e2e.workload_helpers import VM_API, Unique, cli_ok, create_group, create_vm, get_doc, program
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

# The issue's program, as written (plus printing what it saw).
ISSUE_PROGRAM = """
import json, os
from azure.identity import ManagedIdentityCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
from azure.keyvault.secrets import SecretClient
url = json.loads(DATA)["url"]
dek = os.urandom(32)
cred = ManagedIdentityCredential()
key = KeyClient(url, cred).create_rsa_key("cmk", size=3072)
crypto = CryptographyClient(key, cred)
wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
print(json.dumps({"secret": SecretClient(url, cred).get_secret("db-password").value, "kid": key.id}))
"""

# What a caller sees for one call: the value, or the error's status and codes.
PROBE = """
import json
from azure.identity import ManagedIdentityCredential, DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.keys import KeyClient
from azure.core.exceptions import HttpResponseError
args = json.loads(DATA)
cred = ManagedIdentityCredential() if args["mi"] else DefaultAzureCredential()
out = {}
for op in args["ops"]:
    try:
        if op == "get-secret":
            out[op] = SecretClient(args["url"], cred).get_secret("db-password").value
        elif op == "list-secrets":
            out[op] = sorted(p.name for p in SecretClient(args["url"], cred).list_properties_of_secrets())
        elif op == "set-secret":
            out[op] = SecretClient(args["url"], cred).set_secret("other", "v").name
        elif op == "get-key":
            out[op] = KeyClient(args["url"], cred).get_key("cmk").name
        elif op == "create-key":
            out[op] = KeyClient(args["url"], cred).create_rsa_key("made").name
    except HttpResponseError as exc:
        inner = (exc.response.json().get("error") or {}).get("innererror", {}).get("code")
        out[op] = [exc.status_code, exc.error.code if exc.error else None, inner]
print(json.dumps(out))
"""


def _probe(srv: KeylessServer, url: str, ops: list[str], as_: str | None = None) -> dict[str, Any]:
    args = ("--as", as_) if as_ else ()
    return dict(sdk_json(srv, program(PROBE, {"url": url, "ops": ops, "mi": as_ is not None}), *args))


def _set_secret(srv: KeylessServer, vault: str, value: str) -> None:
    with vault_client(srv, vault, vault_token(srv)) as kv:
        r = kv.put("/secrets/db-password", params={"api-version": DATA_API}, json={"value": value})
    assert r.status_code == 200, r.text


def _principal(vm: dict[str, Any]) -> str:
    return str(vm["identity"]["principalId"])


def test_issue_program_runs_unchanged_as_a_vm(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, "app-vm", "")
    other = create_vm(server, group, "other-vm", "")
    name = unique("cmk")
    create_vault(
        server,
        group,
        name,
        policies=[
            policy(server, _principal(vm), keys=["create", "get", "wrapKey", "unwrapKey"], secrets=["get"])
        ],
    )
    _set_secret(server, name, "s3cr3t")
    url = f"https://{name}.vault.azure.net"
    vm_id = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/app-vm"
    out = sdk_json(server, program(ISSUE_PROGRAM, {"url": url}), "--as", vm_id)
    assert out["secret"] == "s3cr3t" and out["kid"].startswith(f"{url}/keys/cmk/")
    # The other VM holds no access policy: the real 403 with ForbiddenByPolicy, and nothing made.
    other_id = vm_id.replace("app-vm", "other-vm")
    seen = _probe(server, url, ["get-secret", "create-key"], other_id)
    assert seen == {
        "get-secret": [403, "Forbidden", "ForbiddenByPolicy"],
        "create-key": [403, "Forbidden", "ForbiddenByPolicy"],
    }
    with vault_client(server, name, vault_token(server)) as kv:
        assert kv.get("/secrets/db-password/", params={"api-version": DATA_API}).json()["value"] == "s3cr3t"
        listed = kv.get("/keys", params={"api-version": DATA_API}).json()["value"]
    assert [item["kid"].rsplit("/", 1)[1] for item in listed] == ["cmk"]
    # The policy's 403 names the caller and the permission, as Key Vault words it.
    token = _vm_vault_token(server, other_id)
    with vault_client(server, name, token) as kv:
        message = assert_kv_error(
            kv.get("/secrets/db-password", params={"api-version": DATA_API}),
            403,
            "Forbidden",
            "ForbiddenByPolicy",
        )
    assert message.startswith("The user, group or application 'appid=")
    assert (
        f"oid={_principal(other)};" in message
        and "does not have secrets get permission on key vault" in message
    )


def test_rbac_vault_permits_and_refuses_by_role(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    user = create_vm(server, group, "secrets-user-vm", "")
    reader = create_vm(server, group, "reader-vm", "")
    name = unique("rbac")
    doc = create_vault(server, group, name, rbac=True)
    scope = doc["id"]
    grant(server, _principal(user), "Key Vault Secrets User", scope)
    grant(server, _principal(reader), "Key Vault Reader", scope)
    grant(server, server.admin["objectId"], "Key Vault Administrator", scope)
    _set_secret(server, name, "rbac-value")
    url = f"https://{name}.vault.azure.net"
    base = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/"
    seen = _probe(server, url, ["get-secret", "set-secret"], base + "secrets-user-vm")
    assert seen["get-secret"] == "rbac-value"
    assert seen["set-secret"] == [403, "Forbidden", "ForbiddenByRbac"]
    seen = _probe(server, url, ["list-secrets", "get-secret"], base + "reader-vm")
    assert seen == {"list-secrets": ["db-password"], "get-secret": [403, "Forbidden", "ForbiddenByRbac"]}
    # Access policies count for nothing on an RBAC vault.
    update_vault(
        server, group, name, {"accessPolicies": [policy(server, _principal(reader), secrets=["get", "set"])]}
    )
    assert _probe(server, url, ["get-secret"], base + "reader-vm")["get-secret"][2] == "ForbiddenByRbac"
    # The 403 text names caller, action and the (lower-cased) resource, line by line.
    token = _vm_vault_token(server, base + "reader-vm")
    with vault_client(server, name, token) as kv:
        message = assert_kv_error(
            kv.get("/secrets/db-password", params={"api-version": DATA_API}),
            403,
            "Forbidden",
            "ForbiddenByRbac",
        )
    lines = message.split("\r\n")
    assert lines[0] == "Caller is not authorized to perform action on resource."
    assert f"oid={_principal(reader)}" in lines[2]
    assert lines[3] == "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"
    assert lines[4] == f"Resource: '{(scope + '/secrets/db-password').lower()}'"


def _vm_vault_token(srv: KeylessServer, vm_id: str) -> str:
    code = """
import json
from azure.identity import ManagedIdentityCredential
print(json.dumps(ManagedIdentityCredential().get_token("https://vault.azure.net/.default").token))
"""
    return str(sdk_json(srv, code, "--as", vm_id))


def test_firewall_lets_in_and_keeps_out(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    inside = create_vm(server, group, "inside-vm", "")
    outside = create_vm(server, group, "outside-vm", "")
    subnet = (
        f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Network/"
        "virtualNetworks/vnet1/subnets/apps"
    )
    cli_ok(server, "vm", "update", "-g", group, "-n", "inside-vm", "--public-ip", "20.30.40.50")
    cli_ok(
        server, "vm", "update", "-g", group, "-n", "outside-vm", "--public-ip", "51.1.2.3", "--subnet", subnet
    )
    name = unique("fw")
    everyone = [policy(server, _principal(vm), secrets=["get"]) for vm in (inside, outside)]
    create_vault(
        server,
        group,
        name,
        policies=everyone,
        network_acls={
            "defaultAction": "Deny",
            "bypass": "AzureServices",
            "ipRules": [{"value": "20.30.40.0/24"}],
        },
    )
    url = f"https://{name}.vault.azure.net"
    base = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/"
    # The admin on this machine is outside the firewall too: it cannot even set the secret.
    with vault_client(server, name, vault_token(server)) as kv:
        r = kv.put("/secrets/db-password", params={"api-version": DATA_API}, json={"value": "fw"})
        message = assert_kv_error(r, 403, "Forbidden", "ForbiddenByFirewall")
    assert message.startswith("Client address is not authorized and caller is not a trusted service.")
    assert "Client address: 127.0.0.1" in message
    update_vault(server, group, name, {"networkAcls": {"defaultAction": "Allow"}})
    _set_secret(server, name, "fw")
    update_vault(
        server,
        group,
        name,
        {
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "AzureServices",
                "ipRules": [{"value": "20.30.40.0/24"}],
            }
        },
    )
    assert _probe(server, url, ["get-secret"], base + "inside-vm") == {"get-secret": "fw"}
    # `vm create --public-ip` gives a new VM its address from the start.
    cli_ok(
        server,
        "vm",
        "create",
        "-g",
        group,
        "-n",
        "third-vm",
        "--assign-identity",
        "--public-ip",
        "20.30.40.60",
    )
    third = get_doc(server, base + "third-vm", VM_API)
    assert third["properties"]["keylessNetwork"]["publicIpAddress"] == "20.30.40.60"
    update_vault(
        server,
        group,
        name,
        {"accessPolicies": [*everyone, policy(server, _principal(third), secrets=["get"])]},
    )
    assert _probe(server, url, ["get-secret"], base + "third-vm") == {"get-secret": "fw"}
    assert _probe(server, url, ["get-secret"], base + "outside-vm") == {
        "get-secret": [403, "Forbidden", "ForbiddenByFirewall"]
    }
    # A virtual-network rule for the outside VM's subnet lets it in.
    update_vault(
        server,
        group,
        name,
        {
            "networkAcls": {
                "defaultAction": "Deny",
                "ipRules": [{"value": "20.30.40.0/24"}],
                "virtualNetworkRules": [{"id": subnet}],
            }
        },
    )
    assert _probe(server, url, ["get-secret"], base + "outside-vm") == {"get-secret": "fw"}
    # Public network access Disabled keeps everyone out, whatever the rules say.
    update_vault(server, group, name, {"publicNetworkAccess": "Disabled"})
    for vm in ("inside-vm", "outside-vm"):
        assert _probe(server, url, ["get-secret"], base + vm) == {
            "get-secret": [403, "Forbidden", "ForbiddenByFirewall"]
        }
    # The resource manager (control plane) is not behind the firewall.
    with server.arm() as arm:
        assert (
            arm.get(vault_path(server, group, name), params={"api-version": "2023-07-01"}).status_code == 200
        )
