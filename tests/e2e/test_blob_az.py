"""`az storage container|blob …` against the Blob data plane, with ``--auth-mode login`` (bearer) and
with the account key (Shared Key), as a user would run them under `keyless run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.storage_helpers import BLOB_ROLES, account_keys, account_name, create_account, grant
from tests.e2e.test_az_cli import Az, az, az_bin  # noqa: F401 (fixtures)
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


def test_az_storage_blob_with_login_and_key(
    server: KeylessServer,
    az: Az,  # noqa: F811 (the fixture)
    unique: Unique,
    tmp_path: Path,
) -> None:
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    grant(server, server.admin["objectId"], BLOB_ROLES["contributor"], doc["id"])
    az.run("login", "--service-principal", "-u", "$AZURE_CLIENT_ID", "--password=$AZURE_CLIENT_SECRET",
           "--tenant", "$AZURE_TENANT_ID")  # fmt: skip
    login = ("--account-name", name, "--auth-mode", "login")
    assert az.json("storage", "container", "create", "-n", "azc", *login) == {"created": True}
    source = tmp_path / "in.txt"
    source.write_text("from az")
    az.run("storage", "blob", "upload", "-c", "azc", "-n", "dir/in.txt", "-f", str(source), *login)
    listed = az.json("storage", "blob", "list", "-c", "azc", *login)
    assert [b["name"] for b in listed] == ["dir/in.txt"]
    assert listed[0]["properties"]["contentLength"] == 7
    target = tmp_path / "out.txt"
    az.run("storage", "blob", "download", "-c", "azc", "-n", "dir/in.txt", "-f", str(target), *login)
    assert target.read_text() == "from az"
    shown = az.json("storage", "blob", "show", "-c", "azc", "-n", "dir/in.txt", *login)
    assert shown["properties"]["contentLength"] == 7
    key = account_keys(server, group, name)[0]
    keyed = ("--account-name", name, "--account-key", key)
    assert [c["name"] for c in az.json("storage", "container", "list", *keyed)] == ["azc"]
    az.run("storage", "blob", "delete", "-c", "azc", "-n", "dir/in.txt", *keyed)
    assert az.json("storage", "blob", "list", "-c", "azc", *login) == []
    failed = az.run("storage", "blob", "show", "-c", "azc", "-n", "dir/in.txt", *login, ok=False)
    assert failed.returncode != 0 and "BlobNotFound" in failed.stderr + failed.stdout
