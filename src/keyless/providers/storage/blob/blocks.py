"""Block blobs built from blocks: Put Block, Put Block List, Get Block List (REST docs of each).

A block is its own file until a Put Block List names it. The commit streams the named blocks (and
reused committed blocks, read from the current version's file) into a new file, fsyncs it, then in
ONE transaction points the blob at it and drops every uncommitted block of the blob: a crash
before that commit leaves the previous blob intact; after it, the new one (storage issue, "a Put
Block List commits atomically").

Limits (REST docs): 100,000 uncommitted and 50,000 committed blocks per blob; block ids base64 of
at most 64 bytes and of one length per blob (else 400 ``InvalidBlobOrBlock``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import Any

import sqlalchemy as sa

from keyless.providers.storage.blob import blobs as blob_ops
from keyless.providers.storage.blob import errors, leases, names, store
from keyless.providers.storage.blob.files import BlobFiles, Written
from keyless.providers.storage.blob.request import MAX_BLOCK, BlobRequest, Reply, check_conditions
from keyless.providers.storage.blob.xml import XML_DECLARATION, el, parse, rfc1123, text
from keyless.store.db import Database
from keyless.store.tables import blob_blocks
from keyless.web import BodyTooLarge, read_body

K = blob_blocks.c
MAX_UNCOMMITTED = 100_000
MAX_COMMITTED = 50_000
# A block list of 50,000 ids of 64 bytes (88 base64 characters) in <Uncommitted> tags, with room.
MAX_BLOCK_LIST_BODY = 8 * 1024 * 1024


def _invalid_blob_or_block() -> errors.StorageError:
    return errors.StorageError(400, "InvalidBlobOrBlock", "The specified blob or block content is invalid.")


def block_id_param(req: BlobRequest) -> tuple[str, bytes]:
    """The ``blockid`` query parameter and its decoded bytes; 400 if missing or invalid."""
    block_id = req.query.get("blockid")
    if block_id is None:
        raise errors.StorageError(
            400,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified.",
            details=[("QueryParameterName", "blockid")],
        )
    return block_id, names.check_block_id(block_id)


def precheck(db: Database, req: BlobRequest) -> None:
    """Before any bytes move: the container exists and the blob's lease lets this write in."""
    assert req.container is not None and req.blob is not None
    current = store.blob(db, req.account, req.container, req.blob)
    if current is None:
        blob_ops.require_container(db, req.account, req.container)
    leases.check(current, req.lease_id(), req.now, "blob", write=True)


async def put_block(db: Database, files: BlobFiles, req: BlobRequest) -> Reply:
    block_id, raw_id = block_id_param(req)
    length = req.content_length(required=True, limit=MAX_BLOCK)
    given_md5 = blob_ops.md5_header(req, "content-md5")
    given_crc = blob_ops.crc64_header(req)
    precheck(db, req)
    written = await files.receive(req.receive, req.account, length)
    try:
        if given_md5 is not None and given_md5 != written.md5:
            raise errors.md5_mismatch(blob_ops.b64(given_md5), blob_ops.b64(written.md5))
        crc_headers = blob_ops.check_crc64(given_crc, written.crc64)
    except errors.StorageError:
        await files.remove([written.file])
        raise
    await stage(db, files, req, block_id, raw_id, written)
    headers = {"Content-MD5": blob_ops.b64(written.md5), "x-ms-request-server-encrypted": "true"}
    return Reply(201, {**headers, **crc_headers})


async def stage(
    db: Database, files: BlobFiles, req: BlobRequest, block_id: str, raw_id: bytes, written: Written
) -> None:
    """Record a durable block file as the blob's uncommitted block ``block_id`` (replacing one of
    the same id); the file is removed again if that fails."""
    assert req.container is not None and req.blob is not None
    # A block of no bytes still needs a name of its own: an empty file.
    block_file: str = (
        written.file if written.file else await asyncio.to_thread(empty_file, files, req.account)
    )
    try:
        replaced = await store.in_writer(
            db, functools.partial(_stage_row, req, block_id, raw_id, block_file, written.size)
        )
    except Exception:  # (not on cancellation: the commit may still land)
        await files.remove([block_file])
        raise
    await files.remove(replaced)


def _stage_row(
    req: BlobRequest, block_id: str, raw_id: bytes, block_file: str, size: int, conn: sa.Connection
) -> list[str]:
    """The block's row, on ``conn`` (one write transaction); the file names it replaced."""
    assert req.container is not None and req.blob is not None
    replaced: list[str] = []
    if store.container_for_update(conn, req.account, req.container) is None:
        raise errors.container_not_found()
    where = (K.account == req.account, K.container == req.container, K.blob == req.blob)
    other = conn.execute(sa.select(K.block_id, K.file).where(*where, K.block_id != block_id).limit(1)).first()
    if other is not None and len(names.check_block_id(other.block_id)) != len(raw_id):
        raise _invalid_blob_or_block()
    old = conn.execute(sa.select(K.file).where(*where, K.block_id == block_id)).first()
    if old is not None:
        replaced.append(old.file)
        conn.execute(sa.delete(blob_blocks).where(*where, K.block_id == block_id))
    elif store.count_blocks(conn, req.account, req.container, req.blob) >= MAX_UNCOMMITTED:
        raise errors.block_count_exceeded()
    conn.execute(
        sa.insert(blob_blocks).values(
            account=req.account,
            container=req.container,
            blob=req.blob,
            block_id=block_id,
            file=block_file,
            size=size,
            created_at=req.now,
        )
    )
    return replaced


def empty_file(files: BlobFiles, account: str) -> str:
    """A durable empty file (for a block of zero bytes)."""
    rel, path, handle = files._open_new(account)
    files._finish(path, handle)
    return rel


def _parse_block_list(raw: bytes) -> list[tuple[str, str]]:
    root = parse(raw)
    if root.tag != "BlockList":
        raise errors.invalid_xml()
    entries: list[tuple[str, str]] = []
    for item in root:
        if item.tag not in ("Latest", "Committed", "Uncommitted"):
            raise errors.invalid_xml()
        block_id = text(item).strip()
        names.check_block_id(block_id)
        entries.append((item.tag, block_id))
        if len(entries) > MAX_COMMITTED:
            raise errors.block_list_too_long()
    return entries


async def put_block_list(db: Database, files: BlobFiles, req: BlobRequest) -> Reply:
    assert req.container is not None and req.blob is not None
    req.content_length(required=False, limit=MAX_BLOCK_LIST_BODY)
    given_md5 = blob_ops.md5_header(req, "content-md5")
    try:
        raw = await read_body(req.receive, MAX_BLOCK_LIST_BODY)
    except BodyTooLarge:
        raise errors.body_too_large(MAX_BLOCK_LIST_BODY) from None
    if given_md5 is not None:
        computed = hashlib.md5(raw).digest()  # noqa: S324
        if computed != given_md5:
            raise errors.md5_mismatch(blob_ops.b64(given_md5), blob_ops.b64(computed))
    # Up to 8 MiB of XML: parsed off the event loop.
    entries = await asyncio.to_thread(_parse_block_list, raw)
    metadata = names.metadata_from_headers(req.header_pairs)
    tags = names.tags_from_header(req.headers["x-ms-tags"]) if "x-ms-tags" in req.headers else {}
    props = blob_ops.content_properties(req, standard_fallback=False)
    stored_md5 = blob_ops.md5_header(req, "x-ms-blob-content-md5")
    if stored_md5 is not None:
        props["contentMD5"] = blob_ops.b64(stored_md5)
    tier = req.headers.get("x-ms-access-tier")
    if tier is not None:
        if tier not in blob_ops.TIERS:
            raise errors.invalid_header("x-ms-access-tier", tier)
        props["accessTier"] = tier

    current = store.blob(db, req.account, req.container, req.blob)
    if current is None:
        blob_ops.require_container(db, req.account, req.container)
    check_conditions(req, current, read=False)
    leases.check(current, req.lease_id(), req.now, "blob", write=True)
    uncommitted = {r.block_id: r for r in store.uncommitted(db, req.account, req.container, req.blob)}
    committed: dict[str, tuple[int, int]] = {}
    if current is not None and current.blocks:
        offset = 0
        for block_id, size in store.loads(current.blocks):
            committed.setdefault(block_id, (offset, int(size)))
            offset += int(size)
    parts: list[tuple[str, int, int]] = []
    new_blocks: list[list[Any]] = []
    used: set[str] = set()
    uses_committed = False
    for kind, block_id in entries:
        if kind != "Committed" and block_id in uncommitted:
            row = uncommitted[block_id]
            parts.append((row.file, 0, int(row.size)))
            new_blocks.append([block_id, int(row.size)])
            used.add(block_id)
        elif kind != "Uncommitted" and block_id in committed:
            offset, size = committed[block_id]
            assert current is not None
            if size:
                parts.append((current.file, offset, size))
            new_blocks.append([block_id, size])
            uses_committed = True
        else:
            raise errors.invalid_block_list()
    lengths = {len(names.check_block_id(b)) for b, _ in new_blocks}
    if len(lengths) > 1:
        raise _invalid_blob_or_block()
    try:
        written = await files.concatenate(req.account, [p for p in parts if p[2] > 0])
    except FileNotFoundError:
        raise errors.invalid_block_list() from None  # another commit consumed them meanwhile
    try:
        if uses_committed:
            assert current is not None
            # The reused bytes came from this version: the commit must replace exactly it.
            req.headers.setdefault("if-match", store.quoted(current.etag))
        reply, doomed = await blob_ops.commit(
            db, req, written, props, metadata, tags, blocks=new_blocks, used_blocks=sorted(used)
        )
    except Exception:  # (not on cancellation: the commit may still land; the sweeper cleans up)
        await files.remove([written.file])
        raise
    await files.remove(doomed)
    return reply


def get_block_list(db: Database, req: BlobRequest) -> Reply:
    assert req.container is not None and req.blob is not None
    which = req.query.get("blocklisttype", "committed").lower()
    if which not in ("committed", "uncommitted", "all"):
        raise errors.invalid_query("blocklisttype", req.query.get("blocklisttype", ""))
    snapshot = blob_ops.snapshot_param(req)
    row = store.blob(db, req.account, req.container, req.blob, snapshot)
    pending = [] if snapshot else store.uncommitted(db, req.account, req.container, req.blob)
    if row is None and not pending:
        blob_ops.require_blob(db, req, snapshot)
    if row is not None:
        leases.check(row, req.lease_id(), req.now, "blob", write=False)
    parts = [XML_DECLARATION, "<BlockList>"]
    if which in ("committed", "all"):
        parts.append("<CommittedBlocks>")
        for block_id, size in store.loads(row.blocks) if row is not None and row.blocks else []:
            parts.append(f"<Block>{el('Name', block_id)}{el('Size', size)}</Block>")
        parts.append("</CommittedBlocks>")
    if which in ("uncommitted", "all"):
        parts.append("<UncommittedBlocks>")
        for block in sorted(pending, key=lambda b: b.created_at):
            parts.append(f"<Block>{el('Name', block.block_id)}{el('Size', block.size)}</Block>")
        parts.append("</UncommittedBlocks>")
    parts.append("</BlockList>")
    headers: dict[str, str] = {}
    if row is not None:
        headers = {
            "ETag": store.quoted(row.etag),
            "Last-Modified": rfc1123(row.last_modified),
            "x-ms-blob-content-length": str(row.size),
        }
    return Reply(200, headers, "".join(parts).encode(), errors.XML_TYPE)
