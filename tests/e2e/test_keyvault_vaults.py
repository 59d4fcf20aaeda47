"""``Microsoft.KeyVault/vaults`` (control plane), deleted vaults and ``keyless keyvault``: driven
with azure-mgmt-keyvault, raw ARM requests, the keyless CLI and az."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.arm_helpers import assert_arm_error, create_group, rg_path
from tests.e2e.test_az_cli import Az, az_bin  # noqa: F401 (a fixture)
from tests.keyless_server import KeylessServer

API = "2026-02-01"
VAULTS = "Microsoft.KeyVault/vaults"


def _name(prefix: str = "kv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def vault_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"{rg_path(srv, group)}/providers/{VAULTS}/{name}"


def _body(srv: KeylessServer, **props: Any) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {"tenantId": srv.tenant_id, "sku": {"family": "A", "name": "standard"}, **props},
    }


def _put(arm: httpx.Client, srv: KeylessServer, group: str, name: str, **props: Any) -> httpx.Response:
    return arm.put(vault_path(srv, group, name), params={"api-version": API}, json=_body(srv, **props))


def _deleted_path(srv: KeylessServer, name: str, location: str = "westeurope") -> str:
    return f"/subscriptions/{srv.subscription_id}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}"


def _available(arm: httpx.Client, srv: KeylessServer, name: str) -> dict[str, Any]:
    r = arm.post(
        f"/subscriptions/{srv.subscription_id}/providers/Microsoft.KeyVault/checkNameAvailability",
        params={"api-version": API},
        json={"name": name, "type": VAULTS},
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture(scope="module")
def arm(server: KeylessServer) -> httpx.Client:
    return server.arm()


@pytest.fixture(scope="module")
def group(server: KeylessServer, arm: httpx.Client) -> str:
    name = f"rgkv{uuid.uuid4().hex[:8]}"
    create_group(arm, server, name)
    return name


# --- azure-mgmt-keyvault ------------------------------------------------------------------------

_SDK_PROGRAM = r"""
import json, os, sys
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.keyvault import KeyVaultManagementClient
sub, tenant, group, a, b = os.environ["AZURE_SUBSCRIPTION_ID"], os.environ["AZURE_TENANT_ID"], *sys.argv[1:4]
cred = DefaultAzureCredential()
kv = KeyVaultManagementClient(cred, sub)
old = KeyVaultManagementClient(cred, sub, api_version="2023-07-01")
out = {}
props = {"tenantId": tenant, "sku": {"family": "A", "name": "standard"}}
out["created"] = kv.vaults.begin_create_or_update(group, a, {"location": "westeurope", "properties": props}).result().as_dict()
out["old_api"] = old.vaults.begin_create_or_update(group, b, {"location": "westeurope", "tags": {"t": "1"}, "properties": dict(props, accessPolicies=[])}).result().as_dict()
policy = {"tenantId": tenant, "objectId": "11111111-1111-1111-1111-111111111111", "permissions": {"keys": ["get", "wrapKey"], "secrets": ["get"]}}
out["add"] = kv.vaults.update_access_policy(group, b, "add", {"properties": {"accessPolicies": [policy]}}).as_dict()
more = dict(policy, permissions={"keys": ["unwrapKey", "Get"]})
kv.vaults.update_access_policy(group, b, "add", {"properties": {"accessPolicies": [more]}})
out["after_add"] = kv.vaults.get(group, b).properties.access_policies[0].as_dict()
kv.vaults.update_access_policy(group, b, "replace", {"properties": {"accessPolicies": [dict(policy, permissions={"secrets": ["list"]})]}})
out["after_replace"] = kv.vaults.get(group, b).properties.access_policies[0].as_dict()
kv.vaults.update_access_policy(group, b, "remove", {"properties": {"accessPolicies": [dict(policy, permissions={"keys": ["get", "wrapKey", "unwrapKey"], "secrets": ["list"]})]}})
out["after_remove"] = [p.as_dict() for p in kv.vaults.get(group, b).properties.access_policies]
out["patched"] = kv.vaults.update(group, b, {"tags": {"env": "dev"}, "properties": {"enablePurgeProtection": True}}).as_dict()
out["by_group"] = sorted(v.name for v in kv.vaults.list_by_resource_group(group))
out["by_sub"] = sorted(v.name for v in kv.vaults.list_by_subscription() if v.name in (a, b))
out["generic_list"] = sorted(v.name for v in kv.vaults.list() if v.name in (a, b))
out["taken"] = kv.vaults.check_name_availability({"name": a, "type": "Microsoft.KeyVault/vaults"}).as_dict()
out["invalid"] = kv.vaults.check_name_availability({"name": "1bad", "type": "Microsoft.KeyVault/vaults"}).as_dict()
kv.vaults.delete(group, a)
kv.vaults.delete(group, b)
out["deleted"] = sorted(d.name for d in kv.vaults.list_deleted() if d.name in (a, b))
out["get_deleted"] = kv.vaults.get_deleted(b, "westeurope").as_dict()
recovered = kv.vaults.begin_create_or_update(group, b, {"location": "westeurope", "properties": dict(props, createMode="recover")}).result()
out["recovered"] = recovered.as_dict()
kv.vaults.delete(group, b)
try:
    kv.vaults.begin_purge_deleted(b, "westeurope").result()
except HttpResponseError as exc:
    out["purge_protected"] = [exc.status_code, exc.error.code]
kv.vaults.begin_purge_deleted(a, "westeurope").result()
out["after_purge"] = kv.vaults.check_name_availability({"name": a, "type": "Microsoft.KeyVault/vaults"}).as_dict()
out["still_deleted"] = sorted(d.name for d in kv.vaults.list_deleted() if d.name in (a, b))
print(json.dumps(out))
"""


def test_vault_lifecycle_with_azure_mgmt_keyvault(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    a, b = _name("sdka"), _name("sdkb")
    done = server.cli("run", "--", sys.executable, "-c", _SDK_PROGRAM, group, a, b, timeout=180)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    created = out["created"]["properties"]
    assert created["vaultUri"] == f"https://{a}.vault.azure.net/"
    assert created["enableRbacAuthorization"] is True  # the default from 2026-02-01 on
    assert created["enableSoftDelete"] is True and created["softDeleteRetentionInDays"] == 90
    assert created["provisioningState"] == "Succeeded" and created["tenantId"] == server.tenant_id
    assert out["old_api"]["properties"]["enableRbacAuthorization"] is False
    assert out["add"]["type"] == "Microsoft.KeyVault/vaults/accessPolicies"
    assert out["after_add"]["permissions"] == {"keys": ["get", "wrapKey", "unwrapKey"], "secrets": ["get"]}
    assert out["after_replace"]["permissions"] == {
        "keys": ["get", "wrapKey", "unwrapKey"],
        "secrets": ["list"],
    }
    assert out["after_remove"] == []
    assert out["patched"]["tags"] == {"env": "dev"}
    assert out["patched"]["properties"]["enablePurgeProtection"] is True
    assert out["by_group"] == sorted([a, b]) and out["by_sub"] == sorted([a, b])
    assert out["generic_list"] == sorted([a, b])
    assert out["taken"]["nameAvailable"] is False and out["taken"]["reason"] == "AlreadyExists"
    assert out["invalid"]["reason"] == "AccountNameInvalid"
    assert out["deleted"] == sorted([a, b])
    deleted = out["get_deleted"]["properties"]
    assert deleted["vaultId"] == vault_path(server, group, b)
    assert deleted["purgeProtectionEnabled"] is True and deleted["tags"] == {"env": "dev"}
    recovered = out["recovered"]
    assert recovered["tags"] == {"env": "dev"} and recovered["properties"]["enablePurgeProtection"] is True
    assert recovered["properties"]["enableRbacAuthorization"] is False
    assert out["purge_protected"] == [405, "MethodNotAllowed"]
    assert out["after_purge"]["nameAvailable"] is True
    assert out["still_deleted"] == [b]


# --- names: global, soft-deleted, recover ---------------------------------------------------------


def test_names_are_global_and_held_by_deleted_vaults(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    other = f"rgkv{uuid.uuid4().hex[:8]}"
    create_group(arm, server, other)
    name = _name()
    r = _put(arm, server, group, name, accessPolicies=[])
    assert r.status_code == 201, r.text
    first = r.json()

    # Another group, same name (any case): taken; nothing is created there.
    message = assert_arm_error(_put(arm, server, other, name.upper()), 409, "VaultAlreadyExists")
    assert f"'{name.upper()}' is already in use" in message
    assert arm.get(vault_path(server, other, name), params={"api-version": API}).status_code == 404
    # createMode recover on a live name: there is no soft-deleted vault.
    assert_arm_error(_put(arm, server, other, name, createMode="recover"), 409, "VaultAlreadyExists")

    assert arm.delete(vault_path(server, group, name), params={"api-version": API}).status_code == 200
    assert arm.get(vault_path(server, group, name), params={"api-version": API}).status_code == 404
    assert _available(arm, server, name)["reason"] == "AlreadyExists"
    assert_arm_error(_put(arm, server, group, name), 409, "ConflictError")
    assert_arm_error(_put(arm, server, other, name), 409, "ConflictError")
    # Recover only where it was deleted from.
    assert_arm_error(
        _put(arm, server, other, name, createMode="recover"), 400, "SoftDeletedVaultDoesNotExist"
    )
    assert_arm_error(
        _put(arm, server, group, _name(), createMode="recover"), 400, "SoftDeletedVaultDoesNotExist"
    )
    r = _put(arm, server, group, name, createMode="recover", enabledForDeployment=True)
    assert r.status_code == 201, r.text
    back = r.json()
    assert back["properties"] == first["properties"]  # the old vault, not the request
    assert "createMode" not in back["properties"]
    listed = arm.get(
        f"/subscriptions/{server.subscription_id}/providers/Microsoft.KeyVault/deletedVaults",
        params={"api-version": API},
    )
    assert name not in {v["name"] for v in listed.json()["value"]}

    assert arm.delete(rg_path(server, other), params={"api-version": "2024-03-01"}).status_code == 202


def test_deleting_a_group_soft_deletes_its_vaults(server: KeylessServer, arm: httpx.Client) -> None:
    doomed = f"rgkv{uuid.uuid4().hex[:8]}"
    create_group(arm, server, doomed)
    name = _name()
    assert _put(arm, server, doomed, name).status_code == 201
    r = arm.delete(rg_path(server, doomed), params={"api-version": "2024-03-01"})
    assert r.status_code == 202, r.text
    got = arm.get(_deleted_path(server, name), params={"api-version": API})
    assert got.status_code == 200, got.text
    assert got.json()["properties"]["vaultId"] == vault_path(server, doomed, name)
    # The wrong location is not where it is.
    assert_arm_error(
        arm.get(_deleted_path(server, name, "eastus"), params={"api-version": API}), 404, "ResourceNotFound"
    )


# --- bad input: the real error, nothing changed ---------------------------------------------------


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"tenantId": "not-a-guid"}, "BadRequest"),
        ({"tenantId": "00000000-0000-0000-0000-000000000001"}, "BadRequest"),
        ({"sku": {"family": "A", "name": "gold"}}, "BadRequest"),
        ({"sku": None}, "BadRequest"),
        ({"enableSoftDelete": False}, "BadRequest"),
        ({"enablePurgeProtection": False}, "BadRequest"),
        ({"softDeleteRetentionInDays": 6}, "BadRequest"),
        ({"softDeleteRetentionInDays": 91}, "BadRequest"),
        ({"softDeleteRetentionInDays": "30"}, "BadRequest"),
        ({"publicNetworkAccess": "Sometimes"}, "BadRequest"),
        ({"createMode": "restore"}, "BadRequest"),
        ({"enabledForDeployment": "yes"}, "BadRequest"),
        ({"accessPolicies": {"a": 1}}, "BadRequest"),
        ({"accessPolicies": [{"tenantId": "x", "objectId": "y", "permissions": {}}]}, "BadRequest"),
        (
            {"accessPolicies": [{"objectId": str(uuid.uuid4()), "permissions": {"keys": ["fly"]}}]},
            "BadRequest",
        ),
        (
            {"accessPolicies": [{"objectId": str(uuid.uuid4()), "permissions": {"cats": ["get"]}}]},
            "BadRequest",
        ),
        ({"networkAcls": {"defaultAction": "Maybe"}}, None),
    ],
)
def test_bad_properties_create_nothing(
    server: KeylessServer, arm: httpx.Client, group: str, props: dict[str, Any], code: str | None
) -> None:
    name = _name()
    body = _body(server)
    for key, value in props.items():
        if key == "accessPolicies" and isinstance(value, list):
            value = [dict({"tenantId": server.tenant_id}, **entry) for entry in value]
        body["properties"][key] = value
    r = arm.put(vault_path(server, group, name), params={"api-version": API}, json=body)
    assert r.status_code == 400, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code
    assert arm.get(vault_path(server, group, name), params={"api-version": API}).status_code == 404
    assert _available(arm, server, name) == {"nameAvailable": True}


@pytest.mark.parametrize("name", ["ab", "a" * 25, "1abc", "abc-", "ab--cd", "ab_cd", "abc%0A"])
def test_bad_names(server: KeylessServer, arm: httpx.Client, group: str, name: str) -> None:
    r = arm.put(vault_path(server, group, name), params={"api-version": API}, json=_body(server))
    message = assert_arm_error(r, 400, "VaultNameNotValid")
    assert "must be between 3-24 alphanumeric characters" in message
    assert _available(arm, server, name)["reason"] == "AccountNameInvalid"


def test_immutable_properties_and_purge_protection(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    name = _name()
    made = _put(arm, server, group, name, softDeleteRetentionInDays=7, enablePurgeProtection=True)
    assert made.status_code == 201, made.text
    before = arm.get(vault_path(server, group, name), params={"api-version": API}).json()
    for props, fragment in (
        ({"softDeleteRetentionInDays": 8, "enablePurgeProtection": True}, "softDeleteRetentionInDays"),
        ({"softDeleteRetentionInDays": 7, "enablePurgeProtection": False}, "enablePurgeProtection"),
    ):
        message = assert_arm_error(_put(arm, server, group, name, **props), 400, "BadRequest")
        assert fragment in message
    patched = arm.patch(
        vault_path(server, group, name),
        params={"api-version": API},
        json={"properties": {"enableSoftDelete": False}},
    )
    assert_arm_error(patched, 400, "BadRequest")
    # An update that omits purge protection keeps it on.
    r = _put(arm, server, group, name, softDeleteRetentionInDays=7)
    assert r.status_code == 200 and r.json()["properties"]["enablePurgeProtection"] is True
    after = arm.get(vault_path(server, group, name), params={"api-version": API}).json()
    assert after["properties"] == before["properties"]


def test_provider_operations_refuse_bad_requests(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    sub = f"/subscriptions/{server.subscription_id}/providers/Microsoft.KeyVault"
    check = f"{sub}/checkNameAvailability"
    assert_arm_error(
        arm.post(check, params={"api-version": API}, json={"name": "abc", "type": "x"}), 400, "BadRequest"
    )
    assert_arm_error(arm.post(check, params={"api-version": API}, json={"type": VAULTS}), 400, "BadRequest")
    assert_arm_error(arm.post(check, params={"api-version": API}, content=b"{"), 400, "InvalidRequestContent")
    assert_arm_error(arm.get(check, params={"api-version": API}), 405, "MethodNotAllowed")
    assert_arm_error(
        arm.get(f"{sub}/deletedVaults", params={"api-version": "1999-01-01"}),
        400,
        "NoRegisteredProviderFound",
    )
    assert_arm_error(
        arm.post(f"{_deleted_path(server, _name())}/purge", params={"api-version": API}),
        404,
        "ResourceNotFound",
    )
    # accessPolicies/{kind} on a vault that does not exist, with an unknown kind, or a bad body.
    name = _name()
    ap = f"{vault_path(server, group, name)}/accessPolicies"
    body: dict[str, Any] = {"properties": {"accessPolicies": []}}
    assert_arm_error(arm.put(f"{ap}/add", params={"api-version": API}, json=body), 404, "ResourceNotFound")
    assert _put(arm, server, group, name, enableRbacAuthorization=False).status_code == 201
    assert_arm_error(arm.put(f"{ap}/merge", params={"api-version": API}, json=body), 400, "BadRequest")
    assert_arm_error(
        arm.put(f"{ap}/add", params={"api-version": API}, json={"properties": {}}), 400, "BadRequest"
    )
    bad = {
        "properties": {
            "accessPolicies": [{"tenantId": server.tenant_id, "objectId": "nope", "permissions": {}}]
        }
    }
    assert_arm_error(arm.put(f"{ap}/add", params={"api-version": API}, json=bad), 400, "BadRequest")
    too_many = {
        "properties": {
            "accessPolicies": [
                {
                    "tenantId": server.tenant_id,
                    "objectId": str(uuid.uuid4()),
                    "permissions": {"keys": ["get"]},
                }
                for _ in range(1025)
            ]
        }
    }
    assert arm.put(f"{ap}/add", params={"api-version": API}, json=too_many).status_code == 400
    got = arm.get(vault_path(server, group, name), params={"api-version": API}).json()
    assert got["properties"]["accessPolicies"] == []


# --- purge removes the vault's keys and secrets ---------------------------------------------------


def _database(srv: KeylessServer) -> sa.Engine:
    return sa.create_engine(srv.database_url or f"sqlite:///{srv.data_dir / 'keyless.db'}")


def test_soft_delete_keeps_objects_and_purge_removes_them(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    from keyless.store.tables import kv_objects, kv_versions

    name = _name()
    assert _put(arm, server, group, name).status_code == 201
    engine = _database(server)
    try:
        with engine.begin() as conn:  # what the data plane would have written
            conn.execute(
                kv_objects.insert().values(
                    vault=name, kind="secret", name_key="s1", name="s1", latest_version="v" * 32
                )
            )
            conn.execute(
                kv_versions.insert().values(
                    vault=name,
                    kind="secret",
                    name_key="s1",
                    version="v" * 32,
                    created_at=0.0,
                    document="{}",
                    sealed="",
                )
            )
        assert arm.delete(vault_path(server, group, name), params={"api-version": API}).status_code == 200

        def count() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        sa.select(sa.func.count()).select_from(kv_versions).where(kv_versions.c.vault == name)
                    ).scalar_one()
                )

        assert count() == 1
        assert (
            arm.post(f"{_deleted_path(server, name)}/purge", params={"api-version": API}).status_code == 200
        )
        assert count() == 0
        assert _available(arm, server, name) == {"nameAvailable": True}
    finally:
        engine.dispose()


# --- the keyless CLI ----------------------------------------------------------------------------


def test_keyless_cli_vault_commands(server: KeylessServer, arm: httpx.Client, group: str) -> None:
    name = _name("cli")

    def cli(*args: str) -> str:
        done = server.cli("keyvault", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    uri = cli("create", "-g", group, "-n", name, "--query", "properties.vaultUri")
    assert uri == f"https://{name}.vault.azure.net/"
    shown = json.loads(cli("show", "-g", group, "-n", name, "-o", "json"))
    assert shown["resourceGroup"] == group and shown["properties"]["enableRbacAuthorization"] is True
    assert name in json.loads(cli("list", "-g", group, "-o", "json", "--query", "[].name"))
    assert name in cli("list")  # the table
    again = server.cli("keyvault", "create", "-g", group, "-n", name)
    assert again.returncode == 1 and "already exists" in again.stdout + again.stderr
    policies = _name("clip")
    made = json.loads(cli("create", "-g", group, "-n", policies, "--no-rbac-authorization", "-o", "json"))
    [entry] = made["properties"]["accessPolicies"]
    assert entry["objectId"] == server.admin["objectId"] and entry["permissions"]["keys"] == ["all"]
    assert "soft-deleted" in cli("delete", "-g", group, "-n", name)
    assert name in json.loads(cli("list-deleted", "-o", "json", "--query", "[].name"))
    back = json.loads(cli("recover", "-n", name, "-o", "json"))
    assert back["id"] == shown["id"]
    cli("delete", "-g", group, "-n", name)
    assert "Purged" in cli("purge", "-n", name)
    assert name not in cli("list-deleted", "-o", "tsv")
    bad = server.cli("keyvault", "create", "-g", group, "-n", "1bad")
    assert bad.returncode == 1 and "VaultNameNotValid" in bad.stderr


# --- az -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def az(server: KeylessServer, az_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Az:  # noqa: F811
    runner = Az(server, az_bin, tmp_path_factory.mktemp("home"))
    runner.run("login", "--service-principal", "-u", "$AZURE_CLIENT_ID", "--password=$AZURE_CLIENT_SECRET",
               "--tenant", "$AZURE_TENANT_ID")  # fmt: skip
    return runner


@pytest.mark.slow
def test_az_keyvault_commands(server: KeylessServer, az: Az, group: str) -> None:
    name, policies = _name("az"), _name("azp")
    created = az.json("keyvault", "create", "-g", group, "-n", name, "-l", "westeurope")
    assert created["properties"]["vaultUri"] == f"https://{name}.vault.azure.net/"
    assert created["properties"]["enableRbacAuthorization"] is True
    assert az.json("keyvault", "show", "-n", name)["id"] == created["id"]
    assert name in {v["name"] for v in az.json("keyvault", "list", "-g", group)}
    # Access policies: az finds the signed-in service principal's object id through Graph.
    made = az.json("keyvault", "create", "-g", group, "-n", policies, "--enable-rbac-authorization", "false")
    [mine] = made["properties"]["accessPolicies"]
    assert mine["objectId"] == server.admin["objectId"]
    other = str(uuid.uuid4())
    az.run(
        "keyvault", "set-policy", "-n", policies, "--object-id", other, "--secret-permissions", "get", "list"
    )
    shown = az.json("keyvault", "show", "-n", policies)
    assert {p["objectId"] for p in shown["properties"]["accessPolicies"]} == {mine["objectId"], other}
    az.run("keyvault", "delete-policy", "-n", policies, "--object-id", other)
    assert len(az.json("keyvault", "show", "-n", policies)["properties"]["accessPolicies"]) == 1
    az.run("keyvault", "delete", "-n", name)
    assert name in {v["name"] for v in az.json("keyvault", "list-deleted")}
    assert az.json("keyvault", "show-deleted", "-n", name)["properties"]["vaultId"] == created["id"]
    az.run("keyvault", "recover", "-n", name)
    assert az.json("keyvault", "show", "-n", name)["id"] == created["id"]
    az.run("keyvault", "delete", "-n", name)
    az.run("keyvault", "purge", "-n", name)
    assert name not in {v["name"] for v in az.json("keyvault", "list-deleted")}
    assert policies in {v["name"] for v in az.json("keyvault", "list")}  # vaults and (no) managed HSMs


@pytest.mark.slow
def test_az_keyvault_key_and_secret_commands(server: KeylessServer, az: Az, group: str) -> None:
    """`az keyvault key …` and `az keyvault secret …` (az's own azure-keyvault SDKs) on a vault
    whose access policy az wrote for the signed-in admin."""
    name = _name("azd")
    az.json("keyvault", "create", "-g", group, "-n", name, "--enable-rbac-authorization", "false")
    key = az.json(
        "keyvault", "key", "create", "--vault-name", name, "-n", "cmk", "--kty", "RSA", "--size", "3072"
    )
    assert key["key"]["kid"].startswith(f"https://{name}.vault.azure.net/keys/cmk/")
    assert key["key"]["kty"] == "RSA"
    assert [k["name"] for k in az.json("keyvault", "key", "list", "--vault-name", name)] == ["cmk"]
    assert (
        az.json("keyvault", "key", "show", "--vault-name", name, "-n", "cmk")["key"]["kid"]
        == key["key"]["kid"]
    )
    rotated = az.json("keyvault", "key", "rotate", "--vault-name", name, "-n", "cmk")
    assert rotated["key"]["kid"] != key["key"]["kid"]
    assert len(az.json("keyvault", "key", "list-versions", "--vault-name", name, "-n", "cmk")) == 2
    secret = az.json(
        "keyvault", "secret", "set", "--vault-name", name, "-n", "db-password", "--value", "hunter2"
    )
    assert secret["value"] == "hunter2"
    shown = az.json("keyvault", "secret", "show", "--vault-name", name, "-n", "db-password")
    assert shown["value"] == "hunter2" and shown["id"] == secret["id"]
    assert [s["name"] for s in az.json("keyvault", "secret", "list", "--vault-name", name)] == ["db-password"]
    az.run("keyvault", "secret", "delete", "--vault-name", name, "-n", "db-password")
    deleted = az.json("keyvault", "secret", "list-deleted", "--vault-name", name)
    assert [d["name"] for d in deleted] == ["db-password"]
    az.run("keyvault", "secret", "recover", "--vault-name", name, "-n", "db-password")
    missing = az.run("keyvault", "secret", "show", "--vault-name", name, "-n", "nope", ok=False)
    assert missing.returncode != 0 and "SecretNotFound" in missing.stderr
