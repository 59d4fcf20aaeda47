"""Blob bytes are streamed, never held whole in memory (the server's peak RSS stays flat from a 4 MiB
to a 96 MiB blob, up and down), and a ``kill -9`` in the middle of a large upload loses nothing
acknowledged: the committed version and the staged blocks are there after a restart."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    account_name,
    blob_client,
    create_account,
    grant,
    sdk_json,
    storage_token,
)
from tests.e2e.workload_helpers import create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

MiB = 1024 * 1024

UPLOAD = """
import json, os, hashlib
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient
args = json.loads(DATA)
# One Put Blob for the whole size (no blocks), then one download stream.
svc = BlobServiceClient(args["url"], DefaultAzureCredential(), max_single_put_size=512 * 1024 * 1024,
                        max_single_get_size=512 * 1024 * 1024)
blob = svc.get_blob_client("mem", args["name"])
chunk = os.urandom(1024 * 1024)
class Source:
    def __init__(self, size):
        self.left = size
        self.md5 = hashlib.md5()
    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        out = (chunk * (n // len(chunk) + 1))[:n]
        self.left -= n
        self.md5.update(out)
        return out
size = args["mib"] * 1024 * 1024
source = Source(size)
blob.upload_blob(source, length=size, overwrite=True)
digest = hashlib.md5()
total = 0
for part in blob.download_blob().chunks():
    digest.update(part)
    total += len(part)
print(json.dumps({"size": total, "same": digest.hexdigest() == source.md5.hexdigest()}))
"""


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _setup(srv: KeylessServer) -> str:
    from tests.e2e.workload_helpers import Unique  # noqa: F401 (type only)

    group = create_group(srv, lambda prefix: f"{prefix}{int(time.time() * 1000)}")
    name = account_name()
    doc = create_account(srv, group, name)
    grant(srv, srv.admin["objectId"], BLOB_ROLES["contributor"], doc["id"])
    with blob_client(srv, name, storage_token(srv)) as http:
        assert http.put("/mem", params={"restype": "container"}).status_code == 201
    return name


def test_memory_stays_flat_with_blob_size(new_server: Any) -> None:
    srv: KeylessServer = new_server()
    assert srv.process is not None
    name = _setup(srv)
    url = f"https://{name}.blob.core.windows.net"
    assert sdk_json(srv, UPLOAD, {"url": url, "name": "small", "mib": 4}) == {"size": 4 * MiB, "same": True}
    small_peak = _peak_rss_kib(srv.process.pid)
    assert sdk_json(srv, UPLOAD, {"url": url, "name": "large", "mib": 96}) == {"size": 96 * MiB, "same": True}
    large_peak = _peak_rss_kib(srv.process.pid)
    # 92 MiB more data moved each way; the peak may grow by buffers (a few MiB), never by the blob.
    print("peak RSS KiB", small_peak, large_peak)
    assert large_peak - small_peak < 24 * 1024, (small_peak, large_peak)


def _slow_body(first: bytes, stop: threading.Event) -> Iterator[bytes]:
    yield first
    while not stop.is_set():
        yield b"\x00" * (256 * 1024)
        time.sleep(0.01)


def _files(srv: KeylessServer) -> list[Path]:
    return [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()]


def test_kill_9_during_large_upload_loses_nothing_acknowledged(new_server: Any) -> None:
    # A fast sweeper (every second, files unnamed for 2 s) to see the cut uploads' files go.
    srv: KeylessServer = new_server({"KEYLESS_BLOB_SWEEP_INTERVAL": "1", "KEYLESS_BLOB_SWEEP_GRACE": "2"})
    name = _setup(srv)
    token = storage_token(srv)
    block_ids = [base64.b64encode(f"{i:04d}".encode()).decode() for i in range(3)]
    with blob_client(srv, name, token) as http:
        r = http.put("/mem/kept.bin", content=b"version one", headers={"x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 201
        for i, block_id in enumerate(block_ids[:2]):
            r = http.put(
                "/mem/kept.bin", params={"comp": "block", "blockid": block_id}, content=bytes([65 + i]) * 1000
            )
            assert r.status_code == 201
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def upload(path: str, params: dict[str, str]) -> None:
        size = 512 * MiB
        try:
            with blob_client(srv, name, token) as http:
                headers = {"x-ms-blob-type": "BlockBlob", "Content-Length": str(size)}
                outcome[str(params)] = http.put(
                    path, params=params, content=_slow_body(b"\x01" * MiB, stop), headers=headers
                )
        except Exception as exc:  # the connection died with the server (httpx or h11 says so)
            outcome[str(params)] = exc

    threads = [
        threading.Thread(target=upload, args=("/mem/kept.bin", {})),
        threading.Thread(target=upload, args=("/mem/kept.bin", {"comp": "block", "blockid": block_ids[2]})),
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # both uploads are well under way
    srv.kill9()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(outcome) == 2 and not any(isinstance(v, httpx.Response) for v in outcome.values()), outcome
    srv.start()
    with blob_client(srv, name, storage_token(srv)) as http:
        r = http.get("/mem/kept.bin")
        assert r.status_code == 200 and r.content == b"version one"
        r = http.get("/mem/kept.bin", params={"comp": "blocklist", "blocklisttype": "uncommitted"})
        assert [f"<Name>{b}</Name>" in r.text for b in block_ids] == [True, True, False], r.text
        body = "".join(f"<Latest>{b}</Latest>" for b in block_ids[:2])
        r = http.put("/mem/kept.bin", params={"comp": "blocklist"}, content=f"<BlockList>{body}</BlockList>")
        assert r.status_code == 201, r.text
        r = http.get("/mem/kept.bin")
        assert hashlib.sha256(r.content).digest() == hashlib.sha256(b"A" * 1000 + b"B" * 1000).digest()
    # The cut uploads left partial files; the sweeper removes them and keeps the blob's one file.
    deadline = time.monotonic() + 20
    while len(_files(srv)) != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_files(srv)) == 1, _files(srv)
    with blob_client(srv, name, storage_token(srv)) as http:
        assert http.get("/mem/kept.bin").content == b"A" * 1000 + b"B" * 1000


def test_concurrent_writes_commit_alone_or_together(server: KeylessServer) -> None:
    """Many puts at once (SQLite groups their commits): each distinct blob lands, and of the racers
    creating one name with ``If-None-Match: *`` exactly one wins, the others get 409."""
    from concurrent.futures import ThreadPoolExecutor

    name = _setup(server)
    token = storage_token(server)

    def put(i: int) -> int:
        with blob_client(server, name, token) as http:
            if i % 2:
                r = http.put(
                    f"/mem/own-{i}", content=f"blob {i}".encode(), headers={"x-ms-blob-type": "BlockBlob"}
                )
            else:
                headers = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"}
                r = http.put("/mem/contested", content=f"racer {i}".encode(), headers=headers)
            return r.status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(put, range(48)))
    racers = statuses[0::2]
    assert racers.count(201) == 1 and racers.count(409) == len(racers) - 1, racers
    assert all(s == 201 for s in statuses[1::2]), statuses
    with blob_client(server, name, token) as http:
        for i in range(1, 48, 2):
            assert http.get(f"/mem/own-{i}").content == f"blob {i}".encode()
        winner = racers.index(201) * 2
        assert http.get("/mem/contested").content == f"racer {winner}".encode()
