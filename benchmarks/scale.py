#!/usr/bin/env python3
"""Scale figures of one on-disk HNSW database: reopen, memory, latency under writes,
single-thread QPS, ingest, churn, follower refresh.

These are the figures the segment redesign (immutable memory-mapped segments) is judged
by; run on today's single-index design they are its baseline. N x dim float32 rows from
``common.clustered`` (about sqrt(N) Gaussian blobs; further rows and queries are drawn
from the same blobs), ids 0..N-1, one database on disk with ``DatabaseConfig(dim,
index_type="hnsw", distance_metric=--metric)`` and the default ``HNSWConfig()`` (M = 16,
ef_construction = 200, automatic ef_search), euclidean by default. k = 10 throughout.

The database is built once by one ``bulk_add`` of all N rows (``--build-batch``: of that
many rows at a time) and closed; then, per
``--sections`` (default all):

1. reopen to first answer: ``NusterDB.open(path)`` + one ``search``, wall time; the first
   open after the build apart (RocksDB replays its write-ahead log then), then the median
   of ``--repeats`` close/open/search cycles; ``db.load_source()`` says whether the state
   came from the seal's segment files (and how many logged records were replayed) or
   from every record. Same process, so the files are in the page cache.
2. resident memory: a fresh subprocess imports numpy and nusterdb and loads the
   ``--rss-queries`` (10,000) query rows, reads VmRSS (/proc/self/status: the baseline),
   opens the database and runs the queries one ``search`` each, reads VmRSS again. The
   increase is printed as a multiple of the raw float32 bytes (N * dim * 4), next to
   ``db.stats().memory_bytes`` and VmHWM. The database is opened and closed once before
   (untimed): the first open after writes replays RocksDB's write-ahead log, which left
   about 59 MiB more resident at 100,000 x 128 on the day of the baseline.
3. search latency while a writer adds: single-query ``search`` latencies, first idle
   (``--latency-queries`` calls), then while a thread of the same process calls
   ``bulk_add`` of ``--batch`` (1,000) new rows in a loop until it has added
   ``--busy-rows``; p50 / p99 / max, searches per second, failed searches (must be 0), and
   how many searches completed while a ``bulk_add`` call was in flight: the bindings
   release the GIL for the Rust work; were it held through a call, no other Python thread
   could run during it (at most about one search per call could end inside it, at a
   thread switch between the clock read and the call); then the same while the thread
   gives those rows other vectors (``bulk_upsert``) and then removes them
   (``bulk_remove``), ``--batch`` per call. Runs on a copy.
4. single-thread QPS at recall@10 >= ``--recall-target``: a subprocess with
   ``RAYON_NUM_THREADS=1`` opens the database read-only and, for each ``ef_search`` of
   ``--efs``, answers the ``--queries`` queries one ``search`` call each: one untimed pass
   gives recall@10 (id overlap with exact neighbours by numpy brute force, float64), the
   median of ``--qps-repeats`` timed passes the QPS. Reported: the lowest ef reaching the
   target and its QPS.
5. ingest: the build above, rows/s (wall, and CPU seconds of the process), all cores;
   hnswlib's build (``Index(space="l2"|"cosine")``, ``init_index(M=16,
   ef_construction=200)``, ``add_items`` with all cores) on the same rows in the same run,
   in this process if ``hnswlib`` is importable, else in ``--hnswlib-python`` (an
   interpreter with numpy and hnswlib), else "not installed".
6. churn: on a copy, ``--churn-rounds`` rounds of 50 % churn (``bulk_remove`` of a random
   half of the stored ids, ``bulk_add`` of as many new rows from the same blobs under new
   ids); then recall@10 at ``--churn-ef`` against a fresh build of the final rows, and on
   both the RSS increase of section 2's subprocess (after one open and close) and the
   disk bytes after it (``common.dir_size``: the write-ahead log is in table files by
   then); the same again for the churned database after ``db.compact()``.

Sections 2 and 4 run once per mode of ``--vectors`` (comma-separated ``memory``, ``mmap``,
``disk``: the ``vectors=`` the subprocess opens the database with; default ``mmap``).
7. follower refresh: on section 3's copy (or a new copy), a writer handle and a read-only
   follower (``NusterDB.open(path, read_only=True)``) in this process; ``--repeats``
   times the writer adds ``--batch`` rows and calls ``flush()``, then the follower's
   ``refresh()`` is timed while a thread searches on the follower (searches completed
   during the refresh, failures).

8. seal cost: on a copy, ``--seal-rounds`` times the writer adds ``--batch`` rows and
   calls ``seal()``, timed; the bytes of the segment files that seal created (new names:
   an HNSW seal writes its maps and graph whole, and the rows and codes of the slots
   changed since the previous seal as a new part, merging the parts after it when it
   is as large as half the one before) against the bytes of every segment file the seal
   uses (what a seal rewriting everything would write), and the number of parts.

A final table lists each target of the redesign next to the figure measured here. The
script reports; it asserts nothing. Timings are wall-clock (``time.perf_counter``) and,
where given, CPU seconds of the process (``time.process_time``, all threads).

Usage:
    .venv/bin/python benchmarks/scale.py                 # 100,000 x 128 (fits a small box)
    .venv/bin/python benchmarks/scale.py --sections 1,2,4
    .venv/bin/python benchmarks/scale.py --full --hnswlib-python /tmp/venv-scale/bin/python
    .venv/bin/python benchmarks/scale.py --n 1000000 --dim 384 --seed 1 --existing DB \
        --sections 2,4 --vectors memory,mmap,disk   # on a database built earlier

``--full`` (= ``--n 1000000 --dim 384``) gives the sizes the redesign's targets are set at
and the figures BENCHMARKS.md should carry. It needs several GB of memory and disk, and
on a 2-core machine well over an hour (the default run takes 2-3 minutes there, and the
rows hold 30 times the bytes): not for a shared machine while others work.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

if TYPE_CHECKING:
    from nusterdb import DatabaseConfig, NusterDB

K = 10
SPREAD = 0.35  # common.clustered's default noise
SECTIONS = {
    1: "reopen to first answer",
    2: "resident memory after reopen and queries",
    3: "search latency while a writer adds",
    4: "single-thread QPS at a recall target",
    5: "ingest rate",
    6: "churn",
    7: "follower refresh",
    8: "seal cost after adds",
}
RESULT_PREFIX = "RESULT "


# ----------------------------------------------------------------------------- data


@dataclass
class Data:
    """The base rows and queries of ``common.clustered``, and more rows from its blobs."""

    base: common.F32
    queries: common.F32
    centres: common.F32
    seed: int

    @staticmethod
    def make(n: int, n_queries: int, dim: int, seed: int) -> Data:
        base, queries = common.clustered(n, n_queries, dim, seed)
        # The centres common.clustered draws first from the same generator.
        k = max(1, round(n**0.5))
        centres = np.random.default_rng(seed).standard_normal((k, dim), dtype=np.float32)
        return Data(base, queries, centres, seed)

    def fresh(self, n: int, stream: int) -> common.F32:
        """``n`` new rows from the same blobs; each ``stream`` gives other rows."""
        rng = np.random.default_rng((self.seed, stream))
        labels = rng.integers(0, len(self.centres), size=n)
        dim = self.centres.shape[1]
        noise = rng.standard_normal((n, dim), dtype=np.float32) * np.float32(SPREAD)
        out: common.F32 = self.centres[labels] + noise
        return out


def exact_neighbours(
    rows: common.F32, ids: common.I64, queries: common.F32, k: int, metric: str
) -> common.I64:
    """The ids of the exact ``k`` nearest rows of each query (float64, blockwise)."""
    q = queries.astype(np.float64)
    if metric == "cosine":
        q /= np.linalg.norm(q, axis=1, keepdims=True)
    nq = len(q)
    best_d = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    block = max(1024, 2**23 // max(1, nq))
    for start in range(0, len(rows), block):
        x = rows[start : start + block].astype(np.float64)
        if metric == "cosine":
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            d = -(q @ x.T)
        else:
            # |q|^2 is the same for every row of a query: left out of the ordering.
            d = np.einsum("ij,ij->i", x, x)[None, :] - 2.0 * (q @ x.T)
        cand_d = np.concatenate([best_d, d], axis=1)
        cand_i = np.concatenate(
            [best_i, np.broadcast_to(ids[start : start + block], (nq, len(x)))], axis=1
        )
        sel = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
        best_d = np.take_along_axis(cand_d, sel, axis=1)
        best_i = np.take_along_axis(cand_i, sel, axis=1)
    order = np.argsort(best_d, axis=1, kind="stable")
    out: common.I64 = np.take_along_axis(best_i, order, axis=1)
    return out


# -------------------------------------------------------------------------- helpers


def proc_status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in KiB; -1 if unavailable."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def percentiles_ms(lat: Sequence[float]) -> Tuple[float, float, float]:
    """p50, p99 and max of latencies in seconds, in milliseconds."""
    a = np.asarray(lat) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def make_config(dim: int, metric: str, quantization: Optional[str] = None) -> DatabaseConfig:
    from nusterdb import DatabaseConfig

    return DatabaseConfig(dim, index_type="hnsw", distance_metric=metric, quantization=quantization)


def run_worker(
    python: str, argv: List[str], env: Optional[Dict[str, str]] = None
) -> Dict[str, Any]:
    """Runs this script as ``--worker`` in ``python``; its RESULT line, decoded."""
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: Dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"worker {argv[:2]} failed ({proc.returncode}):\n{proc.stderr}")


def settle(path: Path) -> None:
    """Opens and closes the database once: the first open after writes replays RocksDB's
    write-ahead log (section 1 times it) and leaves the next open without that work."""
    from nusterdb import NusterDB

    NusterDB.open(str(path)).close()


def rss_of(db_path: Path, queries_file: Path, vectors: str = "mmap") -> Dict[str, Any]:
    """Section 2's subprocess on ``db_path`` after :func:`settle`: the RSS of a reopen
    with ``vectors``."""
    settle(db_path)
    argv = ["--worker", "rss", "--db", str(db_path), "--queries-file", str(queries_file)]
    return run_worker(sys.executable, [*argv, "--vectors-mode", vectors])


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


# -------------------------------------------------------------------------- workers


def worker_rss(args: argparse.Namespace) -> Dict[str, Any]:
    import nusterdb  # before the baseline: its import is not the database's memory

    queries = np.load(args.queries_file)
    base_kib = proc_status_kib("VmRSS")
    start = time.perf_counter()
    db = nusterdb.NusterDB.open(args.db, vectors=args.vectors_mode)
    opened = time.perf_counter() - start
    failures = 0
    for q in queries:
        try:
            db.search(q, k=K)
        except Exception:
            failures += 1
    elapsed = time.perf_counter() - start
    after_kib = proc_status_kib("VmRSS")
    stats = db.stats()
    out = {
        "rss_base_kib": base_kib,
        "rss_after_kib": after_kib,
        "hwm_kib": proc_status_kib("VmHWM"),
        "memory_bytes": stats.memory_bytes,
        "mapped_bytes": stats.mapped_bytes,
        "mapped_resident_bytes": stats.mapped_resident_bytes,
        "vectors": args.vectors_mode,
        "vector_count": stats.vector_count,
        "queries": len(queries),
        "failures": failures,
        "open_s": opened,
        "total_s": elapsed,
        "graph_load": db.graph_load(),
    }
    db.close()
    return out


def worker_qps(args: argparse.Namespace) -> Dict[str, Any]:
    from nusterdb import NusterDB

    queries = np.load(args.queries_file)
    truth = np.load(args.truth_file)
    db = NusterDB.open(args.db, read_only=True, vectors=args.vectors_mode)
    rows = []
    for ef in args.efs:
        found = np.full((len(queries), K), -1, dtype=np.int64)
        for i, q in enumerate(queries):
            hits = db.search(q, k=K, ef_search=ef)
            found[i, : len(hits)] = [h[0] for h in hits]
        recall = common.recall_at_k(found, truth)

        def one_pass(ef: int = ef) -> None:
            for q in queries:
                db.search(q, k=K, ef_search=ef)

        timing = common.time_repeats(one_pass, args.qps_repeats, warmup=0)
        rows.append({"ef": ef, "recall": recall, "qps": timing.rate(len(queries))})
    load = db.graph_load()
    db.close()
    return {
        "rows": rows,
        "rayon": os.environ.get("RAYON_NUM_THREADS", "(unset)"),
        "graph_load": load,
    }


def hnswlib_build(base: common.F32, metric: str) -> Dict[str, Any]:
    """hnswlib's build of ``base`` (M=16, ef_construction=200, all cores), or why not."""
    try:
        hnswlib: Any = importlib.import_module("hnswlib")
    except ImportError as e:
        return {"error": f"not installed ({e})"}
    n, dim = base.shape
    index = hnswlib.Index(space="l2" if metric == "euclidean" else "cosine", dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=200)
    wall, cpu = time.perf_counter(), time.process_time()
    index.add_items(base, np.arange(n), num_threads=-1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    version = common.package_version("hnswlib", "hnswlib")
    return {"wall": wall, "cpu": cpu, "rate": n / wall, "version": version}


def worker_hnswlib(args: argparse.Namespace) -> Dict[str, Any]:
    base, _ = common.clustered(args.n, args.queries, args.dim, args.seed)
    out = hnswlib_build(base, args.metric)
    out["python"] = sys.executable
    return out


# ------------------------------------------------------------------------- sections


def build(
    path: Path, data: Data, metric: str, batch: int = 0, quantization: Optional[str] = None
) -> Dict[str, Any]:
    from nusterdb import NusterDB

    n, dim = data.base.shape
    db = NusterDB(str(path), make_config(dim, metric, quantization))
    step = batch if batch > 0 else n
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, n, step):
        stop = min(n, start + step)
        db.bulk_add(np.arange(start, stop, dtype=np.int64), data.base[start:stop], progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    close = common.time_once(db.close)
    return {"wall": wall, "cpu": cpu, "rate": n / wall, "close": close}


def section_reopen(path: Path, data: Data, repeats: int) -> Dict[str, Any]:
    from nusterdb import NusterDB

    rows: List[Dict[str, Any]] = []
    for cycle in range(repeats + 1):
        q = data.queries[cycle % len(data.queries)]
        start, cpu = time.perf_counter(), time.process_time()
        db = NusterDB.open(str(path))
        opened = time.perf_counter()
        db.search(q, k=K)
        done = time.perf_counter()
        rows.append(
            {
                "open": opened - start,
                "search": done - opened,
                "total": done - start,
                "cpu": time.process_time() - cpu,
                "graph_load": db.graph_load(),
                "load_source": db.load_source(),
            }
        )
        db.close()
    first, rest = rows[0], rows[1:]
    med = {
        key: statistics.median(r[key] for r in rest) for key in ("open", "search", "total", "cpu")
    }
    states = sorted({r["graph_load"]["state"] for r in rest})
    table = [
        (
            "first open after the build",
            f"{first['open']:.3f}",
            f"{first['search'] * 1e3:.2f}",
            f"{first['total']:.3f}",
            f"{first['cpu']:.3f}",
            json.dumps(first["load_source"]),
        ),
        (
            f"reopen (median of {len(rest)})",
            f"{med['open']:.3f}",
            f"{med['search'] * 1e3:.2f}",
            f"{med['total']:.3f}",
            f"{med['cpu']:.3f}",
            json.dumps(rest[-1]["load_source"])
            + ("" if len(states) == 1 else f" (graph states {states})"),
        ),
    ]
    headers = ("open", "open s", "1st search ms", "total s", "CPU s", "load_source()")
    common.print_table(headers, table, right=[1, 2, 3, 4])
    totals = " ".join(f"{r['total']:.3f}" for r in rest)
    print(f"reopen totals, s: {totals}")
    print()
    return {"first": first, "cycles": rest, "median": med, "states": states}


def section_rss(
    path: Path, queries_file: Path, n: int, dim: int, modes: Sequence[str] = ("mmap",)
) -> Dict[str, Any]:
    """Section 2 once per ``vectors`` mode; the first mode's figures at the top level."""
    by_mode: Dict[str, Dict[str, Any]] = {}
    for mode in modes:
        print(f"vectors={mode!r}:")
        by_mode[mode] = rss_one(path, queries_file, n, dim, mode)
    out = dict(by_mode[modes[0]])
    out["by_mode"] = by_mode
    return out


def rss_one(path: Path, queries_file: Path, n: int, dim: int, mode: str) -> Dict[str, Any]:
    res = rss_of(path, queries_file, mode)
    raw = n * dim * 4
    grown_kib = res["rss_after_kib"] - res["rss_base_kib"]
    res["raw_bytes"] = raw
    res["x_raw"] = grown_kib * 1024 / raw
    resident = res.get("mapped_resident_bytes")
    rows = [
        ("raw float32 bytes (N x dim x 4)", common.fmt_bytes(raw), ""),
        ("VmRSS after import numpy, nusterdb + queries", fmt_mib(res["rss_base_kib"]) + " MiB", ""),
        (
            f"VmRSS after open + {res['queries']:,} searches",
            fmt_mib(res["rss_after_kib"]) + " MiB",
            "",
        ),
        ("increase", fmt_mib(grown_kib) + " MiB", f"{res['x_raw']:.2f}"),
        ("VmHWM (peak)", fmt_mib(res["hwm_kib"]) + " MiB", ""),
        (
            "db.stats().memory_bytes",
            common.fmt_bytes(res["memory_bytes"]),
            f"{res['memory_bytes'] / raw:.2f}",
        ),
        (
            "db.stats().mapped_bytes",
            common.fmt_bytes(res.get("mapped_bytes", 0)),
            f"{res.get('mapped_bytes', 0) / raw:.2f}",
        ),
        (
            "db.stats().mapped_resident_bytes",
            "n/a" if resident is None else common.fmt_bytes(resident),
            "" if resident is None else f"{resident / raw:.2f}",
        ),
    ]
    common.print_table(("what", "value", "x raw"), rows)
    print(
        f"open {res['open_s']:.3f} s, open + searches {res['total_s']:.2f} s, "
        f"failed searches {res['failures']}, graph_load {json.dumps(res['graph_load'])}"
    )
    print()
    return res


def section_latency(path: Path, data: Data, args: argparse.Namespace) -> Dict[str, Any]:
    from nusterdb import NusterDB

    db = NusterDB.open(str(path))
    queries = data.queries
    next_id = len(data.base) + 10_000_000  # clear of every other section's ids
    batches = [data.fresh(args.batch, stream=1000 + b) for b in range(args.busy_rows // args.batch)]

    def search_once(i: int, lat: List[float], done_at: List[float]) -> Optional[str]:
        t0 = time.perf_counter()
        try:
            db.search(queries[i % len(queries)], k=K)
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        done_at.append(t1)
        return None

    idle: List[float] = []
    idle_failures: List[str] = []
    idle_start = time.perf_counter()
    for i in range(args.latency_queries):
        err = search_once(i, idle, [])
        if err:
            idle_failures.append(err)
    idle_wall = time.perf_counter() - idle_start

    writer_errors: List[str] = []

    def busy_phase(
        calls: List[Callable[[], object]],
    ) -> Tuple[List[float], List[float], List[str], List[Tuple[float, float]], float]:
        """Searches in this thread while another makes ``calls`` one after the other:
        latencies, completion times, failures, the calls' intervals, wall time."""
        intervals: List[Tuple[float, float]] = []

        def writer() -> None:
            for call in calls:
                t0 = time.perf_counter()
                try:
                    call()
                except Exception as e:
                    writer_errors.append(f"{type(e).__name__}: {e}")
                    return
                intervals.append((t0, time.perf_counter()))

        lat: List[float] = []
        done: List[float] = []
        failures: List[str] = []
        thread = threading.Thread(target=writer)
        start = time.perf_counter()
        thread.start()
        i = 0
        while thread.is_alive():
            err = search_once(i, lat, done)
            if err:
                failures.append(err)
            i += 1
        thread.join()
        return lat, done, failures, intervals, time.perf_counter() - start

    id_batches = [
        np.arange(next_id + b * args.batch, next_id + (b + 1) * args.batch, dtype=np.int64)
        for b in range(len(batches))
    ]
    busy, busy_done, busy_failures, intervals, busy_wall = busy_phase(
        [partial(db.bulk_add, ids, rows) for ids, rows in zip(id_batches, batches)]
    )
    added = len(intervals) * args.batch
    # The same rows given other vectors (each moves to a new node), a batch per call.
    others = [data.fresh(args.batch, stream=3000 + b) for b in range(len(intervals))]
    up, _, up_failures, up_intervals, up_wall = busy_phase(
        [partial(db.bulk_upsert, ids, rows) for ids, rows in zip(id_batches, others)]
    )
    # The same rows removed again, a batch per call (the graph repaired each time).
    rm, _, rm_failures, rm_intervals, rm_wall = busy_phase(
        [partial(db.bulk_remove, ids.tolist()) for ids in id_batches[: len(intervals)]]
    )
    removed = len(rm_intervals) * args.batch
    db.close()

    inside = sum(1 for t in busy_done if any(a <= t <= b for a, b in intervals))
    add_time = sum(b - a for a, b in intervals)
    p_idle, p_busy = percentiles_ms(idle), percentiles_ms(busy)
    p_rm = percentiles_ms(rm) if rm else (float("nan"),) * 3
    p_up = percentiles_ms(up) if up else (float("nan"),) * 3
    phases = [
        ("idle", idle, idle_wall, p_idle, idle_failures),
        ("writer adding", busy, busy_wall, p_busy, busy_failures),
        ("writer replacing", up, up_wall, p_up, up_failures),
        ("writer removing", rm, rm_wall, p_rm, rm_failures),
    ]
    rows = [
        (
            name,
            f"{len(lat):,}",
            common.fmt_rate(len(lat) / wall),
            *(f"{x:.3f}" for x in pct),
            len(failed),
        )
        for name, lat, wall, pct, failed in phases
    ]
    headers = ("phase", "searches", "searches/s", "p50 ms", "p99 ms", "max ms", "failed")
    common.print_table(headers, rows)
    ratio = p_busy[1] / p_idle[1]
    calls = max(1, len(intervals))
    print(
        f"p99 busy / p99 idle = {ratio:.2f}; the writer added {added:,} rows in "
        f"{len(intervals)} bulk_add calls of {args.batch:,} ({add_time:.2f} s inside bulk_add, "
        f"{added / add_time if add_time else 0:,.0f} rows/s) while {len(busy):,} searches ran "
        f"({busy_wall:.2f} s). Searches completed while a bulk_add call was in flight: "
        f"{inside:,} ({inside / calls:.1f} per call; about 1 per call at most if the GIL "
        f"were held through the call): the GIL is released during bulk_add's Rust work: "
        f"{'yes' if inside > 2 * calls else 'NOT SHOWN'}"
    )
    up_time = sum(b - a for a, b in up_intervals)
    print(
        f"p99 replacing / p99 idle = {p_up[1] / p_idle[1]:.2f}; the writer gave "
        f"{len(up_intervals) * args.batch:,} stored rows new vectors in {len(up_intervals)} "
        f"bulk_upsert calls ({up_time:.2f} s inside bulk_upsert) while {len(up):,} searches "
        f"ran ({up_wall:.2f} s)"
    )
    rm_time = sum(b - a for a, b in rm_intervals)
    print(
        f"p99 removing / p99 idle = {p_rm[1] / p_idle[1]:.2f}; the writer removed {removed:,} "
        f"rows in {len(rm_intervals)} bulk_remove calls ({rm_time:.2f} s inside bulk_remove) "
        f"while {len(rm):,} searches ran ({rm_wall:.2f} s)"
    )
    if writer_errors or idle_failures or busy_failures or rm_failures or up_failures:
        failed = (idle_failures + busy_failures + up_failures + rm_failures)[:3]
        print(f"errors: writer {writer_errors[:3]}, searches {failed}")
    print()
    return {
        "idle_ms": p_idle,
        "busy_ms": p_busy,
        "ratio_p99": ratio,
        "removing_ms": p_rm,
        "ratio_p99_removing": p_rm[1] / p_idle[1],
        "replacing_ms": p_up,
        "ratio_p99_replacing": p_up[1] / p_idle[1],
        "failures": len(idle_failures) + len(busy_failures) + len(up_failures) + len(rm_failures),
        "writer_errors": writer_errors,
        "added": added,
        "searches_inside_bulk_add": inside,
        "busy_searches": len(busy),
    }


def section_qps(
    path: Path, data: Data, args: argparse.Namespace, tmp: Path, truth: common.I64
) -> Dict[str, Any]:
    """Section 4 once per ``vectors`` mode; the first mode's figures at the top level."""
    by_mode: Dict[str, Dict[str, Any]] = {}
    for mode in args.vectors:
        print(f"vectors={mode!r}:")
        by_mode[mode] = qps_one(path, data, args, tmp, truth, mode)
    out = dict(by_mode[args.vectors[0]])
    out["by_mode"] = by_mode
    return out


def qps_one(
    path: Path, data: Data, args: argparse.Namespace, tmp: Path, truth: common.I64, mode: str
) -> Dict[str, Any]:
    queries_file, truth_file = tmp / "qps-queries.npy", tmp / "qps-truth.npy"
    np.save(queries_file, data.queries)
    np.save(truth_file, truth)
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    argv = ["--worker", "qps", "--db", str(path), "--queries-file", str(queries_file)]
    argv += ["--truth-file", str(truth_file), "--qps-repeats", str(args.qps_repeats)]
    argv += ["--efs", ",".join(str(e) for e in args.efs), "--vectors-mode", mode]
    res = run_worker(sys.executable, argv, env=env)
    chosen = next((r for r in res["rows"] if r["recall"] >= args.recall_target), None)
    rows = [
        (
            r["ef"],
            f"{r['recall']:.4f}",
            common.fmt_rate(r["qps"]),
            f"{1e3 / r['qps']:.3f}",
            "<-" if r is chosen else "",
        )
        for r in res["rows"]
    ]
    common.print_table(("ef_search", "recall@10", "QPS", "ms/query", ""), rows, right=[0, 1, 2, 3])
    if chosen:
        print(
            f"lowest ef with recall@10 >= {args.recall_target}: {chosen['ef']} "
            f"({chosen['recall']:.4f}), {common.fmt_rate(chosen['qps'])} QPS single-thread "
            f"(RAYON_NUM_THREADS={res['rayon']} in the subprocess, read-only handle, "
            f"graph_load {json.dumps(res['graph_load'])})"
        )
    else:
        print(f"no ef of the sweep reaches recall@10 {args.recall_target}")
    print()
    return {"sweep": res["rows"], "chosen": chosen}


def section_ingest(built: Dict[str, Any], data: Data, args: argparse.Namespace) -> Dict[str, Any]:
    n = len(data.base)
    peer = hnswlib_build(data.base, args.metric)
    if "error" in peer and args.hnswlib_python:
        argv = ["--worker", "hnswlib", "--n", str(n), "--dim", str(args.dim)]
        argv += ["--queries", str(args.queries), "--seed", str(args.seed), "--metric", args.metric]
        try:
            peer = run_worker(args.hnswlib_python, argv)
        except RuntimeError as e:
            peer = {"error": f"failed in {args.hnswlib_python}: {e}"}
    rows: List[Tuple[object, ...]] = [
        (
            "NusterDB bulk_add (store + index)",
            f"{built['wall']:.2f}",
            f"{built['cpu']:.2f}",
            common.fmt_rate(built["rate"]),
            "",
        )
    ]
    if "error" in peer:
        rows.append(("hnswlib add_items", "", "", peer["error"], ""))
    else:
        where = peer.get("python", sys.executable)
        rows.append(
            (
                f"hnswlib {peer['version']} add_items ({where})",
                f"{peer['wall']:.2f}",
                f"{peer['cpu']:.2f}",
                common.fmt_rate(peer["rate"]),
                f"{built['rate'] / peer['rate']:.2f}",
            )
        )
    headers = ("build of N rows, all cores", "wall s", "CPU s", "rows/s", "NusterDB / hnswlib")
    common.print_table(headers, rows)
    print(f"close after the build (saves the graph): {built['close']:.2f} s; one run each")
    print()
    return {"nusterdb": built, "hnswlib": peer}


def section_churn(
    built_path: Path, data: Data, args: argparse.Namespace, tmp: Path, queries_file: Path
) -> Dict[str, Any]:
    from nusterdb import NusterDB

    path = tmp / "churn"
    shutil.copytree(built_path, path)
    db = NusterDB.open(str(path))
    rng = np.random.default_rng(args.seed + 1)
    ids = np.arange(len(data.base), dtype=np.int64)
    rows = data.base.copy()
    next_id = len(data.base)
    table = []
    for r in range(args.churn_rounds):
        gone = rng.choice(len(ids), size=len(ids) // 2, replace=False)
        keep = np.ones(len(ids), dtype=bool)
        keep[gone] = False
        new_rows = data.fresh(len(gone), stream=100 + r)
        new_ids = np.arange(next_id, next_id + len(gone), dtype=np.int64)
        next_id += len(gone)
        t_remove = common.time_once(partial(db.bulk_remove, ids[~keep]))
        t_add = common.time_once(partial(db.bulk_add, new_ids, new_rows, progress=False))
        ids = np.concatenate([ids[keep], new_ids])
        rows = np.concatenate([rows[keep], new_rows])
        table.append((r + 1, f"{len(gone):,}", f"{t_remove:.2f}", f"{t_add:.2f}", f"{len(db):,}"))
    common.print_table(("round", "rows churned", "bulk_remove s", "bulk_add s", "stored"), table)

    truth = exact_neighbours(rows, ids, data.queries, K, args.metric)

    def recall(handle: NusterDB) -> float:
        found, _ = handle.batch_search(data.queries, k=K, ef_search=args.churn_ef)
        return common.recall_at_k(np.asarray(found, dtype=np.int64), truth)

    churned_recall = recall(db)
    churned_deleted = db.stats().deleted_count
    db.close()

    fresh_path = tmp / "churn-fresh"
    fresh = NusterDB(str(fresh_path), make_config(args.dim, args.metric, args.quantization))
    t_fresh = common.time_once(lambda: fresh.bulk_add(ids, rows, progress=False))
    fresh_recall = recall(fresh)
    fresh.close()

    rss_c, rss_f = rss_of(path, queries_file), rss_of(fresh_path, queries_file)
    # After rss_of's reopens: the write-ahead log is in table files then.
    disk_c, disk_f = common.dir_size(path), common.dir_size(fresh_path)
    grow_c = rss_c["rss_after_kib"] - rss_c["rss_base_kib"]
    grow_f = rss_f["rss_after_kib"] - rss_f["rss_base_kib"]

    # Today's remedy for the churned database: a manual compaction.
    db = NusterDB.open(str(path))
    t_compact = common.time_once(db.compact)
    db.close()
    rss_k = rss_of(path, queries_file)
    disk_k = common.dir_size(path)
    grow_k = rss_k["rss_after_kib"] - rss_k["rss_base_kib"]
    out_rows = [
        (
            f"after {args.churn_rounds} x 50% churn",
            f"{churned_recall:.4f}",
            common.fmt_bytes(disk_c),
            fmt_mib(grow_c),
            common.fmt_bytes(rss_c["memory_bytes"]),
            json.dumps(rss_c["graph_load"]),
        ),
        (
            f"fresh build of the same rows ({t_fresh:.1f} s)",
            f"{fresh_recall:.4f}",
            common.fmt_bytes(disk_f),
            fmt_mib(grow_f),
            common.fmt_bytes(rss_f["memory_bytes"]),
            json.dumps(rss_f["graph_load"]),
        ),
        (
            "churned / fresh",
            f"{churned_recall - fresh_recall:+.4f} (diff)",
            f"{disk_c / disk_f:.2f}",
            f"{grow_c / grow_f:.2f}",
            f"{rss_c['memory_bytes'] / rss_f['memory_bytes']:.2f}",
            "",
        ),
        (
            f"churned, then db.compact() ({t_compact:.1f} s)",
            "",
            common.fmt_bytes(disk_k),
            fmt_mib(grow_k),
            common.fmt_bytes(rss_k["memory_bytes"]),
            json.dumps(rss_k["graph_load"]),
        ),
        (
            "compacted / fresh",
            "",
            f"{disk_k / disk_f:.2f}",
            f"{grow_k / grow_f:.2f}",
            f"{rss_k['memory_bytes'] / rss_f['memory_bytes']:.2f}",
            "",
        ),
    ]
    headers = (
        "database",
        f"recall@10 ef={args.churn_ef}",
        "disk",
        "RSS increase MiB",
        "memory_bytes",
        "graph_load() on reopen",
    )
    common.print_table(headers, out_rows)
    print(f"deleted_count of the churned database before close: {churned_deleted:,}")
    print()
    return {
        "recall": churned_recall,
        "fresh_recall": fresh_recall,
        "disk": disk_c,
        "fresh_disk": disk_f,
        "rss_kib": grow_c,
        "fresh_rss_kib": grow_f,
        "compact_s": t_compact,
        "compacted_disk": disk_k,
        "compacted_rss_kib": grow_k,
    }


def search_until(
    db: NusterDB,
    queries: common.F32,
    stop: threading.Event,
    done_at: List[float],
    failures: List[str],
) -> None:
    """Searches ``db`` until ``stop`` is set; the time each successful search ended."""
    i = 0
    while not stop.is_set():
        try:
            db.search(queries[i % len(queries)], k=K)
            done_at.append(time.perf_counter())
        except Exception as e:
            failures.append(f"{type(e).__name__}: {e}")
        i += 1


def section_follower(path: Path, data: Data, args: argparse.Namespace) -> Dict[str, Any]:
    from nusterdb import NusterDB

    writer = NusterDB.open(str(path))
    follower = NusterDB.open(str(path), read_only=True)
    next_id = len(data.base) + 20_000_000
    queries = data.queries
    rows = []
    refresh_times: List[float] = []
    total_failures = 0
    for r in range(args.repeats):
        batch = data.fresh(args.batch, stream=5000 + r)
        ids = np.arange(next_id, next_id + args.batch, dtype=np.int64)
        next_id += args.batch
        t_add = common.time_once(partial(writer.bulk_add, ids, batch, progress=False))
        t_flush = common.time_once(writer.flush)

        stop = threading.Event()
        done_at: List[float] = []
        failures: List[str] = []
        thread = threading.Thread(
            target=search_until, args=(follower, queries, stop, done_at, failures)
        )
        thread.start()
        time.sleep(0.02)  # the searcher is running before the refresh starts
        t0 = time.perf_counter()
        follower.refresh()
        t1 = time.perf_counter()
        time.sleep(0.02)
        stop.set()
        thread.join()
        served = sum(1 for t in done_at if t0 <= t <= t1)
        caught_up = len(follower) == len(writer)
        refresh_times.append(t1 - t0)
        total_failures += len(failures)
        rows.append(
            (
                r + 1,
                f"{t_add * 1e3:.1f}",
                f"{t_flush * 1e3:.1f}",
                f"{(t1 - t0) * 1e3:.1f}",
                served,
                len(failures),
                "yes" if caught_up else f"NO ({len(follower):,} vs {len(writer):,})",
                json.dumps(follower.load_source()),
            )
        )
        if failures:
            print(f"round {r + 1} failures: {failures[:3]}")
    follower.close()
    writer.close()
    headers = (
        "round",
        "writer bulk_add ms",
        "flush ms",
        "refresh ms",
        "searches during refresh",
        "failed",
        "caught up",
        "follower load_source()",
    )
    common.print_table(headers, rows, right=[0, 1, 2, 3, 4, 5])
    med = statistics.median(refresh_times)
    print(f"refresh, median of {len(refresh_times)}: {med * 1e3:.1f} ms")
    print()
    return {"refresh_ms": med * 1e3, "failures": total_failures, "times": refresh_times}


def segment_sizes(path: Path) -> Dict[str, int]:
    """Name -> bytes of every segment file in ``path``."""
    return {p.name: p.stat().st_size for p in path.iterdir() if p.name.startswith("segment-")}


def section_seal(path: Path, data: Data, args: argparse.Namespace) -> Dict[str, Any]:
    from nusterdb import NusterDB

    db = NusterDB.open(str(path))
    next_id = len(data.base) + 30_000_000
    rows = []
    times: List[float] = []
    fractions: List[float] = []
    for r in range(args.seal_rounds):
        batch = data.fresh(args.batch, stream=7000 + r)
        ids = np.arange(next_id, next_id + args.batch, dtype=np.int64)
        next_id += args.batch
        db.bulk_add(ids, batch, progress=False)
        before = segment_sizes(path)
        t0 = time.perf_counter()
        db.seal()
        t1 = time.perf_counter()
        after = segment_sizes(path)
        written = sum(size for name, size in after.items() if name not in before)
        whole = sum(after.values())
        parts = sum(1 for name in after if name.endswith(".vectors"))
        times.append(t1 - t0)
        fractions.append(written / whole)
        rows.append(
            (
                r + 1,
                f"{len(db):,}",
                f"{(t1 - t0) * 1e3:.0f}",
                common.fmt_bytes(written),
                common.fmt_bytes(whole),
                f"{written / whole:.3f}",
                parts,
            )
        )
    db.close()
    headers = (
        "round",
        "rows",
        "seal ms",
        "written by the seal",
        "segment files in use",
        "written / in use",
        "parts",
    )
    common.print_table(headers, rows, right=[0, 1, 2, 3, 4, 5, 6])
    med_t, med_f = statistics.median(times), statistics.median(fractions)
    print(
        f"seal after {args.batch:,} adds, median of {len(times)}: {med_t * 1e3:.0f} ms, "
        f"{med_f:.3f} of the files in use written"
    )
    # The open maps the parts side by side: reopen to first answer on them.
    opens: List[float] = []
    source: Dict[str, Any] = {}
    for _ in range(3):
        t0 = time.perf_counter()
        db = NusterDB.open(str(path))
        db.search(data.queries[0], K)
        opens.append(time.perf_counter() - t0)
        source = db.load_source()
        db.close()
    reopen = statistics.median(opens)
    print(
        f"reopen to first answer on {parts} parts, median of 3: {reopen:.3f} s "
        f"({json.dumps(source)})"
    )
    print()
    return {
        "seal_ms": med_t * 1e3,
        "written_fraction": med_f,
        "times": times,
        "reopen_s": reopen,
        "parts": parts,
    }


# ---------------------------------------------------------------------------- main


def summary(res: Dict[str, Any], args: argparse.Namespace) -> None:
    at = f"{args.n:,}x{args.dim}"
    rows: List[Tuple[str, str, str]] = []
    if "reopen" in res:
        r = res["reopen"]
        rows.append(
            (
                "1 reopen to first answer",
                "< 0.5 s at 1M x 384",
                f"{r['median']['total']:.3f} s (first after build {r['first']['total']:.3f} s); "
                f"from {r['cycles'][-1]['load_source']['source']}",
            )
        )
    if "rss" in res:
        for mode, r in res["rss"]["by_mode"].items():
            rows.append(
                (
                    f"2 RSS after reopen + {args.rss_queries:,} queries, vectors={mode!r}",
                    "<= 0.35x raw f32" if mode == "disk" else "<= 1.3x raw f32 (memory)",
                    f"{r['x_raw']:.2f}x raw (memory_bytes "
                    f"{r['memory_bytes'] / r['raw_bytes']:.2f}x)",
                )
            )
    if "latency" in res:
        r = res["latency"]
        rows.append(
            (
                "3 search p99 while a writer adds",
                "<= 2x idle p99, 0 failed",
                f"{r['ratio_p99']:.2f}x ({r['busy_ms'][1]:.2f} / {r['idle_ms'][1]:.2f} ms), "
                f"replacing {r['ratio_p99_replacing']:.2f}x, removing "
                f"{r['ratio_p99_removing']:.2f}x, {r['failures']} failed",
            )
        )
    if "qps" in res:
        for mode, q in res["qps"]["by_mode"].items():
            c = q["chosen"]
            measured = (
                f"ef {c['ef']}: {common.fmt_rate(c['qps'])} QPS (recall {c['recall']:.3f})"
                if c
                else "target recall not reached"
            )
            rows.append(
                (
                    f"4 single-thread QPS at recall@10 >= {args.recall_target}, vectors={mode!r}",
                    "within 10% of this baseline",
                    measured,
                )
            )
    if "ingest" in res:
        nu, peer = res["ingest"]["nusterdb"], res["ingest"]["hnswlib"]
        vs = (
            f"hnswlib {common.fmt_rate(peer['rate'])} rows/s, ratio {nu['rate'] / peer['rate']:.2f}"
            if "error" not in peer
            else "hnswlib not measured"
        )
        rows.append(
            (
                "5 ingest (bulk_add incl. indexing)",
                ">= hnswlib's rate",
                f"{common.fmt_rate(nu['rate'])} rows/s; {vs}",
            )
        )
    if "churn" in res:
        c = res["churn"]
        rows.append(
            (
                f"6 churn ({args.churn_rounds} x 50%)",
                "recall within 0.01, disk/RSS within 15% of fresh",
                f"recall {c['recall'] - c['fresh_recall']:+.4f}; "
                f"disk {c['disk'] / c['fresh_disk']:.2f}x; "
                f"RSS {c['rss_kib'] / c['fresh_rss_kib']:.2f}x "
                f"(after db.compact(): disk {c['compacted_disk'] / c['fresh_disk']:.2f}x, "
                f"RSS {c['compacted_rss_kib'] / c['fresh_rss_kib']:.2f}x)",
            )
        )
    if "follower" in res:
        f = res["follower"]
        rows.append(
            (
                "7 follower refresh after 1k adds",
                "< 100 ms",
                f"{f['refresh_ms']:.1f} ms median, {f['failures']} failed searches",
            )
        )
    if "seal" in res:
        s = res["seal"]
        rows.append(
            (
                f"8 seal after {args.batch:,} adds",
                "cost follows what changed",
                f"{s['seal_ms']:.0f} ms median, {s['written_fraction']:.3f} of the files "
                f"in use written; reopen on {s['parts']} parts {s['reopen_s']:.3f} s",
            )
        )
    common.section(f"Summary: targets of the segment redesign and this build at {at}")
    common.print_table(("target", "issue's target", "measured here"), rows, right=[])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--full", action="store_true", help="the issue's sizes: --n 1000000 --dim 384")
    p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    p.add_argument("--queries", type=int, default=1000, help="queries for recall and QPS")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sections", default="1,2,3,4,5,6,7,8", help="comma-separated, of 1..8")
    p.add_argument("--repeats", type=int, default=5, help="reopen cycles, follower rounds")
    p.add_argument("--rss-queries", type=int, default=10_000)
    p.add_argument("--latency-queries", type=int, default=3000, help="idle searches")
    p.add_argument("--batch", type=int, default=1000, help="rows per writer bulk_add")
    p.add_argument("--busy-rows", type=int, default=30_000, help="rows the writer adds")
    p.add_argument("--efs", default="16,24,32,48,64,96,128,192,256")
    p.add_argument("--recall-target", type=float, default=0.95)
    p.add_argument("--qps-repeats", type=int, default=5)
    p.add_argument("--churn-rounds", type=int, default=3)
    p.add_argument("--churn-ef", type=int, default=32)
    p.add_argument("--seal-rounds", type=int, default=6, help="add + seal rounds")
    p.add_argument(
        "--vectors",
        default="mmap",
        help="comma-separated vectors= modes (memory, mmap, disk) sections 2 and 4 open with",
    )
    p.add_argument("--vectors-mode", default="mmap", help=argparse.SUPPRESS)
    p.add_argument(
        "--quantization",
        default=None,
        help="the codes the database is built with: sq4, sq8 or none (default: the "
        "database's, sq4)",
    )
    p.add_argument(
        "--existing",
        help="use this database (built from the same --n, --dim, --seed) instead of building; "
        "not with section 5",
    )
    p.add_argument(
        "--build-batch",
        type=int,
        default=0,
        help="rows per bulk_add call of the build (default: all in one call)",
    )
    p.add_argument("--hnswlib-python", help="an interpreter with hnswlib, if this one lacks it")
    p.add_argument("--workdir", help="where the databases go (default: a temporary directory)")
    p.add_argument("--out", help="also write the results as JSON here")
    p.add_argument("--worker", choices=("rss", "qps", "hnswlib"), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--queries-file", help=argparse.SUPPRESS)
    p.add_argument("--truth-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.full:
        args.n, args.dim = 1_000_000, 384
    args.efs = [int(x) for x in str(args.efs).split(",")]
    args.vectors = [m.strip() for m in str(args.vectors).split(",") if m.strip()]
    args.sections = sorted({int(x) for x in str(args.sections).split(",")})
    if any(s not in SECTIONS for s in args.sections):
        p.error(f"--sections takes numbers of 1..{len(SECTIONS)}")
    if args.existing and 5 in args.sections:
        p.error("section 5 times the build: not with --existing")
    return args


def run(args: argparse.Namespace, tmp: Path) -> Dict[str, Any]:
    sections = set(args.sections)
    t_data = time.perf_counter()
    data = Data.make(args.n, args.queries, args.dim, args.seed)
    print(f"data: {time.perf_counter() - t_data:.1f} s", flush=True)
    queries_file = tmp / "rss-queries.npy"
    np.save(queries_file, data.fresh(args.rss_queries, stream=9))
    if args.existing:
        # A database built earlier from the same --n, --dim, --seed (and --metric):
        # the sections read it as built (those that write work on copies).
        built_path = Path(args.existing)
        built: Dict[str, Any] = {}
        print(f"existing database {built_path}", flush=True)
    else:
        built_path = tmp / "built"
        built = build(built_path, data, args.metric, args.build_batch, args.quantization)
        print(
            f"built {args.n:,} rows in {built['wall']:.1f} s; disk "
            f"{common.fmt_bytes(common.dir_size(built_path))}",
            flush=True,
        )
    res: Dict[str, Any] = {}
    if 1 in sections:
        common.section(f"1. {SECTIONS[1]}: NusterDB.open(path) + one search")
        res["reopen"] = section_reopen(built_path, data, args.repeats)
    if 2 in sections:
        common.section(f"2. {SECTIONS[2]} (a fresh subprocess, {args.rss_queries:,} searches)")
        res["rss"] = section_rss(built_path, queries_file, args.n, args.dim, args.vectors)
    if 4 in sections:
        common.section(f"4. {SECTIONS[4]} (recall@10 >= {args.recall_target})")
        truth = exact_neighbours(
            data.base, np.arange(args.n, dtype=np.int64), data.queries, K, args.metric
        )
        res["qps"] = section_qps(built_path, data, args, tmp, truth)
    if 5 in sections:
        common.section(f"5. {SECTIONS[5]}")
        res["ingest"] = section_ingest(built, data, args)
    if 6 in sections:
        common.section(f"6. {SECTIONS[6]}: {args.churn_rounds} x 50% churn on a copy")
        res["churn"] = section_churn(built_path, data, args, tmp, queries_file)
    mutable = tmp / "mutable"
    if sections & {3, 7, 8}:
        shutil.copytree(built_path, mutable)
    if 3 in sections:
        common.section(f"3. {SECTIONS[3]} (k={K}, default ef_search)")
        res["latency"] = section_latency(mutable, data, args)
    if 7 in sections:
        common.section(
            f"7. {SECTIONS[7]}: writer adds {args.batch:,} rows + flush, follower refresh"
        )
        res["follower"] = section_follower(mutable, data, args)
    if 8 in sections:
        common.section(f"8. {SECTIONS[8]}: writer adds {args.batch:,} rows + seal()")
        res["seal"] = section_seal(mutable, data, args)
    summary(res, args)
    return res


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        workers = {"rss": worker_rss, "qps": worker_qps, "hnswlib": worker_hnswlib}
        print(RESULT_PREFIX + json.dumps(workers[args.worker](args)), flush=True)
        return 0
    common.print_environment()
    print(
        f"N = {args.n:,} x {args.dim} clustered float32, {args.metric}, HNSW default config "
        f"(M=16, ef_construction=200), quantization {args.quantization or 'default (sq4)'}; "
        f"sections {','.join(map(str, args.sections))}; "
        f"rayon threads: {os.environ.get('RAYON_NUM_THREADS', 'all cores')}",
        flush=True,
    )
    start = time.perf_counter()
    if args.workdir:
        tmp = Path(args.workdir)
        tmp.mkdir(parents=True, exist_ok=False)
        res = run(args, tmp)
    else:
        with tempfile.TemporaryDirectory(prefix="scale-") as d:
            res = run(args, Path(d))
    print(f"total: {time.perf_counter() - start:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
