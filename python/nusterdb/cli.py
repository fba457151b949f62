"""The ``nusterdb`` command line: inspect, import, export, search, snapshot, verify and
compact databases, rotate an encrypted database's master key; serve them over HTTP,
manage the server's API keys, check its audit log.

An encrypted database needs its master key for every command:
``nusterdb --key-env NAME COMMAND ...`` (the environment variable ``NAME`` holds it as 64
hex digits or base64) or ``--key-file PATH``; with it, ``import`` creates an encrypted
database and ``serve`` encrypts every collection.

Run ``nusterdb --help`` (or ``python -m nusterdb --help``) for the commands and
``nusterdb COMMAND --help`` for each one. Output is for people by default; ``--json``
prints one JSON document on stdout instead, with stable keys, for scripts. Errors are
one line on stderr, ``nusterdb: error: <Type>: <message>``, never a traceback.

Exit codes:

====  ==============================================================================
code  meaning
====  ==============================================================================
0     success (``verify``: no problem found)
1     the operation failed (a NusterDB error, an unreadable input file), or
      ``verify`` found problems
2     usage error: unknown command, missing or malformed arguments
====  ==============================================================================
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from nusterdb import DatabaseConfig, NusterDB, NusterDBError, _cli_server
from nusterdb._cli_server import encryption_of
from nusterdb.encryption import EncryptionConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

FORMATS = ("npy", "jsonl", "csv", "parquet")
DEFAULT_BATCH = 1000

_Id = Any  # int, or str in a string-id database
_Row = Tuple[_Id, List[float], Optional[Dict[str, Any]], Optional[str]]


class CliError(Exception):
    """A failure the command line reports itself (bad input file, missing database)."""


# ---------------------------------------------------------------------------------------
# Output helpers


def _emit_json(out: IO[str], doc: Any) -> None:
    out.write(json.dumps(doc, indent=2, sort_keys=False, allow_nan=False))
    out.write("\n")


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _clock(seconds: float) -> str:
    """`h:mm:ss` (hours not wrapped at a day)."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """A one-line bar on stderr: count, percentage, rate and ETA (when the total is
    known). Silent unless enabled."""

    def __init__(self, total: Optional[int], enabled: bool, stream: IO[str]) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and (self.total is None or self.done < self.total):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            width = 30
            filled = int(frac * width)
            eta = (self.total - self.done) / rate if rate > 0 else math.inf
            eta_s = "?" if math.isinf(eta) else _clock(eta)
            line = (
                f"\r[{'#' * filled}{' ' * (width - filled)}] {self.done}/{self.total} "
                f"{frac:4.0%} {rate:,.0f} rows/s ETA {eta_s}"
            )
        else:
            line = f"\r{self.done} rows {rate:,.0f} rows/s"
        self.stream.write(line)
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.last = 0.0
            self.update(0)
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------------------
# Databases


def _require_db(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise CliError(f"no database at {path!r} (the path does not exist)")
    if not p.is_dir():
        raise CliError(f"no database at {path!r} (it is a file, not a directory)")


# The master key given with --key-env / --key-file, for every database a command opens
# (set by `main` before the command runs).
_encryption: Optional[EncryptionConfig] = None


def _open(path: str, read_only: bool) -> NusterDB:
    _require_db(path)
    return NusterDB.open(path, read_only=read_only, encryption=_encryption)


def _config_doc(cfg: DatabaseConfig) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "dim": cfg.dim,
        "index_type": cfg.index_type,
        "distance_metric": cfg.distance_metric.name,
        "id_type": cfg.id_type,
        "encrypted": cfg.encrypted,
        "quantization": cfg.quantization,
    }
    if cfg.index_type == "hnsw":
        h = cfg.hnsw_config
        doc["hnsw"] = {
            "max_nb_connection": h.max_nb_connection,
            "ef_construction": h.ef_construction,
            "ef_search": h.ef_search,
            "max_layer": h.max_layer,
        }
    if cfg.index_type == "ivf":
        doc["ivf"] = {"nlist": cfg.nlist, "nprobe": cfg.nprobe}
    doc["recall"] = cfg.recall
    return doc


def _metadata_dict(m: Any) -> Optional[Dict[str, Any]]:
    if m is None:
        return None
    return dict(m.to_dict())


def _fetch(
    db: NusterDB, ids: Sequence[_Id]
) -> Tuple[npt.NDArray[np.float32], List[Dict[str, Any]], List[Optional[str]]]:
    """Vectors, metadata and documents of `ids` (all present)."""
    got = db.get_many(list(ids), include=("vector", "metadata", "document"))
    if list(got["ids"]) != list(ids):
        raise CliError("the database changed during the export (rows were removed)")
    vecs = np.asarray(got["vectors"], dtype=np.float32).reshape(len(ids), db.config.dim)
    metas = [_metadata_dict(m) or {} for m in got["metadatas"]]
    return vecs, metas, list(got["documents"])


# ---------------------------------------------------------------------------------------
# Commands: info


def cmd_info(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.path, read_only=True) as db:
        stats = db.stats()
        graph = db.graph_load()
        load = db.load_source()
        segment_files = sorted(Path(args.path).glob("segment-*"))
        snapshots = db.list_snapshots()
        doc: Dict[str, Any] = {
            "path": str(Path(args.path).resolve()),
            "config": _config_doc(db.config),
            "count": len(db),
            "deleted_slots": stats.deleted_count,
            "metadata_keys": list(stats.metadata_keys),
            "disk_bytes": stats.disk_bytes,
            "memory_bytes": stats.memory_bytes,
            "mapped_bytes": stats.mapped_bytes,
            "index": graph,
            "load": load,
            "segment_files": {p.name: p.stat().st_size for p in segment_files},
            "snapshots": len(snapshots),
        }
    if args.json:
        _emit_json(out, doc)
        return EXIT_OK
    cfg = doc["config"]
    out.write(f"path:        {doc['path']}\n")
    line = f"config:      dim {cfg['dim']}, {cfg['index_type']}, {cfg['distance_metric']}"
    encrypted = ", encrypted at rest" if cfg["encrypted"] else ""
    codes = "" if cfg["quantization"] == "none" else f", {cfg['quantization']} codes"
    out.write(line + f", {cfg['id_type']} ids{codes}{encrypted}\n")
    if "hnsw" in cfg:
        h = cfg["hnsw"]
        out.write(
            f"hnsw:        M {h['max_nb_connection']}, ef_construction {h['ef_construction']}, "
            f"ef_search {h['ef_search']}\n"
        )
    if "ivf" in cfg:
        auto = "auto"
        i = cfg["ivf"]
        out.write(f"ivf:         nlist {i['nlist'] or auto}, nprobe {i['nprobe'] or auto}\n")
    if cfg.get("recall") is not None:
        out.write(f"recall:      {cfg['recall']:g} (the default target of a search)\n")
    out.write(f"vectors:     {doc['count']} ({doc['deleted_slots']} free slots)\n")
    keys = ", ".join(doc["metadata_keys"]) or "(none)"
    out.write(f"metadata:    {keys}\n")
    out.write(f"disk:        {_human_bytes(doc['disk_bytes'])} ({doc['disk_bytes']} bytes)\n")
    out.write(
        f"memory:      {_human_bytes(doc['memory_bytes'])} "
        f"(+ {_human_bytes(doc['mapped_bytes'])} of segment files mapped)\n"
    )
    index = doc["index"]
    state = index["state"]
    detail = {
        "not_persisted": "flat index (no graph)",
        "built": "no graph file: graph built from the vectors at open",
        "loaded": f"graph file loaded ({index.get('reused')} nodes reused, "
        f"{index.get('inserted')} linked, {index.get('removed')} removed)",
        "rebuilt": f"graph file unusable, graph rebuilt: {index.get('reason')}",
    }.get(state, state)
    out.write(f"index:       {detail}\n")
    load = doc["load"]
    if load["source"] in ("segments", "log"):
        loaded = f"segment files, {load['replayed']} records replayed from the change log"
    elif load["refused"]:
        loaded = f"every record (the segment files were refused: {load['refused']})"
    else:
        loaded = "every record (not sealed yet)"
    out.write(f"loaded from: {loaded}\n")
    seg_bytes = sum(doc["segment_files"].values())
    out.write(f"segments:    {len(doc['segment_files'])} files, {_human_bytes(seg_bytes)}\n")
    out.write(f"snapshots:   {doc['snapshots']}\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Import: readers yield rows (id, vector, metadata or None, document or None)


@dataclass
class Columns:
    id: str
    vector: str
    document: str
    metadata: Optional[List[str]]  # None: every other column

    def meta_of(self, record: Dict[str, Any]) -> Dict[str, Any]:
        names = (
            self.metadata
            if self.metadata is not None
            else [k for k in record if k not in (self.id, self.vector, self.document)]
        )
        out: Dict[str, Any] = {}
        for k in names:
            v = record.get(k)
            # Missing values (an empty CSV cell, a null) are absent fields.
            if v is None:
                continue
            out[k] = v
        return out


def _vector_of(value: Any, where: str) -> List[float]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise CliError(f"{where}: the vector is not a JSON list of numbers ({e})") from None
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        raise CliError(f"{where}: the vector must be a non-empty list of numbers")
    try:
        return [float(x) for x in value]
    except (TypeError, ValueError):
        raise CliError(f"{where}: the vector must be a list of numbers") from None


def _csv_value(cell: str) -> Any:
    """A CSV cell as export writes it: JSON scalars (numbers, true/false, quoted
    strings) decoded, anything else the text itself."""
    try:
        v = json.loads(cell)
    except (json.JSONDecodeError, ValueError):
        return cell
    return v if isinstance(v, (str, int, float, bool)) else cell


def _csv_cell(value: Any) -> str:
    """Inverse of `_csv_value`: a string is written as is unless it would read back as
    something else (then JSON-quoted)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except (json.JSONDecodeError, ValueError):
            return value if value != "" else '""'
        return json.dumps(value)
    return json.dumps(value)


def _csv_text(cell: str) -> str:
    """A CSV document cell as export writes it: a JSON string literal decoded (how the
    empty string and text that looks like one are written), anything else as is."""
    if cell.startswith('"'):
        try:
            v = json.loads(cell)
        except ValueError:
            return cell
        if isinstance(v, str):
            return v
    return cell


def _csv_text_cell(text: Optional[str]) -> str:
    """Inverse of `_csv_text`; no document is an empty cell."""
    if text is None:
        return ""
    if text == "" or _csv_text(text) != text:
        return json.dumps(text, ensure_ascii=False)
    return text


def _coerce_id(raw: Any, where: str) -> _Id:
    if isinstance(raw, bool):
        raise CliError(f"{where}: an id must be an integer or a string, not a bool")
    if isinstance(raw, (int, np.integer)):
        return int(raw)
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        return raw
    raise CliError(f"{where}: an id must be an integer or a string, got {raw!r}")


def read_npy(
    args: argparse.Namespace, cols: Columns
) -> Tuple[Optional[int], Iterator[List[_Row]], int]:
    arr = np.load(args.file, mmap_mode="r", allow_pickle=False)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise CliError(f"{args.file}: expected a 2-D array of vectors, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise CliError(f"{args.file}: expected a numeric array, got dtype {arr.dtype}")
    n = int(arr.shape[0])
    ids: Sequence[_Id]
    if args.ids:
        id_arr = np.load(args.ids, allow_pickle=False)
        if id_arr.ndim != 1 or id_arr.shape[0] != n:
            raise CliError(f"{args.ids}: expected {n} ids in a 1-D array, got shape {id_arr.shape}")
        if id_arr.dtype.kind in "iu":
            ids = [int(x) for x in id_arr]
        elif id_arr.dtype.kind == "U":
            ids = [str(x) for x in id_arr]
        else:
            raise CliError(f"{args.ids}: ids must be integers or strings, got dtype {id_arr.dtype}")
    else:
        ids = range(args.id_start, args.id_start + n)

    def batches() -> Iterator[List[_Row]]:
        for start in range(0, n, args.batch_size):
            stop = min(start + args.batch_size, n)
            block = np.asarray(arr[start:stop], dtype=np.float32)
            yield [(ids[start + i], block[i], None, None) for i in range(stop - start)]

    return n, batches(), int(arr.shape[1])


def _count_lines(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def _record_batches(
    records: Iterator[Tuple[str, Dict[str, Any]]], cols: Columns, batch_size: int
) -> Iterator[List[_Row]]:
    batch: List[_Row] = []
    for where, rec in records:
        if cols.id not in rec:
            raise CliError(f"{where}: no id column {cols.id!r} (set --id-column)")
        if cols.vector not in rec:
            raise CliError(f"{where}: no vector column {cols.vector!r} (set --vector-column)")
        rid = _coerce_id(rec[cols.id], where)
        vec = _vector_of(rec[cols.vector], where)
        doc = rec.get(cols.document)
        if doc is not None and not isinstance(doc, str):
            raise CliError(f"{where}: the document must be a string, got {doc!r}")
        meta = cols.meta_of(rec)
        batch.append((rid, vec, meta, doc))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_jsonl(
    args: argparse.Namespace, cols: Columns
) -> Tuple[Optional[int], Iterator[List[_Row]], Optional[int]]:
    total = _count_lines(args.file)

    def records() -> Iterator[Tuple[str, Dict[str, Any]]]:
        with open(args.file, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{args.file}:{lineno}"
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CliError(f"{where}: not JSON ({e})") from None
                if not isinstance(rec, dict):
                    raise CliError(f"{where}: each line must be a JSON object")
                yield where, rec

    return total, _record_batches(records(), cols, args.batch_size), None


def read_csv(
    args: argparse.Namespace, cols: Columns
) -> Tuple[Optional[int], Iterator[List[_Row]], Optional[int]]:
    total = max(_count_lines(args.file) - 1, 0)

    def records() -> Iterator[Tuple[str, Dict[str, Any]]]:
        with open(args.file, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for rec in reader:
                where = f"{args.file}:{reader.line_num}"
                row: Dict[str, Any] = {}
                for k, cell in rec.items():
                    if k is None or cell is None or cell == "":
                        continue  # a missing value
                    if k in (cols.id, cols.vector):
                        row[k] = cell
                    elif k == cols.document:
                        row[k] = _csv_text(cell)
                    else:
                        row[k] = _csv_value(cell)
                yield where, row

    return total, _record_batches(records(), cols, args.batch_size), None


def _is_int_text(s: str) -> bool:
    t = s[1:] if s[:1] in "+-" else s
    return t.isascii() and t.isdigit()


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise CliError(
            "parquet files need pyarrow: pip install pyarrow (or pip install 'nusterdb[parquet]')"
        ) from None
    return pyarrow


def read_parquet(
    args: argparse.Namespace, cols: Columns
) -> Tuple[Optional[int], Iterator[List[_Row]], Optional[int]]:
    pa = _pyarrow()
    pf = pa.parquet.ParquetFile(args.file)
    total = int(pf.metadata.num_rows)

    def records() -> Iterator[Tuple[str, Dict[str, Any]]]:
        row = 0
        for rb in pf.iter_batches(batch_size=args.batch_size):
            for rec in rb.to_pylist():
                row += 1
                yield f"{args.file}: row {row}", {k: v for k, v in rec.items() if v is not None}

    return total, _record_batches(records(), cols, args.batch_size), None


READERS: Dict[
    str,
    Callable[
        [argparse.Namespace, Columns],
        Tuple[Optional[int], Iterator[List[_Row]], Optional[int]],
    ],
] = {"npy": read_npy, "jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}


def _format_of(file: str, given: Optional[str]) -> str:
    if given:
        return str(given)
    ext = Path(file).suffix.lower().lstrip(".")
    ext = {"ndjson": "jsonl", "pq": "parquet"}.get(ext, ext)
    if ext not in FORMATS:
        raise CliError(
            f"cannot tell the format of {file!r} from its extension; "
            f"give --format ({', '.join(FORMATS)})"
        )
    return ext


def _columns(args: argparse.Namespace) -> Columns:
    meta = None
    if args.metadata_columns is not None:
        meta = [c.strip() for c in args.metadata_columns.split(",") if c.strip()]
    return Columns(args.id_column, args.vector_column, args.document_column, meta)


def _create(args: argparse.Namespace, dim: int, str_ids: bool) -> NusterDB:
    id_type = args.id_type or ("str" if str_ids else "int")
    cfg = DatabaseConfig(
        dim,
        index_type=args.index or "flat",
        distance_metric=args.metric,
        id_type=id_type,
        encryption=_encryption,
        nlist=args.nlist,
        quantization=args.quantization,
    )
    return NusterDB(args.path, cfg)


def _check_stated(args: argparse.Namespace, db: NusterDB) -> None:
    """The options for a new database, given for an existing one, must agree with it
    (they cannot change it)."""
    cfg = db.config
    stated = [
        ("--dim", args.dim, cfg.dim),
        ("--metric", _metric_name(args.metric), cfg.distance_metric.name),
        ("--index", args.index, cfg.index_type),
        ("--id-type", args.id_type, cfg.id_type),
        ("--nlist", args.nlist, cfg.nlist),
        ("--quantization", args.quantization, cfg.quantization),
    ]
    for flag, given, actual in stated:
        if given is not None and given != actual:
            db.close()
            raise CliError(
                f"{flag} {given} differs from the existing database's {actual} "
                "(these options apply only to a new database)"
            )


def _metric_name(name: Optional[str]) -> Optional[str]:
    """The canonical name of a metric name or alias (`None` stays `None`)."""
    if name is None:
        return None
    return DatabaseConfig(1, distance_metric=name).distance_metric.name


def _looks_str(batch: Sequence[_Row], fmt: str) -> bool:
    """Whether the ids of a first batch make a string-id database: a string id that is
    not the text of an integer in a CSV file (CSV cells are untyped)."""
    return any(isinstance(r[0], str) and not (fmt == "csv" and _is_int_text(r[0])) for r in batch)


def _ids_for(id_type: str, ids: List[_Id], fmt: str) -> List[_Id]:
    """Ids in the database's kind: ints become their text in a string-id database; the
    text of an integer in a CSV file becomes the int in an int-id database."""
    if id_type == "str":
        return [str(i) for i in ids]
    if fmt == "csv":
        return [int(i) if isinstance(i, str) and _is_int_text(i) else i for i in ids]
    return ids


def _is_new(path: str) -> bool:
    p = Path(path)
    return not p.exists() or (p.is_dir() and not any(p.iterdir()))


def cmd_import(args: argparse.Namespace, out: IO[str]) -> int:
    fmt = _format_of(args.file, args.format)
    if not Path(args.file).is_file():
        raise CliError(f"no input file {args.file!r}")
    cols = _columns(args)
    total, batches, _ = READERS[fmt](args, cols)
    progress = Progress(
        total, args.progress or (args.progress is None and sys.stderr.isatty()), sys.stderr
    )
    db: Optional[NusterDB] = None
    created = False
    imported = 0
    batch_no = 0
    try:
        for batch in batches:
            if db is None:
                if _is_new(args.path):
                    dim = args.dim or len(batch[0][1])
                    db = _create(args, dim, _looks_str(batch, fmt))
                    created = True
                else:
                    db = _open(args.path, read_only=False)
                    _check_stated(args, db)
            ids = _ids_for(db.config.id_type, [r[0] for r in batch], fmt)
            dim = db.config.dim
            try:
                vectors = np.asarray([r[1] for r in batch], dtype=np.float32)
            except ValueError:
                raise CliError(
                    f"batch {batch_no + 1} (rows {imported + 1}..{imported + len(batch)}): "
                    "vectors of different lengths"
                ) from None
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                raise CliError(
                    f"batch {batch_no + 1} (rows {imported + 1}..{imported + len(batch)}): "
                    f"vectors of dimension {vectors.shape[-1]}, the database has {dim}"
                )
            metas = [r[2] for r in batch] if any(r[2] for r in batch) else None
            docs = [r[3] for r in batch]
            try:
                db.bulk_add(
                    ids,
                    vectors,
                    metas,
                    docs if any(d is not None for d in docs) else None,
                    progress=False,  # the import's own bar covers every batch
                )
            except NusterDBError as e:
                raise type(e)(
                    f"{e} (batch {batch_no + 1}, rows {imported + 1}..{imported + len(batch)}; "
                    f"{imported} rows in {batch_no} earlier batches were imported)"
                ) from None
            imported += len(batch)
            batch_no += 1
            progress.update(len(batch))
        if db is None:
            raise CliError(f"{args.file}: no rows to import")
        db.flush()
        count = len(db)
    finally:
        progress.finish()
        if db is not None:
            db.close()
    doc = {
        "path": args.path,
        "file": args.file,
        "format": fmt,
        "created": created,
        "imported": imported,
        "batches": batch_no,
        "count": count,
    }
    if args.json:
        _emit_json(out, doc)
    else:
        what = "created and imported" if created else "imported"
        out.write(
            f"{what} {imported} rows from {args.file} in {batch_no} batches; "
            f"the database holds {count}\n"
        )
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Export


def _ordered_keys(metas: Sequence[Dict[str, Any]]) -> List[str]:
    keys: Dict[str, None] = {}
    for m in metas:
        for k in m:
            keys.setdefault(k, None)
    return sorted(keys)


def _write_export(
    fmt: str,
    tmp: Path,
    args: argparse.Namespace,
    ids: List[_Id],
    str_ids: bool,
    vectors: npt.NDArray[np.float32],
    metas: List[Dict[str, Any]],
    docs: List[Optional[str]],
    keys: List[str],
    any_docs: bool,
) -> None:
    """Writes the rows to `tmp` in `fmt`."""
    if fmt == "parquet":
        pa = _pyarrow()
    if fmt == "npy":
        with open(tmp, "wb") as f:
            np.save(f, vectors)
        if args.ids:
            id_arr = np.array(ids, dtype=str if str_ids else np.int64)
            if len(ids) == 0:
                id_arr = np.zeros(0, dtype=np.int64)
            with open(args.ids, "wb") as f:
                np.save(f, id_arr)
    elif fmt == "jsonl":
        with open(tmp, "w", encoding="utf-8") as f:
            for i, rid in enumerate(ids):
                rec: Dict[str, Any] = {args.id_column: rid, args.vector_column: vectors[i].tolist()}
                if docs[i] is not None:
                    rec[args.document_column] = docs[i]
                rec.update(metas[i])
                f.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")
    elif fmt == "csv":
        header = [args.id_column, args.vector_column]
        if any_docs:
            header.append(args.document_column)
        header.extend(keys)
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for i, rid in enumerate(ids):
                row = [str(rid), json.dumps(vectors[i].tolist())]
                if any_docs:
                    row.append(_csv_text_cell(docs[i]))
                row.extend(_csv_cell(metas[i][k]) if k in metas[i] else "" for k in keys)
                w.writerow(row)
    else:
        arrays: Dict[str, Any] = {
            args.id_column: pa.array(ids, type=pa.string() if str_ids else pa.int64()),
            args.vector_column: pa.array(list(vectors), type=pa.list_(pa.float32())),
        }
        if any_docs:
            arrays[args.document_column] = pa.array(docs, type=pa.string())
        for k in keys:
            col = [m.get(k) for m in metas]
            kinds = {type(v) for v in col if v is not None}
            if len(kinds) > 1:
                raise CliError(
                    f"metadata field {k!r} holds values of several types "
                    f"({', '.join(sorted(t.__name__ for t in kinds))}); a parquet column has "
                    "one type: export to jsonl or csv instead"
                )
            arrays[k] = pa.array(col)
        pa.parquet.write_table(pa.table(arrays), str(tmp))


def cmd_export(args: argparse.Namespace, out: IO[str]) -> int:
    fmt = _format_of(args.file, args.format)
    if fmt == "parquet":
        _pyarrow()  # before any work: a missing pyarrow is said at once
    if Path(args.file).exists() and not args.overwrite:
        raise CliError(f"{args.file!r} exists (give --overwrite to replace it)")
    with _open(args.path, read_only=True) as db:
        ids = db.list_ids()
        str_ids = db.config.id_type == "str"
        n = len(ids)
        dim = db.config.dim
        progress = Progress(
            n, args.progress or (args.progress is None and sys.stderr.isatty()), sys.stderr
        )
        vectors = np.empty((n, dim), dtype=np.float32)
        metas: List[Dict[str, Any]] = []
        docs: List[Optional[str]] = []
        for start in range(0, n, args.batch_size):
            chunk = ids[start : start + args.batch_size]
            v, m, d = _fetch(db, chunk)
            vectors[start : start + len(chunk)] = v
            metas.extend(m)
            docs.extend(d)
            progress.update(len(chunk))
        progress.finish()
    reserved = {args.id_column, args.vector_column, args.document_column}
    keys = _ordered_keys(metas)
    clash = sorted(reserved.intersection(keys))
    if clash and fmt != "npy":
        raise CliError(
            f"metadata field(s) {', '.join(clash)} clash with the id/vector/document columns; "
            "rename those columns with --id-column/--vector-column/--document-column"
        )
    any_docs = any(d is not None for d in docs)
    tmp = Path(str(args.file) + ".partial")
    # Written beside the target and renamed over it: a failure leaves no half file.
    try:
        _write_export(fmt, tmp, args, ids, str_ids, vectors, metas, docs, keys, any_docs)
        os.replace(tmp, args.file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    doc = {"path": args.path, "file": args.file, "format": fmt, "exported": n}
    if args.json:
        _emit_json(out, doc)
    else:
        out.write(f"exported {n} rows to {args.file}\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Search


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None


def cmd_search(args: argparse.Namespace, out: IO[str]) -> int:
    if args.vector is not None:
        q = _json_arg_vector(args.vector)
        queries = np.asarray([q], dtype=np.float32)
    else:
        arr = np.load(args.vector_file, allow_pickle=False)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise CliError(f"{args.vector_file}: expected a 1-D query or a 2-D array of them")
        queries = np.asarray(arr, dtype=np.float32)
    if args.filter is not None and not isinstance(args.filter, dict):
        raise CliError("--filter must be a JSON object")
    results: List[List[Dict[str, Any]]] = []
    include = ["metadata", "document"] if args.show_metadata else []
    with _open(args.path, read_only=True) as db:
        for q in queries:
            hits = db.search(
                q,
                k=args.k,
                filter=args.filter,
                ef_search=args.ef_search,
                nprobe=args.nprobe,
                recall=args.recall,
                include=include,
            )
            rows = []
            for hit in hits:
                row: Dict[str, Any] = {"id": hit.id, "distance": float(hit.distance)}
                if args.show_metadata:
                    row["metadata"] = _metadata_dict(hit.metadata) or {}
                    row["document"] = hit.document
                rows.append(row)
            results.append(rows)
    if args.json:
        _emit_json(out, {"k": args.k, "results": results})
        return EXIT_OK
    for qi, rows in enumerate(results):
        if len(results) > 1:
            out.write(f"query {qi}:\n")
        if not rows:
            out.write("  (no match)\n")
        for rank, row in enumerate(rows, 1):
            line = f"{rank:>4}  {row['id']!s:<20} {row['distance']:.6g}"
            if args.show_metadata:
                line += "  " + json.dumps(row["metadata"], ensure_ascii=False)
                if row.get("document") is not None:
                    line += "  " + json.dumps(row["document"], ensure_ascii=False)
            out.write(line + "\n")
    return EXIT_OK


def _json_arg_vector(value: Any) -> List[float]:
    if not isinstance(value, list) or not value:
        raise CliError("--vector must be a JSON list of numbers, e.g. '[0.1, 0.2]'")
    try:
        return [float(x) for x in value]
    except (TypeError, ValueError):
        raise CliError("--vector must be a JSON list of numbers") from None


# ---------------------------------------------------------------------------------------
# Snapshots


def cmd_snapshot_create(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.path, read_only=False) as db:
        if args.metadata is not None:
            if not isinstance(args.metadata, dict):
                raise CliError("--metadata must be a JSON object")
            name = db.snapshot_with_metadata(args.name, args.metadata)
        else:
            name = db.snapshot_named(args.name)
        info = next((s for s in db.list_snapshots() if s["name"] == name), None)
    doc = {"name": name, "path": info["path"] if info else None}
    if args.json:
        _emit_json(out, doc)
    else:
        out.write(f"created snapshot {name!r}\n")
    return EXIT_OK


def cmd_snapshot_list(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.path, read_only=True) as db:
        snaps = db.list_snapshots()
    if args.json:
        _emit_json(out, {"snapshots": snaps})
        return EXIT_OK
    if not snaps:
        out.write("no snapshots\n")
    for s in snaps:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s["created_at"]))
        auto = " (auto)" if s["auto"] else ""
        out.write(f"{s['name']:<32} {when} UTC  {s['vector_count']} vectors{auto}\n")
    return EXIT_OK


def cmd_snapshot_restore(args: argparse.Namespace, out: IO[str]) -> int:
    if args.in_place == (args.target is not None):
        raise CliError("give either TARGET or --in-place")
    if args.in_place:
        if args.keep_snapshots:
            raise CliError("--keep-snapshots is for a TARGET: in place every snapshot is kept")
        # Rolls the database itself back: needs the writer lock.
        with _open(args.path, read_only=False) as db:
            db.restore_snapshot(args.name)
        if args.json:
            _emit_json(out, {"name": args.name, "in_place": True})
        else:
            out.write(f"rolled {args.path} back to snapshot {args.name!r}\n")
        return EXIT_OK
    with _open(args.path, read_only=True) as db:
        db.restore_snapshot(args.name, args.target, keep_snapshots=args.keep_snapshots)
    if args.json:
        _emit_json(out, {"name": args.name, "target": args.target})
    else:
        out.write(f"restored snapshot {args.name!r} to {args.target}\n")
    return EXIT_OK


def cmd_snapshot_delete(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.path, read_only=False) as db:
        db.delete_snapshot(args.name)
    if args.json:
        _emit_json(out, {"name": args.name, "deleted": True})
    else:
        out.write(f"deleted snapshot {args.name!r}\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Verify, compact


def cmd_verify(args: argparse.Namespace, out: IO[str]) -> int:
    _require_db(args.path)
    report = NusterDB.verify(args.path, encryption=_encryption)
    code = EXIT_OK if report["healthy"] else EXIT_FAILED
    if args.json:
        _emit_json(out, report)
        return code
    c = report["counts"]
    out.write(f"path:     {report['path']}\n")
    if report["live_writer"]:
        out.write("mode:     a writer has the database open; checked as a reader sees it\n")
    out.write(f"checked:  {', '.join(report['checked']) or '(nothing)'}\n")
    out.write(
        f"read:     {c['keys_read']} keys ({_human_bytes(c['bytes_read'])}), "
        f"{c['vectors']} vectors, {c['metadata_records']} metadata records\n"
    )
    if c["graph_nodes"] is not None:
        out.write(f"graph:    {c['graph_nodes']} nodes\n")
    out.write(f"snapshots: {c['snapshots']}\n")
    for note in report["notes"]:
        out.write(f"note:     {note}\n")
    if report["healthy"]:
        out.write("healthy: no problem found\n")
    else:
        out.write(f"{len(report['problems'])} problem(s) found:\n")
        for p in report["problems"]:
            out.write(f"  [{p['kind']}] {p['detail']}\n")
    return code


def cmd_compact(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.path, read_only=False) as db:
        before = db.stats().disk_bytes
        db.compact()
        after = db.stats().disk_bytes
    if args.json:
        _emit_json(out, {"path": args.path, "disk_bytes_before": before, "disk_bytes_after": after})
    else:
        out.write(f"compacted: {_human_bytes(before)} -> {_human_bytes(after)} on disk\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# The parser


def _int_at_least(low: int, text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {n}")
    return n


def _positive(text: str) -> int:
    return _int_at_least(1, text)


def _non_negative(text: str) -> int:
    return _int_at_least(0, text)


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _add_progress(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="a progress bar on stderr (default: only when stderr is a terminal)",
    )
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _add_columns(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("columns (jsonl, csv, parquet)")
    g.add_argument("--id-column", default="id", help="the id column (default: id)")
    g.add_argument("--vector-column", default="vector", help="the vector column (default: vector)")
    g.add_argument(
        "--document-column", default="document", help="the document column (default: document)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nusterdb",
        description="Inspect and maintain NusterDB databases.",
        epilog="exit codes: 0 ok; 1 operation failed or verify found problems; 2 usage error",
    )
    key = parser.add_mutually_exclusive_group()
    key.add_argument(
        "--key-env",
        metavar="NAME",
        help="master key of an encrypted database, from this environment variable",
    )
    key.add_argument(
        "--key-file", metavar="FILE", help="master key of an encrypted database, from this file"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="configuration, counts, sizes, index state, snapshots")
    p.add_argument("path", metavar="PATH", help="the database directory")
    _add_json(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "import",
        help="add rows from a .npy, .jsonl, .csv or .parquet file",
        description=(
            "Adds rows from FILE, creating the database if PATH holds none. Rows go in "
            "batches through bulk_add: each batch is atomic (all of its rows or none), "
            "so a failure leaves the earlier batches imported and says which batch failed. "
            "jsonl: one JSON object per line; csv: a header row, the vector as a JSON list, "
            "metadata cells as JSON scalars or plain text; parquet needs pyarrow. "
            "Metadata: every column other than id, vector and document, or those named by "
            "--metadata-columns; missing values are absent fields."
        ),
    )
    p.add_argument("path", metavar="PATH", help="the database directory (created if absent)")
    p.add_argument("file", metavar="FILE", help="the input file")
    p.add_argument("--format", choices=FORMATS, help="default: from the file extension")
    _add_columns(p)
    p.add_argument(
        "--metadata-columns",
        metavar="A,B",
        help="metadata columns, comma-separated (default: every other column)",
    )
    p.add_argument("--ids", metavar="FILE.npy", help=".npy input: a 1-D array of ids, one per row")
    p.add_argument(
        "--id-start",
        type=_non_negative,
        default=0,
        help=".npy input without --ids: the id of the first row (default 0)",
    )
    p.add_argument(
        "--batch-size", type=_positive, default=DEFAULT_BATCH, help="rows per atomic batch"
    )
    g = p.add_argument_group("a new database (given for an existing one, they must agree with it)")
    g.add_argument("--dim", type=_positive, help="default: the length of the first vector")
    g.add_argument("--metric", help="distance metric (default: euclidean)")
    g.add_argument("--index", choices=("flat", "hnsw", "ivf"), help="default: flat")
    g.add_argument(
        "--nlist",
        type=_positive,
        help="--index ivf: the number of lists (default: the square root of the row count)",
    )
    g.add_argument(
        "--quantization",
        choices=("none", "sq8", "sq4", "rabitq", "binary"),
        help=(
            "the rows' codes: for --index hnsw sq4 (the default), sq8, rabitq, binary or "
            "none; for --index ivf rabitq, binary or none (the default)"
        ),
    )
    g.add_argument(
        "--id-type",
        choices=("int", "str"),
        help="default: str if an id in the first batch is a string, else int",
    )
    _add_progress(p)
    _add_json(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "export",
        help="write every row to a .npy, .jsonl, .csv or .parquet file",
        description=(
            "Writes every row (id, vector, document, metadata fields as columns) in id "
            "order; import reads the file back into the same rows. .npy holds the vectors "
            "only (--ids FILE.npy writes the ids beside). Tags are not exported."
        ),
    )
    p.add_argument("path", metavar="PATH", help="the database directory")
    p.add_argument("file", metavar="FILE", help="the output file")
    p.add_argument("--format", choices=FORMATS, help="default: from the file extension")
    _add_columns(p)
    p.add_argument("--ids", metavar="FILE.npy", help=".npy output: also write the ids here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH, help="rows per read")
    _add_progress(p)
    _add_json(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("search", help="the k nearest rows to a query vector")
    p.add_argument("path", metavar="PATH", help="the database directory")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--vector", type=_json_arg, help="the query as a JSON list, e.g. '[0.1, 0.2]'")
    q.add_argument("--vector-file", metavar="Q.npy", help="a 1-D query, or a 2-D array of queries")
    p.add_argument("-k", type=_positive, default=10, help="how many results (default 10)")
    p.add_argument(
        "--filter", type=_json_arg, help='a metadata filter as JSON, e.g. \'{"a": {"$gt": 1}}\''
    )
    p.add_argument("--ef-search", type=_positive, help="HNSW candidate list size for this search")
    p.add_argument("--nprobe", type=_positive, help="IVF lists scanned for this search")
    p.add_argument(
        "--recall",
        type=float,
        help="a recall@k target in (0, 1] instead of --ef-search / --nprobe",
    )
    p.add_argument(
        "--show-metadata", action="store_true", help="also print each hit's metadata and document"
    )
    _add_json(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("snapshot", help="create, list, restore or delete snapshots")
    ss = p.add_subparsers(dest="snapshot_command", metavar="ACTION")
    ss.required = True
    s = ss.add_parser("create", help="take a snapshot named NAME (needs the writer lock)")
    s.add_argument("path", metavar="PATH")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--metadata", type=_json_arg, help="metadata to store with it, a JSON object")
    _add_json(s)
    s.set_defaults(func=cmd_snapshot_create)
    s = ss.add_parser("list", help="every snapshot, oldest first")
    s.add_argument("path", metavar="PATH")
    _add_json(s)
    s.set_defaults(func=cmd_snapshot_list)
    s = ss.add_parser(
        "restore",
        help="copy snapshot NAME to TARGET as a database of its own, or roll PATH back to "
        "it with --in-place (needs the writer lock)",
    )
    s.add_argument("path", metavar="PATH")
    s.add_argument("name", metavar="NAME")
    s.add_argument("target", metavar="TARGET", nargs="?", help="must not exist")
    s.add_argument(
        "--in-place",
        action="store_true",
        help="roll the database at PATH back to the snapshot (every snapshot is kept)",
    )
    s.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="copy the database's snapshots to TARGET too",
    )
    _add_json(s)
    s.set_defaults(func=cmd_snapshot_restore)
    s = ss.add_parser("delete", help="delete snapshot NAME (needs the writer lock)")
    s.add_argument("path", metavar="PATH")
    s.add_argument("name", metavar="NAME")
    _add_json(s)
    s.set_defaults(func=cmd_snapshot_delete)

    p = sub.add_parser(
        "verify",
        help="check the whole database; exit 1 if a problem is found",
        description=(
            "Reads every stored block with its checksum, decodes every record, checks the "
            "change log, the segment files and the HNSW graph file against the store, "
            "loads the database as a reader would and "
            "compares it with the store, and reads every snapshot manifest. Writes nothing; "
            "runs beside a live writer. Exit 0: healthy; 1: problems found (listed)."
        ),
    )
    p.add_argument("path", metavar="PATH")
    _add_json(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "compact",
        help="rewrite the store, giving back the space of removed rows (needs the writer lock)",
    )
    p.add_argument("path", metavar="PATH")
    _add_json(p)
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser(
        "rotate-key",
        help="rewrap an encrypted database's data key under a new master key",
        description=(
            "Rotates the master key of the closed encrypted database at PATH (or of every "
            "collection of a server's DATA_DIR): its data key is rewrapped from the old "
            "master key to the new one in the key file of the database and of each "
            "snapshot; no stored value is rewritten. Needs the writer lock (stop the "
            "server first). Running it again finishes a rotation that was cut short."
        ),
    )
    p.add_argument("path", metavar="PATH", help="a database, or a server's DATA_DIR")
    old = p.add_mutually_exclusive_group(required=True)
    old.add_argument("--old-key-env", metavar="NAME", help="variable holding the current key")
    old.add_argument("--old-key-file", metavar="FILE", help="file holding the current key")
    new = p.add_mutually_exclusive_group(required=True)
    new.add_argument("--new-key-env", metavar="NAME", help="variable holding the new key")
    new.add_argument("--new-key-file", metavar="FILE", help="file holding the new key")
    _add_json(p)
    p.set_defaults(func=cmd_rotate_key)

    _cli_server.add_commands(sub, _add_json)
    return parser


def cmd_rotate_key(args: argparse.Namespace, out: IO[str]) -> int:
    old = encryption_of(args.old_key_env, args.old_key_file)
    new = encryption_of(args.new_key_env, args.new_key_file)
    if old is None or new is None:  # argparse requires both groups
        raise CliError("give the old and the new master key")
    root = Path(args.path)
    collections = root / "collections"
    if collections.is_dir() and not (root / "CURRENT").exists():
        paths = sorted(p for p in collections.iterdir() if p.is_dir() and p.name[:1] != ".")
    else:
        _require_db(args.path)
        paths = [root]
    rotated = {str(p): NusterDB.rotate_encryption_key(p, old, new) for p in paths}
    if args.json:
        _emit_json(out, {"rotated": rotated})
    else:
        for p, n in rotated.items():
            out.write(f"{p}: {n} key file{'s' if n != 1 else ''} rewrapped\n")
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line with `argv` (default: ``sys.argv[1:]``); returns the exit
    code (see the module docs)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    out = sys.stdout
    global _encryption
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _encryption = encryption_of(args.key_env, args.key_file)
            code = int(args.func(args, out))
        except NusterDBError as e:
            _error(f"{type(e).__name__}: {e}")
            code = EXIT_FAILED
        except CliError as e:
            _error(str(e))
            code = EXIT_FAILED
        except OSError as e:
            _error(f"{type(e).__name__}: {e}")
            code = EXIT_FAILED
        except (ValueError, TypeError) as e:  # a malformed .npy file, an id of the wrong type
            _error(f"{type(e).__name__}: {e}")
            code = EXIT_FAILED
        except KeyboardInterrupt:
            _error("interrupted")
            code = 130
    for w in caught:
        sys.stderr.write(f"nusterdb: warning: {w.category.__name__}: {w.message}\n")
    return code


def _error(message: str) -> None:
    sys.stderr.write(f"nusterdb: error: {' '.join(message.split())}\n")
