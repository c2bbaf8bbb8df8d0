#!/usr/bin/env bash
# keyseal-server's test step (scripts/test.sh step `server`): the server's
# and the issuer's tests on SQLite and on PostgreSQL.
#
# PostgreSQL comes from Debian's packages (installed if missing, when run as
# root); a throwaway cluster runs as the unprivileged `postgres` user on a
# free loopback port in a temporary directory, and is stopped and removed on
# exit. Set KEYSEAL_TEST_POSTGRES_URL yourself to use another server.
set -euo pipefail
cd "$(dirname "$0")/../.."

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

start_postgres() {
    local bin tmp port
    bin=$(pg_bin)
    if [ -z "$bin" ] && [ "$(id -u)" = 0 ]; then
        echo "installing PostgreSQL from Debian's packages"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin=$(pg_bin)
    fi
    if [ -z "$bin" ]; then
        echo "PostgreSQL: not installed and not root: the PostgreSQL tests are skipped"
        return 0
    fi
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    [ "$(id -u)" = 0 ] && chown postgres "$tmp"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$tmp/data" -U keyseal --auth=trust -E UTF8 >/dev/null
    # fsync off: a throwaway cluster for tests only.
    as_pg "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $tmp -F -c max_connections=200" start >/dev/null
    PG_STOP="as_pg $bin/pg_ctl -D $tmp/data -m immediate stop >/dev/null 2>&1; rm -rf $tmp"
    # shellcheck disable=SC2064
    trap "$PG_STOP" EXIT
    export KEYSEAL_TEST_POSTGRES_URL="postgres://keyseal@127.0.0.1:$port/postgres"
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

if [ -z "${KEYSEAL_TEST_POSTGRES_URL:-}" ]; then
    start_postgres
fi
cargo test -p keyseal-server -p keyseal-issuer
# Webhooks checked from outside with the Standard Webhooks reference library
# (pinned, in a venv outside the clone): order, exactly-once processing by a
# deduplicating receiver across a 500 and a SIGKILL mid-delivery, replays,
# the library's refusals; then two replicas on a fresh PostgreSQL database.
WH_VENV="${KEYSEAL_CACHE:-$HOME/.cache/keyseal}/wh-venv"
[ -x "$WH_VENV/bin/python" ] || python3 -m venv "$WH_VENV"
"$WH_VENV/bin/pip" install -q --disable-pip-version-check "standardwebhooks==1.3.0" cryptography \
    "stripe==16.1.0" "aiosmtpd==1.4.6"
cargo build --quiet -p keyseal-cli
WH_BIN=${CARGO_TARGET_DIR:-target}/debug/keyseal
"$WH_VENV/bin/python" server/scripts/webhooks_e2e.py "$WH_BIN"
# Selling: Stripe fixtures signed with the official library's scheme (which
# must accept exactly what keyseal accepts), keys emailed to a local SMTP
# sink (aiosmtpd), refunds revoking, a subscription renewed and ended; keys
# emailed over STARTTLS and TLS to sinks with a private CA's certificate.
"$WH_VENV/bin/python" server/scripts/payments_e2e.py "$WH_BIN"
if [ -n "${KEYSEAL_TEST_POSTGRES_URL:-}" ]; then
    wh_db="webhooks_e2e_$$"
    "$(pg_bin)/psql" "$KEYSEAL_TEST_POSTGRES_URL" -qc "CREATE DATABASE $wh_db"
    "$WH_VENV/bin/python" server/scripts/webhooks_e2e.py "$WH_BIN" \
        --postgres "${KEYSEAL_TEST_POSTGRES_URL%/*}/$wh_db"
fi
# Property-based API test against the served OpenAPI document (bounded by
# examples per operation and a fixed seed, not by time; one worker:
# hypothesis's source inspection is not thread-safe on Python 3.11).
bash server/scripts/schemathesis.sh
# Clients generated from that document by openapi-python-client and
# openapi-typescript type-check strictly and run the mint/revoke/keyring flow.
bash server/clients/test.sh
# The load bench in its smoke mode (3 s, debug build): it runs and every mint succeeds.
bash server/bench/load.sh --smoke
# The check-in bench in its smoke mode (20 seats, 3 s): it runs and every check-in succeeds.
bash server/bench/checkins.sh --smoke
# The webhook bench in its smoke mode (2 s runs): it runs, every event is delivered.
bash server/bench/webhooks.sh --smoke
# The tenant bench in its smoke mode (200 products, 20,000 licenses): it runs.
bash server/bench/tenants.sh --smoke
