"""The network edge: an authenticated resource GET over HTTPS at concurrency 16, direct (https://
127.0.0.1:<port>) and through the forward proxy (CONNECT management.azure.com:443, TLS from the
local CA), beside the same server's bare endpoints in one run: /_keyless/bare, a bare Starlette
JSON endpoint (the peer issue 2 names), and /_keyless/bare-asgi, the same 580-byte document from
a raw ASGI callable (the floor of this server stack, for reference).

Targets (issue 2): through the proxy >= 0.7x direct; resource GET >= 0.25x bare.

wrk cannot speak through a proxy, so every figure here comes from one load generator of our
own, the same way for all three: 16 keep-alive connections on uvloop, each sending its next
request as soon as the previous response is complete (a closed loop, as wrk does). The server
is pinned to one core and the load generator to the other. For reference, wrk's own figures
for the two cases it can measure (bare and direct) are printed too.

    python bench/edge.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import uvloop

from wrk import CLIENT_CORE, Measurement, start_server, wrk

if TYPE_CHECKING:
    from tests.keyless_server import KeylessServer

CONNECTIONS = 16
ARM_HOST = "management.azure.com"
MSI_API = "2024-11-30"


@dataclass
class _Run:
    measuring: bool = False
    stop: bool = False
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection in a closed loop: send, read the whole response, repeat."""

    def __init__(self, request: bytes, run: _Run) -> None:
        self.request = request
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15 : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        if not head.startswith(b"http/1.1 200"):
            self.run.errors += 1
        del self.buffer[: end + 4 + length]
        if self.run.measuring:
            self.run.latencies.append(time.perf_counter() - self.sent_at)
        if self.run.stop:
            assert self.transport is not None
            self.transport.close()
        else:
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _ConnectReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT, then hands the connection to TLS."""

    def __init__(self) -> None:
        self.buffer = b""
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer and not self.done.done():
            self.done.set_result(self.buffer.split(b"\r\n", 1)[0])


async def _open(
    run: _Run,
    request: bytes,
    ctx: ssl.SSLContext,
    https_port: int,
    proxy_port: int | None,
) -> _Client:
    loop = asyncio.get_running_loop()
    if proxy_port is None:
        _, client = await loop.create_connection(
            lambda: _Client(request, run), "127.0.0.1", https_port, ssl=ctx, server_hostname=ARM_HOST
        )
        return client
    raw, reply = await loop.create_connection(_ConnectReply, "127.0.0.1", proxy_port)
    raw.write(f"CONNECT {ARM_HOST}:443 HTTP/1.1\r\nHost: {ARM_HOST}:443\r\n\r\n".encode())
    status = await reply.done
    assert status.startswith(b"HTTP/1.1 200"), status
    client = _Client(request, run)
    tls = await loop.start_tls(raw, client, ctx, server_hostname=ARM_HOST)
    assert tls is not None
    client.connection_made(tls)
    return client


async def _measure(
    request: bytes, ctx: ssl.SSLContext, https_port: int, proxy_port: int | None, seconds: float
) -> Measurement:
    run = _Run()
    clients = [await _open(run, request, ctx, https_port, proxy_port) for _ in range(CONNECTIONS)]
    for client in clients:
        client.send()
    await asyncio.sleep(min(2.0, seconds / 4))  # warm up
    run.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    run.measuring = False
    elapsed = time.perf_counter() - started
    count = len(run.latencies)
    run.stop = True
    await asyncio.gather(*(c.closed for c in clients))
    if run.errors:
        raise SystemExit(f"{run.errors} responses were not 200 OK")
    latencies = sorted(run.latencies)
    return Measurement(
        count / elapsed, statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000
    )


def _request(path: str, token: str | None, host: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def measure(
    request: bytes, ctx: ssl.SSLContext, https_port: int, proxy_port: int | None, seconds: float
) -> Measurement:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(request, ctx, https_port, proxy_port, seconds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-wrk", action="store_true", help="skip wrk's reference figures")
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-pc", CLIENT_CORE, str(os.getpid())], capture_output=True, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args.seconds, args.rounds, not args.no_wrk)
        finally:
            server.stop()


def run(server: KeylessServer, seconds: float, rounds: int, with_wrk: bool) -> None:
    token = server.admin_token()
    path = (
        f"/subscriptions/{server.subscription_id}/resourceGroups/bench/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/id1?api-version={MSI_API}"
    )
    with server.arm(token) as arm:
        group = f"/subscriptions/{server.subscription_id}/resourceGroups/bench"
        assert (
            arm.put(group, params={"api-version": "2024-03-01"}, json={"location": "westeurope"}).status_code
            == 201
        )
        assert arm.put(path, json={"location": "westeurope"}).status_code == 201
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    https, proxy = server.https_port, server.http_port
    local = f"127.0.0.1:{https}"  # direct mode: the resource manager on https://127.0.0.1:<port>
    cases = {
        "bare": (_request("/_keyless/bare", None, local), None),
        "bare-asgi": (_request("/_keyless/bare-asgi", None, local), None),
        "direct": (_request(path, token, local), None),
        "proxy": (_request(path, token, ARM_HOST), proxy),
    }
    results: dict[str, list[Measurement]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleaved, so drift hits every case alike
        for name, (request, proxy_port) in cases.items():
            results[name].append(measure(request, ctx, https, proxy_port, seconds))
    best = {name: max(ms, key=lambda m: m.requests_per_second) for name, ms in results.items()}

    print(f"Edge benchmark: concurrency {CONNECTIONS}, {seconds:g} s x {rounds} rounds, best round shown")
    print(best["bare"].line("bare Starlette JSON endpoint, HTTPS"))
    print(best["bare-asgi"].line("bare raw-ASGI endpoint, HTTPS (reference)"))
    print(best["direct"].line("UAMI GET, HTTPS direct"))
    print(best["proxy"].line("UAMI GET, HTTPS through the proxy"))
    resource_ratio = best["direct"].requests_per_second / best["bare"].requests_per_second
    proxy_ratio = best["proxy"].requests_per_second / best["direct"].requests_per_second
    print(f"{'resource GET (direct) / bare Starlette':<44} {resource_ratio:10.2f}x   (target >= 0.25x)")
    floor_ratio = best["direct"].requests_per_second / best["bare-asgi"].requests_per_second
    print(f"{'resource GET (direct) / bare raw ASGI':<44} {floor_ratio:10.2f}x   (reference)")
    print(f"{'through the proxy / direct':<44} {proxy_ratio:10.2f}x   (target >= 0.70x)")
    if with_wrk:
        bare = wrk(f"https://127.0.0.1:{https}/_keyless/bare", seconds=int(seconds))
        direct = wrk(
            f"https://127.0.0.1:{https}{path}",
            headers={"Authorization": f"Bearer {token}"},
            seconds=int(seconds),
        )
        print("Reference, with wrk (cannot use a proxy):")
        print(bare.line("  bare Starlette endpoint, HTTPS (wrk)"))
        print(direct.line("  UAMI GET, HTTPS direct (wrk)"))
        print(
            f"{'  resource GET / bare (wrk)':<44} {direct.requests_per_second / bare.requests_per_second:10.2f}x"
        )


if __name__ == "__main__":
    main()
