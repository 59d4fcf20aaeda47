"""What the Media Services attack tests share: accounts with a clip, job bodies, waiting for jobs,
a server whose outbound fetches may reach loopback (``private_server``), and a local https origin
standing for a host on the internet (``origin``)."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.job_helpers import (
    ENCODING_API,
    builtin,
    create_asset,
    create_transform,
    job,
    job_body,
    upload,
    wait_job,
)
from tests.e2e.media_helpers import MediaSetup, unique, wait_for
from tests.keyless_server import KeylessServer, fresh_database_url
from tests.media_clips import make_clip

MAX_INPUT = 1024 * 1024  # private_server's KEYLESS_MEDIA_HTTP_INPUT_MAX_BYTES
ENCODER = b"keyless.providers.media.encoding.run"
STANDARD = "#Microsoft.Media.StandardEncoderPreset"


# --- helpers -----------------------------------------------------------------------------------


def attack_account(srv: KeylessServer, seconds: float = 1.0) -> tuple[MediaSetup, str]:
    """An account with asset ``input`` (``clip.mp4``), asset ``out`` and transform ``audio``."""
    setup = MediaSetup(srv)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(seconds, 160, 120))
    create_asset(setup, account, "out")
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    return setup, account


def http_input(url: str) -> dict[str, Any]:
    out = {"@odata.type": "#Microsoft.Media.JobOutputAsset", "assetName": "out"}
    return {
        "properties": {
            "input": {"@odata.type": "#Microsoft.Media.JobInputHttp", "files": [url]},
            "outputs": [out],
        }
    }


def with_files(files: list[str]) -> dict[str, Any]:
    body = job_body("input", "out")
    body["properties"]["input"]["files"] = files
    return body


def put_job(setup: MediaSetup, account: str, path: str, body: Any, token: str | None = None) -> None:
    r = setup.child("PUT", account, "transforms", path, body, api=ENCODING_API, token=token)
    assert r.status_code == 201, r.text


def run_job(setup: MediaSetup, account: str, path: str, body: Any, timeout: float = 120) -> dict[str, Any]:
    """Create job ``{transform}/jobs/{name}`` and wait for its end: its properties."""
    put_job(setup, account, path, body)
    transform, _, name = path.split("/")
    return dict(wait_job(setup, account, transform, name, timeout=timeout)["properties"])


def job_error_of(done: dict[str, Any]) -> dict[str, Any]:
    assert done["state"] == "Error", done
    return dict(done["outputs"][0]["error"])


def cancel(setup: MediaSetup, account: str, path: str) -> None:
    setup.child("POST", account, "transforms", f"{path}/cancelJob", api=ENCODING_API)
    transform, _, name = path.split("/")
    wait_job(setup, account, transform, name, timeout=60)


def long_job(srv: KeylessServer) -> tuple[MediaSetup, str]:
    """A 12 s multi-bitrate 1080p encode (tens of seconds here), Processing: ``hd/jobs/long``."""
    setup, account = attack_account(srv, seconds=12.0)
    create_transform(setup, account, "hd", builtin("H264MultipleBitrate1080p"))
    put_job(setup, account, "hd/jobs/long", job_body("input", "out"))
    wait_for(lambda: job(setup, account, "hd", "long")["properties"]["state"] == "Processing", timeout=60)
    return setup, account


@contextlib.contextmanager
def busy(srv: KeylessServer) -> Iterator[None]:
    """media_server's one job slot taken by a long encode while the body runs."""
    setup, account = long_job(srv)
    try:
        yield
    finally:
        cancel(setup, account, "hd/jobs/long")


def encoder_pids(srv: KeylessServer) -> list[int]:
    """The encoder processes the server started (its children running ``encoding.run``)."""
    assert srv.process is not None
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == srv.process.pid and ENCODER in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def kib(pid: int, field: str) -> int:
    (line,) = [
        li for li in Path(f"/proc/{pid}/status").read_text().splitlines() if li.startswith(field + ":")
    ]
    return int(line.split()[1])


def pngs(layers: list[dict[str, str]], step: str, codecs: int = 1) -> dict[str, Any]:
    """A preset of ``codecs`` PNG thumbnail codecs, each with ``layers``, one every ``step``."""
    codec = {"@odata.type": "#Microsoft.Media.PngImage", "start": "0%", "step": step, "range": "100%"}
    layered = [
        {**codec, "layers": [{**la, "label": f"c{c}{la['label']}"} for la in layers]} for c in range(codecs)
    ]
    png = {"@odata.type": "#Microsoft.Media.PngFormat", "filenamePattern": "T-{Label}-{Index}{Extension}"}
    return {"@odata.type": STANDARD, "codecs": layered, "formats": [png]}


# --- a host "on the internet": https on 127.0.0.1, for private_server ----------------------------


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeylessServer]:
    with fresh_database_url() as url:
        env = {
            "KEYLESS_OUTBOUND_ALLOW_PRIVATE": "1",
            "KEYLESS_MEDIA_HTTP_INPUT_MAX_BYTES": str(MAX_INPUT),
            "KEYLESS_MEDIA_HTTP_INPUT_TIMEOUT": "30",
            "KEYLESS_MEDIA_JOB_POLL_INTERVAL": "0.2",
            "KEYLESS_MEDIA_JOB_LEASE": "3",
            "KEYLESS_MEDIA_JOB_CONCURRENCY": "2",
        }
        srv = KeylessServer(tmp_path_factory.mktemp("keyless-private") / "data", url, env).start()
        yield srv
        srv.stop()


class Origin(http.server.BaseHTTPRequestHandler):
    """What the internet answers; every GET recorded (path, lower-cased headers)."""

    hits: list[tuple[str, dict[str, str]]] = []
    hung_up: list[str] = []  # routes whose client closed the connection in the middle of the body
    stop = threading.Event()

    def do_GET(self) -> None:
        type(self).hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.path.split("?", 1)[0]
        try:
            if route in ("/endless.mp4", "/slow.mp4"):  # a body that never ends, fast or a byte at a time
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                while not type(self).stop.is_set():
                    self.wfile.write(b"\0" if route == "/slow.mp4" else bytes(65536))
                    self.wfile.flush()
                    time.sleep(0.5 if route == "/slow.mp4" else 0)
                return
            self.send_response(302 if route == "/redirect.mp4" else 403)
            self.send_header("Location", "https://management.azure.com/subscriptions?api-version=2022-12-01")
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            type(self).hung_up.append(route)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def origin(private_server: KeylessServer) -> Iterator[tuple[str, type[Origin]]]:
    handler: type[Origin] = type("Origin", (Origin,), {"hits": [], "hung_up": [], "stop": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca = private_server.data_dir / "ca"
    context.load_cert_chain(ca / "leaf.pem", ca / "leaf.key")  # names 127.0.0.1; the CA is trusted
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", handler
    handler.stop.set()
    server.shutdown()
    server.server_close()


# --- 1. assets and containers that are not the job's --------------------------------------------
