"""``Microsoft.Media/mediaservices/streamingPolicies``: the six predefined policies every account
has, and the account's own.

Shapes (spec ``Metadata/stable/2023-01-01/StreamingPoliciesAndStreamingLocators.json``,
media-az.md §5): properties ``created`` (read-only), ``defaultContentKeyPolicyName`` and one or
more of ``noEncryption`` / ``envelopeEncryption`` / ``commonEncryptionCenc`` /
``commonEncryptionCbcs`` (``enabledProtocols``, ``clearTracks``, ``contentKeys {defaultKey {label,
policyName}, keyToTrackMappings}``, ``drm`` ...). A user policy: PUT 201 (create only: a PUT on an
existing one is 400, there is no PATCH: 405), DELETE 200/204; echoed with ``clearTracks: []`` and
``keyToTrackMappings: []`` added to its encrypted sections.

The predefined policies are NOT stored: ``implicit`` answers their GET, and ``list_children``
answers the LIST, merging them with the stored ones (ordinal order by name, pages of 10 with
``$skiptoken=<last name>``, as media-az.md §3 says Azure pages). Why not store them at account
creation: they have no ``systemData`` (which the engine adds to every stored resource), they
would need a migration for accounts that exist already, and they can never change or go. Their
names can be neither created nor deleted (400).

Keyless's choices where Azure says nothing: at most 100 user policies per account (the AMS
quota); at least one of the four sections; ``policyName`` references (default or per key) must
name a content key policy of the account; deleting a policy that locators use is allowed (their
keys are kept with the locator).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import Reply, RequestContext, StoredResource, iso_time, row_to_resource
from keyless.arm.http import ProviderRequest
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming
from keyless.providers.media.children import MediaChildType, bad_request, optional_list, text_field
from keyless.providers.media.content_key_policies import policy_exists
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

TYPE_KEY = "microsoft.media/mediaservices/streamingpolicies"
PREDEFINED_CREATED = "2018-03-19T06:06:06Z"
MAX_USER_POLICIES = 100
PAGE_SIZE = 10  # media-services-apis-overview.md: streaming policies are listed 10 at a time
_MAX_TRACKS = 32
_MAX_MAPPINGS = 32
_MAX_TEXT = 2048
SECTIONS = ("noEncryption", "envelopeEncryption", "commonEncryptionCenc", "commonEncryptionCbcs")
# The content key type a locator's key gets from the section its label is in (media-az.md §4).
KEY_TYPES = {
    "envelopeEncryption": "EnvelopeEncryption",
    "commonEncryptionCenc": "CommonEncryptionCenc",
    "commonEncryptionCbcs": "CommonEncryptionCbcs",
}
# The label of a section's default key when the policy names none (the predefined policies' own).
DEFAULT_LABELS = {
    "envelopeEncryption": "clearKeyDefault",
    "commonEncryptionCenc": "cencKeyDefault",
    "commonEncryptionCbcs": "cbcsKeyDefault",
}


def _protocols(download: bool, dash: bool, hls: bool, smooth: bool) -> dict[str, bool]:
    return {"download": download, "dash": dash, "hls": hls, "smoothStreaming": smooth}


def _encrypted(label: str, protocols: dict[str, bool], drm: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "enabledProtocols": protocols,
        "clearTracks": [],
        "contentKeys": {"defaultKey": {"label": label}, "keyToTrackMappings": []},
    }
    if drm is not None:
        out["drm"] = drm
    return out


_CENC = _encrypted("cencKeyDefault", _protocols(False, True, False, True), {"playReady": {}, "widevine": {}})
# The real GET shapes (recording test_ams_streaming_policy, media-az.md §5).
PREDEFINED: dict[str, dict[str, Any]] = {
    "Predefined_ClearKey": {
        "envelopeEncryption": _encrypted("clearKeyDefault", _protocols(False, True, True, True))
    },
    "Predefined_ClearStreamingOnly": {
        "noEncryption": {"enabledProtocols": _protocols(False, True, True, True)}
    },
    "Predefined_DownloadAndClearStreaming": {
        "noEncryption": {"enabledProtocols": _protocols(True, True, True, True)}
    },
    "Predefined_DownloadOnly": {"noEncryption": {"enabledProtocols": _protocols(True, False, False, False)}},
    "Predefined_MultiDrmCencStreaming": {"commonEncryptionCenc": _CENC},
    "Predefined_MultiDrmStreaming": {
        "commonEncryptionCenc": _CENC,
        "commonEncryptionCbcs": _encrypted(
            "cbcsKeyDefault",
            _protocols(False, False, True, False),
            {"fairPlay": {"allowPersistentLicense": False}},
        ),
    },
}
_PREDEFINED_BY_KEY = {name.lower(): name for name in PREDEFINED}


def predefined_name(name: str) -> str | None:
    """The canonical name of predefined policy ``name`` (any case), or None."""
    return _PREDEFINED_BY_KEY.get(name.lower())


def policy_properties(
    conn: sa.Connection, account: ResourceId, name: str
) -> tuple[str, dict[str, Any]] | None:
    """(canonical name, properties) of streaming policy ``name`` of ``account``: a predefined
    one or the account's own; None when there is none."""
    canonical = predefined_name(name)
    if canonical is not None:
        return canonical, {"created": PREDEFINED_CREATED, **PREDEFINED[canonical]}
    rid = _child_id(account, name)
    found = conn.execute(
        sa.select(resources.c.name, resources.c.document).where(resources.c.id_key == rid.key)
    ).first()
    if found is None:
        return None
    return str(found.name), dict(orjson.loads(found.document).get("properties") or {})


def _child_id(account: ResourceId, name: str) -> ResourceId:
    return ResourceId(
        account.subscription_id,
        account.resource_group,
        account.namespace,
        (*account.types, "streamingPolicies"),
        (*account.names, name),
    )


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"'{path}' is required and must be a boolean.", path)
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"'{path}' must be an object.", path)
    return value


def _enabled_protocols(value: Any, path: str) -> dict[str, bool]:
    obj = _object(value, path)
    return {
        key: _flag(obj.get(key), f"{path}.{key}") for key in ("download", "dash", "hls", "smoothStreaming")
    }


def _tracks(value: Any, path: str) -> list[dict[str, Any]]:
    """``[{trackSelections: [{property, operation, value}]}]``, bounded."""
    value = optional_list(
        value, _MAX_TRACKS, f"'{path}' must be a list of at most {_MAX_TRACKS} track selections.", path
    )
    out = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        conditions = optional_list(
            _object(item, where).get("trackSelections"),
            _MAX_TRACKS,
            f"'{where}.trackSelections' must be a list of at most {_MAX_TRACKS}.",
            where,
        )
        checked = []
        for j, cond in enumerate(conditions):
            at = f"{where}.trackSelections[{j}]"
            cond = _object(cond, at)
            prop, op = cond.get("property"), cond.get("operation")
            if prop not in ("Unknown", "FourCC") or op not in ("Unknown", "Equal"):
                raise bad_request(
                    f"'{at}': property must be FourCC or Unknown, operation Equal or Unknown.", at
                )
            entry = {"property": prop, "operation": op}
            text = text_field(cond, "value", 256, f"{at}.value")
            if text is not None:
                entry["value"] = text
            checked.append(entry)
        out.append({"trackSelections": checked})
    return out


def _templates(
    value: Any, path: str, names: tuple[str, ...], required_flag: str | None = None
) -> dict[str, Any]:
    obj = _object(value, path)
    out: dict[str, Any] = {}
    for name in names:
        text = text_field(obj, name, _MAX_TEXT, f"{path}.{name}")
        if text is not None:
            out[name] = text
    if required_flag is not None:
        out[required_flag] = _flag(obj.get(required_flag), f"{path}.{required_flag}")
    return out


def _drm(section: str, value: Any, path: str) -> dict[str, Any]:
    obj = _object(value, path)
    allowed = ("playReady", "widevine") + (("fairPlay",) if section == "commonEncryptionCbcs" else ())
    out: dict[str, Any] = {}
    for name, item in obj.items():
        if name not in allowed:
            raise bad_request(f"'{path}.{name}' is not a DRM of this encryption.", f"{path}.{name}")
        if name == "playReady":
            out[name] = _templates(
                item, f"{path}.{name}", ("customLicenseAcquisitionUrlTemplate", "playReadyCustomAttributes")
            )
        elif name == "widevine":
            out[name] = _templates(item, f"{path}.{name}", ("customLicenseAcquisitionUrlTemplate",))
        else:
            out[name] = _templates(
                item, f"{path}.{name}", ("customLicenseAcquisitionUrlTemplate",), "allowPersistentLicense"
            )
    return out


def _content_keys(conn: sa.Connection, account: ResourceId, value: Any, path: str) -> dict[str, Any]:
    obj = _object(value if value is not None else {}, path)
    out: dict[str, Any] = {}
    if obj.get("defaultKey") is not None:
        default = _object(obj["defaultKey"], f"{path}.defaultKey")
        out["defaultKey"] = _key_ref(conn, account, default, f"{path}.defaultKey", label_required=False)
    mappings = optional_list(
        obj.get("keyToTrackMappings"),
        _MAX_MAPPINGS,
        f"'{path}.keyToTrackMappings' must be a list of at most {_MAX_MAPPINGS}.",
        path,
    )
    out["keyToTrackMappings"] = []
    for i, mapping in enumerate(mappings):
        where = f"{path}.keyToTrackMappings[{i}]"
        entry = _key_ref(conn, account, _object(mapping, where), where, label_required=True)
        entry["tracks"] = _tracks(mapping.get("tracks"), f"{where}.tracks")
        out["keyToTrackMappings"].append(entry)
    return out


def _key_ref(
    conn: sa.Connection, account: ResourceId, obj: dict[str, Any], path: str, *, label_required: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    label = text_field(obj, "label", 256, f"{path}.label")
    if label_required and not label:
        raise bad_request(f"'{path}.label' is required.", f"{path}.label")
    if label is not None:
        out["label"] = label
    policy = text_field(obj, "policyName", 260, f"{path}.policyName")
    if policy is not None:
        out["policyName"] = require_content_key_policy(conn, account, policy, f"{path}.policyName")
    return out


def require_content_key_policy(conn: sa.Connection, account: ResourceId, name: str, path: str) -> str:
    """The stored name of content key policy ``name``, or 400 (Keyless's text, by analogy to
    Azure's "Asset '<name>' is not found under account '<account>'")."""
    found = policy_exists(conn, account, name)
    if found is None:
        raise bad_request(f"Content key policy '{name}' is not found under account '{account.name}'.", path)
    return found


def check_policy(conn: sa.Connection, account: ResourceId, props: dict[str, Any]) -> dict[str, Any]:
    """The stored properties of a user policy (without ``created``); raises 400 ``BadRequest``."""
    out: dict[str, Any] = {}
    default_policy = text_field(
        props, "defaultContentKeyPolicyName", 260, "properties.defaultContentKeyPolicyName"
    )
    if default_policy is not None:
        out["defaultContentKeyPolicyName"] = require_content_key_policy(
            conn, account, default_policy, "properties.defaultContentKeyPolicyName"
        )
    present = [s for s in SECTIONS if props.get(s) is not None]
    if not present:
        raise bad_request(
            "A streaming policy needs at least one of noEncryption, envelopeEncryption, commonEncryptionCenc "
            "and commonEncryptionCbcs.",
            "properties",
        )
    for section in present:
        path = f"properties.{section}"
        value = _object(props[section], path)
        entry: dict[str, Any] = {}
        if value.get("enabledProtocols") is not None:
            entry["enabledProtocols"] = _enabled_protocols(
                value["enabledProtocols"], f"{path}.enabledProtocols"
            )
        if section != "noEncryption":
            entry["clearTracks"] = _tracks(value.get("clearTracks"), f"{path}.clearTracks")
            entry["contentKeys"] = _content_keys(
                conn, account, value.get("contentKeys"), f"{path}.contentKeys"
            )
            if section == "envelopeEncryption":
                template = text_field(
                    value,
                    "customKeyAcquisitionUrlTemplate",
                    _MAX_TEXT,
                    f"{path}.customKeyAcquisitionUrlTemplate",
                )
                if template is not None:
                    entry["customKeyAcquisitionUrlTemplate"] = template
            else:
                if value.get("drm") is not None:
                    entry["drm"] = _drm(section, value["drm"], f"{path}.drm")
                if value.get("clearKeyEncryptionConfiguration") is not None:
                    entry["clearKeyEncryptionConfiguration"] = _templates(
                        value["clearKeyEncryptionConfiguration"],
                        f"{path}.clearKeyEncryptionConfiguration",
                        ("customKeysAcquisitionUrlTemplate",),
                    )
        out[section] = entry
    return out


def key_slots(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The content keys a locator on a policy with ``props`` needs: ``{label, type, policyName?,
    tracks}`` per default key and per key-to-track mapping of each encrypted section (labels
    ``clearKeyDefault`` / ``cencKeyDefault`` / ``cbcsKeyDefault`` when the policy names none)."""
    slots: list[dict[str, Any]] = []
    seen: set[str] = set()
    for section, key_type in KEY_TYPES.items():
        value = props.get(section)
        if not isinstance(value, dict):
            continue
        keys = value.get("contentKeys") or {}
        default = keys.get("defaultKey") or {}
        refs: list[dict[str, Any]] = [
            {
                "label": default.get("label") or DEFAULT_LABELS[section],
                "policyName": default.get("policyName"),
                "tracks": [],
            }
        ]
        for mapping in keys.get("keyToTrackMappings") or []:
            refs.append(
                {
                    "label": mapping.get("label"),
                    "policyName": mapping.get("policyName"),
                    "tracks": mapping.get("tracks") or [],
                }
            )
        for ref in refs:
            if not ref["label"] or ref["label"] in seen:
                continue
            seen.add(str(ref["label"]))
            slots.append({**ref, "type": key_type})
    return slots


class StreamingPolicyType(MediaChildType):
    def __init__(self) -> None:
        super().__init__("streamingPolicies")

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """Refuse what is never allowed before the engine acts: PATCH (no update operation), and
        PUT or DELETE of a predefined policy."""
        if len(req.segments) != 4:
            return
        if req.method == "PATCH":
            raise errors.method_not_allowed(req.method)
        if req.method in ("PUT", "DELETE") and predefined_name(rid.name) is not None:
            verb = "created" if req.method == "PUT" else "deleted"
            raise bad_request(
                f"The predefined streaming policy '{predefined_name(rid.name)}' cannot be {verb}."
            )

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        if predefined_name(rid.name) is not None:
            raise bad_request(
                f"The predefined streaming policy '{predefined_name(rid.name)}' cannot be created."
            )
        if existing is not None:
            raise bad_request(
                f"Streaming policy '{rid.name}' already exists; a streaming policy cannot be updated."
            )
        account = rid.parent
        assert account is not None
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(resources)
            .where(resources.c.parent_key == account.key, resources.c.type_key == TYPE_KEY)
        ).scalar_one()
        if count >= MAX_USER_POLICIES:
            raise bad_request(
                f"An account can have at most {MAX_USER_POLICIES} streaming policies of its own."
            )
        checked = check_policy(conn, account, dict(incoming.properties or {}))
        return {"created": iso_time(time.time()), **checked}

    def implicit(self, conn: sa.Connection, rid: ResourceId) -> dict[str, Any] | None:
        """The GET body of a predefined policy (it exists whenever the account does)."""
        name = predefined_name(rid.name)
        parent = rid.parent
        if name is None or parent is None:
            return None
        found = conn.execute(
            sa.select(resources.c.resource_id).where(resources.c.id_key == parent.key)
        ).first()
        return None if found is None else _predefined_body(str(found.resource_id), name)

    def all_items(self, front: MediaFront, account: AccountContext) -> list[dict[str, Any]]:
        """The predefined policies and the account's own, rendered, by ordinal name."""
        with front.manager.db.read() as conn:
            rows = conn.execute(
                sa.select(resources).where(
                    resources.c.parent_key == account.rid.key, resources.c.type_key == TYPE_KEY
                )
            ).all()
        items = [_predefined_body(str(account.rid), name) for name in PREDEFINED]
        items += [front.manager.render(self, row_to_resource(row)) for row in rows]
        return sorted(items, key=lambda item: str(item["name"]))

    def list_children(self, front: MediaFront, req: ProviderRequest, account: AccountContext) -> Reply:
        """GET of the collection: the predefined policies and the account's own, by ordinal name,
        10 a page; ``$skiptoken`` is the last name of the page before (media-az.md §3)."""
        ctx = req.ctx
        front.manager.check_api_version(self, ctx)
        items = [(str(item["name"]), item) for item in self.all_items(front, account)]
        after = req.query.get("$skiptoken")
        if after is not None:
            items = [item for item in items if item[0] > after]
        body: dict[str, Any] = {"value": [item[1] for item in items[:PAGE_SIZE]]}
        if len(items) > PAGE_SIZE:
            token = quote(items[PAGE_SIZE - 1][0], safe="")
            body["@odata.nextLink"] = (
                f"{ctx.base_url}{req.path}?api-version={ctx.api_version}&%24skiptoken={token}"
            )
        return Reply(200, body)


def _predefined_body(account_id: str, name: str) -> dict[str, Any]:
    """A predefined policy as Azure answers it: no ``systemData`` (media-az.md §5)."""
    return {
        "id": f"{account_id}/streamingPolicies/{name}",
        "name": name,
        "type": "Microsoft.Media/mediaservices/streamingPolicies",
        "properties": {"created": PREDEFINED_CREATED, **orjson.loads(orjson.dumps(PREDEFINED[name]))},
    }
