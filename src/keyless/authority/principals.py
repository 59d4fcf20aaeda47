"""The directory: principals (service principals, managed identities) and their secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keyless.store.db import Database
from keyless.store.tables import client_secrets, principals

SERVICE_PRINCIPAL = "ServicePrincipal"
MANAGED_IDENTITY = "ManagedIdentity"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "-_."


@dataclass(frozen=True)
class Principal:
    object_id: str
    app_id: str
    tenant_id: str
    principal_type: str
    display_name: str
    managed_identity_resource_id: str | None


def _from_row(row: sa.Row[tuple[object, ...]]) -> Principal:
    return Principal(
        object_id=row.object_id,
        app_id=row.app_id,
        tenant_id=row.tenant_id,
        principal_type=row.principal_type,
        display_name=row.display_name,
        managed_identity_resource_id=row.managed_identity_resource_id,
    )


_BY_OBJECT_ID = sa.select(principals).where(principals.c.object_id == sa.bindparam("object_id"))
_BY_APP_ID = sa.select(principals).where(principals.c.app_id == sa.bindparam("app_id"))


def create_principal(
    conn: sa.Connection,
    *,
    tenant_id: str,
    principal_type: str,
    display_name: str,
    managed_identity_resource_id: str | None = None,
    owner_key: str | None = None,
) -> Principal:
    principal = Principal(
        object_id=str(uuid.uuid4()),
        app_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        principal_type=principal_type,
        display_name=display_name,
        managed_identity_resource_id=managed_identity_resource_id,
    )
    conn.execute(
        principals.insert().values(
            object_id=principal.object_id,
            app_id=principal.app_id,
            tenant_id=tenant_id,
            principal_type=principal_type,
            display_name=display_name,
            managed_identity_resource_id=managed_identity_resource_id,
            owner_key=owner_key,
            created_at=time.time(),
        )
    )
    return principal


def get_by_object_id(conn: sa.Connection, object_id: str) -> Principal | None:
    row = conn.execute(_BY_OBJECT_ID, {"object_id": object_id}).first()
    return _from_row(row) if row is not None else None


def lookup_by_object_id(db: Database, object_id: str) -> Principal | None:
    """``get_by_object_id`` outside a transaction, on the hot path (every token validation)."""
    row = db.query_one(_BY_OBJECT_ID, {"object_id": object_id})
    return _from_row(row) if row is not None else None


def get_by_app_id(conn: sa.Connection, app_id: str) -> Principal | None:
    row = conn.execute(_BY_APP_ID, {"app_id": app_id.lower()}).first()
    return _from_row(row) if row is not None else None


def lookup_by_app_id(db: Database, app_id: str) -> Principal | None:
    """``get_by_app_id`` outside a transaction, on the hot path (every token request)."""
    row = db.query_one(_BY_APP_ID, {"app_id": app_id.lower()})
    return _from_row(row) if row is not None else None


def owned_by(conn: sa.Connection, owner_key: str) -> list[Principal]:
    rows = conn.execute(sa.select(principals).where(principals.c.owner_key == owner_key)).all()
    return [_from_row(r) for r in rows]


def owner_key_of(conn: sa.Connection, object_id: str) -> str | None:
    row = conn.execute(sa.select(principals.c.owner_key).where(principals.c.object_id == object_id)).first()
    return row.owner_key if row is not None else None


def delete_principal(conn: sa.Connection, object_id: str) -> None:
    conn.execute(client_secrets.delete().where(client_secrets.c.object_id == object_id))
    conn.execute(principals.delete().where(principals.c.object_id == object_id))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_client_secret(conn: sa.Connection, object_id: str) -> str:
    """Create a secret shaped like Entra's (40 characters, ``~`` in the 4th place); return it once."""
    body = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(37))
    secret = body[:3] + "8Q~" + body[3:]
    conn.execute(
        client_secrets.insert().values(
            key_id=str(uuid.uuid4()),
            object_id=object_id,
            secret_sha256=_digest(secret),
            hint=secret[:3],
            created_at=time.time(),
            expires_at=None,
        )
    )
    return secret


_SECRETS_OF = sa.select(client_secrets.c.secret_sha256, client_secrets.c.expires_at).where(
    client_secrets.c.object_id == sa.bindparam("object_id")
)


def verify_client_secret(conn: sa.Connection, object_id: str, secret: str) -> bool:
    return _secret_matches(conn.execute(_SECRETS_OF, {"object_id": object_id}).all(), secret)


def check_client_secret(db: Database, object_id: str, secret: str) -> bool:
    """``verify_client_secret`` outside a transaction, on the hot path (every token request)."""
    return _secret_matches(db.query_all(_SECRETS_OF, {"object_id": object_id}), secret)


def _secret_matches(rows: Sequence[Any], secret: str) -> bool:
    now = time.time()
    offered = _digest(secret).encode()
    matched = False
    for row in rows:
        # Constant time, and every stored secret is compared (no early exit).
        ok = hmac.compare_digest(offered, row.secret_sha256.encode())
        matched |= ok and (row.expires_at is None or row.expires_at > now)
    return matched
