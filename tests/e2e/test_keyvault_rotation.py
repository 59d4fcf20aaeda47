"""Automatic rotation by policy (issue: Key Vault): a policy's Rotate action makes new versions by
itself, old versions keep unwrapping, and the background pass runs under a database lease that
only one replica holds at a time. The 7-day floor is lowered for the test through its setting
(KEYLESS_KEYVAULT_ROTATION_FLOOR), the only thing that differs from Azure's defaults."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keyless.store import leases
from keyless.store.db import Database
from tests.e2e.keyvault_helpers import DATA_API, assert_kv_error, create_vault, vault_client, vault_token
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer, fresh_database_url

pytestmark = pytest.mark.slow


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_policy_rotates_by_itself_and_old_versions_still_unwrap(
    new_server: Callable[..., KeylessServer], unique: Unique
) -> None:
    srv = new_server(env={"KEYLESS_KEYVAULT_ROTATION_FLOOR": "1", "KEYLESS_KEYVAULT_ROTATION_INTERVAL": "1"})
    group = create_group(srv, unique)
    name = unique("rot")
    create_vault(srv, group, name)
    params = {"api-version": DATA_API}
    with vault_client(srv, name, vault_token(srv)) as kv:
        first = kv.post("/keys/cmk/create", params=params, json={"kty": "RSA", "key_size": 2048}).json()
        jwk = first["key"]
        public = rsa.RSAPublicNumbers(
            int.from_bytes(_unb64(jwk["e"]), "big"), int.from_bytes(_unb64(jwk["n"]), "big")
        ).public_key()
        dek = os.urandom(32)
        wrapped = public.encrypt(dek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        # Below the floor (4 floors for expiryTime): refused, and no policy stored.
        bad = {
            "lifetimeActions": [{"trigger": {"timeAfterCreate": "PT2S"}, "action": {"type": "Rotate"}}],
            "attributes": {"expiryTime": "PT3S"},
        }
        assert_kv_error(kv.put("/keys/cmk/rotationpolicy", params=params, json=bad), 400, "BadParameter")
        assert (
            kv.get("/keys/cmk/rotationpolicy", params=params).json()["lifetimeActions"][0]["action"]["type"]
            == "Notify"
        )
        policy = {
            "lifetimeActions": [{"trigger": {"timeAfterCreate": "PT2S"}, "action": {"type": "Rotate"}}],
            "attributes": {"expiryTime": "PT60S"},
        }
        r = kv.put("/keys/cmk/rotationpolicy", params=params, json=policy)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        versions: list[str] = []
        while time.monotonic() < deadline:
            versions = [item["kid"] for item in kv.get("/keys/cmk/versions", params=params).json()["value"]]
            if len(versions) >= 2:
                break
            time.sleep(0.5)
        assert len(versions) >= 2, versions
        latest = kv.get("/keys/cmk/", params=params).json()
        assert latest["key"]["kid"] != jwk["kid"] and latest["key"]["n"] != jwk["n"]
        assert latest["attributes"]["exp"] - latest["attributes"]["created"] == 60
        r = kv.post(
            jwk["kid"].removeprefix(f"https://{name}.vault.azure.net") + "/unwrapkey",
            params=params,
            json={"alg": "RSA-OAEP-256", "value": _b64(wrapped)},
        )
        assert r.status_code == 200 and _unb64(r.json()["value"]) == dek


def test_one_replica_holds_the_lease(tmp_path: Path) -> None:
    with fresh_database_url() as url:
        db = Database(url or f"sqlite:///{tmp_path / 'lease.db'}")
        try:
            db.migrate()
            now = 1000.0
            assert leases.try_acquire(db, "work", "replica-a", 10, now=now)
            assert not leases.try_acquire(db, "work", "replica-b", 10, now=now + 1)
            assert leases.try_acquire(db, "work", "replica-a", 10, now=now + 2)  # renewal
            assert leases.try_acquire(db, "work", "replica-b", 10, now=now + 13)  # a's expired
            assert not leases.try_acquire(db, "work", "replica-a", 10, now=now + 14)
            leases.release(db, "work", "replica-b")
            assert leases.try_acquire(db, "work", "replica-a", 10, now=now + 15)
        finally:
            db.dispose()
