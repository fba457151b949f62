"""iter_records / iter_pages / iter(db): every record in id order, a page at a time with
the after= cursor; writes between pages act as on a cursor (checked against a model);
batch_size validation as get_many's limit; a closed handle."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, Set

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import (
    ClosedError,
    DatabaseConfig,
    FilterError,
    InvalidArgumentError,
    NusterDB,
    Record,
    RecordIterator,
)

DIM = 3


def key(ids: str, i: int) -> Any:
    return f"r{i:04d}-ü" if ids == "str" else i


def order(keys: List[Any]) -> List[Any]:
    return sorted(keys, key=lambda k: k.encode() if isinstance(k, str) else k)


def vec(i: int) -> List[float]:
    return [float(i), float(i % 7), 1.0]


def make(ids: str, n: int = 25) -> NusterDB:
    db = NusterDB(None, DatabaseConfig(DIM, id_type=ids))
    if n:
        db.bulk_add(
            [key(ids, i) for i in range(n)],
            np.array([vec(i) for i in range(n)], np.float32),
            [{"g": i % 3} for i in range(n)],
            documents=[f"d{i}" if i % 2 else None for i in range(n)],
        )
    return db


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("batch_size", [1, 4, 25, 26, 1000])
def test_records_equal_get_many_in_id_order(ids: str, batch_size: int) -> None:
    db = make(ids)
    ref = db.get_many()
    got = list(db.iter_records(batch_size=batch_size))
    assert all(type(r) is Record for r in got)
    assert [r.id for r in got] == ref["ids"] == order(ref["ids"])
    for j, r in enumerate(got):
        assert r.vector is not None
        assert r.vector.dtype == np.float32
        assert np.array_equal(r.vector, ref["vectors"][j])
        assert r.metadata == ref["metadatas"][j]
        assert r.document == ref["documents"][j]
        assert repr(r).startswith(f"Record(id={r.id!r}")
    with pytest.raises(AttributeError):
        got[0].id = 5  # type: ignore[misc]
    pages = list(db.iter_pages(batch_size=batch_size))
    assert all(0 < len(p["ids"]) <= batch_size for p in pages)
    assert [i for p in pages for i in p["ids"]] == ref["ids"]
    assert np.array_equal(np.concatenate([p["vectors"] for p in pages]), ref["vectors"])
    assert [d for p in pages for d in p["documents"]] == ref["documents"]


@pytest.mark.parametrize("ids", ["int", "str"])
def test_include_and_filter(ids: str) -> None:
    db = make(ids)
    flt = {"g": {"$in": [0, 2]}}
    ref = db.get_many(filter=flt, include=["document"])
    got = list(db.iter_records(filter=flt, include=["document"], batch_size=3))
    assert [r.id for r in got] == ref["ids"]
    assert [r.document for r in got] == ref["documents"]
    assert all(r.vector is None and r.metadata is None for r in got)
    pages = list(db.iter_pages(filter=flt, include=[], batch_size=5))
    assert all(set(p) == {"ids"} for p in pages)
    assert [i for p in pages for i in p["ids"]] == ref["ids"]
    assert list(db.iter_records(filter={"g": 99})) == []
    with pytest.raises(FilterError):
        db.iter_records(filter={"g": {"$bogus": 1}})
    with pytest.raises(InvalidArgumentError):
        db.iter_pages(include=["vectors"])


@pytest.mark.parametrize("ids", ["int", "str"])
def test_iter_db_yields_ids_lazily(ids: str) -> None:
    db = make(ids, n=2500)
    it = iter(db)
    assert type(it) is RecordIterator
    assert iter(it) is it
    assert next(it) == key(ids, 0)
    rest = list(it)
    assert len(rest) == 2499
    # Lazily, a page of 1,000 at a time: after 1,500 ids the third page is unread, so a
    # removal and an add there show; the first page is not read again.
    it = iter(db)
    head = [next(it) for _ in range(1500)]
    assert db.remove(key(ids, 2400))
    db.add(key(ids, 9000), vec(9000))
    assert db.remove(key(ids, 10))  # behind the cursor: already yielded
    tail = list(it)
    assert key(ids, 2400) not in tail
    assert tail[-1] == key(ids, 9000)
    assert head + tail == order([key(ids, i) for i in range(2500) if i != 2400] + [key(ids, 9000)])
    assert list(db) == db.list_ids()
    assert [x for x in db] == order(db.list_ids())
    assert list(make(ids, n=0)) == []
    # Exhausted stays exhausted.
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("ids", ["int", "str"])
def test_batch_size_is_validated_like_limit(ids: str) -> None:
    db = make(ids)
    bads: List[Any] = [-3, -(2**70), True, False, 2.0, "10", np.float64(3)]
    for bad in bads:
        # The same exception class as get_many's limit, and a message naming batch_size.
        with pytest.raises((TypeError, ValueError)) as limit_error:
            db.get_many(limit=bad)
        for make_iter in (db.iter_records, db.iter_pages):
            with pytest.raises(type(limit_error.value), match="batch_size"):
                make_iter(batch_size=bad)
    with pytest.raises(InvalidArgumentError, match="must be 0 or more"):
        db.iter_records(batch_size=-1)
    with pytest.raises(TypeError, match="batch_size must be an int, got bool"):
        db.iter_pages(batch_size=True)
    for make_iter in (db.iter_records, db.iter_pages):
        # 0 is a valid limit but no page size: nothing could make progress.
        with pytest.raises(InvalidArgumentError, match="at least 1"):
            make_iter(batch_size=0)
        assert len(list(make_iter(batch_size=np.int64(7)))) >= 1  # type: ignore[arg-type]
        assert len(list(make_iter(batch_size=None))) >= 1  # type: ignore[arg-type]
    assert len(db) == 25


@pytest.mark.parametrize("ids", ["int", "str"])
def test_closed_handle(ids: str) -> None:
    db = make(ids)
    it = db.iter_records(batch_size=10)
    first = [next(it) for _ in range(10)]
    assert len(first) == 10
    db.close()
    with pytest.raises(ClosedError):
        next(it)  # the next page needs the database
    for call in (db.iter_records, db.iter_pages, lambda: iter(db)):
        with pytest.raises(ClosedError):
            call()


def test_threads_share_an_iterator_without_duplicates() -> None:
    db = make("int", n=3000)
    it = db.iter_records(include=[], batch_size=7)
    seen: List[List[Any]] = [[], [], [], []]

    def drain(out: List[Any]) -> None:
        for r in it:
            out.append(r.id)

    threads = [threading.Thread(target=drain, args=(s,)) for s in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for s in seen for i in s]
    assert sorted(all_ids) == list(range(3000))
    assert all(s == sorted(s) for s in seen)


OPS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "upsert", "none"]), st.integers(0, 59)),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    ids=st.sampled_from(["int", "str"]),
    start=st.sets(st.integers(0, 59), max_size=40),
    batch_size=st.integers(1, 9),
    between=st.lists(OPS, min_size=12, max_size=12),
    pages=st.booleans(),
)
def test_cursor_semantics_under_writes_between_pages(
    ids: str, start: Set[int], batch_size: int, between: List[List[Any]], pages: bool
) -> None:
    """Random adds, removes and upserts between pages, against a model: an id stored
    for the whole iteration is yielded exactly once; every yielded id was stored at
    some point and comes with the data stored then; ids come in strictly increasing
    order (so never twice); no error."""
    db = NusterDB(None, DatabaseConfig(DIM, id_type=ids))
    model: Dict[int, int] = {}  # i -> version
    for i in sorted(start):
        db.add(key(ids, i), vec(i), {"v": 0}, document=f"{i}/0")
        model[i] = 0
    always = set(model)
    ever: Dict[Any, Set[int]] = {key(ids, i): {0} for i in model}
    it: Iterator[Any] = (
        db.iter_pages(batch_size=batch_size) if pages else db.iter_records(batch_size=batch_size)
    )
    got: List[Any] = []
    step = 0
    while True:
        try:
            item = next(it)
        except StopIteration:
            break
        recs = (
            [(i, m, d) for i, m, d in zip(item["ids"], item["metadatas"], item["documents"])]
            if pages
            else [(item.id, item.metadata, item.document)]
        )
        for rid, meta, doc in recs:
            got.append(rid)
            assert meta["v"] in ever[rid]
            assert doc == f"{rid if ids == 'int' else int(rid[1:5])}/{meta['v']}"
        for op, i in between[step % len(between)]:
            k = key(ids, i)
            if op == "add" and i not in model:
                db.add(k, vec(i), {"v": 0}, document=f"{i}/0")
                model[i] = 0
            elif op == "remove" and i in model:
                assert db.remove(k)
                del model[i]
                always.discard(i)
                continue
            elif op == "upsert":
                v = model.get(i, -1) + 1
                db.upsert(k, vec(i), {"v": v}, document=f"{i}/{v}")
                if i not in model:
                    always.discard(i)  # new during the iteration
                model[i] = v
            else:
                continue
            ever.setdefault(k, set()).add(model[i])
        step += 1
    assert got == order(got)
    assert len(set(got)) == len(got)
    yielded = set(got)
    for i in always:
        assert key(ids, i) in yielded
    assert yielded <= set(ever)
