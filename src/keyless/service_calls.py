"""Keyless services calling each other the way a customer's program would (DESIGN.md: "Services
call each other the same way a customer would").

A service that acts with a resource's managed identity (Media Services reaching Key Vault and
Storage with its account's identity) gets an access token for that identity from the authority,
exactly as IMDS would hand one out, and sends an ordinary HTTPS request to the other service's data
plane. The request never leaves the process: it goes to the data plane's ASGI app through httpx's
ASGI transport, so the whole pipeline runs (token validation, network rules, RBAC or access
policies), and the only thing that differs from an outside caller is the network origin: a call
made as a trusted Azure service carries ``scope["state"][TRUSTED_SERVICE_STATE]``, which no request
from outside can set (``keyless.network``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from keyless.authority.service import Authority
from keyless.directory import principals
from keyless.network import TRUSTED_SERVICE_STATE
from keyless.web import Receive, Scope, Send

# Tokens are reused until this close to expiry (seconds); the cache holds at most this many.
_REFRESH_MARGIN = 300
_TOKEN_CACHE_LIMIT = 4096
# Every in-process call is bounded like an outbound one: the data planes answer from this process,
# so this only guards against a handler that never finishes.
CALL_TIMEOUT = 30.0


class IdentityUnavailable(Exception):
    """The identity a service should act as does not exist (deleted principal, unknown resource)."""


@dataclass(frozen=True)
class ServiceToken:
    access_token: str
    expires_on: int


class IdentityTokens:
    """Access tokens for managed identities, minted by the authority for a service acting as them.

    ``token(object_id, resource)`` gives the same token IMDS would give that identity for
    ``resource`` (v1 or v2 as the resource asks). Cached per (identity, resource) until 5 minutes
    before expiry; at most 4,096 entries. Minting is an RS256 signature: call from a worker thread
    when on the event loop (``ServiceCaller`` does)."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self._cache: dict[tuple[str, str], ServiceToken] = {}
        self._lock = threading.Lock()

    def token(self, object_id: str, resource: str) -> str:
        """A bearer token for managed identity ``object_id`` and ``resource``.

        Raises IdentityUnavailable when the principal is gone or is not a managed identity."""
        key = (object_id, resource)
        now = time.time()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit.expires_on - now > _REFRESH_MARGIN:
            return hit.access_token
        principal = self.authority.principal(object_id)
        if principal is None or principal.principal_type != principals.MANAGED_IDENTITY:
            raise IdentityUnavailable(object_id)
        audience = self.authority.audience(resource, principal.tenant_id)
        if audience is None:
            raise IdentityUnavailable(resource)
        issued = self.authority.issuer.mint(
            principal,
            audience.aud,
            self.authority.managed_identity_token_lifetime,
            version=audience.version,
        )
        with self._lock:
            if len(self._cache) >= _TOKEN_CACHE_LIMIT:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = ServiceToken(issued.access_token, issued.expires_on)
        return issued.access_token

    def forget(self, object_id: str) -> None:
        """Drop the tokens of ``object_id`` (its principal was deleted)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == object_id]:
                del self._cache[key]


class _AsTrustedService:
    """An ASGI wrapper giving every request the origin of one trusted service instance, or the local
    host when ``service_id`` is None (a call that is not made as a trusted service)."""

    def __init__(self, app: Any, service_id: str | None) -> None:
        self.app = app
        self.service_id = service_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = {}
        if self.service_id:
            state[TRUSTED_SERVICE_STATE] = self.service_id
        await self.app({**scope, "state": state}, receive, send)


class ServiceCaller:
    """In-process HTTPS calls to a data plane's ASGI app (module docstring).

    ``client(app, service_id)`` is an ``httpx.AsyncClient`` whose requests reach ``app`` directly,
    from 127.0.0.1 (the local host, which no IP rule can name) or, with ``service_id`` (a resource
    id), as that trusted service instance. Responses are read whole: use it for control traffic
    and bounded bodies, not for streaming media."""

    def __init__(self, tokens: IdentityTokens) -> None:
        self.tokens = tokens

    def client(self, app: Any, service_id: str | None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=_AsTrustedService(app, service_id), client=("127.0.0.1", 0))
        # trust_env off: the server's own proxy settings must never apply to an in-process call.
        return httpx.AsyncClient(transport=transport, timeout=CALL_TIMEOUT, trust_env=False)
