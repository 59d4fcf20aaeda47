"""Shared access signatures on the Blob service: account, service and user delegation SAS.

Pure functions: ``parse_and_verify_sas`` reads the SAS fields of a request's query, checks them and
the signature, and returns a ``SasGrant`` for the pipeline to apply (permissions per operation with
``allows``, the source address with ``check_source_ip``, ``signed_oid``'s RBAC rights for a user
delegation SAS, ``delegated_user_oid`` against the bearer token when present).

Sources for the string-to-sign layouts (all fields joined by "\\n"; the SDK's final newline
stripped for service and user delegation SAS, kept for account SAS):

- REST docs "Create an account SAS", "Create a service SAS", "Create a user delegation SAS"
  (learn.microsoft.com/rest/api/storageservices/...), version by version;
- azure-storage-blob 12.31.1 ``_shared/shared_access_signature.py`` and
  ``_shared_access_signature.py`` (format only), which sign with ``sv=2026-10-06``;
- Azure/Azurite ``src/blob/authentication/IBlobSASSignatureValues.ts`` (the 2015-04-05,
  2018-11-09, 2020-02-10 and 2020-12-06 layouts).

Layouts by version: ``sharedkey.account_string_to_sign`` and ``sharedkey.service_strings_to_sign``. ``skdutid`` and
``sduoid`` came with 2025-07-05 (azure-sdk-for-net BlobSasBuilder.DelegatedUserObjectId docs); the
SDK always signs srh/srq lines, whose first version is undocumented, so without srh/srq both forms
are tried.

Error texts (403 ``AuthenticationFailed`` with ``AuthenticationErrorDetail``), as Azure writes them
in public reports: "Signature did not match. String to sign used was ..." (Azure/AzureStor#140,
microsoft/AzureStorageExplorer#9054); "Signed expiry time [...] must be after signed start time
[...]" (blrchen/azure-speed-test#12); "Signature not valid in the specified time frame: Start [...] -
Expiry [...] - Current [...]" (microsoft/AzureStorageExplorer#1614); "Signature fields not well
formed." and "<field> is mandatory. Cannot be empty" (quoted by clients that match on them).
Unverified choices: an unsupported ``sv`` is AuthenticationFailed "Signed version not supported.";
a user delegation key outside its window uses the time-frame text with the key's times.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from ipaddress import AddressValueError, IPv4Address, IPv6Address
from typing import Final

from keyless.providers.storage.blob.errors import (
    StorageError,
    authentication_failed,
    resource_type_mismatch,
    service_mismatch,
    source_ip_mismatch,
)
from keyless.providers.storage.blob.sharedkey import (
    SUPPORTED_SAS_VERSIONS,
    account_string_to_sign,
    service_strings_to_sign,
    signature_matches,
)

MAX_FIELD: Final = 2048
_GUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?)?"
)
_SIG: Final = re.compile(r"[A-Za-z0-9+/]{43}=")
_IP_RANGE: Final = re.compile(r"([0-9.]{7,15})(?:-([0-9.]{7,15}))?")
_HEADER_LIST: Final = re.compile(
    r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}(?:,[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}){0,31}"
)
_QUERY_LIST: Final = re.compile(r"[^,\n]{1,256}(?:,[^,\n]{1,256}){0,31}")
# Permission letters the REST docs define ("Create an account SAS" / "Create a service SAS" /
# "Create a user delegation SAS", permissions tables).
_ACCOUNT_LETTERS: Final = frozenset("rwdxylacuptfi")
_BLOB_LETTERS: Final = frozenset("racwdxyltfmeopi")
_SERVICE_LETTERS: Final = frozenset("bqtf")
_TYPE_LETTERS: Final = frozenset("sco")
_PROTOCOLS: Final = frozenset({"https", "https,http"})
# Every field a SAS may carry; none may hold a newline (it would shift the string-to-sign).
_SAS_FIELDS: Final = (
    "sv", "ss", "srt", "sp", "st", "se", "sip", "spr", "ses", "sr", "si", "sig",
    "skoid", "sktid", "skt", "ske", "sks", "skv", "skdutid", "sduoid", "saoid", "suoid", "scid",
    "srh", "srq", "rscc", "rscd", "rsce", "rscl", "rsct", "snapshot", "versionid",
)  # fmt: skip
_UDK_FIELDS: Final = ("skoid", "sktid", "skt", "ske", "sks", "skv")
# Response header overrides a service SAS may carry, and the header each sets.
_OVERRIDES: Final = (
    ("rscc", "Cache-Control"), ("rscd", "Content-Disposition"), ("rsce", "Content-Encoding"),
    ("rscl", "Content-Language"), ("rsct", "Content-Type"),
)  # fmt: skip


@dataclass(frozen=True)
class SignedKey:
    """The signed-key fields of a user delegation SAS (``skoid``, ``sktid``, ``skt``, ``ske``,
    ``sks``, ``skv``, optional ``skdutid``): what Get User Delegation Key returned to the client."""

    oid: str
    tid: str
    start: str
    expiry: str
    service: str
    version: str
    delegated_user_tid: str = ""


@dataclass(frozen=True)
class StoredPolicy:
    """A container's stored access policy (``<SignedIdentifier>``): each field None when unset."""

    permissions: str | None
    start: str | None
    expiry: str | None


@dataclass(frozen=True)
class SasGrant:
    """What a verified SAS allows. ``kind``: "account" | "service" | "user-delegation";
    ``permissions``: the sp letters; ``resource``: sr (b, c, bs, bv) or, for an account SAS, srt;
    ``services``/``resource_types``: ss/srt of an account SAS ("b"/"" otherwise); ``container`` and
    ``blob``: the scope signed (None = any); ``signed_oid``: skoid, whose RBAC rights bound a user
    delegation SAS; ``ip_range``: sip (inclusive); ``protocol``: spr. The rest: ``version`` (sv),
    ``start``/``expiry`` (Unix seconds), ``identifier`` (si), ``encryption_scope`` (ses),
    ``delegated_user_oid`` (sduoid: only that user's bearer token may use it), ``signed_tid``
    (sktid), ``response_headers`` (rscc... as (header, value) to set on a read's response)."""

    kind: str
    permissions: frozenset[str]
    resource: str
    services: str
    resource_types: str
    container: str | None
    blob: str | None
    signed_oid: str | None
    ip_range: tuple[IPv4Address, IPv4Address] | None
    protocol: str | None
    version: str = ""
    start: float | None = None
    expiry: float = 0.0
    identifier: str | None = None
    encryption_scope: str | None = None
    delegated_user_oid: str | None = None
    signed_tid: str | None = None
    response_headers: tuple[tuple[str, str], ...] = ()


def allows(grant: SasGrant, letter: str) -> bool:
    """Whether the SAS grants the permission ``letter`` (r a c w d x y l t f m e o p i u)."""
    return letter in grant.permissions


def ip_allows(grant: SasGrant, address: IPv4Address | IPv6Address | None) -> bool:
    """Whether a request from ``address`` may use the SAS: always without ``sip``; otherwise only an
    IPv4 address inside the range (None, an unknown origin, is refused)."""
    if grant.ip_range is None:
        return True
    if not isinstance(address, IPv4Address):
        return False
    low, high = grant.ip_range
    return low <= address <= high


def check_source_ip(grant: SasGrant, address: IPv4Address | IPv6Address | None) -> None:
    """403 AuthorizationSourceIPMismatch unless ``ip_allows`` (REST docs "Create a service SAS",
    signedIp; the message names the address, as Azure's does)."""
    if not ip_allows(grant, address):
        raise source_ip_mismatch(str(address) if address is not None else "unknown")


def sas_kind(query: Mapping[str, str]) -> str | None:
    """ "account" | "service" | "user-delegation" by the fields present, or None without ``sig``.
    Lets the pipeline refuse a key-signed SAS (account or service) before verifying it when the
    account has ``allowSharedKeyAccess: false``."""
    if "sig" not in query:
        return None
    if "ss" in query or "srt" in query:
        return "account"
    if any(name in query for name in _UDK_FIELDS):
        return "user-delegation"
    return "service"


# --- user delegation keys --------------------------------------------------------------------

_UDK_PURPOSE: Final = "keyless/storage/user-delegation-key/v1"


def derive_user_delegation_key(secret: bytes, account: str, key: SignedKey) -> bytes:
    """The 32-byte user delegation key for ``key``'s fields on ``account``:
    HMAC-SHA256(secret, purpose | account | skoid | sktid | skt | ske | sks | skv | skdutid).

    Deterministic, so nothing is stored and every replica with the same ``secret`` (derived from
    the root key) derives the same value; bound to the account so a key from one account signs
    nothing on another. Raises ValueError if a field holds a newline (fields are separators)."""
    fields = (
        _UDK_PURPOSE,
        account,
        key.oid,
        key.tid,
        key.start,
        key.expiry,
        key.service,
        key.version,
        key.delegated_user_tid,
    )
    if any("\n" in field or len(field) > MAX_FIELD for field in fields):
        raise ValueError("a user delegation key field holds a newline or is too long")
    return hmac.new(secret, "\n".join(fields).encode(), hashlib.sha256).digest()


def user_delegation_key_value(secret: bytes, account: str, key: SignedKey) -> str:
    """``<Value>`` of the Get User Delegation Key response: base64 of ``derive_user_delegation_key``."""
    return base64.b64encode(derive_user_delegation_key(secret, account, key)).decode()


# --- field parsing ---------------------------------------------------------------------------


def _not_well_formed() -> StorageError:
    return authentication_failed("Signature fields not well formed.")


def _mandatory(name: str) -> StorageError:
    return authentication_failed(f"{name} is mandatory. Cannot be empty")


def parse_time(text: str) -> float:
    """Unix seconds of an ISO 8601 SAS time: YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.fffffff]][TZD]
    (TZD ``Z`` or ``+hh:mm``; none = UTC). Raises ValueError."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError("not an ISO 8601 time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    seconds = moment.timestamp()
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    return seconds


def _http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


def _time_field(fields: Mapping[str, str], name: str) -> float | None:
    text = fields.get(name, "")
    if not text:
        return None
    try:
        return parse_time(text)
    except (ValueError, OverflowError) as exc:
        raise _not_well_formed() from exc


def _ip_range(text: str) -> tuple[IPv4Address, IPv4Address] | None:
    if not text:
        return None
    match = _IP_RANGE.fullmatch(text)
    if match is None:
        raise _not_well_formed()
    try:
        low = IPv4Address(match.group(1))
        high = IPv4Address(match.group(2)) if match.group(2) else low
    except AddressValueError as exc:
        raise _not_well_formed() from exc
    if high < low:
        raise _not_well_formed()
    return low, high


def _letters(text: str, allowed: frozenset[str]) -> frozenset[str]:
    if not text or len(text) > 32 or not set(text) <= allowed:
        raise _not_well_formed()
    return frozenset(text)


def _sas_fields(query: Mapping[str, str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in _SAS_FIELDS:
        value = query.get(name)
        if value is None:
            continue
        if len(value) > MAX_FIELD or "\n" in value or "\r" in value:
            raise _not_well_formed()
        fields[name] = value
    return fields


def _check_times(start: float | None, expiry: float, now: float) -> None:
    effective_start = start if start is not None else now
    if expiry <= effective_start:
        raise authentication_failed(
            f"Signed expiry time [{_http_date(expiry)}] must be after signed start time "
            f"[{_http_date(effective_start)}]"
        )
    if now < effective_start or now > expiry:
        raise authentication_failed(
            f"Signature not valid in the specified time frame: Start [{_http_date(effective_start)}] - "
            f"Expiry [{_http_date(expiry)}] - Current [{_http_date(now)}]"
        )


def _protocol(fields: Mapping[str, str], https: bool) -> str | None:
    protocol = fields.get("spr") or None
    if protocol is not None and protocol not in _PROTOCOLS:
        raise _not_well_formed()
    if protocol == "https" and not https:
        raise StorageError(
            403,
            "AuthorizationProtocolMismatch",
            "This request is not authorized to perform this operation using this protocol.",
        )
    return protocol


def _version(fields: Mapping[str, str], oldest: str) -> str:
    version = fields.get("sv", "")
    if not version:
        raise _mandatory("sv")
    if version not in SUPPORTED_SAS_VERSIONS or version < oldest:
        raise authentication_failed("Signed version not supported.")
    return version


def _verify(given: str, keys: list[bytes], texts: list[str]) -> None:
    """Constant-time check of ``given`` against every (key, text); AuthenticationFailed naming the
    first text otherwise."""
    matched = False
    for text in texts:
        for key in keys:
            matched |= signature_matches(given, key, text)
    if not matched:
        raise authentication_failed(f"Signature did not match. String to sign used was {texts[0]}")


def _level(container: str | None, blob: str | None) -> str:
    """The account SAS resource type an operation needs: s(ervice), c(ontainer) or o(bject)."""
    if container is None:
        return "s"
    return "c" if blob is None else "o"


# --- the entry point -------------------------------------------------------------------------


def parse_and_verify_sas(
    query: Mapping[str, str],
    account: str,
    container: str | None,
    blob: str | None,
    keys: list[bytes],
    user_delegation_key: Callable[[SignedKey], bytes | None],
    now: float,
    *,
    headers: Mapping[str, str] | None = None,
    access_policy: Callable[[str, str], StoredPolicy | None] | None = None,
    https: bool = True,
) -> SasGrant | None:
    """Verify the SAS in a request's ``query`` (decoded values) addressed to ``account`` and to
    ``container``/``blob`` (decoded names; None at service or container level).

    ``keys`` are the raw account keys (key1, key2) for account and service SAS;
    ``user_delegation_key`` gives the raw key for a user delegation SAS's signed key, or None when
    there is no such key (see ``derive_user_delegation_key``); ``now`` is Unix seconds; ``headers``
    supplies the values of a user delegation SAS's ``srh`` headers; ``access_policy(container, si)``
    resolves a service SAS's stored access policy; ``https`` is whether the request came over TLS.

    Returns None when the query has no ``sig`` (no SAS). Raises StorageError: 403
    AuthenticationFailed (malformed, missing, unsupported version, wrong signature, outside its
    time), 403 AuthorizationServiceMismatch / AuthorizationResourceTypeMismatch (account SAS ss/srt,
    service SAS sr versus the addressed resource), 403 AuthorizationProtocolMismatch (spr=https
    over http). Permissions per operation, the source IP and RBAC are the pipeline's to check."""
    if "sig" not in query:
        return None
    fields = _sas_fields(query)
    given = fields.get("sig", "")
    if not _SIG.fullmatch(given):
        raise _not_well_formed()
    ctx = _Request(query, fields, given, account, container, blob, now, https, headers)
    if sas_kind(query) == "account":
        return _account(ctx, keys)
    return _service(ctx, keys, user_delegation_key, access_policy)


@dataclass(frozen=True)
class _Request:
    query: Mapping[str, str]
    fields: Mapping[str, str]
    given: str
    account: str
    container: str | None
    blob: str | None
    now: float
    https: bool
    headers: Mapping[str, str] | None


def _account(ctx: _Request, keys: list[bytes]) -> SasGrant:
    fields, now, https = ctx.fields, ctx.now, ctx.https
    version = _version(fields, "2015-04-05")
    for name in ("sp", "ss", "srt", "se"):
        if not fields.get(name):
            raise _mandatory(name)
    permissions = _letters(fields["sp"], _ACCOUNT_LETTERS)
    _letters(fields["ss"], _SERVICE_LETTERS)
    _letters(fields["srt"], _TYPE_LETTERS)
    start = _time_field(fields, "st")
    expiry = _time_field(fields, "se")
    assert expiry is not None  # "se" is mandatory above
    ip_range = _ip_range(fields.get("sip", ""))
    if fields.get("spr") and fields["spr"] not in _PROTOCOLS:
        raise _not_well_formed()
    _verify(ctx.given, keys, [account_string_to_sign(ctx.account, version, fields)])
    _check_times(start, expiry, now)
    protocol = _protocol(fields, https)
    if "b" not in fields["ss"]:
        raise service_mismatch()
    if _level(ctx.container, ctx.blob) not in fields["srt"]:
        raise resource_type_mismatch()
    return SasGrant(
        kind="account",
        permissions=permissions,
        resource=fields["srt"],
        services=fields["ss"],
        resource_types=fields["srt"],
        container=None,
        blob=None,
        signed_oid=None,
        ip_range=ip_range,
        protocol=protocol,
        version=version,
        start=start,
        expiry=expiry,
        encryption_scope=fields.get("ses") or None,
    )


def _service(
    ctx: _Request,
    keys: list[bytes],
    user_delegation_key: Callable[[SignedKey], bytes | None],
    access_policy: Callable[[str, str], StoredPolicy | None] | None,
) -> SasGrant:
    fields, container, blob, now, https = ctx.fields, ctx.container, ctx.blob, ctx.now, ctx.https
    delegated = any(name in fields for name in _UDK_FIELDS)
    version = _version(fields, "2018-11-09" if delegated else "2015-04-05")
    resource = fields.get("sr", "")
    if not resource:
        raise _mandatory("sr")
    if resource not in {"b", "c", "bs", "bv", "d"}:
        raise _not_well_formed()
    if resource in ("d", "bv"):
        # Directory SAS needs a hierarchical namespace, a version SAS blob versioning: Keyless
        # accounts have neither, so such a SAS opens nothing (never the current blob).
        raise resource_type_mismatch()
    if container is None or (resource != "c" and blob is None):
        raise resource_type_mismatch()
    timestamp = ""
    if resource in {"bs", "bv"}:
        timestamp = fields.get("snapshot" if resource == "bs" else "versionid", "")
        if not timestamp:
            raise _not_well_formed()
    signed_blob = blob if resource != "c" else None
    policy = _resolve_policy(fields, container, delegated, access_policy)
    permissions_text = fields.get("sp") or (policy.permissions if policy else None) or ""
    expiry_text = fields.get("se") or (policy.expiry if policy else None) or ""
    start_text = fields.get("st") or (policy.start if policy else None) or ""
    if not permissions_text:
        raise _mandatory("sp")
    if not expiry_text:
        raise _mandatory("se")
    permissions = _letters(permissions_text, _BLOB_LETTERS)
    times = {"st": start_text, "se": expiry_text}
    start = _time_field(times, "st")
    expiry = _time_field(times, "se")
    assert expiry is not None
    ip_range = _ip_range(fields.get("sip", ""))
    if fields.get("spr") and fields["spr"] not in _PROTOCOLS:
        raise _not_well_formed()
    canonical = f"/blob/{ctx.account}/{container}" + (f"/{signed_blob}" if signed_blob is not None else "")
    signed_key: SignedKey | None = None
    if delegated:
        signed_key = _signed_key(fields, now)
        key = user_delegation_key(signed_key)
        signing_keys = [key] if key else []
    else:
        signing_keys = keys
    extras = _request_bound_values(fields, ctx.query, ctx.headers) if delegated else ("", "")
    texts = service_strings_to_sign(canonical, version, fields, timestamp, delegated, extras)
    if not signing_keys:
        raise authentication_failed(f"Signature did not match. String to sign used was {texts[0]}")
    _verify(ctx.given, signing_keys, texts)
    _check_times(start, expiry, now)
    protocol = _protocol(fields, https)
    return SasGrant(
        kind="user-delegation" if delegated else "service",
        permissions=permissions,
        resource=resource,
        services="b",
        resource_types="",
        container=container,
        blob=signed_blob,
        signed_oid=signed_key.oid if signed_key else None,
        ip_range=ip_range,
        protocol=protocol,
        version=version,
        start=start,
        expiry=expiry,
        identifier=fields.get("si") or None,
        encryption_scope=fields.get("ses") or None,
        delegated_user_oid=fields.get("sduoid") or None,
        signed_tid=signed_key.tid if signed_key else None,
        response_headers=tuple((header, fields[name]) for name, header in _OVERRIDES if fields.get(name)),
    )


def _resolve_policy(
    fields: Mapping[str, str],
    container: str,
    delegated: bool,
    access_policy: Callable[[str, str], StoredPolicy | None] | None,
) -> StoredPolicy | None:
    identifier = fields.get("si", "")
    if not identifier:
        return None
    if delegated or len(identifier) > 64:
        # Stored access policies are not supported for a user delegation SAS (REST docs); Azure
        # caps a signed identifier at 64 characters.
        raise _not_well_formed()
    policy = access_policy(container, identifier) if access_policy is not None else None
    if policy is None:
        raise authentication_failed("The specified signed identifier does not exist.")
    for name, value in (("sp", policy.permissions), ("st", policy.start), ("se", policy.expiry)):
        if value and fields.get(name):
            # A field may be in the SAS or in the policy, not in both (REST docs "Define a stored
            # access policy").
            raise _not_well_formed()
    return policy


def _signed_key(fields: Mapping[str, str], now: float) -> SignedKey:
    for name in _UDK_FIELDS:
        if not fields.get(name):
            raise _mandatory(name)
    if fields["sks"] != "b" or not _GUID.fullmatch(fields["skoid"]) or not _GUID.fullmatch(fields["sktid"]):
        raise _not_well_formed()
    if fields["skv"] not in SUPPORTED_SAS_VERSIONS:
        raise _not_well_formed()
    for name in ("skdutid", "sduoid", "saoid", "suoid"):
        if fields.get(name) and not _GUID.fullmatch(fields[name]):
            raise _not_well_formed()
    key_start = _time_field(fields, "skt")
    key_expiry = _time_field(fields, "ske")
    assert key_start is not None and key_expiry is not None
    if not key_start <= now <= key_expiry:
        raise authentication_failed(
            f"Signature not valid in the specified time frame: Start [{_http_date(key_start)}] - "
            f"Expiry [{_http_date(key_expiry)}] - Current [{_http_date(now)}]"
        )
    return SignedKey(
        oid=fields["skoid"],
        tid=fields["sktid"],
        start=fields["skt"],
        expiry=fields["ske"],
        service=fields["sks"],
        version=fields["skv"],
        delegated_user_tid=fields.get("skdutid", ""),
    )


def _request_bound_values(
    fields: Mapping[str, str], query: Mapping[str, str], headers: Mapping[str, str] | None
) -> tuple[str, str]:
    """The srh and srq parts of a user delegation string-to-sign: the named request headers and
    query parameters with the request's values (azure-storage-blob 12.31.1 layout: srh as
    "k:v\\n...k:v\\n", srq as "\\nk:v...")."""
    srh = fields.get("srh", "")
    srq = fields.get("srq", "")
    header_part = ""
    query_part = ""
    if srh:
        if not _HEADER_LIST.fullmatch(srh):
            raise _not_well_formed()
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        header_part = "\n".join(f"{name}:{lowered.get(name.lower(), '')}" for name in srh.split(",")) + "\n"
    if srq:
        if not _QUERY_LIST.fullmatch(srq):
            raise _not_well_formed()
        query_part = "\n" + "\n".join(f"{name}:{query.get(name, '')}" for name in srq.split(","))
    return header_part, query_part
