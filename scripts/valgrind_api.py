"""Exercises NusterDB's Python API once, end to end, for a valgrind run (RELIABILITY.md T8,
long tier): create, write, search, filter, snapshot, restore, reopen, a read-only
follower, HNSW with its graph file, rejected calls. Small sizes: under valgrind every
call is ~50 times slower.

    PYTHONMALLOC=malloc valgrind --leak-check=full python scripts/valgrind_api.py

Run by scripts/reliability_long.sh, which judges valgrind's report (definitely lost in
NusterDB's frames: 0).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from nusterdb import DatabaseConfig, Metadata, NusterDB, NusterDBError


def exercise(root: Path, kind: str) -> None:
    rng = np.random.default_rng(7)
    dim, n = 16, 300
    path = root / kind
    cfg = DatabaseConfig(dim, index_type=kind, distance_metric="cosine")
    with NusterDB(str(path), cfg) as db:
        db.bulk_add(
            np.arange(n),
            rng.standard_normal((n, dim)).astype(np.float32),
            [
                Metadata.with_data({"i": i, "g": i % 3, "s": f"r{i}"}, tags=[f"t{i % 4}"])
                for i in range(n)
            ],
        )
        db.add(n, rng.standard_normal(dim).astype(np.float32), {"i": n, "g": 0})
        db.upsert(1, rng.standard_normal(dim).astype(np.float32), {"i": 1, "g": 2})
        db.update(2, metadata={"i": 2, "g": 1})
        db.remove(3)
        db.bulk_remove([4, 5, 6])
        q = rng.standard_normal(dim).astype(np.float32)
        assert len(db.search(q, k=10)) == 10
        assert db.search(q, k=5, filter={"$and": [{"g": 1}, {"$tags": {"$any": ["t1"]}}]})
        ids, _dists = db.batch_search(rng.standard_normal((8, dim)).astype(np.float32), k=4)
        assert ids.shape == (8, 4)
        v = db.get(10)
        m = db.get_metadata(10)
        assert v is not None
        assert m is not None
        _ = (v.to_numpy(), m.to_dict(), m.tags(), db.stats().vector_count, db.list_ids())
        for bad in (
            lambda: db.add(10, [0.0] * dim),
            lambda: db.search([float("nan")] * dim, k=1),
            lambda: db.search([0.0] * (dim + 1), k=1),
            lambda: db.search(q, k=1, filter={"$bogus": 1}),
        ):
            with contextlib.suppress(NusterDBError, ValueError):
                bad()
        db.snapshot_named("s1")
        db.flush()
        with NusterDB.open(str(path), read_only=True) as ro:
            assert ro.count() == db.count()
            ro.refresh()
        db.restore_snapshot("s1", str(root / f"{kind}-restored"))
    with NusterDB.open(str(root / f"{kind}-restored")) as r:
        assert r.count() == n + 1 - 4
    with NusterDB.open(str(path)) as db:
        assert db.count() == n + 1 - 4
        db.delete_snapshot("s1")


def main() -> int:
    warnings.simplefilter("error")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("flat", "hnsw"):
            exercise(Path(tmp), kind)
        with NusterDB(None, dim=4) as mem:
            mem.add(1, [1.0, 2.0, 3.0, 4.0])
            assert mem.search([1.0, 2.0, 3.0, 4.0], k=1)[0][0] == 1
    print("valgrind_api: every call done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
