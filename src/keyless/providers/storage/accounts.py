"""``Microsoft.Storage/storageAccounts``: the account resource (control plane), its keys actions,
and the view of an account the blob data plane reads on every request.

The resource (spec ``specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/
storage.json``; azure-mgmt-storage 25.x sends api-version 2026-09-01, azure-cli's 25.0 2025-08-01):

- ``sku`` ``{name, tier}`` and ``kind`` at the top level; properties checked in
  ``account_properties``; the name rule and global registry in ``account_names``.
- Read-only properties rendered on every read: ``provisioningState`` ``Succeeded``,
  ``primaryEndpoints`` (``https://{name}.{blob|dfs|queue|table|file|web}.core.windows.net/``; a
  BlockBlobStorage account has blob, dfs and web, a FileStorage one file only, a ``Storage``
  (v1) one blob, queue, table and file: spec ``Endpoints``, "Standard_ZRS and Premium_LRS accounts
  only return the blob endpoint"), ``primaryLocation`` (the location), ``statusOfPrimary``
  ``available``, ``creationTime`` and ``keyCreationTime`` ``{key1, key2}``.
- Actions (``ResourceType.actions``; RBAC ``Microsoft.Storage/storageAccounts/listkeys/action`` and
  ``.../regeneratekey/action``, matched without regard to case): ``POST .../listKeys`` and
  ``POST .../regenerateKey`` (``account_keys``).
- Create is a long-running operation: ``account_operations`` answers a creating PUT 202 with a
  Location to poll, as the storage RP does (spec ``StorageAccounts_Create`` responses 200/202).
- Delete frees the name at once and removes the account's containers, blobs and blocks
  (``account_names.release``); the files behind them are the blob data plane's (its hook in
  ``deletion_hooks``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from keyless.arm.engine import RequestContext, StoredResource, iso_time
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming, ResourceType
from keyless.network import NetworkRules
from keyless.providers.storage import account_keys, account_names, account_properties
from keyless.sealing import Sealer
from keyless.store.db import Database
from keyless.store.tables import resources, storage_accounts, subscriptions

NAMESPACE = "Microsoft.Storage"
ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
# Microsoft.Storage api-versions in azure-rest-api-specs (stable and the previews SDKs shipped),
# and what the SDKs send today: azure-mgmt-storage 25.3 (2026-09-01, also knows 2025-08-01,
# 2026-04-01, 2026-06-01), azure-cli 2.8x's azure-mgmt-storage 25.0 (2025-08-01).
API_VERSIONS = frozenset(
    [
        "2015-05-01-preview",
        "2015-06-15",
        "2016-01-01",
        "2016-05-01",
        "2016-12-01",
        "2017-06-01",
        "2017-10-01",
        "2018-02-01",
        "2018-03-01-preview",
        "2018-07-01",
        "2018-11-01",
        "2019-04-01",
        "2019-06-01",
        "2020-08-01-preview",
        "2021-01-01",
        "2021-02-01",
        "2021-04-01",
        "2021-05-01",
        "2021-06-01",
        "2021-08-01",
        "2021-09-01",
        "2022-05-01",
        "2022-09-01",
        "2023-01-01",
        "2023-04-01",
        "2023-05-01",
        "2024-01-01",
        "2025-01-01",
        "2025-06-01",
        "2025-08-01",
        "2026-04-01",
        "2026-06-01",
        "2026-09-01",
    ]
)
ENDPOINT_SUFFIX = "core.windows.net"
_ENDPOINTS = {
    "Storage": ("blob", "queue", "table", "file"),
    "StorageV2": ("dfs", "web", "blob", "queue", "table", "file"),
    "BlobStorage": ("dfs", "web", "blob", "table"),
    "BlockBlobStorage": ("dfs", "web", "blob"),
    "FileStorage": ("file",),
}
# Stored in the document but set only by Keyless (never from a request body).
_SYSTEM = ("creationTime", "keyCreationTime")
# Carried from validate to after_write inside the properties dict; never stored.
_SKU, _KIND = "keyless:sku", "keyless:kind"


def endpoints(name: str, kind: str) -> dict[str, str]:
    """``primaryEndpoints`` of account ``name`` of ``kind``."""
    return {svc: f"https://{name}.{svc}.{ENDPOINT_SUFFIX}/" for svc in _ENDPOINTS.get(kind, ("blob",))}


class StorageAccountType(ResourceType):
    """``Microsoft.Storage/storageAccounts``. The document holds the checked properties plus
    ``creationTime``/``keyCreationTime``; the name and the sealed keys live in ``storage_accounts``,
    claimed in the same transaction."""

    def __init__(self, sealer: Sealer) -> None:
        super().__init__(
            namespace=NAMESPACE,
            type_path="storageAccounts",
            api_versions=API_VERSIONS,
            supports_identity=True,
            name_rule=account_names.AccountNameRule(),
        )
        self.sealer = sealer
        self.actions = {"listKeys": self._list_keys, "regenerateKey": self._regenerate_key}
        # Run inside the delete transaction before the account's blob rows go (account_names).
        self.deletion_hooks: list[account_names.DeletionHook] = []

    # --- writes --------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        old_doc = existing.document if existing is not None else {}
        old = dict(old_doc.get("properties") or {})
        old_sku = (old_doc.get("sku") or {}).get("name")
        sku, kind = account_properties.sku_and_kind(incoming.sku, incoming.kind, old_sku, old_doc.get("kind"))
        if existing is None:
            account_names.check_free(conn, rid.name, rid.key)
        created_at = str(old.get("creationTime") or iso_time(time.time()))
        props = dict(incoming.properties or {})
        out = account_properties.checked(props, old, sku, kind, created_at)
        out["creationTime"] = created_at
        if "keyCreationTime" in old:
            out["keyCreationTime"] = old["keyCreationTime"]
        out[_SKU], out[_KIND] = sku, kind
        return out

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        props = dict(resource.document.get("properties") or {})
        sku, kind = props.pop(_SKU), props.pop(_KIND)
        resource.document["sku"] = {"name": sku, "tier": account_properties.tier_of(sku)}
        resource.document["kind"] = kind
        if created:
            name = resource.rid.name
            keys = account_keys.new_row(self.sealer, name)
            account_names.claim(
                conn,
                {
                    "name": name,
                    "resource_key": resource.rid.key,
                    "resource_id": str(resource.rid),
                    "location": str(resource.document["location"]),
                    **keys,
                },
            )
            props["keyCreationTime"] = account_keys.key_creation_time(
                {"key1": keys["key1_created_at"], "key2": keys["key2_created_at"]}
            )
        return props

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        account_names.release(conn, resource.rid.name.lower(), self.deletion_hooks)

    # --- actions -------------------------------------------------------------------------

    def _list_keys(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        return 200, account_keys.render(account_keys.read_keys(conn, self.sealer, resource.rid.name.lower()))

    def _regenerate_key(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        key_name = account_keys.key_name_of(payload)
        name = resource.rid.name.lower()
        created = account_keys.regenerate(conn, self.sealer, name, key_name)
        props = dict(resource.document.get("properties") or {})
        times = dict(props.get("keyCreationTime") or {})
        times[key_name] = iso_time(created)
        props["keyCreationTime"] = times
        resource.document["properties"] = props
        conn.execute(
            resources.update()
            .where(resources.c.id_key == resource.rid.key)
            .values(document=orjson.dumps(resource.document).decode())
        )
        return 200, account_keys.render(account_keys.read_keys(conn, self.sealer, name))

    # --- reads ---------------------------------------------------------------------------

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        doc = resource.document
        props = dict(doc.get("properties") or {})
        name = resource.rid.name.lower()
        props["provisioningState"] = "Succeeded"
        props["primaryEndpoints"] = endpoints(name, str(doc.get("kind") or "StorageV2"))
        props["primaryLocation"] = doc.get("location")
        props["statusOfPrimary"] = "available"
        return props


# --- the data plane's view ----------------------------------------------------------------------


@dataclass(frozen=True)
class AccountView:
    """What the data plane needs of an account, read fresh per request (``StorageAccounts.view``).

    ``properties``: the stored ARM properties (``networkAcls``, ``publicNetworkAccess``,
    ``allowSharedKeyAccess``, ``allowBlobPublicAccess``, ``minimumTlsVersion`` ...), as GET renders
    them minus the read-only ones. ``resource_id`` as the account was created;
    ``tenant_id`` the tenant of its subscription."""

    name: str
    resource_id: str
    location: str
    tenant_id: str
    properties: dict[str, Any]

    def allows_shared_key(self) -> bool:
        """``allowSharedKeyAccess`` is not false (null or absent means true: spec
        ``StorageAccountProperties.allowSharedKeyAccess``)."""
        return self.properties.get("allowSharedKeyAccess") is not False

    def allows_blob_public_access(self) -> bool:
        """``allowBlobPublicAccess`` is true (false or absent: no anonymous reads)."""
        return self.properties.get("allowBlobPublicAccess") is True

    def network_rules(self) -> NetworkRules:
        """The account's firewall, for ``keyless.network.allows``."""
        return NetworkRules.from_properties(self.properties)


_VIEW = (
    sa.select(
        storage_accounts.c.name,
        storage_accounts.c.resource_id,
        storage_accounts.c.location,
        resources.c.document,
        subscriptions.c.tenant_id,
    )
    .select_from(
        storage_accounts.join(resources, resources.c.id_key == storage_accounts.c.resource_key).join(
            subscriptions, sa.func.lower(subscriptions.c.subscription_id) == resources.c.subscription_id
        )
    )
    .where(storage_accounts.c.name == sa.bindparam("name"))
)
_KEYS = sa.select(storage_accounts.c.key1, storage_accounts.c.key2).where(
    storage_accounts.c.name == sa.bindparam("name")
)


class StorageAccounts:
    """Read access to accounts for the blob data plane: one indexed statement per call."""

    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer

        # Opening is cheap but not free; a sealed text never changes meaning, so cache by it
        # (bounded; a regenerated key has a new sealed text, so nothing goes stale).
        @lru_cache(maxsize=1024)
        def _open(name: str, key_name: str, sealed: str) -> bytes:
            return sealer.open(sealed, account_keys.purpose(name, key_name))

        self._open = _open

    def view(self, name: str) -> AccountView | None:
        """The account called ``name`` (any case; names are lower-case), or None."""
        name = name.lower()
        if not account_names.is_valid_name(name):
            return None
        row = self.db.query_one(_VIEW, {"name": name})
        if row is None:
            return None
        document = orjson.loads(row.document)
        props = {k: v for k, v in (document.get("properties") or {}).items() if k not in _SYSTEM}
        return AccountView(
            name=row.name,
            resource_id=row.resource_id,
            location=row.location,
            tenant_id=row.tenant_id,
            properties=props,
        )

    def keys(self, name: str) -> list[bytes]:
        """``[key1, key2]`` as raw bytes (64 each), or ``[]`` for an unknown account."""
        name = name.lower()
        if not account_names.is_valid_name(name):
            return []
        row = self.db.query_one(_KEYS, {"name": name})
        if row is None:
            return []
        return [self._open(name, "key1", row.key1), self._open(name, "key2", row.key2)]

    def tenant_of(self, name: str) -> str | None:
        """The tenant of the account's subscription, or None."""
        found = self.view(name)
        return None if found is None else found.tenant_id
