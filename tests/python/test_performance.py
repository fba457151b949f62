"""pytest-benchmark timings of the current API (no assertions on time).

Skipped by default; run with ``pytest tests/python/test_performance.py --benchmark-only``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Protocol, TypeVar, Union

import numpy as np
import numpy.typing as npt
import pytest
from nusterdb import DistanceMetric, Metadata, Vector

T = TypeVar("T")
DIM = 384


class Benchmark(Protocol):
    """The part of pytest-benchmark's ``benchmark`` fixture used here."""

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


@pytest.mark.benchmark(group="vector-construction")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bench_vector_from_numpy(benchmark: Benchmark, seed: int, dtype: type) -> None:
    data: npt.NDArray[Any] = np.random.default_rng(seed).standard_normal(DIM).astype(dtype)
    v = benchmark(Vector, data)
    assert v.dimension == DIM


@pytest.mark.benchmark(group="vector-construction")
def test_bench_vector_from_list(benchmark: Benchmark, seed: int) -> None:
    data = np.random.default_rng(seed).standard_normal(DIM).tolist()
    v = benchmark(Vector, data)
    assert v.dimension == DIM


@pytest.mark.benchmark(group="vector-construction")
def test_bench_vector_to_numpy(benchmark: Benchmark, seed: int) -> None:
    v = Vector.random(DIM, seed=seed)
    arr = benchmark(v.to_numpy)
    assert arr.shape == (DIM,)


@pytest.mark.benchmark(group="distance-384")
@pytest.mark.parametrize("name", DistanceMetric.names())
def test_bench_distance_between_vectors(benchmark: Benchmark, seed: int, name: str) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(DIM), rng.standard_normal(DIM)
    if name == "jaccard":
        a, b = np.abs(a), np.abs(b)
    va, vb = Vector(a), Vector(b)
    metric = DistanceMetric.from_name(name)
    d = benchmark(metric.distance, va, vb)
    assert isinstance(d, float)


@pytest.mark.benchmark(group="distance-384-numpy-input")
@pytest.mark.parametrize("name", ["euclidean", "cosine", "inner_product"])
def test_bench_distance_from_numpy_arrays(benchmark: Benchmark, seed: int, name: str) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(DIM).astype(np.float32)
    b = rng.standard_normal(DIM).astype(np.float32)
    metric = DistanceMetric.from_name(name)
    d = benchmark(metric.distance, a, b)
    assert isinstance(d, float)


@pytest.mark.benchmark(group="distance-384-numpy-reference")
def test_bench_numpy_euclidean_reference(benchmark: Benchmark, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(DIM).astype(np.float32)
    b = rng.standard_normal(DIM).astype(np.float32)
    d = benchmark(lambda: float(np.linalg.norm(a - b)))
    assert d > 0


@pytest.mark.benchmark(group="metadata")
def test_bench_metadata_set(benchmark: Benchmark) -> None:
    m = Metadata()

    def set_fields() -> None:
        m.set("title", "a document")
        m.set("year", 2024)
        m.set("score", 0.5)
        m.set("public", True)

    benchmark(set_fields)
    assert len(m) == 4


@pytest.mark.benchmark(group="metadata")
def test_bench_metadata_get(benchmark: Benchmark) -> None:
    m = Metadata.with_data({f"k{i}": i for i in range(32)})
    v = benchmark(m.get, "k17")
    assert v == 17


@pytest.mark.benchmark(group="metadata")
def test_bench_metadata_with_data(benchmark: Benchmark) -> None:
    data: Dict[str, Union[str, int, float, bool]] = {
        f"k{i}": (i if i % 2 else str(i)) for i in range(32)
    }
    m = benchmark(Metadata.with_data, data, ["a", "b"])
    assert len(m) == 32
