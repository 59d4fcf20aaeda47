"""SAS verification against tokens made by the real azure-storage-blob generators.

``generate_account_sas``, ``generate_container_sas`` and ``generate_blob_sas`` (with an account key
and with a user delegation key) make each token; ``sts_hook`` exposes the SDK's own string-to-sign,
which must equal ours.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    Services,
    UserDelegationKey,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)

from keyless.providers.storage.blob.errors import StorageError
from keyless.providers.storage.blob.sas import (
    SasGrant,
    SignedKey,
    StoredPolicy,
    allows,
    check_source_ip,
    derive_user_delegation_key,
    parse_and_verify_sas,
    sas_kind,
    user_delegation_key_value,
)
from keyless.providers.storage.blob.sharedkey import (
    account_string_to_sign,
    parse_query,
    service_strings_to_sign,
)

ACCOUNT = "acct1"
KEY1 = os.urandom(64)
KEY2 = os.urandom(64)
SECRET = os.urandom(32)
OID = "11111111-2222-3333-4444-555555555555"
TID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
NOW = time.time()


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _at(offset_s: float) -> datetime:
    return datetime.fromtimestamp(NOW + offset_s, UTC)


def _iso(offset_s: float) -> str:
    return _at(offset_s).strftime("%Y-%m-%dT%H:%M:%SZ")


def _query(token: str, **extra: str) -> dict[str, str]:
    return {**dict(parse_query(token)), **extra}


def _udk(account: str = ACCOUNT, start: float = -3600, expiry: float = 3600) -> UserDelegationKey:
    """A key as Get User Delegation Key would return it (value derived from the fields)."""
    key = UserDelegationKey()  # type: ignore[no-untyped-call]
    key.signed_oid, key.signed_tid = OID, TID
    key.signed_start, key.signed_expiry = _iso(start), _iso(expiry)
    key.signed_service, key.signed_version = "b", "2026-10-06"
    fields = SignedKey(OID, TID, key.signed_start, key.signed_expiry, "b", "2026-10-06")
    key.value = user_delegation_key_value(SECRET, account, fields)
    return key


def _derive(key: SignedKey) -> bytes | None:
    return derive_user_delegation_key(SECRET, ACCOUNT, key)


def verify(
    query: dict[str, str],
    container: str | None = "cont",
    blob: str | None = "dir/a b.txt",
    *,
    keys: list[bytes] | None = None,
    udk: Callable[[SignedKey], bytes | None] = _derive,
    now: float = NOW,
    **kwargs: Any,
) -> SasGrant:
    grant = parse_and_verify_sas(
        query, ACCOUNT, container, blob, keys if keys is not None else [KEY1, KEY2], udk, now, **kwargs
    )
    assert grant is not None
    return grant


def refused(
    query: dict[str, str], code: str = "AuthenticationFailed", detail: str = "", **kwargs: Any
) -> None:
    with pytest.raises(StorageError) as info:
        verify(query, **kwargs)
    assert (info.value.status, info.value.code) == (403, code)
    if detail:
        assert dict(info.value.details)["AuthenticationErrorDetail"].startswith(detail), info.value.details


def _account_sas(key: bytes = KEY1, **kwargs: Any) -> str:
    args: dict[str, Any] = {
        "resource_types": ResourceTypes(service=True, container=True, object=True),
        "permission": AccountSasPermissions(read=True, write=True, list=True),
        "expiry": _at(3600),
        "start": _at(-300),
    }
    args.update(kwargs)
    return generate_account_sas(ACCOUNT, _b64(key), **args)


def _blob_sas(blob: str = "dir/a b.txt", **kwargs: Any) -> str:
    args: dict[str, Any] = {
        "account_key": _b64(KEY1),
        "permission": BlobSasPermissions(read=True),
        "expiry": _at(3600),
    }
    args.update(kwargs)
    return generate_blob_sas(ACCOUNT, "cont", blob, **args)


# --- account SAS -----------------------------------------------------------------------------


def test_account_sas_from_the_sdk() -> None:
    texts: list[str] = []
    token = _account_sas(ip="203.0.113.5-203.0.113.9", protocol="https", sts_hook=texts.append)
    query = _query(token)
    assert sas_kind(query) == "account"
    assert account_string_to_sign(ACCOUNT, query["sv"], query) == texts[0]
    for container, blob in (("cont", "dir/a b.txt"), ("cont", None), (None, None)):
        grant = verify(query, container, blob)
        assert grant.kind == "account" and grant.permissions == frozenset("rwl")
        assert grant.ip_range == (IPv4Address("203.0.113.5"), IPv4Address("203.0.113.9"))
        assert grant.protocol == "https" and allows(grant, "r") and not allows(grant, "d")
    verify(_query(_account_sas(key=KEY2)))


def test_account_string_to_sign_matches_a_real_azure_response() -> None:
    # The string Azure printed for an account SAS with sv=2021-06-08 (hashicorp/terraform-provider-azurerm#18007).
    fields = {
        "sp": "rwdlacuptf",
        "ss": "bqtf",
        "srt": "sco",
        "st": "2022-08-22T00:00:00Z",
        "se": "2023-08-22T00:00:00Z",
        "spr": "https",
    }
    expected = (
        "dev\nrwdlacuptf\nbqtf\nsco\n2022-08-22T00:00:00Z\n2023-08-22T00:00:00Z\n\nhttps\n2021-06-08\n\n"
    )
    assert account_string_to_sign("dev", "2021-06-08", {**fields, "sv": "2021-06-08"}) == expected
    assert account_string_to_sign("dev", "2019-02-02", {**fields, "sv": "2019-02-02"}).count("\n") == 9


def test_account_sas_service_and_resource_type() -> None:
    refused(_query(_account_sas(services=Services(queue=True))), "AuthorizationServiceMismatch")
    objects_only = _query(_account_sas(resource_types=ResourceTypes(object=True)))
    verify(objects_only)
    refused(objects_only, "AuthorizationResourceTypeMismatch", blob=None)
    refused(objects_only, "AuthorizationResourceTypeMismatch", container=None, blob=None)


def test_account_sas_tampered_wrong_key_expired() -> None:
    query = _query(_account_sas())
    refused({**query, "sp": "rwdl"}, detail="Signature did not match. String to sign used was acct1\nrwdl\n")
    refused(query, detail="Signature did not match", keys=[os.urandom(64)])
    refused(query, detail="Signature did not match", keys=[])
    refused(query, detail="Signature not valid in the specified time frame: Start [", now=NOW + 7200)
    refused(query, detail="Signature not valid in the specified time frame", now=NOW - 3600)
    no_start = _query(_account_sas(start=None, expiry=_at(-60)))
    refused(no_start, detail="Signed expiry time [")
    refused({**query, "sv": "2099-01-01"}, detail="Signed version not supported.")
    refused({k: v for k, v in query.items() if k != "se"}, detail="se is mandatory. Cannot be empty")


def test_protocol_and_source_ip() -> None:
    grant = verify(_query(_account_sas(protocol="https", ip="203.0.113.5")))
    refused(_query(_account_sas(protocol="https")), "AuthorizationProtocolMismatch", https=False)
    verify(_query(_account_sas(protocol="https,http")), https=False)
    check_source_ip(grant, IPv4Address("203.0.113.5"))
    for address in (IPv4Address("203.0.113.6"), IPv6Address("::1"), None):
        with pytest.raises(StorageError) as info:
            check_source_ip(grant, address)
        assert info.value.code == "AuthorizationSourceIPMismatch"


# --- service SAS -----------------------------------------------------------------------------


def test_blob_sas_from_the_sdk() -> None:
    texts: list[str] = []
    token = _blob_sas(
        start=_at(-60), ip="198.51.100.1", protocol="https", cache_control="no-cache",
        content_disposition="attachment; filename=x", content_type="text/plain", sts_hook=texts.append,
    )  # fmt: skip
    query = _query(token)
    assert sas_kind(query) == "service"
    assert (
        service_strings_to_sign(f"/blob/{ACCOUNT}/cont/dir/a b.txt", query["sv"], query, "", False, ("", ""))
        == texts
    )
    grant = verify(query)
    assert (grant.kind, grant.resource, grant.container, grant.blob) == (
        "service",
        "b",
        "cont",
        "dir/a b.txt",
    )
    assert grant.response_headers == (
        ("Cache-Control", "no-cache"), ("Content-Disposition", "attachment; filename=x"), ("Content-Type", "text/plain"),
    )  # fmt: skip
    refused(query, detail="Signature did not match. String to sign used was r\n", blob="dir/other.txt")
    refused(query, "AuthorizationResourceTypeMismatch", blob=None)
    refused(query, "AuthorizationResourceTypeMismatch", container=None, blob=None)


def test_container_sas_covers_its_blobs() -> None:
    texts: list[str] = []
    permission = ContainerSasPermissions(read=True, list=True, write=True)
    token = generate_container_sas(
        ACCOUNT, "cont", _b64(KEY2), permission=permission, expiry=_at(60), sts_hook=texts.append
    )
    query = _query(token)
    assert service_strings_to_sign(f"/blob/{ACCOUNT}/cont", query["sv"], query, "", False, ("", "")) == texts
    for blob in ("any", "dir/a b.txt", None):
        grant = verify(query, "cont", blob)
        assert (grant.resource, grant.blob, grant.permissions) == ("c", None, frozenset("rwl"))
    refused(query, detail="Signature did not match", container="other")
    refused(query, "AuthorizationResourceTypeMismatch", container=None, blob=None)


def test_snapshot_sas_signs_the_timestamp_and_version_sas_is_refused() -> None:
    snapshot = "2024-01-01T00:00:00.0000000Z"
    query = _query(_blob_sas(snapshot=snapshot))
    assert query["sr"] == "bs" and "snapshot" not in query
    verify({**query, "snapshot": snapshot})
    refused({**query, "snapshot": "2024-01-02T00:00:00.0000000Z"}, detail="Signature did not match")
    refused(query, detail="Signature fields not well formed.")
    # Keyless has no blob versioning: a version SAS opens nothing, so it can never reach the
    # current blob (tests/e2e/test_storage_attacks.py).
    version = _query(_blob_sas(version_id=snapshot))
    assert version["sr"] == "bv"
    refused({**version, "versionid": snapshot}, "AuthorizationResourceTypeMismatch")


def test_service_sas_tampered_and_expired() -> None:
    query = _query(_blob_sas(start=_at(-60)))
    refused({**query, "sp": "rw"}, detail="Signature did not match")
    refused({**query, "sig": "A" * 43 + "="}, detail="Signature did not match")
    refused({**query, "sig": "not base64"}, detail="Signature fields not well formed.")
    refused(query, detail="Signature not valid in the specified time frame", now=NOW + 7200)
    refused(query, detail="Signature not valid in the specified time frame", now=NOW - 600)
    refused({**query, "sv": "2014-02-14"}, detail="Signed version not supported.")
    refused({k: v for k, v in query.items() if k != "sr"}, detail="sr is mandatory. Cannot be empty")
    refused({**query, "sr": "d"}, "AuthorizationResourceTypeMismatch")
    refused({**query, "sp": "r?"}, detail="Signature fields not well formed.")
    refused({**query, "rscc": "a\nb"}, detail="Signature fields not well formed.")
    refused({**query, "rscc": "a" * 3000}, detail="Signature fields not well formed.")
    refused({**query, "st": "yesterday"}, detail="Signature fields not well formed.")
    refused({**query, "sip": "1.2.3.9-1.2.3.1"}, detail="Signature fields not well formed.")


def test_stored_access_policy() -> None:
    policies = {("cont", "pol1"): StoredPolicy("rl", None, _iso(600))}
    lookup = lambda container, name: policies.get((container, name))  # noqa: E731
    query = _query(generate_container_sas(ACCOUNT, "cont", _b64(KEY1), policy_id="pol1"))
    assert "sp" not in query and "se" not in query
    grant = verify(query, access_policy=lookup)
    assert grant.identifier == "pol1" and grant.permissions == frozenset("rl")
    refused(query, detail="The specified signed identifier does not exist.")
    refused(query, detail="Signed expiry time [", access_policy=lookup, now=NOW + 3600)
    both = _query(generate_container_sas(ACCOUNT, "cont", _b64(KEY1), policy_id="pol1", permission="r"))
    refused(both, detail="Signature fields not well formed.", access_policy=lookup)


def test_no_sig_is_no_sas() -> None:
    assert parse_and_verify_sas({"comp": "list"}, ACCOUNT, None, None, [KEY1], _derive, NOW) is None
    assert sas_kind({"sp": "r"}) is None


def test_layout_field_counts_by_version() -> None:
    # REST docs "Create a service SAS": 13 fields before 2018-11-09, 15 up to 2020-12-06, 16 since.
    for version, count in (("2015-04-05", 13), ("2018-11-09", 15), ("2020-10-02", 15), ("2021-06-08", 16)):
        (text,) = service_strings_to_sign("/blob/a/c", version, {"sv": version}, "", False, ("", ""))
        assert text.count("\n") == count - 1
    # User delegation: 20 fields at 2018-11-09, 23 at 2020-02-10, 24 at 2020-12-06.
    for version, count in (("2018-11-09", 20), ("2020-02-10", 23), ("2020-12-06", 24), ("2025-05-05", 24)):
        (text,) = service_strings_to_sign("/blob/a/c", version, {"sv": version}, "", True, ("", ""))
        assert text.count("\n") == count - 1


# --- user delegation SAS ---------------------------------------------------------------------


def test_user_delegation_sas_from_the_sdk() -> None:
    texts: list[str] = []
    key = _udk()
    token = _blob_sas(account_key=None, user_delegation_key=key, permission="racw", sts_hook=texts.append)
    query = _query(token)
    assert sas_kind(query) == "user-delegation"
    grant = verify(query, keys=[])
    assert (grant.kind, grant.signed_oid, grant.signed_tid, grant.permissions) == (
        "user-delegation", OID, TID, frozenset("racw"),
    )  # fmt: skip
    canonical = f"/blob/{ACCOUNT}/cont/dir/a b.txt"
    assert service_strings_to_sign(canonical, query["sv"], query, "", True, ("", ""))[0] == texts[0]
    container = _query(
        generate_container_sas(ACCOUNT, "cont", user_delegation_key=key, permission="rl", expiry=_at(60))
    )
    assert verify(container, blob=None).resource == "c"


def test_user_delegation_sas_refusals() -> None:
    query = _query(_blob_sas(account_key=None, user_delegation_key=_udk()))
    refused(query, detail="Signature did not match", udk=lambda key: None)
    refused(
        query,
        detail="Signature did not match",
        udk=lambda key: derive_user_delegation_key(SECRET, "acct2", key),
    )
    refused(
        query,
        detail="Signature did not match",
        udk=lambda key: derive_user_delegation_key(os.urandom(32), ACCOUNT, key),
    )
    refused({**query, "skoid": "99999999-2222-3333-4444-555555555555"}, detail="Signature did not match")
    refused({**query, "sks": "q"}, detail="Signature fields not well formed.")
    refused({**query, "skoid": "not-a-guid"}, detail="Signature fields not well formed.")
    refused({k: v for k, v in query.items() if k != "skt"}, detail="skt is mandatory. Cannot be empty")
    refused({**query, "si": "pol1"}, detail="Signature fields not well formed.")
    expired_key = _query(_blob_sas(account_key=None, user_delegation_key=_udk(start=-7200, expiry=-3600)))
    refused(expired_key, detail="Signature not valid in the specified time frame")
    # A key-signed verifier never accepts it: the account keys are not its signing key.
    refused(query, detail="Signature did not match", udk=lambda key: KEY1)


def test_user_delegation_bound_headers_query_and_user() -> None:
    other_user = "12121212-3434-5656-7878-909090909090"
    token = _blob_sas(
        account_key=None, user_delegation_key=_udk(), user_delegation_oid=other_user,
        request_headers={"x-ms-client-tag": "t1"}, request_query_params={"mode": "fast"},
    )  # fmt: skip
    query = _query(token, mode="fast")
    grant = verify(query, headers={"X-MS-Client-Tag": "t1"})
    assert grant.delegated_user_oid == other_user
    refused(query, detail="Signature did not match", headers={"x-ms-client-tag": "t2"})
    refused(query, detail="Signature did not match")
    refused({**query, "mode": "slow"}, detail="Signature did not match", headers={"x-ms-client-tag": "t1"})


def test_derived_key_is_deterministic_and_bound() -> None:
    key = SignedKey(OID, TID, _iso(0), _iso(60), "b", "2026-10-06")
    assert derive_user_delegation_key(SECRET, ACCOUNT, key) == derive_user_delegation_key(
        SECRET, ACCOUNT, key
    )
    assert len(derive_user_delegation_key(SECRET, ACCOUNT, key)) == 32
    assert derive_user_delegation_key(SECRET, "acct2", key) != derive_user_delegation_key(
        SECRET, ACCOUNT, key
    )
    with pytest.raises(ValueError):
        derive_user_delegation_key(SECRET, ACCOUNT, SignedKey(OID, TID + "\n", "", "", "b", "2026-10-06"))
