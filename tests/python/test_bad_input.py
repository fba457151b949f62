"""RELIABILITY.md's bad-input table (T6): every rejected call raises the documented typed
error, and leaves the database exactly as it was (count, ids, and a checksum of every
stored vector, metadata and document are equal before and after).

The rows run on an int-id database and on a string-id one whose records carry documents
(the ``db`` fixture is parametrised by id type); rows only one kind of id has (negative
ints, empty or over-long strs) have their own tests."""

from __future__ import annotations

import re
import resource
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Type, Union

import numpy as np
import pytest
from db_helpers import state_checksum
from nusterdb import (
    ClosedError,
    DatabaseConfig,
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    IdTypeError,
    InvalidArgumentError,
    InvalidVectorError,
    Metadata,
    NusterDB,
    NusterDBError,
    ReadOnlyError,
)

DIM = 8
N = 20
ID_TYPES = ["int", "str"]
# The database argument is Any: these calls pass wrong types on purpose.
Call = Callable[[Any], object]
Expected = Union[Type[BaseException], Tuple[Type[BaseException], ...]]


def key_for(id_type: str, i: int) -> Any:
    """The id number ``i`` stands for in a database of ``id_type`` (a str id has a
    multi-byte character, so byte and character lengths differ)."""
    return f"doc-{i}-é" if id_type == "str" else i


def key(d: Any, i: int) -> Any:
    return key_for(d.config.id_type, i)


def keys(d: Any, numbers: Iterable[int]) -> List[Any]:
    return [key(d, i) for i in numbers]


def shown(d: Any, i: int) -> str:
    """How an error message names id number ``i``, as a regex."""
    k = key(d, i)
    return re.escape(f'id "{k}"') if isinstance(k, str) else rf"id {k}\b"


def text(i: int) -> str:
    return f"document {i}: é ☃"


def doc(d: Any, i: int) -> Dict[str, Any]:
    """``document=`` for a write on a string-id database (nothing on an int-id one, whose
    rows are the table's original ones)."""
    return {"document": text(i)} if d.config.id_type == "str" else {}


def docs(d: Any, numbers: Iterable[int]) -> Dict[str, Any]:
    """``documents=`` for a ``bulk_add`` on a string-id database."""
    return {"documents": [text(i) for i in numbers]} if d.config.id_type == "str" else {}


def make_db(path: Optional[str], id_type: str) -> NusterDB:
    """N rows with metadata and tags; on a string-id database documents on three rows
    of four (every fourth has none)."""
    rng = np.random.default_rng(1234)
    d = NusterDB(path, DatabaseConfig(DIM, id_type=id_type))
    extra: Dict[str, Any] = {}
    if id_type == "str":
        extra["documents"] = [None if i % 4 == 3 else text(i) for i in range(N)]
    d.bulk_add(
        [key_for(id_type, i) for i in range(N)],
        rng.standard_normal((N, DIM)).astype(np.float32),
        [Metadata.with_data({"i": i, "s": f"row{i}"}, tags=[f"t{i % 3}"]) for i in range(N)],
        **extra,
    )
    return d


# The databases most rows run on are in memory: the same RocksDB write path as on disk
# (an in-memory file system under it), at about 5 ms a database instead of 75 ms. The
# rows about files (use after close, read-only handles, opening) use a directory.
@pytest.fixture(params=ID_TYPES)
def db(request: pytest.FixtureRequest) -> Iterator[NusterDB]:
    with make_db(None, request.param) as d:
        yield d


@pytest.fixture
def int_db() -> Iterator[NusterDB]:
    with make_db(None, "int") as d:
        yield d


@pytest.fixture
def str_db() -> Iterator[NusterDB]:
    with make_db(None, "str") as d:
        yield d


@pytest.fixture(params=ID_TYPES)
def disk_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NusterDB]:
    with make_db(str(tmp_path / "db"), request.param) as d:
        yield d


def rejected(db: NusterDB, call: Call, expected: Expected, match: str = "") -> BaseException:
    """Runs ``call``, asserts it raises ``expected`` (matching ``match``) and that the
    database state is unchanged; returns the exception."""
    before = state_checksum(db)
    with pytest.raises(expected, match=match or None) as info:
        call(db)
    assert state_checksum(db) == before, "a rejected call changed the database"
    return info.value


def all_rejected(
    db: NusterDB, calls: Dict[str, Call], expected: Expected, match: str = ""
) -> List[BaseException]:
    """``rejected`` for each call, a failure naming the call."""
    errors = []
    for name, call in calls.items():
        try:
            errors.append(rejected(db, call, expected, match))
        except (Exception, pytest.fail.Exception) as e:
            raise AssertionError(f"{name}: {e}") from e
    return errors


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
    (
        "add_list",
        lambda x: lambda d: d.add(key(d, 100), with_bad(x, 5), **doc(d, 100)),
        "position 5",
    ),
    (
        "add_f32_array",
        lambda x: lambda d: d.add(key(d, 100), np.array(with_bad(x, 6), np.float32), **doc(d, 1)),
        "position 6",
    ),
    (
        "add_f64_array",
        lambda x: lambda d: d.add(key(d, 100), np.array(with_bad(x, 2), np.float64)),
        "position 2",
    ),
    (
        "upsert_new",
        lambda x: lambda d: d.upsert(key(d, 100), with_bad(x, 1), **doc(d, 100)),
        "position 1",
    ),
    (
        "upsert_existing",
        lambda x: lambda d: d.upsert(key(d, 3), with_bad(x, 1), **doc(d, 100)),
        "position 1",
    ),
    (
        "update",
        lambda x: lambda d: d.update(key(d, 3), with_bad(x, 7), **doc(d, 100)),
        "position 7",
    ),
    (
        "bulk_add_f64",
        lambda x: (
            lambda d: d.bulk_add(
                keys(d, range(100, 105)), rows_with_bad(x, 3, 4), **docs(d, range(5))
            )
        ),
        "position 4",
    ),
    (
        "bulk_add_f32",
        lambda x: (
            lambda d: d.bulk_add(
                keys(d, range(100, 105)), rows_with_bad(x, 3, 4).astype(np.float32)
            )
        ),
        "position 4",
    ),
    (
        "bulk_add_lists",
        lambda x: (
            lambda d: d.bulk_add(
                keys(d, range(100, 105)), rows_with_bad(x, 2, 0).tolist(), **docs(d, range(5))
            )
        ),
        "position 0",
    ),
    ("search", lambda x: lambda d: d.search(with_bad(x, 3), k=3), "position 3"),
    (
        "search_with_filter",
        lambda x: lambda d: d.search(with_bad(x, 3), k=3, filter={"i": 1}),
        "position 3",
    ),
    (
        "search_include",
        lambda x: lambda d: d.search(with_bad(x, 0), k=3, include=["document", "metadata"]),
        "position 0",
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
    err = rejected(
        db, lambda d: d.add(key(d, 100), with_bad(1e300, 4), **doc(d, 1)), ValueError, "position 4"
    )
    assert isinstance(err, NusterDBError)
    err = rejected(db, lambda d: d.search(with_bad(-1e39, 2)), ValueError, "position 2")
    assert isinstance(err, NusterDBError)


def test_float64_value_that_overflows_float32_in_bulk_add_is_rejected(db: NusterDB) -> None:
    # The conversion must not leak numpy's "overflow encountered in cast" warning
    # (pytest turns warnings into errors): the caller gets the typed error only.
    err = rejected(
        db,
        lambda d: d.bulk_add(keys(d, range(100, 105)), rows_with_bad(-1e39, 0, 1)),
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
        db,
        lambda d: d.bulk_add(
            keys(d, range(100, 105)), rows_with_bad(float("nan"), 3, 4), **docs(d, range(5))
        ),
        ValueError,
    )
    assert re.search(shown(db, 103), str(err)), str(err)


# ------------------------------------------------------------------- dimensions

DIM_CALLS: List[Tuple[str, Call, int]] = [
    ("add_short", lambda d: d.add(key(d, 100), [1.0] * (DIM - 1), **doc(d, 1)), DIM - 1),
    ("add_long", lambda d: d.add(key(d, 100), np.ones(DIM + 3, np.float32)), DIM + 3),
    ("upsert", lambda d: d.upsert(key(d, 1), [1.0] * (DIM + 1), **doc(d, 100)), DIM + 1),
    ("update", lambda d: d.update(key(d, 1), [1.0] * (DIM - 2), **doc(d, 100)), DIM - 2),
    (
        "bulk_add_array",
        lambda d: d.bulk_add(keys(d, [100, 101]), np.ones((2, DIM - 1)), **docs(d, [1, 2])),
        DIM - 1,
    ),
    (
        "bulk_add_lists_one_bad_row",
        lambda d: d.bulk_add(keys(d, [100, 101, 102]), [ok_vec(), [1.0] * (DIM + 1), ok_vec()]),
        DIM + 1,
    ),
    ("search", lambda d: d.search([1.0] * (DIM - 1)), DIM - 1),
    ("search_include", lambda d: d.search([1.0] * (DIM + 1), include=["document"]), DIM + 1),
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
    err = rejected(db, lambda d: d.add(key(d, 100), [], **doc(d, 1)), ValueError)
    assert isinstance(err, (InvalidVectorError, DimensionMismatchError))
    rejected(db, lambda d: d.search([]), ValueError)


# ------------------------------------------------------------------- duplicate ids


def test_add_of_existing_id_is_a_duplicate_naming_the_id(db: NusterDB) -> None:
    err = rejected(
        db, lambda d: d.add(key(d, 7), ok_vec(), **doc(d, 100)), DuplicateIdError, shown(db, 7)
    )
    assert isinstance(err, ValueError)


def test_bulk_add_with_an_existing_id_rejects_the_whole_batch(db: NusterDB) -> None:
    rejected(
        db,
        lambda d: d.bulk_add(keys(d, [100, 101, 13, 102]), ok_rows(4), **docs(d, range(4))),
        DuplicateIdError,
        shown(db, 13),
    )
    assert key(db, 100) not in db


def test_bulk_add_with_a_repeated_id_rejects_the_whole_batch(db: NusterDB) -> None:
    # The message names the id and both rows it is given in.
    rejected(
        db,
        lambda d: d.bulk_add(keys(d, [100, 101, 555, 102, 555]), ok_rows(5), **docs(d, range(5))),
        DuplicateIdError,
        shown(db, 555) + r".*\(rows 2 and 4\)",
    )
    rejected(
        db,
        lambda d: d.bulk_add(np.array(keys(d, [200, 200])), ok_rows(2)),
        DuplicateIdError,
        shown(db, 200) + r".*\(rows 0 and 1\)",
    )
    # A repeat of an id that is also stored already.
    rejected(
        db,
        lambda d: d.bulk_add(keys(d, [300, 4, 301, 4]), ok_rows(4)),
        DuplicateIdError,
        shown(db, 4),
    )
    for i in (100, 200, 300):
        assert key(db, i) not in db


# ------------------------------------------------------------------- bad ids


def id_calls(bad: Any) -> Dict[str, Call]:
    """Every call that takes an id, given ``bad`` (in a batch: between two good ids)."""
    return {
        "add": lambda d: d.add(bad, ok_vec(), **doc(d, 1)),
        "upsert": lambda d: d.upsert(bad, ok_vec(), **doc(d, 1)),
        "update": lambda d: d.update(bad, ok_vec(), **doc(d, 1)),
        "bulk_add": lambda d: d.bulk_add(
            [key(d, 100), bad, key(d, 101)], ok_rows(3), **docs(d, range(3))
        ),
        "remove": lambda d: d.remove(bad),
        "bulk_remove": lambda d: d.bulk_remove([key(d, 1), bad, key(d, 2)]),
        "get": lambda d: d.get(bad),
        "get_metadata": lambda d: d.get_metadata(bad),
        "get_document": lambda d: d.get_document(bad),
        "get_many": lambda d: d.get_many([key(d, 1), bad]),
        "contains": lambda d: d.contains(bad),
    }


ID_METHODS = list(id_calls(None))

BAD_ID_CASES: List[Tuple[str, Any, Expected]] = [
    ("negative", -1, InvalidArgumentError),
    ("very_negative", -(2**70), (ValueError, OverflowError)),
    ("two_to_63", 2**63, OverflowError),
    ("two_to_64", 2**64, OverflowError),
    ("numpy_uint64_two_to_63", np.uint64(2**63), OverflowError),
    ("numpy_uint64_max", np.uint64(2**64 - 1), OverflowError),
    ("numpy_int64_negative", np.int64(-5), InvalidArgumentError),
    ("float", 1.0, IdTypeError),
    ("numpy_float", np.float64(3.0), IdTypeError),
    ("str", "1", IdTypeError),
    ("str_id", "doc-1-é", IdTypeError),
    ("bool", True, IdTypeError),
    ("none", None, IdTypeError),
    # numpy arrays have __index__, which refuses all but 0-d ones: not an id.
    ("numpy_int_array_of_one", np.array([5]), IdTypeError),
    ("numpy_int_array", np.array([5, 6], dtype=np.int64), IdTypeError),
]


@pytest.mark.parametrize(
    ("bad", "expected"), [(b, e) for _, b, e in BAD_ID_CASES], ids=[n for n, _, _ in BAD_ID_CASES]
)
@pytest.mark.parametrize("method", ID_METHODS)
def test_bad_ids_are_rejected_with_the_documented_error(
    int_db: NusterDB, bad: Any, expected: Expected, method: str
) -> None:
    rejected(int_db, id_calls(bad)[method], expected)


# A str id database takes non-empty strs of at most 1,024 UTF-8 bytes; anything else is
# the wrong kind of id (IdTypeError, also a TypeError) or an InvalidArgumentError naming
# the id. Each case runs every call of `id_calls`.
BAD_STR_ID_CASES: List[Tuple[str, Any, Expected, str]] = [
    ("int", 1, IdTypeError, "is int"),
    ("numpy_int", np.int64(1), IdTypeError, "is int64"),
    ("bool", True, IdTypeError, "is bool"),
    ("bytes_of_a_stored_id", "doc-1-é".encode(), IdTypeError, "is bytes"),
    ("bytearray", bytearray(b"doc-1"), IdTypeError, "is bytearray"),
    ("none", None, IdTypeError, "is NoneType"),
    ("float", 1.0, IdTypeError, "is float"),
    ("numpy_int_array", np.array([1, 2]), IdTypeError, "is ndarray"),
    ("numpy_2d_str_array", np.array([["doc-1-é"]]), IdTypeError, "is ndarray"),
    ("empty", "", InvalidArgumentError, "empty"),
    ("1025_bytes", "x" * 1025, InvalidArgumentError, "is 1025 bytes, above the limit of 1024"),
    ("513_two_byte_chars", "é" * 513, InvalidArgumentError, "is 1026 bytes"),
    ("lone_surrogate", "doc-1-\ud800", InvalidArgumentError, "U\\+D800 at index 6"),
]


@pytest.mark.parametrize(
    ("bad", "expected", "match"),
    [(b, e, m) for _, b, e, m in BAD_STR_ID_CASES],
    ids=[n for n, _, _, _ in BAD_STR_ID_CASES],
)
def test_bad_ids_on_a_string_id_database_are_rejected(
    str_db: NusterDB, bad: Any, expected: Expected, match: str
) -> None:
    errors = all_rejected(str_db, id_calls(bad), expected, match)
    for err in errors:
        assert isinstance(err, InvalidArgumentError), type(err)
        if expected is IdTypeError:
            assert isinstance(err, TypeError)
            assert 'ids are strs (id_type="str")' in str(err), str(err)
    # `in` answers like a dict: a value that cannot be an id is not in the database.
    assert bad not in str_db


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (np.array([100, -1, 101], dtype=np.int64), InvalidArgumentError),
        (np.array([100, 2**63, 101], dtype=np.uint64), OverflowError),
        (np.array([100.0, 1.0, 101.0]), IdTypeError),
        (np.array(["100", "1", "101"]), IdTypeError),
        (np.array([True, False, True]), IdTypeError),
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
    int_db: NusterDB, ids: Any, expected: Type[BaseException]
) -> None:
    rejected(int_db, lambda d: d.bulk_add(ids, ok_rows(3)), expected)
    rejected(int_db, lambda d: d.bulk_remove(ids), expected)
    rejected(int_db, lambda d: d.get_many(ids), expected)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (np.array([100, 1, 101], dtype=np.int64), IdTypeError),
        (np.array([[key_for("str", i) for i in (100, 1, 101)]]), ValueError),
        (np.array([b"doc-100", b"doc-1", b"doc-101"]), IdTypeError),
        (np.array([key_for("str", 100), None, key_for("str", 101)], dtype=object), IdTypeError),
        ([key_for("str", 100), 1, key_for("str", 101)], IdTypeError),
        (key_for("str", 1), TypeError),
        (5, TypeError),
    ],
    ids=[
        "int64_array",
        "2d_str_array",
        "bytes_array",
        "object_array_with_none",
        "list_with_int",
        "str",
        "int",
    ],
)
def test_bad_id_arrays_on_a_string_id_database_are_rejected(
    str_db: NusterDB, ids: Any, expected: Type[BaseException]
) -> None:
    rejected(str_db, lambda d: d.bulk_add(ids, ok_rows(3), documents=["a", "b", "c"]), expected)
    rejected(str_db, lambda d: d.bulk_remove(ids), expected)
    rejected(str_db, lambda d: d.get_many(ids), expected)


# ------------------------------------------------------------------- k


@pytest.mark.parametrize("k", [0, -1, -(2**62)])
def test_non_positive_k_is_a_value_error(db: NusterDB, k: int) -> None:
    rejected(db, lambda d: d.search(ok_vec(), k=k), ValueError)
    rejected(db, lambda d: d.search(ok_vec(), k=k, include=["document"]), ValueError)
    rejected(db, lambda d: d.batch_search(ok_rows(2), k=k), ValueError)


def test_non_integer_k_is_a_type_error(db: NusterDB) -> None:
    rejected(db, lambda d: d.search(ok_vec(), k=2.5), TypeError)
    rejected(db, lambda d: d.search(ok_vec(), k="3"), TypeError)


def test_k_beyond_count_returns_count_without_k_sized_allocation(db: NusterDB) -> None:
    before = state_checksum(db)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for k in (N + 1, 10**12, 2**62):
        assert len(db.search(ok_vec(), k=k)) == N
        hits = db.search(ok_vec(), k=k, include=["document", "metadata", "vector"])
        assert [h.id for h in hits] == [i for i, _ in db.search(ok_vec(), k=k)]
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rss_after - rss_before < 256 * 1024, "a k-sized allocation happened (KiB)"
    assert state_checksum(db) == before


def test_batch_search_above_the_result_cap_raises_before_allocating(db: NusterDB) -> None:
    # The cap is on what is returned, n x min(k, count): 14,000 queries x 20,020 stored
    # vectors is above 2^28, whatever k.
    db.bulk_add(keys(db, range(1000, 21_000)), np.full((20_000, DIM), 0.75, dtype=np.float32))
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
    assert ids.dtype == (object if db.config.id_type == "str" else np.int64)


# ------------------------------------------------------------------- empty database, empty batch


@pytest.mark.parametrize("id_type", ID_TYPES)
def test_empty_database_answers_empty_without_error(tmp_path: Path, id_type: str) -> None:
    id_dtype = object if id_type == "str" else np.int64
    with NusterDB(str(tmp_path / "empty"), DatabaseConfig(DIM, id_type=id_type)) as e:
        before = state_checksum(e)
        assert before[:2] == (0, [])
        assert e.search(ok_vec(), k=5) == []
        assert e.search(ok_vec(), k=5, filter={"i": 1}) == []
        assert e.search(ok_vec(), k=5, include=["vector", "metadata", "document"]) == []
        for n in (3, 0):
            ids, dist = e.batch_search(ok_rows(n), k=5)
            assert ids.shape == dist.shape == (n, 0)
            assert ids.dtype == id_dtype
            assert dist.dtype == np.float32
        for asked in ([], keys(e, [1, 2])):
            got = e.get_many(asked)
            assert got["ids"] == []
            assert got["metadatas"] == []
            assert got["documents"] == []
            assert got["vectors"].shape == (0, DIM)
            assert got["vectors"].dtype == np.float32
        assert e.get(key(e, 1)) is None
        assert e.get_document(key(e, 1)) is None
        assert e.bulk_remove(keys(e, [1, 2])) == 0
        assert state_checksum(e) == before


def test_empty_batch_gives_arrays_of_shape_0_by_k(db: NusterDB) -> None:
    before = state_checksum(db)
    id_dtype = object if db.config.id_type == "str" else np.int64
    for flt in (None, {"i": {"$lt": 3}}):
        ids, dist = db.batch_search(np.zeros((0, DIM), np.float32), k=5, filter=flt)
        assert ids.shape == dist.shape == (0, 5)
        assert ids.dtype == id_dtype
        assert dist.dtype == np.float32
    # A filter matching fewer than k: padding, -1 / None and inf.
    ids, dist = db.batch_search(ok_rows(2), k=5, filter={"i": {"$lt": 3}})
    assert ids.shape == (2, 5)
    pad = None if db.config.id_type == "str" else -1
    assert all(x == pad for x in ids[:, 3:].ravel().tolist())
    assert np.isinf(dist[:, 3:]).all()
    got = db.get_many([])
    assert got["ids"] == []
    assert got["vectors"].shape == (0, DIM)
    assert db.bulk_remove([]) == 0
    assert db.bulk_add([], np.zeros((0, DIM), np.float32)) == 0
    assert state_checksum(db) == before


# ------------------------------------------------------------------- array shapes and dtypes

SHAPE_CASES: List[Tuple[str, Call, Expected]] = [
    ("bulk_add_1d", lambda d: d.bulk_add(keys(d, [100]), np.ones(DIM, np.float32)), ValueError),
    (
        "bulk_add_3d",
        lambda d: d.bulk_add(keys(d, [100, 101]), np.ones((2, 1, DIM), np.float32)),
        ValueError,
    ),
    ("batch_search_1d", lambda d: d.batch_search(np.ones(DIM, np.float32)), ValueError),
    ("batch_search_3d", lambda d: d.batch_search(np.ones((2, 2, DIM), np.float32)), ValueError),
    ("batch_search_0d", lambda d: d.batch_search(np.float32(1.0)), (TypeError, ValueError)),
    ("add_2d", lambda d: d.add(key(d, 100), np.ones((1, DIM), np.float32)), ValueError),
    ("search_2d", lambda d: d.search(np.ones((1, DIM), np.float32)), ValueError),
    ("add_object_array", lambda d: d.add(key(d, 100), np.array([object()] * DIM)), TypeError),
    ("add_str_array", lambda d: d.add(key(d, 100), np.array(["1"] * DIM)), TypeError),
    ("add_str", lambda d: d.add(key(d, 100), "12345678"), TypeError),
    ("add_strings", lambda d: d.add(key(d, 100), ["a"] * DIM), TypeError),
    ("add_none", lambda d: d.add(key(d, 100), None), TypeError),
    ("add_complex_array", lambda d: d.add(key(d, 100), np.ones(DIM, np.complex64)), TypeError),
    (
        "bulk_add_object_array",
        lambda d: d.bulk_add(keys(d, [100, 101]), np.array([[object()] * DIM] * 2)),
        TypeError,
    ),
    (
        "bulk_add_str_array",
        lambda d: d.bulk_add(keys(d, [100, 101]), np.full((2, DIM), "x")),
        TypeError,
    ),
    (
        "bulk_add_complex_array",
        lambda d: d.bulk_add(keys(d, [100, 101]), np.ones((2, DIM), np.complex128)),
        TypeError,
    ),
    (
        "bulk_add_str_rows",
        lambda d: d.bulk_add(keys(d, [100, 101]), ["abcdefgh", "abcdefgh"]),
        TypeError,
    ),
    ("bulk_add_not_iterable", lambda d: d.bulk_add(keys(d, [100]), 5), TypeError),
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
    db.add(key(db, 100), ints)
    db.bulk_add(keys(db, [101, 102]), np.array([[True] * DIM, [False] * DIM]))
    db.bulk_add(keys(db, [103]), np.ones((1, DIM), np.float16))
    got = db.get(key(db, 100))
    assert got is not None
    assert got.to_numpy().tolist() == ints.astype(np.float32).tolist()
    got = db.get(key(db, 101))
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
    rejected(db, lambda d: d.add(key(d, 100), ok_vec(), meta, **doc(d, 1)), expected)
    rejected(db, lambda d: d.upsert(key(d, 3), ok_vec(9.0), meta, **doc(d, 1)), expected)
    # merge=False: in a merge (the default) a None value removes its key, a valid change.
    rejected(
        db, lambda d: d.update(key(d, 3), ok_vec(9.0), meta, **doc(d, 1), merge=False), expected
    )
    rejected(
        db,
        lambda d: d.bulk_add(
            keys(d, [100, 101, 102]), ok_rows(3), [{"a": 1}, meta, None], **docs(d, range(3))
        ),
        expected,
    )


# ------------------------------------------------------------------- read-only handles

READ_ONLY_WRITES: List[Tuple[str, Call]] = [
    ("add", lambda d: d.add(key(d, 100), ok_vec())),
    ("add_document", lambda d: d.add(key(d, 100), ok_vec(), document="new")),
    ("upsert", lambda d: d.upsert(key(d, 1), ok_vec())),
    ("upsert_document", lambda d: d.upsert(key(d, 1), ok_vec(), document="new")),
    ("update", lambda d: d.update(key(d, 1), ok_vec())),
    ("update_metadata", lambda d: d.update(key(d, 1), metadata={"a": 1})),
    ("update_document", lambda d: d.update(key(d, 1), document="new")),
    ("bulk_add", lambda d: d.bulk_add(keys(d, [100, 101]), ok_rows(2))),
    (
        "bulk_add_documents",
        lambda d: d.bulk_add(keys(d, [100, 101]), ok_rows(2), documents=["x", None]),
    ),
    ("remove", lambda d: d.remove(key(d, 1))),
    ("remove_absent", lambda d: d.remove(key(d, 12345))),
    ("bulk_remove", lambda d: d.bulk_remove(keys(d, [1, 2]))),
    ("snapshot", lambda d: d.snapshot()),
    ("snapshot_named", lambda d: d.snapshot_named("ro")),
    ("snapshot_with_metadata", lambda d: d.snapshot_with_metadata("ro", {"a": 1})),
    ("delete_snapshot", lambda d: d.delete_snapshot("s0")),
]


@pytest.mark.parametrize(
    "call", [c for _, c in READ_ONLY_WRITES], ids=[n for n, _ in READ_ONLY_WRITES]
)
@pytest.mark.parametrize("writer_alive", [True, False], ids=["beside_writer", "alone"])
@pytest.mark.parametrize("id_type", ID_TYPES)
def test_writes_on_a_read_only_handle_raise_read_only_error(
    tmp_path: Path, call: Call, writer_alive: bool, id_type: str
) -> None:
    path = str(tmp_path / "db")
    stored = [key_for(id_type, i) for i in (1, 2, 3)]
    writer = NusterDB(path, DatabaseConfig(DIM, id_type=id_type))
    writer.bulk_add(stored, ok_rows(3), [{"a": 0}] * 3, documents=["one", None, "three"])
    writer.snapshot_named("s0")
    writer.flush()
    if not writer_alive:
        writer.close()
    with NusterDB.open(path, read_only=True) as ro:
        assert ro.read_only
        rejected(ro, call, ReadOnlyError)
        assert [s["name"] for s in ro.list_snapshots()] == ["s0"]
    if writer_alive:
        assert writer.list_ids() == sorted(stored)
        writer.close()
    with NusterDB.open(path) as again:
        assert again.list_ids() == sorted(stored)
        assert again.get_many(stored, include=["document"])["documents"] == ["one", None, "three"]
        assert [s["name"] for s in again.list_snapshots()] == ["s0"]


# ------------------------------------------------------------------- malformed filters

DEEP_NOT: Dict[str, Any] = {"i": 1}
for _ in range(1000):
    DEEP_NOT = {"$not": DEEP_NOT}

# One of each kind of malformed filter (test_search.py has them all on an int database):
# the FilterError names the path into the filter, whatever the ids.
MALFORMED_FILTERS: List[Tuple[str, Any, str]] = [
    ("unknown_op", {"i": {"$foo": 1}}, 'filter["i"]["$foo"]'),
    ("wrong_operand_type", {"i": {"$gt": [1]}}, 'filter["i"]["$gt"]'),
    ("in_not_a_list", {"s": {"$in": "row1"}}, 'filter["s"]["$in"]'),
    ("nested_path", {"$or": [{"i": 1}, {"s": {"$in": [[1]]}}]}, 'filter["$or"][1]["s"]["$in"][0]'),
    ("depth_1000", DEEP_NOT, 'filter["$not"]["$not"]'),
    ("not_a_dict", [("i", 1)], "filter"),
]


@pytest.mark.parametrize(
    ("flt", "path"),
    [(f, p) for _, f, p in MALFORMED_FILTERS],
    ids=[n for n, _, _ in MALFORMED_FILTERS],
)
def test_malformed_filter_is_a_filter_error_naming_the_path(
    db: NusterDB, flt: Any, path: str
) -> None:
    calls: Dict[str, Call] = {
        "search": lambda d: d.search(ok_vec(), k=3, filter=flt),
        "search_include": lambda d: d.search(ok_vec(), k=3, filter=flt, include=["document"]),
        "batch_search": lambda d: d.batch_search(ok_rows(2), k=3, filter=flt),
        "batch_search_empty": lambda d: d.batch_search(ok_rows(0), k=3, filter=flt),
    }
    for err in all_rejected(db, calls, FilterError, re.escape(path)):
        assert isinstance(err, ValueError)
        assert isinstance(err, NusterDBError)
        assert len(str(err)) < 2000, "the message should not echo a huge filter"


# ------------------------------------------------------------------- use after close


def test_use_after_close_is_a_closed_error_and_close_twice_a_no_op(disk_db: NusterDB) -> None:
    db = disk_db
    before = state_checksum(db)
    path = db.path
    assert path is not None
    k1 = key(db, 1)
    db.close()
    calls: Dict[str, Call] = {
        "add": lambda d: d.add(key_for(d.config.id_type, 100), ok_vec(), document="x"),
        "upsert": lambda d: d.upsert(k1, ok_vec(), document="x"),
        "update_document": lambda d: d.update(k1, document="x"),
        "bulk_add": lambda d: d.bulk_add(
            [key_for(d.config.id_type, 100)], ok_rows(1), documents=["x"]
        ),
        "remove": lambda d: d.remove(k1),
        "bulk_remove": lambda d: d.bulk_remove([k1]),
        "get": lambda d: d.get(k1),
        "get_metadata": lambda d: d.get_metadata(k1),
        "get_document": lambda d: d.get_document(k1),
        "get_many": lambda d: d.get_many([k1]),
        "contains": lambda d: d.contains(k1),
        "list_ids": lambda d: d.list_ids(),
        "search": lambda d: d.search(ok_vec()),
        "search_include": lambda d: d.search(ok_vec(), include=["document"]),
        "batch_search": lambda d: d.batch_search(ok_rows(1)),
        "flush": lambda d: d.flush(),
    }
    for name, call in calls.items():
        try:
            call(db)
        except ClosedError:
            continue
        pytest.fail(f"{name} on a closed handle did not raise ClosedError")
    db.close()
    assert db.closed
    with NusterDB.open(path) as again:
        assert state_checksum(again) == before


# ------------------------------------------------------------------- documents

# A document is a str (or None) of at most 16 MiB of UTF-8.
BAD_DOCUMENTS: List[Tuple[str, Any, Expected, str]] = [
    ("bytes", b"text", TypeError, "document must be str or None, got bytes"),
    ("int", 5, TypeError, "got int"),
    ("list", ["text"], TypeError, "got list"),
    ("lone_surrogate", "ok \ud800", InvalidArgumentError, r"U\+D800 at index 3"),
    ("over_16_mib", "x" * (2**24 + 1), InvalidArgumentError, "16777217 bytes, above the limit"),
    # 2^23 + 1 characters, but 2^24 + 2 bytes: the limit is on the UTF-8 bytes.
    ("over_16_mib_of_utf8", "é" * (2**23 + 1), InvalidArgumentError, "16777218 bytes"),
]


@pytest.mark.parametrize(
    ("bad", "expected", "match"),
    [(b, e, m) for _, b, e, m in BAD_DOCUMENTS],
    ids=[n for n, _, _, _ in BAD_DOCUMENTS],
)
def test_bad_documents_are_rejected_whole(
    db: NusterDB, bad: Any, expected: Expected, match: str
) -> None:
    calls: Dict[str, Call] = {
        "add": lambda d: d.add(key(d, 100), ok_vec(), {"a": 1}, document=bad),
        "upsert_new": lambda d: d.upsert(key(d, 100), ok_vec(), document=bad),
        "upsert_existing": lambda d: d.upsert(key(d, 2), ok_vec(9.0), {"a": 1}, document=bad),
        "update": lambda d: d.update(key(d, 2), ok_vec(9.0), document=bad),
        "update_document_only": lambda d: d.update(key(d, 3), document=bad),
        "bulk_add": lambda d: d.bulk_add(
            keys(d, [100, 101, 102]), ok_rows(3), documents=["fine", bad, None]
        ),
    }
    all_rejected(db, calls, expected, match)


@pytest.mark.parametrize(
    ("documents", "expected", "match"),
    [
        (["a", "b"], ValueError, "3 ids but 2 documents"),
        (["a", "b", "c", "d"], ValueError, "3 ids but 4 documents"),
        ([], ValueError, "3 ids but 0 documents"),
        ("abc", TypeError, "one entry per id, got str"),
        ({"a": "x"}, TypeError, "one entry per id, got dict"),
        (5, TypeError, "one entry per id, got int"),
    ],
    ids=["too_few", "too_many", "empty_list", "str", "dict", "int"],
)
def test_bulk_add_documents_not_one_per_id_are_rejected(
    db: NusterDB, documents: Any, expected: Expected, match: str
) -> None:
    rejected(
        db,
        lambda d: d.bulk_add(keys(d, [100, 101, 102]), ok_rows(3), documents=documents),
        expected,
        match,
    )


# ------------------------------------------------------------------- include=

BAD_INCLUDES: List[Tuple[str, Any, Expected, str]] = [
    (
        "unknown_name",
        ["document", "documents"],
        InvalidArgumentError,
        'unknown include name "documents"',
    ),
    ("single_str", "document", TypeError, "got a single str"),
    ("int_entry", ["metadata", 1], TypeError, "include names must be str, got int"),
    ("none_entry", [None], TypeError, "got NoneType"),
    ("bytes_entry", [b"vector"], TypeError, "got bytes"),
    ("not_iterable", 5, TypeError, "sequence of names"),
    # A mapping is not read by its keys: its values would be ignored.
    ("mapping", {"vector": False, "document": True}, TypeError, "got dict"),
    ("lone_surrogate", ["vector\ud800"], InvalidArgumentError, r"U\+D800 at index 6"),
]


@pytest.mark.parametrize(
    ("include", "expected", "match"),
    [(i, e, m) for _, i, e, m in BAD_INCLUDES],
    ids=[n for n, _, _, _ in BAD_INCLUDES],
)
def test_bad_include_is_rejected(
    db: NusterDB, include: Any, expected: Expected, match: str
) -> None:
    calls: Dict[str, Call] = {
        "search": lambda d: d.search(ok_vec(), k=3, include=include),
        "search_filtered": lambda d: d.search(ok_vec(), k=3, filter={"i": 1}, include=include),
        "get_many": lambda d: d.get_many(keys(d, [1, 2]), include=include),
        "get_many_no_ids": lambda d: d.get_many([], include=include),
        "batch_search": lambda d: d.batch_search(ok_rows(2), k=3, include=include),
        "batch_search_empty": lambda d: d.batch_search(ok_rows(0), k=3, include=include),
        "iter_records": lambda d: d.iter_records(include=include),
        "iter_pages": lambda d: d.iter_pages(filter={"i": 1}, include=include),
    }
    all_rejected(db, calls, expected, match)


# ---------------------------------------------------------------- batch_size=

# As get_many's limit (a negative int is an InvalidArgumentError, a bool, float or str a
# TypeError), and 0 is refused too: no page could make progress.
BAD_BATCH_SIZES: List[Tuple[str, Any, Expected, str]] = [
    ("zero", 0, InvalidArgumentError, "batch_size must be at least 1, got 0"),
    ("negative", -1, InvalidArgumentError, "batch_size must be 0 or more, got -1"),
    ("huge_negative", -(2**70), InvalidArgumentError, "batch_size must be 0 or more"),
    ("true", True, TypeError, "batch_size must be an int, got bool"),
    ("false", False, TypeError, "batch_size must be an int, got bool"),
    ("float", 10.0, TypeError, "batch_size must be an int, got float"),
    ("str", "10", TypeError, "batch_size must be an int, got str"),
    ("numpy_float", np.float64(3), TypeError, "batch_size must be an int"),
]


@pytest.mark.parametrize(
    ("batch_size", "expected", "match"),
    [(b, e, m) for _, b, e, m in BAD_BATCH_SIZES],
    ids=[n for n, _, _, _ in BAD_BATCH_SIZES],
)
def test_bad_batch_size_is_rejected(
    db: NusterDB, batch_size: Any, expected: Expected, match: str
) -> None:
    calls: Dict[str, Call] = {
        "iter_records": lambda d: d.iter_records(batch_size=batch_size),
        "iter_pages": lambda d: d.iter_pages(include=[], batch_size=batch_size),
    }
    all_rejected(db, calls, expected, match)


# ------------------------------------------------------------------- paging and record management

BAD_COUNTS: List[Tuple[str, Any, Expected, str]] = [
    ("negative", -1, InvalidArgumentError, "must be 0 or more, got -1"),
    ("very_negative", -(2**70), InvalidArgumentError, "must be 0 or more"),
    # True is an int to Python, but limit=True is a mistake, not 1.
    ("bool", True, TypeError, "must be an int, got bool"),
    ("float", 2.0, TypeError, "must be an int, got float"),
    ("str", "10", TypeError, "must be an int, got str"),
    ("numpy_float", np.float32(1), TypeError, "must be an int, got"),
]


@pytest.mark.parametrize(
    ("value", "expected", "match"),
    [(v, e, m) for _, v, e, m in BAD_COUNTS],
    ids=[n for n, _, _, _ in BAD_COUNTS],
)
def test_bad_limit_and_offset_are_rejected_naming_the_argument(
    db: NusterDB, value: Any, expected: Expected, match: str
) -> None:
    calls: Dict[str, Call] = {
        "limit": lambda d: d.get_many(limit=value),
        "offset": lambda d: d.get_many(offset=value),
        "limit_with_filter": lambda d: d.get_many(filter={"i": {"$gte": 0}}, limit=value),
        "offset_with_ids": lambda d: d.get_many(keys(d, [1, 2]), offset=value),
    }
    for name, err in zip(calls, all_rejected(db, calls, expected, match)):
        assert name.split("_")[0] in str(err), f"{name}: {err}"


def test_delete_needs_ids_or_a_filter_and_refuses_the_empty_filter(db: NusterDB) -> None:
    rejected(db, lambda d: d.delete(), TypeError, r"needs ids and/or a filter; clear\(\)")
    rejected(db, lambda d: d.delete(None, None), TypeError, "needs ids and/or a filter")
    # {} matches every record: a delete by it is refused, clear() says what it does.
    rejected(db, lambda d: d.delete(filter={}), InvalidArgumentError, r"call clear\(\)")
    rejected(db, lambda d: d.delete(filter={"i": {"$bogus": 1}}), FilterError, r"\$bogus")
    rejected(db, lambda d: d.delete(ids=5), TypeError, "sequence")
    rejected(db, lambda d: d.count(filter={"i": {"$bogus": 1}}), FilterError, r"\$bogus")
    rejected(db, lambda d: d.count(filter=5), FilterError, "expected a dict")


@pytest.mark.parametrize("merge", ["yes", None, 1, 0.0], ids=["str", "none", "int", "float"])
def test_update_merge_must_be_a_bool(db: NusterDB, merge: Any) -> None:
    rejected(db, lambda d: d.update(key(d, 1), metadata={"a": 1}, merge=merge), TypeError)


def test_bulk_errors_name_the_row_and_id(db: NusterDB) -> None:
    """A bad metadata or document entry in a long batch names its row and id."""
    n = 50
    fresh = keys(db, range(100, 100 + n))
    meta: List[Any] = [{"a": i} for i in range(n)]
    meta[37] = {"a": [1, 2]}
    for call in ("bulk_add", "bulk_upsert"):
        err = rejected(
            db, partial(lambda d, c: getattr(d, c)(fresh, ok_rows(n), meta), c=call), TypeError
        )
        assert "metadata row 37" in str(err), str(err)
        assert re.search(shown(db, 137), str(err)), str(err)
    empty_key: List[Any] = [None] * n
    empty_key[3] = {"": 1}
    err = rejected(db, lambda d: d.bulk_upsert(fresh, ok_rows(n), empty_key), InvalidArgumentError)
    assert "metadata row 3" in str(err), str(err)
    documents: List[Any] = ["x"] * n
    documents[49] = 7
    err = rejected(db, lambda d: d.bulk_add(fresh, ok_rows(n), documents=documents), TypeError)
    assert "documents row 49" in str(err), str(err)


# ------------------------------------------------------------------- progress=

BAD_PROGRESS: List[Tuple[str, Any]] = [
    ("int", 1),
    ("zero", 0),
    ("str", "yes"),
    ("float", 0.5),
    ("list", []),
    ("object", object()),
]


@pytest.mark.parametrize("progress", [p for _, p in BAD_PROGRESS], ids=[n for n, _ in BAD_PROGRESS])
def test_bad_progress_is_a_type_error(disk_db: NusterDB, tmp_path: Path, progress: Any) -> None:
    db = disk_db
    # progress= is None, a bool or a callable(phase, done, total).
    path = db.path
    assert path is not None
    id_type = db.config.id_type
    fresh = tmp_path / "fresh"
    calls: Dict[str, Call] = {
        "bulk_add": lambda d: d.bulk_add(
            keys(d, [100, 101]), ok_rows(2), documents=["a", None], progress=progress
        ),
        "batch_search": lambda d: d.batch_search(ok_rows(2), k=3, progress=progress),
        "create": lambda d: NusterDB(
            str(fresh), DatabaseConfig(DIM, id_type=id_type), progress=progress
        ),
        "open_read_only": lambda d: NusterDB.open(path, read_only=True, progress=progress),
        # The argument is checked before the lock: TypeError, not DatabaseLockedError.
        "open_second_writer": lambda d: NusterDB.open(path, progress=progress),
    }
    all_rejected(db, calls, TypeError, "progress must be None, a bool or a callable")
    assert not fresh.exists(), "a refused open created the database"


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
