"""What Blob requests sign: the Shared Key string-to-sign and its check, and the SAS string-to-sign
layouts that ``sas.py`` verifies (pure functions).

Wire facts (reference/storage.md §2 "SharedKey"; REST docs "Authorize with Shared Key",
learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key; azure-storage-blob 12.31.1
``_shared/authentication.py``, read for the format only)::

    VERB\\n Content-Encoding\\n Content-Language\\n Content-Length (empty when 0)\\n Content-MD5\\n
    Content-Type\\n Date\\n If-Modified-Since\\n If-Match\\n If-None-Match\\n If-Unmodified-Since\\n Range\\n
    + each x-ms-* header, lower-cased, sorted, as "name:value\\n"
    + "/" + account + the path as sent (percent-encoded; path-style URLs repeat the account)
    + each query parameter, lower-cased and sorted, as "\\nname:value" (values decoded, several
      values of one name sorted and joined with ",")
    Authorization: SharedKey <account>:base64(HMAC-SHA256(base64decode(key), string-to-sign))

The x-ms-* headers are sorted the way the service sorts them, which the Python SDK imitates with a
two-level collation: "-" and "'" are ignored at first, then break ties ("'" before "-"); letters fold
case; punctuation sorts before digits, digits before letters. Other SDKs (Go) sort ordinally; the
two orders differ only for unusual header names, and both are tried then (cost: one more HMAC).

Failures are Azure's: a malformed header is 400 ``InvalidAuthenticationInfo``; a wrong signature is
403 ``AuthenticationFailed`` whose ``AuthenticationErrorDetail`` is "The MAC signature found in the
HTTP request '...' is not the same as any computed signature. Server used following string to sign:
'...'." (text seen in real responses, e.g. hashicorp/terraform issues quoted in public code).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import unquote

from keyless.providers.storage.blob.errors import StorageError, authentication_failed

# Bounds (before any work). Azure caps a URL at about 2 KiB of path and 8 KiB of headers per
# name; these are generous and only stop abuse.
MAX_PATH: Final = 4096
MAX_QUERY_PARAMS: Final = 64
MAX_QUERY_TEXT: Final = 8192
MAX_HEADER_VALUE: Final = 8192
MAX_XMS_HEADERS: Final = 128
MAX_AUTHORIZATION: Final = 512
# "The storage services ensure that a request is no older than 15 minutes by the time it reaches
# the service" (REST docs, "Authorize with Shared Key", "Specifying the Date header").
MAX_CLOCK_SKEW_S: Final = 15 * 60

_STANDARD_HEADERS: Final = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
_AUTH_RE: Final = re.compile(r"SharedKey ([A-Za-z0-9]{3,24}):([A-Za-z0-9+/]{43}=)")
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]{1,256}")

# The service's collation of header names: first by these characters in this order (case folded,
# "-" and "'" skipped), then by where "-" and "'" stand.
_PRIMARY_ORDER: Final = "!#$%&*.^_`|~+0123456789abcdefghijklmnopqrstuvwxyz"
_PRIMARY_RANK: Final = {c: i + 2 for i, c in enumerate(_PRIMARY_ORDER)}
_IGNORED_FIRST: Final = {"'": 2, "-": 3}  # their tie-break weights; 0 = other character, 1 = end


def _invalid_authorization() -> StorageError:
    # REST docs "Common REST API error codes": InvalidAuthenticationInfo (400).
    return StorageError(
        400,
        "InvalidAuthenticationInfo",
        "Authentication information is not given in the correct format. Check the value of Authorization header.",
    )


def service_header_key(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The sort key of a lower-case header name in the service's collation (module docstring).

    Raises ValueError for characters outside the HTTP token set."""
    if not _HEADER_NAME_RE.fullmatch(name):
        raise ValueError("not a header name")
    primary = tuple(_PRIMARY_RANK[c] for c in name if c not in _IGNORED_FIRST)
    secondary = (*(_IGNORED_FIRST.get(c, 0) for c in name), 1)
    return primary, secondary


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string (no leading ``?``) into (name, value) pairs, each percent-decoded
    as the SDK decodes them for signing (``urllib.parse.unquote``: ``+`` stays ``+``). A name with
    no ``=`` has the value "". Raises StorageError 400 for more than MAX_QUERY_PARAMS parameters or
    MAX_QUERY_TEXT characters."""
    if len(raw_query) > MAX_QUERY_TEXT:
        raise _invalid_uri()
    if not raw_query:
        return []
    parts = [part for part in raw_query.split("&") if part]
    if len(parts) > MAX_QUERY_PARAMS:
        raise _invalid_uri()
    pairs = []
    for part in parts:
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def _invalid_uri() -> StorageError:
    return StorageError(400, "InvalidUri", "The requested URI does not represent any resource on the server.")


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        if len(value) > MAX_HEADER_VALUE:
            raise authentication_failed("A request header is too long to be signed.")
        out[name.lower()] = value
    return out


def _canonical_query(query: Sequence[tuple[str, str]]) -> str:
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name.lower(), []).append(value)
    return "".join(f"\n{name}:{','.join(sorted(values))}" for name, values in sorted(grouped.items()))


def _string_to_sign(
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    lowered: Mapping[str, str],
    account: str,
    x_ms_names: Iterable[str],
) -> str:
    standard = []
    for name in _STANDARD_HEADERS:
        value = lowered.get(name, "")
        if name == "content-length" and value == "0":
            value = ""
        standard.append(value)
    x_ms = "".join(f"{name}:{lowered[name]}\n" for name in x_ms_names)
    return (
        method.upper()
        + "\n"
        + "\n".join(standard)
        + "\n"
        + x_ms
        + "/"
        + account
        + raw_path
        + _canonical_query(query)
    )


def _x_ms_orders(lowered: Mapping[str, str]) -> list[list[str]]:
    """The x-ms-* header orders worth trying: the service's collation, then plain ordinal order
    when it differs."""
    names = [name for name in lowered if name.startswith("x-ms-")]
    if len(names) > MAX_XMS_HEADERS:
        raise authentication_failed("The request has too many x-ms- headers.")
    try:
        collated = sorted(names, key=service_header_key)
    except ValueError as exc:
        raise _invalid_authorization() from exc
    ordinal = sorted(names)
    return [collated] if ordinal == collated else [collated, ordinal]


def string_to_sign(
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    account: str,
) -> str:
    """The Shared Key string-to-sign of a Blob request (module docstring for the layout).

    ``raw_path`` is the path exactly as sent, still percent-encoded (``/acct/cont/a%20b`` path-style,
    ``/cont/a%20b`` host-style); ``query`` the decoded (name, value) pairs (see ``parse_query``);
    ``headers`` any mapping of request headers (names in any case); ``account`` the lower-case
    account name. x-ms-* headers are in the service's collation. Raises StorageError for input past
    the module's bounds."""
    if len(raw_path) > MAX_PATH or len(query) > MAX_QUERY_PARAMS:
        raise _invalid_uri()
    lowered = _lower_headers(headers)
    return _string_to_sign(method, raw_path, query, lowered, account, _x_ms_orders(lowered)[0])


def sign(key: bytes, text: str) -> str:
    """base64(HMAC-SHA256(key, text as UTF-8)): the signature of Shared Key and of every SAS."""
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()).decode()


def signature_matches(given: str, key: bytes, text: str) -> bool:
    """Constant-time comparison of a presented base64 signature with ``sign(key, text)``."""
    return hmac.compare_digest(given.encode("ascii", "replace"), sign(key, text).encode())


def _request_date(lowered: Mapping[str, str]) -> str:
    return lowered.get("x-ms-date") or lowered.get("date") or ""


def check_request_date(headers: Mapping[str, str], now: float) -> None:
    """Refuse a Shared Key request whose ``x-ms-date`` (or ``Date``) is missing, unreadable or more
    than 15 minutes from ``now`` (Unix seconds): 403 AuthenticationFailed (REST docs "Authorize
    with Shared Key"; detail texts as Azure words them in public reports, e.g. "Request date header
    too old")."""
    lowered = {name.lower(): value for name, value in headers.items()}
    text = _request_date(lowered)
    if not text:
        raise authentication_failed("Request date header not specified")
    if len(text) > 64:
        raise authentication_failed("Request date header not valid")
    try:
        parsed = parsedate_to_datetime(text)
        # A "-0000" zone parses as naive; HTTP dates are GMT.
        when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise authentication_failed("Request date header not valid") from exc
    if when < now - MAX_CLOCK_SKEW_S:
        raise authentication_failed(f"Request date header too old: '{text}'")
    if when > now + MAX_CLOCK_SKEW_S:
        raise authentication_failed(f"Request date header too far in the future: '{text}'")


def parse_authorization(authorization: str) -> tuple[str, str]:
    """(account, signature) of ``SharedKey <account>:<base64 signature>``; 400
    InvalidAuthenticationInfo for anything else (including SharedKeyLite, which Keyless does not
    serve, as Azurite does not)."""
    if len(authorization) > MAX_AUTHORIZATION:
        raise _invalid_authorization()
    match = _AUTH_RE.fullmatch(authorization.strip())
    if match is None:
        raise _invalid_authorization()
    return match.group(1), match.group(2)


def verify_shared_key(
    authorization: str,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    account: str,
    keys: list[bytes],
    *,
    now: float | None = None,
) -> None:
    """Check a ``SharedKey`` Authorization header against the account's keys (key1, key2).

    Arguments are those of ``string_to_sign``; ``keys`` the raw (base64-decoded) account keys;
    ``now`` (Unix seconds), when given, also enforces the 15-minute date window. Returns None when
    the signature matches any key in any accepted header order; raises 400 InvalidAuthenticationInfo
    for a malformed header, 403 AuthenticationFailed otherwise (wrong account, key or signature).
    Every candidate is compared in constant time."""
    header_account, given = parse_authorization(authorization)
    try:
        base64.b64decode(given, validate=True)
    except binascii.Error as exc:
        raise _invalid_authorization() from exc
    if len(raw_path) > MAX_PATH or len(query) > MAX_QUERY_PARAMS:
        raise _invalid_uri()
    lowered = _lower_headers(headers)
    candidates = [
        _string_to_sign(method, raw_path, query, lowered, account, order) for order in _x_ms_orders(lowered)
    ]
    if raw_path == "/":
        # urlparse gives "" for "https://acct.blob.core.windows.net?comp=list"; the SDK then signs
        # "/acct" while the request line carries "/".
        candidates.append(_string_to_sign(method, "", query, lowered, account, _x_ms_orders(lowered)[0]))
    matched = False
    for text in candidates:
        for key in keys:
            matched |= signature_matches(given, key, text)
    if not matched or header_account.lower() != account:
        raise authentication_failed(
            f"The MAC signature found in the HTTP request '{given}' is not the same as any computed "
            f"signature. Server used following string to sign: '{candidates[0]}'."
        )
    if now is not None:
        check_request_date(headers, now)


# --- SAS string-to-sign layouts (sas.py module docstring for sources) -------------------------------------------------

# Versions a SAS may name: the REST service versions from 2015-04-05 (the first with account SAS
# and the "/blob/" canonical resource) to the newest azure-storage-blob 12.31.1 sends
# (``_serialize._SUPPORTED_API_VERSIONS``).
SUPPORTED_SAS_VERSIONS: Final = frozenset(
    {
        "2015-04-05", "2015-07-08", "2015-12-11", "2016-05-31", "2017-04-17", "2017-07-29",
        "2017-11-09", "2018-03-28", "2018-11-09", "2019-02-02", "2019-07-07", "2019-10-10",
        "2019-12-12", "2020-02-10", "2020-04-08", "2020-06-12", "2020-08-04", "2020-10-02",
        "2020-12-06", "2021-02-12", "2021-04-10", "2021-06-08", "2021-08-06", "2021-10-04",
        "2021-12-02", "2022-11-02", "2023-01-03", "2023-05-03", "2023-08-03", "2023-11-03",
        "2024-02-04", "2024-05-04", "2024-08-04", "2024-11-04", "2025-01-05", "2025-05-05",
        "2025-07-05", "2025-11-05", "2026-02-06", "2026-04-06", "2026-06-06", "2026-10-06",
    }
)  # fmt: skip


def account_string_to_sign(account: str, version: str, fields: Mapping[str, str]) -> str:
    """The account SAS string-to-sign; each field ends with "\\n" (so the text ends with one)."""
    names = ["sp", "ss", "srt", "st", "se", "sip", "spr", "sv"]
    if version >= "2020-12-06":
        names.append("ses")
    return account + "\n" + "".join(fields.get(name, "") + "\n" for name in names)


def service_strings_to_sign(
    canonical: str,
    version: str,
    fields: Mapping[str, str],
    timestamp: str,
    delegated: bool,
    bound: tuple[str, str],
) -> list[str]:
    """The candidate string-to-sign texts of a service or user delegation SAS for ``version``
    (usually one; two for a user delegation SAS of 2025-07-05 or later without srh/srq).
    ``canonical``: "/blob/<account>/<container>[/<blob>]"; ``timestamp``: the snapshot or version
    time signed for sr=bs/bv; ``bound``: the srh and srq parts (``sas._request_bound_values``)."""
    head = [fields.get("sp", ""), fields.get("st", ""), fields.get("se", ""), canonical]
    if delegated:
        head += [fields.get(name, "") for name in ("skoid", "sktid", "skt", "ske", "sks", "skv")]
        if version >= "2020-02-10":
            head += [fields.get(name, "") for name in ("saoid", "suoid", "scid")]
        if version >= "2025-07-05":
            head += [fields.get("skdutid", ""), fields.get("sduoid", "")]
    else:
        head.append(fields.get("si", ""))
    head += [fields.get("sip", ""), fields.get("spr", ""), version]
    if version >= "2018-11-09":
        head += [fields.get("sr", ""), timestamp]
    if version >= "2020-12-06":
        head.append(fields.get("ses", ""))
    tail = [fields.get(name, "") for name in ("rscc", "rscd", "rsce", "rscl", "rsct")]
    if delegated and version >= "2025-07-05":
        with_bound = "\n".join([*head, bound[0], bound[1], *tail])
        if bound == ("", ""):
            return [with_bound, "\n".join(head + tail)]
        return [with_bound]
    return ["\n".join(head + tail)]
