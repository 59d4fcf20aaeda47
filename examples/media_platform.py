"""The Media Services account of scenario 3, set up by an administrator with plain Azure SDK code:
its data encrypted with a customer-managed key (scenario 1), its storage behind a firewall reached
with its own identity (scenario 2), a transform, and the Media Services Media Operator role for one
workload's managed identity (scenario 3).

    keyless run -- python examples/media_platform.py rg1 amsjobstore1 amsjobvault1 amsjobs1 app-vm 20.30.40.50

Arguments: group, storage account, key vault, Media Services account, the VM given Media Operator,
and the VM's public IP, which the storage firewall lets in (so the VM can upload its clip with a
SAS URL; everyone else stays out, Media Services comes in as a trusted service).
"""

import base64
import json
import os
import sys
import uuid

from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.media import AzureMediaServices
from azure.mgmt.media import models as media_models
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.mgmt.storage.models import IPRule, NetworkRuleSet, Sku, StorageAccountCreateParameters

group, storage_name, vault_name, account_name, vm_name, vm_ip = sys.argv[1:7]
subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
credential = DefaultAzureCredential()
location = "westeurope"
roles = AuthorizationManagementClient(credential, subscription)


def grant(scope: str, principal_id: str, role: str) -> None:
    definition = next(iter(roles.role_definitions.list(scope, filter=f"roleName eq '{role}'")))
    roles.role_assignments.create(
        scope,
        str(uuid.uuid4()),
        {
            "role_definition_id": definition.id,
            "principal_id": principal_id,
            "principal_type": "ServicePrincipal",
        },
    )


# Who am I? The vault's access policy names the caller's own object id.
token = credential.get_token("https://management.azure.com/.default").token
me = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
tenant_id, my_object_id = me["tid"], me["oid"]

# Storage that lets in only trusted Azure services and the VM's address.
storage = (
    StorageManagementClient(credential, subscription)
    .storage_accounts.begin_create(
        group,
        storage_name,
        StorageAccountCreateParameters(
            location=location,
            sku=Sku(name="Standard_LRS"),
            kind="StorageV2",
            network_rule_set=NetworkRuleSet(
                default_action="Deny", bypass="AzureServices", ip_rules=[IPRule(ip_address_or_range=vm_ip)]
            ),
        ),
    )
    .result()
)

# A vault with purge protection and an RSA key: the customer-managed key.
vaults = KeyVaultManagementClient(credential, subscription).vaults
vault = vaults.begin_create_or_update(
    group,
    vault_name,
    {
        "location": location,
        "properties": {
            "tenantId": tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enableSoftDelete": True,
            "enablePurgeProtection": True,
            "enableRbacAuthorization": False,  # access policies
            "accessPolicies": [
                {"tenantId": tenant_id, "objectId": my_object_id, "permissions": {"keys": ["get", "create"]}}
            ],
        },
    },
).result()

# The account's identity: data access to the storage account, wrapKey/unwrapKey on the key.
identity = ManagedServiceIdentityClient(credential, subscription).user_assigned_identities.create_or_update(
    group, f"{account_name}-identity", {"location": location}
)
for role in ("Storage Blob Data Contributor", "Reader"):
    grant(storage.id, identity.principal_id, role)
vaults.update_access_policy(
    group,
    vault_name,
    "add",
    {
        "properties": {
            "accessPolicies": [
                {
                    "tenantId": tenant_id,
                    "objectId": identity.principal_id,
                    "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
                }
            ]
        }
    },
)
key = KeyClient(vault.properties.vault_uri, credential).create_rsa_key("media-cmk", size=2048)
versionless = key.id.rsplit("/", 1)[0]

media = AzureMediaServices(credential, subscription)
account = media.mediaservices.begin_create_or_update(
    group,
    account_name,
    {
        "location": location,
        "identity": {"type": "UserAssigned", "user_assigned_identities": {identity.id: {}}},
        "storage_accounts": [
            {
                "id": storage.id,
                "type": "Primary",
                "identity": {"use_system_assigned_identity": False, "user_assigned_identity": identity.id},
            }
        ],
        "storage_authentication": "ManagedIdentity",
        "encryption": {
            "type": "CustomerKey",
            "key_vault_properties": {"key_identifier": versionless},
            "identity": {"use_system_assigned_identity": False, "user_assigned_identity": identity.id},
        },
    },
    polling_interval=1,
).result()
print(
    f"account {account.name}: encryption={account.encryption.type} storage={account.storage_authentication}"
)

# The transform the workloads run: 720p H.264 + AAC in one MP4, and PNG thumbnails.
media.transforms.create_or_update(
    group,
    account_name,
    "keyless-720p",
    media_models.Transform(
        outputs=[
            media_models.TransformOutput(
                preset=media_models.StandardEncoderPreset(
                    codecs=[
                        media_models.AacAudio(channels=2, sampling_rate=48000, bitrate=128000),
                        media_models.H264Video(
                            complexity="Speed",
                            layers=[
                                media_models.H264Layer(
                                    bitrate=2_000_000, width="1280", height="720", label="HD"
                                )
                            ],
                        ),
                        media_models.PngImage(
                            start="10%",
                            step="40%",
                            range="90%",
                            layers=[media_models.PngLayer(width="320", height="180")],
                        ),
                    ],
                    formats=[
                        media_models.Mp4Format(filename_pattern="Video-{Basename}-{Label}{Extension}"),
                        media_models.PngFormat(filename_pattern="Thumbnail-{Basename}-{Index}{Extension}"),
                    ],
                )
            )
        ]
    ),
)

# Scenario 3: the VM's own identity may run jobs on this account, and nothing more.
vm = ResourceManagementClient(credential, subscription).resources.get(
    group, "Microsoft.Compute", "", "virtualMachines", vm_name, api_version="2024-07-01"
)
grant(account.id, vm.identity.principal_id, "Media Services Media Operator")
print(f"{vm_name} may run jobs on {account_name} (Media Services Media Operator)")
