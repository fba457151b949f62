"""NusterDB by example: the building blocks of the API, with readable output.

Run: ``python examples/examples_advanced.py`` (exits 0).

This tour covers vectors, distance metrics, metadata, configuration, errors and the SIMD
kernels. The database itself (``NusterDB``: storing, searching, filtering, string ids
and documents) is shown in README.md, ``examples/langchain_quickstart.py`` and
``examples/llama_index_quickstart.py``.
"""

from __future__ import annotations

import math
import pickle
from typing import Callable, List, Tuple

import numpy as np
import nusterdb
from nusterdb import (
    DatabaseConfig,
    DistanceMetric,
    HNSWConfig,
    Metadata,
    NusterDBError,
    StorageConfiguration,
    Vector,
)


def section(title: str) -> None:
    print()
    print(f"== {title} " + "=" * max(0, 70 - len(title)))


def show(label: str, value: object) -> None:
    print(f"  {label:<46} {value}")


def example_library_info() -> None:
    section("Library")
    show("nusterdb.__version__", nusterdb.__version__)
    show("nusterdb.simd_isa()", nusterdb.simd_isa())
    show("DEFAULT_HNSW_M", nusterdb.DEFAULT_HNSW_M)
    show("DEFAULT_HNSW_EF_CONSTRUCTION", nusterdb.DEFAULT_HNSW_EF_CONSTRUCTION)
    show("DEFAULT_CACHE_SIZE_MB", nusterdb.DEFAULT_CACHE_SIZE_MB)


def example_creating_vectors() -> None:
    section("Creating vectors")
    show("Vector([1, 2, 3])", Vector([1, 2, 3]))
    show("Vector((0.5, -0.5))", Vector((0.5, -0.5)))
    show("Vector(np.arange(4, dtype=np.float64))", Vector(np.arange(4, dtype=np.float64)))
    strided = np.arange(10, dtype=np.float32)[::3]
    show("Vector(array[::3])  (non-contiguous)", Vector(strided))
    show("Vector.zeros(3)", Vector.zeros(3))
    show("Vector.ones(3)", Vector.ones(3))
    r = Vector.random(4, min=0.0, max=10.0, seed=42)
    show("Vector.random(4, 0, 10, seed=42)", r)
    show("  same seed, same vector", r == Vector.random(4, min=0.0, max=10.0, seed=42))
    u = Vector.unit_random(3, seed=7)
    show("Vector.unit_random(3, seed=7)", u)
    show("  its norm", round(u.norm(), 6))
    show("a long vector's repr is short", Vector.ones(1000))


def example_vector_protocols() -> None:
    section("Vectors as Python and numpy objects")
    v = Vector([3.0, -1.0, 2.0, 5.0])
    show("v", v)
    show("v.dimension, v.dim(), len(v)", (v.dimension, v.dim(), len(v)))
    show("v.data", v.data)
    show("v[0], v[-1]", (v[0], v[-1]))
    show("list(v)", list(v))
    show("sum(v)", sum(v))
    show("np.asarray(v)", repr(np.asarray(v)))
    show("np.asarray(v, dtype=np.float64).dtype", np.asarray(v, dtype=np.float64).dtype)
    show("v.to_numpy().dtype", v.to_numpy().dtype)
    show("pickle round trip equal", pickle.loads(pickle.dumps(v)) == v)
    try:
        hash(v)
    except TypeError as exc:
        show("hash(v)", f"TypeError: {exc}")


def example_vector_maths() -> None:
    section("Vector maths")
    a = Vector([3.0, 4.0])
    b = Vector([1.0, 2.0])
    show("a, b", (a.data, b.data))
    show("a.dot(b)", a.dot(b))
    show("a.norm(), a.norm_squared()", (a.norm(), a.norm_squared()))
    show("a.l1_norm(), a.linf_norm()", (a.l1_norm(), a.linf_norm()))
    show("a.normalize()", a.normalize())
    c = Vector([0.0, 2.0])
    c.normalize_mut()
    show("c.normalize_mut() -> c", c)
    show("a.is_normalized(), c.is_normalized()", (a.is_normalized(), c.is_normalized()))
    show("a.is_finite()", a.is_finite())
    show("a + b", a + b)
    show("a - b", a - b)
    show("a * b  (element-wise)", a * b)
    show("a / b", a / b)
    show("a * 2, 2 * a", ((a * 2).data, (2 * a).data))
    show("10 - a, 1 / b", ((10 - a).data, (1 / b).data))
    show("-a", -a)


def example_distances() -> None:
    section("Distances between two vectors")
    a = Vector([1.0, 0.0, 2.0, 0.5])
    b = Vector([0.5, 1.0, 2.0, 0.0])
    show("a, b", (a.data, b.data))
    methods: List[Tuple[str, Callable[[Vector], float]]] = [
        ("euclidean_distance", a.euclidean_distance),
        ("manhattan_distance", a.manhattan_distance),
        ("chebyshev_distance", a.chebyshev_distance),
        ("cosine_distance", a.cosine_distance),
        ("cosine_similarity", a.cosine_similarity),
        ("angular_distance", a.angular_distance),
        ("hamming_distance", a.hamming_distance),
        ("jaccard_distance", a.jaccard_distance),
        ("jaccard_similarity", a.jaccard_similarity),
    ]
    for name, method in methods:
        show(f"a.{name}(b)", round(method(b), 6))
    show("numpy arrays work as the other side", round(a.euclidean_distance(np.array(b)), 6))


def example_metrics() -> None:
    section("DistanceMetric: one object per metric")
    a = [1.0, 0.0, 2.0, 0.5]
    b = [0.5, 1.0, 2.0, 0.0]
    print(f"  {'metric':<15} {'distance':>10} {'similarity':>11}")
    for name in DistanceMetric.names():
        m = DistanceMetric.from_name(name)
        print(f"  {m.name:<15} {m.distance(a, b):>10.5f} {m.similarity(a, b):>11.5f}")
    show("from_name('L2').name", DistanceMetric.from_name("L2").name)
    show(
        "from_name('dot') == inner_product()",
        DistanceMetric.from_name("dot") == DistanceMetric.inner_product(),
    )
    show("metrics are hashable", len({DistanceMetric.cosine(), DistanceMetric.from_name("COSINE")}))
    zero = Vector.zeros(4)
    show("cosine distance of a zero vector", DistanceMetric.cosine().distance(zero, b))
    show("angular distance of a zero vector", DistanceMetric.angular().distance(zero, b))
    show("jaccard of two zero vectors", DistanceMetric.jaccard().distance(zero, zero))


def example_nearest_neighbours() -> None:
    section("Brute-force nearest neighbours with a metric")
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((1000, 64)).astype(np.float32)
    query = corpus[123] + 0.01 * rng.standard_normal(64).astype(np.float32)
    metric = DistanceMetric.cosine()
    distances = [metric.distance(query, row) for row in corpus]
    best = sorted(range(len(corpus)), key=distances.__getitem__)[:3]
    for rank, i in enumerate(best, 1):
        show(f"#{rank}: row {i}", f"cosine distance {distances[i]:.6f}")


def example_metadata() -> None:
    section("Metadata")
    m = Metadata.with_data(
        {"title": "NusterDB", "stars": 42, "rating": 4.5, "public": True}, ["db"]
    )
    show("Metadata.with_data(...)", m)
    show("types kept", {k: type(v).__name__ for k, v in m.items()})
    m.set("stars", 43)
    m.add_tag("rust")
    show("after set + add_tag, version", m.version)
    show("m.get('stars'), m['title']", (m.get("stars"), m["title"]))
    show("m.get('missing', 'default')", m.get("missing", "default"))
    show("keys (sorted)", m.keys())
    show("'title' in m, m.contains_key('x')", ("title" in m, m.contains_key("x")))
    show("m.remove('rating')", m.remove("rating"))
    show("m.remove('rating') again", m.remove("rating"))
    show("len(m), m.len(), m.is_empty()", (len(m), m.len(), m.is_empty()))
    show("add_tag('db') (already there)", m.add_tag("db"))
    show("remove_tag('db')", m.remove_tag("db"))
    show("has_tag('rust'), tags()", (m.has_tag("rust"), m.tags()))
    show("to_dict()", m.to_dict())
    show("with_data(to_dict(), tags()) == m", Metadata.with_data(m.to_dict(), m.tags()) == m)
    show("Metadata.with_tags(['b', 'a']).tags()", Metadata.with_tags(["b", "a"]).tags())
    show("created_at, updated_at", (m.created_at, m.updated_at))
    show("age_seconds()", m.age_seconds())
    # Values taken straight out of numpy arrays (numpy scalars) keep their kind.
    counts, ratios, flags = np.array([7, 8]), np.array([0.25], np.float32), np.array([True])
    n = Metadata()
    n.set("count", counts[0])
    n.set("ratio", ratios[0])
    n.set("flag", flags[0])
    show("numpy scalars become", n.items())


def example_configuration() -> None:
    section("Configuration")
    show("HNSWConfig()", HNSWConfig())
    show("StorageConfiguration()", StorageConfiguration())
    show("DatabaseConfig(128)", DatabaseConfig(128))
    show(
        "DatabaseConfig.simple(128, use_hnsw=True).index_type",
        DatabaseConfig.simple(128, use_hnsw=True).index_type,
    )
    show(
        "DatabaseConfig.ultra_fast_flat(128).index_type",
        DatabaseConfig.ultra_fast_flat(128).index_type,
    )
    tuned = DatabaseConfig(
        dim=768,
        index_type="hnsw",
        distance_metric="cosine",
        hnsw_config=HNSWConfig(max_nb_connection=32, ef_construction=400, ef_search=100),
        storage_config=StorageConfiguration(
            compression="ZSTD", cache_size_mb=1024, sync_writes=True
        ),
        auto_snapshot=True,
        snapshot_interval_secs=600,
    )
    show("tuned", tuned)
    show("tuned.hnsw_config", tuned.hnsw_config)
    show("tuned.storage_config.compression", tuned.storage_config.compression)
    try:
        tuned.dim = 5  # type: ignore[misc]
    except AttributeError as exc:
        show("configs are immutable", f"AttributeError: {exc}")


def example_errors() -> None:
    section("Errors: typed, and all catchable as NusterDBError")
    attempts: List[Tuple[str, Callable[[], object]]] = [
        ("Vector([1.0, nan])", lambda: Vector([1.0, math.nan])),
        ("Vector([])", lambda: Vector([])),
        ("Vector([1e39])", lambda: Vector([1e39])),
        ("Vector([1, 2]).dot([1, 2, 3])", lambda: Vector([1, 2]).dot([1, 2, 3])),
        ("Vector.zeros(3).normalize()", lambda: Vector.zeros(3).normalize()),
        ("DistanceMetric.from_name('euclid')", lambda: DistanceMetric.from_name("euclid")),
        ("jaccard on negative input", lambda: DistanceMetric.jaccard().distance([-1], [1])),
        ("Metadata().set('$gt', 1)", lambda: Metadata().set("$gt", 1)),
        ("Metadata().set('x', nan)", lambda: Metadata().set("x", math.nan)),
        ("HNSWConfig(max_nb_connection=1)", lambda: HNSWConfig(max_nb_connection=1)),
        (
            "StorageConfiguration(compression='gzip')",
            lambda: StorageConfiguration(compression="gzip"),
        ),
        ("DatabaseConfig(dim=0)", lambda: DatabaseConfig(0)),
    ]
    for label, call in attempts:
        try:
            call()
        except NusterDBError as exc:
            print(f"  {label:<42} {type(exc).__name__}: {exc}")
    others: List[Tuple[str, Callable[[], object]]] = [
        ("Vector([1, 2]) / 0", lambda: Vector([1, 2]) / 0),
        ("Vector('abc')", lambda: Vector("abc")),  # type: ignore[arg-type]
        ("Metadata().set('x', 2**64)", lambda: Metadata().set("x", 2**64)),
        ("Metadata().set('x', [1])", lambda: Metadata().set("x", [1])),  # type: ignore[arg-type]
    ]
    for label, call in others:
        try:
            call()
        except (ZeroDivisionError, TypeError, OverflowError) as exc:
            print(f"  {label:<42} {type(exc).__name__}: {exc}")


def main() -> int:
    example_library_info()
    example_creating_vectors()
    example_vector_protocols()
    example_vector_maths()
    example_distances()
    example_metrics()
    example_nearest_neighbours()
    example_metadata()
    example_configuration()
    example_errors()
    print()
    print("All examples ran.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
