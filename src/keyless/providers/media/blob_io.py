"""Blob data-plane operations Media Services makes on its assets' containers: listing, ranged
reads, block uploads. Each is an ordinary Blob REST call made by ``MediaStorage.request`` as the
account's storage authentication (a trusted service with the identity's token, or Shared Key), so
the storage account's firewall and RBAC decide every one of them.

Bodies are bounded: reads go in ranges of at most ``CHUNK`` bytes (``x-ms-range``), uploads in
blocks of at most ``CHUNK`` (Put Block, then Put Block List), so a whole media file is never held
in memory (the in-process caller reads each response whole). Wire forms: storage.md (Put Block,
Put Block List, List Blobs, Get Blob with ``x-ms-range``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
from defusedxml.ElementTree import fromstring

from keyless.arm import errors
from keyless.providers.media.storage_access import MediaStorage, StorageAuth

CHUNK = 4 * 1024 * 1024
# The most blobs a job or a player looks at in one asset (Azure's assets hold a handful of files).
MAX_BLOBS = 1000
_BLOB_TYPE = {"x-ms-blob-type": "BlockBlob"}


class BlobAccessError(Exception):
    """A blob call the storage account refused or that could not be made: ``status`` is the HTTP
    status (0 when no answer), ``code`` the ``x-ms-error-code`` or a short reason."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{code} (HTTP {status})" if status else code)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class BlobItem:
    name: str
    size: int
    content_type: str


async def _call(
    storage: MediaStorage,
    auth: StorageAuth,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    try:
        response = await storage.request(auth, method, path, query, body, headers)
    except errors.ArmError as exc:  # storage gone, identity gone, transport failure
        raise BlobAccessError(0, exc.message) from exc
    return response.status_code, dict(response.headers), response.content


def _refused(status: int, headers: dict[str, str]) -> BlobAccessError:
    return BlobAccessError(status, headers.get("x-ms-error-code") or str(status))


async def list_blobs(storage: MediaStorage, auth: StorageAuth, container: str) -> list[BlobItem]:
    """The blobs of ``container`` by name (at most ``MAX_BLOBS``). BlobAccessError when refused."""
    status, headers, body = await _call(
        storage,
        auth,
        "GET",
        f"/{container}",
        {"restype": "container", "comp": "list", "maxresults": str(MAX_BLOBS)},
    )
    if status != 200:
        raise _refused(status, headers)
    root = fromstring(body)
    items = []
    for blob in root.iter("Blob"):
        name = blob.findtext("Name") or ""
        size = int(blob.findtext("Properties/Content-Length") or "0")
        content_type = blob.findtext("Properties/Content-Type") or "application/octet-stream"
        items.append(BlobItem(name, size, content_type))
    return items


async def blob_item(storage: MediaStorage, auth: StorageAuth, container: str, name: str) -> BlobItem:
    """One blob's size and type (Get Blob Properties). BlobAccessError when missing or refused."""
    status, headers, _ = await _call(storage, auth, "HEAD", f"/{container}/{name}", {})
    if status != 200:
        raise _refused(status, headers)
    return BlobItem(
        name,
        int(headers.get("content-length", "0")),
        headers.get("content-type", "application/octet-stream"),
    )


async def read_range(
    storage: MediaStorage, auth: StorageAuth, container: str, name: str, start: int, end: int
) -> bytes:
    """Bytes ``start``..``end`` (inclusive; at most ``CHUNK``) of a blob. BlobAccessError when refused."""
    if end < start or end - start + 1 > CHUNK:
        raise ValueError("range too large")
    status, headers, body = await _call(
        storage, auth, "GET", f"/{container}/{name}", {}, headers={"x-ms-range": f"bytes={start}-{end}"}
    )
    if status not in (200, 206):
        raise _refused(status, headers)
    return body


async def iter_blob(
    storage: MediaStorage, auth: StorageAuth, container: str, name: str, start: int, end: int
) -> AsyncIterator[bytes]:
    """Bytes ``start``..``end`` (inclusive) of a blob, in chunks of at most ``CHUNK``."""
    position = start
    while position <= end:
        last = min(end, position + CHUNK - 1)
        chunk = await read_range(storage, auth, container, name, position, last)
        if not chunk:
            return
        yield chunk
        position += len(chunk)


async def download_to(
    storage: MediaStorage, auth: StorageAuth, container: str, name: str, size: int, target: Path
) -> None:
    """Copy a blob of ``size`` bytes into file ``target``, range by range."""
    async with await anyio.open_file(target, "wb") as out:
        if size == 0:
            return
        async for chunk in iter_blob(storage, auth, container, name, 0, size - 1):
            await out.write(chunk)


async def upload_from(
    storage: MediaStorage, auth: StorageAuth, container: str, name: str, source: Path, content_type: str
) -> int:
    """Upload file ``source`` as block blob ``name`` (replacing it): one Put Blob when it fits in a
    chunk, else Put Block per chunk and Put Block List. The size uploaded; BlobAccessError when refused."""
    path = f"/{container}/{name}"
    typed = {"x-ms-blob-content-type": content_type}
    block_ids: list[str] = []
    total = 0
    async with await anyio.open_file(source, "rb") as src:
        first = await src.read(CHUNK)
        if len(first) < CHUNK:
            status, headers, _ = await _call(storage, auth, "PUT", path, {}, first, {**_BLOB_TYPE, **typed})
            if status != 201:
                raise _refused(status, headers)
            return len(first)
        chunk = first
        while chunk:
            block_id = base64.b64encode(f"{len(block_ids):08d}".encode()).decode()
            status, headers, _ = await _call(
                storage, auth, "PUT", path, {"comp": "block", "blockid": block_id}, chunk
            )
            if status != 201:
                raise _refused(status, headers)
            block_ids.append(block_id)
            total += len(chunk)
            chunk = await src.read(CHUNK)
    listing = "".join(f"<Latest>{b}</Latest>" for b in block_ids)
    body = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{listing}</BlockList>'.encode()
    status, headers, _ = await _call(storage, auth, "PUT", path, {"comp": "blocklist"}, body, typed)
    if status != 201:
        raise _refused(status, headers)
    return total
