"""The LangChain vector store (nusterdb.integrations.langchain): LangChain's standard
VectorStore suite, sync and async, in memory (HNSW) and on disk (flat); exact metadata round
trips (hypothesis); reopening; filters against a Python evaluation; MMR against LangChain's
own numpy helper; relevance scores per metric against numpy; errors that store nothing.

Skipped when LangChain is not installed, unless NUSTERDB_REQUIRE_INTEGRATIONS=1 (set by
scripts/test_all.sh), which makes a missing extra a failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Sequence

import pytest

if os.environ.get("NUSTERDB_REQUIRE_INTEGRATIONS") != "1" or sys.version_info < (3, 9):
    pytest.importorskip("langchain_core")
    pytest.importorskip("langchain_tests")

import numpy as np
import numpy.typing as npt
import nusterdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests
from nusterdb import (
    ConfigMismatchError,
    DatabaseConfig,
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidVectorError,
    NusterDB,
)
from nusterdb.integrations.langchain import NusterDBVectorStore

# ----------------------------------------------------------------- the standard suite


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The standard suite's async tests are unmarked coroutine functions (LangChain's own
# packages run them with pytest-asyncio in auto mode, which this project's pytest
# configuration blocks: see pyproject.toml). They run under anyio's pytest plugin (anyio comes
# with langchain-core), marked per class: the suite forbids overriding its test functions.
# An async test left unrun would fail, not skip: its "unhandled coroutine" warning is an error.


class TestStandardInMemoryHNSW(VectorStoreIntegrationTests):
    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def vectorstore(self) -> VectorStore:
        return NusterDBVectorStore(embedding=self.get_embeddings())


class TestStandardOnDiskFlat(VectorStoreIntegrationTests):
    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        store = NusterDBVectorStore(
            tmp_path / "db", embedding=self.get_embeddings(), distance="euclidean", index="flat"
        )
        try:
            yield store
        finally:
            store.close()


# ------------------------------------------------------------------------- helpers


class TableEmbeddings(Embeddings):
    """Embeds each text as the vector given for it (an unknown text is a test bug)."""

    def __init__(self, table: Mapping[str, Sequence[float]]) -> None:
        self.table = {k: [float(x) for x in v] for k, v in table.items()}

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> List[float]:
        return self.table[text]


class HashEmbeddings(Embeddings):
    """Deterministic 8-d embeddings from a hash of the text; unlike LangChain's
    DeterministicFakeEmbedding it accepts texts with lone surrogates."""

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> List[float]:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return [float(x) for x in rng.normal(size=8)]


def _fake() -> Embeddings:
    return HashEmbeddings()


def _typed(x: Any) -> Any:
    """A comparison key that tells bool from int from float, -0.0 from 0.0, list from
    tuple, and dict from other mappings (plain == does not)."""
    t = type(x)
    if t is float:
        return ("float", repr(x))
    if t is dict:
        return ("dict", sorted((k, _typed(v)) for k, v in x.items()))
    if t is list:
        return ("list", [_typed(v) for v in x])
    return (t.__name__, x)


# ---------------------------------------------------------------- metadata round trip

_I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_AWKWARD_STR = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "id",
            "text",
            "page_content",
            "metadata",
            "nusterdb.langchain",
            "$and",
            "$tags",
            "\ud800",
            "a\udfffb",
            '{"nusterdb.langchain": 1}',
            "\x00",
            "é€😀",
        ]
    ),
)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    _I64,
    st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 5e-324, 1.7976931348623157e308]),
    _AWKWARD_STR,
)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_AWKWARD_STR, inner, max_size=4)
    ),
    max_leaves=12,
)
_METADATA = st.dictionaries(_AWKWARD_STR, _JSON, max_size=6)


def _eligible_fields(meta: Dict[str, Any]) -> Dict[str, Any]:
    """The top-level items a NusterDB field can hold, by the module's documented rule,
    evaluated independently here."""

    def utf8(s: str) -> bool:
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    out = {}
    for k, v in meta.items():
        if not k or k.startswith("$") or not utf8(k):
            continue
        if (type(v) is str and utf8(v)) or type(v) in (bool, int, float):
            out[k] = v
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metas=st.lists(_METADATA, min_size=1, max_size=4),
    contents=st.lists(_AWKWARD_STR, min_size=4, max_size=4),
)
def test_metadata_round_trips_exactly(metas: List[Dict[str, Any]], contents: List[str]) -> None:
    store = NusterDBVectorStore(embedding=_fake(), index="flat")
    texts = contents[: len(metas)]
    ids = [f"doc-{i}" for i in range(len(metas))]
    store.add_texts(texts, metas, ids=ids)

    got = {d.id or "": d for d in store.get_by_ids(ids)}
    assert sorted(got) == sorted(ids)
    for i, doc_id in enumerate(ids):
        assert got[doc_id].page_content == texts[i]
        assert _typed(got[doc_id].metadata) == _typed(metas[i])

    # Search returns the same documents; no internal key shows.
    found = store.similarity_search(texts[0], k=len(ids))
    assert sorted(d.id or "" for d in found) == sorted(ids)
    for d in found:
        i = ids.index(d.id or "")
        assert _typed(d.metadata) == _typed(metas[i])
        assert d.page_content == texts[i]

    # The filterable copy is exactly the eligible top-level scalars.
    assert store.db is not None
    for i, doc_id in enumerate(ids):
        fields = store.db.get_metadata(doc_id)
        assert fields is not None
        assert _typed(fields.to_dict()) == _typed(_eligible_fields(metas[i]))


def test_user_keys_that_look_internal_are_the_users() -> None:
    meta = {
        "id": 7,
        "text": "mine",
        "page_content": ["x"],
        "metadata": {"nested": None},
        "nusterdb.langchain": 2,
    }
    store = NusterDBVectorStore(embedding=_fake())
    [doc_id] = store.add_texts(["hello"], [meta])
    [doc] = store.get_by_ids([doc_id])
    assert doc == Document(id=doc_id, page_content="hello", metadata=meta)
    assert store.similarity_search("hello", k=1, filter={"text": "mine"}) == [doc]
    assert store.similarity_search("hello", k=1, filter={"nusterdb.langchain": 2}) == [doc]


@pytest.mark.parametrize(
    ("metadata", "error", "match"),
    [
        ({"a": (1, 2)}, TypeError, "tuple"),
        ({"a": {1, 2}}, TypeError, "set"),
        ({"a": np.float32(1.0)}, TypeError, "float32"),
        ({"a": b"x"}, TypeError, "bytes"),
        ({"a": object()}, TypeError, "object"),
        ({"a": {1: "x"}}, TypeError, "key 1"),
        ({"a": [float("nan")]}, InvalidArgumentError, "finite"),
        ({"a": float("inf")}, InvalidArgumentError, "finite"),
        ({"a": 2**63}, InvalidArgumentError, "64-bit"),
        ({"a": {"b": [-(2**63) - 1]}}, InvalidArgumentError, "64-bit"),
    ],
)
def test_unrepresentable_metadata_is_refused_and_nothing_stored(
    metadata: Dict[str, Any], error: type, match: str
) -> None:
    store = NusterDBVectorStore(embedding=_fake())
    store.add_texts(["keep"], [{"k": 1}], ids=["keep"])
    with pytest.raises(error, match=match):
        store.add_texts(["new", "keep"], [{"ok": 1}, metadata], ids=["new", "keep"])
    assert store.db is not None
    assert len(store.db) == 1
    assert store.get_by_ids(["keep", "new"]) == [
        Document(id="keep", page_content="keep", metadata={"k": 1})
    ]


def test_i64_bounds_are_stored_and_filterable() -> None:
    store = NusterDBVectorStore(embedding=_fake(), index="flat")
    store.add_texts(["lo", "hi"], [{"n": -(2**63)}, {"n": 2**63 - 1}], ids=["lo", "hi"])
    [hi] = store.similarity_search("lo", k=2, filter={"n": {"$gt": 0}})
    assert hi.id == "hi"
    assert type(hi.metadata["n"]) is int
    assert hi.metadata["n"] == 2**63 - 1


# --------------------------------------------------------------------- ids and upsert


def test_missing_ids_are_uuid4_and_document_ids_are_honoured() -> None:
    store = NusterDBVectorStore(embedding=_fake())
    ids = store.add_documents([Document(page_content="a"), Document(page_content="b", id="mine")])
    assert ids[1] == "mine"
    assert uuid.UUID(ids[0]).version == 4
    assert str(uuid.UUID(ids[0])) == ids[0]
    docs = {d.id: d.page_content for d in store.get_by_ids(ids)}
    assert docs == {ids[0]: "a", "mine": "b"}


def test_adding_an_existing_id_replaces_vector_text_and_metadata() -> None:
    emb = TableEmbeddings({"old": [1, 0, 0], "new": [0, 1, 0], "other": [0, 0, 1]})
    store = NusterDBVectorStore(embedding=emb, index="flat")
    store.add_texts(["old", "other"], [{"v": 1, "gone": True}, {}], ids=["a", "b"])
    store.add_texts(["new"], [{"v": 2}], ids=["a"])
    assert store.db is not None
    assert len(store.db) == 2
    [(doc, dist)] = store.similarity_search_with_score("new", k=1)
    assert doc == Document(id="a", page_content="new", metadata={"v": 2})
    assert dist == pytest.approx(0.0, abs=1e-6)
    # The old fields are gone from the filterable copy too.
    assert store.similarity_search("new", k=2, filter={"gone": True}) == []
    assert store.similarity_search("new", k=2, filter={"v": 1}) == []


def test_a_repeated_id_within_one_call_keeps_the_last() -> None:
    emb = TableEmbeddings({"x": [1, 0], "y": [0, 1]})
    store = NusterDBVectorStore(embedding=emb, index="flat")
    assert store.add_texts(["x", "y"], [{"n": 1}, {"n": 2}], ids=["d", "d"]) == ["d", "d"]
    assert store.get_by_ids(["d"]) == [Document(id="d", page_content="y", metadata={"n": 2})]
    np.testing.assert_allclose(store.db.get("d").to_numpy(), [0, 1])  # type: ignore[union-attr]


def test_delete_without_ids_removes_everything() -> None:
    store = NusterDBVectorStore(embedding=_fake())
    assert store.delete() is True  # nothing created yet
    store.add_texts(["a", "b", "c"])
    assert store.delete() is True
    assert store.similarity_search("a", k=3) == []
    assert store.db is not None
    assert len(store.db) == 0
    assert store.delete([]) is True


def test_get_by_ids_returns_each_found_id_once() -> None:
    store = NusterDBVectorStore(embedding=_fake())
    store.add_texts(["a", "b"], ids=["1", "2"])
    got = store.get_by_ids(["2", "missing", "2", "1"])
    assert [d.id for d in got] == ["2", "1"]


# ----------------------------------------------------------------------- empty store


def test_an_empty_new_store_answers_empty_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = NusterDBVectorStore(path, embedding=_fake())
    assert store.similarity_search("q") == []
    assert store.similarity_search_with_score("q") == []
    assert store.similarity_search_with_relevance_scores("q") == []
    assert store.similarity_search_by_vector([0.0] * 8) == []
    assert store.max_marginal_relevance_search("q") == []
    assert store.get_by_ids(["x"]) == []
    assert store.db is None
    assert not path.exists()


# ---------------------------------------------------------------------------- reopen


def test_reopening_a_path_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "db"
    metas: List[Dict[str, Any]] = [
        {"year": 2021, "tags": ["a", "b"], "score": 0.5, "none": None, "ok": True},
        {"year": 1999, "nested": {"x": [1, 2.0, {"y": None}]}},
        {},
    ]
    texts = ["alpha", "beta", "gamma"]
    store = NusterDBVectorStore.from_texts(
        texts, _fake(), metas, ids=["a", "b", "c"], path=path, ef_construction=64
    )
    before = store.similarity_search_with_score("alpha", k=3)
    store.close()

    again = NusterDBVectorStore(path, embedding=_fake())
    assert again.db is not None
    assert again.db.config.hnsw_config.ef_construction == 64
    got = {d.id: d for d in again.get_by_ids(["a", "b", "c"])}
    for i, doc_id in enumerate(["a", "b", "c"]):
        assert got[doc_id] == Document(id=doc_id, page_content=texts[i], metadata=metas[i])
        assert _typed(got[doc_id].metadata) == _typed(metas[i])
    assert again.similarity_search_with_score("alpha", k=3) == before
    assert [d.id for d in again.similarity_search("x", k=3, filter={"year": {"$gt": 2000}})] == [
        "a"
    ]
    again.add_texts(["delta"], ids=["d"])
    again.close()

    # Options given when reopening reach the database (checked or applied by NusterDB).
    with NusterDBVectorStore(path, embedding=_fake(), ef_search=77, sync_writes=True) as third:
        assert third.db is not None
        assert len(third.db) == 4
        assert third.db.config.hnsw_config.ef_search == 77
        assert third.db.config.hnsw_config.ef_construction == 64  # stored, not passed: kept
        assert third.db.config.storage_config.sync_writes is True
    # A structural option that differs from the stored one is refused (and nothing stays open).
    with pytest.raises(ConfigMismatchError, match="max_nb_connection"):
        NusterDBVectorStore(path, embedding=_fake(), max_nb_connection=8)
    with NusterDBVectorStore(path, embedding=_fake()) as fourth:
        assert fourth.db is not None
        assert len(fourth.db) == 4


def test_an_encrypted_store_needs_its_key(tmp_path: Path) -> None:
    path = tmp_path / "db"
    enc = nusterdb.EncryptionConfig(bytes(range(32)))
    store = NusterDBVectorStore.from_texts(
        ["alpha LC-MARKER", "beta"], _fake(), [{"m": "LC-META"}, {}], path=path, encryption=enc
    )
    before = store.similarity_search_with_score("alpha LC-MARKER", k=2)
    store.close()
    for f in path.rglob("*"):
        if f.is_file():
            assert b"LC-MARKER" not in f.read_bytes()
            assert b"LC-META" not in f.read_bytes()
    with pytest.raises(nusterdb.EncryptionKeyError):
        NusterDBVectorStore(path, embedding=_fake())
    with NusterDBVectorStore(path, embedding=_fake(), encryption=enc) as again:
        assert again.db is not None
        assert again.db.config.encrypted
        assert again.similarity_search_with_score("alpha LC-MARKER", k=2) == before


def test_reopening_checks_ids_metric_and_index(tmp_path: Path) -> None:
    ints = tmp_path / "ints"
    NusterDB(str(ints), DatabaseConfig(4, distance_metric="cosine")).close()
    with pytest.raises(ConfigMismatchError, match="'str' ids"):
        NusterDBVectorStore(ints, embedding=_fake(), index="flat")

    path = tmp_path / "db"
    NusterDBVectorStore.from_texts(["a"], _fake(), path=path, distance="euclidean").close()
    with pytest.raises(ConfigMismatchError, match="metric is 'euclidean', not 'cosine'"):
        NusterDBVectorStore(path, embedding=_fake())
    with pytest.raises(ConfigMismatchError, match="index is 'hnsw', not 'flat'"):
        NusterDBVectorStore(path, embedding=_fake(), distance="l2", index="flat")
    with NusterDBVectorStore(path, embedding=_fake(), distance="l2") as store:
        assert [d.page_content for d in store.similarity_search("a", k=1)] == ["a"]


def test_a_path_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(nusterdb.CorruptionError, match="not a NusterDB database"):
        NusterDBVectorStore(tmp_path, embedding=_fake())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_entries_written_with_the_plain_api_read_back(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with NusterDB(str(path), DatabaseConfig(2, distance_metric="cosine", id_type="str")) as db:
        db.add("p", [1.0, 0.0], metadata={"lang": "en", "n": 3}, document="plain text")
        db.add("q", [0.0, 1.0])
    with NusterDBVectorStore(path, embedding=TableEmbeddings({}), index="flat") as store:
        assert sorted(store.get_by_ids(["p", "q"]), key=lambda d: d.id or "") == [
            Document(id="p", page_content="plain text", metadata={"lang": "en", "n": 3}),
            Document(id="q", page_content="", metadata={}),
        ]


# --------------------------------------------------------------------------- filters


def _python_filter(meta: Dict[str, Any], flt: Dict[str, Any]) -> bool:
    """A reference evaluation of the filters used below (plain Python semantics)."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(_python_filter(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(_python_filter(meta, c) for c in cond):
                return False
        elif key == "$not":
            if _python_filter(meta, cond):
                return False
        elif isinstance(cond, dict):
            for op, arg in cond.items():
                present = key in meta and meta[key] is not None
                v = meta.get(key)
                if op == "$exists":
                    ok = present == arg
                elif not present:
                    ok = False
                elif op == "$gt":
                    ok = v > arg
                elif op == "$gte":
                    ok = v >= arg
                elif op == "$lt":
                    ok = v < arg
                else:
                    assert op == "$in"
                    ok = v in arg
                if not ok:
                    return False
        elif meta.get(key) != cond or type(meta.get(key)) is not type(cond):
            return False
    return True


@pytest.mark.parametrize(
    "flt",
    [
        {"genre": "sf"},
        {"year": {"$gte": 2000}},
        {"year": {"$lt": 1990}},
        {"score": {"$gt": 0.5}},
        {"$and": [{"genre": "sf"}, {"year": {"$gt": 1980}}]},
        {"$or": [{"genre": "noir"}, {"classic": True}]},
        {"$not": {"genre": "sf"}},
        {"genre": {"$in": ["noir", "drama"]}},
        {"note": {"$exists": True}},
        {"note": {"$exists": False}},
        {"classic": True},
    ],
)
def test_filters_select_like_python(flt: Dict[str, Any]) -> None:
    rng = np.random.default_rng(5)
    genres = ["sf", "noir", "drama"]
    metas: List[Dict[str, Any]] = []
    for i in range(30):
        m: Dict[str, Any] = {
            "genre": genres[i % 3],
            "year": int(rng.integers(1950, 2025)),
            "score": float(rng.random()),
            "classic": bool(i % 4 == 0),
            "note": None if i % 5 == 0 else ["list", "values", "are", "not", "fields"],
        }
        if i % 7 == 0:
            m["note"] = "a str note"
        metas.append(m)
    # "note" is a field only where it is a str: None and lists live in the envelope only.
    field_metas = [
        {k: v for k, v in m.items() if type(v) is not list and v is not None} for m in metas
    ]
    texts = [f"t{i}" for i in range(30)]
    store = NusterDBVectorStore.from_texts(texts, _fake(), metas, index="flat")
    found = store.similarity_search("t0", k=30, filter=flt)
    expected = {texts[i] for i in range(30) if _python_filter(field_metas[i], flt)}
    assert {d.page_content for d in found} == expected
    for d in found:
        assert d.metadata == metas[texts.index(d.page_content)]


def test_a_malformed_filter_raises_filter_error() -> None:
    store = NusterDBVectorStore.from_texts(["a"], _fake())
    with pytest.raises(nusterdb.FilterError):
        store.similarity_search("a", filter={"x": {"$bogus": 1}})


# ------------------------------------------------------------------ relevance scores


def _reference_relevance(
    metric: str, q: npt.NDArray[np.float64], x: npt.NDArray[np.float64]
) -> float:
    cos = float(q @ x / (np.linalg.norm(q) * np.linalg.norm(x)))
    if metric == "cosine":
        return min(max(cos, 0.0), 1.0)
    if metric == "euclidean":
        return min(max(1.0 - float(np.linalg.norm(q - x)) / math.sqrt(2.0), 0.0), 1.0)
    if metric == "inner_product":
        return min(max(float(q @ x), 0.0), 1.0)
    if metric == "angular":
        return 1.0 - math.acos(min(max(cos, -1.0), 1.0)) / math.pi
    assert metric == "manhattan"
    return 1.0 / (1.0 + float(np.abs(q - x).sum()))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product", "angular", "manhattan"])
def test_relevance_scores_follow_the_documented_mapping(metric: str) -> None:
    rng = np.random.default_rng(11)
    dim = 6
    vecs = rng.normal(size=(40, dim))
    if metric in ("cosine", "euclidean", "inner_product"):
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    else:
        vecs *= 0.3
    q = vecs[0].copy()
    vecs[1] = -q  # the opposite direction: clipped to 0 where the mapping clips
    vecs = vecs.astype(np.float32).astype(np.float64)
    table = {f"v{i}": list(v) for i, v in enumerate(vecs)}
    store = NusterDBVectorStore.from_texts(
        list(table), TableEmbeddings(table), distance=metric, index="flat"
    )
    got = store.similarity_search_with_relevance_scores("v0", k=40)
    assert len(got) == 40
    for doc, score in got:
        expected = _reference_relevance(metric, q, vecs[int(doc.page_content[1:])])
        assert score == pytest.approx(expected, abs=2e-5), doc.page_content
        assert 0.0 <= score <= 1.0
    scores = [s for _, s in got]
    assert scores == sorted(scores, reverse=True)
    threshold = store.similarity_search_with_relevance_scores("v0", k=40, score_threshold=0.5)
    assert [d for d, _ in threshold] == [d for d, s in got if s >= 0.5]


# ------------------------------------------------------------------------------- MMR


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("lambda_mult", [0.0, 0.3, 0.5, 1.0])
def test_mmr_matches_langchains_numpy_reference(metric: str, lambda_mult: float) -> None:
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(60, 5)).astype(np.float32).astype(np.float64)
    # Near duplicates, which MMR with lambda < 1 should not pick together.
    vecs[10:15] = vecs[9] + 1e-3 * rng.normal(size=(5, 5))
    vecs = vecs.astype(np.float32).astype(np.float64)
    table = {f"v{i}": list(v) for i, v in enumerate(vecs)}
    table["q"] = list(vecs[9] + 0.1)
    metas = [{"even": i % 2 == 0} for i in range(60)]
    store = NusterDBVectorStore.from_texts(
        [f"v{i}" for i in range(60)],
        TableEmbeddings(table),
        metas,
        ids=[f"v{i}" for i in range(60)],
        distance=metric,
        index="flat",
    )
    q = np.asarray(table["q"])
    for flt in (None, {"even": True}):
        allowed = [i for i in range(60) if flt is None or i % 2 == 0]
        if metric == "cosine":
            sims = vecs[allowed] @ q / (np.linalg.norm(vecs[allowed], axis=1) * np.linalg.norm(q))
            near = [allowed[j] for j in np.argsort(-sims, kind="stable")[:20]]
        else:
            dists = np.linalg.norm(vecs[allowed] - q, axis=1)
            near = [allowed[j] for j in np.argsort(dists, kind="stable")[:20]]
        pick = maximal_marginal_relevance(
            q, [list(vecs[i]) for i in near], lambda_mult=lambda_mult, k=6
        )
        expected = [f"v{near[j]}" for j in pick]
        got = store.max_marginal_relevance_search(
            "q", k=6, fetch_k=20, lambda_mult=lambda_mult, filter=flt
        )
        assert [d.id for d in got] == expected
        assert all(d.metadata == metas[int(d.page_content[1:])] for d in got)
    by_vector = store.max_marginal_relevance_search_by_vector(
        table["q"], k=6, fetch_k=20, lambda_mult=lambda_mult
    )
    assert [d.id for d in by_vector] == [
        d.id for d in store.max_marginal_relevance_search("q", 6, 20, lambda_mult)
    ]


def test_mmr_arguments_are_checked() -> None:
    store = NusterDBVectorStore.from_texts(["a", "b"], _fake())
    with pytest.raises(InvalidArgumentError, match="fetch_k"):
        store.max_marginal_relevance_search("a", k=5, fetch_k=4)
    with pytest.raises(InvalidArgumentError, match="lambda_mult"):
        store.max_marginal_relevance_search("a", lambda_mult=1.5)
    assert len(store.max_marginal_relevance_search("a", k=5, fetch_k=20)) == 2


# ----------------------------------------------------------- retriever and async use


def test_retriever_search_types() -> None:
    emb = TableEmbeddings({"a": [1, 0], "b": [0.9, 0.1], "c": [-1, 0], "q": [1, 0]})
    store = NusterDBVectorStore.from_texts(
        ["a", "b", "c"], emb, [{"n": 1}, {"n": 2}, {"n": 3}], index="flat"
    )
    sim = store.as_retriever(search_kwargs={"k": 2, "filter": {"n": {"$gte": 2}}})
    assert [d.page_content for d in sim.invoke("q")] == ["b", "c"]
    thr = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.5}
    )
    assert [d.page_content for d in thr.invoke("q")] == ["a", "b"]
    # After "a", lambda 0.25 weighs redundancy most: "b" (close to "a") loses to "c".
    mmr = store.as_retriever(
        search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3, "lambda_mult": 0.25}
    )
    assert [d.page_content for d in mmr.invoke("q")] == ["a", "c"]


def test_async_variants_agree_with_sync() -> None:
    texts = [f"t{i}" for i in range(10)]
    store = NusterDBVectorStore.from_texts(texts, _fake(), ids=texts, index="flat")

    async def run() -> None:
        assert await store.asimilarity_search("t1", k=3) == store.similarity_search("t1", k=3)
        assert await store.asimilarity_search_with_relevance_scores(
            "t1", k=3
        ) == store.similarity_search_with_relevance_scores("t1", k=3)
        assert await store.amax_marginal_relevance_search(
            "t1", k=3
        ) == store.max_marginal_relevance_search("t1", k=3)
        assert await store.aget_by_ids(["t2"]) == store.get_by_ids(["t2"])
        await store.adelete(["t1"])

    asyncio.run(run())
    assert store.db is not None
    assert "t1" not in store.db.list_ids()
    assert len(store.db) == 9


# ---------------------------------------------------------------------------- errors


def test_constructor_options_map_to_the_config_classes() -> None:
    from nusterdb.integrations import _options as opts

    assert set(opts.HNSW_OPTIONS) == set(inspect.signature(nusterdb.HNSWConfig).parameters)
    assert set(opts.STORAGE_OPTIONS) == set(
        inspect.signature(nusterdb.StorageConfiguration).parameters
    )
    db_params = set(inspect.signature(nusterdb.DatabaseConfig).parameters)
    own = {"dim", "index_type", "distance_metric", "hnsw_config", "storage_config", "id_type"}
    assert set(opts.DATABASE_OPTIONS) == db_params - own

    store = NusterDBVectorStore(
        embedding=_fake(),
        ef_construction=50,
        max_nb_connection=8,
        ef_search=30,
        cache_size_mb=16,
        compression="none",
    )
    store.add_texts(["a"])
    assert store.db is not None
    cfg = store.db.config
    assert (cfg.hnsw_config.ef_construction, cfg.hnsw_config.max_nb_connection) == (50, 8)
    assert cfg.hnsw_config.ef_search == 30
    assert (cfg.storage_config.cache_size_mb, cfg.storage_config.compression) == (16, "none")
    assert cfg.id_type == "str"
    assert cfg.distance_metric.name == "cosine"

    ivf = NusterDBVectorStore(embedding=_fake(), index="ivf", nlist=4, nprobe=2)
    ivf.add_texts(["a", "b"])
    assert ivf.db is not None
    assert (ivf.db.config.index_type, ivf.db.config.nlist, ivf.db.config.nprobe) == ("ivf", 4, 2)
    assert [d.page_content for d in ivf.similarity_search("a", k=1)] == ["a"]
    with pytest.raises(InvalidArgumentError, match="nprobe"):
        NusterDBVectorStore(embedding=_fake(), index="hnsw", nprobe=2).add_texts(["a"])


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="efconstruction"):
        NusterDBVectorStore(embedding=_fake(), efconstruction=5)
    with pytest.raises(TypeError, match="apply only to index='hnsw'"):
        NusterDBVectorStore(embedding=_fake(), index="flat", ef_search=5)
    with pytest.raises(InvalidArgumentError, match="supports"):
        NusterDBVectorStore(embedding=_fake(), distance="hamming")
    with pytest.raises(InvalidArgumentError):
        NusterDBVectorStore(embedding=_fake(), distance="nope")
    with pytest.raises(InvalidArgumentError):
        NusterDBVectorStore(embedding=_fake(), index="ivfpq")
    with pytest.raises(InvalidArgumentError):
        NusterDBVectorStore(embedding=_fake(), compression="zip")


def test_bad_call_arguments_store_nothing() -> None:
    emb = TableEmbeddings({"a": [1, 0], "b": [0, 1], "nan": [float("nan"), 0], "3d": [1, 2, 3]})
    store = NusterDBVectorStore.from_texts(["a"], emb, ids=["a"])
    assert store.db is not None
    with pytest.raises(TypeError, match="bogus"):
        store.similarity_search("a", bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        store.add_texts(["b"], bogus=1)
    with pytest.raises(InvalidArgumentError, match="2 metadatas for 1 texts"):
        store.add_texts(["b"], [{}, {}])
    with pytest.raises(InvalidArgumentError, match="2 ids for 1 texts"):
        store.add_texts(["b"], ids=["x", "y"])
    with pytest.raises(InvalidVectorError, match="'b2'"):
        store.add_texts(["b", "nan"], ids=["b1", "b2"])
    with pytest.raises(DimensionMismatchError):
        store.add_texts(["3d"], ids=["a"])
    with pytest.raises(DimensionMismatchError):
        store.add_texts(["b", "3d"], ids=["b1", "a"])
    with pytest.raises(InvalidArgumentError):
        store.add_texts(["b", "b"], ids=["b1", ""])
    # An invalid id after a stored one: refused before the stored one is replaced.
    with pytest.raises(InvalidArgumentError, match="1024"):
        store.add_texts(["b", "b"], ids=["a", "x" * 2000])
    with pytest.raises(TypeError, match="ids must be str"):
        store.add_texts(["b"], ids=[5])  # type: ignore[list-item]
    assert store.db.list_ids() == ["a"]
    assert store.get_by_ids(["a"]) == [Document(id="a", page_content="a", metadata={})]


def test_a_closed_store_raises_closed_error() -> None:
    store = NusterDBVectorStore.from_texts(["a"], _fake())
    store.close()
    with pytest.raises(nusterdb.ClosedError):
        store.similarity_search("a")


def test_import_nusterdb_does_not_import_langchain() -> None:
    code = (
        "import sys, nusterdb, nusterdb.integrations\n"
        "bad = [m for m in sys.modules if m.startswith(('langchain', 'nusterdb.integrations.'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_readme_section_is_the_example() -> None:
    """README.md's LangChain code is examples/langchain_quickstart.py (which CI runs)."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## LangChain\n") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```\n")]
    example = (root / "examples" / "langchain_quickstart.py").read_text(encoding="utf-8")
    assert code == example[example.index("from __future__") :]


def test_from_documents_by_vector_and_ef_search(tmp_path: Path) -> None:
    docs = [
        Document(id="x", page_content="x", metadata={"n": 1}),
        Document(page_content="y", metadata={"n": 2}),
    ]
    emb = TableEmbeddings({"x": [1, 0, 0], "y": [0, 1, 0], "q": [0.9, 0.1, 0]})
    with NusterDBVectorStore.from_documents(docs, emb, path=tmp_path / "db") as store:
        found = store.similarity_search("q", k=2)
        assert [d.page_content for d in found] == ["x", "y"]
        assert found[0] == docs[0]
        assert store.similarity_search_by_vector([0.9, 0.1, 0.0], k=2) == found
        assert store.similarity_search("q", k=2, ef_search=64) == found
        # ef_search reaches the database, which checks it.
        with pytest.raises(InvalidArgumentError, match="ef_search"):
            store.similarity_search("q", ef_search=0)
        with pytest.raises(InvalidArgumentError, match="ef_search"):
            store.max_marginal_relevance_search("q", ef_search=0)


def test_a_recall_target_reaches_the_database(tmp_path: Path) -> None:
    """``recall`` per search (also through ``as_retriever(search_kwargs=...)``) is the
    database's recall target; the ``recall`` option its default target."""
    rng = np.random.default_rng(5)
    texts = [f"t{i}" for i in range(300)]
    emb = TableEmbeddings({t: rng.standard_normal(8).tolist() for t in [*texts, "q"]})
    with NusterDBVectorStore(tmp_path / "db", embedding=emb, recall=0.9) as store:
        store.add_texts(texts, ids=texts)
        assert store.db is not None
        assert store.db.config.recall == pytest.approx(0.9)
        q = emb.embed_query("q")
        want = [i for i, _ in store.db.search(np.asarray(q, np.float32), k=4, recall=0.99)]
        got = store.similarity_search("q", k=4, recall=0.99)
        assert [d.id for d in got] == want
        retriever = store.as_retriever(search_kwargs={"k": 4, "recall": 0.99})
        assert [d.id for d in retriever.invoke("q")] == want
        by_default = [i for i, _ in store.db.search(np.asarray(q, np.float32), k=4)]
        assert [d.id for d in store.similarity_search("q", k=4)] == by_default
        with pytest.raises(InvalidArgumentError, match="recall"):
            store.similarity_search("q", recall=1.5)
        with pytest.raises(InvalidArgumentError, match="recall"):
            store.max_marginal_relevance_search("q", recall=0.0)
        with pytest.raises(InvalidArgumentError, match="recall"):
            store.similarity_search("q", recall=0.9, ef_search=20)
    with pytest.raises(InvalidArgumentError, match="recall"):
        NusterDBVectorStore(embedding=emb, recall=2.0).add_texts(["t0"])
