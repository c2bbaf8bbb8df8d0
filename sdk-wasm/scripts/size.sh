#!/usr/bin/env bash
# Prints the raw and gzipped (-9) size of the package's verify-only .wasm and
# fails if it is over budget: 157 KiB raw, 75 KiB gzipped (or the limits given).
#   bash sdk-wasm/scripts/size.sh [path/to/keyseal_wasm_bg.wasm [RAW_KIB GZIP_KIB]]
set -euo pipefail
WASM=${1:-${KEYSEAL_CACHE:-$HOME/.cache/keyseal}/sdk-wasm/package/wasm/keyseal_wasm_bg.wasm}
MAX_RAW=${2:-157}
MAX_GZ=${3:-75}
raw=$(wc -c <"$WASM")
gz=$(gzip -9 -c "$WASM" | wc -c)
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
printf 'keyseal_wasm_bg.wasm: %s raw (limit %s KiB), %s gzipped (limit %s KiB)\n' \
    "$(kib "$raw")" "$MAX_RAW" "$(kib "$gz")" "$MAX_GZ"
status=0
[ "$raw" -le $((MAX_RAW * 1024)) ] || { echo "over the raw size limit" >&2; status=1; }
[ "$gz" -le $((MAX_GZ * 1024)) ] || { echo "over the gzipped size limit" >&2; status=1; }
exit $status
