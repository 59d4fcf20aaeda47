"""``Microsoft.Storage/storageAccounts`` (control plane), its keys and ``keyless storage``: driven
with azure-mgmt-storage and raw ARM requests (the CLIs: ``test_storage_accounts_cli``)."""

from __future__ import annotations

import base64
import json
import sys
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.arm_helpers import assert_arm_error, create_group, rg_path
from tests.keyless_server import KeylessServer

API = "2026-09-01"
ACCOUNTS = "Microsoft.Storage/storageAccounts"


def _name(prefix: str = "st") -> str:
    return f"{prefix}{uuid.uuid4().hex[:14]}"


def account_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"{rg_path(srv, group)}/providers/{ACCOUNTS}/{name}"


def _put(
    arm: httpx.Client, srv: KeylessServer, group: str, name: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    payload = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", **(body or {})}
    return arm.put(account_path(srv, group, name), params={"api-version": API}, json=payload)


def _create(arm: httpx.Client, srv: KeylessServer, group: str, name: str, **body: Any) -> dict[str, Any]:
    """PUT, then follow the 202's Location as the SDK's poller does; the account."""
    r = _put(arm, srv, group, name, body)
    assert r.status_code == 202, r.text
    assert r.headers["Retry-After"] == "0" and not r.content
    polled = arm.get(r.headers["Location"].replace("https://management.azure.com", ""))
    assert polled.status_code == 200, polled.text
    out: dict[str, Any] = polled.json()
    return out


def _get(arm: httpx.Client, srv: KeylessServer, group: str, name: str) -> httpx.Response:
    return arm.get(account_path(srv, group, name), params={"api-version": API})


def _available(arm: httpx.Client, srv: KeylessServer, name: str) -> dict[str, Any]:
    r = arm.post(
        f"/subscriptions/{srv.subscription_id}/providers/Microsoft.Storage/checkNameAvailability",
        params={"api-version": API},
        json={"name": name, "type": ACCOUNTS},
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _database(srv: KeylessServer) -> sa.Engine:
    return sa.create_engine(srv.database_url or f"sqlite:///{srv.data_dir / 'keyless.db'}")


def _rows(srv: KeylessServer, name: str) -> dict[str, int]:
    """How many rows of each storage table name the account (all 0 once it is gone)."""
    from keyless.store.tables import blob_blocks, blob_containers, blobs, storage_accounts

    engine = _database(srv)
    try:
        with engine.connect() as conn:
            return {
                table.name: int(
                    conn.execute(
                        sa.select(sa.func.count()).select_from(table).where(column == name)
                    ).scalar_one()
                )
                for table, column in (
                    (storage_accounts, storage_accounts.c.name),
                    (blob_containers, blob_containers.c.account),
                    (blobs, blobs.c.account),
                    (blob_blocks, blob_blocks.c.account),
                )
            }
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def arm(server: KeylessServer) -> httpx.Client:
    return server.arm()


@pytest.fixture(scope="module")
def group(server: KeylessServer, arm: httpx.Client) -> str:
    name = f"rgst{uuid.uuid4().hex[:8]}"
    create_group(arm, server, name)
    return name


# --- azure-mgmt-storage ---------------------------------------------------------------------------

_SDK_PROGRAM = r"""
import json, os, sys
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.identity import DefaultAzureCredential
from azure.mgmt.storage import StorageManagementClient
sub, group, a, b = os.environ["AZURE_SUBSCRIPTION_ID"], *sys.argv[1:4]
cred = DefaultAzureCredential()
st = StorageManagementClient(cred, sub, polling_interval=0)
old = StorageManagementClient(cred, sub, api_version="2023-05-01", polling_interval=0)
out = {}
out["before"] = st.storage_accounts.check_name_availability({"name": a, "type": "Microsoft.Storage/storageAccounts"}).as_dict()
poller = st.storage_accounts.begin_create(group, a, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "tags": {"env": "dev"}})
out["created"] = poller.result().as_dict()
out["old_api"] = old.storage_accounts.begin_create(group, b, {"location": "westeurope", "sku": {"name": "Standard_GRS"}, "kind": "StorageV2", "properties": {"allowSharedKeyAccess": False, "minimumTlsVersion": "TLS1_2"}}).result().as_dict()
out["props"] = st.storage_accounts.get_properties(group, a).as_dict()
out["keys"] = [k.as_dict() for k in st.storage_accounts.list_keys(group, a).keys_property]
out["regenerated"] = [k.as_dict() for k in st.storage_accounts.regenerate_key(group, a, {"keyName": "key2"}).keys_property]
out["keys_after"] = [k.as_dict() for k in st.storage_accounts.list_keys(group, a).keys_property]
rules = {"defaultAction": "Deny", "bypass": "Logging, AzureServices", "ipRules": [{"value": "203.0.113.0/24", "action": "Allow"}, {"value": "198.51.100.7"}],
         "virtualNetworkRules": [{"id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"}],
         "resourceAccessRules": [{"tenantId": os.environ["AZURE_TENANT_ID"], "resourceId": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Media/mediaservices/ams"}]}
out["updated"] = st.storage_accounts.update(group, a, {"properties": {"networkAcls": rules, "allowSharedKeyAccess": False, "publicNetworkAccess": "Disabled"}, "tags": {"env": "prod"}}).as_dict()
out["by_group"] = sorted(x.name for x in st.storage_accounts.list_by_resource_group(group))
out["by_sub"] = sorted(x.name for x in st.storage_accounts.list() if x.name in (a, b))
out["taken"] = st.storage_accounts.check_name_availability({"name": a, "type": "Microsoft.Storage/storageAccounts"}).as_dict()
out["invalid"] = st.storage_accounts.check_name_availability({"name": "Bad-Name", "type": "Microsoft.Storage/storageAccounts"}).as_dict()
st.storage_accounts.delete(group, a)
st.storage_accounts.delete(group, b)
out["after_delete"] = st.storage_accounts.check_name_availability({"name": a, "type": "Microsoft.Storage/storageAccounts"}).as_dict()
out["listed_after"] = sorted(x.name for x in st.storage_accounts.list_by_resource_group(group) if x.name in (a, b))
print(json.dumps(out, default=str))
"""


def test_account_lifecycle_with_azure_mgmt_storage(server: KeylessServer, group: str) -> None:
    a, b = _name("sdka"), _name("sdkb")
    done = server.cli("run", "--", sys.executable, "-c", _SDK_PROGRAM, group, a, b, timeout=180)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["before"] == {"nameAvailable": True}
    created = out["created"]
    assert created["name"] == a and created["kind"] == "StorageV2" and created["tags"] == {"env": "dev"}
    assert created["sku"] == {"name": "Standard_LRS", "tier": "Standard"}
    props = created["properties"]
    assert props["provisioningState"] == "Succeeded"
    assert props["primaryEndpoints"]["blob"] == f"https://{a}.blob.core.windows.net/"
    assert props["primaryEndpoints"]["dfs"] == f"https://{a}.dfs.core.windows.net/"
    assert props["primaryLocation"] == "westeurope" and props["statusOfPrimary"] == "available"
    assert props["allowBlobPublicAccess"] is False and props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True and props["accessTier"] == "Hot"
    assert props["networkAcls"]["defaultAction"] == "Allow"
    assert props["networkAcls"]["bypass"] == "AzureServices"
    assert props["networkAcls"]["ipRules"] == [] and props["networkAcls"]["virtualNetworkRules"] == []
    assert props["encryption"]["keySource"] == "Microsoft.Storage"
    assert set(props["keyCreationTime"]) == {"key1", "key2"} and props["creationTime"]
    assert "allowSharedKeyAccess" not in props  # null: shared key allowed
    assert out["old_api"]["properties"]["allowSharedKeyAccess"] is False
    assert out["old_api"]["sku"]["name"] == "Standard_GRS"
    assert out["props"]["id"] == created["id"]

    keys = out["keys"]
    assert [k["keyName"] for k in keys] == ["key1", "key2"]
    assert all(len(base64.b64decode(k["value"])) == 64 and k["permissions"] in ("FULL", "Full") for k in keys)
    assert keys[0]["value"] != keys[1]["value"]
    regenerated = out["regenerated"]
    assert regenerated[0]["value"] == keys[0]["value"] and regenerated[1]["value"] != keys[1]["value"]
    assert out["keys_after"] == regenerated

    updated = out["updated"]
    assert updated["tags"] == {"env": "prod"}
    acls = updated["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny" and acls["bypass"] == "Logging, AzureServices"
    assert [r["value"] for r in acls["ipRules"]] == ["203.0.113.0/24", "198.51.100.7"]
    assert acls["virtualNetworkRules"][0]["state"] == "Succeeded"
    assert acls["resourceAccessRules"][0]["resourceId"].endswith("/mediaservices/ams")
    assert updated["properties"]["allowSharedKeyAccess"] is False
    assert updated["properties"]["publicNetworkAccess"] == "Disabled"
    assert updated["properties"]["minimumTlsVersion"] == "TLS1_2"  # kept

    assert out["by_group"] == sorted([a, b]) and out["by_sub"] == sorted([a, b])
    assert out["taken"]["nameAvailable"] is False and out["taken"]["reason"] == "AlreadyExists"
    assert out["taken"]["message"] == f"The storage account named {a} is already taken."
    assert out["invalid"]["reason"] == "AccountNameInvalid"
    assert out["after_delete"] == {"nameAvailable": True}
    assert out["listed_after"] == []
    assert _rows(server, a) == {"storage_accounts": 0, "blob_containers": 0, "blobs": 0, "blob_blocks": 0}


# --- create (LRO), read, keys over raw ARM ----------------------------------------------------------


def test_create_is_long_running_and_update_is_not(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    name = _name()
    created = _create(arm, server, group, name)
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert created["type"] == ACCOUNTS and created["id"] == account_path(server, group, name)
    # A PUT on an existing account updates it and answers at once; omitted properties are kept.
    r = _put(arm, server, group, name, {"properties": {"minimumTlsVersion": "TLS1_3"}})
    assert r.status_code == 200, r.text
    again = _put(arm, server, group, name, {"properties": {"allowBlobPublicAccess": True}}).json()
    assert again["properties"]["minimumTlsVersion"] == "TLS1_3"
    assert again["properties"]["allowBlobPublicAccess"] is True
    assert again["properties"]["creationTime"] == created["properties"]["creationTime"]
    assert again["properties"]["keyCreationTime"] == created["properties"]["keyCreationTime"]
    assert _get(arm, server, group, name).json()["properties"] == again["properties"]


def test_keys_are_sealed_at_rest_and_regenerated(
    server: KeylessServer, arm: httpx.Client, group: str
) -> None:
    from keyless.store.tables import storage_accounts

    name = _name()
    _create(arm, server, group, name)
    path = account_path(server, group, name)
    listed = arm.post(f"{path}/listKeys", params={"api-version": API})
    assert listed.status_code == 200, listed.text
    keys = listed.json()["keys"]
    assert [(k["keyName"], k["permissions"]) for k in keys] == [("key1", "FULL"), ("key2", "FULL")]
    engine = _database(server)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(storage_accounts).where(storage_accounts.c.name == name)).one()
    finally:
        engine.dispose()
    for key in keys:
        stored = getattr(row, key["keyName"])
        assert stored.startswith("v1:") and key["value"] not in stored
    before = _get(arm, server, group, name).json()["properties"]["keyCreationTime"]
    r = arm.post(f"{path}/regenerateKey", params={"api-version": API}, json={"keyName": "key1"})
    assert r.status_code == 200, r.text
    new = r.json()["keys"]
    assert new[0]["value"] != keys[0]["value"] and new[1]["value"] == keys[1]["value"]
    after = _get(arm, server, group, name).json()["properties"]["keyCreationTime"]
    assert after["key2"] == before["key2"] and after["key1"] != before["key1"]
    # A bad keyName: 400, and no key changes.
    for body in ({"keyName": "key3"}, {"keyName": 1}, {}):
        bad = arm.post(f"{path}/regenerateKey", params={"api-version": API}, json=body)
        assert_arm_error(bad, 400, "InvalidValuesForRequestParameters")
    assert arm.post(f"{path}/listKeys", params={"api-version": API}).json()["keys"] == new
    missing = arm.post(f"{account_path(server, group, _name())}/listKeys", params={"api-version": API})
    assert_arm_error(missing, 404, "ResourceNotFound")


def test_listing_keys_needs_the_listkeys_action(server: KeylessServer, arm: httpx.Client, group: str) -> None:
    from tests.e2e.rbac_helpers import READER, assign, create_sp, token_for

    name = _name()
    _create(arm, server, group, name)
    path = account_path(server, group, name)
    sp = create_sp(server, "storage-reader")
    assign(server, rg_path(server, group), sp["objectId"], READER)
    with server.arm(token_for(server, sp)) as reader:
        assert _get(reader, server, group, name).status_code == 200
        message = assert_arm_error(
            reader.post(f"{path}/listKeys", params={"api-version": API}), 403, "AuthorizationFailed"
        )
        assert "listKeys/action" in message or "listkeys/action" in message
        denied = reader.post(f"{path}/regenerateKey", params={"api-version": API}, json={"keyName": "key1"})
        assert_arm_error(denied, 403, "AuthorizationFailed")
        assert_arm_error(_put(reader, server, group, _name()), 403, "AuthorizationFailed")


# --- names: global -----------------------------------------------------------------------------------


def test_names_are_global(server: KeylessServer, arm: httpx.Client, group: str) -> None:
    from keyless.store.tables import storage_accounts

    other = f"rgst{uuid.uuid4().hex[:8]}"
    create_group(arm, server, other)
    name = _name()
    _create(arm, server, group, name)
    message = assert_arm_error(_put(arm, server, other, name), 409, "StorageAccountInAnotherResourceGroup")
    assert message == f"The account {name} is already in another resource group in this subscription."
    assert _get(arm, server, other, name).status_code == 404

    # Held by an account in another subscription (written as that subscription's create would).
    foreign = _name("far")
    engine = _database(server)
    try:
        with engine.begin() as conn:
            key = f"/subscriptions/{uuid.uuid4()}/resourcegroups/g/providers/microsoft.storage/storageaccounts/{foreign}"
            conn.execute(
                storage_accounts.insert().values(
                    name=foreign, resource_key=key, resource_id=key, location="eastus",
                    key1="v1:x", key2="v1:x", key1_created_at=0.0, key2_created_at=0.0,
                )
            )  # fmt: skip
        message = assert_arm_error(_put(arm, server, group, foreign), 409, "StorageAccountAlreadyTaken")
        assert message == f"The storage account named {foreign} is already taken."
        assert _get(arm, server, group, foreign).status_code == 404
        assert _available(arm, server, foreign)["reason"] == "AlreadyExists"
    finally:
        with engine.begin() as conn:
            conn.execute(storage_accounts.delete().where(storage_accounts.c.name == foreign))
        engine.dispose()

    # Deleting frees the name at once, with the account's blob rows; then another group may take it.
    assert arm.delete(account_path(server, group, name), params={"api-version": API}).status_code == 200
    assert _rows(server, name) == {"storage_accounts": 0, "blob_containers": 0, "blobs": 0, "blob_blocks": 0}
    assert _available(arm, server, name) == {"nameAvailable": True}
    _create(arm, server, other, name)
    assert arm.delete(account_path(server, other, name), params={"api-version": API}).status_code == 200
    assert arm.delete(account_path(server, other, name), params={"api-version": API}).status_code == 204


def test_deleting_an_account_deletes_its_blob_rows(server: KeylessServer, arm: httpx.Client) -> None:
    from keyless.store.tables import blob_blocks, blob_containers, blobs

    doomed = f"rgst{uuid.uuid4().hex[:8]}"
    create_group(arm, server, doomed)
    name = _name()
    _create(arm, server, doomed, name)
    engine = _database(server)
    try:
        with engine.begin() as conn:  # what the blob data plane would have written
            conn.execute(
                blob_containers.insert().values(
                    account=name, name="c", etag='"e"', created_at=0.0, last_modified=0.0, metadata="{}"
                )
            )
            conn.execute(
                blobs.insert().values(
                    account=name, container="c", name="b", snapshot="", size=0, etag='"e"', created_at=0.0,
                    last_modified=0.0, properties="{}", metadata="{}", tags="{}",
                )
            )  # fmt: skip
            conn.execute(
                blob_blocks.insert().values(
                    account=name, container="c", blob="b", block_id="x", file="f", size=1, created_at=0.0
                )
            )
    finally:
        engine.dispose()
    assert _rows(server, name) == {"storage_accounts": 1, "blob_containers": 1, "blobs": 1, "blob_blocks": 1}
    # Deleting the group deletes the account and everything of it.
    assert arm.delete(rg_path(server, doomed), params={"api-version": "2024-03-01"}).status_code == 202
    assert _rows(server, name) == {"storage_accounts": 0, "blob_containers": 0, "blobs": 0, "blob_blocks": 0}
    assert _available(arm, server, name) == {"nameAvailable": True}


# --- bad input: the real error, nothing stored ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["ab", "a" * 25, "Upper1abc", "has-dash1", "under_score", "abc%0A", "ab%20cd"]
)
def test_bad_names(server: KeylessServer, arm: httpx.Client, group: str, name: str) -> None:
    message = assert_arm_error(_put(arm, server, group, name), 400, "AccountNameInvalid")
    assert "Storage account name must be between 3 and 24 characters in length" in message
    checked = arm.post(
        f"/subscriptions/{server.subscription_id}/providers/Microsoft.Storage/checkNameAvailability",
        params={"api-version": API},
        json={"name": name.replace("%0A", "\n").replace("%20", " "), "type": ACCOUNTS},
    )
    assert checked.json()["reason"] == "AccountNameInvalid"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sku": {"name": "Gold_LRS"}}, "InvalidValuesForRequestParameters"),
        ({"sku": {"name": "Standard_LRS", "tier": "Premium"}}, "InvalidValuesForRequestParameters"),
        ({"sku": {}}, "InvalidValuesForRequestParameters"),
        ({"kind": "StorageV3"}, "InvalidValuesForRequestParameters"),
        ({"kind": "FileStorage"}, "InvalidValuesForRequestParameters"),  # needs a premium sku
        ({"sku": {"name": "StandardV2_LRS"}}, "InvalidValuesForRequestParameters"),  # FileStorage only
        ({"sku": "Standard_LRS"}, "InvalidRequestContent"),
        ({"properties": []}, "InvalidRequestContent"),
        ({"properties": {"networkAcls": {"defaultAction": "Maybe"}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"bypass": "Everything"}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"bypass": "None, Logging"}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"ipRules": [{"value": "10.1.2.3"}]}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"ipRules": [{"value": "8.8.8.8/32"}]}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"ipRules": [{"value": "2001:db8::1"}]}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"ipRules": "8.8.8.8"}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"virtualNetworkRules": [{"id": "/not/a/subnet"}]}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"resourceAccessRules": [{"tenantId": "x", "resourceId": "/y"}]}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"networkAcls": {"ipRules": [{"value": "8.8.8.8"}] * 401}}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"publicNetworkAccess": "Sometimes"}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"minimumTlsVersion": "TLS9"}}, "InvalidRequestPropertyValue"),
        ({"properties": {"allowSharedKeyAccess": "yes"}}, "InvalidRequestPropertyValue"),
        ({"properties": {"supportsHttpsTrafficOnly": 1}}, "InvalidRequestPropertyValue"),
        ({"properties": {"accessTier": "Lukewarm"}}, "InvalidRequestPropertyValue"),
        ({"properties": {"accessTier": "Premium"}}, "InvalidRequestPropertyValue"),
        ({"properties": {"encryption": {"keySource": "Elsewhere"}}}, "InvalidRequestPropertyValue"),
        ({"properties": {"encryption": {"keySource": "Microsoft.Keyvault"}}}, "InvalidRequestPropertyValue"),
        ({"properties": {"encryption": {"services": {"disk": {}}}}}, "InvalidRequestPropertyValue"),
        ({"location": "atlantis"}, "LocationNotAvailableForResourceType"),
    ],
)  # fmt: skip
def test_bad_input_stores_nothing(
    server: KeylessServer, arm: httpx.Client, group: str, body: dict[str, Any], code: str
) -> None:
    name = _name()
    r = _put(arm, server, group, name, body)
    assert_arm_error(r, 400, code)
    assert _get(arm, server, group, name).status_code == 404
    assert _available(arm, server, name) == {"nameAvailable": True}
    assert _rows(server, name)["storage_accounts"] == 0


def test_bad_updates_change_nothing(server: KeylessServer, arm: httpx.Client, group: str) -> None:
    name = _name()
    _create(arm, server, group, name, kind="StorageV2")
    path = account_path(server, group, name)
    before = _get(arm, server, group, name).json()
    for body, code in (
        ({"properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "192.168.0.1"}]}}},
         "InvalidValuesForRequestParameters"),
        ({"sku": {"name": "Premium_LRS"}}, "InvalidValuesForRequestParameters"),  # no tier change
        ({"kind": "Storage"}, "InvalidValuesForRequestParameters"),  # no downgrade
        ({"properties": {"publicNetworkAccess": 5}}, "InvalidValuesForRequestParameters"),
        ({"properties": {"encryption": {"requireInfrastructureEncryption": True}}}, "InvalidRequestPropertyValue"),
        ({"properties": {"isHnsEnabled": True}}, "InvalidRequestPropertyValue"),
    ):  # fmt: skip
        assert_arm_error(arm.patch(path, params={"api-version": API}, json=body), 400, code)
    after = _get(arm, server, group, name).json()
    assert after == before
    # A good PATCH: sku within the tier, tags replaced, rules merged in.
    ok = arm.patch(
        path,
        params={"api-version": API},
        json={"sku": {"name": "Standard_RAGRS"}, "properties": {"networkAcls": {"defaultAction": "Deny"}}},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["sku"] == {"name": "Standard_RAGRS", "tier": "Standard"}
    acls = ok.json()["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny" and acls["bypass"] == "AzureServices"


def test_provider_operations_refuse_bad_requests(server: KeylessServer, arm: httpx.Client) -> None:
    check = f"/subscriptions/{server.subscription_id}/providers/Microsoft.Storage/checkNameAvailability"
    params = {"api-version": API}
    for body in (
        {"name": "abc", "type": "Microsoft.KeyVault/vaults"},
        {"type": ACCOUNTS},
        {"name": 5, "type": ACCOUNTS},
    ):
        assert_arm_error(arm.post(check, params=params, json=body), 400, "InvalidValuesForRequestParameters")
    assert_arm_error(arm.post(check, params=params, content=b"{"), 400, "InvalidRequestContent")
    assert_arm_error(arm.get(check, params=params), 405, "MethodNotAllowed")
    assert_arm_error(
        arm.post(check, params={"api-version": "1999-01-01"}, json={"name": "abc", "type": ACCOUNTS}),
        400,
        "NoRegisteredProviderFound",
    )
    ghost = f"/subscriptions/{uuid.uuid4()}/providers/Microsoft.Storage/checkNameAvailability"
    assert arm.post(ghost, params=params, json={"name": "abc", "type": ACCOUNTS}).status_code in (403, 404)
    # A PUT into a group that does not exist: the engine's 404, nothing claimed.
    name = _name()
    r = _put(arm, server, f"nogroup{uuid.uuid4().hex[:6]}", name)
    assert_arm_error(r, 404, "ResourceGroupNotFound")
    assert _available(arm, server, name) == {"nameAvailable": True}


# --- what the blob data plane reads ---------------------------------------------------------------


def test_data_plane_view_and_keys(server: KeylessServer, arm: httpx.Client, group: str) -> None:
    """``StorageAccounts`` on the server's own database and root key: the account as stored, and
    the same keys ``listKeys`` gives."""
    from keyless.providers.storage.accounts import StorageAccounts
    from keyless.sealing import Sealer, load_root_key
    from keyless.store.db import Database

    name = _name()
    _create(arm, server, group, name)
    path = account_path(server, group, name)
    patch = {"properties": {"allowSharedKeyAccess": False, "networkAcls": {"defaultAction": "Deny"}}}
    assert arm.patch(path, params={"api-version": API}, json=patch).status_code == 200
    listed = arm.post(f"{path}/listKeys", params={"api-version": API}).json()["keys"]
    db = Database(server.database_url or f"sqlite:///{server.data_dir / 'keyless.db'}")
    try:
        accounts = StorageAccounts(db, Sealer(load_root_key(server.data_dir / "root.key")))
        view = accounts.view(name.upper())
        assert view is not None and view.name == name and view.resource_id == path
        assert view.tenant_id == server.tenant_id and view.location == "westeurope"
        assert view.allows_shared_key() is False and view.allows_blob_public_access() is False
        rules = view.network_rules()
        assert rules.default_action == "Deny" and "azureservices" in rules.bypass
        assert [base64.b64encode(k).decode() for k in accounts.keys(name)] == [k["value"] for k in listed]
        assert accounts.tenant_of(name) == server.tenant_id
        for missing in (_name(), "Bad-Name", "x" * 300):
            assert accounts.view(missing) is None and accounts.keys(missing) == []
    finally:
        db.dispose()


def test_concurrent_creates_of_one_name_leave_one_owner(server: KeylessServer, arm: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    groups = [f"rgst{uuid.uuid4().hex[:8]}" for _ in range(4)]
    for g in groups:
        create_group(arm, server, g)
    name = _name("race")
    with ThreadPoolExecutor(len(groups)) as pool:
        replies = list(pool.map(lambda g: _put(server.arm(), server, g, name), groups))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [202, 409, 409, 409], [r.text for r in replies]
    losers = [r.json()["error"]["code"] for r in replies if r.status_code == 409]
    assert set(losers) == {"StorageAccountInAnotherResourceGroup"}
    winners = [g for g, r in zip(groups, replies, strict=True) if r.status_code == 202]
    assert all(_get(arm, server, g, name).status_code == (200 if g in winners else 404) for g in groups)
    assert _rows(server, name)["storage_accounts"] == 1
