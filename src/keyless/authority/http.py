"""The authority's wire layer, shaped like login.microsoftonline.com."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote_plus

from keyless.authority import errors
from keyless.authority.service import Authority
from keyless.web import BodyTooLarge, Receive, Scope, Send, base_url, has_nul, header, read_body, send_json

_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _basic_credentials(scope: Scope) -> tuple[str, str] | None:
    auth = header(scope, b"authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return unquote_plus(user), unquote_plus(password)


class AuthorityApp:
    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        segments = [s for s in scope["path"].split("/") if s]
        lowered = [s.lower() for s in segments]
        method = scope["method"]
        base = base_url(scope)
        try:
            if has_nul(scope["path"]):  # no tenant, issuer or endpoint name holds one
                raise errors.malformed_request()
            if len(segments) >= 2:
                tenant, rest = segments[0], lowered[1:]
                if method == "GET" and rest in (
                    ["v2.0", ".well-known", "openid-configuration"],
                    [".well-known", "openid-configuration"],
                ):
                    doc = self.authority.openid_configuration(base, tenant, v2=rest[0] == "v2.0")
                    await send_json(send, 200, doc, {"Cache-Control": "max-age=86400, private"})
                    return
                if method == "GET" and rest in (["discovery", "v2.0", "keys"], ["discovery", "keys"]):
                    await send_json(send, 200, self.authority.keyset.jwks(), {"Cache-Control": "max-age=300"})
                    return
                if method == "GET" and len(rest) >= 3 and rest[:2] == ["keyless", "issuers"]:
                    await self._oidc_issuer(send, base, tenant, rest[2], rest[3:])
                    return
                if method == "GET" and rest == ["discovery", "instance"]:
                    await send_json(send, 200, self.authority.instance_discovery(base, ""))
                    return
                if rest in (["oauth2", "v2.0", "token"], ["oauth2", "token"]):
                    if method != "POST":
                        await send_json(
                            send,
                            405,
                            {
                                "error": "invalid_request",
                                "error_description": "The token endpoint only accepts POST.",
                            },
                        )
                        return
                    await self._token(scope, receive, send, tenant, v1=rest == ["oauth2", "token"])
                    return
            await send_json(send, 404, {"error": "not_found", "error_description": "No such endpoint."})
        except errors.OAuthError as exc:
            headers = dict(_NO_STORE)
            headers["x-ms-request-id"] = exc.body()["trace_id"]
            await send_json(send, exc.status, exc.body(header(scope, b"client-request-id")), headers)

    async def _oidc_issuer(self, send: Send, base: str, tenant: str, guid: str, rest: list[str]) -> None:
        """A Keyless OIDC issuer's discovery document and keys (the paths a Kubernetes issuer serves)."""
        if rest not in ([".well-known", "openid-configuration"], ["openid", "v1", "jwks"]):
            await send_json(send, 404, {"error": "not_found", "error_description": "No such endpoint."})
            return
        doc = self.authority.federation.discovery(base, tenant, guid)
        if doc is None:
            await send_json(send, 404, {"error": "not_found", "error_description": "No such issuer."})
        elif rest[0] == "openid":
            await send_json(send, 200, self.authority.keyset.jwks(), {"Cache-Control": "max-age=300"})
        else:
            await send_json(send, 200, doc, {"Cache-Control": "max-age=300"})

    async def _token(self, scope: Scope, receive: Receive, send: Send, tenant: str, *, v1: bool) -> None:
        content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
        try:
            raw = await read_body(receive, limit=64 * 1024)
        except BodyTooLarge as exc:
            raise errors.OAuthError(400, "invalid_request", 90014, "The request body is too large.") from exc
        if content_type != "application/x-www-form-urlencoded":
            raise errors.OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        form: dict[str, str] = {}
        for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(key, value)
        basic = _basic_credentials(scope)
        if basic is not None:
            form.setdefault("client_id", basic[0])
            form.setdefault("client_secret", basic[1])
        if any(has_nul(key, value) for key, value in form.items()):
            # The one place every token-endpoint field arrives: no directory value holds a NUL.
            raise errors.malformed_request()
        body = await self.authority.token(tenant, form, v1)
        await send_json(send, 200, body, _NO_STORE)
