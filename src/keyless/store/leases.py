"""Leases for background work that one replica at a time must do (key rotation; later CMK checks
and media jobs). A lease is a row in ``leases``: taken when absent, expired, or already ours, by
one conditional write, so two replicas racing for it never both win (DESIGN.md "State and scale")."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keyless.store.db import Database
from keyless.store.tables import leases

MAX_LEASE_NAME = 256


def try_acquire(db: Database, name: str, holder: str, seconds: float, *, now: float | None = None) -> bool:
    """Take or renew lease ``name`` for ``holder`` (a replica's random id) for ``seconds``.

    True when ``holder`` holds it afterwards. ValueError for a name longer than 256 characters.
    """
    if len(name) > MAX_LEASE_NAME:
        raise ValueError("lease name too long")
    current = time.time() if now is None else now
    until = current + seconds
    with db.write() as conn:
        taken = conn.execute(
            sa.update(leases)
            .where(leases.c.name == name)
            .where(sa.or_(leases.c.expires_at < current, leases.c.holder == holder))
            .values(holder=holder, expires_at=until)
        ).rowcount
        if taken == 1:
            return True
        if conn.execute(sa.select(leases.c.name).where(leases.c.name == name)).first() is not None:
            return False
    try:
        with db.write() as conn:
            conn.execute(sa.insert(leases).values(name=name, holder=holder, expires_at=until))
        return True
    except IntegrityError:  # another replica inserted it first
        return False


def release(db: Database, name: str, holder: str) -> None:
    """Give lease ``name`` up if ``holder`` holds it (so another replica need not wait it out)."""
    with db.write() as conn:
        conn.execute(sa.delete(leases).where(leases.c.name == name).where(leases.c.holder == holder))
