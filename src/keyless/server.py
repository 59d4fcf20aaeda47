"""``keyless up``: start the platform and the edge, publish the runtime file, stop cleanly."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
from contextlib import suppress

from rich.console import Console
from rich.table import Table

from keyless.cli.runtime import RuntimeInfo
from keyless.config import Settings
from keyless.edge.server import EdgeServer
from keyless.platform import Platform
from keyless.sealing import write_private_file


def _loop_factory() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(settings: Settings, console: Console) -> int:
    if not _is_loopback(settings.host):
        # Keyless trusts the machine it runs on (host tokens, the admin file): never the network.
        console.print(
            f"[red]Keyless binds to loopback only; '{settings.host}' is not a loopback address.[/red]"
        )
        return 2
    platform = Platform(settings)
    platform.start()
    edge = EdgeServer(
        platform.router,
        platform.ca.server_context(),
        settings.host,
        settings.https_port,
        settings.http_port,
        platform.router.serves,
    )
    try:
        await edge.start()
    except OSError as exc:
        console.print(f"[red]Cannot listen on {settings.host}: {exc.strerror or exc}[/red]")
        await platform.close()
        return 1
    info = RuntimeInfo(
        pid=os.getpid(),
        host=settings.host,
        https_port=edge.https_port,
        http_port=edge.http_port,
        tenant_id=platform.tenant_id,
        subscription_id=platform.subscription_id,
        database="sqlite" if platform.db.is_sqlite else "postgresql",
    )
    write_private_file(settings.runtime_file, info.to_json())
    _print_banner(console, settings, info)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        console.print("Stopping Keyless...")
        await edge.stop()
        await platform.close()
        current = RuntimeInfo.read(settings)
        if current is not None and current.pid == os.getpid():
            with suppress(FileNotFoundError):
                settings.runtime_file.unlink()
        console.print("Keyless stopped.")
    return 0


def _print_banner(console: Console, settings: Settings, info: RuntimeInfo) -> None:
    table = Table(title="Keyless is up", show_header=True, header_style="bold")
    table.add_column("what")
    # Fold, never truncate: the paths must be whole in a log too (not a terminal: 80 columns).
    table.add_column("where", overflow="fold")
    table.add_row(
        "Resource manager", f"https://management.azure.com (proxy) · {info.https_url}/subscriptions"
    )
    table.add_row(
        "Authority", f"https://login.microsoftonline.com (proxy) · {info.https_url}/{info.tenant_id}"
    )
    table.add_row("HTTPS listener", info.https_url)
    table.add_row("Forward proxy / identity endpoints", info.proxy_url)
    table.add_row("Tenant / subscription", f"{info.tenant_id} / {info.subscription_id}")
    table.add_row("Data directory", str(settings.data_dir))
    table.add_row("Database", info.database)
    table.add_row("CA certificate", str(settings.ca_cert_file))
    table.add_row("CA bundle (system + local CA)", str(settings.ca_bundle_file))
    table.add_row("Admin credentials", str(settings.admin_credentials_file))
    console.print(table)
    console.print(
        f"Run programs against it: [bold]keyless run --data-dir {settings.data_dir} -- python app.py[/bold]"
    )
    console.print("Keyless is ready.", highlight=False)


def serve(settings: Settings, console: Console) -> int:
    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        return runner.run(_serve(settings, console))
