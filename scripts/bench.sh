#!/usr/bin/env bash
# sockwarden benchmark: the same load generator against several fronts, side by side in one
# interleaved run:
#   direct      load generator straight to the upstream socket (the ceiling),
#   socat       a plain byte relay that parses nothing: `socat UNIX-LISTEN:S,fork,mode=600,
#               backlog=1024 UNIX-CONNECT:UPSTREAM` (a process per connection; socat's defaults
#               otherwise: its listen queue of 5 would refuse a burst of 64 connects),
#   haproxy     HAProxy with bench/haproxy/haproxy.cfg (docker-socket-proxy rules, closing the
#               upstream connection after each response as that image does),
#   haproxy-ka  the same with upstream keep-alive,
#   sockwarden  target/release/sockwarden with its audit log on (to a file, as users run it),
#   sockwarden-noaudit  the same with the audit log off,
# each in front of two upstreams:
#   stub        examples/stub_upstream.rs, a fast Docker-daemon stand-in,
#   docker      a private dockerd (vfs storage, no networking) started by this script.
# Measures req/s and p50/p99 latency of GET /_ping and GET /containers/json at concurrency 1,
# 32 and 64 (median and min-max over interleaved rounds), MiB/s of a SIZE_MIB response (GET
# /images/get) and request body, and of SIZE_MIB through a hijacked `exec` stream each way
# (stdin up; stdout down, multiplexed: the frame headers are not counted as payload; and
# `attach` on the stub), the CPU time each proxy used (its whole process tree: socat forks per
# connection) and each proxy's peak memory. The report checks issue 15's targets for every sockwarden front (req/s >= socat
# and both HAProxy fronts, p99 <= both HAProxy fronts, streams >= 0.9x direct, peak RSS < 32 MiB)
# and says "unresolved on noise" where the compared fronts' min-max ranges overlap.
# Prints a markdown table and writes it to bench/latest.md (raw JSON lines: bench/latest.jsonl).
#
# Usage: scripts/bench.sh            (as root when dockerd/haproxy/socat must be installed or started)
# Tiny smoke run (checks the harness, not the speed):
#   DURATION=1 WARMUP=0 ROUNDS=1 SIZE_MIB=16 STUB_REPEAT=1 DOCKER_REPEAT=1 AUDIT_RUNS=0 \
#       OUT=/tmp/bench-smoke.md scripts/bench.sh
# Knobs (environment):
#   DURATION=5 WARMUP=1         seconds measured / warm-up per req/s run
#   ROUNDS=3                    req/s runs per test and front, interleaved across fronts
#                               (the report shows the median of the rounds)
#   CONCURRENCY="1 32 64"       connections per req/s run
#   SIZE_MIB=256                size of the big response, the big request body and the
#                               hijacked streams
#   STUB_REPEAT=7 DOCKER_REPEAT=3   transfers per test and front, interleaved (median shown)
#   UPSTREAMS="stub docker"     which upstreams
#   FRONTS="direct socat haproxy haproxy-ka sockwarden sockwarden-noaudit"   which fronts (see
#                               above); the report's columns follow this order
#   HIJACK="exec attach"        hijacked-stream cells: "exec" (POST /exec/{id}/start; on
#                               docker an exec of `head -c N /dev/zero` down and of
#                               `cat > /dev/null` up, in the running container swb-web),
#                               "attach" (POST /containers/{id}/attach; stub only: a docker
#                               attach would need a fresh container per transfer), or ""
#   SOCAT_OPTS=""               extra socat options for the socat front (e.g. "-b 65536": its
#                               default 8 KiB buffer is what users get and what is measured)
#   AUDIT_RUNS=12 AUDIT_SECS=10 AUDIT_PHASE_MS=250   the audit log's cost (when both sockwarden
#                               fronts run): `loadgen paired` runs of sockwarden against
#                               sockwarden-noaudit, fresh processes each run (0 runs: skipped);
#                               single runs vary by +-8 %, so a 5 % target needs a dozen
#                               (~9 min per upstream)
#   AUDIT_VARIANTS="on sealed remote"  which audit-on fronts the audit-cost stage pairs with
#                               sockwarden-noaudit: "on" = front "sockwarden" (plain file),
#                               "sealed" = "sockwarden-sealed" (the file sealed: [audit] seal_key),
#                               "remote" = "sockwarden-remote" (the file sink plus a remote sink
#                               over TCP to examples/discard_collector.rs, through its spool),
#                               "tmpfs" = "sockwarden-tmpfs" (the plain file on /dev/shm: the
#                               audit's cost without the disk's writeback of the log, which on
#                               a virtual disk is a good part of "on"; not in the default);
#                               each variant adds the stage's time once more
#   ISO_RUNS=3 ISO_SECS=5       isolation's cost (when the "isolation" cells are wanted: ISO=1):
#                               `loadgen paired` runs of a policy with `isolation = "user"`
#                               against the same policy without it, on `GET /containers/json`
#                               and `GET /containers/{id}/json` (audit off in both), plus
#   ISO_CALLGRIND=200           instructions per request of each (valgrind --tool=callgrind,
#                               counters zeroed, then that many keep-alive requests, dumped;
#                               0: skipped). Deterministic where req/s on a shared machine is not.
#   ISO=0                       1: run the isolation cells (after the audit cost)
#   CALLGRIND=200               instructions and allocations per request of the "sockwarden"
#                               front (scripts/callgrind_requests.sh: that many keep-alive
#                               requests on one connection, then as many connections of one
#                               request each, through the stub, counted by valgrind's callgrind,
#                               exactly; allocations = calls into the allocator); 0: skipped
#   LOADGEN_THREADS=1 STUB_THREADS=2    tokio worker threads of the load generator / stub
#   MEASURE_TIMEOUT=120         seconds one req/s run or transfer may take before it is killed
#                               and recorded as failed (a front that stops answering, e.g.
#                               HAProxy 2.6 once left a `docker save` hanging for its 10 min
#                               server timeout, would otherwise stall the whole run)
#   SKIP_BUILD=1                use the binaries already in target/release
#   SOCKWARDEN_BIN=path         benchmark this sockwarden binary (e.g. one built from another
#                               revision); SOCKWARDEN_REV=text names it in the report
#   OUT=bench/latest.md         where the report goes
# Everything talks over unix sockets in a private temp dir; every process started here is
# stopped on exit, including on Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench-config.sh
source "$ROOT/scripts/bench-config.sh"
# The command as given, with the knobs set in the environment (for the report).
CMDLINE=""
for knob in DURATION WARMUP ROUNDS CONCURRENCY SIZE_MIB STUB_REPEAT DOCKER_REPEAT UPSTREAMS FRONTS \
    HIJACK SOCAT_OPTS AUDIT_RUNS AUDIT_SECS AUDIT_PHASE_MS AUDIT_VARIANTS ISO ISO_RUNS ISO_SECS \
    ISO_CALLGRIND CALLGRIND LOADGEN_THREADS STUB_THREADS MEASURE_TIMEOUT SKIP_BUILD SOCKWARDEN_BIN \
    SOCKWARDEN_REV; do
    [[ -z ${!knob+x} ]] || CMDLINE+="$knob=\"${!knob}\" "
done
CMDLINE+="scripts/bench.sh"
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-"1 32 64"}
SIZE_MIB=${SIZE_MIB:-256}
STUB_REPEAT=${STUB_REPEAT:-7}
DOCKER_REPEAT=${DOCKER_REPEAT:-3}
UPSTREAMS=${UPSTREAMS:-"stub docker"}
FRONTS=${FRONTS:-"direct socat haproxy haproxy-ka sockwarden sockwarden-noaudit"}
HIJACK=${HIJACK-exec attach}
SOCAT_OPTS=${SOCAT_OPTS:-}
AUDIT_RUNS=${AUDIT_RUNS:-12}
AUDIT_SECS=${AUDIT_SECS:-10}
AUDIT_PHASE_MS=${AUDIT_PHASE_MS:-250}
AUDIT_VARIANTS=${AUDIT_VARIANTS:-"on sealed remote"}
ISO=${ISO:-0}
ISO_RUNS=${ISO_RUNS:-3}
ISO_SECS=${ISO_SECS:-5}
ISO_CALLGRIND=${ISO_CALLGRIND:-200}
CALLGRIND=${CALLGRIND:-200}
[[ " $FRONTS " == *" sockwarden "* ]] || CALLGRIND=0
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
STUB_THREADS=${STUB_THREADS:-2}
MEASURE_TIMEOUT=${MEASURE_TIMEOUT:-120}
SKIP_BUILD=${SKIP_BUILD:-0}
OUT=${OUT:-$ROOT/bench/latest.md}
SIZE_BYTES=$((SIZE_MIB * 1024 * 1024))
API=/v1.41

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Prerequisites

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v haproxy >/dev/null || [[ " $FRONTS " != *" haproxy"* ]] || need_apt+=(haproxy)
command -v socat >/dev/null || [[ " $FRONTS " != *" socat "* ]] || need_apt+=(socat)
command -v valgrind >/dev/null || ((CALLGRIND == 0)) || need_apt+=(valgrind)
if [[ " $UPSTREAMS " == *" docker "* ]]; then
    command -v dockerd >/dev/null && command -v docker >/dev/null || need_apt+=(docker.io)
    command -v busybox >/dev/null || need_apt+=(busybox-static)
fi
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} with apt-get"
    [[ $(id -u) == 0 ]] || die "run as root to install ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [[ $SKIP_BUILD != 1 ]]; then
    log "building (cargo build --release --bin sockwarden --examples)"
    (cd "$ROOT" && cargo build --release --bin sockwarden --examples)
fi
SOCKWARDEN=${SOCKWARDEN_BIN:-$ROOT/target/release/sockwarden}
# What is benchmarked, noted at build time (the work tree may change during the run).
if [[ -n ${SOCKWARDEN_BIN:-} ]]; then
    rev="${SOCKWARDEN_REV:-binary $SOCKWARDEN_BIN}"
else
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
    [[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no -- src Cargo.toml 2>/dev/null) ]] ||
        rev+=" + uncommitted changes in src/ or Cargo.toml"
    [[ $SKIP_BUILD != 1 ]] || rev+=" (SKIP_BUILD: binary as found in target/release)"
fi
LOADGEN=$ROOT/target/release/examples/loadgen
STUB=$ROOT/target/release/examples/stub_upstream
COLLECTOR=$ROOT/target/release/examples/discard_collector
HAPROXY_CFG=$ROOT/bench/haproxy/haproxy.cfg
for f in "$LOADGEN" "$STUB"; do [[ -x $f ]] || die "missing $f"; done
[[ " $FRONTS " != *" sockwarden "* || -x $SOCKWARDEN ]] || die "missing $SOCKWARDEN"

# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup

TMP=$(mktemp -d /tmp/sockwarden-bench.XXXXXX)
# The "tmpfs" audit variant's directory on /dev/shm, made when first needed.
SHM_DIR=""
RESULTS=$TMP/results.jsonl
: >"$RESULTS"
ISO_RESULTS=$TMP/isolation.jsonl
: >"$ISO_RESULTS"
PIDS=() # every background process started here
DOCKERD_PID=""
DOCKER_SOCK=$TMP/dockerd.sock
DOCKER=(docker -H "unix://$DOCKER_SOCK")
BENCH_CONTAINERS=(swb-web swb-db swb-cron)
BENCH_IMAGES=(sockwarden-bench/busybox:latest sockwarden-bench/big:latest)

# Stops one process: SIGTERM, up to $2 seconds of grace, then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-5} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# Removes the bench containers and images, then stops the private dockerd (and the containerd
# it started for itself).
stop_docker() {
    [[ -n $DOCKERD_PID ]] || return 0
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "removing bench containers and images, stopping dockerd"
        timeout 60 "${DOCKER[@]}" rm -f "${BENCH_CONTAINERS[@]}" >/dev/null 2>&1 || true
        timeout 60 "${DOCKER[@]}" rmi -f "${BENCH_IMAGES[@]}" >/dev/null 2>&1 || true
        local children pid
        children=$(pgrep -P "$DOCKERD_PID" 2>/dev/null || true)
        stop_pid "$DOCKERD_PID" 30
        for pid in $children; do stop_pid "$pid" 5; done
    fi
    DOCKERD_PID=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_docker
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}" 5; done
    # Leftovers of the private daemon (e.g. container shims) are found by our temp dir only.
    local p
    for p in /proc/[0-9]*; do
        if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$TMP/"; then
            kill -KILL "${p#/proc/}" 2>/dev/null
        fi
    done
    # Mounts dockerd may have left below the temp dir (deepest first).
    awk -v t="$TMP/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$TMP"
    [[ -z $SHM_DIR ]] || rm -rf "$SHM_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# Starts "$@" in the background, output to $TMP/<name>.log; sets STARTED_PID.
start_bg() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# Waits until GET /_ping on socket $1 answers OK, for at most $2 seconds; $3 = pid to watch.
wait_ping() {
    local sock=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 10; i++)); do
        if [[ -S $sock ]] && [[ $(curl -s -m 2 --unix-socket "$sock" http://bench/_ping 2>/dev/null) == OK ]]; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# Upstreams

UP_SOCK=""
UP_PID=""
start_upstream() {
    case $1 in
    stub)
        UP_SOCK=$TMP/stub.sock
        start_bg stub "$STUB" --socket "$UP_SOCK" --threads "$STUB_THREADS"
        UP_PID=$STARTED_PID
        wait_ping "$UP_SOCK" 10 "$UP_PID" || die "stub upstream did not start: $(tail -5 "$TMP/stub.log")"
        ;;
    docker)
        UP_SOCK=$DOCKER_SOCK
        log "starting a private dockerd (vfs storage, no networking) under $TMP/docker"
        mkdir -p "$TMP/docker"
        dockerd --data-root "$TMP/docker/data" --exec-root "$TMP/docker/exec" \
            --pidfile "$TMP/docker/dockerd.pid" -H "unix://$DOCKER_SOCK" \
            --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
            >"$TMP/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        UP_PID=$DOCKERD_PID
        wait_ping "$DOCKER_SOCK" 60 "$DOCKERD_PID" || die "dockerd did not start: $(tail -5 "$TMP/dockerd.log")"
        prepare_docker
        ;;
    *) die "unknown upstream $1" ;;
    esac
}

stop_upstream() {
    case $1 in
    stub) stop_pid "$UP_PID" 5 ;;
    docker) stop_docker ;;
    esac
}

# Images come from rootfs tarballs (no registry is reachable): a busybox one for containers,
# and one holding a single SIZE_MIB file for the big GET /images/get. The file is zeros: docker
# save streams layers uncompressed, so its content does not change the work done.
prepare_docker() {
    local rootfs=$TMP/rootfs big=$TMP/bigfs bb cmd n
    bb=$(command -v busybox)
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$big/tmp"
    cp "$bb" "$rootfs/bin/busybox"
    for cmd in sh sleep ls cat head; do ln -sf busybox "$rootfs/bin/$cmd"; done
    tar -C "$rootfs" -c . | "${DOCKER[@]}" import - "${BENCH_IMAGES[0]}" >/dev/null
    log "importing a ${SIZE_MIB} MiB image into dockerd"
    truncate -s "${SIZE_MIB}M" "$big/big.bin"
    tar -C "$big" -c . | "${DOCKER[@]}" import - "${BENCH_IMAGES[1]}" >/dev/null
    rm -rf "$big" "$rootfs"
    # Three containers for GET /containers/json; two are started when the sandbox allows it
    # (swb-cron stays created and receives the big PUT .../archive uploads).
    for n in "${BENCH_CONTAINERS[@]}"; do
        "${DOCKER[@]}" create --name "$n" --network none \
            --label com.docker.compose.project=bench --label "com.docker.compose.service=${n#swb-}" \
            --label "sockwarden.owner=uid:$(id -u)" \
            "${BENCH_IMAGES[0]}" sleep 86400 >/dev/null
    done
    DOCKER_RUNNING=1
    if ! "${DOCKER[@]}" start swb-web swb-db >/dev/null 2>&1; then
        DOCKER_RUNNING=0
        log "note: containers could not be started; they stay created"
    fi
}
DOCKER_RUNNING=0

# A new exec in the running bench container, created straight on the daemon (an exec starts
# once): `head -c SIZE /dev/zero` for "down", `cat > /dev/null` for "up". Prints its ID.
new_exec() {
    local dir=$1 body
    if [[ $dir == down ]]; then
        body='{"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":["head","-c","'$SIZE_BYTES'","/dev/zero"]}'
    else
        body='{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":["sh","-c","cat > /dev/null"]}'
    fi
    curl -s -m 30 --unix-socket "$DOCKER_SOCK" -H 'Content-Type: application/json' -d "$body" \
        "http://docker$API/containers/swb-web/exec" | sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p'
}

# Waits until exec $1 has ended (up to 15 s). A download exec whose start a front failed to
# hijack (HAProxy removes Upgrade from exec start) still runs in the daemon: its `head -c SIZE`
# writing into nobody took the shared CPUs from the next front measured (sockwarden, after
# haproxy-ka: 38-42 MiB/s instead of 110-121). An upload exec's `cat` that got no stdin just
# waits, costing nothing, and is not waited for.
wait_exec_ended() {
    local id=$1 i
    for ((i = 0; i < 150; i++)); do
        curl -s -m 5 --unix-socket "$DOCKER_SOCK" "http://docker$API/exec/$id/json" |
            grep -q '"Running":true' || return 0
        sleep 0.1
    done
    log "warning: exec $id still running 15 s after its transfer"
}

# Request targets per upstream.
set_targets() {
    case $1 in
    stub)
        PING_PATH=/_ping
        LIST_PATH=$API/containers/json
        GET_PATH="$API/images/get?names=sockwarden-bench%2Fbig%3Alatest&size=$SIZE_BYTES"
        UP_METHOD=POST
        UP_PATH=$API/images/load
        UP_TAR=()
        REPEAT=$STUB_REPEAT
        # The stub streams N bytes down for an ID "bench-down-N" and sinks stdin otherwise.
        EXEC_DOWN_PATH=$API/exec/bench-down-$SIZE_BYTES/start
        EXEC_UP_PATH=$API/exec/bench-up/start
        ATTACH_Q="stream=1&stdin=1&stdout=1&stderr=1"
        ATTACH_DOWN_PATH="$API/containers/bench-down-$SIZE_BYTES/attach?$ATTACH_Q"
        ATTACH_UP_PATH="$API/containers/bench-up/attach?$ATTACH_Q"
        ;;
    docker)
        PING_PATH=/_ping
        # all=1: the three bench containers whether or not the sandbox let them run.
        LIST_PATH="$API/containers/json?all=1"
        GET_PATH="$API/images/get?names=sockwarden-bench%2Fbig%3Alatest"
        UP_METHOD=PUT
        UP_PATH="$API/containers/swb-cron/archive?path=/tmp"
        UP_TAR=(--tar-name upload.bin)
        REPEAT=$DOCKER_REPEAT
        # A fresh exec per transfer (see new_exec); attach is not measured on docker.
        EXEC_DOWN_PATH="{exec:down}"
        EXEC_UP_PATH="{exec:up}"
        ATTACH_DOWN_PATH="" ATTACH_UP_PATH=""
        ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Fronts. All fronts of one upstream run side by side (an idle proxy costs nothing), so every
# test is interleaved: round 1 on every front, then round 2, ... The report shows the median
# of the rounds, which keeps a burst of unrelated load on the machine from hitting one front.

declare -A FRONT_SOCK=() FRONT_PID=() RESTARTED=() DEAD=()
WRAP=() # a command prefix for sockwarden fronts (valgrind for the isolation cells)
LIVE_FRONTS=()

start_front() {
    local front=$1 up=$2 sock pid=""
    case $front in
    direct)
        sock=$UP_SOCK
        ;;
    sockwarden | sockwarden-noaudit | sockwarden-sealed | sockwarden-remote | sockwarden-tmpfs | sockwarden-iso | sockwarden-noiso)
        sock=$TMP/$front.sock
        local sink="sink = \"file\"
path = \"$TMP/audit-$up.log\""
        [[ $front == sockwarden-noaudit || $front == sockwarden-iso || $front == sockwarden-noiso ]] &&
            sink='sink = "off"'
        if [[ $front == sockwarden-sealed ]]; then
            # The sealed file: a seed made once per bench run; the chain continues across the
            # runs' restarts from the state file next to the log.
            [[ -e $TMP/seal-seed ]] || "$SOCKWARDEN" audit seal-init "$TMP/seal-seed" 2>/dev/null
            sink="sink = \"file\"
path = \"$TMP/audit-sealed-$up.log\"
seal_key = \"$TMP/seal-seed\""
        fi
        if [[ $front == sockwarden-tmpfs ]]; then
            [[ -n $SHM_DIR ]] || SHM_DIR=$(mktemp -d /dev/shm/sockwarden-bench.XXXXXX)
            sink="sink = \"file\"
path = \"$SHM_DIR/audit-$up.log\""
        fi
        if [[ $front == sockwarden-remote ]]; then
            # The same file sink plus a remote collector on loopback (records spooled first).
            sink="[[audit.sinks]]
type = \"file\"
path = \"$TMP/audit-remote-$up.log\"

[[audit.sinks]]
type = \"remote\"
address = \"127.0.0.1:$COLLECTOR_PORT\"
spool_dir = \"$TMP/spool-$up\"
on_failure = \"closed\""
        fi
        # Isolation's cells: the same policy with and without it (the bench containers carry
        # the load generator's owner label, so both list the same three).
        # (The line is left out for the other fronts, so that older builds read the config.)
        local isolation=''
        [[ $front == sockwarden-iso ]] && isolation='isolation = "user"'
        [[ $front == sockwarden-noiso ]] && isolation='isolation = "none"'
        bench_config "$UP_SOCK" "$sock" "$sink" "$isolation" >"$TMP/$front-$up.toml"
        local check
        if ! check=$("$SOCKWARDEN" check --config "$TMP/$front-$up.toml" 2>&1); then
            # A build from before clients and policies existed: plain forwarding.
            log "sockwarden check refused the bench config ($check); trying a config without policy"
            printf '[upstream]\nsocket = "%s"\n\n[[listen]]\nunix = "%s"\nmode = "0600"\n' \
                "$UP_SOCK" "$sock" >"$TMP/$front-$up.toml"
        fi
        start_bg "$front-$up" "${WRAP[@]}" "$SOCKWARDEN" serve --config "$TMP/$front-$up.toml"
        pid=$STARTED_PID
        ;;
    socat)
        sock=$TMP/$front.sock
        # A byte relay: one forked process per connection, nothing parsed. (backlog: socat's
        # default listen queue of 5 refuses connections that a burst of 32 or 64 opens at
        # once; the other fronts queue them.)
        # shellcheck disable=SC2086 # SOCAT_OPTS is a list of options
        start_bg "$front-$up" socat $SOCAT_OPTS "UNIX-LISTEN:$sock,fork,mode=600,backlog=1024" \
            "UNIX-CONNECT:$UP_SOCK"
        pid=$STARTED_PID
        ;;
    haproxy | haproxy-ka)
        sock=$TMP/$front.sock
        local close=1
        [[ $front == haproxy-ka ]] && close=0
        # The switches the benchmarked requests need; everything else keeps the image's defaults.
        start_bg "$front-$up" env SOCKET_PATH="$UP_SOCK" PROXY_SOCKET="$sock" \
            CONTAINERS=1 IMAGES=1 POST=1 EXEC=1 NBTHREAD=2 HTTP_SERVER_CLOSE=$close \
            haproxy -db -f "$HAPROXY_CFG"
        pid=$STARTED_PID
        ;;
    *) die "unknown front $front" ;;
    esac
    FRONT_SOCK[$front]=$sock
    FRONT_PID[$front]=$pid
    local ready=15
    ((${#WRAP[@]} == 0)) || ready=120
    if ! wait_ping "$sock" "$ready" "$pid"; then
        log "$front did not answer GET /_ping on $sock; last log lines:"
        tail -20 "$TMP/$front-$up.log" >&2 2>/dev/null || true
        [[ -z $pid ]] || stop_pid "$pid" 5
        printf '{"mode":"start","upstream":"%s","front":"%s","test":"start","errors":1,"first_error":"front did not start"}\n' \
            "$up" "$front" >>"$RESULTS"
        return 1
    fi
    # (A restarted front keeps its place in the rotation.)
    [[ -n ${RESTARTED[$front]:-} ]] || LIVE_FRONTS+=("$front")
}

# Records each proxy's peak RSS (VmHWM), then stops it.
stop_fronts() {
    local up=$1 front pid hwm
    for front in "${LIVE_FRONTS[@]}"; do
        pid=${FRONT_PID[$front]}
        [[ -n $pid ]] || continue
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        if [[ -n $hwm ]]; then
            local restarted=false
            [[ -z ${RESTARTED[$front]:-} ]] || restarted=true
            printf '{"mode":"rss","upstream":"%s","front":"%s","vmhwm_kb":%s,"restarted":%s}\n' \
                "$up" "$front" "$hwm" "$restarted" >>"$RESULTS"
        fi
        log "$front peak RSS (VmHWM) on $up: ${hwm:-?} kB${RESTARTED[$front]:+ (restarted during the run)}"
        stop_pid "$pid" 10
    done
    forget_fronts
}

# A proxy that died during the run (crash, or a signal from elsewhere) is reported with the end
# of its log and started again, so one failure does not void the rest of its measurements.
ensure_alive() {
    local front=$1 up=$2 pid=${FRONT_PID[$1]}
    [[ -z ${DEAD[$front]:-} ]] || return 1
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null && return 0
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    log "warning: $front (pid $pid) exited with status $rc during the run; last log lines:"
    tail -5 "$TMP/$front-$up.log" >&2 2>/dev/null || true
    printf '{"mode":"restart","upstream":"%s","front":"%s","test":"restart","errors":1,"first_error":"%s exited (status %s) and was restarted"}\n' \
        "$up" "$front" "$front" "$rc" >>"$RESULTS"
    cp "$TMP/$front-$up.log" "$TMP/$front-$up.died.log" 2>/dev/null || true
    RESTARTED[$front]=1
    start_front "$front" "$up" || { DEAD[$front]=1; return 1; }
}

# A short human-readable summary of one JSON line (no jq needed).
summary() {
    local l=$1 k out=""
    for k in rps p50_us p99_us mib_s proxy_cpu_us_per_req proxy_cpu_s_per_gib errors bad_status; do
        if [[ $l =~ \"$k\":([0-9.]+) ]]; then out+="$k=${BASH_REMATCH[1]} "; fi
    done
    printf '%s' "$out"
}

# Runs one loadgen measurement; its JSON line goes to the results. A failing run is recorded
# as a failure line instead of stopping the benchmark.
measure() {
    local front=$1 up=$2 test=$3 desc=$4 round=$5
    shift 5
    ensure_alive "$front" "$up" || return 0
    local watch=() pid=${FRONT_PID[$front]}
    [[ -z $pid ]] || watch=(--watch-pid "$pid")
    local line rc=0 args=() a id wait_for=""
    # A hijack on the real daemon needs an exec of its own, made just before.
    for a in "$@"; do
        case $a in
        "{exec:down}" | "{exec:up}")
            id=$(new_exec "$(tr -d '{}' <<<"${a#*:}")")
            [[ $a != "{exec:down}" ]] || wait_for=$id
            [[ -n $id ]] || log "warning: could not create an exec in swb-web"
            a="$API/exec/${id:-none}/start"
            ;;
        esac
        args+=("$a")
    done
    set -- "${args[@]}"
    line=$(timeout "$MEASURE_TIMEOUT" "$LOADGEN" "$@" --socket "${FRONT_SOCK[$front]}" \
        --threads "$LOADGEN_THREADS" "${watch[@]}" \
        --tag "upstream=$up" --tag "front=$front" --tag "test=$test" --tag "desc=$desc" \
        --tag "round=$round" 2>"$TMP/loadgen.err") || rc=$?
    if ((rc == 124)); then
        { printf 'no result within MEASURE_TIMEOUT=%s s, killed; ' "$MEASURE_TIMEOUT"; cat "$TMP/loadgen.err"; } >"$TMP/loadgen.err.new"
        mv "$TMP/loadgen.err.new" "$TMP/loadgen.err"
    fi
    if [[ -z $line ]]; then
        line=$(printf '{"mode":"%s","upstream":"%s","front":"%s","test":"%s","desc":"%s","round":"%s","errors":1,"first_error":"loadgen exit %s: %s"}' \
            "$1" "$up" "$front" "$test" "$desc" "$round" "$rc" "$(tr -d '"\\\n' <"$TMP/loadgen.err" | cut -c1-200)")
    fi
    printf '%s\n' "$line" >>"$RESULTS"
    printf '  %-11s %-9s r%s  %s\n' "$front" "$test" "$round" "$(summary "$line")" >&2
    [[ -z $wait_for ]] || wait_exec_ended "$wait_for"
}

# One test, $4 rounds across all live fronts (the order rotates from round to round).
interleave() {
    local up=$1 test=$2 desc=$3 rounds=$4 r i n=${#LIVE_FRONTS[@]}
    shift 4
    local front
    for ((r = 1; r <= rounds; r++)); do
        n=${#LIVE_FRONTS[@]}
        for ((i = 0; i < n; i++)); do
            front=${LIVE_FRONTS[(i + r - 1) % n]:-}
            [[ -n $front ]] || continue
            measure "$front" "$up" "$test" "$desc" "$r" "$@"
        done
    done
}

# The audit log's cost: sockwarden with its audit log on (front "sockwarden") against the same
# binary with it off ("sockwarden-noaudit"), under the same load at the same time: `loadgen
# paired` alternates the load between the two in short phases. Rounds of separate runs (as
# above) cannot resolve a few percent on a shared 2-CPU machine, whose speed drifts by more
# than that from one second to the next; and a process's own luck (where its threads land)
# lasts its lifetime, so each run starts a fresh pair and swaps which one is front A.
audit_cost() {
    local up=$1 variant
    [[ " $FRONTS " == *" sockwarden "* && " $FRONTS " == *" sockwarden-noaudit "* ]] || return 0
    ((AUDIT_RUNS > 0)) || return 0
    for variant in $AUDIT_VARIANTS; do
        case $variant in
        on) audit_cost_variant "$up" on sockwarden ;;
        sealed) audit_cost_variant "$up" sealed sockwarden-sealed ;;
        remote)
            start_collector
            audit_cost_variant "$up" remote sockwarden-remote
            stop_pid "$COLLECTOR_PID" 5
            ;;
        tmpfs)
            if [[ -d /dev/shm && -w /dev/shm ]]; then
                audit_cost_variant "$up" tmpfs sockwarden-tmpfs
            else
                log "AUDIT_VARIANTS: no writable /dev/shm, tmpfs skipped"
            fi
            ;;
        *) log "AUDIT_VARIANTS: unknown variant $variant (on, sealed, remote, tmpfs)" ;;
        esac
    done
}

# One audit-on front ($3, tagged audit_a=$2 when it is front A) against sockwarden-noaudit.
audit_cost_variant() {
    local up=$1 variant=$2 on=$3 run c test path desc a b line rc
    log "$up upstream: audit cost ($variant), $AUDIT_RUNS paired run(s) of ${AUDIT_SECS} s per test"
    for ((run = 1; run <= AUDIT_RUNS; run++)); do
        start_front "$on" "$up" || return 0
        start_front sockwarden-noaudit "$up" || { stop_fronts_quietly; return 0; }
        a=$on b=sockwarden-noaudit
        ((run % 2)) || { a=sockwarden-noaudit b=$on; }
        for c in $CONCURRENCY; do
            for test in ping list; do
                path=$PING_PATH desc="\`GET /_ping\` c=$c"
                [[ $test == ping ]] || { path=$LIST_PATH desc="\`GET /containers/json\` c=$c"; }
                rc=0
                line=$("$LOADGEN" paired --socket "${FRONT_SOCK[$a]}" --against "${FRONT_SOCK[$b]}" \
                    --watch-pid "${FRONT_PID[$a]}" --watch-pid-against "${FRONT_PID[$b]}" \
                    --path "$path" -c "$c" --duration "$AUDIT_SECS" --warmup "$WARMUP" \
                    --phase-ms "$AUDIT_PHASE_MS" --threads "$LOADGEN_THREADS" \
                    --tag "upstream=$up" --tag "test=${test}_c$c" --tag "desc=$desc" --tag "run=$run" \
                    --tag "audit_a=$([[ $a == "$on" ]] && echo "$variant" || echo off)" \
                    --tag "audit_variant=$variant" \
                    2>"$TMP/loadgen.err") || rc=$?
                if [[ -z $line ]]; then
                    line=$(printf '{"mode":"paired","upstream":"%s","test":"%s","run":"%s","ok":0,"errors":1,"first_error":"loadgen exit %s: %s"}' \
                        "$up" "${test}_c$c" "$run" "$rc" "$(tr -d '"\\\n' <"$TMP/loadgen.err" | cut -c1-200)")
                fi
                printf '%s\n' "$line" >>"$RESULTS"
                printf '  audit %-6s %-9s run %s  A=%s  %s\n' "$variant" "${test}_c$c" "$run" "$a" \
                    "$(grep -o '"ratio":[0-9.]*' <<<"$line" || echo failed)" >&2
            done
        done
        stop_fronts_quietly
    done
    if [[ $variant == sealed ]]; then
        # The sealed front really sealed, and its chain holds across the runs' restarts.
        log "sealed log: $("$SOCKWARDEN" audit verify --key "$TMP/seal-seed" "$TMP/audit-sealed-$up.log" 2>&1 | tail -1)"
    fi
}

# Isolation's cost: `isolation = "user"` against the same policy without it, on the list and
# the inspect of a container the load generator's tenant owns. Paired runs give req/s and CPU
# per request of each; then each front runs once under callgrind for instructions per request.
isolation_cost() {
    local up=$1 run c test path desc a b line rc front
    ((ISO == 1)) || return 0
    local inspect=$API/containers/swb-web/json
    [[ $up == docker ]] || inspect=$API/containers/c1/json
    for ((run = 1; run <= ISO_RUNS; run++)); do
        start_front sockwarden-iso "$up" || return 0
        start_front sockwarden-noiso "$up" || { stop_fronts_quietly; return 0; }
        a=sockwarden-iso b=sockwarden-noiso
        ((run % 2)) || { a=sockwarden-noiso b=sockwarden-iso; }
        for c in $CONCURRENCY; do
            for test in list inspect; do
                path=$LIST_PATH desc="\`GET /containers/json\` c=$c"
                [[ $test == list ]] || { path=$inspect desc="\`GET /containers/{id}/json\` c=$c"; }
                rc=0
                line=$("$LOADGEN" paired --socket "${FRONT_SOCK[$a]}" --against "${FRONT_SOCK[$b]}" \
                    --watch-pid "${FRONT_PID[$a]}" --watch-pid-against "${FRONT_PID[$b]}" \
                    --path "$path" -c "$c" --duration "$ISO_SECS" --warmup "$WARMUP" \
                    --phase-ms "$AUDIT_PHASE_MS" --threads "$LOADGEN_THREADS" \
                    --tag "upstream=$up" --tag "test=iso_${test}_c$c" --tag "desc=$desc" --tag "run=$run" \
                    --tag "iso_a=$([[ $a == sockwarden-iso ]] && echo on || echo off)" \
                    2>"$TMP/loadgen.err") || rc=$?
                [[ -n $line ]] || line=$(printf '{"mode":"paired","upstream":"%s","test":"iso_%s_c%s","run":"%s","ok":0,"errors":1}' \
                    "$up" "$test" "$c" "$run")
                printf '%s\n' "$line" >>"$ISO_RESULTS"
                printf '  isolation %-9s run %s  A=%s  %s\n' "${test}_c$c" "$run" "$a" \
                    "$(grep -o '"ratio":[0-9.]*' <<<"$line" || echo failed)" >&2
            done
        done
        stop_fronts_quietly
    done
    ((ISO_CALLGRIND > 0)) && command -v valgrind >/dev/null || return 0
    for front in sockwarden-iso sockwarden-noiso; do
        WRAP=(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg-$front-$up.out" --dump-instr=no)
        start_front "$front" "$up" || { WRAP=(); continue; }
        WRAP=()
        for test in list inspect; do
            path=$LIST_PATH
            [[ $test == list ]] || path=$inspect
            local urls=() status i n0 n1
            # (curl reuses one connection for all its URLs; each needs its own -o.)
            for ((i = 0; i < ISO_CALLGRIND; i++)); do urls+=(-o /dev/null "http://bench$path"); done
            # Warm up (pools, caches), then count exactly ISO_CALLGRIND requests on one connection.
            status=$(curl -s -w '%{http_code}\n' --unix-socket "${FRONT_SOCK[$front]}" \
                "${urls[@]:0:60}" | tail -1)
            callgrind_control --zero "${FRONT_PID[$front]}" >/dev/null 2>&1
            curl -s --unix-socket "${FRONT_SOCK[$front]}" "${urls[@]}" || true
            callgrind_control --dump="$test" "${FRONT_PID[$front]}" >/dev/null 2>&1
            sleep 1
            n1=$(ls -t "$TMP/cg-$front-$up.out".* 2>/dev/null | head -1)
            n0=$(awk '/^(summary|totals):/ { print $2; exit }' "$n1" 2>/dev/null || echo 0)
            printf '{"mode":"callgrind","upstream":"%s","front":"%s","test":"iso_%s","status":%s,"requests":%s,"instructions":%s,"per_request":%s}\n' \
                "$up" "$front" "$test" "${status:-0}" "$ISO_CALLGRIND" "${n0:-0}" "$(( ${n0:-0} / ISO_CALLGRIND ))" >>"$ISO_RESULTS"
            log "callgrind $front $test: status $status, $(( ${n0:-0} / ISO_CALLGRIND )) instructions per request"
        done
        stop_fronts_quietly
    done
}

# The isolation section of the report, from $ISO_RESULTS (no jq needed).
isolation_report() {
    [[ -s $ISO_RESULTS ]] || return 0
    echo
    echo "## Isolation's cost ($up_list)"
    echo
    echo "\`isolation = \"user\"\` against the same policy with \`isolation = \"none\"\` (audit off in both;"
    echo "the three bench containers carry the load generator's owner label, so both fronts list the"
    echo "same three). On the stub upstream (which knows no labels) this measures the request rewrite"
    echo "and, for inspect, the ownership check's lookup, not a real daemon's label filter."
    echo
    echo "| upstream | cell | run | A | A/B req/s ratio | CPU us/req A | CPU us/req B |"
    echo "|---|---|---|---|---|---|---|"
    local l
    while read -r l; do
        [[ $l == *'"mode":"paired"'* ]] || continue
        local f k v=()
        for k in upstream test run iso_a ratio proxy_cpu_us_per_req_a proxy_cpu_us_per_req_b; do
            if [[ $l =~ \"$k\":\"?([^,\"}]*) ]]; then v+=("${BASH_REMATCH[1]}"); else v+=("-"); fi
        done
        echo "| ${v[0]} | ${v[1]} | ${v[2]} | isolation ${v[3]} | ${v[4]} | ${v[5]} | ${v[6]} |"
    done <"$ISO_RESULTS"
    echo
    echo "Instructions per request (callgrind, counters zeroed after 20 warm-up requests, then"
    echo "$ISO_CALLGRIND keep-alive requests on one connection):"
    echo
    echo "| upstream | front | cell | HTTP status | instructions per request |"
    echo "|---|---|---|---|---|"
    while read -r l; do
        [[ $l == *'"mode":"callgrind"'* ]] || continue
        local k v=()
        for k in upstream front test status per_request; do
            if [[ $l =~ \"$k\":\"?([^,\"}]*) ]]; then v+=("${BASH_REMATCH[1]}"); else v+=("-"); fi
        done
        echo "| ${v[0]} | ${v[1]} | ${v[2]} | ${v[3]} | ${v[4]} |"
    done <"$ISO_RESULTS"
}

# Clears the bookkeeping of the fronts once they are stopped.
forget_fronts() {
    LIVE_FRONTS=()
    FRONT_SOCK=()
    FRONT_PID=()
    RESTARTED=()
    DEAD=()
}

# Stops the live fronts without recording their peak RSS.
stop_fronts_quietly() {
    local front
    for front in "${LIVE_FRONTS[@]}"; do
        [[ -z ${FRONT_PID[$front]:-} ]] || stop_pid "${FRONT_PID[$front]}" 10
    done
    forget_fronts
}

run_upstream() {
    local up=$1 front c
    start_upstream "$up"
    set_targets "$up"
    for front in $FRONTS; do start_front "$front" "$up" || true; done
    log "$up upstream: fronts ${LIVE_FRONTS[*]}; $ROUNDS round(s) per req/s test, $REPEAT per transfer"
    for c in $CONCURRENCY; do
        interleave "$up" "ping_c$c" "\`GET /_ping\` c=$c" "$ROUNDS" \
            rps --path "$PING_PATH" -c "$c" --duration "$DURATION" --warmup "$WARMUP"
        interleave "$up" "list_c$c" "\`GET /containers/json\` c=$c" "$ROUNDS" \
            rps --path "$LIST_PATH" -c "$c" --duration "$DURATION" --warmup "$WARMUP"
    done
    interleave "$up" download "${SIZE_MIB} MiB response (\`GET /images/get\`)" "$REPEAT" \
        download --path "$GET_PATH"
    interleave "$up" upload "${SIZE_MIB} MiB request body (\`$UP_METHOD ${UP_PATH%%\?*}\`)" "$REPEAT" \
        upload --method "$UP_METHOD" --path "$UP_PATH" --size "${SIZE_MIB}MiB" "${UP_TAR[@]}"
    hijack_cells "$up"
    stop_fronts "$up"
    audit_cost "$up"
    isolation_cost "$up"
    stop_upstream "$up"
}

# Hijacked streams: SIZE_MIB through `exec` (and `attach` on the stub) in each direction.
hijack_cells() {
    local up=$1 kind down_path up_path
    for kind in $HIJACK; do
        case $kind in
        exec) down_path=$EXEC_DOWN_PATH up_path=$EXEC_UP_PATH ;;
        attach) down_path=$ATTACH_DOWN_PATH up_path=$ATTACH_UP_PATH ;;
        *)
            log "HIJACK: unknown kind $kind (exec, attach)"
            continue
            ;;
        esac
        if [[ -z $down_path ]]; then
            note "$up" "no \`$kind\` stream cells on $up: an attach needs a fresh running container per transfer"
            continue
        fi
        if [[ $up == docker && $DOCKER_RUNNING != 1 ]]; then
            note "$up" "no \`$kind\` stream cells on $up: the bench containers could not be started in this sandbox, so nothing can be exec'd"
            continue
        fi
        interleave "$up" "${kind}_down" "${SIZE_MIB} MiB \`$kind\` stream, container → client (stdout, multiplexed)" "$REPEAT" \
            hijack --kind "$kind" --direction down --size "${SIZE_MIB}MiB" --path "$down_path"
        interleave "$up" "${kind}_up" "${SIZE_MIB} MiB \`$kind\` stream, client → container (stdin)" "$REPEAT" \
            hijack --kind "$kind" --direction up --size "${SIZE_MIB}MiB" --path "$up_path"
    done
}

# A line of text for the report (why a cell is missing).
note() {
    local text=${2//\"/\\\"}
    printf '{"mode":"note","upstream":"%s","text":"%s"}\n' "$1" "$text" >>"$RESULTS"
    log "note: $2"
}

# The remote audit cell's collector: takes octet-counted syslog over TCP and discards it.
COLLECTOR_PORT="" COLLECTOR_PID=""
start_collector() {
    rm -f "$TMP/collector.port"
    start_bg collector "$COLLECTOR" 127.0.0.1:0 "$TMP/collector.port"
    COLLECTOR_PID=$STARTED_PID
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $TMP/collector.port ]] && break
        sleep 0.1
    done
    COLLECTOR_PORT=$(cat "$TMP/collector.port")
}

# ---------------------------------------------------------------------------------------------
# Main

# How busy the CPUs are before we start (other work on the machine skews every figure).
cpu_busy_pct() {
    local b0 i0 b1 i1
    read -r b0 i0 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    sleep 2
    read -r b1 i1 < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    local busy=$((b1 - b0)) idle=$((i1 - i0))
    echo $((100 * busy / (busy + idle > 0 ? busy + idle : 1)))
}
BUSY_START=$(cpu_busy_pct)
((BUSY_START < 20)) || log "warning: the CPUs are already ${BUSY_START}% busy; figures will be noisy"
START_S=$SECONDS
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "results in $TMP; fronts: $FRONTS; upstreams: $UPSTREAMS"
for up in $UPSTREAMS; do run_upstream "$up"; done
# Deterministic counts, after the timed runs (valgrind would disturb them).
CALLGRIND_OUT=""
if ((CALLGRIND > 0)); then
    log "instructions and allocations per request (callgrind, N=$CALLGRIND)"
    CALLGRIND_OUT=$(N=$CALLGRIND bash "$ROOT/scripts/callgrind_requests.sh" "$SOCKWARDEN" 2>&1) ||
        CALLGRIND_OUT="callgrind run failed: $(tail -3 <<<"$CALLGRIND_OUT")"
fi
ELAPSED=$((SECONDS - START_S))

# Keep the tail of every log when something failed (the temp dir is removed at exit).
if grep -qE '"(errors|bad_status)":[1-9]' "$RESULTS"; then
    LOGDIR=${OUT%.md}-logs
    rm -rf "$LOGDIR"
    mkdir -p "$LOGDIR"
    for f in "$TMP"/*.log; do tail -200 "$f" >"$LOGDIR/$(basename "$f")"; done
    log "some measurements failed; log tails kept in $LOGDIR"
fi

# ---------------------------------------------------------------------------------------------
# Report

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
dockerd_v="not run"
[[ " $UPSTREAMS " != *" docker "* ]] || dockerd_v=$(dockerd --version 2>/dev/null || echo unknown)
# Not installed when no HAProxy front ran: the report says "unknown" (pipefail would stop here).
haproxy_v=$(haproxy -v 2>/dev/null | sed -n "1s/ - https.*//p" || true)
socat_v=$(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/\1/p' | head -1 || true)

mkdir -p "$(dirname "$OUT")"
{
    echo "# sockwarden benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($cpu), $mem memory, Linux $(uname -r); load average at start:" \
        "$LOADAVG_START, CPUs ${BUSY_START}% busy just before the run"
    echo "- sockwarden: $rev; $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo "- haproxy: ${haproxy_v:-unknown} (bench/haproxy/haproxy.cfg, nbthread 2, CONTAINERS=1 IMAGES=1 EXEC=1 POST=1)"
    echo "- socat: ${socat_v:-unknown} (\`socat ${SOCAT_OPTS:+$SOCAT_OPTS }UNIX-LISTEN:S,fork,mode=600,backlog=1024 UNIX-CONNECT:UPSTREAM\`)"
    echo "- sockwarden config: one client (the load generator's uid) with a policy allowing what those"
    echo "  HAProxy switches allow: \`system.ping\`, \`system.version\`, \`system.events\`, \`container.*\`,"
    echo "  \`image.*\`, \`exec.*\` (dangerous ones included via \`allow_dangerous\`); default logging"
    echo "- upstream docker: $dockerd_v (private daemon, vfs storage driver)"
    echo "- settings: req/s runs of ${DURATION} s after ${WARMUP} s warm-up on fresh keep-alive connections," \
        "concurrency $CONCURRENCY, median of $ROUNDS interleaved rounds; ${SIZE_MIB} MiB transfers, median of" \
        "$STUB_REPEAT (stub) / $DOCKER_REPEAT (docker) interleaved runs; load generator $LOADGEN_THREADS thread(s)," \
        "stub $STUB_THREADS thread(s), sockwarden and HAProxy 2 threads each, socat a process per connection," \
        "all on the same $(nproc) CPUs;" \
        "audit cost: $AUDIT_RUNS paired run(s) of ${AUDIT_SECS} s per test, phases of ${AUDIT_PHASE_MS} ms"
    echo "- command: \`$CMDLINE\`; the run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
    echo
    echo "Fronts: \`direct\` = load generator straight to the upstream socket; \`socat\` = a byte relay"
    echo "that parses nothing (a forked process per connection); \`haproxy\` = HAProxy with the"
    echo "docker-socket-proxy rules (like that image, it closes the upstream connection after each"
    echo "response: \`option http-server-close\`); \`haproxy-ka\` = the same HAProxy config with upstream"
    echo "keep-alive (HTTP_SERVER_CLOSE=0); \`sockwarden\` = target/release/sockwarden with its audit log"
    echo "on (a file, as users run it); \`sockwarden-noaudit\` = the same with \`audit.sink = \"off\"\`."
    echo "CPU time is that of the proxy's whole process tree (the process, its live descendants and"
    echo "the children it reaped: socat's per-connection processes are all charged to socat)."
    echo "Hijacked streams: the docker CLI's upgrade request, then SIZE_MIB of stdin (up; the client"
    echo "half-closes and waits for the stream's end) or of output (down; multiplexed, only the frames'"
    echo "payload is counted). Only a \`101\` answer counts, as for the CLI: HAProxy (2.6) removes"
    echo "\`Upgrade\` from a request that has a body, as \`exec\` start's JSON does, so the daemon answers"
    echo "old clients' \`200\` and HAProxy's \`exec\` cells fail (\`attach\` has no body and passes)."
    echo
    "$LOADGEN" report "$RESULTS"
    if [[ -n $CALLGRIND_OUT ]]; then
        echo
        echo "### Instructions and allocations per request"
        echo
        echo "\`sockwarden\` (audit log on) in front of the stub under valgrind's callgrind"
        echo "(\`scripts/callgrind_requests.sh\`, N=$CALLGRIND): exact counts, steady where req/s is not;"
        echo "allocations are calls into the allocator (mimalloc's entry points and libc's)."
        echo
        echo '```'
        echo "$CALLGRIND_OUT"
        echo '```'
    fi
    up_list=$UPSTREAMS isolation_report
} >"$OUT"
cp "$RESULTS" "${OUT%.md}.jsonl"
[[ ! -s $ISO_RESULTS ]] || cp "$ISO_RESULTS" "${OUT%.md}-isolation.jsonl"
cat "$OUT"
log "done in $((ELAPSED / 60)) min $((ELAPSED % 60)) s; report: $OUT"
