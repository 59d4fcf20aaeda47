"""Host-based routing: which emulated service answers a request, and who is calling from where."""

from __future__ import annotations

from collections.abc import Callable

from keyless.edge.forward import Forwarder
from keyless.web import ASGIApp, Receive, Scope, Send, bounded_int, header, host_of, send_json

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# Direct mode on localhost: these first path segments belong to the resource manager.
_ARM_ROOTS = frozenset({"subscriptions", "providers", "metadata", "tenants"})
# Plain-HTTP ``/metadata/...`` on localhost is IMDS (what a VM reaches at 169.254.169.254, and
# what a client that drops the base URL's path sends): the direct IMDS app answers it, so a
# caller without a host token gets IMDS's error rather than the resource manager's 401.
_LOCAL_HTTP_ALIASES = {"metadata": "imds"}
# First path segments on localhost that are never a storage account (the authority's tenants).
_NOT_ACCOUNTS = frozenset({"common", "organizations", "consumers"})
VIA_PROXY = "keyless.via_proxy"
PROXY_AUTHORIZATION = "keyless.proxy_authorization"


def proxy_authorization(scope: Scope) -> str | None:
    """The proxy credentials of a request that came through the forward proxy, else None.

    Only the proxy sets the state this reads; a header sent straight to a listener counts
    for nothing, so no caller can claim another's network origin.
    """
    state = scope.get("state") or {}
    if not state.get(VIA_PROXY):
        return None
    if PROXY_AUTHORIZATION in state:  # a CONNECT tunnel: its own credentials, never a header inside it
        return state[PROXY_AUTHORIZATION] or None
    return header(scope, b"proxy-authorization")  # an absolute-form request to the proxy itself


def _names_this_listener(scope: Scope) -> bool:
    """Whether the Host header's port is the port this request arrived on (80 when absent)."""
    raw = header(scope, b"host") or ""
    tail = raw[raw.find("]") + 1 :] if raw.startswith("[") else raw
    _, colon, port = tail.rpartition(":")
    wanted = (bounded_int(port, 65535) if colon else 80) or -1
    server = scope.get("server")
    return server is not None and server[1] == wanted


class HostRouter:
    def __init__(self, arm: ASGIApp, authority: ASGIApp, internal: ASGIApp, forwarder: Forwarder) -> None:
        self.exact: dict[str, ASGIApp] = {
            "management.azure.com": arm,
            "login.microsoftonline.com": authority,
        }
        self.suffixes: dict[str, ASGIApp] = {}
        # Hosts served over plain HTTP through the proxy (the identity endpoints).
        self.plain_http: dict[str, ASGIApp] = {}
        # First path segments served over plain HTTP on localhost (direct identity endpoints).
        self.local_http: dict[str, ASGIApp] = {}
        # Direct mode, path-style storage: https://localhost:<port>/{account}/... (storage.md §3).
        self.path_style: list[tuple[Callable[[str], bool], ASGIApp]] = []
        self.arm = arm
        self.authority = authority
        self.internal = internal
        self.forwarder = forwarder

    def add_host(self, host: str, app: ASGIApp) -> None:
        self.exact[host.lower()] = app

    def add_suffix(self, suffix: str, app: ASGIApp) -> None:
        """Serve every ``<name><suffix>`` host, e.g. ``.vault.azure.net``."""
        self.suffixes[suffix.lower()] = app

    def add_plain_http_host(self, host: str, app: ASGIApp) -> None:
        self.plain_http[host.lower()] = app

    def add_local_http_prefix(self, first_segment: str, app: ASGIApp) -> None:
        self.local_http[first_segment.lower()] = app

    def add_path_style(self, is_account: Callable[[str], bool], app: ASGIApp) -> None:
        """On localhost over HTTPS, a first path segment that ``is_account`` names goes to ``app``."""
        self.path_style.append((is_account, app))

    def _path_style_app(self, first: str) -> ASGIApp | None:
        if first in _NOT_ACCOUNTS or first in _ARM_ROOTS:
            return None
        for is_account, app in self.path_style:
            if is_account(first):
                return app
        return None

    def serves(self, host: str) -> bool:
        """Whether a CONNECT to ``host``:443 is answered by Keyless rather than tunnelled."""
        host = host.lower()
        return host in self.exact or any(host.endswith(s) for s in self.suffixes)

    def _app_for_host(self, host: str) -> ASGIApp | None:
        app = self.exact.get(host)
        if app is not None:
            return app
        for suffix, suffix_app in self.suffixes.items():
            if host.endswith(suffix) and len(host) > len(suffix):
                return suffix_app
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            return
        host = host_of(scope)
        via_proxy = bool((scope.get("state") or {}).get(VIA_PROXY))
        if scope.get("scheme") == "http":
            app = self.plain_http.get(host)
            if app is not None:
                await app(scope, receive, send)
                return
            # A proxied request for another local port (a developer's own server) is passed on too.
            if via_proxy and (host not in LOCAL_HOSTS or not _names_this_listener(scope)):
                await self.forwarder(scope, receive, send)
                return
        if host in LOCAL_HOSTS:
            first = scope["path"].lstrip("/").split("/", 1)[0].lower()
            local_app = None
            if scope.get("scheme") == "http":
                local_app = self.local_http.get(_LOCAL_HTTP_ALIASES.get(first, first))
            if local_app is not None:
                await local_app(scope, receive, send)
            elif first == "_keyless":
                await self.internal(scope, receive, send)
            elif first in _ARM_ROOTS:
                await self.arm(scope, receive, send)
            elif scope.get("scheme") == "https" and (storage := self._path_style_app(first)) is not None:
                await storage(scope, receive, send)
            else:
                await self.authority(scope, receive, send)
            return
        app = self._app_for_host(host)
        if app is None:
            await send_json(
                send,
                421,
                {
                    "error": {
                        "code": "MisdirectedRequest",
                        "message": f"Keyless does not serve the host '{host}'.",
                    }
                },
            )
            return
        await app(scope, receive, send)
