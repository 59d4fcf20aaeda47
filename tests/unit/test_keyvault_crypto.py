"""Key Vault key material and cryptographic operations (keyless.providers.keyvault.crypto).

Signatures and ciphertexts are cross-checked with `cryptography` public keys built from the
public JWK, and with azure-keyvault-keys' own local CryptographyClient, as a real client would.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from azure.keyvault.keys import JsonWebKey
from azure.keyvault.keys.crypto import (
    CryptographyClient,
    EncryptionAlgorithm,
    KeyWrapAlgorithm,
    SignatureAlgorithm,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

from keyless.providers.keyvault.crypto import (
    AES_FAILED,
    KTYS,
    OAEP_FAILED,
    PKCS1_FAILED,
    CryptoInputError,
    KeyMaterial,
    KeyOperationError,
    LoadedKey,
    b64url_decode,
    b64url_encode,
    default_key_ops,
    generate,
    import_jwk,
    load,
    require_key_op,
    validate_key_ops,
)

HASH = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
MESSAGE = b"keyless says hello"


def _int(text: str) -> int:
    return int.from_bytes(b64url_decode(text, "t"), "big")


def _rsa_public(material: KeyMaterial) -> rsa.RSAPublicKey:
    jwk = material.public_jwk()
    return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()


def _ec_public(material: KeyMaterial) -> ec.EllipticCurvePublicKey:
    jwk = material.public_jwk()
    curve: dict[str, ec.EllipticCurve] = {
        "P-256": ec.SECP256R1(),
        "P-384": ec.SECP384R1(),
        "P-521": ec.SECP521R1(),
        "P-256K": ec.SECP256K1(),
    }
    return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve[jwk["crv"]]).public_key()


def _sdk_client(material: KeyMaterial, ops: list[str]) -> CryptographyClient:
    """azure-keyvault-keys' local client from the JWK a GET would return (bytes fields, as the SDK
    deserializer produces them)."""
    fields: dict[str, Any] = {k: v for k, v in material.public_jwk().items() if k != "kty"}
    for name in ("n", "e", "x", "y"):
        if name in fields:
            fields[name] = b64url_decode(fields[name], name)
    jwk = JsonWebKey(
        kid="https://v.vault.azure.net/keys/k/" + "0" * 32, kty=material.kty, key_ops=ops, **fields
    )
    return CryptographyClient.from_jwk(jwk)


@pytest.fixture(scope="module")
def rsa2048() -> KeyMaterial:
    return generate("RSA", None, None, None)


@pytest.fixture(scope="module")
def rsa_loaded(rsa2048: KeyMaterial) -> LoadedKey:
    return load(rsa2048)


# ---------------------------------------------------------------------------- base64url


@pytest.mark.parametrize("size", range(0, 7))
def test_b64url_round_trip_with_and_without_padding(size: int) -> None:
    data = os.urandom(size)
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text, "value") == data
    assert b64url_decode(base64.urlsafe_b64encode(data).decode(), "value") == data


@pytest.mark.parametrize(
    "bad", ["ab+c", "ab/c", "a b", "abcde", "ab=c", "a===", "abc==", 12, None, b"abcd", "é"]
)
def test_b64url_rejects_bad_text(bad: Any) -> None:
    with pytest.raises(CryptoInputError, match=r"^Content of 'value' is not base64url\.$"):
        b64url_decode(bad, "value")


def test_b64url_rejects_overlong_text() -> None:
    with pytest.raises(CryptoInputError):
        b64url_decode("A" * 8196, "value")


# ---------------------------------------------------------------------------- generate


def test_generate_defaults(rsa2048: KeyMaterial) -> None:
    assert rsa2048.size == 2048 and rsa2048.public_jwk()["e"] == "AQAB"
    assert set(rsa2048.public_jwk()) == {"kty", "n", "e"}
    ec_key = generate("EC", None, None, None)
    assert ec_key.crv == "P-256" and ec_key.size is None
    assert set(ec_key.public_jwk()) == {"kty", "crv", "x", "y"}
    oct_key = generate("oct-HSM", None, None, None)
    assert oct_key.size == 256 and oct_key.public_jwk() == {"kty": "oct-HSM"}
    assert {"RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM"} == KTYS


@pytest.mark.parametrize(("crv", "width"), [("P-256", 32), ("P-384", 48), ("P-521", 66), ("P-256K", 32)])
def test_generate_ec_curves_fixed_width_coordinates(crv: str, width: int) -> None:
    material = generate("EC-HSM", None, crv, None)
    jwk = material.public_jwk()
    assert jwk["kty"] == "EC-HSM" and jwk["crv"] == crv
    assert len(b64url_decode(jwk["x"], "x")) == width == len(b64url_decode(jwk["y"], "y"))


def test_generate_ignores_public_exponent_as_key_vault_does() -> None:
    material = generate("RSA-HSM", 2048, None, 3)
    assert material.kty == "RSA-HSM" and material.public_jwk()["e"] == "AQAB"


@pytest.mark.parametrize(
    ("args", "message", "inner"),
    [
        (("oct", None, None, None), "Invalid kty value: oct", "KeyTypeNotSupported"),
        (("DSA", None, None, None), "Invalid kty value: DSA", "KeyTypeNotSupported"),
        ((7, None, None, None), "Invalid kty value: ", "KeyTypeNotSupported"),
        (
            ("RSA", 1024, None, None),
            "Unsupported key size (1024). Supported sizes are [2048, 3072, 4096]",
            None,
        ),
        (("RSA", True, None, None), "Property key_size has invalid value", None),
        (("RSA", "2048", None, None), "Property key_size has invalid value", None),
        (("RSA", None, None, "3"), "Property public_exponent has invalid value", None),
        (("RSA", None, "P-256", None), "Invalid crv value: P-256", None),
        (("EC", None, "P-192", None), "Invalid crv value: P-192", None),
        (("EC", 4096, "P-256", None), "Unsupported key size (4096). Supported sizes are [256]", None),
        (
            ("oct-HSM", 512, None, None),
            "Unsupported key size (512). Supported sizes are [128, 192, 256]",
            None,
        ),
    ],
)
def test_generate_rejects(args: tuple[Any, ...], message: str, inner: str | None) -> None:
    with pytest.raises(CryptoInputError) as caught:
        generate(*args)
    assert str(caught.value) == message and caught.value.inner == inner


# ---------------------------------------------------------------------------- RSA


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"])
def test_rsa_encrypt_decrypt_wrap_unwrap(rsa2048: KeyMaterial, rsa_loaded: LoadedKey, alg: str) -> None:
    out = rsa_loaded.encrypt(alg, MESSAGE, None, None)
    assert set(out) == {"value"} and len(out["value"]) == 256
    assert rsa_loaded.decrypt(alg, out["value"], None, None, None) == MESSAGE
    wrapped = rsa_loaded.wrap(alg, b"k" * 32)
    assert rsa_loaded.unwrap(alg, wrapped) == b"k" * 32
    # What the SDK does: encrypt/wrap locally with the public JWK, decrypt/unwrap remotely.
    sdk = _sdk_client(rsa2048, default_key_ops("RSA"))
    local = sdk.encrypt(EncryptionAlgorithm(alg), MESSAGE)
    assert rsa_loaded.decrypt(alg, local.ciphertext, None, None, None) == MESSAGE
    assert rsa_loaded.unwrap(alg, sdk.wrap_key(KeyWrapAlgorithm(alg), b"w" * 16).encrypted_key) == b"w" * 16


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_sign_verify_cross_checked(rsa2048: KeyMaterial, rsa_loaded: LoadedKey, alg: str) -> None:
    digest = HASH[alg[2:]](MESSAGE).digest()
    signature = rsa_loaded.sign(alg, digest)
    assert len(signature) == 256 and rsa_loaded.verify(alg, digest, signature)
    hash_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    scheme: asym_padding.AsymmetricPadding = (
        asym_padding.PSS(asym_padding.MGF1(hash_alg), hash_alg.digest_size)
        if alg.startswith("PS")
        else asym_padding.PKCS1v15()
    )
    _rsa_public(rsa2048).verify(signature, MESSAGE, scheme, hash_alg)  # raises if wrong
    assert _sdk_client(rsa2048, ["verify"]).verify(SignatureAlgorithm(alg), digest, signature).is_valid
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert rsa_loaded.verify(alg, digest, tampered) is False
    assert rsa_loaded.verify(alg, digest, signature[:-1]) is False
    assert rsa_loaded.verify(alg, bytes(len(digest)), signature) is False


@pytest.mark.parametrize(("size", "alg"), [(3072, "RSA-OAEP-256"), (4096, "PS512")])
def test_rsa_larger_sizes(size: int, alg: str) -> None:
    material = generate("RSA", size, None, None)
    key = load(material)
    assert material.size == size
    if alg.startswith("PS"):
        digest = hashlib.sha512(MESSAGE).digest()
        signature = key.sign(alg, digest)
        assert len(signature) == size // 8 and key.verify(alg, digest, signature)
    else:
        value = key.encrypt(alg, MESSAGE, None, None)["value"]
        assert len(value) == size // 8 and key.decrypt(alg, value, None, None, None) == MESSAGE


def test_rsa_decrypt_failures_share_one_message(rsa_loaded: LoadedKey) -> None:
    for alg in ("RSA-OAEP", "RSA-OAEP-256"):
        good = rsa_loaded.encrypt(alg, MESSAGE, None, None)["value"]
        for bad in (bytes([good[0] ^ 1]) + good[1:], good[:-1], good + b"\0", b"\xff" * 256, b""):
            with pytest.raises(CryptoInputError) as caught:
                rsa_loaded.decrypt(alg, bad, None, None, None)
            assert str(caught.value) == OAEP_FAILED
        with pytest.raises(CryptoInputError, match=OAEP_FAILED):
            rsa_loaded.unwrap(alg, good[:-3])
    good = rsa_loaded.encrypt("RSA1_5", MESSAGE, None, None)["value"]
    for bad in (good[:-1], b"\xff" * 256, b""):
        with pytest.raises(CryptoInputError) as caught:
            rsa_loaded.decrypt("RSA1_5", bad, None, None, None)
        assert str(caught.value) == PKCS1_FAILED
    # A tampered RSA1_5 ciphertext either fails with the same text or (OpenSSL implicit rejection)
    # yields unrelated bytes; it never reveals which.
    try:
        result = rsa_loaded.decrypt(
            "RSA1_5", bytes([good[5] ^ 1]).join([good[:5], good[6:]]), None, None, None
        )
        assert result != MESSAGE
    except CryptoInputError as exc:
        assert str(exc) == PKCS1_FAILED


@pytest.mark.parametrize(("alg", "limit"), [("RSA-OAEP", 214), ("RSA-OAEP-256", 190), ("RSA1_5", 245)])
def test_rsa_plaintext_bound(rsa_loaded: LoadedKey, alg: str, limit: int) -> None:
    assert rsa_loaded.decrypt(
        alg, rsa_loaded.encrypt(alg, b"x" * limit, None, None)["value"], None, None, None
    )
    with pytest.raises(CryptoInputError, match=f"at most {limit} bytes"):
        rsa_loaded.encrypt(alg, b"x" * (limit + 1), None, None)
    with pytest.raises(CryptoInputError, match=f"at most {limit} bytes"):
        rsa_loaded.wrap(alg, b"x" * (limit + 1))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda k: k.sign("ES256", bytes(32)), "Algorithm 'ES256' is not supported for key type 'RSA'."),
        (
            lambda k: k.encrypt("A256GCM", b"x", None, None),
            "Algorithm 'A256GCM' is not supported for key type 'RSA'.",
        ),
        (lambda k: k.wrap("A256KW", bytes(32)), "Algorithm 'A256KW' is not supported for key type 'RSA'."),
        (
            lambda k: k.sign("RSA-OAEP", bytes(32)),
            "Algorithm 'RSA-OAEP' is not supported for key type 'RSA'.",
        ),
        (
            lambda k: k.encrypt("RS256", b"x", None, None),
            "Algorithm 'RS256' is not supported for key type 'RSA'.",
        ),
        (lambda k: k.decrypt("nope", b"x", None, None, None), "Property alg has invalid value"),
        (
            lambda k: k.sign("RS256", bytes(20)),
            "Invalid digest length for algorithm RS256: expected 32 bytes, got 20.",
        ),
        (lambda k: k.verify("PS384", bytes(32), b"s"), "Invalid digest length for algorithm PS384"),
    ],
)
def test_rsa_bad_algorithm_and_digest(rsa_loaded: LoadedKey, call: Any, message: str) -> None:
    with pytest.raises(CryptoInputError) as caught:
        call(rsa_loaded)
    assert str(caught.value).startswith(message)


# ---------------------------------------------------------------------------- EC


@pytest.mark.parametrize(
    ("crv", "alg", "width"),
    [("P-256", "ES256", 32), ("P-384", "ES384", 48), ("P-521", "ES512", 66), ("P-256K", "ES256K", 32)],
)
def test_ec_sign_verify_raw_signatures(crv: str, alg: str, width: int) -> None:
    material = generate("EC", None, crv, None)
    key = load(material)
    digest = HASH[alg[2:5]](MESSAGE).digest()
    signature = key.sign(alg, digest)
    assert len(signature) == 2 * width and key.verify(alg, digest, signature)
    r, s = int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")
    hash_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:5]]
    _ec_public(material).verify(utils.encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hash_alg))
    if crv != "P-256K":  # the SDK's local provider has no secp256k1
        assert (
            _sdk_client(material, ["sign", "verify"])
            .verify(SignatureAlgorithm(alg), digest, signature)
            .is_valid
        )
    assert key.verify(alg, digest, signature[:-1]) is False
    assert key.verify(alg, digest, bytes(2 * width)) is False
    with pytest.raises(InvalidSignature):
        _ec_public(material).verify(utils.encode_dss_signature(r, s), b"other", ec.ECDSA(hash_alg))


def test_ec_bad_inputs() -> None:
    key = load(generate("EC", None, "P-384", None))
    with pytest.raises(CryptoInputError) as caught:
        key.sign("ES256", bytes(32))
    assert str(caught.value) == (
        "Key and signing algorithm are incompatible. Key uses curve 'P-384', and algorithm 'ES256' can only be "
        "used with curve 'P-256'."
    )
    with pytest.raises(CryptoInputError, match="expected 48 bytes, got 32"):
        key.sign("ES384", bytes(32))
    for call in (
        lambda: key.sign("RS256", bytes(32)),
        lambda: key.encrypt("RSA-OAEP", b"x", None, None),
        lambda: key.decrypt("RSA-OAEP", b"x", None, None, None),
        lambda: key.wrap("RSA-OAEP", bytes(32)),
        lambda: key.unwrap("A256KW", bytes(40)),
    ):
        with pytest.raises(CryptoInputError, match="is not supported for key type 'EC'"):
            call()


# ---------------------------------------------------------------------------- oct


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_oct_round_trips(bits: int) -> None:
    material = generate("oct-HSM", bits, None, None)
    key = load(material)
    n = str(bits)
    wrapped = key.wrap(f"A{n}KW", b"k" * 32)
    assert aes_key_unwrap(material.private, wrapped) == b"k" * 32  # RFC 3394 interop
    assert key.unwrap(f"A{n}KW", wrapped) == b"k" * 32
    out = key.encrypt(f"A{n}GCM", MESSAGE, None, b"aad")
    assert len(out["iv"]) == 12 and len(out["tag"]) == 16 and len(out["value"]) == len(MESSAGE)
    assert key.decrypt(f"A{n}GCM", out["value"], out["iv"], b"aad", out["tag"]) == MESSAGE
    iv = os.urandom(16)
    out = key.encrypt(f"A{n}CBCPAD", MESSAGE, iv, None)
    assert out["iv"] == iv and len(out["value"]) == 32
    assert key.decrypt(f"A{n}CBCPAD", out["value"], iv, None, None) == MESSAGE
    out = key.encrypt(f"A{n}CBC", b"b" * 32, iv, None)
    assert len(out["value"]) == 32 and key.decrypt(f"A{n}CBC", out["value"], iv, None, None) == b"b" * 32
    generated = key.encrypt(f"A{n}CBCPAD", MESSAGE, None, None)  # no iv: one is made
    assert key.decrypt(f"A{n}CBCPAD", generated["value"], generated["iv"], None, None) == MESSAGE


def test_oct_failures() -> None:
    key = load(generate("oct-HSM", 256, None, None))
    out = key.encrypt("A256GCM", MESSAGE, None, None)
    for value, iv, aad, tag in (
        (bytes([out["value"][0] ^ 1]) + out["value"][1:], out["iv"], None, out["tag"]),
        (out["value"], out["iv"], b"x", out["tag"]),
        (out["value"], out["iv"], None, out["tag"][:-1] + bytes([out["tag"][-1] ^ 1])),
        (out["value"], out["iv"], None, out["tag"][:12]),
    ):
        with pytest.raises(CryptoInputError) as caught:
            key.decrypt("A256GCM", value, iv, aad, tag)
        assert str(caught.value) == AES_FAILED
    wrapped = key.wrap("A256KW", bytes(32))
    for bad in (bytes([wrapped[0] ^ 1]) + wrapped[1:], wrapped[:-8], wrapped[:-1], b""):
        with pytest.raises(CryptoInputError) as caught:
            key.unwrap("A256KW", bad)
        assert str(caught.value) == AES_FAILED
    iv = bytes(16)
    cbc = key.encrypt("A256CBC", bytes(16), iv, None)["value"]  # decrypts to a zero last byte: bad padding
    for bad in (cbc, cbc[:-1], b""):
        with pytest.raises(CryptoInputError) as caught:
            key.decrypt("A256CBCPAD", bad, iv, None, None)
        assert str(caught.value) == AES_FAILED
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: key.encrypt("A128GCM", b"x", None, None), "Algorithm 'A128GCM' requires a 128-bit key"),
        (lambda: key.wrap("A192KW", bytes(32)), "Algorithm 'A192KW' requires a 192-bit key"),
        (lambda: key.encrypt("A256GCM", b"x", bytes(12), None), "Property iv is not allowed"),
        (lambda: key.encrypt("A256GCM", bytes(64 * 1024 + 1), None, None), "Property value is too large"),
        (lambda: key.encrypt("A256CBC", b"x" * 17, iv, None), "multiple of 16 bytes"),
        (lambda: key.encrypt("A256CBCPAD", b"x", bytes(8), None), "Property iv must be 16 bytes long."),
        (lambda: key.encrypt("A256CBCPAD", b"x", iv, b"aad"), "Property aad is not allowed"),
        (lambda: key.decrypt("A256GCM", b"x", None, None, None), "Properties iv and tag are required"),
        (
            lambda: key.decrypt("A256GCM", b"x", bytes(16), None, bytes(16)),
            "Property iv must be 12 bytes long.",
        ),
        (lambda: key.decrypt("A256CBC", bytes(16), None, None, None), "Property iv is required"),
        (lambda: key.wrap("A256KW", bytes(12)), "multiple of 8 bytes and at least 16"),
        (lambda: key.sign("ES256", bytes(32)), "Algorithm 'ES256' is not supported for key type 'oct-HSM'."),
        (lambda: key.encrypt("RSA-OAEP", b"x", None, None), "Algorithm 'RSA-OAEP' is not supported"),
        (lambda: key.wrap("A256GCM", bytes(32)), "Algorithm 'A256GCM' is not supported"),
    ]
    for call, message in cases:
        with pytest.raises(CryptoInputError) as caught:
            call()
        assert message in str(caught.value), message


# ---------------------------------------------------------------------------- import


def _b64int(value: int, width: int | None = None) -> str:
    return b64url_encode(value.to_bytes(width or (value.bit_length() + 7) // 8, "big"))


def _rsa_jwk(key: rsa.RSAPrivateKey, crt: bool = True) -> dict[str, Any]:
    numbers = key.private_numbers()
    jwk = {
        "kty": "RSA",
        "n": _b64int(numbers.public_numbers.n),
        "e": _b64int(numbers.public_numbers.e),
        "d": _b64int(numbers.d),
        "p": _b64int(numbers.p),
        "q": _b64int(numbers.q),
    }
    if crt:
        jwk.update(dp=_b64int(numbers.dmp1), dq=_b64int(numbers.dmq1), qi=_b64int(numbers.iqmp))
    return jwk


@pytest.fixture(scope="module")
def client_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_import_rsa_keys_generated_by_cryptography(client_rsa: rsa.RSAPrivateKey) -> None:
    for crt, hsm, expected in ((True, None, "RSA"), (False, True, "RSA-HSM"), (True, False, "RSA")):
        material = import_jwk(_rsa_jwk(client_rsa, crt), hsm)
        assert material.kty == expected and material.size == 2048
        digest = hashlib.sha256(MESSAGE).digest()
        signature = load(material).sign("RS256", digest)
        client_rsa.public_key().verify(signature, MESSAGE, asym_padding.PKCS1v15(), hashes.SHA256())
    assert import_jwk({**_rsa_jwk(client_rsa), "kty": "RSA-HSM"}, None).kty == "RSA-HSM"
    restored = serialization.load_der_private_key(import_jwk(_rsa_jwk(client_rsa), None).private, None)
    assert isinstance(restored, rsa.RSAPrivateKey)
    assert restored.private_numbers() == client_rsa.private_numbers()


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521", "P-256K"])
def test_import_ec_keys_generated_by_cryptography(crv: str) -> None:
    curve, width = {
        "P-256": (ec.SECP256R1, 32),
        "P-384": (ec.SECP384R1, 48),
        "P-521": (ec.SECP521R1, 66),
        "P-256K": (ec.SECP256K1, 32),
    }[crv]
    key = ec.generate_private_key(curve())
    numbers = key.private_numbers()
    jwk = {
        "kty": "EC",
        "crv": crv,
        "x": _b64int(numbers.public_numbers.x, width),
        "y": _b64int(numbers.public_numbers.y, width),
        "d": _b64int(numbers.private_value, width),
    }
    material = import_jwk(jwk, True)
    assert material.kty == "EC-HSM" and material.crv == crv
    assert material.public_jwk() == {"kty": "EC-HSM", "crv": crv, "x": jwk["x"], "y": jwk["y"]}


def test_import_oct() -> None:
    k = os.urandom(24)
    material = import_jwk({"kty": "oct", "k": b64url_encode(k)}, True)
    assert material.kty == "oct-HSM" and material.size == 192 and material.private == k
    assert import_jwk({"kty": "oct-HSM", "k": b64url_encode(k)}, None).kty == "oct-HSM"


def _import_error(jwk: Any, hsm: Any = None) -> str:
    with pytest.raises(CryptoInputError) as caught:
        import_jwk(jwk, hsm)
    return str(caught.value)


def test_import_rejects_mismatched_or_malformed(client_rsa: rsa.RSAPrivateKey) -> None:
    good = _rsa_jwk(client_rsa)
    other = _rsa_jwk(rsa.generate_private_key(65537, 2048))
    mismatch = "The private key does not match the public key."
    assert _import_error({**good, "d": other["d"]}) == mismatch
    assert _import_error({**good, "p": other["p"]}) == mismatch
    assert _import_error({**good, "dp": other["dp"]}) == mismatch
    assert _import_error({**good, "qi": b64url_encode(b"\x01")}) == mismatch
    assert _import_error({**good, "e": _b64int(65539)}) == mismatch
    assert _import_error({**good, "e": _b64int(65536)}) == "Property key.e has invalid value"
    assert _import_error({**good, "e": b64url_encode(b"\x01" * 5)}) == "Property key.e has invalid value"
    assert _import_error({k: v for k, v in good.items() if k != "q"}) == "Property key.q is required."
    assert _import_error({**good, "n": "A" * 20000}) == "Content of 'key.n' is not base64url."
    assert (
        _import_error({**good, "n": b64url_encode(b"\x80" + bytes(512))})
        == "Property key.n has invalid value"
    )
    assert _import_error({**good, "n": 5}) == "Content of 'key.n' is not base64url."
    small = _rsa_jwk(rsa.generate_private_key(65537, 1024))  # noqa: S505 - the size being refused
    assert _import_error(small).startswith("Unsupported key size (1024).")
    assert _import_error("not a dict") == "Property key has invalid value"
    assert _import_error({**good, "kty": "RSA1"}) == "Invalid kty value: RSA1"
    assert _import_error({"kty": "oct", "k": b64url_encode(bytes(32))}) == "Invalid kty value: oct"
    assert _import_error({"kty": "oct-HSM", "k": b64url_encode(bytes(20))}).startswith(
        "Unsupported key size (160)"
    )
    assert _import_error({**good, "key_hsm": "abc"}).startswith("Importing HSM-protected key blobs")
    assert _import_error(good, "yes") == "Property Hsm has invalid value"
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    ec_jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64int(key.public_numbers.x, 32),
        "y": _b64int(key.public_numbers.y, 32),
        "d": _b64int(key.private_value, 32),
    }
    assert _import_error({**ec_jwk, "x": _b64int(key.public_numbers.x ^ 1, 32)}) == mismatch
    assert _import_error({**ec_jwk, "crv": "P-384"}) == mismatch
    assert _import_error({**ec_jwk, "crv": "X25519"}) == "Invalid crv value: X25519"
    assert _import_error({**ec_jwk, "d": b64url_encode(bytes(33))}) == "Property key.d has invalid value"
    assert _import_error({**ec_jwk, "d": b64url_encode(b"\xff" * 32)}) == "Property key.d has invalid value"


# ---------------------------------------------------------------------------- key_ops


def test_key_ops_rules() -> None:
    assert default_key_ops("RSA-HSM") == ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    assert default_key_ops("EC") == ["sign", "verify"]
    assert default_key_ops("oct-HSM") == ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
    assert validate_key_ops("RSA", ["wrapKey", "unwrapKey"]) == ["wrapKey", "unwrapKey"]
    with pytest.raises(CryptoInputError) as caught:
        validate_key_ops("EC", ["sign", "wrapKey", "unwrapKey"])
    assert str(caught.value) == (
        'Unsupported key operation(s): "wrapKey", "unwrapKey". Supported values are "sign", "verify".'
    )
    for bad in ("sign", ["sign", 3], ["sign"] * 17, None):
        with pytest.raises(CryptoInputError, match="Property key_ops has invalid value"):
            validate_key_ops("RSA", bad)
    require_key_op(["wrapKey"], "wrapKey")
    with pytest.raises(KeyOperationError) as denied:
        require_key_op(["wrapKey"], "decrypt")
    assert denied.value.operation == "decrypt"
    assert str(denied.value) == "Operation decrypt is not permitted on this key."
