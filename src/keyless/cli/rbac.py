"""Access control from the command line, in the style of `az role` / `az ad`, over HTTPS as the admin.

- ``keyless role assignment create|list|delete`` and ``keyless role definition list``
- ``keyless access explain --principal P --action A --scope S [--data-action]``: allowed or denied,
  and why (Keyless's explain operation, see ``keyless.rbac.arm``)
- ``keyless ad sp create`` and ``keyless ad group create|show`` / ``keyless ad group member add|remove``:
  principals to grant roles to (Keyless's admin-only ``Keyless.Directory``, standing in for Entra)

Every command prints a table, or the service's JSON with ``--output json`` (``tsv`` and a JMESPath
``--query`` as in az: see ``keyless.cli.output``). ``access explain`` exits 0 when allowed, 1 when
denied and 2 on an error, as ``grep`` does, so a script can ask.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from keyless.cli.client import ArmClient, fail
from keyless.cli.output import Output, OutputFormat, Query, emit, print_table, uses_own_table
from keyless.cli.runtime import DataDir, settings_for

AUTHORIZATION_API = "2022-04-01"
DIRECTORY_API = "2024-01-01"
_PROVIDER = "/providers/Microsoft.Authorization"

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

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

Scope = Annotated[
    str | None,
    typer.Option(
        "--scope", help="A subscription, resource group or resource id (default: the subscription)."
    ),
]


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
        table.add_column(column)
    for a in assignments:
        props = a["properties"]
        guid = str(props["roleDefinitionId"]).rsplit("/", 1)[-1].lower()
        table.add_row(
            *(
                Text(str(v))
                for v in (
                    a["name"],
                    names.get(guid, guid),
                    props["principalId"],
                    props.get("principalType") or "",
                    props["scope"],
                    "yes" if props.get("condition") else "",
                )
            )
        )
    print_table(table)


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
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Assign a role to a principal at a scope."""
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
        names = _role_names(client, where) if uses_own_table(output, query) else {}
    emit(created, output, query, lambda one: _assignment_table([one], names, "Role assignment"))


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
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """List role assignments at, above and below a scope."""
    terms = []
    if at_scope:
        terms.append("atScope()")
    if assignee:
        terms.append(f"assignedTo('{assignee}')" if include_groups else f"principalId eq '{assignee}'")
    params = {"$filter": " and ".join(terms)} if terms else None
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        found = client.list_all(f"{where}{_PROVIDER}/roleAssignments", AUTHORIZATION_API, params)
        names = _role_names(client, where) if uses_own_table(output, query) else {}
    emit(found, output, query, lambda items: _assignment_table(items, names, f"Role assignments for {where}"))


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
                fail(response)
            state = "Deleted" if response.status_code == 200 else "Already gone:"
            console.print(f"{state} {target}", markup=False, highlight=False)


# --------------------------------------------------------------------------------------------------
# keyless role definition list
# --------------------------------------------------------------------------------------------------


@role_definition_app.command("list")
def definition_list(
    name: Annotated[str | None, typer.Option("--name", help="Only the role with this name.")] = None,
    custom_role_only: Annotated[bool, typer.Option("--custom-role-only")] = False,
    scope: Scope = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """List the roles assignable at a scope."""
    terms = []
    if name:
        terms.append(f"roleName eq '{name}'")
    if custom_role_only:
        terms.append("type eq 'CustomRole'")
    params = {"$filter": " and ".join(terms)} if terms else None
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        found = client.list_all(f"{where}{_PROVIDER}/roleDefinitions", AUTHORIZATION_API, params)
    emit(found, output, query, lambda roles: _definition_table(roles, f"Roles assignable at {where}"))


def _definition_table(found: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("Role", "Name (GUID)", "Type", "Actions", "Data actions"):
        table.add_column(column)
    for r in found:
        props = r["properties"]
        actions = [a for p in props["permissions"] for a in p.get("actions", [])]
        data_actions = [a for p in props["permissions"] for a in p.get("dataActions", [])]
        table.add_row(
            Text(props["roleName"]), r["name"], Text(props["type"]), str(len(actions)), str(len(data_actions))
        )
    print_table(table)


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
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Allowed or denied, and why: matching assignments, inheritance, near misses, deny assignments."""
    with ArmClient(settings_for(data_dir)) as client:
        where = _scope(client, scope)
        response = client.request(
            "POST",
            f"{where}{_PROVIDER}/explain",
            AUTHORIZATION_API,
            {"principalId": principal, "action": action, "isDataAction": data_action},
        )
    if response.status_code >= 400:
        fail(response, exit_code=2)  # 1 means "denied"
    result = response.json()
    emit(result, output, query, render_explanation)
    if not result.get("allowed"):
        raise typer.Exit(1)


def render_explanation(result: dict[str, Any]) -> None:
    """The explain answer for a person: the verdict, then each relevant assignment and why."""
    verdict = "[bold green]ALLOWED[/bold green]" if result["allowed"] else "[bold red]DENIED[/bold red]"
    plane = "data action" if result["isDataAction"] else "action"
    console.print(
        f"{verdict} ({escape(str(result['decision']))}): {plane} [bold]{escape(str(result['action']))}[/bold] "
        f"at {escape(str(result['scope']))}",
        highlight=False,
    )
    groups = ", ".join(result.get("groupIds") or []) or "none"
    console.print(
        f"principal {result['principalId']} ({result['principalType']}); groups: {groups}",
        markup=False,
        highlight=False,
    )
    table = Table(title="Why")
    for column in ("Effect", "Role / deny assignment", "Assignment", "Assigned at", "Inherited", "Detail"):
        table.add_column(column)

    def row(effect: str, *cells: Any) -> None:
        table.add_row(Text.from_markup(effect), *(Text(str(c)) for c in cells))

    for d in result["denyAssignments"]:
        row(
            "[red]denies[/red]",
            "deny assignment",
            d["denyAssignmentName"],
            d["scope"],
            "",
            f"matches '{d['matchedPattern']}' ({d['reason']})",
        )
    for m in result["matchedAssignments"]:
        row(
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
        row(
            "[yellow]does not grant[/yellow]",
            n["roleName"] or n["roleDefinitionName"],
            n["roleAssignmentName"],
            n["scope"],
            inherited,
            n["reason"],
        )
    if table.row_count:
        print_table(table)
    else:
        console.print("No role assignment or deny assignment of this principal is relevant here.")


# --------------------------------------------------------------------------------------------------
# keyless ad sp|group ...
# --------------------------------------------------------------------------------------------------


def _principal_table(title: str) -> Any:
    def draw(found: dict[str, Any]) -> None:
        table = Table(title=title, show_header=False)
        table.add_column()
        table.add_column()
        for key, value in found.items():
            table.add_row(
                Text(key), Text(", ".join(map(str, value)) if isinstance(value, list) else str(value))
            )
        print_table(table)

    return draw


@ad_sp_app.command("create")
def sp_create(
    display_name: Annotated[str, typer.Option("--display-name", "-n", help="Display name.")],
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a service principal with a client secret (shown once)."""
    with ArmClient(settings_for(data_dir)) as client:
        created = client.call(
            "POST",
            "/providers/Keyless.Directory/servicePrincipals",
            DIRECTORY_API,
            {"displayName": display_name},
        )
    emit(
        created,
        output,
        query,
        _principal_table("Service principal (keep the secret: it is shown once)"),
        default=OutputFormat.json,
    )


@ad_group_app.command("create")
def group_create(
    display_name: Annotated[str, typer.Option("--display-name", "-n", help="Display name.")],
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Create a security group."""
    with ArmClient(settings_for(data_dir)) as client:
        created = client.call(
            "POST", "/providers/Keyless.Directory/groups", DIRECTORY_API, {"displayName": display_name}
        )
    emit(created, output, query, _principal_table("Group"))


@ad_group_app.command("show")
def group_show(
    group: Annotated[str, typer.Option("--group", "-g", help="The group's object id.")],
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Show a group and its direct members."""
    with ArmClient(settings_for(data_dir)) as client:
        found = client.call("GET", f"/providers/Keyless.Directory/groups/{group}", DIRECTORY_API)
    emit(found, output, query, _principal_table("Group"))


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
