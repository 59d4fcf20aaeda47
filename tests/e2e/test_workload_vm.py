"""VMs: unchanged Azure programs under `keyless run --as VM` get tokens for the VM's own
identities (azure-identity sync and aio, DefaultAzureCredential, MSAL), with Entra's claims,
and Keyless's resource manager accepts them."""

from __future__ import annotations

from typing import Any

from tests.e2e.workload_helpers import (
    RESOURCES,
    VM_API,
    Unique,
    assert_arm_accepts,
    assert_mi_token,
    create_group,
    create_identity,
    create_vm,
    host_token,
    imds_get,
    program,
    published_kids,
    run_json,
)
from tests.keyless_server import KeylessServer

# Every flavour of client a VM program might use, for every resource; prints {label: token}.
SYSTEM_PROGRAM = """
import asyncio, json, os
import msal, requests
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import DefaultAzureCredential as AioDefault, ManagedIdentityCredential as AioManaged

RESOURCES = json.loads(DATA)
if os.environ.get("DROP_PROXY"):
    # Prove the direct IMDS base URL alone is enough: no proxy (and so no proxy password) at all.
    for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        os.environ.pop(key, None)
out = {"env": {k: os.environ.get(k) for k in (
    "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST")}}
scope = lambda r: r.rstrip("/") + "/.default"
managed, default = ManagedIdentityCredential(), DefaultAzureCredential()
for r in RESOURCES:
    out["mi " + r] = managed.get_token(scope(r)).token
    out["dac " + r] = default.get_token(scope(r)).token
client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
for r in RESOURCES:
    result = client.acquire_token_for_client(resource=r)
    assert "access_token" in result, result
    out["msal " + r] = result["access_token"]

async def main():
    async with AioManaged() as managed, AioDefault() as default:
        for r in RESOURCES:
            out["aio-mi " + r] = (await managed.get_token(scope(r))).token
            out["aio-dac " + r] = (await default.get_token(scope(r))).token

asyncio.run(main())
print(json.dumps(out))
"""


def _expected_audience(label: str) -> str:
    """azure-identity turns a scope into a resource by removing '/.default' (so no trailing
    slash); MSAL sends the resource as given. IMDS echoes what was sent into ``aud``."""
    flavour, resource = label.split(" ", 1)
    return resource if flavour == "msal" else resource.rstrip("/")


def _check_tokens(
    srv: KeylessServer, out: dict[str, Any], vm: dict[str, Any], client_id: str, group: str
) -> None:
    kids = published_kids(srv)
    labels = [k for k in out if k != "env"]
    assert len(labels) == 5 * len(RESOURCES)
    for label in labels:
        assert_mi_token(
            srv,
            out[label],
            audience=_expected_audience(label),
            object_id=vm["identity"]["principalId"],
            client_id=client_id,
            mirid=vm["id"],
            az_rid=None,
            kids=kids,
        )
    # Tokens for the resource manager are accepted by Keyless's resource manager.
    for label in labels:
        if label.endswith("management.azure.com/"):
            assert_arm_accepts(srv, out[label], group)


def test_system_assigned_vm_through_every_client(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    assert vm["identity"]["type"] == "SystemAssigned"
    # The client id IMDS reports for the system-assigned identity is the token's appid.
    raw = imds_get(server, host_token(server, vm["id"], VM_API))
    assert raw.status_code == 200, raw.text
    client_id = raw.json()["client_id"]

    out = run_json(server, program(SYSTEM_PROGRAM, RESOURCES), "--as", vm["name"])
    # A VM's process has no admin credentials and no App Service endpoint.
    assert all(value is None for value in out["env"].values()), out["env"]
    _check_tokens(server, out, vm, client_id, group)


def test_system_assigned_vm_with_direct_imds(server: KeylessServer, unique: Unique) -> None:
    """--direct-imds: AZURE_POD_IDENTITY_AUTHORITY_HOST is the per-workload IMDS base URL, and
    works with no proxy at all."""
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    raw = imds_get(server, host_token(server, vm["id"], VM_API))
    client_id = raw.json()["client_id"]
    code = "import os; os.environ['DROP_PROXY'] = '1'\n" + program(SYSTEM_PROGRAM, RESOURCES)
    out = run_json(server, code, "--as", vm["id"], "--direct-imds")
    pod_host = out["env"].pop("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    assert pod_host.startswith(f"http://127.0.0.1:{server.http_port}/imds/")
    assert all(value is None for value in out["env"].values()), out["env"]
    _check_tokens(server, out, vm, client_id, group)


USER_PROGRAM = """
import asyncio, json
import msal, requests
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AioManaged

first, second = json.loads(DATA)
out = {}
scope = "https://vault.azure.net/.default"
out["mi client_id first"] = ManagedIdentityCredential(client_id=first["clientId"]).get_token(scope).token
out["mi client_id second"] = ManagedIdentityCredential(client_id=second["clientId"]).get_token(scope).token
out["mi object_id second"] = ManagedIdentityCredential(
    identity_config={"object_id": second["principalId"]}).get_token(scope).token
out["mi resource_id first"] = ManagedIdentityCredential(
    identity_config={"resource_id": first["id"]}).get_token(scope).token
out["dac client_id second"] = DefaultAzureCredential(
    managed_identity_client_id=second["clientId"]).get_token(scope).token

async def main():
    async with AioManaged(client_id=second["clientId"]) as c:
        out["aio client_id second"] = (await c.get_token(scope)).token
    async with AioManaged(identity_config={"object_id": first["principalId"]}) as c:
        out["aio object_id first"] = (await c.get_token(scope)).token
    async with AioManaged(identity_config={"resource_id": second["id"]}) as c:
        out["aio resource_id second"] = (await c.get_token(scope)).token

asyncio.run(main())
session = requests.Session()
for label, identity in (
    ("msal client_id first", msal.UserAssignedManagedIdentity(client_id=first["clientId"])),
    ("msal object_id second", msal.UserAssignedManagedIdentity(object_id=second["principalId"])),
    ("msal resource_id second", msal.UserAssignedManagedIdentity(resource_id=second["id"])),
):
    result = msal.ManagedIdentityClient(identity, http_client=session).acquire_token_for_client(
        resource="https://vault.azure.net")
    assert "access_token" in result, result
    out[label] = result["access_token"]

# With only user-assigned identities, a request naming none gets none (IMDS: Identity not found).
try:
    ManagedIdentityCredential().get_token(scope)
    out["unselected"] = "issued"
except Exception as exc:
    out["unselected"] = str(exc)
print(json.dumps(out))
"""


def test_user_assigned_vm_selects_each_identity(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    first = create_identity(server, group, unique("id"))
    second = create_identity(server, group, unique("id"))
    vm = create_vm(server, group, unique("vm"), f"{first['name']},{second['id']}")
    assert vm["identity"]["type"] == "UserAssigned"
    assert "principalId" not in vm["identity"]
    reported = {k.lower(): v for k, v in vm["identity"]["userAssignedIdentities"].items()}
    for uami in (first, second):
        assert reported[uami["id"].lower()] == {
            "principalId": uami["properties"]["principalId"],
            "clientId": uami["properties"]["clientId"],
        }

    selectors = [
        {
            "id": u["id"],
            "clientId": u["properties"]["clientId"],
            "principalId": u["properties"]["principalId"],
        }
        for u in (first, second)
    ]
    out = run_json(server, program(USER_PROGRAM, selectors), "--as", vm["name"])
    unselected = out.pop("unselected")
    assert "Identity not found" in unselected, unselected

    kids = published_kids(server)
    by_name = {"first": first, "second": second}
    assert len(out) == 11
    for label, token in out.items():
        uami = by_name[label.split()[-1]]
        assert_mi_token(
            server,
            token,
            audience="https://vault.azure.net",
            object_id=uami["properties"]["principalId"],
            client_id=uami["properties"]["clientId"],
            mirid=uami["id"],
            az_rid=vm["id"],
            kids=kids,
        )


AIO_BESIDE_SYSTEM = """
import asyncio, json
from azure.identity.aio import ManagedIdentityCredential
uami = json.loads(DATA)
out = {}

async def main():
    for label, kwargs in (
        ("resource_id", {"identity_config": {"resource_id": uami["id"]}}),
        ("object_id", {"identity_config": {"object_id": uami["principalId"]}}),
        ("client_id", {"client_id": uami["clientId"]}),
        ("system", {}),
    ):
        async with ManagedIdentityCredential(**kwargs) as c:
            out[label] = (await c.get_token("https://management.azure.com/.default")).token

asyncio.run(main())
print(json.dumps(out))
"""


def test_system_and_user_assigned_vm(server: KeylessServer, unique: Unique) -> None:
    """Beside a system-assigned identity, each selector still picks the user-assigned one, no
    selector picks the system one; a UAMI's management token authenticates at the resource
    manager."""
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    vm = create_vm(server, group, unique("vm"), f"[system],{uami['name']}")
    assert vm["identity"]["type"] == "SystemAssigned, UserAssigned"
    password = host_token(server, vm["id"], VM_API)
    r = imds_get(server, password, client_id=uami["properties"]["clientId"])
    assert r.status_code == 200, r.text
    assert r.json()["client_id"] == uami["properties"]["clientId"]
    assert_arm_accepts(server, r.json()["access_token"], group)
    # Beside a user-assigned one, no selector still means the system-assigned identity.
    system = imds_get(server, password)
    assert system.status_code == 200, system.text
    body = system.json()
    assert body["client_id"] != uami["properties"]["clientId"]
    kids = published_kids(server)
    assert_mi_token(
        server,
        body["access_token"],
        audience="https://management.azure.com/",
        object_id=vm["identity"]["principalId"],
        client_id=body["client_id"],
        mirid=vm["id"],
        az_rid=None,
        kids=kids,
    )
    assert_arm_accepts(server, body["access_token"], group)

    selectors = {
        "id": uami["id"],
        "clientId": uami["properties"]["clientId"],
        "principalId": uami["properties"]["principalId"],
    }
    out = run_json(server, program(AIO_BESIDE_SYSTEM, selectors), "--as", vm["name"])
    for label, token in out.items():
        system_token = label == "system"
        assert_mi_token(
            server,
            token,
            audience="https://management.azure.com",
            object_id=vm["identity"]["principalId"] if system_token else uami["properties"]["principalId"],
            client_id=body["client_id"] if system_token else uami["properties"]["clientId"],
            mirid=vm["id"] if system_token else uami["id"],
            az_rid=None if system_token else vm["id"],
            kids=kids,
        )
