"""Workload identity federation: a user-assigned identity trusts an issuer and subject (a
federated identity credential); `keyless run --as UAMI --federated` runs unchanged
WorkloadIdentityCredential / DefaultAzureCredential programs; the token endpoint refuses
assertions that do not match (reference identity-endpoints.md §6)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.workload_helpers import (
    LOGIN,
    MSI_API,
    Unique,
    assert_arm_accepts,
    assert_mi_token,
    claims,
    cli_ok,
    create_group,
    create_identity,
    exchange_assertion,
    parse_env_output,
    published_kids,
    run_json,
)
from tests.keyless_server import KeylessServer

EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
ISSUER_TYPE = "Keyless.Workload/oidcIssuers"
ISSUER_API = "2026-11-01"
GITHUB = "https://token.actions.githubusercontent.com"

PROGRAM = """
import asyncio, json, os
from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential
from azure.identity.aio import WorkloadIdentityCredential as AioWorkload

out = {"env": {k: os.environ.get(k) for k in (
    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST",
    "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT")}}
out["file"] = open(os.environ["AZURE_FEDERATED_TOKEN_FILE"]).read()
out["wic arm"] = WorkloadIdentityCredential().get_token("https://management.azure.com/.default").token
out["dac vault"] = DefaultAzureCredential().get_token("https://vault.azure.net/.default").token

async def main():
    async with AioWorkload() as c:
        out["aio storage"] = (await c.get_token("https://storage.azure.com/.default")).token

asyncio.run(main())
print(json.dumps(out))
"""


def _fic_id(uami: dict[str, Any], name: str) -> str:
    return f"{uami['id']}/federatedIdentityCredentials/{name}"


def test_federated_workload_runs_unchanged_programs(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    uami = create_identity(server, group, unique("id"))
    subject = f"system:serviceaccount:media:{unique('sa')}"
    cli_ok(
        server,
        "identity",
        "federate",
        "-g",
        group,
        "--identity-name",
        uami["name"],
        "-n",
        "local",
        "--subject",
        subject,
    )
    fic = _get(server, _fic_id(uami, "local"))
    # `federate` made the group's Keyless OIDC issuer, and the credential trusts its URL.
    issuer = _get(server, _issuer_id(server, group), ISSUER_API)
    issuer_url = issuer["properties"]["issuerURL"]
    assert re.fullmatch(rf"{LOGIN}/{server.tenant_id}/keyless/issuers/[0-9a-f]{{32}}", issuer_url)
    assert fic["properties"] == {"issuer": issuer_url, "subject": subject, "audiences": [EXCHANGE_AUDIENCE]}

    out = run_json(server, PROGRAM, "--as", uami["name"], "--federated")
    env = out.pop("env")
    assert env["AZURE_CLIENT_ID"] == uami["properties"]["clientId"]
    assert env["AZURE_TENANT_ID"] == server.tenant_id
    assert env["AZURE_AUTHORITY_HOST"] == LOGIN
    assert env["AZURE_CLIENT_SECRET"] is None and env["IDENTITY_ENDPOINT"] is None
    # The assertion file holds Keyless's workload issuer's JWT for the credential's subject...
    assertion = claims(out.pop("file").strip())
    assert assertion["iss"] == issuer_url
    assert assertion["sub"] == subject
    assert assertion["aud"] == EXCHANGE_AUDIENCE
    # ...and `keyless run` removes it when the program ends.
    assert not Path(env["AZURE_FEDERATED_TOKEN_FILE"]).exists()

    kids = published_kids(server)
    audiences = {
        "wic arm": "https://management.azure.com",
        "dac vault": "https://vault.azure.net",
        "aio storage": "https://storage.azure.com",
    }
    assert set(out) == set(audiences)
    for label, token in out.items():
        assert_mi_token(
            server,
            token,
            audience=audiences[label],
            object_id=uami["properties"]["principalId"],
            client_id=uami["properties"]["clientId"],
            mirid=uami["id"],
            az_rid=None,
            kids=kids,
        )
    assert_arm_accepts(server, out["wic arm"], group)


def test_federated_env_and_missing_credential(server: KeylessServer, unique: Unique) -> None:
    """`keyless env --as UAMI --federated` exports the four variables; an identity with no
    credential trusting Keyless's issuer is a clear error."""
    group = create_group(server, unique)
    trusted = create_identity(server, group, unique("id"))
    cli_ok(
        server,
        "identity",
        "federate",
        "-g",
        group,
        "--identity-name",
        trusted["name"],
        "-n",
        "local",
        "--subject",
        "s1",
    )
    exported, _unset = parse_env_output(cli_ok(server, "env", "--as", trusted["id"], "--federated"))
    assert exported["AZURE_CLIENT_ID"] == trusted["properties"]["clientId"]
    assert exported["AZURE_TENANT_ID"] == server.tenant_id
    assert exported["AZURE_AUTHORITY_HOST"] == LOGIN
    assert exported["AZURE_FEDERATED_TOKEN_FILE"]
    assert "AZURE_CLIENT_SECRET" not in exported

    untrusted = create_identity(server, group, unique("id"))
    cli_ok(
        server, "identity", "federate", "-g", group, "--identity-name", untrusted["name"], "-n", "github",
        "--subject", "repo:o/r:ref:refs/heads/main", "--issuer", GITHUB,
    )  # fmt: skip
    result = server.run_python("print('ran')", "--as", untrusted["name"], "--federated")
    assert result.returncode == 1
    assert "ran" not in result.stdout
    assert "no federated credential trusting a Keyless OIDC issuer" in " ".join(result.stderr.split())
    # A credential mints nothing itself (only an issuer resource does, for those with rights on it).
    with server.arm() as arm:
        r = arm.post(f"{_fic_id(untrusted, 'github')}/issueAssertion", params={"api-version": MSI_API})
    assert r.status_code == 404, r.text
    assert "assertion" not in r.text


# --- the token endpoint's refusals ------------------------------------------------------------


def _get(server: KeylessServer, path: str, api_version: str = MSI_API) -> dict[str, Any]:
    with server.arm() as arm:
        r = arm.get(path, params={"api-version": api_version})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _issuer_id(server: KeylessServer, group: str, name: str = "keyless-workload") -> str:
    return f"/subscriptions/{server.subscription_id}/resourceGroups/{group}/providers/{ISSUER_TYPE}/{name}"


def _issue_assertion(server: KeylessServer, group: str, subject: str) -> str:
    """A token of the group's Keyless OIDC issuer for ``subject``, minted as the admin."""
    with server.arm() as arm:
        r = arm.post(
            f"{_issuer_id(server, group)}/issueToken",
            params={"api-version": ISSUER_API},
            json={"subject": subject},
        )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _assert_refused(r: httpx.Response, status: int, error: str, code: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "access_token" not in body


@pytest.fixture(scope="module")
def federation(server: KeylessServer) -> dict[str, Any]:
    """Identity A trusts Keyless's issuer for subject-a, B for subject-b; G trusts only GitHub."""
    suffix = uuid.uuid4().hex[:8]
    group = f"rgfed{suffix}"
    cli_ok(server, "group", "create", "-n", group)
    made: dict[str, Any] = {"group": group}
    for key, subject, issuer in (
        ("a", f"subject-a-{suffix}", None),
        ("b", f"subject-b-{suffix}", None),
        ("g", "repo:octo/app:ref:refs/heads/main", GITHUB),
    ):
        uami = create_identity(server, group, f"id{key}{suffix}")
        args = [
            "identity",
            "federate",
            "-g",
            group,
            "--identity-name",
            uami["name"],
            "-n",
            "fic",
            "--subject",
            subject,
        ]
        cli_ok(server, *args, *(["--issuer", issuer] if issuer else []))
        made[key] = uami
    made["assertion a"] = _issue_assertion(server, group, f"subject-a-{suffix}")
    made["assertion b"] = _issue_assertion(server, group, f"subject-b-{suffix}")
    return made


def test_matching_assertion_is_exchanged(server: KeylessServer, federation: dict[str, Any]) -> None:
    """The control for the refusals below: A's own assertion gets A's token."""
    r = exchange_assertion(server, federation["a"]["properties"]["clientId"], federation["assertion a"])
    assert r.status_code == 200, r.text
    token = claims(r.json()["access_token"])
    assert token["oid"] == federation["a"]["properties"]["principalId"]
    assert token["appid"] == federation["a"]["properties"]["clientId"]


def test_assertion_for_another_subject_is_700213(server: KeylessServer, federation: dict[str, Any]) -> None:
    """B's assertion (same issuer, B's subject) presented for A."""
    r = exchange_assertion(server, federation["a"]["properties"]["clientId"], federation["assertion b"])
    _assert_refused(r, 400, "invalid_client", 700213)


def test_assertion_from_an_untrusted_issuer_is_700211(
    server: KeylessServer, federation: dict[str, Any]
) -> None:
    """G trusts only GitHub's issuer; a Keyless assertion is from an issuer G does not trust."""
    r = exchange_assertion(server, federation["g"]["properties"]["clientId"], federation["assertion a"])
    _assert_refused(r, 400, "invalid_client", 700211)


def test_tampered_assertion_is_700027(server: KeylessServer, federation: dict[str, Any]) -> None:
    head, payload, signature = federation["assertion a"].split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    tampered = f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    r = exchange_assertion(server, federation["a"]["properties"]["clientId"], tampered)
    _assert_refused(r, 401, "invalid_client", 700027)


def test_forged_subject_is_700027(server: KeylessServer, federation: dict[str, Any]) -> None:
    """A's assertion with the payload changed to B's subject keeps A's signature: refused."""
    head, payload, signature = federation["assertion a"].split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = claims(federation["assertion b"])["sub"]
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    r = exchange_assertion(server, federation["b"]["properties"]["clientId"], f"{head}.{forged}.{signature}")
    _assert_refused(r, 401, "invalid_client", 700027)
