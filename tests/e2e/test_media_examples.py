"""The scenario programs in examples/ run as written under `keyless run`, as the README walks them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.e2e.arm_helpers import create_group
from tests.e2e.media_helpers import unique
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _run(srv: KeylessServer, script: str, *args: str) -> str:
    done = srv.cli("run", "--", sys.executable, str(ROOT / "examples" / script), *args, timeout=600)
    assert done.returncode == 0, f"{script}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_storage_behind_a_firewall_example(media_server: KeylessServer) -> None:
    group = unique("rg-ex-")
    with media_server.arm() as arm:
        create_group(arm, media_server, group)
    out = _run(media_server, "media_storage.py", group, unique("stfw"), unique("amsfw"))
    assert "storageAuthentication=ManagedIdentity" in out
    assert "container asset-" in out
    assert "upload from outside the firewall: refused (AuthorizationFailure)" in out
    assert "storageAuthentication System: refused (BadRequest: Storage account cannot be accessed.)" in out


def test_customer_managed_key_example(media_server: KeylessServer) -> None:
    group = unique("rg-ex-")
    with media_server.arm() as arm:
        create_group(arm, media_server, group)
    out = _run(media_server, "media_cmk.py", group, unique("kvex")[:20], unique("stcmk"), unique("amscmk"))
    lines = out.splitlines()
    assert lines[0].startswith("encryption=CustomerKey current=https://") and "/keys/cmk/" in lines[0]
    assert lines[1].startswith("rotated: current=https://") and lines[1].endswith(
        "content key unchanged=True"
    )
    assert lines[1].split()[1] != lines[0].split()[1]  # the version moved
    assert lines[2] == "key disabled: refused, account still readable=True"
    assert lines[3] == "key enabled: recovered, content key unchanged=True"
