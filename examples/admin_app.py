"""The Foundation program: an unchanged Azure program, run as the local admin.

keyless run -- python examples/admin_app.py
"""

import os

from azure.identity import DefaultAzureCredential
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient

subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
credential = DefaultAzureCredential()
ResourceManagementClient(credential, subscription).resource_groups.create_or_update(
    "rg1", {"location": "westeurope"}
)
c = ManagedServiceIdentityClient(credential, subscription)
c.user_assigned_identities.create_or_update("rg1", "id1", {"location": "westeurope"})
print(c.user_assigned_identities.get("rg1", "id1").principal_id)
