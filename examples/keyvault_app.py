"""A workload with a managed identity uses Key Vault: a customer-managed key wraps a data key, and a
secret is read. Plain Azure SDK code, unchanged from what runs on an Azure VM.

    keyless run --as app-vm -- python examples/keyvault_app.py media-cmk
"""

import os
import sys

from azure.identity import ManagedIdentityCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
from azure.keyvault.secrets import SecretClient

vault_url = f"https://{sys.argv[1]}.vault.azure.net"
dek = os.urandom(32)  # a data encryption key, as a service would make one
cred = ManagedIdentityCredential()
key = KeyClient(vault_url, cred).create_rsa_key("cmk", size=3072)
crypto = CryptographyClient(key, cred)
wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
print(f"wrapped and unwrapped a data key with {key.id}")
print(f"db-password={SecretClient(vault_url, cred).get_secret('db-password').value}")
