"""Microsoft Graph, the slice az reads: raw calls to https://graph.microsoft.com as az makes them
(through the proxy, with a token from the authority), and Graph's errors for bad input."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.rbac_helpers import DIRECTORY_API, create_sp, token_for
from tests.e2e.workload_helpers import (
    Unique,
    create_group,
    create_identity,
    create_vm,
    host_token,
    imds_get,
    vm_id,
)
from tests.keyless_server import KeylessServer

GRAPH = "https://graph.microsoft.com"
SP_TYPE = "#microsoft.graph.servicePrincipal"
GROUP_TYPE = "#microsoft.graph.group"


@pytest.fixture
def graph(server: KeylessServer) -> Iterator[httpx.Client]:
    # az asks for "https://graph.microsoft.com//.default"; the token's aud keeps that slash.
    token = server.admin_token(GRAPH + "/")
    with server.client(base_url=GRAPH, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _directory(server: KeylessServer, method: str, path: str, body: Any = None) -> dict[str, Any]:
    with server.arm() as arm:
        r = arm.request(
            method, f"/providers/Keyless.Directory{path}", params={"api-version": DIRECTORY_API}, json=body
        )
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


def _graph_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert {"date", "request-id", "client-request-id"} <= error["innerError"].keys()
    assert "value" not in r.json()
    return str(error["message"])


def test_get_by_ids_names_every_kind_of_principal(
    server: KeylessServer, graph: httpx.Client, unique: Unique
) -> None:
    sp = create_sp(server, unique("app"))
    group = _directory(server, "POST", "/groups", {"displayName": unique("team")})
    rg = create_group(server, unique)
    uami = create_identity(server, rg, unique("id"))
    unknown = str(uuid.uuid4())
    ids = [
        sp["objectId"],
        unknown,
        group["objectId"],
        uami["properties"]["principalId"],
        server.admin["objectId"],
    ]
    r = graph.post(
        "/v1.0/directoryObjects/getByIds",
        json={"ids": ids, "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["@odata.context"] == f"{GRAPH}/v1.0/$metadata#directoryObjects"
    found = {o["id"]: o for o in r.json()["value"]}
    assert set(found) == set(ids) - {unknown}
    app = found[sp["objectId"]]
    assert (app["@odata.type"], app["displayName"], app["appId"]) == (SP_TYPE, sp["displayName"], sp["appId"])
    assert app["servicePrincipalNames"][0] == sp["appId"]
    assert app["servicePrincipalType"] == "Application"
    mi = found[uami["properties"]["principalId"]]
    assert (mi["servicePrincipalType"], mi["appId"]) == ("ManagedIdentity", uami["properties"]["clientId"])
    assert mi["alternativeNames"][0] == "isExplicit=True"
    assert mi["alternativeNames"][1].lower() == uami["id"].lower()
    assert found[group["objectId"]]["@odata.type"] == GROUP_TYPE
    assert found[group["objectId"]]["securityEnabled"] is True
    only_groups = graph.post("/v1.0/directoryObjects/getByIds", json={"ids": ids, "types": ["group"]})
    assert [o["id"] for o in only_groups.json()["value"]] == [group["objectId"]]


def test_service_principal_filters_as_az_sends_them(
    server: KeylessServer, graph: httpx.Client, unique: Unique
) -> None:
    name = unique("filtered")
    sp = create_sp(server, name)
    for expression in (
        f"servicePrincipalNames/any(c:c eq '{sp['appId']}')",
        f"appId eq '{sp['appId'].upper()}'",
        f"displayName eq '{name}'",
        f"startswith(displayName, '{name[:-2]}') and servicePrincipalType eq 'Application'",
        f"id in ('{sp['objectId']}', '{uuid.uuid4()}')",
    ):
        r = graph.get("/v1.0/servicePrincipals", params={"$filter": expression})
        assert r.status_code == 200, (expression, r.text)
        assert [o["id"] for o in r.json()["value"]] == [sp["objectId"]], expression
    none = graph.get(
        "/v1.0/servicePrincipals", params={"$filter": "servicePrincipalNames/any(c:c eq 'api://none')"}
    )
    assert none.json()["value"] == []
    one = graph.get(f"/v1.0/servicePrincipals/{sp['objectId']}")
    assert (one.status_code, one.json()["appId"]) == (200, sp["appId"])
    assert one.json()["@odata.context"] == f"{GRAPH}/v1.0/$metadata#servicePrincipals/$entity"
    by_app = graph.get(f"/v1.0/servicePrincipals(appId='{sp['appId']}')", params={"$select": "id,appId"})
    assert by_app.json() == {
        "@odata.context": f"{GRAPH}/v1.0/$metadata#servicePrincipals/$entity",
        "id": sp["objectId"],
        "appId": sp["appId"],
    }


def test_service_principal_pages_follow_next_links(
    server: KeylessServer, graph: httpx.Client, unique: Unique
) -> None:
    prefix = unique("paged")
    made = {create_sp(server, f"{prefix}-{i}")["objectId"] for i in range(5)}
    seen: list[str] = []
    r = graph.get(
        "/v1.0/servicePrincipals", params={"$filter": f"startswith(displayName,'{prefix}')", "$top": "2"}
    )
    pages = 0
    while True:
        assert r.status_code == 200, r.text
        pages += 1
        seen += [o["id"] for o in r.json()["value"]]
        link = r.json().get("@odata.nextLink")
        if link is None:
            break
        r = graph.get(link)
    assert (sorted(seen), pages) == (sorted(made), 3)


def test_groups_members_and_check_member_groups(
    server: KeylessServer, graph: httpx.Client, unique: Unique
) -> None:
    sp = create_sp(server, unique("member"))
    outer = _directory(server, "POST", "/groups", {"displayName": unique("outer")})["objectId"]
    inner = _directory(server, "POST", "/groups", {"displayName": unique("inner")})["objectId"]
    _directory(server, "PUT", f"/groups/{outer}/members/{inner}")
    _directory(server, "PUT", f"/groups/{inner}/members/{sp['objectId']}")
    listed = graph.get("/v1.0/groups", params={"$filter": f"id eq '{outer}'"})
    assert [g["id"] for g in listed.json()["value"]] == [outer]
    assert graph.get(f"/v1.0/groups/{inner}").json()["id"] == inner
    members = graph.get(f"/v1.0/groups/{outer}/members").json()["value"]
    assert [(m["@odata.type"], m["id"]) for m in members] == [(GROUP_TYPE, inner)]
    other = str(uuid.uuid4())
    r = graph.post(
        f"/v1.0/directoryObjects/{sp['objectId']}/checkMemberGroups", json={"groupIds": [outer, other, inner]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["value"] == [outer, inner]  # through the nested group too


def test_users_are_an_empty_directory(graph: httpx.Client) -> None:
    r = graph.get("/v1.0/users", params={"$filter": "userPrincipalName eq 'someone@example.com'"})
    assert (r.status_code, r.json()["value"]) == (200, [])
    _graph_error(graph.get(f"/v1.0/users/{uuid.uuid4()}"), 404, "Request_ResourceNotFound")


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status", "code"),
    [
        ("GET", "/v1.0/servicePrincipals", {"$filter": "appId eq"}, None, 400, "BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$filter": "appId eq 'x' and"}, None, 400, "BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$filter": "(" * 500}, None, 400, "BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$filter": "x" * 3000}, None, 400, "BadRequest"),
        (
            "GET",
            "/v1.0/servicePrincipals",
            {"$filter": "nosuch eq 'x'"},
            None,
            400,
            "Request_UnsupportedQuery",
        ),
        (
            "GET",
            "/v1.0/servicePrincipals",
            {"$filter": "appId gt 'x'"},
            None,
            400,
            "Request_UnsupportedQuery",
        ),
        ("GET", "/v1.0/users", {"$filter": "city eq 'x'"}, None, 400, "Request_UnsupportedQuery"),
        ("GET", "/v1.0/servicePrincipals", {"$top": "0"}, None, 400, "Request_BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$top": "1000"}, None, 400, "Request_BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$skiptoken": "!!"}, None, 400, "Request_BadRequest"),
        ("GET", "/v1.0/servicePrincipals/not-a-guid", {}, None, 400, "Request_BadRequest"),
        ("GET", f"/v1.0/servicePrincipals/{uuid.UUID(int=7)}", {}, None, 404, "Request_ResourceNotFound"),
        ("GET", f"/v1.0/groups/{uuid.UUID(int=7)}", {}, None, 404, "Request_ResourceNotFound"),
        ("GET", f"/v1.0/groups/{uuid.UUID(int=7)}/members", {}, None, 404, "Request_ResourceNotFound"),
        ("GET", "/v1.0/nothing", {}, None, 400, "BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$top": "9" * 4400}, None, 400, "Request_BadRequest"),
        ("GET", "/v1.0/servicePrincipals", {"$top": "\uff11"}, None, 400, "Request_BadRequest"),
        ("GET", "/v9/servicePrincipals", {}, None, 400, "BadRequest"),
        ("DELETE", f"/v1.0/servicePrincipals/{uuid.UUID(int=7)}", {}, None, 405, "Request_BadRequest"),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, b"{", 400, "BadRequest"),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, b"[]", 400, "Request_BadRequest"),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, b'{"ids":"x"}', 400, "Request_BadRequest"),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, b'{"ids":["nope"]}', 400, "Request_BadRequest"),
        (
            "POST",
            "/v1.0/directoryObjects/getByIds",
            {},
            b'{"ids":[],"types":["cat"]}',
            400,
            "Request_BadRequest",
        ),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, b'{"ids":["a\\u0000"]}', 400, "BadRequest"),
        (
            "POST",
            f"/v1.0/directoryObjects/{uuid.UUID(int=7)}/checkMemberGroups",
            {},
            b'{"groupIds":[]}',
            404,
            "Request_ResourceNotFound",
        ),
    ],
)
def test_malformed_requests_get_graph_errors(
    graph: httpx.Client,
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes | None,
    status: int,
    code: str,
) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    _graph_error(graph.request(method, path, params=params, content=body, headers=headers), status, code)


def test_get_by_ids_has_a_bound(graph: httpx.Client) -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(1001)]
    _graph_error(graph.post("/v1.0/directoryObjects/getByIds", json={"ids": ids}), 400, "Request_BadRequest")


def test_authentication_and_authorization(server: KeylessServer, unique: Unique) -> None:
    path = "/v1.0/servicePrincipals"
    with server.client(base_url=GRAPH) as http:
        message = _graph_error(http.get(path), 401, "InvalidAuthenticationToken")
        assert message == "Access token is empty."
        assert http.get(path).headers["www-authenticate"].startswith("Bearer ")
        arm_token = server.admin_token()
        message = _graph_error(
            http.get(path, headers={"Authorization": f"Bearer {arm_token}"}),
            401,
            "InvalidAuthenticationToken",
        )
        assert message == "Access token validation failure. Invalid audience."
        _graph_error(
            http.get(path, headers={"Authorization": "Bearer x.y.z"}), 401, "InvalidAuthenticationToken"
        )
        # Another service principal, and a VM's managed identity, lack the directory permission.
        sp = create_sp(server, unique("reader"))
        sp_token = server.client_token(sp["appId"], sp["clientSecret"], GRAPH)
        rg = create_group(server, unique)
        vm = create_vm(server, rg, unique("vm"), "")
        mi = imds_get(server, host_token(server, vm_id(server, rg, vm["name"]), "2024-07-01"), GRAPH)
        for token in (sp_token, mi.json()["access_token"]):
            bearer = {"Authorization": f"Bearer {token}"}
            _graph_error(http.get(path, headers=bearer), 403, "Authorization_RequestDenied")
            denied = http.post(
                "/v1.0/directoryObjects/getByIds", headers=bearer, json={"ids": [sp["objectId"]]}
            )
            _graph_error(denied, 403, "Authorization_RequestDenied")
    assert token_for(server, sp)  # the principal itself still works for the resource manager
