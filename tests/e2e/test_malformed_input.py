"""Input no store can hold, and bodies of the wrong shape: the real service's 4xx, never a 500,
and nothing written (issue 7, breaks 6 and 7). Run on SQLite and PostgreSQL alike: PostgreSQL
refuses a NUL in any text value and a value longer than its column, SQLite takes both."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.arm_helpers import (
    MSI_API,
    RG_API,
    UAMI,
    assert_arm_error,
    create_group,
    create_identity,
    rg_path,
    uami_path,
)
from tests.e2e.rbac_helpers import AUTH_API, READER, all_assignments, create_sp, custom_roles, role_id
from tests.e2e.workload_helpers import (
    LOGIN,
    SITE_TYPE,
    VM_API,
    VM_TYPE,
    WEB_API,
    app_service_url,
    assert_imds_error,
    imds_get,
)
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]
MALFORMED = "AADSTS9002313: Invalid request. Request is malformed or invalid."


def _vm_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"{rg_path(srv, group)}/providers/{VM_TYPE}/{name}"


def _absent(arm: httpx.Client, path: str, api_version: str) -> None:
    r = arm.get(path, params={"api-version": api_version})
    assert r.status_code == 404, r.text


def _deep_properties(levels: int) -> bytes:
    """A body whose ``properties`` nest ``levels`` objects deep (by hand: encoders stop at 254)."""
    return b'{"location":"westeurope","properties":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


def _workload(srv: KeylessServer, arm: httpx.Client, group: str, name: str, **body: Any) -> dict[str, Any]:
    r = arm.put(
        _vm_path(srv, group, name), params={"api-version": VM_API}, json={"location": "westeurope", **body}
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


# --- break 6: NUL and over-long values ------------------------------------------------------------


@pytest.mark.parametrize("field", ["client_id", "client_secret", "scope", "grant_type", "client_id+dup"])
def test_nul_in_a_token_request_is_malformed(server: KeylessServer, field: str) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": server.admin["clientId"],
        "client_secret": server.admin["clientSecret"],
        "scope": "https://management.azure.com/.default",
    }
    name = field.removesuffix("+dup")
    form[name] = form[name] + "\x00" if field.endswith("+dup") else "\x00"
    with server.client() as http:  # unauthenticated: no token needed to reach the directory
        r = http.post(f"{LOGIN}/{server.tenant_id}/oauth2/v2.0/token", data=form)
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error"] == "invalid_request"
        assert body["error_codes"] == [9002313]
        assert body["error_description"].startswith(MALFORMED)
        assert "access_token" not in body
        # A NUL anywhere in the authority's URL, too.
        r = http.get(f"{LOGIN}/{server.tenant_id}%00/v2.0/.well-known/openid-configuration")
        assert r.status_code == 400, r.text
        assert r.json()["error_codes"] == [9002313]


def test_nul_in_a_resource_manager_url(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        before = arm.get(rg_path(server, group), params={"api-version": RG_API}).json()
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            r = arm.request(method, rg_path(server, group) + "%00", params={"api-version": RG_API}, json={})
            message = assert_arm_error(r, 400, "BadRequest")
            assert "NUL" in message
        r = arm.delete(uami_path(server, group, "id%00x"), params={"api-version": MSI_API})
        assert_arm_error(r, 400, "BadRequest")
        # In the query: any parameter, named or not.
        for params in ({"api-version": RG_API + "\x00"}, {"api-version": RG_API, "\x00": "x"}):
            assert_arm_error(arm.get(rg_path(server, group), params=params), 400, "BadRequest")
        assert arm.get(rg_path(server, group), params={"api-version": RG_API}).json() == before


@pytest.mark.parametrize("token", ["AA==", "%00", "QUFB" * 600, "!!!", "gA=="])
def test_a_skip_token_that_was_never_issued(server: KeylessServer, token: str) -> None:
    with server.arm() as arm:
        url = (
            f"/subscriptions/{server.subscription_id}/resourcegroups?api-version={RG_API}&$skiptoken={token}"
        )
        message = assert_arm_error(arm.get(url), 400, "InvalidSkipToken" if token != "%00" else "BadRequest")
        assert len(message) < 300


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"description": "a\x00b"}, "InvalidRequestContent"),
        ({"description": 5}, "InvalidRequestContent"),
        ({"description": "d" * 2049}, "BadRequest"),
        ({"delegatedManagedIdentityResourceId": "/subscriptions/" + "x" * 2000}, "BadRequest"),
        ({"condition": "@Resource[x] StringEquals 'y'", "conditionVersion": "2." + "0" * 20}, "BadRequest"),
    ],
)
def test_role_assignment_text_no_store_can_hold(
    server: KeylessServer, unique: Unique, properties: dict[str, Any], code: str
) -> None:
    group = unique("rg-")
    sp = create_sp(server, unique("sp-"))
    with server.arm() as arm:
        create_group(arm, server, group)
        before = all_assignments(server)
        body = {"roleDefinitionId": role_id(server, READER), "principalId": sp["objectId"], **properties}
        path = f"{rg_path(server, group)}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
        r = arm.put(path, params={"api-version": AUTH_API}, json={"properties": body})
        assert_arm_error(r, 400, code)
        assert all_assignments(server) == before


def test_nul_in_any_body_string(server: KeylessServer, unique: Unique) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        create_group(arm, server, group)
        for body in (
            {"location": "westeurope", "tags": {"k": "v\x00"}},
            {"location": "westeurope", "tags": {"k\x00": "v"}},
            {"location": "west\x00europe"},
            {"location": "westeurope", "properties": {"deep": [{"x": "\x00"}]}},
        ):
            r = arm.put(uami_path(server, group, name), params={"api-version": MSI_API}, json=body)
            message = assert_arm_error(r, 400, "InvalidRequestContent")
            assert "NUL" in message
            _absent(arm, uami_path(server, group, name), MSI_API)
        r = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": "2024-01-01"},
            json={"displayName": "sp\x00"},
        )
        assert_arm_error(r, 400, "InvalidRequestContent")


def test_nul_at_the_identity_endpoints(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        vm = _workload(server, arm, group, "vm1", identity={"type": "SystemAssigned"})
        token = arm.post(f"{vm['id']}/listHostToken", params={"api-version": VM_API}).json()["hostToken"]
    for selector in ("client_id", "object_id", "msi_res_id", "resource"):
        r = imds_get(server, token, query={selector: "x\x00"})
        assert_imds_error(r, "invalid_request", "The request URL contains a NUL character.")
    assert imds_get(server, token).status_code == 200
    r = httpx.get(
        app_service_url(server),
        params={"api-version": "2019-08-01", "resource": "https://vault.azure.net", "client_id": "\x00"},
        headers={"X-IDENTITY-HEADER": token},
        trust_env=False,
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "The request URL contains a NUL character."


def test_an_over_long_user_assigned_identity_id(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        long_id = f"{rg_path(server, group)}/providers/{UAMI}/" + "u" * 3000
        identity = {"type": "UserAssigned", "userAssignedIdentities": {long_id: {}}}
        r = arm.put(
            _vm_path(server, group, "vm1"),
            params={"api-version": VM_API},
            json={"location": "westeurope", "identity": identity},
        )
        message = assert_arm_error(r, 400, "InvalidUserAssignedIdentity")
        assert len(message) < 1500
        _absent(arm, _vm_path(server, group, "vm1"), VM_API)


# --- break 7: malformed JSON, wrong types, deep nesting ----------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"{", b"[", b"nul", b'{"a":}', b"[]", b"null", b'"x"', b'{"a":"\\u0000"}', _deep_properties(100)],
)
def test_malformed_json_to_actions(server: KeylessServer, unique: Unique, content: bytes) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        vm = _workload(server, arm, group, "vm1")
        site_path = f"{rg_path(server, group)}/providers/{SITE_TYPE}/site1"
        r = arm.put(
            site_path, params={"api-version": WEB_API}, json={"location": "westeurope", "kind": "functionapp"}
        )
        assert r.status_code == 200, r.text
        for workload, api in ((vm["id"], VM_API), (site_path, WEB_API)):
            token = arm.post(f"{workload}/listHostToken", params={"api-version": api}).json()["hostToken"]
            for action in ("listHostToken", "regenerateHostToken"):
                r = arm.post(
                    f"{workload}/{action}",
                    params={"api-version": api},
                    content=content,
                    headers={"Content-Type": "application/json"},
                )
                message = assert_arm_error(r, 400, "InvalidRequestContent")
                assert message.startswith("The request content was invalid and could not be deserialized: '")
            again = arm.post(f"{workload}/listHostToken", params={"api-version": api}).json()["hostToken"]
            assert again == token  # not regenerated


@pytest.mark.parametrize("value", [1.5, True, [1], "x", {"id": 5}])
def test_user_assigned_identities_of_the_wrong_type(
    server: KeylessServer, unique: Unique, value: Any
) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        create_identity(arm, server, group, "uami1")
        identity = {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": value}
        r = arm.put(
            _vm_path(server, group, "new"),
            params={"api-version": VM_API},
            json={"location": "westeurope", "identity": identity},
        )
        message = assert_arm_error(r, 400, "InvalidRequestContent")
        assert "identity.userAssignedIdentities" in message
        _absent(arm, _vm_path(server, group, "new"), VM_API)
        existing = _workload(server, arm, group, "vm1", identity={"type": "SystemAssigned"})
        r = arm.patch(existing["id"], params={"api-version": VM_API}, json={"identity": identity})
        assert_arm_error(r, 400, "InvalidRequestContent")
        assert arm.get(existing["id"], params={"api-version": VM_API}).json() == existing


@pytest.mark.parametrize("levels", [64, 65, 254, 1100])
def test_properties_nested_too_deep(server: KeylessServer, unique: Unique, levels: int) -> None:
    group = unique("rg-")
    headers = {"Content-Type": "application/json"}
    with server.arm() as arm:
        create_group(arm, server, group)
        existing = _workload(server, arm, group, "vm1", properties={"kept": True})
        r = arm.put(
            _vm_path(server, group, "new"),
            params={"api-version": VM_API},
            content=_deep_properties(levels),
            headers=headers,
        )
        message = assert_arm_error(r, 400, "InvalidRequestContent")
        assert "depth" in message.lower()
        _absent(arm, _vm_path(server, group, "new"), VM_API)
        r = arm.patch(
            existing["id"], params={"api-version": VM_API}, content=_deep_properties(levels), headers=headers
        )
        assert_arm_error(r, 400, "InvalidRequestContent")
        assert arm.get(existing["id"], params={"api-version": VM_API}).json() == existing


def test_nesting_within_the_limit_is_kept(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        # The document and 63 levels of "properties": 64 nested objects, Json.NET's MaxDepth.
        r = arm.put(
            _vm_path(server, group, "vm1"),
            params={"api-version": VM_API},
            content=_deep_properties(63),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 201, r.text
        node = r.json()["properties"]
        for _ in range(62):
            node = node["a"]
        assert node == {"a": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"location": "westeurope", "sku": "Standard"},
        {"location": "westeurope", "kind": 5},
        {"location": "westeurope", "identity": "SystemAssigned"},
        {"location": "westeurope", "identity": {"type": 5}},
        {"location": "westeurope", "identity": {"type": "UserAssigned", "userAssignedIdentities": {"x": 5}}},
        {"location": "westeurope", "tags": {"k": None}},
    ],
)
def test_envelope_fields_of_the_wrong_type(
    server: KeylessServer, unique: Unique, body: dict[str, Any]
) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.put(_vm_path(server, group, "vm1"), params={"api-version": VM_API}, json=body)
        assert_arm_error(r, 400, "InvalidRequestContent")
        _absent(arm, _vm_path(server, group, "vm1"), VM_API)


def test_a_custom_role_description_of_the_wrong_type(server: KeylessServer, unique: Unique) -> None:
    before = custom_roles(server)
    with server.arm() as arm:
        properties = {
            "roleName": unique("role-"),
            "description": {},
            "permissions": [{"actions": ["*/read"]}],
            "assignableScopes": [f"/subscriptions/{server.subscription_id}"],
        }
        r = arm.put(
            f"/subscriptions/{server.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
            "0a1b2c3d-0000-4000-8000-00000000beef",
            params={"api-version": AUTH_API},
            json={"properties": properties},
        )
        assert_arm_error(r, 400, "InvalidRequestContent")
    assert custom_roles(server) == before


def test_malformed_json_to_every_json_reader(server: KeylessServer) -> None:
    """Explain and the directory read JSON bodies too: the one parser answers them the same way."""
    headers = {"Content-Type": "application/json"}
    with server.arm() as arm:
        for path, api in (
            (f"/subscriptions/{server.subscription_id}/providers/Microsoft.Authorization/explain", AUTH_API),
            ("/providers/Keyless.Directory/servicePrincipals", "2024-01-01"),
            ("/providers/Keyless.Directory/groups", "2024-01-01"),
        ):
            for content in (b"{", _deep_properties(80), b'{"action":"\\u0000"}'):
                r = arm.post(path, params={"api-version": api}, content=content, headers=headers)
                assert_arm_error(r, 400, "InvalidRequestContent")
