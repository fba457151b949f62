"""A tour of the database: create, fill, search with filters, snapshot, reopen, HNSW.

Run from any directory; it works in a temporary directory and removes it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from nusterdb import DatabaseConfig, DatabaseLockedError, HNSWConfig, NusterDB


def main() -> None:
    rng = np.random.default_rng(7)
    dim, n = 64, 20_000
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64)
    metadata: list[dict[str, str | int | float | bool]] = [
        {"category": ["image", "text", "audio"][i % 3], "year": 2015 + i % 10, "score": i / n}
        for i in range(n)
    ]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.db"
        print(f"== exact (flat) database at {path}")
        with NusterDB(str(path), DatabaseConfig(dim, distance_metric="cosine")) as db:
            t = time.perf_counter()
            db.bulk_add(ids, vectors, metadata)
            print(f"bulk_add {n} x {dim}: {time.perf_counter() - t:.2f} s, count={len(db)}")
            q = vectors[42] + 0.01
            print("nearest to vector 42:", db.search(q, k=3))
            f = {"category": "image", "year": {"$gte": 2020}}
            hits = db.search(q, k=3, filter=f)
            print(f"filter {f}:", hits)
            for i, _ in hits:
                m = db.get_metadata(i)
                assert m is not None
                print(f"  {i}: {m.to_dict()}")
            found, dists = db.batch_search(vectors[:4], k=2)
            print("batch_search ids:\n", found, "\ndistances:\n", dists)
            db.snapshot_named("after-import")
            db.remove(42)
            print(
                "after remove(42):",
                42 in db,
                "snapshots:",
                [s["name"] for s in db.list_snapshots()],
            )
            try:
                NusterDB(str(path))
            except DatabaseLockedError as e:
                print("second writer refused:", type(e).__name__)
            reader = NusterDB.open(str(path), read_only=True)
            print("read-only follower sees", len(reader), "vectors")
            reader.close()

        with NusterDB.open(str(path)) as db:
            print("reopened:", db, "| stats:", db.stats())
            db.restore_snapshot("after-import", str(Path(tmp) / "restored.db"))
        with NusterDB.open(str(Path(tmp) / "restored.db")) as restored:
            print("restored snapshot has 42:", 42 in restored)

        print("== approximate (HNSW) database in memory")
        cfg = DatabaseConfig(dim, index_type="hnsw", hnsw_config=HNSWConfig(ef_construction=100))
        with NusterDB(None, cfg) as hdb:
            t = time.perf_counter()
            hdb.bulk_add(ids, vectors)
            print(f"HNSW build {n} x {dim}: {time.perf_counter() - t:.2f} s")
            print("HNSW nearest to vector 42:", hdb.search(vectors[42], k=3, ef_search=64))


if __name__ == "__main__":
    main()
