#!/usr/bin/env bash
# Load bench of lease check-ins (POST /v1/public/leases/check-in) on the
# embedded SQLite ledger: 1,000 seats of one floating license, check-ins
# signed ahead of time by checkins_prepare.py, streamed by wrk on loopback;
# prints check-ins/s and p50/p99. The issue's target: at least as many as
# mints (server/bench/load.sh) at 64 connections.
#   bash server/bench/checkins.sh            # 20 s at 64 connections
#   bash server/bench/checkins.sh --smoke    # 3 s, to check the bench runs
# Environment: KEYSEAL_BENCH_SECS, KEYSEAL_BENCH_CONNECTIONS (64),
# KEYSEAL_BENCH_SEATS (1000), KEYSEAL_BENCH_REQUESTS (200000).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${KEYSEAL_BENCH_SECS:-20}
CONNS=${KEYSEAL_BENCH_CONNECTIONS:-64}
SEATS=${KEYSEAL_BENCH_SEATS:-1000}
REQUESTS=${KEYSEAL_BENCH_REQUESTS:-200000}
PROFILE=release
# Smoke: enough signed check-ins for 3 s at several times the debug build's rate.
if [ "${1:-}" = "--smoke" ]; then SECS=3; CONNS=8; SEATS=40; REQUESTS=12000; PROFILE=debug; fi
CACHE=${KEYSEAL_CACHE:-$HOME/.cache/keyseal}
VENV="$CACHE/venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import cryptography' 2>/dev/null || "$VENV/bin/pip" install -q cryptography
# shellcheck source=server/bench/common.sh
. server/bench/common.sh
# Apps' rate limits off: the bench is one address and one license.
KEYSEAL_LOG=info start --public-requests-per-second 0 --lease-requests-per-license-per-minute 0
token=$(grep '^ksk_' "$work/out")
"$VENV/bin/python" server/bench/checkins_prepare.py "$base" "$token" "$SEATS" "$REQUESTS" "$work/checkins"
echo "keyseal serve ($PROFILE, SQLite, synchronous=FULL) on $addr: wrk, $CONNS connections, 2 threads, ${SECS}s, $SEATS seats, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
ticks=$(cpu_ticks)
KEYSEAL_CHECKINS=$work/checkins wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency \
    -s server/bench/checkins.lua "$base" | tee "$work/wrk"
cpu_report "$ticks" "$work/wrk"
if grep -q "Non-2xx" "$work/wrk"; then echo "some check-ins failed (ran out of signed ones, or refused)"; exit 1; fi
