"""LlamaIndex quickstart: a VectorStoreIndex kept in NusterDB.

Needs the extra: ``pip install "nusterdb[llama-index]"``. Runs offline and without an LLM:
the embedding is a deterministic word-hashing one (use any LlamaIndex embedding model in
practice) and only retrieval is used.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from typing import List

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from nusterdb.integrations.llama_index import NusterDBVectorStore


class HashEmbedding(BaseEmbedding):
    """Bag of words: each word adds +-1 at a position given by its SHA-256."""

    dim: int = 64

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _embed(self, text: str) -> List[float]:
        v = [0.0] * self.dim
        v[0] = 1e-3  # never the zero vector
        for word in re.findall(r"\w+", text.lower()):
            h = hashlib.sha256(word.encode("utf-8")).digest()
            v[int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        return v

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._embed(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embed(text)


def main() -> None:
    docs = [
        Document(text="Rust ownership and borrowing", id_="rust", metadata={"year": 2015}),
        Document(text="Python generators and iterators", id_="python", metadata={"year": 2001}),
        Document(text="Pasta with garlic and olive oil", id_="pasta", metadata={"year": 1990}),
    ]
    embed_model = HashEmbedding()
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/llama_db"
        # Created on the first insert, with the embedding's dimension; string ids are the
        # node ids, the text is the NusterDB document, scalar metadata are filterable fields.
        store = NusterDBVectorStore(path, distance="cosine", index="hnsw")
        index = VectorStoreIndex.from_documents(
            docs,
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=embed_model,
        )
        for hit in index.as_retriever(similarity_top_k=2).retrieve("garlic pasta"):
            print(f"{hit.score:.3f}  {hit.node.ref_doc_id}: {hit.node.get_content()}")

        recent = MetadataFilters(
            filters=[MetadataFilter(key="year", operator=FilterOperator.GTE, value=2000)]
        )
        hits = index.as_retriever(similarity_top_k=2, filters=recent).retrieve("garlic pasta")
        assert {h.node.ref_doc_id for h in hits} == {"rust", "python"}

        index.delete_ref_doc("pasta")
        store.close()

        # Reopen: the nodes are in the database, no docstore is needed.
        reopened = NusterDBVectorStore(path)
        index = VectorStoreIndex.from_vector_store(reopened, embed_model=embed_model)
        (top,) = index.as_retriever(similarity_top_k=1).retrieve("python iterators")
        print(f"after reopen: {top.node.ref_doc_id}, {len(reopened.get_nodes())} nodes")
        assert top.node.ref_doc_id == "python"
        reopened.close()


if __name__ == "__main__":
    main()
