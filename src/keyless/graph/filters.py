"""Graph's ``$filter``, parsed by ``odata-query`` (the parser ``keyless.arm.filters`` uses) and
compiled to an SQL condition over the directory's tables.

The subset clients send for directory objects (Graph docs, "Use the $filter query parameter" and
each resource's filterable properties): ``eq``/``ne``/``in`` and ``startswith`` on string
properties, ``eq`` on booleans, ``servicePrincipalNames/any(c:c eq '...')`` and ``and``/``or``/
``not``. String comparisons ignore case, as Graph's do. A syntax error is Graph's 400 ``BadRequest``
"Invalid filter clause"; a property or operator outside the subset is 400
``Request_UnsupportedQuery``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from keyless.graph import errors

MAX_FILTER_LENGTH = 2048
MAX_DEPTH = 32


@dataclass(frozen=True)
class Schema:
    """What a collection can be filtered on: string columns, constant booleans, and string
    collections (``prop/any(x: x eq 'v')`` -> a condition)."""

    resource: str
    strings: Mapping[str, Any]
    booleans: Mapping[str, bool] = field(default_factory=dict)
    collections: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)

    def find(self, names: Mapping[str, Any], prop: str) -> Any:
        for name, value in names.items():
            if name.lower() == prop.lower():
                return value
        raise errors.unsupported_filter(prop, self.resource)


class _Syntax(Exception):
    pass


def compile_filter(text: str, schema: Schema) -> Any:
    """The SQL condition ``text`` stands for; None for an empty filter. GraphError otherwise."""
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise errors.invalid_filter(text)
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except (ODataException, RecursionError):
        raise errors.invalid_filter(text) from None
    try:
        return _compile(tree, schema, 0)
    except (_Syntax, RecursionError):
        raise errors.invalid_filter(text) from None


def _string(node: ast._Node) -> str:
    if not isinstance(node, ast.String):
        raise _Syntax
    return node.val


def _prop(node: ast._Node) -> str:
    if isinstance(node, ast.Identifier) and not node.namespace:
        return node.name
    if isinstance(node, ast.Attribute) and isinstance(node.owner, ast.Identifier):
        return f"{node.owner.name}/{node.attr}"
    raise _Syntax


def _compile(node: ast._Node, schema: Schema, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Syntax
    if isinstance(node, ast.BoolOp):
        left, right = _compile(node.left, schema, depth + 1), _compile(node.right, schema, depth + 1)
        return sa.and_(left, right) if isinstance(node.op, ast.And) else sa.or_(left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return sa.not_(_compile(node.operand, schema, depth + 1))
    if isinstance(node, ast.Compare):
        return _comparison(node, schema)
    if isinstance(node, ast.Call):
        if node.func.name.lower() != "startswith" or node.func.namespace or len(node.args) != 2:
            raise errors.unsupported_filter(node.func.name, schema.resource)
        column = schema.find(schema.strings, _prop(node.args[0]))
        return sa.func.lower(column).startswith(_string(node.args[1]).lower(), autoescape=True)
    if isinstance(node, ast.CollectionLambda):
        return _any(node, schema)
    raise _Syntax


def _comparison(node: ast.Compare, schema: Schema) -> Any:
    prop = _prop(node.left)
    if any(prop.lower() == b.lower() for b in schema.booleans):
        if not isinstance(node.comparator, ast.Eq | ast.NotEq) or not isinstance(node.right, ast.Boolean):
            raise errors.unsupported_filter(prop, schema.resource)
        holds = (schema.find(schema.booleans, prop) == node.right.py_val) == isinstance(
            node.comparator, ast.Eq
        )
        return sa.true() if holds else sa.false()
    column = sa.func.lower(schema.find(schema.strings, prop))
    if isinstance(node.comparator, ast.In):
        if not isinstance(node.right, ast.List) or len(node.right.val) > 15:  # Graph allows 15 values
            raise errors.unsupported_filter(prop, schema.resource)
        return column.in_([_string(v).lower() for v in node.right.val])
    if isinstance(node.comparator, ast.Eq):
        return column == _string(node.right).lower()
    if isinstance(node.comparator, ast.NotEq):
        return column != _string(node.right).lower()
    raise errors.unsupported_filter(prop, schema.resource)


def _any(node: ast.CollectionLambda, schema: Schema) -> Any:
    prop = _prop(node.owner)
    condition = schema.find(schema.collections, prop)
    lam = node.lambda_
    if not isinstance(node.operator, ast.Any) or lam is None:
        raise errors.unsupported_filter(prop, schema.resource)
    values = _lambda_values(lam.expression, lam.identifier.name, 0)
    return sa.or_(*(condition(v) for v in values))


def _lambda_values(node: ast._Node, variable: str, depth: int) -> list[str]:
    """``c eq 'a' or c eq 'b'`` -> ["a", "b"] (the forms Graph accepts inside ``any``)."""
    if depth > MAX_DEPTH:
        raise _Syntax
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return _lambda_values(node.left, variable, depth + 1) + _lambda_values(
            node.right, variable, depth + 1
        )
    if (
        isinstance(node, ast.Compare)
        and isinstance(node.comparator, ast.Eq)
        and isinstance(node.left, ast.Identifier)
        and node.left.name == variable
    ):
        return [_string(node.right)]
    raise _Syntax
