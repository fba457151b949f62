#!/usr/bin/env bash
# Long tier of T4: runs every cargo-fuzz target for SECONDS each (default 300).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz if missing. cargo-fuzz needs nightly features; the stable
# toolchain is allowed to use them through RUSTC_BOOTSTRAP. The first run compiles
# RocksDB with sanitizer flags in fuzz/target (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(record_codec graph_file filter_parser db_ops)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzz $t for ${secs}s"
    cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
        grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==|SUMMARY|thread .* panicked)" || true
    test "${PIPESTATUS[0]}" -eq 0 || { echo "fuzz $t FAILED (crash input under fuzz/artifacts/$t)"; exit 1; }
done
echo "fuzz: every target ran ${secs}s without a crash"
