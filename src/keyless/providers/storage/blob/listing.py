"""List Containers and List Blobs (``prefix``, ``delimiter``, ``marker``, ``maxresults``, ``include``).

Response shapes: storage.md §2 "List Blobs response" (``EnumerationResults`` with ``Blobs`` /
``BlobPrefix`` and ``NextMarker``, empty on the last page); REST docs "List Containers" and
"List Blobs" for the properties each entry carries. ``maxresults`` is 1-5000 (default 5000;
REST docs). Markers are opaque to clients: Keyless writes the next name (and snapshot),
base64url-encoded, and refuses anything else it is given with 400
``InvalidQueryParameterValue`` (Azure's answer for a marker it did not write is not documented).
Names are listed in byte order (``store.ordered``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import sqlalchemy as sa

from keyless.providers.storage.blob import errors, leases, store
from keyless.providers.storage.blob.request import BlobRequest, Reply
from keyless.providers.storage.blob.xml import XML_DECLARATION, el, rfc1123
from keyless.store.db import Database
from keyless.store.tables import blob_containers, blobs

MAX_RESULTS = 5000
_BLOB_INCLUDES = frozenset(
    {
        "copy", "deleted", "metadata", "snapshots", "uncommittedblobs", "versions", "tags",
        "immutabilitypolicy", "legalhold", "deletedwithversions", "permissions",
    }
)  # fmt: skip
_CONTAINER_INCLUDES = frozenset({"metadata", "deleted", "system"})
_MAX_PREFIX = 1024


def _max_results(req: BlobRequest) -> int:
    text = req.query.get("maxresults")
    if text is None:
        return MAX_RESULTS
    if not text.isascii() or not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise errors.invalid_query("maxresults", text)
    return min(int(text), MAX_RESULTS)


def _includes(req: BlobRequest, allowed: frozenset[str]) -> frozenset[str]:
    raw = req.query.get("include", "")
    items = frozenset(part.strip().lower() for part in raw.split(",") if part.strip())
    bad = items - allowed
    if bad or len(raw) > 512:
        raise errors.invalid_query("include", raw)
    return items


def _prefix(req: BlobRequest) -> str:
    prefix = req.query.get("prefix", "")
    if len(prefix) > _MAX_PREFIX:
        raise errors.invalid_query("prefix", prefix)
    return prefix


def encode_marker(name: str, snapshot: str = "") -> str:
    return base64.urlsafe_b64encode(f"{name}\n{snapshot}".encode()).decode().rstrip("=")


def decode_marker(req: BlobRequest) -> tuple[str, str] | None:
    text = req.query.get("marker", "")
    if not text:
        return None
    if len(text) > 4096:
        raise errors.invalid_query("marker", text)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise errors.invalid_query("marker", text) from None
    name, sep, snapshot = raw.partition("\n")
    if not sep or "\x00" in raw:
        raise errors.invalid_query("marker", text)
    return name, snapshot


def _metadata_xml(metadata: dict[str, str]) -> str:
    return "<Metadata>" + "".join(el(k, v) for k, v in metadata.items()) + "</Metadata>"


def list_containers(db: Database, req: BlobRequest) -> Reply:
    prefix = _prefix(req)
    size = _max_results(req)
    includes = _includes(req, _CONTAINER_INCLUDES)
    marker = decode_marker(req)
    c = blob_containers.c
    name = store.ordered(db, c.name)
    query = sa.select(*blob_containers.columns).where(c.account == req.account)
    if prefix:
        query = query.where(c.name.startswith(prefix, autoescape=True))
    if marker is not None:
        query = query.where(name >= marker[0])
    with db.read() as conn:
        rows = conn.execute(query.order_by(name).limit(size + 1)).all()
    parts = [
        XML_DECLARATION,
        f'<EnumerationResults ServiceEndpoint="{_attr(req.endpoint)}/">',
        el("Prefix", prefix) if prefix else "",
        el("Marker", req.query["marker"]) if marker else "",
        el("MaxResults", req.query["maxresults"]) if "maxresults" in req.query else "",
        "<Containers>",
    ]
    for row in rows[:size]:
        props = [
            el("Last-Modified", rfc1123(row.last_modified)),
            el("Etag", store.quoted(row.etag)),
        ]
        lease = leases.view(row, req.now)
        props += [el("LeaseStatus", lease.status), el("LeaseState", lease.state)]
        if lease.duration:
            props.append(el("LeaseDuration", lease.duration))
        if row.public_access:
            props.append(el("PublicAccess", row.public_access))
        props += [
            el("DefaultEncryptionScope", "$account-encryption-key"),
            el("DenyEncryptionScopeOverride", "false"),
            el("HasImmutabilityPolicy", "false"),
            el("HasLegalHold", "false"),
        ]
        meta = _metadata_xml(store.loads(row.metadata)) if "metadata" in includes else ""
        parts.append(
            f"<Container>{el('Name', row.name)}<Properties>{''.join(props)}</Properties>{meta}</Container>"
        )
    parts.append("</Containers>")
    parts.append(el("NextMarker", encode_marker(rows[size].name)) if len(rows) > size else "<NextMarker />")
    parts.append("</EnumerationResults>")
    return Reply(200, {}, "".join(parts).encode(), errors.XML_TYPE)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _blob_xml(row: Any, includes: frozenset[str], now: float) -> str:
    props = store.loads(row.properties)
    fields = [
        el("Creation-Time", rfc1123(row.created_at)),
        el("Last-Modified", rfc1123(row.last_modified)),
        el("Etag", row.etag),
        el("Content-Length", row.size),
        el("Content-Type", props.get("contentType") or "application/octet-stream"),
        el("Content-Encoding", props.get("contentEncoding") or ""),
        el("Content-Language", props.get("contentLanguage") or ""),
        el("Content-CRC64", ""),
        el("Content-MD5", props.get("contentMD5") or ""),
        el("Cache-Control", props.get("cacheControl") or ""),
        el("Content-Disposition", props.get("contentDisposition") or ""),
        el("BlobType", "BlockBlob"),
        el("AccessTier", props.get("accessTier", "Hot")),
    ]
    if "accessTier" not in props:
        fields.append(el("AccessTierInferred", "true"))
    lease = leases.view(row, now)
    fields += [el("LeaseStatus", lease.status), el("LeaseState", lease.state)]
    if lease.duration:
        fields.append(el("LeaseDuration", lease.duration))
    fields.append(el("ServerEncrypted", "true"))
    tags = store.loads(row.tags)
    if tags:
        fields.append(el("TagCount", len(tags)))
    parts = [f"<Blob>{el('Name', row.name)}"]
    if row.snapshot:
        parts.append(el("Snapshot", row.snapshot))
    parts.append(f"<Properties>{''.join(fields)}</Properties>")
    if "metadata" in includes:
        parts.append(_metadata_xml(store.loads(row.metadata)))
    if "tags" in includes and tags:
        tag_xml = "".join(f"<Tag>{el('Key', k)}{el('Value', v)}</Tag>" for k, v in tags.items())
        parts.append(f"<Tags><TagSet>{tag_xml}</TagSet></Tags>")
    parts.append("</Blob>")
    return "".join(parts)


def list_blobs(db: Database, req: BlobRequest) -> Reply:
    """List Blobs: each page is at most ``maxresults`` entries (blobs and prefixes together)."""
    assert req.container is not None
    prefix = _prefix(req)
    delimiter = req.query.get("delimiter", "")
    if len(delimiter) > 64:
        raise errors.invalid_query("delimiter", delimiter)
    size = _max_results(req)
    includes = _includes(req, _BLOB_INCLUDES)
    marker = decode_marker(req)
    b = blobs.c
    name_col = store.ordered(db, b.name)
    snap_col = store.ordered(db, b.snapshot)
    entries: list[str] = []
    next_marker: tuple[str, str] | None = None
    cursor: tuple[str, str] | None = marker
    seen_prefixes: set[str] = set()
    with db.read() as conn:
        while next_marker is None:
            query = sa.select(*blobs.columns).where(b.account == req.account, b.container == req.container)
            if prefix:
                query = query.where(b.name.startswith(prefix, autoescape=True))
            if "snapshots" not in includes:
                query = query.where(b.snapshot == "")
            if cursor is not None:
                query = query.where(
                    sa.or_(name_col > cursor[0], sa.and_(b.name == cursor[0], snap_col >= cursor[1]))
                )
            batch = conn.execute(query.order_by(name_col, snap_col).limit(size + 1)).all()
            if not batch:
                break
            restart: tuple[str, str] | None = None
            for row in batch:
                if len(entries) >= size:
                    next_marker = (row.name, row.snapshot)
                    break
                if delimiter:
                    cut = row.name.find(delimiter, len(prefix))
                    if cut >= 0:
                        blob_prefix = row.name[: cut + len(delimiter)]
                        if blob_prefix not in seen_prefixes:
                            seen_prefixes.add(blob_prefix)
                            entries.append(f"<BlobPrefix>{el('Name', blob_prefix)}</BlobPrefix>")
                        # Skip every name under this prefix in one step.
                        restart = (blob_prefix + "\U0010ffff", "")
                        break
                entries.append(_blob_xml(row, includes, req.now))
                cursor = (row.name, row.snapshot + "\x01")
            if restart is not None:
                cursor = restart
                continue
            if len(batch) <= size:
                break  # every remaining row was read
    parts = [
        XML_DECLARATION,
        f'<EnumerationResults ServiceEndpoint="{_attr(req.endpoint)}/" ContainerName="{_attr(req.container)}">',
        el("Prefix", prefix) if prefix else "",
        el("Marker", req.query["marker"]) if marker else "",
        el("MaxResults", req.query["maxresults"]) if "maxresults" in req.query else "",
        el("Delimiter", delimiter) if delimiter else "",
        "<Blobs>",
        *entries,
        "</Blobs>",
        el("NextMarker", encode_marker(*next_marker)) if next_marker else "<NextMarker />",
        "</EnumerationResults>",
    ]
    return Reply(200, {}, "".join(parts).encode(), errors.XML_TYPE)
