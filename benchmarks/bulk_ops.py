#!/usr/bin/env python3
"""Bulk removes and upserts on HNSW against building the same vectors.

One HNSW database (M = 16, ef_construction = 200, cosine, as ``benchmarks/ann.py``) of N
clustered float32 rows (``common.clustered``, default 50,000 x 384) is built with one
``bulk_add`` (timed: the *build*), closed, and copied once per operation; each copy is
opened and one operation timed on it:

* ``remove 10%`` / ``remove 50%`` / ``remove 100%``: ``bulk_remove`` of that many random
  stored ids in one call;
* ``upsert 10% changed`` / ``upsert 100% changed``: ``bulk_upsert`` of that many stored
  ids with new vectors (other rows from the same clusters), metadata unchanged;
* ``upsert 100% same``: ``bulk_upsert`` of every stored id with its own vector.

After each operation the recall@10 of 300 queries (``ef_search`` 64) is measured against
exact neighbours of what the database then holds (numpy, float64), so a fast repair that
broke the graph would show. The build's own recall is the reference.

With ``--python-base`` (an interpreter whose ``nusterdb`` is another build, e.g. the one
before a change) every repeat runs both builds in fresh subprocesses on the same data,
one after the other (which goes first alternates), and the report gives per-build medians
and the ratio operation / build of each, and new / base per operation (paired by
repeat). Figures are wall-clock seconds and CPU seconds of the process
(``time.process_time``, all threads).

Usage:
    .venv/bin/python benchmarks/bulk_ops.py [--n 50000] [--dim 384] [--repeats 3]
        [--python-base /path/to/other/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OPS = (
    "remove 10%",
    "remove 50%",
    "remove 100%",
    "upsert 10% changed",
    "upsert 100% changed",
    "upsert 100% same",
)
K = 10
EF_SEARCH = 64
N_QUERIES = 300


def exact_recall(db: Any, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray) -> float:
    """recall@K of the database's HNSW answers against exact cosine neighbours."""
    if len(ids) == 0:
        return float("nan")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ unit.astype(np.float64).T
    kk = min(K, len(ids))
    truth = ids[np.argsort(-sims, axis=1, kind="stable")[:, :kk]]
    found, _ = db.batch_search(queries, k=kk, ef_search=EF_SEARCH)
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / (len(queries) * kk)


def timed(fn: Any) -> Dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def worker(args: argparse.Namespace) -> None:
    from nusterdb import DatabaseConfig, HNSWConfig, NusterDB

    # The replacement rows come from the same clusters as the base and the queries.
    both, queries = common.clustered(2 * args.n, N_QUERIES, args.dim, args.seed)
    base, fresh = both[: args.n], both[args.n :]
    ids = np.arange(args.n, dtype=np.int64)
    rng = np.random.default_rng(args.seed)
    cfg = DatabaseConfig(
        args.dim,
        index_type="hnsw",
        distance_metric="cosine",
        hnsw_config=HNSWConfig(max_nb_connection=16, ef_construction=200),
    )
    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bulk-ops-") as tmp:
        built = Path(tmp) / "built"
        db = NusterDB(str(built), cfg)
        out["build"] = timed(lambda: db.bulk_add(ids, base, progress=False))
        out["build"]["recall"] = exact_recall(db, ids, base, queries)
        db.close()
        for op in OPS:
            copy = Path(tmp) / "op"
            shutil.copytree(built, copy)
            db = NusterDB.open(str(copy))
            share = int(op.split()[1].rstrip("%"))
            chosen = np.sort(rng.choice(args.n, size=args.n * share // 100, replace=False))
            vectors = base.copy()
            if op.startswith("remove"):
                res = timed(lambda: db.bulk_remove(ids[chosen]))
                keep = np.setdiff1d(ids, chosen)
            else:
                new = fresh[chosen] if op.endswith("changed") else base[chosen]
                res = timed(lambda: db.bulk_upsert(ids[chosen], new))
                vectors[chosen] = new
                keep = ids
            assert len(db) == len(keep), (op, len(db), len(keep))
            res["recall"] = exact_recall(db, keep, vectors[keep], queries)
            out[op] = res
            db.close()
            shutil.rmtree(copy)
    print(json.dumps(out))


def run(python: str, args: argparse.Namespace) -> Dict[str, Any]:
    cmd = [python, __file__, "--worker", "--n", str(args.n), "--dim", str(args.dim)]
    cmd += ["--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{python} failed:\n{proc.stderr}")
    result: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def report(runs: Dict[str, List[Dict[str, Any]]]) -> None:
    for label, reps in runs.items():
        common.section(f"{label}: seconds (median of {len(reps)}; wall / CPU), x build, recall@10")
        rows = []
        for op in ("build", *OPS):
            wall = statistics.median(r[op]["wall"] for r in reps)
            cpu = statistics.median(r[op]["cpu"] for r in reps)
            ratio = statistics.median(r[op]["wall"] / r["build"]["wall"] for r in reps)
            recall = statistics.median(r[op]["recall"] for r in reps)
            rows.append((op, f"{wall:.2f}", f"{cpu:.2f}", f"{ratio:.2f}", f"{recall:.3f}"))
        common.print_table(("operation", "wall s", "CPU s", "x build", "recall@10"), rows)
    if len(runs) == 2:
        (new_label, new), (base_label, base) = runs.items()
        common.section(f"{new_label} / {base_label}, wall time (median of paired ratios, range)")
        rows = []
        for op in ("build", *OPS):
            r = [n[op]["wall"] / b[op]["wall"] for n, b in zip(new, base)]
            rows.append((op, f"{statistics.median(r):.3f}", f"{min(r):.3f}-{max(r):.3f}"))
        common.print_table(("operation", "new/base", "range"), rows)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--python-base", help="an interpreter with the build to compare against")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    common.print_environment()
    print(f"N = {args.n:,} x {args.dim}, cosine, HNSW M=16 ef_construction=200; "
          f"rayon threads: {os.environ.get('RAYON_NUM_THREADS', 'all cores')}; load {common.load_average()}")
    builds = {"this build": sys.executable}
    if args.python_base:
        builds["base"] = args.python_base
    runs: Dict[str, List[Dict[str, Any]]] = {label: [] for label in builds}
    for rep in range(args.repeats):
        order = list(builds.items()) if rep % 2 == 0 else list(reversed(builds.items()))
        for label, python in order:
            runs[label].append(run(python, args))
            print(f"repeat {rep + 1}/{args.repeats} {label}: build "
                  f"{runs[label][-1]['build']['wall']:.2f} s", flush=True)
    report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
