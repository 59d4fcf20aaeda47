"""Key Vault secrets through azure-keyvault-secrets, unchanged, sync and `aio` (issue: Key Vault),
and the bad-input kinds over the raw wire: status, code, and nothing changed."""

from __future__ import annotations

import pytest

from tests.e2e.keyvault_helpers import (
    DATA_API,
    assert_kv_error,
    create_vault,
    sdk_json,
    vault_client,
    vault_token,
)
from tests.e2e.workload_helpers import Unique, create_group, program
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

SECRETS_PROGRAM = """
import json, datetime
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.core.exceptions import ResourceNotFoundError, ResourceExistsError, HttpResponseError
args = json.loads(DATA)
client = SecretClient(args["url"], DefaultAzureCredential())
out = {}
first = client.set_secret("db-password", "one", content_type="text/plain", tags={"env": "dev"})
second = client.set_secret("db-password", "two")
out["latest"] = client.get_secret("db-password").value
out["by_version"] = client.get_secret("db-password", first.properties.version).value
out["first"] = {"ct": first.properties.content_type, "tags": first.properties.tags, "vault_url": first.properties.vault_url}
upd = client.update_secret_properties("db-password", first.properties.version, enabled=False)
out["disabled_enabled"] = upd.enabled
try:
    client.get_secret("db-password", first.properties.version)
except HttpResponseError as exc:
    out["disabled_get"] = [exc.status_code, exc.error.code, exc.response.json()["error"]["innererror"]["code"]]
exp = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
client.set_secret("expired", "still-readable", expires_on=exp)
out["expired"] = client.get_secret("expired").value
for i in range(3):
    client.set_secret(f"page-{i}", str(i))
out["names"] = sorted(p.name for p in client.list_properties_of_secrets(max_page_size=2))
out["versions"] = len(list(client.list_properties_of_secret_versions("db-password")))
blob = client.backup_secret("page-0")
client.begin_delete_secret("page-0").wait()
out["deleted"] = client.get_deleted_secret("page-0").recovery_id
out["deleted_names"] = [d.name for d in client.list_deleted_secrets()]
try:
    client.set_secret("page-0", "again")
except ResourceExistsError as exc:
    out["reuse"] = exc.response.json()["error"]["innererror"]["code"]
client.begin_recover_deleted_secret("page-0").wait()
out["recovered"] = client.get_secret("page-0").value
client.begin_delete_secret("page-0").wait()
client.purge_deleted_secret("page-0")
try:
    client.get_deleted_secret("page-0")
except ResourceNotFoundError:
    out["purged"] = True
out["restored"] = client.restore_secret_backup(blob).name
out["restored_value"] = client.get_secret("page-0").value
print(json.dumps(out))
"""

AIO_PROGRAM = """
import asyncio, json
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient
args = json.loads(DATA)
async def main():
    async with DefaultAzureCredential() as cred, SecretClient(args["url"], cred) as client:
        await client.set_secret("a", "1")
        await client.set_secret("a", "2")
        value = (await client.get_secret("a")).value
        versions = [p.version async for p in client.list_properties_of_secret_versions("a")]
        await client.delete_secret("a")
        deleted = (await client.get_deleted_secret("a")).name
        print(json.dumps({"value": value, "versions": len(versions), "deleted": deleted}))
asyncio.run(main())
"""


def test_every_secret_operation_sync_and_aio(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = unique("kv")
    create_vault(server, group, name)
    url = f"https://{name}.vault.azure.net"
    out = sdk_json(server, program(SECRETS_PROGRAM, {"url": url}))
    assert out["latest"] == "two" and out["by_version"] == "one"
    assert out["first"] == {"ct": "text/plain", "tags": {"env": "dev"}, "vault_url": url}
    assert out["disabled_enabled"] is False
    assert out["disabled_get"] == [403, "Forbidden", "SecretDisabled"]
    assert out["expired"] == "still-readable"
    assert out["names"] == ["db-password", "expired", "page-0", "page-1", "page-2"]
    assert out["versions"] == 2
    assert out["deleted"] == f"{url}/deletedsecrets/page-0" and out["deleted_names"] == ["page-0"]
    assert out["reuse"] == "ObjectIsDeletedButRecoverable"
    assert out["recovered"] == "0" and out["purged"] is True
    assert out["restored"] == "page-0" and out["restored_value"] == "0"
    aio = sdk_json(server, program(AIO_PROGRAM, {"url": url}))
    assert aio == {"value": "2", "versions": 2, "deleted": "a"}


def test_secret_bad_input_changes_nothing(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = unique("kv")
    create_vault(server, group, name, purge_protection=True)
    params = {"api-version": DATA_API}
    with vault_client(server, name, vault_token(server)) as kv:
        assert kv.put("/secrets/s1", params=params, json={"value": "keep"}).status_code == 200

        def state() -> tuple[str, int]:
            value = kv.get("/secrets/s1/", params=params).json()["value"]
            return value, len(kv.get("/secrets/s1/versions", params=params).json()["value"])

        before = state()
        assert_kv_error(
            kv.put("/secrets/s1", params=params, json={"value": "x" * (25 * 1024 + 1)}), 400, "BadParameter"
        )
        assert_kv_error(kv.put("/secrets/s1", params=params, json={"value": 5}), 400, "BadParameter")
        assert_kv_error(kv.put("/secrets/s1", params=params, content=b"{not json"), 400, "BadParameter")
        assert_kv_error(
            kv.put(
                "/secrets/s1", params=params, json={"value": "v", "tags": {str(i): "t" for i in range(16)}}
            ),
            400,
            "BadParameter",
        )
        assert_kv_error(kv.put("/secrets/s_1", params=params, json={"value": "v"}), 400, "BadParameter")
        assert_kv_error(kv.get("/secrets", params={**params, "maxresults": "26"}), 400, "BadParameter")
        assert_kv_error(kv.get("/secrets", params={**params, "$skiptoken": "garbage!"}), 400, "BadParameter")
        assert_kv_error(kv.get("/secrets/nope/", params=params), 404, "SecretNotFound")
        assert_kv_error(kv.get("/secrets/s1/" + "0" * 32, params=params), 404, "SecretNotFound")
        assert_kv_error(
            kv.post("/secrets/restore", params=params, json={"value": "AAAA"}), 400, "BadParameter"
        )
        assert kv.delete("/secrets/s1", params=params).status_code == 200
        assert_kv_error(
            kv.put("/secrets/s1", params=params, json={"value": "v"}),
            409,
            "Conflict",
            "ObjectIsDeletedButRecoverable",
        )
        assert_kv_error(kv.delete("/deletedsecrets/s1", params=params), 400, "NotSupported")
        assert kv.post("/deletedsecrets/s1/recover", params=params).status_code == 200
        assert state() == before
    # No token: the challenge, before the body is read; a token for another resource: refused.
    with vault_client(server, name) as kv:
        r = kv.put("/secrets/s1", params=params, content=b"")
        assert_kv_error(r, 401, "Unauthorized")
        assert r.headers["www-authenticate"] == (
            f'Bearer authorization="https://login.microsoftonline.com/{server.tenant_id}", '
            'resource="https://vault.azure.net"'
        )
    with vault_client(server, name, server.admin_token("https://storage.azure.com/")) as kv:
        assert_kv_error(kv.get("/secrets/s1/", params=params), 401, "Unauthorized")
