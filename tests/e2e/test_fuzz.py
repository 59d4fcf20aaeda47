"""Malformed requests on every route the server has: never a 5xx, never a hang, never a change.

Over a thousand requests, generated from a fixed seed (``fuzz_cases.py``, ``fuzz_identity.py``,
``fuzz_keyvault.py``, ``fuzz_media.py``), go to every route family: the resource manager's
subscriptions, groups, resources, lists and actions, ``Microsoft.Authorization`` at every scope,
``Keyless.Directory``, the authority's discovery, token endpoints and issuer documents, IMDS
through the proxy and directly, the App Service endpoint, the edge's own routes and proxy, Key
Vault (``Microsoft.KeyVault`` vaults, access policies, name checks and deleted vaults; the data
plane at ``{vault}.vault.azure.net``: keys, versions, crypto operations, rotation policies,
secrets, deleted objects, backup and restore, ``rng``), and Media Services on the resource
manager (``Microsoft.Media/mediaservices`` accounts, their lists, ``syncStorageKeys`` and
``listEdgePolicies``; ``checkNameAvailability`` and the operation status and result URLs of a
location; assets, content key policies, streaming policies and locators, with their actions);
directly and through ``CONNECT``, with the admin's token (so they reach deep) and without. Each is
hostile in one way: bad or deep JSON, wrong types, NUL and control characters and trailing
newlines in path segments, query, form fields and headers, over-long values, bad
percent-encoding, odd methods, huge headers and bodies, failing preconditions. Every request that
could write carries a body, a name or a precondition that must be refused, so the database (every
row of every table) must come out exactly as it went in; it is compared after each such request
to the resource manager (Media Services included) or Key Vault, so a failure names the request.
The identity endpoints, the authority, Graph and the edge only mint tokens or read, and have no
write a body could be refused for; they are compared once, at the end. The suite runs this on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from tests.e2e.fuzz_helpers import ANSWER_WITHIN, RawClient, Snapshots, make_targets
from tests.e2e.fuzz_media import MediaGenerator, make_media_targets
from tests.keyless_server import KeylessServer

SEED = 20260507
FAMILIES = {"arm", "authority", "imds-proxy", "imds-direct", "app-service", "edge", "graph", "keyvault"}
# Families whose every write is compared on its own (each carries a refused name or body).
COMPARED = frozenset({"arm", "keyvault"})
# Methods that could change something; the state is compared after each request made with one.
WRITES = frozenset({b"PUT", b"PATCH", b"POST", b"DELETE"})


def test_malformed_requests_on_every_route(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server()
    ids = make_targets(srv, SEED)
    ids.values.update(make_media_targets(srv, ids.values))
    requests = list(MediaGenerator(srv, ids, random.Random(SEED)).all())
    assert len(requests) >= 1000
    assert {r.family for r in requests} == FAMILIES
    snapshots = Snapshots(srv)
    client = RawClient(srv)
    failures: list[str] = []
    started = time.monotonic()
    try:
        state = snapshots.take()
        for request in requests:
            answer = client.send(request)
            if answer.status >= 500 or answer.status < 0 or answer.seconds >= ANSWER_WITHIN:
                got = f"{answer.status} in {answer.seconds:.1f}s"
                failures.append(f"{got}: {request.describe()} -> {answer.body[:160]!r}")
            if request.method not in WRITES or request.family not in COMPARED:
                continue  # reads and the other families are checked once, at the end
            now = snapshots.take()
            if now != state:
                changed = Snapshots.changed(state, now)
                failures.append(f"changed {changed} ({answer.status}): {request.describe()}")
                state = now
        final = snapshots.take()
    finally:
        snapshots.close()
    elapsed = time.monotonic() - started
    if final != state:
        failures.append(f"changed {Snapshots.changed(state, final)} by a read or an identity endpoint")
    assert not failures, f"{len(failures)} of {len(requests)} failed:\n" + "\n".join(failures[:40])
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
    with srv.arm(ids.admin_token) as arm:  # and the server still answers
        r = arm.get(f"/subscriptions/{srv.subscription_id}", params={"api-version": "2022-12-01"})
        assert r.status_code == 200, r.text
    print(f"{len(requests)} hostile requests answered in {elapsed:.1f}s")
