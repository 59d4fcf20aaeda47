"""Secrets of a vault: set (a new version each time), get, update, list, soft delete, recover,
purge, backup/restore. No HTTP here.

Wire facts: keyvault-secrets.md. Values are sealed under the root key; a value is at most 25k
bytes (about-secrets.md: "25k bytes", read as 25,600, the limit az enforces client-side);
``contentType`` at most 255 characters. A disabled version refuses get with 403 ``SecretDisabled``;
``nbf``/``exp`` are not enforced on get (§0.10).
"""

from __future__ import annotations

import time
from typing import Any

from keyless.providers.keyvault import backup, bundles, errors
from keyless.providers.keyvault import store as kv
from keyless.providers.keyvault.access import Vault
from keyless.sealing import Sealer
from keyless.store.db import Database

MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255


class SecretService:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer

    def _value(self, vault: Vault, version: kv.Version) -> str:
        raw = self.sealer.open(
            version.sealed, kv.seal_purpose(vault.name, kv.SECRET, version.name_key, version.version)
        )
        return raw.decode("utf-8")

    def bundle(
        self, vault: Vault, obj: kv.VaultObject, version: kv.Version, *, with_value: bool
    ) -> dict[str, Any]:
        """A SecretBundle (keyvault-secrets.md §2); ``value`` only where the service shows it."""
        doc = version.document
        out: dict[str, Any] = {}
        if with_value:
            out["value"] = self._value(vault, version)
        out["id"] = bundles.object_id(vault, "secret", obj.name, version.version)
        if doc.get("contentType") is not None:
            out["contentType"] = doc["contentType"]
        out["attributes"] = bundles.render_attributes(vault, version)
        out["tags"] = doc.get("tags") or {}
        if obj.deleted:
            out.update(bundles.deleted_fields(vault, obj))
        return out

    def item(
        self, vault: Vault, obj: kv.VaultObject, version: kv.Version, *, versioned: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": bundles.object_id(vault, "secret", obj.name, version.version if versioned else None),
            "attributes": bundles.render_attributes(vault, version),
            "tags": version.document.get("tags") or {},
        }
        if version.document.get("contentType") is not None:
            out["contentType"] = version.document["contentType"]
        if obj.deleted:
            out.update(bundles.deleted_fields(vault, obj))
        return out

    def _live(self, vault: Vault, name: str) -> kv.VaultObject:
        return bundles.live_object(self.db, vault, kv.SECRET, name)

    def _version(self, vault: Vault, name: str, version: str | None) -> tuple[kv.VaultObject, kv.Version]:
        return bundles.live_version(self.db, vault, kv.SECRET, name, version)

    def set(self, vault: Vault, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``PUT /secrets/{name}``: a new version holding ``value``."""
        bundles.check_name(name)
        value = body.get("value")
        if not isinstance(value, str):
            raise errors.bad_parameter("The parameter 'value' is required and must be a string.")
        raw = value.encode("utf-8")
        if len(raw) > MAX_VALUE_BYTES:
            raise errors.bad_parameter(
                f"The secret value is {len(raw)} bytes long; the maximum is {MAX_VALUE_BYTES} bytes."
            )
        content_type = body.get("contentType")
        if content_type is not None and (
            not isinstance(content_type, str) or len(content_type) > MAX_CONTENT_TYPE
        ):
            raise errors.bad_parameter(
                f"The contentType must be a string of at most {MAX_CONTENT_TYPE} characters."
            )
        attributes = bundles.parse_attributes(body.get("attributes"))
        tags = bundles.parse_tags(body.get("tags"))
        now = time.time()
        version = kv.new_version()
        document: dict[str, Any] = {"attributes": {**attributes, "updated": int(now)}, "tags": tags or {}}
        if content_type is not None:
            document["contentType"] = content_type
        with self.db.write() as conn:
            existing = kv.get_object(conn, vault.name, kv.SECRET, name)
            if existing is not None and existing.deleted:
                raise errors.deleted_but_recoverable("secret", name)
            sealed = self.sealer.seal(raw, kv.seal_purpose(vault.name, kv.SECRET, name.lower(), version))
            stored_name = existing.name if existing else name
            kv.add_version(
                conn, vault.name, kv.SECRET, stored_name, version, document, sealed, now, existing=existing
            )
            obj = kv.get_object(conn, vault.name, kv.SECRET, name)
            stored = kv.get_version(conn, vault.name, kv.SECRET, name.lower(), version)
        assert obj is not None and stored is not None
        return self.bundle(vault, obj, stored, with_value=True)

    def get(self, vault: Vault, name: str, version: str | None) -> dict[str, Any]:
        obj, found = self._version(vault, name, version)
        if not bundles.is_enabled(found):
            raise errors.disabled("secret", "get")
        return self.bundle(vault, obj, found, with_value=True)

    def update(self, vault: Vault, name: str, version: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /secrets/{name}/{version}``: contentType, attributes, tags (no value in the answer)."""
        content_type = body.get("contentType")
        if content_type is not None and (
            not isinstance(content_type, str) or len(content_type) > MAX_CONTENT_TYPE
        ):
            raise errors.bad_parameter(
                f"The contentType must be a string of at most {MAX_CONTENT_TYPE} characters."
            )
        attributes = bundles.parse_attributes(body.get("attributes"))
        tags = bundles.parse_tags(body.get("tags"))
        obj, found = self._version(vault, name, version)
        document = dict(found.document)
        merged = {**(document.get("attributes") or {}), **attributes, "updated": int(time.time())}
        if merged.get("nbf") is not None and merged.get("exp") is not None and merged["nbf"] > merged["exp"]:
            raise errors.bad_parameter("The 'nbf' attribute must not be later than the 'exp' attribute.")
        document["attributes"] = merged
        if content_type is not None:
            document["contentType"] = content_type
        if tags is not None:
            document["tags"] = tags
        with self.db.write() as conn:
            kv.replace_document(conn, found, document)
            stored = kv.get_version(conn, vault.name, kv.SECRET, obj.name_key, found.version)
        assert stored is not None
        return self.bundle(vault, obj, stored, with_value=False)

    def _page(
        self, vault: Vault, *, deleted: bool, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self.db.read() as conn:
            objs = kv.list_objects(conn, vault.name, kv.SECRET, deleted=deleted, after=after, limit=size + 1)
            items = []
            for obj in objs[:size]:
                latest = kv.get_version(conn, vault.name, kv.SECRET, obj.name_key, obj.latest_version)
                if latest is not None:
                    items.append(self.item(vault, obj, latest, versioned=False))
        return items, (objs[size - 1].name_key if len(objs) > size else None)

    def list_latest(
        self, vault: Vault, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        return self._page(vault, deleted=False, after=after, size=size)

    def list_deleted(
        self, vault: Vault, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        return self._page(vault, deleted=True, after=after, size=size)

    def list_versions(
        self, vault: Vault, name: str, after: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        obj = self._live(vault, name)
        with self.db.read() as conn:
            versions = kv.list_versions(conn, obj, after=after, limit=size + 1)
        items = [self.item(vault, obj, v, versioned=True) for v in versions[:size]]
        return items, (versions[size - 1].version if len(versions) > size else None)

    def delete(self, vault: Vault, name: str) -> dict[str, Any]:
        now = time.time()
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.SECRET, name)
            if obj is None or obj.deleted:
                raise errors.not_found("secret", name)
            latest = kv.get_version(conn, vault.name, kv.SECRET, obj.name_key, obj.latest_version)
            assert latest is not None
            if not vault.soft_delete:
                kv.purge(conn, obj)
                return self.bundle(vault, obj, latest, with_value=False)
            kv.set_deleted(conn, obj, now, now + vault.retention_days * bundles.SECONDS_PER_DAY)
            deleted = kv.get_object(conn, vault.name, kv.SECRET, name)
        assert deleted is not None
        return self.bundle(vault, deleted, latest, with_value=False)

    def get_deleted(self, vault: Vault, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            obj = kv.get_object(conn, vault.name, kv.SECRET, name)
            latest = (
                kv.get_version(conn, vault.name, kv.SECRET, obj.name_key, obj.latest_version) if obj else None
            )
        if obj is None or not obj.deleted or latest is None:
            raise errors.deleted_not_found("secret", name)
        return self.bundle(vault, obj, latest, with_value=False)

    def recover(self, vault: Vault, name: str) -> dict[str, Any]:
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.SECRET, name)
            if obj is None or not obj.deleted:
                raise errors.deleted_not_found("secret", name)
            kv.set_deleted(conn, obj, None, None)
            live = kv.get_object(conn, vault.name, kv.SECRET, name)
            latest = kv.get_version(conn, vault.name, kv.SECRET, obj.name_key, obj.latest_version)
        assert live is not None and latest is not None
        return self.bundle(vault, live, latest, with_value=False)

    def purge(self, vault: Vault, name: str) -> None:
        with self.db.write() as conn:
            obj = kv.get_object(conn, vault.name, kv.SECRET, name)
            if obj is None or not obj.deleted:
                raise errors.deleted_not_found("secret", name)
            if vault.purge_protection:
                raise errors.purge_not_enabled()
            kv.purge(conn, obj)

    def backup(self, vault: Vault, name: str) -> bytes:
        obj = self._live(vault, name)
        with self.db.read() as conn:
            versions = kv.all_versions(conn, obj)
        return backup.seal(self.sealer, kv.SECRET, obj, versions)

    def restore(self, vault: Vault, blob: bytes) -> dict[str, Any]:
        obj, versions = backup.open_blob(self.sealer, kv.SECRET, blob)
        with self.db.write() as conn:
            if kv.get_object(conn, vault.name, kv.SECRET, obj["name"]) is not None:
                raise errors.already_exists("secret", obj["name"])
            restored = backup.restore_versions(conn, self.sealer, vault, kv.SECRET, obj, versions)
            latest = kv.get_version(conn, vault.name, kv.SECRET, restored.name_key, restored.latest_version)
        assert latest is not None
        return self.bundle(vault, restored, latest, with_value=False)
