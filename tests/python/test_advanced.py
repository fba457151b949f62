"""Comprehensive feature test: one readable end-to-end scenario per feature of the current
API (vectors, metrics, metadata, configuration, errors, SIMD).

Run with pytest, or directly: ``python tests/python/test_advanced.py``.
"""

from __future__ import annotations

import math
import pickle
from typing import Callable, Dict, List, Tuple

import numpy as np
import numpy.typing as npt
import nusterdb
import pytest
from nusterdb import (
    DatabaseConfig,
    DimensionMismatchError,
    DistanceMetric,
    HNSWConfig,
    InvalidArgumentError,
    InvalidVectorError,
    Metadata,
    NusterDBError,
    StorageConfiguration,
    Vector,
)


def test_scenario_embeddings_from_numpy_round_trip(rng: np.random.Generator) -> None:
    """A batch of float64 embeddings becomes Vectors, survives pickling, and comes back to
    numpy as the float32 values it holds."""
    batch = rng.standard_normal((10, 384))
    vectors = [Vector(row) for row in batch]
    assert all(v.dimension == 384 for v in vectors)

    restored = pickle.loads(pickle.dumps(vectors))
    assert restored == vectors

    matrix = np.stack([np.asarray(v) for v in restored])
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, batch.astype(np.float32))


def test_scenario_brute_force_nearest_neighbours_by_hand(rng: np.random.Generator) -> None:
    """Nearest neighbours of a query under each metric, via DistanceMetric.distance, agree
    with numpy's brute force."""
    corpus = rng.standard_normal((200, 32)).astype(np.float32)
    query = rng.standard_normal(32).astype(np.float32)
    c64, q64 = corpus.astype(np.float64), query.astype(np.float64)

    expected: Dict[str, npt.NDArray[np.float64]] = {
        "euclidean": np.linalg.norm(c64 - q64, axis=1),
        "manhattan": np.abs(c64 - q64).sum(axis=1),
        "chebyshev": np.abs(c64 - q64).max(axis=1),
        "inner_product": -(c64 @ q64),
        "cosine": 1 - (c64 @ q64) / (np.linalg.norm(c64, axis=1) * np.linalg.norm(q64)),
    }
    for name, want in expected.items():
        metric = DistanceMetric.from_name(name)
        got = np.array([metric.distance(query, row) for row in corpus])
        top_got = list(np.argsort(got, kind="stable")[:5])
        top_want = list(np.argsort(want, kind="stable")[:5])
        assert top_got == top_want, name


def test_scenario_normalised_vectors_make_cosine_and_inner_product_agree(seed: int) -> None:
    """After normalisation, cosine distance = 1 + inner_product distance (= 1 - a·b)."""
    a = Vector.random(128, seed=seed).normalize()
    b = Vector.random(128, seed=seed + 1)
    b.normalize_mut()
    assert a.is_normalized(1e-5)
    assert b.is_normalized(1e-5)
    cos = DistanceMetric.cosine().distance(a, b)
    ip = DistanceMetric.inner_product().distance(a, b)
    assert cos == pytest.approx(1.0 + ip, abs=1e-5)
    # Euclidean on unit vectors: ‖a-b‖² = 2·cosine distance.
    assert a.euclidean_distance(b) ** 2 == pytest.approx(2 * cos, abs=1e-5)


def test_scenario_vector_arithmetic_builds_a_centroid(rng: np.random.Generator) -> None:
    """The mean of some vectors, computed with + and /, matches numpy."""
    data = rng.standard_normal((8, 16)).astype(np.float32)
    total = Vector(data[0])
    for row in data[1:]:
        total = total + Vector(row)
    centroid = total / len(data)
    np.testing.assert_allclose(centroid.to_numpy(), data.mean(axis=0), rtol=1e-5, atol=1e-6)
    # The centroid is closer to every point, on average, than the origin-shifted copy.
    shifted = centroid + 10.0
    assert sum(centroid.euclidean_distance(r) for r in data) < sum(
        shifted.euclidean_distance(r) for r in data
    )


def test_scenario_sparse_binary_features_under_jaccard_and_hamming() -> None:
    """Bag-of-features vectors compared with jaccard and hamming."""
    doc_a = Vector([1, 1, 0, 0, 1, 0])
    doc_b = Vector([1, 0, 0, 1, 1, 0])
    doc_c = Vector([0, 0, 1, 0, 0, 1])
    assert doc_a.jaccard_similarity(doc_b) == pytest.approx(2 / 4)
    assert doc_a.jaccard_similarity(doc_c) == 0.0
    assert doc_a.hamming_distance(doc_b) == 2.0
    assert DistanceMetric.hamming().similarity(doc_a, doc_b) == pytest.approx(1 - 2 / 6)


def test_scenario_zero_vectors_are_defined_everywhere() -> None:
    """A zero embedding (e.g. an empty document) never produces NaN."""
    zero = Vector.zeros(8)
    other = Vector.ones(8)
    for name in DistanceMetric.names():
        d = DistanceMetric.from_name(name).distance(zero, other)
        assert not math.isnan(d), name
    assert zero.cosine_distance(other) == 1.0
    assert zero.angular_distance(other) == 0.5
    with pytest.raises(InvalidArgumentError):
        zero.normalize()


def test_scenario_document_metadata_lifecycle() -> None:
    """A document's metadata is created, edited, tagged and exported, with the version
    tracking every change."""
    meta = Metadata.with_data({"title": "Vectors", "year": 2024, "score": 4.5, "public": True})
    assert meta.version == 1
    meta.set("year", 2025)
    meta.add_tag("draft")
    meta.add_tag("ml")
    meta.remove_tag("draft")
    assert meta.remove("score") == 4.5
    assert meta.version == 6
    assert meta.to_dict() == {"public": True, "title": "Vectors", "year": 2025}
    assert meta.tags() == ["ml"]
    assert "title" in meta
    assert meta.get("score", "n/a") == "n/a"

    clone = Metadata.with_data(meta.to_dict(), meta.tags())
    assert clone == meta
    assert clone.version == 1

    before = (meta.version, meta.items())
    with pytest.raises(InvalidArgumentError):
        meta.set("$where", "x")
    with pytest.raises(TypeError):
        meta.set("authors", ["a", "b"])  # type: ignore[arg-type]
    assert (meta.version, meta.items()) == before


def test_scenario_configuring_a_database() -> None:
    """Configs for a small exact index and a tuned HNSW index, as a user would write them."""
    small = DatabaseConfig.simple(64)
    assert (small.dim, small.index_type, small.distance_metric.name) == (64, "flat", "euclidean")

    tuned = DatabaseConfig(
        dim=768,
        index_type="hnsw",
        distance_metric="cosine",
        hnsw_config=HNSWConfig(max_nb_connection=32, ef_construction=400, ef_search=128),
        storage_config=StorageConfiguration(compression="zstd", sync_writes=True),
    )
    assert tuned.hnsw_config.max_nb_connection == 32
    assert tuned.storage_config.compression == "zstd"
    assert tuned.distance_metric == DistanceMetric.cosine()

    legacy = DatabaseConfig(dim=64, index_type="super_optimized_flat")
    assert legacy == small

    with pytest.raises(InvalidArgumentError, match="max_nb_connection"):
        HNSWConfig(max_nb_connection=1)


def test_scenario_one_handler_for_every_nusterdb_error() -> None:
    """An application catches NusterDBError once and sees every kind of bad input."""
    attempts: List[Tuple[str, type]] = []
    calls: List[Tuple[str, Callable[[], object]]] = [
        ("nan", lambda: Vector([math.nan])),
        ("dims", lambda: Vector([1.0]).euclidean_distance([1.0, 2.0])),
        ("metric", lambda: DistanceMetric.from_name("euclidian")),
        ("key", lambda: Metadata().set("", 1)),
        ("config", lambda: DatabaseConfig(70_000)),
    ]
    for label, call in calls:
        try:
            call()
        except NusterDBError as exc:
            attempts.append((label, type(exc)))
    assert attempts == [
        ("nan", InvalidVectorError),
        ("dims", DimensionMismatchError),
        ("metric", InvalidArgumentError),
        ("key", InvalidArgumentError),
        ("config", InvalidArgumentError),
    ]


def test_scenario_library_information() -> None:
    """Version, SIMD instruction set and defaults are inspectable."""
    assert nusterdb.__version__
    assert nusterdb.simd_isa() in ("avx512", "avx2+fma", "neon", "scalar")
    assert (
        nusterdb.DEFAULT_HNSW_M,
        nusterdb.DEFAULT_HNSW_EF_CONSTRUCTION,
        nusterdb.DEFAULT_CACHE_SIZE_MB,
    ) == (16, 200, 256)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
