"""Garbage collection of the blob directory, one replica at a time (database lease).

Two kinds of garbage: files no row names (an upload cut by a crash or ``kill -9`` between its
fsync and its commit, a removal that did not happen because the process died just after a commit,
the content of a deleted account), and uncommitted blocks older than 7 days ("Put Block": the
service discards uncommitted blocks after a week; REST docs).

A file is removed only if no ``blobs``/``blob_blocks`` row names it AND its inode changed (ctime)
more than ``grace`` seconds ago (default ``GRACE``): the directory is listed before the names are read, every upload
writes its file (recent ctime) before committing its row, and a snapshot or copy is a hard link,
which also sets the inode's ctime, so nothing on its way into a row is ever taken.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from keyless.providers.storage.blob.files import BlobFiles
from keyless.store import leases
from keyless.store.db import Database
from keyless.store.tables import blob_blocks, blobs

LEASE = "storage-blob-sweep"
GRACE = 3600.0
BLOCK_LIFETIME = 7 * 86400.0
log = logging.getLogger("keyless.storage.blob")


class BlobSweeper:
    def __init__(self, db: Database, files: BlobFiles, interval: float, grace: float = GRACE) -> None:
        self.db = db
        self.files = files
        self.interval = max(1.0, float(interval))
        self.grace = max(0.0, float(grace))
        self.holder = uuid.uuid4().hex

    def _expire_blocks(self, now: float) -> list[str]:
        with self.db.write() as conn:
            old = blob_blocks.c.created_at < now - BLOCK_LIFETIME
            doomed = [r.file for r in conn.execute(sa.select(blob_blocks.c.file).where(old))]
            conn.execute(sa.delete(blob_blocks).where(old))
        return doomed

    def _sweep_account(self, account_dir: Path, now: float) -> int:
        listed: list[tuple[str, float]] = []
        for bucket in os.scandir(account_dir):
            if not bucket.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(bucket.path):
                if entry.is_file(follow_symlinks=False):
                    listed.append((f"{account_dir.name}/{bucket.name}/{entry.name}", entry.stat().st_ctime))
        if not listed:
            return 0
        with self.db.read() as conn:  # read after listing: see the module docstring
            named = {
                r.file
                for r in conn.execute(sa.select(blobs.c.file).where(blobs.c.account == account_dir.name))
                if r.file
            }
            named.update(
                r.file
                for r in conn.execute(
                    sa.select(blob_blocks.c.file).where(blob_blocks.c.account == account_dir.name)
                )
            )
        removed = 0
        for name, changed in listed:
            if name not in named and changed < now - self.grace:
                try:
                    self.files.path(name).unlink()
                    removed += 1
                except (FileNotFoundError, ValueError):
                    continue
        return removed

    def sweep(self, now: float) -> int:
        """One pass (blocking; run it in a thread): expired blocks, then unnamed files. Returns how
        many files it removed."""
        doomed = self._expire_blocks(now)
        for name in doomed:
            try:
                self.files.path(name).unlink()
            except (FileNotFoundError, ValueError):
                continue
        removed = len(doomed)
        if not self.files.root.is_dir():
            return removed
        for account_dir in self.files.root.iterdir():
            if account_dir.is_dir() and not account_dir.is_symlink():
                removed += self._sweep_account(account_dir, now)
        return removed

    async def run_once(self) -> int:
        if not await asyncio.to_thread(leases.try_acquire, self.db, LEASE, self.holder, 3 * self.interval):
            return 0
        return await asyncio.to_thread(self.sweep, time.time())

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a database outage or a vanished directory: next interval
                log.exception("blob sweep failed")
            await asyncio.sleep(self.interval)
