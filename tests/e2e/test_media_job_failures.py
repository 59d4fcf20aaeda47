"""How jobs fail, and what they leave: JobInputHttp (sealed, fetched as an outside caller), an
output asset the account cannot write, an account whose customer key is out of reach, and a
replica killed in the middle of a job (the lease runs out and the job is done again)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.e2e import storage_helpers as sth
from tests.e2e.job_helpers import (
    ENCODING_API,
    asset_files,
    builtin,
    container_url,
    create_asset,
    create_transform,
    download,
    job,
    job_body,
    upload,
    wait_job,
)
from tests.e2e.media_helpers import MediaSetup, assert_media_error, storage_id, unique, wait_for
from tests.keyless_server import KeylessServer
from tests.media_clips import make_clip, probe

pytestmark = pytest.mark.slow


def _http_job(base: str | None, files: list[str]) -> dict[str, object]:
    item: dict[str, object] = {"@odata.type": "#Microsoft.Media.JobInputHttp", "files": files}
    if base is not None:
        item["baseUri"] = base
    return {
        "properties": {
            "input": item,
            "outputs": [{"@odata.type": "#Microsoft.Media.JobOutputAsset", "assetName": "out"}],
        }
    }


def test_an_http_input_is_fetched_and_its_query_string_never_shown(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "source")
    upload(setup, account, "source", "talk.mp4", make_clip(2.0))
    sas = urlsplit(container_url(setup, account, "source", "Read"))
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    create_asset(setup, account, "out")
    body = _http_job(f"https://{sas.netloc}{sas.path}/", [f"talk.mp4?{sas.query}"])
    r = setup.child("PUT", account, "transforms", "audio/jobs/http", body, api=ENCODING_API)
    assert r.status_code == 201, r.text
    assert "sig=" not in r.text and "sv=" not in r.text
    assert r.json()["properties"]["input"]["files"] == ["talk.mp4"]
    done = wait_job(setup, account, "audio", "http")["properties"]
    assert done["state"] == "Finished", [o.get("error") for o in done["outputs"]]
    for shown in (
        job(setup, account, "audio", "http"),
        setup.child("GET", account, "transforms", "audio/jobs", api=ENCODING_API).json(),
    ):
        assert "sig=" not in str(shown)
    files = asset_files(setup, account, "out")
    (audio,) = [f for f in files if f.endswith(".mp4")]
    assert probe(download(setup, account, "out", audio)).audio


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:9/clip.mp4?sig=topsecret",  # loopback: never fetched
        "https://169.254.169.254/metadata/clip.mp4?sig=topsecret",  # link-local (IMDS)
        "http://example.invalid/clip.mp4?sig=topsecret",  # plain http to the internet: https only
    ],
)
def test_an_http_input_out_of_reach_ends_in_download_not_accessible(
    media_server: KeylessServer, url: str
) -> None:
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    create_asset(setup, account, "out")
    r = setup.child("PUT", account, "transforms", "audio/jobs/j", _http_job(None, [url]), api=ENCODING_API)
    assert r.status_code == 201, r.text
    done = wait_job(setup, account, "audio", "j")["properties"]
    assert done["state"] == "Error"
    error = done["outputs"][0]["error"]
    assert (error["code"], error["category"]) == ("DownloadNotAccessible", "Download"), error
    assert "topsecret" not in str(done)  # the query string is never shown, errors included
    assert asset_files(setup, account, "out") == []


def test_an_output_asset_the_account_cannot_write_ends_in_upload_not_accessible(
    media_server: KeylessServer,
) -> None:
    srv = media_server
    setup = MediaSetup(srv)
    second = sth.account_name("stout")
    sth.create_account(srv, setup.group, second)
    account = unique("ams")
    body = setup.account_body()
    body["properties"]["storageAccounts"].append(
        {"id": storage_id(srv, setup.group, second), "type": "Secondary"}
    )
    r = setup.put_account(account, body)
    assert r.status_code == 201, r.text
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(2.0))
    r = setup.child("PUT", account, "assets", "out", {"properties": {"storageAccountName": second}})
    assert r.status_code == 201, r.text
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    # The second storage account now shuts everyone out, Media Services (storage key) included.
    sth.update_account(srv, setup.group, second, {"networkAcls": {"defaultAction": "Deny", "bypass": "None"}})
    r = setup.child("PUT", account, "transforms", "audio/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert r.status_code == 201, r.text
    done = wait_job(setup, account, "audio", "j")["properties"]
    assert done["state"] == "Error"
    error = done["outputs"][0]["error"]
    assert (error["code"], error["category"]) == ("UploadNotAccessible", "Upload"), error
    assert "AuthorizationFailure" in error["message"]
    assert asset_files(setup, account, "input") == ["clip.mp4"]


def test_no_job_while_the_customer_key_is_out_of_reach(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server, vault=True)
    account = unique("ams")
    made = setup.create_account(account)
    principal = made["identity"]["principalId"]
    setup.grant_key_access(principal)
    cmk = {"encryption": {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": setup.key_id}}}
    assert setup.patch_account(account, {"properties": cmk}).status_code == 202
    create_asset(setup, account, "input")
    create_asset(setup, account, "out")
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    setup.revoke_key_access(principal)
    wait_for(lambda: setup.child("GET", account, "assets", "input").status_code == 400)
    r = setup.child("PUT", account, "transforms", "audio/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert_media_error(r, 400, "BadRequest", "Access to the Customer Key was forbidden.")
    setup.grant_key_access(principal)
    wait_for(lambda: setup.child("GET", account, "assets", "input").status_code == 200)
    assert setup.child("GET", account, "transforms", "audio/jobs/j", api=ENCODING_API).status_code == 404


def test_a_job_survives_the_replica_that_ran_it(new_server: Callable[..., KeylessServer]) -> None:
    """kill -9 in the middle of an encode: the job's lease runs out, the next replica (here the
    restarted one) claims it and does it again; the output holds one encoding, not two."""
    srv = new_server({"KEYLESS_MEDIA_JOB_POLL_INTERVAL": "0.2", "KEYLESS_MEDIA_JOB_LEASE": "3"})
    setup = MediaSetup(srv)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(12.0))
    create_transform(setup, account, "hd", builtin("H264SingleBitrate1080p"))
    create_asset(setup, account, "out")
    r = setup.child("PUT", account, "transforms", "hd/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert r.status_code == 201, r.text
    wait_for(lambda: job(setup, account, "hd", "j")["properties"]["state"] == "Processing", timeout=60)
    srv.kill9()
    srv.start()
    assert job(setup, account, "hd", "j")["properties"]["state"] in ("Processing", "Scheduled", "Queued")
    done = wait_job(setup, account, "hd", "j", timeout=240)["properties"]
    assert done["state"] == "Finished", [o.get("error") for o in done["outputs"]]
    mp4s = [f for f in asset_files(setup, account, "out") if f.endswith(".mp4")]
    assert len(mp4s) == 1
    video = probe(download(setup, account, "out", mp4s[0]))
    assert video.video is not None and video.video[1] == 1080 and 11.5 <= video.seconds <= 12.5


def test_an_encode_past_its_time_is_stopped(new_server: Callable[..., KeylessServer]) -> None:
    # 5 s: far less than the multi-bitrate 1080p encode of 12 s takes, far more than the AAC one.
    srv = new_server({"KEYLESS_MEDIA_JOB_POLL_INTERVAL": "0.2", "KEYLESS_MEDIA_ENCODE_TIMEOUT": "5"})
    setup = MediaSetup(srv)
    account = unique("ams")
    setup.create_account(account)
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(12.0))
    create_transform(setup, account, "hd", builtin("H264MultipleBitrate1080p"))
    create_asset(setup, account, "out")
    r = setup.child("PUT", account, "transforms", "hd/jobs/j", job_body("input", "out"), api=ENCODING_API)
    assert r.status_code == 201, r.text
    done = wait_job(setup, account, "hd", "j", timeout=60)["properties"]
    assert done["state"] == "Error"
    error = done["outputs"][0]["error"]
    assert error["code"] == "ServiceError" and "did not finish within 5 s" in error["message"], error
    assert asset_files(setup, account, "out") == []
    # The worker is free again: the next job runs.
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    create_asset(setup, account, "out2")
    r = setup.child(
        "PUT", account, "transforms", "audio/jobs/j2", job_body("input", "out2"), api=ENCODING_API
    )
    assert r.status_code == 201, r.text
    assert wait_job(setup, account, "audio", "j2", timeout=60)["properties"]["state"] == "Finished"
