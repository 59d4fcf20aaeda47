"""IMDS token requests (cached tokens) at concurrency 16, direct and through the proxy, beside
the same server's bare endpoint; and the latency of a first (uncached) token.

The bare endpoint is a bare Starlette JSON endpoint (the peer the issues name); a raw ASGI one
is measured too, for reference. Targets (issue 3): IMDS direct >= 0.4x the bare endpoint (>= 500x Azure's per-VM limit of
20 requests/s); first-issue token p50 <= 5 ms.

    python bench/imds.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from wrk import start_server, wrk

AZURE_IMDS_LIMIT = 20  # requests/s per VM, documented
QUERY = "api-version=2018-02-01&resource=https://management.azure.com/"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            run(server, args.seconds)
        finally:
            server.stop()


def run(server, seconds: int) -> None:  # type: ignore[no-untyped-def]
    for command in (
        ("group", "create", "-n", "bench"),
        ("vm", "create", "-g", "bench", "-n", "vm1", "--assign-identity"),
    ):
        result = server.cli(*command)
        assert result.returncode == 0, result.stderr
    with server.arm() as arm:
        vm = f"/subscriptions/{server.subscription_id}/resourceGroups/bench/providers/Microsoft.Compute/virtualMachines/vm1"
        token = arm.post(f"{vm}/listHostToken", params={"api-version": "2026-04-01"}).json()["hostToken"]
    http_base = f"http://127.0.0.1:{server.http_port}"
    # Warm the token cache so the load measures cached-token serving, as IMDS serves it.
    httpx.get(
        f"{http_base}/imds/{token}/metadata/identity/oauth2/token?{QUERY}", headers={"Metadata": "true"}
    )

    bare = wrk(f"{http_base}/_keyless/bare", seconds=seconds)
    floor = wrk(f"{http_base}/_keyless/bare-asgi", seconds=seconds)
    direct = wrk(
        f"{http_base}/imds/{token}/metadata/identity/oauth2/token?{QUERY}",
        headers={"Metadata": "true"},
        seconds=seconds,
    )
    proxy_auth = "Basic " + base64.b64encode(f"workload:{token}".encode()).decode()
    proxied = wrk(
        http_base,
        path=f"http://169.254.169.254/metadata/identity/oauth2/token?{QUERY}",
        headers={"Metadata": "true", "Host": "169.254.169.254", "Proxy-Authorization": proxy_auth},
        seconds=seconds,
    )
    first = first_issue_latency(f"{http_base}/imds/{token}/metadata/identity/oauth2/token")

    print(bare.line("bare Starlette JSON endpoint (same server)"))
    print(floor.line("bare raw-ASGI endpoint (reference)"))
    print(direct.line("IMDS token, cached, direct"))
    print(proxied.line("IMDS token, cached, through the proxy"))
    print(
        f"{'IMDS direct / bare Starlette':<44} {direct.requests_per_second / bare.requests_per_second:10.2f}x"
        "   (target >= 0.40x)"
    )
    print(
        f"{'IMDS direct / bare raw ASGI':<44} {direct.requests_per_second / floor.requests_per_second:10.2f}x"
        "   (reference)"
    )
    print(f"{'IMDS proxy / direct':<44} {proxied.requests_per_second / direct.requests_per_second:10.2f}x")
    print(
        f"{'IMDS direct / Azure per-VM limit (20/s)':<44} "
        f"{direct.requests_per_second / AZURE_IMDS_LIMIT:10,.0f}x   (target >= 500x)"
    )
    print(
        f"{'first-issue (uncached) token':<44} p50 {first[0]:6.2f} ms   p99 {first[1]:6.2f} ms   (target p50 <= 5 ms)"
    )


def first_issue_latency(url: str, samples: int = 300) -> tuple[float, float]:
    """Sequential requests with bypass_cache=true: every one signs a new token."""
    timings = []
    with httpx.Client(trust_env=False) as http:
        for i in range(samples):
            started = time.perf_counter()
            r = http.get(f"{url}?{QUERY}&bypass_cache=true", headers={"Metadata": "true"})
            timings.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.text
            if i == 0:
                timings.clear()  # the first request also opens the connection
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


if __name__ == "__main__":
    main()
