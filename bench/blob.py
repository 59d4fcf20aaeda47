"""Blob data plane: Keyless beside Azurite (npm `azurite`, installed by this script into
/tmp/azurite-bench) in the same run, driven by the same azure-storage-blob client code.

Cases (issue text): 64 MiB upload and download (MB/s), 4 KiB put and get at concurrency 16
(ops/s), listing 10,000 blobs (blobs/s), and the server's peak memory during a 64 MiB and a
1 GiB upload + download (target: flat in blob size). Target >= 1.0x Azurite on each.

Sides, each a `BlobServiceClient(account_url, credential, transport=...)` built by one function:

- ``keyless-bearer``: ``https://{account}.blob.core.windows.net`` through Keyless's forward
  proxy (CONNECT, TLS from the local CA), with the admin's token for https://storage.azure.com
  holding Storage Blob Data Contributor on the account, as a program under `keyless run` would.
  Keyless validates the token, the account's network rules and RBAC on every request.
- ``keyless-sharedkey``: the same URL and proxy, the account's key 1 (SharedKey HMAC per request).
- ``azurite-bearer``: Azurite over HTTPS (a self-signed certificate made here) with
  ``--oauth basic`` and the same Keyless token. Azurite's basic OAuth checks the token's issuer
  prefix, audience and lifetime only (no signature, no RBAC).
- ``azurite-sharedkey``: the same Azurite, the well-known devstoreaccount1 key.

Both servers use TLS and store blobs on disk in a temporary directory; Azurite runs with
``--silent`` (no access log; Keyless logs no requests by default either). Each server is pinned
to core 0, this process (the client: 16 threads) to core 1. The SDK's defaults are kept
(``max_single_put_size`` 64 MiB, so a 64 MiB upload is one Put Blob; 4 MiB blocks above that;
``max_concurrency=16`` for upload and download). Every case prints the server's CPU time per
unit of work (all its threads, from /proc), and the ratios of those: the Python client is often
the bottleneck (its own CPU per op is printed too), and on a shared machine CPU time moves far
less than rates. Memory: the server's VmRSS sampled every 10 ms (peak above the idle figure).

    python bench/blob.py [--seconds 8] [--rounds 2] [--big-mib 1024] [--sides keyless-bearer,...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from wrk import CLIENT_CORE, SERVER_CORE, start_server

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from tests.keyless_server import KeylessServer

CONCURRENCY = 16
MIB = 1024 * 1024
SMALL = 4 * 1024
LIST_COUNT = 10_000
CONTAINER = "bench"
STORAGE_API = "2026-09-01"  # Microsoft.Storage (ARM), as tests/e2e/storage_helpers.py
CONTRIBUTOR = "Storage Blob Data Contributor"

# --- the two servers and the one client ------------------------------------------------------

AZURITE_DIR = Path(tempfile.gettempdir()) / "azurite-bench"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (README "Default Storage Account"); not a secret.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Side:
    """One server and credential as the client sees it: ``credential`` a token credential or
    ``{"account_name", "account_key"}``; ``verify`` the CA file; ``proxy`` an http:// forward
    proxy or None; ``pid`` the server process (for CPU and memory)."""

    name: str
    url: str
    credential: Any
    verify: str
    proxy: str | None
    pid: int


class StaticToken:
    """A TokenCredential that hands out one bearer token (an hour's lifetime is ample)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3000)


def service_client(side: Side) -> BlobServiceClient:
    """The same azure-storage-blob client for every side: a requests session with room for 64
    pooled connections (the default 10 would reopen TLS under 16 threads), no environment proxy
    settings, the side's CA and proxy."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobServiceClient

    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    proxies = {"https": side.proxy} if side.proxy else {}
    session.proxies.update(proxies)
    transport = RequestsTransport(session=session, session_owner=False, connection_verify=side.verify)
    return BlobServiceClient(
        side.url,
        credential=side.credential,
        transport=transport,
        connection_verify=side.verify,
        proxies=proxies,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost (EC P-256, one day) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azurite-bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class Azurite:
    """`azurite-blob` (npm, installed into /tmp/azurite-bench on first use) over HTTPS with basic
    OAuth, blobs on disk under ``directory``, pinned to the server core."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.cert = directory / "cert.pem"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Azurite:
        binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
        if not binary.exists():
            AZURITE_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run(["npm", "install", "--no-save", "azurite"], cwd=AZURITE_DIR, check=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert, key = _self_signed(self.directory)
        self.port = _free_port()
        cmd = [
            str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(self.directory / "data"), "--skipApiVersionCheck", "--loose", "--silent",
            "--oauth", "basic", "--cert", str(self.cert), "--key", str(key),
        ]  # fmt: skip
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            cmd = ["taskset", "-c", SERVER_CORE, *cmd]
        log = (self.directory / "azurite.log").open("ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"azurite exited: {(self.directory / 'azurite.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit("azurite did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- set-up --------------------------------------------------------------------------------


def keyless_sides(server: KeylessServer, token: str) -> list[Side]:
    """A StorageV2 account made through ARM, Storage Blob Data Contributor for the admin on it
    (`keyless role assignment create`), and the two Keyless sides (bearer, SharedKey)."""
    name = "bench" + os.urandom(5).hex()
    group = f"/subscriptions/{server.subscription_id}/resourceGroups/blobbench"
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/{name}"
    with server.arm() as arm:
        r = arm.put(group, params={"api-version": "2024-03-01"}, json={"location": "westeurope"})
        assert r.status_code in (200, 201), r.text
        body = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
        r = arm.put(account, params={"api-version": STORAGE_API}, json=body)
        assert r.status_code in (200, 201, 202), r.text
        if r.status_code == 202:
            r = arm.get(r.headers["Location"].replace("https://management.azure.com", ""))
        assert r.status_code == 200, r.text
        r = arm.post(account + "/listKeys", params={"api-version": STORAGE_API})
        assert r.status_code == 200, r.text
        key = r.json()["keys"][0]["value"]
    done = server.cli(
        "role", "assignment", "create", "--assignee", server.admin["objectId"], "--role", CONTRIBUTOR,
        "--scope", account,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.process is not None
    url = f"https://{name}.blob.core.windows.net"
    bearer = Side(
        "keyless-bearer", url, StaticToken(token), str(server.ca_file), server.proxy_url, server.process.pid
    )
    shared = {"account_name": name, "account_key": key}
    return [bearer, replace(bearer, name="keyless-sharedkey", credential=shared)]


def azurite_sides(azurite: Azurite, token: str) -> list[Side]:
    bearer = Side("azurite-bearer", azurite.url, StaticToken(token), str(azurite.cert), None, azurite.pid)
    shared = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    return [bearer, replace(bearer, name="azurite-sharedkey", credential=shared)]


def ready(side: Side) -> BlobServiceClient | None:
    """The side's client with the bench container made; None (and why) if the side refuses."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError

    svc = service_client(side)
    try:
        with contextlib.suppress(ResourceExistsError):
            svc.create_container(CONTAINER)
        blob = svc.get_blob_client(CONTAINER, "probe")
        blob.upload_blob(b"probe", overwrite=True)
        assert blob.download_blob().readall() == b"probe"
    except HttpResponseError as exc:
        print(f"{side.name}: not measured ({exc.status_code} {getattr(exc, 'error_code', '')})")
        return None
    return svc


# --- measurements --------------------------------------------------------------------------


class Timed:
    """Wall time, server CPU and client CPU of the block it wraps (seconds)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = self.server_cpu = self.client_cpu = 0.0

    def __enter__(self) -> Timed:
        self._t, self._s, self._c = time.perf_counter(), cpu_seconds(self.pid), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        self.server_cpu = cpu_seconds(self.pid) - self._s
        self.client_cpu = time.process_time() - self._c


class Figure:
    """One case on one side: ``rate`` (units/s), server and client CPU us per unit, p50 ms."""

    def __init__(self, rate: float, server_us: float, client_us: float, p50_ms: float | None = None) -> None:
        self.rate, self.server_us, self.client_us, self.p50_ms = rate, server_us, client_us, p50_ms


def _figure(t: Timed, units: float, p50_ms: float | None = None) -> Figure:
    return Figure(units / t.wall, t.server_cpu * 1e6 / units, t.client_cpu * 1e6 / units, p50_ms)


class Pattern:
    """A read-only file-like object of ``size`` bytes made from a repeated random MiB (each MiB
    stamped with its index), so a 1 GiB blob is streamed without being held in memory."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.size, self.pos, self.block = size, 0, seed

    def at(self, offset: int, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            index, start = divmod(offset + len(out), MIB)
            out += (index.to_bytes(8, "big") + self.block[8:])[start : start + n - len(out)]
        return bytes(out)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        self.pos += n
        return self.at(self.pos - n, n)


class Check:
    """A seekable sink (parallel download seeks, then writes) that compares what arrives with
    a Pattern at that offset and counts the bytes."""

    def __init__(self, expected: Pattern) -> None:
        self.expected, self.pos, self.count, self.same = expected, 0, 0, True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset
        return offset

    def write(self, data: bytes) -> int:
        self.same = self.same and self.expected.at(self.pos, len(data)) == bytes(data)
        self.pos, self.count = self.pos + len(data), self.count + len(data)
        return len(data)


def upload_download(svc: BlobServiceClient, side: Side, size: int, seed: bytes) -> tuple[Figure, Figure]:
    """Upload then download one ``size``-byte blob (SDK defaults, max_concurrency 16): MiB/s each,
    server CPU us per MiB. Checks every byte that comes back."""
    blob = svc.get_blob_client(CONTAINER, f"big-{size}")
    with Timed(side.pid) as up:
        blob.upload_blob(
            cast("IO[bytes]", Pattern(size, seed)), length=size, overwrite=True, max_concurrency=CONCURRENCY
        )
    sink = Check(Pattern(size, seed))
    with Timed(side.pid) as down:
        blob.download_blob(max_concurrency=CONCURRENCY).readinto(sink)  # type: ignore[arg-type]
    assert sink.count == size and sink.same, f"{side.name}: download differs"
    return _figure(up, size / MIB), _figure(down, size / MIB)


def small_ops(svc: BlobServiceClient, side: Side, seconds: float, op: str) -> Figure:
    """4 KiB Put Blob (``op`` "put") or Get Blob ("get") in a closed loop on 16 threads for about
    ``seconds``, each thread on its own 8 blobs: ops/s, CPU us per op, p50 latency."""
    payload = os.urandom(SMALL)
    names = [[f"small/{t}/{i}" for i in range(8)] for t in range(CONCURRENCY)]
    clients = [[svc.get_blob_client(CONTAINER, n) for n in row] for row in names]
    for row in clients:
        for blob in row:
            blob.upload_blob(payload, overwrite=True)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(CONCURRENCY)]

    def work(t: int) -> None:
        row, mine, i = clients[t], latencies[t], 0
        while not stop.is_set():
            started = time.perf_counter()
            if op == "put":
                row[i % 8].upload_blob(payload, overwrite=True)
            else:
                assert len(row[i % 8].download_blob().readall()) == SMALL
            mine.append(time.perf_counter() - started)
            i += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    time.sleep(min(1.0, seconds / 4))  # warm up: connections open, caches hot
    counted = sum(len(x) for x in latencies)
    with Timed(side.pid) as t:
        time.sleep(seconds)
        total = sum(len(x) for x in latencies)
    stop.set()
    for thread in threads:
        thread.join()
    window = sorted(x for row in latencies for x in row)
    return _figure(t, total - counted, window[len(window) // 2] * 1000)


def fill(svc: BlobServiceClient, prefix: str, count: int) -> float:
    """Make ``count`` 1-byte blobs under ``prefix`` on 16 threads; blobs/s."""
    from concurrent.futures import ThreadPoolExecutor

    container = svc.get_container_client(CONTAINER)

    def make(i: int) -> None:
        container.get_blob_client(f"{prefix}{i:06d}").upload_blob(b"x", overwrite=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(make, range(count)))
    return count / (time.perf_counter() - started)


def listing(svc: BlobServiceClient, side: Side, prefix: str, repeat: int) -> Figure:
    """List the 10,000 blobs under ``prefix`` ``repeat`` times (SDK pages of 5,000): blobs/s."""
    container = svc.get_container_client(CONTAINER)
    with Timed(side.pid) as t:
        for _ in range(repeat):
            seen = sum(1 for _ in container.list_blobs(name_starts_with=prefix))
            assert seen == LIST_COUNT, f"{side.name}: listed {seen}"
    return _figure(t, LIST_COUNT * repeat)


def memory(svc: BlobServiceClient, side: Side, sizes: list[int], seed: bytes) -> list[int]:
    """The server's idle VmRSS (KiB), then its peak (sampled every 10 ms on a thread) during the
    upload + download of each size."""
    out = [rss_kib(side.pid)]
    for size in sizes:
        peak, stop = [out[0]], threading.Event()

        def sample(peak: list[int], stop: threading.Event) -> None:
            while not stop.wait(0.01):
                peak[0] = max(peak[0], rss_kib(side.pid))

        sampler = threading.Thread(target=sample, args=(peak, stop), daemon=True)
        sampler.start()
        upload_download(svc, side, size, seed)
        stop.set()
        sampler.join()
        out.append(peak[0])
    return out


# --- the run -------------------------------------------------------------------------------


def best(figures: list[Figure]) -> Figure:
    return max(figures, key=lambda f: f.rate)


def measure_all(
    sides: list[tuple[Side, BlobServiceClient]], seconds: float, rounds: int, big: int
) -> tuple[dict[str, dict[str, Figure]], dict[str, list[int]]]:
    seed = os.urandom(MIB)
    runs: dict[str, dict[str, list[Figure]]] = {s.name: {} for s, _ in sides}

    def add(side: Side, case: str, figure: Figure) -> None:
        runs[side.name].setdefault(case, []).append(figure)

    filled: set[str] = set()
    for side, svc in sides:  # one container per server: the two sides of a server share it
        if side.url not in filled:
            filled.add(side.url)
            rate = fill(svc, "list/", LIST_COUNT)
            print(f"  {side.name}: made {LIST_COUNT:,} blobs for the listing at {rate:,.0f} blobs/s")
    for _ in range(rounds):  # interleaved, so drift hits every side alike
        for side, svc in sides:
            up, down = upload_download(svc, side, 64 * MIB, seed)
            add(side, "upload", up)
            add(side, "download", down)
            add(side, "put", small_ops(svc, side, seconds, "put"))
            add(side, "get", small_ops(svc, side, seconds, "get"))
            add(side, "list", listing(svc, side, "list/", 3))
    figures = {name: {case: best(fs) for case, fs in cases.items()} for name, cases in runs.items()}
    mem = {side.name: memory(svc, side, [64 * MIB, big], seed) for side, svc in sides}
    return figures, mem


CASES = (
    ("upload", "64 MiB upload", "MiB/s", "us/MiB"),
    ("download", "64 MiB download", "MiB/s", "us/MiB"),
    ("put", "4 KiB put, concurrency 16", "ops/s", "us/op"),
    ("get", "4 KiB get, concurrency 16", "ops/s", "us/op"),
    ("list", "list 10,000 blobs", "blobs/s", "us/blob"),
)


def report(figures: dict[str, dict[str, Figure]], mem: dict[str, list[int]], big: int) -> None:
    """Every figure per side, then Keyless / Azurite ratios (rates, and server CPU per unit)."""
    for case, label, unit, cpu_unit in CASES:
        print(f"{label}:")
        for name, cases in figures.items():
            f = cases[case]
            p50 = f"   p50 {f.p50_ms:6.2f} ms" if f.p50_ms is not None else ""
            print(
                f"  {name:<20} {f.rate:>10,.1f} {unit:<8} server cpu {f.server_us:>9,.0f} {cpu_unit:<8}"
                f" client cpu {f.client_us:>9,.0f} {cpu_unit}{p50}"
            )
    pairs = [
        (k, a)
        for k, a in (("keyless-bearer", "azurite-bearer"), ("keyless-sharedkey", "azurite-sharedkey"))
        if k in figures and a in figures
    ]
    print(
        "Keyless / Azurite (target >= 1.0x); rate ratio, and CPU ratio = Azurite CPU / Keyless CPU per unit:"
    )
    for case, label, _, _ in CASES:
        for k, a in pairs:
            fk, fa = figures[k][case], figures[a][case]
            print(
                f"  {label:<28} {k:>18} / {a:<18} {fk.rate / fa.rate:6.2f}x   cpu {fa.server_us / fk.server_us:6.2f}x"
            )
    print(f"Server memory (VmRSS MiB): idle, peak during 64 MiB and {big // MIB} MiB upload + download")
    for name, (idle, small, large) in mem.items():
        print(
            f"  {name:<20} idle {idle / 1024:6.1f}   64 MiB {small / 1024:6.1f}   {big // MIB} MiB"
            f" {large / 1024:6.1f}   peak ratio {large / small:5.2f}x (target: flat, ~1.0x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8, help="per small-op case")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=1024, help="the large blob of the memory case")
    parser.add_argument("--sides", default="", help="comma-separated subset of the four sides")
    args = parser.parse_args()
    big = args.big_mib * MIB
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-pc", CLIENT_CORE, str(os.getpid())], capture_output=True, check=False)
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 6 * big:  # both servers keep the blob (and Keyless its staged blocks until commit)
        raise SystemExit(f"need {6 * big // MIB} MiB free in {tempfile.gettempdir()}, have {free // MIB}")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "keyless")
        azurite = Azurite(Path(tmp) / "azurite")
        try:
            token = server.admin_token("https://storage.azure.com")
            sides = keyless_sides(server, token) + azurite_sides(azurite.start(), token)
            wanted = set(filter(None, args.sides.split(",")))
            run(
                sides if not wanted else [s for s in sides if s.name in wanted],
                args.seconds,
                args.rounds,
                big,
            )
        finally:
            azurite.stop()
            server.stop()


def run(sides: list[Side], seconds: float, rounds: int, big: int) -> None:
    load_before = os.getloadavg()[0]
    live = [(side, svc) for side in sides if (svc := ready(side)) is not None]
    figures, mem = measure_all(live, seconds, rounds, big)
    print(
        f"Blob benchmark: concurrency {CONCURRENCY}, {seconds:g} s per small-op case, {rounds} rounds, best shown"
    )
    report(figures, mem, big)
    print(
        f"load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
