#!/usr/bin/env bash
# sockwarden's single test command. Run it as root (sudo scripts/test.sh):
#   - installs missing test dependencies with apt-get (docker.io, busybox-static, curl, util-linux),
#   - starts a private, throw-away Docker daemon under a fresh /tmp/swt.XXXX directory
#     (never the system daemon, never /var/run/docker.sock),
#   - builds the fixture image sw-busybox:latest from busybox-static (no registry needed),
#   - runs cargo fmt --check, cargo clippy -D warnings and cargo test --all-targets.
# Extra arguments go to `cargo test`. An argument NAME for which tests/NAME.rs exists becomes
# `--test NAME`, so `scripts/test.sh cli_e2e` runs only tests/cli_e2e.rs; anything else is passed
# through unchanged (e.g. `scripts/test.sh cli_e2e -- run_rm --nocapture`).
# Environment: SOCKWARDEN_SKIP_LINT=1 skips fmt and clippy.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'scripts/test.sh: error: %s\n' "$*" >&2
    exit 1
}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

[ "$(id -u)" -eq 0 ] || die "must run as root (it starts a private dockerd): sudo scripts/test.sh"

# ---------------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------------
need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v containerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /usr/bin/docker ] || need_pkgs+=(docker.io) # Debian's CLI 20.10: the BuildKit test needs it
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v script >/dev/null 2>&1 || need_pkgs+=(util-linux) # `script` gives `docker run -it` a pty
if [ -x /bin/busybox ] && LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; then
    need_pkgs+=(busybox-static) # a dynamically linked busybox cannot run in the libc-less image
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need_pkgs[@]}"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH (install Rust via rustup; root's PATH may need ~/.cargo/bin)"

# ---------------------------------------------------------------------------------------------
# 2. Private daemon, torn down by the trap on any exit
# ---------------------------------------------------------------------------------------------
# Short path: unix socket paths are limited to 108 bytes.
tmpd=$(mktemp -d /tmp/swt.XXXX)
ctd_pid=""
dockerd_pid=""

# Wait up to $2 seconds for process $1 (our child) to exit; SIGKILL it after that.
stop_pid() {
    local pid=$1 secs=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid mnt
    trap - EXIT INT TERM
    set +e
    if [ -n "$dockerd_pid" ]; then
        log "stopping private dockerd ($dockerd_pid)"
        stop_pid "$dockerd_pid" 30
    fi
    if [ -n "$ctd_pid" ]; then
        stop_pid "$ctd_pid" 15
    fi
    # Container shims outlive containerd (they are reparented to init); ours name our temp dir
    # on their command line. Kill exactly those, by pid.
    for pid in $(grep -lsF -- "$tmpd/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" != "$$" ] && kill -KILL "$pid" 2>/dev/null
    done
    # Unmount anything left below the temp dir (shm of containers, netns files), deepest first.
    for mnt in $(awk -v p="$tmpd/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
    done
    # One closing line over every test binary (cargo prints one per binary, the last often an
    # example's "0 passed"), printed last so it closes the output.
    if [ -f "$tmpd/cargo-test.log" ]; then
        awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
             END { printf "summary: %d passed, %d failed\n", p, f }' "$tmpd/cargo-test.log" >"$tmpd.summary"
    fi
    rm -rf --one-file-system "$tmpd"
    if [ -f "$tmpd.summary" ]; then
        cat "$tmpd.summary"
        rm -f "$tmpd.summary"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock=$tmpd/docker.sock
mkdir -p "$tmpd/data" "$tmpd/exec" "$tmpd/ctd"

# A private containerd as well: if a system containerd exists, dockerd would otherwise adopt it.
cat >"$tmpd/ctd/config.toml" <<EOF
version = 2
root = "$tmpd/ctd/root"
state = "$tmpd/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$tmpd/ctd/ctd.sock"
[debug]
  level = "warn"
EOF
log "starting private containerd and dockerd in $tmpd"
containerd --config "$tmpd/ctd/config.toml" >"$tmpd/containerd.log" 2>&1 &
ctd_pid=$!
for ((i = 0; i < 300; i++)); do
    [ -S "$tmpd/ctd/ctd.sock" ] && break
    kill -0 "$ctd_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -S "$tmpd/ctd/ctd.sock" ]; then
    cat "$tmpd/containerd.log" >&2
    die "private containerd did not start"
fi

dockerd \
    --data-root "$tmpd/data" \
    --exec-root "$tmpd/exec" \
    --pidfile "$tmpd/dockerd.pid" \
    -H "unix://$sock" \
    --containerd "$tmpd/ctd/ctd.sock" \
    --iptables=false --ip6tables=false --bridge=none \
    --storage-driver=vfs \
    >"$tmpd/dockerd.log" 2>&1 &
dockerd_pid=$!

ready=""
for ((i = 0; i < 600; i++)); do
    if [ -S "$sock" ] && [ "$(curl -s --max-time 2 --unix-socket "$sock" http://x/_ping 2>/dev/null)" = OK ]; then
        ready=1
        break
    fi
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "---- dockerd log ($tmpd/dockerd.log) ----" >&2
    cat "$tmpd/dockerd.log" >&2
    echo "---- containerd log ----" >&2
    cat "$tmpd/containerd.log" >&2
    die "private dockerd did not answer /_ping on $sock within 60 s"
fi
log "dockerd ready on $sock"

# ---------------------------------------------------------------------------------------------
# 3. Fixture image: a busybox-static rootfs, imported (no registry is reachable)
# ---------------------------------------------------------------------------------------------
image=sw-busybox:latest
rootfs=$tmpd/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/root"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
for applet in sh cat echo sleep ls true false head sha256sum dd wc env id top; do
    [ -e "$rootfs/bin/$applet" ] || die "busybox lacks the applet $applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
tar -C "$rootfs" --numeric-owner -c . |
    DOCKER_HOST="unix://$sock" DOCKER_CONFIG="$tmpd/docker-config" /usr/bin/docker import \
        --change 'CMD ["/bin/sh"]' - "$image" >/dev/null
log "fixture image $image imported"

export SOCKWARDEN_TEST_DOCKER_SOCK=$sock
export SOCKWARDEN_TEST_IMAGE=$image
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# ---------------------------------------------------------------------------------------------
# 4. Lint and test
# ---------------------------------------------------------------------------------------------
if [ "${SOCKWARDEN_SKIP_LINT:-0}" != 1 ]; then
    log "cargo fmt --all -- --check"
    cargo fmt --all -- --check
    log "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
fi

test_args=()
passthrough=""
for arg in "$@"; do
    if [ -z "$passthrough" ] && [ "$arg" = "--" ]; then
        passthrough=1
    fi
    if [ -z "$passthrough" ] && [[ $arg =~ ^[A-Za-z0-9_]+$ ]] && [ -f "tests/$arg.rs" ]; then
        test_args+=(--test "$arg")
    else
        test_args+=("$arg")
    fi
done
# `--all-targets` cannot be combined with `--test NAME` usefully: keep it only when no target
# was selected.
target_flags=(--all-targets)
for arg in "${test_args[@]+"${test_args[@]}"}"; do
    case $arg in
    --test | --lib | --bins | --bin | --tests | --examples | --benches | --all-targets | --doc) target_flags=() ;;
    --) break ;;
    esac
done
log "cargo test --no-fail-fast ${target_flags[*]+"${target_flags[*]}"} ${test_args[*]+"${test_args[*]}"}"
set +e
cargo test --no-fail-fast "${target_flags[@]+"${target_flags[@]}"}" "${test_args[@]+"${test_args[@]}"}" 2>&1 |
    tee "$tmpd/cargo-test.log"
rc=${PIPESTATUS[0]}
set -e
# ---------------------------------------------------------------------------------------------
# 5. Fuzz targets, briefly, on a copy of their corpus (full runs: see README). Only on a full
#    run (no test selection); SOCKWARDEN_SKIP_FUZZ=1 skips it.
# ---------------------------------------------------------------------------------------------
if [ "$#" -eq 0 ] && [ "${SOCKWARDEN_SKIP_FUZZ:-0}" != 1 ]; then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        cargo install --locked cargo-fuzz
    fi
    for target in $(cd fuzz/fuzz_targets && ls *.rs | sed 's/\.rs$//'); do
        mkdir -p "$tmpd/corpus-$target"
        cp fuzz/corpus/"$target"/* "$tmpd/corpus-$target/" 2>/dev/null || true
        log "cargo fuzz run $target (${SOCKWARDEN_FUZZ_SECONDS:-15} s)"
        set +e
        # cargo-fuzz passes -Z flags; RUSTC_BOOTSTRAP lets the machine's stable compiler take them.
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$tmpd/corpus-$target" -- \
            -max_total_time="${SOCKWARDEN_FUZZ_SECONDS:-15}" >"$tmpd/fuzz-$target.log" 2>&1
        frc=$?
        set -e
        if [ "$frc" -ne 0 ]; then
            tail -n 60 "$tmpd/fuzz-$target.log" >&2
            log "fuzz target $target failed (exit $frc)"
            rc=1
            echo "test result: FAILED. 0 passed; 1 failed; fuzz target $target" >>"$tmpd/cargo-test.log"
        else
            echo "test result: ok. 1 passed; 0 failed; fuzz target $target: $(grep -Eo 'Done [0-9]+ runs' "$tmpd/fuzz-$target.log")" |
                tee -a "$tmpd/cargo-test.log"
        fi
    done
fi

if [ "$rc" -ne 0 ]; then
    log "tests failed (exit $rc); daemon log tail:"
    tail -n 40 "$tmpd/dockerd.log" >&2 || true
fi
exit "$rc"
