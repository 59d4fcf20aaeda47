"""The Blob service's rows (``store/tables.py``, migration 0007): reads and small write helpers.

Rows: ``blob_containers`` (account, name, etag, times, metadata JSON, public access, signed
identifiers JSON, lease), ``blobs`` (account, container, name, snapshot ``''`` for the base blob,
size, etag, times, file, properties JSON, metadata JSON, tags JSON, committed blocks JSON
``[[id, size], ...]``, lease), ``blob_blocks`` (uncommitted blocks: id, file, size).

Names are compared and ordered byte-wise (``COLLATE "C"`` on PostgreSQL; SQLite's default), as
the service lists them in "lexical order", whatever the database's locale.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa

from keyless.store.db import Database
from keyless.store.tables import blob_blocks, blob_containers, blobs

T = TypeVar("T")
C = blob_containers.c
B = blobs.c
K = blob_blocks.c

CONTAINER_BY_NAME = sa.select(*blob_containers.columns).where(
    C.account == sa.bindparam("account"), C.name == sa.bindparam("name")
)
BLOB_BY_NAME = sa.select(*blobs.columns).where(
    B.account == sa.bindparam("account"),
    B.container == sa.bindparam("container"),
    B.name == sa.bindparam("name"),
    B.snapshot == sa.bindparam("snapshot"),
)
BLOCKS_OF = sa.select(K.block_id, K.file, K.size, K.created_at).where(
    K.account == sa.bindparam("account"),
    K.container == sa.bindparam("container"),
    K.blob == sa.bindparam("blob"),
)
HAS_SNAPSHOTS = (
    sa.select(B.snapshot)
    .where(
        B.account == sa.bindparam("account"),
        B.container == sa.bindparam("container"),
        B.name == sa.bindparam("name"),
        B.snapshot != "",
    )
    .limit(1)
)


MAX_GROUP = 64


class GroupCommits:
    """SQLite's group commit for the blob writes (Put Blob, Put Block, Put Block List, copies).

    SQLite has one writer at a time and every commit fsyncs its WAL, so concurrent uploads would
    queue for a commit each. Here one thread of this process takes every write waiting (up to
    ``MAX_GROUP``) and runs them in ONE transaction, each inside its own SAVEPOINT: a write that
    fails (a condition, a lease, a constraint) rolls back alone and gets its own exception; the
    others commit together, with one fsync. No write is answered before the transaction holding
    it has committed, so "acknowledged" still means durable. PostgreSQL commits concurrently and
    does not need this: there each write is its own transaction in a worker thread.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Database, Callable[[sa.Connection], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, db: Database, fn: Callable[[sa.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((db, fn, future))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="keyless-blob-commits", daemon=True)
                self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_GROUP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for db in {id(item[0]): item[0] for item in batch}.values():
                self._commit(db, [(fn, fut) for d, fn, fut in batch if d is db])

    @staticmethod
    def _commit(db: Database, items: list[tuple[Callable[[sa.Connection], Any], Future[Any]]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with db.write() as conn:
                for fn, future in items:
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        with conn.begin_nested():
                            outcomes.append((future, fn(conn), None))
                    except Exception as exc:
                        outcomes.append((future, None, exc))
        except Exception as exc:  # the transaction itself failed: nothing in it committed
            for _fn, future in items:
                if future.running():
                    future.set_exception(exc)
            return
        for future, result, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)


_GROUP = GroupCommits()


def _own_transaction(db: Database, fn: Callable[[sa.Connection], T]) -> T:
    with db.write() as conn:
        return fn(conn)


async def in_writer(db: Database, fn: Callable[[sa.Connection], T]) -> T:
    """Run the write transaction body ``fn(conn)`` off the event loop (grouped on SQLite) and
    return its result once committed. A cancelled caller does not undo a write that commits."""
    if db.is_sqlite:
        return await asyncio.wrap_future(_GROUP.submit(db, fn))
    return await asyncio.to_thread(_own_transaction, db, fn)


def new_etag() -> str:
    """An ETag in Azure's look (``0x8DD…``, unquoted as stored and listed; headers quote it)."""
    return f"0x8D{(time.time_ns() // 100) & 0xFFFFFFFFFFFF:012X}{os.urandom(1).hex().upper()}"


def quoted(etag: str) -> str:
    return f'"{etag}"'


def loads(text: str | None) -> Any:
    return orjson.loads(text) if text else {}


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def ordered(db: Database, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """``column`` with byte-wise collation on PostgreSQL (SQLite compares bytes already)."""
    return column if db.is_sqlite else column.collate("C")


def container(db: Database, account: str, name: str) -> Any | None:
    return db.query_one(CONTAINER_BY_NAME, {"account": account, "name": name})


def blob(db: Database, account: str, container_name: str, name: str, snapshot: str = "") -> Any | None:
    return db.query_one(
        BLOB_BY_NAME, {"account": account, "container": container_name, "name": name, "snapshot": snapshot}
    )


def blob_for_update(
    conn: sa.Connection, account: str, container_name: str, name: str, snapshot: str = ""
) -> Any:
    """The row inside a write transaction, locked on PostgreSQL (SQLite's writer lock covers it)."""
    query = sa.select(*blobs.columns).where(
        B.account == account, B.container == container_name, B.name == name, B.snapshot == snapshot
    )
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    return conn.execute(query).first()


def container_for_update(conn: sa.Connection, account: str, name: str) -> Any:
    query = sa.select(*blob_containers.columns).where(C.account == account, C.name == name)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    return conn.execute(query).first()


def has_snapshots(db: Database, account: str, container_name: str, name: str) -> bool:
    row = db.query_one(HAS_SNAPSHOTS, {"account": account, "container": container_name, "name": name})
    return row is not None


def uncommitted(db: Database, account: str, container_name: str, name: str) -> list[Any]:
    return db.query_all(BLOCKS_OF, {"account": account, "container": container_name, "blob": name})


def count_blocks(conn: sa.Connection, account: str, container_name: str, name: str) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(blob_blocks)
            .where(K.account == account, K.container == container_name, K.blob == name)
        ).scalar_one()
    )


def delete_blob_rows(
    conn: sa.Connection, account: str, container_name: str, name: str, snapshots: str
) -> list[str]:
    """Delete a blob's rows (``snapshots``: "include" base and snapshots, "only" snapshots, "" the
    base only) and, with the base, its uncommitted blocks. Returns the files to remove."""
    where = [B.account == account, B.container == container_name, B.name == name]
    if snapshots == "only":
        where.append(B.snapshot != "")
    elif snapshots != "include":
        where.append(B.snapshot == "")
    files = [r.file for r in conn.execute(sa.select(B.file).where(*where)) if r.file]
    conn.execute(sa.delete(blobs).where(*where))
    if snapshots != "only":
        block_where = [K.account == account, K.container == container_name, K.blob == name]
        files += [r.file for r in conn.execute(sa.select(K.file).where(*block_where))]
        conn.execute(sa.delete(blob_blocks).where(*block_where))
    return files


def delete_container_rows(conn: sa.Connection, account: str, name: str) -> list[str]:
    """Delete a container with all its blobs and blocks; the files to remove afterwards."""
    files = [
        r.file
        for r in conn.execute(sa.select(B.file).where(B.account == account, B.container == name))
        if r.file
    ]
    files += [
        r.file for r in conn.execute(sa.select(K.file).where(K.account == account, K.container == name))
    ]
    conn.execute(sa.delete(blobs).where(B.account == account, B.container == name))
    conn.execute(sa.delete(blob_blocks).where(K.account == account, K.container == name))
    conn.execute(sa.delete(blob_containers).where(C.account == account, C.name == name))
    return files
