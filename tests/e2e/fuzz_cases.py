"""The fuzz test's (``test_fuzz.py``) shared vocabulary of hostile values, and its core families.

The vocabulary: hostile path-segment suffixes, queries, headers, methods, bodies (bad, deep and
wrongly typed JSON), ``Route`` and the pieces every family draws with (``CoreGenerator``: one
seeded random). The families here: the resource manager (subscriptions, groups, resources,
lists, actions, ``Microsoft.Authorization`` at every scope, ``Keyless.Directory``), the
authority (discovery, token endpoints, issuer documents), and the edge's own routes and proxy.
The identity endpoints and Graph are in ``fuzz_identity.py`` (whose ``Generator`` puts all of
these in order), Key Vault in ``fuzz_keyvault.py``. Every request that could write carries a
body or a name that must be refused, so nothing may change.
"""

from __future__ import annotations

import base64
import copy
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from tests.e2e.arm_helpers import MSI_API, RG_API
from tests.e2e.fuzz_helpers import ARM_HOST, LOGIN_HOST, Hostile, Ids
from tests.e2e.workload_helpers import JWT_BEARER, SITE_TYPE, VM_API, VM_TYPE, WEB_API
from tests.keyless_server import KeylessServer

AUTHZ_API = "2022-04-01"
DIRECTORY_API = "2024-01-01"
ISSUER_API = "2026-11-01"
ISSUER_TYPE = "Keyless.Workload/oidcIssuers"
TOKEN_EXCHANGE = "api://AzureADTokenExchange"

# What each hostile variant puts into a path segment (already percent-encoded, sent as is). Each
# changes the name, so no DELETE or PUT below can ever name something that exists.
SEGMENT_SUFFIXES = (
    b"%00",
    b"%0A",
    b"%0D%0A",
    b"%09",
    b"%1F",
    b"%7F",
    b"%20",
    b"%",
    b"%zz",
    b"%G0",
    b"%C0%80",
    b"%FF%FE",
    b"%E2%80%8B",
    b"\xc3\xa9",
    b"%00%00" + b"x" * 40,
    b"x" * 300,
    b"y" * 2100,
    b"z" * 9000,
)
QUERY_VARIANTS = (
    b"api-version=%00",
    b"api-version={v}%0A",
    b"api-version={v}%00",
    b"api-version=" + b"9" * 5000,
    b"api-version={v}&api-version=%00",
    b"api-version",
    b"api-version=%",
    b"api-version=%zz",
    b"%zz=1&api-version={v}",
    b"api-version={v}&$skiptoken=AA%3D%3D",
    b"api-version={v}&$skiptoken=%00",
    b"api-version={v}&$skiptoken=" + b"QUFB" * 800,
    b"api-version={v}&$skiptoken=!!!",
    b"api-version={v}&%24skipToken=-1",
    b"api-version={v}&$filter=%00",
    b"api-version={v}&$filter=principalId%20eq%20%27%00%27",
    b"api-version={v}&$filter=assignedTo(%27" + b"a" * 3000 + b"%27)",
    b"api-version={v}&$filter=roleName%20eq%20%27%0A%27",
    b"api-version={v}&$filter=atScope()%20and",
    b"api-version={v}&$filter=" + b"(" * 2000,
    b"api-version={v}&" + b"&".join(b"p%d=%%00" % i for i in range(300)),
)
HEADER_VARIANTS: tuple[tuple[tuple[bytes, bytes], ...], ...] = (
    ((b"X-Huge", b"h" * 100_000),),
    tuple((b"X-Many-%d" % i, b"v") for i in range(400)),
    ((b"If-Match", b'"garbage'),),
    ((b"If-None-Match", b"\x01\x02"),),
    ((b"x-ms-client-request-id", b"r" * 20_000),),
    ((b"X-Control", b"a\x01b\x7fc"),),
    ((b"X-Nul", b"a\x00b"),),
    ((b"Bad Name", b"x"),),
    ((b"Content-Type", b"application/json; charset=utf-16"),),
    ((b"Content-Type", b"text/plain\x0b"),),
    ((b"X-Folded", b"a\r\n b"),),
    ((b"X-Latin", b"\xff\xfe\xfd"),),
)
ODD_METHODS = (b"FOO", b"PROPFIND", b"TRACE", b"OPTIONS", b"get", b"M" * 300, b"CONNECT")
BAD_JSON = (
    b"{",
    b"}",
    b"[",
    b'{"location":',
    b'{"location":"westeurope",}',
    b"{'location':'westeurope'}",
    b"nul",
    b'{"a":1}{"b":2}',
    b"\xff\xfe{",
    b'{"a":"\\ud800"}',
    b'{"a":1e999}',
    b'{"a":-}',
    b"\x00",
    b'{"a":"\x01"}',
    b"[]",
    b"null",
    b'"x"',
    b"1.5",
    b"true",
    b'{"a":"\\u0000"}',
    b'{"\\u0000":1}',
    b'{"location":"west\\u0000europe"}',
    b'{"properties":{"description":"a\\u0000b"}}',
    b"[" * 2000 + b"]" * 2000,
)
# Values of the wrong type for a field of each kind (none of them is ever acceptable there).
WRONG: dict[str, tuple[Any, ...]] = {
    "str": (1.5, True, [1], {}, "nul\u0000"),
    "obj": (1.5, True, [1], "x"),
    "list": (1.5, True, "x", {}, [1]),
    "bool": (1.5, "x", [1], {}, 1),
    "int": (1.5, "x", [1], {}, True),
}
# Names no rule accepts: the suffixes a PUT with an otherwise valid body may carry.
NAME_REFUSED = (b"%00", b"%0A", b"%0D%0A", b"%09", b"%1F", b"%", b"%zz", b"%G0", b"x" * 300, b"y" * 2100)


def _deep(levels: int, as_list: bool) -> bytes:
    """``properties`` nested ``levels`` deep (written by hand: no encoder goes that deep)."""
    opening, closing = (b"[", b"]") if as_list else (b'{"a":', b"}")
    return b'{"location":"westeurope","properties":' + opening * levels + b"1" + closing * levels + b"}"


# With the document and "properties", 64 levels make 65 nested containers: one past the limit.
DEEP_BODIES = tuple(_deep(n, as_list=n % 2 == 1) for n in (64, 65, 100, 253, 254, 300, 5000))


@dataclass(frozen=True)
class Route:
    """A route: path template, api-version, methods; for writes, a valid body (``template``) and
    its fields with their kinds (``typed``), each given a wrong value in turn (from ``WRONG``, and
    from ``extra`` or else ``EXTRA`` for that field). ``object_only``: a POST that acts on any
    JSON object, so only non-objects are sent to it. ``name_at``: a write that reads no body
    (purge, recover, rotate, delete), so it is only ever sent with the path segment at that
    index (the name) made one no rule accepts; a body could not be what refuses it."""

    path: str
    api_version: str
    methods: tuple[str, ...]
    template: dict[str, Any] | None = None
    typed: tuple[tuple[str, str], ...] = ()
    object_only: bool = False
    name_at: int | None = None
    extra: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


ENVELOPE = (("location", "str"), ("tags", "obj"), ("properties", "obj"), ("sku", "obj"), ("kind", "str"))
IDENTITY = (("identity", "obj"), ("identity.type", "str"), ("identity.userAssignedIdentities", "obj"))


def arm_routes() -> list[Route]:
    rg = "/subscriptions/{sub}/resourceGroups/fuzz-rg"
    located = {"location": "westeurope"}
    fic = {"properties": {"issuer": "https://issuer.example", "subject": "s", "audiences": [TOKEN_EXCHANGE]}}
    fic_typed = (("properties", "obj"), ("properties.issuer", "str"), ("properties.subject", "str"))
    assignment = {"properties": {"roleDefinitionId": "{reader}", "principalId": "{sp}"}}
    fields = ("roleDefinitionId", "principalId", "principalType", "condition", "description")
    assignment_typed = (("properties", "obj"), *((f"properties.{k}", "str") for k in fields))
    role = {
        "properties": {
            "roleName": "fuzz-role",
            "permissions": [{"actions": ["*/read"]}],
            "assignableScopes": ["/subscriptions/{sub}"],
        }
    }
    role_typed: tuple[tuple[str, str], ...] = (
        ("properties.roleName", "str"),
        ("properties.permissions", "list"),
    )
    role_typed += (("properties.assignableScopes", "list"), ("properties.description", "str"))
    vm, site = f"{rg}/providers/{VM_TYPE}/fuzz-vm", f"{rg}/providers/{SITE_TYPE}/fuzz-site"
    issuer = f"{rg}/providers/{ISSUER_TYPE}/fuzz-issuer"
    named, name_typed = {"displayName": "x"}, (("displayName", "str"),)
    writes = ("GET", "PUT", "PATCH", "DELETE")
    routes = [
        Route("/subscriptions", "2022-12-01", ("GET",)),
        Route("/tenants", "2022-12-01", ("GET",)),
        Route("/subscriptions/{sub}", "2022-12-01", ("GET",)),
        Route("/subscriptions/{sub}/operationresults/{guid}", RG_API, ("GET",)),
        Route("/metadata/endpoints", "2022-09-01", ("GET",)),
        Route("/subscriptions/{sub}/resourcegroups", RG_API, ("GET",)),
        Route(rg, RG_API, ("GET", "HEAD", "PUT", "PATCH", "DELETE"), located, ENVELOPE),
        Route(f"{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities", MSI_API, ("GET",)),
        Route(f"/subscriptions/{{sub}}/providers/{VM_TYPE}", VM_API, ("GET",)),
        Route(f"{rg}/providers/{SITE_TYPE}", WEB_API, ("GET",)),
        Route(f"{rg}/providers/{ISSUER_TYPE}", ISSUER_API, ("GET",)),
        Route(f"{rg}/providers/Microsoft.Nowhere/things", MSI_API, ("GET",)),
        Route("{uami}", MSI_API, writes, located, ENVELOPE + IDENTITY),
        Route("{uami}/federatedIdentityCredentials", MSI_API, ("GET",)),
        Route(
            "{uami}/federatedIdentityCredentials/fuzz-fic", MSI_API, ("GET", "PUT", "DELETE"), fic, fic_typed
        ),
        Route(vm, VM_API, writes, {**located, "identity": {"type": "SystemAssigned"}}, ENVELOPE + IDENTITY),
        Route(site, WEB_API, writes, {**located, "kind": "functionapp"}, ENVELOPE + IDENTITY),
        Route(issuer, ISSUER_API, writes, located, ENVELOPE),
        Route(f"{vm}/listHostToken", VM_API, ("POST",), object_only=True),
        Route(f"{vm}/regenerateHostToken", VM_API, ("POST",), object_only=True),
        Route(f"{site}/listHostToken", WEB_API, ("POST",), object_only=True),
        Route(f"{site}/regenerateHostToken", WEB_API, ("POST",), object_only=True),
        Route(f"{site}/publishxml", WEB_API, ("POST",), object_only=True),
        Route(f"{site}/config/web", WEB_API, ("GET", "PUT"), {"properties": {}}, (("properties", "obj"),)),
        Route(
            f"{issuer}/issueToken",
            ISSUER_API,
            ("POST",),
            {"subject": "system:serviceaccount:default:fuzz"},
            (("subject", "str"), ("audience", "str"), ("expirationSeconds", "int")),
        ),
        Route("/subscriptions/{sub}/resources", "2024-11-01", ("GET",)),
        Route(f"{rg}/resources", "2021-04-01", ("GET",)),
        Route("/subscriptions/{sub}/locations", "2022-12-01", ("GET",)),
        Route("/subscriptions/{sub}/providers", "2024-11-01", ("GET",)),
        Route("/subscriptions/{sub}/providers/Microsoft.ManagedIdentity", "2024-11-01", ("GET",)),
        Route(
            "/subscriptions/{sub}/providers/Microsoft.Web/register", "2024-11-01", ("POST",), object_only=True
        ),
        Route(
            "/subscriptions/{sub}/providers/Microsoft.Web/unregister",
            "2024-11-01",
            ("POST",),
            object_only=True,
        ),
        Route("/providers", "2024-11-01", ("GET",)),
        Route("/providers/Microsoft.Compute", "2024-11-01", ("GET",)),
        Route("/providers/Keyless.Directory/servicePrincipals", DIRECTORY_API, ("POST",), named, name_typed),
        Route("/providers/Keyless.Directory/groups", DIRECTORY_API, ("POST",), named, name_typed),
        Route("/providers/Keyless.Directory/groups/{group}", DIRECTORY_API, ("GET",)),
        Route("/providers/Keyless.Directory/groups/{group}/members/{sp}", DIRECTORY_API, ("PUT", "DELETE")),
    ]
    for scope in ("", "/subscriptions/{sub}", rg, "{uami}"):
        authz = scope + "/providers/Microsoft.Authorization"
        routes += [
            Route(f"{authz}/roleAssignments", AUTHZ_API, ("GET",)),
            Route(
                f"{authz}/roleAssignments/{{assignment}}",
                AUTHZ_API,
                ("GET", "PUT", "DELETE"),
                assignment,
                assignment_typed,
            ),
            Route(f"{authz}/roleDefinitions", AUTHZ_API, ("GET",)),
            Route(f"{authz}/roleDefinitions/{{role}}", AUTHZ_API, ("GET", "PUT", "DELETE"), role, role_typed),
            Route(f"{authz}/permissions", AUTHZ_API, ("GET",)),
            Route(f"{authz}/denyAssignments", AUTHZ_API, ("GET",)),
            Route(f"{authz}/denyAssignments/{{guid}}", AUTHZ_API, ("GET",)),
            Route(
                f"{authz}/explain",
                AUTHZ_API,
                ("POST",),
                {"action": "*/read"},
                (("action", "str"), ("principalId", "str"), ("isDataAction", "bool")),
            ),
        ]
    return routes


# Extra values, beyond a wrong type, that a field must refuse.
EXTRA: dict[str, tuple[Any, ...]] = {
    "tags": ({"k": 1}, {"k": None}, {"k": [1]}),
    "identity.userAssignedIdentities": ({"x": 5}, {"/subscriptions/x": {}}, {"y" * 3000: {}}),
    "properties.permissions": ([1], [{"actions": 5}]),
    "properties.description": ("d" * 3000,),
    "displayName": ("", "d" * 300),
    "expirationSeconds": (-1, 10**12),
}


FORM_TYPE = (b"Content-Type", b"application/x-www-form-urlencoded")
Headers = tuple[tuple[bytes, bytes], ...]
# One hostile request of a route: method, request-target, label, body, extra headers.
Case = tuple[str | bytes, bytes, str, bytes, Headers]


def set_field(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """``doc`` with the field at ``dotted`` (``a.b``) set to ``value``, parents made as needed."""
    out = copy.deepcopy(doc)
    node = out
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.get(key)
        node[key] = child = child if isinstance(child, dict) else {}
        node = child
    node[leaf] = value
    return out


def form_body(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A form body from (name, value) pairs already percent-encoded (or made hostile): sent as is."""
    return b"&".join(k + b"=" + v for k, v in pairs)


class CoreGenerator:
    """Builds the hostile requests; every choice is drawn from one seeded ``random.Random``.

    The pieces every family uses, and the resource manager's, authority's and edge's requests;
    ``fuzz_identity.Generator`` adds the identity endpoints and Graph and orders them all.
    """

    def __init__(self, srv: KeylessServer, ids: Ids, rng: random.Random) -> None:
        self.ids, self.rng = ids, rng
        self.local_https = f"127.0.0.1:{srv.https_port}"
        self.local_http = f"127.0.0.1:{srv.http_port}"

    # --- pieces ----------------------------------------------------------------------------

    def pick(self, options: Any) -> Any:
        return options[self.rng.randrange(len(options))]

    def segments(self, path: str) -> list[bytes]:
        return [quote(seg, safe="-._~()$'").encode() for seg in self.ids.fill(path).split("/")[1:]]

    def mutate(
        self, segments: list[bytes], suffixes: tuple[bytes, ...], index: int | None = None
    ) -> tuple[bytes, bytes]:
        """The path with one segment (``index``, else usually the last: the name) given a hostile
        suffix, or replaced by one; and the suffix."""
        out = list(segments)
        if index is None:
            index = len(out) - 1 if self.rng.random() < 0.6 else self.rng.randrange(len(out))
        suffix = self.pick(suffixes)
        out[index] = suffix if self.rng.random() < 0.25 else out[index] + suffix
        return b"/" + b"/".join(out), suffix

    def bad_body(self, route: Route) -> bytes:
        """A body the route must refuse: malformed or deep JSON, a NUL, a field of the wrong type."""
        roll = self.rng.random()
        if route.object_only or not route.template or roll < 0.35:
            return bytes(self.pick(BAD_JSON))
        if roll < 0.5:
            return bytes(self.pick(DEEP_BODIES))
        template = self.ids.fill_doc(route.template)
        if roll < 0.6 or not route.typed:
            return orjson.dumps({**template, "nul\u0000key": "v"})
        name, kind = self.pick(route.typed)
        extra = route.extra.get(name, EXTRA.get(name, ()))
        return orjson.dumps(self.ids.fill_doc(set_field(template, name, self.pick(WRONG[kind] + extra))))

    def auth(self) -> Headers:
        roll = self.rng.random()
        if roll < 0.2:
            return ()
        if roll < 0.3:
            garbage = (b"Bearer x.y.z", b"Bearer", b"Basic Zm9vOmJhcg==", b"Bearer " + b"e" * 9000)
            return ((b"Authorization", self.pick(garbage)),)
        # Mostly the admin (so requests reach deep); sometimes a valid token for another audience.
        token = self.ids.vault_token if roll < 0.35 else self.ids.admin_token
        return ((b"Authorization", b"Bearer " + token.encode()),)

    def tls(self, production_host: str) -> tuple[str, str]:
        """(listener, host): through the proxy's CONNECT, or direct by host name or address."""
        if self.rng.random() < 0.2:
            return "connect", production_host
        return "https", production_host if self.rng.random() < 0.6 else self.local_https

    # --- the resource manager --------------------------------------------------------------

    def arm_request(
        self, method: str | bytes, target: bytes, label: str, body: bytes = b"", extra: Headers = ()
    ) -> Hostile:
        headers = (*self.auth(), (b"Content-Type", b"application/json"), *extra)
        verb = method.encode() if isinstance(method, str) else method
        listener, host = self.tls(ARM_HOST)
        return Hostile("arm", listener, verb, target, host, headers, body, label)

    def arm(self, route: Route) -> Iterator[Hostile]:
        for method, target, label, body, headers in self.cases(route, QUERY_VARIANTS):
            yield self.arm_request(method, target, label, body, headers)

    def cases(self, route: Route, queries: tuple[bytes, ...]) -> Iterator[Case]:
        """The hostile (method, target, label, body, extra headers) of one route: names and ids,
        queries (``{v}`` is the api-version), headers, bodies, methods, and sometimes a huge body.
        Every write carries a refused name or body; with ``name_at``, always a refused name."""
        segments = self.segments(route.path)
        query = b"api-version=" + route.api_version.encode()
        path = b"/" + b"/".join(segments)
        writes = [m for m in route.methods if m in ("PUT", "PATCH", "POST")]
        for _ in range(10):  # hostile names and ids
            method = self.pick(route.methods)
            refuse_name = (method == "PUT" and route.template) or route.name_at is not None
            mutated, suffix = self.mutate(
                segments, NAME_REFUSED if refuse_name else SEGMENT_SUFFIXES, route.name_at
            )
            body = b""
            if method in writes:
                valid = route.template and method == "PUT" and self.rng.random() < 0.5
                body = orjson.dumps(self.ids.fill_doc(route.template)) if valid else self.bad_body(route)
            yield method, mutated + b"?" + query, f"segment {suffix[:9]!r}", body, ()
        if route.name_at is not None:  # nothing below may name the real thing
            path = self.mutate(segments, NAME_REFUSED, route.name_at)[0]
        # Query and header cases use a read, or a write whose body is refused anyway.
        safe = writes[0] if "GET" not in route.methods and (route.template or route.object_only) else "GET"

        def safe_body() -> bytes:
            return self.bad_body(route) if safe != "GET" else b""

        for _ in range(4):
            variant = self.pick(queries).replace(b"{v}", route.api_version.encode())
            yield safe, path + b"?" + variant, "query", safe_body(), ()
        for _ in range(3):
            yield safe, path + b"?" + query, "headers", safe_body(), self.pick(HEADER_VARIANTS)
        for method in writes if (route.template or route.object_only) else ():
            for _ in range(6):
                yield method, path + b"?" + query, "body", self.bad_body(route), ()
        for _ in range(2):
            yield self.pick(ODD_METHODS), path + b"?" + query, "method", b"", ()
        if writes and self.rng.random() < 0.1:  # over the 4 MiB body limit
            huge = b"[" + b"1," * 2_700_000 + b"1]"
            yield writes[0], path + b"?" + query, "huge body", huge, ()

    # --- the authority ---------------------------------------------------------------------

    def login(
        self, method: bytes, target: bytes, label: str, headers: Headers = (), body: bytes = b""
    ) -> Hostile:
        listener, host = self.tls(LOGIN_HOST)
        return Hostile("authority", listener, method, target, host, headers, body, label)

    def authority(self) -> Iterator[Hostile]:
        documents = (
            "/{tenant}/v2.0/.well-known/openid-configuration",
            "/{tenant}/.well-known/openid-configuration",
            "/{tenant}/discovery/v2.0/keys",
            "/{tenant}/discovery/keys",
            "/{tenant}/discovery/instance",
            "/common/v2.0/.well-known/openid-configuration",
            "/{tenant}/keyless/issuers/{issuer}/.well-known/openid-configuration",
            "/{tenant}/keyless/issuers/{issuer}/openid/v1/jwks",
            "/{tenant}/no/such/endpoint",
        )
        for document in documents:
            segments = self.segments(document)
            path = b"/" + b"/".join(segments)
            for _ in range(6):
                mutated, suffix = self.mutate(segments, SEGMENT_SUFFIXES)
                yield self.login(b"GET", mutated, f"segment {suffix[:9]!r}")
            for variant in (self.pick(QUERY_VARIANTS), b"%00=%00&x=" + b"q" * 8000):
                yield self.login(b"GET", path + b"?" + variant, "query")
            for _ in range(2):
                yield self.login(b"GET", path, "headers", self.pick(HEADER_VARIANTS))
                method = self.pick((*ODD_METHODS, b"POST", b"PUT", b"DELETE"))
                yield self.login(method, path, "method", body=self.pick(BAD_JSON))
        yield from self.token_endpoint("/{tenant}/oauth2/v2.0/token", "scope")
        yield from self.token_endpoint("/{tenant}/oauth2/token", "resource")

    def token_endpoint(self, path: str, audience_field: str) -> Iterator[Hostile]:
        audience = "https://management.azure.com/" + (".default" if audience_field == "scope" else "")
        fields = {
            "grant_type": "client_credentials",
            "client_id": self.ids.values["admin_client"],
            "client_secret": self.ids.values["admin_secret"],
            audience_field: audience,
        }
        base = [(k.encode(), quote(v, safe="").encode()) for k, v in fields.items()]
        segments = self.segments(path)
        target = b"/" + b"/".join(segments)
        for _ in range(40):  # one hostile field value, name, duplicate or absence
            pairs = list(base)
            index = self.rng.randrange(len(pairs))
            name, value = pairs[index]
            suffix = self.pick((*SEGMENT_SUFFIXES, b"%00" * 3, b"+%0A"))
            how = self.rng.randrange(5)
            if how == 4:
                del pairs[index]
            else:
                changed = ((name, value + suffix), (name, suffix), (name + suffix, value), (name, value))[how]
                pairs[index] = changed
                if how == 3:
                    pairs.append((name, suffix))  # a second value: only the first counts
            yield self.login(b"POST", target, f"form {name!r}", (FORM_TYPE,), form_body(pairs))
        assertion_type = (b"client_assertion_type", quote(JWT_BEARER, safe="").encode())
        for junk in (
            b"a.b.c",
            b"e" * 5000,
            b"eyJhbGciOiJub25lIn0.eyJpc3MiOjV9.",
            b"%00.%00.%00",
            b"eyJ%0A.e30",
        ):
            pairs = [p for p in base if p[0] != b"client_secret"] + [
                assertion_type,
                (b"client_assertion", junk),
            ]
            yield self.login(b"POST", target, "assertion", (FORM_TYPE,), form_body(pairs))
        raw_bodies = (b"%", b"=&=&=", b"\xff\xfe\x00", b"a=%zz&b=%", b"&" * 10000, b'{"grant_type":"x"}')
        for body in (*raw_bodies, b"a=" + b"b" * 70_000):
            yield self.login(b"POST", target, "raw body", (FORM_TYPE,), body)
        for kind in (b"text/plain", b"application/json", FORM_TYPE[1] + b"; charset=utf-16", b"\x01"):
            yield self.login(b"POST", target, "content type", ((b"Content-Type", kind),), form_body(base))
        basics = (
            b"Basic " + base64.b64encode(b"%00:%00"),
            b"Basic !!!",
            b"Basic " + base64.b64encode(b"\xff:\xfe"),
            b"Basic " + b"A" * 20_000,
            b"Basic " + base64.b64encode(b"a\x00b:c"),
        )
        without_client = [p for p in base if p[0] not in (b"client_id", b"client_secret")]
        for basic in basics:
            headers = (FORM_TYPE, (b"Authorization", basic))
            yield self.login(b"POST", target, "basic", headers, form_body(without_client))
        for _ in range(4):
            mutated, suffix = self.mutate(segments, SEGMENT_SUFFIXES)
            yield self.login(b"POST", mutated, f"path {suffix[:9]!r}", (FORM_TYPE,), form_body(base))

    # --- the edge --------------------------------------------------------------------------

    def edge(self) -> Iterator[Hostile]:
        internal = (b"health", b"bare", b"bare-asgi", b"%00", b"health%0A", b"k" * 5000)
        for name in internal:
            for method in (b"GET", b"POST", *self.rng.sample(ODD_METHODS, 3)):
                use_tls = self.rng.random() < 0.5
                listener, host = ("https", self.local_https) if use_tls else ("http", self.local_http)
                target = b"/_keyless/" + name + b"?" + self.pick(QUERY_VARIANTS)
                headers, body = self.pick(HEADER_VARIANTS), self.pick(BAD_JSON)
                yield Hostile("edge", listener, method, target, host, headers, body, "internal")
        # CONNECT targets the proxy cannot parse (none names a host it would dial out to).
        for target in (b"management.azure.com", b":443", b"[::1", b"management.azure.com:abc", b"[%00]:x"):
            yield Hostile("edge", "http", b"CONNECT", target, ARM_HOST, label="connect")
        huge = ((b"X-Huge", b"h" * 70_000),)
        yield Hostile("edge", "http", b"GET", b"/_keyless/health", self.local_http, huge, label="big head")
        absolute = b"https://management.azure.com/subscriptions?api-version=2022-12-01"
        yield Hostile("edge", "http", b"GET", absolute, ARM_HOST, label="absolute https")
        yield Hostile("edge", "https", b"GET", b"/subscriptions", "nowhere.example", label="unknown host")
