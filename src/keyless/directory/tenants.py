"""The directory's instance-level operations: first-start bootstrap (tenant, subscription, local
admin), subscriptions, and the writes ``keyless ad`` and Graph make (service principals, groups)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from keyless.directory import groups, principals
from keyless.store.db import Database
from keyless.store.tables import instance_settings, role_assignments, subscriptions, tenants

OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
ADMIN_NAME = "keyless-admin"


class NameTaken(Exception):
    """An identifier URI is already another app's in the tenant."""


class _NothingChanged(Exception):
    """Rolls a write transaction back when it turned out to be a no-op."""


@dataclass(frozen=True)
class AdminCredentials:
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    object_id: str

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "tenantId": self.tenant_id,
                "subscriptionId": self.subscription_id,
                "clientId": self.client_id,
                "clientSecret": self.client_secret,
                "objectId": self.object_id,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, raw: bytes) -> AdminCredentials:
        data = orjson.loads(raw)
        return cls(
            data["tenantId"], data["subscriptionId"], data["clientId"], data["clientSecret"], data["objectId"]
        )


class Directory:
    def __init__(
        self,
        db: Database,
        membership_change: Callable[[], AbstractContextManager[sa.Connection]] | None = None,
    ) -> None:
        """``membership_change`` opens the write transaction of a group-membership change (RBAC's,
        which bumps its version); without RBAC a plain write transaction."""
        self.db = db
        self._membership_change = membership_change or db.write

    # --- principals and groups -------------------------------------------------------------

    def create_service_principal(
        self, tenant_id: str, display_name: str, identifier_uris: Sequence[str] = ()
    ) -> tuple[principals.Principal, str, list[str]]:
        """An app registration and its service principal (one object here, as ``az ad sp
        create-for-rbac`` makes them) with a client secret: (principal, secret, names). NameTaken
        when an identifier URI belongs to another app of the tenant (nothing is written then)."""
        with self.db.write() as conn:
            principal = principals.create_principal(
                conn,
                tenant_id=tenant_id,
                principal_type=principals.SERVICE_PRINCIPAL,
                display_name=display_name,
            )
            taken = principals.add_names(conn, principal, identifier_uris)
            if taken:
                raise NameTaken(taken[0])  # rolls the whole transaction back
            secret = principals.add_client_secret(conn, principal.object_id)
            names = principals.names_of(conn, [principal.object_id]).get(principal.object_id, [])
        return principal, secret, names

    def create_group(self, tenant_id: str, display_name: str) -> groups.Group:
        with self.db.write() as conn:
            return groups.create(conn, tenant_id, display_name)

    def group(self, group_id: str) -> tuple[groups.Group, list[str]] | None:
        """The group and its direct members' object ids, or None."""
        with self.db.read() as conn:
            group = groups.get(conn, group_id)
            return (group, groups.members(conn, group.object_id)) if group is not None else None

    def add_group_member(self, group_id: str, member_id: str) -> bool:
        """False when it already was a member; groups.NoSuchObject for an unknown group or member."""
        with self._membership_change() as conn:
            return groups.add_member(conn, group_id, member_id)

    def remove_group_member(self, group_id: str, member_id: str) -> bool:
        """False when it was not a member (the transaction, and its version bump, roll back)."""
        try:
            with self._membership_change() as conn:
                if not groups.remove_member(conn, group_id, member_id):
                    raise _NothingChanged()
        except _NothingChanged:
            return False
        return True

    # --- bootstrap -----------------------------------------------------------------------

    def setting(self, conn: sa.Connection, key: str) -> str | None:
        row = conn.execute(sa.select(instance_settings.c.value).where(instance_settings.c.key == key)).first()
        return row.value if row is not None else None

    def bootstrap(self) -> tuple[str, str, str]:
        """Create the tenant, default subscription and admin principal once; return their ids."""
        with self.db.write() as conn:
            tenant_id = self.setting(conn, "tenant_id")
            if tenant_id is None:
                now = time.time()
                tenant_id, subscription_id = str(uuid.uuid4()), str(uuid.uuid4())
                conn.execute(
                    tenants.insert().values(
                        tenant_id=tenant_id,
                        display_name="Keyless",
                        default_domain=f"keyless{tenant_id[:8]}.onmicrosoft.com",
                        created_at=now,
                    )
                )
                conn.execute(
                    subscriptions.insert().values(
                        subscription_id=subscription_id,
                        tenant_id=tenant_id,
                        display_name="Keyless Subscription",
                        state="Enabled",
                        created_at=now,
                    )
                )
                admin = principals.create_principal(
                    conn,
                    tenant_id=tenant_id,
                    principal_type=principals.SERVICE_PRINCIPAL,
                    display_name=ADMIN_NAME,
                )
                scope = f"/subscriptions/{subscription_id}"
                name = str(uuid.uuid4())
                conn.execute(
                    role_assignments.insert().values(
                        id_key=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}".lower(),
                        name=name,
                        scope=scope,
                        scope_key=scope.lower(),
                        role_definition_name=OWNER_ROLE,
                        principal_id=admin.object_id,
                        principal_type=principals.SERVICE_PRINCIPAL,
                        description="The local administrator, created on first start.",
                        created_at=now,
                        created_by=admin.object_id,
                        updated_at=now,
                        updated_by=admin.object_id,
                    )
                )
                for key, value in (
                    ("tenant_id", tenant_id),
                    ("subscription_id", subscription_id),
                    ("admin_object_id", admin.object_id),
                ):
                    conn.execute(instance_settings.insert().values(key=key, value=value))
            subscription_id = self.setting(conn, "subscription_id") or ""
            admin_object_id = self.setting(conn, "admin_object_id") or ""
        return tenant_id, subscription_id, admin_object_id

    def issue_admin_secret(self, object_id: str) -> str:
        with self.db.write() as conn:
            return principals.add_client_secret(conn, object_id)

    # --- reads ---------------------------------------------------------------------------

    def subscriptions_for(self, tenant_id: str) -> list[Any]:
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(subscriptions)
                    .where(subscriptions.c.tenant_id == tenant_id)
                    .order_by(subscriptions.c.subscription_id)
                ).all()
            )

    def subscription(self, subscription_id: str) -> Any:
        with self.db.read() as conn:
            return conn.execute(
                sa.select(subscriptions).where(
                    sa.func.lower(subscriptions.c.subscription_id) == subscription_id.lower()
                )
            ).first()

    def render_subscription(self, row: Any) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{row.subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": row.subscription_id,
            "tenantId": row.tenant_id,
            "displayName": row.display_name,
            "state": row.state,
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }

    def render_tenant(self, tenant_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id)).first()
        domain = row.default_domain if row is not None else ""
        return {
            "id": f"/tenants/{tenant_id}",
            "tenantId": tenant_id,
            "tenantCategory": "Home",
            "displayName": row.display_name if row is not None else "",
            "defaultDomain": domain,
            "domains": [domain],
            "tenantType": "AAD",
        }

    def cloud_metadata(self, base: str) -> dict[str, Any]:
        return {
            "portal": "https://portal.azure.com",
            "authentication": {
                "loginEndpoint": "https://login.microsoftonline.com",
                "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "media": "https://rest.media.azure.net",
            "graphAudience": "https://graph.windows.net/",
            "graph": "https://graph.windows.net/",
            "name": "AzureCloud",
            "suffixes": {
                "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                "acrLoginServer": "azurecr.io",
                "sqlServerHostname": "database.windows.net",
                "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                "keyVaultDns": "vault.azure.net",
                "storage": "core.windows.net",
                "azureFrontDoorEndpointSuffix": "azurefd.net",
                "storageSyncEndpointSuffix": "afs.azure.net",
                "mhsmDns": "managedhsm.azure.net",
                "mysqlServerEndpoint": "mysql.database.azure.com",
                "postgresqlServerEndpoint": "postgres.database.azure.com",
                "mariadbServerEndpoint": "mariadb.database.azure.com",
                "synapseAnalytics": "dev.azuresynapse.net",
                "attestationEndpoint": "attest.azure.net",
            },
            "batch": "https://batch.core.windows.net/",
            "resourceManager": "https://management.azure.com/",
            "vmImageAliasDoc": "",
            "activeDirectoryDataLake": "https://datalake.azure.net/",
            "sqlManagement": "https://management.core.windows.net:8443/",
            "gallery": "https://gallery.azure.com/",
            "microsoftGraphResourceId": "https://graph.microsoft.com/",
        }
