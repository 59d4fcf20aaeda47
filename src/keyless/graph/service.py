"""Microsoft Graph's directory reads, free of HTTP: the objects are ``keyless.directory``'s.

Who may read. Real Graph lets an app read the directory only with an application permission such
as Directory.Read.All, which managed identities normally lack. Keyless grants it to the instance's
local administrator (the principal ``keyless run`` signs in as), and to nobody else: every other
principal gets 403 ``Authorization_RequestDenied``, which the Azure CLI handles (``az role
assignment list`` then shows object ids without names; ``--assignee <object id>`` falls back to
the id). That is the safe reading: no workload learns the directory's contents.

Shapes from the Graph v1.0 reference (servicePrincipal, group, directoryObject: getByIds,
checkMemberGroups) and what az 2.91 reads (reference/az-cli.md: ``@odata.type``,
``servicePrincipalNames[0]``, ``displayName``).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keyless.arm.ids import is_guid
from keyless.authority.tokens import Caller
from keyless.directory import groups, principals
from keyless.graph import errors
from keyless.graph.filters import Schema, compile_filter
from keyless.rbac.service import RbacService
from keyless.store.db import Database
from keyless.store.tables import principals as principals_table
from keyless.store.tables import security_groups
from keyless.web import bounded_int

ODATA = "https://graph.microsoft.com/v1.0/$metadata"
SP_TYPE = "#microsoft.graph.servicePrincipal"
GROUP_TYPE = "#microsoft.graph.group"
# Graph's page sizes: 100 by default, 999 at most; getByIds takes 1,000 ids, checkMemberGroups 20.
DEFAULT_PAGE = 100
MAX_PAGE = 999
MAX_IDS = 1000
MAX_GROUP_IDS = 20
_TYPES = frozenset(
    {
        "user",
        "group",
        "serviceprincipal",
        "application",
        "device",
        "orgcontact",
        "directoryobjectpartnerreference",
    }
)

SP_SCHEMA = Schema(
    "ServicePrincipal",
    strings={
        "id": principals_table.c.object_id,
        "appId": principals_table.c.app_id,
        "displayName": principals_table.c.display_name,
        "appDisplayName": principals_table.c.display_name,
        "servicePrincipalType": sa.case(
            (principals_table.c.principal_type == principals.MANAGED_IDENTITY, "ManagedIdentity"),
            else_="Application",
        ),
    },
    booleans={"accountEnabled": True},
    collections={"servicePrincipalNames": principals.has_name},
)
GROUP_SCHEMA = Schema(
    "Group",
    strings={
        "id": security_groups.c.object_id,
        "displayName": security_groups.c.display_name,
        "mailNickname": security_groups.c.display_name,
    },
    booleans={"securityEnabled": True, "mailEnabled": False},
)
# Keyless's directory has no users; a filter on users is still checked, then matches nothing.
USER_SCHEMA = Schema(
    "User",
    strings={
        name: sa.literal("")
        for name in ("id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "mailNickname")
    },
    booleans={"accountEnabled": True},
)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    skiptoken: str | None


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def render_service_principal(p: principals.Principal, names: Sequence[str]) -> dict[str, Any]:
    managed = p.principal_type == principals.MANAGED_IDENTITY
    mirid = p.managed_identity_resource_id or ""
    spns = [p.app_id, *names] + ([mirid] if managed and mirid else [])
    user_assigned = "/userassignedidentities/" in mirid.lower()
    return {
        "id": p.object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        # A managed identity's: isExplicit (user-assigned) and its resource id (Graph's documented use).
        "alternativeNames": [f"isExplicit={user_assigned}", mirid] if managed else [],
        "appDisplayName": None if managed else p.display_name,
        "appId": p.app_id,
        "appOwnerOrganizationId": None if managed else p.tenant_id,
        "appRoleAssignmentRequired": False,
        "displayName": p.display_name,
        "servicePrincipalNames": spns,
        "servicePrincipalType": "ManagedIdentity" if managed else "Application",
        "signInAudience": None if managed else "AzureADMyOrg",
        "tags": [],
        "appRoles": [],
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
    }


def render_group(g: groups.Group) -> dict[str, Any]:
    return {
        "id": g.object_id,
        "deletedDateTime": None,
        "createdDateTime": iso(g.created_at),
        "description": None,
        "displayName": g.display_name,
        "groupTypes": [],
        "mail": None,
        "mailEnabled": False,
        "mailNickname": g.display_name,
        "securityEnabled": True,
        "visibility": None,
    }


def _typed(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.type": kind, **doc}


def _skiptoken(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _after(skiptoken: str | None) -> str | None:
    if skiptoken is None:
        return None
    try:
        after = base64.urlsafe_b64decode(skiptoken + "=" * (-len(skiptoken) % 4)).decode()
    except ValueError:
        after = ""
    if not is_guid(after):
        raise errors.bad_request("Invalid paging token specified.")  # also a bad UTF-8 token
    return after.lower()


def page_size(top: str | None) -> int:
    if top is None:
        return DEFAULT_PAGE
    size = bounded_int(top, MAX_PAGE)
    if not size:
        raise errors.bad_request(
            f"Invalid page size specified: '{top[:20]}'. Must be between 1 and {MAX_PAGE} inclusive."
        )
    return size


def object_id(value: str) -> str:
    if not is_guid(value):
        raise errors.invalid_object_id(value)
    return value.lower()


class GraphService:
    def __init__(self, db: Database, rbac: RbacService) -> None:
        self.db = db
        self.rbac = rbac

    def authorize(self, caller: Caller) -> None:
        """Directory reads: the local administrator only (see the module's docstring)."""
        if caller.object_id.lower() != (self.rbac.admin_object_id() or "").lower():
            raise errors.access_denied()

    # --- service principals ------------------------------------------------------------------

    def _render_principals(
        self, conn: sa.Connection, found: Sequence[principals.Principal]
    ) -> list[dict[str, Any]]:
        names = principals.names_of(conn, [p.object_id for p in found])
        return [render_service_principal(p, names.get(p.object_id, [])) for p in found]

    def list_service_principals(
        self, caller: Caller, filter_text: str, top: str | None, skiptoken: str | None
    ) -> Page:
        condition = compile_filter(filter_text, SP_SCHEMA)
        limit, after = page_size(top), _after(skiptoken)
        with self.db.read() as conn:
            found = principals.in_tenant(
                conn, caller.tenant_id, sa.true() if condition is None else condition, after, limit + 1
            )
            items = self._render_principals(conn, found[:limit])
        return Page(items, _skiptoken(found[limit - 1].object_id) if len(found) > limit else None)

    def service_principal(self, caller: Caller, key: str, *, by_app_id: bool = False) -> dict[str, Any]:
        wanted = object_id(key)
        with self.db.read() as conn:
            found = (
                principals.get_by_app_id(conn, wanted)
                if by_app_id
                else principals.get_by_object_id(conn, wanted)
            )
            if found is None or found.tenant_id != caller.tenant_id:
                raise errors.not_found(key)
            return self._render_principals(conn, [found])[0]

    # --- groups --------------------------------------------------------------------------------

    def list_groups(self, caller: Caller, filter_text: str, top: str | None, skiptoken: str | None) -> Page:
        condition = compile_filter(filter_text, GROUP_SCHEMA)
        limit, after = page_size(top), _after(skiptoken)
        with self.db.read() as conn:
            found = groups.in_tenant(
                conn, caller.tenant_id, sa.true() if condition is None else condition, after, limit + 1
            )
        items = [render_group(g) for g in found[:limit]]
        return Page(items, _skiptoken(found[limit - 1].object_id) if len(found) > limit else None)

    def group(self, caller: Caller, key: str) -> dict[str, Any]:
        with self.db.read() as conn:
            found = groups.get(conn, object_id(key))
        if found is None or found.tenant_id != caller.tenant_id:
            raise errors.not_found(key)
        return render_group(found)

    def group_members(self, caller: Caller, key: str, top: str | None, skiptoken: str | None) -> Page:
        limit, after = page_size(top), _after(skiptoken)
        with self.db.read() as conn:
            found = groups.get(conn, object_id(key))
            if found is None or found.tenant_id != caller.tenant_id:
                raise errors.not_found(key)
            members = [m for m in groups.members(conn, found.object_id) if after is None or m > after]
            shown = members[:limit]
            items = self._objects(conn, caller.tenant_id, shown, None)
        return Page(items, _skiptoken(shown[-1]) if len(members) > limit else None)

    # --- directory objects ----------------------------------------------------------------------

    def _objects(
        self, conn: sa.Connection, tenant_id: str, ids: Sequence[str], types: frozenset[str] | None
    ) -> list[dict[str, Any]]:
        """The objects with these ids, typed, in the order asked; unknown ids are left out."""
        by_id: dict[str, dict[str, Any]] = {}
        if types is None or "serviceprincipal" in types:
            found = [p for p in map(lambda i: principals.get_by_object_id(conn, i), ids) if p is not None]
            for doc in self._render_principals(conn, [p for p in found if p.tenant_id == tenant_id]):
                by_id[doc["id"]] = _typed(SP_TYPE, doc)
        if types is None or "group" in types:
            for group in groups.get_many(conn, ids):
                if group.tenant_id == tenant_id:
                    by_id[group.object_id] = _typed(GROUP_TYPE, render_group(group))
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def get_by_ids(self, caller: Caller, body: Any) -> list[dict[str, Any]]:
        """``POST /directoryObjects/getByIds``: ``{"ids": [...], "types": [...]}``."""
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            raise errors.bad_request("The request must contain an 'ids' collection.")
        ids, types = body["ids"], body.get("types")
        if len(ids) > MAX_IDS:
            raise errors.bad_request(f"The 'ids' collection can hold at most {MAX_IDS} values.")
        if not all(isinstance(i, str) for i in ids):
            raise errors.bad_request("Every value of 'ids' must be a string.")
        wanted = [object_id(i) for i in ids]
        kinds: frozenset[str] | None = None
        if types is not None:
            if not isinstance(types, list) or not all(
                isinstance(t, str) and t.lower() in _TYPES for t in types
            ):
                raise errors.bad_request("Invalid value in 'types'.")
            kinds = frozenset(t.lower() for t in types) or None
        with self.db.read() as conn:
            return self._objects(conn, caller.tenant_id, wanted, kinds)

    def check_member_groups(self, caller: Caller, key: str, body: Any) -> list[str]:
        """``POST /directoryObjects/{id}/checkMemberGroups``: which of ``groupIds`` the object is
        in, directly or through nested groups."""
        if not isinstance(body, dict) or not isinstance(body.get("groupIds"), list):
            raise errors.bad_request("The request must contain a 'groupIds' collection.")
        asked = body["groupIds"]
        if len(asked) > MAX_GROUP_IDS or not all(isinstance(g, str) for g in asked):
            raise errors.bad_request(f"'groupIds' must hold at most {MAX_GROUP_IDS} object ids.")
        wanted = [object_id(g) for g in asked]
        member = object_id(key)
        with self.db.read() as conn:
            if groups.kind_of(conn, member) is None:
                raise errors.not_found(key)
            closure = groups.transitive_groups(conn, member)
        return [g for g in dict.fromkeys(wanted) if g in closure]

    def directory_object(self, caller: Caller, key: str) -> dict[str, Any]:
        with self.db.read() as conn:
            found = self._objects(conn, caller.tenant_id, [object_id(key)], None)
        if not found:
            raise errors.not_found(key)
        return found[0]

    def list_users(self, caller: Caller, filter_text: str, top: str | None) -> Page:
        compile_filter(filter_text, USER_SCHEMA)  # checked as Graph would; no user matches
        page_size(top)
        return Page([], None)
