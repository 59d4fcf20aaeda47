"""Start and drive real Keyless servers for the tests: the `keyless` CLI in a subprocess,
reached over HTTPS (direct) or through its forward proxy, exactly as a user would."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

POSTGRES_ADMIN_URL = os.environ.get("KEYLESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def test_database() -> str:
    """Which database the suite runs on: ``sqlite`` (default) or ``postgresql``."""
    return os.environ.get("KEYLESS_TEST_DATABASE", "sqlite")


@contextmanager
def fresh_database_url() -> Iterator[str | None]:
    """None for SQLite (the data directory's default); a new, empty PostgreSQL database otherwise."""
    if test_database() != "postgresql":
        yield None
        return
    import psycopg

    name = f"keyless_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class KeylessServer:
    """One `keyless up` process with its own data directory (and database)."""

    def __init__(self, data_dir: Path, database_url: str | None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.runtime: dict[str, Any] = {}
        self.admin: dict[str, Any] = {}

    # --- lifecycle -----------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["KEYLESS_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["KEYLESS_DATABASE_URL"] = self.database_url
        else:
            env.pop("KEYLESS_DATABASE_URL", None)
        env.update(self.extra_env)
        return env

    def start(self, *, https_port: int = 0, http_port: int = 0, timeout: float = 30.0) -> KeylessServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd = [
            sys.executable,
            "-m",
            "keyless",
            "up",
            "--https-port",
            str(https_port),
            "--http-port",
            str(http_port),
        ]
        self.process = subprocess.Popen(cmd, env=self.base_env(), stdout=log, stderr=subprocess.STDOUT)
        runtime_file = self.data_dir / "server.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"keyless up exited with {self.process.returncode}:\n{self.log()}")
            if runtime_file.exists():
                runtime = orjson.loads(runtime_file.read_bytes())
                if runtime.get("pid") == self.process.pid and self._healthy(runtime):
                    self.runtime = runtime
                    self.admin = orjson.loads((self.data_dir / "admin.json").read_bytes())
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"keyless up did not become ready:\n{self.log()}")

    def _healthy(self, runtime: dict[str, Any]) -> bool:
        try:
            r = httpx.get(
                f"https://127.0.0.1:{runtime['httpsPort']}/_keyless/health",
                verify=self.ssl_context(),
                timeout=2,
                trust_env=False,
            )
        except (httpx.HTTPError, OSError, ssl.SSLError):
            return False
        return r.status_code == 200

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- addressing ----------------------------------------------------------------------

    @property
    def https_port(self) -> int:
        return int(self.runtime["httpsPort"])

    @property
    def http_port(self) -> int:
        return int(self.runtime["httpPort"])

    @property
    def direct_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca" / "ca.pem"

    @property
    def bundle_file(self) -> Path:
        return self.data_dir / "ca" / "bundle.pem"

    @property
    def tenant_id(self) -> str:
        return str(self.runtime["tenantId"])

    @property
    def subscription_id(self) -> str:
        return str(self.runtime["subscriptionId"])

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "ca" / "ca.pem"))

    def client(self, *, via_proxy: bool = True, **kwargs: Any) -> httpx.Client:
        """An HTTP client that reaches production host names through Keyless's proxy."""
        proxy = self.proxy_url if via_proxy else None
        return httpx.Client(proxy=proxy, verify=self.ssl_context(), trust_env=False, timeout=30, **kwargs)

    def client_env(self) -> dict[str, str]:
        """The environment `keyless run` gives a program (read from `keyless env`)."""
        out = self.cli("env")
        assert out.returncode == 0, out.stderr
        env: dict[str, str] = {}
        import shlex

        for line in out.stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
        return env

    # --- acting as a user ----------------------------------------------------------------

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keyless", *args],
            env=self.base_env(),
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            check=False,
        )

    def run_python(self, code: str, *run_args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`keyless run [run_args] -- python -c CODE`: an unchanged Azure program under Keyless."""
        return self.cli("run", *run_args, "--", sys.executable, "-c", code, timeout=timeout)

    def client_token(
        self, client_id: str, client_secret: str, resource: str = "https://management.azure.com/"
    ) -> str:
        """A client-credentials token from the authority, through the proxy, as an SDK gets one."""
        with self.client() as http:
            r = http.post(
                f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "scope": resource.rstrip("/") + "/.default",
                },
            )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def admin_token(self, resource: str = "https://management.azure.com/") -> str:
        return self.client_token(self.admin["clientId"], self.admin["clientSecret"], resource)

    def arm(self, token: str | None = None) -> httpx.Client:
        """A client for https://management.azure.com with the admin's (or the given) bearer token."""
        bearer = token or self.admin_token()
        return self.client(
            base_url="https://management.azure.com", headers={"Authorization": f"Bearer {bearer}"}
        )
