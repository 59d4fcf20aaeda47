"""The identity endpoints' wire layer: IMDS (VMs) and the App Service endpoint (Function apps).

Who is calling is learned only from what the platform gave the workload: the proxy
password (IMDS through ``http://169.254.169.254``), the per-workload IMDS base URL
(``AZURE_POD_IDENTITY_AUTHORITY_HOST``), or ``X-IDENTITY-HEADER`` / ``secret``. Host
tokens never appear in a response or a log line.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from keyless.authority import errors as oauth_errors
from keyless.edge.routing import proxy_authorization
from keyless.web import (
    Receive,
    Scope,
    Send,
    has_nul,
    header,
    parse_query,
    query_params,
    send_bytes,
    send_json,
)
from keyless.workload import imds
from keyless.workload.service import (
    IdentityNotFound,
    Selector,
    Throttled,
    UnknownResource,
    WorkloadIdentityService,
    WorkloadToken,
)

IMDS_HOST = "169.254.169.254"
IMDS_TOKEN_PATH = "/metadata/identity/oauth2/token"  # noqa: S105 (a path)
_IDENTITY_ROOT = "/metadata/identity"
_INSTANCE_PATH = "/metadata/instance"
_VERSIONS_PATH = "/metadata/versions"
_TEXT_TYPE = b"text/plain; charset=utf-8"
# The per-workload IMDS base URL is /imds/{host token}; the App Service endpoint is /msi/token.
IMDS_DIRECT_PREFIX = "/imds/"
APP_SERVICE_PATH = "/msi/token"
_IMDS_HEADERS = {"Server": "IMDS/150.870.65.1015"}


def _basic_password(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip()).decode().partition(":")[2] or None
    except (ValueError, UnicodeDecodeError):
        return None


async def _metadata_error(send: Send, status: int, message: str) -> None:
    """The error shape of IMDS's non-identity categories (imds.json ``ErrorResponse``)."""
    await send_json(send, status, {"error": message}, _IMDS_HEADERS)


async def _imds_error(send: Send, status: int, error: str, description: str, **headers: str) -> None:
    await send_json(
        send, status, {"error": error, "error_description": description}, {**_IMDS_HEADERS, **headers}
    )


class IdentityEndpointsApp:
    def __init__(self, service: WorkloadIdentityService) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        params = query_params(scope)
        if has_nul(path, *params.keys(), *params.values()):
            # No host token, identity id or resource holds a NUL: refused before any lookup.
            if path.rstrip("/").lower() == APP_SERVICE_PATH:
                await _app_service_error(send, 400, "The request URL contains a NUL character.")
            else:
                await _imds_error(send, 400, "invalid_request", "The request URL contains a NUL character.")
            return
        if path.startswith(IMDS_DIRECT_PREFIX):
            token, _, rest = path[len(IMDS_DIRECT_PREFIX) :].partition("/")
            await self._imds(scope, send, "/" + rest, token)
        elif path.rstrip("/").lower() == APP_SERVICE_PATH:
            await self._app_service(scope, send)
        else:
            # Through the proxy at http://169.254.169.254: the proxy password names the workload.
            await self._imds(scope, send, path, _basic_password(proxy_authorization(scope)))

    # --- IMDS ------------------------------------------------------------------------------

    async def _imds(self, scope: Scope, send: Send, path: str, host_token: str | None) -> None:
        # msal-node appends a "/" to the token path; IMDS matches the routes without regard to case.
        route = path.rstrip("/")
        lowered = route.lower()
        identity = lowered.startswith(_IDENTITY_ROOT)
        if scope["method"] != "GET":
            if identity:
                await _imds_error(send, 405, "method_not_allowed", "Only GET is supported.")
            else:
                await _metadata_error(send, 405, "Method not allowed")
            return
        # IMDS compares the header's value without regard to case: Microsoft's own Linux agent
        # sends "Metadata: True" (Azure/WALinuxAgent azurelinuxagent/common/protocol/imds.py).
        if (header(scope, b"metadata") or "").lower() != "true":
            if identity:
                await _imds_error(send, 400, "invalid_request", "Required metadata header not specified")
            else:
                await _metadata_error(send, 400, "Bad request. Required metadata header not specified")
            return
        if header(scope, b"x-forwarded-for") is not None:
            description = "Requests with an X-Forwarded-For header are rejected"
            if identity:
                await _imds_error(send, 400, "invalid_request", description)
            else:
                await _metadata_error(send, 400, f"Bad request. {description}")
            return
        params, duplicate = parse_query(scope)  # IMDS refuses duplicate names
        if duplicate is not None:
            if identity:
                await _imds_error(send, 400, "invalid_request", f"Duplicate query parameter '{duplicate}'")
            else:
                await _metadata_error(send, 400, f"Bad request. Duplicate query parameter '{duplicate}'")
            return
        if lowered == IMDS_TOKEN_PATH:
            await self._identity_token(send, params, host_token)
        elif lowered == _VERSIONS_PATH:
            await send_json(send, 200, {"apiVersions": sorted(imds.API_VERSIONS)}, _IMDS_HEADERS)
        elif lowered == _INSTANCE_PATH or lowered.startswith(_INSTANCE_PATH + "/"):
            await self._instance(send, route, params, host_token)
        elif identity:
            await _imds_error(send, 404, "not_found", "The requested path was not found.")
        else:
            await _metadata_error(send, 404, "Not found")

    async def _identity_token(self, send: Send, params: dict[str, str], host_token: str | None) -> None:
        if params.get("api-version") not in imds.IDENTITY_VERSIONS:
            # The versions error of every IMDS category, in the identity endpoint's error shape.
            body = {
                "error": "invalid_request",
                "error_description": imds.VERSIONS_ERROR,
                "newest-versions": imds.NEWEST_VERSIONS,
            }
            await send_json(send, 400, body, _IMDS_HEADERS)
            return
        resource = params.get("resource")
        if not resource:
            await _imds_error(send, 400, "invalid_request", "Required query variable 'resource' is missing")
            return
        # azure-identity's aio credential sends its identity_config key `resource_id` verbatim.
        resource_id = params.get("msi_res_id") or params.get("mi_res_id") or params.get("resource_id")
        selectors = [s for s in (params.get("client_id"), params.get("object_id"), resource_id) if s]
        if len(selectors) > 1:
            await _imds_error(
                send, 400, "invalid_request", "Only one of client_id, object_id or msi_res_id may be given"
            )
            return
        workload = self.service.workload_for_host_token(host_token)
        if workload is None or not workload.is_vm:
            await _imds_error(send, 400, "invalid_request", "Identity not found")
            return
        try:
            self.service.check_rate(workload)
            issued = self.service.token(
                workload,
                Selector(params.get("client_id"), params.get("object_id"), resource_id),
                resource,
                bypass_cache=params.get("bypass_cache") == "true",
                sole_user_assigned=True,
            )
        except Throttled:
            await _imds_error(
                send, 429, "too_many_requests", "Too many requests for this identity", **{"Retry-After": "1"}
            )
            return
        except IdentityNotFound:
            await _imds_error(send, 400, "invalid_request", "Identity not found")
            return
        except UnknownResource as exc:
            error = oauth_errors.resource_not_found(exc.resource, exc.tenant_id)
            await _imds_error(send, 400, "invalid_resource", f"AADSTS{error.code}: {error.description}")
            return
        body = _imds_body(issued)
        for echoed in ("object_id", "msi_res_id", "mi_res_id"):
            if params.get(echoed):
                body[echoed] = params[echoed]
        await send_json(send, 200, body, _IMDS_HEADERS)

    async def _instance(self, send: Send, route: str, params: dict[str, str], host_token: str | None) -> None:
        """``/metadata/instance[/<key or index>...]`` with ``format=json|text`` (see ``imds.py``)."""
        if params.get("api-version") not in imds.INSTANCE_VERSIONS:
            body = {"error": imds.VERSIONS_ERROR, "newest-versions": imds.NEWEST_VERSIONS}
            await send_json(send, 400, body, _IMDS_HEADERS)
            return
        fmt = params.get("format", "json")
        if fmt not in ("json", "text"):
            await _metadata_error(send, 400, "Bad request. Invalid format: use json or text")
            return
        workload = self.service.workload_for_host_token(host_token)
        if workload is None or not workload.is_vm:
            # Only a VM has IMDS: a Function app (or an unknown caller) gets IMDS's refusal.
            await _metadata_error(send, 400, "Bad request. The caller is not a known virtual machine")
            return
        steps = [s for s in route[len(_INSTANCE_PATH) :].split("/") if s]  # ASGI paths come decoded
        try:
            node = imds.walk(imds.instance_document(workload.resource), steps)
        except imds.NotFound:
            await _metadata_error(send, 404, "Not found")
            return
        if fmt == "text":
            await send_bytes(send, 200, imds.as_text(node).encode(), _TEXT_TYPE, _IMDS_HEADERS)
        elif imds.is_leaf(node):
            await _metadata_error(send, 400, "Bad request. Leaf nodes can only be queried with format=text")
        else:
            await send_json(send, 200, node, _IMDS_HEADERS)

    # --- App Service -----------------------------------------------------------------------

    async def _app_service(self, scope: Scope, send: Send) -> None:
        params = query_params(scope)
        legacy = params.get("api-version") == "2017-09-01"
        secret = header(scope, b"secret") if legacy else header(scope, b"x-identity-header")
        workload = self.service.workload_for_host_token(secret)
        if workload is None or not workload.is_site or scope["method"] not in ("GET", "POST"):
            # What App Service answers a wrong header with: 403 and no body.
            await send_bytes(send, 403, b"", None)
            return
        resource = params.get("resource")
        if legacy:
            selector = Selector(client_id=params.get("clientid"))
        else:
            selector = Selector(
                client_id=params.get("client_id"),
                object_id=params.get("principal_id") or params.get("object_id"),
                resource_id=params.get("mi_res_id") or params.get("msi_res_id") or params.get("resource_id"),
            )
        try:
            if not resource:
                raise IdentityNotFound()
            self.service.check_rate(workload)
            issued = self.service.token(workload, selector, resource)
        except Throttled:
            await _app_service_error(send, 429, "Too many requests.", {"Retry-After": "1"})
            return
        except (IdentityNotFound, UnknownResource):
            await _app_service_error(send, 400, "Unable to load the proper Managed Identity.")
            return
        await send_json(send, 200, _app_service_body(issued, legacy))


async def _app_service_error(
    send: Send, status: int, message: str, extra: dict[str, str] | None = None
) -> None:
    correlation = str(uuid.uuid4())
    body = {"statusCode": status, "message": message, "correlationId": correlation}
    await send_json(
        send, status, body, {"Server": "Kestrel", "X-CORRELATION-ID": correlation, **(extra or {})}
    )


def _imds_body(token: WorkloadToken) -> dict[str, Any]:
    issued = token.issued
    # Every value is a string, and expires_in counts down as the cached token ages.
    return {
        "access_token": issued.access_token,
        "client_id": token.client_id,
        "expires_in": str(max(0, issued.expires_on - int(time.time()))),
        "expires_on": str(issued.expires_on),
        "ext_expires_in": str(issued.expires_on - issued.not_before),
        "not_before": str(issued.not_before),
        "resource": token.resource,
        "token_type": "Bearer",
    }


def _app_service_body(token: WorkloadToken, legacy: bool) -> dict[str, Any]:
    issued = token.issued
    expires_on = (
        time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(issued.expires_on))
        if legacy
        else str(issued.expires_on)
    )
    return {
        "access_token": issued.access_token,
        "expires_on": expires_on,
        "resource": token.resource,
        "token_type": "Bearer",
        "client_id": token.client_id,
        "not_before": str(issued.not_before),
    }
