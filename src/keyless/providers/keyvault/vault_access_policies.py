"""A vault's ``accessPolicies``: validation, and the ``accessPolicies/{add|replace|remove}`` merge.

Shapes (spec ``Microsoft.KeyVault`` ``AccessPolicyEntry``, ``Permissions``; azure-mgmt-keyvault
14.x models): an entry is ``{tenantId, objectId, applicationId?, permissions: {keys?, secrets?,
certificates?, storage?}}``; at most 1024 entries per vault ("An array of 0 to 1024 identities").
Permission names are the spec enums (``KeyPermissions`` etc., ``all`` included), matched without
regard to case (the enums are case-insensitive: ``CaseInsensitiveEnumMeta``; the portal sends
``Get``, az ``get``); they are stored as sent.

The merge semantics (Vaults_UpdateAccessPolicy; azurerm's ``key_vault_access_policy`` resource
uses ``add`` to create one entry, ``replace`` to change it and ``remove`` with its whole
permission set to delete it): an entry is identified by tenantId + objectId + applicationId
(case-insensitive, a missing applicationId matching only a missing one, as ``az keyvault
set-policy`` matches); ``add`` unions permissions into the entry (or appends it), ``replace``
sets the given categories of the entry (or appends it), ``remove`` takes the listed permissions
out and drops an entry left with none.

Error texts for malformed entries follow the shape Key Vault's RP uses for bad values
("Invalid value found at accessPolicies[0].ObjectId: ..."; seen in public deployment logs); the
texts for unknown permission names and the 1024 limit are Keyless's own (not verified).
"""

from __future__ import annotations

from typing import Any

from keyless.arm import errors
from keyless.arm.ids import is_guid

MAX_ACCESS_POLICIES = 1024
CATEGORIES: dict[str, frozenset[str]] = {
    "keys": frozenset(
        [
            "all",
            "encrypt",
            "decrypt",
            "wrapkey",
            "unwrapkey",
            "sign",
            "verify",
            "get",
            "list",
            "create",
            "update",
            "import",
            "delete",
            "backup",
            "restore",
            "recover",
            "purge",
            "release",
            "rotate",
            "getrotationpolicy",
            "setrotationpolicy",
        ]
    ),
    "secrets": frozenset(["all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge"]),
    "certificates": frozenset(
        [
            "all",
            "get",
            "list",
            "delete",
            "create",
            "import",
            "update",
            "managecontacts",
            "getissuers",
            "listissuers",
            "setissuers",
            "deleteissuers",
            "manageissuers",
            "recover",
            "purge",
            "backup",
            "restore",
        ]
    ),
    "storage": frozenset(
        [
            "all",
            "get",
            "list",
            "delete",
            "set",
            "update",
            "regeneratekey",
            "recover",
            "purge",
            "backup",
            "restore",
            "setsas",
            "listsas",
            "getsas",
            "deletesas",
        ]
    ),
}
_MAX_FIELD = 256


def _invalid(where: str, value: Any) -> errors.ArmError:
    shown = value if isinstance(value, str) else type(value).__name__
    return errors.bad_request(f"Invalid value found at {where}: {str(shown)[:_MAX_FIELD]}")


def _guid(entry: dict[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not is_guid(value):
        raise _invalid(f"{where}.{key[0].upper()}{key[1:]}", value)
    return value


def _permissions(value: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise _invalid(f"{where}.Permissions", value)
    out: dict[str, list[str]] = {}
    for category, names in value.items():
        allowed = CATEGORIES.get(category)
        if allowed is None:
            raise _invalid(f"{where}.Permissions", category)
        if names is None:
            continue
        if not isinstance(names, list) or len(names) > 2 * len(allowed):
            raise _invalid(f"{where}.Permissions.{category}", names)
        kept: list[str] = []
        for i, name in enumerate(names):
            if not isinstance(name, str) or name.lower() not in allowed:
                raise _invalid(f"{where}.Permissions.{category}[{i}]", name)
            if name.lower() not in {k.lower() for k in kept}:
                kept.append(name)
        out[category] = kept
    return out


def validate_entries(value: Any, vault_tenant: str, *, field: str = "accessPolicies") -> list[dict[str, Any]]:
    """The checked entries of an ``accessPolicies`` array (None: empty). Raises ArmError 400 for a
    non-array, more than 1024 entries, an entry that is not an object, a tenantId/objectId/
    applicationId that is not a GUID, a tenantId other than the vault's, or an unknown permission."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(field, value)
    if len(value) > MAX_ACCESS_POLICIES:
        raise too_many()
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict):
            raise _invalid(where, entry)
        tenant = _guid(entry, "tenantId", where, required=True)
        object_id = _guid(entry, "objectId", where, required=True)
        application = _guid(entry, "applicationId", where, required=False)
        assert tenant is not None and object_id is not None
        if tenant.lower() != vault_tenant.lower():
            raise errors.bad_request(
                f"The tenant ID '{tenant}' of {where} is not the vault's tenant ID '{vault_tenant}'. All "
                "identities in accessPolicies must use the vault's tenant ID."
            )
        checked: dict[str, Any] = {"tenantId": tenant, "objectId": object_id}
        if application is not None:
            checked["applicationId"] = application
        checked["permissions"] = _permissions(entry.get("permissions"), where)
        out.append(checked)
    return out


def too_many() -> errors.ArmError:
    return errors.bad_request(
        f"A vault can have at most {MAX_ACCESS_POLICIES} access policies.", code="AccessPolicyQuotaExceeded"
    )


def _identity(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (
        entry["tenantId"].lower(),
        entry["objectId"].lower(),
        (entry.get("applicationId") or "").lower(),
    )


def _union(old: list[str], new: list[str]) -> list[str]:
    seen = {p.lower() for p in old}
    return [*old, *(p for p in new if p.lower() not in seen)]


def apply_update(
    kind: str, current: list[dict[str, Any]], given: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The vault's access policies after ``accessPolicies/{kind}`` with ``given`` (checked entries).

    ``kind`` is ``add``, ``replace`` or ``remove`` (lower-case). Raises ArmError 400 if the result
    would hold more than 1024 entries.
    """
    result = [dict(e, permissions={k: list(v) for k, v in e["permissions"].items()}) for e in current]
    for entry in given:
        match = next((e for e in result if _identity(e) == _identity(entry)), None)
        if kind == "remove":
            if match is None:
                continue
            for category, names in entry["permissions"].items():
                dropped = {n.lower() for n in names}
                kept = [n for n in match["permissions"].get(category, []) if n.lower() not in dropped]
                match["permissions"][category] = kept
            if not any(match["permissions"].values()):
                result.remove(match)
        elif match is None:
            result.append(entry)
        elif kind == "add":
            for category, names in entry["permissions"].items():
                match["permissions"][category] = _union(match["permissions"].get(category, []), names)
        else:  # replace
            match["permissions"].update(entry["permissions"])
    if len(result) > MAX_ACCESS_POLICIES:
        raise too_many()
    return result
