"""Where an HNSW index keeps its sealed rows: ``vectors="memory" | "mmap" | "disk"``.

Chosen at each open and never stored. Every mode answers exactly as the others (ids
and distances bit for bit) on the same sealed database; ``memory`` maps nothing,
``mmap`` and ``disk`` map the seal's files; ``disk`` searches read the rows they
re-rank from the files, so on Linux the mapped pages resident after many searches stay
well under the rows' bytes, where ``mmap`` searches touch most of them. Bad values
and combinations are refused with a typed error, nothing changed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from nusterdb import DatabaseConfig, HNSWConfig, InvalidArgumentError, NusterDB

DIM = 64
N = 3000
MODES = ("memory", "mmap", "disk")


def build(path: Path, metric: str) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((50, DIM)).astype(np.float32)
    config = DatabaseConfig(
        DIM,
        index_type="hnsw",
        distance_metric=metric,
        hnsw_config=HNSWConfig(max_nb_connection=16, ef_construction=100),
    )
    with NusterDB(str(path), config) as db:
        db.bulk_add(np.arange(N, dtype=np.int64), rows, progress=False)
    return rows, queries


def answers(db: NusterDB, queries: np.ndarray) -> List[List[Tuple[int, float]]]:
    return [[(int(i), float(d)) for i, d in db.search(q, k=10, ef_search=200)] for q in queries]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_every_mode_answers_alike_and_holds_the_rows_as_it_says(
    tmp_path: Path, metric: str
) -> None:
    path = tmp_path / "db"
    rows, queries = build(path, metric)
    rows_bytes = rows.nbytes
    reference = None
    for mode in MODES:
        with NusterDB.open(str(path), vectors=mode) as db:
            assert db.config.vectors == mode
            assert db.load_source()["source"] == "segments"
            got = answers(db, queries)
            if reference is None:
                reference = got
            assert got == reference, mode
            # More searches, then what the mappings hold.
            for q in queries:
                for _ in range(6):
                    db.search(q, k=10, ef_search=400)
            stats = db.stats()
            assert (stats.mapped_bytes == 0) == (mode == "memory"), mode
            resident = stats.mapped_resident_bytes
            if sys.platform.startswith("linux"):
                assert resident is not None
                if mode == "memory":
                    assert resident == 0
                elif mode == "disk":
                    assert resident < rows_bytes // 2, (mode, resident, rows_bytes)
                else:
                    assert resident > rows_bytes // 2, (mode, resident, rows_bytes)
        # Not stored: the next plain open maps, whatever the last one chose.
        with NusterDB.open(str(path)) as db:
            assert db.config.vectors == "mmap"


def test_writes_in_disk_mode_are_found_with_exact_distances(tmp_path: Path) -> None:
    path = tmp_path / "db"
    rows, queries = build(path, "euclidean")
    rng = np.random.default_rng(9)
    model = {i: rows[i] for i in range(N)}
    with NusterDB.open(str(path), vectors="disk") as db:
        new = rng.standard_normal((300, DIM)).astype(np.float32)
        db.bulk_add(np.arange(10_000, 10_300, dtype=np.int64), new, progress=False)
        model.update({10_000 + i: new[i] for i in range(300)})
        changed = rng.standard_normal((100, DIM)).astype(np.float32)
        db.bulk_upsert(np.arange(0, 100, dtype=np.int64), changed, progress=False)
        model.update({i: changed[i] for i in range(100)})
        gone = list(range(100, N, 7))
        db.bulk_remove(gone)
        for g in gone:
            del model[g]
        ids = np.array(sorted(model), dtype=np.int64)
        base = np.stack([model[int(i)] for i in ids]).astype(np.float64)
        hits = 0
        for q in queries:
            got = db.search(q, k=10, ef_search=300)
            d = np.sqrt(((base - q.astype(np.float64)) ** 2).sum(axis=1))
            want = set(ids[np.argsort(d, kind="stable")[:10]].tolist())
            for i, dist in got:
                assert i in model
                exact = float(np.linalg.norm(model[i].astype(np.float64) - q))
                assert dist == pytest.approx(exact, rel=1e-5, abs=1e-5)
            hits += len(want & {i for i, _ in got})
        assert hits >= 0.95 * 10 * len(queries)


def test_bad_modes_are_refused_and_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    build(path, "euclidean")
    with pytest.raises(InvalidArgumentError, match="vectors"):
        NusterDB.open(str(path), vectors="ssd")
    with pytest.raises(InvalidArgumentError, match="vectors"):
        DatabaseConfig(DIM, vectors="ram")
    # Disk needs HNSW on a metric the walk reads codes for, and files.
    with pytest.raises(InvalidArgumentError, match="flat"):
        DatabaseConfig(DIM, index_type="flat", vectors="disk")
    with pytest.raises(InvalidArgumentError, match="manhattan"):
        DatabaseConfig(DIM, index_type="hnsw", distance_metric="manhattan", vectors="disk")
    with pytest.raises(InvalidArgumentError, match="in-memory"):
        NusterDB(None, DatabaseConfig(DIM, index_type="hnsw", vectors="disk"))
    flat = tmp_path / "flat"
    with NusterDB(str(flat), DatabaseConfig(DIM)) as db:
        db.add(1, np.ones(DIM, dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="flat"):
        NusterDB.open(str(flat), vectors="disk")
    with NusterDB.open(str(flat)) as db:
        assert len(db) == 1
    with NusterDB.open(str(path)) as db:
        assert len(db) == N
