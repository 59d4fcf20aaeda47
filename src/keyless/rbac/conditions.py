"""Azure ABAC role-assignment conditions (``conditionVersion`` 2.0): the grammar, a parser, and the
tree an evaluator walks.

Sources: azure-docs ``articles/role-based-access-control/conditions-format.md`` ("Azure role
assignment condition format and syntax"): attribute sources ``@Resource``, ``@Request``,
``@Principal`` and ``@Environment``; the function operators ``ActionMatches{'..'}``,
``SubOperationMatches{'..'}`` and ``Exists <attribute>``; ``AND``/``&&``, ``OR``/``||``,
``NOT``/``!``; the String, Numeric, DateTime, Guid and Bool comparison families, and the four
cross-product quantifiers (``ForAnyOfAnyValues:`` ... ``ForAllOfAllValues:``) over String, Numeric
and Guid comparisons.  "If you have three or more expressions ... with different operators between
the expressions ... You must add parentheses": ``a AND b OR c`` does not parse here.  Operators
and keywords are matched without regard to case (``stringEquals`` in azure-cli's own example,
Azure/azure-cli#14958).  GUIDs are written bare (``GuidEquals {8e3af657-...}`` in the built-in
roles' conditions, azure-docs ``built-in-roles``); strings in single quotes.

Azure answers any condition it cannot accept, and any ``conditionVersion`` other than ``2.0``, with
400 ``InvalidRoleAssignmentCondition`` "The given role assignment condition is invalid."
(azure-docs ``conditions-troubleshoot.md``; the version case: MicrosoftDocs/azure-docs#119449; the
code as Azure names it in public Terraform/Bicep notes).  Azure also checks that the attributes
exist and that the actions are ones the role grants; Keyless checks the syntax and the value types.

The tree (``Condition``) is plain frozen dataclasses: ``And``/``Or`` (two or more items),
``Not``, ``ActionMatches``, ``SubOperationMatches``, ``Exists``, ``Compare`` with ``Attribute``
and ``Literal`` operands.  Bounds (Keyless's; Azure documents only the 8 KB size): nesting depth
``MAX_DEPTH``, values per set ``MAX_SET``.
"""

from __future__ import annotations

import datetime
import re
import threading
from dataclasses import dataclass
from typing import Final, TypeAlias, cast
from typing import Literal as TypingLiteral

from lark import Lark, Token, Transformer_NonRecursive, Tree
from lark.exceptions import LarkError

__all__ = [
    "CONDITION_VERSION",
    "MAX_CONDITION_BYTES",
    "MAX_DEPTH",
    "ActionMatches",
    "And",
    "Attribute",
    "Compare",
    "Condition",
    "ConditionError",
    "Exists",
    "Literal",
    "Not",
    "Operator",
    "Or",
    "SubOperationMatches",
    "parse_condition",
]

# The only version Azure accepts (specs: RoleAssignmentProperties.conditionVersion; azure-docs
# conditions-role-assignments-rest.md: "set to the default value of 2.0" when omitted).
CONDITION_VERSION: Final = "2.0"
# Azure's limit on a condition's size (azure-docs includes/role-based-access-control/limits.md).
MAX_CONDITION_BYTES: Final = 8 * 1024
# Keyless's bounds: real conditions nest a handful of levels and list tens of values.
MAX_DEPTH: Final = 64
MAX_SET: Final = 1000

Source = TypingLiteral["Resource", "Request", "Principal", "Environment"]
Family = TypingLiteral["String", "Numeric", "DateTime", "Guid", "Bool"]
Quantifier = TypingLiteral["ForAnyOfAnyValues", "ForAllOfAnyValues", "ForAnyOfAllValues", "ForAllOfAllValues"]
ValueKind = TypingLiteral["string", "number", "guid", "bool"]


class ConditionError(ValueError):
    """The condition (or its version) is not one Azure accepts; ``str()`` says why (for logs and
    ``keyless access explain``; the wire answer is Azure's fixed message)."""


# --------------------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """``@{source}[{name}]``, e.g. ``@Resource[Microsoft.Storage/.../containers:name]``."""

    source: Source
    name: str


@dataclass(frozen=True)
class Literal:
    """A value: ``kind`` 'string' (str, also DateTime text), 'number' (int), 'guid' (lower-case
    str) or 'bool'."""

    kind: ValueKind
    value: str | int | bool


@dataclass(frozen=True)
class Operator:
    """``[quantifier:]{family}[Not]{comparison}[IgnoreCase]``: ``comparison`` is Equals, StartsWith,
    Like, GreaterThan, GreaterThanEquals, LessThan or LessThanEquals; ``negated`` for the ``Not``
    forms; ``quantifier`` None for a single-value comparison."""

    quantifier: Quantifier | None
    family: Family
    comparison: str
    negated: bool
    ignore_case: bool
    text: str  # as written


Operand: TypeAlias = Attribute | Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class Compare:
    left: Operand
    operator: Operator
    right: Operand


@dataclass(frozen=True)
class ActionMatches:
    pattern: str


@dataclass(frozen=True)
class SubOperationMatches:
    pattern: str


@dataclass(frozen=True)
class Exists:
    attribute: Attribute


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


Condition: TypeAlias = And | Or | Not | ActionMatches | SubOperationMatches | Exists | Compare


# --------------------------------------------------------------------------------------------------
# The grammar
# --------------------------------------------------------------------------------------------------

# LALR (a table-driven, non-recursive parser: no input can make it backtrack or recurse deeply).
# Mixed AND/OR at one level is a syntax error, as the docs require parentheses there.
GRAMMAR: Final = r"""
?start: expr

?expr: unary
     | unary (_AND unary)+        -> and_
     | unary (_OR unary)+         -> or_

?unary: _NOT unary                -> not_
      | "(" expr ")"
      | atom

?atom: _ACTION_MATCHES "{" STRING "}"           -> action_matches
     | _SUBOPERATION_MATCHES "{" STRING "}"     -> suboperation_matches
     | _EXISTS attribute                        -> exists
     | operand OPERATOR operand                 -> compare

?operand: attribute
        | value
        | "{" value ("," value)* "}"            -> value_set

attribute: ATTRIBUTE

?value: STRING                    -> string
      | GUID                      -> guid
      | NUMBER                    -> number
      | BOOL                      -> boolean

_AND: /AND\b/i | "&&"
_OR: /OR\b/i | "||"
_NOT: /NOT\b/i | "!"
_ACTION_MATCHES: /ActionMatches\b/i
_SUBOPERATION_MATCHES: /SubOperationMatches\b/i
_EXISTS: /Exists\b/i
ATTRIBUTE: /@(Resource|Request|Principal|Environment)\[[^\[\]\x00-\x1f]+\]/i
OPERATOR.2: /((ForAnyOfAnyValues|ForAllOfAnyValues|ForAnyOfAllValues|ForAllOfAllValues):)?(String|Numeric|DateTime|Guid|Bool)(Not)?(Equals|StartsWith|Like|GreaterThanEquals|GreaterThan|LessThanEquals|LessThan)(IgnoreCase)?\b/i
STRING: /'[^'\x00]*'/
GUID.3: /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z-])/
NUMBER: /-?[0-9]{1,18}(?![0-9A-Za-z.])/
BOOL.2: /(true|false)\b/i

%import common.WS
%ignore WS
"""

_OPERATOR = re.compile(
    r"(?:(?P<q>ForAnyOfAnyValues|ForAllOfAnyValues|ForAnyOfAllValues|ForAllOfAllValues):)?"
    r"(?P<family>String|Numeric|DateTime|Guid|Bool)(?P<not>Not)?"
    r"(?P<cmp>Equals|StartsWith|Like|GreaterThanEquals|GreaterThan|LessThanEquals|LessThan)"
    r"(?P<ic>IgnoreCase)?",
    re.IGNORECASE,
)
_CANONICAL = {
    w.lower(): w
    for w in (
        "ForAnyOfAnyValues",
        "ForAllOfAnyValues",
        "ForAnyOfAllValues",
        "ForAllOfAllValues",
        "String",
        "Numeric",
        "DateTime",
        "Guid",
        "Bool",
        "Equals",
        "StartsWith",
        "Like",
        "GreaterThanEquals",
        "GreaterThan",
        "LessThanEquals",
        "LessThan",
        "Resource",
        "Request",
        "Principal",
        "Environment",
    )
}
# Which comparisons each family has (conditions-format.md, one section per family).
_COMPARISONS: Final[dict[str, frozenset[str]]] = {
    "String": frozenset({"Equals", "StartsWith", "Like"}),
    "Numeric": frozenset({"Equals", "GreaterThan", "GreaterThanEquals", "LessThan", "LessThanEquals"}),
    "DateTime": frozenset({"Equals", "GreaterThan", "GreaterThanEquals", "LessThan", "LessThanEquals"}),
    "Guid": frozenset({"Equals"}),
    "Bool": frozenset({"Equals"}),
}
_ORDERED: Final = frozenset({"GreaterThan", "GreaterThanEquals", "LessThan", "LessThanEquals"})
# The cross-product quantifiers apply to String, Numeric and Guid comparisons only.
_QUANTIFIABLE: Final = frozenset({"String", "Numeric", "Guid"})
# DateTime values: "yyyy-mm-ddThh:mm:ss.mmmmmmmZ" (conditions-format.md), fraction optional
# ('2022-06-01T00:00:00.0Z' in its examples).
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z")


def _is_datetime(text: str) -> bool:
    """The shape above, and a real calendar date and time (no month 13, no February 30th)."""
    if not _DATETIME.fullmatch(text):
        return False
    try:
        datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return False
    return True


_VALUE_KIND: Final[dict[str, tuple[ValueKind, ...]]] = {
    "String": ("string",),
    "Numeric": ("number",),
    "DateTime": ("string",),
    "Guid": ("guid", "string"),
    "Bool": ("bool",),
}


def _operator(text: str) -> Operator:
    m = _OPERATOR.fullmatch(text)
    if m is None:  # the lexer's pattern and this one are the same language
        raise ConditionError(f"unknown operator '{text}'")
    family = _CANONICAL[m["family"].lower()]
    comparison = _CANONICAL[m["cmp"].lower()]
    quantifier = _CANONICAL[m["q"].lower()] if m["q"] else None
    negated, ignore_case = bool(m["not"]), bool(m["ic"])
    if comparison not in _COMPARISONS[family]:
        raise ConditionError(f"'{text}' is not an operator ({family} has no {comparison})")
    if ignore_case and family != "String":
        raise ConditionError(f"'{text}' is not an operator (only String comparisons ignore case)")
    if negated and comparison in _ORDERED:
        raise ConditionError(f"'{text}' is not an operator")
    if quantifier is not None and family not in _QUANTIFIABLE:
        raise ConditionError(f"'{text}' is not an operator ({quantifier} takes String, Numeric or Guid)")
    return Operator(quantifier, family, comparison, negated, ignore_case, text)  # type: ignore[arg-type]


class _Build(Transformer_NonRecursive[Token, object]):
    """Parse tree -> ``Condition`` without recursion (a deep tree cannot exhaust the stack)."""

    def attribute(self, children: list[Token]) -> Attribute:
        text = str(children[0])
        source, _, rest = text[1:].partition("[")
        return Attribute(_CANONICAL[source.lower()], rest[:-1])  # type: ignore[arg-type]

    def string(self, children: list[Token]) -> Literal:
        return Literal("string", str(children[0])[1:-1])

    def guid(self, children: list[Token]) -> Literal:
        return Literal("guid", str(children[0]).lower())

    def number(self, children: list[Token]) -> Literal:
        return Literal("number", int(str(children[0])))

    def boolean(self, children: list[Token]) -> Literal:
        return Literal("bool", str(children[0]).lower() == "true")

    def value_set(self, children: list[Literal]) -> tuple[Literal, ...]:
        if len(children) > MAX_SET:
            raise ConditionError(f"a set holds more than {MAX_SET} values")
        return tuple(children)

    def action_matches(self, children: list[Token]) -> ActionMatches:
        return ActionMatches(str(children[0])[1:-1])

    def suboperation_matches(self, children: list[Token]) -> SubOperationMatches:
        return SubOperationMatches(str(children[0])[1:-1])

    def exists(self, children: list[Attribute]) -> Exists:
        return Exists(children[0])

    def compare(self, children: list[object]) -> Compare:
        left, op_token, right = children
        operator = _operator(str(op_token))
        _check_operands(operator, left, right)  # type: ignore[arg-type]
        return Compare(left, operator, right)  # type: ignore[arg-type]

    def not_(self, children: list[Condition]) -> Not:
        return Not(children[0])

    def and_(self, children: list[Condition]) -> And:
        return And(tuple(children))

    def or_(self, children: list[Condition]) -> Or:
        return Or(tuple(children))


def _check_operands(operator: Operator, left: Operand, right: Operand) -> None:
    """Each literal's type fits the operator's family; sets only with a quantifier."""
    if isinstance(left, Literal) and isinstance(right, Literal):
        raise ConditionError("a comparison needs an attribute or a set of values")
    allowed = _VALUE_KIND[operator.family]
    for side in (left, right):
        values: tuple[Literal, ...]
        if isinstance(side, tuple):
            if operator.quantifier is None:
                raise ConditionError(f"'{operator.text}' compares single values, not sets")
            values = side
        elif isinstance(side, Literal):
            values = (side,)
        else:
            continue
        for v in values:
            if v.kind not in allowed:
                raise ConditionError(f"'{operator.text}' cannot compare the {v.kind} value {v.value!r}")
            if operator.family == "DateTime" and not _is_datetime(str(v.value)):
                raise ConditionError(f"'{v.value}' is not a date-time (yyyy-mm-ddThh:mm:ss.fffffffZ)")
            if operator.family == "Guid" and v.kind == "string" and not _is_guid(str(v.value)):
                raise ConditionError(f"'{v.value}' is not a GUID")


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_guid(text: str) -> bool:
    return _GUID.fullmatch(text) is not None


_parser: Lark | None = None
_parser_lock = threading.Lock()


def _get_parser() -> Lark:
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)
        return _parser


def _depth(tree: Tree[Token]) -> int:
    """The parse tree's depth, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((c, level + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def _paren_depth(text: str) -> int:
    """How deep parentheses nest outside quoted strings (they leave no node in the tree)."""
    deepest = level = 0
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            level += 1
            deepest = max(deepest, level)
        elif not quoted and ch == ")":
            level -= 1
    return deepest


def parse_condition(text: str, version: str | None = None) -> Condition:
    """Parse a role assignment's ``condition`` (and check its ``conditionVersion``: None means the
    default, 2.0).  Returns the tree; raises ``ConditionError`` for a version other than 2.0, a
    condition over 8 KB (UTF-8) or deeper than ``MAX_DEPTH``, a syntax error, or a value whose type
    does not fit its operator."""
    if version is not None and version != CONDITION_VERSION:
        raise ConditionError(
            f"conditionVersion '{version[:20]}' is not supported (only '{CONDITION_VERSION}')"
        )
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONDITION_BYTES:
        raise ConditionError(f"the condition is larger than {MAX_CONDITION_BYTES} bytes")
    if "\x00" in text:
        raise ConditionError("the condition holds a NUL character")
    if _paren_depth(text) > MAX_DEPTH:
        raise ConditionError(f"the condition nests deeper than {MAX_DEPTH} levels")
    try:
        tree = _get_parser().parse(text)
    except LarkError as exc:
        raise ConditionError(f"syntax error: {str(exc).splitlines()[0][:200]}") from None
    if _depth(tree) > MAX_DEPTH:
        raise ConditionError(f"the condition nests deeper than {MAX_DEPTH} levels")
    try:
        result = _Build().transform(tree)
    except LarkError as exc:  # a ConditionError raised in a callback arrives wrapped
        cause = exc.__context__
        if isinstance(cause, ConditionError):
            raise ConditionError(str(cause)) from None
        raise ConditionError(str(exc)[:200]) from None
    if isinstance(result, (Attribute, Literal, tuple)):  # a bare operand is not a condition
        raise ConditionError("the condition is not a boolean expression")
    return cast(Condition, result)
