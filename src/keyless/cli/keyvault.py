"""``keyless keyvault``: vaults (create, show, list, delete, list-deleted, purge, recover) in the
style of ``az keyvault``, with az's ``--output`` and ``--query``.

Vaults print as ``az keyvault show`` prints them: the resource as the resource manager answers it
(``properties`` kept nested, as azure-mgmt-keyvault's ``Vault`` model serialises) plus
``resourceGroup``; so ``--query properties.vaultUri`` works as it does with az.

Key and secret subcommands are added to the same ``app`` elsewhere; the vault commands are
plain functions here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyless.cli.client import ArmClient, fail
from keyless.cli.output import Output, Query, emit, print_table, resource_group_of
from keyless.cli.runtime import DataDir, settings_for

VAULT_TYPE = "Microsoft.KeyVault/vaults"
# What azure-cli's own azure-mgmt-keyvault (14.0.1) sends.
KEYVAULT_API = "2026-02-01"

app = typer.Typer(help="Key vaults (Microsoft.KeyVault/vaults).", no_args_is_help=True)
console = Console(soft_wrap=True)

Group = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group name.")]
OptionalGroup = Annotated[
    str | None,
    typer.Option("--resource-group", "-g", help="Only this resource group's (default: the subscription's)."),
]
Name = Annotated[str, typer.Option("--name", "-n", help="Vault name (3-24 characters, global).")]


def _vault_path(client: ArmClient, group: str, name: str) -> str:
    return f"/subscriptions/{client.subscription_id}/resourceGroups/{group}/providers/{VAULT_TYPE}/{name}"


def _shaped(vault: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(vault)
    group = resource_group_of(str(vault.get("id") or ""))
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
            table.add_row(
                *(
                    Text(str(_lookup(item, key) if _lookup(item, key) is not None else ""))
                    for _, key in columns
                )
            )
        print_table(table)

    return draw


_VAULT_COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("VaultUri", "properties.vaultUri"),
    ("RBAC", "properties.enableRbacAuthorization"),
)
_DELETED_COLUMNS = (
    ("Name", "name"),
    ("Location", "properties.location"),
    ("DeletionDate", "properties.deletionDate"),
    ("ScheduledPurgeDate", "properties.scheduledPurgeDate"),
    ("PurgeProtection", "properties.purgeProtectionEnabled"),
)


def _self_policy(client: ArmClient) -> list[dict[str, Any]]:
    """All permissions for the admin (what az grants the signed-in identity without RBAC)."""
    return [
        {
            "tenantId": client.tenant_id,
            "objectId": _admin_object_id(client),
            "permissions": {"keys": ["all"], "secrets": ["all"], "certificates": ["all"], "storage": ["all"]},
        }
    ]


def _admin_object_id(client: ArmClient) -> str:
    from keyless.cli.runtime import read_admin

    admin = read_admin(client.settings)
    assert admin is not None  # ArmClient signed in with it
    return admin.object_id


@app.command("create")
def vault_create(
    group: Group,
    name: Name,
    location: Annotated[str, typer.Option("--location", "-l", help="Azure region.")] = "westeurope",
    sku: Annotated[str, typer.Option(help="standard or premium.")] = "standard",
    enable_rbac_authorization: Annotated[
        bool,
        typer.Option(
            "--enable-rbac-authorization/--no-rbac-authorization",
            help="Authorize data actions with Azure RBAC (the default, as in az); without it, with access "
            "policies (the admin gets all permissions unless --no-self-perms).",
        ),
    ] = True,
    no_self_perms: Annotated[
        bool, typer.Option("--no-self-perms", help="Without RBAC: add no access policy for the admin.")
    ] = False,
    enable_purge_protection: Annotated[
        bool,
        typer.Option(
            "--enable-purge-protection", help="Turn purge protection on (it can never be turned off)."
        ),
    ] = False,
    retention_days: Annotated[int, typer.Option(help="Soft-delete retention, 7 to 90 days.")] = 90,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key vault (an existing one is not changed: as az, this refuses)."""
    with ArmClient(settings_for(data_dir)) as client:
        path = _vault_path(client, group, name)
        if client.request("GET", path, KEYVAULT_API).status_code == 200:
            console.print(f"The specified vault: {name} already exists", style="red", markup=False)
            raise typer.Exit(1)
        properties: dict[str, Any] = {
            "tenantId": client.tenant_id,
            "sku": {"family": "A", "name": sku},
            "accessPolicies": [] if enable_rbac_authorization or no_self_perms else _self_policy(client),
            "enableRbacAuthorization": enable_rbac_authorization,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": retention_days,
        }
        if enable_purge_protection:
            properties["enablePurgeProtection"] = True
        created = client.call("PUT", path, KEYVAULT_API, {"location": location, "properties": properties})
    emit(_shaped(created), output, query, _table(_VAULT_COLUMNS))


@app.command("show")
def vault_show(
    group: Group, name: Name, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """Show a key vault."""
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", _vault_path(client, group, name), KEYVAULT_API)
    emit(_shaped(found), output, query, _table(_VAULT_COLUMNS))


@app.command("list")
def vault_list(
    group: OptionalGroup = None, output: Output = None, query: Query = None, data_dir: DataDir = None
) -> None:
    """List key vaults."""
    with ArmClient(settings_for(data_dir)) as client:
        scope = f"/subscriptions/{client.subscription_id}"
        if group:
            scope += f"/resourceGroups/{group}"
        found = [_shaped(v) for v in client.list_all(f"{scope}/providers/{VAULT_TYPE}", KEYVAULT_API)]
    title = f"Key vaults in {group}" if group else "Key vaults in the subscription"
    emit(found, output, query, _table(_VAULT_COLUMNS, title))


@app.command("delete")
def vault_delete(group: Group, name: Name, data_dir: DataDir = None) -> None:
    """Delete a key vault: it is soft-deleted (recoverable until its retention ends or it is purged)."""
    with ArmClient(settings_for(data_dir)) as client:
        response = client.request("DELETE", _vault_path(client, group, name), KEYVAULT_API)
    if response.status_code >= 400:
        fail(response)
    if response.status_code == 204:
        console.print(f"No key vault {name} in {group}; nothing was deleted.", highlight=False, markup=False)
    else:
        console.print(
            f"Deleted key vault {name} (soft-deleted: `keyless keyvault recover` or `purge`).",
            highlight=False,
            markup=False,
        )


@app.command("list-deleted")
def vault_list_deleted(output: Output = None, query: Query = None, data_dir: DataDir = None) -> None:
    """List the subscription's soft-deleted key vaults."""
    with ArmClient(settings_for(data_dir)) as client:
        path = f"/subscriptions/{client.subscription_id}/providers/Microsoft.KeyVault/deletedVaults"
        found = client.list_all(path, KEYVAULT_API)
    emit(found, output, query, _table(_DELETED_COLUMNS, "Deleted key vaults"))


def _deleted(client: ArmClient, name: str, location: str | None) -> dict[str, Any]:
    path = f"/subscriptions/{client.subscription_id}/providers/Microsoft.KeyVault/deletedVaults"
    for item in client.list_all(path, KEYVAULT_API):
        if item["name"].lower() == name.lower() and (
            location is None or item["properties"]["location"] == location.replace(" ", "").lower()
        ):
            found: dict[str, Any] = item
            return found
    console.print(f"No deleted key vault named '{name}'.", style="red", markup=False)
    raise typer.Exit(1)


@app.command("purge")
def vault_purge(
    name: Name,
    location: Annotated[str | None, typer.Option("--location", "-l", help="Where it was.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Purge a soft-deleted key vault: its keys and secrets are gone for good."""
    with ArmClient(settings_for(data_dir)) as client:
        deleted = _deleted(client, name, location)
        client.call("POST", f"{deleted['id']}/purge", KEYVAULT_API)
    console.print(f"Purged key vault {deleted['name']}.", highlight=False, markup=False)


@app.command("recover")
def vault_recover(
    name: Name,
    location: Annotated[str | None, typer.Option("--location", "-l", help="Where it was.")] = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Recover a soft-deleted key vault into the resource group it was deleted from."""
    with ArmClient(settings_for(data_dir)) as client:
        deleted = _deleted(client, name, location)
        props = deleted["properties"]
        body = {
            "location": props["location"],
            "properties": {
                "tenantId": client.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "createMode": "recover",
            },
        }
        recovered = client.call("PUT", props["vaultId"], KEYVAULT_API, body)
    emit(_shaped(recovered), output, query, _table(_VAULT_COLUMNS))


def _find_vault(client: ArmClient, name: str, group: str | None) -> str:
    """The id of vault ``name`` (in ``group``, or anywhere in the subscription, as az finds it)."""
    if group:
        return _vault_path(client, group, name)
    for vault in client.list_all(
        f"/subscriptions/{client.subscription_id}/providers/{VAULT_TYPE}", KEYVAULT_API
    ):
        if str(vault.get("name", "")).lower() == name.lower():
            return str(vault["id"])
    Console(stderr=True, soft_wrap=True).print(
        f"(ResourceNotFound) The Vault '{name}' not found within subscription.", style="red", markup=False
    )
    raise typer.Exit(1)


def _permissions(text: str | None) -> list[str]:
    return [p for p in (text or "").replace(",", " ").split() if p]


@app.command("set-policy")
def vault_set_policy(
    name: Name,
    object_id: Annotated[str, typer.Option("--object-id", help="Object id of the principal to grant.")],
    key_permissions: Annotated[
        str | None,
        typer.Option(help='Key permissions, e.g. "get wrapKey unwrapKey" (space or comma separated).'),
    ] = None,
    secret_permissions: Annotated[
        str | None, typer.Option(help='Secret permissions, e.g. "get list".')
    ] = None,
    group: OptionalGroup = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Grant a principal key and secret permissions in an access-policy vault (as ``az keyvault
    set-policy``; the permissions are added to any it already has)."""
    with ArmClient(settings_for(data_dir)) as client:
        vault_id = _find_vault(client, name, group)
        entry = {
            "tenantId": client.tenant_id,
            "objectId": object_id,
            "permissions": {
                "keys": _permissions(key_permissions),
                "secrets": _permissions(secret_permissions),
            },
        }
        client.call(
            "PUT", f"{vault_id}/accessPolicies/add", KEYVAULT_API, {"properties": {"accessPolicies": [entry]}}
        )
        updated = client.call("GET", vault_id, KEYVAULT_API)
    emit(_shaped(updated), output, query, _table(_VAULT_COLUMNS))


# Keys and secrets (the data plane): cli/keyvault_data.py.
from keyless.cli.keyvault_data import key_app, secret_app  # noqa: E402

app.add_typer(key_app, name="key")
app.add_typer(secret_app, name="secret")
