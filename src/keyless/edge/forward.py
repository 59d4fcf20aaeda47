"""Plain-HTTP proxy requests for hosts Keyless does not emulate are passed on untouched."""

from __future__ import annotations

import httpx

from keyless.web import Receive, Scope, Send, read_body, send_bytes

# Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own and are not forwarded.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


class Forwarder:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, timeout=30.0, follow_redirects=False)
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        query = scope.get("query_string", b"").decode("latin-1")
        url = (
            f"http://{host}{scope['raw_path'].decode('latin-1') if scope.get('raw_path') else scope['path']}"
        )
        if query and "?" not in url:
            url += "?" + query
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]
        body = await read_body(receive)
        try:
            response = await self._http().request(scope["method"], url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            message = f"Keyless proxy: the host '{host}' could not be reached: {exc}".encode()
            await send_bytes(send, 502, message, b"text/plain; charset=utf-8")
            return
        out_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.encode("latin-1").lower() not in _HOP_BY_HOP
            and k.lower() not in ("content-length", "content-encoding")
        ]
        content = response.content
        out_headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": content})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
