"""Reopening an existing database with a config: the one rule.

Only what the caller passes counts. Structural fields passed must match the stored ones
(ConfigMismatchError names the one that differs, and nothing else); runtime knobs passed
apply, are reported by ``db.config`` and are stored for the next open; anything not
passed stays as stored, so ``sync_writes`` is never lowered by ``NusterDB(path, dim=d)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from nusterdb import (
    ConfigMismatchError,
    DatabaseConfig,
    HNSWConfig,
    InvalidArgumentError,
    NusterDB,
    StorageConfiguration,
)

DIM = 8

STRUCTURAL = ["dim", "index_type", "distance_metric", "max_nb_connection", "max_layer"]


def wal_syncs(db: NusterDB) -> int:
    """The engine's count of WAL fsyncs (statistics are on by default)."""
    text = db.stats().engine_statistics
    assert text is not None
    m = re.search(r"rocksdb\.wal\.synced COUNT : (\d+)", text)
    assert m is not None, text
    return int(m.group(1))


def syncs_for_writes(db: NusterDB, n: int) -> int:
    before = wal_syncs(db)
    start = db.count() + 1000
    for i in range(n):
        db.add(start + i, [float(i)] * DIM)
    return wal_syncs(db) - before


def test_a_dim_only_reopen_keeps_sync_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    created = DatabaseConfig(DIM, storage_config=StorageConfiguration(sync_writes=True))
    NusterDB(path, created).close()
    with NusterDB(path, dim=DIM) as db:
        assert db.config.storage_config.sync_writes
        assert syncs_for_writes(db, 40) >= 40
    # Other storage knobs passed: sync_writes still as stored.
    with NusterDB(
        path, DatabaseConfig(DIM, storage_config=StorageConfiguration(cache_size_mb=8))
    ) as db:
        assert db.config.storage_config.sync_writes
        assert db.config.storage_config.cache_size_mb == 8
        assert syncs_for_writes(db, 40) >= 40
    # Lowered when passed, and stored as lowered.
    off = DatabaseConfig(DIM, storage_config=StorageConfiguration(sync_writes=False))
    with NusterDB(path, off) as db:
        assert not db.config.storage_config.sync_writes
        assert syncs_for_writes(db, 40) < 5
    with NusterDB.open(path) as db:
        assert not db.config.storage_config.sync_writes
        assert db.config.storage_config.cache_size_mb == 8


STORAGE_KNOBS: List[Dict[str, Any]] = [
    {"cache_size_mb": 9},
    {"write_buffer_size_mb": 5},
    {"max_write_buffer_number": 7},
    {"compression": "zstd"},
    {"enable_statistics": False},
    {"enable_bloom_filter": False},
    {"bloom_filter_bits_per_key": 13},
    {"max_background_jobs": 3},
    {"sync_writes": True},
]

HNSW_KNOBS: List[Dict[str, Any]] = [
    {"ef_search": 77},
    {"ef_construction": 99},
    {"use_heuristic": False},
    {"max_nb_elements": 5000},
]


@pytest.mark.parametrize("knob", STORAGE_KNOBS + HNSW_KNOBS, ids=lambda k: next(iter(k)))
def test_a_runtime_knob_given_at_reopen_applies_and_is_stored(
    tmp_path: Path, knob: Dict[str, Any]
) -> None:
    path = str(tmp_path / "db")
    ((name, value),) = knob.items()
    NusterDB(path, DatabaseConfig(DIM, index_type="hnsw")).close()
    hnsw = name in {"ef_search", "ef_construction", "use_heuristic", "max_nb_elements"}
    if hnsw:
        given = DatabaseConfig(DIM, hnsw_config=HNSWConfig(**knob))
    else:
        given = DatabaseConfig(DIM, storage_config=StorageConfiguration(**knob))

    def read(c: DatabaseConfig) -> Any:
        return getattr(c.hnsw_config if hnsw else c.storage_config, name)

    before = NusterDB.open(path, read_only=True)
    assert read(before.config) != value
    before.close()
    with NusterDB(path, given) as db:
        assert read(db.config) == value
        # Everything else as stored (the given config's defaults are not applied).
        assert db.config.index_type == "hnsw"
        db.add(1, [1.0] * DIM)
        assert db.search([1.0] * DIM, k=1) == [(1, 0.0)]
    with NusterDB.open(path) as db:
        assert read(db.config) == value


def test_ef_search_given_at_reopen_changes_the_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    dim = 24
    base = rng.standard_normal((3000, dim)).astype(np.float32)
    queries = rng.standard_normal((60, dim)).astype(np.float32)
    path = str(tmp_path / "db")
    hnsw = HNSWConfig(max_nb_connection=4, ef_construction=8)
    with NusterDB(path, DatabaseConfig(dim, index_type="hnsw", hnsw_config=hnsw)) as db:
        db.bulk_add(np.arange(3000, dtype=np.int64), base)

    def recall(ef: int) -> float:
        with NusterDB(path, DatabaseConfig(dim, hnsw_config=HNSWConfig(ef_search=ef))) as db:
            assert db.config.hnsw_config.ef_search == ef
            hits = 0
            for q in queries:
                truth = set(np.argsort(((base - q) ** 2).sum(axis=1))[:10].tolist())
                hits += len({i for i, _ in db.search(q, k=10)} & truth)
        return hits / (10 * len(queries))

    low, high = recall(1), recall(400)
    print(f"recall@10 at ef_search 1: {low:.3f}, at 400: {high:.3f}")
    assert high >= 0.85
    assert low + 0.1 <= high


@pytest.mark.parametrize("field", STRUCTURAL)
def test_a_structural_mismatch_names_only_the_given_field(tmp_path: Path, field: str) -> None:
    path = str(tmp_path / "db")
    hnsw = HNSWConfig(max_nb_connection=8, max_layer=10)
    NusterDB(path, DatabaseConfig(DIM, index_type="hnsw", hnsw_config=hnsw)).close()
    given = {
        "dim": DatabaseConfig(DIM + 1),
        "index_type": DatabaseConfig(DIM, index_type="flat"),
        "distance_metric": DatabaseConfig(DIM, distance_metric="cosine"),
        "max_nb_connection": DatabaseConfig(DIM, hnsw_config=HNSWConfig(max_nb_connection=16)),
        "max_layer": DatabaseConfig(DIM, hnsw_config=HNSWConfig(max_layer=5)),
    }[field]
    with pytest.raises(ConfigMismatchError) as info:
        NusterDB(path, given)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert f"config mismatch for {field}:" in msg
    for other in STRUCTURAL:
        if other != field:
            assert other not in msg, msg
    # Nothing changed: a plain open finds the database as created.
    with NusterDB.open(path) as db:
        assert db.config.hnsw_config.max_nb_connection == 8
        assert db.config.distance_metric.name == "euclidean"


def test_dim_keyword_opens_a_database_of_any_index_type(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    created = DatabaseConfig(DIM, index_type="hnsw", distance_metric="cosine")
    NusterDB(path, created).close()
    with NusterDB(path, dim=DIM) as db:
        assert db.config == created
    with NusterDB.simple(path, DIM, use_hnsw=True) as db:
        assert db.config == created
    with pytest.raises(ConfigMismatchError, match="index_type"):
        NusterDB.simple(path, DIM)


def test_read_only_open_applies_knobs_and_stores_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    writer = NusterDB(path, DatabaseConfig(DIM, index_type="hnsw"))
    writer.add(1, [1.0] * DIM)
    given = DatabaseConfig(DIM, hnsw_config=HNSWConfig(ef_search=40))
    with NusterDB(path, given, read_only=True) as ro:
        assert ro.config.hnsw_config.ef_search == 40
        assert ro.search([1.0] * DIM, k=1) == [(1, 0.0)]
    writer.close()
    with NusterDB.open(path) as db:
        assert db.config.hnsw_config.ef_search is None


def test_a_combination_out_of_range_for_the_stored_m_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    hnsw = HNSWConfig(max_nb_connection=64, ef_construction=64)
    NusterDB(path, DatabaseConfig(DIM, index_type="hnsw", hnsw_config=hnsw)).close()
    with pytest.raises(InvalidArgumentError, match="ef_construction"):
        NusterDB(path, DatabaseConfig(DIM, hnsw_config=HNSWConfig(ef_construction=32)))
    with NusterDB.open(path) as db:
        assert db.config.hnsw_config.ef_construction == 64


def test_metadata_over_the_size_limits_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    with NusterDB(str(tmp_path / "db"), dim=2) as db:
        with pytest.raises(InvalidArgumentError, match="65537 bytes"):
            db.add(1, [1.0, 0.0], {"k" * (64 * 1024 + 1): 1})
        with pytest.raises(InvalidArgumentError, match=r"'big'|\"big\"") as info:
            db.add(2, [1.0, 0.0], {"big": "x" * (16 * 1024 * 1024 + 1)})
        assert str(16 * 1024 * 1024 + 1) in str(info.value)
        assert db.count() == 0
        db.add(3, [1.0, 0.0], {"k" * (64 * 1024): "x" * (16 * 1024 * 1024)})
    with NusterDB.open(str(tmp_path / "db")) as db:
        meta = db.get_metadata(3)
        assert meta is not None
        assert meta.get("k" * (64 * 1024)) == "x" * (16 * 1024 * 1024)


def test_memory_bytes_counts_the_storage_engine(tmp_path: Path) -> None:
    dim = 64
    with NusterDB(str(tmp_path / "db"), dim=dim) as db:
        before = db.stats().memory_bytes
        n = 2000
        db.bulk_add(np.arange(n, dtype=np.int64), np.ones((n, dim), dtype=np.float32))
        grown = db.stats().memory_bytes - before
        # The vectors are held by the index and, unflushed, by the engine's memtable.
        assert grown >= 2 * n * dim * 4, grown


def test_ef_search_none_passed_at_reopen_restores_the_automatic_width(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    created = DatabaseConfig(DIM, index_type="hnsw", hnsw_config=HNSWConfig(ef_search=64))
    NusterDB(path, created).close()
    with NusterDB(path, DatabaseConfig(DIM, hnsw_config=HNSWConfig())) as db:
        assert db.config.hnsw_config.ef_search == 64  # not passed: as stored
    with NusterDB(path, DatabaseConfig(DIM, hnsw_config=HNSWConfig(ef_search=None))) as db:
        assert db.config.hnsw_config.ef_search is None
    with NusterDB.open(path) as db:
        assert db.config.hnsw_config.ef_search is None


def test_the_config_of_a_new_database_states_every_field(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with NusterDB(path, dim=DIM) as db:
        in_force = db.config
    NusterDB(str(tmp_path / "other"), DatabaseConfig(DIM, index_type="hnsw")).close()
    # Passed on, it states everything: index_type "flat" included.
    with pytest.raises(ConfigMismatchError, match="index_type"):
        NusterDB(str(tmp_path / "other"), in_force)
