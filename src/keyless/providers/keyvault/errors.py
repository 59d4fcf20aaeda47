"""Key Vault data-plane errors: ``{"error": {"code", "message", "innererror": {"code"}}}``.

Shape and texts: shared/reference/keyvault.md §1 "Errors" and keyvault-secrets.md §4 (the
``KeyVaultError`` definition of the 7.5 data-plane spec, SDK recordings and service captures).
The SDKs map 401 to ClientAuthenticationError, 404 to ResourceNotFoundError, 409 to
ResourceExistsError and anything else to HttpResponseError with ``.error.code``.
"""

from __future__ import annotations

from typing import Any

_HELP_NOT_FOUND = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
_HELP_ACCESS = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"


class KeyVaultError(Exception):
    """An error answer: ``status``, ``code`` and ``message``; ``inner`` is the innererror code."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner is not None:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


def _noun(kind: str) -> str:
    return "Key" if kind == "key" else "Secret"


def unauthorized(message: str = "AKV10000: Request is missing a Bearer or PoP token.") -> KeyVaultError:
    return KeyVaultError(401, "Unauthorized", message)


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


def bad_name(name: str) -> KeyVaultError:
    """400 for a name outside ``^[0-9a-zA-Z-]{1,127}$`` (keyvault-secrets.md §4 "Bad name")."""
    return KeyVaultError(400, "BadParameter", f"The request URI contains an invalid name: {name}")


def not_found(kind: str, name: str) -> KeyVaultError:
    noun = _noun(kind)
    return KeyVaultError(
        404,
        f"{noun}NotFound",
        f"A {noun.lower()} with (name/id) {name} was not found in this key vault. If you recently deleted "
        f"this {noun.lower()} you may be able to recover it using the correct recovery command. "
        + _HELP_NOT_FOUND,
    )


def version_not_found(kind: str, name: str, version: str) -> KeyVaultError:
    noun = _noun(kind)
    return KeyVaultError(
        404,
        f"{noun}NotFound",
        f"A {noun.lower()} with (name/id) {name}/{version} was not found in this key vault. "
        + _HELP_NOT_FOUND,
    )


def deleted_not_found(kind: str, name: str) -> KeyVaultError:
    return KeyVaultError(404, f"{_noun(kind)}NotFound", f"Deleted {_noun(kind)} not found: {name}")


def deleted_but_recoverable(kind: str, name: str) -> KeyVaultError:
    noun = _noun(kind)
    return KeyVaultError(
        409,
        "Conflict",
        f"{noun} {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
        f"in this state, the {noun.lower()} can only be recovered or purged.",
        "ObjectIsDeletedButRecoverable",
    )


def already_exists(kind: str, name: str) -> KeyVaultError:
    """Restore onto a name in use (the SDK docstring: ResourceExistsError)."""
    noun = _noun(kind)
    return KeyVaultError(
        409,
        "Conflict",
        f"{noun} {name} already exists. Restore is not allowed on an existing {noun.lower()}.",
    )


def disabled(kind: str, operation: str) -> KeyVaultError:
    """403 on a disabled version (keyvault-secrets.md §0.10; keyvault.md §1 "Disabled key")."""
    noun = _noun(kind)
    return KeyVaultError(
        403,
        "Forbidden",
        f"Operation {operation} is not allowed on a disabled {noun.lower()}.",
        f"{noun}Disabled",
    )


def purge_not_enabled() -> KeyVaultError:
    """Purge in a vault with purge protection (keyvault-secrets.md §3)."""
    return KeyVaultError(400, "NotSupported", 'Operation "purge" is not enabled for this vault.')


def forbidden_by_policy(
    caller_line: str, kind: str, permission: str, vault: str, location: str
) -> KeyVaultError:
    """Access policies do not grant ``permission`` (keyvault.md §1, keyvault-secrets.md §4)."""
    return KeyVaultError(
        403,
        "Forbidden",
        f"The user, group or application '{caller_line}' does not have {kind}s {permission} permission on "
        f"key vault '{vault};location={location}'. " + _HELP_ACCESS,
        "ForbiddenByPolicy",
    )


def forbidden_by_rbac(
    caller_line: str,
    action: str,
    resource: str,
    vault: str,
    location: str,
    deny_assignment: str | None = None,
) -> KeyVaultError:
    """RBAC denies (rbac-and-arm.md §1: ``\\r\\n``-separated lines, the resource lower-cased)."""
    reason = "'DeniedWithNoValidRBAC'" if deny_assignment is None else "'DeniedByDenyAssignment'"
    lines = [
        "Caller is not authorized to perform action on resource.",
        "If role assignments, deny assignments or role definitions were changed recently, please observe "
        "propagation time.",
        f"Caller: {caller_line}",
        f"Action: '{action}'",
        f"Resource: '{resource.lower()}'",
        "Assignment: (not found)",
        f"DenyAssignmentId: {deny_assignment or 'null'}",
        f"DecisionReason: {reason}",
        f"Vault: {vault};location={location}",
    ]
    return KeyVaultError(403, "Forbidden", "\r\n".join(lines), "ForbiddenByRbac")


def forbidden_by_firewall(client_address: str, caller_line: str, vault: str, location: str) -> KeyVaultError:
    """The vault's network rules keep the caller out. Azure's text (as captured in public issue
    threads, e.g. hashicorp/terraform-provider-azurerm#19749-style logs) is kept line for line."""
    lines = [
        "Client address is not authorized and caller is not a trusted service.",
        f"Client address: {client_address}",
        f"Caller: {caller_line}",
        f"Vault: {vault};location={location}",
    ]
    return KeyVaultError(403, "Forbidden", "\r\n".join(lines), "ForbiddenByFirewall")


def method_not_allowed(method: str) -> KeyVaultError:
    return KeyVaultError(
        405, "BadParameter", f"The requested resource does not support http method '{method}'."
    )


def throttled() -> KeyVaultError:
    return KeyVaultError(429, "Throttled", "Too many requests.")
