"""RS256 signing keys with rollover.

Keys live in the database (private parts sealed under the root key) so every replica signs
with and accepts the same keys. A rotated key stops signing at once but stays published,
and keeps validating, for ``grace`` seconds: longer than any token it signed can live.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from keyless.sealing import Sealer
from keyless.store.db import Database
from keyless.store.tables import signing_keys

# How often a replica looks for keys rotated by another one.
_REFRESH_SECONDS = 5.0
# An unknown kid triggers at most one reload per this many seconds (no DB stampede from junk).
_UNKNOWN_KID_RELOAD_SECONDS = 1.0


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

    def _purpose(self, kid: str) -> str:
        return f"signing-key:{kid}"

    def create_key(self, conn: sa.Connection) -> str:
        """Insert a fresh active key and retire the previous ones (within ``conn``'s transaction)."""
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
        with self._db.write() as conn:
            active = conn.execute(
                sa.select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))
            ).first()
            if active is None:
                self.create_key(conn)
        self.reload()

    def rotate(self) -> str:
        with self._db.write() as conn:
            kid = self.create_key(conn)
        self.reload()
        return kid

    def reload(self) -> None:
        cutoff = time.time() - self._grace
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(signing_keys).where(
                    sa.or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > cutoff)
                )
            ).all()
        keys: dict[str, SigningKey] = {}
        active: SigningKey | None = None
        for row in rows:
            cached = self._keys.get(row.kid)
            if cached is not None and cached.retired_at == row.retired_at:
                key = cached
            else:
                cert = x509.load_pem_x509_certificate(row.certificate.encode())
                private: rsa.RSAPrivateKey | None = None
                if row.retired_at is None:
                    loaded = serialization.load_pem_private_key(
                        self._sealer.open(row.private_key, self._purpose(row.kid)), password=None
                    )
                    assert isinstance(loaded, rsa.RSAPrivateKey)
                    private = loaded
                public = cert.public_key()
                assert isinstance(public, rsa.RSAPublicKey)
                key = SigningKey(
                    kid=row.kid,
                    public_key=public,
                    private_key=private,
                    certificate_der=cert.public_bytes(serialization.Encoding.DER),
                    created_at=row.created_at,
                    retired_at=row.retired_at,
                )
            keys[key.kid] = key
            if key.retired_at is None and (active is None or key.created_at > active.created_at):
                active = key
        with self._lock:
            self._keys = keys
            self._active = active
            self._loaded_at = time.monotonic()

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
