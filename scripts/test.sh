#!/usr/bin/env bash
# The one test command: installs what it needs on a fresh machine, then runs
# every check. CI (.ci/run) calls exactly this. Run from anywhere:
#   bash scripts/test.sh
# Set KEYSEAL_TEST_ONLY="step step" to run some steps (names below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
mkdir -p "$CACHE"
export CARGO_TERM_COLOR=never
# Build output lives outside the clone so later runs (and CI on this machine) reuse it.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
# No incremental compilation data: a test run builds each change once, and
# the data (gigabytes a run) would only fill the cache's disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { echo; echo "=== $* ==="; }
want() { [ -z "${KEYSEAL_TEST_ONLY:-}" ] || [[ " $KEYSEAL_TEST_ONLY " == *" $1 "* ]]; }

setup_rust() {
    step "setup: rust targets"
    rustup target add wasm32-unknown-unknown thumbv7em-none-eabihf \
        x86_64-pc-windows-msvc aarch64-apple-darwin >/dev/null
}

setup_python() {
    # A venv outside the clone, reused between runs.
    step "setup: python venv"
    VENV="$CACHE/venv"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check cryptography
}

run_lint() {
    step "lint: rustfmt and clippy"
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --quiet -- -D warnings
}

run_nostd() {
    step "no_std: keyseal-core for thumbv7em-none-eabihf and wasm32-unknown-unknown"
    for target in thumbv7em-none-eabihf wasm32-unknown-unknown; do
        cargo build --quiet -p keyseal-core --no-default-features --target "$target"
    done
    step "wasm32: the keyseal SDK builds for the browser target"
    cargo check --quiet -p keyseal --target wasm32-unknown-unknown
    # The macOS and Windows fingerprint and state-path code cannot run here;
    # it is at least compiled and linted, tests included, for those targets.
    step "the keyseal SDK for Windows and macOS: clippy (no linking)"
    for target in x86_64-pc-windows-msvc aarch64-apple-darwin; do
        cargo clippy --quiet -p keyseal --all-targets --target "$target" -- -D warnings
    done
}

run_packaging() {
    step "packaging: the published crates package and build from their .crate files (publish --dry-run), their docs build as docs.rs builds them, their crates.io READMEs match their docs"
    python3 scripts/crate_readme.py --check
    # cargo treats the packaged crates as registry crates: it never unpacks
    # (under $CARGO_HOME/registry/src/) nor rebuilds the same name and
    # version again, so what an earlier run (another commit, the same 0.1.0)
    # left would be verified instead of this commit's. Remove our unpacked
    # copies, and verify in a target directory of its own (about a minute).
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/keyseal-core-[0-9]* \
        "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/keyseal-[0-9]*
    local scratch
    scratch=$(mktemp -d)
    CARGO_TARGET_DIR="$scratch" cargo publish --dry-run --quiet -p keyseal-core -p keyseal
    rm -rf "$scratch"
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo +nightly doc --quiet --no-deps --all-features \
        -p keyseal-core -p keyseal
}

run_msrv() {
    # The rust-version the published crates declare (the workspace's), read
    # from Cargo.toml so the check follows it.
    local msrv
    msrv=$(sed -n 's/^rust-version = "\([0-9.]*\)".*/\1/p' Cargo.toml)
    [[ $msrv =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || { echo "no rust-version = \"X.Y\" line in Cargo.toml" >&2; return 1; }
    step "msrv: keyseal-core and keyseal pass their tests on Rust $msrv, the rust-version they declare, with every feature (keyseal also with none); keyseal-core builds without std for thumbv7em-none-eabihf"
    rustup toolchain install "$msrv" --profile minimal --target thumbv7em-none-eabihf >/dev/null
    # A target directory of its own: nothing built by the newer toolchain is reused.
    # --locked: the versions Cargo.lock pins, never resolved again by the older cargo.
    CARGO_TARGET_DIR="$CACHE/target-msrv" cargo "+$msrv" test --quiet --locked -p keyseal-core -p keyseal --all-features
    CARGO_TARGET_DIR="$CACHE/target-msrv" cargo "+$msrv" test --quiet --locked -p keyseal --no-default-features
    CARGO_TARGET_DIR="$CACHE/target-msrv" cargo "+$msrv" build --quiet --locked -p keyseal-core --no-default-features \
        --target thumbv7em-none-eabihf
}

run_vectors() {
    step "vectors: regenerate and compare with testdata/vectors"
    local out
    out=$(mktemp -d)
    cargo run --quiet -p keyseal-testdata -- "$out"
    diff -ru testdata/vectors "$out"
    rm -rf "$out"
    step "vectors: independent check of docs/FORMAT.md"
    "$CACHE/venv/bin/python" scripts/format_check.py
}

run_rust_tests() {
    step "rust: cargo test --workspace"
    cargo test --workspace
}

run_benches_smoke() {
    step "benches: quick smoke run"
    bash scripts/bench.sh --smoke
}

run_fuzz_smoke() {
    step "fuzz: every target for ${KEYSEAL_FUZZ_SECS:-20}s"
    bash scripts/fuzz.sh "${KEYSEAL_FUZZ_SECS:-20}"
}

run_python() {
    step "python: keyseal wheel built (manylinux, checked by auditwheel) and built again from its sdist, each installed in a fresh venv; stubtest, pytest"
    # Build tools in a venv outside the clone; the wheels go into fresh ones.
    local tools="$CACHE/pyvenv" fresh="$CACHE/pyvenv-test" fromsdist="$CACHE/pyvenv-sdist" wheels cli="" tag
    [ -x "$tools/bin/python" ] || python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check maturin auditwheel
    wheels=$(mktemp -d)
    (cd sdk-python && "$tools/bin/maturin" build --release --quiet --out "$wheels")
    # The wheel's platform tag is a manylinux one, and the one auditwheel
    # finds the extension's shared libraries allow.
    tag=$(basename "$wheels"/keyseal-*.whl .whl)
    tag=${tag##*-}
    case "$tag" in
        manylinux_*) ;;
        *) echo "the wheel is tagged $tag, not manylinux" >&2; return 1 ;;
    esac
    # (A wheel may carry several tags, dot-separated: manylinux_2_17_x86_64.manylinux2014_x86_64.)
    "$tools/bin/auditwheel" show --json "$wheels"/keyseal-*.whl |
        python3 -c 'import json, sys; t = json.load(sys.stdin)["overall_tag"]; sys.exit(t not in sys.argv[1].split("."))' "$tag" || {
        "$tools/bin/auditwheel" show "$wheels"/keyseal-*.whl
        echo "auditwheel does not find the wheel consistent with its tag $tag" >&2
        return 1
    }
    echo "auditwheel: $(basename "$wheels"/keyseal-*.whl) is consistent with $tag"
    # The sdist, and a wheel built from it alone (pip, maturin from PyPI as
    # its build backend), as a user without a wheel for their platform does.
    (cd sdk-python && "$tools/bin/maturin" sdist --out "$wheels/sdist" >/dev/null)
    "$tools/bin/pip" wheel -q --disable-pip-version-check --no-deps -w "$wheels/sdist" "$wheels"/sdist/keyseal-*.tar.gz
    echo "sdist: $(basename "$wheels"/sdist/keyseal-*.tar.gz) builds $(basename "$wheels"/sdist/keyseal-*.whl)"
    rm -rf "$fresh" "$fromsdist" && python3 -m venv "$fresh" && python3 -m venv "$fromsdist"
    "$fresh/bin/pip" install -q --disable-pip-version-check --force-reinstall \
        "$wheels"/keyseal-*.whl pytest mypy PyJWT pyseto cryptography
    "$fromsdist/bin/pip" install -q --disable-pip-version-check \
        "$wheels"/sdist/keyseal-*.whl pytest PyJWT pyseto cryptography
    rm -rf "$wheels"
    [ -x "$CARGO_TARGET_DIR/debug/keyseal" ] && cli="$CARGO_TARGET_DIR/debug/keyseal"
    # Run from outside the clone, so `import keyseal` is the installed wheel.
    (
        cd "$CACHE" && export PYTHONDONTWRITEBYTECODE=1 KEYSEAL_TESTDATA="$ROOT/testdata" KEYSEAL_CLI="$cli"
        "$fresh/bin/python" -m mypy.stubtest keyseal
        "$fresh/bin/python" -m mypy --strict --no-incremental "$ROOT/sdk-python/tests" "$ROOT/sdk-python/bench"
        "$fresh/bin/python" "$ROOT/sdk-python/bench/bench.py" --smoke
        "$fresh/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/sdk-python/tests"
        echo "the same tests on the wheel built from the sdist:"
        "$fromsdist/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/sdk-python/tests"
    )
}

run_wasm() {
    step "wasm: npm package built and packed, size, tsc, bench smoke, node --test on the installed tarball (vectors, Ed25519 suites, require() and keyseal/web, the demo and Vite, webpack and esbuild apps in Chromium)"
    bash sdk-wasm/scripts/test.sh
}

run_server() {
    step "server: keyseal-server and keyseal-issuer tests on SQLite and on a throwaway PostgreSQL (Debian's packages)"
    bash server/scripts/test.sh
}

setup_rust
if want python || want vectors; then setup_python; fi
want lint && run_lint
want nostd && run_nostd
want packaging && run_packaging
want msrv && run_msrv
want vectors && run_vectors
want rust && run_rust_tests
want benches && run_benches_smoke
want fuzz && run_fuzz_smoke
want python && run_python
want wasm && run_wasm
want server && run_server
step "all checks passed"
