"""Media Services (issue 11, "Speed"): what a customer-managed key costs, and what the asset
storage path costs, measured against peers in the same run on one server.

1. Account and asset operations on a CustomerKey account vs the same on a SystemKey account
   (target: CMK >= 0.8x SystemKey for each). Both accounts share one server, resource group and
   storage account (Shared Key, ``storageAuthentication: System``); the CustomerKey one wraps its
   account key with an RSA-2048 key in a purge-protected vault that grants the account's system
   identity get/wrapKey/unwrapKey (as tests/e2e/test_media_cmk.py sets it up). Over HTTPS through
   the forward proxy (CONNECT management.azure.com:443) with the admin's token, at concurrency 16
   (16 keep-alive connections on uvloop, closed loop as bench/edge.py's generator, but with a new
   request per send so PUT/DELETE can name new assets). Cases, each alone, interleaved by account:
   account GET; asset GET; asset list (20 assets); listContainerSas; asset PUT (a new asset: a
   container made through the blob data plane); asset DELETE (of every asset the PUT case made;
   the container goes too); and, when the streaming types exist on the server (probed: another
   change adds them), streaming locator create on Predefined_ClearKey (content key sealed under the
   account key) and listContentKeys (opened under it). Then the mix: each connection loops over
   PUT asset, GET it, listContainerSas on it, list, account GET, [locator create, listContentKeys,
   locator DELETE,] asset DELETE, and stops only at the end of a loop (so no asset is left over).
2. Asset blob upload with the SAS URL ``listContainerSas`` answers (ReadWrite) vs the same upload
   straight to the container with a bearer token (admin, Storage Blob Data Contributor on the
   storage account) - target >= 0.9x. The same azure-storage-blob client code on both sides
   (bench/blob.py's ``service_client``, through the proxy), Put Blob of 1 MiB (64 blobs) and
   16 MiB (8 blobs), 4 uploads in flight, interleaved rounds; MB/s = 10^6 bytes/s.

Every case prints the server's CPU time per unit of work (all its threads, /proc) besides the
rate: on a machine other work shares, those ratios move far less than rates. The server's VmRSS
after set-up and after part 1 is printed too (it should not grow with the number of requests).
The server is pinned to core 0, this process to core 1. Best round shown.

    python bench/media.py [--seconds 2.5] [--rounds 2] [--upload-rounds 3]
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
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
import uvloop

from blob import MIB, Side, StaticToken, Timed, rss_kib, service_client
from edge import _ConnectReply
from keyvault import http_request, server_cpu_seconds
from wrk import CLIENT_CORE, start_server

if TYPE_CHECKING:
    from tests.keyless_server import KeylessServer

CONNECTIONS = 16
ARM = "management.azure.com"
GROUP_API = "2024-03-01"
STORAGE_API = "2026-09-01"  # Microsoft.Storage (ARM), as bench/blob.py
KV_API = "2023-07-01"  # Microsoft.KeyVault/vaults (ARM)
KV_DATA_API = "7.4"
MEDIA_API = "2021-11-01"  # accounts (azure-mgmt-media 10.x)
CHILD_API = "2022-08-01"  # assets, content key policies, streaming locators (azure-mgmt-media 10.x)
CONTRIBUTOR = "Storage Blob Data Contributor"
FIXED_ASSETS = 20
UPLOADS = ((1 * MIB, 64), (16 * MIB, 8))  # (size, count) per round and side
UPLOAD_CONCURRENCY = 4
# A request: (case label, raw HTTP/1.1 bytes); None ends the connection's work.
Request = tuple[str, bytes]
Source = Callable[[bool], Request | None]  # asked with the stop flag


# --- the load generator ------------------------------------------------------------------------


@dataclass
class _Run:
    measuring: bool = False
    stop: bool = False
    latencies: list[tuple[str, float]] = field(default_factory=list)
    bad: list[bytes] = field(default_factory=list)


class _Conn(asyncio.Protocol):
    """One keep-alive connection in a closed loop: ask ``source`` for the next request (None: done),
    send it, read the whole response (Content-Length, or none for 204), repeat. Any non-2xx answer
    is kept and fails the run."""

    def __init__(self, source: Source, run: _Run) -> None:
        self.source, self.run = source, run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.label, self.sent_at = "", 0.0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self) -> None:
        assert self.transport is not None
        request = self.source(self.run.stop)
        if request is None:
            self.transport.close()
            return
        self.label, data = request
        self.sent_at = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise SystemExit("chunked responses are not expected from the resource manager")
        if len(self.buffer) < end + 4 + length:
            return
        if not head.startswith(b"http/1.1 2"):
            self.run.bad.append(bytes(self.buffer[: end + 4 + length])[:600])
        del self.buffer[: end + 4 + length]
        if self.run.measuring:
            self.run.latencies.append((self.label, time.perf_counter() - self.sent_at))
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _connect(run: _Run, source: Source, ctx: ssl.SSLContext, port: int) -> _Conn:
    loop = asyncio.get_running_loop()
    raw, reply = await loop.create_connection(_ConnectReply, "127.0.0.1", port)
    raw.write(f"CONNECT {ARM}:443 HTTP/1.1\r\nHost: {ARM}:443\r\n\r\n".encode())
    status = await reply.done
    assert status.startswith(b"HTTP/1.1 200"), status
    conn = _Conn(source, run)
    tls = await loop.start_tls(raw, conn, ctx, server_hostname=ARM)
    assert tls is not None
    conn.connection_made(tls)
    return conn


@dataclass(frozen=True)
class Figure:
    """One case: operations/s, p50 (ms), server CPU us per operation, operations counted."""

    rate: float
    p50_ms: float
    cpu_us: float
    count: int


async def _load(
    sources: list[Source], ctx: ssl.SSLContext, port: int, seconds: float | None, pid: int
) -> Figure:
    """Run one source per connection. ``seconds``: a timed window after a short warm-up (the
    sources see ``stop`` afterwards); None: count everything until every source is done."""
    run = _Run()
    conns = [await _connect(run, source, ctx, port) for source in sources]
    if seconds is None:
        run.measuring = True
    for conn in conns:
        conn.send()
    if seconds is not None:
        await asyncio.sleep(min(0.5, seconds / 4))
        run.measuring = True
    started, cpu_before = time.perf_counter(), server_cpu_seconds(pid)
    if seconds is not None:
        await asyncio.sleep(seconds)
        run.measuring = False
        elapsed, cpu_after = time.perf_counter() - started, server_cpu_seconds(pid)
        run.stop = True
        await asyncio.gather(*(c.closed for c in conns))
    else:
        await asyncio.gather(*(c.closed for c in conns))
        elapsed, cpu_after = time.perf_counter() - started, server_cpu_seconds(pid)
    if run.bad:
        raise SystemExit(
            f"{len(run.bad)} answers were not 2xx; the first:\n{run.bad[0].decode(errors='replace')}"
        )
    count = len(run.latencies)
    assert count, "no request completed"
    cpu = (cpu_after - cpu_before) * 1e6 / count if cpu_before is not None and cpu_after is not None else 0.0
    p50 = statistics.median(x for _, x in run.latencies) * 1000
    return Figure(count / elapsed, p50, cpu, count)


def load(sources: list[Source], ctx: ssl.SSLContext, port: int, seconds: float | None, pid: int) -> Figure:
    """ops/s, p50 and server CPU per op of ``sources`` (one per connection); see ``_load``."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_load(sources, ctx, port, seconds, pid))


def repeat(label: str, request: bytes) -> Source:
    """The same request until stopped."""
    return lambda stop: None if stop else (label, request)


def sequence(steps: Iterator[Request]) -> Source:
    """The requests of ``steps`` in order, whatever the stop flag says (a fixed amount of work)."""
    return lambda stop: next(steps, None)


# --- set-up ------------------------------------------------------------------------------------


@dataclass
class Account:
    """One Media Services account and the raw requests the cases send to it."""

    label: str
    path: str
    token: str
    created: list[str] = field(default_factory=list)  # assets made by the PUT case, not yet deleted
    locators_made: list[str] = field(default_factory=list)

    def req(self, method: str, sub: str, body: Any = None, api: str = CHILD_API) -> bytes:
        raw = orjson.dumps(body) if body is not None else (b"" if method == "POST" else None)
        return http_request(method, f"{self.path}{sub}?api-version={api}", ARM, self.token, raw)

    def asset_put(self, name: str) -> bytes:
        return self.req("PUT", f"/assets/{name}", {"properties": {"description": "bench"}})

    def sas(self, name: str) -> bytes:
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 23 * 3600))
        return self.req(
            "POST", f"/assets/{name}/listContainerSas", {"permissions": "ReadWrite", "expiryTime": expiry}
        )

    @staticmethod
    def locator_body(asset: str) -> dict[str, Any]:
        """A locator on ``asset`` with Predefined_ClearKey: one content key, sealed under the account key."""
        props = {
            "assetName": asset,
            "streamingPolicyName": "Predefined_ClearKey",
            "defaultContentKeyPolicyName": "ckp",
        }
        return {"properties": props}

    def locator_put(self, name: str, asset: str) -> bytes:
        return self.req("PUT", f"/streamingLocators/{name}", self.locator_body(asset))


def _ok(response: Any, *codes: int) -> Any:
    assert response.status_code in codes, f"{response.request.method} {response.request.url}: {response.text}"
    return response


def _call(
    client: Any, method: str, path: str, codes: tuple[int, ...], api: str = CHILD_API, body: Any = None
) -> Any:
    return _ok(client.request(method, path, params={"api-version": api}, json=body), *codes)


def set_up(server: KeylessServer) -> tuple[dict[str, Account], str, bool]:
    """Group, storage account, purge-protected vault with an RSA-2048 key, the two accounts (the
    CustomerKey one switched over after its identity is granted get/wrapKey/unwrapKey), 20 assets
    each, and (if the server has them) a ClearKey content key policy and a locator. Returns the
    accounts, the storage account name, and whether locators are measured."""
    group = f"/subscriptions/{server.subscription_id}/resourceGroups/mediabench"
    suffix = uuid.uuid4().hex[:8]
    storage, vault = f"stmb{suffix}", f"kvmb{suffix}"
    storage_id = f"{group}/providers/Microsoft.Storage/storageAccounts/{storage}"
    vault_id = f"{group}/providers/Microsoft.KeyVault/vaults/{vault}"
    token, admin = server.admin_token(), server.admin["objectId"]

    def policy(object_id: str, keys: list[str]) -> dict[str, Any]:
        return {
            "tenantId": server.tenant_id,
            "objectId": object_id,
            "permissions": {"keys": keys, "secrets": []},
        }

    with server.arm(token) as arm:
        _call(arm, "PUT", group, (200, 201), GROUP_API, {"location": "westeurope"})
        body = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
        r = _call(arm, "PUT", storage_id, (200, 201, 202), STORAGE_API, body)
        if r.status_code == 202:
            _ok(arm.get(r.headers["Location"].replace(f"https://{ARM}", "")), 200)
        props = {
            "tenantId": server.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [policy(admin, ["get", "create", "wrapKey", "unwrapKey"])],
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": 7,
            "enablePurgeProtection": True,
        }
        _call(arm, "PUT", vault_id, (200, 201), KV_API, {"location": "westeurope", "properties": props})
        kv_auth = {"Authorization": f"Bearer {server.admin_token('https://vault.azure.net')}"}
        with server.client(base_url=f"https://{vault}.vault.azure.net", headers=kv_auth) as kv:
            _call(kv, "POST", "/keys/cmk/create", (200,), KV_DATA_API, {"kty": "RSA", "key_size": 2048})
        accounts: dict[str, Account] = {}
        for label in ("cmk", "system"):
            path = f"{group}/providers/Microsoft.Media/mediaServices/amsb{label}{suffix}"
            body = {
                "location": "westeurope",
                "identity": {"type": "SystemAssigned"},
                "properties": {"storageAccounts": [{"id": storage_id, "type": "Primary"}]},
            }
            r = _call(arm, "PUT", path, (201,), MEDIA_API, body)
            accounts[label] = Account(label, path, token)
            if label == "cmk":
                grant = [policy(r.json()["identity"]["principalId"], ["get", "wrapKey", "unwrapKey"])]
                _call(
                    arm,
                    "PUT",
                    f"{vault_id}/accessPolicies/add",
                    (200, 201),
                    KV_API,
                    {"properties": {"accessPolicies": grant}},
                )
                key = {
                    "type": "CustomerKey",
                    "keyVaultProperties": {"keyIdentifier": f"https://{vault}.vault.azure.net/keys/cmk"},
                }
                _call(arm, "PATCH", path, (202,), MEDIA_API, {"properties": {"encryption": key}})
            enc = _call(arm, "GET", path, (200,), MEDIA_API).json()["properties"]["encryption"]
            assert enc["type"] == ("CustomerKey" if label == "cmk" else "SystemKey"), enc
            for i in range(FIXED_ASSETS):
                _call(arm, "PUT", f"{path}/assets/fixed-{i:02d}", (201,), body={})
        locators = _locators(arm, accounts)
    done = server.cli(
        "role", "assignment", "create", "--assignee", admin, "--role", CONTRIBUTOR, "--scope", storage_id
    )
    assert done.returncode == 0, done.stderr
    return accounts, storage, locators


def _locators(arm: Any, accounts: dict[str, Account]) -> bool:
    """A ClearKey/Open content key policy ``ckp`` and a locator ``loc-fixed`` on ``fixed-00`` in
    each account, if the server has the streaming types (checked by trying, not assumed)."""
    option = {
        "name": "clear",
        "configuration": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
        "restriction": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyOpenRestriction"},
    }
    for a in accounts.values():
        for method, sub, body in (
            ("PUT", "/contentKeyPolicies/ckp", {"properties": {"options": [option]}}),
            ("PUT", "/streamingLocators/loc-fixed", a.locator_body("fixed-00")),
        ):
            r = arm.request(method, a.path + sub, params={"api-version": CHILD_API}, json=body)
            if r.status_code not in (200, 201):
                print(
                    f"streaming locators not measured: {method} {sub} answered {r.status_code} {r.text[:200]}"
                )
                return False
        r = _call(arm, "POST", f"{a.path}/streamingLocators/loc-fixed/listContentKeys", (200,))
        assert r.json()["contentKeys"][0]["value"], r.text
    return True


# --- part 1: CMK vs SystemKey ----------------------------------------------------------------------


def _names(account: Account, kind: str, conn: int) -> Iterator[str]:
    i = 0
    while True:
        yield f"b-{kind}-{conn}-{i}-{uuid.uuid4().hex[:6]}"
        i += 1


def _put_source(account: Account, conn: int, kind: str) -> Source:
    names = _names(account, kind, conn)
    made = account.created if kind == "asset" else account.locators_made

    def source(stop: bool) -> Request | None:
        if stop:
            return None
        name = next(names)
        made.append(name)  # a PUT that fails stops the run anyway
        return ("put", account.asset_put(name) if kind == "asset" else account.locator_put(name, "fixed-00"))

    return source


def _delete_sources(account: Account, kind: str) -> list[Source]:
    made = account.created if kind == "asset" else account.locators_made
    sub = "assets" if kind == "asset" else "streamingLocators"
    parts = [made[i::CONNECTIONS] for i in range(CONNECTIONS)]
    made.clear()
    return [
        sequence(iter([("delete", account.req("DELETE", f"/{sub}/{n}")) for n in part])) for part in parts
    ]


def _mix_source(account: Account, conn: int, locators: bool) -> Source:
    """One loop of the mix per asset; ``stop`` is honoured only between loops."""
    names = _names(account, "mix", conn)
    pending: list[Request] = []

    def source(stop: bool) -> Request | None:
        if not pending:
            if stop:
                return None
            name = next(names)
            steps = [
                ("asset PUT", account.asset_put(name)),
                ("asset GET", account.req("GET", f"/assets/{name}")),
                ("listContainerSas", account.sas(name)),
                ("asset list", account.req("GET", "/assets")),
                ("account GET", account.req("GET", "", api=MEDIA_API)),
            ]
            if locators:
                steps += [
                    ("locator create", account.locator_put(f"l-{name}", name)),
                    ("listContentKeys", account.req("POST", f"/streamingLocators/l-{name}/listContentKeys")),
                    ("locator DELETE", account.req("DELETE", f"/streamingLocators/l-{name}")),
                ]
            steps.append(("asset DELETE", account.req("DELETE", f"/assets/{name}")))
            pending.extend(reversed(steps))
        return pending.pop()

    return source


def part1(
    server: KeylessServer, accounts: dict[str, Account], locators: bool, seconds: float, rounds: int
) -> dict[str, dict[str, Figure]]:
    """Every case on both accounts, case by case (the account order flips every round, so drift
    and the heap's growth hit both alike); the best round of each."""
    assert server.process is not None
    pid, port = server.process.pid, server.http_port
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    n = range(CONNECTIONS)

    def timed(
        case: str, request: Callable[[Account], bytes]
    ) -> Callable[[Account], list[tuple[str, Figure]]]:
        return lambda a: [(case, load([repeat(case, request(a))] * CONNECTIONS, ctx, port, seconds, pid))]

    def churn(kind: str, create: str) -> Callable[[Account], list[tuple[str, Figure]]]:
        return lambda a: [
            (f"{kind} {create}", load([_put_source(a, i, kind) for i in n], ctx, port, seconds, pid)),
            (f"{kind} DELETE", load(_delete_sources(a, kind), ctx, port, None, pid)),
        ]

    steps = [
        timed("account GET", lambda a: a.req("GET", "", api=MEDIA_API)),
        timed("asset GET", lambda a: a.req("GET", "/assets/fixed-00")),
        timed(f"asset list ({FIXED_ASSETS})", lambda a: a.req("GET", "/assets")),
        timed("listContainerSas", lambda a: a.sas("fixed-00")),
        churn("asset", "PUT"),
    ]
    if locators:
        steps += [
            churn("locator", "create"),
            timed("listContentKeys", lambda a: a.req("POST", "/streamingLocators/loc-fixed/listContentKeys")),
        ]
    steps.append(
        lambda a: [
            (
                "mix (all of the above)",
                load([_mix_source(a, i, locators) for i in n], ctx, port, seconds, pid),
            )
        ]
    )
    runs: dict[str, dict[str, list[Figure]]] = {label: {} for label in accounts}
    for r in range(rounds):
        order = list(accounts.values())[:: 1 if r % 2 == 0 else -1]
        for step in steps:
            for a in order:
                for case, figure in step(a):
                    runs[a.label].setdefault(case, []).append(figure)
    return {
        label: {case: max(fs, key=lambda f: f.rate) for case, fs in cases.items()}
        for label, cases in runs.items()
    }


def report1(best: dict[str, dict[str, Figure]], seconds: float, rounds: int) -> None:
    print(
        f"Part 1: CustomerKey vs SystemKey account, concurrency {CONNECTIONS}, {seconds:g} s per timed case x {rounds} rounds, best round"
    )
    print(
        f"{'case':<26} {'CMK ops/s':>10} {'p50 ms':>7} {'cpu us':>7}   {'SysKey ops/s':>12} {'p50 ms':>7} {'cpu us':>7}   {'ratio':>6} {'cpu ratio':>9}"
    )
    for case, cmk in best["cmk"].items():
        sys_ = best["system"][case]
        cpu_ratio = sys_.cpu_us / cmk.cpu_us if cmk.cpu_us else 0.0
        verdict = "met" if cmk.rate / sys_.rate >= 0.8 else "NOT MET"
        print(
            f"{case:<26} {cmk.rate:>10,.0f} {cmk.p50_ms:>7.2f} {cmk.cpu_us:>7,.0f}   {sys_.rate:>12,.0f} {sys_.p50_ms:>7.2f}"
            f" {sys_.cpu_us:>7,.0f}   {cmk.rate / sys_.rate:>5.2f}x {cpu_ratio:>8.2f}x  (>= 0.8x: {verdict})"
        )


# --- part 2: upload through the SAS URL vs bearer ----------------------------------------------------


def part2(server: KeylessServer, account: Account, storage: str, rounds: int) -> None:
    """Uploads into one asset's container: with its listContainerSas URL vs a bearer token."""
    assert server.process is not None
    pid = server.process.pid
    with server.arm(account.token) as arm:
        asset = _call(arm, "PUT", f"{account.path}/assets/uploads", (201,), body={}).json()
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 23 * 3600))
        body = {"permissions": "ReadWrite", "expiryTime": expiry}
        r = _call(arm, "POST", f"{account.path}/assets/uploads/listContainerSas", (200,), body=body)
    container, sas_url = asset["properties"]["container"], r.json()["assetContainerSasUrls"][0]
    url = f"https://{storage}.blob.core.windows.net"
    assert sas_url.startswith(f"{url}/{container}?"), sas_url
    token = StaticToken(server.admin_token("https://storage.azure.com"))
    bearer = Side("bearer", url, token, str(server.ca_file), server.proxy_url, pid)
    sides = [replace(bearer, name="sas", credential=sas_url.split("?", 1)[1]), bearer]
    clients = {side.name: service_client(side).get_container_client(container) for side in sides}
    payloads = {size: os.urandom(size) for size, _ in UPLOADS}
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with ThreadPoolExecutor(UPLOAD_CONCURRENCY) as pool:
        for name, client in clients.items():  # warm: connections open, both credentials accepted
            client.get_blob_client(f"warm-{name}").upload_blob(b"x", overwrite=True)
        for r_i in range(rounds):
            for size, count in UPLOADS:
                for name, client in list(clients.items())[:: 1 if r_i % 2 == 0 else -1]:

                    def upload(blob: str, client: Any = client, data: bytes = payloads[size]) -> None:
                        client.get_blob_client(blob).upload_blob(data, overwrite=True)

                    with Timed(pid) as t:
                        list(pool.map(upload, [f"{name}-{size // MIB}m-{i}" for i in range(count)]))
                    mib = size * count / MIB
                    results.setdefault((name, size), []).append(
                        (mib * MIB / t.wall / 1e6, t.server_cpu * 1e6 / mib)
                    )
    # What went up through the SAS URL reads back with the bearer token.
    assert clients["bearer"].get_blob_client("sas-1m-0").download_blob().readall() == payloads[MIB]
    print(
        f"Part 2: asset blob upload (Put Blob, {UPLOAD_CONCURRENCY} in flight, through the proxy), "
        f"{rounds} interleaved rounds, best round"
    )
    labels = {"sas": "SAS URL from listContainerSas", "bearer": "bearer, Blob Data Contributor"}
    for size, count in UPLOADS:
        best = {name: max(results[(name, size)]) for name in clients}
        for name, (mbs, cpu) in best.items():
            print(
                f"  {size // MIB:>2} MiB x {count:<3} {labels[name]:<32} {mbs:>8.1f} MB/s   server cpu {cpu:>7,.0f} us/MiB"
            )
        ratio = best["sas"][0] / best["bearer"][0]
        print(
            f"  {size // MIB:>2} MiB: SAS / bearer {ratio:.2f}x (>= 0.9x: {'met' if ratio >= 0.9 else 'NOT MET'});"
            f" cpu ratio {best['bearer'][1] / best['sas'][1]:.2f}x"
        )


# --- the run -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.5, help="per timed case of part 1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--upload-rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-pc", CLIENT_CORE, str(os.getpid())], capture_output=True, check=False)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            accounts, storage, locators = set_up(server)
            print(
                f"set-up done in {time.perf_counter() - started:.1f} s (streaming locators measured: {locators})"
            )
            assert server.process is not None
            rss0 = rss_kib(server.process.pid)
            best = part1(server, accounts, locators, args.seconds, args.rounds)
            report1(best, args.seconds, args.rounds)
            print(
                f"server VmRSS after part 1: {rss_kib(server.process.pid) / 1024:.0f} MiB (after set-up: {rss0 / 1024:.0f})"
            )
            part2(server, accounts["cmk"], storage, args.upload_rounds)
        finally:
            server.stop()
    print(
        f"load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores; "
        f"run took {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
