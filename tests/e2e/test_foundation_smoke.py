"""The issue's own program, unchanged, under `keyless run` (no --as: the local admin)."""

from __future__ import annotations

from tests.keyless_server import KeylessServer

PROGRAM = """
import os
from azure.identity import DefaultAzureCredential
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
sub = os.environ["AZURE_SUBSCRIPTION_ID"]
ResourceManagementClient(DefaultAzureCredential(), sub).resource_groups.create_or_update(
    "rg1", {"location": "westeurope"})
c = ManagedServiceIdentityClient(DefaultAzureCredential(), sub)
c.user_assigned_identities.create_or_update("rg1", "id1", {"location": "westeurope"})
print(c.user_assigned_identities.get("rg1", "id1").principal_id)
"""


def test_issue_program_runs_unchanged(new_server) -> None:  # type: ignore[no-untyped-def]
    srv: KeylessServer = new_server()
    result = srv.run_python(PROGRAM)
    assert result.returncode == 0, result.stderr
    principal_id = result.stdout.strip()
    # The principal id the SDK printed is the one the resource manager stored.
    with srv.arm() as arm:
        got = arm.get(
            f"/subscriptions/{srv.subscription_id}/resourceGroups/rg1/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/id1",
            params={"api-version": "2024-11-30"},
        )
    assert got.status_code == 200
    assert got.json()["properties"]["principalId"] == principal_id
