"""``Microsoft.KeyVault/vaults``: the vault resource (control plane), as azure-mgmt-keyvault, az and
``keyless keyvault`` create it.

Properties (spec ``specification/keyvault/resource-manager/Microsoft.KeyVault`` ``VaultProperties``,
2023-07-01 .. 2026-04-01; azure-mgmt-keyvault 14.x ``models/_models.py``):

- ``tenantId`` (GUID, required) and ``sku`` ``{family: "A", name: standard|premium}`` (required;
  inside ``properties``, not top-level). A tenant that is not in the directory: 400 ``BadRequest``
  "An invalid value was provided for 'tenantId'." (text from public Terraform logs).
- ``accessPolicies``: see ``vault_access_policies`` (not required here: the spec's ``required`` is
  only tenantId and sku; a recover ignores them).
- ``vaultUri`` read-only ``https://{name}.vault.azure.net/``; ``provisioningState`` ``Succeeded``.
- ``enableRbacAuthorization``: default false, true for vaults created with api-version 2026-02-01
  or later (MicrosoftDocs Key Vault ABAC page, quoted in shared/reference/keyvault-secrets.md §5;
  the 14.x SDK docstring still says false — the service's default wins).
- ``enableSoftDelete``: default true; false is refused (soft delete can no longer be turned off:
  learn.microsoft.com key-vault/general/soft-delete-change, "February 2025"). Text modelled on the
  purge-protection one (not verified).
- ``softDeleteRetentionInDays``: 7..90, default 90; once set it cannot change: 400 ``BadRequest``
  'The property "softDeleteRetentionInDays" has been set already and it can't be modified.'
  (hashicorp/terraform-provider-azurerm ``key_vault_resource.go``).
- ``enablePurgeProtection``: only true is accepted, on create too: 400 ``BadRequest`` 'The
  property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a
  vault is an irreversible action.' (Azure/azure-rest-api-specs#18106, Azure/ai-hub#241).
- ``networkAcls`` (``keyless.network.validate_network_acls``), ``publicNetworkAccess``
  (``Enabled``/``Disabled``, default ``Enabled``), ``enabledFor{Deployment,DiskEncryption,
  TemplateDeployment}`` (booleans, default false).
- ``createMode`` ``default``/``recover`` (write-only): ``recover`` brings a soft-deleted vault back
  with its old properties (the request's are ignored, as Azure does: azure-rest-api-specs#21306),
  only into the resource id it was deleted from; otherwise ``SoftDeletedVaultDoesNotExist``.

Delete is always a soft delete (``before_delete``): the vault's keys and secrets stay until purge.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import RequestContext, StoredResource
from keyless.arm.ids import ResourceId, is_guid
from keyless.arm.resource_types import Incoming, ResourceType
from keyless.network import validate_network_acls
from keyless.providers.keyvault import vault_names
from keyless.providers.keyvault.vault_access_policies import validate_entries
from keyless.store.tables import tenants

NAMESPACE = "Microsoft.KeyVault"
VAULT_TYPE = "Microsoft.KeyVault/vaults"
# Every api-version of Microsoft.KeyVault/vaults in azure-rest-api-specs, plus what the SDKs send
# (azure-mgmt-keyvault 14.1: 2026-05-15; azure-cli's 14.0.1: 2026-02-01).
API_VERSIONS = frozenset(
    [
        "2015-06-01",
        "2016-10-01",
        "2018-02-14",
        "2018-02-14-preview",
        "2019-09-01",
        "2020-04-01-preview",
        "2021-04-01-preview",
        "2021-06-01-preview",
        "2021-10-01",
        "2021-11-01-preview",
        "2022-02-01-preview",
        "2022-07-01",
        "2022-11-01",
        "2023-02-01",
        "2023-07-01",
        "2023-08-01-preview",
        "2024-04-01-preview",
        "2024-11-01",
        "2024-12-01-preview",
        "2025-05-01",
        "2026-02-01",
        "2026-03-01-preview",
        "2026-04-01-preview",
        "2026-04-01",
        "2026-05-15",
    ]
)
RBAC_DEFAULT_SINCE = "2026-02-01"
DEFAULT_RETENTION_DAYS = 90
_BOOLEANS = ("enabledForDeployment", "enabledForDiskEncryption", "enabledForTemplateDeployment")
_SKUS = ("standard", "premium")
_ACCESS = ("Enabled", "Disabled")
# Kept in the stored document only while a vault is soft-deleted: never rendered.
_WRITE_ONLY = ("createMode",)


def _bad(message: str) -> errors.ArmError:
    return errors.bad_request(message)


def vault_uri(name: str) -> str:
    return f"https://{name}.vault.azure.net/"


def _bool(props: dict[str, Any], key: str) -> bool | None:
    value = props.get(key)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"Invalid value found at properties.{key}: {str(value)[:64]}")
    return value


def _tenant(conn: sa.Connection, value: Any) -> str:
    ok = isinstance(value, str) and is_guid(value)
    if (
        ok
        and conn.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == value.lower())).first()
    ):
        return str(value)
    raise _bad("An invalid value was provided for 'tenantId'.")


def _sku(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _bad("The parameter sku is not specified.")
    family, name = value.get("family"), value.get("name")
    if family is not None and family != "A":
        raise _bad(f"Invalid value found at properties.sku.family: {str(family)[:16]}")
    if not isinstance(name, str) or name.lower() not in _SKUS:
        raise _bad(f"Invalid value found at properties.sku.name: {str(name)[:16]}")
    return {"family": "A", "name": name.lower()}


def _retention(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 7 <= value <= 90:
        raise _bad('The property "softDeleteRetentionInDays" must be an integer between 7 and 90.')
    return value


class VaultType(ResourceType):
    """``Microsoft.KeyVault/vaults``: the document holds the checked properties; the global name
    lives in ``key_vaults`` (``vault_names``), claimed in the same transaction."""

    def __init__(self) -> None:
        super().__init__(
            namespace=NAMESPACE,
            type_path="vaults",
            api_versions=API_VERSIONS,
            name_rule=vault_names.VaultNameRule(),
        )

    # --- writes --------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = incoming.properties
        if not isinstance(props, dict):
            raise _bad("The parameter properties is not specified.")
        mode = props.get("createMode")
        if mode is not None and (not isinstance(mode, str) or mode.lower() not in ("default", "recover")):
            raise _bad(f"Invalid value found at properties.createMode: {str(mode)[:16]}")
        if existing is None:
            holder = vault_names.lookup(conn, rid.name, for_update=True)
            if holder is not None and holder.deleted:
                if mode is not None and mode.lower() == "recover":
                    return self._recovered(rid, holder)
                raise vault_names.exists_in_deleted_state()
            if holder is not None:
                raise vault_names.already_exists(rid.name)
            if mode is not None and mode.lower() == "recover":
                raise vault_names.soft_deleted_vault_does_not_exist()
        old = (existing.document.get("properties") or {}) if existing is not None else {}
        return self._checked(ctx, conn, props, old, creating=existing is None)

    def _checked(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        props: dict[str, Any],
        old: dict[str, Any],
        *,
        creating: bool,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenantId": _tenant(conn, props.get("tenantId")),
            "sku": _sku(props.get("sku")),
        }
        out["accessPolicies"] = validate_entries(props.get("accessPolicies"), out["tenantId"])
        for key in _BOOLEANS:
            value = _bool(props, key)
            out[key] = bool(value) if value is not None else bool(old.get(key, False))
        rbac = _bool(props, "enableRbacAuthorization")
        if rbac is None:
            rbac = old.get("enableRbacAuthorization") if not creating else None
        if rbac is None:
            rbac = ctx.api_version[:10] >= RBAC_DEFAULT_SINCE
        out["enableRbacAuthorization"] = rbac
        if _bool(props, "enableSoftDelete") is False:
            raise _bad(
                'The property "enableSoftDelete" cannot be set to false. Enabling the soft delete for a vault is '
                "an irreversible action."
            )
        out["enableSoftDelete"] = True
        retention = props.get("softDeleteRetentionInDays")
        current = old.get("softDeleteRetentionInDays")
        if retention is None:
            out["softDeleteRetentionInDays"] = current or DEFAULT_RETENTION_DAYS
        else:
            retention = _retention(retention)
            if current is not None and retention != current:
                raise _bad(
                    'The property "softDeleteRetentionInDays" has been set already and it can\'t be modified.'
                )
            out["softDeleteRetentionInDays"] = retention
        purge_protection = _bool(props, "enablePurgeProtection")
        if purge_protection is False:
            raise _bad(
                'The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for '
                "a vault is an irreversible action."
            )
        if purge_protection or old.get("enablePurgeProtection"):
            out["enablePurgeProtection"] = True
        access = props.get("publicNetworkAccess")
        if access is None:
            out["publicNetworkAccess"] = old.get("publicNetworkAccess", "Enabled")
        elif isinstance(access, str) and access.lower() in {a.lower() for a in _ACCESS}:
            out["publicNetworkAccess"] = next(a for a in _ACCESS if a.lower() == access.lower())
        else:
            raise _bad(f"Invalid value found at properties.publicNetworkAccess: {str(access)[:16]}")
        acls = validate_network_acls(props.get("networkAcls"), "keyvault")
        if acls is not None:
            out["networkAcls"] = acls
        return out

    def _recovered(self, rid: ResourceId, holder: vault_names.VaultName) -> dict[str, Any]:
        """The deleted vault's properties, if it was deleted from this very resource id."""
        if holder.resource_key != rid.key or holder.deleted_document is None:
            raise vault_names.soft_deleted_vault_does_not_exist()
        return dict(holder.deleted_document.get("properties") or {}, createMode="recover")

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        props = dict(resource.document.get("properties") or {})
        if props.pop("createMode", None) == "recover" and created:
            holder = vault_names.lookup(conn, resource.rid.name)
            assert holder is not None and holder.deleted_document is not None
            # The old document comes back whole: its location and tags, not the request's.
            resource.document["location"] = holder.deleted_document.get("location")
            resource.document["tags"] = holder.deleted_document.get("tags") or {}
            vault_names.restore(conn, resource.rid.name)
            return props
        if created:
            vault_names.claim(
                conn,
                resource.rid.name,
                resource.rid.key,
                str(resource.rid),
                str(resource.document["location"]),
            )
        return None

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        props = resource.document.get("properties") or {}
        days = int(props.get("softDeleteRetentionInDays") or DEFAULT_RETENTION_DAYS)
        vault_names.soft_delete(conn, resource.rid.name, resource.document, days)

    # --- reads ---------------------------------------------------------------------------

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = {k: v for k, v in (resource.document.get("properties") or {}).items() if k not in _WRITE_ONLY}
        props["vaultUri"] = vault_uri(resource.rid.name)
        props["provisioningState"] = "Succeeded"
        return props
