"""kill -9 of a running ``nusterdb serve`` while a client writes (RELIABILITY.md T1, over
HTTP).

One server runs on a data directory holding one HNSW collection. Per cycle a writer
thread sends ``bulk_add`` batches of 50 rows (ids from a counter that never repeats)
through ``nusterdb.Client``, recording a batch as acknowledged only once the call has
returned (a 2xx answer), while a second thread searches. After a random 0.5-2 s the
server is SIGKILLed and started again on the same directory; then:

* it becomes ready (``GET /readyz`` answers 200);
* every acknowledged batch is fully present, with bit-identical float32 vectors
  (``get_many``);
* the batch in flight at the kill is all or nothing (its 50 ids all present with their
  vectors, or none of them); a present one counts as acknowledged from then on;
* ``count()`` is exactly the number of rows present, so nothing else appeared.

Before the kill no request may fail: an error answer (a 5xx) or a broken connection is
reported as a failure, not retried. The same server is the next cycle's; at the end it is
stopped with SIGTERM and must exit with 0.

The CI tier runs 3 cycles; the long tier (``@pytest.mark.long``, run by
``scripts/reliability_long.sh crash``) runs ``NUSTERDB_SERVER_KILL_CYCLES`` (default 50).
Each test prints ``server-kill[<cycles>]: ...`` with its totals.
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt
import pytest
from nusterdb import NusterDBError
from nusterdb.client import Client, RemoteCollection
from proc_helpers import env_int
from server_fixtures import Server, start_server

COLLECTION = "killed"
DIM = 16
ROWS = 50
SHORT_CYCLES = 3
LONG_CYCLES = env_int("NUSTERDB_SERVER_KILL_CYCLES", 50)
KILL_AFTER_S = (0.5, 2.0)
READY_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 30.0
#: Ids per get_many request of the check.
CHECK_CHUNK = 5_000


# ------------------------------------------------------------------ the server process


def start_timed(data_dir: Path) -> Tuple[Server, float]:
    """:func:`start_server` (no auth), and the seconds until ``GET /readyz`` answered."""
    t0 = time.perf_counter()
    srv = start_server(data_dir, ready_timeout=READY_TIMEOUT_S)
    return srv, time.perf_counter() - t0


# ------------------------------------------------------------------ the workload


def batch_vectors(first_id: int) -> npt.NDArray[np.float32]:
    """The rows of the batch whose first id is ``first_id`` (a function of it, so the
    check needs no copy of what was sent)."""
    return np.random.default_rng(first_id).standard_normal((ROWS, DIM), dtype=np.float32)


def batch_ids(first_id: int) -> List[int]:
    return list(range(first_id, first_id + ROWS))


@dataclass
class Cycle:
    """What the threads of one cycle saw."""

    acked: List[int] = field(default_factory=list)  # first ids of acknowledged batches
    in_flight: Optional[int] = None  # first id of the batch sent when the server died
    searches: int = 0
    failures: List[str] = field(default_factory=list)


def writer(coll: RemoteCollection, next_id: List[int], killed: threading.Event, out: Cycle) -> None:
    """bulk_add batches until the server is gone. A batch is acknowledged only after
    the call returned; one that raised after the kill is the batch in flight."""
    while True:
        first = next_id[0]
        next_id[0] += ROWS
        out.in_flight = first
        try:
            written = coll.bulk_add(batch_ids(first), batch_vectors(first))
        except NusterDBError as exc:  # an error answer (NusterDBIOError is an OSError too)
            status = getattr(exc, "status", None)
            out.failures.append(
                f"bulk_add of ids {first}.. answered HTTP {status} "
                f"{type(exc).__name__}: {exc} (killed: {killed.is_set()})"
            )
            return
        except (OSError, http.client.HTTPException) as exc:
            if not killed.is_set():
                out.failures.append(f"bulk_add of ids {first}.. before the kill: {exc!r}")
            return
        if written != ROWS:
            out.failures.append(f"bulk_add of ids {first}.. returned {written}, not {ROWS}")
            return
        out.in_flight = None
        out.acked.append(first)
        if killed.is_set():
            return  # the answer came before the kill took effect


def searcher(
    coll: RemoteCollection, rng: np.random.Generator, killed: threading.Event, out: Cycle
) -> None:
    """Searches random queries until the server is gone."""
    while not killed.is_set():
        q = rng.standard_normal(DIM, dtype=np.float32)
        try:
            coll.search(q, k=10)
        except NusterDBError as exc:
            status = getattr(exc, "status", None)
            out.failures.append(
                f"search answered HTTP {status} {type(exc).__name__}: {exc} "
                f"(killed: {killed.is_set()})"
            )
            return
        except (OSError, http.client.HTTPException) as exc:
            if not killed.is_set():
                out.failures.append(f"search before the kill: {exc!r}")
            return
        out.searches += 1


@dataclass
class Totals:
    cycles: int = 0
    acked_batches: int = 0
    in_flight_present: int = 0
    in_flight_absent: int = 0
    searches: int = 0
    max_ready_s: float = 0.0


def present_rows(coll: RemoteCollection, firsts: List[int]) -> Dict[int, npt.NDArray[np.float32]]:
    """id -> stored vector for every id of the batches ``firsts`` that is stored."""
    ids = [i for first in firsts for i in batch_ids(first)]
    found: Dict[int, npt.NDArray[np.float32]] = {}
    for start in range(0, len(ids), CHECK_CHUNK):
        chunk = ids[start : start + CHECK_CHUNK]
        got = coll.get_many(chunk, include=["vector"])
        for r, id in enumerate(got["ids"]):
            found[int(id)] = got["vectors"][r]
    return found


def check_after_restart(coll: RemoteCollection, acked: List[int], cycle: Cycle, where: str) -> bool:
    """Asserts that every acknowledged batch is whole and bit-identical, and that the
    batch in flight is all or nothing; returns whether the batch in flight is stored."""
    found = present_rows(coll, acked)
    lost: List[int] = []
    changed: List[int] = []
    for first in acked:
        want = batch_vectors(first)
        for r, id in enumerate(batch_ids(first)):
            got = found.get(id)
            if got is None:
                lost.append(id)
            elif got.dtype != np.float32 or not np.array_equal(got, want[r]):
                changed.append(id)
    assert not lost, (
        f"{where}: {len(lost)} acknowledged rows are missing after the restart "
        f"(first ids {lost[:10]}; {len(acked)} acknowledged batches)"
    )
    assert not changed, (
        f"{where}: {len(changed)} acknowledged rows came back with other vectors "
        f"(ids {changed[:10]})"
    )
    if cycle.in_flight is None:
        return False
    first = cycle.in_flight
    got_flight = present_rows(coll, [first])
    assert len(got_flight) in (0, ROWS), (
        f"{where}: the batch in flight at the kill (ids {first}..{first + ROWS - 1}) is "
        f"partially stored: {len(got_flight)} of {ROWS} ids ({sorted(got_flight)[:10]}...)"
    )
    if got_flight:
        want = batch_vectors(first)
        bad = [
            id
            for r, id in enumerate(batch_ids(first))
            if not np.array_equal(got_flight[id], want[r])
        ]
        assert not bad, f"{where}: the batch in flight came back with other vectors ({bad[:10]})"
    return bool(got_flight)


def run_kill_cycles(tmp_path: Path, seed: int, cycles: int) -> Totals:
    data_dir = tmp_path / "data"
    rng = np.random.default_rng(seed)
    totals = Totals()
    acked: List[int] = []  # first ids of every batch known to be stored
    next_id = [0]
    srv, _ = start_timed(data_dir)
    try:
        with Client(srv.url, timeout=CLIENT_TIMEOUT_S) as client:
            client.create_collection(COLLECTION, dim=DIM, index_type="hnsw", metric="cosine")
        for c in range(cycles):
            where = f"cycle {c + 1}/{cycles} (seed {seed})"
            cycle = Cycle()
            killed = threading.Event()
            client = Client(srv.url, timeout=CLIENT_TIMEOUT_S, retries=0)
            coll = client.collection(COLLECTION)
            threads = [
                threading.Thread(
                    target=writer, args=(coll, next_id, killed, cycle), name="writer", daemon=True
                ),
                threading.Thread(
                    target=searcher,
                    args=(coll, np.random.default_rng([seed, c]), killed, cycle),
                    name="searcher",
                    daemon=True,
                ),
            ]
            for t in threads:
                t.start()
            time.sleep(float(rng.uniform(*KILL_AFTER_S)))
            assert srv.proc.poll() is None, (
                f"{where}: the server exited ({srv.proc.returncode}) before the kill; "
                f"log:\n{srv.log_text()}"
            )
            killed.set()
            srv.kill()
            assert srv.proc.returncode == -signal.SIGKILL
            for t in threads:
                t.join(timeout=JOIN_TIMEOUT_S)
            hung = [t.name for t in threads if t.is_alive()]
            client.close()
            assert not hung, f"{where}: {hung} still blocked {JOIN_TIMEOUT_S}s after the kill"
            assert not cycle.failures, (
                f"{where}: requests failed while the server ran:\n"
                + "\n".join(cycle.failures)
                + f"\nlog:\n{srv.log_text()}"
            )

            srv, ready_s = start_timed(data_dir)
            totals.max_ready_s = max(totals.max_ready_s, ready_s)
            acked.extend(cycle.acked)
            with Client(srv.url, timeout=CLIENT_TIMEOUT_S) as client:
                coll = client.collection(COLLECTION)
                if check_after_restart(coll, acked, cycle, where):
                    assert cycle.in_flight is not None
                    acked.append(cycle.in_flight)
                    totals.in_flight_present += 1
                elif cycle.in_flight is not None:
                    totals.in_flight_absent += 1
                count = coll.count()
                assert count == ROWS * len(acked), (
                    f"{where}: count() is {count} after the restart, but {len(acked)} "
                    f"batches ({ROWS * len(acked)} rows) are stored"
                )
            totals.cycles += 1
            totals.acked_batches += len(cycle.acked)
            totals.searches += cycle.searches
    except BaseException:
        srv.kill()
        raise
    code = srv.stop()
    assert code == 0, f"the server exited with {code} on SIGTERM; log:\n{srv.log_text()}"
    print(
        f"server-kill[{cycles} cycles]: {totals.acked_batches} batches acknowledged "
        f"({totals.acked_batches * ROWS} rows), 0 lost, 0 partial; batch in flight at the "
        f"kill: {totals.in_flight_present} stored, {totals.in_flight_absent} not; "
        f"{totals.searches} searches; restart to ready <= {totals.max_ready_s:.2f} s; "
        f"{len(acked) * ROWS} rows at the end"
    )
    return totals


def test_kill_9_of_the_server_loses_no_acknowledged_batch(tmp_path: Path, seed: int) -> None:
    totals = run_kill_cycles(tmp_path, seed, SHORT_CYCLES)
    assert totals.cycles == SHORT_CYCLES


@pytest.mark.long
def test_kill_9_of_the_server_many_cycles(tmp_path: Path, seed: int) -> None:
    totals = run_kill_cycles(tmp_path, seed, LONG_CYCLES)
    assert totals.cycles == LONG_CYCLES
