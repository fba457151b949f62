"""The codes an HNSW index walks its graph on: ``quantization="sq8" | "sq4" | "rabitq" |
"binary" | "none"``.

Fixed at creation and stored. Every choice returns exact distances (numpy on the stored
rows) and reaches recall@10 >= 0.95 against brute force, on rows far from the origin
too; the choice survives a seal and a reopen (answers bit for bit the same), a reopen
stating another one is refused, and codes asked for where nothing walks on them are
refused with a typed error.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from nusterdb import (
    ConfigMismatchError,
    DatabaseConfig,
    HNSWConfig,
    InvalidArgumentError,
    NusterDB,
)

N = 2000
CHOICES = ("none", "sq8", "sq4", "rabitq", "binary")


def brute_force(rows: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        d = np.sqrt(((rows.astype(np.float64) - q) ** 2).sum(axis=1))
    elif metric == "cosine":
        r = rows.astype(np.float64)
        d = 1.0 - (r @ q) / (np.linalg.norm(r, axis=1) * np.linalg.norm(q))
    else:  # inner product: the larger the closer
        d = -(rows.astype(np.float64) @ q)
    return np.argsort(d, kind="stable")[:10]


def answers(db: NusterDB, queries: np.ndarray, ef: int) -> List[List[Tuple[int, float]]]:
    return [[(int(i), float(d)) for i, d in db.search(q, k=10, ef_search=ef)] for q in queries]


@pytest.mark.parametrize("quantization", CHOICES)
@pytest.mark.parametrize(
    ("metric", "dim", "offset"),
    [
        ("euclidean", 100, 0.0),
        ("cosine", 96, 0.0),
        ("inner_product", 64, 10.0),
        ("euclidean", 64, 100.0),
        # Binary codes rotate 160 components into 192, rabitq's into 256.
        ("cosine", 160, 0.0),
    ],
)
def test_every_quantization_answers_exactly_and_finds_the_neighbours(
    tmp_path: Path, quantization: str, metric: str, dim: int, offset: float
) -> None:
    rng = np.random.default_rng(dim + int(offset))
    rows = (rng.standard_normal((N, dim)) + offset).astype(np.float32)
    queries = (rng.standard_normal((25, dim)) + offset).astype(np.float32)
    config = DatabaseConfig(
        dim,
        index_type="hnsw",
        distance_metric=metric,
        hnsw_config=HNSWConfig(max_nb_connection=16, ef_construction=100),
        quantization=quantization,
    )
    assert config.quantization == quantization
    path = tmp_path / "db"
    with NusterDB(str(path), config) as db:
        db.bulk_add(np.arange(N, dtype=np.int64), rows, progress=False)
        found = 0
        for q in queries:
            hits = db.search(q, k=10, ef_search=200)
            want = set(brute_force(rows, q, metric).tolist())
            found += len(want & {int(i) for i, _ in hits})
            for i, d in hits:
                assert d == db.metric.distance(q, rows[int(i)])
        assert found / (10 * len(queries)) >= 0.95
        before = answers(db, queries, 64)
        db.seal()
    with NusterDB.open(str(path)) as db:
        assert db.config.quantization == quantization
        assert db.load_source()["source"] == "segments"
        assert answers(db, queries, 64) == before


def test_sq4_maps_half_the_code_bytes_of_sq8(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((N, 128)).astype(np.float32)
    mapped = {}
    for q in ("sq8", "sq4"):
        path = tmp_path / q
        config = DatabaseConfig(128, index_type="hnsw", quantization=q)
        with NusterDB(str(path), config) as db:
            db.bulk_add(np.arange(N, dtype=np.int64), rows, progress=False)
            db.seal()
        with NusterDB.open(str(path)) as db:
            mapped[q] = db.stats().mapped_bytes
    # Rows are 512 bytes a vector either way; the codes 128 against 64.
    assert mapped["sq8"] - mapped["sq4"] >= N * 64
    assert mapped["sq4"] >= N * (512 + 64)


def test_the_choice_is_fixed_at_creation(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with NusterDB(str(path), DatabaseConfig(8, index_type="hnsw", quantization="sq4")) as db:
        db.add(1, np.ones(8, dtype=np.float32))
    with pytest.raises(ConfigMismatchError, match="quantization"):
        NusterDB(str(path), DatabaseConfig(8, quantization="sq8"))
    with NusterDB(str(path), DatabaseConfig(8, quantization="sq4")) as db:
        assert db.count() == 1
        assert db.config.quantization == "sq4"
    with NusterDB.open(str(path)) as db:
        assert db.config.quantization == "sq4"


def test_defaults_and_refusals() -> None:
    assert DatabaseConfig(8).quantization == "none"
    assert DatabaseConfig(8, index_type="hnsw").quantization == "sq4"
    assert DatabaseConfig(8, index_type="hnsw", distance_metric="manhattan").quantization == "none"
    assert 'quantization="sq4"' in repr(DatabaseConfig(8, index_type="hnsw", quantization="sq4"))
    with pytest.raises(InvalidArgumentError, match="quantization"):
        DatabaseConfig(8, index_type="hnsw", quantization="pq")
    # A flat index is exact: refused once the index type is known (at creation).
    flat_sq8 = DatabaseConfig(8, quantization="sq8")
    with pytest.raises(InvalidArgumentError, match="quantization"):
        NusterDB(None, flat_sq8)
    with pytest.raises(InvalidArgumentError, match="quantization"):
        DatabaseConfig(8, index_type="hnsw", distance_metric="hamming", quantization="sq4")
    with pytest.raises(InvalidArgumentError, match="disk"):
        DatabaseConfig(8, index_type="hnsw", quantization="none", vectors="disk")
    with pytest.raises(TypeError):
        DatabaseConfig(8, index_type="hnsw", quantization=4)  # type: ignore[arg-type]


@pytest.mark.parametrize("quantization", CHOICES)
def test_quantized_false_walks_on_the_rows_for_one_search(
    tmp_path: Path, quantization: str
) -> None:
    rng = np.random.default_rng(11)
    dim = 48
    rows = (rng.standard_normal((N, dim)) + 10.0).astype(np.float32)
    queries = (rng.standard_normal((20, dim)) + 10.0).astype(np.float32)
    config = DatabaseConfig(dim, index_type="hnsw", quantization=quantization)
    db = NusterDB(tmp_path / "db", config)
    db.bulk_add(np.arange(N), rows)
    found = 0
    for q in queries:
        hits = db.search(q, k=10, ef_search=64, quantized=False)
        ids = np.array([i for i, _ in hits])
        exact = np.sqrt(((rows[ids].astype(np.float64) - q) ** 2).sum(axis=1))
        np.testing.assert_allclose([d for _, d in hits], exact, rtol=1e-5, atol=1e-5)
        found += len(set(ids.tolist()) & set(brute_force(rows, q, "euclidean").tolist()))
    assert found / (10 * len(queries)) >= 0.95
    ids, dists = db.batch_search(queries, k=10, ef_search=64, quantized=False)
    singles = [db.search(q, k=10, ef_search=64, quantized=False) for q in queries]
    assert [list(r) for r in ids] == [[i for i, _ in hits] for hits in singles]
    assert [list(r) for r in dists] == [[np.float32(d) for _, d in hits] for hits in singles]
    if quantization == "none":
        # No codes: the rows are what every search walks on, and asking for codes is refused.
        assert db.search(queries[0], k=10, quantized=False) == db.search(queries[0], k=10)
        with pytest.raises(InvalidArgumentError, match="quantized=True"):
            db.search(queries[0], k=10, quantized=True)
        with pytest.raises(InvalidArgumentError, match="quantized=True"):
            db.batch_search(queries, k=10, quantized=True)
    else:
        assert len(db.search(queries[0], k=10, quantized=True)) == 10
    flat = NusterDB(tmp_path / "flat", DatabaseConfig(dim))
    flat.bulk_add(np.arange(N), rows)
    with pytest.raises(InvalidArgumentError, match="quantized=True"):
        flat.search(queries[0], k=10, quantized=True)
    assert flat.search(queries[0], k=10, quantized=False) == flat.search(queries[0], k=10)
