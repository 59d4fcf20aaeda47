"""Shared by the benchmarks: start a Keyless server pinned to one core, and measure an HTTP
endpoint with wrk (Debian package `wrk`) pinned to the other, so figures are comparable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.keyless_server import KeylessServer  # noqa: E402

SERVER_CORE = "0"
CLIENT_CORE = "1"


@dataclass(frozen=True)
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float

    def line(self, label: str) -> str:
        return f"{label:<44} {self.requests_per_second:>10,.0f} req/s   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms"


def start_server(data_dir: Path, **env: str) -> KeylessServer:
    os.environ.update(env)
    server = KeylessServer(data_dir, os.environ.get("KEYLESS_BENCH_DATABASE_URL")).start()
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        assert server.process is not None
        subprocess.run(
            ["taskset", "-apc", SERVER_CORE, str(server.process.pid)], capture_output=True, check=False
        )
    return server


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    *,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    seconds: int = 10,
    method: str | None = None,
    body: str | None = None,
) -> Measurement:
    """Run wrk against ``url`` (``path`` overrides the request target, e.g. absolute-form for a proxy)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the benchmarks: apt-get install -y wrk")
    lines = []
    if path is not None:
        lines.append(f"wrk.path = {_lua(path)}")
    if method is not None:
        lines.append(f"wrk.method = {_lua(method)}")
    if body is not None:
        lines.append(f"wrk.body = {_lua(body)}")
    for key, value in (headers or {}).items():
        lines.append(f"wrk.headers[{_lua(key)}] = {_lua(value)}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", CLIENT_CORE, *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stdout}{done.stderr}")
    out = done.stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"wrk saw {non_2xx.group(1)} error responses from {url}:\n{out}")
    assert p50 and p99, out
    return Measurement(rps, _ms(*p50.groups()), _ms(*p99.groups()))


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
