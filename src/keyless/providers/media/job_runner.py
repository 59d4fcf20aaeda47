"""Running one claimed job: fetch the input, encode each output with the encoder program
(``encoding.run``, FFmpeg through PyAV, in a child process so the event loop never waits on it),
and upload the files into the output assets.

Storage is reached the way the service reaches it: every blob call goes through the blob data
plane as the account's storage authentication (``blob_io`` over ``MediaStorage``: with
``ManagedIdentity`` a trusted service with the identity's token), so the firewall and RBAC apply.
Files are streamed between storage and a private work directory in chunks; nothing holds a
whole file in memory.

Errors (``JobError``, media.md §2; the pairing of code and category is the spec's):

- input not readable (refused, missing, empty asset, HTTP failure) → ``DownloadNotAccessible``/Download;
- the encoder cannot decode it → ``ContentMalformed``/Content (other encoder codes as it says);
- an output asset not writable → ``UploadNotAccessible``/Upload;
- the account unusable (customer key inaccessible, storage gone) → ``ServiceError``/Account, with
  the account's error text (Keyless's choice: Azure documents no code for it).

Outputs run in order. One that fails with ``onError: StopProcessingJob`` (the default) ends the job in
Error; with ``ContinueJob`` the others still run and the job ends in Error if any failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import iso_time
from keyless.arm.ids import ResourceId, parse_resource_id
from keyless.outbound import OutboundError, OutboundPolicy, download, new_client, shown
from keyless.providers.media import blob_io, job_queue
from keyless.providers.media.children import asset_id
from keyless.providers.media.encoding.presets import plan
from keyless.providers.media.job_queue import Claim, job_error
from keyless.providers.media.keyring import AccountKeyring
from keyless.providers.media.storage_access import plain_blob_name
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

log = logging.getLogger("keyless.media")
ENCODER = "keyless.providers.media.encoding.run"
_NOT_MEDIA = (".ism", ".ismc", ".json", ".xml", ".txt")
_STDERR_KEEP = 4096
_PROGRESS_EVERY = 1.0  # seconds between progress writes
# What the encoder may inherit: enough to find Python, its packages and a temporary directory.
_ENCODER_ENV = frozenset(
    ["PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR", "HOME"]
)
ENCODER_MEMORY = 8 * 1024**3  # address space of one encode (bytes)
ENCODER_FILE_SIZE = 64 * 1024**3  # the largest file one encode may write (bytes)
_LINE_LIMIT = 8 * 1024 * 1024  # the encoder's longest line (its file list)


def _confine(pid: int) -> None:
    """Apply the encoder's limits to child ``pid`` from here (Linux ``prlimit``); the encoder
    applies them to itself too (``run.confine``), where prlimit is missing."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        resource.prlimit(pid, resource.RLIMIT_AS, (ENCODER_MEMORY, ENCODER_MEMORY))
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (ENCODER_FILE_SIZE, ENCODER_FILE_SIZE))
        resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))


async def _unless_canceled(work: Any, canceled: asyncio.Event) -> Any:
    """Await coroutine ``work`` unless ``canceled`` is set first: then ``work`` is cancelled and
    LeaseLost raised (cancelJob, or the lease lost, stops a download as it stops an encode)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.create_task(canceled.wait())
    try:
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise LeaseLost()


class JobFailed(Exception):
    """The job (or one output) ends in Error with ``error`` (a JobError)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


class LeaseLost(Exception):
    """Another replica owns the job now, or it is being canceled: stop without writing."""


@dataclass(frozen=True)
class RunnerSettings:
    work_dir: Path
    http_input: OutboundPolicy  # limits of a JobInputHttp fetch (size, time, addresses)
    encoder_threads: int = 0
    encode_timeout: float = 6 * 3600.0  # seconds one output's encode may take


def _job_id(claim: Claim) -> ResourceId:
    rid = parse_resource_id(claim.job_id)
    if rid is None or rid.parent is None or rid.parent.parent is None:
        raise JobFailed(job_error("ServiceError", "The job's id is malformed.", "Service"))
    return rid


def _local_name(blob: str) -> str:
    """The work file of input ``blob``: ``input-{Basename}{ext}`` with the name made safe, so the
    encoder's ``{Basename}`` is the input's name (encoding/presets: Basename is the input file's
    name without its extension)."""
    leaf = blob.rsplit("/", 1)[-1]
    stem, dot, ext = leaf.rpartition(".")
    if not dot:
        stem, ext = leaf, ""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:100] or "input"
    suffix = "".join(c for c in ext if c.isalnum())[:8]
    return f"input-{safe}.{suffix}" if suffix else f"input-{safe}"


def _download_error(message: str) -> JobFailed:
    return JobFailed(job_error("DownloadNotAccessible", message, "Download"))


def _upload_error(message: str) -> JobFailed:
    return JobFailed(job_error("UploadNotAccessible", message, "Upload"))


class JobRunner:
    """Runs claimed jobs for one replica (``MediaJobWorker`` drives it)."""

    def __init__(
        self,
        front: MediaFront,
        settings: RunnerSettings,
        in_process: Callable[[], httpx.AsyncClient],
        serves_host: Callable[[str], bool],
    ) -> None:
        self.front = front
        self.db = front.manager.db
        self.settings = settings
        self.in_process = in_process  # a client reaching Keyless's own hosts in-process
        self.serves_host = serves_host  # whether Keyless answers a host itself
        self._outbound: httpx.AsyncClient | None = None

    def clean_work_dir(self) -> None:
        """Remove what jobs of an earlier run of this replica left (it was killed mid-job; those
        jobs are done again by whichever replica claims them). Each replica has its own data
        directory, so no other replica's files are here."""
        if self.settings.work_dir.is_dir():
            for leftover in self.settings.work_dir.glob("job-*"):
                shutil.rmtree(leftover, ignore_errors=True)

    async def close(self) -> None:
        if self._outbound is not None:
            await self._outbound.aclose()
            self._outbound = None

    async def _report(self, claim: Claim, holder: str, **change: Any) -> bool:
        """``job_queue.report`` off the event loop."""
        return await asyncio.to_thread(job_queue.report, self.db, claim.job_key, holder, **change)

    async def _settle(self, claim: Claim, holder: str, state: str, error: dict[str, Any] | None) -> None:
        await asyncio.to_thread(job_queue.settle, self.db, claim.job_key, holder, state, error)

    async def run(self, claim: Claim, holder: str, canceled: asyncio.Event) -> None:
        """Do the job; record its end (Finished / Error / Canceled). LeaseLost escapes."""
        transform = _job_id(claim).parent
        account_rid = transform.parent if transform is not None else None
        assert account_rid is not None  # _job_id checked
        self.settings.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="job-", dir=self.settings.work_dir))
        try:
            try:
                account = self.front.account_context(account_rid)
            except errors.ArmError as exc:
                raise JobFailed(job_error("ServiceError", exc.message, "Account")) from exc
            if not await self._report(claim, holder, state=job_queue.PROCESSING, start=True):
                raise LeaseLost()
            source = await _unless_canceled(self._fetch_input(account, claim, work_dir), canceled)
            outcome = await self._encode_all(account, claim, holder, canceled, source, work_dir)
            await self._settle(claim, holder, outcome[0], outcome[1])
        except JobFailed as failed:
            await self._settle(claim, holder, job_queue.ERROR, failed.error)
        finally:
            await asyncio.to_thread(shutil.rmtree, work_dir, True)

    # --- input ------------------------------------------------------------------------------

    async def _fetch_input(self, account: AccountContext, claim: Claim, work_dir: Path) -> Path:
        spec = claim.work["input"]
        if spec["kind"] == "http":
            return await self._fetch_http(account, claim, spec, work_dir)
        container, storage_name = self._asset_location(account.rid, spec["assetName"])
        try:
            auth = self.front.storage_auth(account, storage_name)
            blobs = await blob_io.list_blobs(self.front.storage, auth, container)
        except (errors.ArmError, blob_io.BlobAccessError) as exc:
            raise _download_error(f"The input asset '{spec['assetName']}' could not be read: {exc}.") from exc
        wanted = spec.get("files") or []
        if wanted:
            chosen = [b for b in blobs if b.name == wanted[0]]
        else:
            chosen = [
                b for b in blobs if not b.name.lower().endswith(_NOT_MEDIA) and plain_blob_name(b.name)
            ][:1]
        if not chosen:
            raise _download_error(f"The input asset '{spec['assetName']}' has no file to encode.")
        item = chosen[0]
        target = work_dir / _local_name(item.name)
        try:
            await blob_io.download_to(self.front.storage, auth, container, item.name, item.size, target)
        except blob_io.BlobAccessError as exc:
            raise _download_error(f"The input file '{item.name}' could not be read: {exc}.") from exc
        return target

    async def _fetch_http(
        self, account: AccountContext, claim: Claim, spec: dict[str, Any], work_dir: Path
    ) -> Path:
        try:
            key = await self.front.account_key(account)
        except errors.ArmError as exc:
            raise JobFailed(job_error("ServiceError", exc.message, "Account")) from exc
        url = AccountKeyring.open(key, spec["sealedUrls"][0], job_queue.url_purpose(_job_id(claim))).decode()
        target = work_dir / _local_name(str(spec.get("name") or "input"))
        async with await anyio.open_file(target, "wb") as out:
            try:
                try:
                    host = httpx.URL(url).host
                except (httpx.InvalidURL, ValueError) as exc:
                    raise OutboundError(f"'{shown(url)}' is not a valid URL") from exc
                if self.serves_host(host):
                    await self._fetch_in_process(url, out.write)
                else:
                    if self._outbound is None:  # reads the CA file: off the event loop
                        self._outbound = await asyncio.to_thread(new_client, self.settings.http_input)
                    await download(url, self.settings.http_input, self._outbound, out.write)
            except OutboundError as exc:
                raise _download_error(f"The input URL could not be fetched: {exc}.") from exc
        return target

    async def _fetch_in_process(self, url: str, sink: Any) -> None:
        """A URL on a host Keyless serves (a blob SAS URL): fetched from Keyless itself as an
        outside caller (never as a trusted service: an HTTP input is anyone's URL), in ranges of
        ``blob_io.CHUNK`` (the in-process transport reads each answer whole). A host that answers
        a range with the whole body (200) is read once, within the size limit."""
        limit = self.settings.http_input.max_bytes
        received = 0
        async with self.in_process() as client:
            while True:
                last = received + blob_io.CHUNK - 1
                try:
                    response = await client.get(url, headers={"Range": f"bytes={received}-{last}"})
                except httpx.HTTPError as exc:
                    raise OutboundError(
                        f"'{shown(url)}' could not be fetched ({type(exc).__name__})"
                    ) from exc
                if response.status_code == 416 and received > 0:
                    return  # the previous range ended exactly at the end
                if response.status_code == 200:
                    if received or len(response.content) > limit:
                        raise OutboundError(f"'{shown(url)}' does not answer ranges consistently")
                    await sink(response.content)
                    return
                if response.status_code != 206:
                    raise OutboundError(f"'{shown(url)}' answered {response.status_code}")
                received += len(response.content)
                if received > limit:
                    raise OutboundError(f"'{shown(url)}' answered more than {limit} bytes")
                await sink(response.content)
                total = response.headers.get("content-range", "").rpartition("/")[2]
                if not response.content or not total.isdecimal() or received >= int(total):
                    return

    def _asset_location(self, account: ResourceId, asset: str) -> tuple[str, str | None]:
        """(container, storage account name) of one of the account's assets; DownloadNotAccessible
        / UploadNotAccessible is the caller's to raise: a missing asset raises JobFailed here."""
        key = asset_id(account, asset).key
        with self.db.read() as conn:
            row = conn.execute(sa.select(resources.c.document).where(resources.c.id_key == key)).first()
        if row is None:
            raise _download_error(f"The asset '{asset}' no longer exists.")
        props = orjson.loads(row.document).get("properties") or {}
        return str(props.get("container")), props.get("storageAccountName")

    # --- outputs ----------------------------------------------------------------------------

    async def _encode_all(
        self,
        account: AccountContext,
        claim: Claim,
        holder: str,
        canceled: asyncio.Event,
        source: Path,
        work_dir: Path,
    ) -> tuple[str, dict[str, Any] | None]:
        outputs = claim.work["outputs"]
        failed: dict[str, Any] | None = None
        for index, output in enumerate(outputs):
            started = {"state": job_queue.PROCESSING, "progress": 0, "startTime": iso_time(time.time())}
            if not await self._report(claim, holder, outputs={index: started}):
                raise LeaseLost()
            out_dir = work_dir / f"output-{index}"
            out_dir.mkdir()
            try:
                files = await self._encode(
                    claim, holder, canceled, index, len(outputs), output, source, out_dir
                )
                await self._upload(account, output["assetName"], out_dir, files)
            except JobFailed as exc:
                fields = {"state": job_queue.ERROR, "error": exc.error, "endTime": iso_time(time.time())}
                await self._report(claim, holder, outputs={index: fields})
                failed = exc.error
                if output.get("onError", "StopProcessingJob") != "ContinueJob":
                    return job_queue.ERROR, failed
                continue
            finally:
                await asyncio.to_thread(shutil.rmtree, out_dir, True)
            done = {"state": job_queue.FINISHED, "progress": 100, "endTime": iso_time(time.time())}
            overall = int(100 * (index + 1) / len(outputs))
            if not await self._report(claim, holder, progress=overall, outputs={index: done}):
                raise LeaseLost()
        return (job_queue.ERROR, failed) if failed else (job_queue.FINISHED, None)

    async def _encode(
        self,
        claim: Claim,
        holder: str,
        canceled: asyncio.Event,
        index: int,
        count: int,
        output: dict[str, Any],
        source: Path,
        out_dir: Path,
    ) -> list[str]:
        spec = claim.work["input"]
        basename = source.name.split(".", 1)[0].removeprefix("input-")
        request: dict[str, Any] = {
            "plan": plan(output["preset"]),
            "input": str(source),
            "outputDir": str(out_dir),
            "basename": basename[:200] or "input",
            "start": spec.get("start"),
            "end": spec.get("end"),
        }
        # The encoder gets no more of the server's environment than it needs (no database URL,
        # data directory or credentials) and runs under limits it sets itself (run.confine).
        env = {k: v for k, v in os.environ.items() if k in _ENCODER_ENV}
        env["KEYLESS_MEDIA_ENCODER_THREADS"] = str(self.settings.encoder_threads)
        request["limits"] = {"memoryBytes": ENCODER_MEMORY, "fileBytes": ENCODER_FILE_SIZE}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            ENCODER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=_LINE_LIMIT,
        )
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        _confine(process.pid)  # before it reads its request, so before it opens anyone's media
        process.stdin.write(orjson.dumps(request))
        await process.stdin.drain()
        process.stdin.close()
        stderr_tail = bytearray()

        async def drain_stderr() -> None:
            assert process.stderr is not None
            async for line in process.stderr:
                stderr_tail.extend(line)
                del stderr_tail[:-_STDERR_KEEP]

        stderr_task = asyncio.create_task(drain_stderr())
        cancel_task = asyncio.create_task(canceled.wait())
        result: dict[str, Any] = {}
        last_report = 0.0
        deadline = time.monotonic() + self.settings.encode_timeout
        try:
            while True:
                line_task = asyncio.create_task(process.stdout.readline())
                done, _ = await asyncio.wait(
                    {line_task, cancel_task},
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if cancel_task in done:
                    line_task.cancel()
                    raise LeaseLost()
                if not done:  # the encode ran past its time: stopped, the output fails
                    line_task.cancel()
                    limit = self.settings.encode_timeout
                    raise JobFailed(
                        job_error(
                            "ServiceError", f"The encoding did not finish within {limit:g} s.", "Service"
                        )
                    )
                line = line_task.result()
                if not line:
                    break
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(message, dict):
                    continue
                if "progress" in message and time.time() - last_report >= _PROGRESS_EVERY:
                    last_report = time.time()
                    percent = max(0, min(99, int(message["progress"])))
                    overall = int((100 * index + percent) / count)
                    await self._report(
                        claim, holder, progress=overall, outputs={index: {"progress": percent}}
                    )
                result.update({k: v for k, v in message.items() if k in ("files", "error")})
            await process.wait()
        finally:
            cancel_task.cancel()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            await stderr_task
        if process.returncode == 0 and isinstance(result.get("files"), list):
            return [str(f) for f in result["files"]]
        error = result.get("error") if isinstance(result.get("error"), dict) else None
        if error is not None:
            code = str(error.get("code", "ServiceError"))
            category = {
                "ContentMalformed": "Content",
                "ContentUnsupported": "Content",
                "ConfigurationUnsupported": "Configuration",
            }.get(code, "Service")
            raise JobFailed(job_error(code, str(error.get("message", ""))[:1024], category))
        log.warning("encoder failed (%s): %s", process.returncode, stderr_tail.decode(errors="replace"))
        raise JobFailed(job_error("ServiceError", "The encoder stopped unexpectedly.", "Service", "MayRetry"))

    async def _upload(self, account: AccountContext, asset: str, out_dir: Path, files: list[str]) -> None:
        try:
            container, storage_name = self._asset_location(account.rid, asset)
        except JobFailed as exc:
            raise _upload_error(f"The output asset '{asset}' no longer exists.") from exc
        try:
            auth = self.front.storage_auth(account, storage_name)
        except errors.ArmError as exc:
            raise _upload_error(f"The output asset '{asset}' could not be written: {exc.message}") from exc
        for name in files:
            path = out_dir / name
            if path.parent != out_dir or not path.is_file():
                raise JobFailed(
                    job_error("ServiceError", "The encoder named a file it did not write.", "Service")
                )
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            try:
                await blob_io.upload_from(self.front.storage, auth, container, name, path, content_type)
            except blob_io.BlobAccessError as exc:
                raise _upload_error(f"The output asset '{asset}' could not be written: {exc}.") from exc
