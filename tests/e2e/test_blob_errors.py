"""Bad input on the Blob data plane, over the wire: each gets Azure's status and ``x-ms-error-code``
and changes nothing (storage issue, "Bad input")."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    account_name,
    assert_blob_error,
    blob_client,
    create_account,
    grant,
    storage_token,
    update_account,
)
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


@pytest.fixture
def blob(server: KeylessServer, unique: Unique) -> Iterator[tuple[httpx.Client, str, str]]:
    """A client (admin, Storage Blob Data Owner) on a fresh account with container ``box`` holding
    ``kept.txt`` = b"original"; yields (client, account, group)."""
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], doc["id"])
    with blob_client(server, name, storage_token(server)) as http:
        assert http.put("/box", params={"restype": "container"}).status_code == 201
        r = http.put("/box/kept.txt", content=b"original", headers={"x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 201, r.text
        yield http, name, group


def _kept(http: httpx.Client) -> bytes:
    r = http.get("/box/kept.txt")
    assert r.status_code == 200, r.text
    return r.content


def _names(http: httpx.Client, container: str = "box") -> list[str]:
    import re

    r = http.get(f"/{container}", params={"restype": "container", "comp": "list"})
    assert r.status_code == 200, r.text
    return re.findall(r"<Blob><Name>([^<]*)</Name>", r.text)


def _put(http: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return http.put(path, content=body, headers={"x-ms-blob-type": "BlockBlob", **headers})


def test_bad_names(blob: tuple[httpx.Client, str, str]) -> None:
    http, _, _ = blob
    for bad in ("ab", "Upper", "a--b", "-ab", "x" * 64, "a_b"):
        assert_blob_error(http.put(f"/{bad}", params={"restype": "container"}), 400, "InvalidResourceName")
    assert_blob_error(_put(http, "/box/" + "n" * 1025, b"x"), 400, "InvalidResourceName")
    assert_blob_error(_put(http, "/box/bad%01name", b"x"), 400, "InvalidUri")
    r = http.get("/", params={"comp": "list"})
    assert r.text.count("<Container>") == 1
    assert _names(http) == ["kept.txt"]


def test_bad_block_ids_and_block_lists(blob: tuple[httpx.Client, str, str]) -> None:
    http, _, _ = blob
    for bad in ("not base64!", "", base64.b64encode(b"x" * 65).decode()):
        r = http.put("/box/kept.txt", params={"comp": "block", "blockid": bad}, content=b"data")
        assert_blob_error(r, 400, "InvalidBlockId")
    ok = base64.b64encode(b"0001").decode()
    assert (
        http.put("/box/kept.txt", params={"comp": "block", "blockid": ok}, content=b"new").status_code == 201
    )
    # Another length of id for the same blob.
    r = http.put(
        "/box/kept.txt", params={"comp": "block", "blockid": base64.b64encode(b"01").decode()}, content=b"z"
    )
    assert_blob_error(r, 400, "InvalidBlobOrBlock")
    unknown = base64.b64encode(b"0002").decode()
    body = f"<?xml version='1.0' encoding='utf-8'?><BlockList><Latest>{ok}</Latest><Latest>{unknown}</Latest></BlockList>"
    assert_blob_error(
        http.put("/box/kept.txt", params={"comp": "blocklist"}, content=body), 400, "InvalidBlockList"
    )
    assert_blob_error(
        http.put("/box/kept.txt", params={"comp": "blocklist"}, content=b"<BlockList><Latest>"),
        400,
        "InvalidXmlDocument",
    )
    entity = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><BlockList><Latest>&a;</Latest></BlockList>'
    )
    assert_blob_error(
        http.put("/box/kept.txt", params={"comp": "blocklist"}, content=entity), 400, "InvalidXmlDocument"
    )
    # The failed commits left the old blob, and the staged block, as they were.
    assert _kept(http) == b"original"
    r = http.get("/box/kept.txt", params={"comp": "blocklist", "blocklisttype": "uncommitted"})
    assert f"<Name>{ok}</Name>" in r.text and f"<Name>{unknown}</Name>" not in r.text
    good = f"<BlockList><Uncommitted>{ok}</Uncommitted></BlockList>"
    assert http.put("/box/kept.txt", params={"comp": "blocklist"}, content=good).status_code == 201
    assert _kept(http) == b"new"


def test_ranges(blob: tuple[httpx.Client, str, str]) -> None:
    http, _, _ = blob
    r = http.get("/box/kept.txt", headers={"x-ms-range": "bytes=8-20"})
    assert_blob_error(r, 416, "InvalidRange")
    assert r.headers["content-range"] == "bytes */8"
    r = http.get("/box/kept.txt", headers={"x-ms-range": "bytes=2-100"})
    assert r.status_code == 206 and r.content == b"iginal" and r.headers["content-range"] == "bytes 2-7/8"
    assert_blob_error(
        http.get("/box/kept.txt", headers={"x-ms-range": "bytes=5-2"}), 400, "InvalidHeaderValue"
    )
    assert _put(http, "/box/empty", b"").status_code == 201
    assert_blob_error(http.get("/box/empty", headers={"x-ms-range": "bytes=0-10"}), 416, "InvalidRange")
    head = http.head("/box/kept.txt")
    assert head.status_code == 200 and head.headers.get_list("content-length") == ["8"]


def test_version_md5_metadata_conditions(blob: tuple[httpx.Client, str, str]) -> None:
    http, _, _ = blob
    r = http.get("/box/kept.txt", headers={"x-ms-version": "2099-01-01"})
    assert_blob_error(r, 400, "InvalidHeaderValue")
    assert "<HeaderName>x-ms-version</HeaderName>" in r.text
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()  # noqa: S324 - Content-MD5
    assert_blob_error(_put(http, "/box/kept.txt", b"replaced", **{"Content-MD5": wrong}), 400, "Md5Mismatch")
    r = http.put(
        "/box/kept.txt",
        params={"comp": "block", "blockid": "AAAA"},
        content=b"b",
        headers={"Content-MD5": wrong},
    )
    assert_blob_error(r, 400, "Md5Mismatch")
    assert_blob_error(_put(http, "/box/kept.txt", b"x", **{"Content-MD5": "nope"}), 400, "InvalidMd5")
    assert_blob_error(_put(http, "/box/kept.txt", b"x", **{"x-ms-meta-1bad": "v"}), 400, "InvalidMetadata")
    assert_blob_error(
        _put(http, "/box/kept.txt", b"x", **{"x-ms-meta-big": "v" * 9000}), 400, "MetadataTooLarge"
    )
    assert_blob_error(_put(http, "/box/kept.txt", b"x", **{"If-Match": '"0x1"'}), 412, "ConditionNotMet")
    assert_blob_error(_put(http, "/box/kept.txt", b"x", **{"If-None-Match": "*"}), 409, "BlobAlreadyExists")
    assert_blob_error(_put(http, "/box/kept.txt", b"x", **{"x-ms-tags": "bad key!=v"}), 400, "InvalidTag")
    assert_blob_error(_put(http, "/nocontainer/x", b"x"), 404, "ContainerNotFound")
    assert_blob_error(http.get("/box/missing"), 404, "BlobNotFound")
    assert_blob_error(
        http.get("/box", params={"restype": "container", "comp": "list", "maxresults": "0"}),
        400,
        "InvalidQueryParameterValue",
    )
    assert_blob_error(
        http.get("/box", params={"restype": "container", "comp": "list", "marker": "@@"}),
        400,
        "InvalidQueryParameterValue",
    )
    assert _kept(http) == b"original"
    r = http.get("/box/kept.txt", params={"comp": "blocklist", "blocklisttype": "uncommitted"})
    assert "<Block>" not in r.text
    etag = http.head("/box/kept.txt").headers["etag"]
    assert http.get("/box/kept.txt", headers={"If-None-Match": etag}).status_code == 304


def test_firewall_and_unknown_account(server: KeylessServer, blob: tuple[httpx.Client, str, str]) -> None:
    http, name, group = blob
    update_account(server, group, name, {"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"}})
    r = http.get("/box/kept.txt")
    assert_blob_error(r, 403, "AuthorizationFailure")
    assert "This request is not authorized to perform this operation." in r.text
    assert_blob_error(_put(http, "/box/kept.txt", b"inside?"), 403, "AuthorizationFailure")
    update_account(server, group, name, {"networkAcls": {"defaultAction": "Allow"}})
    assert _kept(http) == b"original"
    with blob_client(server, "nosuchaccount000", storage_token(server)) as other:
        assert_blob_error(other.get("/box/kept.txt"), 404, "ResourceNotFound")


def test_seeded_garbage_never_gets_a_500(blob: tuple[httpx.Client, str, str]) -> None:
    """Random methods, paths, query parameters and headers: always an Azure-shaped answer below 500,
    and the kept blob unchanged."""
    import random

    http, _, _ = blob
    rng = random.Random(20261129)
    comps = ["", "block", "blocklist", "metadata", "properties", "lease", "snapshot", "tags", "tier", "copy",
             "list", "acl", "blobs", "userdelegationkey", "bogus"]  # fmt: skip
    headers_pool = {
        "x-ms-range": ["bytes=0-", "bytes=-5", "bytes=99999999999999999999-1", "x"],
        "x-ms-lease-action": ["acquire", "break", "renew", "change", "release", "steal"],
        "x-ms-lease-duration": ["-1", "15", "61", "abc", "9" * 30],
        "x-ms-lease-id": ["not-a-guid", "00000000-0000-0000-0000-000000000000"],
        "x-ms-blob-type": ["BlockBlob", "PageBlob", ""],
        "x-ms-copy-source": [
            "https://evil.example/x",
            "not a url",
            "https://127.0.0.1:1/acct/c/b",
            "https://[::1",
        ],
        "x-ms-tags": ["a=b", "%%%", "=" * 50],
        "x-ms-if-tags": ["\"a\"='b'", "garbage ((", "\"a\" = 'b' OR \"c\"='d'"],
        "If-Modified-Since": ["yesterday", "Sun, 29 Nov 2026 20:00:00 GMT"],
        "x-ms-access-tier": ["Hot", "Lukewarm"],
        "x-ms-delete-snapshots": ["include", "only", "all"],
        "x-ms-meta-ok": ["v"],
        "x-ms-blob-public-access": ["blob", "everyone"],
    }
    for _ in range(150):
        method = rng.choice(["GET", "PUT", "DELETE", "HEAD", "POST", "PATCH"])
        path = rng.choice(["/", "/box", "/box/kept.txt", "/box/other", "/box/a/b/c", "/zz", "/box/%FF%FE"])
        params: dict[str, str] = {}
        if rng.random() < 0.7:
            params["comp"] = rng.choice(comps)
        if rng.random() < 0.5:
            params["restype"] = rng.choice(["container", "service", "account", "x"])
        for name in ("blockid", "maxresults", "marker", "prefix", "where", "snapshot", "blocklisttype"):
            if rng.random() < 0.15:
                params[name] = rng.choice(
                    ["", "AAAA", "-1", "0", "\u00e9\u00e9", "@@", "2026-01-01T00:00:00Z", "x" * 300]
                )
        headers = {k: rng.choice(v) for k, v in headers_pool.items() if rng.random() < 0.2}
        body = rng.choice([b"", b"<BlockList><Latest>AAAA</Latest></BlockList>", b"<x", b"\x00" * 10])
        if path == "/box/kept.txt" and method in ("PUT", "DELETE"):
            path = "/box/other"  # the kept blob is the "nothing changed" witness
        r = http.request(method, path, params=params, headers=headers, content=body)
        assert r.status_code < 500, (method, path, params, headers, r.status_code, r.text)
        if r.status_code >= 400 and method != "HEAD":
            assert r.headers.get("x-ms-error-code") and "<Error><Code>" in r.text, (
                method,
                path,
                params,
                r.text,
            )
    assert _kept(http) == b"original"


def test_crc64_is_checked_on_put_blob_and_put_block(blob: tuple[httpx.Client, str, str]) -> None:
    """``x-ms-content-crc64`` (Storage's CRC64, little-endian in Base64, as azure-storage-blob sends
    it with ``validate_content="crc64"``): a match is stored and echoed; a mismatch is 400
    ``Crc64Mismatch`` and changes nothing."""
    from azure.storage.extensions.checksums import crc64

    http, _, _ = blob
    body = b"frames of a clip"
    good = base64.b64encode(crc64.compute(body, 0).to_bytes(8, "little")).decode()
    r = _put(http, "/box/crc.txt", body, **{"x-ms-content-crc64": good})
    assert r.status_code == 201 and r.headers["x-ms-content-crc64"] == good
    bad = base64.b64encode((crc64.compute(body, 0) ^ 1).to_bytes(8, "little")).decode()
    assert_blob_error(
        _put(http, "/box/kept.txt", b"replaced", **{"x-ms-content-crc64": bad}), 400, "Crc64Mismatch"
    )
    assert_blob_error(
        _put(http, "/box/kept.txt", b"replaced", **{"x-ms-content-crc64": "short"}), 400, "InvalidHeaderValue"
    )
    block = base64.b64encode(b"block-1").decode()
    r = http.put(
        "/box/kept.txt",
        params={"comp": "block", "blockid": block},
        content=body,
        headers={"x-ms-content-crc64": bad},
    )
    assert_blob_error(r, 400, "Crc64Mismatch")
    r = http.get("/box/kept.txt", params={"comp": "blocklist", "blocklisttype": "uncommitted"})
    assert "<Block>" not in r.text
    assert _kept(http) == b"original"
