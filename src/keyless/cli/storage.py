"""``keyless storage account``: storage accounts in the style of ``az storage account`` (create,
show, list, update, delete, keys list/renew, network-rule add/list, show-connection-string), with
az's ``--output`` and ``--query``.

Accounts print as the resource manager answers them (``properties`` nested, as the SDK model
serialises) plus ``resourceGroup``, so ``--query properties.primaryEndpoints.blob`` works. Keys
print as ``az storage account keys list`` prints them: the list of ``{keyName, value, permissions,
creationTime}``. The connection string is the portal's form
``DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyless.cli.client import ArmClient, fail
from keyless.cli.output import Output, OutputFormat, Query, emit, print_table, resource_group_of
from keyless.cli.runtime import DataDir, settings_for

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
# What azure-mgmt-storage 25.3 sends.
STORAGE_API = "2026-09-01"
_BYPASS = ("None", "Logging", "Metrics", "AzureServices")

app = typer.Typer(help="Storage (Microsoft.Storage).", no_args_is_help=True)
account_app = typer.Typer(help="Storage accounts (Microsoft.Storage/storageAccounts).", no_args_is_help=True)
keys_app = typer.Typer(help="An account's shared keys.", no_args_is_help=True)
rule_app = typer.Typer(help="An account's network rules (its firewall).", no_args_is_help=True)
app.add_typer(account_app, name="account")
account_app.add_typer(keys_app, name="keys")
account_app.add_typer(rule_app, name="network-rule")
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

Group = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group name.")]
OptionalGroup = Annotated[
    str | None,
    typer.Option("--resource-group", "-g", help="Only this resource group's (default: the subscription's)."),
]
Name = Annotated[
    str,
    typer.Option(
        "--name", "-n", "--account-name", help="Account name (3-24 lower-case letters and digits, global)."
    ),
]
DefaultAction = Annotated[
    str | None, typer.Option("--default-action", help="Allow or Deny: what the firewall does by default.")
]
Bypass = Annotated[
    list[str] | None,
    typer.Option(
        "--bypass",
        help="Traffic the firewall lets through: None, or any of Logging, Metrics, AzureServices "
        "(repeat the option, or separate with commas).",
    ),
]
SharedKey = Annotated[
    str | None,
    typer.Option(
        "--allow-shared-key-access", help="true or false: whether shared keys and key-signed SAS work."
    ),
]
PublicAccess = Annotated[
    str | None,
    typer.Option("--public-network-access", help="Enabled, Disabled or SecuredByPerimeter."),
]

_COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("Kind", "kind"),
    ("Sku", "sku.name"),
    ("DefaultAction", "properties.networkAcls.defaultAction"),
    ("BlobEndpoint", "properties.primaryEndpoints.blob"),
)
_KEY_COLUMNS = (("KeyName", "keyName"), ("Permissions", "permissions"), ("Value", "value"))


def _path(client: ArmClient, group: str, name: str) -> str:
    return f"/subscriptions/{client.subscription_id}/resourceGroups/{group}/providers/{ACCOUNT_TYPE}/{name}"


def _shaped(account: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(account)
    group = resource_group_of(str(account.get("id") or ""))
    if group is not None:
        shaped.setdefault("resourceGroup", group)
    return shaped


def _lookup(item: dict[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _table(columns: tuple[tuple[str, str], ...], title: str | None = None) -> Any:
    def draw(items: Any) -> None:
        rows = items if isinstance(items, list) else [items]
        table = Table(title=title)
        for header, _ in columns:
            table.add_column(header)
        for item in rows:
            cells = (_lookup(item, key) for _, key in columns)
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in cells))
        print_table(table)

    return draw


# --- option parsing: bad values exit 2 before anything is sent -----------------------------------


def _bool(value: str | None, option: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise typer.BadParameter(f"{option} must be true or false, not {value!r}.")


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is None:
        return None
    for choice in allowed:
        if value.lower() == choice.lower():
            return choice
    raise typer.BadParameter(f"{option} must be one of {', '.join(allowed)}, not {value!r}.")


def _bypass(values: list[str] | None) -> str | None:
    if not values:
        return None
    tokens = [t for v in values for t in v.replace(",", " ").split() if t]
    chosen = [_choice(t, _BYPASS, "--bypass") for t in tokens]
    return ", ".join(c for c in chosen if c)


def _network_changes(
    default_action: str | None, bypass: list[str] | None, current: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The ``networkAcls`` to send when --default-action or --bypass was given (else None)."""
    action = _choice(default_action, ("Allow", "Deny"), "--default-action")
    passes = _bypass(bypass)
    if action is None and passes is None:
        return None
    acls = dict(current or {})
    acls["defaultAction"] = action or acls.get("defaultAction") or "Allow"
    if passes is not None:
        acls["bypass"] = passes
    return acls


def _wait(client: ArmClient, response: Any) -> dict[str, Any]:
    """A PUT's result: the body, or for a 202 the result its Location gives (as the SDK polls)."""
    if response.status_code >= 400:
        fail(response)
    if response.status_code != 202:
        body: dict[str, Any] = response.json()
        return body
    location = urlsplit(response.headers["Location"])
    params = dict(parse_qsl(location.query))
    version = params.pop("api-version", STORAGE_API)
    for _ in range(120):
        polled = client.request("GET", location.path, version, params=params)
        if polled.status_code != 202:
            if polled.status_code >= 400:
                fail(polled)
            result: dict[str, Any] = polled.json()
            return result
    err_console.print("The account was not ready in time.", style="red", markup=False)
    raise typer.Exit(1)


# --- accounts ------------------------------------------------------------------------------------


@account_app.command("create")
def account_create(
    group: Group,
    name: Name,
    location: Annotated[str, typer.Option("--location", "-l", help="Azure region.")] = "westeurope",
    sku: Annotated[str, typer.Option(help="Standard_LRS, Standard_GRS, Premium_LRS, ...")] = "Standard_LRS",
    kind: Annotated[str, typer.Option(help="StorageV2, BlobStorage, BlockBlobStorage, ...")] = "StorageV2",
    default_action: DefaultAction = None,
    bypass: Bypass = None,
    allow_shared_key_access: SharedKey = None,
    public_network_access: PublicAccess = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a storage account (or update the one of that name in that group, as az does)."""
    properties: dict[str, Any] = {}
    acls = _network_changes(default_action, bypass, None)
    if acls is not None:
        properties["networkAcls"] = acls
    shared = _bool(allow_shared_key_access, "--allow-shared-key-access")
    if shared is not None:
        properties["allowSharedKeyAccess"] = shared
    if public_network_access is not None:
        properties["publicNetworkAccess"] = public_network_access
    body = {"location": location, "sku": {"name": sku}, "kind": kind, "properties": properties}
    with ArmClient(settings_for(data_dir)) as client:
        created = _wait(client, client.request("PUT", _path(client, group, name), STORAGE_API, body))
    emit(_shaped(created), output, query, _table(_COLUMNS))


@account_app.command("show")
def account_show(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """Show a storage account."""
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", _path(client, group, name), STORAGE_API)
    emit(_shaped(found), output, query, _table(_COLUMNS))


@account_app.command("list")
def account_list(
    group: OptionalGroup = None, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List storage accounts."""
    with ArmClient(settings_for(data_dir)) as client:
        scope = f"/subscriptions/{client.subscription_id}"
        if group:
            scope += f"/resourceGroups/{group}"
        found = [_shaped(a) for a in client.list_all(f"{scope}/providers/{ACCOUNT_TYPE}", STORAGE_API)]
    title = f"Storage accounts in {group}" if group else "Storage accounts in the subscription"
    emit(found, output, query, _table(_COLUMNS, title))


@account_app.command("update")
def account_update(
    group: Group,
    name: Name,
    default_action: DefaultAction = None,
    bypass: Bypass = None,
    allow_shared_key_access: SharedKey = None,
    public_network_access: PublicAccess = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Change an account's firewall default, bypass, public network access or shared-key access."""
    shared = _bool(allow_shared_key_access, "--allow-shared-key-access")
    _network_changes(default_action, bypass, None)  # checked before anything is sent
    with ArmClient(settings_for(data_dir)) as client:
        path = _path(client, group, name)
        current = client.call("GET", path, STORAGE_API)
        properties: dict[str, Any] = {}
        acls = _network_changes(default_action, bypass, (current.get("properties") or {}).get("networkAcls"))
        if acls is not None:
            properties["networkAcls"] = acls
        if shared is not None:
            properties["allowSharedKeyAccess"] = shared
        if public_network_access is not None:
            properties["publicNetworkAccess"] = public_network_access
        updated = client.call("PATCH", path, STORAGE_API, {"properties": properties})
    emit(_shaped(updated), output, query, _table(_COLUMNS))


@account_app.command("delete")
def account_delete(group: Group, name: Name, data_dir: DataDir = None) -> None:
    """Delete a storage account, with all its containers and blobs (the name is free at once)."""
    with ArmClient(settings_for(data_dir)) as client:
        response = client.request("DELETE", _path(client, group, name), STORAGE_API)
    if response.status_code >= 400:
        fail(response)
    if response.status_code == 204:
        console.print(
            f"No storage account {name} in {group}; nothing was deleted.", highlight=False, markup=False
        )
    else:
        console.print(f"Deleted storage account {name}.", highlight=False, markup=False)


@account_app.command("show-connection-string")
def account_connection_string(
    group: Group,
    name: Name,
    key: Annotated[str, typer.Option("--key", help="key1 or key2.")] = "key1",
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Print ``{"connectionString": ...}`` with the account's key (as az does)."""
    key_name = _choice(key, ("key1", "key2"), "--key")
    with ArmClient(settings_for(data_dir)) as client:
        keys = client.call("POST", f"{_path(client, group, name)}/listKeys", STORAGE_API)["keys"]
    value = next(k["value"] for k in keys if k["keyName"] == key_name)
    connection = f"DefaultEndpointsProtocol=https;AccountName={name};AccountKey={value};EndpointSuffix=core.windows.net"
    emit({"connectionString": connection}, output, query, default=OutputFormat.json)


# --- keys --------------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List the account's two keys (their values are secrets: anyone with one has full access)."""
    with ArmClient(settings_for(data_dir)) as client:
        keys = client.call("POST", f"{_path(client, group, name)}/listKeys", STORAGE_API)["keys"]
    emit(keys, output, query, _table(_KEY_COLUMNS))


@keys_app.command("renew")
def keys_renew(
    group: Group,
    name: Name,
    key: Annotated[str, typer.Option("--key", help="key1 or key2: the key to replace.")],
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Replace one key with a new one (the old value stops working at once)."""
    key_name = _choice(key, ("key1", "key2"), "--key")
    with ArmClient(settings_for(data_dir)) as client:
        keys = client.call(
            "POST", f"{_path(client, group, name)}/regenerateKey", STORAGE_API, {"keyName": key_name}
        )["keys"]
    emit(keys, output, query, _table(_KEY_COLUMNS))


# --- network rules -----------------------------------------------------------------------------


@rule_app.command("add")
def rule_add(
    group: Group,
    name: Name,
    ip_address: Annotated[
        str | None, typer.Option("--ip-address", help="A public IPv4 address or CIDR range to allow.")
    ] = None,
    subnet: Annotated[str | None, typer.Option("--subnet", help="A subnet's resource id to allow.")] = None,
    resource_id: Annotated[
        str | None, typer.Option("--resource-id", help="A resource instance to allow (with --tenant-id).")
    ] = None,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="The tenant of --resource-id.")] = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Allow an IP address or range, a subnet, or a resource instance through the account's firewall
    (rules count only while the default action is Deny)."""
    if not (ip_address or subnet or resource_id):
        raise typer.BadParameter("give --ip-address, --subnet or --resource-id.")
    if resource_id and not tenant_id:
        raise typer.BadParameter("--resource-id needs --tenant-id.")
    with ArmClient(settings_for(data_dir)) as client:
        path = _path(client, group, name)
        current = client.call("GET", path, STORAGE_API)
        acls = dict((current.get("properties") or {}).get("networkAcls") or {})
        if ip_address:
            rules = [r for r in acls.get("ipRules") or [] if r.get("value") != ip_address]
            acls["ipRules"] = [*rules, {"value": ip_address, "action": "Allow"}]
        if subnet:
            rules = [
                r for r in acls.get("virtualNetworkRules") or [] if str(r.get("id")).lower() != subnet.lower()
            ]
            acls["virtualNetworkRules"] = [*rules, {"id": subnet, "action": "Allow"}]
        if resource_id:
            rules = [
                r
                for r in acls.get("resourceAccessRules") or []
                if (r.get("resourceId"), r.get("tenantId")) != (resource_id, tenant_id)
            ]
            acls["resourceAccessRules"] = [*rules, {"tenantId": tenant_id, "resourceId": resource_id}]
        updated = client.call("PATCH", path, STORAGE_API, {"properties": {"networkAcls": acls}})
    emit(_shaped(updated), output, query, _table(_COLUMNS))


@rule_app.command("list")
def rule_list(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """The account's IP, subnet and resource instance rules (as ``az storage account network-rule list``)."""
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", _path(client, group, name), STORAGE_API)
    acls = (found.get("properties") or {}).get("networkAcls") or {}
    rules = {key: acls.get(key) or [] for key in ("ipRules", "virtualNetworkRules", "resourceAccessRules")}
    emit(rules, output, query, default=OutputFormat.json)
