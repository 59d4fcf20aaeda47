"""Blob index tag expressions: Find Blobs by Tags (``where``) and the ``x-ms-if-tags`` condition.

Grammar (REST docs "Find Blobs by Tags", "Blob index tags: ... SQL-like expressions"):
``expr := term (AND term)*``; ``term := key op 'value'``; ``key`` a double-quoted tag key (a bare
identifier is accepted too) or ``@container`` (Find Blobs only); ``op`` one of ``= > >= < <=``;
values single-quoted (``''`` inside is a quote). Comparisons are of strings, byte-wise. At most 10
terms; an expression longer than 4 KiB or malformed is 400 ``InvalidQueryParameterValue`` (``where``)
or ``InvalidHeaderValue`` (``x-ms-if-tags``).

Find Blobs by Tags scans the account's tagged blobs in (container, name) order, at most
``SCAN_LIMIT`` rows per request, and continues with ``NextMarker``; each match lists the tags its
expression named (as Azure does).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keyless.providers.storage.blob import errors, store
from keyless.providers.storage.blob.request import BlobRequest, Reply
from keyless.providers.storage.blob.xml import XML_DECLARATION, el
from keyless.store.db import Database
from keyless.store.tables import blobs

MAX_EXPRESSION = 4096
MAX_TERMS = 10
SCAN_LIMIT = 20_000
_TOKEN = re.compile(
    r"\s*(?:(?P<quoted>\"(?:[^\"]|\"\")*\")|(?P<value>'(?:[^']|'')*')|(?P<op>>=|<=|=|>|<)"
    r"|(?P<word>@?[A-Za-z0-9_.\-+/:]+))"
)


@dataclass(frozen=True)
class Term:
    key: str  # a tag key, or "@container"
    op: str
    value: str


class BadExpression(ValueError):
    pass


def parse(text: str, *, allow_container: bool) -> list[Term]:
    """The terms of an expression; BadExpression if it is malformed or too big."""
    if not text.strip() or len(text) > MAX_EXPRESSION:
        raise BadExpression(text)
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise BadExpression(text)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    terms: list[Term] = []
    index = 0
    while True:
        if index + 3 > len(tokens):
            raise BadExpression(text)
        (key_kind, key), (op_kind, op), (value_kind, value) = tokens[index : index + 3]
        if op_kind != "op" or value_kind != "value" or key_kind not in ("quoted", "word"):
            raise BadExpression(text)
        name = key[1:-1].replace('""', '"') if key_kind == "quoted" else key
        if name.lower() == "@container":
            if not allow_container or op != "=":
                raise BadExpression(text)
            name = "@container"
        elif name.startswith("@") or key.upper() == "AND":
            raise BadExpression(text)
        terms.append(Term(name, op, value[1:-1].replace("''", "'")))
        index += 3
        if len(terms) > MAX_TERMS:
            raise BadExpression(text)
        if index == len(tokens):
            return terms
        if tokens[index] != ("word", tokens[index][1]) or tokens[index][1].upper() != "AND":
            raise BadExpression(text)
        index += 1


def _holds(term: Term, actual: str | None) -> bool:
    if actual is None:
        return False
    if term.op == "=":
        return actual == term.value
    if term.op == ">":
        return actual > term.value
    if term.op == ">=":
        return actual >= term.value
    if term.op == "<":
        return actual < term.value
    return actual <= term.value


def matches(terms: list[Term], container: str, tags: dict[str, str]) -> bool:
    return all(_holds(t, container if t.key == "@container" else tags.get(t.key)) for t in terms)


def check_if_tags(req: BlobRequest, row: Any) -> None:
    """``x-ms-if-tags``: 412 ``ConditionNotMet`` unless the blob's tags satisfy the expression."""
    text = req.headers.get("x-ms-if-tags")
    if text is None or row is None:
        return
    try:
        terms = parse(text, allow_container=False)
    except BadExpression:
        raise errors.invalid_header("x-ms-if-tags", text) from None
    if not matches(terms, "", store.loads(row.tags)):
        raise errors.condition_not_met()


def _marker(container: str, name: str) -> str:
    return base64.urlsafe_b64encode(f"{container}\n{name}".encode()).decode().rstrip("=")


def _unmarker(text: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise errors.invalid_query("marker", text) from None
    container, sep, name = raw.partition("\n")
    if not sep or len(text) > 4096:
        raise errors.invalid_query("marker", text)
    return container, name


def find(db: Database, req: BlobRequest, container: str | None) -> Reply:
    """Find Blobs by Tags in the account (``container`` None) or in one container."""
    where = req.query.get("where", "")
    try:
        terms = parse(where, allow_container=container is None)
    except BadExpression:
        raise errors.invalid_query("where", where) from None
    size_text = req.query.get("maxresults", "5000")
    if not size_text.isdigit() or len(size_text) > 9 or int(size_text) < 1:
        raise errors.invalid_query("maxresults", size_text)
    size = min(int(size_text), 5000)
    b = blobs.c
    name_col, container_col = store.ordered(db, b.name), store.ordered(db, b.container)
    query = sa.select(b.container, b.name, b.tags).where(
        b.account == req.account, b.snapshot == "", b.tags != "{}"
    )
    wanted = next((t.value for t in terms if t.key == "@container"), None) if container is None else container
    if wanted is not None:
        query = query.where(b.container == wanted)
    cursor = _unmarker(req.query["marker"]) if req.query.get("marker") else None
    found: list[str] = []
    next_marker: str | None = None
    scanned = 0
    with db.read() as conn:
        while next_marker is None and scanned < SCAN_LIMIT:
            page = query
            if cursor is not None:
                page = page.where(
                    sa.or_(
                        container_col > cursor[0], sa.and_(b.container == cursor[0], name_col >= cursor[1])
                    )
                )
            rows = conn.execute(page.order_by(container_col, name_col).limit(1000)).all()
            for row in rows:
                scanned += 1
                if len(found) >= size or scanned > SCAN_LIMIT:
                    next_marker = _marker(row.container, row.name)
                    break
                tags = store.loads(row.tags)
                if matches(terms, row.container, tags):
                    shown = "".join(
                        f"<Tag>{el('Key', t.key)}{el('Value', tags[t.key])}</Tag>"
                        for t in terms
                        if t.key in tags
                    )
                    found.append(
                        f"<Blob>{el('Name', row.name)}{el('ContainerName', row.container)}"
                        f"<Tags><TagSet>{shown}</TagSet></Tags></Blob>"
                    )
            if len(rows) < 1000 or next_marker is not None:
                break
            cursor = (rows[-1].container, rows[-1].name + "\x01")  # no blob name holds U+0001
    endpoint = req.endpoint.replace("&", "&amp;").replace('"', "&quot;")
    body = (
        f'{XML_DECLARATION}<EnumerationResults ServiceEndpoint="{endpoint}/">{el("Where", where)}'
        f"<Blobs>{''.join(found)}</Blobs>{el('NextMarker', next_marker) if next_marker else '<NextMarker />'}"
        "</EnumerationResults>"
    )
    return Reply(200, {}, body.encode(), errors.XML_TYPE)
