"""Scenario 1: a Media Services account whose account key is wrapped by a customer-managed key,
reached through Key Vault with the account's managed identity (raw ARM, as azure-mgmt-media sends)."""

from __future__ import annotations

import pytest

from tests.e2e.media_helpers import MediaSetup, assert_media_error, unique, wait_for
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


def test_customer_key_rotation_revocation_and_recovery(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server, vault=True)
    name = unique("ams")
    created = setup.create_account(name)
    assert created["properties"]["encryption"] == {"type": "SystemKey"}
    principal = created["identity"]["principalId"]
    cmk = {"encryption": {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": setup.key_id}}}

    # Without a grant the key cannot be reached: Azure's text, nothing changed.
    r = setup.patch_account(name, {"properties": cmk})
    assert_media_error(r, 400, "BadRequest", "Access to the Customer Key was forbidden.")
    assert setup.get_account(name).json()["properties"]["encryption"]["type"] == "SystemKey"

    setup.grant_key_access(principal)
    r = setup.patch_account(name, {"properties": cmk})
    assert r.status_code == 202, r.text
    assert "mediaServicesOperationStatuses" in r.headers["Azure-AsyncOperation"]
    enc = setup.get_account(name).json()["properties"]["encryption"]
    assert enc["type"] == "CustomerKey"
    assert enc["identity"] == {"useSystemAssignedIdentity": True}
    first = enc["keyVaultProperties"]["currentKeyIdentifier"]
    assert first.startswith(setup.key_id + "/")

    # Rotation: a new version is followed by itself.
    r = setup.key_call("POST", "/keys/cmk/rotate")
    assert r.status_code == 200, r.text
    newest = r.json()["key"]["kid"]

    def current() -> str:
        return str(
            setup.get_account(name).json()["properties"]["encryption"]["keyVaultProperties"][
                "currentKeyIdentifier"
            ]
        )

    wait_for(lambda: current() == newest)

    # Disable the key: everything but GET/LIST/DELETE is refused; enabling it restores the account.
    r = setup.key_call("PATCH", "/keys/cmk", {"attributes": {"enabled": False}})
    assert r.status_code == 200, r.text
    wait_for(lambda: setup.child("GET", name, "assets", "a1").status_code == 400)
    assert_media_error(
        setup.child("GET", name, "assets", "a1"),
        400,
        "BadRequest",
        "Access to the Customer Key was forbidden.",
    )
    assert setup.get_account(name).status_code == 200
    r = setup.key_call("PATCH", "/keys/cmk", {"attributes": {"enabled": True}})
    assert r.status_code == 200, r.text
    wait_for(lambda: setup.child("GET", name, "assets", "a1").status_code == 404)

    # Removing the grant does the same.
    setup.revoke_key_access(principal)
    wait_for(lambda: setup.child("GET", name, "assets", "a1").status_code == 400)
    setup.grant_key_access(principal)
    wait_for(lambda: setup.child("GET", name, "assets", "a1").status_code == 404)
