"""Assembles Keyless from its pieces: one object per running instance."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keyless.arm.engine import ResourceManager
from keyless.arm.http import ArmApp
from keyless.authority.http import AuthorityApp
from keyless.authority.keys import KeySet
from keyless.authority.service import Authority
from keyless.config import Settings
from keyless.directory import AdminCredentials, Directory
from keyless.edge.ca import LocalCA
from keyless.edge.forward import Forwarder
from keyless.edge.routing import HostRouter
from keyless.providers.compute.provider import SiteType, VirtualMachineType
from keyless.providers.managedidentity.provider import (
    FederatedIdentityCredentialType,
    UserAssignedIdentityType,
)
from keyless.providers.resource_groups import ResourceGroupType
from keyless.rbac.arm import AuthorizationApi
from keyless.rbac.directory_api import DirectoryApi
from keyless.rbac.service import RbacService
from keyless.sealing import Sealer, load_or_create_root_key, write_private_file
from keyless.store.db import Database
from keyless.web import Receive, Scope, Send, send_json
from keyless.workload.hosts import HostTokens
from keyless.workload.http import IMDS_HOST, IdentityEndpointsApp
from keyless.workload.service import WorkloadIdentityService

# The benchmarks' peer: a fixed JSON document of about 600 bytes, the size of the "bare
# Starlette JSON endpoint" the performance anchors were measured with (and of a small resource).
_BARE_DOCUMENT = {
    "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/bare",
    "name": "bare",
    "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
    "location": "westeurope",
    "tags": {},
    "properties": {
        "tenantId": "00000000-0000-0000-0000-000000000000",
        "principalId": "00000000-0000-0000-0000-000000000000",
        "clientId": "00000000-0000-0000-0000-000000000000",
        "isolationScope": "None",
    },
    "systemData": {
        "createdBy": "00000000-0000-0000-0000-000000000000",
        "createdByType": "Application",
        "createdAt": "2026-11-26T00:00:00.0000000Z",
    },
}


async def _bare_starlette(request: Request) -> JSONResponse:
    return JSONResponse(_BARE_DOCUMENT)


class InternalApp:
    """``/_keyless/*``: health for ``keyless status``, and the benchmarks' peers: ``bare`` is a
    bare Starlette JSON endpoint (the peer the issues name), ``bare-asgi`` the same document
    from a raw ASGI callable (the floor of this server stack)."""

    def __init__(self) -> None:
        self._starlette = Starlette(routes=[Route("/_keyless/bare", _bare_starlette)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/_keyless/health":
            await send_json(send, 200, {"status": "ok", "service": "keyless"})
            return
        if scope["path"] == "/_keyless/bare":
            await self._starlette(scope, receive, send)
            return
        if scope["path"] == "/_keyless/bare-asgi":
            await send_json(send, 200, _BARE_DOCUMENT)
            return
        await send_json(send, 404, {"error": {"code": "NotFound", "message": "No such endpoint."}})


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.sealer = Sealer(load_or_create_root_key(settings.root_key_file))
        self.db = Database(settings.resolved_database_url)
        self.ca = LocalCA(settings.ca_dir)
        self.keyset = KeySet(self.db, self.sealer, settings.signing_key_grace)
        self.authority = Authority(
            self.db,
            self.keyset,
            settings.client_token_lifetime,
            settings.managed_identity_token_lifetime,
            settings.token_leeway,
        )
        self.directory = Directory(self.db)
        # The one authorizer: RBAC, shared by the resource manager and (later) every data plane.
        self.rbac = RbacService(
            self.db, role_assignment_limit=settings.role_assignment_limit, enforce=settings.rbac_enforcement
        )
        self.resource_manager = ResourceManager(self.db, self.rbac, settings.page_size)
        self.resource_manager.on_scope_deleted(self.rbac.forget_scope)
        self.host_tokens = HostTokens(self.sealer)
        for resource_type in (
            ResourceGroupType(),
            UserAssignedIdentityType(),
            FederatedIdentityCredentialType(
                self.authority.federation.mint_assertion, self.authority.federation.issuer_of
            ),
            VirtualMachineType(self.host_tokens),
            SiteType(self.host_tokens),
        ):
            self.resource_manager.register(resource_type)
        self.workloads = WorkloadIdentityService(
            self.db, self.resource_manager, self.host_tokens, self.authority, settings.identity_rate_limit
        )
        self.arm_app = ArmApp(self.resource_manager, self.authority.validator, self.directory)
        self.arm_app.extensions["microsoft.authorization"] = AuthorizationApi(self.rbac, settings.page_size)
        self.arm_app.extensions["keyless.directory"] = DirectoryApi(self.rbac)
        self.forwarder = Forwarder()
        self.router = HostRouter(self.arm_app, AuthorityApp(self.authority), InternalApp(), self.forwarder)
        identity_endpoints = IdentityEndpointsApp(self.workloads)
        self.router.add_plain_http_host(IMDS_HOST, identity_endpoints)
        self.router.add_local_http_prefix("imds", identity_endpoints)
        self.router.add_local_http_prefix("msi", identity_endpoints)
        self.tenant_id = ""
        self.subscription_id = ""
        self.admin: AdminCredentials | None = None

    def start(self) -> None:
        """Everything first start creates, and every start checks: schema, CA, keys, admin."""
        self.db.migrate()
        self.ca.ensure()
        self.keyset.ensure_active()
        self.tenant_id, self.subscription_id, admin_object_id = self.directory.bootstrap()
        self.admin = self._admin_credentials(admin_object_id)

    def _admin_credentials(self, admin_object_id: str) -> AdminCredentials:
        path = self.settings.admin_credentials_file
        if path.exists():
            existing = AdminCredentials.from_json(path.read_bytes())
            if existing.object_id == admin_object_id:
                return existing
        # First start, or a data directory joining a shared database: a secret of its own.
        from keyless.authority import principals

        with self.db.read() as conn:
            admin = principals.get_by_object_id(conn, admin_object_id)
        assert admin is not None
        credentials = AdminCredentials(
            tenant_id=self.tenant_id,
            subscription_id=self.subscription_id,
            client_id=admin.app_id,
            client_secret=self.directory.issue_admin_secret(admin_object_id),
            object_id=admin_object_id,
        )
        write_private_file(path, credentials.to_json())
        return credentials

    def describe(self) -> dict[str, Any]:
        return {"tenantId": self.tenant_id, "subscriptionId": self.subscription_id}

    async def close(self) -> None:
        await self.forwarder.close()
        self.db.dispose()
