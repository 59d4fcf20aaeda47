"""Workload identity federation: an external token (the assertion) stands in for a
user-assigned identity that trusts its issuer and subject (a federated identity credential).

Keyless is itself an OIDC issuer for local workloads, like a Kubernetes service-account
issuer: ``https://login.microsoftonline.com/{tenant}/keyless/workload``. Assertions from
other issuers are verified against the keys their discovery document publishes.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import httpx
import jwt
import orjson
import sqlalchemy as sa

from keyless.authority import errors
from keyless.authority.keys import KeySet
from keyless.authority.principals import Principal
from keyless.store.tables import resources

FIC_TYPE_KEY = "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials"
ASSERTION_LIFETIME = 3600
_JWKS_CACHE_SECONDS = 300
_LEEWAY = 60


def workload_issuer(tenant_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant_id}/keyless/workload"


def _no_match(kind: str, value: Any, code: int) -> errors.OAuthError:
    return errors.OAuthError(
        400,
        "invalid_client",
        code,
        f"No matching federated identity record found for presented assertion {kind} '{value}'. Please check "
        "your federated identity credential Subject, Audience and Issuer against the presented assertion. "
        "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    )


def _malformed() -> errors.OAuthError:
    return errors.OAuthError(400, "invalid_request", 50027, "JWT token is invalid or is malformed.")


class Federation:
    def __init__(self, keyset: KeySet) -> None:
        self.keyset = keyset
        self._remote_keys: dict[str, tuple[float, dict[str, Any]]] = {}

    @staticmethod
    def issuer_of(tenant_id: str) -> str:
        return workload_issuer(tenant_id)

    def mint_assertion(self, tenant_id: str, subject: str, audience: str) -> str:
        """An assertion from Keyless's own workload issuer (what `keyless run --federated` writes)."""
        now = int(time.time())
        key = self.keyset.active
        claims = {
            "iss": workload_issuer(tenant_id),
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),
        }
        assert key.private_key is not None
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})

    def verify(
        self, conn: sa.Connection, principal: Principal, owner_key: str | None, assertion: str
    ) -> None:
        """Accept ``assertion`` for ``principal`` or raise the AADSTS error Entra would."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _malformed() from exc
        issuer, subject, audience = unverified.get("iss"), unverified.get("sub"), unverified.get("aud")
        credentials = self._credentials(conn, owner_key)
        by_issuer = [c for c in credentials if c.get("issuer") == issuer]
        if not by_issuer:
            raise _no_match("issuer", issuer, 700211)
        if header.get("alg") != "RS256":
            raise errors.invalid_client_assertion("[Reason - Only RS256-signed assertions are supported.]")
        key = self._key_for(str(issuer), principal.tenant_id, header.get("kid"))
        if key is None:
            raise errors.invalid_client_assertion("[Reason - The key was not found.]")
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
                leeway=_LEEWAY,
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise errors.OAuthError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from exc
        except jwt.PyJWTError as exc:
            raise errors.invalid_client_assertion("[Reason - The signature could not be verified.]") from exc
        by_subject = [c for c in by_issuer if c.get("subject") == claims.get("sub")]
        if not by_subject:
            raise _no_match("subject", subject, 700213)
        presented = audience if isinstance(audience, list) else [audience]
        if not any(c.get("audiences", [None])[0] in presented for c in by_subject):
            raise _no_match("audience", audience, 700212)

    def _credentials(self, conn: sa.Connection, owner_key: str | None) -> list[dict[str, Any]]:
        if owner_key is None:
            return []
        rows = conn.execute(
            sa.select(resources.c.document).where(
                resources.c.parent_key == owner_key, resources.c.type_key == FIC_TYPE_KEY
            )
        ).all()
        return [orjson.loads(r.document).get("properties") or {} for r in rows]

    def _key_for(self, issuer: str, tenant_id: str, kid: Any) -> Any:
        if not isinstance(kid, str):
            return None
        if issuer == workload_issuer(tenant_id):
            return self.keyset.public_key(kid)
        jwks = self._remote_jwks(issuer)
        for jwk in jwks.get("keys", []):
            if jwk.get("kid") == kid and jwk.get("kty") == "RSA":
                return jwt.PyJWK(jwk, algorithm="RS256").key
        return None

    def _remote_jwks(self, issuer: str) -> dict[str, Any]:
        cached = self._remote_keys.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < _JWKS_CACHE_SECONDS:
            return cached[1]
        try:
            with httpx.Client(timeout=5, follow_redirects=False) as http:
                config = http.get(issuer.rstrip("/") + "/.well-known/openid-configuration").json()
                jwks: dict[str, Any] = http.get(config["jwks_uri"]).json()
        except (httpx.HTTPError, ValueError, KeyError):
            jwks = {"keys": []}
        self._remote_keys[issuer] = (time.monotonic(), jwks)
        return jwks
