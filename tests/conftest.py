"""Shared fixtures: real Keyless servers on SQLite or PostgreSQL (KEYLESS_TEST_DATABASE)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.keyless_server import KeylessServer, fresh_database_url


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeylessServer]:
    """One server shared by the tests that only add state of their own (unique names)."""
    with fresh_database_url() as url:
        srv = KeylessServer(tmp_path_factory.mktemp("keyless") / "data", url).start()
        yield srv
        srv.stop()


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[Callable[..., KeylessServer]]:
    """Factory for servers a test owns (restarts, kill -9, rotation...)."""
    with ExitStack() as stack:
        started: list[KeylessServer] = []

        def make(env: dict[str, str] | None = None, **start_args: object) -> KeylessServer:
            url = stack.enter_context(fresh_database_url())
            srv = KeylessServer(tmp_path / f"data-{len(started)}", url, env)
            started.append(srv)
            return srv.start(**start_args)  # type: ignore[arg-type]

        yield make
        for srv in started:
            if srv.process is not None and srv.process.poll() is None:
                srv.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique resource names, so tests sharing a server never collide."""
    return lambda prefix: f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeylessServer]:
    """A server for the Media Services tests: customer keys checked every second, so rotation,
    revocation and recovery show within a test; lists page every 5 items, so clients must follow
    ``@odata.nextLink``."""
    with fresh_database_url() as url:
        env = {
            "KEYLESS_MEDIA_KEY_CHECK_INTERVAL": "1",
            "KEYLESS_PAGE_SIZE": "5",
            # Jobs are picked up at once and a dead replica's lease runs out within seconds.
            "KEYLESS_MEDIA_JOB_POLL_INTERVAL": "0.2",
            "KEYLESS_MEDIA_JOB_LEASE": "3",
        }
        srv = KeylessServer(tmp_path_factory.mktemp("keyless-media") / "data", url, env).start()
        yield srv
        srv.stop()
