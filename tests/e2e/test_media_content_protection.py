"""Content protection in Media Services: content key policies (secrets sealed under the account
key, shown only by getPolicyPropertiesWithSecrets), the six predefined streaming policies and the
account's own, streaming locators with their content keys (shown only by listContentKeys); raw
ARM as azure-mgmt-media sends it, the real azure-mgmt-media 10.x under `keyless run`, the Media
Services roles, and an account whose customer key is out of reach (issue 11)."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import pytest

from tests.e2e.key_helpers import sql
from tests.e2e.media_helpers import CHILD_API, MediaSetup, account_path, assert_media_error, unique, wait_for
from tests.e2e.rbac_helpers import MEDIA_OPERATOR, assign, authorization_failed, create_sp, token_for
from tests.e2e.workload_helpers import program, run_json
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

POLICY_ADMIN = "c4bba371-dacd-4a26-b320-7250bca963ae"  # Media Services Policy Administrator
ODATA = "@odata.type"
NOT_FOUND = "The requested resource was not found."
FORBIDDEN = "Access to the Customer Key was forbidden."
PREDEFINED = [
    "Predefined_ClearKey",
    "Predefined_ClearStreamingOnly",
    "Predefined_DownloadAndClearStreaming",
    "Predefined_DownloadOnly",
    "Predefined_MultiDrmCencStreaming",
    "Predefined_MultiDrmStreaming",
]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _token_option(key: bytes, name: str = "token") -> dict[str, Any]:
    return {
        "name": name,
        "configuration": {ODATA: "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
        "restriction": {
            ODATA: "#Microsoft.Media.ContentKeyPolicyTokenRestriction",
            "issuer": "urn:issuer",
            "audience": "urn:audience",
            "primaryVerificationKey": {
                ODATA: "#Microsoft.Media.ContentKeyPolicySymmetricTokenKey",
                "keyValue": _b64(key),
            },
            "alternateVerificationKeys": [],
            "requiredClaims": [{"claimType": "urn:microsoft:azure:mediaservices:contentkeyidentifier"}],
            "restrictionTokenType": "Jwt",
        },
    }


def _fairplay_option(ask: bytes, pfx: str, password: str) -> dict[str, Any]:
    return {
        "name": "fairplay",
        "configuration": {
            ODATA: "#Microsoft.Media.ContentKeyPolicyFairPlayConfiguration",
            "ask": _b64(ask),
            "fairPlayPfxPassword": password,
            "fairPlayPfx": pfx,
            "rentalAndLeaseKeyType": "PersistentUnlimited",
            "rentalDuration": 2249,
        },
        "restriction": {ODATA: "#Microsoft.Media.ContentKeyPolicyOpenRestriction"},
    }


OPEN_CLEAR = {
    "options": [
        {
            "name": "open",
            "configuration": {ODATA: "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
            "restriction": {ODATA: "#Microsoft.Media.ContentKeyPolicyOpenRestriction"},
        }
    ]
}


def _stored(srv: KeylessServer) -> str:
    """Every stored resource document, as one text (to look for plaintext that must not be there)."""
    return "\n".join(str(row[0]) for row in sql(srv, "SELECT document FROM resources"))


def _list(setup: MediaSetup, account: str, kind: str, token: str | None = None) -> Any:
    """GET of a child collection (no trailing slash)."""
    with setup.srv.arm(token) as arm:
        return arm.get(
            f"{account_path(setup.srv, setup.group, account)}/{kind}", params={"api-version": CHILD_API}
        )


def _account(setup: MediaSetup) -> str:
    name = unique("ams")
    setup.create_account(name)
    return name


def _asset(setup: MediaSetup, account: str, name: str) -> None:
    r = setup.child("PUT", account, "assets", name, {})
    assert r.status_code == 201, r.text


def test_content_key_policies_keep_secrets_sealed(media_server: KeylessServer) -> None:
    srv, setup = media_server, MediaSetup(media_server)
    account = _account(setup)
    key, alternate, ask = os.urandom(48), os.urandom(32), os.urandom(16)
    pfx, password = _b64(os.urandom(600)), "pfx-password-" + uuid.uuid4().hex
    options = [_token_option(key), _fairplay_option(ask, pfx, password)]
    options[0]["restriction"]["alternateVerificationKeys"] = [
        {ODATA: "#Microsoft.Media.ContentKeyPolicySymmetricTokenKey", "keyValue": _b64(alternate)},
        {
            ODATA: "#Microsoft.Media.ContentKeyPolicyRsaTokenKey",
            "exponent": "AQAB",
            "modulus": _b64(b"m" * 256),
        },
    ]
    r = setup.child(
        "PUT", account, "contentKeyPolicies", "ckp", {"properties": {"description": "d", "options": options}}
    )
    assert r.status_code == 200, r.text  # Azure answers 200 for a new policy too
    created = r.json()
    props = created["properties"]
    assert created["type"] == "Microsoft.Media/mediaservices/contentKeyPolicies" and "systemData" in created
    assert uuid.UUID(props["policyId"]) and props["created"] and props["lastModified"]
    restriction = props["options"][0]["restriction"]
    assert restriction["primaryVerificationKey"]["keyValue"] == ""
    assert restriction["alternateVerificationKeys"][0]["keyValue"] == ""
    assert restriction["alternateVerificationKeys"][1]["exponent"] == "AQAB"  # public: shown
    fairplay = props["options"][1]["configuration"]
    assert (fairplay["ask"], fairplay["fairPlayPfx"], fairplay["fairPlayPfxPassword"]) == ("", "", "")
    assert all(uuid.UUID(o["policyOptionId"]) for o in props["options"])

    secrets = [_b64(key), _b64(alternate), _b64(ask), pfx, password]
    got = setup.child("GET", account, "contentKeyPolicies", "ckp")
    listed = _list(setup, account, "contentKeyPolicies")
    assert got.status_code == 200 and listed.status_code == 200, listed.text
    assert got.json()["properties"] == props
    assert [p["name"] for p in listed.json()["value"]] == ["ckp"]
    for text in (r.text, got.text, listed.text, _stored(srv)):
        assert not any(secret in text for secret in secrets)

    # The secrets, only through the action: the bare properties.
    r = setup.child("POST", account, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets")
    assert r.status_code == 200, r.text
    bare = r.json()
    assert "id" not in bare and bare["policyId"] == props["policyId"]
    restriction = bare["options"][0]["restriction"]
    assert base64.b64decode(restriction["primaryVerificationKey"]["keyValue"]) == key
    assert base64.b64decode(restriction["alternateVerificationKeys"][0]["keyValue"]) == alternate
    fairplay = bare["options"][1]["configuration"]
    assert base64.b64decode(fairplay["ask"]) == ask
    assert (fairplay["fairPlayPfx"], fairplay["fairPlayPfxPassword"]) == (pfx, password)

    # Every malformed request: 400 BadRequest, and the policy is as it was.
    bad_options: list[Any] = [
        None,
        [],
        [OPEN_CLEAR["options"][0]] * 31,
        [
            {
                **OPEN_CLEAR["options"][0],
                "configuration": {ODATA: "#Microsoft.Media.ContentKeyPolicyNoSuchConfiguration"},
            }
        ],
        [{**OPEN_CLEAR["options"][0], "restriction": {ODATA: "#Microsoft.Media.Nothing"}}],
        [{"name": "x", "configuration": {ODATA: "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"}}],
        [
            {
                **_token_option(key),
                "restriction": {**_token_option(key)["restriction"], "primaryVerificationKey": None},
            }
        ],
        [
            {
                **_token_option(key),
                "restriction": {**_token_option(key)["restriction"], "restrictionTokenType": "Saml"},
            }
        ],
        [_token_option(b"")],
        [
            {
                **_token_option(key),
                "restriction": {
                    **_token_option(key)["restriction"],
                    "primaryVerificationKey": {
                        ODATA: "#Microsoft.Media.ContentKeyPolicySymmetricTokenKey",
                        "keyValue": "not base64!",
                    },
                },
            }
        ],
        [_fairplay_option(os.urandom(8), pfx, password)],
        [
            {
                **OPEN_CLEAR["options"][0],
                "configuration": {ODATA: "#Microsoft.Media.ContentKeyPolicyWidevineConfiguration"},
            }
        ],
        [
            {
                **OPEN_CLEAR["options"][0],
                "configuration": {
                    ODATA: "#Microsoft.Media.ContentKeyPolicyPlayReadyConfiguration",
                    "licenses": [],
                },
            }
        ],
    ]
    for bad in bad_options:
        for name in ("ckp", "fresh"):
            r = setup.child("PUT", account, "contentKeyPolicies", name, {"properties": {"options": bad}})
            assert_media_error(r, 400, "BadRequest")
    assert setup.child("GET", account, "contentKeyPolicies", "ckp").json()["properties"] == props
    assert_media_error(setup.child("GET", account, "contentKeyPolicies", "fresh"), 404, "NotFound", NOT_FOUND)
    r = setup.child("PUT", account, "contentKeyPolicies", "bad.name", OPEN_CLEAR)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidResourceName", r.text

    # PATCH: the description alone keeps the options and their secrets; new options replace them.
    r = setup.child("PATCH", account, "contentKeyPolicies", "ckp", {"properties": {"description": "new"}})
    assert r.status_code == 200, r.text
    assert (
        r.json()["properties"]["options"] == props["options"]
        and r.json()["properties"]["description"] == "new"
    )
    again = setup.child("POST", account, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets").json()
    assert again["options"] == bare["options"]
    other = os.urandom(40)
    r = setup.child(
        "PATCH", account, "contentKeyPolicies", "ckp", {"properties": {"options": [_token_option(other)]}}
    )
    assert r.status_code == 200, r.text
    again = setup.child("POST", account, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets").json()
    assert [
        base64.b64decode(o["restriction"]["primaryVerificationKey"]["keyValue"]) for o in again["options"]
    ] == [other]
    assert_media_error(
        setup.child("PATCH", account, "contentKeyPolicies", "none", {"properties": {"description": "x"}}),
        404,
        "NotFound",
        NOT_FOUND,
    )
    assert_media_error(
        setup.child("POST", account, "contentKeyPolicies", "none/getPolicyPropertiesWithSecrets"),
        404,
        "NotFound",
    )

    assert setup.child("DELETE", account, "contentKeyPolicies", "ckp").status_code == 200
    assert setup.child("DELETE", account, "contentKeyPolicies", "ckp").status_code == 204
    assert_media_error(setup.child("GET", account, "contentKeyPolicies", "ckp"), 404, "NotFound", NOT_FOUND)


def test_streaming_policies_predefined_and_the_accounts_own(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = _account(setup)
    r = _list(setup, account, "streamingPolicies")
    assert r.status_code == 200, r.text
    listed = r.json()["value"]
    assert [p["name"] for p in listed] == PREDEFINED and "@odata.nextLink" not in r.json()
    for policy in listed:
        assert "systemData" not in policy and policy["properties"]["created"] == "2018-03-19T06:06:06Z"
        assert (
            policy["id"]
            == f"{account_path(media_server, setup.group, account)}/streamingPolicies/{policy['name']}"
        )
        assert policy["type"] == "Microsoft.Media/mediaservices/streamingPolicies"
    clear_key = listed[0]["properties"]
    assert clear_key == {
        "created": "2018-03-19T06:06:06Z",
        "envelopeEncryption": {
            "enabledProtocols": {"download": False, "dash": True, "hls": True, "smoothStreaming": True},
            "clearTracks": [],
            "contentKeys": {"defaultKey": {"label": "clearKeyDefault"}, "keyToTrackMappings": []},
        },
    }
    assert set(listed[5]["properties"]) == {"created", "commonEncryptionCenc", "commonEncryptionCbcs"}
    r = setup.child("GET", account, "streamingPolicies", "Predefined_ClearKey")
    assert r.status_code == 200 and r.json() == listed[0], r.text

    # Predefined names can be neither made nor removed.
    r = setup.child(
        "PUT", account, "streamingPolicies", "Predefined_ClearKey", {"properties": {"noEncryption": {}}}
    )
    assert_media_error(r, 400, "BadRequest", "cannot be created")
    assert_media_error(
        setup.child("DELETE", account, "streamingPolicies", "Predefined_DownloadOnly"), 400, "BadRequest"
    )
    assert setup.child("GET", account, "streamingPolicies", "Predefined_DownloadOnly").status_code == 200

    # The account's own: 201, systemData, created once only; no PATCH.
    clear = {
        "properties": {
            "noEncryption": {
                "enabledProtocols": {"download": True, "dash": True, "hls": False, "smoothStreaming": False}
            }
        }
    }
    r = setup.child("PUT", account, "streamingPolicies", "spClear", clear)
    assert r.status_code == 201, r.text
    mine = r.json()
    assert "systemData" in mine and mine["properties"]["noEncryption"] == clear["properties"]["noEncryption"]
    r = setup.child("PUT", account, "streamingPolicies", "spClear", {"properties": {"noEncryption": {}}})
    assert_media_error(r, 400, "BadRequest", "already exists")
    assert_media_error(
        setup.child("PATCH", account, "streamingPolicies", "spClear", clear), 405, "MethodNotAllowed"
    )
    assert setup.child("GET", account, "streamingPolicies", "spClear").json() == mine

    # Malformed or dangling: 400, nothing stored.
    cenc = {
        "properties": {
            "defaultContentKeyPolicyName": "ckp",
            "commonEncryptionCenc": {
                "enabledProtocols": {"download": False, "dash": True, "hls": False, "smoothStreaming": True},
                "contentKeys": {"defaultKey": {"label": "cencDefaultKey"}},
                "drm": {
                    "playReady": {"customLicenseAcquisitionUrlTemplate": "https://lic/{ContentKeyId}"},
                    "widevine": {},
                },
            },
        }
    }
    for body in (
        {"properties": {}},
        {"properties": {"noEncryption": {"enabledProtocols": {"download": "yes"}}}},
        cenc,  # the content key policy does not exist yet
        {"properties": {"commonEncryptionCenc": {"drm": {"fairPlay": {"allowPersistentLicense": True}}}}},
        {
            "properties": {
                "envelopeEncryption": {
                    "clearTracks": [{"trackSelections": [{"property": "Size", "operation": "Equal"}]}]
                }
            }
        },
    ):
        assert_media_error(setup.child("PUT", account, "streamingPolicies", "spBad", body), 400, "BadRequest")
    assert_media_error(setup.child("GET", account, "streamingPolicies", "spBad"), 404, "NotFound", NOT_FOUND)
    assert_media_error(
        setup.child("PUT", account, "streamingPolicies", "spCenc", cenc),
        400,
        "BadRequest",
        f"Content key policy 'ckp' is not found under account '{account}'.",
    )
    assert (
        setup.child("PUT", account, "contentKeyPolicies", "ckp", {"properties": OPEN_CLEAR}).status_code
        == 200
    )
    r = setup.child("PUT", account, "streamingPolicies", "spCenc", cenc)
    assert r.status_code == 201, r.text
    section = r.json()["properties"]["commonEncryptionCenc"]
    assert section["clearTracks"] == [] and section["contentKeys"]["keyToTrackMappings"] == []

    # Lists: ordinal order by name (upper case first), 10 a page, nextLink with the api-version.
    for name in ("a1", "a2", "a3"):
        assert setup.child("PUT", account, "streamingPolicies", name, clear).status_code == 201
    r = _list(setup, account, "streamingPolicies")
    page = r.json()
    expected = sorted([*PREDEFINED, "spClear", "spCenc", "a1", "a2", "a3"])
    assert [p["name"] for p in page["value"]] == expected[:10]
    assert "api-version=" in page["@odata.nextLink"]
    with media_server.arm() as arm:
        rest = arm.get(page["@odata.nextLink"].replace("https://management.azure.com", ""))
    assert rest.status_code == 200, rest.text
    assert [p["name"] for p in rest.json()["value"]] == expected[10:] and "@odata.nextLink" not in rest.json()

    assert setup.child("DELETE", account, "streamingPolicies", "spClear").status_code == 200
    assert setup.child("DELETE", account, "streamingPolicies", "spClear").status_code == 204
    assert_media_error(
        setup.child("GET", account, "streamingPolicies", "spClear"), 404, "NotFound", NOT_FOUND
    )


def test_streaming_locators_and_their_content_keys(media_server: KeylessServer) -> None:
    srv, setup = media_server, MediaSetup(media_server)
    account = _account(setup)
    _asset(setup, account, "movie")
    assert (
        setup.child("PUT", account, "contentKeyPolicies", "ckp", {"properties": OPEN_CLEAR}).status_code
        == 200
    )

    body = {
        "properties": {
            "assetName": "movie",
            "streamingPolicyName": "Predefined_ClearKey",
            "defaultContentKeyPolicyName": "ckp",
        }
    }
    r = setup.child("PUT", account, "streamingLocators", "loc", body)
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert props["endTime"] == "9999-12-31T23:59:59.9999999Z" and props["filters"] == []
    assert uuid.UUID(props["streamingLocatorId"]) and props["created"]
    (key,) = props["contentKeys"]
    assert set(key) == {"id", "type", "labelReferenceInStreamingPolicy", "tracks"}  # no value, no policyName
    assert (key["type"], key["labelReferenceInStreamingPolicy"], key["tracks"]) == (
        "EnvelopeEncryption",
        "clearKeyDefault",
        [],
    )
    got = setup.child("GET", account, "streamingLocators", "loc")
    assert got.status_code == 200 and got.json()["properties"] == props

    r = setup.child("POST", account, "streamingLocators", "loc/listContentKeys")
    assert r.status_code == 200, r.text
    (listed,) = r.json()["contentKeys"]
    assert listed["id"] == key["id"] and listed["policyName"] == "ckp" and listed["tracks"] == []
    value = listed["value"]
    assert len(base64.b64decode(value)) == 16
    assert value not in got.text and value not in _stored(srv)
    r = setup.child("POST", account, "streamingLocators", "loc/listPaths")
    assert r.status_code == 200 and r.json() == {"streamingPaths": [], "downloadPaths": []}
    r = setup.child("POST", account, "assets", "movie/listStreamingLocators")
    assert [loc["name"] for loc in r.json()["streamingLocators"]] == ["loc"]

    # Created once: a second PUT is 400, there is no PATCH; the locator and its key are unchanged.
    assert_media_error(
        setup.child("PUT", account, "streamingLocators", "loc", body), 400, "BadRequest", "already exists"
    )
    assert_media_error(
        setup.child("PATCH", account, "streamingLocators", "loc", body), 405, "MethodNotAllowed"
    )
    assert setup.child("GET", account, "streamingLocators", "loc").json()["properties"] == props
    again = setup.child("POST", account, "streamingLocators", "loc/listContentKeys").json()["contentKeys"]
    assert again[0]["value"] == value

    # Every dangling or malformed request: 400 BadRequest, nothing stored.
    used_id = props["streamingLocatorId"]
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"assetName": "nope", "streamingPolicyName": "Predefined_ClearKey"},
            f"Asset 'nope' is not found under account '{account}'.",
        ),
        (
            {"assetName": "movie", "streamingPolicyName": "spNone"},
            f"Streaming policy 'spNone' is not found under account '{account}'.",
        ),
        (
            {
                "assetName": "movie",
                "streamingPolicyName": "Predefined_ClearKey",
                "defaultContentKeyPolicyName": "none",
            },
            "Content key policy 'none'",
        ),
        ({"streamingPolicyName": "Predefined_ClearKey"}, "assetName"),
        ({"assetName": "movie"}, "streamingPolicyName"),
        (
            {"assetName": "movie", "streamingPolicyName": "Predefined_ClearKey", "streamingLocatorId": "x"},
            "uuid",
        ),
        (
            {
                "assetName": "movie",
                "streamingPolicyName": "Predefined_ClearKey",
                "streamingLocatorId": used_id,
            },
            "already used",
        ),
        (
            {
                "assetName": "movie",
                "streamingPolicyName": "Predefined_ClearKey",
                "startTime": "2030-01-01T00:00:00Z",
                "endTime": "2020-01-01T00:00:00Z",
            },
            "endTime",
        ),
        (
            {"assetName": "movie", "streamingPolicyName": "Predefined_ClearKey", "endTime": "tomorrow"},
            "endTime",
        ),
        (
            {
                "assetName": "movie",
                "streamingPolicyName": "Predefined_ClearStreamingOnly",
                "contentKeys": [{"id": str(uuid.uuid4()), "value": _b64(os.urandom(16))}],
            },
            "no content keys",
        ),
        (
            {
                "assetName": "movie",
                "streamingPolicyName": "Predefined_ClearKey",
                "contentKeys": [{"id": str(uuid.uuid4()), "labelReferenceInStreamingPolicy": "other"}],
            },
            "label 'other'",
        ),
        (
            {
                "assetName": "movie",
                "streamingPolicyName": "Predefined_ClearKey",
                "contentKeys": [{"id": str(uuid.uuid4()), "value": _b64(os.urandom(8))}],
            },
            "16 bytes",
        ),
        ({"assetName": "movie", "streamingPolicyName": "Predefined_ClearKey", "filters": "f"}, "filters"),
    ]
    for case, text in cases:
        r = setup.child("PUT", account, "streamingLocators", "bad", {"properties": case})
        assert_media_error(r, 400, "BadRequest", text)
    assert_media_error(setup.child("GET", account, "streamingLocators", "bad"), 404, "NotFound", NOT_FOUND)

    # The client's own keys and id; the other label gets a key of its own.
    given_id, given_value, locator_id = str(uuid.uuid4()), _b64(os.urandom(16)), str(uuid.uuid4())
    drm = {
        "properties": {
            "assetName": "movie",
            "streamingPolicyName": "Predefined_MultiDrmStreaming",
            "streamingLocatorId": locator_id,
            "startTime": "2018-03-29T10:00:00Z",
            "alternativeMediaId": "alt-1",
            "contentKeys": [
                {"id": given_id, "labelReferenceInStreamingPolicy": "cencKeyDefault", "value": given_value}
            ],
        }
    }
    r = setup.child("PUT", account, "streamingLocators", "drm", drm)
    assert r.status_code == 201, r.text
    made = r.json()["properties"]
    assert made["streamingLocatorId"] == locator_id and made["startTime"] == "2018-03-29T10:00:00Z"
    assert made["alternativeMediaId"] == "alt-1"
    assert {(k["labelReferenceInStreamingPolicy"], k["type"]) for k in made["contentKeys"]} == {
        ("cencKeyDefault", "CommonEncryptionCenc"),
        ("cbcsKeyDefault", "CommonEncryptionCbcs"),
    }
    assert all("value" not in k for k in made["contentKeys"]) and given_value not in r.text
    keys = setup.child("POST", account, "streamingLocators", "drm/listContentKeys").json()["contentKeys"]
    by_label = {k["labelReferenceInStreamingPolicy"]: k for k in keys}
    assert by_label["cencKeyDefault"]["id"] == given_id and by_label["cencKeyDefault"]["value"] == given_value
    assert (
        by_label["cbcsKeyDefault"]["value"] != given_value and "policyName" not in by_label["cbcsKeyDefault"]
    )
    assert given_value not in _stored(srv)

    clear = {"properties": {"assetName": "movie", "streamingPolicyName": "Predefined_ClearStreamingOnly"}}
    r = setup.child("PUT", account, "streamingLocators", "clear", clear)
    assert r.status_code == 201 and r.json()["properties"]["contentKeys"] == [], r.text
    listed_locators = _list(setup, account, "streamingLocators").json()["value"]
    assert sorted(loc["name"] for loc in listed_locators) == ["clear", "drm", "loc"]
    assert all("value" not in k for loc in listed_locators for k in loc["properties"]["contentKeys"])

    assert setup.child("DELETE", account, "streamingLocators", "loc").status_code == 200
    assert setup.child("DELETE", account, "streamingLocators", "loc").status_code == 204
    assert_media_error(setup.child("GET", account, "streamingLocators", "loc"), 404, "NotFound", NOT_FOUND)
    assert_media_error(
        setup.child("POST", account, "streamingLocators", "loc/listContentKeys"), 404, "NotFound"
    )


def test_media_roles_keep_secrets_from_policy_admins_and_operators(media_server: KeylessServer) -> None:
    srv, setup = media_server, MediaSetup(media_server)
    account = _account(setup)
    _asset(setup, account, "movie")
    scope = account_path(srv, setup.group, account)
    admin_sp, operator_sp = create_sp(srv, "policy-admin"), create_sp(srv, "media-operator")
    assign(srv, scope, admin_sp["objectId"], POLICY_ADMIN)
    assign(srv, scope, operator_sp["objectId"], MEDIA_OPERATOR)
    admin, operator = token_for(srv, admin_sp), token_for(srv, operator_sp)

    body = {"properties": {"options": [_token_option(os.urandom(32))]}}
    assert setup.child("PUT", account, "contentKeyPolicies", "ckp", body, token=admin).status_code == 200
    assert setup.child("GET", account, "contentKeyPolicies", "ckp", token=admin).status_code == 200
    r = setup.child("POST", account, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets", token=admin)
    action = "Microsoft.Media/mediaservices/contentKeyPolicies/getPolicyPropertiesWithSecrets/action"
    text = authorization_failed(admin_sp["objectId"], action, f"{scope}/contentKeyPolicies/ckp")
    assert_media_error(r, 403, "AuthorizationFailed")
    assert r.json()["error"]["message"].lower() == text.lower()
    # The operator may not write content key policies (read-only beyond its own types).
    r = setup.child("PUT", account, "contentKeyPolicies", "other", body, token=operator)
    assert_media_error(r, 403, "AuthorizationFailed")

    locator = {"properties": {"assetName": "movie", "streamingPolicyName": "Predefined_ClearKey"}}
    assert setup.child("PUT", account, "streamingLocators", "loc", locator, token=operator).status_code == 201
    assert (
        setup.child("POST", account, "streamingLocators", "loc/listPaths", token=operator).status_code == 200
    )
    r = setup.child("POST", account, "streamingLocators", "loc/listContentKeys", token=operator)
    assert_media_error(r, 403, "AuthorizationFailed", "streamingLocators/listContentKeys/action")
    # The policy administrator may not make locators, but may list the streaming policies.
    assert_media_error(
        setup.child("PUT", account, "streamingLocators", "l2", locator, token=admin),
        403,
        "AuthorizationFailed",
    )
    assert _list(setup, account, "streamingPolicies", token=admin).status_code == 200
    # The owner (the admin here) may do both.
    assert (
        setup.child("POST", account, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets").status_code
        == 200
    )
    assert setup.child("POST", account, "streamingLocators", "loc/listContentKeys").status_code == 200


def test_customer_key_out_of_reach_stops_content_protection(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server, vault=True)
    account = unique("ams")
    principal = setup.create_account(account)["identity"]["principalId"]
    setup.grant_key_access(principal)
    cmk = {"encryption": {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": setup.key_id}}}
    assert setup.patch_account(account, {"properties": cmk}).status_code == 202
    _asset(setup, account, "movie")
    key = os.urandom(32)
    ckp = {"properties": {"options": [_token_option(key)]}}
    assert setup.child("PUT", account, "contentKeyPolicies", "ckp", ckp).status_code == 200
    locator = {"properties": {"assetName": "movie", "streamingPolicyName": "Predefined_ClearKey"}}
    assert setup.child("PUT", account, "streamingLocators", "loc", locator).status_code == 201
    value = setup.child("POST", account, "streamingLocators", "loc/listContentKeys").json()["contentKeys"][0][
        "value"
    ]

    setup.revoke_key_access(principal)
    wait_for(lambda: setup.child("GET", account, "contentKeyPolicies", "ckp").status_code == 400)
    calls: list[tuple[str, str, str, Any]] = [
        ("GET", "contentKeyPolicies", "ckp", None),
        ("PUT", "contentKeyPolicies", "ckp2", ckp),
        ("POST", "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets", None),
        ("GET", "streamingPolicies", "Predefined_ClearKey", None),
        ("PUT", "streamingPolicies", "sp", {"properties": {"noEncryption": {}}}),
        ("GET", "streamingLocators", "loc", None),
        ("PUT", "streamingLocators", "loc2", locator),
        ("POST", "streamingLocators", "loc/listContentKeys", None),
        ("DELETE", "streamingLocators", "loc", None),
    ]
    for method, kind, name, body in calls:
        assert_media_error(setup.child(method, account, kind, name, body), 400, "BadRequest", FORBIDDEN)
    for kind in ("streamingPolicies", "contentKeyPolicies", "streamingLocators"):
        assert_media_error(_list(setup, account, kind), 400, "BadRequest", FORBIDDEN)
    assert setup.get_account(account).status_code == 200

    # Access back: nothing was made or removed meanwhile, and the sealed values still open.
    setup.grant_key_access(principal)
    wait_for(lambda: setup.child("GET", account, "contentKeyPolicies", "ckp").status_code == 200)
    for kind, name in (
        ("contentKeyPolicies", "ckp2"),
        ("streamingPolicies", "sp"),
        ("streamingLocators", "loc2"),
    ):
        assert setup.child("GET", account, kind, name).status_code == 404
    r = setup.child("POST", account, "contentKeyPolicies", "ckp/getPolicyPropertiesWithSecrets")
    assert (
        base64.b64decode(r.json()["options"][0]["restriction"]["primaryVerificationKey"]["keyValue"]) == key
    )
    r = setup.child("POST", account, "streamingLocators", "loc/listContentKeys")
    assert r.json()["contentKeys"][0]["value"] == value


SDK_PROGRAM = """
import base64, json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.media import AzureMediaServices
from azure.mgmt.media import models as m
args = json.loads(DATA)
client = AzureMediaServices(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
g, a = args["group"], args["account"]
key = base64.b64decode(args["key"])
option = m.ContentKeyPolicyOption(
    name="token",
    configuration=m.ContentKeyPolicyClearKeyConfiguration(),
    restriction=m.ContentKeyPolicyTokenRestriction(
        issuer="urn:issuer", audience="urn:audience",
        primary_verification_key=m.ContentKeyPolicySymmetricTokenKey(key_value=key),
        restriction_token_type="Jwt",
        required_claims=[m.ContentKeyPolicyTokenClaim(claim_type="urn:microsoft:azure:mediaservices:contentkeyidentifier")],
    ),
)
made = client.content_key_policies.create_or_update(
    g, a, "sdk-ckp", m.ContentKeyPolicy(options=[option], description="by the sdk"))
shown = client.content_key_policies.get(g, a, "sdk-ckp")
secret = client.content_key_policies.get_policy_properties_with_secrets(g, a, "sdk-ckp")
locator = client.streaming_locators.create(g, a, "sdk-loc", m.StreamingLocator(
    asset_name="movie", streaming_policy_name="Predefined_ClearKey", default_content_key_policy_name="sdk-ckp"))
keys = client.streaming_locators.list_content_keys(g, a, "sdk-loc")
paths = client.streaming_locators.list_paths(g, a, "sdk-loc")
policies = [p.name for p in client.streaming_policies.list(g, a)]
print(json.dumps({
    "made_key": (made.options[0].restriction.primary_verification_key.key_value or b"").decode(),
    "shown_key": (shown.options[0].restriction.primary_verification_key.key_value or b"").decode(),
    "secret_key": base64.b64encode(secret.options[0].restriction.primary_verification_key.key_value).decode(),
    "locator_keys": [[k.type, k.label_reference_in_streaming_policy, k.value] for k in locator.content_keys],
    "keys": [[k.type, k.label_reference_in_streaming_policy, k.value, k.policy_name] for k in keys.content_keys],
    "paths": [len(paths.streaming_paths), len(paths.download_paths)],
    "policies": policies,
}))
"""


def test_the_azure_sdk_end_to_end(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = _account(setup)
    _asset(setup, account, "movie")
    key = os.urandom(40)
    out = run_json(
        media_server, program(SDK_PROGRAM, {"group": setup.group, "account": account, "key": _b64(key)})
    )
    assert out["made_key"] == "" and out["shown_key"] == ""
    assert base64.b64decode(out["secret_key"]) == key
    assert out["locator_keys"] == [["EnvelopeEncryption", "clearKeyDefault", None]]
    ((kind, label, value, policy),) = out["keys"]
    assert (kind, label, policy) == ("EnvelopeEncryption", "clearKeyDefault", "sdk-ckp")
    assert len(base64.b64decode(value)) == 16
    assert out["paths"] == [0, 0]
    assert out["policies"] == PREDEFINED
