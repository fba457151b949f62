"""Shared helpers of the ``NusterDB`` tests: a numpy brute-force search reference for the
eight metrics, a checksum of a database's whole observable state, and an independent
pure-Python evaluator of the metadata filter language.

Everything here is written from the definitions in SPEC.md and the filter language doc
(``crates/nusterdb-core/src/filter/mod.rs``), not from the Rust code, so it can catch the
Rust side disagreeing with the contract.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
from nusterdb import NusterDB

__all__ = [
    "METRICS",
    "Checksum",
    "Hits",
    "assert_hits_match",
    "brute_force",
    "distances",
    "matches",
    "state_checksum",
    "tolerance",
]

#: Every metric name, in the order of ``DistanceMetric.names()``.
METRICS: Tuple[str, ...] = (
    "euclidean",
    "manhattan",
    "cosine",
    "angular",
    "chebyshev",
    "jaccard",
    "hamming",
    "inner_product",
)

Hits = List[Tuple[int, float]]
# (count, ids — ints or strs, a hex digest)
Checksum = Tuple[int, List[Any], str]
Scalar = Union[str, int, float, bool]
FloatArray = npt.NDArray[np.float64]


# ------------------------------------------------------------------ brute force


def distances(base: npt.ArrayLike, query: npt.ArrayLike, metric: str) -> FloatArray:
    """The distance from ``query`` to every row of ``base`` under ``metric``, in float64
    from the float32 values the database stores (SPEC §1 "DistanceMetric")."""
    b = np.asarray(base, dtype=np.float32).astype(np.float64)
    q = np.asarray(query, dtype=np.float32).astype(np.float64)
    if b.ndim != 2 or q.ndim != 1 or b.shape[1] != q.shape[0]:
        raise ValueError(f"shapes {b.shape} and {q.shape} do not fit")
    if metric == "euclidean":
        out: FloatArray = np.sqrt(((b - q) ** 2).sum(axis=1))
    elif metric == "manhattan":
        out = np.abs(b - q).sum(axis=1)
    elif metric == "chebyshev":
        out = np.abs(b - q).max(axis=1) if b.shape[0] else np.zeros(0)
    elif metric == "inner_product":
        out = -(b @ q)
    elif metric in ("cosine", "angular"):
        denom = np.sqrt((b * b).sum(axis=1) * float(q @ q))
        dots = b @ q
        cos = np.zeros(b.shape[0])
        nz = denom > 0.0
        cos[nz] = np.clip(dots[nz] / denom[nz], -1.0, 1.0)
        out = 1.0 - cos if metric == "cosine" else np.arccos(cos) / math.pi
    elif metric == "hamming":
        out = ((b > 0.0) != (q > 0.0)).sum(axis=1).astype(np.float64)
    elif metric == "jaccard":
        if (b < 0.0).any() or (q < 0.0).any():
            raise ValueError("jaccard is defined on non-negative vectors only")
        num = np.minimum(b, q).sum(axis=1)
        den = np.maximum(b, q).sum(axis=1)
        out = np.zeros(b.shape[0])
        nz = den > 0.0
        out[nz] = 1.0 - num[nz] / den[nz]
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return out


def brute_force(
    base: npt.ArrayLike,
    ids: Union[Sequence[int], npt.NDArray[np.integer[Any]]],
    query: npt.ArrayLike,
    k: int,
    metric: str,
) -> Tuple[List[int], List[float]]:
    """The ``k`` nearest rows of ``base`` to ``query``: their ids and distances, sorted by
    (distance, id)."""
    ids_list = [int(i) for i in ids]
    d = distances(base, query, metric)
    if len(ids_list) != d.shape[0]:
        raise ValueError(f"{len(ids_list)} ids for {d.shape[0]} rows")
    order = sorted(range(len(ids_list)), key=lambda r: (float(d[r]), ids_list[r]))[: max(k, 0)]
    return [ids_list[r] for r in order], [float(d[r]) for r in order]


def tolerance(metric: str, dim: int, scale: float = 1.0) -> float:
    """Absolute tolerance between the database's float32 distances and the float64
    reference. ``scale`` is the magnitude of the distances involved.

    Angular distance near 0 is arccos of a cosine close to 1, where a float32 rounding
    error e in cos becomes ~sqrt(2e)/pi in the distance: about 1e-3 at dim 128.
    """
    if metric == "hamming":
        return 0.0  # counts are exact
    eps = 1.2e-7 * (dim + 4)
    if metric == "angular":
        return 2.0 * math.sqrt(2.0 * eps) / math.pi + 1e-5
    return 8.0 * eps * max(scale, 1.0) + 1e-6


def assert_hits_match(
    got: Hits,
    base: npt.ArrayLike,
    ids: Union[Sequence[int], npt.NDArray[np.integer[Any]]],
    query: npt.ArrayLike,
    k: int,
    metric: str,
    context: str = "",
    tie_key: Optional[Callable[[int], Any]] = None,
) -> None:
    """Asserts ``got`` (a ``search`` result) is exactly the ``k`` nearest of the rows
    ``(ids, base)`` to ``query``, up to float32 rounding:

    * ``min(k, rows)`` results, distinct ids, all among ``ids``;
    * each reported distance equals the reference distance of that id;
    * the reported distances equal the reference's k smallest, position by position;
    * every row strictly nearer than the k-th reference distance (beyond rounding) is
      present, so only genuine ties at the boundary may be resolved either way;
    * sorted by distance, ties by ascending id — ``tie_key(id)`` where the database's
      ids are not the ints given here (a string-id database orders ties by its strings).
    """
    base_arr = np.asarray(base, dtype=np.float32)
    ids_list = [int(i) for i in ids]
    d = distances(base_arr, query, metric) if ids_list else np.zeros(0)
    by_id: Dict[int, float] = {i: float(x) for i, x in zip(ids_list, d)}
    ref_ids, ref_d = brute_force(base_arr, ids_list, query, k, metric) if ids_list else ([], [])
    where = f"{context} metric={metric} k={k} rows={len(ids_list)}"
    assert len(got) == min(k, len(ids_list)), f"{where}: {len(got)} results, want {len(ref_ids)}"
    got_ids = [i for i, _ in got]
    got_d = [x for _, x in got]
    assert len(set(got_ids)) == len(got_ids), f"{where}: repeated ids in {got_ids}"
    for i, x in got:
        assert i in by_id, f"{where}: id {i} is not an eligible row"
        assert isinstance(x, float), f"{where}: distance {x!r} is not a float"
    scale = max([abs(x) for x in ref_d] + [1.0])
    if metric == "inner_product" and base_arr.size:
        # A dot product's rounding error is relative to sum |a_i b_i|, not to |a . b|.
        q64 = np.abs(np.asarray(query, dtype=np.float32).astype(np.float64))
        scale = max(scale, float((np.abs(base_arr.astype(np.float64)) @ q64).max()))
    tol = tolerance(metric, base_arr.shape[1] if base_arr.ndim == 2 else 1, scale)
    for i, x in got:
        assert abs(x - by_id[i]) <= tol, (
            f"{where}: id {i} reported at distance {x}, reference {by_id[i]} (tol {tol})"
        )
    for pos, (x, r) in enumerate(zip(got_d, ref_d)):
        assert abs(x - r) <= tol, f"{where}: rank {pos}: distance {x}, reference {r}"
    if ref_d:
        kth = ref_d[-1]
        must = {i for i, x in by_id.items() if x < kth - tol}
        missing = must - set(got_ids)
        assert not missing, f"{where}: nearer rows {sorted(missing)[:10]} missing from {got}"
    for a, b in zip(got, got[1:]):
        assert a[1] <= b[1], f"{where}: not sorted by distance: {a} before {b}"
        if a[1] == b[1]:
            key = tie_key or (lambda i: i)
            assert key(a[0]) < key(b[0]), (
                f"{where}: equal distances not ordered by id: {a} before {b}"
            )


# ------------------------------------------------------------------- state checksum


def _value_repr(v: object) -> str:
    # The type is part of the value: 3, 3.0 and True must not collide.
    if isinstance(v, float):
        return f"float:{v.hex()}"
    return f"{type(v).__name__}:{v!r}"


def state_checksum(db: NusterDB) -> Checksum:
    """(count, list_ids, a hash of every vector's bytes, every metadata's fields, tags
    and bookkeeping, and every document) — equal before and after any rejected call.

    Ints and str ids alike; the records are read in one ``get_many``. A record without a
    document adds nothing to the hash, so a database without documents hashes as it
    did before documents existed."""
    ids = db.list_ids()
    got = db.get_many(ids)
    assert got["ids"] == ids, f"get_many of the listed ids found {got['ids']!r}, not {ids!r}"
    vectors = got["vectors"]
    h = hashlib.sha256()
    for row, (i, m, doc) in enumerate(zip(ids, got["metadatas"], got["documents"])):
        assert m is not None, f"listed id {i!r} has no metadata"
        # repr: an int shows as before, a str id with its quotes and escapes.
        h.update(f"id:{i!r};".encode())
        h.update(np.asarray(vectors[row]).astype("<f4").tobytes())
        fields = sorted(m.to_dict().items())
        h.update(repr([(k, _value_repr(x)) for k, x in fields]).encode())
        h.update(repr(sorted(m.tags())).encode())
        h.update(f"v{m.version};c{m.created_at};u{m.updated_at};".encode())
        if doc is not None:
            data = doc.encode("utf-8")
            h.update(f"doc:{len(data)}:".encode() + data)
    return (db.count(), ids, h.hexdigest())


# ---------------------------------------------------------------- filter reference

_MISSING = object()


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "num"
    if isinstance(v, str):
        return "str"
    raise TypeError(f"not a metadata scalar: {v!r}")


def _cmp(stored: Scalar, query: Scalar) -> Optional[int]:
    """-1/0/1 ordering of a stored value against a comparison value, None when they
    are not comparable (different type classes, or NaN)."""
    ks, kq = _kind(stored), _kind(query)
    if ks != kq:
        return None
    if ks == "num":
        # Filters compare int and float exactly, as Python does (2**53 + 1 > 2.0**53).
        if any(isinstance(v, float) and math.isnan(v) for v in (stored, query)):
            return None
        return (stored > query) - (stored < query)  # type: ignore[operator]
    if ks == "str":
        assert isinstance(stored, str)
        assert isinstance(query, str)
        sa, sb = stored.encode("utf-8"), query.encode("utf-8")
        return (sa > sb) - (sa < sb)
    return (bool(stored) > bool(query)) - (bool(stored) < bool(query))


def _field_op(op: str, operand: Any, stored: object) -> bool:
    present = stored is not _MISSING
    if op == "$exists":
        return present == bool(operand)
    if op in ("$in", "$nin"):
        found = present and any(_cmp(stored, v) == 0 for v in operand)  # type: ignore[arg-type]
        return found if op == "$in" else not found
    c = _cmp(stored, operand) if present else None  # type: ignore[arg-type]
    if op == "$eq":
        return c == 0
    if op == "$ne":
        return c != 0
    if op == "$gt":
        return c == 1
    if op == "$gte":
        return c in (0, 1)
    if op == "$lt":
        return c == -1
    if op == "$lte":
        return c in (0, -1)
    raise ValueError(f"unknown field operator {op}")


def matches(filter: Mapping[str, Any], fields: Mapping[str, Scalar], tags: Sequence[str]) -> bool:
    """Whether metadata with ``fields`` and ``tags`` satisfies ``filter`` (a well-formed
    filter in the language of ``src/filter/mod.rs``)."""
    tag_set = set(tags)
    for key, value in filter.items():
        if key == "$and":
            ok = all(matches(f, fields, tags) for f in value)
        elif key == "$or":
            ok = any(matches(f, fields, tags) for f in value)
        elif key == "$not":
            ok = not matches(value, fields, tags)
        elif key == "$tags":
            ok = True
            for op, wanted in value.items():
                if op == "$all":
                    ok = ok and all(t in tag_set for t in wanted)
                elif op == "$any":
                    ok = ok and any(t in tag_set for t in wanted)
                else:
                    raise ValueError(f"unknown $tags operator {op}")
        else:
            stored: object = fields.get(key, _MISSING)
            if isinstance(value, dict):
                ok = all(_field_op(op, operand, stored) for op, operand in value.items())
            else:
                ok = _field_op("$eq", value, stored)
        if not ok:
            return False
    return True


class DbCache:
    """One database per (dim, metric), made by ``make(path, dim, metric)`` and reused
    across a property test's examples (creating a database on disk costs ~60 ms); every
    example leaves its database empty again."""

    def __init__(self, make: Callable[[Path, int, str], NusterDB], prefix: str) -> None:
        self._make = make
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self._dbs: Dict[Tuple[int, str], NusterDB] = {}

    def get(self, dim: int, metric: str) -> NusterDB:
        key = (dim, metric)
        if key not in self._dbs:
            self._dbs[key] = self._make(Path(self._dir.name) / f"{metric}-{dim}", dim, metric)
        return self._dbs[key]

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dir.cleanup()
