"""``Microsoft.Authorization`` on the resource manager: the wire layer over ``RbacService``.

Registered as the ``microsoft.authorization`` extension of ``ArmApp``, so every path
``{scope}/providers/Microsoft.Authorization/...`` lands here, for any scope: the tenant root
(``/providers/...``), a subscription, a resource group, a resource or a child resource.

=================================================  ========================================
``{scope}/.../roleAssignments/{guid}``              GET, PUT (201 create / 200 update), DELETE
                                                    (200 + body, or 204 when absent)
``{scope}/.../roleAssignments``                     GET; ``$filter`` = ``atScope()``,
                                                    ``principalId eq '{id}'``, ``assignedTo('{id}')``,
                                                    joined with ``and``
``{scope}/.../roleDefinitions[/{guid}]``            GET (``$filter`` ``roleName eq '..'``,
                                                    ``type eq 'BuiltInRole'|'CustomRole'``);
                                                    PUT/DELETE custom roles
``{scope}/.../permissions``                         GET: the caller's effective permissions
``{scope}/.../denyAssignments[/{id}]``              GET (deny assignments are system-made)
``{scope}/.../explain``  (Keyless's own)            POST ``{"action", "principalId"?,
                                                    "isDataAction"?}`` -> the evaluator's decision
=================================================  ========================================

The explain operation answers, for (principal, action, scope), allowed or denied and why: the
assignments and roles that matched (and from which inherited scope), the caller's assignments that
did not and why (the closest misses), and any deny assignment that applied.  Body::

    POST {scope}/providers/Microsoft.Authorization/explain?api-version=2022-04-01
    {"action": "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
     "isDataAction": true,                       # default false: a control-plane action
     "principalId": "<object id>"}               # default: the caller itself

Response (200)::

    {"principalId", "principalType", "groupIds": [...],      # whom it evaluated
     "allowed": bool, "decision": "allowed" | "denied_by_deny_assignment" | "not_granted",
     "action", "scope", "isDataAction", "principalIds",
     "matchedAssignments": [{"roleAssignmentName", "roleDefinitionName", "roleName", "principalId",
                             "principalType", "scope", "inheritedFrom", "matchedPattern"}],
     "nonMatchingAssignments": [{..., "appliesAtScope", "reason", "blockedByCondition"}],
     "denyAssignments": [{"denyAssignmentName", "scope", "matchedPattern", "reason"}],
     "summary": "human-readable lines"}

Explaining another principal needs ``Microsoft.Authorization/roleAssignments/read`` at the scope;
explaining oneself needs nothing.  The scope need not exist (ask "could I ... if it did?").

Every input is bounded before work is done on it: the scope by the resource manager's id parser
(``keyless.arm.ids``: 400 ``InvalidScope`` past an id's length), the action (at most 512 characters,
shaped as an action: 400 ``InvalidAction``), ``$filter`` (1,024 characters: 400 ``InvalidFilter``)
and ``$skipToken`` (the offsets nextLink hands out: 400 ``InvalidSkipToken``).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlencode

from keyless.arm import errors as arm_errors
from keyless.arm.bodies import parse_body
from keyless.arm.engine import Reply, RequestContext
from keyless.arm.http import ArmRequest
from keyless.arm.ids import id_segments
from keyless.rbac import errors
from keyless.rbac.evaluator import Permission, role_definition_id
from keyless.rbac.service import (
    RbacService,
    StoredAssignment,
    StoredDenyAssignment,
    StoredRoleDefinition,
    iso_time,
    permission_json,
)
from keyless.web import bounded_int

NAMESPACE: Final = "Microsoft.Authorization"

# api-versions ARM accepts for Microsoft.Authorization (azure-mgmt-authorization 4.0.0 sends
# 2022-04-01 by default, and 2015-07-01 / 2018-01-01-preview / 2018-09-01-preview /
# 2020-04-01-preview / 2020-10-01-preview / 2022-05-01-preview when asked for them).
ROLE_ASSIGNMENT_API_VERSIONS: Final = frozenset(
    {
        "2014-04-01-preview",
        "2014-07-01-preview",
        "2014-10-01-preview",
        "2015-05-01-preview",
        "2015-06-01",
        "2015-07-01",
        "2016-07-01",
        "2017-05-01",
        "2017-09-01",
        "2017-10-01-preview",
        "2018-01-01-preview",
        "2018-07-01",
        "2018-09-01-preview",
        "2018-12-01-preview",
        "2019-04-01-preview",
        "2020-03-01-preview",
        "2020-04-01-preview",
        "2020-08-01-preview",
        "2020-10-01-preview",
        "2021-04-01-preview",
        "2022-01-01-preview",
        "2022-04-01",
    }
)
ROLE_DEFINITION_API_VERSIONS: Final = frozenset(
    {
        "2014-04-01-preview",
        "2015-05-01-preview",
        "2015-06-01",
        "2015-07-01",
        "2016-07-01",
        "2017-05-01",
        "2017-09-01",
        "2018-01-01-preview",
        "2018-07-01",
        "2022-04-01",
        "2022-05-01-preview",
    }
)
PERMISSIONS_API_VERSIONS: Final = frozenset(
    {"2015-06-01", "2015-07-01", "2017-05-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview"}
)
DENY_ASSIGNMENT_API_VERSIONS: Final = frozenset({"2018-07-01-preview", "2022-04-01"})

_API_VERSIONS: Final = {
    "roleassignments": ROLE_ASSIGNMENT_API_VERSIONS,
    "roledefinitions": ROLE_DEFINITION_API_VERSIONS,
    "permissions": PERMISSIONS_API_VERSIONS,
    "denyassignments": DENY_ASSIGNMENT_API_VERSIONS,
    "explain": ROLE_ASSIGNMENT_API_VERSIONS,
}
_TYPES: Final = {
    "roleassignments": "roleAssignments",
    "roledefinitions": "roleDefinitions",
    "permissions": "permissions",
    "denyassignments": "denyAssignments",
    "explain": "explain",
}

# A $filter is read only up to this length (Keyless's bound; Azure documents none): the longest
# supported filter, two terms with a GUID or a 512-character role name, is far shorter.
_FILTER_LIMIT: Final = 1024
# Every term is matched against the whole string (``fullmatch``).
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_QUOTED = r"'?([^']*)'?"
_AT_SCOPE = re.compile(r"atScope\(\)", re.IGNORECASE)
_PRINCIPAL_EQ = re.compile(r"principalId\s+eq\s+" + _QUOTED, re.IGNORECASE)
_ASSIGNED_TO = re.compile(r"assignedTo\(\s*'([^']*)'\s*\)", re.IGNORECASE)
_ROLE_NAME_EQ = re.compile(r"roleName\s+eq\s+'(.*)'", re.IGNORECASE | re.DOTALL)
_TYPE_EQ = re.compile(r"type\s+eq\s+'([^']*)'", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def render_assignment(a: StoredAssignment) -> dict[str, Any]:
    """A role assignment as ARM answers it.  ``roleDefinitionId`` names the definition under the
    assignment's subscription (``/subscriptions/{s}/providers/Microsoft.Authorization/
    roleDefinitions/{guid}``, as live ARM and ``az role assignment list`` show it, and as role
    definitions are listed there: az matches the two strings exactly); in the tenant form only at
    the root or a management group, where there is no subscription (az-cli.md, row 35)."""
    return {
        "properties": {
            "roleDefinitionId": _definition_prefix(a.scope) + role_definition_id(a.role_definition_name),
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": a.scope,
            "condition": a.condition,
            "conditionVersion": a.condition_version,
            "createdOn": iso_time(a.created_at),
            "updatedOn": iso_time(a.updated_at),
            "createdBy": a.created_by,
            "updatedBy": a.updated_by,
            "delegatedManagedIdentityResourceId": a.delegated_managed_identity_resource_id,
            "description": a.description,
        },
        "id": a.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "name": a.name,
    }


def _definition_prefix(scope: str) -> str:
    """Role definition ids carry the request's subscription (``/subscriptions/{s}/providers/...``)."""
    parts = id_segments(scope) or []
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return f"/subscriptions/{parts[1]}"
    return ""


def render_role_definition(stored: StoredRoleDefinition, scope: str) -> dict[str, Any]:
    d = stored.definition
    permissions = []
    for p in d.permissions:
        item = permission_json(p)
        item.setdefault("condition", None)
        item.setdefault("conditionVersion", None)
        permissions.append(item)
    return {
        "properties": {
            "roleName": d.role_name,
            "type": d.role_type,
            "description": d.description,
            "assignableScopes": list(d.assignable_scopes),
            "permissions": permissions,
            "createdOn": iso_time(stored.created_at) if stored.created_at is not None else None,
            "updatedOn": iso_time(stored.updated_at) if stored.updated_at is not None else None,
            "createdBy": stored.created_by,
            "updatedBy": stored.updated_by,
        },
        "id": f"{_definition_prefix(scope)}/providers/Microsoft.Authorization/roleDefinitions/{d.name}",
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": d.name,
    }


def render_permission(p: Permission) -> dict[str, Any]:
    return {
        "actions": list(p.actions),
        "notActions": list(p.not_actions),
        "dataActions": list(p.data_actions),
        "notDataActions": list(p.not_data_actions),
    }


def render_deny_assignment(stored: StoredDenyAssignment) -> dict[str, Any]:
    deny = stored.deny

    def principal(pid: str) -> dict[str, str]:
        return {"id": pid, "type": stored.principal_types.get(pid.lower(), "")}

    scope = deny.scope
    return {
        "properties": {
            "denyAssignmentName": stored.display_name,
            "description": stored.description,
            "permissions": [render_permission(deny.permissions)],
            "scope": scope,
            "doNotApplyToChildScopes": deny.do_not_apply_to_child_scopes,
            "principals": [principal(p) for p in deny.principal_ids],
            "excludePrincipals": [principal(p) for p in deny.exclude_principal_ids],
            "isSystemProtected": stored.is_system_protected,
        },
        "id": f"{'' if scope == '/' else scope}/providers/Microsoft.Authorization/denyAssignments/{deny.name}",
        "type": "Microsoft.Authorization/denyAssignments",
        "name": deny.name,
    }


# --------------------------------------------------------------------------------------------------
# The handler
# --------------------------------------------------------------------------------------------------


class AuthorizationApi:
    def __init__(self, rbac: RbacService, page_size: int) -> None:
        self.rbac = rbac
        self.page_size = page_size

    async def __call__(self, request: ArmRequest) -> Reply:
        return self.handle(request)

    def handle(self, request: ArmRequest) -> Reply:
        # The resource manager's own split (bounded), so the scope is the one ARM routed on.
        segments = id_segments(request.path)
        if segments is None:
            raise errors.invalid_scope(request.path)
        lowered = [s.lower() for s in segments]
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        scope = "/" + "/".join(segments[:at])
        rest = segments[at + 2 :]
        if not rest:
            raise arm_errors.no_route(request.path)
        kind = rest[0].lower()
        versions = _API_VERSIONS.get(kind)
        if versions is None or len(rest) > 2:
            raise arm_errors.invalid_resource_type(NAMESPACE, rest[0])
        ctx = request.ctx
        if ctx.api_version not in versions:
            raise arm_errors.invalid_api_version(ctx.api_version, versions)
        name = rest[1] if len(rest) == 2 else None
        method = request.method
        if kind == "roleassignments":
            if name is None:
                return self._only(method, "GET", lambda: self._list_assignments(request, scope))
            return self._assignment(request, scope, name)
        if kind == "roledefinitions":
            if name is None:
                return self._only(method, "GET", lambda: self._list_definitions(request, scope))
            return self._definition(request, scope, name)
        if kind == "denyassignments":
            if name is None:
                return self._only(method, "GET", lambda: self._list_denies(request, scope))
            return self._only(method, "GET", lambda: self._get_deny(ctx, scope, name))
        if name is not None:
            raise arm_errors.no_route(request.path)
        if kind == "permissions":
            return self._only(method, "GET", lambda: self._permissions(request, scope))
        return self._only(method, "POST", lambda: self._explain(request, scope))

    @staticmethod
    def _only(method: str, allowed: str, run: Any) -> Reply:
        if method != allowed:
            raise arm_errors.method_not_allowed(method)
        result: Reply = run()
        return result

    def _page(self, request: ArmRequest, items: list[dict[str, Any]]) -> Reply:
        token = request.query.get("$skipToken") or request.query.get("$skiptoken")
        start = 0
        if token:
            # Only what nextLink gives out: the ASCII digits of an offset.
            offset = bounded_int(token, 999_999_999)
            if offset is None:
                shown = token if len(token) <= 100 else token[:100] + "..."
                raise arm_errors.bad_request(f"The skip token '{shown}' is invalid.", code="InvalidSkipToken")
            start = offset
        body: dict[str, Any] = {"value": items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            query = {k: v for k, v in request.query.items() if k.lower() != "$skiptoken"}
            query["$skipToken"] = str(start + self.page_size)
            body["nextLink"] = f"{request.ctx.base_url}{request.path}?{urlencode(query)}"
        return Reply(200, body)

    # --- role assignments -------------------------------------------------------------------

    def _assignment(self, request: ArmRequest, scope: str, name: str) -> Reply:
        ctx = request.ctx
        if request.method == "GET":
            return Reply(200, render_assignment(self.rbac.get_assignment(ctx.caller, scope, name)))
        if request.method == "PUT":
            properties = _bounded(_properties(request.body), _ASSIGNMENT_LIMITS)
            created, stored = self.rbac.create_assignment(
                ctx.caller, scope, name, properties, api_version=ctx.api_version
            )
            return Reply(201 if created else 200, render_assignment(stored))
        if request.method == "DELETE":
            deleted = self.rbac.delete_assignment(ctx.caller, scope, name)
            return Reply(204) if deleted is None else Reply(200, render_assignment(deleted))
        raise arm_errors.method_not_allowed(request.method)

    def _list_assignments(self, request: ArmRequest, scope: str) -> Reply:
        at_scope, principal_id, assigned_to = False, None, None
        raw = _filter(request)
        if raw:
            for term in _AND.split(raw):
                term = term.strip()
                if _AT_SCOPE.fullmatch(term):
                    at_scope = True
                elif m := _PRINCIPAL_EQ.fullmatch(term):
                    principal_id = m.group(1)
                elif m := _ASSIGNED_TO.fullmatch(term):
                    assigned_to = m.group(1)
                else:
                    raise errors.invalid_filter(raw)
        found = self.rbac.list_assignments(
            request.ctx.caller, scope, at_scope=at_scope, principal_id=principal_id, assigned_to=assigned_to
        )
        return self._page(request, [render_assignment(a) for a in found])

    # --- role definitions -------------------------------------------------------------------

    def _definition(self, request: ArmRequest, scope: str, name: str) -> Reply:
        ctx = request.ctx
        if request.method == "GET":
            found = self.rbac.get_role_definition(ctx.caller, scope, name)
            return Reply(200, render_role_definition(found, scope))
        if request.method == "PUT":
            created, stored = self.rbac.put_role_definition(
                ctx.caller, scope, name, _bounded(_properties(request.body), _DEFINITION_LIMITS)
            )
            return Reply(201 if created else 200, render_role_definition(stored, scope))
        if request.method == "DELETE":
            deleted = self.rbac.delete_role_definition(ctx.caller, scope, name)
            return Reply(204) if deleted is None else Reply(200, render_role_definition(deleted, scope))
        raise arm_errors.method_not_allowed(request.method)

    def _list_definitions(self, request: ArmRequest, scope: str) -> Reply:
        role_name, role_type = None, None
        raw = _filter(request)
        if raw:
            for term in _AND.split(raw):
                term = term.strip()
                if m := _ROLE_NAME_EQ.fullmatch(term):
                    role_name = m.group(1)
                elif m := _TYPE_EQ.fullmatch(term):
                    role_type = m.group(1)
                else:
                    raise errors.invalid_filter(raw)
        found = self.rbac.list_role_definitions(
            request.ctx.caller, scope, role_name=role_name, role_type=role_type
        )
        return self._page(request, [render_role_definition(r, scope) for r in found])

    # --- permissions, deny assignments, explain ---------------------------------------------

    def _permissions(self, request: ArmRequest, scope: str) -> Reply:
        found = self.rbac.permissions_for(request.ctx.caller, scope)
        return Reply(200, {"value": [render_permission(p) for p in found]})

    def _list_denies(self, request: ArmRequest, scope: str) -> Reply:
        found = self.rbac.list_deny_assignments(request.ctx.caller, scope)
        return self._page(request, [render_deny_assignment(d) for d in found])

    def _get_deny(self, ctx: RequestContext, scope: str, name: str) -> Reply:
        found = self.rbac.get_deny_assignment(ctx.caller, scope, name)
        if found is None:
            raise arm_errors.ArmError(
                404, "DenyAssignmentNotFound", f"The deny assignment '{name}' could not be found."
            )
        return Reply(200, render_deny_assignment(found))

    def _explain(self, request: ArmRequest, scope: str) -> Reply:
        body = parse_body(request.body)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise arm_errors.invalid_request_content("Required property 'action' not found in JSON.")
        principal_id = body.get("principalId")
        if principal_id is not None and not isinstance(principal_id, str):
            raise arm_errors.invalid_request_content(
                "Error converting value to type 'string'. Path 'principalId'."
            )
        data_action = body.get("isDataAction", False)
        if not isinstance(data_action, bool):
            raise arm_errors.invalid_request_content(
                "Error converting value to type 'Boolean'. Path 'isDataAction'."
            )
        caller = request.ctx.caller
        target, kind, decision = self.rbac.explain(
            caller, principal_id, action, scope, data_action=data_action
        )
        result: dict[str, Any] = {
            "principalId": target,
            "principalType": kind,
            "groupIds": sorted(p for p in decision.principal_ids if p != target),
        }
        result.update(decision.to_dict())
        result["summary"] = decision.summary()
        return Reply(200, result)


# Optional text properties: each a string (or null) of at most this many characters. A role
# assignment's description is 2 KB, as Azure documents; the others are the store's columns.
_ASSIGNMENT_LIMITS: Final = {
    "description": 2048,
    "delegatedManagedIdentityResourceId": 1024,
    "conditionVersion": 8,
}
_DEFINITION_LIMITS: Final = {"description": 2048}


def _bounded(properties: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    """``properties``, once each field in ``limits`` is a string (or absent or null) no longer
    than its limit; ARM's 400 otherwise (``InvalidRequestContent`` for a wrong type)."""
    for name, limit in limits.items():
        value = properties.get(name)
        if value is not None and not isinstance(value, str):
            raise arm_errors.invalid_request_content(
                f"Error converting value to type 'string'. Path 'properties.{name}'."
            )
        if value is not None and len(value) > limit:
            raise arm_errors.bad_request(
                f"The value of '{name}' is longer than {limit} characters.", target=f"properties.{name}"
            )
    return properties


def _filter(request: ArmRequest) -> str:
    """The ``$filter`` query parameter, bounded before it is parsed (400 ``InvalidFilter``)."""
    raw = request.query.get("$filter", "")
    if len(raw) > _FILTER_LIMIT:
        raise errors.invalid_filter(raw)
    return raw.strip()


def _properties(raw: bytes) -> dict[str, Any]:
    body = parse_body(raw)
    properties = body.get("properties")
    if properties is None:
        raise arm_errors.invalid_request_content("Required property 'properties' not found in JSON.")
    if not isinstance(properties, dict):
        raise arm_errors.invalid_request_content(
            "Error converting value to type 'object'. Path 'properties'."
        )
    return properties
