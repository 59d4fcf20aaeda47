"""``keyless storage account`` and ``az storage account``: the commands a user types, against a
real server (the resource itself: ``test_storage_accounts``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.arm_helpers import create_group
from tests.e2e.test_az_cli import Az, az_bin  # noqa: F401 (a fixture)
from tests.e2e.test_storage_accounts import _get, _name
from tests.keyless_server import KeylessServer


@pytest.fixture(scope="module")
def arm(server: KeylessServer) -> httpx.Client:
    return server.arm()


@pytest.fixture(scope="module")
def group(server: KeylessServer, arm: httpx.Client) -> str:
    name = f"rgstc{uuid.uuid4().hex[:8]}"
    create_group(arm, server, name)
    return name


# --- the keyless CLI ----------------------------------------------------------------------------------


def test_keyless_cli_storage_account_commands(server: KeylessServer, arm: httpx.Client, group: str) -> None:
    name = _name("cli")

    def cli(*args: str) -> str:
        done = server.cli("storage", "account", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    blob = cli(
        "create", "-g", group, "-n", name, "--default-action", "Deny", "--bypass", "Logging", "--bypass",
        "AzureServices", "--allow-shared-key-access", "false", "--query", "properties.primaryEndpoints.blob",
    )  # fmt: skip
    assert blob == f"https://{name}.blob.core.windows.net/"
    shown = json.loads(cli("show", "-g", group, "-n", name, "-o", "json"))
    assert shown["resourceGroup"] == group and shown["kind"] == "StorageV2"
    assert shown["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert shown["properties"]["networkAcls"]["bypass"] == "Logging, AzureServices"
    assert shown["properties"]["allowSharedKeyAccess"] is False
    assert name in json.loads(cli("list", "-g", group, "-o", "json", "--query", "[].name"))
    assert name in cli("list")  # the table

    keys = json.loads(cli("keys", "list", "-g", group, "-n", name, "-o", "json"))
    assert [k["keyName"] for k in keys] == ["key1", "key2"]
    renewed = json.loads(cli("keys", "renew", "-g", group, "-n", name, "--key", "key2", "-o", "json"))
    assert renewed[0]["value"] == keys[0]["value"] and renewed[1]["value"] != keys[1]["value"]
    connection = cli("show-connection-string", "-g", group, "-n", name, "--query", "connectionString")
    assert connection == (
        f"DefaultEndpointsProtocol=https;AccountName={name};AccountKey={keys[0]['value']};"
        "EndpointSuffix=core.windows.net"
    )
    second = json.loads(cli("show-connection-string", "-g", group, "-n", name, "--key", "key2"))
    assert renewed[1]["value"] in second["connectionString"]

    subnet = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    cli("network-rule", "add", "-g", group, "-n", name, "--ip-address", "203.0.113.9", "-o", "none")
    cli("network-rule", "add", "-g", group, "-n", name, "--subnet", subnet, "-o", "none")
    cli("network-rule", "add", "-g", group, "-n", name, "--resource-id",
        f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/Microsoft.Media/mediaservices/ams",
        "--tenant-id", server.tenant_id, "-o", "none")  # fmt: skip
    cli(
        "network-rule", "add", "-g", group, "-n", name, "--ip-address", "203.0.113.9", "-o", "none"
    )  # no duplicate
    rules = json.loads(cli("network-rule", "list", "-g", group, "-n", name))
    assert rules["ipRules"] == [{"value": "203.0.113.9", "action": "Allow"}]
    assert [r["id"] for r in rules["virtualNetworkRules"]] == [subnet]
    assert rules["resourceAccessRules"][0]["tenantId"] == server.tenant_id

    updated = json.loads(
        cli("update", "-g", group, "-n", name, "--default-action", "Allow", "--public-network-access", "Disabled",
            "--allow-shared-key-access", "true", "-o", "json")
    )  # fmt: skip
    props = updated["properties"]
    assert props["networkAcls"]["defaultAction"] == "Allow" and props["publicNetworkAccess"] == "Disabled"
    assert props["networkAcls"]["ipRules"] == rules["ipRules"]  # the rules stay
    assert props["allowSharedKeyAccess"] is True

    # Bad input: az-style errors, nothing changed.
    bad = server.cli("storage", "account", "create", "-g", group, "-n", "Bad_Name")
    assert bad.returncode == 1 and "AccountNameInvalid" in bad.stderr
    private = server.cli(
        "storage", "account", "network-rule", "add", "-g", group, "-n", name, "--ip-address", "10.0.0.1"
    )
    assert private.returncode == 1 and "InvalidValuesForRequestParameters" in private.stderr
    wrong = server.cli("storage", "account", "update", "-g", group, "-n", name, "--default-action", "Maybe")
    assert wrong.returncode == 2
    no_rule = server.cli("storage", "account", "network-rule", "add", "-g", group, "-n", name)
    assert no_rule.returncode == 2
    assert _get(arm, server, group, name).json()["properties"] == props

    assert "Deleted" in cli("delete", "-g", group, "-n", name)
    assert "nothing was deleted" in cli("delete", "-g", group, "-n", name)
    missing = server.cli("storage", "account", "show", "-g", group, "-n", name)
    assert missing.returncode == 1 and "ResourceNotFound" in missing.stderr


# --- az -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def az(server: KeylessServer, az_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Az:  # noqa: F811
    runner = Az(server, az_bin, tmp_path_factory.mktemp("home"))
    runner.run("login", "--service-principal", "-u", "$AZURE_CLIENT_ID", "--password=$AZURE_CLIENT_SECRET",
               "--tenant", "$AZURE_TENANT_ID")  # fmt: skip
    return runner


@pytest.mark.slow
def test_az_storage_account_commands(server: KeylessServer, az: Az, group: str) -> None:
    name = _name("az")
    created = az.json("storage", "account", "create", "-g", group, "-n", name, "-l", "westeurope",
                      "--sku", "Standard_LRS", "--kind", "StorageV2")  # fmt: skip
    assert created["name"] == name and created["provisioningState"] == "Succeeded"
    assert created["primaryEndpoints"]["blob"] == f"https://{name}.blob.core.windows.net/"
    assert az.json("storage", "account", "show", "-g", group, "-n", name)["id"] == created["id"]
    assert name in {a["name"] for a in az.json("storage", "account", "list", "-g", group)}
    assert name in {a["name"] for a in az.json("storage", "account", "list")}
    keys = az.json("storage", "account", "keys", "list", "-g", group, "-n", name)
    assert [k["keyName"] for k in keys] == ["key1", "key2"]
    renewed = az.json("storage", "account", "keys", "renew", "-g", group, "-n", name, "--key", "key1")
    assert renewed[0]["value"] != keys[0]["value"]
    az.run("storage", "account", "network-rule", "add", "-g", group, "--account-name", name,
           "--ip-address", "203.0.113.0/24")  # fmt: skip
    rules = az.json("storage", "account", "network-rule", "list", "-g", group, "--account-name", name)
    assert [r["ipAddressOrRange"] for r in rules["ipRules"]] == ["203.0.113.0/24"]
    updated = az.json("storage", "account", "update", "-g", group, "-n", name, "--default-action", "Deny",
                      "--bypass", "Logging", "AzureServices", "--allow-shared-key-access", "false")  # fmt: skip
    assert updated["networkRuleSet"]["defaultAction"] == "Deny"
    assert updated["networkRuleSet"]["bypass"] == "Logging, AzureServices"
    assert updated["allowSharedKeyAccess"] is False
    connection = az.json("storage", "account", "show-connection-string", "-g", group, "-n", name)
    assert f"AccountName={name};AccountKey={renewed[0]['value']}" in connection["connectionString"]
    bad = az.run("storage", "account", "create", "-g", group, "-n", "Bad_Name", ok=False)
    assert bad.returncode != 0 and "AccountNameInvalid" in bad.stderr
    az.run("storage", "account", "delete", "-g", group, "-n", name, "--yes")
    assert name not in {a["name"] for a in az.json("storage", "account", "list", "-g", group)}
