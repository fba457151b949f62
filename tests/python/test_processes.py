"""Processes (RELIABILITY.md "Processes"): ``fork()`` children, processes racing to
create one database, followers' scratch directories, and opens that fail.

* A handle inherited through ``fork()`` refuses every use with ``ForkedProcessError``,
  the child exits normally with status 0, and the parent's later writes all survive a
  reopen. A child also cannot open a database of its own once its parent had opened one.
* Writers racing to create one path: exactly one wins, the rest get
  ``DatabaseLockedError``; followers racing them open it or find nothing, never a
  ``CorruptionError``.
* A follower's scratch directory is made fresh (a planted symlink is never followed),
  is gone after ``close()``, and one left by a killed follower is swept.
* An empty path is refused up front; failed opens leave the directory as they found it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import pytest
from nusterdb import (
    CorruptionError,
    DatabaseConfig,
    ForkedProcessError,
    InvalidArgumentError,
    NusterDB,
    NusterDBError,
)
from proc_helpers import Child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SCRATCH_PREFIX = "nusterdb-secondary-"


def run(script: str, *args: str, env: Dict[str, str] | None = None) -> List[str]:
    """Runs ``script`` in a fresh interpreter; asserts exit status 0; its stdout lines."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.splitlines()


# ================================================================== fork()

FORK_SCRIPT = r"""
import os, subprocess, sys
import numpy as np
from nusterdb import DatabaseConfig, DatabaseLockedError, ForkedProcessError, NusterDB

path, action, read_only = sys.argv[1], sys.argv[2], sys.argv[3] == "ro"
cfg = DatabaseConfig(4, auto_snapshot=action == "auto", snapshot_interval_secs=1)
db = NusterDB(path, cfg)
db.bulk_add(np.arange(10), np.ones((10, 4), np.float32))
handle = NusterDB.open(path, read_only=True) if read_only else db
pid = os.fork()
if pid == 0:
    outcome = "nothing"
    try:
        if action == "search":
            handle.search([1, 1, 1, 1], k=3)
        elif action == "add":
            handle.add(999, [1, 2, 3, 4])
        elif action == "bulk_add":
            handle.bulk_add(np.arange(1000, 1100), np.ones((100, 4), np.float32))
        elif action == "refresh":
            handle.refresh()
        elif action == "close":
            handle.close()
            outcome = "closed"
        elif action == "with":
            with handle:
                pass
            outcome = "closed"
        elif action == "open":
            NusterDB(path + "-child", dim=4)
        if action not in ("nothing", "auto", "close", "with"):
            outcome = "ran"
    except ForkedProcessError as e:
        outcome = "refused"
    print(f"child {outcome} closed={handle.closed}", flush=True)
    sys.exit(0)  # a normal interpreter exit: finalizers and exit handlers run
_, status = os.waitpid(pid, 0)
print(f"status {status}", flush=True)
if action == "close":
    # The child's close released nothing: the parent still holds the writer lock.
    probe = subprocess.run([sys.executable, "-c",
        "import sys\nfrom nusterdb import NusterDB, DatabaseLockedError\n"
        "try:\n    NusterDB(sys.argv[1])\nexcept DatabaseLockedError:\n    print('locked')\n",
        path], capture_output=True, text=True, timeout=60)
    print(f"probe {probe.stdout.strip()}", flush=True)
for i in range(10, 20):
    db.add(i, [float(i), 0, 0, 0])
db.bulk_add(np.arange(100, 200), np.ones((100, 4), np.float32))
db.flush()
if read_only:
    handle.close()
db.close()
db = NusterDB(path)
print("ids " + " ".join(map(str, db.list_ids())), flush=True)
"""

EXPECTED_IDS = [*range(20), *range(100, 200)]


@pytest.mark.parametrize(
    ("action", "handle"),
    [
        ("nothing", "rw"),
        ("search", "rw"),
        ("add", "rw"),
        ("bulk_add", "rw"),
        ("close", "rw"),
        ("with", "rw"),
        ("open", "rw"),
        ("auto", "rw"),
        ("search", "ro"),
        ("refresh", "ro"),
        ("close", "ro"),
    ],
)
def test_a_forked_child_is_refused_exits_cleanly_and_loses_nothing(
    tmp_path: Path, action: str, handle: str
) -> None:
    """Parent opens (writer, or a follower beside it), forks; the child does nothing,
    uses the handle, closes it, or opens a database of its own, then exits through
    the interpreter. Every use is ForkedProcessError; the child's exit status is 0;
    the parent's writes after the fork all survive close and reopen. 3 runs each."""
    for run_no in range(3):
        path = tmp_path / f"db{run_no}"
        lines = run(FORK_SCRIPT, str(path), action, handle)
        expected_child = {
            "nothing": "child nothing closed=True",
            "auto": "child nothing closed=True",
            "close": "child closed closed=True",
            "with": "child closed closed=True",
        }.get(action, "child refused closed=True")
        assert lines[0] == expected_child, lines
        assert lines[1] == "status 0", lines
        if action == "close":
            assert lines[2] == "probe locked", lines
        assert lines[-1] == "ids " + " ".join(map(str, EXPECTED_IDS)), lines
        assert not (tmp_path / f"db{run_no}-child").exists()
    print(f"fork[{action}, {handle}]: 3 runs, child exit 0, {len(EXPECTED_IDS)} ids kept")


IDLE_CHILD_SCRIPT = r"""
import os, sys
from nusterdb import NusterDB

path = sys.argv[1]
db = NusterDB(path, dim=4)
db.add(1, [1.0, 2.0, 3.0, 4.0])
r, w = os.pipe()
started_r, started_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.write(started_w, b"s")  # running: fork() and its handlers have returned
    os.read(r, 1)  # idles, never touching the handle, until the parent is done
    sys.exit(0)
os.close(r)
# The child lets go of its copy in a fork handler, which runs when the child is first
# scheduled: wait for that, or on a loaded machine this would race the child's start.
os.read(started_r, 1)
db.close()
db = NusterDB(path)  # the writer again, while the child still runs
db.add(2, [1.0, 1.0, 1.0, 1.0])
db.close()
os.write(w, b"x")
_, status = os.waitpid(pid, 0)
print(f"reopened {status}", flush=True)
"""


def test_an_idle_forked_child_does_not_keep_the_writer_lock(tmp_path: Path) -> None:
    """The child's inherited copy of the lock file is let go of at the fork (by a fork
    handler, as soon as the child runs): the parent closes its writer and opens it again
    while a child that never touched the handle still runs (a copy kept in the child
    held the lock: DatabaseLockedError)."""
    assert run(IDLE_CHILD_SCRIPT, str(tmp_path / "db")) == ["reopened 0"]


MP_SCRIPT = r"""
import multiprocessing as mp, sys
from nusterdb import ForkedProcessError, NusterDB

path = sys.argv[1]
ro = NusterDB.open(path, read_only=True)

def inherited(q):
    try:
        q.put(("ran", len(ro.search([1, 1, 1, 1], k=3))))
    except ForkedProcessError as e:
        q.put(("refused", 0))

def own(p, q):
    with NusterDB.open(p, read_only=True) as mine:
        q.put(("ran", len(mine.search([1, 1, 1, 1], k=3))))

if __name__ == "__main__":
    for method, target, args in (("fork", inherited, ()), ("spawn", own, (path,))):
        ctx = mp.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=target, args=(*args, q))
        p.start()
        got = q.get(timeout=60)
        p.join(60)
        print(f"{method} {got[0]} {got[1]} exit={p.exitcode}", flush=True)
"""


def test_multiprocessing_fork_refuses_an_inherited_follower_and_spawn_works(
    tmp_path: Path,
) -> None:
    """multiprocessing's "fork" start method: a worker using the follower handle it
    inherited gets ForkedProcessError; with "spawn" a worker opening its own follower
    answers. Both workers exit 0."""
    path = tmp_path / "db"
    with NusterDB(str(path), dim=4) as db:
        db.bulk_add(np.arange(5), np.ones((5, 4), np.float32))
    script = tmp_path / "mp_script.py"
    script.write_text(MP_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["fork refused 0 exit=0", "spawn ran 3 exit=0"]


# ================================================================== creation races

RACER = r"""
import sys, time
from nusterdb import NusterDB, DatabaseLockedError, NusterDBIOError

role = sys.argv[1]
held = None
print("ready", flush=True)
for line in sys.stdin:
    cmd, *rest = line.split()
    if cmd == "go":
        path, t0 = rest[0], float(rest[1])
        while time.time() < t0:
            pass
        if role == "writer":
            try:
                held = NusterDB(path, dim=4)
                held.add(1, [1.0, 2.0, 3.0, 4.0])
                held.flush()
                out = "won"
            except DatabaseLockedError:
                out = "locked"
            except BaseException as e:
                out = f"error {type(e).__name__}: {e}"
        else:
            seen = []
            for _ in range(3):
                try:
                    with NusterDB.open(path, read_only=True) as r:
                        seen.append(f"opened:{r.count()}")
                except NusterDBIOError as e:
                    seen.append("absent" if e.errno == 2 else f"error:{e}")
                except BaseException as e:
                    seen.append(f"error:{type(e).__name__}:{e}")
            out = " ".join(seen)
        print(out, flush=True)
    elif cmd == "release":
        if held is not None:
            held.close()
            held = None
        print("released", flush=True)
"""


def test_processes_racing_to_create_one_path(tmp_path: Path) -> None:
    """4 writer processes and 2 follower processes start on a new path at the same
    instant, 40 rounds: exactly one writer wins each round, the others get
    DatabaseLockedError; every follower open either opens (0 or 1 vectors) or finds
    no database (ENOENT); never a CorruptionError. No scratch directory is left."""
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch_root)}
    writers = [Child(RACER, "writer", stdin=True, env=env) for _ in range(4)]
    followers = [Child(RACER, "follower", stdin=True, env=env) for _ in range(2)]
    everyone = writers + followers
    try:
        for c in everyone:
            c.expect("ready")
        opened = absent = 0
        for rnd in range(40):
            path = tmp_path / f"race{rnd}" / "db"
            t0 = time.time() + 0.15
            for c in everyone:
                c.send(f"go {path} {t0}")
            results = [c.next_line(timeout=60) for c in writers]
            assert sorted(map(str, results)) == ["locked", "locked", "locked", "won"], (
                rnd,
                results,
            )
            for c in followers:
                line = c.next_line(timeout=60)
                assert line is not None, c.stderr()
                for item in line.split():
                    assert item in ("absent", "opened:0", "opened:1"), (rnd, line)
                    opened += item.startswith("opened")
                    absent += item == "absent"
            for c in writers:
                c.send("release")
                assert c.next_line(timeout=60) == "released"
        for c in everyone:
            rc, err = c.finish()
            assert rc == 0, err
    finally:
        for c in everyone:
            c.kill()
    assert not [p for p in scratch_root.iterdir() if p.name.startswith(SCRATCH_PREFIX)]
    print(
        "creation race: 40 rounds x 4 writers: 40 won, 120 locked; "
        f"followers: {opened} opened, {absent} absent, 0 errors"
    )


# ================================================================== scratch directories


def scratch_dirs(root: Path) -> List[Path]:
    return sorted(p for p in root.iterdir() if p.name.startswith(SCRATCH_PREFIX))


FOLLOWER = r"""
import sys
from nusterdb import NusterDB
print("ready", flush=True)
sys.stdin.readline()
r = NusterDB.open(sys.argv[1], read_only=True)
print(f"opened {r.count()}", flush=True)
sys.stdin.readline()
r.close()
print("closed", flush=True)
"""


def test_a_planted_symlink_is_never_used_as_a_scratch_directory(tmp_path: Path) -> None:
    """Symlinks planted at the names scratch directories used to get
    (``nusterdb-secondary-<pid>-<n>``) pointing at another directory with a LOG file:
    the follower makes its own private directory (mode 0700), the other directory is
    untouched, and after close only the planted links remain."""
    db_path = tmp_path / "db"
    with NusterDB(str(db_path), dim=4) as db:
        db.add(1, [1.0, 2.0, 3.0, 4.0])
    root = tmp_path / "tmp"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "LOG").write_text("keep")
    child = Child(FOLLOWER, str(db_path), stdin=True, env={**os.environ, "TMPDIR": str(root)})
    try:
        child.expect("ready")
        links = [root / f"{SCRATCH_PREFIX}{child.proc.pid}-{n}" for n in range(10)]
        for link in links:
            link.symlink_to(victim)
        child.send("open")
        assert child.expect("opened") == "opened 1"
        own = [p for p in scratch_dirs(root) if not p.is_symlink()]
        assert len(own) == 1
        mode = own[0].lstat().st_mode
        assert stat.S_ISDIR(mode)
        assert stat.S_IMODE(mode) == 0o700
        assert [p.name for p in victim.iterdir()] == ["LOG"]
        assert (victim / "LOG").read_text() == "keep"
        child.send("close")
        child.expect("closed")
        assert child.finish()[0] == 0
    finally:
        child.kill()
    assert scratch_dirs(root) == sorted(links)
    assert all(p.is_symlink() for p in links)
    assert [p.name for p in victim.iterdir()] == ["LOG"]
    assert (victim / "LOG").read_text() == "keep"


def test_scratch_directory_is_gone_after_close_and_a_killed_followers_is_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower's scratch directory exists while it is open and is gone after close
    (also after a refresh, which replaces it). A follower killed with SIGKILL leaves its
    directory; the next follower opened sweeps it."""
    db_path = tmp_path / "db"
    with NusterDB(str(db_path), dim=4) as db:
        db.add(1, [1.0, 2.0, 3.0, 4.0])
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))

    r = NusterDB.open(str(db_path), read_only=True)
    first = scratch_dirs(root)
    assert len(first) == 1
    r.refresh()
    second = scratch_dirs(root)
    assert len(second) == 1
    assert second != first
    r.close()
    assert scratch_dirs(root) == []

    child = Child(FOLLOWER, str(db_path), stdin=True, env={**os.environ, "TMPDIR": str(root)})
    child.expect("ready")
    child.send("open")
    child.expect("opened")
    stale = scratch_dirs(root)
    assert len(stale) == 1
    assert f"-{child.proc.pid}-" in stale[0].name
    child.kill()
    assert scratch_dirs(root) == stale  # nothing removed it

    with NusterDB.open(str(db_path), read_only=True):
        now = scratch_dirs(root)
        assert len(now) == 1
        assert now != stale
        assert f"-{os.getpid()}-" in now[0].name
    assert scratch_dirs(root) == []


# ================================================================== failed opens


def listing(p: Path) -> Dict[str, bytes]:
    return {q.name: (q.read_bytes() if q.is_file() else b"<dir>") for q in p.iterdir()}


def test_an_empty_path_is_refused_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NusterDB("")`` once left ``nusterdb.lock`` in the working directory, which then
    opened as a CorruptionError. It is now InvalidArgumentError, writer or read-only,
    and the working directory stays as it was."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    before = listing(tmp_path)
    attempts: List[Callable[[], NusterDB]] = [
        lambda: NusterDB("", dim=4),
        lambda: NusterDB(""),
        lambda: NusterDB.open(""),
        lambda: NusterDB.open("", read_only=True),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidArgumentError, match="path is empty"):
            attempt()
    assert listing(tmp_path) == before


def test_a_non_database_directory_is_refused_untouched(tmp_path: Path) -> None:
    """A directory of other files: CorruptionError ("not a NusterDB database"), writer
    with or without a config and read-only, and not one file added or changed."""
    d = tmp_path / "photos"
    d.mkdir()
    (d / "a.jpg").write_bytes(b"\xff\xd8 not a database")
    (d / "sub").mkdir()
    before = listing(d)
    attempts: List[Callable[[], NusterDB]] = [
        lambda: NusterDB(str(d), dim=4),
        lambda: NusterDB(str(d)),
        lambda: NusterDB.open(str(d), read_only=True),
    ]
    for attempt in attempts:
        with pytest.raises(CorruptionError, match="not a NusterDB database"):
            attempt()
    assert listing(d) == before


def test_an_interrupted_creation_is_created_over(tmp_path: Path) -> None:
    """What a creation killed before RocksDB wrote CURRENT leaves (our lock file,
    IDENTITY, LOCK, LOG, MANIFEST-000001) holds no record: a writer with a config
    creates the database there (it was a CorruptionError for good)."""
    d = tmp_path / "db"
    d.mkdir()
    for name in ("nusterdb.lock", "IDENTITY", "LOCK", "LOG", "MANIFEST-000001"):
        (d / name).write_bytes(b"")
    with NusterDB(str(d), DatabaseConfig(4)) as db:
        db.add(7, [1.0, 2.0, 3.0, 4.0])
    with NusterDB.open(str(d), read_only=True) as r:
        assert r.list_ids() == [7]


def test_forked_process_error_is_a_nusterdb_error() -> None:
    assert issubclass(ForkedProcessError, NusterDBError)
    assert not issubclass(ForkedProcessError, ValueError)
    assert ForkedProcessError.__module__ == "nusterdb.exceptions"
    assert ForkedProcessError.__doc__
