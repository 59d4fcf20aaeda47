"""The listeners: HTTPS for every emulated host, and HTTP as forward proxy and identity endpoint.

Both hand connections to uvicorn's HTTP protocol. The proxy terminates TLS for hosts Keyless
serves (``CONNECT`` answered with the local CA's certificate) and marks those connections,
in uvicorn's per-connection state, as proxied along with the credentials they presented.
Other hosts are tunnelled byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, cast

import uvicorn
from uvicorn.server import ServerState

from keyless.edge.routing import PROXY_AUTHORIZATION, VIA_PROXY
from keyless.web import ASGIApp

_MAX_HEAD = 64 * 1024
_CONNECT_TIMEOUT = 10.0


def split_authority(target: str) -> tuple[str, int] | None:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit():
        return None
    return host.lower(), int(port_text)


class _TunnelEnd(asyncio.Protocol):
    """One side of a byte tunnel; ``peer`` is the other side's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.write(data)

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.can_write_eof():
            self.peer.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()


class _ProxyProtocol(asyncio.Protocol):
    """Reads one request head, then becomes an HTTP server connection, a TLS endpoint or a tunnel."""

    def __init__(self, edge: EdgeServer) -> None:
        self.edge = edge
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.awaiting_tls = False
        self.tls_early_data = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.awaiting_tls:
            # Decrypted bytes that arrived with the handshake; handed on after the switch.
            self.tls_early_data += data
            return
        assert self.transport is not None
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self._fail(431, "Request Header Fields Too Large")
            return
        head = bytes(self.buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self._fail(400, "Bad Request")
            return
        method, target, _version = parts
        if method.upper() != "CONNECT":
            # A plain request: absolute-form means it came through the proxy.
            state = {VIA_PROXY: target.lower().startswith("http://")}
            protocol = self.edge.http_protocol(state)
            self.transport.set_protocol(protocol)
            protocol.connection_made(self.transport)
            protocol.data_received(bytes(self.buffer))
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        rest = bytes(self.buffer[end + 4 :])
        self.buffer.clear()
        self.transport.pause_reading()
        task = asyncio.ensure_future(self._connect(target, headers, rest))
        self.edge.track(task)

    def _fail(self, status: int, reason: str, detail: str = "") -> None:
        assert self.transport is not None
        body = (detail or reason).encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()

    async def _connect(self, target: str, headers: dict[str, str], rest: bytes) -> None:
        assert self.transport is not None
        parsed = split_authority(target)
        if parsed is None:
            self._fail(400, "Bad Request", f"Keyless proxy: '{target}' is not host:port.")
            return
        host, port = parsed
        if self.edge.serves(host, port):
            await self._terminate_tls(headers)
        else:
            await self._tunnel(host, port, rest)

    async def _terminate_tls(self, headers: dict[str, str]) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.transport.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.awaiting_tls = True
        try:
            tls = await loop.start_tls(
                self.transport, self, self.edge.ssl_context, server_side=True, ssl_handshake_timeout=15
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
            self.transport.close()
            return
        if tls is None:
            return
        state = {VIA_PROXY: True, PROXY_AUTHORIZATION: headers.get("proxy-authorization")}
        protocol = self.edge.http_protocol(state)
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        if self.tls_early_data:
            protocol.data_received(bytes(self.tls_early_data))

    async def _tunnel(self, host: str, port: int, rest: bytes) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            upstream, up = await asyncio.wait_for(
                loop.create_connection(_TunnelEnd, host, port), timeout=_CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else (exc.strerror or str(exc))
            self._fail(502, "Bad Gateway", f"Keyless proxy: cannot reach {host}:{port}: {reason}.")
            return
        down = _TunnelEnd()
        down.transport = self.transport
        down.peer = upstream
        up.peer = self.transport
        self.transport.set_protocol(down)
        self.transport.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        if rest:
            upstream.write(rest)
        self.transport.resume_reading()


class EdgeServer:
    def __init__(
        self,
        app: ASGIApp,
        ssl_context: ssl.SSLContext,
        host: str,
        https_port: int,
        http_port: int,
        serves_host: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.host = host
        self.requested_https_port = https_port
        self.requested_http_port = http_port
        self._serves_host = serves_host
        self.config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=60,
        )
        self.config.load()
        self.state = ServerState()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.https_port = 0
        self.http_port = 0

    def serves(self, host: str, port: int) -> bool:
        if host in ("localhost", "127.0.0.1", "::1"):
            return port == self.https_port
        return port == 443 and self._serves_host(host)

    def http_protocol(self, app_state: dict[str, Any]) -> asyncio.Protocol:
        factory: Any = self.config.http_protocol_class
        protocol: asyncio.Protocol = factory(config=self.config, server_state=self.state, app_state=app_state)
        return protocol

    def track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._refresh_date()
        https = await loop.create_server(
            lambda: self.http_protocol({}),
            self.host,
            self.requested_https_port,
            ssl=self.ssl_context,
            backlog=2048,
        )
        self._servers.append(https)
        self.https_port = https.sockets[0].getsockname()[1]
        http = await loop.create_server(
            lambda: _ProxyProtocol(self), self.host, self.requested_http_port, backlog=2048
        )
        self._servers.append(http)
        self.http_port = http.sockets[0].getsockname()[1]
        self.track(asyncio.ensure_future(self._tick()))

    def _refresh_date(self) -> None:
        self.state.default_headers = [(b"date", formatdate(time.time(), usegmt=True).encode())]

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1)
            self._refresh_date()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self.state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 5
        while self.state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self._tasks) + list(self.state.tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
