"""Scenario 1 of "Managed identities" (Azure Media Services): the account's data is encrypted with a
customer-managed key that Media Services reaches in Key Vault with the account's managed identity.
Plain Azure SDK code (azure-mgmt-keyvault, -storage, -media, azure-keyvault-keys): rotation is
followed by itself, disabling the key stops the account, enabling it brings the account back.

    keyless run -- python examples/media_cmk.py rg1 amscmkvault1 amscmkstore1 amscmk1
"""

import base64
import json
import os
import sys
import time

from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.media import AzureMediaServices
from azure.mgmt.storage import StorageManagementClient

group, vault_name, storage_name, account_name = sys.argv[1:5]
subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
credential = DefaultAzureCredential()
location = "westeurope"


def wait_until(what, check, timeout=300):
    """Poll ``check`` until it is true: Media Services checks customer keys on its own schedule."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(2)


# Who am I? The access policy below names the caller's own object id.
token = credential.get_token("https://management.azure.com/.default").token
me = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
tenant_id, my_object_id = me["tid"], me["oid"]

# A vault with soft delete and purge protection, and an RSA key in it (azure-mgmt-keyvault takes
# REST field names in plain dicts; azure-mgmt-media's models take Python ones).
vaults = KeyVaultManagementClient(credential, subscription).vaults
all_keys = ["get", "list", "create", "update", "delete", "rotate", "getrotationpolicy", "setrotationpolicy"]
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
            "enableRbacAuthorization": False,  # access policies (newer api-versions default to RBAC)
            "accessPolicies": [
                {"tenantId": tenant_id, "objectId": my_object_id, "permissions": {"keys": all_keys}}
            ],
        },
    },
).result()
keys = KeyClient(vault.properties.vault_uri, credential)
key = keys.create_rsa_key("cmk", size=2048)
versionless = key.id.rsplit("/", 1)[0]

storage = (
    StorageManagementClient(credential, subscription)
    .storage_accounts.begin_create(
        group, storage_name, {"location": location, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
    )
    .result()
)

# The account, with a system-assigned identity; then that identity is given the key.
media = AzureMediaServices(credential, subscription)
account = media.mediaservices.begin_create_or_update(
    group,
    account_name,
    {
        "location": location,
        "identity": {"type": "SystemAssigned"},
        "storage_accounts": [{"id": storage.id, "type": "Primary"}],
    },
    polling_interval=1,
).result()
vaults.update_access_policy(
    group,
    vault_name,
    "add",
    {
        "properties": {
            "accessPolicies": [
                {
                    "tenantId": tenant_id,
                    "objectId": account.identity.principal_id,
                    "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
                }
            ]
        }
    },
)
account = media.mediaservices.begin_update(
    group,
    account_name,
    {"encryption": {"type": "CustomerKey", "key_vault_properties": {"key_identifier": versionless}}},
    polling_interval=1,
).result()
print(
    f"encryption={account.encryption.type} current={account.encryption.key_vault_properties.current_key_identifier}"
)

# Content keys are encrypted under the account key, which the customer key wraps.
media.content_key_policies.create_or_update(
    group,
    account_name,
    "clear-key",
    {
        "options": [
            {
                "name": "open",
                "configuration": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
                "restriction": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyOpenRestriction"},
            }
        ]
    },
)
media.assets.create_or_update(group, account_name, "movie", {})
media.streaming_locators.create(
    group,
    account_name,
    "movie-locator",
    {
        "asset_name": "movie",
        "streaming_policy_name": "Predefined_ClearKey",
        "default_content_key_policy_name": "clear-key",
    },
)


def content_key():
    return (
        media.streaming_locators.list_content_keys(group, account_name, "movie-locator").content_keys[0].value
    )


before = content_key()

# Rotation: Media Services follows the new version by itself; content keys stay readable.
rotated = keys.rotate_key("cmk")


def current():
    return media.mediaservices.get(group, account_name).encryption.key_vault_properties.current_key_identifier


wait_until("the new key version", lambda: current() == rotated.id)
print(f"rotated: current={current()} content key unchanged={content_key() == before}")


def refused():
    try:
        media.assets.get(group, account_name, "movie")
    except HttpResponseError as exc:
        return "Access to the Customer Key was forbidden." in str(exc.message)
    return False


# Revocation: a disabled key puts the account out of reach (GET/LIST/DELETE of the account still work).
keys.update_key_properties("cmk", enabled=False)
wait_until("the account to refuse", refused)
print(
    f"key disabled: refused, account still readable={media.mediaservices.get(group, account_name).name == account_name}"
)
keys.update_key_properties("cmk", enabled=True)
wait_until("the account to recover", lambda: not refused())
print(f"key enabled: recovered, content key unchanged={content_key() == before}")
