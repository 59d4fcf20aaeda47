"""Key Vault's provider operations that are not resources (``ArmApp.provider_operations``):

- ``POST /subscriptions/{s}/providers/Microsoft.KeyVault/checkNameAvailability`` body ``{name,
  type: "Microsoft.KeyVault/vaults"}`` → 200 ``{nameAvailable, reason?: AccountNameInvalid|
  AlreadyExists, message?}`` (spec example ``checkVaultNameAvailability.json``; enum ``Reason``).
  RBAC ``Microsoft.KeyVault/checkNameAvailability/read``.
- ``GET /subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults`` → ``{value: [DeletedVault]}``
  and ``GET .../locations/{l}/deletedVaults/{n}`` → ``DeletedVault`` ``{id, name, type:
  "Microsoft.KeyVault/deletedVaults", properties: {vaultId, location, deletionDate,
  scheduledPurgeDate, tags, purgeProtectionEnabled}}`` (spec example ``listDeletedVaults.json``).
  RBAC ``Microsoft.KeyVault/deletedVaults/read`` and ``.../locations/deletedVaults/read``.
- ``POST .../locations/{l}/deletedVaults/{n}/purge`` → 200 (an LRO the SDK accepts as 200 or 202;
  spec example ``purgeDeletedVault.json``). RBAC ``Microsoft.KeyVault/locations/deletedVaults/
  purge/action`` (azure-docs soft-delete-overview "Required permissions"). Under purge protection:
  405 ``MethodNotAllowed`` (``vault_names.purge_not_allowed``).
- ``PUT .../vaults/{v}/accessPolicies/{add|replace|remove}`` body ``{properties: {accessPolicies}}``
  → 200 ``{id: "{vault}/accessPolicies/", type: "Microsoft.KeyVault/vaults/accessPolicies",
  properties: {accessPolicies}}`` (spec example ``updateAccessPoliciesAdd.json``). RBAC
  ``Microsoft.KeyVault/vaults/accessPolicies/write``.
- ``GET .../managedHSMs`` and ``.../deletedManagedHSMs``: always empty (no managed HSMs here).

An unknown deleted vault is ARM's 404 ``ResourceNotFound`` for type
``Microsoft.KeyVault/deletedVaults`` (Keyless's choice; the real text was not found).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from keyless.arm import errors
from keyless.arm.bodies import parse_body
from keyless.arm.engine import Reply, ResourceManager
from keyless.arm.http import ProviderOperation, ProviderRequest
from keyless.arm.ids import ResourceId
from keyless.arm.locations import normalize_location
from keyless.providers.keyvault import vault_names
from keyless.providers.keyvault.vault_access_policies import apply_update, validate_entries
from keyless.providers.keyvault.vaults import API_VERSIONS, NAMESPACE, VAULT_TYPE
from keyless.store.tables import resources

DELETED_TYPE = "Microsoft.KeyVault/deletedVaults"
_MAX_NAME = 1024  # checkNameAvailability echoes nothing longer than a resource id


def _time(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def render_deleted(vault: vault_names.VaultName, subscription_id: str) -> dict[str, Any]:
    """A DeletedVault as ``deletedVaults`` answers it."""
    document = vault.deleted_document or {}
    name = vault.resource_id.rsplit("/", 1)[-1]
    location = str(document.get("location") or vault.location)
    props = document.get("properties") or {}
    return {
        "id": f"/subscriptions/{subscription_id}/providers/{NAMESPACE}/locations/{location}/deletedVaults/{name}",
        "name": name,
        "type": DELETED_TYPE,
        "properties": {
            "vaultId": vault.resource_id,
            "location": location,
            "deletionDate": _time(vault.deleted_at),
            "scheduledPurgeDate": _time(vault.scheduled_purge_at),
            "tags": document.get("tags") or {},
            "purgeProtectionEnabled": bool(props.get("enablePurgeProtection")),
        },
    }


class KeyVaultOperations:
    """The handlers, bound to the resource manager (its database, authorizer and change listeners)."""

    def __init__(self, manager: ResourceManager) -> None:
        self.manager = manager

    def register(self, operations: dict[tuple[str, str], ProviderOperation]) -> None:
        """Add the handlers to ``ArmApp.provider_operations``."""
        ns = NAMESPACE.lower()
        operations[(ns, "checknameavailability")] = self.check_name_availability
        operations[(ns, "deletedvaults")] = self.list_deleted
        operations[(ns, "locations")] = self.deleted_vault
        operations[(ns, "vaults")] = self.access_policies
        operations[(ns, "managedhsms")] = self.no_managed_hsms
        operations[(ns, "deletedmanagedhsms")] = self.no_managed_hsms

    # --- helpers -------------------------------------------------------------------------

    def _version(self, req: ProviderRequest, type_name: str) -> None:
        if req.ctx.api_version not in API_VERSIONS:
            raise errors.no_registered_provider("global", req.ctx.api_version, type_name, API_VERSIONS)

    def _subscription(self, req: ProviderRequest) -> str:
        sub = req.scope.subscription_id
        with self.manager.db.read() as conn:
            self.manager.require_subscription(conn, sub)
        return sub

    @staticmethod
    def _method(req: ProviderRequest, allowed: str) -> None:
        if req.method != allowed:
            raise errors.method_not_allowed(req.method)

    # --- checkNameAvailability -----------------------------------------------------------

    def check_name_availability(self, req: ProviderRequest) -> Reply | None:
        if req.scope.resource_group is not None or len(req.segments) != 1:
            return None
        self._method(req, "POST")
        self._version(req, f"{NAMESPACE}/checkNameAvailability")
        sub = req.scope.subscription_id
        self.manager.authorizer.check(
            req.ctx.caller, f"{NAMESPACE}/checkNameAvailability/read", f"/subscriptions/{sub}"
        )
        body = parse_body(req.body)
        name, kind = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
            raise errors.bad_request("The parameter name is not specified or is invalid.", target="name")
        if not isinstance(kind, str) or kind.lower() != VAULT_TYPE.lower():
            raise errors.bad_request(
                f"The type '{str(kind)[:64]}' is not supported. The supported type is '{VAULT_TYPE}'.",
                target="type",
            )
        self._subscription(req)
        if not vault_names.is_valid_name(name):
            message = vault_names.name_not_valid(name).message
            return Reply(200, {"nameAvailable": False, "reason": "AccountNameInvalid", "message": message})
        with self.manager.db.write() as conn:  # may drop an expired deleted vault
            holder = vault_names.lookup(conn, name)
        if holder is not None:
            message = vault_names.already_exists_message(name)
            return Reply(200, {"nameAvailable": False, "reason": "AlreadyExists", "message": message})
        return Reply(200, {"nameAvailable": True})

    # --- deleted vaults ------------------------------------------------------------------

    def list_deleted(self, req: ProviderRequest) -> Reply | None:
        if req.scope.resource_group is not None or len(req.segments) != 1:
            return None
        self._method(req, "GET")
        self._version(req, DELETED_TYPE)
        sub = req.scope.subscription_id
        self.manager.authorizer.check(req.ctx.caller, f"{DELETED_TYPE}/read", f"/subscriptions/{sub}")
        with self.manager.db.read() as conn:
            self.manager.require_subscription(conn, sub)
            found = vault_names.deleted_in(conn, sub)
        return Reply(200, {"value": [render_deleted(v, sub) for v in found]})

    def deleted_vault(self, req: ProviderRequest) -> Reply | None:
        """``locations/{l}/deletedVaults/{n}`` (GET) and ``.../purge`` (POST); None for other paths."""
        seg = req.segments
        if (
            req.scope.resource_group is not None
            or len(seg) not in (4, 5)
            or seg[2].lower() != "deletedvaults"
        ):
            return None
        if len(seg) == 5 and seg[4].lower() != "purge":
            return None
        purge = len(seg) == 5
        self._method(req, "POST" if purge else "GET")
        self._version(req, DELETED_TYPE)
        sub, location, name = req.scope.subscription_id, seg[1], seg[3]
        scope = f"/subscriptions/{sub}/providers/{NAMESPACE}/locations/{location}/deletedVaults/{name}"
        action = "locations/deletedVaults/purge/action" if purge else "locations/deletedVaults/read"
        self.manager.authorizer.check(req.ctx.caller, f"{NAMESPACE}/{action}", scope)
        with self.manager.db.write() as conn:
            self.manager.require_subscription(conn, sub)
            vault = (
                vault_names.lookup(conn, name, for_update=purge) if vault_names.is_valid_name(name) else None
            )
            if (
                vault is None
                or not vault.deleted
                or not vault.resource_key.startswith(f"/subscriptions/{sub.lower()}/")
                or normalize_location(location) != normalize_location(vault.location)
            ):
                raise errors.resource_not_found(DELETED_TYPE, name, None)
            if not purge:
                return Reply(200, render_deleted(vault, sub))
            if ((vault.deleted_document or {}).get("properties") or {}).get("enablePurgeProtection"):
                raise vault_names.purge_not_allowed()
            vault_names.purge(conn, vault.name)
        self.manager.notify_changed()
        return Reply(200)

    # --- managed HSMs: Keyless has none -------------------------------------------------

    def no_managed_hsms(self, req: ProviderRequest) -> Reply | None:
        """``GET {scope}/providers/Microsoft.KeyVault/managedHSMs`` and ``.../deletedManagedHSMs``:
        an empty list (``az keyvault list``/``list-deleted`` ask for HSMs too). RBAC
        ``Microsoft.KeyVault/{managedHSMs|deletedManagedHSMs}/read`` at the scope."""
        if len(req.segments) != 1 or (
            req.segments[0].lower() == "deletedmanagedhsms" and req.scope.resource_group
        ):
            return None
        self._method(req, "GET")
        self._version(req, f"{NAMESPACE}/{req.segments[0]}")
        self.manager.authorizer.check(req.ctx.caller, f"{NAMESPACE}/{req.segments[0]}/read", str(req.scope))
        with self.manager.db.read() as conn:
            self.manager.require_subscription(conn, req.scope.subscription_id)
            if req.scope.resource_group is not None and self.manager.load(conn, req.scope) is None:
                raise errors.resource_group_not_found(req.scope.resource_group)
        return Reply(200, {"value": []})

    # --- accessPolicies/{kind} -----------------------------------------------------------

    def access_policies(self, req: ProviderRequest) -> Reply | None:
        seg = req.segments
        if req.scope.resource_group is None or len(seg) != 4 or seg[2].lower() != "accesspolicies":
            return None
        self._method(req, "PUT")
        kind = seg[3].lower()
        rid = ResourceId(
            req.scope.subscription_id, req.scope.resource_group, NAMESPACE, ("vaults",), (seg[1],)
        )
        spec = self.manager.spec_for(rid)
        self.manager.check_api_version(spec, req.ctx)
        if kind not in ("add", "replace", "remove"):
            raise errors.bad_request(
                f"The operation kind '{seg[3][:32]}' is not valid. Valid values are 'add', 'replace' and 'remove'."
            )
        body = parse_body(req.body)
        props = body.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("accessPolicies"), list):
            raise errors.bad_request("The parameter properties.accessPolicies is not specified.")
        self.manager.authorizer.check(req.ctx.caller, f"{VAULT_TYPE}/accessPolicies/write", str(rid))
        with self.manager.db.write() as conn:
            vault = self.manager.load(conn, rid)
            if vault is None:
                self.manager.require_subscription(conn, rid.subscription_id)
                raise errors.resource_not_found(VAULT_TYPE, rid.name, rid.resource_group)
            current = dict(vault.document.get("properties") or {})
            given = validate_entries(
                props["accessPolicies"], str(current.get("tenantId")), field="accessPolicies"
            )
            current["accessPolicies"] = apply_update(kind, list(current.get("accessPolicies") or []), given)
            vault.document["properties"] = current
            conn.execute(
                resources.update()
                .where(resources.c.id_key == rid.key)
                .values(
                    document=orjson.dumps(vault.document).decode(),
                    etag=f'"{uuid.uuid4()}"',
                    modified_at=time.time(),
                    modified_by=req.ctx.caller.display_id,
                )
            )
        self.manager.notify_changed()
        answer = {
            "id": f"{vault.rid}/accessPolicies/",
            "type": f"{VAULT_TYPE}/accessPolicies",
            "properties": {"accessPolicies": given},
        }
        return Reply(200, answer)
