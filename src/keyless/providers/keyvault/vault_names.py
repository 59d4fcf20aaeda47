"""Vault names: Azure's name rule, the global name registry (``key_vaults``) and the errors about
names, live vaults and soft-deleted ones.

Vault names are global, as ``{name}.vault.azure.net`` is: one ``key_vaults`` row per lower-cased
name, held by a live vault (``deleted_at`` NULL) or by a soft-deleted one until it is purged or
its ``scheduled_purge_at`` passes (then the name is free again and the row, with the vault's keys
and secrets, is removed the next time anyone asks about that name).

Wire facts (status, code, message), with their sources:

- 400 ``VaultNameNotValid`` "The vault name '{n}' is invalid. A vault's name must be between 3-24
  alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not
  contain consecutive hyphens. Follow this link for more information: https://go.microsoft.com/
  fwlink/?linkid=2147742" (deployment error quoted in OfficeDev/microsoft-teams-apps-
  newemployeeonboarding#28; the rule also in MicrosoftDocs/azure-docs#92981, resource-name-rules).
- 409 ``VaultAlreadyExists`` "The vault name '{n}' is already in use. Vault names are globally
  unique ..." (Esri/arcgis-gitops#174, microsoft/azure_arc#3378).
- 409 ``ConflictError`` "A vault with the same name already exists in deleted state. You need to
  either recover or purge existing key vault. ..." (alan-turing-institute/data-safe-haven#2523).
- 400 ``SoftDeletedVaultDoesNotExist`` "A soft deleted vault with the given name does not exist.
  Ensure that the name for the vault that is being attempted to recover is in a recoverable state."
  (Terraform logs quoted in several public repositories; also what Azure answers when the recover
  PUT names another resource group).
- ``MethodNotAllowed`` "Operation 'DeletedVaultPurge' is not allowed." when purge protection is on
  (microsoft/AzureTRE#1446 az output; Azure/azure-sdk-tools#9329). The status is not printed by
  those clients; 405 is what the code names.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.resource_types import NameRule
from keyless.store.tables import key_vaults, kv_objects, kv_versions

# Start with a letter, end with a letter or digit, 3-24 characters, no "--" anywhere.
VAULT_NAME = re.compile(r"(?!.*--)[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]")
_DAY = 86400.0


def name_not_valid(name: str) -> errors.ArmError:
    return errors.ArmError(
        400,
        "VaultNameNotValid",
        f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. "
        "The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens. "
        "Follow this link for more information: https://go.microsoft.com/fwlink/?linkid=2147742",
    )


def already_exists_message(name: str) -> str:
    return (
        f"The vault name '{name}' is already in use. Vault names are globally unique so it is possible that "
        "the name is already taken. If you are sure that the vault name was not taken then it is possible "
        "that a vault with the same name was recently deleted but not purged after being placed in a "
        "recoverable state. If the vault is in a recoverable state then the vault will need to be purged "
        "before reusing the name. For more information about VaultAlreadyExists, soft delete and purging a "
        "vault follow this link https://go.microsoft.com/fwlink/?linkid=2147740."
    )


def already_exists(name: str) -> errors.ArmError:
    return errors.ArmError(409, "VaultAlreadyExists", already_exists_message(name))


def exists_in_deleted_state() -> errors.ArmError:
    return errors.ArmError(
        409,
        "ConflictError",
        "A vault with the same name already exists in deleted state. You need to either recover or purge "
        "existing key vault. Follow this link https://go.microsoft.com/fwlink/?linkid=2149745 for more "
        "information on soft delete.",
    )


def soft_deleted_vault_does_not_exist() -> errors.ArmError:
    return errors.ArmError(
        400,
        "SoftDeletedVaultDoesNotExist",
        "A soft deleted vault with the given name does not exist. Ensure that the name for the vault that is "
        "being attempted to recover is in a recoverable state.",
    )


def purge_not_allowed() -> errors.ArmError:
    return errors.ArmError(405, "MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.")


class VaultNameRule(NameRule):
    """Azure's vault name rule; a name outside it gets ``VaultNameNotValid`` (not ARM's generic error)."""

    def __init__(self) -> None:
        super().__init__(VAULT_NAME, "")

    def check(self, name: str, type_name: str) -> None:
        if not is_valid_name(name):
            raise name_not_valid(name)


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a vault name (3-24 characters, so the check is bounded)."""
    return len(name) <= 24 and VAULT_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class VaultName:
    """One ``key_vaults`` row: who holds the name, and the last document if it is soft-deleted."""

    name: str
    resource_key: str
    resource_id: str
    location: str
    deleted_at: float | None
    scheduled_purge_at: float | None
    deleted_document: dict[str, Any] | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


def _row(row: Any) -> VaultName:
    return VaultName(
        name=row.name,
        resource_key=row.resource_key,
        resource_id=row.resource_id,
        location=row.location,
        deleted_at=row.deleted_at,
        scheduled_purge_at=row.scheduled_purge_at,
        deleted_document=orjson.loads(row.deleted_document) if row.deleted_document else None,
    )


def lookup(conn: sa.Connection, name: str, *, for_update: bool = False) -> VaultName | None:
    """The holder of ``name`` (any case), after dropping a soft-deleted vault whose time is up."""
    query = sa.select(key_vaults).where(key_vaults.c.name == name.lower())
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    found = _row(row)
    if found.deleted and found.scheduled_purge_at is not None and found.scheduled_purge_at <= time.time():
        purge(conn, found.name)
        return None
    return found


def claim(conn: sa.Connection, name: str, resource_key: str, resource_id: str, location: str) -> None:
    """Take ``name`` for a new live vault (the caller checked it is free): inside its write
    transaction, so a concurrent claim of the same name fails on the primary key and nothing is
    written."""
    try:
        conn.execute(
            key_vaults.insert().values(
                name=name.lower(), resource_key=resource_key, resource_id=resource_id, location=location
            )
        )
    except sa.exc.IntegrityError:  # another create took the name first; this one rolls back
        raise already_exists(name) from None


def restore(conn: sa.Connection, name: str) -> None:
    """A recovered vault is live again under its old row."""
    conn.execute(
        key_vaults.update()
        .where(key_vaults.c.name == name.lower())
        .values(deleted_at=None, scheduled_purge_at=None, deleted_document=None)
    )


def soft_delete(conn: sa.Connection, name: str, document: dict[str, Any], retention_days: int) -> None:
    """Mark the live vault deleted, keeping its last document (``deletedVaults`` and recover read it);
    its keys and secrets stay in ``kv_objects``/``kv_versions``."""
    now = time.time()
    conn.execute(
        key_vaults.update()
        .where(key_vaults.c.name == name.lower())
        .values(
            deleted_at=now,
            scheduled_purge_at=now + retention_days * _DAY,
            deleted_document=orjson.dumps(document).decode(),
        )
    )


def purge(conn: sa.Connection, name: str) -> None:
    """Free ``name`` for good: the row and every key and secret (all versions) of that vault."""
    vault = name.lower()
    conn.execute(kv_versions.delete().where(kv_versions.c.vault == vault))
    conn.execute(kv_objects.delete().where(kv_objects.c.vault == vault))
    conn.execute(key_vaults.delete().where(key_vaults.c.name == vault))


def deleted_in(conn: sa.Connection, subscription_id: str) -> list[VaultName]:
    """The soft-deleted vaults of a subscription whose time is not up, by name."""
    prefix = f"/subscriptions/{subscription_id.lower()}/"
    rows = conn.execute(
        sa.select(key_vaults)
        .where(
            key_vaults.c.deleted_at.is_not(None),
            key_vaults.c.scheduled_purge_at > time.time(),
            key_vaults.c.resource_key.startswith(prefix, autoescape=True),
        )
        .order_by(key_vaults.c.name)
    ).all()
    return [_row(r) for r in rows]
