"""The real Azure CLI, unchanged, against Keyless (issue 8): the whole identity workflow as the
local admin under `keyless run`, and as a VM under `keyless run --as <vm>`.

azure-cli pins its own versions of the Azure SDKs, so it lives in a virtual environment of its
own (`.venv-az`, or KEYLESS_TEST_AZ naming an `az` executable); the first run installs it from
PyPI. Every command runs with a throw-away HOME, so a real `~/.azure` is never read or written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AZ_VENV = ROOT / ".venv-az"


@pytest.fixture(scope="module")
def az_bin() -> Path:
    """The `az` executable: KEYLESS_TEST_AZ, or azure-cli installed from PyPI into .venv-az."""
    given = os.environ.get("KEYLESS_TEST_AZ")
    if given:
        return Path(given)
    az = AZ_VENV / "bin" / "az"
    if not az.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AZ_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(AZ_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "azure-cli"],
            check=True,
            timeout=1500,
        )
    return az


class Az:
    """Runs `keyless run [--as X] -- az ...` as a user would, and parses az's JSON output."""

    def __init__(self, srv: KeylessServer, az: Path, home: Path) -> None:
        self.srv = srv
        self.az = az
        self.home = home

    def run(self, *args: str, as_: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.srv.base_env()
        env["HOME"] = str(self.home)
        env["PATH"] = f"{self.az.parent}{os.pathsep}{env.get('PATH', '')}"
        env["AZURE_CORE_ONLY_SHOW_ERRORS"] = "true"
        env["AZURE_CORE_NO_COLOR"] = "true"
        script = " ".join(_quote(a) for a in ("az", *args))
        run_args = ["--as", as_] if as_ else []
        done = subprocess.run(
            [sys.executable, "-m", "keyless", "run", *run_args, "--", "bash", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if ok:
            assert done.returncode == 0, (
                f"az {' '.join(args)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
        return done

    def json(self, *args: str, as_: str | None = None) -> Any:
        out = self.run(*args, "-o", "json", as_=as_).stdout.strip()
        return json.loads(out) if out else None


def _quote(arg: str) -> str:
    # $AZURE_* stay expandable (the credentials `keyless run` sets); everything else is literal.
    if "$AZURE_" in arg:
        return f'"{arg}"'
    return "'" + arg.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def az(server: KeylessServer, az_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Az:
    return Az(server, az_bin, tmp_path_factory.mktemp("home"))


def test_the_identity_workflow_as_admin_and_as_a_vm(server: KeylessServer, az: Az) -> None:
    sub = server.subscription_id
    group = f"rgaz{uuid.uuid4().hex[:8]}"

    # --- signing in, the account ---------------------------------------------------------------
    az.run("login", "--service-principal", "-u", "$AZURE_CLIENT_ID", "--password=$AZURE_CLIENT_SECRET",
           "--tenant", "$AZURE_TENANT_ID")  # fmt: skip
    account = az.json("account", "show")
    assert account["id"] == sub and account["tenantId"] == server.tenant_id
    assert any(a["id"] == sub for a in az.json("account", "list"))
    assert "westeurope" in {loc["name"] for loc in az.json("account", "list-locations")}

    # --- groups and identities -----------------------------------------------------------------
    created = az.json("group", "create", "-n", group, "-l", "westeurope")
    rg_id = created["id"]
    assert az.json("group", "exists", "-n", group) is True
    assert az.json("group", "update", "-n", group, "--set", "tags.env=dev")["tags"] == {"env": "dev"}
    assert group in {g["name"] for g in az.json("group", "list")}
    identity = az.json("identity", "create", "-g", group, "-n", "id1")
    assert identity["principalId"] and identity["clientId"]
    assert az.json("identity", "show", "-g", group, "-n", "id1")["id"] == identity["id"]
    assert [i["name"] for i in az.json("identity", "list", "-g", group)] == ["id1"]
    fic = az.json("identity", "federated-credential", "create", "-g", group, "--identity-name", "id1",
                  "-n", "fic1", "--issuer", "https://token.actions.githubusercontent.com",
                  "--subject", "repo:octo/app:ref:refs/heads/main", "--audiences", "api://AzureADTokenExchange")  # fmt: skip
    assert fic["subject"] == "repo:octo/app:ref:refs/heads/main"
    listed = az.json("identity", "federated-credential", "list", "-g", group, "--identity-name", "id1")
    assert [f["name"] for f in listed] == ["fic1"]
    az.run(
        "identity",
        "federated-credential",
        "delete",
        "-g",
        group,
        "--identity-name",
        "id1",
        "-n",
        "fic1",
        "--yes",
    )
    assert az.json("identity", "federated-credential", "list", "-g", group, "--identity-name", "id1") == []

    # --- a VM's identities: assign and remove keep the system-assigned one ---------------------
    done = server.cli("vm", "create", "-g", group, "-n", "vm1", "--assign-identity")
    assert done.returncode == 0, done.stderr
    system = az.json("vm", "identity", "show", "-g", group, "-n", "vm1")
    assert system["type"] == "SystemAssigned"
    assigned = az.json("vm", "identity", "assign", "-g", group, "-n", "vm1", "--identities", "id1")
    assert assigned["systemAssignedIdentity"] == system["principalId"]
    assert list(assigned["userAssignedIdentities"]) == [identity["id"]]
    both = az.json("vm", "identity", "show", "-g", group, "-n", "vm1")
    assert both["type"] == "SystemAssigned, UserAssigned"
    az.run("vm", "identity", "remove", "-g", group, "-n", "vm1", "--identities", "id1")
    after = az.json("vm", "identity", "show", "-g", group, "-n", "vm1")
    assert after["type"] == "SystemAssigned"
    assert after["principalId"] == system["principalId"]
    az.json("vm", "identity", "assign", "-g", group, "-n", "vm1", "--identities", "id1")

    # --- a Function app ---------------------------------------------------------------------------
    done = server.cli("functionapp", "create", "-g", group, "-n", f"fn{uuid.uuid4().hex[:8]}")
    assert done.returncode == 0, done.stderr
    app = az.json("functionapp", "list", "-g", group)[0]
    shown = az.json("functionapp", "show", "-g", group, "-n", app["name"])
    assert shown["id"] == app["id"]
    assigned = az.json("functionapp", "identity", "assign", "-g", group, "-n", app["name"])
    assert assigned["type"] == "SystemAssigned" and assigned["principalId"]
    assert (
        az.json("functionapp", "identity", "show", "-g", group, "-n", app["name"])["principalId"]
        == assigned["principalId"]
    )

    # --- role assignments by object id, role name and scope ------------------------------------
    vm_principal = system["principalId"]
    made = az.json(
        "role", "assignment", "create", "--assignee", vm_principal, "--role", "Reader", "--scope", rg_id
    )
    again = az.json(
        "role", "assignment", "create", "--assignee", vm_principal, "--role", "Reader", "--scope", rg_id
    )
    assert again["id"] == made["id"]  # idempotent, as az makes it
    by_role = az.json("role", "assignment", "list", "--scope", rg_id, "--role", "Reader")
    assert [a["principalId"] for a in by_role] == [vm_principal]
    assert by_role[0]["roleDefinitionName"] == "Reader"
    assert by_role[0]["principalName"]  # filled from Microsoft Graph
    mine = az.json("role", "assignment", "list", "--assignee", vm_principal, "--all")
    assert [a["id"] for a in mine] == [made["id"]]

    # --- role definitions ---------------------------------------------------------------------
    reader = az.json("role", "definition", "list", "--name", "Reader")
    assert reader[0]["name"] == "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    role_name = f"az-role-{uuid.uuid4().hex[:6]}"
    definition = {
        "Name": role_name,
        "Description": "made by az",
        "Actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/read"],
        "AssignableScopes": [rg_id],
    }
    custom = az.json("role", "definition", "create", "--role-definition", json.dumps(definition))
    assert custom["roleName"] == role_name
    az.run("role", "definition", "delete", "--name", role_name, "--scope", rg_id)

    # --- generic resources, providers, az rest -------------------------------------------------
    resources = az.json("resource", "list", "-g", group)
    assert {r["name"] for r in resources} >= {"id1", "vm1", app["name"]}
    assert az.json("resource", "show", "--ids", identity["id"])["name"] == "id1"
    provider = az.json("provider", "show", "-n", "Microsoft.ManagedIdentity")
    assert provider["registrationState"] == "Registered"
    assert "userAssignedIdentities" in {t["resourceType"] for t in provider["resourceTypes"]}
    assert "Microsoft.Compute" in {p["namespace"] for p in az.json("provider", "list")}
    rest = az.json(
        "rest",
        "--method",
        "get",
        "--url",
        f"/subscriptions/{sub}/resourceGroups/{group}?api-version=2021-04-01",
    )
    assert rest["name"] == group

    # --- as the VM: its identity reaches only what its role allows ----------------------------
    az.run("login", "--identity", as_="vm1")
    assert az.json("account", "show", as_="vm1")["id"] == sub
    assert [g["name"] for g in az.json("group", "list", as_="vm1")] == [group]
    refused = az.run("identity", "create", "-g", group, "-n", "id2", as_="vm1", ok=False)
    assert refused.returncode != 0 and "AuthorizationFailed" in refused.stderr
    for how in (
        ("--client-id", identity["clientId"]),
        ("--object-id", identity["principalId"]),
        ("--resource-id", identity["id"]),
    ):
        az.run("login", "--identity", *how, "--allow-no-subscriptions", as_="vm1")
        token = az.json("account", "get-access-token", as_="vm1")
        assert token["accessToken"]

    # --- deleting, as az does it -----------------------------------------------------------------
    az.run("role", "assignment", "delete", "--assignee", vm_principal, "--role", "Reader", "--scope", rg_id)
    assert az.json("role", "assignment", "list", "--scope", rg_id, "--role", "Reader") == []
    az.run("identity", "delete", "-g", group, "-n", "id1")
    az.run("group", "delete", "-n", group, "--yes")
    assert az.json("group", "exists", "-n", group) is False
    # Nothing was written to the user's own ~/.azure.
    assert not (az.home / ".azure").exists()
