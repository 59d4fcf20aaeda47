"""The ``identity`` property: system-assigned identities live and die with their resource;
user-assigned ones are referenced by id, must exist, and report their principal and client ids.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.ids import MAX_ID_LENGTH, ResourceId, parse_resource_id
from keyless.authority import principals
from keyless.store.tables import resources

UAMI_TYPE_KEY = "microsoft.managedidentity/userassignedidentities"
# The longest resource id the store keeps (the ``resources.id_key`` column).
MAX_RESOURCE_ID = MAX_ID_LENGTH  # the longest id the store keeps (arm.ids)

_TYPES = {
    "none": (False, False),
    "systemassigned": (True, False),
    "userassigned": (False, True),
    "systemassigned,userassigned": (True, True),
}


# Azure answers one spelling, whatever the request said (case, spaces): the enum values of the
# specs (ResourceIdentityType in Microsoft.Compute, ManagedServiceIdentityType in Microsoft.Web and
# common-types), with ", " between the two kinds.  az compares GET results with exactly
# "SystemAssigned, UserAssigned": an echoed "SystemAssigned,UserAssigned" made `az vm identity
# remove --identities X` drop the system-assigned identity too (az-cli.md, row 84).
_CANONICAL: dict[tuple[bool, bool], str] = {
    (False, False): "None",
    (True, False): "SystemAssigned",
    (False, True): "UserAssigned",
    (True, True): "SystemAssigned, UserAssigned",
}


def check_identity_request(value: Any) -> dict[str, Any] | None:
    """The ``identity`` of a request body with every field's type checked (before anything reads it).

    ``{"type": str, "userAssignedIdentities": {id: object | null} | null}``; null or absent is
    None. Raises ARM's 400 ``InvalidRequestContent`` for a value of the wrong type.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.invalid_request_content("Error converting value to type 'Identity'. Path 'identity'.")
    kind = value.get("type")
    if kind is not None and not isinstance(kind, str):
        raise errors.invalid_request_content("Error converting value to type 'string'. Path 'identity.type'.")
    asked = value.get("userAssignedIdentities")
    if asked is not None and not isinstance(asked, dict):
        raise errors.invalid_request_content(
            "Error converting value to type 'Dictionary[string,UserAssignedIdentity]'. "
            "Path 'identity.userAssignedIdentities'."
        )
    if any(entry is not None and not isinstance(entry, dict) for entry in (asked or {}).values()):
        raise errors.invalid_request_content(
            "Error converting value to type 'UserAssignedIdentity'. Path 'identity.userAssignedIdentities'."
        )
    return value


def _flags(value: str) -> tuple[bool, bool] | None:
    """The (system, user) kinds an identity type names, in either order ("UserAssigned,
    SystemAssigned" is what az's ``ams identity assign`` sends after a user-assigned one), or None."""
    if len(value) > 64:  # bounded before any work: the longest spelling is 29 characters
        return None
    text = value.replace(" ", "").lower()
    flags = _TYPES.get(text)
    if flags is None and text.count(",") == 1 and set(text.split(",")) == {"systemassigned", "userassigned"}:
        flags = (True, True)
    return flags


def _parse_type(value: Any) -> tuple[bool, bool, str]:
    if not isinstance(value, str):
        raise errors.invalid_request_content("Error converting value to type 'string'. Path 'identity.type'.")
    flags = _flags(value)
    if flags is None:
        shown = value if len(value) <= 64 else value[:64] + "..."
        raise errors.bad_request(
            f"The identity type '{shown}' is invalid. The supported identity types are 'None', "
            "'SystemAssigned', 'UserAssigned' and 'SystemAssigned, UserAssigned'.",
            code="InvalidIdentityType",
            target="identity.type",
        )
    return flags[0], flags[1], _CANONICAL[flags]


def identity_kinds(value: Any) -> tuple[bool, bool]:
    """(system-assigned, user-assigned): the kinds an ``identity.type`` names; the 400s of
    ``apply_identity`` for a value that is not one (so a provider can read a request's identity
    before the engine writes it, and refuse the same way)."""
    wants_system, wants_user, _ = _parse_type(value)
    return wants_system, wants_user


def canonical_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` with its ``type`` in Azure's spelling (for documents stored before Keyless
    answered canonically); the same dict when it already is."""
    kind = identity.get("type")
    flags = _flags(kind) if isinstance(kind, str) else None
    if flags is None or _CANONICAL[flags] == kind:
        return identity
    return {**identity, "type": _CANONICAL[flags]}


def parse_user_assigned_id(uami_id: str) -> ResourceId:
    """A user-assigned identity's resource id, or ARM's 400 ``InvalidUserAssignedIdentity``."""
    parsed = parse_resource_id(uami_id) if len(uami_id) <= MAX_RESOURCE_ID else None
    if parsed is None or parsed.type_key != UAMI_TYPE_KEY or len(parsed.names) != 1:
        shown = uami_id if len(uami_id) <= MAX_RESOURCE_ID else uami_id[:MAX_RESOURCE_ID] + "..."
        raise errors.bad_request(
            f"The user-assigned identity '{shown}' is not a valid resource id of type "
            "'Microsoft.ManagedIdentity/userAssignedIdentities'.",
            code="InvalidUserAssignedIdentity",
            target="identity.userAssignedIdentities",
        )
    return parsed


def _user_assigned_entry(conn: sa.Connection, owner: ResourceId, uami_id: str) -> tuple[str, dict[str, str]]:
    parsed = parse_user_assigned_id(uami_id)
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
    requested = check_identity_request(requested)
    assert requested is not None
    want_system, want_user, spelled = _parse_type(requested.get("type", "None"))
    asked: dict[str, Any] | None = requested.get("userAssignedIdentities")

    existing_user: dict[str, dict[str, str]] = dict((current or {}).get("userAssignedIdentities") or {})
    user: dict[str, dict[str, str]] = dict(existing_user) if merge else {}
    by_key = {k.lower(): k for k in user}
    for uami_id, value in (asked or {}).items():
        if value is None:  # null removes the identity (merge-patch semantics)
            old = by_key.pop(uami_id.lower(), None)
            if old is not None:
                user.pop(old, None)
            continue
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
