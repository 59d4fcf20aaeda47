"""Every SDK generation the issue names, unchanged, each through its own wire format:
azure-keyvault-keys 4.11.0 (api-version 7.6) installed beside the suite's newest keys SDK (4.11.3:
2025-07-01), the newest secrets SDK (4.12: 2026-04-01), and an older api-version the SDKs still
offer (7.4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.keyvault_helpers import create_vault
from tests.e2e.workload_helpers import Unique, create_group, program
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

PROGRAM = """
import json, os
import azure.keyvault.keys as keys_pkg
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
from azure.keyvault.secrets import SecretClient
args = json.loads(DATA)
kwargs = {"api_version": args["api"]} if args["api"] else {}
cred = DefaultAzureCredential()
client = KeyClient(args["url"], cred, **kwargs)
key = client.create_rsa_key(args["name"], size=2048)
crypto = CryptographyClient(key.id, cred, **kwargs)
dek = os.urandom(32)
wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep, dek)
ok = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep, wrapped.encrypted_key).key == dek
secrets = SecretClient(args["url"], cred, **kwargs)
secret = secrets.set_secret(args["name"], "v-" + args["name"])
ok = ok and secrets.get_secret(args["name"]).value == "v-" + args["name"]
print(json.dumps({"sdk": keys_pkg.__version__ if hasattr(keys_pkg, "__version__") else "?", "default": client.api_version, "secrets_default": secrets.api_version, "ok": ok,
                  "listed": sorted(p.name for p in client.list_properties_of_keys())}))
"""


@pytest.fixture(scope="module")
def keys_411(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """azure-keyvault-keys 4.11 from PyPI, in a directory of its own put first on PYTHONPATH."""
    target = tmp_path_factory.mktemp("kv411")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            "azure-keyvault-keys==4.11.0",
        ],
        check=True,
        timeout=600,
    )
    return target


def _run(srv: KeylessServer, code: str, pythonpath: Path | None) -> dict:
    env = srv.base_env()
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "keyless", "run", "--", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_keys_sdk_411_and_newest_and_an_old_api_version(
    server: KeylessServer, unique: Unique, keys_411: Path
) -> None:
    group = create_group(server, unique)
    name = unique("kv")
    create_vault(server, group, name)
    url = f"https://{name}.vault.azure.net"
    old = _run(server, program(PROGRAM, {"url": url, "api": None, "name": "from411"}), keys_411)
    assert old["default"] == "7.6" and old["ok"] is True
    new = _run(server, program(PROGRAM, {"url": url, "api": None, "name": "fromnewest"}), None)
    assert new["ok"] is True and new["default"] == "2025-07-01" and new["secrets_default"] == "2026-04-01"
    legacy = _run(server, program(PROGRAM, {"url": url, "api": "7.4", "name": "from74"}), None)
    assert legacy["ok"] is True
    assert legacy["listed"] == ["from411", "from74", "fromnewest"]
