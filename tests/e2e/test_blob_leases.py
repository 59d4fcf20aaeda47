"""Leases (acquire, renew, change, break, release; blob and container) and snapshots (delete rules)
over the wire, with Azure's status codes and ``x-ms-error-code`` for each refusal."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.e2e.storage_helpers import (
    BLOB_ROLES,
    account_name,
    assert_blob_error,
    blob_client,
    create_account,
    grant,
    storage_token,
)
from tests.e2e.workload_helpers import Unique, create_group
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow


def test_lease_lifecycle_and_snapshot_rules(server: KeylessServer, unique: Unique) -> None:
    group = create_group(server, unique)
    name = account_name()
    doc = create_account(server, group, name)
    grant(server, server.admin["objectId"], BLOB_ROLES["owner"], doc["id"])
    with blob_client(server, name, storage_token(server)) as http:
        assert http.put("/lease", params={"restype": "container"}).status_code == 201
        put = {"x-ms-blob-type": "BlockBlob"}
        assert http.put("/lease/b", content=b"v1", headers=put).status_code == 201

        def lease(action: str, **headers: str) -> httpx.Response:
            return http.put(
                "/lease/b", params={"comp": "lease"}, headers={"x-ms-lease-action": action, **headers}
            )

        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        r = lease("acquire", **{"x-ms-lease-duration": "-1", "x-ms-proposed-lease-id": first})
        assert r.status_code == 201 and r.headers["x-ms-lease-id"] == first
        assert_blob_error(lease("acquire", **{"x-ms-lease-duration": "-1"}), 409, "LeaseAlreadyPresent")
        assert_blob_error(lease("acquire", **{"x-ms-lease-duration": "5"}), 400, "InvalidHeaderValue")
        head = http.head("/lease/b")
        assert (head.headers["x-ms-lease-state"], head.headers["x-ms-lease-status"]) == ("leased", "locked")
        assert head.headers["x-ms-lease-duration"] == "infinite"
        assert_blob_error(http.put("/lease/b", content=b"x", headers=put), 412, "LeaseIdMissing")
        wrong = {**put, "x-ms-lease-id": second}
        assert_blob_error(
            http.put("/lease/b", content=b"x", headers=wrong), 412, "LeaseIdMismatchWithBlobOperation"
        )
        assert_blob_error(
            lease("renew", **{"x-ms-lease-id": second}), 409, "LeaseIdMismatchWithLeaseOperation"
        )
        assert lease("renew", **{"x-ms-lease-id": first}).status_code == 200
        r = lease("change", **{"x-ms-lease-id": first, "x-ms-proposed-lease-id": second})
        assert r.status_code == 200 and r.headers["x-ms-lease-id"] == second
        r = lease("break", **{"x-ms-lease-break-period": "0"})
        assert r.status_code == 202 and r.headers["x-ms-lease-time"] == "0"
        assert http.head("/lease/b").headers["x-ms-lease-state"] == "broken"
        assert_blob_error(lease("renew", **{"x-ms-lease-id": second}), 409, "LeaseIsBrokenAndCannotBeRenewed")
        assert http.put("/lease/b", content=b"v2", headers=put).status_code == 201  # broken: writable
        assert lease("release", **{"x-ms-lease-id": second}).status_code == 200
        assert http.head("/lease/b").headers["x-ms-lease-state"] == "available"
        assert_blob_error(
            lease("release", **{"x-ms-lease-id": second}), 409, "LeaseNotPresentWithLeaseOperation"
        )

        # Snapshots: a blob with snapshots is deleted only with x-ms-delete-snapshots.
        snap = http.put("/lease/b", params={"comp": "snapshot"}).headers["x-ms-snapshot"]
        assert http.put("/lease/b", content=b"v3", headers=put).status_code == 201
        assert http.get("/lease/b", params={"snapshot": snap}).content == b"v2"
        assert_blob_error(http.delete("/lease/b"), 409, "SnapshotsPresent")
        assert http.delete("/lease/b", headers={"x-ms-delete-snapshots": "only"}).status_code == 202
        assert_blob_error(http.get("/lease/b", params={"snapshot": snap}), 404, "BlobNotFound")
        assert http.get("/lease/b").content == b"v3"
        assert http.delete("/lease/b").status_code == 202

        # A container lease guards its deletion.
        r = http.put(
            "/lease",
            params={"restype": "container", "comp": "lease"},
            headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "15"},
        )
        assert r.status_code == 201
        container_lease = r.headers["x-ms-lease-id"]
        assert_blob_error(http.delete("/lease", params={"restype": "container"}), 412, "LeaseIdMissing")
        listed = http.get("/", params={"comp": "list", "prefix": "lease"})
        assert re.search(r"<LeaseState>leased</LeaseState>", listed.text)
        r = http.delete("/lease", params={"restype": "container"}, headers={"x-ms-lease-id": container_lease})
        assert r.status_code == 202
        assert_blob_error(http.get("/lease", params={"restype": "container"}), 404, "ContainerNotFound")
