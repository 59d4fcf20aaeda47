"""IMDS on the wire (reference identity-endpoints.md §1): raw HTTP to http://169.254.169.254
through Keyless's proxy, the VM known from its proxy password (its host token)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.workload_helpers import (
    ARM,
    IMDS_API,
    IMDS_TOKEN_URL,
    VM_API,
    WEB_API,
    app_service_url,
    assert_imds_error,
    claims,
    claims_form,
    cli_ok,
    create_identity,
    create_vm,
    group_id,
    host_token,
    imds_client,
    imds_get,
    proxy_auth,
    site_id,
    vm_id,
)
from tests.keyless_server import KeylessServer

STRING_FIELDS = {
    "access_token",
    "client_id",
    "expires_in",
    "expires_on",
    "ext_expires_in",
    "not_before",
    "resource",
    "token_type",
}


@pytest.fixture(scope="module")
def vm(server: KeylessServer) -> dict[str, Any]:
    """A VM with a system- and a user-assigned identity, its host token, and an unassigned UAMI."""
    suffix = uuid.uuid4().hex[:8]
    group = f"rgimds{suffix}"
    cli_ok(server, "group", "create", "-n", group)
    uami = create_identity(server, group, f"idimds{suffix}")
    other = create_identity(server, group, f"idother{suffix}")
    doc = create_vm(server, group, f"vmimds{suffix}", f"[system],{uami['name']}")
    return {
        "doc": doc,
        "uami": uami,
        "other": other,
        "password": host_token(server, doc["id"], VM_API),
        "group": group,
    }


def test_token_response_fields_are_strings(server: KeylessServer, vm: dict[str, Any]) -> None:
    before = int(time.time())
    r = imds_get(server, vm["password"], "https://vault.azure.net")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["server"].startswith("IMDS/")
    body = r.json()
    assert set(body) == STRING_FIELDS
    assert all(isinstance(value, str) for value in body.values()), body
    assert body["resource"] == "https://vault.azure.net"
    assert body["token_type"] == "Bearer"
    token = claims(body["access_token"])
    assert token["aud"] == "https://vault.azure.net"
    assert int(body["expires_on"]) == token["exp"]
    assert int(body["not_before"]) == token["nbf"]
    assert before <= token["nbf"] <= int(time.time())
    # A 24 h 5 min token, as IMDS hands out.
    assert 86000 < int(body["expires_in"]) <= 86700
    assert int(body["ext_expires_in"]) == token["exp"] - token["nbf"]
    assert body["client_id"] == token["appid"]


def test_resource_is_echoed_exactly(server: KeylessServer, vm: dict[str, Any]) -> None:
    for resource in (
        "https://management.azure.com/",
        "https://management.azure.com",
        "https://storage.azure.com/",
    ):
        r = imds_get(server, vm["password"], resource)
        assert r.status_code == 200, r.text
        assert r.json()["resource"] == resource
        assert claims(r.json()["access_token"])["aud"] == resource


def test_expires_in_counts_down_on_the_cached_token(server: KeylessServer, vm: dict[str, Any]) -> None:
    resource = "https://storage.azure.com/"
    first = imds_get(server, vm["password"], resource).json()
    time.sleep(1.1)
    second = imds_get(server, vm["password"], resource).json()
    assert second["access_token"] == first["access_token"]
    assert second["expires_on"] == first["expires_on"]
    assert int(second["expires_in"]) < int(first["expires_in"])
    assert abs(int(second["expires_in"]) - (int(second["expires_on"]) - time.time())) <= 1


def test_bypass_cache_issues_a_new_token(server: KeylessServer, vm: dict[str, Any]) -> None:
    resource = "https://vault.azure.net"
    cached = imds_get(server, vm["password"], resource).json()
    fresh = imds_get(server, vm["password"], resource, bypass_cache="true")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["access_token"] != cached["access_token"]
    assert claims(fresh.json()["access_token"])["oid"] == claims(cached["access_token"])["oid"]
    # The fresh token is what is cached from now on.
    again = imds_get(server, vm["password"], resource).json()
    assert again["access_token"] == fresh.json()["access_token"]


def test_user_assigned_selectors_are_echoed(server: KeylessServer, vm: dict[str, Any]) -> None:
    uami = vm["uami"]
    cases: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"client_id": uami["properties"]["clientId"]}, {}),
        ({"object_id": uami["properties"]["principalId"]}, {"object_id": uami["properties"]["principalId"]}),
        ({"msi_res_id": uami["id"]}, {"msi_res_id": uami["id"]}),
        ({"mi_res_id": uami["id"]}, {"mi_res_id": uami["id"]}),
    ]
    for params, echoed in cases:
        r = imds_get(server, vm["password"], ARM, query=params)
        assert r.status_code == 200, (params, r.text)
        body = r.json()
        assert set(body) == STRING_FIELDS | set(echoed)
        for key, value in echoed.items():
            assert body[key] == value
        assert body["client_id"] == uami["properties"]["clientId"]
        token = claims(body["access_token"])
        assert token["oid"] == uami["properties"]["principalId"]
        assert token["xms_az_rid"] == claims_form(vm["doc"]["id"])
    # No selector: the system-assigned identity, with nothing echoed.
    system = imds_get(server, vm["password"], ARM).json()
    assert set(system) == STRING_FIELDS
    assert claims(system["access_token"])["oid"] == vm["doc"]["identity"]["principalId"]


def test_system_assigned_identity_by_its_own_ids(server: KeylessServer, vm: dict[str, Any]) -> None:
    """The system-assigned identity may also be named by its client id or object id."""
    system = imds_get(server, vm["password"]).json()
    for params in ({"client_id": system["client_id"]}, {"object_id": vm["doc"]["identity"]["principalId"]}):
        r = imds_get(server, vm["password"], query=params)
        assert r.status_code == 200, r.text
        token = claims(r.json()["access_token"])
        assert token["oid"] == vm["doc"]["identity"]["principalId"]
        assert "xms_az_rid" not in token


def test_missing_metadata_header(server: KeylessServer, vm: dict[str, Any]) -> None:
    r = imds_get(server, vm["password"], metadata=False)
    assert_imds_error(r, "invalid_request", "Required metadata header not specified")
    # The exact 88-byte body real IMDS sends.
    assert (
        r.content
        == b'{"error":"invalid_request","error_description":"Required metadata header not specified"}'
    )
    # Any other value is refused too ("True" is accepted: test_workload_imds_metadata.py).
    other = imds_get(server, vm["password"], metadata=False, headers={"Metadata": "false"})
    assert_imds_error(other, "invalid_request", "Required metadata header not specified")


def test_unknown_identity(server: KeylessServer, vm: dict[str, Any]) -> None:
    other = vm["other"]
    for params in (
        {"client_id": other["properties"]["clientId"]},
        {"object_id": other["properties"]["principalId"]},
        {"msi_res_id": other["id"]},
        {"client_id": str(uuid.uuid4())},
    ):
        r = imds_get(server, vm["password"], query=params)
        assert_imds_error(r, "invalid_request", "Identity not found")
        assert r.content == b'{"error":"invalid_request","error_description":"Identity not found"}'


def test_x_forwarded_for_is_refused(server: KeylessServer, vm: dict[str, Any]) -> None:
    r = imds_get(server, vm["password"], headers={"X-Forwarded-For": "10.0.0.1"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"
    assert "access_token" not in r.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get(server: KeylessServer, vm: dict[str, Any], method: str) -> None:
    with imds_client(server, vm["password"]) as http:
        r = http.request(
            method,
            IMDS_TOKEN_URL,
            params={"api-version": IMDS_API, "resource": ARM},
            headers={"Metadata": "true"},
        )
    assert r.status_code == 405, r.text
    assert r.json()["error"] == "method_not_allowed"
    assert "access_token" not in r.text


def test_unknown_resource(server: KeylessServer, vm: dict[str, Any]) -> None:
    r = imds_get(server, vm["password"], "https://not-a-resource.example.com")
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_resource"
    assert body["error_description"].startswith("AADSTS500011: ")
    assert "https://not-a-resource.example.com" in body["error_description"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"resource": ARM}, "api-version"),
        ({"api-version": IMDS_API}, "resource"),
        ({"api-version": "2017-12-01", "resource": ARM}, "api-version"),
    ],
    ids=["no-api-version", "no-resource", "old-api-version"],
)
def test_bad_query_is_400(
    server: KeylessServer, vm: dict[str, Any], query: dict[str, str], fragment: str
) -> None:
    with imds_client(server, vm["password"]) as http:
        r = http.get(IMDS_TOKEN_URL, params=query, headers={"Metadata": "true"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"
    assert fragment in r.json()["error_description"]


def test_duplicate_and_conflicting_selectors_are_400(server: KeylessServer, vm: dict[str, Any]) -> None:
    uami = vm["uami"]
    query = f"api-version={IMDS_API}&resource={ARM}&resource={ARM}"
    with imds_client(server, vm["password"]) as http:
        duplicate = http.get(f"{IMDS_TOKEN_URL}?{query}", headers={"Metadata": "true"})
    assert duplicate.status_code == 400, duplicate.text
    assert duplicate.json()["error"] == "invalid_request"
    both = imds_get(
        server,
        vm["password"],
        client_id=uami["properties"]["clientId"],
        object_id=uami["properties"]["principalId"],
    )
    assert both.status_code == 400, both.text
    assert both.json()["error"] == "invalid_request"
    assert "access_token" not in both.text


def test_no_proxy_credentials_is_identity_not_found(server: KeylessServer, vm: dict[str, Any]) -> None:
    """Through the proxy without a password, or straight to the listener (no proxy at all)."""
    assert_imds_error(imds_get(server, None), "invalid_request", "Identity not found")
    direct = httpx.get(
        f"http://127.0.0.1:{server.http_port}/metadata/identity/oauth2/token",
        params={"api-version": IMDS_API, "resource": ARM},
        headers={
            "Host": "169.254.169.254",
            "Metadata": "true",
            "Proxy-Authorization": proxy_auth(vm["password"]),
        },
        trust_env=False,
    )
    # A Proxy-Authorization header sent to the listener directly proves nothing.
    assert direct.status_code in (400, 404), direct.text
    assert "access_token" not in direct.text


def test_direct_imds_base_url(server: KeylessServer, vm: dict[str, Any]) -> None:
    """AZURE_POD_IDENTITY_AUTHORITY_HOST: the per-workload base URL carries the host token."""
    base = f"http://127.0.0.1:{server.http_port}/imds/{vm['password']}"
    r = httpx.get(
        f"{base}/metadata/identity/oauth2/token",
        params={"api-version": IMDS_API, "resource": ARM},
        headers={"Metadata": "true"},
        trust_env=False,
    )
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["oid"] == vm["doc"]["identity"]["principalId"]
    wrong = httpx.get(
        f"http://127.0.0.1:{server.http_port}/imds/{'x' * 43}/metadata/identity/oauth2/token",
        params={"api-version": IMDS_API, "resource": ARM},
        headers={"Metadata": "true"},
        trust_env=False,
    )
    assert_imds_error(wrong, "invalid_request", "Identity not found")
    headerless = httpx.get(
        f"{base}/metadata/identity/oauth2/token",
        params={"api-version": IMDS_API, "resource": ARM},
        trust_env=False,
    )
    assert_imds_error(headerless, "invalid_request", "Required metadata header not specified")


def _burst(send: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Requests back to back until one is throttled (at most 50)."""
    responses: list[httpx.Response] = []
    while len(responses) < 50 and not any(r.status_code == 429 for r in responses):
        responses.append(send())
    return responses


def test_rate_limit(new_server: Callable[..., KeylessServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """KEYLESS_IDENTITY_RATE_LIMIT=5: a burst past 5 requests/s gets 429 with Retry-After, per workload."""
    monkeypatch.setenv("KEYLESS_IDENTITY_RATE_LIMIT", "5")
    srv = new_server()
    group = "rgrate"
    docs: dict[str, dict[str, Any]] = {}
    with srv.arm() as arm:
        r = arm.put(
            group_id(srv, group), params={"api-version": "2024-03-01"}, json={"location": "westeurope"}
        )
        assert r.status_code == 201, r.text
        for name in ("vmrate", "vmother"):
            created = arm.put(
                vm_id(srv, group, name),
                params={"api-version": VM_API},
                json={"location": "westeurope", "identity": {"type": "SystemAssigned"}},
            )
            assert created.status_code == 201, created.text
            docs[name] = created.json()
        site = arm.put(
            site_id(srv, group, "fnrate"),
            params={"api-version": WEB_API},
            json={"location": "westeurope", "kind": "functionapp", "identity": {"type": "SystemAssigned"}},
        )
        assert site.status_code == 200, site.text
    password = host_token(srv, docs["vmrate"]["id"], VM_API)
    other = host_token(srv, docs["vmother"]["id"], VM_API)
    query = {"api-version": IMDS_API, "resource": ARM}

    with imds_client(srv, password) as http:
        responses = _burst(lambda: http.get(IMDS_TOKEN_URL, params=query, headers={"Metadata": "true"}))
    # Another VM has a budget of its own, even while this one is throttled.
    assert imds_get(srv, other).status_code == 200
    codes = [r.status_code for r in responses]
    assert codes[-1] == 429 and set(codes[:-1]) == {200} and len(codes) >= 6, codes
    throttled = responses[-1]
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.json()["error"] == "too_many_requests"
    assert "access_token" not in throttled.text
    # The budget refills: after a pause the VM is served again.
    time.sleep(1.1)
    assert imds_get(srv, password).status_code == 200

    # The App Service endpoint is limited the same way, with App Service's error body.
    header = host_token(srv, site.json()["id"], WEB_API)
    with httpx.Client(trust_env=False) as http:
        responses = _burst(
            lambda: http.get(
                app_service_url(srv),
                params={"api-version": "2019-08-01", "resource": ARM},
                headers={"X-IDENTITY-HEADER": header},
            )
        )
    codes = [r.status_code for r in responses]
    assert codes[-1] == 429 and set(codes[:-1]) == {200} and len(codes) >= 6, codes
    assert int(responses[-1].headers["retry-after"]) >= 1
    body = responses[-1].json()
    assert body["statusCode"] == 429 and body["correlationId"]
    assert "access_token" not in responses[-1].text
