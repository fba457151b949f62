"""The workloads of the kill -9 tests (RELIABILITY.md T1), shared by the child that runs
one and the parent that checks what survived.

``python crash_workload.py batches PATH SEED START PAUSE N DIM [SNAPSHOTS [STOP]]``: seeded
``bulk_add`` batches of ``N`` rows, batch ``b`` holding ids ``[b·N, (b+1)·N)``, each
logged ``pending b`` before and ``ack b`` after the call; with ``SNAPSHOTS`` = 1 a
``snapshot_named("s<b>")`` after each batch, logged ``pending s<b>`` / ``ack s<b>``.
With ``STOP``, batch ``STOP`` is not written: the process logs ``idle`` and waits to be
killed (a cap on the database's size over many cycles).

Both workloads run on an int-id or a string-id database (the database's stored
``id_type`` decides). The workloads think in int ids; a string-id database stores id
``i`` as :func:`str_id` ``(i)`` = ``"t<thread>-é-<i>"`` (UTF-8 beyond ASCII, and the
threads' ranges stay disjoint) and, with every row, a document (:func:`batch_document`,
:func:`op_document`), written on add, upsert, update and bulk_add like metadata.

``python crash_workload.py mixed PATH SEED CYCLE KIND TARGET``: opens the database and
lets 4 threads write until it is killed. Thread ``t`` owns the
ids ``[t·RANGE + 1, (t+1)·RANGE)``, so every id has one writer and its history is a
sequence. Before each call the thread logs ``P t n op args`` and after it returns
``A t n`` (RocksDB's expected-state oracle): every acknowledged op must survive, the one
op in flight per thread may have happened or not, but never in part.

Ops (``KIND`` "flat" or "hnsw"): add, upsert (of a new or a stored id, with or without
metadata and, on a string-id database, with or without a document), update (vector,
metadata, document: any non-empty choice of them; int ids: no document), remove,
bulk_add (on hnsw now and then of ``BIG_BATCH`` rows), bulk_remove, flush. Every
vector, metadata value and document is derived from (seed, cycle, thread, op number),
so the parent rebuilds it from the log line.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

BATCH = 500
BATCH_DIM = 32
DIM = 16
THREADS = 4
#: Ids per thread. Fresh ids only grow (an id is never reused, so every id's history is
#: one sequence), at up to ~4,000 a cycle per thread: 10**12 outlasts any run (10**6 ran
#: out at cycle ~270 of the long tier, and the next thread's ids were written twice).
RANGE = 10**12
BIG_BATCH = 1500

Scalar = Union[str, int, float, bool]
Fields = Dict[str, Scalar]
#: Metadata fields as sorted (key, type name, value): 1, 1.0 and True all differ.
Frozen = Tuple[Tuple[str, str, Scalar], ...]
#: What is stored under one id: vector bytes (little-endian f32), fields, sorted tags,
#: the document (None: no document; always None on an int-id database here).
State = Tuple[bytes, Frozen, Tuple[str, ...], Optional[str]]
Model = Dict[int, State]
EMPTY: Frozen = ()
#: An id as the database takes it: an int, or a str on a string-id database.
Key = Union[int, str]


def batch_vectors(
    seed: int, b: int, n: int = BATCH, dim: int = BATCH_DIM
) -> npt.NDArray[np.float32]:
    """The vectors of batch ``b`` of the batches workload."""
    return np.random.default_rng([seed, b]).standard_normal((n, dim), dtype=np.float32)


def batch_metadata(b: int, n: int = BATCH) -> List[Optional[Fields]]:
    """The metadata of batch ``b`` of the batches workload."""
    return [{"batch": b, "row": r} for r in range(n)]


def batch_document(b: int, r: int) -> Optional[str]:
    """The document of row ``r`` of batch ``b`` (string-id databases): every 7th row has
    none, the others a few hundred bytes of UTF-8 of varying length."""
    if r % 7 == 3:
        return None
    return f"batch {b} row {r}: ü€😀 " + "ä" * ((b * 31 + r) % 200)


def str_id(i: int) -> str:
    """The string id of int id ``i``: non-ASCII, and ``owner(i)`` keeps the ranges of
    the threads disjoint as strings too."""
    return f"t{max(owner(i), 0)}-é-{i}"  # id 0 (batches) is thread 0's too


def int_id(key: Key) -> int:
    """The int id of a database id (inverse of :func:`str_id`; an int id is itself).
    A string that is not exactly ``str_id`` of a number raises ValueError."""
    if isinstance(key, int):
        return key
    i = int(key[key.rindex("-") + 1 :])
    if str_id(i) != key:
        raise ValueError(f"{key!r} is not an id the workload writes")
    return i


def db_id(i: int, id_type: str) -> Key:
    """Int id ``i`` as the database of ``id_type`` takes it."""
    return str_id(i) if id_type == "str" else i


def db_ids(ids: Iterable[int], id_type: str) -> Union[List[int], List[str]]:
    """Int ids as the database of ``id_type`` takes them."""
    return [str_id(i) for i in ids] if id_type == "str" else [int(i) for i in ids]


def thread_range(t: int) -> Tuple[int, int]:
    """The ids thread ``t`` owns: ``[lo, hi)``."""
    return t * RANGE + 1, (t + 1) * RANGE


def owner(i: int) -> int:
    """The thread that owns id ``i``."""
    return (i - 1) // RANGE


def op_vectors(seed: int, cycle: int, t: int, n: int, k: int) -> npt.NDArray[np.float32]:
    """The ``k`` vectors written by op ``n`` of thread ``t`` in ``cycle``."""
    g = np.random.default_rng([seed, cycle, t, n])
    return g.standard_normal((k, DIM), dtype=np.float32)


def op_metadata(cycle: int, t: int, n: int, j: int) -> Tuple[Fields, List[str]]:
    """The fields and tags written for row ``j`` of op ``n`` of thread ``t``."""
    fields: Fields = {
        "t": t,
        "c": cycle,
        "n": n,
        "j": j,
        "x": n + j / 8.0,
        "s": f"c{cycle}-t{t}-n{n}-j{j}",
        "odd": (n + j) % 2 == 1,
    }
    return fields, sorted({f"g{(n + j) % 3}", f"t{t}"})


def op_document(cycle: int, t: int, n: int, j: int) -> str:
    """The document written for row ``j`` of op ``n`` of thread ``t`` (string ids)."""
    return f"c{cycle} t{t} n{n} j{j} ☃ é " + "文" * ((n * 7 + j) % 90)


def frozen(fields: Fields, tags: Sequence[str]) -> Tuple[Frozen, Tuple[str, ...]]:
    """Fields and tags in the comparable form of :data:`State`."""
    return tuple(sorted((k, type(v).__name__, v) for k, v in fields.items())), tuple(sorted(tags))


def apply_op(
    model: Model, seed: int, cycle: int, t: int, n: int, op: str, args: Sequence[int]
) -> Dict[int, Optional[State]]:
    """The new state of every id op ``n`` touches (None: absent), given ``model`` before
    it; the model itself is not changed."""
    out: Dict[int, Optional[State]] = {}

    def meta(j: int) -> Tuple[Frozen, Tuple[str, ...]]:
        return frozen(*op_metadata(cycle, t, n, j))

    if op in ("add", "upsert"):
        i, with_meta, with_doc = args
        v = op_vectors(seed, cycle, t, n, 1)[0].astype("<f4").tobytes()
        old = model.get(i)
        keep = old is not None and op == "upsert"
        if with_meta:
            f, tg = meta(0)
        elif old is not None and keep:
            f, tg = old[1], old[2]
        else:
            f, tg = EMPTY, ()
        # A document of None keeps the stored one on upsert, like metadata.
        if with_doc:
            doc: Optional[str] = op_document(cycle, t, n, 0)
        else:
            doc = old[3] if old is not None and keep else None
        out[i] = (v, f, tg, doc)
    elif op == "update":
        i, with_vec, with_meta, with_doc = args
        old = model.get(i)
        assert old is not None, f"update of absent id {i}"
        v = op_vectors(seed, cycle, t, n, 1)[0].astype("<f4").tobytes() if with_vec else old[0]
        f, tg = meta(0) if with_meta else (old[1], old[2])
        doc = op_document(cycle, t, n, 0) if with_doc else old[3]
        out[i] = (v, f, tg, doc)
    elif op == "remove":
        out[args[0]] = None
    elif op == "bulk_add":
        first, k, with_meta, with_doc = args
        vs = op_vectors(seed, cycle, t, n, k)
        for j in range(k):
            f, tg = meta(j) if with_meta else (EMPTY, ())
            doc = op_document(cycle, t, n, j) if with_doc and j % 5 != 2 else None
            out[first + j] = (vs[j].astype("<f4").tobytes(), f, tg, doc)
    elif op == "bulk_remove":
        for i in args:
            out[i] = None
    elif op == "flush":
        pass
    else:
        raise ValueError(f"unknown op {op!r}")
    return out


def parse_line(line: str) -> Optional[Tuple[str, int, int, str, List[int]]]:
    """``("P"|"A", thread, n, op, args)`` of a log line, None for other lines."""
    parts = line.split()
    if len(parts) >= 3 and parts[0] == "A":
        return "A", int(parts[1]), int(parts[2]), "", []
    if len(parts) >= 4 and parts[0] == "P":
        return "P", int(parts[1]), int(parts[2]), parts[3], [int(x) for x in parts[4:]]
    return None


# ------------------------------------------------------------------ the children


def _run_batches(argv: Sequence[str]) -> None:
    import time

    from nusterdb import NusterDB

    path, seed, start, pause = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    n, dim = int(argv[4]), int(argv[5])
    snapshots = len(argv) > 6 and argv[6] == "1"
    stop = int(argv[7]) if len(argv) > 7 else None
    db = NusterDB.open(path)
    strs = db.config.id_type == "str"
    print("ready", flush=True)
    b = start
    while True:
        if b == stop:
            print("idle", flush=True)
            time.sleep(3600)
        ids = np.arange(b * n, (b + 1) * n, dtype=np.int64)
        print(f"pending {b}", flush=True)
        if strs:
            db.bulk_add(
                [str_id(int(i)) for i in ids],
                batch_vectors(seed, b, n, dim),
                batch_metadata(b, n),
                documents=[batch_document(b, r) for r in range(n)],
            )
        else:
            db.bulk_add(ids, batch_vectors(seed, b, n, dim), batch_metadata(b, n))
        print(f"ack {b}", flush=True)
        if snapshots:
            print(f"pending s{b}", flush=True)
            db.snapshot_named(f"s{b}")
            print(f"ack s{b}", flush=True)
        b += 1
        time.sleep(pause)


class _Pool:
    """The live ids of one thread, with O(1) random choice and removal."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.items = list(ids)
        self.pos = {x: p for p, x in enumerate(self.items)}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, x: int) -> bool:
        return x in self.pos

    def add(self, x: int) -> None:
        if x not in self.pos:
            self.pos[x] = len(self.items)
            self.items.append(x)

    def discard(self, x: int) -> None:
        p = self.pos.pop(x, None)
        if p is None:
            return
        last = self.items.pop()
        if p < len(self.items):
            self.items[p] = last
            self.pos[last] = p

    def pick(self, rng: np.random.Generator) -> int:
        return self.items[int(rng.integers(len(self.items)))]


def _run_mixed(argv: Sequence[str]) -> None:
    from nusterdb import Metadata, NusterDB

    path, seed, cycle, kind, target = argv[0], int(argv[1]), int(argv[2]), argv[3], int(argv[4])
    db = NusterDB.open(path)
    assert db.index_type() == kind, (db.index_type(), kind)
    id_type = db.config.id_type
    strs = id_type == "str"
    stored = [int_id(k) for k in db.list_ids()]
    out_lock = threading.Lock()

    def emit(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def meta(t: int, n: int, j: int) -> Metadata:
        f, tg = op_metadata(cycle, t, n, j)
        return Metadata.with_data(f, tags=tg)

    def key(i: int) -> Key:
        return db_id(i, id_type)

    # The (vector, metadata, document) choices of update: int ids never write documents.
    update_choices = (
        [(wv, wm, wd) for wv in (0, 1) for wm in (0, 1) for wd in (0, 1) if wv or wm or wd]
        if strs
        else [(1, 0, 0), (0, 1, 0), (1, 1, 0)]
    )

    def worker(t: int) -> None:
        lo, hi = thread_range(t)
        pool = _Pool([i for i in stored if lo <= i < hi])
        fresh = max(pool.items, default=lo - 1) + 1
        rng = np.random.default_rng([seed, cycle, t, 999])
        n = 0
        try:
            while True:
                n += 1
                grow = len(pool) < target
                # A fresh id past the range would belong to the next thread.
                assert fresh + BIG_BATCH < hi, f"thread {t} ran out of fresh ids"
                r = float(rng.random())
                m = int(rng.random() < 0.6)
                # Documents (string ids only) on 70% of the writes that may carry one.
                d = int(rng.random() < 0.7) if strs else 0
                if not pool or (r < 0.25 and grow):
                    i, fresh = fresh, fresh + 1
                    emit(f"P {t} {n} add {i} {m} {d}")
                    v = op_vectors(seed, cycle, t, n, 1)[0]
                    doc = op_document(cycle, t, n, 0) if d else None
                    db.add(key(i), v, meta(t, n, 0) if m else None, document=doc)
                    pool.add(i)
                elif r < 0.25 or (0.60 <= r < 0.75):
                    i = pool.pick(rng)
                    emit(f"P {t} {n} remove {i}")
                    db.remove(key(i))
                    pool.discard(i)
                elif r < 0.40:
                    if rng.random() < 0.7:
                        i = pool.pick(rng)
                    else:
                        i, fresh = fresh, fresh + 1
                    emit(f"P {t} {n} upsert {i} {m} {d}")
                    db.upsert(
                        key(i),
                        op_vectors(seed, cycle, t, n, 1)[0],
                        meta(t, n, 0) if m else None,
                        document=op_document(cycle, t, n, 0) if d else None,
                    )
                    pool.add(i)
                elif r < 0.60:
                    i = pool.pick(rng)
                    wv, wm, wd = update_choices[int(rng.integers(len(update_choices)))]
                    emit(f"P {t} {n} update {i} {wv} {wm} {wd}")
                    db.update(
                        key(i),
                        op_vectors(seed, cycle, t, n, 1)[0] if wv else None,
                        meta(t, n, 0) if wm else None,
                        document=op_document(cycle, t, n, 0) if wd else None,
                        merge=False,  # the model replaces the metadata
                    )
                elif r < 0.85 and grow:
                    big = kind == "hnsw" and rng.random() < 0.06
                    k = BIG_BATCH if big else int(rng.integers(2, 41))
                    first, fresh = fresh, fresh + k
                    emit(f"P {t} {n} bulk_add {first} {k} {m} {d}")
                    ids = range(first, first + k)
                    metas = [meta(t, n, j) for j in range(k)] if m else None
                    vs = op_vectors(seed, cycle, t, n, k)
                    if strs:
                        # Some rows of a batch with documents have none (see apply_op).
                        docs = [
                            op_document(cycle, t, n, j) if j % 5 != 2 else None for j in range(k)
                        ]
                        db.bulk_add(
                            [str_id(i) for i in ids], vs, metas, documents=docs if d else None
                        )
                    else:
                        db.bulk_add(np.arange(first, first + k, dtype=np.int64), vs, metas)
                    for i in ids:
                        pool.add(i)
                elif r < 0.95:
                    k = min(len(pool), int(rng.integers(2, 21)))
                    victims = sorted({pool.pick(rng) for _ in range(k)})
                    emit(f"P {t} {n} bulk_remove {' '.join(map(str, victims))}")
                    db.bulk_remove(db_ids(victims, id_type))
                    for i in victims:
                        pool.discard(i)
                else:
                    emit(f"P {t} {n} flush")
                    db.flush()
                emit(f"A {t} {n}")
        except BaseException:
            # Any exception is a failure: say so on stderr and die at once.
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(3)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    emit(f"ready {len(stored)}")
    for th in threads:
        th.start()
    for th in threads:
        th.join()


if __name__ == "__main__":
    if sys.argv[1] == "batches":
        _run_batches(sys.argv[2:])
    elif sys.argv[1] == "mixed":
        _run_mixed(sys.argv[2:])
    else:
        raise SystemExit(f"unknown workload {sys.argv[1]!r}")
