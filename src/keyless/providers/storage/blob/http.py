"""The Blob service on the wire: ``https://{account}.blob.core.windows.net`` and, in direct mode,
path-style ``https://localhost:<port>/{account}`` (storage.md §3).

The pipeline, the same for every request (storage-arch plan; Key Vault's ``http.py`` is its model):

1. the address: host-style or path-style -> account, container, blob (decoded names);
2. the account (``StorageAccounts.view``, read fresh): unknown -> 404 ``ResourceNotFound`` (Azure's
   DNS has no such name; a served host answers as for any missing resource, our choice);
3. ``x-ms-version``: any version azure-storage-blob has sent (``SUPPORTED_VERSIONS``); another is
   400 ``InvalidHeaderValue``; absent on a Shared Key or bearer request, 400 ``MissingRequiredHeader``;
4. network rules (``keyless.network.allows``, before authentication): 403 ``AuthorizationFailure``;
5. authentication and 6. authorization (``access.py``);
7. the operation (``containers``, ``blobs``, ``blocks``, ``listing``, ``service``), then the reply:
   ``x-ms-request-id``, ``x-ms-version`` and ``Date`` on every answer, errors as XML with
   ``x-ms-error-code`` (storage.md §2).

Routes (``restype``/``comp`` in the query)::

    /                      GET comp=list · GET restype=service&comp=properties ·
                           GET restype=account&comp=properties · POST restype=service&comp=userdelegationkey
    /{c}?restype=container PUT · DELETE · GET|HEAD [comp=metadata] · PUT comp=metadata ·
                           GET|PUT comp=acl · PUT comp=lease · GET comp=list
    /{c}/{b}               PUT [comp=block|blocklist|metadata|properties|lease|snapshot|tags|tier] ·
                           GET [comp=blocklist|metadata|tags] · HEAD · DELETE
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable

from keyless.edge.routing import LOCAL_HOSTS
from keyless.network import OriginResolver, allows
from keyless.providers.storage.accounts import AccountView, StorageAccounts
from keyless.providers.storage.blob import blobs as blob_ops
from keyless.providers.storage.blob import (
    blocks,
    containers,
    copy,
    errors,
    listing,
    names,
    sas,
    service,
    store,
    tags,
)
from keyless.providers.storage.blob.access import (
    OPS,
    BlobAccess,
    BlobAttributes,
    Principal,
    request_attributes,
)
from keyless.providers.storage.blob.files import BlobFiles
from keyless.providers.storage.blob.request import BlobRequest, Reply
from keyless.providers.storage.blob.xml import iso7, rfc1123
from keyless.rbac.condition_eval import (
    SUB_OPERATION_BLOB_LIST,
    SUB_OPERATION_WITH_TAG_HEADERS,
    SUB_OPERATION_WRITE_TIER,
)
from keyless.store.db import Database
from keyless.web import Receive, Scope, Send, host_of, parse_query

BLOB_SUFFIX = ".blob.core.windows.net"
LATEST_VERSION = "2026-10-06"
# Every version azure-storage-blob 12.x sends (``_serialize._SUPPORTED_API_VERSIONS``) and the
# older REST versions the legacy SDKs and the az CLI's vendored clients send.
SUPPORTED_VERSIONS = frozenset(
    [
        "2009-09-19",
        "2011-08-18",
        "2012-02-12",
        "2013-08-15",
        "2014-02-14",
        "2015-02-21",
        "2015-04-05",
        "2015-07-08",
        "2015-12-11",
        "2016-05-31",
        "2017-04-17",
        "2017-07-29",
        "2017-11-09",
        "2018-03-28",
        "2018-11-09",
        "2019-02-02",
        "2019-07-07",
        "2019-10-10",
        "2019-12-12",
        "2020-02-10",
        "2020-04-08",
        "2020-06-12",
        "2020-08-04",
        "2020-10-02",
        "2020-12-06",
        "2021-02-12",
        "2021-04-10",
        "2021-06-08",
        "2021-08-06",
        "2021-12-02",
        "2022-11-02",
        "2023-01-03",
        "2023-05-03",
        "2023-08-03",
        "2023-11-03",
        "2024-05-04",
        "2024-08-04",
        "2024-11-04",
        "2025-01-05",
        "2025-05-05",
        "2025-07-05",
        "2025-11-05",
        "2026-02-06",
        "2026-04-06",
        "2026-06-06",
        "2026-10-06",
    ]
)
_MAX_RAW_PATH = 4096
_MAX_QUERY = 8192
_MAX_HEADERS = 200
_LOG = logging.getLogger("keyless.storage.blob")


class BlobApp:
    """The ASGI app behind every ``*.blob.core.windows.net`` host and path-style accounts."""

    def __init__(
        self,
        db: Database,
        accounts: StorageAccounts,
        access: BlobAccess,
        files: BlobFiles,
        origins: OriginResolver,
        default_tenant: Callable[[], str],
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.access = access
        self.files = files
        self.origins = origins
        self.default_tenant = default_tenant

    def is_account(self, name: str) -> bool:
        """Whether ``name`` is a storage account (path-style routing on localhost asks)."""
        return (
            3 <= len(name) <= 24
            and name.isalnum()
            and name.islower()
            and self.accounts.view(name) is not None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        now = time.time()
        # (uvicorn adds the Date header to every answer.)
        base = {"x-ms-request-id": request_id, "x-ms-version": LATEST_VERSION}
        head = scope["method"] == "HEAD"
        try:
            req, account = self._prepare(scope, receive, now, base)
            principal = self.access.authenticate(
                req, account, lambda: self.accounts.keys(account.name), self._policy(account.name)
            )
            reply = await Route(self, req, account, principal).run()
        except errors.StorageError as exc:
            await self._send_error(send, exc, base, request_id, now, head)
            return
        except Exception:
            _LOG.exception("blob request failed")
            internal = errors.StorageError(
                500,
                "InternalError",
                "Server encountered an internal error. Please try again after some time.",
            )
            await self._send_error(send, internal, base, request_id, now, head)
            return
        await self._send_reply(send, reply, base, head)

    def _policy(self, account: str) -> Callable[[str, str], sas.StoredPolicy | None]:
        def lookup(container: str, identifier: str) -> sas.StoredPolicy | None:
            found = containers.stored_policy(self.db, account, container, identifier)
            return None if found is None else sas.StoredPolicy(*found)

        return lookup

    def _prepare(
        self, scope: Scope, receive: Receive, now: float, base: dict[str, str]
    ) -> tuple[BlobRequest, AccountView]:
        host = host_of(scope)
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        path: str = scope["path"]
        query_string = scope.get("query_string", b"").decode("latin-1")
        if (
            len(raw_path) > _MAX_RAW_PATH
            or len(query_string) > _MAX_QUERY
            or len(scope["headers"]) > _MAX_HEADERS
        ):
            raise errors.invalid_uri()
        host_header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), host)
        if host.endswith(BLOB_SUFFIX):
            account_name = host[: -len(BLOB_SUFFIX)]
            rest = path.lstrip("/")
            endpoint = f"https://{host_header}"
        elif host in LOCAL_HOSTS:
            account_name, _, rest = path.lstrip("/").partition("/")
            endpoint = f"https://{host_header}/{account_name}"
        else:
            raise errors.account_not_found()
        container, _, blob = rest.partition("/")
        headers: dict[str, str] = {}
        pairs: list[tuple[str, str]] = []
        for key, value in scope["headers"]:
            name, text = key.decode("latin-1").lower(), value.decode("latin-1")
            pairs.append((name, text))
            headers[name] = (
                f"{headers[name]},{text}" if name in headers and name.startswith("x-ms-meta-") else text
            )
        query, _ = parse_query(scope)
        if any("\x00" in item for item in (path, *query.keys(), *query.values())):
            raise errors.invalid_uri()
        req = BlobRequest(
            method=scope["method"],
            account=account_name,
            container=container or None,
            blob=blob or None,
            query=query,
            query_string=query_string,
            headers=headers,
            raw_path=raw_path,
            receive=receive,
            now=now,
            origin=self.origins.origin(scope),
            endpoint=endpoint,
            header_pairs=pairs,
        )
        version = headers.get("x-ms-version")
        if version is not None:
            if version not in SUPPORTED_VERSIONS:
                raise errors.invalid_header("x-ms-version", version)
            base["x-ms-version"] = version
        elif "authorization" in headers:
            raise errors.missing_header("x-ms-version")
        elif query.get("sv") in SUPPORTED_VERSIONS:
            base["x-ms-version"] = query["sv"]
        account = self.accounts.view(account_name) if 3 <= len(account_name) <= 24 else None
        if account is None:
            raise errors.account_not_found()
        if not allows(account.network_rules(), req.origin, tenant_id=account.tenant_id):
            raise errors.authorization_failure()
        if req.container is not None:
            names.check_container(req.container)
        if req.blob is not None:
            names.check_blob(req.blob)
        return req, account

    async def _send_error(
        self,
        send: Send,
        exc: errors.StorageError,
        base: dict[str, str],
        request_id: str,
        now: float,
        head: bool,
    ) -> None:
        headers = dict(base)
        headers.update(exc.headers)
        if exc.status == 304:
            await _start(send, 304, headers, None, 0)
            await send({"type": "http.response.body", "body": b""})
            return
        headers["x-ms-error-code"] = exc.code
        body = exc.body(request_id, iso7(now))
        await _start(send, exc.status, headers, errors.XML_TYPE, len(body))
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _send_reply(self, send: Send, reply: Reply, base: dict[str, str], head: bool) -> None:
        headers = dict(base)
        headers.update(reply.headers)
        content_type = reply.content_type
        if "Content-Type" in headers:
            content_type = headers.pop("Content-Type").encode("latin-1", "replace")
        length = reply.stream[2] if reply.stream is not None else len(reply.body)
        await _start(send, reply.status, headers, content_type, length)
        if head or reply.status in (204, 304):
            await send({"type": "http.response.body", "body": b""})
        elif reply.stream is not None:
            await self.files.send(send, *reply.stream)
        else:
            await send({"type": "http.response.body", "body": reply.body})


async def _start(
    send: Send, status: int, headers: dict[str, str], content_type: bytes | None, length: int
) -> None:
    raw: list[tuple[bytes, bytes]] = [(b"content-length", str(length).encode())]
    if content_type is not None:
        raw.append((b"content-type", content_type))
    for key, value in headers.items():
        raw.append((key.lower().encode("latin-1"), value.encode("latin-1", "replace")))
    await send({"type": "http.response.start", "status": status, "headers": raw})


class Route:
    """One authenticated request: which operation, its authorization, and running it."""

    def __init__(self, app: BlobApp, req: BlobRequest, account: AccountView, principal: Principal) -> None:
        self.app = app
        self.db = app.db
        self.files = app.files
        self.req = req
        self.account = account
        self.principal = principal

    def _attributes(self, op_name: str) -> BlobAttributes:
        req = self.req
        sub = None
        tags: dict[str, str] | None = None
        if op_name == "list_blobs":
            sub = SUB_OPERATION_BLOB_LIST
        elif op_name in ("create_blob", "write_blob") and "x-ms-tags" in req.headers:
            sub = SUB_OPERATION_WITH_TAG_HEADERS
            tags = names.tags_from_header(req.headers["x-ms-tags"])
        elif req.query.get("comp", "").lower() == "tier":
            sub = SUB_OPERATION_WRITE_TIER
        values = request_attributes(
            req.query.get("prefix", "") if op_name == "list_blobs" else None,
            req.query.get("snapshot"),
            tags,
            sub,
        )

        def stored_tags() -> dict[str, str] | None:
            if req.container is None or req.blob is None:
                return None
            row = store.blob(self.db, req.account, req.container, req.blob, req.query.get("snapshot", ""))
            return None if row is None else dict(store.loads(row.tags))

        return BlobAttributes(req.account, req.container, req.blob, values, stored_tags)

    def _allow(self, op_name: str) -> None:
        if op_name == "create_blob" and self.principal.kind == "bearer":
            try:
                self._check("create_blob")
            except errors.StorageError as exc:
                req = self.req
                assert req.container is not None and req.blob is not None
                if exc.code != "AuthorizationPermissionMismatch" or store.blob(
                    self.db, req.account, req.container, req.blob
                ):
                    raise
                self._check("add_blob")  # a new blob: add/action suffices, and it stays a creation
                req.headers["if-none-match"] = "*"
            return
        self._check(op_name)

    def _check(self, op_name: str) -> None:
        op = OPS[op_name]
        public: str | None = None
        if self.principal.kind == "anonymous" and self.req.container is not None and op.public:
            row = containers.require(self.db, self.account.name, self.req.container)
            public = row.public_access
        self.app.access.authorize(
            self.principal,
            op,
            self.account,
            self.req.container,
            public_access=public,
            allows_public=self.account.allows_blob_public_access(),
            attributes=self._attributes(op_name) if op.data else None,
        )

    async def run(self) -> Reply:
        req = self.req
        comp = req.query.get("comp", "").lower()
        restype = req.query.get("restype", "").lower()
        if "versionid" in req.query:
            raise errors.blob_not_found()  # no blob versioning here: no version exists
        if req.blob is not None and "snapshot" in req.query and req.method == "PUT":
            # A snapshot is read-only; writes address the base blob (and a snapshot SAS, whose
            # signature covers the snapshot, must never write it).
            raise errors.invalid_query(
                "snapshot", req.query["snapshot"][:64], "A snapshot cannot be written."
            )
        if req.container is None:
            return await self._service(comp, restype)
        if req.blob is None:
            return await self._container(req.container, comp, restype)
        return await self._blob(comp)

    async def _service(self, comp: str, restype: str) -> Reply:
        method = self.req.method
        if comp == "blobs" and method == "GET":
            self._allow("find_account")
            return tags.find(self.db, self.req, None)
        if comp == "list" and method == "GET":
            self._allow("list_containers")
            return listing.list_containers(self.db, self.req)
        if comp == "properties" and restype == "service" and method in ("GET", "HEAD"):
            self._allow("service_properties")
            return service.service_properties()
        if comp == "properties" and restype == "account" and method in ("GET", "HEAD"):
            self._allow("account_info")
            return service.account_info(self.account)
        if comp == "userdelegationkey" and restype == "service" and method == "POST":
            if self.principal.kind != "bearer" or self.principal.caller is None:
                raise errors.permission_mismatch()
            self._allow("user_delegation_key")
            return await service.user_delegation_key(
                self.req, self.account, self.principal.caller, self.app.access.delegation_secret
            )
        if method not in ("GET", "HEAD", "POST", "PUT"):
            raise errors.unsupported_verb()
        raise errors.invalid_query("comp", self.req.query.get("comp", ""))

    async def _container(self, name: str, comp: str, restype: str) -> Reply:
        method, req, db = self.req.method, self.req, self.db
        if restype != "container":
            raise errors.invalid_uri()
        if comp == "":
            if method == "PUT":
                self._allow("create_container")
                return containers.create(db, req, self.account, name)
            if method == "DELETE":
                self._allow("delete_container")
                return await containers.delete(db, self.files, req, self.account, name)
        if comp in ("", "metadata") and method in ("GET", "HEAD"):
            self._allow("container_properties")
            return containers.properties(db, req, containers.require(db, self.account.name, name))
        if comp == "metadata" and method == "PUT":
            self._allow("set_container_metadata")
            return containers.set_metadata(db, req, self.account, name)
        if comp == "acl" and method in ("GET", "HEAD"):
            self._allow("get_acl")
            return containers.get_acl(req, containers.require(db, self.account.name, name))
        if comp == "acl" and method == "PUT":
            self._allow("set_acl")
            return await containers.set_acl(db, req, self.account, name)
        if comp == "lease" and method == "PUT":
            self._allow("lease_container")
            return containers.lease(db, req, self.account, name)
        if comp == "blobs" and method == "GET":
            self._allow("find_container")
            containers.require(db, self.account.name, name)
            return tags.find(db, req, name)
        if comp == "list" and method == "GET":
            self._allow("list_blobs")
            containers.require(db, self.account.name, name)
            return listing.list_blobs(db, req)
        if comp in ("", "metadata", "acl", "lease", "list", "blobs"):
            raise errors.unsupported_verb()
        raise errors.invalid_query("comp", req.query.get("comp", ""))

    def _creation(self) -> None:
        """A SAS with ``c`` but not ``w`` may create a blob, never overwrite one."""
        grant = self.principal.grant
        if grant is not None and not sas.allows(grant, "w"):
            self.req.headers["if-none-match"] = "*"

    async def _copy(self, comp: str) -> Reply:
        req, db, files = self.req, self.db, self.files
        if comp == "block":
            self._allow("write_blob")
        else:
            self._allow("create_blob")
            self._tags_too()
            self._creation()
        source = copy.authorize_source(
            db, req, self.app.accounts, self.app.access, self.principal, self.account
        )
        if comp == "block":
            return await copy.put_block_from_url(db, files, req, source)
        from_url = "x-ms-blob-type" in req.headers
        if from_url:
            if req.headers["x-ms-blob-type"] != "BlockBlob":
                raise errors.invalid_header("x-ms-blob-type", req.headers["x-ms-blob-type"])
            if req.content_length(required=False, limit=0):
                raise errors.invalid_header("Content-Length", req.headers.get("content-length", ""))
        return await copy.copy_blob(db, files, req, source, from_url=from_url)

    def _tags_too(self) -> None:
        """Tags set with the upload (``x-ms-tags``) need the tags right too (REST docs, Put Blob)."""
        if "x-ms-tags" in self.req.headers:
            self._allow("write_tags")

    async def _blob(self, comp: str) -> Reply:
        method, req, db, files = self.req.method, self.req, self.db, self.files
        if method == "PUT":
            return await self._put_blob(comp)
        if method in ("GET", "HEAD"):
            if comp == "":
                self._allow("read_blob")
                return await blob_ops.get_blob(db, files, req, head=method == "HEAD")
            if comp == "metadata":
                self._allow("read_blob")
                row = blob_ops.require_blob(db, req, blob_ops.snapshot_param(req))
                headers = {
                    k: v for k, v in blob_ops.blob_headers(row, req.now).items() if k.startswith("x-ms-meta-")
                }
                headers.update({"ETag": store.quoted(row.etag), "Last-Modified": rfc1123(row.last_modified)})
                return Reply(200, headers)
            if comp == "blocklist" and method == "GET":
                self._allow("read_blob")
                return blocks.get_block_list(db, req)
            if comp == "tags" and method == "GET":
                self._allow("read_tags")
                return blob_ops.get_tags(db, req)
            raise errors.invalid_query("comp", req.query.get("comp", ""))
        if method == "DELETE" and comp == "":
            self._allow("delete_blob")
            return await blob_ops.delete_blob(db, files, req)
        raise errors.unsupported_verb()

    async def _put_blob(self, comp: str) -> Reply:
        req, db, files = self.req, self.db, self.files
        if "x-ms-structured-body" in req.headers:
            # A structured-message body (the SDK's "crc64" validation of streams) would be stored
            # wrapped: refused rather than stored wrong.
            raise errors.StorageError(
                400,
                "UnsupportedHeader",
                "One of the headers specified in the request is not supported.",
                details=[("HeaderName", "x-ms-structured-body")],
            )
        if "x-ms-copy-source" in req.headers and comp in ("", "block"):
            return await self._copy(comp)
        if comp == "copy":
            self._allow("write_blob")
            blob_ops.require_blob(db, req)
            raise errors.StorageError(
                409, "NoPendingCopyOperation", "There is currently no pending copy operation."
            )
        if comp == "":
            self._allow("create_blob")
            self._tags_too()
            self._creation()
            return await blob_ops.put_blob(db, files, req)
        if comp == "block":
            self._allow("write_blob")
            return await blocks.put_block(db, files, req)
        if comp == "blocklist":
            self._allow("create_blob")
            self._tags_too()
            self._creation()
            return await blocks.put_block_list(db, files, req)
        if comp == "metadata":
            self._allow("write_blob")
            return blob_ops.set_metadata(db, req)
        if comp == "properties":
            self._allow("write_blob")
            return blob_ops.set_properties(db, req)
        if comp == "lease":
            self._allow("write_blob")
            return blob_ops.lease(db, req)
        if comp == "snapshot":
            self._allow("create_blob")
            return await blob_ops.snapshot(db, files, req)
        if comp == "tags":
            self._allow("write_tags")
            return await blob_ops.set_tags(db, req)
        if comp == "tier":
            self._allow("write_blob")
            return blob_ops.set_tier(db, req)
        raise errors.invalid_query("comp", req.query.get("comp", ""))
