"""Memory (RELIABILITY.md T8): no leak across handles, none across calls.

Each test runs in a subprocess of its own, which reads its resident set size from
``/proc/self/status``:

* open(path) -> bulk_add(100) -> search -> close, over and over on one growing database:
  RSS growth from cycle 100 to the last < 32 MB. The plan's 1,000 cycles take minutes
  (each open loads everything stored: 100,000 vectors by the end), so CI runs
  ``NUSTERDB_MEM_CYCLES`` = 300 (flat) and ``NUSTERDB_MEM_HNSW_CYCLES`` = 200 (HNSW),
  the long tier 1,000 each.

  RSS is read after glibc's ``malloc_trim(0)``: each open's peak grows with the database
  (it loads every vector), and glibc keeps freed memory of its per-thread arenas, so the
  untrimmed RSS climbs with the database whether or not anything leaks (measured: +60 MB
  over 800 flat cycles untrimmed, +3 MB trimmed). Both are printed; the limit applies to
  the trimmed figure, the memory actually in use.
* 100,000 searches on one handle (plain, filtered, batch): growth after the first
  1,000 < 8 MB (``NUSTERDB_MEM_SEARCHES``).

Valgrind (definitely lost: 0) runs in the long tier: ``scripts/reliability_long.sh``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from proc_helpers import env_int

TESTS_DIR = str(Path(__file__).resolve().parent)
CYCLES = {
    "flat": env_int("NUSTERDB_MEM_CYCLES", 300),
    "hnsw": env_int("NUSTERDB_MEM_HNSW_CYCLES", 200),
}
SEARCHES = env_int("NUSTERDB_MEM_SEARCHES", 100_000)
WARMUP_CYCLES = 100
CYCLE_LIMIT_MB = 32.0
SEARCH_LIMIT_MB = 8.0

CYCLES_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[5])
import numpy as np
from nusterdb import DatabaseConfig, NusterDB
from proc_helpers import rss_mb, trimmed_rss_mb
path, kind, cycles, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
marks, raw = {}, {}
t0 = time.perf_counter()
for c in range(cycles):
    if c == 0:
        db = NusterDB(path, DatabaseConfig(32, index_type=kind))
    else:
        db = NusterDB.open(path)
    db.bulk_add(
        np.arange(c * 100, (c + 1) * 100),
        rng.standard_normal((100, 32)).astype(np.float32),
        [{"c": c, "r": r, "s": "x" * (r % 16)} for r in range(100)],
    )
    hits = db.search(rng.standard_normal(32).astype(np.float32), k=10, filter={"c": c})
    assert len(hits) == 10, hits
    db.close()
    if c + 1 in (1, 100) or (c + 1) % 100 == 0:
        raw[c + 1] = rss_mb()
        marks[c + 1] = trimmed_rss_mb()
print("done " + json.dumps({"marks": marks, "raw": raw, "seconds": time.perf_counter() - t0}),
      flush=True)
"""

SEARCH_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[5])
import numpy as np
from nusterdb import DatabaseConfig, NusterDB
from proc_helpers import trimmed_rss_mb
path, kind, searches, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
db = NusterDB(path, DatabaseConfig(32, index_type=kind))
db.bulk_add(np.arange(2000), rng.standard_normal((2000, 32)).astype(np.float32),
            [{"g": i % 7} for i in range(2000)])
queries = rng.standard_normal((1000, 32)).astype(np.float32)
def one(i):
    q = queries[i % 1000]
    if i % 4 == 1:
        return db.search(q, k=10, filter={"g": i % 7})
    if i % 64 == 2:
        return db.batch_search(queries[:16], k=10)
    return db.search(q, k=10)
for i in range(1000):
    one(i)
start = trimmed_rss_mb()
t0 = time.perf_counter()
for i in range(searches):
    one(i)
end = trimmed_rss_mb()
db.close()
print("done " + json.dumps({"start": start, "end": end, "seconds": time.perf_counter() - t0}),
      flush=True)
"""


def run_child(script: str, *args: str) -> Dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-c", script, *args, TESTS_DIR],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    done = [ln for ln in r.stdout.splitlines() if ln.startswith("done ")]
    assert done, r.stdout + r.stderr
    out: Dict[str, Any] = json.loads(done[-1][5:])
    return out


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_open_add_search_close_cycles_do_not_leak(tmp_path: Path, seed: int, kind: str) -> None:
    cycles = CYCLES[kind]
    out = run_child(CYCLES_CHILD, str(tmp_path / "db"), kind, str(cycles), str(seed))
    marks = {int(k): v for k, v in out["marks"].items()}
    raw = {int(k): v for k, v in out["raw"].items()}
    growth = marks[cycles] - marks[WARMUP_CYCLES]
    print(
        f"memory[{kind}]: {cycles} open/bulk_add(100)/search/close cycles in "
        f"{out['seconds']:.0f}s; RSS (trimmed) {marks[1]:.0f} MB after cycle 1, "
        f"{marks[WARMUP_CYCLES]:.0f} MB after {WARMUP_CYCLES}, {marks[cycles]:.0f} MB after "
        f"{cycles}: growth {growth:+.1f} MB (limit {CYCLE_LIMIT_MB:.0f}; untrimmed "
        f"{raw[cycles] - raw[WARMUP_CYCLES]:+.1f} MB; seed {seed})"
    )
    print(
        "  RSS by cycle, trimmed/untrimmed: "
        + ", ".join(f"{c}: {marks[c]:.0f}/{raw[c]:.0f}" for c in sorted(marks))
    )
    assert growth < CYCLE_LIMIT_MB


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_searches_on_one_handle_do_not_leak(tmp_path: Path, seed: int, kind: str) -> None:
    out = run_child(SEARCH_CHILD, str(tmp_path / "db"), kind, str(SEARCHES), str(seed))
    growth = out["end"] - out["start"]
    print(
        f"memory[{kind}]: {SEARCHES} searches (plain, filtered, batch) on one handle in "
        f"{out['seconds']:.1f}s; RSS {out['start']:.1f} -> {out['end']:.1f} MB: growth "
        f"{growth:+.2f} MB (limit {SEARCH_LIMIT_MB:.0f}; seed {seed})"
    )
    assert growth < SEARCH_LIMIT_MB
