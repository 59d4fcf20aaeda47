"""The checked properties of a ``Microsoft.Storage/storageAccounts`` PUT/PATCH, and its sku and kind.

Sources: spec ``specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/
storage.json`` (``StorageAccountPropertiesCreateParameters``, ``Sku``, ``Kind``, ``Encryption``)
and azure-mgmt-storage 25.x ``models/_enums.py`` (``SkuName``, ``Kind``, ``MinimumTlsVersion``,
``AccessTier``). Defaults are what an account created today reports (azure-docs "storage account
overview" and the spec's descriptions): kind ``StorageV2``, sku ``Standard_LRS`` (the spec requires
both; Keyless fills in az's defaults), ``allowBlobPublicAccess`` false, ``minimumTlsVersion``
``TLS1_2``, ``supportsHttpsTrafficOnly`` true, ``allowCrossTenantReplication`` false,
``accessTier`` ``Hot`` for standard StorageV2/BlobStorage (``Premium`` for premium ones),
``networkAcls`` ``{bypass AzureServices, defaultAction Allow, ipRules [], virtualNetworkRules [],
resourceAccessRules []}``, Microsoft-managed encryption of blob and file.

A property a PUT or PATCH leaves out keeps its stored value (the SDK's ``begin_create``: "If an
account is already created ... the account properties will be updated"). Read-only properties in
a body (``primaryEndpoints``, ``creationTime`` ...) are ignored, as are properties Keyless does not
emulate. Errors (400):

- a bad value for a property: ``InvalidRequestPropertyValue`` "The value '{v}' is not allowed
  for property {name}." (Azure/azure-cli#25748);
- a bad ``sku`` or ``kind``, or a combination Azure refuses: ``InvalidValuesForRequestParameters``
  "Values for request parameters are invalid: sku." / "kind." / "kind, sku."
  (hashicorp/terraform-provider-azurerm#8089, Azure/azure-cli#27899);
- ``networkAcls`` and ``publicNetworkAccess``: ``keyless.network`` (the storage RP's wording).
"""

from __future__ import annotations

from typing import Any

from keyless.arm import errors
from keyless.network import validate_network_acls, validate_public_network_access

SKUS = (
    "Standard_LRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_ZRS",
    "Premium_LRS",
    "Premium_ZRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
    "StandardV2_LRS",
    "StandardV2_GRS",
    "StandardV2_ZRS",
    "StandardV2_GZRS",
    "PremiumV2_LRS",
    "PremiumV2_ZRS",
)
KINDS = ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage")
TLS_VERSIONS = ("TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3")
ACCESS_TIERS = ("Hot", "Cool", "Premium", "Cold", "Smart")
KEY_SOURCES = ("Microsoft.Storage", "Microsoft.Keyvault")
ENCRYPTED_SERVICES = ("blob", "file", "table", "queue")
KEY_TYPES = ("Service", "Account")
DEFAULT_SKU = "Standard_LRS"
DEFAULT_KIND = "StorageV2"
# name -> default (None: stored only when given).
BOOLEANS: dict[str, bool | None] = {
    "supportsHttpsTrafficOnly": True,
    "allowBlobPublicAccess": False,
    "allowCrossTenantReplication": False,
    "allowSharedKeyAccess": None,
    "defaultToOAuthAuthentication": None,
    "isHnsEnabled": None,
    "isSftpEnabled": None,
    "isLocalUserEnabled": None,
    "isNfsV3Enabled": None,
}
_MAX_TEXT = 1024


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 64 else text[:61] + "..."


def not_allowed(name: str, value: Any) -> errors.ArmError:
    return errors.ArmError(
        400,
        "InvalidRequestPropertyValue",
        f"The value '{_shown(value)}' is not allowed for property {name}.",
        target=name,
    )


def invalid_parameters(*names: str) -> errors.ArmError:
    return errors.ArmError(
        400,
        "InvalidValuesForRequestParameters",
        f"Values for request parameters are invalid: {', '.join(names)}.",
        target=names[0],
    )


def _choice(value: Any, allowed: tuple[str, ...]) -> str | None:
    """The canonical spelling of ``value`` in ``allowed`` (case-insensitive), else None."""
    if isinstance(value, str) and len(value) <= 64:
        for choice in allowed:
            if value.lower() == choice.lower():
                return choice
    return None


def tier_of(sku: str) -> str:
    return "Premium" if sku.startswith("Premium") else "Standard"


def sku_and_kind(
    sku_in: dict[str, Any] | None, kind_in: str | None, old_sku: str | None, old_kind: str | None
) -> tuple[str, str]:
    """``(sku name, kind)`` to store: given (checked), else stored, else the defaults.

    A change of tier (Standard/Premium) is refused, and a kind may only change to StorageV2 from
    Storage or BlobStorage (the upgrade azure-docs "storage-account-upgrade" describes).
    """
    if sku_in is not None:
        name = _choice(sku_in.get("name"), SKUS)
        if name is None:
            raise invalid_parameters("sku")
        tier = sku_in.get("tier")
        if tier is not None and _choice(tier, ("Standard", "Premium")) != tier_of(name):
            raise invalid_parameters("sku")
    else:
        name = old_sku or DEFAULT_SKU
    if kind_in is not None:
        kind = _choice(kind_in, KINDS)
        if kind is None:
            raise invalid_parameters("kind")
    else:
        kind = old_kind or DEFAULT_KIND
    premium_only = kind in ("FileStorage", "BlockBlobStorage")
    if premium_only and tier_of(name) != "Premium" and not (kind == "FileStorage" and "V2_" in name):
        raise invalid_parameters("kind", "sku")
    if "V2_" in name and kind != "FileStorage":
        raise invalid_parameters("kind", "sku")
    if old_sku is not None and tier_of(old_sku) != tier_of(name):
        raise invalid_parameters("sku")
    if (
        old_kind is not None
        and old_kind != kind
        and not (kind == "StorageV2" and old_kind in ("Storage", "BlobStorage"))
    ):
        raise invalid_parameters("kind")
    return name, kind


def _access_tier(props: dict[str, Any], old: dict[str, Any], sku: str, kind: str) -> str | None:
    given = props.get("accessTier")
    if kind not in ("StorageV2", "BlobStorage", "BlockBlobStorage"):
        if given is not None:
            raise not_allowed("accessTier", given)
        return None
    if given is None:
        given = old.get("accessTier")
    if given is None:
        return "Premium" if tier_of(sku) == "Premium" else "Hot"
    tier = _choice(given, ACCESS_TIERS)
    if tier is None or (tier == "Premium") != (tier_of(sku) == "Premium"):
        raise not_allowed("accessTier", given)
    return tier


def _encryption(value: Any, old: dict[str, Any] | None, since: str) -> dict[str, Any]:
    """``encryption``: keySource (Microsoft-managed or a Key Vault key), the services it covers
    (blob and file always; table and queue with keyType Account or Service) and
    ``requireInfrastructureEncryption`` (fixed at creation)."""
    current = old or {
        "services": {
            "blob": {"keyType": "Account", "enabled": True, "lastEnabledTime": since},
            "file": {"keyType": "Account", "enabled": True, "lastEnabledTime": since},
        },
        "keySource": "Microsoft.Storage",
        "requireInfrastructureEncryption": False,
    }
    if value is None:
        return current
    if not isinstance(value, dict):
        raise not_allowed("encryption", value)
    out = {**current, "services": dict(current.get("services") or {})}
    source = value.get("keySource")
    if source is not None:
        out["keySource"] = _choice(source, KEY_SOURCES) or _raise(not_allowed("encryption.keySource", source))
    services = value.get("services")
    if services is not None:
        if not isinstance(services, dict):
            raise not_allowed("encryption.services", services)
        for name, entry in services.items():
            if name not in ENCRYPTED_SERVICES or not (entry is None or isinstance(entry, dict)):
                raise not_allowed("encryption.services", name)
            entry = entry or {}
            key_type = entry.get("keyType")
            previous = out["services"].get(name) or {}
            chosen = (
                _choice(key_type, KEY_TYPES) if key_type is not None else previous.get("keyType", "Account")
            )
            if chosen is None:
                raise not_allowed(f"encryption.services.{name}.keyType", key_type)
            if previous and chosen != previous.get("keyType"):
                raise not_allowed(f"encryption.services.{name}.keyType", key_type)
            # Encryption at rest cannot be turned off; "enabled" is always true.
            out["services"][name] = {"keyType": chosen, "enabled": True, "lastEnabledTime": since}
    infra = value.get("requireInfrastructureEncryption")
    if infra is not None:
        if not isinstance(infra, bool) or (
            old is not None and infra != old.get("requireInfrastructureEncryption")
        ):
            raise not_allowed("encryption.requireInfrastructureEncryption", infra)
        out["requireInfrastructureEncryption"] = infra
    if out["keySource"] == "Microsoft.Keyvault":
        kv = value.get("keyvaultproperties", current.get("keyvaultproperties"))
        if not isinstance(kv, dict):
            raise not_allowed("encryption.keyvaultproperties", kv)
        fields = {}
        for key in ("keyname", "keyversion", "keyvaulturi"):
            item = kv.get(key)
            if item is not None and (not isinstance(item, str) or len(item) > _MAX_TEXT):
                raise not_allowed(f"encryption.keyvaultproperties.{key}", item)
            if item:
                fields[key] = item
        if "keyname" not in fields or "keyvaulturi" not in fields:
            raise not_allowed("encryption.keyvaultproperties", kv)
        out["keyvaultproperties"] = fields
    else:
        out.pop("keyvaultproperties", None)
    return out


def _raise(error: errors.ArmError) -> str:
    raise error


def checked(
    props: dict[str, Any], old: dict[str, Any], sku: str, kind: str, created_at: str
) -> dict[str, Any]:
    """The input properties to store (``props``: the body's, merge-patched for PATCH; ``old``: the
    stored ones, ``{}`` on create). ``created_at``: the account's ISO creation time."""
    out: dict[str, Any] = {}
    for key, default in BOOLEANS.items():
        value = props.get(key)
        if value is None:
            value = old.get(key, default)
        elif not isinstance(value, bool):
            raise not_allowed(key, value)
        if value is not None:
            out[key] = value
    # The hierarchical namespace is chosen at creation (turning it on later is a migration).
    if old and bool(out.get("isHnsEnabled")) != bool(old.get("isHnsEnabled")):
        raise not_allowed("isHnsEnabled", out.get("isHnsEnabled"))
    tls = props.get("minimumTlsVersion")
    if tls is None:
        out["minimumTlsVersion"] = old.get("minimumTlsVersion", "TLS1_2")
    else:
        out["minimumTlsVersion"] = _choice(tls, TLS_VERSIONS) or _raise(not_allowed("minimumTlsVersion", tls))
    tier = _access_tier(props, old, sku, kind)
    if tier is not None:
        out["accessTier"] = tier
    access = validate_public_network_access(props.get("publicNetworkAccess"), "storage")
    if access is None:
        access = old.get("publicNetworkAccess")
    if access is not None:
        out["publicNetworkAccess"] = access
    acls = props.get("networkAcls")
    out["networkAcls"] = (
        validate_network_acls(acls, "storage")
        if acls is not None
        else old.get("networkAcls") or validate_network_acls({}, "storage")
    )
    out["encryption"] = _encryption(props.get("encryption"), old.get("encryption"), created_at)
    return out
