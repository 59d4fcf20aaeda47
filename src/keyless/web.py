"""Small ASGI helpers shared by the wire layers (kept minimal: they sit on the hot path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPE = b"application/json; charset=utf-8"
MAX_BODY = 4 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    """First value of a request header (``name`` in lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def parse_query(scope: Scope) -> tuple[dict[str, str], str | None]:
    """Query parameters (a repeated name keeps its first value), and the first name given twice."""
    params: dict[str, str] = {}
    duplicate: str | None = None
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name in params and duplicate is None:
            duplicate = name
        params.setdefault(name, value)
    return params, duplicate


def query_params(scope: Scope) -> dict[str, str]:
    """Query parameters; a repeated name keeps its first value."""
    return parse_query(scope)[0]


def host_of(scope: Scope) -> str:
    """The Host header, lower-cased, without a port."""
    raw = header(scope, b"host") or ""
    if raw.startswith("["):
        return raw[: raw.find("]") + 1].lower()
    return raw.rsplit(":", 1)[0].lower() if ":" in raw else raw.lower()


def base_url(scope: Scope) -> str:
    scheme = scope.get("scheme", "https")
    host = header(scope, b"host") or "localhost"
    if scheme == "https" and host.endswith(":443"):
        host = host[:-4]
    return f"{scheme}://{host}"


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None = JSON_TYPE,
    headers: dict[str, str] | None = None,
) -> None:
    raw_headers: list[tuple[bytes, bytes]] = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        raw_headers.append((b"content-type", content_type))
    for key, value in (headers or {}).items():
        raw_headers.append((key.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = b"" if body is None else orjson.dumps(body)
    await send_bytes(send, status, payload, JSON_TYPE if body is not None else None, headers)
