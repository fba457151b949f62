#!/usr/bin/env bash
# One command from a fresh machine to a running demo: set up, build the wheel,
# install it into the project's virtual env, and run the examples.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup_env.sh
. scripts/setup_env.sh

echo "==> building the wheel (release, abi3)"
rm -rf dist
maturin build --release --out dist
echo "==> installing it"
python -m pip install -q --force-reinstall --no-deps dist/nusterdb-*.whl
echo "==> running examples/quickstart.py (the database) and examples/examples_advanced.py"
python examples/quickstart.py
python examples/examples_advanced.py
