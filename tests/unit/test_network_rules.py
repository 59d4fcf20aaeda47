"""The one network-rules evaluator (keyless.network): every rule both ways, the ARM-side validation
of networkAcls (status, code, message), and the origin of requests that need no workload."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from keyless.arm.errors import ArmError
from keyless.edge.routing import PROXY_AUTHORIZATION, VIA_PROXY
from keyless.network import (
    LOCAL_HOST,
    TRUSTED_SERVICE_STATE,
    NetworkOrigin,
    NetworkRules,
    OriginResolver,
    allows,
    validate_keyless_network,
    validate_network_acls,
    validate_public_network_access,
)

SUB = "00000000-0000-0000-0000-00000000000a"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
MEDIA = f"/subscriptions/{SUB}/resourceGroups/media/providers/Microsoft.Media/mediaservices/ams1"
TENANT = "11111111-1111-1111-1111-111111111111"


def rules(acls: dict[str, Any] | None, pna: str | None = None) -> NetworkRules:
    props: dict[str, Any] = {"networkAcls": acls}
    if pna is not None:
        props["publicNetworkAccess"] = pna
    return NetworkRules.from_properties(props)


DENY = {"defaultAction": "Deny", "bypass": "None"}
FROM_IP = NetworkOrigin(address=IPv4Address("20.1.2.3"))
FROM_SUBNET = NetworkOrigin(subnet_id=SUBNET.lower())
TRUSTED = NetworkOrigin(trusted_service=MEDIA)


# --- allows -------------------------------------------------------------------------------------


def test_no_acls_and_allow_let_everyone_in() -> None:
    for r in (rules(None), rules({"defaultAction": "Allow"})):
        assert allows(r, FROM_IP) and allows(r, LOCAL_HOST) and allows(r, NetworkOrigin())


def test_deny_keeps_everyone_out() -> None:
    r = rules(DENY)
    for origin in (FROM_IP, FROM_SUBNET, LOCAL_HOST, TRUSTED, NetworkOrigin()):
        assert not allows(r, origin)


def test_ip_rules_match_the_address_only() -> None:
    r = rules({**DENY, "ipRules": [{"value": "20.1.2.0/24"}, {"value": "52.0.0.1/32"}]})
    assert allows(r, FROM_IP)
    assert allows(r, NetworkOrigin(address=IPv4Address("52.0.0.1")))
    assert not allows(r, NetworkOrigin(address=IPv4Address("20.1.3.3")))
    assert not allows(r, NetworkOrigin(address=IPv4Address("52.0.0.2")))
    # A workload with no public IP never matches an IP rule.
    assert not allows(r, NetworkOrigin(subnet_id=SUBNET.lower()))


def test_ipv4_mapped_ipv6_is_normalised() -> None:
    r = rules({**DENY, "ipRules": [{"value": "20.1.2.0/24"}]})
    assert allows(r, NetworkOrigin(address=IPv6Address("::ffff:20.1.2.9")))
    assert not allows(r, NetworkOrigin(address=IPv6Address("::ffff:20.1.3.9")))
    assert not allows(r, NetworkOrigin(address=IPv6Address("2001:db8::1")))


def test_virtual_network_rules_compare_ids_without_case() -> None:
    r = rules({**DENY, "virtualNetworkRules": [{"id": SUBNET.upper()}]})
    assert allows(r, FROM_SUBNET)
    assert allows(r, NetworkOrigin(subnet_id=SUBNET))
    assert not allows(r, NetworkOrigin(subnet_id=SUBNET.lower() + "2"))
    assert not allows(r, FROM_IP)


def test_bypass_azure_services_lets_trusted_services_only() -> None:
    r = rules({"defaultAction": "Deny", "bypass": "AzureServices"})
    assert allows(r, TRUSTED)
    assert not allows(r, FROM_IP) and not allows(r, LOCAL_HOST)
    # Absent bypass is AzureServices (both services' default).
    assert allows(rules({"defaultAction": "Deny"}), TRUSTED)
    # Storage's comma list.
    assert allows(rules({"defaultAction": "Deny", "bypass": "Logging, AzureServices"}), TRUSTED)
    assert not allows(rules({"defaultAction": "Deny", "bypass": "Logging, Metrics"}), TRUSTED)


def test_public_network_access_disabled_overrides_rules() -> None:
    acls = {"defaultAction": "Allow", "bypass": "None", "ipRules": [{"value": "20.1.2.0/24"}]}
    for pna in ("Disabled", "disabled", "SecuredByPerimeter"):
        r = rules(acls, pna)
        assert r.public_network_access == "Disabled"
        assert not allows(r, FROM_IP) and not allows(r, LOCAL_HOST) and not allows(r, TRUSTED)
    # Trusted services still pass with the AzureServices exception.
    assert allows(rules({**acls, "bypass": "AzureServices"}, "Disabled"), TRUSTED)
    assert allows(rules(acls, "enabled"), FROM_IP)
    # No networkAcls at all, public access disabled: trusted services only (default bypass).
    assert allows(rules(None, "Disabled"), TRUSTED) and not allows(rules(None, "Disabled"), FROM_IP)


@pytest.mark.parametrize(
    ("pattern", "tenant", "let_in"),
    [
        (MEDIA, None, True),
        (MEDIA.upper(), TENANT, True),
        (MEDIA.replace("ams1", "ams2"), TENANT, False),
        (MEDIA.replace("ams1", "*"), TENANT, True),
        (f"/subscriptions/{SUB}/resourcegroups/*/providers/Microsoft.Media/mediaservices/*", TENANT, True),
        ("/subscriptions/*/resourcegroups/*/providers/Microsoft.Media/mediaservices/*", TENANT, True),
        # "All in the tenant" needs the tenant to be known.
        ("/subscriptions/*/resourcegroups/*/providers/Microsoft.Media/mediaservices/*", None, False),
        ("/subscriptions/*/resourcegroups/*/providers/Microsoft.Synapse/workspaces/*", TENANT, False),
        (MEDIA + "/extra/x", TENANT, False),
    ],
)
def test_resource_instance_rules(pattern: str, tenant: str | None, let_in: bool) -> None:
    r = rules({**DENY, "resourceAccessRules": [{"tenantId": TENANT, "resourceId": pattern}]})
    assert allows(r, TRUSTED, tenant_id=tenant) is let_in
    # They name trusted instances only: a workload with that resource id as origin is not one.
    assert not allows(r, NetworkOrigin(workload_id=MEDIA), tenant_id=tenant)


def test_resource_instance_rule_of_another_tenant_does_not_match() -> None:
    other = "22222222-2222-2222-2222-222222222222"
    r = rules({**DENY, "resourceAccessRules": [{"tenantId": other, "resourceId": MEDIA}]})
    assert not allows(r, TRUSTED, tenant_id=TENANT)
    # And they hold when public access is disabled (storage docs: they "remain in effect").
    r = rules({**DENY, "resourceAccessRules": [{"tenantId": TENANT, "resourceId": MEDIA}]}, "Disabled")
    assert allows(r, TRUSTED, tenant_id=TENANT)


def test_client_address() -> None:
    assert LOCAL_HOST.client_address() == "127.0.0.1"
    assert FROM_IP.client_address() == "20.1.2.3"
    assert NetworkOrigin().client_address() == "unknown"


# --- validation ---------------------------------------------------------------------------------


def test_key_vault_normalises_as_it_echoes() -> None:
    out = validate_network_acls(
        {
            "defaultAction": "deny",
            "ipRules": [{"value": "20.1.2.3"}, {"value": "20.1.0.0/16"}],
            "virtualNetworkRules": [{"id": SUBNET}],
        },
        "keyvault",
    )
    assert out == {
        "bypass": "AzureServices",
        "defaultAction": "Deny",
        "ipRules": [{"value": "20.1.2.3/32"}, {"value": "20.1.0.0/16"}],
        "virtualNetworkRules": [{"id": SUBNET.lower(), "ignoreMissingVnetServiceEndpoint": False}],
    }
    assert validate_network_acls(None, "keyvault") is None


def test_storage_normalises_as_it_echoes() -> None:
    out = validate_network_acls(
        {
            "defaultAction": "Deny",
            "bypass": "metrics,logging , AzureServices",
            "ipRules": [{"value": "20.1.2.3", "action": "Allow"}, {"value": "20.1.0.0/16"}],
            "virtualNetworkRules": [{"id": SUBNET}],
            "resourceAccessRules": [{"tenantId": TENANT, "resourceId": MEDIA}],
        },
        "storage",
    )
    assert out == {
        "bypass": "Logging, Metrics, AzureServices",
        "defaultAction": "Deny",
        "ipRules": [{"value": "20.1.2.3", "action": "Allow"}, {"value": "20.1.0.0/16", "action": "Allow"}],
        "virtualNetworkRules": [{"id": SUBNET, "action": "Allow", "state": "Succeeded"}],
        "resourceAccessRules": [{"tenantId": TENANT, "resourceId": MEDIA}],
    }
    assert validate_network_acls({"bypass": "None"}, "storage")["bypass"] == "None"  # type: ignore[index]


def _kv_error(acls: Any) -> ArmError:
    with pytest.raises(ArmError) as caught:
        validate_network_acls(acls, "keyvault")
    assert caught.value.status == 400
    assert caught.value.code == "BadRequest"
    return caught.value


def _storage_error(acls: Any) -> ArmError:
    with pytest.raises(ArmError) as caught:
        validate_network_acls(acls, "storage")
    assert caught.value.status == 400
    assert caught.value.code == "InvalidValuesForRequestParameters"
    assert caught.value.message.endswith("For more information, see - https://aka.ms/storagenetworkruleset")
    return caught.value


def test_key_vault_private_range_message() -> None:
    error = _kv_error({"ipRules": [{"value": "10.0.0.0/8"}]})
    assert error.message == (
        "Invalid value found at properties.networkAcls.ipRules[0].value: 10.0.0.0/8 belongs to forbidden "
        "range 10.0.0.0\u201310.255.255.255 (private IP addresses)"
    )


@pytest.mark.parametrize(
    "acls",
    [
        "Deny",
        {"defaultAction": "Block"},
        {"defaultAction": 1},
        {"bypass": "Logging"},  # Storage's, not Key Vault's
        {"bypass": ["AzureServices"]},
        {"ipRules": "20.1.2.3"},
        {"ipRules": ["20.1.2.3"]},
        {"ipRules": [{"value": "20.1.2.300"}]},
        {"ipRules": [{"value": "20.1.2.3/24"}]},  # host bits set
        {"ipRules": [{"value": "2001:db8::/32"}]},
        {"ipRules": [{"value": "192.168.1.1"}]},
        {"ipRules": [{"value": "172.20.0.0/16"}]},
        {"ipRules": [{"value": "0.0.0.0/0"}]},  # overlaps the private ranges
        {"ipRules": [{"value": "x" * 5000}]},
        {"ipRules": [{"value": f"20.{i // 256 % 256}.{i % 256}.1"} for i in range(1001)]},
        {
            "virtualNetworkRules": [
                {"id": "/subscriptions/x/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"}
            ]
        },
        {"virtualNetworkRules": [{"id": SUBNET, "ignoreMissingVnetServiceEndpoint": "yes"}]},
        {"virtualNetworkRules": [{"id": SUBNET}] * 201},
        {"resourceAccessRules": [{"tenantId": TENANT, "resourceId": MEDIA}]},
    ],
)
def test_key_vault_rejects(acls: Any) -> None:
    _kv_error(acls)


@pytest.mark.parametrize(
    ("acls", "field"),
    [
        ({"defaultAction": "Block"}, "defaultAction"),
        ({"bypass": "None, Logging"}, "bypass"),
        ({"bypass": "Everything"}, "bypass"),
        ({"ipRules": [{"value": "20.1.2.3/32"}]}, "ipRules[*].value"),
        ({"ipRules": [{"value": "20.1.2.2/31"}]}, "ipRules[*].value"),
        ({"ipRules": [{"value": "10.1.2.3"}]}, "ipRules[*].value"),
        ({"ipRules": [{"value": "20.1.2.3", "action": "Deny"}]}, "ipRules[*].action"),
        ({"ipRules": [{"value": "20.1.2.3"}] * 401}, "ipRules"),
        ({"virtualNetworkRules": [{"id": "not-an-id"}]}, "virtualNetworkRules[*].id"),
        ({"virtualNetworkRules": [{"id": SUBNET}] * 401}, "virtualNetworkRules"),
        (
            {"resourceAccessRules": [{"tenantId": "t", "resourceId": MEDIA}]},
            "resourceAccessRules[*].tenantId",
        ),
        (
            {"resourceAccessRules": [{"tenantId": TENANT, "resourceId": "/subscriptions/*/providers/x"}]},
            "resourceAccessRules[*].resourceId",
        ),
        (
            {"resourceAccessRules": [{"tenantId": TENANT, "resourceId": MEDIA}] * 201},
            "resourceAccessRules",
        ),
    ],
)
def test_storage_rejects(acls: dict[str, Any], field: str) -> None:
    error = _storage_error(acls)
    assert error.message.startswith(f"Values for request parameters are invalid: networkAcls.{field}.")


def test_public_network_access_values() -> None:
    assert validate_public_network_access("disabled", "keyvault") == "Disabled"
    assert validate_public_network_access(None, "keyvault") is None
    assert validate_public_network_access("securedbyperimeter", "storage") == "SecuredByPerimeter"
    with pytest.raises(ArmError) as caught:
        validate_public_network_access("SecuredByPerimeter", "keyvault")
    assert (caught.value.status, caught.value.code) == (400, "BadRequest")
    with pytest.raises(ArmError) as caught:
        validate_public_network_access(True, "storage")
    assert caught.value.code == "InvalidValuesForRequestParameters"


def test_keyless_network_validation() -> None:
    assert validate_keyless_network({"publicIpAddress": "::ffff:20.1.2.3", "subnetId": SUBNET}, "X") == {
        "publicIpAddress": "20.1.2.3",
        "subnetId": SUBNET,
    }
    assert validate_keyless_network({}, "X") is None
    for bad, target in (
        ({"publicIpAddress": "20.1.2"}, "properties.keylessNetwork.publicIpAddress"),
        ({"publicIpAddress": 7}, "properties.keylessNetwork.publicIpAddress"),
        ({"subnetId": SUBNET + "/x"}, "properties.keylessNetwork.subnetId"),
        ({"subnet": SUBNET}, "properties.keylessNetwork.subnet"),
        ("20.1.2.3", "properties.keylessNetwork"),
    ):
        with pytest.raises(ArmError) as caught:
            validate_keyless_network(bad, "InvalidParameter")
        assert (caught.value.status, caught.value.code, caught.value.target) == (
            400,
            "InvalidParameter",
            target,
        )


# --- origins that need no workload ----------------------------------------------------------------


class _NoWorkloads:
    """Stands in for the workload lookup where no test here may reach it."""

    def workload_for_host_token(self, token: str | None) -> None:
        raise AssertionError("no workload lookup expected")


def _origin(scope: dict[str, Any]) -> NetworkOrigin:
    scope.setdefault("type", "http")
    scope.setdefault("headers", [])
    return OriginResolver(_NoWorkloads()).origin(scope)  # type: ignore[arg-type]


def test_direct_connections_use_the_tcp_peer_only() -> None:
    forged = [(b"x-forwarded-for", b"20.1.2.3"), (b"proxy-authorization", b"Basic d29ya2xvYWQ6eA==")]
    assert _origin({"client": ("127.0.0.1", 5000), "headers": forged}) == LOCAL_HOST
    assert _origin({"client": ("::1", 5000)}) == LOCAL_HOST
    assert _origin({"client": ("::ffff:127.0.0.1", 5000)}) == LOCAL_HOST
    assert _origin({"client": ("20.9.9.9", 5000), "headers": forged}) == NetworkOrigin(
        address=IPv4Address("20.9.9.9")
    )
    assert _origin({"client": None}) == NetworkOrigin()
    # A header naming the trusted-service mark is just a header.
    assert _origin(
        {"client": ("127.0.0.1", 1), "headers": [(TRUSTED_SERVICE_STATE.encode(), MEDIA.encode())]}
    ) == (LOCAL_HOST)


def test_trusted_service_mark_comes_from_state_only() -> None:
    assert _origin({"state": {TRUSTED_SERVICE_STATE: MEDIA}, "client": ("127.0.0.1", 1)}) == TRUSTED
    assert _origin({"state": {TRUSTED_SERVICE_STATE: ""}, "client": ("127.0.0.1", 1)}) == LOCAL_HOST


def test_proxy_without_a_workload_password_is_the_local_host() -> None:
    assert _origin({"state": {VIA_PROXY: True, PROXY_AUTHORIZATION: None}}) == LOCAL_HOST
    assert _origin({"state": {VIA_PROXY: True, PROXY_AUTHORIZATION: "Bearer x"}}) == LOCAL_HOST
    assert _origin({"state": {VIA_PROXY: True, PROXY_AUTHORIZATION: "Basic !!!"}}) == LOCAL_HOST
