"""The outbound-fetch policy (keyless.outbound): which addresses a caller-chosen URL may reach.

Pure checks: nothing here sends traffic anywhere but an unused loopback port.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from keyless.authority.federation import public_keys
from keyless.outbound import OutboundError, OutboundPolicy, _address_allowed, fetch_json

DEFAULT = OutboundPolicy()
PRIVATE = OutboundPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("address", "by_default", "with_private"),
    [
        ("8.8.8.8", True, True),
        ("2606:4700:4700::1111", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("10.1.2.3", False, True),
        ("192.168.1.1", False, True),
        ("172.16.0.1", False, True),
        ("fd00::1", False, True),
        ("169.254.169.254", False, False),  # IMDS: never
        ("fe80::1", False, False),
        ("::ffff:169.254.169.254", False, False),
        ("::ffff:127.0.0.1", False, True),
        ("0.0.0.0", False, False),
        ("::", False, False),
        ("224.0.0.1", False, False),
        ("100.64.0.1", False, False),  # carrier-grade NAT: neither global nor private
        # Addresses that embed another: NAT64, 6to4, Teredo, IPv4-compatible/translated, site-local.
        ("64:ff9b::a9fe:a9fe", False, False),
        ("64:ff9b::7f00:1", False, False),
        ("64:ff9b:1::1", False, False),
        ("2002:a9fe:a9fe::", False, False),
        ("2001:0:4136:e378::1", False, False),
        ("::127.0.0.1", False, False),
        ("::a9fe:a9fe", False, False),
        ("::ffff:0:7f00:1", False, False),
        ("fec0::1", False, False),
        ("192.0.0.8", False, False),
    ],
)
def test_which_addresses_may_be_called(address: str, by_default: bool, with_private: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert _address_allowed(ip, DEFAULT) is by_default
    assert _address_allowed(ip, PRIVATE) is with_private


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/keys",
        "https://user:pw@example.com/keys",
        "https:///keys",
        "https://example.com:99999/keys",
        "https://127.0.0.1:9/keys",
        "https://localhost:9/keys",
        "https://[::1]:9/keys",
        "https://example.com/" + "a" * 3000,
        "ftp://example.com/",
        "https://\uff18.\uff18.\uff18.\uff18/",
        "https://example.com/a\x01b",
        "https://example.com/a b",
    ],
)
def test_refused_urls_are_refused_before_any_connection(url: str) -> None:
    async def attempt() -> None:
        async with httpx.AsyncClient() as client:
            await fetch_json(url, DEFAULT, client)

    with pytest.raises(OutboundError):
        asyncio.run(attempt())


def _b64(value: int) -> str:
    return (
        base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
    )


def test_only_public_rsa_keys_of_sane_size_are_read() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
    good = {"kty": "RSA", "kid": "good", "n": _b64(key.n), "e": _b64(key.e)}
    keys = public_keys(
        {
            "keys": [
                good,
                good | {"kid": "private", "d": _b64(3)},
                good | {"kid": "small", "n": _b64(2**1023 + 1)},
                good | {"kid": "huge", "n": "_" * 5000},
                good | {"kid": "even", "e": _b64(65536)},
                good | {"kid": 7},
                {"kty": "EC", "kid": "ec"},
                "not a key",
            ]
        }
    )
    assert set(keys) == {"good"}
    assert keys["good"].public_numbers() == key
    with pytest.raises(OutboundError):
        public_keys({"keys": "all"})
