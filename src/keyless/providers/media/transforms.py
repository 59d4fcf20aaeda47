"""``Microsoft.Media/mediaservices/transforms``: how to encode — a list of outputs, each a preset.

Shapes (spec ``Encoding/stable/2022-07-01/Encoding.json``, media.md §2 "Transforms and Jobs"):
``description``, ``outputs[]`` (required, at least one) of ``{onError, relativePriority, preset}``;
the service fills ``onError: "StopProcessingJob"`` and ``relativePriority: "Normal"`` (example
``transforms-create.json``); read-only ``created`` and ``lastModified``. PUT 201/200, PATCH 200,
DELETE 200/204. Presets are checked and normalized by ``encoding.presets`` (unknown preset names and
types are 400 ``BadRequest``). Deleting a transform deletes its jobs, so it is refused (as a job's
own deletion is) while one of them is not finished.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from keyless.arm.engine import RequestContext, StoredResource, iso_time
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming
from keyless.providers.media.children import MediaChildType, bad_request, text_field
from keyless.providers.media.encoding.presets import check_preset

# What the SDKs send for the Encoding group: azure-mgmt-media 10.x 2022-07-01, az 2.91's 9.0.0
# 2021-11-01 (media.md §0, §5); older stable versions are accepted too.
ENCODING_API_VERSIONS = frozenset(["2018-07-01", "2020-05-01", "2021-06-01", "2021-11-01", "2022-07-01"])
ON_ERROR = ("StopProcessingJob", "ContinueJob")
PRIORITIES = ("Low", "Normal", "High")
MAX_OUTPUTS = 20


def choice(value: Any, allowed: tuple[str, ...], default: str, path: str) -> str:
    """One of ``allowed`` (in its canonical spelling, matched without regard to case), ``default``
    when absent; 400 otherwise."""
    if value is None:
        return default
    for option in allowed:
        if isinstance(value, str) and value.lower() == option.lower():
            return option
    raise bad_request(f"'{path}' must be one of: {', '.join(allowed)}.", path)


def check_outputs(value: Any) -> list[dict[str, Any]]:
    """A transform's ``outputs``, checked and with the service's defaults filled."""
    if not isinstance(value, list) or not value or len(value) > MAX_OUTPUTS:
        raise bad_request(
            f"'properties.outputs' is required: a list of 1 to {MAX_OUTPUTS} transform outputs.",
            "properties.outputs",
        )
    outputs = []
    for i, output in enumerate(value):
        path = f"properties.outputs[{i}]"
        if not isinstance(output, dict):
            raise bad_request(f"'{path}' must be an object.", path)
        if output.get("preset") is None:
            raise bad_request(f"'{path}.preset' is required.", f"{path}.preset")
        outputs.append(
            {
                "onError": choice(output.get("onError"), ON_ERROR, "StopProcessingJob", f"{path}.onError"),
                "relativePriority": choice(
                    output.get("relativePriority"), PRIORITIES, "Normal", f"{path}.relativePriority"
                ),
                "preset": check_preset(output["preset"], f"{path}.preset"),
            }
        )
    return outputs


class TransformType(MediaChildType):
    def __init__(self) -> None:
        super().__init__("transforms", api_versions=ENCODING_API_VERSIONS)

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = dict(incoming.properties or {})
        now = iso_time(time.time())
        old = dict(existing.document.get("properties") or {}) if existing is not None else {}
        out: dict[str, Any] = {"created": old.get("created") or now}
        description = text_field(props, "description", 4096, "properties.description")
        if description is not None:
            out["description"] = description
        out["lastModified"] = now
        out["outputs"] = check_outputs(props.get("outputs"))
        return out
