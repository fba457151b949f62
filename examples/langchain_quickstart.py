"""NusterDB as a LangChain vector store (``pip install nusterdb[langchain]``).

The same code as README.md's "LangChain" section; it runs in a temporary directory.
"""

from __future__ import annotations

import hashlib
import tempfile

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from nusterdb.integrations.langchain import NusterDBVectorStore


class WordHashEmbeddings(Embeddings):
    """A toy embedding: each word hashed into one of 256 buckets (use a real model in
    practice). Texts that share words come out close."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        v = np.zeros(256)
        for word in text.lower().split():
            v[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % 256] += 1
        return [float(x) for x in v / max(float(np.linalg.norm(v)), 1e-12)]


with tempfile.TemporaryDirectory() as tmp:
    path = f"{tmp}/docs.db"  # path=None keeps the store in memory
    store = NusterDBVectorStore(path, embedding=WordHashEmbeddings())  # cosine, HNSW
    store.add_documents(
        [
            Document(id="cat", page_content="the cat sat on the mat", metadata={"year": 2021}),
            Document(id="dog", page_content="a dog runs in the park", metadata={"year": 2023}),
            Document(
                id="news",
                page_content="markets fell sharply today",
                metadata={"year": 2024, "tickers": ["ACME", "XYZ"], "source": None},
            ),
        ]
    )

    [best] = store.similarity_search("where the cat sat", k=1)
    print(best.id, best.page_content)  # cat the cat sat on the mat
    assert best.id == "cat"

    # filter= takes NusterDB's filter language, on the top-level str/int/float/bool values.
    recent = store.similarity_search("the cat", k=3, filter={"year": {"$gte": 2023}})
    assert {d.id for d in recent} == {"dog", "news"}

    for doc, score in store.similarity_search_with_relevance_scores("markets today", k=2):
        print(f"{score:.3f} {doc.id}")  # in [0, 1], 1 = most relevant

    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 2})
    print([d.id for d in retriever.invoke("the cat and the dog")])

    store.add_documents([Document(id="cat", page_content="the cat moved", metadata={})])
    store.delete(["dog"])
    store.close()

    # Reopening the path gives back everything, metadata exactly as it was given.
    with NusterDBVectorStore(path, embedding=WordHashEmbeddings()) as again:
        docs = {d.id: d for d in again.get_by_ids(["cat", "dog", "news"])}
        assert set(docs) == {"cat", "news"}
        assert docs["cat"].page_content == "the cat moved"
        assert docs["news"].metadata == {"year": 2024, "tickers": ["ACME", "XYZ"], "source": None}
        print("reopened:", sorted(d.id or "" for d in docs.values()))
