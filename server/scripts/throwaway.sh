# Sourced by the server's HTTP test scripts (schemathesis.sh,
# server/clients/test.sh): starts a throwaway `keyseal serve` on a free
# loopback port with a temporary vault, and sets
#   work   the temporary directory (removed on exit, with the server stopped)
#   base   http://127.0.0.1:PORT
#   token  the first admin API token
#   org    the organisation's id
# Needs BIN, the `keyseal` binary.
work=$(mktemp -d)
KEYSEAL_PASSPHRASE=throwaway-only KEYSEAL_KDF_PARAMS=m=256,t=1,p=1 \
    "$BIN" --vault "$work/vault" serve --listen 127.0.0.1:0 --auth-failures-per-minute 1000000 \
    >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
# shellcheck disable=SC2064
trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $work" EXIT
for _ in $(seq 100); do grep -q "listening on" "$work/serve.err" && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/serve.err")
token=$(grep '^ksk_' "$work/serve.out")
[ -n "$addr" ] && [ -n "$token" ] || { cat "$work/serve.err"; exit 1; }
base="http://$addr"
# The organisation's public keyring and revocation list are asked for by its id.
org=$(curl -sf -H "Authorization: Bearer $token" "$base/v1/tokens" |
    sed -n 's/.*"org_id":"\(org_[0-9a-f]*\)".*/\1/p')
[ -n "$org" ] || { echo "no organisation id in GET /v1/tokens" >&2; exit 1; }
