"""A hostile signed-in user or workload against Key Vault: the data plane, its authorization, the
network origin and the resource manager side. Each test asserts the SAFE behaviour: the ones that
fail name a finding (see the module's report), the others guard a property that must hold.

Findings (fail until fixed):
- restore of a blob whose ``value`` is not base64url, or longer than 8192 characters (any real
  backup of a key with a few versions), answers 500 (``test_restore_bad_value_is_400``,
  ``test_restore_of_a_large_backup_round_trips``);
- a principal who may write a VM in its own group claims any public IP through
  ``keylessNetwork.publicIpAddress`` and so passes another vault's IP rules
  (``test_public_ip_cannot_be_claimed_to_pass_a_firewall``);
- ``Proxy-Authorization`` sent inside a TLS-terminated tunnel (the CONNECT had none) sets the
  workload origin (``test_proxy_credentials_inside_the_tunnel_do_not_count``);
- role assignments at a key's or secret's scope are refused with 404 (Azure supports them), so
  per-object RBAC cannot be granted (``test_object_scope_assignment_grants_only_that_object``).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import httpx
import pytest

from tests.e2e.keyvault_helpers import (
    ALL_KEYS,
    ALL_SECRETS,
    DATA_API,
    KV_API,
    VAULT_RESOURCE,
    assert_kv_error,
    create_vault,
    policy,
    update_vault,
    vault_client,
    vault_path,
    vault_token,
)
from tests.e2e.rbac_helpers import create_sp, put_assignment
from tests.e2e.workload_helpers import (
    ARM,
    VAULT,
    VM_API,
    Unique,
    claims,
    create_group,
    create_vm,
    host_token,
    imds_get,
    jwt_header,
    proxy_auth,
    vm_id,
)
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

A = {"api-version": DATA_API}
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ALLOWED_IP = "20.30.40.50"


def _sp_token(srv: KeylessServer, sp: dict[str, Any], resource: str = VAULT_RESOURCE) -> str:
    return srv.client_token(sp["appId"], sp["clientSecret"], resource)


def _secret(srv: KeylessServer, vault: str, name: str, value: str) -> None:
    with vault_client(srv, vault, vault_token(srv)) as kv:
        r = kv.put(f"/secrets/{name}", params=A, json={"value": value})
    assert r.status_code == 200, r.text


def _secret_names(srv: KeylessServer, vault: str) -> list[str]:
    with vault_client(srv, vault, vault_token(srv)) as kv:
        r = kv.get("/secrets", params=A)
    assert r.status_code == 200, r.text
    return sorted(item["id"].rsplit("/", 1)[1] for item in r.json()["value"])


# --- reaching another vault ---------------------------------------------------------------------


def test_other_vaults_objects_are_out_of_reach(server: KeylessServer, unique: Unique) -> None:
    """A principal with every right on vault B reaches nothing of vault A: not by path, host,
    case, ``..``, percent-encoding, the direct listener, nor A's version ids under B."""
    group = create_group(server, unique)
    victim, own = unique("kva"), unique("kvb")
    create_vault(server, group, victim)
    sp = create_sp(server, "attacker")
    create_vault(
        server, group, own, policies=[policy(server, sp["objectId"], keys=ALL_KEYS, secrets=ALL_SECRETS)]
    )
    _secret(server, victim, "s1", "top-secret")
    with vault_client(server, victim, vault_token(server)) as kv:
        kid = kv.post("/keys/k1/create", params=A, json={"kty": "EC"}).json()["key"]["kid"]
    token = _sp_token(server, sp)
    with vault_client(server, own, token) as kv:
        for path in (
            "/secrets/s1",
            f"/../{victim}/secrets/s1",
            "/secrets/s1%2F..%2F..",
            f"/keys/k1/{kid.rsplit('/', 1)[1]}",
        ):
            r = kv.get(path, params=A)
            assert r.status_code == 404, (path, r.text)
        for host in (f"{victim}.vault.azure.net", f"{victim.upper()}.VAULT.azure.net"):
            r = kv.get("/secrets/s1", params=A, headers={"Host": host})
            assert_kv_error(r, 403, "Forbidden", "ForbiddenByPolicy")
    with httpx.Client(verify=server.ssl_context(), trust_env=False, timeout=30) as direct:
        r = direct.get(
            f"{server.direct_url}/secrets/s1",
            params=A,
            headers={"Host": f"{victim}.vault.azure.net", "Authorization": f"Bearer {token}"},
        )
    assert_kv_error(r, 403, "Forbidden", "ForbiddenByPolicy")
    assert "top-secret" not in r.text


# --- tokens ---------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_forged_and_foreign_tokens_are_refused(server: KeylessServer, unique: Unique) -> None:
    """Another audience (ARM, Graph), alg none, HS256 keyed with the JWKS, a tampered payload: 401
    with the challenge; the secret is never in the answer."""
    import hashlib
    import hmac
    import json

    group = create_group(server, unique)
    sp = create_sp(server, "tok")
    vault = unique("kvt")
    create_vault(server, group, vault, policies=[policy(server, sp["objectId"], secrets=["get"])])
    _secret(server, vault, "s", "top-secret")
    good = _sp_token(server, sp)
    body, head = claims(good), jwt_header(good)
    payload = _b64(json.dumps(body).encode())
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": head["kid"]}).encode()) + "." + payload
    )
    forged = {
        "arm": _sp_token(server, sp, ARM),
        "graph": _sp_token(server, sp, "https://graph.microsoft.com"),
        "none": _b64(b'{"alg":"none","typ":"JWT"}') + "." + payload + ".",
        "hs256": signing_input
        + "."
        + _b64(hmac.new(head["kid"].encode(), signing_input.encode(), hashlib.sha256).digest()),
        "tampered": good.split(".")[0]
        + "."
        + _b64(json.dumps(dict(body, oid=server.admin["objectId"])).encode())
        + "."
        + good.split(".")[2],
    }
    for name, token in forged.items():
        with vault_client(server, vault, token) as kv:
            r = kv.get("/secrets/s", params=A)
        assert r.status_code == 401, (name, r.text)
        assert r.json()["error"]["code"] == "Unauthorized", (name, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer authorization="), name
        assert "top-secret" not in r.text
    with vault_client(server, vault, good) as kv:
        assert kv.get("/secrets/s", params=A).json()["value"] == "top-secret"


def test_token_of_a_removed_identity_is_refused(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    vm = create_vm(server, group, "vm", "")
    vault = unique("kvr")
    create_vault(
        server, group, vault, policies=[policy(server, vm["identity"]["principalId"], secrets=["get"])]
    )
    _secret(server, vault, "s", "top-secret")
    token = imds_get(server, host_token(server, vm_id(server, group, "vm"), VM_API), VAULT).json()[
        "access_token"
    ]
    with vault_client(server, vault, token) as kv:
        assert kv.get("/secrets/s", params=A).status_code == 200
    with server.arm() as arm:
        r = arm.patch(
            vm_id(server, group, "vm"), params={"api-version": VM_API}, json={"identity": {"type": "None"}}
        )
    assert r.status_code == 200, r.text
    with vault_client(server, vault, token) as kv:
        r = kv.get("/secrets/s", params=A)
    assert_kv_error(r, 401, "Unauthorized")


# --- access policies --------------------------------------------------------------------------------


def test_access_policy_compound_group_and_all(server: KeylessServer, unique: Unique) -> None:
    """A compound entry (objectId + another applicationId) grants the app alone nothing; a group
    entry grants its member exactly its permissions; ``All`` (any case) grants everything."""
    import json

    group = create_group(server, unique)
    alone, other, member = create_sp(server, "a"), create_sp(server, "b"), create_sp(server, "c")
    grp = json.loads(server.cli("ad", "group", "create", "-n", unique("grp"), "-o", "json").stdout)
    assert (
        server.cli(
            "ad", "group", "member", "add", "-g", grp["objectId"], "--member-id", member["objectId"]
        ).returncode
        == 0
    )
    vault = unique("kvp")
    create_vault(
        server,
        group,
        vault,
        policies=[
            dict(
                policy(server, alone["objectId"], secrets=["get", "list", "set"]),
                applicationId=other["appId"],
            ),
            policy(server, grp["objectId"], secrets=["GET"]),
            policy(server, other["objectId"], secrets=["All"]),
        ],
    )
    _secret(server, vault, "s", "v")
    expected = {"a": (403, 403, 403), "b": (200, 200, 200), "c": (200, 403, 403)}
    for sp in (alone, other, member):
        with vault_client(server, vault, _sp_token(server, sp)) as kv:
            got = (
                kv.get("/secrets/s", params=A).status_code,
                kv.get("/secrets", params=A).status_code,
                kv.put(f"/secrets/{sp['displayName']}x", params=A, json={"value": "x"}).status_code,
            )
        assert got == expected[sp["displayName"]], (sp["displayName"], got)
    assert _secret_names(server, vault) == ["bx", "s"]


# --- RBAC scopes --------------------------------------------------------------------------------------


def test_object_scope_assignment_grants_only_that_object(server: KeylessServer, unique: Unique) -> None:
    """FINDING: Azure lets a role be assigned at ``{vault}/secrets/{name}`` (per-object RBAC); Keyless
    answers 404 ResourceNotFound. Once accepted, it must grant that secret only: not a longer name,
    not another case's neighbour, not the key of the same name."""
    group = create_group(server, unique)
    vault = unique("kvs")
    create_vault(server, group, vault, rbac=True)
    admin_scope = vault_path(server, group, vault)
    with server.arm() as arm:
        r = put_assignment(
            arm, server, admin_scope, server.admin["objectId"], "00482a5a-887f-4fb3-b363-3b7fe8e74483"
        )
    assert r.status_code == 201, r.text
    for name in ("ab", "abc"):
        _secret(server, vault, name, name)
    sp = create_sp(server, "scoped")
    with server.arm() as arm:
        r = put_assignment(arm, server, f"{admin_scope}/secrets/ab", sp["objectId"], SECRETS_USER)
    assert r.status_code == 201, r.text
    with vault_client(server, vault, _sp_token(server, sp)) as kv:
        assert kv.get("/secrets/ab", params=A).status_code == 200
        assert kv.get("/secrets/AB", params=A).status_code == 200
        assert_kv_error(kv.get("/secrets/abc", params=A), 403, "Forbidden", "ForbiddenByRbac")
        assert_kv_error(kv.get("/secrets", params=A), 403, "Forbidden", "ForbiddenByRbac")


# --- the network origin -------------------------------------------------------------------------------


def _firewalled_vault(srv: KeylessServer, unique: Unique, group: str, reader: str) -> str:
    vault = unique("kvf")
    create_vault(srv, group, vault, policies=[policy(srv, reader, secrets=["get"])])
    _secret(srv, vault, "s", "top-secret")
    update_vault(
        srv,
        group,
        vault,
        {"networkAcls": {"defaultAction": "Deny", "bypass": "None", "ipRules": [{"value": ALLOWED_IP}]}},
    )
    return vault


def test_origin_headers_and_direct_host_do_not_count(server: KeylessServer, unique: Unique) -> None:
    """X-Forwarded-For, X-Real-IP, Forwarded, and a direct request with Host: {vault}.vault.azure.net
    are the local host, which the vault's IP rule does not name."""
    group = create_group(server, unique)
    sp = create_sp(server, "fw")
    vault = _firewalled_vault(server, unique, group, sp["objectId"])
    token = _sp_token(server, sp)
    spoof = {"X-Forwarded-For": ALLOWED_IP, "X-Real-IP": ALLOWED_IP, "Forwarded": f"for={ALLOWED_IP}"}
    with vault_client(server, vault, token) as kv:
        r = kv.get("/secrets/s", params=A, headers=spoof)
    assert_kv_error(r, 403, "Forbidden", "ForbiddenByFirewall")
    with httpx.Client(verify=server.ssl_context(), trust_env=False, timeout=30) as direct:
        r = direct.get(
            f"{server.direct_url}/secrets/s",
            params=A,
            headers={"Host": f"{vault}.vault.azure.net", "Authorization": f"Bearer {token}", **spoof},
        )
    assert_kv_error(r, 403, "Forbidden", "ForbiddenByFirewall")
    assert "top-secret" not in r.text


def test_proxy_credentials_inside_the_tunnel_do_not_count(server: KeylessServer, unique: Unique) -> None:
    """FINDING (low): the origin must come from the CONNECT's credentials only. A tunnel opened
    without them is the local host, whatever Proxy-Authorization the request inside carries."""
    group = create_group(server, unique)
    sp = create_sp(server, "tun")
    vault = _firewalled_vault(server, unique, group, sp["objectId"])
    with server.arm() as arm:
        r = arm.put(
            vm_id(server, group, "allowed"),
            params={"api-version": VM_API},
            json={
                "location": "westeurope",
                "properties": {"keylessNetwork": {"publicIpAddress": ALLOWED_IP}},
            },
        )
    assert r.status_code == 201, r.text
    password = host_token(server, vm_id(server, group, "allowed"), VM_API)
    with vault_client(server, vault, _sp_token(server, sp)) as kv:
        r = kv.get("/secrets/s", params=A, headers={"Proxy-Authorization": proxy_auth(password)})
    assert_kv_error(r, 403, "Forbidden", "ForbiddenByFirewall")


def test_vm_identity_cannot_move_its_own_vm(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    create_vm(server, group, "vm", "")
    arm_token = imds_get(server, host_token(server, vm_id(server, group, "vm"), VM_API), ARM).json()[
        "access_token"
    ]
    with server.arm(arm_token) as arm:
        r = arm.patch(
            vm_id(server, group, "vm"),
            params={"api-version": VM_API},
            json={"properties": {"keylessNetwork": {"publicIpAddress": ALLOWED_IP}}},
        )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "AuthorizationFailed"
    with server.arm() as arm:
        doc = arm.get(vm_id(server, group, "vm"), params={"api-version": VM_API}).json()
    assert "keylessNetwork" not in doc["properties"]


def test_public_ip_cannot_be_claimed_to_pass_a_firewall(server: KeylessServer, unique: Unique) -> None:
    """FINDING (high): Contributor on one's own group is enough to give a VM any public IP, e.g.
    the one another owner's vault allows; its requests then pass that vault's firewall. Azure
    hands out public IPs (``publicIPAddresses``, ``.../join/action``); nobody picks a foreign one."""
    victim_group, own_group = create_group(server, unique), create_group(server, unique)
    attacker = create_sp(server, "ipthief")
    # The attacker even holds a data permission: only the firewall stands in the way.
    vault = _firewalled_vault(server, unique, victim_group, attacker["objectId"])
    with server.arm() as arm:
        r = put_assignment(
            arm,
            server,
            f"/subscriptions/{server.subscription_id}/resourceGroups/{own_group}",
            attacker["objectId"],
            CONTRIBUTOR,
        )
    assert r.status_code == 201, r.text
    vm = vm_id(server, own_group, "evil")
    with server.arm(_sp_token(server, attacker, ARM)) as arm:
        r = arm.put(
            vm,
            params={"api-version": VM_API},
            json={
                "location": "westeurope",
                "properties": {"keylessNetwork": {"publicIpAddress": ALLOWED_IP}},
            },
        )
        if r.status_code in (400, 403):
            return  # refused at the resource manager: safe
        assert r.status_code == 201, r.text
        password = arm.post(f"{vm}/listHostToken", params={"api-version": VM_API}).json()["hostToken"]
    proxy = httpx.Proxy(server.proxy_url, headers={"Proxy-Authorization": proxy_auth(password)})
    with httpx.Client(proxy=proxy, verify=server.ssl_context(), trust_env=False, timeout=30) as http:
        r = http.get(
            f"https://{vault}.vault.azure.net/secrets/s",
            params=A,
            headers={"Authorization": f"Bearer {_sp_token(server, attacker)}"},
        )
    assert_kv_error(r, 403, "Forbidden", "ForbiddenByFirewall")
    assert "top-secret" not in r.text


# --- bad input and stalling -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["keys", "secrets"])
def test_restore_bad_value_is_400(server: KeylessServer, unique: Unique, kind: str) -> None:
    """FINDING: http.py decodes the restore ``value`` outside any CryptoInputError handler: 500."""
    group = create_group(server, unique)
    vault = unique("kvx")
    create_vault(server, group, vault)
    bad: list[Any] = [None, 1, [], "@@", "A" * 9000, "S2V5bGVzc0tleVZhdWx0QmFja3VwVjEu" + "A" * 100_000]
    with vault_client(server, vault, vault_token(server)) as kv:
        for value in bad:
            r = kv.post(f"/{kind}/restore", params=A, json={"value": value})
            assert_kv_error(r, 400, "BadParameter")
        r = kv.post(f"/{kind}/restore", params=A, json={})
        assert_kv_error(r, 400, "BadParameter")
    assert _secret_names(server, vault) == []


def test_restore_of_a_large_backup_round_trips(server: KeylessServer, unique: Unique) -> None:
    """FINDING: a backup of an RSA key with several versions (or a 20 KB secret) is longer than
    the 8192 base64 characters restore decodes; restoring it answers 500."""
    group = create_group(server, unique)
    vault = unique("kvl")
    create_vault(server, group, vault)
    with vault_client(server, vault, vault_token(server)) as kv:
        assert kv.post("/keys/big/create", params=A, json={"kty": "RSA", "key_size": 2048}).status_code == 200
        for _ in range(5):
            assert kv.post("/keys/big/rotate", params=A).status_code == 200
        assert kv.put("/secrets/big", params=A, json={"value": "x" * 20_000}).status_code == 200
        blobs = {
            kind: kv.post(f"/{kind}/big/backup", params=A).json()["value"] for kind in ("keys", "secrets")
        }
        for kind, blob in blobs.items():
            assert len(blob) > 8192
            assert kv.delete(f"/{kind}/big", params=A).status_code == 200
            assert kv.delete(f"/deleted{kind}/big", params=A).status_code == 204
            r = kv.post(f"/{kind}/restore", params=A, json={"value": blob})
            assert r.status_code == 200, r.text
        r = kv.get("/keys/big/versions", params=A)
        assert len(r.json()["value"]) == 6
        assert kv.get("/secrets/big", params=A).json()["value"] == "x" * 20_000


def test_event_loop_stays_responsive_under_rsa4096_flood(server: KeylessServer, unique: Unique) -> None:
    """16 clients creating RSA-4096 keys non-stop: /_keyless/health stays fast (keygen is off the loop)."""
    group = create_group(server, unique)
    vault = unique("kvn")
    create_vault(server, group, vault)
    token = vault_token(server)
    stop = threading.Event()

    def flood(i: int) -> None:
        with vault_client(server, vault, token) as kv:
            while not stop.is_set():
                kv.post(f"/keys/f{i}/create", params=A, json={"kty": "RSA", "key_size": 4096})

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    latencies: list[float] = []
    try:
        time.sleep(1.5)
        with httpx.Client(verify=server.ssl_context(), trust_env=False, timeout=30) as http:
            for _ in range(30):
                start = time.monotonic()
                assert http.get(f"{server.direct_url}/_keyless/health").status_code == 200
                latencies.append(time.monotonic() - start)
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statistics.median(latencies) < 0.25, latencies
    assert max(latencies) < 2.0, latencies


# --- soft delete and purge protection ------------------------------------------------------------------


def test_purge_protection_and_vault_name_cannot_be_bypassed(server: KeylessServer, unique: Unique) -> None:
    """Under purge protection: no purge of a key, a secret or the vault (any case); a deleted name
    cannot be reused by set/create/import/restore; the vault is not recovered into another group
    nor re-created there."""
    group, other = create_group(server, unique), create_group(server, unique)
    vault = unique("kvd")
    create_vault(server, group, vault, purge_protection=True)
    with vault_client(server, vault, vault_token(server)) as kv:
        assert kv.post("/keys/k/create", params=A, json={"kty": "EC"}).status_code == 200
        assert kv.put("/secrets/s", params=A, json={"value": "v1"}).status_code == 200
        key_blob = kv.post("/keys/k/backup", params=A).json()["value"]
        assert kv.delete("/keys/k", params=A).status_code == 200
        assert kv.delete("/secrets/s", params=A).status_code == 200
        for path in ("/deletedkeys/k", "/deletedkeys/K", "/deletedsecrets/s"):
            assert_kv_error(kv.delete(path, params=A), 400, "NotSupported")
        assert kv.put("/secrets/S", params=A, json={"value": "v2"}).status_code == 409
        assert kv.post("/keys/k/create", params=A, json={"kty": "EC"}).status_code == 409
        assert kv.post("/keys/restore", params=A, json={"value": key_blob}).status_code == 409
        assert kv.post("/deletedsecrets/s/recover", params=A).status_code == 200
        assert kv.get("/secrets/s", params=A).json()["value"] == "v1"
    properties = {
        "tenantId": server.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [],
    }
    with server.arm() as arm:
        assert arm.delete(vault_path(server, group, vault), params={"api-version": KV_API}).status_code == 200
        r = arm.put(
            vault_path(server, other, vault),
            params={"api-version": KV_API},
            json={"location": "westeurope", "properties": {**properties, "createMode": "recover"}},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "SoftDeletedVaultDoesNotExist", r.text
        r = arm.put(
            vault_path(server, other, vault),
            params={"api-version": KV_API},
            json={"location": "westeurope", "properties": properties},
        )
        assert r.status_code == 409, r.text
        for location, name in (("westeurope", vault), ("WestEurope", vault.upper())):
            r = arm.post(
                f"/subscriptions/{server.subscription_id}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}/purge",
                params={"api-version": KV_API},
            )
            assert r.status_code == 405, r.text
        r = arm.put(
            vault_path(server, group, vault),
            params={"api-version": KV_API},
            json={"location": "westeurope", "properties": {**properties, "createMode": "recover"}},
        )
        assert r.status_code in (200, 201), r.text
    with vault_client(server, vault, vault_token(server)) as kv:
        assert kv.get("/secrets/s", params=A).json()["value"] == "v1"
