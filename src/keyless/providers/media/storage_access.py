"""Media Services reaching its storage accounts through the blob data plane.

``storageAuthentication`` (media.md §4, concept-trusted-storage.md):

- ``ManagedIdentity``: a bearer token for ``https://storage.azure.com`` minted for the storage
  entry's identity (its ``identity``, else the account's system-assigned one), sent as a trusted
  Azure service instance (the Media Services account's resource id): the storage firewall lets it
  through when ``bypass`` has ``AzureServices`` or a resource access rule names the account, and
  RBAC must grant the data actions (Storage Blob Data Contributor; "the generic Contributor role
  won't work" — it has no data actions).
- ``System``: Shared Key with the storage account's key1, as an ordinary caller from outside the
  storage account's network (never trusted): a firewall with ``defaultAction: Deny`` stops it.

Every call is an in-process HTTPS request to the blob data plane (``keyless.service_calls``), so
the storage account's own pipeline decides (network rules, authentication, authorization).
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import httpx

from keyless.arm import errors
from keyless.providers.media.account_properties import AccountSettings, IdentityRef, StorageRef
from keyless.providers.media.keyring import principal_for
from keyless.providers.storage.accounts import StorageAccounts
from keyless.providers.storage.blob import sharedkey
from keyless.providers.storage.blob.http import BLOB_SUFFIX
from keyless.service_calls import IdentityTokens, IdentityUnavailable, ServiceCaller

STORAGE_RESOURCE = "https://storage.azure.com"
X_MS_VERSION = "2023-11-03"
# A container name no asset uses: the reachability probe lists it (a data action: blobs/read).
PROBE_CONTAINER = "keyless-media-access-probe"
# Spec example async-accounts-create.json: the failure of an account whose storage is out of reach.
NOT_ACCESSIBLE = "Storage account cannot be accessed."


@dataclass(frozen=True)
class StorageAuth:
    """How Media Services signs in to one storage account: a bearer token (``principal_id``) as
    trusted service ``service_id``, or Shared Key (``principal_id`` None)."""

    account: str  # storage account name, lower-case
    service_id: str
    principal_id: str | None
    resource_key: str  # the attached storage account's resource id, lower-case


def plain_blob_name(name: str) -> bool:
    """Whether ``name`` ("container/blob" or a blob name) has no empty, "." or ".." segment: one
    the client would resolve into another container names nothing here."""
    return not any(part in ("", ".", "..") for part in name.split("/"))


def storage_error(response: httpx.Response) -> str:
    code = response.headers.get("x-ms-error-code") or str(response.status_code)
    return f"{code} (HTTP {response.status_code})"


def not_accessible(name: str, detail: str) -> errors.ArmError:
    return errors.ArmError(400, "BadRequest", f"{NOT_ACCESSIBLE} Storage account '{name}': {detail}.")


def auth_for(
    service_id: str, settings: AccountSettings, identity: dict[str, Any] | None, ref: StorageRef
) -> StorageAuth:
    """How the account reaches storage ``ref`` under ``settings`` (module docstring)."""
    name = ref.rid.name.lower()
    if settings.storage_authentication != "ManagedIdentity":
        return StorageAuth(name, service_id, None, ref.rid.key)
    principal = principal_for(identity, ref.identity or IdentityRef(True), "storage account access")
    return StorageAuth(name, service_id, principal, ref.rid.key)


class MediaStorage:
    """Blob calls made by Media Services for its accounts."""

    def __init__(
        self, caller: ServiceCaller, tokens: IdentityTokens, blob_app: Any, accounts: StorageAccounts
    ) -> None:
        self.caller = caller
        self.tokens = tokens
        self.blob_app = blob_app
        self.accounts = accounts

    def _require_attached(self, auth: StorageAuth) -> None:
        """The account called ``auth.account`` must still be the one attached: names are global
        and reusable, so a deleted account's name may now belong to someone else's account."""
        found = self.accounts.view(auth.account)
        if found is None or found.resource_id.lower() != auth.resource_key:
            raise not_accessible(auth.account, "the storage account was not found")

    async def request(
        self,
        auth: StorageAuth,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes = b"",
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One blob request (``path`` "/container[/blob]", unencoded; ``extra_headers`` lower-case
        ``x-ms-*`` ones, signed too) as ``auth`` says; 400 when the attached storage account no
        longer exists (``_require_attached``)."""
        self._require_attached(auth)
        # Only the container named and blobs in it: a blob name with an empty, "." or ".." segment
        # would be resolved by the client into another container (a blob may be named so by
        # whoever uploads into an asset).
        if not plain_blob_name(path.removeprefix("/")):
            raise not_accessible(auth.account, "the blob name has an empty, '.' or '..' segment")
        raw_path = urllib.parse.quote(path)
        headers = {
            **(extra_headers or {}),
            "x-ms-version": X_MS_VERSION,
            "x-ms-date": formatdate(time.time(), usegmt=True),
        }
        if method in ("PUT", "POST"):
            headers["content-length"] = str(len(body))
        service_id: str | None = None
        if auth.principal_id is not None:
            try:
                token = await asyncio.to_thread(self.tokens.token, auth.principal_id, STORAGE_RESOURCE)
            except IdentityUnavailable as exc:
                raise not_accessible(auth.account, "the managed identity does not exist") from exc
            headers["authorization"] = f"Bearer {token}"
            service_id = auth.service_id
        else:
            keys = self.accounts.keys(auth.account)
            if not keys:
                raise not_accessible(auth.account, "the storage account does not exist")
            text = sharedkey.string_to_sign(method, raw_path, sorted(query.items()), headers, auth.account)
            headers["authorization"] = f"SharedKey {auth.account}:{sharedkey.sign(keys[0], text)}"
        try:
            async with self.caller.client(self.blob_app, service_id) as client:
                return await client.request(
                    method,
                    f"https://{auth.account}{BLOB_SUFFIX}{raw_path}",
                    params=query,
                    content=body if method in ("PUT", "POST") else None,
                    headers=headers,
                )
        except httpx.HTTPError as exc:
            raise not_accessible(auth.account, type(exc).__name__) from exc

    async def probe(self, auth: StorageAuth) -> None:
        """Check that ``auth`` can read blobs in its storage account (a listing, a data action);
        400 ``BadRequest`` "Storage account cannot be accessed." with the storage answer if not."""
        response = await self.request(
            auth, "GET", f"/{PROBE_CONTAINER}", {"restype": "container", "comp": "list", "maxresults": "1"}
        )
        if response.status_code not in (200, 404):
            raise not_accessible(auth.account, storage_error(response))

    async def create_container(self, auth: StorageAuth, container: str) -> None:
        """Create ``container`` (an asset's); an existing one is fine (the asset is re-created)."""
        response = await self.request(auth, "PUT", f"/{container}", {"restype": "container"})
        if response.status_code not in (201, 409):
            raise not_accessible(auth.account, storage_error(response))

    async def delete_container(self, auth: StorageAuth, container: str) -> None:
        """Delete ``container``; a missing one is fine."""
        response = await self.request(auth, "DELETE", f"/{container}", {"restype": "container"})
        if response.status_code not in (202, 404):
            raise not_accessible(auth.account, storage_error(response))

    def container_sas_urls(
        self, auth: StorageAuth, container: str, permissions: str, expiry: str
    ) -> list[str]:
        """Service SAS URLs for ``container`` in ``auth``'s storage account, one per key (as Azure
        answers ``listContainerSas``: the example has two). ``permissions`` are SAS letters
        (``rl``...), ``expiry`` ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SSZ``. 400 when the attached
        account no longer exists."""
        self._require_attached(auth)
        account = auth.account
        keys = self.accounts.keys(account)
        fields = {"sp": permissions, "se": expiry, "spr": "https", "sv": X_MS_VERSION, "sr": "c"}
        canonical = f"/blob/{account}/{container}"
        urls = []
        for key in keys:
            text = sharedkey.service_strings_to_sign(canonical, X_MS_VERSION, fields, "", False, ("", ""))[0]
            query = urllib.parse.urlencode({**fields, "sig": sharedkey.sign(key, text)})
            urls.append(f"https://{account}{BLOB_SUFFIX}/{container}?{query}")
        return urls
