"""``Microsoft.Media/mediaservices/contentKeyPolicies``: how the key delivery service hands out
content keys (configurations per DRM, restrictions: open or token).

Shapes (spec ``Metadata/stable/2023-01-01/ContentKeyPolicies.json``, media.md §2, azure-mgmt-media
models): properties ``description``, ``options[]`` (required, 1..30 here) of ``{policyOptionId
(read-only uuid), name, configuration, restriction}``, both chosen by ``@odata.type``; read-only
``policyId``, ``created``, ``lastModified``.

- PUT answers 200 even for a new policy (recording test_ams_streaming_locator_list_content_keys),
  PATCH 200, DELETE 200/204.
- Secrets (every symmetric token key's ``keyValue``, FairPlay's ``ask``, ``fairPlayPfx`` and
  ``fairPlayPfxPassword``) are sealed under the ACCOUNT KEY ("symmetric token validation keys are
  also encrypted", concept-use-customer-managed-keys-byok.md) in the front's ``prepare`` step and
  stored only sealed, under ``properties["$secrets"]`` (never rendered); every read answers them
  as ``""`` (examples content-key-policies-create-nodrm-token.json, -get-by-name.json).
- ``POST .../getPolicyPropertiesWithSecrets`` answers the bare properties with the real values;
  ``prepare`` opens the account key for it (so a customer key out of reach answers 400).

Keyless's choices where Azure says nothing: an option keeps its ``policyOptionId`` when the
request echoes an id the policy already has, else gets a new one; RSA and X.509 token keys are
public and are shown; PlayReady licenses are checked loosely (required fields, enums, size);
a FairPlay ``ask`` must be 16 bytes (az: "32 characters hex"); the limits below are Keyless's.
"""

from __future__ import annotations

import base64
import binascii
import copy
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.engine import RequestContext, StoredResource, iso_time
from keyless.arm.http import ProviderRequest
from keyless.arm.ids import ResourceId, is_guid
from keyless.arm.resource_types import Incoming
from keyless.providers.media.children import (
    ACCOUNT_KEY,
    MediaChildType,
    bad_request,
    optional_list,
    prepared_account_key,
    text_field,
)
from keyless.providers.media.keyring import AccountKeyring

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

PREPARED = "media.contentKeyPolicy"
SECRETS = "$secrets"  # where the sealed secrets live in the stored properties (never rendered)
WITH_SECRETS = "getPolicyPropertiesWithSecrets"
_ODATA = "@odata.type"
_PREFIX = "#Microsoft.Media."
MAX_OPTIONS = 30
_MAX_TEXT = 2048
_MAX_DOCUMENT = 65536  # a Widevine template, a PlayReady configuration, a FairPlay pfx (characters)
_MAX_KEY_BYTES = 4096
_MAX_ALTERNATE_KEYS = 10
_MAX_CLAIMS = 50
_MAX_LICENSES = 10
_TOKEN_TYPES = ("Unknown", "Swt", "Jwt")
_RENTAL_TYPES = ("Unknown", "Undefined", "DualExpiry", "PersistentUnlimited", "PersistentLimited")
_LICENSE_TYPES = ("Unknown", "NonPersistent", "Persistent")
_CONTENT_TYPES = ("Unknown", "Unspecified", "UltraVioletDownload", "UltraVioletStreaming")
_SECURITY_LEVELS = ("Unknown", "SL150", "SL2000", "SL3000")
_KEY_LOCATIONS = (
    "ContentKeyPolicyPlayReadyContentEncryptionKeyFromHeader",
    "ContentKeyPolicyPlayReadyContentEncryptionKeyFromKeyIdentifier",
)
# Secret fields: how their plaintext is given (base64 bytes, or text).
_BINARY_SECRETS = frozenset(["keyValue", "ask"])
_TEXT_SECRETS = frozenset(["fairPlayPfx", "fairPlayPfxPassword"])


def secret_purpose(rid: ResourceId, path: str) -> str:
    """The associated data a secret is sealed with: the policy and the field it belongs to."""
    return f"media.contentKeyPolicy:{rid.key}:{path}"


def _odata(value: Any, path: str) -> str:
    """The short name of ``value``'s ``@odata.type`` (``ContentKeyPolicyOpenRestriction``)."""
    if not isinstance(value, dict):
        raise bad_request(f"'{path}' is required and must be an object.", path)
    kind = value.get(_ODATA)
    if not isinstance(kind, str) or not kind.startswith(_PREFIX) or len(kind) > 128:
        raise bad_request(f"'{path}.@odata.type' is missing or not a known type.", f"{path}.@odata.type")
    return kind[len(_PREFIX) :]


def _required_text(obj: dict[str, Any], name: str, path: str, limit: int = _MAX_TEXT) -> str:
    value = text_field(obj, name, limit, f"{path}.{name}")
    if not value:
        raise bad_request(f"'{path}.{name}' is required.", f"{path}.{name}")
    return value


def _enum(
    obj: dict[str, Any], name: str, allowed: tuple[str, ...], path: str, required: bool = True
) -> str | None:
    value = obj.get(name)
    if value is None and not required:
        return None
    found = next((a for a in allowed if isinstance(value, str) and a.lower() == value.lower()), None)
    if found is None:
        raise bad_request(f"'{path}.{name}' must be one of: {', '.join(allowed)}.", f"{path}.{name}")
    return found


def _base64(value: Any, path: str, *, exact: int | None = None, limit: int = _MAX_KEY_BYTES) -> bytes:
    if not isinstance(value, str) or not value or len(value) > limit * 2:
        raise bad_request(f"'{path}' is required and must be base64.", path)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"'{path}' must be base64.", path) from None
    if not raw or len(raw) > limit or (exact is not None and len(raw) != exact):
        size = f"{exact} bytes" if exact is not None else f"1 to {limit} bytes"
        raise bad_request(f"'{path}' must decode to {size}.", path)
    return raw


def _integer(obj: dict[str, Any], name: str, path: str, required: bool = True) -> int | None:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**53:
        raise bad_request(f"'{path}.{name}' must be a non-negative integer.", f"{path}.{name}")
    return value


def _bounded(value: Any, path: str) -> None:
    if len(orjson.dumps(value)) > _MAX_DOCUMENT:
        raise bad_request(f"'{path}' is larger than {_MAX_DOCUMENT} bytes.", path)


class _Secrets:
    """The plaintext secrets found while checking one request, by path ``{optionId}/...``."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def take(self, option_id: str, rel: str, field: str, value: Any, path: str) -> str:
        """Check secret ``value``, remember it, and return what the stored form shows: ``""``."""
        if field in _BINARY_SECRETS:
            raw = _base64(value, path, exact=16 if field == "ask" else None)
        else:
            if not isinstance(value, str) or not value or len(value) > _MAX_DOCUMENT:
                raise bad_request(
                    f"'{path}' is required: a string of at most {_MAX_DOCUMENT} characters.", path
                )
            raw = value.encode()
        self.values[f"{option_id}/{rel}{field}"] = raw
        return ""


def _token_key(value: Any, path: str, option_id: str, rel: str, secrets: _Secrets) -> dict[str, Any]:
    kind = _odata(value, path)
    if kind == "ContentKeyPolicySymmetricTokenKey":
        return {
            _ODATA: _PREFIX + kind,
            "keyValue": secrets.take(option_id, rel, "keyValue", value.get("keyValue"), f"{path}.keyValue"),
        }
    if kind == "ContentKeyPolicyRsaTokenKey":
        out = {_ODATA: _PREFIX + kind}
        for name in ("exponent", "modulus"):
            _base64(value.get(name), f"{path}.{name}")
            out[name] = value[name]
        return out
    if kind == "ContentKeyPolicyX509CertificateTokenKey":
        _base64(value.get("rawBody"), f"{path}.rawBody", limit=_MAX_DOCUMENT)
        return {_ODATA: _PREFIX + kind, "rawBody": value["rawBody"]}
    raise bad_request(
        f"'{path}.@odata.type' '{_PREFIX}{kind}' is not a token key type.", f"{path}.@odata.type"
    )


def _restriction(value: Any, path: str, option_id: str, secrets: _Secrets) -> dict[str, Any]:
    kind = _odata(value, path)
    if kind in ("ContentKeyPolicyOpenRestriction", "ContentKeyPolicyUnknownRestriction"):
        return {_ODATA: _PREFIX + kind}
    if kind != "ContentKeyPolicyTokenRestriction":
        raise bad_request(
            f"'{path}.@odata.type' '{_PREFIX}{kind}' is not a restriction type.", f"{path}.@odata.type"
        )
    out: dict[str, Any] = {
        _ODATA: _PREFIX + kind,
        "issuer": _required_text(value, "issuer", path),
        "audience": _required_text(value, "audience", path),
        "primaryVerificationKey": _token_key(
            value.get("primaryVerificationKey"),
            f"{path}.primaryVerificationKey",
            option_id,
            "restriction/primaryVerificationKey/",
            secrets,
        ),
    }
    alternates = optional_list(
        value.get("alternateVerificationKeys"),
        _MAX_ALTERNATE_KEYS,
        f"'{path}.alternateVerificationKeys' must be a list of at most {_MAX_ALTERNATE_KEYS} keys.",
        f"{path}.alternateVerificationKeys",
    )
    out["alternateVerificationKeys"] = [
        _token_key(
            key, f"{path}.alternateVerificationKeys[{i}]", option_id, f"restriction/alternate/{i}/", secrets
        )
        for i, key in enumerate(alternates)
    ]
    claims = optional_list(
        value.get("requiredClaims"),
        _MAX_CLAIMS,
        f"'{path}.requiredClaims' must be a list of at most {_MAX_CLAIMS} claims.",
        f"{path}.requiredClaims",
    )
    out["requiredClaims"] = []
    for i, claim in enumerate(claims):
        where = f"{path}.requiredClaims[{i}]"
        if not isinstance(claim, dict):
            raise bad_request(f"'{where}' must be an object.", where)
        entry = {"claimType": _required_text(claim, "claimType", where)}
        claim_value = text_field(claim, "claimValue", _MAX_TEXT, f"{where}.claimValue")
        if claim_value is not None:
            entry["claimValue"] = claim_value
        out["requiredClaims"].append(entry)
    out["restrictionTokenType"] = _enum(value, "restrictionTokenType", _TOKEN_TYPES, path)
    document = text_field(
        value, "openIdConnectDiscoveryDocument", _MAX_TEXT, f"{path}.openIdConnectDiscoveryDocument"
    )
    if document is not None:
        out["openIdConnectDiscoveryDocument"] = document
    return out


def _license(value: Any, path: str) -> dict[str, Any]:
    """A PlayReady license, checked loosely: its required fields and enums, bounded in size."""
    if not isinstance(value, dict):
        raise bad_request(f"'{path}' must be an object.", path)
    if not isinstance(value.get("allowTestDevices"), bool):
        raise bad_request(
            f"'{path}.allowTestDevices' is required and must be a boolean.", f"{path}.allowTestDevices"
        )
    out = dict(value)
    out["licenseType"] = _enum(value, "licenseType", _LICENSE_TYPES, path)
    out["contentType"] = _enum(value, "contentType", _CONTENT_TYPES, path)
    level = _enum(value, "securityLevel", _SECURITY_LEVELS, path, required=False)
    if level is not None:
        out["securityLevel"] = level
    location: dict[str, Any] = value.get("contentKeyLocation") or {}
    kind = _odata(value.get("contentKeyLocation"), f"{path}.contentKeyLocation")
    if kind not in _KEY_LOCATIONS:
        raise bad_request(
            f"'{path}.contentKeyLocation.@odata.type' '{_PREFIX}{kind}' is not a content key location type.",
            f"{path}.contentKeyLocation",
        )
    if kind.endswith("FromKeyIdentifier") and not (
        isinstance(location.get("keyId"), str) and is_guid(location["keyId"])
    ):
        raise bad_request(
            f"'{path}.contentKeyLocation.keyId' must be a uuid.", f"{path}.contentKeyLocation.keyId"
        )
    if value.get("playRight") is not None and not isinstance(value["playRight"], dict):
        raise bad_request(f"'{path}.playRight' must be an object.", f"{path}.playRight")
    return out


def _configuration(value: Any, path: str, option_id: str, secrets: _Secrets) -> dict[str, Any]:
    kind = _odata(value, path)
    out: dict[str, Any] = {_ODATA: _PREFIX + kind}
    if kind in ("ContentKeyPolicyClearKeyConfiguration", "ContentKeyPolicyUnknownConfiguration"):
        return out
    if kind == "ContentKeyPolicyWidevineConfiguration":
        out["widevineTemplate"] = _required_text(value, "widevineTemplate", path, _MAX_DOCUMENT)
        return out
    if kind == "ContentKeyPolicyPlayReadyConfiguration":
        licenses = value.get("licenses")
        if not isinstance(licenses, list) or not 1 <= len(licenses) <= _MAX_LICENSES:
            raise bad_request(
                f"'{path}.licenses' is required: 1 to {_MAX_LICENSES} licenses.", f"{path}.licenses"
            )
        out["licenses"] = [_license(item, f"{path}.licenses[{i}]") for i, item in enumerate(licenses)]
        _bounded(out["licenses"], f"{path}.licenses")
        custom = text_field(value, "responseCustomData", _MAX_TEXT, f"{path}.responseCustomData")
        if custom is not None:
            out["responseCustomData"] = custom
        return out
    if kind == "ContentKeyPolicyFairPlayConfiguration":
        for field in ("ask", "fairPlayPfxPassword", "fairPlayPfx"):
            out[field] = secrets.take(option_id, "configuration/", field, value.get(field), f"{path}.{field}")
        out["rentalAndLeaseKeyType"] = _enum(value, "rentalAndLeaseKeyType", _RENTAL_TYPES, path)
        out["rentalDuration"] = _integer(value, "rentalDuration", path)
        offline = value.get("offlineRentalConfiguration")
        if offline is not None:
            where = f"{path}.offlineRentalConfiguration"
            if not isinstance(offline, dict):
                raise bad_request(f"'{where}' must be an object.", where)
            out["offlineRentalConfiguration"] = {
                name: _integer(offline, name, where)
                for name in ("playbackDurationSeconds", "storageDurationSeconds")
            }
        return out
    raise bad_request(
        f"'{path}.@odata.type' '{_PREFIX}{kind}' is not a configuration type.", f"{path}.@odata.type"
    )


def check_options(value: Any, old_ids: set[str]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The options of a request, checked: (what is stored and shown, secrets blanked;
    the plaintext secrets by path). Raises 400 ``BadRequest``."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_OPTIONS:
        raise bad_request(
            f"'properties.options' is required: 1 to {MAX_OPTIONS} options.", "properties.options"
        )
    secrets = _Secrets()
    out = []
    seen: set[str] = set()
    for i, option in enumerate(value):
        path = f"properties.options[{i}]"
        if not isinstance(option, dict):
            raise bad_request(f"'{path}' must be an object.", path)
        given = option.get("policyOptionId")
        option_id = (
            given.lower() if isinstance(given, str) and given.lower() in old_ids else str(uuid.uuid4())
        )
        if option_id in seen:
            option_id = str(uuid.uuid4())
        seen.add(option_id)
        entry: dict[str, Any] = {"policyOptionId": option_id}
        name = text_field(option, "name", 256, f"{path}.name")
        if name is not None:
            entry["name"] = name
        entry["configuration"] = _configuration(
            option.get("configuration"), f"{path}.configuration", option_id, secrets
        )
        entry["restriction"] = _restriction(
            option.get("restriction"), f"{path}.restriction", option_id, secrets
        )
        out.append(entry)
    return out, secrets.values


def _fill_secrets(options: list[dict[str, Any]], secrets: dict[str, bytes]) -> list[dict[str, Any]]:
    """``options`` with each blanked secret replaced by its plaintext (base64 for binary ones)."""
    filled = copy.deepcopy(options)
    by_id = {str(o.get("policyOptionId")): o for o in filled}
    for path, raw in secrets.items():
        option_id, _, rel = path.partition("/")
        node: Any = by_id.get(option_id)
        *steps, field = rel.split("/")
        for step in steps:
            if node is None:
                break
            if step == "alternate":
                node = node.get("alternateVerificationKeys")
            elif isinstance(node, list):
                node = node[int(step)] if step.isdigit() and int(step) < len(node) else None
            else:
                node = node.get(step)
        if isinstance(node, dict):
            node[field] = base64.b64encode(raw).decode() if field in _BINARY_SECRETS else raw.decode()
    return filled


class ContentKeyPolicyType(MediaChildType):
    def __init__(self) -> None:
        super().__init__("contentKeyPolicies", create_status=200)
        self.actions = {WITH_SECRETS: self._with_secrets}

    # --- before the write: check the options, seal the secrets under the account key -----------

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """PUT/PATCH: the options checked and their secrets sealed (``ctx.prepared``); the
        ``getPolicyPropertiesWithSecrets`` action: the account key opened for the handler."""
        if req.method == "POST" and len(req.segments) == 5:
            if req.segments[4].lower() == WITH_SECRETS.lower():
                req.ctx.prepared[ACCOUNT_KEY] = await front.account_key(account)
            return
        if req.method not in ("PUT", "PATCH") or len(req.segments) != 4:
            return
        if req.method == "PUT":
            self.name_rule.check(rid.name, self.type_name)
        props = dict(incoming_of(parse_body(req.body)).properties or {})
        with front.manager.db.read() as conn:
            existing = front.manager.load(conn, rid)
        if req.method == "PATCH" and (existing is None or "options" not in props):
            req.ctx.prepared[PREPARED] = {"keep": True}  # the engine answers 404, or keeps the options
            return
        old = (existing.document.get("properties") or {}) if existing is not None else {}
        old_ids = {
            str(o.get("policyOptionId")).lower() for o in old.get("options") or [] if isinstance(o, dict)
        }
        options, plain = check_options(props.get("options"), old_ids)
        key = await front.account_key(account)
        sealed = {
            path: AccountKeyring.seal(key, raw, secret_purpose(rid, path)) for path, raw in plain.items()
        }
        req.ctx.prepared[PREPARED] = {"options": options, "secrets": sealed}

    # --- the write ------------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = dict(incoming.properties or {})
        old = dict(existing.document.get("properties") or {}) if existing is not None else {}
        prepared = ctx.prepared.get(PREPARED)
        if prepared is None or (prepared.get("keep") and existing is None):
            raise bad_request("The content key policy could not be prepared.")
        if prepared.get("keep"):
            options, secrets = old.get("options") or [], old.get(SECRETS) or {}
        else:
            options, secrets = prepared["options"], prepared["secrets"]
        now = iso_time(time.time())
        out: dict[str, Any] = {
            "policyId": old.get("policyId") or str(uuid.uuid4()),
            "created": old.get("created") or now,
            "lastModified": now,
        }
        description = text_field(props, "description", 4096, "properties.description")
        if description is not None:
            out["description"] = description
        out["options"] = options
        out[SECRETS] = secrets
        return out

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        props.pop(SECRETS, None)
        return props

    # --- actions --------------------------------------------------------------------------------

    def _with_secrets(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        """The bare properties with the real secrets (spec example
        content-key-policies-get-with-secrets.json), opened with the key ``prepare`` left."""
        key = prepared_account_key(ctx.prepared)
        props = self.render_properties(resource)
        sealed = (resource.document.get("properties") or {}).get(SECRETS) or {}
        plain = {
            path: AccountKeyring.open(key, value, secret_purpose(resource.rid, path))
            for path, value in sealed.items()
        }
        props["options"] = _fill_secrets(list(props.get("options") or []), plain)
        return 200, props


def policy_exists(conn: sa.Connection, account: ResourceId, name: str) -> str | None:
    """The stored name of content key policy ``name`` (any case) of ``account``; None if none."""
    from keyless.store.tables import resources

    rid = ResourceId(
        account.subscription_id,
        account.resource_group,
        account.namespace,
        (*account.types, "contentKeyPolicies"),
        (*account.names, name),
    )
    found = conn.execute(sa.select(resources.c.name).where(resources.c.id_key == rid.key)).first()
    return None if found is None else str(found.name)
