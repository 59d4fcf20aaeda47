"""The asynchronous front of Media Services on the resource manager (``ArmApp.provider_operations``
for ``Microsoft.Media/mediaservices`` and ``Microsoft.Media/locations``).

It does what the synchronous engine cannot: reach Key Vault and Storage as the account's identity
before a write, and refuse everything but account GET/LIST/DELETE while the customer key is out
of reach (concept-use-customer-managed-keys-byok.md: "The only supported operations are account
GET, LIST and DELETE"). Then it hands the request to the engine (return None: the generic
resource path) with what it prepared in ``ctx.prepared``.

- Account PUT: 200/201 at once (az recordings); PATCH from api-version 2021-11-01: **202** with ``Azure-AsyncOperation``
  (``.../locations/{l}/mediaServicesOperationStatuses/{id}``) and ``Location``
  (``.../mediaServicesOperationResults/{id}``), as azure-mgmt-media's ``_update_initial`` requires
  (202 only; media.md §5). The operation is finished when answered; ``Retry-After: 1`` keeps the
  SDK's first wait at one second (a falsy value would make it wait its 30 s default).
- Children (``assets``, ``contentKeyPolicies``, ``streamingPolicies``, ``streamingLocators`` ...)
  are routed in any case (the SDK sends ``mediaServices``); a child type may define
  ``async prepare(front, request, account)`` for work of its own before the engine's write.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.engine import (
    Reply,
    RequestContext,
    ResourceManager,
    StoredResource,
    merge_patch,
    row_to_resource,
)
from keyless.arm.http import ProviderOperation, ProviderRequest
from keyless.arm.identity import check_identity_request, identity_kinds, parse_user_assigned_id
from keyless.arm.ids import ResourceId
from keyless.providers.media import account_properties, list_query
from keyless.providers.media.account_properties import AccountSettings
from keyless.providers.media.accounts import (
    NAME_RULE_TEXT,
    NAMESPACE,
    PREPARED,
    MediaServiceType,
    PreparedAccount,
    check_storage_exists,
    is_valid_name,
)
from keyless.providers.media.children import MediaChildType
from keyless.providers.media.keyring import AccountKeyring, KeyRow
from keyless.providers.media.locations import LocationOperations
from keyless.providers.media.storage_access import MediaStorage, StorageAuth, auth_for
from keyless.store.tables import resources

ACCOUNT_SEGMENT = "mediaservices"
# azure-mgmt-media 10.x (2021-11-01) accepts only 202 for a PATCH; az 2.91's 9.0.0 (2021-06-01)
# only 200, which the real service answered then (shared/reference/media-az.md).
PATCH_202_FROM = "2021-11-01"
# The most members a queried list ($filter/$orderby/$top) looks at (Azure's own quotas are lower).
MAX_QUERIED = 10_000
LIST_STORAGE_KEYS = "Microsoft.Storage/storageAccounts/listKeys/action"


@dataclass
class AccountContext:
    """An existing account, as a child operation sees it."""

    rid: ResourceId
    resource: StoredResource
    settings: AccountSettings
    key_row: KeyRow

    @property
    def identity(self) -> dict[str, Any] | None:
        return self.resource.document.get("identity")


def _prospective_identity(
    conn: sa.Connection, requested: Any, current: dict[str, Any] | None, *, merge: bool
) -> dict[str, Any] | None:
    """The identity the account will have after the write, without creating anything: the system
    principal only if it exists already (a new one cannot have been granted anything yet), and
    the principal ids of the user-assigned identities named (stored ones, or looked up)."""
    requested = check_identity_request(requested)
    if requested is None:
        return current if merge else None
    wants_system, wants_user = identity_kinds(requested.get("type", "None"))
    out: dict[str, Any] = {}
    if wants_system and current and current.get("principalId"):
        out["principalId"] = current["principalId"]
    if wants_user:
        users: dict[str, Any] = dict((current or {}).get("userAssignedIdentities") or {}) if merge else {}
        for uami_id, entry in (requested.get("userAssignedIdentities") or {}).items():
            users = {k: v for k, v in users.items() if k.lower() != uami_id.lower()}
            if entry is None:
                continue
            parsed = parse_user_assigned_id(uami_id)
            row = conn.execute(
                sa.select(resources.c.document).where(resources.c.id_key == parsed.key)
            ).first()
            if row is not None:
                props = orjson.loads(row.document).get("properties") or {}
                users[str(parsed)] = {"principalId": props.get("principalId")}
        out["userAssignedIdentities"] = users
    return out


class MediaFront:
    """The handlers, bound to the resource manager and the services they reach."""

    def __init__(
        self,
        manager: ResourceManager,
        account_type: MediaServiceType,
        keyring: AccountKeyring,
        storage: MediaStorage,
    ) -> None:
        self.manager = manager
        self.account_type = account_type
        self.keyring = keyring
        self.storage = storage
        self.locations = LocationOperations(manager, account_type)
        self.children: dict[str, MediaChildType] = {}

    def register(self, operations: dict[tuple[str, str], ProviderOperation]) -> None:
        """Add the handlers to ``ArmApp.provider_operations``."""
        ns = NAMESPACE.lower()
        operations[(ns, ACCOUNT_SEGMENT)] = self.handle
        operations[(ns, "locations")] = self.locations.handle

    # --- routing ---------------------------------------------------------------------------

    def handle(self, req: ProviderRequest) -> Awaitable[Reply | None] | None:
        seg = req.segments
        if req.scope.resource_group is None or len(seg) < 2:
            return None  # lists by subscription or group: the engine's
        rid = ResourceId(
            req.scope.subscription_id, req.scope.resource_group, req.namespace, (seg[0],), (seg[1],)
        )
        if len(seg) == 2:
            if req.method in ("PUT", "PATCH"):
                return self._write_account(req, rid)
            return None  # GET, DELETE: always allowed
        return self._child(req, rid)

    async def _child(self, req: ProviderRequest, account_rid: ResourceId) -> Reply | None:
        """Every request below an account: authorized, then refused while the customer key is out
        of reach, then the child type's own preparation, then the engine."""
        seg = req.segments
        if len(seg) == 3:  # an account action (POST) or a child collection (GET)
            hook: MediaChildType | None = None
            if req.method == "POST":
                action = self.account_type.operation(f"{seg[2]}/action")
                self.manager.authorizer.check(req.ctx.caller, action, str(account_rid))
            else:
                child = self.manager.type_named(req.namespace, (seg[0], seg[2]))
                self.manager.authorizer.check(req.ctx.caller, child.operation("read"), str(account_rid))
                hook = self.children.get(child.type_key)
            account = self.account_context(account_rid)  # refused while the customer key is out of reach
            if hook is not None and list_query.asks(req.query):
                return self._queried_list(req, hook, account, seg[2], account_rid)
            # A collection with members that are not stored (streaming policies) lists itself.
            return hook.list_children(self, req, account) if hook is not None else None
        types, names = tuple(seg[0::2]), tuple(seg[1::2])
        if len(seg) % 2 == 1:  # an action on a child, or a grandchild collection
            target = ResourceId(
                account_rid.subscription_id, account_rid.resource_group, req.namespace, types[:-1], names
            )
            spec = self.manager.spec_for(target)
            if req.method == "POST":
                verb = f"{types[-1]}/action"
                if not any(a.lower() == types[-1].lower() for a in spec.actions):
                    raise errors.no_route(req.path)
            else:
                spec = self.manager.type_named(req.namespace, types)
                verb = "read"
                grandchildren = self.children.get(spec.type_key)
                if req.method == "GET" and grandchildren is not None and list_query.asks(req.query):
                    self.manager.authorizer.check(req.ctx.caller, spec.operation(verb), str(target))
                    account = self.account_context(account_rid)
                    with self.manager.db.read() as conn:
                        if self.manager.load(conn, target) is None:
                            raise grandchildren.not_found(target)
                    return self._queried_list(req, grandchildren, account, types[-1], target)
        else:
            target = ResourceId(
                account_rid.subscription_id, account_rid.resource_group, req.namespace, types, names
            )
            spec = self.manager.spec_for(target)
            verb = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(
                req.method, "read"
            )
        self.manager.check_api_version(spec, req.ctx)
        self.manager.authorizer.check(req.ctx.caller, spec.operation(verb), str(target))
        account = self.account_context(account_rid)
        hook = self.children.get(spec.type_key)
        if hook is not None:
            await hook.prepare(self, req, target, account)
        return None

    def _queried_list(
        self,
        req: ProviderRequest,
        spec: MediaChildType,
        account: AccountContext,
        kind: str,
        parent: ResourceId,
    ) -> Reply:
        """A collection GET with ``$filter``/``$orderby``/``$top`` (``list_query``): the members
        under ``parent`` (the account, or a transform for jobs; at most ``MAX_QUERIED`` by name),
        queried, then paged by offset."""
        ctx = req.ctx
        self.manager.check_api_version(spec, ctx)
        items = spec.all_items(self, account)
        if items is None:
            with self.manager.db.read() as conn:
                rows = conn.execute(
                    sa.select(resources)
                    .where(resources.c.parent_key == parent.key, resources.c.type_key == spec.type_key)
                    .order_by(resources.c.name)
                    .limit(MAX_QUERIED)
                ).all()
            items = [self.manager.render(spec, row_to_resource(row)) for row in rows]
        items = list_query.apply(kind, items, req.query)
        token = req.query.get("$skiptoken", "0")
        if not re.fullmatch(r"[0-9]{1,9}", token):
            raise errors.bad_request(f"The skip token '{token[:100]}' is invalid.", code="InvalidSkipToken")
        start, size = int(token), self.manager.page_size
        body: dict[str, Any] = {"value": items[start : start + size]}
        if start + size < len(items):
            kept = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            query = urlencode({**kept, "$skiptoken": str(start + size)})
            body["@odata.nextLink"] = f"{ctx.base_url}{req.path}?{query}"
        return Reply(200, body)

    # --- the account ----------------------------------------------------------------------

    def account_context(self, rid: ResourceId) -> AccountContext:
        """The account, checked usable: 404 when missing, ``forbidden`` while its customer key is
        inaccessible."""
        with self.manager.db.read() as conn:
            resource = self.manager.load(conn, rid)
        if resource is None:
            raise errors.resource_not_found(self.account_type.type_name, rid.name, rid.resource_group)
        key_row = self.keyring.require_accessible(resource.rid.key)
        props = dict(resource.document.get("properties") or {})
        settings = account_properties.checked(props, rid.subscription_id)
        return AccountContext(resource.rid, resource, settings, key_row)

    async def account_key(self, account: AccountContext) -> bytes:
        """The plaintext account key of ``account`` (``forbidden`` if out of reach)."""
        return await self.keyring.account_key(account.rid.key, account.settings, account.identity)

    def storage_auth(self, account: AccountContext, storage_name: str | None) -> StorageAuth:
        """How ``account`` reaches storage ``storage_name`` (None: its primary). 400 when the
        account has no such storage account."""
        settings = account.settings
        ref = settings.primary
        if storage_name is not None:
            found = [s for s in settings.storage if s.rid.name.lower() == storage_name.lower()]
            if not found:
                raise account_properties.bad_request(
                    f"The storage account '{storage_name}' is not attached to the Media Services account.",
                    "properties.storageAccountName",
                )
            ref = found[0]
        return auth_for(str(account.rid), settings, account.identity, ref)

    async def _write_account(self, req: ProviderRequest, rid: ResourceId) -> Reply:
        ctx, spec, patch = req.ctx, self.account_type, req.method == "PATCH"
        self.manager.check_api_version(spec, ctx)
        if not patch and not is_valid_name(rid.name):
            # BadRequest with the checkNameAvailability sentence: Media Services' code for every
            # validation error (the real answer to a PUT with a bad name is not published).
            raise account_properties.bad_request(NAME_RULE_TEXT)
        self.manager.authorizer.check(ctx.caller, spec.operation("write"), str(rid))
        incoming = incoming_of(parse_body(req.body))
        with self.manager.db.read() as conn:
            existing = self.manager.load(conn, rid)
            if existing is None and patch:
                raise errors.resource_not_found(spec.type_name, rid.name, rid.resource_group)
            current_identity = existing.document.get("identity") if existing is not None else None
            # Before the service acts as any identity named: the caller must be allowed to assign it.
            self.manager.check_identity_assignment(ctx, incoming.identity, current_identity)
            identity = _prospective_identity(conn, incoming.identity, current_identity, merge=patch)
        old_props = dict(existing.document.get("properties") or {}) if existing is not None else {}
        props = (
            merge_patch(old_props, incoming.properties or {}) if patch else dict(incoming.properties or {})
        )
        settings = account_properties.checked(props, rid.subscription_id)
        old = account_properties.checked(old_props, rid.subscription_id) if existing is not None else None
        if existing is not None and existing.document.get("location") is not None:
            ctx_location = existing.document["location"]
        else:
            ctx_location = incoming.location
        if existing is None and ctx_location is None:
            raise errors.location_required()
        with self.manager.db.read() as conn:
            check_storage_exists(conn, settings)
        # Attaching a storage account hands its keys to the account (listContainerSas signs with
        # them), so the caller must be able to list them (Azure: "Media Services validates that
        # ... the caller has ARM RBAC access to it"; the action is Keyless's choice).
        attached = {ref.rid.key for ref in old.storage} if old is not None else set()
        for ref in settings.storage:
            if ref.rid.key not in attached:
                self.manager.authorizer.check(ctx.caller, LIST_STORAGE_KEYS, str(ref.rid))
        service_id = str(existing.rid) if existing is not None else str(rid)
        for ref in settings.storage:
            await self.storage.probe(auth_for(service_id, settings, identity, ref))
        plan = await self.keyring.plan(service_id, rid.key, settings, identity, old, current_identity)
        ctx.prepared[PREPARED] = PreparedAccount(settings, plan)
        reply = self.manager.patch(ctx, rid, req.body) if patch else self.manager.put(ctx, rid, req.body)
        if not patch or ctx.api_version < PATCH_202_FROM:
            return reply
        return self._accepted(ctx, rid, str(ctx_location), reply)

    def _accepted(self, ctx: RequestContext, rid: ResourceId, location: str, reply: Reply) -> Reply:
        """202 for a PATCH, with the operation's status and result URLs (module docstring)."""
        with self.manager.db.write() as conn:
            operation_id = self.manager.record_operation(
                conn, rid, Reply(200, reply.body), ctx.caller.object_id
            )
        base = (
            f"{ctx.base_url}/subscriptions/{rid.subscription_id}/providers/{NAMESPACE}/locations/{location}"
        )
        query = f"?api-version={ctx.api_version}"
        return Reply(
            202,
            reply.body,
            {
                "Azure-AsyncOperation": f"{base}/mediaServicesOperationStatuses/{operation_id}{query}",
                "Location": f"{base}/mediaServicesOperationResults/{operation_id}{query}",
                "Retry-After": "1",
            },
        )
