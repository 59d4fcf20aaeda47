"""Bad requests to the resource manager: ARM's status and error code, and nothing changed."""

from __future__ import annotations

from collections.abc import Callable

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
from tests.keyless_server import KeylessServer


def _absent(arm: httpx.Client, path: str, api_version: str) -> None:
    r = arm.get(path, params={"api-version": api_version})
    assert r.status_code == 404, r.text


# --- api-version ------------------------------------------------------------------------------


def test_missing_api_version(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        r = arm.put(rg_path(server, group), json={"location": "westeurope"})
        message = assert_arm_error(r, 400, "MissingApiVersionParameter")
        assert message == "The api-version query parameter (?api-version=) is required for all requests."
        _absent(arm, rg_path(server, group), RG_API)
        create_group(arm, server, group)
        r = arm.put(uami_path(server, group, "ident"), json={"location": "westeurope"})
        assert_arm_error(r, 400, "MissingApiVersionParameter")
        _absent(arm, uami_path(server, group, "ident"), MSI_API)
        assert_arm_error(
            arm.get(f"/subscriptions/{server.subscription_id}/resourcegroups"),
            400,
            "MissingApiVersionParameter",
        )
        assert_arm_error(arm.delete(rg_path(server, group)), 400, "MissingApiVersionParameter")
        assert arm.get(rg_path(server, group), params={"api-version": RG_API}).status_code == 200


def test_unknown_api_version_for_resource_groups(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        r = arm.put(
            rg_path(server, group), params={"api-version": "2099-01-01"}, json={"location": "westeurope"}
        )
        message = assert_arm_error(r, 400, "InvalidApiVersionParameter")
        assert message.startswith(
            "The api-version '2099-01-01' is invalid. The supported versions are '2025-04-01,"
        )
        assert message.endswith("'.")
        assert f",{RG_API}," in message
        _absent(arm, rg_path(server, group), RG_API)
        r = arm.get("/subscriptions", params={"api-version": "2099-01-01"})
        assert_arm_error(r, 400, "InvalidApiVersionParameter")


def test_unknown_api_version_for_a_provider_type(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.put(
            uami_path(server, group, name),
            params={"api-version": "2099-01-01"},
            json={"location": "westeurope"},
        )
        message = assert_arm_error(r, 400, "NoRegisteredProviderFound")
        assert (
            "API version '2099-01-01' for type 'Microsoft.ManagedIdentity/userAssignedIdentities'" in message
        )
        assert MSI_API in message
        _absent(arm, uami_path(server, group, name), MSI_API)
        r = arm.get(f"{rg_path(server, group)}/providers/{UAMI}", params={"api-version": "2099-01-01"})
        assert_arm_error(r, 400, "NoRegisteredProviderFound")


def test_unknown_namespace_and_type(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.put(
            f"{rg_path(server, group)}/providers/Microsoft.Nothing/things/x",
            params={"api-version": "2024-01-01"},
            json={"location": "westeurope"},
        )
        assert_arm_error(r, 404, "InvalidResourceNamespace")
        r = arm.put(
            f"{rg_path(server, group)}/providers/Microsoft.ManagedIdentity/nothings/x",
            params={"api-version": MSI_API},
            json={"location": "westeurope"},
        )
        assert_arm_error(r, 400, "InvalidResourceType")


# --- request bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"', b'{"location": "westeurope",}'])
def test_malformed_json(server: KeylessServer, unique: Callable[[str], str], content: bytes) -> None:
    group, name = unique("rg-"), unique("id-")
    headers = {"Content-Type": "application/json"}
    with server.arm() as arm:
        r = arm.put(rg_path(server, group), params={"api-version": RG_API}, content=content, headers=headers)
        message = assert_arm_error(r, 400, "InvalidRequestContent")
        assert message.startswith("The request content was invalid and could not be deserialized: '")
        _absent(arm, rg_path(server, group), RG_API)
        create_group(arm, server, group)
        r = arm.put(
            uami_path(server, group, name), params={"api-version": MSI_API}, content=content, headers=headers
        )
        assert_arm_error(r, 400, "InvalidRequestContent")
        _absent(arm, uami_path(server, group, name), MSI_API)
        # PATCH of an existing resource: refused and unchanged.
        create_identity(arm, server, group, name, tags={"keep": "me"})
        r = arm.patch(
            uami_path(server, group, name), params={"api-version": MSI_API}, content=content, headers=headers
        )
        assert_arm_error(r, 400, "InvalidRequestContent")
        assert arm.get(uami_path(server, group, name), params={"api-version": MSI_API}).json()["tags"] == {
            "keep": "me"
        }


@pytest.mark.parametrize(
    "body",
    [
        {"location": "westeurope", "tags": ["a", "b"]},
        {"location": "westeurope", "tags": "a=b"},
        {"location": "westeurope", "tags": {"a": 1}},
        {"location": 42},
        {"location": ["westeurope"]},
        {"location": "westeurope", "properties": "x"},
    ],
)
def test_wrong_field_types(
    server: KeylessServer, unique: Callable[[str], str], body: dict[str, object]
) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        assert_arm_error(
            arm.put(rg_path(server, group), params={"api-version": RG_API}, json=body),
            400,
            "InvalidRequestContent",
        )
        _absent(arm, rg_path(server, group), RG_API)
        create_group(arm, server, group)
        r = arm.put(uami_path(server, group, name), params={"api-version": MSI_API}, json=body)
        assert_arm_error(r, 400, "InvalidRequestContent")
        _absent(arm, uami_path(server, group, name), MSI_API)


def test_invalid_isolation_scope(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.put(
            uami_path(server, group, name),
            params={"api-version": MSI_API},
            json={"location": "westeurope", "properties": {"isolationScope": "Galactic"}},
        )
        assert_arm_error(r, 400, "BadRequest")
        _absent(arm, uami_path(server, group, name), MSI_API)


# --- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad name", "bad!name", "a*b", "ends.", "x" * 91, "semi;colon", "at@sign"])
def test_bad_resource_group_names(server: KeylessServer, name: str) -> None:
    with server.arm() as arm:
        r = arm.put(rg_path(server, name), params={"api-version": RG_API}, json={"location": "westeurope"})
        message = assert_arm_error(r, 400, "InvalidResourceGroup")
        assert message.startswith(f"The provided resource group name '{name}'")
        _absent(arm, rg_path(server, name), RG_API)


@pytest.mark.parametrize("name", ["ok.name-(1)_", "x" * 90, "Ünïcode"])
def test_good_resource_group_names(server: KeylessServer, unique: Callable[[str], str], name: str) -> None:
    name = name[:-8] + unique("")[-8:] if len(name) >= 90 else name + unique("")
    with server.arm() as arm:
        r = arm.put(rg_path(server, name), params={"api-version": RG_API}, json={"location": "westeurope"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == name


@pytest.mark.parametrize("name", ["ab", "-abc", "_abc", "a.b.c", "x" * 129, "with space", "semi;colon"])
def test_bad_identity_names(server: KeylessServer, unique: Callable[[str], str], name: str) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.put(
            uami_path(server, group, name), params={"api-version": MSI_API}, json={"location": "westeurope"}
        )
        message = assert_arm_error(r, 400, "InvalidResourceName")
        assert f"'{name}'" in message
        listed = arm.get(f"{rg_path(server, group)}/providers/{UAMI}", params={"api-version": MSI_API})
        assert listed.json()["value"] == []


# --- locations ---------------------------------------------------------------------------------------


def test_unknown_location(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        r = arm.put(rg_path(server, group), params={"api-version": RG_API}, json={"location": "mars"})
        message = assert_arm_error(r, 400, "LocationNotAvailableForResourceGroup")
        assert message.startswith("The provided location 'mars' is not available for resource group. ")
        assert "westeurope" in message
        _absent(arm, rg_path(server, group), RG_API)
        create_group(arm, server, group)
        r = arm.put(
            uami_path(server, group, name), params={"api-version": MSI_API}, json={"location": "mars"}
        )
        message = assert_arm_error(r, 400, "LocationNotAvailableForResourceType")
        assert message.startswith(
            f"The provided location 'mars' is not available for resource type '{UAMI}'. "
        )
        _absent(arm, uami_path(server, group, name), MSI_API)


def test_missing_location(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        assert_arm_error(
            arm.put(rg_path(server, group), params={"api-version": RG_API}, json={}), 400, "LocationRequired"
        )
        assert_arm_error(
            arm.put(rg_path(server, group), params={"api-version": RG_API}, json={"tags": {"a": "b"}}),
            400,
            "LocationRequired",
        )
        _absent(arm, rg_path(server, group), RG_API)
        create_group(arm, server, group)
        r = arm.put(uami_path(server, group, name), params={"api-version": MSI_API}, json={"tags": {}})
        assert_arm_error(r, 400, "LocationRequired")
        _absent(arm, uami_path(server, group, name), MSI_API)


def test_location_cannot_change(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-"), unique("id-")
    with server.arm() as arm:
        create_group(arm, server, group, "westeurope")
        r = arm.put(
            rg_path(server, group),
            params={"api-version": RG_API},
            json={"location": "eastus", "tags": {"a": "b"}},
        )
        message = assert_arm_error(r, 409, "InvalidResourceGroupLocation")
        assert message == (
            "Invalid resource group location 'eastus'. The Resource group already exists in location 'westeurope'."
        )
        got = arm.get(rg_path(server, group), params={"api-version": RG_API}).json()
        assert got["location"] == "westeurope" and got["tags"] == {}
        create_identity(arm, server, group, name)
        r = arm.put(
            uami_path(server, group, name), params={"api-version": MSI_API}, json={"location": "eastus"}
        )
        message = assert_arm_error(r, 409, "InvalidResourceLocation")
        assert message.startswith(
            f"The resource '{name}' already exists in location 'westeurope' in resource group"
        )
        assert (
            arm.get(uami_path(server, group, name), params={"api-version": MSI_API}).json()["location"]
            == "westeurope"
        )


# --- scopes that do not exist -------------------------------------------------------------------------


def test_resource_group_not_found(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-none-"), unique("id-")
    with server.arm() as arm:
        for r in (
            arm.put(
                uami_path(server, group, name),
                params={"api-version": MSI_API},
                json={"location": "westeurope"},
            ),
            arm.get(uami_path(server, group, name), params={"api-version": MSI_API}),
            arm.patch(uami_path(server, group, name), params={"api-version": MSI_API}, json={"tags": {}}),
            arm.delete(uami_path(server, group, name), params={"api-version": MSI_API}),
            arm.get(f"{rg_path(server, group)}/providers/{UAMI}", params={"api-version": MSI_API}),
            arm.get(rg_path(server, group), params={"api-version": RG_API}),
            arm.patch(rg_path(server, group), params={"api-version": RG_API}, json={"tags": {}}),
        ):
            message = assert_arm_error(r, 404, "ResourceGroupNotFound")
            assert message == f"Resource group '{group}' could not be found."
        _absent(arm, rg_path(server, group), RG_API)


def test_subscription_not_found(server: KeylessServer, unique: Callable[[str], str]) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    with server.arm() as arm:
        for r in (
            arm.put(
                f"/subscriptions/{missing}/resourceGroups/rg1",
                params={"api-version": RG_API},
                json={"location": "westeurope"},
            ),
            arm.get(f"/subscriptions/{missing}/resourcegroups", params={"api-version": RG_API}),
            arm.get(f"/subscriptions/{missing}", params={"api-version": "2022-12-01"}),
            arm.get(f"/subscriptions/{missing}/providers/{UAMI}", params={"api-version": MSI_API}),
        ):
            message = assert_arm_error(r, 404, "SubscriptionNotFound")
            assert message == f"The subscription '{missing}' could not be found."
        r = arm.put(
            "/subscriptions/not-a-guid/resourceGroups/rg1",
            params={"api-version": RG_API},
            json={"location": "westeurope"},
        )
        assert_arm_error(r, 400, "InvalidSubscriptionId")


def test_unknown_routes_and_methods(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-")
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.post(
            f"/subscriptions/{server.subscription_id}/resourcegroups", params={"api-version": RG_API}, json={}
        )
        assert_arm_error(r, 405, "MethodNotAllowed")
        r = arm.get(f"{rg_path(server, group)}/nothing/here", params={"api-version": RG_API})
        assert_arm_error(r, 404, "NotFound")
