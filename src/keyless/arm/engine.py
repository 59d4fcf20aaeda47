"""The generic resource lifecycle every provider plugs into.

Free of HTTP: the wire layer turns a request into calls here and a ``Reply`` back into a
response. Every operation names the RBAC action it needs and asks the one authorizer
before it acts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.identity import MAX_RESOURCE_ID, apply_identity, parse_user_assigned_id
from keyless.arm.ids import ResourceId, is_guid
from keyless.arm.locations import REGIONS, normalize_location
from keyless.arm.resource_types import Incoming, ResourceType
from keyless.arm.visibility import SkipTokens, read_view, scan
from keyless.authority import principals
from keyless.authority.tokens import Caller
from keyless.store.db import Database
from keyless.store.tables import operations, resources, subscriptions

RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
_GROUP_NAME_OK = frozenset("-._()")


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    api_version: str
    # Scheme and host the client used, for nextLink and Location headers.
    base_url: str
    if_match: str | None = None
    if_none_match: str | None = None
    # What an asynchronous provider layer worked out before the engine's synchronous write (Media
    # Services' customer-key and storage checks), for that type's hooks to read; keys are the type's.
    prepared: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredResource:
    rid: ResourceId
    document: dict[str, Any]
    etag: str
    created_at: float
    created_by: str
    created_by_type: str
    modified_at: float
    modified_by: str
    modified_by_type: str


class Authorizer(Protocol):
    """Decides whether ``caller`` may perform ``action`` at ``scope``; raises ArmError (403) if not."""

    def check(self, caller: Caller, action: str, scope: str) -> None: ...

    def readable(self, caller: Caller) -> tuple[frozenset[str], Callable[[str, str], bool]] | None:
        """The scopes of the caller's role assignments and a per-item decision (lists filter by
        read access: ``keyless.arm.visibility``); None when every caller may read everything."""
        ...


@lru_cache(maxsize=4096)  # a resource's timestamps are rendered on every read
def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e7):07d}Z"


def _caller_type(caller: Caller) -> str:
    return {"ManagedIdentity": "ManagedIdentity", "User": "User"}.get(caller.principal_type, "Application")


def _etag() -> str:
    return f'"{uuid.uuid4()}"'


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {t.strip() for t in header.split(",")}
    return "*" in wanted or etag in wanted or etag.strip('"') in wanted


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge-patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _patched(existing: StoredResource, incoming: Incoming) -> Incoming:
    """What a PATCH asks for, applied to what exists: the whole tags map replaced (ARM RPC),
    properties merge-patched, everything not given kept."""
    doc = existing.document
    return Incoming(
        location=doc.get("location"),
        tags=incoming.tags if incoming.tags is not None else doc.get("tags"),
        kind=incoming.kind or doc.get("kind"),
        sku=incoming.sku or doc.get("sku"),
        identity=incoming.identity,
        properties=merge_patch(doc.get("properties") or {}, incoming.properties or {}),
        raw=incoming.raw,
    )


def row_to_resource(row: Any, rid: ResourceId | None = None) -> StoredResource:
    """A ``resources`` row as a StoredResource (``rid``: the id already parsed, when the caller has it)."""
    from keyless.arm.ids import parse_resource_id

    parsed = rid if rid is not None and str(rid) == row.resource_id else parse_resource_id(row.resource_id)
    assert parsed is not None
    return StoredResource(
        rid=parsed,
        document=orjson.loads(row.document),
        etag=row.etag,
        created_at=row.created_at,
        created_by=row.created_by,
        created_by_type=row.created_by_type,
        modified_at=row.modified_at,
        modified_by=row.modified_by,
        modified_by_type=row.modified_by_type,
    )


_GET = sa.select(resources).where(resources.c.id_key == sa.bindparam("id_key"))
_SUBSCRIPTION = sa.select(subscriptions).where(
    sa.func.lower(subscriptions.c.subscription_id) == sa.bindparam("sid")
)


class ResourceManager:
    def __init__(self, db: Database, authorizer: Authorizer, page_size: int, skiptokens: SkipTokens) -> None:
        self.db = db
        self.authorizer = authorizer
        self.page_size = page_size
        self.skiptokens = skiptokens
        self._types: dict[str, ResourceType] = {}
        self._namespaces: dict[str, str] = {}
        self._change_listeners: list[Callable[[], None]] = []
        self._scope_deletion_hooks: list[Callable[[sa.Connection, str], None]] = []
        # Called inside the transaction that creates a resource (e.g. its namespace is registered).
        self.creation_guards: list[Callable[[sa.Connection, ResourceId], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every committed write, so in-process caches never go stale."""
        self._change_listeners.append(listener)

    def on_scope_deleted(self, hook: Callable[[sa.Connection, str], None]) -> None:
        """Call ``hook(conn, scope_key)`` inside the transaction that deletes a resource or group,
        so extension resources at and below that scope (role assignments) go with it."""
        self._scope_deletion_hooks.append(hook)

    def notify_changed(self) -> None:
        for listener in self._change_listeners:
            listener()

    # --- registry ----------------------------------------------------------------------

    def register(self, resource_type: ResourceType) -> None:
        self._types[resource_type.type_key] = resource_type
        self._namespaces[resource_type.namespace.lower()] = resource_type.namespace

    def type_named(self, namespace: str, types: tuple[str, ...]) -> ResourceType:
        spec = self._types.get("/".join((namespace, *types)).lower())
        if spec is None:
            if namespace.lower() not in self._namespaces:
                raise errors.namespace_not_found(namespace)
            raise errors.invalid_resource_type(namespace, "/".join(types))
        return spec

    def spec_for(self, rid: ResourceId) -> ResourceType:
        if rid.is_resource_group:
            return self.type_named("Microsoft.Resources", ("resourceGroups",))
        return self.type_named(rid.namespace or "", rid.types)

    @property
    def types(self) -> Iterable[ResourceType]:
        return self._types.values()

    def check_api_version(self, spec: ResourceType, ctx: RequestContext, location: str = "global") -> None:
        if ctx.api_version not in spec.api_versions:
            if spec.namespace == "Microsoft.Resources":
                raise errors.invalid_api_version(ctx.api_version, spec.api_versions)
            raise errors.no_registered_provider(location, ctx.api_version, spec.type_name, spec.api_versions)

    # --- reads -------------------------------------------------------------------------

    def require_subscription(self, conn: sa.Connection, subscription_id: str) -> None:
        if not is_guid(subscription_id):
            raise errors.invalid_subscription_id(subscription_id)
        if conn.execute(_SUBSCRIPTION, {"sid": subscription_id.lower()}).first() is None:
            raise errors.subscription_not_found(subscription_id)

    def _require_scope(self, conn: sa.Connection, rid: ResourceId) -> None:
        """The subscription, group and parent resource a resource lives under must all exist."""
        self.require_subscription(conn, rid.subscription_id)
        group = rid.group_id
        if group is not None and rid.types:
            if conn.execute(_GET, {"id_key": group.key}).first() is None:
                raise errors.resource_group_not_found(rid.resource_group or "")
        parent = rid.parent
        if parent is not None and len(rid.names) > 1:
            if conn.execute(_GET, {"id_key": parent.key}).first() is None:
                raise self._not_found(parent)  # the parent type's own 404 (Media Services: NotFound)

    def load(self, conn: sa.Connection, rid: ResourceId) -> StoredResource | None:
        row = conn.execute(_GET, {"id_key": rid.key}).first()
        return row_to_resource(row, rid) if row is not None else None

    def _not_found(self, rid: ResourceId) -> errors.ArmError:
        if rid.is_resource_group:
            return errors.resource_group_not_found(rid.resource_group or "")
        spec = self._types.get(rid.type_key)
        if spec is not None:
            return spec.not_found(rid)
        return errors.resource_not_found(rid.type_name, rid.name, rid.resource_group)

    def get(self, ctx: RequestContext, rid: ResourceId) -> Reply:
        spec = self.spec_for(rid)
        self.check_api_version(spec, ctx)
        self.authorizer.check(ctx.caller, spec.operation("read"), str(rid))
        row = self.db.query_one(_GET, {"id_key": rid.key})  # the hot path: one statement
        if row is None:
            with self.db.read() as conn:
                self._require_scope(conn, rid)
                implicit = spec.implicit(conn, rid)
            if implicit is not None:  # exists whenever its parent does (App Service's config/web)
                return Reply(200, implicit)
            raise self._not_found(rid)
        resource = row_to_resource(row, rid)
        return Reply(200, self.render(spec, resource), {"ETag": resource.etag})

    def render(self, spec: ResourceType, resource: StoredResource) -> dict[str, Any]:
        doc = resource.document
        out: dict[str, Any] = {
            "id": spec.render_id(resource.rid),
            "name": resource.rid.name,
            "type": spec.type_name,
        }
        if spec.tracked:
            out["location"] = doc.get("location")
            out["tags"] = doc.get("tags") or {}
        for key in ("kind", "sku", "managedBy"):
            if doc.get(key) is not None:
                out[key] = doc[key]
        if doc.get("identity") is not None:
            out["identity"] = spec.render_identity(doc["identity"])
        out["properties"] = spec.render_properties(resource)
        if spec.expose_etag:
            out["etag"] = resource.etag
        out["systemData"] = {
            "createdBy": resource.created_by,
            "createdByType": resource.created_by_type,
            "createdAt": iso_time(resource.created_at),
            "lastModifiedBy": resource.modified_by,
            "lastModifiedByType": resource.modified_by_type,
            "lastModifiedAt": iso_time(resource.modified_at),
        }
        return out

    # --- writes ------------------------------------------------------------------------

    def _check_name(self, spec: ResourceType, rid: ResourceId) -> None:
        if rid.is_resource_group:
            name = rid.resource_group or ""
            ok = 0 < len(name) <= 90 and not name.endswith(".")
            if not ok or not all(c.isalnum() or c in _GROUP_NAME_OK for c in name):
                raise errors.invalid_resource_group_name(name)
            return
        spec.name_rule.check(rid.name, spec.type_name)
        if len(rid.key) > MAX_RESOURCE_ID:  # the longest id the store keeps
            raise errors.invalid_resource_name(
                rid.name, spec.type_name, f"The resource id is longer than {MAX_RESOURCE_ID} characters."
            )

    def _location(
        self, spec: ResourceType, incoming: Incoming, existing: StoredResource | None
    ) -> str | None:
        if not spec.tracked:
            return None
        if incoming.location is None:
            if existing is not None:
                return str(existing.document.get("location"))
            raise errors.location_required()
        location = normalize_location(incoming.location)
        if location not in REGIONS:
            raise errors.invalid_location(incoming.location, spec.type_name, REGIONS)
        if existing is not None and existing.document.get("location") != location:
            rid = existing.rid
            raise errors.location_conflict(
                rid.name,
                rid.resource_group,
                rid.is_resource_group,
                str(existing.document.get("location")),
                location,
            )
        return location

    def put(self, ctx: RequestContext, rid: ResourceId, raw_body: bytes) -> Reply:
        """Create (201) or replace (200) a resource: ARM does not tell the two apart."""
        return self._write(ctx, rid, raw_body, patch=False)

    def patch(self, ctx: RequestContext, rid: ResourceId, raw_body: bytes) -> Reply:
        """Update an existing resource: tags replaced, properties merge-patched (RFC 7396)."""
        return self._write(ctx, rid, raw_body, patch=True)

    def _write(self, ctx: RequestContext, rid: ResourceId, raw_body: bytes, *, patch: bool) -> Reply:
        spec = self.spec_for(rid)
        self.check_api_version(spec, ctx)
        if not patch:
            self._check_name(spec, rid)
        incoming = incoming_of(parse_body(raw_body))
        self.authorizer.check(ctx.caller, spec.operation("write"), str(rid))
        with self.db.write() as conn:
            existing = self.load(conn, rid)
            if existing is None:
                self._require_scope(conn, rid)
                if patch:
                    raise self._not_found(rid)
                for guard in self.creation_guards:
                    guard(conn, rid)
            self.check_preconditions(ctx, existing, creating=not patch)
            location = self._location(spec, incoming, existing)
            if patch:
                assert existing is not None
                incoming = _patched(existing, incoming)
            properties = spec.validate(ctx, conn, rid, incoming, existing)
            document: dict[str, Any] = dict(existing.document) if patch and existing is not None else {}
            document["properties"] = properties
            if spec.tracked:
                document["location"] = location
                document["tags"] = incoming.tags or {}
            for key, value in (("kind", incoming.kind), ("sku", incoming.sku)):
                if value is not None:
                    document[key] = value
            self._apply_identity(ctx, conn, spec, rid, incoming.identity, existing, document, merge=patch)
            resource = self._store(ctx, conn, spec, rid, document, existing)
        self.notify_changed()
        status = 200 if existing is not None else spec.create_status
        return Reply(status, self.render(spec, resource), {"ETag": resource.etag})

    def _apply_identity(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        spec: ResourceType,
        rid: ResourceId,
        requested: Any,
        existing: StoredResource | None,
        document: dict[str, Any],
        *,
        merge: bool,
    ) -> None:
        if not spec.supports_identity:
            document.pop("identity", None)
            return
        current = existing.document.get("identity") if existing is not None else None
        self.check_identity_assignment(ctx, requested, current)
        identity = apply_identity(conn, rid, ctx.caller.tenant_id, requested, current, merge=merge)
        if identity is None:
            document.pop("identity", None)
        else:
            document["identity"] = identity

    def check_identity_assignment(
        self, ctx: RequestContext, requested: Any, current: dict[str, Any] | None
    ) -> None:
        """403 ``AuthorizationFailed`` unless the caller may assign every user-assigned identity
        ``requested`` (an ``identity`` property, type-checked) adds to ``current``: assigning
        someone's identity is an action on that identity, as in Azure. A provider that acts with
        the identity before the write (Media Services) calls this first."""
        if not isinstance(requested, dict):
            return
        already = {k.lower() for k in ((current or {}).get("userAssignedIdentities") or {})}
        for uami_id, entry in (requested.get("userAssignedIdentities") or {}).items():
            if entry is not None and uami_id.lower() not in already:
                self.authorizer.check(
                    ctx.caller,
                    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                    str(parse_user_assigned_id(uami_id)),
                )

    def check_preconditions(
        self, ctx: RequestContext, existing: StoredResource | None, *, creating: bool
    ) -> None:
        """412 ``PreconditionFailed`` when ``If-Match``/``If-None-Match`` do not hold for ``existing``
        (a provider that acts before the engine's write, as Media Services does, checks first)."""
        if ctx.if_none_match is not None and ctx.if_none_match.strip() == "*" and existing is not None:
            raise errors.precondition_failed("The resource already exists and 'If-None-Match: *' was given.")
        if ctx.if_match is not None:
            if existing is None:
                raise errors.precondition_failed("The resource does not exist and 'If-Match' was given.")
            if not _etag_matches(ctx.if_match, existing.etag):
                raise errors.precondition_failed(
                    f"The specified precondition 'If-Match = {ctx.if_match}' failed; "
                    f"the current ETag is {existing.etag}."
                )

    def _store(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        spec: ResourceType,
        rid: ResourceId,
        document: dict[str, Any],
        existing: StoredResource | None,
    ) -> StoredResource:
        """Write the resource, then let its provider act (and amend its properties) in the same transaction."""
        resource = self._write_row(ctx, conn, rid, document, existing)
        extra = spec.after_write(ctx, conn, resource, existing is None)
        if extra is not None:
            resource.document["properties"] = extra
            self._store_document(conn, resource)
        return resource

    def _write_row(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        document: dict[str, Any],
        existing: StoredResource | None,
    ) -> StoredResource:
        now = time.time()
        by, by_type = ctx.caller.display_id, _caller_type(ctx.caller)
        etag = _etag()
        values = {
            "resource_id": str(rid),
            "name": rid.name,
            "document": orjson.dumps(document).decode(),
            "etag": etag,
            "modified_at": now,
            "modified_by": by,
            "modified_by_type": by_type,
        }
        if existing is None:
            parent = rid.parent
            conn.execute(
                resources.insert().values(
                    id_key=rid.key,
                    subscription_id=rid.subscription_id.lower(),
                    group_key=rid.group_key,
                    type_key=rid.type_key,
                    parent_key=parent.key if parent is not None and len(rid.names) > 1 else None,
                    created_at=now,
                    created_by=by,
                    created_by_type=by_type,
                    **values,
                )
            )
            return StoredResource(rid, document, etag, now, by, by_type, now, by, by_type)
        conn.execute(resources.update().where(resources.c.id_key == rid.key).values(**values))
        return StoredResource(
            rid,
            document,
            etag,
            existing.created_at,
            existing.created_by,
            existing.created_by_type,
            now,
            by,
            by_type,
        )

    def _store_document(self, conn: sa.Connection, resource: StoredResource) -> None:
        conn.execute(
            resources.update()
            .where(resources.c.id_key == resource.rid.key)
            .values(document=orjson.dumps(resource.document).decode())
        )

    def delete(self, ctx: RequestContext, rid: ResourceId) -> Reply:
        spec = self.spec_for(rid)
        self.check_api_version(spec, ctx)
        self.authorizer.check(ctx.caller, spec.operation("delete"), str(rid))
        with self.db.write() as conn:
            existing = self.load(conn, rid)
            if existing is None:
                self._require_scope(conn, rid)
                return Reply(204)
            self.check_preconditions(ctx, existing, creating=False)
            self._delete_tree(ctx, conn, existing)
        self.notify_changed()
        return Reply(200)

    def _delete_tree(self, ctx: RequestContext, conn: sa.Connection, root: StoredResource) -> None:
        """Delete a resource and everything under it (for a group: every resource in it)."""
        if root.rid.is_resource_group:
            condition = sa.and_(
                resources.c.subscription_id == root.rid.subscription_id.lower(),
                resources.c.group_key == root.rid.group_key,
                resources.c.id_key != root.rid.key,
            )
        else:
            condition = resources.c.id_key.startswith(root.rid.key + "/", autoescape=True)
        rows = conn.execute(sa.select(resources).where(condition)).all()
        # Children before parents, so hooks always see a consistent tree.
        doomed = [*sorted((row_to_resource(r) for r in rows), key=lambda r: -len(r.rid.names)), root]
        for resource in doomed:
            spec = self._types.get(resource.rid.type_key)
            if spec is not None:
                spec.before_delete(ctx, conn, resource)
            for principal in principals.owned_by(conn, resource.rid.key):
                principals.delete_principal(conn, principal.object_id)
            conn.execute(resources.delete().where(resources.c.id_key == resource.rid.key))
        for hook in self._scope_deletion_hooks:
            hook(conn, root.rid.key)

    # --- lists -------------------------------------------------------------------------

    def list(
        self,
        ctx: RequestContext,
        spec: ResourceType,
        scope: ResourceId,
        path: str,
        skiptoken: str | None,
    ) -> Reply:
        """Resources of one type under a subscription, a group, or a parent resource: those the
        caller may read (``keyless.arm.visibility``; 403 only when it may read none)."""
        self.check_api_version(spec, ctx)
        read = spec.operation("read")
        view = read_view(self.authorizer, ctx.caller, read, str(scope))
        condition = resources.c.type_key == spec.type_key
        if len(spec.type_path.split("/")) > 1:
            condition = sa.and_(condition, resources.c.parent_key == scope.key)
        else:
            condition = sa.and_(condition, resources.c.subscription_id == scope.subscription_id.lower())
            if scope.resource_group is not None:
                condition = sa.and_(condition, resources.c.group_key == scope.group_key)
        after = self.skiptokens.decode(skiptoken) if skiptoken else None
        keep = None if view.allows is None else (lambda row: view.readable(read, row.resource_id))
        with self.db.read() as conn:
            self.require_subscription(conn, scope.subscription_id)
            if scope.types or (scope.resource_group is not None and not scope.types):
                if self.load(conn, scope) is None:
                    raise self._not_found(scope)
            rows, next_after = scan(conn, condition, view, keep, self.page_size, after)
        body: dict[str, Any] = {"value": [self.render(spec, row_to_resource(r)) for r in rows]}
        if next_after is not None:
            token = self.skiptokens.encode(next_after)
            body[spec.next_link_field] = (
                f"{ctx.base_url}{path}?api-version={ctx.api_version}&%24skiptoken={token}"
            )
        return Reply(200, body)

    # --- long-running operations -------------------------------------------------------

    def record_operation(self, conn: sa.Connection, rid: ResourceId, reply: Reply, started_by: str) -> str:
        """Record a finished operation so its Location/Azure-AsyncOperation URLs can be polled."""
        operation_id = str(uuid.uuid4())
        now = time.time()
        conn.execute(
            operations.insert().values(
                operation_id=operation_id,
                subscription_id=rid.subscription_id.lower(),
                resource_id=str(rid),
                status="Succeeded",
                started_at=now,
                ended_at=now,
                result_status=reply.status,
                result_body=orjson.dumps(reply.body).decode() if reply.body is not None else None,
                error=None,
                started_by=started_by,
            )
        )
        return operation_id

    def operation(self, subscription_id: str, operation_id: str) -> Any:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(operations).where(
                    operations.c.operation_id == operation_id,
                    operations.c.subscription_id == subscription_id.lower(),
                )
            ).first()
        return row

    def delete_async(self, ctx: RequestContext, rid: ResourceId, path_prefix: str) -> Reply:
        """DELETE answered 202 + Location, as ARM does for resource groups."""
        spec = self.spec_for(rid)
        self.check_api_version(spec, ctx)
        self.authorizer.check(ctx.caller, spec.operation("delete"), str(rid))
        with self.db.write() as conn:
            existing = self.load(conn, rid)
            if existing is None:
                self.require_subscription(conn, rid.subscription_id)
                if rid.is_resource_group:
                    raise self._not_found(rid)
                return Reply(204)
            self.check_preconditions(ctx, existing, creating=False)
            self._delete_tree(ctx, conn, existing)
            operation_id = self.record_operation(conn, rid, Reply(200), ctx.caller.object_id)
        location = (
            f"{ctx.base_url}/subscriptions/{rid.subscription_id}/operationresults/{operation_id}"
            f"?api-version={ctx.api_version}"
        )
        self.notify_changed()
        return Reply(202, None, {"Location": location, "Retry-After": "0"})
