"""Media Services' hostile requests for the fuzz test, all in the ``arm`` family (so the database is
compared after every write): every route of ``providers/media/http.py`` and ``locations.py``.

The account (``Microsoft.Media/mediaservices``: PUT, PATCH, GET, DELETE, the lists by group and
subscription, ``syncStorageKeys``, ``listEdgePolicies``), the location operations
(``checkNameAvailability``, ``mediaServicesOperationStatuses/{id}``,
``mediaServicesOperationResults/{id}``) and the children under ``.../mediaServices/{account}``:
assets (``listContainerSas``, ``listStreamingLocators``, ``getEncryptionKey``), content key policies
(``getPolicyPropertiesWithSecrets``), streaming policies (the predefined ones too) and streaming
locators (``listContentKeys``, ``listPaths``).

The targets (``make_media_targets``) are real, so requests reach deep: storage account
``fuzzamsstore`` and account ``fuzzams`` (``fuzz-ams`` breaks the account name rule: 3-24
lower-case letters and digits) in ``fuzz-rg``, with asset ``fuzz-asset``, content key policy
``fuzz-ckp`` (a token restriction, so it has a sealed secret), streaming policy ``fuzz-sp`` and
locator ``fuzz-locator``, an EC key ``fuzz-ec`` in Key Vault's ``fuzz-kv`` and a recorded account
PATCH operation. As everywhere in the fuzz test, every write carries a name, a body or a
precondition header that must be refused; writes of a new child (``fuzz-asset-new``,
``fuzz-sp-new``, ``fuzz-locator-new``) are sent only with bodies the service must refuse, so a
partial write (a container made, a row kept) shows up as a change.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import orjson

from tests.e2e import keyvault_helpers as kvh
from tests.e2e import storage_helpers as sth
from tests.e2e.fuzz_cases import BAD_JSON, ENVELOPE, EXTRA, IDENTITY, WRONG, Case, Headers, Route, set_field
from tests.e2e.fuzz_helpers import ARM_HOST, Hostile, Ids
from tests.e2e.fuzz_keyvault import KeyVaultGenerator
from tests.e2e.media_helpers import CHILD_API, MEDIA_API
from tests.keyless_server import KeylessServer

SUB = "/subscriptions/{sub}"
RG = SUB + "/resourceGroups/fuzz-rg"
ACCOUNT = RG + "/providers/Microsoft.Media/mediaservices/{ams}"
CHILD = RG + "/providers/Microsoft.Media/mediaServices/{ams}"  # the SDK's spelling for children
LOCATION = SUB + "/providers/Microsoft.Media/locations/westeurope"
ASSET, ASSET_NEW = CHILD + "/assets/fuzz-asset", CHILD + "/assets/fuzz-asset-new"
CKP = CHILD + "/contentKeyPolicies/fuzz-ckp"
SP, SP_NEW = CHILD + "/streamingPolicies/fuzz-sp", CHILD + "/streamingPolicies/fuzz-sp-new"
PREDEFINED = CHILD + "/streamingPolicies/Predefined_ClearKey"
LOCATOR, LOCATOR_NEW = (
    CHILD + "/streamingLocators/fuzz-locator",
    CHILD + "/streamingLocators/fuzz-locator-new",
)
STORAGE = "/providers/Microsoft.Storage/storageAccounts/"
OTHER_SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/fuzz-rg"
ODATA = "#Microsoft.Media."
PROTOCOLS = {"download": False, "dash": True, "hls": True, "smoothStreaming": True}

# fmt: off
ACCOUNT_TEMPLATE: dict[str, Any] = {
    "location": "westeurope", "identity": {"type": "SystemAssigned"},
    "properties": {
        "storageAccounts": [{"id": "{ams_storage}", "type": "Primary"}], "encryption": {"type": "SystemKey"},
        "keyDelivery": {"accessControl": {"defaultAction": "Allow", "ipAllowList": []}},
        "storageAuthentication": "System", "publicNetworkAccess": "Enabled",
    },
}
OPEN_OPTION: dict[str, Any] = {
    "name": "open", "configuration": {"@odata.type": ODATA + "ContentKeyPolicyClearKeyConfiguration"},
    "restriction": {"@odata.type": ODATA + "ContentKeyPolicyOpenRestriction"},
}
SYMMETRIC = {"@odata.type": ODATA + "ContentKeyPolicySymmetricTokenKey",
             "keyValue": base64.b64encode(bytes(16)).decode()}
TOKEN: dict[str, Any] = {
    "@odata.type": ODATA + "ContentKeyPolicyTokenRestriction", "issuer": "urn:fuzz", "audience": "urn:aud",
    "primaryVerificationKey": SYMMETRIC, "restrictionTokenType": "Jwt",
}
FAIRPLAY: dict[str, Any] = {
    "@odata.type": ODATA + "ContentKeyPolicyFairPlayConfiguration",
    "ask": base64.b64encode(bytes(16)).decode(),
    "fairPlayPfxPassword": "pw", "fairPlayPfx": "cGZ4", "rentalAndLeaseKeyType": "PersistentUnlimited",
    "rentalDuration": 0,
}
LICENSE: dict[str, Any] = {
    "allowTestDevices": False, "licenseType": "NonPersistent", "contentType": "Unspecified",
    "contentKeyLocation": {"@odata.type": ODATA + "ContentKeyPolicyPlayReadyContentEncryptionKeyFromHeader"},
}
# fmt: on
PLAYREADY = {"@odata.type": ODATA + "ContentKeyPolicyPlayReadyConfiguration", "licenses": [LICENSE]}
ENVELOPE_SECTION = {"enabledProtocols": PROTOCOLS, "contentKeys": {"defaultKey": {"label": "fuzzKey"}}}
IF_MATCH = ((b"If-Match", b'"garbage"'),)


def _ok(r: Any, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), r.text
    body: dict[str, Any] = r.json() if r.content else {}
    return body


def make_media_targets(srv: KeylessServer, values: dict[str, str]) -> dict[str, str]:
    """Media Services' targets, made by the admin in ``fuzz-rg`` (module docstring); ``values``:
    ``make_targets``' (the vault ``fuzz-kv`` must exist). The values the routes fill in: the
    account, storage account id and name, a content key id of the locator, its locator id (as
    given and upper-case), an operation id, and SAS expiry times (in 2 hours; in 2 days)."""
    group, storage = "fuzz-rg", "fuzzamsstore"
    sth.create_account(srv, group, storage)
    ec = {"kty": "EC", "crv": "P-256"}
    with kvh.vault_client(srv, values["vault"], kvh.vault_token(srv)) as kv:
        _ok(kv.post("/keys/fuzz-ec/create", params={"api-version": "7.5"}, json=ec))
    ids = Ids(
        {**values, "ams": "fuzzams", "ams_storage": sth.account_path(srv, group, storage)}, "", "", "", ""
    )
    media, child = {"api-version": MEDIA_API}, {"api-version": CHILD_API}
    options = [{"name": "token", "configuration": OPEN_OPTION["configuration"], "restriction": TOKEN}]
    policy = {"defaultContentKeyPolicyName": "fuzz-ckp", "envelopeEncryption": ENVELOPE_SECTION}
    with srv.arm() as arm:
        _ok(arm.put(ids.fill(ACCOUNT), params=media, json=ids.fill_doc(ACCOUNT_TEMPLATE)))
        _ok(arm.put(ids.fill(ASSET), params=child, json={"properties": {"description": "fuzz asset"}}))
        _ok(arm.put(ids.fill(CKP), params=child, json={"properties": {"options": options}}))
        _ok(arm.put(ids.fill(SP), params=child, json={"properties": policy}))
        locator = _ok(arm.put(ids.fill(LOCATOR), params=child, json=LOCATOR_TEMPLATE))["properties"]
        r = arm.patch(ids.fill(ACCOUNT), params=media, json={"tags": {"fuzz": "media"}})
        assert r.status_code == 202, r.text
    locator_id = locator["streamingLocatorId"]
    soon, far = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + s)) for s in (7200, 172800))
    return {
        "ams": "fuzzams", "ams_storage": ids.values["ams_storage"], "ams_storage_name": storage,
        "ams_locator_id": locator_id, "ams_locator_id_upper": locator_id.upper(),
        "ams_content_key": locator["contentKeys"][0]["id"], "ams_expiry": soon, "ams_expiry_far": far,
        "ams_operation": r.headers["Azure-AsyncOperation"].split("?", 1)[0].rsplit("/", 1)[-1],
    }  # fmt: skip


# --- the account ----------------------------------------------------------------------------

VAULT_HOST = "https://{vault}.vault.azure.net"
KEY = VAULT_HOST + "/keys/fuzz-key"
# fmt: off
# Key identifiers the account must refuse: malformed, another host, not a key, an EC key, a key
# the account's identity cannot reach (fuzz-kv's access policies name only the admin).
BAD_KEY_IDS = (
    KEY + "\n", KEY + "/{key_version}\n", KEY + "\u0000", " " + KEY, "", "https://evil.example/keys/fuzz-key",
    "https://{vault}.vault.azure.net.evil.example/keys/fuzz-key",
    "https://{vault}.vault.azure.net@evil.example/keys/fuzz-key",
    "https://evil.example@{vault}.vault.azure.net/keys/fuzz-key",
    "http://{vault}.vault.azure.net/keys/fuzz-key",
    "https://{vault}.vault.azure.net:8443/keys/fuzz-key", KEY + "?x=1", KEY + "#f",
    VAULT_HOST + "/secrets/fuzz-secret", KEY + "/not-a-version", KEY + "/../../secrets/fuzz-secret",
    VAULT_HOST + "/keys/fuzz%2Dkey", VAULT_HOST + "/keys/" + "k" * 5000, VAULT_HOST + "/keys/fuzz-ec",
    VAULT_HOST + "/keys/nosuchkey", KEY, KEY + "/{key_version}",
    "https://nosuchvault.vault.azure.net/keys/fuzz-key",
    "https://{gone_vault}.vault.azure.net/keys/fuzz-key",
)
PRIMARY = {"id": "{ams_storage}", "type": "Primary"}
BAD_RESOURCE_IDENTITIES: tuple[Any, ...] = (
    {"useSystemAssignedIdentity": True, "userAssignedIdentity": "{uami}"},
    {"useSystemAssignedIdentity": False},
    {}, {"useSystemAssignedIdentity": "true"}, {"useSystemAssignedIdentity": None},
    {"useSystemAssignedIdentity": False, "userAssignedIdentity": "{ams_storage}"},
    {"useSystemAssignedIdentity": False, "userAssignedIdentity": 5},
    {"useSystemAssignedIdentity": False, "userAssignedIdentity": "u" * 5000}, 5,
)
BAD_STORAGE: tuple[Any, ...] = (
    [], [1], [{"id": "{ams_storage}"}], [{"id": "{ams_storage}", "type": "Secondary"}],
    [{"id": "{ams_storage}", "type": "Tertiary"}], [PRIMARY, {"id": "{ams_storage}", "type": "Secondary"}],
    [PRIMARY, PRIMARY], [PRIMARY] * 100, [{"id": "{ams_storage}\n", "type": "Primary"}],
    [{"id": "not-an-id", "type": "Primary"}], [{"id": 5, "type": "Primary"}],
    [{"id": OTHER_SUB + STORAGE + "{ams_storage_name}", "type": "Primary"}],
    [{"id": RG + STORAGE + "nosuchstorage", "type": "Primary"}],
    [{"id": "{ams_storage}/blobServices/default", "type": "Primary"}],
    [{"id": RG + "/providers/Microsoft.KeyVault/vaults/{vault}", "type": "Primary"}],
    [{"id": "/" + "s/" * 3000, "type": "Primary"}],
    *([{**PRIMARY, "identity": bad}] for bad in BAD_RESOURCE_IDENTITIES),
)
# fmt: on


def _deny(*entries: Any) -> dict[str, Any]:
    return {"accessControl": {"defaultAction": "Deny", "ipAllowList": list(entries)}}


def _cmk(key_id: Any, **more: Any) -> dict[str, Any]:
    return {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": key_id}, **more}


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "SystemKey"}
    for _ in range(levels):
        value = {"a": value}
    return value


# fmt: off
ACCOUNT_EXTRA: dict[str, tuple[Any, ...]] = {
    "identity.type": ("Bogus", "SystemAssigned\n", "t" * 3000),
    "properties.storageAccounts": BAD_STORAGE,
    "properties.encryption": (
        {"type": "CustomerKey"}, {"type": "CustomerKey", "keyVaultProperties": 5},
        {"type": "CustomerKey", "keyVaultProperties": {}}, {"type": "Other"},
        {"type": "SystemKey", "keyVaultProperties": {"keyIdentifier": KEY}},
        *(_cmk(key_id) for key_id in BAD_KEY_IDS), _cmk(5),
        _cmk(KEY, identity={"useSystemAssignedIdentity": False}),
        _cmk(KEY, identity={"useSystemAssignedIdentity": False, "userAssignedIdentity": "{uami}"}),
        _nested(70),
    ),
    "properties.encryption.type": ("Other", "", "CustomerKey", "SystemKey\n"),
    "properties.encryption.identity": BAD_RESOURCE_IDENTITIES,
    "properties.keyDelivery": (
        {"accessControl": {"defaultAction": "Allow", "ipAllowList": ["1.2.3.4"]}},
        {"accessControl": {"defaultAction": "Maybe"}}, {"accessControl": {"defaultAction": 5}},
        {"accessControl": 5}, {"accessControl": {"defaultAction": "Deny", "ipAllowList": "1.2.3.4"}},
        _deny("999.1.1.1"), _deny("1.2.3.4\n"), _deny(" 1.2.3.4"), _deny("1.2.3.4/99"),
        _deny("1.2.3.4/" + "9" * 50), _deny("fe80::1%eth0"), _deny(5), _deny(None), _deny("x" * 100),
        _deny(*["1.2.3.4"] * 201),
    ),
    "properties.keyDelivery.accessControl.ipAllowList": (["1.2.3.4"], ["::1"]),  # with Allow: refused
    "properties.storageAuthentication": ("ManagedIdentity", "Other", "", "System\n"),
    "properties.publicNetworkAccess": ("Maybe", "", "Enabled\n"),
    "properties.minimumTlsVersion": ("Tls14", "", "tls1.2"),
}
ACCOUNT_TYPED = (
    *ENVELOPE, *IDENTITY, ("properties.storageAccounts", "list"), ("properties.encryption", "obj"),
    ("properties.encryption.type", "str"), ("properties.encryption.identity", "obj"),
    ("properties.keyDelivery", "obj"), ("properties.keyDelivery.accessControl", "obj"),
    ("properties.keyDelivery.accessControl.ipAllowList", "list"), ("properties.storageAuthentication", "str"),
    ("properties.publicNetworkAccess", "str"), ("properties.minimumTlsVersion", "str"),
)
# fmt: on


def account_routes() -> list[Route]:
    """The account, its lists and actions, and the location operations."""
    name_check = {"name": "{ams}", "type": "Microsoft.Media/mediaservices"}
    sync_extra = {"id": ("", "{ams_storage}\n", "/subscriptions/x", "i" * 5000)}
    name_extra = {"name": ("n" * 2000,), "type": ("Microsoft.Media/other", "", "t" * 300)}
    rw = ("GET", "PUT", "PATCH", "DELETE")
    # fmt: off
    return [
        Route(ACCOUNT, MEDIA_API, rw, ACCOUNT_TEMPLATE, ACCOUNT_TYPED, extra=ACCOUNT_EXTRA),
        Route(RG + "/providers/Microsoft.Media/mediaservices", MEDIA_API, ("GET",)),
        Route(SUB + "/providers/Microsoft.Media/mediaservices", MEDIA_API, ("GET",)),
        Route(ACCOUNT + "/syncStorageKeys", MEDIA_API, ("POST",), {"id": "{ams_storage}"}, (("id", "str"),),
              extra=sync_extra),
        Route(ACCOUNT + "/listEdgePolicies", MEDIA_API, ("POST",), {"deviceId": "fuzz-device"},
              (("deviceId", "str"),), extra={"deviceId": ("d" * 300,)}),
        Route(LOCATION + "/checkNameAvailability", MEDIA_API, ("POST",), name_check,
              (("name", "str"), ("type", "str")), extra=name_extra),
        Route(LOCATION + "/mediaServicesOperationStatuses/{ams_operation}", MEDIA_API, ("GET",)),
        Route(LOCATION + "/mediaServicesOperationResults/{ams_operation}", MEDIA_API, ("GET",)),
    ]
    # fmt: on


# --- the children ---------------------------------------------------------------------------

BAD_CONTAINERS = ("Bad_Name", "ab", "c" * 64, "-abc", "abc-", "a--b", "c\n", "c" * 5000)
ASSET_TEMPLATE = {"properties": {"description": "fuzz asset", "alternateId": "fuzz-alt"}}
ASSET_TYPED = (
    ("properties", "obj"),
    ("properties.description", "str"),
    ("properties.alternateId", "str"),
    ("properties.container", "str"),
    ("properties.storageAccountName", "str"),
    ("properties.encryptionScope", "str"),
)
ASSET_EXTRA: dict[str, tuple[Any, ...]] = {
    "properties.description": ("d" * 5000,),
    "properties.alternateId": ("a" * 1100,),
    "properties.container": BAD_CONTAINERS,
    "properties.storageAccountName": ("nosuchstorage", "s" * 25, "{ams_storage_name}\n"),
    "properties.encryptionScope": ("e" * 300,),
}


def _option(**changes: Any) -> list[dict[str, Any]]:
    return [{**OPEN_OPTION, **changes}]


def _token(**changes: Any) -> list[dict[str, Any]]:
    return _option(restriction={**TOKEN, **changes})


def _license(**changes: Any) -> list[dict[str, Any]]:
    return _option(configuration={**PLAYREADY, "licenses": [{**LICENSE, **changes}]})


WIDEVINE = ODATA + "ContentKeyPolicyWidevineConfiguration"
FROM_KEY_ID = ODATA + "ContentKeyPolicyPlayReadyContentEncryptionKeyFromKeyIdentifier"
# fmt: off
BAD_OPTIONS: tuple[Any, ...] = (
    [], [1], [{}], [OPEN_OPTION] * 31, [OPEN_OPTION] * 1000,
    _option(configuration={"@odata.type": ODATA + "Nope"}),
    _option(configuration={"@odata.type": "Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"}),
    _option(configuration={"@odata.type": ODATA + "ContentKeyPolicyOpenRestriction"}),
    _option(configuration={"@odata.type": 5}), _option(configuration={"@odata.type": ODATA + "X" * 200}),
    _option(configuration=None), _option(restriction="open"), _option(name=5),
    _option(restriction={"@odata.type": ODATA + "ContentKeyPolicyClearKeyConfiguration"}),
    _token(issuer=None), _token(audience=""), _token(primaryVerificationKey={**SYMMETRIC, "keyValue": "!!!"}),
    _token(primaryVerificationKey={**SYMMETRIC, "keyValue": ""}),
    _token(primaryVerificationKey={**SYMMETRIC, "keyValue": "A" * 20_000}),
    _token(primaryVerificationKey={**SYMMETRIC, "keyValue": 5}),
    _token(primaryVerificationKey={"@odata.type": ODATA + "ContentKeyPolicyRsaTokenKey", "exponent": "AQAB",
                                   "modulus": "!!"}),
    _token(primaryVerificationKey={"@odata.type": ODATA + "ContentKeyPolicyX509CertificateTokenKey",
                                   "rawBody": "!!"}),
    _token(primaryVerificationKey={"@odata.type": ODATA + "ContentKeyPolicyOpenRestriction"}),
    _token(primaryVerificationKey=None), _token(alternateVerificationKeys=[SYMMETRIC] * 11),
    _token(alternateVerificationKeys=[5]), _token(alternateVerificationKeys={"a": SYMMETRIC}),
    _token(alternateVerificationKeys={}), _token(requiredClaims=[{"claimType": "c"}] * 51),
    _token(requiredClaims=[5]), _token(requiredClaims={}), _token(requiredClaims=[{"claimType": ""}]),
    _token(requiredClaims=[{"claimType": "c", "claimValue": 5}]), _token(restrictionTokenType="Bogus"),
    _token(openIdConnectDiscoveryDocument=5),
    _option(configuration={**FAIRPLAY, "ask": base64.b64encode(bytes(15)).decode()}),
    _option(configuration={**FAIRPLAY, "fairPlayPfxPassword": None}),
    _option(configuration={**FAIRPLAY, "fairPlayPfx": "p" * 70_000}),
    _option(configuration={**FAIRPLAY, "rentalDuration": -1}),
    _option(configuration={**FAIRPLAY, "rentalDuration": True}),
    _option(configuration={**FAIRPLAY, "rentalDuration": 2**60}),
    _option(configuration={**FAIRPLAY, "rentalAndLeaseKeyType": "Bogus"}),
    _option(configuration={**FAIRPLAY, "offlineRentalConfiguration": 5}),
    _option(configuration={**FAIRPLAY, "offlineRentalConfiguration": {"playbackDurationSeconds": -1}}),
    _option(configuration={**PLAYREADY, "licenses": []}),
    _option(configuration={**PLAYREADY, "licenses": [LICENSE] * 11}),
    _option(configuration={**PLAYREADY, "licenses": [5]}),
    _option(configuration={**PLAYREADY, "responseCustomData": 5}),
    _license(allowTestDevices="yes"), _license(licenseType="Bogus"), _license(contentKeyLocation=None),
    _license(contentKeyLocation={"@odata.type": FROM_KEY_ID, "keyId": "nope"}),
    _license(contentKeyLocation={"@odata.type": ODATA + "ContentKeyPolicyOpenRestriction"}),
    _license(playRight=5), _license(padding="p" * 70_000),
    _option(configuration={"@odata.type": WIDEVINE, "widevineTemplate": ""}),
    _option(configuration={"@odata.type": WIDEVINE, "widevineTemplate": 5}),
    _option(configuration={"@odata.type": WIDEVINE, "widevineTemplate": "w" * 70_000}),
)
# fmt: on
CKP_TEMPLATE = {"properties": {"description": "fuzz policy", "options": [OPEN_OPTION]}}
CKP_TYPED = (("properties", "obj"), ("properties.description", "str"), ("properties.options", "list"))
CKP_EXTRA = {"properties.description": ("d" * 5000,), "properties.options": BAD_OPTIONS}

SP_TEMPLATE = {"properties": {"noEncryption": {"enabledProtocols": PROTOCOLS}}}
# fmt: off
SP_TYPED = (
    ("properties", "obj"), ("properties.defaultContentKeyPolicyName", "str"),
    ("properties.noEncryption", "obj"),
    ("properties.envelopeEncryption", "obj"), ("properties.commonEncryptionCenc", "obj"),
    ("properties.commonEncryptionCbcs", "obj"),
)
_FOURCC = {"property": "FourCC", "operation": "Equal", "value": "avc1"}
SP_EXTRA: dict[str, tuple[Any, ...]] = {
    "properties": ({}, {"noEncryption": None}),
    "properties.defaultContentKeyPolicyName": ("nosuch", "", "n" * 300, "fuzz-ckp\n", "fuzz-ckp/x"),
    "properties.noEncryption": (
        {"enabledProtocols": 5}, {"enabledProtocols": {}}, {"enabledProtocols": {**PROTOCOLS, "download": 1}},
    ),
    "properties.envelopeEncryption": (
        {"contentKeys": {"defaultKey": {"policyName": "nosuch"}}}, {"contentKeys": 5},
        {"contentKeys": {"defaultKey": 5}}, {"contentKeys": {"defaultKey": {"label": "l" * 300}}},
        {"contentKeys": {"keyToTrackMappings": [{"tracks": []}]}},
        {"contentKeys": {"keyToTrackMappings": [5]}},
        {"contentKeys": {"keyToTrackMappings": {}}},
        {"contentKeys": {"keyToTrackMappings": [{"label": "l", "tracks": 5}]}},
        {"contentKeys": {"keyToTrackMappings": [{"label": "l", "policyName": "nosuch"}]}},
        {"contentKeys": {"keyToTrackMappings": [{"label": "l"}] * 33}},
        {"clearTracks": [1]}, {"clearTracks": [{"trackSelections": {}}]},
        {"clearTracks": [{"trackSelections": [{**_FOURCC, "value": 5}]}]},
        {"clearTracks": [{"trackSelections": [{**_FOURCC, "property": ["FourCC"]}]}]},
        {"clearTracks": [{"trackSelections": [{**_FOURCC, "operation": {"a": 1}}]}]},
        {"clearTracks": [{"trackSelections": [_FOURCC] * 33}]},
        {"clearTracks": [{"trackSelections": [_FOURCC]}] * 33},
        {"customKeyAcquisitionUrlTemplate": 5}, {"enabledProtocols": {"dash": "yes"}},
    ),
    "properties.commonEncryptionCenc": (
        {"drm": {"fairPlay": {"allowPersistentLicense": True}}}, {"drm": {"playReady": 5}}, {"drm": 5},
        {"drm": {"widevine": {"customLicenseAcquisitionUrlTemplate": 5}}},
        {"drm": {"playReady": {"playReadyCustomAttributes": "a" * 3000}}},
        {"clearKeyEncryptionConfiguration": 5},
    ),
    "properties.commonEncryptionCbcs": (
        {"drm": {"fairPlay": {"allowPersistentLicense": "no"}}}, {"drm": {"fairPlay": {}}},
        {"drm": {"nope": {}}},
    ),
}
# fmt: on

LOCATOR_TEMPLATE = {"properties": {"assetName": "fuzz-asset", "streamingPolicyName": "fuzz-sp"}}
# fmt: off
LOCATOR_TYPED = (
    ("properties", "obj"),
    *((f"properties.{name}", "str") for name in (
        "assetName", "streamingPolicyName", "defaultContentKeyPolicyName", "startTime", "endTime",
        "streamingLocatorId", "alternativeMediaId",
    )),
    ("properties.filters", "list"), ("properties.contentKeys", "list"),
)
_KEY = {"id": "{guid}", "labelReferenceInStreamingPolicy": "fuzzKey"}
LOCATOR_EXTRA: dict[str, tuple[Any, ...]] = {
    "properties": (
        {},
        {**LOCATOR_TEMPLATE["properties"], "startTime": "2030-01-01T00:00:00Z",
         "endTime": "2029-01-01T00:00:00Z"},
        {"assetName": "fuzz-asset", "streamingPolicyName": "Predefined_ClearStreamingOnly",
         "contentKeys": [_KEY]},
    ),
    "properties.assetName": ("nosuch", "", "fuzz-asset\n", "a" * 300, "fuzz-asset/x"),
    "properties.streamingPolicyName": ("nosuch", "", "Predefined_Nope", "p" * 300, "fuzz-sp\n"),
    "properties.defaultContentKeyPolicyName": ("nosuch", "", "fuzz-ckp\n"),
    "properties.startTime": ("x", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+23:59",
                             "9999-12-31T23:59:59.9999999-23:59", "2026-01-01T00:00:00+99:00", "t" * 50),
    "properties.endTime": ("x", "2026-02-30T00:00:00Z", "9999-12-31T23:59:59-23:59"),
    "properties.streamingLocatorId": (
        "not-a-guid", "{ams_locator_id}", "{ams_locator_id_upper}", "", "{guid}x",
    ),
    "properties.alternativeMediaId": ("a" * 1100,),
    "properties.filters": (["f"] * 21, [""], [5], ["f" * 261], "x"),
    "properties.contentKeys": (
        [{"id": "not-a-guid"}], [{"id": 5}], [{**_KEY, "value": "!!!"}], [{**_KEY, "value": "AAAA"}],
        [{**_KEY, "value": "A" * 24}], [{**_KEY, "value": 5}],
        [{**_KEY, "value": "AAAAAAAAAAAAAAAAAAAAAA==\n"}],
        [{**_KEY, "labelReferenceInStreamingPolicy": "nolabel"}], [_KEY, _KEY],
        [_KEY, {**_KEY, "id": "{ams_content_key}"}], [5], [_KEY] * 65,
    ),
}
# fmt: on


def child_routes() -> list[Route]:
    """Assets, content key policies, streaming policies and locators, and their actions."""
    sas = {"permissions": "Read", "expiryTime": "{ams_expiry}"}
    # fmt: off
    sas_extra = {
        "permissions": ("Write", "", "Read\n", "p" * 3000),
        "expiryTime": ("2000-01-01T00:00:00Z", "{ams_expiry_far}", "9999-12-31T23:59:59-23:59",
                       "0001-01-01T00:00:00+23:59", "2026-13-45T00:00:00Z", "2026-01-01T00:00:00+99:00",
                       "not a date", "1" * 41),
    }
    # fmt: on
    new_asset_extra = {**ASSET_EXTRA, "properties.storageAccountName": ("nosuchstorage", "s" * 25)}
    rw, r, sas_typed = (
        ("GET", "PUT", "PATCH", "DELETE"),
        ("GET",),
        (("permissions", "str"), ("expiryTime", "str")),
    )
    return [
        Route(CHILD + "/assets", CHILD_API, r),
        Route(ASSET, CHILD_API, rw, ASSET_TEMPLATE, ASSET_TYPED, extra=ASSET_EXTRA),
        Route(ASSET_NEW, CHILD_API, ("PUT",), ASSET_TEMPLATE, ASSET_TYPED, extra=new_asset_extra),
        Route(ASSET + "/listContainerSas", CHILD_API, ("POST",), sas, sas_typed, extra=sas_extra),
        Route(ASSET + "/listStreamingLocators", CHILD_API, ("POST",), object_only=True),
        Route(ASSET + "/getEncryptionKey", CHILD_API, ("POST",), object_only=True),
        Route(CHILD + "/contentKeyPolicies", CHILD_API, r),
        Route(CKP, CHILD_API, rw, CKP_TEMPLATE, CKP_TYPED, extra=CKP_EXTRA),
        Route(CKP + "/getPolicyPropertiesWithSecrets", CHILD_API, ("POST",), object_only=True),
        Route(CHILD + "/streamingPolicies", CHILD_API, r),
        Route(SP, CHILD_API, ("GET", "PATCH", "DELETE")),
        Route(SP_NEW, CHILD_API, ("PUT",), SP_TEMPLATE, SP_TYPED, extra=SP_EXTRA),
        Route(PREDEFINED, CHILD_API, ("GET", "PUT", "DELETE"), SP_TEMPLATE),
        Route(CHILD + "/streamingLocators", CHILD_API, r),
        Route(LOCATOR, CHILD_API, ("GET", "PATCH", "DELETE")),
        Route(LOCATOR_NEW, CHILD_API, ("PUT",), LOCATOR_TEMPLATE, LOCATOR_TYPED, extra=LOCATOR_EXTRA),
        Route(LOCATOR + "/listContentKeys", CHILD_API, ("POST",), object_only=True),
        Route(LOCATOR + "/listPaths", CHILD_API, ("POST",), object_only=True),
    ]


def media_routes() -> list[Route]:
    return account_routes() + child_routes()


# Writes whose body or name would be fine but that the service must still refuse (a precondition,
# an update of what cannot be updated, a predefined policy): (method, path, api, body, headers).
REFUSED: tuple[tuple[str, str, str, Any, Headers], ...] = (
    ("PUT", ACCOUNT, MEDIA_API, ACCOUNT_TEMPLATE, IF_MATCH),
    ("PUT", ACCOUNT, MEDIA_API, ACCOUNT_TEMPLATE, ((b"If-None-Match", b"*"),)),
    ("PATCH", ACCOUNT, MEDIA_API, {"tags": {"fuzz": "x"}}, IF_MATCH),
    ("PUT", ACCOUNT, MEDIA_API, {**ACCOUNT_TEMPLATE, "location": "eastus"}, ()),
    ("DELETE", ACCOUNT, MEDIA_API, None, IF_MATCH),
    ("PUT", ASSET, CHILD_API, ASSET_TEMPLATE, IF_MATCH),
    ("PUT", ASSET, CHILD_API, ASSET_TEMPLATE, ((b"If-None-Match", b"*"),)),
    ("PUT", ASSET, CHILD_API, {"properties": {"container": "asset-other"}}, ()),
    ("PUT", ASSET, CHILD_API, {"properties": {"storageAccountName": "nosuchstorage"}}, ()),
    ("PATCH", ASSET, CHILD_API, {"properties": {"container": "asset-other"}}, ()),
    ("PATCH", ASSET, CHILD_API, {"properties": {"storageAccountName": "nosuchstorage"}}, ()),
    ("DELETE", ASSET, CHILD_API, None, IF_MATCH),
    ("PUT", ASSET_NEW, CHILD_API, ASSET_TEMPLATE, IF_MATCH),
    ("PUT", ASSET_NEW, CHILD_API, ASSET_TEMPLATE, ((b"If-Match", b"*"),)),
    ("PUT", CKP, CHILD_API, CKP_TEMPLATE, IF_MATCH),
    ("PATCH", CKP, CHILD_API, {"properties": {"description": "x"}}, IF_MATCH),
    ("DELETE", CKP, CHILD_API, None, IF_MATCH),
    ("PUT", SP, CHILD_API, SP_TEMPLATE, ()),
    ("PATCH", SP, CHILD_API, SP_TEMPLATE, ()),
    ("DELETE", SP, CHILD_API, None, IF_MATCH),
    ("PUT", PREDEFINED, CHILD_API, SP_TEMPLATE, ()),
    ("PUT", PREDEFINED.replace("_ClearKey", "_multidrmstreaming"), CHILD_API, SP_TEMPLATE, ()),
    ("DELETE", PREDEFINED, CHILD_API, None, ()),
    ("DELETE", PREDEFINED.replace("_ClearKey", "_DOWNLOADONLY"), CHILD_API, None, ()),
    ("PUT", SP_NEW, CHILD_API, SP_TEMPLATE, IF_MATCH),
    ("PUT", LOCATOR, CHILD_API, LOCATOR_TEMPLATE, ()),
    ("PATCH", LOCATOR, CHILD_API, LOCATOR_TEMPLATE, ()),
    ("DELETE", LOCATOR, CHILD_API, None, IF_MATCH),
    ("PUT", LOCATOR_NEW, CHILD_API, LOCATOR_TEMPLATE, IF_MATCH),
)
# Paths no route serves, or serves oddly (empty segments, unknown children and actions, the wrong
# scope): each is read and sent a malformed body with a write method (never DELETE).
# fmt: off
ODD_PATHS = (
    CHILD + "/assets/", CHILD + "//assets",
    RG + "/providers/Microsoft.Media/mediaServices//assets/fuzz-asset",
    CHILD + "/assets//listContainerSas", CHILD + "/assets/fuzz-asset/assetFilters",
    CHILD + "/assets/fuzz-asset/assetFilters/f", CHILD + "/assets/fuzz-asset/nosuchaction",
    CHILD + "/streamingLocators/fuzz-locator/listContentKeys/x", CHILD + "/nosuchchild",
    CHILD + "/transforms",
    CHILD + "/transforms/t/jobs", ACCOUNT + "/nosuchaction",
    CHILD.replace("mediaServices", "MEDIASERVICES") + "/assets/fuzz-asset",
    SUB + "/providers/Microsoft.Media/locations/westeurope",
    SUB + "/providers/Microsoft.Media/locations/nowhere/checkNameAvailability",
    LOCATION + "/checkNameAvailability/x", LOCATION + "/mediaServicesOperationStatuses",
    LOCATION + "/mediaServicesOperationResults/{ams_operation}/x",
    RG + "/providers/Microsoft.Media/locations/westeurope/checkNameAvailability",
    "/providers/Microsoft.Media/operations", SUB + "/providers/Microsoft.Media",
)
# Operation ids no operation has (raw, already percent-encoded).
ODD_OPERATIONS = (
    b"x" * 64, b"x" * 65, b"o" * 5000, b"%00", b"..%2F..%2Fx", b"%27%20OR%201%3D1%20--", b"{guid}",
    b"{ams_operation}%0A", b"{ams_operation}%00",
)
# fmt: on


class MediaGenerator(KeyVaultGenerator):
    """``KeyVaultGenerator`` plus Media Services' routes (all in the ``arm`` family)."""

    def all(self) -> Iterator[Hostile]:
        yield from super().all()  # first, so every earlier family draws what it drew before
        yield from self.media()

    def admin_arm(self, method: str, target: bytes, label: str, body: bytes, extra: Headers = ()) -> Hostile:
        """A resource-manager request with the admin's token, straight to the ARM host."""
        admin = (b"Authorization", b"Bearer " + self.ids.admin_token.encode())
        headers = (admin, (b"Content-Type", b"application/json"), *extra)
        return Hostile("arm", "https", method.encode(), target, ARM_HOST, headers, body, label)

    def target(self, path: str, api: str) -> bytes:
        return b"/" + b"/".join(self.segments(path)) + b"?api-version=" + api.encode()

    def media(self) -> Iterator[Hostile]:
        for route in media_routes():
            yield from self.arm(route)
            for method, target, label, body, _ in self.media_wrong(route):
                yield self.admin_arm(str(method), target, label, body)
        for method, path, api, doc, headers in REFUSED:
            body = orjson.dumps(self.ids.fill_doc(doc)) if doc is not None else b""
            label = f"refused {headers[0][0].decode() if headers else 'write'}"
            yield self.admin_arm(method, self.target(path, api), label, body, headers)
        for path in ODD_PATHS:
            api = CHILD_API if "/mediaServices/" in path else MEDIA_API
            target = b"/" + b"/".join(s.encode() for s in self.ids.fill(path).split("/")[1:])
            target += b"?api-version=" + api.encode()
            yield self.admin_arm("GET", target, "odd path", b"")
            method = self.pick(("PUT", "PATCH", "POST"))
            yield self.admin_arm(method, target, "odd path", bytes(self.pick(BAD_JSON)))
        for kind in ("mediaServicesOperationStatuses", "mediaServicesOperationResults"):
            for raw in ODD_OPERATIONS:
                operation = self.ids.fill(raw.decode()).encode()
                target = self.target(LOCATION, MEDIA_API).split(b"?")[0] + f"/{kind}/".encode() + operation
                yield self.admin_arm("GET", target + b"?api-version=" + MEDIA_API.encode(), "operation", b"")

    def media_wrong(self, route: Route) -> Iterator[Case]:
        """Each typed field of the template given each of its wrong values in turn (as
        ``every_wrong``, but with one write method per value, drawn, when the route has both PUT
        and PATCH: both check the same way). For an asset PATCH, each wrong value also as the only
        field of the body (a PATCH merges it onto the stored asset, whose container and storage
        account cannot change)."""
        if route.template is None:
            return
        template = self.ids.fill_doc(route.template)
        target = self.target(route.path, route.api_version)
        methods = [m for m in route.methods if m in ("PUT", "PATCH", "POST")]
        for name, kind in route.typed:
            # (the label's index is the value's place in WRONG[kind] + the field's extra values)
            for index, value in enumerate(WRONG[kind] + route.extra.get(name, EXTRA.get(name, ()))):
                body = orjson.dumps(self.ids.fill_doc(set_field(template, name, value)))
                label = f"{name}#{index}={str(value)[:24]!r}"
                for method in methods if route.path == ASSET else [self.pick(methods)]:
                    yield method, target, label, body, ()
                if route.path == ASSET and name.startswith("properties."):
                    alone = orjson.dumps(self.ids.fill_doc(set_field({}, name, value)))
                    yield "PATCH", target, f"alone {label}", alone, ()


__all__ = ["MediaGenerator", "make_media_targets", "media_routes"]
