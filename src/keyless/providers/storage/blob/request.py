"""One Blob request as the operations see it, the reply they give, and ETag / date conditions.

Conditions ("Specifying conditional headers for Blob service operations", REST docs): on reads a
failed ``If-None-Match`` / ``If-Modified-Since`` is 304 and a failed ``If-Match`` /
``If-Unmodified-Since`` 412; on writes every failure is 412 ``ConditionNotMet``, except
``If-None-Match: *`` against an existing blob, which is 409 ``BlobAlreadyExists`` (what upload with
``overwrite=False`` expects; storage.md §2 "Overwrite rule").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from keyless.network import NetworkOrigin
from keyless.providers.storage.blob import errors
from keyless.providers.storage.blob.xml import parse_http_date
from keyless.web import Receive, bounded_int

MAX_PUT_BLOB = 5000 * 1024 * 1024  # Put Blob, version 2019-12-12 and later (storage.md §5)
MAX_BLOCK = 4000 * 1024 * 1024


@dataclass
class BlobRequest:
    """The parsed request: ``account`` (lower-case), ``container``/``blob`` (decoded; None when the
    URL has none), ``query`` (first value of each name), ``headers`` (lower-case names)."""

    method: str
    account: str
    container: str | None
    blob: str | None
    query: dict[str, str]
    query_string: str
    headers: dict[str, str]
    raw_path: str
    receive: Receive
    now: float
    origin: NetworkOrigin
    endpoint: str  # https://host[:port][/account] as the caller addressed it, for listings
    header_pairs: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def content_length(self, *, required: bool, limit: int) -> int:
        """The Content-Length; 411 when required and absent, 413 past ``limit``, 400 if malformed."""
        text = self.headers.get("content-length")
        if text is None:
            if required:
                raise errors.missing_content_length()
            return 0
        value = bounded_int(text.strip(), 1 << 62)
        if value is None:
            raise errors.invalid_header("Content-Length", text)
        if value > limit:
            raise errors.body_too_large(limit)
        return value

    def lease_id(self) -> str | None:
        value = self.headers.get("x-ms-lease-id")
        return value.strip() if value is not None else None


@dataclass
class Reply:
    """What an operation answers: status, headers, and either ``body`` bytes or a ``stream``
    (file, offset, length) sent from disk in chunks."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: bytes | None = None
    stream: tuple[str | None, int, int] | None = None


def _etags(value: str) -> list[str]:
    return [part.strip().strip('"') for part in value.split(",") if part.strip()][:64]


def check_conditions(req: BlobRequest, row: Any, *, read: bool) -> None:
    """Apply If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since to ``row`` (None: the
    object does not exist). Raises 304 (reads), 409 or 412 (module docstring)."""
    h = req.headers
    if "x-ms-if-tags" in h:
        from keyless.providers.storage.blob.tags import check_if_tags  # (tags imports this module)

        check_if_tags(req, row)
    if_match, if_none = h.get("if-match"), h.get("if-none-match")
    modified_since, unmodified_since = h.get("if-modified-since"), h.get("if-unmodified-since")
    if not (if_match or if_none or modified_since or unmodified_since):
        return
    etag = row.etag if row is not None else None
    last = math.floor(row.last_modified) if row is not None else None
    if if_match is not None:
        wanted = _etags(if_match)
        if etag is None or not ("*" in wanted or etag in wanted):
            raise errors.condition_not_met()
    if unmodified_since is not None and last is not None:
        when = parse_http_date(unmodified_since)
        if when is not None and last > when:
            raise errors.condition_not_met()
    if if_none is not None:
        wanted = _etags(if_none)
        if etag is not None and ("*" in wanted or etag in wanted):
            if read:
                raise errors.StorageError(304, "ConditionNotMet", "Not modified.")
            if "*" in wanted:
                raise errors.blob_exists()
            raise errors.condition_not_met()
    if modified_since is not None and last is not None:
        when = parse_http_date(modified_since)
        if when is not None and last <= when:
            if read:
                raise errors.StorageError(304, "ConditionNotMet", "Not modified.")
            raise errors.condition_not_met()
