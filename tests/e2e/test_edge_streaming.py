"""The edge relays stream: plain-HTTP forwarding and CONNECT tunnels hold a few chunks, never a
whole body; bytes sent with a CONNECT reach TLS or the tunnel; a long relay holds up no one.

Upstreams are small threaded servers on 127.0.0.1 started by each test (the proxy forwards to
loopback hosts other than its own listener, as a developer's local server needs).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.test_edge_proxy import _connect, _EchoServer, _self_signed
from tests.keyless_server import KeylessServer

MIB = 1024 * 1024
_BLOCK = bytes(range(256)) * 4096  # 1 MiB, the unit every upstream sends


def _vm(pid: int, key: str) -> int:
    """A /proc/<pid>/status memory figure (VmRSS, VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


def _expected_digest(mib: int) -> str:
    digest = hashlib.sha256()
    for _ in range(mib):
        digest.update(_BLOCK)
    return digest.hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def _body_chunks(self) -> Iterator[bytes]:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return
        left = int(self.headers.get("content-length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 256 * 1024))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def _json(self, document: object) -> None:
        payload = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        digest, length = hashlib.sha256(), 0
        for chunk in self._body_chunks():
            digest.update(chunk)
            length += len(chunk)
            if length >= MIB:
                self.server.reached.set()
        self._json(
            {
                "sha256": digest.hexdigest(),
                "length": length,
                "chunked": self.headers.get("transfer-encoding"),
                "x-secret": self.headers.get("x-secret"),
            }
        )

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        mib = int(query.get("mib", "1"))
        if url.path == "/cut":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(10 * MIB))
            self.end_headers()
            self.wfile.write(_BLOCK)
            self.close_connection = True
            return
        self.send_response(200)
        chunked = query.get("chunked") == "1"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(mib * MIB))
        self.end_headers()
        for i in range(mib):
            if url.path == "/gated" and i == 1 and not self.server.gate.wait(10):
                self.close_connection = True  # the client never saw the first MiB: give up
                return
            if url.path == "/drip":
                time.sleep(0.05)
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(_BLOCK), _BLOCK) if chunked else _BLOCK)
            except OSError:
                return
            self.server.sent += len(_BLOCK)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        return None


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.gate = threading.Event()  # opened by the test
        self.reached = threading.Event()  # a request body has delivered its first MiB
        self.sent = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    yield server
    server.gate.set()
    server.shutdown()
    server.server_close()


def _read_all(response: httpx.Response) -> tuple[int, str]:
    digest, length = hashlib.sha256(), 0
    for chunk in response.iter_raw():
        digest.update(chunk)
        length += len(chunk)
    return length, digest.hexdigest()


# --- plain-HTTP forwarding ------------------------------------------------------------------


def test_5_mib_post_is_relayed_intact(server: KeylessServer, upstream: _Upstream) -> None:
    body = os.urandom(5 * MIB)
    with server.client() as http:
        sized = http.post(f"{upstream.base}/digest", content=body)
        chunked = http.post(
            f"{upstream.base}/digest", content=(body[i : i + MIB] for i in range(0, len(body), MIB))
        )
    for r in (sized, chunked):
        assert r.status_code == 200, r.text
        assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
        assert r.json()["length"] == len(body)
    assert sized.json()["chunked"] is None
    assert chunked.json()["chunked"] == "chunked"


def test_request_body_reaches_upstream_before_the_client_has_sent_it_all(
    server: KeylessServer, upstream: _Upstream
) -> None:
    waited: list[bool] = []

    def body() -> Iterator[bytes]:
        yield _BLOCK
        waited.append(upstream.reached.wait(10))  # the first MiB is upstream already
        yield _BLOCK

    with server.client() as http:
        r = http.post(f"{upstream.base}/digest", content=body(), headers={"Content-Length": str(2 * MIB)})
    assert waited == [True]
    assert r.status_code == 200
    assert r.json()["length"] == 2 * MIB and r.json()["sha256"] == _expected_digest(2)


def test_response_reaches_client_before_upstream_has_sent_it_all(
    server: KeylessServer, upstream: _Upstream
) -> None:
    with server.client() as http, http.stream("GET", f"{upstream.base}/gated?mib=2") as r:
        assert r.status_code == 200
        chunks = r.iter_raw()
        first = next(chunks)  # upstream holds back its second MiB until the gate opens
        upstream.gate.set()
        rest = b"".join(chunks)
    assert hashlib.sha256(first + rest).hexdigest() == _expected_digest(2)


def test_200_mib_response_streams_without_growing_the_server(
    new_server: Callable[..., KeylessServer], upstream: _Upstream
) -> None:
    srv = new_server()
    assert srv.process is not None
    pid = srv.process.pid
    with srv.client() as http:
        assert http.get(f"{upstream.base}/x?mib=1").status_code == 200  # warm the relay up
        before = _vm(pid, "VmHWM")
        for query in ("mib=200", "mib=40&chunked=1"):
            with http.stream("GET", f"{upstream.base}/big?{query}") as r:
                assert r.status_code == 200
                mib = int(query.split("&")[0].removeprefix("mib="))
                assert _read_all(r) == (mib * MIB, _expected_digest(mib))
    grown = _vm(pid, "VmHWM") - before
    assert grown < 48 * MIB, f"the server's peak RSS grew by {grown / MIB:.0f} MiB"


def test_upstream_failures_are_502_or_a_closed_connection_never_500(
    server: KeylessServer, upstream: _Upstream
) -> None:
    with server.client() as http:
        with http.stream("GET", f"{upstream.base}/cut") as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                r.read()  # truncated, as the upstream's was
        # An upstream that hangs up before answering.
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def hang_up() -> None:
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        r2 = http.get(f"http://127.0.0.1:{port}/x")
        listener.close()
        assert r2.status_code == 502 and "could not be reached" in r2.text
        assert http.get(f"{upstream.base}/x").status_code == 200  # the relay is fine after


@pytest.mark.parametrize(
    "host", ["a b", "example.test:99999", "exa\x7fmple.test", "a/b", "user@evil.test", "[::1", ""]
)
def test_bad_host_through_the_proxy_is_400(server: KeylessServer, host: str) -> None:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(f"GET http://x/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]


def test_headers_named_by_connection_are_not_forwarded(server: KeylessServer, upstream: _Upstream) -> None:
    with server.client() as http:
        r = http.post(
            f"{upstream.base}/digest",
            content=b"x",
            headers={"Connection": "keep-alive, X-Secret", "X-Secret": "hop"},
        )
    assert r.status_code == 200 and r.json()["x-secret"] is None


# --- CONNECT --------------------------------------------------------------------------------


class _MemoryTLS:
    """A TLS client over a plain socket driven by hand, so the ClientHello can go in any write."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        with pytest.raises(ssl.SSLWantReadError):
            self.tls.do_handshake()
        self.hello = self.outgoing.read()

    def finish(self, sock: socket.socket) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if out := self.outgoing.read():
                    sock.sendall(out)
                data = sock.recv(65536)
                assert data, "the proxy closed the connection during the handshake"
                self.incoming.write(data)
        if out := self.outgoing.read():
            sock.sendall(out)

    def exchange(self, sock: socket.socket, request: bytes) -> bytes:
        """Send ``request``; read until the server closes the TLS session."""
        self.tls.write(request)
        sock.sendall(self.outgoing.read())
        reply = b""
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                raw = sock.recv(65536)
                if not raw:
                    return reply
                self.incoming.write(raw)
                continue
            if not data:  # the server's close_notify
                return reply
            reply += data


@pytest.mark.parametrize("split", [None, 5], ids=["whole-hello", "part-of-hello"])
def test_connect_with_client_hello_in_the_same_write(server: KeylessServer, split: int | None) -> None:
    host = "management.azure.com"
    client = _MemoryTLS(server.ssl_context(), host)
    started = time.monotonic()
    early = client.hello if split is None else client.hello[:split]
    status, sock = _connect(server, f"{host}:443", early=early)
    with sock:
        sock.settimeout(5)
        assert status == "HTTP/1.1 200 Connection Established"
        if split is not None:
            sock.sendall(client.hello[split:])
        client.finish(sock)
        reply = client.exchange(
            sock,
            f"GET /metadata/endpoints?api-version=2022-09-01 HTTP/1.1\r\nHost: {host}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
    assert time.monotonic() - started < 3
    assert reply.startswith(b"HTTP/1.1 200 ") and b'"resourceManager"' in reply


def test_tunnel_with_client_hello_in_the_same_write(server: KeylessServer, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "echo.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    echo = _EchoServer(context)
    try:
        client = _MemoryTLS(ssl.create_default_context(cafile=str(cert)), "echo.test")
        status, sock = _connect(server, f"127.0.0.1:{echo.port}", early=client.hello)
        with sock:
            sock.settimeout(5)
            assert status == "HTTP/1.1 200 Connection Established"
            client.finish(sock)
            client.tls.write(b"ping")
            sock.sendall(client.outgoing.read())
            got = b""
            while got != b"ping":
                try:
                    got += client.tls.read(64)
                except ssl.SSLWantReadError:
                    client.incoming.write(sock.recv(65536))
    finally:
        echo.close()


@pytest.mark.parametrize("then_hang_up", [False, True])
def test_tunnel_keeps_what_upstream_says_first(server: KeylessServer, then_hang_up: bool) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def greet() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 hello\r\n")  # a server-first protocol (SMTP, SSH...)
            if not then_hang_up:
                conn.recv(1)

    threading.Thread(target=greet, daemon=True).start()
    try:
        status, sock = _connect(server, f"127.0.0.1:{listener.getsockname()[1]}")
        with sock:
            sock.settimeout(5)
            assert status == "HTTP/1.1 200 Connection Established"
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = sock.recv(64)
                assert chunk
                got += chunk
            if then_hang_up:
                assert sock.recv(64) == b""  # and then the upstream's end of the stream
        assert got == b"220 hello\r\n"
    finally:
        listener.close()


@pytest.mark.parametrize("target", ["127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:0000000443"])
def test_connect_port_out_of_range_is_400(server: KeylessServer, target: str) -> None:
    status, sock = _connect(server, target)
    sock.close()
    assert status.startswith("HTTP/1.1 400")


def test_tunnel_applies_backpressure_both_ways(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    assert srv.process is not None
    pid = srv.process.pid
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()
    pushed: list[int] = [0]
    received: list[int] = [0]

    def slow_peer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(30)
            conn.setblocking(False)
            deadline = time.monotonic() + 2  # push 256 MiB at a client that does not read
            while time.monotonic() < deadline and pushed[0] < 256 * MIB:
                try:
                    pushed[0] += conn.send(_BLOCK)
                except BlockingIOError:
                    time.sleep(0.01)
            release.wait(30)  # then read what the client sends, slowly at first
            conn.setblocking(True)
            while chunk := conn.recv(1 << 20):
                received[0] += len(chunk)

    threading.Thread(target=slow_peer, daemon=True).start()
    before = _vm(pid, "VmHWM")
    status, sock = _connect(srv, f"127.0.0.1:{listener.getsockname()[1]}")
    with sock:
        assert status == "HTTP/1.1 200 Connection Established"
        time.sleep(2.5)
        assert pushed[0] < 128 * MIB, f"{pushed[0] / MIB:.0f} MiB went into a tunnel nobody reads"
        sock.settimeout(1)
        sent = 0
        with pytest.raises(TimeoutError):
            while sent < 256 * MIB:
                sent += sock.send(_BLOCK)  # the peer reads nothing yet: this blocks well before
        assert sent < 128 * MIB
        release.set()
        sock.settimeout(30)
        sock.sendall(_BLOCK)
        sent += len(_BLOCK)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(1 << 20):
            pass
    listener.close()
    deadline = time.monotonic() + 10
    while received[0] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received[0] == sent
    grown = _vm(pid, "VmHWM") - before
    assert grown < 48 * MIB, f"the server's peak RSS grew by {grown / MIB:.0f} MiB"


# --- liveness -------------------------------------------------------------------------------


def test_long_relays_hold_up_no_other_request(server: KeylessServer, upstream: _Upstream) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def slow_download() -> None:
        try:
            with server.client() as http, http.stream("GET", f"{upstream.base}/big?mib=300") as r:
                for _ in r.iter_raw():
                    if stop.wait(0.01):
                        return
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    def dripping_download() -> None:
        try:
            with server.client() as http, http.stream("GET", f"{upstream.base}/drip?mib=100") as r:
                for _ in r.iter_raw():
                    if stop.is_set():
                        return
        except BaseException as exc:
            errors.append(exc)

    stalled = socket.create_connection(("127.0.0.1", server.http_port))
    stalled.sendall(
        f"POST {upstream.base}/digest HTTP/1.1\r\nHost: 127.0.0.1:{upstream.server_address[1]}\r\n"
        f"Content-Length: {100 * MIB}\r\n\r\n".encode()
        + _BLOCK
    )
    threads = [threading.Thread(target=f, daemon=True) for f in (slow_download, dripping_download)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        assert upstream.sent > 0
        with server.client(via_proxy=False) as direct, server.client() as proxied:
            for _ in range(5):
                for http, url in (
                    (direct, f"{server.direct_url}/_keyless/health"),
                    (proxied, f"https://127.0.0.1:{server.https_port}/_keyless/health"),
                ):
                    started = time.monotonic()
                    r = http.get(url, timeout=5)
                    assert r.status_code == 200
                    assert time.monotonic() - started < 1
                time.sleep(0.1)
        assert not errors, errors
        assert all(thread.is_alive() for thread in threads)  # still relaying
    finally:
        stop.set()
        stalled.close()
        for thread in threads:
            thread.join(30)
