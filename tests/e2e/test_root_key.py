"""The root key: only the first `keyless up` of a data directory and its database makes one; a
key sealed under another root key is refused before it is stored, and never served."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.e2e.key_helpers import b64url_decode, database_url, foreign_signing_key_row, signing_kids, sql
from tests.keyless_server import KeylessServer

LOGIN = "https://login.microsoftonline.com"
# Longer than the interval at which a server re-reads the signing keys (5 s).
_PAST_KEY_REFRESH = 6.0


def _kid_of(token: str) -> str:
    return str(orjson.loads(b64url_decode(token.split(".")[0]))["kid"])


def _jwks_kids(srv: KeylessServer) -> set[str]:
    with srv.client() as http:
        return {k["kid"] for k in http.get(f"{LOGIN}/{srv.tenant_id}/discovery/v2.0/keys").json()["keys"]}


def _still_serves(srv: KeylessServer, kid: str) -> None:
    """Tokens are issued (signed with ``kid``) and accepted by the resource manager."""
    token = srv.admin_token()
    assert _kid_of(token) == kid
    with srv.arm(token) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200


def _cli(srv: KeylessServer, *args: str) -> tuple[int, str]:
    done = srv.cli(*args)
    return done.returncode, (done.stdout + done.stderr).replace("\n", " ")


@pytest.mark.parametrize("exists", [False, True])
def test_rotate_keys_with_a_wrong_data_dir_changes_nothing(
    new_server: Callable[..., KeylessServer], tmp_path: Path, exists: bool
) -> None:
    srv = new_server()
    ((kid, _),) = signing_kids(srv)
    wrong = tmp_path / "typo"
    if exists:
        wrong.mkdir()
    # KEYLESS_DATABASE_URL names the real database (on PostgreSQL): only the data directory is wrong.
    code, said = _cli(srv, "authority", "rotate-keys", "--data-dir", str(wrong))
    assert code == 1, said
    assert "No key was rotated" in said and "No root key at" in said and "Traceback" not in said
    assert (sorted(wrong.iterdir()) == []) if exists else not wrong.exists()
    assert signing_kids(srv) == [(kid, None)]
    time.sleep(_PAST_KEY_REFRESH)  # the server has re-read the keys since
    _still_serves(srv, kid)


def test_rotate_keys_with_another_instances_root_key_changes_nothing(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv, other = new_server(), new_server()
    before = signing_kids(srv)
    code, said = _cli(
        other,
        "authority",
        "rotate-keys",
        "--data-dir",
        str(other.data_dir),
        "--database-url",
        database_url(srv),
    )
    assert code == 1, said
    assert "does not open any of this database's signing keys" in said and "Traceback" not in said
    assert signing_kids(srv) == before
    assert len(signing_kids(other)) == 1
    time.sleep(_PAST_KEY_REFRESH)
    _still_serves(srv, before[0][0])
    # With its own data directory the same command works.
    code, said = _cli(srv, "authority", "rotate-keys")
    assert code == 0, said
    assert len(signing_kids(srv)) == 2


def test_up_never_makes_a_root_key_for_a_database_that_has_keys(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv = new_server()
    srv.stop()
    root_key = srv.data_dir / "root.key"
    kept = root_key.read_bytes()
    root_key.unlink()
    with pytest.raises(RuntimeError, match="exited"):
        srv.start()
    log = srv.log()
    assert "No root key at" in log and "already holds keys sealed under one" in log
    assert "Traceback" not in log
    assert not root_key.exists()
    root_key.write_bytes(kept)
    root_key.chmod(0o600)
    srv.start()
    assert srv.admin_token()


@pytest.mark.parametrize("root_key", ["missing", "another"])
def test_a_replica_without_the_databases_root_key_refuses_to_start(
    new_server: Callable[..., KeylessServer], tmp_path: Path, root_key: str
) -> None:
    srv = new_server()
    before = signing_kids(srv)
    replica = KeylessServer(tmp_path / "replica", database_url(srv))
    replica.data_dir.mkdir()
    if root_key == "another":
        (replica.data_dir / "root.key").write_bytes(os.urandom(32))
    try:
        with pytest.raises(RuntimeError, match="exited"):
            replica.start()
    finally:
        if replica.process is not None and replica.process.poll() is None:
            replica.stop()
    log = replica.log()
    assert "Keyless cannot start" in log and "Traceback" not in log
    if root_key == "missing":
        assert not (replica.data_dir / "root.key").exists()
    else:
        assert "does not open any of this database's signing keys" in log
    assert signing_kids(srv) == before
    _still_serves(srv, before[0][0])


def test_a_replica_with_the_databases_root_key_shares_its_keys(
    new_server: Callable[..., KeylessServer], tmp_path: Path
) -> None:
    srv = new_server()
    replica = KeylessServer(tmp_path / "replica", database_url(srv))
    replica.data_dir.mkdir(mode=0o700)
    (replica.data_dir / "root.key").write_bytes((srv.data_dir / "root.key").read_bytes())
    try:
        replica.start()
        with replica.arm(srv.admin_token()) as arm:  # a token from one replica works at the other
            assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
        assert _jwks_kids(replica) == _jwks_kids(srv)
    finally:
        replica.stop()


def test_a_key_sealed_under_another_root_key_is_skipped_not_served(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv = new_server()
    ((good, _),) = signing_kids(srv)
    old_token = srv.admin_token()
    # What an older `rotate-keys` with the wrong data directory did: retire the key, add its own.
    row = foreign_signing_key_row(time.time())
    sql(srv, "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL", (time.time(),))
    sql(
        srv,
        "INSERT INTO signing_keys (kid, private_key, certificate, created_at, retired_at) VALUES (?, ?, ?, ?, NULL)",
        (row["kid"], row["private_key"], row["certificate"], row["created_at"]),
    )
    time.sleep(_PAST_KEY_REFRESH)  # the server re-reads the keys at its next request
    for _ in range(3):
        _still_serves(srv, good)  # the key that opens keeps signing: no 500s
    assert f"Signing key {row['kid']} cannot be used" in srv.log()
    with srv.arm(old_token) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
    assert _jwks_kids(srv) == {good}  # the foreign key is never published
    # A restart keeps to the same rule (the root key still opens one of the database's keys).
    srv.stop()
    srv.start()
    _still_serves(srv, good)
    assert "Traceback" not in srv.log()
    # And rotating with the right data directory makes a good key current again.
    code, said = _cli(srv, "authority", "rotate-keys")
    assert code == 0, said
    ((new, _),) = [k for k in signing_kids(srv) if k[1] is None]
    deadline = time.monotonic() + 30
    while new not in _jwks_kids(srv) and time.monotonic() < deadline:
        time.sleep(0.5)
    _still_serves(srv, new)
    assert _jwks_kids(srv) == {good, new}
