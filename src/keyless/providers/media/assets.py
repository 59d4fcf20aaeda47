"""``Microsoft.Media/mediaservices/assets``: an asset is a blob container in one of the account's
storage accounts, created and removed by Media Services through the blob data plane with the
account's storage authentication (``storage_access``): with ``ManagedIdentity`` as a trusted
service with the identity's token, so the storage firewall and RBAC decide.

Shapes (spec ``Metadata/stable/2023-01-01/AssetsAndAssetFilters.json``, media.md §2, media-az.md):

- properties: ``alternateId``, ``description``, ``container`` (default ``asset-{assetId}``),
  ``storageAccountName`` (default: the primary), ``encryptionScope``; read-only ``assetId``,
  ``created``, ``lastModified``, ``storageEncryptionFormat`` ``None``. ``container`` and
  ``storageAccountName`` cannot change after creation.
- PUT 201/200, PATCH 200, DELETE 200/204 (the container goes too).
- ``POST .../listContainerSas`` ``{permissions: Read|ReadWrite|ReadWriteDelete, expiryTime}`` →
  ``{assetContainerSasUrls: [url per storage key]}``; ``expiryTime`` "must be less than 24 hours
  from the current time". ``sp``: ``rl`` for Read (recording test_ams_asset_get_sas_urls), ``rwl``
  for ReadWrite (the spec example's ``lrw``), ``rwdl`` for ReadWriteDelete.
- ``POST .../listStreamingLocators`` → ``{streamingLocators: [...]}``.
- ``POST .../getEncryptionKey``: only for storage-encrypted (legacy) assets, which cannot be
  created any more; every asset here is ``None``, so the answer is 400.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.engine import RequestContext, StoredResource, iso_time
from keyless.arm.http import ProviderRequest
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming
from keyless.providers.media.children import MediaChildType, bad_request, text_field
from keyless.providers.media.storage_access import MediaStorage, StorageAuth
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

PREPARED = "media.asset"
PREPARED_SAS = "media.asset.sas"
# A blob container name (storage.md: 3-63 lower-case letters, digits and single hyphens).
CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_PERMISSIONS = {"read": "rl", "readwrite": "rwl", "readwritedelete": "rwdl"}
_MAX_SAS_SECONDS = 24 * 3600
_LOCATOR_TYPE = "microsoft.media/mediaservices/streaminglocators"
_ASSET_TYPE = "microsoft.media/mediaservices/assets"
_LOCATOR_FIELDS = (
    "created",
    "startTime",
    "endTime",
    "streamingLocatorId",
    "streamingPolicyName",
    "defaultContentKeyPolicyName",
)


def _parse_time(value: Any, path: str) -> float:
    if not isinstance(value, str) or len(value) > 40:
        raise bad_request(f"'{path}' must be a date and time.", path)
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"'{path}' must be a date and time.", path) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _locators_of(conn: sa.Connection, account_key: str, asset: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(id key, name, properties) of the account's streaming locators of ``asset``, by name."""
    rows = conn.execute(
        sa.select(resources.c.id_key, resources.c.name, resources.c.document)
        .where(resources.c.parent_key == account_key, resources.c.type_key == _LOCATOR_TYPE)
        .order_by(resources.c.name)
    ).all()
    out = []
    for row in rows:
        props = orjson.loads(row.document).get("properties") or {}
        if str(props.get("assetName", "")).lower() == asset.lower():
            out.append((row.id_key, row.name, props))
    return out


def container_in_use(conn: sa.Connection, storage_account: str, container: str) -> bool:
    """Whether an asset of any account already names ``container`` in ``storage_account``: one
    container is one asset (Azure refuses a second with a unique-index error, azure-cli#9339), so
    deleting one asset never removes another's content."""
    rows = conn.execute(
        sa.select(resources.c.document).where(
            resources.c.type_key == _ASSET_TYPE,
            resources.c.document.contains(f'"container":"{container}"', autoescape=True),
        )
    ).all()
    for row in rows:
        props = orjson.loads(row.document).get("properties") or {}
        if (
            str(props.get("storageAccountName", "")).lower() == storage_account
            and props.get("container") == container
        ):
            return True
    return False


def _texts(props: dict[str, Any]) -> dict[str, str]:
    """The asset's free-text properties, checked (400 for a wrong type or length)."""
    out = {}
    for name, limit in (("alternateId", 1024), ("description", 4096), ("encryptionScope", 256)):
        value = text_field(props, name, limit, f"properties.{name}")
        if value is not None:
            out[name] = value
    return out


class AssetType(MediaChildType):
    def __init__(self, storage: MediaStorage) -> None:
        super().__init__("assets")
        self.storage = storage
        self.actions = {
            "listContainerSas": self._list_container_sas,
            "listStreamingLocators": self._list_streaming_locators,
            "getEncryptionKey": self._get_encryption_key,
        }

    # --- before the write: the container ------------------------------------------------

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """PUT: create the container (as the account reaches its storage); DELETE: remove it;
        ``listContainerSas``: the asset's storage account, checked still attached."""
        if req.method == "POST" and len(req.segments) == 5:
            if req.segments[4].lower() == "listcontainersas":
                with front.manager.db.read() as conn:
                    asset = front.manager.load(conn, rid)
                if asset is not None:
                    props = asset.document.get("properties") or {}
                    req.ctx.prepared[PREPARED_SAS] = front.storage_auth(
                        account, props.get("storageAccountName")
                    )
            return
        if req.method not in ("PUT", "PATCH", "DELETE") or len(req.segments) != 4:
            return
        with front.manager.db.read() as conn:
            existing = front.manager.load(conn, rid)
        if req.method == "DELETE":
            if existing is not None:
                front.manager.check_preconditions(req.ctx, existing, creating=False)
                props = existing.document.get("properties") or {}
                auth = front.storage_auth(account, props.get("storageAccountName"))
                await front.storage.delete_container(auth, str(props.get("container")))
            return
        if req.method == "PATCH" and existing is None:
            return  # the engine's 404
        if req.method == "PUT":
            self.name_rule.check(rid.name, self.type_name)
        incoming = incoming_of(parse_body(req.body) if req.body.strip() else {})
        props = dict(incoming.properties or {})
        _texts(props)  # everything the write will refuse, refused before the container is made
        front.manager.check_preconditions(req.ctx, existing, creating=req.method == "PUT")
        old = dict(existing.document.get("properties") or {}) if existing is not None else {}
        asset_id = str(old.get("assetId") or uuid.uuid4())
        storage = text_field(props, "storageAccountName", 24, "properties.storageAccountName")
        storage = storage or old.get("storageAccountName") or account.settings.primary.rid.name
        auth = front.storage_auth(account, storage)
        container = text_field(props, "container", 63, "properties.container") or old.get("container")
        container = container or f"asset-{asset_id}"
        if CONTAINER.fullmatch(container) is None:
            raise bad_request(
                f"The container name '{container}' is not valid: 3 to 63 lower-case letters, digits and "
                "single hyphens, starting and ending with a letter or digit.",
                "properties.container",
            )
        if existing is not None and (
            container != old.get("container") or auth.account != str(old.get("storageAccountName")).lower()
        ):
            raise bad_request(
                "The container and storage account of an asset cannot be changed.", "properties"
            )
        if existing is None:
            with front.manager.db.read() as conn:
                if container_in_use(conn, auth.account, container):
                    raise bad_request(
                        f"The container '{container}' of storage account '{auth.account}' is already used "
                        "by another asset.",
                        "properties.container",
                    )
            await front.storage.create_container(auth, container)
        req.ctx.prepared[PREPARED] = {
            "assetId": asset_id,
            "container": container,
            "storageAccountName": auth.account,
        }

    # --- the write ------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = dict(incoming.properties or {})
        old = dict(existing.document.get("properties") or {}) if existing is not None else {}
        prepared = ctx.prepared.get(PREPARED)
        if not isinstance(prepared, dict):  # the front prepares every asset write
            raise errors.ArmError(500, "InternalServerError", "The asset write was not prepared.")
        now = iso_time(time.time())
        out: dict[str, Any] = {
            "assetId": prepared["assetId"],
            "created": old.get("created") or now,
            "lastModified": now,
            "container": prepared["container"],
            "storageAccountName": prepared["storageAccountName"],
            "storageEncryptionFormat": "None",
        }
        out.update(_texts(props))
        return out

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        """The asset's streaming locators go with it, so a locator never publishes a later asset
        that reuses the name (Keyless's choice: what Azure does is not documented)."""
        parent = resource.rid.parent
        assert parent is not None
        for key, _, _ in _locators_of(conn, parent.key, resource.rid.name):
            conn.execute(resources.delete().where(resources.c.id_key == key))

    # --- actions --------------------------------------------------------------------------

    def _list_container_sas(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        permissions = payload.get("permissions")
        letters = _PERMISSIONS.get(permissions.lower()) if isinstance(permissions, str) else None
        if letters is None:
            raise bad_request("'permissions' must be Read, ReadWrite or ReadWriteDelete.", "permissions")
        expiry = _parse_time(payload.get("expiryTime"), "expiryTime")
        now = time.time()
        if expiry <= now or expiry - now > _MAX_SAS_SECONDS:
            raise bad_request(
                "The expiry time must be in the future and less than 24 hours from the current time.",
                "expiryTime",
            )
        props = resource.document.get("properties") or {}
        se = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
        auth = ctx.prepared.get(PREPARED_SAS)
        if not isinstance(auth, StorageAuth):
            raise bad_request("The asset's storage account could not be resolved.")
        urls = self.storage.container_sas_urls(auth, str(props.get("container")), letters, se)
        return 200, {"assetContainerSasUrls": urls}

    def _list_streaming_locators(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        parent = resource.rid.parent
        assert parent is not None
        out = []
        for _, name, props in _locators_of(conn, parent.key, resource.rid.name):
            entry = {"name": name, "assetName": props.get("assetName")}
            for key in _LOCATOR_FIELDS:
                if props.get(key) is not None:
                    entry[key] = props[key]
            out.append(entry)
        return 200, {"streamingLocators": out}

    def _get_encryption_key(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        raise bad_request(
            "The asset is not storage encrypted (storageEncryptionFormat is None): it has no encryption key."
        )
