"""Resource ids and scopes: THE parser both the resource manager and RBAC use, formatting, and the
case-insensitive keys ids are stored and compared under.

One string names one thing for every component: ``id_segments`` is the only split of a path, id
or scope into segments, it changes nothing but dropping empty segments (no whitespace stripped, so
``solo`` and ``solo\n`` are two names and never one scope), and it refuses over-long or over-deep
input before any work is done on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# The longest resource id or scope that can be stored (``resources.id_key``, ``role_assignments.scope``):
# Azure documents no limit; its names are at most 260 characters and real ids far shorter.
MAX_ID_LENGTH: Final = 1024
# The longest request path or authorization scope: an id plus an extension resource's own segments
# (``{id}/providers/Microsoft.Authorization/roleAssignments/{guid}``). Azure's front end refuses
# URLs of about 8 KB with a 404; far below that, and every real path fits.
MAX_PATH_LENGTH: Final = 2048
# Segments of a path: a resource nested ten deep with an extension resource on it has about 30.
MAX_ID_SEGMENTS: Final = 64


def is_guid(value: str) -> bool:
    """``8-4-4-4-12`` hex digits, the whole string (no braces, no trailing newline)."""
    return _GUID.fullmatch(value) is not None


def id_segments(value: str, *, max_length: int = MAX_PATH_LENGTH) -> list[str] | None:
    """The ``/``-separated segments of a request path, resource id or scope, in their own spelling.

    Empty segments are dropped (``/a//b/`` is ``/a/b``, as the resource manager routes it); nothing
    else is changed. None when ``value`` is longer than ``max_length`` characters or has more than
    ``MAX_ID_SEGMENTS`` segments (the length is checked before anything is split).
    """
    if len(value) > max_length:
        return None
    segments = [s for s in value.split("/") if s]
    return segments if len(segments) <= MAX_ID_SEGMENTS else None


@dataclass(frozen=True)
class ResourceId:
    """``/subscriptions/{s}[/resourceGroups/{g}[/providers/{ns}/{t1}/{n1}[/{t2}/{n2}...]]]``.

    A resource group is itself a resource: ``namespace`` ``Microsoft.Resources``, type
    ``resourceGroups``, no ``types``/``names`` of its own.
    """

    subscription_id: str
    resource_group: str | None = None
    namespace: str | None = None
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def is_subscription(self) -> bool:
        return self.resource_group is None and not self.types

    @property
    def is_resource_group(self) -> bool:
        return self.resource_group is not None and not self.types

    @property
    def name(self) -> str:
        if self.names:
            return self.names[-1]
        return self.resource_group or self.subscription_id

    @property
    def type_name(self) -> str:
        """``Microsoft.ManagedIdentity/userAssignedIdentities[/federatedIdentityCredentials]``."""
        if self.is_resource_group:
            return "Microsoft.Resources/resourceGroups"
        if self.is_subscription:
            return "Microsoft.Resources/subscriptions"
        return "/".join((self.namespace or "", *self.types))

    @property
    def type_key(self) -> str:
        return self.type_name.lower()

    @property
    def parent(self) -> ResourceId | None:
        if len(self.names) > 1:
            return ResourceId(
                self.subscription_id, self.resource_group, self.namespace, self.types[:-1], self.names[:-1]
            )
        if self.names:
            return self.group_id
        if self.resource_group is not None:
            return ResourceId(self.subscription_id)
        return None

    @property
    def group_id(self) -> ResourceId | None:
        if self.resource_group is None:
            return None
        return ResourceId(self.subscription_id, self.resource_group)

    def child(self, type_segment: str, name: str) -> ResourceId:
        return ResourceId(
            self.subscription_id,
            self.resource_group,
            self.namespace,
            (*self.types, type_segment),
            (*self.names, name),
        )

    def __str__(self) -> str:
        out = f"/subscriptions/{self.subscription_id}"
        if self.resource_group is not None:
            out += f"/resourceGroups/{self.resource_group}"
        if self.namespace is not None:
            out += f"/providers/{self.namespace}"
            for t, n in zip(self.types, self.names, strict=True):
                out += f"/{t}/{n}"
        return out

    @property
    def key(self) -> str:
        return str(self).lower()

    @property
    def group_key(self) -> str | None:
        return self.resource_group.lower() if self.resource_group is not None else None

    def claims_form(self) -> str:
        """The form Entra puts in ``xms_mirid``/``xms_az_rid``: lower-case ``resourcegroups``."""
        return str(self).replace("/resourceGroups/", "/resourcegroups/", 1)


def parse_resource_id(value: str) -> ResourceId | None:
    """Parse a full resource id (subscription, group, or provider resource); None if malformed or
    longer than an id can be (``MAX_ID_LENGTH``). Segments are split by ``id_segments``."""
    parts = id_segments(value, max_length=MAX_ID_LENGTH)
    if parts is None or len(parts) < 2 or parts[0].lower() != "subscriptions":
        return None
    subscription = parts[1]
    rest = parts[2:]
    if not rest:
        return ResourceId(subscription)
    if rest[0].lower() != "resourcegroups" or len(rest) < 2 or not rest[1]:
        return None
    group = rest[1]
    rest = rest[2:]
    if not rest:
        return ResourceId(subscription, group)
    if rest[0].lower() != "providers" or len(rest) < 4 or len(rest) % 2 != 0:
        return None
    namespace = rest[1]
    pairs = rest[2:]
    types = tuple(pairs[0::2])
    names = tuple(pairs[1::2])
    if not all(types) or not all(names):
        return None
    return ResourceId(subscription, group, namespace, types, names)
