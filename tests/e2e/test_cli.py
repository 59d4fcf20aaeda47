"""The `keyless` command line: up (and stopping it), status, env, run, and side-by-side instances."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.keyless_server import KeylessServer

ENV_KEYS = {
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_stops_cleanly(new_server: Callable[..., KeylessServer], sig: signal.Signals) -> None:
    srv = new_server()
    runtime = srv.data_dir / "server.json"
    assert runtime.exists()
    assert srv.runtime["host"] == "127.0.0.1"
    assert srv.stop(sig) == 0
    assert not runtime.exists()
    log = srv.log()
    assert "Keyless is ready." in log and "Keyless stopped." in log
    assert "Traceback" not in log


def test_up_prints_what_it_serves(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    # The banner is a table; a value too long for its cell continues on the next line.
    cells = "".join(
        line.split("│")[2].strip()
        for line in srv.log().splitlines()
        if line.startswith("│") and line.count("│") == 3
    )
    for needle in (
        "https://management.azure.com",
        "https://login.microsoftonline.com",
        f"https://127.0.0.1:{srv.https_port}",
        f"http://127.0.0.1:{srv.http_port}",
        srv.tenant_id,
        srv.subscription_id,
        str(srv.data_dir),
        str(srv.ca_file),
        str(srv.bundle_file),
        str(srv.data_dir / "admin.json"),
    ):
        assert needle in cells, needle


def test_up_refuses_a_second_server_for_the_same_data_dir(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    second = srv.cli("up", "--https-port", "0", "--http-port", "0", timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert srv.process is not None and srv.process.poll() is None


def test_status(new_server: Callable[..., KeylessServer], tmp_path: Path) -> None:
    srv = new_server()
    up = srv.cli("status")
    assert up.returncode == 0, up.stdout + up.stderr
    assert srv.tenant_id in up.stdout and srv.subscription_id in up.stdout
    assert str(srv.https_port) in up.stdout
    srv.stop()
    down = srv.cli("status")
    assert down.returncode == 1
    assert "not running" in down.stdout
    never = srv.cli("status", "--data-dir", str(tmp_path / "never-started"))
    assert never.returncode == 1


def test_status_after_kill_9(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    srv.kill9()  # the runtime file is left behind; status must not believe it
    assert srv.cli("status").returncode == 1
    assert srv.cli("env").returncode == 1


def test_env_lines(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    out = srv.cli("env")
    assert out.returncode == 0, out.stderr
    env: dict[str, str] = {}
    for line in out.stdout.splitlines():
        assert line.startswith("export "), line
        key, _, value = line.removeprefix("export ").partition("=")
        (env[key],) = shlex.split(value)
    assert set(env) >= ENV_KEYS
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == srv.proxy_url
    assert "127.0.0.1" in env["NO_PROXY"].split(",") and "localhost" in env["NO_PROXY"].split(",")
    assert env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == str(srv.bundle_file)
    assert env["NODE_EXTRA_CA_CERTS"] == str(srv.ca_file)
    assert env["AZURE_TENANT_ID"] == srv.tenant_id
    assert env["AZURE_SUBSCRIPTION_ID"] == srv.subscription_id
    assert env["AZURE_CLIENT_ID"] == srv.admin["clientId"]
    assert env["AZURE_CLIENT_SECRET"] == srv.admin["clientSecret"]
    # A shell can evaluate it as it is.
    import subprocess

    shell = subprocess.run(
        ["bash", "-c", 'eval "$0"; printf %s "$AZURE_CLIENT_SECRET"', out.stdout],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == srv.admin["clientSecret"]
    srv.stop()
    down = srv.cli("env")
    assert down.returncode == 1 and down.stdout == ""


def test_run_returns_the_exit_code(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    for code in (0, 3, 42):
        assert srv.run_python(f"import sys; sys.exit({code})").returncode == code
    shown = srv.run_python("import json, os; print(json.dumps(dict(os.environ)))")
    assert shown.returncode == 0
    env = json.loads(shown.stdout)
    assert env["HTTPS_PROXY"] == srv.proxy_url
    assert env["AZURE_CLIENT_ID"] == srv.admin["clientId"]
    # Arguments after -- belong to the command, options included.
    echoed = srv.cli("run", "--", sys.executable, "-c", "import sys; print(sys.argv[1:])", "--data-dir", "x")
    assert echoed.stdout.strip() == "['--data-dir', 'x']"
    missing = srv.cli("run", "--", "/no/such/program")
    assert missing.returncode == 127
    srv.stop()
    down = srv.run_python("print('should not run')")
    assert down.returncode == 1
    assert "should not run" not in down.stdout


def test_two_instances_side_by_side(new_server: Callable[..., KeylessServer]) -> None:
    a, b = new_server(), new_server()
    assert a.data_dir != b.data_dir
    assert a.tenant_id != b.tenant_id
    assert {a.https_port, a.http_port}.isdisjoint({b.https_port, b.http_port})
    token_a = a.admin_token()
    with a.arm(token_a) as arm:
        assert (
            arm.put(
                f"/subscriptions/{a.subscription_id}/resourceGroups/only-in-a",
                params={"api-version": "2024-03-01"},
                json={"location": "westeurope"},
            ).status_code
            == 201
        )
    with b.arm() as arm:
        groups = arm.get(
            f"/subscriptions/{b.subscription_id}/resourcegroups", params={"api-version": "2024-03-01"}
        )
        assert groups.json()["value"] == []
    # One instance's tokens mean nothing to the other.
    with b.arm(token_a) as arm:
        r = arm.get("/subscriptions", params={"api-version": "2022-12-01"})
        assert r.status_code == 401
    for srv in (a, b):
        status = srv.cli("status")
        assert status.returncode == 0 and srv.tenant_id in status.stdout
    a.stop()
    assert a.cli("status").returncode == 1
    assert b.cli("status").returncode == 0


def test_keyless_up_refuses_to_bind_beyond_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")}
    env.update(KEYLESS_DATA_DIR=str(tmp_path / "data"), KEYLESS_HOST="0.0.0.0")
    done = subprocess.run(
        [sys.executable, "-m", "keyless", "up", "--https-port", "0", "--http-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "loopback only" in done.stdout
    assert not (tmp_path / "data" / "server.json").exists()


# --- "running" is the instance lock, never a PID ----------------------------------------------


def _zombie() -> subprocess.Popen[bytes]:
    """A child that has exited but was not reaped: its PID still answers kill(pid, 0)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Path(f"/proc/{child.pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return child
        time.sleep(0.05)
    raise AssertionError("the child never became a zombie")


@pytest.mark.parametrize("holder", ["live", "zombie"])
def test_a_stale_server_json_naming_another_process(
    new_server: Callable[..., KeylessServer], holder: str
) -> None:
    srv = new_server()
    runtime = json.loads((srv.data_dir / "server.json").read_text())
    srv.stop()
    other = subprocess.Popen(["sleep", "60"]) if holder == "live" else _zombie()
    try:
        os.kill(other.pid, 0)  # alive as far as a PID check can tell
        (srv.data_dir / "server.json").write_text(json.dumps({**runtime, "pid": other.pid}))
        status = srv.cli("status")
        assert status.returncode == 1 and "not running" in status.stdout
        assert srv.cli("env").returncode == 1
        srv.start()  # `keyless up` agrees: nothing is running
        assert srv.runtime["pid"] == srv.process.pid  # type: ignore[union-attr]
        up = srv.cli("status")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"pid {srv.process.pid}" in up.stdout  # type: ignore[union-attr]
        assert srv.cli("env").returncode == 0
    finally:
        other.kill()
        other.wait()


def test_a_running_server_without_its_server_json_is_still_running(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv = new_server()
    (srv.data_dir / "server.json").unlink()
    second = srv.cli("up", "--https-port", "0", "--http-port", "0", timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert srv.process is not None and srv.process.poll() is None
    status = srv.cli("status")
    assert status.returncode == 1 and "not running" not in status.stdout
    with srv.arm() as arm:  # the first server is untouched
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200


def test_kill_9_releases_the_instance_lock(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    srv.kill9()
    assert (srv.data_dir / "server.json").exists()  # left behind, and not believed
    down = srv.cli("status")
    assert down.returncode == 1 and "not running" in down.stdout
    srv.start()
    assert srv.cli("status").returncode == 0


# --- the root key: only the first `keyless up` creates one --------------------------------------


@pytest.mark.parametrize("exists", [False, True])
def test_commands_refuse_a_data_dir_without_a_root_key(
    new_server: Callable[..., KeylessServer], tmp_path: Path, exists: bool
) -> None:
    srv = new_server()
    wrong = tmp_path / "not-an-instance"
    if exists:
        wrong.mkdir()
    where = ("--data-dir", str(wrong))
    for args in (
        ("status", *where),
        ("env", *where),
        ("run", *where, "--", sys.executable, "-c", "print('ran')"),
        ("group", "create", "-n", "rg-wrong", *where),
        ("authority", "rotate-keys", *where),
    ):
        done = srv.cli(*args)
        said = (done.stdout + done.stderr).replace("\n", " ")
        assert done.returncode == 1, (args, said)
        assert "root key" in said and "Traceback" not in said, (args, said)
        assert "ran" not in done.stdout
        # Nothing was created: no root key, no database, not even the directory.
        assert (sorted(wrong.iterdir()) == []) if exists else not wrong.exists()
    with srv.arm() as arm:  # and the real instance is untouched
        groups = arm.get(
            f"/subscriptions/{srv.subscription_id}/resourcegroups", params={"api-version": "2024-03-01"}
        )
    assert groups.json()["value"] == []


def test_commands_refuse_when_the_root_key_is_gone(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    root_key = srv.data_dir / "root.key"
    kept = root_key.read_bytes()
    root_key.unlink()
    try:
        for args in (("env",), ("group", "create", "-n", "rg-no-root-key")):
            done = srv.cli(*args)
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            assert "root key" in (done.stdout + done.stderr).replace("\n", " ")
            assert not root_key.exists()
    finally:
        root_key.write_bytes(kept)
        root_key.chmod(0o600)
    assert srv.cli("env").returncode == 0
    with srv.arm() as arm:
        groups = arm.get(
            f"/subscriptions/{srv.subscription_id}/resourcegroups", params={"api-version": "2024-03-01"}
        )
    assert groups.json()["value"] == []


# --- `--as` needs the admin's credentials --------------------------------------------------------


def test_run_and_env_as_a_workload_need_the_admin_credentials(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv = new_server()
    for args in (
        ("group", "create", "-n", "rg-as"),
        ("vm", "create", "-g", "rg-as", "-n", "vm-as", "--assign-identity"),
    ):
        done = srv.cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    ok = srv.cli("env", "--as", "vm-as")
    assert ok.returncode == 0, ok.stderr
    assert "workload:" in ok.stdout
    admin_file = srv.data_dir / "admin.json"
    kept = admin_file.read_bytes()
    wrong_secret = json.dumps({**json.loads(kept), "clientSecret": "not-the-secret"})
    try:
        for state in ("missing", "wrong secret"):
            if state == "missing":
                admin_file.unlink()
            else:
                admin_file.write_text(wrong_secret)
            env = srv.cli("env", "--as", "vm-as")
            assert env.returncode == 1, (state, env.stdout)
            assert "workload:" not in env.stdout and env.stdout == ""
            ran = srv.cli("run", "--as", "vm-as", "--", sys.executable, "-c", "print('ran as the vm')")
            assert ran.returncode == 1, (state, ran.stdout)
            assert "ran as the vm" not in ran.stdout
    finally:
        admin_file.write_bytes(kept)
    assert srv.cli("env", "--as", "vm-as").returncode == 0
