"""What IMDS knows about the VM that calls it: api-versions, the instance document, route filters.

Free of HTTP: the wire layer (``http.py``) picks the status and the body shape.

Sources:
- MicrosoftDocs/azure-compute-docs ``articles/virtual-machines/instance-metadata-service.md``:
  the supported api-versions, the versions error (``"newest-versions"``), ``/metadata/versions``,
  route parameters (keys and array indexes walk the JSON), ``format=json|text`` (leaf nodes need
  ``text``; MicrosoftDocs/azure-docs#15283 confirms a leaf without ``format=text`` is a 400),
  the category each api-version introduced, ``tags`` as ``name:value;...`` and ``tagsList``.
- Azure/azure-rest-api-specs ``specification/imds/data-plane/InstanceMetadataService/stable/
  2023-07-01/imds.json``: the ``Compute``/``Network`` field names; every primitive is a string,
  and missing values are empty strings (the docs, "Data format").
- [inference] ``format=text`` on an object lists its keys one a line, a ``/`` after each key that
  holds an object or array (the index for arrays), as IMDS's text view of a non-leaf does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from keyless.arm.engine import StoredResource
from keyless.web import bounded_int

# Newest first (the docs' "Supported API versions", 2025-04-07 back to 2017-03-01).
API_VERSIONS: tuple[str, ...] = (
    "2025-04-07",
    "2024-07-17",
    "2024-03-15",
    "2023-11-15",
    "2023-07-01",
    "2021-12-13",
    "2021-11-15",
    "2021-11-01",
    "2021-10-01",
    "2021-08-01",
    "2021-05-01",
    "2021-03-01",
    "2021-02-01",
    "2021-01-01",
    "2020-12-01",
    "2020-10-01",
    "2020-09-01",
    "2020-07-15",
    "2020-06-01",
    "2019-11-01",
    "2019-08-15",
    "2019-08-01",
    "2019-06-04",
    "2019-06-01",
    "2019-04-30",
    "2019-03-11",
    "2019-02-01",
    "2018-10-01",
    "2018-04-02",
    "2018-02-01",
    "2017-12-01",
    "2017-10-01",
    "2017-08-01",
    "2017-04-02",
    "2017-03-01",
)
# The category roots and the version each was introduced in (the docs' "Endpoint categories").
IDENTITY_VERSIONS = frozenset(v for v in API_VERSIONS if v >= "2018-02-01")
INSTANCE_VERSIONS = frozenset(v for v in API_VERSIONS if v >= "2017-04-02")
NEWEST_VERSIONS = list(API_VERSIONS[:3])
VERSIONS_ERROR = (
    "Bad request. api-version is invalid or was not specified in the request. "
    "For more information refer to aka.ms/azureimds"
)
# Route filters deeper than the document is are refused before any walk.
_MAX_ROUTE_DEPTH = 16


class NotFound(Exception):
    """The route names no element of the document."""


def _tags_text(tags: dict[str, Any]) -> str:
    return ";".join(f"{name}:{value}" for name, value in tags.items())


def _mac(vm_id: str) -> str:
    # A stable, VM-specific MAC in Azure's OUI (00-0D-3A), upper-case hex without separators.
    return "000D3A" + hashlib.sha256(vm_id.encode()).hexdigest()[:6].upper()


def instance_document(vm: StoredResource) -> dict[str, Any]:
    """The ``/metadata/instance`` JSON of a VM, built from its resource (all primitives strings).

    Fields Keyless has no value for (image, placement, disks) are empty strings, as IMDS gives
    missing values; the network is one loopback interface (the VM runs on this machine)."""
    doc = vm.document
    props: dict[str, Any] = doc.get("properties") or {}
    hardware: dict[str, Any] = props.get("hardwareProfile") or {}
    storage: dict[str, Any] = props.get("storageProfile") or {}
    image: dict[str, Any] = storage.get("imageReference") or {}
    os_disk: dict[str, Any] = storage.get("osDisk") or {}
    os_profile: dict[str, Any] = props.get("osProfile") or {}
    tags: dict[str, Any] = doc.get("tags") or {}
    zones = doc.get("zones") or []
    rid = vm.rid
    vm_id = str(props.get("vmId") or "")
    compute = {
        "azEnvironment": "AzurePublicCloud",
        "evictionPolicy": str(props.get("evictionPolicy") or ""),
        "isHostCompatibilityLayerVm": "false",
        "licenseType": str(props.get("licenseType") or ""),
        "location": str(doc.get("location") or ""),
        "name": rid.name,
        "offer": str(image.get("offer") or ""),
        "osProfile": {
            "adminUsername": str(os_profile.get("adminUsername") or ""),
            "computerName": str(os_profile.get("computerName") or rid.name),
            "disablePasswordAuthentication": "",
        },
        "osType": str(os_disk.get("osType") or "Linux"),
        "placementGroupId": "",
        "platformFaultDomain": "0",
        "platformUpdateDomain": "0",
        "priority": str(props.get("priority") or "Regular"),
        "provider": "Microsoft.Compute",
        "publicKeys": [],
        "publisher": str(image.get("publisher") or ""),
        "resourceGroupName": rid.resource_group or "",
        "resourceId": str(rid),
        "sku": str(image.get("sku") or ""),
        "subscriptionId": rid.subscription_id,
        "tags": _tags_text(tags),
        "tagsList": [{"name": name, "value": str(value)} for name, value in tags.items()],
        "userData": str(props.get("userData") or ""),
        "version": str(image.get("version") or ""),
        "vmId": vm_id,
        "vmScaleSetName": "",
        "vmSize": str(hardware.get("vmSize") or ""),
        "zone": str(zones[0]) if isinstance(zones, list) and zones else "",
    }
    network = {
        "interface": [
            {
                "ipv4": {
                    "ipAddress": [{"privateIpAddress": "127.0.0.1", "publicIpAddress": ""}],
                    "subnet": [{"address": "127.0.0.0", "prefix": "8"}],
                },
                "ipv6": {"ipAddress": []},
                "macAddress": _mac(vm_id),
            }
        ]
    }
    return {"compute": compute, "network": network}


def walk(document: Any, route: list[str]) -> Any:
    """The element a route filter names (keys case-insensitively, array indexes as decimals).

    Raises NotFound when a step names nothing."""
    if len(route) > _MAX_ROUTE_DEPTH:
        raise NotFound()
    node = document
    for step in route:
        if isinstance(node, dict):
            match = next((k for k in node if k.lower() == step.lower()), None)
            if match is None:
                raise NotFound()
            node = node[match]
        elif isinstance(node, list):
            index = bounded_int(step, len(node) - 1) if node else None
            if index is None:
                raise NotFound()
            node = node[index]
        else:
            raise NotFound()
    return node


def is_leaf(node: Any) -> bool:
    return not isinstance(node, dict | list)


def as_text(node: Any) -> str:
    """IMDS's ``format=text`` view: a leaf's value, or an object's/array's children one a line."""
    if isinstance(node, dict):
        return "\n".join(f"{k}/" if not is_leaf(v) else k for k, v in node.items())
    if isinstance(node, list):
        return "\n".join(f"{i}/" if not is_leaf(v) else str(i) for i, v in enumerate(node))
    return str(node)
