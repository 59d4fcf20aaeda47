"""``keyless``: start the server, check on it, and run programs against it."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import subprocess
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyless import __version__
from keyless.cli.keyvault import app as keyvault_app
from keyless.cli.output import print_table
from keyless.cli.rbac import access_app, ad_app, role_app
from keyless.cli.resources import expand_assign_identity, functionapp_app, group_app, identity_app, vm_app
from keyless.cli.runtime import (
    DataDir,
    RuntimeInfo,
    azure_cli_environment,
    client_environment,
    health,
    is_running,
    lock_holder_pid,
    read_admin,
    require_running,
    root_key_problem,
    settings_for,
)
from keyless.cli.storage import app as storage_app
from keyless.cli.workloads import WorkloadEnvironment, workload_environment
from keyless.config import LOG_LEVELS, Settings

app = typer.Typer(
    name="keyless",
    help="Keyless: Azure managed identities on your own machine, wire-compatible with Azure.",
    no_args_is_help=True,
    add_completion=False,
    # Help texts are shown as written: as Rich markup, "'[system]'" would print as "''".
    rich_markup_mode=None,
)
authority_app = typer.Typer(help="The token authority.", no_args_is_help=True)
app.add_typer(authority_app, name="authority")
app.add_typer(group_app, name="group")
app.add_typer(identity_app, name="identity")
app.add_typer(vm_app, name="vm")
app.add_typer(functionapp_app, name="functionapp")
app.add_typer(role_app, name="role")
app.add_typer(access_app, name="access")
app.add_typer(ad_app, name="ad")
app.add_typer(keyvault_app, name="keyvault")
app.add_typer(storage_app, name="storage")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        try:
            version = importlib.metadata.version("keyless")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree
            version = __version__
        print(f"keyless {version}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print Keyless's version and exit."
        ),
    ] = False,
) -> None:
    """Keyless: Azure managed identities on your own machine, wire-compatible with Azure."""


@app.command()
def up(
    data_dir: DataDir = None,
    https_port: Annotated[
        int | None, typer.Option(envvar="KEYLESS_HTTPS_PORT", help="HTTPS listener port (0: any free port).")
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(envvar="KEYLESS_HTTP_PORT", help="Proxy / identity-endpoint port (0: any free port)."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(envvar="KEYLESS_DATABASE_URL", help="SQLAlchemy URL (default: SQLite).")
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            envvar="KEYLESS_LOG_LEVEL",
            help="debug, info, warning (default) or error; at info and below every request is logged "
            "(method, host, path, status, caller, ms) to stderr.",
        ),
    ] = None,
) -> None:
    """Start Keyless in the foreground (Ctrl-C stops it)."""
    from keyless.server import serve

    log_level = log_level.strip().lower() if log_level is not None else None
    if log_level is not None and log_level not in LOG_LEVELS:
        err_console.print(
            f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}.", markup=False
        )
        raise typer.Exit(2)
    settings = settings_for(
        data_dir, https_port=https_port, http_port=http_port, database_url=database_url, log_level=log_level
    )
    raise typer.Exit(serve(settings, console))


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Say whether this data directory's server is up and what it serves (exit 0 only when ready)."""
    settings = settings_for(data_dir)
    where = escape(str(settings.data_dir))
    problem = root_key_problem(settings)
    if problem is not None:
        console.print(f"[red]not running[/red]: {escape(problem)}")
        raise typer.Exit(1)
    if not is_running(settings):
        start = escape(f"keyless up --data-dir {shlex.quote(str(settings.data_dir))}")
        console.print(
            f"[red]not running[/red]: no Keyless server for {where}. Start it with: [bold]{start}[/bold]"
        )
        raise typer.Exit(1)
    info = RuntimeInfo.read(settings)
    if info is None or health(settings, info) is None:
        console.print(
            f"[yellow]not ready[/yellow]: the Keyless server for {where} (pid {lock_holder_pid(settings)}) "
            "is starting or does not answer"
        )
        raise typer.Exit(1)
    table = Table(title=f"Keyless is up (pid {info.pid})", show_header=False)
    table.add_column()
    table.add_column()
    table.add_row("HTTPS (all emulated hosts)", info.https_url)
    table.add_row("Proxy / identity endpoints", info.proxy_url)
    table.add_row("Tenant", info.tenant_id)
    table.add_row("Subscription", info.subscription_id)
    table.add_row("Database", info.database)
    table.add_row("Data directory", escape(str(settings.data_dir)))
    print_table(table)


AsWorkload = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Run as this VM or Function app (name or resource id); with --federated, as this "
        "user-assigned identity through a federated credential.",
    ),
]
Federated = Annotated[
    bool, typer.Option("--federated", help="--as names a user-assigned identity; use workload federation.")
]
Credential = Annotated[
    str | None, typer.Option("--credential", help="With --federated: which federated credential to use.")
]
DirectImds = Annotated[
    bool,
    typer.Option(
        "--direct-imds", help="For a VM: also set AZURE_POD_IDENTITY_AUTHORITY_HOST (IMDS without the proxy)."
    ),
]


def _environment(
    settings: Settings, as_workload: str | None, federated: bool, credential: str | None, direct_imds: bool
) -> tuple[dict[str, str], tuple[str, ...], WorkloadEnvironment | None]:
    """(variables to set, variables to remove, the workload environment if any)."""
    info = require_running(settings)
    if as_workload is None:
        if federated:
            err_console.print("[red]--federated needs --as IDENTITY.[/red]")
            raise typer.Exit(2)
        variables = client_environment(settings, info, read_admin(settings))
        variables.update(azure_cli_environment(settings, "admin"))
        return variables, (), None
    workload = workload_environment(
        settings, info, as_workload, federated=federated, credential=credential, direct_imds=direct_imds
    )
    return workload.variables, workload.removed, workload


@app.command()
def env(
    data_dir: DataDir = None,
    as_workload: AsWorkload = None,
    federated: Federated = False,
    credential: Credential = None,
    direct_imds: DirectImds = False,
) -> None:
    """Print the variables a client needs, as shell ``export`` lines."""
    settings = settings_for(data_dir)
    variables, removed, _ = _environment(settings, as_workload, federated, credential, direct_imds)
    for key in removed:
        if key not in variables:
            print(f"unset {key}")
    for key, value in variables.items():
        print(f"export {key}={shlex.quote(value)}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    data_dir: DataDir = None,
    as_workload: AsWorkload = None,
    federated: Federated = False,
    credential: Credential = None,
    direct_imds: DirectImds = False,
) -> None:
    """Run a command with the client environment set (as the admin, or --as a workload)."""
    settings = settings_for(data_dir)
    variables, removed, workload = _environment(settings, as_workload, federated, credential, direct_imds)
    child_env = {k: v for k, v in os.environ.items() if k not in removed}
    child_env.update(variables)
    if workload is not None:
        workload.keep_fresh()
    try:
        completed = subprocess.run(command, env=child_env, check=False)
    except FileNotFoundError:
        err_console.print(f"[red]command not found:[/red] {command[0]}")
        raise typer.Exit(127) from None
    finally:
        if workload is not None:
            workload.stop()
    raise typer.Exit(completed.returncode)


@authority_app.command("rotate-keys")
def rotate_keys(
    data_dir: DataDir = None,
    database_url: Annotated[str | None, typer.Option(envvar="KEYLESS_DATABASE_URL")] = None,
) -> None:
    """Start signing with a new key; the old one stays published until its tokens expire."""
    from keyless.platform import InstanceError, rotate_signing_key
    from keyless.sealing import RootKeyError

    settings = settings_for(data_dir, database_url=database_url)
    try:
        kid = rotate_signing_key(settings)
    except (RootKeyError, InstanceError) as exc:
        err_console.print(f"[red]No key was rotated.[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(f"New signing key [bold]{kid}[/bold]; running servers sign with it within seconds.")
    if not is_running(settings):
        console.print(
            f"(No server is running for {escape(str(settings.data_dir))}; it will sign with it when started.)"
        )


def main() -> None:
    app(args=expand_assign_identity(sys.argv[1:]), prog_name="keyless")


if __name__ == "__main__":
    main()
