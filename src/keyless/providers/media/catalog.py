"""Every child resource type of a Media Services account, in one list for the platform to register."""

from __future__ import annotations

from keyless.providers.media.assets import AssetType
from keyless.providers.media.children import MediaChildType
from keyless.providers.media.content_key_policies import ContentKeyPolicyType
from keyless.providers.media.jobs import JobType
from keyless.providers.media.storage_access import MediaStorage
from keyless.providers.media.streaming_endpoints import StreamingEndpointType
from keyless.providers.media.streaming_locators import StreamingLocatorType
from keyless.providers.media.streaming_policies import StreamingPolicyType
from keyless.providers.media.transforms import TransformType


def media_child_types(storage: MediaStorage) -> list[MediaChildType]:
    """The child types, each registered with the resource manager and, for its ``prepare`` hook,
    with the Media Services front."""
    return [
        AssetType(storage),
        ContentKeyPolicyType(),
        StreamingPolicyType(),
        StreamingLocatorType(),
        StreamingEndpointType(),
        TransformType(),
        JobType(),
    ]
