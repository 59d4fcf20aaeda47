"""A VM's program calling the resource manager with its own identity (authorized by RBAC).

keyless run --as app-vm -- python examples/workload_arm.py <subscription id> rg1
"""

import sys

from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.msi import ManagedServiceIdentityClient

subscription, group = sys.argv[1], sys.argv[2]
client = ManagedServiceIdentityClient(ManagedIdentityCredential(), subscription)
try:
    for identity in client.user_assigned_identities.list_by_resource_group(group):
        print(f"{identity.name} clientId={identity.client_id}")
except HttpResponseError as error:
    print(f"refused: ({error.error.code if error.error else error.status_code}) {error.message}")
    sys.exit(3)
