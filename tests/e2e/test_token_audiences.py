"""Token scopes and audiences: what the authority and the identity endpoints issue tokens for.

Driven over the wire as the clients send it: MSAL for Java's scope string (raw form post, as MSAL
Java writes it), azure-identity's ClientSecretCredential under ``keyless run``, IMDS through the proxy.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.arm_helpers import create_identity, fic_path
from tests.e2e.rbac_helpers import create_sp
from tests.e2e.workload_helpers import (
    MSI_API,
    Unique,
    claims,
    create_group,
    create_vm,
    exchange_assertion,
    host_token,
    imds_get,
    jwt_header,
    run_json,
    vm_id,
)
from tests.keyless_server import KeylessServer

LOGIN = "https://login.microsoftonline.com"
EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
# Azure's first-party resources users call with managed identities (as the request spells them).
FIRST_PARTY = (
    "https://database.windows.net/",
    "https://ossrdbms-aad.database.windows.net",
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
    "https://cognitiveservices.azure.com",
    "https://eventhubs.azure.net",
    "https://servicebus.azure.net",
    "499b84ac-1321-427f-aa17-267ca6975798",
    "https://vault.azure.net",
    "https://storage.azure.com/",
    "https://myaccount.blob.core.windows.net",
    "https://datalake.azure.net/",
    "https://dev.azuresynapse.net",
    "https://mycluster.westeurope.kusto.windows.net",
    "https://api.loganalytics.io",
    "https://batch.core.windows.net/",
    "https://rest.media.azure.net",
)


def _token(srv: KeylessServer, scope: str, client_id: str = "", secret: str = "") -> httpx.Response:
    with srv.client() as http:
        return http.post(
            f"{LOGIN}/{srv.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id or srv.admin["clientId"],
                "client_secret": secret or srv.admin["clientSecret"],
                "scope": scope,
            },
        )


def _aadsts(r: httpx.Response, error: str, code: int) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    body: dict[str, Any] = r.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert "access_token" not in body
    return body


def test_msal_java_scopes_give_a_token(server: KeylessServer) -> None:
    # MSAL for Java always adds its OIDC scopes; Entra ignores them for client credentials.
    r = _token(server, "openid profile offline_access https://management.azure.com/.default")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert claims(token)["aud"] == "https://management.azure.com"
    with server.arm(token) as arm:
        ok = arm.get(f"/subscriptions/{server.subscription_id}", params={"api-version": "2022-12-01"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "scope",
    [
        "https://management.azure.com/.default https://vault.azure.net/.default",
        "https://graph.microsoft.com/.default https://graph.microsoft.com/User.Read",
        "openid https://management.azure.com/.default https://storage.azure.com/.default",
    ],
)
def test_several_resources_in_one_request_are_refused(server: KeylessServer, scope: str) -> None:
    body = _aadsts(_token(server, scope), "invalid_scope", 70011)
    assert body["error_description"].startswith(
        "AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for "
        f"the input parameter 'scope' is not valid. The scope {scope} is not valid."
    )


@pytest.mark.parametrize("resource", FIRST_PARTY)
def test_first_party_resources_for_a_service_principal(server: KeylessServer, resource: str) -> None:
    r = _token(server, resource + "/.default")
    assert r.status_code == 200, r.text
    got = claims(r.json()["access_token"])
    # A v1.0 token carries the resource as the request spelled it (before "/.default").
    assert (got["aud"], got["ver"], got["iss"]) == (
        resource,
        "1.0",
        f"https://sts.windows.net/{server.tenant_id}/",
    )


def test_unknown_resources_are_still_refused(server: KeylessServer) -> None:
    for resource in ("https://nothing.example.com", str(uuid.uuid4()), f"api://{uuid.uuid4()}"):
        body = _aadsts(_token(server, resource + "/.default"), "invalid_resource", 500011)
        assert f"The resource principal named {resource} was not found" in body["error_description"]


def test_tokens_for_an_app_registration_of_the_tenant(server: KeylessServer, unique: Unique) -> None:
    # `keyless ad sp create -n my-api`, then another principal asks for a token for it.
    api = server.cli("ad", "sp", "create", "-n", unique("my-api"), "--output", "json")
    assert api.returncode == 0, api.stderr
    app_id = json.loads(api.stdout)["appId"]
    caller = create_sp(server, unique("caller"))
    for resource in (app_id, f"api://{app_id}", f"api://{app_id.upper()}"):
        r = _token(server, resource + "/.default", caller["appId"], caller["clientSecret"])
        assert r.status_code == 200, r.text
        got = claims(r.json()["access_token"])
        assert (got["aud"], got["appid"], got["oid"]) == (resource, caller["appId"], caller["objectId"])


def test_identifier_uris_name_an_app(server: KeylessServer, unique: Unique) -> None:
    uri = f"api://{unique('orders')}"
    with server.arm() as arm:
        r = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": "2024-01-01"},
            json={"displayName": unique("orders"), "identifierUris": [uri]},
        )
        assert r.status_code == 201, r.text
        assert r.json()["servicePrincipalNames"] == [r.json()["appId"], uri]
        # The same URI for another app of the tenant: 409, and no second app is made.
        again = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": "2024-01-01"},
            json={"displayName": "dup", "identifierUris": [uri.upper() + "/"]},
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "Conflict"), again.text
        # A Microsoft service's URI is not a customer app's.
        taken = arm.post(
            "/providers/Keyless.Directory/servicePrincipals",
            params={"api-version": "2024-01-01"},
            json={"displayName": "graph", "identifierUris": ["https://graph.microsoft.com"]},
        )
        assert (taken.status_code, taken.json()["error"]["code"]) == (400, "HostNameNotOnVerifiedDomain")
        for bad in (["not a uri"], "api://x", [1], ["api://" + "x" * 300]):
            refused = arm.post(
                "/providers/Keyless.Directory/servicePrincipals",
                params={"api-version": "2024-01-01"},
                json={"displayName": "bad", "identifierUris": bad},
            )
            assert (refused.status_code, refused.json()["error"]["code"]) == (400, "InvalidRequestContent")
    with server.client(base_url="https://graph.microsoft.com") as graph:
        dup = graph.get(
            "/v1.0/servicePrincipals",
            params={"$filter": "displayName eq 'dup'"},
            headers={"Authorization": f"Bearer {server.admin_token('https://graph.microsoft.com')}"},
        )
    assert (dup.status_code, dup.json()["value"]) == (200, []), dup.text
    token = _token(server, uri + "//.default")
    assert token.status_code == 200, token.text
    assert claims(token.json()["access_token"])["aud"] == uri + "/"


def test_azure_identity_gets_graph_and_devops_tokens(server: KeylessServer) -> None:
    code = (
        "import json, base64\n"
        "from azure.identity import DefaultAzureCredential\n"
        "cred = DefaultAzureCredential()\n"
        "out = []\n"
        "for scope in ('https://graph.microsoft.com/.default', '499b84ac-1321-427f-aa17-267ca6975798/.default',"
        " 'https://database.windows.net//.default'):\n"
        "    t = cred.get_token(scope).token.split('.')[1]\n"
        "    out.append(json.loads(base64.urlsafe_b64decode(t + '=' * (-len(t) % 4)))['aud'])\n"
        "print(json.dumps(out))\n"
    )
    assert run_json(server, code) == [
        "https://graph.microsoft.com",
        "499b84ac-1321-427f-aa17-267ca6975798",
        "https://database.windows.net/",
    ]


def test_managed_identity_audiences_on_imds(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    password = host_token(server, vm_id(server, group, vm["name"]), "2024-07-01")
    api = create_sp(server, unique("api"))
    for resource in ("https://database.windows.net/", "https://graph.microsoft.com", api["appId"]):
        r = imds_get(server, password, resource)
        assert r.status_code == 200, r.text
        assert (r.json()["resource"], claims(r.json()["access_token"])["aud"]) == (resource, resource)
    missing = imds_get(server, password, "https://nothing.example.com")
    assert missing.status_code == 400, missing.text
    assert missing.json()["error"] == "invalid_resource"
    assert "AADSTS500011" in missing.json()["error_description"]


def test_token_exchange_audience_is_a_v2_token_and_an_accepted_assertion(
    server: KeylessServer, unique: Unique
) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, unique("vm"), "")
    password = host_token(server, vm_id(server, group, vm["name"]), "2024-07-01")
    r = imds_get(server, password, "api://AzureADTokenExchange")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    got, head = claims(token), jwt_header(token)
    principal = vm["identity"]["principalId"]
    assert got["iss"] == f"https://login.microsoftonline.com/{server.tenant_id}/v2.0"
    assert (got["ver"], got["aud"], got["sub"], got["oid"]) == ("2.0", EXCHANGE_APP_ID, principal, principal)
    assert got["azp"] == r.json()["client_id"] and "appid" not in got and "idp" not in got
    assert "x5t" not in head
    # The managed identity as a federated credential of a user-assigned identity (issuer: the
    # tenant's v2.0 issuer, subject: its object id, audience: the exchange URI).
    with server.arm() as arm:
        target = create_identity(arm, server, group, "target")
        fic = arm.put(
            fic_path(server, group, "target", "from-vm"),
            params={"api-version": MSI_API},
            json={
                "properties": {
                    "issuer": f"https://login.microsoftonline.com/{server.tenant_id}/v2.0",
                    "subject": principal,
                    "audiences": ["api://AzureADTokenExchange"],
                }
            },
        )
        assert fic.status_code in (200, 201), fic.text
    exchanged = exchange_assertion(server, target["properties"]["clientId"], token)
    assert exchanged.status_code == 200, exchanged.text
    assert claims(exchanged.json()["access_token"])["oid"] == target["properties"]["principalId"]
    # A v1.0 token (another audience) of the same identity is no such assertion.
    other = imds_get(server, password, "https://management.azure.com/").json()["access_token"]
    refused = exchange_assertion(server, target["properties"]["clientId"], other)
    assert refused.status_code in (400, 401), refused.text
    assert refused.json()["error_codes"][0] in (700211, 700212)
