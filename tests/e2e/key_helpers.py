"""Reaching into a server's own files as an attacker who stole them would: its database and its
root key. For the tests of sealed signing keys and of tokens signed with the real key."""

from __future__ import annotations

import base64
import datetime as dt
import os
import sqlite3
from typing import Any

import orjson
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from keyless.sealing import Sealer
from tests.keyless_server import KeylessServer


def database_url(srv: KeylessServer) -> str:
    """The URL the server's database is reached at (SQLite: the file in its data directory)."""
    return srv.database_url or f"sqlite:///{srv.data_dir / 'keyless.db'}"


def sql(srv: KeylessServer, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the server's database (``?`` placeholders on both databases)."""
    if srv.database_url is None:
        with sqlite3.connect(srv.data_dir / "keyless.db", timeout=30) as conn:
            return list(conn.execute(statement, params).fetchall())
    with psycopg.connect(srv.database_url) as pg:
        cursor = pg.execute(statement.replace("?", "%s"), params)
        return list(cursor.fetchall()) if cursor.description else []


def signing_kids(srv: KeylessServer) -> list[tuple[str, float | None]]:
    """Every (kid, retired_at) in the database, oldest first."""
    return [(str(k), r) for k, r in sql(srv, "SELECT kid, retired_at FROM signing_keys ORDER BY created_at")]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def stolen_signing_key(srv: KeylessServer) -> tuple[str, rsa.RSAPrivateKey]:
    """The server's active signing key, unsealed with the root key from its data directory."""
    ((kid, sealed),) = sql(srv, "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL")
    sealer = Sealer((srv.data_dir / "root.key").read_bytes())
    key = serialization.load_pem_private_key(sealer.open(sealed, f"signing-key:{kid}"), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return str(kid), key


def sign_raw(kid: str, key: rsa.RSAPrivateKey, payload: bytes) -> str:
    """An RS256 JWS over exactly these payload bytes (they need not be valid JSON)."""
    header = b64url(orjson.dumps({"typ": "JWT", "alg": "RS256", "kid": kid, "x5t": kid}))
    signing_input = f"{header}.{b64url(payload)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def foreign_signing_key_row(created_at: float) -> dict[str, Any]:
    """A signing-key row sealed under a root key that is not the server's (another data directory's)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "foreign")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    kid = b64url(os.urandom(20))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "kid": kid,
        "private_key": Sealer(os.urandom(32)).seal(pem, f"signing-key:{kid}"),
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "created_at": created_at,
    }
