"""Key Vault's data plane on the wire: ``https://{vault}.vault.azure.net``.

The pipeline, the same for every request: the challenge (401 before the body is read, so the
SDK's body-less first request gets it; keyvault.md §2), the token (``aud`` Key Vault, the
vault's tenant), the network rules (``keyless.network``: 403 ``ForbiddenByFirewall``), the
route, the permission (access policy or RBAC, ``access.py``), then the operation. Every answer
is 200 except purge (204) (keyvault.md §0.7). Paths are matched case-insensitively and an empty
version segment means the latest version (``/keys/k/``, ``/keys/k//wrapkey``; §0.2-0.3).

=================================================  ===========================================
``GET /keys`` ``/deletedkeys`` ``/secrets`` ``/deletedsecrets``  pages (``maxresults``, ``$skiptoken``)
``POST /keys/{n}/create`` · ``PUT /keys/{n}``     create · import
``GET|PATCH /keys/{n}[/{v}]``                     get · update (empty ``v``: latest)
``GET /keys/{n}/versions``                        versions
``DELETE /keys/{n}`` · ``GET|DELETE /deletedkeys/{n}`` · ``POST /deletedkeys/{n}/recover``
``POST /keys/{n}/backup`` · ``POST /keys/restore`` · ``POST /keys/{n}/rotate``
``GET|PUT /keys/{n}/rotationpolicy``
``POST /keys/{n}/{v}/{encrypt|decrypt|wrapkey|unwrapkey|sign|verify}``
``PUT /secrets/{n}`` and the same reads, deletes, backups for secrets; ``POST /rng``
=================================================  ===========================================
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from keyless.authority.resources import KEYVAULT_AUDIENCES
from keyless.authority.tokens import EXPIRED, MISSING, WRONG_AUDIENCE, Caller, TokenError, TokenValidator
from keyless.network import OriginResolver, allows
from keyless.providers.keyvault import bundles, crypto, errors
from keyless.providers.keyvault import store as kv
from keyless.providers.keyvault.access import (
    KEY_OPERATIONS,
    RNG,
    SECRET_OPERATIONS,
    Operation,
    Vault,
    VaultAccess,
    caller_line,
)
from keyless.providers.keyvault.keys import CRYPTO_OPERATIONS, KeyService
from keyless.providers.keyvault.secrets import SecretService
from keyless.store.db import Database
from keyless.web import (
    BodyTooLarge,
    InvalidJson,
    Receive,
    Scope,
    Send,
    has_nul,
    header,
    host_of,
    parse_json,
    parse_query,
    read_body,
    send_bytes,
)

VAULT_SUFFIX = ".vault.azure.net"
SERVICE_VERSION = "1.9.2891.1"  # shown in x-ms-keyvault-service-version, as the service sends one
_MAX_PATH = 1024
_MAX_BODY = 64 * 1024
_MAX_RESTORE_BODY = 4 * 1024 * 1024
_JSON = b"application/json; charset=utf-8"
_VAULT_CACHE = 1024

Handler = Callable[[], Awaitable[tuple[int, Any]]]


def _challenge(tenant_id: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{tenant_id}", '
        'resource="https://vault.azure.net"'
    }


def _token_error(exc: TokenError) -> errors.KeyVaultError:
    if exc.reason == MISSING:
        return errors.unauthorized()
    if exc.reason == EXPIRED:
        return errors.unauthorized(
            "AKV10000: Request is missing a Bearer or PoP token: the token is expired."
        )
    if exc.reason == WRONG_AUDIENCE:
        return errors.unauthorized(f"AKV10022: Invalid audience. Expected https://vault.azure.net. {exc}")
    return errors.unauthorized(f"AKV10000: Request is missing a Bearer or PoP token: {exc}")


class KeyVaultApp:
    """The ASGI app behind every ``*.vault.azure.net`` host."""

    def __init__(
        self,
        db: Database,
        validator: TokenValidator,
        access: VaultAccess,
        keys: KeyService,
        secrets: SecretService,
        origins: OriginResolver,
        default_tenant: Callable[[], str],
    ) -> None:
        self.db = db
        self.validator = validator
        self.access = access
        self.keys = keys
        self.secrets = secrets
        self.origins = origins
        self.default_tenant = default_tenant
        # Parsed vault documents by name, with the resource ETag they were parsed at (bounded).
        self._vaults: dict[str, tuple[str, Vault]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        origin = self.origins.origin(scope)
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-keyvault-region": "",
            "x-ms-keyvault-service-version": SERVICE_VERSION,
            "x-ms-keyvault-network-info": f"conn_type=Ipv4;addr={origin.client_address()};act_addr_fam=InterNetwork;",
        }
        vault: Vault | None = None
        try:
            vault = self._vault(host_of(scope))
            if vault is not None:
                headers["x-ms-keyvault-region"] = vault.location
            status, body = await self._handle(scope, receive, vault, origin)
        except errors.KeyVaultError as exc:
            if exc.status == 401:
                headers.update(_challenge(vault.tenant_id if vault else self.default_tenant()))
            await send_bytes(send, exc.status, orjson.dumps(exc.body()), _JSON, headers)
            return
        if status == 204:
            await send_bytes(send, 204, b"", None, headers)
            return
        await send_bytes(send, status, orjson.dumps(body), _JSON, headers)

    def _vault(self, host: str) -> Vault | None:
        """The live vault this host names, read on every request (so an access change counts at
        once); its document is parsed again only when the resource's ETag moved."""
        name = host.removesuffix(VAULT_SUFFIX)
        if name == host or not name or len(name) > 24:
            return None
        row = self.db.query_one(kv.vault_query(), {"name": name})
        if row is None:
            return None
        hit = self._vaults.get(name)
        if hit is not None and hit[0] == row.etag and hit[1].resource_id == row.resource_id:
            return hit[1]
        properties = orjson.loads(row.document).get("properties") or {}
        vault = Vault.from_resource(row.name, row.resource_id, row.location, properties)
        if len(self._vaults) >= _VAULT_CACHE:
            self._vaults.clear()
        self._vaults[name] = (row.etag, vault)
        return vault

    def _authenticate(self, scope: Scope, vault: Vault | None) -> Caller:
        scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized()
        try:
            caller = self.validator.validate(token.strip(), KEYVAULT_AUDIENCES)
        except TokenError as exc:
            raise _token_error(exc) from None
        if vault is not None and vault.tenant_id and caller.tenant_id.lower() != vault.tenant_id.lower():
            raise errors.unauthorized(
                f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{vault.tenant_id}/, "
                f"found https://sts.windows.net/{caller.tenant_id}/."
            )
        return caller

    async def _handle(
        self, scope: Scope, receive: Receive, vault: Vault | None, origin: Any
    ) -> tuple[int, Any]:
        caller = self._authenticate(scope, vault)
        if vault is None:
            raise errors.KeyVaultError(
                404, "VaultNotFound", f"The vault '{host_of(scope)[:80]}' was not found."
            )
        if not allows(vault.rules, origin):
            raise errors.forbidden_by_firewall(
                origin.client_address(), caller_line(caller), vault.name, vault.location
            )
        path: str = scope["path"]
        query, _ = parse_query(scope)
        if len(path) > _MAX_PATH or has_nul(path, *query.keys(), *query.values()):
            raise errors.bad_parameter("The request URI is not valid.")
        api_version = query.get("api-version")
        if not api_version:
            raise errors.bad_parameter("The api-version query parameter is missing.")
        if len(api_version) > 32:
            raise errors.bad_parameter("The api-version query parameter is not valid.")
        segments = path.lstrip("/").split("/")
        if segments and segments[-1] == "" and len(segments) == 1:
            segments = []
        method = scope["method"]
        route = Route(self, vault, caller, method, segments, query, api_version, receive)
        return await route.run()


class Route:
    """One request after authentication: which operation it is, and running it."""

    def __init__(
        self,
        app: KeyVaultApp,
        vault: Vault,
        caller: Caller,
        method: str,
        segments: list[str],
        query: dict[str, str],
        api_version: str,
        receive: Receive,
    ) -> None:
        self.app = app
        self.vault = vault
        self.caller = caller
        self.method = method
        self.segments = segments
        self.query = query
        self.api_version = api_version
        self.receive = receive

    def _allow(self, operation: Operation, name: str | None) -> None:
        self.app.access.authorize(self.vault, self.caller, operation, name)

    async def _body(self, limit: int = _MAX_BODY) -> dict[str, Any]:
        try:
            raw = await read_body(self.receive, limit)
            document = parse_json(raw, max_bytes=limit) if raw.strip() else {}
        except BodyTooLarge:
            raise errors.bad_parameter("The request body is too large.") from None
        except InvalidJson:
            raise errors.bad_parameter("The request body is not valid JSON.") from None
        if not isinstance(document, dict):
            raise errors.bad_parameter("The request body must be a JSON object.")
        return document

    def _page(self, path: str, items: list[dict[str, Any]], after: str | None, size: int) -> tuple[int, Any]:
        return 200, {
            "value": items,
            "nextLink": bundles.next_link(self.vault, path, self.api_version, after, size),
        }

    def _method(self, *allowed: str) -> None:
        if self.method not in allowed:
            raise errors.method_not_allowed(self.method)

    async def run(self) -> tuple[int, Any]:
        seg = self.segments
        if not seg:
            raise errors.bad_parameter("The request URI is not valid.")
        first = seg[0].lower()
        if first == "rng" and len(seg) == 1:
            self._method("POST")
            self._allow(RNG, None)
            return await self._rng()
        if first in ("keys", "secrets"):
            return await self._objects(first[:-1], seg[1:])
        if first in ("deletedkeys", "deletedsecrets"):
            return await self._deleted(first[len("deleted") : -1], seg[1:])
        raise errors.KeyVaultError(404, "NotFound", "The requested resource was not found.")

    async def _rng(self) -> tuple[int, Any]:
        body = await self._body()
        count = body.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 128:
            raise errors.bad_parameter("The parameter 'count' must be an integer from 1 to 128.")
        return 200, {"value": crypto.b64url_encode(os.urandom(count))}

    async def _objects(self, kind: str, rest: list[str]) -> tuple[int, Any]:
        ops = KEY_OPERATIONS if kind == kv.KEY else SECRET_OPERATIONS
        service: Any = self.app.keys if kind == kv.KEY else self.app.secrets
        vault = self.vault
        if not rest or rest == [""]:
            self._method("GET")
            self._allow(ops["list"], None)
            size = bundles.page_size(self.query.get("maxresults"))
            items, after = service.list_latest(
                vault, bundles.decode_skiptoken(self.query.get("$skiptoken")), size
            )
            return self._page(f"/{kind}s", items, after, size)
        name = rest[0]
        bundles.check_name(name)
        tail = [s.lower() for s in rest[1:]]
        if not tail:
            if self.method == "POST" and name.lower() == "restore":
                self._allow(ops["restore"], None)
                value = (await self._body(_MAX_RESTORE_BODY)).get("value")
                try:
                    blob = crypto.b64url_decode(value, "value", max_chars=_MAX_RESTORE_BODY)
                except crypto.CryptoInputError as exc:
                    raise errors.bad_parameter(str(exc)) from None
                # Opening the sealed blob and writing up to 500 versions: off the event loop.
                return 200, await asyncio.to_thread(service.restore, vault, blob)
            if self.method == "DELETE":
                self._allow(ops["delete"], name)
                return 200, service.delete(vault, name)
            if kind == kv.KEY and self.method == "PUT":
                self._allow(ops["import"], name)
                return 200, await service.import_key(vault, name, await self._body())
            if kind == kv.SECRET and self.method == "PUT":
                self._allow(ops["set"], name)
                return 200, service.set(vault, name, await self._body())
            return await self._version(kind, ops, service, name, None)
        action = tail[0]
        if len(tail) == 1:
            if action == "versions":
                self._method("GET")
                self._allow(ops["list"], name)
                size = bundles.page_size(self.query.get("maxresults"))
                after = bundles.decode_skiptoken(self.query.get("$skiptoken"))
                items, last = service.list_versions(vault, name, after, size)
                return self._page(f"/{kind}s/{name}/versions", items, last, size)
            if action == "backup":
                self._method("POST")
                self._allow(ops["backup"], name)
                return 200, {"value": crypto.b64url_encode(service.backup(vault, name))}
            if kind == kv.KEY:
                routed = await self._key_action(name, action)
                if routed is not None:
                    return routed
            return await self._version(kind, ops, service, name, rest[1])
        if len(tail) == 2 and kind == kv.KEY and tail[1] in CRYPTO_OPERATIONS:
            return await self._crypto(name, rest[1], tail[1])
        raise errors.KeyVaultError(404, "NotFound", "The requested resource was not found.")

    async def _key_action(self, name: str, action: str) -> tuple[int, Any] | None:
        keys = self.app.keys
        if action == "create":
            self._method("POST")
            self._allow(KEY_OPERATIONS["create"], name)
            return 200, await keys.create(self.vault, name, await self._body())
        if action == "rotate":
            self._method("POST")
            self._allow(KEY_OPERATIONS["rotate"], name)
            return 200, await keys.rotate(self.vault, name)
        if action == "rotationpolicy":
            if self.method == "GET":
                self._allow(KEY_OPERATIONS["getrotationpolicy"], name)
                return 200, keys.get_policy(self.vault, name)
            self._method("PUT")
            self._allow(KEY_OPERATIONS["setrotationpolicy"], name)
            return 200, keys.set_policy(self.vault, name, await self._body())
        if action in CRYPTO_OPERATIONS and self.method == "POST":  # versionless crypto route (.NET)
            return await self._crypto(name, "", action)
        return None

    async def _version(
        self, kind: str, ops: dict[str, Operation], service: Any, name: str, version: str | None
    ) -> tuple[int, Any]:
        if self.method == "GET":
            self._allow(ops["get"], name)
            return 200, service.get(self.vault, name, version)
        if self.method == "PATCH":
            self._allow(ops["update"], name)
            return 200, service.update(self.vault, name, version, await self._body())
        raise errors.method_not_allowed(self.method)

    async def _crypto(self, name: str, version: str, route_op: str) -> tuple[int, Any]:
        self._method("POST")
        operation = CRYPTO_OPERATIONS[route_op]
        self._allow(KEY_OPERATIONS[route_op], name)
        body = await self._body()
        # Private-key work (and loading a key) takes milliseconds: off the event loop.
        return 200, await asyncio.to_thread(
            self.app.keys.crypto_operation, self.vault, name, version, operation, body
        )

    async def _deleted(self, kind: str, rest: list[str]) -> tuple[int, Any]:
        ops = KEY_OPERATIONS if kind == kv.KEY else SECRET_OPERATIONS
        service: Any = self.app.keys if kind == kv.KEY else self.app.secrets
        if not rest or rest == [""]:
            self._method("GET")
            self._allow(ops["listdeleted"], None)
            size = bundles.page_size(self.query.get("maxresults"))
            items, after = service.list_deleted(
                self.vault, bundles.decode_skiptoken(self.query.get("$skiptoken")), size
            )
            return self._page(f"/deleted{kind}s", items, after, size)
        name = rest[0]
        bundles.check_name(name)
        tail = [s.lower() for s in rest[1:] if s]
        if not tail:
            if self.method == "GET":
                self._allow(ops["getdeleted"], name)
                return 200, service.get_deleted(self.vault, name)
            self._method("DELETE")
            self._allow(ops["purge"], name)
            service.purge(self.vault, name)
            return 204, None
        if tail == ["recover"]:
            self._method("POST")
            self._allow(ops["recover"], name)
            return 200, service.recover(self.vault, name)
        raise errors.KeyVaultError(404, "NotFound", "The requested resource was not found.")
