"""The `keyless` CLI a person expects (issue 8): az's `--output`/`--query` (JMESPath), list and
delete, tables that never break an id, `--version`, help as written, the request log of
`keyless up --log-level info`, port clashes and stopped servers that say what to do, and each
identity's own az config directory under `keyless run`."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.workload_helpers import (
    IMDS_API,
    VM_API,
    cli_ok,
    create_functionapp,
    create_group,
    create_identity,
    create_vm,
    host_token,
)
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROOT = Path(__file__).resolve().parents[2]


def _cli_json(srv: KeylessServer, *args: str) -> object:
    return json.loads(cli_ok(srv, *args, "-o", "json"))


def test_query_is_jmespath_and_scalars_print_bare(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, "id1")
    create_identity(server, group, "id2")
    vm = create_vm(server, group, "vm1", "")

    # A scalar answer is the bare value, as `$(keyless identity show ... --query clientId)` needs.
    client_id = cli_ok(server, "identity", "show", "-g", group, "-n", "id1", "--query", "clientId")
    assert client_id == uami["properties"]["clientId"] + "\n"
    principal = cli_ok(server, "vm", "show", "-g", group, "-n", "vm1", "--query", "identity.principalId")
    assert principal == vm["identity"]["principalId"] + "\n"
    group_id = cli_ok(server, "group", "show", "-n", group, "--query", "id")
    assert group_id.strip() == f"/subscriptions/{server.subscription_id}/resourceGroups/{group}"
    # -o json keeps JSON's quotes; a structured answer is JSON; az's TSV for rows.
    assert cli_ok(
        server, "identity", "show", "-g", group, "-n", "id1", "--query", "clientId", "-o", "json"
    ) == (json.dumps(uami["properties"]["clientId"]) + "\n")
    names = cli_ok(server, "identity", "list", "-g", group, "--query", "[].name")
    assert sorted(json.loads(names)) == ["id1", "id2"]
    rows = cli_ok(
        server,
        "identity",
        "list",
        "-g",
        group,
        "--query",
        "sort_by([], &name)[].[name, clientId]",
        "-o",
        "tsv",
    )
    assert rows.splitlines()[0] == f"id1\t{uami['properties']['clientId']}"
    assert len(rows.splitlines()) == 2
    # Resources print as az prints them: properties lifted, resourceGroup added.
    shown = _cli_json(server, "identity", "show", "-g", group, "-n", "id1")
    assert isinstance(shown, dict)
    assert shown["clientId"] == uami["properties"]["clientId"] and shown["resourceGroup"] == group
    assert shown["id"] == uami["id"]
    # A query that finds nothing prints nothing (as az).
    assert cli_ok(server, "identity", "show", "-g", group, "-n", "id1", "--query", "noSuchProperty") == ""


def test_bad_output_or_query_is_refused_before_anything_changes(
    server: KeylessServer, unique: Unique
) -> None:
    group = create_group(server, unique)
    for extra in (("--query", "[].name["), ("-o", "yaml")):
        result = server.cli("identity", "create", "-g", group, "-n", "never", *extra)
        assert result.returncode == 2, result.stdout + result.stderr
        assert ("--query" if extra[0] == "--query" else "--output") in result.stderr
    assert json.loads(cli_ok(server, "identity", "list", "-g", group, "-o", "json")) == []


def test_list_and_delete(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    create_identity(server, group, "id1")
    create_vm(server, group, "vm1", "")
    create_functionapp(server, group, "fn1", "id1")
    assert group in json.loads(cli_ok(server, "group", "list", "--query", "[].name"))
    for kind, name in (("identity", "id1"), ("vm", "vm1"), ("functionapp", "fn1")):
        listed = json.loads(cli_ok(server, kind, "list", "-g", group, "--query", "[].name"))
        assert listed == [name], kind
        everywhere = json.loads(cli_ok(server, kind, "list", "--query", "[].id"))
        assert any(
            i.endswith(f"/resourceGroups/{group}/providers/" + i.split("/providers/")[1]) for i in everywhere
        )
        table = cli_ok(server, kind, "list", "-g", group)
        assert name in table and group in table
    fn_identity = cli_ok(
        server,
        "functionapp",
        "list",
        "-g",
        group,
        "--query",
        "[0].identity.userAssignedIdentities | keys(@)[0]",
    )
    assert fn_identity.strip().endswith("/userAssignedIdentities/id1")

    for kind, name in (("functionapp", "fn1"), ("vm", "vm1"), ("identity", "id1")):
        out = cli_ok(server, kind, "delete", "-g", group, "-n", name)
        assert "Deleted" in out and name in out
        assert json.loads(cli_ok(server, kind, "list", "-g", group, "-o", "json")) == []
        again = cli_ok(server, kind, "delete", "-g", group, "-n", name)
        assert "nothing was deleted" in again
    cli_ok(server, "group", "delete", "-n", group)
    assert group not in json.loads(cli_ok(server, "group", "list", "--query", "[].name"))
    missing = server.cli("group", "delete", "-n", group)
    assert missing.returncode == 1 and "(ResourceGroupNotFound)" in missing.stderr


def test_tables_never_break_an_id(
    server: KeylessServer, unique: Unique, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal (or a log)
    group = create_group(server, unique)
    uami = create_identity(server, group, "id1")
    vm = create_vm(server, group, "vm1", "id1")
    lines = cli_ok(server, "identity", "show", "-g", group, "-n", "id1").splitlines()
    assert any(uami["id"] in line for line in lines)
    assert any(uami["properties"]["clientId"] in line for line in lines)
    lines = cli_ok(server, "vm", "show", "-g", group, "-n", "vm1").splitlines()
    assert any(vm["id"] in line for line in lines)
    assert any(uami["id"] in line for line in lines)
    lines = cli_ok(server, "identity", "list", "-g", group).splitlines()
    assert any(uami["properties"]["principalId"] in line for line in lines)
    scope = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}"
    principal = uami["properties"]["principalId"]
    lines = cli_ok(
        server, "role", "assignment", "create", "--assignee", principal, "--role", "Reader", "--scope", scope
    ).splitlines()
    assert any(scope in line and principal in line for line in lines)
    lines = cli_ok(server, "role", "assignment", "list", "--scope", scope).splitlines()
    assert any(scope in line and principal in line for line in lines)
    lines = cli_ok(server, "status").splitlines()
    assert any(str(server.data_dir) in line for line in lines)


def test_access_explain_exit_codes(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, "id1")
    scope = f"/subscriptions/{server.subscription_id}/resourceGroups/{group}"
    read = ("--action", "Microsoft.Resources/subscriptions/resourceGroups/read", "--scope", scope)
    principal = uami["properties"]["principalId"]
    denied = server.cli("access", "explain", "--principal", principal, *read)
    assert denied.returncode == 1 and "DENIED" in denied.stdout
    denied = server.cli("access", "explain", "--principal", principal, *read, "--query", "allowed")
    assert denied.returncode == 1 and denied.stdout == "false\n"  # JSON, as az prints it
    cli_ok(
        server, "role", "assignment", "create", "--assignee", principal, "--role", "Reader", "--scope", scope
    )
    allowed = server.cli("access", "explain", "--principal", principal, *read)
    assert allowed.returncode == 0 and "ALLOWED" in allowed.stdout
    broken = server.cli("access", "explain", "--principal", "not-a-guid", *read)
    assert broken.returncode == 2 and "(InvalidPrincipalId)" in broken.stderr


def test_version_and_help_as_written(server: KeylessServer, monkeypatch: pytest.MonkeyPatch) -> None:
    version = server.cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"keyless \d+\.\d+\.\d+\S*\n", version.stdout)
    monkeypatch.setenv("COLUMNS", "300")
    shown = server.cli("vm", "create", "--help")
    assert shown.returncode == 0
    assert "'[system]' for both" in shown.stdout
    for command in (("identity", "show"), ("identity", "list"), ("role", "assignment", "list")):
        helped = server.cli(*command, "--help").stdout
        assert "--output" in helped and "--query" in helped and "JMESPath" in helped
    assert "--log-level" in server.cli("up", "--help").stdout


ACCESS_LINE = re.compile(r" INFO (GET|POST|PUT|DELETE|PATCH) \S+ \S+ (\d{3}|-) (\S+) \d+\.\dms$")


def test_up_logs_each_request_without_secrets(
    new_server: Callable[..., KeylessServer], unique: Unique, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYLESS_LOG_LEVEL", "info")
    srv = new_server()
    group = create_group(srv, unique)
    vm = create_vm(srv, group, "vm1", "")
    token = host_token(srv, vm["id"], VM_API)
    # A VM's direct IMDS URL carries its host token in the path; a client may put secrets in queries.
    with httpx.Client(trust_env=False, timeout=30) as http:
        r = http.get(
            f"{srv.proxy_url}/imds/{token}/metadata/identity/oauth2/token",
            params={"api-version": IMDS_API, "resource": "https://management.azure.com/"},
            headers={"Metadata": "true"},
        )
    assert r.status_code == 200, r.text
    # The same URL percent-encoded (routing decodes it) is masked all the same.
    encoded = f"{srv.proxy_url}/%69mds/%{ord(token[0]):02X}{token[1:]}/metadata/identity/oauth2/token"
    with httpx.Client(trust_env=False, timeout=30) as http:
        r = http.get(
            encoded,
            params={"api-version": IMDS_API, "resource": "https://management.azure.com/"},
            headers={"Metadata": "true"},
        )
    assert r.status_code == 200, r.text
    with srv.client() as http:
        refused = http.get(
            "https://management.azure.com/subscriptions",
            params={"api-version": "2022-12-01", "sig": "query-secret-value"},
            headers={"Authorization": "Bearer not-a-token"},
        )
    assert refused.status_code == 401
    with srv.arm() as arm:
        assert (
            arm.get(
                f"/subscriptions/{srv.subscription_id}/resourcegroups/{group}",
                params={"api-version": "2024-03-01"},
            ).status_code
            == 200
        )
    srv.stop()
    log = srv.log()
    lines = [line for line in log.splitlines() if ACCESS_LINE.search(line)]
    admin = srv.admin["objectId"]
    assert any(
        f"GET management.azure.com /subscriptions/{srv.subscription_id}/resourcegroups/{group} 200 {admin} "
        in line
        for line in lines
    ), log
    assert any(" GET 127.0.0.1 /imds/***/metadata/identity/oauth2/token 200 - " in line for line in lines), (
        log
    )
    assert any(" GET management.azure.com /subscriptions 401 - " in line for line in lines), log
    assert any(" POST login.microsoftonline.com " in line for line in lines), log
    for secret in (token[1:], "query-secret-value", srv.admin["clientSecret"], "not-a-token", "access_token"):
        assert secret not in log
    # Stopped: status says how to start it again.
    status = srv.cli("status")
    assert status.returncode == 1 and f"keyless up --data-dir {srv.data_dir}" in status.stdout


def test_no_request_log_by_default(server: KeylessServer) -> None:
    assert cli_ok(server, "group", "list", "-o", "json")
    assert not [line for line in server.log().splitlines() if ACCESS_LINE.search(line)]


@pytest.mark.parametrize("clash", ["--https-port", "--http-port"])
def test_port_clash_names_the_option(tmp_path: Path, clash: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--https-port": "0", "--http-port": "0", clash: str(port)}
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "keyless",
                "up",
                "--data-dir",
                str(tmp_path / "data"),
                *sum(ports.items(), ()),
            ],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"127.0.0.1:{port}" in done.stderr
    assert f"{clash} PORT" in done.stderr and f"{clash} 0" in done.stderr
    assert not (tmp_path / "data" / "server.json").exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_gives_each_identity_its_own_az_config_dir(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = unique("vm-")
    create_vm(server, group, vm, "")
    show = "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('AZURE_CONFIG_DIR', 'AZURE_CORE_COLLECT_TELEMETRY')}))"
    admin = json.loads(server.run_python(show).stdout)
    as_vm = json.loads(server.run_python(show, "--as", vm).stdout)
    assert admin == {
        "AZURE_CONFIG_DIR": str(server.data_dir / "azure" / "admin"),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
    }
    assert as_vm["AZURE_CONFIG_DIR"] == str(server.data_dir / "azure" / "vm" / group.lower() / vm)
    assert as_vm["AZURE_CORE_COLLECT_TELEMETRY"] == "false"
    for path in (server.data_dir / "azure", Path(admin["AZURE_CONFIG_DIR"]), Path(as_vm["AZURE_CONFIG_DIR"])):
        assert _mode(path) == 0o700, path
    exported = cli_ok(server, "env")
    assert f"export AZURE_CONFIG_DIR={server.data_dir / 'azure' / 'admin'}" in exported


@pytest.mark.slow
def test_az_login_under_keyless_never_touches_the_users_azure_dir(
    server: KeylessServer, tmp_path: Path
) -> None:
    az = os.environ.get("KEYLESS_TEST_AZ") or str(ROOT / ".venv-az" / "bin" / "az")
    if not Path(az).exists() and not shutil.which(az):
        pytest.skip("no Azure CLI (tests/e2e/test_az_cli.py installs it into .venv-az)")
    home = tmp_path / "home"
    home.mkdir()
    env = server.base_env()
    env.update(HOME=str(home), PATH=f"{Path(az).parent}{os.pathsep}{env.get('PATH', '')}")
    login = (
        'az login --service-principal -u "$AZURE_CLIENT_ID" --password="$AZURE_CLIENT_SECRET" '
        '--tenant "$AZURE_TENANT_ID" -o none && az account show --query id -o tsv'
    )
    done = subprocess.run(
        [sys.executable, "-m", "keyless", "run", "--", "bash", "-c", login],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == server.subscription_id
    assert not (home / ".azure").exists()
    assert (server.data_dir / "azure" / "admin" / "azureProfile.json").exists()


def test_a_scope_that_is_not_a_resource_id_is_arms_error_not_a_traceback(server: KeylessServer) -> None:
    """`--scope rg1` (a group's name, an easy slip) reaches the resource manager, whose error is
    printed; the CLI never falls over on another service's error shape."""
    principal = "00000000-0000-0000-0000-000000000001"
    for args in (
        ("access", "explain", "--principal", principal, "--scope", "rg1", "--action", "*/read"),
        ("role", "assignment", "list", "--scope", "/bogus"),
        ("role", "definition", "list", "--scope", "/x"),
    ):
        done = server.cli(*args)
        assert done.returncode in (1, 2), done
        assert "Traceback" not in done.stderr
        assert "(InvalidScope)" in done.stderr, done.stderr
