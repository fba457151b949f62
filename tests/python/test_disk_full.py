"""T2: a full disk. A database on a small tmpfs is filled until writes fail: every
failure is a typed I/O error, nothing acknowledged is lost, no batch is half there, and
after the disk grows the database opens and takes writes again.

Mounting needs root (or a user namespace); where the mount is refused the test is
skipped with the reason printed.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import nusterdb
import pytest
from nusterdb import DatabaseConfig, NusterDB

DIM = 64
BATCH = 200


def _mount(point: Path, size_mb: int, remount: bool = False) -> subprocess.CompletedProcess[str]:
    opts = f"size={size_mb}m" + (",remount" if remount else "")
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )


def check_io_error(e: BaseException, first: bool) -> str:
    """A full disk must surface as NusterDB's I/O error: the first one is ENOSPC; later
    ones may be the engine refusing writes after that error (EIO)."""
    assert isinstance(e, nusterdb.NusterDBIOError), repr(e)
    if first:
        assert e.errno == errno.ENOSPC, repr(e)
    return f"{type(e).__name__}: {e}"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "disk"
    point.mkdir()
    r = _mount(point, 24)
    if r.returncode != 0:
        print(f"disk-full test skipped: mount refused: {r.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_disk_full_is_an_error_and_loses_nothing(
    small_disk: Path, seed: int, index_type: str
) -> None:
    rng = np.random.default_rng(seed)
    path = str(small_disk / "db")
    acked: Dict[int, np.ndarray] = {}
    failures: List[str] = []
    db = NusterDB(path, DatabaseConfig(DIM, index_type=index_type))
    batch = 0
    # Fill until writes fail (24 MB holds a few tens of thousands of these vectors).
    while len(failures) < 3 and batch < 2000:
        ids = np.arange(batch * BATCH, (batch + 1) * BATCH, dtype=np.int64)
        vecs = rng.normal(size=(BATCH, DIM)).astype(np.float32)
        try:
            db.bulk_add(ids, vecs, [{"batch": batch, "pad": "x" * 200}] * BATCH)
        except nusterdb.NusterDBError as e:
            failures.append(check_io_error(e, not failures))
        else:
            for i, v in zip(ids.tolist(), vecs):
                acked[i] = v
        try:
            db.flush()  # the WAL sync and, when one is due, a seal
        except nusterdb.NusterDBError as e:
            failures.append(check_io_error(e, not failures))
        batch += 1
    print(f"disk full after {len(acked)} acknowledged vectors; first error: {failures[:1]}")
    assert failures, "the disk never filled up"
    with contextlib.suppress(nusterdb.NusterDBError):
        db.close()
    # More room: the database opens with every acknowledged write, and no batch is
    # partly there.
    r = _mount(small_disk, 256, remount=True)
    assert r.returncode == 0, r.stderr
    with NusterDB.open(path) as db:
        stored = set(db.list_ids())
        assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged vectors lost"
        by_batch: Dict[int, int] = {}
        for i in stored:
            by_batch[i // BATCH] = by_batch.get(i // BATCH, 0) + 1
        partial = {b: n for b, n in by_batch.items() if n != BATCH}
        assert not partial, f"partial batches: {partial}"
        for i in list(acked)[:: max(1, len(acked) // 100)]:
            got = db.get(i)
            assert got is not None
            assert np.array_equal(np.asarray(got), acked[i])
        # And it takes writes again.
        nxt = (max(stored) // BATCH + 1) * BATCH
        db.bulk_add(np.arange(nxt, nxt + 10), rng.normal(size=(10, DIM)).astype(np.float32))
        db.flush()
        assert len(db) == len(stored) + 10
    print(f"disk full ({index_type}): {len(acked)} acknowledged, 0 lost, 0 partial")
