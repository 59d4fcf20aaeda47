"""The resource manager's wire layer: paths to engine calls, engine replies to responses."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from keyless.arm import errors
from keyless.arm.bodies import parse_action_body
from keyless.arm.engine import Reply, RequestContext, ResourceManager
from keyless.arm.generic import GenericApi
from keyless.arm.ids import ResourceId, id_segments
from keyless.arm.resource_types import RawBody
from keyless.arm.visibility import visible_subscriptions
from keyless.authority.resources import ARM_AUDIENCES
from keyless.authority.tokens import (
    EXPIRED,
    MISSING,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    Caller,
    TokenError,
    TokenValidator,
)
from keyless.web import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    base_url,
    has_nul,
    header,
    query_params,
    read_body,
    send_bytes,
    send_json,
)

SUBSCRIPTION_API_VERSIONS = frozenset(
    [
        "2014-04-01-preview",
        "2015-11-01",
        "2016-06-01",
        "2018-06-01",
        "2019-06-01",
        "2019-11-01",
        "2020-01-01",
        "2021-01-01",
        "2022-09-01",
        "2022-12-01",
        "2024-11-01",
        "2025-03-01",
    ]
)
# RBAC actions of the subscription-level operations (the resource manager's own).
SUBSCRIPTION_READ = "Microsoft.Resources/subscriptions/read"
OPERATION_RESULT_READ = "Microsoft.Resources/subscriptions/operationresults/read"
METADATA_API_VERSIONS = frozenset({"2015-01-01", "2018-01-01", "2019-05-01", "2020-06-01", "2022-09-01"})

_ALLOWED_AUDIENCES = (
    "'https://management.core.windows.net/','https://management.core.windows.net',"
    "'https://management.azure.com/','https://management.azure.com'"
)

log = logging.getLogger("keyless.arm")

# Extension handlers (e.g. Microsoft.Authorization) take the parsed pieces and return a Reply.
ExtensionHandler = Callable[["ArmRequest"], Awaitable[Reply]]


class ProviderRequest:
    """A request under ``{scope}/providers/{namespace}/{first}/...`` offered to a provider operation.

    ``scope`` is the subscription or resource group it is under; ``segments`` everything after the
    namespace, in the caller's spelling (``segments[0]`` is ``first``).
    """

    def __init__(
        self,
        method: str,
        scope: ResourceId,
        namespace: str,
        segments: list[str],
        query: dict[str, str],
        ctx: RequestContext,
        body: bytes,
        path: str,
    ) -> None:
        self.method = method
        self.scope = scope
        self.namespace = namespace
        self.segments = segments
        self.query = query
        self.ctx = ctx
        self.body = body
        self.path = path


# A provider operation that is not a resource (``checkNameAvailability``, ``deletedVaults``, a
# vault's ``accessPolicies/{kind}``): a Reply, or None to let the generic resource path answer. A
# provider whose requests need asynchronous work first (Media Services reaching Key Vault and
# Storage) returns an awaitable of the same.
ProviderOperation = Callable[[ProviderRequest], "Reply | Awaitable[Reply | None] | None"]


class ArmRequest:
    """One resource-manager request, as the handlers see it."""

    def __init__(
        self, method: str, path: str, query: dict[str, str], ctx: RequestContext, body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.ctx = ctx
        self.body = body


def _fmt_time(ts: float) -> str:
    t = time.gmtime(ts)
    hour = t.tm_hour % 12 or 12
    return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year} {hour}:{t.tm_min:02d}:{t.tm_sec:02d} {'PM' if t.tm_hour >= 12 else 'AM'}"


def authentication_error(error: TokenError, claims: dict[str, Any] | None = None) -> errors.ArmError:
    """ARM's 401s, with the challenge header azure-core expects."""
    if error.reason == MISSING:
        code, message = (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
        description = "The authentication failed because of missing 'Authorization' header."
    elif error.reason == EXPIRED and claims is not None:
        code = "ExpiredAuthenticationToken"
        message = (
            f"The access token expiry UTC time '{_fmt_time(float(claims['exp']))}' is earlier than current "
            f"UTC time '{_fmt_time(time.time())}'."
        )
        description = "The access token expired."
    elif error.reason == WRONG_AUDIENCE and claims is not None:
        code = "InvalidAuthenticationTokenAudience"
        message = (
            f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. It should "
            f"exactly match with one of the allowed audiences {_ALLOWED_AUDIENCES}."
        )
        description = "The access token has an invalid audience."
    elif error.reason == WRONG_ISSUER:
        code, message = "InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer."
        description = message
    else:
        code, message = "InvalidAuthenticationToken", "The access token is invalid."
        description = "The access token is invalid."
    challenge = (
        'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
        f'error_description="{description}"'
    )
    return errors.ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


class ArmApp:
    def __init__(self, manager: ResourceManager, validator: TokenValidator, directory: Any) -> None:
        self.manager = manager
        self.validator = validator
        # directory: subscriptions and tenants (see keyless.platform.Directory)
        self.directory = directory
        self.extensions: dict[str, ExtensionHandler] = {}
        # (namespace, first type after it), lower-cased -> the provider's handler, consulted before
        # the generic resource path (see ``ProviderOperation``).
        self.provider_operations: dict[tuple[str, str], ProviderOperation] = {}
        self.generic = GenericApi(manager, directory, SUBSCRIPTION_API_VERSIONS)
        self.generic.declare(
            "Microsoft.Resources",
            {
                "subscriptions": SUBSCRIPTION_API_VERSIONS,
                "tenants": SUBSCRIPTION_API_VERSIONS,
                "locations": SUBSCRIPTION_API_VERSIONS,
                "providers": self.generic.resources_versions,
                "resources": self.generic.resources_versions,
                "subscriptions/resources": self.generic.resources_versions,
                "subscriptions/resourceGroups": self.generic.resources_versions,
                "subscriptions/providers": self.generic.resources_versions,
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A request id, not a secret: no need to pay for os.urandom on every request.
        request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": header(scope, b"x-ms-client-request-id") or request_id,
        }
        try:
            reply = await self._handle(scope, receive)
        except errors.ArmError as exc:
            headers.update(exc.headers)
            await send_json(send, exc.status, exc.body(), headers)
            return
        except BodyTooLarge:
            too_large = errors.ArmError(413, "RequestEntityTooLarge", "The request content is too large.")
            await send_json(send, 413, too_large.body(), headers)
            return
        except Exception:  # a bug: logged with its traceback, answered in ARM's shape, never a bare 500
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            failed = errors.ArmError(500, "InternalServerError", "The server encountered an internal error.")
            await send_json(send, 500, failed.body(), headers)
            return
        headers.update(reply.headers)
        if isinstance(reply.body, RawBody):  # not JSON (App Service's publishxml answers XML)
            await send_bytes(send, reply.status, reply.body.data, reply.body.content_type.encode(), headers)
            return
        await send_json(send, reply.status, reply.body, headers)

    def authenticate(self, scope: Scope) -> Caller:
        auth = header(scope, b"authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        try:
            return self.validator.validate(token.strip(), ARM_AUDIENCES)
        except TokenError as exc:
            claims: dict[str, Any] | None = None
            if exc.reason in (EXPIRED, WRONG_AUDIENCE):
                from keyless.authority.tokens import unverified_payload

                claims = unverified_payload(token.strip())
            raise authentication_error(exc, claims) from exc

    async def _handle(self, scope: Scope, receive: Receive) -> Reply:
        method = scope["method"]
        path = scope["path"]
        segments = id_segments(path)  # THE split RBAC uses too; None past its bounds
        if segments is None:  # as Azure's front end answers an over-long URL: 404
            raise errors.no_route(path[:200] + "...")
        lowered = [s.lower() for s in segments]
        query = query_params(scope)
        if has_nul(path, *query.keys(), *query.values()):
            # No name, id or parameter holds a NUL (no database could store or compare one); the
            # front end of the real service refuses such a URL as malformed, before routing it.
            raise errors.invalid_url()

        if lowered[:2] == ["metadata", "endpoints"] and len(lowered) == 2:
            return self._metadata(scope, query)

        caller = self.authenticate(scope)
        api_version = query.get("api-version")
        if api_version is None:
            raise errors.missing_api_version()
        ctx = RequestContext(
            caller=caller,
            api_version=api_version,
            base_url=base_url(scope),
            if_match=header(scope, b"if-match"),
            if_none_match=header(scope, b"if-none-match"),
        )
        body = await read_body(receive) if method in ("PUT", "PATCH", "POST") else b""

        generic = self._generic(method, segments, lowered, path, query, ctx, body)
        if generic is not None:
            return generic

        # Extension resources: {scope}/providers/{namespace}/... where the namespace has a handler.
        if "providers" in lowered:
            idx = len(lowered) - 1 - lowered[::-1].index("providers")
            if idx + 1 < len(lowered) and lowered[idx + 1] in self.extensions:
                return await self.extensions[lowered[idx + 1]](ArmRequest(method, path, query, ctx, body))

        if lowered == ["subscriptions"]:
            return self._only(method, "GET", lambda: self._list_subscriptions(ctx))
        if lowered == ["tenants"]:
            return self._only(method, "GET", lambda: self._list_tenants(ctx))
        if len(lowered) < 2 or lowered[0] != "subscriptions":
            raise errors.no_route(path)
        subscription_id = segments[1]
        rest, lowered_rest = segments[2:], lowered[2:]
        if not rest:
            return self._only(method, "GET", lambda: self._get_subscription(ctx, subscription_id))
        if lowered_rest[0] == "operationresults" and len(rest) == 2:
            return self._only(method, "GET", lambda: self._operation_result(ctx, subscription_id, rest[1]))
        if lowered_rest[0] == "resourcegroups":
            if len(rest) == 1:
                spec = self.manager.type_named("Microsoft.Resources", ("resourceGroups",))
                return self._only(
                    method,
                    "GET",
                    lambda: self.manager.list(
                        ctx, spec, ResourceId(subscription_id), path, query.get("$skiptoken")
                    ),
                )
            group = ResourceId(subscription_id, rest[1])
            if len(rest) == 2:
                return self._resource(method, ctx, group, body, path)
            rest, lowered_rest = rest[2:], lowered_rest[2:]
            scope_id = group
        else:
            scope_id = ResourceId(subscription_id)
        if lowered_rest[0] != "providers" or len(rest) < 3:
            raise errors.no_route(path)
        namespace, pairs = rest[1], rest[2:]
        operation = self.provider_operations.get((namespace.lower(), pairs[0].lower()))
        if operation is not None:
            answered = operation(ProviderRequest(method, scope_id, namespace, pairs, query, ctx, body, path))
            if inspect.isawaitable(answered):
                answered = await answered
            if answered is not None:
                return answered
        types, names = tuple(pairs[0::2]), tuple(pairs[1::2])
        if len(pairs) % 2 == 1:
            # A collection: a top-level type under a scope, children of a resource, or a POST action.
            if len(types) == 1:
                parent = scope_id
            else:
                if scope_id.resource_group is None:
                    raise errors.no_route(path)
                parent = ResourceId(subscription_id, scope_id.resource_group, namespace, types[:-1], names)
                if method == "POST":
                    return await self._action(ctx, parent, types[-1], body)
            spec = self.manager.type_named(namespace, types)
            return self._only(
                method, "GET", lambda: self.manager.list(ctx, spec, parent, path, query.get("$skiptoken"))
            )
        if scope_id.resource_group is None:
            raise errors.no_route(path)
        rid = ResourceId(subscription_id, scope_id.resource_group, namespace, types, names)
        reply = self._resource(method, ctx, rid, body, path)
        if method in ("PUT", "PATCH", "DELETE") and reply.status in (200, 201):
            settle = self.manager.spec_for(rid).settle_seconds
            if settle > 0:  # the write stays in flight a while, as the real service's does
                await asyncio.sleep(settle)
        return reply

    def _generic(
        self,
        method: str,
        segments: list[str],
        lowered: list[str],
        path: str,
        query: dict[str, str],
        ctx: RequestContext,
        body: bytes,
    ) -> Reply | None:
        """Microsoft.Resources' generic operations (``keyless.arm.generic``); None for other paths."""
        generic = self.generic
        if lowered == ["providers"]:
            return self._only(method, "GET", lambda: generic.list_providers(ctx, None))
        if len(lowered) == 2 and lowered[0] == "providers":
            return self._only(method, "GET", lambda: generic.get_provider(ctx, None, segments[1]))
        if len(lowered) < 3 or lowered[0] != "subscriptions":
            return None
        sub, rest = segments[1], lowered[2:]
        if rest == ["resources"]:
            return self._only(method, "GET", lambda: generic.list_resources(ctx, sub, None, path, query))
        if rest == ["locations"]:
            return self._only(method, "GET", lambda: generic.list_locations(ctx, sub))
        if rest == ["providers"]:
            return self._only(method, "GET", lambda: generic.list_providers(ctx, sub))
        if len(rest) == 2 and rest[0] == "providers":
            return self._only(method, "GET", lambda: generic.get_provider(ctx, sub, segments[3]))
        if len(rest) == 3 and rest[0] == "providers" and rest[2] in ("register", "unregister"):
            register = rest[2] == "register"
            return self._only(
                method, "POST", lambda: generic.set_registration(ctx, sub, segments[3], register, body)
            )
        if len(rest) == 3 and rest[0] == "resourcegroups" and rest[2] == "resources":
            group = segments[3]
            return self._only(method, "GET", lambda: generic.list_resources(ctx, sub, group, path, query))
        return None

    @staticmethod
    def _only(method: str, allowed: str, run: Callable[[], Reply]) -> Reply:
        if method != allowed:
            raise errors.method_not_allowed(method)
        return run()

    def _resource(self, method: str, ctx: RequestContext, rid: ResourceId, body: bytes, path: str) -> Reply:
        if method == "GET":
            return self.manager.get(ctx, rid)
        if method == "HEAD":
            reply = self.manager.get(ctx, rid)
            return Reply(204 if rid.is_resource_group else 200, None, reply.headers)
        if method == "PUT":
            return self.manager.put(ctx, rid, body)
        if method == "PATCH":
            return self.manager.patch(ctx, rid, body)
        if method == "DELETE":
            if rid.is_resource_group:
                return self.manager.delete_async(ctx, rid, path)
            return self.manager.delete(ctx, rid)
        raise errors.method_not_allowed(method)

    async def _action(self, ctx: RequestContext, rid: ResourceId, action: str, body: bytes) -> Reply:
        spec = self.manager.spec_for(rid)
        handler = spec.actions.get(action) or next(
            (h for name, h in spec.actions.items() if name.lower() == action.lower()), None
        )
        if handler is None:
            raise errors.no_route(f"{rid}/{action}")
        self.manager.check_api_version(spec, ctx)
        self.manager.authorizer.check(ctx.caller, spec.operation(f"{action}/action"), str(rid))
        payload = parse_action_body(body)
        with self.manager.db.write() as conn:
            resource = self.manager.load(conn, rid)
            if resource is None:
                raise spec.not_found(rid)
            status, result = handler(ctx, conn, resource, payload)
        self.manager.notify_changed()
        return Reply(status, result)

    # --- subscriptions, tenants, operations, metadata ------------------------------------

    def _check_subscription_version(self, ctx: RequestContext) -> None:
        if ctx.api_version not in SUBSCRIPTION_API_VERSIONS:
            raise errors.invalid_api_version(ctx.api_version, SUBSCRIPTION_API_VERSIONS)

    def _readable_subscriptions(self, caller: Caller) -> list[Any]:
        """A list answers with what the caller may see: the subscriptions it may read or holds a
        role in (``keyless.arm.visibility``), as ARM's does."""
        subs = self.directory.subscriptions_for(caller.tenant_id)
        visible = visible_subscriptions(self.manager.authorizer, caller, (s.subscription_id for s in subs))
        return [s for s in subs if s.subscription_id.lower() in visible]

    def _list_subscriptions(self, ctx: RequestContext) -> Reply:
        self._check_subscription_version(ctx)
        subs = self._readable_subscriptions(ctx.caller)
        return Reply(200, {"value": [self.directory.render_subscription(s) for s in subs]})

    def _get_subscription(self, ctx: RequestContext, subscription_id: str) -> Reply:
        self._check_subscription_version(ctx)
        # Listed to anyone with a role in it, but read only with subscriptions/read (unchanged; see
        # keyless.arm.visibility).
        self.manager.authorizer.check(ctx.caller, SUBSCRIPTION_READ, f"/subscriptions/{subscription_id}")
        sub = self.directory.subscription(subscription_id)
        if sub is None:
            raise errors.subscription_not_found(subscription_id)
        return Reply(200, self.directory.render_subscription(sub))

    def _list_tenants(self, ctx: RequestContext) -> Reply:
        self._check_subscription_version(ctx)
        # The caller's tenant is listed when it may read one of the tenant's subscriptions.
        if not self._readable_subscriptions(ctx.caller):
            return Reply(200, {"value": []})
        return Reply(200, {"value": [self.directory.render_tenant(ctx.caller.tenant_id)]})

    def _operation_result(self, ctx: RequestContext, subscription_id: str, operation_id: str) -> Reply:
        row = self.manager.operation(subscription_id, operation_id)
        if row is None:
            raise errors.ArmError(
                404, "OperationNotFound", f"The operation '{operation_id}' could not be found."
            )
        # Its initiator may always poll it (deleting a group also deletes the role assignments
        # there); anyone else needs to be able to read results under the operation's resource.
        if row.started_by != ctx.caller.object_id:
            self.manager.authorizer.check(ctx.caller, OPERATION_RESULT_READ, row.resource_id)
        if row.status not in ("Succeeded", "Failed", "Canceled"):
            return Reply(202, None, {"Retry-After": "1"})
        body = orjson.loads(row.result_body) if row.result_body else None
        return Reply(row.result_status or 200, body)

    def _metadata(self, scope: Scope, query: dict[str, str]) -> Reply:
        version = query.get("api-version")
        if version is None:
            raise errors.missing_api_version()
        if version not in METADATA_API_VERSIONS:
            raise errors.invalid_api_version(version, METADATA_API_VERSIONS)
        return Reply(200, self.directory.cloud_metadata(base_url(scope)))
