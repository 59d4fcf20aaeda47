"""What the fuzz test needs: a raw HTTP/1.1 client that sends bytes exactly as given (no client
library would send a NUL in a path, a bad percent-escape or an odd method), and a snapshot of
every table the server keeps."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.arm_helpers import MSI_API, RG_API, UAMI
from tests.e2e.keyvault_helpers import KV_API, create_vault, vault_client, vault_path
from tests.e2e.workload_helpers import SITE_TYPE, VM_API, VM_TYPE, WEB_API
from tests.keyless_server import KeylessServer

ARM_HOST = "management.azure.com"
ISSUER_TYPE = "Keyless.Workload/oidcIssuers"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
LOCATED = {"location": "westeurope"}
MSI, VM, WEB = {"api-version": MSI_API}, {"api-version": VM_API}, {"api-version": WEB_API}
ISSUER, DIRECTORY, AUTHZ = (
    {"api-version": "2026-11-01"},
    {"api-version": "2024-01-01"},
    {"api-version": "2022-04-01"},
)
LOGIN_HOST = "login.microsoftonline.com"
GRAPH_HOST = "graph.microsoft.com"
IMDS_HOST = "169.254.169.254"
VAULT_SUFFIX = ".vault.azure.net"
KV_DATA = {"api-version": "7.5"}
# Rows a timer rewrites whatever the requests do, left out of every snapshot: the leases that Key
# Vault's maintenance pass (``providers/keyvault/rotation.py``), the blob sweeper and Media
# Services' customer key check renew every interval.
TIMER_LEASES = ("keyvault-maintenance", "storage-blob-sweep", "media-customer-keys")
TIMER_ROWS: dict[str, dict[str, tuple[str, ...]]] = {"leases": {"name": TIMER_LEASES}}
# The bound the fuzz test holds every answer to (the issue's "no request hangs over 5 s").
ANSWER_WITHIN = 5.0


@dataclass(frozen=True)
class Hostile:
    """One malformed request: raw method, request-target, headers and body.

    ``listener`` is ``https`` (direct TLS, ``Host`` picks the service), ``connect`` (TLS through
    the forward proxy's ``CONNECT``, as an SDK under ``keyless run`` reaches production host
    names) or ``http`` (the plain listener: identity endpoints and proxied ``http://`` requests).
    """

    family: str
    listener: str
    method: bytes
    target: bytes
    host: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    label: str = ""

    def describe(self) -> str:
        target = self.target if len(self.target) <= 200 else self.target[:120] + b"..." + self.target[-80:]
        return f"[{self.family}/{self.listener}] {self.method!r} {target!r} {self.label}"


@dataclass
class Answer:
    status: int  # 0: the connection closed without a response
    seconds: float
    head: bytes = b""
    body: bytes = field(default=b"", repr=False)


class RawClient:
    """Sends ``Hostile`` requests to one server, a fresh connection each (``Connection: close``)."""

    def __init__(self, srv: KeylessServer) -> None:
        self.srv = srv
        self.tls = ssl.create_default_context(cafile=str(srv.ca_file))

    def send(self, request: Hostile) -> Answer:
        start = time.monotonic()
        try:
            sock = self._open(request)
        except (OSError, ssl.SSLError):
            return Answer(0, time.monotonic() - start)
        try:
            return self._exchange(sock, request, start)
        finally:
            sock.close()

    def _open(self, request: Hostile) -> socket.socket:
        if request.listener == "http":
            return socket.create_connection(("127.0.0.1", self.srv.http_port), timeout=ANSWER_WITHIN)
        if request.listener == "https":
            raw = socket.create_connection(("127.0.0.1", self.srv.https_port), timeout=ANSWER_WITHIN)
        else:
            raw = socket.create_connection(("127.0.0.1", self.srv.http_port), timeout=ANSWER_WITHIN)
            raw.sendall(f"CONNECT {request.host}:443 HTTP/1.1\r\nHost: {request.host}:443\r\n\r\n".encode())
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = raw.recv(4096)
                if not chunk:
                    raise OSError("the proxy closed the CONNECT")
                reply += chunk
            if not reply.startswith(b"HTTP/1.1 200"):
                raise OSError(f"CONNECT refused: {reply[:60]!r}")
        label = request.host.lower().removesuffix(VAULT_SUFFIX)  # one DNS label: the wildcard's
        vault = label != request.host.lower() and 0 < len(label) <= 63 and "." not in label
        sni = request.host if vault or request.host in (ARM_HOST, LOGIN_HOST, GRAPH_HOST) else "localhost"
        return self.tls.wrap_socket(raw, server_hostname=sni)

    @staticmethod
    def _exchange(sock: socket.socket, request: Hostile, start: float) -> Answer:
        lines = [request.method + b" " + request.target + b" HTTP/1.1", b"Host: " + request.host.encode()]
        lines += [name + b": " + value for name, value in request.headers]
        if request.body or request.method in (b"PUT", b"PATCH", b"POST"):
            lines.append(b"Content-Length: " + str(len(request.body)).encode())
        lines.append(b"Connection: close")
        payload = b"\r\n".join(lines) + b"\r\n\r\n" + request.body
        with contextlib.suppress(OSError):  # the server may answer (413, 431) and close early
            sock.sendall(payload)
        data = bytearray()
        try:
            while time.monotonic() - start < ANSWER_WITHIN:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return Answer(-1, time.monotonic() - start, bytes(data[:200]))
        except (OSError, ssl.SSLError):
            pass  # a reset after the answer was sent
        elapsed = time.monotonic() - start
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        return Answer(status, elapsed, head, body)


class Snapshots:
    """Every row of every table (reflected once, so tables any provider adds count too), read
    straight from the server's database: a request that changed anything at all, even a partial
    write, shows up as a difference."""

    def __init__(self, srv: KeylessServer) -> None:
        url = srv.database_url or f"sqlite:///{srv.data_dir / 'keyless.db'}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.engine = sa.create_engine(url)
        self.tables = sa.MetaData()
        with self.engine.connect() as conn:
            self.tables.reflect(conn)

    def take(self) -> dict[str, list[tuple[str, ...]]]:
        with self.engine.connect() as conn:
            return {
                name: sorted(tuple(str(v) for v in row) for row in conn.execute(self._select(table)))
                for name, table in sorted(self.tables.tables.items())
            }

    @staticmethod
    def _select(table: sa.Table) -> sa.Select[Any]:
        query = sa.select(table)
        for column, values in TIMER_ROWS.get(table.name, {}).items():
            query = query.where(table.c[column].not_in(values))
        return query

    @staticmethod
    def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Ids:
    """What the fuzz aims at (made before the first snapshot), and the credentials it uses."""

    values: dict[str, str]
    vm_token: str
    site_token: str
    admin_token: str
    vault_token: str
    graph_token: str = ""

    def fill(self, text: str) -> str:
        """``text`` with each ``{name}`` replaced by its value."""
        for key, value in self.values.items():
            text = text.replace("{" + key + "}", value)
        return text

    def fill_doc(self, doc: Any) -> Any:
        if isinstance(doc, dict):
            return {self.fill(k): self.fill_doc(v) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self.fill_doc(v) for v in doc]
        return self.fill(doc) if isinstance(doc, str) else doc


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def make_targets(srv: KeylessServer, seed: int) -> Ids:
    """One of everything the routes reach, made by the admin: a group, an identity with a federated
    credential, an OIDC issuer, a VM and a Function app (and their host tokens), a service
    principal in a group, a role assignment and a custom role."""
    sub = srv.subscription_id
    rg = f"/subscriptions/{sub}/resourceGroups/fuzz-rg"
    directory = "/providers/Keyless.Directory"
    authz = "/providers/Microsoft.Authorization"
    assignment, role = str(uuid.uuid4()), str(uuid.uuid4())
    reader = f"/subscriptions/{sub}{authz}/roleDefinitions/{READER}"
    with srv.arm() as arm:
        _ok(arm.put(rg, params={"api-version": RG_API}, json={"location": "westeurope"}))
        uami = _ok(arm.put(f"{rg}/providers/{UAMI}/fuzz-id", params={"api-version": MSI_API}, json=LOCATED))
        fic = {
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:o/r:ref:refs/heads/main",
            "audiences": ["api://AzureADTokenExchange"],
        }
        _ok(
            arm.put(
                f"{uami['id']}/federatedIdentityCredentials/fuzz-fic", params=MSI, json={"properties": fic}
            )
        )
        issuer = _ok(arm.put(f"{rg}/providers/{ISSUER_TYPE}/fuzz-issuer", params=ISSUER, json=LOCATED))
        both = {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uami["id"]: {}}}
        _ok(arm.put(f"{rg}/providers/{VM_TYPE}/fuzz-vm", params=VM, json={**LOCATED, "identity": both}))
        site = {**LOCATED, "kind": "functionapp", "identity": {"type": "SystemAssigned"}}
        _ok(arm.put(f"{rg}/providers/{SITE_TYPE}/fuzz-site", params=WEB, json=site))
        vm_token = _ok(arm.post(f"{rg}/providers/{VM_TYPE}/fuzz-vm/listHostToken", params=VM))["hostToken"]
        site_token = _ok(arm.post(f"{rg}/providers/{SITE_TYPE}/fuzz-site/listHostToken", params=WEB))[
            "hostToken"
        ]
        sp = _ok(
            arm.post(f"{directory}/servicePrincipals", params=DIRECTORY, json={"displayName": "fuzz-sp"})
        )
        group = _ok(arm.post(f"{directory}/groups", params=DIRECTORY, json={"displayName": "fuzz-group"}))
        _ok(arm.put(f"{directory}/groups/{group['objectId']}/members/{sp['objectId']}", params=DIRECTORY))
        grant = {
            "roleDefinitionId": reader,
            "principalId": sp["objectId"],
            "principalType": "ServicePrincipal",
        }
        _ok(arm.put(f"{rg}{authz}/roleAssignments/{assignment}", params=AUTHZ, json={"properties": grant}))
        custom = {
            "roleName": "fuzz-role",
            "permissions": [{"actions": ["*/read"]}],
            "assignableScopes": [f"/subscriptions/{sub}"],
        }
        _ok(
            arm.put(
                f"/subscriptions/{sub}{authz}/roleDefinitions/{role}",
                params=AUTHZ,
                json={"properties": custom},
            )
        )
    values = {
        "sub": sub,
        "tenant": srv.tenant_id,
        "uami": uami["id"],
        "group": group["objectId"],
        "sp": sp["objectId"],
        "assignment": assignment,
        "role": role,
        "reader": reader,
        "guid": str(uuid.UUID(int=seed)),
        "issuer": issuer["properties"]["issuerURL"].rstrip("/").rsplit("/", 1)[-1],
        "admin_client": srv.admin["clientId"],
        "admin_secret": srv.admin["clientSecret"],
    }
    vault_token = srv.admin_token("https://vault.azure.net")
    graph_token = srv.admin_token("https://graph.microsoft.com")
    values.update(make_vault_targets(srv, vault_token))
    return Ids(values, vm_token, site_token, srv.admin_token(), vault_token, graph_token)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int64(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def make_vault_targets(srv: KeylessServer, vault_token: str) -> dict[str, str]:
    """Key Vault's targets, made by the admin: vault ``fuzz-kv`` in ``fuzz-rg`` (an access policy
    gives the admin every key and secret permission) holding RSA key ``fuzz-key`` and secret
    ``fuzz-secret``, a deleted key and secret, and the soft-deleted vault ``fuzz-kv-gone``. The
    values the fuzz fills in: versions, backups, a ciphertext, a wrapped key, a digest and its
    signature (so crypto bodies are valid but for the one field made wrong) and a fresh RSA JWK
    (for import)."""
    create_vault(srv, "fuzz-rg", "fuzz-kv")
    create_vault(srv, "fuzz-rg", "fuzz-kv-gone")
    with srv.arm() as arm:
        r = arm.delete(vault_path(srv, "fuzz-rg", "fuzz-kv-gone"), params={"api-version": KV_API})
        assert r.status_code == 200, r.text
    digest = _b64url(hashlib.sha256(b"fuzz").digest())
    with vault_client(srv, "fuzz-kv", vault_token) as kv:
        key = _ok(kv.post("/keys/fuzz-key/create", params=KV_DATA, json={"kty": "RSA", "key_size": 2048}))
        key_version = key["key"]["kid"].rsplit("/", 1)[-1]
        secret = _ok(kv.put("/secrets/fuzz-secret", params=KV_DATA, json={"value": "fuzz-value"}))
        _ok(kv.post("/keys/fuzz-gone-key/create", params=KV_DATA, json={"kty": "RSA"}))
        _ok(kv.delete("/keys/fuzz-gone-key", params=KV_DATA))
        _ok(kv.put("/secrets/fuzz-gone-secret", params=KV_DATA, json={"value": "gone"}))
        _ok(kv.delete("/secrets/fuzz-gone-secret", params=KV_DATA))
        crypto = f"/keys/fuzz-key/{key_version}"
        oaep = {"alg": "RSA-OAEP", "value": _b64url(b"fuzz")}
        wrap = {"alg": "RSA-OAEP-256", "value": _b64url(bytes(32))}
        values = {
            "vault": "fuzz-kv",
            "gone_vault": "fuzz-kv-gone",
            "key_version": key_version,
            "secret_version": secret["id"].rsplit("/", 1)[-1],
            "key_backup": _ok(kv.post("/keys/fuzz-key/backup", params=KV_DATA))["value"],
            "secret_backup": _ok(kv.post("/secrets/fuzz-secret/backup", params=KV_DATA))["value"],
            "ciphertext": _ok(kv.post(f"{crypto}/encrypt", params=KV_DATA, json=oaep))["value"],
            "wrapped": _ok(kv.post(f"{crypto}/wrapkey", params=KV_DATA, json=wrap))["value"],
            "digest": digest,
            "signature": _ok(
                kv.post(f"{crypto}/sign", params=KV_DATA, json={"alg": "RS256", "value": digest})
            )["value"],
        }
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    public = numbers.public_numbers
    jwk = {"n": public.n, "e": public.e, "d": numbers.d, "p": numbers.p, "q": numbers.q}
    jwk |= {"dp": numbers.dmp1, "dq": numbers.dmq1, "qi": numbers.iqmp}
    values |= {f"jwk_{k}": _int64(v) for k, v in jwk.items()}
    return values
