"""The child of the kill -9 tests of seals (RELIABILITY.md "T1 seals", test_seals.py),
and the batches it writes, shared with the parent that checks what survived.

``python seal_worker.py batches PATH SEED FIRST_BATCH SEAL_EVERY``: opens the database and writes
batches ``FIRST_BATCH``, ``FIRST_BATCH + 1``, ... until it is killed. Each batch is one
atomic call: ``bulk_add`` of fresh ids, ``bulk_upsert`` of stored and fresh ids, or
``bulk_remove`` of stored ids, logged ``P b add|upsert|remove id...`` before the call and
``A b`` after it returns. After every ``SEAL_EVERY``-th batch it calls ``db.seal()``,
logged ``S b`` / ``SA b``, so a kill often lands while a seal writes its files.

``python seal_worker.py tail PATH SEED``: opens the database (:func:`base_rows` stored and
sealed), writes :func:`tail_ops`, logs ``ack`` and waits to be killed: a writer that
never closes, so the next open must replay the tail.

The database decides the ids (``id_type``): int ids, or strings ``crash_workload.str_id``
with a document on most rows. Vectors, metadata and documents of batch ``b`` derive from
(seed, b), so the parent rebuilds every write from its log line (:func:`apply_batch`). On
an IVF database (:data:`CLUSTERED`) the vectors lie around fixed centres instead of
N(0, 1) (:func:`draw`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt
from crash_workload import Fields, Scalar, db_ids, int_id

if TYPE_CHECKING:
    from nusterdb import NusterDB

DIM = 16
#: Live ids the workload hovers around: enough that a seal takes some milliseconds.
TARGET = 3000
MIN_ROWS, MAX_ROWS = 200, 500

#: Index types whose vectors are clustered (:func:`draw`): an IVF index finds the
#: neighbours at its default nprobe on rows with some structure, while on N(0, 1) rows in
#: 16 dimensions it finds only about 0.8 of the 10 nearest (8 of ~30-60 lists probed).
CLUSTERED = frozenset({"ivf"})
#: The centres of clustered vectors (2·N(0, 1), as test_ivf's ``clustered`` rows).
BLOBS = 32

#: What one id holds: vector bytes (little-endian f32), sorted metadata items, document.
Frozen = Tuple[Tuple[str, Tuple[str, Scalar]], ...]
State = Tuple[bytes, Frozen, Optional[str]]


def draw(g: np.random.Generator, k: int, seed: int, clustered: bool) -> npt.NDArray[np.float32]:
    """``k`` vectors from ``g``: N(0, 1), or (``clustered``) each a random one of the
    :data:`BLOBS` centres of ``seed`` plus N(0, 1) noise."""
    if not clustered:
        return g.standard_normal((k, DIM), dtype=np.float32)
    centres = 2.0 * np.random.default_rng([seed, 8]).standard_normal((BLOBS, DIM))
    return (centres[g.integers(0, BLOBS, k)] + g.standard_normal((k, DIM))).astype(np.float32)


def batch_rows(seed: int, b: int, k: int, clustered: bool = False) -> npt.NDArray[np.float32]:
    """The ``k`` vectors of batch ``b``."""
    return draw(np.random.default_rng([seed, b, 1]), k, seed, clustered)


def row_metadata(b: int, r: int) -> Fields:
    return {"b": b, "r": r, "even": r % 2 == 0, "x": b + r / 4.0}


def row_document(b: int, r: int) -> Optional[str]:
    """The document of row ``r`` of batch ``b`` on a string-id database: every 5th row
    has none (on an upsert of a stored id: the stored one is kept)."""
    if r % 5 == 2:
        return None
    return f"b{b} r{r} ü€😀 " + "ä" * ((b * 13 + r) % 120)


def frozen(meta: Mapping[str, Scalar]) -> Frozen:
    # The type is part of the value: 1, 1.0 and True differ.
    return tuple(sorted((k, (type(v).__name__, v)) for k, v in meta.items()))


def apply_batch(
    model: Dict[int, State],
    seed: int,
    b: int,
    op: str,
    ids: Sequence[int],
    strs: bool,
    clustered: bool = False,
) -> Dict[int, Optional[State]]:
    """The new state of every id batch ``b`` touches (None: removed), given ``model``
    before it; ``model`` itself is not changed."""
    out: Dict[int, Optional[State]] = {}
    if op == "remove":
        return {i: None for i in ids}
    vs = batch_rows(seed, b, len(ids), clustered)
    for r, i in enumerate(ids):
        doc = row_document(b, r) if strs else None
        old = model.get(i)
        if doc is None and op == "upsert" and old is not None:
            doc = old[2]
        out[i] = (vs[r].astype("<f4").tobytes(), frozen(row_metadata(b, r)), doc)
    return out


def parse(lines: Sequence[str]) -> List[Tuple[int, str, List[int], bool]]:
    """``(b, op, ids, acknowledged)`` of every batch logged in ``lines``, in order."""
    out: List[Tuple[int, str, List[int], bool]] = []
    acked = {int(ln.split()[1]) for ln in lines if ln.startswith("A ")}
    for ln in lines:
        if ln.startswith("P "):
            parts = ln.split()
            b = int(parts[1])
            out.append((b, parts[2], [int(x) for x in parts[3:]], b in acked))
    return out


def _choose(rng: np.random.Generator, live: List[int], fresh: int) -> Tuple[str, List[int], int]:
    """The op and ids of the next batch, and the next fresh id."""
    k = int(rng.integers(MIN_ROWS, MAX_ROWS + 1))
    r = float(rng.random())
    # Below TARGET // 2 + MAX_ROWS only adds: a remove never takes the database under
    # TARGET // 2 rows (an IVF database keeps its lists: it drops them under 1,024).
    if len(live) < TARGET // 2 + MAX_ROWS or (r < 0.4 and len(live) < TARGET * 1.3):
        return "add", list(range(fresh, fresh + k)), fresh + k
    if r < 0.75:
        # Above the target an upsert replaces stored ids only: the database stays small.
        share = 1 if len(live) > TARGET * 1.3 else 2 / 3
        old = rng.choice(len(live), size=min(len(live), int(k * share)), replace=False)
        new_ids = list(range(fresh, fresh + k - len(old)))
        ids = [live[int(p)] for p in old] + new_ids
        return "upsert", [ids[int(p)] for p in rng.permutation(len(ids))], fresh + len(new_ids)
    picked = rng.choice(len(live), size=min(len(live), k), replace=False)
    return "remove", sorted(live[int(p)] for p in picked), fresh


#: Rows of the sealed database the tail test starts from.
BASE_ROWS = 3000


def base_rows(seed: int, n: int = BASE_ROWS, clustered: bool = False) -> Dict[int, State]:
    """Ids ``0..n`` of the tail and damage tests: vectors, metadata ``{"i", "g"}``, and
    (string ids) documents on most rows; the document is dropped by the caller on int ids."""
    vs = draw(np.random.default_rng([seed, 0]), n, seed, clustered)
    return {
        i: (
            vs[i].astype("<f4").tobytes(),
            frozen({"i": i, "g": i % 3}),
            None if i % 5 == 2 else f"base {i} ✓",
        )
        for i in range(n)
    }


#: One write of the tail: (op, id, vector or None, metadata or None).
TailOp = Tuple[str, int, Optional[npt.NDArray[np.float32]], Optional[Fields]]


def tail_ops(seed: int, clustered: bool = False) -> List[TailOp]:
    """The writes after the seal: 50 new ids (bulk_add), 25 metadata replacements
    (update), 25 removes (bulk_remove), and 5 of the new ids upserted again: 100 keys
    touched."""
    g = np.random.default_rng([seed, 1])
    ops: List[TailOp] = []
    new = draw(g, 50, seed, clustered)
    ops += [("add", BASE_ROWS + j, new[j], {"tail": j}) for j in range(50)]
    ops += [("update", i, None, {"u": i, "g": 9}) for i in range(25)]
    ops += [("remove", i, None, None) for i in range(100, 125)]
    again = draw(g, 5, seed, clustered)
    ops += [("upsert", BASE_ROWS + j, again[j], {"again": j}) for j in range(5)]
    return ops


def apply_tail(model: Dict[int, State], ops: Sequence[TailOp], strs: bool) -> None:
    """Applies ``ops`` to ``model`` as the database applies them (the document of an
    update and of an upsert without one is kept; new rows have none)."""
    for op, i, v, meta in ops:
        if op == "remove":
            del model[i]
            continue
        old = model.get(i)
        vec = v.astype("<f4").tobytes() if v is not None else old[0] if old else b""
        doc = old[2] if (old is not None and strs and op != "add") else None
        model[i] = (vec, frozen(meta or {}), doc)


def run_tail(db: NusterDB, ops: Sequence[TailOp]) -> None:
    """Writes ``ops``: the adds in one bulk_add, the removes in one bulk_remove."""
    id_type = db.config.id_type
    adds = [(i, v, m) for op, i, v, m in ops if op == "add" and v is not None and m is not None]
    db.bulk_add(
        db_ids([i for i, _, _ in adds], id_type),
        np.stack([v for _, v, _ in adds]),
        [m for _, _, m in adds],
    )
    for op, i, v, meta in ops:
        k = db_ids([i], id_type)[0]
        if op == "update":
            db.update(k, metadata=dict(meta or {}), merge=False)
        elif op == "upsert":
            assert v is not None
            db.upsert(k, v, meta)
    db.bulk_remove(db_ids([i for op, i, _, _ in ops if op == "remove"], id_type))


def main(argv: Sequence[str]) -> None:
    from nusterdb import NusterDB

    if argv[0] == "tail":
        import time

        db = NusterDB.open(argv[1], vectors=os.environ.get("NUSTERDB_SEAL_VECTORS"))
        run_tail(db, tail_ops(int(argv[2]), db.config.index_type in CLUSTERED))
        print("ack", flush=True)
        time.sleep(3600)
    argv = argv[1:]

    path, seed, first, seal_every = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    # The variant's vectors= (the test sets it for an IVF database with its rows on disk).
    db = NusterDB.open(path, vectors=os.environ.get("NUSTERDB_SEAL_VECTORS"))
    id_type = db.config.id_type
    strs = id_type == "str"
    clustered = db.config.index_type in CLUSTERED
    live = [int_id(k) for k in db.list_ids()]
    pos = {x: p for p, x in enumerate(live)}
    # Fresh ids never repeat across cycles: above every id any earlier batch may have
    # used (an earlier in-flight batch that did not happen left no trace to go by).
    fresh = 1 + first * MAX_ROWS
    rng = np.random.default_rng([seed, first, 7])
    print(f"ready {len(live)}", flush=True)
    b = first
    while True:
        op, ids, fresh = _choose(rng, live, fresh)
        print(f"P {b} {op} {' '.join(map(str, ids))}", flush=True)
        keys = db_ids(ids, id_type)
        if op == "remove":
            db.bulk_remove(keys)
        else:
            call = db.bulk_add if op == "add" else db.bulk_upsert
            docs = [row_document(b, r) for r in range(len(ids))] if strs else None
            call(
                keys,
                batch_rows(seed, b, len(ids), clustered),
                [row_metadata(b, r) for r in range(len(ids))],
                documents=docs,
            )
        print(f"A {b}", flush=True)
        for i in ids:
            if op == "remove":
                p = pos.pop(i)
                last = live.pop()
                if p < len(live):
                    live[p] = last
                    pos[last] = p
            elif i not in pos:
                pos[i] = len(live)
                live.append(i)
        if (b - first) % seal_every == seal_every - 1:
            print(f"S {b}", flush=True)
            db.seal()
            print(f"SA {b}", flush=True)
        b += 1


if __name__ == "__main__":
    main(sys.argv[1:])
