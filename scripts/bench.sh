#!/usr/bin/env bash
# Runs the criterion benches and prints the table (ratios to the
# verify_strict floor and to the peers, and text sizes).
#   bash scripts/bench.sh           full run (a few minutes; run on a quiet machine)
#   bash scripts/bench.sh --smoke   seconds: keeps the benches compiling and running (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
if [ "${1:-}" = "--smoke" ]; then
    args=(--warm-up-time 0.05 --measurement-time 0.1 --sample-size 10)
    echo "(smoke mode: figures are not meaningful)"
fi
cargo bench --quiet -p keyseal-benches --bench keyseal -- "${args[@]}" >/dev/null
cargo run --quiet --release -p keyseal-benches --bin report -- "${CARGO_TARGET_DIR:-target}/criterion"
cargo run --quiet --release -p keyseal-benches --bin ratio -- "$@"

# Instruction counts (callgrind): deterministic, unlike time on a shared host.
# Per call = (Ir of N calls - Ir of 0 calls) / N, for each path.
if command -v valgrind >/dev/null; then
    bin="${CARGO_TARGET_DIR:-target}/release/ratio"
    n=200
    [ "${1:-}" = "--smoke" ] && n=5
    ir() {
        local out
        out=$(mktemp)
        valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --only "$1" "$2" >/dev/null 2>&1
        awk '/^summary:/ {print $2}' "$out"
        rm -f "$out"
    }
    declare -A per
    for path in floor core sdk sdk_precomputed; do
        base=$(ir "$path" 0)
        full=$(ir "$path" "$n")
        per[$path]=$(( (full - base) / n ))
    done
    echo
    echo "instructions per call (callgrind, $n calls, setup subtracted):"
    echo
    echo "| path | instructions | × floor |"
    echo "|---|---|---|"
    for path in floor core sdk sdk_precomputed; do
        awk -v p="$path" -v x="${per[$path]}" -v f="${per[floor]}" 'BEGIN { printf "| %s | %d | %.3f |\n", p, x, x / f }'
    done
fi
