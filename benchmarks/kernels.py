#!/usr/bin/env python3
"""Compare NusterDB's distance kernels with numpy on the same data.

For d in 128/384/1536 this writes N seeded float32 base rows and one query as raw
little-endian files to a temporary directory, times numpy's fastest one-query-to-N
equivalents on them, then runs the criterion benchmark
(``cargo bench -p nusterdb-core --bench kernels -- --noplot``) on the same files via
NUSTERDB_BENCH_DATA_DIR, and prints one table of throughputs in GB/s = N*d*4 bytes of
base data / time (1 GB = 1e9 bytes; criterion's GiB/s are converted).

numpy candidates (the faster one is reported; all norms are computed inside the timed
region, since the Rust kernels get no precomputed norms either):

* l2_squared: ``((base - q) ** 2).sum(axis=1)`` and
  ``norms - 2 * base @ q + |q|^2`` with ``norms = einsum("ij,ij->i", base, base)``;
* dot: ``base @ q``;
* cosine: ``base @ q / (sqrt(norms) * |q|)``.

The Rust kernels run on one thread, so by default numpy's BLAS is pinned to one thread
too (``--numpy-threads 0`` keeps the BLAS default: on an idle machine that makes
``base @ q`` up to ~2x faster on 2 cores, but on a busy one OpenBLAS's spinning threads
collapse to a fraction of that). The pin is set before numpy is first imported.

Usage: python3 benchmarks/kernels.py [--skip-cargo] [--numpy-threads N] [--data-dir DIR]
Requires numpy; the cargo part also needs the Rust toolchain. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    F32 = NDArray[np.float32]

REPO = Path(__file__).resolve().parent.parent
KERNELS = ("l2_squared", "dot", "cosine_parts")
DIMS = (128, 384, 1536)  # the Rust bench's, too
DEFAULT_TARGET_DIR = Path.home() / ".cache" / "nusterdb" / "target"
THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Criterion prints "<group>/<isa>/<d>" either followed by "time:" on the same line, or
# alone on a line when the name is long; the "thrpt:" line follows the "time:" line.
NAME_RE = re.compile(r"^(?P<kernel>[^\s/:]+)/(?P<isa>[^\s/:]+)/(?P<d>\d+)(?:\s+time:.*)?$")
THRPT_RE = re.compile(
    r"^\s*thrpt:\s*\[\s*[\d.]+\s+\S+\s+(?P<value>[\d.]+)\s+(?P<unit>[KMGT]?i?B/s)\s+[\d.]+\s+\S+\s*\]"
)
UNIT_BYTES = {
    "B/s": 1.0,
    "KiB/s": 2.0**10,
    "MiB/s": 2.0**20,
    "GiB/s": 2.0**30,
    "TiB/s": 2.0**40,
    "KB/s": 1e3,
    "MB/s": 1e6,
    "GB/s": 1e9,
    "TB/s": 1e12,
}


@dataclass(frozen=True)
class NumpyResult:
    """numpy's best time for one kernel and dimension."""

    kernel: str
    d: int
    variant: str
    seconds: float
    gbps: float


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--skip-cargo", action="store_true", help="only time numpy")
    parser.add_argument("--rows", type=int, default=20_000, help="base rows N (default 20000)")
    parser.add_argument("--repeats", type=int, default=9, help="numpy timings per case (median)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--numpy-threads",
        type=int,
        default=1,
        help="numpy BLAS threads (default 1, like the kernels; 0 = the BLAS default)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="write the data files here and keep them (default: a temporary directory)",
    )
    return parser.parse_args(argv)


def write_data(directory: Path, dims: Sequence[int], rows: int, seed: int) -> None:
    """Writes base_{d}.f32 (rows x d) and query_{d}.f32 (d), raw little-endian f32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for d in dims:
        base = rng.standard_normal((rows, d), dtype=np.float32)
        query = rng.standard_normal(d, dtype=np.float32)
        base.astype("<f4").tofile(directory / f"base_{d}.f32")
        query.astype("<f4").tofile(directory / f"query_{d}.f32")


def read_data(directory: Path, d: int) -> tuple[F32, F32]:
    import numpy as np

    query = np.fromfile(directory / f"query_{d}.f32", dtype="<f4").astype(np.float32)
    base = np.fromfile(directory / f"base_{d}.f32", dtype="<f4").astype(np.float32)
    return base.reshape(-1, d), query


def candidates(base: F32, q: F32) -> dict[str, dict[str, Callable[[], F32]]]:
    """numpy one-query-to-N equivalents of each kernel, by variant name."""
    import numpy as np

    def l2_direct() -> F32:
        result: F32 = ((base - q) ** 2).sum(axis=1)
        return result

    def l2_norms_trick() -> F32:
        norms = np.einsum("ij,ij->i", base, base)
        result: F32 = norms - 2.0 * (base @ q) + q @ q
        return result

    def dot() -> F32:
        result: F32 = base @ q
        return result

    def cosine() -> F32:
        norms = np.sqrt(np.einsum("ij,ij->i", base, base))
        result: F32 = (base @ q) / (norms * np.linalg.norm(q))
        return result

    return {
        "l2_squared": {"((base-q)**2).sum(1)": l2_direct, "norms-2*base@q+|q|^2": l2_norms_trick},
        "dot": {"base@q": dot},
        "cosine_parts": {"base@q/(norms*|q|)": cosine},
    }


def median_seconds(fn: Callable[[], F32], repeats: int) -> float:
    fn()  # warm-up: page faults, BLAS thread start-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_numpy(directory: Path, dims: Sequence[int], repeats: int) -> list[NumpyResult]:
    results = []
    for d in dims:
        base, q = read_data(directory, d)
        nbytes = base.size * 4
        for kernel, variants in candidates(base, q).items():
            timed = [(median_seconds(fn, repeats), name) for name, fn in variants.items()]
            for seconds, name in timed:
                print(
                    f"numpy {kernel:12} d={d:<5} {name:24} {nbytes / seconds / 1e9:7.2f} GB/s",
                    file=sys.stderr,
                )
            seconds, name = min(timed)
            results.append(NumpyResult(kernel, d, name, seconds, nbytes / seconds / 1e9))
    return results


def run_cargo_bench(directory: Path) -> dict[tuple[str, int, str], float]:
    """Runs the criterion bench on the files in `directory`; GB/s by (kernel, d, isa)."""
    env = dict(os.environ)
    env["NUSTERDB_BENCH_DATA_DIR"] = str(directory)
    env.setdefault("CARGO_TARGET_DIR", str(DEFAULT_TARGET_DIR))
    cmd = ["cargo", "bench", "-p", "nusterdb-core", "--bench", "kernels", "--", "--noplot"]
    print(f"running: {' '.join(cmd)} (CARGO_TARGET_DIR={env['CARGO_TARGET_DIR']})", file=sys.stderr)
    # stderr (compilation progress) goes straight to the terminal; stdout is parsed.
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    results: dict[tuple[str, int, str], float] = {}
    current: tuple[str, int, str] | None = None
    for raw_line in proc.stdout:
        line = raw_line.rstrip("\n")
        name = NAME_RE.match(line)
        if name:
            current = (name["kernel"], int(name["d"]), name["isa"])
            continue
        thrpt = THRPT_RE.match(line)
        if thrpt and current is not None:
            gbps = float(thrpt["value"]) * UNIT_BYTES[thrpt["unit"]] / 1e9
            results[current] = gbps
            print(
                f"rust  {current[0]:12} d={current[1]:<5} {current[2]:24} {gbps:7.2f} GB/s",
                file=sys.stderr,
            )
            current = None
    if proc.wait() != 0:
        sys.exit(f"cargo bench failed with exit code {proc.returncode}")
    if not results:
        sys.exit("no criterion throughput lines found in the cargo bench output")
    return results


def format_table(rows: list[list[str]]) -> str:
    header = ["kernel", "d", "isa", "NusterDB GB/s", "numpy GB/s", "ratio"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {1, 3, 4, 5}

    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "| " + " | ".join(cells) + " |"

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([fmt(header), sep, *(fmt(r) for r in rows)])


def build_rows(
    numpy_results: list[NumpyResult], rust: dict[tuple[str, int, str], float] | None
) -> list[list[str]]:
    rows = []
    for np_result in numpy_results:
        np_cell = f"{np_result.gbps:.2f}"
        # In criterion's order, which is available_isas()'s: scalar first.
        isas = [isa for (k, d, isa) in rust or {} if k == np_result.kernel and d == np_result.d]
        if not isas:
            rows.append([np_result.kernel, str(np_result.d), "-", "-", np_cell, "-"])
        for isa in isas:
            assert rust is not None
            ours = rust[(np_result.kernel, np_result.d, isa)]
            rows.append(
                [
                    np_result.kernel,
                    str(np_result.d),
                    isa,
                    f"{ours:.2f}",
                    np_cell,
                    f"{ours / np_result.gbps:.2f}",
                ]
            )
    return rows


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.numpy_threads > 0:
        # Must happen before numpy (and its BLAS) is first imported, in write_data.
        for var in THREAD_ENV_VARS:
            os.environ[var] = str(args.numpy_threads)
    with tempfile.TemporaryDirectory(prefix="nusterdb-kernels-") as tmp:
        directory = args.data_dir if args.data_dir is not None else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        write_data(directory, DIMS, args.rows, args.seed)
        numpy_results = time_numpy(directory, DIMS, args.repeats)
        rust = None if args.skip_cargo else run_cargo_bench(directory)

    import numpy as np

    threads = args.numpy_threads or "default"
    print(
        f"\nN = {args.rows} base rows, one query; numpy {np.__version__} "
        f"(BLAS threads: {threads}); NusterDB kernels single-threaded"
    )
    print("ratio = NusterDB / numpy (>1: NusterDB faster); numpy's faster variant per kernel:")
    for r in numpy_results:
        print(f"  {r.kernel} d={r.d}: {r.variant}")
    print()
    print(format_table(build_rows(numpy_results, rust)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
