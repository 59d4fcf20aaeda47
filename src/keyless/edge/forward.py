"""Plain-HTTP proxy requests for hosts Keyless does not emulate are passed on untouched.

Both bodies stream: the request body goes upstream chunk by chunk as the client sends it, and
the response body comes back chunk by chunk as upstream sends it, each side waiting for the
other (uvicorn pauses reading a client past 64 KiB unread; httpx reads upstream only when
asked), so a transfer of any size holds a few chunks in memory, never the whole body.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import AsyncIterator, Iterable

import httpx

from keyless.web import Receive, Scope, Send, header, send_bytes

# Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own and are not forwarded, nor is any
# header the Connection header names.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Upstream: connecting, each read and each write, and waiting for a pooled connection.
_UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
# Client: the most a client may take to send its next body chunk or to take the next response
# chunk (seconds), so a stalled client does not pin an upstream connection for ever.
_CLIENT_IDLE = 30.0


# An authority as hosts are named on the wire: a DNS name or IPv4 address, or an IPv6 literal
# in brackets, and an optional port (RFC 3986 §3.2, the reg-name kept to what DNS allows).
_AUTHORITY = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[A-Za-z0-9_.-]{1,253}))(?::(?P<port>[0-9]{1,5}))?"
)


def parse_authority(text: str) -> tuple[str, int | None] | None:
    """``host[:port]`` or ``[v6][:port]`` -> (lower-case host without brackets, port or None).

    None for anything else: characters no host name has, a port outside 1-65535.
    """
    match = _AUTHORITY.fullmatch(text)
    if match is None:
        return None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return None
    if match["v6"] is not None:
        try:
            ipaddress.IPv6Address(match["v6"])
        except ValueError:
            return None
        return match["v6"].lower(), int(port) if port else None
    return match["name"].lower(), int(port) if port else None


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class _ClientStalled(Exception):
    """The client sent no body bytes for ``_CLIENT_IDLE`` seconds."""


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers a proxy passes on: all but hop-by-hop ones and those Connection names.

    ``headers`` are raw (name, value) pairs in any case; the result keeps their order and case.
    """
    pairs = list(headers)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in pairs
        if (low := name.lower()) not in _HOP_BY_HOP and low not in named
    ]


async def _next_chunk(receive: Receive) -> tuple[bytes, bool]:
    """The client's next body chunk and whether more follows."""
    try:
        async with asyncio.timeout(_CLIENT_IDLE):
            message = await receive()
    except TimeoutError:
        raise _ClientStalled from None
    if message["type"] == "http.disconnect":
        raise _ClientGone
    return message.get("body", b""), bool(message.get("more_body", False))


async def _rest_of_body(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    if first:
        yield first
    more = True
    while more:
        chunk, more = await _next_chunk(receive)
        if chunk:
            yield chunk


async def _until_disconnect(receive: Receive) -> None:
    # Once the request body is read, uvicorn's receive() returns only when the client leaves
    # (or the response is complete).
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass


class Forwarder:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False, timeout=_UPSTREAM_TIMEOUT, follow_redirects=False
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Relay one absolute-form request to ``http://<Host>``, streaming both bodies.

        Answers 400 for a Host that is no URL authority, 502 when upstream cannot be reached
        or fails before its response head (RFC 9110 §15.6.3), 408 when the client stalls
        mid-body. A failure after the response head has gone out closes the connection
        (the client sees a truncated response, as from any proxy).
        """
        host = header(scope, b"host") or ""
        authority = parse_authority(host)
        if authority is None:
            await _plain(send, 400, f"Keyless proxy: '{host}' is not a host name.")
            return
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            # The host is checked above, so it cannot carry a path or credentials into the URL.
            url = httpx.URL(f"http://{host}{path}" + (f"?{query}" if query and "?" not in path else ""))
        except httpx.InvalidURL:
            await _plain(send, 400, f"Keyless proxy: '{path}' is not a path.")
            return
        try:
            first, more = await _next_chunk(receive)
            content = _rest_of_body(first, receive) if more else first
            request = self._http().build_request(
                scope["method"], url, headers=end_to_end(scope["headers"]), content=content
            )
            response = await self._http().send(request, stream=True)
        except _ClientGone:
            return
        except _ClientStalled:
            await _plain(send, 408, "Keyless proxy: the request body stopped arriving.")
            return
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            await _plain(send, 502, f"Keyless proxy: the host '{host}' could not be reached: {exc}")
            return
        try:
            await self._relay(response, receive, send)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": end_to_end(response.headers.raw),
            }
        )
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            # Raw: the body goes on as upstream encoded it, with its own Content-Encoding.
            async for chunk in response.aiter_raw():
                if gone.done():
                    return
                async with asyncio.timeout(_CLIENT_IDLE):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx.HTTPError, TimeoutError):
            # Returning with the response incomplete makes uvicorn close the connection.
            return
        finally:
            gone.cancel()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _plain(send: Send, status: int, message: str) -> None:
    await send_bytes(send, status, message.encode(), b"text/plain; charset=utf-8")
