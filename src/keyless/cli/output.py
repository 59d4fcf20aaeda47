"""How every show/list command prints: ``--output json|table|tsv`` and a JMESPath ``--query``, as in az.

- ``-o none`` prints nothing (a script that only wants the exit code).
- ``--query`` is JMESPath (the ``jmespath`` library az uses), applied to what ``-o json`` prints.
- No ``--output``: the command's own table, or with ``--query`` the result alone: a string, number
  or boolean bare (as ``-o tsv``, so ``$(keyless identity show ... --query clientId)`` is the value),
  anything else as JSON (az's default).
- ``-o tsv`` follows az's (knack's) TSV: one line per list item, a dict's values in key order,
  a nested list as its length and a nested dict as an empty field.
- Tables never wrap or fold a cell: an id or GUID stays on one line however wide the table
  gets (copy-paste must give the whole id).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Annotated, Any

import jmespath
import jmespath.exceptions
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyless.arm.ids import id_segments

console = Console(soft_wrap=True)


class OutputFormat(enum.StrEnum):
    json = "json"
    table = "table"
    tsv = "tsv"
    none = "none"


def _check_query(value: str | None) -> str | None:
    """Compile the query before anything is sent, so a bad one changes nothing (exit 2)."""
    if value is not None:
        try:
            jmespath.compile(value)
        except jmespath.exceptions.JMESPathError as exc:
            raise typer.BadParameter(f"not a JMESPath query: {exc}") from None
    return value


Output = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="json, table, tsv or none. Default: a table; with --query, a string or number bare, else JSON.",
    ),
]
Query = Annotated[
    str | None,
    typer.Option(
        "--query",
        callback=_check_query,
        help="A JMESPath query, as in az: e.g. id, clientId, identity.principalId, '[].name'.",
    ),
]


def emit(
    value: Any,
    output: OutputFormat | None,
    query: str | None,
    table: Callable[[Any], None] | None = None,
    *,
    default: OutputFormat = OutputFormat.table,
) -> None:
    """Print ``value`` (JSON-shaped) as ``--output`` and ``--query`` ask (see the module docstring).

    ``table`` is the command's own table view, used for ``-o table`` without a query; otherwise
    a generic table of the (queried) value is drawn.
    """
    if query is not None:
        try:
            value = jmespath.search(query, value)
        except jmespath.exceptions.JMESPathError as exc:  # e.g. a function given the wrong type
            Console(stderr=True, soft_wrap=True).print(f"argument --query: {exc}", style="red", markup=False)
            raise typer.Exit(2) from None
    if output is None and query is not None:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            print(value)
        elif value is not None:
            print_json(value)
        return
    chosen = output or default
    if chosen is OutputFormat.none:
        return
    if chosen is OutputFormat.json:
        print_json(value)
    elif chosen is OutputFormat.tsv:
        print(tsv(value), end="")
    elif table is not None and query is None:
        table(value)
    else:
        print_table(generic_table(value))


def uses_own_table(output: OutputFormat | None, query: str | None) -> bool:
    """Whether ``emit`` will draw the command's own table (so it may fetch what that needs)."""
    return query is None and output in (None, OutputFormat.table)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _tsv_field(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return value if isinstance(value, str) else str(value)


def tsv(value: Any) -> str:
    """az's TSV: rows are a list's items (or the value itself); a dict row is its values by key."""
    rows = value if isinstance(value, list) else [value]
    lines = []
    for row in rows:
        if isinstance(row, dict):
            fields = [_tsv_field(v) for _, v in sorted(row.items())]
        elif isinstance(row, list):
            fields = [_tsv_field(v) for v in row]
        else:
            fields = [_tsv_field(row)]
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


def _cell(value: Any) -> Text:
    if value is None:
        return Text("")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, ensure_ascii=False))
    return Text(str(value))


def generic_table(value: Any) -> Table:
    """A table of any JSON value: a list of objects by column, an object as name/value rows."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns: list[str] = []
        for item in value:
            columns.extend(k for k in item if k not in columns)
        table = Table()
        for column in columns:
            table.add_column(column)
        for item in value:
            table.add_row(*(_cell(item.get(c)) for c in columns))
        return table
    table = Table(show_header=False)
    table.add_column()
    if isinstance(value, dict):
        table.add_column()
        for key, item in value.items():
            table.add_row(Text(str(key)), _cell(item))
    else:
        for item in value if isinstance(value, list) else [value]:
            table.add_row(_cell(item))
    return table


def print_table(table: Table, target: Console | None = None) -> None:
    """Draw a table as wide as its widest row needs, never wrapping or folding a cell.

    A string title is printed on its own (unwrapped) line above: a table wraps its title.
    """
    out = target or console
    if isinstance(table.title, str):
        out.print(Text(table.title, style="italic"), soft_wrap=True)
        table.title = None
    for column in table.columns:
        column.no_wrap = True
        column.overflow = "ignore"
    needed = out.measure(table, options=out.options.update_width(1 << 16)).maximum
    width = out.width
    out.width = max(width, needed)
    try:
        out.print(table, crop=False)
    finally:
        out.width = width


def resource_group_of(resource_id: str) -> str | None:
    """The resource group named in a resource id (as az adds ``resourceGroup``), or None."""
    segments = id_segments(resource_id) or []
    lowered = [s.lower() for s in segments]
    if "resourcegroups" in lowered:
        at = lowered.index("resourcegroups")
        if at + 1 < len(segments):
            return segments[at + 1]
    return None


def az_shape(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as az prints it: ``properties`` lifted to the top level (where no top-level key
    has the name) and ``resourceGroup`` added; so ``--query clientId`` works as with
    ``az identity show``. (az's SDK models flatten ``properties`` for identities, VMs and sites.)"""
    shaped = {k: v for k, v in resource.items() if k != "properties"}
    for key, value in (resource.get("properties") or {}).items():
        shaped.setdefault(key, value)
    group = resource_group_of(str(resource.get("id") or ""))
    if group is not None:
        shaped.setdefault("resourceGroup", group)
    return shaped
