"""What the Blob tests share (and the lead's network-rule / ABAC / SAS scenarios can reuse): storage
accounts made through ARM, role grants, raw Blob requests with a chosen credential, and
azure-storage-blob programs run under `keyless run`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.workload_helpers import cli_ok, program, run_json
from tests.keyless_server import KeylessServer

STORAGE_API = "2026-09-01"
BLOB_VERSION = "2026-10-06"
STORAGE_RESOURCE = "https://storage.azure.com"
BLOB_ROLES = {
    "owner": "Storage Blob Data Owner",
    "contributor": "Storage Blob Data Contributor",
    "reader": "Storage Blob Data Reader",
    "delegator": "Storage Blob Delegator",
}


def account_name(prefix: str = "st") -> str:
    return f"{prefix}{uuid.uuid4().hex[:14]}"


def account_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"/subscriptions/{srv.subscription_id}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"


def create_account(srv: KeylessServer, group: str, name: str, **properties: Any) -> dict[str, Any]:
    """A StorageV2 account through ARM (PUT, then the 202's Location, as the SDK's poller does)."""
    body = {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
    if properties:
        body["properties"] = properties
    with srv.arm() as arm:
        r = arm.put(account_path(srv, group, name), params={"api-version": STORAGE_API}, json=body)
        assert r.status_code in (200, 201, 202), r.text
        if r.status_code == 202:
            r = arm.get(r.headers["Location"].replace("https://management.azure.com", ""))
        assert r.status_code == 200, r.text
    return dict(r.json())


def update_account(srv: KeylessServer, group: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.patch(
            account_path(srv, group, name),
            params={"api-version": STORAGE_API},
            json={"properties": properties},
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


def account_keys(srv: KeylessServer, group: str, name: str) -> list[str]:
    with srv.arm() as arm:
        r = arm.post(account_path(srv, group, name) + "/listKeys", params={"api-version": STORAGE_API})
    assert r.status_code == 200, r.text
    return [k["value"] for k in r.json()["keys"]]


def grant(srv: KeylessServer, principal_id: str, role: str, scope: str) -> None:
    """`keyless role assignment create` (``role`` a name, e.g. BLOB_ROLES["contributor"])."""
    cli_ok(srv, "role", "assignment", "create", "--assignee", principal_id, "--role", role, "--scope", scope)


def storage_token(srv: KeylessServer) -> str:
    return srv.admin_token(STORAGE_RESOURCE)


def blob_client(srv: KeylessServer, account: str, token: str | None = None) -> httpx.Client:
    """Raw Blob requests to ``https://{account}.blob.core.windows.net`` through the proxy, with
    ``x-ms-version`` and (if given) a bearer token."""
    headers = {"x-ms-version": BLOB_VERSION}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return srv.client(base_url=f"https://{account}.blob.core.windows.net", headers=headers)


def assert_blob_error(r: httpx.Response, status: int, code: str) -> None:
    """A Blob service error: status, ``x-ms-error-code`` and the same code in the XML body."""
    assert r.status_code == status, f"{r.status_code} {r.headers} {r.text}"
    assert r.headers.get("x-ms-error-code") == code, r.headers
    if r.request.method != "HEAD":
        assert f"<Code>{code}</Code>" in r.text, r.text
    assert r.headers.get("x-ms-request-id")


def sdk_json(srv: KeylessServer, code: str, data: Any = None, *run_args: str) -> Any:
    """An azure-storage-blob program under `keyless run [run_args]` (the admin by default); it
    prints one JSON document last."""
    return run_json(srv, program(code, data), *run_args)


# A program that runs named steps with azure-storage-blob and reports each value or error code.
SDK_STEPS = """
import json, os
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
args = json.loads(DATA)
cred = ManagedIdentityCredential() if args.get("mi") else DefaultAzureCredential()
svc = BlobServiceClient(args["url"], credential=args.get("key") or cred)
out = {}
def err(exc):
    return [exc.status_code, exc.error_code]
for step in args["steps"]:
    op, *rest = step
    try:
        if op == "create-container":
            svc.create_container(rest[0]); out[op] = "ok"
        elif op == "upload":
            svc.get_blob_client(rest[0], rest[1]).upload_blob(rest[2].encode(), overwrite=True); out[op] = "ok"
        elif op == "download":
            out[op] = svc.get_blob_client(rest[0], rest[1]).download_blob().readall().decode()
        elif op == "list":
            out[op] = [b.name for b in svc.get_container_client(rest[0]).list_blobs()]
        elif op == "delete":
            svc.get_blob_client(rest[0], rest[1]).delete_blob(); out[op] = "ok"
    except HttpResponseError as exc:
        out[op] = err(exc)
print(json.dumps(out))
"""
