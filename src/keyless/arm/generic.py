"""Microsoft.Resources' own generic operations: resource lists, providers, locations.

Free of HTTP like the engine: ``keyless.arm.http`` routes to these and sends the ``Reply``.

Wire shapes (Azure/azure-rest-api-specs, specification/resources/resource-manager/
Microsoft.Resources, 2024-11-01 ``resources.json`` and 2022-12-01 ``subscriptions.json``):

- ``GET /subscriptions/{s}[/resourceGroups/{g}]/resources``: ``ResourceListResult``
  ``{"value": [GenericResourceExpanded], "nextLink"}``; an item has id, name, type, location, and
  sku, kind, managedBy, identity, tags when set; ``$expand=createdTime,changedTime,provisioningState``
  adds those; ``$top`` is the page size; child resources and resource groups are not listed.
- ``GET [/subscriptions/{s}]/providers[/{ns}]``: ``Provider`` ``{id, namespace, registrationState,
  registrationPolicy, resourceTypes: [{resourceType, locations, apiVersions, capabilities}]}``;
  at tenant level without ``registrationState`` (example GetNamedProviderAtTenant.json).
- ``POST /subscriptions/{s}/providers/{ns}/register|unregister``: the ``Provider``.
- ``GET /subscriptions/{s}/locations``: ``keyless.arm.locations.render_locations``.

Registration: every namespace starts ``Registered`` (Keyless's subscription is ready to use).
Unregistering is kept per subscription (``instance_settings``, so every replica sees it); creating
a resource of an unregistered namespace is then ARM's 409 ``MissingSubscriptionRegistration``, and
unregistering a namespace that still has resources in the subscription is refused (409
``Conflict``: Azure's docs say it cannot be done; the code is Keyless's choice).
Microsoft.Resources and Microsoft.Authorization are ``RegistrationFree`` and stay registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.bodies import parse_action_body
from keyless.arm.engine import RESOURCE_GROUP_TYPE, Reply, RequestContext, ResourceManager, iso_time
from keyless.arm.filters import Item, ResourceFilter, parse_filter
from keyless.arm.ids import ResourceId, is_guid, parse_resource_id
from keyless.arm.locations import REGIONS, display_name, render_locations
from keyless.arm.visibility import (
    read_view,
    scan,
    visible_subscriptions,
)
from keyless.authority.tokens import Caller
from keyless.store.tables import instance_settings, resources
from keyless.web import bounded_int

SUBSCRIPTION_RESOURCES_READ = "Microsoft.Resources/subscriptions/resources/read"
GROUP_RESOURCES_READ = "Microsoft.Resources/subscriptions/resourceGroups/resources/read"
PROVIDERS_READ = "Microsoft.Resources/subscriptions/providers/read"
_REGISTRATION_FREE = frozenset({"microsoft.resources", "microsoft.authorization"})
_EXPANDABLE = ("createdTime", "changedTime", "provisioningState")
# The locations a provider's resource types list: every physical region, by display name.
_TYPE_LOCATIONS = sorted(display_name(r) for r in REGIONS if r not in ("global",))
_MAX_TOP = 1000


@dataclass(frozen=True)
class _ListQuery:
    filter_text: str
    compiled: ResourceFilter | None
    expand: tuple[str, ...]
    top: int | None
    after: str | None


def invalid_top(value: str) -> errors.ArmError:
    # Shaped as ARM's InvalidFilterInQueryString; the exact code for $top is not documented.
    return errors.ArmError(
        400, "InvalidTopInQueryString", f"Invalid $top '{value[:100]}' specified in the query string."
    )


def missing_registration(namespace: str) -> errors.ArmError:
    """ARM's 409 when a subscription is not registered for a namespace (aka.ms/rps-not-found)."""
    return errors.ArmError(
        409,
        "MissingSubscriptionRegistration",
        f"The subscription is not registered to use namespace '{namespace}'. "
        "See https://aka.ms/rps-not-found for how to register subscriptions.",
        target=namespace,
    )


def _registration_key(subscription_id: str, namespace: str) -> str:
    return f"provider-registration/{subscription_id.lower()}/{namespace.lower()}"


class GenericApi:
    """The generic operations, on top of the resource manager's registry and store."""

    def __init__(
        self, manager: ResourceManager, directory: Any, subscription_versions: Iterable[str]
    ) -> None:
        self.manager = manager
        # subscriptions and tenants (see keyless.directory)
        self.directory = directory
        self.subscription_versions = frozenset(subscription_versions)
        # Namespaces served outside the engine (extension APIs): lower name -> (name, {type: versions}).
        self._declared: dict[str, tuple[str, dict[str, frozenset[str]]]] = {}
        manager.creation_guards.append(self._require_registered)

    def declare(self, namespace: str, types: Mapping[str, Iterable[str]]) -> None:
        """Add resource types served by an extension (e.g. Microsoft.Authorization) to ``/providers``."""
        _, known = self._declared.setdefault(namespace.lower(), (namespace, {}))
        for type_path, versions in types.items():
            known[type_path] = frozenset(versions)

    # --- api-versions and scopes ----------------------------------------------------------------

    @property
    def resources_versions(self) -> frozenset[str]:
        """Microsoft.Resources' api-versions (those of resource groups)."""
        return self.manager.type_named("Microsoft.Resources", ("resourceGroups",)).api_versions

    def _check_version(self, ctx: RequestContext, versions: frozenset[str]) -> None:
        if ctx.api_version not in versions:
            raise errors.invalid_api_version(ctx.api_version, versions)

    def _require_subscription(self, subscription_id: str) -> Any:
        if not is_guid(subscription_id):
            raise errors.invalid_subscription_id(subscription_id)
        row = self.directory.subscription(subscription_id)
        if row is None:
            raise errors.subscription_not_found(subscription_id)
        return row

    def _require_visible(self, caller: Caller, subscription_id: str, action: str) -> None:
        """Anyone with a role in the subscription may read its providers and locations."""
        if subscription_id.lower() not in visible_subscriptions(
            self.manager.authorizer, caller, [subscription_id]
        ):
            self.manager.authorizer.check(caller, action, f"/subscriptions/{subscription_id}")

    # --- resources ------------------------------------------------------------------------------

    def _list_query(self, query: Mapping[str, str]) -> _ListQuery:
        filter_text = query.get("$filter", "")
        compiled = parse_filter(filter_text)
        expand = tuple(
            name
            for name in _EXPANDABLE
            if name.lower() in {e.strip().lower() for e in query.get("$expand", "").split(",")}
        )
        top: int | None = None
        raw_top = query.get("$top")
        if raw_top is not None and raw_top != "":
            top = bounded_int(raw_top, _MAX_TOP)
            if not top:
                raise invalid_top(raw_top)
        skiptoken = query.get("$skiptoken")
        return _ListQuery(
            filter_text,
            compiled,
            expand,
            top,
            self.manager.skiptokens.decode(skiptoken) if skiptoken else None,
        )

    def list_resources(
        self,
        ctx: RequestContext,
        subscription_id: str,
        group: str | None,
        path: str,
        query: Mapping[str, str],
    ) -> Reply:
        """``GET /subscriptions/{s}[/resourceGroups/{g}]/resources``: top-level resources the caller
        may read there (``keyless.arm.visibility``), filtered by ``$filter`` (``keyless.arm.filters``)."""
        self._check_version(ctx, self.resources_versions)
        request = self._list_query(query)
        scope = ResourceId(subscription_id, group)
        view = read_view(
            self.manager.authorizer,
            ctx.caller,
            GROUP_RESOURCES_READ if group is not None else SUBSCRIPTION_RESOURCES_READ,
            str(scope),
        )
        listed = [t.type_key for t in self.manager.types if t.tracked and "/" not in t.type_path]
        listed = [k for k in listed if k != RESOURCE_GROUP_TYPE.lower()]
        condition = sa.and_(
            resources.c.subscription_id == subscription_id.lower(), resources.c.type_key.in_(listed)
        )
        if group is not None:
            condition = sa.and_(condition, resources.c.group_key == scope.group_key)
        compiled = request.compiled
        if compiled is not None and compiled.narrowing is not None:
            condition = sa.and_(condition, compiled.narrowing)

        def keep(row: Any) -> bool:
            if not view.readable(f"{row.type_key}/read", row.resource_id):
                return False
            return compiled is None or compiled.keep(_item(row))

        page_size = min(request.top or self.manager.page_size, self.manager.page_size)
        with self.manager.db.read() as conn:
            self.manager.require_subscription(conn, subscription_id)
            if group is not None and self.manager.load(conn, scope) is None:
                raise errors.resource_group_not_found(group)
            filtering = compiled is not None or view.allows is not None
            rows, next_after = scan(
                conn, condition, view, keep if filtering else None, page_size, request.after
            )
        body: dict[str, Any] = {"value": [self._render_item(row, request.expand) for row in rows]}
        if next_after is not None:
            params = {"api-version": ctx.api_version}
            if request.filter_text:
                params["$filter"] = request.filter_text
            if request.expand:
                params["$expand"] = ",".join(request.expand)
            if request.top is not None:
                params["$top"] = str(request.top)
            params["$skiptoken"] = self.manager.skiptokens.encode(next_after)
            body["nextLink"] = f"{ctx.base_url}{path}?{urlencode(params, quote_via=quote)}"
        return Reply(200, body)

    def _render_item(self, row: Any, expand: tuple[str, ...]) -> dict[str, Any]:
        rid = parse_resource_id(row.resource_id)
        assert rid is not None
        spec = self.manager.spec_for(rid)
        doc = orjson.loads(row.document)
        out: dict[str, Any] = {"id": row.resource_id, "name": row.name, "type": spec.type_name}
        for key in ("sku", "kind", "managedBy"):
            if doc.get(key) is not None:
                out[key] = doc[key]
        out["location"] = doc.get("location")
        if doc.get("identity") is not None:
            out["identity"] = doc["identity"]
        if doc.get("tags"):
            out["tags"] = doc["tags"]
        if "createdTime" in expand:
            out["createdTime"] = iso_time(row.created_at)
        if "changedTime" in expand:
            out["changedTime"] = iso_time(row.modified_at)
        if "provisioningState" in expand:
            out["provisioningState"] = (doc.get("properties") or {}).get("provisioningState") or "Succeeded"
        return out

    # --- providers ------------------------------------------------------------------------------

    def _namespaces(self) -> dict[str, tuple[str, dict[str, frozenset[str]]]]:
        """lower namespace -> (its spelling, {resource type: api-versions}), engine and declared."""
        out: dict[str, tuple[str, dict[str, frozenset[str]]]] = {}
        for spec in self.manager.types:
            _, types = out.setdefault(spec.namespace.lower(), (spec.namespace, {}))
            types[spec.type_path] = spec.api_versions
        for key, (name, declared) in self._declared.items():
            _, types = out.setdefault(key, (name, {}))
            types.update(declared)
        return out

    def _namespace(self, namespace: str) -> tuple[str, dict[str, frozenset[str]]]:
        found = self._namespaces().get(namespace.lower())
        if found is None:
            raise errors.namespace_not_found(namespace)
        return found

    def _render_provider(
        self, name: str, types: dict[str, frozenset[str]], subscription_id: str | None, state: str | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f"/subscriptions/{subscription_id}/providers/{name}"
            if subscription_id
            else f"/providers/{name}",
            "namespace": name,
        }
        if state is not None:
            out["registrationState"] = state
            out["registrationPolicy"] = (
                "RegistrationFree" if name.lower() in _REGISTRATION_FREE else "RegistrationRequired"
            )
        out["resourceTypes"] = [
            {
                "resourceType": type_path,
                "locations": _TYPE_LOCATIONS,
                "apiVersions": sorted(versions, reverse=True),
                "capabilities": "SupportsTags, SupportsLocation",
            }
            for type_path, versions in sorted(types.items())
        ]
        return out

    def _states(self, subscription_id: str) -> dict[str, str]:
        prefix = _registration_key(subscription_id, "")
        with self.manager.db.read() as conn:
            rows = conn.execute(
                sa.select(instance_settings).where(
                    instance_settings.c.key.startswith(prefix, autoescape=True)
                )
            ).all()
        return {row.key[len(prefix) :]: row.value for row in rows}

    def list_providers(self, ctx: RequestContext, subscription_id: str | None) -> Reply:
        """``GET [/subscriptions/{s}]/providers``: every namespace Keyless serves."""
        self._check_version(ctx, self.resources_versions)
        states: dict[str, str] = {}
        if subscription_id is not None:
            self._require_subscription(subscription_id)
            self._require_visible(ctx.caller, subscription_id, PROVIDERS_READ)
            states = self._states(subscription_id)
        value = [
            self._render_provider(
                name,
                types,
                subscription_id,
                None if subscription_id is None else states.get(key, "Registered"),
            )
            for key, (name, types) in sorted(self._namespaces().items())
        ]
        return Reply(200, {"value": value})

    def get_provider(self, ctx: RequestContext, subscription_id: str | None, namespace: str) -> Reply:
        """``GET [/subscriptions/{s}]/providers/{ns}``; 404 ``InvalidResourceNamespace`` if unknown."""
        self._check_version(ctx, self.resources_versions)
        if subscription_id is not None:
            self._require_subscription(subscription_id)
            self._require_visible(ctx.caller, subscription_id, PROVIDERS_READ)
        name, types = self._namespace(namespace)
        state = None
        if subscription_id is not None:
            state = self._states(subscription_id).get(name.lower(), "Registered")
        return Reply(200, self._render_provider(name, types, subscription_id, state))

    def set_registration(
        self, ctx: RequestContext, subscription_id: str, namespace: str, register: bool, body: bytes
    ) -> Reply:
        """``POST /subscriptions/{s}/providers/{ns}/register|unregister`` (RBAC action
        ``{ns}/register/action`` or ``{ns}/unregister/action`` at the subscription). The optional
        body (``ProviderRegistrationRequest``) must be a JSON object; its consent is not kept."""
        self._check_version(ctx, self.resources_versions)
        parse_action_body(body)
        self._require_subscription(subscription_id)
        name, types = self._namespace(namespace)
        verb = "register" if register else "unregister"
        self.manager.authorizer.check(
            ctx.caller, f"{name}/{verb}/action", f"/subscriptions/{subscription_id}"
        )
        key = _registration_key(subscription_id, name)
        state = "Registered"
        if name.lower() not in _REGISTRATION_FREE:
            with self.manager.db.write() as conn:
                conn.execute(instance_settings.delete().where(instance_settings.c.key == key))
                if not register:
                    prefix = f"/subscriptions/{subscription_id.lower()}/"
                    held = conn.execute(
                        sa.select(resources.c.id_key)
                        .where(
                            resources.c.subscription_id == subscription_id.lower(),
                            resources.c.type_key.startswith(name.lower() + "/", autoescape=True),
                            resources.c.id_key.startswith(prefix, autoescape=True),
                        )
                        .limit(1)
                    ).first()
                    if held is not None:
                        raise errors.ArmError(
                            409,
                            "Conflict",
                            f"The resource provider '{name}' cannot be unregistered: the subscription "
                            f"'{subscription_id}' still has resources of it.",
                        )
                    conn.execute(instance_settings.insert().values(key=key, value="Unregistered"))
                    state = "Unregistered"
        return Reply(200, self._render_provider(name, types, subscription_id, state))

    def _require_registered(self, conn: sa.Connection, rid: ResourceId) -> None:
        """Creation guard: the resource's namespace is registered in its subscription."""
        if rid.namespace is None or rid.namespace.lower() in _REGISTRATION_FREE:
            return
        key = _registration_key(rid.subscription_id, rid.namespace)
        row = conn.execute(sa.select(instance_settings.c.value).where(instance_settings.c.key == key)).first()
        if row is not None and row.value == "Unregistered":
            raise missing_registration(self._namespace(rid.namespace)[0])

    # --- locations ------------------------------------------------------------------------------

    def list_locations(self, ctx: RequestContext, subscription_id: str) -> Reply:
        """``GET /subscriptions/{s}/locations`` (subscriptions api-versions, e.g. 2022-12-01)."""
        self._check_version(ctx, self.subscription_versions)
        self._require_subscription(subscription_id)
        self._require_visible(ctx.caller, subscription_id, "Microsoft.Resources/subscriptions/read")
        return Reply(200, {"value": render_locations(subscription_id)})


def _item(row: Any) -> Item:
    doc = orjson.loads(row.document)
    identity = doc.get("identity") or {}
    tags = doc.get("tags") or {}
    return Item(
        type_key=row.type_key,
        group_key=row.group_key or "",
        name_key=row.name.lower(),
        location=str(doc.get("location") or "").lower(),
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
        principal_id=str(identity.get("principalId") or "").lower() if isinstance(identity, dict) else "",
    )
