"""The real JavaScript SDK under `keyless run --as <vm> --direct-imds` (issue 8, item 6).

@azure/identity 4.x (through msal-node) lower-cases the whole URL it builds from
AZURE_POD_IDENTITY_AUTHORITY_HOST and appends a '/'; 3.x keeps only scheme, host and port
(`new URL("/metadata/identity/oauth2/token", base)`). Both must get the VM's token. Skipped when
node/npm are missing or the packages cannot be installed (offline).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.workload_helpers import claims, cli_ok, create_identity, create_vm
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

# Prints {"token": ...} or {"error": ...}; with DROP_PROXY set, the proxy variables are removed
# first, so only the base URL can name the VM.
SCRIPT = """
if (process.env.DROP_PROXY) {
  for (const k of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"]) delete process.env[k];
}
const identity = require(process.argv[2]);
const credential = process.argv[3] === "dac" ? new identity.DefaultAzureCredential() : new identity.ManagedIdentityCredential();
credential.getToken("https://management.azure.com/.default").then(
  (t) => console.log(JSON.stringify({ token: t.token })),
  (e) => console.log(JSON.stringify({ error: String(e && e.message) })),
);
"""


@pytest.fixture(scope="module")
def sdks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """@azure/identity 4 and 3, each installed from npm into its own directory."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed")
    installed: dict[str, Path] = {}
    for major in ("4", "3"):
        folder = tmp_path_factory.mktemp(f"jsidentity{major}")
        try:
            result = subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(folder),
                    f"@azure/identity@{major}",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm install timed out (offline?)")
        if result.returncode != 0:
            pytest.skip(f"npm install @azure/identity@{major} failed (offline?): {result.stderr[-300:]}")
        installed[major] = folder / "node_modules" / "@azure" / "identity"
    return installed


@pytest.fixture(scope="module")
def vm(server: KeylessServer) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    group = f"rgjs{suffix}"
    cli_ok(server, "group", "create", "-n", group)
    uami = create_identity(server, group, f"idjs{suffix}")
    doc = create_vm(server, group, f"vmjs{suffix}", f"[system],{uami['name']}")
    return doc


def _run(
    server: KeylessServer,
    tmp_path: Path,
    sdk: Path,
    vm: dict[str, Any],
    *flags: str,
    drop_proxy: bool = False,
    mode: str = "mi",
) -> dict[str, Any]:
    script = tmp_path / "token.js"
    script.write_text(SCRIPT)
    command = ["node", str(script), str(sdk), mode]
    if drop_proxy:
        command = ["env", "DROP_PROXY=1", *command]
    result = server.cli("run", "--as", vm["name"], *flags, "--", *command, timeout=180)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("major", ["4", "3"])
@pytest.mark.parametrize("mode", ["mi", "dac"])
def test_js_sdk_with_direct_imds(
    server: KeylessServer, sdks: dict[str, Path], vm: dict[str, Any], tmp_path: Path, major: str, mode: str
) -> None:
    out = _run(server, tmp_path, sdks[major], vm, "--direct-imds", mode=mode)
    assert "token" in out, out
    assert claims(out["token"])["oid"] == vm["identity"]["principalId"]


def test_js_sdk_4_with_direct_imds_and_no_proxy(
    server: KeylessServer, sdks: dict[str, Path], vm: dict[str, Any], tmp_path: Path
) -> None:
    """No proxy at all: only the (lower-cased) base URL names the VM."""
    out = _run(server, tmp_path, sdks["4"], vm, "--direct-imds", drop_proxy=True)
    assert "token" in out, out
    assert claims(out["token"])["oid"] == vm["identity"]["principalId"]


@pytest.mark.parametrize("major", ["4", "3"])
def test_js_sdk_through_the_proxy(
    server: KeylessServer, sdks: dict[str, Path], vm: dict[str, Any], tmp_path: Path, major: str
) -> None:
    out = _run(server, tmp_path, sdks[major], vm)
    assert "token" in out, out
    assert claims(out["token"])["oid"] == vm["identity"]["principalId"]
