"""Request bodies on the resource manager: one parser, ARM's errors, every field's type checked.

Every JSON body any resource-manager handler reads (resources, actions, extensions such as
``Microsoft.Authorization`` and ``Keyless.Directory``) goes through ``parse_body`` or
``parse_action_body``, which use ``keyless.web.parse_json`` (size, depth and NUL limits) and
answer ARM's ``400 InvalidRequestContent`` ("The request content was invalid and could not be
deserialized: '...'", as ARM words its Json.NET failures).
"""

from __future__ import annotations

from typing import Any

from keyless.arm import errors
from keyless.arm.identity import check_identity_request
from keyless.arm.resource_types import Incoming
from keyless.web import InvalidJson, parse_json


def parse_json_body(raw: bytes) -> Any:
    """Any JSON document, or ARM's 400 ``InvalidRequestContent``."""
    try:
        return parse_json(raw)
    except InvalidJson as exc:
        raise errors.invalid_request_content(exc.detail) from exc


def parse_body(raw: bytes) -> dict[str, Any]:
    """A required JSON object body (PUT, PATCH, extension POSTs)."""
    if not raw.strip():
        raise errors.invalid_request_content("The request body is empty.")
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise errors.invalid_request_content("The request body must be a JSON object.")
    return body


def parse_action_body(raw: bytes) -> dict[str, Any]:
    """A POST action's body: none at all, or a JSON object."""
    return parse_body(raw) if raw.strip() else {}


def _type_error(type_name: str, path: str) -> errors.ArmError:
    return errors.invalid_request_content(f"Error converting value to type '{type_name}'. Path '{path}'.")


def incoming_of(body: dict[str, Any]) -> Incoming:
    """The envelope fields the resource manager reads, each checked for its type before use."""
    location = body.get("location")
    if location is not None and not isinstance(location, str):
        raise _type_error("string", "location")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise _type_error("Dictionary[string,string]", "tags")
    props = body.get("properties")
    if props is not None and not isinstance(props, dict):
        raise _type_error("object", "properties")
    sku = body.get("sku")
    if sku is not None and not isinstance(sku, dict):
        raise _type_error("Sku", "sku")
    kind = body.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise _type_error("string", "kind")
    identity = check_identity_request(body.get("identity"))
    return Incoming(location, tags, kind, sku, identity, props, body)
