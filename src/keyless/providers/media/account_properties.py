"""The properties of a ``Microsoft.Media/mediaservices`` account, checked before anything is done
with them (pure: no database, no HTTP).

Shapes (shared/reference/media.md §1, spec ``Accounts/stable/2021-11-01|2023-01-01/Accounts.json``):

- ``storageAccounts[]``: ``{id, type: Primary|Secondary, identity?: ResourceIdentity, status
  (read-only)}``; exactly one Primary.
- ``storageAuthentication``: ``System`` | ``ManagedIdentity`` (null: ``System``).
- ``encryption``: ``{type: SystemKey|CustomerKey, keyVaultProperties?: {keyIdentifier,
  currentKeyIdentifier (read-only)}, identity?: ResourceIdentity, status (read-only)}``.
- ``keyDelivery``: ``{accessControl: {defaultAction: Allow|Deny, ipAllowList: [str]}}``; the list
  must be empty when the action is Allow.
- ``publicNetworkAccess``: ``Enabled`` | ``Disabled``; ``minimumTlsVersion`` (2023-01-01).
- ``ResourceIdentity``: ``{useSystemAssignedIdentity: bool (required), userAssignedIdentity?:
  ARM id}``, the two exclusive.

Defaults when a request leaves them out are those a real account answers with (az recording
``test_ams_create_system_identity.yaml``): ``encryption {type: SystemKey}``, ``storageAuthentication
System``, ``keyDelivery.accessControl {defaultAction: Allow, ipAllowList: []}``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keyless.arm import errors
from keyless.arm.ids import MAX_ID_LENGTH, ResourceId, parse_resource_id
from keyless.providers.keyvault.http import VAULT_SUFFIX

STORAGE_TYPE_KEY = "microsoft.storage/storageaccounts"
UAMI_TYPE_KEY = "microsoft.managedidentity/userassignedidentities"
MAX_STORAGE_ACCOUNTS = 16
MAX_IP_ALLOW_LIST = 200
MAX_KEY_ID = 512
# A Key Vault key identifier: https://{vault}.vault.azure.net/keys/{name}[/{version}] (the vault
# and key name rules of Key Vault; versions are 32 hex digits).
_KEY_PATH = re.compile(r"/keys/([0-9A-Za-z-]{1,127})(?:/([0-9a-fA-F]{32}))?/?")
_VAULT_HOST = re.compile(r"([0-9a-zA-Z-]{3,24})" + re.escape(VAULT_SUFFIX) + r"(?::443)?")
_READ_ONLY = ("mediaServiceId", "provisioningState", "privateEndpointConnections")
_TLS = ("Unspecified", "Tls10", "Tls11", "Tls12", "Tls13")


def bad_request(message: str, target: str | None = None) -> errors.ArmError:
    """Media Services' 400: code ``BadRequest`` (the code of every Media Services validation error
    in the spec examples and az recordings)."""
    return errors.ArmError(400, "BadRequest", message, target=target)


@dataclass(frozen=True)
class IdentityRef:
    """Which identity a part of the account acts as: the account's system-assigned one, or the
    user-assigned identity with this ARM id."""

    system: bool
    user_assigned_id: str | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"useSystemAssignedIdentity": self.system}
        if self.user_assigned_id:
            out["userAssignedIdentity"] = self.user_assigned_id
        return out


@dataclass(frozen=True)
class KeyIdentifier:
    """A parsed Key Vault key id: ``vault`` (lower-case name), ``name``, ``version`` (None:
    versionless, follow the latest)."""

    vault: str
    name: str
    version: str | None

    @property
    def versionless(self) -> str:
        return f"https://{self.vault}{VAULT_SUFFIX}/keys/{self.name}"

    def with_version(self, version: str) -> str:
        return f"{self.versionless}/{version}"


def _enum(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if isinstance(value, str):
        for candidate in allowed:
            if candidate.lower() == value.lower():
                return candidate
    shown = value[:64] if isinstance(value, str) else type(value).__name__
    raise bad_request(
        f"The value '{shown}' of '{path}' is not valid. Allowed values: {', '.join(allowed)}.", path
    )


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid_request_content(f"Error converting value to type 'object'. Path '{path}'.")
    return value


def parse_key_identifier(value: Any) -> KeyIdentifier:
    """``https://{vault}.vault.azure.net/keys/{name}[/{version}]`` or 400 ``BadRequest`` (a key id
    that is not a Key Vault key)."""
    path = "properties.encryption.keyVaultProperties.keyIdentifier"
    # urlsplit drops tabs and newlines silently: a value holding any must not pass as another.
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_KEY_ID
        or not value.isprintable()
        or " " in value
    ):
        raise bad_request(
            "The key identifier is not valid: it must be the URL of a key in Azure Key Vault.", path
        )
    parts = urlsplit(value)
    host = _VAULT_HOST.fullmatch(parts.netloc or "")
    key = _KEY_PATH.fullmatch(parts.path or "")
    if parts.scheme.lower() != "https" or host is None or key is None or parts.query or parts.fragment:
        raise bad_request(
            f"The key identifier '{value}' is not valid: it must be the URL of a key in Azure Key Vault, "
            f"https://{{vault}}{VAULT_SUFFIX}/keys/{{name}}[/{{version}}].",
            path,
        )
    version = key.group(2)
    return KeyIdentifier(host.group(1).lower(), key.group(1), version.lower() if version else None)


def parse_resource_identity(value: Any, path: str) -> IdentityRef | None:
    """A ``ResourceIdentity`` (None when absent or null); 400 when both or neither kind is named."""
    if value is None:
        return None
    body = _object(value, path)
    use_system = body.get("useSystemAssignedIdentity")
    if not isinstance(use_system, bool):
        raise bad_request(f"'{path}.useSystemAssignedIdentity' is required and must be true or false.", path)
    user = body.get("userAssignedIdentity")
    if user is not None:
        if not isinstance(user, str) or len(user) > MAX_ID_LENGTH:
            raise bad_request(f"'{path}.userAssignedIdentity' must be a resource id.", path)
        parsed = parse_resource_id(user)
        if parsed is None or parsed.type_key != UAMI_TYPE_KEY or len(parsed.names) != 1:
            raise bad_request(
                f"'{path}.userAssignedIdentity' must be the id of a "
                "Microsoft.ManagedIdentity/userAssignedIdentities resource.",
                path,
            )
        if use_system:
            raise bad_request(
                f"'{path}' cannot use the system-assigned identity and a user-assigned identity at once.",
                path,
            )
        return IdentityRef(False, str(parsed))
    if not use_system:
        raise bad_request(
            f"'{path}' must use the system-assigned identity or name a user-assigned one.", path
        )
    return IdentityRef(True)


@dataclass(frozen=True)
class StorageRef:
    rid: ResourceId
    primary: bool
    identity: IdentityRef | None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(self.rid), "type": "Primary" if self.primary else "Secondary"}
        if self.identity is not None:
            out["identity"] = self.identity.render()
        return out


@dataclass(frozen=True)
class AccountSettings:
    """The checked, normalised settings of an account (what ``checked`` returns)."""

    storage: tuple[StorageRef, ...]
    storage_authentication: str  # "System" | "ManagedIdentity"
    encryption_type: str  # "SystemKey" | "CustomerKey"
    key_id: KeyIdentifier | None
    key_id_text: str | None  # as the client gave it
    encryption_identity: IdentityRef | None
    properties: dict[str, Any]  # what is stored (read-only fields excluded)

    @property
    def primary(self) -> StorageRef:
        return next(s for s in self.storage if s.primary)


def _storage_accounts(value: Any, subscription_id: str) -> tuple[StorageRef, ...]:
    path = "properties.storageAccounts"
    if value is None:
        raise bad_request(
            "A Media Services account needs a primary storage account in 'storageAccounts'.", path
        )
    if not isinstance(value, list):
        raise errors.invalid_request_content(
            f"Error converting value to type 'List[StorageAccount]'. Path '{path}'."
        )
    if not value or len(value) > MAX_STORAGE_ACCOUNTS:
        raise bad_request(f"'storageAccounts' must hold 1 to {MAX_STORAGE_ACCOUNTS} storage accounts.", path)
    out: list[StorageRef] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        entry = _object(item, where)
        raw_id = entry.get("id")
        parsed = (
            parse_resource_id(raw_id) if isinstance(raw_id, str) and len(raw_id) <= MAX_ID_LENGTH else None
        )
        if parsed is None or parsed.type_key != STORAGE_TYPE_KEY or len(parsed.names) != 1:
            raise bad_request(
                f"'{where}.id' must be the id of a Microsoft.Storage/storageAccounts resource.", where
            )
        if parsed.subscription_id.lower() != subscription_id.lower():
            raise bad_request(
                f"The storage account '{parsed.name}' must be in the same subscription as the Media "
                "Services account.",
                where,
            )
        if parsed.key in seen:
            raise bad_request(f"The storage account '{parsed.name}' is listed more than once.", where)
        seen.add(parsed.key)
        kind = _enum(entry.get("type"), ("Primary", "Secondary"), f"{where}.type")
        identity = parse_resource_identity(entry.get("identity"), f"{where}.identity")
        out.append(StorageRef(parsed, kind == "Primary", identity))
    if sum(1 for s in out if s.primary) != 1:
        raise bad_request("Exactly one storage account must be of type 'Primary'.", path)
    return tuple(out)


def _key_delivery(value: Any) -> dict[str, Any]:
    path = "properties.keyDelivery"
    body = _object(value, path) if value is not None else {}
    control = body.get("accessControl")
    control = _object(control, f"{path}.accessControl") if control is not None else {}
    action = _enum(
        control.get("defaultAction", "Allow"), ("Allow", "Deny"), f"{path}.accessControl.defaultAction"
    )
    allow = control.get("ipAllowList")
    if allow is None:
        allow = []
    if not isinstance(allow, list) or len(allow) > MAX_IP_ALLOW_LIST:
        raise bad_request(f"'ipAllowList' must be a list of at most {MAX_IP_ALLOW_LIST} addresses.", path)
    for item in allow:
        try:
            if not isinstance(item, str) or len(item) > 64 or "%" in item:  # ipaddress takes "%zone"
                raise ValueError(item)
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise bad_request(
                "Each 'ipAllowList' entry must be an IP address or range in CIDR form.", path
            ) from None
    if action == "Allow" and allow:
        raise bad_request("The IP allow list must be empty when the default action is 'Allow'.", path)
    return {"accessControl": {"defaultAction": action, "ipAllowList": list(allow)}}


def checked(props: dict[str, Any], subscription_id: str) -> AccountSettings:
    """The settings ``props`` (a PUT's properties, or a PATCH's merged onto the stored ones) ask for.

    Raises ArmError 400 ``BadRequest`` for a value the service refuses, ``InvalidRequestContent`` for
    one of the wrong JSON type. Read-only fields are ignored."""
    storage = _storage_accounts(props.get("storageAccounts"), subscription_id)
    auth = props.get("storageAuthentication")
    auth = (
        "System"
        if auth is None
        else _enum(auth, ("System", "ManagedIdentity"), "properties.storageAuthentication")
    )
    enc = props.get("encryption")
    enc = _object(enc, "properties.encryption") if enc is not None else {"type": "SystemKey"}
    enc_type = _enum(enc.get("type"), ("SystemKey", "CustomerKey"), "properties.encryption.type")
    vault_props = enc.get("keyVaultProperties")
    vault_props = (
        _object(vault_props, "properties.encryption.keyVaultProperties") if vault_props is not None else {}
    )
    key_text = vault_props.get("keyIdentifier")
    key_id: KeyIdentifier | None = None
    enc_identity = parse_resource_identity(enc.get("identity"), "properties.encryption.identity")
    if enc_type == "CustomerKey":
        key_id = parse_key_identifier(key_text)
        enc_identity = enc_identity or IdentityRef(True)
    elif key_text is not None:
        raise bad_request(
            "A key identifier may be given only when the encryption type is 'CustomerKey'.",
            "properties.encryption.keyVaultProperties",
        )
    else:
        enc_identity = None
    public = props.get("publicNetworkAccess")
    public = (
        "Enabled"
        if public is None
        else _enum(public, ("Enabled", "Disabled"), "properties.publicNetworkAccess")
    )
    stored: dict[str, Any] = {
        "storageAccounts": [s.render() for s in storage],
        "storageAuthentication": auth,
        "encryption": {"type": enc_type},
        "keyDelivery": _key_delivery(props.get("keyDelivery")),
        "publicNetworkAccess": public,
    }
    if key_id is not None:
        stored["encryption"]["keyVaultProperties"] = {"keyIdentifier": key_text}
    if enc_identity is not None:
        stored["encryption"]["identity"] = enc_identity.render()
    tls = props.get("minimumTlsVersion")
    if tls is not None:
        stored["minimumTlsVersion"] = _enum(tls, _TLS, "properties.minimumTlsVersion")
    for name in _READ_ONLY:
        stored.pop(name, None)
    return AccountSettings(
        storage, auth, enc_type, key_id, key_text if key_id else None, enc_identity, stored
    )
