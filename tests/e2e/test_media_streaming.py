"""Media Services streaming endpoints and progressive download (issue 12, item 4): the real
azure-mgmt-media 10.x under `keyless run` for the endpoints and locators (the default endpoint,
start/stop/scale pollers that finish at once, listPaths), azure-storage-blob through the asset's
SAS URL for content, and the `*.streaming.media.azure.net` origin serving the blob with ranges and
refusing what Azure does not serve.

Every request to the origin goes the way a user's player sends it: HTTPS to the production host
name through Keyless's proxy, trusting the local CA (``KeylessServer.client``). Nothing here
builds a Keyless component."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.job_helpers import create_asset, upload
from tests.e2e.media_helpers import MediaSetup, assert_media_error, unique, wait_for
from tests.e2e.workload_helpers import program, run_json
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

SEED, SIZE = 1234, 300_000
CONTENT = random.Random(SEED).randbytes(SIZE)
MANIFEST = b"<smil>manifest</smil>"
METADATA = b'{"metadata": "of the encode"}'
CLIP = "clip%201.mp4"

SDK_PROGRAM = """
import json, os, random, time
import requests
from datetime import datetime, timedelta, timezone
from azure.identity import DefaultAzureCredential
from azure.mgmt.media import AzureMediaServices
from azure.mgmt.media import models as m
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient, ContentSettings
args = json.loads(DATA)
client = AzureMediaServices(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
g, a = args["group"], args["account"]
out = {}
listed = list(client.streaming_endpoints.list(g, a))
out["listed"] = [[e.name, e.resource_state, e.host_name, e.location] for e in listed]
asset = client.assets.create_or_update(g, a, "movie", m.Asset())
expiry = datetime.now(timezone.utc) + timedelta(hours=1)
sas = client.assets.list_container_sas(g, a, "movie", m.ListContainerSasInput(permissions="ReadWrite", expiry_time=expiry))
container = ContainerClient.from_container_url(sas.asset_container_sas_urls[0])
content = random.Random(args["seed"]).randbytes(args["size"])
container.upload_blob("clip 1.mp4", content, content_settings=ContentSettings(content_type="video/mp4"))
container.upload_blob("clip.ism", args["manifest"].encode(), content_settings=ContentSettings(content_type="application/xml"))
container.upload_blob("clip_metadata.json", args["metadata"].encode(), content_settings=ContentSettings(content_type="application/json"))
past = datetime.now(timezone.utc) - timedelta(days=2)
for name, policy, extra in (
    ("dl", "Predefined_DownloadOnly", {}),
    ("clear", "Predefined_ClearStreamingOnly", {}),
    ("both", "Predefined_DownloadAndClearStreaming", {}),
    ("old", "Predefined_DownloadOnly", {"start_time": past, "end_time": past + timedelta(days=1)}),
):
    loc = client.streaming_locators.create(g, a, name, m.StreamingLocator(asset_name="movie", streaming_policy_name=policy, **extra))
    out["id_" + name] = loc.streaming_locator_id
paths = client.streaming_locators.list_paths(g, a, "dl")
out["paths_stopped"] = [len(paths.streaming_paths), len(paths.download_paths)]
# Before the start, the URL a player would use is refused (requests: the proxy and CA of `keyless run`).
url = "https://" + listed[0].host_name + "/" + out["id_dl"] + "/clip%201.mp4"
out["before_start"] = requests.get(url, timeout=30).status_code
started = time.monotonic()
client.streaming_endpoints.begin_start(g, a, "default", polling_interval=0).result()
out["start_seconds"] = time.monotonic() - started
default = client.streaming_endpoints.get(g, a, "default")
out["default"] = [default.resource_state, default.provisioning_state, default.host_name, default.scale_units, default.sku.name]
def paths_of(name):
    p = client.streaming_locators.list_paths(g, a, name)
    return {
        "streaming": [[s.streaming_protocol, s.encryption_scheme, s.paths] for s in p.streaming_paths],
        "download": p.download_paths,
    }
out["paths"] = {name: paths_of(name) for name in ("dl", "clear", "both")}
started = time.monotonic()
made = client.streaming_endpoints.begin_create(g, a, "se-1", m.StreamingEndpoint(
    location="westeurope", scale_units=0, description="second", max_cache_age=60), polling_interval=0).result()
out["made"] = [made.name, made.resource_state, made.provisioning_state, made.host_name, made.description, made.id]
client.streaming_endpoints.begin_scale(g, a, "se-1", m.StreamingEntityScaleUnit(scale_unit=2), polling_interval=0).result()
updated = client.streaming_endpoints.begin_update(g, a, "se-1", m.StreamingEndpoint(
    location="westeurope", scale_units=2, description="changed"), polling_interval=0).result()
out["updated"] = [updated.scale_units, updated.description, updated.resource_state, updated.sku.name, updated.sku.capacity]
try:
    client.streaming_endpoints.begin_create(g, a, "se-2", m.StreamingEndpoint(location="westeurope", scale_units=0), polling_interval=0).result()
    out["third"] = "created"
except HttpResponseError as exc:
    out["third"] = exc.status_code
client.streaming_endpoints.begin_delete(g, a, "se-1", polling_interval=0).result()
try:
    client.streaming_endpoints.begin_delete(g, a, "default", polling_interval=0).result()
    out["delete_default"] = "deleted"
except HttpResponseError as exc:
    out["delete_default"] = exc.status_code
out["after"] = sorted(e.name for e in client.streaming_endpoints.list(g, a))
out["seconds"] = time.monotonic() - started
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def published(media_server: KeylessServer) -> dict[str, Any]:
    """An account with an asset holding ``clip 1.mp4``, four locators, the default endpoint
    started: what the SDK program saw."""
    setup = MediaSetup(media_server)
    account = unique("ams")
    setup.create_account(account)
    data = {
        "group": setup.group,
        "account": account,
        "seed": SEED,
        "size": SIZE,
        "manifest": MANIFEST.decode(),
        "metadata": METADATA.decode(),
    }
    out = run_json(media_server, program(SDK_PROGRAM, data))
    return {"setup": setup, "account": account, **out}


@pytest.fixture(scope="module")
def player(media_server: KeylessServer) -> Iterator[httpx.Client]:
    """What a player on the user's machine uses: HTTPS through Keyless's proxy with its CA."""
    with media_server.client() as client:
        yield client


def _host(published: dict[str, Any], endpoint: str = "") -> str:
    prefix = f"{endpoint}-" if endpoint else ""
    return f"https://{prefix}{published['account']}-westeurope.streaming.media.azure.net"


def _download_url(published: dict[str, Any], locator: str = "dl", file: str = CLIP) -> str:
    return f"{_host(published)}/{published['id_' + locator]}/{file}"


def test_the_default_endpoint_and_its_pollers(published: dict[str, Any]) -> None:
    account = published["account"]
    host = f"{account}-westeurope.streaming.media.azure.net"
    assert published["listed"] == [["default", "Stopped", host, "westeurope"]]
    assert published["before_start"] == 404  # a stopped endpoint serves nothing
    assert published["start_seconds"] < 5  # no 30 s default poll wait
    assert published["default"] == ["Running", "Succeeded", host, 0, "Standard"]
    name, state, provisioning, made_host, description, made_id = published["made"]
    assert (name, state, provisioning, description) == ("se-1", "Stopped", "Succeeded", "second")
    assert made_host == f"se-1-{host}"
    assert made_id.endswith(f"/mediaservices/{account}/streamingendpoints/se-1")
    assert published["updated"] == [2, "changed", "Stopped", "Premium", 2]
    assert published["third"] == 400  # two endpoints per account, the default included
    assert published["delete_default"] == 400
    assert published["after"] == ["default"]
    assert published["seconds"] < 10


def test_list_paths(published: dict[str, Any]) -> None:
    assert published["paths_stopped"] == [0, 0]  # no endpoint running yet
    paths = published["paths"]
    # Neither the manifest nor the metadata JSON is listed.
    assert paths["dl"] == {"streaming": [], "download": [f"/{published['id_dl']}/{CLIP}"]}
    assert paths["clear"]["download"] == []
    assert paths["clear"]["streaming"] == [
        ["Hls", "NoEncryption", []],
        ["Dash", "NoEncryption", []],
        ["SmoothStreaming", "NoEncryption", []],
    ]
    assert paths["both"]["download"] == [f"/{published['id_both']}/{CLIP}"]
    assert len(paths["both"]["streaming"]) == 3


def test_progressive_download_with_ranges(published: dict[str, Any], player: httpx.Client) -> None:
    url = _download_url(published)
    r = player.get(url)
    assert r.status_code == 200, r.text
    assert r.content == CONTENT
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["access-control-allow-origin"] == "*"
    r = player.get(url, headers={"Range": "bytes=100-4194403"})  # past the end: clamped
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-{SIZE - 1}/{SIZE}"
    assert r.content == CONTENT[100:]
    r = player.get(url, headers={"Range": "bytes=10-99"})
    assert (r.status_code, r.content) == (206, CONTENT[10:100])
    assert r.headers["content-range"] == f"bytes 10-99/{SIZE}"
    r = player.get(url, headers={"Range": "bytes=-5"})
    assert (r.status_code, r.content) == (206, CONTENT[-5:])
    r = player.get(url, headers={"Range": "bytes=1000-"})
    assert (r.status_code, r.content) == (206, CONTENT[1000:])
    r = player.get(url, headers={"Range": f"bytes={SIZE}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{SIZE}"
    r = player.get(url, headers={"Range": "bytes=0-1, 5-6"})  # several ranges: served whole
    assert (r.status_code, r.content) == (200, CONTENT)
    r = player.head(url)
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", str(SIZE))
    assert r.headers["content-type"] == "video/mp4"
    r = player.head(url, headers={"Range": "bytes=0-9"})
    assert (r.status_code, r.headers["content-range"]) == (206, f"bytes 0-9/{SIZE}")
    # A <video> on another origin: the browser's preflight, then the cross-origin request.
    preflight = {"Origin": "https://player.example", "Access-Control-Request-Method": "GET"}
    r = player.options(url, headers={**preflight, "Access-Control-Request-Headers": "range"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "GET" in r.headers["access-control-allow-methods"]
    assert "range" in r.headers["access-control-allow-headers"].lower()
    r = player.get(url, headers={"Origin": "https://player.example", "Range": "bytes=0-3"})
    assert (r.status_code, r.content) == (206, CONTENT[:4])
    assert r.headers["access-control-allow-origin"] == "*"
    assert "content-range" in r.headers["access-control-expose-headers"].lower()
    # Download and clear streaming allows download too.
    r = player.get(_download_url(published, "both"), headers={"Range": "bytes=0-0"})
    assert (r.status_code, r.content) == (206, CONTENT[:1])


def test_what_the_origin_refuses(published: dict[str, Any], player: httpx.Client) -> None:
    host, locator = _host(published), published["id_dl"]
    policy, window, no_locator = "policy does not allow", "time window", "no streaming locator"
    not_offered, not_in_asset, path = "not offered", "not in the asset", "/{streamingLocatorId}/{file}"
    no_endpoint, too_long = "no streaming endpoint has this host name", "too long"
    # Each URL with the reason the origin gives (so each is refused by the check meant for it).
    refused = {
        "clear streaming only": (_download_url(published, "clear"), policy),
        "past its end time": (_download_url(published, "old"), window),
        "unknown locator": (f"{host}/{uuid.uuid4()}/{CLIP}", no_locator),
        "a manifest": (_download_url(published, file="clip.ism"), not_offered),
        "the metadata": (_download_url(published, file="clip_metadata.json"), not_offered),
        "a missing file": (_download_url(published, file="nothing.mp4"), not_in_asset),
        "no file": (f"{host}/{locator}/", not_offered),
        "the locator's name, not its id": (f"{host}/dl/{CLIP}", path),
        "parent path": (f"{host}/{locator}/../{CLIP}", path),  # the client resolves it: /{CLIP}
        "parent path, encoded": (f"{host}/{locator}/%2E%2E/{CLIP}", not_offered),
        "parent path, encoded slash": (f"{host}/{locator}/..%2F{CLIP}", not_offered),
        "a parent of the container": (f"{host}/{locator}/%2E%2E/%2E%2E/{CLIP}", not_offered),
        "current path": (f"{host}/{locator}/%2E/{CLIP}", not_offered),
        "unknown host": (
            f"https://nobody-westeurope.streaming.media.azure.net/{locator}/{CLIP}",
            no_endpoint,
        ),
        "unknown region": (
            f"https://{published['account']}-nowhere.streaming.media.azure.net/{locator}/{CLIP}",
            no_endpoint,
        ),
        "unknown endpoint": (f"{_host(published, 'se-9')}/{locator}/{CLIP}", no_endpoint),
        "too long": (f"{host}/{locator}/{'a' * 3000}.mp4", too_long),
    }
    for why, (url, reason) in refused.items():
        status = 414 if reason == too_long else 404
        for method in ("GET", "HEAD"):
            r = player.request(method, url)
            assert r.status_code == status, (why, method, r.status_code, r.text)
            assert "accept-ranges" not in r.headers, (why, method)
            if method == "GET":
                assert reason in r.text, (why, r.text)
            for served in (CONTENT[:100], MANIFEST, METADATA):
                assert served not in r.content, (why, method)
    for method in ("POST", "PUT", "DELETE"):
        r = player.request(method, _download_url(published), content=b"x")
        assert r.status_code == 405, (method, r.status_code)
        assert "GET" in r.headers["allow"]
    assert player.get(_download_url(published)).content == CONTENT  # nothing above changed it


def test_a_stopped_endpoint_serves_nothing(published: dict[str, Any], player: httpx.Client) -> None:
    setup: MediaSetup = published["setup"]
    account, url = published["account"], _download_url(published)
    assert player.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    r = setup.child("POST", account, "streamingEndpoints", "default/stop")
    assert r.status_code == 200, r.text
    try:
        r = player.get(url)
        assert r.status_code == 404 and "not running" in r.text
        assert CONTENT[:100] not in r.content
        r = setup.child("POST", account, "streamingLocators", "dl/listPaths")
        assert r.json() == {"streamingPaths": [], "downloadPaths": []}
    finally:
        r = setup.child("POST", account, "streamingEndpoints", "default/start")
        assert r.status_code == 200, r.text
    assert player.get(url, headers={"Range": "bytes=0-9"}).content == CONTENT[:10]


STOP_PROGRAM = """
import json, os, time
from azure.identity import DefaultAzureCredential
from azure.mgmt.media import AzureMediaServices
args = json.loads(DATA)
client = AzureMediaServices(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
g, a = args["group"], args["account"]
out = {}
started = time.monotonic()
client.streaming_endpoints.begin_%(verb)s(g, a, "default", polling_interval=0).result()
out["seconds"] = time.monotonic() - started
out["state"] = client.streaming_endpoints.get(g, a, "default").resource_state
paths = client.streaming_locators.list_paths(g, a, "dl")
out["paths"] = [len(paths.streaming_paths), len(paths.download_paths)]
print(json.dumps(out))
"""


def test_after_begin_stop_the_download_is_refused_again(
    published: dict[str, Any], player: httpx.Client, media_server: KeylessServer
) -> None:
    url = _download_url(published)
    assert player.get(url, headers={"Range": "bytes=0-9"}).content == CONTENT[:10]
    data = {"group": published["setup"].group, "account": published["account"]}
    try:
        stopped = run_json(media_server, program(STOP_PROGRAM % {"verb": "stop"}, data))
        assert stopped["state"] == "Stopped"
        assert stopped["seconds"] < 5
        assert stopped["paths"] == [0, 0]
        for locator in ("dl", "both"):
            for method, headers in (("GET", {}), ("GET", {"Range": "bytes=0-9"}), ("HEAD", {})):
                r = player.request(method, _download_url(published, locator), headers=headers)
                assert r.status_code == 404, (locator, method, headers, r.status_code)
                assert CONTENT[:10] not in r.content
    finally:
        started = run_json(media_server, program(STOP_PROGRAM % {"verb": "start"}, data))
    assert started["state"] == "Running" and started["paths"] == [0, 1]
    assert player.get(url, headers={"Range": "bytes=0-9"}).content == CONTENT[:10]


def test_an_unreachable_customer_key_stops_the_download(
    media_server: KeylessServer, player: httpx.Client
) -> None:
    setup = MediaSetup(media_server, vault=True)
    account = unique("ams")
    principal = setup.create_account(account)["identity"]["principalId"]
    setup.grant_key_access(principal)
    cmk = {"encryption": {"type": "CustomerKey", "keyVaultProperties": {"keyIdentifier": setup.key_id}}}
    assert setup.patch_account(account, {"properties": cmk}).status_code == 202
    create_asset(setup, account, "movie")
    upload(setup, account, "movie", "clip.mp4", CONTENT)
    locator = {"properties": {"assetName": "movie", "streamingPolicyName": "Predefined_DownloadOnly"}}
    r = setup.child("PUT", account, "streamingLocators", "loc", locator)
    assert r.status_code == 201, r.text
    locator_id = r.json()["properties"]["streamingLocatorId"]
    assert setup.child("POST", account, "streamingEndpoints", "default/start").status_code == 200
    url = f"https://{account}-westeurope.streaming.media.azure.net/{locator_id}/clip.mp4"
    r = player.get(url, headers={"Range": "bytes=0-99"})
    assert (r.status_code, r.content) == (206, CONTENT[:100])

    setup.revoke_key_access(principal)
    wait_for(lambda: player.get(url, headers={"Range": "bytes=0-99"}).status_code == 404)
    r = player.get(url)
    assert r.status_code == 404 and CONTENT[:100] not in r.content
    assert "Customer Key" in r.text

    setup.grant_key_access(principal)
    wait_for(lambda: player.get(url, headers={"Range": "bytes=0-99"}).status_code == 206)
    assert player.get(url).content == CONTENT


def test_endpoint_validation(published: dict[str, Any]) -> None:
    setup: MediaSetup = published["setup"]
    account = published["account"]
    r = setup.child(
        "PUT",
        account,
        "streamingEndpoints",
        "bad_name",
        {"location": "westeurope", "properties": {"scaleUnits": 0}},
    )
    assert r.status_code == 400, r.text
    r = setup.child(
        "PUT", account, "streamingEndpoints", "se-x", {"location": "westeurope", "properties": {}}
    )
    assert_media_error(r, 400, "BadRequest", "scaleUnits")
    r = setup.child(
        "PUT", account, "streamingEndpoints", "se-x", {"location": "eastus", "properties": {"scaleUnits": 0}}
    )
    assert_media_error(r, 400, "BadRequest", "location")
    r = setup.child("POST", account, "streamingEndpoints", "default/scale", {"scaleUnit": -1})
    assert_media_error(r, 400, "BadRequest", "scaleUnit")
    r = setup.child("GET", account, "streamingEndpoints", "nothing")
    assert r.status_code == 404
