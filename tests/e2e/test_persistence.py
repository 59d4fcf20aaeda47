"""State survives restarts and kill -9; secrets at rest are sealed; private files are 0600."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.e2e.arm_helpers import MSI_API, RG_API, create_group, create_identity, fic_path, rg_path, uami_path
from tests.keyless_server import KeylessServer

LOGIN = "https://login.microsoftonline.com"


def _kids(srv: KeylessServer) -> list[str]:
    with srv.client() as http:
        return [k["kid"] for k in http.get(f"{LOGIN}/common/discovery/keys").json()["keys"]]


def _query(srv: KeylessServer, sql: str) -> list[tuple[object, ...]]:
    if srv.database_url is None:
        with sqlite3.connect(srv.data_dir / "keyless.db") as conn:
            return list(conn.execute(sql).fetchall())
    with psycopg.connect(srv.database_url) as pg:
        return list(pg.execute(sql).fetchall())


def test_restart_keeps_everything(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    tenant, subscription, admin = srv.tenant_id, srv.subscription_id, dict(srv.admin)
    kids = _kids(srv)
    token = srv.admin_token()
    with srv.arm(token) as arm:
        create_group(arm, srv, "keep-rg")
        identity = create_identity(arm, srv, "keep-rg", "keep-id", tags={"t": "1"})
        r = arm.put(
            fic_path(srv, "keep-rg", "keep-id", "keep-fic"),
            params={"api-version": MSI_API},
            json={
                "properties": {
                    "issuer": "https://issuer.example.com",
                    "subject": "s",
                    "audiences": ["api://AzureADTokenExchange"],
                }
            },
        )
        assert r.status_code == 201

    assert srv.stop() == 0
    srv.start()
    assert (srv.tenant_id, srv.subscription_id) == (tenant, subscription)
    assert srv.admin == admin
    assert _kids(srv) == kids
    with srv.arm(token) as arm:  # a token issued before the restart still works
        got = arm.get(uami_path(srv, "keep-rg", "keep-id"), params={"api-version": MSI_API})
        assert got.status_code == 200
        assert got.json() == identity
        assert (
            arm.get(
                fic_path(srv, "keep-rg", "keep-id", "keep-fic"), params={"api-version": MSI_API}
            ).status_code
            == 200
        )
    # The admin's credentials still get new tokens.
    assert srv.admin_token() != token


def test_acknowledged_writes_survive_kill_9(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    with srv.arm() as arm:
        for i in range(5):
            create_group(arm, srv, f"k9-rg{i}")
        identity = create_identity(arm, srv, "k9-rg0", "k9-id")
        patched = arm.patch(
            uami_path(srv, "k9-rg0", "k9-id"),
            params={"api-version": MSI_API},
            json={"tags": {"last": "write"}},
        )
        assert patched.status_code == 200
        deleted = arm.delete(rg_path(srv, "k9-rg4"), params={"api-version": RG_API})
        assert deleted.status_code == 202
    srv.kill9()  # no shutdown of any kind, right after the last acknowledgement
    srv.start()
    with srv.arm() as arm:
        for i in range(4):
            assert arm.get(rg_path(srv, f"k9-rg{i}"), params={"api-version": RG_API}).status_code == 200
        assert arm.get(rg_path(srv, "k9-rg4"), params={"api-version": RG_API}).status_code == 404
        got = arm.get(uami_path(srv, "k9-rg0", "k9-id"), params={"api-version": MSI_API}).json()
        assert got["tags"] == {"last": "write"}
        assert got["properties"]["principalId"] == identity["properties"]["principalId"]
        assert arm.get(deleted.headers["location"]).status_code == 200


def test_private_files_are_0600(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    for path in (
        srv.data_dir / "root.key",
        srv.data_dir / "admin.json",
        srv.data_dir / "server.json",
        srv.data_dir / "ca" / "ca.key",
        srv.data_dir / "ca" / "leaf.key",
    ):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, f"{path}: {oct(mode)}"
    assert len((srv.data_dir / "root.key").read_bytes()) == 32


def _sqlite_files(srv: KeylessServer) -> list[Path]:
    return [srv.data_dir / name for name in ("keyless.db", "keyless.db-wal", "keyless.db-shm")]


def test_the_sqlite_database_and_its_wal_are_0600(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    if srv.database_url is not None:
        pytest.skip("PostgreSQL keeps its own files")
    with srv.arm() as arm:  # some writes, so the write-ahead log is in use
        create_group(arm, srv, "mode-rg")
    for path in _sqlite_files(srv):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, f"{path}: {oct(mode)}"
    # A data directory an older version left readable is narrowed at the next start.
    srv.stop()
    for path in _sqlite_files(srv):
        if path.exists():
            path.chmod(0o644)
    srv.start()
    for path in _sqlite_files(srv):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, f"{path}: {oct(mode)}"


def test_secrets_are_not_stored_in_plaintext(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    rows = _query(srv, "SELECT kid, private_key FROM signing_keys")
    assert rows
    for _kid, sealed in rows:
        assert isinstance(sealed, str)
        # Sealed: "v1:" + base64 of AES-GCM ciphertext. (A plaintext PEM would show its header; a
        # check for "MII", a DER body's start, would also match random base64 now and then.)
        assert sealed.startswith("v1:") and "PRIVATE KEY" not in sealed and "-----" not in sealed
        assert sealed.startswith("v1:")
    secret = srv.admin["clientSecret"]
    hashes = [r[0] for r in _query(srv, "SELECT secret_sha256 FROM client_secrets")]
    assert secret not in hashes
    if srv.database_url is None:
        # Nowhere in the database files either (main file and write-ahead log).
        raw = b"".join(p.read_bytes() for p in srv.data_dir.glob("keyless.db*"))
        assert b"PRIVATE KEY" not in raw
        assert secret.encode() not in raw


def test_the_root_key_is_needed_to_start(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    assert srv.stop() == 0
    original = (srv.data_dir / "root.key").read_bytes()
    (srv.data_dir / "root.key").write_bytes(os.urandom(32))
    with pytest.raises(RuntimeError, match="exited"):
        srv.start()
    log = srv.log()
    assert "does not open any of this database's signing keys" in log and "Traceback" not in log
    (srv.data_dir / "root.key").write_bytes(original)
    srv.start()
    assert srv.admin_token()


def test_vault_secrets_keys_and_account_keys_are_sealed(new_server: Callable[..., KeylessServer]) -> None:
    """A Key Vault secret's value, a key's private material and a storage account's keys are
    sealed under the root key: none of them is anywhere in the database in the clear."""
    from tests.e2e.keyvault_helpers import DATA_API, create_vault, vault_client, vault_token
    from tests.e2e.storage_helpers import account_keys, create_account

    srv = new_server()
    with srv.arm() as arm:
        create_group(arm, srv, "sealed-rg")
    create_vault(srv, "sealed-rg", "sealedkv1")
    value = "plaintext-never-stored-" + os.urandom(8).hex()
    with vault_client(srv, "sealedkv1", vault_token(srv)) as kv:
        assert (
            kv.put("/secrets/s1", params={"api-version": DATA_API}, json={"value": value}).status_code == 200
        )
        key = kv.post("/keys/k1/create", params={"api-version": DATA_API}, json={"kty": "RSA"}).json()
    create_account(srv, "sealed-rg", "sealedst1")
    keys = account_keys(srv, "sealed-rg", "sealedst1")
    stored = [str(cell) for row in _query(srv, "SELECT document, sealed FROM kv_versions") for cell in row]
    stored += [str(cell) for row in _query(srv, "SELECT key1, key2 FROM storage_accounts") for cell in row]
    assert len(stored) == 6
    modulus = key["key"]["n"]
    for text in stored:
        assert value not in text and all(k not in text for k in keys)
        assert "PRIVATE KEY" not in text
    # The public part is shown (and stored in the document); the sealed part is opaque.
    assert any(modulus in text for text in stored)
    sealed = [str(row[0]) for row in _query(srv, "SELECT sealed FROM kv_versions")]
    assert all(s.startswith("v1:") for s in sealed)
    if srv.database_url is None:
        raw = b"".join(p.read_bytes() for p in srv.data_dir.glob("keyless.db*"))
        assert value.encode() not in raw and all(k.encode() not in raw for k in keys)
