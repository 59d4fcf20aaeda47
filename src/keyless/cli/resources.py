"""Resource commands in the style of `az`: groups, user-assigned identities, VMs and Function apps
(create, show, list, delete; federated credentials), with az's ``--output`` and ``--query``.

Identities, VMs and Function apps print as az prints them (``properties`` lifted to the top level,
``resourceGroup`` added: see ``keyless.cli.output.az_shape``); groups print as the resource manager
answers, as ``az group show`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyless.cli.client import ArmClient
from keyless.cli.output import Output, Query, az_shape, emit, print_table
from keyless.cli.runtime import DataDir, settings_for
from keyless.providers.managedidentity.provider import TOKEN_EXCHANGE_AUDIENCE

GROUP_API = "2025-04-01"
MSI_API = "2024-11-30"
VM_API = "2026-04-01"
WEB_API = "2025-05-01"
VM_TYPE = "Microsoft.Compute/virtualMachines"
SITE_TYPE = "Microsoft.Web/sites"
UAMI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
OIDC_ISSUER_TYPE = "Keyless.Workload/oidcIssuers"
OIDC_ISSUER_API = "2026-11-01"
DEFAULT_OIDC_ISSUER = "keyless-workload"
SYSTEM = "[system]"

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
group_app = typer.Typer(help="Resource groups.", no_args_is_help=True)
identity_app = typer.Typer(help="User-assigned managed identities.", no_args_is_help=True)
vm_app = typer.Typer(help="Virtual machines (places a process runs as).", no_args_is_help=True)
functionapp_app = typer.Typer(help="Function apps (places a process runs as).", no_args_is_help=True)

Group = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group name.")]
OptionalGroup = Annotated[
    str | None,
    typer.Option("--resource-group", "-g", help="Only this resource group's (default: the subscription's)."),
]
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


@dataclass(frozen=True)
class _Kind:
    """One resource type the CLI manages: how to address it and which columns its list shows."""

    label: str
    type_name: str
    api: str
    columns: tuple[tuple[str, str], ...]

    def path(self, client: ArmClient, group: str, name: str) -> str:
        return f"{_group_path(client, group)}/providers/{self.type_name}/{name}"

    def collection(self, client: ArmClient, group: str | None) -> str:
        scope = _group_path(client, group) if group else f"/subscriptions/{client.subscription_id}"
        return f"{scope}/providers/{self.type_name}"


_WORKLOAD_COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("Identity", "identity.type"),
    ("PrincipalId (system)", "identity.principalId"),
)
IDENTITY = _Kind(
    "identity",
    UAMI_TYPE,
    MSI_API,
    (
        ("Name", "name"),
        ("ResourceGroup", "resourceGroup"),
        ("Location", "location"),
        ("ClientId", "clientId"),
        ("PrincipalId", "principalId"),
    ),
)
VM = _Kind("VM", VM_TYPE, VM_API, _WORKLOAD_COLUMNS)
FUNCTION_APP = _Kind("Function app", SITE_TYPE, WEB_API, _WORKLOAD_COLUMNS)


def _lookup(item: dict[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _list_table(columns: tuple[tuple[str, str], ...], title: str) -> Any:
    def draw(items: list[dict[str, Any]]) -> None:
        table = Table(title=title)
        for header, _ in columns:
            table.add_column(header)
        for item in items:
            table.add_row(*(Text(str(_lookup(item, key) or "")) for _, key in columns))
        print_table(table)

    return draw


def _show_table(resource: dict[str, Any]) -> None:
    """The default view of one resource: its id, names and identities, one value per row."""
    table = Table(show_header=False)
    table.add_column()
    table.add_column()

    def row(key: str, value: Any) -> None:
        if value not in (None, "", {}):
            table.add_row(key, Text(str(value)))

    for key in ("id", "name", "resourceGroup", "type", "kind", "location"):
        row(key, resource.get(key))
    for key in ("clientId", "principalId", "tenantId", "defaultHostName", "state"):
        row(key, resource.get(key))
    identity = resource.get("identity") or {}
    row("identity.type", identity.get("type"))
    row("identity.principalId (system)", identity.get("principalId"))
    for uami, entry in (identity.get("userAssignedIdentities") or {}).items():
        row("identity (user-assigned)", uami)
        row("  clientId", (entry or {}).get("clientId"))
        row("  principalId", (entry or {}).get("principalId"))
    print_table(table)


def _emit_resource(resource: dict[str, Any], output: Output, query: Query, *, flatten: bool = True) -> None:
    emit(az_shape(resource) if flatten else resource, output, query, _show_table)


def _delete(client: ArmClient, path: str, api: str, what: str) -> None:
    response = client.request("DELETE", path, api)
    if response.status_code >= 400:
        from keyless.cli.client import fail

        fail(response)
    if response.status_code == 204:
        console.print(f"No {what} exists; nothing was deleted.", highlight=False, markup=False)
    else:
        console.print(f"Deleted {what}.", highlight=False, markup=False)


# --- resource groups ---------------------------------------------------------------------------


@group_app.command("create")
def group_create(
    name: Name,
    location: Location = "westeurope",
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create or update a resource group."""
    with ArmClient(settings_for(data_dir)) as client:
        created = client.call("PUT", _group_path(client, name), GROUP_API, {"location": location})
    _emit_resource(created, output, query, flatten=False)


@group_app.command("show")
def group_show(name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None) -> None:
    """Show a resource group."""
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", _group_path(client, name), GROUP_API)
    _emit_resource(found, output, query, flatten=False)


@group_app.command("list")
def group_list(output: Output = None, query: Query = None, data_dir: DataDir = None) -> None:
    """List the subscription's resource groups."""
    with ArmClient(settings_for(data_dir)) as client:
        found = client.list_all(f"/subscriptions/{client.subscription_id}/resourceGroups", GROUP_API)
    columns = (("Name", "name"), ("Location", "location"), ("State", "properties.provisioningState"))
    emit(found, output, query, _list_table(columns, "Resource groups"))


@group_app.command("delete")
def group_delete(name: Name, data_dir: DataDir = None) -> None:
    """Delete a resource group and everything in it."""
    with ArmClient(settings_for(data_dir)) as client:
        client.call("DELETE", _group_path(client, name), GROUP_API)
    console.print(f"Deleted resource group {name}.", highlight=False, markup=False)


# --- identities, VMs, Function apps: show, list, delete ---------------------------------------------


def _show(kind: _Kind, data_dir: Path | None, group: str, name: str, output: Output, query: Query) -> None:
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", kind.path(client, group, name), kind.api)
    _emit_resource(found, output, query)


def _list(kind: _Kind, data_dir: Path | None, group: str | None, output: Output, query: Query) -> None:
    with ArmClient(settings_for(data_dir)) as client:
        found = [az_shape(r) for r in client.list_all(kind.collection(client, group), kind.api)]
    title = f"{kind.label}s in {group}" if group else f"{kind.label}s in the subscription"
    emit(found, output, query, _list_table(kind.columns, title))


def _delete_kind(kind: _Kind, data_dir: Path | None, group: str, name: str) -> None:
    with ArmClient(settings_for(data_dir)) as client:
        _delete(client, kind.path(client, group, name), kind.api, f"{kind.label} {name} in {group}")


@identity_app.command("show")
def identity_show(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """Show a user-assigned managed identity."""
    _show(IDENTITY, data_dir, group, name, output, query)


@identity_app.command("list")
def identity_list(
    group: OptionalGroup = None, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List user-assigned managed identities."""
    _list(IDENTITY, data_dir, group, output, query)


@identity_app.command("delete")
def identity_delete(group: Group, name: Name, data_dir: DataDir = None) -> None:
    """Delete a user-assigned managed identity (and its federated credentials)."""
    _delete_kind(IDENTITY, data_dir, group, name)


@vm_app.command("show")
def vm_show(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """Show a VM."""
    _show(VM, data_dir, group, name, output, query)


@vm_app.command("list")
def vm_list(
    group: OptionalGroup = None, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List VMs."""
    _list(VM, data_dir, group, output, query)


@vm_app.command("delete")
def vm_delete(group: Group, name: Name, data_dir: DataDir = None) -> None:
    """Delete a VM (its host token stops working)."""
    _delete_kind(VM, data_dir, group, name)


@functionapp_app.command("show")
def functionapp_show(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """Show a Function app."""
    _show(FUNCTION_APP, data_dir, group, name, output, query)


@functionapp_app.command("list")
def functionapp_list(
    group: OptionalGroup = None, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List Function apps."""
    _list(FUNCTION_APP, data_dir, group, output, query)


@functionapp_app.command("delete")
def functionapp_delete(group: Group, name: Name, data_dir: DataDir = None) -> None:
    """Delete a Function app (its host token stops working)."""
    _delete_kind(FUNCTION_APP, data_dir, group, name)


# --- creating ----------------------------------------------------------------------------------


@identity_app.command("create")
def identity_create(
    group: Group,
    name: Name,
    location: Location = "westeurope",
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user-assigned managed identity."""
    with ArmClient(settings_for(data_dir)) as client:
        created = client.call("PUT", IDENTITY.path(client, group, name), MSI_API, {"location": location})
    _emit_resource(created, output, query)


@identity_app.command("federate")
def identity_federate(
    group: Group,
    identity: Annotated[str, typer.Option("--identity-name", help="The user-assigned identity.")],
    name: Name,
    subject: Annotated[str, typer.Option(help="The subject the workload's assertions carry.")],
    issuer: Annotated[str | None, typer.Option(help="An external issuer URL to trust instead.")] = None,
    oidc_issuer: Annotated[
        str,
        typer.Option(
            help="The Keyless OIDC issuer (Keyless.Workload/oidcIssuers) in the group to trust; "
            "created if it does not exist."
        ),
    ] = DEFAULT_OIDC_ISSUER,
    data_dir: DataDir = None,
) -> None:
    """Create a federated identity credential on an identity (default: trusting a Keyless OIDC issuer)."""
    with ArmClient(settings_for(data_dir)) as client:
        trusted = issuer or _ensure_oidc_issuer(client, group, oidc_issuer)
        path = f"{IDENTITY.path(client, group, identity)}/federatedIdentityCredentials/{name}"
        body = {"properties": {"issuer": trusted, "subject": subject, "audiences": [TOKEN_EXCHANGE_AUDIENCE]}}
        created = client.call("PUT", path, MSI_API, body)
        console.print(
            f"Federated credential {created['id']}\n  issuer  {trusted}\n  subject {subject}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _ensure_oidc_issuer(client: ArmClient, group: str, name: str) -> str:
    """The URL of the Keyless OIDC issuer ``name`` in ``group``, creating the issuer if needed."""
    path = f"{_group_path(client, group)}/providers/{OIDC_ISSUER_TYPE}/{name}"
    existing = client.request("GET", path, OIDC_ISSUER_API)
    if existing.status_code == 200:
        return str(existing.json()["properties"]["issuerURL"])
    group_location = client.call("GET", _group_path(client, group), GROUP_API)["location"]
    created = client.call("PUT", path, OIDC_ISSUER_API, {"location": group_location})
    return str(created["properties"]["issuerURL"])


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
            user[IDENTITY.path(client, group, item)] = {}
    kind = ", ".join(k for k, on in (("SystemAssigned", system), ("UserAssigned", bool(user))) if on)
    body: dict[str, Any] = {"type": kind or "None"}
    if user:
        body["userAssignedIdentities"] = user
    return body


PublicIp = Annotated[
    str | None, typer.Option("--public-ip", help="The public IP address Key Vault and Storage firewalls see.")
]
Subnet = Annotated[
    str | None,
    typer.Option("--subnet", help="The subnet resource id the workload runs in (for virtual network rules)."),
]


def _with_network(
    body: dict[str, Any], public_ip: str | None, subnet: str | None, *, site: bool
) -> dict[str, Any]:
    from keyless.cli.workloads import network_properties  # workloads imports this module

    body["properties"].update(network_properties(public_ip, subnet, site=site))
    return body


def _create_workload(
    data_dir: Path | None,
    group: str,
    name: str,
    kind: _Kind,
    body: dict[str, Any],
    assign_identity: str | None,
    output: Output,
    query: Query,
) -> None:
    with ArmClient(settings_for(data_dir)) as client:
        identity = _identity_body(client, group, assign_identity)
        if identity is not None:
            body["identity"] = identity
        created = client.call("PUT", kind.path(client, group, name), kind.api, body)
    _emit_resource(created, output, query)


@vm_app.command("create")
def vm_create(
    group: Group,
    name: Name,
    location: Location = "westeurope",
    assign_identity: AssignIdentity = None,
    public_ip: PublicIp = None,
    subnet: Subnet = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a VM (a place `keyless run --as` can run a process as)."""
    body = {"location": location, "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"}}}
    _with_network(body, public_ip, subnet, site=False)
    _create_workload(data_dir, group, name, VM, body, assign_identity, output, query)


@functionapp_app.command("create")
def functionapp_create(
    group: Group,
    name: Name,
    location: Location = "westeurope",
    assign_identity: AssignIdentity = None,
    public_ip: PublicIp = None,
    subnet: Subnet = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a Function app (a place `keyless run --as` can run a process as)."""
    body: dict[str, Any] = {"location": location, "kind": "functionapp", "properties": {}}
    _with_network(body, public_ip, subnet, site=True)
    _create_workload(data_dir, group, name, FUNCTION_APP, body, assign_identity, output, query)
