"""``keyless up``: take the instance lock, start the platform and the edge, publish the runtime
file, stop cleanly."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import ipaddress
import os
import shlex
import signal
from contextlib import suppress

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyless.access_log import AccessLog, configure, logs_requests
from keyless.cli.output import print_table
from keyless.cli.runtime import InstanceLock, RuntimeInfo, lock_holder_pid
from keyless.config import Settings
from keyless.edge.server import EdgeServer
from keyless.platform import Platform
from keyless.providers.media.job_progress import show_progress
from keyless.sealing import RootKeyError, write_private_file

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters (glibc malloc.h)


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
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = InstanceLock(settings)
    if not lock.acquire():
        Console(stderr=True, soft_wrap=True).print(
            f"[red]Keyless is already running for {escape(str(settings.data_dir))} "
            f"(pid {lock_holder_pid(settings)}).[/red]"
        )
        return 1
    try:
        # Whatever server.json says now was left by a server that died: it holds no lock.
        with suppress(FileNotFoundError):
            settings.runtime_file.unlink()
        return await _serve_locked(settings, console)
    finally:
        lock.release()


async def _serve_locked(settings: Settings, console: Console) -> int:
    try:
        platform = Platform(settings, first_start=True)
    except RootKeyError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]Keyless cannot start:[/red] {escape(str(exc))}")
        return 1
    try:
        platform.start()
    except RootKeyError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]Keyless cannot start:[/red] {escape(str(exc))}")
        await platform.close()
        return 1
    edge = EdgeServer(
        # Wrapped only when requests are logged: a server that does not log pays nothing.
        AccessLog(platform.router) if logs_requests() else platform.router,
        platform.ca.server_context(),
        settings.host,
        settings.https_port,
        settings.http_port,
        platform.router.serves,
    )
    try:
        await edge.start()
    except OSError as exc:
        Console(stderr=True, soft_wrap=True).print(_listen_error(settings, edge, exc))
        await edge.stop()
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
    platform.start_background()
    write_private_file(settings.runtime_file, info.to_json())
    _print_banner(console, settings, info)
    # Running media jobs' progress, on the console (issue: "keyless up shows progress").
    progress = asyncio.create_task(
        show_progress(platform.db, lambda line: console.print(line, highlight=False, markup=False))
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        progress.cancel()
        console.print("Stopping Keyless...")
        await edge.stop()
        await platform.close()
        with suppress(FileNotFoundError):  # ours: we hold the lock
            settings.runtime_file.unlink()
        console.print("Keyless stopped.")
    return 0


def _listen_error(settings: Settings, edge: EdgeServer, exc: OSError) -> str:
    """Which listener could not bind, and how to choose another port. The HTTPS listener binds
    first, so it is the one that failed when its port is still unknown."""
    if edge.https_port == 0:
        port, option, env = settings.https_port, "--https-port", "KEYLESS_HTTPS_PORT"
    else:
        port, option, env = settings.http_port, "--http-port", "KEYLESS_HTTP_PORT"
    reason = escape(exc.strerror or str(exc))
    taken = (
        " (another Keyless instance or another program is listening there)"
        if exc.errno == errno.EADDRINUSE
        else ""
    )
    return (
        f"[red]Cannot listen on {escape(settings.host)}:{port}: {reason}[/red]{taken}.\n"
        f"Choose another port with [bold]{option} PORT[/bold] (or {env}), "
        f"or [bold]{option} 0[/bold] for any free port."
    )


def _print_banner(console: Console, settings: Settings, info: RuntimeInfo) -> None:
    table = Table(title="Keyless is up", show_header=True, header_style="bold")
    table.add_column("what")
    # Never folded or truncated: the paths and ids must be whole, in a terminal and in a log.
    table.add_column("where")
    table.add_row(
        "Resource manager", f"https://management.azure.com (proxy) · {info.https_url}/subscriptions"
    )
    table.add_row(
        "Authority", f"https://login.microsoftonline.com (proxy) · {info.https_url}/{info.tenant_id}"
    )
    table.add_row("HTTPS listener", info.https_url)
    table.add_row("Forward proxy / identity endpoints", info.proxy_url)
    table.add_row("Tenant / subscription", f"{info.tenant_id} / {info.subscription_id}")
    table.add_row("Data directory", escape(str(settings.data_dir)))
    table.add_row("Database", info.database)
    table.add_row("CA certificate", escape(str(settings.ca_cert_file)))
    table.add_row("CA bundle (system + local CA)", escape(str(settings.ca_bundle_file)))
    table.add_row("Admin credentials", escape(str(settings.admin_credentials_file)))
    print_table(table, console)
    run = escape(f"keyless run --data-dir {shlex.quote(str(settings.data_dir))} -- python app.py")
    console.print(f"Run programs against it: [bold]{run}[/bold]", soft_wrap=True)
    console.print("Keyless is ready.", highlight=False)


def _return_large_buffers() -> None:
    """Make glibc serve allocations of 128 KiB and more (media moves in 4 MiB pieces) with mmap,
    returned to the system when freed, and keep to two heaps. Left to itself glibc raises that
    threshold after the first such free and keeps the pieces in a heap per thread, so the
    server's memory grows with the bytes a job moves (bench/media_jobs.py saw 137 -> 278 MiB from
    a 15 s to a 60 s clip). Nothing on other C libraries."""
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)


def serve(settings: Settings, console: Console) -> int:
    """Run ``keyless up`` until SIGINT/SIGTERM; returns the exit code. Logs (requests at ``info``)
    go to stderr at ``settings.log_level``."""
    _return_large_buffers()
    listener = configure(settings.log_level)
    try:
        with asyncio.Runner(loop_factory=_loop_factory) as runner:
            return runner.run(_serve(settings, console))
    finally:
        listener.stop()
