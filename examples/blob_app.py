"""A workload with a managed identity writes and reads blobs in a storage account behind a
firewall. Plain Azure SDK code, unchanged from what runs on an Azure VM.

    keyless run --as app-vm -- python examples/blob_app.py mediastore
"""

import sys

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient

service = BlobServiceClient(f"https://{sys.argv[1]}.blob.core.windows.net", ManagedIdentityCredential())
try:
    container = service.create_container("ingest")
except ResourceExistsError:
    container = service.get_container_client("ingest")
except HttpResponseError as exc:  # e.g. outside the account's firewall, or without a data role
    code = getattr(exc.error_code, "value", exc.error_code)  # the SDK gives known codes as an enum
    print(f"refused: ({code}) {exc.reason}")
    sys.exit(0)
container.upload_blob("clip.txt", b"frames of a clip", overwrite=True)
print(f"clip.txt={container.download_blob('clip.txt').readall().decode()}")
print(f"blobs={[b.name for b in container.list_blobs()]}")
