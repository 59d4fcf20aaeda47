"""IMDS beyond the token (issue 8, item 6): the Metadata header in any case, api-versions checked
as IMDS checks them, the single-user-assigned default, the instance metadata endpoint, and IMDS's
own errors for callers that are not a VM (MicrosoftDocs/azure-compute-docs
``instance-metadata-service.md``; imds.json 2023-07-01)."""

from __future__ import annotations

import uuid
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
    cli_ok,
    create_identity,
    create_vm,
    get_doc,
    host_token,
    imds_client,
    imds_get,
    site_id,
    vm_id,
)
from tests.keyless_server import KeylessServer

INSTANCE = "http://169.254.169.254/metadata/instance"
VERSIONS_ERROR = (
    "Bad request. api-version is invalid or was not specified in the request. "
    "For more information refer to aka.ms/azureimds"
)
NEWEST = ["2025-04-07", "2024-07-17", "2024-03-15"]


@pytest.fixture(scope="module")
def env(server: KeylessServer) -> dict[str, Any]:
    """A tagged VM with only one user-assigned identity, a VM with none, and a Function app."""
    suffix = uuid.uuid4().hex[:8]
    group = f"rgmeta{suffix}"
    cli_ok(server, "group", "create", "-n", group, "-l", "westeurope")
    uami = create_identity(server, group, f"idmeta{suffix}")
    name = f"vmmeta{suffix}"
    create_vm(server, group, name, uami["name"])
    with server.arm() as arm:  # tags and a size, as `az vm update --set tags.x=y` would write
        r = arm.patch(
            vm_id(server, group, name),
            params={"api-version": VM_API},
            json={
                "tags": {"env": "dev", "team": "core"},
                "properties": {"hardwareProfile": {"vmSize": "Standard_B2s"}},
            },
        )
        assert r.status_code == 200, r.text
    bare = create_vm(server, group, f"vmbare{suffix}")
    cli_ok(
        server,
        "functionapp",
        "create",
        "-g",
        group,
        "-n",
        f"fnmeta{suffix}",
        "--assign-identity",
        uami["name"],
    )
    site = site_id(server, group, f"fnmeta{suffix}")
    return {
        "group": group,
        "uami": uami,
        "doc": get_doc(server, vm_id(server, group, name), VM_API),
        "password": host_token(server, vm_id(server, group, name), VM_API),
        "bare_password": host_token(server, bare["id"], VM_API),
        "site_password": host_token(server, site, WEB_API),
    }


def _meta(
    srv: KeylessServer, password: str | None, path: str = "", metadata: str = "true", **params: str
) -> httpx.Response:
    with imds_client(srv, password) as http:
        return http.get(INSTANCE + path, params=params, headers={"Metadata": metadata})


@pytest.mark.parametrize("value", ["True", "TRUE", "tRuE"])
def test_metadata_header_in_any_case(server: KeylessServer, env: dict[str, Any], value: str) -> None:
    r = imds_get(server, env["password"], headers={"Metadata": value})
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["oid"] == env["uami"]["properties"]["principalId"]
    compute = _meta(server, env["password"], "/compute", metadata=value, **{"api-version": "2021-02-01"})
    assert compute.status_code == 200, compute.text


@pytest.mark.parametrize("value", ["false", "1", "truee", "yes"])
def test_metadata_header_other_values_refused(server: KeylessServer, env: dict[str, Any], value: str) -> None:
    r = imds_get(server, env["password"], headers={"Metadata": value})
    assert_imds_error(r, "invalid_request", "Required metadata header not specified")
    m = _meta(server, env["password"], metadata=value, **{"api-version": "2021-02-01"})
    assert m.status_code == 400 and m.json() == {
        "error": "Bad request. Required metadata header not specified"
    }


@pytest.mark.parametrize("version", [None, "latest", "zzz", "2017-12-01", "2018-02-01 ", "2099-01-01", ""])
def test_identity_api_version_checked(
    server: KeylessServer, env: dict[str, Any], version: str | None
) -> None:
    query = {"resource": ARM} if version is None else {"resource": ARM, "api-version": version}
    with imds_client(server, env["password"]) as http:
        r = http.get(IMDS_TOKEN_URL, params=query, headers={"Metadata": "true"})
    assert r.status_code == 400, r.text
    assert r.json() == {
        "error": "invalid_request",
        "error_description": VERSIONS_ERROR,
        "newest-versions": NEWEST,
    }
    assert "access_token" not in r.text


@pytest.mark.parametrize("version", ["2018-02-01", "2019-08-01", "2021-02-01", "2025-04-07"])
def test_identity_supported_api_versions(server: KeylessServer, env: dict[str, Any], version: str) -> None:
    r = imds_get(server, env["password"], query={"api-version": version})
    assert r.status_code == 200, r.text


def test_single_user_assigned_identity_is_the_default(server: KeylessServer, env: dict[str, Any]) -> None:
    """No identity parameter, no system-assigned identity, exactly one user-assigned: IMDS uses it
    (entra-docs managed-identities-faq.md)."""
    r = imds_get(server, env["password"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client_id"] == env["uami"]["properties"]["clientId"]
    token = claims(body["access_token"])
    assert token["oid"] == env["uami"]["properties"]["principalId"]
    assert token["xms_az_rid"].lower() == env["doc"]["id"].lower()
    # A VM with no identity still has none to give.
    assert_imds_error(imds_get(server, env["bare_password"]), "invalid_request", "Identity not found")


def test_app_service_keeps_requiring_a_selector(server: KeylessServer, env: dict[str, Any]) -> None:
    """App Service does not default to a sole user-assigned identity (reference §2): 400."""
    r = httpx.get(
        app_service_url(server),
        params={"api-version": "2019-08-01", "resource": ARM},
        headers={"X-IDENTITY-HEADER": env["site_password"]},
        trust_env=False,
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Unable to load the proper Managed Identity."


def test_instance_metadata(server: KeylessServer, env: dict[str, Any]) -> None:
    doc = env["doc"]
    r = _meta(server, env["password"], **{"api-version": "2021-02-01"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"compute", "network"}
    compute = body["compute"]
    assert compute["subscriptionId"] == server.subscription_id
    assert compute["resourceGroupName"] == env["group"]
    assert compute["name"] == doc["name"]
    assert compute["vmId"] == doc["properties"]["vmId"]
    assert compute["location"] == "westeurope"
    assert compute["resourceId"] == doc["id"]
    assert compute["azEnvironment"] == "AzurePublicCloud"
    assert compute["vmSize"] == "Standard_B2s"
    assert compute["osType"] == "Linux"
    assert compute["tags"] == "env:dev;team:core"
    assert compute["tagsList"] == [{"name": "env", "value": "dev"}, {"name": "team", "value": "core"}]
    # Every primitive is a string (the docs' "Data format").
    assert all(isinstance(v, str) for v in compute.values() if not isinstance(v, dict | list))
    interface = body["network"]["interface"][0]
    assert interface["ipv4"]["ipAddress"][0]["privateIpAddress"] == "127.0.0.1"

    only = _meta(server, env["password"], "/compute", **{"api-version": "2021-02-01"})
    assert only.json() == compute
    network = _meta(
        server,
        env["password"],
        "/network/interface/0/macAddress",
        format="text",
        **{"api-version": "2021-02-01"},
    )
    assert network.text == interface["macAddress"]


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        ("subscriptionId", "sub"),
        ("resourceGroupName", "group"),
        ("tags", "env:dev;team:core"),
        ("vmId", "vmid"),
    ],
)
def test_leaf_as_text(server: KeylessServer, env: dict[str, Any], leaf: str, expected: str) -> None:
    want = {"sub": server.subscription_id, "group": env["group"], "vmid": env["doc"]["properties"]["vmId"]}
    r = _meta(server, env["password"], f"/compute/{leaf}", format="text", **{"api-version": "2021-02-01"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == want.get(expected, expected)


def test_text_of_an_object_lists_its_keys(server: KeylessServer, env: dict[str, Any]) -> None:
    r = _meta(server, env["password"], format="text", **{"api-version": "2021-02-01"})
    assert r.text.splitlines() == ["compute/", "network/"]


def test_versions(server: KeylessServer, env: dict[str, Any]) -> None:
    with imds_client(server, env["password"]) as http:
        r = http.get("http://169.254.169.254/metadata/versions", headers={"Metadata": "true"})
    assert r.status_code == 200, r.text
    versions = r.json()["apiVersions"]
    assert versions == sorted(versions) and versions[0] == "2017-03-01" and versions[-1] == "2025-04-07"
    assert {"2018-02-01", "2021-02-01", "2023-07-01"} <= set(versions)


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        ("", {}, 400, None),
        ("", {"api-version": "latest"}, 400, None),
        ("", {"api-version": "2017-03-01"}, 400, None),  # /instance arrived in 2017-04-02
        (
            "/compute/vmId",
            {"api-version": "2021-02-01"},
            400,
            "Bad request. Leaf nodes can only be queried with format=text",
        ),
        (
            "/compute/vmId",
            {"api-version": "2021-02-01", "format": "json"},
            400,
            "Bad request. Leaf nodes can only be queried with format=text",
        ),
        (
            "/compute",
            {"api-version": "2021-02-01", "format": "xml"},
            400,
            "Bad request. Invalid format: use json or text",
        ),
        ("/compute/nothing", {"api-version": "2021-02-01"}, 404, "Not found"),
        ("/network/interface/7", {"api-version": "2021-02-01"}, 404, "Not found"),
        ("/network/interface/-1", {"api-version": "2021-02-01"}, 404, "Not found"),
        ("/network/interface/" + "0" * 4400 + "1", {"api-version": "2021-02-01"}, 404, "Not found"),
        ("/network/interface/\uff10", {"api-version": "2021-02-01"}, 404, "Not found"),
        ("/compute/vmId/deeper", {"api-version": "2021-02-01", "format": "text"}, 404, "Not found"),
        ("/" + "/".join(["compute"] * 40), {"api-version": "2021-02-01"}, 404, "Not found"),
    ],
)
def test_bad_instance_requests(
    server: KeylessServer,
    env: dict[str, Any],
    path: str,
    params: dict[str, str],
    status: int,
    error: str | None,
) -> None:
    r = _meta(server, env["password"], path, **params)
    assert r.status_code == status, r.text
    if error is None:
        assert r.json() == {"error": VERSIONS_ERROR, "newest-versions": NEWEST}
    else:
        assert r.json() == {"error": error}


def test_unknown_paths_and_methods(server: KeylessServer, env: dict[str, Any]) -> None:
    with imds_client(server, env["password"]) as http:
        unknown = http.get(
            "http://169.254.169.254/metadata/nothing",
            params={"api-version": "2021-02-01"},
            headers={"Metadata": "true"},
        )
        post = http.post(INSTANCE, params={"api-version": "2021-02-01"}, headers={"Metadata": "true"})
    assert unknown.status_code == 404 and unknown.json() == {"error": "Not found"}
    assert post.status_code == 405 and post.json() == {"error": "Method not allowed"}


def test_only_a_vm_has_instance_metadata(server: KeylessServer, env: dict[str, Any]) -> None:
    refused = {"error": "Bad request. The caller is not a known virtual machine"}
    for password in (env["site_password"], None, "x" * 64):
        r = _meta(server, password, **{"api-version": "2021-02-01"})
        assert r.status_code == 400 and r.json() == refused, r.text
        assert server.subscription_id not in r.text


def test_unauthenticated_metadata_on_the_http_port_is_imds(
    server: KeylessServer, env: dict[str, Any]
) -> None:
    """Straight to the HTTP listener (no proxy, no host token): IMDS's errors, not ARM's 401."""
    base = f"http://127.0.0.1:{server.http_port}"
    token = httpx.get(
        f"{base}/metadata/identity/oauth2/token",
        params={"api-version": IMDS_API, "resource": ARM},
        headers={"Metadata": "true"},
        trust_env=False,
    )
    assert_imds_error(token, "invalid_request", "Identity not found")
    instance = httpx.get(
        f"{base}/metadata/instance",
        params={"api-version": "2021-02-01"},
        headers={"Metadata": "true"},
        trust_env=False,
    )
    assert instance.status_code == 400 and instance.json() == {
        "error": "Bad request. The caller is not a known virtual machine"
    }
    headerless = httpx.get(f"{base}/metadata/instance", params={"api-version": "2021-02-01"}, trust_env=False)
    assert headerless.status_code == 400
    assert headerless.json() == {"error": "Bad request. Required metadata header not specified"}


def test_direct_base_url_survives_lower_casing(server: KeylessServer, env: dict[str, Any]) -> None:
    """@azure/identity 4.x lower-cases the whole URL and appends '/': the host token still names the VM."""
    password = env["password"]
    assert password == password.lower()  # new host tokens are lower-case hex
    base = f"http://127.0.0.1:{server.http_port}/imds/{password}".lower()
    r = httpx.get(
        f"{base}/metadata/identity/oauth2/token/",
        params={"api-version": IMDS_API, "resource": ARM},
        headers={"Metadata": "true"},
        trust_env=False,
    )
    assert r.status_code == 200, r.text
    upper = httpx.get(
        f"http://127.0.0.1:{server.http_port}/imds/{password.upper()}/metadata/instance/compute/name",
        params={"api-version": "2021-02-01", "format": "text"},
        headers={"Metadata": "true"},
        trust_env=False,
    )
    assert upper.status_code == 200 and upper.text == env["doc"]["name"]
