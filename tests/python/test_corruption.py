"""Corrupt files (RELIABILITY.md T3): every file of a 2,000-vector fixture with metadata,
flat and HNSW, damaged in turn — truncated to 0, to half, by one byte, replaced by random
bytes, random bytes flipped — and opened in a worker process with a timeout. Two sweeps
of the same size: int ids (``corrupt:``) and string ids with documents
(``corrupt[str ids]:``; every document, ``get_many`` and ``search(include=[...])`` are
checked too).

Pass: 0 signals, 0 ``PanicException``, 0 timeouts, 0 untyped exceptions, 0 silently
wrong answers: if the open succeeds, every read equals the fixture's value or raises a
typed ``NusterDBError``, searches equal brute force over what the database returns (flat;
HNSW: true distances, sorted, self-queries find themselves), and the only state a
damaged copy may open with, other than the fixture's, is a consistent prefix of it after
damage to the write-ahead log. A failed open leaves the files as they were.

Two workers (``corruption_worker.py``) take cases from a queue; a worker that dies or
hangs is replaced and the case it was on is charged with it. Controls run first: the
pristine fixtures must open exactly, and a copy with one vector (string ids: also one
document) changed through the API must be reported wrong (the checker can fail).

Sizes: ``NUSTERDB_CORRUPT_CASES`` per sweep (default 520; the long tier 20,000),
``NUSTERDB_CORRUPT_WORKERS`` (2), ``NUSTERDB_CORRUPT_TIMEOUT`` (seconds per case, 20;
a case takes well under a second).
Replay: ``NUSTERDB_TEST_SEED``; every case is also printed with its damage.
"""

from __future__ import annotations

import collections
import hashlib
import json
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
import pytest
from conftest import SEED_ENV, new_seed
from corruption_worker import ID_TYPES, KINDS, build_fixture, case_plan, fixture_files
from nusterdb import CorruptionError, NusterDB
from proc_helpers import Child, env_float, env_int

WORKER = str(Path(__file__).resolve().with_name("corruption_worker.py"))
CASES = env_int("NUSTERDB_CORRUPT_CASES", 520)
WORKERS = env_int("NUSTERDB_CORRUPT_WORKERS", 2)
CASE_TIMEOUT = env_float("NUSTERDB_CORRUPT_TIMEOUT", 20.0)
#: Pristine flat/hnsw, a vector changed flat/hnsw, (string ids) a document changed.
CONTROLS = {"int": [-1, -2, -3, -4], "str": [-1, -2, -3, -4, -5, -6]}


@dataclass
class Sweep:
    seed: int
    id_type: str
    files: List[Tuple[str, str]]
    results: Dict[int, Dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """How the printed figures name the sweep."""
        return "corrupt" if self.id_type == "int" else "corrupt[str ids]"

    def where(self, outcome: str) -> List[Dict[str, Any]]:
        return [r for c, r in sorted(self.results.items()) if c >= 0 and r["outcome"] == outcome]

    def wrong(self) -> List[Dict[str, Any]]:
        return [r for r in self.where("open") if r["nwrong"]]

    def modified(self) -> List[Dict[str, Any]]:
        return [r for c, r in sorted(self.results.items()) if c >= 0 and r.get("modified")]


class Worker:
    """One worker process; replaced when it dies or hangs."""

    def __init__(self, fixtures: Path, work: Path, seed: int, id_type: str) -> None:
        self.args = (str(fixtures), str(work), str(seed), id_type)
        self.stderr_texts: List[str] = []
        self.child = self._spawn()

    def _spawn(self) -> Child:
        child = Child(WORKER, *self.args, stdin=True, is_file=True)
        child.expect("ready", timeout=120)
        return child

    def run(self, case: int) -> Dict[str, Any]:
        try:
            self.child.send(str(case))
        except (BrokenPipeError, OSError):
            return self._died(case)
        deadline = time.monotonic() + CASE_TIMEOUT
        while True:
            line = self.child.next_line(timeout=max(0.0, deadline - time.monotonic()))
            if line is not None:
                if line.startswith("done "):
                    result: Dict[str, Any] = json.loads(line[5:])
                    return result
                continue
            if self.child.eof:
                return self._died(case)
            self.child.kill()
            self.stderr_texts.append(self.child.stderr())
            self.child = self._spawn()
            return {"case": case, "outcome": "timeout", "msg": f"no answer in {CASE_TIMEOUT}s"}

    def _died(self, case: int) -> Dict[str, Any]:
        rc = self.child.proc.wait(timeout=30)
        self.child.kill()
        err = self.child.stderr()
        self.stderr_texts.append(err)
        self.child = self._spawn()
        outcome = "signal" if rc < 0 else "died"
        return {"case": case, "outcome": outcome, "rc": rc, "msg": err[-2000:]}

    def close(self) -> None:
        rc, err = self.child.finish()
        self.stderr_texts.append(err)
        assert rc == 0, f"worker exited {rc}: {err[-2000:]}"


def panics_in_stderr(texts: List[str]) -> Dict[int, str]:
    """Cases whose section of a worker's stderr mentions a Rust panic."""
    out: Dict[int, str] = {}
    for text in texts:
        for section in re.split(r"^### case ", text, flags=re.M)[1:]:
            head, _, body = section.partition("\n")
            if "panicked" in body or "PanicException" in body:
                out[int(head)] = body[:1000]
    return out


@pytest.fixture(scope="module", params=ID_TYPES, ids=[f"{t}_ids" for t in ID_TYPES])
def sweep(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Sweep:
    id_type: str = request.param
    seed = new_seed()
    print(f"\ncorruption sweep ({id_type} ids) seed: {seed}  (replay with {SEED_ENV}={seed})")
    root = tmp_path_factory.mktemp(f"corrupt_{id_type}")
    fixtures = root / "fixtures"
    for kind in KINDS:
        build_fixture(fixtures / kind, kind, id_type)
    files = fixture_files(fixtures)
    print(f"fixture files ({len(files)}): {files}")
    result = Sweep(seed, id_type, files)
    todo: queue.Queue[int] = queue.Queue()
    for c in CONTROLS[id_type] + list(range(CASES)):
        todo.put(c)
    workers = [Worker(fixtures, root / f"work{w}", seed, id_type) for w in range(WORKERS)]
    lock = threading.Lock()

    def drive(w: Worker) -> None:
        while True:
            try:
                case = todo.get_nowait()
            except queue.Empty:
                return
            r = w.run(case)
            if case >= 0:
                # Timeouts and deaths come back bare: say what the case was.
                r = {**case_plan(files, seed, case), **r}
            with lock:
                result.results[case] = r

    t0 = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    result.seconds = time.perf_counter() - t0
    for case, text in panics_in_stderr([t for w in workers for t in w.stderr_texts]).items():
        r = result.results[case]
        if r["outcome"] not in ("panic", "signal", "died"):
            r["stderr_panic"] = text
    return result


def show(r: Dict[str, Any]) -> str:
    keys = ("case", "kind", "file", "mode", "damage", "outcome", "type", "prefix", "msg")
    head = " ".join(f"{k}={r[k]}" for k in keys if k in r and r[k] not in (None, ""))
    extra = r.get("wrong") or r.get("modified") or r.get("stderr_panic") or ""
    return f"{head} {extra}"[:1200]


def test_corrupt_files_never_crash_hang_or_panic(sweep: Sweep) -> None:
    res = sweep.results
    cases = [r for c, r in res.items() if c >= 0]
    signals = sweep.where("signal")
    died = sweep.where("died")
    panics = sweep.where("panic") + [r for r in cases if "stderr_panic" in r]
    timeouts = sweep.where("timeout")
    untyped = sweep.where("untyped")
    wrong = sweep.wrong()
    opened = sweep.where("open")
    errors = collections.Counter(r["type"] for r in sweep.where("error"))
    prefixes = collections.Counter(
        "full"
        if r["prefix"] == 24
        else f"prefix {r['prefix']}"
        if r["prefix"] >= 0
        else "read errors"
        for r in opened
        if not r["nwrong"]
    )
    per_kind = collections.Counter(r["kind"] for r in cases)
    print(
        f"{sweep.name}: {len(cases)} cases, {len(signals)} signals, {len(panics)} panics, "
        f"{len(timeouts)} timeouts, {len(wrong)} wrong ({len(untyped)} untyped "
        f"exceptions, {len(died)} other deaths; seed {sweep.seed}; {sweep.seconds:.0f}s with "
        f"{WORKERS} workers)"
    )
    rebuilt = collections.Counter(r["file"] for r in opened if r.get("warnings"))
    approx = sum(r.get("approx_misses", 0) for r in opened)
    print(
        f"  outcomes: {len(opened)} opened ({dict(prefixes)}), typed errors {dict(errors)}; "
        f"cases per fixture {dict(per_kind)} over {len(sweep.files)} files; HNSW graph "
        f"rebuilt (IndexRebuiltWarning) after damage to {dict(rebuilt)}; {approx} HNSW "
        f"self-queries missed by the default search, found exhaustively"
    )
    for r in signals + died + panics + timeouts + untyped:
        print("  FAIL " + show(r))
    # The controls: the checker passes the pristine fixtures and catches a changed value.
    for c in (-1, -2):
        assert res[c]["outcome"] == "open", show(res[c])
        assert res[c]["nwrong"] == 0, show(res[c])
        assert res[c]["prefix"] == 24, show(res[c])
    for c in CONTROLS[sweep.id_type][2:]:
        assert res[c]["outcome"] == "open", show(res[c])
        assert res[c]["nwrong"] > 0, f"the checker missed a changed value: {show(res[c])}"
    assert len(cases) == CASES
    assert not signals
    assert not died
    assert not panics
    assert not timeouts
    assert not untyped


def test_corrupt_files_never_give_silently_wrong_answers(sweep: Sweep) -> None:
    wrong = sweep.wrong()
    opened = len(sweep.where("open"))
    print(f"{sweep.name}: {len(wrong)} of {opened} successful opens answered wrong")
    for r in wrong:
        print("  WRONG " + show(r))
    assert not wrong


def test_corrupt_files_fail_with_corruption_error(sweep: Sweep) -> None:
    """The contract's class for damaged files is CorruptionError, not another
    NusterDBError (an I/O error would send the user looking at the disk, a "no database
    here" would invite them to create one over it)."""
    other = [r for r in sweep.where("error") if r["type"] != "CorruptionError"]
    print(f"{sweep.name}: {len(other)} failed opens raised another class than CorruptionError")
    for r in other[:20]:
        print("  OTHER CLASS " + show(r))
    assert not other


def test_failed_opens_of_corrupt_files_leave_them_untouched(sweep: Sweep) -> None:
    failed = [r for c, r in sweep.results.items() if c >= 0 and r["outcome"] != "open"]
    modified = sweep.modified()
    by_file: Set[str] = {r["file"] for r in modified}
    print(
        f"{sweep.name}: {len(modified)} of {len(failed)} failed opens modified files "
        f"({sorted(by_file)})"
    )
    for r in modified[:20]:
        print("  MODIFIED " + show(r))
    assert not modified


def test_every_file_of_both_fixtures_is_damaged_every_way(sweep: Sweep) -> None:
    seen: Dict[Tuple[str, str], Set[str]] = collections.defaultdict(set)
    for c, r in sweep.results.items():
        if c >= 0:
            seen[(r["kind"], r["file"])].add(r["how"])
    want = {"truncate0", "truncate_half", "truncate_minus1", "replace", "flip"}
    if 5 * len(sweep.files) <= CASES:
        for f in sweep.files:
            assert seen[f] == want, (f, seen[f])
    kinds: Optional[Set[str]] = {k for k, _ in seen}
    assert kinds == set(KINDS)
    logs = [f for f in sweep.files if f[1].endswith(".log")]
    ssts = [f for f in sweep.files if f[1].endswith(".sst")]
    assert len(logs) >= 2, "the fixtures keep no write-ahead log: prefix recovery goes untested"
    assert len(ssts) >= 2, sweep.files


# ------------------------------------------------ regression cases of bugs the sweep found

HANG_CHILD = """
import sys
import nusterdb
path, how = sys.argv[1], sys.argv[2]
try:
    if how == "open":
        nusterdb.NusterDB.open(path)
    elif how == "read_only":
        nusterdb.NusterDB.open(path, read_only=True)
    else:
        nusterdb.NusterDB(path, dim=4)
    print("opened", flush=True)
except nusterdb.NusterDBError as e:
    print("error", type(e).__name__, flush=True)
"""


#: A record header of a recycled log (type 5, "recyclable full", with its log number),
#: which NusterDB never writes: RocksDB's log readers re-read it forever after a plain
#: record.
RECYCLED_HEADER = bytes(4) + (0).to_bytes(2, "little") + bytes([5]) + (7).to_bytes(4, "little")


@pytest.mark.parametrize("how", ["open", "read_only", "with_config"])
@pytest.mark.parametrize("damage", ["garbage_log", "recycled_record_in_manifest"])
def test_a_log_that_rocksdb_would_loop_on_is_a_corruption_error(
    tmp_path: Path, how: str, damage: str
) -> None:
    """Regression cases of the corruption sweep. `garbage_log` (seed 3793081658871029653,
    case 81): a fresh database whose log is replaced by 124 random bytes; the first
    record header then claims a recyclable full record of 48,627 bytes. Damage to the
    MANIFEST hung opens the same way (seed 3994725415016695970, case 87). Both used to
    hang every open inside RocksDB's log readers."""
    path = tmp_path / "db"
    with NusterDB(str(path), dim=4) as db:
        db.add(1, [1.0, 2.0, 3.0, 4.0])
    if damage == "garbage_log":
        (log,) = path.glob("*.log")
        log.write_bytes(np.random.default_rng(1).bytes(124))
    else:
        manifest = path / (path / "CURRENT").read_text().strip()
        manifest.write_bytes(manifest.read_bytes() + RECYCLED_HEADER)
    try:
        r = subprocess.run(
            [sys.executable, "-c", HANG_CHILD, str(path), how],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{how}: no answer within 30 s (hung)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "error CorruptionError", r.stdout + r.stderr


def test_failed_open_of_a_damaged_sst_leaves_the_files_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db"
    rng = np.random.default_rng(0)
    with NusterDB(str(path), dim=16) as db:
        db.bulk_add(
            np.arange(2000),
            rng.standard_normal((2000, 16)).astype(np.float32),
            [{"i": i} for i in range(2000)],
        )
    NusterDB.open(str(path)).close()  # the 2,000 vectors now sit in an SST file
    with NusterDB.open(str(path)) as db:
        db.add(5000, [1.0] * 16)  # one write left in the write-ahead log
    (sst,) = path.glob("*.sst")
    data = bytearray(sst.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a data block of vectors, not the config's
    sst.write_bytes(bytes(data))
    # Without a seal the open reads every record (with one, it reads the seal's files
    # and only the records written since, and the damage is found by the read that
    # meets it, or by verify).
    for f in path.glob("segment-*"):
        f.unlink()

    def hashes() -> Dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.iterdir())
            if not p.name.startswith("LOG")
        }

    before = hashes()
    with pytest.raises(CorruptionError, match="checksum mismatch"):
        NusterDB.open(str(path))
    after = hashes()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"a failed open changed {changed}"


@pytest.mark.parametrize("read_only", [False, True], ids=["rw", "ro"])
def test_current_naming_a_missing_manifest_is_a_corruption_error(
    tmp_path: Path, read_only: bool
) -> None:
    """Regression case of the corruption sweep: one byte of CURRENT flipped, a digit of
    the MANIFEST number changed."""
    path = tmp_path / "db"
    with NusterDB(str(path), dim=4) as db:
        db.add(1, [1.0, 2.0, 3.0, 4.0])
    current = (path / "CURRENT").read_text()
    number = int(current.strip().split("-")[1])
    (path / "CURRENT").write_text(f"MANIFEST-{number + 1:06d}\n")
    with pytest.raises(CorruptionError, match="MANIFEST"):
        NusterDB.open(str(path), read_only=read_only)
