"""Scenario 3 of "Managed identities" (Azure Media Services): a VM or a Function app calls the
Media Services API with its own managed identity, authorized by a role assignment on the account.
Plain Azure SDK code (azure-identity's ManagedIdentityCredential, azure-mgmt-media,
azure-storage-blob), as it would run on the VM in Azure:

    keyless run --as app-vm -- python examples/media_jobs.py "$SUB" rg1 amsjobs1 clip.mp4 out/ [CLIENT_ID]

CLIENT_ID picks a user-assigned identity (as on a workload that has only user-assigned ones).

It uploads the clip into a new input asset (a SAS URL from listContainerSas: the storage firewall
lets the VM's address in), runs the account's transform ``keyless-720p`` as a job, waits for it,
and downloads the encoded MP4 and the thumbnails from the output asset into ``out/``. It then
publishes the output and prints its download URL once a streaming endpoint is running, and shows
that listContentKeys is beyond its role (Media Operator's notActions). Without a role on the
account, the first call fails with AuthorizationFailed (exit 1).
"""

import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.media import AzureMediaServices, models
from azure.storage.blob import ContainerClient

# A workload knows its subscription from its configuration, as on an Azure VM (no AZURE_* variables).
subscription, group, account = sys.argv[1:4]
clip, out_dir = Path(sys.argv[4]), Path(sys.argv[5])
client_id = sys.argv[6] if len(sys.argv) > 6 else None
media = AzureMediaServices(ManagedIdentityCredential(client_id=client_id), subscription)
run = uuid.uuid4().hex[:8]


def container(asset: str, permissions: str) -> ContainerClient:
    expiry = datetime.now(UTC) + timedelta(hours=1)
    urls = media.assets.list_container_sas(
        group, account, asset, models.ListContainerSasInput(permissions=permissions, expiry_time=expiry)
    )
    return ContainerClient.from_container_url(urls.asset_container_sas_urls[0])


def main() -> None:
    transform = media.transforms.get(group, account, "keyless-720p")
    print(f"transform {transform.name}: {len(transform.outputs)} output(s)")

    # The input asset, and the clip uploaded into it.
    source, target = f"clip-{run}", f"encoded-{run}"
    media.assets.create_or_update(group, account, source, models.Asset(description="an uploaded clip"))
    with clip.open("rb") as data:
        container(source, "ReadWrite").upload_blob(clip.name, data)
    media.assets.create_or_update(group, account, target, models.Asset(description="the encoded clip"))

    job = media.jobs.create(
        group,
        account,
        "keyless-720p",
        f"job-{run}",
        models.Job(
            input=models.JobInputAsset(asset_name=source),
            outputs=[models.JobOutputAsset(asset_name=target)],
            correlation_data={"run": run},
        ),
    )
    state = None
    while job.state not in ("Finished", "Error", "Canceled"):
        if job.state != state:
            state = job.state
            print(f"job {job.name}: {state}")
        time.sleep(1)
        job = media.jobs.get(group, account, "keyless-720p", job.name)
    print(f"job {job.name}: {job.state}")
    if job.state != "Finished":
        error = job.outputs[0].error
        sys.exit(f"job failed: {error.code}: {error.message}" if error else "job failed")

    # The encoded MP4 and thumbnails, from the output asset.
    out_dir.mkdir(parents=True, exist_ok=True)
    output = container(target, "Read")
    for blob in output.list_blobs():
        path = out_dir / blob.name
        path.write_bytes(output.download_blob(blob.name).readall())
        print(f"downloaded {path} ({blob.size} bytes)")

    # Publish it for progressive download; the URL answers once a streaming endpoint is running.
    locator = media.streaming_locators.create(
        group,
        account,
        f"locator-{run}",
        models.StreamingLocator(asset_name=target, streaming_policy_name="Predefined_DownloadOnly"),
    )
    print(f"published as streaming locator {locator.name}")
    endpoint = media.streaming_endpoints.get(group, account, "default")
    paths = media.streaming_locators.list_paths(group, account, locator.name)
    for path in paths.download_paths:
        print(f"play: https://{endpoint.host_name}{path}")
    if not paths.download_paths:
        print(f"no download URL yet: streaming endpoint 'default' is {endpoint.resource_state}")

    # Media Operator may publish, but not read content keys (its notActions).
    try:
        media.streaming_locators.list_content_keys(group, account, locator.name)
        print("listContentKeys: allowed")
    except HttpResponseError as exc:
        print(f"listContentKeys: refused ({_code(exc)})")


def _code(exc: HttpResponseError) -> str:
    return exc.error.code if exc.error and exc.error.code else str(exc.status_code or type(exc).__name__)


try:
    main()
except HttpResponseError as exc:  # no role on the account: the first call is refused
    sys.exit(f"refused: {_code(exc)}: {exc.message}")
