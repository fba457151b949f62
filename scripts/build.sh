#!/usr/bin/env bash
# The clean release build of NusterDB, from sources to a wheel proven to install:
#   1. clean NusterDB's own crates (not the dependencies: see below) and dist/
#   2. lint (scripts/lint.sh; stubtest runs later, against the installed wheel)
#   3. Rust tests: cargo test --release --workspace
#   4. maturin build --release --out dist  -> one abi3 wheel (CPython >= 3.8)
#   5. a fresh virtual env in a temporary directory: pip install the wheel + numpy, an import
#      check run from outside the source tree, stubtest, and the Python test suite
#   6. list the wheel and its contents
# --skip-tests skips steps 3 and the test suite of step 5 (lint and the import check still run).
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") [--skip-tests] [--venv DIR]

  --skip-tests  skip the Rust tests and the Python test suite (lint and the
                import check in a fresh virtual env still run)
  --venv DIR    create the fresh verification venv at DIR and keep it
                (default: a temporary directory, removed at the end)
  -h, --help    show this help

Environment: PYTHON (interpreter for the venv, default python3), CARGO_TARGET_DIR
(default: \$HOME/.cache/nusterdb/target, shared with the other scripts).
USAGE
}

SKIP_TESTS=0
VENV=""
while [ "$#" -gt 0 ]; do
    case "$1" in
    --skip-tests) SKIP_TESTS=1 ;;
    --venv)
        [ "$#" -ge 2 ] || { usage >&2; exit 2; }
        VENV="$2"
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        printf 'build.sh: unknown argument: %s\n' "$1" >&2
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
[ -n "$PY" ] || { echo "build.sh: no python interpreter found (set PYTHON)" >&2; exit 1; }
# The test suite's dependencies are the wheel's `test` extra (pyproject.toml); tomli stands in
# for tomllib before Python 3.11.
TEST_EXTRA_DEPS=("tomli; python_version < '3.11'")

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [ -z "$VENV" ]; then
    VENV="$WORK/venv"
fi

header() { printf '\n===== %s =====\n' "$*"; }
step() {
    printf '\n==> %s\n' "$*"
    "$@"
}
venv_python() { # the interpreter of the venv at $1 (POSIX or Windows layout)
    if [ -x "$1/bin/python" ]; then
        echo "$1/bin/python"
    else
        echo "$1/Scripts/python.exe"
    fi
}

header "1/6 clean"
# Only NusterDB's own crates. A full `cargo clean` would also throw away librocksdb-sys, whose
# C++ build takes many minutes, and it cannot change the result: dependencies are rebuilt
# whenever their version, features or profile change. Cleaning our crates guarantees that the
# wheel is compiled from the sources as they are now.
CLEAN_ARGS=()
for pkg in nusterdb-core nusterdb-py; do
    if cargo pkgid "$pkg" >/dev/null 2>&1; then
        CLEAN_ARGS+=(-p "$pkg")
    fi
done
if [ "${#CLEAN_ARGS[@]}" -gt 0 ]; then
    step cargo clean "${CLEAN_ARGS[@]}"
fi
step rm -rf dist

header "2/6 lint"
if ! "$PY" -c 'import ruff, mypy' >/dev/null 2>&1; then
    step "$PY" -m pip install --quiet ruff mypy types-PyYAML
fi
step scripts/lint.sh --no-stubtest

header "3/6 Rust tests"
if [ "$SKIP_TESTS" = 1 ]; then
    echo "skipped (--skip-tests)"
else
    step cargo test --release --workspace
fi

header "4/6 wheel"
step maturin build --release --out dist
WHEELS=(dist/nusterdb-*.whl)
if [ "${#WHEELS[@]}" -ne 1 ] || [ ! -f "${WHEELS[0]}" ]; then
    echo "build.sh: expected exactly one wheel in dist/, found: ${WHEELS[*]}" >&2
    exit 1
fi
WHEEL="$ROOT/${WHEELS[0]}"
case "$WHEEL" in
*-abi3-*) ;;
*)
    echo "build.sh: $WHEEL is not an abi3 wheel (pyo3's abi3-py38 feature is missing?)" >&2
    exit 1
    ;;
esac

header "5/6 fresh virtual env"
step "$PY" -m venv --clear "$VENV"
VPY="$(venv_python "$VENV")"
step "$VPY" -m pip install --quiet --upgrade pip
step "$VPY" -m pip install --quiet "$WHEEL" numpy
# Run from outside the source tree, so that only the installed wheel can be imported.
(
    cd "$WORK"
    step "$VPY" - <<'PY'
import pathlib
import sys

import nusterdb
from nusterdb import DistanceMetric, Vector

location = pathlib.Path(nusterdb.__file__).resolve()
if pathlib.Path(sys.prefix).resolve() not in location.parents:
    sys.exit(f"nusterdb was imported from {location}, not from the venv {sys.prefix}")
a = Vector([0.0, 0.0, 0.0])
b = Vector([3.0, 4.0, 0.0])
d = DistanceMetric.euclidean().distance(a, b)
if abs(d - 5.0) > 1e-6 or abs(b.norm() - 5.0) > 1e-6:
    sys.exit(f"wrong result from the installed wheel: distance {d}, norm {b.norm()}")
print(f"nusterdb {nusterdb.__version__} imports from {location.parent}")
print(f"euclidean({list(a.data)}, {list(b.data)}) = {d}")
PY
)
step "$VPY" -m pip install --quiet mypy
step env PYTHON="$VPY" scripts/lint.sh --stubtest-only
if [ "$SKIP_TESTS" = 1 ]; then
    echo "Python test suite skipped (--skip-tests)"
else
    step "$VPY" -m pip install --quiet "${WHEEL}[test]" "${TEST_EXTRA_DEPS[@]}"
    step "$VPY" -m pytest tests/python
fi

header "6/6 result"
"$VPY" - "$WHEEL" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    for info in wheel.infolist():
        print(f"  {info.file_size:>10}  {info.filename}")
PY
ls -l dist/
echo "Build complete: ${WHEELS[0]}"
