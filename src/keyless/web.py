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
# Json.NET's default MaxDepth, the deserializer behind ARM: deeper documents are refused. Far
# below orjson's own limits (1024 to read, 254 to write), so what is accepted can be stored.
MAX_JSON_DEPTH = 64
NUL = "\x00"


class BodyTooLarge(Exception):
    pass


class InvalidJson(ValueError):
    """A request body that is not acceptable JSON; ``detail`` says why, in Json.NET's words."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_BODY) -> Any:
    """The one JSON parser for request bodies: every wire layer that reads JSON uses it.

    Returns the document (any JSON value). Raises ``InvalidJson`` for malformed JSON, a body
    over ``max_bytes``, nesting deeper than ``max_depth``, or a NUL character in any string or
    key (no database text column can hold one, and no Azure field needs one). Each wire layer
    turns ``InvalidJson`` into its own error shape.
    """
    if len(raw) > max_bytes:
        raise InvalidJson(f"The request content is larger than {max_bytes} bytes.")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson stops at 1024 levels; say so in the same words as for our own limit.
        reason = f"The reader's MaxDepth of {max_depth} has been exceeded" if "depth" in exc.msg else exc.msg
        raise InvalidJson(f"{reason}. Path '', line {exc.lineno}, position {exc.colno}.") from exc
    # A NUL can only arrive escaped (JSON refuses raw control characters), and nesting cannot
    # be deeper than the brackets opened: most bodies skip the walk, at C speed.
    if b"\\u0000" in raw or raw.count(b"{") + raw.count(b"[") > max_depth:
        _check_tree(document, max_depth)
    return document


def _check_tree(document: Any, max_depth: int) -> None:
    # Iterative, so a hostile document costs no recursion: one pass over every node, and each
    # node's path kept as a (parent, key) link, rendered only for the error.
    stack: list[tuple[Any, int, Any]] = [(document, 0, None)]
    while stack:
        node, depth, trail = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                raise InvalidJson(f"A string contains a NUL character. Path '{_render(trail)}'.")
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                raise InvalidJson(
                    f"The reader's MaxDepth of {max_depth} has been exceeded. Path '{_render(trail)}'."
                )
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if isinstance(key, str) and NUL in key:
                    raise InvalidJson(f"A property name contains a NUL character. Path '{_render(trail)}'.")
                stack.append((value, depth + 1, (trail, key)))


def _render(trail: Any) -> str:
    parts: list[str] = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    path = "".join(reversed(parts)).lstrip(".")
    return path if len(path) <= 200 else path[:200] + "..."  # an error message stays small


def has_nul(*values: str | None) -> bool:
    """Whether any of ``values`` holds a NUL: no database text column can store or compare one."""
    return any(value is not None and NUL in value for value in values)


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


def bounded_int(text: str, maximum: int) -> int | None:
    """``text`` as a whole number from 0 to ``maximum``, or None.

    Only ASCII digits count (``str.isdigit`` takes other scripts' digits too), and the length is
    checked before ``int()``: a caller's thousands of digits never reach the conversion.
    """
    if not text or len(text) > len(str(maximum)) or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= maximum else None
