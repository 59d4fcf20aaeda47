"""How the CLI talks to a running server: as the local admin, over HTTPS, like `az` does."""

from __future__ import annotations

from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from keyless.cli.runtime import read_admin, require_running
from keyless.config import Settings

ARM_SCOPE = "https://management.azure.com/.default"
# Direct mode routes by host: naming the resource manager's makes every path an ARM request, so
# a mistyped scope gets ARM's error rather than the authority's 404 for an unknown path.
_ARM_HOST = {"Host": "management.azure.com"}
_err = Console(stderr=True, soft_wrap=True)


class ArmClient:
    """A resource-manager client in direct mode (https://127.0.0.1:<port>), authenticated as the admin."""

    def __init__(self, settings: Settings) -> None:
        info = require_running(settings)
        admin = read_admin(settings)
        if admin is None:
            _err.print(f"[red]No admin credentials in {settings.admin_credentials_file}.[/red]")
            raise typer.Exit(1)
        self.info = info
        self.settings = settings
        self.subscription_id = info.subscription_id
        self.tenant_id = info.tenant_id
        self._http = httpx.Client(
            base_url=info.https_url,
            verify=str(settings.ca_cert_file),
            trust_env=False,
            timeout=60,
        )
        token = self._http.post(
            f"/{admin.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": admin.client_id,
                "client_secret": admin.client_secret,
                "scope": ARM_SCOPE,
            },
        )
        if token.status_code != 200:
            _err.print(f"[red]The admin could not sign in:[/red] {token.text}")
            raise typer.Exit(1)
        self._http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def request(
        self, method: str, path: str, api_version: str, body: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        query = {"api-version": api_version, **(params or {})}
        return self._http.request(method, path, params=query, json=body, headers=_ARM_HOST)

    def call(
        self, method: str, path: str, api_version: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """Send a request; on an ARM error print its code and message and exit 1."""
        response = self.request(method, path, api_version, body, params)
        if response.status_code >= 400:
            fail(response)
        return response.json() if response.content else None

    def list_all(self, path: str, api_version: str, params: dict[str, str] | None = None) -> list[Any]:
        """Every item of a paged ARM list (follows nextLink)."""
        page = self.call("GET", path, api_version, params=params)
        items: list[Any] = list(page.get("value", []))
        while page.get("nextLink"):
            response = self._http.get(
                page["nextLink"].replace("https://management.azure.com", ""), headers=_ARM_HOST
            )
            if response.status_code >= 400:
                fail(response)
            page = response.json()
            items.extend(page.get("value", []))
        return items

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fail(response: httpx.Response, exit_code: int = 1) -> NoReturn:
    """Print an ARM error's code and message on stderr and exit (1 unless told otherwise)."""
    code: Any = response.status_code
    message: Any = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # ARM, Graph
        code, message = error.get("code", code), error.get("message", message)
    elif isinstance(error, str):  # OAuth
        code, message = error, body.get("error_description", message)
    _err.print(f"[red]({escape(str(code))})[/red] {escape(str(message))}")
    raise typer.Exit(exit_code)
