"""Network origins and THE network-rules evaluator that Key Vault and Storage share.

A request's **origin** is decided by the edge alone (``OriginResolver``), never by anything the
caller sends:

- a Keyless service calling another in-process marks its ASGI scope with
  ``scope["state"][TRUSTED_SERVICE_STATE]`` (the edge builds every ``state`` dict itself and copies
  nothing from a request into it, so no outside caller can set it);
- a request through the forward proxy whose proxy password is a workload's host token comes from
  that workload: its public IP and subnet (``workload_network``);
- the proxy without a password (the local admin's ``keyless run``) and a loopback TCP peer are the
  local host; any other TCP peer is its own address. No header (``X-Forwarded-For`` ...) counts.

The **rules** (``NetworkRules``) are a resource's ``networkAcls`` and ``publicNetworkAccess`` as
the Key Vault and Storage resource providers store them; ``validate_network_acls`` is the ARM-side
check of a PUT/PATCH body, and ``allows`` is the one decision both data planes make.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any, Final, Literal

from keyless.arm import errors
from keyless.arm.errors import ArmError
from keyless.edge.routing import VIA_PROXY, proxy_authorization
from keyless.web import Scope

if TYPE_CHECKING:
    from keyless.workload.service import WorkloadIdentityService

TRUSTED_SERVICE_STATE: Final = "keyless.trusted_service"
Service = Literal["keyvault", "storage"]
IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Limits. Key Vault: "A maximum of 200 virtual network rules and 1000 IPv4 rules are allowed"
# (azure-docs articles/key-vault/general/network-security.md). Storage: 400 IP rules, 400 virtual
# network rules and 200 resource instance rules per account (azure-docs storage scalability
# targets, 2025; older pages say 200/200).
_LIMITS: Final = {
    "keyvault": {"ipRules": 1000, "virtualNetworkRules": 200, "resourceAccessRules": 0},
    "storage": {"ipRules": 400, "virtualNetworkRules": 400, "resourceAccessRules": 200},
}
# Longest text accepted for one IP rule ("255.255.255.255/32" is 18; room for spaces is not given).
_MAX_IP_TEXT: Final = 64
_MAX_ID_TEXT: Final = 1024
_MAX_ENUM_TEXT: Final = 64
# RFC 1918 ranges: both services refuse them in IP rules (azure-docs key-vault network-security.md;
# storage-network-security-limitations.md; Key Vault's message in Azure/azure-powershell#11471,
# whose ranges are written with an en dash).
_PRIVATE_RANGES: Final = (
    (IPv4Network("10.0.0.0/8"), "10.0.0.0\u201310.255.255.255"),
    (IPv4Network("172.16.0.0/12"), "172.16.0.0\u2013172.31.255.255"),
    (IPv4Network("192.168.0.0/16"), "192.168.0.0\u2013192.168.255.255"),
)
# Not public either, and in Keyless one more reason: every local caller (the admin, a workload
# that drops its proxy password) is 127.0.0.1, so a rule holding loopback would let all of them in.
_RESERVED_RANGES: Final = (
    (IPv4Network("0.0.0.0/8"), "0.0.0.0\u20130.255.255.255"),
    (IPv4Network("127.0.0.0/8"), "127.0.0.0\u2013127.255.255.255"),
    (IPv4Network("169.254.0.0/16"), "169.254.0.0\u2013169.254.255.255"),
    (IPv4Network("224.0.0.0/3"), "224.0.0.0\u2013255.255.255.255"),
)
_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?"
_GROUP = r"[-\w._()]{0,89}[-\w_()]"
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# A subnet id: /subscriptions/{guid}/resourceGroups/{group}/providers/Microsoft.Network/
# virtualNetworks/{vnet}/subnets/{subnet} (segment names case-insensitive, as every ARM id).
SUBNET_ID: Final = re.compile(
    rf"/subscriptions/{_GUID}/resourcegroups/{_GROUP}/providers/microsoft\.network/"
    rf"virtualnetworks/{_NAME}/subnets/{_NAME}",
    re.IGNORECASE,
)
# A resource instance rule's resource id: the subscription, group and name may be "*" ("All in
# current tenant / subscription / resource group": Azure/azure-sdk-for-net#35154,
# hashicorp/terraform-provider-azurerm#10965); the provider and type may not.
_RESOURCE_RULE_ID: Final = re.compile(
    rf"/subscriptions/(?:{_GUID}|\*)/resourcegroups/(?:{_GROUP}|\*)/providers/"
    rf"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+(?:/[A-Za-z][A-Za-z0-9]*/(?:{_NAME}|\*))+",
    re.IGNORECASE,
)


def normalise_address(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) as the IPv4 address it carries."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(text: str) -> IPAddress | None:
    """An IP literal (bounded, normalised), or None."""
    if not isinstance(text, str) or len(text) > _MAX_IP_TEXT:
        return None
    try:
        return normalise_address(ip_address(text))
    except ValueError:
        return None


# --- the origin -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkOrigin:
    """Where a request comes from, as a service sees it. All None: nowhere any rule names."""

    address: IPAddress | None = None  # the caller's public address
    subnet_id: str | None = None  # lower-cased subnet resource id
    trusted_service: str | None = None  # resource id of a Keyless service instance (in-process only)
    workload_id: str | None = None  # the calling workload's resource id

    def client_address(self) -> str:
        """The text for Key Vault's ``Client address: …`` line: the address, else ``unknown``."""
        return str(self.address) if self.address is not None else "unknown"


LOCAL_HOST: Final = NetworkOrigin(address=IPv4Address("127.0.0.1"))
# A proxy password that names no workload (a deleted VM's token): no address, no subnet.
_UNKNOWN_WORKLOAD: Final = NetworkOrigin()


def workload_network(document: Mapping[str, Any]) -> tuple[IPAddress | None, str | None]:
    """(public address, lower-cased subnet id) of a stored VM or site document.

    Read from the Keyless extension ``properties.keylessNetwork`` {publicIpAddress, subnetId}, and
    for sites also App Service's ``properties.virtualNetworkSubnetId`` (specs Microsoft.Web
    ``SiteProperties``). Both are validated on write (``validate_keyless_network``)."""
    properties = document.get("properties") or {}
    network = properties.get("keylessNetwork") if isinstance(properties, Mapping) else None
    network = network if isinstance(network, Mapping) else {}
    raw_ip = network.get("publicIpAddress")
    address = parse_address(raw_ip) if isinstance(raw_ip, str) else None
    subnet = network.get("subnetId") or properties.get("virtualNetworkSubnetId")
    if not isinstance(subnet, str) or SUBNET_ID.fullmatch(subnet) is None:
        subnet = None
    return address, subnet.lower() if subnet else None


def _proxy_password(value: str | None) -> str | None:
    """The password of ``Proxy-Authorization: Basic base64(user:password)``, else None."""
    if not value or len(value) > 1024:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[2] or None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


class OriginResolver:
    """The edge's answer to "where does this request come from" (see the module docstring)."""

    def __init__(self, workloads: WorkloadIdentityService) -> None:
        self.workloads = workloads

    def origin(self, scope: Scope) -> NetworkOrigin:
        """The origin of the request ``scope`` describes. Never raises; never reads a header
        other than the proxy's own credentials on a request that came through the proxy."""
        state = scope.get("state") or {}
        trusted = state.get(TRUSTED_SERVICE_STATE)
        if isinstance(trusted, str) and trusted:
            return NetworkOrigin(trusted_service=trusted)
        if state.get(VIA_PROXY):
            token = _proxy_password(proxy_authorization(scope))
            if token is None:
                return LOCAL_HOST
            workload = self.workloads.workload_for_host_token(token)
            if workload is None:
                return _UNKNOWN_WORKLOAD
            address, subnet = workload_network(workload.resource.document)
            return NetworkOrigin(address=address, subnet_id=subnet, workload_id=str(workload.resource.rid))
        client = scope.get("client")
        peer = parse_address(client[0]) if client and isinstance(client[0], str) else None
        if peer is None:
            return _UNKNOWN_WORKLOAD
        if peer.is_loopback:
            return LOCAL_HOST
        return NetworkOrigin(address=peer)


# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRules:
    """A resource's network rules, lower-cased where Azure compares without regard to case."""

    public_network_access: str  # "Enabled" | "Disabled" ("SecuredByPerimeter" counts as Disabled)
    default_action: str  # "Allow" | "Deny"
    bypass: frozenset[str]  # lower-cased tokens: "azureservices", "logging", "metrics"
    ip_rules: tuple[IPNetwork, ...]
    virtual_network_rules: tuple[str, ...]  # lower-cased subnet ids
    resource_access_rules: tuple[tuple[str, str], ...]  # (tenant id, resource id), both lower-cased

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> NetworkRules:
        """The rules in a stored Key Vault or Storage ``properties`` (already validated).

        No ``networkAcls``: the firewall is off (``Allow``). No ``bypass``: ``AzureServices``, both
        services' default (specs KeyVault ``NetworkRuleSet.bypass``; Storage ``NetworkRuleSet``).
        ``publicNetworkAccess`` absent or null is ``Enabled`` (Key Vault's default "enabled");
        ``SecuredByPerimeter`` (Storage) is treated as ``Disabled``: Keyless has no perimeters."""
        acls = properties.get("networkAcls")
        acls = acls if isinstance(acls, Mapping) else {}
        pna = str(properties.get("publicNetworkAccess") or "Enabled")
        ip_rules: list[IPNetwork] = []
        for rule in acls.get("ipRules") or ():
            value = rule.get("value") if isinstance(rule, Mapping) else None
            try:
                ip_rules.append(ip_network(str(value), strict=False))
            except ValueError:
                continue  # stored values were validated; a bad one names no one
        subnets = tuple(
            str(rule["id"]).lower()
            for rule in acls.get("virtualNetworkRules") or ()
            if isinstance(rule, Mapping) and rule.get("id")
        )
        resource_rules = tuple(
            (str(rule.get("tenantId") or "").lower(), str(rule["resourceId"]).lower())
            for rule in acls.get("resourceAccessRules") or ()
            if isinstance(rule, Mapping) and rule.get("resourceId")
        )
        bypass = acls.get("bypass")
        return cls(
            public_network_access="Enabled" if pna.lower() == "enabled" else "Disabled",
            default_action="Deny" if str(acls.get("defaultAction") or "Allow").lower() == "deny" else "Allow",
            bypass=_bypass_tokens("AzureServices" if bypass is None else str(bypass)),
            ip_rules=tuple(ip_rules),
            virtual_network_rules=subnets,
            resource_access_rules=resource_rules,
        )


def _bypass_tokens(value: str) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in value.split(",") if t.strip() and t.strip().lower() != "none")


def _resource_rule_matches(pattern: str, resource_id: str) -> bool:
    """Whether a (lower-cased) resource instance rule id names ``resource_id`` (lower-cased):
    segment by segment, ``*`` standing for any one segment."""
    wanted, actual = pattern.strip("/").split("/"), resource_id.strip("/").split("/")
    return len(wanted) == len(actual) and all(w in ("*", a) for w, a in zip(wanted, actual, strict=True))


def allows(rules: NetworkRules, origin: NetworkOrigin, *, tenant_id: str | None = None) -> bool:
    """Whether a data-plane request from ``origin`` passes ``rules`` (True: go on to authenticate).

    Semantics, the same for Key Vault and Storage (sources: KeyVault spec ``publicNetworkAccess``
    "If set to 'disabled' all traffic except private endpoint traffic and that that originates from
    trusted services will be blocked. This will override the set firewall rules"; azure-docs
    storage-network-security-limitations.md "access ... from trusted services takes the highest
    precedence ... resource instances and exceptions ... remain in effect" after Disabled):

    1. a trusted service instance passes when ``bypass`` has ``AzureServices``, or (Storage) when a
       resource instance rule names it: these hold even when public access is Disabled;
    2. public access Disabled (or SecuredByPerimeter): nothing else passes (no private endpoints);
    3. ``defaultAction`` Allow: everything passes;
    4. Deny: the address inside an IP rule network, or the subnet in a virtual network rule
       (ids compared without regard to case), passes; nothing else.

    ``tenant_id``: the tenant of the trusted service instance, when the caller knows it. A resource
    instance rule must name the storage account's tenant and the instance must be in it (azure-docs
    storage-network-security resource instances); a rule whose subscription is ``*`` (all in the
    tenant) matches only when ``tenant_id`` is given and equal, since only the tenant bounds it.
    """
    if origin.trusted_service:
        if "azureservices" in rules.bypass:
            return True
        service = origin.trusted_service.lower()
        tenant = tenant_id.lower() if tenant_id else None
        for rule_tenant, pattern in rules.resource_access_rules:
            if tenant is not None and rule_tenant != tenant:
                continue
            if tenant is None and pattern.startswith("/subscriptions/*/"):
                continue
            if _resource_rule_matches(pattern, service):
                return True
    if rules.public_network_access != "Enabled":
        return False
    if rules.default_action == "Allow":
        return True
    if origin.address is not None:
        address = normalise_address(origin.address)
        if any(address.version == net.version and address in net for net in rules.ip_rules):
            return True
    return origin.subnet_id is not None and origin.subnet_id.lower() in rules.virtual_network_rules


# --- ARM-side validation ------------------------------------------------------------------------


def _fail(service: Service, field: str, detail: str) -> ArmError:
    """Key Vault: 400 ``BadRequest`` "Invalid value found at properties.networkAcls.{field}: …"
    (Azure/azure-powershell#11471). Storage: 400 ``InvalidValuesForRequestParameters`` "Values
    for request parameters are invalid: networkAcls.{field}. For more information, see -
    https://aka.ms/storagenetworkruleset" (Azure/azure-cli#13828, #25455), with ``[*]`` for the index."""
    if service == "keyvault":
        return errors.bad_request(f"Invalid value found at properties.networkAcls.{field}: {detail}")
    generic = re.sub(r"\[\d+\]", "[*]", field)
    return ArmError(
        400,
        "InvalidValuesForRequestParameters",
        f"Values for request parameters are invalid: networkAcls.{generic}. "
        "For more information, see - https://aka.ms/storagenetworkruleset",
    )


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _enum(value: Any, allowed: tuple[str, ...], service: Service, field: str) -> str:
    if isinstance(value, str) and len(value) <= _MAX_ENUM_TEXT:
        for choice in allowed:
            if value.strip().lower() == choice.lower():
                return choice
    raise _fail(service, field, f"'{_shown(value)}' is not one of {', '.join(allowed)}")


def _list(acls: Mapping[str, Any], key: str, service: Service) -> list[Any]:
    value = acls.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(service, key, "an array is expected")
    limit = _LIMITS[service][key]
    if len(value) > limit:
        what = "rules are" if limit else "rules are not supported:"
        raise _fail(service, key, f"at most {limit} {what} allowed, {len(value)} were given")
    return value


def _ip_rule(rule: Any, index: int, service: Service) -> dict[str, Any]:
    field = f"ipRules[{index}].value"
    if not isinstance(rule, Mapping):
        raise _fail(service, f"ipRules[{index}]", "an object is expected")
    value = rule.get("value")
    if not isinstance(value, str) or not value or len(value) > _MAX_IP_TEXT:
        raise _fail(service, field, f"'{_shown(value)}' is not an IPv4 address or CIDR range")
    try:
        network = ip_network(value, strict=True)
    except ValueError:
        raise _fail(service, field, f"{value} is not an IPv4 address or CIDR range") from None
    if not isinstance(network, IPv4Network):
        # "Only IPv4 addresses are supported" (both services' docs).
        raise _fail(service, field, f"{value} is not an IPv4 address or CIDR range")
    for private, span in _PRIVATE_RANGES:
        if network.overlaps(private):
            raise _fail(service, field, f"{value} belongs to forbidden range {span} (private IP addresses)")
    for reserved, span in _RESERVED_RANGES:
        if network.overlaps(reserved):
            raise _fail(service, field, f"{value} belongs to forbidden range {span} (reserved IP addresses)")
    if service == "storage":
        # "Small address ranges that use /31 or /32 prefix sizes aren't supported" (storage docs).
        if "/" in value and network.prefixlen > 30:
            raise _fail(service, field, f"{value}: /31 and /32 ranges are not supported")
        if rule.get("action") is not None:
            _enum(rule["action"], ("Allow",), service, f"ipRules[{index}].action")
        return {"value": value, "action": "Allow"}
    # Key Vault echoes a single address as a /32 (Azure/azure-cli#21330: "123.0.0.1" -> "123.0.0.1/32").
    return {"value": str(network)}


def _subnet_rule(rule: Any, index: int, service: Service) -> dict[str, Any]:
    if not isinstance(rule, Mapping):
        raise _fail(service, f"virtualNetworkRules[{index}]", "an object is expected")
    subnet = rule.get("id")
    if not isinstance(subnet, str) or len(subnet) > _MAX_ID_TEXT or SUBNET_ID.fullmatch(subnet) is None:
        raise _fail(service, f"virtualNetworkRules[{index}].id", f"'{_shown(subnet)}' is not a subnet id")
    if service == "keyvault":
        ignore = rule.get("ignoreMissingVnetServiceEndpoint", False)
        if not isinstance(ignore, bool):
            raise _fail(
                service,
                f"virtualNetworkRules[{index}].ignoreMissingVnetServiceEndpoint",
                "a boolean is expected",
            )
        # Key Vault stores subnet ids lower-cased (Azure/azure-cli#10286, #18391).
        return {"id": subnet.lower(), "ignoreMissingVnetServiceEndpoint": ignore}
    if rule.get("action") is not None:
        _enum(rule["action"], ("Allow",), service, f"virtualNetworkRules[{index}].action")
    # Storage keeps the id as given and reports the rule's state (spec VirtualNetworkRule.state).
    return {"id": subnet, "action": "Allow", "state": "Succeeded"}


def _resource_rule(rule: Any, index: int) -> dict[str, Any]:
    field = f"resourceAccessRules[{index}]"
    if not isinstance(rule, Mapping):
        raise _fail("storage", field, "an object is expected")
    tenant, resource = rule.get("tenantId"), rule.get("resourceId")
    if not isinstance(tenant, str) or re.fullmatch(_GUID, tenant) is None:
        raise _fail("storage", f"{field}.tenantId", "a tenant id is expected")
    if (
        not isinstance(resource, str)
        or len(resource) > _MAX_ID_TEXT
        or _RESOURCE_RULE_ID.fullmatch(resource) is None
    ):
        raise _fail("storage", f"{field}.resourceId", "a resource id is expected")
    return {"tenantId": tenant, "resourceId": resource}


def validate_network_acls(value: Any, service: Service) -> dict[str, Any] | None:
    """The ``networkAcls`` of a PUT/PATCH body, checked and normalised as the service stores it.

    ``value`` is what the body holds (already merge-patched for PATCH). None in, None out.
    Returns Key Vault's shape ``{bypass, defaultAction, ipRules: [{value: "a.b.c.d/n"}],
    virtualNetworkRules: [{id (lower-cased), ignoreMissingVnetServiceEndpoint}]}`` or Storage's
    ``{bypass: "Logging, Metrics, AzureServices", defaultAction, ipRules: [{value, action}],
    virtualNetworkRules: [{id, action, state}], resourceAccessRules: [{tenantId, resourceId}]}``.

    Raises ``ArmError`` 400 (codes in ``_fail``) for a wrong type, an unknown enum value, an
    invalid or private IP rule, a malformed subnet or resource id, or more rules than Azure allows
    (Key Vault 1000 IP / 200 subnet; Storage 400 / 400 / 200 resource instance rules).
    ``bypass`` and ``defaultAction`` default to ``AzureServices`` and ``Allow``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(service, "", "an object is expected")
    default_action = _enum(value.get("defaultAction") or "Allow", ("Allow", "Deny"), service, "defaultAction")
    bypass = _normalise_bypass(value.get("bypass"), service)
    ip_rules = [_ip_rule(rule, i, service) for i, rule in enumerate(_list(value, "ipRules", service))]
    subnets = [
        _subnet_rule(rule, i, service) for i, rule in enumerate(_list(value, "virtualNetworkRules", service))
    ]
    out: dict[str, Any] = {
        "bypass": bypass,
        "defaultAction": default_action,
        "ipRules": ip_rules,
        "virtualNetworkRules": subnets,
    }
    if service == "storage":
        out["resourceAccessRules"] = [
            _resource_rule(rule, i) for i, rule in enumerate(_list(value, "resourceAccessRules", service))
        ]
    elif value.get("resourceAccessRules"):
        raise _fail(service, "resourceAccessRules", "not supported by Key Vault")
    return out


def _normalise_bypass(value: Any, service: Service) -> str:
    """Key Vault: ``AzureServices`` or ``None``. Storage: ``None`` or a comma list of ``Logging``,
    ``Metrics``, ``AzureServices`` (spec ``Bypass``: "any combination of Logging|Metrics|
    AzureServices (For example, "Logging, Metrics"), or None"), echoed in that order."""
    if value is None:
        return "AzureServices"
    if not isinstance(value, str) or len(value) > _MAX_ENUM_TEXT:
        raise _fail(service, "bypass", f"'{_shown(value)}' is not a valid bypass")
    if service == "keyvault":
        return _enum(value, ("AzureServices", "None"), service, "bypass")
    order = ("Logging", "Metrics", "AzureServices")
    chosen: set[str] = set()
    none = False
    for part in (t.strip().lower() for t in value.split(",")):
        if part == "none":
            none = True
            continue
        match = next((name for name in order if name.lower() == part), None)
        if match is None:
            raise _fail(service, "bypass", f"'{_shown(value)}' is not a valid bypass")
        chosen.add(match)
    if none and chosen:
        raise _fail(service, "bypass", "None cannot be combined with other values")
    return ", ".join(name for name in order if name in chosen) or "None"


def validate_public_network_access(value: Any, service: Service) -> str | None:
    """``publicNetworkAccess`` of a body: None stays None; Key Vault takes Enabled/Disabled, Storage
    also SecuredByPerimeter (specs); case-insensitive, stored in the canonical spelling."""
    if value is None:
        return None
    allowed = (
        ("Enabled", "Disabled") if service == "keyvault" else ("Enabled", "Disabled", "SecuredByPerimeter")
    )
    if isinstance(value, str) and len(value) <= _MAX_ENUM_TEXT:
        for choice in allowed:
            if value.lower() == choice.lower():
                return choice
    if service == "keyvault":
        raise errors.bad_request(
            f"Invalid value found at properties.publicNetworkAccess: '{_shown(value)}' is not one of "
            + ", ".join(allowed)
        )
    raise ArmError(
        400,
        "InvalidValuesForRequestParameters",
        "Values for request parameters are invalid: publicNetworkAccess. "
        "For more information, see - https://aka.ms/storagenetworkruleset",
    )


# --- a workload's network settings (VMs and sites) -----------------------------------------------


def validate_keyless_network(value: Any, code: str) -> dict[str, str] | None:
    """``properties.keylessNetwork`` of a VM or site: ``{"publicIpAddress": "<IP literal>",
    "subnetId": "<Microsoft.Network subnet id>"}``, both optional; nothing else is accepted.

    A Keyless extension: Azure gives a VM its address through NIC and publicIPAddresses resources
    and its subnet through a NIC ipConfiguration, which Keyless does not emulate. Returns the dict to
    store (addresses in canonical form, IPv4-mapped IPv6 as IPv4; the id as given), None for
    None/empty. Raises ``ArmError`` 400 with ``code`` (``InvalidParameter`` for Compute, as its RP
    answers bad property values; ``BadRequest`` for App Service) and a ``target``."""
    if value is None:
        return None
    target = "properties.keylessNetwork"
    if not isinstance(value, Mapping):
        raise errors.bad_request(
            "keylessNetwork must be an object {publicIpAddress, subnetId}.", code=code, target=target
        )
    unknown = sorted(str(k)[:40] for k in value if k not in ("publicIpAddress", "subnetId"))
    if unknown:
        raise errors.bad_request(
            f"keylessNetwork does not have the property '{unknown[0]}'; it has publicIpAddress and subnetId.",
            code=code,
            target=f"{target}.{unknown[0]}",
        )
    out: dict[str, str] = {}
    raw_ip = value.get("publicIpAddress")
    if raw_ip is not None:
        address = parse_address(raw_ip) if isinstance(raw_ip, str) else None
        if address is None:
            raise errors.bad_request(
                f"The public IP address '{_shown(raw_ip)}' is not a valid IPv4 or IPv6 address.",
                code=code,
                target=f"{target}.publicIpAddress",
            )
        out["publicIpAddress"] = str(address)
    subnet = value.get("subnetId")
    if subnet is not None:
        out["subnetId"] = check_subnet_id(subnet, code, f"{target}.subnetId")
    return out or None


def check_subnet_id(value: Any, code: str, target: str) -> str:
    """``value`` when it is a well-formed subnet id (``SUBNET_ID``), else ``ArmError`` 400."""
    if not isinstance(value, str) or len(value) > _MAX_ID_TEXT or SUBNET_ID.fullmatch(value) is None:
        raise errors.bad_request(
            f"The subnet id '{_shown(value)}' is not valid: expected /subscriptions/{{id}}/resourceGroups/"
            "{group}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}.",
            code=code,
            target=target,
        )
    return value
