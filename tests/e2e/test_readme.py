"""Every command example in the README's "Use it" section runs as written, in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.keyless_server import KeylessServer

ROOT = Path(__file__).resolve().parents[2]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    usage = text.split("## Use it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", usage, flags=re.S)


def test_readme_has_usage_examples() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 3
    assert any("keyless run --as" in b for b in blocks)


def test_readme_usage_examples_run_as_written(new_server) -> None:  # type: ignore[no-untyped-def]
    # Customer keys checked every 2 s, so the Media Services walk-through sees rotation at once.
    srv: KeylessServer = new_server(env={"KEYLESS_MEDIA_KEY_CHECK_INTERVAL": "2"})
    env = srv.base_env()
    # As after `. .venv/bin/activate`: the keyless command and this Python first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for block in readme_blocks():
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (
            f"README block failed:\n{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
        outputs.append(done.stdout)
    everything = "\n".join(outputs)
    # admin_app printed the new identity's principal id; workload_app printed token audiences.
    assert GUID.search(everything)
    assert "https://management.azure.com" in everything
    assert "mirid=/subscriptions/" in everything
    assert "appid=" in everything  # federated_app
    # workload_arm: refused before the role assignment, allowed after it.
    assert "refused: (AuthorizationFailed)" in everything
    assert "id1 clientId=" in everything
    assert "DENIED" in everything
    # The Media Services walk-through: storage behind a firewall, and a customer-managed key.
    assert (
        "storageAuthentication System: refused (BadRequest: Storage account cannot be accessed.)"
        in everything
    )
    assert "key enabled: recovered, content key unchanged=True" in everything
    # Scenario 3: the VM's job encoded the clip; the Function app was refused.
    assert "account amsjobs1: encryption=CustomerKey storage=ManagedIdentity" in everything
    assert re.search(r"job job-\w+: Finished", everything)
    assert "downloaded /tmp/keyless-encoded/" in everything
    assert "listContentKeys: refused (AuthorizationFailed)" in everything
