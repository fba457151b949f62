"""The server's commands of the ``nusterdb`` command line: ``serve``, ``keys`` and
``audit`` (registered by ``nusterdb.cli.build_parser``)."""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import IO, Any, Callable, Optional

from nusterdb import server
from nusterdb.encryption import EncryptionConfig, EnvKey, KeyFile

EXIT_OK = 0
EXIT_FAILED = 1


def _emit(out: IO[str], doc: Any) -> None:
    out.write(json.dumps(doc, indent=2, allow_nan=False))
    out.write("\n")


def encryption_of(env: Optional[str], file: Optional[str]) -> Optional[EncryptionConfig]:
    """The EncryptionConfig of ``--*key-env`` / ``--*key-file`` (None: neither given)."""
    if env is not None:
        return EncryptionConfig(EnvKey(env))
    if file is not None:
        return EncryptionConfig(KeyFile(file))
    return None


def cmd_serve(args: argparse.Namespace, out: IO[str]) -> int:
    encryption = encryption_of(args.key_env, args.key_file)
    # Ctrl-C: the server has already shut down gracefully when it arrives here.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve(
            args.data_dir,
            host=args.host,
            port=args.port,
            no_auth=args.no_auth,
            max_body_mb=args.max_body_mb,
            timeout_secs=args.timeout_secs,
            audit_max_mb=args.audit_max_mb,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            encryption=encryption,
        )
    return EXIT_OK


def cmd_keys_create(args: argparse.Namespace, out: IO[str]) -> int:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    cols = None if args.collections is None else [c.strip() for c in args.collections.split(",")]
    entry = server.create_key(args.data_dir, args.name, scopes, cols)
    if args.json:
        _emit(out, entry)
    else:
        out.write(f"key id {entry['id']} ({entry['name']}): {', '.join(entry['scopes'])}")
        out.write(f"; collections: {', '.join(cols) if cols else 'all'}\n")
        out.write(f"{entry['key']}\n")
        out.write("(shown once: store it now; the data directory keeps only its hash)\n")
    return EXIT_OK


def cmd_keys_list(args: argparse.Namespace, out: IO[str]) -> int:
    keys = server.list_keys(args.data_dir)
    if args.json:
        _emit(out, keys)
        return EXIT_OK
    for k in keys:
        state = "revoked" if k["revoked"] else "live"
        cols = ", ".join(k["collections"]) if k["collections"] else "all"
        out.write(
            f"{k['id']}  {k['name']}  {','.join(k['scopes'])}  collections: {cols}  {state}\n"
        )
    if not keys:
        out.write("no keys\n")
    return EXIT_OK


def cmd_keys_revoke(args: argparse.Namespace, out: IO[str]) -> int:
    r = server.revoke_key(args.data_dir, args.id)
    if args.json:
        _emit(out, r)
    else:
        out.write(f"revoked {args.id}\n" if r["was_live"] else f"{args.id} was already revoked\n")
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace, out: IO[str]) -> int:
    r = server.verify_audit(args.data_dir)
    if args.json:
        _emit(out, r)
    else:
        verdict = "healthy" if r["healthy"] else f"{len(r['problems'])} problem(s)"
        out.write(
            f"{r['path']}: {verdict}; {r['entries']} entries in {r['files']} file(s), "
            f"{r['denied']} denied; head {r['head']['seq']} {r['head']['hash']}\n"
        )
        for p in r["problems"]:
            out.write(f"  {p['file']}:{p['line']}: {p['problem']}\n")
    return EXIT_OK if r["healthy"] else EXIT_FAILED


def add_commands(sub: Any, add_json: Callable[[argparse.ArgumentParser], None]) -> None:
    """Adds ``serve``, ``keys`` and ``audit`` to the command line's subparsers."""
    p = sub.add_parser(
        "serve",
        help="serve the collections of DATA_DIR over HTTP (until SIGTERM or Ctrl-C)",
        description=(
            "Serves every collection under DATA_DIR/collections over the HTTP API "
            "(/v1/...), with API keys (create one first: nusterdb keys create) and an "
            "audit log. SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, "
            "close every collection, exit 0. With the master key (nusterdb --key-env NAME "
            "serve ...), every collection is created encrypted and opened with it."
        ),
    )
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7878, help="port (default 7878; 0: any free one)")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without API keys (loopback addresses only; prints a warning)",
    )
    p.add_argument("--max-body-mb", type=int, default=256, help="largest request body (MiB)")
    p.add_argument(
        "--timeout-secs", type=float, default=300.0, help="answer 503 past this many seconds"
    )
    p.add_argument("--audit-max-mb", type=int, default=64, help="rotate audit files past this")
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain: serve HTTPS")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="create, list or revoke the server's API keys")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION")
    ks.required = True
    s = ks.add_parser("create", help="a new key (printed once)")
    s.add_argument("data_dir", metavar="DATA_DIR")
    s.add_argument("--name", required=True, help="what the key is for")
    s.add_argument("--scopes", required=True, help="comma-separated: read, write, admin")
    s.add_argument("--collections", help="comma-separated collection names (default: all)")
    add_json(s)
    s.set_defaults(func=cmd_keys_create)
    s = ks.add_parser("list", help="every key (no secrets)")
    s.add_argument("data_dir", metavar="DATA_DIR")
    add_json(s)
    s.set_defaults(func=cmd_keys_list)
    s = ks.add_parser("revoke", help="revoke key ID (a running server refuses it at once)")
    s.add_argument("data_dir", metavar="DATA_DIR")
    s.add_argument("id", metavar="ID")
    add_json(s)
    s.set_defaults(func=cmd_keys_revoke)

    p = sub.add_parser("audit", help="check the server's audit log")
    au = p.add_subparsers(dest="audit_command", metavar="ACTION")
    au.required = True
    s = au.add_parser(
        "verify", help="walk the hash chain; exit 1 if an entry was changed, removed or moved"
    )
    s.add_argument("data_dir", metavar="DATA_DIR")
    add_json(s)
    s.set_defaults(func=cmd_audit_verify)
