#!/usr/bin/env python3
"""A bounded load run against a live ``nusterdb serve``: latency, throughput, errors, RSS.

The script starts its own server (``python -m nusterdb serve <tmpdir> --port <free>
--no-auth``, waited for on ``GET /readyz``), creates one collection (HNSW, cosine, dim
``--dim``) and seeds it with ``--seed-rows`` standard normal float32 rows through
``bulk_add`` in batches of 2,000 (the client sends those as raw float32). Then, for
``--duration`` seconds, ``--threads`` threads share one ``nusterdb.Client`` and run a
seeded mix of operations; a fraction ``--write-fraction`` of them are writes:

* reads: ``search`` (k=10) of a random query (70% of reads), ``batch_search`` of 16
  queries (k=10, 10%), ``get`` of a seeded id (20%);
* writes: ``bulk_add`` of 100 new rows (5% of writes), ``upsert`` of 1 seeded id with a
  new vector (45%), ``delete`` of 10 ids this thread added earlier in the run (50%; a
  ``bulk_add`` instead while the thread has fewer than 10 of its own), so as many rows
  are removed as added on average and the RSS trend is not the collection growing.

Every call is timed with ``time.perf_counter`` and recorded per kind; exceptions are
counted by type (a healthy run has none), and so are answers that contradict what the
run wrote (a ``get`` of a seeded id that finds nothing, a ``delete`` that removes fewer
ids than it was given, a ``bulk_add`` that writes fewer rows). The server's resident set
size (``VmRSS`` of ``/proc/<pid>/status``) is sampled every second of the load phase; the
report gives it at the start and end, its maximum, the kernel's peak (``VmHWM``) and the
least-squares slope over the second half of the run. Every loop is bounded by the
deadline (and stops early if the server dies), so the script always ends; the server is
then stopped with SIGTERM and its exit code reported (0 expected).

The exit status is 0 when there were no errors, no contradicting answers and the server
exited with 0; 1 otherwise.

Usage:
    .venv/bin/python benchmarks/server_load.py [--duration 180] [--threads 4] [--dim 128]
        [--seed-rows 20000] [--write-fraction 0.1] [--seed 0] [--json]
    .venv/bin/python benchmarks/server_load.py --quick   # 10 s on 2,000 seeded rows
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import nusterdb
from nusterdb.client import Client, RemoteCollection

COLLECTION = "load"
SEED_BATCH = 2_000
K = 10
BATCH_QUERIES = 16
BULK_ROWS = 100
DELETE_IDS = 10
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
#: Seconds past the deadline a worker thread may take to finish its last call (the
#: client's own timeout bounds each call) before the run is reported as hung.
JOIN_GRACE_S = 90.0
CLIENT_TIMEOUT_S = 60.0

READ_KINDS = (("search", 0.7), ("batch_search", 0.1), ("get", 0.2))
#: bulk_add (100 rows) against delete (10 rows) at 1 : 10 keeps the row count level on
#: average (5 rows added and 5 removed per write), so the RSS slope is not the
#: collection growing.
WRITE_KINDS = (("bulk_add", 0.05), ("upsert", 0.45), ("delete", 0.5))
#: ``--upserts-only``: every write replaces a seeded row's vector, so the row count and the
#: set of ids never change (what is left is the engine's own turnover).
UPSERT_ONLY = (("upsert", 1.0),)
KINDS = tuple(k for k, _ in READ_KINDS + WRITE_KINDS)

QUICK_DURATION = 10.0
QUICK_SEED_ROWS = 2_000
DEFAULT_DURATION = 180.0
DEFAULT_SEED_ROWS = 20_000


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def readyz(port: int) -> Tuple[int, bytes]:
    """``GET /readyz`` on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start_server(data_dir: Path, log: IO[bytes]) -> Tuple[subprocess.Popen[bytes], int]:
    """Starts ``python -m nusterdb serve data_dir --port P --no-auth`` and waits until
    ``GET /readyz`` answers 200; returns the process and its port."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "nusterdb",
        "serve",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-auth",
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        try:
            status, body = readyz(port)
        except OSError as exc:
            last = repr(exc)
        else:
            if status == 200:
                return proc, port
            last = f"{status} {body[:200]!r}"
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    raise RuntimeError(f"the server was not ready within {READY_TIMEOUT_S:.0f} s (last: {last})")


def stop_server(proc: subprocess.Popen[bytes]) -> Tuple[Optional[int], float, str]:
    """SIGTERM and wait: (exit code, seconds to exit, note). A server that does not exit
    within STOP_TIMEOUT_S is killed (exit code None)."""
    if proc.poll() is not None:
        return proc.returncode, 0.0, "had already exited before SIGTERM"
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        return None, time.perf_counter() - t0, f"no exit within {STOP_TIMEOUT_S:.0f} s: killed"
    return code, time.perf_counter() - t0, ""


def proc_status_kib(pid: int, key: str) -> Optional[int]:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status``; None once the
    process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------- recording


@dataclass
class Record:
    """What one worker thread saw: latencies (seconds) per kind, errors by type (with
    the first message of each), and answers that contradicted the run's own writes."""

    latencies: Dict[str, List[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: Counter[str] = field(default_factory=Counter)
    first_error: Dict[str, str] = field(default_factory=dict)
    mismatches: List[str] = field(default_factory=list)
    rows_added: int = 0
    rows_deleted: int = 0


class IdSource:
    """New ids for the run's writes, unique across threads."""

    def __init__(self, start: int) -> None:
        self._next = start
        self._lock = threading.Lock()

    def take(self, n: int) -> List[int]:
        with self._lock:
            first = self._next
            self._next += n
        return list(range(first, first + n))


def pick(rng: np.random.Generator, weights: Sequence[Tuple[str, float]]) -> str:
    x = float(rng.random()) * sum(w for _, w in weights)
    for kind, w in weights:
        x -= w
        if x < 0:
            return kind
    return weights[-1][0]


def worker(
    index: int,
    coll: RemoteCollection,
    args: argparse.Namespace,
    ids: IdSource,
    deadline: float,
    stop: threading.Event,
    out: Record,
) -> None:
    """Runs the mix until ``deadline`` (perf_counter time) or until ``stop`` is set."""
    rng = np.random.default_rng([args.seed, index + 1])
    dim = int(args.dim)
    own: List[int] = []  # ids this thread added and has not deleted
    while time.perf_counter() < deadline and not stop.is_set():
        is_write = float(rng.random()) < args.write_fraction
        kind = pick(
            rng, (UPSERT_ONLY if args.upserts_only else WRITE_KINDS) if is_write else READ_KINDS
        )
        if kind == "delete" and len(own) < DELETE_IDS:
            kind = "bulk_add"
        try:
            if kind == "search":
                q = rng.standard_normal(dim, dtype=np.float32)
                t0 = time.perf_counter()
                hits = coll.search(q, k=K)
                elapsed = time.perf_counter() - t0
                if len(hits) != K:
                    out.mismatches.append(f"search returned {len(hits)} hits, not {K}")
            elif kind == "batch_search":
                qs = rng.standard_normal((BATCH_QUERIES, dim), dtype=np.float32)
                t0 = time.perf_counter()
                found, _dists = coll.batch_search(qs, k=K)
                elapsed = time.perf_counter() - t0
                if found.shape != (BATCH_QUERIES, K):
                    out.mismatches.append(f"batch_search returned shape {found.shape}")
            elif kind == "get":
                target = int(rng.integers(0, args.seed_rows))
                t0 = time.perf_counter()
                vec = coll.get(target)
                elapsed = time.perf_counter() - t0
                if vec is None:
                    out.mismatches.append(f"get({target}) of a seeded id found nothing")
            elif kind == "bulk_add":
                new_ids = ids.take(BULK_ROWS)
                rows = rng.standard_normal((BULK_ROWS, dim), dtype=np.float32)
                t0 = time.perf_counter()
                written = coll.bulk_add(new_ids, rows)
                elapsed = time.perf_counter() - t0
                if written != BULK_ROWS:
                    out.mismatches.append(f"bulk_add wrote {written} rows, not {BULK_ROWS}")
                own.extend(new_ids)
                out.rows_added += written
            elif kind == "upsert":
                target = int(rng.integers(0, args.seed_rows))
                v = rng.standard_normal(dim, dtype=np.float32)
                t0 = time.perf_counter()
                coll.upsert(target, v)
                elapsed = time.perf_counter() - t0
            else:  # delete
                picks = rng.choice(len(own), size=DELETE_IDS, replace=False)
                victims = [own[int(i)] for i in picks]
                t0 = time.perf_counter()
                removed = coll.delete(ids=victims)
                elapsed = time.perf_counter() - t0
                if removed != DELETE_IDS:
                    out.mismatches.append(
                        f"delete of {DELETE_IDS} ids added by this run removed {removed}"
                    )
                gone = set(victims)
                own[:] = [i for i in own if i not in gone]
                out.rows_deleted += removed
        except Exception as exc:
            name = type(exc).__name__
            out.errors[name] += 1
            out.first_error.setdefault(name, f"{kind}: {exc}")
            continue
        out.latencies[kind].append(elapsed)


@dataclass
class RssSampler:
    """Samples a process's VmRSS once a second in a thread, until stopped or the
    deadline passes; every 10 s also the database's own memory (``db_memory``, the
    collection's ``stats().memory_bytes``), so the server's memory beside it shows, and
    the RSS's two kinds: ``RssAnon`` (heap and other private pages) and ``RssFile``
    (pages of mapped files, such as a database's mapped segment files: the kernel can
    drop these)."""

    pid: int
    deadline: float
    db_memory: Optional[Callable[[], int]] = None
    samples: List[Tuple[float, int]] = field(default_factory=list)  # (s since start, KiB)
    #: (s since start, RSS KiB, database memory KiB, RssAnon KiB, RssFile KiB)
    db_samples: List[Tuple[float, int, int, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.perf_counter()
        while True:
            now = time.perf_counter()
            kib = proc_status_kib(self.pid, "VmRSS")
            if kib is not None:
                self.samples.append((now - t0, kib))
                if self.db_memory is not None and len(self.samples) % 10 == 1:
                    with contextlib.suppress(Exception):  # a busy or stopping server
                        db = self.db_memory() // 1024
                        anon = proc_status_kib(self.pid, "RssAnon") or 0
                        file = proc_status_kib(self.pid, "RssFile") or 0
                        self.db_samples.append((now - t0, kib, db, anon, file))
            if now >= self.deadline or kib is None or self._stop.wait(1.0):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def windows(
    db_samples: Sequence[Tuple[float, int, int, int, int]], duration: float, parts: int = 6
) -> List[Dict[str, float]]:
    """The load phase cut into ``parts`` equal windows: per window the median RSS, heap
    (``RssAnon``) and database memory, MiB — a trend shows as rising medians, a
    sawtooth around a plateau does not."""
    out: List[Dict[str, float]] = []
    for w in range(parts):
        lo, hi = duration * w / parts, duration * (w + 1) / parts
        inside = [s for s in db_samples if lo <= s[0] < hi]
        if not inside:
            continue
        rss, db, anon = (float(np.median([s[i] for s in inside])) / 1024.0 for i in (1, 2, 3))
        out.append({"from_s": lo, "to_s": hi, "rss": rss, "db": db, "anon": anon})
    return out


def slope_mib_per_min(samples: Sequence[Tuple[float, int]]) -> Optional[float]:
    """The least-squares slope of RSS over time, MiB per minute (None under 2 points)."""
    if len(samples) < 2:
        return None
    t = np.array([s for s, _ in samples], dtype=np.float64)
    mib = np.array([k / 1024.0 for _, k in samples], dtype=np.float64)
    if float(np.ptp(t)) == 0.0:
        return None
    slope = float(np.polyfit(t, mib, 1)[0])
    return slope * 60.0


def latency_summary(lat: Sequence[float], wall: float) -> Dict[str, Any]:
    if not lat:
        return {"count": 0, "ops_per_s": 0.0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ms: npt.NDArray[np.float64] = np.asarray(lat, dtype=np.float64) * 1000.0
    return {
        "count": len(lat),
        "ops_per_s": len(lat) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 0


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Starts the server, seeds, loads, stops; returns the report."""
    report: Dict[str, Any] = {
        "params": {
            "duration_s": args.duration,
            "threads": args.threads,
            "dim": args.dim,
            "seed_rows": args.seed_rows,
            "write_fraction": args.write_fraction,
            "upserts_only": args.upserts_only,
            "write_buffer_mb": args.write_buffer_mb,
            "cache_mb": args.cache_mb,
            "seed": args.seed,
            "index": "hnsw",
            "metric": "cosine",
            "k": K,
            "batch_search_queries": BATCH_QUERIES,
            "bulk_add_rows": BULK_ROWS,
            "delete_ids": DELETE_IDS,
        },
        "machine": {
            "cpu": common.cpu_model(),
            "cores": cpu_cores(),
            "load_average_at_start": common.load_average(),
            "python": platform.python_version(),
            "nusterdb": nusterdb.__version__,
        },
    }
    with tempfile.TemporaryDirectory(prefix="nusterdb-load-") as tmp:
        data_dir = Path(tmp) / "data"
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            proc, port = start_server(data_dir, log)
        pid = proc.pid
        try:
            report.update(load(args, proc, port))
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            raise
        finally:
            report["server_log_tail"] = log_path.read_text(errors="replace")[-2000:]
        report["rss_peak_vmhwm_mib"] = _mib(proc_status_kib(pid, "VmHWM"))
        code, took, note = stop_server(proc)
        report["server_exit"] = {"code": code, "seconds": took, "note": note}
        report["server_log_tail"] = log_path.read_text(errors="replace")[-2000:]
    return report


def _mib(kib: Optional[int]) -> Optional[float]:
    return None if kib is None else kib / 1024.0


def load(args: argparse.Namespace, proc: subprocess.Popen[bytes], port: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {"rss_idle_mib": _mib(proc_status_kib(proc.pid, "VmRSS"))}
    client = Client(
        f"http://127.0.0.1:{port}", timeout=CLIENT_TIMEOUT_S, pool_size=args.threads + 2
    )
    try:
        storage: Dict[str, int] = {}
        if args.write_buffer_mb is not None:
            storage["write_buffer_size_mb"] = args.write_buffer_mb
        if args.cache_mb is not None:
            storage["cache_size_mb"] = args.cache_mb
        coll = client.create_collection(
            COLLECTION, dim=args.dim, index_type="hnsw", metric="cosine", storage=storage or None
        )
        rng = np.random.default_rng([args.seed, 0])
        t0 = time.perf_counter()
        for start in range(0, args.seed_rows, SEED_BATCH):
            stop = min(args.seed_rows, start + SEED_BATCH)
            rows = rng.standard_normal((stop - start, args.dim), dtype=np.float32)
            written = coll.bulk_add(np.arange(start, stop, dtype=np.int64), rows)
            if written != stop - start:
                raise RuntimeError(f"seeding: bulk_add wrote {written} of {stop - start} rows")
        seed_s = time.perf_counter() - t0
        out["seed"] = {
            "rows": args.seed_rows,
            "seconds": seed_s,
            "rows_per_s": args.seed_rows / seed_s if seed_s > 0 else None,
            "count_after": coll.count(),
        }

        ids = IdSource(args.seed_rows)
        stop_event = threading.Event()
        records = [Record() for _ in range(args.threads)]
        load_start = time.perf_counter()
        deadline = load_start + args.duration
        sampler = RssSampler(proc.pid, deadline + 1.0, lambda: coll.stats().memory_bytes)
        sampler.start()
        threads = [
            threading.Thread(
                target=worker,
                args=(i, coll, args, ids, deadline, stop_event, records[i]),
                name=f"load-{i}",
                daemon=True,
            )
            for i in range(args.threads)
        ]
        for t in threads:
            t.start()
        # Watch for a dead server while the workers run; bounded by the deadline.
        while time.perf_counter() < deadline and any(t.is_alive() for t in threads):
            if proc.poll() is not None:
                stop_event.set()
                break
            time.sleep(min(0.5, max(0.0, deadline - time.perf_counter())))
        hung = []
        for t in threads:
            t.join(timeout=max(0.0, deadline + JOIN_GRACE_S - time.perf_counter()))
            if t.is_alive():
                hung.append(t.name)
        wall = time.perf_counter() - load_start
        sampler.stop()
        out["server_died_during_load"] = proc.poll() is not None
        out["hung_threads"] = hung
        out["wall_s"] = wall

        merged: Dict[str, List[float]] = {k: [] for k in KINDS}
        errors: Counter[str] = Counter()
        first_error: Dict[str, str] = {}
        mismatches: List[str] = []
        for rec in records:
            for k in KINDS:
                merged[k].extend(rec.latencies[k])
            errors.update(rec.errors)
            for name, msg in rec.first_error.items():
                first_error.setdefault(name, msg)
            mismatches.extend(rec.mismatches)
        out["ops"] = {k: latency_summary(merged[k], wall) for k in KINDS}
        total = sum(len(v) for v in merged.values())
        out["total_ops"] = total
        out["total_ops_per_s"] = total / wall if wall > 0 else 0.0
        out["errors"] = dict(errors)
        out["errors_total"] = sum(errors.values())
        out["first_error_by_type"] = first_error
        out["mismatches_total"] = len(mismatches)
        out["mismatches_first"] = mismatches[:10]
        out["rows_added"] = sum(r.rows_added for r in records)
        out["rows_deleted"] = sum(r.rows_deleted for r in records)
        if not out["server_died_during_load"]:
            out["count_after"] = coll.count()
            st = coll.stats()
            out["stats_after"] = {
                "vector_count": st.vector_count,
                "deleted_count": st.deleted_count,
                "memory_bytes": st.memory_bytes,
                "disk_bytes": st.disk_bytes,
            }

        samples = sampler.samples
        half = [s for s in samples if s[0] >= args.duration / 2]
        out["rss"] = {
            "samples": len(samples),
            "start_mib": samples[0][1] / 1024.0 if samples else None,
            "end_mib": samples[-1][1] / 1024.0 if samples else None,
            "max_mib": max(k for _, k in samples) / 1024.0 if samples else None,
            "slope_last_half_mib_per_min": slope_mib_per_min(half),
            "last_half_samples": len(half),
        }
        dbs = [s for s in sampler.db_samples if s[0] >= args.duration / 2]
        out["rss"]["db_memory_start_mib"] = (
            sampler.db_samples[0][2] / 1024.0 if sampler.db_samples else None
        )
        out["rss"]["db_memory_end_mib"] = (
            sampler.db_samples[-1][2] / 1024.0 if sampler.db_samples else None
        )
        out["rss"]["db_memory_slope_last_half_mib_per_min"] = slope_mib_per_min(
            [(t, d) for t, _, d, _, _ in dbs]
        )
        out["rss"]["rss_minus_db_slope_last_half_mib_per_min"] = slope_mib_per_min(
            [(t, r - d) for t, r, d, _, _ in dbs]
        )
        out["rss"]["windows"] = windows(sampler.db_samples, args.duration)
        ends = sampler.db_samples[-1] if sampler.db_samples else None
        out["rss"]["anon_end_mib"] = ends[3] / 1024.0 if ends else None
        out["rss"]["file_end_mib"] = ends[4] / 1024.0 if ends else None
        out["rss"]["anon_slope_last_half_mib_per_min"] = slope_mib_per_min(
            [(t, a) for t, _, _, a, _ in dbs]
        )
        out["rss"]["file_slope_last_half_mib_per_min"] = slope_mib_per_min(
            [(t, f) for t, _, _, _, f in dbs]
        )
        out["rss"]["anon_minus_db_slope_last_half_mib_per_min"] = slope_mib_per_min(
            [(t, a - d) for t, _, d, a, _ in dbs]
        )
    finally:
        client.close()
    return out


# --------------------------------------------------------------------------- output


def _ms(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}"


def _f(x: Optional[float], fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_report(r: Dict[str, Any]) -> None:
    p = r["params"]
    m = r["machine"]
    print("# NusterDB server load")
    print()
    print(
        f"{p['threads']} client threads for {p['duration_s']:.0f} s on one HNSW collection "
        f"(cosine, dim {p['dim']}), seeded with {p['seed_rows']:,} rows; write fraction "
        f"{p['write_fraction']}{' (upserts only)' if p.get('upserts_only') else ''}, "
        f"memtable {p.get('write_buffer_mb') or 64} MiB, block cache "
        f"{p.get('cache_mb') or 256} MiB, seed {p['seed']}"
    )
    print(
        f"cpu: {m['cpu']}; cores: {m['cores']}; load average at start: "
        f"{m['load_average_at_start']}; python {m['python']}; nusterdb {m['nusterdb']}"
    )
    s = r.get("seed")
    if s:
        print(
            f"seeding: {s['rows']:,} rows in {s['seconds']:.2f} s "
            f"({_f(s['rows_per_s'], '{:,.0f}')} rows/s, bulk_add of {SEED_BATCH:,}); "
            f"count {s['count_after']:,}"
        )
    print()
    rows: List[List[object]] = []
    for kind in KINDS:
        o = r["ops"][kind]
        rows.append(
            [
                kind,
                f"{o['count']:,}",
                f"{o['ops_per_s']:.1f}",
                _ms(o["p50_ms"]),
                _ms(o["p99_ms"]),
                _ms(o["max_ms"]),
            ]
        )
    rows.append(["total", f"{r['total_ops']:,}", f"{r['total_ops_per_s']:.1f}", "", "", ""])
    common.print_table(["op", "count", "ops/s", "p50 ms", "p99 ms", "max ms"], rows)
    print(f"wall time of the load phase: {r['wall_s']:.1f} s")
    errs = r["errors"]
    print(
        f"errors: {r['errors_total']}"
        + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(errs.items())) + ")" if errs else "")
    )
    for name, msg in sorted(r["first_error_by_type"].items()):
        print(f"  first {name}: {msg}")
    print(f"contradicting answers: {r['mismatches_total']}")
    for msg in r["mismatches_first"]:
        print(f"  {msg}")
    if r["hung_threads"]:
        print(f"threads still running {JOIN_GRACE_S:.0f} s past the deadline: {r['hung_threads']}")
    if r["server_died_during_load"]:
        print("THE SERVER DIED DURING THE LOAD PHASE")
    print(
        f"rows: {r['rows_added']:,} added, {r['rows_deleted']:,} deleted; "
        f"count at end: {r.get('count_after', '-')}"
    )
    st = r.get("stats_after")
    if st:
        print(
            f"collection stats at end: {st['vector_count']:,} vectors, "
            f"{st['deleted_count']:,} deleted (tombstones), memory "
            f"{common.fmt_bytes(st['memory_bytes'])}, disk {common.fmt_bytes(st['disk_bytes'])}"
        )
    rss = r["rss"]
    print(
        f"server RSS (MiB): idle after start {_f(r['rss_idle_mib'])}, load start "
        f"{_f(rss['start_mib'])}, end {_f(rss['end_mib'])}, max {_f(rss['max_mib'])}, "
        f"peak VmHWM {_f(r['rss_peak_vmhwm_mib'])}; slope over the last half "
        f"{_f(rss['slope_last_half_mib_per_min'], '{:+.2f}')} MiB/min "
        f"({rss['last_half_samples']} of {rss['samples']} one-second samples)"
    )
    if rss.get("db_memory_end_mib") is not None:
        print(
            f"database memory (stats().memory_bytes, MiB): load start "
            f"{_f(rss['db_memory_start_mib'])}, end {_f(rss['db_memory_end_mib'])}, slope over "
            f"the last half {_f(rss['db_memory_slope_last_half_mib_per_min'], '{:+.2f}')} "
            f"MiB/min; RSS minus it: slope "
            f"{_f(rss['rss_minus_db_slope_last_half_mib_per_min'], '{:+.2f}')} MiB/min "
            "(sampled every 10 s)"
        )
    if rss.get("anon_end_mib") is not None:
        print(
            f"RSS by kind at the end: RssAnon {_f(rss['anon_end_mib'])} MiB (slope over the "
            f"last half {_f(rss['anon_slope_last_half_mib_per_min'], '{:+.2f}')} MiB/min; "
            f"minus the database memory "
            f"{_f(rss['anon_minus_db_slope_last_half_mib_per_min'], '{:+.2f}')} MiB/min), "
            f"RssFile {_f(rss['file_end_mib'])} MiB (mapped files; slope "
            f"{_f(rss['file_slope_last_half_mib_per_min'], '{:+.2f}')} MiB/min)"
        )
    if rss.get("windows"):
        print("median MiB by window of the load phase (RSS / RssAnon / database memory):")
        for w in rss["windows"]:
            print(
                f"  {w['from_s'] / 60:5.1f}-{w['to_s'] / 60:5.1f} min: {w['rss']:6.1f} / "
                f"{w['anon']:6.1f} / {w['db']:5.1f}"
            )
    ex = r["server_exit"]
    note = f" ({ex['note']})" if ex["note"] else ""
    print(f"server stop: SIGTERM -> exit code {ex['code']} after {ex['seconds']:.2f} s{note}")


def healthy(r: Dict[str, Any]) -> bool:
    return (
        r["errors_total"] == 0
        and r["mismatches_total"] == 0
        and not r["hung_threads"]
        and not r["server_died_during_load"]
        and r["server_exit"]["code"] == 0
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Bounded load run against a NusterDB server it starts itself."
    )
    ap.add_argument(
        "--duration", type=float, default=None, help="seconds of load (default 180; quick: 10)"
    )
    ap.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--dim", type=int, default=128, help="vector dimension (default 128)")
    ap.add_argument(
        "--seed-rows",
        type=int,
        default=None,
        help="rows added before the load (default 20000; quick: 2000)",
    )
    ap.add_argument(
        "--write-fraction",
        type=float,
        default=0.1,
        help="fraction of operations that write (default 0.1)",
    )
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument(
        "--write-buffer-mb",
        type=int,
        default=None,
        help="the collection's memtable size in MiB (default: the embedded default, 64)",
    )
    ap.add_argument(
        "--cache-mb",
        type=int,
        default=None,
        help="the collection's block cache in MiB (default: the embedded default, 256)",
    )
    ap.add_argument(
        "--upserts-only",
        action="store_true",
        help="every write an upsert of a seeded row (the row count stays fixed)",
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: 10 s, 2,000 seeded rows")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = ap.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION if args.quick else DEFAULT_DURATION
    if args.seed_rows is None:
        args.seed_rows = QUICK_SEED_ROWS if args.quick else DEFAULT_SEED_ROWS
    if not args.duration > 0:
        ap.error("--duration must be positive")
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    if args.dim < 1:
        ap.error("--dim must be at least 1")
    if args.seed_rows < K:
        ap.error(f"--seed-rows must be at least {K}")
    if not 0.0 <= args.write_fraction <= 1.0:
        ap.error("--write-fraction must be between 0 and 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    report = run(args)
    report["healthy"] = healthy(report)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print_report(report)
        if not report["healthy"]:
            print()
            print("server log (tail):")
            print(report["server_log_tail"])
    return 0 if report["healthy"] else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
