"""The token authority: client-credential token issuance over HTTP, and token validation in
process, each beside raw PyJWT RS256 signing/verification measured in the same run.

Targets (issue 2): issuance >= 2,000 tokens/s over HTTP (raw RS256 signing with PyJWT is
~4,500/s per core on these machines); validation >= 10,000/s in process.

Issuance: wrk (16 connections) POSTs the client-credentials form to the v2 token endpoint of a
server pinned to one core (wrk on the other), direct mode over HTTPS; every request signs a new
token. Validation: TokenValidator.validate (signature, kid, iss, aud, nbf/exp, and the principal
looked up in the database) for tokens it has not seen before, and for a token it has (clients
reuse a token for its lifetime), on one core.

    python bench/authority.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from keyless.authority import principals
from keyless.authority.resources import ARM_AUDIENCES
from keyless.config import Settings
from keyless.platform import Platform
from wrk import CLIENT_CORE, start_server, wrk

AUDIENCE = "https://management.azure.com"


def rate(run: Callable[[int], None], seconds: float) -> float:
    """Calls per second of ``run(i)``, for about ``seconds``."""
    run(0)
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            run(count)
            count += 1
    return count / elapsed


def in_process(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform(Settings(data_dir=Path(tmp)), first_start=True)
        platform.start()
        try:
            assert platform.admin is not None
            with platform.db.read() as conn:
                admin = principals.get_by_object_id(conn, platform.admin.object_id)
            assert admin is not None
            issuer, validator = platform.authority.issuer, platform.authority.validator

            # The peer: PyJWT alone, with the same key size and a claim set of the same size.
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            sample = issuer.mint(admin, AUDIENCE, 3599).claims
            raw_token = jwt.encode(sample, key, algorithm="RS256", headers={"kid": "k", "x5t": "k"})
            public = key.public_key()
            out = {
                "pyjwt_sign": rate(lambda _: jwt.encode(sample, key, algorithm="RS256"), seconds),
                "pyjwt_verify": rate(
                    lambda _: jwt.decode(raw_token, public, algorithms=["RS256"], audience=AUDIENCE), seconds
                ),
                "mint": rate(lambda _: issuer.mint(admin, AUDIENCE, 3599), seconds),
            }
            count = max(2000, int(out["mint"] * seconds * 1.2))
            fresh = [issuer.mint(admin, AUDIENCE, 3599).access_token for _ in range(count)]

            def validate_fresh(i: int) -> None:
                validator.validate(fresh[i % count], ARM_AUDIENCES)

            started = time.perf_counter()
            for token in fresh:  # each one for the first time: full signature check
                validator.validate(token, ARM_AUDIENCES)
            out["validate_new"] = count / (time.perf_counter() - started)
            out["validate_seen"] = rate(lambda _: validator.validate(fresh[0], ARM_AUDIENCES), seconds)
            return out
        finally:
            platform.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-pc", CLIENT_CORE, str(os.getpid())], capture_output=True, check=False)
    local = in_process(min(args.seconds, 5))
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            form = urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": server.admin["clientId"],
                    "client_secret": server.admin["clientSecret"],
                    "scope": f"{AUDIENCE}/.default",
                }
            )
            issuance = wrk(
                f"{server.direct_url}/{server.tenant_id}/oauth2/v2.0/token",
                method="POST",
                body=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                seconds=args.seconds,
            )
        finally:
            server.stop()

    def row(label: str, value: float, peer_label: str, peer: float, target: str) -> None:
        print(
            f"{label:<44} {value:>10,.0f} /s   {peer_label} {peer:>8,.0f} /s   ratio {value / peer:5.2f}   {target}"
        )

    print("Authority benchmark (server and load generator on separate cores)")
    print(issuance.line("token issuance over HTTPS (wrk, 16 conns)"))
    row(
        "token issuance over HTTPS",
        issuance.requests_per_second,
        "PyJWT sign",
        local["pyjwt_sign"],
        "(>= 2,000/s)",
    )
    row("TokenIssuer.mint in process", local["mint"], "PyJWT sign", local["pyjwt_sign"], "")
    row(
        "validate, token not seen before",
        local["validate_new"],
        "PyJWT verify",
        local["pyjwt_verify"],
        "(>= 10,000/s)",
    )
    row(
        "validate, token seen before",
        local["validate_seen"],
        "PyJWT verify",
        local["pyjwt_verify"],
        "(>= 10,000/s)",
    )


if __name__ == "__main__":
    main()
