#!/usr/bin/env bash
# Prints the raw and gzipped (-9) size of the package's .wasm files and fails
# if one is over its budget (or the limits given):
# - keyseal_wasm_bg.wasm, the verify-only one of `keyseal`: 161 KiB raw, 75 KiB gzipped;
# - keyseal_seats_bg.wasm, the one of `keyseal/seats` (the verifier and the
#   Rust SDK's seats and trials): 230 KiB raw, 105 KiB gzipped.
#   bash sdk-wasm/scripts/size.sh [path/to/keyseal_wasm_bg.wasm [RAW_KIB GZIP_KIB]]
# Without a path: both files of the package scripts/build.sh last built.
set -euo pipefail
if [ $# -eq 0 ]; then
    PKG=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}/sdk-wasm/package/wasm
    status=0
    for f in keyseal_wasm_bg.wasm keyseal_seats_bg.wasm; do
        bash "$0" "$PKG/$f" || status=1
    done
    exit $status
fi
WASM=$1
case "$(basename "$WASM")" in
    keyseal_seats_bg.wasm) BUDGET=(230 105) ;;
    *) BUDGET=(161 75) ;;
esac
MAX_RAW=${2:-${BUDGET[0]}}
MAX_GZ=${3:-${BUDGET[1]}}
raw=$(wc -c <"$WASM")
gz=$(gzip -9 -c "$WASM" | wc -c)
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
printf '%s: %s raw (limit %s KiB), %s gzipped (limit %s KiB)\n' "$(basename "$WASM")" \
    "$(kib "$raw")" "$MAX_RAW" "$(kib "$gz")" "$MAX_GZ"
status=0
[ "$raw" -le $((MAX_RAW * 1024)) ] || { echo "over the raw size limit" >&2; status=1; }
[ "$gz" -le $((MAX_GZ * 1024)) ] || { echo "over the gzipped size limit" >&2; status=1; }
exit $status
