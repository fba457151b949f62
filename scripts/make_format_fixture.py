"""Writes tests/data/format_v<N>/: a small database made by this build, with stored
queries and their answers, so every later release can check it still opens and answers
identically (tests/python/test_format_compat.py).

Run once per on-disk format version, when the format changes:
    python scripts/make_format_fixture.py 1          # tests/data/format_v1 (flat)
    python scripts/make_format_fixture.py 1 hnsw     # tests/data/format_v1_hnsw (with
                                                     # the HNSW graph file)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
from nusterdb import DatabaseConfig, Metadata, NusterDB

ROOT = Path(__file__).resolve().parents[1]


def main(version: int, index_type: str) -> None:
    suffix = "" if index_type == "flat" else f"_{index_type}"
    out = ROOT / "tests" / "data" / f"format_v{version}{suffix}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(20261127)
    dim, n = (8, 120) if index_type == "flat" else (8, 600)
    base = rng.normal(size=(n, dim)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) * 7 + 1
    metas = [
        Metadata.with_data(
            {
                "group": int(i % 5),
                "score": float(i) / 10.0,
                "name": f"item-{i}",
                "even": i % 2 == 0,
            },
            tags=[f"t{i % 3}"],
        )
        for i in range(n)
    ]
    db_path = out / "db"
    cfg = DatabaseConfig(dim, distance_metric="cosine", index_type=index_type)
    with NusterDB(str(db_path), cfg) as db:
        db.bulk_add(ids, base, metas)
        db.remove(int(ids[5]))
        db.update(int(ids[6]), metadata={"group": 99, "name": "updated"})
        queries = rng.normal(size=(6, dim)).astype(np.float32)
        filters: list[dict[str, object] | None] = [
            None,
            {"group": 2},
            {"score": {"$gte": 3.0, "$lt": 8.0}},
            {"$tags": {"$any": ["t1"]}},
            {"$or": [{"even": True}, {"group": 99}]},
            {"name": {"$ne": "item-3"}},
        ]
        cases = []
        for q, f in zip(queries, filters):
            hits = db.search(q, k=5, filter=f)
            cases.append(
                {
                    "query": [float(x) for x in q],
                    "filter": f,
                    "ids": [i for i, _ in hits],
                    "distances": [d for _, d in hits],
                }
            )
        records = {
            str(i): {
                "vector": [float(x) for x in v.data],
                "metadata": m.to_dict(),
                "tags": m.tags(),
            }
            for i in db.list_ids()
            for v, m in [(db.get(i), db.get_metadata(i))]
            if v is not None and m is not None
        }
    # RocksDB's informational logs are not part of the format.
    for log in db_path.glob("LOG*"):
        log.unlink()
    (out / "expected.json").write_text(
        json.dumps(
            {
                "dim": dim,
                "metric": "cosine",
                "index_type": index_type,
                "cases": cases,
                "records": records,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1,
        sys.argv[2] if len(sys.argv) > 2 else "flat",
    )
