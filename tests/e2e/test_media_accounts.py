"""Microsoft.Media/mediaservices: the account lifecycle as azure-mgmt-media 10.x and raw ARM drive
it, its location-scoped operations, every bad input the issue names (status, code, nothing
changed) and the Media Services roles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e import rbac_helpers as rbh
from tests.e2e.media_helpers import (
    AZ_ACCOUNT_API,
    MediaSetup,
    account_path,
    assert_media_error,
    storage_id,
    unique,
)
from tests.e2e.workload_helpers import program, run_json
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

MEDIA_OPERATOR = "e4395492-1534-4db2-bedf-88c14621589c"
ACCOUNT_ADMINISTRATOR = "054126f8-9a2b-4f1c-a9ad-eca461f08466"

SDK_LIFECYCLE = """
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.media import AzureMediaServices
d = json.loads(DATA)
c = AzureMediaServices(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
created = c.mediaservices.begin_create_or_update(d["group"], d["name"], {
    "location": "westeurope", "identity": {"type": "SystemAssigned"},
    "storage_accounts": [{"id": d["storage"], "type": "Primary"}]}).result()
# The PATCH is a long-running operation (202 + Azure-AsyncOperation); default polling.
updated = c.mediaservices.begin_update(d["group"], d["name"], {"tags": {"team": "media"}}).result()
names = [a.name for a in c.mediaservices.list(d["group"])]
in_sub = [a.name for a in c.mediaservices.list_by_subscription()]
check = c.locations.check_name_availability("westeurope", {"name": d["name"], "type": "Microsoft.Media/mediaservices"})
free = c.locations.check_name_availability("westeurope", {"name": "free" + d["name"][:18], "type": "Microsoft.Media/mediaservices"})
bad = c.locations.check_name_availability("westeurope", {"name": "Bad_Name", "type": "Microsoft.Media/mediaservices"})
c.mediaservices.sync_storage_keys(d["group"], d["name"], {"id": d["storage"]})
policies = c.mediaservices.list_edge_policies(d["group"], d["name"], {"device_id": "dev1"})
c.mediaservices.delete(d["group"], d["name"])
print(json.dumps({
    "created": [created.name, created.identity.type, created.encryption.type, created.storage_authentication,
                created.provisioning_state, created.key_delivery.access_control.default_action],
    "tags": updated.tags, "listed": d["name"] in names, "in_sub": d["name"] in in_sub,
    "check": [check.name_available, check.reason, free.name_available, bad.name_available, bad.reason],
    "edge": policies.usage_data_collection_policy.data_collection_frequency,
}))
"""


def test_account_lifecycle_with_azure_mgmt_media(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    name = unique("ams")
    data = {
        "group": setup.group,
        "name": name,
        "storage": storage_id(media_server, setup.group, setup.storage),
    }
    out = run_json(media_server, program(SDK_LIFECYCLE, data))
    assert out["created"] == [name, "SystemAssigned", "SystemKey", "System", "Succeeded", "Allow"]
    assert out["tags"] == {"team": "media"} and out["listed"] and out["in_sub"]
    assert out["check"] == [False, "AlreadyExists", True, False, "Invalid"]
    assert out["edge"] == "PT1H"
    assert setup.get_account(name).status_code == 404


def test_patch_answers_as_each_api_version_expects(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    name = unique("ams")
    setup.create_account(name)
    # azure-mgmt-media 10.x (2021-11-01): 202 and an operation to poll; az's 9.0.0 (2021-06-01): 200.
    r = setup.patch_account(name, {"tags": {"a": "1"}})
    assert r.status_code == 202, r.text
    with media_server.arm() as arm:
        status = arm.get(r.headers["Azure-AsyncOperation"].replace("https://management.azure.com", ""))
        result = arm.get(r.headers["Location"].replace("https://management.azure.com", ""))
    assert status.status_code == 200 and status.json()["status"] == "Succeeded", status.text
    assert result.status_code == 200 and result.json()["tags"] == {"a": "1"}, result.text
    r = setup.patch_account(name, {"tags": {"b": "2"}}, api=AZ_ACCOUNT_API)
    assert r.status_code == 200 and r.json()["tags"] == {"b": "2"}, r.text


def test_identity_type_is_spelled_as_az_splits_it(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    uami = rbh.create_uami(media_server, setup.group, unique("id"))
    name = unique("ams")
    body = setup.account_body(identity=None)
    body["identity"] = {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uami["id"]: {}}}
    r = setup.put_account(name, body)
    assert r.status_code == 201, r.text
    assert r.json()["identity"]["type"] == "SystemAssigned,UserAssigned"
    # az's `identity assign --system-assigned` PATCHes only the type: the user-assigned one stays.
    r = setup.patch_account(name, {"identity": {"type": "SystemAssigned,UserAssigned"}}, api=AZ_ACCOUNT_API)
    assert r.status_code == 200, r.text
    assert list(r.json()["identity"]["userAssignedIdentities"]) == [uami["id"]]


def _unchanged(setup: MediaSetup, name: str, before: dict[str, Any]) -> None:
    after = setup.get_account(name).json()
    assert after["properties"] == before["properties"] and after.get("identity") == before.get("identity")


@pytest.mark.parametrize(
    ("key_id", "text"),
    [
        ("https://example.com/keys/cmk", "not valid"),
        ("https://{vault}.vault.azure.net/secrets/cmk", "not valid"),
        ("https://{vault}.vault.azure.net/keys/cmk\n", "not valid"),
        ("http://{vault}.vault.azure.net/keys/cmk", "not valid"),
        ("https://{vault}.vault.azure.net/keys/ec", "accepts only RSA keys"),
        ("https://{vault}.vault.azure.net/keys/missing", "Access to the Customer Key was forbidden."),
    ],
)
def test_bad_customer_keys_change_nothing(media_server: KeylessServer, key_id: str, text: str) -> None:
    setup = MediaSetup(media_server, vault=True)
    setup.create_key("ec", kty="EC")
    name = unique("ams")
    before = setup.create_account(name)
    setup.grant_key_access(before["identity"]["principalId"])
    cmk = {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": key_id.format(vault=setup.vault)}}
    r = setup.patch_account(name, {"properties": {"encryption": cmk}})
    assert_media_error(r, 400, "BadRequest", text)
    _unchanged(setup, name, before)


def test_a_vault_without_purge_protection_is_refused(media_server: KeylessServer) -> None:
    from tests.e2e import keyvault_helpers as kvh

    setup = MediaSetup(media_server)
    setup.vault = unique("kvsoft")[:20]
    kvh.create_vault(media_server, setup.group, setup.vault)  # soft delete only
    key_id = setup.create_key("cmk")
    name = unique("ams")
    before = setup.create_account(name)
    setup.grant_key_access(before["identity"]["principalId"])
    cmk = {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": key_id}}
    r = setup.patch_account(name, {"properties": {"encryption": cmk}})
    assert_media_error(r, 400, "BadRequest", "purge protection")
    _unchanged(setup, name, before)


def test_bad_account_input_changes_nothing(media_server: KeylessServer) -> None:
    srv = media_server
    setup = MediaSetup(srv)
    uami = rbh.create_uami(srv, setup.group, unique("id"))
    own = storage_id(srv, setup.group, setup.storage)
    other_sub = own.replace(srv.subscription_id, "00000000-0000-0000-0000-000000000001")
    missing = storage_id(srv, setup.group, "stnothere000001")
    for bad_name in ("ab", "UPPERCASE1", "has-dash1", "a" * 25, "name%0A"):
        r = setup.put_account(bad_name, setup.account_body())
        assert r.status_code == 400, (bad_name, r.text)
        assert r.json()["error"]["code"] == "BadRequest", r.text
    cases: list[tuple[dict[str, Any], str]] = [
        ({"storageAccounts": [{"id": other_sub, "type": "Primary"}]}, "same subscription"),
        ({"storageAccounts": [{"id": missing, "type": "Primary"}]}, "was not found"),
        ({"storageAccounts": []}, "storageAccounts"),
        ({"storageAccounts": [{"id": own, "type": "Secondary"}]}, "Primary"),
        (
            {"storageAccounts": [{"id": own, "type": "Primary"}, {"id": own, "type": "Secondary"}]},
            "more than once",
        ),
        ({"encryption": {"type": "Other"}}, "encryption.type"),
        ({"encryption": {"type": "CustomerKey"}}, "key identifier"),
        ({"keyDelivery": {"accessControl": {"defaultAction": "Allow", "ipAllowList": ["1.2.3.4"]}}}, "empty"),
        ({"storageAuthentication": "Sometimes"}, "storageAuthentication"),
        (
            {
                "storageAuthentication": "ManagedIdentity",
                "storageAccounts": [
                    {
                        "id": own,
                        "type": "Primary",
                        "identity": {"useSystemAssignedIdentity": False, "userAssignedIdentity": uami["id"]},
                    }
                ],
            },
            "is not assigned to the Media Services account",
        ),
    ]
    for props, text in cases:
        name = unique("amsbad")
        body = setup.account_body()
        body["properties"].update(props)
        r = setup.put_account(name, body)
        assert_media_error(r, 400, "BadRequest", text)
        assert setup.get_account(name).status_code == 404, props
    # The same on an existing account: nothing changes.
    name = unique("ams")
    before = setup.create_account(name)
    for props, text in cases:
        r = setup.patch_account(name, {"properties": props})
        assert_media_error(r, 400, "BadRequest", text)
        _unchanged(setup, name, before)


def test_names_are_unique_within_a_location(media_server: KeylessServer) -> None:
    first, second = MediaSetup(media_server), MediaSetup(media_server)
    name = unique("ams")
    first.create_account(name)
    r = second.put_account(name, second.account_body())
    assert_media_error(r, 409, "NameNotAvailable", "Already in use")
    body = second.account_body()
    body["location"] = "northeurope"
    assert second.put_account(name, body).status_code == 201
    # An asset in a storage account the account does not have: 400, nothing made.
    r = first.child("PUT", name, "assets", "a1", {"properties": {"storageAccountName": second.storage}})
    assert_media_error(r, 400, "BadRequest", "is not attached")
    assert first.child("GET", name, "assets", "a1").status_code == 404


def test_media_roles_decide_what_a_principal_may_do(media_server: KeylessServer) -> None:
    srv = media_server
    setup = MediaSetup(srv)
    name = unique("ams")
    account = setup.create_account(name)
    operator, admin = rbh.create_sp(srv, "operator"), rbh.create_sp(srv, "ams-admin")
    rbh.assign(srv, account["id"], operator["objectId"], MEDIA_OPERATOR)
    rbh.assign(srv, account["id"], admin["objectId"], ACCOUNT_ADMINISTRATOR)
    op_token, admin_token = rbh.token_for(srv, operator), rbh.token_for(srv, admin)
    # The operator works with assets, cannot change the account.
    assert setup.child("PUT", name, "assets", "in1", {}, token=op_token).status_code == 201
    r = setup.child(
        "POST",
        name,
        "assets",
        "in1/listContainerSas",
        {"permissions": "Read", "expiryTime": "2030-01-01T00:00:00Z"},
        token=op_token,
    )
    assert r.status_code in (200, 400), r.text  # authorized (the expiry may be refused: > 24 h)
    r = setup.patch_account(name, {"tags": {"x": "1"}}, token=op_token)
    assert_media_error(r, 403, "AuthorizationFailed")
    # The account administrator changes the account, but has no assets/write.
    r = setup.patch_account(name, {"tags": {"x": "1"}}, token=admin_token)
    assert r.status_code == 202, r.text
    r = setup.child("PUT", name, "assets", "in2", {}, token=admin_token)
    assert_media_error(r, 403, "AuthorizationFailed")
    assert setup.child("GET", name, "assets", "in2").status_code == 404
    assert json.dumps(setup.get_account(name).json()["tags"]) == '{"x": "1"}'


SDK_PAGES = """
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.media import AzureMediaServices
d = json.loads(DATA)
c = AzureMediaServices(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
for i in range(7):
    c.assets.create_or_update(d["group"], d["name"], f"asset-{i}", {"description": str(i)})
print(json.dumps({
    "assets": sorted(a.name for a in c.assets.list(d["group"], d["name"])),
    "accounts": d["name"] in [a.name for a in c.mediaservices.list(d["group"])],
}))
"""


def test_lists_page_with_odata_next_links(media_server: KeylessServer) -> None:
    """The media_server fixture pages every 5 items; azure-mgmt-media follows ``@odata.nextLink`` only."""
    setup = MediaSetup(media_server)
    name = unique("ams")
    setup.create_account(name)
    for _ in range(5):
        setup.create_account(unique("amsmore"))
    out = run_json(media_server, program(SDK_PAGES, {"group": setup.group, "name": name}))
    assert out == {"assets": [f"asset-{i}" for i in range(7)], "accounts": True}


SDK_QUERY = """
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.media import AzureMediaServices
d = json.loads(DATA)
c = AzureMediaServices(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
for i in range(7):
    c.assets.create_or_update(d["group"], d["name"], f"clip-{i}", {"alternate_id": f"alt-{i % 2}"})
names = lambda items: [a.name for a in items]
print(json.dumps({
    "one": names(c.assets.list(d["group"], d["name"], filter="name eq 'clip-3'")),
    "alt": sorted(names(c.assets.list(d["group"], d["name"], filter="properties/alternateId eq 'alt-1'"))),
    "desc": names(c.assets.list(d["group"], d["name"], orderby="name desc")),
    "top": names(c.assets.list(d["group"], d["name"], top=2, orderby="name")),
    "range": names(c.assets.list(d["group"], d["name"], filter="name gt 'clip-4' and name le 'clip-6'")),
    "policies": names(c.streaming_policies.list(d["group"], d["name"], filter="name eq 'Predefined_ClearKey'")),
}))
"""


def test_lists_filter_order_and_top_as_documented(media_server: KeylessServer) -> None:
    """$filter/$orderby/$top on Media lists (filter-order-page-entities-how-to.md), paged across the
    fixture's 5-item pages; anything outside the documented grammar is 400, not ignored."""
    setup = MediaSetup(media_server)
    name = unique("ams")
    setup.create_account(name)
    out = run_json(media_server, program(SDK_QUERY, {"group": setup.group, "name": name}))
    assert out["one"] == ["clip-3"]
    assert out["alt"] == ["clip-1", "clip-3", "clip-5"]
    assert out["desc"] == [f"clip-{i}" for i in range(6, -1, -1)]
    assert out["top"] == ["clip-0", "clip-1"]
    assert out["range"] == ["clip-5", "clip-6"]
    assert out["policies"] == ["Predefined_ClearKey"]
    with media_server.arm() as arm:
        base = f"{account_path(media_server, setup.group, name).replace('mediaservices', 'mediaServices')}/assets"
        for bad in (
            {"$filter": "location eq 'x'"},
            {"$filter": "name eq"},
            {"$top": "0"},
            {"$orderby": "tags"},
        ):
            r = arm.get(base, params={"api-version": "2022-08-01", **bad})
            assert_media_error(r, 400, "BadRequest", "is not supported")
        r = arm.get(
            base,
            params={"api-version": "2022-08-01", "$filter": "properties/created gt 2000-01-01T00:00:00Z"},
        )
        assert r.status_code == 200 and len(r.json()["value"]) == 5 and "@odata.nextLink" in r.json(), r.text
