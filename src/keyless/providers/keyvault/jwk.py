"""Key Vault key material: generation, JWK import, public JWK export, key_ops rules (pure, no I/O).

Wire facts (sources in each docstring; see also shared/reference/keyvault.md §1):

- JWK binary fields are base64url without padding (7.5 keys.json ``JsonWebKey``).
- kty values: RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM; curves P-256, P-384, P-521, P-256K.
- A plain Key Vault refuses ``oct``: ``400 BadParameter "Invalid kty value: oct"`` with innererror
  ``KeyTypeNotSupported`` (Azure/azure-sdk-for-net#13437, Azure/azure-sdk-for-js#26212). ``oct-HSM``
  (a Managed HSM type) is accepted here by design.
- Unsupported sizes: ``"Unsupported key size (4096). Supported sizes are [256, 384, 521]"``
  (MicrosoftDocs/azure-docs#88477); the RSA and oct lists follow the same pattern.
- ``public_exponent`` is honoured only by Managed HSM; Key Vault ignores it and makes e = 65537
  (Azure/azure-sdk-for-go#19624, Azure/azure-rest-api-specs#21762).
- Default key_ops: EC ``["sign","verify"]`` (azure-sdk-for-js recording
  ``cryptographyclient_all_decrypts_happen_remotely_ec_keys/…es512.js``); RSA
  ``["encrypt","decrypt","sign","verify","wrapKey","unwrapKey"]`` (7.5 CreateKey example).
- Bad key_ops: ``Unsupported key operation(s): "wrapKey", "unwrapKey". Supported values are "sign",
  "verify".`` (Azure/AzureKeyVault#22); missing op on use: ``403 Forbidden "Operation decrypt is not
  permitted on this key."`` innererror ``KeyOperationForbidden`` (Azure/azure-sdk-for-net#11518).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class CryptoInputError(Exception):
    """Bad input; the data plane answers ``400 BadParameter`` with ``str(exc)`` as the message.

    ``inner`` is the innererror code when Key Vault sends one (e.g. ``KeyTypeNotSupported``).
    """

    def __init__(self, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.inner = inner


class KeyOperationError(Exception):
    """The key's ``key_ops`` lack ``operation``. Key Vault: 403 Forbidden, innererror
    ``KeyOperationForbidden``, message ``str(exc)`` (azure-sdk-for-net#11518)."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"Operation {operation} is not permitted on this key.")
        self.operation = operation


KTYS = frozenset({"RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM"})
KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export")
RSA_SIZES = (2048, 3072, 4096)
OCT_SIZES = (128, 192, 256)
DEFAULT_EXPONENT = 65537

# JWK crv -> (cryptography curve, field size in bytes, bits Key Vault reports as key size).
CURVES: dict[str, tuple[type[ec.EllipticCurve], int, int]] = {
    "P-256": (ec.SECP256R1, 32, 256),
    "P-384": (ec.SECP384R1, 48, 384),
    "P-521": (ec.SECP521R1, 66, 521),
    "P-256K": (ec.SECP256K1, 32, 256),
}
_CURVE_BY_NAME: dict[str, str] = {cls().name: crv for crv, (cls, _, _) in CURVES.items()}

# Upper bound on any base64url field we decode: a 4096-bit modulus is 683 characters.
_MAX_B64_CHARS = 8192
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2), as Key Vault writes every binary field."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: Any, field: str, max_chars: int = _MAX_B64_CHARS) -> bytes:
    """Decode a base64url field, with or without padding.

    Raises ``CryptoInputError("Content of '{field}' is not base64url.")`` for a non-string, a
    character outside the url-safe alphabet, an impossible length or more than ``max_chars``
    characters (the text is from a captured Key Vault answer, hashicorp-style log in
    bruj0/vault-recovery-key#20). Standard-alphabet ``+``/``/`` is refused.
    """
    bad = CryptoInputError(f"Content of '{field}' is not base64url.")
    if not isinstance(text, str) or len(text) > max_chars or not _B64URL.fullmatch(text):
        raise bad
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(text) != len(body) and len(text) % 4 != 0):
        raise bad
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise bad from exc


def _family(kty: str) -> str:
    """``RSA-HSM`` -> ``RSA``; ``oct-HSM`` -> ``oct``."""
    return kty.removesuffix("-HSM")


def _unsupported_size(size: object, sizes: Sequence[int]) -> CryptoInputError:
    listed = ", ".join(str(s) for s in sizes)
    return CryptoInputError(f"Unsupported key size ({size}). Supported sizes are [{listed}]")


def _bad_kty(kty: object) -> CryptoInputError:
    return CryptoInputError(f"Invalid kty value: {kty}", "KeyTypeNotSupported")


def _check_kty(kty: object) -> str:
    if not isinstance(kty, str) or kty not in KTYS:
        raise _bad_kty(kty if isinstance(kty, str) else "")
    if kty == "oct":  # a vault (not a Managed HSM) has no software AES keys
        raise _bad_kty(kty)
    return kty


@dataclass(frozen=True)
class KeyMaterial:
    """One key version's material.

    ``kty`` is the wire kty (``RSA-HSM`` etc.); ``private`` is what the lead seals: DER PKCS#8 for
    RSA and EC, the raw AES key bytes for oct.
    """

    kty: str
    private: bytes

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None:
        """The loaded private key (None for oct). Our own DER, so the slow RSA check is skipped."""
        if _family(self.kty) == "oct":
            return None
        key = serialization.load_der_private_key(self.private, None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("sealed key material is neither RSA nor EC")
        return key

    def public_jwk(self) -> dict[str, Any]:
        """Public JWK: RSA ``{kty,n,e}``; EC ``{kty,crv,x,y}``; oct ``{kty}`` (never ``k``)."""
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            pub = key.public_key().public_numbers()
            return {
                "kty": self.kty,
                "n": b64url_encode(_int_bytes(pub.n)),
                "e": b64url_encode(_int_bytes(pub.e)),
            }
        if isinstance(key, ec.EllipticCurvePrivateKey):
            crv = _CURVE_BY_NAME[key.curve.name]
            width = CURVES[crv][1]
            point = key.public_key().public_numbers()
            return {
                "kty": self.kty,
                "crv": crv,
                "x": b64url_encode(point.x.to_bytes(width, "big")),
                "y": b64url_encode(point.y.to_bytes(width, "big")),
            }
        return {"kty": self.kty}

    @property
    def size(self) -> int | None:
        """RSA modulus bits, oct key bits, None for EC."""
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.key_size
        if key is None:
            return len(self.private) * 8
        return None

    @property
    def crv(self) -> str | None:
        """The JWK curve name of an EC key, else None."""
        key = self.private_key
        return _CURVE_BY_NAME[key.curve.name] if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _check_int(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CryptoInputError(f"Property {field} has invalid value")
    return value


def generate(kty: str, key_size: int | None, crv: str | None, public_exponent: int | None) -> KeyMaterial:
    """Create new key material for ``POST /keys/{name}/create``.

    RSA/RSA-HSM: 2048 (default), 3072, 4096 bits; e is always 65537 (Key Vault ignores
    ``public_exponent``; see module docstring). EC/EC-HSM: P-256 (default), P-384, P-521, P-256K;
    a ``key_size`` that does not match the curve is refused. oct-HSM: 128, 192, 256 (default) bits;
    ``oct`` is refused as a vault does. CPU-bound (RSA-4096 about a second): call it in a thread.
    Raises CryptoInputError with Key Vault's wording.
    """
    kty = _check_kty(kty)
    key_size = _check_int(key_size, "key_size")
    _check_int(public_exponent, "public_exponent")
    family = _family(kty)
    if family == "RSA":
        if crv is not None:
            raise CryptoInputError(f"Invalid crv value: {crv}")
        bits = 2048 if key_size is None else key_size
        if bits not in RSA_SIZES:
            raise _unsupported_size(bits, RSA_SIZES)
        return KeyMaterial(kty, _pkcs8(rsa.generate_private_key(DEFAULT_EXPONENT, bits)))
    if family == "EC":
        name = "P-256" if crv is None else crv
        if not isinstance(name, str) or name not in CURVES:
            raise CryptoInputError(f"Invalid crv value: {name}")
        curve, _, bits = CURVES[name]
        if key_size is not None and key_size != bits:
            raise _unsupported_size(key_size, (bits,))
        return KeyMaterial(kty, _pkcs8(ec.generate_private_key(curve())))
    if crv is not None:
        raise CryptoInputError(f"Invalid crv value: {crv}")
    bits = 256 if key_size is None else key_size
    if bits not in OCT_SIZES:
        raise _unsupported_size(bits, OCT_SIZES)
    return KeyMaterial(kty, os.urandom(bits // 8))


def _field(jwk: dict[str, Any], name: str, max_bytes: int, required: bool = True) -> bytes | None:
    """Decode JWK field ``name``; its text is bounded (``max_bytes``) before any decoding."""
    value = jwk.get(name)
    if value is None:
        if required:
            raise CryptoInputError(f"Property key.{name} is required.")
        return None
    data = b64url_decode(value, f"key.{name}", max_chars=(max_bytes * 4 + 2) // 3 + 2)
    if not data or len(data) > max_bytes:
        raise CryptoInputError(f"Property key.{name} has invalid value")
    return data


def _import_kty(jwk: dict[str, Any], hsm: bool | None) -> str:
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in KTYS:
        raise _bad_kty(kty if isinstance(kty, str) else "")
    if hsm is not None and not isinstance(hsm, bool):
        raise CryptoInputError("Property Hsm has invalid value")
    if jwk.get("key_hsm") is not None:
        raise CryptoInputError("Importing HSM-protected key blobs (key_hsm) is not supported.")
    family = _family(kty)
    wanted = f"{family}-HSM" if hsm or kty.endswith("-HSM") else family
    return _check_kty(wanted)


def import_jwk(jwk: Any, hsm: bool | None) -> KeyMaterial:
    """Validate and load the ``key`` JWK of ``PUT /keys/{name}`` (private parts required).

    RSA: n, e, d, p, q (dp, dq, qi optional; checked if sent). n must be 2048, 3072 or 4096 bits,
    e odd, 3 <= e < 2^32. EC: crv, x, y, d; the point must be on the curve and match d. oct: k of
    16, 24 or 32 bytes (only as oct-HSM). ``hsm=True`` or an ``-HSM`` kty gives the -HSM kty.
    Field texts are length-checked before decoding. Raises CryptoInputError. CPU-bound (RSA key
    check, tens of ms for 4096 bits): call it in a thread.
    """
    if not isinstance(jwk, dict):
        raise CryptoInputError("Property key has invalid value")
    kty = _import_kty(jwk, hsm)
    family = _family(kty)
    if family == "RSA":
        return KeyMaterial(kty, _pkcs8(_import_rsa(jwk)))
    if family == "EC":
        return KeyMaterial(kty, _pkcs8(_import_ec(jwk)))
    k = _field(jwk, "k", 32)
    assert k is not None
    if len(k) * 8 not in OCT_SIZES:
        raise _unsupported_size(len(k) * 8, OCT_SIZES)
    return KeyMaterial(kty, k)


def _as_int(data: bytes | None) -> int:
    return int.from_bytes(data or b"", "big")


def _import_rsa(jwk: dict[str, Any]) -> rsa.RSAPrivateKey:
    n = _as_int(_field(jwk, "n", 512))
    e = _as_int(_field(jwk, "e", 4))
    d = _as_int(_field(jwk, "d", 512))
    p = _as_int(_field(jwk, "p", 256))
    q = _as_int(_field(jwk, "q", 256))
    if n.bit_length() not in RSA_SIZES:
        raise _unsupported_size(n.bit_length(), RSA_SIZES)
    if e < 3 or e % 2 == 0:
        raise CryptoInputError("Property key.e has invalid value")
    if p * q != n or not 1 < d < n:
        raise CryptoInputError("The private key does not match the public key.")
    dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    for name, expected in (("dp", dp), ("dq", dq), ("qi", qi)):
        sent = _field(jwk, name, 256, required=False)
        if sent is not None and _as_int(sent) != expected:
            raise CryptoInputError("The private key does not match the public key.")
    numbers = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n))
    try:
        key = numbers.private_key()  # OpenSSL's RSA key check (primes, d*e = 1 mod lambda)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CryptoInputError("The private key does not match the public key.") from exc
    # A round trip catches a d that the structural checks accept but that does not invert e.
    if pow(pow(2, e, n), d, n) != 2:
        raise CryptoInputError("The private key does not match the public key.")
    return key


def _import_ec(jwk: dict[str, Any]) -> ec.EllipticCurvePrivateKey:
    crv = jwk.get("crv")
    if not isinstance(crv, str) or crv not in CURVES:
        raise CryptoInputError(f"Invalid crv value: {crv if isinstance(crv, str) else ''}")
    curve, width, _ = CURVES[crv]
    x = _as_int(_field(jwk, "x", width))
    y = _as_int(_field(jwk, "y", width))
    d = _as_int(_field(jwk, "d", width))
    try:
        key = ec.derive_private_key(d, curve())
    except ValueError as exc:
        raise CryptoInputError("Property key.d has invalid value") from exc
    point = key.public_key().public_numbers()
    if (point.x, point.y) != (x, y):
        raise CryptoInputError("The private key does not match the public key.")
    return key


def default_key_ops(kty: str) -> list[str]:
    """key_ops Key Vault gives a key created or imported without ``key_ops`` (sources in the
    module docstring; oct follows the brief, unverified against a recording)."""
    family = _family(kty)
    if family == "EC":
        return ["sign", "verify"]
    if family == "oct":
        return ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
    return ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]


def allowed_key_ops(kty: str) -> list[str]:
    """Every key_op a key of this type may carry (``import``/``export`` are Managed HSM ops)."""
    if _family(kty) == "EC":
        return ["sign", "verify"]
    return [*default_key_ops(kty), "import", "export"]


def validate_key_ops(kty: str, key_ops: Any) -> list[str]:
    """Check ``key_ops`` from create/import/update; returns it (a list of str).

    Raises CryptoInputError ``Unsupported key operation(s): "wrapKey", "unwrapKey". Supported values
    are "sign", "verify".`` (Azure/AzureKeyVault#22) for ops the kty cannot do, or
    ``Property key_ops has invalid value`` for a non-list, non-str item or more than 16 items.
    """
    if not isinstance(key_ops, list) or len(key_ops) > 16 or not all(isinstance(op, str) for op in key_ops):
        raise CryptoInputError("Property key_ops has invalid value")
    allowed = allowed_key_ops(kty)
    bad = [op for op in key_ops if op not in allowed]
    if bad:
        listed = ", ".join(f'"{op}"' for op in bad)
        supported = ", ".join(f'"{op}"' for op in allowed)
        raise CryptoInputError(f"Unsupported key operation(s): {listed}. Supported values are {supported}.")
    return list(key_ops)


def require_key_op(key_ops: Sequence[str], operation: str) -> None:
    """Raise KeyOperationError unless ``operation`` (wire spelling, e.g. ``wrapKey``) is allowed."""
    if operation not in key_ops:
        raise KeyOperationError(operation)
