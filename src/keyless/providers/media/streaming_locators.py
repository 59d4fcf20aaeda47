"""``Microsoft.Media/mediaservices/streamingLocators``: an asset published under a streaming
policy, with the content keys that encrypt it.

Shapes (spec ``Metadata/stable/2023-01-01/StreamingPoliciesAndStreamingLocators.json``, media.md
§2, media-az.md §4): ``assetName`` and ``streamingPolicyName`` (required), ``created``
(read-only), ``startTime``, ``endTime`` (default ``9999-12-31T23:59:59.9999999Z``),
``streamingLocatorId`` (a uuid the client may give), ``defaultContentKeyPolicyName``,
``alternativeMediaId``, ``filters`` (default ``[]``), ``contentKeys[]``.

- PUT answers 201 only: a locator is created, never updated (a PUT on an existing one is 400,
  PATCH 405); DELETE 200/204.
- Content keys: one per label the policy's encrypted sections use (``key_slots``: for the
  predefined policies ``clearKeyDefault`` / ``cencKeyDefault`` / ``cbcsKeyDefault``), 16 random
  bytes each, unless the client gives ``{id, labelReferenceInStreamingPolicy, value}``. Values are
  sealed under the ACCOUNT KEY in ``prepare`` ("Content keys are encrypted by the account key",
  concept-use-customer-managed-keys-byok.md) and kept under ``properties["$keys"]``; reads show
  ``{id, type, labelReferenceInStreamingPolicy, tracks}`` only (no ``value``, no ``policyName``).
- ``POST .../listContentKeys`` → ``{contentKeys: [{id, type, labelReferenceInStreamingPolicy,
  value, policyName, tracks}]}``; ``prepare`` opens the account key for it.
- ``POST .../listPaths`` → ``{streamingPaths: [...], downloadPaths: [...]}``, both empty while no
  streaming endpoint of the account is Running (what Azure answers then, media-az.md §4). With one
  running: ``downloadPaths`` ``/{streamingLocatorId}/{file}`` (file URL-encoded) for each blob of
  the asset that ``streaming_endpoints.downloadable`` (not the ``.ism``/``.ismc``/``.json``/
  ``.xml`` manifests and metadata), when the policy's ``noEncryption`` enables ``download``;
  ``streamingPaths`` one ``{streamingProtocol, encryptionScheme, paths: []}`` per protocol the
  policy enables (Hls, Dash, SmoothStreaming per section), always with no paths: Keyless does no
  dynamic packaging, and this is Azure's answer for an asset it cannot package (no ``.ism``).
  ``prepare`` lists the asset's container as the account (``blob_io.list_blobs``).

Keyless's choices where Azure says nothing: a missing asset, policy or content key policy is
400 ``BadRequest`` "Asset '<name>' is not found under account '<account>'." (by analogy to the
documented job text; likewise for the policies); a client-given ``streamingLocatorId`` must be
unused in the account; client keys name labels of the policy (the only label when omitted),
labels they leave out get generated keys, and a policy without encryption takes no keys; a key's
``policyName`` is the policy's per-key or default one, else the locator's
``defaultContentKeyPolicyName``, else the policy's; deleting an asset deletes its locators
(``assets.AssetType.before_delete``), so a locator never publishes a later asset of the same name.
"""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.engine import RequestContext, StoredResource, iso_time
from keyless.arm.http import ProviderRequest
from keyless.arm.ids import ResourceId, is_guid
from keyless.arm.resource_types import Incoming
from keyless.providers.media import blob_io
from keyless.providers.media.children import (
    ACCOUNT_KEY,
    MediaChildType,
    asset_id,
    bad_request,
    prepared_account_key,
    text_field,
)
from keyless.providers.media.keyring import AccountKeyring
from keyless.providers.media.storage_access import not_accessible
from keyless.providers.media.streaming_endpoints import (
    any_running,
    download_allowed,
    downloadable,
    streaming_protocols,
)
from keyless.providers.media.streaming_policies import (
    key_slots,
    policy_properties,
    require_content_key_policy,
)
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

PREPARED = "media.streamingLocator"
PREPARED_BLOBS = "media.streamingLocator.blobs"  # listPaths: the asset's blob names
LIST_PATHS = "listPaths"
KEYS = "$keys"  # sealed key values and policy names, by key id (never rendered)
LIST_CONTENT_KEYS = "listContentKeys"
END_OF_TIME = "9999-12-31T23:59:59.9999999Z"
_TYPE_KEY = "microsoft.media/mediaservices/streaminglocators"
_MAX_FILTERS = 20
_MAX_KEYS = 64
_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?", re.IGNORECASE
)


def key_purpose(rid: ResourceId, key_id: str) -> str:
    """The associated data a content key is sealed with: the locator and the key's id."""
    return f"media.streamingLocator:{rid.key}:{key_id.lower()}"


def _time(value: Any, path: str) -> tuple[str, float]:
    """(the time as answered: UTC, fractional digits only when given and not zero; its instant)."""
    match = _TIME.fullmatch(value) if isinstance(value, str) and len(value) <= 40 else None
    if match is None:
        raise bad_request(f"'{path}' must be a date and time (ISO 8601).", path)
    base, fraction, zone = match.group(1), (match.group(2) or "").rstrip("0")[:7], match.group(3) or "Z"
    try:
        parsed = datetime.fromisoformat(base + ("+00:00" if zone.upper() == "Z" else zone))
    except ValueError:
        raise bad_request(f"'{path}' must be a date and time (ISO 8601).", path) from None
    if zone.upper() != "Z":
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            raise bad_request(f"'{path}' is out of range.", path) from None
    instant = parsed.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z", instant


def _not_found(kind: str, name: str, account: ResourceId, path: str) -> errors.ArmError:
    return bad_request(f"{kind} '{name}' is not found under account '{account.name}'.", path)


def _client_keys(value: Any, slots: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The keys the client gives, by label: ``{id, value (bytes)}``; 400 when malformed."""
    if value is None:
        return {}
    if not isinstance(value, list) or len(value) > _MAX_KEYS:
        raise bad_request(
            f"'properties.contentKeys' must be a list of at most {_MAX_KEYS} keys.", "properties.contentKeys"
        )
    if value and not slots:
        raise bad_request(
            "The streaming policy does not encrypt: it takes no content keys.", "properties.contentKeys"
        )
    labels = [slot["label"] for slot in slots]
    out: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for i, key in enumerate(value):
        path = f"properties.contentKeys[{i}]"
        if not isinstance(key, dict):
            raise bad_request(f"'{path}' must be an object.", path)
        key_id = key.get("id")
        if not isinstance(key_id, str) or not is_guid(key_id):
            raise bad_request(f"'{path}.id' is required and must be a uuid.", f"{path}.id")
        label = text_field(
            key, "labelReferenceInStreamingPolicy", 256, f"{path}.labelReferenceInStreamingPolicy"
        )
        if label is None:
            if len(labels) != 1:
                raise bad_request(
                    f"'{path}.labelReferenceInStreamingPolicy' is required: the policy has several keys.",
                    f"{path}.labelReferenceInStreamingPolicy",
                )
            label = labels[0]
        if label not in labels:
            raise bad_request(
                f"The label '{label}' is not used by the streaming policy (labels: {', '.join(labels)}).",
                f"{path}.labelReferenceInStreamingPolicy",
            )
        if label in out or key_id.lower() in ids:
            raise bad_request(f"'{path}' repeats a key id or a label.", path)
        ids.add(key_id.lower())
        raw = os.urandom(16)
        if key.get("value") is not None:
            try:
                raw = base64.b64decode(key["value"], validate=True) if isinstance(key["value"], str) else b""
            except ValueError:
                raw = b""
            if len(raw) != 16:
                raise bad_request(f"'{path}.value' must be 16 bytes, base64.", f"{path}.value")
        out[label] = {"id": key_id.lower(), "value": raw}
    return out


class StreamingLocatorType(MediaChildType):
    def __init__(self) -> None:
        super().__init__("streamingLocators")
        self.actions = {LIST_CONTENT_KEYS: self._list_content_keys, LIST_PATHS: self._list_paths}

    # --- before the write ------------------------------------------------------------------------

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """PUT: everything checked, the content keys made (or taken) and sealed under the account
        key; PATCH: 405; ``listContentKeys``: the account key opened for the handler."""
        if req.method == "POST" and len(req.segments) == 5:
            if req.segments[4].lower() == LIST_CONTENT_KEYS.lower():
                req.ctx.prepared[ACCOUNT_KEY] = await front.account_key(account)
            elif req.segments[4].lower() == LIST_PATHS.lower():
                req.ctx.prepared[PREPARED_BLOBS] = await self._asset_blobs(front, rid, account)
            return
        if len(req.segments) != 4:
            return
        if req.method == "PATCH":
            raise errors.method_not_allowed(req.method)
        if req.method != "PUT":
            return
        self.name_rule.check(rid.name, self.type_name)
        props = dict(incoming_of(parse_body(req.body)).properties or {})
        with front.manager.db.read() as conn:
            if front.manager.load(conn, rid) is not None:
                raise self.exists(rid)
            checked = self.check(conn, rid, props)
        slots = checked.pop("slots")
        given = _client_keys(props.get("contentKeys"), slots)
        fallback = checked.get("defaultContentKeyPolicyName") or checked.get("policyDefault")
        key = await front.account_key(account)
        keys, sealed = [], {}
        for slot in slots:
            chosen = given.get(slot["label"]) or {"id": str(uuid.uuid4()), "value": os.urandom(16)}
            keys.append(
                {
                    "id": chosen["id"],
                    "type": slot["type"],
                    "labelReferenceInStreamingPolicy": slot["label"],
                    "tracks": slot["tracks"],
                }
            )
            policy = slot.get("policyName") or fallback
            sealed[chosen["id"]] = {
                "value": AccountKeyring.seal(key, chosen["value"], key_purpose(rid, chosen["id"]))
            }
            if policy:
                sealed[chosen["id"]]["policyName"] = policy
        req.ctx.prepared[PREPARED] = {"contentKeys": keys, KEYS: sealed}

    async def _asset_blobs(self, front: MediaFront, rid: ResourceId, account: AccountContext) -> list[str]:
        """The names of the blobs in the locator's asset (none while no endpoint is Running, or
        when the locator or asset is gone: the action answers for those)."""
        with front.manager.db.read() as conn:
            locator = front.manager.load(conn, rid)
            if locator is None or not any_running(conn, account.rid.key):
                return []
            asset_name = str((locator.document.get("properties") or {}).get("assetName", ""))
            asset = front.manager.load(conn, asset_id(account.rid, asset_name))
        if asset is None:
            return []
        props = asset.document.get("properties") or {}
        auth = front.storage_auth(account, props.get("storageAccountName"))
        try:
            items = await blob_io.list_blobs(front.storage, auth, str(props.get("container")))
        except blob_io.BlobAccessError as exc:
            raise not_accessible(auth.account, str(exc)) from exc
        return [item.name for item in items]

    @staticmethod
    def exists(rid: ResourceId) -> errors.ArmError:
        return bad_request(
            f"Streaming locator '{rid.name}' already exists; a streaming locator cannot be updated."
        )

    def check(self, conn: sa.Connection, rid: ResourceId, props: dict[str, Any]) -> dict[str, Any]:
        """The stored properties but ``created`` and the keys, plus ``slots`` (the keys the policy
        needs); 400 ``BadRequest`` for anything missing or malformed."""
        account = rid.parent
        assert account is not None
        out: dict[str, Any] = {}
        asset = text_field(props, "assetName", 260, "properties.assetName")
        if not asset:
            raise bad_request("'properties.assetName' is required.", "properties.assetName")
        found = conn.execute(
            sa.select(resources.c.name).where(resources.c.id_key == asset_id(account, asset).key)
        ).first()
        if found is None:
            raise _not_found("Asset", asset, account, "properties.assetName")
        out["assetName"] = str(found.name)
        policy_name = text_field(props, "streamingPolicyName", 260, "properties.streamingPolicyName")
        if not policy_name:
            raise bad_request(
                "'properties.streamingPolicyName' is required.", "properties.streamingPolicyName"
            )
        policy = policy_properties(conn, account, policy_name)
        if policy is None:
            raise _not_found("Streaming policy", policy_name, account, "properties.streamingPolicyName")
        out["streamingPolicyName"], policy_props = policy
        default_ckp = text_field(
            props, "defaultContentKeyPolicyName", 260, "properties.defaultContentKeyPolicyName"
        )
        if default_ckp is not None:
            out["defaultContentKeyPolicyName"] = require_content_key_policy(
                conn, account, default_ckp, "properties.defaultContentKeyPolicyName"
            )
        start = (
            _time(props["startTime"], "properties.startTime") if props.get("startTime") is not None else None
        )
        end = _time(props["endTime"], "properties.endTime") if props.get("endTime") is not None else None
        if start is not None:
            out["startTime"] = start[0]
        out["endTime"] = end[0] if end is not None else END_OF_TIME
        if start is not None and end is not None and end[1] <= start[1]:
            raise bad_request(
                "'properties.endTime' must be later than 'properties.startTime'.", "properties.endTime"
            )
        locator_id = props.get("streamingLocatorId")
        if locator_id is not None:
            if not isinstance(locator_id, str) or not is_guid(locator_id):
                raise bad_request(
                    "'properties.streamingLocatorId' must be a uuid.", "properties.streamingLocatorId"
                )
            locator_id = locator_id.lower()
            used = conn.execute(
                sa.select(resources.c.name).where(
                    resources.c.parent_key == account.key,
                    resources.c.type_key == _TYPE_KEY,
                    resources.c.id_key != rid.key,
                    resources.c.document.contains(f'"streamingLocatorId":"{locator_id}"', autoescape=True),
                )
            ).first()
            if used is not None:
                raise bad_request(
                    f"The streaming locator id '{locator_id}' is already used by streaming locator '{used.name}'.",
                    "properties.streamingLocatorId",
                )
        out["streamingLocatorId"] = locator_id or str(uuid.uuid4())
        alternative = text_field(props, "alternativeMediaId", 1024, "properties.alternativeMediaId")
        if alternative is not None:
            out["alternativeMediaId"] = alternative
        filters = props.get("filters")
        filters = [] if filters is None else filters
        if (
            not isinstance(filters, list)
            or len(filters) > _MAX_FILTERS
            or not all(isinstance(f, str) and 0 < len(f) <= 260 for f in filters)
        ):
            raise bad_request(
                f"'properties.filters' must be a list of at most {_MAX_FILTERS} filter names.",
                "properties.filters",
            )
        out["filters"] = list(filters)
        out["slots"] = key_slots(policy_props)
        if policy_props.get("defaultContentKeyPolicyName"):
            out["policyDefault"] = policy_props["defaultContentKeyPolicyName"]
        return out

    # --- the write ---------------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        if existing is not None:
            raise self.exists(rid)
        prepared = ctx.prepared.get(PREPARED)
        if prepared is None:
            raise bad_request("The streaming locator could not be prepared.")
        checked = self.check(conn, rid, dict(incoming.properties or {}))  # again, in the write's transaction
        checked.pop("slots")
        checked.pop("policyDefault", None)
        out = {"created": iso_time(time.time()), **checked}
        out["contentKeys"] = prepared["contentKeys"]
        out[KEYS] = prepared[KEYS]
        return dict(sorted(out.items(), key=lambda kv: _ORDER.get(kv[0], 99)))

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        props.pop(KEYS, None)
        return props

    # --- actions ---------------------------------------------------------------------------------

    def _list_content_keys(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        key = prepared_account_key(ctx.prepared)
        props = resource.document.get("properties") or {}
        sealed = props.get(KEYS) or {}
        out = []
        for item in props.get("contentKeys") or []:
            secret = sealed.get(item["id"]) or {}
            value = AccountKeyring.open(key, str(secret.get("value")), key_purpose(resource.rid, item["id"]))
            entry = {
                "id": item["id"],
                "type": item["type"],
                "labelReferenceInStreamingPolicy": item["labelReferenceInStreamingPolicy"],
                "value": base64.b64encode(value).decode(),
            }
            if secret.get("policyName"):
                entry["policyName"] = secret["policyName"]
            entry["tracks"] = item.get("tracks") or []
            out.append(entry)
        return 200, {"contentKeys": out}

    def _list_paths(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        """The paths the account's running endpoints serve for this locator (module docstring)."""
        account = resource.rid.parent
        assert account is not None
        if not any_running(conn, account.key):
            return 200, {"streamingPaths": [], "downloadPaths": []}
        props = resource.document.get("properties") or {}
        found = policy_properties(conn, account, str(props.get("streamingPolicyName", "")))
        policy = found[1] if found is not None else {}
        streaming = [
            {"streamingProtocol": protocol, "encryptionScheme": scheme, "paths": []}
            for protocol, scheme in streaming_protocols(policy)
        ]
        downloads: list[str] = []
        if download_allowed(policy):
            locator_id = props.get("streamingLocatorId")
            names = ctx.prepared.get(PREPARED_BLOBS) or []
            downloads = [f"/{locator_id}/{quote(name)}" for name in names if downloadable(name)]
        return 200, {"streamingPaths": streaming, "downloadPaths": downloads}


_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "assetName",
            "created",
            "startTime",
            "endTime",
            "streamingLocatorId",
            "streamingPolicyName",
            "defaultContentKeyPolicyName",
            "contentKeys",
            "alternativeMediaId",
            "filters",
        )
    )
}
