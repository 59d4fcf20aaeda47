"""The account key of every Media Services account, and the customer-managed key that wraps it.

Key hierarchy (concept-use-customer-managed-keys-byok.md, media.md §3): each account has one
256-bit account key for its whole life. Content keys, the symmetric keys of content key policies
and job input URLs are encrypted under it (``seal``/``open``). With ``SystemKey`` the account key
is sealed under Keyless's root key; with ``CustomerKey`` it is wrapped by the customer's RSA key
through Key Vault (``customer_keys``) with the account's identity, and that wrapping is sealed under
the root key as the second layer. The row lives in ``media_accounts``.

The unwrapped key of a CustomerKey account is held in memory (bounded) only while access holds:
when Key Vault refuses, the row turns ``Inaccessible`` and every replica drops its copy on its next
request (it reads the row first). ``monitor`` re-checks and follows new key versions.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyless.arm import errors
from keyless.providers.media.account_properties import AccountSettings, IdentityRef, KeyIdentifier
from keyless.providers.media.account_render import set_encryption_state
from keyless.providers.media.customer_keys import FORBIDDEN, CustomerKeyError, KeyVaultClient
from keyless.sealing import SealedValueError, Sealer
from keyless.store.db import Database
from keyless.store.tables import media_accounts

_ROW = sa.select(media_accounts).where(media_accounts.c.resource_key == sa.bindparam("resource_key"))
ACCESSIBLE = "Accessible"
INACCESSIBLE = "Inaccessible"
_CACHE_LIMIT = 1024
_NONCE = 12


def purpose(resource_key: str) -> str:
    return f"media-account-key:{resource_key}"


def forbidden(detail: str | None = None) -> errors.ArmError:
    """Azure's answer while the customer key is out of reach: 400 ``BadRequest`` "Access to the
    Customer Key was forbidden." (the text az's ams ``encryption.py`` catches). Keyless adds why."""
    return errors.ArmError(400, "BadRequest", FORBIDDEN + (f" {detail}" if detail else ""))


@dataclass(frozen=True)
class KeyRow:
    resource_key: str
    resource_id: str
    key_type: str
    account_key: str
    wrapping_key_id: str | None
    generation: int
    key_status: str
    key_status_reason: str | None


@dataclass
class KeyPlan:
    """What an account write will store of its key (worked out before the write, asynchronously)."""

    key_type: str
    account_key: str  # sealed value for the row
    wrapping_key_id: str | None
    plain: bytes
    # The row's generation the plan was made from (None: there was no row). The write stores the
    # plan only if the row is still at it, so two writes racing never replace the account key.
    base_generation: int | None = None
    changes: bool = True  # False: the key stays as it is (the generation is still checked)


def principal_for(identity: dict[str, Any] | None, ref: IdentityRef, what: str) -> str:
    """The object id of the identity ``ref`` names among the account's ``identity`` property.

    400 ``BadRequest`` when the account has no system-assigned identity, or the user-assigned one
    is not assigned to the account."""
    identity = identity or {}
    if ref.system:
        principal = identity.get("principalId")
        if not principal:
            raise errors.ArmError(
                400,
                "BadRequest",
                f"The {what} uses the account's system-assigned managed identity, but the account has none.",
            )
        return str(principal)
    assigned = identity.get("userAssignedIdentities") or {}
    for uami_id, entry in assigned.items():
        if uami_id.lower() == (ref.user_assigned_id or "").lower() and isinstance(entry, dict):
            return str(entry.get("principalId"))
    raise errors.ArmError(
        400,
        "BadRequest",
        f"The user-assigned identity '{ref.user_assigned_id}' used by the {what} is not assigned to the "
        "Media Services account.",
    )


class AccountKeyring:
    """Account keys: created, (re)wrapped, opened, cached. All methods are safe on the event loop:
    database calls are short, and Key Vault work happens in that service's worker threads."""

    def __init__(self, db: Database, sealer: Sealer, vault: KeyVaultClient) -> None:
        self.db = db
        self.sealer = sealer
        self.vault = vault
        self._plain: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # --- rows ------------------------------------------------------------------------------

    def row(self, resource_key: str, conn: sa.Connection | None = None) -> KeyRow | None:
        params = {"resource_key": resource_key}
        found = conn.execute(_ROW, params).first() if conn is not None else self.db.query_one(_ROW, params)
        if found is None:
            return None
        return KeyRow(
            found.resource_key,
            found.resource_id,
            found.key_type,
            found.account_key,
            found.wrapping_key_id,
            found.generation,
            found.key_status,
            found.key_status_reason,
        )

    # --- the cache -------------------------------------------------------------------------

    def remember(self, resource_key: str, plain: bytes) -> None:
        with self._lock:
            if resource_key not in self._plain and len(self._plain) >= _CACHE_LIMIT:
                self._plain.pop(next(iter(self._plain)))
            self._plain[resource_key] = plain

    def forget(self, resource_key: str) -> None:
        with self._lock:
            self._plain.pop(resource_key, None)

    def _cached(self, resource_key: str) -> bytes | None:
        with self._lock:
            return self._plain.get(resource_key)

    # --- planning a write ------------------------------------------------------------------

    async def _open_current(
        self, row: KeyRow, old: AccountSettings | None, identity: dict[str, Any] | None
    ) -> bytes:
        """The plaintext account key of an existing account (unwrapping through Key Vault if needed)."""
        if row.key_type == "SystemKey":
            return self.sealer.open(row.account_key, purpose(row.resource_key))
        cached = self._cached(row.resource_key) if row.key_status == ACCESSIBLE else None
        if cached is not None:
            return cached
        if old is None or old.key_id is None or old.encryption_identity is None or not row.wrapping_key_id:
            raise forbidden()
        principal = principal_for(identity, old.encryption_identity, "account encryption")
        wrapped = self.sealer.open(row.account_key, purpose(row.resource_key))
        version = row.wrapping_key_id.rstrip("/").rsplit("/", 1)[-1]
        try:
            plain = await self.vault.unwrap(row.resource_id, principal, old.key_id, version, wrapped)
        except CustomerKeyError as exc:
            raise forbidden(exc.reason) from exc
        self.remember(row.resource_key, plain)
        return plain

    async def plan(
        self,
        service_id: str,
        resource_key: str,
        new: AccountSettings,
        new_identity: dict[str, Any] | None,
        old: AccountSettings | None,
        old_identity: dict[str, Any] | None,
    ) -> KeyPlan:
        """What the write of ``new`` settings must store of the key (``changes`` False when the
        key stays as it is).

        Reaches Key Vault with the configured identity when the encryption is CustomerKey: the key
        must exist, be RSA, enabled, in a vault with purge protection, and the identity must be
        allowed get, wrapKey and unwrapKey. Raises ArmError 400 (``forbidden`` when Key Vault
        refuses; a specific BadRequest for an unusable key or identity)."""
        row = self.row(resource_key)
        base = row.generation if row is not None else None
        if new.encryption_type == "SystemKey":
            if row is not None and row.key_type == "SystemKey":
                return KeyPlan(row.key_type, row.account_key, None, b"", base, changes=False)
            plain = os.urandom(32) if row is None else await self._open_current(row, old, old_identity)
            return KeyPlan("SystemKey", self.sealer.seal(plain, purpose(resource_key)), None, plain, base)
        assert new.key_id is not None and new.encryption_identity is not None
        principal = principal_for(new_identity, new.encryption_identity, "account encryption")
        try:
            key = await self.vault.get_key(service_id, principal, new.key_id)
        except CustomerKeyError as exc:
            if not exc.refused:
                raise errors.ArmError(400, "BadRequest", exc.reason) from exc
            raise forbidden(exc.reason) from exc
        plain = os.urandom(32) if row is None else await self._open_current(row, old, old_identity)
        try:
            wrapped = await self.vault.wrap(service_id, principal, new.key_id, key.version, plain)
            if await self.vault.unwrap(service_id, principal, new.key_id, key.version, wrapped) != plain:
                raise CustomerKeyError("The key did not unwrap what it wrapped.")
        except CustomerKeyError as exc:
            raise forbidden(exc.reason) from exc
        return KeyPlan("CustomerKey", self.sealer.seal(wrapped, purpose(resource_key)), key.kid, plain, base)

    def store(
        self,
        conn: sa.Connection,
        service_id: str,
        resource_key: str,
        location: str,
        name: str,
        plan: KeyPlan,
    ) -> KeyRow:
        """Write ``plan`` (inside the account's write transaction); create the row on first write.

        409 ``Conflict`` when the row is no longer at the plan's generation (another write, or
        the key monitor, changed it meanwhile): the client retries, nothing is replaced."""
        row = self.row(resource_key, conn)
        now = time.time()
        if (row.generation if row is not None else None) != plan.base_generation:
            raise errors.ArmError(
                409, "Conflict", "The Media Services account changed while it was being updated; try again."
            )
        if row is None:
            conn.execute(
                media_accounts.insert().values(
                    resource_key=resource_key,
                    resource_id=service_id,
                    location=location,
                    name=name,
                    key_type=plan.key_type,
                    account_key=plan.account_key,
                    wrapping_key_id=plan.wrapping_key_id,
                    generation=1,
                    key_status=ACCESSIBLE,
                    key_status_reason=None,
                    checked_at=now,
                )
            )
        elif plan.changes:
            conn.execute(
                media_accounts.update()
                .where(
                    media_accounts.c.resource_key == resource_key,
                    media_accounts.c.generation == plan.base_generation,
                )
                .values(
                    key_type=plan.key_type,
                    account_key=plan.account_key,
                    wrapping_key_id=plan.wrapping_key_id,
                    generation=row.generation + 1,
                    key_status=ACCESSIBLE,
                    key_status_reason=None,
                    checked_at=now,
                )
            )
        found = self.row(resource_key, conn)
        assert found is not None
        if plan.changes and plan.key_type == "CustomerKey":
            self.remember(resource_key, plan.plain)  # access was just proven
        elif plan.changes:
            self.forget(resource_key)  # a SystemKey account opens its row's key when asked
        return found

    def delete(self, conn: sa.Connection, resource_key: str) -> None:
        conn.execute(media_accounts.delete().where(media_accounts.c.resource_key == resource_key))
        self.forget(resource_key)

    # --- using the key ---------------------------------------------------------------------

    def require_accessible(self, resource_key: str) -> KeyRow:
        """The account's key row, or ``forbidden`` (and the in-memory copy dropped) while the
        customer key is inaccessible: every operation but account GET/LIST/DELETE checks this."""
        row = self.row(resource_key)
        if row is None:
            raise errors.ArmError(404, "ResourceNotFound", "The Media Services account was not found.")
        if row.key_status != ACCESSIBLE:
            self.forget(resource_key)
            raise forbidden(row.key_status_reason)
        return row

    async def account_key(
        self, resource_key: str, settings: AccountSettings, identity: dict[str, Any] | None
    ) -> bytes:
        """The plaintext account key (from memory, the row, or Key Vault); ``forbidden`` when the
        customer key is out of reach (the account is marked inaccessible)."""
        row = self.require_accessible(resource_key)
        try:
            return await self._open_current(row, settings, identity)
        except errors.ArmError as exc:
            if row.key_type == "CustomerKey":
                self.mark(resource_key, INACCESSIBLE, exc.message)
            raise

    def mark(self, resource_key: str, status: str, reason: str | None, generation: int | None = None) -> bool:
        """Set the key status of an account; True when it changed. With ``generation``, only if
        the row is still at it (the monitor's verdict is about the wrapping it checked, not one a
        write stored meanwhile). Leaving ``Accessible`` drops the in-memory key."""
        with self.db.write() as conn:
            row = self.row(resource_key, conn)
            if row is None or (generation is not None and row.generation != generation):
                return False
            if status != ACCESSIBLE:
                self.forget(resource_key)
            if row.key_status == status and row.key_status_reason == reason:
                return False
            conn.execute(
                media_accounts.update()
                .where(media_accounts.c.resource_key == resource_key)
                .values(key_status=status, key_status_reason=reason, checked_at=time.time())
            )
            set_encryption_state(conn, resource_key, status, row.wrapping_key_id)
        return True

    # --- sealing under the account key -----------------------------------------------------

    @staticmethod
    def seal(account_key: bytes, plaintext: bytes, purpose_text: str) -> str:
        """``plaintext`` encrypted under the account key: base64(nonce + AES-256-GCM), ``purpose_text``
        bound as associated data (so a sealed value cannot be moved to another field or object)."""
        nonce = os.urandom(_NONCE)
        return base64.b64encode(
            nonce + AESGCM(account_key).encrypt(nonce, plaintext, purpose_text.encode())
        ).decode()

    @staticmethod
    def open(account_key: bytes, sealed: str, purpose_text: str) -> bytes:
        """The plaintext of ``seal``; SealedValueError if damaged or bound to another purpose."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            return AESGCM(account_key).decrypt(raw[:_NONCE], raw[_NONCE:], purpose_text.encode())
        except (InvalidTag, ValueError) as exc:
            raise SealedValueError("the value does not open under the account key") from exc


__all__ = ["ACCESSIBLE", "INACCESSIBLE", "AccountKeyring", "KeyIdentifier", "KeyPlan", "KeyRow", "forbidden"]
