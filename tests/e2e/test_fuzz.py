"""Malformed requests on every route the server has: never a 5xx, never a hang, never a change.

Over a thousand requests, generated from a fixed seed (``fuzz_cases.py``, ``fuzz_identity.py``,
``fuzz_keyvault.py``, ``fuzz_media.py``), go to every route family: the resource manager's
subscriptions, groups, resources, lists and actions, ``Microsoft.Authorization`` at every scope,
``Keyless.Directory``, the authority's discovery, token endpoints and issuer documents, IMDS
through the proxy and directly, the App Service endpoint, the edge's own routes and proxy, Key
Vault (``Microsoft.KeyVault`` vaults, access policies, name checks and deleted vaults; the data
plane at ``{vault}.vault.azure.net``: keys, versions, crypto operations, rotation policies,
secrets, deleted objects, backup and restore, ``rng``), and Media Services on the resource
manager (``Microsoft.Media/mediaservices`` accounts, their lists, ``syncStorageKeys`` and
``listEdgePolicies``; ``checkNameAvailability`` and the operation status and result URLs of a
location; assets, content key policies, streaming policies and locators, with their actions;
transforms and their presets, jobs and ``cancelJob``, streaming endpoints with ``start``,
``stop`` and ``scale``, and the lists' ``$filter``/``$orderby``/``$top``, ``fuzz_media_jobs.py``)
and its streaming origin (``{account}-{region}.streaming.media.azure.net``: paths, ranges, hosts);
directly and through ``CONNECT``, with the admin's token (so they reach deep) and without. Each is
hostile in one way: bad or deep JSON, wrong types, NUL and control characters and trailing
newlines in path segments, query, form fields and headers, over-long values, bad
percent-encoding, odd methods, huge headers and bodies, failing preconditions. Every request that
could write carries a body, a name or a precondition that must be refused, so the database (every
row of every table) must come out exactly as it went in; it is compared after each such request
to the resource manager (Media Services included) or Key Vault, so a failure names the request.
The identity endpoints, the authority, Graph, the edge and the streaming origin only mint tokens
or read, and have no write a body could be refused for; they are compared once, at the end.
Every 4xx of Media Services on the resource manager has ARM's error shape, and the origin's
answers named in ``MediaJobsGenerator.expected`` have their status (and bytes). The suite runs
this on SQLite and on PostgreSQL.

``test_hostile_but_valid_presets_end``: jobs whose presets are valid but extreme (1x1 and
8192x8192 pixels, 1,000 bps, 120 and 1 fps, a thumbnail per frame of a minute, 8 channels) each
end, Finished or Error, within a bound; a long encode is canceled within seconds; the server
answers all along; and the worker still runs an ordinary job afterwards.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import orjson

from tests.e2e.fuzz_helpers import ANSWER_WITHIN, Answer, Hostile, RawClient, Snapshots, make_targets
from tests.e2e.fuzz_media import make_media_targets
from tests.e2e.fuzz_media_jobs import MediaJobsGenerator, make_job_targets
from tests.e2e.fuzz_presets import HOSTILE_PRESETS, builtin, standard
from tests.e2e.job_helpers import (
    ENCODING_API,
    FINAL,
    asset_files,
    create_asset,
    create_transform,
    job_body,
    upload,
)
from tests.e2e.media_helpers import MediaSetup
from tests.keyless_server import KeylessServer
from tests.media_clips import make_clip

SEED = 20260507
FAMILIES = {
    "arm",
    "authority",
    "imds-proxy",
    "imds-direct",
    "app-service",
    "edge",
    "graph",
    "keyvault",
    "streaming",
}
# Families whose every write is compared on its own (each carries a refused name or body).
COMPARED = frozenset({"arm", "keyvault"})
# Methods that could change something; the state is compared after each request made with one.
WRITES = frozenset({b"PUT", b"PATCH", b"POST", b"DELETE"})


def test_malformed_requests_on_every_route(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    ids = make_targets(srv, SEED)
    ids.values.update(make_media_targets(srv, ids.values))
    ids.values.update(make_job_targets(srv, ids.values))
    generator = MediaJobsGenerator(srv, ids, random.Random(SEED))
    requests = list(generator.all())
    assert len(requests) >= 1000
    assert {r.family for r in requests} == FAMILIES
    snapshots = Snapshots(srv)
    client = RawClient(srv)
    failures: list[str] = []
    started = time.monotonic()
    try:
        state = snapshots.take()
        for request in requests:
            answer = client.send(request)
            if answer.status >= 500 or answer.status < 0 or answer.seconds >= ANSWER_WITHIN:
                got = f"{answer.status} in {answer.seconds:.1f}s"
                failures.append(f"{got}: {request.describe()} -> {answer.body[:160]!r}")
            failures += _media_answer(request, answer, generator.expected.get(request))
            if request.method not in WRITES or request.family not in COMPARED:
                continue  # reads and the other families are checked once, at the end
            now = snapshots.take()
            if now != state:
                changed = Snapshots.changed(state, now)
                failures.append(f"changed {changed} ({answer.status}): {request.describe()}")
                state = now
        final = snapshots.take()
    finally:
        snapshots.close()
    elapsed = time.monotonic() - started
    if final != state:
        failures.append(f"changed {Snapshots.changed(state, final)} by a read or an identity endpoint")
    assert not failures, f"{len(failures)} of {len(requests)} failed:\n" + "\n".join(failures[:40])
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
    with srv.arm(ids.admin_token) as arm:  # and the server still answers
        r = arm.get(f"/subscriptions/{srv.subscription_id}", params={"api-version": "2022-12-01"})
        assert r.status_code == 200, r.text
    print(f"{len(requests)} hostile requests answered in {elapsed:.1f}s")


# Statuses the HTTP layer answers before any service sees the request (no ARM body then).
HTTP_LAYER = frozenset({413, 414, 431})


def _media_answer(request: Hostile, answer: Answer, expected: tuple[int, bytes | None] | None) -> list[str]:
    """What is wrong with a Media Services answer: a 4xx on the resource manager without ARM's
    ``{"error": {"code", "message"}}``, or an origin answer other than ``expected``."""
    if expected is not None:
        status, body = expected
        if answer.status != status or (body is not None and answer.body != body):
            got = f"{answer.status} ({len(answer.body)} bytes)"
            return [f"wanted {status}, got {got}: {request.describe()} -> {answer.body[:120]!r}"]
    target = request.target.lower()
    if (
        request.family != "arm"
        or not target.startswith(b"/subscriptions/")
        or b"microsoft.media" not in target
    ):
        return []
    if (
        not 400 <= answer.status < 500
        or answer.status in HTTP_LAYER
        or b"application/json" not in answer.head
    ):
        return []  # (a malformed request line or header is refused by the HTTP layer, in plain text)
    try:
        error = orjson.loads(answer.body).get("error")
        if isinstance(error.get("code"), str) and isinstance(error.get("message"), str) and error["code"]:
            return []
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return [f"not ARM's error shape ({answer.status}): {request.describe()} -> {answer.body[:160]!r}"]


JOB_WITHIN = 300.0  # seconds for all the hostile jobs to end (each takes at most ~25 s here)


def test_hostile_but_valid_presets_end(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server({"KEYLESS_MEDIA_JOB_POLL_INTERVAL": "0.2", "KEYLESS_MEDIA_JOB_LEASE": "3"})
    setup = MediaSetup(srv)
    account = "amshostile"
    setup.create_account(account)
    for asset, clip in (("short", make_clip(0.5, 64, 48, 4)), ("long", make_clip(60, 64, 48, 10))):
        create_asset(setup, account, asset)
        upload(setup, account, asset, f"{asset}.mp4", clip)

    def put_job(transform: str, name: str, source: str, **props: object) -> None:
        create_asset(setup, account, f"out-{name}")
        body = job_body(source, f"out-{name}", **props)
        r = setup.child("PUT", account, "transforms", f"{transform}/jobs/{name}", body, api=ENCODING_API)
        assert r.status_code == 201, r.text

    def state(transform: str, name: str) -> dict[str, object]:
        r = setup.child("GET", account, "transforms", f"{transform}/jobs/{name}", api=ENCODING_API)
        assert r.status_code == 200, r.text
        return dict(r.json()["properties"])

    def responsive() -> None:
        started = time.monotonic()
        with srv.arm() as arm:
            r = arm.get(f"/subscriptions/{srv.subscription_id}", params={"api-version": "2022-12-01"})
        assert r.status_code == 200 and time.monotonic() - started < ANSWER_WITHIN, r.text

    # A long encode (a 8192x8192 layer for every frame of a minute) is canceled within seconds.
    create_transform(setup, account, "huge", standard([{"@odata.type": "#Microsoft.Media.H264Video",
        "complexity": "Speed", "layers": [{"width": "8192", "height": "8192", "bitrate": 1000}]}]))  # fmt: skip
    put_job("huge", "huge", "long")
    deadline = time.monotonic() + 60
    while state("huge", "huge")["state"] != "Processing":
        assert time.monotonic() < deadline, state("huge", "huge")
        time.sleep(0.3)
    for _ in range(3):  # the encoder runs in a child process: the server answers meanwhile
        responsive()
        time.sleep(1)
    r = setup.child("POST", account, "transforms", "huge/jobs/huge/cancelJob", api=ENCODING_API)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    while state("huge", "huge")["state"] != "Canceled":
        assert time.monotonic() < deadline, state("huge", "huge")
        time.sleep(0.3)
    # (a canceled job leaves nothing behind: its outputs are written only once encoded)
    problems = [
        f"the canceled job left {files}" for files in [asset_files(setup, account, "out-huge")] if files
    ]
    # Every extreme preset, and clip ranges beyond the clip: each job ends, Finished or Error.
    jobs = []
    for name, preset in HOSTILE_PRESETS.items():
        create_transform(setup, account, name, preset)
        put_job(name, name, "long" if "step" in name else "short")
        jobs.append((name, name))
    create_transform(setup, account, "audio", builtin("AACGoodQualityAudio"))
    clip_time, http = "#Microsoft.Media.AbsoluteClipTime", "#Microsoft.Media.JobInputHttp"
    asset_input = {"@odata.type": "#Microsoft.Media.JobInputAsset", "assetName": "short"}
    inputs: dict[str, dict[str, object]] = {
        "r-empty": {**asset_input, "end": {"@odata.type": clip_time, "time": "PT0S"}},
        "r-tiny": {
            **asset_input,
            "start": {"@odata.type": clip_time, "time": "PT0.4S"},
            "end": {"@odata.type": clip_time, "time": "PT0.4000001S"},
        },
    }
    for name, item in inputs.items():
        create_asset(setup, account, f"out-{name}")
        output = {"@odata.type": "#Microsoft.Media.JobOutputAsset", "assetName": f"out-{name}"}
        body = {"properties": {"input": item, "outputs": [output]}}
        r = setup.child("PUT", account, "transforms", f"audio/jobs/{name}", body, api=ENCODING_API)
        assert r.status_code == 201, r.text
        jobs.append(("audio", name))
    # Refused at creation (400, nothing created): a clip time past any clip, URLs no fetch can use.
    refused: dict[str, dict[str, object]] = {
        "r-beyond": {**asset_input, "start": {"@odata.type": clip_time, "time": "P999999D"}},
        "h-port": {"@odata.type": http, "files": ["https://example.com:99999/clip.mp4"]},
        "h-bracket": {"@odata.type": http, "files": ["https://[::1]x/clip.mp4"]},
    }
    for name, item in refused.items():
        output = {"@odata.type": "#Microsoft.Media.JobOutputAsset", "assetName": "out-r-empty"}
        body = {"properties": {"input": item, "outputs": [output]}}
        r = setup.child("PUT", account, "transforms", f"audio/jobs/{name}", body, api=ENCODING_API)
        assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest", r.text
        assert (
            setup.child("GET", account, "transforms", f"audio/jobs/{name}", api=ENCODING_API).status_code
            == 404
        )
    deadline = time.monotonic() + JOB_WITHIN
    ended: dict[str, dict[str, object]] = {}
    while len(ended) < len(jobs):
        assert time.monotonic() < deadline, (
            f"still running after {JOB_WITHIN} s: {sorted({n for _, n in jobs} - set(ended))}"
        )
        for transform, name in jobs:
            if name not in ended and (props := state(transform, name))["state"] in FINAL:
                ended[name] = props
        responsive()
        time.sleep(1)
    for name, props in ended.items():
        outputs = props["outputs"]
        assert isinstance(outputs, list)
        errors = [o.get("error") for o in outputs if o.get("error")]
        files = asset_files(setup, account, f"out-{name}")
        print(f"{name}: {props['state']} {errors} {len(files)} files")
        if props["state"] not in ("Finished", "Error"):
            problems.append(f"{name} ended {props['state']}")
        if props["state"] == "Error" and files:
            problems.append(f"{name} ended in Error but left {files[:5]}")
        if str(srv.data_dir) in str(errors) or "media-work" in str(errors):
            problems.append(f"{name}'s error shows the server's files: {errors}")
        if name.startswith("h-") and [e["code"] for e in errors] != ["DownloadNotAccessible"]:
            problems.append(f"{name} did not end in DownloadNotAccessible: {errors}")
        if any(e["code"] == "ServiceError" for e in errors):
            problems.append(f"{name} failed in the service: {errors}")
    # The worker is free: an ordinary job still runs to the end.
    put_job("audio", "after", "short")
    deadline = time.monotonic() + 60
    while (last := state("audio", "after"))["state"] not in FINAL:
        assert time.monotonic() < deadline, last
        time.sleep(0.3)
    assert last["state"] == "Finished", last
    assert not problems, "\n".join(problems)
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
