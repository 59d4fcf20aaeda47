"""List Blobs and List Containers over the wire: byte order on both databases, pages that cut
through prefixes, snapshots and metadata on request, and markers."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    account_name,
    blob_client,
    create_account,
    grant,
    storage_token,
)
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

NAMES = ["b", "B", "_x", "a-", "a", "Z", "é", "dir/1", "dir/2", "dir/sub/3", "dirt", "~"]


def _page(http: httpx.Client, **params: str) -> tuple[list[str], list[str], str]:
    r = http.get("/lst", params={"restype": "container", "comp": "list", **params})
    assert r.status_code == 200, r.text
    blobs = re.findall(r"<Blob><Name>([^<]*)</Name>", r.text)
    prefixes = re.findall(r"<BlobPrefix><Name>([^<]*)</Name>", r.text)
    marker = re.search(r"<NextMarker>([^<]*)</NextMarker>", r.text)
    return blobs, prefixes, marker.group(1) if marker else ""


def _walk(http: httpx.Client, **params: str) -> list[str]:
    seen: list[str] = []
    marker = ""
    while True:
        extra = {"marker": marker} if marker else {}
        blobs, prefixes, marker = _page(http, **params, **extra)
        seen += blobs + prefixes
        if not marker:
            return seen


def test_listing_order_pages_prefixes_snapshots(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], doc["id"])
    with blob_client(server, name, storage_token(server)) as http:
        assert http.put("/lst", params={"restype": "container"}).status_code == 201
        for blob in NAMES:
            headers = {"x-ms-blob-type": "BlockBlob", "x-ms-meta-n": "1"}
            assert http.put(f"/lst/{blob}", content=blob.encode(), headers=headers).status_code == 201
        assert http.put("/lst/a", params={"comp": "snapshot"}).status_code == 201
        # Byte order (code points), whatever the database's collation.
        assert _page(http)[0] == sorted(NAMES)
        # Pages of 2 give the same sequence; a page may end anywhere, even inside a prefix run.
        assert _walk(http, maxresults="2") == sorted(NAMES)
        flat = sorted(n for n in NAMES if "/" not in n)
        assert _walk(http, delimiter="/", maxresults="1") == sorted([*flat, "dir/"])
        assert _walk(http, delimiter="/", prefix="dir/", maxresults="1") == ["dir/1", "dir/2", "dir/sub/"]
        blobs, _, _ = _page(http, include="snapshots,metadata", prefix="a")
        assert blobs == ["a", "a", "a-"]
        r = http.get(
            "/lst",
            params={"restype": "container", "comp": "list", "include": "snapshots,metadata", "prefix": "a"},
        )
        assert r.text.count("<Snapshot>") == 1 and r.text.count("<Metadata><n>1</n></Metadata>") == 3
        # Containers page the same way.
        for extra in ("lst2", "lst3"):
            assert http.put(f"/{extra}", params={"restype": "container"}).status_code == 201
        r = http.get("/", params={"comp": "list", "maxresults": "2"})
        assert re.findall(r"<Container><Name>([^<]*)</Name>", r.text) == ["lst", "lst2"]
        marker = re.search(r"<NextMarker>([^<]*)</NextMarker>", r.text)
        assert marker is not None
        r = http.get("/", params={"comp": "list", "maxresults": "2", "marker": marker.group(1)})
        assert re.findall(r"<Container><Name>([^<]*)</Name>", r.text) == ["lst3"]
        assert "<NextMarker />" in r.text
