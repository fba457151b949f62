"""Managing records by filter and in pages: count(filter), get_many(ids=None, filter,
limit, offset, after), delete(ids, filter) and clear(), against a plain-Python model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import (
    ConfigMismatchError,
    CorruptionError,
    DatabaseConfig,
    DatabaseNotFoundError,
    DuplicateIdError,
    FilterError,
    IdTypeError,
    InvalidArgumentError,
    NotADatabaseError,
    NusterDB,
    NusterDBIOError,
)

DIM = 4


def make(ids: str, path: Any = None, n: int = 60) -> tuple[NusterDB, List[Any], np.ndarray]:
    db = NusterDB(path, DatabaseConfig(DIM, index_type="hnsw", id_type=ids))
    keys: List[Any] = [f"id-{i * 13 % 97:02d}" if ids == "str" else i * 13 % 97 for i in range(n)]
    data = np.random.default_rng(n).standard_normal((n, DIM)).astype(np.float32)
    db.bulk_add(
        keys, data, [{"g": i % 3, "i": i} for i in range(n)], documents=[f"d{i}" for i in range(n)]
    )
    return db, keys, data


def order(keys: List[Any]) -> List[Any]:
    return sorted(keys, key=lambda k: k.encode() if isinstance(k, str) else k)


@pytest.mark.parametrize("ids", ["int", "str"])
def test_count_and_pages_by_offset_and_cursor(ids: str) -> None:
    db, keys, data = make(ids)
    assert db.count() == len(db) == 60
    assert db.count({"g": 1}) == 20
    assert db.count({"g": {"$in": [0, 2]}, "i": {"$lt": 30}}) == 20
    want = order(keys)
    pages: List[Any] = []
    cursor: List[Any] = []
    offset = 0
    while True:
        page = db.get_many(limit=7, offset=offset, include=[])
        after = cursor[-1] if cursor else None
        nxt = db.get_many(limit=7, after=after, include=[])
        if not page["ids"]:
            assert nxt["ids"] == []
            break
        pages += page["ids"]
        cursor += nxt["ids"]
        offset += 7
    assert pages == want
    assert cursor == want
    everything = db.get_many()
    assert everything["ids"] == want
    i = keys.index(want[0])
    np.testing.assert_array_equal(everything["vectors"][0], data[i])
    assert everything["documents"][0] == f"d{i}"
    g1 = db.get_many(filter={"g": 1}, include=["metadata"])
    assert g1["ids"] == [k for k in want if keys.index(k) % 3 == 1]
    assert all(m.to_dict()["g"] == 1 for m in g1["metadatas"])
    asked = [keys[4], keys[1], keys[7]]
    assert db.get_many(asked, filter={"g": 1}, include=[])["ids"] == [keys[4], keys[1], keys[7]]
    assert db.get_many(asked, filter={"g": 0}, include=[])["ids"] == []
    assert db.get_many(asked, limit=1, offset=1, include=[])["ids"] == [keys[1]]


@pytest.mark.parametrize("ids", ["int", "str"])
def test_delete_by_filter_and_ids_then_clear(tmp_path: Path, ids: str) -> None:
    db, keys, data = make(ids, str(tmp_path / "db"))
    assert db.delete(filter={"g": 2}) == 20
    assert db.count({"g": 2}) == 0
    assert db.delete(ids=[keys[0], keys[3], keys[2]], filter={"g": 0}) == 2  # keys[2] is g=2
    assert keys[0] not in db
    assert keys[1] in db
    with pytest.raises(TypeError, match="clear"):
        db.delete()
    with pytest.raises(FilterError):
        db.delete(filter={"g": {"$bogus": 1}})
    assert len(db) == 38
    db.close()
    db = NusterDB.open(str(tmp_path / "db"))
    assert len(db) == 38
    assert db.clear() == 38
    assert len(db) == 0
    assert db.list_ids() == []
    assert db.search(data[0], k=3) == []
    assert db.get_document(keys[1]) is None
    db.bulk_add(keys[:3], data[:3])
    assert db.search(data[1], k=1)[0][0] == keys[1]
    db.close()
    with NusterDB.open(str(tmp_path / "db")) as db:
        assert order(db.list_ids()) == order(keys[:3])


def test_bad_selection_arguments_are_refused() -> None:
    db, keys, _ = make("str")
    with pytest.raises(IdTypeError):
        db.get_many(after=5)
    with pytest.raises(ValueError, match="without ids"):
        db.get_many([keys[0]], after=keys[1])
    with pytest.raises(InvalidArgumentError, match="limit must be 0 or more"):
        db.get_many(limit=-1)
    assert len(db) == 60


@settings(max_examples=30, deadline=None)
@given(
    groups=st.lists(st.integers(0, 3), min_size=0, max_size=40),
    g=st.integers(0, 3),
    offset=st.integers(0, 45),
    limit=st.one_of(st.none(), st.integers(0, 45)),
)
def test_filtered_pages_match_a_model(
    groups: List[int], g: int, offset: int, limit: int | None
) -> None:
    db = NusterDB(None, DatabaseConfig(DIM, id_type="str"))
    keys = [f"r{i:03d}" for i in range(len(groups))]
    if keys:
        rows = np.ones((len(keys), DIM), np.float32)
        db.bulk_add(keys, rows, [{"g": x} for x in groups])
    model: Dict[str, int] = dict(zip(keys, groups))
    want = [k for k in sorted(model) if model[k] == g]
    assert db.count({"g": g}) == len(want)
    end = None if limit is None else offset + limit
    got = db.get_many(filter={"g": g}, offset=offset, limit=limit, include=[])["ids"]
    assert got == want[offset:end]
    assert db.delete(filter={"g": g}) == len(want)
    assert sorted(db.list_ids()) == sorted(k for k in model if model[k] != g)


@pytest.mark.parametrize("ids", ["int", "str"])
def test_update_merges_metadata_by_default_and_replaces_on_request(ids: str) -> None:
    db, keys, _ = make(ids, n=6)
    k = keys[4]
    first = db.get_metadata(k)
    assert first is not None
    assert first.to_dict() == {"g": 1, "i": 4}
    db.update(k, metadata={"i": 40, "new": "yes", "g": None})
    merged = db.get_metadata(k)
    assert merged is not None
    assert merged.to_dict() == {"i": 40, "new": "yes"}
    assert merged.created_at == first.created_at
    assert merged.version == first.version + 1
    assert db.count({"g": 1}) == 1  # keys[1] only: the removed key left the index
    assert db.count({"new": "yes"}) == 1
    db.update(k, metadata={"only": 1.5}, merge=False)
    replaced = db.get_metadata(k)
    assert replaced is not None
    assert replaced.to_dict() == {"only": 1.5}
    assert replaced.version == first.version + 2
    assert db.get_document(k) == "d4"  # untouched
    with pytest.raises(TypeError):
        db.update(k, metadata={"x": None}, merge=False)  # None removes only when merging
    assert db.get_metadata(k) == replaced


@pytest.mark.parametrize("ids", ["int", "str"])
def test_bulk_upsert_inserts_replaces_and_keeps_what_is_not_given(ids: str) -> None:
    db, keys, data = make(ids, n=10)
    new_key = "id-new" if ids == "str" else 500
    vectors = np.stack([data[0] + 1, data[1], np.full(DIM, 0.5, np.float32)])
    n = db.bulk_upsert(
        [keys[0], keys[1], new_key],
        vectors,
        metadata=[{"g": 9}, None, {"g": 7}],
        documents=[None, "replaced", "fresh"],
    )
    assert n == 3
    assert len(db) == 11
    got = db.get_many([keys[0], keys[1], new_key])
    np.testing.assert_array_equal(got["vectors"], vectors)
    assert [m.to_dict() for m in got["metadatas"]] == [{"g": 9}, {"g": 1, "i": 1}, {"g": 7}]
    assert got["documents"] == ["d0", "replaced", "fresh"]
    assert db.search(vectors[0], k=1)[0][0] == keys[0]
    with pytest.raises(DuplicateIdError, match="rows 0 and 1"):
        db.bulk_upsert([keys[2], keys[2]], data[:2])
    assert len(db) == 11


def test_missing_and_unrelated_paths_have_their_own_errors(tmp_path: Path) -> None:
    import errno

    missing = tmp_path / "missing"
    with pytest.raises(DatabaseNotFoundError) as info:
        NusterDB.open(str(missing))
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, NusterDBIOError)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(missing)
    with pytest.raises(DatabaseNotFoundError):
        NusterDB.open(str(missing), read_only=True)
    assert not missing.exists()
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(NotADatabaseError, match="is not a NusterDB database") as bad:
        NusterDB(str(unrelated), dim=4)
    assert isinstance(bad.value, CorruptionError)  # handlers written for that still work
    assert "corruption" not in str(bad.value)
    assert sorted(p.name for p in unrelated.iterdir()) == ["cat.jpg"]


def test_a_reopen_mismatch_names_the_field_and_suggests_open(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    NusterDB(path, DatabaseConfig(4, distance_metric="cosine")).close()
    with NusterDB(path, dim=4) as db:  # only dim is stated: the stored metric stands
        assert db.distance_metric().name == "cosine"
    with pytest.raises(ConfigMismatchError, match=r"dim: the database stores 4, 8 was given"):
        NusterDB(path, dim=8)
    with pytest.raises(ConfigMismatchError, match=r"NusterDB\.open\(path\)"):
        NusterDB(path, DatabaseConfig(4, distance_metric="euclidean"))
