"""The resource manager's happy paths over the wire: groups, identities, paging, ETags, LROs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest

from tests.e2e.arm_helpers import (
    MSI_API,
    RG_API,
    UAMI,
    assert_arm_error,
    collect_pages,
    create_group,
    create_identity,
    fic_path,
    poll,
    rg_path,
    uami_path,
)
from tests.keyless_server import KeylessServer

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


# --- resource groups ----------------------------------------------------------------------


def test_resource_group_create_update_get_head(server: KeylessServer, unique: Callable[[str], str]) -> None:
    name = unique("rg-")
    path = rg_path(server, name)
    with server.arm() as arm:
        created = arm.put(path, params={"api-version": RG_API}, json={"location": "West Europe"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["id"] == path
        assert body["name"] == name
        assert body["type"] == "Microsoft.Resources/resourceGroups"
        assert body["location"] == "westeurope"
        assert body["tags"] == {}
        assert body["properties"] == {"provisioningState": "Succeeded"}

        updated = arm.put(
            path, params={"api-version": RG_API}, json={"location": "westeurope", "tags": {"env": "dev"}}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["tags"] == {"env": "dev"}

        got = arm.get(path, params={"api-version": RG_API})
        assert got.status_code == 200
        assert got.json()["tags"] == {"env": "dev"}
        assert got.headers["etag"]

        head = arm.head(path, params={"api-version": RG_API})
        assert head.status_code == 204
        missing = arm.head(rg_path(server, unique("rg-none-")), params={"api-version": RG_API})
        assert missing.status_code == 404

        listed, _ = collect_pages(arm, f"/subscriptions/{server.subscription_id}/resourcegroups", RG_API)
        assert [g["id"] for g in listed].count(path) == 1


def test_resource_group_patch_replaces_tags(server: KeylessServer, unique: Callable[[str], str]) -> None:
    path = rg_path(server, unique("rg-"))
    with server.arm() as arm:
        arm.put(
            path, params={"api-version": RG_API}, json={"location": "eastus", "tags": {"a": "1", "b": "2"}}
        )
        r = arm.patch(path, params={"api-version": RG_API}, json={"tags": {"c": "3"}})
        assert r.status_code == 200, r.text
        assert r.json()["tags"] == {"c": "3"}
        assert r.json()["location"] == "eastus"
        assert arm.get(path, params={"api-version": RG_API}).json()["tags"] == {"c": "3"}


def test_resource_group_delete_is_long_running_and_takes_its_resources(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group = unique("rg-del-")
    with server.arm() as arm:
        create_group(arm, server, group)
        ids = [create_identity(arm, server, group, unique("id-")) for _ in range(2)]
        fic = arm.put(
            fic_path(server, group, ids[0]["name"], "fic1"),
            params={"api-version": MSI_API},
            json={
                "properties": {
                    "issuer": "https://issuer.example.com",
                    "subject": "system:serviceaccount:ns:sa",
                    "audiences": ["api://AzureADTokenExchange"],
                }
            },
        )
        assert fic.status_code == 201, fic.text

        r = arm.delete(rg_path(server, group), params={"api-version": RG_API})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        assert location.startswith(f"https://management.azure.com/subscriptions/{server.subscription_id}/")
        assert "retry-after" in r.headers
        done = poll(arm, location)
        assert done.status_code == 200, done.text

        assert_arm_error(
            arm.get(rg_path(server, group), params={"api-version": RG_API}), 404, "ResourceGroupNotFound"
        )
        for identity in ids:
            # The group is gone, so is everything in it.
            r = arm.get(uami_path(server, group, identity["name"]), params={"api-version": MSI_API})
            assert_arm_error(r, 404, "ResourceGroupNotFound")
        everywhere, _ = collect_pages(
            arm, f"/subscriptions/{server.subscription_id}/providers/{UAMI}", MSI_API
        )
        assert not {i["id"].lower() for i in everywhere} & {i["id"].lower() for i in ids}
        # Deleting it again: the group is not found.
        again = arm.delete(rg_path(server, group), params={"api-version": RG_API})
        assert_arm_error(again, 404, "ResourceGroupNotFound")
        # A new group of the same name starts empty.
        create_group(arm, server, group)
        listed, _ = collect_pages(arm, f"{rg_path(server, group)}/providers/{UAMI}", MSI_API)
        assert listed == []


def test_case_insensitive_ids_keep_latest_casing(server: KeylessServer, unique: Callable[[str], str]) -> None:
    suffix = unique("")
    with server.arm() as arm:
        first = arm.put(
            rg_path(server, f"CaseRG{suffix}"), params={"api-version": RG_API}, json={"location": "westus2"}
        )
        assert first.status_code == 201
        got = arm.get(
            f"/SUBSCRIPTIONS/{server.subscription_id.upper()}/RESOURCEGROUPS/caserg{suffix}",
            params={"api-version": RG_API},
        )
        assert got.status_code == 200
        assert got.json()["name"] == f"CaseRG{suffix}"
        again = arm.put(
            rg_path(server, f"CASERG{suffix}"), params={"api-version": RG_API}, json={"location": "westus2"}
        )
        assert again.status_code == 200  # the same group: an update
        assert again.json()["name"] == f"CASERG{suffix}"
        assert arm.get(rg_path(server, f"caserg{suffix}"), params={"api-version": RG_API}).json()["name"] == (
            f"CASERG{suffix}"
        )
        listed, _ = collect_pages(arm, f"/subscriptions/{server.subscription_id}/resourcegroups", RG_API)
        assert [g["name"].lower() for g in listed].count(f"caserg{suffix}") == 1

        created = create_identity(arm, server, f"caserg{suffix}", f"MyIdentity{suffix}")
        lower = arm.get(
            f"/subscriptions/{server.subscription_id}/resourcegroups/CASERG{suffix}/providers/"
            f"microsoft.managedidentity/USERASSIGNEDIDENTITIES/myidentity{suffix}",
            params={"api-version": MSI_API},
        )
        assert lower.status_code == 200, lower.text
        assert lower.json()["name"] == f"MyIdentity{suffix}"
        assert lower.json()["type"] == UAMI
        assert lower.json()["properties"]["principalId"] == created["properties"]["principalId"]
        renamed = create_identity(arm, server, f"caserg{suffix}", f"MYIDENTITY{suffix}")
        assert renamed["name"] == f"MYIDENTITY{suffix}"
        # Same identity: the directory objects did not change.
        assert renamed["properties"] == created["properties"]


def test_system_data(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-sd-")
    with server.arm() as arm:
        created = create_group(arm, server, group)
        sd = created["systemData"]
        assert sd["createdBy"] == server.admin["clientId"]
        assert sd["createdByType"] == "Application"
        assert sd["lastModifiedBy"] == server.admin["clientId"]
        assert sd["lastModifiedByType"] == "Application"
        assert ISO.match(sd["createdAt"]) and sd["createdAt"] == sd["lastModifiedAt"]
        time.sleep(0.01)
        updated = arm.put(
            rg_path(server, group),
            params={"api-version": RG_API},
            json={"location": "westeurope", "tags": {"x": "y"}},
        ).json()["systemData"]
        assert updated["createdAt"] == sd["createdAt"]
        assert updated["lastModifiedAt"] > sd["lastModifiedAt"]


# --- user-assigned identities ---------------------------------------------------------------


def test_identity_lifecycle(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-"), unique("id-")
    path = uami_path(server, group, name)
    with server.arm() as arm:
        create_group(arm, server, group)
        r = arm.put(
            path, params={"api-version": MSI_API}, json={"location": "westeurope", "tags": {"a": "1"}}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["id"] == path and body["name"] == name and body["type"] == UAMI
        assert body["location"] == "westeurope" and body["tags"] == {"a": "1"}
        props = body["properties"]
        assert props["tenantId"] == server.tenant_id
        assert GUID.match(props["principalId"]) and GUID.match(props["clientId"])
        assert props["principalId"] != props["clientId"]
        assert props["isolationScope"] == "None"
        etag = r.headers["etag"]

        got = arm.get(path, params={"api-version": MSI_API})
        assert got.status_code == 200 and got.json() == body
        assert got.headers["etag"] == etag

        # PUT again (update): 200, the same principal; read-only properties in the body are ignored.
        again = arm.put(
            path,
            params={"api-version": MSI_API},
            json={
                "location": "westeurope",
                "properties": {"clientId": "00000000-0000-0000-0000-000000000000"},
            },
        )
        assert again.status_code == 200
        assert again.json()["properties"]["clientId"] == props["clientId"]
        assert again.json()["properties"]["principalId"] == props["principalId"]
        assert again.json()["tags"] == {}  # PUT replaces the whole resource
        assert again.headers["etag"] != etag

        # PATCH: tags are replaced as a whole, properties are merge-patched.
        arm.patch(path, params={"api-version": MSI_API}, json={"tags": {"b": "2", "c": "3"}})
        patched = arm.patch(path, params={"api-version": MSI_API}, json={"tags": {"d": "4"}})
        assert patched.status_code == 200
        assert patched.json()["tags"] == {"d": "4"}
        regional = arm.patch(
            path, params={"api-version": MSI_API}, json={"properties": {"isolationScope": "Regional"}}
        )
        assert regional.status_code == 200, regional.text
        assert regional.json()["properties"]["isolationScope"] == "Regional"
        assert regional.json()["properties"]["principalId"] == props["principalId"]
        assert regional.json()["tags"] == {"d": "4"}  # untouched when the patch has no tags
        cleared = arm.patch(
            path, params={"api-version": MSI_API}, json={"properties": {"isolationScope": None}}
        )
        assert cleared.json()["properties"]["isolationScope"] == "None"
        assert cleared.json()["properties"]["clientId"] == props["clientId"]

        deleted = arm.delete(path, params={"api-version": MSI_API})
        assert deleted.status_code == 200
        assert arm.delete(path, params={"api-version": MSI_API}).status_code == 204
        message = assert_arm_error(arm.get(path, params={"api-version": MSI_API}), 404, "ResourceNotFound")
        assert f"'{UAMI}/{name}' under resource group '{group}' was not found" in message

        # Re-created: a new principal.
        fresh = create_identity(arm, server, group, name)
        assert fresh["properties"]["principalId"] != props["principalId"]


def test_identity_lists_with_paging(
    new_server: Callable[..., KeylessServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYLESS_PAGE_SIZE", "2")
    srv = new_server()
    with srv.arm() as arm:
        for group in ("rg-a", "rg-b", "rg-c"):
            create_group(arm, srv, group)
        for i in range(5):
            create_identity(arm, srv, "rg-a", f"id-a{i}")
        for i in range(2):
            create_identity(arm, srv, "rg-b", f"id-b{i}")

        groups, pages = collect_pages(arm, f"/subscriptions/{srv.subscription_id}/resourcegroups", RG_API)
        assert sorted(g["name"] for g in groups) == ["rg-a", "rg-b", "rg-c"]
        assert pages == 2

        in_a, pages = collect_pages(arm, f"{rg_path(srv, 'rg-a')}/providers/{UAMI}", MSI_API)
        assert sorted(i["name"] for i in in_a) == [f"id-a{i}" for i in range(5)]
        assert pages == 3
        in_c, _ = collect_pages(arm, f"{rg_path(srv, 'rg-c')}/providers/{UAMI}", MSI_API)
        assert in_c == []
        everywhere, pages = collect_pages(
            arm, f"/subscriptions/{srv.subscription_id}/providers/{UAMI}", MSI_API
        )
        assert len(everywhere) == 7 and len({i["id"] for i in everywhere}) == 7
        assert pages == 4

    # The SDK follows nextLink by itself.
    program = """
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
msi = ManagedServiceIdentityClient(DefaultAzureCredential(), sub)
res = ResourceManagementClient(DefaultAzureCredential(), sub)
print(json.dumps({
    "rg": sorted(i.name for i in msi.user_assigned_identities.list_by_resource_group("rg-a")),
    "sub": len(list(msi.user_assigned_identities.list_by_subscription())),
    "groups": sorted(g.name for g in res.resource_groups.list()),
}))
"""
    result = srv.run_python(program)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {"rg": [f"id-a{i}" for i in range(5)], "sub": 7, "groups": ["rg-a", "rg-b", "rg-c"]}


def test_identity_sdk_lifecycle(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-sdk-"), unique("id-sdk-")
    program = f"""
import json, os
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
cred = DefaultAzureCredential()
res = ResourceManagementClient(cred, sub)
msi = ManagedServiceIdentityClient(cred, sub)
res.resource_groups.create_or_update("{group}", {{"location": "westeurope"}})
created = msi.user_assigned_identities.create_or_update("{group}", "{name}", {{"location": "westeurope"}})
updated = msi.user_assigned_identities.update("{group}", "{name}", {{"tags": {{"team": "x"}}}})
fic = msi.federated_identity_credentials.create_or_update("{group}", "{name}", "github", {{
    "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main",
    "audiences": ["api://AzureADTokenExchange"]}})
fics = [f.name for f in msi.federated_identity_credentials.list("{group}", "{name}")]
msi.federated_identity_credentials.delete("{group}", "{name}", "github")
msi.user_assigned_identities.delete("{group}", "{name}")
try:
    msi.user_assigned_identities.get("{group}", "{name}")
    gone = False
except ResourceNotFoundError:
    gone = True
exists_before = res.resource_groups.check_existence("{group}")
res.resource_groups.begin_delete("{group}").result()
print(json.dumps({{
    "principal": created.principal_id, "client": created.client_id, "tenant": created.tenant_id,
    "tags": updated.tags, "fic_type": fic.type, "fics": fics, "gone": gone,
    "exists_before": exists_before, "exists_after": res.resource_groups.check_existence("{group}"),
    "created_by_type": created.system_data.created_by_type,
}}))
"""
    result = server.run_python(program)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert GUID.match(out["principal"]) and GUID.match(out["client"])
    assert out["tenant"] == server.tenant_id
    assert out["tags"] == {"team": "x"}
    assert out["fic_type"] == f"{UAMI}/federatedIdentityCredentials"
    assert out["fics"] == ["github"]
    assert out["gone"] is True
    assert out["exists_before"] is True and out["exists_after"] is False
    assert out["created_by_type"] == "Application"


# --- ETag / If-Match / If-None-Match ---------------------------------------------------------


def test_etag_matrix(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, name = unique("rg-etag-"), unique("id-")
    path = uami_path(server, group, name)
    api = {"api-version": MSI_API}
    body = {"location": "westeurope"}
    with server.arm() as arm:
        create_group(arm, server, group)

        # Resource does not exist.
        assert_arm_error(
            arm.put(path, params=api, json=body, headers={"If-Match": "*"}), 412, "PreconditionFailed"
        )
        assert_arm_error(
            arm.put(path, params=api, json=body, headers={"If-Match": '"abc"'}), 412, "PreconditionFailed"
        )
        assert arm.get(path, params=api).status_code == 404  # nothing was created
        assert_arm_error(
            arm.patch(path, params=api, json={"tags": {}}, headers={"If-Match": "*"}), 404, "ResourceNotFound"
        )
        created = arm.put(path, params=api, json=body, headers={"If-None-Match": "*"})
        assert created.status_code == 201
        etag = created.headers["etag"]
        principal = created.json()["properties"]["principalId"]

        # Resource exists.
        refused = arm.put(path, params=api, json={**body, "tags": {"x": "1"}}, headers={"If-None-Match": "*"})
        assert_arm_error(refused, 412, "PreconditionFailed")
        stale = arm.put(path, params=api, json={**body, "tags": {"x": "1"}}, headers={"If-Match": '"stale"'})
        assert_arm_error(stale, 412, "PreconditionFailed")
        stale_patch = arm.patch(path, params=api, json={"tags": {"x": "1"}}, headers={"If-Match": '"stale"'})
        assert_arm_error(stale_patch, 412, "PreconditionFailed")
        unchanged = arm.get(path, params=api)
        assert unchanged.headers["etag"] == etag and unchanged.json()["tags"] == {}

        star = arm.put(path, params=api, json={**body, "tags": {"x": "1"}}, headers={"If-Match": "*"})
        assert star.status_code == 200
        etag2 = star.headers["etag"]
        assert etag2 != etag
        matched = arm.patch(path, params=api, json={"tags": {"y": "2"}}, headers={"If-Match": etag2})
        assert matched.status_code == 200
        etag3 = matched.headers["etag"]
        assert arm.put(path, params=api, json=body, headers={"If-Match": etag2}).status_code == 412
        assert arm.get(path, params=api).json()["tags"] == {"y": "2"}

        assert_arm_error(arm.delete(path, params=api, headers={"If-Match": etag2}), 412, "PreconditionFailed")
        assert arm.get(path, params=api).json()["properties"]["principalId"] == principal  # still there
        assert arm.delete(path, params=api, headers={"If-Match": etag3}).status_code == 200
        assert arm.delete(path, params=api).status_code == 204


# --- federated identity credentials ---------------------------------------------------------


def _fic(
    issuer: str = "https://issuer.example.com", subject: str = "sub", **extra: object
) -> dict[str, object]:
    return {
        "properties": {
            "issuer": issuer,
            "subject": subject,
            "audiences": ["api://AzureADTokenExchange"],
            **extra,
        }
    }


def test_federated_identity_credentials(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, identity = unique("rg-fic-"), unique("id-")
    api = {"api-version": MSI_API}
    with server.arm() as arm:
        create_group(arm, server, group)
        create_identity(arm, server, group, identity)
        path = fic_path(server, group, identity, "first")
        r = arm.put(path, params=api, json=_fic(description="hello"))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["id"] == path and body["name"] == "first"
        assert body["type"] == f"{UAMI}/federatedIdentityCredentials"
        assert body["properties"] == {
            "issuer": "https://issuer.example.com",
            "subject": "sub",
            "audiences": ["api://AzureADTokenExchange"],
            "description": "hello",
        }
        assert "location" not in body and "tags" not in body
        assert arm.get(path, params=api).json() == body
        # Updating it with its own issuer+subject is fine.
        assert arm.put(path, params=api, json=_fic()).status_code == 200

        # Issuer+subject must be unique under the identity.
        dup = arm.put(fic_path(server, group, identity, "second"), params=api, json=_fic())
        message = assert_arm_error(dup, 400, "BadRequest")
        assert message == "Issuer and subject combination already exists for this Managed Identity."
        assert arm.get(fic_path(server, group, identity, "second"), params=api).status_code == 404

        for i in range(1, 20):
            r = arm.put(
                fic_path(server, group, identity, f"fic{i:02d}"), params=api, json=_fic(subject=f"s{i}")
            )
            assert r.status_code == 201, r.text
        listed, _ = collect_pages(
            arm, f"{uami_path(server, group, identity)}/federatedIdentityCredentials", MSI_API
        )
        assert len(listed) == 20
        # The 21st is refused; replacing one of the 20 still works.
        over = arm.put(fic_path(server, group, identity, "fic21"), params=api, json=_fic(subject="s21"))
        assert_arm_error(over, 400, "BadRequest")
        assert arm.get(fic_path(server, group, identity, "fic21"), params=api).status_code == 404
        assert (
            arm.put(
                fic_path(server, group, identity, "fic01"), params=api, json=_fic(subject="s1b")
            ).status_code
            == 200
        )

        assert arm.delete(path, params=api).status_code == 200
        assert arm.delete(path, params=api).status_code == 204
        assert (
            arm.put(
                fic_path(server, group, identity, "fic21"), params=api, json=_fic(subject="s21")
            ).status_code
            == 201
        )


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"properties": {}}, None),
        ({}, None),
        (_fic(issuer="http://issuer.example.com"), "properties.issuer"),
        (_fic(issuer="not a url"), "properties.issuer"),
        (_fic(subject=""), "properties.subject"),
        (
            {"properties": {"issuer": "https://i.example.com", "subject": "s", "audiences": []}},
            "properties.audiences",
        ),
        (
            {"properties": {"issuer": "https://i.example.com", "subject": "s", "audiences": ["a", "b"]}},
            "properties.audiences",
        ),
        ({"properties": {"issuer": "https://i.example.com", "subject": "s"}}, "properties.audiences"),
        (
            {"properties": {"issuer": "https://i.example.com", "subject": "s", "audiences": "api://x"}},
            "properties.audiences",
        ),
        (_fic(subject="x" * 601), "properties.subject"),
    ],
)
def test_federated_identity_credential_validation(
    server: KeylessServer, unique: Callable[[str], str], body: dict[str, object], target: str | None
) -> None:
    group, identity = unique("rg-ficv-"), unique("id-")
    api = {"api-version": MSI_API}
    with server.arm() as arm:
        create_group(arm, server, group)
        create_identity(arm, server, group, identity)
        path = fic_path(server, group, identity, "bad")
        r = arm.put(path, params=api, json=body)
        assert_arm_error(r, 400, "BadRequest")
        if target is not None:
            assert r.json()["error"]["target"] == target
        assert arm.get(path, params=api).status_code == 404


def test_federated_identity_credential_errors(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group, identity = unique("rg-fice-"), unique("id-")
    api = {"api-version": MSI_API}
    with server.arm() as arm:
        create_group(arm, server, group)
        # The parent identity must exist.
        r = arm.put(fic_path(server, group, identity, "fic"), params=api, json=_fic())
        assert_arm_error(r, 404, "ResourceNotFound")
        create_identity(arm, server, group, identity)
        for bad_name in ("ab", "-abc", "a" * 121, "a.b.c"):
            r = arm.put(fic_path(server, group, identity, bad_name), params=api, json=_fic())
            assert_arm_error(r, 400, "InvalidResourceName")
        # Federated credentials arrived in 2022-01-31-preview.
        old = arm.put(
            fic_path(server, group, identity, "fic"), params={"api-version": "2018-11-30"}, json=_fic()
        )
        assert_arm_error(old, 400, "NoRegisteredProviderFound")
        listed, _ = collect_pages(
            arm, f"{uami_path(server, group, identity)}/federatedIdentityCredentials", MSI_API
        )
        assert listed == []


# --- subscriptions, tenants, metadata ----------------------------------------------------------


def test_subscriptions_and_tenants(server: KeylessServer) -> None:
    with server.arm() as arm:
        subs = arm.get("/subscriptions", params={"api-version": "2022-12-01"})
        assert subs.status_code == 200
        assert [s["subscriptionId"] for s in subs.json()["value"]] == [server.subscription_id]
        one = arm.get(f"/subscriptions/{server.subscription_id}", params={"api-version": "2022-12-01"})
        assert one.status_code == 200
        assert one.json()["tenantId"] == server.tenant_id and one.json()["state"] == "Enabled"
        tenants = arm.get("/tenants", params={"api-version": "2022-12-01"})
        assert tenants.json()["value"][0]["tenantId"] == server.tenant_id


def test_metadata_endpoints(server: KeylessServer) -> None:
    with server.client() as http:
        r = http.get("https://management.azure.com/metadata/endpoints", params={"api-version": "2022-09-01"})
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == "AzureCloud"
        assert body["resourceManager"] == "https://management.azure.com/"
        assert body["authentication"]["loginEndpoint"] == "https://login.microsoftonline.com"
        assert "https://management.azure.com/" in body["authentication"]["audiences"]
        assert body["suffixes"]["keyVaultDns"] == "vault.azure.net"
        assert_arm_error(
            http.get("https://management.azure.com/metadata/endpoints"), 400, "MissingApiVersionParameter"
        )
        assert_arm_error(
            http.get("https://management.azure.com/metadata/endpoints", params={"api-version": "1999-01-01"}),
            400,
            "InvalidApiVersionParameter",
        )
