"""Keyless OIDC issuers (``Keyless.Workload/oidcIssuers``) and the invariant they restore: no
principal obtains a token for an identity unless someone with rights over that identity
allowed it (issue 7, break 1).

The attack that used to work: a service principal that is Contributor on rgA only made an
identity there with a federated credential copying (issuer, subject, audience) of a credential
on rgB's identity, had Keyless mint an assertion for it, and exchanged that assertion for a
token of rgB's identity. Every way in is tried here, each beside a control that succeeds.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.rbac_helpers import (
    CONTRIBUTOR,
    OWNER,
    READER,
    assign,
    create_group,
    create_sp,
    create_uami,
    rg_scope,
    token_for,
)
from tests.e2e.workload_helpers import (
    LOGIN,
    MSI_API,
    VM_API,
    claims,
    create_vm,
    exchange_assertion,
)
from tests.keyless_server import KeylessServer

ISSUER_TYPE = "Keyless.Workload/oidcIssuers"
ISSUER_API = "2026-11-01"
EXCHANGE = "api://AzureADTokenExchange"


def _issuer_path(srv: KeylessServer, group: str, name: str) -> str:
    return f"{rg_scope(srv, group)}/providers/{ISSUER_TYPE}/{name}"


def _arm(srv: KeylessServer, token: str | None = None) -> httpx.Client:
    return srv.arm(token)


def _put_issuer(
    srv: KeylessServer, group: str, name: str, token: str | None = None, **body: Any
) -> httpx.Response:
    with _arm(srv, token) as arm:
        return arm.put(
            _issuer_path(srv, group, name),
            params={"api-version": ISSUER_API},
            json={"location": "westeurope", **body},
        )


def _mint(
    srv: KeylessServer, issuer_id: str, subject: str, token: str | None = None, **extra: Any
) -> httpx.Response:
    with _arm(srv, token) as arm:
        return arm.post(
            f"{issuer_id}/issueToken", params={"api-version": ISSUER_API}, json={"subject": subject, **extra}
        )


def _federate(
    srv: KeylessServer, identity_id: str, name: str, issuer: str, subject: str, token: str | None = None
) -> httpx.Response:
    with _arm(srv, token) as arm:
        return arm.put(
            f"{identity_id}/federatedIdentityCredentials/{name}",
            params={"api-version": MSI_API},
            json={"properties": {"issuer": issuer, "subject": subject, "audiences": [EXCHANGE]}},
        )


def _refused(r: httpx.Response, code: int) -> None:
    assert r.status_code in (400, 401), r.text
    assert r.json()["error_codes"] == [code], r.text
    assert "access_token" not in r.json()


@pytest.fixture(scope="module")
def world(server: KeylessServer) -> dict[str, Any]:
    """rgB: identity uamiB (Owner of rgB) trusting rgB's issuer for a subject; a VM in rgB.
    The attacker: a service principal that is Contributor on rgA only."""
    suffix = uuid.uuid4().hex[:8]
    rg_a, rg_b = f"rga{suffix}", f"rgb{suffix}"
    create_group(server, rg_a)
    create_group(server, rg_b)
    r = _put_issuer(server, rg_b, "cluster")
    assert r.status_code == 201, r.text
    issuer = r.json()
    uami_b = create_uami(server, rg_b, "uamib")
    assign(server, rg_scope(server, rg_b), uami_b["properties"]["principalId"], OWNER)
    subject = "system:serviceaccount:media:ingest"
    assert (
        _federate(server, uami_b["id"], "cluster", issuer["properties"]["issuerURL"], subject).status_code
        == 201
    )
    vm = create_vm(server, rg_b, f"vm{suffix}", "")
    attacker = create_sp(server, f"attacker{suffix}")
    assign(server, rg_scope(server, rg_a), attacker["objectId"], CONTRIBUTOR)
    return {
        "rg_a": rg_a,
        "rg_b": rg_b,
        "issuer": issuer,
        "uami_b": uami_b,
        "subject": subject,
        "vm": vm,
        "attacker": attacker,
        "attacker_token": token_for(server, attacker),
    }


def test_issuer_resource_has_its_own_url_and_discovery(server: KeylessServer, world: dict[str, Any]) -> None:
    issuer = world["issuer"]
    url = issuer["properties"]["issuerURL"]
    assert issuer["type"] == ISSUER_TYPE
    assert re.fullmatch(rf"{LOGIN}/{server.tenant_id}/keyless/issuers/[0-9a-f]{{32}}", url)
    with server.client() as http:
        doc = http.get(f"{url}/.well-known/openid-configuration")
        assert doc.status_code == 200, doc.text
        assert doc.json()["issuer"] == url
        keys = http.get(doc.json()["jwks_uri"])
        assert keys.status_code == 200 and keys.json()["keys"]
        # A made-up issuer URL of the same shape is no issuer.
        ghost = http.get(
            f"{LOGIN}/{server.tenant_id}/keyless/issuers/{uuid.uuid4().hex}/.well-known/openid-configuration"
        )
        assert ghost.status_code == 404
        # The tenant-wide issuer of old is gone.
        old = http.get(f"{LOGIN}/{server.tenant_id}/keyless/workload/.well-known/openid-configuration")
        assert old.status_code == 404


def test_control_an_authorized_mint_is_exchanged(server: KeylessServer, world: dict[str, Any]) -> None:
    """The admin (Owner everywhere) mints rgB's issuer's token: uamiB's token, as the owner allowed."""
    r = _mint(server, world["issuer"]["id"], world["subject"])
    assert r.status_code == 200, r.text
    minted = r.json()
    assert minted["issuer"] == world["issuer"]["properties"]["issuerURL"]
    assert claims(minted["token"])["iss"] == minted["issuer"]
    assert claims(minted["token"])["aud"] == EXCHANGE
    got = exchange_assertion(server, world["uami_b"]["properties"]["clientId"], minted["token"])
    assert got.status_code == 200, got.text
    assert claims(got.json()["access_token"])["oid"] == world["uami_b"]["properties"]["principalId"]


def test_the_reported_escalation_is_refused(server: KeylessServer, world: dict[str, Any]) -> None:
    """Contributor on rgA copies uamiB's credential onto its own identity: nothing mints for it."""
    token = world["attacker_token"]
    evil = create_uami_as(server, world["rg_a"], "evil", token)
    trusted = world["issuer"]["properties"]["issuerURL"]
    # Copying the credential is allowed (anyone may trust any issuer for their own identity)...
    assert _federate(server, evil["id"], "copy", trusted, world["subject"], token).status_code == 201
    # ...but no credential mints assertions any more,
    with _arm(server, token) as arm:
        r = arm.post(
            f"{evil['id']}/federatedIdentityCredentials/copy/issueAssertion", params={"api-version": MSI_API}
        )
    assert r.status_code == 404, r.text
    # and minting as rgB's issuer needs rights on it, which the attacker lacks.
    r = _mint(server, world["issuer"]["id"], world["subject"], token)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "AuthorizationFailed"
    assert "token" not in r.json()


def test_an_issuer_of_ones_own_mints_only_for_its_own_url(
    server: KeylessServer, world: dict[str, Any]
) -> None:
    """The attacker's own issuer (rgA) mints the same subject, under its own URL: uamiB refuses it,
    and a PUT cannot take over rgB's issuer URL."""
    token = world["attacker_token"]
    victim_url = world["issuer"]["properties"]["issuerURL"]
    r = _put_issuer(server, world["rg_a"], "mine", token, properties={"issuerURL": victim_url})
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["properties"]["issuerURL"] != victim_url
    again = _put_issuer(server, world["rg_a"], "mine", token, properties={"issuerURL": victim_url})
    assert again.status_code == 200 and again.json()["properties"] == mine["properties"]
    minted = _mint(server, mine["id"], world["subject"], token)
    assert minted.status_code == 200, minted.text
    assert claims(minted.json()["token"])["iss"] == mine["properties"]["issuerURL"]
    _refused(
        exchange_assertion(server, world["uami_b"]["properties"]["clientId"], minted.json()["token"]), 700211
    )
    # Nor does any audience or subject the attacker picks change that.
    odd = _mint(server, mine["id"], world["subject"], token, audience="https://management.azure.com")
    _refused(
        exchange_assertion(server, world["uami_b"]["properties"]["clientId"], odd.json()["token"]), 700211
    )


def test_no_other_token_stands_in_for_an_assertion(server: KeylessServer, world: dict[str, Any]) -> None:
    """Tokens the attacker can get that Keyless signed with the same keys: its own access token,
    and an assertion re-labelled with the victim issuer's URL (signature breaks)."""
    uami_b = world["uami_b"]["properties"]["clientId"]
    _refused(exchange_assertion(server, uami_b, world["attacker_token"]), 700211)
    mine = _put_issuer(server, world["rg_a"], "relabel", world["attacker_token"]).json()
    minted = _mint(server, mine["id"], world["subject"], world["attacker_token"]).json()["token"]
    head, payload, signature = minted.split(".")
    import base64
    import json

    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["iss"] = world["issuer"]["properties"]["issuerURL"]
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    _refused(exchange_assertion(server, uami_b, f"{head}.{forged}.{signature}"), 700027)


def test_rights_on_the_issuer_decide_who_mints(server: KeylessServer, world: dict[str, Any]) -> None:
    """Reader on rgB's issuer cannot mint; Contributor on it can (as a cluster admin can)."""
    sp = create_sp(server, "issuer-reader")
    assign(server, world["issuer"]["id"], sp["objectId"], READER)
    token = token_for(server, sp)
    r = _mint(server, world["issuer"]["id"], world["subject"], token)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"
    with _arm(server, token) as arm:
        shown = arm.get(world["issuer"]["id"], params={"api-version": ISSUER_API})
    assert shown.status_code == 200
    operator = create_sp(server, "issuer-operator")
    assign(server, world["issuer"]["id"], operator["objectId"], CONTRIBUTOR)
    r = _mint(server, world["issuer"]["id"], world["subject"], token_for(server, operator))
    assert r.status_code == 200, r.text


def test_host_token_chain_is_closed(server: KeylessServer, world: dict[str, Any]) -> None:
    """The end of the reported chain: the attacker cannot read rgB's VM's host token."""
    with _arm(server, world["attacker_token"]) as arm:
        r = arm.post(f"{world['vm']['id']}/listHostToken", params={"api-version": VM_API})
    assert r.status_code == 403, r.text
    assert "hostToken" not in r.text


def test_deleting_an_issuer_revokes_its_tokens_and_its_url(
    server: KeylessServer, world: dict[str, Any]
) -> None:
    group = world["rg_b"]
    made = _put_issuer(server, group, "shortlived").json()
    url = made["properties"]["issuerURL"]
    identity = create_uami(server, group, "shortlived-id")
    assert _federate(server, identity["id"], "cred", url, "sub-1").status_code == 201
    minted = _mint(server, made["id"], "sub-1").json()["token"]
    assert exchange_assertion(server, identity["properties"]["clientId"], minted).status_code == 200
    with _arm(server) as arm:
        assert arm.delete(made["id"], params={"api-version": ISSUER_API}).status_code == 200
    _refused(exchange_assertion(server, identity["properties"]["clientId"], minted), 700027)
    # The same name again is a new issuer with a new URL: the old credential does not trust it.
    again = _put_issuer(server, group, "shortlived").json()
    assert again["properties"]["issuerURL"] != url
    fresh = _mint(server, again["id"], "sub-1").json()["token"]
    _refused(exchange_assertion(server, identity["properties"]["clientId"], fresh), 700211)


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({}, "subject"),
        ({"subject": ""}, "subject"),
        ({"subject": 7}, "subject"),
        ({"subject": "a\nb"}, "subject"),
        ({"subject": "x" * 601}, "subject"),
        ({"subject": "s", "audience": ["a"]}, "audience"),
        ({"subject": "s", "expirationSeconds": 59}, "expirationSeconds"),
        ({"subject": "s", "expirationSeconds": True}, "expirationSeconds"),
        ({"subject": "s", "expirationSeconds": 1800.5}, "expirationSeconds"),
    ],
)
def test_bad_mint_requests_are_400(
    server: KeylessServer, world: dict[str, Any], body: dict[str, Any], target: str
) -> None:
    with _arm(server) as arm:
        r = arm.post(f"{world['issuer']['id']}/issueToken", params={"api-version": ISSUER_API}, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadRequest"
    assert r.json()["error"]["target"] == target
    assert "token" not in r.json()


def create_uami_as(srv: KeylessServer, group: str, name: str, token: str) -> dict[str, Any]:
    with _arm(srv, token) as arm:
        r = arm.put(
            f"{rg_scope(srv, group)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
            params={"api-version": MSI_API},
            json={"location": "westeurope"},
        )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created
