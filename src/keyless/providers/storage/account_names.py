"""Storage account names: Azure's rule, the global registry (``storage_accounts``) and the errors.

Names are global, as ``{name}.blob.core.windows.net`` is: one ``storage_accounts`` row per name,
claimed in the transaction that creates the account (with its two sealed keys) and removed in the
one that deletes it, so the name is free again at once (Keyless keeps no deleted accounts).

Wire facts (status, code, message), from MicrosoftDocs azure-docs
``articles/azure-resource-manager/troubleshooting/error-storage-account-name.md`` and deployment
errors quoted in pulumi/templates#274, Azure/azure-cli#10020:

- 400 ``AccountNameInvalid`` "{name} is not a valid storage account name. Storage account name
  must be between 3 and 24 characters in length and use numbers and lower-case letters only."
  (with ``target`` the name);
- 409 ``StorageAccountAlreadyTaken`` "The storage account named {name} is already taken." (held
  by an account in another subscription);
- 409 ``StorageAccountInAnotherResourceGroup`` "The account {name} is already in another resource
  group in this subscription."
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.resource_types import NameRule
from keyless.store.tables import blob_blocks, blob_containers, blobs, storage_accounts

# 3-24 characters, lower-case letters and digits only (fullmatch: no trailing newline passes).
ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


def name_invalid_message(name: str) -> str:
    return (
        f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
        "characters in length and use numbers and lower-case letters only."
    )


def name_invalid(name: str) -> errors.ArmError:
    return errors.ArmError(400, "AccountNameInvalid", name_invalid_message(name), target=name)


def taken_message(name: str) -> str:
    return f"The storage account named {name} is already taken."


def already_taken(name: str) -> errors.ArmError:
    return errors.ArmError(409, "StorageAccountAlreadyTaken", taken_message(name), target=name)


def in_another_group(name: str) -> errors.ArmError:
    return errors.ArmError(
        409,
        "StorageAccountInAnotherResourceGroup",
        f"The account {name} is already in another resource group in this subscription.",
        target=name,
    )


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a storage account name (bounded: at most 24 characters)."""
    return len(name) <= 24 and ACCOUNT_NAME.fullmatch(name) is not None


class AccountNameRule(NameRule):
    """Azure's storage account name rule; outside it, ``AccountNameInvalid`` (not ARM's generic error)."""

    def __init__(self) -> None:
        super().__init__(ACCOUNT_NAME, "")

    def check(self, name: str, type_name: str) -> None:
        if not is_valid_name(name):
            raise name_invalid(name[:64])


@dataclass(frozen=True)
class AccountName:
    """One ``storage_accounts`` row, without the keys."""

    name: str
    resource_key: str
    resource_id: str
    location: str

    @property
    def subscription_key(self) -> str:
        """``/subscriptions/{id}`` lower-cased, the prefix of ``resource_key``."""
        return "/".join(self.resource_key.split("/")[:3])


def lookup(conn: sa.Connection, name: str, *, for_update: bool = False) -> AccountName | None:
    """The holder of ``name`` (names are lower-case; any other spelling is held by no one)."""
    query = sa.select(
        storage_accounts.c.name,
        storage_accounts.c.resource_key,
        storage_accounts.c.resource_id,
        storage_accounts.c.location,
    ).where(storage_accounts.c.name == name)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else AccountName(row.name, row.resource_key, row.resource_id, row.location)


def check_free(conn: sa.Connection, name: str, resource_key: str) -> None:
    """Raise the 409 Azure gives when ``name`` is held by an account other than ``resource_key``:
    ``StorageAccountInAnotherResourceGroup`` within the same subscription, else
    ``StorageAccountAlreadyTaken``."""
    holder = lookup(conn, name, for_update=True)
    if holder is None or holder.resource_key == resource_key:
        return
    if resource_key.startswith(holder.subscription_key + "/"):
        raise in_another_group(name)
    raise already_taken(name)


def claim(conn: sa.Connection, values: dict[str, Any]) -> None:
    """Insert the account's row (``values``: every ``storage_accounts`` column) inside its create
    transaction. A concurrent create of the same name fails on the primary key (PostgreSQL waits for
    the winner to commit); the savepoint keeps the transaction usable, so the error names the winner
    as ``check_free`` does, and the caller's transaction rolls back."""
    name = str(values["name"])
    try:
        with conn.begin_nested():
            conn.execute(storage_accounts.insert().values(**values))
    except sa.exc.IntegrityError:
        check_free(conn, name, str(values["resource_key"]))
        raise already_taken(name) from None


# Called with (conn, account name) inside the delete transaction, BEFORE the account's blob rows
# go: the blob data plane registers here to note the files it must remove (see ``release``).
DeletionHook = Callable[[sa.Connection, str], None]


def release(conn: sa.Connection, name: str, hooks: list[DeletionHook]) -> None:
    """Free ``name``: run ``hooks``, then delete the account's uncommitted blocks, blobs, containers
    and its ``storage_accounts`` row (keys included), all in the caller's transaction."""
    for hook in hooks:
        hook(conn, name)
    conn.execute(blob_blocks.delete().where(blob_blocks.c.account == name))
    conn.execute(blobs.delete().where(blobs.c.account == name))
    conn.execute(blob_containers.delete().where(blob_containers.c.account == name))
    conn.execute(storage_accounts.delete().where(storage_accounts.c.name == name))
