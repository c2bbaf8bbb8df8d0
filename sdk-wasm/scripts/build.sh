#!/usr/bin/env bash
# Builds the `keyseal` npm package: the verify-only .wasm of its main entry
# and the seats .wasm of `keyseal/seats` (the verifier and sdk-rust's seats;
# cargo feature `seats`), both with profile wasm-release, their JS glue by
# wasm-bindgen-cli at exactly the version Cargo.toml pins (installed once
# under the cache, outside the clone), the hand-written modules and types of
# npm/ (and node.cjs, for require(), bundled from them by esbuild), then
# `npm pack`. No wasm-pack.
#
# The .wasm is built by a dated nightly toolchain with the standard library
# rebuilt for it (-Z build-std) and panics that trap at once: on
# wasm32-unknown-unknown a panic message goes nowhere, and dropping its
# formatting code, file names and Debug output is what keeps the .wasm under
# its 157 KiB budget (21 KiB less than stable's; sdk-wasm/README.md, Size).
#   bash sdk-wasm/scripts/build.sh [OUT_DIR]   (default ~/.cache/keyseal/sdk-wasm)
# The last line printed is the tarball's path.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
OUT=${1:-$CACHE/sdk-wasm}

WB_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$HERE/Cargo.toml")
[ -n "$WB_VERSION" ] || { echo "sdk-wasm/Cargo.toml must pin wasm-bindgen = \"=X.Y.Z\"" >&2; exit 1; }
WB="$CACHE/wasm-bindgen-cli-$WB_VERSION/bin/wasm-bindgen"
if [ ! -x "$WB" ]; then
    echo "installing wasm-bindgen-cli $WB_VERSION (once)" >&2
    cargo install --locked --quiet wasm-bindgen-cli --version "$WB_VERSION" \
        --root "$CACHE/wasm-bindgen-cli-$WB_VERSION"
fi

# npm_tool PACKAGE VERSION BIN: the path of BIN from the npm package
# PACKAGE@VERSION, installed once under the cache (outside the clone).
npm_tool() {
    local dir="$CACHE/$1-$2"
    if [ ! -x "$dir/node_modules/.bin/$3" ]; then
        echo "installing $1 $2 from npm (once)" >&2
        mkdir -p "$dir"
        npm install --silent --no-audit --no-fund --prefix "$dir" "$1@$2" >/dev/null
    fi
    echo "$dir/node_modules/.bin/$3"
}
# Binaryen's wasm-opt (Debian's binaryen 108 cannot read the reference-types
# code rustc and wasm-bindgen emit today).
WASM_OPT=$(npm_tool binaryen 132.0.0 wasm-opt)
# esbuild, for the CommonJS entry (node.cjs).
ESBUILD=$(npm_tool esbuild 0.28.2 esbuild)

cd "$ROOT"
# A dated nightly, so the .wasm is the same from one day to the next and the
# -Z flags below keep their meaning (-C panic=immediate-abort is recent): the
# one fuzz/rust-toolchain.toml names (the fuzz targets use it too).
TOOLCHAIN=${KEYSEAL_WASM_TOOLCHAIN:-$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$ROOT/fuzz/rust-toolchain.toml")}
[ -n "$TOOLCHAIN" ] || { echo "fuzz/rust-toolchain.toml names no channel" >&2; exit 1; }
rustup component list --toolchain "$TOOLCHAIN" --installed 2>/dev/null | grep -q '^rust-src' || {
    echo "installing Rust $TOOLCHAIN with rust-src (once; -Z build-std compiles the standard library)" >&2
    rustup toolchain install "$TOOLCHAIN" --profile minimal --component rust-src >/dev/null
}
# Size: sha2's compact SHA-512 (a few KiB smaller; hashing is a sliver of a
# validation); panics abort at once, with no message, location or Debug
# formatting (nothing could show them); no build paths in the binary. Only
# the wasm32 artifacts see these flags, in their own target directory so the
# stable builds' cache is left alone.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg sha2_backend_soft=\"compact\" \
-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none \
--remap-path-prefix=$HOME/.cargo/registry/src/=/ --remap-path-prefix=$ROOT/=/"
# The standard library is rebuilt with its `optimize_for_size` feature:
# smaller integer formatting and sorting (a few numbers and a few short
# lists a validation; 1.9 KiB less).
WASM_TARGET_DIR="$CARGO_TARGET_DIR-wasm"
PKG="$OUT/package"
rm -rf "$PKG"
mkdir -p "$PKG/wasm"

# build_wasm NAME [CARGO_ARGS...]: one .wasm of the package, with its glue,
# as $PKG/wasm/NAME.js and NAME_bg.wasm.
build_wasm() {
    local name=$1
    shift
    CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo "+$TOOLCHAIN" build --quiet -p keyseal-wasm \
        --target wasm32-unknown-unknown --profile wasm-release -Z build-std=std,panic_abort \
        -Z build-std-features=optimize_for_size "$@"
    "$WB" --target web --no-typescript --remove-name-section --remove-producers-section \
        --out-dir "$PKG/wasm" --out-name "$name" \
        "$WASM_TARGET_DIR/wasm32-unknown-unknown/wasm-release/keyseal_wasm.wasm"
    # --low-memory-unused: rustc's wasm32 layout puts the 1 MiB stack first
    # (growing down to address 0) and the data after it, so the lowest KiB is
    # never used and constant offsets fold into loads and stores (0.8 KiB less);
    # the target_features section is for linkers only.
    "$WASM_OPT" -Os --low-memory-unused --strip-target-features \
        "$PKG/wasm/${name}_bg.wasm" -o "$PKG/wasm/${name}_bg.wasm"
}
# `keyseal`: validation only.
build_wasm keyseal_wasm
# `keyseal/seats`: validation and seats from one .wasm, so an app that
# holds seats loads one module (the seats code alone, without the
# verifier, would be a .wasm nearly as large as the verifier's).
build_wasm keyseal_seats --features seats
cp "$HERE"/npm/*.js "$HERE"/npm/*.d.ts "$HERE/npm/package.json" "$PKG/"
# `require('keyseal')`: node-cjs.js and the modules it imports bundled by
# esbuild into one CommonJS file (the .wasm stays beside it, shared), with
# the declarations again as CommonJS's (.d.cts).
"$ESBUILD" "$PKG/node-cjs.js" --bundle --platform=node --format=cjs --target=node18 \
    --log-level=warning --log-override:empty-import-meta=silent --outfile="$PKG/node.cjs"
rm "$PKG/node-cjs.js"
cp "$HERE/npm/index.d.ts" "$PKG/index.d.cts"
# The README's link to the format spec points at the copy the package
# carries (the repository's ../docs is not in the tarball), and both
# licenses ship with it.
sed 's#](../docs/FORMAT.md)#](FORMAT.md)#g' "$HERE/README.md" >"$PKG/README.md"
cp "$ROOT/docs/FORMAT.md" "$ROOT/LICENSE-MIT" "$ROOT/LICENSE-APACHE" "$PKG/"
rm -f "$OUT"/keyseal-*.tgz
(cd "$PKG" && npm pack --silent --pack-destination "$OUT" >/dev/null)
ls "$OUT"/keyseal-*.tgz
