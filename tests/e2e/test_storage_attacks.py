"""Hostile callers against the Blob data plane (storage-attack brief).

Every test asserts the SAFE behaviour against a real server; SAS and Shared Key values are signed
with azure-storage-blob's own ``generate_*_sas`` functions (pure, no network), and requests go out
raw (path-style ``https://localhost:<port>/{account}``) so that odd inputs reach the server as sent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    UserDelegationKey,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    BLOB_VERSION,
    account_keys,
    account_name,
    assert_blob_error,
    create_account,
    grant,
    storage_token,
)
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

V = {"x-ms-version": BLOB_VERSION}
PUT_BLOB = {**V, "x-ms-blob-type": "BlockBlob"}


def _hour() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


@dataclass
class Acct:
    """An account with a full account SAS (``sas``) for setup, and its key."""

    name: str
    key: str
    doc: dict[str, object]
    sas: str


def _account(srv: KeylessServer, group: str) -> Acct:
    name = account_name("atk")
    doc = create_account(srv, group, name)
    key = account_keys(srv, group, name)[0]
    full = generate_account_sas(
        name,
        key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True, tag=True),
        _hour(),
    )
    return Acct(name, key, doc, full)


@pytest.fixture
def http(server: KeylessServer) -> Iterator[httpx.Client]:
    with server.client(via_proxy=False, base_url=server.direct_url) as client:
        yield client


def _setup_blob(http: httpx.Client, acct: Acct, container: str, blob: str, content: bytes) -> None:
    r = http.put(f"/{acct.name}/{container}?restype=container&{acct.sas}", headers=V)
    assert r.status_code in (201, 409), r.text
    r = http.put(f"/{acct.name}/{container}/{blob}?{acct.sas}", headers=PUT_BLOB, content=content)
    assert r.status_code == 201, r.text


def _read(http: httpx.Client, acct: Acct, container: str, blob: str) -> httpx.Response:
    return http.get(f"/{acct.name}/{container}/{blob}?{acct.sas}", headers=V)


# --- XML: the DOCTYPE guard ---------------------------------------------------------------------


def test_block_list_in_utf16_cannot_smuggle_a_doctype(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """FINDING (xml.parse): the DOCTYPE/ENTITY guard looks for ASCII bytes, so a UTF-16 document
    carries internal entities past it (expat then expands them: ~100x amplification of an 8 MiB
    block list on the event loop). Safe: 400 InvalidXmlDocument, nothing committed."""
    acct = _account(server, create_group(server, unique))
    _setup_blob(http, acct, "cx1", "seed", b"seed")
    block = "QUFBQQ=="  # "AAAA"
    r = http.put(f"/{acct.name}/cx1/b?comp=block&blockid={block}&{acct.sas}", headers=V, content=b"123")
    assert r.status_code == 201, r.text
    doc = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        f'<!DOCTYPE BlockList [<!ENTITY id "{block}">]><BlockList><Latest>&id;</Latest></BlockList>'
    ).encode("utf-16")
    r = http.put(f"/{acct.name}/cx1/b?comp=blocklist&{acct.sas}", headers=V, content=doc)
    assert_blob_error(r, 400, "InvalidXmlDocument")
    assert _read(http, acct, "cx1", "b").status_code == 404


# --- user delegation SAS ------------------------------------------------------------------------


def _udk(server: KeylessServer, http: httpx.Client, acct: Acct) -> UserDelegationKey:
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], str(acct.doc["id"]))
    now = dt.datetime.now(dt.UTC)
    body = (
        f"<KeyInfo><Start>{(now - dt.timedelta(minutes=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}</Start>"
        f"<Expiry>{_hour().strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiry></KeyInfo>"
    )
    r = http.post(
        f"/{acct.name}/?restype=service&comp=userdelegationkey",
        headers={**V, "Authorization": f"Bearer {storage_token(server)}"},
        content=body.encode(),
    )
    assert r.status_code == 200, r.text
    import xml.etree.ElementTree as ET

    root = ET.fromstring(r.content)  # noqa: S314 - our own server's reply
    key = UserDelegationKey()  # type: ignore[no-untyped-call]
    key.signed_oid = root.findtext("SignedOid")
    key.signed_tid = root.findtext("SignedTid")
    key.signed_start = root.findtext("SignedStart")
    key.signed_expiry = root.findtext("SignedExpiry")
    key.signed_service = root.findtext("SignedService")
    key.signed_version = root.findtext("SignedVersion")
    key.value = root.findtext("Value")
    return key


def test_user_delegation_sas_for_a_delegated_user_needs_that_users_token(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """FINDING (access.authenticate / SasGrant.delegated_user_oid never read): a user delegation SAS
    that names a delegated user (``sduoid``, 2025-07-05+) may be used only together with that
    user's bearer token; Keyless accepts it from anyone holding the URL. Safe: 403, no content."""
    acct = _account(server, create_group(server, unique))
    _setup_blob(http, acct, "cud", "secret.txt", b"for one user only")
    key = _udk(server, http, acct)
    sas = generate_blob_sas(
        acct.name, "cud", "secret.txt", user_delegation_key=key,
        permission=BlobSasPermissions(read=True), expiry=_hour(), user_delegation_oid=str(uuid.uuid4()),
    )  # fmt: skip
    assert "sduoid=" in sas
    r = http.get(f"/{acct.name}/cud/secret.txt?{sas}", headers=V)
    assert r.status_code == 403, r.text
    assert b"for one user only" not in r.content


def test_user_delegation_key_of_one_account_signs_nothing_on_another(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """Guard: a user delegation key is bound to its account."""
    group = create_group(server, unique)
    a, b = _account(server, group), _account(server, group)
    _setup_blob(http, b, "ccc", "x.txt", b"account b")
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], str(b.doc["id"]))
    key = _udk(server, http, a)
    sas = generate_blob_sas(b.name, "ccc", "x.txt", user_delegation_key=key, permission="r", expiry=_hour())
    r = http.get(f"/{b.name}/ccc/x.txt?{sas}", headers=V)
    assert_blob_error(r, 403, "AuthenticationFailed")


# --- addressing ---------------------------------------------------------------------------------


def test_account_name_case_in_the_path_is_the_same_account(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """FINDING (http.BlobApp._prepare: ``account_name`` taken from the path as written while the
    edge routes ``/ATK…`` case-insensitively): an upper-case account segment opens a second,
    invisible namespace (rows keyed by the upper-case name, files under an upper-case directory
    that ``BlobFiles.path`` later refuses: 500). Safe: the same data as the lower-case name, or a
    4xx, never a 5xx."""
    acct = _account(server, create_group(server, unique))
    _setup_blob(http, acct, "real", "a.txt", b"real data")
    upper = acct.name.upper()
    r = http.get(f"/{upper}/real/a.txt?{acct.sas}", headers=V)
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert r.content == b"real data"
    r = http.put(f"/{upper}/shadow?restype=container&{acct.sas}", headers=V)
    assert r.status_code < 500, r.text
    if r.status_code == 201:
        # It must be the account's container, visible under its real name.
        seen = http.get(f"/{acct.name}/shadow?restype=container&{acct.sas}", headers=V)
        assert seen.status_code == 200, seen.text
        r = http.put(f"/{upper}/shadow/b.txt?{acct.sas}", headers=PUT_BLOB, content=b"x" * 10)
        assert r.status_code < 500, r.text
        r = http.get(f"/{upper}/shadow/b.txt?{acct.sas}", headers=V)
        assert r.status_code < 500, r.text


def test_sas_is_bound_to_account_container_and_blob(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """Guard: a SAS for account A does not open B; for container X not Y; for blob b1 not b2;
    letters beyond the signed ones are refused; host-style vs path-style changes nothing."""
    group = create_group(server, unique)
    a, b = _account(server, group), _account(server, group)
    for acct in (a, b):
        _setup_blob(http, acct, "cx1", "b1", b"one")
        _setup_blob(http, acct, "cx1", "b2", b"two")
        _setup_blob(http, acct, "cy1", "b1", b"why")
    on_a = generate_account_sas(a.name, a.key, ResourceTypes(object=True), "r", _hour())
    assert_blob_error(http.get(f"/{b.name}/cx1/b1?{on_a}", headers=V), 403, "AuthenticationFailed")
    container_x = generate_container_sas(
        a.name, "cx1", a.key, permission=ContainerSasPermissions(read=True), expiry=_hour()
    )
    assert http.get(f"/{a.name}/cx1/b2?{container_x}", headers=V).content == b"two"
    assert_blob_error(http.get(f"/{a.name}/cy1/b1?{container_x}", headers=V), 403, "AuthenticationFailed")
    blob_1 = generate_blob_sas(a.name, "cx1", "b1", account_key=a.key, permission="r", expiry=_hour())
    assert_blob_error(http.get(f"/{a.name}/cx1/b2?{blob_1}", headers=V), 403, "AuthenticationFailed")
    r = http.put(f"/{a.name}/cx1/b1?{blob_1}", headers=PUT_BLOB, content=b"overwrite")
    assert_blob_error(r, 403, "AuthorizationPermissionMismatch")
    widened = blob_1.replace("sp=r", "sp=rw")
    r = http.put(f"/{a.name}/cx1/b1?{widened}", headers=PUT_BLOB, content=b"overwrite")
    assert_blob_error(r, 403, "AuthenticationFailed")
    # Encoded slashes and dot segments never leave the signed container.
    r = http.get(f"/{a.name}/cx1%2F..%2Fcy1%2Fb1?{container_x}", headers=V)
    assert r.status_code in (400, 403, 404) and b"why" not in r.content, r.text
    assert _read(http, a, "cx1", "b1").content == b"one"


# --- snapshot and version SAS -------------------------------------------------------------------


def test_snapshot_sas_cannot_write_the_base_blob(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """FINDING (blobs.put_blob, set_metadata, blocks.put_block_list ignore ``snapshot``; sas grants
    sr=bs on the base name): a SAS for one snapshot (sr=bs) with ``w`` overwrites the base blob,
    which Azure's sr=bs never reaches ("not the corresponding root blob", REST docs "Create a
    service SAS"). Safe: 4xx and the base blob unchanged."""
    acct = _account(server, create_group(server, unique))
    _setup_blob(http, acct, "csn", "b.txt", b"original")
    r = http.put(f"/{acct.name}/csn/b.txt?comp=snapshot&{acct.sas}", headers=V)
    assert r.status_code == 201, r.text
    snapshot = r.headers["x-ms-snapshot"]
    sas = generate_blob_sas(
        acct.name, "csn", "b.txt", snapshot=snapshot, account_key=acct.key, permission="rw", expiry=_hour()
    )
    assert "sr=bs" in sas
    sas += "&snapshot=" + quote(snapshot)  # the client names the snapshot it addresses
    r = http.get(f"/{acct.name}/csn/b.txt?{sas}", headers=V)
    assert r.status_code == 200 and r.content == b"original", r.text
    r = http.put(f"/{acct.name}/csn/b.txt?{sas}", headers=PUT_BLOB, content=b"overwritten")
    assert 400 <= r.status_code < 500, r.text
    r = http.put(f"/{acct.name}/csn/b.txt?comp=metadata&{sas}", headers={**V, "x-ms-meta-owned": "yes"})
    assert 400 <= r.status_code < 500, r.text
    base = _read(http, acct, "csn", "b.txt")
    assert base.content == b"original"
    assert "x-ms-meta-owned" not in base.headers


def test_version_sas_does_not_open_the_current_blob(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """FINDING (sas._service accepts sr=bv; no operation reads ``versionid``): Keyless has no blob
    versions, yet a SAS for a version id (sr=bv) reads and overwrites the current blob. Safe: 4xx
    (Azure: the version does not exist), current blob unchanged."""
    acct = _account(server, create_group(server, unique))
    _setup_blob(http, acct, "cvr", "b.txt", b"current")
    sas = generate_blob_sas(
        acct.name, "cvr", "b.txt", account_key=acct.key, permission="rwd", expiry=_hour(),
        version_id="2020-01-01T00:00:00.0000000Z",
    )  # fmt: skip
    assert "sr=bv" in sas
    sas += "&versionid=" + quote("2020-01-01T00:00:00.0000000Z")
    r = http.get(f"/{acct.name}/cvr/b.txt?{sas}", headers=V)
    assert r.status_code >= 400 and b"current" not in r.content, r.text
    r = http.put(f"/{acct.name}/cvr/b.txt?{sas}", headers=PUT_BLOB, content=b"replaced")
    assert 400 <= r.status_code < 500, r.text
    assert _read(http, acct, "cvr", "b.txt").content == b"current"


# --- guards: key-based access off, anonymous, network headers -----------------------------------


def test_key_based_access_off_refuses_every_key_signed_form(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """Guard: with allowSharedKeyAccess false, account SAS, service SAS, stored-policy SAS and
    SharedKey Lite are all refused."""
    from tests.e2e.storage_helpers import update_account

    group = create_group(server, unique)
    acct = _account(server, group)
    _setup_blob(http, acct, "ckk", "b.txt", b"keyed")
    service = generate_blob_sas(
        acct.name, "ckk", "b.txt", account_key=acct.key, permission="r", expiry=_hour()
    )
    policy = generate_blob_sas(acct.name, "ckk", "b.txt", account_key=acct.key, policy_id="p1")
    update_account(server, group, acct.name, {"allowSharedKeyAccess": False})
    for sas in (acct.sas, service, policy):
        r = http.get(f"/{acct.name}/ckk/b.txt?{sas}", headers=V)
        assert_blob_error(r, 403, "KeyBasedAuthenticationNotPermitted")
    r = http.get(
        f"/{acct.name}/ckk/b.txt",
        headers={
            **V,
            "x-ms-date": "Mon, 01 Jan 2024 00:00:00 GMT",
            "Authorization": f"SharedKeyLite {acct.name}:{'A' * 43}=",
        },
    )
    assert r.status_code in (400, 403) and b"keyed" not in r.content


def test_forwarded_headers_do_not_forge_an_origin(
    server: KeylessServer, unique: Unique, http: httpx.Client
) -> None:
    """Guard: X-Forwarded-For / Forwarded name no origin: a Deny-all firewall with an IP rule for
    the forged address still refuses the direct caller."""
    from tests.e2e.storage_helpers import update_account

    group = create_group(server, unique)
    acct = _account(server, group)
    _setup_blob(http, acct, "cnn", "b.txt", b"walled")
    update_account(
        server, group, acct.name,
        {"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices",
                         "ipRules": [{"value": "20.30.40.50", "action": "Allow"}]}},
    )  # fmt: skip
    forged = {
        **V,
        "X-Forwarded-For": "20.30.40.50",
        "Forwarded": "for=20.30.40.50",
        "X-Real-IP": "20.30.40.50",
    }
    r = http.get(f"/{acct.name}/cnn/b.txt?{acct.sas}", headers=forged)
    assert_blob_error(r, 403, "AuthorizationFailure")
