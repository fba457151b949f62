"""Progress reports and interruption of long calls: bulk_add, open, batch_search.

A progress callback sees (phase, done, total) in order up to the total; a callback that
raises, or a real Ctrl-C (SIGINT to a child process), stops the call with the database
as before it; the same call then succeeds.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from nusterdb import DatabaseConfig, HNSWConfig, NusterDB
from nusterdb._progress import ProgressBar

DIM = 16


def hnsw_config(ids: str = "int") -> DatabaseConfig:
    return DatabaseConfig(
        DIM,
        index_type="hnsw",
        hnsw_config=HNSWConfig(max_nb_connection=8, ef_construction=64),
        id_type=ids,
    )


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


class StopError(Exception):
    pass


def test_bulk_add_reports_indexing_progress_in_order() -> None:
    seen: List[Tuple[str, int, int]] = []
    db = NusterDB(None, hnsw_config())
    assert db.bulk_add(np.arange(4000), rows(4000), progress=lambda *a: seen.append(a)) == 4000
    assert seen, "no progress reported"
    assert all(p == "indexing" and total == 4000 for p, _, total in seen)
    done = [d for _, d, _ in seen]
    assert done == sorted(done)
    assert done[-1] == 4000


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_raising_callback_stops_bulk_add_with_nothing_stored(
    tmp_path: Path, ids: str, stop_after: int
) -> None:
    keys = [f"k{i}" for i in range(5000)] if ids == "str" else list(range(5000))
    data = rows(5000, 1)
    with NusterDB(str(tmp_path / "db"), hnsw_config(ids)) as db:
        db.bulk_add(keys[:1000], data[:1000])
        calls = 0

        def callback(phase: str, done: int, total: int) -> None:
            nonlocal calls
            calls += 1
            # Calls are throttled to one per 20 ms, so a fast machine may make fewer
            # than `stop_after`; the last one (done == total) still comes before the
            # commit, so stopping there must store nothing either.
            if calls >= stop_after or done == total:
                raise StopError(f"{phase} {done}/{total}")

        with pytest.raises(StopError):
            db.bulk_add(keys[1000:], data[1000:], documents=["d"] * 4000, progress=callback)
        assert len(db) == 1000
        assert keys[1000] not in db
        assert db.get_document(keys[1001]) is None
        hits = db.search(data[2000], k=5)
        assert all(h[0] in keys[:1000] for h in hits)
        # The same write goes through now.
        assert db.bulk_add(keys[1000:], data[1000:]) == 4000
    with NusterDB.open(str(tmp_path / "db")) as db:
        assert len(db) == 5000
        assert db.search(data[4321], k=1)[0][0] == keys[4321]


def test_progress_true_draws_a_bar_and_bad_values_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = NusterDB(None, hnsw_config())
    db.bulk_add(np.arange(3000), rows(3000), progress=True)
    err = capsys.readouterr().err
    assert "bulk_add indexing:" in err
    assert "100%" in err
    assert "3000/3000" in err
    db.bulk_add(np.arange(3000, 3100), rows(100), progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be"):
        db.bulk_add([1], rows(1), progress="yes")  # type: ignore[arg-type]
    assert len(db) == 3100


def test_the_bar_renders_percent_count_rate_and_eta() -> None:
    out = io.StringIO()
    bar = ProgressBar("job", stream=out, width=10)
    line = bar.render("indexing", 250, 1000, 2.0)
    assert line == "job indexing:  25%|##--------| 250/1000 [00:02<00:06, 125/s]"
    bar("indexing", 1000, 1000)
    bar.close()
    assert out.getvalue().startswith("\rjob indexing: 100%|##########| 1000/1000")
    assert out.getvalue().endswith("\n")
    quiet = io.StringIO()
    late = ProgressBar("job", delay=60.0, stream=quiet)
    late("indexing", 5, 10)
    late.close()
    assert quiet.getvalue() == ""
    # A phase's time runs from the previous report (here: when the bar was made), so a
    # call whose only report is its last still shows a rate; no time at all shows "?/s".
    fast = io.StringIO()
    bar = ProgressBar("job", stream=fast, width=10)
    time.sleep(0.02)
    bar("indexing", 174, 174)
    assert "174/174" in fast.getvalue(), fast.getvalue()
    assert " 0/s" not in fast.getvalue(), fast.getvalue()
    assert re.search(r"\[00:00<00:00, [\d,]+/s\]", fast.getvalue()), fast.getvalue()
    assert bar.render("indexing", 5, 10, 0.0).endswith("?/s]")


def test_open_reports_loading_and_a_raising_callback_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with NusterDB(str(path), hnsw_config()) as db:
        db.bulk_add(np.arange(20_000), rows(20_000, 2))
    for f in path.glob("segment-*"):
        f.unlink()  # the open must read and link every vector
    before = sorted((p.name, p.stat().st_size) for p in path.iterdir() if "LOG" not in p.name)

    def stop(phase: str, done: int, total: int) -> None:
        raise StopError(phase)

    with pytest.raises(StopError, match="loading"):
        NusterDB.open(str(path), progress=stop)
    after = sorted((p.name, p.stat().st_size) for p in path.iterdir() if "LOG" not in p.name)
    assert after == before, "a stopped open changed the files"
    phases: List[str] = []
    with NusterDB.open(str(path), progress=lambda p, d, t: phases.append(p)) as db:
        assert len(db) == 20_000
    assert "loading" in phases
    assert "indexing" in phases


def test_a_raising_callback_stops_batch_search() -> None:
    db = NusterDB(None, dim=DIM)
    db.bulk_add(np.arange(2000), rows(2000, 3))

    def stop(phase: str, done: int, total: int) -> None:
        raise StopError(phase)

    with pytest.raises(StopError, match="searching"):
        db.batch_search(rows(5000, 4), k=3, progress=stop)
    ids, _ = db.batch_search(rows(5000, 4), k=3)
    assert ids.shape == (5000, 3)


CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from nusterdb import DatabaseConfig, HNSWConfig, NusterDB

    path, kind = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(5)
    out = {}
    if kind == "bulk_add":
        cfg = DatabaseConfig(64, index_type="hnsw",
                             hnsw_config=HNSWConfig(max_nb_connection=16, ef_construction=200))
        db = NusterDB(path, cfg)
        db.bulk_add(np.arange(100), rng.standard_normal((100, 64)).astype(np.float32))
        data = rng.standard_normal((200_000, 64)).astype(np.float32)
        call = lambda: db.bulk_add(np.arange(100, 200_100), data, progress=False)
    else:
        db = NusterDB(path, dim=64)
        db.bulk_add(np.arange(50_000), rng.standard_normal((50_000, 64)).astype(np.float32))
        queries = rng.standard_normal((400_000, 64)).astype(np.float32)
        call = lambda: db.batch_search(queries, k=10, progress=False)
    print("start", flush=True)
    try:
        call()
        out["interrupted"] = False
    except KeyboardInterrupt as e:
        out["interrupted"] = True
        out["latency"] = time.monotonic()
        out["notes"] = getattr(e, "__notes__", [])
    out["count"] = len(db)
    if kind == "bulk_add":
        db.bulk_add(np.arange(100, 1100), data[:1000])
        out["retry_count"] = len(db)
    db.close()
    print(json.dumps(out), flush=True)
    """
)


@pytest.mark.parametrize("kind", ["bulk_add", "batch_search"])
def test_ctrl_c_stops_a_long_call_promptly_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "db"), kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "start"
    time.sleep(0.5)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out_text, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    out = json.loads(out_text.strip().splitlines()[-1])
    assert out["interrupted"], "the call finished before the signal: make it longer"
    latency = out["latency"] - sent
    print(f"{kind}: KeyboardInterrupt {latency * 1000:.0f} ms after SIGINT")
    # The contract is under a second; the bound leaves room for a loaded machine.
    assert latency < 5.0
    assert any("nothing was changed" in n for n in out["notes"]) or sys.version_info < (3, 11)
    if kind == "bulk_add":
        assert out["count"] == 100
        assert out["retry_count"] == 1100
    else:
        assert out["count"] == 50_000


def test_other_threads_reading_during_a_watched_bulk_add_do_not_deadlock() -> None:
    """A watched call takes the GIL while holding the database lock (to check for Ctrl-C
    and call the callback): every other call must wait for that lock without the GIL."""
    import threading

    db = NusterDB(None, hnsw_config())
    db.bulk_add(np.arange(100), rows(100, 6))
    stop = threading.Event()
    reads = [0]
    errors: List[str] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                _ = (len(db), 5 in db, db.contains(5), db.closed, db.dimension(), repr(db))
                _ = (db.get(5), db.get_metadata(5), db.list_ids()[:1], db.is_hnsw())
                _ids, _d = db.batch_search(rows(4, 7), k=3)
                reads[0] += 1
        except BaseException as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    calls = [0]

    def callback(phase: str, done: int, total: int) -> None:
        calls[0] += 1

    try:
        db.bulk_add(np.arange(100, 8100), rows(8000, 8), progress=callback)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a reader is stuck"
    assert errors == []
    assert calls[0] >= 1
    assert reads[0] >= 1
    assert len(db) == 8100
