"""A short, fully typed use of NusterDB, checked by ``mypy --strict`` against the stubs.

Run: ``python examples/typed_usage.py``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt
from nusterdb import (
    DatabaseConfig,
    DistanceMetric,
    HNSWConfig,
    InvalidVectorError,
    Metadata,
    NusterDBError,
    Vector,
)

MetadataValue = Union[str, int, float, bool]


def embed(texts: List[str], dim: int) -> npt.NDArray[np.float32]:
    """A stand-in embedding model: a deterministic vector per text."""
    rows = [Vector.unit_random(dim, seed=sum(map(ord, t))).to_numpy() for t in texts]
    return np.stack(rows)


def nearest(
    query: Vector, corpus: List[Vector], metric: DistanceMetric, k: int
) -> List[Tuple[int, float]]:
    scored = [(i, metric.distance(query, v)) for i, v in enumerate(corpus)]
    scored.sort(key=lambda pair: pair[1])
    return scored[:k]


def describe(meta: Metadata) -> str:
    fields: Dict[str, MetadataValue] = meta.to_dict()
    tags: List[str] = meta.tags()
    return f"{fields} tags={tags} v{meta.version}"


def safe_vector(values: List[float]) -> Optional[Vector]:
    try:
        return Vector(values)
    except InvalidVectorError:
        return None


def main() -> int:
    config = DatabaseConfig(
        dim=32,
        index_type="hnsw",
        distance_metric=DistanceMetric.cosine(),
        hnsw_config=HNSWConfig(max_nb_connection=16, ef_search=64),
    )
    metric: DistanceMetric = config.distance_metric
    texts = ["red apple", "green apple", "blue sky", "night sky"]
    corpus = [Vector(row) for row in embed(texts, config.dim)]
    query = corpus[0] * 0.9 + corpus[1] * 0.1

    for i, d in nearest(query, corpus, metric, k=2):
        print(f"{texts[i]!r}: {metric.name} distance {d:.4f}")

    meta = Metadata.with_data({"source": "demo", "rank": 1, "score": 0.5}, ["fruit"])
    meta.set("checked", True)
    print(describe(meta))

    norm: float = query.norm()
    as_array: npt.NDArray[np.float32] = query.to_numpy()
    print(f"query norm {norm:.4f}, first component {float(as_array[0]):.4f}")

    assert safe_vector([1.0, float("nan")]) is None
    try:
        DatabaseConfig(dim=0)
    except NusterDBError as exc:
        print(f"rejected: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
