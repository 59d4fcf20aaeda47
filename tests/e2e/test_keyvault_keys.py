"""Key Vault keys through azure-keyvault-keys, unchanged, under `keyless run` (issue: Key Vault).

Every operation of the keys data plane with default client options (challenge resource checked,
certificates verified), sync and `aio`; then the bad-input kinds over the raw wire, each checked
for its status, its error code and that nothing changed.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.e2e.keyvault_helpers import (
    DATA_API,
    assert_kv_error,
    create_vault,
    sdk_json,
    vault_client,
    vault_token,
)
from tests.e2e.workload_helpers import Unique, create_group, program
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

KEYS_PROGRAM = """
import base64, hashlib, json, os, time
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient, KeyCurveName, KeyRotationPolicy, KeyRotationLifetimeAction, KeyRotationPolicyAction
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm, EncryptionAlgorithm, SignatureAlgorithm
from azure.core.exceptions import ResourceNotFoundError, ResourceExistsError, HttpResponseError
args = json.loads(DATA)
cred = DefaultAzureCredential()
client = KeyClient(args["url"], cred)
out = {}
rsa = client.create_rsa_key("cmk", size=3072, tags={"use": "cmk"})
out["rsa"] = {"kty": rsa.key_type, "n_len": len(rsa.key.n), "version": rsa.properties.version, "tags": rsa.properties.tags,
              "vault_url": rsa.properties.vault_url, "ops": rsa.key_operations, "level": rsa.properties.recovery_level}
crypto = CryptographyClient(rsa, cred)
dek = os.urandom(32)
wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
out["unwrap_ok"] = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
# A client built from a key id alone does every operation remotely after its GET.
remote = CryptographyClient(rsa.id, cred)
for alg in (EncryptionAlgorithm.rsa_oaep, EncryptionAlgorithm.rsa_oaep_256, EncryptionAlgorithm.rsa1_5):
    ct = remote.encrypt(alg, b"hello")
    out[f"decrypt_{alg.value}"] = remote.decrypt(alg, ct.ciphertext).plaintext == b"hello"
digest = hashlib.sha256(b"payload").digest()
for alg in (SignatureAlgorithm.rs256, SignatureAlgorithm.ps256):
    sig = remote.sign(alg, digest)
    out[f"verify_{alg.value}"] = remote.verify(alg, digest, sig.signature).is_valid
ec = client.create_ec_key("sig", curve=KeyCurveName.p_384)
ec_crypto = CryptographyClient(ec, cred)
d384 = hashlib.sha384(b"x").digest()
sig = ec_crypto.sign(SignatureAlgorithm.es384, d384)
out["ec"] = {"crv": ec.key.crv, "len": len(sig.signature), "ok": ec_crypto.verify(SignatureAlgorithm.es384, d384, sig.signature).is_valid}
k = client.create_ec_key("k256", curve=KeyCurveName.p_256_k)
out["p256k"] = k.key.crv
oct_key = client.create_oct_key("aes", size=256, hardware_protected=True)
aes = CryptographyClient(oct_key, cred)
w = aes.wrap_key(KeyWrapAlgorithm.aes_256, dek)
out["aes_kw"] = aes.unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key).key == dek
ct = aes.encrypt(EncryptionAlgorithm.a256_gcm, b"secret", additional_authenticated_data=b"aad")
out["aes_gcm"] = aes.decrypt(EncryptionAlgorithm.a256_gcm, ct.ciphertext, iv=ct.iv, authentication_tag=ct.tag, additional_authenticated_data=b"aad").plaintext == b"secret"
# Versions, latest, update.
second = client.create_rsa_key("cmk", size=2048)
out["latest_is_second"] = client.get_key("cmk").properties.version == second.properties.version
out["first_still_there"] = client.get_key("cmk", rsa.properties.version).properties.version == rsa.properties.version
out["old_version_unwraps"] = CryptographyClient(rsa, cred).unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
upd = client.update_key_properties("cmk", enabled=False, tags={"a": "b"})
out["updated"] = {"enabled": upd.properties.enabled, "tags": upd.properties.tags}
client.update_key_properties("cmk", enabled=True)
out["versions"] = sorted(p.version for p in client.list_properties_of_key_versions("cmk"))
out["expected_versions"] = sorted([rsa.properties.version, second.properties.version])
out["names"] = sorted(p.name for p in client.list_properties_of_keys(max_page_size=1))
# Rotation: manual, and the policy round trip.
rotated = client.rotate_key("cmk")
out["rotated_new"] = rotated.properties.version not in out["expected_versions"]
policy = client.update_key_rotation_policy("cmk", KeyRotationPolicy(expires_in="P90D", lifetime_actions=[
    KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")]))
got = client.get_key_rotation_policy("cmk")
out["policy"] = {"expires_in": got.expires_in, "actions": [(a.action, a.time_after_create) for a in got.lifetime_actions]}
# Backup, delete (polled), deleted views, recover, purge, restore.
blob = client.backup_key("sig")
client.begin_delete_key("sig").wait()
deleted = client.get_deleted_key("sig")
out["deleted"] = {"recovery_id": deleted.recovery_id, "has_dates": deleted.deleted_date is not None and deleted.scheduled_purge_date is not None}
out["deleted_names"] = sorted(d.name for d in client.list_deleted_keys())
try:
    client.create_ec_key("sig")
    out["reuse"] = "allowed"
except ResourceExistsError as exc:
    out["reuse"] = exc.error.code if exc.error else "409"
client.begin_recover_deleted_key("sig").wait()
out["recovered"] = client.get_key("sig").name
client.begin_delete_key("sig").wait()
client.purge_deleted_key("sig")
try:
    client.get_deleted_key("sig")
    out["purged"] = False
except ResourceNotFoundError:
    out["purged"] = True
restored = client.restore_key_backup(blob)
out["restored"] = {"name": restored.name, "crv": restored.key.crv}
out["rng"] = len(client.get_random_bytes(16))
print(json.dumps(out))
"""


def _assert_keys_program(out: dict, url: str) -> None:
    assert out["rsa"]["kty"] == "RSA" and out["rsa"]["n_len"] == 384 and out["rsa"]["tags"] == {"use": "cmk"}
    assert out["rsa"]["vault_url"] == url and len(out["rsa"]["version"]) == 32
    assert "wrapKey" in out["rsa"]["ops"] and out["rsa"]["level"] == "CustomizedRecoverable+Purgeable"
    assert out["unwrap_ok"] is True
    for alg in ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5"):
        assert out[f"decrypt_{alg}"] is True
    assert out["verify_RS256"] is True and out["verify_PS256"] is True
    assert out["ec"] == {"crv": "P-384", "len": 96, "ok": True}
    assert out["p256k"] == "P-256K"
    assert out["aes_kw"] is True and out["aes_gcm"] is True
    assert out["latest_is_second"] and out["first_still_there"] and out["old_version_unwraps"]
    assert out["updated"] == {"enabled": False, "tags": {"a": "b"}}
    assert out["versions"] == out["expected_versions"]
    assert out["names"] == ["aes", "cmk", "k256", "sig"]
    assert out["rotated_new"] is True
    assert out["policy"] == {"expires_in": "P90D", "actions": [["Rotate", "P30D"]]}
    assert out["deleted"]["recovery_id"] == f"{url}/deletedkeys/sig" and out["deleted"]["has_dates"]
    assert out["deleted_names"] == ["sig"]
    assert out["reuse"] == "Conflict"
    assert out["recovered"] == "sig" and out["purged"] is True
    assert out["restored"] == {"name": "sig", "crv": "P-384"}
    assert out["rng"] == 16


def test_every_key_operation_with_the_sdk(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = unique("kv")
    create_vault(server, group, name)
    url = f"https://{name}.vault.azure.net"
    out = sdk_json(server, program(KEYS_PROGRAM, {"url": url}))
    _assert_keys_program(out, url)


AIO_PROGRAM = """
import asyncio, json, os
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto.aio import CryptographyClient
from azure.keyvault.keys.crypto import KeyWrapAlgorithm
args = json.loads(DATA)
async def main():
    async with DefaultAzureCredential() as cred, KeyClient(args["url"], cred) as client:
        key = await client.create_rsa_key("async", size=2048)
        async with CryptographyClient(key, cred) as crypto:
            dek = os.urandom(32)
            wrapped = await crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep, dek)
            ok = (await crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep, wrapped.encrypted_key)).key == dek
        names = [p.name async for p in client.list_properties_of_keys()]
        poller = await client.delete_key("async")
        deleted = [d.name async for d in client.list_deleted_keys()]
        print(json.dumps({"ok": ok, "names": names, "deleted": deleted}))
asyncio.run(main())
"""


def test_aio_clients(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = unique("kv")
    create_vault(server, group, name)
    out = sdk_json(server, program(AIO_PROGRAM, {"url": f"https://{name}.vault.azure.net"}))
    assert out == {"ok": True, "names": ["async"], "deleted": ["async"]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_bad_input_kinds_change_nothing(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = unique("kv")
    create_vault(server, group, name, purge_protection=True)
    params = {"api-version": DATA_API}
    with vault_client(server, name, vault_token(server)) as kv:
        r = kv.post("/keys/k1/create", params=params, json={"kty": "RSA", "key_size": 2048})
        assert r.status_code == 200, r.text
        kid = r.json()["key"]["kid"]
        version = kid.rsplit("/", 1)[1]

        def versions() -> list[str]:
            page = kv.get("/keys/k1/versions", params=params)
            assert page.status_code == 200
            return sorted(item["kid"] for item in page.json()["value"])

        before = versions()
        # Unknown kty, size, curve; an algorithm the key type does not support.
        assert_kv_error(kv.post("/keys/k1/create", params=params, json={"kty": "DSA"}), 400, "BadParameter")
        assert_kv_error(
            kv.post("/keys/k1/create", params=params, json={"kty": "RSA", "key_size": 1024}),
            400,
            "BadParameter",
        )
        assert_kv_error(
            kv.post("/keys/k1/create", params=params, json={"kty": "EC", "crv": "P-999"}), 400, "BadParameter"
        )
        assert_kv_error(
            kv.post("/keys/k1/create", params=params, json={"kty": "oct", "key_size": 256}),
            400,
            "BadParameter",
        )
        digest = hashlib.sha256(b"x").digest()
        r = kv.post(f"/keys/k1/{version}/sign", params=params, json={"alg": "ES256", "value": _b64(digest)})
        assert_kv_error(r, 400, "BadParameter")
        # Ciphertext of the wrong length, tampered ciphertext, bad base64url.
        r = kv.post(
            f"/keys/k1/{version}/unwrapkey",
            params=params,
            json={"alg": "RSA-OAEP-256", "value": _b64(b"short")},
        )
        assert_kv_error(r, 400, "BadParameter")
        good = kv.post(
            f"/keys/k1/{version}/encrypt", params=params, json={"alg": "RSA-OAEP", "value": _b64(b"hi")}
        )
        assert good.status_code == 200, good.text
        raw = bytearray(base64.urlsafe_b64decode(good.json()["value"] + "=="))
        raw[10] ^= 0xFF
        r = kv.post(
            f"/keys/k1/{version}/decrypt", params=params, json={"alg": "RSA-OAEP", "value": _b64(bytes(raw))}
        )
        assert_kv_error(r, 400, "BadParameter")
        r = kv.post(f"/keys/k1/{version}/decrypt", params=params, json={"alg": "RSA-OAEP", "value": "***"})
        assert_kv_error(r, 400, "BadParameter")
        # Names outside ^[0-9a-zA-Z-]{1,127}$.
        for bad in ("a_b", "x" * 128, "caf%C3%A9"):
            assert_kv_error(
                kv.post(f"/keys/{bad}/create", params=params, json={"kty": "RSA"}), 400, "BadParameter"
            )
        # A disabled key refuses operations; a key without the operation in key_ops too.
        assert (
            kv.patch(
                f"/keys/k1/{version}", params=params, json={"attributes": {"enabled": False}}
            ).status_code
            == 200
        )
        r = kv.post(f"/keys/k1/{version}/sign", params=params, json={"alg": "RS256", "value": _b64(digest)})
        assert_kv_error(r, 403, "Forbidden", "KeyDisabled")
        assert (
            kv.patch(
                f"/keys/k1/{version}",
                params=params,
                json={"attributes": {"enabled": True}, "key_ops": ["sign", "verify"]},
            ).status_code
            == 200
        )
        r = kv.post(
            f"/keys/k1/{version}/unwrapkey",
            params=params,
            json={"alg": "RSA-OAEP", "value": good.json()["value"]},
        )
        assert_kv_error(r, 403, "Forbidden", "KeyOperationForbidden")
        # Reusing a soft-deleted name; purge under purge protection.
        assert kv.delete("/keys/k1", params=params).status_code == 200
        assert_kv_error(
            kv.post("/keys/k1/create", params=params, json={"kty": "RSA"}),
            409,
            "Conflict",
            "ObjectIsDeletedButRecoverable",
        )
        assert_kv_error(kv.delete("/deletedkeys/k1", params=params), 400, "NotSupported")
        assert kv.post("/deletedkeys/k1/recover", params=params).status_code == 200
        assert versions() == before
        # A token for the wrong audience gets the challenge again.
    with vault_client(server, name, server.admin_token()) as kv:
        r = kv.get("/keys/k1", params=params)
        assert_kv_error(r, 401, "Unauthorized")
        assert r.headers["www-authenticate"].startswith(
            'Bearer authorization="https://login.microsoftonline.com/'
        )
