"""Token validation at the resource manager: every bad token gets ARM's 401 and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import jwt
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.keyless_server import KeylessServer

RG_API = "2024-03-01"
LOGIN = "https://login.microsoftonline.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _jwks(srv: KeylessServer) -> list[dict[str, Any]]:
    with srv.client() as http:
        return list(http.get(f"{LOGIN}/common/discovery/keys").json()["keys"])


def _rg_path(srv: KeylessServer, name: str) -> str:
    return f"/subscriptions/{srv.subscription_id}/resourceGroups/{name}"


def _assert_refused(
    srv: KeylessServer,
    token: str | None,
    code: str,
    unique: Callable[[str], str],
    *,
    raw_header: str | None = None,
) -> dict[str, Any]:
    """A GET and a PUT with ``token``: both 401 ``code`` with the challenge, and nothing was created."""
    name = unique("rg-auth-")
    headers = {"Authorization": raw_header if raw_header is not None else f"Bearer {token}"}
    if token is None and raw_header is None:
        headers = {}
    with srv.client(base_url="https://management.azure.com") as http:
        put = http.put(
            _rg_path(srv, name),
            params={"api-version": RG_API},
            json={"location": "westeurope"},
            headers=headers,
        )
        get = http.get(
            f"/subscriptions/{srv.subscription_id}/resourcegroups",
            params={"api-version": RG_API},
            headers=headers,
        )
    for r in (put, get):
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == code
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith(
            'Bearer authorization_uri="https://login.windows.net/", error="invalid_token"'
        )
    with srv.arm() as arm:
        assert arm.get(_rg_path(srv, name), params={"api-version": RG_API}).status_code == 404
    body: dict[str, Any] = put.json()
    return body


def test_missing_token(server: KeylessServer, unique: Callable[[str], str]) -> None:
    body = _assert_refused(server, None, "AuthenticationFailed", unique)
    assert body["error"]["message"] == "Authentication failed. The 'Authorization' header is missing."


@pytest.mark.parametrize(
    "value", ["Basic " + base64.b64encode(b"user:pass").decode(), "Bearer", "Negotiate abc"]
)
def test_no_bearer_token(server: KeylessServer, unique: Callable[[str], str], value: str) -> None:
    _assert_refused(server, None, "AuthenticationFailed", unique, raw_header=value)


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "e30.e30.e30"])
def test_malformed_token(server: KeylessServer, unique: Callable[[str], str], garbage: str) -> None:
    _assert_refused(server, garbage, "InvalidAuthenticationToken", unique)


def test_altered_payload_keeps_old_signature(server: KeylessServer, unique: Callable[[str], str]) -> None:
    head, payload, sig = server.admin_token().split(".")
    claims = _decode(payload)
    claims["exp"] = claims["exp"] + 86400 * 365
    forged = f"{head}.{_b64url(json.dumps(claims).encode())}.{sig}"
    _assert_refused(server, forged, "InvalidAuthenticationToken", unique)


def test_altered_signature(server: KeylessServer, unique: Callable[[str], str]) -> None:
    head, payload, sig = server.admin_token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[10] ^= 0x01
    _assert_refused(server, f"{head}.{payload}.{_b64url(bytes(raw))}", "InvalidAuthenticationToken", unique)


def _claims_like_admin(srv: KeylessServer) -> dict[str, Any]:
    return _decode(srv.admin_token().split(".")[1])


def test_signed_by_another_key_with_copied_kid(server: KeylessServer, unique: Callable[[str], str]) -> None:
    kid = _jwks(server)[0]["kid"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        _claims_like_admin(server), other, algorithm="RS256", headers={"kid": kid, "x5t": kid}
    )
    _assert_refused(server, forged, "InvalidAuthenticationToken", unique)


def test_alg_none(server: KeylessServer, unique: Callable[[str], str]) -> None:
    kid = _jwks(server)[0]["kid"]
    head = _b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    body = _b64url(json.dumps(_claims_like_admin(server)).encode())
    _assert_refused(server, f"{head}.{body}.", "InvalidAuthenticationToken", unique)


def test_hs256_with_public_key_as_secret(server: KeylessServer, unique: Callable[[str], str]) -> None:
    jwk = _jwks(server)[0]
    cert = x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0]))
    claims = _claims_like_admin(server)
    for secret in (
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        cert.public_bytes(serialization.Encoding.PEM),
    ):
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}).encode())
        body = _b64url(json.dumps(claims).encode())
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        _assert_refused(server, f"{head}.{body}.{_b64url(mac)}", "InvalidAuthenticationToken", unique)


def test_self_signed_expired_or_other_audience_tokens(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    """Tokens minted with a key of our own fail as bad signatures, whatever their claims say."""
    own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    base = _claims_like_admin(server)
    now = int(time.time())
    for change in (
        {"exp": now - 3600, "nbf": now - 7200, "iat": now - 7200},
        {"aud": "https://vault.azure.net"},
    ):
        claims = {**base, **change}
        token = jwt.encode(claims, own, algorithm="RS256", headers={"kid": "my-own-key"})
        _assert_refused(server, token, "InvalidAuthenticationToken", unique)


def test_wrong_audience(server: KeylessServer, unique: Callable[[str], str]) -> None:
    vault_token = server.admin_token("https://vault.azure.net")
    body = _assert_refused(server, vault_token, "InvalidAuthenticationTokenAudience", unique)
    message = body["error"]["message"]
    assert message.startswith(
        "The access token has been obtained for wrong audience or resource 'https://vault.azure.net'."
    )
    assert "'https://management.azure.com/'" in message


def test_expired_token(
    new_server: Callable[..., KeylessServer], monkeypatch: pytest.MonkeyPatch, unique: Callable[[str], str]
) -> None:
    monkeypatch.setenv("KEYLESS_CLIENT_TOKEN_LIFETIME", "3")
    monkeypatch.setenv("KEYLESS_TOKEN_LEEWAY", "0")
    srv = new_server()
    token = srv.admin_token()
    exp = _decode(token.split(".")[1])["exp"]
    with srv.arm(token) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
    while time.time() <= exp + 1:
        time.sleep(0.25)
    body = _assert_refused(srv, token, "ExpiredAuthenticationToken", unique)
    assert body["error"]["message"].startswith("The access token expiry UTC time '")
    assert "is earlier than current UTC time" in body["error"]["message"]


def test_token_of_a_deleted_principal(
    new_server: Callable[..., KeylessServer], unique: Callable[[str], str]
) -> None:
    """A principal removed from the directory: its still-unexpired token stops working at once.

    (Deleting a user-assigned identity is the ordinary way, but its tokens come with the
    identity endpoints of the next issue; the admin's row is removed directly here.)
    """
    srv = new_server()
    token = srv.admin_token()
    with srv.arm(token) as arm:
        assert arm.get("/subscriptions", params={"api-version": "2022-12-01"}).status_code == 200
    oid = srv.admin["objectId"]
    if srv.database_url is None:
        with sqlite3.connect(srv.data_dir / "keyless.db") as conn:
            conn.execute("DELETE FROM client_secrets WHERE object_id = ?", (oid,))
            conn.execute("DELETE FROM principals WHERE object_id = ?", (oid,))
    else:
        with psycopg.connect(srv.database_url) as pg:
            pg.execute("DELETE FROM client_secrets WHERE object_id = %s", (oid,))
            pg.execute("DELETE FROM principals WHERE object_id = %s", (oid,))
    name = unique("rg-ghost-")
    with srv.client(
        base_url="https://management.azure.com", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        r = http.put(_rg_path(srv, name), params={"api-version": RG_API}, json={"location": "westeurope"})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
        # Nor can it get a new token.
        t = http.post(
            f"{LOGIN}/{srv.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": srv.admin["clientId"],
                "client_secret": srv.admin["clientSecret"],
                "scope": "https://management.azure.com/.default",
            },
        )
        assert t.status_code == 400 and t.json()["error_codes"] == [700016]
    if srv.database_url is None:
        with sqlite3.connect(srv.data_dir / "keyless.db") as conn:
            assert conn.execute("SELECT count(*) FROM resources WHERE name = ?", (name,)).fetchone()[0] == 0
    else:
        with psycopg.connect(srv.database_url) as pg:
            row = pg.execute("SELECT count(*) FROM resources WHERE name = %s", (name,)).fetchone()
            assert row is not None and row[0] == 0


def test_sdk_gets_client_authentication_error(server: KeylessServer) -> None:
    """azure-mgmt-resource with a credential for the wrong audience: a 401 it reports, no retry loop."""
    program = """
import os
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.mgmt.resource.resources import ResourceManagementClient

class VaultOnly:
    def __init__(self):
        self.inner = ClientSecretCredential(
            os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"])
    def get_token(self, *scopes, **kwargs):
        return self.inner.get_token("https://vault.azure.net/.default")

client = ResourceManagementClient(VaultOnly(), os.environ["AZURE_SUBSCRIPTION_ID"])
try:
    list(client.resource_groups.list())
except ClientAuthenticationError as exc:
    print(exc.error.code if exc.error else exc.status_code)
"""
    result = server.run_python(program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "InvalidAuthenticationTokenAudience"
