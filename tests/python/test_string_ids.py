"""String ids and documents through the Python API, against plain-Python references.

A database created with ``DatabaseConfig(..., id_type="str")`` takes str ids
everywhere an int database takes ints; documents ride beside metadata; ``get_many``
and ``search(..., include=...)`` return records in one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import nusterdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import (
    DatabaseConfig,
    DuplicateIdError,
    IdNotFoundError,
    IdTypeError,
    InvalidArgumentError,
    NusterDB,
    SearchHit,
)

DIM = 8


def str_db(path: Optional[Path] = None, index: str = "flat", metric: str = "euclidean") -> NusterDB:
    cfg = DatabaseConfig(DIM, index_type=index, distance_metric=metric, id_type="str")
    return NusterDB(None if path is None else str(path), cfg)


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_config_reports_the_id_type_and_defaults_to_int() -> None:
    assert DatabaseConfig(4).id_type == "int"
    assert DatabaseConfig(4, id_type="str").id_type == "str"
    assert "id_type='str'" in repr(DatabaseConfig(4, id_type="str")).replace('"', "'")
    with pytest.raises(InvalidArgumentError, match="id_type"):
        DatabaseConfig(4, id_type="uuid")
    with pytest.raises(TypeError):
        DatabaseConfig(4, id_type=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_records_round_trip_with_documents(tmp_path: Path, index: str) -> None:
    data = rows(60, 1)
    ids = [f"doc-{i}-ü" for i in range(60)]
    docs: List[Optional[str]] = [None if i % 4 == 0 else f"text {i}" for i in range(60)]
    metas: List[Dict[str, Any]] = [{"n": i, "even": i % 2 == 0} for i in range(60)]
    with str_db(tmp_path / "db", index) as db:
        assert db.bulk_add(ids, data, metas, documents=docs) == 60
        db.add("extra", data[0], {"n": -1}, document="the extra one")
        assert len(db) == 61
        assert db.list_ids() == sorted([*ids, "extra"], key=lambda s: s.encode())
        assert db.get_document("extra") == "the extra one"
        assert db.get_document("doc-0-ü") is None
        assert db.get_document("absent") is None
    with NusterDB.open(str(tmp_path / "db")) as db:
        assert db.config.id_type == "str"
        got = db.get_many(["doc-3-ü", "absent", "doc-1-ü", "doc-3-ü"])
        assert got["ids"] == ["doc-3-ü", "doc-1-ü"]
        np.testing.assert_array_equal(got["vectors"], data[[3, 1]])
        assert got["vectors"].dtype == np.float32
        assert [m.to_dict() for m in got["metadatas"]] == [metas[3], metas[1]]
        assert got["documents"] == ["text 3", "text 1"]
        only = db.get_many(["doc-5-ü"], include=["document"])
        assert set(only) == {"ids", "documents"}
        empty = db.get_many([])
        assert empty["ids"] == []
        assert empty["vectors"].shape == (0, DIM)
        v = db.get("doc-7-ü")
        assert v is not None
        np.testing.assert_array_equal(v.to_numpy(), data[7])
        m = db.get_metadata("doc-7-ü")
        assert m is not None
        assert m.to_dict() == metas[7]


def test_search_returns_str_ids_and_hits_with_what_was_included() -> None:
    data = rows(40, 2)
    ids = [f"id{i}" for i in range(40)]
    db = str_db(metric="cosine")
    db.bulk_add(ids, data, [{"i": i} for i in range(40)], documents=[f"d{i}" for i in range(40)])
    q = data[11]
    # Reference: cosine distance with numpy.
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    ref = 1.0 - unit @ (q / np.linalg.norm(q))
    order = np.argsort(ref, kind="stable")[:5]
    plain = db.search(q, k=5)
    assert [h[0] for h in plain] == [ids[i] for i in order]
    np.testing.assert_allclose([h[1] for h in plain], ref[order], atol=1e-5)
    hits = db.search(q, k=5, include=["document", "metadata", "vector"])
    assert all(isinstance(h, SearchHit) for h in hits)
    assert [h.id for h in hits] == [ids[i] for i in order]
    for h, i in zip(hits, order):
        assert h.document == f"d{i}"
        assert h.metadata is not None
        assert h.metadata.to_dict() == {"i": int(i)}
        assert h.vector is not None
        np.testing.assert_array_equal(h.vector, data[i])
        assert h.distance == pytest.approx(float(ref[i]), abs=1e-5)
    bare = db.search(q, k=2, include=[])
    assert bare[0].document is None
    assert bare[0].metadata is None
    assert bare[0].vector is None
    filtered = db.search(q, k=40, filter={"i": {"$lt": 10}}, include=["metadata"])
    assert {h.id for h in filtered} == {f"id{i}" for i in range(10)}
    with pytest.raises(InvalidArgumentError, match="unknown include name"):
        db.search(q, k=2, include=["documents"])
    with pytest.raises(TypeError, match="single str"):
        db.search(q, k=2, include="document")


def test_include_works_on_int_databases_too() -> None:
    db = NusterDB(None, dim=DIM)
    data = rows(5, 3)
    db.bulk_add(np.arange(5), data, documents=["a", "b", None, "d", "e"])
    hits = db.search(data[3], k=1, include=["document"])
    assert hits[0].id == 3
    assert hits[0].document == "d"
    assert db.get_many([2, 3], include=["document"])["documents"] == [None, "d"]
    assert db.get_document(1) == "b"


def test_batch_search_returns_an_object_array_padded_with_none() -> None:
    db = str_db()
    data = rows(6, 4)
    db.bulk_add([f"r{i}" for i in range(6)], data, [{"g": i % 2} for i in range(6)])
    ids, dist = db.batch_search(data[:3], k=4, filter={"g": 0})
    assert ids.dtype == object
    assert ids.shape == (3, 4)
    assert dist.dtype == np.float32
    assert dist.shape == (3, 4)
    for row in range(3):
        # Three rows match the filter: the fourth column is padding.
        assert ids[row, 3] is None
        assert np.isinf(dist[row, 3])
        assert {str(x) for x in ids[row, :3]} == {"r0", "r2", "r4"}
        single = db.search(data[row], k=4, filter={"g": 0})
        assert [h[0] for h in single] == list(ids[row, :3])
    ids, dist = db.batch_search(np.zeros((0, DIM), np.float32), k=3)
    assert ids.shape == (0, 3)
    assert ids.dtype == object


def test_empty_string_id_database_batch_search_has_width_zero() -> None:
    ids, dist = str_db().batch_search(rows(2), k=5)
    assert ids.shape == (2, 0)
    assert dist.shape == (2, 0)


BAD_STR_IDS = [
    ("int", 5, IdTypeError),
    ("bytes", b"x", IdTypeError),
    ("none", None, IdTypeError),
    ("empty", "", InvalidArgumentError),
    ("too_long", "é" * 513, InvalidArgumentError),
    ("surrogate", "a\ud800", InvalidArgumentError),
]


@pytest.mark.parametrize(("label", "bad", "error"), BAD_STR_IDS, ids=[c[0] for c in BAD_STR_IDS])
def test_bad_string_ids_are_refused_and_store_nothing(
    label: str, bad: object, error: type[Exception]
) -> None:
    db = str_db()
    db.add("keep", rows(1)[0], {"a": 1}, document="kept")
    v = rows(1, 9)[0]
    for call in (
        lambda: db.add(bad, v),  # type: ignore[arg-type]
        lambda: db.upsert(bad, v),  # type: ignore[arg-type]
        lambda: db.bulk_add(["fine", bad], rows(2)),  # type: ignore[arg-type]
        lambda: db.update(bad, v),  # type: ignore[arg-type]
    ):
        with pytest.raises(error):
            call()
    assert db.list_ids() == ["keep"]
    assert db.get_document("keep") == "kept"
    if label == "too_long":
        with pytest.raises(InvalidArgumentError, match="1026 bytes"):
            db.add(bad, v)  # type: ignore[arg-type]
        db.add("é" * 512, v)  # exactly 1,024 bytes
        assert "é" * 512 in db


def test_wrong_id_kind_is_both_a_type_error_and_an_invalid_argument() -> None:
    assert issubclass(IdTypeError, TypeError)
    assert issubclass(IdTypeError, InvalidArgumentError)
    ints = NusterDB(None, dim=DIM)
    with pytest.raises(IdTypeError, match="ids are ints"):
        ints.add("doc-1", rows(1)[0])
    strs = str_db()
    with pytest.raises(IdTypeError, match="ids are strs"):
        strs.add(1, rows(1)[0])
    with pytest.raises(IdTypeError):
        strs.contains(1)
    # `in` answers like a dict: a value that cannot be an id is not in the database.
    assert 1 not in strs
    assert "doc-1" not in ints
    assert "" not in strs


def test_repeated_and_existing_ids_are_named() -> None:
    db = str_db()
    with pytest.raises(DuplicateIdError, match=r"\"a\" appears more than once .*rows 0 and 2"):
        db.bulk_add(["a", "b", "a"], rows(3))
    assert len(db) == 0
    db.add("a", rows(1)[0])
    with pytest.raises(DuplicateIdError, match='"a" already exists'):
        db.bulk_add(["c", "a"], rows(2))
    assert db.list_ids() == ["a"]
    with pytest.raises(IdNotFoundError, match='"zz" not found'):
        db.update("zz", document="x")


def test_documents_are_checked_and_replaced_or_kept() -> None:
    db = str_db()
    v = rows(2, 5)
    with pytest.raises(TypeError, match="document must be str"):
        db.add("a", v[0], document=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="surrogate"):
        db.add("a", v[0], document="\udc00")
    with pytest.raises(ValueError, match="2 ids but 1 documents"):
        db.bulk_add(["a", "b"], v, documents=["x"])
    with pytest.raises(TypeError, match="one entry per id"):
        db.bulk_add(["a", "b"], v, documents="xy")
    assert len(db) == 0
    db.add("a", v[0], {"k": 1}, document="one")
    db.upsert("a", v[1])  # no document, no metadata: both kept
    assert db.get_document("a") == "one"
    meta = db.get_metadata("a")
    assert meta is not None
    assert meta.to_dict() == {"k": 1}
    db.update("a", document="two")
    assert db.get_document("a") == "two"
    got = db.get("a")
    assert got is not None
    np.testing.assert_array_equal(got.to_numpy(), v[1])
    big = "x" * (16 * 1024 * 1024 + 1)
    with pytest.raises(InvalidArgumentError, match="document of"):
        db.update("a", document=big)
    assert db.get_document("a") == "two"


def test_remove_and_bulk_remove_by_string_id(tmp_path: Path) -> None:
    with str_db(tmp_path / "db", "hnsw") as db:
        db.bulk_add([f"k{i}" for i in range(20)], rows(20), documents=[f"t{i}" for i in range(20)])
        assert db.remove("k3") is True
        assert db.remove("k3") is False
        assert db.bulk_remove(["k4", "k5", "nope", "k4"]) == 2
        with pytest.raises(IdTypeError):
            db.bulk_remove([1, 2])
        with pytest.raises(TypeError, match="single str"):
            db.bulk_remove("k6")
    with NusterDB.open(str(tmp_path / "db")) as db:
        assert len(db) == 17
        assert "k3" not in db
        assert db.get_document("k4") is None
        assert db.get_document("k6") == "t6"


def test_ids_from_numpy_string_and_object_arrays() -> None:
    db = str_db()
    db.bulk_add(np.array(["x", "y"]), rows(2))
    db.bulk_add(np.array(["z"], dtype=object), rows(1, 2))
    assert db.list_ids() == ["x", "y", "z"]
    with pytest.raises(ValueError, match="1-D"):
        db.bulk_remove(np.array([["x"]]))


# Ids as hypothesis draws them: any non-empty text without lone surrogates, within
# the byte limit.
str_ids = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40
).filter(lambda s: len(s.encode()) <= 1024)


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "upsert", "remove", "doc"]), str_ids, st.text(max_size=20)
        ),
        max_size=25,
    )
)
def test_string_id_operations_match_a_dict_model(ops: list[tuple[str, str, str]]) -> None:
    db = str_db()
    model: Dict[str, tuple[np.ndarray, Optional[str]]] = {}
    for n, (op, key, text) in enumerate(ops):
        v = rows(1, n)[0]
        if op == "add":
            if key in model:
                with pytest.raises(DuplicateIdError):
                    db.add(key, v, document=text)
            else:
                db.add(key, v, document=text)
                model[key] = (v, text)
        elif op == "upsert":
            db.upsert(key, v)
            model[key] = (v, model[key][1] if key in model else None)
        elif op == "remove":
            assert db.remove(key) == (model.pop(key, None) is not None)
        elif key in model:
            db.update(key, document=text)
            model[key] = (model[key][0], text)
        else:
            with pytest.raises(IdNotFoundError):
                db.update(key, document=text)
    assert db.list_ids() == sorted(model, key=lambda s: s.encode())
    got = db.get_many(list(model))
    assert got["ids"] == list(model)
    for i, key in enumerate(got["ids"]):
        np.testing.assert_array_equal(got["vectors"][i], model[key][0])
        assert got["documents"][i] == model[key][1]
    for v, _ in model.values():
        hit = db.search(v, k=1)[0]
        # The nearest is at distance 0 (it may be another key with the same vector).
        assert hit[1] == 0.0
        assert model[hit[0]][0].tolist() == v.tolist()


def test_nusterdb_exports_the_new_names() -> None:
    assert nusterdb.SearchHit is SearchHit
    assert nusterdb.IdTypeError is IdTypeError
