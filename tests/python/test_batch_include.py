"""batch_search(..., include=[...]): the same hits as the plain batch_search, with each
hit's payload equal to get_many of its id, padding where a row has fewer hits, and the
payload read under the search's lock (a writer cannot pair a hit with other data)."""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import DatabaseConfig, InvalidArgumentError, Metadata, NusterDB

DIM = 5
ALL = ["vector", "metadata", "document"]


def key(ids: str, i: int) -> Any:
    return f"k-{i:03d}-é" if ids == "str" else i * 7


def make(ids: str, index: str = "flat", n: int = 40, seed: int = 0) -> NusterDB:
    db = NusterDB(None, DatabaseConfig(DIM, index_type=index, id_type=ids))
    if n:
        data = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
        db.bulk_add(
            [key(ids, i) for i in range(n)],
            data,
            [Metadata.with_data({"g": i % 4, "i": i}, tags=[f"t{i % 2}"]) for i in range(n)],
            documents=[f"doc {i}" if i % 3 else None for i in range(n)],
        )
    return db


def is_pad(ids: str, v: Any) -> bool:
    return v is None if ids == "str" else int(v) == -1


def check_against_references(
    db: NusterDB, ids: str, q: np.ndarray, k: int, flt: Optional[Dict[str, Any]], include: List[str]
) -> Dict[str, Any]:
    plain_ids, plain_d = db.batch_search(q, k, filter=flt)
    got = db.batch_search(q, k, filter=flt, include=include)
    assert isinstance(got, dict)
    expected_keys = {"ids", "distances"} | {
        {"vector": "vectors", "metadata": "metadatas", "document": "documents"}[n] for n in include
    }
    assert set(got) == expected_keys
    # The hits are the plain batch_search's, cell for cell.
    assert got["ids"].dtype == plain_ids.dtype
    assert got["ids"].shape == plain_ids.shape
    assert got["ids"].tolist() == plain_ids.tolist()
    assert np.array_equal(got["distances"], plain_d)
    n, w = plain_ids.shape
    if "vector" in include:
        assert got["vectors"].dtype == np.float32
        assert got["vectors"].shape == (n, w, DIM)
    for name in ("metadatas", "documents"):
        if name in got:
            assert len(got[name]) == n
            assert all(len(row) == w for row in got[name])
    for r in range(n):
        row = got["ids"][r].tolist()
        real = [x for x in row if not is_pad(ids, x)]
        # Padding only at the end of a row.
        assert all(not is_pad(ids, x) for x in row[: len(real)])
        ref = db.get_many(real, include=ALL)
        assert ref["ids"] == real
        for j in range(w):
            pad = j >= len(real)
            if "vector" in include:
                if pad:
                    assert np.isnan(got["vectors"][r, j]).all()
                else:
                    assert np.array_equal(got["vectors"][r, j], ref["vectors"][j])
            if "metadata" in include:
                m = got["metadatas"][r][j]
                if pad:
                    assert m is None
                else:
                    assert m == ref["metadatas"][j]
                    assert m.tags() == ref["metadatas"][j].tags()
            if "document" in include:
                d = got["documents"][r][j]
                assert (d is None) if pad else (d == ref["documents"][j])
            if pad:
                assert got["distances"][r, j] == np.inf
    return got


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_payload_equals_get_many_of_the_plain_hits(ids: str, index: str) -> None:
    db = make(ids, index)
    q = np.random.default_rng(1).standard_normal((6, DIM)).astype(np.float32)
    for include in (ALL, ["metadata"], ["document"], ["vector"], ["document", "vector"], []):
        check_against_references(db, ids, q, 7, None, include)


@pytest.mark.parametrize("ids", ["int", "str"])
def test_flat_hits_match_numpy_brute_force(ids: str) -> None:
    db = make(ids)
    stored = db.get_many(include=["vector"])
    q = np.random.default_rng(2).standard_normal((4, DIM)).astype(np.float32)
    got = db.batch_search(q, 5, include=["vector"])
    for r in range(len(q)):
        d = np.linalg.norm(stored["vectors"].astype(np.float64) - q[r], axis=1)
        order = np.argsort(d, kind="stable")[:5]
        assert np.allclose(got["distances"][r], d[order], rtol=1e-5, atol=1e-5)
        assert np.array_equal(got["vectors"][r], stored["vectors"][order])


@pytest.mark.parametrize("ids", ["int", "str"])
def test_padding_when_k_exceeds_the_records_or_the_filter(ids: str) -> None:
    db = make(ids, n=10)
    q = np.random.default_rng(3).standard_normal((3, DIM)).astype(np.float32)
    got = check_against_references(db, ids, q, 25, None, ALL)
    assert got["ids"].shape == (3, 10)  # width min(k, count)
    # A filter allowing 3 of the 10: 7 padding cells per row.
    got = check_against_references(db, ids, q, 25, {"g": 1}, ALL)
    assert got["ids"].shape == (3, 10)
    for r in range(3):
        assert sum(not is_pad(ids, x) for x in got["ids"][r].tolist()) == 3
        assert got["metadatas"][r][3:] == [None] * 7
        assert got["documents"][r][3:] == [None] * 7
        assert np.isnan(got["vectors"][r, 3:]).all()
        assert all(m["g"] == 1 for m in got["metadatas"][r][:3])


@pytest.mark.parametrize("ids", ["int", "str"])
def test_empty_batch_and_empty_database(ids: str) -> None:
    db = make(ids, n=8)
    got = db.batch_search(np.zeros((0, DIM), np.float32), 4, include=ALL)
    assert got["ids"].shape == (0, 4)
    assert got["distances"].shape == (0, 4)
    assert got["vectors"].shape == (0, 4, DIM)
    assert got["metadatas"] == []
    assert got["documents"] == []
    empty = make(ids, n=0)
    got = empty.batch_search(np.ones((2, DIM), np.float32), 4, include=ALL)
    assert got["ids"].shape == (2, 0)
    assert got["vectors"].shape == (2, 0, DIM)
    assert got["metadatas"] == [[], []]
    assert got["documents"] == [[], []]


@pytest.mark.parametrize("ids", ["int", "str"])
def test_include_none_keeps_the_tuple(ids: str) -> None:
    db = make(ids)
    q = np.ones((2, DIM), np.float32)
    for res in (db.batch_search(q, 3), db.batch_search(q, 3, include=None)):
        assert type(res) is tuple
        assert len(res) == 2
        a, d = res
        assert a.dtype == (np.dtype(object) if ids == "str" else np.int64)
        assert d.dtype == np.float32
        assert a.shape == d.shape == (2, 3)


@pytest.mark.parametrize("ids", ["int", "str"])
def test_bad_include_is_refused_and_changes_nothing(ids: str) -> None:
    db = make(ids)
    before = db.get_many()
    q = np.ones((2, DIM), np.float32)
    with pytest.raises(TypeError, match="single str"):
        db.batch_search(q, 3, include="metadata")
    with pytest.raises(InvalidArgumentError, match="unknown include name"):
        db.batch_search(q, 3, include=["metadata", "distance"])
    with pytest.raises(TypeError):
        db.batch_search(q, 3, include={"vector": True})  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        db.batch_search(q, 3, include=[1])  # type: ignore[list-item]
    after = db.get_many()
    assert after["ids"] == before["ids"]
    assert after["documents"] == before["documents"]
    assert np.array_equal(after["vectors"], before["vectors"])


@settings(max_examples=25, deadline=None)
@given(
    ids=st.sampled_from(["int", "str"]),
    n=st.integers(0, 30),
    nq=st.integers(0, 5),
    k=st.integers(1, 40),
    g=st.one_of(st.none(), st.integers(0, 4)),
    include=st.lists(st.sampled_from(ALL), unique=True),
    seed=st.integers(0, 1000),
)
def test_property_payload_and_hits_agree(
    ids: str, n: int, nq: int, k: int, g: Optional[int], include: List[str], seed: int
) -> None:
    db = make(ids, n=n, seed=seed)
    q = np.random.default_rng(seed + 1).standard_normal((nq, DIM)).astype(np.float32)
    check_against_references(db, ids, q, k, None if g is None else {"g": g}, include)


@pytest.mark.parametrize("ids", ["int", "str"])
def test_payload_is_read_under_the_search_lock(ids: str) -> None:
    """A writer keeps rewriting every record so that vector[0], metadata["x"] and the
    document all carry the same number; every hit's payload must agree with itself and
    with its distance (a payload read after the search could pair other data)."""
    n = 30
    db = NusterDB(None, DatabaseConfig(DIM, id_type=ids))
    keys = [key(ids, i) for i in range(n)]

    def rows(x: int) -> np.ndarray:
        v = np.zeros((n, DIM), np.float32)
        v[:, 0] = x
        v[:, 1] = np.arange(n)
        return v

    db.bulk_add(keys, rows(0), [{"x": 0}] * n, documents=["0"] * n)
    stop = threading.Event()

    def writer() -> None:
        x = 0
        while not stop.is_set():
            x += 1
            db.bulk_upsert(keys, rows(x), [{"x": x}] * n, documents=[str(x)] * n)

    t = threading.Thread(target=writer)
    t.start()
    try:
        q = np.zeros((4, DIM), np.float32)
        q[:, 1] = [0, 5, 10, 20]
        for _ in range(60):
            got = db.batch_search(q, 5, include=ALL)
            for r in range(len(q)):
                for j in range(5):
                    vec = got["vectors"][r, j]
                    x = int(vec[0])
                    assert got["metadatas"][r][j]["x"] == x
                    assert got["documents"][r][j] == str(x)
                    assert got["distances"][r, j] == pytest.approx(
                        float(np.linalg.norm(vec - q[r])), rel=1e-5, abs=1e-4
                    )
    finally:
        stop.set()
        t.join()
