"""Paths and small helpers the resource-manager tests share."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.keyless_server import KeylessServer

RG_API = "2024-03-01"
MSI_API = "2024-11-30"
UAMI = "Microsoft.ManagedIdentity/userAssignedIdentities"


def rg_path(srv: KeylessServer, group: str) -> str:
    return f"/subscriptions/{srv.subscription_id}/resourceGroups/{group}"


def uami_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"{rg_path(srv, group)}/providers/{UAMI}/{name}"


def fic_path(srv: KeylessServer, group: str, identity: str, name: str) -> str:
    return f"{uami_path(srv, group, identity)}/federatedIdentityCredentials/{name}"


def create_group(
    arm: httpx.Client, srv: KeylessServer, group: str, location: str = "westeurope"
) -> dict[str, Any]:
    r = arm.put(rg_path(srv, group), params={"api-version": RG_API}, json={"location": location})
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def create_identity(
    arm: httpx.Client, srv: KeylessServer, group: str, name: str, **body: Any
) -> dict[str, Any]:
    r = arm.put(
        uami_path(srv, group, name), params={"api-version": MSI_API}, json={"location": "westeurope", **body}
    )
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


def assert_arm_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert r.headers["x-ms-request-id"]
    return str(error["message"])


def collect_pages(arm: httpx.Client, path: str, api_version: str) -> tuple[list[dict[str, Any]], int]:
    """Follow nextLink to the end; return the items and the number of pages."""
    r = arm.get(path, params={"api-version": api_version})
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["value"])
        pages += 1
        link = body.get("nextLink")
        if not link:
            return items, pages
        assert link.startswith("https://management.azure.com/")
        r = arm.get(link)


def poll(arm: httpx.Client, location: str) -> httpx.Response:
    """Poll a Location header until the operation is no longer running (202)."""
    deadline = time.monotonic() + 60
    while True:
        r = arm.get(location)
        if r.status_code != 202 or time.monotonic() > deadline:
            return r
        time.sleep(float(r.headers.get("retry-after", "1")))
