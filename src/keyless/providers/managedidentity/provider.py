"""User-assigned identities (each backed by a principal in the directory) and federated
identity credentials (which let an external token stand in for that principal)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlparse

import orjson
import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import RequestContext, StoredResource
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming, NameRule, ResourceType
from keyless.authority import principals
from keyless.outbound import URL_CHARACTERS
from keyless.store.tables import resources

NAMESPACE = "Microsoft.ManagedIdentity"
# Every api-version the specs define for Microsoft.ManagedIdentity.
API_VERSIONS = frozenset(
    [
        "2015-08-31-preview",
        "2018-11-30",
        "2021-09-30-preview",
        "2022-01-31-preview",
        "2023-01-31",
        "2023-07-31-preview",
        "2024-11-30",
        "2025-01-31-preview",
        "2025-05-31-preview",
        "2026-04-30",
        "2026-05-31",
    ]
)
# Federated identity credentials arrived in 2022-01-31-preview.
FIC_API_VERSIONS = frozenset(v for v in API_VERSIONS if v >= "2022-01-31-preview")
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience, not a secret)
MAX_FEDERATED_CREDENTIALS = 20
_FIELD_LIMIT = 600
_ISOLATION_SCOPES = ("None", "Regional")
_READ_ONLY = ("tenantId", "principalId", "clientId")
# How long a federated identity credential write is in flight (see ``claim_write_lease``).
FIC_WRITE_SECONDS = 0.25
_LEASE_KEY = "_ficWriteLeaseUntil"


class UserAssignedIdentityType(ResourceType):
    def __init__(self) -> None:
        super().__init__(
            namespace=NAMESPACE,
            type_path="userAssignedIdentities",
            api_versions=API_VERSIONS,
            name_rule=NameRule(
                re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$"),
                "The name must be 3 to 128 characters long, start with a letter or number, and contain "
                "only letters, numbers, hyphens and underscores.",
            ),
        )

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        given = incoming.properties or {}
        scope = given.get("isolationScope")
        if scope is not None and scope not in _ISOLATION_SCOPES:
            raise errors.bad_request(
                f"The value '{scope}' is not valid for isolationScope. Allowed values are 'None' and 'Regional'.",
                target="properties.isolationScope",
            )
        props: dict[str, Any] = {}
        if existing is not None:
            # Read-only properties come from the directory, never from the request.
            old = existing.document.get("properties") or {}
            props.update({k: old[k] for k in _READ_ONLY if k in old})
        if scope is not None:
            props["isolationScope"] = scope
        return props

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        if not created:
            return None
        principal = principals.create_principal(
            conn,
            tenant_id=ctx.caller.tenant_id,
            principal_type=principals.MANAGED_IDENTITY,
            display_name=resource.rid.name,
            managed_identity_resource_id=resource.rid.claims_form(),
            owner_key=resource.rid.key,
        )
        props = dict(resource.document.get("properties") or {})
        props.update(tenantId=principal.tenant_id, principalId=principal.object_id, clientId=principal.app_id)
        return props

    def render_properties(self, resource: StoredResource) -> dict[str, Any]:
        props = dict(resource.document.get("properties") or {})
        props.setdefault("isolationScope", "None")
        return props


def _bad(message: str, target: str | None = None) -> errors.ArmError:
    return errors.bad_request(message, target=target)


class FederatedIdentityCredentialType(ResourceType):
    def __init__(self) -> None:
        super().__init__(
            namespace=NAMESPACE,
            type_path="userAssignedIdentities/federatedIdentityCredentials",
            api_versions=FIC_API_VERSIONS,
            tracked=False,
            settle_seconds=FIC_WRITE_SECONDS,
            name_rule=NameRule(
                re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$"),
                "The name must be 3 to 120 characters long, start with a letter or number, and contain "
                "only letters, numbers, hyphens and underscores.",
            ),
        )

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        props = incoming.properties
        if not props:
            raise _bad("Federated Identity Credential from HTTP body has empty properties")
        issuer, subject, audiences = props.get("issuer"), props.get("subject"), props.get("audiences")
        if not isinstance(issuer, str) or not issuer.strip():
            raise _bad("Federated identity credential issuer is required.", "properties.issuer")
        try:
            parsed = urlparse(issuer)
            port_ok = parsed.port is None or parsed.port > 0
        except ValueError:
            parsed, port_ok = urlparse(""), False
        if (
            parsed.scheme != "https"
            or not parsed.hostname
            or not port_ok
            or len(issuer) > _FIELD_LIMIT
            or not URL_CHARACTERS.fullmatch(issuer)
        ):
            shown = issuer[:_FIELD_LIMIT]
            raise _bad(
                f"Federated identity credential issuer '{shown}' must be an https URL (printable ASCII) of at most "
                f"{_FIELD_LIMIT} characters.",
                "properties.issuer",
            )
        if not isinstance(subject, str) or not subject.strip() or len(subject) > _FIELD_LIMIT:
            raise _bad(
                f"Federated identity credential subject is required and must be at most {_FIELD_LIMIT} characters.",
                "properties.subject",
            )
        if "*" in issuer or "*" in subject:
            raise _bad("Federated identity credentials do not support wildcards.", "properties.subject")
        if (
            not isinstance(audiences, list)
            or len(audiences) != 1
            or not isinstance(audiences[0], str)
            or not audiences[0]
            or len(audiences[0]) > _FIELD_LIMIT
        ):
            raise _bad(
                "Federated identity credentials must have exactly one audience.", "properties.audiences"
            )
        description = props.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > _FIELD_LIMIT):
            raise _bad("Federated identity credential description is too long.", "properties.description")

        parent = rid.parent
        assert parent is not None
        siblings = conn.execute(
            sa.select(resources.c.id_key, resources.c.document).where(
                resources.c.parent_key == parent.key, resources.c.type_key == self.type_key
            )
        ).all()
        others = [s for s in siblings if s.id_key != rid.key]
        if existing is None and len(others) >= MAX_FEDERATED_CREDENTIALS:
            raise _bad(
                f"Too many Federated Identity Credentials are written to Managed Identity '{parent}'. "
                f"At most {MAX_FEDERATED_CREDENTIALS} are allowed."
            )
        for other in others:
            other_props = orjson.loads(other.document).get("properties") or {}
            if other_props.get("issuer") == issuer and other_props.get("subject") == subject:
                raise _bad("Issuer and subject combination already exists for this Managed Identity.")
        out: dict[str, Any] = {"issuer": issuer, "subject": subject, "audiences": [audiences[0]]}
        if description is not None:
            out["description"] = description
        claim_write_lease(conn, parent)
        return out

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        parent = resource.rid.parent
        if parent is not None:
            claim_write_lease(conn, parent)


def claim_write_lease(conn: sa.Connection, identity: ResourceId) -> None:
    """Claim the identity's federated-credential write lease inside the caller's write transaction,
    or raise Azure's 409 ``ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity``
    while another write holds it.

    Azure refuses concurrent FIC writes under one user-assigned identity with that 409 (azure-docs
    workload-identity-federation-considerations.md, "Concurrent updates aren't supported"; the code
    and text as deployments report them, e.g. Bicep ``@batchSize(1)`` notes: "Concurrent Federated
    Identity Credentials writes under the same managed identity are not supported").  It documents
    no window: a write there is in flight about a second.  Keyless models a write as in flight for
    ``FIC_WRITE_SECONDS`` after it commits: the lease lasts that long, and the wire layer answers
    the writer only once it is over (``settle_seconds``), so a sequential client never meets its own
    lease while parallel writers (milliseconds apart) do.  The lease lives in the identity's stored
    document (``_ficWriteLeaseUntil``, never rendered), read under a row lock (``FOR UPDATE`` on
    PostgreSQL; SQLite's write transactions are serial), so it holds across replicas.
    """
    row = conn.execute(
        sa.select(resources.c.document).where(resources.c.id_key == identity.key).with_for_update()
    ).first()
    if row is None:  # the engine checked the parent exists; a tree delete may be removing it
        return
    document = orjson.loads(row.document)
    now = time.time()
    until = document.get(_LEASE_KEY)
    if isinstance(until, (int, float)) and now < until <= now + FIC_WRITE_SECONDS:
        raise errors.ArmError(
            409,
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
            "Concurrent Federated Identity Credentials writes under the same managed identity are not supported.",
        )
    document[_LEASE_KEY] = now + FIC_WRITE_SECONDS
    conn.execute(
        resources.update()
        .where(resources.c.id_key == identity.key)
        .values(document=orjson.dumps(document).decode())
    )
