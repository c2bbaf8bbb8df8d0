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
