"""VMs and Function/Web apps as tracked resources with the ``identity`` property.

No machine is run: a "VM" is a place a local process runs as (``keyless run --as``). Each
workload gets a host token when it is created; the ``listHostToken`` and
``regenerateHostToken`` actions (guarded like any other action) hand it out and rotate it.

A workload's network origin (what Key Vault and Storage firewalls see: ``keyless.network``) is
``properties.keylessNetwork`` ``{publicIpAddress, subnetId}`` on VMs and sites, a Keyless extension
(Azure puts these on NIC and public IP resources that Keyless does not emulate), and App Service's
own ``properties.virtualNetworkSubnetId`` on sites. Both are validated on every PUT/PATCH and take
effect at once: a write clears the workload lookups (``WorkloadIdentityService.forget_lookups``).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import Authorizer, RequestContext, StoredResource
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming, NameRule, RawBody, ResourceType
from keyless.network import check_subnet_id, validate_keyless_network
from keyless.store.tables import resources
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
# Read-only properties the provider computes; whatever a request says for them is dropped.
_VM_READ_ONLY = ("provisioningState", "vmId", "timeCreated", "instanceView")
_SITE_READ_ONLY = (
    "provisioningState",
    "state",
    "defaultHostName",
    "hostNames",
    "enabledHostNames",
    "hostNameSslStates",
    "repositorySiteName",
    "usageState",
    "availabilityState",
    "lastModifiedTimeUtc",
    "resourceGroup",
    "sku",
)


SUBNET_JOIN_ACTION = "Microsoft.Network/virtualNetworks/subnets/join/action"
PUBLIC_IP_JOIN_ACTION = "Microsoft.Network/publicIPAddresses/join/action"


class WorkloadType(ResourceType):
    """Shared by VMs and sites: host-token lifecycle, the two host-token actions, and the
    network settings (``keylessNetwork``)."""

    def __init__(
        self, host_tokens: HostTokens, *, authorizer: Authorizer | None = None, **kwargs: Any
    ) -> None:
        super().__init__(supports_identity=True, **kwargs)
        self.host_tokens = host_tokens
        # When given, putting a workload in a subnet needs the subnet's join action, as Azure asks
        # of a NIC's ipConfiguration (the Virtual Machine Contributor role grants it).
        self.authorizer = authorizer
        self.actions = {
            "listHostToken": self._list_host_token,
            "regenerateHostToken": self._regenerate_host_token,
        }

    def _network(
        self,
        ctx: RequestContext,
        props: dict[str, Any],
        existing: StoredResource | None,
        code: str,
        conn: sa.Connection,
        rid: ResourceId,
    ) -> None:
        """Validate (and normalise in place) ``props["keylessNetwork"]``; see the module docstring."""
        network = validate_keyless_network(props.get("keylessNetwork"), code)
        if network is None:
            props.pop("keylessNetwork", None)
        else:
            props["keylessNetwork"] = network
        self._check_join(ctx, (network or {}).get("subnetId"), existing)
        self._check_public_ip(ctx, rid, (network or {}).get("publicIpAddress"), existing)

    def _check_public_ip(
        self,
        ctx: RequestContext,
        rid: ResourceId,
        address: str | None,
        existing: StoredResource | None,
    ) -> None:
        """A public IP is Azure's to hand out, never a caller's to pick: giving a workload a new
        address needs ``publicIPAddresses/join/action`` on the subscription (Owner, Contributor,
        Network Contributor there; a NIC needs it on the address in Azure). Otherwise whoever may
        write a VM in a group of their own could take the address another owner's vault or storage
        firewall trusts. Workloads may share an address, as VMs behind one NAT gateway do."""
        if address is None:
            return
        before = ((existing.document.get("properties") or {}).get("keylessNetwork") or {}) if existing else {}
        if before.get("publicIpAddress") == address:
            return
        if self.authorizer is not None:
            self.authorizer.check(ctx.caller, PUBLIC_IP_JOIN_ACTION, f"/subscriptions/{rid.subscription_id}")

    def _check_join(self, ctx: RequestContext, subnet: str | None, existing: StoredResource | None) -> None:
        if subnet is None or self.authorizer is None:
            return
        before = (existing.document.get("properties") or {}) if existing else {}
        known = {
            str(v).lower()
            for v in (
                (before.get("keylessNetwork") or {}).get("subnetId"),
                before.get("virtualNetworkSubnetId"),
            )
            if v
        }
        if subnet.lower() not in known:
            self.authorizer.check(ctx.caller, SUBNET_JOIN_ACTION, subnet)

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
    def __init__(self, host_tokens: HostTokens, *, authorizer: Authorizer | None = None) -> None:
        super().__init__(
            host_tokens,
            authorizer=authorizer,
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
        for read_only in _VM_READ_ONLY:
            props.pop(read_only, None)
        # Compute answers bad property values with 400 InvalidParameter and a target.
        self._network(ctx, props, existing, "InvalidParameter", conn, rid)
        props["vmId"] = (
            (existing.document.get("properties") or {}).get("vmId") if existing else str(uuid.uuid4())
        )
        return props

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        """What the request stored, over the minimal profiles a VM always has (the spec's
        ``VirtualMachineProperties``: clients read ``hardwareProfile.vmSize``,
        ``storageProfile.osDisk.osType``, ``osProfile.computerName``, ``vmId``, ``timeCreated``)."""
        stored = resource.document.get("properties") or {}
        name = resource.rid.name
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": "Standard_B1s"},
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "name": f"{name}_OsDisk",
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "deleteOption": "Detach",
                    "diskSizeGB": 30,
                    "managedDisk": {"storageAccountType": "Standard_LRS"},
                },
                "dataDisks": [],
            },
            "osProfile": {
                # Windows computer names stop at 15 characters; Linux ones at 64 (the VM name's limit).
                "computerName": name,
                "adminUsername": "azureuser",
                "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True},
                "secrets": [],
                "allowExtensionOperations": True,
                "requireGuestProvisionSignal": True,
            },
            "networkProfile": {"networkInterfaces": []},
        }
        props.update(stored)
        props["provisioningState"] = "Succeeded"
        props["timeCreated"] = _iso(resource.created_at)
        return props


class SiteType(WorkloadType):
    def __init__(self, host_tokens: HostTokens, *, authorizer: Authorizer | None = None) -> None:
        super().__init__(
            host_tokens,
            authorizer=authorizer,
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
        self.actions["publishxml"] = self._publish_xml

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
        for read_only in _SITE_READ_ONLY:
            props.pop(read_only, None)
        for name in ("serverFarmId", "siteConfig"):
            if props.get(name) is not None and not isinstance(
                props[name], (str if name == "serverFarmId" else dict)
            ):
                raise errors.invalid_request_content(
                    f"Error converting value to type '{'string' if name == 'serverFarmId' else 'SiteConfig'}'. "
                    f"Path 'properties.{name}'."
                )
        self._site_network(ctx, props, existing, conn, rid)
        return props

    def _site_network(
        self,
        ctx: RequestContext,
        props: dict[str, Any],
        existing: StoredResource | None,
        conn: sa.Connection,
        rid: ResourceId,
    ) -> None:
        """``keylessNetwork`` and App Service's ``virtualNetworkSubnetId`` (specs Microsoft.Web
        ``SiteProperties``: "Azure Resource Manager ID of the Virtual network and subnet to be joined
        by Regional VNET Integration"); when both name a subnet they must name the same one."""
        subnet = props.get("virtualNetworkSubnetId")
        if subnet is not None:
            check_subnet_id(subnet, "BadRequest", "properties.virtualNetworkSubnetId")
        else:
            props.pop("virtualNetworkSubnetId", None)
        self._network(ctx, props, existing, "BadRequest", conn, rid)
        extension = (props.get("keylessNetwork") or {}).get("subnetId")
        if subnet is not None and extension is not None and subnet.lower() != extension.lower():
            raise errors.bad_request(
                "properties.virtualNetworkSubnetId and properties.keylessNetwork.subnetId name different subnets.",
                target="properties.keylessNetwork.subnetId",
            )
        if subnet is not None:
            self._check_join(ctx, subnet, existing)

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        super().after_write(ctx, conn, resource, created)
        if resource.document.get("kind"):
            return None
        # App Service always answers a kind ("app" when none was given); the engine then stores
        # the whole document, this included.
        resource.document["kind"] = "app"
        return dict(resource.document.get("properties") or {})

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        """``SiteProperties`` as App Service answers them (specs ``Microsoft.Web`` ``Site``): what
        the request stored, and the read-only ones clients read (az's ``functionapp show`` reads
        ``serverFarmId`` and ``sku``; ``webapp list`` reads ``defaultHostName``, ``state``...).
        No App Service plan exists in Keyless: ``serverFarmId`` is null unless the request gave one,
        and ``sku`` is "Dynamic" (consumption) for a function app, "Free" otherwise."""
        stored = resource.document.get("properties") or {}
        rid = resource.rid
        name = rid.name.lower()
        host, scm = f"{name}.azurewebsites.net", f"{name}.scm.azurewebsites.net"
        function_app = is_function_app(resource)
        props: dict[str, Any] = {
            "name": rid.name,
            "enabled": True,
            "serverFarmId": None,
            "reserved": "linux" in str(resource.document.get("kind") or "").lower(),
            "isXenon": False,
            "hyperV": False,
            "siteConfig": _site_config(rid.name, function_app, brief=True),
            "scmSiteAlsoStopped": False,
            "clientAffinityEnabled": not function_app,
            "clientCertEnabled": False,
            "clientCertMode": "Required",
            "hostNamesDisabled": False,
            "containerSize": 1536 if function_app else 0,
            "dailyMemoryTimeQuota": 0,
            "httpsOnly": False,
            "redundancyMode": "None",
            "publicNetworkAccess": None,
            "storageAccountRequired": False,
            "keyVaultReferenceIdentity": "SystemAssigned",
            "vnetRouteAllEnabled": False,
            "managedEnvironmentId": None,
        }
        props.update(stored)
        if isinstance(stored.get("siteConfig"), dict):
            props["siteConfig"] = {**_site_config(rid.name, function_app, brief=True), **stored["siteConfig"]}
        props.update(
            state="Running",
            hostNames=[host],
            enabledHostNames=[host, scm],
            hostNameSslStates=[
                {"name": host, "sslState": "Disabled", "hostType": "Standard"},
                {"name": scm, "sslState": "Disabled", "hostType": "Repository"},
            ],
            repositorySiteName=rid.name,
            usageState="Normal",
            availabilityState="Normal",
            lastModifiedTimeUtc=_iso(resource.modified_at),
            resourceGroup=rid.resource_group,
            defaultHostName=host,
            sku="Dynamic" if function_app else "Free",
            provisioningState="Succeeded",
        )
        return props

    def _publish_xml(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, body: dict[str, Any]
    ) -> tuple[int, Any]:
        """``POST sites/{name}/publishxml`` (WebApps_ListPublishingProfileXmlWithSecrets): one Web
        Deploy profile without credentials (Keyless deploys nothing).  az's ``functionapp show``
        parses ``publishData/publishProfile`` and looks for an FTP one (none: it skips the URL)."""
        name = xml_escape(resource.rid.name, {'"': "&quot;"})
        lowered = name.lower()
        profile = (
            f'<publishData><publishProfile profileName="{name} - Web Deploy" publishMethod="MSDeploy" '
            f'publishUrl="{lowered}.scm.azurewebsites.net:443" msdeploySite="{name}" userName="${name}" '
            f'userPWD="" destinationAppUrl="https://{lowered}.azurewebsites.net" SQLServerDBConnectionString="" '
            'mySQLDBConnectionString="" hostingProviderForumLink="" controlPanelLink="https://portal.azure.com" '
            'webSystem="WebSites"><databases /></publishProfile></publishData>'
        )
        return 200, RawBody("application/xml", profile.encode())


class SiteConfigType(ResourceType):
    """``Microsoft.Web/sites/config``, name ``web`` only: the site's configuration, which exists
    whenever the site does (WebApps_GetConfiguration; a PUT stores what it is given)."""

    def __init__(self) -> None:
        super().__init__(
            namespace="Microsoft.Web",
            type_path="sites/config",
            api_versions=WEB_API_VERSIONS,
            tracked=False,
            create_status=200,
            name_rule=NameRule(re.compile(r"[wW][eE][bB]"), "The only configuration served is 'web'."),
        )

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        parent = resource.rid.parent
        site = parent.name if parent is not None else resource.rid.name
        return {**_site_config(site, False, brief=False), **(resource.document.get("properties") or {})}

    def implicit(self, conn: sa.Connection, rid: ResourceId) -> dict[str, Any] | None:
        parent = rid.parent
        if rid.name.lower() != "web" or parent is None:
            return None
        row = conn.execute(sa.select(resources.c.document).where(resources.c.id_key == parent.key)).first()
        if row is None:
            return None
        kind = str(orjson.loads(row.document).get("kind") or "").lower()
        return {
            "id": str(rid),
            "name": rid.name,
            "type": self.type_name,
            "properties": _site_config(parent.name, "functionapp" in kind, brief=False),
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e7):07d}Z"


def _site_config(site: str, function_app: bool, *, brief: bool) -> dict[str, Any]:
    """A ``SiteConfig`` with App Service's defaults (specs ``Microsoft.Web`` ``SiteConfig``).  In
    a site's GET App Service answers a brief one; ``config/web`` answers the whole."""
    config: dict[str, Any] = {
        "numberOfWorkers": 1,
        "linuxFxVersion": "",
        "acrUseManagedIdentityCreds": False,
        "alwaysOn": False,
        "http20Enabled": False,
        "functionAppScaleLimit": 200 if function_app else 0,
        "minimumElasticInstanceCount": 0,
    }
    if brief:
        return config
    allow_all = {
        "ipAddress": "Any",
        "action": "Allow",
        "priority": 2147483647,
        "name": "Allow all",
        "description": "Allow all access",
    }
    config.update(
        defaultDocuments=[],
        netFrameworkVersion="v4.0",
        phpVersion="",
        pythonVersion="",
        nodeVersion="",
        powerShellVersion="",
        requestTracingEnabled=False,
        remoteDebuggingEnabled=False,
        httpLoggingEnabled=False,
        logsDirectorySizeLimit=35,
        detailedErrorLoggingEnabled=False,
        publishingUsername=f"${site}",
        appSettings=None,
        connectionStrings=None,
        scmType="None",
        use32BitWorkerProcess=True,
        webSocketsEnabled=False,
        appCommandLine="",
        managedPipelineMode="Integrated",
        virtualApplications=[{"virtualPath": "/", "physicalPath": "site\\wwwroot", "preloadEnabled": False}],
        loadBalancing="LeastRequests",
        autoHealEnabled=False,
        localMySqlEnabled=False,
        ipSecurityRestrictions=[allow_all],
        scmIpSecurityRestrictions=[allow_all],
        scmIpSecurityRestrictionsUseMain=False,
        minTlsVersion="1.2",
        scmMinTlsVersion="1.2",
        ftpsState="FtpsOnly",
        preWarmedInstanceCount=0,
        functionsRuntimeScaleMonitoringEnabled=False,
        azureStorageAccounts={},
    )
    return config


def is_function_app(resource: StoredResource) -> bool:
    return "functionapp" in str(resource.document.get("kind") or "").lower()
