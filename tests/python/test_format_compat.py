"""Format compatibility (T10): every database written by a released format version
opens and answers exactly as it did when written. Fixtures: tests/data/format_v*/,
made by scripts/make_format_fixture.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from nusterdb import NusterDB

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = sorted(DATA.glob("format_v*"))


def test_there_is_a_fixture_for_the_current_format() -> None:
    assert (DATA / "format_v1" / "expected.json").is_file()
    # An HNSW database with its graph file: opening it must load the graph as saved
    # (a rebuild would raise IndexRebuiltWarning, an error under this suite's filters,
    # and could change the approximate answers).
    assert (DATA / "format_v1_hnsw" / "db" / "hnsw.graph").is_file()


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_old_database_opens_and_answers_identically(fixture: Path, tmp_path: Path) -> None:
    # Opening replays the WAL and writes new engine files: work on a copy.
    db_path = tmp_path / "db"
    shutil.copytree(fixture / "db", db_path)
    expected: dict[str, Any] = json.loads((fixture / "expected.json").read_text())
    with NusterDB.open(str(db_path)) as db:
        assert db.dimension() == expected["dim"]
        # Fixtures older than the index_type field are flat.
        assert db.is_hnsw() == (expected.get("index_type", "flat") == "hnsw")
        assert db.distance_metric().name == expected["metric"]
        records: dict[str, Any] = expected["records"]
        assert db.list_ids() == sorted(int(i) for i in records)
        for key, rec in records.items():
            v = db.get(int(key))
            m = db.get_metadata(int(key))
            assert v is not None
            assert m is not None
            assert v.data == rec["vector"]
            assert m.to_dict() == rec["metadata"]
            assert m.tags() == rec["tags"]
        for case in expected["cases"]:
            hits = db.search(case["query"], k=5, filter=case["filter"])
            assert [i for i, _ in hits] == case["ids"]
            # Distances to float32 rounding of cos: since the fixtures were written, a
            # cosine distance of nearly parallel vectors is computed from the chord in
            # float64 (more exact than 1 - cos with cos rounded to float32).
            assert [d for _, d in hits] == pytest.approx(case["distances"], rel=1e-6, abs=1e-6)
