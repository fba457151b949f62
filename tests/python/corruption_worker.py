"""The corrupt-file sweep of RELIABILITY.md T3, shared by ``test_corruption.py`` (which
builds the fixtures and runs workers) and the worker processes that open damaged copies.

The fixture (one flat and one HNSW database, dim 16, 2,000 vectors with metadata and tags)
comes with int ids or with string ids and documents (``ID_TYPES``; the string-id one
stores id ``i`` as ``crash_workload.str_id(i)`` and a document on most rows, replaced by
the update and the upsert of the log). It is built from a fixed op list: 1,600 vectors
in one ``bulk_add``, closed and reopened so they sit in an SST file (and, once HNSW
graphs are persisted, in a graph file), then 24 more ops — ``bulk_add`` of 25 rows
each, updates, upserts, removes — that stay in the write-ahead log. ``states()`` gives
the state after each of those ops, the "consistent prefixes" a database may open with
after damage to its log.

``python corruption_worker.py FIXTURES WORKDIR SEED ID_TYPE`` reads case numbers on
stdin, one a line; for each it copies a fixture, damages one file (``case_plan``), opens
it, reads everything, searches, and prints one JSON line. Before each case it writes
``### case N`` to stderr, so a panic message found there is attributed to its case.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import warnings
from pathlib import Path
from typing import AbstractSet, Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import numpy.typing as npt
from crash_workload import Fields, State, db_id, frozen, int_id, str_id

DIM = 16
N_SST = 1600
KINDS = ("flat", "hnsw")
ID_TYPES = ("int", "str")
FIXTURE_SEED = 20261128
SELF_QUERIES = 20
QUERIES = 4

Op = Tuple[str, Any]


def _fields(i: int, version: int) -> Tuple[Fields, List[str]]:
    return (
        {"i": i, "v": version, "s": "x" * (i % 40), "f": i / 7.0, "b": i % 2 == 0},
        [f"t{i % 5}", f"v{version}"],
    )


def _document(i: int, version: int, id_type: str) -> Optional[str]:
    """The document of id ``i`` at ``version`` (none on int ids and on every 11th id)."""
    if id_type == "int" or i % 11 == 0:
        return None
    return f"document {i} v{version}: ü€😀 " + "ж" * (i % 60)


def fixture_ops(id_type: str = "int") -> Tuple[Op, List[Op]]:
    """(the first bulk_add, the ops left in the write-ahead log). Ids are ints here;
    ``_run_op`` gives them to a string-id database as ``str_id``. The random draws do
    not depend on ``id_type``: both fixtures hold the same vectors."""
    rng = np.random.default_rng(FIXTURE_SEED)
    vecs = rng.standard_normal((N_SST, DIM), dtype=np.float32)

    def docs(ids: List[int]) -> List[Optional[str]]:
        return [_document(i, 0, id_type) for i in ids]

    first: Op = (
        "bulk_add",
        (
            list(range(N_SST)),
            vecs,
            [_fields(i, 0) for i in range(N_SST)],
            docs(list(range(N_SST))),
        ),
    )
    wal: List[Op] = []
    next_id = N_SST
    for b in range(16):
        ids = list(range(next_id, next_id + 25))
        next_id += 25
        wal.append(
            (
                "bulk_add",
                (
                    ids,
                    rng.standard_normal((25, DIM), dtype=np.float32),
                    [_fields(i, 0) for i in ids],
                    docs(ids),
                ),
            )
        )
        if b % 2 == 1:
            i = int(rng.integers(N_SST))
            kind = ("update", "upsert", "remove", "bulk_remove")[b // 2 % 4]
            if kind == "update":
                v = rng.standard_normal(DIM, dtype=np.float32)
                wal.append(("update", (i, v, _fields(i, 1), _document(i, 1, id_type))))
            elif kind == "upsert":
                v = rng.standard_normal(DIM, dtype=np.float32)
                wal.append(("upsert", (i + 1, v, _document(i + 1, 2, id_type))))
            elif kind == "remove":
                wal.append(("remove", i + 2))
            else:
                wal.append(("bulk_remove", [i + 3, i + 4, i + 5]))
    return first, wal


def _apply(model: Dict[int, State], op: Op) -> None:
    name, arg = op
    if name == "bulk_add":
        ids, vecs, metas, docs = arg
        for i, v, (f, tg), doc in zip(ids, vecs, metas, docs):
            model[i] = (v.astype("<f4").tobytes(), *frozen(f, tg), doc)
    elif name == "update":
        i, v, (f, tg), doc = arg
        # A document of None keeps the stored one.
        model[i] = (v.astype("<f4").tobytes(), *frozen(f, tg), model[i][3] if doc is None else doc)
    elif name == "upsert":
        i, v, doc = arg
        old = model[i]
        model[i] = (v.astype("<f4").tobytes(), old[1], old[2], old[3] if doc is None else doc)
    elif name == "remove":
        model.pop(arg, None)
    elif name == "bulk_remove":
        for i in arg:
            model.pop(i, None)
    else:
        raise ValueError(name)


def states(id_type: str = "int") -> List[Dict[int, State]]:
    """The state after the first bulk_add and after each op of the log: 25 states, the
    last of which is the fixture's."""
    first, wal = fixture_ops(id_type)
    model: Dict[int, State] = {}
    _apply(model, first)
    out = [dict(model)]
    for op in wal:
        _apply(model, op)
        out.append(dict(model))
    return out


def digest(state: Dict[int, State]) -> str:
    h = hashlib.sha256()
    for i in sorted(state):
        h.update(repr((i, state[i])).encode())
    return h.hexdigest()


def _run_op(db: Any, op: Op) -> None:
    from nusterdb import Metadata

    def meta(ft: Tuple[Fields, List[str]]) -> Metadata:
        return Metadata.with_data(ft[0], tags=ft[1])

    id_type = db.config.id_type

    def key(i: int) -> Union[int, str]:
        return db_id(i, id_type)

    name, arg = op
    if name == "bulk_add":
        ids, vecs, metas, docs = arg
        documents = docs if id_type == "str" else None
        db.bulk_add([key(i) for i in ids], vecs, [meta(m) for m in metas], documents=documents)
    elif name == "update":
        i, v, m, doc = arg
        db.update(key(i), v, meta(m), document=doc, merge=False)  # the model replaces
    elif name == "upsert":
        db.upsert(key(arg[0]), arg[1], document=arg[2])
    elif name == "remove":
        assert db.remove(key(arg))
    elif name == "bulk_remove":
        assert db.bulk_remove([key(i) for i in arg]) == len(arg)


def build_fixture(path: Path, kind: str, id_type: str = "int") -> None:
    """Writes the fixture database of ``kind`` and ``id_type`` at ``path`` (see the
    module doc)."""
    from nusterdb import DatabaseConfig, NusterDB

    first, wal = fixture_ops(id_type)
    with NusterDB(str(path), DatabaseConfig(DIM, index_type=kind, id_type=id_type)) as db:
        _run_op(db, first)
    with NusterDB.open(str(path)) as db:
        for op in wal:
            _run_op(db, op)


# ------------------------------------------------------------------ the cases


def fixture_files(fixtures: Path) -> List[Tuple[str, str]]:
    """Every (kind, file relative to the database) of both fixtures, sorted."""
    out = []
    for kind in KINDS:
        root = fixtures / kind
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out.append((kind, str(p.relative_to(root))))
    return out


Plan = Dict[str, Union[str, int]]


def case_rng(seed: int, case: int, salt: int) -> np.random.Generator:
    """The random source of one case (controls have negative numbers)."""
    return np.random.default_rng([seed, case + 16, salt])


def case_plan(files: Sequence[Tuple[str, str]], seed: int, case: int) -> Plan:
    """What case ``case`` damages, and how: every file gets truncations to 0, half and
    all but one byte, a random replacement, then random byte flips."""
    kind, name = files[case % len(files)]
    variant = case // len(files)
    rng = case_rng(seed, case, 0)
    how = (
        ["truncate0", "truncate_half", "truncate_minus1", "replace"][variant]
        if variant < 4
        else "flip"
    )
    mode = "ro" if rng.random() < 0.25 else "rw"
    plan: Plan = {"case": case, "kind": kind, "file": name, "how": how, "mode": mode}
    if how == "flip":
        plan["flips"] = int(rng.choice([1, 1, 2, 4, 16]))
    return plan


def damage(path: Path, plan: Plan, seed: int) -> str:
    """Applies ``plan`` to the file under ``path``; returns a description."""
    target = path / str(plan["file"])
    data = bytearray(target.read_bytes())
    size = len(data)
    rng = case_rng(seed, int(plan["case"]), 1)
    how = plan["how"]
    if how == "truncate0":
        new = b""
    elif how == "truncate_half":
        new = bytes(data[: size // 2])
    elif how == "truncate_minus1":
        new = bytes(data[: max(size - 1, 0)])
    elif size == 0:
        # Nothing to replace or flip in an empty file: give it random content instead.
        new = rng.bytes(int(rng.integers(1, 65)))
        how = f"{how}: empty file filled with {len(new)} random bytes"
    elif how == "replace":
        new = rng.bytes(size)
    elif how in ("tamper", "tamper_document"):
        return str(how)
    else:
        positions = sorted(int(p) for p in rng.integers(0, size, size=int(plan["flips"])))
        for p in positions:
            data[p] ^= int(rng.integers(1, 256))
        new = bytes(data)
        how = f"flip at {positions[:16]}"
    target.write_bytes(new)
    return f"{how} ({size} -> {len(new)} bytes)"


def tree_hash(path: Path) -> Dict[str, str]:
    """Content hashes of the files under ``path``, RocksDB's info logs left out (any open
    attempt appends to them)."""
    out: Dict[str, str] = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("LOG"):
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Expected:
    """The states a damaged copy may open with."""

    def __init__(self, id_type: str = "int") -> None:
        self.id_type = id_type
        self.states = states(id_type)
        self.digests = [digest(s) for s in self.states]
        self.final: Dict[int, Set[Optional[State]]] = {}
        self.any_prefix: Dict[int, Set[Optional[State]]] = {}
        ids = set().union(*(set(s) for s in self.states))
        for i in ids:
            self.final[i] = {self.states[-1].get(i)}
            self.any_prefix[i] = {s.get(i) for s in self.states}


def _true_distance(a: npt.NDArray[np.float32], q: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(((a.astype(np.float64) - q.astype(np.float64)) ** 2).sum()))


def _int_id(key: Union[int, str]) -> int:
    """The workload's int id of ``key``; -1 (an id never stored) for a string the
    fixture never wrote."""
    try:
        return int_id(key)
    except (ValueError, IndexError):
        return -1


def ints(hits: Sequence[Tuple[Union[int, str], float]]) -> List[Tuple[int, float]]:
    """Search hits with the workload's int ids."""
    return [(_int_id(k), d) for k, d in hits]


def search(
    db: Any,
    q: npt.NDArray[np.float32],
    got: Dict[int, State],
    wrong: List[str],
    flt: Optional[Dict[str, Any]] = None,
    unreadable: AbstractSet[int] = frozenset(),
) -> List[Tuple[int, float]]:
    """``search(q, k=10)`` with int ids; on string ids through ``include=["metadata",
    "document"]``, each hit's metadata and document checked against ``got`` (what
    ``get_metadata``/``get_document`` returned; an id in ``unreadable``, whose reads
    raised a typed error, is not checked)."""
    if db.config.id_type == "int":
        return ints(db.search(q, k=10, filter=flt))
    out = []
    for h in db.search(q, k=10, filter=flt, include=["metadata", "document"]):
        i = _int_id(h.id)
        st = got.get(i)
        if st is None and i in unreadable:
            pass
        elif st is None:
            wrong.append(f"search returned id {h.id!r}, which was not read")
        elif h.metadata is None or frozen(h.metadata.to_dict(), h.metadata.tags()) != st[1:3]:
            wrong.append(f"search hit {h.id!r}: metadata differs from get_metadata")
        elif h.document != st[3]:
            wrong.append(f"search hit {h.id!r}: document {h.document!r:.60} != get_document")
        out.append((i, h.distance))
    return out


def check_open(path: Path, plan: Plan, expected: Expected, seed: int) -> Dict[str, Any]:
    """Opens ``path`` as ``plan`` says and checks every answer; the outcome as a dict."""
    import nusterdb
    from db_helpers import assert_hits_match

    wal_damage = str(plan["file"]).endswith(".log")
    allowed_digests = expected.digests if wal_damage else expected.digests[-1:]
    allowed = expected.any_prefix if wal_damage else expected.final
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            db = nusterdb.NusterDB.open(str(path), read_only=plan["mode"] == "ro")
    except nusterdb.NusterDBError as e:
        return {"outcome": "error", "type": type(e).__name__, "msg": str(e)[:300]}
    except Exception as e:
        return {"outcome": "untyped", "type": type(e).__name__, "msg": str(e)[:300]}
    except BaseException as e:  # PanicException derives from BaseException
        return {"outcome": "panic", "type": type(e).__name__, "msg": str(e)[:300]}
    wrong: List[str] = []
    read_errors = 0
    approx_misses = 0
    prefix = -1
    rng = case_rng(seed, int(plan["case"]), 2)
    try:
        with db:
            strs = expected.id_type == "str"
            if db.config.id_type != expected.id_type:
                wrong.append(f"id_type {db.config.id_type!r}, want {expected.id_type!r}")
            keys = db.list_ids()
            if db.count() != len(keys):
                wrong.append(f"count {db.count()} but {len(keys)} ids listed")
            got: Dict[int, State] = {}
            unreadable: Set[int] = set()
            # What get/get_metadata returned per listed id, for the get_many comparison.
            read: Dict[Union[int, str], Tuple[int, Any]] = {}
            for k in keys:
                try:
                    # A string id must be exactly one the fixture wrote.
                    i = int_id(k)
                except (ValueError, IndexError):
                    wrong.append(f"listed id {k!r:.80} the fixture never wrote")
                    continue
                try:
                    v = db.get(k)
                    m = db.get_metadata(k)
                    doc = db.get_document(k) if strs else None
                except nusterdb.NusterDBError:
                    # A listed id whose record cannot be read: the damage is reported
                    # (typed) by the read; a search may still return the id.
                    read_errors += 1
                    unreadable.add(i)
                    continue
                if v is None or m is None:
                    wrong.append(
                        f"listed id {k!r} has vector {v is not None}, metadata {m is not None}"
                    )
                    continue
                st: State = (
                    v.to_numpy().astype("<f4").tobytes(),
                    *frozen(m.to_dict(), m.tags()),
                    doc,
                )
                if st not in allowed.get(i, {None}):
                    wrong.append(f"id {k!r}: a value the fixture never held: {st!r:.200}")
                got[i] = st
                read[k] = (i, m)
            if strs and read_errors == 0:
                # get_many (every listed id, and some absent ones) agrees with the reads.
                absent = [db_id(i, "str") for i in range(N_SST, N_SST + 3)] + ["t0-é-x"]
                asked = list(reversed(keys)) + [k for k in absent if k not in keys]
                try:
                    many = db.get_many(asked, include=["vector", "metadata", "document"])
                except nusterdb.NusterDBError:
                    read_errors += 1
                else:
                    want_ids = [k for k in reversed(keys) if k in read]
                    states = [got[read[k][0]] for k in want_ids]
                    if many["ids"] != want_ids:
                        wrong.append(f"get_many found {len(many['ids'])} of {len(want_ids)} ids")
                    elif many["vectors"].astype("<f4").tobytes() != b"".join(
                        st[0] for st in states
                    ):
                        wrong.append("get_many returned a vector get did not")
                    elif many["documents"] != [st[3] for st in states]:
                        wrong.append("get_many returned a document get_document did not")
                    elif many["metadatas"] != [read[k][1] for k in want_ids]:
                        wrong.append("get_many returned metadata get_metadata did not")
            if read_errors == 0:
                d = digest(got)
                if d in allowed_digests:
                    prefix = expected.digests.index(d)
                else:
                    missing = sorted(set(expected.states[-1]) - set(got))
                    extra = sorted(set(got) - set(expected.states[-1]))
                    wrong.append(
                        f"the state is no {'prefix' if wal_damage else 'copy'} of the fixture: "
                        f"{len(got)} ids, missing {missing[:8]} ({len(missing)}), "
                        f"extra {extra[:8]} ({len(extra)})"
                    )
            if got:
                gids = sorted(got)
                # Ties come in the database's id order: the strings' on string ids.
                str_ids = db.config.id_type == "str"
                tie = (lambda i: str_id(i).encode()) if str_ids else None
                base = np.stack([np.frombuffer(got[i][0], dtype="<f4") for i in gids])
                pos = {i: p for p, i in enumerate(gids)}
                for _ in range(QUERIES):
                    q = rng.standard_normal(DIM).astype(np.float32)
                    try:
                        hits = search(db, q, got, wrong, unreadable=unreadable)
                    except nusterdb.NusterDBError:
                        read_errors += 1
                        continue
                    if db.index_type() == "flat" and read_errors == 0:
                        try:
                            assert_hits_match(hits, base, gids, q, 10, "euclidean", tie_key=tie)
                        except AssertionError as e:
                            wrong.append(f"flat search differs from brute force: {e}"[:300])
                    else:
                        if len(hits) != min(10, len(gids)):
                            wrong.append(f"search returned {len(hits)} of {min(10, len(gids))}")
                        for i, dist in hits:
                            if i in unreadable:
                                continue
                            if i not in pos:
                                wrong.append(f"search returned id {i}, which is not stored")
                            elif not math.isclose(
                                dist, _true_distance(base[pos[i]], q), rel_tol=1e-4, abs_tol=1e-5
                            ):
                                wrong.append(f"search reported id {i} at {dist}")
                        if [x for _, x in hits] != sorted(x for _, x in hits):
                            wrong.append(f"search results not sorted: {hits}")
                for p in rng.choice(len(gids), size=min(SELF_QUERIES, len(gids)), replace=False):
                    i = gids[int(p)]
                    try:
                        hits = ints(db.search(base[int(p)], k=1))
                    except nusterdb.NusterDBError:
                        read_errors += 1
                        continue
                    if not hits or hits[0][0] != i:
                        # HNSW misses a few self-queries on a sound graph too (recall; see
                        # test_crash.self_query_misses): an exhaustive search must not.
                        approx_misses += 1
                        hits = ints(db.search(base[int(p)], k=1, ef_search=len(gids) + 16))
                        if not hits or hits[0][0] != i:
                            wrong.append(f"self-query of id {i} found {hits} exhaustively")
                flt = {"b": True}
                elig = [p for p, i in enumerate(gids) if ("b", "bool", True) in got[i][1]]
                if db.index_type() == "flat" and read_errors == 0:
                    q = rng.standard_normal(DIM).astype(np.float32)
                    try:
                        assert_hits_match(
                            search(db, q, got, wrong, flt, unreadable),
                            base[elig],
                            [gids[p] for p in elig],
                            q,
                            10,
                            "euclidean",
                            tie_key=tie,
                        )
                    except nusterdb.NusterDBError:
                        read_errors += 1
                    except AssertionError as e:
                        wrong.append(f"filtered search differs from brute force: {e}"[:300])
    except nusterdb.NusterDBError:
        # A typed error while reading a damaged database is an allowed answer.
        read_errors += 1
    except Exception as e:
        return {"outcome": "untyped", "type": type(e).__name__, "msg": str(e)[:300]}
    except BaseException as e:
        return {"outcome": "panic", "type": type(e).__name__, "msg": str(e)[:300]}
    return {
        "outcome": "open",
        "warnings": [f"{w.category.__name__}: {w.message}"[:200] for w in caught],
        "prefix": prefix,
        "read_errors": read_errors,
        "approx_misses": approx_misses,
        "wrong": wrong[:5],
        "nwrong": len(wrong),
    }


def run_case(
    fixtures: Path,
    work: Path,
    files: Sequence[Tuple[str, str]],
    seed: int,
    case: int,
    expected: Expected,
) -> Dict[str, Any]:
    """Copies, damages, opens and checks one case; the result as a dict."""
    if case < 0:
        # Controls: -1/-2 the pristine flat/hnsw fixture (must open exactly), -3/-4 one
        # vector changed through the API, -5/-6 (string ids) one document changed (must
        # be reported wrong: the checker can fail).
        kind = KINDS[(-case - 1) % 2]
        plan: Plan = {
            "case": case,
            "kind": kind,
            "file": "-",
            "how": "pristine" if case >= -2 else "tamper" if case >= -4 else "tamper_document",
            "mode": "rw",
        }
    else:
        plan = case_plan(files, seed, case)
    dst = work / f"case{case}"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(fixtures / str(plan["kind"]), dst)
    if plan["how"] == "pristine":
        what = "no damage"
    elif plan["how"] == "tamper":
        import nusterdb

        with nusterdb.NusterDB.open(str(dst)) as db:
            db.update(db_id(5, expected.id_type), [9.0] * DIM)
        what = "vector of id 5 changed through the API"
    elif plan["how"] == "tamper_document":
        import nusterdb

        with nusterdb.NusterDB.open(str(dst)) as db:
            db.update(db_id(5, expected.id_type), document="not what was written")
        what = "document of id 5 changed through the API"
    else:
        what = damage(dst, plan, seed)
    before = tree_hash(dst)
    result = check_open(dst, plan, expected, seed)
    result.update(plan)
    result["damage"] = what
    if result["outcome"] != "open":
        after = tree_hash(dst)
        result["modified"] = sorted(
            k for k in set(before) | set(after) if before.get(k) != after.get(k)
        )
    shutil.rmtree(dst, ignore_errors=True)
    return result


def main(argv: Sequence[str]) -> None:
    fixtures, work, seed, id_type = Path(argv[0]), Path(argv[1]), int(argv[2]), argv[3]
    work.mkdir(parents=True, exist_ok=True)
    files = fixture_files(fixtures)
    expected = Expected(id_type)
    print("ready", flush=True)
    for line in sys.stdin:
        case = int(line)
        sys.stderr.write(f"### case {case}\n")
        sys.stderr.flush()
        print(f"start {case}", flush=True)
        result = run_case(fixtures, work, files, seed, case, expected)
        print("done " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
