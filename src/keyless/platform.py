"""Assembles Keyless from its pieces: one object per running instance."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keyless.arm.engine import ResourceManager
from keyless.arm.http import ArmApp
from keyless.arm.visibility import SkipTokens
from keyless.authority.federation import issuer_url
from keyless.authority.http import AuthorityApp
from keyless.authority.keys import KeySet, database_has_signing_keys
from keyless.authority.service import Authority
from keyless.config import Settings
from keyless.directory import AdminCredentials, Directory
from keyless.edge.ca import LocalCA
from keyless.edge.forward import Forwarder
from keyless.edge.routing import HostRouter
from keyless.graph.http import GRAPH_HOST, GraphApp
from keyless.graph.service import GraphService
from keyless.network import OriginResolver
from keyless.outbound import OutboundPolicy
from keyless.providers.compute.provider import SiteConfigType, SiteType, VirtualMachineType
from keyless.providers.keyvault.access import VaultAccess
from keyless.providers.keyvault.deleted_vaults import KeyVaultOperations
from keyless.providers.keyvault.http import VAULT_SUFFIX, KeyVaultApp
from keyless.providers.keyvault.keys import KeyService
from keyless.providers.keyvault.rotation import Maintenance
from keyless.providers.keyvault.rotation_policy import RotationPolicies
from keyless.providers.keyvault.secrets import SecretService
from keyless.providers.keyvault.vaults import VaultType
from keyless.providers.managedidentity.provider import (
    FederatedIdentityCredentialType,
    UserAssignedIdentityType,
)
from keyless.providers.media.accounts import MediaServiceType
from keyless.providers.media.catalog import media_child_types
from keyless.providers.media.customer_keys import KeyVaultClient
from keyless.providers.media.http import MediaFront
from keyless.providers.media.job_runner import JobRunner, RunnerSettings
from keyless.providers.media.job_worker import MediaJobWorker
from keyless.providers.media.jobs import JobType
from keyless.providers.media.key_monitor import CustomerKeyMonitor
from keyless.providers.media.keyring import AccountKeyring
from keyless.providers.media.storage_access import MediaStorage
from keyless.providers.media.streaming_endpoints import HOST_SUFFIX as STREAMING_SUFFIX
from keyless.providers.media.streaming_host import StreamingHostApp
from keyless.providers.oidcissuer.provider import OidcIssuerType
from keyless.providers.resource_groups import ResourceGroupType
from keyless.providers.storage.account_operations import StorageOperations
from keyless.providers.storage.accounts import StorageAccounts, StorageAccountType
from keyless.providers.storage.blob.access import BlobAccess
from keyless.providers.storage.blob.files import BlobFiles
from keyless.providers.storage.blob.http import BLOB_SUFFIX, BlobApp
from keyless.providers.storage.blob.sweeper import BlobSweeper
from keyless.rbac.arm import (
    DENY_ASSIGNMENT_API_VERSIONS,
    PERMISSIONS_API_VERSIONS,
    ROLE_ASSIGNMENT_API_VERSIONS,
    ROLE_DEFINITION_API_VERSIONS,
    AuthorizationApi,
)
from keyless.rbac.directory_api import DirectoryApi
from keyless.rbac.service import RbacService
from keyless.sealing import RootKeyError, Sealer, create_root_key, load_root_key, write_private_file
from keyless.service_calls import IdentityTokens, ServiceCaller
from keyless.store.db import Database, sqlite_file
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


class InstanceError(Exception):
    """The data directory or database is not a Keyless instance a command can act on (the message
    says why); the CLI prints it as it is."""


class Platform:
    def __init__(self, settings: Settings, *, first_start: bool = False) -> None:
        """``first_start`` (``keyless up`` only): create the data directory (0700) and, if it has no
        root key and the database holds no keys yet, the root key. RootKeyError if the root key is
        missing otherwise: nothing but a first start ever makes one."""
        self.settings = settings
        # Loaded before the database is touched, so a wrong --data-dir creates nothing.
        root_key = None if first_start else load_root_key(settings.root_key_file)
        if first_start:
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.db = Database(settings.resolved_database_url)
        try:
            self.sealer = Sealer(root_key or self._first_start_root_key())
        except RootKeyError:
            self.db.dispose()
            raise
        self.ca = LocalCA(settings.ca_dir)
        self.keyset = KeySet(self.db, self.sealer, settings.signing_key_grace)
        self.authority = Authority(
            self.db,
            self.keyset,
            settings.client_token_lifetime,
            settings.managed_identity_token_lifetime,
            settings.token_leeway,
            OutboundPolicy(
                allow_private=settings.outbound_allow_private, ca_file=str(settings.ca_bundle_file)
            ),
        )
        # The one authorizer: RBAC, shared by the resource manager and (later) every data plane.
        self.rbac = RbacService(
            self.db, role_assignment_limit=settings.role_assignment_limit, enforce=settings.rbac_enforcement
        )
        # The one directory; group-membership changes go through RBAC's versioned write.
        self.directory = Directory(self.db, self.rbac.membership_change)
        self.resource_manager = ResourceManager(
            self.db, self.rbac, settings.page_size, SkipTokens(self.sealer)
        )
        self.resource_manager.on_scope_deleted(self.rbac.forget_scope)
        self.host_tokens = HostTokens(self.sealer)
        self.storage_account_type = StorageAccountType(self.sealer)
        self.storage_accounts = StorageAccounts(self.db, self.sealer)
        for resource_type in (
            ResourceGroupType(),
            UserAssignedIdentityType(),
            FederatedIdentityCredentialType(),
            OidcIssuerType(self.authority.federation.mint, issuer_url),
            # Moving a workload into a subnet needs subnets/join/action there, as a NIC does in Azure.
            VirtualMachineType(self.host_tokens, authorizer=self.rbac),
            SiteType(self.host_tokens, authorizer=self.rbac),
            SiteConfigType(),
            VaultType(),
            self.storage_account_type,
        ):
            self.resource_manager.register(resource_type)
        self.workloads = WorkloadIdentityService(
            self.db, self.resource_manager, self.host_tokens, self.authority, settings.identity_rate_limit
        )
        self.arm_app = ArmApp(self.resource_manager, self.authority.validator, self.directory)
        self.arm_app.extensions["microsoft.authorization"] = AuthorizationApi(self.rbac, settings.page_size)
        # `GET /providers/Microsoft.Authorization` lists the types the extension serves.
        self.arm_app.generic.declare(
            "Microsoft.Authorization",
            {
                "roleAssignments": ROLE_ASSIGNMENT_API_VERSIONS,
                "roleDefinitions": ROLE_DEFINITION_API_VERSIONS,
                "permissions": PERMISSIONS_API_VERSIONS,
                "denyAssignments": DENY_ASSIGNMENT_API_VERSIONS,
            },
        )
        self.arm_app.extensions["keyless.directory"] = DirectoryApi(self.rbac, self.directory)
        KeyVaultOperations(self.resource_manager).register(self.arm_app.provider_operations)
        StorageOperations(self.resource_manager).register(self.arm_app.provider_operations)
        self.forwarder = Forwarder()
        self.router = HostRouter(self.arm_app, AuthorityApp(self.authority), InternalApp(), self.forwarder)
        self.router.add_host(GRAPH_HOST, GraphApp(GraphService(self.db, self.rbac), self.authority.validator))
        # Data planes: every request gets its network origin from the edge (keyless.network).
        self.origins = OriginResolver(self.workloads)
        self.vault_keys = KeyService(self.db, self.sealer, RotationPolicies(settings.keyvault_rotation_floor))
        self.vault_secrets = SecretService(self.db, self.sealer)
        self.vault_app = KeyVaultApp(
            self.db,
            self.authority.validator,
            VaultAccess(self.rbac),
            self.vault_keys,
            self.vault_secrets,
            self.origins,
            lambda: self.tenant_id,
        )
        self.router.add_suffix(VAULT_SUFFIX, self.vault_app)
        self.rbac.data_scope_types.update(
            {"microsoft.keyvault/vaults/keys", "microsoft.keyvault/vaults/secrets"}
        )
        # The Blob service. User delegation keys are derived from the root key, never stored.
        self.blob_files = BlobFiles(settings.resolved_blob_dir)
        self.blob_sweeper = BlobSweeper(
            self.db, self.blob_files, settings.blob_sweep_interval, settings.blob_sweep_grace
        )
        self.blob_app = BlobApp(
            self.db,
            self.storage_accounts,
            BlobAccess(self.authority.validator, self.rbac, self.sealer.derive("storage-user-delegation")),
            self.blob_files,
            self.origins,
            lambda: self.tenant_id,
        )
        self.router.add_suffix(BLOB_SUFFIX, self.blob_app)
        self.router.add_path_style(self.blob_app.is_account, self.blob_app)
        self.rbac.data_scope_types.update(
            {
                "microsoft.storage/storageaccounts/blobservices",
                "microsoft.storage/storageaccounts/blobservices/containers",
            }
        )
        # Media Services: reaches Key Vault and Storage in-process, as its accounts' identities.
        self.identity_tokens = IdentityTokens(self.authority)
        service_caller = ServiceCaller(self.identity_tokens)
        self.media_keyring = AccountKeyring(
            self.db, self.sealer, KeyVaultClient(service_caller, self.identity_tokens, self.vault_app)
        )
        self.media_account_type = MediaServiceType(self.media_keyring)
        self.resource_manager.register(self.media_account_type)
        media_storage = MediaStorage(
            service_caller, self.identity_tokens, self.blob_app, self.storage_accounts
        )
        self.media_front = MediaFront(
            self.resource_manager, self.media_account_type, self.media_keyring, media_storage
        )
        for child in media_child_types(media_storage):
            self.resource_manager.register(child)
            self.media_front.children[child.type_key] = child
        self.media_front.register(self.arm_app.provider_operations)
        # Progressive download from running streaming endpoints (`*.streaming.media.azure.net`).
        self.media_streaming_app = StreamingHostApp(self.media_front, self.origins)
        self.router.add_suffix(STREAMING_SUFFIX, self.media_streaming_app)
        self.media_key_monitor = CustomerKeyMonitor(self.media_keyring, settings.media_key_check_interval)
        # Media jobs: encoded by whichever replica claims them (job_queue), through the blob data
        # plane as the account; a JobInputHttp on a host Keyless serves is fetched from Keyless
        # itself as an outside caller, any other within the outbound policy (https, public addresses).
        self.media_http_policy = OutboundPolicy(
            allow_private=settings.outbound_allow_private,
            ca_file=str(settings.ca_bundle_file),
            timeout=float(settings.media_http_input_timeout),
            max_bytes=settings.media_http_input_max_bytes,
        )
        self.media_jobs = MediaJobWorker(
            self.db,
            JobRunner(
                self.media_front,
                RunnerSettings(
                    settings.media_work_dir,
                    self.media_http_policy,
                    settings.media_encoder_threads,
                    float(settings.media_encode_timeout),
                ),
                lambda: service_caller.client(self.router, None),
                self.router.serves,
            ),
            concurrency=settings.media_job_concurrency,
            lease_seconds=settings.media_job_lease,
            poll_seconds=settings.media_job_poll_interval,
        )
        for child in self.media_front.children.values():
            if isinstance(child, JobType):  # a job created here starts without waiting for a poll
                child.on_created = self.media_jobs.nudge
                self.resource_manager.on_change(child.committed)
        self.keyvault_maintenance = Maintenance(self.db, self.vault_keys, settings.keyvault_rotation_interval)
        self._background: list[asyncio.Task[None]] = []
        self.authority.federation.serves_host = self.router.serves
        identity_endpoints = IdentityEndpointsApp(self.workloads)
        self.router.add_plain_http_host(IMDS_HOST, identity_endpoints)
        self.router.add_local_http_prefix("imds", identity_endpoints)
        self.router.add_local_http_prefix("msi", identity_endpoints)
        self.tenant_id = ""
        self.subscription_id = ""
        self.admin: AdminCredentials | None = None

    def _first_start_root_key(self) -> bytes:
        path = self.settings.root_key_file
        if path.exists():
            return load_root_key(path)
        if database_has_signing_keys(self.db):
            raise RootKeyError(
                f"No root key at {path}, but the database already holds keys sealed under one. Keyless "
                "makes a root key only on the first start of a data directory and its database: copy "
                "root.key (mode 0600) from the data directory that first started on this database."
            )
        return create_root_key(path)

    def start(self) -> None:
        """Everything first start creates, and every start checks: schema, CA, keys, admin.

        RootKeyError if the root key is not the one the database's keys are sealed under.
        """
        self.db.migrate()
        self.ca.ensure()
        try:
            self.keyset.ensure_active()
        except RootKeyError as exc:
            raise RootKeyError(f"{self.settings.root_key_file}: {exc}") from exc
        self.tenant_id, self.subscription_id, admin_object_id = self.directory.bootstrap()
        self.admin = self._admin_credentials(admin_object_id)

    def _admin_credentials(self, admin_object_id: str) -> AdminCredentials:
        path = self.settings.admin_credentials_file
        if path.exists():
            existing = AdminCredentials.from_json(path.read_bytes())
            if existing.object_id == admin_object_id:
                return existing
        # First start, or a data directory joining a shared database: a secret of its own.
        from keyless.directory import principals

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

    def start_background(self) -> None:
        """Background work every replica runs, each pass under a database lease: Key Vault's policy
        rotation and purges, and the sweep of blob files no row refers to."""
        self._background.append(asyncio.create_task(self.keyvault_maintenance.run_forever()))
        self._background.append(asyncio.create_task(self.blob_sweeper.run_forever()))
        self._background.append(asyncio.create_task(self.media_key_monitor.run_forever()))
        self._background.append(asyncio.create_task(self.media_jobs.run_forever()))

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        await self.forwarder.close()
        await self.authority.federation.close()
        await self.media_jobs.runner.close()
        self.db.dispose()


def rotate_signing_key(settings: Settings) -> str:
    """``keyless authority rotate-keys``: a new active signing key in the instance's database (its kid).

    Creates nothing else: RootKeyError if the data directory has no root key or it is not the
    database's; InstanceError if the database is not one Keyless has started on.
    """
    sealer = Sealer(load_root_key(settings.root_key_file))
    url = settings.resolved_database_url
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise InstanceError(f"No Keyless database at {path}; `keyless up` creates it.")
    db = Database(url)
    try:
        if not database_has_signing_keys(db):
            raise InstanceError(
                "The database holds no signing keys: start Keyless on it with `keyless up` first."
            )
        keyset = KeySet(db, sealer, settings.signing_key_grace)
        try:
            return keyset.rotate()
        except RootKeyError as exc:
            raise RootKeyError(f"{settings.root_key_file}: {exc}") from exc
    finally:
        db.dispose()
