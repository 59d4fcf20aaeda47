"""Workload identity federation: an external token (the assertion) stands in for a
user-assigned identity that trusts its issuer, subject and audience (a federated identity
credential).

Keyless is itself an OIDC issuer for local workloads, but only through *issuer resources*
(``Keyless.Workload/oidcIssuers``), the way an AKS cluster or a CI system has an issuer of its
own: each has its own URL (a fresh GUID, never reused) and minting its tokens needs rights on
that resource. There is no tenant-wide issuer that mints any subject, so no one can mint the
subject another identity trusts unless they have rights over the issuer that identity chose
to trust. Assertions from other issuers are verified against the keys their discovery
document publishes, fetched asynchronously within ``keyless.outbound``'s limits.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from keyless.authority import errors
from keyless.authority.keys import KeySet
from keyless.authority.resources import same_resource
from keyless.directory.principals import Principal
from keyless.outbound import OutboundError, OutboundPolicy, fetch_json, new_client
from keyless.store.db import Database
from keyless.store.tables import oidc_issuers, resources

FIC_TYPE_KEY = "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials"
OIDC_ISSUER_TYPE_KEY = "keyless.workload/oidcissuers"
ISSUER_HOST = "login.microsoftonline.com"
# https://login.microsoftonline.com/{tenant}/keyless/issuers/{guid}: one URL per issuer resource.
_LOCAL_ISSUER = re.compile(
    r"https://login\.microsoftonline\.com/([0-9a-f-]{36})/keyless/issuers/([0-9a-f]{32})", re.ASCII
)
_ISSUER_BY_URL = sa.select(oidc_issuers.c.resource_key).where(
    oidc_issuers.c.issuer_url == sa.bindparam("url")
)
_LEEWAY = 60
# RFC 7519 NumericDate as Entra reads it: whole seconds up to 9999-12-31T23:59:59Z.
_MAX_NUMERIC_DATE = 253402300799
_MAX_ASSERTION = 16 * 1024
# Remote issuers' keys: remembered 5 min (a failure 30 s), for at most this many issuers.
_JWKS_TTL = 300.0
_JWKS_FAILURE_TTL = 30.0
_JWKS_CACHE_SIZE = 256
_MAX_JWKS_KEYS = 100
_PRIVATE_PARTS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})
_log = logging.getLogger("keyless.federation")


def issuer_url(tenant_id: str, issuer_guid: str) -> str:
    """The URL of a Keyless OIDC issuer resource (what its tokens carry as ``iss``)."""
    return f"https://{ISSUER_HOST}/{tenant_id}/keyless/issuers/{issuer_guid}"


def parse_issuer_url(url: str) -> tuple[str, str] | None:
    """``(tenant id, issuer guid)`` of a Keyless issuer URL; None for any other string."""
    match = _LOCAL_ISSUER.fullmatch(url)
    return (match.group(1), match.group(2)) if match else None


def _no_match(kind: str, value: Any, code: int) -> errors.OAuthError:
    shown = str(value)[:300]
    return errors.OAuthError(
        400,
        "invalid_client",
        code,
        f"No matching federated identity record found for presented assertion {kind} '{shown}'. Please check "
        "your federated identity credential Subject, Audience and Issuer against the presented assertion. "
        "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    )


def _malformed() -> errors.OAuthError:
    return errors.OAuthError(400, "invalid_request", 50027, "JWT token is invalid or is malformed.")


def _is_numeric_date(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_NUMERIC_DATE


class Federation:
    """Mints Keyless issuers' tokens and verifies assertions against federated credentials."""

    def __init__(self, db: Database, keyset: KeySet, policy: OutboundPolicy) -> None:
        self.db = db
        self.keyset = keyset
        self.policy = policy
        self._remote: OrderedDict[str, tuple[float, dict[str, rsa.RSAPublicKey]]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[dict[str, rsa.RSAPublicKey]]] = {}
        self._client: httpx.AsyncClient | None = None
        self._client_lock = asyncio.Lock()
        # Hosts Keyless answers for (the platform sets the router's): their issuers are never fetched.
        self.serves_host: Callable[[str], bool] = lambda host: host == ISSUER_HOST
        # The authority's own v2.0 issuer of a tenant (the authority sets it): a managed identity's
        # token for api://AzureADTokenExchange is an assertion Entra accepts (MI as a credential).
        self.is_own_issuer: Callable[[str], bool] = lambda issuer: False

    # --- Keyless's own issuers -------------------------------------------------------------

    def mint(self, issuer: str, subject: str, audience: str, lifetime: int) -> tuple[str, int]:
        """A token of the Keyless issuer ``issuer`` for ``subject``: ``(JWT, expiry epoch seconds)``.

        Callers authorize first (``Keyless.Workload/oidcIssuers/issueToken/action`` on the issuer).
        """
        now = int(time.time())
        key = self.keyset.active
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),
        }
        assert key.private_key is not None
        token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
        return token, now + lifetime

    def local_issuer_exists(self, url: str) -> bool:
        """Whether ``url`` is the issuer URL of an existing ``oidcIssuers`` resource (one indexed read)."""
        if parse_issuer_url(url) is None:
            return False
        return self.db.query_one(_ISSUER_BY_URL, {"url": url}) is not None

    def discovery(self, base: str, tenant: str, issuer_guid: str) -> dict[str, Any] | None:
        """The OIDC discovery document of a Keyless issuer; None if no such issuer exists."""
        url = issuer_url(tenant.lower(), issuer_guid.lower())
        if not self.local_issuer_exists(url):
            return None
        path = url.removeprefix(f"https://{ISSUER_HOST}")
        return {
            "issuer": url,
            "jwks_uri": f"{base}{path}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    # --- verifying assertions --------------------------------------------------------------

    async def verify(self, principal: Principal, owner_key: str | None, assertion: str) -> None:
        """Accept ``assertion`` for ``principal`` or raise the AADSTS error Entra would.

        Entra's codes: 50027 malformed, 700211 no credential with this issuer, 700213 subject,
        700212 audience, 700024 outside its time range, 700027 signature or key problems.
        """
        if len(assertion) > _MAX_ASSERTION:
            raise _malformed()
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _malformed() from exc
        issuer, subject, audience = unverified.get("iss"), unverified.get("sub"), unverified.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if (
            not isinstance(issuer, str)
            or not isinstance(subject, str)
            or not all(isinstance(a, str) for a in audiences)
            or not _is_numeric_date(unverified.get("exp"))
            or not _is_numeric_date(unverified.get("nbf", 0))
        ):
            raise _malformed()
        credentials = self._credentials(owner_key)
        by_issuer = [c for c in credentials if c.get("issuer") == issuer]
        if not by_issuer:
            raise _no_match("issuer", issuer, 700211)
        if header.get("alg") != "RS256":
            raise errors.invalid_client_assertion("[Reason - Only RS256-signed assertions are supported.]")
        key = await self._key_for(issuer, header.get("kid"))
        if key is None:
            raise errors.invalid_client_assertion("[Reason - The key was not found.]")
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                issuer=issuer,
                options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
                leeway=_LEEWAY,
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise errors.OAuthError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from exc
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            raise errors.invalid_client_assertion("[Reason - The signature could not be verified.]") from exc
        by_subject = [c for c in by_issuer if c.get("subject") == claims.get("sub")]
        if not by_subject:
            raise _no_match("subject", subject, 700213)
        if not any(
            any(same_resource(str((c.get("audiences") or [""])[0]), str(a)) for a in audiences)
            for c in by_subject
        ):
            raise _no_match("audience", audience, 700212)

    def _credentials(self, owner_key: str | None) -> list[dict[str, Any]]:
        if owner_key is None:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(resources.c.document).where(
                    resources.c.parent_key == owner_key, resources.c.type_key == FIC_TYPE_KEY
                )
            ).all()
        return [orjson.loads(r.document).get("properties") or {} for r in rows]

    async def _key_for(self, issuer: str, kid: Any) -> rsa.RSAPublicKey | None:
        if not isinstance(kid, str) or len(kid) > 256:
            return None
        try:
            host = urlsplit(issuer).hostname or ""
        except ValueError:
            return None
        if self.serves_host(host):
            # Keyless answers for this host: never fetched, and only its issuer resources sign.
            own = self.local_issuer_exists(issuer) or self.is_own_issuer(issuer)
            return self.keyset.public_key(kid) if own else None
        return (await self._remote_keys(issuer)).get(kid)

    async def _remote_keys(self, issuer: str) -> dict[str, rsa.RSAPublicKey]:
        cached = self._remote.get(issuer)
        if cached is not None and time.monotonic() < cached[0]:
            self._remote.move_to_end(issuer)
            return cached[1]
        pending = self._inflight.get(issuer)
        if pending is None:
            # One fetch per issuer at a time, however many requests wait for it.
            pending = asyncio.ensure_future(self._fetch_keys(issuer))
            self._inflight[issuer] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(issuer, None))
        return await asyncio.shield(pending)

    async def _fetch_keys(self, issuer: str) -> dict[str, rsa.RSAPublicKey]:
        async with self._client_lock:
            if self._client is None:
                self._client = await asyncio.to_thread(new_client, self.policy)
            client = self._client
        ttl = _JWKS_TTL
        try:
            # Both documents within one time limit: no token request waits longer than that.
            async with asyncio.timeout(self.policy.timeout):
                config = await fetch_json(
                    issuer.rstrip("/") + "/.well-known/openid-configuration", self.policy, client
                )
                jwks_uri = config.get("jwks_uri") if isinstance(config, dict) else None
                if not isinstance(jwks_uri, str):
                    raise OutboundError("the discovery document has no jwks_uri")
                keys = public_keys(await fetch_json(jwks_uri, self.policy, client))
        except Exception as exc:  # whatever an issuer does, it costs a refusal, never a 500
            _log.info("federation: no keys from issuer %r: %s", issuer[:200], exc)
            keys, ttl = {}, _JWKS_FAILURE_TTL
        # Only the converted public keys are kept (bounded), never the documents themselves.
        self._remote[issuer] = (time.monotonic() + ttl, keys)
        self._remote.move_to_end(issuer)
        while len(self._remote) > _JWKS_CACHE_SIZE:
            self._remote.popitem(last=False)
        return keys

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _b64_integer(value: Any, max_bytes: int) -> int | None:
    if not isinstance(value, str) or not 0 < len(value) <= (max_bytes * 4 + 2) // 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        return None
    return int.from_bytes(raw, "big") if raw else None


def public_keys(jwks: Any) -> dict[str, rsa.RSAPublicKey]:
    """The RSA public keys of a JWKS document (RFC 7517), by ``kid``.

    Only public RSA keys count: a key with private parts (``d``, ``p``...) is skipped, as is
    one whose modulus is outside 2048-8192 bits or whose exponent is not a small odd number
    (building a key from private parts costs the CPU time of the size an attacker picks).
    At most 100 keys are read. Raises ``OutboundError`` when ``jwks`` has no ``keys`` list.
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise OutboundError("the key set is malformed")
    found: dict[str, rsa.RSAPublicKey] = {}
    for jwk in jwks["keys"][:_MAX_JWKS_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or _PRIVATE_PARTS & jwk.keys():
            continue
        kid, n, e = jwk.get("kid"), _b64_integer(jwk.get("n"), 1024), _b64_integer(jwk.get("e"), 4)
        if not isinstance(kid, str) or len(kid) > 256 or n is None or e is None:
            continue
        if not 2048 <= n.bit_length() <= 8192 or e < 3 or e % 2 == 0:
            continue
        try:
            found[kid] = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            continue
    return found
