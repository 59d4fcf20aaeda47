"""Blob content on disk: every version of a blob, and every uncommitted block, is its own file.

Layout: ``{blob dir}/{account}/{2 hex}/{32 hex}``. A file is written once under a fresh name,
flushed and fsynced (file and directory) before the database row that names it commits, and never
changed afterwards; a snapshot or a copy is a hard link (a second name for the same bytes), so
each row owns exactly one name and deleting a row deletes its name. A crash before the commit
leaves an unreferenced file (wasted space, never a torn blob); the old file is removed only after
the new row committed.

All file I/O runs in worker threads in chunks of ``CHUNK`` bytes: no request body or blob is
ever held whole in memory, and the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from azure.storage.extensions.checksums import crc64

from keyless.providers.storage.blob import errors
from keyless.web import Receive, Send

CHUNK = 1024 * 1024
_REL = re.compile(r"[a-z0-9]{3,24}/[0-9a-f]{2}/[0-9a-f]{32}")


@dataclass(frozen=True)
class Written:
    """A file just made durable: its relative name (None for no bytes), size, MD5 digest and
    Storage CRC64 (0 where not computed)."""

    file: str | None
    size: int
    md5: bytes
    crc64: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobFiles:
    """The blob directory (``KEYLESS_BLOB_DIR``); shared by replicas, so names are random UUIDs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _new(self, account: str) -> tuple[str, Path]:
        name = uuid.uuid4().hex
        rel = f"{account}/{name[:2]}/{name}"
        return rel, self.root / rel

    def path(self, rel: str) -> Path:
        """The absolute path of a stored name (names come from our own rows; checked anyway)."""
        if _REL.fullmatch(rel) is None:
            raise ValueError(f"not a blob file name: {rel!r}")
        return self.root / rel

    def _open_new(self, account: str) -> tuple[str, Path, IO[bytes]]:
        rel, path = self._new(account)
        path.parent.mkdir(parents=True, exist_ok=True)
        return rel, path, path.open("xb")

    @staticmethod
    def _finish(path: Path, handle: IO[bytes]) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        _fsync_dir(path.parent)

    async def receive(self, receive: Receive, account: str, expected: int) -> Written:
        """Stream the request body (exactly ``expected`` bytes, the Content-Length) to a new file,
        hashing it with MD5 on the way. Raises 400 if the body ends early (the client went away);
        no file is left behind on any error."""
        md5 = hashlib.md5()  # noqa: S324 - Content-MD5 is MD5 by definition
        crc = _Crc64()
        if expected == 0:
            await _drain(receive)
            return Written(None, 0, md5.digest())
        rel, path, handle = await asyncio.to_thread(self._open_new, account)
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise errors.incomplete_body()
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > expected:
                        raise errors.invalid_input(
                            "The request body is longer than the Content-Length header says."
                        )
                    pending.append(chunk)
                    pending_size += len(chunk)
                more = message.get("more_body", False)
                if pending_size >= CHUNK or (not more and pending):
                    block = b"".join(pending)
                    pending, pending_size = [], 0
                    await asyncio.to_thread(_write_hashed, handle, md5, crc, block)
                if not more:
                    break
            if size != expected:
                raise errors.incomplete_body()
            await asyncio.to_thread(self._finish, path, handle)
        except BaseException:
            await asyncio.to_thread(_discard, path, handle)
            raise
        return Written(rel, size, md5.digest(), crc.value)

    async def concatenate(self, account: str, parts: list[tuple[str, int, int]]) -> Written:
        """A new durable file holding, in order, ``length`` bytes at ``offset`` of each stored file in
        ``parts`` (the blocks of a block list). MD5 is not computed (Put Block List sets none)."""
        total = sum(length for _, _, length in parts)
        if total == 0:
            return Written(None, 0, b"")
        return await asyncio.to_thread(self._concatenate, account, parts, total)

    def _concatenate(self, account: str, parts: list[tuple[str, int, int]], total: int) -> Written:
        rel, path, handle = self._open_new(account)
        try:
            out = handle.fileno()
            for source, offset, length in parts:
                with self.path(source).open("rb") as src:
                    _copy_range(src.fileno(), out, offset, length)
            self._finish(path, handle)
        except BaseException:
            _discard(path, handle)
            raise
        return Written(rel, total, b"")

    async def link(self, account: str, source: str | None) -> str | None:
        """A second durable name for ``source``'s bytes (a snapshot or a copy); None for None.
        FileNotFoundError if ``source`` is gone (the blob was overwritten meanwhile: re-read it)."""
        if source is None:
            return None
        return await asyncio.to_thread(self._link, account, source)

    def _link(self, account: str, source: str) -> str:
        rel, path = self._new(account)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.path(source), path)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            # A file system without hard links: copy the bytes instead.
            with self.path(source).open("rb") as src, path.open("xb") as dst:
                _copy_range(src.fileno(), dst.fileno(), 0, os.fstat(src.fileno()).st_size)
                dst.flush()
                os.fsync(dst.fileno())
        _fsync_dir(path.parent)
        return rel

    async def remove(self, names: Iterable[str | None]) -> None:
        """Delete stored names (after the rows naming them are gone); missing ones are ignored."""
        wanted = [n for n in names if n]
        if wanted:
            await asyncio.to_thread(self._remove, wanted)

    def _remove(self, names: list[str]) -> None:
        for name in names:
            try:
                self.path(name).unlink()
            except (FileNotFoundError, ValueError):
                continue

    async def send(self, send: Send, source: str | None, offset: int, length: int) -> None:
        """Send ``length`` bytes at ``offset`` of a stored file as the response body, chunk by chunk
        (the response start was already sent). Ends the body."""
        if source is None or length <= 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        handle = await asyncio.to_thread(self.path(source).open, "rb")
        try:
            await asyncio.to_thread(handle.seek, offset)
            left = length
            while left > 0:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, left))
                if not chunk:
                    break  # cannot happen for an immutable file of the recorded size
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if left > 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await asyncio.to_thread(handle.close)

    async def md5_of(self, source: str | None, offset: int, length: int) -> bytes:
        """MD5 of a range of a stored file (``x-ms-range-get-content-md5``; at most 4 MiB)."""
        if source is None or length <= 0:
            return hashlib.md5(b"").digest()  # noqa: S324
        return await asyncio.to_thread(self._md5_of, source, offset, length)

    def _md5_of(self, source: str, offset: int, length: int) -> bytes:
        with self.path(source).open("rb") as handle:
            handle.seek(offset)
            return hashlib.md5(handle.read(length)).digest()  # noqa: S324


class _Crc64:
    """Storage's CRC64 (``x-ms-content-crc64``), computed as the body streams in, with Microsoft's
    own implementation (azure-storage-extensions, what azure-storage-blob uses to compute it)."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, block: bytes) -> None:
        self.value = crc64.compute(block, self.value)


def _write_hashed(handle: IO[bytes], md5: hashlib._Hash, crc: _Crc64, block: bytes) -> None:
    md5.update(block)
    crc.update(block)
    handle.write(block)


def _discard(path: Path, handle: IO[bytes]) -> None:
    try:
        handle.close()
    finally:
        path.unlink(missing_ok=True)


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    left = length
    position = offset
    while left > 0:
        try:
            copied = os.copy_file_range(src, dst, min(left, 64 * CHUNK), position)
        except OSError:
            copied = 0
        if copied <= 0:
            data = os.pread(src, min(left, CHUNK), position)
            if not data:
                raise OSError(f"short read at {position}")
            os.write(dst, data)
            copied = len(data)
        left -= copied
        position += copied


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
