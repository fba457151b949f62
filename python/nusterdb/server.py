"""Run the NusterDB server and manage its API keys and audit log from Python.

``serve(DATA_DIR)`` blocks until SIGTERM or Ctrl-C, serving every collection under
``DATA_DIR/collections`` over the HTTP API (see TECHNICAL_DOCS.md, "The server");
``nusterdb serve`` on the command line calls it. The key and audit functions work on
the files of a data directory directly, beside a running server (which picks up key
changes at its next request).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

from nusterdb import _core
from nusterdb.client import _make_error
from nusterdb.encryption import EncryptionConfig

_Path = Union[str, "os.PathLike[str]"]


def _unwrap(text: str) -> Any:
    """The answer of an entry point, or the exception its error stands for (the
    client's mapping, so the command line and the HTTP client raise alike)."""
    doc = json.loads(text)
    err = doc.get("error")
    if err is not None:
        raise _make_error(
            str(err["type"]), str(err["message"]), int(err["status"]), err.get("details") or {}
        )
    return doc["ok"]


def serve(
    data_dir: _Path,
    host: str = "127.0.0.1",
    port: int = 7878,
    *,
    no_auth: bool = False,
    max_body_mb: int = 256,
    timeout_secs: float = 300.0,
    audit_max_mb: int = 64,
    tls_cert: Optional[_Path] = None,
    tls_key: Optional[_Path] = None,
    encryption: Optional[EncryptionConfig] = None,
) -> None:
    """Serves ``data_dir`` until SIGTERM or Ctrl-C, then stops accepting connections,
    finishes the requests in flight, closes every collection and returns.

    ``no_auth`` turns API keys off; it is refused unless ``host`` is a loopback
    address. Bodies over ``max_body_mb`` MiB are refused (413); a request running past
    ``timeout_secs`` is answered 503 (the work it started runs to its end); audit
    files rotate past ``audit_max_mb`` MiB. With ``tls_cert`` and ``tls_key`` (PEM
    files: the certificate chain and its private key) it serves HTTPS. With
    ``encryption`` every collection is created encrypted at rest under its master key
    and opened with it (EncryptionKeyError at start for a collection it does not open).
    Raises NusterDBError when the directory cannot be served (a collection locked by
    another process, an address in use, an unusable certificate). On glibc it caps
    malloc's arenas at one per core (at least 2) for the whole process, which keeps the
    server's memory flat under writes, and hands freed heap pages back every 30 s."""
    key = None if encryption is None else encryption._master_key()
    _core._serve(
        os.fspath(data_dir),
        host,
        port,
        no_auth,
        max_body_mb,
        timeout_secs,
        audit_max_mb,
        None if tls_cert is None else os.fspath(tls_cert),
        None if tls_key is None else os.fspath(tls_key),
        key,
    )


def create_key(
    data_dir: _Path,
    name: str,
    scopes: Sequence[str],
    collections: Optional[Sequence[str]] = None,
) -> Dict[str, Any]:
    """Creates an API key with ``scopes`` (among "read", "write", "admin"), limited to
    ``collections`` when given. Returns its entry with ``key``, the key itself: it is
    shown only here (the data directory keeps a salted hash)."""
    cols = None if collections is None else list(collections)
    result: Dict[str, Any] = _unwrap(
        _core._keys_create(os.fspath(data_dir), name, list(scopes), cols)
    )
    return result


def list_keys(data_dir: _Path) -> List[Dict[str, Any]]:
    """Every key's id, name, scopes, collections, created_at and revoked state."""
    result: List[Dict[str, Any]] = _unwrap(_core._keys_list(os.fspath(data_dir)))
    return result


def revoke_key(data_dir: _Path, key_id: str) -> Dict[str, Any]:
    """Revokes key ``key_id``: a running server refuses it from its next request."""
    result: Dict[str, Any] = _unwrap(_core._keys_revoke(os.fspath(data_dir), key_id))
    return result


def verify_audit(data_dir: _Path) -> Dict[str, Any]:
    """Walks the audit log's hash chain. Returns ``healthy``, ``entries``, ``files``,
    ``denied`` (entries of refused requests), ``head`` (the last entry's seq and hash)
    and ``problems`` (file, line and what is wrong)."""
    result: Dict[str, Any] = _unwrap(_core._audit_verify(os.fspath(data_dir)))
    return result
