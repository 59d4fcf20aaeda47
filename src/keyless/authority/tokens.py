"""Minting access tokens with Entra's claim sets (v1.0 and v2.0), and the one validator every service uses."""

from __future__ import annotations

import base64
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from keyless.authority.keys import KeySet
from keyless.directory.principals import MANAGED_IDENTITY, Principal


def issuer_for(tenant_id: str) -> str:
    """The ``iss`` of a v1.0 token."""
    return f"https://sts.windows.net/{tenant_id}/"


def v2_issuer_for(tenant_id: str) -> str:
    """The ``iss`` of a v2.0 token (and of the v2.0 discovery document)."""
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def _uti() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    claims: dict[str, Any]

    @property
    def expires_on(self) -> int:
        return int(self.claims["exp"])

    @property
    def not_before(self) -> int:
        return int(self.claims["nbf"])


class TokenIssuer:
    def __init__(self, keyset: KeySet) -> None:
        self._keyset = keyset

    def mint(
        self,
        principal: Principal,
        audience: str,
        lifetime: int,
        *,
        workload_resource_id: str | None = None,
        now: float | None = None,
        version: int = 1,
    ) -> IssuedToken:
        """An app-only access token for ``principal``; ``version`` 2 gives the v2.0 claim set
        (``iss`` .../v2.0, ``azp``/``azpacr`` instead of ``appid``/``appidacr``, no ``idp``,
        no ``x5t`` header), which Entra issues for resources that ask for v2.0 tokens
        (entra-docs access-token-claims-reference.md)."""
        issued = int(now if now is not None else time.time())
        # 1: client secret; 2: certificate or managed identity, as Entra reports them.
        acr = "2" if principal.principal_type == MANAGED_IDENTITY else "1"
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer_for(principal.tenant_id) if version == 1 else v2_issuer_for(principal.tenant_id),
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "aio": _uti(),
        }
        if version == 1:
            claims.update(appid=principal.app_id, appidacr=acr, idp=claims["iss"])
        else:
            claims.update(azp=principal.app_id, azpacr=acr)
        claims.update(
            idtyp="app",
            oid=principal.object_id,
            rh="0.AAAA" + _uti() + ".",
            sub=principal.object_id,
            tid=principal.tenant_id,
            uti=_uti(),
            ver="1.0" if version == 1 else "2.0",
        )
        if principal.managed_identity_resource_id:
            claims["xms_mirid"] = principal.managed_identity_resource_id
        if workload_resource_id:
            claims["xms_az_rid"] = workload_resource_id
        key = self._keyset.active
        assert key.private_key is not None  # KeySet.active guarantees it
        headers = {"typ": "JWT", "kid": key.kid}
        if version == 1:
            headers["x5t"] = key.kid  # x5t is only in v1.0 tokens (identity-endpoints.md §5)
        token = jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)
        return IssuedToken(access_token=token, claims=claims)


class TokenError(Exception):
    """Why a bearer token was refused; the wire layer maps ``reason`` to the service's error."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


MISSING = "missing"
MALFORMED = "malformed"
BAD_SIGNATURE = "invalid_signature"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
WRONG_AUDIENCE = "invalid_audience"
WRONG_ISSUER = "invalid_issuer"
UNKNOWN_PRINCIPAL = "unknown_principal"


@dataclass(frozen=True)
class Caller:
    """A validated caller, as every service sees it."""

    object_id: str
    app_id: str
    tenant_id: str
    principal_type: str
    audience: str
    claims: dict[str, Any]

    @property
    def display_id(self) -> str:
        return self.app_id


_CACHE_SIZE = 8192
_JWS = jwt.PyJWS()


class TokenValidator:
    """RS256 only, a published ``kid``, ``iss``/``aud``/``nbf``/``exp``, and a principal that exists.

    Signature checks are memoised per token string (a token's signature never changes);
    time, audience and the principal are checked on every call, so a deleted identity's
    tokens stop working at once.
    """

    def __init__(
        self,
        keyset: KeySet,
        principal_lookup: Any,
        known_tenants: Any,
        leeway: int,
    ) -> None:
        self._keyset = keyset
        # principal_lookup(object_id) -> Principal | None; known_tenants(tid) -> bool
        self._principal_lookup = principal_lookup
        self._known_tenants = known_tenants
        self._leeway = leeway
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _verified_claims(self, token: str) -> dict[str, Any]:
        with self._lock:
            claims = self._verified.get(token)
            if claims is not None:
                self._verified.move_to_end(token)
                return claims
        header = _unverified_header(token)
        # Decided here, before any key is touched: only RS256 with a kid we published.
        if header.get("alg") != "RS256":
            raise TokenError(BAD_SIGNATURE, f"The token algorithm '{header.get('alg')}' is not accepted.")
        kid = header.get("kid")
        key = self._keyset.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError(BAD_SIGNATURE, "The token is signed by a key that is not published.")
        try:
            # The JWS layer checks the signature; the claims are checked below, by this validator.
            payload = _JWS.decode_complete(token, key, algorithms=["RS256"])["payload"]
            decoded = orjson.loads(payload)
        except jwt.InvalidSignatureError as exc:
            raise TokenError(BAD_SIGNATURE, "The token signature is invalid.") from exc
        except (jwt.PyJWTError, orjson.JSONDecodeError) as exc:
            raise TokenError(MALFORMED, "The access token is malformed.") from exc
        claims = _check_claim_types(decoded)
        with self._lock:
            self._verified[token] = claims
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def validate(self, token: str, audiences: frozenset[str], *, now: float | None = None) -> Caller:
        if not token:
            raise TokenError(MISSING, "No access token was presented.")
        claims = self._verified_claims(token)
        current = now if now is not None else time.time()
        if current > float(claims["exp"]) + self._leeway:
            raise TokenError(EXPIRED, "The access token has expired.")
        if current + self._leeway < float(claims["nbf"]):
            raise TokenError(NOT_YET_VALID, "The access token is not yet valid.")
        audience = claims["aud"]
        if not isinstance(audience, str) or audience.lower().rstrip("/") not in audiences:
            raise TokenError(WRONG_AUDIENCE, f"The access token has an invalid audience '{audience}'.")
        tenant_id = claims["tid"]
        # Services that accept Entra tokens accept both versions: each carries its own issuer.
        expected = issuer_for(tenant_id) if claims.get("ver") != "2.0" else v2_issuer_for(tenant_id)
        if claims["iss"] != expected or not self._known_tenants(tenant_id):
            raise TokenError(WRONG_ISSUER, f"The access token is from an invalid issuer '{claims['iss']}'.")
        principal = self._principal_lookup(claims["oid"])
        app_id = claims["appid"] if "appid" in claims else claims["azp"]
        if principal is None or principal.app_id != app_id or principal.tenant_id != tenant_id:
            raise TokenError(UNKNOWN_PRINCIPAL, "The principal of the access token no longer exists.")
        return Caller(
            object_id=principal.object_id,
            app_id=principal.app_id,
            tenant_id=tenant_id,
            principal_type=principal.principal_type,
            audience=audience,
            claims=claims,
        )


# Claims the validator decides on, and their JSON types. Entra writes the times as integers,
# but RFC 7519 §2 allows any NumericDate, so finite floats are accepted too.
_STRING_CLAIMS = ("aud", "iss", "oid", "tid")
# The client's appId: ``appid`` in v1.0 tokens, ``azp`` in v2.0 ones; one of them must be there.
_APP_CLAIMS = ("appid", "azp")
_TIME_CLAIMS = ("exp", "nbf")
_OPTIONAL_TIME_CLAIMS = ("iat",)
# Longer than any real value (URLs, GUIDs); a bound before any lookup.
_MAX_CLAIM_LENGTH = 2048
# 9999-12-31T23:59:59Z, the last instant .NET's DateTime (and so Entra) can express.
_MAX_NUMERIC_DATE = 253402300799


def _is_numeric_date(value: object) -> bool:
    # bool is an int subclass; orjson turns integers beyond 64 bits into floats, so both are bounded.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= _MAX_NUMERIC_DATE


def _check_claim_types(claims: object) -> dict[str, Any]:
    """``claims``; MALFORMED unless ``claims`` is an object whose claims the validator uses are present
    and well typed: non-empty strings without NUL (they reach database lookups) of bounded length,
    and NumericDates (RFC 7519) in range. A wrong type is a 401, never an exception further on."""
    if not isinstance(claims, dict):
        raise TokenError(MALFORMED, "The access token is malformed.")
    for name in _STRING_CLAIMS + _TIME_CLAIMS:
        if name not in claims:
            raise TokenError(MALFORMED, f"The access token has no '{name}' claim.")
    for name in _STRING_CLAIMS:
        value = claims[name]
        if not isinstance(value, str) or not 0 < len(value) <= _MAX_CLAIM_LENGTH or "\x00" in value:
            raise TokenError(MALFORMED, f"The access token's '{name}' claim is not a valid string.")
    apps = [name for name in _APP_CLAIMS if name in claims]
    if not apps:
        raise TokenError(MALFORMED, "The access token has no 'appid' claim.")
    for name in apps:
        value = claims[name]
        if not isinstance(value, str) or not 0 < len(value) <= _MAX_CLAIM_LENGTH or "\x00" in value:
            raise TokenError(MALFORMED, f"The access token's '{name}' claim is not a valid string.")
    for name in _TIME_CLAIMS + _OPTIONAL_TIME_CLAIMS:
        if name in claims and not _is_numeric_date(claims[name]):
            raise TokenError(MALFORMED, f"The access token's '{name}' claim is not a valid NumericDate.")
    return claims


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, only to choose the key: ``jwt.decode`` then checks the whole token.

    (PyJWT's get_unverified_header costs more than the RS256 signature check itself.)
    """
    segment = token.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError as exc:  # bad base64 (binascii.Error) or bad JSON (orjson.JSONDecodeError)
        raise TokenError(MALFORMED, "The access token is malformed.") from exc
    if not isinstance(header, dict) or token.count(".") != 2:
        raise TokenError(MALFORMED, "The access token is malformed.")
    return header


def unverified_payload(token: str) -> dict[str, Any]:
    """Decode a JWT payload without checks: for messages and tests only, never for decisions."""
    payload = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
