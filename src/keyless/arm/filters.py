"""``$filter`` of the generic resource lists (``GET .../resources``), parsed by ``odata-query``.

The grammar ARM documents for ``Resources_List`` (Microsoft.Resources 2024-11-01,
``resources.json``, parameter ``$filter``): ``eq``/``ne`` on ``resourceType``, ``name``,
``resourceGroup``, ``location`` and ``identity/principalId``; ``substringof(value, name|resourceGroup)``;
``tagName eq 'n' [and tagValue eq 'v']`` (one tag with that name and value) and
``startswith(tagName, 'prefix')``; combined with ``and``/``or``. Anything else is ARM's 400
``InvalidFilterInQueryString`` "Invalid $filter '...' specified in the query string." (the code and
text ARM answers, e.g. Azure/azure-sdk-for-net#18748). Names and types compare case-insensitively,
tag values exactly (Azure's tag rules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from keyless.arm import errors
from keyless.store.tables import resources

# The longest $filter looked at, and the deepest expression: far past any real client's.
MAX_FILTER_LENGTH = 2048
MAX_DEPTH = 32


@dataclass(frozen=True)
class Item:
    """What a filter looks at in one resource (lower-case where ARM compares case-insensitively)."""

    type_key: str
    group_key: str
    name_key: str
    location: str
    tags: dict[str, str]
    principal_id: str


Predicate = Callable[[Item], bool]


@dataclass(frozen=True)
class ResourceFilter:
    """A compiled ``$filter``: ``keep`` decides an item; ``narrowing`` is an SQL condition implied by
    it (top-level ``eq`` on type, group or name), to read fewer rows."""

    keep: Predicate
    narrowing: sa.ColumnElement[bool] | None


def invalid_filter(text: str) -> errors.ArmError:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return errors.ArmError(
        400, "InvalidFilterInQueryString", f"Invalid $filter '{shown}' specified in the query string."
    )


class _Invalid(Exception):
    pass


def _parser() -> ODataParser:
    """odata-query's OData 4 parser, also taking OData 3's ``substringof``, which ARM documents."""
    parser = ODataParser()
    standard = parser._function_call

    def function_call(func: ast.Identifier, args: list[ast._Node]) -> ast._Node:
        if _function_name(func) == "substringof" and len(args) == 2:
            return ast.Call(func, args)
        result: ast._Node = standard(func, args)
        return result

    parser._function_call = function_call  # type: ignore[method-assign]
    return parser


def parse_filter(text: str) -> ResourceFilter | None:
    """Compile ``text``; None for an empty filter (az sends ``$filter=``). Raises 400
    ``InvalidFilterInQueryString`` for anything outside the documented grammar."""
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(text)
    try:
        tree = _parser().parse(ODataLexer().tokenize(text))
        return ResourceFilter(_compile(tree, 0), _narrowing(tree))
    except (ODataException, _Invalid, RecursionError):
        raise invalid_filter(text) from None


def _function_name(func: ast.Identifier) -> str:
    return ".".join((*func.namespace, func.name)).lower()


def _string(node: ast._Node) -> str:
    if not isinstance(node, ast.String):
        raise _Invalid
    return node.val


def _property(node: ast._Node) -> str:
    if isinstance(node, ast.Identifier) and not node.namespace:
        return node.name.lower()
    if isinstance(node, ast.Attribute) and isinstance(node.owner, ast.Identifier):
        return f"{node.owner.name}/{node.attr}".lower()
    raise _Invalid


_FIELDS: dict[str, Callable[[Item], str]] = {
    "resourcetype": lambda i: i.type_key,
    "resourcegroup": lambda i: i.group_key,
    "name": lambda i: i.name_key,
    "location": lambda i: i.location,
    "identity/principalid": lambda i: i.principal_id,
}


def _conjuncts(node: ast._Node, depth: int) -> list[ast._Node]:
    if depth > MAX_DEPTH:
        raise _Invalid
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [*_conjuncts(node.left, depth + 1), *_conjuncts(node.right, depth + 1)]
    return [node]


def _is_tag_term(node: ast._Node) -> bool:
    if isinstance(node, ast.Compare):
        return isinstance(node.left, ast.Identifier) and node.left.name.lower() in ("tagname", "tagvalue")
    if isinstance(node, ast.Call):
        return _function_name(node.func) == "startswith"
    return False


def _tag_predicate(terms: list[ast._Node]) -> Predicate:
    """``tagName``/``tagValue`` terms of one conjunction: some single tag satisfies them all."""
    name_exact: list[str] = []
    name_prefixes: list[str] = []
    values: list[str] = []
    for term in terms:
        if isinstance(term, ast.Call):
            args = term.args
            if len(args) != 2 or _property(args[0]) != "tagname":
                raise _Invalid
            name_prefixes.append(_string(args[1]).lower())
            continue
        assert isinstance(term, ast.Compare)
        if not isinstance(term.comparator, ast.Eq):
            raise _Invalid
        wanted = _string(term.right)
        if _property(term.left) == "tagname":
            name_exact.append(wanted.lower())
        else:
            values.append(wanted)

    def name_ok(name: str) -> bool:
        lowered = name.lower()
        return all(lowered == n for n in name_exact) and all(lowered.startswith(p) for p in name_prefixes)

    def value_ok(value: str) -> bool:
        return all(value == v for v in values)

    if not name_exact and not name_prefixes:  # a tagValue needs its tagName
        raise _Invalid

    def keep(item: Item) -> bool:
        return any(name_ok(k) and value_ok(v) for k, v in item.tags.items())

    return keep


def _compile(node: ast._Node, depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise _Invalid
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        terms = _conjuncts(node, depth)
        tags = [t for t in terms if _is_tag_term(t)]
        parts = [_compile(t, depth + 1) for t in terms if not _is_tag_term(t)]
        if tags:
            parts.append(_tag_predicate(tags))
        return lambda item: all(p(item) for p in parts)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        left, right = _compile(node.left, depth + 1), _compile(node.right, depth + 1)
        return lambda item: left(item) or right(item)
    if _is_tag_term(node):
        return _tag_predicate([node])
    if isinstance(node, ast.Compare) and isinstance(node.comparator, (ast.Eq, ast.NotEq)):
        field = _FIELDS.get(_property(node.left))
        if field is None:
            raise _Invalid
        wanted = _string(node.right).lower()
        if isinstance(node.comparator, ast.Eq):
            return lambda item: field(item) == wanted
        return lambda item: field(item) != wanted
    if isinstance(node, ast.Call) and _function_name(node.func) == "substringof":
        target = _property(node.args[1])
        if target not in ("name", "resourcegroup"):
            raise _Invalid
        needle, of = _string(node.args[0]).lower(), _FIELDS[target]
        return lambda item: needle in of(item)
    raise _Invalid


_COLUMNS: dict[str, Any] = {
    "resourcetype": resources.c.type_key,
    "resourcegroup": resources.c.group_key,
    "name": sa.func.lower(resources.c.name),
}


def _narrowing(tree: ast._Node) -> sa.ColumnElement[bool] | None:
    conditions = []
    for term in _conjuncts(tree, 0):
        if isinstance(term, ast.Compare) and isinstance(term.comparator, ast.Eq):
            column = _COLUMNS.get(_property(term.left)) if not _is_tag_term(term) else None
            if column is not None:
                conditions.append(column == _string(term.right).lower())
    return sa.and_(*conditions) if conditions else None
