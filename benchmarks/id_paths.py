#!/usr/bin/env python3
"""What string ids and documents cost, and whether the int-id fast paths kept their speed.

Every measurement runs on N x dim clustered float32 rows (``common.clustered``, default
100,000 x 128) in a persistent database in a temporary directory, flat and HNSW
(M = 16, ef_construction = 200, ef_search 64 for the searches, as ``benchmarks/ann.py``):

* ``bulk_add`` of all rows in batches (default 10,000; one call each): ids a numpy int64
  array (``int``), uuid4 strings (``str``), and each of those with a ~200-byte document
  per row (``int+doc``, ``str+doc``; the HNSW run leaves ``int+doc`` out by default:
  the graph build dwarfs the document's cost there);
* ``search``: single-query latency, k = 10, one call per query, median and p99;
* ``batch_search``: 1,000 queries in one call, k = 10, QPS (int64 ids out for an int
  database, a numpy object array for a str one);
* ``get`` x 1,000: a Python loop of single ``get`` calls on random stored ids;
  ``get_many`` of the same 1,000 ids in one call (all of vector, metadata, document);
* ``list_ids`` of every id;
* ``open``: ``close()`` then ``NusterDB.open(path)``: the first open after the writes
  (RocksDB replays its write-ahead log) and the median of 3 further close/open cycles;
* ``bulk_remove`` of 10,000 random stored ids (last: it changes the database).

"Keeping their speed" also means no slower than the build before string ids: with
``--python-old`` (an interpreter whose ``nusterdb`` is that build) every repeat runs the
``int`` variant under both interpreters in back-to-back fresh subprocesses on the same
data (which goes first alternates), so old and new share the machine's load of the
moment; the other variants of the new build follow in a third process. The report gives
the medians over repeats with their spread (min-max of the per-repeat figures), the
ratios str / int of the new build, and new / old for the int figures (the median of the
per-repeat ratios, paired by repeat, with their range). Ratios are of times: > 1 is
slower. Rayon's pool has ``--threads`` threads (default 1: on a shared 2-core machine one
thread gives steadier figures; the database's own code paths are what is compared).

Every figure is taken twice, by the wall clock and in CPU time of the process
(``time.process_time``: all its threads, rayon's and RocksDB's included), which leaves out
the time spent waiting for a core; the report has a table of each and ratios of both.
The short figures (``get`` loop, ``get_many``, ``list_ids``) are medians of 15 calls in
the process, ``batch_search`` of 3, the searches' of one call per query (300 on flat,
1,000 on HNSW); ``bulk_add``, the first open and ``bulk_remove`` are single calls.

Usage (after building and installing the wheel of each build, see BENCHMARKS.md):
    .venv/bin/python benchmarks/id_paths.py --python-old /tmp/venv-old/bin/python
    .venv/bin/python benchmarks/id_paths.py --quick          # smoke run, 10,000 rows
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    clustered,
    cpu_model,
    load_average,
    print_environment,
    print_table,
)

RESULT_PREFIX = "RESULT "
K = 10
EF_SEARCH = 64
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
DOC_BYTES = 200
REOPEN_CYCLES = 3
#: Repeats of the short figures (get, get_many, list_ids) inside one process.
SMALL_REPEATS = 15
WORDS = (
    "vector",
    "database",
    "index",
    "query",
    "record",
    "shard",
    "graph",
    "layer",
    "neighbour",
    "distance",
    "metric",
    "cosine",
    "euclidean",
    "storage",
    "snapshot",
    "recovery",
    "filter",
    "payload",
    "metadata",
    "document",
    "text",
    "embedding",
    "cluster",
    "centroid",
    "search",
    "nearest",
    "approximate",
    "exact",
    "batch",
    "latency",
    "memory",
    "disk",
    "compaction",
    "journal",
    "replay",
    "durable",
    "atomic",
    "write",
    "read",
    "range",
    "token",
    "sentence",
)
ALL_VARIANTS = ("int", "int+doc", "str", "str+doc")
DEFAULT_VARIANTS = {"flat": ("int", "int+doc", "str", "str+doc"), "hnsw": ("int", "str", "str+doc")}


@dataclass(frozen=True)
class Sizes:
    rows: int
    queries: int
    latency_queries: Dict[str, int]
    batch: int
    lookups: int
    removes: int
    batch_calls: int


DEFAULT_SIZES = Sizes(
    rows=100_000,
    queries=1_000,
    latency_queries={"flat": 300, "hnsw": 1_000},
    batch=10_000,
    lookups=1_000,
    removes=10_000,
    batch_calls=3,
)
QUICK_SIZES = Sizes(
    rows=10_000,
    queries=200,
    latency_queries={"flat": 100, "hnsw": 200},
    batch=2_000,
    lookups=200,
    removes=1_000,
    batch_calls=2,
)


def log(msg: str) -> None:
    """Progress, to stderr (the tables go to stdout)."""
    print(f"[id_paths.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def uuid_ids(n: int, seed: int) -> List[str]:
    """``n`` distinct uuid4 strings, the same for the same seed."""
    rng = random.Random(seed)
    out = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    if len(set(out)) != n:
        raise RuntimeError("uuid collision")  # 2^-122 per pair: never in practice
    return out


def documents(n: int, seed: int) -> List[str]:
    """``n`` texts of ``DOC_BYTES`` ASCII bytes made of random words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: List[str] = []
        size = -1
        while size < DOC_BYTES:
            word = rng.choice(WORDS)
            parts.append(word)
            size += len(word) + 1
        out.append(" ".join(parts)[:DOC_BYTES])
    return out


# --------------------------------------------------------------------------- worker


def timed(fn: Callable[[], object]) -> Tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) of one call of ``fn``.

    CPU time (``time.process_time``: every thread, rayon's and RocksDB's included) does
    not count the time the process waits for a core, which on a shared machine is most
    of the noise of the wall clock."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def make_config(nusterdb: Any, index: str, dim: int, rows: int, id_type: str) -> Any:
    hnsw = (
        nusterdb.HNSWConfig(
            max_nb_connection=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, max_nb_elements=rows
        )
        if index == "hnsw"
        else None
    )
    kwargs: Dict[str, Any] = {"index_type": index, "distance_metric": "euclidean"}
    if hnsw is not None:
        kwargs["hnsw_config"] = hnsw
    if id_type != "int":
        kwargs["id_type"] = id_type  # the build before string ids has no such argument
    return nusterdb.DatabaseConfig(dim, **kwargs)


def run_variant(
    nusterdb: Any,
    index: str,
    variant: str,
    base: np.ndarray[Any, Any],
    queries: np.ndarray[Any, Any],
    sizes: Sizes,
    seed: int,
    tmp: Path,
) -> Dict[str, float]:
    """All the measurements of one variant on a fresh database; seconds per figure."""
    n, dim = base.shape
    str_ids = variant.startswith("str")
    with_docs = variant.endswith("+doc")
    ids: Any = uuid_ids(n, seed + 1) if str_ids else np.arange(n, dtype=np.int64)
    docs = documents(n, seed + 2) if with_docs else None
    rng = np.random.default_rng(seed + 3)
    lookup_rows = rng.choice(n, size=sizes.lookups, replace=False)
    remove_rows = rng.choice(n, size=sizes.removes, replace=False)

    def pick(rows: np.ndarray[Any, Any]) -> Any:
        return [ids[int(i)] for i in rows] if str_ids else ids[rows]

    lookup_ids, remove_ids = pick(lookup_rows), pick(remove_rows)
    lookup_list = list(lookup_ids) if str_ids else [int(i) for i in lookup_ids]

    path = tmp / f"db-{index}-{variant}"
    out: Dict[str, float] = {}

    def record(key: str, samples: Sequence[Tuple[float, float]], p99: bool = False) -> None:
        """The median wall and CPU seconds of ``samples``; with ``p99`` also the 99th
        percentile, as ``KEY_p50`` / ``KEY_p99`` (+ ``@cpu``)."""
        walls, cpus = [w for w, _ in samples], [c for _, c in samples]
        if p99:
            out[f"{key}_p50"], out[f"{key}_p50@cpu"] = (
                statistics.median(walls),
                statistics.median(cpus),
            )
            out[f"{key}_p99"], out[f"{key}_p99@cpu"] = percentile(walls, 99), percentile(cpus, 99)
        else:
            out[key], out[f"{key}@cpu"] = statistics.median(walls), statistics.median(cpus)

    db = nusterdb.NusterDB(str(path), make_config(nusterdb, index, dim, n, variant[:3]))

    def add_all() -> None:
        for lo in range(0, n, sizes.batch):
            hi = min(n, lo + sizes.batch)
            if docs is None:
                db.bulk_add(ids[lo:hi], base[lo:hi])
            else:
                db.bulk_add(ids[lo:hi], base[lo:hi], documents=docs[lo:hi])

    record("bulk_add", [timed(add_all)])
    if len(db) != n:
        raise RuntimeError(f"{len(db)} rows stored, expected {n}")

    # Single-query latency: every call timed on its own (a short warm-up first).
    lat_q = queries[: sizes.latency_queries[index]]
    for q in lat_q[:20]:
        db.search(q, K, ef_search=EF_SEARCH)
    record(
        "search", [timed(partial(db.search, q, K, ef_search=EF_SEARCH)) for q in lat_q], p99=True
    )

    found, _dist = db.batch_search(queries, K, ef_search=EF_SEARCH)
    want_dtype = object if str_ids else np.int64
    if found.dtype != want_dtype or found.shape != (len(queries), K):
        raise RuntimeError(f"batch_search ids {found.dtype} {found.shape}")
    record(
        "batch_search",
        [
            timed(partial(db.batch_search, queries, K, ef_search=EF_SEARCH))
            for _ in range(sizes.batch_calls)
        ],
    )

    def get_loop() -> None:
        for i in lookup_list:
            if db.get(i) is None:
                raise RuntimeError(f"get({i!r}) is None")

    get_loop()
    record("get_x1000", [timed(get_loop) for _ in range(SMALL_REPEATS)])
    if hasattr(db, "get_many"):
        got = db.get_many(lookup_ids)
        if len(got["ids"]) != sizes.lookups:
            raise RuntimeError("get_many lost ids")
        record("get_many", [timed(partial(db.get_many, lookup_ids)) for _ in range(SMALL_REPEATS)])
    db.list_ids()
    record("list_ids", [timed(db.list_ids) for _ in range(SMALL_REPEATS)])

    db.close()
    opens: List[Tuple[float, float]] = []
    handles: List[Any] = []
    for _ in range(1 + REOPEN_CYCLES):
        opens.append(timed(lambda: handles.append(nusterdb.NusterDB.open(str(path)))))
        if len(handles[-1]) != n:
            raise RuntimeError("reopened database lost rows")
        handles[-1].close()
    record("open_first", opens[:1])
    record("open", opens[1:])

    db = nusterdb.NusterDB.open(str(path))
    removed_box: List[int] = []
    record("bulk_remove", [timed(lambda: removed_box.append(db.bulk_remove(remove_ids)))])
    removed = removed_box[0]
    if removed != sizes.removes or len(db) != n - sizes.removes:
        raise RuntimeError(f"bulk_remove removed {removed}")
    db.close()
    shutil.rmtree(path)
    return out


def worker(args: argparse.Namespace) -> None:
    import nusterdb

    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    base, queries = clustered(sizes.rows, sizes.queries, args.dim, args.seed)
    result: Dict[str, Any] = {
        "label": args.label,
        "module": nusterdb.__file__,
        "version": nusterdb.__version__,
        "index": args.index,
        "dim": args.dim,
        "load_before": load_average(),
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="nusterdb-idpaths-", dir=args.tmpdir) as tmp:
        for variant in args.variants.split(","):
            result["variants"][variant] = run_variant(
                nusterdb, args.index, variant, base, queries, sizes, args.seed, Path(tmp)
            )
    result["load_after"] = load_average()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent

#: (key, label, unit, items): items turns a time into a rate (None: show the time).
FIGURES: Tuple[Tuple[str, str, str, Optional[Callable[[Sizes], int]]], ...] = (
    ("bulk_add", "bulk_add (vectors/s)", "rate", lambda s: s.rows),
    ("search_p50", "search p50 (us)", "us", None),
    ("search_p99", "search p99 (us)", "us", None),
    ("batch_search", "batch_search (QPS)", "rate", lambda s: s.queries),
    ("get_x1000", "get x {lookups:,} loop (ms)", "ms", None),
    ("get_many", "get_many {lookups:,} (ms)", "ms", None),
    ("list_ids", "list_ids (ms)", "ms", None),
    ("open_first", "open, first after writes (ms)", "ms", None),
    ("open", "open, median of 3 more (ms)", "ms", None),
    ("bulk_remove", "bulk_remove {removes:,} (ms)", "ms", None),
)


def show(seconds: float, unit: str, items: Optional[int]) -> str:
    if unit == "rate" and items is not None:
        return f"{items / seconds:,.0f}"
    if unit == "us":
        return f"{seconds * 1e6:,.1f}"
    return f"{seconds * 1e3:,.2f}"


def spread(values: Sequence[float], unit: str, items: Optional[int]) -> str:
    """The median and the min-max range of per-repeat figures, in display units."""
    shown = sorted((show(v, unit, items) for v in values), key=lambda s: float(s.replace(",", "")))
    return f"{show(statistics.median(values), unit, items)} ({shown[0]}-{shown[-1]})"


def ratio_text(ratios: Sequence[float]) -> str:
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"


def run_worker(
    python: str, label: str, index: str, dim: int, variants: Sequence[str], args: argparse.Namespace
) -> Dict[str, Any]:
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        "--label",
        label,
        "--index",
        index,
        "--dim",
        str(dim),
        "--variants",
        ",".join(variants),
        "--seed",
        str(args.seed),
    ]
    if args.quick:
        cmd.append("--quick")
    if args.tmpdir is not None:
        cmd += ["--tmpdir", str(args.tmpdir)]
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(args.threads)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {shlex.join(cmd)} failed:\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: Dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"worker printed no result:\n{proc.stdout}\n{proc.stderr}")


def report(
    index: str,
    dim: int,
    runs: List[Dict[str, Dict[str, Any]]],
    variants: Sequence[str],
    sizes: Sizes,
    have_old: bool,
) -> None:
    """Tables of one (index, dim): the figures per variant, then the ratios."""

    def series(label: str, variant: str, key: str) -> List[float]:
        return [
            float(r[label]["variants"][variant][key])
            for r in runs
            if key in r[label]["variants"].get(variant, {})
        ]

    def label_of(name: str) -> str:
        return name.format(lookups=sizes.lookups, removes=sizes.removes)

    columns = [("new", v) for v in variants] + ([("old", "int")] if have_old else [])
    headers = ["figure"] + [f"{v} ({lab})" for lab, v in columns]
    for clock, suffix in (("wall clock", ""), ("CPU time of the process", "@cpu")):
        rows = []
        for key, name, unit, items_of in FIGURES:
            items = items_of(sizes) if items_of else None
            row: List[str] = [label_of(name)]
            for lab, v in columns:
                vals = series(lab, v, key + suffix)
                row.append(spread(vals, unit, items) if vals else "-")
            rows.append(row)
        print(
            f"### {index}, {sizes.rows:,} x {dim}, {clock}: "
            f"median over {len(runs)} repeats (min-max)"
        )
        print()
        print_table(headers, rows)

    ratio_headers = ["figure (ratio of times, > 1 slower)"]
    ratio_headers += [f"{v} / int, new: wall / cpu" for v in variants if v != "int"]
    if have_old:
        ratio_headers += ["int new / old, wall (paired)", "int new / old, cpu (paired)"]
    ratio_rows = []
    for key, name, _unit, _items in FIGURES:
        row = [label_of(name).split(" (")[0]]
        for v in variants:
            if v == "int":
                continue
            cells = []
            for suffix in ("", "@cpu"):
                other, ints = series("new", v, key + suffix), series("new", "int", key + suffix)
                cells.append(
                    f"{statistics.median(other) / statistics.median(ints):.2f}"
                    if other and ints
                    else "-"
                )
            row.append(" / ".join(cells))
        if have_old:
            for suffix in ("", "@cpu"):
                k = key + suffix
                paired = [
                    float(r["new"]["variants"]["int"][k]) / float(r["old"]["variants"]["int"][k])
                    for r in runs
                    if k in r["old"]["variants"]["int"] and k in r["new"]["variants"]["int"]
                ]
                row.append(ratio_text(paired) if paired else "- (not in the old build)")
        ratio_rows.append(row)
    print_table(ratio_headers, ratio_rows)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="Usage" + doc.split("Usage")[-1] if "Usage" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="10,000 rows: a smoke run")
    parser.add_argument(
        "--python-old",
        default=None,
        help="an interpreter whose nusterdb is the build before string ids: compare int paths",
    )
    parser.add_argument(
        "--python-new",
        default=sys.executable,
        help="the interpreter whose nusterdb is measured (default: this one)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--dims", type=int, nargs="+", default=[128], help="dimensions")
    parser.add_argument("--indexes", nargs="+", choices=("flat", "hnsw"), default=["flat", "hnsw"])
    parser.add_argument(
        "--flat-variants",
        default=",".join(DEFAULT_VARIANTS["flat"]),
        help="variants of the new build on flat (comma-separated, of int,int+doc,str,str+doc)",
    )
    parser.add_argument(
        "--hnsw-variants",
        default=",".join(DEFAULT_VARIANTS["hnsw"]),
        help="variants of the new build on HNSW (comma-separated, of int,int+doc,str,str+doc)",
    )
    parser.add_argument("--threads", type=int, default=1, help="RAYON_NUM_THREADS (default 1)")
    parser.add_argument("--seed", type=int, default=20261206, help="data seed")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the databases go")
    # Internal: one repeat of one build in a subprocess.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="new", help=argparse.SUPPRESS)
    parser.add_argument("--index", default="flat", help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--variants", default="int", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    have_old = args.python_old is not None
    variants_of = {
        "flat": tuple(args.flat_variants.split(",")),
        "hnsw": tuple(args.hnsw_variants.split(",")),
    }
    for vs in variants_of.values():
        if "int" not in vs or any(v not in ALL_VARIANTS for v in vs):
            raise SystemExit(f"variants {vs}: must include int, each one of {ALL_VARIANTS}")
    print("# NusterDB id paths: int vs str ids, new build vs old")
    print()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; RAYON_NUM_THREADS={args.threads}")
    print(f"new: {args.python_new}; old: {args.python_old or '(not compared)'}")
    print()
    print_environment()
    for dim in args.dims:
        for index in args.indexes:
            runs: List[Dict[str, Dict[str, Any]]] = []
            for rep in range(args.repeats):
                # The int variant of each build in back-to-back processes (which goes
                # first alternates), so the pair sees the same load; then the others.
                pair = ["old", "new"] if rep % 2 == 0 else ["new", "old"]
                if not have_old:
                    pair = ["new"]
                rest = tuple(v for v in variants_of[index] if v != "int")
                steps = [(lab, ("int",)) for lab in pair] + ([("new", rest)] if rest else [])
                run: Dict[str, Dict[str, Any]] = {}
                for label, variants in steps:
                    python = args.python_old if label == "old" else args.python_new
                    log(f"{index} {dim}-d repeat {rep + 1}/{args.repeats}: {label} {variants}")
                    res = run_worker(python, label, index, dim, variants, args)
                    log(
                        f"  load {res['load_before']} -> {res['load_after']}: "
                        + json.dumps(res["variants"])
                    )
                    if label in run:
                        run[label]["variants"].update(res["variants"])
                    else:
                        run[label] = res
                runs.append(run)
                # The raw per-repeat figures, for the log.
                print(f"RAW {index} {dim} repeat {rep + 1}: {json.dumps(run)}")
            print()
            modules = {lab: runs[0][lab]["module"] for lab in runs[0]}
            print(f"modules: {json.dumps(modules)}")
            print()
            report(index, dim, runs, variants_of[index], sizes, have_old)
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
