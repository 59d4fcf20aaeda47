"""Resource commands in the style of `az` (groups, identities, VMs, Function apps), and the
environment a process gets when it runs *as* one of them (`keyless run --as`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from keyless.cli.client import ArmClient
from keyless.cli.runtime import DataDir, RuntimeInfo, client_environment, settings_for
from keyless.config import Settings
from keyless.providers.managedidentity.provider import TOKEN_EXCHANGE_AUDIENCE

GROUP_API = "2025-04-01"
MSI_API = "2024-11-30"
VM_API = "2026-04-01"
WEB_API = "2025-05-01"
VM_TYPE = "Microsoft.Compute/virtualMachines"
SITE_TYPE = "Microsoft.Web/sites"
UAMI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
SYSTEM = "[system]"
# Variables a real VM or Function app does not have: `run --as` removes them.
_FOREIGN = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)
# Assertions live an hour; the file is rewritten well before that (azure-identity rereads it).
_ASSERTION_REFRESH_SECONDS = 600

console = Console()
group_app = typer.Typer(help="Resource groups.", no_args_is_help=True)
identity_app = typer.Typer(help="User-assigned managed identities.", no_args_is_help=True)
vm_app = typer.Typer(help="Virtual machines (places a process runs as).", no_args_is_help=True)
functionapp_app = typer.Typer(help="Function apps (places a process runs as).", no_args_is_help=True)

Group = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group name.")]
Name = Annotated[str, typer.Option("--name", "-n", help="Resource name.")]
Location = Annotated[str, typer.Option("--location", "-l", help="Azure region.")]
AssignIdentity = Annotated[
    str | None,
    typer.Option(
        "--assign-identity",
        help="Alone: a system-assigned identity. With a value: comma-separated user-assigned identity ids "
        "or names (in the same group), and '[system]' for both.",
    ),
]


def expand_assign_identity(argv: list[str]) -> list[str]:
    """`--assign-identity` with no value means a system-assigned identity, as in `az`."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == "--assign-identity" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(SYSTEM)
    return out


def _group_path(client: ArmClient, group: str) -> str:
    return f"/subscriptions/{client.subscription_id}/resourceGroups/{group}"


def _show(resource: dict[str, Any]) -> None:
    table = Table(show_header=False, title=resource.get("id"))
    table.add_row("name", str(resource.get("name")))
    table.add_row("type", str(resource.get("type")))
    if resource.get("location"):
        table.add_row("location", str(resource.get("location")))
    props = resource.get("properties") or {}
    for key in ("principalId", "clientId", "tenantId"):
        if key in props:
            table.add_row(key, str(props[key]))
    identity = resource.get("identity") or {}
    if identity.get("type"):
        table.add_row("identity.type", str(identity["type"]))
    if identity.get("principalId"):
        table.add_row("identity.principalId (system)", str(identity["principalId"]))
    for uami, entry in (identity.get("userAssignedIdentities") or {}).items():
        table.add_row("identity (user-assigned)", f"{uami}\n  clientId {entry.get('clientId')}")
    console.print(table)


@group_app.command("create")
def group_create(name: Name, location: Location = "westeurope", data_dir: DataDir = None) -> None:
    """Create or update a resource group."""
    with ArmClient(settings_for(data_dir)) as client:
        _show(client.call("PUT", _group_path(client, name), GROUP_API, {"location": location}))


@group_app.command("delete")
def group_delete(name: Name, data_dir: DataDir = None) -> None:
    """Delete a resource group and everything in it."""
    with ArmClient(settings_for(data_dir)) as client:
        client.call("DELETE", _group_path(client, name), GROUP_API)
        console.print(f"Deleted resource group {name}.")


@identity_app.command("create")
def identity_create(
    group: Group, name: Name, location: Location = "westeurope", data_dir: DataDir = None
) -> None:
    """Create a user-assigned managed identity."""
    with ArmClient(settings_for(data_dir)) as client:
        path = f"{_group_path(client, group)}/providers/{UAMI_TYPE}/{name}"
        _show(client.call("PUT", path, MSI_API, {"location": location}))


Query = Annotated[
    str | None,
    typer.Option(help="Print only this property: a dotted path, e.g. id, clientId, identity.principalId."),
]


def _show_or_query(resource: dict[str, Any], query: str | None) -> None:
    """Print a resource, or just one property of it (looked up in ``properties`` first)."""
    if query is None:
        _show(resource)
        return
    value: Any = None
    for root in (resource.get("properties") or {}, resource):
        value = root
        for part in query.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            break
    if value is None:
        Console(stderr=True).print(f"[red]The resource has no property '{query}'.[/red]")
        raise typer.Exit(1)
    print(value)


@group_app.command("show")
def group_show(name: Name, query: Query = None, data_dir: DataDir = None) -> None:
    """Show a resource group."""
    with ArmClient(settings_for(data_dir)) as client:
        _show_or_query(client.call("GET", _group_path(client, name), GROUP_API), query)


@identity_app.command("show")
def identity_show(group: Group, name: Name, query: Query = None, data_dir: DataDir = None) -> None:
    """Show a user-assigned managed identity."""
    with ArmClient(settings_for(data_dir)) as client:
        path = f"{_group_path(client, group)}/providers/{UAMI_TYPE}/{name}"
        _show_or_query(client.call("GET", path, MSI_API), query)


@vm_app.command("show")
def vm_show(group: Group, name: Name, query: Query = None, data_dir: DataDir = None) -> None:
    """Show a VM."""
    with ArmClient(settings_for(data_dir)) as client:
        _show_or_query(
            client.call("GET", f"{_group_path(client, group)}/providers/{VM_TYPE}/{name}", VM_API), query
        )


@functionapp_app.command("show")
def functionapp_show(group: Group, name: Name, query: Query = None, data_dir: DataDir = None) -> None:
    """Show a Function app."""
    with ArmClient(settings_for(data_dir)) as client:
        path = f"{_group_path(client, group)}/providers/{SITE_TYPE}/{name}"
        _show_or_query(client.call("GET", path, WEB_API), query)


@identity_app.command("federate")
def identity_federate(
    group: Group,
    identity: Annotated[str, typer.Option("--identity-name", help="The user-assigned identity.")],
    name: Name,
    subject: Annotated[str, typer.Option(help="The subject the workload's assertions carry.")],
    issuer: Annotated[
        str | None, typer.Option(help="The issuer to trust (default: Keyless's own workload issuer).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a federated identity credential on an identity (default issuer: Keyless's)."""
    with ArmClient(settings_for(data_dir)) as client:
        trusted = issuer or f"https://login.microsoftonline.com/{client.tenant_id}/keyless/workload"
        path = f"{_group_path(client, group)}/providers/{UAMI_TYPE}/{identity}/federatedIdentityCredentials/{name}"
        body = {"properties": {"issuer": trusted, "subject": subject, "audiences": [TOKEN_EXCHANGE_AUDIENCE]}}
        created = client.call("PUT", path, MSI_API, body)
        console.print(f"Federated credential {created['id']}\n  issuer  {trusted}\n  subject {subject}")


def _identity_body(client: ArmClient, group: str, assign: str | None) -> dict[str, Any] | None:
    if assign is None:
        return None
    system = False
    user: dict[str, dict[str, Any]] = {}
    for item in (part.strip() for part in assign.split(",")):
        if not item:
            continue
        if item.lower() == SYSTEM:
            system = True
        elif item.startswith("/"):
            user[item] = {}
        else:
            user[f"{_group_path(client, group)}/providers/{UAMI_TYPE}/{item}"] = {}
    kind = ", ".join(k for k, on in (("SystemAssigned", system), ("UserAssigned", bool(user))) if on)
    body: dict[str, Any] = {"type": kind or "None"}
    if user:
        body["userAssignedIdentities"] = user
    return body


def _create_workload(
    data_dir: Path | None,
    group: str,
    name: str,
    type_name: str,
    api_version: str,
    body: dict[str, Any],
    assign_identity: str | None,
) -> None:
    with ArmClient(settings_for(data_dir)) as client:
        identity = _identity_body(client, group, assign_identity)
        if identity is not None:
            body["identity"] = identity
        _show(
            client.call(
                "PUT", f"{_group_path(client, group)}/providers/{type_name}/{name}", api_version, body
            )
        )


@vm_app.command("create")
def vm_create(
    group: Group,
    name: Name,
    location: Location = "westeurope",
    assign_identity: AssignIdentity = None,
    data_dir: DataDir = None,
) -> None:
    """Create a VM (a place `keyless run --as` can run a process as)."""
    body = {"location": location, "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"}}}
    _create_workload(data_dir, group, name, VM_TYPE, VM_API, body, assign_identity)


@functionapp_app.command("create")
def functionapp_create(
    group: Group,
    name: Name,
    location: Location = "westeurope",
    assign_identity: AssignIdentity = None,
    data_dir: DataDir = None,
) -> None:
    """Create a Function app (a place `keyless run --as` can run a process as)."""
    body = {"location": location, "kind": "functionapp", "properties": {}}
    _create_workload(data_dir, group, name, SITE_TYPE, WEB_API, body, assign_identity)


# --- running as a workload --------------------------------------------------------------------


@dataclass
class WorkloadEnvironment:
    """The variables a process running as a workload gets, and what keeps them fresh."""

    variables: dict[str, str]
    removed: tuple[str, ...] = _FOREIGN
    assertion_file: Path | None = None
    refresh: Any = None  # () -> str: a fresh assertion, for federated workloads
    _stop: threading.Event = field(default_factory=threading.Event)

    def keep_fresh(self) -> None:
        """Rewrite the assertion file in the background until ``stop`` (federated workloads)."""
        if self.refresh is None or self.assertion_file is None:
            return

        def loop() -> None:
            while not self._stop.wait(_ASSERTION_REFRESH_SECONDS):
                _write_private(self.assertion_file, self.refresh())  # type: ignore[arg-type]

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self.assertion_file is not None:
            self.assertion_file.unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    from keyless.sealing import write_private_file

    write_private_file(path, text.encode())


def _find(client: ArmClient, name: str, types: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """A resource by id, or by name among the subscription's resources of ``types``."""
    if name.startswith("/"):
        for type_name, api in types:
            if f"/providers/{type_name}/".lower() in name.lower():
                response = client.request("GET", name, api)
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    return found
        raise _unknown(name, types)
    matches = [
        item
        for type_name, api in types
        for item in client.list_all(f"/subscriptions/{client.subscription_id}/providers/{type_name}", api)
        if item["name"].lower() == name.lower()
    ]
    if not matches:
        raise _unknown(name, types)
    if len(matches) > 1:
        ids = "\n  ".join(m["id"] for m in matches)
        console.print(f"[red]'{name}' is ambiguous; give the resource id:[/red]\n  {ids}")
        raise typer.Exit(1)
    chosen: dict[str, Any] = matches[0]
    return chosen


def _unknown(name: str, types: tuple[tuple[str, str], ...]) -> typer.Exit:
    kinds = " or ".join(t.split("/")[-1] for t, _ in types)
    Console(stderr=True).print(f"[red]No {kinds} named '{name}' exists (it may have been deleted).[/red]")
    return typer.Exit(1)


def workload_environment(
    settings: Settings,
    info: RuntimeInfo,
    name: str,
    *,
    federated: bool = False,
    credential: str | None = None,
    direct_imds: bool = False,
) -> WorkloadEnvironment:
    """What the platform gives a process running as ``name`` (a VM, a Function app, or — with
    ``federated`` — a user-assigned identity trusted through a federated credential)."""
    base = client_environment(settings, info, None)
    for key in ("AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID"):
        base.pop(key, None)
    with ArmClient(settings) as client:
        if federated:
            return _federated_environment(settings, client, base, name, credential)
        workload = _find(client, name, ((VM_TYPE, VM_API), (SITE_TYPE, WEB_API)))
        is_vm = workload["type"].lower() == VM_TYPE.lower()
        api = VM_API if is_vm else WEB_API
        token = client.call("POST", f"{workload['id']}/listHostToken", api)["hostToken"]
    # The proxy password carries the workload's network origin (and its IMDS identity).
    proxy = f"http://workload:{token}@{info.host}:{info.http_port}"
    for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        base[key] = proxy
    if is_vm:
        if direct_imds:
            base["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = f"http://{info.host}:{info.http_port}/imds/{token}"
    else:
        endpoint = f"http://{info.host}:{info.http_port}/msi/token"
        # What App Service sets (both the current and the legacy pair).
        base.update(
            IDENTITY_ENDPOINT=endpoint, IDENTITY_HEADER=token, MSI_ENDPOINT=endpoint, MSI_SECRET=token
        )
    return WorkloadEnvironment(base)


def _federated_environment(
    settings: Settings, client: ArmClient, base: dict[str, str], name: str, credential: str | None
) -> WorkloadEnvironment:
    identity = _find(client, name, ((UAMI_TYPE, MSI_API),))
    issuer = f"https://login.microsoftonline.com/{client.tenant_id}/keyless/workload"
    credentials = client.list_all(f"{identity['id']}/federatedIdentityCredentials", MSI_API)
    usable = [
        c
        for c in credentials
        if c["properties"].get("issuer") == issuer
        and (credential is None or c["name"].lower() == credential.lower())
    ]
    if not usable:
        Console(stderr=True).print(
            f"[red]The identity '{name}' has no federated credential trusting Keyless's workload issuer"
            f"{f' named {credential!r}' if credential else ''}.[/red]\nCreate one with: keyless identity federate "
            f"-g <group> --identity-name {identity['name']} -n <name> --subject <subject>"
        )
        raise typer.Exit(1)
    fic_id = usable[0]["id"]

    def fresh_assertion() -> str:
        with ArmClient(settings) as again:
            return str(again.call("POST", f"{fic_id}/issueAssertion", MSI_API)["assertion"])

    assertion = str(client.call("POST", f"{fic_id}/issueAssertion", MSI_API)["assertion"])
    path = settings.data_dir / "run" / f"assertion-{identity['properties']['clientId']}-{id(base)}.jwt"
    _write_private(path, assertion)
    base.update(
        AZURE_FEDERATED_TOKEN_FILE=str(path),
        AZURE_CLIENT_ID=identity["properties"]["clientId"],
        AZURE_TENANT_ID=client.tenant_id,
        AZURE_AUTHORITY_HOST="https://login.microsoftonline.com",
    )
    return WorkloadEnvironment(base, assertion_file=path, refresh=fresh_assertion)
