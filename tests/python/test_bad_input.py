"""RELIABILITY.md's bad-input table (T6): every rejected call raises the documented typed
error, and leaves the database exactly as it was (count, ids, and a checksum of every
stored vector and metadata are equal before and after)."""

from __future__ import annotations

import resource
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple, Type, Union

import numpy as np
import pytest
from db_helpers import state_checksum
from nusterdb import (
    DatabaseConfig,
    DimensionMismatchError,
    DuplicateIdError,
    InvalidVectorError,
    Metadata,
    NusterDB,
    NusterDBError,
    ReadOnlyError,
)

DIM = 8
N = 20
# The database argument is Any: these calls pass wrong types on purpose.
Call = Callable[[Any], object]
Expected = Union[Type[BaseException], Tuple[Type[BaseException], ...]]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[NusterDB]:
    rng = np.random.default_rng(1234)
    with NusterDB(str(tmp_path / "db"), dim=DIM) as d:
        d.bulk_add(
            list(range(N)),
            rng.standard_normal((N, DIM)).astype(np.float32),
            [Metadata.with_data({"i": i, "s": f"row{i}"}, tags=[f"t{i % 3}"]) for i in range(N)],
        )
        yield d


def rejected(db: NusterDB, call: Call, expected: Expected, match: str = "") -> BaseException:
    """Runs ``call``, asserts it raises ``expected`` (matching ``match``) and that the
    database state is unchanged; returns the exception."""
    before = state_checksum(db)
    with pytest.raises(expected, match=match or None) as info:
        call(db)
    assert state_checksum(db) == before, "a rejected call changed the database"
    return info.value


def ok_vec(value: float = 0.5) -> List[float]:
    return [value] * DIM


def ok_rows(n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.full((n, DIM), 0.25, dtype=np.float32)


# ------------------------------------------------------------------- NaN / Inf

BAD_VALUES = [float("nan"), float("inf"), float("-inf")]
BAD_IDS = ["nan", "inf", "-inf"]


def with_bad(value: float, position: int) -> List[float]:
    v = ok_vec()
    v[position] = value
    return v


def rows_with_bad(value: float, row: int, position: int) -> np.ndarray[Any, np.dtype[Any]]:
    a = np.full((5, DIM), 0.25, dtype=np.float64)
    a[row, position] = value
    return a


NONFINITE_CALLS: List[Tuple[str, Callable[[float], Call], str]] = [
    ("add_list", lambda x: lambda d: d.add(100, with_bad(x, 5)), "position 5"),
    (
        "add_f32_array",
        lambda x: lambda d: d.add(100, np.array(with_bad(x, 6), np.float32)),
        "position 6",
    ),
    (
        "add_f64_array",
        lambda x: lambda d: d.add(100, np.array(with_bad(x, 2), np.float64)),
        "position 2",
    ),
    ("upsert_new", lambda x: lambda d: d.upsert(100, with_bad(x, 1)), "position 1"),
    ("upsert_existing", lambda x: lambda d: d.upsert(3, with_bad(x, 1)), "position 1"),
    ("update", lambda x: lambda d: d.update(3, with_bad(x, 7)), "position 7"),
    (
        "bulk_add_f64",
        lambda x: lambda d: d.bulk_add(range(100, 105), rows_with_bad(x, 3, 4)),
        "position 4",
    ),
    (
        "bulk_add_f32",
        lambda x: lambda d: d.bulk_add(range(100, 105), rows_with_bad(x, 3, 4).astype(np.float32)),
        "position 4",
    ),
    (
        "bulk_add_lists",
        lambda x: lambda d: d.bulk_add(range(100, 105), rows_with_bad(x, 2, 0).tolist()),
        "position 0",
    ),
    ("search", lambda x: lambda d: d.search(with_bad(x, 3), k=3), "position 3"),
    (
        "search_with_filter",
        lambda x: lambda d: d.search(with_bad(x, 3), k=3, filter={"i": 1}),
        "position 3",
    ),
    (
        "batch_search",
        lambda x: lambda d: d.batch_search(rows_with_bad(x, 4, 2).astype(np.float32), k=3),
        "position 2",
    ),
    (
        "batch_search_lists",
        lambda x: lambda d: d.batch_search(rows_with_bad(x, 1, 6).tolist(), k=3),
        "position 6",
    ),
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=BAD_IDS)
@pytest.mark.parametrize(
    ("make_call", "position"),
    [(c, p) for _, c, p in NONFINITE_CALLS],
    ids=[n for n, _, _ in NONFINITE_CALLS],
)
def test_non_finite_values_are_rejected_naming_the_position(
    db: NusterDB, make_call: Callable[[float], Call], position: str, value: float
) -> None:
    err = rejected(db, make_call(value), ValueError, match=position)
    assert isinstance(err, NusterDBError), type(err)


def test_float64_value_that_overflows_float32_in_add_is_rejected(db: NusterDB) -> None:
    err = rejected(db, lambda d: d.add(100, with_bad(1e300, 4)), ValueError, "position 4")
    assert isinstance(err, NusterDBError)
    err = rejected(db, lambda d: d.search(with_bad(-1e39, 2)), ValueError, "position 2")
    assert isinstance(err, NusterDBError)


def test_float64_value_that_overflows_float32_in_bulk_add_is_rejected(db: NusterDB) -> None:
    # The conversion must not leak numpy's "overflow encountered in cast" warning
    # (pytest turns warnings into errors): the caller gets the typed error only.
    err = rejected(
        db,
        lambda d: d.bulk_add(range(100, 105), rows_with_bad(-1e39, 0, 1)),
        ValueError,
        "position 1",
    )
    assert isinstance(err, NusterDBError)
    err = rejected(
        db, lambda d: d.batch_search(rows_with_bad(1e300, 2, 5), k=2), ValueError, "position 5"
    )
    assert isinstance(err, NusterDBError)


def test_bulk_add_names_the_id_of_the_non_finite_row(db: NusterDB) -> None:
    err = rejected(
        db, lambda d: d.bulk_add(range(100, 105), rows_with_bad(float("nan"), 3, 4)), ValueError
    )
    assert "103" in str(err), str(err)


# ------------------------------------------------------------------- dimensions

DIM_CALLS: List[Tuple[str, Call, int]] = [
    ("add_short", lambda d: d.add(100, [1.0] * (DIM - 1)), DIM - 1),
    ("add_long", lambda d: d.add(100, np.ones(DIM + 3, np.float32)), DIM + 3),
    ("upsert", lambda d: d.upsert(1, [1.0] * (DIM + 1)), DIM + 1),
    ("update", lambda d: d.update(1, [1.0] * (DIM - 2)), DIM - 2),
    ("bulk_add_array", lambda d: d.bulk_add([100, 101], np.ones((2, DIM - 1))), DIM - 1),
    (
        "bulk_add_lists_one_bad_row",
        lambda d: d.bulk_add([100, 101, 102], [ok_vec(), [1.0] * (DIM + 1), ok_vec()]),
        DIM + 1,
    ),
    ("search", lambda d: d.search([1.0] * (DIM - 1)), DIM - 1),
    ("batch_search_array", lambda d: d.batch_search(np.ones((3, DIM + 2), np.float32)), DIM + 2),
    ("batch_search_lists", lambda d: d.batch_search([ok_vec(), [1.0] * 3]), 3),
    ("batch_search_empty_wrong_dim", lambda d: d.batch_search(np.ones((0, 3), np.float32)), 3),
]


@pytest.mark.parametrize(
    ("call", "got"), [(c, g) for _, c, g in DIM_CALLS], ids=[n for n, _, _ in DIM_CALLS]
)
def test_wrong_dimension_is_a_dimension_mismatch_naming_expected_and_got(
    db: NusterDB, call: Call, got: int
) -> None:
    err = rejected(db, call, DimensionMismatchError)
    msg = str(err)
    assert isinstance(err, ValueError)
    assert isinstance(err, NusterDBError)
    assert f"expected {DIM}" in msg, msg
    assert f"got {got}" in msg, msg


def test_empty_vector_is_rejected(db: NusterDB) -> None:
    err = rejected(db, lambda d: d.add(100, []), ValueError)
    assert isinstance(err, (InvalidVectorError, DimensionMismatchError))
    rejected(db, lambda d: d.search([]), ValueError)


# ------------------------------------------------------------------- duplicate ids


def test_add_of_existing_id_is_a_duplicate_naming_the_id(db: NusterDB) -> None:
    err = rejected(db, lambda d: d.add(7, ok_vec()), DuplicateIdError, match="7")
    assert isinstance(err, ValueError)


def test_bulk_add_with_an_existing_id_rejects_the_whole_batch(db: NusterDB) -> None:
    rejected(
        db, lambda d: d.bulk_add([100, 101, 13, 102], ok_rows(4)), DuplicateIdError, match="13"
    )
    assert 100 not in db


def test_bulk_add_with_a_repeated_id_rejects_the_whole_batch(db: NusterDB) -> None:
    rejected(
        db,
        lambda d: d.bulk_add([100, 101, 555, 102, 555], ok_rows(5)),
        DuplicateIdError,
        match="555",
    )
    rejected(
        db,
        lambda d: d.bulk_add(np.array([200, 200], np.int64), ok_rows(2)),
        DuplicateIdError,
        match="200",
    )
    assert 100 not in db
    assert 200 not in db


# ------------------------------------------------------------------- bad ids

BAD_ID_CASES: List[Tuple[str, Any, Expected]] = [
    ("negative", -1, ValueError),
    ("very_negative", -(2**70), (ValueError, OverflowError)),
    ("two_to_63", 2**63, OverflowError),
    ("two_to_64", 2**64, OverflowError),
    ("numpy_uint64_two_to_63", np.uint64(2**63), OverflowError),
    ("numpy_uint64_max", np.uint64(2**64 - 1), OverflowError),
    ("numpy_int64_negative", np.int64(-5), ValueError),
    ("float", 1.0, TypeError),
    ("numpy_float", np.float64(3.0), TypeError),
    ("str", "1", TypeError),
    ("bool", True, TypeError),
    ("none", None, TypeError),
]


@pytest.mark.parametrize(
    ("bad", "expected"), [(b, e) for _, b, e in BAD_ID_CASES], ids=[n for n, _, _ in BAD_ID_CASES]
)
@pytest.mark.parametrize(
    "method",
    ["add", "upsert", "update", "bulk_add", "remove", "bulk_remove", "get", "get_metadata"],
)
def test_bad_ids_are_rejected_with_the_documented_error(
    db: NusterDB, bad: Any, expected: Expected, method: str
) -> None:
    calls: Dict[str, Call] = {
        "add": lambda d: d.add(bad, ok_vec()),
        "upsert": lambda d: d.upsert(bad, ok_vec()),
        "update": lambda d: d.update(bad, ok_vec()),
        "bulk_add": lambda d: d.bulk_add([100, bad, 101], ok_rows(3)),
        "remove": lambda d: d.remove(bad),
        "bulk_remove": lambda d: d.bulk_remove([1, bad, 2]),
        "get": lambda d: d.get(bad),
        "get_metadata": lambda d: d.get_metadata(bad),
    }
    rejected(db, calls[method], expected)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (np.array([100, -1, 101], dtype=np.int64), ValueError),
        (np.array([100, 2**63, 101], dtype=np.uint64), OverflowError),
        (np.array([100.0, 1.0, 101.0]), TypeError),
        (np.array(["100", "1", "101"]), TypeError),
        (np.array([True, False, True]), TypeError),
        (np.array([[100, 1, 101]], dtype=np.int64), ValueError),
        ("abc", TypeError),
        (5, TypeError),
    ],
    ids=[
        "int64_negative",
        "uint64_2_63",
        "float_array",
        "str_array",
        "bool_array",
        "2d_ids",
        "str",
        "int",
    ],
)
def test_bad_id_arrays_in_bulk_calls_are_rejected(
    db: NusterDB, ids: Any, expected: Type[BaseException]
) -> None:
    rejected(db, lambda d: d.bulk_add(ids, ok_rows(3)), expected)
    rejected(db, lambda d: d.bulk_remove(ids), expected)


# ------------------------------------------------------------------- k


@pytest.mark.parametrize("k", [0, -1, -(2**62)])
def test_non_positive_k_is_a_value_error(db: NusterDB, k: int) -> None:
    rejected(db, lambda d: d.search(ok_vec(), k=k), ValueError)
    rejected(db, lambda d: d.batch_search(ok_rows(2), k=k), ValueError)


def test_non_integer_k_is_a_type_error(db: NusterDB) -> None:
    rejected(db, lambda d: d.search(ok_vec(), k=2.5), TypeError)
    rejected(db, lambda d: d.search(ok_vec(), k="3"), TypeError)


def test_k_beyond_count_returns_count_without_k_sized_allocation(db: NusterDB) -> None:
    before = state_checksum(db)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for k in (N + 1, 10**12, 2**62):
        assert len(db.search(ok_vec(), k=k)) == N
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rss_after - rss_before < 256 * 1024, "a k-sized allocation happened (KiB)"
    assert state_checksum(db) == before


def test_batch_search_above_the_result_cap_raises_before_allocating(db: NusterDB) -> None:
    # The cap is on what is returned, n x min(k, count): 14,000 queries x 20,020 stored
    # vectors is above 2^28, whatever k.
    db.bulk_add(range(1000, 21_000), np.full((20_000, DIM), 0.75, dtype=np.float32))
    queries = np.full((14_000, DIM), 0.5, dtype=np.float32)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for k in (2**40, 20_000):
        err = rejected(db, partial(lambda d, kk: d.batch_search(queries, k=kk), kk=k), ValueError)
        assert "limit" in str(err) or "cap" in str(err), str(err)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rss_after - rss_before < 256 * 1024, "allocated before raising (KiB)"
    # Fewer queries, below the cap: the same k is answered.
    ids, _ = db.batch_search(queries[:2], k=2**40)
    assert ids.shape == (2, N + 20_000)


# ------------------------------------------------------------------- array shapes and dtypes

SHAPE_CASES: List[Tuple[str, Call, Expected]] = [
    ("bulk_add_1d", lambda d: d.bulk_add([100], np.ones(DIM, np.float32)), ValueError),
    ("bulk_add_3d", lambda d: d.bulk_add([100, 101], np.ones((2, 1, DIM), np.float32)), ValueError),
    ("batch_search_1d", lambda d: d.batch_search(np.ones(DIM, np.float32)), ValueError),
    ("batch_search_3d", lambda d: d.batch_search(np.ones((2, 2, DIM), np.float32)), ValueError),
    ("batch_search_0d", lambda d: d.batch_search(np.float32(1.0)), (TypeError, ValueError)),
    ("add_2d", lambda d: d.add(100, np.ones((1, DIM), np.float32)), ValueError),
    ("search_2d", lambda d: d.search(np.ones((1, DIM), np.float32)), ValueError),
    ("add_object_array", lambda d: d.add(100, np.array([object()] * DIM)), TypeError),
    ("add_str_array", lambda d: d.add(100, np.array(["1"] * DIM)), TypeError),
    ("add_str", lambda d: d.add(100, "12345678"), TypeError),
    ("add_strings", lambda d: d.add(100, ["a"] * DIM), TypeError),
    ("add_none", lambda d: d.add(100, None), TypeError),
    ("add_complex_array", lambda d: d.add(100, np.ones(DIM, np.complex64)), TypeError),
    (
        "bulk_add_object_array",
        lambda d: d.bulk_add([100, 101], np.array([[object()] * DIM] * 2)),
        TypeError,
    ),
    ("bulk_add_str_array", lambda d: d.bulk_add([100, 101], np.full((2, DIM), "x")), TypeError),
    (
        "bulk_add_complex_array",
        lambda d: d.bulk_add([100, 101], np.ones((2, DIM), np.complex128)),
        TypeError,
    ),
    ("bulk_add_str_rows", lambda d: d.bulk_add([100, 101], ["abcdefgh", "abcdefgh"]), TypeError),
    ("bulk_add_not_iterable", lambda d: d.bulk_add([100], 5), TypeError),
    (
        "batch_search_object_array",
        lambda d: d.batch_search(np.array([[object()] * DIM])),
        TypeError,
    ),
    ("batch_search_str_array", lambda d: d.batch_search(np.full((1, DIM), "1")), TypeError),
    ("search_str", lambda d: d.search("abc"), TypeError),
]


@pytest.mark.parametrize(
    ("call", "expected"), [(c, e) for _, c, e in SHAPE_CASES], ids=[n for n, _, _ in SHAPE_CASES]
)
def test_wrong_array_shapes_and_dtypes_are_rejected(
    db: NusterDB, call: Call, expected: Expected
) -> None:
    rejected(db, call, expected)


def test_lossless_conversions_are_accepted(db: NusterDB) -> None:
    ints = np.arange(DIM, dtype=np.int32)
    db.add(100, ints)
    db.bulk_add([101, 102], np.array([[True] * DIM, [False] * DIM]))
    db.bulk_add([103], np.ones((1, DIM), np.float16))
    got = db.get(100)
    assert got is not None
    assert got.to_numpy().tolist() == ints.astype(np.float32).tolist()
    got = db.get(101)
    assert got is not None
    assert got.to_numpy().tolist() == [1.0] * DIM


# ------------------------------------------------------------------- metadata


METADATA_CASES: List[Tuple[str, Any, Type[BaseException]]] = [
    ("dollar_key", {"$x": 1}, ValueError),
    ("empty_key", {"": 1}, ValueError),
    ("non_str_key", {1: 1}, TypeError),
    ("none_value", {"a": None}, TypeError),
    ("list_value", {"a": [1]}, TypeError),
    ("dict_value", {"a": {"b": 1}}, TypeError),
    ("nan_value", {"a": float("nan")}, ValueError),
    ("inf_value", {"a": float("inf")}, ValueError),
    ("int_too_big", {"a": 2**63}, OverflowError),
    ("not_a_dict", ["a", 1], TypeError),
    ("str", "a=1", TypeError),
]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [(m, e) for _, m, e in METADATA_CASES],
    ids=[n for n, _, _ in METADATA_CASES],
)
def test_bad_metadata_is_rejected_whole(
    db: NusterDB, meta: Any, expected: Type[BaseException]
) -> None:
    rejected(db, lambda d: d.add(100, ok_vec(), meta), expected)
    rejected(db, lambda d: d.upsert(3, ok_vec(9.0), meta), expected)
    rejected(db, lambda d: d.update(3, ok_vec(9.0), meta), expected)
    rejected(
        db, lambda d: d.bulk_add([100, 101, 102], ok_rows(3), [{"a": 1}, meta, None]), expected
    )


# ------------------------------------------------------------------- read-only handles

READ_ONLY_WRITES: List[Tuple[str, Call]] = [
    ("add", lambda d: d.add(100, ok_vec())),
    ("upsert", lambda d: d.upsert(1, ok_vec())),
    ("update", lambda d: d.update(1, ok_vec())),
    ("update_metadata", lambda d: d.update(1, metadata={"a": 1})),
    ("bulk_add", lambda d: d.bulk_add([100, 101], ok_rows(2))),
    ("remove", lambda d: d.remove(1)),
    ("remove_absent", lambda d: d.remove(12345)),
    ("bulk_remove", lambda d: d.bulk_remove([1, 2])),
    ("snapshot", lambda d: d.snapshot()),
    ("snapshot_named", lambda d: d.snapshot_named("ro")),
    ("snapshot_with_metadata", lambda d: d.snapshot_with_metadata("ro", {"a": 1})),
    ("delete_snapshot", lambda d: d.delete_snapshot("s0")),
]


@pytest.mark.parametrize(
    "call", [c for _, c in READ_ONLY_WRITES], ids=[n for n, _ in READ_ONLY_WRITES]
)
@pytest.mark.parametrize("writer_alive", [True, False], ids=["beside_writer", "alone"])
def test_writes_on_a_read_only_handle_raise_read_only_error(
    tmp_path: Path, call: Call, writer_alive: bool
) -> None:
    path = str(tmp_path / "db")
    writer = NusterDB(path, dim=DIM)
    writer.bulk_add([1, 2, 3], ok_rows(3), [{"a": 0}] * 3)
    writer.snapshot_named("s0")
    writer.flush()
    if not writer_alive:
        writer.close()
    with NusterDB.open(path, read_only=True) as ro:
        assert ro.read_only
        rejected(ro, call, ReadOnlyError)
        assert [s["name"] for s in ro.list_snapshots()] == ["s0"]
    if writer_alive:
        assert writer.list_ids() == [1, 2, 3]
        writer.close()
    with NusterDB.open(path) as again:
        assert again.list_ids() == [1, 2, 3]
        assert [s["name"] for s in again.list_snapshots()] == ["s0"]


# ------------------------------------------------------------------- jaccard


@pytest.fixture
def jaccard_db(tmp_path: Path) -> Iterator[NusterDB]:
    with NusterDB(str(tmp_path / "jac"), DatabaseConfig(4, distance_metric="jaccard")) as d:
        d.bulk_add([1, 2], [[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 1.0, 1.0]], [{"a": 1}, None])
        yield d


NEGATIVE = [1.0, -0.5, 0.0, 2.0]
JACCARD_CALLS: List[Tuple[str, Call]] = [
    ("add", lambda d: d.add(3, NEGATIVE)),
    ("upsert", lambda d: d.upsert(1, NEGATIVE)),
    ("update", lambda d: d.update(2, NEGATIVE)),
    ("bulk_add", lambda d: d.bulk_add([3, 4], [[1.0, 1.0, 1.0, 1.0], NEGATIVE])),
    ("search", lambda d: d.search(NEGATIVE, k=2)),
    ("batch_search", lambda d: d.batch_search(np.array([NEGATIVE], np.float32), k=2)),
]


@pytest.mark.parametrize("call", [c for _, c in JACCARD_CALLS], ids=[n for n, _ in JACCARD_CALLS])
def test_jaccard_database_rejects_negative_components(jaccard_db: NusterDB, call: Call) -> None:
    err = rejected(jaccard_db, call, ValueError)
    assert isinstance(err, NusterDBError)
    assert "position 1" in str(err) or "-0.5" in str(err), str(err)


def test_jaccard_database_accepts_negative_zero(jaccard_db: NusterDB) -> None:
    jaccard_db.add(3, [-0.0, 1.0, 0.0, 0.0])
    assert jaccard_db.search([0.0, 1.0, 0.0, 0.0], k=1) == [(3, 0.0)]
