"""Snapshot and restore races (RELIABILITY.md "Snapshot and restore races").

Threads racing ``snapshot_named`` / ``restore_snapshot`` / ``delete_snapshot`` through the
Python API; a child process SIGKILLed while it restores a ~30 MB snapshot; automatic
retention beside the caller's ``auto-*`` snapshots; a snapshot directory opened as a
writer; a damaged manifest in the listing; ``disk_bytes`` with hard-linked snapshot files.
Every round checks what must hold (one winner, a complete copy or a missing source), never
timings.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
from nusterdb import (
    DamagedSnapshotWarning,
    DatabaseConfig,
    InvalidArgumentError,
    NusterDB,
    NusterDBIOError,
    ReadOnlyError,
)
from proc_helpers import Child, env_int

ROUNDS = env_int("NUSTERDB_SNAPSHOT_RACE_ROUNDS", 30)
KILL_CYCLES = env_int("NUSTERDB_RESTORE_KILL_CYCLES", 8)
DIM = 16


def run_pair(fn_a: Any, fn_b: Any) -> List[Tuple[str, Any]]:
    """Runs two callables on two threads released together; returns each outcome as
    ("ok", value) or ("err", exception), in the order a, b."""
    barrier = threading.Barrier(2)
    out: List[Tuple[str, Any]] = [("", None), ("", None)]

    def run(i: int, fn: Any) -> None:
        barrier.wait()
        try:
            out[i] = ("ok", fn())
        except Exception as e:  # judged by the caller
            out[i] = ("err", e)

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate((fn_a, fn_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def check_copy(path: Path, vectors: np.ndarray, count: int) -> None:
    """The database at ``path`` opens as a writer and holds exactly ids 0..count-1 with
    their rows."""
    with NusterDB.open(str(path)) as db:
        assert db.count() == count
        assert db.list_ids() == list(range(count))
        for i in (0, count // 2, count - 1):
            v = db.get(i)
            assert v is not None
            np.testing.assert_array_equal(v.to_numpy(), vectors[i])


def staged(parent: Path) -> List[str]:
    return sorted(n for n in os.listdir(parent) if ".restoring-" in n)


def test_two_threads_snapshot_one_name_exactly_one_wins(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((2000, DIM)).astype(np.float32)
    with NusterDB(str(tmp_path / "db"), dim=DIM) as db:
        db.bulk_add(np.arange(2000), vectors)
        for r in range(ROUNDS):
            name = f"x{r}"
            out = run_pair(lambda n=name: db.snapshot_named(n), lambda n=name: db.snapshot_named(n))
            assert sorted(kind for kind, _ in out) == ["err", "ok"], (r, out)
            err = next(e for kind, e in out if kind == "err")
            assert isinstance(err, NusterDBIOError), repr(err)
            assert err.errno == errno.EEXIST
            assert "already exists" in str(err)
            assert [s["name"] for s in db.list_snapshots()].count(name) == 1
        assert not [n for n in os.listdir(tmp_path / "db" / "snapshots") if n.startswith(".")]
        db.restore_snapshot("x3", str(tmp_path / "restored"))
    check_copy(tmp_path / "restored", vectors, 2000)
    print(f"snapshot_named races: {ROUNDS} rounds, one winner each")


def test_restores_racing_delete_and_recreate_are_complete_or_report_it_missing(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(12)
    vectors = rng.standard_normal((3000 + 10 * ROUNDS, DIM)).astype(np.float32)
    complete = missing = 0
    with NusterDB(str(tmp_path / "db"), dim=DIM) as db:
        db.bulk_add(np.arange(3000), vectors[:3000])
        db.snapshot_named("s")

        def churn(r: int) -> None:
            db.delete_snapshot("s")
            first = 3000 + 10 * r
            db.bulk_add(np.arange(first, first + 10), vectors[first : first + 10])
            db.snapshot_named("s")

        for r in range(ROUNDS):
            target = tmp_path / f"r{r}"
            out = run_pair(lambda r=r: churn(r), lambda t=target: db.restore_snapshot("s", str(t)))
            assert out[0][0] == "ok", out[0]
            kind, value = out[1]
            if kind == "ok":
                with NusterDB.open(str(target), read_only=True) as ro:
                    count = ro.count()
                assert count in (3000 + 10 * r, 3000 + 10 * (r + 1)), (r, count)
                check_copy(target, vectors, count)
                complete += 1
            else:
                assert isinstance(value, InvalidArgumentError), repr(value)
                assert str(value) == 'no snapshot named "s"', str(value)
                assert not target.exists()
                missing += 1
            assert staged(tmp_path) == []
    print(
        f"restore vs delete+create: {ROUNDS} rounds, {complete} complete copies, "
        f"{missing} reported the snapshot missing, 0 unusable"
    )


def test_two_threads_restoring_into_one_path_exactly_one_wins(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    vectors = rng.standard_normal((2000, DIM)).astype(np.float32)
    targets = tmp_path / "targets"
    targets.mkdir()
    with NusterDB(str(tmp_path / "db"), dim=DIM) as db:
        db.bulk_add(np.arange(2000), vectors)
        db.snapshot_named("s")
        for r in range(ROUNDS):
            t = str(targets / f"r{r}")
            out = run_pair(
                lambda t=t: db.restore_snapshot("s", t), lambda t=t: db.restore_snapshot("s", t)
            )
            assert sorted(kind for kind, _ in out) == ["err", "ok"], (r, out)
            err = next(e for kind, e in out if kind == "err")
            assert isinstance(err, NusterDBIOError), repr(err)
            assert err.errno == errno.EEXIST
            assert err.filename == t
            check_copy(Path(t), vectors, 2000)
            assert staged(targets) == []
    print(f"restore_snapshot races into one path: {ROUNDS} rounds, one winner each")


RESTORER = """
import sys
from nusterdb import NusterDB
db = NusterDB.open(sys.argv[1], read_only=True)
print("ready", flush=True)
db.restore_snapshot("big", sys.argv[2])
print("done", flush=True)
"""


def test_kill_9_during_restore_leaves_no_half_target(tmp_path: Path) -> None:
    """A child restores a ~30 MB snapshot and is SIGKILLed at a random moment of it.
    Then the target is absent or a complete copy; a second restore to it succeeds (when
    absent) or says it exists; either way the killed restore's staging directory is
    gone afterwards, and the database and its listing are unharmed."""
    rng = np.random.default_rng(14)
    n, dim = 60_000, 128
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    path = tmp_path / "db"
    with NusterDB(str(path), dim=dim) as db:
        db.bulk_add(np.arange(n), vectors)
        db.snapshot_named("big")
        t0 = time.perf_counter()
        db.restore_snapshot("big", str(tmp_path / "timed"))
        took = time.perf_counter() - t0
    outcomes = {"absent": 0, "complete": 0, "mid-copy": 0}
    for cycle in range(KILL_CYCLES):
        target = tmp_path / f"t{cycle}"
        child = Child(RESTORER, str(path), str(target))
        child.expect("ready")
        time.sleep(float(rng.uniform(0.0, took * 1.5)))
        lines = child.kill()
        finished = "done" in lines
        # A staging directory left behind: the kill came during the copy or the rename.
        outcomes["mid-copy"] += bool(staged(tmp_path))
        with NusterDB.open(str(path)) as db:
            assert [s["name"] for s in db.list_snapshots()] == ["big"]
            if target.exists():
                outcomes["complete"] += 1
                with NusterDB.open(str(target)) as r:
                    assert r.count() == n
                    for i in rng.integers(0, n, 5).tolist():
                        v = r.get(i)
                        assert v is not None
                        np.testing.assert_array_equal(v.to_numpy(), vectors[i])
                with pytest.raises(NusterDBIOError, match="already exists") as info:
                    db.restore_snapshot("big", str(target))
                assert info.value.errno == errno.EEXIST
            else:
                assert not finished
                outcomes["absent"] += 1
                db.restore_snapshot("big", str(target))
                with NusterDB.open(str(target)) as r:
                    assert r.count() == n
            assert staged(tmp_path) == [], f"cycle {cycle}: staging left behind"
    print(
        f"restore killed {KILL_CYCLES} times (a restore takes {took:.2f}s): "
        f"{outcomes['absent']} targets absent, {outcomes['complete']} complete, 0 half; "
        f"{outcomes['mid-copy']} killed mid-copy (staging directory removed by the next restore)"
    )


def test_callers_auto_named_snapshots_survive_automatic_retention(tmp_path: Path) -> None:
    """Automatic retention keeps the newest 10 automatic snapshots; the caller's
    snapshots are never pruned, even named ``auto-…`` like the automatic ones."""
    cfg = DatabaseConfig(2, auto_snapshot=True, snapshot_interval_secs=1)
    mine = ["auto-keep-this-backup"] + [f"auto-1700000000-{i}" for i in range(11)]
    with NusterDB(str(tmp_path / "db"), cfg) as db:
        db.add(1, [1.0, 2.0])
        for name in mine:
            db.snapshot_named(name)
        deadline = time.monotonic() + 10.0
        autos: List[Dict[str, Any]] = []
        while time.monotonic() < deadline and len(autos) < 2:
            time.sleep(0.2)
            autos = [s for s in db.list_snapshots() if s["auto"]]
        assert len(autos) >= 2, "the automatic snapshots did not come"
        listed = {s["name"]: s for s in db.list_snapshots()}
    for name in mine:
        assert name in listed, f"{name} was pruned"
        assert listed[name]["auto"] is False
    assert all(s["name"].startswith("auto-") for s in autos)


def tree_digest(path: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_a_snapshot_opens_read_only_only_and_stays_unchanged(tmp_path: Path) -> None:
    with NusterDB(str(tmp_path / "db"), dim=3) as db:
        db.bulk_add([1, 2, 3], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        db.snapshot_named("s")
        snap = Path(db.list_snapshots()[0]["path"])
        before = tree_digest(snap)
        with pytest.raises(ReadOnlyError, match="restore_snapshot"):
            NusterDB.open(str(snap))
        with pytest.raises(ReadOnlyError, match="restore_snapshot"):
            NusterDB(str(snap), dim=3)
        with NusterDB.open(str(snap), read_only=True) as ro:
            assert ro.list_ids() == [1, 2, 3]
            assert ro.search([1.0, 0.0, 0.0], k=1)[0][0] == 1
            with pytest.raises(ReadOnlyError):
                ro.add(4, [1.0, 1.0, 1.0])
        assert tree_digest(snap) == before
        db.restore_snapshot("s", str(tmp_path / "restored"))
    with NusterDB.open(str(tmp_path / "restored")) as r:
        assert r.list_ids() == [1, 2, 3]


def test_a_damaged_manifest_is_skipped_with_a_warning(tmp_path: Path) -> None:
    with NusterDB(str(tmp_path / "db"), dim=2) as db:
        db.add(1, [1.0, 2.0])
        for name in ("a", "bad", "c"):
            db.snapshot_named(name)
        manifest = tmp_path / "db" / "snapshots" / "bad" / "SNAPSHOT"
        data = bytearray(manifest.read_bytes())
        data[len(data) // 2] ^= 0x5A
        manifest.write_bytes(bytes(data))
        with pytest.warns(DamagedSnapshotWarning, match='"bad".*checksum'):
            names = [s["name"] for s in db.list_snapshots()]
        assert names == ["a", "c"]
        db.delete_snapshot("bad")
        assert [s["name"] for s in db.list_snapshots()] == ["a", "c"]  # no warning now


def test_disk_bytes_counts_hard_linked_snapshot_files_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    path = tmp_path / "db"
    with NusterDB(str(path), dim=32) as db:
        db.bulk_add(np.arange(20_000), rng.standard_normal((20_000, 32)).astype(np.float32))
        db.flush()
        for i in range(4):
            db.snapshot_named(f"s{i}")

        def on_disk() -> Tuple[int, int]:
            seen = set()
            unique = every = 0
            for root, _, files in os.walk(path):
                for f in files:
                    st = os.lstat(os.path.join(root, f))
                    every += st.st_size
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        unique += st.st_size
            return unique, every

        unique, every = on_disk()
        disk = db.stats().disk_bytes
        assert on_disk() == (unique, every), "the directory changed during the check"
    if os.name == "nt":
        pytest.skip("hard links are counted once on Unix only")
    assert every > unique + 3 * 20_000 * 32 * 4 // 2, (every, unique)
    assert disk == unique, (disk, unique, every)
