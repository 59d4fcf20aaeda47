"""Lists show what the caller may read: an identity with Reader on one resource group sees its
subscription and tenant, that group, and the resources it may read (ARM's partial-access lists),
driven by azure-mgmt-resource as that identity; with no role anywhere, lists stay 403/empty."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from tests.e2e.arm_helpers import MSI_API, UAMI, assert_arm_error, create_group, create_identity, rg_path
from tests.e2e.rbac_helpers import READER, assign, authorization_failed, create_sp, sub_scope, token_for
from tests.keyless_server import KeylessServer

SUB_API = "2022-12-01"
RES_API = "2024-11-01"


def _as_sp(srv: KeylessServer, sp: dict[str, Any], body: str) -> Any:
    """Run ``body`` (which sets ``out``) as the service principal ``sp``, an unchanged SDK program
    with `keyless run`'s environment and the principal's own credentials."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(srv.client_env())
    env.update(
        AZURE_CLIENT_ID=sp["appId"], AZURE_CLIENT_SECRET=sp["clientSecret"], AZURE_TENANT_ID=srv.tenant_id
    )
    program = f"""
import base64
import json
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
cred = ClientSecretCredential("{srv.tenant_id}", "{sp["appId"]}", "{sp["clientSecret"]}")
sub = "{srv.subscription_id}"
res = ResourceManagementClient(cred, sub)
msi = ManagedServiceIdentityClient(cred, sub)
subs = SubscriptionClient(cred)
def status(call):
    try:
        call()
        return 200
    except HttpResponseError as exc:
        return [exc.status_code, exc.error.code if exc.error else None]
{body}
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_reader_on_one_group_sees_its_subscription_group_and_resources(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv = new_server()
    with srv.arm() as arm:
        for group in ("rg-mine", "rg-other"):
            create_group(arm, srv, group)
            create_identity(arm, srv, group, f"id-{group}")
    sp = create_sp(srv, "reader-on-one-group")
    assign(srv, rg_path(srv, "rg-mine"), sp["objectId"], READER)
    out = _as_sp(
        srv,
        sp,
        """
out = {
    "subscriptions": [s.subscription_id for s in subs.subscriptions.list()],
    "tenants": [t.tenant_id for t in subs.tenants.list()],
    "subscription": status(lambda: subs.subscriptions.get(sub)),
    "locations": len(list(subs.subscriptions.list_locations(sub))),
    "groups": sorted(g.name for g in res.resource_groups.list()),
    "resources": sorted(r.name for r in res.resources.list()),
    "in_mine": sorted(r.name for r in res.resources.list_by_resource_group("rg-mine")),
    "in_other": status(lambda: list(res.resources.list_by_resource_group("rg-other"))),
    "identities": sorted(i.name for i in msi.user_assigned_identities.list_by_subscription()),
    "other_identities": status(lambda: list(msi.user_assigned_identities.list_by_resource_group("rg-other"))),
    "provider": res.providers.get("Microsoft.ManagedIdentity").registration_state,
}
""",
    )
    assert out["subscriptions"] == [srv.subscription_id]
    assert out["tenants"] == [srv.tenant_id]
    # Listed, but a single read still needs subscriptions/read there (as before).
    assert out["subscription"] == [403, "AuthorizationFailed"]
    assert out["locations"] > 50
    assert out["groups"] == ["rg-mine"]
    assert out["resources"] == ["id-rg-mine"]
    assert out["in_mine"] == ["id-rg-mine"]
    assert out["in_other"] == [403, "AuthorizationFailed"]
    assert out["identities"] == ["id-rg-mine"]
    assert out["other_identities"] == [403, "AuthorizationFailed"]
    assert out["provider"] == "Registered"


def test_reader_on_one_resource_sees_only_it(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    with srv.arm() as arm:
        create_group(arm, srv, "rg1")
        mine = create_identity(arm, srv, "rg1", "mine")
        create_identity(arm, srv, "rg1", "theirs")
    sp = create_sp(srv, "reader-on-one-identity")
    assign(srv, mine["id"], sp["objectId"], READER)
    with srv.arm(token_for(srv, sp)) as arm:
        sub = sub_scope(srv)
        listed = arm.get(f"{sub}/resources", params={"api-version": RES_API}).json()
        assert [r["name"] for r in listed["value"]] == ["mine"]
        in_group = arm.get(f"{rg_path(srv, 'rg1')}/providers/{UAMI}", params={"api-version": MSI_API}).json()
        assert [r["name"] for r in in_group["value"]] == ["mine"]
        # A role on a resource does not make its group readable.
        groups = arm.get(f"{sub}/resourcegroups", params={"api-version": "2021-04-01"}).json()
        assert groups == {"value": []}
        r = arm.get(rg_path(srv, "rg1"), params={"api-version": "2021-04-01"})
        assert_arm_error(r, 403, "AuthorizationFailed")
        subs = arm.get("/subscriptions", params={"api-version": SUB_API}).json()["value"]
        assert [s["subscriptionId"] for s in subs] == [srv.subscription_id]


def test_lists_page_through_what_the_caller_may_read(
    new_server: Callable[..., KeylessServer], monkeypatch: Any
) -> None:
    monkeypatch.setenv("KEYLESS_PAGE_SIZE", "2")
    srv = new_server()
    with srv.arm() as arm:
        create_group(arm, srv, "rg1")
        names = [f"id{i}" for i in range(7)]
        ids = {n: create_identity(arm, srv, "rg1", n)["id"] for n in names}
    sp = create_sp(srv, "reader-on-some")
    readable = ["id1", "id4", "id5", "id6"]
    for n in readable:
        assign(srv, ids[n], sp["objectId"], READER)
    with srv.arm(token_for(srv, sp)) as arm:
        for path, version in (
            (f"{rg_path(srv, 'rg1')}/providers/{UAMI}", MSI_API),
            (f"{rg_path(srv, 'rg1')}/resources", RES_API),
        ):
            seen: list[str] = []
            r = arm.get(path, params={"api-version": version})
            while True:
                assert r.status_code == 200, r.text
                page = r.json()
                assert len(page["value"]) <= 2
                seen += [i["name"] for i in page["value"]]
                if not page.get("nextLink"):
                    break
                r = arm.get(page["nextLink"])
            assert seen == readable


def test_no_role_anywhere_is_still_refused(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    with srv.arm() as arm:
        create_group(arm, srv, "rg1")
        create_identity(arm, srv, "rg1", "id1")
    sp = create_sp(srv, "nobody")
    with srv.arm(token_for(srv, sp)) as arm:
        sub = sub_scope(srv)
        assert arm.get("/subscriptions", params={"api-version": SUB_API}).json() == {"value": []}
        assert arm.get("/tenants", params={"api-version": SUB_API}).json() == {"value": []}
        r = arm.get(f"{sub}/resources", params={"api-version": RES_API})
        message = assert_arm_error(r, 403, "AuthorizationFailed")
        assert message == authorization_failed(
            sp["objectId"], "Microsoft.Resources/subscriptions/resources/read", sub
        )
        for path in (f"{sub}/providers", f"{sub}/locations"):
            version = SUB_API if path.endswith("locations") else RES_API
            assert_arm_error(arm.get(path, params={"api-version": version}), 403, "AuthorizationFailed")
        assert_arm_error(arm.get(sub, params={"api-version": SUB_API}), 403, "AuthorizationFailed")


def test_a_next_link_never_names_a_resource_the_caller_cannot_read(server: KeylessServer) -> None:
    """A page that stops after hidden rows (its scan budget spent) must not put their ids in its
    skip token: the token is opaque, and following it never shows a hidden resource."""
    group = f"rghidden{os.urandom(4).hex()}"
    hidden = [f"secretvm{i:02d}" for i in range(12)]
    with server.arm() as arm:
        create_group(arm, server, group)
        for name in hidden:
            r = arm.put(
                f"{rg_path(server, group)}/providers/Microsoft.Compute/virtualMachines/{name}",
                params={"api-version": "2024-07-01"},
                json={"location": "westeurope"},
            )
            assert r.status_code in (200, 201), r.text
    sp = create_sp(server, "operator")
    # Managed Identity Operator: a role at the subscription that does not read VMs.
    assign(server, sub_scope(server), sp["objectId"], "f1a07417-d97a-45cb-824c-7a7467783830")
    with server.arm(token_for(server, sp)) as arm:
        url: str | None = f"{sub_scope(server)}/resources?api-version={RES_API}&$top=1"
        pages = 0
        while url and pages < 50:
            r = arm.get(url)
            assert r.status_code == 200, r.text
            body = r.json()
            assert not {item["name"] for item in body["value"]} & set(hidden)
            url = body.get("nextLink")
            if url:
                token = url.split("skiptoken=", 1)[1].split("&", 1)[0]
                decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
                assert b"secretvm" not in decoded.lower()
            pages += 1
        assert url is None
        # A token edited by hand is refused, not followed.
        r = arm.get(
            f"{sub_scope(server)}/resources?api-version={RES_API}&$skiptoken="
            + base64.urlsafe_b64encode(f"{rg_path(server, group)}".lower().encode()).decode()
        )
        assert_arm_error(r, 400, "InvalidSkipToken")
