"""XML in and out, and the time formats the Blob service writes.

Request bodies are small documents (block lists, tags, key info, ACLs); each is bounded by the
caller before it gets here. They are parsed by ``defusedxml`` with DTDs, entities and external
references forbidden, and only as UTF-8 (Azure's encoding for these bodies): a document in another
encoding could hide a DOCTYPE from any byte-level check. Output is built as text with every value
escaped.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import formatdate
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from keyless.providers.storage.blob import errors

XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


def parse(raw: bytes) -> ET.Element:
    """The root element of ``raw``; 400 ``InvalidXmlDocument`` if it is not well-formed UTF-8 XML,
    or declares a DTD, an entity or an external reference."""
    try:
        raw.decode("utf-8")  # UTF-8 only: no UTF-16 (or other) document reaches the parser
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:
            raise ValueError
        root: ET.Element = defused_fromstring(
            raw, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except (ET.ParseError, DefusedXmlException, ValueError, UnicodeDecodeError):
        raise errors.invalid_xml() from None


def text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text


def el(name: str, value: object) -> str:
    """``<name>value</name>`` with the value escaped; None gives ``<name />``."""
    if value is None:
        return f"<{name} />"
    return f"<{name}>{escape(str(value))}</{name}>"


def rfc1123(ts: float) -> str:
    """``Sun, 29 Nov 2026 20:26:28 GMT``: Last-Modified, x-ms-creation-time, Date."""
    return formatdate(ts, usegmt=True)


def iso7(ts: float) -> str:
    """``2026-11-29T20:26:28.1234567Z``: snapshot ids and the Time line of error messages."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def iso_seconds(ts: float) -> str:
    """``2026-11-29T20:26:28Z`` (user delegation key times)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float | None:
    """An ISO 8601 UTC time (``…Z``, optional fraction) as a POSIX time, or None."""
    if not value or len(value) > 40 or not value.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00").timestamp()
    except ValueError:
        return None


def parse_http_date(value: str) -> float | None:
    """An RFC 1123 date (``If-Modified-Since``) as a POSIX time, or None."""
    from email.utils import parsedate_to_datetime

    if not value or len(value) > 64:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def now() -> float:
    return time.time()
