"""Format compatibility (T10): every database written by a released format version
opens and answers exactly as it did when written. Fixtures: tests/data/format_v*/,
made by scripts/make_format_fixture.py: format 1 (int ids, flat and HNSW), format 2
(HNSW, string ids and documents) and format 3 (the same with the change log and a
seal's segment files).

Opening a format-1 or 2 database and only reading it must leave it as it is (an older
build can still open it); its first write makes it format 3. The
format marker (key ``b"\\x00format"``, value ``b"NUSTERDB"`` + u32 LE) is read from the
write-ahead log (``proc_helpers.wal_format_markers``): the fixtures keep every write
there, and a write of the marker during a session lands in that session's log (an open
moves the previous log into a compressed table file, which only RocksDB reads).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import AbstractSet, Any, Dict, List, Union

import numpy as np
import pytest
from nusterdb import NusterDB
from proc_helpers import wal_format_markers

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = sorted(DATA.glob("format_v*"))
V1 = [f for f in FIXTURES if f.name.startswith("format_v1")]


def expected_of(fixture: Path) -> Dict[str, Any]:
    out: Dict[str, Any] = json.loads((fixture / "expected.json").read_text(encoding="utf-8"))
    return out


def copy_db(fixture: Path, tmp_path: Path) -> Path:
    # Opening replays the WAL and writes new engine files: work on a copy.
    db_path = tmp_path / "db"
    shutil.copytree(fixture / "db", db_path)
    return db_path


def open_without_warnings(path: Path) -> NusterDB:
    """Opens ``path``; a warning (above all ``IndexRebuiltWarning``: the HNSW graph was
    rebuilt rather than loaded as saved) fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = NusterDB.open(str(path))
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    return db


def markers(db_path: Path, skip: AbstractSet[str] = frozenset()) -> List[int]:
    """The format versions written to the logs of ``db_path`` (but those in ``skip``)."""
    return [
        v
        for log in sorted(db_path.glob("*.log"))
        if log.name not in skip
        for v in wal_format_markers(log)
    ]


def test_there_is_a_fixture_for_the_current_format() -> None:
    assert (DATA / "format_v1" / "expected.json").is_file()
    # HNSW databases with their graph file: opening them must load the graph as saved
    # (a rebuild would raise IndexRebuiltWarning and could change the approximate answers).
    assert (DATA / "format_v1_hnsw" / "db" / "hnsw.graph").is_file()
    assert (DATA / "format_v2_str" / "db" / "hnsw.graph").is_file()
    assert expected_of(DATA / "format_v2_str")["id_type"] == "str"
    # The current format: a seal's files, which an open reads instead of the records.
    v3 = DATA / "format_v3_str"
    assert expected_of(v3)["format"] == 3
    assert sorted(p.suffix for p in (v3 / "db").glob("segment-*")) == [
        ".graph",
        ".maps",
        ".vectors",
    ]


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_the_fixture_is_of_its_format(fixture: Path) -> None:
    assert markers(fixture / "db") == [expected_of(fixture).get("format", 1)]


def check_answers(db: NusterDB, expected: Dict[str, Any], searches: bool = True) -> None:
    """``db`` holds exactly the fixture's records and (``searches``) answers its searches
    as recorded."""
    strs = expected.get("id_type", "int") == "str"
    assert db.config.id_type == ("str" if strs else "int")
    assert db.dimension() == expected["dim"]
    # Fixtures older than the index_type field are flat.
    assert db.is_hnsw() == (expected.get("index_type", "flat") == "hnsw")
    assert db.distance_metric().name == expected["metric"]
    records: Dict[str, Any] = expected["records"]
    keys: List[Union[int, str]] = []
    if strs:
        by_bytes: List[str] = sorted(records, key=lambda s: s.encode())  # UTF-8 order
        keys += by_bytes
    else:
        keys += sorted(int(i) for i in records)
    assert db.list_ids() == keys
    for k in keys:
        rec = records[str(k)]
        v = db.get(k)
        m = db.get_metadata(k)
        assert v is not None
        assert m is not None
        assert v.data == rec["vector"]
        assert m.to_dict() == rec["metadata"]
        assert m.tags() == rec["tags"]
        assert db.get_document(k) == rec.get("document")
    if strs:
        asked = [str(k) for k in keys[::-1]] + ["absent ✗"]
        got = db.get_many(asked, include=["vector", "metadata", "document"])
        assert got["ids"] == keys[::-1]
        assert got["vectors"].tolist() == [records[str(k)]["vector"] for k in keys[::-1]]
        assert [m.to_dict() for m in got["metadatas"]] == [
            records[str(k)]["metadata"] for k in keys[::-1]
        ]
        assert got["documents"] == [records[str(k)].get("document") for k in keys[::-1]]
    for case in expected["cases"] if searches else []:
        if strs:
            hits = db.search(case["query"], k=5, filter=case["filter"], include=["document"])
            pairs = [(h.id, h.distance) for h in hits]
            assert [h.document for h in hits] == case["documents"]
        else:
            pairs = db.search(case["query"], k=5, filter=case["filter"])
        assert [i for i, _ in pairs] == case["ids"]
        # Distances to float32 rounding of cos: since the format-1 fixtures were written,
        # a cosine distance of nearly parallel vectors is computed from the chord in
        # float64 (more exact than 1 - cos with cos rounded to float32).
        assert [d for _, d in pairs] == pytest.approx(case["distances"], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_old_database_opens_and_answers_identically(fixture: Path, tmp_path: Path) -> None:
    db_path = copy_db(fixture, tmp_path)
    with open_without_warnings(db_path) as db:
        if expected_of(fixture).get("format", 1) >= 3:
            assert db.load_source() == {"source": "segments", "replayed": 0}
        check_answers(db, expected_of(fixture))


OLDER = [f for f in FIXTURES if expected_of(f).get("format", 1) < 3]


@pytest.mark.parametrize("fixture", OLDER, ids=[f.name for f in OLDER])
def test_an_older_database_keeps_its_format_while_read_and_moves_to_3_with_a_write(
    fixture: Path, tmp_path: Path
) -> None:
    """Opened by a writer and only read, a format-1 or 2 database writes no format
    marker and no segment file (an older build still opens it). Its first write (add,
    bulk_add, upsert, update, remove) writes the marker of format 3 in that session's
    log, since from then on writes are logged; the close then seals it, and the next
    open reads the seal."""
    db_path = copy_db(fixture, tmp_path)
    expected = expected_of(fixture)
    old_logs = {p.name for p in db_path.glob("*.log")}
    assert markers(db_path) == [expected.get("format", 1)]
    with open_without_warnings(db_path) as db:
        check_answers(db, expected)
        assert db.load_source() == {"source": "records", "refused": None}
        db.flush()
    assert markers(db_path, old_logs) == []
    assert list(db_path.glob("segment-*")) == []
    old_logs = {p.name for p in db_path.glob("*.log")}
    dim = expected["dim"]
    strs = expected.get("id_type", "int") == "str"
    rng = np.random.default_rng(7)
    new = {
        (f"new-{j}" if strs else 10**6 + j): rng.standard_normal(dim).astype(np.float32)
        for j in range(40)
    }
    first: List[Any] = sorted(new, key=str)
    with open_without_warnings(db_path) as db:
        db.add(first[0], new[first[0]], {"k": "added"})
        db.bulk_add(first[1:30], np.stack([new[i] for i in first[1:30]]))
        db.upsert(first[30], new[first[30]], {"k": "upserted"})
        db.update(first[1], metadata={"k": "updated"})
        db.bulk_add(first[31:], np.stack([new[i] for i in first[31:]]))
        assert db.remove(first[39])
        db.flush()
    assert markers(db_path, old_logs) == [3]
    assert len(list(db_path.glob("segment-*.maps"))) == 1
    with open_without_warnings(db_path) as db:
        assert db.load_source() == {"source": "segments", "replayed": 0}
        for i in first[:39]:
            v = db.get(i)
            assert v is not None
            assert v.to_numpy().tobytes() == new[i].tobytes()
        assert first[39] not in db
        assert db.get_metadata(first[1]).to_dict() == {"k": "updated"}  # type: ignore[union-attr]
        # The fixture's own records are as before; exact (flat) searches answer as before
        # (an HNSW graph changed by the writes may answer approximate searches otherwise).
        for i in first:
            db.remove(i)
        check_answers(db, expected, searches=not db.is_hnsw())
