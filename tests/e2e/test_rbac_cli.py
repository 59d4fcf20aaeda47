"""`keyless ad sp`, `keyless role assignment|definition` and `keyless access explain`, as a user types
them, against a running server: tables for people, JSON for scripts, ARM's errors on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.rbac_helpers import BLOB_READ, OWNER, all_assignments, assign, create_group, rg_scope
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]
RG_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
RG_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Rich sizes tables to COLUMNS: wide enough that ids are not folded across lines.
    monkeypatch.setenv("COLUMNS", "400")
    yield


def ok(srv: KeylessServer, *args: str) -> str:
    result = srv.cli(*args)
    assert result.returncode == 0, f"keyless {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ok_json(srv: KeylessServer, *args: str) -> Any:
    return json.loads(ok(srv, *args, "--output", "json"))


def denied(srv: KeylessServer, *args: str) -> str:
    """`keyless access explain` answering "denied": it prints why and exits 1."""
    result = srv.cli(*args)
    assert result.returncode == 1, f"keyless {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def denied_json(srv: KeylessServer, *args: str) -> Any:
    return json.loads(denied(srv, *args, "--output", "json"))


def test_assign_list_explain_and_delete_from_the_cli(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-cli-")
    create_group(server, group)
    scope = rg_scope(server, group)
    sp = ok_json(server, "ad", "sp", "create", "--display-name", unique("cli-app-"))
    assert set(sp) >= {"objectId", "appId", "tenantId", "clientSecret"}
    oid = sp["objectId"]

    table = ok(
        server, "role", "assignment", "create", "--assignee", oid, "--role", "Reader", "--scope", scope
    )
    assert "Reader" in table and oid in table and scope in table
    listed = ok_json(server, "role", "assignment", "list", "--scope", scope, "--assignee", oid)
    assert [(a["properties"]["principalId"], a["properties"]["scope"]) for a in listed] == [(oid, scope)]
    assert listed[0]["properties"]["roleDefinitionId"].endswith("acdd72a7-3385-48ef-bd42-f606fba81ae7")
    table = ok(server, "role", "assignment", "list", "--scope", scope)
    assert "Reader" in table and "Owner" in table  # the admin's Owner is inherited from the subscription

    # Allowed, and why: the Reader assignment at this scope, via '*/read'.
    why = ok_json(server, "access", "explain", "--principal", oid, "--action", RG_READ, "--scope", scope)
    assert why["allowed"] is True and why["decision"] == "allowed"
    [match] = why["matchedAssignments"]
    assert (match["roleName"], match["matchedPattern"], match["inheritedFrom"]) == ("Reader", "*/read", None)
    table = ok(server, "access", "explain", "--principal", oid, "--action", RG_READ, "--scope", scope)
    assert "ALLOWED (allowed)" in table
    assert "grants" in table and "Reader" in table and "via '*/read'" in table
    assert "no (at this scope)" in table

    # Below the scope it is inherited; writing is not granted, and the table says why.
    child = f"{scope}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    why = ok_json(
        server,
        "access",
        "explain",
        "--principal",
        oid,
        "--action",
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        "--scope",
        child,
    )
    assert why["allowed"] is True and why["matchedAssignments"][0]["inheritedFrom"] == scope
    table = denied(server, "access", "explain", "--principal", oid, "--action", RG_WRITE, "--scope", scope)
    assert "DENIED (not_granted)" in table
    assert "does not grant" in table and "no Actions pattern matches" in table

    # Deleting by assignee and role; then the same question is answered "denied".
    out = ok(server, "role", "assignment", "delete", "--assignee", oid, "--role", "Reader", "--scope", scope)
    assert "Deleted" in out and scope in out
    why = denied_json(server, "access", "explain", "--principal", oid, "--action", RG_READ, "--scope", scope)
    assert why["allowed"] is False and why["matchedAssignments"] == [] and why["nonMatchingAssignments"] == []
    table = denied(server, "access", "explain", "--principal", oid, "--action", RG_READ, "--scope", scope)
    assert (
        "DENIED" in table and "No role assignment or deny assignment of this principal is relevant" in table
    )


def test_explaining_a_data_action_and_deleting_by_id(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-cli-")
    create_group(server, group)
    scope = rg_scope(server, group)
    sp = ok_json(server, "ad", "sp", "create", "--display-name", unique("owner-"))
    created = ok_json(
        server,
        "role",
        "assignment",
        "create",
        "--assignee",
        sp["objectId"],
        "--role",
        OWNER,
        "--scope",
        scope,
        "--description",
        "owns the group",
    )
    assert created["properties"]["description"] == "owns the group"
    container = f"{scope}/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default/containers/c1"
    args = (
        "access",
        "explain",
        "--principal",
        sp["objectId"],
        "--action",
        BLOB_READ,
        "--scope",
        container,
        "--data-action",
    )
    why = denied_json(server, *args)
    assert why["allowed"] is False and why["isDataAction"] is True
    table = denied(server, *args)
    assert "DENIED (not_granted): data action" in table
    assert "control-plane wildcard '*' does not grant data actions" in table
    out = ok(server, "role", "assignment", "delete", "--ids", created["id"])
    assert f"Deleted {created['id']}" in out
    out = ok(server, "role", "assignment", "delete", "--ids", created["id"])
    assert f"Already gone: {created['id']}" in out


def test_role_definitions_and_groups_from_the_cli(server: KeylessServer, unique: Unique) -> None:
    [reader] = ok_json(server, "role", "definition", "list", "--name", "Reader")
    assert reader["name"] == "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    assert reader["properties"]["permissions"][0]["actions"] == ["*/read"]
    table = ok(server, "role", "definition", "list")
    for role in (
        "Owner",
        "Media Services Media Operator",
        "Storage Blob Data Reader",
        "Key Vault Secrets User",
    ):
        assert role in table

    group = unique("rg-cli-")
    create_group(server, group)
    sp = ok_json(server, "ad", "sp", "create", "--display-name", unique("member-"))
    team = ok_json(server, "ad", "group", "create", "--display-name", unique("team-"))
    ok(server, "ad", "group", "member", "add", "--group", team["objectId"], "--member-id", sp["objectId"])
    assert ok_json(server, "ad", "group", "show", "--group", team["objectId"])["members"] == [sp["objectId"]]
    assign(
        server,
        rg_scope(server, group),
        team["objectId"],
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        principalType="Group",
    )
    why = ok_json(
        server,
        "access",
        "explain",
        "--principal",
        sp["objectId"],
        "--action",
        RG_WRITE,
        "--scope",
        rg_scope(server, group),
    )
    assert why["allowed"] is True and why["groupIds"] == [team["objectId"]]
    assert why["matchedAssignments"][0]["principalType"] == "Group"
    listed = ok_json(
        server,
        "role",
        "assignment",
        "list",
        "--scope",
        rg_scope(server, group),
        "--assignee",
        sp["objectId"],
        "--include-groups",
    )
    assert [a["properties"]["principalId"] for a in listed] == [team["objectId"]]


def test_cli_errors_are_arms_and_change_nothing(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-cli-")
    create_group(server, group)
    scope = rg_scope(server, group)
    before = all_assignments(server)
    nobody = "00000000-0000-0000-0000-00000000abcd"
    result = server.cli(
        "role", "assignment", "create", "--assignee", nobody, "--role", "Reader", "--scope", scope
    )
    assert result.returncode == 1
    assert "(PrincipalNotFound)" in result.stderr and "0000000000000000000000000000abcd" in result.stderr
    result = server.cli(
        "role", "assignment", "create", "--assignee", nobody, "--role", "No Such Role", "--scope", scope
    )
    assert result.returncode == 1 and "No role named 'No Such Role'" in result.stderr
    result = server.cli(
        "access", "explain", "--principal", "not-a-guid", "--action", RG_READ, "--scope", scope
    )
    assert result.returncode == 2 and "(InvalidPrincipalId)" in result.stderr  # 1 means "denied"
    result = server.cli(
        "access", "explain", "--principal", nobody, "--action", RG_READ, "--scope", scope, "--output", "yaml"
    )
    assert result.returncode == 2
    assert all_assignments(server) == before
