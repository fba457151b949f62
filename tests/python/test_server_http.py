"""The HTTP server seen from outside: raw requests (``http.client``) that are malformed,
too large, misrouted or hostile get a 4xx with the typed JSON error body (never a 5xx)
and leave the server running; the authentication matrix (401 / 403) and the audit log
(``nusterdb audit verify``) it feeds; acknowledged writes surviving ``kill -9``; and the
client's transport (its connection pool from many threads, and retries, which only
requests that change nothing get) against a scripted fake server."""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt
import pytest
from nusterdb import ClosedError, DatabaseConfig, NusterDBIOError, StorageConfiguration
from nusterdb.client import Client, RemoteCollection
from nusterdb.exceptions import (
    BadRequestError,
    CollectionExistsError,
    CollectionNotFoundError,
    ForbiddenError,
    InvalidArgumentError,
    PayloadTooLargeError,
    ServerError,
    ServerTimeoutError,
    UnauthorizedError,
)
from server_fixtures import (
    AuthServer,
    Server,
    http_request,
    nusterdb_cli,
    start_server,
    stop_and_check,
)

Response = Tuple[int, Dict[str, str], bytes]
JSON_HEADERS = {"Content-Type": "application/json"}
DIM = 4


def new_name() -> str:
    return "h" + uuid.uuid4().hex[:16]


def send_json(
    srv: Server,
    method: str,
    path: str,
    doc: Any = None,
    key: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Response:
    """A request with ``doc`` as its JSON body (none when None and the method is GET or
    DELETE), with ``key`` as its bearer token."""
    h = dict(JSON_HEADERS) if doc is not None else {}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    h.update(headers or {})
    body = None if doc is None else json.dumps(doc).encode()
    return srv.request(method, path, body, h)


def raw_body(rows: npt.NDArray[Any], tail: Dict[str, Any]) -> bytes:
    return np.ascontiguousarray(rows, dtype="<f4").tobytes() + json.dumps(tail).encode()


def send_raw(
    srv: Server,
    path: str,
    body: bytes,
    shape: Optional[str],
    extra: Optional[Dict[str, str]] = None,
) -> Response:
    h = {"Content-Type": "application/octet-stream"}
    if shape is not None:
        h["X-NusterDB-Shape"] = shape
    h.update(extra or {})
    return srv.request("POST", path, body, h)


def assert_error(resp: Response, status: int, *types: str, what: str = "") -> Dict[str, Any]:
    """``resp`` is ``status`` with the typed JSON error body, its type among ``types``;
    returns the error object. ``what`` names the request in failure messages."""
    got, headers, body = resp
    where = f"{what}: {got} {body[:300]!r}"
    assert got < 500, f"a 5xx for a bad request: {where}"
    assert got == status, f"want {status} {types}, got {where}"
    assert headers.get("content-type", "").startswith("application/json"), where
    doc = json.loads(body)
    assert set(doc) == {"error"}, where
    err = doc["error"]
    assert isinstance(err, dict), where
    assert err.get("type") in types, f"want type {types}, got {where}"
    assert isinstance(err.get("message"), str), where
    assert err["message"], where
    assert isinstance(err.get("details", {}), dict), where
    return err


def assert_ok(resp: Response, *statuses: int) -> Any:
    got, _, body = resp
    assert got in (statuses or (200,)), f"want {statuses or 200}, got {got} {body[:300]!r}"
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def coll(server: Server) -> Iterator[str]:
    """A dim-4 collection on the no-auth server holding ids 1, 2, 3."""
    name = new_name()
    with Client(server.url) as c:
        col = c.create_collection(name, dim=DIM)
        col.bulk_add([1, 2, 3], np.eye(3, DIM, dtype=np.float32), [{"a": 1}, {"a": 2}, None])
        yield name
        c.drop_collection(name)


@pytest.fixture(autouse=True)
def _server_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used a server fixture, that server still runs and answers."""
    yield
    for name in ("server", "small_server"):
        if name in request.fixturenames:
            srv: Server = request.getfixturevalue(name)
            assert srv.alive(), f"the server is gone after the test; log:\n{srv.log_text()}"


# ------------------------------------------------------------------------------ bad input


def test_malformed_json_is_400(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    for path, body in [
        (f"{base}/search", b'{"query": [1, 2'),
        (f"{base}/search", b"not json at all"),
        (f"{base}/search", b""),
        (f"{base}/records", b'{"mode": "add", "ids": [5], "vectors": [[1,2,3,4]]'),
        (f"{base}/records/get", b"[1, 2, 3]"),
        (f"{base}/search", b'{"query": [1, 2, 3, 4], "k": 1}{"again": 1}'),
        ("/v1/collections", b"\xff\xfe\x00garbage"),
        ("/v1/keys", b"{"),
    ]:
        resp = server.request("POST", path, body, JSON_HEADERS)
        assert_error(resp, 400, "BadRequestError")


def test_wrong_field_types_are_400(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    for path, doc in [
        (f"{base}/search", {"query": "1,2,3,4", "k": 1}),
        (f"{base}/search", {"query": [1, 2, "x", 4], "k": 1}),
        (f"{base}/search", {"query": [1, 2, 3, 4], "k": "ten"}),
        (f"{base}/records", {"mode": "add", "ids": 5, "vectors": [[1, 2, 3, 4]]}),
        (f"{base}/records/get", {"ids": [1], "limit": "all"}),
        (f"{base}/records/update", {"id": 1, "merge": "yes"}),
        ("/v1/collections", {"name": new_name(), "config": {"dim": "four"}}),
    ]:
        resp = send_json(server, "POST", path, doc)
        assert_error(resp, 400, "BadRequestError", what=f"{path} {doc}")
    # A value outside its domain (an unknown mode, a metadata value that is not a
    # scalar) may be the core's InvalidArgumentError as well.
    for doc in [
        {"mode": "insert", "ids": [5], "vectors": [[1, 2, 3, 4]]},
        {
            "mode": "add",
            "ids": [5],
            "vectors": [[1, 2, 3, 4]],
            "metadatas": [{"fields": {"a": [1]}}],
        },
    ]:
        resp = send_json(server, "POST", f"{base}/records", doc)
        assert_error(resp, 400, "InvalidArgumentError", "BadRequestError", what=str(doc))
    with Client(server.url) as c:
        assert c.collection(coll).count() == 3


def test_wrong_content_type_is_415(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    doc = json.dumps({"query": [1, 2, 3, 4], "k": 1}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        resp = server.request("POST", f"{base}/search", doc, {"Content-Type": ctype})
        assert_error(resp, 415, "UnsupportedMediaTypeError")
    # Raw bodies are for records and batch_search only.
    resp = send_raw(server, f"{base}/search", raw_body(np.ones((1, DIM)), {"k": 1}), f"1,{DIM}")
    assert_error(resp, 415, "UnsupportedMediaTypeError")
    # JSON with a charset parameter is still JSON.
    resp = server.request(
        "POST", f"{base}/search", doc, {"Content-Type": "application/json; charset=utf-8"}
    )
    assert_ok(resp)


def test_unknown_collection_is_404(server: Server) -> None:
    for method, path, doc in [
        ("GET", "/v1/collections/nope", None),
        ("GET", "/v1/collections/nope/stats", None),
        ("GET", "/v1/collections/nope/snapshots", None),
        ("DELETE", "/v1/collections/nope", None),
        ("POST", "/v1/collections/nope/search", {"query": [1, 2, 3, 4], "k": 1}),
        (
            "POST",
            "/v1/collections/nope/records",
            {"mode": "add", "ids": [1], "vectors": [[1, 2, 3, 4]]},
        ),
        ("POST", "/v1/collections/nope/records/count", {}),
        ("POST", "/v1/collections/nope/flush", {}),
    ]:
        err = assert_error(send_json(server, method, path, doc), 404, "CollectionNotFoundError")
        assert err["details"].get("collection", "nope") == "nope"
    with Client(server.url) as c, pytest.raises(CollectionNotFoundError) as info:
        c.collection("nope").count()
    assert info.value.status == 404


def test_bad_collection_names_are_refused(server: Server) -> None:
    for name in ["-leading-dash", "a" * 65, "", "has space", "dot.dot", "slash/x", "ü"]:
        resp = send_json(server, "POST", "/v1/collections", {"name": name, "config": {"dim": 4}})
        assert_error(resp, 400, "InvalidArgumentError", "BadRequestError")
    name = new_name()
    with Client(server.url) as c:
        c.create_collection(name, dim=4)
        try:
            with pytest.raises(CollectionExistsError) as info:
                c.create_collection(name, dim=4)
            assert info.value.status == 409
            assert name in [x["name"] for x in c.list_collections()]
        finally:
            c.drop_collection(name)
        with pytest.raises(CollectionNotFoundError):
            c.drop_collection(name)


def test_unknown_route_is_404(server: Server, coll: str) -> None:
    for method, path in [
        ("GET", "/"),
        ("GET", "/v1"),
        ("GET", "/v2/collections"),
        ("GET", "/v1/nothing"),
        ("POST", f"/v1/collections/{coll}/records/nothing"),
        ("GET", f"/v1/collections/{coll}/stats/extra"),
    ]:
        assert_error(
            send_json(server, method, path, {} if method == "POST" else None), 404, "NotFoundError"
        )


def test_wrong_method_is_405(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    for method, path in [
        ("GET", f"{base}/search"),
        ("GET", f"{base}/records"),
        ("DELETE", f"{base}/records"),
        ("PUT", "/v1/collections"),
        ("PATCH", base),
        ("POST", f"{base}/stats"),
        ("POST", "/healthz"),
        ("DELETE", "/v1/keys"),
    ]:
        resp = send_json(server, method, path, {} if method in ("POST", "PUT", "PATCH") else None)
        assert_error(resp, 405, "MethodNotAllowedError")


def test_non_finite_values_in_raw_bodies_are_400(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    for bad in (np.nan, np.inf, -np.inf):
        rows = np.ones((3, DIM), dtype=np.float32)
        rows[2, 1] = bad
        resp = send_raw(
            server,
            f"{base}/records",
            raw_body(rows, {"mode": "add", "ids": [10, 11, 12]}),
            f"3,{DIM}",
        )
        err = assert_error(resp, 400, "InvalidVectorError", "InvalidArgumentError")
        assert "non-finite" in err["message"]
        resp = send_raw(server, f"{base}/batch_search", raw_body(rows, {"k": 2}), f"3,{DIM}")
        assert_error(resp, 400, "InvalidVectorError", "InvalidArgumentError")
    with Client(server.url) as c:
        assert c.collection(coll).count() == 3  # nothing written


def test_shape_header_disagreeing_with_the_body_is_400(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    two = np.ones((2, DIM), dtype=np.float32)
    tail = {"mode": "add", "ids": [20, 21]}
    cases: List[Tuple[str, bytes, Optional[str]]] = [
        ("more rows than the body", raw_body(two, tail), f"30,{DIM}"),
        ("rows only, no tail, header too big", two.tobytes(), f"3,{DIM}"),
        ("fewer rows: floats read as the tail", raw_body(two, tail), f"1,{DIM}"),
        ("no header", raw_body(two, tail), None),
        ("not numbers", raw_body(two, tail), "two,four"),
        ("one number", raw_body(two, tail), "2"),
        ("three numbers", raw_body(two, tail), f"2,{DIM},1"),
        ("negative", raw_body(two, tail), f"-2,{DIM}"),
        ("overflowing", raw_body(two, tail), "18446744073709551615,18446744073709551615"),
        ("huge product", raw_body(two, tail), "4294967296,4294967296"),
        ("truncated tail", raw_body(two, tail)[:-3], f"2,{DIM}"),
        ("ids count", raw_body(two, {"mode": "add", "ids": [20]}), f"2,{DIM}"),
    ]
    for what, body, shape in cases:
        for route in ("/records", "/batch_search"):
            b = body if route == "/records" else body.replace(b'"mode": "add", ', b"")
            resp = send_raw(server, base + route, b, shape)
            status = resp[0]
            assert 400 <= status < 500, f"{what} {route}: {status} {resp[2][:300]!r}"
            assert_error(
                resp,
                status,
                "BadRequestError",
                "InvalidArgumentError",
                "PayloadTooLargeError",
                "DimensionMismatchError",
            )
    # A shape that agrees with the body but not with the collection: the core's error.
    three = np.ones((2, 3), dtype=np.float32)
    resp = send_raw(server, f"{base}/records", raw_body(three, tail), "2,3")
    err = assert_error(resp, 400, "DimensionMismatchError")
    assert err["details"].get("expected") == DIM
    assert err["details"].get("got") == 3
    with Client(server.url) as c:
        assert c.collection(coll).count() == 3


def test_bad_k_is_4xx(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    q = [1.0, 0.0, 0.0, 0.0]
    for k in (-1, -(2**63), 2**64, 10**30, 1.5, 1e300, "5", True, [3]):
        resp = send_json(server, "POST", f"{base}/search", {"query": q, "k": k})
        assert_error(resp, 400, "BadRequestError", "InvalidArgumentError", what=f"search k={k!r}")
        resp = send_json(server, "POST", f"{base}/batch_search", {"queries": [q], "k": k})
        assert_error(
            resp, 400, "BadRequestError", "InvalidArgumentError", what=f"batch_search k={k!r}"
        )
        resp = send_raw(
            server, f"{base}/batch_search", raw_body(np.asarray([q]), {"k": k}), f"1,{DIM}"
        )
        assert_error(
            resp, 400, "BadRequestError", "InvalidArgumentError", what=f"raw batch_search k={k!r}"
        )
    for k in (0,):
        resp = send_json(server, "POST", f"{base}/search", {"query": q, "k": k})
        assert_error(resp, 400, "InvalidArgumentError")


def test_a_huge_k_that_fits_returns_every_row(server: Server, coll: str) -> None:
    # As embedded: a huge k allocates nothing k-sized; the width is min(k, count).
    base = f"/v1/collections/{coll}"
    q = [1.0, 0.0, 0.0, 0.0]
    for k in (10**15, 2**63 - 1):
        hits = assert_ok(send_json(server, "POST", f"{base}/search", {"query": q, "k": k}))["hits"]
        assert [h["id"] for h in hits][:1] == [1]
        assert len(hits) == 3
        out = assert_ok(
            send_json(server, "POST", f"{base}/batch_search", {"queries": [q, q], "k": k})
        )
        assert [len(r) for r in out["ids"]] == [3, 3]


def test_other_bad_arguments_are_4xx(server: Server, coll: str) -> None:
    base = f"/v1/collections/{coll}"
    q = [1.0, 0.0, 0.0, 0.0]
    cases: List[Tuple[str, Dict[str, Any], int, Tuple[str, ...]]] = [
        ("/search", {"query": [], "k": 1}, 400, ("InvalidVectorError",)),
        ("/search", {"query": q, "k": 1, "filter": {"a": {"$nope": 1}}}, 400, ("FilterError",)),
        ("/search", {"query": q, "k": 1, "filter": [1]}, 400, ("FilterError", "BadRequestError")),
        ("/search", {"query": q, "k": 1, "include": ["bogus"]}, 400, ("InvalidArgumentError",)),
        ("/search", {"query": q, "k": 1, "ef_search": 0}, 400, ("InvalidArgumentError",)),
        (
            "/search",
            {"query": q, "k": 1, "ef_search": -1},
            400,
            ("BadRequestError", "InvalidArgumentError"),
        ),
        (
            "/search",
            {"query": [1e39, 0, 0, 0], "k": 1},
            400,
            ("InvalidVectorError", "InvalidArgumentError", "BadRequestError"),
        ),
        ("/records", {"mode": "add", "ids": [1], "vectors": [q]}, 409, ("DuplicateIdError",)),
        ("/records", {"mode": "add", "ids": [9, 9], "vectors": [q, q]}, 409, ("DuplicateIdError",)),
        ("/records", {"mode": "add", "ids": ["x"], "vectors": [q]}, 400, ("IdTypeError",)),
        (
            "/records",
            {"mode": "add", "ids": [-1], "vectors": [q]},
            400,
            ("InvalidArgumentError", "BadRequestError"),
        ),
        (
            "/records",
            {"mode": "add", "ids": [2**64], "vectors": [q]},
            400,
            ("InvalidArgumentError", "BadRequestError", "IdTypeError"),
        ),
        (
            "/records",
            {"mode": "add", "ids": [9, 10], "vectors": [q]},
            400,
            ("InvalidArgumentError", "BadRequestError"),
        ),
        ("/records/update", {"id": 999, "vector": q}, 404, ("IdNotFoundError",)),
        ("/records/contains", {"id": "x"}, 400, ("IdTypeError",)),
        (
            "/records/get",
            {"ids": None, "limit": -1},
            400,
            ("InvalidArgumentError", "BadRequestError"),
        ),
        (
            "/records/delete",
            {"ids": None, "filter": None},
            400,
            ("InvalidArgumentError", "BadRequestError"),
        ),
        ("/records/delete", {"filter": {}}, 400, ("InvalidArgumentError",)),
        # As the embedded database: an unknown snapshot name is an invalid argument.
        ("/snapshots/nope/restore", {}, 400, ("InvalidArgumentError",)),
        ("DELETE /snapshots/nope", {}, 400, ("InvalidArgumentError",)),
    ]
    wrong = []
    for route, doc, status, types in cases:
        method, _, route = route.rpartition(" ")
        resp = send_json(server, method or "POST", base + route, doc if not method else None)
        try:
            assert_error(resp, status, *types, what=f"{method or 'POST'} {route} {doc}")
        except AssertionError as exc:
            wrong.append(str(exc).splitlines()[0])
    assert not wrong, "\n".join(wrong)
    with Client(server.url) as c:
        assert c.collection(coll).count() == 3


# ------------------------------------------------------------------------------ body limit


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A no-auth server started with ``--max-body-mb 1``."""
    srv = start_server(tmp_path_factory.mktemp("small") / "data", "--max-body-mb", "1")
    try:
        yield srv
    finally:
        stop_and_check(srv)


def test_bodies_over_the_limit_are_413(small_server: Server) -> None:
    name = new_name()
    dim = 64
    with Client(small_server.url) as c:
        col = c.create_collection(name, dim=dim)
    base = f"/v1/collections/{name}"
    big = np.ones((5000, dim), dtype=np.float32)  # 1.28 MB of rows
    ids = list(range(5000))
    resp = send_raw(
        small_server, f"{base}/records", raw_body(big, {"mode": "add", "ids": ids}), f"5000,{dim}"
    )
    assert_error(resp, 413, "PayloadTooLargeError")
    doc = json.dumps({"mode": "add", "ids": ids, "vectors": big.tolist()}).encode()
    assert len(doc) > 1 << 20
    resp = small_server.request("POST", f"{base}/records", doc, JSON_HEADERS)
    assert_error(resp, 413, "PayloadTooLargeError")
    # Without a Content-Length (chunked), the limit holds as the body arrives.
    chunks = [doc[i : i + 65536] for i in range(0, len(doc), 65536)]
    resp = small_server.request("POST", f"{base}/records", iter(chunks), dict(JSON_HEADERS))  # type: ignore[arg-type]
    assert_error(resp, 413, "PayloadTooLargeError")
    # The limit is the body's size: just under it is accepted.
    ok = raw_body(big[:3000], {"mode": "add", "ids": ids[:3000]})
    assert len(ok) < 1 << 20
    assert_ok(send_raw(small_server, f"{base}/records", ok, f"3000,{dim}"), 200, 201)
    with Client(small_server.url) as c:
        col = c.collection(name)
        assert col.count() == 3000
        with pytest.raises(PayloadTooLargeError) as info:
            col.bulk_add(list(range(10000, 15000)), big)
        assert info.value.status == 413
        assert col.count() == 3000
        c.drop_collection(name)


# ------------------------------------------------------------------------------ auth matrix


@dataclass
class AuthSetup:
    srv: AuthServer
    keys: Dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def auth(auth_server: AuthServer) -> Iterator[AuthSetup]:
    """Collections alpha and beta on the auth server, and keys: read, write, one
    limited to beta, and one revoked."""
    setup = AuthSetup(auth_server)
    with Client(auth_server.url, api_key=auth_server.admin_key) as admin:
        for name in ("alpha", "beta"):
            col = admin.create_collection(name, dim=DIM)
            col.add(1, [1.0, 0.0, 0.0, 0.0], {"a": 1})
        setup.keys["read"] = admin.create_key("reader", ["read"])["key"]
        setup.keys["write"] = admin.create_key("writer", ["write"])["key"]
        setup.keys["beta"] = admin.create_key("beta-admin", ["admin"], ["beta"])["key"]
        revoked = admin.create_key("revoked", ["admin"])
        admin.revoke_key(revoked["id"])
        setup.keys["revoked"] = revoked["key"]
        listed = {k["name"]: k for k in admin.list_keys()}
        assert listed["revoked"]["revoked"] is True
        assert listed["reader"]["revoked"] is False
        assert "key" not in listed["reader"]
        yield setup


Q = [1.0, 0.0, 0.0, 0.0]
# (method, path, body, scope needed, whether the route is about collection alpha)
ROUTES: List[Tuple[str, str, Any, str, bool]] = [
    ("GET", "/v1/collections", None, "read", False),
    ("GET", "/metrics", None, "read", False),
    ("GET", "/v1/collections/alpha", None, "read", True),
    ("GET", "/v1/collections/alpha/stats", None, "read", True),
    ("GET", "/v1/collections/alpha/snapshots", None, "read", True),
    ("POST", "/v1/collections/alpha/search", {"query": Q, "k": 1}, "read", True),
    ("POST", "/v1/collections/alpha/batch_search", {"queries": [Q], "k": 1}, "read", True),
    ("POST", "/v1/collections/alpha/records/get", {"ids": [1]}, "read", True),
    ("POST", "/v1/collections/alpha/records/count", {}, "read", True),
    ("POST", "/v1/collections/alpha/records/contains", {"id": 1}, "read", True),
    (
        "POST",
        "/v1/collections/alpha/records",
        {"mode": "upsert", "ids": [9], "vectors": [Q]},
        "write",
        True,
    ),
    ("POST", "/v1/collections/alpha/records/update", {"id": 1, "document": "x"}, "write", True),
    ("POST", "/v1/collections/alpha/records/delete", {"ids": [12345]}, "write", True),
    ("POST", "/v1/collections/alpha/records/clear", {}, "write", True),
    ("POST", "/v1/collections/alpha/flush", {}, "write", True),
    ("POST", "/v1/collections/alpha/snapshots", {"name": None}, "write", True),
    ("POST", "/v1/collections", {"name": "gamma", "config": {"dim": 4}}, "admin", False),
    ("DELETE", "/v1/collections/alpha", None, "admin", True),
    ("POST", "/v1/collections/alpha/snapshots/nope/restore", {}, "admin", True),
    ("DELETE", "/v1/collections/alpha/snapshots/nope", None, "admin", True),
    ("POST", "/v1/keys", {"name": "x", "scopes": ["read"]}, "admin", False),
    ("GET", "/v1/keys", None, "admin", False),
    ("DELETE", "/v1/keys/0123456789ab", None, "admin", False),
]
# A key of the right format that was never issued.
FORGED = "nus_0123456789ab_" + "A" * 43


def _matrix() -> List[Any]:
    out = []
    for method, path, body, scope, per_coll in ROUTES:
        cases = ["no-key", "wrong-key", "garbage-key", "basic-auth", "revoked"]
        if scope != "read":
            cases.append("no-scope")
        if per_coll:
            cases.append("other-collection")
        for case in cases:
            out.append(pytest.param(method, path, body, scope, case, id=f"{method}-{path}-{case}"))
    return out


@pytest.mark.parametrize(("method", "path", "body", "scope", "case"), _matrix())
def test_auth_matrix(
    auth: AuthSetup, method: str, path: str, body: Any, scope: str, case: str
) -> None:
    headers: Dict[str, str] = {}
    if case == "wrong-key":
        headers["Authorization"] = f"Bearer {FORGED}"
    elif case == "garbage-key":
        headers["Authorization"] = "Bearer not-a-key"
    elif case == "basic-auth":
        headers["Authorization"] = "Basic YWRtaW46YWRtaW4="
    elif case == "revoked":
        headers["Authorization"] = f"Bearer {auth.keys['revoked']}"
    elif case == "no-scope":
        lacking = "read" if scope == "write" else "write"
        headers["Authorization"] = f"Bearer {auth.keys[lacking]}"
    elif case == "other-collection":
        headers["Authorization"] = f"Bearer {auth.keys['beta']}"
    resp = send_json(auth.srv.server, method, path, body, headers=headers)
    if case in ("no-scope", "other-collection"):
        assert_error(resp, 403, "ForbiddenError")
    else:
        assert_error(resp, 401, "UnauthorizedError")
    assert auth.srv.server.alive()


def test_auth_allows_what_is_granted(auth: AuthSetup) -> None:
    srv = auth.srv.server
    read, write, beta = auth.keys["read"], auth.keys["write"], auth.keys["beta"]
    assert_ok(send_json(srv, "GET", "/healthz"))
    assert_ok(send_json(srv, "GET", "/readyz"))
    assert_ok(
        send_json(srv, "POST", "/v1/collections/alpha/search", {"query": Q, "k": 1}, key=read)
    )
    assert_ok(send_json(srv, "GET", "/v1/collections/alpha", key=read))
    assert_ok(
        send_json(
            srv,
            "POST",
            "/v1/collections/alpha/records",
            {"mode": "upsert", "ids": [5], "vectors": [Q]},
            key=write,
        ),
        200,
        201,
    )
    assert_ok(
        send_json(srv, "POST", "/v1/collections/alpha/search", {"query": Q, "k": 1}, key=write)
    )
    assert_ok(send_json(srv, "POST", "/v1/collections/beta/search", {"query": Q, "k": 1}, key=beta))
    listed = assert_ok(send_json(srv, "GET", "/v1/collections", key=beta))["collections"]
    assert [c["name"] for c in listed] == ["beta"]
    listed = assert_ok(send_json(srv, "GET", "/v1/collections", key=read))["collections"]
    assert [c["name"] for c in listed] == ["alpha", "beta"]
    metrics = srv.request("GET", "/metrics", None, {"Authorization": f"Bearer {read}"})
    assert metrics[0] == 200
    assert b"nusterdb_http_requests_total" in metrics[2]

    with Client(srv.url, api_key=FORGED) as c:
        with pytest.raises(UnauthorizedError) as info:
            c.list_collections()
        assert info.value.status == 401
        assert c.health()["status"] == "ok"
    with Client(srv.url, api_key=read) as c:
        col = c.collection("alpha")
        assert col.search(Q, k=1)[0][0] == 1
        with pytest.raises(ForbiddenError) as finfo:
            col.add(77, Q)
        assert finfo.value.status == 403
        assert 77 not in col
    with Client(srv.url, api_key=beta) as c:
        with pytest.raises(ForbiddenError):
            c.collection("alpha").count()
        assert c.collection("beta").count() >= 1


def test_audit_log_verifies_and_detects_a_flipped_byte(auth: AuthSetup, tmp_path: Path) -> None:
    srv = auth.srv.server
    # Some refused requests, so the log has denied entries whatever ran before.
    for key in (None, FORGED, auth.keys["revoked"]):
        resp = send_json(srv, "GET", "/v1/collections", key=key)
        assert resp[0] == 401
    resp = send_json(srv, "POST", "/v1/collections/alpha/records/clear", {}, key=auth.keys["read"])
    assert resp[0] == 403

    r = nusterdb_cli("audit", "verify", str(srv.data_dir), "--json")
    assert r.returncode == 0, f"audit verify exited {r.returncode}: {r.stdout} {r.stderr}"
    report = json.loads(r.stdout)
    assert report.get("healthy") is True, report
    assert report["denied"] >= 4, report

    # A copy of the data directory's audit log with one byte changed fails verification.
    copy = tmp_path / "copy"
    shutil.copytree(srv.data_dir / "audit", copy / "audit")
    files = sorted((copy / "audit").glob("*.jsonl"))
    assert files, list((copy / "audit").iterdir())
    target = files[0]
    data = bytearray(target.read_bytes())
    at = data.find(b'"method":"')
    pos = at + len(b'"method":"') if at >= 0 else len(data) // 2
    data[pos] ^= 0x01  # "GET" becomes "FET": still valid JSON, but the hash chain breaks
    target.write_bytes(bytes(data))
    r = nusterdb_cli("audit", "verify", str(copy), "--json")
    assert r.returncode == 1, f"audit verify of a changed log exited {r.returncode}: {r.stdout}"
    report = json.loads(r.stdout)
    assert report.get("healthy") is False
    assert report.get("problems"), report
    # The live log is untouched and still verifies.
    r = nusterdb_cli("audit", "verify", str(srv.data_dir), "--json")
    assert r.returncode == 0, r.stdout


# kill -9 of the server under writes: tests/python/test_server_kill.py.


# ------------------------------------------------------------------------------ client transport


def test_an_ivf_collection_over_http(server: Server) -> None:
    name, flat = new_name(), new_name()
    rng = np.random.default_rng(11)
    base = rng.standard_normal((1500, 8)).astype(np.float32)
    with Client(server.url) as c:
        col = c.create_collection(name, dim=8, index_type="ivf", ivf={"nlist": 12, "nprobe": 3})
        col.bulk_add(list(range(1500)), base)
        info = col.info()
        assert info["index_type"] == "ivf"
        assert info["config"]["ivf"] == {"nlist": 12, "nprobe": 3}
        q = base[5] + 0.01
        # Every list probed: the exact answer, as numpy has it.
        got = [i for i, _ in col.search(q, k=5, nprobe=12)]
        assert got == np.argsort(np.linalg.norm(base - q, axis=1))[:5].tolist()
        ids, _ = col.batch_search(np.stack([q, q]), k=5, nprobe=12)
        assert ids.tolist() == [got, got]
        # Without nprobe the collection's own (3) applies.
        assert col.search(q, k=5) == col.search(q, k=5, nprobe=3)
        # ef_search is the graph's: refused for IVF, as nprobe is for a flat collection.
        path = f"/v1/collections/{name}/search"
        resp = send_json(server, "POST", path, {"query": q.tolist(), "ef_search": 8})
        assert "nprobe" in assert_error(resp, 400, "InvalidArgumentError")["message"]
        c.create_collection(flat, dim=8).bulk_add([1], base[:1])
        path = f"/v1/collections/{flat}/search"
        resp = send_json(server, "POST", path, {"query": q.tolist(), "nprobe": 2})
        assert "IVF" in assert_error(resp, 400, "InvalidArgumentError")["message"]
        # IVF parameters on another index type are refused at creation.
        with pytest.raises(InvalidArgumentError, match="nlist"):
            c.create_collection(new_name(), dim=8, index_type="hnsw", ivf={"nlist": 4})
        # A recall target: answered (stored ids, nearest first; a batch as single
        # searches), refused out of (0, 1] or beside nprobe, with a typed 400.
        hits = col.search(q, k=5, recall=0.95)
        assert len(hits) == 5
        assert all(0 <= i < 1500 for i, _ in hits)
        assert [d for _, d in hits] == sorted(d for _, d in hits)
        ids, _ = col.batch_search(np.stack([q, q]), k=5, recall=0.95)
        assert ids.tolist() == [[i for i, _ in hits]] * 2
        path = f"/v1/collections/{name}/search"
        for body in ({"recall": 1.5}, {"recall": 0}, {"recall": 0.9, "nprobe": 3}):
            resp = send_json(server, "POST", path, {"query": q.tolist(), **body})
            assert "recall" in assert_error(resp, 400, "InvalidArgumentError")["message"]
        resp = send_json(server, "POST", path, {"query": q.tolist(), "recall": "high"})
        assert resp[0] == 400, resp
        # A default target in the config: shown, used by searches naming no knob.
        dflt = c.create_collection(new_name(), dim=8, index_type="ivf", recall=0.9)
        dflt.bulk_add(list(range(1500)), base)
        assert dflt.info()["config"]["recall"] == pytest.approx(0.9)
        assert dflt.search(q, k=5) == dflt.search(q, k=5, recall=0.9)
        assert col.info()["config"]["recall"] is None
        with pytest.raises(InvalidArgumentError, match="recall"):
            c.create_collection(new_name(), dim=8, index_type="ivf", recall=0.9, ivf={"nprobe": 2})
        with pytest.raises(InvalidArgumentError, match="recall"):
            c.create_collection(new_name(), dim=8, recall=1.5)
        c.drop_collection(name)
        c.drop_collection(flat)


def test_one_client_from_many_threads(server: Server) -> None:
    name = new_name()
    rng = np.random.default_rng(7)
    base = rng.standard_normal((300, 16)).astype(np.float32)
    with Client(server.url, pool_size=4) as c:
        col = c.create_collection(name, dim=16)
        col.bulk_add(list(range(300)), base)
        queries = rng.standard_normal((40, 16)).astype(np.float32)
        want = [col.search(q, k=5) for q in queries]
        errors: List[BaseException] = []
        results: Dict[Tuple[int, int], Any] = {}

        def work(t: int) -> None:
            try:
                for j, q in enumerate(queries):
                    results[(t, j)] = col.search(q, k=5)
                    # Writes in between, far from every query: the results stay the same.
                    col.upsert(1000 + t, np.full(16, 1000.0 + t, np.float32))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(12)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not errors, errors
        assert all(results[(t, j)] == want[j] for t in range(12) for j in range(len(queries)))
        assert col.count() == 312
        c.drop_collection(name)


Action = Union[str, Tuple[int, Any], Tuple[int, Any, str]]


class FakeServer:
    """A scripted HTTP server on a thread: ``script(method, path, body)`` returns "drop"
    (close the connection without an answer), (status, JSON document or bytes), or
    (status, document, "close") to close the connection after the answer without saying
    so in it."""

    def __init__(self, script: Callable[[str, str, bytes], Action]) -> None:
        self.requests: List[Tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path))
                action = script(self.command, self.path, body)
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                assert isinstance(action, tuple)
                status, doc = action[0], action[1]
                data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if len(action) == 3:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[[Callable[[str, str, bytes], Action]], FakeServer]]:
    made: List[FakeServer] = []

    def make(script: Callable[[str, str, bytes], Action]) -> FakeServer:
        made.append(FakeServer(script))
        return made[-1]

    yield make
    for f in made:
        f.close()


INFO = {"name": "c", "dim": 4, "metric": "euclidean", "index_type": "flat", "id_type": "int"}


def flaky(drops: int, answer: Tuple[int, Any]) -> Callable[[str, str, bytes], Action]:
    seen = [0]

    def script(method: str, path: str, body: bytes) -> Action:
        if path.endswith("/v1/collections/c"):
            return (200, INFO)
        seen[0] += 1
        return "drop" if seen[0] <= drops else answer

    return script


def test_reads_are_retried_on_connection_errors(fake: Any) -> None:
    srv = fake(flaky(2, (200, {"status": "ok"})))
    with Client(srv.url, retries=2) as c:
        assert c.health() == {"status": "ok"}
    assert len(srv.requests) == 3
    srv = fake(flaky(1, (200, {"hits": [{"id": 1, "distance": 0.5}]})))
    with Client(srv.url, retries=2) as c:
        assert c.collection("c").search([1, 2, 3, 4], k=1) == [(1, 0.5)]
    assert [p for _, p in srv.requests].count("/v1/collections/c/search") == 2
    srv = fake(flaky(3, (200, {"status": "ok"})))
    with Client(srv.url, retries=2) as c, pytest.raises(ConnectionError):
        c.health()
    assert len(srv.requests) == 3


def test_writes_are_never_retried(fake: Any) -> None:
    srv = fake(flaky(1, (200, {"written": 1})))
    with Client(srv.url, retries=5) as c:
        col = c.collection("c")
        with pytest.raises(ConnectionError):
            col.add(1, [1, 2, 3, 4])
        assert [p for m, p in srv.requests if m == "POST"] == ["/v1/collections/c/records"]
        col.add(1, [1, 2, 3, 4])  # the next one goes through
        assert len(srv.requests) == 2
    calls: List[Callable[[RemoteCollection], object]] = [
        lambda col: col.bulk_add([1, 2], np.ones((2, 4), np.float32)),
        lambda col: col.remove(1),
        lambda col: col.clear(),
        lambda col: col.update(1, document="x"),
        lambda col: col.snapshot(),
    ]
    for call in calls:
        srv = fake(flaky(1, (200, {"written": 2, "removed": 1, "name": "s"})))
        with Client(srv.url, retries=5) as c, pytest.raises(ConnectionError):
            call(c.collection("c"))
        assert len(srv.requests) == 1, srv.requests


def test_a_pooled_connection_the_server_closed_is_not_used(fake: Any) -> None:
    def script(method: str, path: str, body: bytes) -> Action:
        # Answers without announcing it, then closes: an idle keep-alive timeout.
        return (200, {"written": 1}, "close")

    srv = fake(script)
    with Client(srv.url, retries=0) as c:
        col = c.collection("c")
        for i in range(3):
            col.add(i, [1, 2, 3, 4])  # a write is never resent: each must find a live socket
            time.sleep(0.2)
    assert len(srv.requests) == 3


def test_error_statuses_are_never_retried_and_map_to_classes(fake: Any) -> None:
    def error(type_name: str, status: int, details: Optional[Dict[str, Any]] = None) -> Any:
        return (
            status,
            {"error": {"type": type_name, "message": f"a {type_name}", "details": details or {}}},
        )

    answers: Dict[str, Any] = {
        "/healthz": error("ClosedError", 503),
        "/v1/collections": error("TimeoutError", 503),
        "/v1/keys": error("SomethingNewError", 418, {"x": 1}),
        "/readyz": (502, b"<html>bad gateway</html>"),
        "/v1/collections/c/flush": error("NusterDBIOError", 507, {"errno": 28}),
        "/v1/collections/c/records/count": error("BadRequestError", 400),
    }

    def script(method: str, path: str, body: bytes) -> Action:
        action: Action = answers.get(path, (500, b""))
        return action

    srv = fake(script)
    with Client(srv.url, retries=3) as c:
        with pytest.raises(ClosedError) as closed:
            c.health()
        assert closed.value.status == 503  # type: ignore[attr-defined]
        assert str(closed.value) == "a ClosedError"
        with pytest.raises(ServerTimeoutError) as timeout:
            c.list_collections()
        assert timeout.value.status == 503
        with pytest.raises(ServerError) as other:
            c.list_keys()
        assert type(other.value) is ServerError
        assert other.value.error_type == "SomethingNewError"
        assert other.value.details == {"x": 1}
        assert other.value.status == 418
        with pytest.raises(ServerError, match="502"):
            c.ready()
        col = c.collection("c")
        with pytest.raises(NusterDBIOError) as io:
            col.flush()
        assert io.value.errno == 28
        with pytest.raises(BadRequestError):
            col.count()
        with pytest.raises(ValueError, match="a BadRequestError"):  # it is a ValueError too
            col.count()
    assert len(srv.requests) == 7  # one each: an HTTP error is an answer, not retried


def test_closed_client_refuses_requests() -> None:
    c = Client("http://127.0.0.1:9")
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(ClosedError):
        c.health()
    with pytest.raises(ValueError, match="http"):
        Client("ftp://example.com")


def test_connection_refused_is_an_os_error() -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    addr = port.getsockname()[1]
    port.close()
    with Client(f"http://127.0.0.1:{addr}", retries=1, timeout=5) as c:
        t0 = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            c.health()
        assert time.monotonic() - t0 < 5


# ------------------------------------------------------------------------------ https


def test_https_with_a_private_ca(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    context = ssl.create_default_context(cafile=str(cert))
    srv = start_server(
        tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key), ssl_context=context
    )
    try:
        assert srv.url.startswith("https://")
        with Client(srv.url, ssl_context=context) as c:
            col = c.create_collection("tls", dim=DIM)
            col.bulk_add([1, 2], np.eye(2, DIM, dtype=np.float32))
            assert col.search([1.0, 0.0, 0.0, 0.0], k=1) == [(1, 0.0)]
        # Without the CA the certificate does not verify: refused at once, not retried.
        with Client(srv.url, retries=3) as c:
            t0 = time.monotonic()
            with pytest.raises(ssl.SSLCertVerificationError):
                c.health()
            assert time.monotonic() - t0 < 1.0
        # Plain http to the TLS port is not served.
        status: Optional[int]
        try:
            status = http_request(srv.host, srv.port, "GET", "/healthz", timeout=5)[0]
        except (OSError, http.client.HTTPException):
            status = None
        assert status != 200
        assert srv.alive()
    finally:
        stop_and_check(srv)


def test_storage_settings_are_applied_and_kept(server: Server) -> None:
    name = new_name()
    cfg = DatabaseConfig(
        4,
        storage_config=StorageConfiguration(
            write_buffer_size_mb=4, cache_size_mb=8, compression="zstd", sync_writes=True
        ),
    )
    with Client(server.url) as c:
        c.create_collection(name, cfg)
        info = c.collection(name).info()
        st = info["config"]["storage"]
        assert (st["write_buffer_size_mb"], st["cache_size_mb"], st["compression"]) == (
            4,
            8,
            "zstd",
        )
        assert info["config"]["sync_writes"] is True
        with pytest.raises(InvalidArgumentError):
            c.create_collection(new_name(), dim=4, storage={"max_write_buffer_number": 1})
        with pytest.raises(InvalidArgumentError):
            c.create_collection(new_name(), dim=4, storage={"compression": "brotli"})
        c.drop_collection(name)
