"""Keys and secrets of a vault in the database: objects by name, their versions, soft delete.

A version's ``document`` holds what may be shown (attributes, tags, contentType, a key's public
JWK and key_ops); ``sealed`` what may not (private key material, a secret's value), sealed under
the root key with a purpose naming the vault, kind, name and version, so a sealed value moved to
another row never opens. Every function takes an open connection: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from keyless.store.db import Database
from keyless.store.tables import key_vaults, kv_objects, kv_versions, resources

KEY = "key"
SECRET = "secret"  # noqa: S105 (a kind of object, not a secret)


@dataclass(frozen=True)
class VaultObject:
    """A key or secret by name: its latest version, and soft-delete state."""

    vault: str
    kind: str
    name_key: str
    name: str
    latest_version: str
    deleted_at: float | None
    scheduled_purge_at: float | None
    rotation_policy: dict[str, Any] | None
    next_rotation_at: float | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True)
class Version:
    """One version: ``document`` as stored (JSON), ``sealed`` the root-key-sealed secret part."""

    vault: str
    kind: str
    name_key: str
    version: str
    created_at: float
    document: dict[str, Any]
    sealed: str


def new_version() -> str:
    """A version id as Key Vault makes them: 32 lower-case hex characters."""
    return uuid.uuid4().hex


def seal_purpose(vault: str, kind: str, name_key: str, version: str) -> str:
    return f"keyvault:{vault}:{kind}:{name_key}:{version}"


def _object(row: Any) -> VaultObject:
    policy = row.rotation_policy
    return VaultObject(
        vault=row.vault,
        kind=row.kind,
        name_key=row.name_key,
        name=row.name,
        latest_version=row.latest_version,
        deleted_at=row.deleted_at,
        scheduled_purge_at=row.scheduled_purge_at,
        rotation_policy=orjson.loads(policy) if policy else None,
        next_rotation_at=row.next_rotation_at,
    )


def _version(row: Any) -> Version:
    return Version(
        vault=row.vault,
        kind=row.kind,
        name_key=row.name_key,
        version=row.version,
        created_at=row.created_at,
        document=orjson.loads(row.document),
        sealed=row.sealed,
    )


def _object_key(vault: str, kind: str, name_key: str) -> Any:
    return sa.and_(kv_objects.c.vault == vault, kv_objects.c.kind == kind, kv_objects.c.name_key == name_key)


def _version_key(vault: str, kind: str, name_key: str) -> Any:
    return sa.and_(
        kv_versions.c.vault == vault, kv_versions.c.kind == kind, kv_versions.c.name_key == name_key
    )


def get_object(conn: sa.Connection, vault: str, kind: str, name: str) -> VaultObject | None:
    row = conn.execute(sa.select(kv_objects).where(_object_key(vault, kind, name.lower()))).first()
    return _object(row) if row is not None else None


def get_version(conn: sa.Connection, vault: str, kind: str, name_key: str, version: str) -> Version | None:
    row = conn.execute(
        sa.select(kv_versions).where(_version_key(vault, kind, name_key), kv_versions.c.version == version)
    ).first()
    return _version(row) if row is not None else None


def add_version(
    conn: sa.Connection,
    vault: str,
    kind: str,
    name: str,
    version: str,
    document: dict[str, Any],
    sealed: str,
    now: float,
    *,
    existing: VaultObject | None,
) -> None:
    """Store a new version and make it the latest; creates the object on its first version.

    ``existing`` is what the caller read in this transaction (None: no object yet; the caller
    has already refused a soft-deleted one).
    """
    conn.execute(
        sa.insert(kv_versions).values(
            vault=vault,
            kind=kind,
            name_key=name.lower(),
            version=version,
            created_at=now,
            document=orjson.dumps(document).decode(),
            sealed=sealed,
        )
    )
    if existing is None:
        conn.execute(
            sa.insert(kv_objects).values(
                vault=vault, kind=kind, name_key=name.lower(), name=name, latest_version=version
            )
        )
    else:
        conn.execute(
            sa.update(kv_objects).where(_object_key(vault, kind, name.lower())).values(latest_version=version)
        )


def replace_document(conn: sa.Connection, version: Version, document: dict[str, Any]) -> None:
    conn.execute(
        sa.update(kv_versions)
        .where(_version_key(version.vault, version.kind, version.name_key))
        .where(kv_versions.c.version == version.version)
        .values(document=orjson.dumps(document).decode())
    )


def set_rotation(
    conn: sa.Connection, obj: VaultObject, policy: dict[str, Any] | None, next_rotation_at: float | None
) -> None:
    conn.execute(
        sa.update(kv_objects)
        .where(_object_key(obj.vault, obj.kind, obj.name_key))
        .values(
            rotation_policy=orjson.dumps(policy).decode() if policy is not None else None,
            next_rotation_at=next_rotation_at,
        )
    )


def set_deleted(
    conn: sa.Connection, obj: VaultObject, deleted_at: float | None, scheduled_purge_at: float | None
) -> None:
    """Soft-delete (both set) or recover (both None) an object and every version of it."""
    conn.execute(
        sa.update(kv_objects)
        .where(_object_key(obj.vault, obj.kind, obj.name_key))
        .values(deleted_at=deleted_at, scheduled_purge_at=scheduled_purge_at)
    )


def purge(conn: sa.Connection, obj: VaultObject) -> None:
    conn.execute(sa.delete(kv_versions).where(_version_key(obj.vault, obj.kind, obj.name_key)))
    conn.execute(sa.delete(kv_objects).where(_object_key(obj.vault, obj.kind, obj.name_key)))


def purge_expired(conn: sa.Connection, now: float) -> int:
    """Purge every soft-deleted object whose purge date has passed; how many were purged."""
    rows = conn.execute(
        sa.select(kv_objects).where(
            kv_objects.c.scheduled_purge_at.is_not(None), kv_objects.c.scheduled_purge_at <= now
        )
    ).all()
    for row in rows:
        purge(conn, _object(row))
    return len(rows)


def list_objects(
    conn: sa.Connection, vault: str, kind: str, *, deleted: bool, after: str | None, limit: int
) -> list[VaultObject]:
    """Live (or soft-deleted) objects by name, from just after ``after`` (a lower-cased name)."""
    query = sa.select(kv_objects).where(kv_objects.c.vault == vault, kv_objects.c.kind == kind)
    query = query.where(
        kv_objects.c.deleted_at.is_not(None) if deleted else kv_objects.c.deleted_at.is_(None)
    )
    if after is not None:
        query = query.where(kv_objects.c.name_key > after)
    rows = conn.execute(query.order_by(kv_objects.c.name_key).limit(limit)).all()
    return [_object(row) for row in rows]


def list_versions(conn: sa.Connection, obj: VaultObject, *, after: str | None, limit: int) -> list[Version]:
    """Versions of ``obj`` in version-id order, from just after version ``after``."""
    query = sa.select(kv_versions).where(_version_key(obj.vault, obj.kind, obj.name_key))
    if after is not None:
        query = query.where(kv_versions.c.version > after)
    rows = conn.execute(query.order_by(kv_versions.c.version).limit(limit)).all()
    return [_version(row) for row in rows]


def all_versions(conn: sa.Connection, obj: VaultObject) -> list[Version]:
    rows = conn.execute(
        sa.select(kv_versions)
        .where(_version_key(obj.vault, obj.kind, obj.name_key))
        .order_by(kv_versions.c.created_at, kv_versions.c.version)
    ).all()
    return [_version(row) for row in rows]


def due_for_rotation(conn: sa.Connection, now: float, limit: int) -> list[VaultObject]:
    """Live keys whose rotation policy says they are due, oldest first."""
    rows = conn.execute(
        sa.select(kv_objects)
        .where(
            kv_objects.c.kind == KEY,
            kv_objects.c.deleted_at.is_(None),
            kv_objects.c.next_rotation_at.is_not(None),
            kv_objects.c.next_rotation_at <= now,
        )
        .order_by(kv_objects.c.next_rotation_at)
        .limit(limit)
    ).all()
    return [_object(row) for row in rows]


# The hot-path lookup of a live vault by lower-cased name, with its resource's ETag and document in
# the same read (for ``Database.query_one``): the data plane parses a document only when its ETag moved.
_VAULT_BY_NAME = (
    sa.select(
        key_vaults.c.name,
        key_vaults.c.resource_id,
        key_vaults.c.location,
        resources.c.etag,
        resources.c.document,
    )
    .join(resources, resources.c.id_key == key_vaults.c.resource_key)
    .where(key_vaults.c.name == sa.bindparam("name"), key_vaults.c.deleted_at.is_(None))
)


def vault_query() -> sa.Select[Any]:
    """A live vault's name, resource id, location, resource ETag and resource document (JSON)."""
    return _VAULT_BY_NAME


_OBJECT_BY_KEY = sa.select(kv_objects).where(
    kv_objects.c.vault == sa.bindparam("vault"),
    kv_objects.c.kind == sa.bindparam("kind"),
    kv_objects.c.name_key == sa.bindparam("name_key"),
)
_VERSION_BY_KEY = sa.select(kv_versions).where(
    kv_versions.c.vault == sa.bindparam("vault"),
    kv_versions.c.kind == sa.bindparam("kind"),
    kv_versions.c.name_key == sa.bindparam("name_key"),
    kv_versions.c.version == sa.bindparam("version"),
)


def read_object(db: Database, vault: str, kind: str, name: str) -> VaultObject | None:
    """``get_object`` on the hot read path: one ``Database.query_one``, no transaction."""
    row = db.query_one(_OBJECT_BY_KEY, {"vault": vault, "kind": kind, "name_key": name.lower()})
    return _object(row) if row is not None else None


def read_version(db: Database, vault: str, kind: str, name_key: str, version: str) -> Version | None:
    """``get_version`` on the hot read path: one ``Database.query_one``, no transaction."""
    row = db.query_one(
        _VERSION_BY_KEY, {"vault": vault, "kind": kind, "name_key": name_key, "version": version}
    )
    return _version(row) if row is not None else None


_LIVE_VERSION = (
    sa.select(
        kv_objects,
        kv_versions.c.version,
        kv_versions.c.created_at,
        kv_versions.c.document,
        kv_versions.c.sealed,
    )
    .join(
        kv_versions,
        sa.and_(
            kv_versions.c.vault == kv_objects.c.vault,
            kv_versions.c.kind == kv_objects.c.kind,
            kv_versions.c.name_key == kv_objects.c.name_key,
        ),
    )
    .where(
        kv_objects.c.vault == sa.bindparam("vault"),
        kv_objects.c.kind == sa.bindparam("kind"),
        kv_objects.c.name_key == sa.bindparam("name_key"),
        kv_versions.c.version == sa.func.coalesce(sa.bindparam("version"), kv_objects.c.latest_version),
    )
)


def read_object_version(
    db: Database, vault: str, kind: str, name: str, version: str | None
) -> tuple[VaultObject | None, Version | None]:
    """An object and one of its versions (``None``: the latest) in one read: the hot path of every
    get and cryptographic operation. (object, None) when the object exists but not that version."""
    row = db.query_one(
        _LIVE_VERSION, {"vault": vault, "kind": kind, "name_key": name.lower(), "version": version}
    )
    if row is None:
        return read_object(db, vault, kind, name), None
    obj = _object(row)
    found = Version(
        vault=row.vault,
        kind=row.kind,
        name_key=row.name_key,
        version=row.version,
        created_at=row.created_at,
        document=orjson.loads(row.document),
        sealed=row.sealed,
    )
    return obj, found
