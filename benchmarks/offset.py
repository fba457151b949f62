#!/usr/bin/env python3
"""HNSW recall on data far from the origin: NusterDB vs hnswlib at equal ef.

Rows are clustered (``common.clustered``: standard-normal centres plus noise of 0.35),
scaled by 0.1 and shifted by a common offset in every component (0, 100, 10,000), as
unnormalised features such as pixel intensities or sensor readings are. Both libraries
build with M = 16 and ef_construction = 200 from the same float32 rows; recall@10 is
measured against float64 brute force at each ef_search of the sweep, one query at a time,
on one thread. NusterDB's HNSW walks the graph on 8-bit codes of the rows centred on
their mean, with an exact re-rank; hnswlib walks on the float32 rows.

Usage (peers in their own venv, see benchmarks/requirements.txt):
    .venv-bench/bin/python benchmarks/offset.py            # 20,000 x 384, 200 queries
    .venv-bench/bin/python benchmarks/offset.py --quick    # 5,000 x 128
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Sequence

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import clustered, print_environment, print_table


def truth(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    b = base.astype(np.float64)
    out = np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries.astype(np.float64)):
        # Direct differences (no |x|^2 - 2 q.x expansion): exact on offset data.
        d = ((b - q) ** 2).sum(axis=1)
        out[i] = np.argsort(d, kind="stable")[:k]
    return out


def recall(base: np.ndarray, queries: np.ndarray, found: np.ndarray, gt: np.ndarray) -> float:
    """A hit is a returned row within the true k-th distance (+1e-5 relative)."""
    b = base.astype(np.float64)
    hits = 0
    for q, f, g in zip(queries.astype(np.float64), found, gt):
        d = np.sqrt(((b[g] - q) ** 2).sum(axis=1))
        kth = d.max()
        fd = np.sqrt(((b[f[f >= 0]] - q) ** 2).sum(axis=1))
        hits += int((fd <= kth * (1 + 1e-5)).sum())
    return hits / gt.size


def main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ef", default="10,20,40,80")
    args = ap.parse_args(argv)
    import hnswlib
    import nusterdb
    from nusterdb import DatabaseConfig, HNSWConfig, NusterDB

    n, d, nq = (5_000, 128, 100) if args.quick else (20_000, 384, 200)
    efs = [int(x) for x in args.ef.split(",")]
    print_environment()
    print(f"nusterdb {nusterdb.__version__}, hnswlib {getattr(hnswlib, '__version__', '?')}")
    base0, q0 = clustered(n, nq, d, seed=11)
    rows: List[List[str]] = []
    for offset in (0.0, 100.0, 10_000.0):
        base = (base0 * np.float32(0.1) + np.float32(offset)).astype(np.float32)
        qs = (q0 * np.float32(0.1) + np.float32(offset)).astype(np.float32)
        gt = truth(base, qs, 10)
        db = NusterDB(
            None,
            DatabaseConfig(
                d,
                index_type="hnsw",
                hnsw_config=HNSWConfig(
                    max_nb_connection=16, ef_construction=200, max_nb_elements=n
                ),
            ),
        )
        t = time.perf_counter()
        db.bulk_add(np.arange(n), base)
        nb = time.perf_counter() - t
        h = hnswlib.Index(space="l2", dim=d)
        h.init_index(max_elements=n, M=16, ef_construction=200)
        h.set_num_threads(1)
        t = time.perf_counter()
        h.add_items(base, np.arange(n))
        hb = time.perf_counter() - t
        for ef in efs:
            found_n = np.array([[i for i, _ in db.search(q, k=10, ef_search=ef)] for q in qs])
            h.set_ef(max(ef, 10))
            found_h = np.array([h.knn_query(q, k=10)[0][0] for q in qs])
            rn, rh = recall(base, qs, found_n, gt), recall(base, qs, found_h, gt)
            rows.append([f"{offset:g}", str(ef), f"{rn:.3f}", f"{rh:.3f}", f"{rn - rh:+.3f}"])
        print(f"offset {offset:g}: build {nb:.1f} s NusterDB (1 thread), {hb:.1f} s hnswlib")
        db.close()
    print_table(
        ["offset", "ef_search", "NusterDB recall@10", "hnswlib recall@10", "difference"], rows
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
