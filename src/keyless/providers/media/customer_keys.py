"""Media Services reaching the customer's key in Key Vault with the account's managed identity.

Every call is an ordinary Key Vault data-plane request (``keyless.service_calls``): a bearer token
for ``https://vault.azure.net`` minted for the identity, sent to ``{vault}.vault.azure.net`` as a
trusted Azure service instance (the account's resource id), so the vault's access policies or RBAC
and its firewall (``bypass: AzureServices``) decide exactly as they would for Azure's own service.

Operations (Key Vault REST 7.4, keyvault.md): ``GET /keys/{name}[/{version}]`` (needs ``get``),
``POST /keys/{name}/{version}/wrapkey`` and ``/unwrapkey`` with ``RSA-OAEP-256`` (``wrapKey``,
``unwrapKey``). What Media Services requires of the key (concept-use-customer-managed-keys-byok.md):
RSA (2048/3072/4096, software or HSM), enabled, in a vault with soft delete and purge protection
(the key's ``recoveryLevel`` has no ``Purgeable``).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import httpx

from keyless.providers.media.account_properties import KeyIdentifier
from keyless.service_calls import IdentityTokens, IdentityUnavailable, ServiceCaller

KEYVAULT_RESOURCE = "https://vault.azure.net"
API_VERSION = "7.4"
WRAP_ALGORITHM = "RSA-OAEP-256"
# Azure's one documented text for a key Media Services cannot use (az's ams encryption.py).
FORBIDDEN = "Access to the Customer Key was forbidden."
_RSA = ("RSA", "RSA-HSM")


class CustomerKeyError(Exception):
    """The customer key cannot be used. ``reason`` says why, for the account's status and logs;
    ``refused`` is True when Key Vault itself refused (no access, missing, disabled) rather than the
    key being of a kind Media Services does not take."""

    def __init__(self, reason: str, *, refused: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


@dataclass(frozen=True)
class CustomerKey:
    """What Key Vault says of a key: its versioned ``kid``, type, state."""

    kid: str
    version: str
    kty: str
    enabled: bool
    recovery_level: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code', response.status_code)}: {str(error.get('message', ''))[:2000]}"
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


class KeyVaultClient:
    """Key Vault as the Media Services account (``service_id``) acting as identity ``principal_id``."""

    def __init__(self, caller: ServiceCaller, tokens: IdentityTokens, vault_app: Any) -> None:
        self.caller = caller
        self.tokens = tokens
        self.vault_app = vault_app

    async def _request(
        self, service_id: str, principal_id: str, vault: str, method: str, path: str, body: Any = None
    ) -> dict[str, Any]:
        try:
            token = await asyncio.to_thread(self.tokens.token, principal_id, KEYVAULT_RESOURCE)
        except IdentityUnavailable as exc:
            raise CustomerKeyError(f"The managed identity {principal_id} does not exist.") from exc
        try:
            async with self.caller.client(self.vault_app, service_id) as client:
                response = await client.request(
                    method,
                    f"https://{vault}.vault.azure.net{path}",
                    params={"api-version": API_VERSION},
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
        except httpx.HTTPError as exc:
            raise CustomerKeyError(f"Key Vault could not be reached: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise CustomerKeyError(f"Key Vault answered {_error_text(response)}")
        try:
            data = response.json()
        except ValueError as exc:
            raise CustomerKeyError("Key Vault answered a body that is not JSON.") from exc
        if not isinstance(data, dict):
            raise CustomerKeyError("Key Vault answered an unexpected body.")
        return data

    async def get_key(self, service_id: str, principal_id: str, key: KeyIdentifier) -> CustomerKey:
        """The key (its latest version when ``key`` is versionless). CustomerKeyError when Key
        Vault refuses, or the key is not one Media Services can use (``refused=False``)."""
        path = f"/keys/{key.name}" + (f"/{key.version}" if key.version else "")
        data = await self._request(service_id, principal_id, key.vault, "GET", path)
        jwk = data.get("key") or {}
        attributes = data.get("attributes") or {}
        kid = str(jwk.get("kid") or "")
        found = CustomerKey(
            kid=kid,
            version=kid.rstrip("/").rsplit("/", 1)[-1],
            kty=str(jwk.get("kty") or ""),
            enabled=attributes.get("enabled") is not False,
            recovery_level=str(attributes.get("recoveryLevel") or ""),
        )
        if found.kty not in _RSA:
            raise CustomerKeyError(
                f"The key '{key.name}' is of type {found.kty}: Media Services accepts only RSA keys.",
                refused=False,
            )
        if "Purgeable" in found.recovery_level:
            raise CustomerKeyError(
                f"The key vault '{key.vault}' must have soft delete and purge protection enabled.",
                refused=False,
            )
        if not found.enabled:
            raise CustomerKeyError(f"The key '{key.name}' is disabled.")
        return found

    async def wrap(
        self, service_id: str, principal_id: str, key: KeyIdentifier, version: str, plain: bytes
    ) -> bytes:
        """``plain`` wrapped by version ``version`` of the key (RSA-OAEP-256)."""
        return await self._key_operation("wrapkey", service_id, principal_id, key, version, plain)

    async def unwrap(
        self, service_id: str, principal_id: str, key: KeyIdentifier, version: str, wrapped: bytes
    ) -> bytes:
        """The key wrapped by version ``version`` of the key."""
        return await self._key_operation("unwrapkey", service_id, principal_id, key, version, wrapped)

    async def _key_operation(
        self,
        operation: str,
        service_id: str,
        principal_id: str,
        key: KeyIdentifier,
        version: str,
        value: bytes,
    ) -> bytes:
        data = await self._request(
            service_id,
            principal_id,
            key.vault,
            "POST",
            f"/keys/{key.name}/{version}/{operation}",
            {"alg": WRAP_ALGORITHM, "value": _b64url(value)},
        )
        try:
            return _unb64url(str(data.get("value") or ""))
        except ValueError as exc:
            raise CustomerKeyError("Key Vault answered a value that is not base64url.") from exc
