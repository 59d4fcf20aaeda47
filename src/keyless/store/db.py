"""The database: engine construction, transactions and schema migrations."""

from __future__ import annotations

import os
import threading
from collections import namedtuple
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_WRITE = "keyless_write"
# Any constant will do: it serializes migrations between replicas starting together.
_MIGRATION_LOCK_ID = 0x6B65796C


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it is acknowledged (kill -9 and power loss).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front, so two processes never deadlock upgrading it.
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for other databases and for in-memory SQLite."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _make_private(path: Path) -> None:
    """The database and its WAL and shared-memory files hold what root.key protects: 0600, like it.

    The file is created 0600 before SQLite first opens it (SQLite then gives ``-wal`` and ``-shm``
    the database file's mode); files an older version left readable are narrowed.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        with suppress(FileNotFoundError):
            os.chmod(path.with_name(name), 0o600)


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            _make_private(path)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


# Compiled hot-path statements kept (query_one/query_all); far more than the code defines.
_COMPILED_LIMIT = 512


class Database:
    """Hands out short transactions; callers never hold one across an await."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # query_one: statements compiled for this database, and one reader connection per thread.
        self._compiled: dict[sa.Select[Any], tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Any] = []

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def query_one(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> Any | None:
        """The first row of one SELECT (attribute access by column name), or None: the hot read path.

        Read outside an explicit transaction: a single statement sees a consistent snapshot on
        both databases, so no BEGIN/COMMIT is needed. The statement is compiled once for this
        database and run on this thread's own autocommit DB-API connection, skipping
        SQLAlchemy's per-execution machinery and the pool (several times cheaper on SQLite).
        Only for statements whose columns need no result processing (strings and numbers).
        """
        rows = self._fetch(statement, params, one=True)
        return rows[0] if rows else None

    def query_all(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> list[Any]:
        """Every row of one SELECT, as ``query_one`` reads it."""
        return self._fetch(statement, params, one=False)

    def _fetch(self, statement: sa.Select[Any], params: Mapping[str, Any], *, one: bool) -> list[Any]:
        compiled = self._compiled.get(statement)
        if compiled is None:
            with self._lock:
                fields = [c.name for c in statement.selected_columns]
                compiled = (statement.compile(dialect=self.engine.dialect), namedtuple("Row", fields))
                # Keyed by the statement object: callers pass module-level statements with bind
                # parameters. One built per call (literal values) must not grow the cache forever.
                if len(self._compiled) < _COMPILED_LIMIT:
                    self._compiled[statement] = compiled
        query, row_type = compiled
        values = query.construct_params(dict(params))
        args = tuple(values[name] for name in query.positiontup or ()) if query.positional else values
        for attempt in (1, 2):
            connection = self._reader()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(query.string, args)
                    if one:
                        first = cursor.fetchone()
                        rows = [first] if first is not None else []
                    else:
                        rows = cursor.fetchall()
                finally:
                    cursor.close()
                break
            except Exception:
                # A broken connection (a restarted database): drop it, and retry the read once.
                self._drop_reader()
                if attempt == 2:
                    raise
        return [row_type(*row) for row in rows]

    def _reader(self) -> Any:
        """This thread's own autocommit DB-API connection for ``query_one`` (no pool round trip)."""
        connection = getattr(self._local, "reader", None)
        if connection is None:
            fairy = self.engine.raw_connection()
            fairy.detach()  # ours for good; dispose() closes it
            connection = fairy.dbapi_connection
            assert connection is not None
            if not self.is_sqlite:
                connection.autocommit = True  # psycopg: each statement on its own, nothing left open
            self._local.reader = connection
            with self._lock:
                self._readers.append(connection)
        return connection

    def _drop_reader(self) -> None:
        connection = getattr(self._local, "reader", None)
        self._local.reader = None
        if connection is not None:
            with self._lock:
                if connection in self._readers:
                    self._readers.remove(connection)
            with suppress(Exception):  # it is being thrown away
                connection.close()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent, safe for concurrent replicas)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK_ID})")
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")  # providers may add migration branches
                conn.commit()
            finally:
                if not self.is_sqlite:
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK_ID})")
                    conn.commit()

    def dispose(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for connection in readers:
            with suppress(Exception):  # closing anyway
                connection.close()
        self._local = threading.local()
        self.engine.dispose()
