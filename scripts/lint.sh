#!/usr/bin/env bash
# Lint NusterDB as CI does: Rust formatting and clippy (warnings are errors), ruff lint and
# format, mypy --strict over the Python package, tests, examples and benchmarks, shellcheck
# over these scripts (when installed), and stubtest of the hand-written stub
# python/nusterdb/_core.pyi against the compiled module (when nusterdb is importable).
#
# The Python tools run from the interpreter in $PYTHON (default: python3, else python), so they
# see the same installed nusterdb, numpy and stubs as the tests.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") [--fix] [--no-stubtest | --stubtest-only]

  --fix            rewrite instead of checking: cargo fmt, ruff check --fix, ruff format
  --no-stubtest    skip stubtest (for runs before the extension is built)
  --stubtest-only  run only stubtest, after the wheel is installed (an error if
                   nusterdb._core does not import)
  -h, --help       show this help

Environment: PYTHON (the interpreter whose ruff/mypy are used), CARGO_TARGET_DIR
(default: \$HOME/.cache/nusterdb/target, shared with the other scripts).
USAGE
}

FIX=0
STUBTEST=auto
while [ "$#" -gt 0 ]; do
    case "$1" in
    --fix) FIX=1 ;;
    --no-stubtest) STUBTEST=no ;;
    --stubtest-only) STUBTEST=only ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        printf 'lint.sh: unknown argument: %s\n' "$1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# One target directory for every script and profile, so RocksDB's C++ is compiled once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nusterdb/target}"
PY="${PYTHON:-$(command -v python3 || command -v python || true)}"
[ -n "$PY" ] || { echo "lint.sh: no python interpreter found (set PYTHON)" >&2; exit 1; }

step() {
    printf '\n==> %s\n' "$*"
    "$@"
}

need_module() { # module, pip package
    if ! "$PY" -c "import $1" >/dev/null 2>&1; then
        echo "lint.sh: $2 is not installed for $PY; install it with: $PY -m pip install $2" >&2
        exit 1
    fi
}

run_stubtest() {
    if ! "$PY" -c 'import nusterdb._core' >/dev/null 2>&1; then
        if [ "$STUBTEST" = only ]; then
            # Asked for after an install: a module that does not import is an error.
            echo "lint.sh: stubtest: nusterdb._core does not import with $PY:" >&2
            "$PY" -c 'import nusterdb._core' >&2 || true
            exit 1
        fi
        printf '\n==> stubtest skipped: nusterdb is not importable by %s (build and install it first)\n' "$PY"
        return 0
    fi
    need_module mypy mypy
    step "$PY" -m mypy.stubtest nusterdb._core --allowlist scripts/stubtest-allowlist.txt
}

if [ "$STUBTEST" = only ]; then
    run_stubtest
    exit 0
fi

need_module ruff ruff
if [ "$FIX" = 1 ]; then
    step cargo fmt --all
    step "$PY" -m ruff check --fix .
    step "$PY" -m ruff format .
    printf '\nFixed what could be fixed; run %s to check the rest.\n' "scripts/lint.sh"
    exit 0
fi

step cargo fmt --all -- --check
# --release: the same profile as `cargo test --release` and `maturin build --release`, so the
# dependencies' build scripts (RocksDB's C++ above all) run once for all of them.
step cargo clippy --release --workspace --all-targets -- -D warnings
step "$PY" -m ruff check .
step "$PY" -m ruff format --check .

MYPY_DIRS=()
for d in python/nusterdb tests/python examples benchmarks; do
    if [ -d "$d" ]; then
        MYPY_DIRS+=("$d")
    fi
done
if [ "${#MYPY_DIRS[@]}" -gt 0 ]; then
    need_module mypy mypy
    step "$PY" -m mypy --strict "${MYPY_DIRS[@]}"
fi

if command -v shellcheck >/dev/null 2>&1; then
    step shellcheck scripts/*.sh
else
    printf '\n==> shellcheck skipped: not installed\n'
fi

if [ "$STUBTEST" = auto ]; then
    run_stubtest
fi

printf '\nlint: all checks passed\n'
