"""Blob operations: Put Blob, Get Blob (ranges), Get Blob Properties, Delete Blob (+ snapshots),
Set Blob Metadata / Properties, Snapshot Blob, Lease Blob, Get / Set Blob Tags, Set Blob Tier.

Wire facts: storage.md §2 (download: ``Content-Range`` on every ranged answer, clamped ranges, 416
with ``bytes */size`` past the end or on an empty blob; HEAD: one ``Content-Length``); REST docs
of each operation for headers. Put Blob streams the body to a new file (``files.py``), checks
Content-Length and ``Content-MD5``, then commits the row in one transaction that re-checks the
conditions and the lease; the old version's file goes after the commit.

Choices where Azure is silent: ``x-ms-range-get-content-md5`` on a range over 4 MiB is 400
``OutOfRangeInput`` (REST docs say the service refuses it); a Put Blob discards the blob's
uncommitted blocks (as Put Block List does).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

import sqlalchemy as sa

from keyless.providers.storage.blob import errors, leases, names, store
from keyless.providers.storage.blob.files import BlobFiles, Written
from keyless.providers.storage.blob.request import MAX_PUT_BLOB, BlobRequest, Reply, check_conditions
from keyless.providers.storage.blob.xml import XML_DECLARATION, el, iso7, parse, rfc1123, text
from keyless.store.db import Database
from keyless.store.tables import blob_blocks, blobs
from keyless.web import read_body

B = blobs.c
RANGE = re.compile(r"bytes=(\d{1,19})-(\d{0,19})")
MAX_RANGE_MD5 = 4 * 1024 * 1024
MAX_TAGS_BODY = 16 * 1024
TIERS = ("Hot", "Cool", "Cold", "Archive")
# (header that sets it on Put Blob / Set Properties, fallback standard header, property key)
CONTENT_HEADERS = (
    ("x-ms-blob-content-type", "content-type", "contentType"),
    ("x-ms-blob-content-encoding", "content-encoding", "contentEncoding"),
    ("x-ms-blob-content-language", "content-language", "contentLanguage"),
    ("x-ms-blob-content-disposition", None, "contentDisposition"),
    ("x-ms-blob-cache-control", "cache-control", "cacheControl"),
)
# Response header of each property.
_RESPONSE_HEADERS = {
    "contentType": "Content-Type",
    "contentEncoding": "Content-Encoding",
    "contentLanguage": "Content-Language",
    "contentDisposition": "Content-Disposition",
    "cacheControl": "Cache-Control",
}


def crc64_header(req: BlobRequest) -> bytes | None:
    """``x-ms-content-crc64`` as its 8 bytes; 400 ``InvalidHeaderValue`` if it is not 64 bits in Base64."""
    value = req.headers.get("x-ms-content-crc64")
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 8:
        raise errors.invalid_header("x-ms-content-crc64", value[:64])
    return raw


def check_crc64(given: bytes | None, written_crc: int) -> dict[str, str]:
    """Compare a given CRC64 with the body's (little-endian, as the SDK encodes it); the response
    header to echo, or 400 ``Crc64Mismatch``."""
    if given is None:
        return {}
    computed = written_crc.to_bytes(8, "little")
    if given != computed:
        raise errors.crc64_mismatch(b64(given), b64(computed))
    return {"x-ms-content-crc64": b64(computed)}


def md5_header(req: BlobRequest, name: str) -> bytes | None:
    """A base64 MD5 header as 16 bytes; 400 ``InvalidMd5`` if it is not one."""
    value = req.headers.get(name)
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise errors.StorageError(
            400,
            "InvalidMd5",
            "The MD5 value specified in the request is invalid. The MD5 value must be 128 bits and Base64-encoded.",
        )
    return raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def content_properties(req: BlobRequest, *, standard_fallback: bool) -> dict[str, Any]:
    """The content properties a Put Blob / Put Block List / Set Properties request sets."""
    props: dict[str, Any] = {}
    for header, fallback, key in CONTENT_HEADERS:
        value = req.headers.get(header)
        if value is None and standard_fallback and fallback is not None:
            value = req.headers.get(fallback)
        if value is not None:
            if len(value) > 1024:
                raise errors.invalid_header(header, value)
            props[key] = value
    return props


def require_container(db: Database, account: str, container: str) -> None:
    if store.container(db, account, container) is None:
        raise errors.container_not_found()


def require_blob(db: Database, req: BlobRequest, snapshot: str = "") -> Any:
    assert req.container is not None and req.blob is not None
    row = store.blob(db, req.account, req.container, req.blob, snapshot)
    if row is None:
        if store.container(db, req.account, req.container) is None:
            raise errors.container_not_found()
        raise errors.blob_not_found()
    return row


def snapshot_param(req: BlobRequest) -> str:
    value = req.query.get("snapshot", "")
    if value and (
        len(value) > 32 or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z", value) is None
    ):
        raise errors.invalid_query("snapshot", value)
    return value


def blob_headers(row: Any, now: float) -> dict[str, str]:
    """The properties headers of Get Blob and Get Blob Properties (without Content-Length)."""
    props = store.loads(row.properties)
    headers = {
        "ETag": store.quoted(row.etag),
        "Last-Modified": rfc1123(row.last_modified),
        "x-ms-creation-time": rfc1123(row.created_at),
        "x-ms-blob-type": "BlockBlob",
        "Accept-Ranges": "bytes",
        "x-ms-server-encrypted": "true",
        "Content-Type": props.get("contentType") or "application/octet-stream",
    }
    for key, header in _RESPONSE_HEADERS.items():
        if key != "contentType" and props.get(key):
            headers[header] = props[key]
    if props.get("contentMD5"):
        headers["Content-MD5"] = props["contentMD5"]
    headers.update(leases.headers(row, now))
    for key, value in store.loads(row.metadata).items():
        headers[f"x-ms-meta-{key}"] = value
    tags = store.loads(row.tags)
    if tags:
        headers["x-ms-tag-count"] = str(len(tags))
    if props.get("copy"):
        copy = props["copy"]
        headers.update(
            {
                "x-ms-copy-id": copy["id"],
                "x-ms-copy-source": copy["source"],
                "x-ms-copy-status": "success",
                "x-ms-copy-progress": f"{row.size}/{row.size}",
                "x-ms-copy-completion-time": rfc1123(copy["time"]),
            }
        )
    if row.snapshot:
        headers["x-ms-snapshot"] = row.snapshot
    return headers


async def put_blob(db: Database, files: BlobFiles, req: BlobRequest) -> Reply:
    """Put Blob (block blobs only). 201 with ETag, Last-Modified, Content-MD5."""
    assert req.container is not None and req.blob is not None
    blob_type = req.headers.get("x-ms-blob-type")
    if blob_type is None:
        raise errors.missing_header("x-ms-blob-type")
    if blob_type != "BlockBlob":
        raise errors.invalid_header("x-ms-blob-type", blob_type)
    length = req.content_length(required=True, limit=MAX_PUT_BLOB)
    given_md5 = md5_header(req, "content-md5")
    given_crc = crc64_header(req)
    stored_md5 = md5_header(req, "x-ms-blob-content-md5")
    metadata = names.metadata_from_headers(req.header_pairs)
    tags = names.tags_from_header(req.headers["x-ms-tags"]) if "x-ms-tags" in req.headers else {}
    props = content_properties(req, standard_fallback=True)
    tier = req.headers.get("x-ms-access-tier")
    if tier is not None:
        if tier not in TIERS:
            raise errors.invalid_header("x-ms-access-tier", tier)
        props["accessTier"] = tier
    # Everything checkable before the body: the container, the conditions and the lease.
    current = store.blob(db, req.account, req.container, req.blob)
    if current is None:
        require_container(db, req.account, req.container)
    check_conditions(req, current, read=False)
    leases.check(current, req.lease_id(), req.now, "blob", write=True)
    written = await files.receive(req.receive, req.account, length)
    try:
        if given_md5 is not None and given_md5 != written.md5:
            raise errors.md5_mismatch(b64(given_md5), b64(written.md5))
        crc_headers = check_crc64(given_crc, written.crc64)
        props["contentMD5"] = b64(stored_md5 or written.md5)
        reply, doomed = await commit(db, req, written, props, metadata, tags, blocks=None)
        reply.headers.update(crc_headers)
    except Exception:  # (not on cancellation: the commit may still land; the sweeper cleans up)
        await files.remove([written.file])
        raise
    await files.remove(doomed)
    reply.headers["Content-MD5"] = b64(written.md5)
    return reply


async def commit(
    db: Database,
    req: BlobRequest,
    written: Written,
    props: dict[str, Any],
    metadata: dict[str, str],
    tags: dict[str, str],
    *,
    blocks: list[list[Any]] | None,
    used_blocks: list[str] | None = None,
) -> tuple[Reply, list[str]]:
    """``commit_rows`` in a write transaction off the event loop (``store.in_writer``)."""
    return await store.in_writer(
        db,
        functools.partial(
            commit_rows, req, written, props, metadata, tags, blocks=blocks, used_blocks=used_blocks
        ),
    )


def commit_rows(
    req: BlobRequest,
    written: Written,
    props: dict[str, Any],
    metadata: dict[str, str],
    tags: dict[str, str],
    conn: sa.Connection,
    *,
    blocks: list[list[Any]] | None,
    used_blocks: list[str] | None = None,
) -> tuple[Reply, list[str]]:
    """Point the blob's row at a new durable file in one transaction (re-checking conditions and
    lease) on ``conn``, dropping the blob's uncommitted blocks. Returns the reply and the files to remove:
    the old version's and the dropped blocks'. ``used_blocks``: block ids that must still be
    uncommitted (a Put Block List); 400 ``InvalidBlockList`` if another commit took them."""
    assert req.container is not None and req.blob is not None
    etag = store.new_etag()
    values = {
        "size": written.size,
        "etag": etag,
        "last_modified": req.now,
        "file": written.file,
        "properties": store.dumps(props),
        "metadata": store.dumps(metadata),
        "tags": store.dumps(tags),
        "blocks": store.dumps(blocks) if blocks is not None else None,
    }
    key = {"account": req.account, "container": req.container, "name": req.blob, "snapshot": ""}
    if store.container_for_update(conn, req.account, req.container) is None:
        raise errors.container_not_found()
    row = store.blob_for_update(conn, req.account, req.container, req.blob)
    check_conditions(req, row, read=False)
    leases.check(row, req.lease_id(), req.now, "blob", write=True)
    block_rows = conn.execute(
        sa.select(blob_blocks.c.block_id, blob_blocks.c.file).where(
            blob_blocks.c.account == req.account,
            blob_blocks.c.container == req.container,
            blob_blocks.c.blob == req.blob,
        )
    ).all()
    if used_blocks is not None and not set(used_blocks) <= {r.block_id for r in block_rows}:
        raise errors.invalid_block_list()
    conn.execute(
        sa.delete(blob_blocks).where(
            blob_blocks.c.account == req.account,
            blob_blocks.c.container == req.container,
            blob_blocks.c.blob == req.blob,
        )
    )
    if row is None:
        conn.execute(sa.insert(blobs).values(**key, created_at=req.now, **values))
    else:
        conn.execute(
            sa.update(blobs)
            .where(
                B.account == req.account,
                B.container == req.container,
                B.name == req.blob,
                B.snapshot == "",
            )
            .values(**values)
        )
    doomed = [r.file for r in block_rows]
    if row is not None and row.file:
        doomed.append(row.file)
    headers = {
        "ETag": store.quoted(etag),
        "Last-Modified": rfc1123(req.now),
        "x-ms-request-server-encrypted": "true",
    }
    return Reply(201, headers), doomed


def parse_range(req: BlobRequest) -> tuple[int, int | None] | None:
    """(start, end or None) of ``x-ms-range`` (else ``Range``); None without one. A malformed
    ``x-ms-range`` is 400; a malformed ``Range`` is ignored, as HTTP says."""
    for name in ("x-ms-range", "range"):
        value = req.headers.get(name)
        if value is None:
            continue
        match = RANGE.fullmatch(value.strip())
        if match is None:
            if name == "x-ms-range":
                raise errors.invalid_header("x-ms-range", value)
            continue
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else None
        if end is not None and end < start:
            if name == "x-ms-range":
                raise errors.invalid_header("x-ms-range", value)
            continue
        return start, end
    return None


async def get_blob(db: Database, files: BlobFiles, req: BlobRequest, *, head: bool) -> Reply:
    row = require_blob(db, req, snapshot_param(req))
    check_conditions(req, row, read=True)
    leases.check(row, req.lease_id(), req.now, "blob", write=False)
    props = store.loads(row.properties)
    headers = blob_headers(row, req.now)
    if head:
        headers["x-ms-access-tier"] = props.get("accessTier", "Hot")
        if "accessTier" not in props:
            headers["x-ms-access-tier-inferred"] = "true"
        return Reply(200, headers, stream=(None, 0, row.size))
    if props.get("accessTier") == "Archive":
        raise errors.StorageError(409, "BlobArchived", "This operation is not permitted on an archived blob.")
    wanted = parse_range(req)
    size = int(row.size)
    if wanted is None:
        return Reply(200, headers, stream=(row.file, 0, size))
    start, end = wanted
    if start >= size:
        raise errors.invalid_range(size)
    last = size - 1 if end is None else min(end, size - 1)
    length = last - start + 1
    headers["Content-Range"] = f"bytes {start}-{last}/{size}"
    whole_md5 = headers.pop("Content-MD5", None)
    if whole_md5:
        headers["x-ms-blob-content-md5"] = whole_md5
    if (req.headers.get("x-ms-range-get-content-md5") or "").lower() == "true":
        if length > MAX_RANGE_MD5:
            raise errors.out_of_range("x-ms-range-get-content-md5", "true")
        headers["Content-MD5"] = b64(await files.md5_of(row.file, start, length))
    return Reply(206, headers, stream=(row.file, start, length))


async def delete_blob(db: Database, files: BlobFiles, req: BlobRequest) -> Reply:
    assert req.container is not None and req.blob is not None
    snapshot = snapshot_param(req)
    option = req.headers.get("x-ms-delete-snapshots")
    if option is not None and (option not in ("include", "only") or snapshot):
        raise errors.invalid_header("x-ms-delete-snapshots", option)
    with db.write() as conn:
        row = store.blob_for_update(conn, req.account, req.container, req.blob, snapshot)
        if row is None:
            if store.container_for_update(conn, req.account, req.container) is None:
                raise errors.container_not_found()
            raise errors.blob_not_found()
        check_conditions(req, row, read=False)
        if snapshot:
            conn.execute(
                sa.delete(blobs).where(
                    B.account == req.account,
                    B.container == req.container,
                    B.name == req.blob,
                    B.snapshot == snapshot,
                )
            )
            doomed = [row.file] if row.file else []
        else:
            leases.check(row, req.lease_id(), req.now, "blob", write=option != "only")
            has_snapshots = conn.execute(
                sa.select(B.snapshot)
                .where(
                    B.account == req.account,
                    B.container == req.container,
                    B.name == req.blob,
                    B.snapshot != "",
                )
                .limit(1)
            ).first()
            if has_snapshots is not None and option is None:
                raise errors.snapshots_present()
            doomed = store.delete_blob_rows(conn, req.account, req.container, req.blob, option or "")
    await files.remove(doomed)
    return Reply(202, {"x-ms-delete-type-permanent": "true"})


def _update(db: Database, req: BlobRequest, change: Any, *, new_etag: bool = True) -> tuple[Any, str]:
    """Run ``change(row) -> column values`` on the base blob in one transaction (conditions and
    lease checked). Returns the old row and the ETag now in force."""
    assert req.container is not None and req.blob is not None
    with db.write() as conn:
        row = store.blob_for_update(conn, req.account, req.container, req.blob)
        if row is None:
            if store.container_for_update(conn, req.account, req.container) is None:
                raise errors.container_not_found()
            raise errors.blob_not_found()
        check_conditions(req, row, read=False)
        values = change(row)
        etag = row.etag
        if new_etag:
            etag = store.new_etag()
            values.update(etag=etag, last_modified=req.now)
        if values:
            conn.execute(
                sa.update(blobs)
                .where(
                    B.account == req.account,
                    B.container == req.container,
                    B.name == req.blob,
                    B.snapshot == "",
                )
                .values(**values)
            )
    return row, etag


def set_metadata(db: Database, req: BlobRequest) -> Reply:
    metadata = names.metadata_from_headers(req.header_pairs)

    def change(row: Any) -> dict[str, Any]:
        leases.check(row, req.lease_id(), req.now, "blob", write=True)
        return {"metadata": store.dumps(metadata)}

    _, etag = _update(db, req, change)
    return Reply(
        200,
        {
            "ETag": store.quoted(etag),
            "Last-Modified": rfc1123(req.now),
            "x-ms-request-server-encrypted": "true",
        },
    )


def set_properties(db: Database, req: BlobRequest) -> Reply:
    new = content_properties(req, standard_fallback=False)
    md5 = md5_header(req, "x-ms-blob-content-md5")

    def change(row: Any) -> dict[str, Any]:
        leases.check(row, req.lease_id(), req.now, "blob", write=True)
        props = {k: v for k, v in store.loads(row.properties).items() if k in ("accessTier", "copy")}
        props.update(new)
        if md5 is not None:
            props["contentMD5"] = b64(md5)
        return {"properties": store.dumps(props)}

    _, etag = _update(db, req, change)
    return Reply(200, {"ETag": store.quoted(etag), "Last-Modified": rfc1123(req.now)})


def set_tier(db: Database, req: BlobRequest) -> Reply:
    tier = req.headers.get("x-ms-access-tier")
    if tier is None:
        raise errors.missing_header("x-ms-access-tier")
    if tier not in TIERS:
        raise errors.invalid_header("x-ms-access-tier", tier)

    def change(row: Any) -> dict[str, Any]:
        leases.check(row, req.lease_id(), req.now, "blob", write=False)
        props = store.loads(row.properties)
        props["accessTier"] = tier
        return {"properties": store.dumps(props)}

    _update(db, req, change, new_etag=False)
    return Reply(200)


def lease(db: Database, req: BlobRequest) -> Reply:
    out: dict[str, Any] = {}

    def change(row: Any) -> dict[str, Any]:
        status, updates, headers = leases.apply(row, req.headers, req.now, "blob")
        out.update(status=status, headers=headers)
        return updates

    row, etag = _update(db, req, change, new_etag=False)
    headers = dict(out["headers"])
    headers.update({"ETag": store.quoted(etag), "Last-Modified": rfc1123(row.last_modified)})
    return Reply(int(out["status"]), headers)


async def snapshot(db: Database, files: BlobFiles, req: BlobRequest) -> Reply:
    assert req.container is not None and req.blob is not None
    metadata = names.metadata_from_headers(req.header_pairs)
    for _attempt in range(5):
        row = require_blob(db, req)
        check_conditions(req, row, read=False)
        leases.check(row, req.lease_id(), req.now, "blob", write=False)
        try:
            linked = await files.link(req.account, row.file)
        except FileNotFoundError:
            continue  # overwritten meanwhile: take the new version
        stamp = iso7(req.now)
        try:
            with db.write() as conn:
                current = store.blob_for_update(conn, req.account, req.container, req.blob)
                if current is None or current.etag != row.etag:
                    raise FileNotFoundError  # changed while linking: try again
                conn.execute(
                    sa.insert(blobs).values(
                        account=req.account,
                        container=req.container,
                        name=req.blob,
                        snapshot=stamp,
                        size=row.size,
                        etag=row.etag,
                        created_at=row.created_at,
                        last_modified=row.last_modified,
                        file=linked,
                        properties=row.properties,
                        metadata=store.dumps(metadata) if metadata else row.metadata,
                        tags=row.tags,
                        blocks=row.blocks,
                    )
                )
        except FileNotFoundError:
            await files.remove([linked])
            continue
        except Exception:  # (not on cancellation: the commit may still land)
            await files.remove([linked])
            raise
        return Reply(
            201,
            {
                "x-ms-snapshot": stamp,
                "ETag": store.quoted(row.etag),
                "Last-Modified": rfc1123(row.last_modified),
            },
        )
    raise errors.StorageError(
        409, "OperationNotAllowedInCurrentState", "The blob is changing too fast to snapshot."
    )


def get_tags(db: Database, req: BlobRequest) -> Reply:
    row = require_blob(db, req, snapshot_param(req))
    check_conditions(req, row, read=True)
    parts = [XML_DECLARATION, "<Tags><TagSet>"]
    for key, value in store.loads(row.tags).items():
        parts.append(f"<Tag>{el('Key', key)}{el('Value', value)}</Tag>")
    parts.append("</TagSet></Tags>")
    return Reply(200, {}, "".join(parts).encode(), errors.XML_TYPE)


async def set_tags(db: Database, req: BlobRequest) -> Reply:
    req.content_length(required=False, limit=MAX_TAGS_BODY)
    try:
        raw = await read_body(req.receive, MAX_TAGS_BODY)
    except Exception:
        raise errors.body_too_large(MAX_TAGS_BODY) from None
    tags: dict[str, str] = {}
    if raw.strip():
        root = parse(raw)
        tag_set = root.find("TagSet")
        if root.tag != "Tags" or tag_set is None:
            raise errors.invalid_xml()
        for tag in tag_set.findall("Tag"):
            key = text(tag.find("Key"))
            if key in tags:
                raise errors.invalid_tag()
            tags[key] = text(tag.find("Value"))
            if len(tags) > names.MAX_TAGS:
                raise errors.tags_too_large()
    names.check_tags(tags)

    def change(row: Any) -> dict[str, Any]:
        leases.check(row, req.lease_id(), req.now, "blob", write=False)
        return {"tags": store.dumps(tags)}

    _update(db, req, change, new_etag=False)
    return Reply(204)
