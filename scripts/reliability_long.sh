#!/usr/bin/env bash
# The long reliability tier (RELIABILITY.md): the CI tier's reliability tests run again with
# the plan's long numbers (they read their sizes from the environment), the tests marked
# `long`, and a valgrind run over the Python API. Every step prints its figures; the summary
# at the end collects the lines the tests print (crash[...], corrupt:, threads[...],
# memory[...], valgrind).
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $(basename "$0") [STEP...]

Steps (default: all, in this order):
  crash     T1 kill -9: ${NUSTERDB_CRASH_CYCLES:-500} cycles per workload (bulk_add, mixed
            flat, mixed hnsw; each on int ids and on string ids with documents),
            ${NUSTERDB_CRASH_SYNC_CYCLES:-100} each with sync_writes=True,
            ${NUSTERDB_CRASH_REOPEN_ROUNDS:-100} kill-during-reopen rounds,
            ${NUSTERDB_CRASH_SNAPSHOT_CYCLES:-100} kill-during-snapshot cycles, the
            big-HNSW reopen test (${NUSTERDB_CRASH_BIG_CYCLES:-20} cycles at <= 100k vectors),
            ${NUSTERDB_SERVER_KILL_CYCLES:-50} kill -9 cycles of the HTTP server during
            client bulk_adds (tests/python/test_server_kill.py), and
            ${NUSTERDB_ENCRYPTION_KILL_CYCLES:-50} of an encrypted database's writer
            (tests/python/test_encryption.py)
  corrupt   T3: ${NUSTERDB_CORRUPT_CASES:-20000} corrupt-file cases on int ids, as many on
            string ids with documents
  locks     T5: ${NUSTERDB_LOCK_KILL_ROUNDS:-100} writer kills, ${NUSTERDB_REOPEN_ROUNDS:-1000}
            close/reopen rounds, and the rest of the lock and read-only tests
  threads   T7: 8 search + 2 writer threads for ${NUSTERDB_THREAD_SECONDS:-300} s, flat and hnsw
  memory    T8: ${NUSTERDB_MEM_CYCLES:-1000} (flat) and ${NUSTERDB_MEM_HNSW_CYCLES:-1000} (hnsw)
            open/add/search/close cycles,
            ${NUSTERDB_MEM_SEARCHES:-100000} searches on one handle
  valgrind  T8: scripts/valgrind_api.py under valgrind memcheck (definitely lost: 0)

Every number can be changed through the variable named in the test files, e.g. a partial
run:  NUSTERDB_CRASH_CYCLES=100 NUSTERDB_CRASH_SYNC_CYCLES=20 $(basename "$0") crash
Replay a randomized test with NUSTERDB_TEST_SEED=<seed> (each test prints its seed).

Logs go to \$NUSTERDB_LONG_LOGS (default: target/reliability-long/<UTC time>).
Environment: PYTHON (default: the project's .venv).
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

STEPS=()
for arg in "$@"; do
    case "$arg" in
    -h | --help)
        usage
        exit 0
        ;;
    crash | corrupt | locks | threads | memory | valgrind) STEPS+=("$arg") ;;
    *)
        printf 'reliability_long.sh: unknown step: %s\n' "$arg" >&2
        usage >&2
        exit 2
        ;;
    esac
done
[ "${#STEPS[@]}" -gt 0 ] || STEPS=(crash corrupt locks threads memory valgrind)

LOGS="${NUSTERDB_LONG_LOGS:-$ROOT/target/reliability-long/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$LOGS"

# The long tier's numbers; each stays as the caller set it.
export NUSTERDB_CRASH_CYCLES="${NUSTERDB_CRASH_CYCLES:-500}"
export NUSTERDB_CRASH_SYNC_CYCLES="${NUSTERDB_CRASH_SYNC_CYCLES:-100}"
export NUSTERDB_CRASH_REOPEN_ROUNDS="${NUSTERDB_CRASH_REOPEN_ROUNDS:-100}"
export NUSTERDB_CRASH_SNAPSHOT_CYCLES="${NUSTERDB_CRASH_SNAPSHOT_CYCLES:-100}"
export NUSTERDB_CRASH_BIG_CYCLES="${NUSTERDB_CRASH_BIG_CYCLES:-20}"
export NUSTERDB_SERVER_KILL_CYCLES="${NUSTERDB_SERVER_KILL_CYCLES:-50}"
export NUSTERDB_ENCRYPTION_KILL_CYCLES="${NUSTERDB_ENCRYPTION_KILL_CYCLES:-50}"
export NUSTERDB_CORRUPT_CASES="${NUSTERDB_CORRUPT_CASES:-20000}"
export NUSTERDB_LOCK_KILL_ROUNDS="${NUSTERDB_LOCK_KILL_ROUNDS:-100}"
export NUSTERDB_REOPEN_ROUNDS="${NUSTERDB_REOPEN_ROUNDS:-1000}"
export NUSTERDB_THREAD_SECONDS="${NUSTERDB_THREAD_SECONDS:-300}"
export NUSTERDB_MEM_CYCLES="${NUSTERDB_MEM_CYCLES:-1000}"
export NUSTERDB_MEM_HNSW_CYCLES="${NUSTERDB_MEM_HNSW_CYCLES:-1000}"
export NUSTERDB_MEM_SEARCHES="${NUSTERDB_MEM_SEARCHES:-100000}"

FAILED=()

# pytest over the given tests, both tiers' tests ("long" or not), no per-test timeout, the
# output kept in $LOGS/<step>.log.
run_pytest() { # step, pytest args...
    local step="$1"
    shift
    printf '\n===== %s =====\n' "$step"
    local t0=$SECONDS
    if "$PY" -m pytest -p no:randomly -s -q --timeout=0 --durations=0 -m "long or not long" "$@" \
        2>&1 | tee "$LOGS/$step.log"; then
        printf '%s: passed in %d s\n' "$step" $((SECONDS - t0)) | tee -a "$LOGS/$step.log"
    else
        printf '%s: FAILED after %d s\n' "$step" $((SECONDS - t0)) | tee -a "$LOGS/$step.log"
        FAILED+=("$step")
    fi
}

run_valgrind() {
    printf '\n===== valgrind =====\n'
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "valgrind: not installed (apt-get install valgrind)" | tee "$LOGS/valgrind.log"
        FAILED+=(valgrind)
        return
    fi
    local t0=$SECONDS rc=0
    # PYTHONMALLOC=malloc: Python's own allocator would hide blocks from memcheck.
    PYTHONMALLOC=malloc valgrind --leak-check=full --errors-for-leak-kinds=definite \
        --error-exitcode=1 --num-callers=40 --suppressions="$ROOT/scripts/valgrind-python.supp" \
        --log-file="$LOGS/valgrind-memcheck.log" "$PY" "$ROOT/scripts/valgrind_api.py" || rc=$?
    {
        grep -E "definitely lost:|ERROR SUMMARY" "$LOGS/valgrind-memcheck.log" | sed 's/^==[0-9]*== *//'
        # Unsuppressed definite losses with a frame in the extension (NusterDB, RocksDB).
        local ours
        ours=$(awk '/definitely lost in loss record/{p=1; rec=""} p{rec=rec"\n"$0} p && /^==[0-9]+== *$/{if (rec ~ /_core\.abi3\.so/) n++; p=0} END{print n+0}' \
            "$LOGS/valgrind-memcheck.log")
        echo "valgrind: exit $rc, definite-loss records in NusterDB's frames: $ours, $((SECONDS - t0)) s"
    } | tee "$LOGS/valgrind.log"
    [ "$rc" -eq 0 ] || FAILED+=(valgrind)
}

for step in "${STEPS[@]}"; do
    case "$step" in
    crash) run_pytest crash tests/python/test_crash.py tests/python/test_server_kill.py \
        tests/python/test_encryption.py::test_a_killed_writer_loses_no_acknowledged_batch_many_cycles ;;
    corrupt) run_pytest corrupt tests/python/test_corruption.py ;;
    locks) run_pytest locks tests/python/test_durability.py -k \
        "writer or lock or reopen or read_only or foreign or random_bytes" ;;
    threads) run_pytest threads tests/python/test_concurrency.py -k "concurrent or gil" ;;
    memory) run_pytest memory tests/python/test_memory.py ;;
    valgrind) run_valgrind ;;
    esac
done

printf '\n===== summary (logs in %s) =====\n' "$LOGS"
grep -hE "^[.sxFE]*(crash\[|server-kill\[|corrupt(:|\[)|threads\[|memory\[|valgrind:|second writer|writer killed|close -> reopen|4 read-only|batch_search of)|: (passed|FAILED) (in|after) " \
    "$LOGS"/*.log 2>/dev/null || true
if [ "${#FAILED[@]}" -gt 0 ]; then
    printf '\nFAILED steps: %s\n' "${FAILED[*]}"
    exit 1
fi
printf '\nlong tier: all steps passed\n'
