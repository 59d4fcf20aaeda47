"""``keyless``: start the server, check on it, and run programs against it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keyless.cli.runtime import RuntimeInfo, client_environment, health, process_alive, read_admin
from keyless.config import Settings

app = typer.Typer(
    name="keyless",
    help="Keyless: Azure managed identities on your own machine, wire-compatible with Azure.",
    no_args_is_help=True,
    add_completion=False,
)
authority_app = typer.Typer(help="The token authority.", no_args_is_help=True)
app.add_typer(authority_app, name="authority")

console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="KEYLESS_DATA_DIR", help="Where this instance keeps its state."),
]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    return Settings.from_env(data_dir=data_dir.expanduser().resolve() if data_dir else None, **overrides)


def _running(settings: Settings) -> RuntimeInfo:
    info = RuntimeInfo.read(settings)
    if info is None or not process_alive(info.pid):
        err_console.print(
            f"[red]Keyless is not running for {settings.data_dir}.[/red] Start it with "
            f"[bold]keyless up --data-dir {settings.data_dir}[/bold]."
        )
        raise typer.Exit(1)
    return info


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
) -> None:
    """Start Keyless in the foreground (Ctrl-C stops it)."""
    from keyless.server import serve

    settings = _settings(data_dir, https_port=https_port, http_port=http_port, database_url=database_url)
    existing = RuntimeInfo.read(settings)
    if existing is not None and process_alive(existing.pid) and existing.pid != os.getpid():
        err_console.print(
            f"[red]Keyless is already running for {settings.data_dir} (pid {existing.pid}).[/red]"
        )
        raise typer.Exit(1)
    raise typer.Exit(serve(settings, console))


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Say whether this data directory's server is up and what it serves (exit 0 only when ready)."""
    settings = _settings(data_dir)
    info = RuntimeInfo.read(settings)
    if info is None or health(settings, info) is None:
        console.print(f"[red]not running[/red]: no ready Keyless server for {settings.data_dir}")
        raise typer.Exit(1)
    table = Table(title=f"Keyless is up (pid {info.pid})", show_header=False)
    table.add_row("HTTPS (all emulated hosts)", info.https_url)
    table.add_row("Proxy / identity endpoints", info.proxy_url)
    table.add_row("Tenant", info.tenant_id)
    table.add_row("Subscription", info.subscription_id)
    table.add_row("Database", info.database)
    table.add_row("Data directory", str(settings.data_dir))
    console.print(table)


@app.command()
def env(data_dir: DataDir = None) -> None:
    """Print the variables a client needs, as shell ``export`` lines."""
    settings = _settings(data_dir)
    info = _running(settings)
    for key, value in client_environment(settings, info, read_admin(settings)).items():
        print(f"export {key}={shlex.quote(value)}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    data_dir: DataDir = None,
) -> None:
    """Run a command with the client environment set; exit with its exit code."""
    settings = _settings(data_dir)
    info = _running(settings)
    child_env = dict(os.environ)
    child_env.update(client_environment(settings, info, read_admin(settings)))
    try:
        completed = subprocess.run(command, env=child_env, check=False)
    except FileNotFoundError:
        err_console.print(f"[red]command not found:[/red] {command[0]}")
        raise typer.Exit(127) from None
    raise typer.Exit(completed.returncode)


@authority_app.command("rotate-keys")
def rotate_keys(
    data_dir: DataDir = None,
    database_url: Annotated[str | None, typer.Option(envvar="KEYLESS_DATABASE_URL")] = None,
) -> None:
    """Start signing with a new key; the old one stays published until its tokens expire."""
    from keyless.platform import Platform

    settings = _settings(data_dir, database_url=database_url)
    platform = Platform(settings)
    platform.db.migrate()
    kid = platform.keyset.rotate()
    platform.db.dispose()
    console.print(f"New signing key [bold]{kid}[/bold]; running servers sign with it within seconds.")


def main() -> None:
    # Let a closed pipe (keyless env | head) end quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()


if __name__ == "__main__":
    main()
