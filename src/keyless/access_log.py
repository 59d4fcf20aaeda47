"""The request log of ``keyless up --log-level info``: one line per request, written off the event loop.

A line is ``METHOD host path status caller ms``. Never logged: query strings (a client may put a
secret there), headers and bodies (tokens, secrets), and host tokens in paths (the direct IMDS base
URL ``/imds/<host token>/...``, and any segment shaped like a random token, are shown as ``***``).
The caller is the ``oid`` of the request's bearer token, shown only when the service did not answer
401 (a token it refused proves nothing); ``-`` otherwise.

The middleware is installed only when the level logs requests, so a server that does not log pays
nothing for it.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import re
import sys
import time
from typing import Any

from keyless.arm.ids import is_guid
from keyless.web import ASGIApp, Message, Receive, Scope, Send, header, host_of

LOGGER = "keyless"
ACCESS_LOGGER = "keyless.access"
_MAX_PATH = 512
_MAX_QUEUED = 10_000
# A random token in a path segment (host tokens are 43 url-safe base64 characters): long,
# url-safe, with both letters and digits. Resource names that happen to match are hidden too.
_TOKEN_LIKE = re.compile(r"(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[A-Za-z0-9_-]{40,}")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")

_access = logging.getLogger(ACCESS_LOGGER)


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread; when the queue is full, drops them (never blocks)."""

    def enqueue(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(record)


def configure(level: str) -> logging.handlers.QueueListener:
    """Send Keyless's log records (``keyless.*``) at ``level`` and above to stderr from a thread.

    Returns the started listener; ``stop()`` it on shutdown to flush.
    """
    records: queue.Queue[Any] = queue.Queue(_MAX_QUEUED)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    listener = logging.handlers.QueueListener(records, stream)
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [_DroppingQueueHandler(records)]
    logger.setLevel(level.upper())
    logger.propagate = False
    listener.start()
    return listener


def logs_requests() -> bool:
    return _access.isEnabledFor(logging.INFO)


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub("?", text)


def loggable_path(scope: Scope) -> str:
    """The request path (decoded, as routing reads it, so no encoding hides a host token from the
    masking), host tokens hidden, unprintable characters replaced, bounded."""
    path = str(scope.get("path", ""))
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if (i == 2 and segments[1].lower() == "imds" and segment) or _TOKEN_LIKE.fullmatch(segment):
            segments[i] = "***"
    shown = _printable("/".join(segments))
    return shown if len(shown) <= _MAX_PATH else shown[:_MAX_PATH] + "..."


def caller_object_id(scope: Scope) -> str:
    """The ``oid`` of the bearer token (unverified: the caller shows it only for accepted requests)."""
    from keyless.authority.tokens import unverified_payload

    scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "-"
    try:
        oid = unverified_payload(token.strip()).get("oid")
    except (ValueError, IndexError, TypeError):
        return "-"
    return oid if isinstance(oid, str) and is_guid(oid) else "-"


class AccessLog:
    """ASGI middleware: log each HTTP request once its response is sent (or the app failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            caller = caller_object_id(scope) if status and status != 401 else "-"
            _access.info(
                "%s %s %s %s %s %.1fms",
                _printable(str(scope.get("method", "-"))),
                _printable(host_of(scope) or "-"),
                loggable_path(scope),
                status or "-",
                caller,
                elapsed,
            )
