"""Names and small inputs of the Blob service, checked before any work (``re.fullmatch``).

Rules (MicrosoftDocs "Naming and Referencing Containers, Blobs, and Metadata"; "Set Blob Tags"):
containers 3-63 lower-case letters, digits and single dashes, starting and ending with a letter or
digit; blob names 1-1024 characters; metadata names C# identifiers, all metadata at most 8 KiB;
tags at most 10, keys 1-128 and values 0-256 characters of letters, digits, space and ``+-./:=_``;
block ids base64, at most 64 bytes decoded, one length per blob.

Where Azure is silent we chose: a blob name of more than 2048 bytes of UTF-8 is 400
``InvalidResourceName`` (the database's key limit; Azure counts only characters); a blob name holding a character XML 1.0 cannot carry (C0 controls
other than tab/LF/CR, U+FFFE/U+FFFF, lone surrogates) is refused with 400 ``InvalidUri``, so every
listing is plain XML (no ``Encoded="true"`` names).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from keyless.providers.storage.blob import errors

CONTAINER = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")
ROOT_CONTAINER = "$root"
SPECIAL_CONTAINERS = frozenset({"$root", "$web", "$logs"})
MAX_BLOB_NAME = 1024
# Also at most 2048 bytes of UTF-8: the name is part of the blobs table's primary key, and
# PostgreSQL refuses index entries past ~2.7 KB (1024 characters of 3-byte UTF-8 would be 3 KB).
MAX_BLOB_NAME_BYTES = 2048
_BAD_BLOB_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_METADATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
MAX_METADATA_BYTES = 8 * 1024
_TAG_TEXT = re.compile(r"[A-Za-z0-9 +\-./:=_]*")
MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_BLOCK_ID_BYTES = 64
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def check_container(name: str) -> None:
    """400 ``InvalidResourceName`` unless ``name`` is a valid container name (or ``$root``, ``$web``,
    ``$logs``)."""
    if name in SPECIAL_CONTAINERS:
        return
    if len(name) > 63 or CONTAINER.fullmatch(name) is None:
        raise errors.invalid_resource_name()


def check_blob(name: str) -> None:
    """400 ``InvalidResourceName`` for an empty or over-long name, ``InvalidUri`` for a character
    no XML listing can carry."""
    if not name or len(name) > MAX_BLOB_NAME:
        raise errors.invalid_resource_name()
    if _BAD_BLOB_CHARS.search(name):
        raise errors.invalid_uri()
    if len(name.encode("utf-8", "surrogatepass")) > MAX_BLOB_NAME_BYTES:
        raise errors.invalid_resource_name()


def metadata_from_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``x-ms-meta-*`` headers (lower-cased names as given) -> metadata; 400 ``InvalidMetadata`` for a
    name that is not an identifier, ``MetadataTooLarge`` past 8 KiB of names and values."""
    metadata: dict[str, str] = {}
    size = 0
    for name, value in headers:
        if not name.startswith("x-ms-meta-"):
            continue
        key = name[len("x-ms-meta-") :]
        if _METADATA_NAME.fullmatch(key) is None or "\x00" in value:
            raise errors.invalid_metadata()
        size += len(key) + len(value.encode("latin-1", "replace"))
        if size > MAX_METADATA_BYTES:
            raise errors.metadata_too_large()
        metadata[key] = value.strip()
    return metadata


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` if valid; 400 ``InvalidTag`` for a bad key or value, ``TagsTooLarge`` past 10 tags."""
    if len(tags) > MAX_TAGS:
        raise errors.tags_too_large()
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise errors.invalid_tag()
        if _TAG_TEXT.fullmatch(key) is None or _TAG_TEXT.fullmatch(value) is None:
            raise errors.invalid_tag()
    return tags


def tags_from_header(value: str) -> dict[str, str]:
    """``x-ms-tags: k1=v1&k2=v2`` (form-encoded) -> tags, checked."""
    from urllib.parse import parse_qsl

    if len(value) > 8 * 1024:
        raise errors.tags_too_large()
    tags: dict[str, str] = {}
    try:
        pairs = parse_qsl(
            value, keep_blank_values=True, strict_parsing=bool(value), max_num_fields=MAX_TAGS + 1
        )
    except ValueError:
        raise errors.invalid_tag() from None
    for key, item in pairs:
        if key in tags:
            raise errors.invalid_tag()
        tags[key] = item
    return check_tags(tags)


def check_block_id(block_id: str) -> bytes:
    """The decoded block id; 400 ``InvalidBlockId`` unless it is base64 of 1-64 bytes."""
    if not block_id or len(block_id) > 128 or _BASE64.fullmatch(block_id) is None:
        raise errors.invalid_block_id()
    try:
        raw = base64.b64decode(block_id, validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_block_id() from None
    if not 1 <= len(raw) <= MAX_BLOCK_ID_BYTES:
        raise errors.invalid_block_id()
    return raw
