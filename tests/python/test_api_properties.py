"""The methods-vs-properties rule: facts fixed when the database was opened are
properties (readable after close); the old methods stay as aliases with equal values
(and keep raising ClosedError after close, as every method does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nusterdb import (
    ClosedError,
    DatabaseConfig,
    DistanceMetric,
    HNSWConfig,
    NusterDB,
    Vector,
)

CASES = [
    ("int", "flat", "cosine", 7),
    ("str", "hnsw", "euclidean", 12),
    ("str", "flat", "inner_product", 3),
    ("int", "hnsw", "manhattan", 5),
]


@pytest.mark.parametrize(("ids", "index", "metric", "dim"), CASES)
def test_properties_equal_the_old_methods_and_the_config(
    tmp_path: Path, ids: str, index: str, metric: str, dim: int
) -> None:
    cfg = DatabaseConfig(dim, index_type=index, distance_metric=metric, id_type=ids)
    path = str(tmp_path / "db")
    db = NusterDB(path, cfg)
    db.add("a" if ids == "str" else 1, [1.0] * dim)
    assert db.dim == db.dimension() == cfg.dim == dim
    assert db.metric == db.distance_metric() == cfg.distance_metric == cfg.metric
    assert db.metric == DistanceMetric.from_name(metric)
    assert db.metric.name == metric
    assert db.index == db.index_type() == cfg.index_type == index
    assert db.is_hnsw() == (db.index == "hnsw")
    assert db.is_flat() == (db.index == "flat")
    assert db.id_type == db.config.id_type == ids
    stats = db.stats()
    assert stats.dim == stats.dimension == dim
    assert stats.metric == db.metric
    assert stats.distance_metric == metric
    assert stats.index_type == index
    assert type(db.dim) is int
    assert type(db.index) is str
    assert type(db.id_type) is str
    # Fixed facts answer after close; the methods raise, as every method does.
    db.close()
    assert (db.dim, db.metric, db.index, db.id_type) == (dim, cfg.metric, index, ids)
    assert db.closed
    assert db.path == path
    assert db.read_only is False
    for old in (db.dimension, db.index_type, db.is_hnsw, db.is_flat, db.distance_metric):
        with pytest.raises(ClosedError):
            old()
    # Reopened: the properties come from the stored config.
    with NusterDB.open(path) as again:
        assert (again.dim, again.metric, again.index, again.id_type) == (
            dim,
            cfg.metric,
            index,
            ids,
        )


def test_properties_are_read_only() -> None:
    db = NusterDB(None, dim=4)
    for name in ("dim", "metric", "index", "id_type", "path", "config", "closed", "read_only"):
        with pytest.raises(AttributeError):
            setattr(db, name, None)


def test_vector_and_config_aliases() -> None:
    v = Vector([1.0, 2.0, 3.0])
    assert v.dimension == v.dim() == len(v) == 3
    cfg = DatabaseConfig(4, distance_metric="angular", hnsw_config=HNSWConfig(ef_search=30))
    assert cfg.metric == cfg.distance_metric == DistanceMetric.angular()
    assert cfg.hnsw_config.ef_search == 30
