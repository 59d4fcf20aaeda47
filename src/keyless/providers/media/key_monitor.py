"""The background check of every customer-managed key (concept-use-customer-managed-keys-byok.md:
"New versions of customer keys are automatically detected, and the account key is re-encrypted";
an inaccessible key puts the account in the Customer Key Inaccessible state until access returns).

Every ``interval`` seconds each replica tries to take the database lease ``media-customer-keys``;
the holder, for every CustomerKey account, asks Key Vault (as the account's identity, as a trusted
service) for the key. A versionless key id with a newer version: the account key is unwrapped and
wrapped again by the new version, and ``currentKeyIdentifier`` moves. Otherwise the current
wrapping is unwrapped, proving ``unwrapKey`` still holds. Any refusal marks the account
``Inaccessible`` (its in-memory key is dropped on every replica); a later success marks it
``Accessible`` again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.providers.media import account_properties
from keyless.providers.media.account_render import set_encryption_state
from keyless.providers.media.customer_keys import CustomerKeyError
from keyless.providers.media.keyring import ACCESSIBLE, INACCESSIBLE, AccountKeyring, principal_for, purpose
from keyless.store import leases
from keyless.store.tables import media_accounts, resources

LEASE = "media-customer-keys"
log = logging.getLogger("keyless.media")


class CustomerKeyMonitor:
    def __init__(self, keyring: AccountKeyring, interval: float) -> None:
        self.keyring = keyring
        self.db = keyring.db
        self.interval = max(0.2, float(interval))
        self.holder = uuid.uuid4().hex

    async def run_once(self) -> int:
        """One pass, if this replica holds the lease: how many accounts changed state or key."""
        if not await asyncio.to_thread(leases.try_acquire, self.db, LEASE, self.holder, 3 * self.interval):
            return 0
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(media_accounts.c.resource_key, resources.c.document, resources.c.resource_id)
                .select_from(
                    media_accounts.join(resources, resources.c.id_key == media_accounts.c.resource_key)
                )
                .where(media_accounts.c.key_type == "CustomerKey")
            ).all()
        changed = 0
        for row in rows:
            try:
                changed += await self._check(row.resource_key, row.resource_id, orjson.loads(row.document))
            except Exception:  # one account's trouble never stops the pass
                log.exception("customer key check failed for %s", row.resource_id)
        return changed

    async def _check(self, resource_key: str, service_id: str, document: dict[str, object]) -> int:
        props = document.get("properties")
        identity = document.get("identity")
        if not isinstance(props, dict):
            return 0
        settings = account_properties.checked(props, service_id.split("/")[2])
        row = self.keyring.row(resource_key)
        if (
            row is None
            or row.key_type != "CustomerKey"
            or settings.key_id is None
            or settings.encryption_identity is None
        ):
            return 0
        vault = self.keyring.vault
        try:
            principal = principal_for(
                identity if isinstance(identity, dict) else None,
                settings.encryption_identity,
                "account encryption",
            )
            key = await vault.get_key(service_id, principal, settings.key_id)
            wrapped = self.keyring.sealer.open(row.account_key, purpose(resource_key))
            old_version = (row.wrapping_key_id or "").rstrip("/").rsplit("/", 1)[-1]
            plain = await vault.unwrap(service_id, principal, settings.key_id, old_version, wrapped)
            if key.kid != row.wrapping_key_id:
                rewrapped = await vault.wrap(service_id, principal, settings.key_id, key.version, plain)
                self._rewrap(resource_key, row.generation, rewrapped, key.kid)
                log.info("account key of %s re-wrapped by %s", service_id, key.kid)
                self.keyring.remember(resource_key, plain)
                return 1
        except (CustomerKeyError, errors.ArmError) as exc:
            reason = exc.reason if isinstance(exc, CustomerKeyError) else exc.message
            return 1 if self.keyring.mark(resource_key, INACCESSIBLE, reason, row.generation) else 0
        self.keyring.remember(resource_key, plain)
        return 1 if self.keyring.mark(resource_key, ACCESSIBLE, None, row.generation) else 0

    def _rewrap(self, resource_key: str, generation: int, wrapped: bytes, kid: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                media_accounts.update()
                .where(
                    media_accounts.c.resource_key == resource_key, media_accounts.c.generation == generation
                )
                .values(
                    account_key=self.keyring.sealer.seal(wrapped, purpose(resource_key)),
                    wrapping_key_id=kid,
                    generation=generation + 1,
                    key_status=ACCESSIBLE,
                    key_status_reason=None,
                    checked_at=time.time(),
                )
            ).rowcount
            if done == 1:  # else an account write re-wrapped it meanwhile: that one stands
                set_encryption_state(conn, resource_key, ACCESSIBLE, kid)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("customer key pass failed")
            await asyncio.sleep(self.interval)
