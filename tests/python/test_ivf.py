"""The IVF index: ``DatabaseConfig(dim, index_type="ivf", nlist=..., nprobe=...)``.

Measured against numpy brute force (``db_helpers``): recall@10 >= 0.95 on clustered
rows for euclidean, cosine and inner product at the default ``nprobe``, the exact answer
(by distance, ties either way) with every list probed, exact distances always; fewer
lists probed find fewer neighbours (the lists are in use and ``nprobe`` reaches them);
``batch_search(nprobe=)`` answers as ``search(nprobe=)``; filters at every selectivity;
a reopen gives the config and the answers back, removed ids are never returned; the
refusals are typed (``InvalidArgumentError``, ``ConfigMismatchError``). Hypothesis: on
small random data with every list probed, the answer is brute force's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import numpy.typing as npt
import pytest
from db_helpers import METRICS, DbCache, assert_hits_match, distances, tolerance
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import (
    ConfigMismatchError,
    DatabaseConfig,
    InvalidArgumentError,
    NusterDB,
)

F32 = npt.NDArray[np.float32]
Hits = List[Tuple[int, float]]

#: The largest nprobe a search takes: every list, so the exact answer.
ALL_LISTS = 65536
THREE = ("euclidean", "cosine", "inner_product")
#: Rows scanned in full, and coded with 1-bit RaBitQ (rows re-scored exactly where the
#: codes' bound lets them through).
QUANTS = ("none", "rabitq", "binary")


def clustered(rng: np.random.Generator, n: int, dim: int, blobs: int, spread: float = 2.0) -> F32:
    """``n`` rows around ``blobs`` random centres (``spread`` N(0, 1) apart), each row in a
    random blob with N(0, 1) noise."""
    centres = spread * rng.standard_normal((blobs, dim))
    which = rng.integers(0, blobs, n)
    return (centres[which] + rng.standard_normal((n, dim))).astype(np.float32)


def near(rng: np.random.Generator, rows: F32, n: int, jitter: float = 0.1) -> F32:
    """``n`` queries: stored rows moved by ``jitter`` N(0, 1)."""
    picks = rows[rng.integers(0, len(rows), n)]
    return (picks + jitter * rng.standard_normal(picks.shape)).astype(np.float32)


def ivf(dim: int, metric: str = "euclidean", **kw: Any) -> DatabaseConfig:
    return DatabaseConfig(dim, index_type="ivf", distance_metric=metric, **kw)


def recall(
    db: NusterDB,
    rows: F32,
    ids: npt.NDArray[np.int64],
    queries: F32,
    metric: str,
    flt: Optional[Dict[str, Any]] = None,
    **kw: Any,
) -> float:
    """Recall@10 of ``db.search(q, 10, filter=flt, **kw)`` against brute force over
    ``(ids, rows)`` (the allowed rows): a hit counts when its distance is within the true
    10th (ties are not misses). Every hit must be among ``ids``, at its row's distance as
    the database's metric computes it."""
    by_id = {int(i): r for r, i in enumerate(ids)}
    found = asked = 0
    for q in queries:
        hits = db.search(q, k=10, filter=flt, **kw)
        ref = distances(rows, q, metric)
        want = min(10, len(rows))
        tenth = float(np.sort(ref)[want - 1])
        tol = tolerance(metric, rows.shape[1], max(abs(tenth), 1.0))
        if metric == "inner_product":
            tol = tolerance(metric, rows.shape[1], float((np.abs(rows) @ np.abs(q)).max()))
        assert len(hits) == want
        for i, d in hits:
            assert i in by_id, f"{i} is not an allowed row"
            assert d == db.metric.distance(q, rows[by_id[i]]), f"distance of {i}"
            found += int(ref[by_id[i]] <= tenth + tol)
        asked += want
    return found / asked


def assert_batch_equals_singles(db: NusterDB, queries: F32, **kw: Any) -> None:
    ids, dists = db.batch_search(queries, k=10, **kw)
    singles = [db.search(q, k=10, **kw) for q in queries]
    assert [list(r) for r in ids] == [[i for i, _ in hits] for hits in singles]
    assert [list(r) for r in dists] == [[np.float32(d) for _, d in hits] for hits in singles]


@pytest.mark.parametrize("quantization", QUANTS)
@pytest.mark.parametrize("metric", THREE)
def test_recall_on_clustered_rows_and_exact_with_every_list(metric: str, quantization: str) -> None:
    rng = np.random.default_rng(100 + THREE.index(metric))
    n, dim = 6000, 32
    rows = clustered(rng, n, dim, 60)
    ids = np.arange(5, 5 + 3 * n, 3, dtype=np.int64)
    queries = near(rng, rows, 30)
    far = (2.0 * rng.standard_normal((10, dim))).astype(np.float32)
    db = NusterDB(None, ivf(dim, metric, quantization=quantization))
    assert db.config.quantization == quantization
    assert ("codes" in db.stats().memory_by_part) == (quantization != "none")
    assert db.index == "ivf"
    assert db.bulk_add(ids, rows) == n
    r = recall(db, rows, ids, queries, metric)
    assert r >= 0.95, f"recall@10 {r:.3f} at the default nprobe"
    assert recall(db, rows, ids, queries, metric, nprobe=16) >= 0.95
    for q in np.concatenate([queries, far]):
        for p in (ALL_LISTS, 1000):
            assert_hits_match(db.search(q, k=10, nprobe=p), rows, ids, q, 10, metric)
    for probe in (None, 1, 3, ALL_LISTS):
        assert_batch_equals_singles(db, np.concatenate([queries, far]), nprobe=probe)


@pytest.mark.parametrize("quantization", QUANTS)
def test_fewer_lists_probed_find_fewer_neighbours(quantization: str) -> None:
    # Rows without structure: one list of ~64 misses most neighbours.
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((4096, 32)).astype(np.float32)
    ids = np.arange(4096, dtype=np.int64)
    queries = rng.standard_normal((30, 32)).astype(np.float32)
    for metric in THREE:
        db = NusterDB(None, ivf(32, metric, quantization=quantization))
        db.bulk_add(ids, rows)
        one = recall(db, rows, ids, queries, metric, nprobe=1)
        default = recall(db, rows, ids, queries, metric)
        many = recall(db, rows, ids, queries, metric, nprobe=32)
        every = recall(db, rows, ids, queries, metric, nprobe=ALL_LISTS)
        assert one < 0.8, f"{metric}: recall {one:.3f} probing one list: no lists?"
        assert one < default < many, (metric, one, default, many)
        assert every == 1.0
        # A stated default nprobe steers the searches that state none.
        fixed = NusterDB(None, ivf(32, metric, nprobe=1, quantization=quantization))
        fixed.bulk_add(ids, rows)
        assert fixed.config.nprobe == 1
        for q in queries[:10]:
            assert fixed.search(q, k=10) == fixed.search(q, k=10, nprobe=1)
        assert recall(fixed, rows, ids, queries, metric) == one


@pytest.mark.parametrize("quantization", QUANTS)
@pytest.mark.parametrize("metric", ["euclidean", "inner_product"])
def test_filters_at_every_selectivity(metric: str, quantization: str) -> None:
    rng = np.random.default_rng(21)
    n, dim = 10_000, 24
    rows = clustered(rng, n, dim, 80)
    ids = np.arange(n, dtype=np.int64)
    db = NusterDB(None, ivf(dim, metric, quantization=quantization))
    db.bulk_add(ids, rows, [{"r": i % 1000} for i in range(n)])
    queries = near(rng, rows, 20)
    for per_mille in (1, 10, 100, 1000):
        flt = {"r": {"$lt": per_mille}}
        allowed = (ids % 1000) < per_mille
        assert db.count(filter=flt) == int(allowed.sum())
        r = recall(db, rows[allowed], ids[allowed], queries, metric, flt)
        assert r >= 0.95, f"{per_mille} per mille allowed: recall@10 {r:.3f}"
        for q in queries:
            got = db.search(q, k=10, filter=flt, nprobe=ALL_LISTS)
            assert_hits_match(got, rows[allowed], ids[allowed], q, 10, metric)
        assert_batch_equals_singles(db, queries, filter=flt)
        assert_batch_equals_singles(db, queries, filter=flt, nprobe=2)


def answers(db: NusterDB, queries: F32, **kw: Any) -> List[Hits]:
    return [db.search(q, k=10, **kw) for q in queries]


@pytest.mark.parametrize("quantization", QUANTS)
def test_reopen_keeps_the_config_and_the_answers(tmp_path: Path, quantization: str) -> None:
    rng = np.random.default_rng(31)
    n, dim = 5000, 16
    rows = clustered(rng, n, dim, 50)
    ids = np.arange(n, dtype=np.int64)
    # Queries between the clusters too, where 4 of 40 lists miss some neighbours.
    queries = np.concatenate([near(rng, rows, 20), rng.standard_normal((20, dim))]).astype(
        np.float32
    )
    path = tmp_path / "db"
    with NusterDB(path, ivf(dim, nlist=40, nprobe=4, quantization=quantization)) as db:
        db.bulk_add(ids, rows)
        before = answers(db, queries)
        exact = answers(db, queries, nprobe=ALL_LISTS)
    assert before != exact, "4 of 40 lists probed should miss some neighbours"
    with NusterDB.open(path) as db:
        c = db.config
        assert (c.index_type, c.nlist, c.nprobe, c.dim) == ("ivf", 40, 4, dim)
        assert c.quantization == quantization
        assert db.index == "ivf"
        assert answers(db, queries) == before
        assert answers(db, queries, nprobe=ALL_LISTS) == exact
        # Removes, upserts to new places, updates and adds.
        live = dict(zip(ids.tolist(), rows))
        gone = ids[::3]
        assert db.bulk_remove(gone) == len(gone)
        assert db.remove(int(ids[1])) is True
        gone = np.append(gone, ids[1])
        for i in gone.tolist():
            live.pop(i)
        moved = clustered(rng, 400, dim, 10)
        for j, i in enumerate(ids[2:2000:5].tolist()):
            if i in live:
                if j % 2:
                    db.upsert(i, moved[j])
                else:
                    db.update(i, moved[j])
                live[i] = moved[j]
        extra = clustered(rng, 300, dim, 5)
        db.bulk_add(np.arange(10**6, 10**6 + 300), extra)
        live.update(zip(range(10**6, 10**6 + 300), extra))
        now = answers(db, queries)
    live_ids = np.array(sorted(live), dtype=np.int64)
    live_rows = np.array([live[i] for i in live_ids.tolist()], dtype=np.float32)
    removed = set(gone.tolist())
    with NusterDB.open(path) as db:
        assert db.count() == len(live)
        assert answers(db, queries) == now
        for q in np.concatenate([rows[gone[::20]], queries]):
            for p in (None, 1, ALL_LISTS):
                hits = db.search(q, k=50, nprobe=p)
                assert not removed & {i for i, _ in hits}, f"a removed id returned at {p}"
            assert_hits_match(
                db.search(q, k=10, nprobe=ALL_LISTS), live_rows, live_ids, q, 10, "euclidean"
            )
        got, _ = db.batch_search(rows[gone[:200]], k=20)
        assert not removed & set(got.ravel().tolist())
        r = recall(db, live_rows, live_ids, near(rng, live_rows, 30), "euclidean")
        assert r >= 0.95, f"recall@10 {r:.3f} after the changes"

    # nlist is fixed at creation; a stated nprobe is applied and kept.
    for bad in (ivf(dim, nlist=41), DatabaseConfig(dim, nlist=39)):
        with pytest.raises(ConfigMismatchError, match="nlist"):
            NusterDB(path, bad)
    with pytest.raises(ConfigMismatchError, match="index_type"):
        NusterDB(path, DatabaseConfig(dim, index_type="flat"))
    with NusterDB(path, DatabaseConfig(dim, index_type="ivf")) as db:
        assert (db.config.nlist, db.config.nprobe) == (40, 4), "unstated: kept"
        assert answers(db, queries) == now
    with NusterDB(path, DatabaseConfig(dim, nprobe=1)) as db:
        assert (db.config.nlist, db.config.nprobe) == (40, 1)
        assert answers(db, queries) == answers(db, queries, nprobe=1)
        one = answers(db, queries)
    with NusterDB.open(path) as db:
        assert db.config.nprobe == 1
        assert answers(db, queries) == one
    with NusterDB(path, ivf(dim, nlist=40, nprobe=40)) as db:
        assert db.config.nprobe == 40
        assert answers(db, queries) == answers(db, queries, nprobe=ALL_LISTS)
    with pytest.raises(InvalidArgumentError, match="nprobe"):
        NusterDB(path, DatabaseConfig(dim, nprobe=0))
    with NusterDB.open(path) as db:
        assert db.config.nprobe == 40, "a refused open changed nothing"
    # The codes are fixed at creation too.
    other = "rabitq" if quantization != "rabitq" else "binary"
    with pytest.raises(ConfigMismatchError, match="quantization"):
        NusterDB(path, ivf(dim, quantization=other))


@pytest.mark.parametrize(
    "kw",
    [
        {"nlist": 0},
        {"nprobe": 0},
        {"nlist": ALL_LISTS + 1},
        {"nprobe": ALL_LISTS + 1},
        {"quantization": "sq4"},
        {"quantization": "sq8"},
        {"vectors": "disk"},
    ],
)
def test_bad_ivf_configs_are_refused(kw: Dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        NusterDB(None, ivf(8, **kw))
    with pytest.raises(InvalidArgumentError), tempfile.TemporaryDirectory() as d:
        NusterDB(Path(d) / "db", ivf(8, "cosine", **kw))


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
@pytest.mark.parametrize("kw", [{"nlist": 16}, {"nprobe": 4}])
def test_ivf_parameters_are_refused_for_other_indexes(index_type: str, kw: Dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError, match=r"(?i)ivf"):
        DatabaseConfig(8, index_type=index_type, **kw)
    # Without an index type the config is a partial one (for reopening an IVF
    # database); a database created with it is flat, so it is refused there.
    partial = DatabaseConfig(8, **kw)
    with pytest.raises(InvalidArgumentError):
        NusterDB(None, partial)


def test_search_parameters_are_refused_where_they_mean_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((50, 8)).astype(np.float32)
    q = rows[0]
    for index_type in ("flat", "hnsw"):
        db = NusterDB(None, DatabaseConfig(8, index_type=index_type))
        db.bulk_add(np.arange(50), rows)
        for p in (1, 8, ALL_LISTS):
            with pytest.raises(InvalidArgumentError, match="nprobe"):
                db.search(q, k=5, nprobe=p)
            with pytest.raises(InvalidArgumentError, match="nprobe"):
                db.batch_search(rows[:3], k=5, nprobe=p)
        assert len(db.search(q, k=5, ef_search=32)) == 5
    db = NusterDB(None, ivf(8))
    db.bulk_add(np.arange(50), rows)
    with pytest.raises(InvalidArgumentError, match="ef_search"):
        db.search(q, k=5, ef_search=32)
    with pytest.raises(InvalidArgumentError, match="ef_search"):
        db.batch_search(rows[:3], k=5, ef_search=32)
    for p in (0, ALL_LISTS + 1):
        with pytest.raises(InvalidArgumentError, match="nprobe"):
            db.search(q, k=5, nprobe=p)
        with pytest.raises(InvalidArgumentError, match="nprobe"):
            db.batch_search(rows[:3], k=5, nprobe=p)
    with pytest.raises(OverflowError):
        db.search(q, k=5, nprobe=-1)
    with pytest.raises(InvalidArgumentError, match="quantized"):
        db.search(q, k=5, quantized=True)
    # nprobe stated on reopening a flat database is refused.
    NusterDB(tmp_path / "flat", DatabaseConfig(8)).close()
    with pytest.raises(InvalidArgumentError, match="nprobe"):
        NusterDB(tmp_path / "flat", DatabaseConfig(8, nprobe=4))
    with NusterDB.open(tmp_path / "flat") as flat:
        assert flat.config.index_type == "flat"
        assert flat.config.nprobe is None


def test_config_round_trip_and_repr() -> None:
    c = ivf(8, "cosine", nlist=12, nprobe=3)
    assert (c.index_type, c.nlist, c.nprobe, c.quantization) == ("ivf", 12, 3, "none")
    assert "nlist=12" in repr(c)
    assert "nprobe=3" in repr(c)
    auto = ivf(8)
    assert (auto.nlist, auto.nprobe) == (None, None)
    assert "nlist" not in repr(DatabaseConfig(8))
    assert c == ivf(8, "cosine", nlist=12, nprobe=3)
    assert c != ivf(8, "cosine", nlist=12, nprobe=4)
    assert DatabaseConfig(8, index_type="IVF").index_type == "ivf"
    db = NusterDB(None, c)
    assert (db.config.nlist, db.config.nprobe) == (12, 3)
    # More probes than lists: every list, the exact answer.
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((1500, 8)).astype(np.float32)
    ids = np.arange(1500, dtype=np.int64)
    more = NusterDB(None, ivf(8, nlist=4, nprobe=16))
    more.bulk_add(ids, rows)
    for q in rows[:5] + 0.1:
        assert_hits_match(more.search(q, k=10), rows, ids, q, 10, "euclidean")


@pytest.mark.parametrize("metric", THREE)
def test_quantized_false_scans_the_full_rows_of_a_coded_index(metric: str) -> None:
    # The same rows give the same lists (deterministic training): the coded index with
    # quantized=False answers as the plain one does; quantized=True is the coded scan,
    # and refused where there are no codes.
    rng = np.random.default_rng(61)
    rows = clustered(rng, 3000, 16, 30)
    ids = np.arange(3000, dtype=np.int64)
    coded = NusterDB(None, ivf(16, metric, quantization="rabitq"))
    plain = NusterDB(None, ivf(16, metric))
    coded.bulk_add(ids, rows)
    plain.bulk_add(ids, rows)
    for q in near(rng, rows, 20):
        for p in (1, 4):
            want = plain.search(q, k=10, nprobe=p)
            assert coded.search(q, k=10, nprobe=p, quantized=False) == want
            assert coded.search(q, k=10, nprobe=p, quantized=True) == coded.search(
                q, k=10, nprobe=p
            )
        ids_f, _ = coded.batch_search(q[None, :], k=10, nprobe=4, quantized=False)
        assert list(ids_f[0]) == [i for i, _ in plain.search(q, k=10, nprobe=4)]
    with pytest.raises(InvalidArgumentError, match="quantized"):
        plain.search(rows[0], k=10, quantized=True)


@pytest.mark.parametrize("metric", ["manhattan", "chebyshev", "hamming", "jaccard"])
def test_rabitq_codes_need_a_metric_with_a_geometry(metric: str) -> None:
    with pytest.raises(InvalidArgumentError, match="quantization"):
        NusterDB(None, ivf(8, metric, quantization="rabitq"))
    for ok in ("euclidean", "cosine", "angular", "inner_product"):
        assert NusterDB(None, ivf(8, ok, quantization="rabitq")).config.quantization == "rabitq"


# --------------------------------------------------------------------- hypothesis


@pytest.fixture(scope="module")
def db_cache() -> Iterator[DbCache]:
    cache = DbCache(lambda path, dim, metric: NusterDB(path, ivf(dim, metric)), "nusterdb-ivf-hyp-")
    yield cache
    cache.close()


@st.composite
def small_cases(draw: st.DrawFn) -> Tuple[str, F32, F32, int]:
    metric = draw(st.sampled_from(METRICS))
    dim = draw(st.integers(1, 8))
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Small integers now and then, so ties and duplicates are common.
    if draw(st.booleans()):
        rows = rng.integers(-2, 3, (n, dim)).astype(np.float32)
        queries = rng.integers(-2, 3, (3, dim)).astype(np.float32)
    else:
        rows = (rng.standard_normal((n, dim)) * 10.0 ** rng.integers(-2, 3)).astype(np.float32)
        queries = rng.standard_normal((3, dim)).astype(np.float32)
    if metric == "jaccard":
        rows, queries = np.abs(rows), np.abs(queries)
    k = draw(st.integers(1, 30))
    return metric, rows, queries, k


@given(case=small_cases())
@settings(max_examples=60)
def test_small_data_with_every_list_equals_brute_force_hypothesis(
    db_cache: DbCache, case: Tuple[str, F32, F32, int]
) -> None:
    metric, rows, queries, k = case
    n, dim = rows.shape
    db = db_cache.get(dim, metric)
    assert db.count() == 0
    ids = np.arange(n, dtype=np.int64) * 7 + 1
    try:
        db.bulk_add(ids, rows)
        for q in queries:
            for p in (ALL_LISTS, None, 1):
                assert_hits_match(db.search(q, k=k, nprobe=p), rows, ids, q, k, metric)
    finally:
        db.bulk_remove(ids)


@given(
    metric=st.sampled_from(METRICS),
    dim=st.integers(1, 8),
    n=st.integers(1024, 1500),
    nlist=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
    coded=st.booleans(),
)
@settings(max_examples=20)
def test_trained_lists_with_every_list_probed_equal_brute_force_hypothesis(
    metric: str, dim: int, n: int, nlist: int, seed: int, ties: bool, coded: bool
) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(-3, 4, (n, dim)).astype(np.float32) if ties else clustered(rng, n, dim, 20)
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    queries = np.concatenate([near(rng, rows, 4), rows[:2]]).astype(np.float32)
    if metric == "jaccard":
        rows, queries = np.abs(rows), np.abs(queries)
    # RaBitQ codes where the metric has a geometry (the others refuse them).
    geometric = metric in ("euclidean", "cosine", "inner_product")
    quantization = "rabitq" if coded and geometric else "none"
    db = NusterDB(None, ivf(dim, metric, nlist=nlist, quantization=quantization))
    db.bulk_add(ids, rows)
    for q in queries:
        for p in (nlist, ALL_LISTS):
            assert_hits_match(db.search(q, k=10, nprobe=p), rows, ids, q, 10, metric)
        # Fewer lists: still distinct stored ids at their exact distances, sorted.
        hits = db.search(q, k=10, nprobe=1)
        assert len(hits) == 10
        assert len({i for i, _ in hits}) == 10
        by_id = {int(i): r for r, i in enumerate(ids)}
        for i, d in hits:
            assert d == db.metric.distance(q, rows[by_id[i]])
        assert [d for _, d in hits] == sorted(d for _, d in hits)


@pytest.mark.parametrize("metric", THREE)
def test_rows_left_on_disk_answer_as_in_memory(tmp_path: Path, metric: str) -> None:
    """``vectors="disk"`` on an IVF index with RaBitQ codes: the seal's rows stay in its
    file (mapped, not resident), the answers are the in-memory ones, writes on top of
    them stay exact with every list (numpy brute force). ``"mmap"`` (the default)
    leaves them in the file too, read through the mapping, with the same answers."""
    rng = np.random.default_rng(12)
    rows = clustered(rng, 4000, 24, 30)
    queries = near(rng, rows, 40, 0.2)
    path = str(tmp_path / "db")
    with NusterDB(path, ivf(24, metric, quantization="rabitq")) as db:
        db.bulk_add(np.arange(len(rows)), rows)
    with NusterDB.open(path, vectors="memory") as db:
        want = [answers(db, queries), answers(db, queries, nprobe=ALL_LISTS)]
        in_memory = db.stats().memory_by_part["vectors"]
    with NusterDB.open(path) as db:
        assert db.config.vectors == "mmap"
        assert [answers(db, queries), answers(db, queries, nprobe=ALL_LISTS)] == want
        assert db.stats().memory_by_part["vectors"] * 4 < in_memory
    with NusterDB.open(path, vectors="disk") as db:
        assert db.config.vectors == "disk"
        assert [answers(db, queries), answers(db, queries, nprobe=ALL_LISTS)] == want
        stats = db.stats()
        assert stats.mapped_bytes >= rows.nbytes
        assert stats.memory_by_part["vectors"] * 4 < in_memory
        if stats.mapped_resident_bytes is not None:
            assert stats.mapped_resident_bytes * 4 < stats.mapped_bytes
        more = clustered(rng, 300, 24, 5)
        db.bulk_add(np.arange(10_000, 10_300), more)
        db.bulk_remove(list(range(0, 4000, 3)))
        kept = np.concatenate([np.delete(rows, np.arange(0, 4000, 3), axis=0), more])
        ids = np.concatenate(
            [np.delete(np.arange(4000), np.arange(0, 4000, 3)), np.arange(10_000, 10_300)]
        )
        for q in queries[:10]:
            got = db.search(q, k=10, nprobe=ALL_LISTS)
            d = distances(kept, q, metric)
            order = np.argsort(d, kind="stable")[:10]
            assert np.allclose([dist for _, dist in got], d[order], rtol=1e-5, atol=1e-5)
            assert {i for i, _ in got} <= set(ids.tolist())
    plain = str(tmp_path / "plain")
    with NusterDB(plain, ivf(24, metric)) as db:
        db.bulk_add(np.arange(len(rows)), rows)
    with pytest.raises(InvalidArgumentError, match="rabitq"):
        NusterDB.open(plain, vectors="disk")


@pytest.mark.parametrize("vectors", ["mmap", "disk"])
def test_a_seal_takes_the_rows_off_the_heap(tmp_path: Path, vectors: str) -> None:
    """With 1-bit codes under ``vectors="mmap"`` (the default) and ``"disk"``, a database
    built since it was created keeps its rows in the seal's file once a seal ran: the
    rows' part of the memory is a fraction of an in-memory twin's, the answers are the
    twin's, and rows added afterwards leave the heap at the next seal."""
    rng = np.random.default_rng(5)
    rows = clustered(rng, 6000, 24, 30)
    queries = near(rng, rows, 30, 0.2)
    twin = NusterDB(None, ivf(24, "cosine", quantization="binary"))
    twin.bulk_add(np.arange(len(rows)), rows)
    cfg = ivf(24, "cosine", quantization="binary", vectors=vectors)
    with NusterDB(str(tmp_path / "db"), cfg) as db:
        db.bulk_add(np.arange(len(rows)), rows)
        db.flush()
        twin_bytes = twin.stats().memory_by_part["vectors"]
        assert db.stats().memory_by_part["vectors"] * 4 < twin_bytes
        assert answers(db, queries) == answers(twin, queries)
        # Fewer rows than a seal waits for: on the heap until `seal()`.
        more = clustered(rng, 1500, 24, 10)
        db.bulk_add(np.arange(10_000, 11_500), more)
        twin.bulk_add(np.arange(10_000, 11_500), more)
        heap = db.stats().memory_by_part["vectors"]
        db.seal()
        assert db.stats().memory_by_part["vectors"] * 2 < heap
        assert answers(db, queries) == answers(twin, queries)
