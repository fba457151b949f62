#!/usr/bin/env python3
"""Benchmarks of NusterDB's flat (exact) database against faiss-cpu and numpy.

Three sections, each printing tables (nothing here asserts a timing):

1. bulk_add: N x 128 float32 rows (default 1,000,000) from numpy into a persistent
   database in a temporary directory, in batches (default 100,000; one ``bulk_add``
   each); total and median-batch vectors/s, ``close()``, then ``NusterDB.open(path)``
   wall time (median of 3 reopen cycles, with ``vectors="mmap"`` — the default: the
   seal's rows mapped — and ``"memory"``: copied) with the rows' part of ``stats()`` and
   the bytes mapped, and the size of the directory.
2. exact ``batch_search`` QPS, k = 10, 1,000 queries on 100,000 x 384 clustered rows:
   NusterDB (in memory, euclidean and inner_product) vs faiss ``IndexFlatL2`` /
   ``IndexFlatIP`` vs numpy (``queries @ base.T`` in blocks of 256 queries, then
   ``np.argpartition``; base norms precomputed for L2). Recall@10 of every engine
   against an exact float64 numpy search and against numpy's float32 result, and
   NusterDB / faiss and NusterDB / numpy ratios, with 2 threads and with 1 thread.
   Each configuration runs in its own subprocess with its environment set before the
   libraries start their thread pools:
   NusterDB uses rayon's default pool (``RAYON_NUM_THREADS`` unset; it equals the
   core count, 2 here) or ``RAYON_NUM_THREADS=1``; faiss ``omp_set_num_threads``, and
   with 2 threads once more with ``OMP_WAIT_POLICY=PASSIVE`` ("faiss-passive": libgomp's
   default spinning is slow when another process takes a core; the ratios use the
   faster faiss); numpy runs with ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` removed
   (they slow a current numpy) and ``OPENBLAS_NUM_THREADS=1`` for one thread.
3. Python overhead: the median latency of one ``search`` call from Python (10,000 x
   128, k = 10, 2,000 calls) against the same ``Database::search`` call from Rust
   (``crates/nusterdb-core/examples/search_latency.rs``, run with ``cargo run
   --release -p nusterdb-core --example search_latency``; ``CARGO_TARGET_DIR`` as set,
   else ~/.cache/nusterdb/target) on the same data files, 5 alternating rounds, with
   rayon's default pool and with ``RAYON_NUM_THREADS=1``; the overhead in us and %.
   The Rust side is compiled from the working tree, the Python side is the installed
   package: the script warns when a source file is newer than the installed extension
   or cargo recompiled during the rounds.

Timings are medians of repeats; ratios compare figures from the same run on the same
data. ``--quick`` shrinks every size for a smoke run of well under a minute (once the
Rust example is built).

Usage (peers installed in their own venv, see benchmarks/requirements.txt):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv-bench/bin/python benchmarks/flat.py
    .venv-bench/bin/python benchmarks/flat.py --quick
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import nusterdb
from common import (
    F32,
    I64,
    OPENBLAS_TUNING_VARS,
    Timing,
    blas_info,
    clustered,
    dir_size,
    env_without,
    fmt_bytes,
    fmt_rate,
    load_average,
    median,
    print_environment,
    print_table,
    recall_at_k,
    section,
    time_once,
    time_repeats,
    write_f32,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TARGET_DIR = Path.home() / ".cache" / "nusterdb" / "target"
RESULT_PREFIX = "RESULT "
METRICS = ("euclidean", "inner_product")
#: Pause between timed runs of different engines, so one library's spinning worker
#: threads (OpenMP, rayon) have gone idle before the next one starts.
SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class Sizes:
    bulk_rows: int
    bulk_dim: int
    bulk_batch: int
    reopen_cycles: int
    search_rows: int
    search_dim: int
    queries: int
    k: int
    repeats: int
    latency_rows: int
    latency_dim: int
    latency_calls: int
    latency_rounds: int


DEFAULT_SIZES = Sizes(
    bulk_rows=1_000_000,
    bulk_dim=128,
    bulk_batch=100_000,
    reopen_cycles=3,
    search_rows=100_000,
    search_dim=384,
    queries=1_000,
    k=10,
    repeats=5,
    latency_rows=10_000,
    latency_dim=128,
    latency_calls=2_000,
    latency_rounds=5,
)
QUICK_SIZES = Sizes(
    bulk_rows=100_000,
    bulk_dim=128,
    bulk_batch=10_000,
    reopen_cycles=3,
    search_rows=10_000,
    search_dim=384,
    queries=200,
    k=10,
    repeats=3,
    latency_rows=10_000,
    latency_dim=128,
    latency_calls=500,
    latency_rounds=2,
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="Usage" + doc.split("Usage")[-1] if "Usage" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of well under a minute"
    )
    parser.add_argument(
        "--sections",
        type=int,
        nargs="+",
        choices=(1, 2, 3),
        default=[1, 2, 3],
        help="which sections to run (default: 1 2 3)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per search case")
    parser.add_argument("--seed", type=int, default=20240601, help="data seed")
    parser.add_argument(
        "--tmpdir", type=Path, default=None, help="where the temporary databases and files go"
    )
    parser.add_argument(
        "--skip-rust", action="store_true", help="section 3 without the Rust figure (no cargo)"
    )
    # Internal: one measurement in a subprocess whose environment the parent chose.
    parser.add_argument("--worker", choices=("numpy", "engines", "latency"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--truth", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--engines", default="nusterdb,faiss", help=argparse.SUPPRESS)
    parser.add_argument("--faiss-label", default="faiss", help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=2000, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def log(msg: str) -> None:
    """Progress, to stderr (the tables go to stdout)."""
    print(f"[flat.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- 1. bulk_add / reopen


def bench_bulk_add(sizes: Sizes, seed: int, tmpdir: Optional[Path]) -> None:
    n, dim, batch = sizes.bulk_rows, sizes.bulk_dim, sizes.bulk_batch
    section(f"1. bulk_add {n:,} x {dim} float32 (batches of {batch:,}), close, reopen")
    log(f"generating {n:,} x {dim} rows")
    data, _ = clustered(n, 0, dim, seed)
    with tempfile.TemporaryDirectory(prefix="nusterdb-bench-bulk-", dir=tmpdir) as tmp:
        path = Path(tmp) / "db"
        config = nusterdb.DatabaseConfig(dim)
        db = nusterdb.NusterDB(path, config)
        batch_seconds: List[float] = []
        log(f"bulk_add into {path}")
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            ids = np.arange(start, stop, dtype=np.int64)
            rows = data[start:stop]
            batch_seconds.append(time_once(partial(db.bulk_add, ids, rows)))
        count = len(db)
        close_seconds = time_once(db.close)
        disk_after_close = dir_size(path)
        del data
        batch_rates = [
            (min(n, s + batch) - s) / t for s, t in zip(range(0, n, batch), batch_seconds)
        ]
        reopen: Dict[str, List[float]] = {"mmap": [], "memory": []}
        held: Dict[str, Tuple[int, int]] = {}
        reopened_count = -1
        stats_disk = -1
        for _ in range(sizes.reopen_cycles):
            for mode, times in reopen.items():
                start_t = time.perf_counter()
                db = nusterdb.NusterDB.open(path, vectors=mode)
                times.append(time.perf_counter() - start_t)
                reopened_count = len(db)
                stats = db.stats()
                stats_disk = stats.disk_bytes
                held[mode] = (stats.memory_by_part["vectors"], stats.mapped_bytes)
                db.close()
        disk = dir_size(path)
    storage = config.storage_config
    add_total = sum(batch_seconds)
    print_table(
        ["figure", "value"],
        [
            ("vectors added (len after adds)", f"{count:,}"),
            ("bulk_add calls", f"{len(batch_seconds)}"),
            ("bulk_add wall time, all batches", f"{add_total:.2f} s"),
            ("total throughput", f"{fmt_rate(n / add_total)} vectors/s"),
            ("median batch throughput", f"{fmt_rate(median(batch_rates))} vectors/s"),
            (
                "slowest / fastest batch",
                f"{fmt_rate(min(batch_rates))} / {fmt_rate(max(batch_rates))} vectors/s",
            ),
            ("close()", f"{close_seconds:.3f} s"),
            *(
                (
                    f"NusterDB.open(path, vectors={mode!r}), median of {len(times)}",
                    f"{median(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)}); "
                    f"rows' part of stats() {fmt_bytes(held[mode][0])}, mapped "
                    f"{fmt_bytes(held[mode][1])}",
                )
                for mode, times in reopen.items()
            ),
            ("vectors after reopen", f"{reopened_count:,}"),
            ("directory size after close()", f"{fmt_bytes(disk_after_close)}"),
            ("directory size after the reopens", f"{fmt_bytes(disk)} ({disk:,} bytes)"),
            ("stats().disk_bytes after reopen", f"{fmt_bytes(stats_disk)}"),
            ("raw vector bytes (n x dim x 4)", f"{fmt_bytes(n * dim * 4)}"),
            ("directory size / raw vector bytes", f"{disk / (n * dim * 4):.2f}"),
            (
                "storage config (defaults)",
                f"compression={storage.compression}, sync_writes={storage.sync_writes}, "
                f"write_buffer={storage.write_buffer_size_mb} MiB",
            ),
        ],
        right=[],
    )


# ------------------------------------------------------------------- 2. exact search


def numpy_search(base: F32, sqnorms: F32, queries: F32, k: int, metric: str) -> I64:
    """Exact top-k: ``queries @ base.T`` in blocks, then argpartition and a sort."""
    n = queries.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    block = 256
    buf = np.empty((min(block, n), base.shape[0]), dtype=np.float32)
    for start in range(0, n, block):
        q = queries[start : start + block]
        scores = buf[: q.shape[0]]
        np.matmul(q, base.T, out=scores)
        if metric == "euclidean":
            # |x - q|^2 = |x|^2 - 2 x.q + |q|^2; the last term does not change the order.
            scores *= np.float32(-2.0)
            scores += sqnorms
        else:
            np.negative(scores, out=scores)
        part = np.argpartition(scores, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1)
        out[start : start + q.shape[0]] = np.take_along_axis(part, order, axis=1)
    return out


def exact_f64(base: F32, queries: F32, k: int, metric: str) -> I64:
    """The ground truth: the same search in float64."""
    b = base.astype(np.float64)
    norms = np.einsum("ij,ij->i", b, b)
    n = queries.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    block = 128
    for start in range(0, n, block):
        q = queries[start : start + block].astype(np.float64)
        s = q @ b.T
        scores = norms - 2.0 * s if metric == "euclidean" else -s
        part = np.argpartition(scores, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1)
        out[start : start + q.shape[0]] = np.take_along_axis(part, order, axis=1)
    return out


def load_search_data(directory: Path) -> Tuple[F32, F32]:
    base: F32 = np.load(directory / "base.npy")
    queries: F32 = np.load(directory / "queries.npy")
    return base, queries


def ids_path(directory: Path, engine: str, metric: str, threads: int) -> Path:
    return directory / f"ids_{engine}_{metric}_{threads}.npy"


def emit(result: Dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def worker_numpy(directory: Path, k: int, repeats: int, threads: int, truth: bool) -> None:
    """numpy timings (and optionally the float64 truth) in this process's environment."""
    base, queries = load_search_data(directory)
    sqnorms = np.einsum("ij,ij->i", base, base)
    timings: Dict[str, List[float]] = {}
    for metric in METRICS:
        ids = numpy_search(base, sqnorms, queries, k, metric)
        np.save(ids_path(directory, "numpy", metric, threads), ids)
        t = time_repeats(partial(numpy_search, base, sqnorms, queries, k, metric), repeats)
        timings[metric] = list(t.samples)
        if truth:
            np.save(directory / f"truth_{metric}.npy", exact_f64(base, queries, k, metric))
    emit({"timings": timings, "blas": blas_info()})


def worker_engines(
    directory: Path, k: int, repeats: int, threads: int, engines: Sequence[str], faiss_label: str
) -> None:
    """NusterDB and/or faiss timings, interleaved, in this process's environment.

    ``engines`` names which of "nusterdb" and "faiss" run; faiss's figures are filed
    under ``faiss_label``.
    """
    base, queries = load_search_data(directory)
    dim = base.shape[1]
    ids_all = np.arange(base.shape[0], dtype=np.int64)
    unavailable: Dict[str, str] = {}
    faiss: Any = None
    if "faiss" in engines:
        try:
            faiss = importlib.import_module("faiss")
            faiss.omp_set_num_threads(threads)
        except ImportError as e:
            unavailable[faiss_label] = f"{e.__class__.__name__}: {e}"

    searches: Dict[Tuple[str, str], Callable[[], I64]] = {}
    add_seconds: Dict[str, float] = {}
    keep: List[object] = []
    for metric in METRICS:
        if "nusterdb" in engines:
            db = nusterdb.NusterDB(None, nusterdb.DatabaseConfig(dim, distance_metric=metric))
            add_seconds[f"nusterdb/{metric}"] = time_once(partial(db.bulk_add, ids_all, base))
            keep.append(db)

            def nuster_search(db: nusterdb.NusterDB = db) -> I64:
                return db.batch_search(queries, k=k)[0]

            searches[("nusterdb", metric)] = nuster_search
        if faiss is not None:
            index = faiss.IndexFlatL2(dim) if metric == "euclidean" else faiss.IndexFlatIP(dim)
            add_seconds[f"{faiss_label}/{metric}"] = time_once(partial(index.add, base))
            keep.append(index)

            def faiss_search(index: Any = index) -> I64:
                found: I64 = np.asarray(index.search(queries, k)[1], dtype=np.int64)
                return found

            searches[(faiss_label, metric)] = faiss_search

    for (engine, metric), fn in searches.items():
        np.save(ids_path(directory, engine, metric, threads), fn())  # also the warm-up
        time.sleep(SETTLE_SECONDS)
    samples: Dict[str, List[float]] = {f"{e}/{m}": [] for e, m in searches}
    for _ in range(repeats):
        for (engine, metric), fn in searches.items():
            samples[f"{engine}/{metric}"].append(time_once(fn))
            time.sleep(SETTLE_SECONDS)
    emit(
        {
            "timings": samples,
            "add_seconds": add_seconds,
            "unavailable": unavailable,
            "rayon_num_threads": os.environ.get("RAYON_NUM_THREADS", "(unset)"),
        }
    )


def run_worker(
    kind: str, directory: Path, k: int, repeats: int, threads: int, env: Dict[str, str], *extra: str
) -> Dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--data",
        str(directory),
        "--k",
        str(k),
        "--repeats",
        str(repeats),
        "--threads",
        str(threads),
        *extra,
    ]
    changed = {v: env.get(v, "(unset)") for v in _thread_vars() if env.get(v) != os.environ.get(v)}
    log(f"worker {kind}, {threads} thread(s), env changes {changed}")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} ({threads} threads) failed with {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: Dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"worker {kind} printed no result:\n{proc.stdout}")


def _thread_vars() -> Tuple[str, ...]:
    return (
        *OPENBLAS_TUNING_VARS,
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "OMP_WAIT_POLICY",
        "RAYON_NUM_THREADS",
    )


@dataclass(frozen=True)
class Row:
    engine: str
    metric: str
    threads: int
    timing: Timing
    recall: float
    recall_f32: float


def bench_search(sizes: Sizes, seed: int, tmpdir: Optional[Path]) -> None:
    n, dim, nq, k = sizes.search_rows, sizes.search_dim, sizes.queries, sizes.k
    section(f"2. exact batch_search, k={k}, {nq:,} queries on {n:,} x {dim} clustered float32 rows")
    cores = os.cpu_count() or 2
    multi = 2
    log(f"generating {n:,} x {dim} clustered rows and {nq:,} queries")
    base, queries = clustered(n, nq, dim, seed + 1)
    with tempfile.TemporaryDirectory(prefix="nusterdb-bench-search-", dir=tmpdir) as tmp:
        directory = Path(tmp)
        np.save(directory / "base.npy", base)
        np.save(directory / "queries.npy", queries)
        del base, queries

        numpy_env = env_without(OPENBLAS_TUNING_VARS)
        numpy_env_1 = {**numpy_env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            numpy_env.pop(var, None)
            if cores != multi:
                numpy_env[var] = str(multi)
        # NusterDB: rayon's default pool when it has `multi` threads, else set it.
        engines_env = env_without(("RAYON_NUM_THREADS", "OMP_NUM_THREADS"))
        if cores != multi:
            engines_env["RAYON_NUM_THREADS"] = str(multi)
        engines_env_1 = {**engines_env, "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

        args = (directory, k, sizes.repeats)
        np_multi = run_worker("numpy", *args, multi, numpy_env, "--truth")
        np_single = run_worker("numpy", *args, 1, numpy_env_1)
        eng_multi = run_worker("engines", *args, multi, engines_env)
        eng_single = run_worker("engines", *args, 1, engines_env_1)
        # libgomp's default wait policy spins at barriers: fastest on an idle machine,
        # very slow when another process takes a core. The same faiss with
        # OMP_WAIT_POLICY=PASSIVE shows which case this run was in.
        passive: List[Dict[str, Any]] = []
        if "faiss" not in eng_multi["unavailable"]:
            passive_env = {**engines_env, "OMP_WAIT_POLICY": "PASSIVE"}
            passive.append(
                run_worker(
                    "engines",
                    *args,
                    multi,
                    passive_env,
                    "--engines",
                    "faiss",
                    "--faiss-label",
                    "faiss-passive",
                )
            )

        truth = {m: np.load(directory / f"truth_{m}.npy") for m in METRICS}
        truth_f32 = {m: np.load(ids_path(directory, "numpy", m, multi)) for m in METRICS}
        rows: List[Row] = []
        for threads, results in (
            (multi, (eng_multi, *passive, np_multi)),
            (1, (eng_single, np_single)),
        ):
            for result in results:
                for key, samples in result["timings"].items():
                    engine, metric = key.split("/") if "/" in key else ("numpy", key)
                    found = np.load(ids_path(directory, engine, metric, threads))
                    rows.append(
                        Row(
                            engine,
                            metric,
                            threads,
                            Timing(tuple(float(s) for s in samples)),
                            recall_at_k(found, truth[metric]),
                            recall_at_k(found, truth_f32[metric]),
                        )
                    )

    unavailable: Dict[str, str] = eng_multi["unavailable"]
    for name, why in unavailable.items():
        print(f"{name} is not available ({why}); its rows are missing.")
    order = {"nusterdb": 0, "faiss": 1, "faiss-passive": 2, "numpy": 3}
    rows.sort(key=lambda r: (-r.threads, METRICS.index(r.metric), order.get(r.engine, 9)))
    adds: Dict[str, float] = {}
    for result in (eng_multi, *passive):
        adds.update(result["add_seconds"])
    print_table(
        [
            "engine",
            "metric",
            "threads",
            "QPS (median)",
            "QPS range",
            "recall@10 (f64)",
            "recall@10 (numpy f32)",
            "add s",
        ],
        [
            (
                r.engine,
                r.metric,
                r.threads,
                fmt_rate(r.timing.rate(nq)),
                f"{fmt_rate(nq / r.timing.worst)}-{fmt_rate(nq / r.timing.best)}",
                f"{r.recall:.4f}",
                f"{r.recall_f32:.4f}",
                f"{adds[f'{r.engine}/{r.metric}']:.2f}"
                if r.threads == multi and f"{r.engine}/{r.metric}" in adds
                else "",
            )
            for r in rows
        ],
        right=[2, 3, 4, 5, 6, 7],
    )
    by_key = {(r.engine, r.metric, r.threads): r for r in rows}
    ratio_rows = []
    for threads in (multi, 1):
        for metric in METRICS:
            ours = by_key.get(("nusterdb", metric, threads))
            if ours is None:
                continue
            qps = ours.timing.rate(nq)
            cells: List[str] = [metric, str(threads), fmt_rate(qps)]
            # Against faiss's faster wait policy in this run (the harder comparison).
            faiss_rows = [
                r for e in ("faiss", "faiss-passive") if (r := by_key.get((e, metric, threads)))
            ]
            best = max(faiss_rows, key=lambda r: r.timing.rate(nq)) if faiss_rows else None
            if best is not None:
                cells += [
                    f"{fmt_rate(best.timing.rate(nq))} ({best.engine})",
                    f"{qps / best.timing.rate(nq):.2f}",
                ]
            else:
                cells += ["n/a", "n/a"]
            np_row = by_key.get(("numpy", metric, threads))
            if np_row is not None:
                cells += [fmt_rate(np_row.timing.rate(nq)), f"{qps / np_row.timing.rate(nq):.2f}"]
            else:
                cells += ["n/a", "n/a"]
            ratio_rows.append(cells)
    print_table(
        [
            "metric",
            "threads",
            "NusterDB QPS",
            "faiss QPS (faster variant)",
            "NusterDB / faiss",
            "numpy QPS",
            "NusterDB / numpy",
        ],
        ratio_rows,
        title="Ratios of median QPS (> 1: NusterDB faster):",
    )
    print(
        f"Notes: QPS = {nq} queries / median wall time of one batch call over "
        f"{sizes.repeats} repeats (after one warm-up call); 'QPS range' is slowest-fastest "
        "repeat. recall@10 (f64) is against an exact float64 numpy search; (numpy f32) against "
        "the numpy baseline's own float32 result (2 threads). Near-ties that float32 cannot "
        "order make the first fall just below 1 for every float32 engine alike."
    )
    print(
        "  NusterDB: in-memory DatabaseConfig(dim, distance_metric=...), one batch_search; "
        f"rayon pool: {eng_multi['rayon_num_threads']} (default = cores = {cores}) / "
        f"{eng_single['rayon_num_threads']}."
    )
    print(
        "  faiss: IndexFlatL2 / IndexFlatIP, index.search; faiss.omp_set_num_threads(2 / 1); "
        "'faiss-passive' is the same with OMP_WAIT_POLICY=PASSIVE (libgomp's default spins "
        "at barriers, which is slow when another process takes a core)."
    )
    print(
        "  numpy: queries @ base.T (sgemm) in blocks of 256 queries, np.argpartition + "
        "argsort of the k; L2 as |x|^2 - 2 x.q with |x|^2 precomputed; run with "
        f"{' and '.join(OPENBLAS_TUNING_VARS)} unset; 1 thread via OPENBLAS_NUM_THREADS=1."
    )
    print(f"  numpy BLAS ({multi} threads): {np_multi['blas']}")
    print(f"  numpy BLAS (1 thread): {np_single['blas']}")
    print("  'add s': seconds to load the base rows (NusterDB bulk_add / faiss add).")


# ---------------------------------------------------------------- 3. Python overhead


def parse_key_values(text: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def cargo_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(DEFAULT_TARGET_DIR))
    env.update(extra or {})
    return env


def build_rust_example() -> str:
    """Builds the example up front (so no round pays for it); says what cargo did."""
    cmd = ["cargo", "build", "--release", "-p", "nusterdb-core", "--example", "search_latency"]
    env = cargo_env()
    log(f"running {shlex.join(cmd)} (CARGO_TARGET_DIR={env['CARGO_TARGET_DIR']})")
    proc = subprocess.run(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"cargo build failed with exit code {proc.returncode}")
    compiled = [
        line.split()[1] for line in proc.stderr.splitlines() if line.strip().startswith("Compiling")
    ]
    return f"compiled {', '.join(compiled)}" if compiled else "up to date"


def run_rust_latency(
    base_file: Path, query_file: Path, dim: int, k: int, calls: int, env_extra: Dict[str, str]
) -> Dict[str, str]:
    cmd = [
        "cargo",
        "run",
        "--release",
        "-p",
        "nusterdb-core",
        "--example",
        "search_latency",
        "--",
        str(base_file),
        str(query_file),
        str(dim),
        str(k),
        str(calls),
    ]
    env = cargo_env(env_extra)
    log(f"running {shlex.join(cmd)} ({env_extra or 'default env'})")
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"cargo run failed with exit code {proc.returncode}")
    out = parse_key_values(proc.stdout)
    out["recompiled"] = "yes" if "Compiling" in proc.stderr else "no"
    return out


def python_latency(
    db: nusterdb.NusterDB, queries: F32, k: int, calls: int, warmup: int = 200
) -> List[float]:
    """Per-call seconds of ``db.search`` over ``calls`` calls, cycling through ``queries``."""
    n = queries.shape[0]
    rows = [queries[i] for i in range(n)]
    for i in range(warmup):
        db.search(rows[i % n], k=k)
    out: List[float] = []
    perf = time.perf_counter
    for i in range(calls):
        q = rows[i % n]
        start = perf()
        db.search(q, k=k)
        out.append(perf() - start)
    return out


def worker_latency(directory: Path, dim: int, k: int, calls: int) -> None:
    """The Python side of section 3, on the files the Rust example reads."""
    base = np.fromfile(directory / "base.f32", dtype="<f4").astype(np.float32).reshape(-1, dim)
    queries = np.fromfile(directory / "queries.f32", dtype="<f4").astype(np.float32)
    queries = queries.reshape(-1, dim)
    db = nusterdb.NusterDB(None, nusterdb.DatabaseConfig(dim))
    db.bulk_add(np.arange(base.shape[0], dtype=np.int64), base)
    per_call = python_latency(db, queries, k, calls)
    first_ids = ",".join(str(i) for i, _ in db.search(queries[0], k=k))
    db.close()
    emit({"median_us": median(per_call) * 1e6, "first_ids": first_ids})


def stale_extension() -> Optional[str]:
    """Names a core or binding source file newer than the installed extension module.

    The Rust example is compiled from the working tree; the Python figure comes from
    the installed wheel. A newer source file means they may run different code.
    """
    so = Path(nusterdb._core.__file__)
    built = so.stat().st_mtime
    newest: Optional[Tuple[float, Path]] = None
    for crate in ("nusterdb-core", "nusterdb-py"):
        for f in (REPO / "crates" / crate / "src").rglob("*.rs"):
            m = f.stat().st_mtime
            if m > built and (newest is None or m > newest[0]):
                newest = (m, f)
    if newest is None:
        return None
    return (
        f"{newest[1].relative_to(REPO)} changed {newest[0] - built:.0f} s after the installed "
        f"extension ({so}) was written"
    )


@dataclass(frozen=True)
class Pool:
    label: str
    env: Dict[str, str]


def bench_overhead(sizes: Sizes, seed: int, tmpdir: Optional[Path], skip_rust: bool) -> None:
    n, dim, k, calls = sizes.latency_rows, sizes.latency_dim, sizes.k, sizes.latency_calls
    section(f"3. Python overhead: one search call, {n:,} x {dim}, k={k}, median of {calls:,} calls")
    base, queries = clustered(n, calls, dim, seed + 2)
    cores = os.cpu_count() or 2
    pools = [
        Pool(f"default ({cores} threads)", {}),
        Pool("RAYON_NUM_THREADS=1", {"RAYON_NUM_THREADS": "1"}),
    ]
    build = "skipped (--skip-rust)" if skip_rust else build_rust_example()
    py_medians: Dict[str, List[float]] = {p.label: [] for p in pools}
    rust_medians: Dict[str, List[float]] = {p.label: [] for p in pools}
    mismatches: List[str] = []
    recompiled = False
    with tempfile.TemporaryDirectory(prefix="nusterdb-bench-latency-", dir=tmpdir) as tmp:
        directory = Path(tmp)
        write_f32(directory / "base.f32", base)
        write_f32(directory / "queries.f32", queries)
        for pool in pools:
            base_env = env_without(("RAYON_NUM_THREADS",))
            for _ in range(sizes.latency_rounds):
                py_ids = ""
                py = run_worker(
                    "latency",
                    directory,
                    k,
                    1,
                    int(pool.env.get("RAYON_NUM_THREADS", cores)),
                    {**base_env, **pool.env},
                    "--dim",
                    str(dim),
                    "--calls",
                    str(calls),
                )
                py_medians[pool.label].append(float(py["median_us"]))
                py_ids = str(py["first_ids"])
                if not skip_rust:
                    rust = run_rust_latency(
                        directory / "base.f32", directory / "queries.f32", dim, k, calls, pool.env
                    )
                    rust_medians[pool.label].append(float(rust["median_us"]))
                    recompiled = recompiled or rust["recompiled"] == "yes"
                    if rust.get("first_ids") != py_ids:
                        mismatches.append(
                            f"{pool.label}: python {py_ids} / rust {rust.get('first_ids')}"
                        )

    rows: List[Tuple[str, str, str, str, str]] = []
    for pool in pools:
        for name, medians in (
            ("Python NusterDB.search", py_medians[pool.label]),
            ("Rust Database::search", rust_medians[pool.label]),
        ):
            if medians:
                rows.append(
                    (
                        pool.label,
                        name,
                        f"{median(medians):.2f}",
                        f"{min(medians):.2f}",
                        ", ".join(f"{m:.2f}" for m in medians),
                    )
                )
    print_table(
        [
            "rayon pool",
            "call",
            "median of rounds (us)",
            "best round (us)",
            "per-round medians (us)",
        ],
        rows,
        right=[2, 3],
    )
    if skip_rust:
        print("Rust figure skipped (--skip-rust).")
    else:
        for pool in pools:
            py_m, rust_m = py_medians[pool.label], rust_medians[pool.label]
            for label, py_us, rust_us in (
                ("median of rounds", median(py_m), median(rust_m)),
                ("best rounds", min(py_m), min(rust_m)),
            ):
                print(
                    f"Python overhead, {pool.label} pool, {label}: {py_us - rust_us:+.2f} us "
                    f"per call ({(py_us - rust_us) / rust_us * 100:+.1f}% over Rust's "
                    f"{rust_us:.2f} us)."
                )
        print(
            f"Same top-{k} ids for query 0 from Python and Rust in every round: "
            + ("yes" if not mismatches else "NO: " + "; ".join(mismatches))
        )
        target = cargo_env()["CARGO_TARGET_DIR"]
        print(f"Rust example build before the rounds (CARGO_TARGET_DIR={target}): {build}.")
        if recompiled:
            print("WARNING: cargo recompiled the example during the rounds (source changed).")
    stale = stale_extension()
    if stale:
        print(f"WARNING: the Python and Rust figures may come from different code: {stale}.")
    else:
        print("No core or binding source file is newer than the installed extension module.")
    print(
        f"Notes: each round runs the Python side (a fresh process, same files) and then the "
        f"Rust binary, {sizes.latency_rounds} rounds per pool setting; each side times "
        f"{calls:,} calls one by one (200 warm-up calls first), cycling through {calls:,} "
        "query rows (1-D float32 numpy arrays in Python, &[f32] slices in Rust); a round's "
        "figure is its median call. With the default pool one search may split its scan "
        "across threads, which makes it sensitive to other load on the machine."
    )


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.repeats is not None:
        sizes = replace(sizes, repeats=args.repeats)
    if args.worker == "numpy":
        worker_numpy(args.data, args.k, sizes.repeats, args.threads, args.truth)
        return 0
    if args.worker == "latency":
        worker_latency(args.data, args.dim, args.k, args.calls)
        return 0
    if args.worker == "engines":
        engines = args.engines.split(",")
        worker_engines(args.data, args.k, sizes.repeats, args.threads, engines, args.faiss_label)
        return 0

    print("# NusterDB flat benchmarks" + (" (--quick)" if args.quick else ""))
    print()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print()
    print_environment()
    stale = stale_extension()
    if stale:
        print(f"WARNING: the installed nusterdb may be older than the working tree: {stale}.")
    started = time.perf_counter()
    if 1 in args.sections:
        bench_bulk_add(sizes, args.seed, args.tmpdir)
    if 2 in args.sections:
        bench_search(sizes, args.seed, args.tmpdir)
    if 3 in args.sections:
        bench_overhead(sizes, args.seed, args.tmpdir, args.skip_rust)
    print()
    print(f"total benchmark time: {time.perf_counter() - started:.1f} s")
    print(f"load average (1/5/15 min) at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
