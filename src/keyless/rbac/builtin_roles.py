"""Azure built-in role definitions used by Keyless, as data.

Names (GUIDs), descriptions and permission lists follow MicrosoftDocs/azure-docs
``articles/role-based-access-control/built-in-roles/*.md`` (general, privileged, identity, security,
storage, compute, web-and-mobile).  Built-in roles change over time; this is a snapshot.
Built-in role GUIDs are identical in every Azure cloud.
"""

from __future__ import annotations

from typing import Final

from keyless.rbac.evaluator import Permission, RoleDefinition, role_key

__all__ = [
    "BUILTIN_ROLES",
    "builtin_role_by_name",
    "get_builtin_role",
]


def _role(
    name: str,
    role_name: str,
    description: str,
    *,
    actions: tuple[str, ...] = (),
    not_actions: tuple[str, ...] = (),
    data_actions: tuple[str, ...] = (),
    not_data_actions: tuple[str, ...] = (),
) -> RoleDefinition:
    return RoleDefinition(
        name=name,
        role_name=role_name,
        role_type="BuiltInRole",
        description=description,
        assignable_scopes=("/",),
        permissions=(Permission(actions, not_actions, data_actions, not_data_actions),),
    )


_KV_RBAC_ONLY = "Only works for key vaults that use the 'Azure role-based access control' permission model."

# Control-plane actions shared by the Key Vault data roles ("KVbase").
_KEY_VAULT_BASE: Final = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
)

# Actions shared by the Media Services roles ("MSbase").
_MEDIA_BASE: Final = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Insights/metrics/read",
    "Microsoft.Insights/metricDefinitions/read",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.ResourceHealth/availabilityStatuses/read",
    "Microsoft.Media/mediaservices/*/read",
)

_MEDIA_LOCATOR_LISTING: Final = (
    "Microsoft.Media/mediaservices/assets/listStreamingLocators/action",
    "Microsoft.Media/mediaservices/streamingLocators/listPaths/action",
)

_MEDIA_CONTENT_KEY_NOT_ACTIONS: Final = (
    "Microsoft.Media/mediaservices/assets/getEncryptionKey/action",
    "Microsoft.Media/mediaservices/streamingLocators/listContentKeys/action",
)

_BLOB = "Microsoft.Storage/storageAccounts/blobServices"

OWNER = _role(
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Owner",
    "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
    actions=("*",),
)

CONTRIBUTOR = _role(
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Contributor",
    "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, "
    "manage assignments in Azure Blueprints, or share image galleries.",
    actions=("*",),
    not_actions=(
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
        "Microsoft.Blueprint/blueprintAssignments/write",
        "Microsoft.Blueprint/blueprintAssignments/delete",
        "Microsoft.Compute/galleries/share/action",
        "Microsoft.Purview/consents/write",
        "Microsoft.Purview/consents/delete",
        "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
        "Microsoft.Subscription/cancel/action",
        "Microsoft.Subscription/enable/action",
    ),
)

READER = _role(
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Reader",
    "View all resources, but does not allow you to make any changes.",
    actions=("*/read",),
)

USER_ACCESS_ADMINISTRATOR = _role(
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "User Access Administrator",
    "Lets you manage user access to Azure resources.",
    actions=("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
)

ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR = _role(
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "Role Based Access Control Administrator",
    "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you "
    "to manage access using other ways, such as Azure Policy.",
    actions=(
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
        "*/read",
        "Microsoft.Support/*",
    ),
)

MANAGED_IDENTITY_OPERATOR = _role(
    "f1a07417-d97a-45cb-824c-7a7467783830",
    "Managed Identity Operator",
    "Read and Assign User Assigned Identity",
    actions=(
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Support/*",
    ),
)

MANAGED_IDENTITY_CONTRIBUTOR = _role(
    "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
    "Managed Identity Contributor",
    "Create, Read, Update, and Delete User Assigned Identity",
    actions=(
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
        "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action",
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Support/*",
    ),
)

KEY_VAULT_ADMINISTRATOR = _role(
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Administrator",
    "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, "
    "and secrets. Cannot manage key vault resources or manage role assignments. " + _KV_RBAC_ONLY,
    actions=_KEY_VAULT_BASE,
    data_actions=("Microsoft.KeyVault/vaults/*",),
)

KEY_VAULT_CRYPTO_OFFICER = _role(
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "Key Vault Crypto Officer",
    "Perform any action on the keys of a key vault, except manage permissions. " + _KV_RBAC_ONLY,
    actions=_KEY_VAULT_BASE,
    data_actions=("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"),
)

KEY_VAULT_CRYPTO_USER = _role(
    "12338af0-0e69-4776-bea7-57ae8d297424",
    "Key Vault Crypto User",
    "Perform cryptographic operations using keys. " + _KV_RBAC_ONLY,
    data_actions=(
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/update/action",
        "Microsoft.KeyVault/vaults/keys/backup/action",
        "Microsoft.KeyVault/vaults/keys/encrypt/action",
        "Microsoft.KeyVault/vaults/keys/decrypt/action",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
        "Microsoft.KeyVault/vaults/keys/sign/action",
        "Microsoft.KeyVault/vaults/keys/verify/action",
    ),
)

KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = _role(
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "Key Vault Crypto Service Encryption User",
    "Read metadata of keys and perform wrap/unwrap operations. " + _KV_RBAC_ONLY,
    actions=(
        "Microsoft.EventGrid/eventSubscriptions/write",
        "Microsoft.EventGrid/eventSubscriptions/read",
        "Microsoft.EventGrid/eventSubscriptions/delete",
    ),
    data_actions=(
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
    ),
)

KEY_VAULT_READER = _role(
    "21090545-7ca7-4776-b22c-e363652d74d2",
    "Key Vault Reader",
    "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such "
    "as secret contents or key material. " + _KV_RBAC_ONLY,
    actions=_KEY_VAULT_BASE,
    data_actions=(
        "Microsoft.KeyVault/vaults/*/read",
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    ),
)

KEY_VAULT_SECRETS_OFFICER = _role(
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets Officer",
    "Perform any action on the secrets of a key vault, except manage permissions. " + _KV_RBAC_ONLY,
    actions=_KEY_VAULT_BASE,
    data_actions=("Microsoft.KeyVault/vaults/secrets/*",),
)

KEY_VAULT_SECRETS_USER = _role(
    "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets User",
    "Read secret contents. " + _KV_RBAC_ONLY,
    data_actions=(
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    ),
)

STORAGE_ACCOUNT_CONTRIBUTOR = _role(
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    "Storage Account Contributor",
    "Permits management of storage accounts. Provides access to the account key, which can be used to "
    "access data via Shared Key authorization.",
    actions=(
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Insights/diagnosticSettings/*",
        "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
        "Microsoft.ResourceHealth/availabilityStatuses/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Storage/storageAccounts/*",
        "Microsoft.Support/*",
    ),
)

STORAGE_BLOB_DATA_OWNER = _role(
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Owner",
    "Provides full access to Azure Storage blob containers and data, including assigning POSIX access "
    "control.",
    actions=(f"{_BLOB}/containers/*", f"{_BLOB}/generateUserDelegationKey/action"),
    data_actions=(f"{_BLOB}/containers/blobs/*",),
)

STORAGE_BLOB_DATA_CONTRIBUTOR = _role(
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Contributor",
    "Read, write, and delete Azure Storage containers and blobs.",
    actions=(
        f"{_BLOB}/containers/delete",
        f"{_BLOB}/containers/read",
        f"{_BLOB}/containers/write",
        f"{_BLOB}/generateUserDelegationKey/action",
    ),
    data_actions=(
        f"{_BLOB}/containers/blobs/delete",
        f"{_BLOB}/containers/blobs/read",
        f"{_BLOB}/containers/blobs/write",
        f"{_BLOB}/containers/blobs/move/action",
        f"{_BLOB}/containers/blobs/add/action",
    ),
)

STORAGE_BLOB_DATA_READER = _role(
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Reader",
    "Read and list Azure Storage containers and blobs.",
    actions=(f"{_BLOB}/containers/read", f"{_BLOB}/generateUserDelegationKey/action"),
    data_actions=(f"{_BLOB}/containers/blobs/read",),
)

STORAGE_BLOB_DELEGATOR = _role(
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    "Storage Blob Delegator",
    "Get a user delegation key, which can then be used to create a shared access signature for a container "
    "or blob that is signed with Azure AD credentials.",
    actions=(f"{_BLOB}/generateUserDelegationKey/action",),
)

MEDIA_SERVICES_ACCOUNT_ADMINISTRATOR = _role(
    "054126f8-9a2b-4f1c-a9ad-eca461f08466",
    "Media Services Account Administrator",
    "Create, read, modify, and delete Media Services accounts; read-only access to other Media Services "
    "resources.",
    actions=(
        *_MEDIA_BASE,
        *_MEDIA_LOCATOR_LISTING,
        "Microsoft.Media/mediaservices/write",
        "Microsoft.Media/mediaservices/delete",
        "Microsoft.Media/mediaservices/privateEndpointConnectionsApproval/action",
        "Microsoft.Media/mediaservices/privateEndpointConnections/*",
    ),
)

MEDIA_SERVICES_LIVE_EVENTS_ADMINISTRATOR = _role(
    "532bc159-b25e-42c0-969e-a1d439f60d77",
    "Media Services Live Events Administrator",
    "Create, read, modify, and delete Live Events, Assets, Asset Filters, and Streaming Locators; read-only "
    "access to other Media Services resources.",
    actions=(
        *_MEDIA_BASE,
        "Microsoft.Media/mediaservices/assets/*",
        "Microsoft.Media/mediaservices/assets/assetfilters/*",
        "Microsoft.Media/mediaservices/streamingLocators/*",
        "Microsoft.Media/mediaservices/liveEvents/*",
    ),
    not_actions=_MEDIA_CONTENT_KEY_NOT_ACTIONS,
)

MEDIA_SERVICES_MEDIA_OPERATOR = _role(
    "e4395492-1534-4db2-bedf-88c14621589c",
    "Media Services Media Operator",
    "Create, read, modify, and delete Assets, Asset Filters, Streaming Locators, and Jobs; read-only access "
    "to other Media Services resources.",
    actions=(
        *_MEDIA_BASE,
        "Microsoft.Media/mediaservices/assets/*",
        "Microsoft.Media/mediaservices/assets/assetfilters/*",
        "Microsoft.Media/mediaservices/streamingLocators/*",
        "Microsoft.Media/mediaservices/transforms/jobs/*",
    ),
    not_actions=_MEDIA_CONTENT_KEY_NOT_ACTIONS,
)

MEDIA_SERVICES_POLICY_ADMINISTRATOR = _role(
    "c4bba371-dacd-4a26-b320-7250bca963ae",
    "Media Services Policy Administrator",
    "Create, read, modify, and delete Account Filters, Streaming Policies, Content Key Policies, and "
    "Transforms; read-only access to other Media Services resources. Cannot create Jobs, Assets or "
    "Streaming resources.",
    actions=(
        *_MEDIA_BASE,
        *_MEDIA_LOCATOR_LISTING,
        "Microsoft.Media/mediaservices/accountFilters/*",
        "Microsoft.Media/mediaservices/streamingPolicies/*",
        "Microsoft.Media/mediaservices/contentKeyPolicies/*",
        "Microsoft.Media/mediaservices/transforms/*",
    ),
    not_actions=("Microsoft.Media/mediaservices/contentKeyPolicies/getPolicyPropertiesWithSecrets/action",),
)

MEDIA_SERVICES_STREAMING_ENDPOINTS_ADMINISTRATOR = _role(
    "99dba123-b5fe-44d5-874c-ced7199a5804",
    "Media Services Streaming Endpoints Administrator",
    "Create, read, modify, and delete Streaming Endpoints; read-only access to other Media Services "
    "resources.",
    actions=(
        *_MEDIA_BASE,
        *_MEDIA_LOCATOR_LISTING,
        "Microsoft.Media/mediaservices/streamingEndpoints/*",
    ),
)

VIRTUAL_MACHINE_CONTRIBUTOR = _role(
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
    "Virtual Machine Contributor",
    "Create and manage virtual machines, manage disks, install and run software, reset password of the "
    "root user of the virtual machine using VM extensions, and connect to the Linux virtual machine using "
    "SSH. Does not grant access to the virtual network or storage account the virtual machines are "
    "connected to.",
    actions=(
        "Microsoft.Authorization/*/read",
        "Microsoft.Compute/availabilitySets/*",
        "Microsoft.Compute/locations/*",
        "Microsoft.Compute/virtualMachines/*",
        "Microsoft.Compute/virtualMachineScaleSets/*",
        "Microsoft.Compute/cloudServices/*",
        "Microsoft.Compute/disks/write",
        "Microsoft.Compute/disks/read",
        "Microsoft.Compute/disks/delete",
        "Microsoft.Compute/hostgroups/write",
        "Microsoft.Compute/hostgroups/hosts/write",
        "Microsoft.DevTestLab/schedules/*",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
        "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
        "Microsoft.Network/loadBalancers/inboundNatPools/join/action",
        "Microsoft.Network/loadBalancers/inboundNatRules/join/action",
        "Microsoft.Network/loadBalancers/probes/join/action",
        "Microsoft.Network/loadBalancers/read",
        "Microsoft.Network/locations/*",
        "Microsoft.Network/networkInterfaces/*",
        "Microsoft.Network/networkSecurityGroups/join/action",
        "Microsoft.Network/networkSecurityGroups/read",
        "Microsoft.Network/publicIPAddresses/join/action",
        "Microsoft.Network/publicIPAddresses/read",
        "Microsoft.Network/virtualNetworks/read",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.RecoveryServices/locations/*",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/backupProtectionIntent/write",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/*/read",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/read",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/write",
        "Microsoft.RecoveryServices/Vaults/backupPolicies/read",
        "Microsoft.RecoveryServices/Vaults/backupPolicies/write",
        "Microsoft.RecoveryServices/Vaults/read",
        "Microsoft.RecoveryServices/Vaults/usages/read",
        "Microsoft.RecoveryServices/Vaults/write",
        "Microsoft.ResourceHealth/availabilityStatuses/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.SerialConsole/serialPorts/connect/action",
        "Microsoft.SqlVirtualMachine/*",
        "Microsoft.Storage/storageAccounts/listKeys/action",
        "Microsoft.Storage/storageAccounts/read",
        "Microsoft.Support/*",
    ),
)

WEBSITE_CONTRIBUTOR = _role(
    "de139f84-1756-47ae-9be6-808fbbe84772",
    "Website Contributor",
    "Lets you manage websites (not web plans), but not access to them.",
    actions=(
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Insights/components/*",
        "Microsoft.ResourceHealth/availabilityStatuses/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Support/*",
        "Microsoft.Web/certificates/*",
        "Microsoft.Web/listSitesAssignedToHostName/read",
        "Microsoft.Web/serverFarms/join/action",
        "Microsoft.Web/serverFarms/read",
        "Microsoft.Web/sites/*",
    ),
)

BUILTIN_ROLES: Final[tuple[RoleDefinition, ...]] = (
    OWNER,
    CONTRIBUTOR,
    READER,
    USER_ACCESS_ADMINISTRATOR,
    ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR,
    MANAGED_IDENTITY_OPERATOR,
    MANAGED_IDENTITY_CONTRIBUTOR,
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_CRYPTO_OFFICER,
    KEY_VAULT_CRYPTO_USER,
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_READER,
    KEY_VAULT_SECRETS_OFFICER,
    KEY_VAULT_SECRETS_USER,
    STORAGE_ACCOUNT_CONTRIBUTOR,
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    STORAGE_BLOB_DELEGATOR,
    MEDIA_SERVICES_ACCOUNT_ADMINISTRATOR,
    MEDIA_SERVICES_LIVE_EVENTS_ADMINISTRATOR,
    MEDIA_SERVICES_MEDIA_OPERATOR,
    MEDIA_SERVICES_POLICY_ADMINISTRATOR,
    MEDIA_SERVICES_STREAMING_ENDPOINTS_ADMINISTRATOR,
    VIRTUAL_MACHINE_CONTRIBUTOR,
    WEBSITE_CONTRIBUTOR,
)

_BY_GUID: Final[dict[str, RoleDefinition]] = {role_key(r.name): r for r in BUILTIN_ROLES}
_BY_NAME: Final[dict[str, RoleDefinition]] = {r.role_name.lower(): r for r in BUILTIN_ROLES}


def get_builtin_role(name: str) -> RoleDefinition | None:
    """Built-in role by GUID (case-insensitive); a full role definition id is accepted too."""
    return _BY_GUID.get(role_key(name))


def builtin_role_by_name(role_name: str) -> RoleDefinition | None:
    """Built-in role by display name, e.g. "Key Vault Secrets User" (case-insensitive)."""
    return _BY_NAME.get(role_name.strip().lower())
