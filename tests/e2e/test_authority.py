"""The token authority over the wire: discovery, JWKS, the token endpoints, claims and AADSTS errors."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from jwt.algorithms import RSAAlgorithm

from tests.keyless_server import KeylessServer

LOGIN = "https://login.microsoftonline.com"
ARM_SCOPE = "https://management.azure.com/.default"


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _sig = token.split(".")
    return json.loads(_b64url_decode(head)), json.loads(_b64url_decode(payload))


def _token(http: httpx.Client, srv: KeylessServer, v1: bool = False, **form: str | None) -> httpx.Response:
    path = "oauth2/token" if v1 else "oauth2/v2.0/token"
    tenant = form.pop("tenant", None) or srv.tenant_id
    data: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": srv.admin["clientId"],
        "client_secret": srv.admin["clientSecret"],
    }
    data.update(form)
    return http.post(f"{LOGIN}/{tenant}/{path}", data={k: v for k, v in data.items() if v is not None})


def _assert_aadsts(r: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]
    assert r.headers["cache-control"] == "no-store, no-cache"
    assert "access_token" not in body
    return body


# --- discovery ---------------------------------------------------------------------------


def test_openid_configuration_v2(server: KeylessServer) -> None:
    tid = server.tenant_id
    with server.client() as http:
        r = http.get(f"{LOGIN}/{tid}/v2.0/.well-known/openid-configuration")
    assert r.status_code == 200
    doc = r.json()
    assert doc["issuer"] == f"https://login.microsoftonline.com/{tid}/v2.0"
    assert doc["token_endpoint"] == f"{LOGIN}/{tid}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{LOGIN}/{tid}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{LOGIN}/{tid}/discovery/v2.0/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "client_secret_post" in doc["token_endpoint_auth_methods_supported"]
    assert doc["cloud_instance_name"] == "microsoftonline.com"


def test_openid_configuration_v1(server: KeylessServer) -> None:
    tid = server.tenant_id
    with server.client() as http:
        r = http.get(f"{LOGIN}/{tid}/.well-known/openid-configuration")
    assert r.status_code == 200
    doc = r.json()
    assert doc["issuer"] == f"https://sts.windows.net/{tid}/"
    assert doc["token_endpoint"] == f"{LOGIN}/{tid}/oauth2/token"
    assert doc["authorization_endpoint"] == f"{LOGIN}/{tid}/oauth2/authorize"
    assert doc["jwks_uri"] == f"{LOGIN}/common/discovery/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


def test_openid_configuration_by_domain_name_and_common(server: KeylessServer) -> None:
    with server.client() as http:
        common = http.get(f"{LOGIN}/common/v2.0/.well-known/openid-configuration")
        assert common.status_code == 200
        assert common.json()["issuer"] == "https://login.microsoftonline.com/{tenantid}/v2.0"
        # The tenant's id in upper case is the same tenant.
        upper = http.get(f"{LOGIN}/{server.tenant_id.upper()}/v2.0/.well-known/openid-configuration")
    assert upper.status_code == 200
    assert upper.json()["issuer"] == f"https://login.microsoftonline.com/{server.tenant_id}/v2.0"


@pytest.mark.parametrize("v2", [True, False])
def test_openid_configuration_unknown_tenant(server: KeylessServer, v2: bool) -> None:
    prefix = "v2.0/" if v2 else ""
    with server.client() as http:
        r = http.get(f"{LOGIN}/00000000-0000-0000-0000-00000000dead/{prefix}.well-known/openid-configuration")
    body = _assert_aadsts(r, 400, "invalid_tenant", 90002)
    assert "Tenant '00000000-0000-0000-0000-00000000dead' not found" in body["error_description"]


def test_jwks_has_public_parts_only(server: KeylessServer) -> None:
    with server.client() as http:
        v2 = http.get(f"{LOGIN}/{server.tenant_id}/discovery/v2.0/keys")
        v1 = http.get(f"{LOGIN}/common/discovery/keys")
    assert v2.status_code == 200 and v1.status_code == 200
    assert v1.json() == v2.json()
    keys = v2.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA" and key["use"] == "sig"
        assert key["kid"] and key["x5t"] == key["kid"]
        assert key["n"] and key["e"] == "AQAB"
        assert key["x5c"]
        for private in ("d", "p", "q", "dp", "dq", "qi"):
            assert private not in key
        # x5t is the SHA-1 thumbprint of the certificate, and the certificate carries the key.
        der = base64.b64decode(key["x5c"][0])
        digest = hashes.Hash(hashes.SHA1())  # noqa: S303 (x5t is defined as SHA-1)
        digest.update(der)
        assert base64.urlsafe_b64encode(digest.finalize()).rstrip(b"=").decode() == key["x5t"]


# --- token endpoints ----------------------------------------------------------------------


def _jwks(http: httpx.Client, srv: KeylessServer) -> dict[str, Any]:
    keys = http.get(f"{LOGIN}/{srv.tenant_id}/discovery/v2.0/keys").json()["keys"]
    return {k["kid"]: k for k in keys}


def test_token_v2_claims_and_signature(server: KeylessServer) -> None:
    with server.client() as http:
        before = int(time.time())
        r = _token(http, server, scope=ARM_SCOPE)
        after = int(time.time())
        jwks = _jwks(http, server)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and 3500 <= body["expires_in"] <= 3599
    assert isinstance(body["ext_expires_in"], int)
    assert r.headers["cache-control"] == "no-store, no-cache"

    header, claims = _segments(body["access_token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] in jwks and header["x5t"] == header["kid"]
    public = RSAAlgorithm.from_jwk(jwks[header["kid"]])
    verified = jwt.decode(
        body["access_token"], public, algorithms=["RS256"], audience="https://management.azure.com"
    )
    assert verified == claims

    tid = server.tenant_id
    assert claims["aud"] == "https://management.azure.com"
    assert claims["iss"] == f"https://sts.windows.net/{tid}/"
    assert claims["idp"] == claims["iss"]
    assert before <= claims["iat"] <= after
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 3599
    assert claims["appid"] == server.admin["clientId"]
    assert claims["appidacr"] == "1"
    assert claims["oid"] == server.admin["objectId"]
    assert claims["sub"] == claims["oid"]
    assert claims["tid"] == tid
    assert claims["ver"] == "1.0"
    assert isinstance(claims["uti"], str) and claims["uti"]
    assert "xms_mirid" not in claims  # only managed identities carry it
    # Every token is unique.
    with server.client() as http:
        again = _token(http, server, scope=ARM_SCOPE).json()["access_token"]
    assert _segments(again)[1]["uti"] != claims["uti"]


def test_token_v1_resource_and_string_fields(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, v1=True, resource="https://management.core.windows.net/")
    assert r.status_code == 200, r.text
    body = r.json()
    for key in ("expires_in", "ext_expires_in", "expires_on", "not_before"):
        assert isinstance(body[key], str) and body[key].isdigit(), key
    assert body["resource"] == "https://management.core.windows.net/"
    assert body["token_type"] == "Bearer"
    _, claims = _segments(body["access_token"])
    assert claims["aud"] == "https://management.core.windows.net/"
    assert int(body["expires_on"]) == claims["exp"]
    assert int(body["not_before"]) == claims["nbf"]
    # The v1 token works at the resource manager.
    with server.arm(body["access_token"]) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200


def test_token_with_basic_auth_and_tenant_domain(server: KeylessServer) -> None:
    with server.client() as http:
        doc = http.get(f"{LOGIN}/{server.tenant_id}/v2.0/.well-known/openid-configuration").json()
        assert doc["issuer"]
        r = http.post(
            f"{LOGIN}/{server.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "scope": ARM_SCOPE},
            auth=(server.admin["clientId"], server.admin["clientSecret"]),
        )
    assert r.status_code == 200, r.text


def test_unknown_client(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, client_id="11111111-2222-3333-4444-555555555555", scope=ARM_SCOPE)
    body = _assert_aadsts(r, 400, "unauthorized_client", 700016)
    assert (
        "Application with identifier '11111111-2222-3333-4444-555555555555' was not found"
        in (body["error_description"])
    )


def test_bad_secret(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, client_secret="not-the-secret", scope=ARM_SCOPE)
    body = _assert_aadsts(r, 401, "invalid_client", 7000215)
    assert server.admin["clientId"] in body["error_description"]


def test_missing_secret(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, client_secret=None, scope=ARM_SCOPE)
    _assert_aadsts(r, 401, "invalid_client", 7000216)


def test_unknown_tenant_on_token_endpoint(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, tenant="00000000-0000-0000-0000-00000000beef", scope=ARM_SCOPE)
    # The token endpoint says invalid_request (the discovery document says invalid_tenant).
    _assert_aadsts(r, 400, "invalid_request", 90002)


@pytest.mark.parametrize(
    "scope",
    [
        "https://management.azure.com/user_impersonation",
        "https://management.azure.com",
        "openid profile offline_access",
    ],
)
def test_bad_scope(server: KeylessServer, scope: str) -> None:
    with server.client() as http:
        r = _token(http, server, scope=scope)
    body = _assert_aadsts(r, 400, "invalid_scope", 1002012)
    assert "Client credential flows must have a scope value with /.default" in body["error_description"]


@pytest.mark.parametrize("v1", [False, True])
def test_unknown_resource(server: KeylessServer, v1: bool) -> None:
    resource = "https://nothing-here.example.com"
    with server.client() as http:
        if v1:
            r = _token(http, server, v1=True, resource=resource)
        else:
            r = _token(http, server, scope=f"{resource}/.default")
    body = _assert_aadsts(r, 400, "invalid_resource", 500011)
    assert f"The resource principal named {resource} was not found" in body["error_description"]


def test_missing_grant_type(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, grant_type=None, scope=ARM_SCOPE)
    body = _assert_aadsts(r, 400, "invalid_request", 900144)
    assert "'grant_type'" in body["error_description"]


@pytest.mark.parametrize("v1", [False, True])
def test_missing_scope_or_resource(server: KeylessServer, v1: bool) -> None:
    with server.client() as http:
        r = _token(http, server, v1=v1)
    body = _assert_aadsts(r, 400, "invalid_request", 900144)
    assert ("'resource'" if v1 else "'scope'") in body["error_description"]


def test_unsupported_grant_type(server: KeylessServer) -> None:
    with server.client() as http:
        r = _token(http, server, grant_type="password", scope=ARM_SCOPE)
    body = _assert_aadsts(r, 400, "unsupported_grant_type", 70003)
    assert "'password'" in body["error_description"]


def test_token_endpoint_rejects_get(server: KeylessServer) -> None:
    with server.client() as http:
        r = http.get(f"{LOGIN}/{server.tenant_id}/oauth2/v2.0/token")
    assert r.status_code == 405
    assert r.json()["error"] == "invalid_request"


def test_instance_discovery(server: KeylessServer) -> None:
    with server.client() as http:
        r = http.get(
            f"{LOGIN}/common/discovery/instance",
            params={"api-version": "1.1", "authorization_endpoint": f"{LOGIN}/common/oauth2/authorize"},
        )
    assert r.status_code == 200
    body = r.json()
    assert body["tenant_discovery_endpoint"].startswith(LOGIN)
    assert "login.microsoftonline.com" in body["metadata"][0]["aliases"]


# --- real SDKs through the proxy -----------------------------------------------------------

MSAL_PROGRAM = """
import json, os, msal
authority = "https://login.microsoftonline.com/" + os.environ["AZURE_TENANT_ID"]
good = msal.ConfidentialClientApplication(
    os.environ["AZURE_CLIENT_ID"], client_credential=os.environ["AZURE_CLIENT_SECRET"], authority=authority)
ok = good.acquire_token_for_client(scopes=["https://management.azure.com/.default"])
bad = msal.ConfidentialClientApplication(
    os.environ["AZURE_CLIENT_ID"], client_credential="wrong", authority=authority)
err = bad.acquire_token_for_client(scopes=["https://management.azure.com/.default"])
print(json.dumps({"ok": ok, "err": err}))
"""


def test_msal_confidential_client_unchanged(server: KeylessServer) -> None:
    result = server.run_python(MSAL_PROGRAM)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ok"]["token_type"] == "Bearer", out
    _, claims = _segments(out["ok"]["access_token"])
    assert claims["appid"] == server.admin["clientId"]
    assert out["err"]["error"] == "invalid_client"
    assert out["err"]["error_codes"] == [7000215]


AZURE_IDENTITY_PROGRAM = """
import json, os
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, DefaultAzureCredential
tid, cid, secret = os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"]
tok = ClientSecretCredential(tid, cid, secret).get_token("https://management.azure.com/.default")
dac = DefaultAzureCredential().get_token("https://vault.azure.net/.default")
try:
    ClientSecretCredential(tid, cid, "wrong").get_token("https://management.azure.com/.default")
    failure = None
except ClientAuthenticationError as exc:
    failure = str(exc)
print(json.dumps({"csc": tok.token, "expires_on": tok.expires_on, "dac": dac.token, "failure": failure}))
"""


def test_azure_identity_credentials_unchanged(server: KeylessServer) -> None:
    result = server.run_python(AZURE_IDENTITY_PROGRAM)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    _, csc = _segments(out["csc"])
    _, dac = _segments(out["dac"])
    assert csc["aud"] == "https://management.azure.com"
    assert dac["aud"] == "https://vault.azure.net"
    # The SDK computes expires_on as its own clock + expires_in, and may read its clock before it
    # sends the request (msal does): on a loaded machine the token is minted a second or two after
    # that reading, or the second turns before the response arrives.
    assert -2 <= out["expires_on"] - csc["exp"] <= 1
    assert "AADSTS7000215" in out["failure"]


# --- key rotation ---------------------------------------------------------------------------


def test_rotate_keys(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    with srv.client() as http:
        before = _jwks(http, srv)
        old_token = _token(http, srv, scope=ARM_SCOPE).json()["access_token"]
    old_kid = _segments(old_token)[0]["kid"]
    assert list(before) == [old_kid]

    rotated = srv.cli("authority", "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr
    words = {w.strip(".,;") for w in rotated.stdout.split()}
    new_kid = next(w for w in words if len(w) == 27 and w != old_kid)

    # The running server picks the new key up by itself (it re-reads keys periodically).
    deadline = time.monotonic() + 60
    with srv.client() as http:
        while new_kid not in (jwks := _jwks(http, srv)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert set(jwks) == {old_kid, new_kid}, "the rotated key was not published"
        for _ in range(3):
            fresh = _token(http, srv, scope=ARM_SCOPE).json()["access_token"]
            assert _segments(fresh)[0]["kid"] == new_kid
        public = RSAAlgorithm.from_jwk(jwks[new_kid])
        jwt.decode(fresh, public, algorithms=["RS256"], audience="https://management.azure.com")
    with srv.arm(old_token) as arm:  # the retired key keeps validating its tokens
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
    with srv.arm(fresh) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
    # Both keys survive a restart.
    srv.stop()
    srv.start()
    with srv.client() as http:
        assert set(_jwks(http, srv)) == {old_kid, new_kid}
        assert _segments(_token(http, srv, scope=ARM_SCOPE).json()["access_token"])[0]["kid"] == new_kid
    with srv.arm(old_token) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
