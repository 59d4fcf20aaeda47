"""RBAC as a service: persisted role definitions, role and deny assignments and groups; the
authorizer every resource-manager operation asks; and the data-plane hook.

No HTTP in here (the wire layer is ``keyless.rbac.arm``); errors are ``ArmError`` with ARM's codes
(``keyless.rbac.errors``).  The decisions themselves come from ``keyless.rbac.evaluator``.

Consistency across replicas
---------------------------
Each replica keeps one in-memory ``AuthorizationIndex`` (the built-in roles, every custom role, role
assignment and deny assignment) and the group-membership graph.  The single row of ``rbac_state``
holds a version number.  Every RBAC write bumps it as its *first* statement, in its own transaction:
that serializes RBAC writers (SQLite's write lock, PostgreSQL's row lock), so the validations that
follow (duplicates, limits) see every earlier write, and a failed write rolls the bump back with
everything else.  Every check reads that row (one primary-key lookup) and rebuilds the index from the
database when the version moved; a write made by this replica is applied to its own index directly
when nothing else happened in between.  So a change committed by any replica governs the very next
request on every replica, and nothing that must be shared lives only in one process's memory.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa

from keyless.arm import errors as arm_errors
from keyless.arm.errors import ArmError
from keyless.arm.ids import MAX_ID_LENGTH, ResourceId, id_segments, is_guid, parse_resource_id
from keyless.authority.tokens import Caller
from keyless.directory import groups
from keyless.rbac import errors
from keyless.rbac.builtin_roles import BUILTIN_ROLES, get_builtin_role
from keyless.rbac.condition_eval import ConditionAttributes
from keyless.rbac.conditions import ConditionError, parse_condition
from keyless.rbac.evaluator import (
    EVERYONE_PRINCIPAL_ID,
    SUPPORTED_CONDITION_VERSION,
    AuthorizationIndex,
    Decision,
    DenyAssignment,
    Permission,
    RoleAssignment,
    RoleDefinition,
    ScopeOutOfBounds,
    normalize_scope,
    pattern_problem,
    role_assignable_at,
    role_key,
    scope_ancestors,
)
from keyless.store.db import Database
from keyless.store.tables import (
    deny_assignments,
    instance_settings,
    rbac_state,
    resources,
    role_assignments,
    role_definitions,
    subscriptions,
)

__all__ = [
    "ROLE_ASSIGNMENTS_DELETE",
    "ROLE_ASSIGNMENTS_READ",
    "ROLE_ASSIGNMENTS_WRITE",
    "RbacService",
    "StoredAssignment",
    "StoredDenyAssignment",
    "StoredRoleDefinition",
    "assignment_id",
    "everyone",
    "iso_time",
    "permission_json",
]

ROLE_ASSIGNMENTS_READ: Final = "Microsoft.Authorization/roleAssignments/read"
ROLE_ASSIGNMENTS_WRITE: Final = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENTS_DELETE: Final = "Microsoft.Authorization/roleAssignments/delete"
ROLE_DEFINITIONS_READ: Final = "Microsoft.Authorization/roleDefinitions/read"
ROLE_DEFINITIONS_WRITE: Final = "Microsoft.Authorization/roleDefinitions/write"
ROLE_DEFINITIONS_DELETE: Final = "Microsoft.Authorization/roleDefinitions/delete"
DENY_ASSIGNMENTS_READ: Final = "Microsoft.Authorization/denyAssignments/read"

PRINCIPAL_TYPES: Final = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
# Azure's limit of custom roles per tenant.
CUSTOM_ROLE_LIMIT: Final = 5000
# Azure's limit of assignable scopes per custom role (rbac-and-arm.md 1.6).
ASSIGNABLE_SCOPE_LIMIT: Final = 2000
# Keyless's bounds where Azure documents none: permission blocks and action patterns per custom role
# (built-in roles hold one or two blocks and at most a few hundred patterns), and the length of a
# role's description (the 2 KB Azure documents for a role assignment's).
PERMISSION_BLOCK_LIMIT: Final = 32
PATTERN_LIMIT: Final = 2000
DESCRIPTION_LIMIT: Final = 2048
# api-versions older than this cannot assign roles with data actions.
_DATA_ACTIONS_MIN_API = "2018-01-01-preview"
_PROVIDER = "/providers/Microsoft.Authorization/"
_VERSION = sa.select(rbac_state.c.version).where(rbac_state.c.id == 1)


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e7):07d}Z"


def _extension_id(scope: str, kind: str, name: str) -> str:
    prefix = "" if scope in ("", "/") else scope
    return f"{prefix}{_PROVIDER}{kind}/{name}"


def assignment_id(scope: str, name: str) -> str:
    """``{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`` (no double slash at '/')."""
    return _extension_id(scope, "roleAssignments", name)


# --------------------------------------------------------------------------------------------------
# Stored records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAssignment:
    name: str
    scope: str
    role_definition_name: str
    principal_id: str
    principal_type: str
    condition: str | None
    condition_version: str | None
    description: str | None
    delegated_managed_identity_resource_id: str | None
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str

    @property
    def id(self) -> str:
        return assignment_id(self.scope, self.name)

    def record(self) -> RoleAssignment:
        return RoleAssignment(
            name=self.name,
            scope=self.scope,
            role_definition_name=self.role_definition_name,
            principal_id=self.principal_id,
            principal_type=self.principal_type,
            condition=self.condition,
            condition_version=self.condition_version,
        )

    @classmethod
    def from_row(cls, row: Any) -> StoredAssignment:
        return cls(
            name=row.name,
            scope=row.scope,
            role_definition_name=row.role_definition_name,
            principal_id=row.principal_id,
            principal_type=row.principal_type,
            condition=row.condition,
            condition_version=row.condition_version,
            description=row.description,
            delegated_managed_identity_resource_id=row.delegated_managed_identity_resource_id,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )


@dataclass(frozen=True)
class StoredRoleDefinition:
    definition: RoleDefinition
    created_at: float | None = None
    created_by: str | None = None
    updated_at: float | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class StoredDenyAssignment:
    deny: DenyAssignment
    display_name: str
    description: str
    principal_types: dict[str, str]
    is_system_protected: bool


def permission_json(p: Permission) -> dict[str, Any]:
    out: dict[str, Any] = {
        "actions": list(p.actions),
        "notActions": list(p.not_actions),
        "dataActions": list(p.data_actions),
        "notDataActions": list(p.not_data_actions),
    }
    if p.condition:
        out["condition"] = p.condition
        out["conditionVersion"] = p.condition_version
    return out


def _permission_from_json(data: dict[str, Any]) -> Permission:
    return Permission(
        actions=tuple(data.get("actions") or ()),
        not_actions=tuple(data.get("notActions") or ()),
        data_actions=tuple(data.get("dataActions") or ()),
        not_data_actions=tuple(data.get("notDataActions") or ()),
        condition=data.get("condition"),
        condition_version=data.get("conditionVersion"),
    )


def _custom_role_from_row(row: Any) -> StoredRoleDefinition:
    definition = RoleDefinition(
        name=row.name,
        role_name=row.role_name,
        role_type="CustomRole",
        description=row.description,
        assignable_scopes=tuple(orjson.loads(row.assignable_scopes)),
        permissions=tuple(_permission_from_json(p) for p in orjson.loads(row.permissions)),
    )
    return StoredRoleDefinition(definition, row.created_at, row.created_by, row.updated_at, row.updated_by)


def _deny_from_row(row: Any) -> StoredDenyAssignment:
    principals = orjson.loads(row.principals)
    excluded = orjson.loads(row.exclude_principals)
    deny = DenyAssignment(
        name=row.name,
        scope=row.scope,
        permissions=_permission_from_json(orjson.loads(row.permissions)),
        principal_ids=tuple(p["id"] for p in principals),
        exclude_principal_ids=tuple(p["id"] for p in excluded),
        do_not_apply_to_child_scopes=bool(row.do_not_apply_to_child_scopes),
    )
    types = {p["id"].lower(): p.get("type", "") for p in [*principals, *excluded]}
    return StoredDenyAssignment(
        deny, row.deny_assignment_name, row.description, types, bool(row.is_system_protected)
    )


# --------------------------------------------------------------------------------------------------
# The per-replica snapshot
# --------------------------------------------------------------------------------------------------

_CLOSURE_LIMIT: Final = 1 << 16


class _Snapshot:
    """One replica's view at ``version``: the index plus the group graph (member -> direct groups)."""

    __slots__ = ("_closure", "index", "member_of", "version")

    def __init__(
        self, version: int, index: AuthorizationIndex, member_of: dict[str, tuple[str, ...]]
    ) -> None:
        self.version = version
        self.index = index
        self.member_of = member_of
        self._closure: dict[str, frozenset[str]] = {}

    def principals_of(self, object_id: str) -> frozenset[str]:
        """The principal itself and every group it is in, transitively (cycles are harmless)."""
        key = object_id.strip().lower()
        hit = self._closure.get(key)
        if hit is not None:
            return hit
        seen = {key}
        stack = [key]
        while stack:
            for group in self.member_of.get(stack.pop(), ()):
                if group not in seen:
                    seen.add(group)
                    stack.append(group)
        hit = frozenset(seen)
        if len(self._closure) >= _CLOSURE_LIMIT:
            self._closure.clear()
        self._closure[key] = hit
        return hit


# --------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------


class RbacService:
    """Role definitions, assignments, deny assignments and groups, and every access decision.

    It is also the resource manager's ``Authorizer`` (``check``).  ``enforce=False`` exists only for
    the benchmark (``KEYLESS_RBAC_ENFORCEMENT=off``): ``check`` then allows every caller.
    """

    def __init__(self, db: Database, *, role_assignment_limit: int = 4000, enforce: bool = True) -> None:
        self.db = db
        self.role_assignment_limit = role_assignment_limit
        self.enforce = enforce
        # Types of data-plane objects that are scopes of role assignments but not ARM resources
        # (lower-cased, e.g. "microsoft.keyvault/vaults/keys"); providers register theirs.
        self.data_scope_types: set[str] = set()
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    # ---------------------------------------------------------------------------------------------
    # Snapshot and version
    # ---------------------------------------------------------------------------------------------

    def current_version(self) -> int:
        """The shared version row, read now (not cached): one primary-key SELECT that sees every
        committed write, on the database's lean read path (no transaction, no pool round trip)."""
        row = self.db.query_one(_VERSION, {})
        return int(row.version) if row is not None else 0

    def snapshot(self) -> _Snapshot:
        """The current view: one primary-key read, and a rebuild only if another write happened."""
        version = self.current_version()
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        with self.db.read() as conn:
            fresh = self._load(conn, version)
        with self._lock:
            if self._snapshot is None or self._snapshot.version <= fresh.version:
                self._snapshot = fresh
        return fresh

    def _load(self, conn: sa.Connection, version: int) -> _Snapshot:
        roles: list[RoleDefinition] = list(BUILTIN_ROLES)
        roles.extend(_custom_role_from_row(r).definition for r in conn.execute(sa.select(role_definitions)))
        assignments = [
            StoredAssignment.from_row(r).record() for r in conn.execute(sa.select(role_assignments))
        ]
        denies = [_deny_from_row(r).deny for r in conn.execute(sa.select(deny_assignments))]
        member_of: dict[str, list[str]] = {}
        for member, group in groups.membership_edges(conn):
            member_of.setdefault(member, []).append(group)
        index = AuthorizationIndex.from_records(roles, assignments, denies)
        return _Snapshot(version, index, {k: tuple(v) for k, v in member_of.items()})

    @staticmethod
    def _bump(conn: sa.Connection) -> int:
        """First statement of every RBAC write: serializes writers; returns the new version."""
        updated = conn.execute(
            rbac_state.update().where(rbac_state.c.id == 1).values(version=rbac_state.c.version + 1)
        )
        if updated.rowcount == 0:
            conn.execute(rbac_state.insert().values(id=1, version=1))
        return int(conn.execute(_VERSION).scalar_one())

    def forget_scope(self, conn: sa.Connection, scope_key: str) -> None:
        """A deleted resource (or group) takes the role and deny assignments at and below its
        scope with it, as ARM deletes extension resources with their parent; a resource created
        again under the same name starts with none."""
        under = scope_key.rstrip("/") + "/"
        removed = 0
        for table in (role_assignments, deny_assignments):
            removed += conn.execute(
                table.delete().where(
                    sa.or_(
                        table.c.scope_key == scope_key, table.c.scope_key.startswith(under, autoescape=True)
                    )
                )
            ).rowcount
        if removed:
            # Other replicas (and this one) rebuild their index on their next check.
            self._bump(conn)

    def _applied(self, version: int, change: Callable[[AuthorizationIndex], object] | None) -> None:
        """After commit: apply this replica's own change in place when nothing else came between."""
        with self._lock:
            current = self._snapshot
            if current is None or current.version != version - 1:
                return  # the next check reloads
            if change is None:
                self._snapshot = None  # e.g. group graph changes: rebuild on the next check
                return
            change(current.index)
            current.version = version

    # ---------------------------------------------------------------------------------------------
    # Decisions
    # ---------------------------------------------------------------------------------------------

    def principals_of(self, object_id: str) -> frozenset[str]:
        return self.snapshot().principals_of(object_id)

    def decide(self, object_id: str, action: str, scope: str, *, data_action: bool = False) -> Decision:
        snap = self.snapshot()
        return snap.index.decide(snap.principals_of(object_id), action, scope, data_action=data_action)

    def check(self, caller: Caller, action: str, scope: str) -> None:
        """The resource manager's authorizer: raise 403 ``AuthorizationFailed`` unless allowed."""
        if not self.enforce:
            return
        snap = self.snapshot()
        principal_ids = snap.principals_of(caller.object_id)
        try:
            if snap.index.decide(principal_ids, action, scope, data_action=False).allowed:
                return
        except ScopeOutOfBounds:
            raise errors.invalid_scope(scope) from None
        # Denied (the slow path).  ARM resolves the subscription before it authorizes: an unknown
        # or malformed one is a 404 / 400 for everybody, not a 403.
        self._require_known_subscription(scope)
        # A full explanation picks ARM's message variant (an ABAC condition blocked a grant).
        why = snap.index.explain(principal_ids, action, scope, data_action=False)
        conditional = not why.deny_assignments and any(
            m.blocked_by_condition for m in why.non_matching_assignments
        )
        raise errors.authorization_failed(caller.object_id, action, scope, condition=conditional)

    def _require_known_subscription(self, scope: str) -> None:
        parts = id_segments(scope) or []
        if len(parts) < 2 or parts[0].lower() != "subscriptions":
            return
        if not is_guid(parts[1]):
            raise arm_errors.invalid_subscription_id(parts[1])
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(subscriptions.c.subscription_id).where(
                    sa.func.lower(subscriptions.c.subscription_id) == parts[1].lower()
                )
            ).first()
        if found is None:
            raise arm_errors.subscription_not_found(parts[1])

    def allowed(self, caller: Caller, action: str, scope: str) -> bool:
        try:
            self.check(caller, action, scope)
        except ArmError:
            return False
        return True

    def readable(self, caller: Caller) -> tuple[frozenset[str], Callable[[str, str], bool]] | None:
        """For lists that answer only what ``caller`` may read (``keyless.arm.visibility``).

        Returns the normalized scopes of the role assignments that apply to the caller (its own and
        its groups'; nothing outside them can be readable) and ``allows(action, scope)``, deciding
        on that same snapshot (no database read per item).  None when RBAC is not enforced.
        """
        if not self.enforce:
            return None
        snap = self.snapshot()
        principal_ids = snap.principals_of(caller.object_id)
        scopes = frozenset(
            normalize_scope(a.scope)
            for a in snap.index.assignments()
            if a.principal_id.strip().lower() in principal_ids
        )

        def allows(action: str, scope: str) -> bool:
            try:
                return snap.index.decide(principal_ids, action, scope, data_action=False).allowed
            except ScopeOutOfBounds:
                return False

        return scopes, allows

    def authorize_data_action(
        self, caller: Caller, action: str, scope: str, attributes: ConditionAttributes | None = None
    ) -> Decision:
        """The data-plane hook (Key Vault, Storage): may ``caller`` perform data action ``action``
        on ``scope`` (the resource id, e.g. ``.../storageAccounts/st1/blobServices/default/
        containers/c1``)?

        ``caller`` is the ``Caller`` the shared ``TokenValidator`` returned for the request's bearer
        token.  The answer is the evaluator's ``Decision``: ``allowed``, and on a denial the matched
        deny assignment (``deny_assignments``) for the service's own error record (Key Vault's
        ``ForbiddenByRbac`` text names the assignment or "(not found)", ``DenyAssignmentId`` and a
        ``DecisionReason``).  Only ``DataActions``/``NotDataActions`` grant here: an Owner's ``*``
        never reads a blob.  Nothing is raised; mapping to the data plane's error is the caller's
        job.  It reads the shared version row like ``check``, so a role granted a moment ago counts.

        ``attributes`` are the request's, for the ABAC conditions of role assignments
        (``keyless.rbac.condition_eval``: e.g. ``MappingAttributes({CONTAINER_NAME: "c1", BLOB_PATH:
        "a/b.txt", **blob_tag_values(tags)}, {SUB_OPERATION: "Blob.List"})``).  A conditional
        assignment grants only when its condition holds for them; with None (Key Vault) only when
        its ``ActionMatches`` parts alone make it hold.
        """
        snap = self.snapshot()
        try:
            return snap.index.decide(
                snap.principals_of(caller.object_id), action, scope, data_action=True, attributes=attributes
            )
        except ScopeOutOfBounds:
            raise errors.invalid_scope(scope) from None

    def explain(
        self,
        caller: Caller,
        principal_id: str | None,
        action: str,
        scope: str,
        *,
        data_action: bool = False,
        attributes: ConditionAttributes | None = None,
    ) -> tuple[str, str, Decision]:
        """Why ``principal_id`` (default: the caller) may or may not perform ``action`` at ``scope``.

        Explaining someone else's access reveals their role assignments, so it needs
        ``roleAssignments/read`` at the scope.  Returns (principal id, principal type, decision).
        ``action`` must be shaped as an action (at most ``MAX_ACTION_LENGTH`` characters), else 400.
        ``attributes``: the request attributes to evaluate role assignment conditions with.
        """
        canonical = self._well_formed_scope(scope)
        problem = pattern_problem(action)
        if problem is not None:
            raise errors.invalid_action(action, problem)
        target = (principal_id or caller.object_id).lower()
        if not is_guid(target):
            raise errors.invalid_principal_id(principal_id or "")
        if target != caller.object_id.lower():
            self.check(caller, ROLE_ASSIGNMENTS_READ, canonical)
        with self.db.read() as conn:
            kind = self._principal_type(conn, target)
        if kind is None:
            raise errors.principal_not_found(target, caller.tenant_id)
        snap = self.snapshot()
        decision = snap.index.explain(
            snap.principals_of(target), action, canonical, data_action=data_action, attributes=attributes
        )
        return target, kind, decision

    def permissions_for(self, caller: Caller, scope: str) -> list[Permission]:
        """The caller's own effective permission blocks at an existing scope (no role needed)."""
        with self.db.read() as conn:
            canonical = self.resolve_scope(conn, scope)
        snap = self.snapshot()
        return snap.index.permissions_for(snap.principals_of(caller.object_id), canonical)

    # ---------------------------------------------------------------------------------------------
    # Scopes
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def _parse_scope(scope: str) -> ResourceId | None:
        """The scope as the resource manager parses it (``keyless.arm.ids``): None for the root '/',
        else its id; 400 ``InvalidScope`` for anything else (nothing is stripped, and nothing
        longer or deeper than an id can be is looked at further)."""
        segments = id_segments(scope, max_length=MAX_ID_LENGTH)
        if segments == []:
            return None
        rid = parse_resource_id(scope) if segments is not None else None
        if rid is None:
            raise errors.invalid_scope(scope)
        return rid

    @classmethod
    def _well_formed_scope(cls, scope: str) -> str:
        rid = cls._parse_scope(scope)
        return "/" if rid is None else str(rid)

    def resolve_scope(self, conn: sa.Connection, scope: str) -> str:
        """The canonical form of an existing scope ('/', a subscription, group or resource), or a 4xx."""
        rid = self._parse_scope(scope)
        if rid is None:
            return "/"
        if not is_guid(rid.subscription_id):
            raise arm_errors.invalid_subscription_id(rid.subscription_id)
        sub = conn.execute(
            sa.select(subscriptions.c.subscription_id).where(
                sa.func.lower(subscriptions.c.subscription_id) == rid.subscription_id.lower()
            )
        ).first()
        if sub is None:
            raise arm_errors.subscription_not_found(rid.subscription_id)
        if rid.resource_group is None:
            return f"/subscriptions/{sub.subscription_id}"
        group = rid.group_id
        assert group is not None
        group_row = conn.execute(
            sa.select(resources.c.resource_id).where(resources.c.id_key == group.key)
        ).first()
        if group_row is None:
            raise arm_errors.resource_group_not_found(rid.resource_group)
        if not rid.types:
            return str(group_row.resource_id)
        row = conn.execute(sa.select(resources.c.resource_id).where(resources.c.id_key == rid.key)).first()
        if row is None and len(rid.types) > 1 and rid.type_name.lower() in self.data_scope_types:
            # A data-plane object (a vault's key or secret, a storage container): assignable while
            # the nearest stored ancestor exists, through ancestors that are data scopes themselves
            # (a container's ``blobServices/default``).
            ancestor = rid.parent
            while ancestor is not None and len(ancestor.types) >= 1:
                held = conn.execute(
                    sa.select(resources.c.resource_id).where(resources.c.id_key == ancestor.key)
                ).first()
                if held is not None:
                    tail = "".join(
                        f"/{t}/{n}"
                        for t, n in zip(
                            rid.types[len(ancestor.types) :], rid.names[len(ancestor.names) :], strict=True
                        )
                    )
                    return f"{held.resource_id}{tail}"
                if ancestor.type_name.lower() not in self.data_scope_types:
                    break
                ancestor = ancestor.parent
        if row is None:
            raise arm_errors.resource_not_found(rid.type_name, rid.name, rid.resource_group)
        return str(row.resource_id)

    @staticmethod
    def _subscription_of(scope: str) -> str | None:
        parts = normalize_scope(scope).split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else None

    # ---------------------------------------------------------------------------------------------
    # Directory lookups (principals and groups)
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def _principal_type(conn: sa.Connection, object_id: str) -> str | None:
        return groups.kind_of(conn, object_id)

    # ---------------------------------------------------------------------------------------------
    # Role definitions
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def _custom_role(conn: sa.Connection, tenant_id: str, guid: str) -> StoredRoleDefinition | None:
        row = conn.execute(
            sa.select(role_definitions).where(
                role_definitions.c.name == guid.lower(), role_definitions.c.tenant_id == tenant_id
            )
        ).first()
        return _custom_role_from_row(row) if row is not None else None

    def role_definition(self, tenant_id: str, guid: str) -> StoredRoleDefinition | None:
        builtin = get_builtin_role(guid)
        if builtin is not None:
            return StoredRoleDefinition(builtin)
        with self.db.read() as conn:
            return self._custom_role(conn, tenant_id, guid)

    def get_role_definition(self, caller: Caller, scope: str, guid: str) -> StoredRoleDefinition:
        canonical = self._well_formed_scope(scope)
        if canonical != "/":
            self.check(caller, ROLE_DEFINITIONS_READ, canonical)
        found = self.role_definition(caller.tenant_id, guid) if is_guid(guid) else None
        if found is None:
            raise errors.role_definition_does_not_exist(guid, 404)
        return found

    def list_role_definitions(
        self,
        caller: Caller,
        scope: str,
        *,
        role_name: str | None = None,
        role_type: str | None = None,
    ) -> list[StoredRoleDefinition]:
        """The roles assignable at ``scope`` (every built-in; custom roles whose assignableScopes cover it).

        At the root scope '/' the tenant's catalog is readable by any principal of the tenant, as
        Azure's is; below it the caller needs ``roleDefinitions/read`` at the scope.
        """
        canonical = self._well_formed_scope(scope)
        if canonical != "/":
            self.check(caller, ROLE_DEFINITIONS_READ, canonical)
            with self.db.read() as conn:
                canonical = self.resolve_scope(conn, canonical)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(role_definitions)
                .where(role_definitions.c.tenant_id == caller.tenant_id)
                .order_by(role_definitions.c.role_name_key)
            ).all()
        found = [StoredRoleDefinition(r) for r in BUILTIN_ROLES]
        for row in rows:
            custom = _custom_role_from_row(row)
            if canonical == "/" or role_assignable_at(custom.definition, canonical):
                found.append(custom)
        if role_name is not None:
            found = [r for r in found if r.definition.role_name.lower() == role_name.strip().lower()]
        if role_type is not None:
            found = [r for r in found if r.definition.role_type.lower() == role_type.strip().lower()]
        return found

    def put_role_definition(
        self, caller: Caller, scope: str, guid: str, properties: dict[str, Any]
    ) -> tuple[bool, StoredRoleDefinition]:
        """Create or update a custom role; needs ``roleDefinitions/write`` at every assignable scope."""
        if not is_guid(guid):
            raise errors.invalid_role_definition_id(guid)
        if get_builtin_role(guid) is not None:
            raise errors.built_in_role_read_only(guid)
        role_name, description, scopes, permissions = _parse_custom_role(properties)
        for assignable in scopes:
            if self._well_formed_scope(assignable) == "/":
                raise errors.invalid_assignable_scope(assignable)
        canonical_scopes: list[str] = []
        for assignable in scopes:
            self.check(caller, ROLE_DEFINITIONS_WRITE, self._well_formed_scope(assignable))
        now = time.time()
        key = guid.lower()
        self._well_formed_scope(scope)
        with self.db.write() as conn:
            version = self._bump(conn)
            # The scope the request names must exist, as for any extension resource (ARM's 404).
            self.resolve_scope(conn, scope)
            seen: set[str] = set()
            for assignable in scopes:
                canonical = self.resolve_scope(conn, assignable)
                if canonical.lower() not in seen:
                    seen.add(canonical.lower())
                    canonical_scopes.append(canonical)
            existing = conn.execute(sa.select(role_definitions).where(role_definitions.c.name == key)).first()
            if existing is not None and existing.tenant_id != caller.tenant_id:
                raise errors.role_definition_does_not_exist(guid)
            if existing is not None:
                for old_scope in orjson.loads(existing.assignable_scopes):
                    self.check(caller, ROLE_DEFINITIONS_WRITE, old_scope)
            clash = conn.execute(
                sa.select(role_definitions.c.name).where(
                    role_definitions.c.tenant_id == caller.tenant_id,
                    role_definitions.c.role_name_key == role_name.lower(),
                    role_definitions.c.name != key,
                )
            ).first()
            if clash is not None:
                raise errors.role_definition_with_same_name_exists()
            values = {
                "role_name": role_name,
                "role_name_key": role_name.lower(),
                "description": description,
                "assignable_scopes": orjson.dumps(canonical_scopes).decode(),
                "permissions": orjson.dumps([permission_json(p) for p in permissions]).decode(),
                "updated_at": now,
                "updated_by": caller.object_id,
            }
            if existing is None:
                count = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(role_definitions)
                    .where(role_definitions.c.tenant_id == caller.tenant_id)
                ).scalar_one()
                if count >= CUSTOM_ROLE_LIMIT:
                    raise errors.role_definition_limit_exceeded()
                conn.execute(
                    role_definitions.insert().values(
                        name=key,
                        tenant_id=caller.tenant_id,
                        created_at=now,
                        created_by=caller.object_id,
                        **values,
                    )
                )
            else:
                conn.execute(role_definitions.update().where(role_definitions.c.name == key).values(**values))
            row = conn.execute(sa.select(role_definitions).where(role_definitions.c.name == key)).one()
        stored = _custom_role_from_row(row)
        self._applied(version, lambda index: index.put_role_definition(stored.definition))
        return existing is None, stored

    def delete_role_definition(self, caller: Caller, scope: str, guid: str) -> StoredRoleDefinition | None:
        """Delete a custom role (not while assignments use it); None when there was none."""
        self._well_formed_scope(scope)
        if not is_guid(guid):
            raise errors.invalid_role_definition_id(guid)
        if get_builtin_role(guid) is not None:
            raise errors.built_in_role_read_only(guid)
        with self.db.read() as conn:
            self.resolve_scope(conn, scope)  # the scope the request names must exist (ARM's 404)
            found = self._custom_role(conn, caller.tenant_id, guid)
        if found is None:
            return None
        for assignable in found.definition.assignable_scopes:
            self.check(caller, ROLE_DEFINITIONS_DELETE, assignable)
        try:
            with self.db.write() as conn:
                version = self._bump(conn)
                used = conn.execute(
                    sa.select(role_assignments.c.name)
                    .where(role_assignments.c.role_definition_name == guid.lower())
                    .limit(1)
                ).first()
                if used is not None:
                    raise errors.role_definition_has_assignments()
                gone = conn.execute(
                    role_definitions.delete().where(
                        role_definitions.c.name == guid.lower(),
                        role_definitions.c.tenant_id == caller.tenant_id,
                    )
                )
                if gone.rowcount == 0:
                    raise _NothingChanged()
        except _NothingChanged:
            return None
        self._applied(version, lambda index: index.remove_role_definition(guid))
        return found

    # ---------------------------------------------------------------------------------------------
    # Role assignments
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def _assignment_by_name(conn: sa.Connection, name: str) -> StoredAssignment | None:
        row = conn.execute(sa.select(role_assignments).where(role_assignments.c.name == name.lower())).first()
        return StoredAssignment.from_row(row) if row is not None else None

    def _assignment_at(
        self, caller: Caller, scope: str, name: str, action: str
    ) -> tuple[str, StoredAssignment | None]:
        """(the resolved scope, the assignment ``name`` at exactly that scope or None), once the
        caller may perform ``action`` on it."""
        canonical = self._well_formed_scope(scope)
        if not is_guid(name):
            raise errors.invalid_role_assignment_id(name)
        self.check(caller, action, assignment_id(canonical, name))
        with self.db.read() as conn:
            canonical = self.resolve_scope(conn, canonical)
            found = self._assignment_by_name(conn, name)
        if found is None or normalize_scope(found.scope) != normalize_scope(canonical):
            return canonical, None
        return canonical, found

    def get_assignment(self, caller: Caller, scope: str, name: str) -> StoredAssignment:
        _, found = self._assignment_at(caller, scope, name, ROLE_ASSIGNMENTS_READ)
        if found is None:
            raise errors.role_assignment_not_found(name)
        return found

    def create_assignment(
        self,
        caller: Caller,
        scope: str,
        name: str,
        properties: dict[str, Any],
        *,
        api_version: str = "2022-04-01",
    ) -> tuple[bool, StoredAssignment]:
        """PUT a role assignment: (created, assignment).  Every failure changes nothing."""
        canonical = self._well_formed_scope(scope)
        if not is_guid(name):
            raise errors.invalid_role_assignment_id(name)
        # ARM authorizes before the request reaches the provider: a caller without the right gets
        # 403 whatever the body says (so "does the scope exist?" is never revealed to it).
        self.check(caller, ROLE_ASSIGNMENTS_WRITE, assignment_id(canonical, name))
        role_definition_id = properties.get("roleDefinitionId")
        principal_id = properties.get("principalId")
        if not isinstance(role_definition_id, str) or not role_definition_id.strip():
            raise arm_errors.invalid_request_content(
                "Required property 'roleDefinitionId' not found in JSON."
            )
        if not isinstance(principal_id, str) or not principal_id.strip():
            raise arm_errors.invalid_request_content("Required property 'principalId' not found in JSON.")
        if not is_guid(principal_id.strip()):
            raise errors.invalid_principal_id(principal_id)
        role_guid = _role_guid(role_definition_id)
        given_type = properties.get("principalType")
        if given_type is not None and (not isinstance(given_type, str) or given_type not in PRINCIPAL_TYPES):
            raise errors.invalid_principal_type(str(given_type))
        condition, condition_version = _condition(properties)
        description = properties.get("description")
        if description is not None and not isinstance(description, str):
            raise arm_errors.invalid_request_content(
                "Error converting value to type 'string'. Path 'description'."
            )
        delegated = properties.get("delegatedManagedIdentityResourceId")
        if delegated is not None and not isinstance(delegated, str):
            raise arm_errors.invalid_request_content(
                "Error converting value to type 'string'. Path 'delegatedManagedIdentityResourceId'."
            )
        principal = principal_id.strip().lower()
        now = time.time()
        with self.db.write() as conn:
            version = self._bump(conn)
            canonical = self.resolve_scope(conn, canonical)
            role = self._assignable_role(conn, caller.tenant_id, role_guid, canonical)
            if api_version < _DATA_ACTIONS_MIN_API and any(
                p.data_actions or p.not_data_actions for p in role.permissions
            ):
                raise errors.unsupported_api_version_for_data_actions(api_version)
            actual_type = self._principal_type(conn, principal)
            if actual_type is None:
                # With principalType given ARM skips the directory lookup, for a principal made a
                # moment ago and not yet replicated (azure-docs role-assignments-template.md, "New
                # service principal"; Azure/AgentBaker#8251): stored as the caller typed it.
                if given_type is None:
                    raise errors.principal_not_found(principal, caller.tenant_id)
                actual_type = given_type
            if given_type is not None and given_type != actual_type:
                raise errors.unmatched_principal_type(principal, actual_type, given_type)
            existing = self._assignment_by_name(conn, name)
            if existing is not None:
                same = (
                    normalize_scope(existing.scope) == normalize_scope(canonical)
                    and existing.principal_id.lower() == principal
                    and role_key(existing.role_definition_name) == role_key(role.name)
                )
                if not same:
                    raise errors.role_assignment_update_not_permitted()
                conn.execute(
                    role_assignments.update()
                    .where(role_assignments.c.name == existing.name)
                    .values(
                        condition=condition,
                        condition_version=condition_version,
                        description=description,
                        delegated_managed_identity_resource_id=delegated,
                        updated_at=now,
                        updated_by=caller.object_id,
                    )
                )
            else:
                duplicate = conn.execute(
                    sa.select(role_assignments.c.name).where(
                        role_assignments.c.scope_key == canonical.lower(),
                        role_assignments.c.role_definition_name == role.name.lower(),
                        role_assignments.c.principal_id == principal,
                    )
                ).first()
                if duplicate is not None:
                    raise errors.role_assignment_exists(duplicate.name)
                subscription = self._subscription_of(canonical)
                if subscription is not None:
                    prefix = f"/subscriptions/{subscription}"
                    count = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(role_assignments)
                        .where(
                            sa.or_(
                                role_assignments.c.scope_key == prefix,
                                role_assignments.c.scope_key.startswith(prefix + "/", autoescape=True),
                            )
                        )
                    ).scalar_one()
                    if count >= self.role_assignment_limit:
                        raise errors.role_assignment_limit_exceeded()
                conn.execute(
                    role_assignments.insert().values(
                        id_key=assignment_id(canonical, name.lower()).lower(),
                        name=name.lower(),
                        scope=canonical,
                        scope_key=canonical.lower(),
                        role_definition_name=role.name.lower(),
                        principal_id=principal,
                        principal_type=actual_type,
                        condition=condition,
                        condition_version=condition_version,
                        description=description,
                        delegated_managed_identity_resource_id=delegated,
                        created_at=now,
                        created_by=caller.object_id,
                        updated_at=now,
                        updated_by=caller.object_id,
                    )
                )
            stored = self._assignment_by_name(conn, name)
        assert stored is not None
        self._applied(version, lambda index: index.put_assignment(stored.record()))
        return existing is None, stored

    def _assignable_role(self, conn: sa.Connection, tenant_id: str, guid: str, scope: str) -> RoleDefinition:
        builtin = get_builtin_role(guid)
        if builtin is not None:
            return builtin
        custom = self._custom_role(conn, tenant_id, guid)
        # A custom role is not visible outside its assignableScopes: Azure answers "does not exist".
        if custom is None or not role_assignable_at(custom.definition, scope):
            raise errors.role_definition_does_not_exist(guid)
        return custom.definition

    def delete_assignment(self, caller: Caller, scope: str, name: str) -> StoredAssignment | None:
        """DELETE a role assignment: the deleted one, or None when there was none (ARM's 204)."""
        canonical, found = self._assignment_at(caller, scope, name, ROLE_ASSIGNMENTS_DELETE)
        if found is None:
            return None
        try:
            with self.db.write() as conn:
                version = self._bump(conn)
                current = self._assignment_by_name(conn, name)
                if current is None or normalize_scope(current.scope) != normalize_scope(canonical):
                    raise _NothingChanged()
                self._guard_last_admin(conn, caller.tenant_id, current)
                conn.execute(role_assignments.delete().where(role_assignments.c.name == current.name))
        except _NothingChanged:
            return None
        self._applied(version, lambda index: index.remove_assignment(current.name))
        return current

    def _guard_last_admin(self, conn: sa.Connection, tenant_id: str, doomed: StoredAssignment) -> None:
        """Keep at least one role-assignment writer at a subscription's own scope: an unconditional
        one, or one whose condition does not target ``roleAssignments/write`` (which, as in Azure,
        then grants it)."""
        scope = normalize_scope(doomed.scope)
        if self._subscription_of(scope) is None or scope.count("/") != 2:
            return
        rows = conn.execute(sa.select(role_assignments).where(role_assignments.c.scope_key == scope)).all()
        roles: dict[str, RoleDefinition] = {}
        for row in rows:
            found = get_builtin_role(row.role_definition_name)
            if found is None:
                custom = self._custom_role(conn, tenant_id, row.role_definition_name)
                found = custom.definition if custom is not None else None
            if found is not None:
                roles[role_key(found.name)] = found
        admins: list[str] = []
        for row in rows:
            record = StoredAssignment.from_row(row).record()
            alone = AuthorizationIndex.from_records(roles.values(), [record])
            if alone.decide(record.principal_id, ROLE_ASSIGNMENTS_WRITE, scope, data_action=False).allowed:
                admins.append(record.name.lower())
        if admins == [doomed.name.lower()]:
            raise errors.last_rbac_admin_assignment()

    def list_assignments(
        self,
        caller: Caller,
        scope: str,
        *,
        at_scope: bool = False,
        principal_id: str | None = None,
        assigned_to: str | None = None,
    ) -> list[StoredAssignment]:
        """Role assignments at, above and below ``scope`` (``at_scope``: at or above only).

        ``principal_id`` keeps one principal's; ``assigned_to`` also its groups' (transitively).
        Below the root scope the caller needs ``roleAssignments/read`` at the scope; at the root the
        list holds only the assignments the caller may read.
        """
        canonical = self._well_formed_scope(scope)
        for value in (principal_id, assigned_to):
            if value is not None and not is_guid(value):
                raise errors.invalid_principal_id(value)
        if canonical != "/":
            self.check(caller, ROLE_ASSIGNMENTS_READ, canonical)
        with self.db.read() as conn:
            canonical = self.resolve_scope(conn, canonical)
        key = normalize_scope(canonical)
        ancestors = list(scope_ancestors(key))
        conditions: list[Any] = [role_assignments.c.scope_key.in_(ancestors)]
        if not at_scope:
            below = role_assignments.c.scope_key.startswith(key.rstrip("/") + "/", autoescape=True)
            conditions.append(below)
        query = sa.select(role_assignments).where(sa.or_(*conditions))
        wanted: set[str] | None = None
        if principal_id is not None:
            wanted = {principal_id.strip().lower()}
        if assigned_to is not None:
            groups = self.principals_of(assigned_to)
            wanted = set(groups) if wanted is None else wanted & set(groups)
        if wanted is not None:
            query = query.where(role_assignments.c.principal_id.in_(sorted(wanted)))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(role_assignments.c.id_key)).all()
        found = [StoredAssignment.from_row(r) for r in rows]
        if canonical == "/":
            found = [a for a in found if self.allowed(caller, ROLE_ASSIGNMENTS_READ, a.id)]
        return found

    # ---------------------------------------------------------------------------------------------
    # Deny assignments (created by the system only, as in Azure)
    # ---------------------------------------------------------------------------------------------

    def create_deny_assignment(
        self,
        scope: str,
        display_name: str,
        permissions: Permission,
        principals: Iterable[tuple[str, str]],
        *,
        exclude_principals: Iterable[tuple[str, str]] = (),
        description: str = "",
        do_not_apply_to_child_scopes: bool = False,
        is_system_protected: bool = True,
        name: str | None = None,
    ) -> StoredDenyAssignment:
        """System-only (no caller): deny ``permissions`` to ``principals`` ((id, type) pairs; the
        zero GUID with type ``SystemDefined`` means everyone) at ``scope`` and below."""
        if not (permissions.actions or permissions.data_actions):
            raise errors.invalid_role_definition("A deny assignment needs Actions or DataActions.")
        listed = [{"id": i.lower(), "type": t} for i, t in principals]
        if not listed:
            raise errors.invalid_role_definition("A deny assignment needs at least one principal.")
        excluded = [{"id": i.lower(), "type": t} for i, t in exclude_principals]
        key = (name or str(uuid.uuid4())).lower()
        with self.db.write() as conn:
            version = self._bump(conn)
            canonical = self.resolve_scope(conn, scope)
            conn.execute(
                deny_assignments.insert().values(
                    name=key,
                    deny_assignment_name=display_name,
                    description=description,
                    scope=canonical,
                    scope_key=canonical.lower(),
                    permissions=orjson.dumps(permission_json(permissions)).decode(),
                    principals=orjson.dumps(listed).decode(),
                    exclude_principals=orjson.dumps(excluded).decode(),
                    do_not_apply_to_child_scopes=do_not_apply_to_child_scopes,
                    is_system_protected=is_system_protected,
                    created_at=time.time(),
                )
            )
            row = conn.execute(sa.select(deny_assignments).where(deny_assignments.c.name == key)).one()
        stored = _deny_from_row(row)
        self._applied(version, lambda index: index.put_deny_assignment(stored.deny))
        return stored

    def delete_deny_assignment(self, name: str) -> bool:
        """System-only."""
        try:
            with self.db.write() as conn:
                version = self._bump(conn)
                gone = conn.execute(deny_assignments.delete().where(deny_assignments.c.name == name.lower()))
                if gone.rowcount == 0:
                    raise _NothingChanged()
        except _NothingChanged:
            return False
        self._applied(version, lambda index: index.remove_deny_assignment(name))
        return True

    def list_deny_assignments(self, caller: Caller, scope: str) -> list[StoredDenyAssignment]:
        """Deny assignments at, above and below ``scope``; needs ``denyAssignments/read`` there."""
        canonical = self._well_formed_scope(scope)
        if canonical != "/":
            self.check(caller, DENY_ASSIGNMENTS_READ, canonical)
        with self.db.read() as conn:
            canonical = self.resolve_scope(conn, canonical)
            key = normalize_scope(canonical)
            rows = conn.execute(
                sa.select(deny_assignments)
                .where(
                    sa.or_(
                        deny_assignments.c.scope_key.in_(list(scope_ancestors(key))),
                        deny_assignments.c.scope_key.startswith(key.rstrip("/") + "/", autoescape=True),
                    )
                )
                .order_by(deny_assignments.c.name)
            ).all()
        found = [_deny_from_row(r) for r in rows]
        if canonical == "/":
            found = [d for d in found if self.allowed(caller, DENY_ASSIGNMENTS_READ, d.deny.scope)]
        return found

    def get_deny_assignment(self, caller: Caller, scope: str, name: str) -> StoredDenyAssignment | None:
        for deny in self.list_deny_assignments(caller, scope):
            if deny.deny.name.lower() == name.lower() and normalize_scope(deny.deny.scope) == normalize_scope(
                self._well_formed_scope(scope)
            ):
                return deny
        return None

    # ---------------------------------------------------------------------------------------------
    # Groups
    # ---------------------------------------------------------------------------------------------

    @contextmanager
    def membership_change(self) -> Iterator[sa.Connection]:
        """The write transaction of a change to group membership (the groups themselves live in
        ``keyless.directory.groups``): it bumps the version first, as every RBAC write does, and
        after commit makes this replica rebuild its group graph on the next check."""
        with self.db.write() as conn:
            version = self._bump(conn)
            yield conn
        self._applied(version, None)

    # ---------------------------------------------------------------------------------------------
    # Instance facts
    # ---------------------------------------------------------------------------------------------

    def admin_object_id(self) -> str | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(instance_settings.c.value).where(instance_settings.c.key == "admin_object_id")
            ).first()
        return row.value if row is not None else None


class _NothingChanged(Exception):
    """Rolls a write transaction (and its version bump) back when it turned out to be a no-op."""


# --------------------------------------------------------------------------------------------------
# Request parsing (domain rules, no HTTP)
# --------------------------------------------------------------------------------------------------


def _role_guid(role_definition_id: str) -> str:
    """The GUID of ``/[subscriptions/{s}/]providers/Microsoft.Authorization/roleDefinitions/{guid}``."""
    text = role_definition_id.strip()
    lowered = text.lower()
    marker = "/providers/microsoft.authorization/roledefinitions/"
    at = lowered.rfind(marker)
    if at < 0:
        raise errors.invalid_role_definition_id(role_definition_id)
    prefix, guid = text[:at], text[at + len(marker) :]
    if not is_guid(guid):
        raise errors.invalid_role_definition_id(role_definition_id)
    if prefix:
        rid = parse_resource_id(prefix)
        if rid is None or not is_guid(rid.subscription_id):
            raise errors.invalid_role_definition_id(role_definition_id)
    return guid.lower()


def _condition(properties: dict[str, Any]) -> tuple[str | None, str | None]:
    condition = properties.get("condition")
    version = properties.get("conditionVersion")
    if condition is not None and not isinstance(condition, str):
        raise arm_errors.invalid_request_content("Error converting value to type 'string'. Path 'condition'.")
    if version is not None and not isinstance(version, str):
        raise arm_errors.invalid_request_content(
            "Error converting value to type 'string'. Path 'conditionVersion'."
        )
    if condition is not None and not condition.strip():
        condition = None
    if condition is None:
        return None, None
    try:
        # The whole grammar, the version (2.0 only) and the 8 KB limit (keyless.rbac.conditions).
        parse_condition(condition, version)
    except ConditionError:
        raise errors.invalid_role_assignment_condition() from None
    # Stored, never evaluated yet: the evaluator treats it as "not satisfied" (it never grants).
    return condition, version or SUPPORTED_CONDITION_VERSION


def _string_list(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise arm_errors.invalid_request_content(
            f"Error converting value to type 'List[string]'. Path '{path}'."
        )
    return tuple(value)


def _patterns(value: Any, path: str) -> tuple[str, ...]:
    """One of a permission block's four lists, every pattern validated as Azure does on write."""
    patterns = _string_list(value, path)
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            raise errors.invalid_action_or_not_action(pattern, problem)
    return patterns


def _parse_custom_role(properties: dict[str, Any]) -> tuple[str, str, list[str], list[Permission]]:
    role_name = properties.get("roleName")
    if not isinstance(role_name, str) or not role_name.strip():
        raise errors.invalid_role_definition("The role definition must have a roleName.")
    if len(role_name) > 512:
        raise errors.invalid_role_definition("The roleName is longer than 512 characters.")
    role_type = properties.get("type")
    if role_type is not None and str(role_type).lower() != "customrole":
        raise errors.invalid_role_definition(f"The role type '{role_type}' is not valid; use 'CustomRole'.")
    description = properties.get("description") or ""
    if not isinstance(description, str):
        raise arm_errors.invalid_request_content(
            "Error converting value to type 'string'. Path 'description'."
        )
    if len(description) > DESCRIPTION_LIMIT:
        raise errors.invalid_role_definition(
            f"The description is longer than {DESCRIPTION_LIMIT} characters."
        )
    scopes = list(_string_list(properties.get("assignableScopes"), "properties.assignableScopes"))
    if not scopes:
        raise errors.invalid_role_definition("The role definition must have at least one assignable scope.")
    if len(scopes) > ASSIGNABLE_SCOPE_LIMIT:
        raise errors.invalid_role_definition(
            f"A role definition can have at most {ASSIGNABLE_SCOPE_LIMIT} assignable scopes."
        )
    raw = properties.get("permissions")
    if not isinstance(raw, list) or not raw:
        raise errors.invalid_role_definition("The role definition must have at least one permission.")
    if len(raw) > PERMISSION_BLOCK_LIMIT:
        raise errors.invalid_role_definition(
            f"A role definition can have at most {PERMISSION_BLOCK_LIMIT} permissions."
        )
    counted = sum(
        len(item.get(key) or ()) if isinstance(item, dict) and isinstance(item.get(key), list) else 0
        for item in raw
        for key in ("actions", "notActions", "dataActions", "notDataActions")
    )
    if counted > PATTERN_LIMIT:
        raise errors.invalid_role_definition(
            f"A role definition can have at most {PATTERN_LIMIT} actions, notActions, dataActions and "
            "notDataActions in all."
        )
    permissions: list[Permission] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise arm_errors.invalid_request_content(
                f"Error converting value to type 'Permission'. Path 'properties.permissions[{i}]'."
            )
        path = f"properties.permissions[{i}]"
        permissions.append(
            Permission(
                actions=_patterns(item.get("actions"), f"{path}.actions"),
                not_actions=_patterns(item.get("notActions"), f"{path}.notActions"),
                data_actions=_patterns(item.get("dataActions"), f"{path}.dataActions"),
                not_data_actions=_patterns(item.get("notDataActions"), f"{path}.notDataActions"),
            )
        )
    if not any(p.actions or p.data_actions for p in permissions):
        raise errors.invalid_role_definition(
            "The role definition must grant at least one action or data action."
        )
    return role_name.strip(), description, scopes, permissions


def everyone() -> tuple[str, str]:
    """The deny-assignment principal meaning "all principals"."""
    return (EVERYONE_PRINCIPAL_ID, "SystemDefined")
