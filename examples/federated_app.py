"""A federated workload: its token file is exchanged for the user-assigned identity's token.

keyless run --as id1 --federated -- python examples/federated_app.py
"""

import jwt
from azure.identity import WorkloadIdentityCredential

token = WorkloadIdentityCredential().get_token("https://storage.azure.com/.default")
claims = jwt.decode(token.token, options={"verify_signature": False})
print(f"{claims['aud']} appid={claims['appid']} mirid={claims['xms_mirid']}")
