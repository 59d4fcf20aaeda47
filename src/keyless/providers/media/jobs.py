"""``Microsoft.Media/mediaservices/transforms/jobs``: one encoding of an input by a transform.

Shapes (spec ``Encoding/stable/2022-07-01/Encoding.json``, media.md §2, media-jobs.md):

- ``input``: ``#Microsoft.Media.JobInputAsset {assetName, files, start, end, label}``,
  ``#Microsoft.Media.JobInputHttp {baseUri, files, start, end, label}`` or
  ``#Microsoft.Media.JobInputs {inputs: [one of those]}``; ``start``/``end``
  ``#Microsoft.Media.AbsoluteClipTime {time: ISO 8601 duration}`` (a ``JobInputClip`` range). The
  create answer echoes ``files: []`` and ``inputDefinitions: []`` when not given.
- ``outputs[]``: ``#Microsoft.Media.JobOutputAsset {assetName, label, presetOverride}``, one per
  transform output; read-only ``state``, ``progress``, ``startTime``, ``endTime``, ``error``; the
  default label is ``{preset type}_{index}`` (``BuiltInStandardEncoderPreset_0``).
- ``priority`` (Low/Normal/High, default Normal), ``description``, ``correlationData``; read-only
  ``created``, ``lastModified``, ``state``, ``startTime``, ``endTime``.
- PUT creates (201 only); PATCH 200 changes only ``description`` and ``priority`` ("Update is only
  supported for description and priority"); DELETE 200/204; ``POST .../cancelJob`` 200.

JobInputHttp URLs: "The query strings will not be returned in service responses to prevent
sensitive data exposure", so the document keeps them without query strings and the whole URLs
are sealed under the ACCOUNT KEY (``prepare``) in ``work`` (``media_jobs``), opened only by the
worker. What the job does is fixed at creation: the transform's outputs' presets are copied into
``work``, so a later change to the transform does not change a queued job.

Keyless's choices where Azure is silent: one input per job (``JobInputs`` with one member); an
``UtcClipTime`` range is refused (it clips live archives); the output assets must all differ from
each other and from the input asset; a job that is not finished cannot be deleted (cancel it
first) — nor, therefore, its transform.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.bodies import incoming_of, parse_body
from keyless.arm.engine import RequestContext, StoredResource, iso_time
from keyless.arm.http import ProviderRequest
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming
from keyless.providers.media import job_queue
from keyless.providers.media.children import MediaChildType, asset_id, bad_request, optional_list, text_field
from keyless.providers.media.encoding import values
from keyless.providers.media.encoding.presets import check_preset
from keyless.providers.media.keyring import AccountKeyring
from keyless.providers.media.transforms import ENCODING_API_VERSIONS, PRIORITIES, choice
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.providers.media.http import AccountContext, MediaFront

PREPARED = "media.job"
CANCEL = "cancelJob"
INPUT_ASSET = "#Microsoft.Media.JobInputAsset"
INPUT_HTTP = "#Microsoft.Media.JobInputHttp"
INPUTS = "#Microsoft.Media.JobInputs"
OUTPUT_ASSET = "#Microsoft.Media.JobOutputAsset"
ABSOLUTE_CLIP = "#Microsoft.Media.AbsoluteClipTime"
MAX_FILES = 100
MAX_URI = 4000  # "Maximum length of 4000 characters" (baseUri, each of files)
MAX_CORRELATION = 50
# A URL's host: a name or a bracketed IPv6 address, then an optional port; no user information.
_NETLOC = re.compile(
    r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._~%!$&'()*+,;=-]{1,253})(?::[0-9]{1,5})?", re.ASCII
)
MAX_CLIP_SECONDS = 1e6  # an input's clip times must lie within this (the encoder takes < 1e7 s)


def parse_duration(value: Any, path: str) -> float:
    """An ISO 8601 duration (``PT1M30.5S``, ``P1DT2H``, in any case) in seconds; 400 otherwise."""
    seconds = values.parse_duration(value.upper()) if isinstance(value, str) else None
    if seconds is None:
        raise bad_request(f"'{path}' must be an ISO 8601 duration such as 'PT10S'.", path)
    return seconds


def _clip(value: Any, path: str) -> tuple[dict[str, Any], float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or str(value.get("@odata.type", "")) != ABSOLUTE_CLIP:
        raise bad_request(
            f"'{path}' must be a '{ABSOLUTE_CLIP}' (UtcClipTime ranges apply to live archives only).", path
        )
    seconds = parse_duration(value.get("time"), f"{path}.time")
    if seconds >= MAX_CLIP_SECONDS:
        raise bad_request(f"'{path}.time' must be less than {MAX_CLIP_SECONDS:g} seconds.", f"{path}.time")
    return {"@odata.type": ABSOLUTE_CLIP, "time": value["time"]}, seconds


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _existing_asset(conn: sa.Connection, account: ResourceId, item: dict[str, Any], path: str) -> Any:
    """The row (``name``) of the account's asset ``item["assetName"]``; 400 when missing (the
    documented text, media-jobs.md: "Asset '<name>' is not found under account '<account>' when
    creating job.")."""
    name = text_field(item, "assetName", 260, f"{path}.assetName")
    if not name:
        raise bad_request(f"'{path}.assetName' is required.", f"{path}.assetName")
    key = asset_id(account, name).key
    row = conn.execute(sa.select(resources.c.name).where(resources.c.id_key == key)).first()
    if row is None:
        # As recorded: code and message, no target.
        raise bad_request(f"Asset '{name}' is not found under account '{account.name}' when creating job.")
    return row


def _http_urls(item: dict[str, Any], path: str) -> list[str]:
    """The whole URLs of a JobInputHttp: ``baseUri`` + each file (or the files alone)."""
    base = item.get("baseUri")
    if base is not None and (not isinstance(base, str) or not 0 < len(base) <= MAX_URI):
        raise bad_request(
            f"'{path}.baseUri' must be a URL of at most {MAX_URI} characters.", f"{path}.baseUri"
        )
    files = optional_list(item.get("files"), MAX_FILES, f"'{path}.files' must be a list.", f"{path}.files")
    if not all(isinstance(f, str) and 0 < len(f) <= MAX_URI for f in files):
        raise bad_request(f"'{path}.files' must hold URLs of at most {MAX_URI} characters.", f"{path}.files")
    urls = [(base or "") + f for f in files] if files else ([base] if base else [])
    if len(urls) != 1:
        raise bad_request(f"'{path}' must name exactly one file: Keyless encodes one input per job.", path)
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port  # a malformed port raises here
        except ValueError:
            port, parts = None, None
        if (
            parts is None
            or parts.scheme.lower() not in ("http", "https")
            or _NETLOC.fullmatch(parts.netloc) is None
            or (port is not None and not 0 < port < 65536)
            or len(url) > MAX_URI
        ):
            raise bad_request(f"'{path}' must be an http or https URL.", path)
    return urls


_READ_ONLY = frozenset(["created", "lastModified", "state", "startTime", "endTime"])
_OUTPUT_READ_ONLY = frozenset(["state", "progress", "error", "startTime", "endTime"])


def _writable(name: str, value: Any) -> Any:
    """What of property ``name`` a client can set (read-only ones compare equal)."""
    if name in _READ_ONLY:
        return None
    if name == "outputs" and isinstance(value, list):
        return [
            {k: v for k, v in o.items() if k not in _OUTPUT_READ_ONLY} if isinstance(o, dict) else o
            for o in value
        ]
    if name == "correlationData" and not value:
        return {}
    return value


class JobType(MediaChildType):
    def __init__(self) -> None:
        super().__init__("transforms/jobs", api_versions=ENCODING_API_VERSIONS)
        self.actions = {CANCEL: self._cancel}
        # Set in a creating write's transaction; after the commit ``committed`` wakes the worker.
        self._created = False
        self.on_created: Callable[[], None] | None = None

    def committed(self) -> None:
        """A write committed (``ResourceManager.on_change``): start a job it created at once."""
        if self._created:
            self._created = False
            if self.on_created is not None:
                self.on_created()

    # --- before the write --------------------------------------------------------------------

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """PUT: the input checked; a JobInputHttp's URLs sealed under the account key."""
        if req.method != "PUT" or len(req.segments) != 6:
            return
        self.name_rule.check(rid.name, self.type_name)
        props = dict(incoming_of(parse_body(req.body)).properties or {})
        item = self._single_input(props.get("input"))
        if item.get("@odata.type") == INPUT_HTTP:
            urls = _http_urls(item, "properties.input")
            key = await front.account_key(account)
            req.ctx.prepared[PREPARED] = [
                AccountKeyring.seal(key, u.encode(), job_queue.url_purpose(rid)) for u in urls
            ]

    @staticmethod
    def _single_input(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise bad_request("'properties.input' is required.", "properties.input")
        if value.get("@odata.type") == INPUTS:
            inputs = value.get("inputs")
            if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
                raise bad_request(
                    "'properties.input.inputs' must hold exactly one input: Keyless encodes one input per job.",
                    "properties.input.inputs",
                )
            return inputs[0]
        return value

    # --- the write ---------------------------------------------------------------------------

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = dict(incoming.properties or {})
        if existing is not None:
            return self._update(props, dict(existing.document.get("properties") or {}))
        transform = self._transform(conn, rid)
        now = iso_time(time.time())
        account = rid.parent.parent if rid.parent is not None else None
        assert account is not None
        input_doc, work_input = self._input(ctx, conn, account, props.get("input"))
        outputs, work_outputs = self._outputs(conn, account, props.get("outputs"), transform, work_input)
        out: dict[str, Any] = {"created": now, "state": job_queue.QUEUED, "input": input_doc}
        description = text_field(props, "description", 4096, "properties.description")
        if description is not None:
            out["description"] = description
        out["lastModified"] = now
        out["outputs"] = outputs
        out["priority"] = self._priority(props.get("priority"))
        out["correlationData"] = self._correlation(props.get("correlationData"))
        ctx.prepared[job_queue.WORK] = {"input": work_input, "outputs": work_outputs}
        return out

    def _update(self, props: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        """PATCH (or a PUT on an existing job): only description and priority may change."""
        if "correlationData" in props:  # a wrong type is refused, never read as "no change"
            props = {**props, "correlationData": self._correlation(props["correlationData"])}
        # az sends the whole job it read back (media-jobs.md): only writable fields are compared.
        changed = {k for k in set(props) | set(old) if _writable(k, props.get(k)) != _writable(k, old.get(k))}
        if changed - {"description", "priority"}:
            raise bad_request("Update is only supported for description and priority.")
        out = dict(old)
        description = text_field(props, "description", 4096, "properties.description")
        if description is not None:
            out["description"] = description
        out["priority"] = self._priority(props.get("priority"))
        out["lastModified"] = iso_time(time.time())
        return out

    @staticmethod
    def _priority(value: Any) -> str:
        return choice(value, PRIORITIES, "Normal", "properties.priority")

    @staticmethod
    def _correlation(value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if (
            not isinstance(value, dict)
            or len(value) > MAX_CORRELATION
            or not all(
                isinstance(k, str) and isinstance(v, str) and len(k) <= 256 and len(v) <= 4096
                for k, v in value.items()
            )
        ):
            raise bad_request(
                f"'properties.correlationData' must map at most {MAX_CORRELATION} strings to strings.",
                "properties.correlationData",
            )
        return dict(value)

    @staticmethod
    def _transform(conn: sa.Connection, rid: ResourceId) -> dict[str, Any]:
        parent = rid.parent
        assert parent is not None
        row = conn.execute(sa.select(resources.c.document).where(resources.c.id_key == parent.key)).first()
        if row is None:
            raise errors.ArmError(404, "NotFound", "The requested resource was not found.")
        return dict(orjson.loads(row.document).get("properties") or {})

    def _input(
        self, ctx: RequestContext, conn: sa.Connection, account: ResourceId, value: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the input as answered, what the worker needs of it)."""
        item = self._single_input(value)
        kind = item.get("@odata.type")
        path = "properties.input"
        label = text_field(item, "label", 256, f"{path}.label")
        start = _clip(item.get("start"), f"{path}.start")
        end = _clip(item.get("end"), f"{path}.end")
        if start is not None and end is not None and end[1] <= start[1]:
            raise bad_request(f"'{path}.end' must be later than '{path}.start'.", f"{path}.end")
        work: dict[str, Any] = {
            "start": start[1] if start else None,
            "end": end[1] if end else None,
        }
        doc: dict[str, Any] = {"@odata.type": kind}
        if kind == INPUT_ASSET:
            row = _existing_asset(conn, account, item, path)
            files = optional_list(
                item.get("files"), MAX_FILES, f"'{path}.files' must be a list.", f"{path}.files"
            )
            if not all(isinstance(f, str) and 0 < len(f) <= 1024 for f in files):
                raise bad_request(f"'{path}.files' must hold blob names.", f"{path}.files")
            if len(files) > 1:
                raise bad_request(
                    f"'{path}.files' may name one file: Keyless encodes one input per job.", path
                )
            doc.update({"assetName": str(row.name), "files": list(files)})
            work.update({"kind": "asset", "assetName": str(row.name), "files": list(files)})
        elif kind == INPUT_HTTP:
            urls = _http_urls(item, path)
            sealed = ctx.prepared.get(PREPARED)
            if not isinstance(sealed, list) or len(sealed) != len(urls):
                raise bad_request("The job input could not be prepared.")
            base = item.get("baseUri")
            if base is not None:
                doc["baseUri"] = _strip_query(base)
            doc["files"] = [f.split("?", 1)[0] for f in (item.get("files") or [])]
            work.update(
                {"kind": "http", "sealedUrls": sealed, "name": _strip_query(urls[0]).rsplit("/", 1)[-1]}
            )
        else:
            raise bad_request(
                f"'{path}' must be a '{INPUT_ASSET}', a '{INPUT_HTTP}' or a '{INPUTS}' of one of them.",
                f"{path}.@odata.type",
            )
        definitions = optional_list(
            item.get("inputDefinitions"),
            0,
            f"'{path}.inputDefinitions' is not supported: give an empty list.",
            f"{path}.inputDefinitions",
        )
        doc["inputDefinitions"] = definitions
        if start is not None:
            doc["start"] = start[0]
        if end is not None:
            doc["end"] = end[0]
        if label is not None:
            doc["label"] = label
        return doc, work

    def _outputs(
        self,
        conn: sa.Connection,
        account: ResourceId,
        value: Any,
        transform: dict[str, Any],
        work_input: dict[str, Any],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        presets = [o.get("preset") or {} for o in transform.get("outputs") or []]
        if not isinstance(value, list) or len(value) != len(presets):
            raise bad_request(
                f"'properties.outputs' must hold one job output per transform output ({len(presets)}).",
                "properties.outputs",
            )
        docs, work, seen = [], [], {str(work_input.get("assetName", "")).lower()} - {""}
        for i, output in enumerate(value):
            path = f"properties.outputs[{i}]"
            if not isinstance(output, dict) or output.get("@odata.type") != OUTPUT_ASSET:
                raise bad_request(f"'{path}' must be a '{OUTPUT_ASSET}'.", path)
            row = _existing_asset(conn, account, output, path)
            if str(row.name).lower() in seen:
                raise bad_request(
                    f"The asset '{row.name}' is used twice by the job: every output needs an asset of its own.",
                    f"{path}.assetName",
                )
            seen.add(str(row.name).lower())
            preset = presets[i]
            if output.get("presetOverride") is not None:
                preset = check_preset(output["presetOverride"], f"{path}.presetOverride")
            default_label = f"{str(preset.get('@odata.type', 'Preset')).rsplit('.', 1)[-1]}_{i}"
            label = text_field(output, "label", 256, f"{path}.label") or default_label
            # The order of the recorded echo (media-jobs.md §2); no error/startTime/endTime yet.
            doc: dict[str, Any] = {
                "@odata.type": OUTPUT_ASSET,
                "state": job_queue.QUEUED,
                "progress": 0,
                "label": label,
                "assetName": str(row.name),
            }
            if output.get("presetOverride") is not None:
                doc["presetOverride"] = preset
            docs.append(doc)
            work.append({"assetName": str(row.name), "preset": preset, "label": label})
        return docs, work

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        props = resource.document.get("properties") or {}
        if created:
            job_queue.enqueue(conn, resource.rid, props, ctx.prepared[job_queue.WORK])
            self._created = True
        else:
            job_queue.set_priority(conn, resource.rid, str(props.get("priority", "Normal")))
        return None

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        job_queue.forget(conn, resource.rid)

    # --- actions -------------------------------------------------------------------------------

    def _cancel(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        job_queue.cancel(conn, resource.rid)
        return 200, None
