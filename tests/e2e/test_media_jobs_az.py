"""The real az CLI's `az ams` transforms, jobs and streaming endpoints against Keyless (issue 12),
as the Media Services CLI tutorials use them, every step through az itself under `keyless run`:

- ``az ams transform create --preset <built-in | ./preset.json>``, ``show/list/update``,
  ``output add/remove``, ``delete``; an unknown preset (az refuses it before sending anything).
- ``az ams job start`` from an asset (waited for with ``az ams job show``) and from a blob SAS URL
  (JobInputHttp: the query strings are not echoed), ``list/show/update/cancel/delete``, and the
  errors az prints: a missing asset, a running job's delete, a missing job (exit 3).
- ``az ams streaming-endpoint list/show/start/stop/scale``, ``az ams streaming-locator create
  --streaming-policy-name Predefined_DownloadOnly`` and ``get-paths``; the file fetched from the
  endpoint's host as a player would.

az 2.91 pins azure-mgmt-media 9.0.0: transforms, jobs, assets, locators and streaming endpoints at
api-version 2021-11-01 (shared/reference/media-jobs.md §3). az prints service errors as
``ERROR: (Code) Message`` with exit code 1, and a 404 with exit code 3; its own argument checks
(CLIError) exit 1 with ``ERROR: <text>`` and send nothing. Content goes in and out through the
asset's SAS URLs (``az ams asset get-sas-urls``) with httpx through Keyless's proxy, as a user's
tool would. Test media is synthesized (tests/media_clips.py).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.media_helpers import wait_for
from tests.e2e.test_az_cli import Az, az_bin  # noqa: F401 (the az_bin fixture)
from tests.keyless_server import KeylessServer
from tests.media_clips import make_clip, probe

pytestmark = pytest.mark.slow

BUILTIN = "#Microsoft.Media.BuiltInStandardEncoderPreset"
FINAL = ("Finished", "Error", "Canceled")
NOT_FOUND = "(NotFound) The requested resource was not found."


def _custom_preset() -> dict[str, Any]:
    """A StandardEncoderPreset file as the docs' custom-preset tutorial writes it (camelCase keys,
    ``@odata.type``): AAC, one small H.264 layer, MP4 output."""
    return {
        "@odata.type": "#Microsoft.Media.StandardEncoderPreset",
        "codecs": [
            {"@odata.type": "#Microsoft.Media.AacAudio", "channels": 2, "samplingRate": 48000, "bitrate": 128000},
            {
                "@odata.type": "#Microsoft.Media.H264Video",
                "keyFrameInterval": "PT2S",
                "complexity": "Speed",
                "layers": [
                    {"@odata.type": "#Microsoft.Media.H264Layer", "bitrate": 300000, "width": "256",
                     "height": "192", "label": "SD"},
                ],
            },
        ],
        "formats": [{"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "Video-{Basename}-{Label}{Extension}"}],
    }  # fmt: skip


@pytest.fixture(scope="module")
def az(
    media_server: KeylessServer,
    az_bin: Path,  # noqa: F811 (the fixture)
    tmp_path_factory: pytest.TempPathFactory,
) -> Az:
    """az signed in as the admin (a service principal), as test_media_az.py does."""
    runner = Az(media_server, az_bin, tmp_path_factory.mktemp("home-media-jobs"))
    runner.run("login", "--service-principal", "-u", "$AZURE_CLIENT_ID", "--password=$AZURE_CLIENT_SECRET",
               "--tenant", "$AZURE_TENANT_ID")  # fmt: skip
    return runner


@dataclass(frozen=True)
class Account:
    """A Media Services account made with az, with an asset ``input`` holding ``clip.mp4``."""

    group: str
    storage: str
    name: str

    @property
    def where(self) -> tuple[str, str, str, str]:
        return ("-a", self.name, "-g", self.group)


def _suffix() -> str:
    return uuid.uuid4().hex[:10]


def _fails(az: Az, *args: str, code: int = 1) -> str:
    """Run a command that must fail with ``code``; its stderr."""
    done = az.run(*args, ok=False)
    assert done.returncode == code, f"az {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stderr


def _container_url(az: Az, account: Account, asset: str, permissions: str = "Read") -> str:
    urls = az.json("ams", "asset", "get-sas-urls", *account.where, "-n", asset, "--permissions", permissions)
    assert urls and all("?" in u for u in urls), urls
    return str(urls[0])


def _blob_url(container: str, blob: str) -> str:
    parts = urlsplit(container)
    return urlunsplit((parts.scheme, parts.netloc, f"{parts.path}/{blob}", parts.query, ""))


def _upload(az: Az, srv: KeylessServer, account: Account, asset: str, blob: str, data: bytes) -> None:
    """Put a blob into the asset's container with its ReadWrite SAS URL, from outside."""
    url = _blob_url(_container_url(az, account, asset, "ReadWrite"), blob)
    with srv.client() as http:
        r = http.put(url, content=data, headers={"x-ms-blob-type": "BlockBlob", "content-type": "video/mp4"})
    assert r.status_code == 201, r.text


def _files(az: Az, srv: KeylessServer, account: Account, asset: str) -> dict[str, bytes]:
    """Every blob in the asset's container, read with its Read SAS URL."""
    container = _container_url(az, account, asset)
    with srv.client() as http:
        listing = http.get(container + "&restype=container&comp=list")  # params= would replace the SAS
        assert listing.status_code == 200, listing.text
        names = re.findall(r"<Name>([^<]+)</Name>", listing.text)
        found = {}
        for name in names:
            r = http.get(_blob_url(container, name))
            assert r.status_code == 200, r.text
            found[name] = r.content
    return found


def _job(az: Az, account: Account, transform: str, name: str) -> dict[str, Any]:
    return dict(az.json("ams", "job", "show", *account.where, "-t", transform, "-n", name))


def _wait_job(
    az: Az, account: Account, transform: str, name: str, *states: str, timeout: float = 180
) -> dict[str, Any]:
    """``az ams job show`` until the job is in one of ``states`` (default: a final one)."""
    wanted = states or FINAL

    def reached() -> dict[str, Any] | None:
        job = _job(az, account, transform, name)
        return job if job["state"] in wanted else None

    return dict(wait_for(reached, timeout=timeout, interval=1.0))


@pytest.fixture(scope="module")
def account(az: Az, media_server: KeylessServer) -> Account:
    """A group, a storage account and a Media Services account made with az, as the tutorials do,
    and an input asset holding a 2 s clip uploaded through its SAS URL."""
    suffix = _suffix()
    made = Account(f"rgamsjobs{suffix}", f"stamsj{suffix}", f"amsj{suffix}")
    az.run("group", "create", "-n", made.group, "-l", "westeurope", "-o", "none")
    az.run("storage", "account", "create", "-n", made.storage, "-g", made.group, "-l", "westeurope",
           "--sku", "Standard_LRS", "-o", "none")  # fmt: skip
    az.run("ams", "account", "create", "-n", made.name, "-g", made.group, "-l", "westeurope",
           "--storage-account", made.storage, "-o", "none")  # fmt: skip
    az.run("ams", "asset", "create", *made.where, "-n", "input", "-o", "none")
    _upload(az, media_server, made, "input", "clip.mp4", make_clip(2.0))
    return made


def test_transforms_with_built_in_and_custom_presets(az: Az, account: Account, tmp_path: Path) -> None:
    transform = ("ams", "transform")
    created = az.json(*transform, "create", *account.where, "-n", "adaptive", "--preset", "AdaptiveStreaming",
                      "--description", "tutorial")  # fmt: skip
    assert created["name"] == "adaptive" and created["description"] == "tutorial"
    assert created["type"] == "Microsoft.Media/mediaservices/transforms"
    [output] = created["outputs"]
    assert output["preset"] == {
        "odataType": BUILTIN,
        "presetName": "AdaptiveStreaming",
        "configurations": None,
    }
    assert (output["onError"], output["relativePriority"]) == ("StopProcessingJob", "Normal")
    assert created["created"] == created["lastModified"]
    shown = az.json(*transform, "show", *account.where, "-n", "adaptive")
    assert shown["outputs"] == created["outputs"] and shown["id"] == created["id"]
    assert "adaptive" in [t["name"] for t in az.json(*transform, "list", *account.where)]

    # update: GET, then PUT with the description and the outputs (not a PATCH).
    updated = az.json(*transform, "update", *account.where, "-n", "adaptive", "--description", "changed")
    assert updated["description"] == "changed" and updated["outputs"] == created["outputs"]
    assert updated["created"] == created["created"] and updated["lastModified"] >= created["lastModified"]

    # output add: a second built-in preset, then a custom preset file.
    added = az.json(*transform, "output", "add", *account.where, "-n", "adaptive", "--preset",
                    "H264SingleBitrate720p", "--relative-priority", "High", "--on-error", "ContinueJob")  # fmt: skip
    assert [o["preset"]["presetName"] for o in added["outputs"]] == [
        "AdaptiveStreaming",
        "H264SingleBitrate720p",
    ]
    assert (added["outputs"][1]["onError"], added["outputs"][1]["relativePriority"]) == (
        "ContinueJob",
        "High",
    )
    # az's PUT for `output add` carries only the outputs: the description is lost (recorded).
    assert added["description"] is None
    preset_file = tmp_path / "preset.json"
    preset_file.write_text(json.dumps(_custom_preset()))
    custom = az.json(
        *transform, "output", "add", *account.where, "-n", "adaptive", "--preset", str(preset_file)
    )
    preset = custom["outputs"][2]["preset"]
    assert preset["odataType"] == "#Microsoft.Media.StandardEncoderPreset"
    video = next(c for c in preset["codecs"] if c["odataType"] == "#Microsoft.Media.H264Video")
    # The service's normalisation of a custom preset (media-jobs.md "Echo of presets").
    assert video["syncMode"] == "Auto" and video["complexity"] == "Speed"
    [layer] = video["layers"]
    assert (layer["bitrate"], layer["width"], layer["height"], layer["label"]) == (300000, "256", "192", "SD")
    assert layer["crf"] == 23
    assert preset["formats"][0]["filenamePattern"] == "Video-{Basename}-{Label}{Extension}"

    # output remove: by index; the others stay in order.
    removed = az.json(*transform, "output", "remove", *account.where, "-n", "adaptive", "--output-index", "1")
    assert [o["preset"]["odataType"] for o in removed["outputs"]] == [
        BUILTIN,
        "#Microsoft.Media.StandardEncoderPreset",
    ]
    assert az.json(*transform, "show", *account.where, "-n", "adaptive")["outputs"] == removed["outputs"]
    stderr = _fails(
        az, *transform, "output", "remove", *account.where, "-n", "adaptive", "--output-index", "5"
    )
    assert "index 5 doesn't exist on outputs" in stderr

    audio = az.json(*transform, "create", *account.where, "-n", "audio", "--preset", "AACGoodQualityAudio")
    assert audio["outputs"][0]["preset"]["presetName"] == "AACGoodQualityAudio"
    assert audio.get("description") is None

    # An unknown preset: az refuses it itself and sends nothing; nothing is created.
    stderr = _fails(az, *transform, "create", *account.where, "-n", "bad", "--preset", "NoSuchPreset")
    assert "ERROR: Couldn't create a preset from 'NoSuchPreset'" in stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    stderr = _fails(az, *transform, "create", *account.where, "-n", "bad", "--preset", str(broken))
    # az's bare except re-wraps the file's own error: the same text as for an unknown name.
    assert f"ERROR: Couldn't create a preset from '{broken}'" in stderr
    # A well-formed file the service refuses: az prints Keyless's 400.
    invalid = _custom_preset()
    invalid["codecs"][1]["layers"][0]["bitrate"] = -1
    bad_file = tmp_path / "invalid.json"
    bad_file.write_text(json.dumps(invalid))
    stderr = _fails(az, *transform, "create", *account.where, "-n", "bad", "--preset", str(bad_file))
    assert "ERROR: (BadRequest) " in stderr and "bitrate" in stderr
    assert NOT_FOUND in _fails(az, *transform, "show", *account.where, "-n", "bad", code=3)

    az.run(*transform, "delete", *account.where, "-n", "adaptive")
    assert NOT_FOUND in _fails(az, *transform, "show", *account.where, "-n", "adaptive", code=3)
    assert [t["name"] for t in az.json(*transform, "list", *account.where)] == ["audio"]
    az.run(*transform, "delete", *account.where, "-n", "audio")


def test_a_job_from_an_asset_published_through_a_streaming_endpoint(
    az: Az, account: Account, media_server: KeylessServer
) -> None:
    az.run(
        "ams",
        "transform",
        "create",
        *account.where,
        "-n",
        "ladder",
        "--preset",
        "AdaptiveStreaming",
        "-o",
        "none",
    )
    az.run("ams", "asset", "create", *account.where, "-n", "out1", "-o", "none")
    started = az.json("ams", "job", "start", *account.where, "-t", "ladder", "-n", "job1",
                      "--input-asset-name", "input", "--output-assets", "out1=", "--priority", "Low",
                      "--description", "first", "--correlation-data", "tenant=contoso")  # fmt: skip
    assert started["type"] == "Microsoft.Media/mediaservices/transforms/jobs"
    assert started["state"] in ("Queued", "Scheduled", "Processing")
    assert started["input"]["odataType"] == "#Microsoft.Media.JobInputAsset"
    assert started["input"]["assetName"] == "input"
    [out] = started["outputs"]
    # `out1=` sends label "": Keyless answers the default label, "{preset}_{index}" (spec
    # JobOutput.label; what Azure does with an empty label is not recorded).
    assert (out["assetName"], out["label"]) == ("out1", "BuiltInStandardEncoderPreset_0")
    assert (started["priority"], started["description"]) == ("Low", "first")
    assert started["correlationData"] == {"tenant": "contoso"}

    done = _wait_job(az, account, "ladder", "job1")
    assert done["state"] == "Finished", done["outputs"]
    assert done["outputs"][0]["state"] == "Finished" and done["outputs"][0]["progress"] == 100
    assert done["startTime"] and done["endTime"] >= done["startTime"]

    files = _files(az, media_server, account, "out1")
    mp4s = sorted(n for n in files if n.endswith(".mp4"))
    assert mp4s and any(n.endswith(".ism") for n in files), sorted(files)
    # AdaptiveStreaming never exceeds the input (240 lines): the 180-line rung, AAC alongside.
    clip = probe(files[mp4s[0]])
    assert clip.video is not None and clip.video[1] <= 240 and clip.audio
    assert 1.5 <= clip.seconds <= 2.5

    jobs = ("ams", "job")
    assert [j["name"] for j in az.json(*jobs, "list", *account.where, "-t", "ladder")] == ["job1"]
    finished = az.json(*jobs, "list", *account.where, "-t", "ladder",
                       "--filter", "properties/state eq Microsoft.Media.JobState'Finished'")  # fmt: skip
    assert [j["name"] for j in finished] == ["job1"]
    processing = az.json(*jobs, "list", *account.where, "-t", "ladder",
                         "--filter", "properties/state eq Microsoft.Media.JobState'Processing'")  # fmt: skip
    assert processing == []
    # update: GET, then PATCH of the whole job; only description and priority change.
    updated = az.json(*jobs, "update", *account.where, "-t", "ladder", "-n", "job1", "--priority", "High",
                      "--description", "second")  # fmt: skip
    assert (updated["priority"], updated["description"], updated["state"]) == ("High", "second", "Finished")
    assert updated["outputs"][0]["assetName"] == "out1"
    assert _job(az, account, "ladder", "job1")["description"] == "second"

    # Streaming endpoints: the account's default one, Stopped until started.
    endpoints = ("ams", "streaming-endpoint")
    [default] = az.json(*endpoints, "list", *account.where)
    assert default["name"] == "default" and default["resourceState"] == "Stopped"
    host = default["hostName"]
    assert host == f"{account.name}-westeurope.streaming.media.azure.net"
    assert az.json(*endpoints, "show", *account.where, "-n", "default")["hostName"] == host
    locator = az.json("ams", "streaming-locator", "create", *account.where, "-n", "dl", "--asset-name", "out1",
                      "--streaming-policy-name", "Predefined_DownloadOnly")  # fmt: skip
    assert locator["assetName"] == "out1" and locator["streamingPolicyName"] == "Predefined_DownloadOnly"
    get_paths = ("ams", "streaming-locator", "get-paths", *account.where, "-n", "dl")
    assert az.json(*get_paths) == {
        "streamingPaths": [],
        "downloadPaths": [],
    }  # no endpoint running (a choice)

    running = az.json(*endpoints, "start", *account.where, "-n", "default")
    assert running["resourceState"] == "Running" and running["provisioningState"] == "Succeeded"
    paths = az.json(*get_paths)
    assert paths["streamingPaths"] == []
    download = f"/{locator['streamingLocatorId']}/{mp4s[0]}"
    assert download in paths["downloadPaths"], paths
    assert not any(p.endswith(".ism") for p in paths["downloadPaths"])
    with media_server.client() as http:
        r = http.get(f"https://{host}{download}")
    assert r.status_code == 200, r.text
    assert r.content == files[mp4s[0]]

    az.run(*endpoints, "scale", *account.where, "-n", "default", "--scale-units", "1", "-o", "none")
    scaled = az.json(*endpoints, "show", *account.where, "-n", "default")
    assert scaled["scaleUnits"] == 1 and scaled["sku"] == {"name": "Premium", "capacity": 1}
    assert scaled["resourceState"] == "Running"
    stopped = az.json(*endpoints, "stop", *account.where, "-n", "default")
    assert stopped["resourceState"] == "Stopped" and stopped["scaleUnits"] == 1
    with media_server.client() as http:
        assert http.get(f"https://{host}{download}").status_code == 404

    # A finished job deletes; then az shows it as missing (exit 3).
    az.run(*jobs, "delete", *account.where, "-t", "ladder", "-n", "job1")
    assert NOT_FOUND in _fails(az, *jobs, "show", *account.where, "-t", "ladder", "-n", "job1", code=3)
    assert az.json(*jobs, "list", *account.where, "-t", "ladder") == []


def test_a_job_from_a_blob_sas_url(az: Az, account: Account, media_server: KeylessServer) -> None:
    az.run(
        "ams",
        "transform",
        "create",
        *account.where,
        "-n",
        "aac",
        "--preset",
        "AACGoodQualityAudio",
        "-o",
        "none",
    )
    az.run("ams", "asset", "create", *account.where, "-n", "outhttp", "-o", "none")
    container = _container_url(az, account, "input")
    base, _, sas = container.partition("?")
    assert "sig=" in sas
    started = az.json("ams", "job", "start", *account.where, "-t", "aac", "-n", "fromhttp",
                      "--base-uri", base + "/", "--files", f"clip.mp4?{sas}", "--output-assets", "outhttp=audio")  # fmt: skip
    source = started["input"]
    assert source["odataType"] == "#Microsoft.Media.JobInputHttp"
    # "Query strings will not be returned in service responses" (spec JobInputHttp).
    assert (source["baseUri"], source["files"]) == (base + "/", ["clip.mp4"])
    assert "sig=" not in json.dumps(started)
    done = _wait_job(az, account, "aac", "fromhttp")
    assert done["state"] == "Finished", done["outputs"]
    assert done["input"] == source and "sig=" not in json.dumps(done)
    files = _files(az, media_server, account, "outhttp")
    [name] = [n for n in files if n.endswith(".mp4")]
    sound = probe(files[name])
    assert sound.video is None and sound.audio and 1.5 <= sound.seconds <= 2.5

    # Neither an input asset nor both --base-uri and --files: az refuses before sending anything.
    stderr = _fails(az, "ams", "job", "start", *account.where, "-t", "aac", "-n", "nothing",
                    "--files", "clip.mp4", "--output-assets", "outhttp=")  # fmt: skip
    assert "Missing required arguments." in stderr
    assert NOT_FOUND in _fails(az, "ams", "job", "show", *account.where, "-t", "aac", "-n", "nothing", code=3)


def test_job_errors_as_az_prints_them(az: Az, account: Account, media_server: KeylessServer) -> None:
    jobs = ("ams", "job")
    az.run(
        "ams",
        "transform",
        "create",
        *account.where,
        "-n",
        "hd",
        "--preset",
        "H264SingleBitrate1080p",
        "-o",
        "none",
    )
    az.run("ams", "asset", "create", *account.where, "-n", "outhd", "-o", "none")

    # A missing input asset, a missing output asset: 400, nothing queued.
    stderr = _fails(az, *jobs, "start", *account.where, "-t", "hd", "-n", "j0", "--input-asset-name", "nope",
                    "--output-assets", "outhd=")  # fmt: skip
    assert (
        f"ERROR: (BadRequest) Asset 'nope' is not found under account '{account.name}' when creating job."
        in stderr
    )
    stderr = _fails(az, *jobs, "start", *account.where, "-t", "hd", "-n", "j0", "--input-asset-name", "input",
                    "--output-assets", "missing=")  # fmt: skip
    assert "ERROR: (BadRequest) Asset 'missing' is not found" in stderr
    # A missing transform: a 404, which az's ams exception handler turns into exit code 1 (only
    # `show` commands exit 3 on a 404).
    stderr = _fails(az, *jobs, "start", *account.where, "-t", "nosuch", "-n", "j0", "--input-asset-name", "input",
                    "--output-assets", "outhd=")  # fmt: skip
    assert "not found" in stderr
    # A missing job: 404, exit 3.
    assert NOT_FOUND in _fails(az, *jobs, "show", *account.where, "-t", "hd", "-n", "j0", code=3)
    assert az.json(*jobs, "list", *account.where, "-t", "hd") == []

    # A running job: delete refused with the recorded text, update and cancel work.
    az.run("ams", "asset", "create", *account.where, "-n", "long", "-o", "none")
    _upload(az, media_server, account, "long", "long.mp4", make_clip(20.0))
    az.run(*jobs, "start", *account.where, "-t", "hd", "-n", "long", "--input-asset-name", "long",
           "--output-assets", "outhd=", "-o", "none")  # fmt: skip
    _wait_job(az, account, "hd", "long", "Processing", timeout=60)
    stderr = _fails(az, *jobs, "delete", *account.where, "-t", "hd", "-n", "long")
    job_id = (
        f"/subscriptions/{media_server.subscription_id}/resourceGroups/{account.group}/providers/"
        f"Microsoft.Media/mediaservices/{account.name}/transforms/hd/jobs/long"
    )
    # The recorded text names the job by its id (lower-case `mediaservices`).
    recorded = (
        r"ERROR: \(BadRequest\) The job Delete operation for '{}' resource failed\. The job is in the "
        r"'Processing' state\. Cancel the job or retry after the processing completes\."
    )
    assert re.search(recorded.format(re.escape(job_id)), stderr), stderr
    stderr = _fails(az, "ams", "transform", "delete", *account.where, "-n", "hd")
    assert "ERROR: (BadRequest) " in stderr
    updated = az.json(*jobs, "update", *account.where, "-t", "hd", "-n", "long", "--priority", "High",
                      "--description", "urgent")  # fmt: skip
    assert (updated["priority"], updated["description"]) == ("High", "urgent")
    assert updated["state"] in ("Processing", "Finished")
    az.run(*jobs, "cancel", *account.where, "-t", "hd", "-n", "long")
    canceled = _wait_job(az, account, "hd", "long", timeout=60)
    assert canceled["state"] == "Canceled" and canceled["outputs"][0]["state"] == "Canceled"
    az.run(*jobs, "delete", *account.where, "-t", "hd", "-n", "long")
    assert NOT_FOUND in _fails(az, *jobs, "show", *account.where, "-t", "hd", "-n", "long", code=3)
    az.run("ams", "transform", "delete", *account.where, "-n", "hd")
