"""Key Vault's hostile requests for the fuzz test: the control plane (``Microsoft.KeyVault/vaults``,
its ``accessPolicies/add``, ``checkNameAvailability``, deleted vaults and purge) in the ``arm``
family, and the data plane (``https://{vault}.vault.azure.net`` through the proxy's ``CONNECT``)
in the ``keyvault`` family: every route of ``providers/keyvault/http.py``'s docstring.

The targets (``fuzz_helpers.make_vault_targets``) are real, so requests reach deep: a vault whose
access policy gives the admin every key and secret permission, a key, a secret, a deleted key and
secret, and a soft-deleted vault. As everywhere in the fuzz test, every write carries a name or a
body that must be refused; writes that read no body (delete, purge, recover, rotate) are only sent
under a refused name (``Route.name_at``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tests.e2e.fuzz_cases import (
    EXTRA,
    HEADER_VARIANTS,
    ODD_METHODS,
    QUERY_VARIANTS,
    WRONG,
    Case,
    Headers,
    Route,
    set_field,
)
from tests.e2e.fuzz_helpers import ARM_HOST, VAULT_SUFFIX, Hostile
from tests.e2e.fuzz_identity import Generator

VAULT_API = "2023-07-01"
DATA_API = "7.5"
PROVIDER = "/subscriptions/{sub}/providers/Microsoft.KeyVault"
VAULT = "/subscriptions/{sub}/resourceGroups/fuzz-rg/providers/Microsoft.KeyVault/vaults/{vault}"
ENTRY = {"tenantId": "{tenant}", "objectId": "{sp}", "permissions": {"keys": ["get"], "secrets": []}}


def vault_arm_routes() -> list[Route]:
    """The control plane's routes (family ``arm``)."""
    template = {
        "location": "westeurope",
        "properties": {
            "tenantId": "{tenant}",
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
        },
    }
    typed = (
        ("location", "str"),
        ("tags", "obj"),
        ("properties", "obj"),
        ("properties.tenantId", "str"),
        ("properties.sku", "obj"),
        ("properties.accessPolicies", "list"),
        ("properties.enableRbacAuthorization", "bool"),
        ("properties.softDeleteRetentionInDays", "int"),
        ("properties.networkAcls", "obj"),
        ("properties.publicNetworkAccess", "str"),
    )
    bad_entries = (
        [1],
        [{**ENTRY, "objectId": "not-a-guid"}],
        [{**ENTRY, "permissions": {"keys": ["nope"]}}],
        [{**ENTRY, "tenantId": 5}],
        [ENTRY] * 1100,
    )
    extra: dict[str, tuple[Any, ...]] = {
        "properties.tenantId": ("not-a-guid", "00000000-0000-0000-0000-000000000000", ""),
        # (not ``{}``: a PATCH merges it into the stored sku, as JSON merge patch does)
        "properties.sku": ({"family": "B", "name": "standard"}, {"family": "A", "name": "gold"}),
        "properties.accessPolicies": bad_entries,
        "properties.softDeleteRetentionInDays": (6, 91, -1, 2**63 - 1),
        "properties.networkAcls": (
            {"defaultAction": "Sometimes"},
            {"ipRules": [{"value": "999.1.1.1"}]},
            {"ipRules": 5},
            {"virtualNetworkRules": [{"id": "%00"}]},
        ),
        "properties.publicNetworkAccess": ("Maybe", ""),
    }
    policies = {"properties": {"accessPolicies": [ENTRY]}}
    policies_typed = (("properties", "obj"), ("properties.accessPolicies", "list"))
    name_check = {"name": "{vault}", "type": "Microsoft.KeyVault/vaults"}
    gone = f"{PROVIDER}/locations/westeurope/deletedVaults/{{gone_vault}}"
    return [
        Route(VAULT, VAULT_API, ("GET", "PUT", "PATCH", "DELETE"), template, typed, extra=extra),
        Route(VAULT.rsplit("/", 1)[0], VAULT_API, ("GET",)),
        Route(f"{PROVIDER}/vaults", VAULT_API, ("GET",)),
        Route(f"{VAULT}/accessPolicies/add", VAULT_API, ("PUT",), policies, policies_typed, extra=extra),
        Route(
            f"{PROVIDER}/checkNameAvailability",
            VAULT_API,
            ("POST",),
            name_check,
            (("name", "str"), ("type", "str")),
            extra={"name": ("", "n" * 2000), "type": ("Microsoft.KeyVault/other", "")},
        ),
        Route(f"{PROVIDER}/deletedVaults", VAULT_API, ("GET",)),
        Route(gone, VAULT_API, ("GET",)),
        Route(f"{gone}/purge", VAULT_API, ("POST",), name_at=-2),
    ]


ATTRIBUTES: tuple[Any, ...] = (
    {"enabled": 1},
    {"enabled": "yes"},
    {"nbf": -1},
    {"exp": "x"},
    {"nbf": 20, "exp": 10},
    {"exp": 1e300},
    {"nbf": True},
)
TAGS_TYPED = (("attributes", "obj"), ("tags", "obj"))
BYTES_EXTRA = ("!!!", "A", "A" * 40_000, "%00", "\u00e9")


def _crypto(path: str, template: dict[str, Any], fields: tuple[str, ...]) -> Route:
    """A crypto operation: ``alg`` and the base64url ``fields`` each made wrong in turn (no crypto
    operation writes anything, so its valid bodies may be sent too)."""
    typed = (("alg", "str"), *((f, "str") for f in fields))
    extra = {"alg": ("", "RSA-OAEP-9", "A256GCM", "ES256", "a" * 3000), **{f: BYTES_EXTRA for f in fields}}
    return Route(path, DATA_API, ("POST",), template, typed, extra=extra)


def data_routes() -> list[Route]:
    """The data plane's routes (family ``keyvault``), relative to ``https://{vault}.vault.azure.net``."""
    key, secret = "/keys/fuzz-key", "/secrets/fuzz-secret"
    version = f"{key}/{{key_version}}"
    create = {"kty": "RSA", "key_size": 2048}
    create_typed = (
        ("kty", "str"),
        ("key_size", "int"),
        ("crv", "str"),
        ("key_ops", "list"),
        *TAGS_TYPED,
    )
    create_extra = {
        "kty": ("", "RSA\n", "EC-X", "k" * 3000),
        "key_size": (0, -2048, 1024, 2049, 16384, 2**62),
        "key_ops": (["nope"], ["encrypt"] * 30, [None], [""]),
        "attributes": (*ATTRIBUTES, {"exportable": "yes"}),
    }
    jwk = {k: f"{{jwk_{k}}}" for k in ("n", "e", "d", "p", "q", "dp", "dq", "qi")}
    imported = {"key": {"kty": "RSA", **jwk}}
    import_typed = (("key", "obj"), ("Hsm", "bool"), *TAGS_TYPED)
    import_extra = {
        "key": (
            {"kty": "RSA"},
            {**jwk, "kty": "RSA", "n": "!!"},
            {**jwk, "kty": "RSA", "d": "AQAB"},
            {"kty": "oct", "k": "AAAA"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"},
            {**jwk, "kty": "RSA", "key_ops": ["nope"]},
        ),
        "attributes": ATTRIBUTES,
    }
    update, update_typed = {"attributes": {"enabled": True}}, (("key_ops", "list"), *TAGS_TYPED)
    update_extra = {"key_ops": (["nope"], [1]), "attributes": ATTRIBUTES}
    policy = {
        "lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}],
        "attributes": {"expiryTime": "P2Y"},
    }
    policy_typed = (("lifetimeActions", "list"), ("attributes", "obj"), ("attributes.expiryTime", "str"))
    rotate_after = {"timeAfterCreate": "P1D"}
    policy_extra = {
        "lifetimeActions": (
            [{"action": {"type": "Rotate"}}],
            [{"trigger": rotate_after, "action": {"type": "Rotate"}}],
            [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Bogus"}}],
            [
                {
                    "trigger": {"timeAfterCreate": "P90D", "timeBeforeExpiry": "P30D"},
                    "action": {"type": "Rotate"},
                }
            ],
            [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}] * 3,
            [{"trigger": {"timeAfterCreate": "P" + "9" * 30 + "D"}, "action": {"type": "Rotate"}}],
        ),
        "attributes.expiryTime": ("P", "PT", "P1D", "P9999Y9999M", "x" * 100, "P1DT"),
    }
    secret_set = {"value": "v", "contentType": "text/plain"}
    set_typed = (("value", "str"), ("contentType", "str"), *TAGS_TYPED)
    set_extra = {"value": ("v" * 30_000,), "contentType": ("c" * 300,), "attributes": ATTRIBUTES}
    secret_update = {"contentType": "text/plain"}
    secret_update_typed = (("contentType", "str"), *TAGS_TYPED)
    restore_typed = (("value", "str"),)
    oaep = {"alg": "RSA-OAEP", "value": "AAAA"}
    signed = {"alg": "RS256", "value": "{digest}"}
    rw, r = ("GET", "PATCH"), ("GET",)
    routes = [
        Route("/keys", DATA_API, r),
        Route(f"{key}/create", DATA_API, ("POST",), create, create_typed, extra=create_extra),
        Route(key, DATA_API, rw, update, update_typed, extra=update_extra),
        Route(f"{key}/", DATA_API, rw, update, update_typed, extra=update_extra),
        Route(key, DATA_API, ("PUT",), imported, import_typed, extra=import_extra),
        Route(key, DATA_API, ("DELETE",), name_at=-1),
        Route(version, DATA_API, rw, update, update_typed, extra=update_extra),
        Route(f"{key}/versions", DATA_API, r),
        Route(f"{key}/backup", DATA_API, ("POST",), object_only=True),
        Route(
            "/keys/restore",
            DATA_API,
            ("POST",),
            {"value": "{key_backup}"},
            restore_typed,
            extra={"value": ("{secret_backup}", "!!!", "AAAA", "{key_backup}x")},
        ),
        Route(f"{key}/rotate", DATA_API, ("POST",), name_at=-2),
        Route(f"{key}/rotationpolicy", DATA_API, ("GET", "PUT"), policy, policy_typed, extra=policy_extra),
        _crypto(f"{version}/encrypt", oaep, ("value", "iv", "aad")),
        _crypto(f"{key}/encrypt", oaep, ("value", "aad")),
        _crypto(f"{version}/decrypt", {"alg": "RSA-OAEP", "value": "{ciphertext}"}, ("value", "iv", "tag")),
        _crypto(f"{version}/wrapkey", {"alg": "RSA-OAEP-256", "value": "AAAA"}, ("value",)),
        _crypto(f"{key}//unwrapkey", {"alg": "RSA-OAEP-256", "value": "{wrapped}"}, ("value",)),
        _crypto(f"{version}/sign", signed, ("value",)),
        _crypto(
            f"{version}/verify", {**signed, "digest": "{digest}", "value": "{signature}"}, ("digest", "value")
        ),
        Route("/deletedkeys", DATA_API, r),
        Route("/deletedkeys/fuzz-gone-key", DATA_API, r),
        Route("/deletedkeys/fuzz-gone-key", DATA_API, ("DELETE",), name_at=-1),
        Route("/deletedkeys/fuzz-gone-key/recover", DATA_API, ("POST",), name_at=-2),
        Route("/secrets", DATA_API, r),
        Route(secret, DATA_API, ("PUT",), secret_set, set_typed, extra=set_extra),
        Route(secret, DATA_API, rw, secret_update, secret_update_typed, extra={"attributes": ATTRIBUTES}),
        Route(f"{secret}/{{secret_version}}", DATA_API, rw, secret_update, secret_update_typed),
        Route(secret, DATA_API, ("DELETE",), name_at=-1),
        Route(f"{secret}/versions", DATA_API, r),
        Route(f"{secret}/backup", DATA_API, ("POST",), object_only=True),
        Route(
            "/secrets/restore",
            DATA_API,
            ("POST",),
            {"value": "{secret_backup}"},
            restore_typed,
            extra={"value": ("{key_backup}", "!!!", "", "{secret_backup}x")},
        ),
        Route("/deletedsecrets", DATA_API, r),
        Route("/deletedsecrets/fuzz-gone-secret", DATA_API, r),
        Route("/deletedsecrets/fuzz-gone-secret", DATA_API, ("DELETE",), name_at=-1),
        Route("/deletedsecrets/fuzz-gone-secret/recover", DATA_API, ("POST",), name_at=-2),
        Route(
            "/rng",
            DATA_API,
            ("POST",),
            {"count": 16},
            (("count", "int"),),
            extra={"count": (0, 129, -1, 2**63 - 1)},
        ),
        Route("/certificates", DATA_API, r),
    ]
    return routes


# Key Vault's own query parameters, on top of the resource manager's variants.
DATA_QUERIES = (
    *QUERY_VARIANTS,
    b"api-version={v}&maxresults=0",
    b"api-version={v}&maxresults=-1",
    b"api-version={v}&maxresults=" + b"9" * 50,
    b"api-version={v}&maxresults=%EF%BC%91",
    b"api-version={v}&maxresults=%00",
    b"api-version={v}&$skiptoken=W10",
    b"api-version={v}&$skiptoken=eyJhZnRlciI6NX0",
    b"api-version=" + b"7" * 33,
    b"",
)
# Hosts that are not the vault as made (each a name the proxy serves): a read only.
ODD_VAULTS = ("FUZZ-KV", "fuzz-none", "fuzz-kv-gone", "a" * 25, "fuzz-kv.x", "xn--zz")


class KeyVaultGenerator(Generator):
    """``Generator`` plus Key Vault's routes, control plane and data plane."""

    def all(self) -> Iterator[Hostile]:
        # The data plane first: if a control-plane write were wrongly accepted (say, one that
        # empties the vault's access policies), the data plane's requests would still reach deep.
        yield from self.keyvault()
        yield from super().all()
        for route in vault_arm_routes():
            yield from self.arm(route)
            for method, target, label, body, _ in self.every_wrong(route):
                admin = (b"Authorization", b"Bearer " + self.ids.admin_token.encode())
                headers = (admin, (b"Content-Type", b"application/json"))
                yield Hostile("arm", "https", str(method).encode(), target, ARM_HOST, headers, body, label)

    def every_wrong(self, route: Route) -> Iterator[Case]:
        """Not a sample: each typed field of the template given each of its wrong values in
        turn, with every write method of the route (all of them must be refused)."""
        if route.template is None:
            return
        template = self.ids.fill_doc(route.template)
        target = b"/" + b"/".join(self.segments(route.path)) + b"?api-version=" + route.api_version.encode()
        for method in (m for m in route.methods if m in ("PUT", "PATCH", "POST")):
            for name, kind in route.typed:
                for value in WRONG[kind] + route.extra.get(name, EXTRA.get(name, ())):
                    body = orjson.dumps(self.ids.fill_doc(set_field(template, name, value)))
                    yield method, target, f"{name}={str(value)[:24]!r}", body, ()

    def vault_auth(self) -> Headers:
        """Mostly the admin's Key Vault token (so requests reach deep); sometimes none, garbage,
        or the admin's resource-manager token (a valid token for another audience)."""
        roll = self.rng.random()
        if roll < 0.08:
            return ()
        if roll < 0.16:
            garbage = (b"Bearer x.y.z", b"Bearer", b"PoP abc", b"Bearer " + b"e" * 9000, b"Bearer \x01")
            return ((b"Authorization", self.pick(garbage)),)
        token = self.ids.admin_token if roll < 0.2 else self.ids.vault_token
        return ((b"Authorization", b"Bearer " + token.encode()),)

    def vault_request(
        self,
        method: str | bytes,
        target: bytes,
        label: str,
        body: bytes,
        extra: Headers,
        vault: str = "",
        *,
        deep: bool = False,
    ) -> Hostile:
        """A data-plane request through ``CONNECT``; ``deep``: always with the admin's token."""
        host = (vault or self.ids.values["vault"]) + VAULT_SUFFIX
        auth = (
            ((b"Authorization", b"Bearer " + self.ids.vault_token.encode()),) if deep else self.vault_auth()
        )
        headers = (*auth, (b"Content-Type", b"application/json"), *extra)
        verb = method.encode() if isinstance(method, str) else method
        return Hostile("keyvault", "connect", verb, target, host, headers, body, label)

    def keyvault(self) -> Iterator[Hostile]:
        routes = data_routes()
        for route in routes:
            for method, target, label, body, headers in self.cases(route, DATA_QUERIES):
                yield self.vault_request(method, target, label, body, headers)
            for method, target, label, body, headers in self.every_wrong(route):
                yield self.vault_request(method, target, label, body, headers, deep=True)
        reads = [r for r in routes if "GET" in r.methods]
        for vault in ODD_VAULTS:
            for _ in range(3):
                route = self.pick(reads)
                target = b"/" + b"/".join(self.segments(route.path)) + b"?api-version=" + DATA_API.encode()
                yield self.vault_request("GET", target, f"host {vault[:12]}", b"", (), vault)
        for target in (b"/", b"", b"*", b"//keys", b"/keys/" + b"a" * 1100, b"/%2e%2e/keys", b"/keys?x"):
            yield self.vault_request("GET", target, "target", b"", ())
        for method in ODD_METHODS:
            yield self.vault_request(
                method, b"/keys?api-version=7.5", "method", b"", self.pick(HEADER_VARIANTS)
            )
