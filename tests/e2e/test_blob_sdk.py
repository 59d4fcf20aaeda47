"""The Blob data plane driven by azure-storage-blob (sync and aio) with bearer tokens: the issue's
program under `keyless run --as` a VM holding Storage Blob Data Contributor, and every core
operation as the admin (host-style through the proxy and path-style on localhost)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    SDK_STEPS,
    account_name,
    create_account,
    grant,
    sdk_json,
)
from tests.e2e.workload_helpers import Unique, create_group, create_vm
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

ISSUE_PROGRAM = """
import json, os, tempfile
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
url = json.loads(DATA)["url"]
path = os.path.join(tempfile.mkdtemp(), "clip.mp4")
with open(path, "wb") as f:
    f.write(b"\\x00mp4" * 1000)
svc = BlobServiceClient(url, ManagedIdentityCredential())
svc.create_container("ingest").upload_blob("clip.mp4", open(path, "rb"))
data = svc.get_blob_client("ingest", "clip.mp4").download_blob().readall()
print(json.dumps({"size": len(data), "same": data == open(path, "rb").read()}))
"""


def _account(server: KeylessServer, unique: Unique) -> tuple[str, str, dict[str, Any]]:
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    return group, name, doc


def test_issue_program_runs_as_a_vm_with_contributor(server: KeylessServer, unique: Unique) -> None:
    group, name, doc = _account(server, unique)
    vm = create_vm(server, group, "app-vm", "")
    other = create_vm(server, group, "other-vm", "")
    grant(server, vm["identity"]["principalId"], BLOB_ROLES["contributor"], doc["id"])
    url = f"https://{name}.blob.core.windows.net"
    vm_id = vm["id"]
    out = sdk_json(server, ISSUE_PROGRAM, {"url": url}, "--as", vm_id)
    assert out == {"size": 4000, "same": True}
    # The other VM holds no role: Azure's 403, and nothing made.
    seen = sdk_json(
        server,
        SDK_STEPS,
        {
            "url": url,
            "mi": True,
            "steps": [["create-container", "other"], ["download", "ingest", "clip.mp4"]],
        },
        "--as",
        other["id"],
    )
    assert seen == {
        "create-container": [403, "AuthorizationPermissionMismatch"],
        "download": [403, "AuthorizationPermissionMismatch"],
    }


CORE = """
import json, hashlib, os
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient, BlobBlock, ContentSettings
args = json.loads(DATA)
svc = BlobServiceClient(args["url"], DefaultAzureCredential())
out = {}
c = svc.create_container("core", metadata={"purpose": "tests"})
out["container_meta"] = svc.get_container_client("core").get_container_properties().metadata
b = c.get_blob_client("dir/a b.txt")
b.upload_blob(b"hello world", content_settings=ContentSettings(content_type="text/plain"), metadata={"k": "v"})
props = b.get_blob_properties()
out["props"] = [props.size, props.content_settings.content_type, props.metadata, props.blob_type]
out["md5"] = props.content_settings.content_md5 == hashlib.md5(b"hello world").digest()
out["range"] = b.download_blob(offset=6, length=5).readall().decode()
out["whole"] = b.download_blob().readall().decode()
try:
    b.upload_blob(b"again")
except ResourceExistsError as exc:
    out["no_overwrite"] = exc.error_code
big = os.urandom(5 * 1024 * 1024 + 17)
small = BlobServiceClient(args["url"], DefaultAzureCredential(), max_single_put_size=1024 * 1024,
    max_block_size=1024 * 1024, max_single_get_size=1024 * 1024, max_chunk_get_size=1024 * 1024)
small.get_blob_client("core", "big.bin").upload_blob(big)
got = small.get_blob_client("core", "big.bin").download_blob().readall()
out["big"] = got == big
blocks = c.get_blob_client("blocks.bin")
blocks.stage_block("YQ==", b"aaa")
blocks.stage_block("Yg==", b"bbb")
committed, uncommitted = blocks.get_block_list("all")
out["uncommitted"] = sorted(x.id for x in uncommitted)
blocks.commit_block_list([BlobBlock("Yg=="), BlobBlock("YQ==")])
out["blocks"] = blocks.download_blob().readall().decode()
c.get_blob_client("dir/sub/c.txt").upload_blob(b"c")
c.get_blob_client("empty").upload_blob(b"")
out["empty"] = c.get_blob_client("empty").download_blob().readall().decode()
out["list"] = [x.name for x in c.list_blobs()]
out["walk"] = [x.name for x in c.walk_blobs(delimiter="/")]
out["prefix"] = [x.name for x in c.list_blobs(name_starts_with="dir/")]
out["pages"] = [len(list(p)) for p in c.list_blobs(results_per_page=2).by_page()]
out["containers"] = [x.name for x in svc.list_containers(name_starts_with="core")]
b.set_blob_metadata({"x": "1"})
out["meta"] = b.get_blob_properties().metadata
b.set_blob_tags({"project": "keyless", "stage": "test"})
out["tags"] = b.get_blob_tags()
snap = b.create_snapshot()
b.upload_blob(b"changed", overwrite=True)
out["snapshot"] = c.get_blob_client("dir/a b.txt", snapshot=snap["snapshot"]).download_blob().readall().decode()
out["latest"] = b.download_blob().readall().decode()
lease = b.acquire_lease(15)
try:
    b.upload_blob(b"no lease", overwrite=True)
except HttpResponseError as exc:
    out["leased"] = [exc.status_code, exc.error_code]
b.upload_blob(b"with lease", overwrite=True, lease=lease)
lease.release()
b.delete_blob(delete_snapshots="include")
out["after_delete"] = [x.name for x in c.list_blobs(name_starts_with="dir/a")]
svc.delete_container("core")
out["gone"] = [x.name for x in svc.list_containers(name_starts_with="core")]
print(json.dumps(out))
"""


def _expected_core() -> dict[str, Any]:
    return {
        "container_meta": {"purpose": "tests"},
        "props": [11, "text/plain", {"k": "v"}, "BlockBlob"],
        "md5": True,
        "range": "world",
        "whole": "hello world",
        "no_overwrite": "BlobAlreadyExists",
        "big": True,
        "uncommitted": ["YQ==", "Yg=="],
        "blocks": "bbbaaa",
        "empty": "",
        "list": ["big.bin", "blocks.bin", "dir/a b.txt", "dir/sub/c.txt", "empty"],
        "walk": ["dir/", "big.bin", "blocks.bin", "empty"],  # the SDK yields prefixes first
        "prefix": ["dir/a b.txt", "dir/sub/c.txt"],
        "pages": [2, 2, 1],
        "containers": ["core"],
        "meta": {"x": "1"},
        "tags": {"project": "keyless", "stage": "test"},
        "snapshot": "hello world",
        "latest": "changed",
        "leased": [412, "LeaseIdMissing"],
        "after_delete": [],
        "gone": [],
    }


@pytest.mark.parametrize("style", ["host", "path"])
def test_core_operations_as_admin(server: KeylessServer, unique: Unique, style: str) -> None:
    _, name, doc = _account(server, unique)
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], doc["id"])
    url = (
        f"https://{name}.blob.core.windows.net"
        if style == "host"
        else f"https://localhost:{server.https_port}/{name}"
    )
    assert sdk_json(server, CORE, {"url": url}) == _expected_core()


AIO = """
import asyncio, json
from azure.identity.aio import DefaultAzureCredential
from azure.storage.blob.aio import BlobServiceClient
args = json.loads(DATA)
async def main():
    async with DefaultAzureCredential() as cred, BlobServiceClient(args["url"], cred) as svc:
        c = await svc.create_container("aio")
        await c.upload_blob("x.txt", b"async bytes")
        data = await (await c.download_blob("x.txt")).readall()
        names = [b.name async for b in c.list_blobs()]
        props = await c.get_blob_client("x.txt").get_blob_properties()
        await c.delete_blob("x.txt")
        return {"data": data.decode(), "names": names, "size": props.size}
print(json.dumps(asyncio.run(main())))
"""


def test_aio_client(server: KeylessServer, unique: Unique) -> None:
    _, name, doc = _account(server, unique)
    grant(server, server.admin["objectId"], BLOB_ROLES["contributor"], doc["id"])
    out = sdk_json(server, AIO, {"url": f"https://{name}.blob.core.windows.net"})
    assert out == {"data": "async bytes", "names": ["x.txt"], "size": 11}


MORE = """
import json, datetime, time
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import (
    BlobServiceClient, BlobSasPermissions, ContentSettings, StandardBlobTier, AccessPolicy,
    ContainerSasPermissions, generate_blob_sas, BlobBlock,
)
args = json.loads(DATA)
svc = BlobServiceClient(args["url"], DefaultAzureCredential())
out = {}
def attempt(label, fn):
    try:
        out[label] = fn()
    except HttpResponseError as exc:
        out[label] = [exc.status_code, exc.error_code]
c = svc.create_container("more")
src = c.get_blob_client("src.txt")
src.upload_blob(b"source bytes", metadata={"m": "1"}, tags={"team": "red", "tier": "one"})
# Copy within the account, authorized by the caller's own token.
dst = c.get_blob_client("copy.txt")
copy = dst.start_copy_from_url(src.url)
out["copy_status"] = copy["copy_status"]
out["copy"] = [dst.download_blob().readall().decode(), dst.get_blob_properties().metadata,
               dst.get_blob_properties().copy.status]
dst2 = c.get_blob_client("copy-sync.txt")
out["copy_sync"] = dst2.start_copy_from_url(src.url, requires_sync=True)["copy_status"]
# From a URL carrying a user delegation SAS.
now = datetime.datetime.now(datetime.timezone.utc)
udk = svc.get_user_delegation_key(now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1))
sas = generate_blob_sas(args["name"], "more", "src.txt", user_delegation_key=udk,
                        permission=BlobSasPermissions(read=True), expiry=now + datetime.timedelta(hours=1))
fromurl = c.get_blob_client("from-url.txt")
fromurl.upload_blob_from_url(f"{src.url}?{sas}")
out["from_url"] = fromurl.download_blob().readall().decode()
staged = c.get_blob_client("staged.txt")
staged.stage_block_from_url("AAAA", f"{src.url}?{sas}", source_offset=7, source_length=5)
staged.stage_block("AAAB", b" ok")
staged.commit_block_list([BlobBlock("AAAA"), BlobBlock("AAAB")])
out["staged"] = staged.download_blob().readall().decode()
attempt("copy_missing", lambda: c.get_blob_client("x.txt").start_copy_from_url(c.url + "/nothing-here")["copy_status"])
# Find by tags, and a tag condition.
time.sleep(0)
out["find"] = sorted(b.name for b in svc.find_blobs_by_tags("\\"team\\"='red'"))
out["find_container"] = sorted(b.name for b in c.find_blobs_by_tags("\\"tier\\">='one' AND \\"team\\"='red'"))
attempt("if_tags", lambda: src.set_blob_metadata({"x": "y"}, if_tags_match_condition="\\"team\\"='blue'"))
# Container metadata, ACL, lease; blob properties, tier, block list.
c.set_container_metadata({"a": "b"})
out["container_meta"] = c.get_container_properties().metadata
c.set_container_access_policy({"pol": AccessPolicy(ContainerSasPermissions(read=True), expiry=now + datetime.timedelta(hours=1))})
acl = c.get_container_access_policy()
out["acl"] = [(p.id, p.access_policy.permission) for p in acl["signed_identifiers"]]
lease = c.acquire_lease(lease_duration=-1)
attempt("delete_leased", lambda: svc.delete_container("more"))
lease.release()
src.set_http_headers(ContentSettings(content_type="text/x-test", cache_control="no-cache"))
p = src.get_blob_properties()
out["headers"] = [p.content_settings.content_type, p.content_settings.cache_control]
src.set_standard_blob_tier(StandardBlobTier.COOL)
out["tier"] = src.get_blob_properties().blob_tier
out["committed"] = [b.id for b in staged.get_block_list()[0]]
etag = src.get_blob_properties().etag
attempt("stale_etag", lambda: src.upload_blob(b"x", overwrite=True, etag='"0x1"', match_condition=MatchConditions.IfNotModified))
src.upload_blob(b"fresh", overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
out["fresh"] = src.download_blob().readall().decode()
out["account"] = svc.get_account_information()["account_kind"]
out["service"] = svc.get_service_properties()["delete_retention_policy"].enabled
print(json.dumps(out))
"""


def test_copy_tags_leases_and_properties(server: KeylessServer, unique: Unique) -> None:
    _, name, doc = _account(server, unique)
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], doc["id"])
    out = sdk_json(server, MORE, {"url": f"https://{name}.blob.core.windows.net", "name": name})
    assert out == {
        "copy_status": "success",
        "copy": ["source bytes", {"m": "1"}, "success"],
        "copy_sync": "success",
        "from_url": "source bytes",
        "staged": "bytes ok",
        "copy_missing": [404, "CannotVerifyCopySource"],
        "find": ["src.txt"],
        "find_container": ["src.txt"],
        "if_tags": [412, "ConditionNotMet"],
        "container_meta": {"a": "b"},
        "acl": [["pol", "r"]],
        "delete_leased": [412, "LeaseIdMissing"],
        "headers": ["text/x-test", "no-cache"],
        "tier": "Cool",
        "committed": ["AAAA", "AAAB"],
        "stale_etag": [412, "ConditionNotMet"],
        "fresh": "fresh",
        "account": "StorageV2",
        "service": False,
    }


CRC64 = """
import json
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient, BlobBlock
args = json.loads(DATA)
svc = BlobServiceClient(args["url"], DefaultAzureCredential())
box = svc.create_container("crc")
box.upload_blob("whole.txt", b"checked by crc64", validate_content="crc64")
blob = box.get_blob_client("blocks.txt")
blob.stage_block("YmxvY2stMQ==", b"first,", validate_content="crc64")
blob.stage_block("YmxvY2stMg==", b"second", validate_content="crc64")
blob.commit_block_list([BlobBlock("YmxvY2stMQ=="), BlobBlock("YmxvY2stMg==")])
print(json.dumps({"whole": box.download_blob("whole.txt").readall().decode(),
                  "blocks": blob.download_blob().readall().decode()}))
"""


def test_crc64_validation_with_the_sdk(server: KeylessServer, unique: Unique) -> None:
    """``validate_content="crc64"`` (azure-storage-extensions computes it in the client): the server
    checks each body's CRC64 and echoes it, which the SDK verifies in turn."""
    _, name, doc = _account(server, unique)
    grant(server, server.admin["objectId"], BLOB_ROLES["contributor"], doc["id"])
    out = sdk_json(server, CRC64, {"url": f"https://{name}.blob.core.windows.net"})
    assert out == {"whole": "checked by crc64", "blocks": "first,second"}
