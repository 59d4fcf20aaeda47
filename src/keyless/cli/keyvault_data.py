"""``keyless keyvault key …`` and ``keyless keyvault secret …``: a vault's keys and secrets, as
``az keyvault key|secret`` drives them, with az's ``--output`` and ``--query``.

What is printed is the JSON the data plane answers (a KeyBundle, SecretBundle, or the list of
KeyItem / SecretItem that the list pages hold, every page followed through ``nextLink``), as az
prints it. Names are not checked here: the server is the one source of truth, and its Key Vault
error (``(KeyNotFound) A key with (name/id) …``) is printed on stderr with exit code 1.

The CLI reaches the data plane as it reaches the resource manager (``client.py``): straight to
the HTTPS listener with ``Host: {vault}.vault.azure.net``, with the admin's client-credentials
token for ``https://vault.azure.net`` (the resource named in the data plane's challenge;
shared/reference/keyvault.md §2).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyless.cli.client import fail
from keyless.cli.output import Output, Query, emit, print_table
from keyless.cli.runtime import DataDir, read_admin, require_running, settings_for
from keyless.config import Settings

# The newest data-plane version the server speaks (providers/keyvault/http.py; what
# azure-keyvault-keys 4.11 sends).
DATA_API = "2025-07-01"
VAULT_SCOPE = "https://vault.azure.net/.default"
VAULT_SUFFIX = ".vault.azure.net"
# A list follows nextLink at most this many times: a server that never stops cannot hang the CLI.
_MAX_PAGES = 10_000
# A secret holds at most 25 KiB (keyvault-secrets.md); a bigger file is refused before it is read
# whole, anything up to this is sent and the server answers for it.
_MAX_FILE_BYTES = 1024 * 1024

_err = Console(stderr=True, soft_wrap=True)

key_app = typer.Typer(help="A vault's keys (create, list, show, rotate).", no_args_is_help=True)
secret_app = typer.Typer(help="A vault's secrets (set, show, list).", no_args_is_help=True)

VaultName = Annotated[str, typer.Option("--vault-name", help="The vault's name ({name}.vault.azure.net).")]
KeyName = Annotated[str, typer.Option("--name", "-n", help="The key's name.")]
SecretName = Annotated[str, typer.Option("--name", "-n", help="The secret's name.")]
Version = Annotated[
    str | None, typer.Option("--version", "-v", help="A version id (default: the latest version).")
]


def _die(message: str) -> typer.Exit:
    _err.print(message, style="red", markup=False, highlight=False)
    return typer.Exit(1)


class DataPlaneClient:
    """Key Vault data-plane calls to one vault, in direct mode, authenticated as the admin.

    Errors: no running server or no admin credentials → message, exit 1 (as ``ArmClient``); a
    Key Vault error answer → its code and message (``client.fail``), exit 1.
    """

    def __init__(self, settings: Settings, vault: str) -> None:
        info = require_running(settings)
        admin = read_admin(settings)
        if admin is None:
            raise _die(f"No admin credentials in {settings.admin_credentials_file}.")
        self.host = f"{vault}{VAULT_SUFFIX}".lower()
        self._http = httpx.Client(
            base_url=info.https_url, verify=str(settings.ca_cert_file), trust_env=False, timeout=60
        )
        token = self._send(
            "POST",
            f"/{admin.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": admin.client_id,
                "client_secret": admin.client_secret,
                "scope": VAULT_SCOPE,
            },
        )
        if token.status_code != 200:
            self.close()
            raise _die(f"The admin could not sign in: {token.text}")
        self._http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        # A vault name no Host header can carry (non-ASCII: ValueError; a newline: HTTPError).
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise _die(f"The request could not be sent: {exc}") from None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One data-plane request (``path`` already quoted); the JSON answer, or exit 1 on an error."""
        response = self._send(
            method, path, params={"api-version": DATA_API}, json=body, headers={"Host": self.host}
        )
        if response.status_code >= 400:
            fail(response)
        return response.json() if response.content else None

    def list_all(self, path: str) -> list[Any]:
        """Every item of a paged list: ``value`` of each page, following ``nextLink`` (absolute,
        ``https://{vault}.vault.azure.net:443/...``; keyvault.md §1) only while it names this vault."""
        page = self.call("GET", path)
        items: list[Any] = list(page.get("value") or [])
        seen: set[str] = set()
        while isinstance(page.get("nextLink"), str) and page["nextLink"]:
            link: str = page["nextLink"]
            parts = urlsplit(link)
            if parts.scheme != "https" or (parts.hostname or "").lower() != self.host or link in seen:
                raise _die(f"The service answered a nextLink this command will not follow: {link}")
            if len(seen) >= _MAX_PAGES:
                raise _die(f"The list has more than {_MAX_PAGES} pages; stopped.")
            seen.add(link)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            response = self._send("GET", target, headers={"Host": self.host})
            if response.status_code >= 400:
                fail(response)
            page = response.json()
            items.extend(page.get("value") or [])
        return items

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DataPlaneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _segment(value: str) -> str:
    """A path segment, every reserved character quoted (as azure-core's ``format_url`` does)."""
    return quote(value, safe="")


def _object_path(kind: str, name: str, version: str | None = None) -> str:
    path = f"/{kind}/{_segment(name)}"
    return f"{path}/{_segment(version)}" if version else path


def _id_parts(identifier: Any) -> tuple[str, str]:
    """``(name, version)`` of ``https://{vault}.vault.azure.net/{keys|secrets}/{name}[/{version}]``."""
    segments = urlsplit(identifier).path.strip("/").split("/") if isinstance(identifier, str) else []
    name = segments[1] if len(segments) > 1 else ""
    version = segments[2] if len(segments) > 2 else ""
    return name, version


def _when(seconds: Any) -> str:
    """Key Vault's ``attributes`` times are Unix seconds; tables show them as UTC ISO 8601."""
    if isinstance(seconds, int) and not isinstance(seconds, bool) and 0 <= seconds < 253402300800:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat().replace("+00:00", "Z")
    return ""


def _text(value: Any) -> Text:
    if value is None:
        return Text("")
    if isinstance(value, list):
        return Text(" ".join(str(v) for v in value))
    return Text(str(value))


def _draw(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    print_table(table)


def _attrs(item: dict[str, Any]) -> dict[str, Any]:
    attributes = item.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _key_table(bundle: Any) -> None:
    key = bundle.get("key") or {}
    name, version = _id_parts(key.get("kid"))
    attrs = _attrs(bundle)
    _draw(
        ["Name", "Version", "Type", "Operations", "Enabled", "Updated"],
        [
            [
                name,
                version,
                key.get("kty"),
                key.get("key_ops"),
                attrs.get("enabled"),
                _when(attrs.get("updated")),
            ]
        ],
    )


def _key_list_table(title: str) -> Any:
    def draw(items: Any) -> None:
        rows = []
        for item in items:
            attrs = _attrs(item)
            rows.append(
                [
                    _id_parts(item.get("kid"))[0],
                    attrs.get("enabled"),
                    _when(attrs.get("created")),
                    _when(attrs.get("updated")),
                ]
            )
        _draw(["Name", "Enabled", "Created", "Updated"], rows, title)

    return draw


def _secret_table(bundle: Any) -> None:
    name, version = _id_parts(bundle.get("id"))
    attrs = _attrs(bundle)
    _draw(
        ["Name", "Version", "ContentType", "Enabled", "Updated", "Value"],
        [
            [
                name,
                version,
                bundle.get("contentType"),
                attrs.get("enabled"),
                _when(attrs.get("updated")),
                bundle.get("value"),
            ]
        ],
    )


def _secret_list_table(title: str) -> Any:
    def draw(items: Any) -> None:
        rows = []
        for item in items:
            attrs = _attrs(item)
            rows.append(
                [
                    _id_parts(item.get("id"))[0],
                    item.get("contentType"),
                    attrs.get("enabled"),
                    _when(attrs.get("updated")),
                ]
            )
        _draw(["Name", "ContentType", "Enabled", "Updated"], rows, title)

    return draw


# --- keys -------------------------------------------------------------------------------------


@key_app.command("create", context_settings={"allow_extra_args": True})
def key_create(
    ctx: typer.Context,
    vault_name: VaultName,
    name: KeyName,
    kty: Annotated[
        str, typer.Option("--kty", help="RSA, RSA-HSM, EC, EC-HSM or oct-HSM (the server decides).")
    ] = "RSA",
    size: Annotated[int | None, typer.Option("--size", help="RSA: 2048, 3072 or 4096; oct: 128-256.")] = None,
    curve: Annotated[str | None, typer.Option("--curve", help="EC: P-256, P-256K, P-384 or P-521.")] = None,
    ops: Annotated[
        list[str] | None,
        typer.Option(
            "--ops",
            help="Permitted operations, as az takes them: --ops wrapKey unwrapKey (or --ops a --ops b).",
        ),
    ] = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key, or a new version of an existing one (POST /keys/{name}/create)."""
    key_ops = list(ops or [])
    if ctx.args:
        # Click options take one value; az's ``--ops a b`` leaves ``b`` as an extra argument.
        if not key_ops:
            raise typer.BadParameter(f"unexpected extra arguments: {' '.join(ctx.args)}")
        key_ops.extend(ctx.args)
    body: dict[str, Any] = {"kty": kty}
    if size is not None:
        body["key_size"] = size
    if curve is not None:
        body["crv"] = curve
    if ops is not None:
        body["key_ops"] = key_ops
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        created = client.call("POST", _object_path("keys", name) + "/create", body)
    emit(created, output, query, _key_table)


@key_app.command("show")
def key_show(
    vault_name: VaultName,
    name: KeyName,
    version: Version = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Show a key's public part, operations and attributes (GET /keys/{name}[/{version}])."""
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        found = client.call("GET", _object_path("keys", name, version))
    emit(found, output, query, _key_table)


@key_app.command("list")
def key_list(
    vault_name: VaultName, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List the vault's keys (their latest versions' kid, attributes and tags; GET /keys)."""
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        found = client.list_all("/keys")
    emit(found, output, query, _key_list_table(f"Keys in {vault_name}"))


@key_app.command("rotate")
def key_rotate(
    vault_name: VaultName, name: KeyName, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """Make a new version of a key with the same type, size and operations (POST /keys/{name}/rotate)."""
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        rotated = client.call("POST", _object_path("keys", name) + "/rotate")
    emit(rotated, output, query, _key_table)


# --- secrets ----------------------------------------------------------------------------------


def _read_value(path: Path) -> str:
    """A file's text (UTF-8), at most ``_MAX_FILE_BYTES`` read; unreadable or too big: exit 1."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _die(f"Cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise _die(f"{path} is larger than {_MAX_FILE_BYTES} bytes; a secret holds at most 25 KiB.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _die(f"{path} is not UTF-8 text.") from None


@secret_app.command("set")
def secret_set(
    vault_name: VaultName,
    name: SecretName,
    value: Annotated[str | None, typer.Option("--value", help="The secret's value.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the value from this file (UTF-8 text).")
    ] = None,
    content_type: Annotated[
        str | None, typer.Option("--content-type", help="A hint of what the value is, e.g. text/plain.")
    ] = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Set a secret: a new version holding the value (PUT /secrets/{name})."""
    if (value is None) == (file is None):
        raise typer.BadParameter("give exactly one of --value and --file")
    if value is None:
        assert file is not None  # exactly one was given
        value = _read_value(file)
    body: dict[str, Any] = {"value": value}
    if content_type is not None:
        body["contentType"] = content_type
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        stored = client.call("PUT", _object_path("secrets", name), body)
    emit(stored, output, query, _secret_table)


@secret_app.command("show")
def secret_show(
    vault_name: VaultName,
    name: SecretName,
    version: Version = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Show a secret with its value (GET /secrets/{name}[/{version}])."""
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        found = client.call("GET", _object_path("secrets", name, version))
    emit(found, output, query, _secret_table)


@secret_app.command("list")
def secret_list(
    vault_name: VaultName, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List the vault's secrets (ids, attributes, content types; never values; GET /secrets)."""
    with DataPlaneClient(settings_for(data_dir), vault_name) as client:
        found = client.list_all("/secrets")
    emit(found, output, query, _secret_list_table(f"Secrets in {vault_name}"))
