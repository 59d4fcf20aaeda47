"""Automatic key rotation by policy, and purging soft-deleted keys and secrets past their date.

Every ``interval`` seconds each replica tries to take the database lease ``keyvault-maintenance``;
the one that holds it rotates every live key whose policy says it is due (a new version, as
``POST /keys/{name}/rotate`` makes) and purges what is past its scheduled purge date. The lease
outlives a pass by two intervals, so a replica killed mid-pass is replaced by another after that.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import orjson

from keyless.providers.keyvault import store as kv
from keyless.providers.keyvault.access import Vault
from keyless.providers.keyvault.keys import KeyService
from keyless.store import leases
from keyless.store.db import Database
from keyless.store.tables import key_vaults, resources

LEASE = "keyvault-maintenance"
_BATCH = 50
log = logging.getLogger("keyless.keyvault")


class Maintenance:
    def __init__(self, db: Database, keys: KeyService, interval: float) -> None:
        self.db = db
        self.keys = keys
        self.interval = max(0.2, float(interval))
        self.holder = uuid.uuid4().hex

    def _vault(self, name: str) -> Vault | None:
        with self.db.read() as conn:
            row = conn.execute(
                key_vaults.select().where(key_vaults.c.name == name, key_vaults.c.deleted_at.is_(None))
            ).first()
            if row is None:
                return None
            doc = conn.execute(resources.select().where(resources.c.id_key == row.resource_key)).first()
        if doc is None:
            return None
        properties = orjson.loads(doc.document).get("properties") or {}
        return Vault.from_resource(row.name, row.resource_id, row.location, properties)

    async def run_once(self, now: Callable[[], float] = time.time) -> int:
        """One pass, if this replica holds the lease: how many keys it rotated."""
        if not await asyncio.to_thread(leases.try_acquire, self.db, LEASE, self.holder, 3 * self.interval):
            return 0
        with self.db.write() as conn:
            kv.purge_expired(conn, now())
            due = kv.due_for_rotation(conn, now(), _BATCH)
        rotated = 0
        for obj in due:
            vault = self._vault(obj.vault)
            if vault is None:  # the vault is soft-deleted: its keys wait with it
                continue
            try:
                await self.keys.rotate(vault, obj.name)
                rotated += 1
            except Exception:  # one key's failure must not stop the others
                log.exception("rotating key %s in vault %s failed", obj.name, obj.vault)
        return rotated

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a database outage: try again next interval
                log.exception("key vault maintenance pass failed")
            await asyncio.sleep(self.interval)
