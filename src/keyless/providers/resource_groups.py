"""``Microsoft.Resources/resourceGroups``: the containers every tracked resource lives in."""

from __future__ import annotations

from typing import Any

from keyless.arm.engine import StoredResource
from keyless.arm.resource_types import ResourceType

# The Microsoft.Resources api-versions, from the resources specs.
RESOURCES_API_VERSIONS = frozenset(
    [
        "2014-04-01-preview",
        "2015-11-01",
        "2016-02-01",
        "2016-07-01",
        "2016-09-01",
        "2017-05-10",
        "2018-02-01",
        "2018-05-01",
        "2019-03-01",
        "2019-05-01",
        "2019-05-10",
        "2019-07-01",
        "2019-08-01",
        "2019-10-01",
        "2020-06-01",
        "2020-08-01",
        "2020-10-01",
        "2021-01-01",
        "2021-04-01",
        "2022-09-01",
        "2023-07-01",
        "2024-03-01",
        "2024-07-01",
        "2024-11-01",
        "2025-03-01",
        "2025-04-01",
    ]
)


class ResourceGroupType(ResourceType):
    def __init__(self) -> None:
        super().__init__(
            namespace="Microsoft.Resources", type_path="resourceGroups", api_versions=RESOURCES_API_VERSIONS
        )

    def operation(self, verb: str) -> str:
        # Resource groups live under subscriptions in the RBAC action namespace.
        return f"Microsoft.Resources/subscriptions/resourceGroups/{verb}"

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        return {"provisioningState": "Succeeded"}
