"""numpy arrays changed by another Python thread while ``bulk_add`` / ``batch_search`` run
with the GIL released.

The core reads each row more than once (validation, the write batch, the index;
validation, the search). The bindings therefore copy the caller's array while the GIL is
held and hand the core that copy: what is validated is exactly what is stored, indexed
and searched. Reading the array in place instead lets a NaN written after validation
reach the disk or the index, and makes the index disagree with what is on disk.

These tests scribble on the array from a second thread during the call and check the
outcome is one of the allowed ones: the call raises a typed error and stores nothing, or
every stored vector is finite, the index (``get``, an exact self-search) equals what is
on disk (the same after a reopen), and search results belong to some whole version of
each query row. The writer thread is random; its seed is printed
(``NUSTERDB_TEST_SEED`` replays it).
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import numpy.typing as npt
from nusterdb import InvalidArgumentError, InvalidVectorError, NusterDB

F32 = npt.NDArray[np.float32]

N = 200_000
DIM = 64


def seed_of(name: str) -> int:
    env = os.environ.get("NUSTERDB_TEST_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(2**63)
    print(f"{name}: seed {seed}")
    return seed


class Scribbler:
    """A thread that keeps overwriting random rows of ``arr`` until stopped: with a row
    of ``alternatives`` (whole-row writes), and every ``nan_every``-th write with NaN
    (then put back), so NaN comes and goes while the other thread reads."""

    def __init__(self, arr: F32, alternatives: List[F32], nan_every: int, seed: int) -> None:
        self.arr = arr
        self.alternatives = alternatives
        self.nan_every = nan_every
        self.rng = np.random.default_rng(seed)
        self.stop = threading.Event()
        self.started = threading.Event()
        self.writes = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = len(self.arr)
        picks = self.rng.integers(0, n, size=1 << 16)
        which = self.rng.integers(0, len(self.alternatives), size=1 << 16)
        j = 0
        self.started.set()
        while not self.stop.is_set():
            i = int(picks[j & 0xFFFF])
            if self.nan_every and j % self.nan_every == 0:
                self.arr[i] = np.nan
            self.arr[i] = self.alternatives[int(which[j & 0xFFFF])][i]
            j += 1
        self.writes = j

    def __enter__(self) -> Scribbler:
        self.thread.start()
        self.started.wait()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def all_vectors(db: NusterDB, n: int) -> F32:
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(n):
        v = db.get(i)
        assert v is not None, f"id {i} missing"
        out[i] = v.to_numpy()
    return out


def test_bulk_add_while_another_thread_writes_the_array(tmp_path: Path) -> None:
    seed = seed_of("bulk_add race")
    rng = np.random.default_rng(seed)
    first = rng.standard_normal((N, DIM), dtype=np.float32)
    second = rng.standard_normal((N, DIM), dtype=np.float32)
    arr = first.copy()
    path = tmp_path / "db"
    outcome: Tuple[str, Any]
    with NusterDB(str(path), dim=DIM) as db:
        with Scribbler(arr, [first, second], nan_every=16, seed=seed) as s:
            try:
                outcome = ("added", db.bulk_add(np.arange(N), arr))
            except (InvalidVectorError, InvalidArgumentError) as e:
                outcome = ("rejected", e)
        print(f"bulk_add race: {outcome[0]}, {s.writes} writes by the other thread")
        if outcome[0] == "rejected":
            assert len(db) == 0, "a rejected bulk_add stored something"
        else:
            assert outcome[1] == N
            assert len(db) == N
            indexed = all_vectors(db, N)
            assert np.isfinite(indexed).all(), "a non-finite value reached the index"
            # Each stored row is a whole row of one of the two versions the array held.
            from_first = (indexed == first).all(axis=1)
            from_second = (indexed == second).all(axis=1)
            assert (from_first | from_second).all(), "a stored row is a mix of versions"
            # The index finds each stored vector at distance 0 (a sample: exact search).
            for i in rng.choice(N, size=40, replace=False):
                hits = db.search(indexed[i], k=1)
                assert hits[0] == (int(i), 0.0), f"id {i}: {hits[0]}"
    with NusterDB.open(str(path)) as db:
        if outcome[0] == "rejected":
            assert len(db) == 0
        else:
            # Reopened, the index is rebuilt from disk: it must equal the one before.
            assert len(db) == N
            on_disk = all_vectors(db, N)
            mismatched = int((on_disk != indexed).any(axis=1).sum())
            assert mismatched == 0, f"{mismatched} rows differ between index and disk"


def test_batch_search_while_another_thread_writes_the_queries(tmp_path: Path) -> None:
    seed = seed_of("batch_search race")
    rng = np.random.default_rng(seed)
    n_base, n_q, k = 20_000, 512, 5
    base = rng.standard_normal((n_base, DIM), dtype=np.float32)
    qa = rng.standard_normal((n_q, DIM), dtype=np.float32)
    qb = rng.standard_normal((n_q, DIM), dtype=np.float32)
    with NusterDB(str(tmp_path / "db"), dim=DIM) as db:
        db.bulk_add(np.arange(n_base), base)
        ref_a = db.batch_search(qa, k=k)
        ref_b = db.batch_search(qb, k=k)
        queries = qa.copy()
        results = {"ok": 0, "rejected": 0}
        with Scribbler(queries, [qa, qb], nan_every=64, seed=seed) as s:
            for _ in range(30):
                try:
                    ids, dists = db.batch_search(queries, k=k)
                except (InvalidVectorError, InvalidArgumentError):
                    results["rejected"] += 1
                    continue
                results["ok"] += 1
                assert not np.isnan(dists).any(), "a NaN distance"
                # Every row answers one whole version of its query, exactly.
                same_a = (ids == ref_a[0]).all(axis=1) & (dists == ref_a[1]).all(axis=1)
                same_b = (ids == ref_b[0]).all(axis=1) & (dists == ref_b[1]).all(axis=1)
                assert (same_a | same_b).all(), "a row answers no version of its query"
        print(f"batch_search race: {results}, {s.writes} writes by the other thread")
        assert results["ok"] + results["rejected"] == 30
