"""Backups of keys and secrets: every version of one object in an opaque blob.

A real backup is opaque and only Azure opens it (keyvault-secrets.md §1 "Backups"); ours is the
versions' documents and secret parts as JSON, sealed under the root key, so only the Keyless
instance that made it (or a replica sharing its root key) restores it, into any of its vaults.
Restore onto a name in use (live or soft-deleted) is a 409 (the SDK docstring: ResourceExistsError).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from keyless.providers.keyvault import crypto, errors
from keyless.providers.keyvault import store as kv
from keyless.providers.keyvault.access import Vault
from keyless.sealing import SealedValueError, Sealer

MAX_VERSIONS = 500
_MAX_PART = 64 * 1024  # base64 characters of one version's secret part (a 25k secret, a key's DER)
PREFIX = b"KeylessKeyVaultBackupV1."


def seal(sealer: Sealer, kind: str, obj: kv.VaultObject, versions: list[kv.Version]) -> bytes:
    if len(versions) > MAX_VERSIONS:
        raise errors.bad_parameter(f"The object has more than {MAX_VERSIONS} versions to back up.")
    payload = {
        "kind": kind,
        "name": obj.name,
        "rotation_policy": obj.rotation_policy,
        "versions": [
            {
                "version": v.version,
                "created_at": v.created_at,
                "document": v.document,
                "secret": crypto.b64url_encode(
                    sealer.open(v.sealed, kv.seal_purpose(v.vault, kind, v.name_key, v.version))
                ),
            }
            for v in versions
        ],
    }
    return PREFIX + sealer.seal(orjson.dumps(payload), f"keyvault-backup:{kind}").encode()


def open_blob(sealer: Sealer, kind: str, blob: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    noun = "key" if kind == kv.KEY else "secret"
    try:
        if not blob.startswith(PREFIX):
            raise ValueError
        payload = orjson.loads(sealer.open(blob[len(PREFIX) :].decode("ascii"), f"keyvault-backup:{kind}"))
        versions = payload["versions"]
        if payload.get("kind") != kind or not isinstance(versions, list) or not versions:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, SealedValueError, orjson.JSONDecodeError):
        raise errors.bad_parameter(
            f"Backup blob contains invalid or corrupt version or is not a {noun} backup."
        ) from None
    return payload, versions


def restore_versions(
    conn: sa.Connection,
    sealer: Sealer,
    vault: Vault,
    kind: str,
    obj: dict[str, Any],
    versions: list[dict[str, Any]],
) -> kv.VaultObject:
    name = obj["name"]
    existing: kv.VaultObject | None = None
    for entry in sorted(versions, key=lambda e: e["created_at"]):
        secret = crypto.b64url_decode(entry["secret"], "value", max_chars=_MAX_PART)
        sealed = sealer.seal(secret, kv.seal_purpose(vault.name, kind, name.lower(), entry["version"]))
        kv.add_version(
            conn,
            vault.name,
            kind,
            name,
            entry["version"],
            entry["document"],
            sealed,
            entry["created_at"],
            existing=existing,
        )
        existing = kv.get_object(conn, vault.name, kind, name)
    assert existing is not None
    return existing
