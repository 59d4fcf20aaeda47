"""The ``identity`` property: system-assigned identities live and die with their resource;
user-assigned ones are referenced by id, must exist, and report their principal and client ids.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.ids import ResourceId, parse_resource_id
from keyless.authority import principals
from keyless.store.tables import resources

UAMI_TYPE_KEY = "microsoft.managedidentity/userassignedidentities"

_TYPES = {
    "none": (False, False),
    "systemassigned": (True, False),
    "userassigned": (False, True),
    "systemassigned,userassigned": (True, True),
}


def _parse_type(value: Any) -> tuple[bool, bool, str]:
    if not isinstance(value, str):
        raise errors.invalid_request_content("identity.type must be a string")
    spelled = value.strip()
    flags = _TYPES.get(spelled.replace(" ", "").lower())
    if flags is None:
        raise errors.bad_request(
            f"The identity type '{value}' is invalid. The supported identity types are 'None', "
            "'SystemAssigned', 'UserAssigned' and 'SystemAssigned, UserAssigned'.",
            code="InvalidIdentityType",
            target="identity.type",
        )
    canonical = {
        (False, False): "None",
        (True, False): "SystemAssigned",
        (False, True): "UserAssigned",
        # Echo the spelling the client used: Compute uses the space, newer providers do not.
        (True, True): "SystemAssigned, UserAssigned" if " " in spelled else "SystemAssigned,UserAssigned",
    }[flags]
    return flags[0], flags[1], canonical


def _user_assigned_entry(conn: sa.Connection, owner: ResourceId, uami_id: str) -> tuple[str, dict[str, str]]:
    parsed = parse_resource_id(uami_id)
    if parsed is None or parsed.type_key != UAMI_TYPE_KEY or len(parsed.names) != 1:
        raise errors.bad_request(
            f"The user-assigned identity '{uami_id}' is not a valid resource id of type "
            "'Microsoft.ManagedIdentity/userAssignedIdentities'.",
            code="InvalidUserAssignedIdentity",
            target="identity.userAssignedIdentities",
        )
    row = conn.execute(
        sa.select(resources.c.resource_id, resources.c.document).where(resources.c.id_key == parsed.key)
    ).first()
    if row is None:
        raise errors.bad_request(
            f"Identity operation for resource '{owner}' failed: the user-assigned identity "
            f"'{uami_id}' was not found.",
            code="FailedIdentityOperation",
            target="identity.userAssignedIdentities",
        )
    props = orjson.loads(row.document).get("properties", {})
    return row.resource_id, {"principalId": props["principalId"], "clientId": props["clientId"]}


def apply_identity(
    conn: sa.Connection,
    rid: ResourceId,
    tenant_id: str,
    requested: Any,
    current: dict[str, Any] | None,
    *,
    merge: bool,
) -> dict[str, Any] | None:
    """Return the identity to store after a PUT (``merge=False``) or PATCH (``merge=True``).

    Creates the system-assigned principal when it is added, deletes it when it is removed.
    """
    if requested is None:
        if merge or current is None:
            return current
        requested = {"type": "None"}
    if not isinstance(requested, dict):
        raise errors.invalid_request_content("identity must be an object")
    want_system, want_user, spelled = _parse_type(requested.get("type", "None"))
    asked = requested.get("userAssignedIdentities")
    if asked is not None and not isinstance(asked, dict):
        raise errors.invalid_request_content("identity.userAssignedIdentities must be an object")

    existing_user: dict[str, dict[str, str]] = dict((current or {}).get("userAssignedIdentities") or {})
    user: dict[str, dict[str, str]] = dict(existing_user) if merge else {}
    by_key = {k.lower(): k for k in user}
    for uami_id, value in (asked or {}).items():
        if value is None:  # null removes the identity (merge-patch semantics)
            old = by_key.pop(uami_id.lower(), None)
            if old is not None:
                user.pop(old, None)
            continue
        if not isinstance(value, dict):
            raise errors.invalid_request_content(
                f"identity.userAssignedIdentities['{uami_id}'] must be an object"
            )
        stored_id, entry = _user_assigned_entry(conn, rid, uami_id)
        old = by_key.pop(uami_id.lower(), None)
        if old is not None:
            user.pop(old, None)
        user[stored_id] = entry
        by_key[stored_id.lower()] = stored_id
    if not want_user:
        if asked:
            if any(v is not None for v in asked.values()):
                raise errors.bad_request(
                    "The identity type must include 'UserAssigned' when userAssignedIdentities are given.",
                    code="InvalidIdentityType",
                    target="identity.type",
                )
        user = {}
    elif not user:
        raise errors.bad_request(
            "The identity type 'UserAssigned' requires at least one entry in userAssignedIdentities.",
            code="InvalidIdentityType",
            target="identity.userAssignedIdentities",
        )

    had_system = bool(current and current.get("principalId"))
    system_principal: str | None = current.get("principalId") if current else None
    if want_system and not had_system:
        created = principals.create_principal(
            conn,
            tenant_id=tenant_id,
            principal_type=principals.MANAGED_IDENTITY,
            display_name=rid.name,
            managed_identity_resource_id=rid.claims_form(),
            owner_key=rid.key,
        )
        system_principal = created.object_id
    elif not want_system and had_system:
        for principal in principals.owned_by(conn, rid.key):
            principals.delete_principal(conn, principal.object_id)
        system_principal = None

    if not want_system and not want_user:
        return {"type": "None"}
    identity: dict[str, Any] = {"type": spelled}
    if want_system:
        identity["principalId"] = system_principal
        identity["tenantId"] = tenant_id
    if want_user:
        identity["userAssignedIdentities"] = user
    return identity
