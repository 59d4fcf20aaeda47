"""What keys and secrets share: names, attributes, tags, ids, soft-delete fields and paging.

Wire facts: keyvault.md §1 (KeyAttributes, DeletedKeyBundle, paging), keyvault-secrets.md §2-3
(SecretAttributes, names, tag limits). Timestamps are integer Unix seconds.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import quote

import orjson

from keyless.providers.keyvault import errors
from keyless.providers.keyvault import store as kv
from keyless.providers.keyvault.access import Vault
from keyless.providers.keyvault.store import VaultObject, Version
from keyless.store.db import Database

# Names: ^[0-9a-zA-Z-]+$, 1-127 characters (keyvault-secrets.md §3); matched whole.
NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
VERSION = re.compile(r"[0-9a-fA-F]{32}")
MAX_TAGS = 15
MAX_TAG_LENGTH = 256
MAX_PAGE = 25
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z: the largest time a client can render
_SKIPTOKEN_LIMIT = 400
SECONDS_PER_DAY = 86400


def check_name(name: str) -> str:
    """``name`` if it is a valid key or secret name, else 400 ``BadParameter``."""
    if NAME.fullmatch(name) is None:
        raise errors.bad_name(name[:127])
    return name


def object_id(vault: Vault, kind: str, name: str, version: str | None = None) -> str:
    """``https://{vault}.vault.azure.net/{keys|secrets}/{name}[/{version}]``."""
    base = f"{vault.uri}/{kind}s/{name}"
    return f"{base}/{version}" if version else base


def recovery_id(vault: Vault, kind: str, name: str) -> str:
    return f"{vault.uri}/deleted{kind}s/{name}"


def parse_attributes(value: Any, *, allow_exportable: bool = False) -> dict[str, Any]:
    """The settable attributes of a request body (``enabled``, ``nbf``, ``exp``, and for keys
    ``exportable``); read-only ones are ignored as the service ignores them. 400 on bad types."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.bad_parameter("The attributes must be a JSON object.")
    out: dict[str, Any] = {}
    enabled = value.get("enabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise errors.bad_parameter("Property 'attributes.enabled' must be a boolean.")
        out["enabled"] = enabled
    for field in ("nbf", "exp"):
        stamp = value.get(field)
        if stamp is None:
            continue
        if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not 0 <= stamp <= _MAX_TIME:
            raise errors.bad_parameter(f"Property 'attributes.{field}' must be a Unix time in seconds.")
        out[field] = int(stamp)
    if allow_exportable and value.get("exportable") is not None:
        if not isinstance(value["exportable"], bool):
            raise errors.bad_parameter("Property 'attributes.exportable' must be a boolean.")
        out["exportable"] = value["exportable"]
    if "nbf" in out and "exp" in out and out["nbf"] > out["exp"]:
        raise errors.bad_parameter("The 'nbf' attribute must not be later than the 'exp' attribute.")
    return out


def parse_tags(value: Any) -> dict[str, str] | None:
    """Tags: at most 15, names and values strings of at most 256 characters (about-secrets.md)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.bad_parameter("Tags must be a JSON object of strings.")
    if len(value) > MAX_TAGS:
        raise errors.bad_parameter(f"The number of tags exceeds the limit of {MAX_TAGS}.")
    for name, text in value.items():
        if not isinstance(text, str) or len(name) > MAX_TAG_LENGTH or len(text) > MAX_TAG_LENGTH:
            raise errors.bad_parameter(
                f"Tag names and values must be strings of at most {MAX_TAG_LENGTH} characters."
            )
    return dict(value)


def render_attributes(vault: Vault, version: Version) -> dict[str, Any]:
    """``attributes`` as the service answers: set fields, ``created``/``updated``, recovery."""
    stored = version.document.get("attributes") or {}
    out: dict[str, Any] = {"enabled": stored.get("enabled", True)}
    for field in ("nbf", "exp", "exportable"):
        if stored.get(field) is not None:
            out[field] = stored[field]
    out["created"] = int(version.created_at)
    out["updated"] = int(stored.get("updated", version.created_at))
    out["recoveryLevel"] = vault.recovery_level
    if vault.soft_delete:
        out["recoverableDays"] = vault.retention_days
    return out


def deleted_fields(vault: Vault, obj: VaultObject) -> dict[str, Any]:
    """``recoveryId``, ``deletedDate`` and ``scheduledPurgeDate`` of a soft-deleted object."""
    return {
        "recoveryId": recovery_id(vault, obj.kind, obj.name),
        "deletedDate": int(obj.deleted_at or 0),
        "scheduledPurgeDate": int(obj.scheduled_purge_at or 0),
    }


def is_enabled(version: Version) -> bool:
    return bool((version.document.get("attributes") or {}).get("enabled", True))


def page_size(text: str | None) -> int:
    """``maxresults``: 1-25, default 25 (keyvault.md §1); 400 ``BadParameter`` otherwise."""
    if text is None or text == "":
        return MAX_PAGE
    if not (text.isascii() and text.isdigit()) or len(text) > 3 or not 1 <= int(text) <= MAX_PAGE:
        raise errors.bad_parameter(
            f"The value '{text[:20]}' is not valid for maxresults: it must be 1 to 25."
        )
    return int(text)


def encode_skiptoken(after: str) -> str:
    """An opaque, URL-safe ``$skiptoken`` naming the last item of a page (keyvault-secrets.md §0.9:
    the SDK re-encodes values, so a ``+`` would not survive)."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def decode_skiptoken(token: str | None) -> str | None:
    if not token:
        return None
    try:
        if len(token) > _SKIPTOKEN_LIMIT:
            raise ValueError
        decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = decoded["after"]
        if not isinstance(after, str) or len(after) > 127:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.bad_parameter("The $skiptoken is not valid.") from None


def next_link(vault: Vault, path: str, api_version: str, after: str | None, size: int) -> str | None:
    """The absolute ``nextLink`` (with ``:443``, as the real service writes it; keyvault.md §1)."""
    if after is None:
        return None
    host = vault.uri.removeprefix("https://")
    return (
        f"https://{host}:443{path}?api-version={quote(api_version, safe='')}&$skiptoken={encode_skiptoken(after)}"
        f"&maxresults={size}"
    )


def live_object(db: Database, vault: Vault, kind: str, name: str) -> VaultObject:
    """The live key or secret ``name``; 404 ``KeyNotFound``/``SecretNotFound`` if there is none
    (or it is soft-deleted)."""
    obj = kv.read_object(db, vault.name, kind, name)
    if obj is None or obj.deleted:
        raise errors.not_found(kind, name)
    return obj


def live_version(
    db: Database, vault: Vault, kind: str, name: str, version: str | None
) -> tuple[VaultObject, Version]:
    """A live object's version (``None`` or "": the latest) in one read; 404 if either is missing
    (the object's 404 first, as for any version of a missing object)."""
    if version and not VERSION.fullmatch(version):
        live_object(db, vault, kind, name)
        raise errors.version_not_found(kind, name, version)
    obj, found = kv.read_object_version(db, vault.name, kind, name, version.lower() if version else None)
    if obj is None or obj.deleted:
        raise errors.not_found(kind, name)
    if found is None:
        raise errors.version_not_found(kind, name, version or obj.latest_version)
    return obj, found
