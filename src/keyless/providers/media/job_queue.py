"""The Media Services job queue: ``media_jobs`` rows beside the job resources, and every state
change of a job, written to both in one transaction so a ``jobs.get`` always shows the state the
queue holds.

States (``JobState``, media.md §2): Queued → Scheduled (claimed by a replica) → Processing
(encoding) → Finished | Error | Canceled; Canceling while a running job is being stopped. Any
replica claims a job whose lease is free or expired — of the account with the fewest jobs running,
then waiting longest; within it best ``priority``, then oldest (``_next_job``; ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, SQLite's single writer serializes claims) — and renews the lease while it works. A replica that dies stops renewing: the lease expires and
another replica claims the job again and starts it over (its outputs are rewritten whole). A job
claimed ``MAX_ATTEMPTS`` times ends in Error ``ServiceError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from keyless.arm.engine import iso_time
from keyless.arm.ids import ResourceId
from keyless.providers.media.children import bad_request, child_id
from keyless.store.db import Database
from keyless.store.tables import media_jobs, resources

QUEUED, SCHEDULED, PROCESSING, CANCELING = "Queued", "Scheduled", "Processing", "Canceling"
FINISHED, ERROR, CANCELED = "Finished", "Error", "Canceled"
FINAL = frozenset([FINISHED, ERROR, CANCELED])
ACTIVE = (QUEUED, SCHEDULED, PROCESSING, CANCELING)
PRIORITY = {"High": 0, "Normal": 1, "Low": 2}
WORK = "media.job.work"  # ctx.prepared key: what validate worked out for the queue row
MAX_ATTEMPTS = 3
CANDIDATES = 200  # claimable jobs looked at per claim


def url_purpose(rid: ResourceId) -> str:
    """The associated data a JobInputHttp URL is sealed with: the job."""
    return f"media.jobInput:{rid.key}"


@dataclass(frozen=True)
class Claim:
    job_key: str
    job_id: str  # the resource id as created
    account_key: str
    work: dict[str, Any]
    attempt: int


def job_error(code: str, message: str, category: str, retry: str = "DoNotRetry") -> dict[str, Any]:
    """A ``JobError`` (media.md §2: ``{code, message, category, retry, details}``)."""
    return {"category": category, "code": code, "details": [], "message": message, "retry": retry}


def enqueue(conn: sa.Connection, rid: ResourceId, props: dict[str, Any], work: dict[str, Any]) -> None:
    """Queue a new job (inside the creating write's transaction)."""
    conn.execute(
        media_jobs.insert().values(
            job_key=rid.key,
            account_key=rid.parent.parent.key if rid.parent and rid.parent.parent else "",
            state=QUEUED,
            priority=PRIORITY.get(str(props.get("priority")), 1),
            created_at=time.time(),
            work=orjson.dumps(work).decode(),
            lease_holder=None,
            lease_expires_at=None,
            attempts=0,
            progress=0,
            changed_at=time.time(),
        )
    )


def set_priority(conn: sa.Connection, rid: ResourceId, priority: str) -> None:
    conn.execute(
        media_jobs.update().where(media_jobs.c.job_key == rid.key).values(priority=PRIORITY.get(priority, 1))
    )


def forget(conn: sa.Connection, rid: ResourceId) -> None:
    """Drop a job's queue row before the job is deleted; 400 while the job is not finished."""
    row = conn.execute(sa.select(media_jobs.c.state).where(media_jobs.c.job_key == rid.key)).first()
    if row is not None and row.state not in FINAL:
        # The recorded answer (media-jobs.md, az recording test_ams_job).
        raise bad_request(
            f"The job Delete operation for '{child_id(rid)}' resource failed. The job is in the "
            f"'{row.state}' state. Cancel the job or retry after the processing completes."
        )
    conn.execute(media_jobs.delete().where(media_jobs.c.job_key == rid.key))


def _update_document(conn: sa.Connection, job_key: str, change: dict[str, Any]) -> None:
    """Apply ``change`` to the job resource's properties: ``state``, ``startTime``, ``endTime`` and
    ``outputs`` (a dict index → fields to set)."""
    row = conn.execute(sa.select(resources.c.document).where(resources.c.id_key == job_key)).first()
    if row is None:
        return
    document = orjson.loads(row.document)
    props = dict(document.get("properties") or {})
    outputs = [dict(o) for o in props.get("outputs") or []]
    for index, fields in (change.pop("outputs", None) or {}).items():
        if 0 <= index < len(outputs):
            outputs[index].update(fields)
            for name in [k for k, v in fields.items() if v is None]:  # None: the field goes
                outputs[index].pop(name, None)
    props.update(change)
    props["outputs"] = outputs
    props["lastModified"] = iso_time(time.time())
    document["properties"] = props
    conn.execute(
        resources.update()
        .where(resources.c.id_key == job_key)
        .values(document=orjson.dumps(document).decode(), modified_at=time.time())
    )


def _finish_outputs(conn: sa.Connection, job_key: str, state: str, error: dict[str, Any] | None) -> None:
    """Every output not already final takes ``state`` (and ``error`` for Error)."""
    row = conn.execute(sa.select(resources.c.document).where(resources.c.id_key == job_key)).first()
    if row is None:
        return
    now = iso_time(time.time())
    outputs = (orjson.loads(row.document).get("properties") or {}).get("outputs") or []
    change: dict[int, dict[str, Any]] = {}
    for i, output in enumerate(outputs):
        if output.get("state") not in FINAL:
            fields: dict[str, Any] = {"state": state, "endTime": now}
            if error is not None:
                fields["error"] = error
            change[i] = fields
    _update_document(conn, job_key, {"state": state, "endTime": now, "outputs": change})


def cancel(conn: sa.Connection, rid: ResourceId) -> None:
    """``cancelJob``: a final job stays as it is; a job no replica works on is Canceled at once;
    a running one goes to Canceling, and its replica stops it and marks it Canceled."""
    row = conn.execute(sa.select(media_jobs).where(media_jobs.c.job_key == rid.key)).first()
    if row is None or row.state in FINAL:
        return
    running = row.lease_holder is not None and (row.lease_expires_at or 0) >= time.time()
    state = CANCELING if running else CANCELED
    conn.execute(
        media_jobs.update().where(media_jobs.c.job_key == rid.key).values(state=state, changed_at=time.time())
    )
    if running:
        _update_document(conn, rid.key, {"state": CANCELING})
    else:
        _finish_outputs(conn, rid.key, CANCELED, None)


def claim(db: Database, holder: str, lease_seconds: float) -> Claim | None:
    """Take the next job (module docstring) for ``holder``: it becomes Scheduled and leased for
    ``lease_seconds``. None when there is nothing to do."""
    now = time.time()
    # Every idle replica asks every few seconds: a read first, so an empty queue takes no write lock.
    with db.read() as conn:
        if conn.execute(sa.select(media_jobs.c.job_key).where(_claimable(now)).limit(1)).first() is None:
            return None
    with db.write() as conn:
        while True:
            row = _next_job(conn, now)
            if row is None:
                return None
            job = conn.execute(
                sa.select(resources.c.resource_id).where(resources.c.id_key == row.job_key)
            ).first()
            if job is None:  # the job resource is gone (deleted with its account or group)
                conn.execute(media_jobs.delete().where(media_jobs.c.job_key == row.job_key))
                continue
            if row.state == CANCELING:  # its replica died while stopping it
                _settle(conn, row.job_key, CANCELED, None)
                continue
            if row.attempts >= MAX_ATTEMPTS:
                error = job_error(
                    "ServiceError",
                    f"The job was interrupted {row.attempts} times and is not retried.",
                    "Service",
                )
                _settle(conn, row.job_key, ERROR, error)
                continue
            conn.execute(
                media_jobs.update()
                .where(media_jobs.c.job_key == row.job_key)
                .values(
                    state=SCHEDULED,
                    lease_holder=holder,
                    lease_expires_at=now + lease_seconds,
                    attempts=row.attempts + 1,
                    progress=0,
                    changed_at=now,
                )
            )
            # A job taken over from a replica that died starts over: its outputs are Queued again.
            fresh = {"state": QUEUED, "progress": 0, "error": None, "startTime": None, "endTime": None}
            count = len(orjson.loads(row.work).get("outputs") or [])
            _update_document(
                conn, row.job_key, {"state": SCHEDULED, "outputs": dict.fromkeys(range(count), fresh)}
            )
            return Claim(
                row.job_key, str(job.resource_id), row.account_key, orjson.loads(row.work), row.attempts + 1
            )


def _claimable(now: float) -> sa.ColumnElement[bool]:
    """Jobs not final whose lease is free or has run out at ``now``."""
    return sa.and_(
        media_jobs.c.state.in_(ACTIVE),
        sa.or_(media_jobs.c.lease_holder.is_(None), media_jobs.c.lease_expires_at < now),
    )


def _next_job(conn: sa.Connection, now: float) -> Any:
    """The job to claim next, locked (skipping rows another replica holds locked): among the
    oldest ``CANDIDATES`` claimable jobs, the account with the fewest jobs running now, then the
    one waiting longest; within it the best priority, then the oldest job. So priority orders an
    account's own jobs, and no account's jobs (High or many) keep another account's waiting
    (Keyless's choice: Azure documents priority within an account only)."""
    candidates = conn.execute(
        sa.select(media_jobs)
        .where(_claimable(now))
        .order_by(media_jobs.c.created_at)
        .limit(CANDIDATES)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        return None
    accounts = {row.account_key for row in candidates}
    counts = conn.execute(
        sa.select(media_jobs.c.account_key, sa.func.count())
        .where(
            media_jobs.c.account_key.in_(list(accounts)),
            media_jobs.c.state.in_((SCHEDULED, PROCESSING, CANCELING)),
            media_jobs.c.lease_expires_at >= now,
        )
        .group_by(media_jobs.c.account_key)
    ).all()
    busy = {str(account): int(count) for account, count in counts}
    oldest: dict[str, float] = {}
    for row in candidates:
        oldest[row.account_key] = min(oldest.get(row.account_key, row.created_at), row.created_at)
    account = min(oldest, key=lambda a: (busy.get(a, 0), oldest[a]))
    return min((r for r in candidates if r.account_key == account), key=lambda r: (r.priority, r.created_at))


def _settle(conn: sa.Connection, job_key: str, state: str, error: dict[str, Any] | None) -> None:
    conn.execute(
        media_jobs.update()
        .where(media_jobs.c.job_key == job_key)
        .values(state=state, lease_holder=None, lease_expires_at=None, changed_at=time.time())
    )
    _finish_outputs(conn, job_key, state, error)


def _held(conn: sa.Connection, job_key: str, holder: str) -> Any:
    """The job's queue row (``state``) while ``holder`` holds it and it is not final; else None."""
    row = conn.execute(
        sa.select(media_jobs.c.state, media_jobs.c.lease_holder).where(media_jobs.c.job_key == job_key)
    ).first()
    return None if row is None or row.lease_holder != holder or row.state in FINAL else row


def renew(db: Database, job_key: str, holder: str, lease_seconds: float) -> str | None:
    """Extend ``holder``'s lease: the job's state (Canceling: stop), or None when the lease is lost
    (the job was deleted, or another replica took it after this one stalled)."""
    with db.write() as conn:
        row = _held(conn, job_key, holder)
        if row is None:
            return None
        conn.execute(
            media_jobs.update()
            .where(media_jobs.c.job_key == job_key)
            .values(lease_expires_at=time.time() + lease_seconds)
        )
        return str(row.state)


def report(
    db: Database,
    job_key: str,
    holder: str,
    *,
    state: str | None = None,
    progress: int | None = None,
    outputs: dict[int, dict[str, Any]] | None = None,
    start: bool = False,
) -> bool:
    """Record progress of a job ``holder`` still holds: the job's ``state`` (Processing),
    overall ``progress`` (0-100, kept in the queue row for ``keyless up``), output changes, and
    ``startTime`` when ``start``. False when the lease is lost or the job is being canceled
    (nothing written then, except progress)."""
    with db.write() as conn:
        row = _held(conn, job_key, holder)
        if row is None:
            return False
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = max(0, min(100, progress))
        if state is not None and row.state != CANCELING:
            values["state"] = state
        if values:
            values["changed_at"] = time.time()
            conn.execute(media_jobs.update().where(media_jobs.c.job_key == job_key).values(**values))
        if row.state == CANCELING:
            return False
        change: dict[str, Any] = {}
        if state is not None:
            change["state"] = state
        if start:
            change["startTime"] = iso_time(time.time())
        if outputs:
            change["outputs"] = outputs
        if change:
            _update_document(conn, job_key, change)
        return True


def settle(db: Database, job_key: str, holder: str, state: str, error: dict[str, Any] | None = None) -> bool:
    """End a job ``holder`` holds: Finished, Error (``error`` on the outputs not yet final) or
    Canceled; the lease is released. A job being canceled ends Canceled whatever ``state`` says.
    False when the lease was lost (another replica owns the job now)."""
    with db.write() as conn:
        row = _held(conn, job_key, holder)
        if row is None:
            return False
        final = CANCELED if row.state == CANCELING else state
        _settle(conn, job_key, final, error if final == ERROR else None)
        return True


def changes(db: Database, since: float, limit: int = 50) -> list[tuple[str, str, int, float]]:
    """(job id, state, progress, changed_at) of the jobs whose state or progress changed after
    ``since`` (seconds since the epoch), oldest change first (for ``keyless up``)."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(
                resources.c.resource_id, media_jobs.c.state, media_jobs.c.progress, media_jobs.c.changed_at
            )
            .select_from(media_jobs.join(resources, resources.c.id_key == media_jobs.c.job_key))
            .where(media_jobs.c.changed_at > since)
            .order_by(media_jobs.c.changed_at)
            .limit(limit)
        ).all()
    return [(str(r.resource_id), str(r.state), int(r.progress), float(r.changed_at)) for r in rows]
