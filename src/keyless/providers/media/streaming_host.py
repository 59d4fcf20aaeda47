"""The streaming endpoints' origin: ``https://{hostName}/{streamingLocatorId}/{file}`` serves blob
``{file}`` of the locator's asset for progressive download (``GET``/``HEAD``), as an Azure
streaming endpoint does for a locator under a download policy.

Mounted for every ``*.streaming.media.azure.net`` host (``HostRouter.add_suffix``). A request is
answered only when all of these hold, else ``404`` with a short plain-text reason (Azure's own
refusals are not published; Keyless answers 404 for each):

- the host names an endpoint (``streaming_endpoints.parse_host``) that is stored and ``Running``;
- the account's customer key is accessible (``MediaFront.account_context``);
- a locator of the account has that ``streamingLocatorId`` and now is within
  ``startTime``..``endTime``;
- its policy allows download (``streaming_endpoints.download_allowed``: ``noEncryption`` with
  ``enabledProtocols.download``);
- ``{file}`` is ``downloadable`` and a blob of the asset's container, read through the blob data
  plane AS THE ACCOUNT (``blob_io``, ``MediaFront.storage_auth``), so the storage firewall and RBAC
  decide as for every Media Services storage call.

Bytes: ``Accept-Ranges: bytes``; one ``Range: bytes=a-b|a-|-n`` → ``206`` with ``Content-Range``,
an unsatisfiable one → ``416`` with ``Content-Range: bytes */size``; several ranges are served
whole (200, RFC 9110 lets a server ignore Range). ``Content-Type`` is the blob's. The body is
streamed chunk by chunk (``blob_io.iter_blob``, at most ``blob_io.CHUNK`` bytes in memory), all
awaited, so the event loop never waits on it. ``Cache-Control: max-age={maxCacheAge}`` when the
endpoint sets one. CORS: ``Access-Control-Allow-Origin: *`` with the range headers exposed, and
preflights (``OPTIONS``) answered, so a ``<video>`` on another origin can play and seek (Azure's
origin allows every origin unless ``crossSiteAccessPolicies`` say otherwise; those are Silverlight
and Flash policy files, which Keyless does not serve).

Bounds: the path at most ``MAX_PATH`` characters, the file name at most 1,024.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.ids import ResourceId, is_guid, parse_resource_id
from keyless.network import NetworkOrigin, OriginResolver, allows
from keyless.providers.media import blob_io
from keyless.providers.media.children import asset_id
from keyless.providers.media.storage_access import plain_blob_name
from keyless.providers.media.streaming_endpoint_settings import allow_list
from keyless.providers.media.streaming_endpoints import (
    DEFAULT,
    RUNNING,
    download_allowed,
    downloadable,
    endpoint_id,
    parse_host,
)
from keyless.providers.media.streaming_policies import policy_properties
from keyless.store.tables import media_accounts, resources
from keyless.web import Receive, Scope, Send, header, host_of, send_bytes

if TYPE_CHECKING:
    from keyless.providers.media.http import MediaFront

log = logging.getLogger("keyless.media.streaming")

MAX_PATH = 2048
_LOCATOR_TYPE = "microsoft.media/mediaservices/streaminglocators"
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")
_TEXT = b"text/plain; charset=utf-8"
_CORS = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "Content-Length, Content-Range, Accept-Ranges, Content-Type",
}
_PREFLIGHT = {
    **_CORS,
    "access-control-allow-methods": "GET, HEAD, OPTIONS",
    "access-control-allow-headers": "Range, Origin, Accept, Content-Type",
    "access-control-max-age": "3600",
}


class Refused(Exception):
    """A request the origin does not serve: ``status`` and a short reason for the body."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


@dataclass(frozen=True)
class Download:
    """What one request serves: the blob, where it is, and how the endpoint caches."""

    storage_name: str | None
    container: str
    blob: str
    max_cache_age: int | None
    account_rid: ResourceId


def _instant(text: Any) -> float | None:
    """An ISO 8601 UTC time (as locators store them, up to 7 fractional digits) as a timestamp."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    base = re.sub(r"(\.\d{1,6})\d*", r"\1", text).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(base).timestamp()
    except ValueError:
        return None


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range`` header over ``size`` bytes; None: serve it all.
    Refused(416) when the range cannot be satisfied."""
    if value is None or len(value) > 64:
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None  # several ranges or another unit: ignored (RFC 9110 §14.2)
    unsatisfiable = Refused(416, "The range cannot be satisfied.", {"content-range": f"bytes */{size}"})
    if not match.group(1):  # the last n bytes
        length = int(match.group(2))
        if length == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - length), size - 1
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else size - 1
    if first >= size or last < first:
        raise unsatisfiable
    return first, min(last, size - 1)


class StreamingHostApp:
    """ASGI app of the ``*.streaming.media.azure.net`` hosts (module docstring)."""

    def __init__(self, front: MediaFront, origins: OriginResolver) -> None:
        self.front = front
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        try:
            if method == "OPTIONS":
                await send_bytes(send, 200, b"", None, _PREFLIGHT)
                return
            if method not in ("GET", "HEAD"):
                raise Refused(405, "Only GET and HEAD are served.", {"allow": "GET, HEAD, OPTIONS"})
            download = self._resolve(host_of(scope), str(scope.get("path", "")), self.origins.origin(scope))
            await self._serve(scope, send, download, head=method == "HEAD")
        except Refused as exc:
            body = b"" if method == "HEAD" else exc.reason.encode()
            await send_bytes(send, exc.status, body, _TEXT, {**_CORS, **exc.headers})

    # --- what the request names ----------------------------------------------------------------

    def _resolve(self, host: str, path: str, origin: NetworkOrigin) -> Download:
        """The download ``host`` and ``path`` name, every condition checked (module docstring)."""
        if len(path) > MAX_PATH:
            raise Refused(414, "The path is too long.")
        parts = path.lstrip("/").split("/", 1)
        if len(parts) != 2 or not is_guid(parts[0]):
            raise Refused(404, "Not found: the path must be /{streamingLocatorId}/{file}.")
        locator_id, blob = parts[0].lower(), parts[1]
        if not downloadable(blob) or not plain_blob_name(blob):
            raise Refused(404, "Not found: that file is not offered for download.")
        named = parse_host(host)
        if named is None:
            raise Refused(404, "Not found: no streaming endpoint has this host name.")
        location, account_name, endpoint_name = named
        with self.front.manager.db.read() as conn:
            row = conn.execute(
                sa.select(media_accounts.c.resource_id).where(
                    media_accounts.c.location == location, media_accounts.c.name == account_name
                )
            ).first()
            account_rid = parse_resource_id(str(row.resource_id)) if row is not None else None
            if account_rid is None:
                raise Refused(404, "Not found: no streaming endpoint has this host name.")
            endpoint = self.front.manager.load(conn, endpoint_id(account_rid, endpoint_name))
        if endpoint is None and endpoint_name != DEFAULT:
            raise Refused(404, "Not found: no streaming endpoint has this host name.")
        props = (endpoint.document.get("properties") or {}) if endpoint is not None else {}
        if props.get("resourceState") != RUNNING:
            raise Refused(404, "Not found: the streaming endpoint is not running.")
        # accessControl.ip: only the addresses it allows (the one network-rules evaluator; Azure's
        # answer to another caller is not published: 403).
        rules = allow_list(props.get("accessControl"))
        if rules is not None and not allows(rules, origin):
            raise Refused(403, "Forbidden: the streaming endpoint's IP allow list does not name this caller.")
        try:
            account = self.front.account_context(account_rid)
        except errors.ArmError as exc:  # the customer key is out of reach
            raise Refused(404, f"Not found: the account cannot be used ({exc.message})") from exc
        with self.front.manager.db.read() as conn:
            locator = self._locator(conn, account.rid, locator_id)
            found = policy_properties(conn, account.rid, str(locator.get("streamingPolicyName", "")))
            if found is None or not download_allowed(found[1]):
                raise Refused(404, "Not found: the streaming policy does not allow download.")
            asset = self.front.manager.load(conn, asset_id(account.rid, str(locator.get("assetName", ""))))
        if asset is None:
            raise Refused(404, "Not found: the asset is gone.")
        asset_props = asset.document.get("properties") or {}
        max_age = props.get("maxCacheAge")
        return Download(
            asset_props.get("storageAccountName"),
            str(asset_props.get("container", "")),
            blob,
            max_age if isinstance(max_age, int) else None,
            account.rid,
        )

    @staticmethod
    def _locator(conn: sa.Connection, account: ResourceId, locator_id: str) -> dict[str, Any]:
        """The properties of the account's locator with ``locator_id``, in its time window."""
        rows = conn.execute(
            sa.select(resources.c.document).where(
                resources.c.parent_key == account.key,
                resources.c.type_key == _LOCATOR_TYPE,
                resources.c.document.contains(f'"streamingLocatorId":"{locator_id}"', autoescape=True),
            )
        ).all()
        for row in rows:
            props = orjson.loads(row.document).get("properties") or {}
            if props.get("streamingLocatorId") != locator_id:
                continue
            now = time.time()
            start, end = _instant(props.get("startTime")), _instant(props.get("endTime"))
            if (start is not None and now < start) or (end is not None and now >= end):
                raise Refused(404, "Not found: the streaming locator is not in its time window.")
            return dict(props)
        raise Refused(404, "Not found: no streaming locator has this id.")

    # --- the bytes --------------------------------------------------------------------------------

    async def _serve(self, scope: Scope, send: Send, download: Download, *, head: bool) -> None:
        front = self.front
        try:
            account = front.account_context(download.account_rid)
            auth = front.storage_auth(account, download.storage_name)
            item = await blob_io.blob_item(front.storage, auth, download.container, download.blob)
        except blob_io.BlobAccessError as exc:
            reason = "the file is not in the asset" if exc.status == 404 else f"storage refused: {exc.code}"
            raise Refused(404, f"Not found: {reason}.") from exc
        except errors.ArmError as exc:
            raise Refused(404, f"Not found: {exc.message}") from exc
        wanted = parse_range(header(scope, b"range"), item.size)
        first, last = wanted if wanted is not None else (0, item.size - 1)
        headers = {
            **_CORS,
            "accept-ranges": "bytes",
            "content-length": str(max(0, last - first + 1)),
        }
        if wanted is not None:
            headers["content-range"] = f"bytes {first}-{last}/{item.size}"
        if download.max_cache_age is not None:
            headers["cache-control"] = f"max-age={download.max_cache_age}"
        raw = [(b"content-type", item.content_type.encode("latin-1", "replace"))]
        raw += [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": 206 if wanted else 200, "headers": raw})
        if head or last < first:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            async for chunk in blob_io.iter_blob(
                front.storage, auth, download.container, download.blob, first, last
            ):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (blob_io.BlobAccessError, errors.ArmError) as exc:
            # The status is sent: all that is left is to cut the body short.
            log.warning("streaming %s/%s stopped: %s", download.container, download.blob, exc)
        await send({"type": "http.response.body", "body": b""})
