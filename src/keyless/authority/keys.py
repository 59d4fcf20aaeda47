"""RS256 signing keys with rollover.

Keys live in the database (private parts sealed under the root key) so every replica signs
with and accepts the same keys. A rotated key stops signing at once but stays published,
and keeps validating, for ``grace`` seconds: longer than any token it signed can live.

A key is published only if its sealed private part opens with this replica's root key. A new
key is stored only after the root key has proved it is the database's (it opens one of the
keys already there), so a wrong ``--data-dir`` cannot plant a key no replica can use. A key
that still cannot be opened (written by something else) is skipped with a logged error, and
the newest key that opens keeps signing and stays published (see the README, "Choices").
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from keyless.sealing import RootKeyError, SealedValueError, Sealer
from keyless.store.db import Database
from keyless.store.tables import signing_keys

# How often a replica looks for keys rotated by another one.
_REFRESH_SECONDS = 5.0
# An unknown kid triggers at most one reload per this many seconds (no DB stampede from junk).
_UNKNOWN_KID_RELOAD_SECONDS = 1.0
# How many of the newest keys are tried when the root key must prove it is the database's,
# and when looking for an older key to keep signing with.
_KEY_CANDIDATES = 20
# Kids already refused (logged once each); a bound, though only the admin can add keys.
_REFUSED_LIMIT = 1024
# PostgreSQL advisory lock serializing key creation between replicas (SQLite: BEGIN IMMEDIATE).
_KEY_CREATION_LOCK_ID = 0x6B65796B

_log = logging.getLogger(__name__)

NOT_THIS_DATABASES_ROOT_KEY = (
    "the root key does not open any of this database's signing keys: they were sealed under another "
    "root key. Use the root.key of the data directory that first started on this database (replicas "
    "sharing a database share its root key)."
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: rsa.RSAPublicKey
    private_key: rsa.RSAPrivateKey | None
    certificate_der: bytes
    created_at: float
    retired_at: float | None

    def jwk(self) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _uint_b64(numbers.n),
            "e": _uint_b64(numbers.e),
            "x5c": [base64.b64encode(self.certificate_der).decode()],
        }


def _new_key_material() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.windows.net")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def database_has_signing_keys(db: Database) -> bool:
    """Whether Keyless has started on this database before (it holds keys sealed under a root key).

    False for an empty database, schema or not.
    """
    if not sa.inspect(db.engine).has_table(signing_keys.name):
        return False
    with db.read() as conn:
        return conn.execute(sa.select(signing_keys.c.kid).limit(1)).first() is not None


class KeySet:
    """This process's view of the signing keys; the database is the source of truth."""

    def __init__(self, db: Database, sealer: Sealer, grace: float) -> None:
        self._db = db
        self._sealer = sealer
        self._grace = grace
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._active: SigningKey | None = None
        self._loaded_at = 0.0
        self._unknown_reload_at = 0.0
        self._refused: set[str] = set()
        self._fallback_kid: str | None = None

    def _purpose(self, kid: str) -> str:
        return f"signing-key:{kid}"

    def _unseal(self, kid: str, sealed: str) -> bytes | None:
        try:
            return self._sealer.open(sealed, self._purpose(kid))
        except SealedValueError:
            return None

    def _prove_root_key(self, conn: sa.Connection) -> None:
        """RootKeyError unless the database has no keys yet or one of its newest opens with our root key."""
        rows = conn.execute(
            sa.select(signing_keys.c.kid, signing_keys.c.private_key)
            .order_by(signing_keys.c.created_at.desc())
            .limit(_KEY_CANDIDATES)
        ).all()
        if rows and all(self._unseal(row.kid, row.private_key) is None for row in rows):
            raise RootKeyError(NOT_THIS_DATABASES_ROOT_KEY)

    def _serialize_creation(self, conn: sa.Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_KEY_CREATION_LOCK_ID})")

    def create_key(self, conn: sa.Connection) -> str:
        """Insert a fresh active key and retire the previous ones (within ``conn``'s transaction).

        RootKeyError, before anything is written, if this root key is not the database's.
        """
        self._serialize_creation(conn)
        self._prove_root_key(conn)
        key, cert = _new_key_material()
        der = cert.public_bytes(serialization.Encoding.DER)
        kid = b64url(hashlib.sha1(der, usedforsecurity=False).digest())  # x5t, as Entra uses
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        now = time.time()
        conn.execute(signing_keys.update().where(signing_keys.c.retired_at.is_(None)).values(retired_at=now))
        conn.execute(
            signing_keys.insert().values(
                kid=kid,
                private_key=self._sealer.seal(pem, self._purpose(kid)),
                certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
                created_at=now,
                retired_at=None,
            )
        )
        return kid

    def ensure_active(self) -> None:
        """At start: prove the root key is the database's (RootKeyError if not), create the first key
        if there is none, and load the keys."""
        with self._db.write() as conn:
            self._serialize_creation(conn)
            self._prove_root_key(conn)
            active = conn.execute(
                sa.select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))
            ).first()
            if active is None:
                self.create_key(conn)
        self.reload()
        if self._active is None:
            raise RootKeyError(NOT_THIS_DATABASES_ROOT_KEY)

    def rotate(self) -> str:
        """A new active key (its kid); RootKeyError, with nothing written, if the root key is not the
        database's."""
        with self._db.write() as conn:
            kid = self.create_key(conn)
        self.reload()
        return kid

    def _load(self, row: Any) -> SigningKey | None:
        """The key of a ``signing_keys`` row, or None (logged once) if it cannot be used here."""
        cached = self._keys.get(row.kid)
        if cached is not None and cached.retired_at == row.retired_at:
            return cached
        if row.kid in self._refused:
            return None
        pem = self._unseal(row.kid, row.private_key)
        try:
            if pem is None:
                raise SealedValueError("it does not open with this root key")
            cert = x509.load_pem_x509_certificate(row.certificate.encode())
            loaded = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:  # SealedValueError, or a damaged certificate or key
            if len(self._refused) >= _REFUSED_LIMIT:
                self._refused.clear()
            self._refused.add(row.kid)
            _log.error(
                "Signing key %s cannot be used (%s); it is not published and never signs here. Was it "
                "written with another root.key? `keyless authority rotate-keys` with this data directory "
                "makes a good key current.",
                row.kid,
                exc,
            )
            return None
        public = cert.public_key()
        assert isinstance(loaded, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey)
        return SigningKey(
            kid=row.kid,
            public_key=public,
            private_key=loaded,
            certificate_der=cert.public_bytes(serialization.Encoding.DER),
            created_at=row.created_at,
            retired_at=row.retired_at,
        )

    def reload(self) -> None:
        """Re-read the published keys (active, and retired within ``grace``) from the database."""
        cutoff = time.time() - self._grace
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(signing_keys).where(
                    sa.or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > cutoff)
                )
            ).all()
            loaded = [key for key in map(self._load, rows) if key is not None]
            current = [k for k in loaded if k.retired_at is None]
            # No active key opens here: keep signing with the newest one that does (_fallback).
            active = max(current, key=lambda k: k.created_at) if current else self._fallback(conn, loaded)
            if current:
                self._fallback_kid = None
        keys = {k.kid: k for k in loaded}
        if active is not None:
            keys[active.kid] = active
        with self._lock:
            self._keys = keys
            self._active = active
            self._loaded_at = time.monotonic()

    def _fallback(self, conn: sa.Connection, loaded: list[SigningKey]) -> SigningKey | None:
        """The newest key that opens here, to sign with while no active one does; it stays published
        even past its grace, so its tokens validate as long as they live."""
        fallback = max(loaded, key=lambda k: k.created_at, default=None)
        if fallback is None:
            older = conn.execute(
                sa.select(signing_keys).order_by(signing_keys.c.created_at.desc()).limit(_KEY_CANDIDATES)
            ).all()
            fallback = next((key for key in map(self._load, older) if key is not None), None)
        if fallback is not None and fallback.kid != self._fallback_kid:
            _log.error("No active signing key can be used here; signing with the older key %s.", fallback.kid)
        self._fallback_kid = fallback.kid if fallback is not None else None
        return fallback

    def _refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at > _REFRESH_SECONDS:
            self.reload()

    @property
    def active(self) -> SigningKey:
        self._refresh_if_stale()
        if self._active is None or self._active.private_key is None:
            raise RuntimeError("no active signing key; start the server to create one")
        return self._active

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        self._refresh_if_stale()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._unknown_reload_at > _UNKNOWN_KID_RELOAD_SECONDS:
            # Perhaps another replica rotated just now.
            self._unknown_reload_at = time.monotonic()
            self.reload()
            key = self._keys.get(kid)
        return key.public_key if key is not None else None

    def published(self) -> list[SigningKey]:
        self._refresh_if_stale()
        return sorted(self._keys.values(), key=lambda k: -k.created_at)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.published()]}
