"""``Keyless.Directory``: Keyless's own, admin-only way to add principals to the directory.

In Azure, service principals and groups are made in Entra ID (Microsoft Graph), not through the
resource manager.  Keyless has no Graph; this small extension of the resource manager (namespace
``Keyless.Directory``, tenant scope only, api-version ``2024-01-01``) stands in for it so that a
non-admin principal with a secret exists to be granted roles — in tests, in examples and from
``keyless sp create`` / ``keyless group ...``.  Only the instance's local administrator may call it;
everyone else gets ARM's 403 ``AuthorizationFailed``.

=========================================================  =====================================
``POST /providers/Keyless.Directory/servicePrincipals``     ``{"displayName"}`` -> 201 ``{"objectId",
                                                            "appId", "tenantId", "displayName",
                                                            "clientSecret"}`` (the secret, once)
``POST /providers/Keyless.Directory/groups``                ``{"displayName"}`` -> 201 ``{"objectId", ...}``
``GET  /providers/Keyless.Directory/groups/{id}``           the group and its direct members
``PUT|DELETE .../groups/{id}/members/{memberId}``           add (201, 200 if already) / remove
                                                            (200, 204 if absent) a member
=========================================================  =====================================
"""

from __future__ import annotations

from typing import Any, Final

from keyless.arm import errors as arm_errors
from keyless.arm.engine import Reply, parse_body
from keyless.arm.http import ArmRequest
from keyless.authority import principals
from keyless.authority.tokens import Caller
from keyless.rbac import errors
from keyless.rbac.service import RbacService

NAMESPACE: Final = "Keyless.Directory"
API_VERSIONS: Final = frozenset({"2024-01-01"})


class DirectoryApi:
    def __init__(self, rbac: RbacService) -> None:
        self.rbac = rbac

    async def __call__(self, request: ArmRequest) -> Reply:
        return self.handle(request)

    def _require_admin(self, caller: Caller, action: str) -> None:
        if caller.object_id.lower() != (self.rbac.admin_object_id() or "").lower():
            raise errors.authorization_failed(caller.object_id, action, "/")

    def handle(self, request: ArmRequest) -> Reply:
        segments = [s for s in request.path.split("/") if s]
        lowered = [s.lower() for s in segments]
        if lowered[:2] != ["providers", NAMESPACE.lower()] or len(lowered) < 3:
            raise arm_errors.no_route(request.path)
        rest, rest_lowered = segments[2:], lowered[2:]
        if rest_lowered[0] not in ("serviceprincipals", "groups"):
            raise arm_errors.invalid_resource_type(NAMESPACE, rest[0])
        if request.ctx.api_version not in API_VERSIONS:
            raise arm_errors.invalid_api_version(request.ctx.api_version, API_VERSIONS)
        caller = request.ctx.caller
        method = request.method
        if rest_lowered == ["serviceprincipals"]:
            self._require_admin(caller, f"{NAMESPACE}/servicePrincipals/write")
            if method != "POST":
                raise arm_errors.method_not_allowed(method)
            return Reply(201, self._create_service_principal(caller, _display_name(request.body)))
        if rest_lowered == ["groups"]:
            self._require_admin(caller, f"{NAMESPACE}/groups/write")
            if method != "POST":
                raise arm_errors.method_not_allowed(method)
            name = _display_name(request.body)
            group_id = self.rbac.create_group(caller.tenant_id, name)
            return Reply(201, self._group(group_id))
        if len(rest) == 2 and rest_lowered[0] == "groups":
            self._require_admin(caller, f"{NAMESPACE}/groups/read")
            if method != "GET":
                raise arm_errors.method_not_allowed(method)
            return Reply(200, self._group(rest[1]))
        if len(rest) == 4 and rest_lowered[0] == "groups" and rest_lowered[2] == "members":
            group_id, member_id = rest[1], rest[3]
            if method == "PUT":
                self._require_admin(caller, f"{NAMESPACE}/groups/members/write")
                added = self.rbac.add_group_member(caller.tenant_id, group_id, member_id)
                return Reply(201 if added else 200, self._group(group_id))
            if method == "DELETE":
                self._require_admin(caller, f"{NAMESPACE}/groups/members/delete")
                removed = self.rbac.remove_group_member(group_id, member_id)
                return Reply(200, self._group(group_id)) if removed else Reply(204)
            raise arm_errors.method_not_allowed(method)
        raise arm_errors.no_route(request.path)

    def _create_service_principal(self, caller: Caller, display_name: str) -> dict[str, Any]:
        with self.rbac.db.write() as conn:
            principal = principals.create_principal(
                conn,
                tenant_id=caller.tenant_id,
                principal_type=principals.SERVICE_PRINCIPAL,
                display_name=display_name,
            )
            secret = principals.add_client_secret(conn, principal.object_id)
        return {
            "objectId": principal.object_id,
            "appId": principal.app_id,
            "tenantId": principal.tenant_id,
            "displayName": principal.display_name,
            "principalType": "ServicePrincipal",
            "clientSecret": secret,
        }

    def _group(self, group_id: str) -> dict[str, Any]:
        row = self.rbac.group(group_id)
        if row is None:
            raise errors.group_not_found(group_id)
        return {
            "objectId": row.object_id,
            "tenantId": row.tenant_id,
            "displayName": row.display_name,
            "principalType": "Group",
            "members": self.rbac.group_members(row.object_id),
        }


def _display_name(raw: bytes) -> str:
    body = parse_body(raw)
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise arm_errors.invalid_request_content(
            "Required property 'displayName' (1-256 characters) not found."
        )
    return name.strip()
