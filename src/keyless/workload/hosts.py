"""Host tokens: how a local process proves it runs *as* a given VM or Function app.

A host token is 256 random bits. It is presented as the proxy password, in the App Service
``X-IDENTITY-HEADER``, or in the per-workload IMDS base URL; it is stored as a SHA-256
(for lookup) and sealed under the root key (so the admin can read it back for
``keyless run --as``). Comparison is constant-time.

Tokens are matched without regard to case: ``@azure/identity`` 4.x lower-cases the whole IMDS
URL it builds from ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (msal-common ``UrlString.canonicalizeUri``),
so new tokens are lower-case hex and the lookup digest is taken over the lower-cased token.
Tokens issued before that (mixed-case base64url) still match as presented, and their digest is
moved to the case-free form the next time the admin reads them back (``reveal``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import sqlalchemy as sa

from keyless.sealing import Sealer
from keyless.store.tables import workload_host_tokens

_LOOKUP = sa.select(workload_host_tokens.c.resource_key, workload_host_tokens.c.token_sha256).where(
    workload_host_tokens.c.token_sha256 == sa.bindparam("digest")
)


def _digest(token: str) -> str:
    """The lookup digest: SHA-256 over the lower-cased token (see the module docstring)."""
    return hashlib.sha256(token.lower().encode()).hexdigest()


def _legacy_digest(token: str) -> str:
    """The digest rows written before case-free matching still hold (over the exact token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _purpose(resource_key: str) -> str:
    return f"host-token:{resource_key}"


class HostTokens:
    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def issue(self, conn: sa.Connection, resource_key: str) -> str:
        """Create (or replace: rotation) the host token of a workload; returns the new token."""
        token = secrets.token_hex(32)  # lower-case: survives clients that lower-case URLs
        conn.execute(workload_host_tokens.delete().where(workload_host_tokens.c.resource_key == resource_key))
        conn.execute(
            workload_host_tokens.insert().values(
                resource_key=resource_key,
                token_sha256=_digest(token),
                sealed_token=self._sealer.seal(token.encode(), _purpose(resource_key)),
                created_at=time.time(),
            )
        )
        return token

    def reveal(self, conn: sa.Connection, resource_key: str) -> str | None:
        """The workload's token (None if it has none); a pre-case-free row gets its digest moved."""
        row = conn.execute(
            sa.select(workload_host_tokens.c.sealed_token, workload_host_tokens.c.token_sha256).where(
                workload_host_tokens.c.resource_key == resource_key
            )
        ).first()
        if row is None:
            return None
        token = self._sealer.open(row.sealed_token, _purpose(resource_key)).decode()
        if row.token_sha256 != _digest(token):
            conn.execute(
                workload_host_tokens.update()
                .where(workload_host_tokens.c.resource_key == resource_key)
                .values(token_sha256=_digest(token))
            )
        return token

    def resolve(self, conn: sa.Connection, token: str) -> str | None:
        """The workload (resource key) a presented token belongs to, or None."""
        if not token or len(token) > 256:
            return None
        for digest in {_digest(token), _legacy_digest(token)}:
            row = conn.execute(_LOOKUP, {"digest": digest}).first()
            if row is not None and hmac.compare_digest(row.token_sha256, digest):
                return str(row.resource_key)
        return None

    def forget(self, conn: sa.Connection, resource_key: str) -> None:
        conn.execute(workload_host_tokens.delete().where(workload_host_tokens.c.resource_key == resource_key))
