"""Function apps: the App Service flavour of managed identity (IDENTITY_ENDPOINT +
IDENTITY_HEADER, and the legacy MSI_ENDPOINT/MSI_SECRET) under `keyless run --as`, and its
wire details over raw HTTP (reference identity-endpoints.md §2)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.workload_helpers import (
    VM_API,
    WEB_API,
    Unique,
    app_service_url,
    assert_arm_accepts,
    assert_imds_error,
    assert_mi_token,
    claims,
    claims_form,
    cli_ok,
    create_functionapp,
    create_group,
    create_identity,
    create_vm,
    host_token,
    imds_get,
    parse_env_output,
    program,
    published_kids,
    run_json,
)
from tests.keyless_server import KeylessServer

PROGRAM = """
import asyncio, json, os
import msal, requests
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import DefaultAzureCredential as AioDefault, ManagedIdentityCredential as AioManaged

uami = json.loads(DATA)
out = {"env": {k: os.environ.get(k) for k in (
    "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")}}
vault, arm = "https://vault.azure.net/.default", "https://management.azure.com/.default"
out["system mi"] = ManagedIdentityCredential().get_token(vault).token
out["system dac"] = DefaultAzureCredential().get_token(arm).token
out["user mi client_id"] = ManagedIdentityCredential(client_id=uami["clientId"]).get_token(vault).token
out["user mi object_id"] = ManagedIdentityCredential(
    identity_config={"object_id": uami["principalId"]}).get_token(vault).token
out["user mi resource_id"] = ManagedIdentityCredential(
    identity_config={"resource_id": uami["id"]}).get_token(vault).token

async def main():
    async with AioManaged() as c:
        out["system aio"] = (await c.get_token(vault)).token
    async with AioDefault() as c:
        out["system aio-dac"] = (await c.get_token(arm)).token
    async with AioManaged(client_id=uami["clientId"]) as c:
        out["user aio client_id"] = (await c.get_token(vault)).token
    async with AioManaged(identity_config={"object_id": uami["principalId"]}) as c:
        out["user aio object_id"] = (await c.get_token(vault)).token
    async with AioManaged(identity_config={"resource_id": uami["id"]}) as c:
        out["user aio resource_id"] = (await c.get_token(vault)).token

asyncio.run(main())
session = requests.Session()
for label, identity in (
    ("system msal", msal.SystemAssignedManagedIdentity()),
    ("user msal client_id", msal.UserAssignedManagedIdentity(client_id=uami["clientId"])),
    ("user msal object_id", msal.UserAssignedManagedIdentity(object_id=uami["principalId"])),
    ("user msal resource_id", msal.UserAssignedManagedIdentity(resource_id=uami["id"])),
):
    result = msal.ManagedIdentityClient(identity, http_client=session).acquire_token_for_client(
        resource="https://vault.azure.net")
    assert "access_token" in result, result
    out[label] = result["access_token"]
print(json.dumps(out))
"""


def _selectors(uami: dict[str, Any]) -> dict[str, str]:
    props = uami["properties"]
    return {"id": uami["id"], "clientId": props["clientId"], "principalId": props["principalId"]}


def test_function_app_system_and_user_assigned(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    app = create_functionapp(server, group, unique("fn"), f"[system],{uami['name']}")
    assert app["kind"] == "functionapp"
    assert app["identity"]["type"].replace(" ", "") == "SystemAssigned,UserAssigned"

    out = run_json(server, program(PROGRAM, _selectors(uami)), "--as", app["name"])
    env = out.pop("env")
    assert env["IDENTITY_ENDPOINT"] == app_service_url(server)
    assert env["IDENTITY_HEADER"]
    assert env["AZURE_CLIENT_ID"] is env["AZURE_CLIENT_SECRET"] is env["AZURE_TENANT_ID"] is None

    # The system-assigned identity's client id, as the endpoint reports it.
    raw = httpx.get(
        app_service_url(server),
        params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
        headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
        trust_env=False,
    )
    assert raw.status_code == 200, raw.text
    system_client_id = raw.json()["client_id"]

    kids = published_kids(server)
    assert len(out) == 14
    for label, token in out.items():
        system = label.startswith("system")
        audience = "https://management.azure.com" if "dac" in label else "https://vault.azure.net"
        assert_mi_token(
            server,
            token,
            audience=audience,
            object_id=app["identity"]["principalId"] if system else uami["properties"]["principalId"],
            client_id=system_client_id if system else uami["properties"]["clientId"],
            mirid=app["id"] if system else uami["id"],
            az_rid=None if system else app["id"],
            kids=kids,
        )
        if "dac" in label:
            assert_arm_accepts(server, token, group)


UNSELECTED = """
import asyncio, json
import msal, requests
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AioManaged

uami = json.loads(DATA)
out = {}
try:
    ManagedIdentityCredential().get_token("https://vault.azure.net/.default")
    out["sync"] = "issued"
except Exception as exc:
    out["sync"] = str(exc)

async def main():
    async with AioManaged() as c:
        try:
            await c.get_token("https://vault.azure.net/.default")
            out["aio"] = "issued"
        except Exception as exc:
            out["aio"] = str(exc)

asyncio.run(main())
result = msal.ManagedIdentityClient(
    msal.SystemAssignedManagedIdentity(), http_client=requests.Session()
).acquire_token_for_client(resource="https://vault.azure.net")
out["msal"] = json.dumps(result)
out["selected"] = ManagedIdentityCredential(client_id=uami["clientId"]).get_token(
    "https://vault.azure.net/.default").token
print(json.dumps(out))
"""


def test_function_app_with_only_a_user_assigned_identity(server: KeylessServer, unique: Unique) -> None:
    """No client_id and no system-assigned identity: App Service's 400, which every client reports."""
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    app = create_functionapp(server, group, unique("fn"), uami["id"])
    assert app["identity"]["type"] == "UserAssigned"
    out = run_json(server, program(UNSELECTED, _selectors(uami)), "--as", app["id"])
    for flavour in ("sync", "aio", "msal"):
        assert "Unable to load the proper Managed Identity." in out[flavour], (flavour, out[flavour])
        assert "eyJ" not in out[flavour]
    assert_mi_token(
        server,
        out["selected"],
        audience="https://vault.azure.net",
        object_id=uami["properties"]["principalId"],
        client_id=uami["properties"]["clientId"],
        mirid=uami["id"],
        az_rid=app["id"],
        kids=published_kids(server),
    )


# --- the wire, over raw HTTP --------------------------------------------------------------------


@pytest.fixture(scope="module")
def function_app(server: KeylessServer) -> dict[str, Any]:
    """A Function app with a system- and a user-assigned identity, and what `keyless env --as` gives it."""
    suffix = uuid.uuid4().hex[:8]
    group = f"rgfn{suffix}"
    cli_ok(server, "group", "create", "-n", group)
    uami = create_identity(server, group, f"idfn{suffix}")
    other = create_identity(server, group, f"idother{suffix}")
    app = create_functionapp(server, group, f"fn{suffix}", f"[system],{uami['name']}")
    exported, _ = parse_env_output(cli_ok(server, "env", "--as", app["name"]))
    return {"app": app, "uami": uami, "other": other, "env": exported, "group": group}


def _get(url: str, params: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    return httpx.get(url, params=params, headers=headers, trust_env=False)


def _claims_of(body: dict[str, Any]) -> dict[str, Any]:
    return claims(body["access_token"])


def _assert_system_token(server: KeylessServer, body: dict[str, Any], app: dict[str, Any]) -> dict[str, Any]:
    assert_mi_token(
        server,
        body["access_token"],
        audience=body["resource"],
        object_id=app["identity"]["principalId"],
        client_id=body["client_id"],
        mirid=app["id"],
        az_rid=None,
        kids=published_kids(server),
    )
    return claims(body["access_token"])


def test_app_service_response_shape(server: KeylessServer, function_app: dict[str, Any]) -> None:
    env = function_app["env"]
    before = int(time.time())
    r = _get(
        env["IDENTITY_ENDPOINT"],
        {"api-version": "2019-08-01", "resource": "https://storage.azure.com/"},
        {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id", "not_before"}
    assert "expires_in" not in body
    assert all(isinstance(v, str) for v in body.values()), body
    assert body["resource"] == "https://storage.azure.com/"
    assert body["token_type"] == "Bearer"
    # expires_on is epoch seconds as a string, the token's exp.
    assert re.fullmatch(r"\d+", body["expires_on"])
    token_claims = _assert_system_token(server, body, function_app["app"])
    assert int(body["expires_on"]) == token_claims["exp"] >= before + 86000
    assert int(body["not_before"]) == token_claims["nbf"]


def test_app_service_legacy_2017_09_01(server: KeylessServer, function_app: dict[str, Any]) -> None:
    """MSI_ENDPOINT/MSI_SECRET: header `secret`, user-assigned chosen by `clientid`, and
    expires_on as a date string."""
    env, uami = function_app["env"], function_app["uami"]
    assert env["MSI_ENDPOINT"] == env["IDENTITY_ENDPOINT"]
    params = {"api-version": "2017-09-01", "resource": "https://vault.azure.net"}
    r = _get(env["MSI_ENDPOINT"], params, {"secret": env["MSI_SECRET"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \+00:00", body["expires_on"]), body["expires_on"]
    exp = _claims_of(body)["exp"]
    assert time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(exp)) == body["expires_on"]
    assert _claims_of(body)["oid"] == function_app["app"]["identity"]["principalId"]

    user = _get(
        env["MSI_ENDPOINT"],
        {**params, "clientid": uami["properties"]["clientId"]},
        {"secret": env["MSI_SECRET"]},
    )
    assert user.status_code == 200, user.text
    assert user.json()["client_id"] == uami["properties"]["clientId"]
    assert _claims_of(user.json())["oid"] == uami["properties"]["principalId"]
    unassigned = _get(
        env["MSI_ENDPOINT"],
        {**params, "clientid": function_app["other"]["properties"]["clientId"]},
        {"secret": env["MSI_SECRET"]},
    )
    assert unassigned.status_code == 400, unassigned.text
    assert unassigned.json()["message"] == "Unable to load the proper Managed Identity."
    # The legacy variant authenticates with `secret` only; X-IDENTITY-HEADER alone is refused.
    wrong = _get(env["MSI_ENDPOINT"], params, {"X-IDENTITY-HEADER": env["MSI_SECRET"]})
    assert (wrong.status_code, wrong.content) == (403, b"")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-IDENTITY-HEADER": "wrong"},
        {"X-IDENTITY-HEADER": ""},
        {"secret": "from-the-env"},  # the legacy header with the current api-version
    ],
    ids=["missing", "wrong", "empty", "legacy-header"],
)
def test_app_service_bad_identity_header_is_403_empty(
    server: KeylessServer, function_app: dict[str, Any], headers: dict[str, str]
) -> None:
    env = function_app["env"]
    sent = {k: env["IDENTITY_HEADER"] if v == "from-the-env" else v for k, v in headers.items()}
    r = _get(
        env["IDENTITY_ENDPOINT"], {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}, sent
    )
    assert r.status_code == 403
    assert r.content == b""


def test_app_service_rejects_a_vm_host_token(server: KeylessServer, function_app: dict[str, Any]) -> None:
    """A VM's host token is not an App Service identity header."""
    vm = create_vm(server, function_app["group"], f"vm{uuid.uuid4().hex[:8]}", "")
    r = _get(
        function_app["env"]["IDENTITY_ENDPOINT"],
        {"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
        {"X-IDENTITY-HEADER": host_token(server, vm["id"], VM_API)},
    )
    assert (r.status_code, r.content) == (403, b"")


@pytest.mark.parametrize("selector", ["client_id", "principal_id", "object_id", "mi_res_id"])
def test_app_service_unassigned_identity_is_400(
    server: KeylessServer, function_app: dict[str, Any], selector: str
) -> None:
    """An identity that exists but is not assigned to this app: App Service's documented 400."""
    env, other = function_app["env"], function_app["other"]
    value = {
        "client_id": other["properties"]["clientId"],
        "principal_id": other["properties"]["principalId"],
        "object_id": other["properties"]["principalId"],
        "mi_res_id": other["id"],
    }[selector]
    r = _get(
        env["IDENTITY_ENDPOINT"],
        {"api-version": "2019-08-01", "resource": "https://vault.azure.net", selector: value},
        {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"statusCode", "message", "correlationId"}
    assert body["statusCode"] == 400
    assert body["message"] == "Unable to load the proper Managed Identity."
    assert uuid.UUID(body["correlationId"])
    assert r.headers["x-correlation-id"] == body["correlationId"]
    assert r.headers["server"] == "Kestrel"
    assert "access_token" not in r.text


def test_app_service_selectors_pick_the_user_assigned_identity(
    server: KeylessServer, function_app: dict[str, Any]
) -> None:
    env, uami = function_app["env"], function_app["uami"]
    for selector, value in (
        ("client_id", uami["properties"]["clientId"]),
        ("principal_id", uami["properties"]["principalId"]),
        ("object_id", uami["properties"]["principalId"]),
        ("mi_res_id", uami["id"]),
    ):
        r = _get(
            env["IDENTITY_ENDPOINT"],
            {"api-version": "2019-08-01", "resource": "https://management.azure.com/", selector: value},
            {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
        )
        assert r.status_code == 200, (selector, r.text)
        body = r.json()
        assert body["client_id"] == uami["properties"]["clientId"]
        token_claims = _claims_of(body)
        assert token_claims["oid"] == uami["properties"]["principalId"]
        assert token_claims["xms_az_rid"] == claims_form(function_app["app"]["id"])
        assert_arm_accepts(server, body["access_token"], function_app["group"])


def test_function_app_host_token_is_not_a_vm(server: KeylessServer, function_app: dict[str, Any]) -> None:
    """A Function app's header is refused at IMDS: it is not a VM."""
    password = host_token(server, function_app["app"]["id"], WEB_API)
    assert_imds_error(imds_get(server, password), "invalid_request", "Identity not found")
