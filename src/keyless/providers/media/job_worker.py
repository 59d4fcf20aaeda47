"""The job worker of one replica: claims queued jobs (``job_queue.claim``) up to its concurrency
(``KEYLESS_MEDIA_JOB_CONCURRENCY``, default 1), runs each (``JobRunner``) while renewing the
job's lease every third of ``KEYLESS_MEDIA_JOB_LEASE`` seconds, and stops a job whose state turned
Canceling (``cancelJob``) or whose lease it lost. Every replica runs one; the database decides
who gets which job (``job_queue`` module docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from keyless.providers.media import job_queue
from keyless.providers.media.job_queue import Claim
from keyless.providers.media.job_runner import JobRunner, LeaseLost
from keyless.store.db import Database

log = logging.getLogger("keyless.media")


class MediaJobWorker:
    def __init__(
        self, db: Database, runner: JobRunner, *, concurrency: int, lease_seconds: float, poll_seconds: float
    ) -> None:
        self.db = db
        self.runner = runner
        self.concurrency = max(1, concurrency)
        self.lease_seconds = max(1.0, lease_seconds)
        self.poll_seconds = max(0.05, poll_seconds)
        self.holder = uuid.uuid4().hex
        self._running: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()  # set when a job was created here: look at once
        self._loop: asyncio.AbstractEventLoop | None = None

    def nudge(self) -> None:
        """Look for jobs now (a job was just committed here); callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake.set)

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.runner.clean_work_dir)
        try:
            while True:
                try:
                    await self.fill()
                except Exception:
                    log.exception("media job claim failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_seconds)
                self.wake.clear()
        finally:
            for task in list(self._running):
                task.cancel()
            for task in list(self._running):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def fill(self) -> int:
        """Claim jobs while there is room; how many were started."""
        started = 0
        while len(self._running) < self.concurrency:
            claim = await asyncio.to_thread(job_queue.claim, self.db, self.holder, self.lease_seconds)
            if claim is None:
                break
            task = asyncio.create_task(self._run(claim))
            self._running.add(task)
            task.add_done_callback(self._done)
            started += 1
        return started

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake.set()  # room for another job

    async def _run(self, claim: Claim) -> None:
        log.info("media job %s: claimed (attempt %d)", claim.job_id, claim.attempt)
        stop = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(claim, stop))
        try:
            await self.runner.run(claim, self.holder, stop)
        except LeaseLost:
            # Canceling: settle it as Canceled (a lost lease writes nothing: settle checks the holder).
            await asyncio.to_thread(job_queue.settle, self.db, claim.job_key, self.holder, job_queue.CANCELED)
        except Exception:
            log.exception("media job %s failed", claim.job_id)
            error = job_queue.job_error(
                "ServiceError", "The job failed in the service.", "Service", "MayRetry"
            )
            await asyncio.to_thread(
                job_queue.settle, self.db, claim.job_key, self.holder, job_queue.ERROR, error
            )
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        log.info("media job %s: done", claim.job_id)

    async def _keep_lease(self, claim: Claim, stop: asyncio.Event) -> None:
        while True:
            # Often enough that a cancelJob stops the encoder within a second or so.
            await asyncio.sleep(min(self.lease_seconds / 3, 1.0))
            try:
                state = await asyncio.to_thread(
                    job_queue.renew, self.db, claim.job_key, self.holder, self.lease_seconds
                )
            except Exception:
                log.exception("media job %s: lease renewal failed", claim.job_id)
                continue
            if state is None or state == job_queue.CANCELING:
                stop.set()
                return
