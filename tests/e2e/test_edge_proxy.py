"""The network edge: CONNECT with TLS from the local CA, tunnels, plain-HTTP forwarding, direct mode."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.arm_helpers import RG_API
from tests.keyless_server import KeylessServer


def _connect(srv: KeylessServer, target: str, early: bytes = b"") -> tuple[str, socket.socket]:
    """Open a CONNECT tunnel through the proxy; return the status line and the socket.

    Reads the proxy's answer a byte at a time, so nothing the tunnel carries after it is consumed.
    """
    sock = socket.create_connection(("127.0.0.1", srv.http_port))
    sock.settimeout(60)  # a broken proxy fails the test instead of hanging it
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode() + early)
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head.split(b"\r\n", 1)[0].decode(), sock


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _EchoServer:
    """A TCP (optionally TLS) server on 127.0.0.1 that sends back what it receives."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.context = context
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            conn.settimeout(60)
            while data := conn.recv(65536):
                conn.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls_echo(tmp_path: Path) -> Iterator[tuple[_EchoServer, Path]]:
    cert, key = _self_signed(tmp_path, "echo.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = _EchoServer(ctx)
    yield server, cert
    server.close()


def test_connect_to_emulated_host_is_served_with_local_ca(server: KeylessServer) -> None:
    ca = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
    for host in ("management.azure.com", "login.microsoftonline.com"):
        status, sock = _connect(server, f"{host}:443")
        assert status == "HTTP/1.1 200 Connection Established"
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            leaf = x509.load_der_x509_certificate(der)
            assert leaf.issuer == ca.subject
            ca_key = ca.public_key()
            assert isinstance(ca_key, ec.EllipticCurvePublicKey)
            assert leaf.signature_hash_algorithm is not None
            ca_key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
            tls.sendall(
                f"GET /metadata/endpoints?api-version=2022-09-01 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 ")
        if host == "management.azure.com":
            assert response.startswith(b"HTTP/1.1 200")
            assert b'"resourceManager"' in response


def test_connect_to_other_host_is_tunnelled_untouched(
    server: KeylessServer, tls_echo: tuple[_EchoServer, Path]
) -> None:
    echo, cert = tls_echo
    status, sock = _connect(server, f"127.0.0.1:{echo.port}")
    assert status == "HTTP/1.1 200 Connection Established"
    # Only the echo server's own certificate is trusted: Keyless did not intercept.
    ctx = ssl.create_default_context(cafile=str(cert))
    with ctx.wrap_socket(sock, server_hostname="echo.test") as tls:
        for i in range(3):
            tls.sendall(f"ping {i}".encode())
            assert tls.recv(1024) == f"ping {i}".encode()
        big = bytes(range(256)) * 1200
        tls.sendall(big)
        got = b""
        while len(got) < len(big):
            chunk = tls.recv(65536)
            assert chunk
            got += chunk
        assert got == big


def test_tunnel_passes_bytes_sent_with_the_connect(server: KeylessServer) -> None:
    echo = _EchoServer()
    try:
        status, sock = _connect(server, f"127.0.0.1:{echo.port}", early=b"early bytes")
        with sock:
            assert status == "HTTP/1.1 200 Connection Established"
            data = b""
            while len(data) < len(b"early bytes"):
                data += sock.recv(1024)
            assert data == b"early bytes"
    finally:
        echo.close()


def test_unreachable_host_gives_502(server: KeylessServer) -> None:
    port = _free_port()
    status, sock = _connect(server, f"127.0.0.1:{port}")
    sock.close()
    assert status.startswith("HTTP/1.1 502")
    with server.client() as http:
        r = http.get(f"http://127.0.0.2:{port}/x")
    assert r.status_code == 502
    assert "could not be reached" in r.text


def test_malformed_connect_target(server: KeylessServer) -> None:
    status, sock = _connect(server, "no-port-here")
    sock.close()
    assert status.startswith("HTTP/1.1 400")


class _Recorder(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "body": body.decode(),
                "x-test": self.headers.get("x-test"),
                "proxy-connection": self.headers.get("proxy-connection"),
            }
        ).encode()
        self.send_response(218)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2"])
def test_plain_http_proxy_request_is_forwarded(server: KeylessServer, bind: str) -> None:
    upstream = http.server.ThreadingHTTPServer((bind, 0), _Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        port = upstream.server_address[1]
        with server.client() as http_client:
            got = http_client.get(f"http://{bind}:{port}/some/path?a=1&b=two", headers={"X-Test": "t1"})
            posted = http_client.post(
                f"http://{bind}:{port}/submit", content=b"payload", headers={"X-Test": "t2"}
            )
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert got.status_code == 218, got.text
    assert got.headers["x-upstream"] == "yes"
    assert got.json() == {
        "method": "GET",
        "path": "/some/path?a=1&b=two",
        "body": "",
        "x-test": "t1",
        "proxy-connection": None,
    }
    assert posted.status_code == 218
    assert posted.json()["body"] == "payload" and posted.json()["method"] == "POST"


def test_direct_mode_on_localhost(server: KeylessServer) -> None:
    for base in (server.direct_url, f"https://localhost:{server.https_port}"):
        with server.client(via_proxy=False, base_url=base) as http:
            token = http.post(
                f"/{server.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": server.admin["clientId"],
                    "client_secret": server.admin["clientSecret"],
                    "scope": "https://management.azure.com/.default",
                },
            )
            assert token.status_code == 200, token.text
            doc = http.get(f"/{server.tenant_id}/v2.0/.well-known/openid-configuration")
            assert doc.status_code == 200
            assert doc.json()["token_endpoint"] == f"{base}/{server.tenant_id}/oauth2/v2.0/token"
            r = http.get(
                f"/subscriptions/{server.subscription_id}/resourcegroups",
                params={"api-version": RG_API},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            assert r.status_code == 200, r.text
            assert http.get("/_keyless/health").json()["status"] == "ok"
            missing = http.get(
                f"/subscriptions/{server.subscription_id}/resourcegroups", params={"api-version": RG_API}
            )
            assert missing.status_code == 401


def test_emulated_hosts_are_not_served_on_unknown_names(server: KeylessServer) -> None:
    with server.client(via_proxy=False) as http:
        r = http.get(f"{server.direct_url}/_keyless/health", headers={"Host": "example.com"})
    assert r.status_code == 421
    assert r.json()["error"]["code"] == "MisdirectedRequest"


def test_ca_bundle_holds_system_cas_and_local_ca(server: KeylessServer) -> None:
    bundle = server.bundle_file.read_bytes()
    local_pem = server.ca_file.read_bytes()
    local = x509.load_pem_x509_certificate(local_pem)
    system_file = ssl.get_default_verify_paths().openssl_cafile
    system_pem = Path(system_file).read_bytes() if system_file and Path(system_file).is_file() else None
    system = system_pem or Path(certifi.where()).read_bytes()
    marker = b"-----BEGIN CERTIFICATE-----"
    assert system.count(marker) > 50
    assert bundle.count(marker) == system.count(marker) + 1
    # Every system CA, byte for byte, then the local CA.
    assert system.rstrip(b"\n") in bundle
    assert bundle.rstrip(b"\n").endswith(local_pem.rstrip(b"\n"))
    # A client given only the bundle trusts Keyless...
    with httpx.Client(
        proxy=server.proxy_url,
        verify=ssl.create_default_context(cafile=str(server.bundle_file)),
        trust_env=False,
    ) as http:
        r = http.get("https://management.azure.com/metadata/endpoints", params={"api-version": "2022-09-01"})
    assert r.status_code == 200
    # ...and the local CA is a CA for exactly this purpose.
    constraints = local.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True


def test_many_requests_share_one_tunnel(server: KeylessServer) -> None:
    with server.arm() as arm:
        for _ in range(20):
            r = arm.get("/subscriptions", params={"api-version": "2022-12-01"})
            assert r.status_code == 200
