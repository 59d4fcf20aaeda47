"""What the Key Vault tests share: vaults made through the resource manager, grants, raw data-plane
calls with a chosen token, and Azure SDK programs run under `keyless run`."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.workload_helpers import cli_ok, run_json
from tests.keyless_server import KeylessServer

KV_API = "2023-07-01"
DATA_API = "2025-07-01"
VAULT_RESOURCE = "https://vault.azure.net"
KV_ROLES = {
    "administrator": "Key Vault Administrator",
    "crypto-officer": "Key Vault Crypto Officer",
    "crypto-user": "Key Vault Crypto User",
    "encryption-user": "Key Vault Crypto Service Encryption User",
    "secrets-officer": "Key Vault Secrets Officer",
    "secrets-user": "Key Vault Secrets User",
    "reader": "Key Vault Reader",
}
ALL_KEYS = [
    "get", "list", "create", "update", "import", "delete", "backup", "restore", "recover", "purge",
    "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "rotate", "getrotationpolicy",
    "setrotationpolicy",
]  # fmt: skip
ALL_SECRETS = ["get", "list", "set", "delete", "backup", "restore", "recover", "purge"]


def vault_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"/subscriptions/{srv.subscription_id}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}"


def create_vault(
    srv: KeylessServer,
    group: str,
    name: str,
    *,
    rbac: bool = False,
    policies: list[dict[str, Any]] | None = None,
    purge_protection: bool = False,
    network_acls: dict[str, Any] | None = None,
    admin_policy: bool = True,
) -> dict[str, Any]:
    """A vault through ARM (as azure-mgmt-keyvault sends it). With access policies, the admin gets
    every key and secret permission unless ``admin_policy`` is False."""
    entries = list(policies or [])
    if not rbac and admin_policy:
        entries.append(policy(srv, srv.admin["objectId"], keys=ALL_KEYS, secrets=ALL_SECRETS))
    props: dict[str, Any] = {
        "tenantId": srv.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "accessPolicies": entries,
        "enableRbacAuthorization": rbac,
        "enableSoftDelete": True,
        "softDeleteRetentionInDays": 7,
    }
    if purge_protection:
        props["enablePurgeProtection"] = True
    if network_acls is not None:
        props["networkAcls"] = network_acls
    with srv.arm() as arm:
        r = arm.put(
            vault_path(srv, group, name),
            params={"api-version": KV_API},
            json={"location": "westeurope", "properties": props},
        )
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def update_vault(srv: KeylessServer, group: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.patch(
            vault_path(srv, group, name), params={"api-version": KV_API}, json={"properties": properties}
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


def policy(
    srv: KeylessServer, object_id: str, *, keys: list[str] | None = None, secrets: list[str] | None = None
) -> dict[str, Any]:
    return {
        "tenantId": srv.tenant_id,
        "objectId": object_id,
        "permissions": {"keys": keys or [], "secrets": secrets or []},
    }


def grant(srv: KeylessServer, principal_id: str, role: str, scope: str) -> None:
    cli_ok(srv, "role", "assignment", "create", "--assignee", principal_id, "--role", role, "--scope", scope)


def vault_client(srv: KeylessServer, vault: str, token: str | None = None) -> httpx.Client:
    """Raw data-plane calls to ``https://{vault}.vault.azure.net`` through the proxy."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return srv.client(base_url=f"https://{vault}.vault.azure.net", headers=headers)


def vault_token(srv: KeylessServer) -> str:
    return srv.admin_token(VAULT_RESOURCE)


def assert_kv_error(r: httpx.Response, status: int, code: str, inner: str | None = None) -> str:
    """A Key Vault error answer: status, ``error.code`` and (if given) ``innererror.code``."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    error = r.json()["error"]
    assert error["code"] == code, r.text
    if inner is not None:
        assert error.get("innererror", {}).get("code") == inner, r.text
    return str(error["message"])


def sdk_json(srv: KeylessServer, code: str, *run_args: str) -> Any:
    """An Azure SDK program under `keyless run [run_args]`; it prints one JSON document last."""
    return run_json(srv, code, *run_args)
