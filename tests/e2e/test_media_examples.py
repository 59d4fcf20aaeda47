"""The scenario programs in examples/ run as written under `keyless run`, as the README walks them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.arm_helpers import create_group
from tests.e2e.media_helpers import unique
from tests.e2e.workload_helpers import cli_ok, program, run_json
from tests.keyless_server import KeylessServer
from tests.media_clips import probe

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _run(srv: KeylessServer, script: str, *args: str) -> str:
    done = srv.cli("run", "--", sys.executable, str(ROOT / "examples" / script), *args, timeout=600)
    assert done.returncode == 0, f"{script}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_storage_behind_a_firewall_example(media_server: KeylessServer) -> None:
    group = unique("rg-ex-")
    with media_server.arm() as arm:
        create_group(arm, media_server, group)
    out = _run(media_server, "media_storage.py", group, unique("stfw"), unique("amsfw"))
    assert "storageAuthentication=ManagedIdentity" in out
    assert "container asset-" in out
    assert "upload from outside the firewall: refused (AuthorizationFailure)" in out
    assert "storageAuthentication System: refused (BadRequest: Storage account cannot be accessed.)" in out


def test_customer_managed_key_example(media_server: KeylessServer) -> None:
    group = unique("rg-ex-")
    with media_server.arm() as arm:
        create_group(arm, media_server, group)
    out = _run(media_server, "media_cmk.py", group, unique("kvex")[:20], unique("stcmk"), unique("amscmk"))
    lines = out.splitlines()
    assert lines[0].startswith("encryption=CustomerKey current=https://") and "/keys/cmk/" in lines[0]
    assert lines[1].startswith("rotated: current=https://") and lines[1].endswith(
        "content key unchanged=True"
    )
    assert lines[1].split()[1] != lines[0].split()[1]  # the version moved
    assert lines[2] == "key disabled: refused, account still readable=True"
    assert lines[3] == "key enabled: recovered, content key unchanged=True"


TRANSFORM_ATTEMPT = """
import json
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.media import AzureMediaServices, models
sub, group, account = json.loads(DATA)
media = AzureMediaServices(ManagedIdentityCredential(), sub)
preset = models.BuiltInStandardEncoderPreset(preset_name="AACGoodQualityAudio")
try:
    media.transforms.create_or_update(group, account, "mine", models.Transform(outputs=[models.TransformOutput(preset=preset)]))
    print(json.dumps({"code": None}))
except HttpResponseError as exc:
    print(json.dumps({"code": exc.error.code}))
"""


def _run_as(srv: KeylessServer, who: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return srv.cli(
        "run", "--as", who, "--", sys.executable, str(ROOT / "examples" / script), *args, timeout=600
    )


def test_workloads_calling_media_services_example(media_server: KeylessServer, tmp_path: Path) -> None:
    """Scenario 3 with scenarios 1 and 2 underneath: a VM with Media Services Media Operator runs a
    job that really encodes, in an account with a customer-managed key and storage behind a
    firewall; a Function app with no role is refused; neither may read content keys."""
    srv = media_server
    group, vm, fn = unique("rg-ex-"), unique("vm"), unique("fn")
    account = unique("amsjobs")
    with srv.arm() as arm:
        create_group(arm, srv, group)
    cli_ok(srv, "vm", "create", "-g", group, "-n", vm, "--assign-identity", "--public-ip", "20.30.40.77")
    cli_ok(srv, "functionapp", "create", "-g", group, "-n", fn, "--assign-identity")
    out = _run(
        srv, "media_platform.py", group, unique("stjobs"), unique("kvjobs")[:20], account, vm, "20.30.40.77"
    )
    assert f"account {account}: encryption=CustomerKey storage=ManagedIdentity" in out
    clip = tmp_path / "clip.mp4"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_clip.py"), str(clip), "3"], check=True)

    sub = srv.subscription_id
    done = _run_as(srv, vm, "media_jobs.py", sub, group, account, str(clip), str(tmp_path / "out"))
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "job job-" in done.stdout and ": Finished" in done.stdout
    assert "listContentKeys: refused (AuthorizationFailed)" in done.stdout
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    mp4s = [f for f in files if f.endswith(".mp4")]
    assert mp4s and len([f for f in files if f.endswith(".png")]) >= 2, files
    video = probe(tmp_path / "out" / mp4s[0])
    assert video.video == (1280, 720) and video.audio and 2.5 <= video.seconds <= 3.5

    # The administrator starts the streaming endpoint: the published MP4 plays from its URL.
    assert "no download URL yet: streaming endpoint 'default' is Stopped" in done.stdout
    locator = done.stdout.split("published as streaming locator ", 1)[1].split()[0]
    account_path = (
        f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Media/mediaservices/{account}"
    )
    with srv.arm() as arm:
        started = arm.post(
            f"{account_path}/streamingEndpoints/default/start", params={"api-version": "2022-08-01"}
        )
        assert started.status_code in (200, 202), started.text
        paths = arm.post(
            f"{account_path}/streamingLocators/{locator}/listPaths", params={"api-version": "2022-08-01"}
        )
        host = arm.get(f"{account_path}/streamingEndpoints/default", params={"api-version": "2022-08-01"})
    (mp4_path,) = [p for p in paths.json()["downloadPaths"] if p.endswith(".mp4")]
    with srv.client() as client:
        played = client.get(f"https://{host.json()['properties']['hostName']}{mp4_path}")
    assert played.status_code == 200 and played.headers["content-type"] == "video/mp4"
    assert played.content == (tmp_path / "out" / mp4s[0]).read_bytes()

    # Media Operator runs jobs but cannot make transforms (transforms/write is not among its actions).
    attempt = run_json(srv, program(TRANSFORM_ATTEMPT, [sub, group, account]), "--as", vm)
    assert attempt == {"code": "AuthorizationFailed"}

    refused = _run_as(srv, fn, "media_jobs.py", sub, group, account, str(clip), str(tmp_path / "out-fn"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused: AuthorizationFailed" in refused.stderr
    assert not (tmp_path / "out-fn").exists()
