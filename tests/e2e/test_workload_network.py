"""A workload's network settings (keyless.network): set with the keyless CLI and with
azure-mgmt-compute / azure-mgmt-web, round-tripped by the resource manager, bad values refused
with ARM errors and nothing changed, and the origin the edge's resolver gives a request that
carries the workload's host token (a real Platform on the server's own database)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest

from keyless.cli.runtime import settings_for
from keyless.edge.routing import PROXY_AUTHORIZATION, VIA_PROXY
from keyless.network import LOCAL_HOST, NetworkOrigin, OriginResolver
from keyless.platform import Platform
from tests.e2e.arm_helpers import assert_arm_error
from tests.e2e.workload_helpers import (
    VM_API,
    WEB_API,
    Unique,
    arm_get,
    cli_ok,
    create_functionapp,
    create_group,
    create_vm,
    get_doc,
    host_token,
    site_id,
    vm_id,
)
from tests.keyless_server import KeylessServer

SUB = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def _subnets_in_the_servers_subscription(server: KeylessServer) -> None:
    """Subnets live in the server's subscription: joining one needs ``subnets/join/action``
    there, which the admin (Owner) holds and which a subscription that does not exist denies."""
    global SUB
    SUB = server.subscription_id


def subnet(vnet: str = "v", name: str = "s") -> str:
    return f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{name}"


def _cli_json(srv: KeylessServer, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cli_ok(srv, *args, "-o", "json"))
    return out


# --- the keyless CLI ----------------------------------------------------------------------------


def test_vm_network_through_the_cli(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"))
    assert "keylessNetwork" not in vm["properties"]
    shown = _cli_json(
        server, "vm", "update", "-g", group, "-n", vm["name"], "--public-ip", "20.1.2.3", "--subnet", subnet()
    )
    assert shown["keylessNetwork"] == {"publicIpAddress": "20.1.2.3", "subnetId": subnet()}
    got = get_doc(server, vm["id"], VM_API)
    assert got["properties"]["keylessNetwork"] == {"publicIpAddress": "20.1.2.3", "subnetId": subnet()}
    # --query keeps az's conventions; one flag changes one setting.
    ip = cli_ok(
        server,
        "vm",
        "update",
        "-g",
        group,
        "-n",
        vm["name"],
        "--public-ip",
        "52.0.0.7",
        "--query",
        "keylessNetwork.publicIpAddress",
    )
    assert ip.strip() == "52.0.0.7"
    assert get_doc(server, vm["id"], VM_API)["properties"]["keylessNetwork"]["subnetId"] == subnet()
    # '' clears.
    cli_ok(server, "vm", "update", "-g", group, "-n", vm["name"], "--public-ip", "", "--subnet", "")
    assert "keylessNetwork" not in get_doc(server, vm["id"], VM_API)["properties"]


def test_functionapp_network_through_the_cli(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    app = create_functionapp(server, group, unique("fn"))
    shown = _cli_json(
        server,
        "functionapp",
        "update",
        "-g",
        group,
        "-n",
        app["name"],
        "--public-ip",
        "20.1.2.4",
        "--subnet",
        subnet(),
    )
    assert shown["virtualNetworkSubnetId"] == subnet()
    assert shown["keylessNetwork"] == {"publicIpAddress": "20.1.2.4"}
    got = get_doc(server, app["id"], WEB_API)["properties"]
    assert (got["virtualNetworkSubnetId"], got["keylessNetwork"]) == (
        subnet(),
        {"publicIpAddress": "20.1.2.4"},
    )
    assert get_doc(server, app["id"], WEB_API)["kind"] == "functionapp"


def test_cli_bad_values_fail_and_change_nothing(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"))
    cli_ok(server, "vm", "update", "-g", group, "-n", vm["name"], "--public-ip", "20.1.2.3")
    before = get_doc(server, vm["id"], VM_API)
    for flag, value in (("--public-ip", "20.1.2"), ("--subnet", "/subscriptions/x/subnets/s")):
        result = server.cli("vm", "update", "-g", group, "-n", vm["name"], flag, value)
        assert result.returncode != 0
        assert "InvalidParameter" in result.stderr + result.stdout
    assert get_doc(server, vm["id"], VM_API) == before


# --- the Azure SDKs ----------------------------------------------------------------------------

SDK_PROGRAM = """
import json, os
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachine
from azure.mgmt.web import WebSiteManagementClient
from azure.mgmt.web.models import Site
d = json.loads(DATA)
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
cred = DefaultAzureCredential()
compute, web = ComputeManagementClient(cred, sub), WebSiteManagementClient(cred, sub)
out = {}
vm = compute.virtual_machines.begin_create_or_update(d["group"], d["vm"], VirtualMachine({
    "location": "westeurope", "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"},
    "keylessNetwork": {"publicIpAddress": "20.9.8.7", "subnetId": d["subnet"]}}})).result()
out["vm_created"] = vm["properties"]["keylessNetwork"]
out["vm_got"] = compute.virtual_machines.get(d["group"], d["vm"])["properties"]["keylessNetwork"]
try:
    compute.virtual_machines.begin_update(d["group"], d["vm"], {"properties": {"keylessNetwork": {
        "publicIpAddress": "not-an-ip"}}}).result()
except HttpResponseError as exc:
    out["vm_bad"] = [exc.status_code, exc.error.code, exc.error.target]
site = web.web_apps.begin_create_or_update(d["group"], d["site"], Site(
    location="westeurope", kind="functionapp", virtual_network_subnet_id=d["subnet"])).result()
out["site_created"] = site.virtual_network_subnet_id
patched = web.web_apps.update(d["group"], d["site"], {"properties": {"virtualNetworkSubnetId": d["subnet2"],
    "keylessNetwork": {"publicIpAddress": "20.9.8.6"}}})
out["site_patched"] = [patched.virtual_network_subnet_id, patched["properties"]["keylessNetwork"]]
got = web.web_apps.get(d["group"], d["site"])
out["site_got"] = [got.virtual_network_subnet_id, got["properties"]["keylessNetwork"], got.kind]
try:
    web.web_apps.update(d["group"], d["site"], {"properties": {"virtualNetworkSubnetId": "/nope"}})
except HttpResponseError as exc:
    out["site_bad"] = [exc.status_code, exc.error.code]
print(json.dumps(out))
"""


def test_network_properties_round_trip_through_the_sdks(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    data = {
        "group": group,
        "vm": unique("vm"),
        "site": unique("fn"),
        "subnet": subnet(),
        "subnet2": subnet("v", "t"),
    }
    result = server.run_python(f"DATA = {json.dumps(json.dumps(data))}\n{SDK_PROGRAM}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    out = json.loads(result.stdout.strip().splitlines()[-1])
    network = {"publicIpAddress": "20.9.8.7", "subnetId": subnet()}
    assert out["vm_created"] == out["vm_got"] == network
    assert out["vm_bad"] == [400, "InvalidParameter", "properties.keylessNetwork.publicIpAddress"]
    assert out["site_created"] == subnet()
    assert out["site_patched"] == [subnet("v", "t"), {"publicIpAddress": "20.9.8.6"}]
    assert out["site_got"] == [subnet("v", "t"), {"publicIpAddress": "20.9.8.6"}, "functionapp"]
    assert out["site_bad"] == [400, "BadRequest"]
    # The refused writes changed nothing.
    assert (
        get_doc(server, vm_id(server, group, data["vm"]), VM_API)["properties"]["keylessNetwork"] == network
    )
    assert get_doc(server, site_id(server, group, data["site"]), WEB_API)["properties"][
        "virtualNetworkSubnetId"
    ] == (subnet("v", "t"))


# --- raw ARM: every refusal, nothing stored ----------------------------------------------------


@pytest.mark.parametrize(
    ("network", "target"),
    [
        ({"publicIpAddress": "20.1.2.300"}, "properties.keylessNetwork.publicIpAddress"),
        ({"publicIpAddress": ["20.1.2.3"]}, "properties.keylessNetwork.publicIpAddress"),
        ({"publicIpAddress": "1" * 5000}, "properties.keylessNetwork.publicIpAddress"),
        ({"subnetId": subnet() + "/more"}, "properties.keylessNetwork.subnetId"),
        ({"subnetId": subnet().replace("subnets", "subnetz")}, "properties.keylessNetwork.subnetId"),
        ({"subnetId": subnet().replace(SUB, "not-a-guid")}, "properties.keylessNetwork.subnetId"),
        ({"macAddress": "x"}, "properties.keylessNetwork.macAddress"),
        ("20.1.2.3", "properties.keylessNetwork"),
    ],
)
def test_bad_network_settings_are_refused_on_put_and_patch(
    server: KeylessServer, unique: Unique, network: Any, target: str
) -> None:
    group = create_group(server, unique)
    name = unique("vm")
    path = vm_id(server, group, name)
    with server.arm() as arm:
        body = {"location": "westeurope", "properties": {"keylessNetwork": network}}
        r = arm.put(path, params={"api-version": VM_API}, json=body)
        assert_arm_error(r, 400, "InvalidParameter")
        assert r.json()["error"]["target"] == target
        assert arm.get(path, params={"api-version": VM_API}).status_code == 404  # nothing created
        created = arm.put(path, params={"api-version": VM_API}, json={"location": "westeurope"})
        assert created.status_code in (200, 201), created.text
        r = arm.patch(path, params={"api-version": VM_API}, json={"properties": {"keylessNetwork": network}})
        assert_arm_error(r, 400, "InvalidParameter")
        after = arm.get(path, params={"api-version": VM_API})
    assert after.headers.get("etag") == created.headers.get("etag")
    assert "keylessNetwork" not in after.json()["properties"]


def test_site_subnets_must_agree(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    path = site_id(server, group, unique("fn"))
    with server.arm() as arm:
        r = arm.put(
            path,
            params={"api-version": WEB_API},
            json={
                "location": "westeurope",
                "kind": "functionapp",
                "properties": {
                    "virtualNetworkSubnetId": subnet(),
                    "keylessNetwork": {"subnetId": subnet("w")},
                },
            },
        )
        assert_arm_error(r, 400, "BadRequest")
        assert arm.get(path, params={"api-version": WEB_API}).status_code == 404
        # The same subnet in both spellings is fine.
        same = {"virtualNetworkSubnetId": subnet(), "keylessNetwork": {"subnetId": subnet().upper()}}
        r = arm.put(
            path, params={"api-version": WEB_API}, json={"location": "westeurope", "properties": same}
        )
        assert r.status_code == 200, r.text


# --- the origin the edge resolves --------------------------------------------------------------


@pytest.fixture
def platform(server: KeylessServer) -> Iterator[Platform]:
    """A second Platform on the running server's data directory and database: the real workload
    lookup the edge uses, reading what the server wrote."""
    built = Platform(settings_for(server.data_dir, database_url=server.database_url))
    yield built
    built.db.dispose()


def _proxied(token: str | None) -> dict[str, Any]:
    auth = None if token is None else "Basic " + base64.b64encode(f"workload:{token}".encode()).decode()
    return {
        "type": "http",
        "headers": [],
        "client": ("127.0.0.1", 40000),
        "state": {VIA_PROXY: True, PROXY_AUTHORIZATION: auth},
    }


def _eventually(resolver: OriginResolver, scope: dict[str, Any], expected: NetworkOrigin) -> None:
    # Another process's lookup cache lives at most 1 s (workload/service.py _LOOKUP_TTL).
    deadline = time.monotonic() + 5
    while (seen := resolver.origin(scope)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen == expected


def test_origin_follows_the_workloads_settings(
    server: KeylessServer, platform: Platform, unique: Unique
) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"))
    token = host_token(server, vm["id"], VM_API)
    resolver = OriginResolver(platform.workloads)
    scope = _proxied(token)
    # No settings: an origin no IP or subnet rule names.
    assert resolver.origin(scope) == NetworkOrigin(workload_id=vm["id"])
    cli_ok(
        server, "vm", "update", "-g", group, "-n", vm["name"], "--public-ip", "20.1.2.3", "--subnet", subnet()
    )
    _eventually(
        resolver,
        scope,
        NetworkOrigin(address=IPv4Address("20.1.2.3"), subnet_id=subnet().lower(), workload_id=vm["id"]),
    )
    # The host token is matched without regard to case, as everywhere.
    assert resolver.origin(_proxied(token.upper())).address == IPv4Address("20.1.2.3")
    # The proxy without a password is the local admin; a deleted workload's token is nowhere.
    assert resolver.origin(_proxied(None)) == LOCAL_HOST
    cli_ok(server, "vm", "delete", "-g", group, "-n", vm["name"])
    _eventually(resolver, scope, NetworkOrigin())


def test_site_origin_uses_virtual_network_subnet_id(
    server: KeylessServer, platform: Platform, unique: Unique
) -> None:
    group = create_group(server, unique)
    app = create_functionapp(server, group, unique("fn"))
    cli_ok(server, "functionapp", "update", "-g", group, "-n", app["name"], "--subnet", subnet("V", "S"))
    resolver = OriginResolver(platform.workloads)
    token = host_token(server, app["id"], WEB_API)
    _eventually(
        resolver, _proxied(token), NetworkOrigin(subnet_id=subnet("V", "S").lower(), workload_id=app["id"])
    )
    assert arm_get(server, app["id"], WEB_API).status_code == 200
