"""Tokens for a workload's *own* identities: the domain behind IMDS and the App Service endpoint.

A workload may only get tokens for identities assigned to it. Tokens are cached per
(workload, identity, resource) as the real service does, so ``expires_in`` counts down;
the assignment is re-checked on every request, before the cache is consulted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from keyless.arm.engine import ResourceManager, StoredResource
from keyless.arm.ids import parse_resource_id
from keyless.authority import principals
from keyless.authority.service import Authority
from keyless.authority.tokens import IssuedToken
from keyless.providers.compute.provider import SITE_TYPE_KEY, VM_TYPE_KEY, is_function_app
from keyless.store.db import Database
from keyless.workload.hosts import HostTokens

# A cached token is served while it has at least this long to live (MSAL's own margin).
_REFRESH_MARGIN = 300
# Workload and principal lookups are remembered this long. Writes through this replica clear
# them at once; a change made through another replica shows here within this bound.
_LOOKUP_TTL = 1.0
# Cached workload tokens kept at most (callers choose the resource, e.g. any vault's audience).
_TOKEN_CACHE_LIMIT = 16384


class IdentityNotFound(Exception):
    """No such identity is assigned to this workload (or the workload itself is unknown)."""


class UnknownResource(Exception):
    def __init__(self, resource: str, tenant_id: str) -> None:
        super().__init__(resource)
        self.resource = resource
        self.tenant_id = tenant_id


class Throttled(Exception):
    pass


@dataclass(frozen=True)
class Workload:
    resource: StoredResource

    @property
    def key(self) -> str:
        return self.resource.rid.key

    @property
    def is_vm(self) -> bool:
        return self.resource.rid.type_key == VM_TYPE_KEY

    @property
    def is_function_app(self) -> bool:
        return self.resource.rid.type_key == SITE_TYPE_KEY and is_function_app(self.resource)

    @property
    def is_site(self) -> bool:
        return self.resource.rid.type_key == SITE_TYPE_KEY


@dataclass(frozen=True)
class Selector:
    """At most one of these picks a user-assigned identity; none means system-assigned."""

    client_id: str | None = None
    object_id: str | None = None
    resource_id: str | None = None


@dataclass(frozen=True)
class WorkloadToken:
    issued: IssuedToken
    client_id: str
    object_id: str
    resource: str


class WorkloadIdentityService:
    def __init__(
        self,
        db: Database,
        manager: ResourceManager,
        host_tokens: HostTokens,
        authority: Authority,
        rate_limit: int,
    ) -> None:
        self.db = db
        self.manager = manager
        self.host_tokens = host_tokens
        self.authority = authority
        self.rate_limit = rate_limit
        self._cache: dict[tuple[str, str, str], IssuedToken] = {}
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._workloads: dict[str, tuple[float, Workload]] = {}
        self._principals: dict[str, tuple[float, principals.Principal]] = {}
        manager.on_change(self.forget_lookups)

    def forget_lookups(self) -> None:
        with self._lock:
            self._workloads.clear()
            self._principals.clear()

    def workload_for_host_token(self, token: str | None) -> Workload | None:
        if not token:
            return None
        now = time.monotonic()
        cache_key = token.lower()  # tokens match without regard to case (see hosts.py)
        hit = self._workloads.get(cache_key)
        if hit is not None and now - hit[0] < _LOOKUP_TTL:
            return hit[1]
        with self.db.read() as conn:
            key = self.host_tokens.resolve(conn, token)
            if key is None:
                return None
            rid = parse_resource_id(key)
            resource = self.manager.load(conn, rid) if rid is not None else None
        if resource is None:
            return None
        workload = Workload(resource)
        with self._lock:
            self._workloads[cache_key] = (now, workload)
        return workload

    def check_rate(self, workload: Workload) -> None:
        """Azure's per-VM limit (20 requests/s), when configured; this replica's count only."""
        if self.rate_limit <= 0:
            return
        now = time.monotonic()
        with self._lock:
            window = self._recent.setdefault(workload.key, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.rate_limit:
                raise Throttled()
            window.append(now)

    def _select(
        self, workload: Workload, selector: Selector, sole_user_assigned: bool
    ) -> tuple[principals.Principal, str | None]:
        """The assigned identity the request names: (its principal, UAMI id or None for system).

        With no selector: the system-assigned identity; failing that, when ``sole_user_assigned``
        (IMDS), the only user-assigned one. Source: entra-docs ``managed-identities-faq.md``
        ("What identity will IMDS default to ..."). App Service answers 400 instead (reference
        identity-endpoints.md, §2), so its endpoint passes False.
        """
        identity: dict[str, Any] = workload.resource.document.get("identity") or {}
        user: dict[str, dict[str, str]] = identity.get("userAssignedIdentities") or {}
        chosen_uami: str | None = None
        object_id: str | None = None
        if selector.client_id or selector.object_id or selector.resource_id:
            for uami_id, entry in user.items():
                if (
                    (selector.client_id and entry.get("clientId", "").lower() == selector.client_id.lower())
                    or (
                        selector.object_id
                        and entry.get("principalId", "").lower() == selector.object_id.lower()
                    )
                    or (selector.resource_id and uami_id.lower() == selector.resource_id.strip().lower())
                ):
                    chosen_uami, object_id = uami_id, entry.get("principalId")
                    break
            if object_id is None and identity.get("principalId"):
                # The system-assigned identity may be named by its own client or object id too.
                system = self._principal(identity["principalId"])
                if system is not None and (
                    (selector.client_id and system.app_id.lower() == selector.client_id.lower())
                    or (selector.object_id and system.object_id.lower() == selector.object_id.lower())
                ):
                    object_id = system.object_id
        else:
            object_id = identity.get("principalId")
            if not object_id and sole_user_assigned and len(user) == 1:
                chosen_uami, entry = next(iter(user.items()))
                object_id = entry.get("principalId")
        principal = self._principal(object_id) if object_id else None
        if principal is None:
            raise IdentityNotFound()
        return principal, chosen_uami

    def _principal(self, object_id: str) -> principals.Principal | None:
        now = time.monotonic()
        hit = self._principals.get(object_id)
        if hit is not None and now - hit[0] < _LOOKUP_TTL:
            return hit[1]
        with self.db.read() as conn:
            principal = principals.get_by_object_id(conn, object_id)
        if principal is not None:
            with self._lock:
                self._principals[object_id] = (now, principal)
        return principal

    def token(
        self,
        workload: Workload,
        selector: Selector,
        resource: str,
        *,
        bypass_cache: bool = False,
        sole_user_assigned: bool = False,
    ) -> WorkloadToken:
        """A token for ``resource`` as the identity ``selector`` names (see ``_select``).

        Raises IdentityNotFound or UnknownResource."""
        principal, uami_id = self._select(workload, selector, sole_user_assigned)
        # The authority's own resolution: first-party resources and the tenant's apps.
        audience = self.authority.audience(resource, principal.tenant_id)
        if audience is None:
            raise UnknownResource(resource, principal.tenant_id)
        key = (workload.key, principal.object_id, resource)
        now = time.time()
        with self._lock:
            cached = None if bypass_cache else self._cache.get(key)
        if cached is None or cached.expires_on - now < _REFRESH_MARGIN:
            cached = self.authority.issuer.mint(
                principal,
                audience.aud,
                self.authority.managed_identity_token_lifetime,
                # xms_az_rid names the workload when one of its user-assigned identities is used.
                workload_resource_id=workload.resource.rid.claims_form() if uami_id else None,
                version=audience.version,
            )
            with self._lock:
                if len(self._cache) >= _TOKEN_CACHE_LIMIT:  # bounded whatever resources are asked for
                    self._cache.pop(next(iter(self._cache)))  # the oldest entry
                self._cache[key] = cached
        return WorkloadToken(cached, principal.app_id, principal.object_id, resource)
