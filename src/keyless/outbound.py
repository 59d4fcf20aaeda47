"""Outbound HTTPS fetches on a caller's behalf (an external issuer's discovery document and keys).

A URL that a caller chose is a way into the machine's network (SSRF), so every fetch here is:
asynchronous (never blocks the event loop), limited in time and size, https only, never
redirected, and refused when the host resolves to an address a cloud would refuse to call:
loopback, private, link-local (169.254.169.254 is IMDS), multicast, reserved. The name is
resolved once and the connection goes to the checked address (with the name kept for SNI and
certificate checks), so a second DNS answer cannot swap in another address.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

MAX_URL_LENGTH = 2048
# Printable ASCII without spaces: what a URL we call or trust may hold (an IDN host in its xn-- form).
URL_CHARACTERS = re.compile(r"[\x21-\x7e]+")


class OutboundError(Exception):
    """A fetch that was refused or failed; ``str()`` says why, safe to show the caller."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Limits of every outbound fetch.

    ``allow_private``: also call loopback and private-range addresses (``KEYLESS_OUTBOUND_ALLOW_PRIVATE``,
    off by default: Entra cannot reach a private network either). Link-local, multicast and
    unspecified addresses are refused even then.
    """

    allow_private: bool = False
    # The CAs an issuer's certificate must chain to (Keyless's bundle: the system's plus its own).
    ca_file: str | None = None
    timeout: float = 5.0  # seconds, for the whole fetch (resolution, connection, body)
    max_bytes: int = 256 * 1024


# Ranges that are "global" to the ipaddress module yet reach, or embed, another address: NAT64
# (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16), Teredo (2001::/32), IPv4-compatible and
# IPv4-translated forms, site-local (fec0::/10), and IPv4's protocol assignments (192.0.0.0/24).
_EMBEDDING = tuple(
    ipaddress.ip_network(n)
    for n in (
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
        "::/96",
        "::ffff:0:0:0/96",
        "fec0::/10",
        "192.0.0.0/24",
    )
)


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: OutboundPolicy) -> bool:
    """Whether a fetch may connect to ``address`` under ``policy`` (see ``OutboundPolicy``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return False
    if policy.allow_private and address.is_loopback:
        return True
    if any(address in network for network in _EMBEDDING if network.version == address.version):
        return False
    return address.is_global or (policy.allow_private and address.is_private)


# Name resolution blocks a thread until the resolver gives up: a few threads of its own, so a
# slow DNS server cannot take the threads the rest of the process uses.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="keyless-resolve")


async def _resolve(host: str, port: int) -> list[str]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        infos = await asyncio.get_running_loop().run_in_executor(
            _RESOLVER, functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        )
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
    return [str(literal)]


async def fetch_json(url: str, policy: OutboundPolicy, client: httpx.AsyncClient) -> Any:
    """GET ``url`` and parse its JSON body, within ``policy``.

    Returns the parsed document. Raises ``OutboundError`` for a refused URL or address, a
    non-200 answer, a body over ``policy.max_bytes``, a time-out (``policy.timeout`` seconds in
    all) or a body that is not JSON.
    """
    try:
        return await asyncio.wait_for(_fetch(url, policy, client), policy.timeout)
    except TimeoutError as exc:
        raise OutboundError(f"'{url[:200]}' did not answer within {policy.timeout:g} s") from exc


async def _pinned(url: str, policy: OutboundPolicy) -> tuple[str, str, str]:
    """(the URL with its host replaced by the checked address, the Host header, the SNI name);
    OutboundError when the URL or any address it resolves to is refused (module docstring)."""
    if len(url) > MAX_URL_LENGTH:
        raise OutboundError("the URL is too long")
    if not URL_CHARACTERS.fullmatch(url):
        raise OutboundError("the URL must be printable ASCII (an IDN host in its xn-- form)")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise OutboundError("the URL is malformed") from exc
    host = parts.hostname
    if parts.scheme != "https" or not host or parts.username is not None or parts.password is not None:
        raise OutboundError(f"'{url[:200]}' is not an https URL without credentials")
    try:
        addresses = await _resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise OutboundError(f"the host '{host}' could not be resolved") from exc
    allowed = [a for a in addresses if _address_allowed(ipaddress.ip_address(a), policy)]
    if not addresses or len(allowed) != len(addresses):
        raise OutboundError(f"the host '{host}' resolves to an address that may not be called")
    target = allowed[0]
    netloc = f"[{target}]" if ":" in target else target
    pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
    return pinned, (host if port == 443 else f"{host}:{port}"), host


async def _fetch(url: str, policy: OutboundPolicy, client: httpx.AsyncClient) -> Any:
    pinned, host_header, host = await _pinned(url, policy)
    try:
        async with client.stream(
            "GET",
            pinned,
            # identity: a compressed body could expand far past the size limit.
            headers={"Host": host_header, "Accept": "application/json", "Accept-Encoding": "identity"},
            extensions={"sni_hostname": host},
        ) as response:
            if response.status_code != 200:
                raise OutboundError(f"'{url[:200]}' answered {response.status_code}")
            if response.headers.get("content-encoding", "identity").lower() != "identity":
                raise OutboundError(f"'{url[:200]}' answered a compressed body")
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > policy.max_bytes:
                    raise OutboundError(f"'{url[:200]}' answered more than {policy.max_bytes} bytes")
    except httpx.HTTPError as exc:
        raise OutboundError(f"'{url[:200]}' could not be fetched ({type(exc).__name__})") from exc
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise OutboundError(f"'{url[:200]}' did not answer JSON") from exc


def shown(url: str) -> str:
    """``url`` as an error message may show it: no query string (a SAS token is a credential),
    at most 200 characters."""
    return url.split("?", 1)[0].split("#", 1)[0][:200]


async def copy_body(
    response: httpx.Response, url: str, max_bytes: int, sink: Callable[[bytes], Awaitable[Any]]
) -> int:
    """Hand a streamed 200 answer's body to ``sink`` chunk by chunk, refusing past ``max_bytes``
    (OutboundError naming ``shown(url)``). The bytes copied."""
    if response.status_code != 200:
        raise OutboundError(f"'{shown(url)}' answered {response.status_code}")
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise OutboundError(f"'{shown(url)}' answered more than {max_bytes} bytes")
        await sink(chunk)
    return received


async def download(
    url: str, policy: OutboundPolicy, client: httpx.AsyncClient, sink: Callable[[bytes], Awaitable[Any]]
) -> int:
    """GET ``url`` within ``policy`` (``policy.max_bytes`` and ``policy.timeout`` apply to the whole
    body), handing the body to ``sink`` chunk by chunk. The bytes received; OutboundError as
    ``fetch_json``, whose messages never show the URL's query string."""

    async def run() -> int:
        try:
            pinned, host_header, host = await _pinned(url, policy)
        except OutboundError as exc:
            raise OutboundError(str(exc).replace(url[:200], shown(url))) from None
        try:
            async with client.stream(
                "GET",
                pinned,
                headers={"Host": host_header, "Accept-Encoding": "identity"},
                extensions={"sni_hostname": host},
            ) as response:
                return await copy_body(response, url, policy.max_bytes, sink)
        except httpx.HTTPError as exc:
            raise OutboundError(f"'{shown(url)}' could not be fetched ({type(exc).__name__})") from exc

    try:
        return await asyncio.wait_for(run(), policy.timeout)
    except TimeoutError as exc:
        raise OutboundError(f"'{shown(url)}' did not answer within {policy.timeout:g} s") from exc


def new_client(policy: OutboundPolicy) -> httpx.AsyncClient:
    """The client outbound fetches share: no proxy from the environment, no redirects.

    Reads the CA file: call it off the event loop (``asyncio.to_thread``).
    """
    verify = ssl.create_default_context(cafile=policy.ca_file) if policy.ca_file else True
    return httpx.AsyncClient(
        trust_env=False, follow_redirects=False, timeout=httpx.Timeout(policy.timeout), verify=verify
    )
