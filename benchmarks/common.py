"""Shared helpers of the NusterDB benchmarks: timing, seeded data, tables, versions.

Timings use ``time.perf_counter`` and report the median of several repeats, since the
benchmark machines are small and shared. Data is float32 and seeded, so every engine in
one run sees the same numbers and a rerun sees them again.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: Environment variables that change how BLAS, OpenMP or rayon behave; printed by
#: :func:`environment_rows` so a reader knows what was in force.
PERF_ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "RAYON_NUM_THREADS",
)
#: The two variables that slow a current numpy on some processors (see the README of
#: the benchmarks); the numpy baseline runs with both removed.
OPENBLAS_TUNING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs of one operation."""

    samples: Tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def worst(self) -> float:
        return max(self.samples)

    def rate(self, items: float) -> float:
        """Items per second at the median time."""
        return items / self.median


def time_once(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (``time.perf_counter``)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_repeats(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Timing:
    """Calls ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    return Timing(tuple(time_once(fn) for _ in range(repeats)))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# ----------------------------------------------------------------------------- data


def gaussian(n: int, dim: int, seed: int) -> F32:
    """``n`` x ``dim`` standard normal float32 rows, C-contiguous."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim), dtype=np.float32)


def clustered(
    n_base: int,
    n_queries: int,
    dim: int,
    seed: int,
    n_clusters: Optional[int] = None,
    spread: float = 0.35,
) -> Tuple[F32, F32]:
    """Base rows and queries drawn from the same k-means-like Gaussian blobs.

    Centres are standard normal; each point is a uniformly chosen centre plus
    isotropic Gaussian noise of standard deviation ``spread``. ``n_clusters``
    defaults to about sqrt(n_base) (at least 1). Both arrays are float32 and
    C-contiguous; the same arguments always give the same arrays.
    """
    rng = np.random.default_rng(seed)
    k = n_clusters if n_clusters is not None else max(1, round(n_base**0.5))
    centres = rng.standard_normal((k, dim), dtype=np.float32)

    def draw(n: int) -> F32:
        out = np.empty((n, dim), dtype=np.float32)
        # In blocks, so the noise never needs a second full-size array.
        block = 65_536
        for start in range(0, n, block):
            stop = min(n, start + block)
            labels = rng.integers(0, k, size=stop - start)
            noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
            noise *= np.float32(spread)
            np.add(centres[labels], noise, out=out[start:stop])
        return out

    return draw(n_base), draw(n_queries)


def write_f32(path: Path, rows: F32) -> None:
    """Writes ``rows`` as raw little-endian float32, row-major (no header)."""
    np.ascontiguousarray(rows, dtype="<f4").tofile(path)


def recall_at_k(found: I64, truth: I64) -> float:
    """Mean over rows of |found ∩ truth| / k (both (n, k) id arrays)."""
    if found.shape != truth.shape:
        raise ValueError(f"shape {found.shape} != {truth.shape}")
    n, k = int(truth.shape[0]), int(truth.shape[1])
    hits = sum(len(set(found[i].tolist()) & set(truth[i].tolist())) for i in range(n))
    return hits / (n * k)


# ------------------------------------------------------------------------- printing


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    title: Optional[str] = None,
    right: Optional[Sequence[int]] = None,
) -> None:
    """Prints an aligned plain-text table (markdown-style pipes).

    Columns listed in ``right`` (by index) are right-aligned; by default every
    column but the first is. Cells are turned into strings with ``str``.
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row {row} has {len(row)} cells, expected {len(headers)}")
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    right_cols = set(range(1, len(headers)) if right is None else right)

    def fmt(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right_cols else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "| " + " | ".join(parts) + " |"

    sep = "|" + "|".join(
        ("-" * (w + 1) + ":") if i in right_cols else "-" * (w + 2) for i, w in enumerate(widths)
    )
    if title:
        print(title)
    print(fmt(headers))
    print(sep + "|")
    for row in cells:
        print(fmt(row))
    print()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages from /proc/loadavg (or "unknown")."""
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def section(title: str) -> None:
    """A heading, with the load average: other processes on the machine skew timings."""
    print()
    print(f"## {title}")
    print()
    print(f"load average (1/5/15 min) at start: {load_average()}")
    print()


def fmt_rate(x: float) -> str:
    """A rate with thousands separators and no decimals (or 3 significant digits < 100)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def dir_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (apparent size)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


# ------------------------------------------------------------------------- versions


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(dist: str, module: str) -> str:
    """The installed version of distribution ``dist`` (import name ``module``), or why
    it is not there."""
    try:
        importlib.import_module(module)
    except ImportError as e:
        return f"not installed ({e.__class__.__name__}: {e})"
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def blas_info() -> str:
    """numpy's BLAS as threadpoolctl sees it: library, kernel architecture, threads."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos: list[Mapping[str, Any]] = threadpoolctl.threadpool_info()
    parts = []
    for info in infos:
        if info.get("user_api") != "blas":
            continue
        filepath = str(info.get("filepath", ""))
        if "numpy" not in filepath:
            continue
        parts.append(
            f"{info.get('internal_api')} {info.get('version')} "
            f"kernel={info.get('architecture')} threads={info.get('num_threads')}"
        )
    return "; ".join(parts) if parts else "no BLAS of numpy's found by threadpoolctl"


def environment_rows() -> list[tuple[str, str]]:
    """(name, value) rows describing the machine and the libraries in this process."""
    rows: list[tuple[str, str]] = [
        ("cpu", cpu_model()),
        ("cores (os.cpu_count)", str(os.cpu_count())),
        ("load average (1/5/15 min)", load_average()),
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("faiss-cpu", package_version("faiss-cpu", "faiss")),
        ("hnswlib", package_version("hnswlib", "hnswlib")),
        ("usearch", package_version("usearch", "usearch")),
    ]
    try:
        import nusterdb

        rows.append(("nusterdb", nusterdb.__version__))
        rows.append(("nusterdb.simd_isa()", nusterdb.simd_isa()))
    except ImportError as e:
        rows.append(("nusterdb", f"not installed ({e})"))
    rows.append(("numpy BLAS (this process)", blas_info()))
    for var in PERF_ENV_VARS:
        rows.append((f"${var}", os.environ.get(var, "(unset)")))
    return rows


def print_environment() -> None:
    print_table(["what", "value"], environment_rows(), right=[])


def start_run(title: str, threads: int) -> dict[str, Any]:
    """Prints a sweep benchmark's opening lines (``title``, the command, the date, the
    machine and the environment table) and returns its JSON results' header, with an
    empty ``datasets`` for the caller to fill."""
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(title)
    print()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"date: {date}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores")
    print()
    print_environment()
    return {
        "command": sys.argv,
        "date": date,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "datasets": {},
    }


def end_run(started: float, out: Optional[Path]) -> None:
    """A sweep benchmark's closing lines: its time since ``started`` (a
    ``time.perf_counter()``), the load, and where the JSON went."""
    print(f"total benchmark time: {time.perf_counter() - started:.1f} s")
    print(f"load average (1/5/15 min) at the end: {load_average()}")
    if out is not None:
        print(f"JSON written to {out}")


def env_without(names: Sequence[str]) -> dict[str, str]:
    """A copy of ``os.environ`` with ``names`` removed."""
    return {k: v for k, v in os.environ.items() if k not in names}
