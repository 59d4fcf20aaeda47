"""Key Vault cryptographic operations on loaded key material (pure domain: no HTTP, no DB).

The data plane decodes the request (``alg``, base64url ``value``/``iv``/``aad``/``tag``), checks
``key_ops`` (``require_key_op``) and calls a ``LoadedKey`` built once by ``load`` and cached.
Material, JWK import/export and key_ops rules live in ``jwk.py`` and are re-exported here.

Algorithm facts (7.5 keys.json enums; learn.microsoft.com/azure/key-vault/keys/about-keys-details):

- RSA encrypt/decrypt/wrapKey/unwrapKey: RSA-OAEP (SHA-1, MGF1-SHA-1), RSA-OAEP-256 (SHA-256,
  MGF1-SHA-256), RSA1_5 (PKCS#1 v1.5).
- RSA sign/verify over a caller-computed digest: RS256/384/512 (PKCS#1 v1.5; the DigestInfo is
  built by the service) and PS256/384/512 (PSS, MGF1 with the same hash, salt length = digest
  length, as azure-keyvault-keys' local verifier ``_internal/algorithms/rsa_signing.py`` does).
- EC: ES256 (P-256), ES384 (P-384), ES512 (P-521), ES256K (P-256K); signatures are raw r||s of
  fixed width (JWA RFC 7518 §3.4), as the SDK recordings show (132 bytes for ES512).
- oct (Managed HSM): A128KW/A192KW/A256KW (RFC 3394) wrap/unwrap; A*GCM, A*CBC (no padding) and
  A*CBCPAD (PKCS#7) encrypt/decrypt. The algorithm size must equal the key size (the SDK's local
  ``symmetric_key.raise_if_incorrect_key_size``).
- GCM: the service makes the IV. azure-keyvault-keys refuses a caller IV for GCM encrypt
  ("iv should only be provided with AES-CBC algorithms") and documents "for remote cryptography,
  Key Vault will generate an IV"; so a caller IV for GCM encrypt is refused here (no nonce reuse).
  A 12-byte IV and 16-byte tag come back. CBC needs the caller's 16-byte IV (one is generated if
  absent).

Errors (CryptoInputError -> 400 BadParameter):

- OAEP failure: "Error occurred while decoding OAEP padding." (Azure/azure-sdk-for-net#18947,
  MicrosoftDocs/azure-docs#39976). Every RSA-OAEP decrypt/unwrap failure (length, range, padding)
  gives that one text; every RSA1_5 failure gives one text of its own. OpenSSL's implicit
  rejection already turns an RSA1_5 padding failure into a random result, so there is no oracle.
- EC curve/algorithm mismatch: "Key and signing algorithm are incompatible. Key … uses curve
  'SECP256K1', and algorithm 'ES256K' can only be used with curve 'P-256K'."
  (Azure/azure-sdk-for-java#6262); the kid is not known here, so it is left out.
- Algorithm of another key type, digest length, plaintext length, AES tag and KW integrity
  failures: no captured text was found; the messages below are our own plain sentences.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from .jwk import (
    CURVES,
    KTYS,
    CryptoInputError,
    KeyMaterial,
    KeyOperationError,
    allowed_key_ops,
    b64url_decode,
    b64url_encode,
    default_key_ops,
    generate,
    import_jwk,
    require_key_op,
    validate_key_ops,
)

__all__ = [
    "KTYS",
    "CryptoInputError",
    "KeyMaterial",
    "KeyOperationError",
    "LoadedKey",
    "allowed_key_ops",
    "b64url_decode",
    "b64url_encode",
    "default_key_ops",
    "generate",
    "import_jwk",
    "load",
    "require_key_op",
    "validate_key_ops",
]

MAX_AES_VALUE = 64 * 1024  # bytes of plaintext, ciphertext or aad for oct keys

OAEP_FAILED = "Error occurred while decoding OAEP padding."
PKCS1_FAILED = "Error occurred while decoding PKCS#1 v1.5 padding."
AES_FAILED = "Error occurred while decrypting: the ciphertext or its authentication data is invalid."

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}
RSA_ENCRYPTION = ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5")
RSA_SIGNATURE = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_SIGNATURE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "P-256K"}
AES_KW = {"A128KW": 16, "A192KW": 24, "A256KW": 32}
AES_GCM = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32}
AES_CBC = {"A128CBC": 16, "A192CBC": 24, "A256CBC": 32}
AES_CBCPAD = {"A128CBCPAD": 16, "A192CBCPAD": 24, "A256CBCPAD": 32}
KNOWN_ALGORITHMS = frozenset(
    [*RSA_ENCRYPTION, *RSA_SIGNATURE, *EC_SIGNATURE, *AES_KW, *AES_GCM, *AES_CBC, *AES_CBCPAD]
)


def _unsupported(alg: str, kty: str) -> CryptoInputError:
    if alg not in KNOWN_ALGORITHMS:
        return CryptoInputError("Property alg has invalid value")
    return CryptoInputError(f"Algorithm '{alg}' is not supported for key type '{kty}'.")


def _bounded(value: bytes, name: str, limit: int) -> None:
    if len(value) > limit:
        raise CryptoInputError(f"Property {name} is too large: at most {limit} bytes are allowed.")


class LoadedKey:
    """A key version ready for operations; subclasses per family. All bytes in and out are raw
    (the data plane does base64url). Every method raises CryptoInputError on bad input, including
    an algorithm this key type does not support."""

    kty: str

    def __init__(self, kty: str) -> None:
        self.kty = kty

    def encrypt(self, alg: str, value: bytes, iv: bytes | None, aad: bytes | None) -> dict[str, bytes]:
        """Encrypt; returns ``{"value"}`` plus ``"iv"``/``"tag"`` for AES-GCM and ``"iv"`` for CBC."""
        raise _unsupported(alg, self.kty)

    def decrypt(
        self, alg: str, value: bytes, iv: bytes | None, aad: bytes | None, tag: bytes | None
    ) -> bytes:
        """Decrypt ``value``; any failure is one fixed message per algorithm family."""
        raise _unsupported(alg, self.kty)

    def wrap(self, alg: str, value: bytes) -> bytes:
        """Wrap (encrypt) a key."""
        raise _unsupported(alg, self.kty)

    def unwrap(self, alg: str, value: bytes) -> bytes:
        """Unwrap a wrapped key."""
        raise _unsupported(alg, self.kty)

    def sign(self, alg: str, digest: bytes) -> bytes:
        """Sign a digest whose length must match the algorithm's hash."""
        raise _unsupported(alg, self.kty)

    def verify(self, alg: str, digest: bytes, signature: bytes) -> bool:
        """True when ``signature`` is valid for ``digest``; False for any malformed signature."""
        raise _unsupported(alg, self.kty)


def _check_digest(alg: str, digest: bytes, size: int) -> None:
    if len(digest) != size:
        raise CryptoInputError(
            f"Invalid digest length for algorithm {alg}: expected {size} bytes, got {len(digest)}."
        )


class _RsaKey(LoadedKey):
    def __init__(self, kty: str, key: rsa.RSAPrivateKey) -> None:
        super().__init__(kty)
        self._key = key
        self._public = key.public_key()
        self._width = (key.key_size + 7) // 8

    def _padding(self, alg: str) -> asym_padding.AsymmetricPadding:
        if alg == "RSA-OAEP":
            return asym_padding.OAEP(asym_padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)  # noqa: S303
        if alg == "RSA-OAEP-256":
            return asym_padding.OAEP(asym_padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
        if alg == "RSA1_5":
            return asym_padding.PKCS1v15()
        raise _unsupported(alg, self.kty)

    def _max_plaintext(self, alg: str) -> int:
        if alg == "RSA1_5":
            return self._width - 11
        hash_len = 20 if alg == "RSA-OAEP" else 32
        return self._width - 2 * hash_len - 2

    def encrypt(self, alg: str, value: bytes, iv: bytes | None, aad: bytes | None) -> dict[str, bytes]:
        pad = self._padding(alg)
        limit = self._max_plaintext(alg)
        if len(value) > limit:
            raise CryptoInputError(
                f"The value to encrypt is too long for algorithm {alg} and this key: at most {limit} bytes."
            )
        return {"value": self._public.encrypt(value, pad)}

    def decrypt(
        self, alg: str, value: bytes, iv: bytes | None, aad: bytes | None, tag: bytes | None
    ) -> bytes:
        pad = self._padding(alg)
        failed = PKCS1_FAILED if alg == "RSA1_5" else OAEP_FAILED
        if len(value) != self._width:
            raise CryptoInputError(failed)
        try:
            return self._key.decrypt(value, pad)
        except ValueError:  # cryptography's one error type for range and padding failures
            raise CryptoInputError(failed) from None

    def wrap(self, alg: str, value: bytes) -> bytes:
        return self.encrypt(alg, value, None, None)["value"]

    def unwrap(self, alg: str, value: bytes) -> bytes:
        return self.decrypt(alg, value, None, None, None)

    def _signature_scheme(
        self, alg: str, digest: bytes
    ) -> tuple[asym_padding.AsymmetricPadding, utils.Prehashed]:
        if alg not in RSA_SIGNATURE:
            raise _unsupported(alg, self.kty)
        algorithm = _HASHES[alg[2:]]
        _check_digest(alg, digest, algorithm.digest_size)
        if alg.startswith("PS"):
            scheme: asym_padding.AsymmetricPadding = asym_padding.PSS(
                asym_padding.MGF1(algorithm), algorithm.digest_size
            )
        else:
            scheme = asym_padding.PKCS1v15()
        return scheme, utils.Prehashed(algorithm)

    def sign(self, alg: str, digest: bytes) -> bytes:
        scheme, prehashed = self._signature_scheme(alg, digest)
        return self._key.sign(digest, scheme, prehashed)

    def verify(self, alg: str, digest: bytes, signature: bytes) -> bool:
        scheme, prehashed = self._signature_scheme(alg, digest)
        if len(signature) != self._width:
            return False
        try:
            self._public.verify(signature, digest, scheme, prehashed)
        except InvalidSignature:
            return False
        return True


class _EcKey(LoadedKey):
    def __init__(self, kty: str, key: ec.EllipticCurvePrivateKey, crv: str) -> None:
        super().__init__(kty)
        self._key = key
        self._public = key.public_key()
        self._crv = crv
        self._width = CURVES[crv][1]

    def _algorithm(self, alg: str, digest: bytes) -> ec.ECDSA:
        wanted = EC_SIGNATURE.get(alg)
        if wanted is None:
            raise _unsupported(alg, self.kty)
        if wanted != self._crv:
            raise CryptoInputError(
                f"Key and signing algorithm are incompatible. Key uses curve '{self._crv}', and algorithm "
                f"'{alg}' can only be used with curve '{wanted}'."
            )
        algorithm = _HASHES[alg[2:5]]
        _check_digest(alg, digest, algorithm.digest_size)
        return ec.ECDSA(utils.Prehashed(algorithm))

    def sign(self, alg: str, digest: bytes) -> bytes:
        der = self._key.sign(digest, self._algorithm(alg, digest))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(self._width, "big") + s.to_bytes(self._width, "big")

    def verify(self, alg: str, digest: bytes, signature: bytes) -> bool:
        algorithm = self._algorithm(alg, digest)
        if len(signature) != 2 * self._width:
            return False
        r = int.from_bytes(signature[: self._width], "big")
        s = int.from_bytes(signature[self._width :], "big")
        try:
            self._public.verify(utils.encode_dss_signature(r, s), digest, algorithm)
        except InvalidSignature:
            return False
        return True


class _OctKey(LoadedKey):
    def __init__(self, kty: str, key: bytes) -> None:
        super().__init__(kty)
        self._key = key

    def _check_size(self, alg: str, table: dict[str, int]) -> None:
        if table[alg] != len(self._key):
            raise CryptoInputError(
                f"Algorithm '{alg}' requires a {table[alg] * 8}-bit key; this key has {len(self._key) * 8} bits."
            )

    def encrypt(self, alg: str, value: bytes, iv: bytes | None, aad: bytes | None) -> dict[str, bytes]:
        _bounded(value, "value", MAX_AES_VALUE)
        if alg in AES_GCM:
            self._check_size(alg, AES_GCM)
            if iv is not None:
                raise CryptoInputError(
                    f"Property iv is not allowed for algorithm {alg}: Key Vault generates it."
                )
            _bounded(aad or b"", "aad", MAX_AES_VALUE)
            nonce = os.urandom(12)
            sealed = AESGCM(self._key).encrypt(nonce, value, aad or None)
            return {"value": sealed[:-16], "iv": nonce, "tag": sealed[-16:]}
        if alg in AES_CBC or alg in AES_CBCPAD:
            self._check_size(alg, AES_CBC if alg in AES_CBC else AES_CBCPAD)
            self._no_aad(alg, aad)
            block_iv = os.urandom(16) if iv is None else iv
            self._check_iv(block_iv)
            if alg in AES_CBCPAD:
                padder = padding.PKCS7(128).padder()
                value = padder.update(value) + padder.finalize()
            elif len(value) % 16:
                raise CryptoInputError(
                    f"The value length must be a multiple of 16 bytes for algorithm {alg}."
                )
            encryptor = Cipher(algorithms.AES(self._key), modes.CBC(block_iv)).encryptor()
            return {"value": encryptor.update(value) + encryptor.finalize(), "iv": block_iv}
        raise _unsupported(alg, self.kty)

    @staticmethod
    def _no_aad(alg: str, aad: bytes | None) -> None:
        if aad:
            raise CryptoInputError(f"Property aad is not allowed for algorithm {alg}.")

    @staticmethod
    def _check_iv(iv: bytes, size: int = 16) -> None:
        if len(iv) != size:
            raise CryptoInputError(f"Property iv must be {size} bytes long.")

    def decrypt(
        self, alg: str, value: bytes, iv: bytes | None, aad: bytes | None, tag: bytes | None
    ) -> bytes:
        _bounded(value, "value", MAX_AES_VALUE + 16)
        if alg in AES_GCM:
            self._check_size(alg, AES_GCM)
            if iv is None or tag is None:
                raise CryptoInputError(f"Properties iv and tag are required for algorithm {alg}.")
            self._check_iv(iv, 12)
            _bounded(aad or b"", "aad", MAX_AES_VALUE)
            if len(tag) != 16:
                raise CryptoInputError(AES_FAILED)
            try:
                return AESGCM(self._key).decrypt(iv, value + tag, aad or None)
            except InvalidTag:
                raise CryptoInputError(AES_FAILED) from None
        if alg in AES_CBC or alg in AES_CBCPAD:
            self._check_size(alg, AES_CBC if alg in AES_CBC else AES_CBCPAD)
            self._no_aad(alg, aad)
            if iv is None:
                raise CryptoInputError(f"Property iv is required for algorithm {alg}.")
            self._check_iv(iv)
            if not value or len(value) % 16:
                raise CryptoInputError(AES_FAILED)
            decryptor = Cipher(algorithms.AES(self._key), modes.CBC(iv)).decryptor()
            plain = decryptor.update(value) + decryptor.finalize()
            if alg in AES_CBC:
                return plain
            try:
                unpadder = padding.PKCS7(128).unpadder()
                return unpadder.update(plain) + unpadder.finalize()
            except ValueError:
                raise CryptoInputError(AES_FAILED) from None
        raise _unsupported(alg, self.kty)

    def wrap(self, alg: str, value: bytes) -> bytes:
        if alg not in AES_KW:
            raise _unsupported(alg, self.kty)
        self._check_size(alg, AES_KW)
        _bounded(value, "value", MAX_AES_VALUE)
        if len(value) < 16 or len(value) % 8:
            raise CryptoInputError(
                f"The key to wrap must be a multiple of 8 bytes and at least 16 bytes for {alg}."
            )
        return aes_key_wrap(self._key, value)

    def unwrap(self, alg: str, value: bytes) -> bytes:
        if alg not in AES_KW:
            raise _unsupported(alg, self.kty)
        self._check_size(alg, AES_KW)
        _bounded(value, "value", MAX_AES_VALUE + 8)
        try:
            return aes_key_unwrap(self._key, value)
        except (InvalidUnwrap, ValueError):
            raise CryptoInputError(AES_FAILED) from None


def load(material: KeyMaterial) -> LoadedKey:
    """Build the operation object for ``material`` (cheap: no RSA key check; cache the result)."""
    key = material.private_key
    if isinstance(key, rsa.RSAPrivateKey):
        return _RsaKey(material.kty, key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = material.crv
        assert crv is not None
        return _EcKey(material.kty, key, crv)
    return _OctKey(material.kty, material.private)
