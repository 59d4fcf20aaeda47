"""Who may do what in a vault: access policies, or RBAC data actions through the one authorizer.

``enableRbacAuthorization: true`` means the vault's access policies are ignored and every data
operation needs its RBAC data action; otherwise the access policies decide (keyvault.md §3).
Deny texts: keyvault.md §1 and keyvault-secrets.md §4 (``ForbiddenByPolicy``, ``ForbiddenByRbac``).

Data actions (keyvault.md §3, keyvault-secrets.md §5). Where the reference marks an action
unverified we chose, and write it down here: a deleted key or secret is read with the live
object's read action (``keys/read``, ``secrets/readMetadata/action``); recover and purge are
``keys/recover/action`` and ``keys/purge/action`` (so Crypto Officer's ``keys/*`` covers them, as
its "19 operations" count implies); ``/rng`` needs a valid token and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyless.authority.tokens import Caller
from keyless.network import NetworkRules
from keyless.providers.keyvault import errors
from keyless.rbac.service import RbacService

_PREFIX = "Microsoft.KeyVault/vaults/"


@dataclass(frozen=True)
class Operation:
    """One data-plane operation: its access-policy ``permission`` (under ``kind``s) and its RBAC
    ``data_action``; ``kind`` is "key", "secret" or "" (no object)."""

    kind: str
    permission: str
    data_action: str


def _key(permission: str, action: str) -> Operation:
    return Operation("key", permission, _PREFIX + "keys/" + action)


def _secret(permission: str, action: str) -> Operation:
    return Operation("secret", permission, _PREFIX + "secrets/" + action)


KEY_OPERATIONS: dict[str, Operation] = {
    "get": _key("get", "read"),
    "list": _key("list", "read"),
    "create": _key("create", "create/action"),
    "import": _key("import", "import/action"),
    "update": _key("update", "update/action"),
    "delete": _key("delete", "delete"),
    "getdeleted": _key("get", "read"),
    "listdeleted": _key("list", "read"),
    "recover": _key("recover", "recover/action"),
    "purge": _key("purge", "purge/action"),
    "backup": _key("backup", "backup/action"),
    "restore": _key("restore", "restore/action"),
    "rotate": _key("rotate", "rotate/action"),
    "getrotationpolicy": Operation("key", "getrotationpolicy", _PREFIX + "keyrotationpolicies/read"),
    "setrotationpolicy": Operation("key", "setrotationpolicy", _PREFIX + "keyrotationpolicies/write"),
    "encrypt": _key("encrypt", "encrypt/action"),
    "decrypt": _key("decrypt", "decrypt/action"),
    "wrapkey": _key("wrapKey", "wrap/action"),
    "unwrapkey": _key("unwrapKey", "unwrap/action"),
    "sign": _key("sign", "sign/action"),
    "verify": _key("verify", "verify/action"),
    "release": _key("release", "release/action"),
}

SECRET_OPERATIONS: dict[str, Operation] = {
    "get": _secret("get", "getSecret/action"),
    "list": _secret("list", "readMetadata/action"),
    "set": _secret("set", "setSecret/action"),
    "update": _secret("set", "update/action"),
    "delete": _secret("delete", "delete"),
    "getdeleted": _secret("get", "readMetadata/action"),
    "listdeleted": _secret("list", "readMetadata/action"),
    "recover": _secret("recover", "recover/action"),
    "purge": _secret("purge", "purge/action"),
    "backup": _secret("backup", "backup/action"),
    "restore": _secret("restore", "restore/action"),
}

RNG = Operation("", "", "")


@dataclass(frozen=True)
class Vault:
    """A live vault as its data plane sees it (read from its resource document on each request)."""

    name: str
    resource_id: str
    location: str
    tenant_id: str
    rbac: bool
    access_policies: tuple[dict[str, Any], ...]
    soft_delete: bool
    retention_days: int
    purge_protection: bool
    rules: NetworkRules

    @property
    def uri(self) -> str:
        """``https://{name}.vault.azure.net``: the base of every key and secret id (keyvault.md §0.4)."""
        return f"https://{self.name}.vault.azure.net"

    @property
    def recovery_level(self) -> str:
        """The ``recoveryLevel`` attribute (keyvault.md §1 KeyAttributes)."""
        if not self.soft_delete:
            return "Purgeable"
        base = "Recoverable" if self.retention_days == 90 else "CustomizedRecoverable"
        return base if self.purge_protection else base + "+Purgeable"

    @classmethod
    def from_resource(cls, name: str, resource_id: str, location: str, properties: dict[str, Any]) -> Vault:
        return cls(
            name=name,
            resource_id=resource_id,
            location=location,
            tenant_id=str(properties.get("tenantId") or ""),
            rbac=bool(properties.get("enableRbacAuthorization")),
            access_policies=tuple(p for p in properties.get("accessPolicies") or () if isinstance(p, dict)),
            soft_delete=properties.get("enableSoftDelete") is not False,
            retention_days=int(properties.get("softDeleteRetentionInDays") or 90),
            purge_protection=bool(properties.get("enablePurgeProtection")),
            rules=NetworkRules.from_properties(properties),
        )


def caller_line(caller: Caller) -> str:
    """``appid=…;oid=…;iss=…``: how Key Vault names a caller in its 403 texts."""
    return f"appid={caller.app_id};oid={caller.object_id};iss=https://sts.windows.net/{caller.tenant_id}/"


class VaultAccess:
    """The one decision for every data-plane request: access policies or RBAC (via ``rbac``)."""

    def __init__(self, rbac: RbacService) -> None:
        self.rbac = rbac

    def authorize(self, vault: Vault, caller: Caller, operation: Operation, object_name: str | None) -> None:
        """Raise 403 ``ForbiddenByPolicy`` / ``ForbiddenByRbac`` unless ``caller`` may run
        ``operation`` (on object ``object_name`` of ``operation.kind``, None for collection-level
        operations). ``/rng`` (no kind) needs only the token."""
        if not operation.kind:
            return
        if vault.rbac:
            self._by_rbac(vault, caller, operation, object_name)
        else:
            self._by_policy(vault, caller, operation)

    def _by_rbac(self, vault: Vault, caller: Caller, operation: Operation, object_name: str | None) -> None:
        scope = vault.resource_id
        if object_name is not None:
            scope = f"{scope}/{operation.kind}s/{object_name}"
        if not self.rbac.enforce:
            return
        decision = self.rbac.authorize_data_action(caller, operation.data_action, scope)
        if decision.allowed:
            return
        deny = decision.deny_assignments[0].deny_assignment.name if decision.deny_assignments else None
        raise errors.forbidden_by_rbac(
            caller_line(caller), operation.data_action, scope, vault.name, vault.location, deny
        )

    def _by_policy(self, vault: Vault, caller: Caller, operation: Operation) -> None:
        wanted = operation.permission.lower()
        field = "keys" if operation.kind == "key" else "secrets"
        # The caller's own entry first; its groups (one more read) only when that does not grant.
        if self._granted(vault, caller, frozenset({caller.object_id.lower()}), field, wanted):
            return
        if self._granted(vault, caller, self.rbac.principals_of(caller.object_id), field, wanted):
            return
        raise errors.forbidden_by_policy(
            caller_line(caller), operation.kind, operation.permission, vault.name, vault.location
        )

    @staticmethod
    def _granted(vault: Vault, caller: Caller, principals: frozenset[str], field: str, wanted: str) -> bool:
        for policy in vault.access_policies:
            if str(policy.get("tenantId", "")).lower() != caller.tenant_id.lower():
                continue
            if str(policy.get("objectId", "")).lower() not in principals:
                continue
            app = policy.get("applicationId")
            if app and str(app).lower() != caller.app_id.lower():
                continue
            granted = (policy.get("permissions") or {}).get(field) or ()
            if any(isinstance(p, str) and p.lower() in (wanted, "all") for p in granted):
                return True
        return False
