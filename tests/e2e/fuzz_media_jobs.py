"""Media Services' encoding and streaming routes for the fuzz test (issue 12): transforms, jobs
(``cancelJob``), streaming endpoints (``start``, ``stop``, ``scale``), the lists with ``$filter``,
``$orderby``, ``$top`` and ``$skiptoken``, and the streaming origin
``https://{account}-{region}.streaming.media.azure.net/{locatorId}/{file}``.

The resource-manager requests are in the ``arm`` family (the database is compared after every
write); the origin's in the ``streaming`` family (reads: compared once, at the end, and held to
the statuses ``MediaJobsGenerator.expected`` names).

The targets (``make_job_targets``, after ``fuzz_media.make_media_targets``) are real: transform
``fuzz-transform`` (one AACGoodQualityAudio output) with job ``fuzz-job`` (input ``fuzz-asset``,
which is empty, so the job ends in Error at once and is final before the first snapshot; output
``fuzz-out``), streaming endpoint ``fuzzse`` (Stopped), the ``default`` endpoint started, asset
``fuzz-media`` with the blobs ``clip.mp4``, ``clip.ism`` and ``dir/inner.mp4``, and the locators
``fuzz-dl`` (Predefined_DownloadOnly) and ``fuzz-dl-old`` (its window is over). Account
``fuzzams2`` has a ``default`` endpoint no one has touched: refused writes to it must not store it.
Account ``fuzzams3``'s running default endpoint allows only 192.0.2.1 (``accessControl.ip``): its
locator ``fenced`` must not be served to the fuzz (127.0.0.1).

As everywhere in the fuzz test, every write carries a name, a body, a query or a precondition
that must be refused. Writes of a new transform or job are only ever sent with such bodies, so
anything created or queued shows up as a change. Every preset in ``BAD_PRESETS`` must be refused
before an encoder runs (``test_fuzz.test_hostile_but_valid_presets_end`` runs the valid extremes).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from tests.e2e.fuzz_cases import BAD_JSON, HEADER_VARIANTS, ODD_METHODS, SEGMENT_SUFFIXES, Route
from tests.e2e.fuzz_helpers import Hostile, Ids
from tests.e2e.fuzz_media import ACCOUNT_TEMPLATE, CHILD, IF_MATCH, ODATA, RG, MediaGenerator
from tests.e2e.fuzz_presets import BAD_PRESETS, BUILTIN_AUDIO
from tests.e2e.media_helpers import CHILD_API, MEDIA_API
from tests.keyless_server import KeylessServer

ENCODING_API = "2022-07-01"  # azure-mgmt-media 10.x: transforms and jobs
STREAMING_API = "2022-08-01"  # azure-mgmt-media 10.x: streaming endpoints
TRANSFORMS = CHILD + "/transforms"
TRANSFORM, TRANSFORM_NEW = TRANSFORMS + "/fuzz-transform", TRANSFORMS + "/fuzz-transform-new"
JOBS = TRANSFORM + "/jobs"
JOB, JOB_NEW = JOBS + "/fuzz-job", JOBS + "/fuzz-job-new"
ENDPOINTS = CHILD + "/streamingEndpoints"
ENDPOINT, ENDPOINT_NEW, DEFAULT = ENDPOINTS + "/fuzzse", ENDPOINTS + "/fuzzsenew", ENDPOINTS + "/default"
LOCATOR_DL = CHILD + "/streamingLocators/fuzz-dl"
OTHER_DEFAULT = RG + "/providers/Microsoft.Media/mediaServices/fuzzams2/streamingEndpoints/default"
ORIGIN = "{ams}-westeurope.streaming.media.azure.net"
STOPPED_ORIGIN = "fuzzse-{ams}-westeurope.streaming.media.azure.net"
FENCED_ORIGIN = "fuzzams3-westeurope.streaming.media.azure.net"  # its allow list excludes the caller
CONTENT = random.Random(20261130).randbytes(50_000)
INPUT_ASSET, INPUT_HTTP, INPUTS = ODATA + "JobInputAsset", ODATA + "JobInputHttp", ODATA + "JobInputs"
OUTPUT_ASSET, CLIP = ODATA + "JobOutputAsset", ODATA + "AbsoluteClipTime"
TRANSFORM_OUTPUT = {"preset": BUILTIN_AUDIO}
TRANSFORM_TEMPLATE = {"properties": {"description": "fuzz transform", "outputs": [TRANSFORM_OUTPUT]}}
TRANSFORM_TYPED = (("properties", "obj"), ("properties.description", "str"), ("properties.outputs", "list"))
# fmt: off
TRANSFORM_EXTRA: dict[str, tuple[Any, ...]] = {
    "properties": ({"outputs": None}, {"description": None, "outputs": []}),
    "properties.description": ("d" * 5000,),
    "properties.outputs": (
        [], [5], [{}], [None], [{"preset": None}], [{"preset": 5}], [{"preset": []}], [TRANSFORM_OUTPUT] * 21,
        [TRANSFORM_OUTPUT] * 1000, {"0": TRANSFORM_OUTPUT}, [{**TRANSFORM_OUTPUT, "onError": "Maybe"}],
        [{**TRANSFORM_OUTPUT, "onError": 5}], [{**TRANSFORM_OUTPUT, "onError": ""}],
        [{**TRANSFORM_OUTPUT, "relativePriority": "Urgent"}], [{**TRANSFORM_OUTPUT, "relativePriority": ["High"]}],
        *([{"preset": preset}] for preset in BAD_PRESETS),
    ),
}
# fmt: on

ASSET_IN = {"@odata.type": INPUT_ASSET, "assetName": "fuzz-asset"}
ASSET_OUT = {"@odata.type": OUTPUT_ASSET, "assetName": "fuzz-out"}
JOB_TEMPLATE = {"properties": {"input": ASSET_IN, "outputs": [ASSET_OUT]}}
JOB_TYPED = (
    ("properties", "obj"),
    ("properties.description", "str"),
    ("properties.priority", "str"),
    ("properties.input", "obj"),
    ("properties.outputs", "list"),
    ("properties.correlationData", "obj"),
)


def _clip(time_value: Any, kind: Any = CLIP) -> dict[str, Any]:
    return {"@odata.type": kind, "time": time_value}


def _http(base: Any = None, files: Any = None, **more: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"@odata.type": INPUT_HTTP, **more}
    if base is not None:
        item["baseUri"] = base
    if files is not None:
        item["files"] = files
    return item


# Durations no clip time may have: malformed, negative, out of any range, or not a duration.
# fmt: off
BAD_DURATIONS: tuple[Any, ...] = (
    "x", "", "P", "PT", "T1S", "-PT1S", "PT-1S", "PT1S ", " PT1S", "PT1.5.5S", "PT1e3S", "PT1,5S", "P1DT",
    "PT1H1H", "PT" + "9" * 30 + "S", "PT1S\n", "1", "00:00:01", "P1Y", "P1M", "P1W", "PT\u0661S", 5, None,
    1.5, ["PT1S"], {"time": "PT1S"},
)
# fmt: on
UTC_CLIP = _clip("2026-01-01T00:00:00Z", ODATA + "UtcClipTime")
# URLs a JobInputHttp must refuse: not http(s), no host, malformed, too long, or not one file. (A
# port out of range is taken: the job then ends in DownloadNotAccessible, test_fuzz checks.)
BAD_URLS: tuple[Any, ...] = (
    "ftp://example.com/clip.mp4", "file:///etc/passwd", "javascript:alert(1)", "//example.com/clip.mp4",
    "https://", "https:///clip.mp4", "https://[::1/clip.mp4", "https://[zz]/clip.mp4", "https://[]/clip.mp4",
    "https://example.com/" + "c" * 4000, "", 5, None,
)  # fmt: skip
# fmt: off
BAD_INPUTS: tuple[Any, ...] = (
    {}, {"@odata.type": INPUT_ASSET}, {**ASSET_IN, "assetName": "nosuch"}, {**ASSET_IN, "assetName": ""},
    {**ASSET_IN, "assetName": None}, {**ASSET_IN, "assetName": 5}, {**ASSET_IN, "assetName": "a" * 300},
    {**ASSET_IN, "assetName": "fuzz-asset\n"}, {**ASSET_IN, "assetName": "../fuzz-asset"},
    {**ASSET_IN, "assetName": "fuzz-out"},  # the output asset: every asset of a job must differ
    {**ASSET_IN, "@odata.type": ODATA + "JobInputClip"}, {**ASSET_IN, "@odata.type": OUTPUT_ASSET},
    {**ASSET_IN, "@odata.type": "Microsoft.Media.JobInputAsset"}, {**ASSET_IN, "@odata.type": 5},
    {**ASSET_IN, "@odata.type": None}, {**ASSET_IN, "@odata.type": ODATA + "JobInputSequence"},
    {**ASSET_IN, "@odata.type": ODATA + "X" * 5000},
    {**ASSET_IN, "files": 5}, {**ASSET_IN, "files": "clip.mp4"}, {**ASSET_IN, "files": [5]},
    {**ASSET_IN, "files": [""]}, {**ASSET_IN, "files": ["f" * 1025]}, {**ASSET_IN, "files": ["a", "b"]},
    {**ASSET_IN, "files": ["f"] * 101}, {**ASSET_IN, "files": {}}, {**ASSET_IN, "files": [None]},
    {**ASSET_IN, "label": 5}, {**ASSET_IN, "label": "l" * 300}, {**ASSET_IN, "label": ["l"]},
    *({**ASSET_IN, "start": _clip(bad)} for bad in BAD_DURATIONS),
    *({**ASSET_IN, "end": _clip(bad)} for bad in BAD_DURATIONS),
    {**ASSET_IN, "start": UTC_CLIP}, {**ASSET_IN, "end": UTC_CLIP}, {**ASSET_IN, "start": "PT1S"},
    {**ASSET_IN, "start": 5}, {**ASSET_IN, "start": []}, {**ASSET_IN, "start": {"time": "PT1S"}},
    {**ASSET_IN, "start": _clip("PT1S", ODATA + "Nope")}, {**ASSET_IN, "start": _clip("PT1S", 5)},
    {**ASSET_IN, "start": _clip("PT2S"), "end": _clip("PT1S")},
    {**ASSET_IN, "start": _clip("PT2S"), "end": _clip("PT2S")},
    {**ASSET_IN, "start": _clip("P1D"), "end": _clip("PT86399.9999999S")},
    {**ASSET_IN, "inputDefinitions": 5}, {**ASSET_IN, "inputDefinitions": "x"},
    {"@odata.type": INPUTS}, {"@odata.type": INPUTS, "inputs": []}, {"@odata.type": INPUTS, "inputs": 5},
    {"@odata.type": INPUTS, "inputs": [5]}, {"@odata.type": INPUTS, "inputs": [ASSET_IN, ASSET_IN]},
    {"@odata.type": INPUTS, "inputs": [{"@odata.type": INPUTS, "inputs": [ASSET_IN]}]},
    {"@odata.type": INPUTS, "inputs": [ASSET_IN] * 1000},
    *(_http(bad, ["/clip.mp4"]) for bad in BAD_URLS), *(_http(files=[bad]) for bad in BAD_URLS),
    _http(), _http(files=[]), _http(files=["https://example.com/a.mp4"] * 2),
    _http("https://example.com/", ["a.mp4", "b.mp4"]), _http("https://example.com/", "a.mp4"),
    _http("https://example.com/", [5]), _http("https://example.com/" + "b" * 3990, ["c" * 20]),
    _http(files=["https://example.com/a.mp4"], start=_clip("PT")),
    _http(files=["https://example.com/a.mp4"], assetName="fuzz-asset", label=5),
)
BAD_JOB_OUTPUTS: tuple[Any, ...] = (
    [], [5], [{}], [None], {"0": ASSET_OUT}, [ASSET_OUT, {**ASSET_OUT, "assetName": "fuzz-media"}],
    [ASSET_OUT] * 1000, [{"@odata.type": OUTPUT_ASSET}], [{**ASSET_OUT, "assetName": "nosuch"}],
    [{**ASSET_OUT, "assetName": "fuzz-asset"}], [{**ASSET_OUT, "assetName": ""}], [{**ASSET_OUT, "assetName": 5}],
    [{**ASSET_OUT, "assetName": "o" * 300}], [{**ASSET_OUT, "@odata.type": ODATA + "JobOutput"}],
    [{**ASSET_OUT, "@odata.type": INPUT_ASSET}], [{**ASSET_OUT, "@odata.type": None}],
    [{**ASSET_OUT, "label": 5}], [{**ASSET_OUT, "label": "l" * 300}], [{**ASSET_OUT, "presetOverride": 5}],
    [{**ASSET_OUT, "presetOverride": {}}], [{**ASSET_OUT, "presetOverride": []}],
    *([{**ASSET_OUT, "presetOverride": preset}] for preset in BAD_PRESETS if preset is not None),
)
JOB_EXTRA: dict[str, tuple[Any, ...]] = {
    # ({} and the same input are a PATCH that changes nothing: valid)
    "properties": ({"input": None}, {"outputs": [ASSET_OUT]}, {"outputs": None}),
    "properties.description": ("d" * 5000,),
    "properties.priority": ("Urgent", "", "High\n", "h" * 300),
    "properties.input": BAD_INPUTS,
    "properties.outputs": BAD_JOB_OUTPUTS,
    # (a falsy wrong type too: an update must not take "" or 0 for the empty correlation data)
    "properties.correlationData": (
        {"k": 5}, {"k": None}, {"k": ["v"]}, {"k" * 300: "v"}, {"k": "v" * 5000},
        {f"k{i}": "v" for i in range(51)}, "", 0, [],
    ),
}
# fmt: on

ENDPOINT_TEMPLATE = {"location": "westeurope", "properties": {"scaleUnits": 0}}
ENDPOINT_TYPED = (
    ("location", "str"),
    ("tags", "obj"),
    ("properties", "obj"),
    ("properties.description", "str"),
    ("properties.scaleUnits", "int"),
    ("properties.availabilitySetName", "str"),
    ("properties.cdnEnabled", "bool"),
    ("properties.cdnProvider", "str"),
    ("properties.cdnProfile", "str"),
    ("properties.maxCacheAge", "int"),
    ("properties.customHostNames", "list"),
    ("properties.accessControl", "obj"),
    ("properties.crossSiteAccessPolicies", "obj"),
)
AKAMAI = "akamaiSignatureHeaderAuthenticationKeyList"


def _allow(*entries: Any) -> dict[str, Any]:
    return {"ip": {"allow": list(entries)}}


# fmt: off
ENDPOINT_EXTRA: dict[str, tuple[Any, ...]] = {
    "location": ("eastus", "", "l" * 300),
    "properties": ({"scaleUnits": None}, {"scaleUnits": "0"}),
    "properties.description": ("d" * 2000,),
    "properties.scaleUnits": (-1, 101, 2**63, 1e30, None),
    "properties.availabilitySetName": ("a" * 300,),
    "properties.cdnProvider": ("p" * 100,),
    "properties.cdnProfile": ("p" * 300,),
    "properties.maxCacheAge": (-1, 2**31, 1e30),
    "properties.customHostNames": (["h" * 254], ["h"] * 101, [None], [5], [["h"]]),
    "properties.accessControl": (
        {"akamai": 5}, {"ip": 5}, {"ip": {"allow": 5}}, _allow(5), _allow(None), _allow({"address": 5}),
        _allow({"name": "n", "address": "1.2.3.4", "subnetPrefixLength": 129}),
        _allow({"name": "n", "address": "1.2.3.4", "subnetPrefixLength": -1}),
        _allow({"name": "n", "address": "1.2.3.4", "subnetPrefixLength": "8"}),
        _allow({"name": "n", "address": "999.1.1.1"}), _allow({"name": "n", "address": "a" * 5000}),
        _allow(*[{"name": "n", "address": "1.2.3.4"}] * 101),
        {"akamai": {AKAMAI: 5}}, {"akamai": {AKAMAI: [5]}}, {"akamai": {AKAMAI: [{"base64Key": 5}]}},
        {"akamai": {AKAMAI: [{"identifier": "i" * 5000}]}},
    ),
    "properties.crossSiteAccessPolicies": (
        {"clientAccessPolicy": 5}, {"crossDomainPolicy": ["x"]}, {"clientAccessPolicy": "c" * 5000},
    ),
}
# fmt: on
SCALE_EXTRA: dict[str, tuple[Any, ...]] = {"scaleUnit": (-1, 101, 2**64 - 1, None, "1")}


def job_routes() -> list[Route]:
    """Transforms, jobs, streaming endpoints and their actions, and the collections."""
    rw = ("GET", "PUT", "PATCH", "DELETE")
    scale = {"scaleUnit": 1}
    # fmt: off
    return [
        Route(TRANSFORMS, ENCODING_API, ("GET",)),
        Route(TRANSFORM, ENCODING_API, rw, TRANSFORM_TEMPLATE, TRANSFORM_TYPED, extra=TRANSFORM_EXTRA),
        Route(TRANSFORM_NEW, ENCODING_API, ("PUT",), TRANSFORM_TEMPLATE, TRANSFORM_TYPED, extra=TRANSFORM_EXTRA),
        Route(JOBS, ENCODING_API, ("GET",)),
        Route(JOB, ENCODING_API, rw, JOB_TEMPLATE, JOB_TYPED, extra=JOB_EXTRA),
        Route(JOB_NEW, ENCODING_API, ("PUT",), JOB_TEMPLATE, JOB_TYPED, extra=JOB_EXTRA),
        Route(JOB + "/cancelJob", ENCODING_API, ("POST",), object_only=True),
        Route(LOCATOR_DL + "/listPaths", CHILD_API, ("POST",), object_only=True),
        Route(ENDPOINTS, STREAMING_API, ("GET",)),
        Route(ENDPOINT, STREAMING_API, rw, ENDPOINT_TEMPLATE, ENDPOINT_TYPED, extra=ENDPOINT_EXTRA),
        Route(DEFAULT, STREAMING_API, ("GET", "PATCH"), ENDPOINT_TEMPLATE, ENDPOINT_TYPED, extra=ENDPOINT_EXTRA),
        *(Route(f"{path}/{action}", STREAMING_API, ("POST",), object_only=True)
          for path in (ENDPOINT, DEFAULT) for action in ("start", "stop")),
        Route(ENDPOINT + "/scale", STREAMING_API, ("POST",), scale, (("scaleUnit", "int"),), extra=SCALE_EXTRA),
        Route(DEFAULT + "/scale", STREAMING_API, ("POST",), scale, (("scaleUnit", "int"),), extra=SCALE_EXTRA),
    ]
    # fmt: on


# Writes that must change nothing: refused (a precondition, an update of what cannot change, the
# quota, the default endpoint's deletion, an untouched default endpoint given a refused body) or
# a no-op (cancelJob of a final job, listPaths): (method, path, api, body, headers).
FALSY_CORRELATION: tuple[Any, ...] = ("", 0, [], False)  # wrong types an update must not read as {}
NO_CHANGE: tuple[tuple[str, str, str, Any, tuple[tuple[bytes, bytes], ...]], ...] = (
    ("PUT", TRANSFORM, ENCODING_API, TRANSFORM_TEMPLATE, IF_MATCH),
    ("PUT", TRANSFORM, ENCODING_API, TRANSFORM_TEMPLATE, ((b"If-None-Match", b"*"),)),
    ("PATCH", TRANSFORM, ENCODING_API, TRANSFORM_TEMPLATE, IF_MATCH),
    ("DELETE", TRANSFORM, ENCODING_API, None, IF_MATCH),
    ("PUT", TRANSFORM_NEW, ENCODING_API, TRANSFORM_TEMPLATE, IF_MATCH),
    ("PUT", TRANSFORM_NEW, ENCODING_API, TRANSFORM_TEMPLATE, ((b"If-Match", b"*"),)),
    ("PUT", TRANSFORM_NEW, "2017-01-01", TRANSFORM_TEMPLATE, ()),
    ("PUT", JOB, ENCODING_API, {"properties": {**JOB_TEMPLATE["properties"], "outputs": []}}, ()),
    ("PATCH", JOB, ENCODING_API, {"properties": {"input": {**ASSET_IN, "assetName": "fuzz-media"}}}, ()),
    ("PATCH", JOB, ENCODING_API, {"properties": {"outputs": [{**ASSET_OUT, "assetName": "fuzz-media"}]}}, ()),
    ("PATCH", JOB, ENCODING_API, {"properties": {"correlationData": {"k": "v"}}}, ()),
    *(
        ("PATCH", JOB, ENCODING_API, {"properties": {"correlationData": bad}}, ())
        for bad in FALSY_CORRELATION
    ),
    ("PATCH", JOB, ENCODING_API, {"properties": {"priority": "Low"}}, IF_MATCH),
    ("DELETE", JOB, ENCODING_API, None, IF_MATCH),
    ("PUT", JOB_NEW, ENCODING_API, JOB_TEMPLATE, IF_MATCH),
    ("PUT", JOB_NEW, ENCODING_API, JOB_TEMPLATE, ((b"If-Match", b"*"),)),
    ("PUT", JOB_NEW, "2017-01-01", JOB_TEMPLATE, ()),
    ("PUT", TRANSFORMS + "/nosuch/jobs/fuzz-job-new", ENCODING_API, JOB_TEMPLATE, ()),
    ("POST", JOB + "/cancelJob", ENCODING_API, None, ()),
    ("POST", JOB + "/cancelJob", ENCODING_API, {}, ()),
    ("POST", LOCATOR_DL + "/listPaths", CHILD_API, None, ()),
    ("POST", LOCATOR_DL + "/listPaths", CHILD_API, {"x": 1}, ()),
    ("PUT", ENDPOINT_NEW, STREAMING_API, ENDPOINT_TEMPLATE, ()),  # over the quota of 2
    ("PUT", ENDPOINT, STREAMING_API, ENDPOINT_TEMPLATE, IF_MATCH),
    ("DELETE", DEFAULT, STREAMING_API, None, ()),
    ("DELETE", ENDPOINT, STREAMING_API, None, IF_MATCH),
    ("PUT", OTHER_DEFAULT, STREAMING_API, {"location": "westeurope", "properties": {"scaleUnits": -1}}, ()),
    ("PATCH", OTHER_DEFAULT, STREAMING_API, {"properties": {"maxCacheAge": "x"}}, ()),
    ("PATCH", OTHER_DEFAULT, STREAMING_API, {"properties": {"description": 5}}, IF_MATCH),
    ("POST", OTHER_DEFAULT + "/scale", STREAMING_API, {"scaleUnit": -1}, ()),
    ("POST", OTHER_DEFAULT + "/start", STREAMING_API, [], ()),
    ("DELETE", OTHER_DEFAULT, STREAMING_API, None, ()),
)
NO_CHANGE_RAW: tuple[tuple[str, str, str, bytes], ...] = (  # (method, path, query, raw body)
    (
        "PUT",
        OTHER_DEFAULT,
        f"api-version={STREAMING_API}&autoStart=maybe",
        b'{"properties":{"scaleUnits":0}}',
    ),
    ("PUT", ENDPOINT, f"api-version={STREAMING_API}&autoStart=", b'{"properties":{"scaleUnits":0}}'),
    ("POST", OTHER_DEFAULT + "/stop", f"api-version={STREAMING_API}", b"{"),
)
# Lists' queries, raw (already percent-encoded): never a 5xx, whatever they hold.
STATE = "properties/state%20eq%20Microsoft.Media.JobState"
# fmt: off
LIST_QUERIES = (
    f"$filter={STATE}'x'", f"$filter={STATE}''", f"$filter={STATE}'Finished", f"$filter={STATE}'" + "F" * 40 + "'",
    f"$filter={STATE}'Error'%20or%20{STATE}'Finished'", "$filter=properties/state%20eq%20Microsoft.Media.Nope'a'",
    f"$filter={STATE}'Error'Microsoft.Media.JobState'x'", f"$filter={STATE}%27%E2%80%AEa%27",
    "$filter=properties/state%20gt%205", "$filter=" + "name%20eq%20'a'%20or%20" * 150 + "name%20eq%20'b'",
    "$filter=" + "not%20" * 100 + "name%20eq%20'a'", "$filter=" + "(" * 40 + "name%20eq%20'a'" + ")" * 40,
    "$filter=properties/created%20gt%202021-13-45T00:00:00Z", "$filter=properties/created%20gt%209999-12-31T23:59:59Z",
    "$filter=properties/created%20ge%200001-01-01T00:00:00Z", "$filter=properties/created%20gt%20'2021'",
    "$filter=properties/lastModified%20le%202021-01-01", "$filter=properties/created%20gt%20-1",
    "$filter=name%20eq%205", "$filter=name%20eq%20null", "$filter=name%20eq%20true", "$filter=name%20in%20('a','b')",
    "$filter=name%20eq%20'a''b'", "$filter=startswith(name,'a')", "$filter=name%20eq%20@p", "$filter=$it%20eq%201",
    "$filter=name%20eq%20'%C3%A9'", "$filter=name%20eq%20'%ED%A0%80'", "$filter=name%20eq%20'%FF'",
    "$filter=properties/state%20eq%2000000000-0000-0000-0000-000000000000", "$filter=name%20eq%20'a'&$filter=x",
    "$filter=name%20eq%20'" + "n" * 3000 + "'", "$filter=%00", "$filter=name%20eq%20'%00'",
    "$orderby=name%20desc%20desc", "$orderby=properties/state", "$orderby=name,properties/created",
    "$orderby=" + "n" * 300, "$orderby=name%00", "$orderby=properties/created%20desc", "$orderby=%20",
    "$top=0", "$top=-1", "$top=1e3", "$top=%C2%B2", "$top=%D9%A3", "$top=%EF%BC%91", "$top=99999999999",
    "$top=1111111", "$top=1&$skiptoken=-1", "$top=1&$skiptoken=999999999", "$top=1&$skiptoken=%C2%B2",
    "$top=1&$skiptoken=%D9%A3", "$filter=name%20ne%20'x'&$skiptoken=" + "9" * 12, "$top=%20%20",
)
# fmt: on
ODD_JOB_PATHS = (
    JOB + "/cancelJob/x",
    JOB + "/nosuchaction",
    JOB + "/outputs",
    TRANSFORMS + "//jobs",
    JOBS + "/",
    ENDPOINT + "/skus",
    DEFAULT + "/operationLocations/x",
    CHILD + "/streamingEndpointOperations/x",
    ENDPOINT + "/start/x",
    TRANSFORM + "/cancelJob",
)


def _origin_paths() -> tuple[tuple[str, int], ...]:
    """Request-targets on the running default endpoint's host, with the status each must get."""
    # fmt: off
    return (
        ("/{ams_dl_locator}/clip.mp4", 200), ("/{ams_dl_locator_upper}/clip.mp4", 200),
        ("/{ams_dl_locator}/dir/inner.mp4", 200), ("/{ams_dl_locator}/clip.ism", 404),
        ("/{ams_dl_locator}/clip.ism/manifest(format=m3u8-aapl)", 404), ("/{ams_old_locator}/clip.mp4", 404),
        ("/{guid}/clip.mp4", 404), ("/{ams_locator_id}/clip.mp4", 404), ("/{ams_dl_locator}/nosuch.mp4", 404),
        ("/{ams_dl_locator}/../{ams_dl_locator}/clip.mp4", 404), ("/{ams_dl_locator}/./clip.mp4", 404),
        ("/{ams_dl_locator}//clip.mp4", 404), ("/{ams_dl_locator}/dir/../clip.mp4", 404),
        ("/{ams_dl_locator}/%2e%2e/%2e%2e/etc/passwd", 404), ("/{ams_dl_locator}/..%2F..%2Fclip.mp4", 404),
        ("/{ams_dl_locator}/dir%2Finner.mp4", 200), ("/{ams_dl_locator}/clip.mp4%00.txt", 404),
        ("/{ams_dl_locator}/" + "a" * 3000, 414), ("/{ams_dl_locator}", 404), ("/{ams_dl_locator}/", 404),
        ("/", 404), ("/{ams_dl_locator}/clip.mp4?comp=list&restype=container", 200),
        ("/{ams_dl_locator}/?restype=container&comp=list", 404), ("/{ams_dl_locator}/clip.mp4/", 404),
        ("/{ams_dl_locator}%00/clip.mp4", 404), ("/{ams_dl_locator}x/clip.mp4", 404),
        ("/{ams_dl_locator}/%", 404), ("/{ams_dl_locator}/%zz", 404), ("/{ams_dl_locator}/clip.mp4%20", 404),
        ("/{ams_dl_locator}/CLIP.MP4", 404), ("/fuzz-dl/clip.mp4", 404),
    )
    # fmt: on


RANGES: tuple[tuple[bytes, int, bytes | None], ...] = (  # (Range, status, the bytes served)
    (b"bytes=0-0", 206, CONTENT[:1]),
    (b"bytes=-1", 206, CONTENT[-1:]),
    (b"bytes=0-", 206, CONTENT),
    (b"bytes=49990-99999999", 206, CONTENT[49990:]),
    (b"bytes=-99999999", 206, CONTENT),
    (b"bytes=50000-", 416, None),
    (b"bytes=5-1", 416, None),
    (b"bytes=-0", 416, None),
    (b"bytes=" + b"9" * 19 + b"-", 416, None),
    (b"bytes=" + b"9" * 30 + b"-", 200, CONTENT),
    (b"bytes=-" + b"9" * 19, 206, CONTENT),
    (b"bytes=0-1,2-3", 200, CONTENT),
    (b"items=0-1", 200, CONTENT),
    (b"bytes = 0-1", 200, CONTENT),
    (b"bytes=\x01-1", 0, None),  # (0: any answer but a 5xx; the HTTP layer refuses a control byte)
    (b"bytes=" + b"0-1," * 2000, 200, CONTENT),
    (b"bytes=\xd9\xa1-\xd9\xa2", 200, CONTENT),
    (b"bytes=-", 200, CONTENT),
    (b"", 200, CONTENT),
)
# Hosts that name no running endpoint (stopped, unknown, another region, malformed).
OTHER_HOSTS = (
    STOPPED_ORIGIN,
    "nosuch-westeurope.streaming.media.azure.net",
    "{ams}-eastus.streaming.media.azure.net",
    "{ams}-uswe.streaming.media.azure.net",
    "{ams}.streaming.media.azure.net",
    "-{ams}-westeurope.streaming.media.azure.net",
    "a-b-c-{ams}-westeurope.streaming.media.azure.net",
    "{ams}--westeurope.streaming.media.azure.net",
    "fuzzams2-westeurope.streaming.media.azure.net",
)


class MediaJobsGenerator(MediaGenerator):
    """``MediaGenerator`` plus the encoding and streaming routes (module docstring).
    ``expected``: the status (and bytes, when given) some origin requests must get."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected: dict[Hostile, tuple[int, bytes | None]] = {}

    def all(self) -> Iterator[Hostile]:
        yield from super().all()  # first, so every earlier family draws what it drew before
        yield from self.media_jobs()
        yield from self.origin()

    def media_jobs(self) -> Iterator[Hostile]:
        for route in job_routes():
            yield from self.arm(route)
            for method, target, label, body, _ in self.media_wrong(route):
                yield self.admin_arm(str(method), target, label, body)
        for method, path, api, doc, headers in NO_CHANGE:
            body = orjson.dumps(self.ids.fill_doc(doc)) if doc is not None else b""
            label = f"no change {headers[0][0].decode() if headers else method}"
            yield self.admin_arm(method, self.target(path, api), label, body, headers)
        for method, path, query, raw in NO_CHANGE_RAW:
            target = self.target(path, "x").split(b"?")[0] + b"?" + query.encode()
            yield self.admin_arm(method, target, "no change raw", raw)
        for collection, api in (
            (TRANSFORMS, ENCODING_API),
            (JOBS, ENCODING_API),
            (ENDPOINTS, STREAMING_API),
            (CHILD + "/assets", CHILD_API),
        ):
            for query in LIST_QUERIES:
                target = self.target(collection, api) + b"&" + query.encode()
                yield self.admin_arm("GET", target, f"list {query[:30]}", b"")
        for path in ODD_JOB_PATHS:
            api = STREAMING_API if "streaming" in path.lower() else ENCODING_API
            target = b"/" + b"/".join(s.encode() for s in self.ids.fill(path).split("/")[1:])
            target += b"?api-version=" + api.encode()
            yield self.admin_arm("GET", target, "odd path", b"")
            yield self.admin_arm(
                self.pick(("PUT", "PATCH", "POST")), target, "odd path", bytes(self.pick(BAD_JSON))
            )

    # --- the streaming origin ---------------------------------------------------------------

    def origin_request(
        self,
        method: bytes,
        target: bytes,
        label: str,
        host: str = ORIGIN,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        body: bytes = b"",
        expect: tuple[int, bytes | None] | None = None,
    ) -> Hostile:
        """One request to a streaming host, direct (Host picks the service) or through CONNECT."""
        listener = "connect" if self.rng.random() < 0.25 else "https"
        request = Hostile("streaming", listener, method, target, self.ids.fill(host), headers, body, label)
        if expect is not None:
            self.expected[request] = expect
        return request

    def origin(self) -> Iterator[Hostile]:
        clip = self.ids.fill("/{ams_dl_locator}/clip.mp4").encode()
        for path, status in _origin_paths():
            target = self.ids.fill(path).encode()
            body = CONTENT if status == 200 and path.endswith("clip.mp4") else None
            yield self.origin_request(b"GET", target, "path", expect=(status, body))
            yield self.origin_request(b"HEAD", target, "path", expect=(status, b""))
        for _ in range(12):  # a hostile byte in the locator id or the file name
            index = self.rng.randrange(2)
            parts = clip.split(b"/")[1:]
            parts[index] += self.pick(SEGMENT_SUFFIXES)
            yield self.origin_request(b"GET", b"/" + b"/".join(parts), "segment")
        headers: tuple[tuple[bytes, bytes], ...]
        for value, status, served in RANGES:
            headers = ((b"Range", value),) if value else ()
            expect = (status, served) if status else None
            yield self.origin_request(b"GET", clip, f"range {value[:20]!r}", headers=headers, expect=expect)
        two = ((b"Range", b"bytes=0-0"), (b"Range", b"bytes=1-1"))
        yield self.origin_request(b"GET", clip, "two ranges", headers=two)
        for method in (b"PUT", b"POST", b"DELETE", b"PATCH", b"MERGE"):
            headers = ((b"x-ms-blob-type", b"BlockBlob"), (b"Content-Type", b"video/mp4"))
            yield self.origin_request(
                method, clip, "write", headers=headers, body=b"overwritten", expect=(405, None)
            )
        for method in ODD_METHODS:
            if method != b"CONNECT":
                yield self.origin_request(method, clip, "method")
        yield self.origin_request(b"OPTIONS", clip, "preflight", expect=(200, b""))
        for headers in HEADER_VARIANTS:
            yield self.origin_request(b"GET", clip, "headers", headers=headers)
        for host in OTHER_HOSTS:
            yield self.origin_request(b"GET", clip, f"host {host[:24]}", host=host, expect=(404, None))
        fenced = self.ids.fill("/{ams_fenced_locator}/clip.mp4").encode()
        # accessControl.ip names no local caller: 403 (Keyless's choice; Azure's answer is unpublished).
        yield self.origin_request(b"GET", fenced, "ip allow list", host=FENCED_ORIGIN, expect=(403, None))
        for host in (ORIGIN.upper(), ORIGIN + ":443", ORIGIN + ".", "x" * 300 + ".streaming.media.azure.net"):
            yield self.origin_request(b"GET", clip, f"host {host[-12:]}", host=host)
        yield self.origin_request(b"GET", b"https://evil.example" + clip, "absolute target")
        yield self.origin_request(b"GET", b"*", "asterisk")


def _ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), r.text
    return dict(r.json()) if r.content else {}


def _publish(
    srv: KeylessServer, arm: httpx.Client, account: str, blobs: dict[str, bytes], locators: dict[str, Any]
) -> dict[str, str]:
    """Asset ``fuzz-media`` of ``account`` (a full ``.../mediaServices/{name}`` path) holding
    ``blobs``, and a Predefined_DownloadOnly locator on it per ``locators`` entry (name -> more
    properties); their ``streamingLocatorId`` by name."""
    child = {"api-version": CHILD_API}
    _ok(arm.put(f"{account}/assets/fuzz-media", params=child, json={"properties": {}}))
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    sas = {"permissions": "ReadWrite", "expiryTime": expiry}
    url = _ok(arm.post(f"{account}/assets/fuzz-media/listContainerSas", params=child, json=sas))
    base, _, query = str(url["assetContainerSasUrls"][0]).partition("?")
    with srv.client() as client:
        for blob, data in blobs.items():
            headers = {"x-ms-blob-type": "BlockBlob", "content-type": "video/mp4"}
            r = client.put(f"{base}/{blob}?{query}", content=data, headers=headers)
            assert r.status_code == 201, r.text
    ids = {}
    for name, extra in locators.items():
        props = {"assetName": "fuzz-media", "streamingPolicyName": "Predefined_DownloadOnly", **extra}
        made = _ok(arm.put(f"{account}/streamingLocators/{name}", params=child, json={"properties": props}))
        ids[name] = str(made["properties"]["streamingLocatorId"])
    return ids


def make_job_targets(srv: KeylessServer, values: dict[str, str]) -> dict[str, str]:
    """The encoding and streaming targets (module docstring), made by the admin; ``values``:
    ``make_targets``' and ``make_media_targets``'. Also account ``fuzzams3``, whose running
    default endpoint allows only 192.0.2.1 (``accessControl.ip``) to its locator ``fenced``. The
    values the routes fill in: the locator ids of ``fuzz-dl`` (as given and upper-case),
    ``fuzz-dl-old`` and ``fenced``."""
    ids = Ids(values, "", "", "", "")
    encoding, streaming = {"api-version": ENCODING_API}, {"api-version": STREAMING_API}
    account = {"api-version": MEDIA_API}
    past = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - s)) for s in (172800, 86400)]
    blobs = {"clip.mp4": CONTENT, "clip.ism": b"<smil/>", "dir/inner.mp4": CONTENT[:100]}
    fenced = RG + "/providers/Microsoft.Media/mediaServices/fuzzams3"
    allow = {"ip": {"allow": [{"name": "far", "address": "192.0.2.1", "subnetPrefixLength": 32}]}}
    with srv.arm() as arm:
        _ok(arm.put(ids.fill(TRANSFORM), params=encoding, json=TRANSFORM_TEMPLATE))
        _ok(
            arm.put(
                ids.fill(f"{CHILD}/assets/fuzz-out"),
                params={"api-version": CHILD_API},
                json={"properties": {}},
            )
        )
        _ok(arm.put(ids.fill(JOB), params=encoding, json=JOB_TEMPLATE))
        _ok(arm.put(ids.fill(ENDPOINT), params=streaming, json=ENDPOINT_TEMPLATE))
        _ok(arm.post(ids.fill(DEFAULT) + "/start", params=streaming), 200)
        locators = _publish(srv, arm, ids.fill(CHILD), blobs, {"fuzz-dl": {}, "fuzz-dl-old": {
            "startTime": past[0], "endTime": past[1]}})  # fmt: skip
        for name in ("fuzzams2", "fuzzams3"):
            path = ids.fill(f"{RG}/providers/Microsoft.Media/mediaservices/{name}")
            _ok(arm.put(path, params=account, json=ids.fill_doc(ACCOUNT_TEMPLATE)))
        fenced_path = ids.fill(fenced)
        locators |= _publish(srv, arm, fenced_path, {"clip.mp4": CONTENT}, {"fenced": {}})
        endpoint = f"{fenced_path}/streamingEndpoints/default"
        _ok(arm.patch(endpoint, params=streaming, json={"properties": {"accessControl": allow}}))
        _ok(arm.post(f"{endpoint}/start", params=streaming), 200)
    deadline = time.monotonic() + 60  # the job ends (the input asset is empty) before any snapshot
    with srv.arm() as arm:
        while (state := _ok(arm.get(ids.fill(JOB), params=encoding))["properties"]["state"]) not in (
            "Finished",
            "Error",
            "Canceled",
        ):
            assert time.monotonic() < deadline, f"the target job is still {state}"
            time.sleep(0.2)
    return {
        "ams_dl_locator": locators["fuzz-dl"],
        "ams_dl_locator_upper": locators["fuzz-dl"].upper(),
        "ams_old_locator": locators["fuzz-dl-old"],
        "ams_fenced_locator": locators["fenced"],
    }


__all__ = ["MediaJobsGenerator", "make_job_targets"]
