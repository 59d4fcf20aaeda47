"""Pure-domain Azure RBAC evaluation: records, scope helpers, action matching and an index.

Semantics implemented here (each rule is also noted where it is enforced):

* Effective permissions of a role = union over its permission blocks of ``Actions - NotActions``
  (control plane) or ``DataActions - NotDataActions`` (data plane).
* ``NotActions``/``NotDataActions`` only subtract inside their own block; they are **not** a deny, so
  another block or another role assignment can still grant the action.
* Control-plane patterns (even ``*``) never grant data actions and data patterns never grant
  control-plane actions.
* A role assignment applies when its scope is the target scope or one of its ancestors.
* The caller is a set of principal ids: its own object id plus the ids of its (transitive) groups.
* Deny assignments win over every grant.  They honour ``exclude_principal_ids``, the zero GUID
  (everyone) and ``do_not_apply_to_child_scopes``.
* A role assignment's condition (ABAC) is evaluated (``keyless.rbac.condition_eval``) against the
  action and the request's attributes, when the caller gives them (Storage); the assignment grants
  only when it holds.  Without attributes a condition is decided only when its ``ActionMatches``
  parts decide it.  Conditions of role permission blocks are not evaluated (the block never
  grants), and a deny assignment with a condition always applies.  Unknown means "no" for grants
  and "yes" for denies: the evaluator never allows by mistake.

Everything is comparison-insensitive to case (scopes, actions, principal ids, role GUIDs), and
nothing else is folded.  Scopes and action patterns are handled by ``keyless.rbac.matching``
(re-exported here): one id parser shared with the resource manager, bounded inputs, linear
wildcard matching.  Every memo here is bounded by size too.  No I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from keyless.rbac.condition_eval import ConditionAttributes, compile_condition, outcome
from keyless.rbac.conditions import Condition
from keyless.rbac.matching import (
    MAX_ACTION_LENGTH,
    PatternSet,
    ScopeOutOfBounds,
    action_matches,
    ancestor_index,
    is_at_or_below,
    normalize_scope,
    parent_scope,
    pattern_problem,
    scope_ancestors,
)

__all__ = [
    "EVERYONE_PRINCIPAL_ID",
    "MAX_ACTION_LENGTH",
    "SUPPORTED_CONDITION_VERSION",
    "AppliedDenyAssignment",
    "AuthorizationIndex",
    "Decision",
    "DecisionKind",
    "DenyAssignment",
    "MatchedAssignment",
    "NonMatchingAssignment",
    "Permission",
    "RoleAssignment",
    "RoleDefinition",
    "RoleType",
    "ScopeOutOfBounds",
    "action_matches",
    "is_at_or_below",
    "normalize_scope",
    "parent_scope",
    "pattern_problem",
    "role_assignable_at",
    "role_definition_id",
    "role_key",
    "scope_ancestors",
]

EVERYONE_PRINCIPAL_ID: Final = "00000000-0000-0000-0000-000000000000"
SUPPORTED_CONDITION_VERSION: Final = "2.0"
ROLE_DEFINITION_ID_PREFIX: Final = "/providers/Microsoft.Authorization/roleDefinitions/"

RoleType = Literal["BuiltInRole", "CustomRole"]
DecisionKind = Literal["allowed", "denied_by_deny_assignment", "not_granted"]

# Verdicts (role, action) remembered per index, in all; actions longer than this are not remembered.
_VERDICT_MEMO_ENTRIES: Final = 1 << 16
_VERDICT_MEMO_ACTION: Final = 256


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission block of a role definition (or the permissions of a deny assignment)."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    condition: str | None = None
    condition_version: str | None = None


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    name: str  # the role GUID
    role_name: str
    role_type: RoleType
    description: str
    assignable_scopes: tuple[str, ...]
    permissions: tuple[Permission, ...]

    @property
    def id(self) -> str:
        return role_definition_id(self.name)


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    name: str  # the assignment GUID
    scope: str
    role_definition_name: str  # the role GUID (a full role definition id is tolerated)
    principal_id: str
    principal_type: str
    condition: str | None = None
    condition_version: str | None = None


@dataclass(frozen=True, slots=True)
class DenyAssignment:
    name: str
    scope: str
    permissions: Permission
    principal_ids: tuple[str, ...]  # EVERYONE_PRINCIPAL_ID means all principals
    exclude_principal_ids: tuple[str, ...] = ()
    do_not_apply_to_child_scopes: bool = False


def role_definition_id(name: str) -> str:
    """Tenant-level role definition id (``/providers/Microsoft.Authorization/roleDefinitions/{name}``);
    under a subscription ARM answers it prefixed with ``/subscriptions/{s}`` (``keyless.rbac.arm``)."""
    return ROLE_DEFINITION_ID_PREFIX + name


def role_key(role_definition: str) -> str:
    """Comparison key of a role: its GUID, lower-cased.  Accepts a GUID or a full definition id."""
    return role_definition.rstrip("/").rsplit("/", 1)[-1].lower()


def _condition_problem(condition: str | None, version: str | None) -> str | None:
    """None when there is no condition; otherwise why the condition cannot be honoured."""
    if condition is None or not condition.strip():
        return None
    if version is not None and version.strip() != SUPPORTED_CONDITION_VERSION:
        return f"conditionVersion '{version}' is not supported (only '{SUPPORTED_CONDITION_VERSION}')"
    # Conditions of permission blocks are not evaluated: treat as not satisfied.
    return "condition not evaluated (unsupported)"


def _assignment_condition(condition: str | None, version: str | None) -> tuple[str | None, Condition | None]:
    """A role assignment's condition: (None, None) without one; (None, parsed) when it can be
    evaluated; (why not, None) for a version other than 2.0 or a condition that does not parse."""
    problem = _condition_problem(condition, version)
    if problem is None or condition is None or problem.startswith("conditionVersion"):
        return problem, None
    compiled = compile_condition(condition, None)  # the version was checked above
    return (compiled, None) if isinstance(compiled, str) else (None, compiled)


class _CompiledBlock:
    __slots__ = ("actions", "condition_problem", "data_actions", "not_actions", "not_data_actions")

    def __init__(self, permission: Permission) -> None:
        self.actions = PatternSet(permission.actions)
        self.not_actions = PatternSet(permission.not_actions)
        self.data_actions = PatternSet(permission.data_actions)
        self.not_data_actions = PatternSet(permission.not_data_actions)
        self.condition_problem = _condition_problem(permission.condition, permission.condition_version)


@dataclass(frozen=True, slots=True)
class _Verdict:
    covers: bool  # the action is in the effective permissions of the blocks
    pattern: str | None  # the granting pattern when covers, else the pattern behind ``reason``
    reason: str


def _evaluate_blocks(
    blocks: tuple[_CompiledBlock, ...], action_lower: str, data_action: bool, *, conditional_applies: bool
) -> _Verdict:
    """THE rule for one role (or one deny assignment): does ``action`` fall in its effective set?

    ``conditional_applies`` says how a block with an unevaluated condition counts: False for grants
    (safe: do not grant), True for deny assignments (safe: deny).
    """
    best_rank, best_reason, best_pattern = -1, "", None
    allow_label, not_label = ("DataActions", "NotDataActions") if data_action else ("Actions", "NotActions")
    for block in blocks:
        # Data actions are only matched against DataActions/NotDataActions and control-plane actions
        # only against Actions/NotActions: wildcards never cross the plane boundary.
        if data_action:
            allow, deny, other = block.data_actions, block.not_data_actions, block.actions
        else:
            allow, deny, other = block.actions, block.not_actions, block.data_actions
        granted_by = allow.first_match(action_lower)
        if granted_by is not None:
            # NotActions subtract from this block only; they are not a deny.
            excluded_by = deny.first_match(action_lower)
            if excluded_by is not None:
                rank, reason, pattern = 3, f"excluded by {not_label} '{excluded_by}'", excluded_by
            elif block.condition_problem is not None and not conditional_applies:
                rank, reason, pattern = 2, f"permission {block.condition_problem}", granted_by
            else:
                return _Verdict(True, granted_by, f"granted by {allow_label} '{granted_by}'")
        else:
            crossing = other.first_match(action_lower)
            if crossing is not None:
                kind = "wildcard" if "*" in crossing else "pattern"
                if data_action:
                    rank, reason = 1, f"control-plane {kind} '{crossing}' does not grant data actions"
                else:
                    rank, reason = 1, f"data-action {kind} '{crossing}' does not grant control-plane actions"
                pattern = crossing
            else:
                rank, reason, pattern = 0, f"no {allow_label} pattern matches", None
        if rank > best_rank:
            best_rank, best_reason, best_pattern = rank, reason, pattern
    if best_rank < 0:
        best_reason = "role has no permissions"
    return _Verdict(False, best_pattern, best_reason)


class _CompiledRole:
    __slots__ = ("blocks", "definition")

    def __init__(self, definition: RoleDefinition) -> None:
        self.definition = definition
        self.blocks = tuple(_CompiledBlock(p) for p in definition.permissions)

    def verdict(self, action_lower: str, data_action: bool) -> _Verdict:
        return _evaluate_blocks(self.blocks, action_lower, data_action, conditional_applies=False)


class _VerdictMemo:
    """Remembered role verdicts of one index: action -> {compiled role: verdict}, per plane.

    Keyed by the compiled role object, so a replaced role's verdicts are never reused.  Bounded in
    all (``_VERDICT_MEMO_ENTRIES`` entries, actions up to ``_VERDICT_MEMO_ACTION`` characters: about
    11 MiB at most with tracemalloc, whatever actions callers send) and emptied when full; the
    count is kept without a lock, so it is approximate, never unbounded.
    """

    __slots__ = ("_count", "control", "data")

    def __init__(self) -> None:
        self.control: dict[str, dict[_CompiledRole, _Verdict]] = {}
        self.data: dict[str, dict[_CompiledRole, _Verdict]] = {}
        self._count = 0

    def for_action(self, action_lower: str, data_action: bool) -> dict[_CompiledRole, _Verdict]:
        """The verdicts remembered for this action (a throwaway dict when it is not remembered)."""
        table = self.data if data_action else self.control
        memo = table.get(action_lower)
        if memo is None:
            memo = {}
            if len(action_lower) <= _VERDICT_MEMO_ACTION:
                self.counted()
                table = self.data if data_action else self.control
                table[action_lower] = memo
        return memo

    def counted(self) -> None:
        """Count one more entry; empty everything when the bound is reached."""
        self._count += 1
        if self._count > _VERDICT_MEMO_ENTRIES:
            self.control, self.data, self._count = {}, {}, 0


def role_assignable_at(role: RoleDefinition, scope: str) -> bool:
    """True when ``role`` may be assigned at ``scope``: "/" means anywhere, else at/below a listed scope."""
    chain = ancestor_index(scope)
    return any(normalize_scope(s) in chain for s in role.assignable_scopes)


# --------------------------------------------------------------------------------------------------
# Decisions and explanations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchedAssignment:
    """A role assignment that grants the action at the target scope."""

    assignment: RoleAssignment
    role_name: str
    inherited_from: str | None  # the assignment scope when it is an ancestor, None when at the scope
    matched_pattern: str

    def to_dict(self) -> dict[str, object]:
        return {
            "roleAssignmentName": self.assignment.name,
            "roleDefinitionName": self.assignment.role_definition_name,
            "roleName": self.role_name,
            "principalId": self.assignment.principal_id,
            "principalType": self.assignment.principal_type,
            "scope": self.assignment.scope,
            "inheritedFrom": self.inherited_from,
            "matchedPattern": self.matched_pattern,
        }


@dataclass(frozen=True, slots=True)
class NonMatchingAssignment:
    """An assignment of the caller that did not grant the action, and why."""

    assignment: RoleAssignment
    role_name: str | None  # None when the role definition is unknown
    applies_at_scope: bool  # False: the role would grant, but the assignment scope does not cover
    inherited_from: str | None
    reason: str
    # True when the role would grant here but the assignment's condition (not evaluated) blocks it.
    blocked_by_condition: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "roleAssignmentName": self.assignment.name,
            "roleDefinitionName": self.assignment.role_definition_name,
            "roleName": self.role_name,
            "principalId": self.assignment.principal_id,
            "principalType": self.assignment.principal_type,
            "scope": self.assignment.scope,
            "appliesAtScope": self.applies_at_scope,
            "inheritedFrom": self.inherited_from,
            "reason": self.reason,
            "blockedByCondition": self.blocked_by_condition,
        }


@dataclass(frozen=True, slots=True)
class AppliedDenyAssignment:
    deny_assignment: DenyAssignment
    matched_pattern: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "denyAssignmentName": self.deny_assignment.name,
            "scope": self.deny_assignment.scope,
            "matchedPattern": self.matched_pattern,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of an access check.  ``explained`` is True when produced by ``explain`` (full detail);
    ``decide`` stops at the first deciding record and leaves the other lists empty."""

    allowed: bool
    decision: DecisionKind
    action: str
    scope: str
    data_action: bool
    principal_ids: frozenset[str]
    matched_assignments: tuple[MatchedAssignment, ...] = ()
    non_matching_assignments: tuple[NonMatchingAssignment, ...] = ()
    deny_assignments: tuple[AppliedDenyAssignment, ...] = ()
    explained: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "decision": self.decision,
            "action": self.action,
            "scope": self.scope,
            "isDataAction": self.data_action,
            "principalIds": sorted(self.principal_ids),
            "matchedAssignments": [m.to_dict() for m in self.matched_assignments],
            "nonMatchingAssignments": [m.to_dict() for m in self.non_matching_assignments],
            "denyAssignments": [d.to_dict() for d in self.deny_assignments],
        }

    def summary(self) -> str:
        """Human-readable multi-line explanation."""
        plane = "data action" if self.data_action else "action"
        lines = [f"{self.decision}: {plane} '{self.action}' at '{self.scope}'"]
        for d in self.deny_assignments:
            lines.append(
                f"  deny assignment {d.deny_assignment.name} at '{d.deny_assignment.scope}' "
                f"matched '{d.matched_pattern}' ({d.reason})"
            )
        for m in self.matched_assignments:
            where = f"inherited from '{m.inherited_from}'" if m.inherited_from else "assigned at this scope"
            lines.append(
                f"  granted by '{m.role_name}' (assignment {m.assignment.name}, {where}) "
                f"via '{m.matched_pattern}'"
            )
        for nm in self.non_matching_assignments:
            lines.append(
                f"  not granted by '{nm.role_name or nm.assignment.role_definition_name}' "
                f"(assignment {nm.assignment.name} at '{nm.assignment.scope}'): {nm.reason}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Index
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _IndexedAssignment:
    assignment: RoleAssignment
    scope: str  # normalized
    role: str  # role key
    condition_problem: str | None
    condition: Condition | None = None  # parsed, when there is one and it can be evaluated


@dataclass(frozen=True, slots=True)
class _IndexedDeny:
    deny: DenyAssignment
    scope: str
    blocks: tuple[_CompiledBlock, ...]
    principals: frozenset[str]
    excluded: frozenset[str]
    everyone: bool = False

    def principal_reason(self, callers: frozenset[str]) -> str | None:
        """Why this deny targets the caller, or None when it does not."""
        excluded = self.excluded & callers
        if excluded:
            return None  # an excluded principal (the caller or one of its groups) escapes the deny
        if self.everyone:
            return "applies to everyone (zero GUID)"
        hit = self.principals & callers
        return f"applies to principal {min(hit)}" if hit else None


def _principal_set(principal_ids: str | Iterable[str]) -> frozenset[str]:
    if isinstance(principal_ids, str):
        return frozenset((principal_ids.strip().lower(),))
    return frozenset(p.strip().lower() for p in principal_ids)


class AuthorizationIndex:
    """In-memory index of role definitions, role assignments and deny assignments.

    Reads (``decide``/``explain``/``permissions_for``) take no lock: every mutation publishes new
    immutable tuples, so a concurrent reader sees either the old or the new state.  Mutations are
    serialized with an internal lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, _CompiledRole] = {}
        self._assignments: dict[str, _IndexedAssignment] = {}
        self._by_principal: dict[str, tuple[_IndexedAssignment, ...]] = {}
        self._denies: dict[str, _IndexedDeny] = {}
        self._denies_by_scope: dict[str, tuple[_IndexedDeny, ...]] = {}
        self._verdicts = _VerdictMemo()

    @classmethod
    def from_records(
        cls,
        role_definitions: Iterable[RoleDefinition],
        role_assignments: Iterable[RoleAssignment] = (),
        deny_assignments: Iterable[DenyAssignment] = (),
    ) -> AuthorizationIndex:
        index = cls()
        for role in role_definitions:
            index.put_role_definition(role)
        for assignment in role_assignments:
            index.put_assignment(assignment)
        for deny in deny_assignments:
            index.put_deny_assignment(deny)
        return index

    # -- role definitions -------------------------------------------------------------------------

    def put_role_definition(self, role: RoleDefinition) -> None:
        """Add or replace a role definition (its memoized results are dropped with the old one)."""
        compiled = _CompiledRole(role)
        with self._lock:
            self._roles[role_key(role.name)] = compiled

    def remove_role_definition(self, name: str) -> bool:
        """Remove a role definition.  Assignments that reference it stay but no longer grant."""
        with self._lock:
            return self._roles.pop(role_key(name), None) is not None

    def get_role_definition(self, name: str) -> RoleDefinition | None:
        compiled = self._roles.get(role_key(name))
        return compiled.definition if compiled else None

    def role_definitions(self) -> Iterator[RoleDefinition]:
        return iter([c.definition for c in self._roles.values()])

    # -- role assignments -------------------------------------------------------------------------

    def put_assignment(self, assignment: RoleAssignment) -> None:
        """Add a role assignment, replacing any existing one with the same name."""
        problem, condition = _assignment_condition(assignment.condition, assignment.condition_version)
        indexed = _IndexedAssignment(
            assignment=assignment,
            scope=normalize_scope(assignment.scope),
            role=role_key(assignment.role_definition_name),
            condition_problem=problem,
            condition=condition,
        )
        key = assignment.name.strip().lower()
        with self._lock:
            self._unlink_assignment(key)
            self._assignments[key] = indexed
            principal = assignment.principal_id.strip().lower()
            self._by_principal[principal] = (*self._by_principal.get(principal, ()), indexed)

    def remove_assignment(self, name: str) -> bool:
        with self._lock:
            return self._unlink_assignment(name.strip().lower())

    def _unlink_assignment(self, key: str) -> bool:
        old = self._assignments.pop(key, None)
        if old is None:
            return False
        principal = old.assignment.principal_id.strip().lower()
        remaining = tuple(a for a in self._by_principal.get(principal, ()) if a is not old)
        if remaining:
            self._by_principal[principal] = remaining
        else:
            self._by_principal.pop(principal, None)
        return True

    def get_assignment(self, name: str) -> RoleAssignment | None:
        indexed = self._assignments.get(name.strip().lower())
        return indexed.assignment if indexed else None

    def assignments(self) -> Iterator[RoleAssignment]:
        return iter([a.assignment for a in self._assignments.values()])

    # -- deny assignments -------------------------------------------------------------------------

    def put_deny_assignment(self, deny: DenyAssignment) -> None:
        principals = frozenset(p.strip().lower() for p in deny.principal_ids)
        indexed = _IndexedDeny(
            deny=deny,
            scope=normalize_scope(deny.scope),
            blocks=(_CompiledBlock(deny.permissions),),
            principals=principals,
            excluded=frozenset(p.strip().lower() for p in deny.exclude_principal_ids),
            everyone=EVERYONE_PRINCIPAL_ID in principals,
        )
        key = deny.name.strip().lower()
        with self._lock:
            self._unlink_deny(key)
            self._denies[key] = indexed
            self._denies_by_scope[indexed.scope] = (*self._denies_by_scope.get(indexed.scope, ()), indexed)

    def remove_deny_assignment(self, name: str) -> bool:
        with self._lock:
            return self._unlink_deny(name.strip().lower())

    def _unlink_deny(self, key: str) -> bool:
        old = self._denies.pop(key, None)
        if old is None:
            return False
        remaining = tuple(d for d in self._denies_by_scope.get(old.scope, ()) if d is not old)
        if remaining:
            self._denies_by_scope[old.scope] = remaining
        else:
            self._denies_by_scope.pop(old.scope, None)
        return True

    # -- queries ----------------------------------------------------------------------------------

    def decide(
        self,
        principal_ids: str | Iterable[str],
        action: str,
        scope: str,
        *,
        data_action: bool,
        attributes: ConditionAttributes | None = None,
    ) -> Decision:
        """Fast check.  Stops at the first deciding record; same rules as ``explain``.
        ``attributes``: the request's, for role assignment conditions (None: none known)."""
        return self._evaluate(principal_ids, action, scope, data_action, explain=False, attributes=attributes)

    def explain(
        self,
        principal_ids: str | Iterable[str],
        action: str,
        scope: str,
        *,
        data_action: bool,
        attributes: ConditionAttributes | None = None,
    ) -> Decision:
        """Full check: every deny that applies, every granting assignment and every near miss."""
        return self._evaluate(principal_ids, action, scope, data_action, explain=True, attributes=attributes)

    def is_allowed(
        self, principal_ids: str | Iterable[str], action: str, scope: str, *, data_action: bool
    ) -> bool:
        return self._evaluate(principal_ids, action, scope, data_action, explain=False).allowed

    def _evaluate(
        self,
        principal_ids: str | Iterable[str],
        action: str,
        scope: str,
        data_action: bool,
        *,
        explain: bool,
        attributes: ConditionAttributes | None = None,
    ) -> Decision:
        callers = _principal_set(principal_ids)
        action_lower = action.lower()
        # An assignment or deny applies when its scope is the target scope or one of its ancestors.
        ancestry = ancestor_index(scope)
        memo = self._verdicts
        verdicts = (memo.data if data_action else memo.control).get(action_lower)  # the hot path
        if verdicts is None:
            verdicts = memo.for_action(action_lower, data_action)

        # 1. Deny assignments take precedence over any grant.
        denies: list[AppliedDenyAssignment] = []
        if self._denies_by_scope:
            for anc, depth in ancestry.items():
                for d in self._denies_by_scope.get(anc, ()):
                    if depth > 0 and d.deny.do_not_apply_to_child_scopes:
                        continue  # applies only at its own scope
                    who = d.principal_reason(callers)
                    if who is None:
                        continue
                    verdict = _evaluate_blocks(d.blocks, action_lower, data_action, conditional_applies=True)
                    if not verdict.covers or verdict.pattern is None:
                        continue
                    applied = AppliedDenyAssignment(d.deny, verdict.pattern, who)
                    if not explain:
                        return Decision(
                            False,
                            "denied_by_deny_assignment",
                            action,
                            scope,
                            data_action,
                            callers,
                            deny_assignments=(applied,),
                        )
                    denies.append(applied)

        # 2. Union of the caller's (and its groups') applicable role assignments.
        matched: list[tuple[int, MatchedAssignment]] = []
        misses: list[tuple[int, NonMatchingAssignment]] = []
        for principal in callers:
            for ia in self._by_principal.get(principal, ()):
                at = ancestry.get(ia.scope)
                compiled = self._roles.get(ia.role)
                if at is None:
                    # Not applicable here; in explain mode report it only if it would otherwise grant.
                    if explain and compiled is not None and ia.condition_problem is None:
                        v = verdicts.get(compiled) or compiled.verdict(action_lower, data_action)
                        if v.covers:
                            reason = (
                                f"role grants via '{v.pattern}', but assignment scope "
                                f"'{ia.assignment.scope}' does not contain the target scope"
                            )
                            miss = NonMatchingAssignment(
                                ia.assignment, compiled.definition.role_name, False, None, reason
                            )
                            misses.append((len(ancestry), miss))
                    continue
                inherited = ia.assignment.scope if at > 0 else None
                if compiled is None:
                    if explain:
                        reason = f"role definition '{ia.assignment.role_definition_name}' not found"
                        misses.append(
                            (at, NonMatchingAssignment(ia.assignment, None, True, inherited, reason))
                        )
                    continue
                role_name = compiled.definition.role_name
                remembered = verdicts.get(compiled)
                if remembered is None:
                    remembered = verdicts[compiled] = compiled.verdict(action_lower, data_action)
                    self._verdicts.counted()
                v = remembered
                if not v.covers or v.pattern is None:
                    if explain:
                        miss = NonMatchingAssignment(ia.assignment, role_name, True, inherited, v.reason)
                        misses.append((at, miss))
                    continue
                if ia.condition_problem is not None:
                    # Unevaluated condition: the assignment does not grant (never allow by mistake).
                    if explain:
                        reason = (
                            f"role grants via '{v.pattern}', but {ia.condition_problem}; "
                            "assignment does not grant"
                        )
                        miss = NonMatchingAssignment(ia.assignment, role_name, True, inherited, reason, True)
                        misses.append((at, miss))
                    continue
                if ia.condition is not None:
                    holds, why = outcome(ia.condition, action, attributes)
                    if not holds:
                        if explain:
                            reason = f"role grants via '{v.pattern}', but {why}; assignment does not grant"
                            miss = NonMatchingAssignment(
                                ia.assignment, role_name, True, inherited, reason, True
                            )
                            misses.append((at, miss))
                        continue
                hit = MatchedAssignment(ia.assignment, role_name, inherited, v.pattern)
                if not explain:
                    return Decision(True, "allowed", action, scope, data_action, callers, (hit,))
                matched.append((at, hit))

        matched.sort(key=lambda t: t[0])
        misses.sort(key=lambda t: t[0])
        kind: DecisionKind
        if denies:
            kind = "denied_by_deny_assignment"
        elif matched:
            kind = "allowed"
        else:
            kind = "not_granted"
        return Decision(
            kind == "allowed",
            kind,
            action,
            scope,
            data_action,
            callers,
            tuple(m for _, m in matched),
            tuple(m for _, m in misses),
            tuple(denies),
            explain,
        )

    def permissions_for(self, principal_ids: str | Iterable[str], scope: str) -> list[Permission]:
        """Effective permission blocks at ``scope`` (for ``Microsoft.Authorization/permissions``).

        One entry per permission block of every role assigned (directly or via a group) at the scope
        or above, nearest scope first, each role once.  Assignments with a condition are left out
        (what they grant depends on each request).  Deny assignments are not subtracted (ARM's list
        API reports role permissions only).
        """
        callers = _principal_set(principal_ids)
        ancestry = ancestor_index(scope)
        found: list[tuple[int, str, _IndexedAssignment]] = []
        for principal in callers:
            for ia in self._by_principal.get(principal, ()):
                depth = ancestry.get(ia.scope)
                if depth is not None and ia.condition_problem is None and ia.condition is None:
                    found.append((depth, ia.assignment.name.lower(), ia))
        found.sort(key=lambda t: (t[0], t[1]))
        seen: set[str] = set()
        result: list[Permission] = []
        for _, _, ia in found:
            compiled = self._roles.get(ia.role)
            if compiled is None or ia.role in seen:
                continue
            seen.add(ia.role)
            result.extend(compiled.definition.permissions)
        return result
