#!/usr/bin/env bash
# Real third-party clients of the issuing service, generated from the
# OpenAPI document it serves (/v1/openapi.json):
#   - Python: openapi-python-client; the client and flow.py pass
#     `mypy --strict`, then flow.py runs against the service;
#   - TypeScript: openapi-typescript types with openapi-fetch; flow.ts
#     passes `tsc --strict` (noEmit check, then compiled), then runs on Node.
# Both run the mint / replay / get / list / revoke / keyring flow against a
# throwaway service. Generator versions are pinned (their output changes
# between releases); tools install into ~/.cache/keyseal, outside the clone.
#   bash server/clients/test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
BIN=${KEYSEAL_BIN:-${CARGO_TARGET_DIR:-target}/debug/keyseal}
PY_CLIENT=0.29.1
MYPY=2.4.1
TS_GEN=7.13.0
TS_FETCH=0.17.0
TSC=5.9.3
NODE_TYPES=20.19.25

VENV="$CACHE/clients-venv-$PY_CLIENT"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openapi-python-client') != '$PY_CLIENT' or m.version('mypy') != '$MYPY')" 2>/dev/null ||
    "$VENV/bin/pip" install -q --disable-pip-version-check "openapi-python-client==$PY_CLIENT" "mypy==$MYPY"
NPM="$CACHE/clients-npm-$TS_GEN-$TS_FETCH-$TSC"
if [ ! -x "$NPM/node_modules/.bin/tsc" ] || [ ! -x "$NPM/node_modules/.bin/openapi-typescript" ]; then
    mkdir -p "$NPM"
    echo '{"private": true, "type": "module"}' >"$NPM/package.json"
    npm install --silent --no-audit --no-fund --prefix "$NPM" \
        "openapi-typescript@$TS_GEN" "openapi-fetch@$TS_FETCH" "typescript@$TSC" "@types/node@$NODE_TYPES"
fi
cargo build --quiet -p keyseal-cli

# shellcheck source=server/scripts/throwaway.sh
source server/scripts/throwaway.sh
curl -sf "$base/v1/openapi.json" >"$work/openapi.json"

echo "== python: openapi-python-client $PY_CLIENT, mypy --strict, the flow"
mkdir -p "$work/py"
printf 'post_hooks: []\n' >"$work/py/config.yaml"
# Warnings (a part of the document the generator could not use) fail the step.
"$VENV/bin/openapi-python-client" generate --path "$work/openapi.json" --meta none \
    --output-path "$work/py/keyseal_client" --config "$work/py/config.yaml" >"$work/py/generate.log" 2>&1 ||
    { cat "$work/py/generate.log"; exit 1; }
if grep -qi "warning" "$work/py/generate.log"; then cat "$work/py/generate.log"; exit 1; fi
cp server/clients/flow.py "$work/py/"
(cd "$work/py" && "$VENV/bin/python" -m mypy --strict --no-incremental --cache-dir=/dev/null flow.py keyseal_client)
(cd "$work/py" && PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" flow.py "$base" "$token" "$org")

echo "== typescript: openapi-typescript $TS_GEN, openapi-fetch $TS_FETCH, tsc $TSC --strict, the flow on Node $(node --version)"
mkdir -p "$work/ts"
ln -s "$NPM/node_modules" "$work/ts/node_modules"
cp "$NPM/package.json" server/clients/flow.ts server/clients/tsconfig.json "$work/ts/"
"$NPM/node_modules/.bin/openapi-typescript" "$work/openapi.json" -o "$work/ts/schema.d.ts" >/dev/null
(cd "$work/ts" && node_modules/.bin/tsc --noEmit && node_modules/.bin/tsc && node flow.js "$base" "$token" "$org")
cd "$ROOT"
# The service survived both and still answers.
curl -sf "$base/readyz" >/dev/null
echo "generated clients: 2 passed, 0 failed"
