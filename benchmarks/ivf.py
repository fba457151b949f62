#!/usr/bin/env python3
"""IVF benchmark: NusterDB ``index_type="ivf"`` (rows or 1-bit codes) vs faiss-cpu IVF indexes.

Datasets as in ``benchmarks/ann.py`` (``benchmarks/datasets.py``, cached under
~/.cache/nusterdb/datasets/): ``synthetic`` = 100,000 x 128 clustered float32 rows +
1,000 queries, euclidean; ``real`` = about 56,000 x 384 all-MiniLM-L6-v2 sentence
embeddings + 1,000 held-out sentences, cosine (unit rows); ``wide`` (``--dataset wide``
only) = 50,000 x 1,536 clustered rows + 1,000 queries, euclidean. Ground truth is the exact
top-10 by float64 brute force; recall@10 counts ties as hits (``ann.recalls``: a returned
id is a hit when its exact distance is within the 10th true distance, +1e-5 relative).

Libraries, each keyed 0..n-1 and built from the same float32 rows:

* ``nusterdb-ivf``: ``DatabaseConfig(dim, index_type="ivf", distance_metric=metric,
  nlist=--nlist)`` in memory, one ``bulk_add`` (the time includes the k-means training,
  done once at the end of the write: ``nlist`` = ⌊√n⌋ lists unless --nlist fixes it, on
  a sample of 64 rows per list, 10 Lloyd iterations); searched by
  ``search(q, k=10, nprobe=p)`` and ``batch_search(qs, k=10, nprobe=p)``. Its lists hold
  the rows, scanned exactly.
* ``nusterdb-ivf-rabitq``: the same with ``quantization="rabitq"``: each list's rows are
  also coded as 1-bit RaBitQ codes (rotated relative to their list's centroid, one bit per
  rotated component, P = dim rounded up to a power of two, at least 64), the codes
  scanned by a 4-bit lookup-table fast-scan kernel; a row whose estimate's lower bound
  (RaBitQ's error bound, ε₀ = 3) could beat the current 10th exact distance is scored
  exactly from the full rows (kept in memory), so the returned distances are exact.
  Searched as ``nusterdb-ivf``; ``db.stats()`` counts the codes as its ``codes`` part.
* ``nusterdb-ivf-binary``: the same with ``quantization="binary"``: P = dim rounded up to
  a multiple of 64 only (one bit a component: 384 at 384-d where rabitq has 512).
* ``faiss-ivf``: ``IndexIVFFlat(IndexFlatL2(d), d, nlist, METRIC_L2)``, or
  ``IndexFlatIP`` / ``METRIC_INNER_PRODUCT`` on the unit rows for cosine, with the same
  nlist; ``train`` on all base rows (its IVF defaults: a random sample of at most 256
  rows per list, 10 iterations, spherical k-means for inner product), then ``add``;
  ``index.nprobe = p``. Once more, build time and batch recall only, with NusterDB's
  sample size (``cp.max_points_per_centroid = 64``; NusterDB seeds by k-means++, faiss
  picks random rows).
* faiss with codes in its lists, each wrapped in ``IndexRefineFlat`` (built before
  training: its ``train`` trains the IVF index, its ``add`` adds the rows to the IVF index
  and to a flat copy, which scores the IVF index's k · k_factor best candidates exactly,
  so the final top-10 are exact as NusterDB's are); quantizer, metric, nlist and k-means
  as ``faiss-ivf`` (``train`` also trains the codes' encoder), ``nprobe`` set on the IVF
  index, the wrapper searched:

  - ``faiss-ivf-rabitq``: ``IndexIVFRaBitQ(quantizer, d, nlist, metric)``: 1-bit RaBitQ
    codes of each row's residual to its list's centroid, queries quantized to faiss's
    default ``qb`` = 4 bits;
  - ``faiss-ivf-rabitq-fs``: ``IndexIVFRaBitQFastScan(quantizer, d, nlist, metric)``: the
    same codes scanned 32 rows at a time with 4-bit lookup tables (default ``bbs`` 32,
    ``qb`` 8);
  - ``faiss-ivfpq-fs``: ``IndexIVFPQFastScan(quantizer, d, nlist, d/2, 4, metric)``
    (``PQ{d/2}x4fs``: product quantization with d/2 sub-quantizers of 4 bits, fast-scan,
    faiss's defaults otherwise).

  k_factor per dataset (``--rabitq-k-factor`` for the two RaBitQ indexes and
  ``--pq-k-factor`` override it on every dataset), chosen in trials (this script's seed,
  1 thread, k_factor 4 to 50) as the fastest at recall 0.95 within the sweep, and of
  about equally fast ones the one that also reaches 0.99:

  - real (nlist 237): RaBitQ (both indexes alike) k_factor 10. With 4, recall 0.95 comes
    only at nprobe 64 and the recall stops at 0.964-0.966 (nprobe 128); 10 reaches 0.90
    and 0.95 at nprobe 16 and 32 (a higher QPS at 0.95 than 4 at nprobe 64) and stops at
    0.9896-0.9897, short of 0.99 (nprobe 128); 16 or 20 add at most 0.004 recall at
    nprobe 16-32 for 11-35 % less QPS, and reach 0.99 at nprobe 96 (``--rabitq-k-factor
    16`` lets faiss reach 0.99). PQ k_factor 4: it reaches the three targets at nprobe
    16 / 32 / 96, and 10 at the same nprobes, only slower.
  - synthetic (nlist 316): k_factor 20 for both. With 10 the recall stops at 0.937-0.940
    (RaBitQ; 4: 0.76-0.77) and at 0.96 (PQ, from nprobe 8; 4: 0.81); with 20 they reach
    0.97 at nprobe 4 and 0.99 at nprobe 8, PQ at 0.95 about as fast as with 10 (16,400
    vs 17,900 QPS, one pass each); 50 reaches 1.0 at nprobe 8 at about half the QPS.
* build-speed references: ``nusterdb-hnsw`` (``index_type="hnsw"``, default codes,
  ``HNSWConfig(max_nb_connection=16, ef_construction=200, max_nb_elements=n)``, as
  ann.py builds it; build only), ``hnswlib`` (M=16, ef_construction=200; also an
  ef_search sweep, for its single-query QPS at the recall targets) and ``nusterdb-flat``
  (``index_type="flat"``: what ``bulk_add`` costs without any index, build only).

Each library runs in a fresh subprocess (its memory is its own; ``RAYON_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` are set before it starts; faiss also
``omp_set_num_threads``, hnswlib ``num_threads``):

* phase 1 (1 thread): build (RSS increase over it from /proc/self/status VmRSS, VmHWM for
  the peak; NusterDB also ``db.stats()``: ``memory_bytes`` and its parts, ``codes`` among
  them; faiss's codes as n x ``code_size``), then for each nprobe of the sweep
  (each ef for hnswlib): recall@10 and single-query QPS (a Python loop, one query per
  call; one untimed pass whose answers give the recall, then the median of 3 timed
  passes) and batch QPS (all queries in one call, median of 3 after a warm-up call);
* phase 2 (``--threads``, default all cores): a new build with that many threads, and
  for the IVF libraries batch QPS with that many threads over the same sweep;
* cross-check (1 thread), one process per group: nusterdb-ivf and faiss-ivf; then
  nusterdb-ivf-rabitq, faiss-ivf-rabitq, faiss-ivf-rabitq-fs, faiss-ivfpq-fs,
  nusterdb-ivf (the codes' speed-up over the rows) and nusterdb-ivf-binary (rabitq's
  over binary's) — those of ``--libs``. The group is
  built in the process, then at each nprobe where any of it first reached a recall
  target, the single-query loops of all of it alternated over ``--interleaved-rounds``
  rounds: load drifting on a shared machine hits them alike, so these equal-nprobe ratios
  (the group's first / each other) are the more trustworthy ones;
* reopen (``--threads`` threads): a NusterDB IVF database on disk, one ``bulk_add``,
  closed (sealed with its lists file); opens each followed by one search, median of the
  timed repeats — from the lists file, and with a byte of it flipped (the lists trained
  again).
* resident memory (for each of ``nusterdb-ivf-rabitq`` and ``nusterdb-ivf-binary`` in
  ``--libs``; ``--resident-searches``, default 10,000; 0 skips it): a database on disk
  with that ``quantization`` (one ``bulk_add``,
  closed, opened and closed once more), then per ``vectors`` mode, ``"memory"`` (the
  rows copied into the lists), ``"mmap"`` (the rows left in the seal's file, read through
  its mapping for the rows the codes let through) and ``"disk"`` (the same, read by
  positioned reads), a fresh 1-thread process opens
  and searches (100 queries) a 2,000-row database built the same way, closes it (the
  library's code pages and the storage engine's fixed allocations are then resident),
  reads VmRSS, opens the database, runs that many single searches at the nprobe where
  phase 1 first reached recall 0.95 with those codes (the queries in turn; recall@10
  from the first pass), reads VmRSS again: the increase and ``stats()``'s index and
  maps bytes (without RocksDB's) as multiples of the raw float32 bytes.

"QPS at recall r" is the QPS at the smallest nprobe (ef) of the sweep whose recall@10
reaches r (no interpolation). Ratios are NusterDB / peer (> 1: NusterDB faster), or
nusterdb-ivf-rabitq / nusterdb-ivf (> 1: the codes faster than the rows), and, for
builds, the first build / the second (< 1: the first is faster).

Usage (peers in their own venv, see benchmarks/requirements.txt):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv-bench/bin/python benchmarks/ivf.py --quick
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv-bench/bin/python benchmarks/ivf.py \\
        --dataset both --out /tmp/ivf.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann
import datasets
from common import (
    F32,
    I64,
    end_run,
    fmt_bytes,
    fmt_rate,
    load_average,
    median,
    print_table,
    section,
    start_run,
)

K = ann.K
TARGETS = ann.TARGETS
NPROBE_SWEEP = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
QUICK_NPROBES = (1, 4, 16, 64)
QUICK_EFS = (16, 64, 256)
IVF_LIBS = (
    "nusterdb-ivf",
    "faiss-ivf",
    "nusterdb-ivf-rabitq",
    "nusterdb-ivf-binary",
    "faiss-ivf-rabitq",
    "faiss-ivf-rabitq-fs",
    "faiss-ivfpq-fs",
)
HNSW_LIBS = ("nusterdb-hnsw", "hnswlib")
LIBRARIES = (*IVF_LIBS, *HNSW_LIBS, "nusterdb-flat")
#: Libraries with a search sweep (the others are built only).
SWEPT = (*IVF_LIBS, "hnswlib")
#: (first, second) pairs compared at equal nprobe and at equal recall target (ratio =
#: first / second): each NusterDB IVF against its faiss peers, and the lists of codes
#: against the lists of rows.
PAIRS = (
    ("nusterdb-ivf", "faiss-ivf"),
    ("nusterdb-ivf-rabitq", "faiss-ivf-rabitq"),
    ("nusterdb-ivf-rabitq", "faiss-ivf-rabitq-fs"),
    ("nusterdb-ivf-rabitq", "faiss-ivfpq-fs"),
    ("nusterdb-ivf-rabitq", "nusterdb-ivf"),
    ("nusterdb-ivf-binary", "nusterdb-ivf-rabitq"),
    ("nusterdb-ivf-binary", "nusterdb-ivf"),
)
#: Pairs compared with hnswlib at equal recall target only.
HNSWLIB_PAIRS = (
    ("nusterdb-ivf", "hnswlib"),
    ("faiss-ivf", "hnswlib"),
    ("nusterdb-ivf-rabitq", "hnswlib"),
)
#: The cross-check's groups, each built in one process and alternated at equal nprobe;
#: the first of a group is the one the others are compared with.
INTERLEAVED_GROUPS = (
    ("nusterdb-ivf", "faiss-ivf"),
    (
        "nusterdb-ivf-rabitq",
        "faiss-ivf-rabitq",
        "faiss-ivf-rabitq-fs",
        "faiss-ivfpq-fs",
        "nusterdb-ivf",
        "nusterdb-ivf-binary",
    ),
)
#: IndexRefineFlat's k_factor around faiss's 1-bit RaBitQ IVF indexes and around its
#: 4-bit PQ fast-scan IVF index, per dataset (see the module docstring for the choice).
K_FACTORS: Dict[str, Tuple[int, int]] = {
    "synthetic": (20, 20),
    "real": (10, 4),
    "wide": (20, 20),
    "wide-200k": (20, 20),
}
#: faiss's k-means with NusterDB's training budget (rows per list sampled, iterations).
MATCHED_POINTS_PER_LIST = 64
MATCHED_ITERS = 10
#: Pause between workers, so the previous one's threads and memory are gone (--quick: less).
SETTLE_SECONDS = ann.SETTLE_SECONDS
QUICK_SETTLE_SECONDS = 0.2
THREAD_VARS = ann.THREAD_VARS


@dataclass(frozen=True)
class Sizes:
    synthetic_rows: int
    real_rows: Optional[int]  # None: all of the real (and wide) dataset's rows
    queries: int
    repeats: int
    nprobes: Tuple[int, ...]
    efs: Tuple[int, ...]


FULL = Sizes(100_000, None, 1_000, 3, NPROBE_SWEEP, ann.EF_SWEEP)
QUICK = Sizes(10_000, 10_000, 200, 3, QUICK_NPROBES, QUICK_EFS)


def log(msg: str) -> None:
    """Progress, to stderr (the tables go to stdout)."""
    print(f"[ivf.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def auto_nlist(n: int) -> int:
    """NusterDB's list count for ``n`` rows when none is configured (``ivf.rs``)."""
    return min(max(math.isqrt(n), 1), 65_536)


# ------------------------------------------------------------------------- libraries


class NusterIvfEngine(ann.Engine):
    """NusterDB's IVF index; ``set_ef`` sets the searches' ``nprobe``."""

    name = "nusterdb-ivf"
    #: ``DatabaseConfig(quantization=...)``; None: the lists hold the rows, scanned exactly.
    quantization: Optional[str] = None

    def __init__(self, nlist: Optional[int]) -> None:
        import nusterdb

        self.mod = nusterdb
        self.nlist = nlist
        self.nprobe = 8
        self.db: Any = None

    def version(self) -> str:
        return f"{self.mod.__version__} ({self.mod.simd_isa()})"

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        # threads: rayon's pool, fixed by RAYON_NUM_THREADS when the process started.
        n, dim = base.shape
        cfg = self.mod.DatabaseConfig(
            dim,
            index_type="ivf",
            distance_metric=metric,
            nlist=self.nlist,
            quantization=self.quantization,
        )
        self.db = self.mod.NusterDB(None, cfg)
        self.db.bulk_add(np.arange(n, dtype=np.int64), base)

    def set_ef(self, ef: int) -> None:
        self.nprobe = ef

    def one_query_fn(self) -> Callable[[Any], Any]:
        search, nprobe = self.db.search, self.nprobe
        return lambda q: search(q, k=K, nprobe=nprobe)

    def ids_of(self, raw: Any) -> List[int]:
        return [i for i, _ in raw]

    def batch(self, queries: F32, threads: int) -> I64:
        ids: I64 = self.db.batch_search(queries, k=K, nprobe=self.nprobe)[0]
        return ids


class NusterIvfRabitqEngine(NusterIvfEngine):
    """NusterDB's IVF index with each list's rows as 1-bit RaBitQ codes
    (``quantization="rabitq"``): the lists' codes are scanned, the rows whose estimate could
    still beat the k-th exact distance scored exactly from the full rows."""

    name = "nusterdb-ivf-rabitq"
    quantization = "rabitq"


class NusterIvfBinaryEngine(NusterIvfEngine):
    """The same with ``quantization="binary"``: rows rotated into the dimension rounded up
    to a multiple of 64 rather than a power of two, one bit a component."""

    name = "nusterdb-ivf-binary"
    quantization = "binary"


class NusterFlatEngine(NusterIvfEngine):
    """NusterDB's flat (exact) database: the cost of ``bulk_add`` with no index to build."""

    name = "nusterdb-flat"

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        n, dim = base.shape
        cfg = self.mod.DatabaseConfig(dim, index_type="flat", distance_metric=metric)
        self.db = self.mod.NusterDB(None, cfg)
        self.db.bulk_add(np.arange(n, dtype=np.int64), base)


class FaissIvfEngine(ann.FaissEngine):
    """faiss ``IndexIVFFlat``; ``set_ef`` sets the IVF index's ``nprobe``. ``matched``:
    k-means with NusterDB's training budget instead of faiss's defaults. Searches as
    ann.py's faiss engine does (``index.search``, the refine wrapper's when there is one)."""

    name = "faiss-ivf"
    #: IndexRefineFlat's k_factor around the IVF index (the constructor's); 0: no
    #: refine wrapper.
    k_factor = 0

    def __init__(self, nlist: int, matched: bool = False, k_factor: Optional[int] = None) -> None:
        super().__init__()
        self.nlist = nlist
        self.matched = matched
        if k_factor is not None:
            self.k_factor = k_factor
        self.index: Any = None  # what is searched: the IVF index, or its refine wrapper
        self.ivf: Any = None
        self.quantizer: Any = None
        self.train_seconds = 0.0
        self.add_seconds = 0.0
        self.train_points = 0
        self.niter = 0

    def make_ivf(self, d: int, kind: int) -> Any:
        """The IVF index over ``self.quantizer`` (metric ``kind``)."""
        return self.mod.IndexIVFFlat(self.quantizer, d, self.nlist, kind)

    def describe(self) -> str:
        """The faiss classes built and their search-time settings."""
        text = type(self.ivf).__name__
        if hasattr(self.ivf, "pq"):
            text += f" (M {int(self.ivf.pq.M)} x {int(self.ivf.pq.nbits)} bits)"
        if hasattr(self.ivf, "qb"):
            text += f" (qb {int(self.ivf.qb)})"
        if self.k_factor:
            text += f" + IndexRefineFlat (k_factor {self.k_factor})"
        return text

    def build(self, base: F32, metric: str, threads: int, seed: int) -> None:
        faiss = self.mod
        faiss.omp_set_num_threads(threads)
        n, d = base.shape
        if metric == "euclidean":
            self.quantizer = faiss.IndexFlatL2(d)
            kind = faiss.METRIC_L2
        else:
            self.quantizer = faiss.IndexFlatIP(d)
            kind = faiss.METRIC_INNER_PRODUCT
        self.ivf = self.make_ivf(d, kind)
        self.ivf.cp.seed = seed % (2**31)
        if self.matched:
            self.ivf.cp.niter = MATCHED_ITERS
            self.ivf.cp.max_points_per_centroid = MATCHED_POINTS_PER_LIST
            self.ivf.cp.min_points_per_centroid = 1
        self.niter = int(self.ivf.cp.niter)
        self.train_points = min(n, self.nlist * int(self.ivf.cp.max_points_per_centroid))
        if self.k_factor:
            # Wrapped before training: its add fills the IVF index and a flat copy of the
            # rows, which re-scores the IVF index's k · k_factor candidates exactly.
            self.index = faiss.IndexRefineFlat(self.ivf)
            self.index.k_factor = self.k_factor
        else:
            self.index = self.ivf
        start = time.perf_counter()
        self.index.train(base)
        self.train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        self.index.add(base)
        self.add_seconds = time.perf_counter() - start

    def set_ef(self, ef: int) -> None:
        self.ivf.nprobe = ef


class FaissIvfRabitqEngine(FaissIvfEngine):
    """faiss ``IndexIVFRaBitQ`` (1-bit codes of the rows' residuals, default ``qb``),
    re-ranked exactly by ``IndexRefineFlat``."""

    name = "faiss-ivf-rabitq"

    def make_ivf(self, d: int, kind: int) -> Any:
        return self.mod.IndexIVFRaBitQ(self.quantizer, d, self.nlist, kind)


class FaissIvfRabitqFsEngine(FaissIvfEngine):
    """faiss ``IndexIVFRaBitQFastScan`` (the same 1-bit codes, scanned 32 rows at a time
    with 4-bit lookup tables; default ``qb``, ``bbs`` 32), re-ranked exactly by
    ``IndexRefineFlat``."""

    name = "faiss-ivf-rabitq-fs"

    def make_ivf(self, d: int, kind: int) -> Any:
        return self.mod.IndexIVFRaBitQFastScan(self.quantizer, d, self.nlist, kind)


class FaissIvfPqFsEngine(FaissIvfEngine):
    """faiss ``IndexIVFPQFastScan`` with d/2 sub-quantizers of 4 bits (``PQ{d/2}x4fs``),
    re-ranked exactly by ``IndexRefineFlat``."""

    name = "faiss-ivfpq-fs"

    def make_ivf(self, d: int, kind: int) -> Any:
        if d % 2:
            raise ValueError(f"faiss-ivfpq-fs needs an even dimension, not {d}")
        return self.mod.IndexIVFPQFastScan(self.quantizer, d, self.nlist, d // 2, 4, kind)


def make_engine(
    lib: str,
    nlist: int,
    nlist_arg: Optional[int],
    rabitq_k_factor: int = K_FACTORS["real"][0],
    pq_k_factor: int = K_FACTORS["real"][1],
) -> ann.Engine:
    if lib == "nusterdb-ivf":
        return NusterIvfEngine(nlist_arg)
    if lib == "nusterdb-ivf-rabitq":
        return NusterIvfRabitqEngine(nlist_arg)
    if lib == "nusterdb-ivf-binary":
        return NusterIvfBinaryEngine(nlist_arg)
    if lib == "nusterdb-flat":
        return NusterFlatEngine(None)
    if lib == "faiss-ivf":
        return FaissIvfEngine(nlist)
    if lib == "faiss-ivf-rabitq":
        return FaissIvfRabitqEngine(nlist, k_factor=rabitq_k_factor)
    if lib == "faiss-ivf-rabitq-fs":
        return FaissIvfRabitqFsEngine(nlist, k_factor=rabitq_k_factor)
    if lib == "faiss-ivfpq-fs":
        return FaissIvfPqFsEngine(nlist, k_factor=pq_k_factor)
    if lib == "nusterdb-hnsw":
        return ann.NusterEngine()
    if lib == "hnswlib":
        return ann.HnswlibEngine()
    raise ValueError(f"unknown library {lib!r}")


# --------------------------------------------------------------------------- workers


def nuster_memory(engine: ann.Engine) -> Dict[str, Any]:
    """``db.stats()`` memory of a NusterDB engine (empty for the others)."""
    db = getattr(engine, "db", None)
    if db is None:
        return {}
    stats = db.stats()
    return {"memory_bytes": stats.memory_bytes, "memory_by_part": dict(stats.memory_by_part)}


def run_sweep(
    engine: ann.Engine,
    data: ann.WorkerData,
    values: Sequence[int],
    threads: int,
    repeats: int,
    label: str,
) -> List[Dict[str, Any]]:
    """recall@10 and QPS at each nprobe (ef) of ``values``: with 1 thread the single-query
    loop and batch, else batch with ``threads`` threads only."""
    nq = data.queries.shape[0]
    rows = engine.query_rows(data.queries)
    out: List[Dict[str, Any]] = []
    for value in values:
        engine.set_ef(value)
        point: Dict[str, Any] = {"p": value}
        if threads == 1:
            one = engine.one_query_fn()
            answers = [one(q) for q in rows]  # the untimed pass
            found = ann.pad_ids([engine.ids_of(a) for a in answers], K)
            point["recall"], point["recall_overlap"] = ann.recalls(
                found, data.truth_ids, data.truth_dists, data.base, data.queries, data.metric
            )
            samples = [ann.time_loop(one, rows) for _ in range(repeats)]
            point["single_qps"] = nq / median(samples)
            point["single_samples"] = samples
        batch_found = engine.batch(data.queries, threads)  # warm-up, and its recall
        point["batch_recall"], _ = ann.recalls(
            batch_found, data.truth_ids, data.truth_dists, data.base, data.queries, data.metric
        )
        point.setdefault("recall", point["batch_recall"])
        batch_samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.batch(data.queries, threads)
            batch_samples.append(time.perf_counter() - start)
        point["batch_qps"] = nq / median(batch_samples)
        point["batch_samples"] = batch_samples
        out.append(point)
        log(
            f"{label} t={threads} {value}: recall {point['recall']:.4f}"
            + (f", single {point['single_qps']:,.0f} QPS" if "single_qps" in point else "")
            + f", batch {point['batch_qps']:,.0f} QPS"
        )
    return out


def worker_run(args: argparse.Namespace) -> None:
    """One library: build with ``args.threads`` threads (memory from it), then its sweep
    (see :func:`run_sweep`); for faiss with 1 thread also the matched-training build."""
    data = ann.load_worker_data(args.data)
    n = data.base.shape[0]
    nlist = args.nlist or auto_nlist(n)
    lib, threads = args.lib, args.threads
    engine = make_engine(lib, nlist, args.nlist, args.rabitq_k_factor, args.pq_k_factor)
    result: Dict[str, Any] = {"lib": lib, "threads": threads, "version": engine.version()}
    result.update(ann.measured_build(engine, data, threads, args.seed))
    result.update(nuster_memory(engine))
    if lib in IVF_LIBS:
        result["nlist"] = nlist
    if isinstance(engine, FaissIvfEngine):
        result["train_seconds"] = engine.train_seconds
        result["add_seconds"] = engine.add_seconds
        result["train_points"] = engine.train_points
        result["niter"] = engine.niter
        result["faiss_index"] = engine.describe()
        result["code_size"] = int(engine.ivf.code_size)
    log(f"{lib}: built with {threads} thread(s) in {result['build_seconds']:.2f} s")
    values: Sequence[int] = ()
    if lib in IVF_LIBS:
        values = args.nprobes
    elif lib == "hnswlib" and threads == 1:
        values = args.efs
    result["sweep"] = run_sweep(engine, data, values, threads, args.repeats, lib)
    if lib == "faiss-ivf" and threads == 1:
        del engine
        matched = FaissIvfEngine(nlist, matched=True)
        start = time.perf_counter()
        matched.build(data.base, data.metric, 1, args.seed)
        seconds = time.perf_counter() - start
        recall = {}
        for p in args.nprobes:
            matched.set_ef(p)
            found = matched.batch(data.queries, 1)
            recall[str(p)] = ann.recalls(
                found, data.truth_ids, data.truth_dists, data.base, data.queries, data.metric
            )[0]
        result["matched"] = {
            "build_seconds": seconds,
            "train_seconds": matched.train_seconds,
            "add_seconds": matched.add_seconds,
            "train_points": matched.train_points,
            "niter": matched.niter,
            "batch_recall": recall,
        }
        log(f"faiss-ivf matched training: built in {seconds:.2f} s")
    result["load_average_end"] = load_average()
    ann.emit(result)


def worker_interleaved(args: argparse.Namespace) -> None:
    """The libraries of ``args.interleaved_libs`` (one group of INTERLEAVED_GROUPS) built
    in this one process (1 thread), then at each nprobe of ``args.interleaved_nprobes``
    their single-query loops alternated round by round, the order rotating."""
    data = ann.load_worker_data(args.data)
    nlist = args.nlist or auto_nlist(data.base.shape[0])
    engines = {
        lib: make_engine(lib, nlist, args.nlist, args.rabitq_k_factor, args.pq_k_factor)
        for lib in args.interleaved_libs
    }
    for lib, engine in engines.items():
        engine.build(data.base, data.metric, 1, args.seed)
        log(f"interleaved: {lib} built")
    rows = {lib: engine.query_rows(data.queries) for lib, engine in engines.items()}
    nq = data.queries.shape[0]
    libs = list(engines)
    out: Dict[str, Any] = {}
    for p in args.interleaved_nprobes:
        fns: Dict[str, Callable[[Any], Any]] = {}
        for lib in libs:
            engines[lib].set_ef(p)
            fns[lib] = engines[lib].one_query_fn()
            ann.time_loop(fns[lib], rows[lib])  # warm-up
        samples: Dict[str, List[float]] = {lib: [] for lib in libs}
        for r in range(args.rounds):
            for i in range(len(libs)):
                lib = libs[(i + r) % len(libs)]
                samples[lib].append(ann.time_loop(fns[lib], rows[lib]))
        out[str(p)] = {lib: {"qps": nq / median(t), "samples": t} for lib, t in samples.items()}
        log(
            f"interleaved nprobe {p}: "
            + ", ".join(f"{k} {v['qps']:,.0f}" for k, v in out[str(p)].items())
        )
    ann.emit({"interleaved": out, "libs": libs, "rounds": args.rounds, "queries": nq})


def worker_reopen(args: argparse.Namespace) -> None:
    """An IVF database on disk (one ``bulk_add``, closed: sealed with its lists file),
    then ``args.repeats`` timed opens followed by one search each, from the seal's lists;
    then the same with a byte of the lists file flipped, where each open trains the lists
    again (and seals them, so the file is damaged again before each of those opens)."""
    import nusterdb

    data = ann.load_worker_data(args.data)
    n, dim = data.base.shape
    path = Path(args.data) / "reopen-db"
    cfg = nusterdb.DatabaseConfig(dim, index_type="ivf", distance_metric=data.metric)
    with nusterdb.NusterDB(str(path), cfg) as db:
        db.bulk_add(np.arange(n, dtype=np.int64), data.base)
    q = data.queries[0]

    def timed_open() -> Tuple[float, str]:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            db = nusterdb.NusterDB.open(str(path))
        db.search(q, K)
        seconds = time.perf_counter() - start
        state = str(db.graph_load()["state"])
        db.close()
        return seconds, state

    def damage() -> None:
        (lists,) = path.glob("segment-*.lists")
        raw = bytearray(lists.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        lists.write_bytes(bytes(raw))

    restored = [timed_open() for _ in range(args.repeats)]
    retrained = []
    for _ in range(args.repeats):
        damage()
        retrained.append(timed_open())
    out = {
        "rows": n,
        "restored_seconds": [s for s, _ in restored],
        "restored_states": sorted({st for _, st in restored}),
        "retrained_seconds": [s for s, _ in retrained],
        "retrained_states": sorted({st for _, st in retrained}),
    }
    log(
        f"reopen: from the lists file {median(out['restored_seconds']):.3f} s, "
        f"training again {median(out['retrained_seconds']):.3f} s"
    )
    ann.emit({"reopen": out})


#: Rows of the small database the resident-memory worker opens and searches first.
WARM_ROWS = 2_000

#: The storage engine's parts of ``stats().memory_by_part`` (RocksDB's memtables, block
#: cache and table readers), apart from the index and maps.
STORAGE_PARTS = ("memtables", "block_cache", "table_readers")


def resident_path(args: argparse.Namespace) -> Path:
    """The resident-memory section's database of ``args.resident_quantization``."""
    return Path(args.data) / f"resident-db-{args.resident_quantization}"


def worker_resident_build(args: argparse.Namespace) -> None:
    """The on-disk database of the resident-memory section: IVF with 1-bit codes
    (``args.resident_quantization``), one ``bulk_add``, closed (sealed: rows, lists),
    opened and closed once more (RocksDB's write-ahead log replayed into table files, so
    the measured opens do not)."""
    import nusterdb

    data = ann.load_worker_data(args.data)
    dim = data.base.shape[1]
    path = resident_path(args)
    cfg = nusterdb.DatabaseConfig(
        dim,
        index_type="ivf",
        distance_metric=data.metric,
        quantization=args.resident_quantization,
    )
    for where, rows in (
        (path, data.base),
        (path.with_name(f"warm-db-{args.resident_quantization}"), data.base[:WARM_ROWS]),
    ):
        with nusterdb.NusterDB(str(where), cfg) as db:
            db.bulk_add(np.arange(len(rows), dtype=np.int64), rows)
        nusterdb.NusterDB.open(str(where)).close()
    ann.emit({"path": str(path)})


def worker_resident(args: argparse.Namespace) -> None:
    """VmRSS of a fresh process before and after an open of the resident-memory
    database with ``vectors=args.vectors_mode`` and ``args.resident_searches`` single
    searches at ``nprobe=args.resident_nprobe`` (the queries in turn); recall@10 of the
    first pass over the queries, ``db.stats()``."""
    import nusterdb

    data = ann.load_worker_data(args.data)
    n, dim = data.base.shape
    path = resident_path(args)
    # The same open and searches on a small database first: the library's code pages
    # and the storage engine's fixed allocations are then in the baseline, so the
    # increase below is what the rows cost.
    with nusterdb.NusterDB.open(
        str(path.with_name(f"warm-db-{args.resident_quantization}")), vectors=args.vectors_mode
    ) as db:
        for q in data.queries[:100]:
            db.search(q, k=K, nprobe=args.resident_nprobe)
    base_kib = ann.proc_status_kib("VmRSS")
    start = time.perf_counter()
    db = nusterdb.NusterDB.open(str(path), vectors=args.vectors_mode)
    opened = time.perf_counter() - start
    nq = len(data.queries)
    found = np.full((nq, K), -1, dtype=np.int64)
    start = time.perf_counter()
    for i in range(args.resident_searches):
        hits = db.search(data.queries[i % nq], k=K, nprobe=args.resident_nprobe)
        if i < nq:
            found[i, : len(hits)] = [h[0] for h in hits]
    searched = time.perf_counter() - start
    after_kib = ann.proc_status_kib("VmRSS")
    stats = db.stats()
    recall, _ = ann.recalls(
        found, data.truth_ids, data.truth_dists, data.base, data.queries, data.metric
    )
    out = {
        "vectors": args.vectors_mode,
        "quantization": args.resident_quantization,
        "rows": n,
        "raw_bytes": n * dim * 4,
        "rss_base_kib": base_kib,
        "rss_after_kib": after_kib,
        "memory_bytes": stats.memory_bytes,
        "memory_by_part": dict(stats.memory_by_part),
        "mapped_bytes": stats.mapped_bytes,
        "mapped_resident_bytes": stats.mapped_resident_bytes,
        "open_s": opened,
        "searches": args.resident_searches,
        "qps": args.resident_searches / searched,
        "nprobe": args.resident_nprobe,
        "recall": recall,
    }
    db.close()
    ann.emit(out)


def print_resident_report(results: Sequence[Dict[str, Any]]) -> None:
    rows = []
    for r in results:
        raw = r["raw_bytes"]
        grown = (r["rss_after_kib"] - r["rss_base_kib"]) * 1024
        parts = r["memory_by_part"]
        own = sum(v for k, v in parts.items() if k not in STORAGE_PARTS)
        resident = r["mapped_resident_bytes"]
        rows.append(
            (
                r.get("quantization", "rabitq"),
                r["vectors"],
                f"{grown / 2**20:.1f} MiB = {grown / raw:.3f}x",
                f"{own / 2**20:.1f} MiB = {own / raw:.3f}x",
                ", ".join(f"{k} {v / r['rows']:.0f}" for k, v in parts.items() if v),
                "n/a" if resident is None else f"{resident / 2**20:.1f} MiB",
                f"{r['open_s']:.3f}",
                r["nprobe"],
                f"{r['recall']:.4f}",
                f"{r['qps']:,.0f}",
            )
        )
    r0 = results[0]
    print_table(
        [
            "codes",
            "vectors",
            "VmRSS increase (x raw)",
            "index + maps (x raw)",
            "stats() bytes per row by part",
            "mapped resident",
            "open (s)",
            "nprobe",
            "recall@10",
            "QPS",
        ],
        rows,
        title=(
            f"Resident memory: IVF + 1-bit codes on disk, {r0['rows']:,} rows "
            f"({r0['raw_bytes'] / 2**20:.1f} MiB of float32), a fresh process opening it "
            f"and running {r0['searches']:,} single searches at the first nprobe of the "
            "codes' sweep reaching recall 0.95:"
        ),
    )


def print_reopen_report(result: Dict[str, Any]) -> None:
    r = result["reopen"]
    print_table(
        ["open of the sealed IVF database, then one search", "median (s)", "runs (s)", "state"],
        [
            (
                "lists read from the seal's lists file",
                f"{median(r['restored_seconds']):.3f}",
                ", ".join(f"{s:.3f}" for s in r["restored_seconds"]),
                "/".join(r["restored_states"]),
            ),
            (
                "lists file damaged: trained again",
                f"{median(r['retrained_seconds']):.3f}",
                ", ".join(f"{s:.3f}" for s in r["retrained_seconds"]),
                "/".join(r["retrained_states"]),
            ),
        ],
        title=f"Reopen ({r['rows']:,} rows on disk, default threads):",
    )


def run_worker(
    args: List[str], env_extra: Dict[str, str], settle: float = SETTLE_SECONDS
) -> Dict[str, Any]:
    """ann.py's worker runner, on this script."""
    return ann.run_worker(args, env_extra, settle, Path(__file__).resolve())


def thread_env(threads: int) -> Dict[str, str]:
    """Every pool at ``threads``, faiss's OpenMP OpenBLAS (its k-means) included."""
    t = str(threads)
    return {"RAYON_NUM_THREADS": t, "OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}


# ---------------------------------------------------------------------------- report


def max_recall(sweep: Sequence[Dict[str, Any]]) -> str:
    best = max(sweep, key=lambda p: p["recall"])
    return f"not reached (max {best['recall']:.4f} at {best['p']})"


def ratio(a: Optional[float], b: Optional[float], digits: int = 2) -> str:
    return f"{a / b:.{digits}f}" if a and b else "n/a"


def at(sweep: Sequence[Dict[str, Any]], p: int) -> Optional[Dict[str, Any]]:
    for point in sweep:
        if point["p"] == p:
            return point
    return None


def mem_cell(r: Dict[str, Any]) -> str:
    if "memory_bytes" not in r:
        return "-"
    parts = r["memory_by_part"]
    index = sum(v for k, v in parts.items() if k in ("index", "graph", "scratch"))
    codes = f", codes {fmt_bytes(parts['codes'])}" if "codes" in parts else ""
    return (
        f"{fmt_bytes(r['memory_bytes'])} (vectors {fmt_bytes(parts.get('vectors', 0))}, "
        f"index {fmt_bytes(index)}{codes})"
    )


def codes_cell(r: Dict[str, Any], n: int) -> str:
    """The codes: NusterDB's ``codes`` memory part, faiss's n x code_size (its IVF
    indexes with codes; their lists' ids and block padding not counted)."""
    if "codes" in r.get("memory_by_part", {}):
        size = r["memory_by_part"]["codes"]
        return f"{fmt_bytes(size)} ({size / n:.1f} B/row)"
    if r.get("code_size") and r["lib"] != "faiss-ivf":
        return f"{fmt_bytes(n * r['code_size'])} (code_size {r['code_size']} B)"
    return "-"


def print_build_report(
    ds: datasets.Dataset,
    phase1: Dict[str, Dict[str, Any]],
    phase2: Dict[str, Dict[str, Any]],
    threads: int,
) -> Dict[str, Any]:
    n, dim = ds.base.shape
    raw = n * dim * 4
    libs = list(phase1)

    def build2(lib: str) -> str:
        return f"{phase2[lib]['build_seconds']:.2f}" if lib in phase2 else "-"

    def structure(lib: str) -> str:
        r = phase1[lib]
        if lib == "nusterdb-ivf":
            return f"nlist {r['nlist']}"
        if lib == "nusterdb-ivf-rabitq":
            return f"nlist {r['nlist']}, 1-bit RaBitQ codes"
        if lib == "nusterdb-ivf-binary":
            return f"nlist {r['nlist']}, binary codes"
        if "faiss_index" in r:
            return (
                f"{r['faiss_index']}, nlist {r['nlist']}; train {r['train_seconds']:.2f} s on "
                f"{r['train_points']:,} rows x {r['niter']} iters + add {r['add_seconds']:.2f} s"
            )
        if lib in HNSW_LIBS:
            return f"M={ann.M}, ef_construction={ann.EF_CONSTRUCTION}"
        return "no index"

    print_table(
        [
            "library",
            "version",
            "index",
            "build 1 thread (s)",
            f"build {threads} threads (s)",
            "load avg at start (1 / N threads)",
        ],
        [
            (
                lib,
                phase1[lib]["version"],
                structure(lib),
                f"{phase1[lib]['build_seconds']:.2f}",
                build2(lib),
                " / ".join(
                    r["load_average_start"].split()[0]
                    for r in [phase1[lib]] + ([phase2[lib]] if lib in phase2 else [])
                ),
            )
            for lib in libs
        ],
        title=(
            f"Build of {n:,} x {dim} rows (NusterDB: one bulk_add, IVF training included; "
            "faiss: train + add):"
        ),
        right=[3, 4],
    )
    if "faiss-ivf" in phase1 and "matched" in phase1["faiss-ivf"]:
        m = phase1["faiss-ivf"]["matched"]
        print(
            f"faiss-ivf with NusterDB's training budget ({m['train_points']:,} rows x "
            f"{m['niter']} iters), 1 thread: {m['build_seconds']:.2f} s (train "
            f"{m['train_seconds']:.2f} s + add {m['add_seconds']:.2f} s); batch recall@10 "
            + ", ".join(f"nprobe {p}: {r:.4f}" for p, r in m["batch_recall"].items())
        )
        print()
    pairs = [
        ("nusterdb-ivf", "nusterdb-hnsw"),
        ("nusterdb-ivf", "hnswlib"),
        ("faiss-ivf", "hnswlib"),
        ("faiss-ivf", "nusterdb-hnsw"),
        ("nusterdb-ivf", "faiss-ivf"),
        ("nusterdb-ivf", "nusterdb-flat"),
        ("nusterdb-ivf-rabitq", "nusterdb-ivf"),
        ("nusterdb-ivf-rabitq", "nusterdb-hnsw"),
        ("nusterdb-ivf-rabitq", "faiss-ivf-rabitq"),
        ("nusterdb-ivf-rabitq", "faiss-ivf-rabitq-fs"),
        ("nusterdb-ivf-rabitq", "faiss-ivfpq-fs"),
        ("nusterdb-ivf-binary", "nusterdb-ivf-rabitq"),
    ]
    ratios: Dict[str, Dict[str, Optional[float]]] = {}
    rows: List[Sequence[object]] = []
    for a, b in pairs:
        if a not in phase1 or b not in phase1:
            continue
        r1 = phase1[a]["build_seconds"] / phase1[b]["build_seconds"]
        r2 = (
            phase2[a]["build_seconds"] / phase2[b]["build_seconds"]
            if a in phase2 and b in phase2
            else None
        )
        # Keyed by thread count ("1", and str(threads) when phase 2 ran).
        ratios[f"{a}/{b}"] = {"1": r1} if r2 is None else {"1": r1, str(threads): r2}
        rows.append((f"{a} / {b}", f"{r1:.3f}", f"{r2:.3f}" if r2 is not None else "-"))
    print_table(
        ["build time ratio", "1 thread", f"{threads} threads"],
        rows,
        title="Build time ratios (< 1: the first builds faster):",
    )
    print_table(
        [
            "library",
            "RSS increase (build)",
            "peak RSS increase",
            "RSS increase / raw vectors",
            "db.stats().memory_bytes",
            "codes",
        ],
        [
            (
                lib,
                fmt_bytes(phase1[lib]["rss_delta_kib"] * 1024),
                fmt_bytes(phase1[lib]["peak_delta_kib"] * 1024),
                f"{phase1[lib]['rss_delta_kib'] * 1024 / raw:.2f}",
                mem_cell(phase1[lib]),
                codes_cell(phase1[lib], n),
            )
            for lib in libs
        ],
        title=(
            f"Memory of the 1-thread build; raw vectors {n:,} x {dim} x 4 B = {fmt_bytes(raw)} "
            "(memory_bytes also counts RocksDB's memtables and block cache; every IVF "
            "library with codes keeps the full rows too, for its exact scores):"
        ),
        right=[1, 2, 3],
    )
    return ratios


def print_pair_sweep(
    a: str,
    b: str,
    phase1: Dict[str, Dict[str, Any]],
    phase2: Dict[str, Dict[str, Any]],
    threads: int,
    nq: int,
) -> None:
    """``a`` against ``b`` at each nprobe of the sweep (ratio = a / b)."""
    ours, theirs = phase1[a], phase1[b]
    o2 = phase2.get(a, {}).get("sweep", [])
    t2 = phase2.get(b, {}).get("sweep", [])
    rows: List[Sequence[object]] = []
    for p in ours["sweep"]:
        f = at(theirs["sweep"], p["p"])
        if f is None:
            continue
        a2, b2 = at(o2, p["p"]), at(t2, p["p"])
        rows.append(
            (
                p["p"],
                f"{p['recall']:.4f}",
                f"{f['recall']:.4f}",
                fmt_rate(p["single_qps"]),
                fmt_rate(f["single_qps"]),
                ratio(p["single_qps"], f["single_qps"]),
                fmt_rate(p["batch_qps"]),
                fmt_rate(f["batch_qps"]),
                ratio(p["batch_qps"], f["batch_qps"]),
                (
                    f"{fmt_rate(a2['batch_qps'])} / {fmt_rate(b2['batch_qps'])}"
                    if a2 and b2
                    else "-"
                ),
                ratio(a2["batch_qps"], b2["batch_qps"]) if a2 and b2 else "-",
            )
        )
    print_table(
        [
            "nprobe",
            "recall A",
            "recall B",
            "single QPS A",
            "single QPS B",
            "ratio",
            "batch QPS A",
            "batch QPS B",
            "ratio",
            f"batch {threads} thr A / B",
            "ratio",
        ],
        rows,
        title=(
            f"A = {a}, B = {b}: sweep over nprobe of {ours['nlist']} lists (k={K}, "
            f"{nq:,} queries; single-query and batch with 1 thread; ratio = A / B):"
        ),
    )


def print_search_report(
    ds: datasets.Dataset,
    phase1: Dict[str, Dict[str, Any]],
    phase2: Dict[str, Dict[str, Any]],
    threads: int,
) -> Dict[str, Any]:
    nq = ds.queries.shape[0]
    for a, b in PAIRS:
        if a in phase1 and b in phase1:
            print_pair_sweep(a, b, phase1, phase2, threads, nq)
    odd = [
        f"{lib} {p['p']}"
        for lib in IVF_LIBS
        if lib in phase1
        for p in phase1[lib]["sweep"]
        if abs(p["batch_recall"] - p["recall"]) > 0.002
    ]
    if odd:
        print(f"NOTE: batch recall differs from single-query recall at nprobe {odd}\n")
    if "hnswlib" in phase1 and phase1["hnswlib"]["sweep"]:
        print_table(
            ["ef", "recall@10", "single-query QPS", "batch QPS 1 thread"],
            [
                (
                    p["p"],
                    f"{p['recall']:.4f}",
                    fmt_rate(p["single_qps"]),
                    fmt_rate(p["batch_qps"]),
                )
                for p in phase1["hnswlib"]["sweep"]
            ],
            title=f"hnswlib (reference): sweep over ef_search (k={K}, {nq:,} queries, 1 thread):",
        )
    targets: Dict[str, Any] = {}
    rows = []
    for target in TARGETS:
        for lib in SWEPT:
            if lib not in phase1 or not phase1[lib]["sweep"]:
                continue
            sweep = phase1[lib]["sweep"]
            p = ann.first_reaching(sweep, target)
            q = None
            if p is not None and lib in phase2:
                q = at(phase2[lib]["sweep"], p["p"])
            targets[f"{lib}@{target}"] = {"phase1": p, "phase2": q}
            rows.append(
                (
                    f"{target:.2f}",
                    lib,
                    ("ef " if lib == "hnswlib" else "nprobe ")
                    + (str(p["p"]) if p else max_recall(sweep)),
                    f"{p['recall']:.4f}" if p else "-",
                    fmt_rate(p["single_qps"]) if p else "-",
                    fmt_rate(p["batch_qps"]) if p else "-",
                    fmt_rate(q["batch_qps"]) if q else "-",
                )
            )
    print_table(
        [
            "recall@10 ≥",
            "library",
            "first nprobe / ef reaching it",
            "recall@10",
            "single-query QPS",
            "batch QPS 1 thread",
            f"batch QPS {threads} threads",
        ],
        rows,
        title="QPS at the first nprobe (ef) of the sweep whose recall@10 reaches the target "
        "(no interpolation):",
        right=[3, 4, 5, 6],
    )
    ratio_rows: List[Tuple[str, ...]] = []
    for target in TARGETS:
        for a_lib, b_lib in (*PAIRS, *HNSWLIB_PAIRS):
            if a_lib not in phase1 or b_lib not in phase1:
                continue
            a = targets.get(f"{a_lib}@{target}", {})
            b = targets.get(f"{b_lib}@{target}", {})
            a1, b1 = a.get("phase1"), b.get("phase1")
            a2, b2 = a.get("phase2"), b.get("phase2")
            ratio_rows.append(
                (
                    f"{target:.2f}",
                    f"{a_lib} / {b_lib}",
                    ratio(a1 and a1["single_qps"], b1 and b1["single_qps"]),
                    ratio(a1 and a1["batch_qps"], b1 and b1["batch_qps"]),
                    ratio(a2 and a2["batch_qps"], b2 and b2["batch_qps"]),
                )
            )
    if ratio_rows:
        print_table(
            [
                "recall@10 ≥",
                "first / second",
                "single-query",
                "batch 1 thread",
                f"batch {threads} threads",
            ],
            ratio_rows,
            title="Ratios of QPS at equal recall target, each at its own first nprobe (ef) "
            "reaching it (> 1: the first faster; n/a: one side never reached the target or "
            "was not measured so):",
            right=[2, 3, 4],
        )
    return targets


def print_interleaved_report(result: Dict[str, Any], phase1: Dict[str, Dict[str, Any]]) -> None:
    rows = []
    nq = result["queries"]
    libs: List[str] = result["libs"]
    first = libs[0]
    for p, per_lib in result["interleaved"].items():
        a = per_lib[first]
        for lib in libs:
            v = per_lib[lib]
            point = at(phase1[lib]["sweep"], int(p)) if lib in phase1 else None
            rows.append(
                (
                    p,
                    lib,
                    f"{point['recall']:.4f}" if point else "-",
                    fmt_rate(v["qps"]),
                    f"{fmt_rate(nq / max(v['samples']))}-{fmt_rate(nq / min(v['samples']))}",
                    f"{a['qps'] / v['qps']:.2f}" if lib != first else "",
                    f"{1e6 / a['qps'] - 1e6 / v['qps']:.0f}" if lib != first else "",
                )
            )
    print_table(
        [
            "nprobe",
            "library",
            "recall@10 (sweep)",
            "single-query QPS (median)",
            "range",
            f"{first} / library",
            f"extra µs per query ({first} - library)",
        ],
        rows,
        title=(
            f"Cross-check, single-query QPS of {', '.join(libs)} built in one process (1 "
            f"thread), loops alternated over {result['rounds']} rounds in rotating order, "
            "at equal nprobe (those where any of them first reached a recall target):"
        ),
        right=[2, 3, 4, 5, 6],
    )


def print_summary(results: Dict[str, Any], threads: int) -> None:
    section("summary")
    rows: List[Sequence[object]] = []
    for name, r in results["datasets"].items():
        p1, p2 = r["phase1"], r["phase2"]
        n = r["rows"]
        for lib in p1:
            rows.append(
                (
                    name,
                    lib,
                    f"{p1[lib]['build_seconds']:.2f}",
                    f"{p2[lib]['build_seconds']:.2f}" if lib in p2 else "-",
                    fmt_bytes(p1[lib]["rss_delta_kib"] * 1024),
                    fmt_bytes(p1[lib]["memory_bytes"]) if "memory_bytes" in p1[lib] else "-",
                    codes_cell(p1[lib], n),
                )
            )
    print_table(
        [
            "dataset",
            "library",
            "build 1 thread (s)",
            f"build {threads} threads (s)",
            "RSS increase",
            "memory_bytes",
            "codes",
        ],
        rows,
        title="Builds and memory:",
    )
    rows = []
    for name, r in results["datasets"].items():
        for key, v in r["build_ratios"].items():
            r2 = v.get(str(threads)) if threads > 1 else None
            rows.append((name, key, f"{v['1']:.3f}", f"{r2:.3f}" if r2 is not None else "-"))
    print_table(
        ["dataset", "build time ratio", "1 thread", f"{threads} threads"],
        rows,
        title="Build time ratios (< 1: the first builds faster):",
    )
    swept = [lib for lib in SWEPT if any(lib in r["phase1"] for r in results["datasets"].values())]
    pairs = [(a, b) for a, b in PAIRS if a in swept and b in swept]
    rows = []
    for name, r in results["datasets"].items():
        t = r["targets"]
        for target in TARGETS:
            cells: List[str] = [name, f"{target:.2f}"]
            for lib in swept:
                p = t.get(f"{lib}@{target}", {}).get("phase1")
                knob = "ef" if lib == "hnswlib" else "nprobe"
                cells.append(f"{fmt_rate(p['single_qps'])} ({knob} {p['p']})" if p else "-")
            for a_lib, b_lib in pairs:
                a = t.get(f"{a_lib}@{target}", {}).get("phase1")
                b = t.get(f"{b_lib}@{target}", {}).get("phase1")
                cells.append(ratio(a and a["single_qps"], b and b["single_qps"]))
            rows.append(cells)
    print_table(
        [
            "dataset",
            "recall@10 ≥",
            *swept,
            *(f"{a} / {b}" for a, b in pairs),
        ],
        rows,
        title="Single-query QPS (1 thread) at the first nprobe / ef reaching each recall, "
        "and the ratios of those QPS:",
    )
    rows = []
    for name, r in results["datasets"].items():
        for group in r.get("interleaved", []):
            first = group["libs"][0]
            for p, per_lib in group["interleaved"].items():
                for lib in group["libs"][1:]:
                    rows.append(
                        (
                            name,
                            p,
                            f"{first} / {lib}",
                            f"{per_lib[first]['qps'] / per_lib[lib]['qps']:.2f}",
                        )
                    )
    if rows:
        print_table(
            ["dataset", "nprobe", "first / second", "single-query QPS ratio"],
            rows,
            title="Cross-check ratios, one process, equal nprobe (> 1: the first faster):",
            right=[1, 3],
        )


# ------------------------------------------------------------------------------ main


def bench_dataset(
    name: str, sizes: Sizes, args: argparse.Namespace, tmpdir: Path
) -> Dict[str, Any]:
    ds = datasets.load(name, args.seed)
    n_rows = sizes.synthetic_rows if name == "synthetic" else sizes.real_rows
    if n_rows is not None or sizes.queries < ds.queries.shape[0]:
        ds = ds.head(n_rows or ds.base.shape[0], sizes.queries)
    n = ds.base.shape[0]
    nlist = args.nlist or auto_nlist(n)
    rabitq_kf = args.rabitq_k_factor or K_FACTORS[name][0]
    pq_kf = args.pq_k_factor or K_FACTORS[name][1]
    section(f"{name}: {ds.describe()}")
    for key, value in ds.info.items():
        print(f"- {key}: {value}")
    print(
        f"- nlist: {nlist} ("
        + ("--nlist" if args.nlist else "NusterDB's automatic ⌊√n⌋, passed to faiss too")
        + f"); nprobe sweep {list(sizes.nprobes)}; hnswlib ef sweep {list(sizes.efs)}"
    )
    print(
        f"- faiss IndexRefineFlat k_factor: {rabitq_kf} around the RaBitQ indexes, {pq_kf} "
        "around IVF-PQ fast-scan"
    )
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
    common_args = [
        "--data",
        str(directory),
        "--repeats",
        str(sizes.repeats),
        "--seed",
        str(args.seed),
        "--nprobes",
        ",".join(map(str, sizes.nprobes)),
        "--efs",
        ",".join(map(str, sizes.efs)),
    ]
    if args.nlist:
        common_args += ["--nlist", str(args.nlist)]
    common_args += ["--rabitq-k-factor", str(rabitq_kf), "--pq-k-factor", str(pq_kf)]
    settle = QUICK_SETTLE_SECONDS if args.quick else SETTLE_SECONDS
    phase1: Dict[str, Dict[str, Any]] = {}
    phase2: Dict[str, Dict[str, Any]] = {}
    for lib in args.libs:
        cmd = ["--worker", "run", "--lib", lib, "--threads", "1", *common_args]
        phase1[lib] = run_worker(cmd, thread_env(1), settle)
    if args.threads > 1:
        for lib in args.libs:
            cmd = ["--worker", "run", "--lib", lib, "--threads", str(args.threads), *common_args]
            phase2[lib] = run_worker(cmd, thread_env(args.threads), settle)
    build_ratios = print_build_report(ds, phase1, phase2, args.threads)
    targets = print_search_report(ds, phase1, phase2, args.threads)
    out: Dict[str, Any] = {
        "dataset": ds.describe(),
        "info": ds.info,
        "rows": n,
        "nlist": nlist,
        "k_factors": {"rabitq": rabitq_kf, "pq": pq_kf},
        "phase1": phase1,
        "phase2": phase2,
        "build_ratios": build_ratios,
        "targets": targets,
    }
    out["interleaved"] = []
    for group in INTERLEAVED_GROUPS if args.interleaved_rounds > 0 else ():
        libs = [lib for lib in group if lib in args.libs]
        if group[0] not in libs or len(libs) < 2:
            continue
        probes = sorted(
            {
                int(p["p"])
                for lib in libs
                for target in TARGETS
                if (p := ann.first_reaching(phase1[lib]["sweep"], target)) is not None
            }
        )
        if not probes:
            continue
        inter = run_worker(
            [
                "--worker",
                "interleaved",
                "--interleaved-libs",
                ",".join(libs),
                "--interleaved-nprobes",
                ",".join(map(str, probes)),
                "--rounds",
                str(args.interleaved_rounds),
                *common_args,
            ],
            thread_env(1),
            settle,
        )
        print_interleaved_report(inter, phase1)
        out["interleaved"].append(inter)
    if "nusterdb-ivf" in args.libs:
        reopen = run_worker(["--worker", "reopen", *common_args], thread_env(args.threads), settle)
        print_reopen_report(reopen)
        out["reopen"] = reopen
    coded = [q for q in ("rabitq", "binary") if f"nusterdb-ivf-{q}" in args.libs]
    if coded and args.resident_searches > 0:
        resident = []
        for quant in coded:
            which = ["--resident-quantization", quant]
            run_worker(
                ["--worker", "resident-build", *which, *common_args], thread_env(args.threads), 0.0
            )
            sweep = phase1[f"nusterdb-ivf-{quant}"]["sweep"]
            hit = ann.first_reaching(sweep, 0.95)
            nprobe = int(hit["p"]) if hit is not None else max(int(p["p"]) for p in sweep)
            resident += [
                run_worker(
                    [
                        "--worker",
                        "resident",
                        "--vectors-mode",
                        mode,
                        "--resident-nprobe",
                        str(nprobe),
                        "--resident-searches",
                        str(args.resident_searches),
                        *which,
                        *common_args,
                    ],
                    thread_env(1),
                    settle,
                )
                for mode in ("memory", "mmap", "disk")
            ]
        print_resident_report(resident)
        out["resident"] = resident
    return out


def int_list(text: str) -> List[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="Usage" + doc.split("Usage")[-1] if "Usage" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        choices=("synthetic", "real", "both", "wide", "wide-200k"),
        default="both",
        help=(
            "both: synthetic and real; wide: 50,000 x 1,536 clustered rows; wide-200k: "
            "200,000 of them (datasets.py)"
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.synthetic_rows:,} rows and {QUICK.queries} queries per dataset, "
        f"nprobes {list(QUICK_NPROBES)}, efs {list(QUICK_EFS)}",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads of phase 2 (multi-threaded builds, IVF batch search); 1 skips it "
        "(default: all cores)",
    )
    parser.add_argument(
        "--nlist",
        type=int,
        default=None,
        help="IVF list count for every IVF library (default: NusterDB's automatic ⌊√n⌋)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write every figure as JSON")
    parser.add_argument("--seed", type=int, default=datasets.DEFAULT_SEED)
    parser.add_argument(
        "--libs", default=",".join(LIBRARIES), help="comma-separated subset of libraries"
    )
    parser.add_argument(
        "--interleaved-rounds",
        type=int,
        default=5,
        help="rounds of the one-process NusterDB/faiss single-query cross-check (0: skip)",
    )
    parser.add_argument(
        "--rabitq-k-factor",
        type=int,
        default=None,
        help="IndexRefineFlat k_factor of faiss-ivf-rabitq and faiss-ivf-rabitq-fs on every "
        "dataset (default: "
        + ", ".join(f"{name} {kf[0]}" for name, kf in K_FACTORS.items())
        + "; on the real set 16 reaches recall 0.99)",
    )
    parser.add_argument(
        "--pq-k-factor",
        type=int,
        default=None,
        help="IndexRefineFlat k_factor of faiss-ivfpq-fs on every dataset (default: "
        + ", ".join(f"{name} {kf[1]}" for name, kf in K_FACTORS.items())
        + ")",
    )
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument(
        "--resident-searches",
        type=int,
        default=10_000,
        help="searches of the resident-memory section (nusterdb-ivf-rabitq with vectors "
        "'memory' and 'disk' on disk; 0 skips it)",
    )
    # Internal: one measurement in a subprocess.
    parser.add_argument(
        "--worker",
        choices=("run", "interleaved", "reopen", "resident-build", "resident"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--vectors-mode", default="memory", help=argparse.SUPPRESS)
    parser.add_argument("--resident-quantization", default="rabitq", help=argparse.SUPPRESS)
    parser.add_argument("--resident-nprobe", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--lib", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--nprobes", type=int_list, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--efs", type=int_list, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--interleaved-nprobes", type=int_list, default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--interleaved-libs",
        type=lambda text: [x for x in text.split(",") if x],
        default=None,
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--rounds", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.libs = [x for x in args.libs.split(",") if x]
    unknown = set(args.libs) - set(LIBRARIES)
    if unknown:
        parser.error(f"unknown libraries {sorted(unknown)}")
    if args.nlist is not None and not 1 <= args.nlist <= 65_536:
        parser.error("--nlist must be in 1..65536")
    for flag, value in (
        ("--rabitq-k-factor", args.rabitq_k_factor),
        ("--pq-k-factor", args.pq_k_factor),
    ):
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1")
        if value is None and args.worker in ("run", "interleaved"):
            parser.error(f"a worker needs {flag}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        workers: Dict[str, Callable[[argparse.Namespace], None]] = {
            "run": worker_run,
            "interleaved": worker_interleaved,
            "reopen": worker_reopen,
            "resident-build": worker_resident_build,
            "resident": worker_resident,
        }
        workers[args.worker](args)
        return 0
    sizes = QUICK if args.quick else FULL
    names = ["synthetic", "real"] if args.dataset == "both" else [args.dataset]
    title = "# NusterDB IVF benchmark" + (" (--quick)" if args.quick else "")
    results = start_run(title, args.threads)
    print(
        f"k={K}, nlist {args.nlist or 'automatic (⌊√n⌋)'}, nprobe sweep {list(sizes.nprobes)}, "
        f"HNSW M={ann.M} ef_construction={ann.EF_CONSTRUCTION}, hnswlib ef sweep "
        f"{list(sizes.efs)}, phase-2 threads {args.threads}, seed {args.seed}, timed "
        f"repeats {sizes.repeats}, libraries {args.libs}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nusterdb-ivf-", dir=args.tmpdir) as tmp:
        for name in names:
            results["datasets"][name] = bench_dataset(name, sizes, args, Path(tmp))
            if args.out is not None:
                args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print_summary(results, args.threads)
    end_run(started, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
