"""The HTTP client (``nusterdb.client.RemoteCollection``) behaves as the embedded
``nusterdb.NusterDB``: every test here runs twice through the ``db`` fixture, once on an
embedded database and once on a collection of a live ``nusterdb serve --no-auth``
server made with the same config, and asserts the same results and the same exception
classes. ``test_random_batches_round_trip_identically`` drives both side by side."""

from __future__ import annotations

import errno
import math
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, Union

import numpy as np
import numpy.typing as npt
import pytest
from db_helpers import assert_hits_match, brute_force, matches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nusterdb import (
    DatabaseConfig,
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    IdNotFoundError,
    IdTypeError,
    InvalidArgumentError,
    InvalidVectorError,
    Metadata,
    NusterDB,
    NusterDBError,
    NusterDBIOError,
    Vector,
)
from nusterdb.client import Client, RemoteCollection

DB = Union[NusterDB, RemoteCollection]
DIM = 32
F32 = npt.NDArray[np.float32]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def client(server_url: str) -> Iterator[Client]:
    """One client of the session's no-auth server."""
    with Client(server_url, timeout=60.0) as c:
        yield c


def new_name() -> str:
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture
def config() -> DatabaseConfig:
    """The config ``db`` is made with (tests override it with parametrize)."""
    return DatabaseConfig(DIM)


@pytest.fixture(params=["embedded", "remote"])
def db(request: pytest.FixtureRequest, config: DatabaseConfig, tmp_path: Path) -> Iterator[DB]:
    """An empty database made with ``config``: embedded, or a fresh collection on the
    live server."""
    if request.param == "embedded":
        handle = NusterDB(tmp_path / "db", config)
        try:
            yield handle
        finally:
            handle.close()
    else:
        client: Client = request.getfixturevalue("client")
        name = new_name()
        coll = client.create_collection(name, config)
        try:
            yield coll
        finally:
            client.drop_collection(name)


def cfg(metric: str = "euclidean", id_type: str = "int", dim: int = DIM) -> DatabaseConfig:
    return DatabaseConfig(dim, "flat", metric, id_type=id_type)


def rows(rng: np.random.Generator, n: int, dim: int = DIM) -> F32:
    return rng.standard_normal((n, dim)).astype(np.float32)


def fields_and_tags(
    m: Optional[Metadata],
) -> Optional[Tuple[Dict[str, Tuple[str, Any]], List[str]]]:
    """Metadata as comparable data: each field with its type name (3 and 3.0 differ),
    and the sorted tags."""
    if m is None:
        return None
    return ({k: (type(v).__name__, v) for k, v in m.to_dict().items()}, sorted(m.tags()))


# ------------------------------------------------------------------------------ round trips

# Norms must stay within 2^-60..2^60 (the range scored exactly in float32).
TRICKY = [0.1, -0.0, 1e-45, 1e17, -1e17, 1.17549435e-38, 123456.789, -1.0, 16777217.0]


def test_config_properties(db: DB, config: DatabaseConfig) -> None:
    assert db.dim == config.dim
    assert db.metric == config.metric
    assert db.index == "flat"
    assert db.id_type == "int"
    assert len(db) == 0


def test_add_get_round_trip_is_exact(db: DB, rng: np.random.Generator) -> None:
    v = rng.standard_normal(DIM).astype(np.float32)
    v[: len(TRICKY)] = np.asarray(TRICKY, dtype=np.float32)
    meta: Dict[str, Union[str, int, float, bool]] = {
        "s": "x ü 漢",
        "i": 7,
        "f": 2.5,
        "whole": 3.0,
        "b": True,
        "big": 2**62,
        "neg": -3,
    }
    db.add(1, v, Metadata.with_data(meta, ["a", "b"]), "hello ünïcode")
    db.add(2, Vector(v.tolist()), {"only": "dict"})
    db.add(3, v.tolist())

    got = db.get(1)
    assert isinstance(got, Vector)
    assert got.to_numpy().tobytes() == v.tobytes()  # bit for bit, -0.0 and subnormals too
    assert fields_and_tags(db.get_metadata(1)) == fields_and_tags(
        Metadata.with_data(meta, ["a", "b"])
    )
    assert db.get_document(1) == "hello ünïcode"
    assert fields_and_tags(db.get_metadata(2)) == ({"only": ("str", "dict")}, [])
    assert db.get_document(2) is None
    assert fields_and_tags(db.get_metadata(3)) == ({}, [])
    for absent in (4, 10**9):
        assert db.get(absent) is None
        assert db.get_metadata(absent) is None
        assert db.get_document(absent) is None
    assert db.contains(1)
    assert 1 in db
    assert 4 not in db
    assert "x" not in db  # a value that cannot be an id is not in it
    assert 1.5 not in db
    assert len(db) == 3
    assert db.count() == 3
    assert db.list_ids() == [1, 2, 3]


@pytest.mark.parametrize("config", [cfg("euclidean"), cfg("cosine")], ids=["euclidean", "cosine"])
def test_bulk_add_then_search_matches_brute_force(
    db: DB, config: DatabaseConfig, rng: np.random.Generator
) -> None:
    base = rows(rng, 500)
    ids = np.arange(1000, 1500, dtype=np.int64)
    assert db.bulk_add(ids, base) == 500
    assert len(db) == 500
    metric = config.metric.name
    queries = rows(rng, 10)
    per_query = []
    for q in queries:
        hits = db.search(q, k=10)
        assert all(isinstance(i, int) and isinstance(d, float) for i, d in hits)
        assert_hits_match(hits, base, ids, q, 10, metric)
        per_query.append(hits)
    got_ids, got_d = db.batch_search(queries, k=10)
    assert got_ids.dtype == np.int64
    assert got_d.dtype == np.float32
    assert got_ids.shape == got_d.shape == (10, 10)
    for r, hits in enumerate(per_query):
        assert got_ids[r].tolist() == [i for i, _ in hits]
        assert got_d[r].tolist() == [d for _, d in hits]
    # Every stored row reads back bit for bit.
    many = db.get_many(ids[::7], include=["vector"])
    assert many["ids"] == ids[::7].tolist()
    assert many["vectors"].dtype == np.float32
    assert many["vectors"].tobytes() == base[::7].tobytes()


def filtered_db(
    db: DB, rng: np.random.Generator, n: int = 120
) -> Tuple[F32, List[Dict[str, Any]], List[List[str]]]:
    base = rows(rng, n)
    metas: List[Dict[str, Any]] = [
        {"n": i, "cat": ["red", "green", "blue"][i % 3], "w": float(i) / 4} for i in range(n)
    ]
    tags = [["even"] if i % 2 == 0 else ["odd", "x"] for i in range(n)]
    db.bulk_add(list(range(n)), base, [Metadata.with_data(m, t) for m, t in zip(metas, tags)])
    return base, metas, tags


FILTERS: List[Dict[str, Any]] = [
    {"n": {"$gte": 100}},
    {"w": {"$gte": 3.5, "$lt": 10.0}},
    {"cat": {"$in": ["red", "blue"]}},
    {"$tags": {"$all": ["odd"]}},
    {"$tags": {"$any": ["even", "nothing"]}, "n": {"$lt": 50}},
    {"$or": [{"cat": "green"}, {"n": {"$in": [1, 2, 3]}}]},
    {"$not": {"cat": {"$in": ["red", "green"]}}},
    {"n": {"$gte": 1000}},
]


@pytest.mark.parametrize("flt", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_filters_select_the_same_rows(
    db: DB, rng: np.random.Generator, flt: Dict[str, Any]
) -> None:
    base, metas, tags = filtered_db(db, rng)
    allowed = [i for i in range(len(metas)) if matches(flt, metas[i], tags[i])]
    assert db.count(flt) == len(allowed)
    got = db.get_many(filter=flt, include=[])
    assert got["ids"] == allowed
    q = rows(rng, 1)[0]
    hits = db.search(q, k=15, filter=flt)
    assert_hits_match(hits, base[allowed], allowed, q, 15, "euclidean")
    ids, dists = db.batch_search(q[None, :], k=15, filter=flt)
    want_ids, _ = brute_force(base[allowed], allowed, q, 15, "euclidean")
    assert ids.shape == (1, 15)
    assert ids[0, : len(want_ids)].tolist() == [i for i, _ in hits]
    assert (ids[0, len(want_ids) :] == -1).all()
    assert np.isinf(dists[0, len(want_ids) :]).all()


@pytest.mark.parametrize("config", [cfg(id_type="str")], ids=["str-ids"])
def test_string_id_collections(db: DB, rng: np.random.Generator) -> None:
    assert db.id_type == "str"
    names = [f"doc-{i}-ü" for i in range(20)] + ["漢字", "a b", "x/y?z#"]
    base = rows(rng, len(names))
    assert db.bulk_add(names, base, [{"i": i} for i in range(len(names))]) == len(names)
    assert db.get("漢字") is not None
    assert db.get("x/y?z#") is not None
    assert db.contains("a b")
    assert "nope" not in db
    assert 3 not in db
    hits = db.search(base[20], k=3)
    assert hits[0][0] == "漢字"
    assert all(isinstance(i, str) for i, _ in hits)
    ids, dists = db.batch_search(base[:2], k=3, filter={"i": {"$in": [0, 1]}})
    assert ids.dtype == object
    assert ids.shape == (2, 3)
    assert ids[0, 0] == names[0]
    assert ids[1, 0] == names[1]
    assert ids[0, 2] is None
    assert ids[1, 2] is None
    assert np.isinf(dists[:, 2]).all()
    assert db.get_many(["漢字", "missing", names[0]], include=[])["ids"] == ["漢字", names[0]]
    with pytest.raises(IdTypeError):
        db.add(5, base[0])
    assert db.remove("a b") is True
    assert db.remove("a b") is False
    assert sorted(db.list_ids(), key=lambda s: s.encode()) == db.list_ids()


def test_upsert_and_update_merge(db: DB, rng: np.random.Generator) -> None:
    v1, v2, v3 = rows(rng, 3)
    db.add(7, v1, {"a": 1, "b": "x", "c": 2.5}, "doc one")
    db.update(7, metadata={"a": None, "d": True})  # merge: a removed, d added
    assert fields_and_tags(db.get_metadata(7)) == (
        {"b": ("str", "x"), "c": ("float", 2.5), "d": ("bool", True)},
        [],
    )
    db.update(7, metadata=Metadata.with_data({"e": 5}, ["t1"]))
    assert fields_and_tags(db.get_metadata(7)) == (
        {"b": ("str", "x"), "c": ("float", 2.5), "d": ("bool", True), "e": ("int", 5)},
        ["t1"],
    )
    db.update(7, metadata={"only": 1}, merge=False)
    assert fields_and_tags(db.get_metadata(7)) == ({"only": ("int", 1)}, [])
    db.update(7, vector=v2)
    got = db.get(7)
    assert got is not None
    assert got.to_numpy().tobytes() == v2.tobytes()
    assert db.get_document(7) == "doc one"
    db.update(7, document="doc two")
    assert db.get_document(7) == "doc two"
    # upsert of an existing id: the vector is replaced, metadata and document kept
    # when not given, replaced when given.
    db.upsert(7, v3)
    got = db.get(7)
    assert got is not None
    assert got.to_numpy().tobytes() == v3.tobytes()
    assert fields_and_tags(db.get_metadata(7)) == ({"only": ("int", 1)}, [])
    assert db.get_document(7) == "doc two"
    db.upsert(7, v1, {"new": "yes"}, "doc three")
    assert fields_and_tags(db.get_metadata(7)) == ({"new": ("str", "yes")}, [])
    assert db.get_document(7) == "doc three"
    db.upsert(8, v2)
    assert len(db) == 2
    assert db.bulk_upsert([8, 9], np.stack([v1, v3]), [None, {"z": 0}], ["d8", None]) == 2
    got8 = db.get(8)
    assert got8 is not None
    assert got8.to_numpy().tobytes() == v1.tobytes()
    assert db.get_document(8) == "d8"
    assert fields_and_tags(db.get_metadata(9)) == ({"z": ("int", 0)}, [])
    assert len(db) == 3


def test_remove_delete_and_clear_counts(db: DB, rng: np.random.Generator) -> None:
    filtered_db(db, rng, n=60)
    assert db.remove(0) is True
    assert db.remove(0) is False
    assert db.bulk_remove([1, 2, 3, 1000]) == 3
    assert len(db) == 56
    # cat == "red" for i % 3 == 0: 3..57 step 3 minus 0 and 3 removed already.
    assert db.delete(filter={"cat": "red"}) == 18
    assert db.delete(ids=[4, 5, 6, 999]) == 2
    assert db.delete(ids=[7, 8, 10], filter={"n": {"$gte": 8}}) >= 0
    remaining = len(db)
    assert remaining == db.count()
    with pytest.raises(TypeError):
        db.delete()
    with pytest.raises(InvalidArgumentError):
        db.delete(filter={})
    assert len(db) == remaining
    assert db.clear() == remaining
    assert len(db) == 0
    assert db.clear() == 0


def test_delete_with_ids_and_filter_removes_those_allowed(db: DB, rng: np.random.Generator) -> None:
    _, metas, tags = filtered_db(db, rng, n=30)
    flt = {"n": {"$gte": 25}}
    ids = [0, 1, 26]
    # Both given: the records among ids that the filter allows.
    want = {i for i in ids if matches(flt, metas[i], tags[i])}
    assert db.delete(ids=ids, filter=flt) == len(want)
    assert set(db.list_ids()) == set(range(30)) - want


def test_get_many_include_limit_offset_after(db: DB, rng: np.random.Generator) -> None:
    base, metas, tags = filtered_db(db, rng, n=40)
    db.update(5, document="five")
    full = db.get_many()
    assert list(full) == ["ids", "vectors", "metadatas", "documents"]
    assert full["ids"] == list(range(40))
    assert full["vectors"].shape == (40, DIM)
    assert full["vectors"].tobytes() == base.tobytes()
    assert [fields_and_tags(m) for m in full["metadatas"]] == [
        fields_and_tags(Metadata.with_data(m, t)) for m, t in zip(metas, tags)
    ]
    assert full["documents"][5] == "five"
    assert full["documents"].count(None) == 39

    only = db.get_many([9, 3, 100, 9, 4], include=["metadata"])
    assert list(only) == ["ids", "metadatas"]
    assert only["ids"] == [9, 3, 4]
    assert [m["n"] for m in only["metadatas"]] == [9, 3, 4]

    assert db.get_many(include=[])["ids"] == list(range(40))
    vec = db.get_many(include=["vector"], limit=0)
    assert vec["ids"] == []
    assert vec["vectors"].shape == (0, DIM)
    assert vec["vectors"].dtype == np.float32
    assert db.get_many(include=[], limit=5, offset=3)["ids"] == [3, 4, 5, 6, 7]
    assert db.get_many(include=[], after=35)["ids"] == [36, 37, 38, 39]
    assert db.get_many(include=[], after=10, limit=3, offset=1)["ids"] == [12, 13, 14]
    evens = db.get_many(include=["document"], filter={"$tags": {"$all": ["even"]}}, limit=3)
    assert evens["ids"] == [0, 2, 4]
    assert evens["documents"] == [None, None, None]
    pages = list(db.iter_pages(include=[], batch_size=15))
    assert [p["ids"] for p in pages] == [list(range(15)), list(range(15, 30)), list(range(30, 40))]
    assert list(db) == list(range(40))
    with pytest.raises(InvalidArgumentError):
        db.get_many(limit=-1)
    with pytest.raises(TypeError):
        db.get_many(limit=1.5)  # type: ignore[arg-type]


def test_count_with_filter(db: DB, rng: np.random.Generator) -> None:
    _, metas, tags = filtered_db(db, rng, n=90)
    for flt in FILTERS:
        assert db.count(flt) == sum(matches(flt, m, t) for m, t in zip(metas, tags))
    assert db.count() == 90
    assert db.count({}) == 90


def test_batch_search_width_and_padding(db: DB, rng: np.random.Generator) -> None:
    base = rows(rng, 5)
    db.bulk_add([10, 11, 12, 13, 14], base, [{"g": i % 2} for i in range(5)])
    queries = rows(rng, 4)
    ids, dists = db.batch_search(queries, k=50)  # k larger than the count: width 5
    assert ids.shape == dists.shape == (4, 5)
    assert sorted(ids[0].tolist()) == [10, 11, 12, 13, 14]
    assert np.isfinite(dists).all()
    # A filter matching 3 rows: width stays min(k, count), padded with -1 / inf.
    ids, dists = db.batch_search(queries, k=4, filter={"g": 0})
    assert ids.shape == dists.shape == (4, 4)
    assert (ids[:, 3] == -1).all()
    assert np.isinf(dists[:, 3]).all()
    assert all(set(r[:3].tolist()) == {10, 12, 14} for r in ids)
    # A filter matching nothing: all padding.
    ids, dists = db.batch_search(queries[:1], k=2, filter={"g": 7})
    assert ids.tolist() == [[-1, -1]]
    assert np.isinf(dists).all()
    # With include: a dict, NaN vector rows and None entries for the padding.
    out = db.batch_search(
        queries[:2], k=4, filter={"g": 0}, include=["vector", "metadata", "document"]
    )
    assert sorted(out) == ["distances", "documents", "ids", "metadatas", "vectors"]
    assert out["ids"].shape == (2, 4)
    assert out["vectors"].shape == (2, 4, DIM)
    assert out["vectors"].dtype == np.float32
    assert np.isnan(out["vectors"][:, 3]).all()
    for r in range(2):
        for c in range(3):
            row = int(out["ids"][r, c]) - 10
            assert out["vectors"][r, c].tobytes() == base[row].tobytes()
            assert out["metadatas"][r][c]["g"] == 0
        assert out["metadatas"][r][3] is None
        assert out["documents"][r] == [None, None, None, None]
    # No queries: shape (0, min(k, count)).
    empty_ids, empty_d = db.batch_search(np.zeros((0, DIM), np.float32), k=3)
    assert empty_ids.shape == empty_d.shape == (0, 3)
    empty_ids, empty_d = db.batch_search([], k=30)
    assert empty_ids.shape == empty_d.shape == (0, 5)


def test_search_include_gives_hits(db: DB, rng: np.random.Generator) -> None:
    base = rows(rng, 6)
    db.bulk_add(list(range(6)), base, [{"i": i} for i in range(6)], [f"d{i}" for i in range(6)])
    hits = db.search(base[2], k=3, include=["vector", "metadata", "document"])
    assert hits[0].id == 2
    assert hits[0].distance == 0.0
    assert hits[0].vector is not None
    assert hits[0].vector.tobytes() == base[2].tobytes()
    assert hits[0].metadata is not None
    assert hits[0].metadata["i"] == 2
    assert hits[0].document == "d2"
    bare = db.search(base[2], k=3, include=[])
    assert [h.id for h in bare] == [h.id for h in hits]
    assert bare[0].vector is None
    assert bare[0].metadata is None
    assert bare[0].document is None
    plain = db.search(base[2], k=3)
    assert [(h.id, h.distance) for h in hits] == plain


def test_stats_and_snapshots(db: DB, rng: np.random.Generator) -> None:
    db.bulk_add([1, 2, 3], rows(rng, 3), [{"a": 1}, {"b": 2}, None])
    s = db.stats()
    assert s.vector_count == 3
    assert s.dimension == s.dim == DIM
    assert s.index_type == "flat"
    assert s.distance_metric == "euclidean"
    assert s.metric == db.metric
    assert s.metadata_keys == ["a", "b"]
    assert s.deleted_count == 0
    assert s.memory_bytes > 0
    assert sum(s.memory_by_part.values()) == s.memory_bytes
    assert s.disk_bytes > 0

    name = db.snapshot()
    assert isinstance(name, str)
    assert name
    assert db.snapshot_named("before") == "before"
    assert db.snapshot_with_metadata("tagged", {"why": "test"}) == "tagged"
    with pytest.raises(NusterDBIOError) as taken:
        db.snapshot_named("before")
    assert taken.value.errno == errno.EEXIST
    snaps = db.list_snapshots()
    # Oldest first (snapshots made within one second are ordered by name).
    assert sorted(s["name"] for s in snaps) == sorted([name, "before", "tagged"])
    assert [s["created_at"] for s in snaps] == sorted(s["created_at"] for s in snaps)
    assert {s["name"]: s["metadata"] for s in snaps}["tagged"] == {"why": "test"}
    assert all(s["vector_count"] == 3 for s in snaps)
    db.clear()
    db.add(50, rows(rng, 1)[0])
    db.restore_snapshot("before")
    assert sorted(db.list_ids()) == [1, 2, 3]
    assert len(db.list_snapshots()) == 3
    db.delete_snapshot(name)
    assert sorted(s["name"] for s in db.list_snapshots()) == ["before", "tagged"]
    with pytest.raises(InvalidArgumentError):
        db.restore_snapshot("before", keep_snapshots=False)


# ------------------------------------------------------------------------------ exceptions


def _nan_row() -> F32:
    v = np.ones(DIM, dtype=np.float32)
    v[3] = np.nan
    return v


ERROR_CASES: Dict[str, Tuple[Type[BaseException], Any]] = {
    "dim-add": (DimensionMismatchError, lambda db: db.add(100, np.ones(DIM - 1, np.float32))),
    "dim-search": (DimensionMismatchError, lambda db: db.search(np.ones(DIM + 1, np.float32))),
    "dim-bulk": (DimensionMismatchError, lambda db: db.bulk_add([100, 101], np.ones((2, 5)))),
    "dim-batch": (DimensionMismatchError, lambda db: db.batch_search(np.ones((2, 5)))),
    "dim-update": (DimensionMismatchError, lambda db: db.update(1, np.ones(3))),
    "dup-add": (DuplicateIdError, lambda db: db.add(1, np.ones(DIM))),
    "dup-bulk-existing": (DuplicateIdError, lambda db: db.bulk_add([100, 1], np.ones((2, DIM)))),
    "dup-bulk-repeated": (DuplicateIdError, lambda db: db.bulk_add([100, 100], np.ones((2, DIM)))),
    "update-absent": (IdNotFoundError, lambda db: db.update(12345, np.ones(DIM))),
    "update-absent-metadata": (IdNotFoundError, lambda db: db.update(12345, metadata={"a": 1})),
    "filter-search": (FilterError, lambda db: db.search(np.ones(DIM), filter={"a": {"$bad": 1}})),
    "filter-count": (FilterError, lambda db: db.count({"$nope": []})),
    "filter-delete": (FilterError, lambda db: db.delete(filter={"a": {"$in": 3}})),
    "filter-get-many": (FilterError, lambda db: db.get_many(filter={"$and": 5})),
    "k-zero": (ValueError, lambda db: db.search(np.ones(DIM), k=0)),
    "k-zero-batch": (ValueError, lambda db: db.batch_search(np.ones((1, DIM)), k=0)),
    "nan-add": (InvalidVectorError, lambda db: db.add(100, _nan_row())),
    "nan-search": (InvalidVectorError, lambda db: db.search(_nan_row())),
    "inf-upsert": (InvalidVectorError, lambda db: db.upsert(100, np.full(DIM, np.inf))),
    # A bad row of a batch is an InvalidArgumentError naming the row (as embedded).
    "nan-bulk": (
        InvalidArgumentError,
        lambda db: db.bulk_add([100, 101], np.stack([np.ones(DIM), _nan_row()])),
    ),
    "nan-batch": (
        InvalidArgumentError,
        lambda db: db.batch_search(np.stack([np.ones(DIM), _nan_row()])),
    ),
    "empty-vector": (InvalidVectorError, lambda db: db.add(100, [])),
    "str-id-add": (IdTypeError, lambda db: db.add("x", np.ones(DIM))),
    "str-id-get": (IdTypeError, lambda db: db.get("x")),
    "str-id-contains": (IdTypeError, lambda db: db.contains("x")),
    "str-id-remove": (IdTypeError, lambda db: db.remove("x")),
    "str-id-bulk": (IdTypeError, lambda db: db.bulk_add([100, "y"], np.ones((2, DIM)))),
    "bad-include": (InvalidArgumentError, lambda db: db.get_many(include=["bogus"])),
    "ef-search-zero": (InvalidArgumentError, lambda db: db.search(np.ones(DIM), ef_search=0)),
    "negative-offset": (InvalidArgumentError, lambda db: db.get_many(offset=-1)),
    "ids-vectors-count": (ValueError, lambda db: db.bulk_add([100, 101], np.ones((1, DIM)))),
    "metadata-count": (ValueError, lambda db: db.bulk_add([100], np.ones((1, DIM)), [{}, {}])),
    "metadata-nan": (InvalidArgumentError, lambda db: db.add(100, np.ones(DIM), {"f": math.nan})),
    "metadata-type": (TypeError, lambda db: db.add(100, np.ones(DIM), {"f": [1]})),
    "document-type": (TypeError, lambda db: db.add(100, np.ones(DIM), None, 5)),
    "delete-nothing": (TypeError, lambda db: db.delete()),
    "queries-1d": (ValueError, lambda db: db.batch_search(np.zeros(DIM))),
    "queries-flat-list": (TypeError, lambda db: db.batch_search([1.0] * DIM)),
    "vectors-3d": (ValueError, lambda db: db.bulk_add([100], np.zeros((1, 2, DIM)))),
    "ragged-bulk": (
        DimensionMismatchError,
        lambda db: db.bulk_add([100, 101], [[1.0] * DIM, [1.0] * 3]),
    ),
    "ragged-batch": (DimensionMismatchError, lambda db: db.batch_search([[1.0] * DIM, [1.0]])),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_the_same_class(db: DB, rng: np.random.Generator, case: str) -> None:
    cls, call = ERROR_CASES[case]
    db.bulk_add([1, 2, 3], rows(rng, 3), [{"a": 1}, None, None])
    before = (db.list_ids(), db.get_many()["vectors"].tobytes())
    with pytest.raises(cls) as info:
        call(db)
    assert info.type is cls, f"{case}: raised {info.type.__name__}: {info.value}"
    # A refused call changes nothing.
    assert (db.list_ids(), db.get_many()["vectors"].tobytes()) == before


def test_nan_message_names_the_position(db: DB) -> None:
    with pytest.raises(InvalidVectorError, match=r"non-finite value \(NaN\) at position 3"):
        db.add(1, _nan_row())
    with pytest.raises(InvalidVectorError, match=r"non-finite value \(-inf\) at position 0"):
        db.search([-math.inf] + [0.0] * (DIM - 1))


# ------------------------------------------------------------------------------ property

_scalars = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_keys = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_tags = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8),
    max_size=3,
    unique=True,
)
_f32 = st.floats(width=32, min_value=-(2.0**56), max_value=2.0**56, allow_nan=False)
PDIM = 4


@st.composite
def batches(draw: st.DrawFn) -> List[Tuple[int, List[float], Optional[Metadata], Optional[str]]]:
    ids = draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=8, unique=True))
    out = []
    for i in ids:
        vec = draw(st.lists(_f32, min_size=PDIM, max_size=PDIM))
        meta = draw(
            st.none()
            | st.builds(Metadata.with_data, st.dictionaries(_keys, _scalars, max_size=4), _tags)
        )
        doc = draw(
            st.none() | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)
        )
        out.append((i, vec, meta, doc))
    return out


def _state(db: DB) -> Tuple[List[Any], bytes, List[Any], List[Optional[str]]]:
    got = db.get_many()
    return (
        got["ids"],
        got["vectors"].tobytes(),
        [fields_and_tags(m) for m in got["metadatas"]],
        got["documents"],
    )


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches(), query=st.lists(_f32, min_size=PDIM, max_size=PDIM), upsert=st.booleans())
def test_random_batches_round_trip_identically(
    client: Client,
    tmp_path: Path,
    batch: List[Tuple[int, List[float], Optional[Metadata], Optional[str]]],
    query: List[float],
    upsert: bool,
) -> None:
    name = new_name()
    config = cfg(dim=PDIM)
    remote = client.create_collection(name, config)
    local = NusterDB(tmp_path / name, config)
    try:
        ids = [i for i, _, _, _ in batch]
        vectors = np.asarray([v for _, v, _, _ in batch], dtype=np.float32)
        metas = [m for _, _, m, _ in batch]
        docs = [d for _, _, _, d in batch]
        outcomes = []
        for db in (local, remote):
            try:
                if upsert:
                    db.add(ids[0], np.ones(PDIM, np.float32))
                    n = db.bulk_upsert(ids, vectors, metas, docs)
                else:
                    n = db.bulk_add(ids, vectors, metas, docs)
            except NusterDBError as exc:
                # A vector whose norm is out of range: refused alike by both.
                outcomes.append(type(exc).__name__)
            else:
                assert n == len(ids)
                outcomes.append("ok")
        assert outcomes[0] == outcomes[1]
        local_state = _state(local)
        assert local_state == _state(remote)
        if outcomes[0] != "ok":
            return
        want_meta = [fields_and_tags(m if m is not None else Metadata()) for m in metas]
        order = np.argsort(np.asarray(ids), kind="stable")
        assert local_state[0] == sorted(ids)
        assert local_state[1] == vectors[order].tobytes()
        assert local_state[2] == [want_meta[r] for r in order]
        assert local_state[3] == [docs[r] for r in order]
        local_hits: Any
        try:
            local_hits = local.search(query, k=5)
        except NusterDBError as exc:
            local_hits = type(exc)
        try:
            remote_hits: Any = remote.search(query, k=5)
        except NusterDBError as exc:
            remote_hits = type(exc)
        assert local_hits == remote_hits
    finally:
        local.close()
        client.drop_collection(name)


@pytest.mark.parametrize("config", [DatabaseConfig(DIM, "hnsw", "cosine")])
def test_quantized_walks_and_progress_reports(db: DB, rng: np.random.Generator) -> None:
    base = rows(rng, 300)
    seen: List[Tuple[str, int, int]] = []
    assert db.bulk_add(list(range(300)), base, progress=lambda *a: seen.append(a)) == 300
    assert seen
    assert seen[-1][1:] == (300, 300)
    on_rows = db.search(base[7], k=5, ef_search=64, quantized=False)
    assert on_rows[0][0] == 7
    assert len(db.search(base[7], k=5, quantized=True)) == 5
    seen.clear()
    ids, _ = db.batch_search(base[:40], k=3, quantized=False, progress=lambda *a: seen.append(a))
    assert [int(r[0]) for r in ids] == list(range(40))
    assert seen
    assert seen[-1][1:] == (40, 40)
    assert all(phase == "searching" for phase, _, _ in seen)


@pytest.mark.parametrize("config", [cfg()])
def test_quantized_true_is_refused_without_codes(db: DB, rng: np.random.Generator) -> None:
    db.bulk_add([1, 2], rows(rng, 2))
    with pytest.raises(InvalidArgumentError, match="quantized=True"):
        db.search(rows(rng, 1)[0], k=1, quantized=True)
    with pytest.raises(InvalidArgumentError, match="quantized=True"):
        db.batch_search(rows(rng, 2), k=1, quantized=True)


def test_metadata_bookkeeping_comes_back_as_stored(db: DB, rng: np.random.Generator) -> None:
    db.add(1, rows(rng, 1)[0], {"a": 1})
    db.update(1, metadata={"b": 2})
    m = db.get_metadata(1)
    assert m is not None
    assert m.version == 2
    assert m.created_at > 0
    assert m.updated_at >= m.created_at
