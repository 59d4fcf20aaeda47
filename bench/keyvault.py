"""Key Vault data plane: unwrapKey RSA-OAEP-256 (RSA-2048 and RSA-3072) and secret get at
concurrency 16 through the forward proxy (CONNECT {vault}.vault.azure.net:443, TLS from the
local CA), with the wire format azure-keyvault-keys/-secrets send, beside two peers measured in
the same run: raw single-thread `cryptography` RSA-OAEP-256 decrypt for each key size, and the
same server's bare Starlette JSON endpoint (/_keyless/bare).

Targets (issue text): unwrapKey >= 0.6x the raw single-thread decrypt rate for both sizes
(Azure's per-vault limit for software RSA-2048 is 400/s); secret get >= 0.25x bare.

Load comes from the generator of bench/edge.py (16 keep-alive connections on uvloop, closed loop
as wrk; wrk cannot CONNECT through a proxy). The bare endpoint is served only on the local host
names, which the proxy tunnels rather than terminates, so it is measured over HTTPS on the
listener; secret get is measured both ways (direct: Host `{vault}.vault.azure.net` on the HTTPS
listener) so the proxy's share is visible and the ratio to bare is like for like. The server is
pinned to core 0, this process (load generator and the raw peer) to core 1.

Besides requests/s, every case prints the server's CPU time per request (all its threads, from
/proc) and the peer its CPU time per decrypt; the ratios of those are printed too. On a machine
other work shares they move far less than requests/s (see bench/RESULTS.md, 2026-11-29).
KEYLESS_BENCH_DATABASE_URL runs the server on another database (PostgreSQL), as bench/wrk.py does.

Wire format (shared/reference/keyvault.md §1, azure-keyvault-keys 4.11 `CryptographyClient`):
`POST /keys/{name}/{version}/unwrapkey?api-version=2025-07-01` with `{"alg":"RSA-OAEP-256",
"value": base64url}` answered `{kid, value}`; `get_secret(name)` sends `GET /secrets/{name}/`
(empty version segment = latest).

    python bench/keyvault.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import uvloop
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The closed-loop connection of the edge benchmark, so every benchmark loads the server alike.
from edge import _Client, _ConnectReply, _Run
from wrk import CLIENT_CORE, Measurement, start_server

if TYPE_CHECKING:
    from tests.keyless_server import KeylessServer

CONNECTIONS = 16
KV_API = "2023-07-01"  # Microsoft.KeyVault/vaults (ARM)
DATA_API = "2025-07-01"  # data plane, azure-keyvault-keys 4.11 default
VAULT = "kvbench"
HOST = f"{VAULT}.vault.azure.net"
SIZES = (2048, 3072)
OAEP_256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
# learn.microsoft.com/azure/key-vault/general/service-limits, software keys, RSA 2,048-bit
# cryptographic operations: 4,000 transactions per 10 s per vault (the 400/s).
AZURE_RSA2048_LIMIT = 400


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Result:
    """One load case: wrk-style figures, and the server's CPU time per request (all its threads,
    from /proc; None where /proc is absent), which other work on the machine inflates far less
    than requests/s."""

    measurement: Measurement
    cpu_us: float | None


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (every thread), or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(run: Callable[[], object], seconds: float) -> tuple[float, float]:
    """Calls per second of ``run()`` on this thread for about ``seconds``, and CPU us per call."""
    run()
    count, started, cpu = 0, time.perf_counter(), time.thread_time()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(20):
            run()
        count += 20
    return count / elapsed, (time.thread_time() - cpu) * 1e6 / count


def raw_decrypt_rate(size: int, seconds: float) -> tuple[float, float]:
    """The peer: `cryptography` RSA-OAEP-256 decrypt of a 32-byte key, single thread: (ops/s, CPU us/op)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=size)
    ciphertext = key.public_key().encrypt(os.urandom(32), OAEP_256)
    return rate(lambda: key.decrypt(ciphertext, OAEP_256), seconds)


async def _open(run: _Run, request: bytes, ctx: ssl.SSLContext, host: str, port: int, proxy: bool) -> _Client:
    """One connection: to ``port`` directly with SNI ``host``, or CONNECT ``host``:443 via the proxy."""
    loop = asyncio.get_running_loop()
    if not proxy:
        _, client = await loop.create_connection(
            lambda: _Client(request, run), "127.0.0.1", port, ssl=ctx, server_hostname=host
        )
        return client
    raw, reply = await loop.create_connection(_ConnectReply, "127.0.0.1", port)
    raw.write(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    status = await reply.done
    assert status.startswith(b"HTTP/1.1 200"), status
    client = _Client(request, run)
    tls = await loop.start_tls(raw, client, ctx, server_hostname=host)
    assert tls is not None
    client.connection_made(tls)
    return client


@dataclass(frozen=True)
class Case:
    """One load: the raw request, the TLS server name, the port, and whether it is a CONNECT port."""

    request: bytes
    host: str
    port: int
    proxy: bool


async def _measure(case: Case, ctx: ssl.SSLContext, seconds: float, server_pid: int) -> Result:
    run = _Run()
    clients = [
        await _open(run, case.request, ctx, case.host, case.port, case.proxy) for _ in range(CONNECTIONS)
    ]
    for client in clients:
        client.send()
    await asyncio.sleep(min(2.0, seconds / 4))  # warm up
    run.measuring = True
    started, cpu_before = time.perf_counter(), server_cpu_seconds(server_pid)
    await asyncio.sleep(seconds)
    run.measuring = False
    elapsed, cpu_after = time.perf_counter() - started, server_cpu_seconds(server_pid)
    count = len(run.latencies)
    run.stop = True
    await asyncio.gather(*(c.closed for c in clients))
    if run.errors:
        raise SystemExit(f"{run.errors} responses were not 200 OK")
    latencies = sorted(run.latencies)
    cpu_us = None
    if cpu_before is not None and cpu_after is not None:
        # The CPU of responses completed just after the window is counted too: +-16 of thousands.
        cpu_us = (cpu_after - cpu_before) * 1e6 / count
    return Result(
        Measurement(
            count / elapsed,
            statistics.median(latencies) * 1000,
            latencies[int(len(latencies) * 0.99) - 1] * 1000,
        ),
        cpu_us,
    )


def measure(case: Case, ctx: ssl.SSLContext, seconds: float, server_pid: int) -> Result:
    """requests/s, p50 and p99 of ``case`` sent by 16 closed-loop keep-alive connections."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(case, ctx, seconds, server_pid))


def http_request(method: str, target: str, host: str, token: str | None, body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request as azure-core sends it (JSON body, bearer token)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def set_up(server: KeylessServer) -> tuple[str, dict[int, tuple[str, bytes]]]:
    """A vault with an admin access policy, one RSA key per size and a secret; returns the vault
    token and, per size, (key version, RSA-OAEP-256 ciphertext of a 32-byte key wrapped locally
    with the key's public n, e). Every unwrap is checked once before the load."""
    group = f"/subscriptions/{server.subscription_id}/resourceGroups/bench"
    with server.arm() as arm:
        r = arm.put(group, params={"api-version": "2024-03-01"}, json={"location": "westeurope"})
        assert r.status_code in (200, 201), r.text
        policy = {
            "tenantId": server.tenant_id,
            "objectId": server.admin["objectId"],
            "permissions": {"keys": ["all"], "secrets": ["all"]},
        }
        r = arm.put(
            f"{group}/providers/Microsoft.KeyVault/vaults/{VAULT}",
            params={"api-version": KV_API},
            json={
                "location": "westeurope",
                "properties": {
                    "tenantId": server.tenant_id,
                    "sku": {"family": "A", "name": "standard"},
                    "accessPolicies": [policy],
                },
            },
        )
        assert r.status_code in (200, 201), r.text
    token = server.admin_token("https://vault.azure.net")
    keys: dict[int, tuple[str, bytes]] = {}
    with server.client(base_url=f"https://{HOST}", headers={"Authorization": f"Bearer {token}"}) as kv:
        params = {"api-version": DATA_API}
        for size in SIZES:
            r = kv.post(f"/keys/rsa{size}/create", params=params, json={"kty": "RSA", "key_size": size})
            assert r.status_code == 200, r.text
            jwk = r.json()["key"]
            public = rsa.RSAPublicNumbers(
                int.from_bytes(_unb64url(jwk["e"]), "big"), int.from_bytes(_unb64url(jwk["n"]), "big")
            ).public_key()
            secret_key = os.urandom(32)
            wrapped = public.encrypt(secret_key, OAEP_256)
            version = jwk["kid"].rsplit("/", 1)[1]
            r = kv.post(
                f"/keys/rsa{size}/{version}/unwrapkey",
                params=params,
                json={"alg": "RSA-OAEP-256", "value": _b64url(wrapped)},
            )
            assert r.status_code == 200 and _unb64url(r.json()["value"]) == secret_key, r.text
            keys[size] = (version, wrapped)
        r = kv.put("/secrets/s1", params=params, json={"value": "bench-" + "x" * 58})
        assert r.status_code == 200, r.text
        r = kv.get("/secrets/s1/", params=params)
        assert r.status_code == 200 and r.json()["value"].startswith("bench-"), r.text
    return token, keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-pc", CLIENT_CORE, str(os.getpid())], capture_output=True, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args.seconds, args.rounds)
        finally:
            server.stop()


def run(server: KeylessServer, seconds: float, rounds: int) -> None:
    token, keys = set_up(server)
    load_before = os.getloadavg()[0]
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    https, proxy = server.https_port, server.http_port
    secret_get = http_request("GET", f"/secrets/s1/?api-version={DATA_API}", HOST, token)
    cases = {
        "bare": Case(http_request("GET", "/_keyless/bare", f"127.0.0.1:{https}", None), HOST, https, False),
        "secret-direct": Case(secret_get, HOST, https, False),
        "secret": Case(secret_get, HOST, proxy, True),
    }
    for size, (version, wrapped) in keys.items():
        body = orjson.dumps({"alg": "RSA-OAEP-256", "value": _b64url(wrapped)})
        target = f"/keys/rsa{size}/{version}/unwrapkey?api-version={DATA_API}"
        cases[f"unwrap{size}"] = Case(http_request("POST", target, HOST, token, body), HOST, proxy, True)
    assert server.process is not None
    results: dict[str, list[Result]] = {name: [] for name in cases}
    raw: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
    for _ in range(rounds):  # interleaved, so drift hits every case alike
        for size in SIZES:
            raw[size].append(raw_decrypt_rate(size, min(seconds, 5)))
        for name, case in cases.items():
            results[name].append(measure(case, ctx, seconds, server.process.pid))
    best = {name: max(rs, key=lambda r: r.measurement.requests_per_second) for name, rs in results.items()}
    peer = {size: max(rates) for size, rates in raw.items()}
    report(best, peer, seconds, rounds)
    # Other work on the machine shares the cores: say how busy it was (1-minute load average).
    print(
        f"load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores"
    )


def report(
    best: dict[str, Result], peer: dict[int, tuple[float, float]], seconds: float, rounds: int
) -> None:
    """Print every figure, its peer's figure from the same run, and the ratio against the target;
    then the same ratios from CPU time per request (server) and per decrypt (peer)."""

    def rps(name: str) -> float:
        return best[name].measurement.requests_per_second

    def line(name: str, label: str) -> None:
        cpu = best[name].cpu_us
        print(best[name].measurement.line(label) + (f"   cpu {cpu:7.0f} us/req" if cpu is not None else ""))

    def ratio(label: str, value: float, base: float, target: str) -> None:
        print(f"{label:<44} {value / base:10.2f}x   {target}")

    print(
        f"Key Vault benchmark: concurrency {CONNECTIONS}, {seconds:g} s x {rounds} rounds, best round shown"
    )
    line("bare", "bare Starlette JSON endpoint, HTTPS")
    line("secret-direct", "secret get, HTTPS direct (Host: vault)")
    line("secret", "secret get, through the proxy")
    for size in SIZES:
        line(f"unwrap{size}", f"unwrapKey RSA-OAEP-256 {size}, proxy")
        ops, cpu = peer[size]
        print(
            f"{f'raw cryptography decrypt RSA-{size}, 1 thread':<44} {ops:>10,.0f} ops/s {'':35}cpu {cpu:7.0f} us/op"
        )
    for size in SIZES:
        ratio(f"unwrapKey {size} / raw decrypt", rps(f"unwrap{size}"), peer[size][0], "(target >= 0.60x)")
    ratio("secret get (proxy) / bare", rps("secret"), rps("bare"), "(target >= 0.25x)")
    ratio("secret get (direct) / bare", rps("secret-direct"), rps("bare"), "(like for like)")
    ratio("secret get: proxy / direct", rps("secret"), rps("secret-direct"), "(reference)")
    print(
        f"{'unwrapKey 2048 / Azure per-vault limit':<44} {rps('unwrap2048') / AZURE_RSA2048_LIMIT:10.1f}x   (400/s)"
    )
    if all(r.cpu_us for r in best.values()):
        print(
            "The same ratios from CPU time (what a quiet core would give; peer CPU / server CPU per request):"
        )
        for size in SIZES:
            server_cpu = best[f"unwrap{size}"].cpu_us or 1.0
            ratio(f"  unwrapKey {size} / raw decrypt (CPU)", peer[size][1], server_cpu, "(target >= 0.60x)")
        secret_cpu, bare_cpu = best["secret"].cpu_us or 1.0, best["bare"].cpu_us or 1.0
        ratio("  secret get (proxy) / bare (CPU)", bare_cpu, secret_cpu, "(target >= 0.25x)")


if __name__ == "__main__":
    main()
