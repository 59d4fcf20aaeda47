"""``$filter``, ``$orderby`` and ``$top`` on Media Services lists ("Filtering, ordering, paging of
Media Services entities", amsdocs ``filter-order-page-entities-how-to.md``), parsed by
``odata-query``.

Documented per collection: assets filter on ``name``, ``properties/alternateId``,
``properties/assetId`` and ``properties/created``; content key policies on ``name``,
``properties/created``, ``properties/lastModified``, ``properties/policyId``; streaming locators on
``name``, ``properties/created``, ``properties/endTime``; streaming policies on ``name``,
``properties/created``. Operators ``eq ne gt ge lt le`` with ``and``/``or``/``not`` and
parentheses; ``$orderby`` one of those fields with ``asc``/``desc``; ``$top`` a positive
integer. Anything else is 400 ``BadRequest`` (Media Services' validation code; its exact text is
not published). Transforms on ``name``, ``properties/created``, ``properties/lastModified``; jobs also on
``properties/state`` (media-jobs.md). Times compare as instants, names and ids as strings (ids
and job states without regard to case).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from keyless.arm import errors

MAX_QUERY_LENGTH = 2048
MAX_DEPTH = 32
MAX_TOP = 10_000

FIELDS: dict[str, frozenset[str]] = {
    "assets": frozenset({"name", "properties/alternateid", "properties/assetid", "properties/created"}),
    "contentkeypolicies": frozenset(
        {"name", "properties/created", "properties/lastmodified", "properties/policyid"}
    ),
    "streaminglocators": frozenset({"name", "properties/created", "properties/endtime"}),
    "streamingpolicies": frozenset({"name", "properties/created"}),
    "transforms": frozenset({"name", "properties/created", "properties/lastmodified"}),
    "jobs": frozenset({"name", "properties/state", "properties/created", "properties/lastmodified"}),
}
# Enum literals (``Microsoft.Media.JobState'Scheduled'``, spec example jobs-list-all-filter-by-
# name-and-state.json) are compared as their value, without regard to case (the example writes
# ``'finished'``); odata-query does not parse them, so they become plain strings first.
_ENUM_LITERAL = re.compile(r"\bMicrosoft\.Media\.JobState'([A-Za-z]{1,32})'")
_CASELESS = frozenset({"properties/state"})
_TIMES = frozenset({"properties/created", "properties/lastmodified", "properties/endtime"})
_IDS = frozenset({"properties/assetid", "properties/policyid"})
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
}

Item = dict[str, Any]


class _Invalid(Exception):
    pass


def _bad(name: str, text: str) -> errors.ArmError:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return errors.ArmError(400, "BadRequest", f"The {name} '{shown}' is not supported for this collection.")


def _field(item: Item, path: str) -> Any:
    if path == "name":
        return item.get("name")
    props = item.get("properties") or {}
    wanted = path.split("/", 1)[1]
    return next((v for k, v in props.items() if k.lower() == wanted), None)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        head, dot, rest = text.partition(".")
        if dot:  # Python takes at most 6 fractional digits; Azure writes 7
            digits = "".join(c for c in rest if c.isdigit())
            text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _normal(path: str, value: Any) -> Any:
    if path in _TIMES:
        return _instant(value)
    if path in _IDS or path in _CASELESS:
        return str(value).lower() if value is not None else None
    return value


def _literal(node: ast._Node) -> Any:
    if isinstance(node, ast.String | ast.GUID):
        return node.val
    if isinstance(node, ast.DateTime | ast.Date):
        return node.py_val
    if isinstance(node, ast.Integer | ast.Float):
        return node.py_val
    raise _Invalid


def _path(node: ast._Node, allowed: frozenset[str]) -> str:
    if isinstance(node, ast.Identifier) and not node.namespace:
        path = node.name.lower()
    elif isinstance(node, ast.Attribute) and isinstance(node.owner, ast.Identifier):
        path = f"{node.owner.name}/{node.attr}".lower()
    else:
        raise _Invalid
    if path not in allowed:
        raise _Invalid
    return path


def _compile(node: ast._Node, allowed: frozenset[str], depth: int) -> Callable[[Item], bool]:
    if depth > MAX_DEPTH:
        raise _Invalid
    if isinstance(node, ast.BoolOp):
        left, right = _compile(node.left, allowed, depth + 1), _compile(node.right, allowed, depth + 1)
        if isinstance(node.op, ast.And):
            return lambda item: left(item) and right(item)
        return lambda item: left(item) or right(item)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, allowed, depth + 1)
        return lambda item: not inner(item)
    if isinstance(node, ast.Compare) and type(node.comparator) in _COMPARE:
        path = _path(node.left, allowed)
        wanted = _normal(path, _literal(node.right))
        if wanted is None:
            raise _Invalid
        compare = _COMPARE[type(node.comparator)]

        def keep(item: Item) -> bool:
            have = _normal(path, _field(item, path))
            try:
                return have is not None and compare(have, wanted)
            except TypeError:  # a number compared with a name: never equal, never ordered
                return isinstance(node.comparator, ast.NotEq)

        return keep
    raise _Invalid


def apply(kind: str, items: list[Item], query: dict[str, str]) -> list[Item]:
    """``items`` (rendered resources of collection ``kind``) filtered, ordered and cut as ``query``'s
    ``$filter``/``$orderby``/``$top`` say. 400 ``BadRequest`` for a query outside the module's grammar."""
    allowed = FIELDS.get(kind.lower(), frozenset({"name"}))
    text = query.get("$filter", "")
    if text.strip():
        if len(text) > MAX_QUERY_LENGTH:
            raise _bad("$filter", text)
        try:
            plain = _ENUM_LITERAL.sub(lambda m: f"'{m.group(1)}'", text)
            keep = _compile(ODataParser().parse(ODataLexer().tokenize(plain)), allowed, 0)
        except (ODataException, _Invalid, RecursionError, ValueError):
            raise _bad("$filter", text) from None
        items = [item for item in items if keep(item)]
    order = query.get("$orderby", "").strip()
    if order:
        field, _, direction = order.partition(" ")
        path, direction = field.lower(), direction.strip().lower() or "asc"
        if len(order) > 256 or path not in allowed or direction not in ("asc", "desc"):
            raise _bad("$orderby", order)
        minimum = datetime.min.replace(tzinfo=UTC) if path in _TIMES else ""
        items = sorted(
            items, key=lambda item: _normal(path, _field(item, path)) or minimum, reverse=direction == "desc"
        )
    top = query.get("$top", "").strip()
    if top:
        if not re.fullmatch(r"[0-9]{1,6}", top) or not 0 < int(top) <= MAX_TOP:
            raise _bad("$top", top)
        items = items[: int(top)]
    return items


def asks(query: dict[str, str]) -> bool:
    """Whether ``query`` has any of ``$filter``, ``$orderby``, ``$top``."""
    return any(query.get(name, "").strip() for name in ("$filter", "$orderby", "$top"))
