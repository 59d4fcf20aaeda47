"""What a provider declares for each resource type it plugs into the resource manager."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keyless.arm import errors
from keyless.arm.ids import ResourceId

if TYPE_CHECKING:
    import sqlalchemy as sa

    from keyless.arm.engine import RequestContext, StoredResource

# ARM's generic rule: at most 260 characters, none of <>%&:\?/ and no control characters (C0, DEL, C1).
_GENERIC_NAME = re.compile(r"[^<>%&:\\?/\x00-\x1f\x7f-\x9f]{1,260}")


@dataclass(frozen=True)
class NameRule:
    """A resource type's name rule: ``pattern`` must match the WHOLE name (``fullmatch``, so a
    trailing newline never passes a ``$``); ``description`` is the sentence ARM's error adds."""

    pattern: re.Pattern[str] = _GENERIC_NAME
    description: str = "It must be 1 to 260 characters and cannot contain '<>%&:\\?/' or control characters."

    def check(self, name: str, type_name: str) -> None:
        """Raise ARM's 400 ``InvalidResourceName`` unless ``pattern`` matches all of ``name``."""
        if self.pattern.fullmatch(name) is None:
            raise errors.invalid_resource_name(name, type_name, self.description)


@dataclass(frozen=True)
class RawBody:
    """A response body that is not JSON, as an action may answer (App Service's ``publishxml``)."""

    content_type: str
    data: bytes


@dataclass(frozen=True)
class Incoming:
    """The parts of a PUT/PATCH body the resource manager itself understands."""

    location: str | None
    tags: dict[str, str] | None
    kind: str | None
    sku: dict[str, Any] | None
    identity: dict[str, Any] | None
    properties: dict[str, Any] | None
    raw: dict[str, Any]


ActionHandler = Callable[
    ["RequestContext", "sa.Connection", "StoredResource", dict[str, Any]], tuple[int, Any]
]


@dataclass
class ResourceType:
    """Base for a provider's resource type; override the hooks that type needs."""

    namespace: str
    type_path: str  # "userAssignedIdentities" or "userAssignedIdentities/federatedIdentityCredentials"
    api_versions: frozenset[str]
    tracked: bool = True  # has location and tags
    supports_identity: bool = False
    expose_etag: bool = False
    # What a creating PUT answers: 201, except where the real provider says 200 (App Service).
    create_status: int = 201
    # A successful write is answered only this many seconds after it commits: the time the real
    # service keeps such a write in flight (federated identity credentials: a write lease).
    settle_seconds: float = 0.0
    name_rule: NameRule = field(default_factory=NameRule)
    # The field a list page names the next page in: ARM's ``nextLink``, or OData's
    # ``@odata.nextLink`` where the provider's spec says so (Media Services).
    next_link_field: str = "nextLink"
    actions: dict[str, ActionHandler] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        return f"{self.namespace}/{self.type_path}"

    @property
    def type_key(self) -> str:
        return self.type_name.lower()

    def operation(self, verb: str) -> str:
        """The RBAC action an operation on this type needs: read, write, delete, or ``x/action``."""
        return f"{self.type_name}/{verb}"

    # --- hooks -------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        """Return the properties to store (read-only ones kept from ``existing``); raise ArmError."""
        return dict(incoming.properties or {})

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        """Side effects inside the write transaction; may return properties to store instead."""
        return None

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        """Side effects inside the delete transaction (children are deleted by the engine)."""

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        return dict(resource.document.get("properties") or {})

    def render_id(self, rid: ResourceId) -> str:
        """The ``id`` a read answers: the resource id as it was created."""
        return str(rid)

    def render_identity(self, identity: dict[str, Any]) -> dict[str, Any]:
        """The ``identity`` a read answers: ARM's canonical spelling of its type by default."""
        from keyless.arm.identity import canonical_identity

        return canonical_identity(identity)

    def not_found(self, rid: ResourceId) -> errors.ArmError:
        """The 404 for a missing resource of this type (ARM's ``ResourceNotFound`` by default;
        a provider that answers its own, as Media Services' children do, overrides it)."""
        return errors.resource_not_found(rid.type_name, rid.name, rid.resource_group)

    def implicit(self, conn: sa.Connection, rid: ResourceId) -> dict[str, Any] | None:
        """The GET body of a resource that exists whenever its parent does, when none is stored
        (App Service's ``sites/{name}/config/web``); None: there is none (404)."""
        return None
