"""``NusterDB.search`` and ``batch_search`` on a flat (exact) database: results equal a
numpy brute force for every metric, k at and beyond the count, empty databases and
batches, removals, metadata filters checked against an independent evaluator, and
malformed filters rejected with the path into the filter (SPEC §1 "NusterDB",
"Filters"; RELIABILITY.md bad-input rows for k and filters)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import numpy.typing as npt
import pytest
from db_helpers import METRICS, DbCache, assert_hits_match, brute_force, matches
from hypothesis import given
from hypothesis import strategies as st
from nusterdb import (
    DatabaseConfig,
    DistanceMetric,
    FilterError,
    Metadata,
    NusterDB,
    NusterDBError,
)

F32 = npt.NDArray[np.float32]
Filter = Dict[str, Any]


def make_db(path: Path, dim: int, metric: str = "euclidean") -> NusterDB:
    return NusterDB(str(path), DatabaseConfig(dim, distance_metric=metric))


def metric_data(rng: np.random.Generator, n: int, dim: int, metric: str) -> F32:
    """Rows suited to ``metric``: non-negative for jaccard, with exact zeros so the
    sign-based hamming and the min/max jaccard see structure, and a zero row."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[rng.random((n, dim)) < 0.2] = 0.0
    if metric == "jaccard":
        x = np.abs(x)
    if n > 3:
        x[3] = 0.0
    return x


def test_metric_list_is_the_documented_eight() -> None:
    assert sorted(DistanceMetric.names()) == sorted(METRICS)


# --------------------------------------------------------------------- exact search


def assert_same_answer(
    bids: npt.NDArray[np.int64],
    bd: npt.NDArray[np.float32],
    single: List[Tuple[int, float]],
    ctx: str,
) -> None:
    """A batch_search row answers as search does: the same distances, and the same ids
    except among rows whose distances tie exactly with the last one kept. The two paths
    rank on differently rounded scores (documented); only reported distances are exact."""
    assert bd.tolist() == [np.float32(d) for _, d in single], ctx
    if not single:
        return
    last = np.float32(single[-1][1])
    inner_b = [int(i) for i, d in zip(bids, bd) if d != last]
    inner_s = [i for i, d in single if np.float32(d) != last]
    assert inner_b == inner_s, ctx


@pytest.mark.parametrize("dim", [3, 17, 128])
@pytest.mark.parametrize("metric", DistanceMetric.names())
def test_search_equals_brute_force(
    tmp_path: Path, rng: np.random.Generator, metric: str, dim: int
) -> None:
    n = 300
    base = metric_data(rng, n, dim, metric)
    # Ties: 30 exact duplicates of other rows under new ids.
    dup_src = rng.choice(n, size=30, replace=False)
    base = np.concatenate([base, base[dup_src]])
    ids = [int(i) for i in rng.choice(10**15, size=len(base), replace=False)]
    queries = [metric_data(rng, 6, dim, metric)[i] for i in range(6)]
    queries.append(base[int(dup_src[0])].copy())  # a stored vector with a duplicate
    queries.append(np.zeros(dim, np.float32))  # the zero query: defined for every metric
    with make_db(tmp_path / "db", dim, metric) as db:
        assert db.bulk_add(ids, base) == len(ids)
        for qi, q in enumerate(queries):
            for k in (1, 10, 57):
                got = db.search(q, k=k)
                assert_hits_match(got, base, ids, q, k, metric, context=f"query {qi}")
        # batch_search answers every row exactly as search does.
        qs = np.stack(queries)
        bids, bd = db.batch_search(qs, k=10)
        assert bids.dtype == np.int64
        assert bd.dtype == np.float32
        assert bids.shape == bd.shape == (len(queries), 10)
        for qi, q in enumerate(queries):
            single = db.search(q, k=10)
            assert_same_answer(bids[qi], bd[qi], single, f"query {qi}")


def test_duplicate_vectors_tie_at_distance_zero(tmp_path: Path) -> None:
    v = [1.0, 2.0, 3.0]
    with make_db(tmp_path / "db", 3) as db:
        db.bulk_add([30, 10, 20], [v, v, v])
        db.add(5, [9.0, 9.0, 9.0])
        assert db.search(v, k=3) == [(10, 0.0), (20, 0.0), (30, 0.0)]
        got = db.search(v, k=2)
        assert [d for _, d in got] == [0.0, 0.0]
        assert {i for i, _ in got} <= {10, 20, 30}


def test_zero_vectors_under_cosine_and_angular_have_the_documented_distance(
    tmp_path: Path,
) -> None:
    for metric, expected in (("cosine", 1.0), ("angular", 0.5)):
        with make_db(tmp_path / metric, 3, metric) as db:
            db.bulk_add([1, 2], [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
            got = dict(db.search([0.0, 0.0, 0.0], k=2))
            assert got == {1: expected, 2: expected}
            got = dict(db.search([0.0, 1.0, 0.0], k=2))
            assert got[1] == expected


def test_k_larger_than_count_returns_every_vector(tmp_path: Path, rng: np.random.Generator) -> None:
    base = rng.standard_normal((25, 4)).astype(np.float32)
    with make_db(tmp_path / "db", 4) as db:
        db.bulk_add(range(25), base)
        q = rng.standard_normal(4).astype(np.float32)
        got = db.search(q, k=26)
        assert_hits_match(got, base, range(25), q, 26, "euclidean")
        assert len(got) == 25
        # batch_search: min(k, count) columns, every vector in search's order.
        ids, d = db.batch_search(q[None, :], k=30)
        assert ids.shape == d.shape == (1, 25)
        assert [int(i) for i in ids[0]] == [i for i, _ in got]
        assert np.isfinite(d).all()


def test_huge_k_returns_count_results_quickly(tmp_path: Path, rng: np.random.Generator) -> None:
    base = rng.standard_normal((1000, 8)).astype(np.float32)
    with make_db(tmp_path / "db", 8) as db:
        db.bulk_add(range(1000), base)
        q = rng.standard_normal(8).astype(np.float32)
        start = time.perf_counter()
        got = db.search(q, k=10**12)
        elapsed = time.perf_counter() - start
        assert len(got) == 1000
        assert elapsed < 1.0, f"k=10**12 took {elapsed:.2f}s"
        assert_hits_match(got, base, range(1000), q, 10**12, "euclidean")
        start = time.perf_counter()
        filtered = db.search(q, k=10**12, filter={"$not": {"x": 1}})
        assert len(filtered) == 1000
        assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("k", [0, -1, -(2**40)])
def test_non_positive_k_is_a_value_error(tmp_path: Path, k: int) -> None:
    with make_db(tmp_path / "db", 2) as db:
        db.add(1, [1.0, 1.0])
        with pytest.raises(ValueError, match="k"):
            db.search([1.0, 1.0], k=k)
        with pytest.raises(ValueError, match="k"):
            db.batch_search(np.ones((2, 2), np.float32), k=k)
        with pytest.raises(ValueError, match="k"):
            db.batch_search(np.ones((0, 2), np.float32), k=k)


def test_empty_database_returns_nothing(tmp_path: Path) -> None:
    with make_db(tmp_path / "db", 5) as db:
        assert db.search([1.0] * 5, k=3) == []
        assert db.search([1.0] * 5, k=3, filter={"a": 1}) == []
        # min(k, 0) = 0 columns.
        ids, d = db.batch_search(np.ones((4, 5), np.float32), k=3)
        assert ids.dtype == np.int64
        assert d.dtype == np.float32
        assert ids.shape == d.shape == (4, 0)
        # Emptied by removals: the same.
        db.bulk_add([1, 2], np.ones((2, 5), np.float32))
        db.bulk_remove([1, 2])
        assert db.search([1.0] * 5, k=3) == []
        ids, d = db.batch_search(np.ones((2, 5), np.float32), k=3)
        assert ids.shape == d.shape == (2, 0)
        # The queries are still checked.
        with pytest.raises(ValueError, match="query 0 has a non-finite value"):
            db.batch_search(np.full((2, 5), np.nan, np.float32), k=3)


@pytest.mark.parametrize(("stored", "width"), [(0, 0), (2, 2), (9, 7)])
def test_empty_batch_gives_arrays_of_shape_zero_by_width(
    tmp_path: Path, stored: int, width: int
) -> None:
    with make_db(tmp_path / "db", 5) as db:
        if stored:
            db.bulk_add(range(stored), np.ones((stored, 5), np.float32))
        for queries in (np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float64)):
            ids, d = db.batch_search(queries, k=7)
            assert ids.shape == (0, width)
            assert d.shape == (0, width)
            assert ids.dtype == np.int64
            assert d.dtype == np.float32
        ids, d = db.batch_search([], k=7)
        assert ids.shape == (0, width)
        assert d.shape == (0, width)


def test_batch_search_accepts_lists_and_any_real_array(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    base = rng.standard_normal((50, 6)).astype(np.float32)
    qs = rng.standard_normal((4, 6)).astype(np.float32)
    with make_db(tmp_path / "db", 6) as db:
        db.bulk_add(range(50), base)
        ref_ids, ref_d = db.batch_search(qs, k=5)
        wide = np.repeat(qs, 2, axis=1)
        forms: List[Any] = [
            qs.tolist(),
            [q for q in qs],
            np.asfortranarray(qs),
            wide[:, ::2],
            qs.astype(np.float64),
        ]
        for form in forms:
            ids, d = db.batch_search(form, k=5)
            assert np.array_equal(ids, ref_ids)
            assert np.array_equal(d, ref_d)


def test_removed_vectors_are_never_returned(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 400
    base = rng.standard_normal((n, 8)).astype(np.float32)
    with make_db(tmp_path / "db", 8) as db:
        db.bulk_add(range(n), base)
        gone = {int(i) for i in rng.choice(n, size=200, replace=False)}
        assert db.bulk_remove(sorted(gone)) == 200
        live = [i for i in range(n) if i not in gone]
        for _ in range(5):
            q = rng.standard_normal(8).astype(np.float32)
            got = db.search(q, k=n)
            assert {i for i, _ in got} == set(live)
            assert_hits_match(db.search(q, k=10), base[live], live, q, 10, "euclidean")
            ids, _ = db.batch_search(q[None, :], k=n)
            assert ids.shape == (1, len(live))
            assert set(int(i) for i in ids[0]) == set(live)
        # Removed ids come back with their new vectors only; freed slots are reused.
        back = sorted(gone)[:50]
        fresh = rng.standard_normal((50, 8)).astype(np.float32)
        db.bulk_add(back, fresh)
        all_ids = live + back
        all_rows = np.concatenate([base[live], fresh])
        for _ in range(5):
            q = rng.standard_normal(8).astype(np.float32)
            assert_hits_match(db.search(q, k=30), all_rows, all_ids, q, 30, "euclidean")


def test_updated_vector_is_searched_at_its_new_place(tmp_path: Path) -> None:
    with make_db(tmp_path / "db", 2) as db:
        db.bulk_add([1, 2], [[0.0, 0.0], [10.0, 10.0]])
        db.update(1, [20.0, 20.0])
        assert db.search([19.0, 19.0], k=1)[0][0] == 1
        hits = db.search([0.0, 0.0], k=2)
        assert [i for i, _ in hits] == [2, 1]
        assert [d for _, d in hits] == pytest.approx([np.sqrt(200.0), np.sqrt(800.0)])
        db.upsert(2, [21.0, 21.0])
        assert db.search([0.0, 0.0], k=1)[0][0] == 1


# --------------------------------------------------------------------- filters

KEYS = ("i", "f", "s", "b", "n", "missing")
TAGS = ("red", "green", "blue", "x y", "Red")
STRS = ("a", "b", "ab", "", "é", "zz")


def random_metadata(rng: np.random.Generator) -> Tuple[Dict[str, Any], List[str]]:
    """Fields with mixed types per key (so cross-type comparisons happen) and tags."""
    fields: Dict[str, Any] = {}
    if rng.random() < 0.85:
        r = rng.random()
        if r < 0.75:
            fields["i"] = int(rng.integers(-5, 15))
        elif r < 0.9:
            fields["i"] = float(rng.choice([2.0, 3.0, 3.5, -0.0, 7.25]))
        else:
            fields["i"] = str(rng.integers(0, 3))
    if rng.random() < 0.8:
        fields["f"] = float(rng.choice([-1.5, 0.0, 0.5, 1.0, 2.0, 3.0, 1e10]))
    if rng.random() < 0.8:
        fields["s"] = str(rng.choice(STRS))
    if rng.random() < 0.7:
        fields["b"] = bool(rng.random() < 0.5) if rng.random() < 0.9 else 1
    if rng.random() < 0.3:
        fields["n"] = int(rng.choice([2**53, 2**53 + 1, -(2**63), 2**63 - 1]))
    tags = [str(t) for t in TAGS if rng.random() < 0.3]
    return fields, tags


def random_scalar(rng: np.random.Generator, key: str) -> Any:
    r = rng.random()
    if r < 0.05:  # an operand of an unrelated type
        return [True, "3", 3, 1.0][int(rng.integers(0, 4))]
    if key == "i":
        return int(rng.integers(-6, 16)) if rng.random() < 0.8 else float(rng.choice([3.0, 3.5]))
    if key == "f":
        return float(rng.choice([-1.5, 0.0, 0.5, 1.0, 2.0])) if rng.random() < 0.8 else 1
    if key == "s":
        return str(rng.choice(STRS))
    if key == "b":
        return bool(rng.random() < 0.5)
    if key == "n":
        return [2**53, 2**53 + 1, float(2**53), 2**63 - 1, -(2**63)][int(rng.integers(0, 5))]
    return int(rng.integers(0, 3))


def random_field_condition(rng: np.random.Generator, key: str) -> Any:
    op = str(
        rng.choice(
            ["eq", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "range"]
        )
    )
    if op == "eq":
        return random_scalar(rng, key)
    if op in ("$in", "$nin"):
        return {op: [random_scalar(rng, key) for _ in range(int(rng.integers(0, 4)))]}
    if op == "$exists":
        return {op: bool(rng.random() < 0.5)}
    if op == "range":
        return {"$gte": random_scalar(rng, key), "$lt": random_scalar(rng, key)}
    return {op: random_scalar(rng, key)}


def random_filter(rng: np.random.Generator, depth: int = 0) -> Filter:
    out: Filter = {}
    for _ in range(int(rng.integers(1, 3))):
        r = rng.random()
        if r < 0.5 or depth >= 3:
            key = str(rng.choice(KEYS))
            out[key] = random_field_condition(rng, key)
        elif r < 0.62:
            out["$and"] = [random_filter(rng, depth + 1) for _ in range(int(rng.integers(1, 4)))]
        elif r < 0.76:
            out["$or"] = [random_filter(rng, depth + 1) for _ in range(int(rng.integers(1, 4)))]
        elif r < 0.86:
            out["$not"] = random_filter(rng, depth + 1)
        else:
            tf: Dict[str, List[str]] = {}
            if rng.random() < 0.6:
                tf["$all"] = [str(t) for t in rng.choice(TAGS, size=int(rng.integers(0, 3)))]
            if rng.random() < 0.6 or not tf:
                tf["$any"] = [str(t) for t in rng.choice(TAGS, size=int(rng.integers(0, 3)))]
            out["$tags"] = tf
    return out


@pytest.fixture
def filtered_db(
    tmp_path: Path, rng: np.random.Generator
) -> Iterator[Tuple[NusterDB, F32, List[int], List[Tuple[Dict[str, Any], List[str]]]]]:
    n = 1500
    base = rng.standard_normal((n, 12)).astype(np.float32)
    ids = [int(i) for i in rng.choice(10**9, size=n, replace=False)]
    metas = [random_metadata(rng) for _ in range(n)]
    with make_db(tmp_path / "db", 12) as db:
        db.bulk_add(ids, base, [Metadata.with_data(f, tags=t) for f, t in metas])
        yield db, base, ids, metas


def test_filtered_search_is_exactly_the_k_nearest_matching(
    filtered_db: Tuple[NusterDB, F32, List[int], List[Tuple[Dict[str, Any], List[str]]]],
    rng: np.random.Generator,
) -> None:
    db, base, ids, metas = filtered_db
    selectivities: List[int] = []
    for case in range(300):
        flt = random_filter(rng)
        keep = [r for r, (f, t) in enumerate(metas) if matches(flt, f, t)]
        selectivities.append(len(keep))
        q = rng.standard_normal(12).astype(np.float32)
        where = f"case {case} filter={flt!r} matches={len(keep)}"
        # Every match, and only matches: the filter semantics on their own.
        every = db.search(q, k=10**9, filter=flt)
        assert {i for i, _ in every} == {ids[r] for r in keep}, where
        k = int(rng.choice([1, 5, 20, 100]))
        got = db.search(q, k=k, filter=flt)
        assert_hits_match(got, base[keep], [ids[r] for r in keep], q, k, "euclidean", where)
    print(
        f"filter cases: {len(selectivities)}, matches min/median/max = "
        f"{min(selectivities)}/{int(np.median(selectivities))}/{max(selectivities)}"
    )
    assert min(selectivities) == 0, "filters not varied enough"
    assert max(selectivities) > 1000, "filters not varied enough"


def test_filtered_batch_search_equals_filtered_search(
    filtered_db: Tuple[NusterDB, F32, List[int], List[Tuple[Dict[str, Any], List[str]]]],
    rng: np.random.Generator,
) -> None:
    db, _, _, _ = filtered_db
    for _ in range(30):
        flt = random_filter(rng)
        qs = rng.standard_normal((5, 12)).astype(np.float32)
        bids, bd = db.batch_search(qs, k=15, filter=flt)
        for r in range(5):
            single = db.search(qs[r], k=15, filter=flt)
            n = len(single)
            assert [int(i) for i in bids[r, :n]] == [i for i, _ in single], flt
            assert bd[r, :n].tolist() == [np.float32(d) for _, d in single], flt
            assert (bids[r, n:] == -1).all()
            assert np.isposinf(bd[r, n:]).all()


FIXED_FILTER_CASES: List[Tuple[str, Filter, List[int]]] = [
    ("equality_and", {"cat": "image", "type": "A"}, [1]),
    ("empty_matches_all", {}, [1, 2, 3, 4, 5, 6]),
    ("range", {"year": {"$gte": 2020, "$lt": 2024}}, [1, 2]),
    ("int_equals_float", {"year": 2020.0}, [1]),
    ("bool_is_not_int", {"flag": 1}, []),
    ("bool_equality", {"flag": True}, [1, 3]),
    ("ne_matches_missing_and_other_types", {"year": {"$ne": 2020}}, [2, 3, 4, 5, 6]),
    ("nin_matches_missing", {"cat": {"$nin": ["image"]}}, [3, 4, 5, 6]),
    ("in_empty_matches_nothing", {"cat": {"$in": []}}, []),
    ("nin_empty_matches_everything", {"cat": {"$nin": []}}, [1, 2, 3, 4, 5, 6]),
    ("exists", {"year": {"$exists": True}}, [1, 2, 3, 4]),
    ("not_exists", {"year": {"$exists": False}}, [5, 6]),
    ("incompatible_comparison_is_false", {"year": {"$gt": "abc"}}, [4]),
    ("or", {"$or": [{"cat": "text"}, {"flag": False}]}, [2, 4]),
    ("not", {"$not": {"cat": "image"}}, [3, 4, 5, 6]),
    ("tags_all", {"$tags": {"$all": ["a", "b"]}}, [1]),
    ("tags_any", {"$tags": {"$any": ["b", "c"]}}, [1, 3]),
    ("tags_all_empty", {"$tags": {"$all": []}}, [1, 2, 3, 4, 5, 6]),
    ("tags_any_empty", {"$tags": {"$any": []}}, []),
    ("tags_case_sensitive", {"$tags": {"$any": ["A"]}}, []),
    ("string_order_by_utf8", {"cat": {"$gt": "text"}}, [3]),
    ("no_match", {"cat": "nonexistent"}, []),
    # Exact int/float comparison: 2**53 + 1 is above the float 2**53, not equal to it.
    ("big_int_vs_float", {"big": 9007199254740992.0}, []),
    ("big_int_above_float", {"big": {"$gt": 9007199254740992.0}}, [5]),
    ("big_int_exact", {"big": 9007199254740992}, []),
    ("neg_zero_equals_zero", {"z": 0}, [6]),
    ("numpy_scalar_operand", {"year": np.int64(2021)}, [2]),
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [(f, e) for _, f, e in FIXED_FILTER_CASES],
    ids=[name for name, _, _ in FIXED_FILTER_CASES],
)
def test_filter_semantics_on_fixed_cases(tmp_path: Path, flt: Filter, expected: List[int]) -> None:
    rows: List[Tuple[int, Dict[str, Any], List[str]]] = [
        (1, {"cat": "image", "type": "A", "year": 2020, "flag": True}, ["a", "b"]),
        (2, {"cat": "image", "type": "B", "year": 2021, "flag": False}, ["a"]),
        (3, {"cat": "vidéo", "year": 2024, "flag": True}, ["c"]),
        (4, {"cat": "text", "year": "zzz"}, []),
        (5, {"big": 2**53 + 1}, []),
        (6, {"z": -0.0}, []),
    ]
    with make_db(tmp_path / "db", 2) as db:
        for i, f, t in rows:
            db.add(i, [float(i), 0.0], Metadata.with_data(f, tags=t))
        got = [i for i, _ in db.search([0.0, 0.0], k=100, filter=flt)]
        assert got == expected
        # The reference evaluator agrees on these documented cases.
        plain = {k: (int(v) if isinstance(v, np.integer) else v) for k, v in flt.items()}
        assert [i for i, f, t in rows if matches(plain, f, t)] == expected
        ids, _ = db.batch_search(np.zeros((1, 2), np.float32), k=8, filter=flt)
        assert [int(i) for i in ids[0] if i >= 0] == expected


# --------------------------------------------------------------------- malformed filters

DEEP_NOT: Filter = {"a": 1}
for _ in range(1000):
    DEEP_NOT = {"$not": DEEP_NOT}
NOT_65: Filter = {"a": 1}
for _ in range(65):
    NOT_65 = {"$not": NOT_65}

MALFORMED: List[Tuple[str, Any, str]] = [
    ("unknown_field_op", {"year": {"$foo": 1}}, 'filter["year"]["$foo"]'),
    ("unknown_top_op", {"$foo": [{"a": 1}]}, 'filter["$foo"]'),
    ("field_op_at_top", {"$gt": 1}, 'filter["$gt"]'),
    ("in_not_a_list", {"year": {"$in": 5}}, 'filter["year"]["$in"]'),
    ("nin_not_a_list", {"year": {"$nin": "abc"}}, 'filter["year"]["$nin"]'),
    ("gt_list_operand", {"year": {"$gt": [1]}}, 'filter["year"]["$gt"]'),
    ("gte_map_operand", {"year": {"$gte": {"a": 1}}}, 'filter["year"]["$gte"]'),
    ("eq_none", {"year": None}, 'filter["year"]'),
    ("eq_nan", {"year": float("nan")}, 'filter["year"]'),
    ("exists_not_bool", {"year": {"$exists": 1}}, 'filter["year"]["$exists"]'),
    ("and_not_a_list", {"$and": {"a": 1}}, 'filter["$and"]'),
    ("or_empty_list", {"$or": []}, 'filter["$or"]'),
    ("or_element_not_a_map", {"$or": [{"a": 1}, 3]}, 'filter["$or"][1]'),
    ("not_a_map", {"$not": [1]}, 'filter["$not"]'),
    ("tags_not_a_map", {"$tags": ["a"]}, 'filter["$tags"]'),
    ("tags_all_not_a_list", {"$tags": {"$all": "a"}}, 'filter["$tags"]["$all"]'),
    ("tags_element_not_str", {"$tags": {"$any": ["a", 1]}}, 'filter["$tags"]["$any"][1]'),
    ("tags_unknown_op", {"$tags": {"$none": ["a"]}}, 'filter["$tags"]["$none"]'),
    ("mixed_operator_map", {"year": {"$gt": 1, "x": 2}}, 'filter["year"]'),
    ("empty_operator_map", {"year": {}}, 'filter["year"]'),
    ("nested_path", {"$or": [{"a": 1}, {"b": {"$in": [[1]]}}]}, 'filter["$or"][1]["b"]["$in"][0]'),
    ("empty_key", {"": 1}, 'filter[""]'),
    ("non_str_key", {1: 2}, "filter"),
    ("int_too_big", {"year": 2**64}, 'filter["year"]'),
    ("depth_1000", DEEP_NOT, 'filter["$not"]["$not"]'),
    ("depth_65", NOT_65, 'filter["$not"]["$not"]'),
    ("list_filter", [("a", 1)], "filter"),
    ("str_filter", "a == 1", "filter"),
    ("int_filter", 5, "filter"),
]


@pytest.mark.parametrize(
    ("flt", "path"), [(f, p) for _, f, p in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_filter_is_a_filter_error_naming_the_path(
    tmp_path: Path, flt: Any, path: str
) -> None:
    with make_db(tmp_path / "db", 2) as db:
        db.add(1, [0.0, 0.0], {"year": 2020, "a": 1})
        for call in (
            lambda: db.search([0.0, 0.0], k=1, filter=flt),
            lambda: db.batch_search(np.zeros((2, 2), np.float32), k=1, filter=flt),
            lambda: db.batch_search(np.zeros((0, 2), np.float32), k=1, filter=flt),
        ):
            with pytest.raises(FilterError) as info:
                call()
            assert isinstance(info.value, ValueError)
            assert isinstance(info.value, NusterDBError)
            msg = str(info.value)
            assert path in msg, msg
            assert len(msg) < 2000, "the message should not echo a huge filter"


def test_depth_limit_accepts_64_levels(tmp_path: Path) -> None:
    ok: Filter = {"a": 1}
    for _ in range(63):
        ok = {"$not": ok}
    with make_db(tmp_path / "db", 1) as db:
        db.bulk_add([1, 2], [[0.0], [1.0]], [{"a": 1}, {"a": 2}])
        # 63 negations of {"a": 1}: an odd count, so the match is inverted.
        assert [i for i, _ in db.search([0.0], k=5, filter=ok)] == [2]


# --------------------------------------------------------------------- hypothesis

COMPONENT = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_infinity=False).map(
    lambda x: x if abs(x) >= 1e-3 else 0.0
)


@st.composite
def search_cases(draw: st.DrawFn) -> Tuple[str, int, List[int], F32, F32, int]:
    metric = draw(st.sampled_from(DistanceMetric.names()))
    dim = draw(st.integers(1, 8))
    n = draw(st.integers(0, 25))
    comp = COMPONENT.map(abs) if metric == "jaccard" else COMPONENT
    # Small integer-valued rows now and then, so exact ties are common.
    row = st.one_of(
        st.lists(comp, min_size=dim, max_size=dim),
        st.lists(
            st.integers(0 if metric == "jaccard" else -2, 2).map(float), min_size=dim, max_size=dim
        ),
    )
    rows_ = draw(st.lists(row, min_size=n, max_size=n))
    ids = draw(st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n, unique=True))
    queries = draw(st.lists(row, min_size=1, max_size=3))
    k = draw(st.integers(1, 30))
    base = np.array(rows_, dtype=np.float32).reshape(n, dim)
    return metric, dim, ids, base, np.array(queries, dtype=np.float32), k


@pytest.fixture(scope="module")
def db_cache() -> Iterator[DbCache]:
    cache = DbCache(make_db, "nusterdb-hyp-")
    yield cache
    cache.close()


@given(case=search_cases())
def test_flat_search_equals_numpy_brute_force_hypothesis(
    db_cache: DbCache, case: Tuple[str, int, List[int], F32, F32, int]
) -> None:
    metric, dim, ids, base, queries, k = case
    db = db_cache.get(dim, metric)
    assert db.count() == 0
    try:
        assert db.bulk_add(ids, base) == len(ids)
        for q in queries:
            got = db.search(q, k=k)
            assert_hits_match(got, base, ids, q, k, metric)
            ref_ids, _ = brute_force(base, ids, q, k, metric)
            assert len(got) == len(ref_ids)
        bids, bd = db.batch_search(queries, k=k)
        assert bids.shape == bd.shape == (len(queries), min(k, len(ids)))
        for r, q in enumerate(queries):
            single = db.search(q, k=k)
            assert_same_answer(bids[r, : len(single)], bd[r, : len(single)], single, "")
            assert (bids[r, len(single) :] == -1).all()
    finally:
        db.bulk_remove(ids)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_repeated_filters_follow_every_change(index_type: str) -> None:
    """Filter results are cached between searches; every write must be seen."""
    db = NusterDB(None, DatabaseConfig(4, index_type=index_type))
    vecs = np.eye(4, dtype=np.float32).repeat(5, axis=0) + np.arange(20)[:, None] * 1e-3
    db.bulk_add(np.arange(20), vecs.astype(np.float32), [{"g": i % 4} for i in range(20)])
    f = {"g": {"$lte": 1}}
    q = np.ones(4, dtype=np.float32)

    def ids() -> set[int]:
        return {i for i, _ in db.search(q, k=50, filter=f)}

    assert ids() == {i for i in range(20) if i % 4 <= 1}
    db.update(2, metadata={"g": 0})
    assert 2 in ids()
    db.remove(0)
    assert 0 not in ids()
    db.add(100, q, {"g": 1})
    assert 100 in ids()
    for i in range(20):
        if i != 0:
            db.update(i, metadata={"g": 0})
    # Now every live vector passes the filter (the "no filter" shortcut).
    assert ids() == set(range(1, 20)) | {100}
    db.update(5, metadata={"g": 3})
    assert 5 not in ids()
