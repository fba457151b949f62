"""Seals and the change log (RELIABILITY.md "T1 seals", T10; TECHNICAL_DOCS.md "Seals
and the change log").

* kill -9 while a child writes atomic batches and seals every batch or two (killed at a
  random time after it is ready in odd cycles, 0-4 ms after the start of its 1st-5th
  seal in even ones, so many kills land mid-seal): every acknowledged batch is there
  exactly, the batch in flight is all or nothing, at most one
  seal's files remain after a writer open, the open reads the seal, ``verify`` is healthy;
* an open reads the seal and replays exactly the keys written since it;
* a missing or damaged segment file makes the open read every record (named in
  ``refused``), with the contents exact, and the next open reads segments again; but a
  missing or damaged IVF lists file only makes the open train the lists again (the same
  answers, an ``IndexRebuiltWarning``) and seal at once;
* a follower's ``refresh()`` follows the log, also after the writer sealed twice past
  it and after ``clear()``, while other threads search it;
* a format-1 database read by a writer stays as it is; its first write moves it to
  format 3 and the close seals it.

Children run ``seal_worker.py``; the kill cycles per variant come from
``NUSTERDB_SEAL_CRASH_CYCLES`` (default 10), so a longer run needs no other code. IVF
databases hold clustered vectors (``seal_worker.CLUSTERED``) and have lists (they reach
1,024 rows), and their searches are checked as recall@10 >= 0.95 at the default nprobe.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
import pytest
from crash_workload import Fields, db_ids, int_id, str_id
from db_helpers import assert_hits_match, matches
from nusterdb import DatabaseConfig, IndexRebuiltWarning, NusterDB, StorageConfiguration
from proc_helpers import Child, env_int, wal_format_markers
from seal_worker import (
    BASE_ROWS,
    CLUSTERED,
    DIM,
    MAX_ROWS,
    TARGET,
    State,
    apply_batch,
    apply_tail,
    base_rows,
    draw,
    frozen,
    parse,
    tail_ops,
)
from test_crash import kill_after

WORKER = str(Path(__file__).resolve().with_name("seal_worker.py"))
DATA = Path(__file__).resolve().parents[1] / "data"
CYCLES = env_int("NUSTERDB_SEAL_CRASH_CYCLES", 10)
SEGMENT = re.compile(r"^segment-([0-9a-f]+)\.(vectors|maps|graph|codes|lists)$")

#: (index type, id type) of the variants: HNSW with string ids and documents, flat and
#: IVF with int ids.
VARIANTS = [
    ("hnsw", "str"),
    ("flat", "int"),
    ("ivf", "int"),
    ("ivf-rabitq", "int"),
    ("ivf-disk", "int"),
]
VARIANT_IDS = ["hnsw-str", "flat-int", "ivf-int", "ivf-rabitq-int", "ivf-disk-int"]
#: The rows an IVF database of the kill test starts with: lists from the start (1,024
#: rows on), and the workload's floor (it only adds below ``TARGET // 2 + MAX_ROWS``, so a
#: remove never takes it under ``TARGET // 2``).
IVF_START_ROWS = TARGET // 2

Model = Dict[int, State]


def config(kind: str, id_type: str) -> DatabaseConfig:
    """``kind`` is an index type, "ivf-rabitq": IVF lists of 1-bit RaBitQ codes (saved in
    the lists file, no file of their own), or
    "ivf-disk": those opened with ``vectors="disk"`` (the rows left in the seal's file)."""
    # sync_writes: an acknowledged batch is durable, so the check below is exact.
    return DatabaseConfig(
        DIM,
        index_type=index_of(kind),
        quantization="rabitq" if kind in ("ivf-rabitq", "ivf-disk") else None,
        id_type=id_type,
        vectors=vectors_of(kind) or "mmap",
        storage_config=StorageConfiguration(sync_writes=True),
    )


def vectors_of(kind: str) -> Optional[str]:
    """The ``vectors=`` a variant's opens pass (None: the default)."""
    return "disk" if kind == "ivf-disk" else None


def worker_env(kind: str) -> Optional[Dict[str, str]]:
    """The environment of a worker on a variant's database (it opens with
    ``NUSTERDB_SEAL_VECTORS`` as ``vectors=``)."""
    mode = vectors_of(kind)
    return None if mode is None else {**os.environ, "NUSTERDB_SEAL_VECTORS": mode}


def index_of(kind: str) -> str:
    """The index type of a variant's ``kind``."""
    return kind.split("-")[0]


def segment_files(path: Path) -> List[str]:
    """The names of the segment files (and their temporaries) in ``path``."""
    return sorted(p.name for p in path.iterdir() if p.name.startswith("segment-"))


def one_seal_files(path: Path, kind: str) -> str:
    """Asserts ``path`` holds exactly one seal's files (two on a flat database, three on
    IVF with lists, as every IVF database here has, four on HNSW with the default
    euclidean metric) and, on HNSW, the vector and codes files of the earlier seals its
    parts keep, nothing else named ``segment-*``; returns the seal id."""
    names = segment_files(path)
    matched = [SEGMENT.match(n) for n in names]
    assert all(matched), f"unexpected segment files: {names}"
    by_id: Dict[str, Set[str]] = {}
    for m in matched:
        if m:
            by_id.setdefault(m.group(1), set()).add(m.group(2))
    owners = [i for i, kinds in by_id.items() if "maps" in kinds]
    assert len(owners) == 1, f"files of {len(owners)} seals: {names}"
    want = {
        "hnsw": {"vectors", "maps", "graph", "codes"},
        "ivf": {"vectors", "maps", "lists"},
    }.get(index_of(kind), {"vectors", "maps"})
    assert by_id[owners[0]] == want, names
    parts = [kinds for i, kinds in by_id.items() if i != owners[0]]
    assert kind == "hnsw" or not parts, names
    assert all(kinds == {"vectors", "codes"} for kinds in parts), names
    return owners[0]


def open_quietly(path: Path, kind: str = "") -> NusterDB:
    """Opens ``path`` as the writer (as variant ``kind`` opens); any warning (an
    ``IndexRebuiltWarning`` above all) fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = NusterDB.open(str(path), vectors=vectors_of(kind))
    if vectors_of(kind) == "disk" and db.load_source()["source"] == "segments":
        # The rows were left in the seal's file (mapped), not read into the lists.
        assert db.stats().mapped_bytes > 0, db.stats()
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    return db


def read_all(db: NusterDB) -> Model:
    """Every record of ``db`` as a :data:`seal_worker.State` by int id, through
    ``get_many`` (its vectors, metadata and documents agree with ``get`` and friends:
    test_crash checks that)."""
    strs = db.config.id_type == "str"
    keys = db.list_ids()
    include = ["vector", "metadata", "document"] if strs else ["vector", "metadata"]
    got = db.get_many(keys, include=include)
    assert got["ids"] == keys
    out: Model = {}
    for p, k in enumerate(keys):
        m = got["metadatas"][p]
        assert m is not None, k
        doc = got["documents"][p] if strs else None
        out[int_id(k)] = (got["vectors"][p].astype("<f4").tobytes(), frozen(m.to_dict()), doc)
    return out


def assert_same(got: Model, want: Model, where: str) -> None:
    if got == want:
        return
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(i for i in set(got) & set(want) if got[i] != want[i])
    raise AssertionError(
        f"{where}: {len(missing)} missing {missing[:10]}, {len(extra)} extra {extra[:10]}, "
        f"{len(changed)} changed {changed[:10]}"
    )


def matrix(model: Model) -> Tuple[List[int], np.ndarray]:
    ids = sorted(model)
    rows = [np.frombuffer(model[i][0], dtype="<f4") for i in ids]
    return ids, np.stack(rows) if rows else np.zeros((0, DIM), np.float32)


def query_for(db: NusterDB, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A query: N(0, 1), or on clustered rows (IVF) a stored row moved by 0.1·N(0, 1), as
    test_ivf's queries."""
    query = rng.standard_normal(DIM)
    if db.config.index_type in CLUSTERED and len(base):
        query = base[int(rng.integers(len(base)))] + 0.1 * query
    return query.astype(np.float32)


def check_searches(db: NusterDB, model: Model, rng: np.random.Generator, where: str) -> float:
    """Flat: 5 searches equal brute force. HNSW and IVF (default nprobe): recall@10
    against brute force over 30 queries (returned). Either way every hit is a stored id."""
    ids, base = matrix(model)
    strs = db.config.id_type == "str"
    recall_hits = wanted = 0
    for _q in range(5 if db.is_flat() else 30):
        query = query_for(db, base, rng)
        got = [(int_id(i), d) for i, d in db.search(query, k=10)]
        assert all(i in model for i, _ in got), f"{where}: a hit is not a stored id: {got}"
        if db.is_flat():
            tie = (lambda i: str_id(i).encode()) if strs else None
            assert_hits_match(got, base, ids, query, 10, "euclidean", where, tie_key=tie)
        else:
            d = ((base - query) ** 2).sum(axis=1)
            truth = {ids[int(p)] for p in np.argsort(d, kind="stable")[:10]}
            recall_hits += len(truth & {i for i, _ in got})
            wanted += len(truth)
    return recall_hits / wanted if wanted else 1.0


# ============================================================== kill -9 during seals


@pytest.mark.parametrize(("kind", "id_type"), VARIANTS, ids=VARIANT_IDS)
def test_kill_9_during_seals_loses_nothing_and_keeps_one_seal(
    tmp_path: Path, seed: int, rng: np.random.Generator, kind: str, id_type: str
) -> None:
    path = tmp_path / "db"
    model: Model = {}
    next_batch = 0
    if index_of(kind) == "ivf":
        # Lists (and a lists file in every seal) from the start: the workload grows from
        # nothing, and a kill could come before it reached 1,024 rows. The batches' fresh
        # ids begin past these (seal_worker: 1 + first batch * MAX_ROWS).
        model = write_base(path, kind, id_type, seed, n=IVF_START_ROWS)
        next_batch = -(-IVF_START_ROWS // MAX_ROWS)
    else:
        NusterDB(str(path), config(kind, id_type)).close()
    # A seal's commit was acknowledged (or a parent's close sealed, as write_base's did).
    sealed = bool(model)
    kills = mid_seal = lost = partial = in_flight_applied = batches = 0
    sources: Dict[str, int] = {}
    for cycle in range(CYCLES):
        seal_every = 1 + (cycle // 2) % 2
        child = Child(
            WORKER,
            "batches",
            str(path),
            str(seed),
            str(next_batch),
            str(seal_every),
            is_file=True,
            env=worker_env(kind),
        )
        child.expect("ready")
        if cycle % 2 == 0:
            # Aimed: within a few ms of the start of a seal (one of these takes ~1-4 ms
            # on an SSD; the 0-4 ms window lands about half the kills inside one).
            for _ in range(int(rng.integers(1, 6))):
                child.expect("S ")
            delay = float(rng.uniform(0.0, 0.004))
        else:
            delay = float(rng.uniform(0.15, 0.9))
        lines = kill_after(child, delay)
        kills += 1
        assert child.proc.returncode == -signal.SIGKILL
        logged = parse(lines)
        assert logged, f"cycle {cycle}: the child logged no batch in {delay:.2f}s"
        in_seal = bool(lines) and lines[-1].startswith("S ")
        mid_seal += in_seal
        sealed = sealed or any(ln.startswith("SA ") for ln in lines)
        strs = id_type == "str"
        flight: Optional[Dict[int, Optional[State]]] = None
        for b, op, ids, acked in logged:
            changes = apply_batch(model, seed, b, op, ids, strs, index_of(kind) in CLUSTERED)
            if acked:
                for i, s in changes.items():
                    if s is None:
                        model.pop(i, None)
                    else:
                        model[i] = s
            else:
                assert b == logged[-1][0], f"batch {b} unacknowledged but not the last"
                flight = changes
        batches += sum(1 for *_, a in logged if a)
        next_batch = logged[-1][0] + 1

        db = open_quietly(path, kind)
        try:
            seal_id = one_seal_files(path, kind) if sealed or cycle > 0 else None
            if seal_id is None:
                assert len(segment_files(path)) <= 4, segment_files(path)
            source = db.load_source()
            sources[source["source"]] = sources.get(source["source"], 0) + 1
            if sealed or cycle > 0:
                # Cycle 0 killed before any seal committed may read records; from then on
                # a seal record always exists (the parent's close below seals too).
                assert source["source"] == "segments", (cycle, source)
            if index_of(kind) == "ivf":
                # The lists were read from the seal's lists file (open_quietly: no
                # IndexRebuiltWarning either).
                assert db.graph_load()["state"] == "not_persisted", (cycle, db.graph_load())
            got = read_all(db)
            with_flight = dict(model)
            for i, s in (flight or {}).items():
                if s is None:
                    with_flight.pop(i, None)
                else:
                    with_flight[i] = s
            if flight is not None and got == with_flight and with_flight != model:
                in_flight_applied += 1
                model = with_flight
            elif got != model:
                touched = set(flight or {})
                bad = {i for i in set(got) | set(model) if got.get(i) != model.get(i)}
                lost += len(bad - touched)
                partial += bool(bad & touched)
                assert_same(
                    got,
                    model,
                    f"cycle {cycle}: {len(bad - touched)} ids outside the in-flight batch "
                    f"and {len(bad & touched)} of its ids differ from the acknowledged state, "
                    f"which is not the state with the whole batch either; seed {seed}",
                )
            assert db.count() == len(model)
            recall = check_searches(db, model, rng, f"cycle {cycle}")
            least = 0.95 if index_of(kind) == "ivf" else 0.9
            assert recall >= least, f"cycle {cycle}: recall@10 {recall:.3f}"
        finally:
            db.close()
        sealed = True  # the close sealed what the open replayed
        report = NusterDB.verify(str(path))
        assert report["healthy"], report["problems"]
        print(
            f"cycle {cycle}: killed {delay:.3f}s after "
            f"{'a seal began' if cycle % 2 == 0 else 'ready'} "
            f"(seal every {seal_every}), "
            f"{len(logged)} batches logged, mid-seal {in_seal}, in flight "
            f"{flight is not None}, {len(model)} live, open from {source}"
        )
    print(
        f"seal crash [{kind}, {id_type} ids]: {kills} kills, {mid_seal} mid-seal, "
        f"{lost} lost, {partial} partial, {batches} acknowledged batches, "
        f"{in_flight_applied} in-flight batches applied whole, opens from {sources}; seed {seed}"
    )
    assert lost == 0
    assert partial == 0
    assert batches > 0


# ============================================================== open = seal + log tail


def write_base(path: Path, kind: str, id_type: str, seed: int, n: int = BASE_ROWS) -> Model:
    """Creates ``path`` with :func:`seal_worker.base_rows` and closes it (which seals);
    returns the model of its contents."""
    rows = base_rows(seed, n, index_of(kind) in CLUSTERED)
    strs = id_type == "str"
    model = {i: (v, m, doc if strs else None) for i, (v, m, doc) in rows.items()}
    ids = sorted(model)
    with NusterDB(str(path), config(kind, id_type)) as db:
        db.bulk_add(
            db_ids(ids, id_type),
            np.stack([np.frombuffer(model[i][0], dtype="<f4") for i in ids]),
            [{"i": i, "g": i % 3} for i in ids],
            documents=[model[i][2] for i in ids] if strs else None,
        )
    return model


@pytest.mark.parametrize(("kind", "id_type"), VARIANTS, ids=VARIANT_IDS)
def test_an_open_reads_the_seal_and_replays_only_the_tail(
    tmp_path: Path, seed: int, rng: np.random.Generator, kind: str, id_type: str
) -> None:
    path = tmp_path / "db"
    model = write_base(path, kind, id_type, seed)
    with open_quietly(path, kind) as db:
        assert db.load_source() == {"source": "segments", "replayed": 0}
        assert_same(read_all(db), model, "after a clean close")
    # A writer that never closes: the tail is only in the change log.
    child = Child(WORKER, "tail", str(path), str(seed), is_file=True, env=worker_env(kind))
    child.expect("ack")
    child.kill()
    assert child.proc.returncode == -signal.SIGKILL
    ops = tail_ops(seed, index_of(kind) in CLUSTERED)
    apply_tail(model, ops, id_type == "str")
    touched = len({i for _, i, _, _ in ops})
    assert touched == 100
    with open_quietly(path, kind) as db:
        assert db.load_source() == {"source": "segments", "replayed": touched}
        if index_of(kind) == "ivf":
            # The lists read from the seal, the tail's rows added to them.
            assert db.graph_load()["state"] == "not_persisted", db.graph_load()
        assert_same(read_all(db), model, "after the kill")
        recall = check_searches(db, model, rng, "after the kill")
        if kind != "flat":
            assert recall >= 0.95, f"recall@10 {recall:.3f}"
    with open_quietly(path, kind) as db:
        # The close sealed the replayed state.
        assert db.load_source() == {"source": "segments", "replayed": 0}
        assert_same(read_all(db), model, "reopened")
    print(f"tail [{kind}]: replayed {touched} keys, recall@10 {recall:.3f}")


# ============================================================== damaged segment files

DAMAGE = [
    ("hnsw", "str", "vectors"),
    ("hnsw", "str", "maps"),
    ("hnsw", "str", "graph"),
    ("hnsw", "str", "codes"),
    ("flat", "int", "vectors"),
    ("flat", "int", "maps"),
    ("ivf", "int", "vectors"),
    ("ivf", "int", "maps"),
    ("ivf-rabitq", "int", "vectors"),
    ("ivf-disk", "int", "vectors"),
]


@pytest.fixture(scope="module")
def sealed_bases(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Tuple[Path, Model]]:
    """One sealed database per variant (2,000 rows: an IVF one has lists), copied by each
    damage case."""
    out = {}
    for kind, id_type in VARIANTS:
        path = tmp_path_factory.mktemp("sealed") / f"{kind}-{id_type}"
        out[kind] = (path, write_base(path, kind, id_type, 11, n=2000))
    return out


def damage(victim: Path, how: str) -> None:
    """Deletes ``victim`` or flips a bit in its middle."""
    if how == "delete":
        victim.unlink()
    else:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["delete", "flip"])
@pytest.mark.parametrize(
    ("kind", "id_type", "part"), DAMAGE, ids=[f"{k}-{p}" for k, _, p in DAMAGE]
)
def test_a_damaged_segment_file_makes_the_open_read_every_record(
    tmp_path: Path,
    sealed_bases: Dict[str, Tuple[Path, Model]],
    kind: str,
    id_type: str,
    part: str,
    how: str,
) -> None:
    base, model = sealed_bases[kind]
    path = tmp_path / "db"
    shutil.copytree(base, path)
    seal_id = one_seal_files(path, kind)
    victim = path / f"segment-{seal_id}.{part}"
    damage(victim, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = NusterDB.open(str(path), vectors=vectors_of(kind))
    with db:
        source = db.load_source()
        assert source["source"] == "records", source
        assert victim.name in (source["refused"] or ""), source
        graph = db.graph_load()
        rebuilt = [w for w in caught if issubclass(w.category, IndexRebuiltWarning)]
        assert len(rebuilt) == len(caught), [str(w.message) for w in caught]
        if index_of(kind) in ("flat", "ivf"):
            # IVF: the lists trained from the records as a bulk insert trains them, which
            # is no rebuild (the lists file of the refused seal is not read).
            assert graph["state"] == "not_persisted", graph
            assert not caught
        elif part == "graph" and how == "flip":
            # The seal's graph file is damaged: the graph is built again from the vectors.
            assert graph["state"] == "rebuilt", graph
            assert victim.name in graph["reason"], graph
            assert len(rebuilt) == 1
            assert victim.name in str(rebuilt[0].message)
        elif part == "graph":
            # No graph file at all: built from the vectors, nothing to warn of.
            assert graph["state"] == "built", graph
            assert not caught
        else:
            # Vectors, maps or codes damaged: the intact graph file is matched to the
            # records.
            assert graph == {"state": "loaded", "reused": len(model), "inserted": 0, "removed": 0}
            assert not caught
        assert_same(read_all(db), model, f"{part} {how}")
        # The open sealed again at once: one fresh seal's files, the damaged one gone.
        assert one_seal_files(path, kind) != seal_id
    with open_quietly(path, kind) as db:
        assert db.load_source() == {"source": "segments", "replayed": 0}
        assert_same(read_all(db), model, f"{part} {how}, reopened")
    assert NusterDB.verify(str(path))["healthy"]


Answers = List[List[Tuple[Any, float]]]


def answers(db: NusterDB, queries: np.ndarray) -> Answers:
    return [db.search(q, k=10) for q in queries]


@pytest.mark.parametrize("kind", ["ivf", "ivf-rabitq", "ivf-disk"])
@pytest.mark.parametrize("how", ["delete", "flip"])
def test_a_damaged_ivf_lists_file_makes_the_open_train_the_lists_again(
    tmp_path: Path,
    sealed_bases: Dict[str, Tuple[Path, Model]],
    rng: np.random.Generator,
    how: str,
    kind: str,
) -> None:
    base, model = sealed_bases[kind]
    path = tmp_path / "db"
    shutil.copytree(base, path)
    with open_quietly(path, kind) as db:
        # Intact: the rows and the lists from the seal.
        assert db.load_source() == {"source": "segments", "replayed": 0}
        assert db.graph_load()["state"] == "not_persisted", db.graph_load()
        _, rows = matrix(model)
        queries = np.stack([query_for(db, rows, rng) for _ in range(30)])
        before = answers(db, queries)
        recall = check_searches(db, model, rng, "intact")
        assert recall >= 0.95, f"recall@10 {recall:.3f}"
    seal_id = one_seal_files(path, "ivf")
    victim = path / f"segment-{seal_id}.lists"
    damage(victim, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = NusterDB.open(str(path), vectors=vectors_of(kind))
    with db:
        # The seal's rows and maps are used; only the lists are trained again.
        assert db.load_source() == {"source": "segments", "replayed": 0}
        graph = db.graph_load()
        assert graph["state"] == "rebuilt", graph
        assert victim.name in graph["reason"], graph
        assert [w.category for w in caught] == [IndexRebuiltWarning], [
            f"{w.category.__name__}: {w.message}" for w in caught
        ]
        message = str(caught[0].message)
        assert message.startswith(
            "the IVF lists file was not usable and the lists were trained again"
        ), message
        assert victim.name in message, message
        assert_same(read_all(db), model, f"lists {how}")
        # The training is deterministic: the same lists, the same answers.
        assert answers(db, queries) == before
        # The open sealed again at once, with a lists file.
        assert one_seal_files(path, "ivf") != seal_id
    with open_quietly(path, kind) as db:
        assert db.load_source() == {"source": "segments", "replayed": 0}
        assert db.graph_load()["state"] == "not_persisted", db.graph_load()
        assert_same(read_all(db), model, f"lists {how}, reopened")
        assert answers(db, queries) == before
    one_seal_files(path, "ivf")
    assert NusterDB.verify(str(path))["healthy"]


def test_a_seal_removes_the_previous_seals_lists_file(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "db"
    write_base(path, "ivf", "int", seed, n=1100)
    with open_quietly(path) as db:
        first = one_seal_files(path, "ivf")
        db.add(10**6, np.zeros(DIM, np.float32))
        db.seal()
        assert one_seal_files(path, "ivf") != first


# ============================================================== followers


def compare_follower(
    writer: NusterDB,
    follower: NusterDB,
    model: Model,
    where: str,
    rng: Optional[np.random.Generator] = None,
) -> None:
    """The writer and the follower both hold exactly ``model``; counts and filtered
    counts agree with it. With ``rng``, an IVF follower's searches are checked too
    (recall@10 >= 0.95: its lists came from its replay of the log or the seal's lists
    file)."""
    assert_same(read_all(writer), model, f"{where}: writer")
    assert_same(read_all(follower), model, f"{where}: follower")
    assert follower.list_ids() == writer.list_ids()
    assert follower.count() == writer.count() == len(model)
    for flt in ({"g": 1}, {"$not": {"g": 2}}, {"u": {"$exists": True}}):
        want = sum(1 for _, m, _ in model.values() if matches(flt, {k: v for k, (_, v) in m}, []))
        assert follower.count(filter=flt) == writer.count(filter=flt) == want, (where, flt)
    if rng is not None and follower.config.index_type == "ivf":
        recall = check_searches(follower, model, rng, f"{where}: follower")
        assert recall >= 0.95, f"{where}: follower recall@10 {recall:.3f}"


class Writes:
    """Rounds of writes to a follower test's writer, mirrored in a model."""

    def __init__(self, writer: NusterDB, seed: int) -> None:
        self.db = writer
        self.seed = seed
        self.strs = writer.config.id_type == "str"
        self.clustered = writer.config.index_type in CLUSTERED
        self.model: Model = {}
        self.ever: Set[int] = set()
        self.fresh = 0
        self.rng = np.random.default_rng([seed, 4])

    def round(self, adds: int) -> None:
        """``adds`` new rows, removes ~10% of the stored ones, replaces the metadata of
        ~10% (update, merge=False)."""
        ids = list(range(self.fresh, self.fresh + adds))
        self.fresh += adds
        vs = draw(self.rng, adds, self.seed, self.clustered)
        metas: List[Fields] = [{"i": i, "g": i % 3} for i in ids]
        docs = [f"doc {i} ✓" for i in ids] if self.strs else None
        self.db.bulk_add(db_ids(ids, self.db.config.id_type), vs, metas, documents=docs)
        for r, i in enumerate(ids):
            self.model[i] = (
                vs[r].astype("<f4").tobytes(),
                frozen(metas[r]),
                docs[r] if docs else None,
            )
        self.ever.update(ids)
        live = sorted(self.model)
        picked = self.rng.permutation(len(live))
        gone = sorted(live[int(p)] for p in picked[: len(live) // 10])
        self.db.bulk_remove(db_ids(gone, self.db.config.id_type))
        for i in gone:
            del self.model[i]
        for p in picked[len(live) // 10 : len(live) // 5]:
            i = live[int(p)]
            meta: Fields = {"u": int(p), "g": (i + 1) % 3}
            self.db.update(db_ids([i], self.db.config.id_type)[0], metadata=dict(meta), merge=False)
            v, _, doc = self.model[i]
            self.model[i] = (v, frozen(meta), doc)


@pytest.mark.parametrize(("kind", "id_type"), VARIANTS, ids=VARIANT_IDS)
def test_a_followers_refresh_follows_the_log(
    tmp_path: Path, seed: int, rng: np.random.Generator, kind: str, id_type: str
) -> None:
    path = tmp_path / "db"
    writer = NusterDB(str(path), config(kind, id_type))
    follower = NusterDB.open(str(path), read_only=True, vectors=vectors_of(kind))
    try:
        w = Writes(writer, seed)
        w.round(1000)
        follower.refresh()
        compare_follower(writer, follower, w.model, "round 1", rng)
        w.round(300)
        follower.refresh()
        compare_follower(writer, follower, w.model, "round 2", rng)
        # Two seals with writes between them: the floor moves past the follower's
        # position, so its refresh cannot replay and must reload.
        w.round(200)
        writer.seal()
        w.round(200)
        writer.seal()
        w.round(50)
        follower.refresh()
        compare_follower(writer, follower, w.model, "after two seals", rng)
        writer.clear()
        w.model.clear()
        follower.refresh()
        compare_follower(writer, follower, w.model, "after clear", rng)
        w.round(400)
        follower.refresh()
        compare_follower(writer, follower, w.model, "after clear and writes", rng)
    finally:
        follower.close()
        writer.close()


def test_searches_on_a_follower_during_refresh_see_only_written_ids(
    tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "db"
    writer = NusterDB(str(path), config("hnsw", "str"))
    follower = NusterDB.open(str(path), read_only=True)
    w = Writes(writer, seed)
    w.round(500)
    stop = threading.Event()
    errors: List[BaseException] = []
    strangers: List[Any] = []
    searches = [0]

    def search() -> None:
        g = np.random.default_rng([seed, 5])
        try:
            while not stop.is_set():
                for i, _ in follower.search(g.standard_normal(DIM).astype(np.float32), k=10):
                    if int_id(i) not in w.ever:
                        strangers.append(i)
                searches[0] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=search, daemon=True) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for r in range(6):
            w.round(300)
            if r % 2:
                writer.seal()
                writer.seal()
                w.round(50)
                writer.seal()
            follower.refresh()
        stop.set()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive()
        compare_follower(writer, follower, w.model, "after the threaded rounds")
    finally:
        stop.set()
        follower.close()
        writer.close()
    assert not errors, errors
    assert not strangers, strangers[:10]
    assert searches[0] > 0
    print(f"follower: {searches[0]} searches during 6 refreshes, none wrong")


# ============================================================== format 1 stays format 1


def markers(path: Path, skip: Set[str]) -> List[int]:
    """The format markers written to the logs of ``path`` but those named in ``skip``."""
    return [
        v
        for log in sorted(path.glob("*.log"))
        if log.name not in skip
        for v in wal_format_markers(log)
    ]


def test_reading_a_format_1_database_changes_nothing_and_a_write_seals_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db"
    shutil.copytree(DATA / "format_v1_hnsw" / "db", path)
    logs = {p.name for p in path.glob("*.log")}
    assert markers(path, set()) == [1]
    query = np.linspace(-1, 1, 8).astype(np.float32)
    with open_quietly(path) as db:
        assert db.load_source() == {"source": "records", "refused": None}
        before = db.search(query, k=5)
        assert len(before) == 5
        n = db.count()
    # Read only: no marker written, no seal, the graph file of format 1 kept.
    assert markers(path, logs) == []
    assert segment_files(path) == []
    assert (path / "hnsw.graph").is_file()
    logs = {p.name for p in path.glob("*.log")}
    with open_quietly(path) as db:
        assert db.load_source() == {"source": "records", "refused": None}
        assert db.search(query, k=5) == before
        db.add(10**6, query, {"new": True})
        # The first write moves the database to format 3, in this session's log (so
        # the reading session had left it as it was: a format-3 store writes no marker).
        assert markers(path, logs) == [3]
    one_seal_files(path, "hnsw")
    with open_quietly(path) as db:
        assert db.load_source() == {"source": "segments", "replayed": 0}
        assert db.count() == n + 1
        got = db.get(10**6)
        assert got is not None
        assert got.to_numpy().tobytes() == query.tobytes()
    assert NusterDB.verify(str(path))["healthy"]
