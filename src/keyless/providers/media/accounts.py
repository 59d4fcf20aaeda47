"""``Microsoft.Media/mediaservices``: the account resource as the resource manager stores it.

Everything that needs Key Vault or Storage (the customer key, the storage reachability checks)
is worked out before the write by the asynchronous front (``media.http``) and handed over in
``ctx.prepared[PREPARED]``; the hooks here only check that the request still says what was
prepared, and store it in the write's transaction. Shapes and facts: ``account_properties`` and
shared/reference/media.md §1.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import RequestContext, StoredResource
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming, NameRule, ResourceType
from keyless.providers.media import account_properties
from keyless.providers.media.account_properties import AccountSettings
from keyless.providers.media.account_render import encryption_state
from keyless.providers.media.keyring import ACCESSIBLE, AccountKeyring, KeyPlan
from keyless.store.tables import media_accounts, storage_accounts

NAMESPACE = "Microsoft.Media"
ACCOUNT_TYPE = "Microsoft.Media/mediaservices"
# Accounts api-versions (specs Accounts/stable; azure-mgmt-media 10.x sends 2021-11-01).
ACCOUNT_API_VERSIONS = frozenset(
    ["2018-07-01", "2020-05-01", "2021-05-01", "2021-06-01", "2021-11-01", "2023-01-01"]
)
PREPARED = "media.account"
NAME_RULE_TEXT = (
    "The Media Services account name should be between 3 and 24 characters and may contain only "
    "lowercase letters and numbers."
)
_NAME = re.compile(r"[a-z0-9]{3,24}")
_EDGE_POLICIES = {
    "usageDataCollectionPolicy": {
        "dataCollectionFrequency": "PT1H",
        "dataReportingFrequency": "P1D",
        "maxAllowedUnreportedUsageDuration": "P7D",
        "eventHubDetails": {"name": "", "namespace": "", "token": ""},
    }
}


def is_valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


@dataclass
class PreparedAccount:
    """What the front worked out for one account write."""

    settings: AccountSettings
    plan: KeyPlan


def name_taken(conn: sa.Connection, location: str, name: str, resource_key: str | None = None) -> bool:
    """Whether another account holds ``name`` in ``location`` (names are unique per location)."""
    row = conn.execute(
        sa.select(media_accounts.c.resource_key).where(
            media_accounts.c.location == location, media_accounts.c.name == name.lower()
        )
    ).first()
    return row is not None and row.resource_key != resource_key


def taken_message(name: str) -> str:
    """The checkNameAvailability message for a taken name (az recording test_ams_check_name.yaml)."""
    return (
        "Already in use by another Media Service account. Please try again with a name that is not "
        "likely to be in use."
    )


def check_storage_exists(conn: sa.Connection, settings: AccountSettings) -> None:
    """Every storage account the settings name must exist (400 BadRequest otherwise)."""
    for ref in settings.storage:
        row = conn.execute(
            sa.select(storage_accounts.c.resource_key).where(storage_accounts.c.name == ref.rid.name.lower())
        ).first()
        if row is None or row.resource_key != ref.rid.key:
            raise account_properties.bad_request(
                f"The storage account '{ref.rid.name}' was not found.", "properties.storageAccounts"
            )


class MediaServiceType(ResourceType):
    """The account type; ``keyring`` stores the account key in the write's transaction."""

    def __init__(self, keyring: AccountKeyring) -> None:
        super().__init__(
            namespace=NAMESPACE,
            type_path="mediaservices",
            api_versions=ACCOUNT_API_VERSIONS,
            supports_identity=True,
            next_link_field="@odata.nextLink",
            name_rule=NameRule(_NAME, NAME_RULE_TEXT),
        )
        self.keyring = keyring
        self.actions = {"syncStorageKeys": self._sync_storage_keys, "listEdgePolicies": self._edge_policies}

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        prepared = ctx.prepared.get(PREPARED)
        if not isinstance(prepared, PreparedAccount):
            raise errors.ArmError(500, "InternalServerError", "The account write was not prepared.")
        settings = account_properties.checked(dict(incoming.properties or {}), rid.subscription_id)
        if settings.properties != prepared.settings.properties:
            raise errors.ArmError(
                409, "Conflict", "The Media Services account changed while it was being updated; try again."
            )
        check_storage_exists(conn, settings)
        old = existing.document.get("properties") if existing is not None else {}
        location = str(incoming.location or (existing.document.get("location") if existing else "") or "")
        if existing is None and name_taken(conn, location, rid.name):
            raise errors.ArmError(409, "NameNotAvailable", taken_message(rid.name))
        out = dict(settings.properties)
        out["mediaServiceId"] = (old or {}).get("mediaServiceId") or str(uuid.uuid4())
        out["provisioningState"] = "Succeeded"
        out["privateEndpointConnections"] = []
        return out

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        prepared = ctx.prepared[PREPARED]
        assert isinstance(prepared, PreparedAccount)
        row = self.keyring.store(
            conn,
            str(resource.rid),
            resource.rid.key,
            str(resource.document.get("location")),
            resource.rid.name.lower(),
            prepared.plan,
        )
        props = dict(resource.document.get("properties") or {})
        props["encryption"] = encryption_state(
            dict(props.get("encryption") or {}), row.key_status, row.wrapping_key_id
        )
        return props

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        self.keyring.delete(conn, resource.rid.key)

    def render_identity(self, identity: dict[str, Any]) -> dict[str, Any]:
        """Media Services spells both kinds ``SystemAssigned,UserAssigned`` with no space: az's ams
        commands split the type on ``,`` and compare the parts (ams ``operations/identity.py``), so
        ARM's canonical ``"SystemAssigned, UserAssigned"`` would make ``identity assign`` add
        ``UserAssigned`` twice."""
        out = super().render_identity(identity)
        if isinstance(out.get("type"), str):
            out = {**out, "type": out["type"].replace(", ", ",")}
        return out

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        if "encryption" not in props:
            props["encryption"] = {"type": "SystemKey"}
        return props

    # --- actions ---------------------------------------------------------------------------

    def _sync_storage_keys(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        """``POST .../syncStorageKeys`` ``{id}``: 200, no body; the id must be one of the account's
        storage accounts (Keyless reads keys fresh on every use, so there is nothing to sync)."""
        wanted = payload.get("id")
        listed = {
            str(entry.get("id", "")).lower()
            for entry in (resource.document.get("properties") or {}).get("storageAccounts") or []
        }
        if not isinstance(wanted, str) or wanted.lower() not in listed:
            raise account_properties.bad_request(
                "The storage account id must be one of the account's storage accounts.", "id"
            )
        return 200, None

    def _edge_policies(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        """``POST .../listEdgePolicies`` ``{deviceId}``: the usage data collection policy (spec
        ``EdgePolicies``). Keyless collects nothing; the frequencies are the spec example's."""
        device = payload.get("deviceId")
        if device is not None and (not isinstance(device, str) or len(device) > 256):
            raise account_properties.bad_request("'deviceId' must be a string.", "deviceId")
        return 200, _EDGE_POLICIES


__all__ = ["ACCESSIBLE", "ACCOUNT_TYPE", "MediaServiceType", "PreparedAccount", "is_valid_name"]
