"""``restore_snapshot(name)`` without a target: the open database rolled back in place
(RELIABILITY.md "Restore in place").

Checked against checksums of every record taken when each state was live
(``state_checksum``: ids, vectors, metadata with its bookkeeping, documents): the handle
answers from the restored state at once (flat and HNSW, int and str ids), writes after it
work and survive a reopen, every snapshot is kept, a follower's ``refresh()`` loads the
restored state, refused calls change nothing, ``keep_snapshots`` gives a restored copy
the snapshot list, and a child SIGKILLed at random moments of a loop of in-place restores
leaves a database that opens as the last acknowledged state or the one in flight.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import pytest
from db_helpers import Checksum, state_checksum
from nusterdb import (
    ClosedError,
    CorruptionError,
    DatabaseConfig,
    InvalidArgumentError,
    NusterDB,
    ReadOnlyError,
)
from nusterdb.cli import main as cli_main
from proc_helpers import Child, env_int

DIM = 8
KILL_CYCLES = env_int("NUSTERDB_RESTORE_IN_PLACE_KILL_CYCLES", 8)


def idents(id_type: str, keys: List[int]) -> Union[List[int], List[str]]:
    if id_type == "int":
        return list(keys)
    return [f"doc-{i:05d}/ü" for i in keys]


def write(db: NusterDB, id_type: str, keys: List[int], rng: np.random.Generator) -> None:
    """Upserts ``keys`` with fresh rows, metadata (``k`` on even keys, for filters) and a
    document on two keys in three."""
    vectors = rng.standard_normal((len(keys), DIM)).astype(np.float32)
    metadata: List[Optional[Dict[str, Union[str, int, float, bool]]]] = []
    for k in keys:
        m: Dict[str, Union[str, int, float, bool]] = {"n": int(rng.integers(1 << 40))}
        if k % 2 == 0:
            m["k"] = k
        metadata.append(m)
    documents = [f"text {k} {rng.integers(1 << 30)}" if k % 3 else None for k in keys]
    db.bulk_upsert(idents(id_type, keys), vectors, metadata, documents)


def build(
    path: Path, index: str, id_type: str, n: int = 200
) -> Tuple[NusterDB, Dict[str, Checksum]]:
    """A database with snapshots "a" and "b" and a live state "c" after them; returns the
    handle and each state's checksum."""
    rng = np.random.default_rng(7)
    cfg = DatabaseConfig(dim=DIM, index_type=index, id_type=id_type)
    db = NusterDB(str(path), config=cfg)
    sums: Dict[str, Checksum] = {}
    write(db, id_type, list(range(n)), rng)
    sums["a"] = state_checksum(db)
    db.snapshot_named("a")
    db.delete(idents(id_type, list(range(n // 4))))
    write(db, id_type, list(range(n // 2, n // 2 + n // 8)) + list(range(n, n + n // 4)), rng)
    sums["b"] = state_checksum(db)
    db.snapshot_named("b")
    db.delete(idents(id_type, list(range(n // 4, n // 2))))
    write(db, id_type, list(range(2 * n, 2 * n + n // 3)), rng)
    sums["c"] = state_checksum(db)
    return db, sums


def names(db: NusterDB) -> List[str]:
    return [s["name"] for s in db.list_snapshots()]


def leftovers(path: Path) -> List[str]:
    return [
        p.name
        for p in path.iterdir()
        if p.name.startswith(("nusterdb.restore", ".in-place-restore-"))
    ]


def check_answers(db: NusterDB) -> None:
    """Every record's vector finds itself; the payload index answers a filter as the
    records' metadata says; documents agree with get_many."""
    ids = db.list_ids()
    got = db.get_many(ids, include=["vector", "metadata", "document"])
    for v in got["vectors"][:25]:
        hits = db.search(np.asarray(v, dtype=np.float32), k=1, ef_search=200)
        assert hits[0][1] == pytest.approx(0.0, abs=1e-4)
        assert np.array_equal(np.asarray(db.get(hits[0][0])), np.asarray(v))
    with_k = sum(1 for m in got["metadatas"] if "k" in m.to_dict())
    assert db.count(filter={"k": {"$exists": True}}) == with_k
    for i, doc in zip(ids, got["documents"]):
        assert db.get_document(i) == doc


@pytest.mark.parametrize("index", ["flat", "hnsw"])
@pytest.mark.parametrize("id_type", ["int", "str"])
def test_the_same_handle_answers_from_the_restored_state(
    tmp_path: Path, index: str, id_type: str
) -> None:
    path = tmp_path / "db"
    db, sums = build(path, index, id_type)
    db.restore_snapshot("a")
    assert state_checksum(db) == sums["a"]
    assert len(db) == sums["a"][0]
    check_answers(db)
    if index == "hnsw":
        assert db.graph_load()["state"] == "loaded"
    assert names(db) == ["a", "b"]
    # The newer snapshot is still there and restores in turn.
    db.restore_snapshot("b", keep_snapshots=True)
    assert state_checksum(db) == sums["b"]
    check_answers(db)
    # Writes after the restore, kept across a reopen.
    write(db, id_type, [7, 9000, 9001], np.random.default_rng(3))
    after = state_checksum(db)
    db.close()
    assert leftovers(path) == []
    with NusterDB.open(str(path)) as again:
        assert state_checksum(again) == after
        assert names(again) == ["a", "b"]
        check_answers(again)


def test_a_follower_refresh_loads_the_restored_state(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db, sums = build(path, "hnsw", "str")
    follower = NusterDB.open(str(path), read_only=True)
    assert state_checksum(follower) == sums["c"]
    db.restore_snapshot("a")
    # Until it refreshes, the follower answers from what it loaded.
    assert state_checksum(follower) == sums["c"]
    follower.refresh()
    assert state_checksum(follower) == sums["a"]
    check_answers(follower)
    with NusterDB.open(str(path), read_only=True) as late:
        assert state_checksum(late) == sums["a"]
    follower.close()
    db.close()


def test_refused_restores_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db, sums = build(path, "flat", "int", n=60)

    def unchanged() -> None:
        assert state_checksum(db) == sums["c"]
        assert names(db) == ["a", "b"]
        assert leftovers(path) == []

    with pytest.raises(InvalidArgumentError, match="no snapshot named"):
        db.restore_snapshot("missing")
    unchanged()
    with pytest.raises(InvalidArgumentError, match="keep_snapshots=False needs a target_path"):
        db.restore_snapshot("a", keep_snapshots=False)
    unchanged()
    manifest = path / "snapshots" / "a" / "SNAPSHOT"
    good = manifest.read_bytes()
    manifest.write_bytes(good[:10] + bytes([good[10] ^ 0xFF]) + good[11:])
    with pytest.raises(CorruptionError, match="checksum"):
        db.restore_snapshot("a")
    manifest.write_bytes(good)
    unchanged()
    with NusterDB.open(str(path), read_only=True) as follower, pytest.raises(ReadOnlyError):
        follower.restore_snapshot("a")
    unchanged()
    with NusterDB(None, dim=DIM) as mem:
        mem.add(1, [0.5] * DIM)
        with pytest.raises(InvalidArgumentError, match="in-memory"):
            mem.restore_snapshot("a")
        assert len(mem) == 1
    db.close()
    with pytest.raises(ClosedError):
        db.restore_snapshot("a")
    db = NusterDB.open(str(path))
    unchanged()
    db.close()


def test_keep_snapshots_gives_a_restored_copy_the_list(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db, sums = build(path, "hnsw", "int", n=80)
    db.restore_snapshot("a", str(tmp_path / "plain"))
    db.restore_snapshot("b", str(tmp_path / "kept"), keep_snapshots=True)
    db.close()
    with NusterDB.open(str(tmp_path / "plain")) as plain:
        assert names(plain) == []
        assert state_checksum(plain) == sums["a"]
    with NusterDB.open(str(tmp_path / "kept")) as kept:
        assert names(kept) == ["a", "b"]
        assert state_checksum(kept) == sums["b"]
        kept.restore_snapshot("a")
        assert state_checksum(kept) == sums["a"]


def test_cli_restores_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "db"
    db, sums = build(path, "flat", "int", n=40)
    db.close()
    assert cli_main(["snapshot", "restore", str(path), "a", "--in-place"]) == 0
    assert "rolled" in capsys.readouterr().out
    with NusterDB.open(str(path)) as again:
        assert state_checksum(again) == sums["a"]
        assert names(again) == ["a", "b"]
    # Neither a target nor --in-place, or both: refused, nothing done.
    assert cli_main(["snapshot", "restore", str(path), "b"]) == 1
    assert cli_main(["snapshot", "restore", str(path), "b", str(tmp_path / "t"), "--in-place"]) == 1
    assert not (tmp_path / "t").exists()
    capsys.readouterr()
    with NusterDB.open(str(path)) as again:
        assert state_checksum(again) == sums["a"]


RESTORER = """
import sys
from nusterdb import NusterDB
db = NusterDB.open(sys.argv[1])
print("ready", flush=True)
while True:
    for name in ("a", "b"):
        print("pending", name, flush=True)
        db.restore_snapshot(name)
        print("ack", name, flush=True)
"""


def test_kill_9_during_in_place_restores(tmp_path: Path) -> None:
    """A child rolls the database back to "a", then "b", then "a"... and is SIGKILLed at
    a random moment. The database then opens (as a writer) holding exactly the last
    acknowledged state or the one in flight (before any acknowledgement: the state it
    started from, or the first in flight), both snapshots listed, no marker or staging
    left; the next cycle starts from there."""
    rng = np.random.default_rng(21)
    path = tmp_path / "db"
    db, sums = build(path, "hnsw", "int", n=3000)
    db.close()
    current = "c"
    outcomes: Dict[str, int] = {"last acknowledged": 0, "in flight": 0}
    # Kills that left a committed restore (the marker) for the open to complete, and
    # kills that left only a staging directory (before the commit).
    completed_at_open = staged_only = 0
    for cycle in range(KILL_CYCLES):
        child = Child(RESTORER, str(path))
        child.expect("ready")
        time.sleep(float(rng.uniform(0.0, 0.6)))
        lines = child.kill()
        acked = [ln.split()[1] for ln in lines if ln.startswith("ack ")]
        pending = [ln.split()[1] for ln in lines if ln.startswith("pending ")]
        last = acked[-1] if acked else current
        in_flight = pending[-1] if len(pending) > len(acked) else None
        left = leftovers(path)
        completed_at_open += "nusterdb.restore" in left
        staged_only += bool(left) and "nusterdb.restore" not in left
        with NusterDB.open(str(path)) as again:
            now = state_checksum(again)
            assert names(again) == ["a", "b"], f"cycle {cycle}"
        assert leftovers(path) == [], f"cycle {cycle}"
        if now == sums[last]:
            outcomes["last acknowledged"] += 1
            current = last
        else:
            assert in_flight is not None, f"cycle {cycle}: not the last acknowledged {last!r}"
            assert now == sums[in_flight], (
                f"cycle {cycle}: neither the last acknowledged state {last!r} nor the one in "
                f"flight {in_flight!r}"
            )
            outcomes["in flight"] += 1
            current = in_flight
    print(
        f"restore in place kill -9: {KILL_CYCLES} cycles, {outcomes}, "
        f"{completed_at_open} completed by the next open, {staged_only} left only staging"
    )
