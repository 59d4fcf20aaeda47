"""Secrets at rest: everything secret in the database is sealed under the root key.

The root key is 32 random bytes in a 0600 file beside (never inside) the database.
Sealing is AES-256-GCM with a random nonce; the purpose string is bound as associated
data, so a sealed value cannot be moved to another row or column and still open.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1:"


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


def load_or_create_root_key(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"root key {path} is damaged: expected 32 bytes, found {len(key)}")
        return key
    key = AESGCM.generate_key(bit_length=256)
    write_private_file(path, key)
    return key


class Sealer:
    def __init__(self, root_key: bytes) -> None:
        self._aead = AESGCM(root_key)

    def seal(self, plaintext: bytes, purpose: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, purpose.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, purpose: str) -> bytes:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed value")
        raw = base64.b64decode(sealed[len(_PREFIX) :])
        return self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
