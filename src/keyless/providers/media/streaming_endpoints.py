"""``Microsoft.Media/mediaservices/streamingEndpoints``: the origin that serves an account's
published assets (``streaming_host`` serves its progressive downloads).

Wire facts (shared/reference/media-jobs.md "Streaming endpoints and download"; spec
``Streaming/stable/2022-08-01/streamingservice.json`` StreamingEndpoint; azure-mgmt-media 10.2.1
``_streaming_endpoints_operations.py``; az recordings ``test_ams_streaming_endpoint_*.yaml``):

- A TRACKED resource (``location``, ``tags``) in the account's location. Name: 1-24 characters,
  ``^[a-zA-Z0-9]+(-*[a-zA-Z0-9])*$``.
- properties: ``description`` (""), ``scaleUnits`` (required), ``availabilitySetName``,
  ``cdnEnabled`` (false), ``cdnProvider``, ``cdnProfile``, ``maxCacheAge``, ``customHostNames``
  ([]), ``accessControl {akamai, ip}``, ``crossSiteAccessPolicies {clientAccessPolicy,
  crossDomainPolicy}``; read-only ``hostName``, ``freeTrialEndTime`` (``0001-01-01T00:00:00Z``),
  ``provisioningState``, ``resourceState`` (Stopped|Starting|Running|Stopping|Deleting|Scaling),
  ``created``, ``lastModified``.
- ``hostName``: ``{account}-{regioncode}.streaming.media.azure.net`` for ``default``,
  ``{name}-{account}-{regioncode}...`` for the others (recordings: westus ``uswe``, centralindia
  ``inct``). Keyless knows only those two codes; any other region's code is its name (Keyless's
  choice: unique, and ``streaming_host`` reads it back).
- Every account has a ``default`` endpoint, Stopped, made by the service (``systemData`` all null
  in the list recording). It "cannot be deleted" (Media Services v2 StreamingEndpoint docs).
  Keyless renders it while it is not stored (``implicit``, ``list_children``, ``all_items``) and
  stores it before the first write that touches it (``prepare``), so GETs and lists are right
  for every account, old or new, with no hook in the account's creation.
- Operations: PUT (``autoStart`` query: create Running) 200/201, PATCH 200/202, DELETE
  200/202/204, POST ``start``/``stop`` 200/202, POST ``scale`` ``{scaleUnit}`` 200/202 (the
  SDK's accepted codes). Azure answers 201/202 with ``Azure-AsyncOperation``
  ``.../mediaservices/{a}/streamingendpointoperations/{id}``. Keyless finishes each at once and
  answers the synchronous code the SDK accepts (200/201, ``provisioningState: Succeeded``), so
  every poller is done with its first response (the SDK's ``ARMPolling`` reads a PUT's
  provisioningState, and a POST's 200 as success).

Keyless's choices where Azure says nothing: at most ``MAX_ENDPOINTS`` (2, the AMS quota "streaming
endpoints (stopped or running) per account", the default included); ``scaleUnits`` 0-100; start
and stop are idempotent; scale keeps the resource state.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.engine import Reply, RequestContext, StoredResource, iso_time, merge_patch, row_to_resource
from keyless.arm.http import ProviderRequest
from keyless.arm.ids import ResourceId
from keyless.arm.locations import REGIONS, normalize_location
from keyless.arm.resource_types import Incoming, NameRule
from keyless.providers.media.children import CHILD_API_VERSIONS, MediaChildType, bad_request, text_field
from keyless.providers.media.streaming_endpoint_settings import (
    access_control,
    cross_site,
    host_names,
    whole_number,
)
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

KIND = "streamingEndpoints"
TYPE_KEY = "microsoft.media/mediaservices/streamingendpoints"
TYPE_NAME = "Microsoft.Media/mediaservices/streamingEndpoints"
DEFAULT = "default"
HOST_SUFFIX = ".streaming.media.azure.net"
# The Streaming group's versions (specs Streaming/stable; 10.x sends 2022-08-01, az 2.91 2021-11-01).
API_VERSIONS = CHILD_API_VERSIONS | frozenset(["2019-05-01-preview", "2022-11-01"])
MAX_ENDPOINTS = 2
MAX_SCALE_UNITS = 100
RUNNING, STOPPED = "Running", "Stopped"
NO_TRIAL = "0001-01-01T00:00:00Z"
# The spec's pattern, spelt so it cannot backtrack, with the 24-character bound built in.
NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,22}[a-zA-Z0-9])?")
NAME_TEXT = (
    "The streaming endpoint name must be 1 to 24 letters, digits or hyphens, and start and end "
    "with a letter or a digit."
)
# Region codes seen in real host names (az recordings); other regions use their own name.
REGION_CODES = {"westus": "uswe", "centralindia": "inct"}
_CODE_REGIONS = {code: region for region, code in REGION_CODES.items()}
_ORDER = (
    "description",
    "scaleUnits",
    "availabilitySetName",
    "cdnEnabled",
    "cdnProvider",
    "cdnProfile",
    "maxCacheAge",
    "customHostNames",
    "accessControl",
    "crossSiteAccessPolicies",
    "hostName",
    "freeTrialEndTime",
    "provisioningState",
    "resourceState",
    "created",
    "lastModified",
)
PREPARED_AUTOSTART = "media.streamingEndpoint.autoStart"


def region_code(location: str) -> str:
    """The data-center code of ``location`` in host names (module docstring)."""
    location = normalize_location(location)
    return REGION_CODES.get(location, location)


def region_of_code(code: str) -> str | None:
    """The location a host name's code stands for, or None."""
    if code in _CODE_REGIONS:
        return _CODE_REGIONS[code]
    return code if code in REGIONS and code not in REGION_CODES else None


def host_name(account: str, location: str, endpoint: str) -> str:
    """``hostName`` of endpoint ``endpoint`` of ``account`` (module docstring), lower-case."""
    prefix = "" if endpoint.lower() == DEFAULT else f"{endpoint.lower()}-"
    return f"{prefix}{account.lower()}-{region_code(location)}{HOST_SUFFIX}"


def parse_host(host: str) -> tuple[str, str, str] | None:
    """(location, account name, endpoint name) a streaming host name stands for, or None."""
    if not host.endswith(HOST_SUFFIX) or len(host) > 253:
        return None
    parts = host[: -len(HOST_SUFFIX)].split("-")
    if len(parts) < 2:
        return None
    region = region_of_code(parts[-1])
    account = parts[-2]
    # No prefix: the default endpoint; a prefix must be a named (non-default) endpoint's name.
    endpoint = "-".join(parts[:-2]) if len(parts) > 2 else DEFAULT
    if len(parts) > 2 and (not endpoint or endpoint.lower() == DEFAULT):
        return None
    if region is None or not account or NAME.fullmatch(endpoint) is None:
        return None
    return region, account, endpoint


def endpoint_id(account: ResourceId, name: str) -> ResourceId:
    return ResourceId(
        account.subscription_id,
        account.resource_group,
        account.namespace,
        (*account.types, KIND),
        (*account.names, name),
    )


def any_running(conn: sa.Connection, account_key: str) -> bool:
    """Whether one of the account's endpoints is Running (only stored ones can be)."""
    rows = conn.execute(
        sa.select(resources.c.document).where(
            resources.c.parent_key == account_key,
            resources.c.type_key == TYPE_KEY,
            resources.c.document.contains('"resourceState":"Running"', autoescape=True),
        )
    ).all()
    return any(
        (orjson.loads(r.document).get("properties") or {}).get("resourceState") == RUNNING for r in rows
    )


# An asset's files that are not media to download: server manifests and metadata (Keyless's
# reading of Azure's download paths, which list the mp4 files and images of an output asset).
NOT_DOWNLOADABLE = (".ism", ".ismc", ".ismx", ".json", ".xml")
# The streaming protocols of a policy section and their listPaths names, in Azure's order.
PROTOCOLS = (("hls", "Hls"), ("dash", "Dash"), ("smoothStreaming", "SmoothStreaming"))
SCHEMES = {
    "noEncryption": "NoEncryption",
    "envelopeEncryption": "EnvelopeEncryption",
    "commonEncryptionCenc": "CommonEncryptionCenc",
    "commonEncryptionCbcs": "CommonEncryptionCbcs",
}


def downloadable(name: str) -> bool:
    """Whether blob ``name`` of an asset is offered for progressive download."""
    return 0 < len(name) <= 1024 and not name.lower().endswith(NOT_DOWNLOADABLE)


def download_allowed(policy: dict[str, Any]) -> bool:
    """Whether a streaming policy's properties allow progressive download: only its
    ``noEncryption`` section can (Predefined_DownloadOnly, Predefined_DownloadAndClearStreaming)."""
    section = policy.get("noEncryption")
    protocols = section.get("enabledProtocols") if isinstance(section, dict) else None
    return isinstance(protocols, dict) and protocols.get("download") is True


def streaming_protocols(policy: dict[str, Any]) -> list[tuple[str, str]]:
    """(streamingProtocol, encryptionScheme) of every streaming protocol the policy enables."""
    out = []
    for section, scheme in SCHEMES.items():
        body = policy.get(section)
        protocols = body.get("enabledProtocols") if isinstance(body, dict) else None
        if isinstance(protocols, dict):
            out += [(wire, scheme) for key, wire in PROTOCOLS if protocols.get(key) is True]
    return out


def sku_of(scale_units: int) -> dict[str, Any]:
    """The ``sku`` Azure answers from 2021-11-01: Standard with no scale units, else Premium."""
    return {"name": "Premium" if scale_units > 0 else "Standard", "capacity": scale_units}


def _default_properties(account_name: str, location: str, created: str) -> dict[str, Any]:
    """The default endpoint's properties as Azure shows a new account's (list recording)."""
    return {
        "description": "",
        "scaleUnits": 0,
        "availabilitySetName": None,
        "cdnEnabled": False,
        "cdnProvider": None,
        "cdnProfile": None,
        "maxCacheAge": None,
        "customHostNames": [],
        "accessControl": None,
        "crossSiteAccessPolicies": None,
        "hostName": host_name(account_name, location, DEFAULT),
        "freeTrialEndTime": NO_TRIAL,
        "provisioningState": "Succeeded",
        "resourceState": STOPPED,
        "created": created,
        "lastModified": created,
    }


def _account_row(conn: sa.Connection, account: ResourceId) -> Any:
    return conn.execute(
        sa.select(resources.c.resource_id, resources.c.document, resources.c.created_at).where(
            resources.c.id_key == account.key
        )
    ).first()


def _default_body(account_id: str, location: str, account_name: str, created: str) -> dict[str, Any]:
    """The default endpoint while it is not stored: no one made it, so ``systemData`` is null
    throughout (list recording)."""
    return {
        "id": f"{account_id}/streamingendpoints/{DEFAULT}",
        "name": DEFAULT,
        "type": TYPE_NAME,
        "location": location,
        "tags": {},
        "sku": sku_of(0),
        "properties": _default_properties(account_name, location, created),
        "systemData": dict.fromkeys(
            (
                "createdBy",
                "createdByType",
                "createdAt",
                "lastModifiedBy",
                "lastModifiedByType",
                "lastModifiedAt",
            )
        ),
    }


class StreamingEndpointType(MediaChildType):
    def __init__(self) -> None:
        super().__init__(KIND, api_versions=API_VERSIONS)
        self.tracked = True  # TrackedResource in the spec: location and tags
        self.name_rule = NameRule(NAME, NAME_TEXT)
        self.actions = {"start": self._start, "stop": self._stop, "scale": self._scale}

    def render_id(self, rid: ResourceId) -> str:
        """Azure spells both segments in lower case: ``.../mediaservices/{a}/streamingendpoints/{n}``
        (recordings)."""
        account = rid.parent
        assert account is not None
        return f"{super().render_id(account)}/streamingendpoints/{rid.name}"

    # --- the default endpoint --------------------------------------------------------------------

    def implicit(self, conn: sa.Connection, rid: ResourceId) -> dict[str, Any] | None:
        """The default endpoint of an existing account, while it is not stored."""
        account = rid.parent
        if rid.name.lower() != DEFAULT or account is None:
            return None
        row = _account_row(conn, account)
        if row is None:
            return None
        location = str(orjson.loads(row.document).get("location") or "")
        return _default_body(self.render_id(account), location, account.name, iso_time(row.created_at))

    def _materialize_default(self, front: MediaFront, account: AccountContext) -> None:
        """Store the default endpoint as rendered, so a write to it acts on a row."""
        rid = endpoint_id(account.rid, DEFAULT)
        with front.manager.db.write() as conn:
            if front.manager.load(conn, rid) is not None:
                return
            row = _account_row(conn, account.rid)
            if row is None:
                return
            location = str(orjson.loads(row.document).get("location") or "")
            document = {
                "properties": _default_properties(account.rid.name, location, iso_time(row.created_at)),
                "location": location,
                "tags": {},
                "sku": sku_of(0),
            }
            resource = account.resource
            conn.execute(
                resources.insert().values(
                    id_key=rid.key,
                    resource_id=str(rid),
                    subscription_id=rid.subscription_id.lower(),
                    group_key=rid.group_key,
                    type_key=rid.type_key,
                    parent_key=account.rid.key,
                    name=rid.name,
                    document=orjson.dumps(document).decode(),
                    etag=f'"{row.created_at}"',
                    created_at=row.created_at,
                    created_by=resource.created_by,
                    created_by_type=resource.created_by_type,
                    modified_at=row.created_at,
                    modified_by=resource.created_by,
                    modified_by_type=resource.created_by_type,
                )
            )

    def _stored_default(self, front: MediaFront, account: AccountContext) -> bool:
        with front.manager.db.read() as conn:
            return front.manager.load(conn, endpoint_id(account.rid, DEFAULT)) is not None

    def all_items(self, front: MediaFront, account: AccountContext) -> list[dict[str, Any]]:
        with front.manager.db.read() as conn:
            rows = conn.execute(
                sa.select(resources).where(
                    resources.c.parent_key == account.rid.key, resources.c.type_key == TYPE_KEY
                )
            ).all()
            items = [front.manager.render(self, row_to_resource(row)) for row in rows]
            if not any(str(item["name"]).lower() == DEFAULT for item in items):
                implicit = self.implicit(conn, endpoint_id(account.rid, DEFAULT))
                if implicit is not None:
                    items.append(implicit)
        return sorted(items, key=lambda item: str(item["name"]))

    def list_children(self, front: MediaFront, req: ProviderRequest, account: AccountContext) -> Reply | None:
        """The engine's list, with the default endpoint first on the first page while it is not
        stored (a stored one is listed by the engine)."""
        if self._stored_default(front, account):
            return None
        reply = front.manager.list(req.ctx, self, account.rid, req.path, req.query.get("$skiptoken"))
        if req.query.get("$skiptoken") is None and isinstance(reply.body, dict):
            with front.manager.db.read() as conn:
                implicit = self.implicit(conn, endpoint_id(account.rid, DEFAULT))
            if implicit is not None:
                reply.body["value"] = [implicit, *reply.body.get("value", [])]
        return reply

    # --- before the write ----------------------------------------------------------------------

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """``autoStart`` kept for ``validate``; the default endpoint stored before a write to it;
        deleting it refused."""
        writes = req.method in ("PUT", "PATCH") and len(req.segments) == 4
        action = req.method == "POST" and len(req.segments) == 5
        if req.method == "PUT" and len(req.segments) == 4:
            flag = req.query.get("autoStart", "false").lower()
            if flag not in ("true", "false"):
                raise bad_request("The 'autoStart' query parameter must be 'true' or 'false'.", "autoStart")
            req.ctx.prepared[PREPARED_AUTOSTART] = flag == "true"
        if rid.name.lower() != DEFAULT:
            return
        if req.method == "DELETE" and len(req.segments) == 4:
            raise bad_request("The default streaming endpoint cannot be deleted.")
        if writes or action:
            self._check_default_write(front, req, rid)  # nothing is stored for a refused request
            self._materialize_default(front, account)

    def _check_default_write(self, front: MediaFront, req: ProviderRequest, rid: ResourceId) -> None:
        """Refuse (400) a write or action on the not-yet-stored default endpoint whose body the
        engine would refuse, before the default is stored for it."""
        with front.manager.db.read() as conn:
            if front.manager.load(conn, rid) is not None:
                return
            body = self.implicit(conn, rid)
            if body is None:
                return
            if req.method == "POST":
                payload = parse_body(req.body) if req.body else {}  # refuse what the engine would
                if req.segments[4].lower() == "scale":
                    whole_number(
                        payload.get("scaleUnit") if isinstance(payload, dict) else None,
                        "scaleUnit",
                        0,
                        MAX_SCALE_UNITS,
                    )
                return
            now = time.time()
            document: dict[str, Any] = {
                k: body[k] for k in ("properties", "location", "tags", "sku") if k in body
            }
            existing = StoredResource(rid, document, '""', now, "", "", now, "", "")
            incoming = incoming_of(parse_body(req.body))
            if req.method == "PATCH":
                incoming = replace(
                    incoming,
                    properties=merge_patch(document.get("properties") or {}, incoming.properties or {}),
                )
            self.validate(req.ctx, conn, rid, incoming, existing)

    # --- the write ---------------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        account = rid.parent
        assert account is not None
        row = _account_row(conn, account)
        account_location = str(orjson.loads(row.document).get("location") or "") if row is not None else ""
        if incoming.location is not None and normalize_location(incoming.location) != account_location:
            raise bad_request(
                f"The streaming endpoint must be in the account's location '{account_location}'.", "location"
            )
        if existing is None:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(resources)
                .where(resources.c.parent_key == account.key, resources.c.type_key == TYPE_KEY)
            ).scalar_one()
            has_default = conn.execute(
                sa.select(resources.c.id_key).where(resources.c.id_key == endpoint_id(account, DEFAULT).key)
            ).first()
            if count + (0 if has_default is not None else 1) >= MAX_ENDPOINTS:
                raise bad_request(f"An account can have at most {MAX_ENDPOINTS} streaming endpoints.")
        props = dict(incoming.properties or {})
        old = dict(existing.document.get("properties") or {}) if existing is not None else {}
        if props.get("scaleUnits") is None:
            raise bad_request("'properties.scaleUnits' is required.", "properties.scaleUnits")
        if not isinstance(props.get("cdnEnabled", False), bool | None):
            raise bad_request("'properties.cdnEnabled' must be true or false.", "properties.cdnEnabled")
        now = iso_time(time.time())
        out: dict[str, Any] = {
            "description": text_field(props, "description", 1024, "properties.description") or "",
            "scaleUnits": whole_number(props.get("scaleUnits"), "properties.scaleUnits", 0, MAX_SCALE_UNITS),
            "availabilitySetName": text_field(
                props, "availabilitySetName", 256, "properties.availabilitySetName"
            ),
            "cdnEnabled": bool(props.get("cdnEnabled") or False),
            "cdnProvider": text_field(props, "cdnProvider", 64, "properties.cdnProvider"),
            # A created endpoint shows "" (recordings), the default null until someone sets it.
            "cdnProfile": text_field(props, "cdnProfile", 256, "properties.cdnProfile")
            if props.get("cdnProfile") is not None
            else (old.get("cdnProfile") if existing is not None else ""),
            "maxCacheAge": None
            if props.get("maxCacheAge") is None
            else whole_number(props.get("maxCacheAge"), "properties.maxCacheAge", 0, 2**31 - 1),
            "customHostNames": host_names(props.get("customHostNames")),
            "accessControl": access_control(props.get("accessControl")),
            "crossSiteAccessPolicies": cross_site(props.get("crossSiteAccessPolicies")),
            "hostName": old.get("hostName") or host_name(account.name, account_location, rid.name),
            "freeTrialEndTime": NO_TRIAL,
            "provisioningState": "Succeeded",
            "resourceState": old.get("resourceState")
            or (RUNNING if ctx.prepared.get(PREPARED_AUTOSTART) else STOPPED),
            "created": old.get("created") or now,
            "lastModified": now,
        }
        return out

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        """The ``sku`` follows ``scaleUnits`` (returning the properties makes the engine store the
        document again, ``sku`` included)."""
        props = dict(resource.document.get("properties") or {})
        resource.document["sku"] = sku_of(int(props.get("scaleUnits") or 0))
        return props

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        return {name: props.get(name) for name in _ORDER}

    # --- actions ---------------------------------------------------------------------------------

    def _set(
        self, conn: sa.Connection, ctx: RequestContext, resource: StoredResource, **changes: Any
    ) -> tuple[int, Any]:
        document = dict(resource.document)
        document["properties"] = {
            **dict(document.get("properties") or {}),
            **changes,
            "lastModified": iso_time(time.time()),
        }
        document["sku"] = sku_of(int(document["properties"].get("scaleUnits") or 0))
        conn.execute(
            resources.update()
            .where(resources.c.id_key == resource.rid.key)
            .values(
                document=orjson.dumps(document).decode(),
                etag=f'"{time.time_ns()}"',
                modified_at=time.time(),
                modified_by=ctx.caller.display_id,
                modified_by_type={"ManagedIdentity": "ManagedIdentity", "User": "User"}.get(
                    ctx.caller.principal_type, "Application"
                ),
            )
        )
        return 200, None

    def _start(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        return self._set(conn, ctx, resource, resourceState=RUNNING)

    def _stop(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        return self._set(conn, ctx, resource, resourceState=STOPPED)

    def _scale(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        """``{scaleUnit}`` (StreamingEntityScaleUnit) becomes ``scaleUnits``."""
        units = whole_number(payload.get("scaleUnit"), "scaleUnit", 0, MAX_SCALE_UNITS)
        return self._set(conn, ctx, resource, scaleUnits=units)


__all__ = ["StreamingEndpointType"]
