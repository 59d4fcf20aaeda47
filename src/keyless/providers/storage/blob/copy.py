"""Copies between blobs Keyless serves: Copy Blob, Copy Blob From URL (``x-ms-requires-sync``),
Put Blob From URL, Put Block From URL (REST docs of each).

The source (``x-ms-copy-source``, host-style or path-style URL, percent-encoded) must be a blob of
an account on this instance; Keyless never fetches other URLs on a caller's behalf for a copy
(400 ``CannotVerifyCopySource``; our choice: Azure would fetch it). The source is authorized on
its own, as Azure does: a SAS in its URL, or ``x-ms-copy-source-authorization: Bearer`` (RBAC read
on the source), or, within the same account, the request's own Shared Key / bearer / account SAS,
or a public container; and the source account's network rules apply to the caller's origin. A
refused source is ``CannotVerifyCopySource`` with the source's status (401/403/404).

Every copy completes before the answer (``x-ms-copy-status: success``): whole-blob copies are a
hard link of the source's immutable file (``files.link``), so even a large copy is O(1).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from keyless.network import allows
from keyless.providers.storage.accounts import AccountView, StorageAccounts
from keyless.providers.storage.blob import blobs as blob_ops
from keyless.providers.storage.blob import blocks, containers, errors, names, store
from keyless.providers.storage.blob.access import OPS, BlobAccess, Principal
from keyless.providers.storage.blob.files import BlobFiles, Written
from keyless.providers.storage.blob.request import MAX_PUT_BLOB, BlobRequest, Reply
from keyless.providers.storage.blob.xml import rfc1123
from keyless.store.db import Database

BLOB_SUFFIX = ".blob.core.windows.net"
_LOCAL = ("localhost", "127.0.0.1")
MAX_SYNC_COPY = 256 * 1024 * 1024  # Copy Blob From URL's limit (REST docs)
_MAX_URL = 8192


def cannot_verify(status: int, message: str) -> errors.StorageError:
    return errors.StorageError(
        status if status in (401, 403, 404, 409) else 400, "CannotVerifyCopySource", message
    )


@dataclass(frozen=True)
class Source:
    account: AccountView
    container: str
    blob: str
    snapshot: str
    url: str  # without its query (what x-ms-copy-source reports)


def parse_source(req: BlobRequest, accounts: StorageAccounts) -> tuple[Source, dict[str, str]]:
    """The source blob of ``x-ms-copy-source`` and its URL's query."""
    url = req.headers.get("x-ms-copy-source", "")
    if not url or len(url) > _MAX_URL:
        raise errors.invalid_header("x-ms-copy-source", url)
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise errors.invalid_header("x-ms-copy-source", url) from None
    if parts.scheme.lower() not in ("https", "http"):
        raise errors.invalid_header("x-ms-copy-source", url)
    path = parts.path
    if host.endswith(BLOB_SUFFIX):
        account_name = host[: -len(BLOB_SUFFIX)]
    elif host in _LOCAL:
        account_name, _, rest = path.lstrip("/").partition("/")
        path = "/" + rest
    else:
        raise cannot_verify(400, "Keyless copies only from blobs it serves.")
    container, _, blob = unquote(path.lstrip("/")).partition("/")
    if not container or not blob:
        raise errors.invalid_header("x-ms-copy-source", url)
    names.check_container(container)
    names.check_blob(blob)
    query = dict(parse_qsl(parts.query, keep_blank_values=True, max_num_fields=64))
    account = accounts.view(account_name) if 3 <= len(account_name) <= 24 else None
    if account is None:
        raise cannot_verify(404, "The specified resource does not exist.")
    snapshot = query.get("snapshot", "")
    return Source(account, container, blob, snapshot, url.split("?", 1)[0]), query


def authorize_source(
    db: Database,
    req: BlobRequest,
    accounts: StorageAccounts,
    access: BlobAccess,
    principal: Principal,
    target: AccountView,
) -> Source:
    """Parse and authorize the copy source (module docstring); CannotVerifyCopySource if refused."""
    source, query = parse_source(req, accounts)
    account = source.account
    read = OPS["read_blob"]
    try:
        if not allows(account.network_rules(), req.origin, tenant_id=account.tenant_id):
            raise errors.authorization_failure()
        header = req.headers.get("x-ms-copy-source-authorization")
        if "sig" in query:
            grant = access.verify_sas(
                query,
                account,
                source.container,
                source.blob,
                lambda: accounts.keys(account.name),
                lambda c, i: None,
                req.now,
            )
            access.authorize(Principal("sas", grant=grant), read, account, source.container)
        elif header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer":
                raise errors.invalid_header("x-ms-copy-source-authorization", header)
            caller = access.bearer(token.strip(), account)
            access.authorize(Principal("bearer", caller=caller), read, account, source.container)
        elif (account.name == target.name and principal.kind in ("sharedkey", "bearer")) or (
            account.name == target.name and principal.grant is not None and principal.grant.kind == "account"
        ):
            access.authorize(principal, read, account, source.container)
        else:
            row = containers.require(db, account.name, source.container)
            access.authorize(
                Principal("anonymous"),
                read,
                account,
                source.container,
                public_access=row.public_access,
                allows_public=account.allows_blob_public_access(),
            )
    except errors.StorageError as exc:
        raise cannot_verify(exc.status, exc.message) from None
    return source


def _source_row(db: Database, source: Source) -> Any:
    row = store.blob(db, source.account.name, source.container, source.blob, source.snapshot)
    if row is None:
        raise cannot_verify(404, "The specified blob does not exist.")
    if store.loads(row.properties).get("accessTier") == "Archive":
        raise errors.StorageError(409, "BlobArchived", "This operation is not permitted on an archived blob.")
    return row


async def copy_blob(
    db: Database, files: BlobFiles, req: BlobRequest, source: Source, *, from_url: bool
) -> Reply:
    """Copy Blob / Copy Blob From URL (202) and Put Blob From URL (``from_url``: 201)."""
    metadata = names.metadata_from_headers(req.header_pairs)
    tags = names.tags_from_header(req.headers["x-ms-tags"]) if "x-ms-tags" in req.headers else {}
    sync = (req.headers.get("x-ms-requires-sync") or "").lower() == "true"
    copy_id = str(uuid.uuid4())
    for _attempt in range(5):
        row = _source_row(db, source)
        if (sync or from_url) and row.size > (MAX_PUT_BLOB if from_url else MAX_SYNC_COPY):
            raise errors.StorageError(
                409, "CannotVerifyCopySource", "The source blob is too large for this copy."
            )
        try:
            linked = await files.link(req.account, row.file)
        except FileNotFoundError:
            continue  # the source was overwritten meanwhile: copy the new version
        props = dict(store.loads(row.properties))
        props.pop("copy", None)
        if from_url and (req.headers.get("x-ms-copy-source-blob-properties") or "true").lower() == "false":
            props = {}
        props.update(blob_ops.content_properties(req, standard_fallback=False))
        if not from_url:
            props["copy"] = {"id": copy_id, "source": source.url, "time": req.now}
        try:
            reply, doomed = await blob_ops.commit(
                db,
                req,
                Written(linked, int(row.size), b""),
                props,
                metadata or ({} if from_url else dict(store.loads(row.metadata))),
                tags,
                blocks=store.loads(row.blocks) if row.blocks else None,
            )
        except Exception:  # (not on cancellation: the commit may still land)
            await files.remove([linked])
            raise
        await files.remove(doomed)
        if from_url:
            return reply
        reply.status = 202
        reply.headers.update({"x-ms-copy-id": copy_id, "x-ms-copy-status": "success"})
        return reply
    raise errors.StorageError(
        409, "OperationNotAllowedInCurrentState", "The source blob is changing too fast to copy."
    )


async def put_block_from_url(db: Database, files: BlobFiles, req: BlobRequest, source: Source) -> Reply:
    """Put Block From URL: the block is ``x-ms-source-range`` of the source (all of it without)."""
    block_id, raw_id = blocks.block_id_param(req)
    blocks.precheck(db, req)
    for _attempt in range(5):
        row = _source_row(db, source)
        size = int(row.size)
        start, length = 0, size
        text = req.headers.get("x-ms-source-range")
        if text is not None:
            match = blob_ops.RANGE.fullmatch(text.strip())
            if match is None or not match.group(2):
                raise errors.invalid_header("x-ms-source-range", text)
            start, end = int(match.group(1)), int(match.group(2))
            if end < start or start >= size:
                raise errors.invalid_range(size)
            length = min(end, size - 1) - start + 1
        try:
            written = await files.concatenate(
                req.account, [(row.file, start, length)] if length and row.file else []
            )
        except FileNotFoundError:
            continue
        await blocks.stage(db, files, req, block_id, raw_id, written)
        return Reply(201, {"x-ms-request-server-encrypted": "true", "Last-Modified": rfc1123(req.now)})
    raise errors.StorageError(
        409, "OperationNotAllowedInCurrentState", "The source blob is changing too fast to copy."
    )
