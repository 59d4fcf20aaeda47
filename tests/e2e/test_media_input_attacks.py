"""Media Services job inputs and the streaming origin as a hostile principal uses them (issue 12,
attack review; split from test_media_jobs_attacks.py): JobInputHttp URLs on Keyless's own hosts, on
loopback and IMDS, on the internet (a local https origin stands for it), and the
``*.streaming.media.azure.net`` origin through the proxy. Attacks that worked (each fixed) are
tests of the safe behaviour, under a comment naming the finding."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e import rbac_helpers as rbh
from tests.e2e import storage_helpers as sth
from tests.e2e.job_attack_helpers import (
    MAX_INPUT,
    Origin,
    attack_account,
    http_input,
    job_error_of,
    kib,
    put_job,
    run_job,
    with_files,
)
from tests.e2e.job_helpers import (
    ENCODING_API,
    asset_files,
    blob_url,
    container_url,
    create_asset,
    download,
    upload,
    wait_job,
)
from tests.e2e.media_helpers import unique, wait_for
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


def test_http_input_on_keyless_hosts_is_fetched_as_an_outside_caller(media_server: KeylessServer) -> None:
    """URLs on hosts Keyless serves are fetched with neither the account's storage key nor its
    identity, from no trusted network: a blob URL without SAS; a SAS URL on a storage account whose
    firewall lets only trusted Azure services in; the resource manager, Key Vault, the authority."""
    setup, account = attack_account(media_server)
    container = setup.child("GET", account, "assets", "input").json()["properties"]["container"]
    bare = f"https://{setup.storage}.blob.core.windows.net/{container}/clip.mp4"
    error = job_error_of(run_job(setup, account, "audio/jobs/bare", http_input(bare)))
    assert error["code"] == "DownloadNotAccessible" and " answered 40" in error["message"], error
    sas_url = blob_url(container_url(setup, account, "input", "Read"), "clip.mp4")
    firewall = {"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"}}
    sth.update_account(media_server, setup.group, setup.storage, firewall)
    urls = {
        sas_url: " answered 403",
        "https://management.azure.com/subscriptions?api-version=2022-12-01": " answered 401",
        f"https://{unique('kv')[:20]}.vault.azure.net/secrets/s?api-version=7.4": " answered 40",
        f"https://login.microsoftonline.com/{media_server.tenant_id}/oauth2/v2.0/token": " answered 4",
    }
    for i, (url, answer) in enumerate(urls.items()):
        error = job_error_of(run_job(setup, account, f"audio/jobs/k{i}", http_input(url)))
        assert error["code"] == "DownloadNotAccessible" and answer in error["message"], (url, error)
        assert "sig=" not in error["message"]


def test_loopback_and_imds_in_every_spelling_are_never_fetched(media_server: KeylessServer) -> None:
    setup, account = attack_account(media_server)
    urls = [
        "https://2130706433/clip.mp4",  # 127.0.0.1 as one number
        "https://0x7f.0.0.1/clip.mp4",
        "https://127.1/clip.mp4",
        "https://[::ffff:127.0.0.1]/clip.mp4",
        "https://[::1]/clip.mp4",
        "https://localhost/clip.mp4",
        "https://169.254.169.254./metadata/identity/oauth2/token?resource=https://vault.azure.net",
        "https://[::ffff:169.254.169.254]/metadata/instance",
        f"https://{media_server.subscription_id}@127.0.0.1/clip.mp4",
    ]
    for i, url in enumerate(urls):
        # Refused when the job is created (a URL with user information, say), or never fetched.
        r = setup.child("PUT", account, "transforms", f"audio/jobs/l{i}", http_input(url), api=ENCODING_API)
        if r.status_code == 400:
            assert r.json()["error"]["code"] == "BadRequest", (url, r.text)
            continue
        assert r.status_code == 201, (url, r.text)
        error = job_error_of(dict(wait_job(setup, account, "audio", f"l{i}")["properties"]))
        assert error["code"] == "DownloadNotAccessible" and " answered " not in error["message"], (url, error)


def test_an_hls_playlist_input_makes_the_encoder_fetch_nothing(
    private_server: KeylessServer, origin: tuple[str, type[Origin]]
) -> None:
    """A playlist (``.m3u8``) as input: FFmpeg's HLS demuxer would fetch its segments itself,
    around the outbound policy: segments on the internet, on Keyless's IMDS, and local files."""
    base, handler = origin
    setup, account = attack_account(private_server)
    imds = f"http://127.0.0.1:{private_server.http_port}/metadata/identity/oauth2/token?resource=x"
    segments = (f"{base}/seg.ts", imds, "file:///etc/passwd", f"file://{private_server.data_dir}/root.key")
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
    playlist += "".join(f"#EXTINF:10,\n{segment}\n" for segment in segments) + "#EXT-X-ENDLIST\n"
    upload(setup, account, "input", "evil.m3u8", playlist.encode())
    assert run_job(setup, account, "audio/jobs/hls", with_files(["evil.m3u8"]))["state"] == "Error"
    assert handler.hits == [] and asset_files(setup, account, "out") == []


def test_an_http_input_on_the_internet_is_a_plain_bounded_fetch(
    private_server: KeylessServer, origin: tuple[str, type[Origin]]
) -> None:
    """No credential sent, no redirect followed, an endless body cut at the limit, and no query
    string (a SAS) in the error a Reader of the job sees."""
    base, handler = origin
    setup, account = attack_account(private_server)
    error = job_error_of(run_job(setup, account, "audio/jobs/r", http_input(f"{base}/redirect.mp4")))
    assert error["code"] == "DownloadNotAccessible" and "answered 302" in error["message"], error
    assert [path for path, _ in handler.hits] == ["/redirect.mp4"]
    headers = handler.hits[0][1]
    assert not [h for h in headers if h in ("authorization", "cookie", "metadata") or h.startswith("x-ms-")]
    started = time.monotonic()
    error = job_error_of(run_job(setup, account, "audio/jobs/e", http_input(f"{base}/endless.mp4")))
    assert f"more than {MAX_INPUT} bytes" in error["message"] and time.monotonic() - started < 30, error
    reader_sp = rbh.create_sp(private_server, unique("reader"))
    rbh.assign(private_server, rbh.rg_scope(private_server, setup.group), reader_sp["objectId"], rbh.READER)
    reader = rbh.token_for(private_server, reader_sp)
    query = "?sv=2023-11-03&sig=SECRET"
    for name, url in (("plain", f"http://media.example/clip.mp4{query}"), ("no", f"{base}/no.mp4{query}")):
        job_error_of(run_job(setup, account, f"audio/jobs/{name}", http_input(url)))
        r = setup.child("GET", account, "transforms", f"audio/jobs/{name}", api=ENCODING_API, token=reader)
        assert r.status_code == 200 and "SECRET" not in r.text, r.text


# Was a finding (fixed): a JobInputHttp on a host Keyless serves is read whole into memory before
# the size limit applies (httpx.ASGITransport buffers the body), so a large blob SAS exhausts the
# server
def test_an_http_input_on_a_keyless_host_is_never_held_in_memory(private_server: KeylessServer) -> None:
    """A 64 MiB blob (Put Block, 4 MiB at a time) by SAS URL, the limit 1 MiB: the job fails on
    size, and the server's peak memory must not grow by the blob's size meanwhile."""
    srv = private_server
    assert srv.process is not None
    setup, account = attack_account(srv)
    url = blob_url(container_url(setup, account, "input", "ReadWrite"), "big.mp4")
    with srv.client() as client:
        blocks = [f"{i:08d}".encode().hex() for i in range(16)]
        for block in blocks:
            r = client.put(f"{url}&comp=block&blockid={block}", content=os.urandom(4 * 1024 * 1024))
            assert r.status_code == 201, r.text
        listing = "".join(f"<Latest>{b}</Latest>" for b in blocks)
        r = client.put(f"{url}&comp=blocklist", content=f"<BlockList>{listing}</BlockList>".encode())
        assert r.status_code == 201, r.text
    Path(f"/proc/{srv.process.pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = kib(srv.process.pid, "VmRSS")
    error = job_error_of(run_job(setup, account, "audio/jobs/big", http_input(url)))
    assert f"more than {MAX_INPUT} bytes" in error["message"], error
    grown = (kib(srv.process.pid, "VmHWM") - before) / 1024
    assert grown < 32, f"peak memory grew by {grown:.0f} MiB for a 1 MiB limit"  # today: 128 MiB


# Was a finding (fixed): cancelJob does not stop a job's input download: the job shows Canceled once
# its lease runs out, but the download goes on in its job slot until it ends or times out
# (KEYLESS_MEDIA_HTTP_INPUT_TIMEOUT, 3600 s by default)
def test_cancel_stops_a_job_stuck_in_a_slow_download(
    private_server: KeylessServer, origin: tuple[str, type[Origin]]
) -> None:
    """An origin dripping a byte every half second; the job is canceled: the download must stop
    (the origin sees the connection closed) within seconds, not at the download time-out."""
    base, handler = origin
    setup, account = attack_account(private_server)
    put_job(setup, account, "audio/jobs/slow", http_input(f"{base}/slow.mp4"))
    wait_for(lambda: handler.hits, timeout=30)
    r = setup.child("POST", account, "transforms", "audio/jobs/slow/cancelJob", api=ENCODING_API)
    assert r.status_code == 200, r.text
    try:
        assert wait_job(setup, account, "audio", "slow", timeout=15)["properties"]["state"] == "Canceled"
        wait_for(lambda: handler.hung_up, timeout=10)
    finally:
        handler.stop.set()  # ends the drip: the download ends and the slot is free


# --- 3. the encoder --------------------------------------------------------------------------


def test_the_origin_serves_only_the_locators_account_and_downloadable_names(
    media_server: KeylessServer,
) -> None:
    """Another account reusing the locator id, a ClearKey-only locator, and names that try to
    reach the manifest (not offered for download) or leave the asset's container."""
    setup, account = attack_account(media_server)
    upload(setup, account, "input", "clip.ism", b"<smil>secret manifest</smil>")
    other = unique("ams")
    setup.create_account(other)
    create_asset(setup, other, "theirs")
    for acct in (account, other):
        assert setup.child("POST", acct, "streamingEndpoints", "default/start").status_code == 200
    option = {
        "name": "open",
        "configuration": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyClearKeyConfiguration"},
        "restriction": {"@odata.type": "#Microsoft.Media.ContentKeyPolicyOpenRestriction"},
    }
    assert (
        setup.child(
            "PUT", account, "contentKeyPolicies", "ckp", {"properties": {"options": [option]}}
        ).status_code
        == 200
    )
    ids = {}
    for name, policy in (("dl", "Predefined_DownloadOnly"), ("enc", "Predefined_ClearKey")):
        r = setup.child(
            "PUT",
            account,
            "streamingLocators",
            name,
            {"properties": {"assetName": "input", "streamingPolicyName": policy}},
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["properties"]["streamingLocatorId"]
    same = {
        "assetName": "theirs",
        "streamingPolicyName": "Predefined_DownloadOnly",
        "streamingLocatorId": ids["dl"],
    }
    assert setup.child("PUT", other, "streamingLocators", "same", {"properties": same}).status_code == 201
    host, loc = f"https://{account}-westeurope.streaming.media.azure.net", ids["dl"]
    clip = download(setup, account, "input", "clip.mp4")
    refused = [
        f"https://{other}-westeurope.streaming.media.azure.net/{loc}/clip.mp4",
        f"{host}/{ids['enc']}/clip.mp4",
        *(f"{host}/{loc}/{name}" for name in ("clip.ism%3F.mp4", "clip.ism%23.mp4", "clip.ism%00.mp4")),
        f"{host}/{loc}/clip.ism.",
        f"{host}/{loc}/..%5Cclip.ism",
        f"{host}/{loc}/%2E%2E%2F%2E%2E%2F{account}/clip.mp4",
    ]
    with media_server.client() as player:
        assert player.get(f"{host}/{loc}/clip.mp4").content == clip
        for url in refused:
            for headers in ({}, {"Range": "bytes=0-0, -1"}, {"Range": "bytes=-99999999999999999999"}):
                r = player.get(url, headers=headers)
                assert r.status_code == 404, (url, headers, r.status_code, r.text)
                assert b"secret manifest" not in r.content and clip[:64] not in r.content, url
