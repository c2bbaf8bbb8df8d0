#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 20 s each), seeded from
# testdata/vectors/. Installs cargo-fuzz and the dated nightly toolchain that
# fuzz/rust-toolchain.toml names, if needed.
#   bash scripts/fuzz.sh            20 s per target
#   bash scripts/fuzz.sh 600        10 minutes per target
#   bash scripts/fuzz.sh 60 armor   one target
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
shift || true
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
TOOLCHAIN=$(sed -n 's/^channel = "\(.*\)"$/\1/p' fuzz/rust-toolchain.toml)
[ -n "$TOOLCHAIN" ] || { echo "fuzz/rust-toolchain.toml names no channel" >&2; exit 1; }
rustup toolchain list | grep -q "^$TOOLCHAIN" || rustup toolchain install "$TOOLCHAIN" --profile minimal --component rust-src
if ! command -v cargo-fuzz >/dev/null && [ ! -x "$CACHE/cargo-fuzz/bin/cargo-fuzz" ]; then
    cargo install --locked cargo-fuzz --root "$CACHE/cargo-fuzz"
fi
export PATH="$CACHE/cargo-fuzz/bin:$PATH"
python3 scripts/fuzz_seeds.py fuzz/corpus
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo "+$TOOLCHAIN" fuzz list)
# (A failing `cargo fuzz list` would leave none, not fail the script.)
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets (did \`cargo fuzz list\` fail?)" >&2; exit 1; }
log=$(mktemp)
for t in "${targets[@]}"; do
    echo "--- fuzz $t for ${SECS}s"
    if ! (cd fuzz && cargo "+$TOOLCHAIN" fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -max_len=8192) >"$log" 2>&1; then
        tail -60 "$log"
        echo "fuzz: target $t failed; the crashing input is in fuzz/artifacts/$t/"
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" || true
done
rm -f "$log"
echo "fuzz: ${#targets[@]} targets ran ${SECS}s each with no crash"
