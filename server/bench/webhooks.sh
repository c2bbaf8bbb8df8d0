#!/usr/bin/env bash
# Webhook bench of `keyseal serve` on its embedded SQLite ledger: mints
# streamed by wrk in three configurations, one after another in each round
# (each on a replica started for it):
#   none      no webhook endpoint enabled (the replica started with
#             --no-delivery);
#   outbox    one endpoint taking every license.created, on a
#             --no-delivery replica: each mint writes its event and delivery
#             to the outbox, and nothing is sent;
#   delivery  the same endpoint on a replica that delivers (started
#             without the flag, once the backlog of outbox runs went out):
#             a local receiver answering 204 gets every event while the
#             mints go on.
# First at a steady rate well below capacity (16 connections, each pausing
# 10 ms after an answer: about 1,400 mints/s), then as fast as the 16
# connections go. Prints each run's mints/s, p99 and the server's CPU per
# mint, and the events delivered per second while minting and until the
# queue drained; then each configuration's median p99 over the rounds (a
# run's p99 moves by half from one run to the next on a shared 2-core VM;
# the median of many short runs moves less than the sum of a few long
# ones), and their ratios: with delivery running against without (delivery
# / outbox: target at most 1.2), and against no endpoint at all (what an
# endpoint costs, outbox included).
#   bash server/bench/webhooks.sh            # 7 rounds of 5 s runs at 16 connections
#   bash server/bench/webhooks.sh --smoke    # 2 rounds of 2 s runs, to check the bench runs
# Environment: KEYSEAL_BENCH_SECS (5), KEYSEAL_BENCH_CONNECTIONS (16),
# KEYSEAL_BENCH_ROUNDS (7).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${KEYSEAL_BENCH_SECS:-5}
CONNS=${KEYSEAL_BENCH_CONNECTIONS:-16}
ROUNDS=${KEYSEAL_BENCH_ROUNDS:-7}
PROFILE=release
# (Two rounds in the smoke run, so both orders run.)
if [ "${1:-}" = "--smoke" ]; then SECS=2; CONNS=4; ROUNDS=2; PROFILE=debug; fi
# shellcheck source=server/bench/common.sh
. server/bench/common.sh
# The receiver: a small Rust program (server/examples/webhook_sink.rs), so
# it takes little of the 2 cores from the service; at the lowest CPU
# priority, as it stands for the vendor's own machine.
if [ "$PROFILE" = release ]; then cargo build --quiet --release -p keyseal-server --example webhook_sink; else cargo build --quiet -p keyseal-server --example webhook_sink; fi
nice -n 19 "${CARGO_TARGET_DIR:-target}/$PROFILE/examples/webhook_sink" "$work/recv-port" &
recv_pid=$!
trap 'kill $recv_pid 2>/dev/null; if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/recv-port" ] && break; sleep 0.05; done
recv="http://127.0.0.1:$(cat "$work/recv-port")"
received() { curl -sf "$recv/count"; }

# A replica of the service (more options given: --no-delivery), after a
# second of mints to warm it up.
serve() {
    KEYSEAL_LOG=warn start --webhooks-to-private-networks "$@"
    if [ -n "${token:-}" ]; then
        KEYSEAL_DELAY_MS=$DELAY KEYSEAL_TOKEN=$token KEYSEAL_CUSTOMER=$customer \
            wrk -t2 -c"$CONNS" -d1s --timeout 10s -s server/bench/mint.lua "$base/v1/licenses" >/dev/null
    fi
}
# Waits until the endpoint has no delivery pending (or fails after 2
# minutes).
drained() {
    for _ in $(seq 1200); do
        [ "$(curl -sf "${auth[@]}" "$base/v1/webhooks/$endpoint/deliveries?status=pending&limit=1" |
            python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" = 0 ] && return 0
        sleep 0.1
    done
    echo "the queue did not drain: $(received) events received"
    exit 1
}

DELAY=
serve --no-delivery
token=$(grep '^ksk_' "$work/out")
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -d '{"product":"acme-cad"}' "$base/v1/products" >/dev/null
customer=$(curl -sf "${auth[@]}" -d '{}' "$base/v1/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["customer_id"])')
endpoint=$(curl -sf "${auth[@]}" -d "{\"url\":\"$recv/hooks\",\"events\":[\"license.created\"]}" "$base/v1/webhooks" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint_id"])')
enable() { curl -sf "${auth[@]}" -d "{\"enabled\":$1}" "$base/v1/webhooks/$endpoint" >/dev/null; }
enable false
stop

# One wrk run; prints its summary line, leaves the p99 (ms) in $p99 and
# the mints in $minted.
run() {
    local ticks rticks
    ticks=$(cpu_ticks)
    rticks=$(awk '{print $14 + $15}' "/proc/$recv_pid/stat")
    KEYSEAL_DELAY_MS=$DELAY KEYSEAL_TOKEN=$token KEYSEAL_CUSTOMER=$customer \
        wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency -s server/bench/mint.lua "$base/v1/licenses" >"$work/wrk"
    if grep -q "Non-2xx" "$work/wrk"; then echo "some mints failed"; cat "$work/wrk"; exit 1; fi
    echo "  $(grep '^mints:' "$work/wrk")"
    echo "  $(cpu_report "$ticks" "$work/wrk"); receiver CPU: $(python3 -c "print(f'{($(awk '{print $14 + $15}' "/proc/$recv_pid/stat") - $rticks)/$(getconf CLK_TCK)/$SECS:.2f}')") cores"
    p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$work/wrk")
    minted=$(sed -n 's/^mints: \([0-9]*\) requests.*/\1/p' "$work/wrk")
}

echo "keyseal serve ($PROFILE, SQLite): wrk, $CONNS connections, ${SECS}s runs, $ROUNDS rounds, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Each run is on a replica started for it (and warmed up by a second of
# mints), so no configuration runs on a process older than another's.
# Outbox and delivery runs start with no backlog but their warm-up's: what
# earlier outbox runs queued goes out first (before an outbox run, from a
# delivering replica stopped then; before a delivery run, from the
# measured replica itself, which then starts once its queue is empty). The
# ledger grows by every run's mints, so outbox and delivery take turns at
# going first (outbox first in odd rounds, delivery first in even ones):
# neither always runs on the larger ledger. The none run always goes first,
# beside any backlog (for its disabled endpoint) that an outbox run left:
# the ratios against none are less exact than delivery / outbox.
measure() {
    echo; echo "== $1"
    none=() outbox=() delivery=()
    for round in $(seq "$ROUNDS"); do
        serve --no-delivery
        echo "round $round, none: no webhook endpoint enabled"
        run
        none+=("$p99")
        enable true
        stop
        if [ $((round % 2)) = 1 ]; then order="outbox delivery"; else order="delivery outbox"; fi
        for config in $order; do
            if [ "$config" = outbox ]; then
                serve
                drained
                stop
                serve --no-delivery
                echo "round $round, outbox: one endpoint taking every license.created, on a replica that does not deliver"
                run
                outbox+=("$p99")
            else
                # The backlog of earlier outbox runs (and the warm-up's
                # events) goes out before the run.
                serve
                drained
                before=$(received)
                echo "round $round, delivery: the same endpoint on a replica that delivers"
                start_ns=$(date +%s%N)
                run
                delivery+=("$p99")
                during=$(( $(received) - before ))
                drained
                end_ns=$(date +%s%N)
                [ "$(( $(received) - before ))" -ge "$minted" ] || { echo "fewer events received than minted"; exit 1; }
                python3 -c "m=$minted; s=($end_ns-$start_ns)/1e9; print(f'  delivered {m} events: {$during/$SECS:.0f}/s while minting, {m/s:.0f}/s from the run start until drained ({s:.1f} s)')"
            fi
            [ "$config" = "${order##* }" ] && enable false
            stop
        done
    done
    python3 -c "
n=[float(x) for x in '${none[*]}'.split()]; o=[float(x) for x in '${outbox[*]}'.split()]; d=[float(x) for x in '${delivery[*]}'.split()]
f=lambda xs: ', '.join(f'{x:.2f}' for x in xs)
from statistics import median as m
print(f'$1, mint p99 over {len(n)} rounds (ms):')
print(f'  none: {f(n)} (median {m(n):.2f}); outbox: {f(o)} (median {m(o):.2f}); delivery: {f(d)} (median {m(d):.2f})')
print(f'  with delivery running against without (delivery / outbox): {m(d)/m(o):.2f} (target at most 1.2)')
print(f'  an endpoint, outbox and delivery, against none (delivery / none): {m(d)/m(n):.2f}; the outbox alone (outbox / none): {m(o)/m(n):.2f}')"
}
DELAY=10
measure "steady load (each connection pausing ${DELAY} ms)"
DELAY=
measure "saturation (no pause)"
