"""`keyless keyvault key …` and `keyless keyvault secret …` as a user types them, against a running
server (issue: CLI): the service's bundles as JSON, `--query`, tables, paged lists, and Key Vault's
own errors (code and message on stderr, exit 1, no traceback, nothing changed)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.keyvault_helpers import DATA_API, create_vault, policy, vault_client, vault_token
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Rich sizes tables to COLUMNS: wide enough that ids are not folded across lines.
    monkeypatch.setenv("COLUMNS", "400")
    yield


def ok(srv: KeylessServer, *args: str) -> str:
    result = srv.cli("keyvault", *args)
    assert result.returncode == 0, f"keyless keyvault {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ok_json(srv: KeylessServer, *args: str) -> Any:
    return json.loads(ok(srv, *args, "-o", "json"))


def failed(srv: KeylessServer, *args: str, code: str) -> subprocess.CompletedProcess[str]:
    """A Key Vault error: exit 1, ``(code) message`` on stderr, no traceback, nothing on stdout."""
    result = srv.cli("keyvault", *args)
    assert result.returncode == 1, f"{result.returncode}\n{result.stdout}\n{result.stderr}"
    assert f"({code})" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return result


def names(items: list[dict[str, Any]], field: str) -> list[str]:
    return sorted(item[field].split("/")[4] for item in items)


def test_key_commands(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vault = unique("kvcli")
    create_vault(server, group, vault)
    base = f"https://{vault}.vault.azure.net/keys/"

    rsa = ok_json(server, "key", "create", "--vault-name", vault, "-n", "cmk")
    assert rsa["key"]["kty"] == "RSA" and rsa["key"]["kid"].startswith(base + "cmk/")
    assert len(rsa["key"]["n"]) > 300 and "d" not in rsa["key"]  # 2048 bits by default, public only
    assert rsa["attributes"]["enabled"] is True

    # az's `--ops a b` (several values after one flag) and click's `--ops a --ops b`.
    ec = ok_json(
        server, "key", "create", "--vault-name", vault, "-n", "sig", "--kty", "EC", "--curve", "P-384",
        "--ops", "sign", "verify",
    )  # fmt: skip
    assert ec["key"]["crv"] == "P-384" and ec["key"]["key_ops"] == ["sign", "verify"]
    aes = ok_json(
        server, "key", "create", "--vault-name", vault, "-n", "aes", "--kty", "oct-HSM", "--size", "256",
        "--ops", "wrapKey", "--ops", "unwrapKey",
    )  # fmt: skip
    assert aes["key"]["kty"] == "oct-HSM" and aes["key"]["key_ops"] == ["wrapKey", "unwrapKey"]
    big = ok_json(server, "key", "create", "--vault-name", vault, "-n", "big", "--size", "3072")
    assert len(big["key"]["n"]) > 500

    # show: --query alone prints a string bare (for $(...)); --version picks an older version.
    kid = ok(server, "key", "show", "--vault-name", vault, "-n", "cmk", "--query", "key.kid").strip()
    assert kid == rsa["key"]["kid"]
    rotated = ok_json(server, "key", "rotate", "--vault-name", vault, "-n", "cmk")
    assert rotated["key"]["kid"].startswith(base + "cmk/") and rotated["key"]["kid"] != kid
    assert rotated["key"]["key_ops"] == rsa["key"]["key_ops"]
    latest = ok_json(server, "key", "show", "--vault-name", vault, "-n", "cmk")
    assert latest["key"]["kid"] == rotated["key"]["kid"]
    first_version = kid.rsplit("/", 1)[1]
    older = ok_json(server, "key", "show", "--vault-name", vault, "-n", "CMK", "--version", first_version)
    assert older["key"]["kid"] == kid and older["key"]["n"] == rsa["key"]["n"]

    listed = ok_json(server, "key", "list", "--vault-name", vault)
    assert names(listed, "kid") == ["aes", "big", "cmk", "sig"]
    assert all("key" not in item and item["kid"].startswith(base) for item in listed)
    queried = json.loads(ok(server, "key", "list", "--vault-name", vault, "--query", "[?kid!=null].kid"))
    assert sorted(queried) == sorted(item["kid"] for item in listed)

    table = ok(server, "key", "show", "--vault-name", vault, "-n", "sig")
    assert "sig" in table and "EC" in table and "sign verify" in table
    table = ok(server, "key", "list", "--vault-name", vault)
    assert all(name in table for name in ("aes", "big", "cmk", "sig"))
    tsv = ok(
        server, "key", "show", "--vault-name", vault, "-n", "sig", "-o", "tsv", "--query", "key.[kty,crv]"
    )
    assert tsv == "EC\nP-384\n"  # az: one line per list item
    assert ok(server, "key", "list", "--vault-name", vault, "-o", "none") == ""


def test_key_errors_change_nothing(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vault = unique("kvcli")
    create_vault(server, group, vault)
    ok(server, "key", "create", "--vault-name", vault, "-n", "cmk", "--kty", "EC")
    before = ok_json(server, "key", "list", "--vault-name", vault)

    missing = failed(server, "key", "show", "--vault-name", vault, "-n", "nope", code="KeyNotFound")
    assert "nope" in missing.stderr
    failed(
        server, "key", "show", "--vault-name", vault, "-n", "cmk", "--version", "0" * 32, code="KeyNotFound"
    )
    failed(server, "key", "rotate", "--vault-name", vault, "-n", "nope", code="KeyNotFound")
    failed(server, "key", "create", "--vault-name", vault, "-n", "bad", "--kty", "DSA", code="BadParameter")
    failed(server, "key", "create", "--vault-name", vault, "-n", "bad", "--size", "1000", code="BadParameter")
    failed(
        server, "key", "create", "--vault-name", vault, "-n", "bad", "--kty", "EC", "--ops", "wrapKey",
        code="BadParameter",
    )  # fmt: skip
    failed(server, "key", "create", "--vault-name", vault, "-n", "bad_name", code="BadParameter")
    failed(server, "key", "list", "--vault-name", unique("nokv"), code="VaultNotFound")
    failed(server, "key", "list", "--vault-name", "a b", code="VaultNotFound")
    for odd in ("vault-ü", "a\nb"):  # no Host header can carry these: the CLI says so, exit 1
        result = server.cli("keyvault", "key", "list", "--vault-name", odd)
        assert result.returncode == 1 and "could not be sent" in result.stderr, result.stderr
    assert ok_json(server, "key", "list", "--vault-name", vault) == before

    # Usage errors are the CLI's own (exit 2), before anything is sent.
    stray = server.cli("keyvault", "key", "create", "--vault-name", vault, "-n", "x", "stray")
    assert stray.returncode == 2 and "Traceback" not in stray.stderr
    bad_query = server.cli("keyvault", "key", "list", "--vault-name", vault, "--query", "[?")
    assert bad_query.returncode == 2
    assert ok_json(server, "key", "list", "--vault-name", vault) == before


def test_secret_commands(server: KeylessServer, unique: Unique, tmp_path: Path) -> None:
    group = create_group(server, unique)
    vault = unique("kvcli")
    create_vault(server, group, vault)
    base = f"https://{vault}.vault.azure.net/secrets/"

    first = ok_json(server, "secret", "set", "--vault-name", vault, "-n", "db", "--value", "s3cret!")
    assert first["value"] == "s3cret!" and first["id"].startswith(base + "db/")
    assert "contentType" not in first
    second = ok_json(
        server,
        "secret",
        "set",
        "--vault-name",
        vault,
        "-n",
        "db",
        "--value",
        "two",
        "--content-type",
        "text/plain",
    )
    assert second["contentType"] == "text/plain" and second["id"] != first["id"]
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN X-----\nline ü\n-----END X-----\n", encoding="utf-8")
    from_file = ok_json(server, "secret", "set", "--vault-name", vault, "-n", "pem", "--file", str(pem))
    assert from_file["value"] == pem.read_text(encoding="utf-8")

    # The value alone, bare: what `$(keyless keyvault secret show ... --query value)` needs.
    assert ok(server, "secret", "show", "--vault-name", vault, "-n", "db", "--query", "value") == "two\n"
    old = first["id"].rsplit("/", 1)[1]
    shown = ok_json(server, "secret", "show", "--vault-name", vault, "-n", "db", "--version", old)
    assert shown["value"] == "s3cret!" and shown["id"] == first["id"]
    table = ok(server, "secret", "show", "--vault-name", vault, "-n", "db")
    assert "db" in table and "text/plain" in table and "two" in table

    # More than one page (25 a page): the list follows nextLink.
    token = vault_token(server)
    with vault_client(server, vault, token) as kv:
        for i in range(26):
            r = kv.put(f"/secrets/bulk{i:02d}", params={"api-version": DATA_API}, json={"value": str(i)})
            assert r.status_code == 200, r.text
    listed = ok_json(server, "secret", "list", "--vault-name", vault)
    assert names(listed, "id") == sorted(["db", "pem", *(f"bulk{i:02d}" for i in range(26))])
    assert all("value" not in item for item in listed)
    content_types = ok(server, "secret", "list", "--vault-name", vault, "--query", "[?contentType].id")
    assert json.loads(content_types) == [base + "db"]
    assert "bulk25" in ok(server, "secret", "list", "--vault-name", vault)


def test_secret_errors_change_nothing(server: KeylessServer, unique: Unique, tmp_path: Path) -> None:
    group = create_group(server, unique)
    vault = unique("kvcli")
    create_vault(server, group, vault)
    ok(server, "secret", "set", "--vault-name", vault, "-n", "db", "--value", "keep")
    before = ok_json(server, "secret", "list", "--vault-name", vault)

    failed(server, "secret", "show", "--vault-name", vault, "-n", "nope", code="SecretNotFound")
    too_big = tmp_path / "big.txt"
    too_big.write_text("x" * (25 * 1024 + 1))
    failed(
        server,
        "secret",
        "set",
        "--vault-name",
        vault,
        "-n",
        "db",
        "--file",
        str(too_big),
        code="BadParameter",
    )
    failed(server, "secret", "set", "--vault-name", vault, "-n", "a.b", "--value", "x", code="BadParameter")
    long_type = "t" * 300
    failed(
        server, "secret", "set", "--vault-name", vault, "-n", "db", "--value", "x", "--content-type", long_type,
        code="BadParameter",
    )  # fmt: skip
    assert ok_json(server, "secret", "list", "--vault-name", vault) == before
    assert ok(server, "secret", "show", "--vault-name", vault, "-n", "db", "--query", "value") == "keep\n"

    # Refused by the CLI itself (exit 1 or 2), nothing sent.
    huge = tmp_path / "huge.bin"
    huge.write_bytes(b"x" * (1024 * 1024 + 1))
    for args in (
        ("--file", str(huge)),
        ("--file", str(tmp_path / "absent")),
        ("--value", "a", "--file", str(too_big)),
        (),
    ):
        result = server.cli("keyvault", "secret", "set", "--vault-name", vault, "-n", "db", *args)
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert ok(server, "secret", "show", "--vault-name", vault, "-n", "db", "--query", "value") == "keep\n"


def test_refused_by_access_policy(server: KeylessServer, unique: Unique) -> None:
    """The admin may only read: every write is refused (403 Forbidden) and nothing is written."""
    group = create_group(server, unique)
    vault = unique("kvcli")
    reader = policy(server, server.admin["objectId"], keys=["get", "list"], secrets=["get", "list"])
    create_vault(server, group, vault, policies=[reader], admin_policy=False)

    refused = failed(server, "key", "create", "--vault-name", vault, "-n", "cmk", code="Forbidden")
    assert "does not have keys create permission" in refused.stderr
    failed(server, "secret", "set", "--vault-name", vault, "-n", "db", "--value", "x", code="Forbidden")
    assert ok_json(server, "key", "list", "--vault-name", vault) == []
    assert ok_json(server, "secret", "list", "--vault-name", vault) == []

    # No permission at all: even the reads are refused.
    other = unique("kvcli")
    create_vault(server, group, other, admin_policy=False)
    failed(server, "key", "list", "--vault-name", other, code="Forbidden")
    failed(server, "secret", "show", "--vault-name", other, "-n", "db", code="Forbidden")
