"""Microsoft Graph's wire layer (``graph.microsoft.com``): routing, bearer tokens, OData bodies.

=====================================================================  ==============================
``POST /v1.0/directoryObjects/getByIds``                                ``{"ids", "types"?}`` -> objects
``GET  /v1.0/directoryObjects/{id}``                                    one object, typed
``POST /v1.0/{directoryObjects|servicePrincipals|groups}/{id}/checkMemberGroups``  ``{"groupIds"}``
``GET  /v1.0/servicePrincipals[?$filter&$top&$skiptoken&$select]``      a page
``GET  /v1.0/servicePrincipals/{id}``, ``servicePrincipals(appId='…')``  one service principal
``GET  /v1.0/groups[/{id}[/members]]``                                  groups and direct members
``GET  /v1.0/users[?$filter]``                                          always empty (no users)
=====================================================================  ==============================

``beta`` is answered like ``v1.0``. A token must be for Graph (``aud`` ``https://graph.microsoft.com``
or its appId); otherwise 401 ``InvalidAuthenticationToken``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from keyless.authority.resources import GRAPH_AUDIENCES
from keyless.authority.tokens import EXPIRED, MISSING, WRONG_AUDIENCE, Caller, TokenError, TokenValidator
from keyless.graph import errors
from keyless.graph.service import ODATA, GraphService, Page
from keyless.web import (
    BodyTooLarge,
    InvalidJson,
    Receive,
    Scope,
    Send,
    has_nul,
    header,
    parse_json,
    parse_query,
    read_body,
    send_json,
)

GRAPH_HOST = "graph.microsoft.com"
_VERSIONS = frozenset({"v1.0", "beta"})
_BY_APP_ID = re.compile(r"serviceprincipals\(appid='([^']{1,64})'\)")
_MAX_BODY = 256 * 1024  # getByIds with 1,000 ids is about 40 KB
_MAX_PATH = 2048
# Graph's answer to a token it refuses (the header Graph sends with every 401).
_CHALLENGE = {
    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
}


def _token_error(exc: TokenError) -> errors.GraphError:
    if exc.reason == MISSING:
        return errors.invalid_token("Access token is empty.")
    if exc.reason == EXPIRED:
        return errors.invalid_token("Lifetime validation failed, the token is expired.")
    if exc.reason == WRONG_AUDIENCE:
        return errors.invalid_token("Access token validation failure. Invalid audience.")
    return errors.invalid_token("Access token validation failure.")


class GraphApp:
    def __init__(self, service: GraphService, validator: TokenValidator) -> None:
        self.service = service
        self.validator = validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client_request_id = header(scope, b"client-request-id")
        try:
            status, body = await self._handle(scope, receive)
        except errors.GraphError as exc:
            headers = dict(_CHALLENGE) if exc.status == 401 else {}
            await send_json(send, exc.status, exc.body(client_request_id), headers)
            return
        await send_json(send, status, body, {"OData-Version": "4.0"})

    def _authenticate(self, scope: Scope) -> Caller:
        scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
        try:
            return self.validator.validate(
                token.strip() if scheme.lower() == "bearer" else "", GRAPH_AUDIENCES
            )
        except TokenError as exc:
            raise _token_error(exc) from exc

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        path: str = scope["path"]
        query, duplicate = parse_query(scope)
        if len(path) > _MAX_PATH or has_nul(path, *query.keys(), *query.values()):
            raise errors.bad_request("Invalid request.")
        if duplicate is not None:
            raise errors.bad_request(f"Query option '{duplicate[:50]}' was specified more than once.")
        caller = self._authenticate(scope)
        self.service.authorize(caller)
        segments = [s for s in path.split("/") if s]
        if not segments or segments[0].lower() not in _VERSIONS:
            raise errors.no_segment(segments[0] if segments else "")
        rest, lowered = segments[1:], [s.lower() for s in segments[1:]]
        method = scope["method"]
        if not rest:
            raise errors.no_segment("")
        if method == "POST":
            body = await self._json_body(receive)
            if lowered == ["directoryobjects", "getbyids"]:
                return 200, _collection("directoryObjects", self.service.get_by_ids(caller, body))
            if (
                len(rest) == 3
                and lowered[0] in ("directoryobjects", "serviceprincipals", "groups")
                and lowered[2] == "checkmembergroups"
            ):
                groups = self.service.check_member_groups(caller, rest[1], body)
                return 200, {"@odata.context": f"{ODATA}#Collection(Edm.String)", "value": groups}
            raise self._unknown(rest, lowered, method)
        if method != "GET":
            raise self._unknown(rest, lowered, method)
        filter_text, top, skip = query.get("$filter", ""), query.get("$top"), query.get("$skiptoken")
        select = _select(query.get("$select"))
        app_id = _BY_APP_ID.fullmatch(lowered[0])
        if app_id is not None and len(rest) == 1:
            found = self.service.service_principal(caller, app_id.group(1), by_app_id=True)
            return 200, _entity("servicePrincipals", found, select)
        if lowered == ["serviceprincipals"]:
            page = self.service.list_service_principals(caller, filter_text, top, skip)
            return 200, _page(scope, "servicePrincipals", page, select)
        if lowered[0] == "serviceprincipals" and len(rest) == 2:
            return 200, _entity("servicePrincipals", self.service.service_principal(caller, rest[1]), select)
        if lowered == ["groups"]:
            return 200, _page(
                scope, "groups", self.service.list_groups(caller, filter_text, top, skip), select
            )
        if lowered[0] == "groups" and len(rest) == 2:
            return 200, _entity("groups", self.service.group(caller, rest[1]), select)
        if lowered[0] == "groups" and len(rest) == 3 and lowered[2] == "members":
            page = self.service.group_members(caller, rest[1], top, skip)
            return 200, _page(scope, "directoryObjects", page, select)
        if lowered[0] == "directoryobjects" and len(rest) == 2:
            return 200, _entity("directoryObjects", self.service.directory_object(caller, rest[1]), select)
        if lowered == ["users"]:
            return 200, _page(scope, "users", self.service.list_users(caller, filter_text, top), select)
        if lowered[0] == "users" and len(rest) == 2:
            raise errors.not_found(rest[1])
        raise self._unknown(rest, lowered, method)

    @staticmethod
    def _unknown(rest: list[str], lowered: list[str], method: str) -> errors.GraphError:
        """A path Graph knows with another method is 405; anything else names its first unknown segment."""
        known = {"serviceprincipals", "groups", "users", "directoryobjects"}
        if lowered[0] in known or _BY_APP_ID.fullmatch(lowered[0]):
            if len(rest) <= 2 or (
                len(rest) == 3 and lowered[2] in ("members", "checkmembergroups", "getbyids")
            ):
                return errors.method_not_allowed()
            return errors.no_segment(rest[2])
        return errors.no_segment(rest[0])

    @staticmethod
    async def _json_body(receive: Receive) -> Any:
        try:
            raw = await read_body(receive, limit=_MAX_BODY)
        except BodyTooLarge as exc:
            raise errors.GraphError(413, "Request_EntityTooLarge", "The request is too large.") from exc
        try:
            return parse_json(raw, max_bytes=_MAX_BODY)
        except (InvalidJson, ValueError) as exc:
            raise errors.invalid_json() from exc


def _select(text: str | None) -> set[str] | None:
    if text is None or not text.strip():
        return None
    return {p.strip() for p in text.split(",") if p.strip()}


def _pick(doc: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    if select is None:
        return doc
    return {k: v for k, v in doc.items() if k in select or k in ("id", "@odata.type")}


def _entity(collection: str, doc: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    return {"@odata.context": f"{ODATA}#{collection}/$entity", **_pick(doc, select)}


def _collection(collection: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@odata.context": f"{ODATA}#{collection}", "value": items}


def _page(scope: Scope, collection: str, page: Page, select: set[str] | None) -> dict[str, Any]:
    body = _collection(collection, [_pick(i, select) for i in page.items])
    if page.skiptoken is not None:
        # The same query with the token: a client follows the link as given.
        query, _ = parse_query(scope)
        query["$skiptoken"] = page.skiptoken
        encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query.items())
        body["@odata.nextLink"] = f"https://{GRAPH_HOST}{scope['path']}?{encoded}"
    return body
