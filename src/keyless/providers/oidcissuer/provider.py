"""OIDC issuers for local workloads (``Keyless.Workload/oidcIssuers``): what a Kubernetes
cluster or a CI system is to Entra workload identity federation.

An issuer resource has its own URL (``properties.issuerURL``, from a GUID made when it is
created and never reused), and minting its tokens (``issueToken``) needs
``Keyless.Workload/oidcIssuers/issueToken/action`` on it. A federated credential that trusts
the URL therefore trusts exactly the principals with rights over that issuer, as trusting an
AKS cluster's issuer trusts that cluster's administrators. Keyless-specific: Azure has no
such resource type, its issuers live in AKS, GitHub and others.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.engine import RequestContext, StoredResource
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import Incoming, NameRule, ResourceType
from keyless.providers.managedidentity.provider import TOKEN_EXCHANGE_AUDIENCE
from keyless.store.tables import oidc_issuers

NAMESPACE = "Keyless.Workload"
API_VERSIONS = frozenset(["2026-11-01"])
# What a federated credential accepts (subject and audience are at most 600 characters there).
_FIELD_LIMIT = 600
# A Kubernetes TokenRequest's bounds: at least 10 minutes, here at most a day; an hour by default.
_MIN_LIFETIME, _MAX_LIFETIME, _DEFAULT_LIFETIME = 600, 86400, 3600
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")

# (issuer URL, subject, audience, lifetime seconds) -> (token, expiry epoch seconds).
IssuerMinter = Callable[[str, str, str, int], tuple[str, int]]
# (tenant id, issuer guid) -> issuer URL.
IssuerUrl = Callable[[str, str], str]


def _text_field(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not _PRINTABLE.fullmatch(value) or len(value) > _FIELD_LIMIT:
        raise errors.bad_request(
            f"'{name}' must be a string of 1 to {_FIELD_LIMIT} printable characters.", target=name
        )
    return value


class OidcIssuerType(ResourceType):
    def __init__(self, mint: IssuerMinter, url_for: IssuerUrl) -> None:
        self._mint = mint
        self._url_for = url_for
        super().__init__(
            namespace=NAMESPACE,
            type_path="oidcIssuers",
            api_versions=API_VERSIONS,
            name_rule=NameRule(
                re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,62}"),
                "The name must be 3 to 63 characters long, start with a letter or number, and contain "
                "only letters, numbers, hyphens and underscores.",
            ),
        )
        self.actions = {"issueToken": self._issue_token}

    def validate(
        self,
        ctx: RequestContext,
        conn: sa.Connection,
        rid: ResourceId,
        incoming: Incoming,
        existing: StoredResource | None,
    ) -> dict[str, Any]:
        """The issuer URL is made once, on creation, and never taken from a request."""
        if existing is not None:
            return {"issuerURL": (existing.document.get("properties") or {})["issuerURL"]}
        return {"issuerURL": self._url_for(ctx.caller.tenant_id, uuid.uuid4().hex)}

    def after_write(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, created: bool
    ) -> dict[str, Any] | None:
        if created:
            url = (resource.document.get("properties") or {})["issuerURL"]
            conn.execute(oidc_issuers.insert().values(issuer_url=url, resource_key=resource.rid.key))
        return None

    def before_delete(self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource) -> None:
        # Its URL stops resolving in the same transaction: its tokens are refused from now on.
        conn.execute(oidc_issuers.delete().where(oidc_issuers.c.resource_key == resource.rid.key))

    def _issue_token(
        self, ctx: RequestContext, conn: sa.Connection, resource: StoredResource, body: dict[str, Any]
    ) -> tuple[int, Any]:
        """``POST {issuer}/issueToken`` ``{"subject", "audience"?, "expirationSeconds"?}`` ->
        ``{"token", "issuer", "subject", "audience", "expirationTimestamp"}`` (a Kubernetes
        TokenRequest's status fields). The authorizer has already checked ``issueToken/action``.
        """
        if not isinstance(body, dict):
            raise errors.invalid_request_content("The request body must be a JSON object.")
        subject = _text_field(body, "subject")
        audience = _text_field(body, "audience", TOKEN_EXCHANGE_AUDIENCE)
        lifetime = body.get("expirationSeconds", _DEFAULT_LIFETIME)
        if (
            not isinstance(lifetime, int)
            or isinstance(lifetime, bool)
            or not _MIN_LIFETIME <= lifetime <= _MAX_LIFETIME
        ):
            raise errors.bad_request(
                f"'expirationSeconds' must be a whole number from {_MIN_LIFETIME} to {_MAX_LIFETIME}.",
                target="expirationSeconds",
            )
        issuer = (resource.document.get("properties") or {})["issuerURL"]
        token, expires = self._mint(issuer, subject, audience, lifetime)
        return 200, {
            "token": token,
            "issuer": issuer,
            "subject": subject,
            "audience": audience,
            "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
        }
