#!/usr/bin/env python3
"""Recall targets: ``search(..., recall=r)`` against the recall it delivers.

For each dataset (``benchmarks/datasets.py``: ``synthetic`` 100,000 x 128 clustered,
euclidean; ``real`` ~56,000 x 384 all-MiniLM-L6-v2 sentence embeddings, cosine) and each
index (``hnsw`` with its defaults, ``ivf`` with ``quantization="rabitq"``), one in-memory
database is built with one ``bulk_add``; then:

1. ``search_params_for(0.9)`` — the first curve, measured on queries made from the rows
   (its time is printed);
2. ``batch_search(queries[:half], recall=0.9)`` — searches asking for a target, which the
   database samples; the curves are measured again on them (time printed); ``half`` is
   500 (the sample the database keeps) or half the queries if fewer: the real set has
   1,000 queries, the synthetic one ``--synthetic-queries`` (default 5,000: with recall@10
   varying by ~0.15 from query to query, 4,500 held-out queries measure it to a standard
   error of ~0.0025, 500 to ~0.007);
3. for each target, ``search_params_for(target)`` (the knob it sets) and recall@10 and
   QPS (one thread) of single searches ``search(q, k=10, recall=target)`` over
   ``queries[half:]`` — queries no curve saw — against the exact top-10 (float64 brute
   force; ids compared); for IVF also recall@10 and QPS at the curve's first whole
   ``nprobe`` reaching the target (the setting without a probe reach).

4. with ``--filtered`` (percentages, default ``10,1``): every row carries
   ``{"bucket": id % 100}``; per percentage ``s`` the filter ``{"bucket": {"$lt": s}}``
   (its own selectivity band) gets the same treatment — ``batch_search`` of the first
   half with the filter and ``recall=0.9``, then per target recall@10 of the second half
   against the exact top-10 over the allowed rows. ``--filtered ''`` skips it.

Usage:
    .venv/bin/python benchmarks/recall_target.py [--dataset real|synthetic|both] [--filtered 10,1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets
import nusterdb

TARGETS = (0.8, 0.9, 0.95, 0.99)


def measure(
    db: nusterdb.NusterDB,
    queries: np.ndarray,
    truth: np.ndarray,
    f: Optional[Dict[str, Any]],
    **kw: Any,
) -> Tuple[float, float]:
    """Recall@10 of single searches of ``queries`` against ``truth`` (their exact top
    ids), and their QPS."""
    t0 = time.perf_counter()
    got: List[Sequence[int]] = [[i for i, _ in db.search(q, k=10, filter=f, **kw)] for q in queries]
    qps = len(queries) / (time.perf_counter() - t0)
    found = sum(len(set(g) & set(truth[j][:10].tolist())) for j, g in enumerate(got))
    return found / (10 * len(got)), qps


def run(name: str, filtered: Sequence[int], synthetic_queries: int) -> None:
    if name == "synthetic":
        ds = datasets.synthetic(n_queries=synthetic_queries)
    else:
        ds = datasets.load(name)
    base = ds.base.astype(np.float32)
    queries = ds.queries.astype(np.float32)
    ids = np.arange(len(base), dtype=np.int64)
    buckets = ids % 100
    # The searches asked first: as many as the sample the database keeps (500), at most
    # half the queries; recall is measured on the rest, which no curve saw.
    half = min(500, len(queries) // 2)
    for index, quantization in (("hnsw", None), ("ivf", "rabitq")):
        cfg = nusterdb.DatabaseConfig(
            base.shape[1], index_type=index, distance_metric=ds.metric, quantization=quantization
        )
        db = nusterdb.NusterDB(None, cfg)
        db.bulk_add(ids, base, metadata=[{"bucket": int(b)} for b in buckets])
        t0 = time.perf_counter()
        db.search_params_for(0.9)
        first = time.perf_counter() - t0
        print(f"{name} {index}: n={len(base):,}: first curve {first:.2f} s")
        for share in [None, *filtered]:
            f = None if share is None else {"bucket": {"$lt": share}}
            allowed = None if share is None else buckets < share
            truth = datasets.exact_knn(base, queries, 10, ds.metric, allowed)[0]
            t0 = time.perf_counter()
            db.batch_search(queries[:half], k=10, filter=f, recall=0.9)
            again = time.perf_counter() - t0
            what = "no filter" if share is None else f"filter allowing {share} %"
            print(f"  {what}: {half} searches asked, curve measured again on them: {again:.2f} s")
            held_out, truth_out = queries[half:], truth[half:]
            for target in TARGETS:
                recall, qps = measure(db, held_out, truth_out, f, recall=target)
                setting = db.search_params_for(target, filter=f)
                line = (
                    f"    target {target:.2f}: {setting} -> recall@10 {recall:.3f} "
                    f"({recall - target:+.3f}), {qps:,.0f} QPS"
                )
                if index == "ivf":
                    # The same target with a whole nprobe alone: the curve's first point
                    # reaching it (what targets chose before reaches).
                    points = db.recall_curves()[-1]["points"]
                    whole = next((v for v, r in points if r >= target), points[-1][0])
                    r_whole, qps_whole = measure(db, held_out, truth_out, f, nprobe=whole)
                    line += (
                        f"; whole nprobe {whole}: {r_whole:.3f} ({r_whole - target:+.3f}), "
                        f"{qps_whole:,.0f} QPS"
                    )
                print(line)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("real", "synthetic", "both"), default="both")
    p.add_argument(
        "--filtered",
        default="10,1",
        help="percentages of the rows a filter allows, comma-separated ('' for none)",
    )
    p.add_argument(
        "--synthetic-queries",
        type=int,
        default=5000,
        help="queries of the synthetic set: 500 asked, the rest held out (more held-out "
        "queries measure recall to less noise)",
    )
    args = p.parse_args(argv)
    filtered = [int(x) for x in args.filtered.split(",") if x]
    print(f"nusterdb {nusterdb.__version__} ({nusterdb.simd_isa()})")
    for name in ("real", "synthetic") if args.dataset == "both" else (args.dataset,):
        run(name, filtered, args.synthetic_queries)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
