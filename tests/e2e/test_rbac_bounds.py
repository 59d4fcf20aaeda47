"""Issue 7, breaks 2, 3 and 5, end to end through the resource manager:

2. no caller-chosen input (a scope of 8,000 segments, a long action, a long $filter) costs memory or
   time beyond a bound, nor holds up another client;
3. a role's action patterns are validated on write as Azure does, and matching a pattern that a
   backtracking matcher chokes on holds up no one;
4. a trailing newline (or blank) makes a different name, which RBAC never folds into the scope of
   the resource it resembles.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.rbac_helpers import (
    AUTH_API,
    CONTRIBUTOR,
    MSI_API,
    READER,
    RG_API,
    all_assignments,
    assert_error,
    assign,
    create_group,
    create_sp,
    create_uami,
    custom_roles,
    put_assignment,
    rg_scope,
    sub_scope,
    token_for,
    uami_id,
)
from tests.keyless_server import KeylessServer

Unique = Callable[[str], str]
MIB = 1024 * 1024
EXPLAIN = "/providers/Microsoft.Authorization/explain"
ASSIGNMENTS = "/providers/Microsoft.Authorization/roleAssignments"
UAMIS = "providers/Microsoft.ManagedIdentity/userAssignedIdentities"


def _rss(srv: KeylessServer) -> int:
    assert srv.process is not None
    with open(f"/proc/{srv.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _explain(arm: httpx.Client, scope: str, action: str, **extra: Any) -> httpx.Response:
    return arm.post(f"{scope}{EXPLAIN}", params={"api-version": AUTH_API}, json={"action": action, **extra})


def _deep_scope(srv: KeylessServer, salt: str) -> str:
    """The issue's scope: 8,000 path segments under a resource group."""
    return f"{sub_scope(srv)}/resourceGroups/rg/providers/Microsoft.Foo" + "/t/n" * 3996 + salt


class _Liveness:
    """Runs hostile requests on threads while the test times another client's simple request."""

    def __init__(self, hostile: Callable[[], None], threads: int = 3) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.hostile_sent = 0

        def loop() -> None:
            try:
                while not self.stop.is_set():
                    hostile()
                    self.hostile_sent += 1
            except httpx.TimeoutException:
                pass  # a stuck server: the timed request below reports it
            except BaseException as exc:  # reported by the test, not lost in the thread
                self.errors.append(exc)

        self.threads = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]

    def worst_latency(self, request: Callable[[], httpx.Response], seconds: float = 3.0) -> float:
        for t in self.threads:
            t.start()
        time.sleep(0.3)  # the hostile requests are in flight
        worst = 0.0
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    r = request()
                except httpx.TimeoutException:
                    return float("inf")
                assert r.status_code == 200, r.text
                worst = max(worst, time.monotonic() - started)
                time.sleep(0.05)
        finally:
            self.stop.set()
        assert not self.errors, self.errors
        return worst


# --------------------------------------------------------------------------------------------------
# Break 2: bounded inputs and memory
# --------------------------------------------------------------------------------------------------


def test_a_huge_scope_is_refused_at_once_and_costs_no_memory(
    new_server: Callable[..., KeylessServer],
) -> None:
    srv = new_server()
    nobody = token_for(srv, create_sp(srv, "no-role"))  # signed in, no role anywhere
    before_assignments = all_assignments(srv)
    with srv.arm(nobody) as arm:
        _explain(arm, sub_scope(srv), "Microsoft.Foo/t/read")  # warm up
        rss_before = _rss(srv)
        for i in range(8):
            deep = _deep_scope(srv, str(i))
            started = time.monotonic()
            assert_error(_explain(arm, deep, "Microsoft.Foo/t/read"), 404, "NotFound")
            assert_error(arm.get(f"{deep}{ASSIGNMENTS}", params={"api-version": AUTH_API}), 404, "NotFound")
            assert time.monotonic() - started < 1.0
        grown = _rss(srv) - rss_before
        # Within the path bound but longer than any id: the scope itself is refused.
        long_scope = f"{sub_scope(srv)}/resourceGroups/rg/providers/Microsoft.Foo/t/" + "n" * 1000
        message = assert_error(_explain(arm, long_scope, "Microsoft.Foo/t/read"), 400, "InvalidScope")
        assert len(message) < 400
        r = arm.get(f"{long_scope}{ASSIGNMENTS}", params={"api-version": AUTH_API})
        assert_error(r, 400, "InvalidScope")
        # Short but deeper than any id: refused as the resource manager refuses the path.
        deep_short = f"{sub_scope(srv)}/resourceGroups/rg" + "/t/n" * 40
        assert_error(_explain(arm, deep_short, "Microsoft.Foo/t/read"), 404, "NotFound")
    assert grown < 16 * MIB, f"the server grew by {grown / MIB:.0f} MiB"
    assert all_assignments(srv) == before_assignments


def test_long_actions_filters_and_skip_tokens_are_refused(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    create_group(server, group)
    scope = rg_scope(server, group)
    before = all_assignments(server)
    with server.arm() as arm:
        for action in (
            "Microsoft.Foo/" + "a" * 600,
            "Microsoft.Foo/t/read\n",
            "Microsoft.Foo/" + "a" * 3 * MIB,
        ):
            assert_error(_explain(arm, scope, action), 400, "InvalidAction")
        listing = f"{scope}{ASSIGNMENTS}"
        r = arm.get(
            listing, params={"api-version": AUTH_API, "$filter": "atScope() and " * 200 + "atScope()"}
        )
        assert len(assert_error(r, 400, "InvalidFilter")) < 800
        for value in ("not-a-guid", f"{uuid.uuid4()}\n", "x" * 900):
            for term in (f"principalId eq '{value}'", f"assignedTo('{value}')"):
                r = arm.get(listing, params={"api-version": AUTH_API, "$filter": term})
                assert_error(r, 400, "InvalidPrincipalId")
        # Only what nextLink hands out is a skip token (int() would take '²' and '٣', or fail on 5,000 digits).
        for token in ("²", "٣", "9" * 5000, "-1", "1 "):
            r = arm.get(listing, params={"api-version": AUTH_API, "$skipToken": token})
            assert len(assert_error(r, 400, "InvalidSkipToken")) < 300
    assert all_assignments(server) == before


def test_a_huge_scope_holds_up_no_other_client(new_server: Callable[..., KeylessServer]) -> None:
    server = new_server()  # its own: before the fix, each such request left ~100 MiB behind
    group = "rg-live"
    create_group(server, group)
    nobody = token_for(server, create_sp(server, "no-role"))
    admin = server.admin_token()

    def hostile() -> None:
        with server.arm(nobody) as arm:
            arm.timeout = httpx.Timeout(30)
            r = _explain(arm, _deep_scope(server, uuid.uuid4().hex), "Microsoft.Foo/t/read")
            assert r.status_code < 500, r.text

    with server.arm(admin) as arm:
        arm.timeout = httpx.Timeout(5)
        live = _Liveness(hostile, threads=5)
        worst = live.worst_latency(lambda: arm.get(rg_scope(server, group), params={"api-version": RG_API}))
    assert live.hostile_sent > 0
    assert worst < 1.0, f"a resource-group GET took {worst:.2f} s beside the hostile requests"


# --------------------------------------------------------------------------------------------------
# Break 3: patterns validated on write; matching is linear
# --------------------------------------------------------------------------------------------------


def _role_body(role_name: str, scopes: list[str], **block: Any) -> dict[str, Any]:
    return {"properties": {"roleName": role_name, "assignableScopes": scopes, "permissions": [block]}}


def test_role_patterns_are_validated_as_azure_does(server: KeylessServer, unique: Unique) -> None:
    group = unique("rg-")
    create_group(server, group)
    scope = rg_scope(server, group)
    defs = f"{scope}/providers/Microsoft.Authorization/roleDefinitions"
    roles_before = custom_roles(server)
    with server.arm() as arm:

        def put(body: dict[str, Any]) -> httpx.Response:
            return arm.put(f"{defs}/{uuid.uuid4()}", params={"api-version": AUTH_API}, json=body)

        for bad in (
            "********x!",
            "Microsoft.Foo/**/read",
            "Microsoft.Foo//read",
            " Microsoft.Foo/bars/read",
            "Microsoft.Foo/bars/read\n",
            "Foo/bars/read",
            "",
            "Microsoft.Foo/" + "a" * 600,
        ):
            for field in ("actions", "notActions", "dataActions", "notDataActions"):
                block = {"actions": ["*/read"], field: [bad]} if field != "actions" else {field: [bad]}
                message = assert_error(
                    put(_role_body(unique("r "), [scope], **block)), 400, "InvalidActionOrNotAction"
                )
                assert len(message) < 400
        too_many = [f"Microsoft.Foo/bars{i}/read" for i in range(2001)]
        assert_error(put(_role_body(unique("r "), [scope], actions=too_many)), 400, "InvalidRoleDefinition")
        assert_error(
            put(_role_body(unique("r "), [scope] * 2001, actions=["*/read"])), 400, "InvalidRoleDefinition"
        )
        # A scope is taken as written: a blank or a newline is not trimmed into the group's scope.
        for odd in (f" {scope}", f"{scope}\n"):
            r = put(_role_body(unique("r "), [odd], actions=["*/read"]))
            assert r.status_code in (400, 404), r.text
        # The scope the request names is taken as written too: with a tab it is another, missing group.
        guid = str(uuid.uuid4())
        r = arm.put(
            f"{scope}%09/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            params={"api-version": AUTH_API},
            json=_role_body(unique("r "), [scope], actions=["*/read"]),
        )
        assert_error(r, 404, "ResourceGroupNotFound")
        assert custom_roles(server) == roles_before
        # What Azure documents is accepted: several wildcards, in the middle of a string too.
        r = put(_role_body(unique("r "), [scope], actions=["Microsoft.CostManagement/*/query/*", "*/read"]))
        assert r.status_code == 201, r.text


def test_a_backtracking_pattern_holds_up_no_one(
    new_server: Callable[..., KeylessServer], unique: Unique
) -> None:
    srv = new_server()
    create_group(srv, "rg-live")
    scope = rg_scope(srv, "rg-live")
    sp = create_sp(srv, "pattern-owner")
    # Valid (Azure's shape, wildcards anywhere) and, as a regular expression, catastrophic: a
    # backtracking matcher tries every way of spreading 20 wildcards over the action.
    pattern = "Microsoft.Foo/" + "*a" * 20 + "*b*"
    role = str(uuid.uuid4())
    with srv.arm() as arm:
        r = arm.put(
            f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            params={"api-version": AUTH_API},
            json=_role_body("backtracking", [scope], actions=[pattern]),
        )
        assert r.status_code == 201, r.text
    assign(srv, scope, sp["objectId"], role)
    token = token_for(srv, sp)
    action = "Microsoft.Foo/" + "a" * 480
    with srv.arm(token) as arm:
        started = time.monotonic()
        r = _explain(arm, scope, action)
        assert r.status_code == 200, r.text
        assert r.json()["allowed"] is False
        assert time.monotonic() - started < 1.0

    def hostile() -> None:
        with srv.arm(token) as arm:
            arm.timeout = httpx.Timeout(10)
            assert _explain(arm, scope, action).status_code == 200

    with srv.arm() as arm:
        arm.timeout = httpx.Timeout(5)
        live = _Liveness(hostile)
        worst = live.worst_latency(lambda: arm.get(scope, params={"api-version": RG_API}))
    assert live.hostile_sent > 0
    assert worst < 1.0, f"a resource-group GET took {worst:.2f} s beside the pattern checks"


# --------------------------------------------------------------------------------------------------
# Break 5: a trailing newline is a different name, never the same scope
# --------------------------------------------------------------------------------------------------


def _identity_names(srv: KeylessServer, group: str) -> list[str]:
    with srv.arm() as arm:
        r = arm.get(f"{rg_scope(srv, group)}/{UAMIS}", params={"api-version": MSI_API})
    assert r.status_code == 200, r.text
    return sorted(item["name"] for item in r.json()["value"])


def test_a_trailing_newline_neither_creates_nor_reads_through_another_scope(
    server: KeylessServer, unique: Unique
) -> None:
    group = unique("rg-")
    create_group(server, group)
    create_uami(server, group, "solo")
    create_uami(server, group, "prod-id")
    writer, reader = create_sp(server, unique("solo-contrib-")), create_sp(server, unique("prod-reader-"))
    assign(server, uami_id(server, group, "solo"), writer["objectId"], CONTRIBUTOR)
    assign(server, uami_id(server, group, "prod-id"), reader["objectId"], READER)
    names_before, assignments_before = _identity_names(server, group), all_assignments(server)

    with server.arm(token_for(server, writer)) as arm:
        solo = uami_id(server, group, "solo")
        assert arm.get(solo, params={"api-version": MSI_API}).status_code == 200
        for suffix in ("%0A", "%0D", "%09", "%0A%0A"):
            r = arm.put(f"{solo}{suffix}", params={"api-version": MSI_API}, json={"location": "westeurope"})
            assert_error(r, 400, "InvalidResourceName")
    assert _identity_names(server, group) == names_before

    with server.arm(token_for(server, reader)) as arm:
        prod = uami_id(server, group, "prod-id")
        assert arm.get(prod, params={"api-version": MSI_API}).status_code == 200
        for suffix in ("%0A", "%0D", "%09", "%20"):
            r = arm.get(f"{prod}{suffix}", params={"api-version": MSI_API})
            assert_error(r, 403, "AuthorizationFailed")
            # RBAC's own API parses the scope the same way: no read of prod-id's assignments either.
            r = arm.get(f"{prod}{suffix}{ASSIGNMENTS}", params={"api-version": AUTH_API})
            assert_error(r, 403, "AuthorizationFailed")
            assert_error(
                _explain(arm, f"{prod}{suffix}", "Microsoft.Foo/t/read", principalId=writer["objectId"]),
                403,
                "AuthorizationFailed",
            )

    with server.arm() as arm:
        # Ids are GUIDs as whole strings: a role assignment name with a newline is not one.
        r = put_assignment(
            arm, server, rg_scope(server, group), reader["objectId"], READER, name=f"{uuid.uuid4()}%0A"
        )
        assert_error(r, 400, "InvalidRoleAssignmentId")
        r = arm.get(
            f"/subscriptions/{server.subscription_id}%0A/resourceGroups/{group}",
            params={"api-version": RG_API},
        )
        assert_error(r, 400, "InvalidSubscriptionId")
    assert all_assignments(server) == assignments_before
    assert _identity_names(server, group) == names_before
