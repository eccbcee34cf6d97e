#!/usr/bin/env bash
# Instructions and allocations per proxied request, deterministic where req/s on a shared
# machine is not:
# sockwarden (allow-all policy for the current user, audit log to a file, as scripts/bench.sh's
# "sockwarden" front) under valgrind --tool=callgrind in front of examples/stub_upstream.rs;
# per path: WARM keep-alive requests, counters zeroed, N keep-alive requests on one curl
# connection, dumped; then the same N requests as N separate curl connections (one request per
# client connection, as the docker CLI makes).
#
# Usage: scripts/callgrind_requests.sh [SOCKWARDEN_BIN]    (default target/release/sockwarden)
# Knobs: N=200 WARM=60 PATHS="/_ping /v1.41/containers/json" SEPARATE=1 (0: skip the
#        one-request-per-connection runs) KEEP=dir (copy the callgrind dumps there, for
#        callgrind_annotate)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench-config.sh
source "$ROOT/scripts/bench-config.sh"
BIN=${1:-$ROOT/target/release/sockwarden}
STUB=$ROOT/target/release/examples/stub_upstream
N=${N:-200}
WARM=${WARM:-60}
PATHS=${PATHS:-"/_ping /v1.41/containers/json"}
SEPARATE=${SEPARATE:-1}
TMP=$(mktemp -d /tmp/sw-callgrind.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
"$STUB" --socket "$TMP/stub.sock" --threads 2 >"$TMP/stub.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [[ -S $TMP/stub.sock ]] && break; sleep 0.1; done
bench_config "$TMP/stub.sock" "$TMP/sw.sock" "sink = \"file\"
path = \"$TMP/audit.log\"" >"$TMP/sw.toml"
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" --dump-instr=no \
    "$BIN" serve --config "$TMP/sw.toml" >"$TMP/sw.log" 2>&1 &
SW=$!
PIDS+=($SW)
for _ in $(seq 600); do
    [[ $(curl -s -m 5 --unix-socket "$TMP/sw.sock" http://d/_ping 2>/dev/null) == OK ]] && break
    sleep 0.2
done
# The allocator's entry points (mimalloc's, which the global allocator calls, and libc's):
# each call is one allocation (or reallocation).
ALLOC_RE='^(mi_(malloc|zalloc|calloc|realloc)(_aligned)?|malloc|calloc|realloc)$'
count() { # label -> "instructions allocations" per request in the last dump
    callgrind_control --dump="$1" "$SW" >/dev/null 2>&1
    sleep 1
    local f
    f=$(ls -t "$TMP"/cg.out.* | head -1)
    [[ -z ${KEEP:-} ]] || cp "$f" "$KEEP/"
    echo "$(($(awk '/^(summary|totals):/ { print $2; exit }' "$f") / N))" \
        "$(python3 "$ROOT/scripts/callgrind-calls.py" "$N" "$ALLOC_RE" "$f")"
}
for path in $PATHS; do
    urls=()
    for ((i = 0; i < N; i++)); do urls+=(-o /dev/null "http://d$path"); done
    status=$(curl -s -w '%{http_code}\n' --unix-socket "$TMP/sw.sock" "${urls[@]:0:$((2 * WARM))}" | tail -1)
    callgrind_control --zero "$SW" >/dev/null 2>&1
    curl -s --unix-socket "$TMP/sw.sock" "${urls[@]}" >/dev/null
    read -r n a <<<"$(count ka)"
    printf '%-28s keep-alive  status %s  %s instructions/request  %s allocations/request\n' "$path" "$status" "$n" "$a"
    if ((SEPARATE)); then
        callgrind_control --zero "$SW" >/dev/null 2>&1
        for ((i = 0; i < N; i++)); do curl -s -o /dev/null --unix-socket "$TMP/sw.sock" "http://d$path"; done
        read -r n a <<<"$(count sep)"
        printf '%-28s one/conn    status %s  %s instructions/request  %s allocations/request\n' "$path" "$status" "$n" "$a"
    fi
done
