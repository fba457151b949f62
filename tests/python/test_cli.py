"""The ``nusterdb`` command line: every command in-process through ``main([...])`` and
a few real runs of ``python -m nusterdb`` and the console script; import/export round
trips for every format against the rows put in (Hypothesis varies ids, vectors and
metadata), exported files read back with numpy / json / csv / pyarrow as the
reference; search against brute force; verify on clean and damaged databases; exit
codes and one-line errors."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import DatabaseConfig, NusterDB
from nusterdb.cli import main

Row = Tuple[Any, List[float], Dict[str, Any]]

try:
    import pyarrow
    import pyarrow.parquet

    HAVE_PYARROW = True
except ImportError:  # pragma: no cover - the test extra installs it
    HAVE_PYARROW = False

FORMATS = ["npy", "jsonl", "csv"] + (["parquet"] if HAVE_PYARROW else [])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def make_db(path: Path, rows: Sequence[Row], dim: int, index: str = "flat") -> None:
    with NusterDB(str(path), DatabaseConfig(dim, index_type=index)) as db:
        if rows:
            db.bulk_add(
                [r[0] for r in rows],
                np.asarray([r[1] for r in rows], dtype=np.float32),
                [r[2] for r in rows],
            )


def contents(path: Path) -> Dict[Any, Tuple[List[float], Dict[str, Any]]]:
    out = {}
    with NusterDB.open(str(path), read_only=True) as db:
        for i in db.list_ids():
            v = db.get(i)
            m = db.get_metadata(i)
            assert v is not None
            assert m is not None
            out[i] = (v.to_numpy().tolist(), m.to_dict())
    return out


text = st.characters(codec="utf-8", blacklist_characters="\x00")  # no NUL in CSV

# --- strategies: small rows with typed metadata fields (one type per field) ---------

# Multiples of 1/64: exact in float32, and a norm of 0 or at least 1/64 (in range).
f32 = st.integers(-(10**6), 10**6).map(lambda i: i / 64)
field_values = {
    "s": st.text(text, max_size=8),
    "i": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "f": st.floats(allow_nan=False, allow_infinity=False),
    "b": st.booleans(),
}


@st.composite
def row_sets(draw: st.DrawFn) -> Tuple[str, int, List[Row], List[Optional[str]]]:
    """(id type, dim, rows, documents)."""
    id_type = draw(st.sampled_from(["int", "str"]))
    dim = draw(st.integers(1, 5))
    if id_type == "int":
        ids: List[Any] = draw(
            st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=12, unique=True)
        )
    else:
        ids = draw(st.lists(st.text(text, min_size=1, max_size=6), min_size=1, max_size=12,
                            unique=True))  # fmt: skip
    rows: List[Row] = []
    docs: List[Optional[str]] = []
    for i in ids:
        vec = draw(st.lists(f32, min_size=dim, max_size=dim))
        meta = {}
        for key, values in field_values.items():
            if draw(st.booleans()):
                meta[key] = draw(values)
        rows.append((i, vec, meta))
        docs.append(draw(st.none() | st.text(text, max_size=8)))
    return id_type, dim, rows, docs


def make_rich_db(
    path: Path, id_type: str, dim: int, rows: Sequence[Row], docs: Sequence[Optional[str]]
) -> None:
    with NusterDB(str(path), DatabaseConfig(dim, id_type=id_type)) as db:
        db.bulk_add(
            [r[0] for r in rows],
            np.asarray([r[1] for r in rows], dtype=np.float32),
            [r[2] for r in rows],
            list(docs),
        )


Full = Dict[Any, Tuple[List[float], Dict[str, Any], Optional[str]]]


def full_contents(path: Path) -> Full:
    out = {}
    with NusterDB.open(str(path), read_only=True) as db:
        for i in db.list_ids():
            v, m = db.get(i), db.get_metadata(i)
            assert v is not None
            assert m is not None
            out[i] = (v.to_numpy().tolist(), m.to_dict(), db.get_document(i))
    return out


def expected(rows: Sequence[Row], docs: Sequence[Optional[str]]) -> Full:
    return {
        r[0]: (np.asarray(r[1], dtype=np.float32).tolist(), r[2], d)
        for r, d in sorted(zip(rows, docs), key=lambda x: x[0][0])
    }


def check_file(fmt: str, file: Path, want: Full, ids_file: Path) -> None:
    """The exported file, read with an independent reader, holds the rows in id order
    (ints ascending, strings by code point, which is their UTF-8 byte order)."""
    ids = list(want)
    vecs = [v for v, _, _ in want.values()]
    metas = [m for _, m, _ in want.values()]
    docs = [d for _, _, d in want.values()]
    if fmt == "npy":
        got = np.load(file)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.asarray(vecs, dtype=np.float32))
        assert np.load(ids_file).tolist() == ids
    elif fmt == "jsonl":
        lines = [json.loads(x) for x in file.read_text(encoding="utf-8").split("\n") if x]
        assert lines == [
            {"id": i, "vector": v, **({} if d is None else {"document": d}), **m}
            for i, v, m, d in zip(ids, vecs, metas, docs)
        ]
    elif fmt == "csv":
        with open(file, encoding="utf-8", newline="") as f:
            table = list(csv.DictReader(f))
        assert [t["id"] for t in table] == [str(i) for i in ids]
        assert [json.loads(t["vector"]) for t in table] == vecs
        for t, m, d in zip(table, metas, docs):
            cell = t.get("document", "")
            if d is None:
                assert cell == ""
            else:  # as is, or JSON-quoted when it would read back as something else
                assert cell == d or json.loads(cell) == d
            for key in field_values:
                if key not in m:
                    assert t.get(key, "") == ""
                elif key == "s" and not looks_like_json(m[key]):
                    assert t[key] == m[key]  # plain text stays plain
                else:
                    assert json.loads(t[key]) == m[key]
    else:
        table = pyarrow.parquet.read_table(file).to_pylist()
        assert [t["id"] for t in table] == ids
        assert [t["vector"] for t in table] == vecs
        for t, m, d in zip(table, metas, docs):
            assert t.get("document") == d
            assert {k: v for k, v in t.items() if k in field_values and v is not None} == m


def looks_like_json(s: str) -> bool:
    try:
        json.loads(s)
    except ValueError:
        return s == ""
    return True


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=8)
@given(data=row_sets())
def test_export_then_import_round_trips(
    fmt: str, data: Tuple[str, int, List[Row], List[Optional[str]]]
) -> None:
    id_type, dim, rows, docs = data
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "src"), Path(tmp, "dst")
        file, ids_file = Path(tmp, f"rows.{fmt}"), Path(tmp, "ids.npy")
        make_rich_db(src, id_type, dim, rows, docs)
        want = expected(rows, docs)
        assert full_contents(src) == want
        extra = ["--ids", str(ids_file)] if fmt == "npy" else []
        assert main(["export", str(src), str(file), *extra]) == 0
        check_file(fmt, file, want, ids_file)
        # CSV cells are untyped: the id kind is stated (jsonl, parquet and npy say it).
        kind = ["--id-type", id_type] if fmt == "csv" else []
        assert main(["import", str(dst), str(file), *extra, *kind]) == 0
        if fmt == "npy":  # vectors and ids only
            want = {k: (v, {}, None) for k, (v, _, _) in want.items()}
        assert full_contents(dst) == want
        with NusterDB.open(str(dst), read_only=True) as db:
            assert db.config.id_type == id_type


def test_import_npy_numbers_rows_from_id_start_and_creates_as_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((25, 6)).astype(np.float64)  # converted to float32
    np.save(tmp_path / "v.npy", vecs)
    db = tmp_path / "db"
    doc = run_json(
        capsys,
        "import", str(db), str(tmp_path / "v.npy"),
        "--id-start", "100", "--metric", "euclidean", "--index", "hnsw", "--batch-size", "10",
    )  # fmt: skip
    assert doc == {
        "path": str(db), "file": str(tmp_path / "v.npy"), "format": "npy", "created": True,
        "imported": 25, "batches": 3, "count": 25,
    }  # fmt: skip
    with NusterDB.open(str(db)) as h:
        assert h.config.index_type == "hnsw"
        assert h.config.distance_metric.name == "euclidean"
        assert h.list_ids() == list(range(100, 125))
        got = h.get(107)
        assert got is not None
        np.testing.assert_array_equal(got.to_numpy(), vecs[7].astype(np.float32))
    # Into the existing database: a clash is the core's DuplicateIdError, one line, exit 1.
    code, _out, err = run(capsys, "import", str(db), str(tmp_path / "v.npy"), "--id-start", "120")
    assert code == 1
    assert err.startswith("nusterdb: error: DuplicateIdError: ")
    assert "batch 1" in err
    assert "0 rows in 0 earlier batches" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    with NusterDB.open(str(db), read_only=True) as h:
        assert len(h) == 25  # the batch stored nothing


def test_import_batches_are_atomic_and_a_failure_names_the_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [{"id": i, "vector": [float(i), 1.0]} for i in range(10)]
    lines[7]["vector"] = [1.0, 2.0, 3.0]  # wrong dimension in the fourth batch of 2
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    code, _, err = run(capsys, "import", str(tmp_path / "db"), str(tmp_path / "r.jsonl"),
                       "--batch-size", "2")  # fmt: skip
    assert code == 1
    assert "batch 4" in err
    assert "nusterdb: error:" in err
    with NusterDB.open(str(tmp_path / "db"), read_only=True) as db:
        assert db.list_ids() == [0, 1, 2, 3, 4, 5]


def test_import_columns_by_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open(tmp_path / "t.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "emb", "colour", "size", "skip"])
        w.writerow(["5", "[1, 0]", "red", "3", "x"])
        w.writerow(["6", "[0, 1]", "", "4.5", "y"])
    code, _, err = run(
        capsys, "import", str(tmp_path / "db"), str(tmp_path / "t.csv"),
        "--id-column", "key", "--vector-column", "emb", "--metadata-columns", "colour,size",
    )  # fmt: skip
    assert code == 0, err
    assert contents(tmp_path / "db") == {
        5: ([1.0, 0.0], {"colour": "red", "size": 3}),
        6: ([0.0, 1.0], {"size": 4.5}),
    }
    # A missing id column is named.
    code, _, err = run(capsys, "import", str(tmp_path / "db2"), str(tmp_path / "t.csv"))
    assert code == 1
    assert "no id column 'id'" in err


def test_progress_bar_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "v.npy", np.ones((30, 3), dtype=np.float32))
    code, _, err = run(capsys, "import", str(tmp_path / "db"), str(tmp_path / "v.npy"),
                       "--progress", "--batch-size", "10")  # fmt: skip
    assert code == 0
    assert "30/30" in err
    assert "rows/s" in err
    assert "ETA" in err
    code, _, err = run(capsys, "export", str(tmp_path / "db"), str(tmp_path / "o.npy"))
    assert code == 0
    assert err == ""


def test_parquet_without_pyarrow_names_the_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db(tmp_path / "db", [(1, [1.0], {})], 1)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    code, _, err = run(capsys, "export", str(tmp_path / "db"), str(tmp_path / "o.parquet"))
    assert code == 1
    assert "pip install pyarrow" in err
    assert not (tmp_path / "o.parquet").exists()


def test_search_matches_brute_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal((200, 8)).astype(np.float32)
    with NusterDB(str(tmp_path / "db"), DatabaseConfig(8, distance_metric="euclidean")) as db:
        db.bulk_add(list(range(200)), base, [{"even": i % 2 == 0} for i in range(200)])
    q = rng.standard_normal(8).astype(np.float32)
    dist = np.linalg.norm(base.astype(np.float64) - q.astype(np.float64), axis=1)
    doc = run_json(capsys, "search", str(tmp_path / "db"), "--vector", json.dumps(q.tolist()),
                   "-k", "5")  # fmt: skip
    assert [h["id"] for h in doc["results"][0]] == np.argsort(dist)[:5].tolist()
    for h in doc["results"][0]:
        assert math.isclose(h["distance"], dist[h["id"]], rel_tol=1e-5)
    even = np.where(np.arange(200) % 2 == 0, dist, np.inf)
    np.save(tmp_path / "q.npy", np.stack([q, q]))
    doc = run_json(capsys, "search", str(tmp_path / "db"), "--vector-file",
                   str(tmp_path / "q.npy"), "-k", "3", "--filter", '{"even": true}',
                   "--show-metadata")  # fmt: skip
    assert len(doc["results"]) == 2
    for hits in doc["results"]:
        assert [h["id"] for h in hits] == np.argsort(even)[:3].tolist()
        assert all(h["metadata"] == {"even": True} for h in hits)
    code, out, _ = run(capsys, "search", str(tmp_path / "db"), "--vector",
                       json.dumps(q.tolist()), "-k", "2")  # fmt: skip
    assert code == 0
    assert out.split()[1] == str(int(np.argmin(dist)))
    # A malformed filter is the core's FilterError; malformed JSON is a usage error.
    code, _, err = run(capsys, "search", str(tmp_path / "db"), "--vector", "[1,2,3,4,5,6,7,8]",
                       "--filter", '{"even": {"$bogus": 1}}')  # fmt: skip
    assert code == 1
    assert err.startswith("nusterdb: error: FilterError: ")
    code, _, _ = run(capsys, "search", str(tmp_path / "db"), "--vector", "[1,")
    assert code == 2


def test_info_reports_config_counts_and_index_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [(i, [float(i), 1.0, 0.0], {"k": i}) for i in range(40)]
    make_db(tmp_path / "db", rows, 3, index="hnsw")
    with NusterDB.open(str(tmp_path / "db")) as db:
        db.snapshot_named("one")
    doc = run_json(capsys, "info", str(tmp_path / "db"))
    assert doc["config"]["dim"] == 3
    assert doc["config"]["index_type"] == "hnsw"
    assert doc["config"]["id_type"] == "int"
    assert doc["count"] == 40
    assert doc["metadata_keys"] == ["k"]
    assert doc["snapshots"] == 1
    assert doc["index"]["state"] == "loaded"
    assert doc["index"]["reused"] == 40
    assert doc["load"] == {"source": "segments", "replayed": 0}
    suffixes = sorted(Path(n).suffix for n in doc["segment_files"])
    assert suffixes == [".codes", ".graph", ".maps", ".vectors"]
    assert doc["mapped_bytes"] > 0
    assert doc["memory_bytes"] > 0
    assert doc["disk_bytes"] > 0
    code, out, _ = run(capsys, "info", str(tmp_path / "db"))
    assert code == 0
    assert "graph file loaded" in out
    assert "segment files, 0 records replayed" in out
    assert "snapshots:   1" in out


def test_snapshot_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db")
    make_db(tmp_path / "db", [(1, [1.0, 2.0], {})], 2)
    assert run(capsys, "snapshot", "create", db, "first", "--metadata", '{"why": "test"}')[0] == 0
    doc = run_json(capsys, "snapshot", "list", db)
    assert [s["name"] for s in doc["snapshots"]] == ["first"]
    assert doc["snapshots"][0]["metadata"] == {"why": "test"}
    assert doc["snapshots"][0]["vector_count"] == 1
    target = str(tmp_path / "restored")
    assert run(capsys, "snapshot", "restore", db, "first", target)[0] == 0
    assert contents(tmp_path / "restored") == {1: ([1.0, 2.0], {})}
    code, _, err = run(capsys, "snapshot", "restore", db, "first", target)
    assert code == 1
    assert "nusterdb: error: NusterDBIOError" in err
    assert run(capsys, "snapshot", "delete", db, "first")[0] == 0
    assert run_json(capsys, "snapshot", "list", db) == {"snapshots": []}
    code, _, err = run(capsys, "snapshot", "delete", db, "first")
    assert code == 1
    assert err.startswith("nusterdb: error: ")
    assert run(capsys, "snapshot")[0] == 2


def file_hashes(root: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def flip_middle(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def test_verify_healthy_and_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "db"
    with NusterDB(str(path), DatabaseConfig(16, index_type="hnsw")) as db:
        db.bulk_add(np.arange(2000), rng.standard_normal((2000, 16)).astype(np.float32))
        db.compact()  # the rows now sit in a table file
    before = file_hashes(path)
    code, out, _ = run(capsys, "verify", str(path))
    assert code == 0
    assert "healthy" in out
    assert file_hashes(path) == before  # verify writes nothing
    doc = run_json(capsys, "verify", str(path))
    assert doc["healthy"] is True
    assert doc["problems"] == []
    assert doc["counts"]["vectors"] == 2000
    assert doc["counts"]["graph_nodes"] == 2000
    assert "graph_matches_store" in doc["checked"]

    (graph,) = path.glob("segment-*.graph")
    saved = graph.read_bytes()
    flip_middle(graph)
    code, out, _ = run(capsys, "verify", str(path), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["healthy"] is False
    # The graph file, and the seal it is part of, which an open then cannot use.
    assert [p["kind"] for p in doc["problems"]] == ["graph_file", "segment"]
    graph.write_bytes(saved)

    (sst,) = path.glob("*.sst")
    flip_middle(sst)
    code, out, _ = run(capsys, "verify", str(path))
    assert code == 1
    assert "[checksum]" in out
    assert "checksum mismatch" in out

    code, _, err = run(capsys, "verify", str(tmp_path / "missing"))
    assert code == 1
    missing = str(tmp_path / "missing")
    assert err == f"nusterdb: error: no database at {missing!r} (the path does not exist)\n"


def test_compact_gives_back_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    path = tmp_path / "db"
    with NusterDB(str(path), dim=32) as db:
        db.bulk_add(np.arange(3000), rng.standard_normal((3000, 32)).astype(np.float32))
        db.compact()
        db.bulk_remove(np.arange(2900))
    doc = run_json(capsys, "compact", str(path))
    assert doc["disk_bytes_after"] * 3 < doc["disk_bytes_before"]
    with NusterDB.open(str(path), read_only=True) as db:
        assert len(db) == 100


def test_usage_errors_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["bogus"]) == 2
    assert main(["import", "only-one-arg"]) == 2
    assert main(["import", "db", "f.npy", "--batch-size", "0"]) == 2
    for cmd in (["info"], ["import"], ["export"], ["search"], ["verify"], ["compact"],
                ["snapshot"], ["snapshot", "create"], ["snapshot", "list"],
                ["snapshot", "restore"], ["snapshot", "delete"]):  # fmt: skip
        assert main([*cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: nusterdb " + " ".join(cmd))
    capsys.readouterr()


def test_wrong_paths_and_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "info", str(tmp_path / "file"))
    assert code == 1
    assert "it is a file, not a directory" in err
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    code, _, err = run(capsys, "info", str(tmp_path / "foreign"))
    assert code == 1
    assert err.startswith("nusterdb: error: NotADatabaseError: ")
    code, _, err = run(capsys, "import", str(tmp_path / "db"), str(tmp_path / "none.jsonl"))
    assert code == 1
    assert "no input file" in err
    code, _, err = run(capsys, "import", str(tmp_path / "db"), str(tmp_path / "file"))
    assert code == 1
    assert "--format" in err
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "vector": [1]}\nnot json\n')
    code, _, err = run(capsys, "import", str(tmp_path / "db"), str(tmp_path / "bad.jsonl"))
    assert code == 1
    assert "bad.jsonl:2: not JSON" in err
    for e in (err,):
        assert e.count("\n") == 1
        assert "Traceback" not in e


def cli_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nusterdb", *argv], capture_output=True, text=True, timeout=60
    )


def test_real_processes(tmp_path: Path) -> None:
    r = cli_process("--help")
    assert r.returncode == 0
    assert "verify" in r.stdout
    np.save(tmp_path / "v.npy", np.eye(4, dtype=np.float32))
    r = cli_process("import", str(tmp_path / "db"), str(tmp_path / "v.npy"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["imported"] == 4
    r = cli_process("verify", str(tmp_path / "db"), "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["healthy"] is True
    r = cli_process("import", str(tmp_path / "db"), str(tmp_path / "v.npy"))
    assert r.returncode == 1
    assert r.stderr.startswith("nusterdb: error: DuplicateIdError: ")
    assert "Traceback" not in r.stderr
    r = cli_process("search", str(tmp_path / "db"))
    assert r.returncode == 2
    assert "one of the arguments --vector --vector-file" in r.stderr
    # The console script installed with the package, when installed beside this Python.
    script = Path(sys.executable).with_name("nusterdb")
    if script.exists():
        r = subprocess.run([str(script), "info", str(tmp_path / "db"), "--json"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["count"] == 4


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "npy"])
def test_string_ids_and_documents_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    lines = [
        {"id": "alpha", "vector": [1.0, 0.0], "document": "first text", "n": 1},
        {"id": "beta", "vector": [0.0, 1.0], "n": 2},
        {"id": "\u03b3-3", "vector": [0.5, 0.5], "document": 'third, with "quotes"\nand a line'},
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert run(capsys, "import", str(tmp_path / "db"), str(tmp_path / "in.jsonl"))[0] == 0
    doc = run_json(capsys, "info", str(tmp_path / "db"))
    assert doc["config"]["id_type"] == "str"
    out = tmp_path / f"out.{fmt}"
    assert run(capsys, "export", str(tmp_path / "db"), str(out))[0] == 0
    assert run(capsys, "import", str(tmp_path / "db2"), str(out))[0] == 0

    def rows(p: Path) -> List[Tuple[Any, List[float], Dict[str, Any], Optional[str]]]:
        got = []
        with NusterDB.open(str(p), read_only=True) as db:
            for i in db.list_ids():
                v, m = db.get(i), db.get_metadata(i)
                assert v is not None
                assert m is not None
                got.append((i, v.to_numpy().tolist(), m.to_dict(), db.get_document(i)))
        return got

    want = [
        ("alpha", [1.0, 0.0], {"n": 1}, "first text"),
        ("beta", [0.0, 1.0], {"n": 2}, None),
        ("\u03b3-3", [0.5, 0.5], {}, 'third, with "quotes"\nand a line'),
    ]
    assert rows(tmp_path / "db") == want
    assert rows(tmp_path / "db2") == want
    hits = run_json(capsys, "search", str(tmp_path / "db2"), "--vector", "[1, 0]", "-k", "1",
                    "--show-metadata")["results"][0]  # fmt: skip
    assert hits == [{"id": "alpha", "distance": 0.0, "metadata": {"n": 1},
                     "document": "first text"}]  # fmt: skip


def test_module_docstring_documents_the_exit_codes() -> None:
    import nusterdb.cli

    doc = nusterdb.cli.__doc__ or ""
    for code in ("0 ", "1 ", "2 "):
        assert any(line.startswith(code) for line in doc.splitlines()), code


def test_csv_ids_take_the_database_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text('id,vector\n007,"[1, 0]"\n12,"[0, 1]"\n')
    # CSV cells are untyped: integer text makes an int-id database ...
    assert run(capsys, "import", str(tmp_path / "a"), str(tmp_path / "t.csv"))[0] == 0
    assert list(contents(tmp_path / "a")) == [7, 12]
    # ... unless asked otherwise, when the text is kept as it is (leading zeros too).
    code, _, err = run(capsys, "import", str(tmp_path / "b"), str(tmp_path / "t.csv"),
                       "--id-type", "str")  # fmt: skip
    assert code == 0, err
    assert sorted(contents(tmp_path / "b")) == ["007", "12"]
    # A string id for an int-id database is the core's error, on one line.
    (tmp_path / "s.jsonl").write_text('{"id": "x", "vector": [1, 1]}\n')
    code, _, err = run(capsys, "import", str(tmp_path / "a"), str(tmp_path / "s.jsonl"))
    assert code == 1
    assert err.startswith("nusterdb: error: ")
    assert err.count("\n") == 1
    with NusterDB.open(str(tmp_path / "a"), read_only=True) as db:
        assert len(db) == 2


def test_new_database_options_must_agree_with_an_existing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "v.npy", np.ones((3, 4), dtype=np.float32))
    db, v = str(tmp_path / "db"), str(tmp_path / "v.npy")
    assert run(capsys, "import", db, v, "--metric", "cosine", "--index", "hnsw")[0] == 0
    for flag, value in (("--dim", "5"), ("--metric", "euclidean"), ("--index", "flat"),
                        ("--id-type", "str")):  # fmt: skip
        code, _, err = run(capsys, "import", db, v, "--id-start", "10", flag, value)
        assert code == 1
        assert f"{flag} {value} differs from the existing database's" in err
    # Agreeing options are accepted.
    code, _, err = run(capsys, "import", db, v, "--id-start", "10", "--dim", "4",
                       "--metric", "cosine", "--index", "hnsw", "--id-type", "int")  # fmt: skip
    assert code == 0, err
    with NusterDB.open(db, read_only=True) as h:
        assert h.list_ids() == [0, 1, 2, 10, 11, 12]


def test_an_ivf_database_from_import_to_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((1500, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", vecs)
    db = str(tmp_path / "db")
    code, _, err = run(capsys, "import", db, str(tmp_path / "v.npy"), "--index", "ivf",
                       "--nlist", "20")  # fmt: skip
    assert code == 0, err
    info = run_json(capsys, "info", db)
    assert info["config"]["index_type"] == "ivf"
    assert info["config"]["ivf"] == {"nlist": 20, "nprobe": None}
    assert any(name.endswith(".lists") for name in info["segment_files"])
    q = vecs[17] + 0.01
    # Every list probed: the exact answer, as numpy has it.
    got = run_json(capsys, "search", db, "--vector", json.dumps(q.tolist()), "-k", "3",
                   "--nprobe", "20")  # fmt: skip
    want = np.argsort(np.linalg.norm(vecs - q, axis=1))[:3]
    assert [h["id"] for h in got["results"][0]] == [int(i) for i in want]
    # Another list count for the existing database is refused, as the other options are.
    code, _, err = run(capsys, "import", db, str(tmp_path / "v.npy"), "--id-start", "5000",
                       "--nlist", "30")  # fmt: skip
    assert code == 1
    assert "--nlist 30 differs from the existing database's 20" in err
    # nprobe is an IVF knob: refused on a flat database.
    flat = str(tmp_path / "flat")
    assert run(capsys, "import", flat, str(tmp_path / "v.npy"))[0] == 0
    code, _, err = run(capsys, "search", flat, "--vector", json.dumps(q.tolist()),
                       "--nprobe", "2")  # fmt: skip
    assert code == 1
    assert "nprobe" in err
    # A recall target: the search the database answers for it; refused outside (0, 1].
    target = run_json(capsys, "search", db, "--vector", json.dumps(q.tolist()), "-k", "3",
                      "--recall", "0.99")  # fmt: skip
    with NusterDB.open(db, read_only=True) as direct:
        want_r = [i for i, _ in direct.search(q, k=3, recall=0.99)]
    assert [h["id"] for h in target["results"][0]] == want_r
    code, _, err = run(capsys, "search", db, "--vector", json.dumps(q.tolist()),
                       "--recall", "1.5")  # fmt: skip
    assert code == 1
    assert "recall" in err
    assert info["config"]["recall"] is None


@pytest.mark.parametrize("codes", ["rabitq", "binary"])
def test_an_ivf_database_with_rabitq_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codes: str
) -> None:
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((1500, 16)).astype(np.float32)
    np.save(tmp_path / "v.npy", vecs)
    db = str(tmp_path / "db")
    code, _, err = run(capsys, "import", db, str(tmp_path / "v.npy"), "--index", "ivf",
                       "--quantization", codes)  # fmt: skip
    assert code == 0, err
    info = run_json(capsys, "info", db)
    assert info["config"]["quantization"] == codes
    code, text, err = run(capsys, "info", db)
    assert code == 0, err
    assert f"{codes} codes" in text
    q = vecs[3] + 0.01
    got = run_json(capsys, "search", db, "--vector", json.dumps(q.tolist()), "-k", "5",
                   "--nprobe", "65536")  # fmt: skip
    want = np.argsort(np.linalg.norm(vecs - q, axis=1))[:5]
    assert [h["id"] for h in got["results"][0]] == [int(i) for i in want]
    code, _, err = run(capsys, "import", db, str(tmp_path / "v.npy"), "--id-start", "5000",
                       "--quantization", "none")  # fmt: skip
    assert code == 1
    assert f"--quantization none differs from the existing database's {codes}" in err
    # 4-bit codes are for HNSW: refused for a new IVF database, nothing created.
    other = str(tmp_path / "other")
    code, _, err = run(capsys, "import", other, str(tmp_path / "v.npy"), "--index", "ivf",
                       "--quantization", "sq4")  # fmt: skip
    assert code == 1
    assert "quantization" in err


def test_progress_clock_does_not_wrap_at_a_day() -> None:
    from nusterdb.cli import _clock

    assert _clock(0) == "0:00:00"
    assert _clock(59.9) == "0:00:59"
    assert _clock(3 * 3600 + 61) == "3:01:01"
    assert _clock(30 * 3600) == "30:00:00"


def test_verify_beside_a_live_writer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with NusterDB(str(tmp_path / "db"), DatabaseConfig(3, index_type="hnsw")) as db:
        db.bulk_add([1, 2, 3], np.eye(3, dtype=np.float32))
        db.flush()
        doc = run_json(capsys, "verify", str(tmp_path / "db"))
        assert doc["live_writer"] is True
        assert doc["healthy"] is True
        assert doc["counts"]["vectors"] == 3
        db.add(4, [1.0, 1.0, 0.0])  # the writer is not blocked
    assert run_json(capsys, "verify", str(tmp_path / "db"))["live_writer"] is False


@pytest.mark.skipif(not HAVE_PYARROW, reason="pyarrow is not installed")
def test_a_failed_export_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_db(tmp_path / "db", [(1, [1.0], {"a": 1}), (2, [2.0], {"a": "x"})], 1)
    code, _, err = run(capsys, "export", str(tmp_path / "db"), str(tmp_path / "o.parquet"))
    assert code == 1
    assert "metadata field 'a' holds values of several types (int, str)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]
    # jsonl holds them; an existing file is replaced only when asked.
    assert run(capsys, "export", str(tmp_path / "db"), str(tmp_path / "o.jsonl"))[0] == 0
    code, _, err = run(capsys, "export", str(tmp_path / "db"), str(tmp_path / "o.jsonl"))
    assert code == 1
    assert "--overwrite" in err
    assert run(capsys, "export", str(tmp_path / "db"), str(tmp_path / "o.jsonl"),
               "--overwrite")[0] == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "o.jsonl"]
