"""Jobs on several replicas: two `keyless up` processes on one database (the same root key and
blob directory, as the README's scale-out asks) share the queue — each claims its own job — and
when one is killed mid-job, the other takes the job over once the lease runs out. Also: a
replica encodes at most KEYLESS_MEDIA_JOB_CONCURRENCY jobs at once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.job_helpers import (
    ENCODING_API,
    asset_files,
    builtin,
    create_asset,
    create_transform,
    job,
    job_body,
    upload,
    wait_job,
)
from tests.e2e.media_helpers import MediaSetup, unique, wait_for
from tests.keyless_server import KeylessServer, fresh_database_url
from tests.media_clips import make_clip

pytestmark = pytest.mark.slow

JOB_ENV = {"KEYLESS_MEDIA_JOB_POLL_INTERVAL": "0.2", "KEYLESS_MEDIA_JOB_LEASE": "3"}


def _long_jobs(
    setup: MediaSetup, account: str, count: int, preset: str = "H264MultipleBitrate1080p"
) -> list[str]:
    """``count`` jobs of a 1080p encode of a 12 s clip (many seconds each)."""
    create_asset(setup, account, "input")
    upload(setup, account, "input", "clip.mp4", make_clip(12.0))
    create_transform(setup, account, "hd", builtin(preset))
    names = []
    for i in range(count):
        create_asset(setup, account, f"out{i}")
        r = setup.child(
            "PUT", account, "transforms", f"hd/jobs/j{i}", job_body("input", f"out{i}"), api=ENCODING_API
        )
        assert r.status_code == 201, r.text
        names.append(f"j{i}")
    return names


def _states(setup: MediaSetup, account: str, names: list[str]) -> list[str]:
    return [job(setup, account, "hd", n)["properties"]["state"] for n in names]


def _cancel_all(setup: MediaSetup, account: str, names: list[str]) -> None:
    for name in names:
        r = setup.child("POST", account, "transforms", f"hd/jobs/{name}/cancelJob", api=ENCODING_API)
        assert r.status_code == 200, r.text
    for name in names:
        assert wait_job(setup, account, "hd", name, timeout=60)["properties"]["state"] == "Canceled"


def test_a_replica_runs_at_most_its_concurrency(new_server: Callable[..., KeylessServer]) -> None:
    srv = new_server({**JOB_ENV, "KEYLESS_MEDIA_JOB_CONCURRENCY": "2"})
    setup = MediaSetup(srv)
    account = unique("ams")
    setup.create_account(account)
    names = _long_jobs(setup, account, 3)
    wait_for(lambda: _states(setup, account, names).count("Processing") == 2, timeout=60)
    states = _states(setup, account, names)
    assert states.count("Processing") == 2 and states.count("Queued") == 1, states
    _cancel_all(setup, account, names)


def test_two_replicas_share_the_queue_and_take_over_a_dead_ones_job(tmp_path: Path) -> None:
    with fresh_database_url() as url:
        database = url or f"sqlite:///{tmp_path / 'shared.db'}"
        blobs = tmp_path / "blobs"
        env = {**JOB_ENV, "KEYLESS_BLOB_DIR": str(blobs)}
        first = KeylessServer(tmp_path / "a", database, env).start()
        second_dir = tmp_path / "b"
        second_dir.mkdir()
        shutil.copy(first.data_dir / "root.key", second_dir / "root.key")  # one root key for all replicas
        second = KeylessServer(second_dir, database, env).start()
        try:
            setup = MediaSetup(first)
            account = unique("ams")
            setup.create_account(account)
            names = _long_jobs(setup, account, 2, "H264SingleBitrate1080p")
            # One replica each (concurrency 1): both jobs run at once.
            wait_for(lambda: _states(setup, account, names) == ["Processing", "Processing"], timeout=60)
            first.kill9()
            # The survivor finishes its own job, then takes over the dead replica's once the lease runs out.
            view = MediaSetup.__new__(MediaSetup)
            view.__dict__.update({**setup.__dict__, "srv": second})
            for name in names:
                done = wait_job(view, account, "hd", name, timeout=300)["properties"]
                assert done["state"] == "Finished", [o.get("error") for o in done["outputs"]]
            for i in range(2):
                assert len([f for f in asset_files(view, account, f"out{i}") if f.endswith(".mp4")]) >= 1
        finally:
            for srv in (first, second):
                if srv.process is not None and srv.process.poll() is None:
                    srv.stop()
