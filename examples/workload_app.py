"""A workload's program: no secret anywhere, only its managed identity.

    keyless run --as app-vm -- python examples/workload_app.py
    keyless run --as ingest-fn -- python examples/workload_app.py <client id of id1>

With an argument, the user-assigned identity with that client id is used; without one,
the workload's system-assigned identity.
"""

import sys

import jwt
from azure.identity import ManagedIdentityCredential

client_id = sys.argv[1] if len(sys.argv) > 1 else None
credential = ManagedIdentityCredential(client_id=client_id)
for scope in ("https://management.azure.com/.default", "https://vault.azure.net/.default"):
    token = credential.get_token(scope)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    print(f"{claims['aud']:<32} oid={claims['oid']} mirid={claims['xms_mirid']}")
