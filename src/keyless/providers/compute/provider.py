"""VMs and Function/Web apps as tracked resources with the ``identity`` property.

No machine is run: a "VM" is a place a local process runs as (``keyless run --as``). Each
workload gets a host token when it is created; the ``listHostToken`` and
``regenerateHostToken`` actions (guarded like any other action) hand it out and rotate it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import RequestContext, StoredResource
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming, NameRule, ResourceType
from keyless.workload.hosts import HostTokens

VM_API_VERSIONS = frozenset(
    [
        "2015-06-15",
        "2016-03-30",
        "2016-04-30-preview",
        "2017-03-30",
        "2017-12-01",
        "2018-04-01",
        "2018-06-01",
        "2018-10-01",
        "2019-03-01",
        "2019-07-01",
        "2019-12-01",
        "2020-06-01",
        "2020-12-01",
        "2021-03-01",
        "2021-04-01",
        "2021-07-01",
        "2021-11-01",
        "2022-03-01",
        "2022-08-01",
        "2022-11-01",
        "2023-03-01",
        "2023-07-01",
        "2023-09-01",
        "2024-03-01",
        "2024-07-01",
        "2024-11-01",
        "2025-04-01",
        "2025-11-01",
        "2026-03-01",
        "2026-04-01",
    ]
)
WEB_API_VERSIONS = frozenset(
    [
        "2015-08-01",
        "2016-08-01",
        "2018-02-01",
        "2018-11-01",
        "2019-08-01",
        "2020-06-01",
        "2020-09-01",
        "2020-10-01",
        "2020-12-01",
        "2021-01-01",
        "2021-01-15",
        "2021-02-01",
        "2021-03-01",
        "2022-03-01",
        "2022-09-01",
        "2023-01-01",
        "2023-12-01",
        "2024-04-01",
        "2024-11-01",
        "2025-03-01",
        "2025-05-01",
    ]
)
VM_TYPE_KEY = "microsoft.compute/virtualmachines"
SITE_TYPE_KEY = "microsoft.web/sites"
WORKLOAD_TYPE_KEYS = frozenset({VM_TYPE_KEY, SITE_TYPE_KEY})
SITE_KINDS = ("app", "functionapp")


class WorkloadType(ResourceType):
    """Shared by VMs and sites: host-token lifecycle and the two host-token actions."""

    def __init__(self, host_tokens: HostTokens, **kwargs: Any) -> None:
        super().__init__(supports_identity=True, **kwargs)
        self.host_tokens = host_tokens
        self.actions = {
            "listHostToken": self._list_host_token,
            "regenerateHostToken": self._regenerate_host_token,
        }

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        if created:
            self.host_tokens.issue(conn, resource.rid.key)
        return None

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        # The host token dies with the workload: `keyless run --as` a deleted VM fails at once.
        self.host_tokens.forget(conn, resource.rid.key)

    def _list_host_token(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, body: dict[str, Any]
    ) -> tuple[int, Any]:
        token = self.host_tokens.reveal(conn, resource.rid.key) or self.host_tokens.issue(
            conn, resource.rid.key
        )
        return 200, {"hostToken": token}

    def _regenerate_host_token(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, body: dict[str, Any]
    ) -> tuple[int, Any]:
        return 200, {"hostToken": self.host_tokens.issue(conn, resource.rid.key)}


class VirtualMachineType(WorkloadType):
    def __init__(self, host_tokens: HostTokens) -> None:
        super().__init__(
            host_tokens,
            namespace="Microsoft.Compute",
            type_path="virtualMachines",
            api_versions=VM_API_VERSIONS,
            name_rule=NameRule(
                re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9_]$|^[a-zA-Z0-9_]$"),
                "The name must be 1 to 64 characters of letters, numbers, '_', '.' and '-', "
                "and cannot start or end with '.' or '-'.",
            ),
        )

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = dict(incoming.properties or {})
        props.pop("provisioningState", None)
        props["vmId"] = (
            (existing.document.get("properties") or {}).get("vmId") if existing else str(uuid.uuid4())
        )
        return props

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        props["provisioningState"] = "Succeeded"
        return props


class SiteType(WorkloadType):
    def __init__(self, host_tokens: HostTokens) -> None:
        super().__init__(
            host_tokens,
            namespace="Microsoft.Web",
            type_path="sites",
            api_versions=WEB_API_VERSIONS,
            # WebApps_CreateOrUpdate answers 200 (or 202), never 201: azure-mgmt-web refuses a 201.
            create_status=200,
            name_rule=NameRule(
                re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]$|^[a-zA-Z0-9]$"),
                "The name must be 1 to 60 characters of letters, numbers and hyphens, and cannot start or "
                "end with a hyphen.",
            ),
        )

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        kind = incoming.kind or "app"
        if not any(part.strip().lower() in SITE_KINDS for part in kind.split(",")):
            raise errors.bad_request(
                f"The site kind '{kind}' is not supported; use 'app' or 'functionapp' (optionally with "
                "',linux').",
                code="BadRequest",
                target="kind",
            )
        props = dict(incoming.properties or {})
        for read_only in ("provisioningState", "state", "defaultHostName", "hostNames"):
            props.pop(read_only, None)
        return props

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        host = f"{resource.rid.name.lower()}.azurewebsites.net"
        props.update(state="Running", defaultHostName=host, hostNames=[host], provisioningState="Succeeded")
        return props


def is_function_app(resource: StoredResource) -> bool:
    return "functionapp" in str(resource.document.get("kind") or "").lower()
