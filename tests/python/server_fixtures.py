"""Fixtures and helpers of the HTTP server tests: ``nusterdb serve`` run as a child
process on a free local port, waited for on ``GET /readyz``, and stopped with SIGTERM
(exit code 0 asserted) at the end; the command line's ``keys create`` and ``audit
verify``.

conftest.py imports the fixtures (``server``, ``server_url``, ``auth_server``), so every
test module shares one session server of each kind; the helpers are imported from here.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

__all__ = [
    "AuthServer",
    "Server",
    "auth_server",
    "create_key_cli",
    "free_port",
    "http_request",
    "nusterdb_cli",
    "running_server",
    "server",
    "server_url",
    "start_server",
    "stop_and_check",
]

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_request(
    url_host: str,
    port: int,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
    timeout: float = 30.0,
    context: Optional[ssl.SSLContext] = None,
) -> Tuple[int, Dict[str, str], bytes]:
    """One request on a fresh connection (https with ``context``): (status, headers with
    lower-case names, body). A server that answers before reading all of a large body
    (and closes) is still heard."""
    conn = (
        http.client.HTTPSConnection(url_host, port, timeout=timeout, context=context)
        if context is not None
        else http.client.HTTPConnection(url_host, port, timeout=timeout)
    )
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except OSError:
            if conn.sock is None:
                raise
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def nusterdb_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``python -m nusterdb ARGS`` with this interpreter; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "nusterdb", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Server:
    """A running ``nusterdb serve`` child: its process, address and data directory."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    data_dir: Path
    log: Path
    args: List[str] = field(default_factory=list)
    ssl_context: Optional[ssl.SSLContext] = None

    @property
    def url(self) -> str:
        """The base URL, ``http://host:port`` (``https://`` when serving TLS)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def log_text(self) -> str:
        """What the server wrote to stdout and stderr so far (the last 4,000 chars)."""
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        """Whether the process runs and answers ``GET /healthz`` with 200."""
        if self.proc.poll() is not None:
            return False
        try:
            status, _, _ = self.request("GET", "/healthz", timeout=10)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: float = 30.0,
    ) -> Tuple[int, Dict[str, str], bytes]:
        """:func:`http_request` to this server."""
        return http_request(
            self.host, self.port, method, path, body, headers, timeout, self.ssl_context
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then the exit code (SIGKILL and an AssertionError if it does not exit
        within ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(
                f"the server did not exit within {timeout}s of SIGTERM; log:\n{self.log_text()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL (``kill -9``) and wait for the process to be gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def _wait_ready(srv: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise AssertionError(
                f"the server exited ({srv.proc.returncode}) before it was ready; "
                f"args {srv.args}; log:\n{srv.log_text()}"
            )
        try:
            status, _, body = srv.request("GET", "/readyz", timeout=5)
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        else:
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        time.sleep(0.05)
    srv.kill()
    raise AssertionError(
        f"the server was not ready within {timeout}s (last: {last}); log:\n{srv.log_text()}"
    )


def start_server(
    data_dir: Path,
    *extra: str,
    no_auth: bool = True,
    port: Optional[int] = None,
    ready_timeout: float = READY_TIMEOUT,
    ssl_context: Optional[ssl.SSLContext] = None,
    root_args: Sequence[str] = (),
) -> Server:
    """Starts ``python -m nusterdb serve data_dir --host 127.0.0.1 --port P`` (with
    ``--no-auth`` unless ``no_auth=False``, then ``extra``) and waits until ``GET
    /readyz`` answers 200 (over https with ``ssl_context``, for a server given
    ``--tls-cert``/``--tls-key`` in ``extra``). Its output goes to ``data_dir``'s
    sibling ``*.log`` file. ``root_args`` go before ``serve`` (``--key-env NAME``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1"
    port = port or free_port()
    args = ["serve", str(data_dir), "--host", host, "--port", str(port)]
    if no_auth:
        args.append("--no-auth")
    args.extend(extra)
    log = data_dir.with_name(data_dir.name + f"-{port}.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nusterdb", *root_args, *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Server(
        proc=proc,
        host=host,
        port=port,
        data_dir=data_dir,
        log=log,
        args=args,
        ssl_context=ssl_context,
    )
    _wait_ready(srv, ready_timeout)
    return srv


def stop_and_check(srv: Server) -> None:
    """Stops ``srv`` with SIGTERM (if it still runs) and asserts it exited with 0."""
    code = srv.stop() if srv.proc.poll() is None else srv.proc.returncode
    assert code == 0, f"the server exited with {code}; log:\n{srv.log_text()}"


@contextlib.contextmanager
def running_server(data_dir: Path, *extra: str, no_auth: bool = True) -> Iterator[Server]:
    """A server for the ``with`` block, stopped (exit code 0 asserted) at its end."""
    srv = start_server(data_dir, *extra, no_auth=no_auth)
    try:
        yield srv
    except BaseException:
        if srv.proc.poll() is None:
            srv.kill()
        raise
    stop_and_check(srv)


def create_key_cli(data_dir: Path, name: str, scopes: Sequence[str]) -> Dict[str, Any]:
    """``nusterdb keys create DATA_DIR --name NAME --scopes A,B --json``: the new key's
    JSON (with ``key``, the secret)."""
    r = nusterdb_cli(
        "keys", "create", str(data_dir), "--name", name, "--scopes", ",".join(scopes), "--json"
    )
    assert r.returncode == 0, f"keys create exited {r.returncode}: {r.stderr}"
    doc: Dict[str, Any] = json.loads(r.stdout)
    assert isinstance(doc.get("key"), str), doc
    return doc


@dataclass
class AuthServer:
    """A server run with authentication, and the admin key made for it before it
    started."""

    server: Server
    admin_key: str

    @property
    def url(self) -> str:
        """The base URL."""
        return self.server.url


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A ``--no-auth`` server for the whole session (exit code 0 on SIGTERM asserted at
    the end)."""
    data_dir = tmp_path_factory.mktemp("server") / "data"
    srv = start_server(data_dir)
    try:
        yield srv
    finally:
        stop_and_check(srv)


@pytest.fixture(scope="session")
def server_url(server: Server) -> str:
    """The base URL of the session's ``--no-auth`` server."""
    return server.url


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server with authentication for the whole session, and its admin key (made
    with ``nusterdb keys create ... --scopes admin`` before the start)."""
    data_dir = tmp_path_factory.mktemp("auth-server") / "data"
    data_dir.mkdir(parents=True)
    key = create_key_cli(data_dir, "admin", ["admin"])["key"]
    srv = start_server(data_dir, no_auth=False)
    try:
        yield AuthServer(server=srv, admin_key=key)
    finally:
        stop_and_check(srv)
