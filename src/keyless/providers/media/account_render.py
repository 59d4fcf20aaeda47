"""The read-only parts of an account's encryption, kept in its stored document so a GET is one read.

``encryption.keyVaultProperties.currentKeyIdentifier``: the versioned id of the key that wraps the
account key (media.md §3: "the current key … including the key version"). ``encryption.status``
is never answered: no real response or spec example shows a value (media-az.md §2), so Keyless
does not invent one; an inaccessible key shows as every operation's 400 instead.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from keyless.store.tables import resources


def encryption_state(encryption: dict[str, Any], status: str, current_key_id: str | None) -> dict[str, Any]:
    """``encryption`` with ``currentKeyIdentifier`` set for a CustomerKey account (``status``, the
    key row's, is not rendered; see the module docstring)."""
    out = {k: v for k, v in encryption.items() if k != "status"}
    if out.get("type") != "CustomerKey":
        return out
    vault = dict(out.get("keyVaultProperties") or {})
    if current_key_id:
        vault["currentKeyIdentifier"] = current_key_id
    out["keyVaultProperties"] = vault
    return out


def set_encryption_state(
    conn: sa.Connection, resource_key: str, status: str, current_key_id: str | None
) -> None:
    """Rewrite the stored account document's encryption read-only fields (inside ``conn``'s transaction)."""
    found = conn.execute(sa.select(resources.c.document).where(resources.c.id_key == resource_key)).first()
    if found is None:
        return
    document = orjson.loads(found.document)
    props = dict(document.get("properties") or {})
    props["encryption"] = encryption_state(dict(props.get("encryption") or {}), status, current_key_id)
    document["properties"] = props
    conn.execute(
        resources.update()
        .where(resources.c.id_key == resource_key)
        .values(document=orjson.dumps(document).decode())
    )
