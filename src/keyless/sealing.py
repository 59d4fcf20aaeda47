"""Secrets at rest: everything secret in the database is sealed under the root key.

The root key is 32 random bytes in a 0600 file beside (never inside) the database.
Sealing is AES-256-GCM with a random nonce; the purpose string is bound as associated
data, so a sealed value cannot be moved to another row or column and still open.

Only the first ``keyless up`` of a data directory (and its database) creates the root key
(``create_root_key``); everything else loads it (``load_root_key``) and refuses to go on without it,
so a mistyped ``--data-dir`` never makes a second root key that the database does not know.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1:"
_ROOT_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


class RootKeyError(Exception):
    """The root key is missing, damaged, or not the one the database's secrets are sealed under.

    The message says what is wrong and what to do; the CLI prints it as it is.
    """


class SealedValueError(ValueError):
    """A sealed value that does not open with this root key and purpose (or is damaged)."""


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (no window where it is readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_root_key(path: Path) -> bytes:
    """The root key in ``path``; RootKeyError if there is none or it is damaged. Never creates one."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise RootKeyError(
            f"No root key at {path}: this is not the data directory of a Keyless instance. Only the first "
            "`keyless up` of a data directory creates a root key; check --data-dir (or KEYLESS_DATA_DIR)."
        ) from None
    if len(key) != _ROOT_KEY_BYTES:
        raise RootKeyError(
            f"The root key {path} is damaged: expected {_ROOT_KEY_BYTES} bytes, found {len(key)}."
        )
    return key


def create_root_key(path: Path) -> bytes:
    """A new root key in ``path`` (0600); RootKeyError if one appeared there meanwhile."""
    key = AESGCM.generate_key(bit_length=_ROOT_KEY_BYTES * 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two first starts racing never overwrite each other's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RootKeyError(f"A root key appeared at {path} while this one was being made.") from None
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


class Sealer:
    def __init__(self, root_key: bytes) -> None:
        self._aead = AESGCM(root_key)
        self._derive_key = hmac.new(root_key, b"keyless-derive-v1", hashlib.sha256).digest()

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for ``purpose``, the same on every replica sharing the root key, and
        unrelated to the sealing key or any other purpose's secret (HMAC-SHA256 of the purpose under
        a key derived from the root key). Storage's user delegation keys are derived this way."""
        return hmac.new(self._derive_key, purpose.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: bytes, purpose: str) -> str:
        """``v1:`` + base64(nonce + AES-GCM ciphertext and tag), ``purpose`` bound as associated data."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, purpose.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, purpose: str) -> bytes:
        """The plaintext of ``sealed``; SealedValueError if it was sealed under another root key or
        purpose, or is damaged."""
        if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
            raise SealedValueError("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(_PREFIX) :], validate=True)
            if len(raw) < _NONCE_BYTES + _TAG_BYTES:
                raise SealedValueError("the sealed value is truncated")
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode())
        except (InvalidTag, binascii.Error) as exc:
            raise SealedValueError("the sealed value does not open with this root key") from exc
