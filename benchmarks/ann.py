#!/usr/bin/env python3
"""Approximate nearest-neighbour (HNSW) benchmark: NusterDB vs hnswlib, faiss-cpu, usearch,
and (opt-in) glass, SymphonyQG, RaBitQ-HNSW, ScaNN and faiss IVF-PQ fast-scan.

Datasets (``benchmarks/datasets.py``, cached under ~/.cache/nusterdb/datasets/):
``synthetic`` = 100,000 x 128 clustered float32 rows + 1,000 queries, euclidean;
``real`` = about 56,000 x 384 all-MiniLM-L6-v2 sentence embeddings of Debian-packaged
prose + 1,000 held-out sentences, cosine. Ground truth is the exact top-10 by float64
brute force.

The default libraries each build an HNSW graph with M = 16 (2·M links on layer 0) and
ef_construction = 200 from the same float32 rows, keyed 0..n-1:
NusterDB ``DatabaseConfig(dim, index_type="hnsw", hnsw_config=HNSWConfig(
max_nb_connection=16, ef_construction=200, max_nb_elements=n))`` in memory, built by one
``bulk_add`` (``nusterdb``: its default codes; ``nusterdb-sq8`` / ``nusterdb-sq4`` /
``nusterdb-rabitq`` / ``nusterdb-binary``: with ``quantization="sq8"`` / ``"sq4"`` /
``"rabitq"`` / ``"binary"``;
``nusterdb-rows``: the default database, every search with ``quantized=False``);
hnswlib ``Index(space="l2"|"cosine")``, ``init_index(M=16, ef_construction=200)``,
``add_items``; faiss ``IndexHNSWFlat(d, 16, METRIC_L2 |
METRIC_INNER_PRODUCT)`` with ``efConstruction = 200`` (inner product on the unit-length
rows for cosine); usearch ``Index(metric="l2sq"|"cos", dtype="f32", connectivity=16,
expansion_add=200)``.

Stronger peers, run only when named in ``--libs`` (each skipped with a note when its
package is not installed, dropped with a note when its worker fails). For cosine every one
of them gets unit-length rows and queries (normalised by the engine, the single queries
before the timed loop) and scores by inner product; n = rows, d = dimension:

* ``glass`` (PyPI ``pyglass-portable``, zilliztech's glass): ``glass.Index("HNSW",
  metric="L2"|"IP", quant="SQ8U", R=32, L=200)`` (the graph built on 8-bit codes, 32
  links a node on the base layer = 2·M, L = ef_construction), ``graph = index.build(X)``,
  ``glass.Searcher(graph, X, metric, "SQ4U", "FP32")`` (the walk on 4-bit codes, the
  candidates re-scored on the float32 rows), ``optimize(threads)`` (its prefetch tuning,
  counted in the build); ``set_ef(ef)``, ``search(q, k)``, ``batch_search(Q, k,
  num_threads)``; ``glass.set_num_threads(threads)``. Sweep over ef.
* ``symphonyqg`` (PyPI ``rabitqlib``, ``SymqgIndex``): ``SymqgIndex(dim=d, max_degree=32,
  metric="l2"|"ip", quantization_bits=0)`` (each node holds its float32 row, the 1-bit
  RaBitQ codes of its 32 neighbours, their factors and ids), ``build(X,
  ef_construction=200, num_threads=threads, init="pipnn")``; ``search(q[None], k, ef,
  num_threads=1)``, ``search_batch(Q, k, ef, num_threads)``. Sweep over ef.
* ``rabitq-hnsw`` (PyPI ``rabitqlib``, ``HnswIndex``): 16 clusters by
  ``RaBitQKMeans(d, 16, num_threads=threads, seed=seed, final_assignment=Exact)``, then
  ``HnswIndex(dim=d, max_elements=n, M=16, ef_construction=200, nbits=7,
  metric="l2"|"ip", random_seed=seed)``, ``build(X, centroids, assignments,
  num_threads)``: 1-bit codes plus 6 extra bits a component (7 bits in total), no float
  rows kept (the distances it returns are estimates); ``search(Q, k, ef, num_threads)``.
  Sweep over ef.
* ``scann`` (PyPI ``scann``): ``scann_ops_pybind.builder(X, 10, "squared_l2" |
  "dot_product").tree(num_leaves=isqrt(n), num_leaves_to_search=16,
  training_sample_size=n, spherical=<cosine>, quantize_centroids=True).score_ah(2,
  anisotropic_quantization_threshold=0.2).reorder(100).set_n_training_threads(threads)
  .build()`` (237 leaves on the real dataset); ``search(q, 10,
  pre_reorder_num_neighbors=50, leaves_to_search=L)``, ``search_batched`` (1 thread) or
  ``set_num_threads`` and ``search_batched_parallel``. Sweep over leaves_to_search L;
  pre_reorder_num_neighbors 50 throughout: in trials on the real dataset (1 thread) 50
  kept the recall of 100 within 0.001 at every L and was about as fast, 30 lost up to
  0.006.
* ``faiss-ivfpq-fs``: ``faiss.index_factory(d, f"IVF{isqrt(n)},PQ{d // 2}x4fs,RFlat",
  METRIC_L2 | METRIC_INNER_PRODUCT)`` (an ``IndexRefineFlat`` around
  ``IndexIVFPQFastScan``: d/2 sub-quantizers of 4 bits scanned 32 codes at a time, the
  k · k_factor best re-scored exactly on the float32 rows), ``cp.seed = seed``, ``train``
  and ``add`` on all rows; ``k_factor`` 4 for cosine, 20 for euclidean (the choices of
  benchmarks/ivf.py's trials on the real and the synthetic dataset); searched as faiss
  above. Sweep over nprobe.

The sweeps: ef over ``EF_SWEEP`` for the graph indexes; leaves_to_search and nprobe over
``PARTITION_SWEEP`` up to the number of leaves / lists.

Each library runs in a fresh subprocess (its memory is its own, its thread pools are set
by the environment before it starts), one after the other:

* phase 1 (1 thread: ``RAYON_NUM_THREADS=1``, ``OMP_NUM_THREADS=1``, per-call thread
  arguments of 1): build, RSS increase over the build (/proc/self/status VmRSS after the
  build minus before; VmHWM for the peak), then for each ef_search of the sweep: recall@10
  and single-query QPS (a Python loop calling the library once per query; one untimed pass
  whose answers give the recall, then the median of 3 timed passes) and batch QPS (all
  queries in one call, 1 thread, median of 3 after one warm-up call);
* phase 2 (``--threads`` threads, default all cores): a new build with that many threads
  (its build time; NusterDB's rayon pool is fixed when the process starts, hence a fresh
  build for every library alike) and batch QPS with that many threads over the same sweep;
* cross-check (1 thread): all libraries built in one more process, then at each recall
  target the single-query loops of all of them (each at its first ef reaching the target
  in phase 1) alternated over ``--interleaved-rounds`` (default 7) rounds in rotating
  order. On a shared machine the load drifts between the phase-1 subprocesses; here it
  hits every library alike, so these ratios are the more trustworthy single-query ones.
  Every library of ``--libs`` that reached the target in phase 1 takes part.
* filtered search (NusterDB and hnswlib, 1 thread): an integer field ``bucket`` uniform in
  [0, 1000) on every row, filter ``bucket < s`` for selectivities 0.1 %, 1 %, 10 %, 50 %,
  100 %: NusterDB ``search(q, filter={"bucket": {"$lt": s}}, ef_search=ef)``, hnswlib
  ``knn_query(q, k, filter=allowed.__getitem__)`` (a Python callable per candidate, the
  only filter hnswlib's Python API has) and a post-filter baseline (hnswlib unfiltered with
  k' = min(ceil(k / selectivity), 1000) and ef = max(ef, k'), then the first k allowed).
  Recall is against brute force over the allowed rows. Each method sweeps ef upwards and
  stops at the first ef whose recall@10 reaches 0.95 (or the end of the sweep), where its
  single-query QPS is timed (median of 3 passes; a pass of 20 s or more is used alone).

recall@10 counts a returned id as a hit when its exact (float64) distance to the query
is within the 10th true distance (+1e-5 relative), so exact ties and duplicate rows do not
count against a library (the ann-benchmarks definition); the plain id-overlap recall is in
the JSON too. "QPS at recall r" is the QPS at the smallest ef (or nprobe, leaves) of the
sweep whose recall reaches r (no interpolation). Ratios are NusterDB / peer (> 1: NusterDB faster).

Usage (peers in their own venv, see benchmarks/requirements.txt):
    .venv-bench/bin/python benchmarks/ann.py --quick                         # smoke run
    .venv-bench/bin/python benchmarks/ann.py --dataset both --out /tmp/ann.json
    .venv-bench/bin/python benchmarks/ann.py --dataset real --threads 1 --filtered '' \\
        --libs nusterdb,hnswlib,glass,symphonyqg,rabitq-hnsw,scann,faiss-ivfpq-fs
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets
from common import (
    F32,
    I64,
    end_run,
    fmt_bytes,
    fmt_rate,
    load_average,
    median,
    package_version,
    print_table,
    section,
    start_run,
)

K = 10
M = 16
EF_CONSTRUCTION = 200
EF_SWEEP = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
TARGETS = (0.90, 0.95, 0.99)
FILTER_TARGET = 0.95
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5, 1.0)
BUCKETS = 1000
POSTFILTER_CAP = 1000
# NusterDB with its default codes, then pinned to 8-bit, 4-bit, 1-bit RaBitQ and binary
# codes (quantization="sq8" / "sq4" / "rabitq" / "binary"; the default is sq4 since
# 2026-12-06), then the default walking on the full rows (quantized=False), then the peers.
OURS = (
    "nusterdb",
    "nusterdb-sq8",
    "nusterdb-sq4",
    "nusterdb-rabitq",
    "nusterdb-binary",
    "nusterdb-rows",
)
PEERS = ("hnswlib", "faiss", "usearch")
#: Opt-in peers (named in --libs): quantised graphs, and partitions with fast-scan codes.
STRONG_PEERS = ("glass", "symphonyqg", "rabitq-hnsw", "scann", "faiss-ivfpq-fs")
ALL_PEERS = PEERS + STRONG_PEERS
LIBRARIES = OURS + ALL_PEERS
DEFAULT_LIBS = OURS + PEERS
#: nprobe (faiss IVF) and leaves_to_search (ScaNN), up to the number of lists / leaves.
PARTITION_SWEEP = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: IndexRefineFlat's k_factor around faiss's IVF-PQ fast-scan index, by metric (the
#: choices of benchmarks/ivf.py's trials on the real and the synthetic dataset).
IVFPQ_K_FACTOR = {"cosine": 4, "euclidean": 20}
#: ScaNN's pre_reorder_num_neighbors at every leaves_to_search of the sweep.
SCANN_PRE_REORDER = 50
#: The id rabitqlib returns in a slot it could not fill (2**32 - 1).
RABITQ_NO_ID = 2**32 - 1
#: faiss's phase 2 once more with OMP_WAIT_POLICY=PASSIVE.
FAISS_PASSIVE = "faiss-passive"
RESULT_PREFIX = "RESULT "
#: Pause between workers, so the previous one's threads and memory are gone.
SETTLE_SECONDS = 1.0
THREAD_VARS = ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Sizes:
    synthetic_rows: int
    real_rows: Optional[int]  # None: all of the real dataset's rows
    queries: int
    repeats: int


FULL = Sizes(synthetic_rows=100_000, real_rows=None, queries=1_000, repeats=3)
QUICK = Sizes(synthetic_rows=20_000, real_rows=20_000, queries=200, repeats=3)


def log(msg: str) -> None:
    """Progress, to stderr (the tables go to stdout)."""
    print(f"[ann.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(result: Dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ------------------------------------------------------------------------- measuring


def proc_status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in KiB."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def exact_distances(base: F32, queries: F32, ids: I64, metric: str) -> np.ndarray:
    """float64 distances (squared L2, or 1 - dot for unit rows) of ``ids`` (n, k) to their
    queries; inf where an id is -1 (no answer)."""
    valid = ids >= 0
    rows = base[np.where(valid, ids, 0)].astype(np.float64)  # (n, k, d)
    q = queries.astype(np.float64)[:, None, :]
    if metric == "euclidean":
        diff = rows - q
        d = np.einsum("nkd,nkd->nk", diff, diff)
    else:
        d = 1.0 - np.einsum("nkd,nkd->nk", rows, q)
    return np.where(valid, d, np.inf)


def recalls(
    found: I64, truth_ids: I64, truth_dists: np.ndarray, base: F32, queries: F32, metric: str
) -> Tuple[float, float]:
    """(distance-based recall@k, id-overlap recall@k) of ``found`` (n, k).

    Distance-based: a returned id counts when its exact distance is within the k-th true
    distance (+1e-5 relative); ids must be distinct per row (every library returns
    distinct ids). A query whose allowed set has fewer than k rows is scored over them.
    """
    k = truth_ids.shape[1]
    found = found[:, :k]
    n_true = np.maximum((truth_ids >= 0).sum(axis=1), 1)
    kth = truth_dists[np.arange(len(truth_dists)), n_true - 1]
    thresh = kth + 1e-5 * np.maximum(np.abs(kth), 1e-3)
    d = exact_distances(base, queries, found, metric)
    hits = np.minimum((d <= thresh[:, None]).sum(axis=1), n_true)
    by_dist = float((hits / n_true).mean())
    overlap = np.array(
        [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) for f, t in zip(found, truth_ids)]
    )
    return by_dist, float((overlap / n_true).mean())


def pad_ids(rows: Sequence[Sequence[int]], k: int) -> I64:
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        r = list(r)[:k]
        out[i, : len(r)] = r
    return out


def time_loop(fn: Callable[[Any], Any], items: Sequence[Any]) -> float:
    """Seconds of one Python loop calling ``fn`` on every item."""
    perf = time.perf_counter
    start = perf()
    for x in items:
        fn(x)
    return perf() - start


# ------------------------------------------------------------------------- libraries


def unit_rows(x: F32, metric: str) -> F32:
    """``x`` as C-contiguous float32; for cosine, each row scaled to unit length (a zero
    row stays zero), for the peers that score cosine as inner product."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if metric == "euclidean":
        return x
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: F32 = np.ascontiguousarray(x / np.where(norms > 0, norms, 1), dtype=np.float32)
    return out


def import_optional(module: str) -> Any:
    """``module`` imported by name (the optional peers, which have no type stubs)."""
    return importlib.import_module(module)


class Engine:
    """One library's index behind the few calls the benchmark makes."""

    name = ""
    #: (import name, PyPI name) of the peer's package; None: NusterDB, always there.
    requires: Optional[Tuple[str, str]] = None
    #: What ``set_ef`` sets, for the tables.
    knob = "ef_search"

    def sweep(self, n: int, metric: str) -> Tuple[int, ...]:
        """The values of :attr:`knob` the sweep visits, cheapest first."""
        return EF_SWEEP

    def params(self) -> str:
        """The index's parameters, for the report (empty: as the module docstring says for
        the HNSW libraries)."""
        return ""

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        raise NotImplementedError

    def set_ef(self, ef: int) -> None:
        raise NotImplementedError

    def one_query_fn(self) -> Callable[[Any], Any]:
        """A function of one query (as :meth:`query_rows` gives it) returning the raw
        answer; it is what the single-query loop times."""
        raise NotImplementedError

    def query_rows(self, queries: F32) -> List[Any]:
        return [queries[i] for i in range(queries.shape[0])]

    def ids_of(self, raw: Any) -> List[int]:
        raise NotImplementedError

    def batch(self, queries: F32, threads: int) -> I64:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


class NusterEngine(Engine):
    name = "nusterdb"
    # None: the database's default codes.
    quantization: Optional[str] = None
    # The searches' ``quantized=`` (None: the walk the database chose).
    walk: Optional[bool] = None

    def __init__(self) -> None:
        import nusterdb

        self.mod = nusterdb
        self.ef = 64
        self.db: Any = None

    def version(self) -> str:
        return f"{self.mod.__version__} ({self.mod.simd_isa()})"

    def build(
        self,
        base: F32,
        metric: str,
        threads: int,
        seed: int,
        metadata: Optional[List[Dict[str, int]]] = None,
    ) -> None:
        # threads: rayon's pool, fixed by RAYON_NUM_THREADS when the process started.
        n, dim = base.shape
        nd = self.mod
        cfg = nd.DatabaseConfig(
            dim,
            index_type="hnsw",
            distance_metric=metric,
            hnsw_config=nd.HNSWConfig(
                max_nb_connection=M, ef_construction=EF_CONSTRUCTION, max_nb_elements=n
            ),
            quantization=self.quantization,
        )
        self.db = nd.NusterDB(None, cfg)
        self.db.bulk_add(np.arange(n, dtype=np.int64), base, metadata)

    def set_ef(self, ef: int) -> None:
        self.ef = ef

    def one_query_fn(self, flt: Optional[Dict[str, Any]] = None) -> Callable[[Any], Any]:
        search, ef, walk = self.db.search, self.ef, self.walk
        if flt is None:
            return lambda q: search(q, k=K, ef_search=ef, quantized=walk)
        return lambda q: search(q, k=K, filter=flt, ef_search=ef, quantized=walk)

    def ids_of(self, raw: Any) -> List[int]:
        return [i for i, _ in raw]

    def batch(self, queries: F32, threads: int) -> I64:
        ids: I64 = self.db.batch_search(queries, k=K, ef_search=self.ef, quantized=self.walk)[0]
        return ids


class HnswlibEngine(Engine):
    name = "hnswlib"
    requires = ("hnswlib", "hnswlib")

    def __init__(self) -> None:
        import hnswlib

        self.mod = hnswlib
        self.index: Any = None

    def version(self) -> str:
        return package_version("hnswlib", "hnswlib")

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        n, dim = base.shape
        space = "l2" if metric == "euclidean" else "cosine"
        self.index = self.mod.Index(space=space, dim=dim)
        self.index.init_index(
            max_elements=n, ef_construction=EF_CONSTRUCTION, M=M, random_seed=seed
        )
        self.index.add_items(base, np.arange(n), num_threads=threads)

    def load(self, path: Path, metric: str, dim: int, n: int) -> None:
        space = "l2" if metric == "euclidean" else "cosine"
        self.index = self.mod.Index(space=space, dim=dim)
        self.index.load_index(str(path), max_elements=n)

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(ef)

    def one_query_fn(
        self, k: int = K, flt: Optional[Callable[[int], bool]] = None
    ) -> Callable[..., Any]:
        knn = self.index.knn_query
        if flt is None:
            return lambda q: knn(q, k=k, num_threads=1)

        def one(q: Any) -> Any:
            try:
                return knn(q, k=k, num_threads=1, filter=flt)
            except RuntimeError:  # fewer than k allowed rows found at this ef
                return None

        return one

    def ids_of(self, raw: Any) -> List[int]:
        return [] if raw is None else [int(x) for x in raw[0][0]]

    def batch(self, queries: F32, threads: int) -> I64:
        return np.asarray(self.index.knn_query(queries, k=K, num_threads=threads)[0], np.int64)


class FaissEngine(Engine):
    name = "faiss"
    requires = ("faiss", "faiss-cpu")

    def __init__(self) -> None:
        import faiss

        self.mod = faiss
        self.index: Any = None

    def version(self) -> str:
        return package_version("faiss-cpu", "faiss")

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        faiss = self.mod
        faiss.omp_set_num_threads(threads)
        kind = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        self.index = faiss.IndexHNSWFlat(base.shape[1], M, kind)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(base)

    def set_ef(self, ef: int) -> None:
        self.index.hnsw.efSearch = ef

    def query_rows(self, queries: F32) -> List[Any]:
        return [queries[i : i + 1] for i in range(queries.shape[0])]

    def one_query_fn(self) -> Callable[[Any], Any]:
        self.mod.omp_set_num_threads(1)
        search = self.index.search
        return lambda q: search(q, K)

    def ids_of(self, raw: Any) -> List[int]:
        return [int(x) for x in raw[1][0]]

    def batch(self, queries: F32, threads: int) -> I64:
        self.mod.omp_set_num_threads(threads)
        return np.asarray(self.index.search(queries, K)[1], dtype=np.int64)


class UsearchEngine(Engine):
    name = "usearch"
    requires = ("usearch", "usearch")

    def __init__(self) -> None:
        from usearch.index import Index

        self.cls = Index
        self.index: Any = None

    def version(self) -> str:
        return package_version("usearch", "usearch")

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        self.index = self.cls(
            ndim=base.shape[1],
            metric="l2sq" if metric == "euclidean" else "cos",
            dtype="f32",
            connectivity=M,
            expansion_add=EF_CONSTRUCTION,
            expansion_search=64,
        )
        self.index.add(np.arange(base.shape[0], dtype=np.uint64), base, threads=threads)

    def set_ef(self, ef: int) -> None:
        self.index.expansion_search = ef

    def one_query_fn(self) -> Callable[[Any], Any]:
        search = self.index.search
        return lambda q: search(q, K, threads=1)

    def ids_of(self, raw: Any) -> List[int]:
        return [int(x) for x in raw.keys]

    def batch(self, queries: F32, threads: int) -> I64:
        keys = self.index.search(queries, K, threads=threads).keys
        return np.asarray(keys, dtype=np.int64)


class GlassEngine(Engine):
    """zilliztech's glass: an HNSW graph walked on 4-bit codes (SQ4U), the candidates
    re-scored on the float32 rows (refine FP32)."""

    name = "glass"
    requires = ("glass", "pyglass-portable")
    R = 2 * M  # links a node on the base layer
    BUILD_QUANT = "SQ8U"
    SEARCH_QUANT = "SQ4U"
    REFINE_QUANT = "FP32"

    def __init__(self) -> None:
        self.mod = import_optional("glass")
        self.searcher: Any = None
        self.metric = "cosine"

    def version(self) -> str:
        return package_version("pyglass-portable", "glass")

    def params(self) -> str:
        return (
            f'Index("HNSW", quant="{self.BUILD_QUANT}", R={self.R}, L={EF_CONSTRUCTION}), '
            f'Searcher(quantizer="{self.SEARCH_QUANT}", refine_quant="{self.REFINE_QUANT}")'
            ", optimize()"
        )

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        glass = self.mod
        glass.set_num_threads(threads)
        self.metric = metric
        kind = "L2" if metric == "euclidean" else "IP"
        rows = unit_rows(base, metric)
        index = glass.Index(
            "HNSW", metric=kind, quant=self.BUILD_QUANT, R=self.R, L=EF_CONSTRUCTION
        )
        graph = index.build(rows)
        self.searcher = glass.Searcher(graph, rows, kind, self.SEARCH_QUANT, self.REFINE_QUANT)
        self.searcher.optimize(threads)

    def set_ef(self, ef: int) -> None:
        self.searcher.set_ef(ef)

    def query_rows(self, queries: F32) -> List[Any]:
        q = unit_rows(queries, self.metric)
        return [q[i] for i in range(q.shape[0])]

    def one_query_fn(self) -> Callable[[Any], Any]:
        search = self.searcher.search
        return lambda q: search(q, K)

    def ids_of(self, raw: Any) -> List[int]:
        return [int(x) for x in raw[0] if x >= 0]

    def batch(self, queries: F32, threads: int) -> I64:
        q = unit_rows(queries, self.metric)
        ids = self.searcher.batch_search(q, K, num_threads=threads)[0]
        return np.asarray(ids, dtype=np.int64).reshape(-1, K)


class RabitqEngine(Engine):
    """The indexes of rabitqlib (RaBitQ-Library): searched a (1, d) array at a time."""

    requires = ("rabitqlib", "rabitqlib")

    def __init__(self) -> None:
        self.mod = import_optional("rabitqlib")
        self.index: Any = None
        self.ef = 64
        self.metric = "cosine"

    def version(self) -> str:
        return package_version("rabitqlib", "rabitqlib")

    def set_ef(self, ef: int) -> None:
        self.ef = ef

    def query_rows(self, queries: F32) -> List[Any]:
        q = unit_rows(queries, self.metric)
        return [q[i : i + 1] for i in range(q.shape[0])]

    def one_query_fn(self) -> Callable[[Any], Any]:
        search, ef = self.index.search, self.ef
        return lambda q: search(q, K, ef, 1)

    def ids_of(self, raw: Any) -> List[int]:
        return [int(x) for x in raw[0][0] if x != RABITQ_NO_ID]

    def batch(self, queries: F32, threads: int) -> I64:
        ids = np.asarray(self.search_all(unit_rows(queries, self.metric), threads)[0])
        return np.where(ids == RABITQ_NO_ID, -1, ids.astype(np.int64))

    def search_all(self, queries: F32, threads: int) -> Any:
        return self.index.search(queries, K, self.ef, threads)


class SymphonyqgEngine(RabitqEngine):
    """SymphonyQG (rabitqlib ``SymqgIndex``): each node holds its float32 row and the 1-bit
    RaBitQ codes of its 32 neighbours, estimated all at once by FastScan."""

    name = "symphonyqg"
    DEGREE = 2 * M

    def params(self) -> str:
        return (
            f"SymqgIndex(max_degree={self.DEGREE}, quantization_bits=0), "
            f'build(ef_construction={EF_CONSTRUCTION}, init="pipnn")'
        )

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        self.metric = metric
        rows = unit_rows(base, metric)
        self.index = self.mod.SymqgIndex(
            dim=rows.shape[1],
            max_degree=self.DEGREE,
            metric="l2" if metric == "euclidean" else "ip",
            quantization_bits=0,
        )
        self.index.build(rows, ef_construction=EF_CONSTRUCTION, num_threads=threads, init="pipnn")

    def search_all(self, queries: F32, threads: int) -> Any:
        return self.index.search_batch(queries, K, self.ef, threads)


class RabitqHnswEngine(RabitqEngine):
    """RaBitQ-HNSW (rabitqlib ``HnswIndex``): an HNSW graph over 7-bit RaBitQ codes (1 bit
    plus 6 extra bits a component), no float rows kept."""

    name = "rabitq-hnsw"
    NBITS = 7
    CLUSTERS = 16

    def params(self) -> str:
        return (
            f"RaBitQKMeans(k={self.CLUSTERS}, Exact), HnswIndex(M={M}, "
            f"ef_construction={EF_CONSTRUCTION}, nbits={self.NBITS})"
        )

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        rq = self.mod
        self.metric = metric
        rows = unit_rows(base, metric)
        n, dim = rows.shape
        kmeans = rq.RaBitQKMeans(
            dim,
            self.CLUSTERS,
            num_threads=threads,
            seed=seed % (2**31),
            final_assignment=rq.FinalAssignmentMode.Exact,
        )
        kmeans.train(rows)
        self.index = rq.HnswIndex(
            dim=dim,
            max_elements=n,
            M=M,
            ef_construction=EF_CONSTRUCTION,
            nbits=self.NBITS,
            metric="l2" if metric == "euclidean" else "ip",
            random_seed=seed % (2**31),
        )
        self.index.build(rows, kmeans.centroids, kmeans.assignments, num_threads=threads)


class ScannEngine(Engine):
    """Google's ScaNN: a k-means tree, anisotropic 4-bit codes (2 dimensions a code, 16
    centres) scored by LUT16, the best ``pre_reorder_num_neighbors`` re-scored on the
    float32 rows. ``set_ef`` sets leaves_to_search."""

    name = "scann"
    requires = ("scann", "scann")
    knob = "leaves_to_search"

    def __init__(self) -> None:
        self.mod = import_optional("scann")
        self.searcher: Any = None
        self.leaves = 16
        self.num_leaves = 0
        self.metric = "cosine"

    def version(self) -> str:
        return package_version("scann", "scann")

    def sweep(self, n: int, metric: str) -> Tuple[int, ...]:
        return tuple(x for x in PARTITION_SWEEP if x <= max(math.isqrt(n), 1))

    def params(self) -> str:
        return (
            f"tree(num_leaves={self.num_leaves}, training_sample_size=n, "
            f"spherical={self.metric != 'euclidean'}, quantize_centroids=True), "
            "score_ah(2, anisotropic_quantization_threshold=0.2), reorder(100), "
            f"pre_reorder_num_neighbors={SCANN_PRE_REORDER}"
        )

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        self.metric = metric
        rows = unit_rows(base, metric)
        n = rows.shape[0]
        self.num_leaves = max(math.isqrt(n), 1)
        cosine = metric != "euclidean"
        builder = self.mod.scann_ops_pybind.builder(
            rows, K, "dot_product" if cosine else "squared_l2"
        )
        self.searcher = (
            builder.tree(
                num_leaves=self.num_leaves,
                num_leaves_to_search=self.leaves,
                training_sample_size=n,
                spherical=cosine,
                quantize_centroids=True,
            )
            .score_ah(2, anisotropic_quantization_threshold=0.2)
            .reorder(100)
            .set_n_training_threads(threads)
            .build()
        )
        self.searcher.set_num_threads(threads)

    def set_ef(self, ef: int) -> None:
        self.leaves = ef

    def query_rows(self, queries: F32) -> List[Any]:
        q = unit_rows(queries, self.metric)
        return [q[i] for i in range(q.shape[0])]

    def one_query_fn(self) -> Callable[[Any], Any]:
        search, leaves = self.searcher.search, self.leaves
        return lambda q: search(q, K, SCANN_PRE_REORDER, leaves)

    def ids_of(self, raw: Any) -> List[int]:
        return [int(x) for x in raw[0]]

    def batch(self, queries: F32, threads: int) -> I64:
        q = unit_rows(queries, self.metric)
        args = (K, SCANN_PRE_REORDER, self.leaves)
        if threads == 1:
            ids = self.searcher.search_batched(q, *args)[0]
        else:
            self.searcher.set_num_threads(threads)
            ids = self.searcher.search_batched_parallel(q, *args)[0]
        return np.asarray(ids, dtype=np.int64).reshape(-1, K)


class FaissIvfPqFsEngine(FaissEngine):
    """faiss ``IVF{isqrt(n)},PQ{d/2}x4fs,RFlat``: IVF lists of 4-bit PQ codes scanned 32 at
    a time, the k · k_factor best re-scored exactly. ``set_ef`` sets nprobe."""

    name = "faiss-ivfpq-fs"
    knob = "nprobe"

    def __init__(self) -> None:
        super().__init__()
        self.ivf: Any = None
        self.factory = ""
        self.k_factor = 0
        self.metric = "cosine"

    def sweep(self, n: int, metric: str) -> Tuple[int, ...]:
        return tuple(x for x in PARTITION_SWEEP if x <= max(math.isqrt(n), 1))

    def params(self) -> str:
        return f'index_factory("{self.factory}"), k_factor {self.k_factor}'

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        faiss = self.mod
        faiss.omp_set_num_threads(threads)
        self.metric = metric
        rows = unit_rows(base, metric)
        n, d = rows.shape
        if d % 2:
            raise ValueError(f"{self.name} needs an even dimension, not {d}")
        self.factory = f"IVF{max(math.isqrt(n), 1)},PQ{d // 2}x4fs,RFlat"
        kind = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        self.index = faiss.index_factory(d, self.factory, kind)
        self.k_factor = IVFPQ_K_FACTOR[metric]
        self.index.k_factor = self.k_factor
        self.ivf = faiss.extract_index_ivf(self.index)
        self.ivf.cp.seed = seed % (2**31)
        self.index.train(rows)
        self.index.add(rows)

    def set_ef(self, ef: int) -> None:
        self.ivf.nprobe = ef

    def query_rows(self, queries: F32) -> List[Any]:
        q = unit_rows(queries, self.metric)
        return [q[i : i + 1] for i in range(q.shape[0])]

    def batch(self, queries: F32, threads: int) -> I64:
        return super().batch(unit_rows(queries, self.metric), threads)


class NusterSq8Engine(NusterEngine):
    name = "nusterdb-sq8"
    quantization = "sq8"


class NusterSq4Engine(NusterEngine):
    name = "nusterdb-sq4"
    quantization = "sq4"


class NusterRabitqEngine(NusterEngine):
    name = "nusterdb-rabitq"
    quantization = "rabitq"


class NusterBinaryEngine(NusterEngine):
    name = "nusterdb-binary"
    quantization = "binary"


class NusterRowsEngine(NusterEngine):
    """The default database, every search walking on the full rows (``quantized=False``)."""

    name = "nusterdb-rows"
    walk = False


ENGINES: Dict[str, Type[Engine]] = {
    "nusterdb": NusterEngine,
    "nusterdb-sq8": NusterSq8Engine,
    "nusterdb-sq4": NusterSq4Engine,
    "nusterdb-rabitq": NusterRabitqEngine,
    "nusterdb-binary": NusterBinaryEngine,
    "nusterdb-rows": NusterRowsEngine,
    "hnswlib": HnswlibEngine,
    "faiss": FaissEngine,
    "usearch": UsearchEngine,
    "glass": GlassEngine,
    "symphonyqg": SymphonyqgEngine,
    "rabitq-hnsw": RabitqHnswEngine,
    "scann": ScannEngine,
    "faiss-ivfpq-fs": FaissIvfPqFsEngine,
}


# --------------------------------------------------------------------------- workers


@dataclass
class WorkerData:
    base: F32
    queries: F32
    truth_ids: I64
    truth_dists: np.ndarray
    metric: str


def load_worker_data(directory: Path) -> WorkerData:
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return WorkerData(
        np.load(directory / "base.npy"),
        np.load(directory / "queries.npy"),
        np.load(directory / "truth_ids.npy"),
        np.load(directory / "truth_dists.npy"),
        meta["metric"],
    )


def measured_build(engine: Engine, data: WorkerData, threads: int, seed: int) -> Dict[str, Any]:
    gc.collect()
    rss0, hwm0 = proc_status_kib("VmRSS"), proc_status_kib("VmHWM")
    start = time.perf_counter()
    engine.build(data.base, data.metric, threads, seed)
    seconds = time.perf_counter() - start
    gc.collect()
    rss1, hwm1 = proc_status_kib("VmRSS"), proc_status_kib("VmHWM")
    return {
        "build_seconds": seconds,
        "rss_before_kib": rss0,
        "rss_delta_kib": rss1 - rss0,
        "peak_delta_kib": max(hwm1, rss0) - rss0 if hwm1 > hwm0 else rss1 - rss0,
    }


def worker_ann(
    directory: Path, lib: str, threads: int, repeats: int, seed: int, save: Optional[Path]
) -> None:
    """Phase 1 (threads == 1: build, single-query and 1-thread batch sweep) or phase 2
    (threads > 1: build and batch sweep with that many threads) of one library."""
    data = load_worker_data(directory)
    engine = ENGINES[lib]()
    result: Dict[str, Any] = {"lib": lib, "threads": threads, "version": engine.version()}
    result.update(measured_build(engine, data, threads, seed))
    result["knob"] = engine.knob
    result["params"] = engine.params()
    log(f"{lib}: built with {threads} thread(s) in {result['build_seconds']:.1f} s")
    if save is not None and isinstance(engine, HnswlibEngine):
        engine.index.save_index(str(save))
    nq = data.queries.shape[0]
    rows = engine.query_rows(data.queries)
    sweep: List[Dict[str, Any]] = []
    # "ef" in the JSON is the engine's knob (nprobe, leaves_to_search for the partitions).
    for ef in engine.sweep(data.base.shape[0], data.metric):
        engine.set_ef(ef)
        point: Dict[str, Any] = {"ef": ef}
        if threads == 1:
            one = engine.one_query_fn()
            answers = [one(q) for q in rows]  # the untimed pass
            found = pad_ids([engine.ids_of(a) for a in answers], K)
            point["recall"], point["recall_overlap"] = recalls(
                found, data.truth_ids, data.truth_dists, data.base, data.queries, data.metric
            )
            samples = [time_loop(one, rows) for _ in range(repeats)]
            point["single_qps"] = nq / median(samples)
            point["single_samples"] = samples
        batch_found = engine.batch(data.queries, threads)  # warm-up, and its recall
        point["batch_recall"], _ = recalls(
            batch_found, data.truth_ids, data.truth_dists, data.base, data.queries, data.metric
        )
        if "recall" not in point:
            point["recall"] = point["batch_recall"]
        batch_samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.batch(data.queries, threads)
            batch_samples.append(time.perf_counter() - start)
        point["batch_qps"] = nq / median(batch_samples)
        point["batch_samples"] = batch_samples
        sweep.append(point)
        log(
            f"{lib} t={threads} {engine.knob}={ef}: recall {point['recall']:.4f}"
            + (f", single {point['single_qps']:,.0f} QPS" if "single_qps" in point else "")
            + f", batch {point['batch_qps']:,.0f} QPS"
        )
    result["sweep"] = sweep
    result["load_average_end"] = load_average()
    emit(result)


def worker_filtered(directory: Path, repeats: int, seed: int, hnsw_path: Path) -> None:
    """Filtered search, NusterDB vs hnswlib (filter callable and post-filter), 1 thread."""
    data = load_worker_data(directory)
    buckets = np.load(directory / "buckets.npy")
    n, dim = data.base.shape
    nq = data.queries.shape[0]
    nuster = NusterEngine()
    metadata = [{"bucket": int(b)} for b in buckets]
    start = time.perf_counter()
    nuster.build(data.base, data.metric, 1, seed, metadata=metadata)
    nuster_build = time.perf_counter() - start
    del metadata
    log(f"filtered: nusterdb built with metadata in {nuster_build:.1f} s")
    hnsw = HnswlibEngine()
    if hnsw_path.exists():
        hnsw.load(hnsw_path, data.metric, dim, n)
    else:
        hnsw.build(data.base, data.metric, 1, seed)
    rows = nuster.query_rows(data.queries)
    out: List[Dict[str, Any]] = []
    for sel in SELECTIVITIES:
        limit = round(sel * BUCKETS)
        allowed = buckets < limit
        truth_ids = np.load(directory / f"truth_ids_sel{limit}.npy")
        truth_dists = np.load(directory / f"truth_dists_sel{limit}.npy")
        flags: List[bool] = allowed.tolist()
        flt = {"bucket": {"$lt": limit}}
        k_post = min(math.ceil(K / sel), POSTFILTER_CAP)
        entry: Dict[str, Any] = {
            "selectivity": sel,
            "matching_rows": int(allowed.sum()),
            "filter": flt,
            "postfilter_k": k_post,
        }

        def post_ids(raw: Any, flags: List[bool] = flags) -> List[int]:
            return [i for i in (int(x) for x in raw[0][0]) if flags[i]][:K]

        methods: Dict[str, Tuple[Callable[[int], Callable[[Any], Any]], Callable[..., Any]]] = {}

        def nuster_fn(ef: int, flt: Dict[str, Any] = flt) -> Callable[[Any], Any]:
            nuster.set_ef(ef)
            return nuster.one_query_fn(flt)

        def hnsw_filter_fn(ef: int, flags: List[bool] = flags) -> Callable[[Any], Any]:
            hnsw.set_ef(ef)
            return hnsw.one_query_fn(K, flags.__getitem__)

        def hnsw_post_fn(ef: int, k_post: int = k_post) -> Callable[[Any], Any]:
            hnsw.set_ef(max(ef, k_post))
            return hnsw.one_query_fn(k_post)

        methods["nusterdb"] = (nuster_fn, nuster.ids_of)
        methods["hnswlib-filter"] = (hnsw_filter_fn, hnsw.ids_of)
        methods["hnswlib-postfilter"] = (hnsw_post_fn, post_ids)
        for name, (make, ids_of) in methods.items():
            sweep: List[Dict[str, Any]] = []
            one: Optional[Callable[[Any], Any]] = None
            for ef in EF_SWEEP:
                eff = max(ef, k_post) if name == "hnswlib-postfilter" else ef
                if sweep and sweep[-1]["ef"] == eff:
                    continue
                one = make(ef)
                start = time.perf_counter()
                answers = [one(q) for q in rows]
                first = time.perf_counter() - start
                found = pad_ids([ids_of(a) for a in answers], K)
                r, r_overlap = recalls(
                    found, truth_ids, truth_dists, data.base, data.queries, data.metric
                )
                sweep.append(
                    {"ef": eff, "recall": r, "recall_overlap": r_overlap, "first_pass": first}
                )
                if r >= FILTER_TARGET:
                    break
            # Timed at the first ef reaching the target, else at the last (largest) ef.
            assert one is not None
            chosen = sweep[-1]
            # A pass of 20 s or more is long enough to be stable: its first pass is the
            # measurement (it included the recall bookkeeping, a few ms).
            if chosen["first_pass"] >= 20:
                samples = [chosen["first_pass"]]
            else:
                samples = [time_loop(one, rows) for _ in range(repeats)]
            chosen["qps"] = nq / median(samples)
            chosen["samples"] = samples
            entry[name] = {"sweep": sweep, "chosen": chosen}
            log(
                f"filtered sel={sel}: {name} ef={chosen['ef']} recall {chosen['recall']:.4f} "
                f"{chosen['qps']:,.0f} QPS"
            )
        out.append(entry)
    emit({"filtered": out, "nusterdb_build_with_metadata_seconds": nuster_build})


def worker_interleaved(
    directory: Path, seed: int, efs: Dict[str, Dict[str, int]], rounds: int
) -> None:
    """Every library built in this one process (1 thread), then, per recall target, the
    single-query loops of all libraries (each at its own ef for that target) alternated
    round by round, the order rotating: load that drifts over the run hits all alike."""
    data = load_worker_data(directory)
    engines = {lib: ENGINES[lib]() for lib in efs}
    for lib, engine in engines.items():
        engine.build(data.base, data.metric, 1, seed)
        log(f"interleaved: {lib} built")
    rows = {lib: engine.query_rows(data.queries) for lib, engine in engines.items()}
    nq = data.queries.shape[0]
    out: Dict[str, Any] = {}
    targets = sorted({t for per_lib in efs.values() for t in per_lib})
    for target in targets:
        libs = [lib for lib in efs if target in efs[lib]]
        fns: Dict[str, Callable[[Any], Any]] = {}
        for lib in libs:
            engines[lib].set_ef(efs[lib][target])
            fns[lib] = engines[lib].one_query_fn()
            time_loop(fns[lib], rows[lib])  # warm-up
        samples: Dict[str, List[float]] = {lib: [] for lib in libs}
        for r in range(rounds):
            for i in range(len(libs)):
                lib = libs[(i + r) % len(libs)]
                # hnswlib and faiss keep ef in the index: set it again before each loop.
                engines[lib].set_ef(efs[lib][target])
                samples[lib].append(time_loop(fns[lib], rows[lib]))
        out[target] = {
            lib: {"ef": efs[lib][target], "qps": nq / median(ts), "samples": ts}
            for lib, ts in samples.items()
        }
        log(
            f"interleaved {target}: "
            + ", ".join(f"{k} {v['qps']:,.0f}" for k, v in out[target].items())
        )
    emit({"interleaved": out, "rounds": rounds, "queries": nq})


def run_worker(
    args: List[str],
    env_extra: Dict[str, str],
    settle: float = SETTLE_SECONDS,
    script: Optional[Path] = None,
) -> Dict[str, Any]:
    """Runs ``script`` (default: this file) with ``args`` in a fresh process, its thread
    pools set by ``env_extra``, after ``settle`` seconds of quiet; returns the result it
    printed (with the load average at its start)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(env_extra)
    cmd = [sys.executable, str(script or Path(__file__).resolve()), *args]
    time.sleep(settle)
    load = load_average()
    log(f"worker {' '.join(args[:6])}... env {env_extra} (load {load})")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed with exit code {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: Dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            result["load_average_start"] = load
            return result
    raise RuntimeError(f"worker {args} printed no result:\n{proc.stdout}")


def thread_env(threads: int) -> Dict[str, str]:
    t = str(threads)
    return {"RAYON_NUM_THREADS": t, "OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------- report


def first_reaching(sweep: Sequence[Dict[str, Any]], target: float) -> Optional[Dict[str, Any]]:
    for p in sweep:
        if p["recall"] >= target:
            return p
    return None


def max_recall(sweep: Sequence[Dict[str, Any]]) -> str:
    best = max(sweep, key=lambda p: p["recall"])
    return f"not reached (max {best['recall']:.4f} at ef {best['ef']})"


def phase2_variants(phase2: Dict[str, Dict[str, Any]], lib: str) -> List[str]:
    """The phase-2 results of ``lib``: faiss has two (default and passive wait policy)."""
    names = [lib, FAISS_PASSIVE] if lib == "faiss" else [lib]
    return [n for n in names if n in phase2]


def phase2_build(phase2: Dict[str, Dict[str, Any]], lib: str) -> str:
    cells = [f"{phase2[v]['build_seconds']:.1f}" for v in phase2_variants(phase2, lib)]
    if len(cells) == 2:
        return f"{cells[0]} / {cells[1]} (passive)"
    return cells[0] if cells else "-"


def best_phase2(
    phase2: Dict[str, Dict[str, Any]], lib: str, target: float
) -> Optional[Dict[str, Any]]:
    """The phase-2 point of ``lib`` first reaching ``target``; for faiss the variant with
    the higher batch QPS there (its name added as "variant")."""
    best: Optional[Dict[str, Any]] = None
    for v in phase2_variants(phase2, lib):
        p = first_reaching(phase2[v]["sweep"], target)
        if p is not None and (best is None or p["batch_qps"] > best["batch_qps"]):
            best = dict(p, variant=v)
    return best


def print_dataset_report(
    ds: datasets.Dataset,
    phase1: Dict[str, Dict[str, Any]],
    phase2: Dict[str, Dict[str, Any]],
    threads: int,
) -> Dict[str, Any]:
    n, dim = ds.base.shape
    raw = n * dim * 4
    libs = list(phase1)
    print_table(
        [
            "library",
            "version",
            "build 1 thread (s)",
            f"build {threads} threads (s)" if phase2 else "build N threads",
            "RSS increase (build)",
            "peak RSS increase",
            "RSS increase / raw vectors",
            "load avg at start (1-thread / N-thread worker)",
        ],
        [
            (
                lib,
                phase1[lib]["version"],
                f"{phase1[lib]['build_seconds']:.1f}",
                phase2_build(phase2, lib),
                fmt_bytes(phase1[lib]["rss_delta_kib"] * 1024),
                fmt_bytes(phase1[lib]["peak_delta_kib"] * 1024),
                f"{phase1[lib]['rss_delta_kib'] * 1024 / raw:.2f}",
                " / ".join(
                    r["load_average_start"].split()[0]
                    for r in [phase1[lib]] + [phase2[v] for v in phase2_variants(phase2, lib)]
                ),
            )
            for lib in libs
        ],
        title=(
            f"Build (HNSW libraries: M={M}, ef_construction={EF_CONSTRUCTION}) and memory; "
            f"raw vectors {n:,} x {dim} x 4 B = {fmt_bytes(raw)}. Memory from the 1-thread "
            "build:"
        ),
        right=[2, 3, 4, 5, 6],
    )
    for lib in libs:
        if phase1[lib].get("params"):
            print(f"- {lib}: {phase1[lib]['params']}")
    print()
    for lib in libs:
        knob = phase1[lib].get("knob", "ef_search")
        p2 = {p["ef"]: p for p in phase2[lib]["sweep"]} if lib in phase2 else {}
        p2b = (
            {p["ef"]: p for p in phase2[FAISS_PASSIVE]["sweep"]}
            if (lib == "faiss" and FAISS_PASSIVE in phase2)
            else {}
        )

        def qps2(ef: int, p2: Dict[int, Any] = p2, p2b: Dict[int, Any] = p2b) -> str:
            if ef not in p2:
                return "-"
            cell = fmt_rate(p2[ef]["batch_qps"])
            return f"{cell} / {fmt_rate(p2b[ef]['batch_qps'])} (passive)" if ef in p2b else cell

        print_table(
            [
                knob,
                "recall@10",
                "single-query QPS",
                "batch QPS 1 thread",
                f"recall@10 ({threads}-thread build)",
                f"batch QPS {threads} threads",
            ],
            [
                (
                    p["ef"],
                    f"{p['recall']:.4f}",
                    fmt_rate(p["single_qps"]),
                    fmt_rate(p["batch_qps"]),
                    f"{p2[p['ef']]['recall']:.4f}" if p["ef"] in p2 else "-",
                    qps2(p["ef"]),
                )
                for p in phase1[lib]["sweep"]
            ],
            title=f"{lib}: sweep over {knob} (k={K}, {ds.queries.shape[0]:,} queries)",
        )
        odd = [
            p["ef"] for p in phase1[lib]["sweep"] if abs(p["batch_recall"] - p["recall"]) > 0.002
        ]
        if odd:
            print(f"NOTE: {lib} batch recall differs from single-query recall at ef {odd}\n")

    targets: Dict[str, Any] = {}
    rows = []
    for target in TARGETS:
        for lib in libs:
            p = first_reaching(phase1[lib]["sweep"], target)
            q = best_phase2(phase2, lib, target)
            targets[f"{lib}@{target}"] = {"phase1": p, "phase2": q}
            rows.append(
                (
                    f"{target:.2f}",
                    lib,
                    str(p["ef"]) if p else max_recall(phase1[lib]["sweep"]),
                    f"{p['recall']:.4f}" if p else "-",
                    fmt_rate(p["single_qps"]) if p else "-",
                    fmt_rate(p["batch_qps"]) if p else "-",
                    (
                        f"{fmt_rate(q['batch_qps'])} (ef {q['ef']}"
                        + (", OMP passive)" if q["variant"] == FAISS_PASSIVE else ")")
                    )
                    if q
                    else "-",
                )
            )
    print_table(
        [
            "recall@10 ≥",
            "library",
            "first ef / nprobe / leaves reaching it",
            "recall@10",
            "single-query QPS",
            "batch QPS 1 thread",
            f"batch QPS {threads} threads",
        ],
        rows,
        title="QPS at the first ef of the sweep whose recall@10 reaches the target "
        "(no interpolation):",
        right=[3, 4, 5, 6],
    )
    ratio_rows = []
    for target in TARGETS:
        for us in (u for u in OURS if u in libs):
            ours = targets[f"{us}@{target}"]
            for peer in (p for p in ALL_PEERS if p in libs):
                theirs = targets[f"{peer}@{target}"]
                cells: List[str] = [f"{target:.2f}", us, peer]
                for phase, key in (("phase1", "single_qps"), ("phase1", "batch_qps")):
                    a, b = ours[phase], theirs[phase]
                    cells.append(f"{a[key] / b[key]:.2f}" if a and b else "n/a")
                a, b = ours["phase2"], theirs["phase2"]
                cells.append(f"{a['batch_qps'] / b['batch_qps']:.2f}" if a and b else "n/a")
                ratio_rows.append(cells)
    if any(u in libs for u in OURS):
        print_table(
            [
                "recall@10 ≥",
                "ours",
                "peer",
                "ours / peer, single-query",
                "batch 1 thread",
                f"batch {threads} threads",
            ],
            ratio_rows,
            title="Ratios of QPS at equal recall target (> 1: NusterDB faster; n/a: one side "
            "never reached the target):",
        )
    return targets


def print_interleaved_report(result: Dict[str, Any]) -> None:
    rows = []
    nq = result["queries"]
    for target, per_lib in result["interleaved"].items():
        ours = per_lib.get("nusterdb")
        for lib, v in per_lib.items():
            rows.append(
                (
                    target,
                    lib,
                    v["ef"],
                    fmt_rate(v["qps"]),
                    f"{fmt_rate(nq / max(v['samples']))}-{fmt_rate(nq / min(v['samples']))}",
                    f"{ours['qps'] / v['qps']:.2f}" if ours and lib != "nusterdb" else "",
                )
            )
    print_table(
        [
            "recall@10 ≥",
            "library",
            "ef / nprobe / leaves",
            "single-query QPS (median)",
            "range",
            "NusterDB / lib",
        ],
        rows,
        title=(
            "Cross-check, single-query QPS with all libraries in one process (1 thread), "
            f"loops alternated over {result['rounds']} rounds in rotating order, each "
            "library at its own first ef reaching the target in the sweep above:"
        ),
        right=[2, 3, 4, 5],
    )


def print_filtered_report(ds: datasets.Dataset, filtered: Dict[str, Any]) -> None:
    rows = []
    ratio_rows = []
    for entry in filtered["filtered"]:
        sel = entry["selectivity"]
        for name in ("nusterdb", "hnswlib-filter", "hnswlib-postfilter"):
            c = entry[name]["chosen"]
            reached = "" if c["recall"] >= FILTER_TARGET else " (not reached)"
            rows.append(
                (
                    f"{sel * 100:g} %",
                    f"{entry['matching_rows']:,}",
                    name
                    + (f" (k'={entry['postfilter_k']})" if name.endswith("postfilter") else ""),
                    f"{c['ef']}{reached}",
                    f"{c['recall']:.4f}",
                    fmt_rate(c["qps"]),
                )
            )
        a, b = entry["nusterdb"]["chosen"], entry["hnswlib-filter"]["chosen"]
        p = entry["hnswlib-postfilter"]["chosen"]
        ratio_rows.append(
            (
                f"{sel * 100:g} %",
                f"{a['qps'] / b['qps']:.2f}",
                f"{a['qps'] / p['qps']:.2f}",
                f"{a['recall']:.4f} / {b['recall']:.4f} / {p['recall']:.4f}",
            )
        )
    print_table(
        ["selectivity", "matching rows", "method", "ef", "recall@10", "single-query QPS"],
        rows,
        title=(
            f"Filtered search on {ds.describe()}: filter bucket < s (bucket uniform in "
            f"[0, {BUCKETS})), 1 thread, first ef reaching recall@10 ≥ {FILTER_TARGET} "
            "(recall against brute force over the matching rows):"
        ),
        right=[1, 4, 5],
    )
    print_table(
        [
            "selectivity",
            "NusterDB / hnswlib-filter",
            "NusterDB / post-filter",
            "recall NusterDB / filter / post",
        ],
        ratio_rows,
        title="Filtered single-query QPS ratios (> 1: NusterDB faster):",
    )
    print(
        f"NusterDB build with metadata (1 thread): "
        f"{filtered['nusterdb_build_with_metadata_seconds']:.1f} s\n"
    )


# ------------------------------------------------------------------------------ main


def bench_dataset(
    name: str, sizes: Sizes, args: argparse.Namespace, tmpdir: Path
) -> Dict[str, Any]:
    ds = datasets.load(name, args.seed)
    n_rows = sizes.synthetic_rows if name == "synthetic" else sizes.real_rows
    if n_rows is not None or sizes.queries < ds.queries.shape[0]:
        ds = ds.head(n_rows or ds.base.shape[0], sizes.queries)
    section(f"{name}: {ds.describe()}")
    for key, value in ds.info.items():
        print(f"- {key}: {value}")
    print()
    t = time.perf_counter()
    truth_ids, truth_dists = datasets.ground_truth(ds, K)
    log(f"{name}: ground truth ready in {time.perf_counter() - t:.1f} s")
    directory = tmpdir / name
    directory.mkdir()
    np.save(directory / "base.npy", ds.base)
    np.save(directory / "queries.npy", ds.queries)
    np.save(directory / "truth_ids.npy", truth_ids)
    np.save(directory / "truth_dists.npy", truth_dists)
    (directory / "meta.json").write_text(json.dumps({"metric": ds.metric}), encoding="utf-8")
    hnsw_path = directory / "hnswlib.bin"
    common_args = ["--data", str(directory), "--repeats", str(sizes.repeats), "--seed"]
    common_args.append(str(args.seed))
    phase1: Dict[str, Dict[str, Any]] = {}
    phase2: Dict[str, Dict[str, Any]] = {}
    failed: Dict[str, str] = {}
    for lib in args.libs:
        extra = ["--save", str(hnsw_path)] if lib == "hnswlib" else []
        cmd = ["--worker", "ann", "--lib", lib, "--threads", "1", *common_args, *extra]
        try:
            phase1[lib] = run_worker(cmd, thread_env(1))
        except RuntimeError as e:
            if lib in OURS:
                raise
            # A peer that crashes or cannot build is reported and left out, not fatal.
            failed[lib] = str(e).splitlines()[0]
            log(f"{lib}: FAILED, left out: {failed[lib]}")
    libs = [lib for lib in args.libs if lib in phase1]
    if args.threads > 1:
        for lib in libs:
            cmd = ["--worker", "ann", "--lib", lib, "--threads", str(args.threads), *common_args]
            phase2[lib] = run_worker(cmd, thread_env(args.threads))
            if lib == "faiss":
                # libgomp's threads spin at barriers by default, which is slow when another
                # process takes a core; the report uses the faster of the two.
                phase2[FAISS_PASSIVE] = run_worker(
                    cmd, {**thread_env(args.threads), "OMP_WAIT_POLICY": "PASSIVE"}
                )
    targets = print_dataset_report(ds, phase1, phase2, args.threads)
    for lib, why in failed.items():
        print(f"FAILED: {lib} left out of this dataset: {why} (its worker's stderr is above)\n")
    out: Dict[str, Any] = {
        "dataset": ds.describe(),
        "info": ds.info,
        "phase1": phase1,
        "phase2": phase2,
        "targets": targets,
        "failed": failed,
    }
    if args.interleaved_rounds > 0 and "nusterdb" in libs:
        efs: Dict[str, Dict[str, int]] = {}
        for lib in libs:
            for target in TARGETS:
                p = first_reaching(phase1[lib]["sweep"], target)
                if p is not None:
                    efs.setdefault(lib, {})[f"{target:.2f}"] = int(p["ef"])
        inter = run_worker(
            [
                "--worker",
                "interleaved",
                "--efs",
                json.dumps(efs),
                "--rounds",
                str(args.interleaved_rounds),
                *common_args,
            ],
            thread_env(1),
        )
        print_interleaved_report(inter)
        out["interleaved"] = inter
    if name in args.filtered:
        rng = np.random.default_rng(args.seed + 1)
        buckets = rng.integers(0, BUCKETS, size=ds.base.shape[0]).astype(np.int64)
        np.save(directory / "buckets.npy", buckets)
        t = time.perf_counter()
        for sel in SELECTIVITIES:
            limit = round(sel * BUCKETS)
            ids, dists = datasets.ground_truth(
                ds,
                K,
                allowed=np.asarray(buckets < limit),
                key=f"bucket-lt{limit}-seed{args.seed + 1}",
            )
            np.save(directory / f"truth_ids_sel{limit}.npy", ids)
            np.save(directory / f"truth_dists_sel{limit}.npy", dists)
        log(f"{name}: filtered ground truth ready in {time.perf_counter() - t:.1f} s")
        filtered = run_worker(
            ["--worker", "filtered", "--hnsw-path", str(hnsw_path), *common_args],
            thread_env(1),
        )
        print_filtered_report(ds, filtered)
        out["filtered"] = filtered
    return out


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="Usage" + doc.split("Usage")[-1] if "Usage" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", choices=("synthetic", "real", "both"), default="both")
    parser.add_argument(
        "--quick", action="store_true", help="20,000 rows and 200 queries per dataset"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads of phase 2 (multi-threaded build and batch search); 1 skips it "
        "(default: all cores)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write every figure as JSON")
    parser.add_argument("--seed", type=int, default=datasets.DEFAULT_SEED)
    parser.add_argument(
        "--libs",
        default=",".join(DEFAULT_LIBS),
        help=f"comma-separated libraries, of {', '.join(LIBRARIES)} (default: "
        f"{', '.join(DEFAULT_LIBS)}); a peer whose package is missing is skipped",
    )
    parser.add_argument(
        "--filtered",
        default="synthetic,real",
        help="datasets with the filtered-search section (comma-separated; '' for none)",
    )
    parser.add_argument(
        "--interleaved-rounds",
        type=int,
        default=7,
        help="rounds of the one-process cross-check of single-query QPS (0: skip it)",
    )
    parser.add_argument("--tmpdir", type=Path, default=None)
    # Internal: one measurement in a subprocess.
    parser.add_argument(
        "--worker", choices=("ann", "filtered", "interleaved"), help=argparse.SUPPRESS
    )
    parser.add_argument("--lib", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--save", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--hnsw-path", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--efs", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if isinstance(args.libs, str):
        args.libs = [x for x in args.libs.split(",") if x]
    unknown = set(args.libs) - set(LIBRARIES)
    if unknown:
        parser.error(f"unknown libraries {sorted(unknown)}")
    args.filtered = [x for x in args.filtered.split(",") if x]
    return args


def installed_libs(libs: Sequence[str]) -> List[str]:
    """``libs`` without the peers whose package is not installed (each noted)."""
    kept = []
    for lib in libs:
        requires = ENGINES[lib].requires
        if requires is not None and importlib.util.find_spec(requires[0]) is None:
            print(
                f"SKIPPED: {lib}: Python package {requires[0]!r} is not installed "
                f"(pip install {requires[1]})"
            )
            continue
        kept.append(lib)
    return kept


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.worker == "ann":
        worker_ann(args.data, args.lib, args.threads, args.repeats, args.seed, args.save)
        return 0
    if args.worker == "interleaved":
        worker_interleaved(args.data, args.seed, json.loads(args.efs), args.rounds)
        return 0
    if args.worker == "filtered":
        worker_filtered(args.data, args.repeats, args.seed, args.hnsw_path)
        return 0
    args.libs = installed_libs(args.libs)
    sizes = QUICK if args.quick else FULL
    names = ["synthetic", "real"] if args.dataset == "both" else [args.dataset]
    title = "# NusterDB approximate search (HNSW) benchmark"
    results = start_run(title + (" (--quick)" if args.quick else ""), args.threads)
    print(
        f"M={M}, ef_construction={EF_CONSTRUCTION}, k={K}, ef sweep {list(EF_SWEEP)}, "
        f"phase-2 threads {args.threads}, seed {args.seed}, timed repeats {sizes.repeats}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nusterdb-ann-", dir=args.tmpdir) as tmp:
        for name in names:
            results["datasets"][name] = bench_dataset(name, sizes, args, Path(tmp))
            if args.out is not None:
                args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    end_run(started, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
