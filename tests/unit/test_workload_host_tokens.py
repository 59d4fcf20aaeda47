"""Host tokens against a real database (SQLite, or PostgreSQL with KEYLESS_TEST_DATABASE=postgresql):
case-free matching, and the path for tokens issued before it (mixed-case, digest over the exact
token), which @azure/identity 4.x would otherwise lower-case out of existence."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keyless.sealing import Sealer
from keyless.store.db import Database
from keyless.store.tables import workload_host_tokens
from keyless.workload.hosts import HostTokens
from tests.keyless_server import fresh_database_url

KEY = "/subscriptions/s/resourcegroups/g/providers/microsoft.compute/virtualmachines/vm"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_database_url() as url:
        database = Database(url or f"sqlite:///{tmp_path / 'keyless.db'}")
        database.migrate()
        yield database
        database.dispose()


def test_new_tokens_are_lower_case_and_match_in_any_case(db: Database) -> None:
    tokens = HostTokens(Sealer(secrets.token_bytes(32)))
    with db.write() as conn:
        token = tokens.issue(conn, KEY)
    assert token == token.lower() and len(token) == 64
    with db.read() as conn:
        assert tokens.resolve(conn, token) == KEY
        assert tokens.resolve(conn, token.upper()) == KEY
        assert tokens.resolve(conn, token[:-1]) is None


def test_a_legacy_mixed_case_token_moves_to_the_case_free_digest_when_revealed(db: Database) -> None:
    sealer = Sealer(secrets.token_bytes(32))
    tokens = HostTokens(sealer)
    legacy = "AbCdEf" + secrets.token_urlsafe(32)  # what issue() wrote before: base64url, mixed case
    with db.write() as conn:
        conn.execute(
            workload_host_tokens.insert().values(
                resource_key=KEY,
                token_sha256=hashlib.sha256(legacy.encode()).hexdigest(),
                sealed_token=sealer.seal(legacy.encode(), f"host-token:{KEY}"),
                created_at=time.time(),
            )
        )
    with db.read() as conn:
        assert tokens.resolve(conn, legacy) == KEY  # as presented: still works
        assert tokens.resolve(conn, legacy.lower()) is None  # not yet in lower case
    with db.write() as conn:
        assert tokens.reveal(conn, KEY) == legacy  # what `keyless run --as` calls first
    with db.read() as conn:
        assert tokens.resolve(conn, legacy) == KEY
        assert tokens.resolve(conn, legacy.lower()) == KEY
        digest = conn.execute(sa.select(workload_host_tokens.c.token_sha256)).scalar_one()
    assert digest == hashlib.sha256(legacy.lower().encode()).hexdigest()
