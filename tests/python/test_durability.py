"""Durability, locks, damaged files and snapshots (RELIABILITY.md T5, T3-lite; SPEC §1
"Snapshots", §2). The kill -9 tests (T1) are in ``test_crash.py``, the corrupt-file
sweep (T3) in ``test_corruption.py``.

* Locks: one writer per database across processes and within one; the lock dies with its
  process; read-only followers beside a live writer.
* Damaged or foreign files: a typed ``NusterDBError``, in a subprocess that exits cleanly
  (no signal, no ``PanicException``), with the files left as they were.
* Snapshots: named, with metadata, listed, restored to a new path exactly as of the
  snapshot, deleted; bad names refused; automatic snapshots on an interval.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np
import pytest
from crash_workload import BATCH_DIM, batch_vectors
from db_helpers import state_checksum
from nusterdb import (
    CorruptionError,
    DatabaseConfig,
    DatabaseLockedError,
    Metadata,
    NusterDB,
    NusterDBError,
    NusterDBIOError,
    ReadOnlyError,
)
from proc_helpers import Child, env_int, patch_wal

CRASH_DIM = BATCH_DIM
TESTS_DIR = str(Path(__file__).resolve().parent)


# ============================================================== T5: locks

SECOND_WRITER_CHILD = """
import json, sys, time
import nusterdb
path = sys.argv[1]
out = []
for attempt in range(20):
    t0 = time.perf_counter()
    try:
        db = nusterdb.NusterDB.open(path) if attempt % 2 else nusterdb.NusterDB(path, dim=4)
        out.append(["opened", time.perf_counter() - t0, ""])
        db.close()
    except Exception as e:
        out.append([type(e).__name__, time.perf_counter() - t0, str(e)])
print(json.dumps(out), flush=True)
"""


def test_second_writer_process_gets_database_locked_fast(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with NusterDB(path, dim=4) as writer:
        writer.add(1, [1.0, 2.0, 3.0, 4.0])
        child = Child(SECOND_WRITER_CHILD, path)
        results = json.loads(child.expect("["))
        rc, err = child.finish()
        assert rc == 0, err
        assert len(results) == 20
        times = [t for _, t, _ in results]
        print(f"second writer: 20 attempts, slowest refusal {max(times) * 1000:.1f} ms")
        for kind, elapsed, msg in results:
            assert kind == "DatabaseLockedError", (kind, msg)
            assert elapsed < 1.0
            assert path in msg, msg
        assert writer.list_ids() == [1]
        writer.add(2, [0.0] * 4)


def test_same_path_twice_in_one_process_is_locked(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    first = NusterDB(path, dim=4)
    first.add(1, [1.0] * 4)
    openers: List[Callable[[], NusterDB]] = [
        lambda: NusterDB.open(path),
        lambda: NusterDB(path, dim=4),
        lambda: NusterDB(path, DatabaseConfig(4)),
        lambda: NusterDB.simple(path, 4),
        lambda: NusterDB(str(Path(path) / ".." / "db")),
    ]
    for opener in openers:
        t0 = time.perf_counter()
        with pytest.raises(DatabaseLockedError) as info:
            opener()
        assert time.perf_counter() - t0 < 1.0
        assert "read_only" in str(info.value) or "read-only" in str(info.value)
    assert first.list_ids() == [1]
    first.close()
    with NusterDB.open(path) as second:
        assert second.list_ids() == [1]


HOLDING_WRITER_CHILD = """
import sys, time
from nusterdb import NusterDB
db = NusterDB.open(sys.argv[1])
db.add(int(sys.argv[2]), [float(sys.argv[2])] * 4)
print("ready", flush=True)
time.sleep(120)
"""


def test_lock_is_released_when_the_writer_is_killed(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    NusterDB(path, dim=4).close()
    rounds = env_int("NUSTERDB_LOCK_KILL_ROUNDS", 10)
    times = []
    for round_ in range(rounds):
        child = Child(HOLDING_WRITER_CHILD, path, str(round_))
        child.expect("ready")
        with pytest.raises(DatabaseLockedError):
            NusterDB.open(path)
        # From the SIGKILL to a new writer holding the database.
        t0 = time.perf_counter()
        child.kill()
        with NusterDB.open(path) as db:
            elapsed = time.perf_counter() - t0
            assert db.list_ids() == list(range(round_ + 1))
        times.append(elapsed)
        assert elapsed < 1.0, f"round {round_}: the new writer needed {elapsed:.2f}s"
    print(
        f"writer killed {rounds} times: a new writer opened every time, at most "
        f"{max(times) * 1000:.0f} ms after the SIGKILL ({rounds}/{rounds} within 1 s)"
    )


def test_close_then_reopen_a_hundred_times(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    rounds = env_int("NUSTERDB_REOPEN_ROUNDS", 100)
    t0 = time.perf_counter()
    for i in range(rounds):
        db = NusterDB(path, dim=3) if i == 0 else NusterDB.open(path)
        assert db.list_ids() == list(range(i))
        db.add(i, [float(i), 1.0, 2.0], {"i": i})
        db.close()
        assert db.closed
    with NusterDB.open(path) as db:
        assert db.count() == rounds
        for i in range(rounds):
            m = db.get_metadata(i)
            assert m is not None
            assert m["i"] == i
    print(f"close -> reopen: {rounds}/{rounds} in {time.perf_counter() - t0:.2f}s")


READER_CHILD = """
import sys
sys.path.insert(0, sys.argv[5])
import nusterdb
from crash_workload import batch_vectors
path, seed, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
db = nusterdb.NusterDB.open(path, read_only=True)
assert db.read_only

def report():
    ids = db.list_ids()
    b_count = len(ids) // n
    ok = ids == list(range(b_count * n))
    for b in range(b_count):
        want = batch_vectors(seed, b, n, dim)
        for r in range(n):
            v = db.get(b * n + r)
            ok = ok and v is not None and v.to_numpy().tobytes() == want[r].tobytes()
    q = batch_vectors(seed, 0, n, dim)[0]
    hit = db.search(q, k=1)
    ok = ok and hit[0][0] == 0
    print(f"state {len(ids)} {ok}", flush=True)

report()
errors = []
for name, call in [("add", lambda: db.add(10**9, [0.0] * dim)),
                   ("remove", lambda: db.remove(0)),
                   ("snapshot", lambda: db.snapshot_named("ro"))]:
    try:
        call()
        errors.append(name + ":no-error")
    except nusterdb.ReadOnlyError:
        pass
    except Exception as e:
        errors.append(name + ":" + type(e).__name__)
print("readonly " + (",".join(errors) or "ok"), flush=True)
for line in sys.stdin:
    if line.strip() == "refresh":
        db.refresh()
        report()
"""


def test_read_only_processes_beside_a_live_writer_see_acknowledged_writes(
    tmp_path: Path, seed: int
) -> None:
    """4 read-only processes open one after another while the writer keeps writing:
    each sees every batch acknowledged before it opened, then catches up on refresh()."""
    path = str(tmp_path / "db")
    n = 200
    with NusterDB(path, dim=CRASH_DIM) as writer:
        readers: List[Child] = []
        batches = 0
        for _ in range(4):
            for _ in range(2):
                writer.bulk_add(
                    np.arange(batches * n, (batches + 1) * n), batch_vectors(seed, batches, n)
                )
                batches += 1
            r = Child(READER_CHILD, path, str(seed), str(n), str(CRASH_DIM), TESTS_DIR, stdin=True)
            # Every write acknowledged before the reader opened is visible.
            assert r.expect("state") == f"state {batches * n} True"
            assert r.expect("readonly") == "readonly ok"
            readers.append(r)
        # Later writes while the readers are open: visible after refresh().
        for _ in range(2):
            writer.bulk_add(
                np.arange(batches * n, (batches + 1) * n), batch_vectors(seed, batches, n)
            )
            batches += 1
            for r in readers:
                r.send("refresh")
                assert r.expect("state") == f"state {batches * n} True"
        for r in readers:
            rc, err = r.finish()
            assert rc == 0, err
        assert writer.count() == batches * n
    print(f"4 read-only processes beside the writer: each saw all {batches} batches")


def test_read_only_handle_in_process_refuses_writes_and_refreshes(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with NusterDB(path, dim=2) as writer:
        writer.bulk_add([1, 2], [[1.0, 0.0], [0.0, 1.0]])
        with NusterDB.open(path, read_only=True) as ro:
            assert ro.read_only
            before = state_checksum(ro)
            for call in (
                lambda: ro.add(3, [1.0, 1.0]),
                lambda: ro.remove(1),
                lambda: ro.snapshot(),
                lambda: ro.snapshot_named("x"),
            ):
                with pytest.raises(ReadOnlyError):
                    call()
            assert state_checksum(ro) == before
            writer.add(3, [2.0, 2.0])
            writer.remove(1)
            assert ro.list_ids() == [1, 2]
            ro.refresh()
            assert ro.list_ids() == [2, 3]
            assert ro.search([2.0, 2.0], k=1) == [(3, 0.0)]


# ============================================================== damaged and foreign files

OPEN_CHILD = """
import hashlib, sys
import nusterdb
path, mode = sys.argv[1], sys.argv[2]
try:
    db = nusterdb.NusterDB.open(path, read_only=(mode == "ro"))
except nusterdb.NusterDBError as e:
    print("ERR", type(e).__name__, str(e).replace("\\n", " ")[:400], flush=True)
    sys.exit(0)
h = hashlib.sha256()
for i in db.list_ids():
    h.update(str(i).encode())
    h.update(db.get(i).to_numpy().tobytes())
    h.update(repr(sorted(db.get_metadata(i).to_dict().items())).encode())
print("OPEN", db.count(), h.hexdigest(), flush=True)
"""


def data_hash(db: NusterDB) -> str:
    h = hashlib.sha256()
    for i in db.list_ids():
        v = db.get(i)
        m = db.get_metadata(i)
        assert v is not None
        assert m is not None
        h.update(str(i).encode())
        h.update(v.to_numpy().tobytes())
        h.update(repr(sorted(m.to_dict().items())).encode())
    return h.hexdigest()


def tree_hashes(path: Path, skip_logs: bool) -> Dict[str, str]:
    """Content hashes of every file under ``path`` (RocksDB's info LOG files, which any
    open attempt appends to, optionally left out)."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    out: Dict[str, str] = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not (skip_logs and p.name.startswith("LOG")):
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def open_in_subprocess(path: Path, mode: str) -> Tuple[str, List[str]]:
    """Opens ``path`` in a fresh interpreter; asserts it exits cleanly; returns the
    outcome line split into (kind, rest)."""
    r = subprocess.run(
        [sys.executable, "-c", OPEN_CHILD, str(path), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"exit {r.returncode} (negative = signal); stderr:\n{r.stderr}"
    assert "PanicException" not in r.stderr, r.stderr
    assert "panicked" not in r.stderr, r.stderr
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    kind, *rest = line.split(" ", 2)
    assert kind in ("ERR", "OPEN"), r.stdout + r.stderr
    return kind, rest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, str, int]:
    """A closed 2,000-vector database whose data sits in SST files: (path, data hash,
    count)."""
    path = tmp_path_factory.mktemp("pristine") / "db"
    rng = np.random.default_rng(99)
    with NusterDB(str(path), dim=16) as db:
        db.bulk_add(
            np.arange(2000),
            rng.standard_normal((2000, 16)).astype(np.float32),
            [{"i": i, "s": "x" * (i % 50)} for i in range(2000)],
        )
    # Reopening replays the WAL into an SST file (RocksDB flushes recovered memtables).
    with NusterDB.open(str(path)) as db:
        digest = data_hash(db)
    assert any(p.suffix == ".sst" for p in path.iterdir()), sorted(os.listdir(path))
    return path, digest, 2000


def damaged_copies(pristine: Tuple[Path, str, int], root: Path) -> Iterator[Tuple[str, Path]]:
    src = pristine[0]
    rng = np.random.default_rng(7)
    targets = sorted(
        p.name for p in src.iterdir() if p.suffix == ".sst" or p.name.startswith("MANIFEST-")
    )
    assert targets
    for name in targets:
        dst = root / f"random-{name}"
        shutil.copytree(src, dst)
        size = (dst / name).stat().st_size
        (dst / name).write_bytes(rng.bytes(size))
        yield name, dst


@pytest.mark.parametrize(
    "mode",
    [
        "rw",
        "ro",
    ],
)
def test_random_bytes_over_sst_or_manifest_give_a_typed_error_never_a_crash(
    tmp_path: Path, pristine: Tuple[Path, str, int], mode: str
) -> None:
    for name, dst in damaged_copies(pristine, tmp_path):
        before = tree_hashes(dst, skip_logs=True)
        kind, rest = open_in_subprocess(dst, mode)
        print(f"{name} ({mode}): {kind} {' '.join(rest)[:160]}")
        if kind == "OPEN":
            # Opening is only acceptable with exactly the original data.
            assert int(rest[0]) == pristine[2], f"{name}: opened with a different count"
            assert rest[1] == pristine[1], f"{name}: opened with different data"
        else:
            assert rest[0] in {"CorruptionError", "NusterDBError", "NusterDBIOError"}, rest
            if mode == "rw":
                assert rest[0] == "CorruptionError", rest
        assert tree_hashes(dst, skip_logs=True) == before, f"{name}: files were modified"


def _foreign(kind: str, root: Path, pristine: Tuple[Path, str, int]) -> Path:
    rng = np.random.default_rng(11)
    path = root / kind
    if kind == "regular_file":
        path.write_bytes(rng.bytes(4096))
    elif kind == "random_files":
        path.mkdir()
        for i in range(5):
            (path / f"file{i}.bin").write_bytes(rng.bytes(int(rng.integers(1, 10000))))
        (path / "CURRENT.txt").write_text("hello")
    elif kind == "rocksdb_files_removed":
        shutil.copytree(pristine[0], path)
        for p in path.iterdir():
            if p.name == "CURRENT" or p.name.startswith("MANIFEST"):
                p.unlink()
    elif kind == "rocksdb_without_nusterdb_lock":
        shutil.copytree(pristine[0], path)
        (path / "nusterdb.lock").unlink()
    elif kind == "current_garbage":
        shutil.copytree(pristine[0], path)
        (path / "CURRENT").write_bytes(rng.bytes(16))
    elif kind in ("no_format_marker", "future_format_version"):
        # A fresh database keeps its first write (format marker + config) in the WAL:
        # change it there, with the record's checksum fixed, so RocksDB replays a valid
        # log. No marker: a RocksDB database NusterDB did not make (but with the lock
        # file, so the format check itself is what refuses it). A marker of version 4:
        # a database from a future release.
        NusterDB(str(path), dim=4).close()
        if kind == "no_format_marker":
            patch_wal(path, b"\x00format", b"\x00formaX")
        else:
            patch_wal(path, b"NUSTERDB\x03\x00\x00\x00", b"NUSTERDB\x04\x00\x00\x00")
    else:
        raise ValueError(kind)
    return path


@pytest.mark.parametrize("mode", ["rw", "ro"])
@pytest.mark.parametrize(
    "kind",
    [
        "regular_file",
        "random_files",
        "rocksdb_files_removed",
        "rocksdb_without_nusterdb_lock",
        "current_garbage",
        "no_format_marker",
        "future_format_version",
    ],
)
def test_foreign_or_damaged_paths_are_corruption_errors_and_left_untouched(
    tmp_path: Path, pristine: Tuple[Path, str, int], kind: str, mode: str
) -> None:
    path = _foreign(kind, tmp_path, pristine)
    # RocksDB's own info log is the one thing an open attempt may write.
    skip_logs = kind == "current_garbage"
    before = tree_hashes(path, skip_logs)
    out, rest = open_in_subprocess(path, mode)
    print(f"{kind} ({mode}): {out} {' '.join(rest)[:200]}")
    assert out == "ERR"
    # Something that is no NusterDB database at all is told apart from a damaged one.
    assert rest[0] == ("NotADatabaseError" if kind in UNRELATED else "CorruptionError"), rest
    assert str(path) in rest[1]
    if kind == "future_format_version":
        assert "format version 4 not supported (max 3)" in rest[1], rest
    if kind == "no_format_marker":
        assert "not a NusterDB database" in rest[1], rest
    assert tree_hashes(path, skip_logs) == before, "the files were modified"
    # And in this process too: the same typed error.
    with pytest.raises(CorruptionError):
        NusterDB.open(str(path), read_only=(mode == "ro"))
    assert tree_hashes(path, skip_logs) == before, "the files were modified"


# Paths that hold no NusterDB database at all (NotADatabaseError, a CorruptionError).
UNRELATED = ("regular_file", "random_files", "rocksdb_without_nusterdb_lock")

FOREIGN_KINDS = (
    "regular_file",
    "random_files",
    "rocksdb_files_removed",
    "rocksdb_without_nusterdb_lock",
    "current_garbage",
    "no_format_marker",
    "future_format_version",
)


@pytest.mark.parametrize("mode", ["rw", "ro"])
@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_foreign_or_damaged_paths_opened_with_a_config_are_left_untouched(
    tmp_path: Path, pristine: Tuple[Path, str, int], kind: str, mode: str
) -> None:
    """With a config the open must not create or recover anything either (found by this
    test: the writer used to open, replaying the WAL, before the format check)."""
    path = _foreign(kind, tmp_path, pristine)
    skip_logs = kind == "current_garbage"
    before = tree_hashes(path, skip_logs)
    with pytest.raises(CorruptionError):
        NusterDB(str(path), dim=4, read_only=(mode == "ro"))
    assert tree_hashes(path, skip_logs) == before, "the files were modified"


def open_read_only(path: Path, how: str) -> NusterDB:
    if how == "open":
        return NusterDB.open(str(path), read_only=True)
    return NusterDB(str(path), dim=4, read_only=True)


@pytest.mark.parametrize("how", ["open", "with_config"])
def test_empty_or_missing_directory_opened_read_only_is_an_error_and_stays_untouched(
    tmp_path: Path, how: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing"
    for path in (empty, missing):
        with pytest.raises(NusterDBIOError, match="read-only") as info:
            open_read_only(path, how)
        print(f"{path.name} ({how}): {type(info.value).__name__}: {info.value}")
        assert str(path) in str(info.value)
    assert sorted(os.listdir(empty)) == []
    assert not missing.exists()


def test_lock_file_only_directory_opens_as_new_only_with_a_config(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.mkdir()
    (path / "nusterdb.lock").write_bytes(b"")
    with pytest.raises(NusterDBIOError):
        NusterDB.open(str(path))
    with NusterDB(str(path), dim=2) as db:
        db.add(1, [1.0, 1.0])
    with NusterDB.open(str(path)) as db:
        assert db.list_ids() == [1]


# ============================================================== snapshots


@pytest.fixture
def snap_db(tmp_path: Path) -> Iterator[NusterDB]:
    rng = np.random.default_rng(5)
    with NusterDB(str(tmp_path / "db"), DatabaseConfig(6, distance_metric="cosine")) as db:
        db.bulk_add(
            np.arange(300),
            rng.standard_normal((300, 6)).astype(np.float32),
            [
                Metadata.with_data({"i": i, "even": i % 2 == 0}, tags=[f"t{i % 4}"])
                for i in range(300)
            ],
        )
        yield db


def answers(db: NusterDB) -> List[Any]:
    qs = np.random.default_rng(8).standard_normal((5, 6)).astype(np.float32)
    out: List[Any] = [db.search(q, k=10) for q in qs]
    out += [db.search(q, k=10, filter={"even": True, "$tags": {"$any": ["t0"]}}) for q in qs]
    ids, d = db.batch_search(qs, k=7)
    out += [ids.tolist(), d.tolist()]
    return out


def test_snapshot_named_restores_exactly_as_of_the_snapshot(
    snap_db: NusterDB, tmp_path: Path
) -> None:
    assert snap_db.snapshot_named("before-writes") == "before-writes"
    at_snapshot = state_checksum(snap_db)
    answers_then = answers(snap_db)
    # Later writes to the original do not reach the snapshot.
    snap_db.bulk_add([1000, 1001], [[1.0] * 6, [2.0] * 6])
    snap_db.bulk_remove(range(0, 100))
    snap_db.update(150, [9.0] * 6, {"changed": True})
    snap_db.upsert(151, [8.0] * 6)
    after = state_checksum(snap_db)
    assert after != at_snapshot
    target = tmp_path / "restored"
    snap_db.restore_snapshot("before-writes", str(target))
    with NusterDB.open(str(target)) as restored:
        assert restored.config == snap_db.config
        assert state_checksum(restored) == at_snapshot
        assert answers(restored) == answers_then
        restored.add(5000, [1.0] * 6)  # a database of its own, writable
    assert state_checksum(snap_db) == after


def test_snapshot_listing_reports_names_counts_and_metadata(snap_db: NusterDB) -> None:
    assert snap_db.list_snapshots() == []
    snap_db.snapshot_named("one")
    snap_db.bulk_add([1000], [[1.0] * 6])
    assert (
        snap_db.snapshot_with_metadata(
            "two", {"note": "after one add", "n": 3, "ok": True, "x": 1.5}
        )
        == "two"
    )
    auto = snap_db.snapshot()
    assert isinstance(auto, str)
    assert auto not in ("one", "two")
    listed = {s["name"]: s for s in snap_db.list_snapshots()}
    assert set(listed) == {"one", "two", auto}
    assert listed["one"]["vector_count"] == 300
    assert listed["two"]["vector_count"] == 301
    assert listed[auto]["vector_count"] == 301
    assert listed["one"]["metadata"] == {}
    meta = listed["two"]["metadata"]
    assert meta == {"note": "after one add", "n": 3, "ok": True, "x": 1.5}
    assert type(meta["n"]) is int
    assert type(meta["ok"]) is bool
    for s in listed.values():
        assert s["created_at"] > 1_600_000_000
        assert Path(s["path"]).is_dir()
    names = [s["name"] for s in snap_db.list_snapshots()]
    assert names.index("one") < names.index("two")  # oldest first


def test_snapshot_with_metadata_object(snap_db: NusterDB) -> None:
    snap_db.snapshot_with_metadata("m", Metadata.with_data({"k": "v"}))
    (s,) = snap_db.list_snapshots()
    assert s["metadata"] == {"k": "v"}


def test_delete_snapshot_removes_it(snap_db: NusterDB, tmp_path: Path) -> None:
    snap_db.snapshot_named("a")
    snap_db.snapshot_named("b")
    snap_db.delete_snapshot("a")
    assert [s["name"] for s in snap_db.list_snapshots()] == ["b"]
    with pytest.raises(NusterDBError):
        snap_db.delete_snapshot("a")
    with pytest.raises(NusterDBError):
        snap_db.restore_snapshot("a", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()
    snap_db.snapshot_named("a")  # the name is free again
    assert sorted(s["name"] for s in snap_db.list_snapshots()) == ["a", "b"]


def test_duplicate_snapshot_name_is_an_error(snap_db: NusterDB) -> None:
    snap_db.snapshot_named("dup")
    with pytest.raises(NusterDBError, match="dup"):
        snap_db.snapshot_named("dup")
    with pytest.raises(NusterDBError, match="dup"):
        snap_db.snapshot_with_metadata("dup", {"a": 1})
    assert [s["name"] for s in snap_db.list_snapshots()] == ["dup"]


@pytest.mark.parametrize(
    "name", ["", ".hidden", "a/b", "../escape", "x.partial", "a" * 129, "sp ace", "é", "a\x00b"]
)
def test_bad_snapshot_names_are_value_errors(snap_db: NusterDB, tmp_path: Path, name: str) -> None:
    for call in (
        lambda: snap_db.snapshot_named(name),
        lambda: snap_db.snapshot_with_metadata(name, {"a": 1}),
        lambda: snap_db.restore_snapshot(name, str(tmp_path / "r")),
        lambda: snap_db.delete_snapshot(name),
    ):
        with pytest.raises(ValueError, match="name"):
            call()
    assert snap_db.list_snapshots() == []
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "escape").exists()


def test_restore_refuses_a_non_empty_target(snap_db: NusterDB, tmp_path: Path) -> None:
    snap_db.snapshot_named("s")
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(NusterDBError):
        snap_db.restore_snapshot("s", str(target))
    assert (target / "keep.txt").read_text() == "mine"
    assert sorted(os.listdir(target)) == ["keep.txt"]


def test_in_memory_database_has_no_snapshots() -> None:
    with NusterDB(None, dim=2) as db, pytest.raises(NusterDBError):
        db.snapshot_named("s")


def test_list_snapshots_while_snapshots_are_taken_never_fails(tmp_path: Path) -> None:
    """Listing must skip snapshots still being built (their directories are not
    complete yet) instead of failing on them."""
    rng = np.random.default_rng(3)
    with NusterDB(str(tmp_path / "db"), dim=32) as db:
        db.bulk_add(np.arange(5000), rng.standard_normal((5000, 32)).astype(np.float32))
        stop = threading.Event()
        taken: List[str] = []
        errors: List[BaseException] = []

        def snapshotter() -> None:
            try:
                i = 0
                while not stop.is_set() and i < 200:
                    taken.append(db.snapshot_named(f"s{i}"))
                    i += 1
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        t = threading.Thread(target=snapshotter)
        t.start()
        listings = 0
        failures: List[str] = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and t.is_alive():
            try:
                names = {s["name"] for s in db.list_snapshots()}
                assert all(n.startswith("s") and "." not in n for n in names), names
            except NusterDBError as e:
                failures.append(f"{type(e).__name__}: {e}")
            listings += 1
        stop.set()
        t.join()
        print(f"{len(taken)} snapshots taken, {listings} listings, {len(failures)} failed")
        assert not errors, errors
        assert not failures, failures[:3]
        assert {s["name"] for s in db.list_snapshots()} == set(taken)


def test_list_snapshots_ignores_leftovers_of_interrupted_snapshots(tmp_path: Path) -> None:
    """What a crash in the middle of snapshot_named leaves behind: the snapshot's
    ``<name>.partial`` build directory, and RocksDB's own ``<dir>.tmp`` checkpoint
    directory inside the snapshots folder."""
    path = tmp_path / "db"
    with NusterDB(str(path), dim=2) as db:
        db.add(1, [1.0, 2.0])
        db.snapshot_named("good")
    snaps = path / "snapshots"
    (snaps / "x.partial").mkdir()
    (snaps / "y.partial.tmp").mkdir()
    (snaps / "y.partial.tmp" / "CURRENT").write_text("MANIFEST-000001\n")
    with NusterDB.open(str(path)) as db:
        assert [s["name"] for s in db.list_snapshots()] == ["good"]
        db.snapshot_named("y")  # the interrupted name can be taken again
        assert sorted(s["name"] for s in db.list_snapshots()) == ["good", "y"]


def test_auto_snapshots_appear_on_the_interval(tmp_path: Path) -> None:
    cfg = DatabaseConfig(2, auto_snapshot=True, snapshot_interval_secs=1)
    db = NusterDB(str(tmp_path / "db"), cfg)
    db.bulk_add([1, 2, 3], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    t0 = time.monotonic()
    autos: List[Dict[str, Any]] = []
    while time.monotonic() - t0 < 3.5:
        autos = [s for s in db.list_snapshots() if s["name"].startswith("auto-")]
        if autos:
            break
        time.sleep(0.1)
    print(f"first auto snapshot after {time.monotonic() - t0:.2f}s")
    assert autos, "no automatic snapshot within 3.5 s"
    assert autos[0]["vector_count"] == 3
    t1 = time.perf_counter()
    db.close()
    assert time.perf_counter() - t1 < 2.0, "close waited for the snapshot thread"
    restored = tmp_path / "restored"
    with NusterDB(str(tmp_path / "db")) as again:
        again.restore_snapshot(autos[0]["name"], str(restored))
    with NusterDB.open(str(restored)) as r:
        assert r.list_ids() == [1, 2, 3]
