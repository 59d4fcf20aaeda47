"""Media Services as a hostile principal uses it (issue 11, attack review): each test asserts the
SAFE behaviour, through the real server, raw ARM as azure-mgmt-media sends it, and the real data
planes (Key Vault, Blob).

The attacker is a service principal with Contributor on a resource group of its own (so it may
create Media Services and storage accounts there and list that storage's keys) and nothing else;
the victim's resources (a user-assigned identity, a vault, a storage account) are the admin's.
"""

from __future__ import annotations

import base64
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e import rbac_helpers as rbh
from tests.e2e import storage_helpers as sth
from tests.e2e.media_helpers import (
    MediaSetup,
    account_path,
    assert_media_error,
    storage_id,
    unique,
)
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

ASSIGN = "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"
STORAGE_API = sth.STORAGE_API


def _attacker(srv: KeylessServer, setup: MediaSetup) -> tuple[dict[str, Any], str]:
    """A principal with Contributor on ``setup``'s group only, and its ARM token."""
    sp = rbh.create_sp(srv, unique("attacker"))
    rbh.assign(srv, rbh.rg_scope(srv, setup.group), sp["objectId"], rbh.CONTRIBUTOR)
    return sp, rbh.token_for(srv, sp)


def _with_uami(setup: MediaSetup, uami_id: str, **props: Any) -> dict[str, Any]:
    """An account body of ``setup`` using user-assigned identity ``uami_id`` only."""
    body = setup.account_body(identity=None, **props)
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {uami_id: {}}}
    return body


# --- 1. acting as an identity the caller may not assign ---------------------------------------


def test_an_identity_the_caller_may_not_assign_is_never_used(media_server: KeylessServer) -> None:
    """A Media account write names someone else's user-assigned identity. Assigning it needs
    ``userAssignedIdentities/*/assign/action`` on it, which the attacker lacks: the write must be
    refused (403) BEFORE Media Services reaches Key Vault or Storage with that identity's token,
    so the answer cannot tell what the identity may do in the victim's vault or storage."""
    srv = media_server
    mine = MediaSetup(srv)
    victim = MediaSetup(srv, vault=True)
    _, token = _attacker(srv, mine)
    uami = rbh.create_uami(srv, victim.group, unique("victim-id"))
    uami_id = uami["id"]
    ref = {"useSystemAssignedIdentity": False, "userAssignedIdentity": uami_id}
    cmk = {
        "type": "CustomerKey",
        "keyVaultProperties": {"keyIdentifier": victim.key_id},
        "identity": ref,
    }

    # (a) The victim's identity has no access to the victim's key.
    name = unique("ams")
    r = mine.put_account(name, _with_uami(mine, uami_id, encryption=cmk), token=token)
    assert_media_error(r, 403, "AuthorizationFailed", ASSIGN)

    # (b) It has access, and the key is disabled: the state of the victim's key must not show.
    victim.grant_key_access(uami["properties"]["principalId"])
    r = victim.key_call("PATCH", "/keys/cmk", {"attributes": {"enabled": False}})
    assert r.status_code == 200, r.text
    r = mine.put_account(unique("ams"), _with_uami(mine, uami_id, encryption=cmk), token=token)
    assert_media_error(r, 403, "AuthorizationFailed", ASSIGN)
    assert "disabled" not in r.text

    # (c) Storage as the victim's identity, as a trusted service: same 403, no storage answer.
    storage = [{"id": storage_id(srv, mine.group, mine.storage), "type": "Primary", "identity": ref}]
    body = _with_uami(mine, uami_id, storageAuthentication="ManagedIdentity", storageAccounts=storage)
    r = mine.put_account(unique("ams"), body, token=token)
    assert_media_error(r, 403, "AuthorizationFailed", ASSIGN)
    assert "Storage account cannot be accessed" not in r.text


# --- 2. a storage account known only by its (reusable) name -----------------------------------


def _sas(setup: MediaSetup, account: str, asset: str, token: str) -> httpx.Response:
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return setup.child(
        "POST",
        account,
        "assets",
        f"{asset}/listContainerSas",
        {"permissions": "ReadWriteDelete", "expiryTime": expiry},
        token=token,
    )


def test_a_storage_name_taken_over_by_someone_else_is_not_the_attached_account(
    media_server: KeylessServer,
) -> None:
    """Storage account names are global and reusable. The attacker attaches its own storage
    account, deletes it, and the victim later creates a storage account with the same name in
    another group. The Media account still names the attacker's (deleted) resource id; it must
    not reach the victim's account with the victim's keys (System authentication), neither to
    create an asset there nor to sign a container SAS."""
    srv = media_server
    mine = MediaSetup(srv)
    _, token = _attacker(srv, mine)
    name = unique("ams")
    r = mine.put_account(name, mine.account_body(identity=None), token=token)
    assert r.status_code == 201, r.text
    with srv.arm(token) as arm:
        r = arm.delete(sth.account_path(srv, mine.group, mine.storage), params={"api-version": STORAGE_API})
    assert r.status_code in (200, 204), r.text

    victim_group = unique("rg-victim-")
    rbh.create_group(srv, victim_group)
    sth.create_account(srv, victim_group, mine.storage)  # same global name, the victim's account
    sth.grant(
        srv, srv.admin["objectId"], sth.BLOB_ROLES["owner"], sth.account_path(srv, victim_group, mine.storage)
    )
    with sth.blob_client(srv, mine.storage, sth.storage_token(srv)) as blob:
        assert blob.put("/private", params={"restype": "container"}).status_code == 201
        r = blob.put("/private/payroll.csv", content=b"secret", headers={"x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 201, r.text

    r = mine.child("PUT", name, "assets", "grab", {"properties": {"container": "private"}}, token=token)
    assert r.status_code == 400, f"asset made in the victim's storage account: {r.status_code} {r.text}"
    r = _sas(mine, name, "grab", token)
    assert r.status_code != 200, r.text


def test_an_existing_asset_does_not_sign_sas_for_a_storage_name_taken_over(
    media_server: KeylessServer,
) -> None:
    """The same takeover with an asset made while the storage account was still the attacker's:
    ``listContainerSas`` must not sign with the keys of whoever holds the name now (the URL it
    answers today reads the victim's blob)."""
    srv = media_server
    mine = MediaSetup(srv)
    _, token = _attacker(srv, mine)
    name = unique("ams")
    r = mine.put_account(name, mine.account_body(identity=None), token=token)
    assert r.status_code == 201, r.text
    r = mine.child("PUT", name, "assets", "grab", {"properties": {"container": "private"}}, token=token)
    assert r.status_code == 201, r.text
    with srv.arm(token) as arm:
        r = arm.delete(sth.account_path(srv, mine.group, mine.storage), params={"api-version": STORAGE_API})
    assert r.status_code in (200, 204), r.text

    victim_group = unique("rg-victim-")
    rbh.create_group(srv, victim_group)
    sth.create_account(srv, victim_group, mine.storage)
    sth.grant(
        srv, srv.admin["objectId"], sth.BLOB_ROLES["owner"], sth.account_path(srv, victim_group, mine.storage)
    )
    with sth.blob_client(srv, mine.storage, sth.storage_token(srv)) as blob:
        assert blob.put("/private", params={"restype": "container"}).status_code == 201
        r = blob.put("/private/payroll.csv", content=b"secret", headers={"x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 201, r.text

    r = _sas(mine, name, "grab", token)
    if r.status_code == 200:
        url = r.json()["assetContainerSasUrls"][0]
        base, _, query = url.partition("?")
        with srv.client() as http:
            read = http.get(f"{base}/payroll.csv?{query}", headers={"x-ms-version": sth.BLOB_VERSION})
        pytest.fail(
            f"SAS signed with the victim's key; reading the victim's blob answered {read.status_code} "
            f"{read.content[:20]!r}"
        )
    assert_media_error(r, 400, "BadRequest")


# --- 3. secrets behind notActions: no other spelling reaches them -------------------------------


def test_not_actions_hold_in_every_spelling(media_server: KeylessServer) -> None:
    """A Media Operator may not list content keys, a Policy Administrator may not read policy
    secrets: not in another case, not with an encoded slash, not with a trailing slash."""
    srv = media_server
    setup = MediaSetup(srv)
    account = unique("ams")
    setup.create_account(account)
    assert setup.child("PUT", account, "assets", "movie", {}).status_code == 201
    policy = {
        "options": [
            {
                "name": "open",
                "configuration": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
                "restriction": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyOpenRestriction"},
            }
        ]
    }
    assert setup.child("PUT", account, "contentKeyPolicies", "ckp", {"properties": policy}).status_code == 200
    locator = {"properties": {"assetName": "movie", "streamingPolicyName": "Predefined_ClearKey"}}
    assert setup.child("PUT", account, "streamingLocators", "loc", locator).status_code == 201
    scope = account_path(srv, setup.group, account)
    operator_sp, admin_sp = rbh.create_sp(srv, "op"), rbh.create_sp(srv, "pa")
    rbh.assign(srv, scope, operator_sp["objectId"], rbh.MEDIA_OPERATOR)
    rbh.assign(srv, scope, admin_sp["objectId"], "c4bba371-dacd-4a26-b320-7250bca963ae")
    operator, admin = rbh.token_for(srv, operator_sp), rbh.token_for(srv, admin_sp)
    base = f"/subscriptions/{srv.subscription_id}/resourceGroups/{setup.group}/providers/Microsoft.Media"
    for token, tail in (
        (operator, "streamingLocators/loc/LISTCONTENTKEYS"),
        (operator, "streamingLocators/loc/listcontentkeys/"),
        (operator, "STREAMINGLOCATORS/loc/listContentKeys"),
        (operator, "streamingLocators/loc%2FlistContentKeys"),
        (admin, "contentKeyPolicies/ckp/GetPolicyPropertiesWithSecrets"),
        (admin, "contentkeypolicies/CKP/getpolicypropertieswithsecrets"),
        (operator, "assets/movie/GETENCRYPTIONKEY"),
    ):
        for spelling in ("mediaServices", "MEDIASERVICES"):
            with srv.arm(token) as arm:
                r = arm.post(f"{base}/{spelling}/{account}/{tail}", params={"api-version": "2022-08-01"})
            assert r.status_code in (403, 404), (tail, spelling, r.status_code, r.text)
            assert "value" not in r.text and "keyValue" not in r.text, r.text


# --- 4. two creations racing: the account key is for life --------------------------------------


def test_racing_creations_never_replace_the_account_key(media_server: KeylessServer) -> None:
    """Two PUTs create the same customer-key account at once (each plans a new account key while
    no row exists, then Key Vault wraps it). A content key policy written between the two commits
    is sealed under the first key; the second commit must not replace the account key (the
    policy's secrets would never open again)."""
    srv = media_server
    setup = MediaSetup(srv, vault=True)
    uami = rbh.create_uami(srv, setup.group, unique("id"))
    setup.grant_key_access(uami["properties"]["principalId"])
    ref = {"useSystemAssignedIdentity": False, "userAssignedIdentity": uami["id"]}
    cmk = {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": setup.key_id}, "identity": ref}
    body = _with_uami(setup, uami["id"], encryption=cmk)
    secret = {
        "options": [
            {
                "name": "token",
                "configuration": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
                "restriction": {
                    "@odata.type": "#Microsoft.Media.ContentKeyPolicyTokenRestriction",
                    "issuer": "urn:i",
                    "audience": "urn:a",
                    "primaryVerificationKey": {
                        "@odata.type": "#Microsoft.Media.ContentKeyPolicySymmetricTokenKey",
                        "keyValue": base64.b64encode(os.urandom(32)).decode(),
                    },
                    "restrictionTokenType": "Jwt",
                },
            }
        ]
    }
    token = srv.admin_token()

    written: set[str] = set()
    lock = threading.Lock()

    def create_then_policy(name: str) -> int:
        """PUT the account; the first PUT to be answered writes the policy at once."""
        r = setup.put_account(name, body, token=token)
        with lock:
            first = r.status_code in (200, 201) and name not in written
            if first:
                written.add(name)
        if first:
            p = setup.child("PUT", name, "contentKeyPolicies", "ckp", {"properties": secret}, token=token)
            assert p.status_code == 200, p.text
        return r.status_code

    broken = []
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            name = unique("ams")
            list(pool.map(create_then_policy, [name] * 8))
            r = setup.child(
                "POST", name, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets", token=token
            )
            if r.status_code != 200:
                broken.append((name, r.status_code, r.text[:200]))
    assert not broken, broken
