"""Evaluating ABAC role-assignment conditions (``keyless.rbac.conditions`` parses them).

Sources (azure-docs, MicrosoftDocs/azure-docs):

* ``articles/role-based-access-control/conditions-format.md`` ("Azure role assignment condition
  format and syntax"): a condition is ``(!(ActionMatches{'<action>'} [AND SubOperationMatches
  {'<sub>'}])) OR (<expression>)``; "If a user tries to perform an action in the role assignment
  that is not <action>, !(ActionMatches) evaluates to true and the overall condition evaluates to
  true"; the operator families, ``IgnoreCase``, ``Not`` forms ("Negation of ..."), ``StringLike``
  wildcards ``*`` and ``?`` (escaped ``\\*`` and ``\\?``), ``Exists``, DateTime values
  ``yyyy-mm-ddThh:mm:ss.mmmmmmmZ``, GUIDs compared without regard to case, and the four
  cross-product quantifiers ("If at least one value on the left-hand side satisfies the comparison
  to at least one value on the right-hand side ..."); a single value with a quantifier counts as
  a one-value list (``@Resource[...encryptionScopes:name] ForAnyOfAnyValues:StringEquals {...}``).
* ``articles/storage/blobs/storage-auth-abac-attributes.md`` ("Actions and attributes for Azure
  role assignment conditions for Azure Blob Storage"): the attribute names (``BLOB_*`` below), the
  sub-operations (``Blob.List``, ``Blob.Write.WithTagHeaders``, ...), the tag attributes
  ``.../blobs/tags:{key}<$key_case_sensitive$>`` (the key is case-sensitive) and
  ``.../blobs/tags&$keys$&`` (a list), and: operations that do not carry an attribute "cannot
  evaluate this condition, and will fail the authorization access check".

The outcome is three-valued (Kleene): True, False, or None for "cannot be evaluated" (no
attributes given, a missing attribute, a value of the wrong type).  ``AND`` is False as soon as one
item is False, ``OR`` True as soon as one is True, ``NOT`` keeps None; only True grants.  So a
condition is decided without attributes whenever its ``ActionMatches`` parts decide it (the
targeted action is not the one asked about), and an attribute that is absent never grants through
a negation (``StringNotEquals`` on a missing tag is None, not True): the docs are silent there and
this is the safe answer.  ``Exists`` is the one test of absence: False when the attribute is
missing.  An empty list (``tags&$keys$&`` of a blob without tags) counts as missing for
comparisons, so no ``ForAll...`` quantifier is ever true by vacuity (Keyless's choice, the safe
one).  ``SubOperationMatches`` is False when the request has no sub-operation (a Get Blob is not
``Blob.List``) and None without attributes.  ``@Environment[UtcNow]`` is the clock.

Work is linear in the condition (each node at most once; conditions are bounded on write:
8 KB, depth 64, 1,000 values per set) times the attribute values, which are bounded here
(``MAX_ATTRIBUTE_VALUES`` values of ``MAX_ATTRIBUTE_CHARS`` characters, else None), and one
evaluation does at most ``WORK_LIMIT`` character comparisons (else None: the safe answer).
``Like`` never builds a regular expression: a forward scan as in ``keyless.rbac.matching``, the
parts holding ``?`` found with a bit-parallel (shift-and) scan, linear in the text.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias

from keyless.rbac.conditions import (
    ActionMatches,
    And,
    Attribute,
    Compare,
    Condition,
    ConditionError,
    Exists,
    Literal,
    Not,
    Operator,
    Or,
    SubOperationMatches,
    parse_condition,
)
from keyless.rbac.matching import action_matches

__all__ = [
    "ACCOUNT_NAME",
    "BLOB_PATH",
    "BLOB_PREFIX",
    "BLOB_SNAPSHOT",
    "BLOB_TAGS",
    "BLOB_TAG_KEYS",
    "BLOB_VERSION_ID",
    "CONTAINER_NAME",
    "ENCRYPTION_SCOPE_NAME",
    "IS_CURRENT_VERSION",
    "IS_HNS_ENABLED",
    "SUB_OPERATION",
    "SUB_OPERATION_BLOB_LIST",
    "SUB_OPERATION_WITH_TAG_HEADERS",
    "SUB_OPERATION_WRITE_TIER",
    "AttributeValue",
    "ConditionAttributes",
    "MappingAttributes",
    "attribute_key",
    "blob_tag_values",
    "compile_condition",
    "evaluate",
    "outcome",
]

# Blob Storage attribute names (storage-auth-abac-attributes.md, "Azure Blob Storage attributes").
ACCOUNT_NAME: Final = "Microsoft.Storage/storageAccounts:name"
IS_HNS_ENABLED: Final = "Microsoft.Storage/storageAccounts:isHnsEnabled"
CONTAINER_NAME: Final = "Microsoft.Storage/storageAccounts/blobServices/containers:name"
BLOB_PATH: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path"
BLOB_PREFIX: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix"  # request
BLOB_SNAPSHOT: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:snapshot"  # request
BLOB_VERSION_ID: Final = (
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:versionId"  # request
)
IS_CURRENT_VERSION: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:isCurrentVersion"
ENCRYPTION_SCOPE_NAME: Final = "Microsoft.Storage/storageAccounts/encryptionScopes:name"
BLOB_TAGS: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags"
BLOB_TAG_KEYS: Final = BLOB_TAGS + "&$keys$&"
# The request's sub-operation, as the older syntax names it: ``@Request[subOperation]
# ForAnyOfAnyValues:StringEqualsIgnoreCase {'Blob.List'}`` (conditions-format.md, 2021 version).
SUB_OPERATION: Final = "subOperation"
SUB_OPERATION_BLOB_LIST: Final = "Blob.List"
SUB_OPERATION_WITH_TAG_HEADERS: Final = "Blob.Write.WithTagHeaders"
SUB_OPERATION_WRITE_TIER: Final = "Blob.Write.Tier"

_TAG_KEY_SUFFIX: Final = "<$key_case_sensitive$>"
_UTC_NOW: Final = "utcnow"

# Bounds on what an attributes provider hands in (Blob Storage's own are far lower: 10 tags of
# 256 characters, blob names of 1,024).  Past them the attribute cannot be evaluated.
MAX_ATTRIBUTE_VALUES: Final = 1000
MAX_ATTRIBUTE_CHARS: Final = 4096
# Work one evaluation may do, in character comparisons (estimated before each comparison: the
# values' lengths times the other side's count); past it the rest cannot be evaluated (None).  Real
# conditions need a few thousand; this bounds the worst at well under a second.
WORK_LIMIT: Final = 1 << 19
# Parsed conditions remembered (the index is rebuilt on every RBAC write; parsing is not free).
_MEMO_ENTRIES: Final = 4096
_MEMO_CHARS: Final = 8 << 20

AttributeValue: TypeAlias = str | int | bool | Sequence[str] | Sequence[int]
Tri: TypeAlias = bool | None  # None: cannot be evaluated


class ConditionAttributes(Protocol):
    """What a data plane knows about one request, by attribute name as written in conditions
    (``@Resource[{name}]`` -> ``resource(name)``).  Each returns a string, an int, a bool, a list
    of strings or ints, or None when the request has no such attribute.  Sub-operations come from
    ``request(SUB_OPERATION)``."""

    def resource(self, name: str) -> AttributeValue | None: ...

    def request(self, name: str) -> AttributeValue | None: ...

    def principal(self, name: str) -> AttributeValue | None: ...

    def environment(self, name: str) -> AttributeValue | None: ...


def attribute_key(name: str) -> str:
    """The comparison form of an attribute name: lower-case (attribute names are case-insensitive,
    storage-auth-abac-attributes.md), except a blob tag's key, which is case-sensitive; the
    ``<$key_case_sensitive$>`` marker is optional here (always added)."""
    low = name.lower()
    at = low.find("/tags:")
    if at < 0:
        return low
    key = name[at + 6 :]
    if key.lower().endswith(_TAG_KEY_SUFFIX):
        key = key[: -len(_TAG_KEY_SUFFIX)]
    return low[:at] + "/tags:" + key + _TAG_KEY_SUFFIX


def blob_tag_values(tags: Mapping[str, str]) -> dict[str, AttributeValue]:
    """Attribute values for a blob's index tags: ``.../blobs/tags:{key}<$key_case_sensitive$>`` for
    each tag and ``.../blobs/tags&$keys$&`` for the list of keys.  Merge the result into
    ``MappingAttributes.resource_values`` (the stored tags) or ``request_values`` (tags a write sets,
    sub-operation ``Blob.Write.WithTagHeaders``)."""
    values: dict[str, AttributeValue] = {f"{BLOB_TAGS}:{k}{_TAG_KEY_SUFFIX}": v for k, v in tags.items()}
    values[BLOB_TAG_KEYS] = sorted(tags)
    return values


def _keyed(values: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    return {attribute_key(k): v for k, v in values.items()}


@dataclass(frozen=True)
class MappingAttributes:
    """``ConditionAttributes`` from plain dicts, keyed by attribute name (looked up with
    ``attribute_key``), e.g. ``MappingAttributes({CONTAINER_NAME: "ingest", BLOB_PATH: "a/b.txt",
    **blob_tag_values(tags)}, {SUB_OPERATION: SUB_OPERATION_BLOB_LIST})``."""

    resource_values: Mapping[str, AttributeValue] = field(default_factory=dict)
    request_values: Mapping[str, AttributeValue] = field(default_factory=dict)
    principal_values: Mapping[str, AttributeValue] = field(default_factory=dict)
    environment_values: Mapping[str, AttributeValue] = field(default_factory=dict)
    _index: tuple[dict[str, AttributeValue], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sources = (self.resource_values, self.request_values, self.principal_values, self.environment_values)
        object.__setattr__(self, "_index", tuple(_keyed(s) for s in sources))

    def resource(self, name: str) -> AttributeValue | None:
        return self._index[0].get(attribute_key(name))

    def request(self, name: str) -> AttributeValue | None:
        return self._index[1].get(attribute_key(name))

    def principal(self, name: str) -> AttributeValue | None:
        return self._index[2].get(attribute_key(name))

    def environment(self, name: str) -> AttributeValue | None:
        return self._index[3].get(attribute_key(name))


# --------------------------------------------------------------------------------------------------
# Compiling (parse once, remember)
# --------------------------------------------------------------------------------------------------

_memo: dict[tuple[str, str | None], Condition | str] = {}
_memo_chars = 0
_memo_lock = threading.Lock()


def compile_condition(text: str, version: str | None) -> Condition | str:
    """The parsed condition, or why it cannot be evaluated (a string: a condition ARM accepted
    always parses; this covers rows written before validation).  Remembered, bounded by entries
    and characters (emptied when full)."""
    global _memo_chars
    key = (text, version)
    hit = _memo.get(key)
    if hit is not None:
        return hit
    result: Condition | str
    try:
        result = parse_condition(text, version)
    except ConditionError as exc:
        result = f"condition not evaluated (unsupported): {exc}"
    with _memo_lock:
        if len(_memo) >= _MEMO_ENTRIES or _memo_chars + len(text) > _MEMO_CHARS:
            _memo.clear()
            _memo_chars = 0
        _memo[key] = result
        _memo_chars += len(text)
    return result


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def evaluate(condition: Condition, action: str, attributes: ConditionAttributes | None) -> bool:
    """True only when ``condition`` holds for ``action`` (a data or control-plane action) and the
    request's ``attributes`` (None: no attributes known); False when it does not hold or cannot be
    evaluated.  Never raises for any attribute values."""
    return outcome(condition, action, attributes)[0]


def outcome(condition: Condition, action: str, attributes: ConditionAttributes | None) -> tuple[bool, str]:
    """``(holds, why)``: ``why`` says, for explanations, what made it fail ("the condition does
    not hold", or which attribute could not be evaluated)."""
    run = _Run(action, attributes)
    try:
        result = run.node(condition)
    except (LookupError, TypeError, ValueError, RecursionError) as exc:
        return False, f"the condition could not be evaluated ({type(exc).__name__})"
    if result is True:
        return True, "the condition holds"
    if result is False:
        return False, "the condition does not hold"
    return False, f"the condition could not be evaluated ({run.unknown or 'no attributes'})"


class _Run:
    """One evaluation: the action, the attributes, and the first reason for an unknown."""

    __slots__ = ("action", "attributes", "unknown", "work")

    def __init__(self, action: str, attributes: ConditionAttributes | None) -> None:
        self.action = action
        self.attributes = attributes
        self.unknown: str | None = None
        self.work = WORK_LIMIT

    def _cannot(self, why: str) -> Tri:
        """Record the first reason the outcome is unknown; returns None (unknown)."""
        if self.unknown is None:
            self.unknown = why
        return None

    def node(self, c: Condition) -> Tri:
        if isinstance(c, And):
            seen_unknown = False
            for item in c.items:
                r = self.node(item)
                if r is False:
                    return False
                seen_unknown = seen_unknown or r is None
            return None if seen_unknown else True
        if isinstance(c, Or):
            seen_unknown = False
            for item in c.items:
                r = self.node(item)
                if r is True:
                    return True
                seen_unknown = seen_unknown or r is None
            return None if seen_unknown else False
        if isinstance(c, Not):
            r = self.node(c.item)
            return None if r is None else not r
        if isinstance(c, ActionMatches):
            return action_matches(c.pattern, self.action)
        if isinstance(c, SubOperationMatches):
            return self._sub_operation(c.pattern)
        if isinstance(c, Exists):
            value = self._lookup(c.attribute)
            if isinstance(value, _NoAttributes):
                return self._cannot("no attributes")
            return not (value is None or _is_empty_list(value))
        return self._compare(c)

    def _sub_operation(self, pattern: str) -> Tri:
        if self.attributes is None:
            return self._cannot("no attributes: sub-operation")
        value = self.attributes.request(SUB_OPERATION)
        if value is None:
            return False  # the operation has no sub-operation
        values = _strings(value)
        if values is None:
            return self._cannot("sub-operation is not a string")
        return any(action_matches(pattern, v) for v in values)

    def _lookup(self, attr: Attribute) -> AttributeValue | _NoAttributes | None:
        """The attribute's value, None when absent, ``_NO_ATTRIBUTES`` when none are known."""
        if attr.source == "Environment" and attr.name.lower() == _UTC_NOW:
            return _utc_now()
        if self.attributes is None:
            return _NO_ATTRIBUTES
        getter: Callable[[str], AttributeValue | None] = {
            "Resource": self.attributes.resource,
            "Request": self.attributes.request,
            "Principal": self.attributes.principal,
            "Environment": self.attributes.environment,
        }[attr.source]
        return getter(attr.name)

    def _side(self, operand: Attribute | Literal | tuple[Literal, ...]) -> tuple[list[object], bool] | str:
        """An operand's values and whether it is a list; or why it cannot be evaluated."""
        if isinstance(operand, Literal):
            return [operand.value], False
        if isinstance(operand, tuple):
            return [v.value for v in operand], True
        value = self._lookup(operand)
        where = f"@{operand.source}[{operand.name[:200]}]"
        if isinstance(value, _NoAttributes):
            return f"no attributes: {where}"
        if value is None or _is_empty_list(value):
            return f"{where} is missing"
        if isinstance(value, (str, int, bool)):
            if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_CHARS:
                return f"{where} is too long"
            return [value], False
        if isinstance(value, (list, tuple)):
            if len(value) > MAX_ATTRIBUTE_VALUES:
                return f"{where} has too many values"
            if any(isinstance(v, str) and len(v) > MAX_ATTRIBUTE_CHARS for v in value):
                return f"{where} is too long"
            return list(value), True
        return f"{where} has an unsupported type"

    def _compare(self, c: Compare) -> Tri:
        left, right = self._side(c.left), self._side(c.right)
        if isinstance(left, str):
            return self._cannot(left)
        if isinstance(right, str):
            return self._cannot(right)
        op = c.operator
        if op.quantifier is None and (left[1] or right[1]):
            return self._cannot(f"'{op.text}' compares single values, not lists")
        convert = _CONVERT[op.family]
        lefts, rights = [convert(v) for v in left[0]], [convert(v) for v in right[0]]
        if any(v is None for v in lefts) or any(v is None for v in rights):
            return self._cannot(f"a value does not fit '{op.text}'")
        self.work -= _cost(lefts, rights)
        if self.work < 0:
            return self._cannot("too much work")
        test = _pair_test(op, rights)
        if op.quantifier is None or op.quantifier == "ForAnyOfAnyValues":
            return any(test(lv, j) for lv in lefts for j in range(len(rights)))
        if op.quantifier == "ForAllOfAnyValues":
            return all(any(test(lv, j) for j in range(len(rights))) for lv in lefts)
        if op.quantifier == "ForAnyOfAllValues":
            return any(all(test(lv, j) for j in range(len(rights))) for lv in lefts)
        return all(test(lv, j) for lv in lefts for j in range(len(rights)))  # ForAllOfAllValues


class _NoAttributes:
    """The marker for "no attributes were given" (unlike None: "this attribute is absent")."""


_NO_ATTRIBUTES: Final = _NoAttributes()


def _cost(lefts: list[object], rights: list[object]) -> int:
    """Character comparisons a cross product may take: each pair costs its two lengths."""
    left_chars = sum(len(v) if isinstance(v, str) else 1 for v in lefts)
    right_chars = sum(len(v) if isinstance(v, str) else 1 for v in rights)
    return left_chars * len(rights) + right_chars * len(lefts)


def _is_empty_list(value: object) -> bool:
    return isinstance(value, (list, tuple)) and not value


def _strings(value: AttributeValue) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and len(value) <= MAX_ATTRIBUTE_VALUES:
        if all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
    return None


def _utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e7):07d}Z"


# --- values of each family ------------------------------------------------------------------------

_NUMBER = re.compile(r"-?[0-9]{1,18}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATETIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,7}))?Z")


def _as_string(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _as_number(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and _NUMBER.fullmatch(v):
        return int(v)
    return None


def _as_guid(v: object) -> str | None:
    return v.lower() if isinstance(v, str) and _GUID.fullmatch(v) else None


def _as_bool(v: object) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _as_datetime(v: object) -> tuple[datetime.datetime, int] | None:
    """``yyyy-mm-ddThh:mm:ss[.fffffff]Z`` -> (the second, the fraction in 100 ns): full precision."""
    if not isinstance(v, str):
        return None
    m = _DATETIME.fullmatch(v)
    if m is None:
        return None
    try:
        second = datetime.datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return second, int((m[2] or "0").ljust(7, "0"))


_CONVERT: Final[dict[str, Callable[[object], object]]] = {
    "String": _as_string,
    "Numeric": _as_number,
    "DateTime": _as_datetime,
    "Guid": _as_guid,
    "Bool": _as_bool,
}


def _pair_test(op: Operator, rights: list[object]) -> Callable[[object, int], bool]:
    """``test(left value, index of right value)`` for one operator (the ``Not`` forms negate each
    pair, as "Negation of StringEquals" inside a quantifier's comparison)."""
    base: Callable[[object, int], bool]
    if op.family == "String":
        fold: Callable[[str], str] = str.lower if op.ignore_case else _same
        folded = [fold(str(r)) for r in rights]
        if op.comparison == "Equals":
            base = lambda lv, j: fold(str(lv)) == folded[j]  # noqa: E731
        elif op.comparison == "StartsWith":
            base = lambda lv, j: fold(str(lv)).startswith(folded[j])  # noqa: E731
        else:  # Like
            globs = [_like_pattern(r) for r in folded]
            base = lambda lv, j: _like(globs[j], fold(str(lv)))  # noqa: E731
    else:
        compare = _ORDER[op.comparison]
        base = lambda lv, j: compare(lv, rights[j])  # noqa: E731
    if op.negated:
        return lambda lv, j: not base(lv, j)
    return base


def _same(s: str) -> str:
    return s


_ORDER: Final[dict[str, Callable[[object, object], bool]]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,  # type: ignore[operator]
    "GreaterThanEquals": lambda a, b: a >= b,  # type: ignore[operator]
    "LessThan": lambda a, b: a < b,  # type: ignore[operator]
    "LessThanEquals": lambda a, b: a <= b,  # type: ignore[operator]
}


# --- StringLike -----------------------------------------------------------------------------------

_ANY_ONE: Final = None  # a '?' in a compiled part
_Part: TypeAlias = tuple[str | None, ...]  # characters, or _ANY_ONE
_Like: TypeAlias = tuple[_Part, tuple[_Part, ...], _Part, bool]  # head, middles, tail, has a '*'


def _like_pattern(pattern: str) -> _Like:
    """Compile a ``Like`` pattern: ``*`` any run, ``?`` one character, ``\\*``/``\\?`` literal
    (any other backslash is itself)."""
    parts: list[list[str | None]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n and pattern[i + 1] in "*?":
            parts[-1].append(pattern[i + 1])
            i += 2
            continue
        if ch == "*":
            parts.append([])
        elif ch == "?":
            parts[-1].append(_ANY_ONE)
        else:
            parts[-1].append(ch)
        i += 1
    compiled = [tuple(p) for p in parts]
    if len(compiled) == 1:
        return compiled[0], (), (), False
    return compiled[0], tuple(p for p in compiled[1:-1] if p), compiled[-1], True


def _part_at(part: _Part, text: str, at: int) -> bool:
    return all(c is _ANY_ONE or text[at + k] == c for k, c in enumerate(part))


def _find_part(part: _Part, text: str, start: int, end: int) -> int:
    """The leftmost position in ``text[start:end]`` where ``part`` matches, or -1.

    Literal parts: ``str.find``.  Parts with ``?``: shift-and, one step per character of the
    stretch, whatever the part (bit k of ``state``: the last k+1 characters match the part's first
    k+1)."""
    if _ANY_ONE not in part:
        return text.find("".join(c for c in part if c is not None), start, end)
    wild = 0
    masks: dict[str, int] = {}
    for k, c in enumerate(part):
        if c is _ANY_ONE:
            wild |= 1 << k
        else:
            masks[c] = masks.get(c, 0) | 1 << k
    masks = {c: m | wild for c, m in masks.items()}
    goal, state = 1 << (len(part) - 1), 0
    for i in range(start, end):
        state = ((state << 1) | 1) & masks.get(text[i], wild)
        if state & goal:
            return i - len(part) + 1
    return -1


def _like(glob: _Like, text: str) -> bool:
    """Does ``text`` match?  One forward pass: the head is a prefix, the tail a suffix, each middle
    part its leftmost occurrence after the previous one (taking the leftmost never loses a match,
    ``keyless.rbac.matching._glob_match``).  At worst the text's length times a part's length."""
    head, middle, tail, star = glob
    if not star:
        return len(text) == len(head) and _part_at(head, text, 0)
    if len(text) < len(head) + len(tail):
        return False
    if not _part_at(head, text, 0) or not _part_at(tail, text, len(text) - len(tail)):
        return False
    position, end = len(head), len(text) - len(tail)
    for part in middle:
        found = _find_part(part, text, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True
