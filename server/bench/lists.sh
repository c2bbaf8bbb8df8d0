#!/usr/bin/env bash
# Public revocation lists of `keyseal serve` at scale, on its embedded SQLite
# ledger, on loopback (issue 14's targets):
#  1. GET /v1/public/orgs/{org}/revocations with 100,000 revoked licenses on
#     the list, 16 anonymous clients: requests/s and p99, full downloads and
#     conditional ones (If-None-Match, what apps send: 304);
#  2. another organisation's mint p99 (wrk, 16 connections) alone, then
#     while the 16 clients read lists (target: within 1.5x of alone), with
#     no limit on public requests, then with the default limits
#     (--public-requests-per-second 20 per client, --public-list-mib-per-second
#     64 in all), the 16 readers sharing one address, then each with an
#     address of its own.
# Part 1 runs with no limit (it measures what the service can serve).
#   bash server/bench/lists.sh           # the figures (release build)
#   bash server/bench/lists.sh --smoke   # small sizes, to check it runs
# Setup shortcut: the revoked licenses are written into the ledger with
# SQL while the service is stopped (through the API, each revocation
# publishes a list); the service then publishes one list of all of them.
# Environment: KEYSEAL_BENCH_SECS (15), KEYSEAL_BENCH_REVOKED (100000).
# wrk comes from Debian's packages (installed if missing, as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${KEYSEAL_BENCH_SECS:-15}
REVOKED=${KEYSEAL_BENCH_REVOKED:-100000}
PROFILE=release
if [ "${1:-}" = "--smoke" ]; then SECS=2; REVOKED=2000; PROFILE=debug; fi
# shellcheck source=server/bench/common.sh
. server/bench/common.sh
"$BIN" init >/dev/null 2>&1
org() { "$BIN" --json org create "$1" 2>/dev/null; }
a=$(org vendor)
b=$(org quiet)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
org_a=$(field "$a" org_id)
token_a=$(field "$a" token)
token_b=$(field "$b" token)


# Organisation A's revoked licenses, signed (in the ledger's view) by its key.
python3 - "$work/vault/ledger.sqlite" "$org_a" "$REVOKED" <<'PY'
import random, sqlite3, sys, time
db, org, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = sqlite3.connect(db)
key = c.execute("SELECT key_id FROM signing_keys WHERE org_id = ? AND status = 'active'", (org,)).fetchone()[0]
now_ms = int(time.time() * 1000)
rnd = random.Random(7)
ids = []
for _ in range(n):
    # As keyseal's issuer makes them: 48-bit milliseconds (the last two
    # years), then 80 random bits.
    ms = now_ms - rnd.randrange(2 * 365 * 86_400_000)
    ids.append(f"{(ms << 80) | rnd.getrandbits(80):032x}")
c.executemany("INSERT INTO licenses (license_id, key_id, product, customer, plan, issued_at, license_key) "
              "VALUES (?, ?, 'acme-cad', 'cus_bench', 'pro', 0, 'k')", ((i, key) for i in ids))
c.executemany("INSERT INTO org_licenses (license_id, org_id, max_devices, product, customer) "
              "VALUES (?, ?, 1, 'acme-cad', 'cus_bench')", ((i, org) for i in ids))
c.executemany("INSERT INTO revocations (license_id, revoked_at, reason, org_id) VALUES (?, 0, 'bench', ?)", ((i, org) for i in ids))
c.commit()
PY
start --public-requests-per-second 0 --public-list-mib-per-second 0
# One revocation through the API publishes A's list, with all of them.
auth_a=(-H 'Content-Type: application/json' -H "Authorization: Bearer $token_a")
curl -sf "${auth_a[@]}" -d '{"product":"acme-cad"}' "$base/v1/products" >/dev/null
customer_a=$(curl -sf "${auth_a[@]}" -d '{}' "$base/v1/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customer_id"])')
one=$(curl -sf "${auth_a[@]}" -d "{\"product\":\"acme-cad\",\"customer_id\":\"$customer_a\",\"plan\":\"pro\",\"expires\":\"30d\"}" "$base/v1/licenses" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["license_id"])')
t0=$(date +%s%N)
curl -sf "${auth_a[@]}" -d '{"reason":"refund"}' "$base/v1/licenses/$one/revoke" >/dev/null
t1=$(date +%s%N)
list_url="$base/v1/public/orgs/$org_a/revocations"
curl -sf -D "$work/headers" -o "$work/list.txt" "$list_url"
t2=$(date +%s%N)
curl -sf -o /dev/null "$list_url"
t3=$(date +%s%N)
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\([^[:space:]]*\).*/\1/p' "$work/headers" | tr -d '\r')
listed=$(python3 - "$work/list.txt" <<'PY'
import base64, sys
text = open(sys.argv[1]).read()
body = text.split("-----BEGIN KEYSEAL REVOCATION LIST-----")[1].split("-----END")[0]
data = base64.urlsafe_b64decode("".join(body.split()) + "==")
# sequence, issued at, next update, key count (0 here), then the license count.
def varint(b, i):
    v = s = 0
    while True:
        v |= (b[i] & 0x7F) << s; s += 7; i += 1
        if not b[i - 1] & 0x80: return v, i
i = 9
for _ in range(4): _, i = varint(data, i)
n, _ = varint(data, i)
print(n, len(data))
PY
)
read -r listed binary <<<"$listed"
echo "keyseal serve ($PROFILE, SQLite) on $addr, $(nproc) cores: organisation A's list holds $listed revoked licenses,"
echo "   $binary bytes ($(python3 -c "print(f'{$binary / $listed:.2f}')") a license), $(stat -c %s "$work/list.txt") armored;"
echo "   the revocation that published it: $(( (t1 - t0) / 1000000 )) ms;"
echo "   first request (builds the file): $(( (t2 - t1) / 1000000 )) ms, the next: $(( (t3 - t2) / 1000000 )) ms"
[ "$listed" -gt "$REVOKED" ] || { echo "the list does not hold the revocations"; exit 1; }

readers() {
    # 429s count as answers here; wrk's "Non-2xx or 3xx" line says how many.
    KEYSEAL_ETAG=$1 wrk -t2 -c16 -d"$2s" --timeout 10s --latency -s server/bench/lists.lua "$list_url" \
        | grep -E '^lists:|Non-2xx' | tr -s ' \n' ' '
}
echo
echo "1. 16 anonymous clients read A's list (${SECS}s)"
echo "   full downloads:          $(readers "" "$SECS")"
echo "   conditional (304):       $(readers "$etag" "$SECS")"

curl -sf -H 'Content-Type: application/json' -H "Authorization: Bearer $token_b" -d '{"product":"acme-cad"}' "$base/v1/products" >/dev/null
customer_b=$(curl -sf -H 'Content-Type: application/json' -H "Authorization: Bearer $token_b" -d '{}' "$base/v1/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customer_id"])')
mints_b() {
    KEYSEAL_TOKEN=$token_b KEYSEAL_CUSTOMER=$customer_b \
        wrk -t2 -c16 -d"${SECS}s" --timeout 10s --latency -s server/bench/mint.lua "$base/v1/licenses" | grep '^mints:'
}
ratio() {
    python3 - "$1" "$2" <<'PY'
import re, sys
p = [float(re.search(r"p99 ([0-9.]+) ms", s).group(1)) for s in sys.argv[1:]]
print(f"   p99 ratio (busy / alone): {p[1] / p[0]:.2f} (target: at most 1.5)")
PY
}
fairness() {
    list_url="$base/v1/public/orgs/$org_a/revocations"
    echo
    echo "2. organisation B's mints (16 connections, ${SECS}s), $1"
    alone=$(mints_b)
    echo "   alone:                                $alone"
    for mode in conditional full; do
        tag=""; [ "$mode" = conditional ] && tag=$etag
        readers "$tag" $((SECS + 2)) >"$work/readers" &
        r=$!
        sleep 1
        busy=$(mints_b)
        wait $r
        echo "   while 16 clients read ($mode):   $busy"
        echo "      (the readers: $(cat "$work/readers"))"
        ratio "$alone" "$busy"
    done
}
fairness "no limit on public requests (per client or in bytes)"
stop
start
fairness "the default limits on public requests (20 a second per client, full lists 64 MiB a second in all), the 16 readers from one address: past a limit a request waits for its turn, up to a second, then 429"
stop
start --trusted-proxy 127.0.0.1/32
export KEYSEAL_CLIENTS=16
fairness "the default limits, the 16 readers from 16 addresses (X-Forwarded-For from a trusted proxy): 20 requests a second each"
unset KEYSEAL_CLIENTS
stop
