"""Container operations: Create, Delete, Get Properties / Metadata, Set Metadata, Get / Set ACL,
Lease Container (REST docs of each; response headers as the SDK's generated client reads them).

Set Container ACL bounds (REST docs): at most 5 signed identifiers, ids up to 64 characters.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from keyless.providers.storage.accounts import AccountView
from keyless.providers.storage.blob import errors, leases, names, store
from keyless.providers.storage.blob.files import BlobFiles
from keyless.providers.storage.blob.request import BlobRequest, Reply, check_conditions
from keyless.providers.storage.blob.xml import XML_DECLARATION, el, parse, rfc1123, text
from keyless.store.db import Database
from keyless.store.tables import blob_containers
from keyless.web import read_body

PUBLIC_LEVELS = ("container", "blob")
MAX_IDENTIFIERS = 5
MAX_ACL_BODY = 64 * 1024


def _public_access(req: BlobRequest, account: AccountView) -> str | None:
    value = req.headers.get("x-ms-blob-public-access")
    if value is None or value == "":
        return None
    if value not in PUBLIC_LEVELS:
        raise errors.invalid_header("x-ms-blob-public-access", value)
    if not account.allows_blob_public_access():
        raise errors.public_access_not_permitted()
    return value


def base_headers(row: Any) -> dict[str, str]:
    return {"ETag": store.quoted(row.etag), "Last-Modified": rfc1123(row.last_modified)}


def require(db: Database, account: str, name: str) -> Any:
    row = store.container(db, account, name)
    if row is None:
        raise errors.container_not_found()
    return row


def create(db: Database, req: BlobRequest, account: AccountView, name: str) -> Reply:
    metadata = names.metadata_from_headers(req.header_pairs)
    public = _public_access(req, account)
    etag = store.new_etag()
    try:
        with db.write() as conn:
            if store.container_for_update(conn, account.name, name) is not None:
                raise errors.container_exists()
            conn.execute(
                sa.insert(blob_containers).values(
                    account=account.name,
                    name=name,
                    etag=etag,
                    created_at=req.now,
                    last_modified=req.now,
                    metadata=store.dumps(metadata),
                    public_access=public,
                    signed_identifiers=None,
                )
            )
    except sa.exc.IntegrityError:
        raise errors.container_exists() from None
    return Reply(201, {"ETag": store.quoted(etag), "Last-Modified": rfc1123(req.now)})


async def delete(db: Database, files: BlobFiles, req: BlobRequest, account: AccountView, name: str) -> Reply:
    with db.write() as conn:
        row = store.container_for_update(conn, account.name, name)
        if row is None:
            raise errors.container_not_found()
        check_conditions(req, row, read=False)
        leases.check(row, req.lease_id(), req.now, "container", write=True)
        doomed = store.delete_container_rows(conn, account.name, name)
    await files.remove(doomed)
    return Reply(202)


def properties(db: Database, req: BlobRequest, row: Any) -> Reply:
    leases.check(row, req.lease_id(), req.now, "container", write=False)
    headers = base_headers(row)
    headers.update(leases.headers(row, req.now))
    for key, value in store.loads(row.metadata).items():
        headers[f"x-ms-meta-{key}"] = value
    if row.public_access:
        headers["x-ms-blob-public-access"] = row.public_access
    headers.update(
        {
            "x-ms-has-immutability-policy": "false",
            "x-ms-has-legal-hold": "false",
            "x-ms-default-encryption-scope": "$account-encryption-key",
            "x-ms-deny-encryption-scope-override": "false",
            "x-ms-immutable-storage-with-versioning-enabled": "false",
        }
    )
    return Reply(200, headers)


def _update(
    db: Database, req: BlobRequest, account: str, name: str, values: dict[str, Any], *, lease_write: bool
) -> Reply:
    etag = store.new_etag()
    with db.write() as conn:
        row = store.container_for_update(conn, account, name)
        if row is None:
            raise errors.container_not_found()
        check_conditions(req, row, read=False)
        leases.check(row, req.lease_id(), req.now, "container", write=lease_write)
        conn.execute(
            sa.update(blob_containers)
            .where(blob_containers.c.account == account, blob_containers.c.name == name)
            .values(etag=etag, last_modified=req.now, **values)
        )
    return Reply(200, {"ETag": store.quoted(etag), "Last-Modified": rfc1123(req.now)})


def set_metadata(db: Database, req: BlobRequest, account: AccountView, name: str) -> Reply:
    metadata = names.metadata_from_headers(req.header_pairs)
    return _update(db, req, account.name, name, {"metadata": store.dumps(metadata)}, lease_write=False)


def get_acl(req: BlobRequest, row: Any) -> Reply:
    leases.check(row, req.lease_id(), req.now, "container", write=False)
    identifiers = store.loads(row.signed_identifiers) or []
    parts = [XML_DECLARATION, "<SignedIdentifiers>"]
    for item in identifiers:
        parts.append(f"<SignedIdentifier>{el('Id', item['id'])}<AccessPolicy>")
        for key, tag in (("start", "Start"), ("expiry", "Expiry"), ("permission", "Permission")):
            if item.get(key) is not None:
                parts.append(el(tag, item[key]))
        parts.append("</AccessPolicy></SignedIdentifier>")
    parts.append("</SignedIdentifiers>")
    headers = base_headers(row)
    if row.public_access:
        headers["x-ms-blob-public-access"] = row.public_access
    return Reply(200, headers, "".join(parts).encode(), errors.XML_TYPE)


async def set_acl(db: Database, req: BlobRequest, account: AccountView, name: str) -> Reply:
    public = _public_access(req, account)
    length = req.content_length(required=False, limit=MAX_ACL_BODY)
    raw = await read_body(req.receive, MAX_ACL_BODY) if length or "content-length" not in req.headers else b""
    identifiers: list[dict[str, Any]] = []
    if raw.strip():
        root = parse(raw)
        if root.tag != "SignedIdentifiers":
            raise errors.invalid_xml()
        for item in root.findall("SignedIdentifier"):
            ident = text(item.find("Id"))
            if not ident or len(ident) > 64:
                raise errors.invalid_input()
            policy = item.find("AccessPolicy")
            entry: dict[str, Any] = {"id": ident}
            if policy is not None:
                for key, tag in (("start", "Start"), ("expiry", "Expiry"), ("permission", "Permission")):
                    node = policy.find(tag)
                    if node is not None and node.text:
                        if len(node.text) > 64:
                            raise errors.invalid_input()
                        entry[key] = node.text
            identifiers.append(entry)
        if len(identifiers) > MAX_IDENTIFIERS:
            raise errors.invalid_input("More than five signed identifiers are not permitted.")
    values = {
        "public_access": public,
        "signed_identifiers": store.dumps(identifiers) if identifiers else None,
    }
    return _update(db, req, account.name, name, values, lease_write=False)


def lease(db: Database, req: BlobRequest, account: AccountView, name: str) -> Reply:
    with db.write() as conn:
        row = store.container_for_update(conn, account.name, name)
        if row is None:
            raise errors.container_not_found()
        check_conditions(req, row, read=False)
        status, updates, headers = leases.apply(row, req.headers, req.now, "container")
        conn.execute(
            sa.update(blob_containers)
            .where(blob_containers.c.account == account.name, blob_containers.c.name == name)
            .values(**updates)
        )
    headers.update(base_headers(row))
    return Reply(status, headers)


def stored_policy(
    db: Database, account: str, container: str, identifier: str
) -> tuple[str | None, str | None, str | None] | None:
    """(permission, start, expiry) of a container's stored access policy ``identifier``, or None."""
    row = store.container(db, account, container)
    if row is None:
        return None
    for item in store.loads(row.signed_identifiers) or []:
        if item.get("id") == identifier:
            return item.get("permission"), item.get("start"), item.get("expiry")
    return None
