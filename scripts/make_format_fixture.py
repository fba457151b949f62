"""Writes tests/data/format_v<N>.../: a small database made by this build, with stored
queries and their answers, so every later release can check it still opens and answers
identically (tests/python/test_format_compat.py).

Run once per on-disk format version, when the format changes:
    python scripts/make_format_fixture.py 1          # tests/data/format_v1 (flat)
    python scripts/make_format_fixture.py 1 hnsw     # tests/data/format_v1_hnsw (with
                                                     # the HNSW graph file)
    python scripts/make_format_fixture.py 2 hnsw str # tests/data/format_v2_str (HNSW,
                                                     # string ids and documents)
    python scripts/make_format_fixture.py 3 hnsw str # tests/data/format_v3_str (the
                                                     # change log and a seal's files)

The version given must be the format marker this build writes for such a database
(checked). Builds before the change log wrote format 1 for int ids without documents
and format 2 otherwise; this build creates every database as format 3.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
from nusterdb import DatabaseConfig, Metadata, NusterDB

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from proc_helpers import wal_format_markers  # noqa: E402


def str_ids(n: int) -> List[str]:
    """String ids beyond ASCII, of varying length, whose UTF-8 order is not their
    creation order."""
    heads = ["\u03b1", "b", "文書", "z", "Ü"]
    return [f"{heads[i % 5]}-{i}-é" for i in range(n)]


def document(i: int) -> Optional[str]:
    """Every 9th row has no document; the others a few to a few hundred bytes of UTF-8."""
    if i % 9 == 4:
        return None
    return f"document {i}: ü€😀 " + "文" * (i % 37)


def main(version: int, index_type: str, id_type: str) -> None:
    suffix = "" if index_type == "flat" else f"_{index_type}"
    if id_type == "str":
        suffix = "_str" if index_type == "hnsw" else f"_str_{index_type}"
    out = ROOT / "tests" / "data" / f"format_v{version}{suffix}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(20261127)
    dim, n = (8, 120) if index_type == "flat" else (8, 600)
    base = rng.normal(size=(n, dim)).astype(np.float32)
    ids: Union[List[str], np.ndarray] = (
        str_ids(n) if id_type == "str" else np.arange(n, dtype=np.int64) * 7 + 1
    )

    def key(p: int) -> Union[int, str]:
        return str(ids[p]) if id_type == "str" else int(ids[p])

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
    cfg = DatabaseConfig(dim, distance_metric="cosine", index_type=index_type, id_type=id_type)
    with NusterDB(str(db_path), cfg) as db:
        if id_type == "str":
            db.bulk_add(ids, base, metas, documents=[document(i) for i in range(n)])
            db.remove(key(5))
            db.update(
                key(6),
                metadata={"group": 99, "name": "updated"},
                document="replaced ✓",
                merge=False,
            )
            db.upsert(key(7), rng.normal(size=dim).astype(np.float32), document="upserted ✓")
            db.update(key(8), metadata={"group": 98}, merge=False)  # the document kept
        else:
            db.bulk_add(ids, base, metas)
            db.remove(key(5))
            db.update(key(6), metadata={"group": 99, "name": "updated"}, merge=False)
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
            case: Dict[str, Any] = {"query": [float(x) for x in q], "filter": f}
            if id_type == "str":
                hits = db.search(q, k=5, filter=f, include=["document"])
                case["ids"] = [h.id for h in hits]
                case["distances"] = [h.distance for h in hits]
                case["documents"] = [h.document for h in hits]
            else:
                pairs = db.search(q, k=5, filter=f)
                case["ids"] = [i for i, _ in pairs]
                case["distances"] = [d for _, d in pairs]
            cases.append(case)
        records: Dict[str, Dict[str, Any]] = {}
        for i in db.list_ids():
            v, m = db.get(i), db.get_metadata(i)
            assert v is not None
            assert m is not None
            rec: Dict[str, Any] = {
                "vector": [float(x) for x in v.data],
                "metadata": m.to_dict(),
                "tags": m.tags(),
            }
            if id_type == "str":
                rec["document"] = db.get_document(i)
            records[str(i)] = rec
    markers = [x for log in sorted(db_path.glob("*.log")) for x in wal_format_markers(log)]
    if markers != [version]:
        raise SystemExit(f"this build wrote format markers {markers}, not [{version}]")
    # RocksDB's informational logs are not part of the format.
    for log in db_path.glob("LOG*"):
        log.unlink()
    (out / "expected.json").write_text(
        json.dumps(
            {
                "dim": dim,
                "metric": "cosine",
                "index_type": index_type,
                "id_type": id_type,
                "format": version,
                "cases": cases,
                "records": records,
            },
            indent=1,
            ensure_ascii=False,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1,
        sys.argv[2] if len(sys.argv) > 2 else "flat",
        sys.argv[3] if len(sys.argv) > 3 else "int",
    )
