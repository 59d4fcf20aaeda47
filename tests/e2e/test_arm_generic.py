"""Microsoft.Resources' generic operations, driven by azure-mgmt-resource under `keyless run`:
resource lists with $filter/$expand/$top/nextLink, providers (subscription and tenant level,
register/unregister), locations, and the generic by-id operations; bad input gets ARM's errors
and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.arm_helpers import (
    MSI_API,
    RG_API,
    UAMI,
    assert_arm_error,
    create_group,
    create_identity,
    fic_path,
    rg_path,
    uami_path,
)
from tests.keyless_server import KeylessServer

RES_API = "2024-11-01"
SUB_API = "2022-12-01"
Unique = Callable[[str], str]


def _sdk(srv: KeylessServer, body: str) -> Any:
    """Run ``body`` (which sets ``out``) with ``res`` and ``subs`` clients under `keyless run`."""
    program = f"""
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
cred = DefaultAzureCredential()
res = ResourceManagementClient(cred, sub)
subs = SubscriptionClient(cred)
{body}
print(json.dumps(out))
"""
    result = srv.run_python(program)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _populate(srv: KeylessServer, group: str, other: str) -> None:
    with srv.arm() as arm:
        create_group(arm, srv, group)
        create_group(arm, srv, other)
        create_identity(arm, srv, group, "id-a", tags={"env": "dev", "Team": "Media"})
        create_identity(arm, srv, group, "id-b", tags={"env": "prod"})
        create_identity(arm, srv, group, "other-c")
        create_identity(arm, srv, other, "id-d", tags={"env": "dev"})
        r = arm.put(
            fic_path(srv, group, "id-a", "github"),
            params={"api-version": MSI_API},
            json={
                "properties": {
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subject": "repo:o/r:ref:refs/heads/main",
                    "audiences": ["api://AzureADTokenExchange"],
                }
            },
        )
        assert r.status_code in (200, 201), r.text


def test_resource_lists_with_the_sdk(server: KeylessServer, unique: Unique) -> None:
    group, other = unique("rg-gen-"), unique("rg-gen2-")
    _populate(server, group, other)
    out = _sdk(
        server,
        f"""
def names(items):
    return sorted(r.name for r in items)
in_group = list(res.resources.list_by_resource_group("{group}"))
expanded = list(res.resources.list_by_resource_group(
    "{group}", expand="createdTime,changedTime,provisioningState"))
out = {{
    "group": names(in_group),
    "types": sorted({{r.type for r in in_group}}),
    "first": in_group[0].as_dict(),
    "expanded": expanded[0].as_dict(),
    "by_type": names(r for r in res.resources.list(filter="resourceType eq '{UAMI.lower()}'")
                     if r.id.lower().split("/")[4] in ("{group}".lower(), "{other}".lower())),
    "by_group": names(res.resources.list(filter="resourceGroup eq '{group.upper()}'")),
    "by_tag": names(res.resources.list_by_resource_group("{group}", filter="tagName eq 'ENV' and tagValue eq 'dev'")),
    "by_tag_name": names(res.resources.list_by_resource_group("{group}", filter="tagName eq 'team'")),
    "by_prefix": names(res.resources.list_by_resource_group("{group}", filter="startswith(tagName, 'te')")),
    "by_name": names(res.resources.list(filter="name eq 'ID-D' and resourceGroup eq '{other}'")),
    "substring": names(res.resources.list_by_resource_group("{group}", filter="substringof('her', name)")),
    "either": names(res.resources.list_by_resource_group(
        "{group}", filter="name eq 'id-a' or name eq 'other-c'")),
    "not": names(res.resources.list_by_resource_group("{group}", filter="name ne 'id-a'")),
    "paged": names(res.resources.list_by_resource_group("{group}", top=1)),
    "empty_filter": names(res.resources.list_by_resource_group("{group}", filter="")),
}}
""",
    )
    assert out["group"] == ["id-a", "id-b", "other-c"]  # the child credential is not listed
    assert out["types"] == [UAMI]
    first = out["first"]
    assert first["id"] == uami_path(server, group, "id-a")
    assert first["location"] == "westeurope" and first["tags"] == {"env": "dev", "Team": "Media"}
    assert "properties" not in first and "createdTime" not in first
    expanded = out["expanded"]
    assert expanded["provisioningState"] == "Succeeded"
    assert expanded["createdTime"] and expanded["changedTime"]
    assert out["by_type"] == ["id-a", "id-b", "id-d", "other-c"]
    assert out["by_group"] == ["id-a", "id-b", "other-c"]
    assert out["by_tag"] == ["id-a"]
    assert out["by_tag_name"] == ["id-a"]
    assert out["by_prefix"] == ["id-a"]
    assert out["by_name"] == ["id-d"]
    assert out["substring"] == ["other-c"]
    assert out["either"] == ["id-a", "other-c"]
    assert out["not"] == ["id-b", "other-c"]
    assert out["paged"] == ["id-a", "id-b", "other-c"]  # one per page, nextLink followed
    assert out["empty_filter"] == ["id-a", "id-b", "other-c"]


def test_next_link_keeps_the_filter(server: KeylessServer, unique: Unique) -> None:
    group, other = unique("rg-page-"), unique("rg-page2-")
    _populate(server, group, other)
    with server.arm() as arm:
        r = arm.get(
            f"{rg_path(server, group)}/resources",
            params={"api-version": "2021-04-01", "$filter": "name ne 'id-b'", "$top": "1"},
        )
        assert r.status_code == 200, r.text
        seen = [item["name"] for item in r.json()["value"]]
        link = r.json()["nextLink"]
        assert "%24filter=name%20ne%20%27id-b%27" in link and "%24top=1" in link
        while link:
            page = arm.get(link).json()
            seen += [item["name"] for item in page["value"]]
            link = page.get("nextLink")
        assert seen == ["id-a", "other-c"]


def test_providers_locations_and_by_id_with_the_sdk(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-prov-")
    with server.arm() as arm:
        create_group(arm, server, group)
        identity = create_identity(arm, server, group, "id-x")
    out = _sdk(
        server,
        f"""
msi = res.providers.get("microsoft.managedidentity")
listed = {{p.namespace: p.registration_state for p in res.providers.list()}}
tenant = res.providers.get_at_tenant_scope("Microsoft.Authorization")
version = sorted((t for t in msi.resource_types if t.resource_type == "userAssignedIdentities"),
                 key=str)[0].api_versions[0]
got = res.resources.get_by_id("{identity["id"]}", api_version=version)
locations = list(subs.subscriptions.list_locations(sub))
out = {{
    "msi": msi.as_dict(),
    "listed": listed,
    "tenant": tenant.as_dict(),
    "got": got.as_dict(),
    "registered": res.providers.register("Microsoft.ManagedIdentity").registration_state,
    "locations": [l.as_dict() for l in locations],
}}
""",
    )
    msi = out["msi"]
    assert msi["id"] == f"/subscriptions/{server.subscription_id}/providers/Microsoft.ManagedIdentity"
    assert msi["namespace"] == "Microsoft.ManagedIdentity" and msi["registrationState"] == "Registered"
    types = {t["resourceType"]: t for t in msi["resourceTypes"]}
    assert set(types) == {"userAssignedIdentities", "userAssignedIdentities/federatedIdentityCredentials"}
    assert MSI_API in types["userAssignedIdentities"]["apiVersions"]
    assert "West Europe" in types["userAssignedIdentities"]["locations"]
    assert out["listed"]["Microsoft.Resources"] == "Registered"
    assert {"Microsoft.Compute", "Microsoft.Web", "Microsoft.Authorization"} <= set(out["listed"])
    tenant = out["tenant"]
    assert tenant["id"] == "/providers/Microsoft.Authorization" and "registrationState" not in tenant
    assert "roleAssignments" in {t["resourceType"] for t in tenant["resourceTypes"]}
    assert out["got"]["id"] == identity["id"]
    assert out["got"]["properties"]["principalId"] == identity["properties"]["principalId"]
    assert out["registered"] == "Registered"
    by_name = {loc["name"]: loc for loc in out["locations"]}
    west = by_name["westeurope"]
    assert west["displayName"] == "West Europe" and west["regionalDisplayName"] == "(Europe) West Europe"
    assert west["metadata"]["regionType"] == "Physical" and west["metadata"]["geographyGroup"] == "Europe"
    assert west["id"] == f"/subscriptions/{server.subscription_id}/locations/westeurope"
    assert by_name["europe"]["metadata"]["regionType"] == "Logical"


def _snapshot(srv: KeylessServer, group: str) -> Any:
    with srv.arm() as arm:
        return (
            arm.get(f"{rg_path(srv, group)}/resources", params={"api-version": RES_API}).json(),
            arm.get(
                f"/subscriptions/{srv.subscription_id}/providers", params={"api-version": RES_API}
            ).json(),
        )


@pytest.mark.parametrize(
    "bad",
    [
        "name eq",
        "name eq 'a",
        "(name eq 'a'",
        "location gt 'x'",
        "tagValue eq 'dev'",
        "tagName ne 'env'",
        "plan eq 'x'",
        "name eq 5",
        "contains(name, 'a')",
        "substringof('a', location)",
        "not (name eq 'a')",
        "$filter=resourceType eq 'Microsoft.Web/sites'",
        "name eq '" + "a" * 3000 + "'",
        "name eq 'a' or " * 200 + "name eq 'b'",
    ],
)
def test_bad_filters(server: KeylessServer, unique: Unique, bad: str) -> None:
    group = unique("rg-badf-")
    with server.arm() as arm:
        create_group(arm, server, group)
        create_identity(arm, server, group, "id-a")
    before = _snapshot(server, group)
    with server.arm() as arm:
        for path in (
            f"/subscriptions/{server.subscription_id}/resources",
            f"{rg_path(server, group)}/resources",
        ):
            r = arm.get(path, params={"api-version": RES_API, "$filter": bad})
            message = assert_arm_error(r, 400, "InvalidFilterInQueryString")
            assert message.startswith("Invalid $filter '") and message.endswith(
                "' specified in the query string."
            )
    assert _snapshot(server, group) == before


def test_bad_input_on_the_generic_operations(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-badg-")
    sub = f"/subscriptions/{server.subscription_id}"
    with server.arm() as arm:
        create_group(arm, server, group)
        identity = create_identity(arm, server, group, "id-a")
    before = _snapshot(server, group)
    with server.arm() as arm:
        for top in ("0", "-1", "abc", "1001", "1e3", "٣", "1" + "0" * 4400, "0" * 4400 + "1"):
            r = arm.get(f"{sub}/resources", params={"api-version": RES_API, "$top": top})
            assert_arm_error(r, 400, "InvalidTopInQueryString")
        for path in (f"{sub}/resources", f"{sub}/providers", "/providers", f"{sub}/providers/Microsoft.Web"):
            assert_arm_error(
                arm.get(path, params={"api-version": "2099-01-01"}), 400, "InvalidApiVersionParameter"
            )
        r = arm.get(f"{sub}/locations", params={"api-version": "2099-01-01"})
        assert_arm_error(r, 400, "InvalidApiVersionParameter")
        for path in (f"{sub}/providers/Microsoft.Nowhere", "/providers/Microsoft.Nowhere"):
            message = assert_arm_error(
                arm.get(path, params={"api-version": RES_API}), 404, "InvalidResourceNamespace"
            )
            assert "Microsoft.Nowhere" in message
        for verb in ("register", "unregister"):
            r = arm.post(f"{sub}/providers/Microsoft.Nowhere/{verb}", params={"api-version": RES_API})
            assert_arm_error(r, 404, "InvalidResourceNamespace")
            r = arm.post(
                f"{sub}/providers/Microsoft.Web/{verb}", params={"api-version": RES_API}, content=b"[1]"
            )
            assert_arm_error(r, 400, "InvalidRequestContent")
        r = arm.get(f"{rg_path(server, 'no-such-group')}/resources", params={"api-version": RES_API})
        assert_arm_error(r, 404, "ResourceGroupNotFound")
        r = arm.get(
            "/subscriptions/00000000-0000-0000-0000-00000000dead/resources", params={"api-version": RES_API}
        )
        assert_arm_error(r, 404, "SubscriptionNotFound")
        assert_arm_error(
            arm.get("/subscriptions/nope/providers", params={"api-version": RES_API}),
            400,
            "InvalidSubscriptionId",
        )
        assert_arm_error(
            arm.delete(f"{sub}/resources", params={"api-version": RES_API}), 405, "MethodNotAllowed"
        )
        # The generic by-id operations refuse an api-version the provider does not list.
        for method in ("GET", "PATCH", "DELETE", "PUT"):
            r = arm.request(
                method, identity["id"], params={"api-version": "2099-01-01"}, json={"tags": {"a": "b"}}
            )
            assert_arm_error(r, 400, "NoRegisteredProviderFound")
        r = arm.get(f"{sub}/resources", params={"api-version": RES_API, "$skiptoken": "%%%"})
        assert_arm_error(r, 400, "InvalidSkipToken")
    assert _snapshot(server, group) == before


def test_unregister_and_register(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    sub = f"/subscriptions/{srv.subscription_id}"
    with srv.arm() as arm:
        create_group(arm, srv, "rg1")
        create_identity(arm, srv, "rg1", "held")
        # Unregistering a namespace that still has resources here is refused.
        r = arm.post(f"{sub}/providers/Microsoft.ManagedIdentity/unregister", params={"api-version": RES_API})
        assert_arm_error(r, 409, "Conflict")
        state = arm.get(f"{sub}/providers/Microsoft.ManagedIdentity", params={"api-version": RES_API}).json()
        assert state["registrationState"] == "Registered"
        r = arm.delete(uami_path(srv, "rg1", "held"), params={"api-version": MSI_API})
        assert r.status_code == 200
        r = arm.post(f"{sub}/providers/microsoft.managedidentity/unregister", params={"api-version": RES_API})
        assert r.status_code == 200, r.text
        assert (
            r.json()["registrationState"] == "Unregistered"
            and r.json()["namespace"] == "Microsoft.ManagedIdentity"
        )
        # Creating a resource of an unregistered namespace is ARM's 409, and nothing is made.
        r = arm.put(
            uami_path(srv, "rg1", "id1"), params={"api-version": MSI_API}, json={"location": "westeurope"}
        )
        assert_arm_error(r, 409, "MissingSubscriptionRegistration")
        assert arm.get(uami_path(srv, "rg1", "id1"), params={"api-version": MSI_API}).status_code == 404
        listed = arm.get(f"{sub}/providers", params={"api-version": RES_API}).json()["value"]
        states = {p["namespace"]: p["registrationState"] for p in listed}
        assert (
            states["Microsoft.ManagedIdentity"] == "Unregistered"
            and states["Microsoft.Compute"] == "Registered"
        )
        # Registration-free namespaces stay registered.
        r = arm.post(f"{sub}/providers/Microsoft.Resources/unregister", params={"api-version": RES_API})
        assert r.status_code == 200 and r.json()["registrationState"] == "Registered"
        r = arm.post(
            f"{sub}/providers/Microsoft.ManagedIdentity/register", params={"api-version": RES_API}, json={}
        )
        assert r.status_code == 200 and r.json()["registrationState"] == "Registered"
        r = arm.put(
            uami_path(srv, "rg1", "id1"), params={"api-version": MSI_API}, json={"location": "westeurope"}
        )
        assert r.status_code == 201, r.text
    # A Reader may not register.
    from tests.e2e.rbac_helpers import READER, assign, create_sp, token_for

    sp = create_sp(srv, "reader")
    assign(srv, sub, sp["objectId"], READER)
    with srv.arm(token_for(srv, sp)) as arm:
        r = arm.post(f"{sub}/providers/Microsoft.Web/unregister", params={"api-version": RES_API})
        assert_arm_error(r, 403, "AuthorizationFailed")
        assert arm.get(f"{sub}/providers/Microsoft.Web", params={"api-version": RES_API}).status_code == 200
    with srv.arm() as arm:
        web = arm.get(f"{sub}/providers/Microsoft.Web", params={"api-version": RES_API}).json()
        assert web["registrationState"] == "Registered"
        assert arm.get(rg_path(srv, "rg1"), params={"api-version": RG_API}).status_code == 200
