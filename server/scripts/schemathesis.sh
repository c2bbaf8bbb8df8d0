#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from the OpenAPI
# document the service serves (/v1/openapi.json) and checks that no response
# is a 5xx and every response matches the document (status, content type,
# body schema). Bounded: a few examples per operation and a time budget.
#   bash server/scripts/schemathesis.sh [MAX_SECONDS]
# Needs the debug `keyseal` binary (cargo build -p keyseal-cli); installs
# schemathesis into a venv under ~/.cache/keyseal.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
BIN=${KEYSEAL_BIN:-${CARGO_TARGET_DIR:-target}/debug/keyseal}
BUDGET=${1:-90}
VENV="$CACHE/st-venv"
[ -x "$VENV/bin/schemathesis" ] || {
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5'
}
cargo build --quiet -p keyseal-cli

work=$(mktemp -d)
out="$work/serve.out"
KEYSEAL_PASSPHRASE=schemathesis-only KEYSEAL_KDF_PARAMS=m=256,t=1,p=1 \
    "$BIN" --vault "$work/vault" serve --listen 127.0.0.1:0 --auth-failures-per-minute 1000000 \
    >"$out" 2>"$work/serve.err" &
pid=$!
# shellcheck disable=SC2064
trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $work" EXIT
for _ in $(seq 100); do grep -q "listening on" "$work/serve.err" && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/serve.err")
token=$(grep '^ksk_' "$out")
[ -n "$addr" ] && [ -n "$token" ] || { cat "$work/serve.err"; exit 1; }
base="http://$addr"
# Some objects for the generated requests to find.
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"product":"acme-cad"}' "$base/v1/products" >/dev/null
# The organisation's public keyring and revocation list are asked for by its
# real id (random ids are all 404s; server/tests/org_keys.rs covers those).
org=$(curl -sf -H "Authorization: Bearer $token" "$base/v1/tokens" |
    sed -n 's/.*"org_id":"\(org_[0-9a-f]*\)".*/\1/p')
[ -n "$org" ] || { echo "no organisation id in GET /v1/tokens" >&2; exit 1; }
cat >"$work/schemathesis.toml" <<EOF
[[operations]]
include-path-regex = "^/v1/public/orgs/"
parameters = { org_id = "$org" }
EOF

# From the temporary directory, so schemathesis's example database stays out of the tree.
# revokeToken is left out: it could revoke the one token the run
# authenticates with (after a createToken made it not the last admin token),
# and every operation after that would only get 401s. server/tests/tokens.rs
# covers token revocation over HTTP on both back ends.
(cd "$work" && timeout $((BUDGET + 60)) "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" \
    run "$base/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --exclude-operation-id revokeToken \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples 20 --max-time "$BUDGET" --workers 1 \
    --suppress-health-check all)
# The server survived it and still answers.
curl -sf "$base/readyz" >/dev/null
