"""``search(..., recall=r)``: the database calibrates ``ef_search`` (HNSW) or ``nprobe``
and maybe a probe reach (IVF) on its own rows, then on the queries searches asked;
held-out queries from the same distribution — never stored, not among those asked —
land near the target against numpy brute force. ``search_params_for`` says what a
target sets; bad targets are refused with ``InvalidArgumentError``."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import numpy.typing as npt
import pytest
from db_helpers import distances
from nusterdb import DatabaseConfig, HNSWConfig, InvalidArgumentError, NusterDB

F32 = npt.NDArray[np.float32]


def blob_rows(rng: np.random.Generator, n: int, dim: int, blobs: int) -> F32:
    centres = 2.0 * rng.standard_normal((blobs, dim))
    return (centres[rng.integers(0, blobs, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def measured(
    db: NusterDB, rows: F32, queries: F32, flt: Optional[Dict[str, Any]] = None, **kw: Any
) -> float:
    """Recall@10 over the rows ``flt`` allows (field "r" = row number % 100); ties count."""
    allowed = np.arange(len(rows))
    if flt is not None:
        allowed = allowed[allowed % 100 < flt["r"]["$lt"]]
    found = 0
    for q in queries:
        d = distances(rows[allowed], q, "euclidean")
        tenth = float(np.sort(d)[9])
        hits = db.search(q, k=10, filter=flt, **kw)
        found += sum(1 for i, dist in hits if dist <= tenth * (1 + 1e-6) + 1e-6)
    return found / (10 * len(queries))


@pytest.fixture(scope="module")
def data() -> tuple[F32, F32]:
    rng = np.random.default_rng(77)
    rows = blob_rows(rng, 8300, 32, 40)
    return rows[:8000], rows[8000:]


def answers_as_set(db: NusterDB, q: F32, target: float) -> None:
    """A search with ``target`` answers as the setting ``search_params_for`` gives (asked
    after it: a search's query joins the sample, which can have the curve measured
    again): the same hits where the setting is a knob Python takes; with a probe reach
    (which only targets set) the lists of ``nprobe`` and more, so each hit is at least
    as near as the same rank's with ``nprobe`` alone."""
    got = db.search(q, k=10, recall=target)
    setting: Dict[str, Any] = dict(db.search_params_for(target))
    alone = db.search(q, k=10, ef_search=setting.get("ef_search"), nprobe=setting.get("nprobe"))
    if "probe_reach" not in setting:
        assert got == alone
    else:
        assert len(got) == len(alone)
        assert all(a[1] <= b[1] for a, b in zip(got, alone)), (got, alone)


def make(index: str, rows: F32, **kw: Any) -> NusterDB:
    hnsw = HNSWConfig(max_nb_connection=8, ef_construction=40)
    db = NusterDB(None, DatabaseConfig(32, index_type=index, hnsw_config=hnsw, **kw))
    db.bulk_add(np.arange(len(rows)), rows, [{"r": i % 100} for i in range(len(rows))])
    return db


@pytest.mark.parametrize(
    ("index", "kw"), [("hnsw", {}), ("ivf", {}), ("ivf", {"quantization": "rabitq"})]
)
def test_targets_are_met_on_held_out_queries(
    data: tuple[F32, F32], index: str, kw: Dict[str, Any]
) -> None:
    rows, queries = data
    db = make(index, rows, **kw)
    knob = "ef_search" if index == "hnsw" else "nprobe"
    # Searches asked with a target: the curves are measured again on them; recall is
    # measured on queries they did not include.
    db.batch_search(queries[:150], k=10, recall=0.9)
    queries = queries[150:]
    last = 0.0
    for target in (0.8, 0.9, 0.95, 0.99):
        setting: Dict[str, Any] = dict(db.search_params_for(target))
        assert knob in setting, setting
        assert set(setting) <= {knob, "probe_reach"}, setting
        assert index == "ivf" or "probe_reach" not in setting, setting
        r = measured(db, rows, queries, recall=target)
        assert r >= target - 0.03, (target, r, setting)
        assert r >= last - 1e-9, (target, r, last)
        last = r
        # The target sets what search_params_for says.
        for q in queries[:20]:
            answers_as_set(db, q, target)
        ids, _ = db.batch_search(queries[:20], k=10, recall=target)
        singles = [db.search(q, k=10, recall=target) for q in queries[:20]]
        assert [list(r) for r in ids] == [[i for i, _ in s] for s in singles]
        # IVF: the setting is one of the curve's steps, which climb in recall.
        setting = dict(db.search_params_for(target))
        (curve,) = db.recall_curves()
        steps = curve["steps"]
        if index == "hnsw":
            assert steps == []
        else:
            chosen = (setting["nprobe"], setting.get("probe_reach"))
            assert chosen in [(n, reach) for n, reach, _ in steps], (chosen, steps)
            assert all(a[2] < b[2] for a, b in zip(steps, steps[1:])), steps


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_a_filter_keeps_its_target(data: tuple[F32, F32], index: str) -> None:
    rows, queries = data
    db = make(index, rows)
    for below in (30, 5):
        flt = {"r": {"$lt": below}}
        r = measured(db, rows, queries, flt, recall=0.95)
        assert r >= 0.92, (below, r)


def test_an_exact_index_sets_nothing(data: tuple[F32, F32]) -> None:
    rows, queries = data
    for index in ("flat", "ivf"):
        db = make(index, rows[:900])  # an IVF index below its training size: no lists
        assert db.search_params_for(0.99) == {}
        assert measured(db, rows[:900], queries[:30], recall=0.5) == 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, 1.5, float("nan"), float("inf")])
def test_bad_targets_are_refused(data: tuple[F32, F32], bad: float) -> None:
    rows, queries = data
    db = make("hnsw", rows[:2000])
    with pytest.raises(InvalidArgumentError, match="recall"):
        db.search(queries[0], recall=bad)
    with pytest.raises(InvalidArgumentError, match="recall"):
        db.batch_search(queries[:2], recall=bad)
    with pytest.raises(InvalidArgumentError, match="recall"):
        db.search_params_for(bad)


def test_a_target_with_its_knob_is_refused(data: tuple[F32, F32]) -> None:
    rows, queries = data
    db = make("hnsw", rows[:2000])
    with pytest.raises(InvalidArgumentError, match="recall"):
        db.search(queries[0], recall=0.9, ef_search=50)
    ivf = make("ivf", rows[:2000])
    with pytest.raises(InvalidArgumentError, match="recall"):
        ivf.search(queries[0], recall=0.9, nprobe=4)


def test_curves_are_saved_with_the_database(data: tuple[F32, F32], tmp_path: Any) -> None:
    """A reopened database (and a read-only follower) answers from the saved curves,
    with the changes made since counted; ``recall_curves`` shows them."""
    rows, queries = data
    path = str(tmp_path / "db")
    hnsw = HNSWConfig(max_nb_connection=8, ef_construction=40)
    db = NusterDB(path, DatabaseConfig(32, index_type="hnsw", hnsw_config=hnsw))
    db.bulk_add(np.arange(len(rows)), rows)
    db.batch_search(queries[:150], recall=0.9)
    chosen = db.search_params_for(0.95)
    curves = db.recall_curves()
    assert len(curves) == 1
    c = curves[0]
    assert (c["k"], c["knob"], c["band"], c["from_searches"], c["live"]) == (
        10,
        "ef_search",
        0.5,
        True,
        8000,
    )
    values = [v for v, _ in c["points"]]
    recalls = [r for _, r in c["points"]]
    assert values == sorted(values)
    assert all(0.0 <= r <= 1.0 for r in recalls)
    db.bulk_add(np.arange(8000, 8100), rows[:100] + 0.5)
    db.close()

    again = NusterDB.open(path)
    follower = NusterDB.open(path, read_only=True)
    for handle in (again, follower):
        (back,) = handle.recall_curves()
        assert back["points"] == c["points"]
        assert back["changed_since"] == 100
    assert again.search_params_for(0.95) == chosen
    assert again.recall_curves()[0]["changed_since"] == 100, "not measured again"
    follower.close()
    again.close()


def test_a_config_default_target(data: tuple[F32, F32], tmp_path: Any) -> None:
    rows, queries = data
    with pytest.raises(InvalidArgumentError, match="recall"):
        DatabaseConfig(32, index_type="hnsw", recall=0.9, hnsw_config=HNSWConfig(ef_search=50))
    with pytest.raises(InvalidArgumentError, match="recall"):
        DatabaseConfig(32, index_type="ivf", recall=0.9, nprobe=4)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(InvalidArgumentError, match="recall"):
            DatabaseConfig(32, recall=bad)
    path = str(tmp_path / "db")
    db = NusterDB(path, DatabaseConfig(32, index_type="ivf", recall=0.95))
    assert db.config.recall == pytest.approx(0.95)
    db.bulk_add(np.arange(len(rows)), rows)
    q = queries[0]
    assert db.search(q) == db.search(q, recall=0.95)
    answers_as_set(db, q, 0.95)
    # A search's own knob wins.
    assert measured(db, rows, queries[150:], nprobe=1) < measured(db, rows, queries[150:])
    db.close()
    # Stored; a reopen passing nprobe replaces it, one passing recall replaces that.
    db = NusterDB.open(path)
    assert db.config.recall == pytest.approx(0.95)
    db.close()
    db = NusterDB(path, DatabaseConfig(32, index_type="ivf", nprobe=3))
    assert (db.config.recall, db.config.nprobe) == (None, 3)
    db.close()
    db = NusterDB(path, DatabaseConfig(32, recall=0.9))
    assert db.config.recall == pytest.approx(0.9)
    assert db.config.nprobe is None
    db.close()
