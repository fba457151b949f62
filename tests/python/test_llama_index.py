"""NusterDBVectorStore (nusterdb.integrations.llama_index) against LlamaIndex's contract.

Modelled on llama-index-core's tests of SimpleVectorStore and the integration stores'
tests: add/query/delete, every filter operator against a Python reference evaluator over
the same nodes (Hypothesis varies filters and metadata), node round trips, persistence
across reopen, get_nodes/delete_nodes/clear, MMR against a brute-force reference, and an
end-to-end VectorStoreIndex with a deterministic hashing embedding and no LLM.

Skips without llama-index-core, unless NUSTERDB_REQUIRE_INTEGRATIONS=1 (CI) on Python
3.9+, where a missing framework is a failure.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Union

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

# The extra needs Python 3.9+ (llama-index-core's floor); there it must be installed in CI.
if os.environ.get("NUSTERDB_REQUIRE_INTEGRATIONS") != "1" or sys.version_info < (3, 9):
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")

import nusterdb
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import (
    BaseNode,
    IndexNode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from nusterdb import ConfigMismatchError, FilterError, InvalidArgumentError, NusterDB
from nusterdb.integrations.llama_index import (
    NusterDBVectorStore,
    UnsupportedFilterError,
)

W1 = "AF3BE6C4-5F43-4D74-B075-6B0E07900DE8"
W2 = "7D9CD555-846C-445C-A9DD-F8924A01411D"
W3 = "452D24AB-F185-414C-A352-590B4B9EE51B"


def fixture_nodes() -> List[TextNode]:
    """The three nodes of llama-index-core's SimpleVectorStore tests."""
    return [
        TextNode(
            text="lorem ipsum",
            id_=W1,
            embedding=[1.0, 0.0],
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="test-0")},
            metadata={
                "weight": 1.0,
                "rank": "a",
                "quality": ["medium", "high"],
                "identifier": "6FTR78Yun",
            },
        ),
        TextNode(
            text="lorem ipsum",
            id_=W2,
            embedding=[0.0, 1.0],
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="test-1")},
            metadata={"weight": 2.0, "rank": "c", "quality": ["medium"], "identifier": "6FTR78Ygl"},
        ),
        TextNode(
            text="lorem ipsum",
            id_=W3,
            embedding=[1.0, 1.0],
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="test-2")},
            metadata={
                "weight": 3.0,
                "rank": "c",
                "quality": ["low", "medium", "high"],
                "identifier": "6FTR78Ztl",
            },
        ),
    ]


@pytest.fixture
def store() -> NusterDBVectorStore:
    s = NusterDBVectorStore()
    s.add(fixture_nodes())
    return s


def q(
    embedding: Sequence[float],
    k: int = 3,
    filters: Optional[MetadataFilters] = None,
    **kwargs: Any,
) -> VectorStoreQuery:
    return VectorStoreQuery(
        query_embedding=list(embedding), similarity_top_k=k, filters=filters, **kwargs
    )


def one(key: str, op: FilterOperator, value: Any) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, operator=op, value=value)])


# --- packaging --------------------------------------------------------------------------


def test_llama_index_is_an_extra_not_a_dependency() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    assert not [d for d in project["dependencies"] if "llama" in d.lower()]
    assert project["optional-dependencies"]["llama-index"] == [
        "llama-index-core>=0.12; python_version >= '3.9'"
    ]


def test_import_nusterdb_does_not_import_llama_index() -> None:
    code = (
        "import sys, nusterdb, nusterdb.integrations\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('llama_index',))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the SimpleVectorStore cases --------------------------------------------------------


def test_query_without_filters_sorted_by_similarity(store: NusterDBVectorStore) -> None:
    result = store.query(q([1.0, 1.0]))
    assert result.ids == [W3, W1, W2] or result.ids == [W3, W2, W1]
    assert result.similarities is not None
    # cosine: similarity = cos(query, node)
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-6)
    assert result.similarities[1:] == pytest.approx([math.sqrt(0.5)] * 2, abs=1e-6)
    assert result.nodes is not None
    assert [n.node_id for n in result.nodes] == result.ids
    assert all(n.get_content() == "lorem ipsum" for n in result.nodes)


@pytest.mark.parametrize(
    ("filters", "k", "expected"),
    [
        (MetadataFilters(filters=[MetadataFilter(key="rank", value="c")]), 3, [W3, W2]),
        (MetadataFilters(filters=[MetadataFilter(key="rank", value="c")]), 1, [W3]),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="rank", value="c"),
                    MetadataFilter(key="weight", value=2.0),
                ]
            ),
            3,
            [W2],
        ),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="weight", value=2),
                    MetadataFilter(key="weight", value=3),
                ]
            ),
            3,
            [],
        ),
        (MetadataFilters(filters=[MetadataFilter(key="unknown_field", value="c")]), 3, []),
    ],
)
def test_exact_match_filters(
    store: NusterDBVectorStore, filters: MetadataFilters, k: int, expected: List[str]
) -> None:
    assert store.query(q([1.0, 1.0], k, filters)).ids == expected


def test_filter_condition_or_and_not(store: NusterDBVectorStore) -> None:
    two: List[Union[MetadataFilter, MetadataFilters]] = [
        MetadataFilter(key="rank", value="c"),
        MetadataFilter(key="weight", value=1.0),
    ]
    or_ids = store.query(
        q([1.0, 1.0], 3, MetadataFilters(filters=two, condition=FilterCondition.OR))
    ).ids
    assert or_ids is not None
    assert sorted(or_ids) == sorted([W1, W2, W3])
    and_f = MetadataFilters(filters=two, condition=FilterCondition.AND)
    assert store.query(q([1.0, 1.0], 3, and_f)).ids == []
    not_f = MetadataFilters(
        filters=[MetadataFilter(key="rank", value="a")], condition=FilterCondition.NOT
    )
    assert store.query(q([1.0, 1.0], 3, not_f)).ids == [W3, W2]


@pytest.mark.parametrize(
    ("key", "op", "value", "expected"),
    [
        ("weight", FilterOperator.EQ, 1.0, {W1}),
        ("weight", FilterOperator.NE, 1.0, {W2, W3}),
        ("weight", FilterOperator.GT, 1.5, {W2, W3}),
        ("weight", FilterOperator.GTE, 1.0, {W1, W2, W3}),
        ("weight", FilterOperator.LT, 1.1, {W1}),
        ("weight", FilterOperator.LTE, 1.0, {W1}),
        ("weight", FilterOperator.EQ, 2, {W2}),  # ints and floats compare as numbers
        ("rank", FilterOperator.IN, ["a", "c"], {W1, W2, W3}),
        ("rank", FilterOperator.NIN, ["c"], {W1}),
        ("quality", FilterOperator.CONTAINS, "high", {W1, W3}),
        ("quality", FilterOperator.ANY, ["high", "low"], {W1, W3}),
        ("quality", FilterOperator.ALL, ["medium", "high"], {W1, W3}),
        ("identifier", FilterOperator.TEXT_MATCH, "6FTR78Y", {W1, W2}),
        ("identifier", FilterOperator.TEXT_MATCH, "6ftr78y", set()),
        ("identifier", FilterOperator.TEXT_MATCH_INSENSITIVE, "6ftr78y", {W1, W2}),
        ("identifier", FilterOperator.IS_EMPTY, None, set()),
        ("missing", FilterOperator.IS_EMPTY, None, {W1, W2, W3}),
        ("quality", FilterOperator.IS_EMPTY, None, set()),
    ],
)
def test_each_operator_on_the_fixture(
    store: NusterDBVectorStore, key: str, op: FilterOperator, value: Any, expected: Set[str]
) -> None:
    filters = one(key, op, value)
    ids = store.query(q([1.0, 1.0], 3, filters)).ids
    assert ids is not None
    assert set(ids) == expected
    assert {n.node_id for n in store.get_nodes(filters=filters)} == expected


def test_node_ids_and_doc_ids_restrict_the_query(store: NusterDBVectorStore) -> None:
    rank_c = MetadataFilters(filters=[MetadataFilter(key="rank", value="c")])
    assert store.query(q([1.0, 1.0], 3, rank_c, node_ids=[W3])).ids == [W3]
    assert store.query(q([1.0, 1.0], 3, rank_c, node_ids=[W1])).ids == []
    assert store.query(q([1.0, 1.0], 3, doc_ids=["test-0", "test-1"])).ids is not None
    ids = store.query(q([1.0, 1.0], 3, doc_ids=["test-0", "test-1"])).ids
    assert ids is not None
    assert sorted(ids) == sorted([W1, W2])
    # Empty lists restrict nothing: VectorIndexRetriever passes node_ids=[] for stores
    # that keep the nodes themselves.
    assert (
        store.query(q([1.0, 1.0], 3, node_ids=[], doc_ids=[])).ids == store.query(q([1.0, 1.0])).ids
    )


def test_delete_ref_doc(store: NusterDBVectorStore) -> None:
    store.delete("test-1")
    assert store.query(q([1.0, 1.0], 2)).ids == [W3, W1]
    store.delete("no-such-doc")
    assert len(store.get_nodes()) == 2


def test_delete_nodes_get_nodes_and_clear(store: NusterDBVectorStore) -> None:
    # Outside queries an empty id list selects nothing (deleting everything would be a trap).
    assert store.get_nodes(node_ids=[]) == []
    store.delete_nodes(node_ids=[])
    assert len(store.get_nodes()) == 3
    got = store.get_nodes(node_ids=[W3, "absent", W1, W3])
    assert [n.node_id for n in got] == [W3, W1]
    rank_c = MetadataFilters(filters=[MetadataFilter(key="rank", value="c")])
    assert [n.node_id for n in store.get_nodes(node_ids=[W1, W2], filters=rank_c)] == [W2]

    store.delete_nodes(node_ids=[W1, W2], filters=rank_c)  # only W2 is both
    assert sorted(n.node_id for n in store.get_nodes()) == sorted([W1, W3])
    store.delete_nodes(filters=one("weight", FilterOperator.GT, 2.5))
    assert [n.node_id for n in store.get_nodes()] == [W1]
    store.delete_nodes(node_ids=[W1, "absent"])
    assert store.get_nodes() == []

    store.add(fixture_nodes())
    store.clear()
    assert store.get_nodes() == []
    assert store.query(q([1.0, 1.0])).ids == []
    store.add(fixture_nodes()[:1])  # the cleared database takes nodes again
    assert store.query(q([1.0, 0.0], 3)).ids == [W1]


def test_delete_nodes_without_arguments_deletes_everything(store: NusterDBVectorStore) -> None:
    # As SimpleVectorStore.delete_nodes does: no ids and no filters select every node.
    store.delete_nodes()
    assert store.get_nodes() == []


def test_empty_store_answers_empty() -> None:
    s = NusterDBVectorStore()
    assert s.client is None
    assert s.query(q([1.0, 2.0])).ids == []
    assert s.get_nodes() == []
    s.delete("x")
    s.delete_nodes(node_ids=["x"])
    s.clear()
    assert s.add([]) == []
    assert s.client is None


# --- node round trip and upsert --------------------------------------------------------


def _dump(node: BaseNode) -> Dict[str, Any]:
    d = node.model_dump(mode="json")
    d.pop("embedding")
    return d


def rich_nodes() -> List[BaseNode]:
    parent = RelatedNodeInfo(node_id="doc-1", metadata={"page": 3})
    return [
        TextNode(
            id_="n1",
            text="Grüße — ünïcode text\nwith lines",
            embedding=[0.1, 0.2, 0.3, 0.4],
            metadata={
                "author": "Ann",
                "year": 2021,
                "score": 0.25,
                "flag": True,
                "tags": ["x", "y"],
                "nested": {"a": [1, 2, {"b": None}]},
                "none": None,
                "empty": "",
                "huge": 2**70,
                "inf": math.inf,
                "$dollar": "kept in the JSON",
                "doc_id": "a user value under a reserved name",
                "_node_content": "also a user value",
            },
            excluded_embed_metadata_keys=["author"],
            excluded_llm_metadata_keys=["year"],
            relationships={
                NodeRelationship.SOURCE: parent,
                NodeRelationship.NEXT: RelatedNodeInfo(node_id="n2"),
            },
            metadata_template="{key}::{value}",
            start_char_idx=5,
            end_char_idx=40,
        ),
        TextNode(id_="n2", text="", embedding=[0.0, 0.0, 1.0, 0.0]),
        IndexNode(
            id_="n3",
            text="index node",
            index_id="other-index",
            embedding=[0.5, 0.5, 0.5, 0.5],
            relationships={NodeRelationship.SOURCE: parent},
        ),
    ]


def test_nodes_round_trip_exactly() -> None:
    s = NusterDBVectorStore()
    nodes = rich_nodes()
    assert s.add(nodes) == ["n1", "n2", "n3"]
    back = {n.node_id: n for n in s.get_nodes()}
    for node in nodes:
        got = back[node.node_id]
        assert type(got) is type(node)
        assert _dump(got) == _dump(node)
        assert got.embedding == pytest.approx(node.embedding, abs=1e-7)
        assert got.ref_doc_id == node.ref_doc_id
    hits = s.query(q([0.1, 0.2, 0.3, 0.4], 3))
    assert hits.nodes is not None
    for got in hits.nodes:
        assert _dump(got) == _dump(next(n for n in nodes if n.node_id == got.node_id))
    # Scalars are filterable fields; the reserved name filters on the ref doc id.
    assert {n.node_id for n in s.get_nodes(filters=one("year", FilterOperator.GTE, 2021))} == {"n1"}
    assert {n.node_id for n in s.get_nodes(filters=one("doc_id", FilterOperator.EQ, "doc-1"))} == {
        "n1",
        "n3",
    }
    empty = one("empty", FilterOperator.IS_EMPTY, None)
    assert {n.node_id for n in s.get_nodes(filters=empty)} == {"n1", "n2", "n3"}
    # LlamaIndex serialises in JSON mode, where pydantic writes inf as null: empty.
    assert {n.node_id for n in s.get_nodes(filters=one("inf", FilterOperator.IS_EMPTY, None))} == {
        "n1",
        "n2",
        "n3",
    }
    for key in ("nested", "huge", "tags", "author"):
        f = one(key, FilterOperator.IS_EMPTY, None)
        assert {n.node_id for n in s.get_nodes(filters=f)} == {"n2", "n3"}, key
    db = s.client
    assert db is not None
    assert db.get_document("n1") == "Grüße — ünïcode text\nwith lines"


# Lone surrogates included: they are escaped in the node JSON.
_TEXT = st.characters()
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.text(_TEXT, max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    metadata=st.dictionaries(st.text(max_size=6), json_values, max_size=5),
    text=st.text(max_size=30),
    vector=st.lists(st.integers(-80, 80).map(lambda i: i / 8), min_size=3, max_size=3),
)
def test_round_trip_and_upsert_property(
    metadata: Dict[str, Any], text: str, vector: List[float]
) -> None:
    s = NusterDBVectorStore(distance="euclidean")
    first = TextNode(id_="same", text="old text", embedding=[1.0, 1.0, 1.0], metadata={"old": 1})
    s.add([first])
    node = TextNode(id_="same", text=text, embedding=vector, metadata=metadata)
    try:
        node.model_dump_json()
    except ValueError:
        return  # not serialisable by LlamaIndex itself (e.g. lone surrogates)
    s.add([node])  # upsert: replaces text, metadata and vector
    got = s.get_nodes()
    assert len(got) == 1
    assert _dump(got[0]) == _dump(node)
    assert got[0].embedding == vector  # float32 values come back exactly
    assert s.get_nodes(filters=one("old", FilterOperator.EQ, 1)) == [] or "old" in metadata


def test_add_repeated_id_keeps_last_and_needs_embeddings() -> None:
    s = NusterDBVectorStore()
    a = TextNode(id_="a", text="first", embedding=[1.0, 0.0])
    a2 = TextNode(id_="a", text="second", embedding=[0.0, 1.0])
    assert s.add([a, a2]) == ["a", "a"]
    (got,) = s.get_nodes()
    assert got.get_content() == "second"
    with pytest.raises(ValueError, match="embedding"):
        s.add([TextNode(id_="b", text="no embedding")])
    with pytest.raises(nusterdb.DimensionMismatchError):
        s.add([TextNode(id_="c", text="3-d", embedding=[1.0, 2.0, 3.0])])
    # A rejected batch that also replaces an existing node changes nothing at all.
    replace_a = TextNode(id_="a", text="third", embedding=[1.0, 1.0])
    with pytest.raises(nusterdb.DimensionMismatchError, match="'c'"):
        s.add([replace_a, TextNode(id_="c", text="3-d", embedding=[1.0, 2.0, 3.0])])
    with pytest.raises(nusterdb.InvalidVectorError, match="'d'"):
        s.add([replace_a, TextNode(id_="d", text="nan", embedding=[math.nan, 1.0])])
    (got,) = s.get_nodes()
    assert (got.node_id, got.get_content()) == ("a", "second")


# --- filters against a Python reference -------------------------------------------------

MISSING = object()


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _field(v: Any) -> Any:
    """The value as NusterDB holds it as a field, or MISSING."""
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else MISSING
    if isinstance(v, float):
        return v if math.isfinite(v) else MISSING
    return MISSING


def _eq(a: Any, b: Any) -> bool:
    if _num(a) or _num(b):
        return _num(a) and _num(b) and a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return isinstance(a, str) and isinstance(b, str) and a == b


def _cmp(a: Any, b: Any) -> Optional[int]:
    if (_num(a) and _num(b)) or (isinstance(a, str) and isinstance(b, str)):
        return int(a > b) - int(a < b)
    return None


def reference(metadata: Dict[str, Any], f: Union[MetadataFilter, MetadataFilters]) -> bool:
    """The documented semantics, evaluated on the node's own metadata."""
    if isinstance(f, MetadataFilters):
        results = [reference(metadata, sub) for sub in f.filters]
        if f.condition == FilterCondition.OR:
            return any(results)
        if f.condition == FilterCondition.NOT:
            return not any(results)
        return all(results)
    raw = metadata.get(f.key, MISSING)
    field = _field(raw) if raw is not MISSING else MISSING
    op, value = f.operator, f.value
    if op == FilterOperator.IS_EMPTY:
        return raw is MISSING or raw is None or raw == "" or raw == []
    if op == FilterOperator.EQ:
        return field is not MISSING and _eq(field, value)
    if op == FilterOperator.NE:
        return not (field is not MISSING and _eq(field, value))
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        c = None if field is MISSING else _cmp(field, value)
        if c is None:
            return False
        return {
            FilterOperator.GT: c > 0,
            FilterOperator.GTE: c >= 0,
            FilterOperator.LT: c < 0,
            FilterOperator.LTE: c <= 0,
        }[op]
    assert isinstance(value, list) or op not in (FilterOperator.IN, FilterOperator.NIN)
    if op == FilterOperator.IN:
        return field is not MISSING and any(_eq(field, x) for x in value)  # type: ignore[union-attr]
    if op == FilterOperator.NIN:
        return not (field is not MISSING and any(_eq(field, x) for x in value))  # type: ignore[union-attr]
    if op == FilterOperator.TEXT_MATCH:
        return isinstance(field, str) and isinstance(value, str) and value in field
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return isinstance(field, str) and isinstance(value, str) and value.lower() in field.lower()
    if op == FilterOperator.CONTAINS:
        return isinstance(raw, list) and any(_eq(x, value) for x in raw)
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        assert isinstance(value, list)
        if not isinstance(raw, list):
            return False
        hits = [any(_eq(x, v) for x in raw) for v in value]
        return any(hits) if op == FilterOperator.ANY else all(hits)
    raise AssertionError(f"operator {op} not covered by the reference")


def test_reference_covers_every_operator() -> None:
    # A new LlamaIndex operator must get a translation (or an explicit error) and a test.
    for op in FilterOperator:
        filters = one("k", op, ["a"] if op in _LIST_OPS else "a")
        reference({"k": ["a"]}, filters)


_LIST_OPS = {FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL}
_WORDS = ["", "a", "ab", "B", "ba", "Ab", "é"]
_SCALARS: List[Any] = [0, 1, 2, -1, 1.0, 1.5, 2.0, 2**62, "a", "ab", "B", "", True, False]


def _metadata_pool(n: int, seed: int) -> List[Dict[str, Any]]:
    """Metadata with overlapping values across types: the keys hold ints, floats, strs,
    bools, lists, None, out-of-range ints or nothing, mixed across nodes."""
    rng = np.random.default_rng(seed)
    out: List[Dict[str, Any]] = []
    for _ in range(n):
        m: Dict[str, Any] = {}
        for key in ("i", "f", "s", "mix", "lst"):
            roll = rng.random()
            if roll < 0.12:
                continue
            if key == "i":
                m[key] = int(rng.integers(-2, 4))
            elif key == "f":
                m[key] = float(rng.choice([0.5, 1.0, 1.5, 2.0, -0.0]))
            elif key == "s":
                m[key] = str(rng.choice(_WORDS))
            elif key == "lst":
                size = int(rng.integers(0, 4))
                m[key] = [_SCALARS[int(j)] for j in rng.integers(0, len(_SCALARS), size)]
            else:
                choices: List[Any] = [*_SCALARS, None, [], ["a", 1], {"x": 1}, 2**70, math.nan]
                m[key] = choices[int(rng.integers(0, len(choices)))]
        out.append(m)
    return out


RAW_POOL = _metadata_pool(40, seed=20261206)
# What the store sees: LlamaIndex's JSON-mode serialisation (NaN becomes None there).
POOL = [TextNode(metadata=m).model_dump(mode="json")["metadata"] for m in RAW_POOL]
KEYS = ["i", "f", "s", "mix", "lst", "absent"]


def _pool_store(**options: Any) -> NusterDBVectorStore:
    rng = np.random.default_rng(7)
    s = NusterDBVectorStore(**options)
    s.add(
        [
            TextNode(
                id_=f"p{j:02d}", text=f"node {j}", embedding=rng.normal(size=6).tolist(), metadata=m
            )
            for j, m in enumerate(RAW_POOL)
        ]
    )
    return s


FLAT_POOL = _pool_store()
HNSW_POOL = _pool_store(index="hnsw", distance="euclidean", max_nb_connection=4)

scalar_values = st.sampled_from([v for v in _SCALARS if not isinstance(v, bool)])


@st.composite
def leaf_filters(draw: st.DrawFn) -> MetadataFilter:
    key = draw(st.sampled_from(KEYS))
    op = draw(st.sampled_from(list(FilterOperator)))
    value: Any
    if op in (FilterOperator.IN, FilterOperator.NIN):
        value = draw(st.lists(scalar_values, max_size=3))
    elif op in (FilterOperator.ANY, FilterOperator.ALL):
        value = draw(st.lists(scalar_values, min_size=1, max_size=3))
    elif op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        value = draw(st.sampled_from(_WORDS))
    elif op == FilterOperator.IS_EMPTY:
        value = None
    else:
        value = draw(scalar_values)
    # Lists must be homogeneous for MetadataFilter's validation (List[StrictStr] etc.).
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        if len(kinds) > 1:
            value = [v for v in value if type(v) is type(value[0])]
    return MetadataFilter(key=key, operator=op, value=value)


filter_trees = st.recursive(
    leaf_filters(),
    lambda inner: st.builds(
        MetadataFilters,
        filters=st.lists(inner, min_size=1, max_size=3),
        condition=st.sampled_from(list(FilterCondition)),
    ),
    max_leaves=6,
)


def _as_filters(tree: Union[MetadataFilter, MetadataFilters]) -> MetadataFilters:
    return tree if isinstance(tree, MetadataFilters) else MetadataFilters(filters=[tree])


@given(tree=filter_trees)
def test_filters_match_the_python_reference(tree: Union[MetadataFilter, MetadataFilters]) -> None:
    filters = _as_filters(tree)
    expected = {f"p{j:02d}" for j, m in enumerate(POOL) if reference(m, filters)}
    got = {n.node_id for n in FLAT_POOL.get_nodes(filters=filters)}
    assert got == expected
    # The same filter in a query: the k nearest among exactly those nodes.
    result = FLAT_POOL.query(q([0.3] * 6, len(POOL), filters))
    assert result.ids is not None
    assert set(result.ids) == expected
    hnsw = HNSW_POOL.query(q([0.3] * 6, len(POOL), filters))
    assert hnsw.ids is not None
    assert set(hnsw.ids) == expected


def test_every_operator_is_exercised_with_matches() -> None:
    # The pool gives each operator both matching and non-matching nodes somewhere.
    for op in FilterOperator:
        counts = set()
        for key in KEYS[:-1]:
            for value in (["a", "ab"] if op in _LIST_OPS else "a", [1] if op in _LIST_OPS else 1):
                f = one(key, op, value if op != FilterOperator.IS_EMPTY else None)
                counts.add(sum(reference(m, f) for m in POOL))
        assert any(0 < c < len(POOL) for c in counts), op


def test_filter_errors_are_typed_and_name_the_problem(store: NusterDBVectorStore) -> None:
    bogus_op = MetadataFilter.model_construct(key="rank", value="a", operator="regex")
    with pytest.raises(UnsupportedFilterError, match="regex"):
        store.query(q([1.0, 1.0], 3, MetadataFilters(filters=[bogus_op])))
    assert issubclass(UnsupportedFilterError, NotImplementedError)
    assert issubclass(UnsupportedFilterError, FilterError)
    bogus_cond = MetadataFilters.model_construct(
        filters=[MetadataFilter(key="rank", value="a")], condition="xor"
    )
    with pytest.raises(UnsupportedFilterError, match="xor"):
        store.get_nodes(filters=bogus_cond)
    for bad in (
        one("rank", FilterOperator.EQ, ["a"]),
        one("rank", FilterOperator.IN, "a"),
        one("rank", FilterOperator.GT, None),
        one("quality", FilterOperator.ANY, []),
        one("identifier", FilterOperator.TEXT_MATCH, 3),
        one("$rank", FilterOperator.EQ, "a"),
        one("", FilterOperator.EQ, "a"),
    ):
        with pytest.raises(FilterError):
            store.query(q([1.0, 1.0], 3, bad))
        with pytest.raises(FilterError):
            store.delete_nodes(filters=bad)
    assert len(store.get_nodes()) == 3  # nothing was deleted by a rejected filter


def test_empty_and_nested_empty_filter_lists(store: NusterDBVectorStore) -> None:
    everything = {W1, W2, W3}
    for cond in FilterCondition:
        top = MetadataFilters(filters=[], condition=cond)
        assert {n.node_id for n in store.get_nodes(filters=top)} == everything
        nested = MetadataFilters(filters=[MetadataFilters(filters=[], condition=cond)])
        expected = set() if cond == FilterCondition.OR else everything
        assert {n.node_id for n in store.get_nodes(filters=nested)} == expected


# --- queries: modes, similarities, MMR --------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x))


@pytest.mark.parametrize(
    "distance", ["cosine", "euclidean", "inner_product", "angular", "manhattan"]
)
def test_similarity_mapping(distance: str, rng: np.random.Generator) -> None:
    vectors = rng.normal(size=(30, 5)).astype(np.float32)
    s = NusterDBVectorStore(distance=distance)
    s.add([TextNode(id_=f"v{j}", text="t", embedding=v.tolist()) for j, v in enumerate(vectors)])
    query = rng.normal(size=5).astype(np.float32)
    result = s.query(q(query.tolist(), 30))
    assert result.ids is not None
    assert result.similarities is not None
    x = vectors.astype(np.float64)
    qq = query.astype(np.float64)
    cos = (x @ qq) / (np.linalg.norm(x, axis=1) * np.linalg.norm(qq))
    expected = {
        "cosine": cos,
        "inner_product": x @ qq,
        "angular": 1 - np.arccos(np.clip(cos, -1, 1)) / math.pi,
        "euclidean": 1 / (1 + np.linalg.norm(x - qq, axis=1)),
        "manhattan": 1 / (1 + np.abs(x - qq).sum(axis=1)),
    }[distance]
    got = dict(zip(result.ids, result.similarities))
    for j in range(30):
        assert got[f"v{j}"] == pytest.approx(expected[j], rel=1e-4, abs=1e-4)
    assert result.similarities == sorted(result.similarities, reverse=True)


def _mmr_reference(
    query_sims: List[float], sims: Callable[[int, int], float], k: int, lam: float
) -> List[int]:
    chosen: List[int] = []
    while len(chosen) < min(k, len(query_sims)):
        best, best_score = -1, -math.inf
        for i in range(len(query_sims)):
            if i in chosen:
                continue
            redundancy = max((sims(i, j) for j in chosen), default=0.0)
            score = lam * query_sims[i] - (1 - lam) * redundancy
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_mmr_matches_a_brute_force_reference(lam: float, rng: np.random.Generator) -> None:
    base = rng.normal(size=(8, 4))
    # Near-duplicates: MMR should spread over them, plain top-k does not.
    vectors = np.concatenate([base, base + rng.normal(scale=0.01, size=base.shape)])
    s = NusterDBVectorStore()
    s.add(
        [TextNode(id_=f"m{j:02d}", text="t", embedding=v.tolist()) for j, v in enumerate(vectors)]
    )
    query = rng.normal(size=4)
    k, fetch = 4, 12
    plain = s.query(q(query.tolist(), fetch))
    assert plain.ids is not None
    assert plain.similarities is not None
    cand = [int(i[1:]) for i in plain.ids]
    unit = np.array([_unit(vectors[c].astype(np.float32).astype(np.float64)) for c in cand])
    expected = _mmr_reference(plain.similarities, lambda i, j: float(unit[i] @ unit[j]), k, lam)
    result = s.query(
        q(query.tolist(), k, mode=VectorStoreQueryMode.MMR, mmr_threshold=lam), mmr_prefetch_k=fetch
    )
    assert result.ids == [plain.ids[i] for i in expected]
    assert result.similarities == pytest.approx([plain.similarities[i] for i in expected])
    if lam == 1.0:
        assert result.ids == plain.ids[:k]
    # The keyword form (as VectorIndexRetriever passes it) gives the same answer.
    via_kwargs = s.query(
        q(query.tolist(), k, mode=VectorStoreQueryMode.MMR),
        mmr_threshold=lam,
        mmr_prefetch_factor=fetch / k,
    )
    assert via_kwargs.ids == result.ids


def test_query_argument_errors(store: NusterDBVectorStore) -> None:
    with pytest.raises(NotImplementedError, match="sparse"):
        store.query(q([1.0, 1.0], mode=VectorStoreQueryMode.SPARSE))
    with pytest.raises(TypeError, match="bogus"):
        store.query(q([1.0, 1.0]), bogus=1)
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_embedding=None))
    with pytest.raises(InvalidArgumentError, match="similarity_top_k"):
        store.query(q([1.0, 1.0], k=0))
    with pytest.raises(InvalidArgumentError, match="mmr_threshold"):
        store.query(q([1.0, 1.0], mode=VectorStoreQueryMode.MMR, mmr_threshold=1.5))
    with pytest.raises(ValueError, match="twice"):
        store.query(
            q([1.0, 1.0], mode=VectorStoreQueryMode.MMR, mmr_threshold=0.2), mmr_threshold=0.3
        )


# --- options and persistence ------------------------------------------------------------


def test_db_options_reach_the_config(tmp_path: Path) -> None:
    s = NusterDBVectorStore(
        tmp_path / "db",
        distance="inner_product",
        index="hnsw",
        max_nb_connection=8,
        ef_construction=64,
        ef_search=32,
        use_heuristic=False,
        cache_size_mb=16,
        compression="zstd",
        sync_writes=True,
        auto_snapshot=False,
    )
    before = s.client
    assert before is None  # created by the first add
    s.add([TextNode(id_="a", text="t", embedding=[1.0, 2.0])])
    db = s.client
    assert db is not None
    cfg = db.config
    assert (cfg.dim, cfg.index_type, cfg.distance_metric.name, cfg.id_type) == (
        2,
        "hnsw",
        "inner_product",
        "str",
    )
    h = cfg.hnsw_config
    assert (h.max_nb_connection, h.ef_construction, h.ef_search, h.use_heuristic) == (
        8,
        64,
        32,
        False,
    )
    st_cfg = cfg.storage_config
    assert (st_cfg.cache_size_mb, st_cfg.compression, st_cfg.sync_writes) == (16, "zstd", True)
    default = NusterDBVectorStore()
    default.add([TextNode(id_="a", text="t", embedding=[1.0, 2.0])])
    assert default.client is not None
    assert default.client.config.distance_metric.name == "cosine"
    assert default.client.config.index_type == "flat"
    ivf = NusterDBVectorStore(index="ivf", nlist=4, nprobe=2)
    ivf.add([TextNode(id_="a", text="t", embedding=[1.0, 2.0])])
    assert ivf.client is not None
    cfg = ivf.client.config
    assert (cfg.index_type, cfg.nlist, cfg.nprobe) == ("ivf", 4, 2)


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dimension"):
        NusterDBVectorStore(dimension=3)
    with pytest.raises(InvalidArgumentError, match="ef_search"):
        NusterDBVectorStore(ef_search=10)  # an HNSW knob on the default flat index
    with pytest.raises(InvalidArgumentError, match="chebyshev"):
        NusterDBVectorStore(distance="chebyshev")
    with pytest.raises(InvalidArgumentError, match="index"):
        NusterDBVectorStore(index="ivfpq")
    with pytest.raises(InvalidArgumentError):
        NusterDBVectorStore(index="hnsw", max_nb_connection=1).add(
            [TextNode(id_="a", text="t", embedding=[1.0])]
        )


def test_an_encrypted_store_needs_its_key(tmp_path: Path) -> None:
    path = tmp_path / "store"
    enc = nusterdb.EncryptionConfig(bytes(range(32)))
    s = NusterDBVectorStore(str(path), encryption=enc)
    nodes = rich_nodes()
    s.add(nodes)
    before = s.query(q([0.1, 0.2, 0.3, 0.4], 3))
    s.close()
    with pytest.raises(nusterdb.EncryptionKeyError):
        NusterDBVectorStore(path)
    again = NusterDBVectorStore(path, encryption=enc)
    assert again.client is not None
    assert again.client.config.encrypted
    assert again.query(q([0.1, 0.2, 0.3, 0.4], 3)).ids == before.ids
    again.close()


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store"
    s = NusterDBVectorStore(str(path), index="hnsw", distance="euclidean", sync_writes=True)
    nodes = rich_nodes()
    s.add(nodes)
    before = s.query(q([0.1, 0.2, 0.3, 0.4], 3))
    s.close()

    again = NusterDBVectorStore(path)  # no options: the stored configuration
    assert again.client is not None
    assert again.client.config.index_type == "hnsw"
    after = again.query(q([0.1, 0.2, 0.3, 0.4], 3))
    assert after.ids == before.ids
    assert after.similarities == before.similarities
    assert {n.node_id: _dump(n) for n in again.get_nodes()} == {n.node_id: _dump(n) for n in nodes}
    again.delete("doc-1")
    assert [n.node_id for n in again.get_nodes()] == ["n2"]
    again.close()

    with pytest.raises(ConfigMismatchError, match="distance"):
        NusterDBVectorStore(path, distance="cosine")
    tuned = NusterDBVectorStore(path, ef_search=50, cache_size_mb=8)  # runtime knobs apply
    assert tuned.client is not None
    assert tuned.client.config.hnsw_config.ef_search == 50
    storage = tuned.client.config.storage_config
    assert storage.cache_size_mb == 8
    assert storage.sync_writes  # stored, and not given at this reopen: kept
    assert [n.node_id for n in tuned.get_nodes()] == ["n2"]
    tuned.close()


def test_reopen_refuses_int_id_databases_and_creates_in_empty_dirs(tmp_path: Path) -> None:
    int_path = tmp_path / "ints"
    NusterDB(str(int_path), dim=2).close()
    with pytest.raises(ConfigMismatchError, match="string ids"):
        NusterDBVectorStore(int_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    s = NusterDBVectorStore(empty)
    assert s.client is None
    s.add([TextNode(id_="a", text="t", embedding=[1.0, 2.0])])
    s.close()
    assert [n.node_id for n in NusterDBVectorStore(empty).get_nodes()] == ["a"]


# --- end to end -------------------------------------------------------------------------


class HashEmbedding(BaseEmbedding):
    """Deterministic bag-of-words embedding: each word adds ±1 at a hashed position."""

    dim: int = 64

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _embed(self, text: str) -> List[float]:
        v = np.zeros(self.dim)
        v[0] = 1e-3  # never the zero vector
        for word in re.findall(r"\w+", text.lower()):
            h = hashlib.sha256(word.encode("utf-8")).digest()
            v[int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        return [float(x) for x in v]

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._embed(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embed(text)


def test_vector_store_index_end_to_end(tmp_path: Path) -> None:
    docs = [
        Document(text="Rust ownership and borrowing rules", id_="rust", metadata={"lang": "rust"}),
        Document(text="Python generators and iterators", id_="py", metadata={"lang": "python"}),
        Document(
            text="Cooking pasta with garlic and olive oil", id_="food", metadata={"lang": "none"}
        ),
    ]
    store = NusterDBVectorStore(tmp_path / "index")
    ctx = StorageContext.from_defaults(vector_store=store)
    embed = HashEmbedding()
    index = VectorStoreIndex.from_documents(docs, storage_context=ctx, embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=1)
    (hit,) = retriever.retrieve("pasta garlic")
    assert hit.node.ref_doc_id == "food"
    assert hit.node.get_content() == "Cooking pasta with garlic and olive oil"
    assert hit.node.metadata == {"lang": "none"}

    filtered = index.as_retriever(
        similarity_top_k=3, filters=one("lang", FilterOperator.IN, ["rust", "python"])
    )
    assert {h.node.ref_doc_id for h in filtered.retrieve("pasta garlic")} == {"rust", "py"}

    mmr = index.as_retriever(
        similarity_top_k=2,
        vector_store_query_mode="mmr",
        vector_store_kwargs={"mmr_threshold": 0.5},
    )
    assert len(mmr.retrieve("python generators")) == 2

    index.insert(Document(text="More about Python iterators", id_="py2"))
    index.delete_ref_doc("food")
    refs = {n.ref_doc_id for n in store.get_nodes()}
    assert refs == {"rust", "py", "py2"}
    assert all(
        h.node.ref_doc_id != "food"
        for h in index.as_retriever(similarity_top_k=5).retrieve("pasta")
    )


# --- LlamaIndex's own evaluator as a second reference -----------------------------------

_SIMPLE_WORDS = ["a", "ab", "b", "Ba", ""]
_SIMPLE_NUMS: List[Union[int, float]] = [0, 1, 2, 1.5, -1.0]


def _simple_pool(seed: int) -> List[TextNode]:
    """Nodes on which LlamaIndex's SimpleVectorStore evaluator is defined for every
    operator used below: a number under "n", a str under "s", a list of strs under "l"."""
    rng = np.random.default_rng(seed)
    return [
        TextNode(
            id_=f"s{j:02d}",
            text="t",
            embedding=rng.normal(size=4).tolist(),
            metadata={
                "n": _SIMPLE_NUMS[int(rng.integers(0, len(_SIMPLE_NUMS)))],
                "s": _SIMPLE_WORDS[int(rng.integers(0, len(_SIMPLE_WORDS)))],
                "l": [_SIMPLE_WORDS[int(i)] for i in rng.integers(0, 5, int(rng.integers(0, 4)))],
            },
        )
        for j in range(30)
    ]


@st.composite
def simple_leaves(draw: st.DrawFn) -> MetadataFilter:
    op = draw(st.sampled_from(list(FilterOperator)))
    words = st.sampled_from(_SIMPLE_WORDS)
    nums = st.sampled_from(_SIMPLE_NUMS)
    if op in (FilterOperator.CONTAINS,):
        return MetadataFilter(key="l", operator=op, value=draw(words))
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        return MetadataFilter(
            key="l", operator=op, value=draw(st.lists(words, min_size=1, max_size=3))
        )
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        return MetadataFilter(key="s", operator=op, value=draw(words))
    if op == FilterOperator.IS_EMPTY:
        return MetadataFilter(
            key=draw(st.sampled_from(["s", "l", "n", "x"])), operator=op, value=None
        )
    key = draw(st.sampled_from(["n", "s"]))
    values = nums if key == "n" else words
    if op in (FilterOperator.IN, FilterOperator.NIN):
        value: Any = draw(st.lists(values, max_size=3))
        if key == "n":  # MetadataFilter wants one number type per list
            value = [float(v) for v in value]
        return MetadataFilter(key=key, operator=op, value=value)
    return MetadataFilter(key=key, operator=op, value=draw(values))


SIMPLE_NODES = _simple_pool(seed=11)
SIMPLE_OURS = NusterDBVectorStore()
SIMPLE_OURS.add(SIMPLE_NODES)
SIMPLE_THEIRS = SimpleVectorStore()
SIMPLE_THEIRS.add(SIMPLE_NODES)


@given(
    leaves=st.lists(simple_leaves(), min_size=1, max_size=3),
    condition=st.sampled_from(list(FilterCondition)),
)
def test_filters_agree_with_simple_vector_store(
    leaves: List[MetadataFilter], condition: FilterCondition
) -> None:
    filters = MetadataFilters(filters=list(leaves), condition=condition)
    query = q([0.5, -0.5, 0.25, 1.0], len(SIMPLE_NODES), filters)
    theirs = SIMPLE_THEIRS.query(query)
    ours = SIMPLE_OURS.query(query)
    assert theirs.ids is not None
    assert ours.ids is not None
    assert set(ours.ids) == set(theirs.ids)
    # Cosine similarities as SimpleVectorStore computes them.
    assert theirs.similarities is not None
    assert ours.similarities is not None
    expected = dict(zip(theirs.ids, theirs.similarities))
    for node_id, sim in zip(ours.ids, ours.similarities):
        assert sim == pytest.approx(expected[node_id], abs=1e-5)


def test_a_recall_target_reaches_the_database(tmp_path: Path) -> None:
    """``query(..., recall=r)`` (a retriever's ``vector_store_kwargs``) is the
    database's recall target; the ``recall`` option its default target."""
    rng = np.random.default_rng(6)
    vectors = rng.standard_normal((300, 8))
    s = NusterDBVectorStore(tmp_path / "db", index="hnsw", recall=0.9)
    s.add(
        [TextNode(id_=f"n{i}", text=f"t{i}", embedding=v.tolist()) for i, v in enumerate(vectors)]
    )
    db = s.client
    assert db is not None
    assert db.config.recall == pytest.approx(0.9)
    query = rng.standard_normal(8)
    for r in (None, 0.99):
        want = [i for i, _ in db.search(query.astype(np.float32), k=5, recall=r)]
        kwargs = {} if r is None else {"recall": r}
        assert s.query(q(query.tolist(), 5), **kwargs).ids == want
    with pytest.raises(InvalidArgumentError, match="recall"):
        s.query(q(query.tolist(), 5), recall=1.5)
