"""``Keyless.Directory``: Keyless's own, admin-only way to add principals to the directory.

In Azure, service principals and groups are made in Entra ID (Microsoft Graph), not through the
resource manager.  Keyless's Graph (``keyless.graph``) only reads the directory; this small extension
of the resource manager (namespace ``Keyless.Directory``, tenant scope only, api-version
``2024-01-01``) writes it, so that a non-admin principal with a secret exists to be granted roles —
in tests, in examples and from ``keyless ad sp create`` / ``keyless ad group ...``.  Both work on the
one directory (``keyless.directory``).  Only the instance's local administrator may call it;
everyone else gets ARM's 403 ``AuthorizationFailed``.

=========================================================  =====================================
``POST /providers/Keyless.Directory/servicePrincipals``     ``{"displayName", "identifierUris"?}``
                                                            -> 201 ``{"objectId", "appId", "tenantId",
                                                            "displayName", "identifierUris",
                                                            "servicePrincipalNames", "clientSecret"}``
                                                            (the secret, once)
``POST /providers/Keyless.Directory/groups``                ``{"displayName"}`` -> 201 ``{"objectId", ...}``
``GET  /providers/Keyless.Directory/groups/{id}``           the group and its direct members
``PUT|DELETE .../groups/{id}/members/{memberId}``           add (201, 200 if already) / remove
                                                            (200, 204 if absent) a member
=========================================================  =====================================
"""

from __future__ import annotations

from typing import Any, Final

from keyless.arm import errors as arm_errors
from keyless.arm.bodies import parse_body
from keyless.arm.engine import Reply
from keyless.arm.http import ArmRequest
from keyless.arm.ids import id_segments, is_guid
from keyless.authority.resources import is_known_resource
from keyless.authority.tokens import Caller
from keyless.directory import Directory, groups, principals
from keyless.directory.tenants import NameTaken
from keyless.rbac import errors
from keyless.rbac.service import RbacService

NAMESPACE: Final = "Keyless.Directory"
API_VERSIONS: Final = frozenset({"2024-01-01"})


class DirectoryApi:
    def __init__(self, rbac: RbacService, directory: Directory) -> None:
        self.rbac = rbac
        self.directory = directory

    async def __call__(self, request: ArmRequest) -> Reply:
        return self.handle(request)

    def _require_admin(self, caller: Caller, action: str) -> None:
        if caller.object_id.lower() != (self.rbac.admin_object_id() or "").lower():
            raise errors.authorization_failed(caller.object_id, action, "/")

    def handle(self, request: ArmRequest) -> Reply:
        segments = id_segments(request.path) or []  # the resource manager's own (bounded) split
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
            return Reply(201, self._create_service_principal(caller, request.body))
        if rest_lowered == ["groups"]:
            self._require_admin(caller, f"{NAMESPACE}/groups/write")
            if method != "POST":
                raise arm_errors.method_not_allowed(method)
            name = _display_name(parse_body(request.body))
            group = self.directory.create_group(caller.tenant_id, name)
            return Reply(201, self._group(group.object_id))
        if len(rest) == 2 and rest_lowered[0] == "groups":
            self._require_admin(caller, f"{NAMESPACE}/groups/read")
            if method != "GET":
                raise arm_errors.method_not_allowed(method)
            return Reply(200, self._group(rest[1]))
        if len(rest) == 4 and rest_lowered[0] == "groups" and rest_lowered[2] == "members":
            group_id, member_id = rest[1], rest[3]
            if method == "PUT":
                self._require_admin(caller, f"{NAMESPACE}/groups/members/write")
                if not is_guid(member_id):
                    raise errors.invalid_principal_id(member_id)
                try:
                    added = self.directory.add_group_member(group_id, member_id)
                except groups.NoSuchObject as exc:
                    if exc.kind == "group":
                        raise errors.group_not_found(group_id) from exc
                    raise errors.principal_not_found(member_id.lower(), caller.tenant_id) from exc
                return Reply(201 if added else 200, self._group(group_id))
            if method == "DELETE":
                self._require_admin(caller, f"{NAMESPACE}/groups/members/delete")
                removed = self.directory.remove_group_member(group_id, member_id)
                return Reply(200, self._group(group_id)) if removed else Reply(204)
            raise arm_errors.method_not_allowed(method)
        raise arm_errors.no_route(request.path)

    def _create_service_principal(self, caller: Caller, raw: bytes) -> dict[str, Any]:
        body = parse_body(raw)
        display_name = _display_name(body)
        uris = body.get("identifierUris", [])
        if (
            not isinstance(uris, list)
            or len(uris) > principals.MAX_IDENTIFIER_URIS
            or not all(principals.valid_identifier_uri(u) for u in uris)
        ):
            raise arm_errors.invalid_request_content(
                f"'identifierUris' must be a list of at most {principals.MAX_IDENTIFIER_URIS} URIs "
                "(api://, https:// or urn:, at most 256 characters each)."
            )
        for uri in uris:
            # Entra refuses a Microsoft service's URI for an app of a customer tenant.
            if is_known_resource(uri):
                raise arm_errors.bad_request(
                    f"Values of identifierUris property must use a verified domain of the organization or "
                    f"its subdomain: '{uri}'",
                    "HostNameNotOnVerifiedDomain",
                )
        try:
            principal, secret, names = self.directory.create_service_principal(
                caller.tenant_id, display_name, uris
            )
        except NameTaken as exc:
            raise arm_errors.ArmError(
                409,
                "Conflict",
                f"Another object with the same value for property identifierUris already exists: '{exc}'.",
            ) from exc
        return {
            "objectId": principal.object_id,
            "appId": principal.app_id,
            "tenantId": principal.tenant_id,
            "displayName": principal.display_name,
            "principalType": "ServicePrincipal",
            "identifierUris": names,
            "servicePrincipalNames": [principal.app_id, *names],
            "clientSecret": secret,
        }

    def _group(self, group_id: str) -> dict[str, Any]:
        found = self.directory.group(group_id)
        if found is None:
            raise errors.group_not_found(group_id)
        group, members = found
        return {
            "objectId": group.object_id,
            "tenantId": group.tenant_id,
            "displayName": group.display_name,
            "principalType": "Group",
            "members": members,
        }


def _display_name(body: dict[str, Any]) -> str:
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise arm_errors.invalid_request_content(
            "Required property 'displayName' (1-256 characters) not found."
        )
    return name.strip()
