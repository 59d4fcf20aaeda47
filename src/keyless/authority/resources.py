"""Which resources (audiences) the authority issues tokens for."""

from __future__ import annotations

import re
from functools import lru_cache

# Application ID URIs of the resources Keyless serves, compared without a trailing slash.
WELL_KNOWN_RESOURCES: frozenset[str] = frozenset(
    {
        "https://management.azure.com",
        "https://management.core.windows.net",
        "https://vault.azure.net",
        "https://storage.azure.com",
        "https://rest.media.azure.net",
        "api://azureadtokenexchange",
    }
)
# Per-instance audiences are accepted too, as Entra does for these services.
_INSTANCE_RESOURCE = re.compile(
    r"^https://[a-z0-9-]{1,63}\.(blob\.core\.windows\.net|vault\.azure\.net)$", re.IGNORECASE
)

# What the resource manager accepts as ``aud`` (lower case, no trailing slash).
ARM_AUDIENCES: frozenset[str] = frozenset(
    {"https://management.azure.com", "https://management.core.windows.net"}
)


def normalize_resource(resource: str) -> str:
    return resource.strip().rstrip("/").lower()


@lru_cache(maxsize=4096)
def is_known_resource(resource: str) -> bool:
    normalized = normalize_resource(resource)
    return normalized in WELL_KNOWN_RESOURCES or bool(_INSTANCE_RESOURCE.match(normalized))


def resource_from_scope(scope: str) -> str | None:
    """``https://x/.default`` -> ``https://x``; None when the scope is not a ``/.default`` scope."""
    parts = scope.split()
    if len(parts) != 1 or not parts[0].endswith("/.default"):
        return None
    return parts[0][: -len("/.default")]
