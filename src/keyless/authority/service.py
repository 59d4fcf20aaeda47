"""The authority's operations, free of HTTP: discovery documents and the token grants."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from keyless.authority import errors
from keyless.authority.federation import Federation
from keyless.authority.keys import KeySet
from keyless.authority.resources import Audience, app_id_of, first_party_audience, resource_from_scope
from keyless.authority.tokens import IssuedToken, TokenIssuer, TokenValidator, v2_issuer_for
from keyless.directory import principals
from keyless.outbound import OutboundPolicy
from keyless.store.db import Database
from keyless.store.tables import tenants

CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Authority:
    def __init__(
        self,
        db: Database,
        keyset: KeySet,
        client_token_lifetime: int,
        managed_identity_token_lifetime: int,
        leeway: int,
        outbound: OutboundPolicy,
    ) -> None:
        self.db = db
        self.keyset = keyset
        self.issuer = TokenIssuer(keyset)
        self.client_token_lifetime = client_token_lifetime
        self.managed_identity_token_lifetime = managed_identity_token_lifetime
        self._tenants: dict[str, str] = {}
        self.validator = TokenValidator(keyset, self.principal, self.is_known_tenant, leeway)
        self.federation = Federation(db, keyset, outbound)
        self.federation.is_own_issuer = self._is_own_v2_issuer

    # --- directory lookups -------------------------------------------------------------

    def _load_tenants(self) -> None:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(tenants.c.tenant_id, tenants.c.default_domain)).all()
        mapping: dict[str, str] = {}
        for row in rows:
            mapping[row.tenant_id.lower()] = row.tenant_id
            mapping[row.default_domain.lower()] = row.tenant_id
        self._tenants = mapping

    def resolve_tenant(self, tenant: str) -> str | None:
        """A tenant GUID or domain name -> the tenant id; None if unknown."""
        key = tenant.lower()
        if key not in self._tenants:
            self._load_tenants()  # tenants are created rarely: reload on a miss
        return self._tenants.get(key)

    def is_known_tenant(self, tenant_id: str) -> bool:
        return self.resolve_tenant(tenant_id) == tenant_id

    def _is_own_v2_issuer(self, issuer: str) -> bool:
        prefix, suffix = "https://login.microsoftonline.com/", "/v2.0"
        if not issuer.startswith(prefix) or not issuer.endswith(suffix):
            return False
        tenant = issuer[len(prefix) : -len(suffix)]
        return v2_issuer_for(tenant) == issuer and self.is_known_tenant(tenant)

    def principal(self, object_id: str) -> principals.Principal | None:
        return principals.lookup_by_object_id(self.db, object_id)

    def audience(self, resource: str, tenant_id: str) -> Audience | None:
        """What a token for ``resource`` carries, or None when the tenant knows no such resource
        (AADSTS500011): a first-party resource, or any app / service principal of the tenant by
        its appId, ``api://{appId}`` or an identifier URI (its v1.0 token's ``aud`` is the resource
        as requested, as Entra writes it: app registrations get v1.0 tokens unless they ask for
        v2.0, and Keyless's do not). The token endpoint and the identity endpoints both ask here."""
        if len(resource) > 256 or not resource.strip():
            return None
        known = first_party_audience(resource)
        if known is not None:
            return known
        app_id = app_id_of(resource)
        app = (
            principals.lookup_by_app_id(self.db, app_id)
            if app_id is not None
            else principals.lookup_by_name(self.db, tenant_id, resource)
        )
        if app is None or app.tenant_id != tenant_id:
            return None
        return Audience(resource, 1)

    # --- discovery ---------------------------------------------------------------------

    def openid_configuration(self, base: str, tenant: str, v2: bool) -> dict[str, Any]:
        tenant_id = self.resolve_tenant(tenant)
        if tenant_id is None and tenant.lower() not in ("common", "organizations", "consumers"):
            raise errors.tenant_not_found(tenant)
        tid = tenant_id or "{tenantid}"
        path = f"{base}/{tenant_id or tenant}"
        if v2:
            return {
                "token_endpoint": f"{path}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{path}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"https://login.microsoftonline.com/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{path}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{path}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{path}/oauth2/v2.0/logout",
                "tenant_region_scope": "WW",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            }
        return {
            "token_endpoint": f"{path}/oauth2/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/common/discovery/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": f"https://sts.windows.net/{tid}/",
            "authorization_endpoint": f"{path}/oauth2/authorize",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{path}/oauth2/logout",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
        }

    def instance_discovery(self, base: str, authorization_endpoint: str) -> dict[str, Any]:
        host = base.split("://", 1)[-1]
        return {
            "tenant_discovery_endpoint": f"{base}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    # --- grants ------------------------------------------------------------------------

    async def token(self, tenant: str, form: Mapping[str, str], v1: bool) -> dict[str, Any]:
        """The OAuth2 token endpoint: client credentials with a secret or a federated assertion."""
        tenant_id = self.resolve_tenant(tenant)
        if tenant_id is None:
            raise errors.tenant_not_found(tenant, "invalid_request")
        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        if grant_type != CLIENT_CREDENTIALS:
            raise errors.unsupported_grant_type(grant_type)
        client_id = form.get("client_id")
        if not client_id:
            raise errors.missing_parameter("client_id")
        if v1:
            resource = form.get("resource")
            if not resource:
                raise errors.missing_parameter("resource")
        else:
            scope = form.get("scope")
            if not scope:
                raise errors.missing_parameter("scope")
            resource = resource_from_scope(scope)
        # Single-statement reads outside a transaction: this is the hot path of every token request.
        principal = principals.lookup_by_app_id(self.db, client_id)
        if principal is None or principal.tenant_id != tenant_id:
            raise errors.application_not_found(client_id, tenant_id)
        assertion = form.get("client_assertion")
        if assertion:
            if form.get("client_assertion_type") != JWT_BEARER:
                raise errors.OAuthError(
                    400,
                    "invalid_request",
                    7000219,
                    f"'client_assertion_type' must be '{JWT_BEARER}' when a client assertion is given.",
                )
            # Federation: the assertion must match one of the identity's federated credentials.
            with self.db.read() as conn:
                owner = principals.owner_key_of(conn, principal.object_id)
            await self.federation.verify(principal, owner, assertion)
        else:
            secret = form.get("client_secret")
            if not secret:
                raise errors.missing_client_credential()
            if not principals.check_client_secret(self.db, principal.object_id, secret):
                raise errors.invalid_client_secret(client_id)
        audience = self.audience(resource, tenant_id)
        if audience is None:
            raise errors.resource_not_found(resource, tenant_id)
        issued = self.issuer.mint(
            principal, audience.aud, self.client_token_lifetime, version=audience.version
        )
        return token_response(issued, resource, v1)


def token_response(issued: IssuedToken, resource: str, v1: bool) -> dict[str, Any]:
    lifetime = issued.expires_on - int(time.time())
    if not v1:
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": issued.access_token,
        }
    # The v1 endpoint answers with strings, as Entra does.
    return {
        "token_type": "Bearer",
        "expires_in": str(lifetime),
        "ext_expires_in": str(lifetime),
        "expires_on": str(issued.expires_on),
        "not_before": str(issued.not_before),
        "resource": resource,
        "access_token": issued.access_token,
    }
