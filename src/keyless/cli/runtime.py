"""What a running server publishes about itself, and the client environment derived from it.

Whether a server is running for a data directory is decided by one thing only: the instance lock
(``server.lock``), which ``keyless up`` holds for its lifetime and the OS releases when it dies,
however it dies. ``server.json`` only says where the running server listens; its PID is shown,
never believed (a PID can be reused, or belong to a zombie).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.markup import escape

from keyless.config import Settings
from keyless.directory import AdminCredentials
from keyless.sealing import RootKeyError, load_root_key

# The option every command takes: which instance (data directory) it is about.
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="KEYLESS_DATA_DIR", help="Where this instance keeps its state."),
]


def settings_for(data_dir: Path | None, **overrides: object) -> Settings:
    """The settings of the instance a command names (``--data-dir``), environment for the rest."""
    return Settings.from_env(data_dir=data_dir.expanduser().resolve() if data_dir else None, **overrides)


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    host: str
    https_port: int
    http_port: int
    tenant_id: str
    subscription_id: str
    database: str

    @classmethod
    def read(cls, settings: Settings) -> RuntimeInfo | None:
        try:
            data = orjson.loads(settings.runtime_file.read_bytes())
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                https_port=int(data["httpsPort"]),
                http_port=int(data["httpPort"]),
                tenant_id=str(data["tenantId"]),
                subscription_id=str(data["subscriptionId"]),
                database=str(data["database"]),
            )
        except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # absent, or not written by a Keyless server: nothing to trust

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "pid": self.pid,
                "host": self.host,
                "httpsPort": self.https_port,
                "httpPort": self.http_port,
                "tenantId": self.tenant_id,
                "subscriptionId": self.subscription_id,
                "database": self.database,
            },
            option=orjson.OPT_INDENT_2,
        )

    @property
    def https_url(self) -> str:
        return f"https://{self.host}:{self.https_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


class InstanceLock:
    """The exclusive flock ``keyless up`` holds on ``server.lock`` while it lives.

    The OS drops it when the process dies (``kill -9`` included), so it is never stale. The file
    holds the holder's PID, for messages only.
    """

    def __init__(self, settings: Settings) -> None:
        self._path = settings.lock_file
        self._fd: int | None = None

    def acquire(self, wait: float = 1.0) -> bool:
        """Take the lock (the file is created 0600); False if another process holds it.

        Waits up to ``wait`` seconds: ``is_running`` probes hold the lock (shared) for an instant.
        """
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it). The file stays: deleting it would let
        a second server lock a new file while a first one still holds the old."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_running(settings: Settings) -> bool:
    """Whether a ``keyless up`` holds this data directory's instance lock (ready or still starting)."""
    try:
        fd = os.open(settings.lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the probe's shared lock, if it got one
    return False


def lock_holder_pid(settings: Settings) -> int | None:
    """The PID ``keyless up`` wrote into the lock file (for messages; ``is_running`` decides)."""
    try:
        return int(settings.lock_file.read_text().strip())
    except (OSError, ValueError):
        return None


def root_key_problem(settings: Settings) -> str | None:
    """Why this data directory is not an instance (no or a damaged root key), or None."""
    try:
        load_root_key(settings.root_key_file)
    except RootKeyError as exc:
        return str(exc)
    return None


def require_running(settings: Settings) -> RuntimeInfo:
    """The running server of this data directory, or a clear message and exit code 1."""
    err = Console(stderr=True, soft_wrap=True)
    problem = root_key_problem(settings)
    if problem is not None:
        err.print(f"[red]{escape(problem)}[/red]")
        raise typer.Exit(1)
    if not is_running(settings):
        err.print(
            f"[red]Keyless is not running for {escape(str(settings.data_dir))}.[/red] Start it with "
            f"[bold]keyless up --data-dir {escape(str(settings.data_dir))}[/bold]."
        )
        raise typer.Exit(1)
    info = RuntimeInfo.read(settings)
    if info is None:
        err.print(
            f"[red]Keyless is still starting for {escape(str(settings.data_dir))}; try again shortly.[/red]"
        )
        raise typer.Exit(1)
    return info


def health(settings: Settings, info: RuntimeInfo, timeout: float = 2.0) -> dict[str, Any] | None:
    """The server's health answer over HTTPS with the local CA, or None if it does not answer."""
    try:
        ctx = ssl.create_default_context(cafile=str(settings.ca_cert_file))
        response = httpx.get(
            f"{info.https_url}/_keyless/health", verify=ctx, timeout=timeout, trust_env=False
        )
    except (httpx.HTTPError, OSError):
        return None
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body


def client_environment(
    settings: Settings, info: RuntimeInfo, admin: AdminCredentials | None
) -> dict[str, str]:
    """The variables an unchanged Azure program needs to reach Keyless instead of Azure."""
    bundle = str(settings.ca_bundle_file)
    no_proxy = "localhost,127.0.0.1,::1"
    env = {
        "HTTPS_PROXY": info.proxy_url,
        "HTTP_PROXY": info.proxy_url,
        "NO_PROXY": no_proxy,
        # Lower-case twins: many tools read these first.
        "https_proxy": info.proxy_url,
        "http_proxy": info.proxy_url,
        "no_proxy": no_proxy,
        "REQUESTS_CA_BUNDLE": bundle,
        "SSL_CERT_FILE": bundle,
        "CURL_CA_BUNDLE": bundle,
        "NODE_EXTRA_CA_CERTS": str(settings.ca_cert_file),
        "AZURE_SUBSCRIPTION_ID": info.subscription_id,
        "AZURE_TENANT_ID": info.tenant_id,
    }
    if admin is not None:
        env["AZURE_CLIENT_ID"] = admin.client_id
        env["AZURE_CLIENT_SECRET"] = admin.client_secret
    return env


_SAFE_DIR_NAME = re.compile(r"[a-z0-9][a-z0-9._()-]{0,89}")


def azure_cli_environment(settings: Settings, *who: str) -> dict[str, str]:
    """The Azure CLI's own variables for one identity: ``AZURE_CONFIG_DIR`` at
    ``{data_dir}/azure/{who...}`` (each level created 0700), so ``az login`` under Keyless keeps
    its profile and token cache there and never touches the user's ``~/.azure``; and
    ``AZURE_CORE_COLLECT_TELEMETRY=false`` (az would send its telemetry to Microsoft through the
    proxy's tunnel). ``who``: ``("admin",)`` or e.g. ``("vm", group, name)``; a part that is not a
    plain lower-cased name is replaced by its SHA-256 (a name never leaves the directory)."""
    path = settings.data_dir / "azure"
    levels = [path]
    for part in (p.lower() for p in who):
        path = path / (part if _SAFE_DIR_NAME.fullmatch(part) else hashlib.sha256(part.encode()).hexdigest())
        levels.append(path)
    for level in levels:
        level.mkdir(mode=0o700, exist_ok=True)
        level.chmod(0o700)
    return {"AZURE_CONFIG_DIR": str(path), "AZURE_CORE_COLLECT_TELEMETRY": "false"}


def read_admin(settings: Settings) -> AdminCredentials | None:
    path: Path = settings.admin_credentials_file
    if not path.exists():
        return None
    return AdminCredentials.from_json(path.read_bytes())
