"""Access control from the command line, in the style of `az role` / `az ad`, over HTTPS as the admin.

- ``keyless role assignment create|list|delete`` and ``keyless role definition list``
- ``keyless access explain --principal P --action A --scope S [--data-action]``: allowed or denied,
  and why (Keyless's explain operation, see ``keyless.rbac.arm``)
- ``keyless ad sp create`` and ``keyless ad group create|show`` / ``keyless ad group member add|remove``:
  principals to grant roles to (Keyless's admin-only ``Keyless.Directory``, standing in for Entra)

Every command prints a Rich table, or the service's JSON with ``--output json``.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from keyless.cli.client import ArmClient
from keyless.cli.runtime import DataDir, settings_for

AUTHORIZATION_API = "2022-04-01"
DIRECTORY_API = "2024-01-01"
_PROVIDER = "/providers/Microsoft.Authorization"

console = Console()
err_console = Console(stderr=True)

role_app = typer.Typer(help="Role assignments and role definitions (Azure RBAC).", no_args_is_help=True)
role_assignment_app = typer.Typer(help="Who has which role where.", no_args_is_help=True)
role_definition_app = typer.Typer(help="Built-in and custom roles.", no_args_is_help=True)
role_app.add_typer(role_assignment_app, name="assignment")
role_app.add_typer(role_definition_app, name="definition")
access_app = typer.Typer(help="Why a principal may or may not do something.", no_args_is_help=True)
ad_app = typer.Typer(help="The directory: service principals and groups (admin only).", no_args_is_help=True)
ad_sp_app = typer.Typer(help="Service principals (with a client secret).", no_args_is_help=True)
ad_group_app = typer.Typer(
    help="Security groups (role assignments to a group grant its members).", no_args_is_help=True
)
ad_member_app = typer.Typer(help="Group members.", no_args_is_help=True)
ad_app.add_typer(ad_sp_app, name="sp")
ad_app.add_typer(ad_group_app, name="group")
ad_group_app.add_typer(ad_member_app, name="member")

Output = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
Scope = Annotated[
    str | None,
    typer.Option(
        "--scope", help="A subscription, resource group or resource id (default: the subscription)."
    ),
]


def _check_output(output: str) -> None:
    if output not in ("table", "json"):
        err_console.print(f"[red]--output must be 'table' or 'json', not '{output}'.[/red]")
        raise typer.Exit(2)


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _scope(client: ArmClient, scope: str | None) -> str:
    text = (scope or f"/subscriptions/{client.subscription_id}").strip()
    return "/" + text.strip("/")


def _role_definition_id(client: ArmClient, scope: str, role: str) -> str:
    """A role given as a GUID, a definition id or a display name -> its definition id."""
    text = role.strip()
    try:
        return f"/providers/Microsoft.Authorization/roleDefinitions/{uuid.UUID(text)}"
    except ValueError:
        pass
    if "/roledefinitions/" in text.lower():
        return text
    found = client.list_all(
        f"{scope}{_PROVIDER}/roleDefinitions", AUTHORIZATION_API, {"$filter": f"roleName eq '{text}'"}
    )
    if not found:
        err_console.print(f"[red]No role named '{text}' is assignable at {scope}.[/red]")
        raise typer.Exit(1)
    return str(found[0]["id"])


def _role_names(client: ArmClient, scope: str) -> dict[str, str]:
    roles = client.list_all(f"{scope}{_PROVIDER}/roleDefinitions", AUTHORIZATION_API)
    return {str(r["name"]).lower(): str(r["properties"]["roleName"]) for r in roles}


def _assignment_table(assignments: list[dict[str, Any]], names: dict[str, str], title: str) -> None:
    table = Table(title=title)
    for column in ("Name", "Role", "Principal", "Type", "Scope", "Condition"):
        table.add_column(column, overflow="fold")
    for a in assignments:
        props = a["properties"]
        guid = str(props["roleDefinitionId"]).rsplit("/", 1)[-1].lower()
        table.add_row(
            a["name"],
            names.get(guid, guid),
            props["principalId"],
            props.get("principalType") or "",
            props["scope"],
            "yes" if props.get("condition") else "",
        )
    console.print(table)


# --------------------------------------------------------------------------------------------------
# keyless role assignment ...
# --------------------------------------------------------------------------------------------------


@role_assignment_app.command("create")
def assignment_create(
    assignee: Annotated[str, typer.Option("--assignee", help="Object id of the principal.")],
    role: Annotated[str, typer.Option("--role", help="Role name (e.g. Reader), GUID or definition id.")],
    scope: Scope = None,
    assignee_principal_type: Annotated[
        str | None, typer.Option("--assignee-principal-type", help="User, Group or ServicePrincipal.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The assignment's GUID (default: new).")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    condition: Annotated[str | None, typer.Option("--condition", help="ABAC condition (stored).")] = None,
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """Assign a role to a principal at a scope."""
    _check_output(output)
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        properties: dict[str, Any] = {
            "roleDefinitionId": _role_definition_id(client, where, role),
            "principalId": assignee,
        }
        if assignee_principal_type:
            properties["principalType"] = assignee_principal_type
        if description is not None:
            properties["description"] = description
        if condition is not None:
            properties["condition"] = condition
            properties["conditionVersion"] = "2.0"
        path = f"{where}{_PROVIDER}/roleAssignments/{name or uuid.uuid4()}"
        created = client.call("PUT", path, AUTHORIZATION_API, {"properties": properties})
        if output == "json":
            _json(created)
            return
        _assignment_table([created], _role_names(client, where), "Role assignment")


@role_assignment_app.command("list")
def assignment_list(
    scope: Scope = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Only this principal's.")] = None,
    include_groups: Annotated[
        bool, typer.Option("--include-groups", help="With --assignee: also its groups' assignments.")
    ] = False,
    at_scope: Annotated[
        bool, typer.Option("--at-scope", help="Only assignments at or above the scope (atScope()).")
    ] = False,
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """List role assignments at, above and below a scope."""
    _check_output(output)
    terms = []
    if at_scope:
        terms.append("atScope()")
    if assignee:
        terms.append(f"assignedTo('{assignee}')" if include_groups else f"principalId eq '{assignee}'")
    params = {"$filter": " and ".join(terms)} if terms else None
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        found = client.list_all(f"{where}{_PROVIDER}/roleAssignments", AUTHORIZATION_API, params)
        if output == "json":
            _json(found)
            return
        _assignment_table(found, _role_names(client, where), f"Role assignments for {where}")


@role_assignment_app.command("delete")
def assignment_delete(
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="Full role assignment id(s) to delete.")
    ] = None,
    assignee: Annotated[str | None, typer.Option("--assignee")] = None,
    role: Annotated[str | None, typer.Option("--role")] = None,
    scope: Scope = None,
    data_dir: DataDir = None,
) -> None:
    """Delete role assignments, by id or by assignee (+ role) at a scope."""
    with ArmClient(settings_for(data_dir)) as client:
        targets = list(ids or [])
        if not targets:
            if not assignee:
                err_console.print("[red]Give --ids, or --assignee (with --role and --scope).[/red]")
                raise typer.Exit(2)
            where = _scope(client, scope)
            found = client.list_all(
                f"{where}{_PROVIDER}/roleAssignments",
                AUTHORIZATION_API,
                {"$filter": f"atScope() and principalId eq '{assignee}'"},
            )
            wanted = _role_definition_id(client, where, role).rsplit("/", 1)[-1].lower() if role else None
            targets = [
                a["id"]
                for a in found
                if a["properties"]["scope"].lower() == where.lower()
                and (wanted is None or a["properties"]["roleDefinitionId"].lower().endswith(wanted))
            ]
            if not targets:
                err_console.print(f"[red]No matching role assignment at {where}.[/red]")
                raise typer.Exit(1)
        for target in targets:
            response = client.request("DELETE", "/" + target.strip("/"), AUTHORIZATION_API)
            if response.status_code >= 400:
                from keyless.cli.client import fail

                fail(response)
            state = "Deleted" if response.status_code == 200 else "Already gone:"
            console.print(f"{state} {target}")


# --------------------------------------------------------------------------------------------------
# keyless role definition list
# --------------------------------------------------------------------------------------------------


@role_definition_app.command("list")
def definition_list(
    name: Annotated[str | None, typer.Option("--name", help="Only the role with this name.")] = None,
    custom_role_only: Annotated[bool, typer.Option("--custom-role-only")] = False,
    scope: Scope = None,
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """List the roles assignable at a scope."""
    _check_output(output)
    terms = []
    if name:
        terms.append(f"roleName eq '{name}'")
    if custom_role_only:
        terms.append("type eq 'CustomRole'")
    params = {"$filter": " and ".join(terms)} if terms else None
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        found = client.list_all(f"{where}{_PROVIDER}/roleDefinitions", AUTHORIZATION_API, params)
    if output == "json":
        _json(found)
        return
    table = Table(title=f"Roles assignable at {where}")
    for column in ("Role", "Name (GUID)", "Type", "Actions", "Data actions"):
        table.add_column(column, overflow="fold")
    for r in found:
        props = r["properties"]
        actions = [a for p in props["permissions"] for a in p.get("actions", [])]
        data_actions = [a for p in props["permissions"] for a in p.get("dataActions", [])]
        table.add_row(props["roleName"], r["name"], props["type"], str(len(actions)), str(len(data_actions)))
    console.print(table)


# --------------------------------------------------------------------------------------------------
# keyless access explain
# --------------------------------------------------------------------------------------------------


@access_app.command("explain")
def explain(
    principal: Annotated[str, typer.Option("--principal", help="Object id of the principal.")],
    action: Annotated[str, typer.Option("--action", help="e.g. Microsoft.Media/mediaservices/write")],
    scope: Scope = None,
    data_action: Annotated[
        bool, typer.Option("--data-action", help="Evaluate a data action (DataActions) instead.")
    ] = False,
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """Allowed or denied, and why: matching assignments, inheritance, near misses, deny assignments."""
    _check_output(output)
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        result = client.call(
            "POST",
            f"{where}{_PROVIDER}/explain",
            AUTHORIZATION_API,
            {"principalId": principal, "action": action, "isDataAction": data_action},
        )
    if output == "json":
        _json(result)
        return
    render_explanation(result)


def render_explanation(result: dict[str, Any]) -> None:
    verdict = "[bold green]ALLOWED[/bold green]" if result["allowed"] else "[bold red]DENIED[/bold red]"
    plane = "data action" if result["isDataAction"] else "action"
    console.print(
        f"{verdict} ({result['decision']}): {plane} [bold]{result['action']}[/bold] at {result['scope']}"
    )
    groups = ", ".join(result.get("groupIds") or []) or "none"
    console.print(f"principal {result['principalId']} ({result['principalType']}); groups: {groups}")
    table = Table(title="Why")
    for column in ("Effect", "Role / deny assignment", "Assignment", "Assigned at", "Inherited", "Detail"):
        table.add_column(column, overflow="fold")
    for d in result["denyAssignments"]:
        table.add_row(
            "[red]denies[/red]",
            "deny assignment",
            d["denyAssignmentName"],
            d["scope"],
            "",
            f"matches '{d['matchedPattern']}' ({d['reason']})",
        )
    for m in result["matchedAssignments"]:
        table.add_row(
            "[green]grants[/green]",
            m["roleName"],
            m["roleAssignmentName"],
            m["scope"],
            "yes" if m["inheritedFrom"] else "no (at this scope)",
            f"via '{m['matchedPattern']}'",
        )
    for n in result["nonMatchingAssignments"]:
        inherited = (
            "n/a" if not n["appliesAtScope"] else ("yes" if n["inheritedFrom"] else "no (at this scope)")
        )
        table.add_row(
            "[yellow]does not grant[/yellow]",
            n["roleName"] or n["roleDefinitionName"],
            n["roleAssignmentName"],
            n["scope"],
            inherited,
            n["reason"],
        )
    if table.row_count:
        console.print(table)
    else:
        console.print("No role assignment or deny assignment of this principal is relevant here.")


# --------------------------------------------------------------------------------------------------
# keyless ad sp|group ...
# --------------------------------------------------------------------------------------------------


def _show_principal(found: dict[str, Any], output: str, title: str) -> None:
    if output == "json":
        _json(found)
        return
    table = Table(title=title, show_header=False)
    for key, value in found.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


@ad_sp_app.command("create")
def sp_create(
    display_name: Annotated[str, typer.Option("--display-name", "-n", help="Display name.")],
    output: Output = "json",
    data_dir: DataDir = None,
) -> None:
    """Create a service principal with a client secret (shown once)."""
    _check_output(output)
    with ArmClient(settings_for(data_dir)) as client:
        created = client.call(
            "POST",
            "/providers/Keyless.Directory/servicePrincipals",
            DIRECTORY_API,
            {"displayName": display_name},
        )
    _show_principal(created, output, "Service principal (keep the secret: it is shown once)")


@ad_group_app.command("create")
def group_create(
    display_name: Annotated[str, typer.Option("--display-name", "-n", help="Display name.")],
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """Create a security group."""
    _check_output(output)
    with ArmClient(settings_for(data_dir)) as client:
        created = client.call(
            "POST", "/providers/Keyless.Directory/groups", DIRECTORY_API, {"displayName": display_name}
        )
    _show_principal(created, output, "Group")


@ad_group_app.command("show")
def group_show(
    group: Annotated[str, typer.Option("--group", "-g", help="The group's object id.")],
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """Show a group and its direct members."""
    _check_output(output)
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", f"/providers/Keyless.Directory/groups/{group}", DIRECTORY_API)
    _show_principal(found, output, "Group")


@ad_member_app.command("add")
def member_add(
    group: Annotated[str, typer.Option("--group", "-g", help="The group's object id.")],
    member_id: Annotated[str, typer.Option("--member-id", help="Object id of the principal or group.")],
    data_dir: DataDir = None,
) -> None:
    """Add a principal (or a nested group) to a group."""
    with ArmClient(settings_for(data_dir)) as client:
        client.call("PUT", f"/providers/Keyless.Directory/groups/{group}/members/{member_id}", DIRECTORY_API)
    console.print(f"{member_id} is a member of {group}.")


@ad_member_app.command("remove")
def member_remove(
    group: Annotated[str, typer.Option("--group", "-g", help="The group's object id.")],
    member_id: Annotated[str, typer.Option("--member-id", help="Object id of the principal or group.")],
    data_dir: DataDir = None,
) -> None:
    """Remove a member from a group."""
    with ArmClient(settings_for(data_dir)) as client:
        client.call(
            "DELETE", f"/providers/Keyless.Directory/groups/{group}/members/{member_id}", DIRECTORY_API
        )
    console.print(f"{member_id} is not a member of {group}.")
