#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from the OpenAPI
# document the service serves (/v1/openapi.json) and checks that no response
# is a 5xx and every response matches the document (status, content type,
# body schema).
#
# Bounded by a number of examples per operation and phase, never by time, so
# a fast and a slow machine run the same cases and give the same verdict; a
# fixed seed (printed; KEYSEAL_SCHEMATHESIS_SEED picks another) makes a run
# repeatable. KEYSEAL_SCHEMATHESIS_EXAMPLES sets the examples per operation
# (default 50). The only time limit is a guard against a hang, far above a
# normal run.
#   bash server/scripts/schemathesis.sh
# Needs the debug `keyseal` binary (cargo build -p keyseal-cli); installs
# schemathesis (a pinned version: its generation changes between releases)
# into a venv under ~/.cache/keyseal.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
BIN=${KEYSEAL_BIN:-${CARGO_TARGET_DIR:-target}/debug/keyseal}
EXAMPLES=${KEYSEAL_SCHEMATHESIS_EXAMPLES:-50}
SEED=${KEYSEAL_SCHEMATHESIS_SEED:-20261203}
GUARD_SECS=${KEYSEAL_SCHEMATHESIS_GUARD_SECS:-1200}
VERSION=4.32.5
VENV="$CACHE/st-venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$VERSION')" 2>/dev/null ||
    "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
cargo build --quiet -p keyseal-cli

# shellcheck source=server/scripts/throwaway.sh
source server/scripts/throwaway.sh
# Some objects for the generated requests to find.
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"product":"acme-cad"}' "$base/v1/products" >/dev/null
# A customer and a license of it, so that the operations on one reach past
# the 404 (random ids are all 404s; server/tests covers those).
cus=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"Schema Thesis"}' "$base/v1/customers" |
    sed -n 's/.*"customer_id":"\(cus_[0-9a-zA-Z_]*\)".*/\1/p')
lic=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"product\":\"acme-cad\",\"customer_id\":\"$cus\",\"plan\":\"pro\",\"expires\":\"30d\",\"max_devices\":3}" \
    "$base/v1/licenses" | sed -n 's/.*"license_id":"\([0-9a-f]*\)".*/\1/p')
[ -n "$cus" ] && [ -n "$lic" ] || { echo "could not make a customer and a license" >&2; exit 1; }
cat >"$work/schemathesis.toml" <<EOF
[[operations]]
include-path-regex = '^/v1/public/orgs/'
parameters = { org_id = "$org" }

[[operations]]
include-path-regex = '^/v1/licenses/'
parameters = { id = "$lic" }

[[operations]]
include-path-regex = '^/v1/customers/'
parameters = { id = "$cus" }
EOF

# From the temporary directory, so schemathesis's example database stays out of the tree.
# revokeToken is left out: it could revoke the one token the run
# authenticates with (after a createToken made it not the last admin token),
# and every operation after that would only get 401s. server/tests/tokens.rs
# covers token revocation over HTTP on both back ends.
echo "schemathesis $VERSION: $EXAMPLES examples per operation, seed $SEED (rerun: KEYSEAL_SCHEMATHESIS_SEED=$SEED bash server/scripts/schemathesis.sh)"
status=0
(cd "$work" && timeout "$GUARD_SECS" "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" \
    run "$base/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --exclude-operation-id revokeToken \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$EXAMPLES" --seed "$SEED" --generation-database none --workers 1 \
    --suppress-health-check all) || status=$?
if [ "$status" = 124 ]; then
    echo "schemathesis: still running after ${GUARD_SECS}s (a hang?); seed $SEED" >&2
fi
if [ "$status" != 0 ]; then
    echo "schemathesis failed (exit $status); reproduce with KEYSEAL_SCHEMATHESIS_SEED=$SEED" >&2
    exit "$status"
fi
# The server survived it and still answers.
curl -sf "$base/readyz" >/dev/null
