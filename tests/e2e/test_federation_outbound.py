"""Federation with external issuers (issue 7, break 4): their keys are fetched asynchronously,
within time and size limits, never from an address a cloud would refuse, and a hostile issuer
(one that never answers, serves malformed keys, answers too much or redirects) costs the one
request that named it an AADSTS error, and no other client anything.

The issuers here are small servers this test runs on 127.0.0.1. A default server refuses
loopback issuers outright; the others run with KEYLESS_OUTBOUND_ALLOW_PRIVATE=1 (a local
issuer, as a developer's kind cluster is) and trust a certificate from Keyless's local CA.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.e2e.workload_helpers import LOGIN, MSI_API, claims, exchange_assertion
from tests.keyless_server import KeylessServer

EXCHANGE = "api://AzureADTokenExchange"
SUBJECT = "repo:octo/app:ref:refs/heads/main"
SIGNER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "test-key-1"


def _jwk() -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNER.public_key()))
    jwk.update(kid=KID, use="sig", alg="RS256")
    return jwk


# 200,000 bits: building a key from such a private exponent took the old server seconds of CPU.
_BIG_D = jwt.utils.base64url_encode(b"\xff" * 25000).decode()


def _assertion(issuer: str, subject: str = SUBJECT, kid: str = KID) -> str:
    now = int(time.time())
    body = {"iss": issuer, "sub": subject, "aud": EXCHANGE, "iat": now, "nbf": now, "exp": now + 600}
    return jwt.encode(body, SIGNER, algorithm="RS256", headers={"kid": kid})


# --- issuers this test runs ------------------------------------------------------------------


class _Issuer(http.server.BaseHTTPRequestHandler):
    routes: dict[str, Callable[[_Issuer], None]] = {}
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        handler = type(self).routes.get(self.path)
        if handler is None:
            self.send_error(404)
        else:
            handler(self)

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _leaf_context(ca_dir: Path) -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 from Keyless's local CA (which the server trusts)."""
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    folder = ca_dir.parent / f"issuer-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def https_issuer(tmp_path: Path) -> Iterator[Callable[[Path], tuple[str, type[_Issuer]]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(ca_dir: Path) -> tuple[str, type[_Issuer]]:
        handler = type("Handler", (_Issuer,), {"routes": {}, "hits": []})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.socket = _leaf_context(ca_dir).wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"https://127.0.0.1:{srv.server_address[1]}", handler

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def silent_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture
def private_server(
    new_server: Callable[..., KeylessServer], monkeypatch: pytest.MonkeyPatch
) -> KeylessServer:
    monkeypatch.setenv("KEYLESS_OUTBOUND_ALLOW_PRIVATE", "1")
    return new_server()


# --- helpers ---------------------------------------------------------------------------------


def _identity_trusting(srv: KeylessServer, issuer: str) -> str:
    """A new identity whose one federated credential trusts ``issuer`` for SUBJECT: its client id."""
    suffix = uuid.uuid4().hex[:8]
    with srv.arm() as arm:
        group = f"/subscriptions/{srv.subscription_id}/resourceGroups/rgout{suffix}"
        assert (
            arm.put(group, params={"api-version": "2024-03-01"}, json={"location": "westeurope"}).status_code
            == 201
        )
        identity = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{suffix}"
        made = arm.put(identity, params={"api-version": MSI_API}, json={"location": "westeurope"})
        assert made.status_code == 201, made.text
        r = arm.put(
            f"{identity}/federatedIdentityCredentials/external",
            params={"api-version": MSI_API},
            json={"properties": {"issuer": issuer, "subject": SUBJECT, "audiences": [EXCHANGE]}},
        )
        assert r.status_code == 201, r.text
    return str(made.json()["properties"]["clientId"])


def _assert_700027(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert r.json()["error_codes"] == [700027]
    assert "access_token" not in r.json()


def _discovery(issuer: str, handler: type[_Issuer], jwks: Callable[[_Issuer], None]) -> None:
    doc = json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/keys"}).encode()
    handler.routes["/.well-known/openid-configuration"] = lambda h: h.reply(doc)
    handler.routes["/keys"] = jwks


# --- tests -----------------------------------------------------------------------------------


def test_a_local_issuer_is_fetched_and_its_assertion_exchanged(
    private_server: KeylessServer, https_issuer: Callable[[Path], tuple[str, type[_Issuer]]]
) -> None:
    """The control for the refusals below: a well-behaved external issuer works end to end."""
    issuer, handler = https_issuer(private_server.data_dir / "ca")
    keys = json.dumps({"keys": [_jwk()]}).encode()
    _discovery(issuer, handler, lambda h: h.reply(keys))
    client_id = _identity_trusting(private_server, issuer)
    r = exchange_assertion(private_server, client_id, _assertion(issuer))
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["appid"] == client_id
    # Cached: a second exchange fetches nothing.
    fetched = len(handler.hits)
    assert exchange_assertion(private_server, client_id, _assertion(issuer)).status_code == 200
    assert len(handler.hits) == fetched
    # A signed assertion that never expires is malformed (NumericDate ends at 9999-12-31).
    now = int(time.time())
    for times in ({"exp": 10**400}, {"exp": now + 600, "nbf": -(10**30)}, {"exp": "later"}):
        body = {"iss": issuer, "sub": SUBJECT, "aud": EXCHANGE, "iat": now, "nbf": now, **times}
        forever = jwt.encode(body, SIGNER, algorithm="RS256", headers={"kid": KID})
        r = exchange_assertion(private_server, client_id, forever)
        assert r.status_code == 400 and r.json()["error_codes"] == [50027], r.text


def test_loopback_issuers_are_refused_by_default(
    server: KeylessServer, silent_listener: tuple[int, list[socket.socket]]
) -> None:
    """An issuer on the machine itself is not fetched at all: no connection is made."""
    port, accepted = silent_listener
    for issuer in (f"https://127.0.0.1:{port}", f"https://localhost:{port}/tenant", f"https://[::1]:{port}"):
        client_id = _identity_trusting(server, issuer)
        started = time.monotonic()
        _assert_700027(exchange_assertion(server, client_id, _assertion(issuer)))
        assert time.monotonic() - started < 2
    assert accepted == []


def test_a_silent_issuer_holds_up_no_one_else(
    private_server: KeylessServer, silent_listener: tuple[int, list[socket.socket]]
) -> None:
    """Three token requests naming an issuer that never answers each end in AADSTS700027 within
    the fetch's time limit, while every other client is answered at once."""
    port, accepted = silent_listener
    issuer = f"https://127.0.0.1:{port}"
    client_id = _identity_trusting(private_server, issuer)
    admin = private_server.admin
    with ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        stuck = [
            pool.submit(exchange_assertion, private_server, client_id, _assertion(issuer)) for _ in range(3)
        ]
        deadline = time.monotonic() + 3
        with private_server.client() as http:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                health = http.get(f"{private_server.direct_url}/_keyless/health")
                token = http.post(
                    f"{LOGIN}/{private_server.tenant_id}/oauth2/v2.0/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": admin["clientId"],
                        "client_secret": admin["clientSecret"],
                        "scope": "https://management.azure.com/.default",
                    },
                )
                assert health.status_code == 200 and token.status_code == 200, token.text
                assert time.monotonic() - t0 < 1.0, "another client was held up"
                time.sleep(0.1)
        for future in stuck:
            _assert_700027(future.result(timeout=15))
        assert time.monotonic() - started < 9
    assert len(accepted) >= 1


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(
            lambda h: h.reply(b'{"keys": [{"kty": "RSA", "kid": "test-key-1", "n": "!!", "e": "AQAB"}]}'),
            id="malformed-key",
        ),
        pytest.param(
            lambda h: h.reply(b'{"keys": [{"kty": "RSA", "kid": "test-key-1"}]}'), id="key-without-modulus"
        ),
        pytest.param(lambda h: h.reply(b'{"keys": "all of them"}'), id="keys-not-a-list"),
        pytest.param(lambda h: h.reply(b"[1, 2, 3]"), id="not-an-object"),
        pytest.param(lambda h: h.reply(b"<html>"), id="not-json"),
        pytest.param(lambda h: h.reply(b"[" * 5000 + b"]" * 5000), id="deep-json"),
        pytest.param(lambda h: h.reply(b'{"keys": []}' + b" " * (300 * 1024)), id="too-large"),
        pytest.param(lambda h: h.reply(b"", 302, {"Location": "/elsewhere"}), id="redirect"),
        pytest.param(lambda h: h.reply(b"{}", 500), id="server-error"),
        pytest.param(
            lambda h: h.reply(json.dumps({"keys": [_jwk() | {"d": _BIG_D}]}).encode()), id="private-parts"
        ),
        pytest.param(
            lambda h: h.reply(json.dumps({"keys": [_jwk() | {"n": _BIG_D}]}).encode()), id="huge-modulus"
        ),
        pytest.param(
            lambda h: h.reply(json.dumps({"keys": [_jwk() | {"e": "AA"}]}).encode()), id="zero-exponent"
        ),
    ],
)
def test_a_hostile_key_set_is_a_refusal_not_a_500(
    private_server: KeylessServer,
    https_issuer: Callable[[Path], tuple[str, type[_Issuer]]],
    hostile: Callable[[_Issuer], None],
) -> None:
    issuer, handler = https_issuer(private_server.data_dir / "ca")
    _discovery(issuer, handler, hostile)
    good = json.dumps({"keys": [_jwk()]}).encode()
    handler.routes["/elsewhere"] = lambda h: h.reply(good)
    client_id = _identity_trusting(private_server, issuer)
    started = time.monotonic()
    _assert_700027(exchange_assertion(private_server, client_id, _assertion(issuer)))
    assert time.monotonic() - started < 3
    assert "/keys" in handler.hits
    assert "/elsewhere" not in handler.hits  # redirects are not followed


@pytest.mark.parametrize(
    "jwks_uri", ["{issuer}/keys\x01", "https://\uff18.\uff18.\uff18.\uff18/keys", "{issuer}/k eys"]
)
def test_a_hostile_jwks_uri_is_a_refusal_not_a_500(
    private_server: KeylessServer, https_issuer: Callable[[Path], tuple[str, type[_Issuer]]], jwks_uri: str
) -> None:
    issuer, handler = https_issuer(private_server.data_dir / "ca")
    doc = json.dumps({"issuer": issuer, "jwks_uri": jwks_uri.format(issuer=issuer)}).encode()
    handler.routes["/.well-known/openid-configuration"] = lambda h: h.reply(doc)
    client_id = _identity_trusting(private_server, issuer)
    _assert_700027(exchange_assertion(private_server, client_id, _assertion(issuer)))


@pytest.mark.parametrize(
    "issuer",
    [
        "https://\uff18.\uff18.\uff18.\uff18/idn",
        "https://issuer.example/a\x01b",
        "https://issuer.example/a b",
        "https://issuer.example:0/",
    ],
)
def test_a_credential_issuer_must_be_a_plain_https_url(server: KeylessServer, issuer: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    with server.arm() as arm:
        group = f"/subscriptions/{server.subscription_id}/resourceGroups/rgiss{suffix}"
        arm.put(group, params={"api-version": "2024-03-01"}, json={"location": "westeurope"})
        identity = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{suffix}"
        arm.put(identity, params={"api-version": MSI_API}, json={"location": "westeurope"})
        r = arm.put(
            f"{identity}/federatedIdentityCredentials/bad",
            params={"api-version": MSI_API},
            json={"properties": {"issuer": issuer, "subject": SUBJECT, "audiences": [EXCHANGE]}},
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "BadRequest"
        listed = arm.get(f"{identity}/federatedIdentityCredentials", params={"api-version": MSI_API})
        assert listed.json()["value"] == []
