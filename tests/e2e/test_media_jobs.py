"""Transforms and jobs that really encode (PyAV/FFmpeg): the input read from the input asset's
blobs and the outputs written to the output asset's blobs through the blob data plane as the
account, the job states, cancelJob, and every failure the issue names (raw ARM, as
azure-mgmt-media 10.x sends it)."""

from __future__ import annotations

import pytest

from tests.e2e.job_helpers import (
    ENCODING_API,
    asset_files,
    builtin,
    create_asset,
    create_transform,
    download,
    job,
    job_body,
    thumbnails_preset,
    upload,
    wait_job,
)
from tests.e2e.media_helpers import MediaSetup, assert_media_error, unique, wait_for
from tests.keyless_server import KeylessServer
from tests.media_clips import make_clip, probe

pytestmark = pytest.mark.slow


def _account_with_clip(srv: KeylessServer, seconds: float = 2.0) -> tuple[MediaSetup, str]:
    setup = MediaSetup(srv)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(seconds))
    return setup, account


def test_a_job_encodes_the_input_asset_into_mp4_and_thumbnails(media_server: KeylessServer) -> None:
    setup, account = _account_with_clip(media_server)
    made = create_transform(setup, account, "thumbs", thumbnails_preset())
    assert made["properties"]["outputs"][0]["onError"] == "StopProcessingJob"
    assert made["properties"]["outputs"][0]["relativePriority"] == "Normal"
    create_asset(setup, account, "output")
    r = setup.child(
        "PUT", account, "transforms", "thumbs/jobs/job1", job_body("input", "output"), api=ENCODING_API
    )
    assert r.status_code == 201, r.text
    created = r.json()["properties"]
    assert created["state"] == "Queued"
    assert created["input"]["files"] == [] and created["input"]["inputDefinitions"] == []
    assert created["outputs"][0]["state"] == "Queued" and created["outputs"][0]["progress"] == 0
    assert created["outputs"][0]["label"] == "StandardEncoderPreset_0"
    done = wait_job(setup, account, "thumbs", "job1")["properties"]
    assert done["state"] == "Finished", [o.get("error") for o in done["outputs"]]
    assert done["outputs"][0]["state"] == "Finished" and done["outputs"][0]["progress"] == 100
    assert done["startTime"] and done["endTime"] and done["endTime"] >= done["startTime"]
    files = asset_files(setup, account, "output")
    mp4s = [f for f in files if f.endswith(".mp4")]
    pngs = [f for f in files if f.endswith(".png")]
    assert mp4s and len(pngs) >= 2, files
    video = probe(download(setup, account, "output", mp4s[0]))
    assert video.video == (320, 240) and video.audio
    assert 1.5 <= video.seconds <= 2.5
    # The input asset is untouched.
    assert asset_files(setup, account, "input") == ["clip.mp4"]
    # `keyless up` printed the job's progress and how it ended.
    wait_for(
        lambda: f"Media job {account}/transforms/thumbs/jobs/job1: Finished" in media_server.log(), timeout=10
    )


def test_a_builtin_preset_and_a_clip_range(media_server: KeylessServer) -> None:
    setup, account = _account_with_clip(media_server, seconds=4.0)
    create_transform(setup, account, "hd", builtin("H264SingleBitrate720p"))
    create_asset(setup, account, "out720")
    body = job_body("input", "out720")
    body["properties"]["input"]["start"] = {
        "@odata.type": "#Microsoft.Media.AbsoluteClipTime",
        "time": "PT1S",
    }
    body["properties"]["input"]["end"] = {"@odata.type": "#Microsoft.Media.AbsoluteClipTime", "time": "PT3S"}
    r = setup.child("PUT", account, "transforms", "hd/jobs/clip", body, api=ENCODING_API)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["input"]["start"]["time"] == "PT1S"
    done = wait_job(setup, account, "hd", "clip")["properties"]
    assert done["state"] == "Finished", [o.get("error") for o in done["outputs"]]
    files = asset_files(setup, account, "out720")
    mp4s = [f for f in files if f.endswith(".mp4")]
    assert mp4s, files
    video = probe(download(setup, account, "out720", mp4s[0]))
    assert video.video is not None and video.video[1] == 720
    assert 1.5 <= video.seconds <= 2.5  # PT1S..PT3S of a 4 s clip


def test_an_unknown_preset_is_refused_and_nothing_is_created(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    body = {"properties": {"outputs": [{"preset": builtin("NoSuchPreset")}]}}
    r = setup.child("PUT", account, "transforms", "bad", body, api=ENCODING_API)
    assert_media_error(r, 400, "BadRequest")
    body = {"properties": {"outputs": [{"preset": {"@odata.type": "#Microsoft.Media.Nothing"}}]}}
    assert_media_error(
        setup.child("PUT", account, "transforms", "bad", body, api=ENCODING_API), 400, "BadRequest"
    )
    assert_media_error(
        setup.child("PUT", account, "transforms", "bad", {"properties": {}}, api=ENCODING_API),
        400,
        "BadRequest",
    )
    r = setup.child("GET", account, "transforms", "bad", api=ENCODING_API)
    assert_media_error(r, 404, "NotFound", "The requested resource was not found.")


def test_a_job_on_a_missing_asset_is_refused_and_nothing_is_queued(media_server: KeylessServer) -> None:
    setup, account = _account_with_clip(media_server)
    create_transform(setup, account, "t", builtin("AACGoodQualityAudio"))
    create_asset(setup, account, "out")
    r = setup.child("PUT", account, "transforms", "t/jobs/j", job_body("nope", "out"), api=ENCODING_API)
    assert_media_error(
        r, 400, "BadRequest", f"Asset 'nope' is not found under account '{account}' when creating job."
    )
    r = setup.child("PUT", account, "transforms", "t/jobs/j", job_body("input", "missing"), api=ENCODING_API)
    assert_media_error(r, 400, "BadRequest", "Asset 'missing' is not found")
    r = setup.child("PUT", account, "transforms", "nosuch/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert_media_error(r, 404, "NotFound", "The requested resource was not found.")
    assert setup.child("GET", account, "transforms", "t/jobs/j", api=ENCODING_API).status_code == 404
    listed = setup.child("GET", account, "transforms", "t/jobs", api=ENCODING_API)
    assert listed.status_code == 200 and listed.json()["value"] == []
    assert asset_files(setup, account, "out") == []


def test_an_input_that_is_not_media_ends_in_content_malformed(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "input")
    upload(setup, account, "input", "notes.mp4", b"this is not a video" * 100)
    create_transform(setup, account, "t", builtin("H264SingleBitrate720p"))
    create_asset(setup, account, "out")
    r = setup.child("PUT", account, "transforms", "t/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert r.status_code == 201, r.text
    done = wait_job(setup, account, "t", "j")["properties"]
    assert done["state"] == "Error"
    error = done["outputs"][0]["error"]
    assert error["code"] == "ContentMalformed" and error["category"] == "Content", error
    assert error["retry"] == "DoNotRetry" and error["message"]
    assert asset_files(setup, account, "out") == []


def test_an_empty_input_asset_ends_in_download_not_accessible(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "input")
    create_asset(setup, account, "out")
    create_transform(setup, account, "t", builtin("AACGoodQualityAudio"))
    r = setup.child("PUT", account, "transforms", "t/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert r.status_code == 201, r.text
    done = wait_job(setup, account, "t", "j")["properties"]
    assert done["state"] == "Error"
    assert done["outputs"][0]["error"]["code"] == "DownloadNotAccessible"


def test_cancel_update_and_delete_rules(media_server: KeylessServer) -> None:
    setup, account = _account_with_clip(media_server, seconds=20.0)
    create_transform(setup, account, "hd", builtin("H264SingleBitrate1080p"))
    create_asset(setup, account, "out")
    r = setup.child("PUT", account, "transforms", "hd/jobs/long", job_body("input", "out"), api=ENCODING_API)
    assert r.status_code == 201, r.text
    wait_for(lambda: job(setup, account, "hd", "long")["properties"]["state"] == "Processing", timeout=30)
    # Deleting a running job, or its transform, is refused (the recorded text) and deletes nothing.
    r = setup.child("DELETE", account, "transforms", "hd/jobs/long", api=ENCODING_API)
    message = assert_media_error(r, 400, "BadRequest", "The job Delete operation for '/subscriptions/")
    assert (
        f"/providers/Microsoft.Media/mediaservices/{account}/transforms/hd/jobs/long' resource failed."
        in message
    )
    r = setup.child("DELETE", account, "transforms", "hd", api=ENCODING_API)
    assert_media_error(r, 400, "BadRequest")
    assert setup.child("GET", account, "transforms", "hd", api=ENCODING_API).status_code == 200
    # PATCH: description and priority only.
    r = setup.child(
        "PATCH", account, "transforms", "hd/jobs/long", {"properties": {"priority": "High"}}, api=ENCODING_API
    )
    assert r.status_code == 200 and r.json()["properties"]["priority"] == "High", r.text
    r = setup.child(
        "PATCH", account, "transforms", "hd/jobs/long", {"properties": {"outputs": []}}, api=ENCODING_API
    )
    assert_media_error(r, 400, "BadRequest", "Update is only supported for description and priority")
    # cancelJob: 200, then Canceling/Canceled.
    r = setup.child("POST", account, "transforms", "hd/jobs/long/cancelJob", api=ENCODING_API)
    assert r.status_code == 200, r.text
    done = wait_job(setup, account, "hd", "long", timeout=30)["properties"]
    assert done["state"] == "Canceled", done
    assert done["outputs"][0]["state"] == "Canceled"
    assert setup.child("DELETE", account, "transforms", "hd/jobs/long", api=ENCODING_API).status_code == 200
    assert setup.child("DELETE", account, "transforms", "hd", api=ENCODING_API).status_code == 200


def test_jobs_list_filters_by_state(media_server: KeylessServer) -> None:
    setup, account = _account_with_clip(media_server)
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    for name in ("a1", "a2"):
        create_asset(setup, account, f"out-{name}")
        r = setup.child(
            "PUT",
            account,
            "transforms",
            f"audio/jobs/{name}",
            job_body("input", f"out-{name}"),
            api=ENCODING_API,
        )
        assert r.status_code == 201, r.text
    for name in ("a1", "a2"):
        assert wait_job(setup, account, "audio", name)["properties"]["state"] == "Finished"
    with media_server.arm() as arm:
        path = f"/subscriptions/{media_server.subscription_id}/resourceGroups/{setup.group}/providers/Microsoft.Media/mediaServices/{account}/transforms/audio/jobs"
        r = arm.get(
            path,
            params={
                "api-version": ENCODING_API,
                "$filter": "properties/state eq Microsoft.Media.JobState'finished'",
                "$orderby": "name desc",
            },
        )
        assert r.status_code == 200, r.text
        assert [j["name"] for j in r.json()["value"]] == ["a2", "a1"]
        r = arm.get(
            path,
            params={
                "api-version": ENCODING_API,
                "$filter": "properties/state eq Microsoft.Media.JobState'Processing'",
            },
        )
        assert r.json()["value"] == []
        r = arm.get(path, params={"api-version": ENCODING_API, "$filter": "properties/nothing eq 'x'"})
        assert_media_error(r, 400, "BadRequest")
