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

from keyless.edge.forward import parse_authority
from keyless.edge.routing import PROXY_AUTHORIZATION, VIA_PROXY
from keyless.web import ASGIApp

_MAX_HEAD = 64 * 1024
_CONNECT_TIMEOUT = 10.0
# A client has this long (seconds) to send its first request head; then the connection closes
# (as long as uvicorn lets a kept-alive connection wait for its next request, below).
_HEAD_TIMEOUT = 60.0
# A tunnel with no bytes either way for this long (seconds) is closed (Azure's load balancers
# drop idle TCP flows after 4 minutes by default).
_TUNNEL_IDLE = 300.0
# Bytes one tunnel end holds, when its other end is not yet open, before it stops reading.
_TUNNEL_PENDING = 64 * 1024


def split_authority(target: str) -> tuple[str, int] | None:
    """A CONNECT target, ``host:port`` or ``[v6]:port`` -> (host, port); None if malformed."""
    parsed = parse_authority(target)
    if parsed is None or parsed[1] is None:
        return None
    return parsed[0], parsed[1]


def feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Deliver ``data`` to ``protocol`` as if its transport had just read it.

    For bytes read off a socket before the protocol that should have them took it over.
    """
    if not hasattr(protocol, "buffer_updated"):
        cast(asyncio.Protocol, protocol).data_received(data)
        return
    # A buffered protocol, as the TLS protocols of asyncio and uvloop are (uvloop's without
    # subclassing asyncio.BufferedProtocol).
    buffered = cast(asyncio.BufferedProtocol, protocol)
    view = memoryview(data)
    while view:
        buffer = memoryview(buffered.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        buffered.buffer_updated(size)
        view = view[size:]


class _Tunnel:
    """Both ends of one byte tunnel (client and upstream), and its idle timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.seen = loop.time()
        self.client = _TunnelEnd(self)
        self.upstream = _TunnelEnd(self)
        self.client.other = self.upstream
        self.upstream.other = self.client
        self.timer: asyncio.TimerHandle | None = None

    def open(self, client: asyncio.Transport, early: bytes) -> None:
        """Take over the (paused) client connection, now that upstream is connected.

        ``early`` is what the client sent after the CONNECT head; it goes upstream first.
        """
        self.client.transport = client
        client.set_protocol(self.client)
        client.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.upstream.flush()
        upstream = self.upstream.transport
        if upstream is None or upstream.is_closing():
            self.close()  # upstream has already hung up: the client gets what it said, then EOF
            return
        if early:
            self.client.data_received(early)
        client.resume_reading()
        self.timer = self.loop.call_later(_TUNNEL_IDLE, self._check_idle)

    def _check_idle(self) -> None:
        idle = self.loop.time() - self.seen
        if idle >= _TUNNEL_IDLE:
            self.close()
        else:
            self.timer = self.loop.call_later(_TUNNEL_IDLE - idle, self._check_idle)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for end in (self.client, self.upstream):
            transport = end.transport
            if transport is not None and not transport.is_closing():
                transport.close()  # after its buffered bytes are written...
                if transport.get_write_buffer_size():
                    # ...unless the reader never takes them.
                    self.loop.call_later(_TUNNEL_IDLE, transport.abort)


class _TunnelEnd(asyncio.Protocol):
    """One side of a byte tunnel: what it reads is written to ``other``'s transport.

    Backpressure both ways: when one side's write buffer fills, the other side stops reading.
    """

    def __init__(self, tunnel: _Tunnel) -> None:
        self.tunnel = tunnel
        self.transport: asyncio.Transport | None = None
        self.other: _TunnelEnd | None = None
        # Read before the other side was open (an upstream that speaks first): kept, not dropped.
        self.pending = bytearray()
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def _peer(self) -> asyncio.Transport | None:
        return self.other.transport if self.other is not None else None

    def flush(self) -> None:
        """Pass on what arrived before the other side was open, and read on."""
        peer = self._peer()
        if peer is None or self.transport is None:
            return
        if self.pending:
            peer.write(bytes(self.pending))
            self.pending.clear()
        if self.eof:
            self.eof_received()
        elif not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.tunnel.seen = self.tunnel.loop.time()
        peer = self._peer()
        if peer is not None:
            peer.write(data)
            return
        self.pending += data
        if len(self.pending) > _TUNNEL_PENDING and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        peer = self._peer()
        if peer is None:
            return True  # passed on by flush()
        if peer.is_closing():
            return False
        if self.other is not None and self.other.eof:
            self.tunnel.close()  # both directions are finished
            return True
        if peer.can_write_eof():
            peer.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.close()

    def pause_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.resume_reading()


class _ProxyProtocol(asyncio.Protocol):
    """Reads one request head, then becomes an HTTP server connection, a TLS endpoint or a tunnel."""

    def __init__(self, edge: EdgeServer) -> None:
        self.edge = edge
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.awaiting_tls = False
        self.tls_early_data = bytearray()
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.head_timer = asyncio.get_running_loop().call_later(_HEAD_TIMEOUT, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()

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
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        head = bytes(self.buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self._fail(400, "Bad Request")
            return
        method, target, _version = parts
        if method.upper() != "CONNECT":
            # A plain request: absolute-form means it came through the proxy. The whole buffer
            # (head, and any body or pipelined requests after it) goes to the HTTP protocol.
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
        # Bytes after the head (a TLS ClientHello sent in the same write) belong to the tunnel.
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
        try:
            parsed = split_authority(target)
            if parsed is None:
                self._fail(400, "Bad Request", f"Keyless proxy: '{target}' is not host:port.")
                return
            host, port = parsed
            if self.edge.serves(host, port):
                await self._terminate_tls(headers, rest)
            else:
                await self._tunnel(host, port, rest)
        except BaseException:
            self.transport.close()  # never leave a paused connection behind
            raise

    async def _terminate_tls(self, headers: dict[str, str], rest: bytes) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.transport.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.awaiting_tls = True
        handshake = asyncio.ensure_future(
            loop.start_tls(
                self.transport, self, self.edge.ssl_context, server_side=True, ssl_handshake_timeout=15
            )
        )
        if rest:
            # start_tls's first step (run before this callback) installs the TLS protocol with
            # reading paused; the bytes go in ahead of anything read from the socket after.
            loop.call_soon(self._feed_tls, rest)
        try:
            tls = await handshake
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
            self.transport.close()
            return
        if tls is None:
            return
        # The tunnel's credentials are the CONNECT's, and only those: a Proxy-Authorization header
        # sent inside the tunnel counts for nothing ("" marks "the CONNECT carried none").
        state = {VIA_PROXY: True, PROXY_AUTHORIZATION: headers.get("proxy-authorization") or ""}
        protocol = self.edge.http_protocol(state)
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        if self.tls_early_data:
            protocol.data_received(bytes(self.tls_early_data))

    def _feed_tls(self, data: bytes) -> None:
        assert self.transport is not None
        tls_protocol = self.transport.get_protocol()
        if tls_protocol is self:
            self.transport.close()  # TLS did not take over: the bytes cannot be placed in order
            return
        feed(tls_protocol, data)

    async def _tunnel(self, host: str, port: int, rest: bytes) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        tunnel = _Tunnel(loop)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: tunnel.upstream, host, port), timeout=_CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError, ValueError) as exc:
            if isinstance(exc, TimeoutError):
                reason = "timed out"
            else:
                reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            self._fail(502, "Bad Gateway", f"Keyless proxy: cannot reach {host}:{port}: {reason}.")
            return
        if self.transport.is_closing():
            tunnel.close()  # the client left while upstream was being reached
            return
        tunnel.open(self.transport, rest)


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
            timeout_keep_alive=int(_HEAD_TIMEOUT),
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
