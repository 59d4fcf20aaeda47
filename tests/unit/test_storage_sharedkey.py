"""Shared Key verification against requests signed by the real azure-storage-blob client.

The SDK builds and signs each request (``SharedKeyCredentialPolicy``) exactly as it would for a
real call; a capturing transport stops it at the wire and hands the request to the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport
from azure.storage.blob import BlobServiceClient
from azure.storage.blob._shared.authentication import _storage_header_sort

from keyless.providers.storage.blob.errors import StorageError
from keyless.providers.storage.blob.sharedkey import (
    parse_query,
    service_header_key,
    string_to_sign,
    verify_shared_key,
)

ACCOUNT = "acct1"
KEY1 = os.urandom(64)
KEY2 = os.urandom(64)


class _Captured(Exception):
    def __init__(self, request: HttpRequest) -> None:
        super().__init__("captured")
        self.request = request


class _CaptureTransport(HttpTransport[HttpRequest, HttpResponse]):
    """Stops the SDK's pipeline at the wire: raises with the fully signed request."""

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        raise _Captured(request)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __exit__(self, *args: object) -> None:
        pass


class Wire:
    """A captured request as the server sees it."""

    def __init__(self, request: HttpRequest) -> None:
        parts = urlsplit(request.url)
        self.method = request.method
        self.raw_path = parts.path or "/"
        self.query = parse_query(parts.query)
        self.headers = {name: str(value) for name, value in request.headers.items()}
        self.authorization = self.headers.pop("Authorization")

    def verify(self, keys: list[bytes] | None = None, **changes: Any) -> None:
        args: dict[str, Any] = {
            "authorization": self.authorization,
            "method": self.method,
            "raw_path": self.raw_path,
            "query": self.query,
            "headers": self.headers,
            "account": ACCOUNT,
            "keys": keys if keys is not None else [KEY1, KEY2],
        }
        args.update(changes)
        verify_shared_key(**args)


def _client(url: str, key: bytes = KEY1) -> BlobServiceClient:
    credential = {"account_name": ACCOUNT, "account_key": base64.b64encode(key).decode()}
    return BlobServiceClient(url, credential=credential, transport=_CaptureTransport())


def capture(
    call: Callable[[BlobServiceClient], object],
    url: str = f"https://127.0.0.1:10000/{ACCOUNT}",
    key: bytes = KEY1,
) -> Wire:
    with pytest.raises(_Captured) as info:
        call(_client(url, key))
    return Wire(info.value.request)


def _fails(wire: Wire, code: str = "AuthenticationFailed", status: int = 403, **changes: Any) -> StorageError:
    with pytest.raises(StorageError) as info:
        wire.verify(**changes)
    assert (info.value.status, info.value.code) == (status, code)
    return info.value


@pytest.fixture(params=["path", "host"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield (
        f"https://127.0.0.1:10000/{ACCOUNT}"
        if request.param == "path"
        else f"https://{ACCOUNT}.blob.core.windows.net"
    )


def test_sdk_requests_verify_path_and_host_style(url: str) -> None:
    calls: list[Callable[[BlobServiceClient], object]] = [
        lambda c: c.create_container("cont"),
        lambda c: c.get_container_client("cont").upload_blob(
            "dir/a b ü+%.txt", b"hello", metadata={"Key": "v"}
        ),
        lambda c: list(c.get_container_client("cont").list_blobs(name_starts_with="a b/")),
        lambda c: list(c.list_containers(name_starts_with="co")),
        lambda c: c.get_blob_client("cont", "x").download_blob(offset=3, length=10),
        lambda c: c.get_blob_client("cont", "x").delete_blob(),
        lambda c: c.get_blob_client("cont", "x").stage_block("YmxvY2s=", b"data"),
        lambda c: c.get_blob_client("cont", "x").set_blob_tags({"a": "1"}),
    ]
    for call in calls:
        wire = capture(call, url)
        wire.verify()
        wire.verify(keys=[KEY2, KEY1])


def test_key2_signs_too() -> None:
    wire = capture(lambda c: c.create_container("cont"), key=KEY2)
    wire.verify()
    _fails(wire, keys=[KEY1])


def test_wrong_key_is_403_with_the_string_to_sign() -> None:
    wire = capture(lambda c: c.create_container("cont"))
    error = _fails(wire, keys=[os.urandom(64)])
    detail = dict(error.details)["AuthenticationErrorDetail"]
    assert detail.startswith("The MAC signature found in the HTTP request '")
    assert "is not the same as any computed signature. Server used following string to sign: 'PUT\n" in detail
    assert f"/{ACCOUNT}/{ACCOUNT}/cont\nrestype:container'." in detail


def test_tampering_fails() -> None:
    wire = capture(lambda c: c.get_container_client("cont").upload_blob("b", b"hello", metadata={"k": "v"}))
    _fails(wire, method="POST")
    _fails(wire, raw_path=f"/{ACCOUNT}/cont/c")
    _fails(wire, headers={**wire.headers, "x-ms-meta-k": "w"})
    _fails(wire, headers={**wire.headers, "x-ms-meta-extra": "1"})
    _fails(wire, query=[("comp", "block")])
    _fails(wire, account="acct2")


def test_account_in_header_must_be_the_addressed_one() -> None:
    wire = capture(lambda c: c.create_container("cont"))
    _fails(wire, authorization=wire.authorization.replace(f"SharedKey {ACCOUNT}:", "SharedKey other1:"))


@pytest.mark.parametrize(
    "authorization",
    [
        "SharedKey",
        "SharedKey acct1",
        "SharedKey acct1:short",
        "Bearer abc",
        "SharedKeyLite acct1:" + "A" * 43 + "=",
        "x" * 600,
    ],
)
def test_malformed_authorization_is_400(authorization: str) -> None:
    wire = capture(lambda c: c.create_container("cont"))
    _fails(wire, "InvalidAuthenticationInfo", 400, authorization=authorization)


def test_request_date_window() -> None:
    wire = capture(lambda c: c.create_container("cont"))
    wire.verify(now=time.time())
    error = _fails(wire, now=time.time() + 16 * 60)
    assert dict(error.details)["AuthenticationErrorDetail"].startswith("Request date header too old: '")
    _fails(wire, now=time.time() - 16 * 60)


def test_bounds() -> None:
    wire = capture(lambda c: c.create_container("cont"))
    _fails(wire, "InvalidUri", 400, raw_path="/" + "a" * 5000)
    _fails(wire, headers={**wire.headers, "x-ms-meta-big": "v" * 9000})
    with pytest.raises(StorageError) as info:
        parse_query("&".join(f"p{i}=1" for i in range(100)))
    assert info.value.code == "InvalidUri"


def test_header_collation_matches_the_sdk() -> None:
    names = [
        "x-ms-meta-ab", "x-ms-meta-a-c", "x-ms-meta-a_b", "x-ms-meta-a1", "x-ms-meta-a", "x-ms-meta-a-",
        "x-ms-date", "x-ms-version", "x-ms-blob-type", "x-ms-blob-content-type", "x-ms-meta-z", "x-ms-meta-a'b",
    ]  # fmt: skip
    expected = [name for name, _ in _storage_header_sort([(name, "") for name in names])]
    assert sorted(names, key=service_header_key) == expected


def test_ordinal_header_order_is_also_accepted() -> None:
    # A Go-style client sorts x-ms-* ordinally; where that differs the verifier tries both.
    headers = {
        "x-ms-date": "Mon, 01 Jan 2024 00:00:00 GMT",
        "x-ms-meta-ab": "1",
        "x-ms-meta-a-c": "2",
        "x-ms-version": "2021-08-06",
    }
    collated = string_to_sign("PUT", "/cont/b", [], headers, ACCOUNT)
    assert collated.index("x-ms-meta-ab") < collated.index("x-ms-meta-a-c")
    ordinal = collated.replace("x-ms-meta-ab:1\nx-ms-meta-a-c:2\n", "x-ms-meta-a-c:2\nx-ms-meta-ab:1\n")
    assert ordinal != collated
    for text in (collated, ordinal):
        signature = base64.b64encode(hmac.new(KEY1, text.encode(), hashlib.sha256).digest()).decode()
        verify_shared_key(f"SharedKey {ACCOUNT}:{signature}", "PUT", "/cont/b", [], headers, ACCOUNT, [KEY1])


def test_query_canonicalization() -> None:
    text = string_to_sign(
        "GET", "/c", parse_query("Comp=list&prefix=a%2Bb+c&include=x&include=a&empty"), {}, ACCOUNT
    )
    assert text.endswith("/acct1/c\ncomp:list\nempty:\ninclude:a,x\nprefix:a+b+c")
