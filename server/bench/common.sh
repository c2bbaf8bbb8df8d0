# Sourced by the bench scripts of server/bench/ after they set PROFILE
# (release, or debug for --smoke): installs wrk (Debian's package, as root)
# if missing, builds the keyseal binary ($BIN), makes a scratch directory
# ($work, removed on exit with the server it started), and defines start
# (a `keyseal serve` on the vault $KEYSEAL_VAULT with any more options
# given, its address in $base) and stop.
command -v wrk >/dev/null || {
    [ "$(id -u)" = 0 ] || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}
if [ "$PROFILE" = release ]; then cargo build --quiet --release -p keyseal-cli; else cargo build --quiet -p keyseal-cli; fi
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE/keyseal

work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"' EXIT
# Cheap key derivation: the benches measure requests, not Argon2 at start-up.
export KEYSEAL_PASSPHRASE=bench-only KEYSEAL_KDF_PARAMS=m=256,t=1,p=1 KEYSEAL_VAULT=$work/vault

start() {
    KEYSEAL_LOG=${KEYSEAL_LOG:-warn} "$BIN" serve --listen 127.0.0.1:0 "$@" >"$work/out" 2>"$work/err" &
    pid=$!
    for _ in $(seq 200); do grep -q "listening on" "$work/err" && break; sleep 0.1; done
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/err")
    base="http://$addr"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
# The server's CPU time so far (user and system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# The server's CPU over a wrk run that began at cpu_ticks $1, from wrk's
# output in $2: cores busy, and CPU time per request (a figure that noise
# from other processes on the machine moves less than requests/s).
cpu_report() {
    local ticks=$(( $(cpu_ticks) - $1 )) hz
    hz=$(getconf CLK_TCK)
    sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\1 \2/p' "$2" | {
        read -r requests secs
        python3 -c "import sys; t=$ticks/$hz; print(f'server CPU: {t/$secs:.2f} cores, {t/max($requests,1)*1e6:.0f} µs per request')"
    }
}
