"""Wire shapes real clients read (issue 8, item 3), each driven by the Azure SDK that reads it:
role assignments name their definition under the subscription (az matches the two ids exactly),
``identity.type`` comes back in Azure's one spelling, App Service sites and VMs answer the
properties their clients read, and ``sites/{name}/config/web`` and ``publishxml`` exist."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.e2e.arm_helpers import assert_arm_error
from tests.e2e.rbac_helpers import AUTH_API, READER, create_group, create_uami, rg_scope
from tests.keyless_server import KeylessServer

WEB_API = "2023-12-01"
VM_API = "2024-11-01"


def _run(srv: KeylessServer, code: str, **values: Any) -> Any:
    head = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    result = srv.run_python(head + code)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def _put(srv: KeylessServer, path: str, api: str, body: dict[str, Any]) -> dict[str, Any]:
    with srv.arm() as arm:
        r = arm.put(path, params={"api-version": api}, json=body)
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


ROLE_ASSIGNMENTS = """
import json, os
from uuid import uuid4
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
auth = AuthorizationManagementClient(DefaultAzureCredential(), sub)
out = {}
reader = next(iter(auth.role_definitions.list(SCOPE, filter="roleName eq 'Reader'")))
out["definition_id"] = reader.id
# The tenant form on input, as ARM also accepts it.
tenant_form = "/providers/Microsoft.Authorization/roleDefinitions/" + reader.name
created = auth.role_assignments.create(SCOPE, str(uuid4()), {
    "role_definition_id": tenant_form, "principal_id": PRINCIPAL, "principal_type": "ServicePrincipal"})
out["created"] = created.role_definition_id
out["got"] = auth.role_assignments.get(SCOPE, created.name).role_definition_id
# What `az role assignment list --role Reader` / `delete --role` / a repeated `create` do: keep the
# assignments whose roleDefinitionId equals the definition's id, string for string.
listed = auth.role_assignments.list_for_scope(SCOPE, filter="atScope()")
out["matched"] = [a.name for a in listed if a.role_definition_id == reader.id]
out["name"] = created.name
try:
    auth.role_assignments.create(SCOPE, str(uuid4()), {"role_definition_id": reader.id, "principal_id": PRINCIPAL})
except HttpResponseError as exc:
    out["again"] = [exc.status_code, exc.error.code]
print(json.dumps(out))
"""


def test_role_assignments_name_their_definition_under_the_subscription(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group = unique("rg-shape-")
    create_group(server, group)
    principal = create_uami(server, group, unique("id"))["properties"]["principalId"]
    scope = rg_scope(server, group)
    out = _run(server, ROLE_ASSIGNMENTS, SCOPE=scope, PRINCIPAL=principal)
    expected = (
        f"/subscriptions/{server.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    )
    assert out["definition_id"] == expected
    assert out["created"] == out["got"] == expected
    assert out["matched"] == [out["name"]]
    assert out["again"] == [409, "RoleAssignmentExists"]


IDENTITY_TYPES = """
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.web import WebSiteManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
cred = DefaultAzureCredential()
compute, web = ComputeManagementClient(cred, sub), WebSiteManagementClient(cred, sub)
out = {}
for spelled in ("SystemAssigned,UserAssigned", "systemassigned, USERASSIGNED", "SystemAssigned , UserAssigned"):
    vm = compute.virtual_machines.begin_update(GROUP, VM, {
        "identity": {"type": spelled, "userAssignedIdentities": {UAMI: {}}}}).result()
    out[spelled] = [vm.identity.type, compute.virtual_machines.get(GROUP, VM).identity.type]
# az's `vm identity remove --identities X` on such a VM: it sees "SystemAssigned, UserAssigned" and
# keeps the system-assigned identity (sends type SystemAssigned and the user one as null).
seen = compute.virtual_machines.get(GROUP, VM).identity
if seen.type == "SystemAssigned, UserAssigned":
    patch = {"type": "SystemAssigned", "userAssignedIdentities": {UAMI: None}}
else:
    patch = {"type": "None", "userAssignedIdentities": None}
after = compute.virtual_machines.begin_update(GROUP, VM, {"identity": patch}).result().identity
out["after_remove"] = [after.type, after.principal_id == seen.principal_id]
site = web.web_apps.update(GROUP, SITE, {"identity": {"type": "systemAssigned,userAssigned",
                                                       "userAssignedIdentities": {UAMI: {}}}})
out["site"] = [site.identity.type, web.web_apps.get(GROUP, SITE).identity.type]
none = compute.virtual_machines.begin_update(GROUP, VM, {"identity": {"type": "none"}}).result()
out["none"] = none.identity.type if none.identity else None
print(json.dumps(out))
"""


def test_identity_type_is_answered_in_azures_spelling(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group, vm, site = unique("rg-idt-"), unique("vm"), unique("fn")
    create_group(server, group)
    uami = create_uami(server, group, unique("id"))["id"]
    scope = rg_scope(server, group)
    _put(
        server,
        f"{scope}/providers/Microsoft.Compute/virtualMachines/{vm}",
        VM_API,
        {"location": "westeurope", "identity": {"type": "SystemAssigned"}},
    )
    _put(
        server,
        f"{scope}/providers/Microsoft.Web/sites/{site}",
        WEB_API,
        {"location": "westeurope", "kind": "functionapp", "identity": {"type": "SystemAssigned"}},
    )
    out = _run(server, IDENTITY_TYPES, GROUP=group, VM=vm, SITE=site, UAMI=uami)
    for spelled in (
        "SystemAssigned,UserAssigned",
        "systemassigned, USERASSIGNED",
        "SystemAssigned , UserAssigned",
    ):
        assert out[spelled] == ["SystemAssigned, UserAssigned"] * 2, spelled
    assert out["after_remove"] == ["SystemAssigned", True]  # the system identity survives
    assert out["site"] == ["SystemAssigned, UserAssigned"] * 2
    assert out["none"] == "None"


SHAPES = """
import json, os
import xml.etree.ElementTree as ET
from azure.identity import DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.web import WebSiteManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
cred = DefaultAzureCredential()
compute, web = ComputeManagementClient(cred, sub), WebSiteManagementClient(cred, sub)
out = {}
app = web.web_apps.get(GROUP, SITE)
out["site"] = {k: getattr(app, k) for k in (
    "kind", "state", "default_host_name", "host_names", "enabled_host_names", "server_farm_id", "sku",
    "https_only", "resource_group", "usage_state", "availability_state", "client_affinity_enabled",
    "enabled", "reserved")}
out["site_config_workers"] = app.site_config.number_of_workers
config = web.web_apps.get_configuration(GROUP, SITE)
out["config"] = [config.id, config.number_of_workers, config.ftps_state, config.min_tls_version]
xml = b"".join(web.web_apps.list_publishing_profile_xml_with_secrets(GROUP, SITE, {"format": "WebDeploy"}))
profiles = ET.fromstring(xml).findall("publishProfile")
out["profiles"] = [p.get("publishMethod") for p in profiles]
vm = compute.virtual_machines.get(GROUP, VM)
out["vm"] = [vm.vm_id, vm.provisioning_state, vm.hardware_profile.vm_size,
             vm.storage_profile.os_disk.os_type, vm.os_profile.computer_name, vm.time_created is not None]
print(json.dumps(out))
"""


def test_sites_and_vms_answer_what_their_clients_read(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group, vm, site = unique("rg-shape-"), unique("vm"), unique("fn")
    create_group(server, group)
    scope = rg_scope(server, group)
    created_vm = _put(
        server,
        f"{scope}/providers/Microsoft.Compute/virtualMachines/{vm}",
        VM_API,
        {"location": "westeurope", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v3"}}},
    )
    _put(
        server,
        f"{scope}/providers/Microsoft.Web/sites/{site}",
        WEB_API,
        {"location": "westeurope", "kind": "functionapp", "properties": {"httpsOnly": True}},
    )
    out = _run(server, SHAPES, GROUP=group, VM=vm, SITE=site)
    host = f"{site}.azurewebsites.net"
    assert out["site"] == {
        "kind": "functionapp",
        "state": "Running",
        "default_host_name": host,
        "host_names": [host],
        "enabled_host_names": [host, f"{site}.scm.azurewebsites.net"],
        "server_farm_id": None,  # az's is_flex_functionapp reads it (KeyError before)
        "sku": "Dynamic",
        "https_only": True,
        "resource_group": group,
        "usage_state": "Normal",
        "availability_state": "Normal",
        "client_affinity_enabled": False,
        "enabled": True,
        "reserved": False,
    }
    assert out["site_config_workers"] == 1
    assert out["config"] == [f"{scope}/providers/Microsoft.Web/sites/{site}/config/web", 1, "FtpsOnly", "1.2"]
    assert out["profiles"] == ["MSDeploy"]
    vm_id, state, size, os_type, computer, created = out["vm"]
    assert vm_id == created_vm["properties"]["vmId"]
    assert (state, size, os_type, computer, created) == ("Succeeded", "Standard_D2s_v3", "Linux", vm, True)


def test_site_config_refuses_other_names_and_missing_sites(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group, site = unique("rg-cfg-"), unique("app")
    create_group(server, group)
    scope = rg_scope(server, group)
    sites = f"{scope}/providers/Microsoft.Web/sites"
    _put(server, f"{sites}/{site}", WEB_API, {"location": "westeurope"})
    with server.arm() as arm:
        api = {"api-version": WEB_API}
        assert_arm_error(arm.get(f"{sites}/nosuch/config/web", params=api), 404, "ResourceNotFound")
        assert_arm_error(
            arm.put(f"{sites}/{site}/config/other", params=api, json={}), 400, "InvalidResourceName"
        )
        # A site made without a kind is an "app" (App Service always answers one).
        r = arm.get(f"{sites}/{site}", params=api)
        assert r.status_code == 200 and r.json()["kind"] == "app", r.text
        # Read-only properties a request sends are not stored.
        r = arm.put(
            f"{sites}/{site}",
            params=api,
            json={"location": "westeurope", "properties": {"state": "Stopped", "sku": "Premium"}},
        )
        assert r.status_code == 200 and r.json()["properties"]["state"] == "Running", r.text
        assert r.json()["properties"]["sku"] == "Free"
        r = arm.get(
            f"{scope}/providers/Microsoft.Authorization/roleAssignments", params={"api-version": AUTH_API}
        )
        assert r.status_code == 200
