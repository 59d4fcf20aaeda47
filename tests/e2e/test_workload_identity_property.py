"""The identity property through the Azure SDKs, unchanged, under `keyless run` (the admin):
azure-mgmt-compute and azure-mgmt-web create VMs and Function apps with system-assigned,
user-assigned and both; and what `keyless env --as` / `keyless run --as` give a workload."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.workload_helpers import (
    VM_API,
    WEB_API,
    Unique,
    arm_get,
    assert_arm_accepts,
    assert_arm_rejects,
    claims,
    cli_ok,
    create_functionapp,
    create_group,
    create_identity,
    create_vm,
    host_token,
    imds_get,
    parse_env_output,
    program,
    run_json,
    site_id,
    vm_id,
)
from tests.keyless_server import KeylessServer

CREATE = """
import json, os
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    HardwareProfile, UserAssignedIdentitiesValue, VirtualMachine, VirtualMachineIdentity)
from azure.mgmt.web import WebSiteManagementClient
from azure.mgmt.web.models import ManagedServiceIdentity, Site, UserAssignedIdentity

data = json.loads(DATA)
group, first, second, missing = data["group"], data["first"], data["second"], data["missing"]
credential = DefaultAzureCredential()
compute = ComputeManagementClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"])
web = WebSiteManagementClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"])
out = {}

def describe(identity):
    # What the SDK models say (attribute names, not wire names).
    return {
        "type": identity.type,
        "principal_id": identity.principal_id,
        "tenant_id": identity.tenant_id,
        "user": {k: {"principal_id": v.principal_id, "client_id": v.client_id}
                 for k, v in (identity.user_assigned_identities or {}).items()},
    }

def vm(name, kind, uamis=()):
    identity = VirtualMachineIdentity(
        type=kind, user_assigned_identities={u: UserAssignedIdentitiesValue() for u in uamis} or None)
    body = VirtualMachine(
        location="westeurope", identity=identity, hardware_profile=HardwareProfile(vm_size="Standard_B1s"))
    created = compute.virtual_machines.begin_create_or_update(group, name, body).result()
    return describe(created.identity)

out["vm-system"] = vm("vm-system", "SystemAssigned")
out["vm-user"] = vm("vm-user", "UserAssigned", [first])
out["vm-both-space"] = vm("vm-both-space", "SystemAssigned, UserAssigned", [first, second])
out["vm-both-comma"] = vm("vm-both-comma", "SystemAssigned,UserAssigned", [second])
out["vm-read-back"] = describe(compute.virtual_machines.get(group, "vm-both-space").identity)
try:
    vm("vm-missing", "SystemAssigned, UserAssigned", [missing])
    out["vm-missing"] = "created"
except HttpResponseError as exc:
    out["vm-missing"] = {"status": exc.status_code, "code": exc.error.code if exc.error else None}
try:
    compute.virtual_machines.get(group, "vm-missing")
    out["vm-missing-after"] = "exists"
except ResourceNotFoundError:
    out["vm-missing-after"] = "absent"

def site(name, kind, uamis=()):
    identity = ManagedServiceIdentity(
        type=kind, user_assigned_identities={u: UserAssignedIdentity() for u in uamis} or None)
    body = Site(location="westeurope", kind="functionapp", identity=identity)
    created = web.web_apps.begin_create_or_update(group, name, body).result()
    return describe(created.identity)

out["fn-system"] = site("fn-system", "SystemAssigned")
out["fn-user"] = site("fn-user", "UserAssigned", [second])
out["fn-both"] = site("fn-both", "SystemAssigned, UserAssigned", [first])
out["fn-read-back"] = describe(web.web_apps.get(group, "fn-both").identity)
try:
    site("fn-missing", "UserAssigned", [missing])
    out["fn-missing"] = "created"
except HttpResponseError as exc:
    out["fn-missing"] = {"status": exc.status_code, "code": exc.error.code if exc.error else None}
try:
    web.web_apps.get(group, "fn-missing")
    out["fn-missing-after"] = "exists"
except ResourceNotFoundError:
    out["fn-missing-after"] = "absent"
print(json.dumps(out))
"""

DELETE = """
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.web import WebSiteManagementClient
data = json.loads(DATA)
credential = DefaultAzureCredential()
ComputeManagementClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"]).virtual_machines.begin_delete(
    data["group"], "vm-system").result()
WebSiteManagementClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"]).web_apps.delete(data["group"], "fn-system")
print(json.dumps("deleted"))
"""


def _user_entries(identity: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {k.lower(): v for k, v in identity["user"].items()}


def test_identity_property_through_the_sdks(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    first = create_identity(server, group, unique("id"))
    second = create_identity(server, group, unique("id"))
    missing = first["id"].rsplit("/", 1)[0] + "/" + unique("gone")
    data = {"group": group, "first": first["id"], "second": second["id"], "missing": missing}
    out = run_json(server, program(CREATE, data))

    reported = {u["id"].lower(): u["properties"] for u in (first, second)}

    def check(identity: dict[str, Any], kind: str, system: bool, uamis: list[dict[str, Any]]) -> None:
        assert identity["type"].replace(" ", "") == kind.replace(" ", "")
        if system:
            assert identity["principal_id"] and identity["tenant_id"] == server.tenant_id
        else:
            assert identity["principal_id"] is None
        entries = _user_entries(identity)
        assert set(entries) == {u["id"].lower() for u in uamis}
        for key, entry in entries.items():
            assert entry == {
                "principal_id": reported[key]["principalId"],
                "client_id": reported[key]["clientId"],
            }

    check(out["vm-system"], "SystemAssigned", True, [])
    check(out["vm-user"], "UserAssigned", False, [first])
    check(out["vm-both-space"], "SystemAssigned, UserAssigned", True, [first, second])
    # Answered in Azure's one spelling, whatever the request's (az compares with the spaced one).
    check(out["vm-both-comma"], "SystemAssigned, UserAssigned", True, [second])
    assert out["vm-read-back"] == out["vm-both-space"]
    check(out["fn-system"], "SystemAssigned", True, [])
    check(out["fn-user"], "UserAssigned", False, [second])
    check(out["fn-both"], "SystemAssigned, UserAssigned", True, [first])
    assert out["fn-read-back"] == out["fn-both"]
    # Each system-assigned identity is a principal of its own.
    system_ids = [
        out[k]["principal_id"]
        for k in ("vm-system", "vm-both-space", "vm-both-comma", "fn-system", "fn-both")
    ]
    assert len(set(system_ids)) == len(system_ids)

    # A user-assigned identity that does not exist: 400 FailedIdentityOperation, nothing created.
    for kind in ("vm", "fn"):
        assert out[f"{kind}-missing"] == {"status": 400, "code": "FailedIdentityOperation"}
        assert out[f"{kind}-missing-after"] == "absent"
    assert arm_get(server, vm_id(server, group, "vm-missing"), VM_API).status_code == 404
    assert arm_get(server, site_id(server, group, "fn-missing"), WEB_API).status_code == 404

    # What IMDS hands the VMs matches what the SDK reported.
    both = host_token(server, vm_id(server, group, "vm-both-comma"), VM_API)
    token = imds_get(server, both, client_id=second["properties"]["clientId"]).json()["access_token"]
    assert claims(token)["oid"] == second["properties"]["principalId"]
    system_password = host_token(server, vm_id(server, group, "vm-system"), VM_API)
    system_token = imds_get(server, system_password).json()["access_token"]
    assert claims(system_token)["oid"] == out["vm-system"]["principal_id"]
    assert_arm_accepts(server, system_token, group)

    # Deleting the VM (and the app) through the SDKs deletes their system-assigned principals.
    assert run_json(server, program(DELETE, data)) == "deleted"
    assert_arm_rejects(server, system_token, group)
    assert arm_get(server, vm_id(server, group, "vm-system"), VM_API).status_code == 404
    assert arm_get(server, site_id(server, group, "fn-system"), WEB_API).status_code == 404
    # The user-assigned identities live on: they are resources of their own.
    assert arm_get(server, first["id"], "2024-11-30").status_code == 200
    assert_arm_accepts(server, token, group)


# --- keyless env --as / keyless run --as ----------------------------------------------------------

PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("vm", ()), ("vm", ("--direct-imds",)), ("functionapp", ()), ("federated", ("--federated",))],
    ids=["vm", "vm-direct-imds", "functionapp", "federated"],
)
def test_env_prints_what_run_sets(
    server: KeylessServer, unique: Unique, kind: str, extra: tuple[str, ...]
) -> None:
    group = create_group(server, unique)
    if kind == "vm":
        name = create_vm(server, group, unique("vm"), "")["name"]
    elif kind == "functionapp":
        name = create_functionapp(server, group, unique("fn"), "")["name"]
    else:
        name = create_identity(server, group, unique("id"))["name"]
        cli_ok(
            server,
            "identity",
            "federate",
            "-g",
            group,
            "--identity-name",
            name,
            "-n",
            "local",
            "--subject",
            "s",
        )
    exported, unset = parse_env_output(cli_ok(server, "env", "--as", name, *extra))
    child: dict[str, str] = run_json(server, PRINT_ENV, "--as", name, *extra)
    assert exported, "keyless env printed nothing"
    for key, value in exported.items():
        if key == "AZURE_FEDERATED_TOKEN_FILE":  # a fresh assertion file per process
            assert child[key].endswith(".jwt")
            continue
        assert child.get(key) == value, key
    for key in unset - set(exported):
        assert key not in child, key
    # What each kind of workload has, and never the admin's secret.
    assert "AZURE_CLIENT_SECRET" in unset and "AZURE_CLIENT_SECRET" not in child
    has = {
        k
        for k in (
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "AZURE_FEDERATED_TOKEN_FILE",
        )
        if k in child
    }
    expected = {
        "vm": set() if not extra else {"AZURE_POD_IDENTITY_AUTHORITY_HOST"},
        "functionapp": {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"},
        "federated": {"AZURE_FEDERATED_TOKEN_FILE"},
    }[kind]
    assert has == expected
    assert child["HTTPS_PROXY"].startswith("http://")
    assert child["REQUESTS_CA_BUNDLE"] == str(server.bundle_file)


@pytest.mark.parametrize("command", ["run", "env"])
def test_unknown_workload_is_a_clear_error(server: KeylessServer, unique: Unique, command: str) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    ghost = unique("ghost")
    for target in (ghost, vm_id(server, group, ghost), uami["name"]):
        if command == "run":
            result = server.run_python("print('ran')", "--as", target)
        else:
            result = server.cli("env", "--as", target)
        assert result.returncode == 1, result
        assert "ran" not in result.stdout and "export" not in result.stdout
        compact = "".join(result.stderr.split())
        assert f"named'{target}'exists" in compact, result.stderr
