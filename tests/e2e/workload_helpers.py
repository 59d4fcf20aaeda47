"""What the workload tests share: workloads created with the `keyless` CLI, what the resource
manager says about them, raw calls to the identity endpoints, and token claim checks."""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.arm_helpers import rg_path, uami_path
from tests.keyless_server import KeylessServer

RG_API = "2024-03-01"
MSI_API = "2024-11-30"
VM_API = "2024-07-01"
WEB_API = "2024-04-01"
IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
IMDS_API = "2018-02-01"
LOGIN = "https://login.microsoftonline.com"
ARM = "https://management.azure.com/"
VAULT = "https://vault.azure.net"
STORAGE = "https://storage.azure.com/"
RESOURCES = (ARM, VAULT, STORAGE)
VM_TYPE = "Microsoft.Compute/virtualMachines"
SITE_TYPE = "Microsoft.Web/sites"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

Unique = Callable[[str], str]


# --- the CLI ---------------------------------------------------------------------------------


def cli_ok(srv: KeylessServer, *args: str) -> str:
    result = srv.cli(*args)
    assert result.returncode == 0, f"keyless {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def program(code: str, data: Any = None) -> str:
    """``code`` with ``DATA`` (a JSON string of ``data``) defined first."""
    return f"DATA = {json.dumps(json.dumps(data))}\n{code}"


def run_json(srv: KeylessServer, code: str, *run_args: str) -> Any:
    """`keyless run [run_args] -- python -c code`; the program prints one JSON document last."""
    result = srv.run_python(code, *run_args)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def parse_env_output(text: str) -> tuple[dict[str, str], set[str]]:
    """`keyless env` output: (exported variables, unset variables)."""
    exported: dict[str, str] = {}
    unset: set[str] = set()
    for line in text.splitlines():
        if line.startswith("unset "):
            unset.add(line.removeprefix("unset ").strip())
        elif line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            exported[key] = shlex.split(value)[0] if value else ""
    return exported, unset


# --- resources -------------------------------------------------------------------------------


group_id = rg_path
uami_id = uami_path


def vm_id(srv: KeylessServer, group: str, name: str) -> str:
    return f"{group_id(srv, group)}/providers/{VM_TYPE}/{name}"


def site_id(srv: KeylessServer, group: str, name: str) -> str:
    return f"{group_id(srv, group)}/providers/{SITE_TYPE}/{name}"


def claims_form(resource_id: str) -> str:
    """How Entra writes a resource id into xms_mirid / xms_az_rid."""
    return resource_id.replace("/resourceGroups/", "/resourcegroups/", 1)


def arm_get(srv: KeylessServer, path: str, api_version: str, token: str | None = None) -> httpx.Response:
    with srv.arm(token) as arm:
        return arm.get(path, params={"api-version": api_version})


def get_doc(srv: KeylessServer, path: str, api_version: str) -> dict[str, Any]:
    r = arm_get(srv, path, api_version)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def create_group(srv: KeylessServer, unique: Unique) -> str:
    name = unique("rg")
    cli_ok(srv, "group", "create", "-n", name, "-l", "westeurope")
    return name


def create_identity(srv: KeylessServer, group: str, name: str) -> dict[str, Any]:
    cli_ok(srv, "identity", "create", "-g", group, "-n", name)
    return get_doc(srv, uami_id(srv, group, name), MSI_API)


def create_vm(srv: KeylessServer, group: str, name: str, *assign: str) -> dict[str, Any]:
    """`keyless vm create`; ``assign`` empty: no identity, ("",): system-assigned, else the values."""
    args = ["vm", "create", "-g", group, "-n", name]
    if assign:
        args += ["--assign-identity", *[a for a in assign if a]]
    cli_ok(srv, *args)
    return get_doc(srv, vm_id(srv, group, name), VM_API)


def create_functionapp(srv: KeylessServer, group: str, name: str, *assign: str) -> dict[str, Any]:
    args = ["functionapp", "create", "-g", group, "-n", name]
    if assign:
        args += ["--assign-identity", *[a for a in assign if a]]
    cli_ok(srv, *args)
    return get_doc(srv, site_id(srv, group, name), WEB_API)


def host_token(srv: KeylessServer, workload_id: str, api_version: str, action: str = "listHostToken") -> str:
    with srv.arm() as arm:
        r = arm.post(f"{workload_id}/{action}", params={"api-version": api_version})
    assert r.status_code == 200, r.text
    return str(r.json()["hostToken"])


# --- the identity endpoints over raw HTTP -----------------------------------------------------


def proxy_auth(password: str) -> str:
    return "Basic " + base64.b64encode(f"workload:{password}".encode()).decode()


def imds_client(srv: KeylessServer, password: str | None) -> httpx.Client:
    """An HTTP client that reaches http://169.254.169.254 through Keyless's proxy, as a VM does."""
    headers = {"Proxy-Authorization": proxy_auth(password)} if password is not None else None
    return httpx.Client(proxy=httpx.Proxy(srv.proxy_url, headers=headers), trust_env=False, timeout=30)


def imds_get(
    srv: KeylessServer,
    password: str | None,
    resource: str = ARM,
    *,
    metadata: bool = True,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    query = {"api-version": IMDS_API, "resource": resource, **(query or {}), **params}
    sent = {"Metadata": "true"} if metadata else {}
    sent.update(headers or {})
    with imds_client(srv, password) as http:
        return http.get(IMDS_TOKEN_URL, params=query, headers=sent)


def assert_imds_error(r: httpx.Response, error: str, description: str, status: int = 400) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"error": error, "error_description": description}
    assert "access_token" not in r.text


def app_service_url(srv: KeylessServer) -> str:
    return f"http://127.0.0.1:{srv.http_port}/msi/token"


# --- tokens ----------------------------------------------------------------------------------


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def claims(token: str) -> dict[str, Any]:
    return _segment(token, 1)


def jwt_header(token: str) -> dict[str, Any]:
    return _segment(token, 0)


def published_kids(srv: KeylessServer) -> set[str]:
    """The key ids the authority's JWKS (from its v1 discovery document) publishes."""
    with srv.client() as http:
        config = http.get(f"{LOGIN}/{srv.tenant_id}/.well-known/openid-configuration")
        assert config.status_code == 200, config.text
        jwks = http.get(config.json()["jwks_uri"])
        assert jwks.status_code == 200, jwks.text
    return {key["kid"] for key in jwks.json()["keys"]}


def assert_mi_token(
    srv: KeylessServer,
    token: str,
    *,
    audience: str,
    object_id: str,
    client_id: str,
    mirid: str,
    az_rid: str | None,
    kids: set[str],
) -> None:
    """The v1 managed-identity claim set Entra issues (reference identity-endpoints.md §5)."""
    head, body = jwt_header(token), claims(token)
    assert head["alg"] == "RS256"
    assert head["kid"] in kids
    assert body["aud"] == audience
    assert body["iss"] == f"https://sts.windows.net/{srv.tenant_id}/"
    assert body["idp"] == body["iss"]
    assert body["tid"] == srv.tenant_id
    assert body["oid"] == object_id
    assert body["sub"] == object_id
    assert body["appid"] == client_id
    assert body["appidacr"] == "2"
    assert body["ver"] == "1.0"
    assert body["xms_mirid"] == claims_form(mirid)
    assert "/resourcegroups/" in body["xms_mirid"]
    if az_rid is None:
        assert "xms_az_rid" not in body
    else:
        assert body["xms_az_rid"] == claims_form(az_rid)
    assert body["iat"] == body["nbf"] < body["exp"]


def arm_probe(srv: KeylessServer, token: str, group: str) -> httpx.Response:
    """A resource-manager read with ``token``: what the token is worth at Keyless's ARM."""
    return arm_get(srv, group_id(srv, group), RG_API, token)


def assert_arm_accepts(srv: KeylessServer, token: str, group: str) -> None:
    """Authenticated: 200, or 403 AuthorizationFailed when role-based enforcement says no."""
    r = arm_probe(srv, token, group)
    if r.status_code == 200:
        assert r.json()["name"] == group
        return
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "AuthorizationFailed", r.text


def assert_arm_rejects(srv: KeylessServer, token: str, group: str) -> None:
    """Not authenticated any more: ARM's 401 for an invalid token, with its challenge."""
    r = arm_probe(srv, token, group)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken", r.text
    assert r.headers["www-authenticate"].startswith("Bearer ")


def exchange_assertion(srv: KeylessServer, client_id: str, assertion: str) -> httpx.Response:
    """A federated exchange at the token endpoint (client credentials with a jwt-bearer assertion)."""
    with srv.client() as http:
        return http.post(
            f"{LOGIN}/{srv.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "scope": "https://management.azure.com/.default",
                "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion,
            },
        )
