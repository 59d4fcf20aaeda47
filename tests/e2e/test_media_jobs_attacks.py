"""Media Services jobs and streaming as a hostile principal uses them (issue 12, attack review).

Each test is one attack through the real server: raw ARM as azure-mgmt-media sends it, the blob
data plane through an asset's SAS URL, the ``*.streaming.media.azure.net`` origin through the
proxy. A refused attack is an ordinary test of the refusal; an attack that worked (each is fixed)
is a test of the safe behaviour, under a comment naming the finding.

Servers: ``media_server`` (the session's, one job slot) and ``private_server`` (this module's):
outbound fetches may reach loopback (``KEYLESS_OUTBOUND_ALLOW_PRIVATE``, as for a developer's
local issuer), so an https server on 127.0.0.1 (with the server's own certificate, which its CA
signs) stands for "a host on the internet"; JobInputHttp downloads are cut at 1 MiB and 30 s.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e import rbac_helpers as rbh
from tests.e2e import storage_helpers as sth
from tests.e2e.job_attack_helpers import (
    STANDARD,
    attack_account,
    busy,
    cancel,
    encoder_pids,
    http_input,
    job_error_of,
    long_job,
    pngs,
    put_job,
    run_job,
    with_files,
)
from tests.e2e.job_helpers import (
    ENCODING_API,
    asset_files,
    blob_url,
    builtin,
    container_url,
    create_asset,
    create_transform,
    job,
    job_body,
    upload,
    wait_job,
)
from tests.e2e.media_helpers import MediaSetup, account_path, storage_id, unique, wait_for
from tests.keyless_server import KeylessServer
from tests.media_clips import make_clip

pytestmark = pytest.mark.slow


def test_job_assets_never_leave_the_jobs_account(media_server: KeylessServer) -> None:
    """Another account's asset (same group and storage account) named every way a path can name
    it, as input or output, and ``files`` naming blobs outside the input asset: refused, or the
    job finds nothing to read. The other account's assets are untouched."""
    setup, account = attack_account(media_server)
    other = unique("ams")
    setup.create_account(other)
    create_asset(setup, other, "theirs")
    upload(setup, other, "theirs", "private.mp4", make_clip(1.0, 160, 120))
    create_asset(setup, other, "theirout")
    theirs = setup.child("GET", other, "assets", "theirs").json()
    names = [
        "theirs",
        f"../{other}/assets/theirs",
        f"input/../../{other}/assets/theirs",
        theirs["id"],
        "input/",
    ]
    for i, name in enumerate(names):
        for body in (job_body(name, "out"), job_body("input", name)):
            r = setup.child("PUT", account, "transforms", f"audio/jobs/n{i}", body, api=ENCODING_API)
            assert r.status_code == 400 and "is not found under account" in r.text, (name, r.text)
    their_blob = blob_url(container_url(setup, other, "theirs", "Read"), "private.mp4")
    container = theirs["properties"]["container"]
    for i, files in enumerate(([f"../{container}/private.mp4"], ["/private.mp4"], [their_blob])):
        error = job_error_of(run_job(setup, account, f"audio/jobs/f{i}", with_files(files)))
        assert error["code"] == "DownloadNotAccessible" and "has no file" in error["message"], error
    assert asset_files(setup, other, "theirs") == ["private.mp4"]
    assert asset_files(setup, other, "theirout") == [] and asset_files(setup, account, "out") == []


# Was a finding (fixed): an asset blob named '../{container}/{blob}' makes a job read another
# container as the account's managed identity (blob_io does not check names; httpx removes the dot
# segments)
def test_a_blob_named_with_dot_segments_reads_no_other_container(media_server: KeylessServer) -> None:
    """A Media Operator of account A (no storage rights) puts ``../{B's asset container}/secret.mp4``
    into an asset of A through its SAS and encodes that asset. A reaches the storage account it
    shares with B through its managed identity (Storage Blob Data Contributor on the storage
    account, as the docs say): the job must not read B's container."""
    srv = media_server
    setup = MediaSetup(srv)
    victim = unique("ams")
    setup.create_account(victim)
    create_asset(setup, victim, "private")
    secret = make_clip(1.0, 160, 120)
    upload(setup, victim, "private", "secret.mp4", secret)
    container = setup.child("GET", victim, "assets", "private").json()["properties"]["container"]
    account = unique("ams")
    principal = setup.create_account(account)["identity"]["principalId"]
    sth.grant(srv, principal, sth.BLOB_ROLES["contributor"], storage_id(srv, setup.group, setup.storage))
    r = setup.patch_account(account, {"properties": {"storageAuthentication": "ManagedIdentity"}})
    assert r.status_code == 202, r.text
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    operator_sp = rbh.create_sp(srv, unique("operator"))
    rbh.assign(srv, account_path(srv, setup.group, account), operator_sp["objectId"], rbh.MEDIA_OPERATOR)
    operator = rbh.token_for(srv, operator_sp)
    for asset in ("mine", "loot"):
        assert setup.child("PUT", account, "assets", asset, {}, token=operator).status_code == 201
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sas_body = {"permissions": "ReadWrite", "expiryTime": expiry}
    r = setup.child("POST", account, "assets", "mine/listContainerSas", sas_body, token=operator)
    sas = urlsplit(r.json()["assetContainerSasUrls"][0])
    decoy = urlunsplit((sas.scheme, sas.netloc, f"{sas.path}/%2E%2E/{container}/secret.mp4", sas.query, ""))
    with srv.client() as client:
        r = client.put(decoy, content=bytes(len(secret)), headers={"x-ms-blob-type": "BlockBlob"})
    assert r.status_code == 201, r.text
    put_job(setup, account, "audio/jobs/steal", job_body("mine", "loot"), token=operator)
    done = wait_job(setup, account, "audio", "steal")["properties"]
    assert asset_files(setup, account, "loot") == []  # (was: B's audio, encoded for A)
    assert job_error_of(done)["code"] == "DownloadNotAccessible"


# --- 2. JobInputHttp: where the server fetches from, and as whom --------------------------------


# Was a finding (fixed): the encoder (FFmpeg on anyone's media) inherits the server's whole
# environment (KEYLESS_DATABASE_URL, KEYLESS_DATA_DIR...) and runs with no memory or file-size limit
def test_the_encoder_runs_without_the_servers_environment_and_within_limits(
    private_server: KeylessServer,
) -> None:
    setup, account = long_job(private_server)
    try:
        (pid, *_) = wait_for(lambda: encoder_pids(private_server), timeout=60, interval=0.1)
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    finally:
        cancel(setup, account, "hd/jobs/long")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert {n for n in names if n.startswith("KEYLESS_")} <= {"KEYLESS_MEDIA_ENCODER_THREADS"}, names
    for limit in ("Max address space", "Max file size"):
        (line,) = [li for li in limits if li.startswith(limit)]
        assert line.split()[3] != "unlimited", line


def test_output_names_stay_flat_files_of_the_output_asset(media_server: KeylessServer) -> None:
    """filenamePatterns and labels with path characters are refused; ``..`` and a name far past
    the file system's limit end the job in Error, writing nothing anywhere."""
    setup, account = attack_account(media_server)

    def outputs(pattern: str, label: str) -> dict[str, Any]:
        codec = {"@odata.type": "#Microsoft.Media.AacAudio", "label": label}
        mp4 = {"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": pattern}
        return {
            "properties": {
                "outputs": [{"preset": {"@odata.type": STANDARD, "codecs": [codec], "formats": [mp4]}}]
            }
        }

    refused = (
        ("..", "L"),
        ("../{Basename}{Extension}", "L"),
        ("a/b{Extension}", "L"),
        ("a\\b{Extension}", "L"),
        ("x{Label}", "../x"),
    )
    for i, (pattern, label) in enumerate(refused):
        r = setup.child("PUT", account, "transforms", f"bad{i}", outputs(pattern, label), api=ENCODING_API)
        assert r.status_code == 400, (pattern, label, r.text)
    for i, (pattern, label) in enumerate((("{Label}" * 36, "L" * 64),)):
        r = setup.child("PUT", account, "transforms", f"odd{i}", outputs(pattern, label), api=ENCODING_API)
        assert r.status_code == 201, r.text
        assert run_job(setup, account, f"odd{i}/jobs/j", job_body("input", "out"))["state"] == "Error"
    assert asset_files(setup, account, "out") == []
    work = media_server.data_dir / "media-work"
    assert all(p.name.startswith("job-") for p in work.iterdir()), list(work.iterdir())


# Was a finding (fixed): a preset may ask for 16 PNG codecs x 16 layers x 2000 pictures of 8192x8192
# per output (512,000 PNGs of ~5 s CPU and ~3.5 MB each)
def test_a_thumbnail_bomb_is_refused(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    layers = [{"width": "8192", "height": "8192", "label": f"l{i}"} for i in range(16)]
    body = {"properties": {"outputs": [{"preset": pngs(layers, "0.0001%", codecs=16)}]}}
    r = setup.child("PUT", account, "transforms", "bomb", body, api=ENCODING_API)
    assert r.status_code == 400, r.status_code


# Was a finding (fixed): an encode writing more than ~2,000 files fails with ServiceError: its files
# line passes asyncio's 64 KiB readline limit (LimitOverrunError in JobRunner._encode)
def test_a_valid_preset_with_thousands_of_thumbnails_finishes(media_server: KeylessServer) -> None:
    setup, account = attack_account(media_server, seconds=2.0)
    layers = [{"width": "32", "height": "24", "label": "a"}, {"width": "16", "height": "12", "label": "b"}]
    create_transform(setup, account, "many", pngs(layers, "0.05%"))  # 2 x 2,000 pictures
    done = run_job(setup, account, "many/jobs/j", job_body("input", "out"), timeout=300)
    assert done["state"] == "Finished", done["outputs"][0].get("error")


# Was a finding (fixed): an encoder error shows the server's file system path of the work directory
def test_an_encoder_error_shows_no_server_path(media_server: KeylessServer) -> None:
    setup, account = attack_account(media_server)
    upload(setup, account, "input", "notes.mp4", b"not a video" * 64)
    error = job_error_of(run_job(setup, account, "audio/jobs/j", with_files(["notes.mp4"])))
    assert error["code"] == "ContentMalformed"
    assert "media-work" not in error["message"] and str(media_server.data_dir) not in error["message"], error


# --- 4. the queue: fairness, the customer key, rights, races --------------------------------------


# Was a finding (fixed): job priority is global: one account's High jobs run before every other
# account's (and subscription's) older jobs (job_queue.claim orders by priority, then age)
def test_one_accounts_high_priority_jobs_do_not_starve_another_account(media_server: KeylessServer) -> None:
    attacker_setup, attacker = attack_account(media_server)
    victim_setup, victim = attack_account(media_server)
    with busy(media_server):
        put_job(victim_setup, victim, "audio/jobs/v", job_body("input", "out"))
        for i in range(3):
            create_asset(attacker_setup, attacker, f"h{i}")
            put_job(attacker_setup, attacker, f"audio/jobs/h{i}", job_body("input", f"h{i}", priority="High"))
    victim_start = wait_job(victim_setup, victim, "audio", "v")["properties"]["startTime"]
    starts = [
        wait_job(attacker_setup, attacker, "audio", f"h{i}")["properties"]["startTime"] for i in range(3)
    ]
    assert victim_start < min(starts), (victim_start, starts)


def test_a_job_queued_before_the_key_was_lost_never_runs(media_server: KeylessServer) -> None:
    setup = MediaSetup(media_server, vault=True)
    account = unique("ams")
    principal = setup.create_account(account)["identity"]["principalId"]
    setup.grant_key_access(principal)
    cmk = {"encryption": {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": setup.key_id}}}
    assert setup.patch_account(account, {"properties": cmk}).status_code == 202
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(1.0, 160, 120))
    create_asset(setup, account, "out")
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    with busy(media_server):
        put_job(setup, account, "audio/jobs/j", job_body("input", "out"))
        setup.revoke_key_access(principal)
        wait_for(lambda: setup.child("GET", account, "assets", "input").status_code == 400)
    time.sleep(5)  # the slot is free: the job is claimed now, while the key is out of reach
    setup.grant_key_access(principal)
    wait_for(lambda: setup.child("GET", account, "assets", "input").status_code == 200)
    error = job_error_of(dict(wait_job(setup, account, "audio", "j")["properties"]))
    assert (error["code"], error["category"]) == ("ServiceError", "Account"), error
    assert asset_files(setup, account, "out") == []


def test_job_rights_follow_roles_and_not_actions(media_server: KeylessServer) -> None:
    """Reader, no role, a Media Operator of another account, and a custom role with
    ``transforms/jobs/*`` but NotActions ``cancelJob/action`` and ``delete``."""
    srv = media_server
    setup, account = attack_account(srv)
    assert run_job(setup, account, "audio/jobs/j", job_body("input", "out"))["state"] == "Finished"
    other = unique("ams")
    setup.create_account(other)
    group, jobs, role = (
        rbh.rg_scope(srv, setup.group),
        "Microsoft.Media/mediaservices/transforms/jobs",
        str(uuid.uuid4()),
    )
    permissions = {
        "actions": ["Microsoft.Media/mediaservices/*/read", f"{jobs}/*"],
        "notActions": [f"{jobs}/cancelJob/action", f"{jobs}/delete"],
    }
    definition = {"roleName": unique("jobs "), "assignableScopes": [group], "permissions": [permissions]}
    with srv.arm() as arm:
        r = arm.put(
            f"{group}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            params={"api-version": rbh.AUTH_API},
            json={"properties": definition},
        )
    assert r.status_code == 201, r.text
    sps = {name: rbh.create_sp(srv, unique(name)) for name in ("reader", "nobody", "elsewhere", "custom")}
    rbh.assign(srv, group, sps["reader"]["objectId"], rbh.READER)
    rbh.assign(srv, account_path(srv, setup.group, other), sps["elsewhere"]["objectId"], rbh.MEDIA_OPERATOR)
    rbh.assign(srv, account_path(srv, setup.group, account), sps["custom"]["objectId"], role)
    token = {name: rbh.token_for(srv, sp) for name, sp in sps.items()}
    j, cancel = "audio/jobs/j", "audio/jobs/j/cancelJob"
    expected = [
        ("reader", "GET", j, None, 200),
        ("reader", "PATCH", j, {"properties": {"description": "mine now"}}, 403),
        ("reader", "POST", cancel, None, 403),
        ("reader", "DELETE", j, None, 403),
        ("reader", "PUT", "audio/jobs/new", job_body("input", "out"), 403),
        ("nobody", "GET", j, None, 403),
        ("nobody", "POST", cancel, None, 403),
        ("elsewhere", "POST", cancel, None, 403),
        ("elsewhere", "DELETE", j, None, 403),
        ("custom", "POST", cancel, None, 403),
        ("custom", "POST", "audio/jobs/j/CANCELJOB", None, 403),
        ("custom", "DELETE", j, None, 403),
        ("custom", "PATCH", j, {"properties": {"priority": "High"}}, 200),
    ]
    for who, method, path, body, status in expected:
        r = setup.child(method, account, "transforms", path, body, api=ENCODING_API, token=token[who])
        assert r.status_code == status, (who, method, path, r.status_code, r.text)
    shown = job(setup, account, "audio", "j")["properties"]
    assert shown["state"] == "Finished" and shown.get("description") is None and shown["priority"] == "High"
    assert setup.child("GET", account, "transforms", "audio/jobs/new", api=ENCODING_API).status_code == 404


def test_an_az_style_update_neither_shows_nor_replaces_the_sealed_url(media_server: KeylessServer) -> None:
    """az's ``job update`` sends back the job it read: the sealed URL is not in it, and an update
    naming another URL (to make the job read the caller's server) is refused."""
    setup, account = attack_account(media_server)
    url = blob_url(container_url(setup, account, "input", "Read"), "clip.mp4")
    assert run_job(setup, account, "audio/jobs/h", http_input(url))["state"] == "Finished"
    shown = job(setup, account, "audio", "h")["properties"]
    swapped = {**shown, "input": {**shown["input"], "files": ["https://attacker.example/x.mp4"]}}
    for method in ("PATCH", "PUT"):
        echo = {"properties": {**shown, "description": "changed"}}
        r = setup.child(method, account, "transforms", "audio/jobs/h", echo, api=ENCODING_API)
        assert r.status_code == 200 and "sig=" not in r.text, r.text
        r = setup.child(
            method, account, "transforms", "audio/jobs/h", {"properties": swapped}, api=ENCODING_API
        )
        assert r.status_code == 400 and "description and priority" in r.text, r.text
    listed = setup.child("GET", account, "transforms", "audio/jobs", api=ENCODING_API)
    assert listed.status_code == 200 and "sig=" not in listed.text
    assert job(setup, account, "audio", "h")["properties"]["input"]["files"] == [url.split("?")[0]]


def test_deleting_the_output_asset_of_a_running_job(media_server: KeylessServer) -> None:
    """The output asset goes while the job encodes: the job fails its upload and writes nothing
    into the container the asset had (which a new asset may then take, empty)."""
    setup, account = attack_account(media_server, seconds=6.0)
    create_transform(setup, account, "hd", builtin("H264MultipleBitrate1080p"))
    container = setup.child("GET", account, "assets", "out").json()["properties"]["container"]
    put_job(setup, account, "hd/jobs/j", job_body("input", "out"))
    wait_for(lambda: job(setup, account, "hd", "j")["properties"]["state"] == "Processing", timeout=60)
    assert setup.child("DELETE", account, "assets", "out").status_code in (200, 204)
    error = job_error_of(dict(wait_job(setup, account, "hd", "j", timeout=240)["properties"]))
    assert error["code"] == "UploadNotAccessible", error
    assert (
        setup.child("PUT", account, "assets", "again", {"properties": {"container": container}}).status_code
        == 201
    )
    assert asset_files(setup, account, "again") == []


# --- 5. the streaming origin ---------------------------------------------------------------------
