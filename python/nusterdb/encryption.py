"""Encryption at rest: where a database's master key comes from.

``EncryptionConfig(key_provider=...)`` is given to ``DatabaseConfig(encryption=...)``
(or ``NusterDB(path, encryption=...)``) to create an encrypted database, and at every
open of one. The master key is 32 bytes; it only wraps the database's data key (made
at creation, stored wrapped in ``nusterdb.key``), which encrypts with AES-256-GCM every
stored value (vectors, metadata, documents, string ids) and the data files NusterDB
writes itself (the graph file, snapshot manifests). Record ids, file names and sizes stay
visible. Rotating the master key
(``NusterDB.rotate_encryption_key``) rewraps that one key; no data is rewritten.

Key providers:

- ``EnvKey("NAME")``: the environment variable ``NAME`` holds the key as 64 hex
  digits or as base64 of 32 bytes;
- ``KeyFile(path)``: the file holds the key as 32 raw bytes, 64 hex digits or base64;
- a callable taking no argument and returning the key (32 bytes, or text as above),
  e.g. a function that asks a key-management service;
- the 32 key bytes themselves.

The provider is asked each time a configuration is built from the
``EncryptionConfig`` (each open), so a rotated key in the environment or the file is
picked up by the next open. The key is never stored by NusterDB.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Callable, Union

from nusterdb.exceptions import EncryptionKeyError

__all__ = ["EncryptionConfig", "EnvKey", "KeyFile", "KeyProvider"]

KEY_BYTES = 32


class EnvKey:
    """A master key read from the environment variable ``name`` (64 hex digits, or
    base64 of 32 bytes)."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("EnvKey needs the name of an environment variable")
        self.name = name

    def __repr__(self) -> str:
        return f"EnvKey({self.name!r})"

    def __call__(self) -> bytes:
        value = os.environ.get(self.name)
        if value is None:
            raise EncryptionKeyError(f"the environment variable {self.name} is not set")
        return _decode_text(value, f"the environment variable {self.name}")


class KeyFile:
    """A master key read from the file at ``path`` (32 raw bytes, 64 hex digits, or
    base64)."""

    def __init__(self, path: Union[str, os.PathLike[str]]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"KeyFile({str(self.path)!r})"

    def __call__(self) -> bytes:
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise EncryptionKeyError(f"cannot read the key file {self.path}: {e}") from e
        if len(data) == KEY_BYTES:
            return data
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise EncryptionKeyError(
                f"the key file {self.path} holds {len(data)} bytes that are not a key "
                f"({KEY_BYTES} raw bytes, 64 hex digits or base64 expected)"
            ) from None
        return _decode_text(text, f"the key file {self.path}")


KeyProvider = Union[EnvKey, KeyFile, bytes, bytearray, Callable[[], Union[bytes, str]]]


def _decode_text(text: str, where: str) -> bytes:
    """The 32 key bytes written as 64 hex digits or base64 in ``text``."""
    s = text.strip()
    if len(s) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(s)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == KEY_BYTES:
        return raw
    raise EncryptionKeyError(
        f"{where} does not hold a {KEY_BYTES}-byte key (64 hex digits or base64 expected)"
    )


class EncryptionConfig:
    """Encryption at rest with the master key from ``key_provider`` (see the module
    documentation for the providers)."""

    def __init__(self, key_provider: KeyProvider) -> None:
        if not (isinstance(key_provider, (bytes, bytearray)) or callable(key_provider)):
            raise TypeError(
                "key_provider must be an EnvKey, a KeyFile, a callable returning the key, "
                f"or the key's {KEY_BYTES} bytes, not {type(key_provider).__name__}"
            )
        self.key_provider = key_provider

    def __repr__(self) -> str:
        p = self.key_provider
        shown = "<key bytes>" if isinstance(p, (bytes, bytearray)) else repr(p)
        return f"EncryptionConfig(key_provider={shown})"

    def _master_key(self) -> bytes:
        """Asks the provider for the key (called by NusterDB at each open)."""
        p = self.key_provider
        key = bytes(p) if isinstance(p, (bytes, bytearray)) else p()
        if isinstance(key, str):
            key = _decode_text(key, "the key provider's text")
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            n = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
            raise EncryptionKeyError(
                f"a master key is {KEY_BYTES} bytes; the key provider gave {n}"
            )
        return bytes(key)

    @staticmethod
    def generate_key() -> str:
        """A new random master key as 64 hex digits (for ``EnvKey`` or ``KeyFile``)."""
        return os.urandom(KEY_BYTES).hex()
