"""Every credential azure-storage-blob offers, against the Blob data plane: a connection string
(Shared Key), an account SAS, a service SAS (blob and container), a user delegation SAS, anonymous
reads of a public container; ``allowSharedKeyAccess: false``; a wrong key and tampered SAS."""

from __future__ import annotations

import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    account_keys,
    account_name,
    assert_blob_error,
    blob_client,
    create_account,
    grant,
    sdk_json,
    storage_token,
    update_account,
)
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

CREDENTIALS = """
import json, datetime
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import (
    BlobServiceClient, BlobClient, ContainerClient, generate_account_sas, generate_blob_sas,
    generate_container_sas, ResourceTypes, AccountSasPermissions, BlobSasPermissions,
    ContainerSasPermissions, PublicAccess,
)
args = json.loads(DATA)
url, name, key = args["url"], args["name"], args["key"]
out = {}
def attempt(label, fn):
    try:
        out[label] = fn()
    except HttpResponseError as exc:
        out[label] = [exc.status_code, exc.error_code]
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
conn = f"DefaultEndpointsProtocol=https;AccountName={name};AccountKey={key};EndpointSuffix=core.windows.net"
svc = BlobServiceClient.from_connection_string(conn)
attempt("sharedkey-create", lambda: svc.create_container("auth").container_name)
attempt("sharedkey-upload", lambda: bool(svc.get_blob_client("auth", "a.txt").upload_blob(b"shared key")))
attempt("sharedkey-list", lambda: [c.name for c in svc.list_containers()])
account_sas = generate_account_sas(name, key, ResourceTypes(service=True, container=True, object=True),
                                   AccountSasPermissions(read=True, list=True), expiry)
sas_svc = BlobServiceClient(url, credential=account_sas)
attempt("account-sas-read", lambda: sas_svc.get_blob_client("auth", "a.txt").download_blob().readall().decode())
attempt("account-sas-list", lambda: [b.name for b in sas_svc.get_container_client("auth").list_blobs()])
attempt("account-sas-write", lambda: bool(sas_svc.get_blob_client("auth", "b.txt").upload_blob(b"no")))
blob_sas = generate_blob_sas(name, "auth", "a.txt", account_key=key, permission=BlobSasPermissions(read=True), expiry=expiry)
attempt("blob-sas-read", lambda: BlobClient.from_blob_url(f"{url}/auth/a.txt?{blob_sas}").download_blob().readall().decode())
attempt("blob-sas-other", lambda: BlobClient(url, "auth", "b.txt", credential=blob_sas).download_blob().readall().decode())
tampered = blob_sas.replace("sp=r", "sp=rw")
attempt("blob-sas-tampered", lambda: BlobClient(url, "auth", "a.txt", credential=tampered).download_blob().readall().decode())
past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
expired = generate_blob_sas(name, "auth", "a.txt", account_key=key, permission=BlobSasPermissions(read=True), expiry=past)
attempt("blob-sas-expired", lambda: BlobClient(url, "auth", "a.txt", credential=expired).download_blob().readall().decode())
container_sas = generate_container_sas(name, "auth", account_key=key,
                                       permission=ContainerSasPermissions(read=True, write=True, list=True), expiry=expiry)
cc = ContainerClient(url, "auth", credential=container_sas)
attempt("container-sas-write", lambda: bool(cc.upload_blob("c.txt", b"container sas")))
attempt("container-sas-list", lambda: sorted(b.name for b in cc.list_blobs()))
attempt("container-sas-delete", lambda: cc.delete_blob("c.txt"))
bearer = BlobServiceClient(url, DefaultAzureCredential())
udk = bearer.get_user_delegation_key(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1), expiry)
ud_sas = generate_blob_sas(name, "auth", "a.txt", user_delegation_key=udk, permission=BlobSasPermissions(read=True), expiry=expiry)
attempt("udk-sas-read", lambda: BlobClient(url, "auth", "a.txt", credential=ud_sas).download_blob().readall().decode())
wrong = BlobServiceClient(url, credential={"account_name": name, "account_key": "A" * 86 + "=="})
attempt("wrong-key", lambda: [c.name for c in wrong.list_containers()])
# Public access: a container open for blobs, read with no credential at all.
attempt("public-set", lambda: bool(svc.get_container_client("auth").set_container_access_policy({}, public_access=PublicAccess.Blob)))
attempt("anonymous-read", lambda: BlobClient(url, "auth", "a.txt").download_blob().readall().decode())
attempt("anonymous-list", lambda: [b.name for b in ContainerClient(url, "auth").list_blobs()])
print(json.dumps(out))
"""


def test_every_credential(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name, allowBlobPublicAccess=True)
    grant(server, server.admin["objectId"], BLOB_ROLES["reader"], doc["id"])
    key = account_keys(server, group, name)[0]
    data = {"url": f"https://{name}.blob.core.windows.net", "name": name, "key": key}
    out = sdk_json(server, CREDENTIALS, data)
    assert out == {
        "sharedkey-create": "auth",
        "sharedkey-upload": True,
        "sharedkey-list": ["auth"],
        "account-sas-read": "shared key",
        "account-sas-list": ["a.txt"],
        "account-sas-write": [403, "AuthorizationPermissionMismatch"],
        "blob-sas-read": "shared key",
        "blob-sas-other": [403, "AuthenticationFailed"],
        "blob-sas-tampered": [403, "AuthenticationFailed"],
        "blob-sas-expired": [403, "AuthenticationFailed"],
        "container-sas-write": True,
        "container-sas-list": ["a.txt", "c.txt"],
        "container-sas-delete": [403, "AuthorizationPermissionMismatch"],
        "udk-sas-read": "shared key",
        "wrong-key": [403, "AuthenticationFailed"],
        "public-set": True,
        "anonymous-read": "shared key",
        "anonymous-list": [404, "ResourceNotFound"],
    }
    # Nothing the refused calls tried exists.
    with blob_client(server, name, storage_token(server)) as http:
        listed = http.get("/auth", params={"restype": "container", "comp": "list"})
    assert listed.status_code == 200 and "<Name>b.txt</Name>" not in listed.text
    assert "<Name>c.txt</Name>" in listed.text


def test_shared_key_off_refuses_keys_but_not_user_delegation(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    grant(server, server.admin["objectId"], BLOB_ROLES["contributor"], doc["id"])
    key = account_keys(server, group, name)[0]
    data = {"url": f"https://{name}.blob.core.windows.net", "name": name, "key": key}
    sdk_json(server, CREDENTIALS, data)  # makes the container and blob while keys still work
    update_account(server, group, name, {"allowSharedKeyAccess": False})
    out = sdk_json(server, CREDENTIALS, data)
    for label in (
        "sharedkey-create",
        "sharedkey-list",
        "account-sas-read",
        "blob-sas-read",
        "container-sas-write",
    ):
        assert out[label] == [403, "KeyBasedAuthenticationNotPermitted"], (label, out)
    assert out["udk-sas-read"] == "shared key"


def test_bearer_errors(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = account_name()
    create_account(server, group, name)
    with blob_client(server, name) as http:
        # No credential at all on a private resource: 401 with the challenge the SDK follows.
        r = http.get("/", params={"comp": "list"})
        assert_blob_error(r, 401, "NoAuthenticationInformation")
        assert r.headers["www-authenticate"] == (
            f"Bearer authorization_uri=https://login.microsoftonline.com/{server.tenant_id}/oauth2/authorize "
            "resource_id=https://storage.azure.com"
        )
        # A token for another audience (the resource manager's).
        r = http.get(
            "/", params={"comp": "list"}, headers={"Authorization": f"Bearer {server.admin_token()}"}
        )
        assert_blob_error(r, 401, "InvalidAuthenticationInfo")
        assert "<AuthenticationErrorDetail>Audience validation failed. Audience did not match." in r.text
        # A storage token without a data role (the admin is Owner: no data actions): 403.
        r = http.get("/nope/blob", headers={"Authorization": f"Bearer {storage_token(server)}"})
        assert_blob_error(r, 403, "AuthorizationPermissionMismatch")
        # Shared Key and bearer requests must name their version.
        r = http.get(
            "/",
            params={"comp": "list"},
            headers={"Authorization": f"Bearer {storage_token(server)}", "x-ms-version": ""},
        )
        assert r.status_code == 400


ABAC = """
import json
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient
args = json.loads(DATA)
keyed = BlobServiceClient(args["url"], credential={"account_name": args["name"], "account_key": args["key"]})
for container in ("open", "closed"):
    keyed.create_container(container)
    keyed.get_blob_client(container, "a.txt").upload_blob(b"a", tags={"project": "blue"})
    keyed.get_blob_client(container, "b.txt").upload_blob(b"b", tags={"project": "red"})
bearer = BlobServiceClient(args["url"], DefaultAzureCredential())
out = {}
for container in ("open", "closed"):
    for blob in ("a.txt", "b.txt"):
        try:
            out[f"{container}/{blob}"] = bearer.get_blob_client(container, blob).download_blob().readall().decode()
        except HttpResponseError as exc:
            out[f"{container}/{blob}"] = exc.error_code
print(json.dumps(out))
"""

_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
CONDITION = (
    f"((!(ActionMatches{{'{_READ}'}})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'open' "
    "AND @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:project<$key_case_sensitive$>] "
    "StringEquals 'blue'))"
)


def test_abac_condition_on_container_and_tag(server: KeylessServer, unique: Unique) -> None:
    from tests.e2e.workload_helpers import cli_ok

    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    cli_ok(
        server, "role", "assignment", "create", "--assignee", server.admin["objectId"],
        "--role", BLOB_ROLES["reader"], "--scope", doc["id"], "--condition", CONDITION,
    )  # fmt: skip
    key = account_keys(server, group, name)[0]
    out = sdk_json(server, ABAC, {"url": f"https://{name}.blob.core.windows.net", "name": name, "key": key})
    assert out == {
        "open/a.txt": "a",
        "open/b.txt": "AuthorizationPermissionMismatch",
        "closed/a.txt": "AuthorizationPermissionMismatch",
        "closed/b.txt": "AuthorizationPermissionMismatch",
    }


def test_add_action_creates_but_never_overwrites(server: KeylessServer, unique: Unique) -> None:
    """A role with ``blobs/add/action`` (and read) but not ``blobs/write`` creates new blobs only."""
    import uuid

    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    role_name = unique("blob-adder")
    prefix = "Microsoft.Storage/storageAccounts/blobServices/containers/"
    body = {
        "properties": {
            "roleName": role_name,
            "type": "CustomRole",
            "permissions": [
                {"actions": [], "dataActions": [prefix + "blobs/add/action", prefix + "blobs/read"]}
            ],
            "assignableScopes": [f"/subscriptions/{server.subscription_id}"],
        }
    }
    with server.arm() as arm:
        r = arm.put(
            f"/subscriptions/{server.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{uuid.uuid4()}",
            params={"api-version": "2022-04-01"},
            json=body,
        )
    assert r.status_code in (200, 201), r.text
    grant(server, server.admin["objectId"], role_name, doc["id"])
    key = account_keys(server, group, name)[0]
    setup = """
import json
from azure.storage.blob import BlobServiceClient
args = json.loads(DATA)
svc = BlobServiceClient(args["url"], credential={"account_name": args["name"], "account_key": args["key"]})
svc.create_container("add")
svc.get_blob_client("add", "old.txt").upload_blob(b"old")
print(json.dumps("ok"))
"""
    url = f"https://{name}.blob.core.windows.net"
    assert sdk_json(server, setup, {"url": url, "name": name, "key": key}) == "ok"
    put = {"x-ms-blob-type": "BlockBlob"}
    with blob_client(server, name, storage_token(server)) as http:
        assert http.put("/add/new.txt", content=b"new", headers=put).status_code == 201
        assert_blob_error(
            http.put("/add/old.txt", content=b"overwrite", headers=put),
            403,
            "AuthorizationPermissionMismatch",
        )
        assert http.get("/add/old.txt").content == b"old"
        assert http.get("/add/new.txt").content == b"new"
