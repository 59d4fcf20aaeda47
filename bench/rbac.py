"""RBAC: the cost of one access decision, and of enforcement on a resource GET over HTTPS.

1. In process, with 4,000 role assignments in one subscription (1,000 principals, 200 custom
   roles beside the built-ins, assignments at subscription, group and resource scope), the
   evaluator's decision for random (principal, action, scope) triples: p50 and p99.
   Targets (issue 4): p50 <= 20 us, p99 <= 100 us. Peers: Cedar's reported medians of 4-11 us
   (OOPSLA 2024, as quoted in rbac-and-arm.md section 4.2); OPA's budget of ~1 ms per decision.
   Also shown: the whole check a request makes (the shared version-row read plus the decision),
   and the index (re)build a replica does when another replica changed something.
2. Over HTTPS: GET of a user-assigned identity by a principal holding Reader on its group, with
   wrk (16 connections), on a server with enforcement on (and the same 4,000 assignments loaded)
   and on a second server started with KEYLESS_RBAC_ENFORCEMENT=off (a benchmark-only switch),
   interleaved in one run. Target: on >= 0.8x off.

    python bench/rbac.py [--seconds 10] [--decisions 100000] [--database-url postgresql://...]

Part 1 uses a temporary SQLite file, or ``--database-url`` (an empty PostgreSQL database) to see
the version-row read over PostgreSQL.  Part 2 uses SQLite (leave KEYLESS_BENCH_DATABASE_URL unset:
its two servers need databases of their own).  The assignments are written straight into the database in bulk, then
the version row is bumped: exactly what a write by another replica looks like.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from keyless.authority import principals
from keyless.directory import Directory
from keyless.rbac.builtin_roles import BUILTIN_ROLES
from keyless.rbac.service import RbacService
from keyless.store.db import Database
from keyless.store.tables import rbac_state, role_assignments, role_definitions
from wrk import Measurement, start_server, wrk

ASSIGNMENTS = 4000
PRINCIPALS = 1000
CUSTOM_ROLES = 200
GROUPS = 50
RESOURCES_PER_GROUP = 20
CEDAR_MEDIAN_US = (4.0, 11.0)
OPA_BUDGET_US = 1000.0

PROVIDERS = {
    "Microsoft.ManagedIdentity": [
        "userAssignedIdentities",
        "userAssignedIdentities/federatedIdentityCredentials",
    ],
    "Microsoft.Media": ["mediaservices", "mediaservices/assets", "mediaservices/transforms/jobs"],
    "Microsoft.KeyVault": ["vaults", "vaults/secrets"],
    "Microsoft.Storage": ["storageAccounts", "storageAccounts/blobServices/containers"],
    "Microsoft.Compute": ["virtualMachines", "disks"],
    "Microsoft.Web": ["sites", "serverFarms"],
}
VERBS = ["read", "write", "delete", "listKeys/action", "restart/action"]


def actions() -> list[str]:
    out = [f"{ns}/{t}/{v}" for ns, types in PROVIDERS.items() for t in types for v in VERBS]
    out += [
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    ]
    return out


def custom_role(rng: random.Random, index: int) -> dict[str, Any]:
    """A plausible custom role: a few exact actions and wildcards, sometimes a NotAction."""
    ns = rng.choice(list(PROVIDERS))
    types = PROVIDERS[ns]
    allowed = [f"{ns}/{rng.choice(types)}/{rng.choice(VERBS)}" for _ in range(rng.randint(2, 6))]
    allowed += rng.sample(
        [f"{ns}/*/read", f"{ns}/{types[0]}/*", "*/read", f"{ns}/*/{types[-1].split('/')[-1]}/*"], 2
    )
    block: dict[str, Any] = {"actions": allowed}
    if rng.random() < 0.3:
        block["notActions"] = [f"{ns}/{types[0]}/delete"]
    return {
        "name": str(uuid.UUID(int=rng.getrandbits(128))),
        "roleName": f"bench role {index}",
        "permissions": [block],
    }


@dataclass
class World:
    db: Database
    subscription: str
    tenant: str
    principal_ids: list[str]
    resource_scopes: list[str]
    group_scopes: list[str]


def load_world(db: Database, rng: random.Random) -> World:
    """1,000 principals, 200 custom roles and 4,000 assignments, bulk-written, then one version bump."""
    tenant, subscription, admin = Directory(db).bootstrap()
    sub_scope = f"/subscriptions/{subscription}"
    group_scopes = [f"{sub_scope}/resourceGroups/rg{g}" for g in range(GROUPS)]
    resource_scopes = []
    for g in group_scopes:
        for r in range(RESOURCES_PER_GROUP):
            ns = rng.choice(list(PROVIDERS))
            top = PROVIDERS[ns][0]
            resource_scopes.append(f"{g}/providers/{ns}/{top}/res{r}")
    now = time.time()
    with db.write() as conn:
        ids = [
            principals.create_principal(
                conn, tenant_id=tenant, principal_type=principals.SERVICE_PRINCIPAL, display_name=f"p{i}"
            ).object_id
            for i in range(PRINCIPALS)
        ]
        roles = [custom_role(rng, i) for i in range(CUSTOM_ROLES)]
        conn.execute(
            role_definitions.insert(),
            [
                {
                    "name": r["name"],
                    "tenant_id": tenant,
                    "role_name": r["roleName"],
                    "role_name_key": r["roleName"].lower(),
                    "description": "",
                    "assignable_scopes": orjson.dumps([sub_scope]).decode(),
                    "permissions": orjson.dumps(r["permissions"]).decode(),
                    "created_at": now,
                    "created_by": admin,
                    "updated_at": now,
                    "updated_by": admin,
                }
                for r in roles
            ],
        )
        role_names = [r["name"] for r in roles] + [r.name for r in BUILTIN_ROLES]
        rows = []
        for i in range(ASSIGNMENTS - 1):  # the admin's Owner assignment is the 4,000th
            roll = rng.random()
            scope = sub_scope if roll < 0.05 else rng.choice(group_scopes if roll < 0.6 else resource_scopes)
            name = str(uuid.UUID(int=rng.getrandbits(128)))
            rows.append(
                {
                    "id_key": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}".lower(),
                    "name": name,
                    "scope": scope,
                    "scope_key": scope.lower(),
                    "role_definition_name": role_names[i % len(role_names)]
                    if i < len(role_names)
                    else rng.choice(role_names),
                    "principal_id": ids[i % PRINCIPALS],
                    "principal_type": "ServicePrincipal",
                    "created_at": now,
                    "created_by": admin,
                    "updated_at": now,
                    "updated_by": admin,
                }
            )
        conn.execute(role_assignments.insert(), rows)
        conn.execute(rbac_state.update().values(version=rbac_state.c.version + 1))
    return World(db, subscription, tenant, ids, resource_scopes, group_scopes)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def in_process(decisions: int, database_url: str | None) -> dict[str, float]:
    rng = random.Random(4)  # reproducible workload
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(database_url or f"sqlite:///{Path(tmp) / 'rbac.db'}")
        db.migrate()
        world = load_world(db, rng)
        service = RbacService(db)
        started = time.perf_counter()
        snap = service.snapshot()
        build_ms = (time.perf_counter() - started) * 1000
        pool = actions()
        scopes = (
            world.resource_scopes
            + [f"{s}/children/c1" for s in world.resource_scopes[:200]]
            + world.group_scopes
        )
        triples = [
            (rng.choice(world.principal_ids), rng.choice(pool), rng.choice(scopes)) for _ in range(decisions)
        ]
        for p, a, s in triples[:20000]:  # warm caches (scope chains, per-role memo), as a server's are
            snap.index.decide(snap.principals_of(p), a, s, data_action=False)
        timings, allowed = [], 0
        clock = time.perf_counter_ns
        for p, a, s in triples:
            t0 = clock()
            decision = snap.index.decide(snap.principals_of(p), a, s, data_action=False)
            timings.append((clock() - t0) / 1000)
            allowed += decision.allowed
        timings.sort()
        # The whole per-request check: read the shared version row, then decide.
        full = []
        for p, a, s in triples[:20000]:
            t0 = clock()
            service.decide(p, a, s)
            full.append((clock() - t0) / 1000)
        full.sort()
        explain = []
        for p, a, s in triples[:5000]:
            t0 = clock()
            snap.index.explain(snap.principals_of(p), a, s, data_action=False)
            explain.append((clock() - t0) / 1000)
        explain.sort()
        db.dispose()
    return {
        "p50": statistics.median(timings),
        "p99": percentile(timings, 0.99),
        "allowed": allowed / len(triples),
        "check_p50": statistics.median(full),
        "check_p99": percentile(full, 0.99),
        "explain_p50": statistics.median(explain),
        "build_ms": build_ms,
    }


def prepare_http(server: Any, load: bool) -> tuple[str, str]:
    """A group, an identity in it, a principal with Reader on the group; its token and the path."""
    with server.arm() as arm:
        sub = server.subscription_id
        group = f"/subscriptions/{sub}/resourceGroups/bench"
        assert arm.put(
            group, params={"api-version": "2021-04-01"}, json={"location": "westeurope"}
        ).status_code in (200, 201)
        target = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
        assert arm.put(
            target, params={"api-version": "2023-01-31"}, json={"location": "westeurope"}
        ).status_code in (200, 201)
        sp = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": "2024-01-01"},
            json={"displayName": "reader"},
        ).json()
        r = arm.put(
            f"{group}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            params={"api-version": "2022-04-01"},
            json={
                "properties": {
                    "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
                    "principalId": sp["objectId"],
                }
            },
        )
        assert r.status_code == 201, r.text
    if load:
        # The same 4,000-assignment population, written by "another replica" (this process).
        url = server.database_url or f"sqlite:///{server.data_dir / 'keyless.db'}"
        db = Database(url)
        rng = random.Random(4)
        with db.write() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(role_assignments)).scalar_one()
        extra = _extra_assignments(db, rng, server.subscription_id, ASSIGNMENTS - count)
        db.dispose()
        assert extra > 0
    token = server.client_token(sp["appId"], sp["clientSecret"])
    with httpx.Client(verify=server.ssl_context(), trust_env=False) as http:
        r = http.get(
            f"{server.direct_url}{target}?api-version=2023-01-31",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
    return token, f"{target}?api-version=2023-01-31"


def _extra_assignments(db: Database, rng: random.Random, subscription: str, count: int) -> int:
    now = time.time()
    sub_scope = f"/subscriptions/{subscription}"
    with db.write() as conn:
        ids = [
            principals.create_principal(
                conn,
                tenant_id=conn.execute(
                    sa.text("select value from instance_settings where key='tenant_id'")
                ).scalar_one(),
                principal_type=principals.SERVICE_PRINCIPAL,
                display_name=f"p{i}",
            ).object_id
            for i in range(PRINCIPALS)
        ]
        roles = [r.name for r in BUILTIN_ROLES]
        rows = []
        for i in range(count):
            scope = f"{sub_scope}/resourceGroups/rg{rng.randrange(GROUPS)}"
            if rng.random() < 0.4:
                scope += (
                    f"/providers/Microsoft.Storage/storageAccounts/st{rng.randrange(RESOURCES_PER_GROUP)}"
                )
            name = str(uuid.UUID(int=rng.getrandbits(128)))
            rows.append(
                {
                    "id_key": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}".lower(),
                    "name": name,
                    "scope": scope,
                    "scope_key": scope.lower(),
                    "role_definition_name": rng.choice(roles),
                    "principal_id": ids[i % PRINCIPALS],
                    "principal_type": "ServicePrincipal",
                    "created_at": now,
                    "created_by": "bench",
                    "updated_at": now,
                    "updated_by": "bench",
                }
            )
        conn.execute(role_assignments.insert(), rows)
        conn.execute(rbac_state.update().values(version=rbac_state.c.version + 1))
    return count


def over_https(seconds: int) -> tuple[Measurement, Measurement]:
    with tempfile.TemporaryDirectory() as tmp:
        on = start_server(Path(tmp) / "on")
        os.environ["KEYLESS_RBAC_ENFORCEMENT"] = "off"
        try:
            off = start_server(Path(tmp) / "off")
        finally:
            os.environ.pop("KEYLESS_RBAC_ENFORCEMENT", None)
        try:
            on_token, on_path = prepare_http(on, load=True)
            off_token, off_path = prepare_http(off, load=False)
            results: dict[str, list[Measurement]] = {"on": [], "off": []}
            for _ in range(2):  # interleaved, so drift on this noisy machine hits both
                for label, server, token, path in (
                    ("on", on, on_token, on_path),
                    ("off", off, off_token, off_path),
                ):
                    results[label].append(
                        wrk(
                            server.direct_url,
                            path=path,
                            headers={"Authorization": f"Bearer {token}"},
                            seconds=seconds,
                        )
                    )
        finally:
            on.stop()
            off.stop()
    best = {k: max(v, key=lambda m: m.requests_per_second) for k, v in results.items()}
    return best["on"], best["off"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument(
        "--database-url", help="an EMPTY PostgreSQL database for part 1 (default: a temporary SQLite file)"
    )
    args = parser.parse_args()

    r = in_process(args.decisions, args.database_url)
    print(
        f"In process: {ASSIGNMENTS:,} assignments, {PRINCIPALS:,} principals, {CUSTOM_ROLES} custom roles "
        f"({r['allowed']:.0%} of the random decisions allowed)"
    )
    print(
        f"{'decision p50':<44} {r['p50']:8.2f} us   (target <= 20 us; Cedar median 4-11 us: "
        f"{r['p50'] / CEDAR_MEDIAN_US[1]:.2f}x-{r['p50'] / CEDAR_MEDIAN_US[0]:.2f}x of it)"
    )
    print(
        f"{'decision p99':<44} {r['p99']:8.2f} us   (target <= 100 us; OPA budget ~1 ms: "
        f"{OPA_BUDGET_US / r['p99']:.0f}x under it)"
    )
    print(
        f"{'whole check (version-row read + decision) p50':<44} {r['check_p50']:8.2f} us   p99 {r['check_p99']:8.2f} us"
    )
    print(f"{'explain (every assignment considered) p50':<44} {r['explain_p50']:8.2f} us")
    print(f"{'index build after a remote change':<44} {r['build_ms']:8.1f} ms")

    on, off = over_https(args.seconds)
    print(on.line("GET identity over HTTPS, enforcement on"))
    print(off.line("GET identity over HTTPS, enforcement off"))
    print(f"{'on / off':<44} {on.requests_per_second / off.requests_per_second:10.2f}x   (target >= 0.80x)")


if __name__ == "__main__":
    main()
