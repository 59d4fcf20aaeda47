"""What a running server publishes about itself, and the client environment derived from it."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console

from keyless.config import Settings
from keyless.directory import AdminCredentials

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
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return cls(
            pid=data["pid"],
            host=data["host"],
            https_port=data["httpsPort"],
            http_port=data["httpPort"],
            tenant_id=data["tenantId"],
            subscription_id=data["subscriptionId"],
            database=data["database"],
        )

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


def require_running(settings: Settings) -> RuntimeInfo:
    """The running server of this data directory, or a clear message and exit code 1."""
    info = RuntimeInfo.read(settings)
    if info is None or not process_alive(info.pid):
        Console(stderr=True).print(
            f"[red]Keyless is not running for {settings.data_dir}.[/red] Start it with "
            f"[bold]keyless up --data-dir {settings.data_dir}[/bold]."
        )
        raise typer.Exit(1)
    return info


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def health(settings: Settings, info: RuntimeInfo, timeout: float = 2.0) -> dict[str, Any] | None:
    """The server's health answer over HTTPS with the local CA, or None if it does not answer."""
    if not process_alive(info.pid):
        return None
    ctx = ssl.create_default_context(cafile=str(settings.ca_cert_file))
    try:
        response = httpx.get(
            f"{info.https_url}/_keyless/health", verify=ctx, timeout=timeout, trust_env=False
        )
    except httpx.HTTPError:
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


def read_admin(settings: Settings) -> AdminCredentials | None:
    path: Path = settings.admin_credentials_file
    if not path.exists():
        return None
    return AdminCredentials.from_json(path.read_bytes())
