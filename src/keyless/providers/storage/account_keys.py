"""A storage account's two shared keys: made, sealed at rest, listed and regenerated.

- A key is 64 random bytes (``os.urandom``); its ``value`` on the wire is standard base64 (88
  characters), as Azure's are and as the SDKs expect (``SharedKeyCredentialPolicy`` base64-decodes
  the key before HMAC-SHA256).
- At rest each key is ``Sealer.seal(key, purpose)`` with ``purpose`` =
  ``keyless.storage.account-key/{account}/{key1|key2}``: a sealed key copied into another account's
  row, or into the other slot, does not open.
- ``listKeys`` → ``{"keys": [{"keyName": "key1", "value", "permissions": "FULL", "creationTime"},
  key2]}``. The spec's ``KeyPermission`` enum is ``Read``/``Full`` (example
  ``StorageAccountListKeys.json`` shows ``Full``); the live service and ``az storage account keys
  list`` print ``FULL``, which the SDK's case-insensitive enum accepts. ``creationTime``
  (``StorageAccountKey.creationTime``, API 2021-01-01 and later).
- ``regenerateKey`` body ``{"keyName": "key1"|"key2"}`` (case-insensitive here) → the same list
  with the new value; anything else is 400 ``InvalidValuesForRequestParameters`` "Values for
  request parameters are invalid: keyName." (the storage RP's wording for a bad parameter, as in
  Azure/azure-cli#27899; the exact text for this field was not found). ``kerb1``/``kerb2`` (Azure
  Files Kerberos keys) are not emulated.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import iso_time
from keyless.sealing import Sealer
from keyless.store.tables import storage_accounts

KEY_BYTES = 64
KEY_NAMES = ("key1", "key2")


def purpose(account: str, key_name: str) -> str:
    """The associated data a key is sealed under: binds the account and the slot."""
    return f"keyless.storage.account-key/{account}/{key_name}"


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def new_row(sealer: Sealer, name: str) -> dict[str, Any]:
    """The key columns of a new account's ``storage_accounts`` row (two fresh keys, sealed)."""
    now = time.time()
    return {
        "key1": sealer.seal(new_key(), purpose(name, "key1")),
        "key2": sealer.seal(new_key(), purpose(name, "key2")),
        "key1_created_at": now,
        "key2_created_at": now,
    }


def bad_key_name() -> errors.ArmError:
    return errors.ArmError(
        400,
        "InvalidValuesForRequestParameters",
        "Values for request parameters are invalid: keyName.",
        target="keyName",
    )


def key_name_of(payload: dict[str, Any]) -> str:
    """``key1`` or ``key2`` from a regenerateKey body, or 400."""
    value = payload.get("keyName")
    if isinstance(value, str) and value.lower() in KEY_NAMES:
        return value.lower()
    raise bad_key_name()


_SELECT = sa.select(
    storage_accounts.c.key1,
    storage_accounts.c.key2,
    storage_accounts.c.key1_created_at,
    storage_accounts.c.key2_created_at,
)


def read_keys(conn: sa.Connection, sealer: Sealer, name: str) -> list[tuple[str, bytes, float]]:
    """``[(key name, raw key, created at)]`` for key1 and key2 (empty if the row is missing)."""
    row = conn.execute(_SELECT.where(storage_accounts.c.name == name)).first()
    if row is None:
        return []
    return [
        ("key1", sealer.open(row.key1, purpose(name, "key1")), float(row.key1_created_at)),
        ("key2", sealer.open(row.key2, purpose(name, "key2")), float(row.key2_created_at)),
    ]


def regenerate(conn: sa.Connection, sealer: Sealer, name: str, key_name: str) -> float:
    """Replace one key with a fresh one; returns its creation time (epoch seconds)."""
    now = time.time()
    conn.execute(
        storage_accounts.update()
        .where(storage_accounts.c.name == name)
        .values(
            {
                key_name: sealer.seal(new_key(), purpose(name, key_name)),
                f"{key_name}_created_at": now,
            }
        )
    )
    return now


def render(keys: list[tuple[str, bytes, float]]) -> dict[str, Any]:
    """The ``StorageAccountListKeysResult`` body."""
    return {
        "keys": [
            {
                "keyName": key_name,
                "value": base64.b64encode(raw).decode(),
                "permissions": "FULL",
                "creationTime": iso_time(created),
            }
            for key_name, raw, created in keys
        ]
    }


def key_creation_time(created: dict[str, float]) -> dict[str, str]:
    """``properties.keyCreationTime`` ``{key1, key2}`` as ISO times."""
    return {k: iso_time(v) for k, v in created.items()}
