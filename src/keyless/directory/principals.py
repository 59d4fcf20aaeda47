"""Principals of the directory (service principals, the local admin, managed identities), their
client secrets and their service principal names (an app's identifier URIs).

Every service that needs a principal reads it here: the authority (token requests, audiences),
RBAC (who is assigned), Microsoft Graph and ``keyless ad``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keyless.store.db import Database
from keyless.store.tables import client_secrets, principals, service_principal_names

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
    conn.execute(service_principal_names.delete().where(service_principal_names.c.object_id == object_id))
    conn.execute(principals.delete().where(principals.c.object_id == object_id))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_client_secret(conn: sa.Connection, object_id: str) -> str:
    """Create a secret shaped like Entra's (40 characters, ``~`` in the 4th place); return it once."""
    # A leading '-' would read as an option on command lines (`az login -p <secret>`).
    body = secrets.choice(string.ascii_letters + string.digits)
    body += "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(36))
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


# --- service principal names -----------------------------------------------------------------

# Entra's identifier URI schemes (api://, https://, urn:), one line, bounded (Entra allows 120
# characters for an https URI's host part; 256 bounds the whole name here).
_IDENTIFIER_URI = re.compile(r"(?:api://|https://|urn:)[!-~]{1,240}", re.IGNORECASE)
MAX_IDENTIFIER_URIS = 50


def name_key(name: str) -> str:
    """How names are compared: lower case, no trailing slash (as the authority compares resources)."""
    return name.strip().rstrip("/").lower()


def valid_identifier_uri(uri: object) -> bool:
    return isinstance(uri, str) and len(uri) <= 256 and _IDENTIFIER_URI.fullmatch(uri) is not None


def add_names(conn: sa.Connection, principal: Principal, names: Sequence[str]) -> list[str]:
    """Store ``names`` (validated identifier URIs) for ``principal``; the ones already held by
    another principal of the tenant are returned (nothing is written then)."""
    keys = {name_key(n): n for n in names}
    taken = conn.execute(
        sa.select(service_principal_names.c.name).where(
            service_principal_names.c.tenant_id == principal.tenant_id,
            service_principal_names.c.name_key.in_(list(keys)),
        )
    ).all()
    if taken:
        return [row.name for row in taken]
    for key, name in keys.items():
        conn.execute(
            service_principal_names.insert().values(
                tenant_id=principal.tenant_id, name_key=key, name=name, object_id=principal.object_id
            )
        )
    return []


def names_of(conn: sa.Connection, object_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each principal's stored names (identifier URIs), in the order they sort."""
    found: dict[str, list[str]] = {}
    if not object_ids:
        return found
    rows = conn.execute(
        sa.select(service_principal_names.c.object_id, service_principal_names.c.name)
        .where(service_principal_names.c.object_id.in_(list(object_ids)))
        .order_by(service_principal_names.c.name_key)
    ).all()
    for row in rows:
        found.setdefault(row.object_id, []).append(row.name)
    return found


_BY_NAME = (
    sa.select(principals)
    .join(service_principal_names, service_principal_names.c.object_id == principals.c.object_id)
    .where(
        service_principal_names.c.tenant_id == sa.bindparam("tenant_id"),
        service_principal_names.c.name_key == sa.bindparam("name_key"),
    )
)


def lookup_by_name(db: Database, tenant_id: str, name: str) -> Principal | None:
    """The principal of ``tenant_id`` one of whose identifier URIs is ``name`` (compared by
    ``name_key``); outside a transaction, as the token endpoint asks it."""
    row = db.query_one(_BY_NAME, {"tenant_id": tenant_id, "name_key": name_key(name)})
    return _from_row(row) if row is not None else None


def in_tenant(
    conn: sa.Connection, tenant_id: str, condition: Any, after: str | None, limit: int
) -> list[Principal]:
    """Principals of ``tenant_id`` matching ``condition`` (a SQL expression over ``principals``
    and ``service_principal_names``), by object id after ``after``, at most ``limit``."""
    query = sa.select(principals).where(principals.c.tenant_id == tenant_id, condition)
    if after is not None:
        query = query.where(principals.c.object_id > after)
    rows = conn.execute(query.order_by(principals.c.object_id).limit(limit)).all()
    return [_from_row(r) for r in rows]


def has_name(value: str) -> Any:
    """SQL: the principal holds the service principal name ``value`` (its appId or an identifier URI)."""
    stored = sa.exists().where(
        service_principal_names.c.object_id == principals.c.object_id,
        service_principal_names.c.name_key == name_key(value),
    )
    return sa.or_(principals.c.app_id == value.lower(), stored)
