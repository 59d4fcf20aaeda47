"""What the Media Services tests share: accounts through ARM (raw, as azure-mgmt-media sends them),
the storage account and vault they use, and assertions on ARM errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e import keyvault_helpers as kvh
from tests.e2e import storage_helpers as sth
from tests.e2e.arm_helpers import create_group
from tests.keyless_server import KeylessServer

MEDIA_API = "2021-11-01"  # azure-mgmt-media 10.x: accounts
CHILD_API = "2022-08-01"  # assets, content key policies, streaming policies and locators
AZ_ACCOUNT_API = "2021-06-01"  # az 2.91 (azure-mgmt-media 9.0.0)
CRYPTO_SERVICE_ENCRYPTION_USER = "Key Vault Crypto Service Encryption User"
KEY_PERMISSIONS = ["get", "wrapKey", "unwrapKey"]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def account_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"/subscriptions/{srv.subscription_id}/resourceGroups/{group}/providers/Microsoft.Media/mediaservices/{name}"


def child_path(srv: KeylessServer, group: str, account: str, kind: str, name: str) -> str:
    # The SDK's spelling of child paths: mediaServices (media.md §2).
    return (
        f"/subscriptions/{srv.subscription_id}/resourceGroups/{group}/providers/Microsoft.Media/"
        f"mediaServices/{account}/{kind}/{name}"
    )


def storage_id(srv: KeylessServer, group: str, name: str) -> str:
    return sth.account_path(srv, group, name)


class MediaSetup:
    """A group with a storage account (and optionally a vault with an RSA key), made as the admin."""

    def __init__(
        self, srv: KeylessServer, *, vault: bool = False, rbac_vault: bool = False, **storage: Any
    ) -> None:
        self.srv = srv
        self.group = unique("rg-media-")
        with srv.arm() as arm:
            create_group(arm, srv, self.group)
        self.storage = sth.account_name("stm")
        sth.create_account(srv, self.group, self.storage, **storage)
        self.vault = ""
        self.key_id = ""
        if vault:
            self.vault = unique("kv")[:20]
            kvh.create_vault(srv, self.group, self.vault, purge_protection=True, rbac=rbac_vault)
            if rbac_vault:
                kvh.grant(
                    srv,
                    srv.admin["objectId"],
                    "Key Vault Administrator",
                    kvh.vault_path(srv, self.group, self.vault),
                )
            self.key_id = self.create_key("cmk")

    def create_key(self, name: str, kty: str = "RSA", **extra: Any) -> str:
        """A key in the vault; its versionless id."""
        body: dict[str, Any] = {"kty": kty, **extra}
        if kty.startswith("RSA"):
            body.setdefault("key_size", 2048)
        else:
            body.setdefault("crv", "P-256")
        with kvh.vault_client(self.srv, self.vault, kvh.vault_token(self.srv)) as kv:
            r = kv.post(f"/keys/{name}/create", params={"api-version": "7.4"}, json=body)
        assert r.status_code == 200, r.text
        return f"https://{self.vault}.vault.azure.net/keys/{name}"

    def key_call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with kvh.vault_client(self.srv, self.vault, kvh.vault_token(self.srv)) as kv:
            return kv.request(method, path, params={"api-version": "7.4"}, json=body)

    def account_body(self, *, identity: str | None = "SystemAssigned", **properties: Any) -> dict[str, Any]:
        props: dict[str, Any] = {
            "storageAccounts": [{"id": storage_id(self.srv, self.group, self.storage), "type": "Primary"}]
        }
        props.update(properties)
        body: dict[str, Any] = {"location": "westeurope", "properties": props}
        if identity:
            body["identity"] = {"type": identity}
        return body

    def put_account(
        self, name: str, body: dict[str, Any], api: str = MEDIA_API, token: str | None = None
    ) -> httpx.Response:
        with self.srv.arm(token) as arm:
            return arm.put(account_path(self.srv, self.group, name), params={"api-version": api}, json=body)

    def patch_account(
        self, name: str, body: dict[str, Any], api: str = MEDIA_API, token: str | None = None
    ) -> httpx.Response:
        with self.srv.arm(token) as arm:
            return arm.patch(account_path(self.srv, self.group, name), params={"api-version": api}, json=body)

    def get_account(self, name: str, api: str = MEDIA_API) -> httpx.Response:
        with self.srv.arm() as arm:
            return arm.get(account_path(self.srv, self.group, name), params={"api-version": api})

    def create_account(self, name: str, **kwargs: Any) -> dict[str, Any]:
        r = self.put_account(name, self.account_body(**kwargs))
        assert r.status_code == 201, r.text
        return dict(r.json())

    def child(
        self,
        method: str,
        account: str,
        kind: str,
        name: str,
        body: Any = None,
        api: str = CHILD_API,
        token: str | None = None,
    ) -> httpx.Response:
        with self.srv.arm(token) as arm:
            return arm.request(
                method,
                child_path(self.srv, self.group, account, kind, name),
                params={"api-version": api},
                json=body,
            )

    def grant_key_access(self, principal_id: str) -> None:
        """The documented minimum for an access-policy vault: get, wrapKey, unwrapKey."""
        self._key_policy("add", principal_id)

    def revoke_key_access(self, principal_id: str) -> None:
        self._key_policy("remove", principal_id)

    def _key_policy(self, kind: str, principal_id: str) -> None:
        with self.srv.arm() as arm:
            r = arm.put(
                kvh.vault_path(self.srv, self.group, self.vault) + f"/accessPolicies/{kind}",
                params={"api-version": kvh.KV_API},
                json={
                    "properties": {
                        "accessPolicies": [kvh.policy(self.srv, principal_id, keys=KEY_PERMISSIONS)]
                    }
                },
            )
        assert r.status_code in (200, 201), r.text


def assert_media_error(r: httpx.Response, status: int, code: str, text: str | None = None) -> str:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    error = r.json()["error"]
    assert error["code"] == code, r.text
    if text is not None:
        assert text in error["message"], r.text
    return str(error["message"])


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.3) -> Any:
    """``check()`` until it returns something truthy (then that), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not reached in {timeout} s; last: {last!r}")
