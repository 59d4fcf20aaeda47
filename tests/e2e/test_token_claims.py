"""Badly typed claims in a token signed with the server's real key: every one is a 401, never a 500.

The premise is an attacker who stole the signing key (here: unsealed with the root key from the
data directory); the validator must still refuse any claim of the wrong type, and a string ``exp``
such as ``"1e309"`` must not make a token that never expires.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.e2e.arm_helpers import RG_API, assert_arm_error, rg_path
from tests.e2e.key_helpers import b64url_decode, sign_raw, stolen_signing_key
from tests.keyless_server import KeylessServer

_SENTINEL = "__bad_claim_value__"
_NUMBERS_AS_WRONG_TYPES = ['"1e309"', '"9999999999"', "null", "[]", "[9999999999]", "{}", "true", "false"]
_NUMBERS_OUT_OF_RANGE = ["1e309", "-1e309", "NaN", "Infinity", "1e300", "-1", "18446744073709551616"]
_STRINGS_AS_WRONG_TYPES = ["[]", '["x"]', "123", "1.5", "null", "{}", "true", '""']


def _string_cases(claims: dict[str, Any], name: str) -> list[str]:
    real = str(claims[name])
    return [
        *_STRINGS_AS_WRONG_TYPES,
        orjson.dumps([real]).decode(),  # the right value, in a list
        orjson.dumps(real + "\u0000").decode(),  # a NUL (PostgreSQL refuses it in a query)
        orjson.dumps("a" * 5000).decode(),
    ]


def _cases(claims: dict[str, Any]) -> list[tuple[str, str]]:
    cases = [
        (name, raw) for name in ("exp", "nbf") for raw in _NUMBERS_AS_WRONG_TYPES + _NUMBERS_OUT_OF_RANGE
    ]
    cases += [("iat", raw) for raw in ('"0"', "null", "[1]", "true", "1e309")]
    for name in ("oid", "tid", "aud", "iss", "appid"):
        cases += [(name, raw) for raw in _string_cases(claims, name)]
    return cases


def _forge(kid: str, key: Any, claims: dict[str, Any], name: str, raw: str) -> str:
    """``claims`` with ``name`` set to the raw JSON text ``raw`` (which may be any bytes)."""
    payload = orjson.dumps({**claims, name: _SENTINEL}).replace(f'"{_SENTINEL}"'.encode(), raw.encode())
    return sign_raw(kid, key, payload)


def _requests(srv: KeylessServer, group: str) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """One read, one write and one RBAC (extension) call: every resource-manager door validates."""
    sub = f"/subscriptions/{srv.subscription_id}"
    return [
        ("GET", f"{sub}/resourcegroups", RG_API, None),
        ("PUT", rg_path(srv, group), RG_API, {"location": "westeurope"}),
        ("GET", f"{sub}/providers/Microsoft.Authorization/roleAssignments", "2022-04-01", None),
    ]


def test_badly_typed_claims_are_refused_with_401(server: KeylessServer) -> None:
    kid, key = stolen_signing_key(server)
    genuine = server.admin_token()
    claims = orjson.loads(b64url_decode(genuine.split(".")[1]))
    group = f"claims-{uuid.uuid4().hex[:8]}"
    api = {"api-version": RG_API}

    # The control: the same claims re-signed by the test are accepted (the stolen key is the real one).
    resigned = sign_raw(kid, key, orjson.dumps(claims))
    with server.arm(resigned) as arm:
        assert (
            arm.get(f"/subscriptions/{server.subscription_id}/resourcegroups", params=api).status_code == 200
        )

    cases = _cases(claims)
    assert len(cases) > 60
    failures: list[str] = []
    for name, raw in cases:
        token = _forge(kid, key, claims, name, raw)
        with server.arm(token) as arm:
            for method, path, version, body in _requests(server, group):
                r = arm.request(method, path, params={"api-version": version}, json=body)
                code = r.json().get("error", {}).get("code") if r.status_code == 401 else None
                if code != "InvalidAuthenticationToken":
                    failures.append(f"{name}={raw[:40]} {method} {path}: {r.status_code} {r.text[:120]}")
                    continue
                assert_arm_error(r, 401, "InvalidAuthenticationToken")
                assert r.headers["www-authenticate"].startswith("Bearer authorization_uri=")
    assert not failures, f"{len(failures)} answers were not 401 InvalidAuthenticationToken:\n" + "\n".join(
        failures[:40]
    )
    # Nothing was written by any of them.
    with server.arm() as arm:
        assert arm.get(rg_path(server, group), params=api).status_code == 404


@pytest.mark.parametrize("exp", ['"1e309"', '"99999999999"', "[99999999999]"])
def test_a_string_exp_never_makes_an_everlasting_token(server: KeylessServer, exp: str) -> None:
    kid, key = stolen_signing_key(server)
    claims = orjson.loads(b64url_decode(server.admin_token().split(".")[1]))
    token = _forge(kid, key, claims, "exp", exp)
    with server.arm(token) as arm:
        r = arm.get("/subscriptions", params={"api-version": "2022-12-01"})
    assert_arm_error(r, 401, "InvalidAuthenticationToken")


def test_numeric_dates_of_the_right_type_still_work(server: KeylessServer) -> None:
    """Floats are NumericDates too (RFC 7519 §2); only the type and range are checked."""
    kid, key = stolen_signing_key(server)
    claims = orjson.loads(b64url_decode(server.admin_token().split(".")[1]))
    for exp, nbf, status in (
        (claims["exp"] + 0.5, claims["nbf"] - 0.5, 200),
        (float(claims["iat"] - 3600), claims["nbf"] - 7200, 401),  # expired an hour ago
    ):
        token = sign_raw(kid, key, orjson.dumps({**claims, "exp": exp, "nbf": nbf}))
        with server.arm(token) as arm:
            r = arm.get("/subscriptions", params={"api-version": "2022-12-01"})
        assert r.status_code == status, r.text
        if status == 401:
            assert_arm_error(r, 401, "ExpiredAuthenticationToken")
