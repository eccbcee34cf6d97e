#!/usr/bin/env bash
# The audit's cost in instructions (deterministic where req/s on a shared machine is not):
# sockwarden under `valgrind --tool=callgrind` in front of examples/stub_upstream.rs, once per
# audit variant, 60 keep-alive warm-up requests, counters zeroed, N keep-alive
# `GET /v1.41/containers/json` on one connection, 0.5 s for the writer thread to flush, dump.
#
#   scripts/audit-callgrind.sh BIN LABEL VARIANT...
#     BIN      the sockwarden binary (e.g. target/release/sockwarden; build with
#              CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for per-line figures)
#     LABEL    names the work dir, /tmp/audit-callgrind/run-LABEL (profiles kept there)
#     VARIANT  off | file | sealed (file + seal_key) | remote (file + remote sink to
#              examples/discard_collector.rs over TCP, through a spool) | remoteonly
#   N=400      requests counted
# Prints total instructions per request of each variant, and the request path's audit work
# alone (inclusive instructions of `Audit::push`: writing the record and queueing it) and the
# writer and sender threads' (`Writer::flush`, `Sender::run`), per request.
# Needs target/release/examples/{stub_upstream,discard_collector}, valgrind, curl, python3.
set -euo pipefail
BIN=$1; LABEL=$2; shift 2
N=${N:-400}
W=/tmp/audit-callgrind/run-$LABEL
rm -rf "$W"; mkdir -p "$W"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench-config.sh
source "$ROOT/scripts/bench-config.sh"
STUB=$ROOT/target/release/examples/stub_upstream
COLL=$ROOT/target/release/examples/discard_collector
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$STUB" --socket "$W/stub.sock" --threads 2 >"$W/stub.log" 2>&1 & PIDS+=($!)
"$COLL" 127.0.0.1:0 "$W/collector.port" >"$W/coll.log" 2>&1 & PIDS+=($!)
for i in $(seq 50); do [[ -S $W/stub.sock && -s $W/collector.port ]] && break; sleep 0.1; done
PORT=$(cat "$W/collector.port")
[[ -e $W/seed ]] || "$BIN" audit seal-init "$W/seed" 2>/dev/null
for v in "$@"; do
  case $v in
    off) sink='sink = "off"' ;;
    file) sink="sink = \"file\"
path = \"$W/audit-file.log\"" ;;
    sealed) sink="sink = \"file\"
path = \"$W/audit-sealed.log\"
seal_key = \"$W/seed\"" ;;
    remote) sink="[[audit.sinks]]
type = \"file\"
path = \"$W/audit-remote.log\"

[[audit.sinks]]
type = \"remote\"
address = \"127.0.0.1:$PORT\"
spool_dir = \"$W/spool\"
on_failure = \"closed\"" ;;
    remoteonly) sink="[[audit.sinks]]
type = \"remote\"
address = \"127.0.0.1:$PORT\"
spool_dir = \"$W/spool2\"
on_failure = \"closed\"" ;;
  esac
  bench_config "$W/stub.sock" "$W/$v.sock" "$sink" >"$W/$v.toml"
  valgrind --tool=callgrind --callgrind-out-file="$W/cg-$v.out" --dump-instr=no ${CGOPTS:-} \
     "$BIN" serve --config "$W/$v.toml" >"$W/$v.log" 2>&1 &
  pid=$!; PIDS+=($pid)
  for i in $(seq 600); do
    [[ -S $W/$v.sock ]] && [[ $(curl -s -m 5 --unix-socket "$W/$v.sock" http://bench/_ping 2>/dev/null) == OK ]] && break
    sleep 0.2
  done
  urls=(); for ((i = 0; i < N; i++)); do urls+=(-o /dev/null "http://bench/v1.41/containers/json"); done
  st=$(curl -s -w '%{http_code}\n' --unix-socket "$W/$v.sock" "${urls[@]:0:120}" | tail -1)
  sleep 0.5
  callgrind_control --zero $pid >/dev/null 2>&1
  curl -s --unix-socket "$W/$v.sock" "${urls[@]}" || true
  sleep 0.5
  callgrind_control --dump=measured $pid >/dev/null 2>&1
  sleep 1
  f=$(ls -t "$W/cg-$v.out".* | head -1)
  n=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
  echo "$LABEL $v status=$st total=$n per_request=$((n / N)) file=$f"
  python3 "$ROOT/scripts/callgrind-incl.py" "$N" '^sockwarden::audit::Audit::push$' "$f" | sed 's/^/  request path (Audit::push): /'
  python3 "$ROOT/scripts/callgrind-incl.py" "$N" '^sockwarden::audit::sink::Writer::flush$|^sockwarden::audit::remote::Sender::run$' "$f" | sed 's/^/  writer + sender threads: /' 
  kill $pid; wait $pid 2>/dev/null || true
done
