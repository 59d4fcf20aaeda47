"""Scopes and action patterns for the RBAC evaluator: bounded, memoised, and linear.

* A scope is split by the resource manager's own parser (``keyless.arm.ids.id_segments``), so a
  string names the same scope here as it names a resource there.  Nothing is stripped (``solo`` and
  ``solo\n`` are two scopes), and anything longer or deeper than an id can be raises
  ``ScopeOutOfBounds`` before any work is done on it.
* Each scope's ancestor chain is remembered in a memo bounded by entries and by characters.
* Action patterns are validated on write (``pattern_problem``) and matched by a forward scan that
  is linear in the action's length (``action_matches``): no regular expression is ever built from
  a pattern, so no pattern can make a check backtrack.

Standard library and ``keyless.arm.ids`` only; no I/O.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Final

from keyless.arm.ids import id_segments

__all__ = [
    "MAX_ACTION_LENGTH",
    "PatternSet",
    "ScopeOutOfBounds",
    "action_matches",
    "ancestor_index",
    "is_at_or_below",
    "normalize_scope",
    "parent_scope",
    "pattern_problem",
    "scope_ancestors",
]

# The longest action or action pattern: Azure documents none; its real operations are under 200
# characters.
MAX_ACTION_LENGTH: Final = 512
# Scope chains remembered: at most this many, holding at most this many characters in all.
_SCOPE_MEMO_ENTRIES: Final = 1 << 14
_SCOPE_MEMO_CHARS: Final = 1 << 22


# --------------------------------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------------------------------


class ScopeOutOfBounds(ValueError):
    """A scope longer or deeper than any id can be (``keyless.arm.ids.id_segments``).  Callers
    bound their input first; this keeps the evaluator from ever working on such a string."""


def _chain(scope: str) -> tuple[str, ...]:
    segments = id_segments(scope)
    if segments is None:
        raise ScopeOutOfBounds(f"The scope '{scope[:100]}...' is out of bounds.")
    segments = [s.lower() for s in segments]
    boundaries: list[int] = []
    i, n = 0, len(segments)
    while i < n:
        if segments[i] == "providers":
            i += 2  # skip "providers/{namespace}": not a scope boundary
            continue
        i += 2  # "subscriptions/{id}", "resourcegroups/{name}" or "{type}/{name}"
        if i < n:
            boundaries.append(i)
    normalized = "/" + "/".join(segments)
    chain = [normalized]
    chain.extend("/" + "/".join(segments[:b]) for b in reversed(boundaries))
    if normalized != "/":
        chain.append("/")
    return tuple(chain)


class _ScopeMemo:
    """Each scope's ancestor chain and its index, remembered for the hot path.

    Bounded by entries and by the characters it holds (``_SCOPE_MEMO_*``: at most about 11 MiB,
    as measured with tracemalloc), and emptied when full: a server's working set of scopes refills
    in microseconds, and a caller sending endless distinct scopes only ever costs that bound.
    """

    __slots__ = ("_chars", "_lock", "entries")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {}
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, scope: str) -> tuple[tuple[str, ...], dict[str, int]]:
        hit = self.entries.get(scope)
        if hit is not None:
            return hit
        chain = _chain(scope)
        hit = (chain, {s: i for i, s in enumerate(chain)})
        cost = len(scope) + sum(len(s) for s in chain)
        with self._lock:
            if len(self.entries) >= _SCOPE_MEMO_ENTRIES or self._chars + cost > _SCOPE_MEMO_CHARS:
                self.entries = {}
                self._chars = 0
            self.entries[scope] = hit
            self._chars += cost
        return hit


_SCOPES = _ScopeMemo()


def normalize_scope(scope: str) -> str:
    """Comparison form of a scope: lower-case, one leading '/', no empty or trailing segments.

    ARM ids are case-insensitive (``resourceGroups`` == ``resourcegroups``), so lower-casing is
    enough; nothing else changes (whitespace and control characters stay part of their segment).
    Raises ``ScopeOutOfBounds`` past ``keyless.arm.ids``'s limits.
    """
    return _SCOPES.get(scope)[0][0]


def scope_ancestors(scope: str) -> tuple[str, ...]:
    """The normalized scope itself, then every enclosing scope, nearest first, ending with '/'.

    A ``/providers/{namespace}`` pair is not a scope by itself; every other segment pair is
    (``subscriptions/{id}``, ``resourceGroups/{name}``, ``{type}/{name}``), so a child resource's
    parent is the ``{type}/{name}`` above it and an extension resource's parent is the scope it
    extends.  Management-group hierarchy is unknown here, so a subscription's parent is '/'.
    Raises ``ScopeOutOfBounds`` past ``keyless.arm.ids``'s limits.
    """
    return _SCOPES.get(scope)[0]


def ancestor_index(scope: str) -> dict[str, int]:
    """Maps each ancestor of ``scope`` to its distance (0 = the scope itself).  Do not mutate."""
    hit = _SCOPES.entries.get(scope)  # the hot path: one lookup
    return hit[1] if hit is not None else _SCOPES.get(scope)[1]


def parent_scope(scope: str) -> str | None:
    """The nearest enclosing scope (normalized), or None for '/'."""
    chain = scope_ancestors(scope)
    return chain[1] if len(chain) > 1 else None


def is_at_or_below(scope: str, ancestor: str) -> bool:
    """True when ``scope`` equals ``ancestor`` or lies inside it (segment-aware, case-insensitive)."""
    return normalize_scope(ancestor) in ancestor_index(scope)


# --------------------------------------------------------------------------------------------------
# Action patterns
# --------------------------------------------------------------------------------------------------


# A pattern as written in a role: ``{Company}.{ProviderName}/{resourceType}/{action}`` (Azure's
# format, rbac-and-arm.md 1.1), any segment (or part of one) a ``*``.  The namespace is ASCII letters,
# digits and dots (ARM's rule, rbac-and-arm.md 3.1); type and operation segments add '-' and '_'.
_NAMESPACE = re.compile(r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)+")
_NAMESPACE_WILD = re.compile(r"[A-Za-z0-9.*]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._*-]+")


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not an action pattern a role may hold, or None when it is one.

    Bounded work (the length is checked first).  Also used for a concrete action (an action has
    the same shape, without wildcards).  A run of wildcards (``**``) is refused: it matches what
    one ``*`` does, and no Azure role spells it.
    """
    if not pattern:
        return "is empty"
    if len(pattern) > MAX_ACTION_LENGTH:
        return f"is longer than {MAX_ACTION_LENGTH} characters"
    if "**" in pattern:
        return "contains consecutive wildcards"
    namespace, *rest = pattern.split("/")
    shape = _NAMESPACE_WILD if "*" in namespace else _NAMESPACE
    if shape.fullmatch(namespace) is None or not all(_SEGMENT.fullmatch(s) for s in rest):
        return "does not match any of the actions supported by the providers"
    if "*" not in pattern and not rest:
        return "does not match any of the actions supported by the providers"
    return None


# A compiled pattern: (text before the first '*', the texts between wildcards, text after the last).
_Glob = tuple[str, tuple[str, ...], str]


def _glob(pattern_lower: str) -> _Glob:
    parts = pattern_lower.split("*")
    return parts[0], tuple(p for p in parts[1:-1] if p), parts[-1]


def _glob_match(glob: _Glob, text: str) -> bool:
    """Does ``text`` match a ``*``-only glob?  Linear in ``len(text)``, never backtracking.

    ``*`` matches any run of characters ('/' included).  The head must be a prefix and the tail a
    suffix (not overlapping); each middle part is then searched for left to right, taking its
    leftmost occurrence after the previous one.  Taking the leftmost occurrence never loses a match
    (any match can be slid left onto it), so one forward pass decides, and the searches scan
    disjoint stretches of ``text``: O(len(text)) for a given pattern (``str.find`` is at worst
    proportional to the stretch times the part's length, which ``MAX_ACTION_LENGTH`` bounds).
    """
    head, middle, tail = glob
    if len(text) < len(head) + len(tail) or not text.startswith(head) or not text.endswith(tail):
        return False
    position, end = len(head), len(text) - len(tail)
    for part in middle:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def action_matches(pattern: str, action: str) -> bool:
    """Azure action pattern match: case-insensitive, ``*`` = any characters (including '/').

    Linear in the length of ``action`` whatever the pattern (``_glob_match``)."""
    p, a = pattern.lower(), action.lower()
    if "*" not in p:
        return p == a
    return _glob_match(_glob(p), a)


class PatternSet:
    """A compiled list of action patterns; reports the first pattern (original spelling) that matches."""

    __slots__ = ("_exact", "_wild")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: dict[str, str] = {}
        wild: list[tuple[str, _Glob]] = []
        for pattern in patterns:
            # Stored roles are validated on write (``pattern_problem``); the strip only tolerates
            # rows written before that, and a pattern is no scope: nothing aliases through it.
            low = pattern.strip().lower()
            if not low:
                continue
            if "*" in low:
                wild.append((pattern, _glob(low)))
            else:
                exact.setdefault(low, pattern)
        self._exact = exact
        self._wild = tuple(wild)

    def first_match(self, action_lower: str) -> str | None:
        hit = self._exact.get(action_lower)
        if hit is not None:
            return hit
        for original, glob in self._wild:
            if _glob_match(glob, action_lower):
                return original
        return None
