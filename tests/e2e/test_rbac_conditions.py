"""RBAC writes (issue 8, item 7) with azure-mgmt-authorization and azure-mgmt-msi: a role
assignment's condition must parse under Azure's grammar at version 2.0 (else 400
``InvalidRoleAssignmentCondition``, nothing stored); ``principalType`` given skips the directory
lookup; parallel federated-credential writes on one identity get Azure's 409."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.arm_helpers import assert_arm_error, fic_path
from tests.e2e.rbac_helpers import (
    AUTH_API,
    BLOB_READER,
    READER,
    all_assignments,
    create_group,
    create_uami,
    rg_scope,
    role_id,
)
from tests.keyless_server import KeylessServer

MSI_API = "2023-01-31"
BLOB_CONDITION = (
    "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'photos'))"
)
# The built-in "Key Vault Data Access Administrator"-style delegation condition: bare GUIDs in a set.
DELEGATION_CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{4633458b-17de-408a-b874-0445c86b69e6, 21090545-7ca7-4776-b22c-e363652d74d2})) AND "
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{4633458b-17de-408a-b874-0445c86b69e6}))"
)

SDK_CONDITIONS = """
import json, os
from uuid import uuid4
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
auth = AuthorizationManagementClient(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
out = {}
for label, role, condition, version in CASES:
    try:
        made = auth.role_assignments.create(SCOPE, str(uuid4()), {
            "role_definition_id": role, "principal_id": PRINCIPAL, "principal_type": "ServicePrincipal",
            "condition": condition, "condition_version": version})
        out[label] = ["created", made.condition, made.condition_version]
    except HttpResponseError as exc:
        out[label] = [exc.status_code, exc.error.code, exc.error.message]
print(json.dumps(out))
"""


def _run(srv: KeylessServer, code: str, **values: Any) -> Any:
    head = "".join(f"{key} = {value!r}\n" for key, value in values.items())
    result = srv.run_python(head + code)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_conditions_are_parsed_and_bad_ones_refused(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group = unique("rg-cond-")
    create_group(server, group)
    principal = create_uami(server, group, unique("id"))["properties"]["principalId"]
    blob, reader = role_id(server, BLOB_READER), role_id(server, READER)
    bad = [
        ("version 1.0", blob, BLOB_CONDITION, "1.0"),
        ("unbalanced", blob, BLOB_CONDITION[:-1], "2.0"),
        (
            "mixed and/or",
            blob,
            "@Resource[a:b] StringEquals 'x' AND @Resource[a:c] StringEquals 'y' OR "
            "@Resource[a:d] StringEquals 'z'",
            "2.0",
        ),
        ("unknown operator", blob, "@Resource[a:b] StringIsh 'x'", "2.0"),
        ("wrong value type", blob, "@Resource[a:b] NumericEquals 'x'", "2.0"),
        ("unknown source", blob, "@Body[a:b] StringEquals 'x'", "2.0"),
        ("not a guid", reader, "@Request[a:b] ForAnyOfAnyValues:GuidEquals {'nope'}", "2.0"),
        ("prose", blob, "only on Tuesdays", "2.0"),
        ("no such date", blob, "@Resource[a:b] DateTimeEquals '2020-13-45T00:00:00Z'", "2.0"),
        ("no February 30th", blob, "@Resource[a:b] DateTimeGreaterThan '2021-02-30T00:00:00.0Z'", "2.0"),
    ]
    good = [
        ("blob", blob, BLOB_CONDITION, "2.0"),
        ("delegation", reader, DELEGATION_CONDITION, None),  # the version defaults to 2.0
    ]
    before = all_assignments(server)
    out = _run(server, SDK_CONDITIONS, SCOPE=rg_scope(server, group), PRINCIPAL=principal, CASES=bad)
    for label, *_ in bad:
        assert out[label] == [
            400,
            "InvalidRoleAssignmentCondition",
            "The given role assignment condition is invalid.",
        ], label
    assert all_assignments(server) == before  # nothing stored
    out = _run(server, SDK_CONDITIONS, SCOPE=rg_scope(server, group), PRINCIPAL=principal, CASES=good)
    assert out["blob"] == ["created", BLOB_CONDITION, "2.0"]
    assert out["delegation"] == ["created", DELEGATION_CONDITION, "2.0"]


def test_condition_bounds_over_raw_http(server: KeylessServer, unique: Callable[[str], str]) -> None:
    group = unique("rg-cond-")
    create_group(server, group)
    principal = create_uami(server, group, unique("id"))["properties"]["principalId"]
    scope = rg_scope(server, group)
    before = all_assignments(server)
    deep = "(" * 100 + "ActionMatches{'a/b'}" + ")" * 100
    nots = "!" * 500 + "ActionMatches{'a/b'}"
    huge = "@Resource[a:b] StringEquals '" + "x" * 9000 + "'"
    with server.arm() as arm:
        for condition in (deep, nots, huge):
            r = arm.put(
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                params={"api-version": AUTH_API},
                json={
                    "properties": {
                        "roleDefinitionId": role_id(server, BLOB_READER),
                        "principalId": principal,
                        "condition": condition,
                    }
                },
            )
            assert_arm_error(r, 400, "InvalidRoleAssignmentCondition")
    assert all_assignments(server) == before


UNKNOWN_PRINCIPAL = """
import json, os
from uuid import uuid4
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
auth = AuthorizationManagementClient(DefaultAzureCredential(), os.environ["AZURE_SUBSCRIPTION_ID"])
out = {}
made = auth.role_assignments.create(SCOPE, str(uuid4()), {
    "role_definition_id": ROLE, "principal_id": GHOST, "principal_type": "ServicePrincipal"})
out["typed"] = [made.principal_id, made.principal_type]
try:
    auth.role_assignments.create(SCOPE, str(uuid4()), {"role_definition_id": ROLE, "principal_id": GHOST2})
except HttpResponseError as exc:
    out["untyped"] = [exc.status_code, exc.error.code]
print(json.dumps(out))
"""


def test_principal_type_given_skips_the_directory_lookup(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group = unique("rg-ghost-")
    create_group(server, group)
    ghost, ghost2 = str(uuid.uuid4()), str(uuid.uuid4())
    out = _run(
        server,
        UNKNOWN_PRINCIPAL,
        SCOPE=rg_scope(server, group),
        ROLE=role_id(server, READER),
        GHOST=ghost,
        GHOST2=ghost2,
    )
    assert out["typed"] == [ghost, "ServicePrincipal"]
    assert out["untyped"] == [400, "PrincipalNotFound"]


def _put_fic(arm: httpx.Client, path: str, subject: str) -> httpx.Response:
    return arm.put(
        path,
        params={"api-version": MSI_API},
        json={
            "properties": {
                "issuer": "https://token.actions.githubusercontent.com",
                "subject": subject,
                "audiences": ["api://AzureADTokenExchange"],
            }
        },
    )


def test_parallel_federated_credential_writes_conflict(
    server: KeylessServer, unique: Callable[[str], str]
) -> None:
    group, identity = unique("rg-fic-"), unique("id")
    create_group(server, group)
    create_uami(server, group, identity)
    token = server.admin_token()
    results: list[httpx.Response] = []
    barrier = threading.Barrier(6)

    def write(i: int) -> None:
        with server.arm(token) as arm:
            barrier.wait()
            results.append(_put_fic(arm, fic_path(server, group, identity, f"par{i}"), f"repo:o/r:ref:{i}"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) >= 1 and statuses.count(409) >= 1, [r.text for r in results]
    assert set(statuses) <= {201, 409}
    for r in results:
        if r.status_code == 409:
            message = assert_arm_error(
                r, 409, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
            )
            assert "Concurrent Federated Identity Credentials writes" in message
    # Each refused write stored nothing; each accepted one is there.
    with server.arm(token) as arm:
        listed = arm.get(
            f"{fic_path(server, group, identity, 'x').rsplit('/', 1)[0]}", params={"api-version": MSI_API}
        )
        assert listed.status_code == 200, listed.text
        names = sorted(item["name"] for item in listed.json()["value"])
        created = sorted(r.json()["name"] for r in results if r.status_code == 201)
        assert names == created
        # Sequential writes, one after another's answer, never conflict (a client that retries wins).
        for i in range(3):
            r = _put_fic(arm, fic_path(server, group, identity, f"seq{i}"), f"repo:o/r:seq:{i}")
            assert r.status_code == 201, r.text
        r = arm.delete(fic_path(server, group, identity, "seq0"), params={"api-version": MSI_API})
        assert r.status_code == 200, r.text
