"""What the Media Services job tests share: transforms, jobs and asset content through ARM and
the blob data plane, as azure-mgmt-media 10.x sends them (Encoding api-version 2022-07-01)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.e2e.media_helpers import MediaSetup, wait_for

ENCODING_API = "2022-07-01"
FINAL = ("Finished", "Error", "Canceled")
BUILTIN = "#Microsoft.Media.BuiltInStandardEncoderPreset"


def builtin(name: str) -> dict[str, Any]:
    return {"@odata.type": BUILTIN, "presetName": name}


def thumbnails_preset() -> dict[str, Any]:
    """A small custom preset: one H.264 layer, AAC, and PNG thumbnails at 0 %, 50 %."""
    return {
        "@odata.type": "#Microsoft.Media.StandardEncoderPreset",
        "codecs": [
            {
                "@odata.type": "#Microsoft.Media.AacAudio",
                "channels": 2,
                "samplingRate": 48000,
                "bitrate": 128000,
            },
            {
                "@odata.type": "#Microsoft.Media.H264Video",
                "complexity": "Speed",
                "layers": [{"bitrate": 400000, "width": "320", "height": "240", "label": "SD"}],
            },
            {
                "@odata.type": "#Microsoft.Media.PngImage",
                "start": "0%",
                "step": "50%",
                "range": "100%",
                "layers": [{"width": "160", "height": "120"}],
            },
        ],
        "formats": [
            {
                "@odata.type": "#Microsoft.Media.Mp4Format",
                "filenamePattern": "Video-{Basename}-{Label}{Extension}",
            },
            {
                "@odata.type": "#Microsoft.Media.PngFormat",
                "filenamePattern": "Thumbnail-{Basename}-{Index}{Extension}",
            },
        ],
    }


def create_transform(setup: MediaSetup, account: str, name: str, *presets: dict[str, Any]) -> dict[str, Any]:
    body = {"properties": {"outputs": [{"preset": p} for p in presets]}}
    r = setup.child("PUT", account, "transforms", name, body, api=ENCODING_API)
    assert r.status_code == 201, r.text
    return dict(r.json())


def create_asset(setup: MediaSetup, account: str, name: str) -> dict[str, Any]:
    r = setup.child("PUT", account, "assets", name, {"properties": {}})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def container_url(setup: MediaSetup, account: str, asset: str, permissions: str = "ReadWrite") -> str:
    import datetime as dt

    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = setup.child(
        "POST",
        account,
        "assets",
        f"{asset}/listContainerSas",
        {"permissions": permissions, "expiryTime": expiry},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["assetContainerSasUrls"][0])


def blob_url(container: str, name: str) -> str:
    parts = urlsplit(container)
    return urlunsplit((parts.scheme, parts.netloc, f"{parts.path}/{name}", parts.query, ""))


def upload(setup: MediaSetup, account: str, asset: str, name: str, data: bytes) -> None:
    """Put a blob into an asset's container with its SAS URL (from outside, as a user would)."""
    url = blob_url(container_url(setup, account, asset), name)
    with setup.srv.client() as client:
        r = client.put(
            url, content=data, headers={"x-ms-blob-type": "BlockBlob", "content-type": "video/mp4"}
        )
    assert r.status_code == 201, r.text


def asset_files(setup: MediaSetup, account: str, asset: str) -> list[str]:
    url = container_url(setup, account, asset, "Read")
    parts = urlsplit(url)
    with setup.srv.client() as client:
        r = client.get(
            urlunsplit(
                (parts.scheme, parts.netloc, parts.path, parts.query + "&restype=container&comp=list", "")
            )
        )
    assert r.status_code == 200, r.text
    return re.findall(r"<Name>([^<]+)</Name>", r.text)


def download(setup: MediaSetup, account: str, asset: str, name: str) -> bytes:
    with setup.srv.client() as client:
        r = client.get(blob_url(container_url(setup, account, asset, "Read"), name))
    assert r.status_code == 200, r.text
    return r.content


def job_body(input_asset: str, *outputs: str, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "input": {"@odata.type": "#Microsoft.Media.JobInputAsset", "assetName": input_asset},
        "outputs": [{"@odata.type": "#Microsoft.Media.JobOutputAsset", "assetName": o} for o in outputs],
    }
    props.update(extra)
    return {"properties": props}


def job(setup: MediaSetup, account: str, transform: str, name: str) -> dict[str, Any]:
    r = setup.child("GET", account, "transforms", f"{transform}/jobs/{name}", api=ENCODING_API)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_job(
    setup: MediaSetup, account: str, transform: str, name: str, timeout: float = 120
) -> dict[str, Any]:
    """The job once it is Finished, Error or Canceled."""

    def final() -> dict[str, Any] | None:
        found = job(setup, account, transform, name)
        return found if found["properties"]["state"] in FINAL else None

    return dict(wait_for(final, timeout=timeout, interval=0.3))
