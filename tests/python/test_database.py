"""``nusterdb.NusterDB`` and ``DatabaseStats``: opening and creating (config, ``dim=``,
factories, ``open``, in memory), the write and read API, counts and ids, stats, the
context manager and ``close``, persistence of every field across reopen, and config
conflicts on reopen (SPEC §1 "NusterDB")."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt
import pytest
from db_helpers import state_checksum
from nusterdb import (
    ClosedError,
    ConfigMismatchError,
    DatabaseConfig,
    DatabaseStats,
    DistanceMetric,
    IdNotFoundError,
    Metadata,
    NusterDB,
    NusterDBError,
    NusterDBIOError,
    StorageConfiguration,
    Vector,
)

F32 = npt.NDArray[np.float32]
DIM = 8


def vec_bytes(v: Optional[Vector]) -> bytes:
    assert v is not None
    return v.to_numpy().astype("<f4").tobytes()


def rows(rng: np.random.Generator, n: int, dim: int = DIM) -> F32:
    return rng.standard_normal((n, dim)).astype(np.float32)


def typed_items(m: Optional[Metadata]) -> List[Tuple[str, type, object]]:
    """Fields with their exact types, so 1 == 1.0 == True cannot hide a type change."""
    assert m is not None
    return sorted((k, type(v), v) for k, v in m.to_dict().items())


@pytest.fixture
def db(tmp_path: Path) -> NusterDB:
    return NusterDB(str(tmp_path / "db"), dim=DIM)


# ----------------------------------------------------------------------- open / create


def test_create_with_config_reports_the_config(tmp_path: Path) -> None:
    cfg = DatabaseConfig(
        16,
        distance_metric="cosine",
        storage_config=StorageConfiguration(compression="zstd", cache_size_mb=8),
    )
    with NusterDB(str(tmp_path / "db"), cfg) as db:
        assert db.dimension() == 16
        assert db.index_type() == "flat"
        assert db.is_flat()
        assert not db.is_hnsw()
        assert db.distance_metric() == DistanceMetric.cosine()
        assert db.config == cfg
        assert db.path == str(tmp_path / "db")
        assert not db.read_only
        assert not db.closed
        assert len(db) == 0
        assert db.list_ids() == []


def test_create_with_dim_keyword_gives_flat_euclidean(tmp_path: Path) -> None:
    with NusterDB(tmp_path / "db", dim=5) as db:
        assert db.dimension() == 5
        assert db.index_type() == "flat"
        assert db.distance_metric().name == "euclidean"
        assert db.config == DatabaseConfig(5)


def test_config_and_disagreeing_dim_keyword_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dim"):
        NusterDB(str(tmp_path / "db"), DatabaseConfig(4), dim=5)
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize(
    "factory",
    ["simple", "optimized_flat", "ultra_fast_flat", "super_optimized_flat"],
)
def test_flat_factories_create_flat_databases(tmp_path: Path, factory: str) -> None:
    make: Callable[[Optional[str], int], NusterDB] = getattr(NusterDB, factory)
    with make(str(tmp_path / "db"), 6) as db:
        assert db.dimension() == 6
        assert db.index_type() == "flat"
        assert db.is_flat()
        db.add(1, [1.0] * 6)
        assert db.search([1.0] * 6, k=1) == [(1, 0.0)]


def test_simple_factory_with_hnsw_creates_an_hnsw_database(tmp_path: Path) -> None:
    with NusterDB.simple(str(tmp_path / "db"), 6, use_hnsw=True) as db:
        assert db.index_type() == "hnsw"
        assert db.is_hnsw()
        assert not db.is_flat()
    with NusterDB.open(str(tmp_path / "db")) as db:
        assert db.index_type() == "hnsw"


def test_flat_alias_index_types_are_stored_as_flat(tmp_path: Path) -> None:
    for i, alias in enumerate(["optimized_flat", "ultra_fast_flat", "super_optimized_flat"]):
        with NusterDB(str(tmp_path / f"db{i}"), DatabaseConfig(3, index_type=alias)) as db:
            assert db.index_type() == "flat"
            assert db.stats().index_type == "flat"


def test_open_uses_the_stored_config(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    cfg = DatabaseConfig(
        7,
        distance_metric=DistanceMetric.manhattan(),
        storage_config=StorageConfiguration(compression="zstd", bloom_filter_bits_per_key=12),
    )
    NusterDB(path, cfg).close()
    with NusterDB.open(path) as db:
        assert db.config == cfg
        assert db.config.storage_config.compression == "zstd"
        assert db.distance_metric() == DistanceMetric.manhattan()
    with NusterDB(path) as db:
        assert db.config == cfg
    # A config that agrees on the structural fields is accepted; the stored one rules.
    with NusterDB(path, DatabaseConfig(7, distance_metric="manhattan")) as db:
        assert db.dimension() == 7
        assert db.distance_metric().name == "manhattan"


def test_open_accepts_path_like_objects(tmp_path: Path) -> None:
    path = tmp_path / "db"
    NusterDB(path, dim=3).close()
    with NusterDB.open(path) as db:
        assert db.path == os.fspath(path)


@pytest.mark.parametrize(
    ("field", "conflicting"),
    [
        ("dim", DatabaseConfig(DIM + 1)),
        ("index_type", DatabaseConfig(DIM, index_type="hnsw")),
        ("distance_metric", DatabaseConfig(DIM, distance_metric="cosine")),
    ],
)
def test_reopen_with_conflicting_config_names_the_field(
    tmp_path: Path, field: str, conflicting: DatabaseConfig
) -> None:
    path = str(tmp_path / "db")
    with NusterDB(path, dim=DIM) as db:
        db.add(1, [0.5] * DIM)
        before = state_checksum(db)
    with pytest.raises(ConfigMismatchError, match=field) as info:
        NusterDB(path, conflicting)
    assert isinstance(info.value, ValueError)
    # The failed open released everything and changed nothing.
    with NusterDB.open(path) as db:
        assert db.config == DatabaseConfig(DIM)
        assert state_checksum(db) == before


def test_reopen_with_conflicting_dim_keyword_is_a_config_mismatch(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    NusterDB(path, dim=4).close()
    with pytest.raises(ConfigMismatchError, match="dim"):
        NusterDB(path, dim=5)


@pytest.mark.parametrize("how", ["constructor", "open"])
def test_opening_a_missing_path_without_config_is_an_io_error(tmp_path: Path, how: str) -> None:
    path = str(tmp_path / "missing")
    opener: Callable[[str], NusterDB] = NusterDB.open if how == "open" else NusterDB
    with pytest.raises(NusterDBIOError) as info:
        opener(path)
    assert isinstance(info.value, OSError)
    assert info.value.filename == path
    assert path in str(info.value)
    # The failed open leaves the path usable for a real create.
    with NusterDB(path, dim=3) as db:
        db.add(1, [1.0, 2.0, 3.0])
        assert db.count() == 1


@pytest.mark.parametrize("path", [None, ":memory:"])
def test_in_memory_database_works_and_has_no_path(path: Optional[str]) -> None:
    with NusterDB(path, dim=3) as db:
        assert db.path is None
        db.add(1, [1.0, 0.0, 0.0], {"k": "v"})
        db.bulk_add([2, 3], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        assert db.count() == 3
        assert db.search([1.0, 0.1, 0.0], k=1)[0][0] == 1
        st = db.stats()
        assert st.disk_bytes == 0
        assert st.memory_bytes > 0
        assert st.vector_count == 3


@pytest.mark.parametrize(
    "factory", ["simple", "optimized_flat", "ultra_fast_flat", "super_optimized_flat"]
)
def test_factories_accept_none_for_in_memory(factory: str) -> None:
    make: Callable[[Optional[str], int], NusterDB] = getattr(NusterDB, factory)
    with make(None, 4) as db:
        assert db.path is None
        db.add(7, [1.0, 2.0, 3.0, 4.0])
        assert db.list_ids() == [7]


def test_two_in_memory_databases_are_independent() -> None:
    with NusterDB(None, dim=2) as a, NusterDB(":memory:", dim=2) as b:
        a.add(1, [1.0, 1.0])
        assert len(b) == 0
        b.add(1, [2.0, 2.0])
        assert vec_bytes(a.get(1)) == np.array([1, 1], "<f4").tobytes()


# ----------------------------------------------------------------------- add / get


def test_add_then_get_returns_bit_identical_vector_and_metadata(
    db: NusterDB, rng: np.random.Generator
) -> None:
    v = rows(rng, 1)[0]
    db.add(42, v, {"title": "doc", "year": 2024, "score": 0.5, "draft": False})
    got = db.get(42)
    assert isinstance(got, Vector)
    assert vec_bytes(got) == v.tobytes()
    assert typed_items(db.get_metadata(42)) == [
        ("draft", bool, False),
        ("score", float, 0.5),
        ("title", str, "doc"),
        ("year", int, 2024),
    ]


def test_get_of_absent_id_is_none(db: NusterDB) -> None:
    assert db.get(5) is None
    assert db.get_metadata(5) is None
    db.add(1, [0.0] * DIM)
    assert db.get(5) is None
    assert db.get_metadata(5) is None


def test_add_without_metadata_stores_empty_metadata(db: NusterDB) -> None:
    db.add(1, [1.0] * DIM)
    m = db.get_metadata(1)
    assert m is not None
    assert m.to_dict() == {}
    assert m.tags() == []


def test_add_accepts_vector_list_tuple_and_arrays_of_any_real_dtype(db: NusterDB) -> None:
    base = [float(i) - 3.5 for i in range(DIM)]
    inputs: List[Any] = [
        Vector(base),
        base,
        tuple(base),
        np.array(base, dtype=np.float32),
        np.array(base, dtype=np.float64),
        np.array(base, dtype=np.float64)[::-1][::-1],
        np.arange(DIM, dtype=np.int64),
        np.repeat(np.array(base, dtype=np.float32), 2)[::2],  # strided view
    ]
    for i, v in enumerate(inputs):
        db.add(i, v)
        assert vec_bytes(db.get(i)) == np.asarray(v, dtype=np.float32).tobytes(), type(v)


def test_add_accepts_metadata_object_with_tags(db: NusterDB) -> None:
    m = Metadata.with_data({"a": 1}, tags=["x", "y"])
    db.add(1, [0.0] * DIM, m)
    got = db.get_metadata(1)
    assert got is not None
    assert got.to_dict() == {"a": 1}
    assert sorted(got.tags()) == ["x", "y"]


def test_ids_up_to_two_to_the_63_minus_one_are_accepted(db: NusterDB) -> None:
    big = 2**63 - 1
    db.add(0, [0.0] * DIM)
    db.add(big, [1.0] * DIM)
    # numpy integers are ids too (the stub says int; the binding takes any __index__).
    db.add(np.int64(17), [2.0] * DIM)  # type: ignore[arg-type]
    db.add(np.uint64(2**63 - 2), [3.0] * DIM)  # type: ignore[arg-type]
    assert db.list_ids() == [0, 17, 2**63 - 2, big]
    assert big in db
    assert db.search([1.0] * DIM, k=1) == [(big, 0.0)]


# ----------------------------------------------------------------------- upsert / update


def test_upsert_inserts_a_new_id_with_empty_metadata(db: NusterDB) -> None:
    db.upsert(3, [1.0] * DIM)
    assert db.list_ids() == [3]
    m = db.get_metadata(3)
    assert m is not None
    assert m.to_dict() == {}
    assert m.tags() == []


def test_upsert_without_metadata_keeps_the_stored_metadata(db: NusterDB) -> None:
    m = Metadata.with_data({"k": "v", "n": 1}, tags=["t"])
    m.set("n", 2)
    db.add(3, [1.0] * DIM, m)
    stored = db.get_metadata(3)
    assert stored is not None
    db.upsert(3, [2.0] * DIM)
    assert vec_bytes(db.get(3)) == np.full(DIM, 2.0, "<f4").tobytes()
    kept = db.get_metadata(3)
    assert kept is not None
    assert typed_items(kept) == typed_items(stored)
    assert kept.tags() == ["t"]
    assert kept.version == stored.version
    assert kept.created_at == stored.created_at
    assert db.count() == 1


def test_upsert_with_metadata_replaces_it(db: NusterDB) -> None:
    db.add(3, [1.0] * DIM, Metadata.with_data({"old": 1}, tags=["t"]))
    db.upsert(3, [1.0] * DIM, {"new": "x"})
    m = db.get_metadata(3)
    assert m is not None
    assert m.to_dict() == {"new": "x"}
    assert m.tags() == []
    assert db.stats().metadata_keys == ["new"]


def test_update_changes_vector_only(db: NusterDB) -> None:
    db.add(1, [1.0] * DIM, {"a": 1})
    db.update(1, vector=[5.0] * DIM)
    assert vec_bytes(db.get(1)) == np.full(DIM, 5.0, "<f4").tobytes()
    assert typed_items(db.get_metadata(1)) == [("a", int, 1)]
    assert db.search([5.0] * DIM, k=1) == [(1, 0.0)]


def test_update_changes_metadata_only(db: NusterDB) -> None:
    db.add(1, [1.0] * DIM, {"a": 1})
    db.update(1, metadata={"b": True})  # merged: "a" stays
    assert vec_bytes(db.get(1)) == np.full(DIM, 1.0, "<f4").tobytes()
    assert typed_items(db.get_metadata(1)) == [("a", int, 1), ("b", bool, True)]
    assert db.search([1.0] * DIM, k=5, filter={"b": True}) == [(1, 0.0)]
    db.update(1, metadata={"b": True}, merge=False)  # replaced: "a" goes
    assert typed_items(db.get_metadata(1)) == [("b", bool, True)]
    assert db.search([1.0] * DIM, k=5, filter={"b": True}) == [(1, 0.0)]
    assert db.search([1.0] * DIM, k=5, filter={"a": 1}) == []


def test_update_changes_both(db: NusterDB) -> None:
    db.add(1, [1.0] * DIM, {"a": 1})
    db.update(1, [2.0] * DIM, Metadata.with_tags(["z"]), merge=False)
    assert vec_bytes(db.get(1)) == np.full(DIM, 2.0, "<f4").tobytes()
    m = db.get_metadata(1)
    assert m is not None
    assert m.to_dict() == {}
    assert m.tags() == ["z"]


def test_update_of_absent_id_raises_id_not_found_and_changes_nothing(db: NusterDB) -> None:
    db.add(1, [1.0] * DIM, {"a": 1})
    before = state_checksum(db)
    calls: List[Callable[[], None]] = [
        lambda: db.update(2, [0.0] * DIM),
        lambda: db.update(2, metadata={"a": 2}),
        lambda: db.update(2, [0.0] * DIM, {"a": 2}),
    ]
    for call in calls:
        with pytest.raises(IdNotFoundError, match="2") as info:
            call()
        assert isinstance(info.value, KeyError)
        assert isinstance(info.value, NusterDBError)
    assert state_checksum(db) == before


# ----------------------------------------------------------------------- remove


def test_remove_returns_whether_the_id_was_there(db: NusterDB) -> None:
    db.bulk_add([1, 2], [[1.0] * DIM, [2.0] * DIM])
    assert db.remove(1) is True
    assert db.remove(1) is False
    assert db.remove(99) is False
    assert db.list_ids() == [2]
    assert db.get(1) is None
    assert db.get_metadata(1) is None
    assert 1 not in db


def test_removed_id_can_be_added_again(db: NusterDB) -> None:
    db.add(1, [1.0] * DIM, {"a": 1})
    db.remove(1)
    db.add(1, [3.0] * DIM)
    assert vec_bytes(db.get(1)) == np.full(DIM, 3.0, "<f4").tobytes()
    m = db.get_metadata(1)
    assert m is not None
    assert m.to_dict() == {}


def test_bulk_remove_counts_present_ids_once(db: NusterDB) -> None:
    db.bulk_add([1, 2, 3, 4], np.ones((4, DIM), np.float32))
    assert db.bulk_remove([1, 1, 2, 99]) == 2
    assert db.list_ids() == [3, 4]
    assert db.bulk_remove(np.array([3, 4], dtype=np.int64)) == 2
    assert db.count() == 0
    assert db.bulk_remove([]) == 0


# ----------------------------------------------------------------------- bulk_add


def _bulk_inputs(rng: np.random.Generator, n: int) -> Dict[str, Tuple[Any, F32]]:
    """Every accepted form of an (n, DIM) batch, with the float32 rows it stands for."""
    base = rows(rng, n)
    wide = rows(rng, 2 * n, 2 * DIM)
    f64 = rng.standard_normal((n, DIM))
    ints = rng.integers(-100, 100, size=(n, DIM))
    return {
        "vectors": ([Vector(r) for r in base], base),
        "lists": ([[float(x) for x in r] for r in base], base),
        "tuples": (tuple(tuple(float(x) for x in r) for r in base), base),
        "arrays_1d": ([r for r in base], base),
        "float32_c": (base, base),
        "float64": (f64, f64.astype(np.float32)),
        "int64": (ints, ints.astype(np.float32)),
        "fortran": (np.asfortranarray(base), base),
        "row_slice": (wide[::2, :DIM], np.ascontiguousarray(wide[::2, :DIM])),
        "column_slice": (wide[:n, ::2], np.ascontiguousarray(wide[:n, ::2])),
        "reversed": (base[::-1], np.ascontiguousarray(base[::-1])),
    }


@pytest.mark.parametrize(
    "form",
    [
        "vectors",
        "lists",
        "tuples",
        "arrays_1d",
        "float32_c",
        "float64",
        "int64",
        "fortran",
        "row_slice",
        "column_slice",
        "reversed",
    ],
)
def test_bulk_add_accepts_every_vector_form(
    db: NusterDB, rng: np.random.Generator, form: str
) -> None:
    n = 25
    given, expected = _bulk_inputs(rng, n)[form]
    ids = list(range(100, 100 + n))
    assert db.bulk_add(ids, given) == n
    assert db.list_ids() == ids
    for i, row in zip(ids, expected):
        assert vec_bytes(db.get(i)) == row.astype("<f4").tobytes(), (form, i)


@pytest.mark.parametrize(
    "ids",
    [
        [10, 11, 12],
        range(10, 13),
        np.array([10, 11, 12], dtype=np.int64),
        np.array([10, 11, 12], dtype=np.uint64),
        np.array([10, 11, 12], dtype=np.int32),
        (10, 11, 12),
    ],
    ids=["list", "range", "int64", "uint64", "int32", "tuple"],
)
def test_bulk_add_accepts_every_id_form(db: NusterDB, ids: Sequence[int]) -> None:
    assert db.bulk_add(ids, np.eye(3, DIM, dtype=np.float32)) == 3
    assert db.list_ids() == [10, 11, 12]


def test_bulk_add_with_metadata_list_of_none_dicts_and_objects(db: NusterDB) -> None:
    meta: List[Any] = [
        None,
        {"a": 1, "s": "x"},
        Metadata.with_data({"f": 1.5}, tags=["t1"]),
        {},
    ]
    assert db.bulk_add([1, 2, 3, 4], np.ones((4, DIM), np.float32), meta) == 4
    m1, m2, m3, m4 = (db.get_metadata(i) for i in (1, 2, 3, 4))
    assert m1 is not None
    assert m1.to_dict() == {}
    assert m1.tags() == []
    assert typed_items(m2) == [("a", int, 1), ("s", str, "x")]
    assert m3 is not None
    assert m3.to_dict() == {"f": 1.5}
    assert m3.tags() == ["t1"]
    assert m4 is not None
    assert m4.to_dict() == {}
    assert db.stats().metadata_keys == ["a", "f", "s"]


def test_bulk_add_of_empty_batch_adds_nothing(db: NusterDB) -> None:
    assert db.bulk_add([], np.zeros((0, DIM), np.float32)) == 0
    assert db.bulk_add([], []) == 0
    assert db.count() == 0


def test_bulk_add_with_mismatched_lengths_is_rejected_whole(db: NusterDB) -> None:
    db.add(0, [0.0] * DIM)
    before = state_checksum(db)
    with pytest.raises(ValueError, match="3 ids but 2 vectors"):
        db.bulk_add([1, 2, 3], np.ones((2, DIM), np.float32))
    with pytest.raises(ValueError, match="2 ids but 1 metadata"):
        db.bulk_add([1, 2], np.ones((2, DIM), np.float32), [{"a": 1}])
    assert state_checksum(db) == before


def test_bulk_add_float32_c_contiguous_input_is_not_modified(
    db: NusterDB, rng: np.random.Generator
) -> None:
    base = rows(rng, 50)
    copy = base.copy()
    db.bulk_add(np.arange(50), base)
    assert np.array_equal(base, copy)
    base[:] = 0.0  # the database keeps its own copy
    assert vec_bytes(db.get(0)) == copy[0].tobytes()


# ----------------------------------------------------------------------- counts and ids


def test_len_count_contains_and_sorted_list_ids(db: NusterDB, rng: np.random.Generator) -> None:
    ids = [int(i) for i in rng.choice(10**12, size=40, replace=False)]
    db.bulk_add(ids, rows(rng, 40))
    assert len(db) == db.count() == 40
    assert db.list_ids() == sorted(ids)
    for i in ids[:5]:
        assert i in db
        assert db.contains(i)
        assert np.int64(i) in db
    absent = max(ids) + 1
    assert absent not in db
    assert not db.contains(absent)
    # Things that cannot be ids are simply not in the database.
    assert "1" not in db
    assert 1.0 not in db
    assert -1 not in db
    assert 2**64 not in db
    assert None not in db


def test_contains_method_rejects_non_ids(db: NusterDB) -> None:
    with pytest.raises(TypeError):
        db.contains("1")
    with pytest.raises(ValueError, match="non-negative"):
        db.contains(-1)
    with pytest.raises(OverflowError):
        db.contains(2**63)


# ----------------------------------------------------------------------- stats


def test_stats_report_every_field(tmp_path: Path, rng: np.random.Generator) -> None:
    path = str(tmp_path / "db")
    with NusterDB(path, DatabaseConfig(DIM, distance_metric="cosine")) as db:
        st0 = db.stats()
        assert isinstance(st0, DatabaseStats)
        assert st0.vector_count == 0
        assert st0.deleted_count == 0
        assert st0.metadata_keys == []
        db.bulk_add(
            list(range(10)),
            rows(rng, 10),
            [{"zeta": i, "alpha": "x"} if i % 2 else {"mid": 1.0} for i in range(10)],
        )
        st = db.stats()
        assert st.vector_count == 10
        assert st.dimension == DIM
        assert st.index_type == "flat"
        assert st.distance_metric == "cosine"
        assert st.metadata_keys == ["alpha", "mid", "zeta"]
        assert st.deleted_count == 0
        assert st.memory_bytes > 0
        assert st.disk_bytes > 0
        assert st.memory_bytes >= 10 * DIM * 4
        assert "vector_count=10" in repr(st)
        # Removing every vector with "mid" takes the key out of use.
        db.bulk_remove([0, 2, 4])
        st = db.stats()
        assert st.vector_count == 7
        assert st.deleted_count == 3
        db.bulk_remove([6, 8])
        assert db.stats().metadata_keys == ["alpha", "zeta"]
        assert db.stats().deleted_count == 5
        # A freed slot is reused by the next add.
        db.add(100, rows(rng, 1)[0])
        assert db.stats().deleted_count == 4
        assert db.stats().vector_count == 6


def test_stats_memory_grows_with_the_data(db: NusterDB, rng: np.random.Generator) -> None:
    small = db.stats().memory_bytes
    db.bulk_add(np.arange(5000), rows(rng, 5000))
    big = db.stats().memory_bytes
    assert big - small >= 5000 * DIM * 4


@pytest.mark.parametrize("index", ["flat", "hnsw"])
@pytest.mark.parametrize("id_type", ["int", "str"])
def test_stats_memory_by_part_sums_to_memory_bytes(
    tmp_path: Path, index: str, id_type: str, rng: np.random.Generator
) -> None:
    n = 3000
    ids = [f"k{i}" for i in range(n)] if id_type == "str" else list(range(n))
    cfg = DatabaseConfig(DIM, index_type=index, id_type=id_type)
    with NusterDB(str(tmp_path / "db"), cfg) as db:
        db.bulk_add(ids, rows(rng, n), metadata=[{"g": i % 7} for i in range(n)])
        st = db.stats()
        parts = st.memory_by_part
        assert sum(parts.values()) == st.memory_bytes
        engine = {"memtables", "block_cache", "table_readers"}
        common = {"vectors", "id_map", "names", "payload_index"} | engine
        graph = {"graph", "codes", "scratch"}
        assert set(parts) == (common | graph if index == "hnsw" else common)
        assert parts["vectors"] >= n * DIM * 4
        assert parts["id_map"] > 0
        assert parts["payload_index"] > 0
        assert (parts["names"] > 0) == (id_type == "str")
        assert parts["memtables"] > 0  # the rows just written are in the memtable
        if index == "hnsw":
            assert parts["graph"] >= n * 4  # at least one neighbour word per node
            assert parts["codes"] >= n * DIM  # one byte per component
        db.bulk_remove(ids[: n // 2])
        st = db.stats()
        assert sum(st.memory_by_part.values()) == st.memory_bytes
    with NusterDB(None, cfg) as mem:
        assert sum(mem.stats().memory_by_part.values()) == mem.stats().memory_bytes


def test_stats_engine_statistics_follow_the_knob(tmp_path: Path) -> None:
    on = DatabaseConfig(2, storage_config=StorageConfiguration(enable_statistics=True))
    off = DatabaseConfig(2, storage_config=StorageConfiguration(enable_statistics=False))
    with NusterDB(str(tmp_path / "on"), on) as db:
        text = db.stats().engine_statistics
        assert text is not None
        assert "rocksdb." in text
    with NusterDB(str(tmp_path / "off"), off) as db:
        assert db.stats().engine_statistics is None


# ----------------------------------------------------------------------- close / context


def test_context_manager_returns_the_handle_and_closes(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    handle = NusterDB(path, dim=2)
    with handle as db:
        assert db is handle
        db.add(1, [1.0, 2.0])
    assert handle.closed
    # The writer lock is released: the path opens again.
    with NusterDB.open(path) as again:
        assert again.list_ids() == [1]


def test_context_manager_closes_and_propagates_on_exception(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    handle = NusterDB(path, dim=2)
    with pytest.raises(RuntimeError, match="boom"), handle:
        raise RuntimeError("boom")
    assert handle.closed
    NusterDB.open(path).close()


def test_close_twice_is_a_no_op(db: NusterDB) -> None:
    db.close()
    db.close()
    assert db.closed
    with db:  # entering and leaving a closed handle closes again: still a no-op
        pass
    assert "closed" in repr(db)


def _closed_calls(tmp_path: Path) -> Dict[str, Callable[[NusterDB], object]]:
    q = [0.0] * DIM
    return {
        "add": lambda d: d.add(5, q),
        "upsert": lambda d: d.upsert(1, q),
        "update": lambda d: d.update(1, q),
        "bulk_add": lambda d: d.bulk_add([5], [q]),
        "remove": lambda d: d.remove(1),
        "bulk_remove": lambda d: d.bulk_remove([1]),
        "get": lambda d: d.get(1),
        "get_metadata": lambda d: d.get_metadata(1),
        "search": lambda d: d.search(q),
        "batch_search": lambda d: d.batch_search(np.zeros((1, DIM), np.float32)),
        "len": lambda d: len(d),
        "count": lambda d: d.count(),
        "contains": lambda d: d.contains(1),
        "in": lambda d: 1 in d,
        "list_ids": lambda d: d.list_ids(),
        "iter": lambda d: iter(d),
        "iter_records": lambda d: d.iter_records(),
        "iter_pages": lambda d: d.iter_pages(),
        "batch_search_include": lambda d: d.batch_search(
            np.zeros((1, DIM), np.float32), include=["document"]
        ),
        "stats": lambda d: d.stats(),
        "flush": lambda d: d.flush(),
        "refresh": lambda d: d.refresh(),
        "snapshot": lambda d: d.snapshot(),
        "snapshot_named": lambda d: d.snapshot_named("s"),
        "snapshot_with_metadata": lambda d: d.snapshot_with_metadata("s", {"a": 1}),
        "list_snapshots": lambda d: d.list_snapshots(),
        "restore_snapshot": lambda d: d.restore_snapshot("s0", str(tmp_path / "restored")),
        "delete_snapshot": lambda d: d.delete_snapshot("s0"),
        "dimension": lambda d: d.dimension(),
        "index_type": lambda d: d.index_type(),
        "is_flat": lambda d: d.is_flat(),
        "is_hnsw": lambda d: d.is_hnsw(),
        "distance_metric": lambda d: d.distance_metric(),
    }


CLOSED_METHODS = list(_closed_calls(Path(".")).keys())


@pytest.mark.parametrize("method", CLOSED_METHODS)
def test_every_method_after_close_raises_closed_error(tmp_path: Path, method: str) -> None:
    path = str(tmp_path / "db")
    db = NusterDB(path, dim=DIM)
    db.add(1, [1.0] * DIM, {"a": 1})
    db.snapshot_named("s0")
    db.close()
    with pytest.raises(ClosedError):
        _closed_calls(tmp_path)[method](db)
    assert db.closed
    # Nothing happened to the files: the database reopens as it was.
    with NusterDB.open(path) as again:
        assert again.list_ids() == [1]
        assert [s["name"] for s in again.list_snapshots()] == ["s0"]
    assert not (tmp_path / "restored").exists()


def test_properties_stay_readable_after_close(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    db = NusterDB(path, dim=DIM)
    db.close()
    assert db.closed is True
    assert db.read_only is False
    assert db.path == path
    assert db.config.dim == DIM


# ----------------------------------------------------------------------- persistence


def test_every_field_persists_across_reopen(tmp_path: Path, rng: np.random.Generator) -> None:
    path = str(tmp_path / "db")
    cfg = DatabaseConfig(
        DIM,
        distance_metric="cosine",
        storage_config=StorageConfiguration(compression="zstd", write_buffer_size_mb=4),
    )
    special = np.array(
        # Subnormal components and magnitudes near the accepted norm bound (2**60).
        [-0.0, 1e-40, -5e17, 5.0000003e17, 1.0 / 3.0, -1e-45, 0.0, 7.0],
        dtype=np.float32,
    )
    base = rows(rng, 200)
    base[7] = special
    ids = [int(i) for i in rng.choice(2**63 - 1, size=200, replace=False)]
    ids[0] = 2**63 - 1
    ids[1] = 0
    rich = Metadata.with_data(
        {
            "i_max": 2**63 - 1,
            "i_min": -(2**63),
            "f": 0.1,
            "neg_zero": -0.0,
            "huge": 1e308,
            "tiny": 5e-324,
            "yes": True,
            "no": False,
            "text": "héllo ✓ \u0000 end",
            "empty": "",
            "one_int": 1,
            "one_float": 1.0,
        },
        tags=["alpha", "Beta", "ünï"],
    )
    rich.set("bumped", 3)
    rich.add_tag("gamma")
    assert rich.version >= 3
    metas: List[Any] = [{"n": i, "s": str(i)} for i in range(200)]
    metas[3] = rich
    metas[4] = None
    with NusterDB(path, cfg) as db:
        db.bulk_add(ids, base, metas)
        db.remove(ids[5])
        db.update(ids[6], metadata=Metadata.with_tags(["updated"]), merge=False)
        db.upsert(ids[8], base[9])
        before = state_checksum(db)
        before_meta = {i: db.get_metadata(i) for i in ids[:10] if i != ids[5]}
        stored_rich = db.get_metadata(ids[3])
        assert stored_rich is not None
        assert stored_rich.version == rich.version
        assert stored_rich.created_at == rich.created_at
    with NusterDB.open(path) as db:
        assert db.config == cfg
        assert state_checksum(db) == before
        for r, i in enumerate(ids):
            if i == ids[5]:
                assert db.get(i) is None
                continue
            want = base[9] if i == ids[8] else base[r]
            assert vec_bytes(db.get(i)) == want.astype("<f4").tobytes()
        for i, m in before_meta.items():
            got = db.get_metadata(i)
            assert got is not None
            assert m is not None
            assert typed_items(got) == typed_items(m)
            assert got.tags() == m.tags()
            assert got.version == m.version
            assert got.created_at == m.created_at
            assert got.updated_at == m.updated_at
        got_rich = db.get_metadata(ids[3])
        assert got_rich is not None
        assert typed_items(got_rich) == typed_items(rich)
        assert math.copysign(1.0, got_rich["neg_zero"]) == -1.0  # type: ignore[arg-type]
        assert sorted(got_rich.tags()) == sorted(rich.tags())
        assert got_rich.version == rich.version
        assert got_rich.created_at == rich.created_at
        m6 = db.get_metadata(ids[6])
        assert m6 is not None
        assert m6.to_dict() == {}
        assert m6.tags() == ["updated"]
        m8 = db.get_metadata(ids[8])
        assert m8 is not None
        assert typed_items(m8) == [("n", int, 8), ("s", str, "8")]
        # Searches and filters work on the reloaded state.
        hits = db.search(base[10], k=1)
        assert hits[0][0] == ids[10]
        tagged = db.search(base[10], k=3, filter={"$tags": {"$any": ["updated"]}})
        assert [i for i, _ in tagged] == [ids[6]]


def test_close_and_reopen_keeps_writes_made_after_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    for round_ in range(5):
        with NusterDB(path, dim=2) as db:
            assert db.list_ids() == list(range(round_))
            db.add(round_, [float(round_), 0.0], {"round": round_})
    with NusterDB.open(path) as db:
        for i in range(5):
            m = db.get_metadata(i)
            assert m is not None
            assert m["round"] == i
