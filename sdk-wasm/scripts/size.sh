#!/usr/bin/env bash
# Prints the raw and gzipped (-9) size of the package's verify-only .wasm and
# fails if it is over budget: 150 KiB raw, 75 KiB gzipped.
#   bash sdk-wasm/scripts/size.sh [path/to/keyseal_wasm_bg.wasm]
set -euo pipefail
WASM=${1:-${KEYSEAL_CACHE:-$HOME/.cache/keyseal}/sdk-wasm/package/wasm/keyseal_wasm_bg.wasm}
raw=$(wc -c <"$WASM")
gz=$(gzip -9 -c "$WASM" | wc -c)
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
printf 'keyseal_wasm_bg.wasm: %s raw (budget 150 KiB), %s gzipped (budget 75 KiB)\n' "$(kib "$raw")" "$(kib "$gz")"
[ "$raw" -le $((150 * 1024)) ] || { echo "over the raw size budget" >&2; exit 1; }
[ "$gz" -le $((75 * 1024)) ] || { echo "over the gzipped size budget" >&2; exit 1; }
