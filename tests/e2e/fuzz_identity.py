"""The fuzz test's hostile requests to the identity endpoints and Microsoft Graph.

IMDS through the forward proxy (``http://169.254.169.254``, as a VM calls it, family
``imds-proxy``) and directly at the per-workload base URL (``/imds/{host token}``, family
``imds-direct``), instance metadata included; the App Service endpoint (``/msi/token``, family
``app-service``); and Graph (``graph.microsoft.com``, family ``graph``). None of them writes
anything a body could be refused for: they mint tokens or read, so the fuzz test compares the
database once, at the end.

``Generator`` here is every family but Key Vault's (``fuzz_keyvault.py`` adds those). The shared
vocabulary and the resource manager, authority and edge families are in ``fuzz_cases.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson

from tests.e2e.fuzz_cases import (
    BAD_JSON,
    HEADER_VARIANTS,
    ODD_METHODS,
    SEGMENT_SUFFIXES,
    CoreGenerator,
    Headers,
    arm_routes,
    form_body,
)
from tests.e2e.fuzz_helpers import GRAPH_HOST, IMDS_HOST, Hostile
from tests.e2e.workload_helpers import proxy_auth

METADATA = (b"Metadata", b"true")
IMDS_PATH = b"/metadata/identity/oauth2/token"
IMDS_QUERY = b"api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"
INSTANCE_PATHS = (
    b"/metadata/instance",
    b"/metadata/instance/compute",
    b"/metadata/instance/network",
    b"/metadata/instance/compute/subscriptionId",
    b"/metadata/instance/compute/tagsList/0",
    b"/metadata/instance/network/interface/0/ipv4",
    b"/metadata/instance/network/interface/99",
    b"/metadata/versions",
    b"/metadata/nothing",
)
IMDS_PARAMS = ("api-version", "resource", "client_id", "object_id", "msi_res_id", "mi_res_id", "bypass_cache")
MSI_QUERY = b"api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net"


class Generator(CoreGenerator):
    """Every family but Key Vault's: ``CoreGenerator``'s and the identity endpoints and Graph.

    ``all`` keeps one order, since every family draws from the same seeded random: a family moved
    earlier or later would change what every later family sends.
    """

    def all(self) -> Iterator[Hostile]:
        for route in arm_routes():
            yield from self.arm(route)
        yield from self.authority()
        yield from self.imds()
        yield from self.app_service()
        yield from self.edge()
        yield from self.graph()

    # --- the identity endpoints ------------------------------------------------------------

    def imds_query(self) -> bytes:
        """IMDS's query with one parameter hostile (and sometimes given twice)."""
        name = self.pick(IMDS_PARAMS).encode()
        pairs = [p for p in (p.split(b"=") for p in IMDS_QUERY.split(b"&")) if p[0] != name]
        suffix = self.pick(SEGMENT_SUFFIXES)
        pairs.append([name, suffix if self.rng.random() < 0.5 else b"x" + suffix])
        if self.rng.random() < 0.2:
            pairs.append([name, b"dup"])
        return b"&".join(b"=".join(p) for p in pairs)

    def via_proxy(
        self, method: bytes, path_query: bytes, headers: Headers, label: str, body: bytes = b""
    ) -> Hostile:
        target = b"http://" + IMDS_HOST.encode() + path_query
        return Hostile("imds-proxy", "http", method, target, IMDS_HOST, headers, body, label)

    def imds(self) -> Iterator[Hostile]:
        vm = proxy_auth(self.ids.vm_token).encode()
        passwords: tuple[bytes, ...] = (
            vm,
            vm,
            b"Basic !!!",
            b"Basic " + base64.b64encode(b"w:%00"),
            b"Bearer x",
        )
        passwords += (proxy_auth(self.ids.site_token).encode(), b"Basic " + b"B" * 30_000)
        for _ in range(60):  # through the proxy at http://169.254.169.254, as a VM calls it
            headers = (METADATA, (b"Proxy-Authorization", self.pick(passwords)))
            yield self.via_proxy(b"GET", IMDS_PATH + b"?" + self.imds_query(), headers, "query")
        token = self.ids.vm_token.encode()
        for _ in range(50):  # direct: the per-workload base URL
            hostile = token
            if self.rng.random() < 0.4:
                suffix = self.pick(SEGMENT_SUFFIXES)
                hostile = token + suffix if self.rng.random() < 0.5 else suffix
            target = b"/imds/" + hostile + IMDS_PATH + b"?" + self.imds_query()
            yield Hostile("imds-direct", "http", b"GET", target, self.local_http, (METADATA,), label="query")
        header_sets: list[Headers] = [(), ((b"Metadata", b"True"),), ((b"Metadata", b"true\x01"),)]
        header_sets.append((METADATA, (b"X-Forwarded-For", b"1.2.3.4")))
        header_sets += [(METADATA, *v) for v in HEADER_VARIANTS]
        direct = b"/imds/" + token + IMDS_PATH + b"?" + IMDS_QUERY
        for extra in header_sets:
            yield self.via_proxy(
                b"GET", IMDS_PATH + b"?" + IMDS_QUERY, ((b"Proxy-Authorization", vm), *extra), "headers"
            )
            yield Hostile("imds-direct", "http", b"GET", direct, self.local_http, extra, label="headers")
        authorized = ((b"Proxy-Authorization", vm), METADATA)
        for method in (*ODD_METHODS, b"POST", b"PUT", b"DELETE"):
            yield self.via_proxy(
                method, IMDS_PATH + b"?" + IMDS_QUERY, authorized, "method", self.pick(BAD_JSON)
            )
        for path in (IMDS_PATH + b"%00", IMDS_PATH + b"%0A", b"/metadata/instance", b"/" + b"m" * 5000):
            yield self.via_proxy(b"GET", path + b"?" + IMDS_QUERY, authorized, "path")
        # Instance metadata and /metadata/versions: hostile routes, formats and api-versions, through
        # the proxy as the VM and straight to the HTTP listener with no host token.
        for path in INSTANCE_PATHS:
            for _ in range(4):
                suffix = self.pick(SEGMENT_SUFFIXES)
                version = self.pick((b"2021-02-01", b"latest", b"", b"2021-02-01" + suffix))
                fmt = self.pick((b"json", b"text", b"xml", suffix))
                target = (
                    path + self.pick((b"", b"/" + suffix)) + b"?api-version=" + version + b"&format=" + fmt
                )
                yield self.via_proxy(b"GET", target, authorized, "instance")
                yield Hostile(
                    "imds-direct", "http", b"GET", target, self.local_http, (METADATA,), label="instance"
                )

    def msi(self, method: bytes, target: bytes, headers: Headers, label: str, body: bytes = b"") -> Hostile:
        return Hostile("app-service", "http", method, target, self.local_http, headers, body, label)

    def app_service(self) -> Iterator[Hostile]:
        site = self.ids.site_token.encode()
        good = (b"X-IDENTITY-HEADER", site)
        params = (
            "api-version",
            "resource",
            "client_id",
            "principal_id",
            "object_id",
            "mi_res_id",
            "msi_res_id",
        )
        for _ in range(45):
            pairs = {b"api-version": b"2019-08-01", b"resource": b"https%3A%2F%2Fvault.azure.net"}
            name = self.pick(params).encode()
            pairs[name] = pairs.get(name, b"v") + self.pick(SEGMENT_SUFFIXES)
            yield self.msi(b"GET", b"/msi/token?" + form_body(list(pairs.items())), (good,), "query")
        identity_headers = (
            (b"X-IDENTITY-HEADER", b"x" * 5000),
            (b"X-IDENTITY-HEADER", self.ids.vm_token.encode()),
            (b"X-IDENTITY-HEADER", site + b"\x01"),
            (b"X-IDENTITY-HEADER", b""),
            (b"secret", site + b" "),
        )
        for header in identity_headers:
            yield self.msi(b"GET", b"/msi/token?" + MSI_QUERY, (header,), "identity header")
        legacy = b"/msi/token?api-version=2017-09-01&resource=https%3A%2F%2Fvault.azure.net&clientid="
        for suffix in SEGMENT_SUFFIXES[:8]:
            yield self.msi(b"GET", legacy + suffix, ((b"secret", site),), "legacy")
        for method in (*ODD_METHODS, b"POST", b"PUT"):
            yield self.msi(method, b"/msi/token?" + MSI_QUERY, (good,), "method", self.pick(BAD_JSON))
        for extra in HEADER_VARIANTS:
            yield self.msi(b"GET", b"/msi/token?" + MSI_QUERY, (good, *extra), "headers")
        for path in (b"/msi/token%00", b"/msi/token%0A", b"/msi/" + b"t" * 5000, b"/msi/%zz"):
            yield self.msi(b"GET", path + b"?" + MSI_QUERY, (good,), "path")

    # --- Microsoft Graph ---------------------------------------------------------------------

    def graph_request(self, method: bytes, target: bytes, label: str, body: bytes = b"") -> Hostile:
        roll = self.rng.random()
        token = self.ids.graph_token if roll < 0.8 else self.ids.admin_token  # sometimes the wrong aud
        headers = ((b"Authorization", b"Bearer " + token.encode()), (b"Content-Type", b"application/json"))
        listener = "connect" if self.rng.random() < 0.3 else "https"
        return Hostile(
            "graph", listener, method, target, GRAPH_HOST, headers if roll < 0.95 else (), body, label
        )

    def graph(self) -> Iterator[Hostile]:
        reads = (
            "/v1.0/servicePrincipals",
            "/v1.0/servicePrincipals/{sp}",
            "/v1.0/servicePrincipals(appId='{admin_client}')",
            "/v1.0/groups",
            "/v1.0/groups/{group}",
            "/v1.0/groups/{group}/members",
            "/v1.0/users",
            "/v1.0/directoryObjects/{sp}",
        )
        posts = ("/v1.0/directoryObjects/getByIds", "/v1.0/directoryObjects/{sp}/checkMemberGroups")
        filters = (
            b"$filter=%00",
            b"$filter=appId%20eq",
            b"$filter=" + b"(" * 2000,
            b"$filter=servicePrincipalNames/any(c:c%20eq%20%27" + b"a" * 3000 + b"%27)",
            b"$filter=displayName%20eq%20%27%0A%27",
            b"$filter=startswith(displayName)",
            b"$filter=not%20not%20not%20id%20eq%20%27x%27",
            b"$filter=id%20in%20(" + b",".join(b"%27x%27" for _ in range(40)) + b")",
            b"$top=-1",
            b"$top=" + b"9" * 400,
            b"$skiptoken=%FF%FE",
            b"$skiptoken=" + b"QUFB" * 800,
            b"$select=" + b"a," * 2000,
            b"$filter=x&$filter=y",
        )
        for path in reads:
            segments = self.segments(path)
            for _ in range(5):
                mutated, suffix = self.mutate(segments, SEGMENT_SUFFIXES)
                yield self.graph_request(b"GET", mutated, f"segment {suffix[:9]!r}")
            for _ in range(4):
                target = b"/" + b"/".join(segments) + b"?" + self.pick(filters)
                yield self.graph_request(b"GET", target, "query")
            yield self.graph_request(self.pick(ODD_METHODS), b"/" + b"/".join(segments), "method")
        for path in posts:
            target = b"/" + b"/".join(self.segments(path))
            for _ in range(12):
                yield self.graph_request(b"POST", target, "body", self.pick(BAD_JSON))
            for body in (
                orjson.dumps({"ids": ["x"] * 2000}),
                orjson.dumps({"ids": [1, None]}),
                orjson.dumps({"groupIds": ["%00"] * 30}),
                orjson.dumps({"ids": [], "types": [{}]}),
                b'{"ids":["' + b"a" * 300_000 + b'"]}',
            ):
                yield self.graph_request(b"POST", target, "body", body)
