"""Scenario 2: a Media Services account reaching a storage account whose firewall shuts everyone
else out, as a trusted Azure service with its own managed identity (raw ARM, as az and
azure-mgmt-media send it), and every way it fails when one piece is missing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import storage_helpers as sth
from tests.e2e.media_helpers import MediaSetup, assert_media_error, storage_id, unique
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

FIREWALL = {"defaultAction": "Deny", "bypass": "AzureServices"}


def _managed_identity(setup: MediaSetup, account: dict[str, Any], **identity: Any) -> dict[str, Any]:
    """The full account body az's `storage set-authentication --storage-auth ManagedIdentity
    --system-assigned` PUTs (media-az.md §1)."""
    props = dict(account["properties"])
    props["storageAuthentication"] = "ManagedIdentity"
    props["storageAccounts"] = [
        {
            "id": storage_id(setup.srv, setup.group, setup.storage),
            "type": "Primary",
            "identity": identity or {"useSystemAssignedIdentity": True},
        }
    ]
    return {
        "location": account["location"],
        "identity": {"type": account["identity"]["type"]},
        "properties": props,
    }


def _containers(setup: MediaSetup) -> list[str]:
    """The storage account's containers, seen by the admin with the firewall opened for a moment."""
    sth.update_account(setup.srv, setup.group, setup.storage, {"networkAcls": {"defaultAction": "Allow"}})
    try:
        with sth.blob_client(setup.srv, setup.storage, sth.storage_token(setup.srv)) as blob:
            r = blob.get("/", params={"comp": "list"})
        assert r.status_code == 200, r.text
        import re

        return re.findall(r"<Name>([^<]+)</Name>", r.text)
    finally:
        sth.update_account(setup.srv, setup.group, setup.storage, {"networkAcls": FIREWALL})


def test_trusted_access_through_the_firewall_with_the_account_identity(media_server: KeylessServer) -> None:
    srv = media_server
    setup = MediaSetup(srv, networkAcls=FIREWALL)
    sth.grant(
        srv, srv.admin["objectId"], sth.BLOB_ROLES["owner"], storage_id(srv, setup.group, setup.storage)
    )
    name = unique("ams")
    # System (Shared Key) is an ordinary caller from outside: the firewall stops it.
    r = setup.put_account(name, setup.account_body())
    assert_media_error(r, 400, "BadRequest", "Storage account cannot be accessed.")
    assert "AuthorizationFailure" in r.json()["error"]["message"]
    assert setup.get_account(name).status_code == 404  # nothing was made

    # Open for the creation, then close again (the tutorial's order: create, grant, switch).
    sth.update_account(srv, setup.group, setup.storage, {"networkAcls": {"defaultAction": "Allow"}})
    account = setup.create_account(name)
    sth.update_account(srv, setup.group, setup.storage, {"networkAcls": FIREWALL})
    principal = account["identity"]["principalId"]

    # ManagedIdentity without a data role: refused by RBAC, nothing changed.
    r = setup.put_account(name, _managed_identity(setup, account))
    assert_media_error(r, 400, "BadRequest", "AuthorizationPermissionMismatch")
    assert setup.get_account(name).json()["properties"]["storageAuthentication"] == "System"

    # "Granting the generic Contributor role won't work."
    sth.grant(srv, principal, "Contributor", storage_id(srv, setup.group, setup.storage))
    r = setup.put_account(name, _managed_identity(setup, account))
    assert_media_error(r, 400, "BadRequest", "AuthorizationPermissionMismatch")

    sth.grant(srv, principal, sth.BLOB_ROLES["contributor"], storage_id(srv, setup.group, setup.storage))
    r = setup.put_account(name, _managed_identity(setup, account))
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["storageAuthentication"] == "ManagedIdentity"

    # Assets: containers made by Media Services through the firewall.
    r = setup.child("PUT", name, "assets", "input", {})
    assert r.status_code == 201, r.text
    asset = r.json()["properties"]
    assert asset["container"] == f"asset-{asset['assetId']}"
    assert asset["storageAccountName"] == setup.storage
    r = setup.child("PUT", name, "assets", "named", {"properties": {"container": "my-clips"}})
    assert r.status_code == 201, r.text

    # The user's own access from outside stays blocked.
    with sth.blob_client(srv, setup.storage, sth.storage_token(srv)) as blob:
        blocked = blob.get(f"/{asset['container']}", params={"restype": "container"})
    assert blocked.status_code == 403 and blocked.headers["x-ms-error-code"] == "AuthorizationFailure"
    assert {asset["container"], "my-clips"} <= set(_containers(setup))

    # Deleting an asset removes its container, through the firewall too.
    assert setup.child("DELETE", name, "assets", "named").status_code == 200
    assert "my-clips" not in _containers(setup)

    # Without the bypass, the trusted service is kept out as well: asset creation fails, nothing stored.
    sth.update_account(
        srv, setup.group, setup.storage, {"networkAcls": {"defaultAction": "Deny", "bypass": "None"}}
    )
    r = setup.child("PUT", name, "assets", "late", {})
    assert_media_error(r, 400, "BadRequest", "AuthorizationFailure")
    assert setup.child("GET", name, "assets", "late").status_code == 404


def test_assets_own_their_container_and_their_locators(media_server: KeylessServer) -> None:
    """One container is one asset; deleting an asset takes its locators, so none publishes a later
    asset that reuses the name; ids spell the account segment ``mediaservices``."""
    setup = MediaSetup(media_server)
    name = unique("ams")
    setup.create_account(name)
    first = setup.child("PUT", name, "assets", "a1", {})
    assert first.status_code == 201, first.text
    assert "/providers/Microsoft.Media/mediaservices/" in first.json()["id"]
    container = first.json()["properties"]["container"]
    r = setup.child("PUT", name, "assets", "a2", {"properties": {"container": container}})
    assert_media_error(r, 400, "BadRequest", "already used by another asset")
    assert setup.child("GET", name, "assets", "a2").status_code == 404
    locator = {"properties": {"assetName": "a1", "streamingPolicyName": "Predefined_DownloadOnly"}}
    r = setup.child("PUT", name, "streamingLocators", "loc1", locator)
    assert r.status_code == 201, r.text
    assert "/providers/Microsoft.Media/mediaservices/" in r.json()["id"]
    assert setup.child("DELETE", name, "assets", "a1").status_code == 200
    assert setup.child("GET", name, "streamingLocators", "loc1").status_code == 404
    assert setup.child("PUT", name, "assets", "a1", {}).status_code == 201
    r = setup.child("POST", name, "assets", "a1/listStreamingLocators")
    assert r.status_code == 200 and r.json() == {"streamingLocators": []}, r.text
