"""A workload gets tokens only for identities assigned to it, only while they are assigned and
exist; tokens of deleted identities die at once; host tokens never leak (issue 3, Security)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.workload_helpers import (
    MSI_API,
    SITE_TYPE,
    VM_API,
    VM_TYPE,
    WEB_API,
    Unique,
    app_service_url,
    arm_get,
    assert_arm_accepts,
    assert_arm_rejects,
    assert_imds_error,
    claims,
    create_functionapp,
    create_group,
    create_identity,
    create_vm,
    group_id,
    host_token,
    imds_get,
    parse_env_output,
    run_json,
    uami_id,
)
from tests.keyless_server import KeylessServer

NOT_FOUND = ("invalid_request", "Identity not found")


def _token(srv: KeylessServer, password: str, **params: str) -> str:
    r = imds_get(srv, password, query=params)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _patch_vm(srv: KeylessServer, vm: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.patch(vm["id"], params={"api-version": VM_API}, json={"identity": identity})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _delete(srv: KeylessServer, resource_id: str, api_version: str) -> None:
    with srv.arm() as arm:
        r = arm.delete(resource_id, params={"api-version": api_version})
    assert r.status_code in (200, 204), r.text
    assert arm_get(srv, resource_id, api_version).status_code == 404


def test_another_workloads_host_token_gets_nothing_of_this_vm(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    mine = create_vm(server, group, unique("vm"), f"[system],{uami['name']}")
    theirs = create_vm(server, group, unique("vm"), "")
    their_password = host_token(server, theirs["id"], VM_API)
    # Their own system identity works: the password is a good one...
    assert claims(_token(server, their_password))["oid"] == theirs["identity"]["principalId"]
    # ...but names none of my identities, by any selector.
    for params in (
        {"client_id": uami["properties"]["clientId"]},
        {"object_id": uami["properties"]["principalId"]},
        {"msi_res_id": uami["id"]},
        {"object_id": mine["identity"]["principalId"]},
    ):
        assert_imds_error(imds_get(server, their_password, query=params), *NOT_FOUND)


def test_guessed_proxy_passwords_get_nothing(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    real = host_token(server, vm["id"], VM_API)
    for guess in (
        vm["name"],
        vm["id"],
        vm["properties"]["vmId"],
        vm["identity"]["principalId"],
        real[:-1],
        real[:-1] + ("0" if real[-1] != "0" else "1"),  # one character off
        str(uuid.uuid4()),
        "x" * 300,
    ):
        assert_imds_error(imds_get(server, guess), *NOT_FOUND)
    assert imds_get(server, real).status_code == 200
    # Case is no part of the secret (@azure/identity 4.x lower-cases the IMDS URL; see hosts.py).
    assert imds_get(server, real.upper()).status_code == 200


def test_removed_user_assigned_identity_is_not_found(server: KeylessServer, unique: Unique) -> None:
    """Removed from the VM (PATCH identity): no token, not even the one cached before."""
    group = create_group(server, unique)
    kept = create_identity(server, group, unique("id"))
    removed = create_identity(server, group, unique("id"))
    vm = create_vm(server, group, unique("vm"), f"{kept['name']},{removed['name']}")
    password = host_token(server, vm["id"], VM_API)
    cached = _token(server, password, client_id=removed["properties"]["clientId"])

    after = _patch_vm(server, vm, {"type": "UserAssigned", "userAssignedIdentities": {removed["id"]: None}})
    assert [k.lower() for k in after["identity"]["userAssignedIdentities"]] == [kept["id"].lower()]
    for params in (
        {"client_id": removed["properties"]["clientId"]},
        {"object_id": removed["properties"]["principalId"]},
        {"msi_res_id": removed["id"]},
    ):
        assert_imds_error(imds_get(server, password, query=params), *NOT_FOUND)
    assert (
        claims(_token(server, password, client_id=kept["properties"]["clientId"]))["oid"]
        == (kept["properties"]["principalId"])
    )
    # The identity itself still exists (it was only unassigned): its earlier token stays valid.
    assert_arm_accepts(server, cached, group)


def test_deleted_vm(server: KeylessServer, unique: Unique) -> None:
    """`keyless run --as` a deleted VM is a clear error; its old host token gets nothing."""
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    password = host_token(server, vm["id"], VM_API)
    assert imds_get(server, password).status_code == 200
    _delete(server, vm["id"], VM_API)

    for target in (vm["name"], vm["id"]):
        result = server.run_python("print('ran')", "--as", target)
        assert result.returncode == 1, result
        assert "ran" not in result.stdout
        compact = "".join(result.stderr.split())  # (the console wraps long lines)
        assert "itmayhavebeendeleted" in compact, result.stderr
        assert target in compact, result.stderr
    assert_imds_error(imds_get(server, password), *NOT_FOUND)


def test_regenerated_host_token(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    old = host_token(server, vm["id"], VM_API)
    assert imds_get(server, old).status_code == 200
    new = host_token(server, vm["id"], VM_API, action="regenerateHostToken")
    assert new != old
    assert_imds_error(imds_get(server, old), *NOT_FOUND)
    assert imds_get(server, new).status_code == 200
    # listHostToken now hands out the new one, and `keyless run --as` uses it.
    assert host_token(server, vm["id"], VM_API) == new
    code = """
import json
from azure.identity import ManagedIdentityCredential
print(json.dumps(ManagedIdentityCredential().get_token("https://management.azure.com/.default").token))
"""
    token = run_json(server, code, "--as", vm["name"])
    assert claims(token)["oid"] == vm["identity"]["principalId"]


def test_regenerated_function_app_header(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    app = create_functionapp(server, group, unique("fn"), "")
    old = host_token(server, app["id"], WEB_API)
    new = host_token(server, app["id"], WEB_API, action="regenerateHostToken")
    params = {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
    refused = httpx.get(
        app_service_url(server), params=params, headers={"X-IDENTITY-HEADER": old}, trust_env=False
    )
    assert (refused.status_code, refused.content) == (403, b"")
    accepted = httpx.get(
        app_service_url(server), params=params, headers={"X-IDENTITY-HEADER": new}, trust_env=False
    )
    assert accepted.status_code == 200, accepted.text


def test_removing_the_system_assigned_identity_kills_its_tokens(
    server: KeylessServer, unique: Unique
) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    password = host_token(server, vm["id"], VM_API)
    issued = _token(server, password)
    assert_arm_accepts(server, issued, group)

    after = _patch_vm(server, vm, {"type": "None"})
    assert "principalId" not in after.get("identity", {}), after
    assert_arm_rejects(server, issued, group)
    assert_imds_error(imds_get(server, password), *NOT_FOUND)
    # Turned on again: a new principal, and the old token stays dead.
    again = _patch_vm(server, vm, {"type": "SystemAssigned"})
    assert again["identity"]["principalId"] != vm["identity"]["principalId"]
    fresh = _token(server, password)
    assert claims(fresh)["oid"] == again["identity"]["principalId"]
    assert_arm_accepts(server, fresh, group)
    assert_arm_rejects(server, issued, group)


def test_deleting_the_vm_kills_its_system_assigned_tokens(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    issued = _token(server, host_token(server, vm["id"], VM_API))
    assert_arm_accepts(server, issued, group)
    _delete(server, vm["id"], VM_API)
    assert_arm_rejects(server, issued, group)


def test_deleting_a_user_assigned_identity_kills_its_tokens(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    vm = create_vm(server, group, unique("vm"), uami["name"])
    password = host_token(server, vm["id"], VM_API)
    issued = _token(server, password, client_id=uami["properties"]["clientId"])
    assert_arm_accepts(server, issued, group)
    _delete(server, uami_id(server, group, uami["name"]), MSI_API)
    assert_arm_rejects(server, issued, group)
    assert_imds_error(imds_get(server, password, client_id=uami["properties"]["clientId"]), *NOT_FOUND)


LEAK_PROGRAM = """
import json, os
from azure.identity import ManagedIdentityCredential
out = {"mgmt": ManagedIdentityCredential().get_token("https://management.azure.com/.default").token}
# A bad call too: errors must not echo the host token either.
try:
    ManagedIdentityCredential(client_id="00000000-0000-0000-0000-000000000000").get_token(
        "https://vault.azure.net/.default")
except Exception as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def test_host_tokens_never_appear_in_logs_or_responses(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    app = create_functionapp(server, group, unique("fn"), "")
    # Every way a host token travels: proxy password, direct IMDS URL path, App Service header.
    proxied = run_json(server, LEAK_PROGRAM, "--as", vm["name"])
    direct = run_json(server, LEAK_PROGRAM, "--as", vm["name"], "--direct-imds")
    site = run_json(server, LEAK_PROGRAM, "--as", app["name"])
    vm_password = host_token(server, vm["id"], VM_API)
    app_header = host_token(server, app["id"], WEB_API)
    exported, _ = parse_env_output(server.cli("env", "--as", app["name"]).stdout)
    assert exported["IDENTITY_HEADER"] == app_header

    for secret in (vm_password, app_header):
        for out in (proxied, direct, site):
            assert secret not in str(out)
        # The resource manager's views of the workloads never include it.
        for resource_id, api in ((vm["id"], VM_API), (app["id"], WEB_API)):
            assert secret not in arm_get(server, resource_id, api).text
        for listing, api in (
            (f"/subscriptions/{server.subscription_id}/providers/{VM_TYPE}", VM_API),
            (f"{group_id(server, group)}/providers/{SITE_TYPE}", WEB_API),
        ):
            listed = arm_get(server, listing, api)
            assert listed.status_code == 200, listed.text
            assert listed.json()["value"]
            assert secret not in listed.text
        # Nor does anything the server logged.
        assert secret not in server.log()
