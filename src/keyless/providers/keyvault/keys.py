"""Keys of a vault: create, import, get, update, list, soft delete, backup/restore, rotate, and the
cryptographic operations on a version's private key. No HTTP here.

Wire facts: keyvault.md §1 (operations, KeyBundle, JsonWebKey, enums, errors) and §6 (what CMK
services need: old versions keep working after a rotation). Key material is made with
``cryptography`` (``crypto.py``), sealed under the root key and never leaves the vault: only the
public JWK is shown. Key generation runs in a worker thread (RSA-4096 takes about a second).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from threading import Lock
from typing import Any

from keyless.providers.keyvault import backup, bundles, crypto, errors
from keyless.providers.keyvault import store as kv
from keyless.providers.keyvault.access import Vault
from keyless.providers.keyvault.rotation_policy import RotationPolicies
from keyless.sealing import Sealer
from keyless.store.db import Database

KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export")
_KEY_OPS_BY_LOWER = {op.lower(): op for op in KEY_OPS}
# Operations that may run outside the nbf/exp window: "Not-yet-valid and expired keys … will
# work for decrypt, unwrap, and verify operations" (learn.microsoft.com/azure/key-vault/keys/about-keys-details).
_OUTSIDE_WINDOW_OK = frozenset({"decrypt", "unwrapKey", "verify"})
# The operation names of the crypto routes, as key_ops spells them.
CRYPTO_OPERATIONS = {
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "wrapkey": "wrapKey",
    "unwrapkey": "unwrapKey",
    "sign": "sign",
    "verify": "verify",
}
_LOADED_CACHE = 1024


def _key_ops(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > len(KEY_OPS):
        raise errors.bad_parameter("Property 'key_ops' must be a list of key operations.")
    out: list[str] = []
    for op in value:
        canonical = _KEY_OPS_BY_LOWER.get(op.lower()) if isinstance(op, str) else None
        if canonical is None:
            raise errors.bad_parameter(f"Invalid key operation: {str(op)[:40]}.")
        if canonical not in out:
            out.append(canonical)
    return out


def _check_crypto_input(exc: crypto.CryptoInputError) -> errors.KeyVaultError:
    return errors.KeyVaultError(400, "BadParameter", str(exc), exc.inner)


def _ops_for(kty: str, key_ops: list[str] | None) -> list[str]:
    """``key_ops`` checked against what a key of ``kty`` can do, or the type's default."""
    if key_ops is None:
        return crypto.default_key_ops(kty)
    try:
        return crypto.validate_key_ops(kty, key_ops)
    except crypto.CryptoInputError as exc:
        raise _check_crypto_input(exc) from None


class KeyService:
    """Keys of every vault; ``sealer`` seals private material under the root key."""

    def __init__(self, db: Database, sealer: Sealer, policies: RotationPolicies) -> None:
        self.db = db
        self.sealer = sealer
        self.policies = policies
        self._loaded: OrderedDict[tuple[str, str, str], crypto.LoadedKey] = OrderedDict()
        self._lock = Lock()

    # --- rendering ----------------------------------------------------------------------

    def bundle(self, vault: Vault, obj: kv.VaultObject, version: kv.Version) -> dict[str, Any]:
        """A KeyBundle: ``key`` (the public JWK with ``kid`` and ``key_ops``), ``attributes``, ``tags``."""
        doc = version.document
        key: dict[str, Any] = {"kid": bundles.object_id(vault, "key", obj.name, version.version)}
        key.update(doc["public"])
        key["key_ops"] = list(doc.get("key_ops") or [])
        out: dict[str, Any] = {"key": key, "attributes": bundles.render_attributes(vault, version)}
        if doc.get("tags"):
            out["tags"] = doc["tags"]
        if obj.deleted:
            out.update(bundles.deleted_fields(vault, obj))
        return out

    def item(
        self, vault: Vault, obj: kv.VaultObject, version: kv.Version, *, versioned: bool
    ) -> dict[str, Any]:
        """A KeyItem of a list: ``kid`` versionless in ``/keys``, versioned in ``/versions``."""
        out: dict[str, Any] = {
            "kid": bundles.object_id(vault, "key", obj.name, version.version if versioned else None),
            "attributes": bundles.render_attributes(vault, version),
        }
        if version.document.get("tags"):
            out["tags"] = version.document["tags"]
        if obj.deleted:
            out.update(bundles.deleted_fields(vault, obj))
        return out

    # --- reads --------------------------------------------------------------------------

    def live(self, vault: Vault, name: str) -> kv.VaultObject:
        """The live key ``name``; 404 ``KeyNotFound`` if there is none (or it is soft-deleted)."""
        return bundles.live_object(self.db, vault, kv.KEY, name)

    def version(self, vault: Vault, name: str, version: str | None) -> tuple[kv.VaultObject, kv.Version]:
        """A live key's version (``None`` or "": the latest); 404 if either is missing."""
        return bundles.live_version(self.db, vault, kv.KEY, name, version)

    def get(self, vault: Vault, name: str, version: str | None) -> dict[str, Any]:
        obj, found = self.version(vault, name, version)
        return self.bundle(vault, obj, found)

    def list_latest(
        self, vault: Vault, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self.db.read() as conn:
            objs = kv.list_objects(conn, vault.name, kv.KEY, deleted=False, after=after, limit=size + 1)
            items = []
            for obj in objs[:size]:
                latest = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, obj.latest_version)
                if latest is not None:
                    items.append(self.item(vault, obj, latest, versioned=False))
        return items, (objs[size - 1].name_key if len(objs) > size else None)

    def list_versions(
        self, vault: Vault, name: str, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        obj = self.live(vault, name)
        with self.db.read() as conn:
            versions = kv.list_versions(conn, obj, after=after, limit=size + 1)
        items = [self.item(vault, obj, v, versioned=True) for v in versions[:size]]
        return items, (versions[size - 1].version if len(versions) > size else None)

    def list_deleted(
        self, vault: Vault, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self.db.read() as conn:
            objs = kv.list_objects(conn, vault.name, kv.KEY, deleted=True, after=after, limit=size + 1)
            items = []
            for obj in objs[:size]:
                latest = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, obj.latest_version)
                if latest is not None:
                    items.append(self.item(vault, obj, latest, versioned=False))
        return items, (objs[size - 1].name_key if len(objs) > size else None)

    def deleted(self, vault: Vault, name: str) -> tuple[kv.VaultObject, kv.Version]:
        with self.db.read() as conn:
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
            latest = (
                kv.get_version(conn, vault.name, kv.KEY, obj.name_key, obj.latest_version) if obj else None
            )
        if obj is None or not obj.deleted or latest is None:
            raise errors.deleted_not_found("key", name)
        return obj, latest

    def get_deleted(self, vault: Vault, name: str) -> dict[str, Any]:
        obj, latest = self.deleted(vault, name)
        return self.bundle(vault, obj, latest)

    # --- writes -------------------------------------------------------------------------

    def _refuse_deleted(self, vault: Vault, name: str) -> kv.VaultObject | None:
        with self.db.read() as conn:
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
        if obj is not None and obj.deleted:
            raise errors.deleted_but_recoverable("key", name)
        return obj

    def _store_new_version(
        self,
        vault: Vault,
        name: str,
        material: crypto.KeyMaterial,
        key_ops: list[str],
        attributes: dict[str, Any],
        tags: dict[str, str] | None,
        *,
        now: float | None = None,
    ) -> dict[str, Any]:
        current = time.time() if now is None else now
        version = kv.new_version()
        public = {k: v for k, v in material.public_jwk().items()}
        document: dict[str, Any] = {
            "kty": material.kty,
            "key_ops": key_ops,
            "public": public,
            "key_size": material.size,
            "attributes": {**attributes, "updated": int(current)},
            "tags": tags or {},
        }
        with self.db.write() as conn:
            existing = kv.get_object(conn, vault.name, kv.KEY, name)
            if existing is not None and existing.deleted:
                raise errors.deleted_but_recoverable("key", name)
            sealed = self.sealer.seal(
                material.private, kv.seal_purpose(vault.name, kv.KEY, name.lower(), version)
            )
            kv.add_version(
                conn,
                vault.name,
                kv.KEY,
                existing.name if existing else name,
                version,
                document,
                sealed,
                current,
                existing=existing,
            )
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
            assert obj is not None
            self.policies.schedule(conn, obj, current, attributes.get("exp"))
            stored = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, version)
        assert stored is not None
        return self.bundle(vault, obj, stored)

    async def create(self, vault: Vault, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /keys/{name}/create``: a new key, or a new version of an existing one."""
        bundles.check_name(name)
        kty = body.get("kty")
        if not isinstance(kty, str) or not kty:
            raise errors.bad_parameter("The parameter 'kty' is required.")
        size, crv, exponent = body.get("key_size"), body.get("crv"), body.get("public_exponent")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
            raise errors.bad_parameter("Property 'key_size' must be an integer.")
        if crv is not None and not isinstance(crv, str):
            raise errors.bad_parameter("Property 'crv' must be a string.")
        if exponent is not None and (isinstance(exponent, bool) or not isinstance(exponent, int)):
            raise errors.bad_parameter("Property 'public_exponent' must be an integer.")
        key_ops = _key_ops(body.get("key_ops"))
        attributes = bundles.parse_attributes(body.get("attributes"), allow_exportable=True)
        tags = bundles.parse_tags(body.get("tags"))
        if key_ops is not None and kty in crypto.KTYS:
            _ops_for(kty, key_ops)  # refused before any key is made
        self._refuse_deleted(vault, name)
        try:
            material = await asyncio.to_thread(crypto.generate, kty, size, crv, exponent)
        except crypto.CryptoInputError as exc:
            raise _check_crypto_input(exc) from None
        return self._store_new_version(
            vault, name, material, _ops_for(material.kty, key_ops), attributes, tags
        )

    async def import_key(self, vault: Vault, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``PUT /keys/{name}``: import a JWK (with its private part) as a new version."""
        bundles.check_name(name)
        jwk = body.get("key")
        if not isinstance(jwk, dict):
            raise errors.bad_parameter("The parameter 'key' is required.")
        hsm = body.get("Hsm")
        if hsm is not None and not isinstance(hsm, bool):
            raise errors.bad_parameter("Property 'Hsm' must be a boolean.")
        attributes = bundles.parse_attributes(body.get("attributes"), allow_exportable=True)
        tags = bundles.parse_tags(body.get("tags"))
        key_ops = _key_ops(jwk.get("key_ops"))
        self._refuse_deleted(vault, name)
        try:
            material = await asyncio.to_thread(crypto.import_jwk, jwk, hsm)
        except crypto.CryptoInputError as exc:
            raise _check_crypto_input(exc) from None
        return self._store_new_version(
            vault, name, material, _ops_for(material.kty, key_ops), attributes, tags
        )

    def update(self, vault: Vault, name: str, version: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /keys/{name}/{version}``: key_ops, attributes and tags of one version."""
        key_ops = _key_ops(body.get("key_ops"))
        attributes = bundles.parse_attributes(body.get("attributes"))
        tags = bundles.parse_tags(body.get("tags"))
        obj, found = self.version(vault, name, version)
        document = dict(found.document)
        merged = {**(document.get("attributes") or {}), **attributes, "updated": int(time.time())}
        if merged.get("nbf") is not None and merged.get("exp") is not None and merged["nbf"] > merged["exp"]:
            raise errors.bad_parameter("The 'nbf' attribute must not be later than the 'exp' attribute.")
        document["attributes"] = merged
        if key_ops is not None:
            document["key_ops"] = _ops_for(document["kty"], key_ops)
        if tags is not None:
            document["tags"] = tags
        with self.db.write() as conn:
            kv.replace_document(conn, found, document)
            stored = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, found.version)
            if found.version == obj.latest_version:
                self.policies.schedule(conn, obj, found.created_at, merged.get("exp"))
        assert stored is not None
        return self.bundle(vault, obj, stored)

    def delete(self, vault: Vault, name: str) -> dict[str, Any]:
        """``DELETE /keys/{name}``: soft delete (every version) or, without soft delete, purge."""
        now = time.time()
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
            if obj is None or obj.deleted:
                raise errors.not_found("key", name)
            latest = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, obj.latest_version)
            assert latest is not None
            if not vault.soft_delete:
                kv.purge(conn, obj)
                body = self.bundle(vault, obj, latest)
                self._forget(vault.name, obj.name_key)
                return body
            purge_at = now + vault.retention_days * bundles.SECONDS_PER_DAY
            kv.set_deleted(conn, obj, now, purge_at)
            deleted = kv.get_object(conn, vault.name, kv.KEY, name)
        assert deleted is not None
        return self.bundle(vault, deleted, latest)

    def recover(self, vault: Vault, name: str) -> dict[str, Any]:
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
            if obj is None or not obj.deleted:
                raise errors.deleted_not_found("key", name)
            kv.set_deleted(conn, obj, None, None)
            live = kv.get_object(conn, vault.name, kv.KEY, name)
            latest = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, obj.latest_version)
        assert live is not None and latest is not None
        return self.bundle(vault, live, latest)

    def purge(self, vault: Vault, name: str) -> None:
        """``DELETE /deletedkeys/{name}``: 204; refused under purge protection."""
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
            if obj is None or not obj.deleted:
                raise errors.deleted_not_found("key", name)
            if vault.purge_protection:
                raise errors.purge_not_enabled()
            kv.purge(conn, obj)
        self._forget(vault.name, obj.name_key)

    async def rotate(self, vault: Vault, name: str, *, now: float | None = None) -> dict[str, Any]:
        """``POST /keys/{name}/rotate``: a new version with fresh material of the same type and
        size (curve), the same key_ops and tags; ``exp`` from the policy's ``expiryTime``."""
        obj, latest = self.version(vault, name, None)
        doc = latest.document
        try:
            material = await asyncio.to_thread(
                crypto.generate, doc["kty"], doc.get("key_size"), doc["public"].get("crv"), None
            )
        except crypto.CryptoInputError as exc:  # a stored key always regenerates; defensive
            raise _check_crypto_input(exc) from None
        current = time.time() if now is None else now
        attributes: dict[str, Any] = {"enabled": True}
        exportable = (doc.get("attributes") or {}).get("exportable")
        if exportable is not None:
            attributes["exportable"] = exportable
        expiry = self.policies.expiry_seconds(obj.rotation_policy)
        if expiry is not None:
            attributes["exp"] = int(current + expiry)
        return self._store_new_version(
            vault,
            obj.name,
            material,
            list(doc.get("key_ops") or []),
            attributes,
            doc.get("tags"),
            now=current,
        )

    # --- rotation policy ------------------------------------------------------------------

    def get_policy(self, vault: Vault, name: str) -> dict[str, Any]:
        obj = self.live(vault, name)
        return self.policies.render(vault, obj)

    def set_policy(self, vault: Vault, name: str, body: dict[str, Any]) -> dict[str, Any]:
        policy = self.policies.parse(body)
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.KEY, name)
            if obj is None or obj.deleted:
                raise errors.not_found("key", name)
            latest = kv.get_version(conn, vault.name, kv.KEY, obj.name_key, obj.latest_version)
            assert latest is not None
            stored = self.policies.store(conn, obj, policy, latest)
        return self.policies.render(vault, stored)

    # --- backup and restore ---------------------------------------------------------------

    def backup(self, vault: Vault, name: str) -> bytes:
        """``POST /keys/{name}/backup``: every version, sealed under the root key (an opaque blob
        that only this Keyless instance's root key opens, as a real backup only Azure opens)."""
        obj = self.live(vault, name)
        with self.db.read() as conn:
            versions = kv.all_versions(conn, obj)
        return backup.seal(self.sealer, kv.KEY, obj, versions)

    def restore(self, vault: Vault, blob: bytes) -> dict[str, Any]:
        obj, versions = backup.open_blob(self.sealer, kv.KEY, blob)
        with self.db.write() as conn:
            if kv.get_object(conn, vault.name, kv.KEY, obj["name"]) is not None:
                raise errors.already_exists("key", obj["name"])
            restored = backup.restore_versions(conn, self.sealer, vault, kv.KEY, obj, versions)
            latest = kv.get_version(conn, vault.name, kv.KEY, restored.name_key, restored.latest_version)
            if obj.get("rotation_policy") is not None and latest is not None:
                restored = self.policies.store(conn, restored, obj["rotation_policy"], latest)
        assert latest is not None
        return self.bundle(vault, restored, latest)

    # --- cryptography ---------------------------------------------------------------------

    def _loaded_key(self, vault: Vault, version: kv.Version) -> crypto.LoadedKey:
        cache_key = (vault.name, version.name_key, version.version)
        with self._lock:
            hit = self._loaded.get(cache_key)
            if hit is not None:
                self._loaded.move_to_end(cache_key)
                return hit
        private = self.sealer.open(
            version.sealed, kv.seal_purpose(vault.name, kv.KEY, version.name_key, version.version)
        )
        loaded = crypto.load(crypto.KeyMaterial(kty=version.document["kty"], private=private))
        with self._lock:
            self._loaded[cache_key] = loaded
            while len(self._loaded) > _LOADED_CACHE:
                self._loaded.popitem(last=False)
        return loaded

    def _forget(self, vault: str, name_key: str) -> None:
        with self._lock:
            for cache_key in [k for k in self._loaded if k[0] == vault and k[1] == name_key]:
                del self._loaded[cache_key]

    def crypto_operation(
        self, vault: Vault, name: str, version: str | None, operation: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """encrypt/decrypt/wrapKey/unwrapKey/sign/verify on one version (latest when ``version``
        is empty). Bodies: ``{alg, value, iv?, aad?, tag?}`` → ``{kid, value, iv?, tag?}``;
        verify ``{alg, digest, value}`` → ``{value: bool}`` (keyvault.md §1)."""
        obj, found = self.version(vault, name, version)
        if not bundles.is_enabled(found):
            raise errors.disabled("key", operation)
        try:
            crypto.require_key_op(found.document.get("key_ops") or [], operation)
        except crypto.KeyOperationError as exc:
            raise errors.KeyVaultError(403, "Forbidden", str(exc), "KeyOperationForbidden") from None
        if operation not in _OUTSIDE_WINDOW_OK:
            attrs = found.document.get("attributes") or {}
            now = time.time()
            if attrs.get("exp") is not None and now > attrs["exp"]:
                raise errors.KeyVaultError(
                    403, "Forbidden", f"Operation {operation} is not allowed on an expired key.", "KeyExpired"
                )
            if attrs.get("nbf") is not None and now < attrs["nbf"]:
                raise errors.KeyVaultError(
                    403,
                    "Forbidden",
                    f"Operation {operation} is not allowed on a key that is not yet valid.",
                    "KeyNotYetValid",
                )
        alg = body.get("alg")
        if not isinstance(alg, str) or not alg:
            raise errors.bad_parameter("The parameter 'alg' is required.")
        kid = bundles.object_id(vault, "key", obj.name, found.version)
        try:
            loaded = self._loaded_key(vault, found)
            if operation == "verify":
                digest = crypto.b64url_decode(body.get("digest"), "digest")
                signature = crypto.b64url_decode(body.get("value"), "value")
                return {"value": loaded.verify(alg, digest, signature)}
            value = crypto.b64url_decode(body.get("value"), "value")
            if operation == "sign":
                return {"kid": kid, "value": crypto.b64url_encode(loaded.sign(alg, value))}
            if operation == "wrapKey":
                return {"kid": kid, "value": crypto.b64url_encode(loaded.wrap(alg, value))}
            if operation == "unwrapKey":
                return {"kid": kid, "value": crypto.b64url_encode(loaded.unwrap(alg, value))}
            iv = _optional_bytes(body, "iv")
            aad = _optional_bytes(body, "aad")
            if operation == "encrypt":
                result = loaded.encrypt(alg, value, iv, aad)
                return {"kid": kid, **{k: crypto.b64url_encode(v) for k, v in result.items()}}
            tag = _optional_bytes(body, "tag")
            return {"kid": kid, "value": crypto.b64url_encode(loaded.decrypt(alg, value, iv, aad, tag))}
        except crypto.CryptoInputError as exc:
            raise _check_crypto_input(exc) from None


def _optional_bytes(body: dict[str, Any], field: str) -> bytes | None:
    value = body.get(field)
    return None if value is None else crypto.b64url_decode(value, field)
