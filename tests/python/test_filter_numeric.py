"""Filters compare ints and floats exactly, with Python's own semantics (issue 8).

Beyond ±2**53 a float cannot hold every int, so comparing through float would make
``2**53 + 1`` equal ``2.0**53`` and ``2**63 - 1`` equal ``2.0**63``. Every expectation
here is Python's own comparison operators on the same values.

Every filtered ``search`` computes its set of allowed vectors with the payload index
(``PayloadIndex::evaluate``; when every live vector passes, the search runs unfiltered),
on flat and HNSW databases alike; the per-vector evaluator (``Filter::matches``) is not
reachable from Python, and the Rust tests (``crates/nusterdb-core/tests/filter.rs``)
check it slot for slot against the index and an ``i128`` reference. So the tests below
vary what the index holds: one row per value, many rows per value with other keys
(posting lists of many slots), and a missing key.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nusterdb import DatabaseConfig, FilterError, NusterDB

Num = Any  # int or float
DIM = 4
P53 = 2**53
P63 = 2**63

# The grid of the report: ints and floats around 2**53 and 2**63.
GRID: List[Num] = [P53, P53 + 1, float(P53), float(P53 + 2), P63 - 1, float(P63)]
# The same on the negative side, and the extremes of the int range.
WIDE_GRID: List[Num] = [
    *GRID,
    -P53 - 1,
    -float(P53),
    -P63,
    -float(P63),
    -P63 + 1,
    -(2.0**64),
    0,
    -0.0,
]

OPS: Dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq,
    "$ne": operator.ne,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def build(
    values: Sequence[Optional[Num]], index_type: str = "flat", extra: bool = False
) -> NusterDB:
    """A database with row r holding ``{"a": values[r]}`` (no "a" when None); ids are
    the row numbers. ``extra`` adds other keys so the index holds more than "a"."""
    db = NusterDB(None, DatabaseConfig(DIM, index_type=index_type))
    rng = np.random.default_rng(len(values))
    vecs = rng.standard_normal((len(values), DIM)).astype(np.float32)
    metas: List[Dict[str, Any]] = []
    for r, v in enumerate(values):
        m: Dict[str, Any] = {} if v is None else {"a": v}
        if extra:
            m["b"] = r % 7
            m["c"] = float(r) / 3.0
        metas.append(m)
    db.bulk_add(list(range(len(values))), vecs, metas)
    return db


def found(db: NusterDB, flt: Dict[str, Any]) -> List[int]:
    hits = db.search(np.zeros(DIM, dtype=np.float32), k=10**9, filter=flt)
    return sorted(i for i, _ in hits)


def expected(values: Sequence[Optional[Num]], op: str, bound: Num) -> List[int]:
    """Python's answer; a missing key passes only $ne (documented MongoDB rule)."""
    return [r for r, v in enumerate(values) if (op == "$ne" if v is None else OPS[op](v, bound))]


def check_all_ops(db: NusterDB, values: Sequence[Optional[Num]], bound: Num) -> None:
    for op in OPS:
        want = expected(values, op, bound)
        assert found(db, {"a": {op: bound}}) == want, f"a {op} {bound!r}"
    eq = expected(values, "$eq", bound)
    ne = expected(values, "$ne", bound)
    assert found(db, {"a": bound}) == eq, f"a == {bound!r} (shorthand)"
    assert found(db, {"a": {"$in": [bound]}}) == eq, f"a $in [{bound!r}]"
    assert found(db, {"a": {"$nin": [bound]}}) == ne, f"a $nin [{bound!r}]"


@pytest.fixture(params=["flat", "hnsw"])
def index_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_report_cases() -> None:
    """The three wrong answers of the report, spelled out."""
    with build([P53 + 1, P63 - 1, float(P63)]) as db:
        assert found(db, {"a": float(P53)}) == []
        assert found(db, {"a": {"$gt": float(P53)}}) == [0, 1, 2]
        assert found(db, {"a": {"$lte": float(P53)}}) == []
        assert found(db, {"a": {"$ne": float(P53)}}) == [0, 1, 2]
        assert found(db, {"a": float(P63)}) == [2]
        assert found(db, {"a": {"$lt": float(P63)}}) == [0, 1]
        assert found(db, {"a": {"$gt": P63 - 1}}) == [2]


def test_grid_one_row_per_value(index_type: str) -> None:
    """Each grid value stored once (plus a row without the key), each one a bound."""
    values: List[Optional[Num]] = [*GRID, None]
    with build(values, index_type) as db:
        for bound in GRID:
            check_all_ops(db, values, bound)


def test_wide_grid_many_rows_per_value() -> None:
    """Every value of the wide grid on many rows, shuffled, beside other keys: posting
    lists of many slots, ints and floats interleaved."""
    rng = np.random.default_rng(8)
    values: List[Optional[Num]] = [
        WIDE_GRID[i % len(WIDE_GRID)] for i in range(40 * len(WIDE_GRID))
    ]
    values += [None] * 30
    order = rng.permutation(len(values))
    values = [values[i] for i in order]
    with build(values, extra=True) as db:
        for bound in [*WIDE_GRID, float("inf"), float("-inf"), 1e300, -1e300, 2.5, -2.5]:
            check_all_ops(db, values, bound)
        # A range, and $in with several bounds, against Python.
        lo, hi = float(P53), P63 - 1
        assert found(db, {"a": {"$gt": lo, "$lte": hi}}) == [
            r for r, v in enumerate(values) if v is not None and lo < v <= hi
        ]
        several = [P53 + 1, float(P63), -P63]
        assert found(db, {"a": {"$in": several}}) == [
            r for r, v in enumerate(values) if v is not None and any(v == s for s in several)
        ]


def test_nanosecond_timestamps_against_a_float_bound() -> None:
    """The realistic case: int nanosecond timestamps (beyond 2**53) and a float cut-off."""
    base = 1_733_450_000_000_000_000  # ~2024-12 in ns
    stamps = [base + d for d in range(-301, 301, 7)]  # base itself included
    cut = float(base)  # floats are 256 apart here: ints within 128 of cut round onto it
    with build(stamps) as db:
        for op in OPS:
            assert found(db, {"a": {op: cut}}) == expected(stamps, op, cut), op
    assert any(s != cut and float(s) == cut for s in stamps), "no int here rounds onto cut"


def test_bool_is_not_a_number() -> None:
    """Documented: bools compare only with bools (unlike Python, where True == 1)."""
    with build([True, False, 1, 0, 1.0, 0.0, None]) as db:
        assert found(db, {"a": True}) == [0]
        assert found(db, {"a": 1}) == [2, 4]
        assert found(db, {"a": 0.0}) == [3, 5]
        assert found(db, {"a": {"$in": [1, True]}}) == [0, 2, 4]
        assert found(db, {"a": {"$ne": 1}}) == [0, 1, 3, 5, 6]
        assert found(db, {"a": {"$gt": False}}) == [0]
        assert found(db, {"a": {"$gte": 0}}) == [2, 3, 4, 5]
        assert found(db, {"a": np.bool_(True)}) == [0]


@pytest.mark.parametrize(
    "bound",
    [P63, -(P63) - 1, 2**64, -(2**70), 10**400, np.uint64(P63), np.uint64(2**64 - 1)],
    ids=["2**63", "-2**63-1", "2**64", "-2**70", "10**400", "np.uint64(2**63)", "np.uint64_max"],
)
def test_int_bounds_outside_int64_are_filter_errors(bound: Any) -> None:
    """Stored ints are 64-bit; a wider int bound is refused, never rounded to a float."""
    with build([P63 - 1, float(P63), 2.0**64]) as db:
        for flt in ({"a": {"$gt": bound}}, {"a": bound}, {"a": {"$in": [1, bound]}}):
            with pytest.raises(FilterError, match="outside the signed 64-bit range"):
                found(db, flt)


def test_float_bounds_beyond_int64_and_infinities() -> None:
    values: List[Optional[Num]] = [P63 - 1, -(P63), float(P63), 2.0**64, -(2.0**70), 1e300, None]
    with build(values) as db:
        for bound in [2.0**64, -(2.0**70), 1e300, float("inf"), float("-inf")]:
            check_all_ops(db, values, bound)


@pytest.mark.parametrize("bound", [float("nan"), np.float64("nan"), np.float32("nan")])
def test_nan_bound_is_a_filter_error(bound: Any) -> None:
    with build([1, 2.0]) as db, pytest.raises(FilterError, match="NaN"):
        found(db, {"a": {"$lt": bound}})


def test_numpy_scalars_compare_like_python_numbers() -> None:
    values: List[Optional[Num]] = [P53 + 1, float(P53), P63 - 1, float(P63)]
    with build(values) as db:
        for bound in [np.int64(P53 + 1), np.uint64(P63 - 1), np.float64(P53), np.int64(-1)]:
            py_bound = bound.item()
            for op in OPS:
                assert found(db, {"a": {op: bound}}) == expected(values, op, py_bound), (op, bound)


# --------------------------------------------------------------------- random

ANCHORS = [0, P53, -P53, 2**62, -(2**62), 2**60]


def _near_ints() -> st.SearchStrategy[int]:
    anchored = st.builds(
        lambda a, d: max(-(P63), min(P63 - 1, a + d)),
        st.sampled_from([*ANCHORS, P63 - 1, -P63]),
        st.integers(-3, 3),
    )
    return st.one_of(anchored, st.integers(-(P63), P63 - 1), st.integers(-5, 5))


def _steps(x: float, n: int) -> float:
    for _ in range(abs(n)):
        x = math.nextafter(x, math.inf if n > 0 else -math.inf)
    return x


def _near_floats() -> st.SearchStrategy[float]:
    anchored = st.builds(
        _steps,
        st.sampled_from([float(a) for a in ANCHORS] + [2.0**63, -(2.0**63), 2.0**64, -(2.0**64)]),
        st.integers(-3, 3),
    )
    images = _near_ints().map(float)
    return st.one_of(
        anchored,
        images,
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-10, 10).map(lambda h: h / 2.0),
    )


NUMBERS = st.one_of(_near_ints(), _near_floats())
STORED = st.lists(st.one_of(NUMBERS, st.none()), min_size=1, max_size=40)
BOUNDS = st.one_of(NUMBERS, st.sampled_from([math.inf, -math.inf]))


@given(values=STORED, bounds=st.lists(BOUNDS, min_size=1, max_size=4))
def test_random_numbers_match_python(values: List[Optional[Num]], bounds: List[Num]) -> None:
    with build(values) as db:
        for bound in bounds:
            check_all_ops(db, values, bound)
        assert found(db, {"a": {"$in": bounds}}) == [
            r for r, v in enumerate(values) if v is not None and any(v == b for b in bounds)
        ]


@pytest.fixture(scope="module")
def big_db() -> Iterator[Tuple[NusterDB, List[Optional[Num]]]]:
    """2,000 rows of clustered numbers for the random bounds below."""
    rng = np.random.default_rng(2**53)
    pool: List[Optional[Num]] = []
    for a in [*ANCHORS, P63 - 1, -P63]:
        for d in range(-3, 4):
            i = max(-(P63), min(P63 - 1, a + d))
            pool += [i, float(i), _steps(float(a), d)]
    pool.append(None)
    values = [pool[int(j)] for j in rng.integers(0, len(pool), size=2000)]
    with build(values, extra=True) as db:
        yield db, values


@given(bound=BOUNDS, op=st.sampled_from(sorted(OPS)))
def test_random_bounds_on_a_large_database(
    big_db: Tuple[NusterDB, List[Optional[Num]]], bound: Num, op: str
) -> None:
    db, values = big_db
    assert found(db, {"a": {op: bound}}) == expected(values, op, bound)
