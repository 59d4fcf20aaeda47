"""Every error Microsoft.Authorization answers with, in one place (codes and texts as ARM sends them).

Sources: ``../shared/reference/rbac-and-arm.md`` §1.8 and the captures cited there. Where Azure's
code is not documented (built-in roles are read-only, the last-admin guard, an unparseable scope or
``$filter``), the code is Keyless's own choice and says so in its docstring.
"""

from __future__ import annotations

from keyless.arm.errors import ArmError

_AUTHORIZATION_FAILED = (
    "The client '{oid}' with object id '{oid}' does not have authorization{abac} to perform action "
    "'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please "
    "refresh your credentials."
)


def _echo_scope(scope: str) -> str:
    # ARM echoes ids with a lower-case "resourcegroups" segment (captures in rbac-and-arm.md §1.8).
    index = scope.lower().find("/resourcegroups/")
    if index < 0:
        return scope
    return scope[:index] + "/resourcegroups/" + scope[index + len("/resourcegroups/") :]


def authorization_failed(object_id: str, action: str, scope: str, *, condition: bool = False) -> ArmError:
    """403 ``AuthorizationFailed``; ``condition``: an assignment would grant but its ABAC condition blocks."""
    message = _AUTHORIZATION_FAILED.format(
        oid=object_id,
        abac=" or an ABAC condition not fulfilled" if condition else "",
        action=action,
        scope=_echo_scope(scope),
    )
    return ArmError(403, "AuthorizationFailed", message)


def _shown(value: str, limit: int = 200) -> str:
    """A caller's value as an error message echoes it: whole when short, else its start (an error
    about an over-long input must not be as long as the input)."""
    return value if len(value) <= limit else value[:limit] + "..."


def _compact(guid: str) -> str:
    return guid.replace("-", "").lower()


def invalid_role_assignment_id(name: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRoleAssignmentId",
        f"The role assignment ID '{_shown(name)}' is not valid. The role assignment ID must be a GUID.",
    )


def invalid_principal_id(value: str) -> ArmError:
    return ArmError(
        400,
        "InvalidPrincipalId",
        f"The Principal ID '{_shown(value)}' is not valid. Principal ID must be a GUID.",
    )


def invalid_role_definition_id(value: str) -> ArmError:
    return ArmError(400, "InvalidRoleDefinitionId", f"The role definition ID '{_shown(value)}' is not valid.")


def role_definition_does_not_exist(guid: str, status: int = 400) -> ArmError:
    """Unknown role, or a custom role used outside its assignableScopes (it is not visible there)."""
    return ArmError(
        status,
        "RoleDefinitionDoesNotExist",
        f"The specified role definition with ID '{_compact(guid)}' does not exist.",
    )


def principal_not_found(principal_id: str, tenant_id: str) -> ArmError:
    return ArmError(
        400,
        "PrincipalNotFound",
        f"Principal {_compact(principal_id)} does not exist in the directory {tenant_id}. Check that you "
        "have the correct principal ID. If you are creating this principal and then immediately "
        "assigning a role, this error might be related to a replication delay. In this case, set the "
        "role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  "
        "See https://aka.ms/docs-principaltype",
    )


def unmatched_principal_type(principal_id: str, actual: str, given: str) -> ArmError:
    return ArmError(
        400,
        "UnmatchedPrincipalType",
        f"The PrincipalId '{_compact(principal_id)}' has type '{actual}' , which is different from "
        f"specified PrincipalType '{given}'.",
    )


def invalid_principal_type(given: str) -> ArmError:
    return ArmError(
        400,
        "InvalidPrincipalType",
        f"The principal type '{_shown(given)}' is not valid. Valid values are 'User', 'Group', "
        "'ServicePrincipal', 'ForeignGroup' and 'Device'.",
    )


def role_assignment_exists(existing_name: str) -> ArmError:
    return ArmError(
        409,
        "RoleAssignmentExists",
        f"The role assignment already exists. The ID of the existing role assignment is "
        f"{_compact(existing_name)}.",
    )


def role_assignment_update_not_permitted() -> ArmError:
    return ArmError(
        400,
        "RoleAssignmentUpdateNotPermitted",
        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
    )


def role_assignment_limit_exceeded() -> ArmError:
    return ArmError(400, "RoleAssignmentLimitExceeded", "No more role assignments can be created.")


def role_assignment_not_found(name: str) -> ArmError:
    return ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")


def unsupported_api_version_for_data_actions(api_version: str) -> ArmError:
    return ArmError(
        400,
        "UnsupportedApiVersionForRoleDefinitionHasDataActions",
        "Assignments to roles with DataActions and NotDataActions are not supported on API version "
        f"'{api_version}'. The minimum required API version for this operations is '2018-01-01-preview'.",
    )


def last_rbac_admin_assignment() -> ArmError:
    """Azure documents only the message; the code is Keyless's."""
    return ArmError(400, "LastRbacAdminAssignment", "Cannot delete the last RBAC admin assignment.")


def role_definition_has_assignments() -> ArmError:
    return ArmError(
        409, "RoleDefinitionHasAssignments", "There are existing role assignments referencing role."
    )


def role_definition_with_same_name_exists() -> ArmError:
    return ArmError(
        409,
        "RoleDefinitionWithSameNameExists",
        "A custom role with the same name already exists in this directory. Use a different name.",
    )


def role_definition_limit_exceeded() -> ArmError:
    return ArmError(400, "RoleDefinitionLimitExceeded", "No more role definitions can be created.")


def built_in_role_read_only(guid: str) -> ArmError:
    """Azure documents that built-in roles cannot be changed, not its code; the code is Keyless's."""
    return ArmError(
        400,
        "BuiltInRoleDefinitionReadOnly",
        f"The role definition '{guid}' is a built-in role and cannot be modified or deleted. "
        "Create a custom role instead.",
    )


def invalid_assignable_scope(scope: str) -> ArmError:
    return ArmError(
        400,
        "InvalidAssignableScope",
        f"The assignable scope '{scope}' is not valid. Custom roles must list subscriptions, resource "
        "groups or resources, not the root scope '/'.",
    )


def invalid_role_assignment_condition() -> ArmError:
    """400 ``InvalidRoleAssignmentCondition`` "The given role assignment condition is invalid.":
    a condition that does not parse, or a ``conditionVersion`` other than 2.0 (azure-docs
    ``conditions-troubleshoot.md``; MicrosoftDocs/azure-docs#119449).  Azure's text names no reason."""
    return ArmError(400, "InvalidRoleAssignmentCondition", "The given role assignment condition is invalid.")


def invalid_role_definition(detail: str) -> ArmError:
    return ArmError(400, "InvalidRoleDefinition", detail)


def invalid_action_or_not_action(pattern: str, problem: str) -> ArmError:
    """A role's action pattern Azure would refuse: 400 ``InvalidActionOrNotAction``, worded as ARM's
    "'{action}' does not match any of the actions supported by the providers." (captures quoted in
    MicrosoftDocs/azure-docs#74428 and third-party tooling).  Azure documents no separate code for
    DataActions, so the same code serves all four lists."""
    return ArmError(400, "InvalidActionOrNotAction", f"'{_shown(pattern)}' {problem}.")


def invalid_action(action: str, problem: str) -> ArmError:
    """The code is Keyless's (explain is Keyless's own operation): the action is not an action."""
    return ArmError(400, "InvalidAction", f"The action '{_shown(action)}' {problem}.")


def invalid_scope(scope: str) -> ArmError:
    """The code is Keyless's: the scope is not a subscription, resource group or resource id, or it
    is longer or deeper than any id can be (``keyless.arm.ids``)."""
    return ArmError(400, "InvalidScope", f"The scope '{_shown(scope)}' is not valid.")


def invalid_filter(value: str) -> ArmError:
    """The code is Keyless's."""
    return ArmError(
        400,
        "InvalidFilter",
        f"The filter '{_shown(value)}' is not supported. Supported: atScope(), principalId eq '{{id}}', "
        "assignedTo('{id}'), roleName eq '{name}', type eq 'BuiltInRole'|'CustomRole', combined with 'and'.",
    )


def group_not_found(group_id: str) -> ArmError:
    return ArmError(404, "GroupNotFound", f"The group '{group_id}' does not exist.")
