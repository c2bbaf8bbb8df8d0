#!/usr/bin/env bash
# Webhook bench of `keyseal serve` on its embedded SQLite ledger: mints
# streamed by wrk with no webhook endpoint, then with one endpoint taking
# every license.created (a local receiver answering 204), twice each,
# alternately; first at a steady rate well below capacity (16 connections,
# each pausing 10 ms after an answer: about 1,400 mints/s), then as fast as
# the 16 connections go. Prints each run's mints/s, p99 and the server's
# CPU per mint, the p99 ratio with delivery running against without
# (target: at most 1.2), and the events delivered per second while minting
# and until the queue drained.
#   bash server/bench/webhooks.sh            # 10 s runs at 16 connections
#   bash server/bench/webhooks.sh --smoke    # 2 s runs, to check the bench runs
# Environment: KEYSEAL_BENCH_SECS, KEYSEAL_BENCH_CONNECTIONS (16).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${KEYSEAL_BENCH_SECS:-10}
CONNS=${KEYSEAL_BENCH_CONNECTIONS:-16}
PROFILE=release
if [ "${1:-}" = "--smoke" ]; then SECS=2; CONNS=4; PROFILE=debug; fi
# shellcheck source=server/bench/common.sh
. server/bench/common.sh
# The receiver: a small Rust program (server/examples/webhook_sink.rs), so
# it takes little of the 2 cores from the service.
if [ "$PROFILE" = release ]; then cargo build --quiet --release -p keyseal-server --example webhook_sink; else cargo build --quiet -p keyseal-server --example webhook_sink; fi
"${CARGO_TARGET_DIR:-target}/$PROFILE/examples/webhook_sink" "$work/recv-port" &
recv_pid=$!
trap 'kill $recv_pid 2>/dev/null; if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/recv-port" ] && break; sleep 0.05; done
recv="http://127.0.0.1:$(cat "$work/recv-port")"
KEYSEAL_LOG=warn start --webhooks-to-private-networks
token=$(grep '^ksk_' "$work/out")
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -d '{"product":"acme-cad"}' "$base/v1/products" >/dev/null
customer=$(curl -sf "${auth[@]}" -d '{}' "$base/v1/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customer_id"])')
received() { curl -sf "$recv/count"; }

# One wrk run; prints its summary line and leaves the p99 (ms) in $p99.
run() {
    local ticks rticks
    export KEYSEAL_DELAY_MS=$DELAY
    ticks=$(cpu_ticks)
    rticks=$(awk '{print $14 + $15}' "/proc/$recv_pid/stat")
    KEYSEAL_TOKEN=$token KEYSEAL_CUSTOMER=$customer \
        wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency -s server/bench/mint.lua "$base/v1/licenses" >"$work/wrk"
    if grep -q "Non-2xx" "$work/wrk"; then echo "some mints failed"; cat "$work/wrk"; exit 1; fi
    grep '^mints:' "$work/wrk"
    cpu_report "$ticks" "$work/wrk"
    echo "  receiver CPU: $(python3 -c "print(f'{($(awk '{print $14 + $15}' "/proc/$recv_pid/stat") - $rticks)/$(getconf CLK_TCK)/$SECS:.2f}')") cores"
    p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$work/wrk")
}

echo "keyseal serve ($PROFILE, SQLite) on $addr: wrk, $CONNS connections, ${SECS}s runs, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
endpoint=
measure() {
echo; echo "== $1"
without=()
with=()
for round in 1 2; do
    if [ -n "$endpoint" ]; then
        curl -sf "${auth[@]}" -d '{"enabled":false}' "$base/v1/webhooks/$endpoint" >/dev/null
    fi
    echo "round $round, no webhook endpoint enabled:"
    run
    without+=("$p99")
    if [ -z "$endpoint" ]; then
        endpoint=$(curl -sf "${auth[@]}" -d "{\"url\":\"$recv/hooks\",\"events\":[\"license.created\"]}" "$base/v1/webhooks" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint_id"])')
    else
        curl -sf "${auth[@]}" -d '{"enabled":true}' "$base/v1/webhooks/$endpoint" >/dev/null
    fi
    before=$(received)
    echo "round $round, one endpoint taking every license.created:"
    start_ns=$(date +%s%N)
    run
    with+=("$p99")
    during=$(( $(received) - before ))
    minted=$(sed -n 's/^mints: \([0-9]*\) requests.*/\1/p' "$work/wrk")
    # Until the queue drained (every mint of the run delivered).
    for _ in $(seq 1200); do
        [ $(( $(received) - before )) -ge "$minted" ] && break
        sleep 0.1
    done
    end_ns=$(date +%s%N)
    delivered=$(( $(received) - before ))
    python3 -c "d=$delivered; m=$minted; s=($end_ns-$start_ns)/1e9; print(f'  delivered {d} of {m} events: {$during/$SECS:.0f}/s while minting, {d/s:.0f}/s from the run start until drained ({s:.1f} s)')"
    [ "$delivered" -ge "$minted" ] || { echo "the queue did not drain"; exit 1; }
done
python3 -c "
w=[float(x) for x in '${without[*]}'.split()]; d=[float(x) for x in '${with[*]}'.split()]
label='$1'; print(f'{label}: mint p99 without delivery: {w[0]:.2f} and {w[1]:.2f} ms; with delivery running: {d[0]:.2f} and {d[1]:.2f} ms; ratio over the two rounds: {(d[0]+d[1])/(w[0]+w[1]):.2f} (target at most 1.2)')"
}
DELAY=10
measure "steady load (each connection pausing ${DELAY} ms)"
DELAY=
measure "saturation (no pause)"
