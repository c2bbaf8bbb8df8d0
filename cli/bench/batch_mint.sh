#!/usr/bin/env bash
# Mints a batch of licenses with the release `keyseal` and reports keys/s.
#
#   cli/bench/batch_mint.sh            100,000 rows, release build (the target: under 4 s)
#   ROWS=20000 cli/bench/batch_mint.sh
#   KEYSEAL_BENCH_SMOKE=1 cli/bench/batch_mint.sh   1,000 rows, quick (what the test suite runs)
#
# KEYSEAL_BIN=path/to/keyseal skips the build. The vault uses the production
# Argon2 parameters, so the time includes unlocking the key once. Every
# minted key is checked to be in the ledger and in the output file.
#
# On a machine shared with other busy processes the figure says more about
# them than about keyseal; `sudo chrt -r 10 cli/bench/batch_mint.sh` gives the
# bench the CPU first, as on an idle machine (the disk is still shared).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ "${KEYSEAL_BENCH_SMOKE:-}" == 1 ]]; then
  rows="${ROWS:-1000}"
else
  rows="${ROWS:-100000}"
fi
bin="${KEYSEAL_BIN:-}"
if [[ -z "$bin" ]]; then
  cargo build --release -q -p keyseal-cli --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/keyseal"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export KEYSEAL_PASSPHRASE="bench passphrase" KEYSEAL_ACTOR="bench"
unset KEYSEAL_NOW KEYSEAL_VAULT
"$bin" init --product acme-cad >/dev/null

# Realistic rows: entitlements, an extension, a version cap.
awk -v n="$rows" 'BEGIN {
  print "product,customer,plan,expires,entitlements,max_version,ext.seats"
  for (i = 1; i <= n; i++) printf "acme-cad,cus_%07d,pro,365d,export sso,5.x,%d\n", i, i % 50 + 1
}' > batch.csv

start=$(date +%s.%N)
"$bin" issue --batch batch.csv --out minted.jsonl --no-progress --json > summary.json 2> stderr.txt
end=$(date +%s.%N)

minted=$(sed -n 's/.*"minted": \([0-9]*\).*/\1/p' summary.json)
batch=$(sed -n 's/.*"batch_id": "\(b-[0-9a-f]*\)".*/\1/p' summary.json)
written=$(wc -l < minted.jsonl)
recorded=$("$bin" licenses list --batch "$batch" | tail -n +2 | wc -l)
if [[ "$minted" != "$rows" || "$written" != "$rows" || "$recorded" != "$rows" ]]; then
  echo "FAILED: asked $rows, minted $minted, written $written, in the ledger $recorded" >&2
  cat stderr.txt >&2
  exit 1
fi
awk -v n="$rows" -v a="$start" -v b="$end" 'BEGIN {
  s = b - a
  printf "minted %d keys (each recorded in the ledger and written out) in %.2f s: %.0f keys/s\n", n, s, n / s
}'
printf '(keyseal measured %s)\n' "$(grep -o '[0-9]* keys/s' stderr.txt || echo '?')"
