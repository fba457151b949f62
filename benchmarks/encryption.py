#!/usr/bin/env python3
"""The cost of encryption at rest: the same data through a plaintext and an encrypted
database, in one run.

Data: ``--n`` clustered float32 rows of dimension ``--dim`` (``common.clustered``, 100
Gaussian centres, fixed seed), ids 0..n-1, each with metadata ``{"k": i % 10, "tag":
"t<i % 7>"}`` and document ``"doc <i>"``; ``--queries`` further rows from the same
clusters are held out and perturbed (Gaussian noise, standard deviation 0.05) to make
the queries. Each mode gets a fresh database (HNSW, default config, euclidean) in a
temporary directory:

* ``plaintext mmap``: the default (``vectors="mmap"``);
* ``plaintext memory``: ``vectors="memory"``, where an encrypted database keeps its rows,
  so the comparison with it is like for like;
* ``encrypted``: ``EncryptionConfig`` with a random 32-byte key (AES-256-GCM).

and is measured, in this order:

1. ingest: one ``bulk_add`` of every row with metadata and documents, then ``flush()``;
   rows/s of both together and seconds of each;
2. reopen: ``close()``, then the open (``NusterDB.open`` with the mode's ``vectors`` or
   ``encryption``) and its first ``search``: seconds to open and to the first answer;
3. search: single thread, one ``search(q, k=10)`` call per query over every query,
   median QPS of 3 repetitions; recall@10 against exact euclidean neighbours (numpy), so
   it shows every mode answers alike;
4. get: 1,000 random stored ids, both as one ``get_many(ids)`` (vectors, metadata and
   documents) and as 1,000 ``get(id)`` calls; ids/s, median of 3;
5. disk: bytes of the database's directory (sum of file sizes) after the final close.

The report gives each figure per mode and the ratios encrypted / plaintext memory and
encrypted / plaintext mmap (for rates, above 1 means encryption is faster), plus the
processor and ``nusterdb.simd_isa()``. Timings use ``time.perf_counter``; on a shared
machine they are noisy, the load average is printed with them.

Usage:
    .venv/bin/python benchmarks/encryption.py [--n 100000] [--dim 128] [--queries 1000]
        [--seed 7] [--json PATH]
    .venv/bin/python benchmarks/encryption.py --quick   # n = 20,000, 300 queries
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import nusterdb

K = 10
N_CLUSTERS = 100
QUERY_NOISE = 0.05
SEARCH_REPEATS = 3
GET_IDS = 1_000
GET_REPEATS = 3
MODES = ("plaintext mmap", "plaintext memory", "encrypted")
#: (key, label, kind): kind "rate" is higher-is-better, "s" and "bytes" lower-is-better.
FIGURES: Tuple[Tuple[str, str, str], ...] = (
    ("ingest_rows_per_s", "ingest rows/s (bulk_add + flush)", "rate"),
    ("bulk_add_s", "bulk_add s", "s"),
    ("flush_s", "flush s", "s"),
    ("ingest_s", "bulk_add + flush s", "s"),
    ("open_s", "reopen: open s", "s"),
    ("first_answer_s", "reopen: open + first search s", "s"),
    ("search_qps", f"search QPS (k={K}, 1 thread)", "rate"),
    ("recall_at_10", "recall@10", "recall"),
    ("get_many_ids_per_s", f"get_many ids/s ({GET_IDS:,} ids)", "rate"),
    ("get_ids_per_s", f"get ids/s ({GET_IDS:,} calls)", "rate"),
    ("disk_bytes", "disk bytes", "bytes"),
)


def make_data(
    n: int, n_queries: int, dim: int, seed: int
) -> Tuple[common.F32, common.F32, common.I64]:
    """(base rows, queries, exact top-K ids of each query among the base rows)."""
    rows, _ = common.clustered(n + n_queries, 0, dim, seed, n_clusters=N_CLUSTERS)
    base = np.ascontiguousarray(rows[:n])
    rng = np.random.default_rng(seed + 1)
    noise = rng.standard_normal((n_queries, dim), dtype=np.float32) * np.float32(QUERY_NOISE)
    queries = np.ascontiguousarray(rows[n:] + noise, dtype=np.float32)
    return base, queries, exact_neighbours(base, queries)


def exact_neighbours(base: common.F32, queries: common.F32) -> common.I64:
    """The K nearest base rows (euclidean, float64) of each query, nearest first."""
    b = base.astype(np.float64)
    b_sq = np.einsum("ij,ij->i", b, b)
    out = np.empty((len(queries), K), dtype=np.int64)
    block = 256
    for start in range(0, len(queries), block):
        q = queries[start : start + block].astype(np.float64)
        d = b_sq[None, :] - 2.0 * (q @ b.T)  # + |q|^2, the same for every row
        part = np.argpartition(d, K, axis=1)[:, :K]
        order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1, kind="stable")
        out[start : start + block] = np.take_along_axis(part, order, axis=1)
    return out


def create_config(dim: int, mode: str, enc: nusterdb.EncryptionConfig) -> nusterdb.DatabaseConfig:
    if mode == "plaintext mmap":
        return nusterdb.DatabaseConfig(dim, index_type="hnsw")
    if mode == "plaintext memory":
        return nusterdb.DatabaseConfig(dim, index_type="hnsw", vectors="memory")
    return nusterdb.DatabaseConfig(dim, index_type="hnsw", encryption=enc)


def reopen(path: Path, mode: str, enc: nusterdb.EncryptionConfig) -> nusterdb.NusterDB:
    if mode == "plaintext mmap":
        return nusterdb.NusterDB.open(str(path))
    if mode == "plaintext memory":
        return nusterdb.NusterDB.open(str(path), vectors="memory")
    return nusterdb.NusterDB.open(str(path), encryption=enc)


def run_mode(
    mode: str,
    base: common.F32,
    queries: common.F32,
    truth: common.I64,
    get_ids: List[int],
    enc: nusterdb.EncryptionConfig,
) -> Dict[str, Any]:
    n, dim = base.shape
    ids = np.arange(n, dtype=np.int64)
    metadata: List[Optional[Dict[str, Union[str, int, float, bool]]]] = [
        {"k": i % 10, "tag": f"t{i % 7}"} for i in range(n)
    ]
    documents: List[Optional[str]] = [f"doc {i}" for i in range(n)]
    out: Dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="nusterdb-enc-bench-"))
    path = tmp / "db"
    try:
        # 1. ingest
        db = nusterdb.NusterDB(str(path), config=create_config(dim, mode, enc))
        t0 = time.perf_counter()
        added = db.bulk_add(ids, base, metadata=metadata, documents=documents, progress=False)
        t1 = time.perf_counter()
        db.flush()
        t2 = time.perf_counter()
        if added != n:
            raise RuntimeError(f"{mode}: bulk_add added {added} of {n} rows")
        out["bulk_add_s"] = t1 - t0
        out["flush_s"] = t2 - t1
        out["ingest_s"] = t2 - t0
        out["ingest_rows_per_s"] = n / (t2 - t0)
        db.close()

        # 2. reopen, to the first answer
        t0 = time.perf_counter()
        db = reopen(path, mode, enc)
        t1 = time.perf_counter()
        db.search(queries[0], k=K)
        t2 = time.perf_counter()
        out["open_s"] = t1 - t0
        out["first_answer_s"] = t2 - t0
        if len(db) != n:
            raise RuntimeError(f"{mode}: reopened with {len(db)} rows, expected {n}")

        # 3. search: one query per call, median of SEARCH_REPEATS passes
        found = np.full((len(queries), K), -1, dtype=np.int64)
        secs = []
        for rep in range(SEARCH_REPEATS):
            t0 = time.perf_counter()
            for qi in range(len(queries)):
                hits = db.search(queries[qi], k=K)
                if rep == 0:
                    found[qi, : len(hits)] = [h[0] for h in hits]
            secs.append(time.perf_counter() - t0)
        out["search_s"] = secs
        out["search_qps"] = len(queries) / statistics.median(secs)
        out["recall_at_10"] = common.recall_at_k(found, truth)

        # 4. get: one get_many of GET_IDS ids, and GET_IDS get calls
        many = common.time_repeats(lambda: db.get_many(get_ids), GET_REPEATS)
        got = db.get_many(get_ids)
        if len(got["ids"]) != len(get_ids):
            raise RuntimeError(f"{mode}: get_many found {len(got['ids'])} of {len(get_ids)}")

        def get_each() -> None:
            for i in get_ids:
                if db.get(i) is None:
                    raise RuntimeError(f"{mode}: get({i}) found nothing")

        single = common.time_repeats(get_each, GET_REPEATS)
        out["get_many_ids_per_s"] = many.rate(len(get_ids))
        out["get_ids_per_s"] = single.rate(len(get_ids))
        db.close()

        # 5. disk
        out["disk_bytes"] = common.dir_size(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def fmt_value(kind: str, x: float) -> str:
    if kind == "rate":
        return common.fmt_rate(x)
    if kind == "s":
        return f"{x:.4f}"
    if kind == "recall":
        return f"{x:.4f}"
    return f"{int(x):,} ({common.fmt_bytes(x)})"


def report(results: Dict[str, Dict[str, Any]]) -> None:
    enc, mem, mmap = results["encrypted"], results["plaintext memory"], results["plaintext mmap"]
    rows = []
    for key, label, kind in FIGURES:
        cells = [fmt_value(kind, results[m][key]) for m in MODES]
        ratios = [f"{enc[key] / other[key]:.3f}" if other[key] else "n/a" for other in (mem, mmap)]
        rows.append((label, *cells, *ratios))
    headers = ("figure", *MODES, "enc / plain memory", "enc / plain mmap")
    common.print_table(headers, rows)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=100_000, help="rows (default 100,000)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="n = 20,000 and 300 queries")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.queries = 20_000, 300
    if args.n < max(K, GET_IDS) or args.queries < 1 or args.dim < 1:
        p.error(f"need --n >= {max(K, GET_IDS)}, --queries >= 1 and --dim >= 1")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    cpu, isa = common.cpu_model(), nusterdb.simd_isa()
    print(f"cpu: {cpu}")
    print(f"nusterdb {nusterdb.__version__}, simd_isa: {isa}, cores: {os.cpu_count()}")
    print(
        f"N = {args.n:,} x {args.dim} clustered float32 ({N_CLUSTERS} centres, seed "
        f"{args.seed}), {args.queries:,} queries, HNSW default config, euclidean"
    )
    base, queries, truth = make_data(args.n, args.queries, args.dim, args.seed)
    rng = np.random.default_rng(args.seed + 2)
    get_ids = [int(i) for i in rng.choice(args.n, size=GET_IDS, replace=False)]
    enc = nusterdb.EncryptionConfig(os.urandom(32))
    results: Dict[str, Dict[str, Any]] = {}
    for mode in MODES:
        print(f"{mode}: load {common.load_average()} ...", flush=True)
        results[mode] = run_mode(mode, base, queries, truth, get_ids, enc)
    common.section("encryption at rest: plaintext against encrypted")
    report(results)
    if args.json:
        doc = {
            "cpu": cpu,
            "simd_isa": isa,
            "nusterdb": nusterdb.__version__,
            "n": args.n,
            "dim": args.dim,
            "queries": args.queries,
            "seed": args.seed,
            "load_average_end": common.load_average(),
            "results": results,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
