"""Scenario 2 of "Managed identities" (Azure Media Services): the account reaches a storage account
whose firewall shuts everyone else out, as a trusted Azure service with its own managed identity.
Plain Azure SDK code (azure-mgmt-msi, -storage, -authorization, -media), as the trusted-storage
tutorial does it: a user-assigned identity, granted Storage Blob Data Contributor and Reader,
then the Media Services account with storageAuthentication ManagedIdentity.

    keyless run -- python examples/media_storage.py rg1 amsstore1 amsfirewall1
"""

import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.media import AzureMediaServices
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import NetworkRuleSet, Sku, StorageAccountCreateParameters
from azure.storage.blob import ContainerClient

group, storage_name, account_name = sys.argv[1:4]
subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
credential = DefaultAzureCredential()
location = "westeurope"

# A storage account that lets no one in but trusted Azure services.
storage = StorageManagementClient(credential, subscription)
account = storage.storage_accounts.begin_create(
    group,
    storage_name,
    StorageAccountCreateParameters(
        location=location,
        sku=Sku(name="Standard_LRS"),
        kind="StorageV2",
        network_rule_set=NetworkRuleSet(default_action="Deny", bypass="AzureServices"),
    ),
).result()

# The identity Media Services will use, and its roles on the storage account.
identity = ManagedServiceIdentityClient(credential, subscription).user_assigned_identities.create_or_update(
    group, f"{account_name}-storage", {"location": location}
)
roles = AuthorizationManagementClient(credential, subscription)
for role in ("Storage Blob Data Contributor", "Reader"):
    definition = next(iter(roles.role_definitions.list(account.id, filter=f"roleName eq '{role}'")))
    roles.role_assignments.create(
        account.id,
        str(uuid.uuid4()),
        {
            "role_definition_id": definition.id,
            "principal_id": identity.principal_id,
            "principal_type": "ServicePrincipal",
        },
    )

media = AzureMediaServices(credential, subscription)
created = media.mediaservices.begin_create_or_update(
    group,
    account_name,
    {
        "location": location,
        "identity": {"type": "UserAssigned", "user_assigned_identities": {identity.id: {}}},
        "storage_accounts": [
            {
                "id": account.id,
                "type": "Primary",
                "identity": {"use_system_assigned_identity": False, "user_assigned_identity": identity.id},
            }
        ],
        "storage_authentication": "ManagedIdentity",
    },
    polling_interval=1,
).result()
print(f"account {created.name}: storageAuthentication={created.storage_authentication}")

# Media Services makes the asset's container through the firewall, with its own token.
asset = media.assets.create_or_update(group, account_name, "clip-in", {"description": "an input clip"})
print(f"asset {asset.name}: container {asset.container} in {asset.storage_account_name}")

# A SAS URL works where Azure's would: not from here, outside the firewall.
sas = media.assets.list_container_sas(
    group,
    account_name,
    "clip-in",
    {"permissions": "ReadWrite", "expiry_time": datetime.now(UTC) + timedelta(hours=1)},
)
try:
    ContainerClient.from_container_url(sas.asset_container_sas_urls[0]).upload_blob("clip.mp4", b"frames")
except HttpResponseError as exc:
    code = getattr(exc.error_code, "value", exc.error_code)  # the SDK gives known codes as an enum
    print(f"upload from outside the firewall: refused ({code})")

# Storage Account Key (System) authentication is an outside caller too: the service refuses it.
try:
    media.mediaservices.begin_update(
        group, account_name, {"storage_authentication": "System"}, polling_interval=1
    ).result()
except HttpResponseError as exc:
    print(
        f"storageAuthentication System: refused ({exc.error.code}: {exc.error.message.split(' Storage account ')[0]})"
    )
