"""What ``keyless up`` shows of media jobs: a line for every job (on any replica) whose state
changed, or whose progress moved by at least ``STEP`` percent, since the last look, e.g.
``Media job ams1/transforms/hd/jobs/job1: Processing 40%`` ... ``...: Finished 100%``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from keyless.providers.media import job_queue
from keyless.store.db import Database

STEP = 10
MAX_SHOWN = 10_000  # jobs whose last shown line is remembered
log = logging.getLogger("keyless.media")


def short_name(job_id: str) -> str:
    """``{account}/transforms/{t}/jobs/{j}`` of a job's resource id."""
    parts = job_id.split("/")
    return "/".join(parts[-5:]) if len(parts) >= 5 else job_id


async def show_progress(db: Database, say: Callable[[str], None], interval: float = 1.0) -> None:
    """Forever: every ``interval`` seconds, ``say`` the jobs that moved (module docstring)."""
    shown: dict[str, tuple[str, int]] = {}
    since = time.time() - interval
    while True:
        try:
            changed = await asyncio.to_thread(job_queue.changes, db, since)
        except Exception:
            log.exception("could not read media job progress")
            changed = []
        for job_id, state, progress, at in changed:
            since = max(since, at)
            before = shown.get(job_id)
            if before is None or before[0] != state or progress - before[1] >= STEP:
                say(f"Media job {short_name(job_id)}: {state} {progress}%")
                if len(shown) >= MAX_SHOWN:
                    shown.pop(next(iter(shown)))
                shown[job_id] = (state, progress)
        await asyncio.sleep(interval)
