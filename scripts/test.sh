#!/usr/bin/env bash
# sockwarden's single test command: `bash scripts/test.sh` (as root or as a user with sudo).
#   - not root: re-executes itself through sudo (with the caller's PATH, CARGO_HOME and
#     RUSTUP_HOME, so the same cargo and toolchain are used; files root creates under target/
#     are handed back to the caller afterwards); not root and no sudo: stops with an error,
#   - installs missing test dependencies with apt-get (docker.io, busybox-static, curl, util-linux,
#     util-linux-extra),
#   - starts a private, throw-away Docker daemon under a fresh /tmp/swt.XXXX directory
#     (never the system daemon, never /var/run/docker.sock),
#   - builds the fixture image sw-busybox:latest from busybox-static (no registry needed),
#   - runs cargo fmt --check, cargo clippy -D warnings and cargo test --all-targets,
#   - for fleet_e2e (and a full run), installs `kubernetes-validate` from PyPI into a venv under
#     target/ (the Kubernetes manifests' offline validation); when it cannot be installed, those
#     checks are reported as skipped (never passed); likewise musl-tools and the Rust target
#     x86_64-unknown-linux-musl for the static image build,
#   - on a full run (no arguments), runs each fuzz target briefly. Fuzzing needs cargo-fuzz, a C++
#     compiler and the fuzz crate's dependencies; what cannot be installed or downloaded is
#     reported as skipped and never fails the run. A fuzz target that runs and crashes does.
# The last line is always `summary: N passed, N failed` (CI reads it), preceded by
# `skipped: ...` when a step was skipped.
# Extra arguments go to `cargo test`. An argument NAME for which tests/NAME.rs exists becomes
# `--test NAME`, so `scripts/test.sh cli_e2e` runs only tests/cli_e2e.rs; anything else is passed
# through unchanged (e.g. `scripts/test.sh cli_e2e -- run_rm --nocapture`).
# Environment:
#   SOCKWARDEN_SKIP_LINT=1     skips fmt and clippy
#   SOCKWARDEN_SKIP_FUZZ=1     skips the fuzz targets
#   SOCKWARDEN_FUZZ_SECONDS=N  how long each fuzz target runs (default 15)
#   SOCKWARDEN_TEST_PLAN=1     prints the decisions (sudo re-exec, packages to install, fuzzing
#                              and why it would be skipped) and exits without doing anything
#   SOCKWARDEN_TEST_STAGES=... comma-separated subset of lint,test,fuzz (default: all three);
#                              the private dockerd is started only for `test`
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'scripts/test.sh: error: %s\n' "$*" >&2
    exit 1
}

plan_mode=0
[ "${SOCKWARDEN_TEST_PLAN:-0}" = 1 ] && plan_mode=1
plan() { printf 'plan: %s\n' "$*"; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
script="$repo_root/scripts/test.sh"

stages=",${SOCKWARDEN_TEST_STAGES:-lint,test,fuzz},"
for stage in $(printf '%s' "${SOCKWARDEN_TEST_STAGES:-}" | tr ',' ' '); do
    case $stage in
    lint | test | fuzz) ;;
    *) die "SOCKWARDEN_TEST_STAGES: unknown stage '$stage' (stages: lint,test,fuzz)" ;;
    esac
done
has_stage() { [[ $stages == *",$1,"* ]]; }

# ---------------------------------------------------------------------------------------------
# 0. Root, or re-exec through sudo
# ---------------------------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    [ "${SOCKWARDEN_TEST_REEXEC:-0}" = 1 ] &&
        die "re-executed through sudo but still not root (uid $(id -u)); run as root: bash scripts/test.sh"
    if ! command -v sudo >/dev/null 2>&1; then
        die "must run as root (it starts a private dockerd), and sudo is not installed; run it as root: su -c 'bash scripts/test.sh' (or install sudo)"
    fi
    # sudo resets the environment: carry over what selects the tests and the toolchain.
    env_args=("PATH=$PATH" SOCKWARDEN_TEST_REEXEC=1)
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
    [ -d "$cargo_home" ] && env_args+=("CARGO_HOME=$cargo_home")
    [ -d "$rustup_home" ] && env_args+=("RUSTUP_HOME=$rustup_home")
    for name in $(compgen -e); do
        case $name in
        SOCKWARDEN_* | CARGO_TERM_COLOR | RUST_LOG | RUST_BACKTRACE) env_args+=("$name=${!name}") ;;
        esac
    done
    reexec=(sudo -- env "${env_args[@]}" bash "$script" "$@")
    if [ "$plan_mode" = 1 ]; then
        plan "not root (uid $(id -u)): would re-exec through sudo: ${reexec[*]}"
        plan "(the decisions below are taken again as root after the re-exec)"
        exit 0
    fi
    log "not root (uid $(id -u)): re-executing through sudo"
    exec "${reexec[@]}"
fi
[ "$plan_mode" = 1 ] && plan "running as root (uid 0): no sudo needed"

# Hands files root created in the caller's build directories back to the caller (a sudo re-exec).
give_back() {
    local uid=${SUDO_UID:-} gid=${SUDO_GID:-} dirs=() d
    [ "${SOCKWARDEN_TEST_REEXEC:-0}" = 1 ] && [ -n "$uid" ] && [ "$uid" != 0 ] || return 0
    for d in "$repo_root/target" "$repo_root/fuzz/target" "${CARGO_HOME:-}"; do
        [ -n "$d" ] && [ -d "$d" ] && dirs+=("$d")
    done
    [ "${#dirs[@]}" -gt 0 ] || return 0
    find "${dirs[@]}" -xdev -user 0 -exec chown -h "$uid:${gid:-$uid}" {} + 2>/dev/null || true
}

fuzz_selected=0
if [ "$#" -eq 0 ] && has_stage fuzz && [ "${SOCKWARDEN_SKIP_FUZZ:-0}" != 1 ]; then
    fuzz_selected=1
fi
skipped=()

# ---------------------------------------------------------------------------------------------
# 1. Packages: the tests' own are required; g++ only for fuzzing (optional)
# ---------------------------------------------------------------------------------------------
need_pkgs=()
if has_stage test; then
    command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
    command -v containerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
    [ -x /usr/bin/docker ] || need_pkgs+=(docker.io) # Debian's CLI 20.10: the BuildKit test needs it
    [ -x /bin/busybox ] || need_pkgs+=(busybox-static)
    command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
    command -v script >/dev/null 2>&1 || need_pkgs+=(util-linux) # `script` gives `docker run -it` a pty
    # fincore: the audit file sink's drop-behind test (util-linux before Debian 12)
    command -v fincore >/dev/null 2>&1 || need_pkgs+=(util-linux-extra)
    if [ -x /bin/busybox ] && LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; then
        need_pkgs+=(busybox-static) # a dynamically linked busybox cannot run in the libc-less image
    fi
    command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3) # deploy_e2e's socket-activation launcher
    # remote_audit_e2e's collector: a real rsyslog on loopback, over TCP and TLS (gtls driver)
    command -v rsyslogd >/dev/null 2>&1 || need_pkgs+=(rsyslog)
    ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || need_pkgs+=(rsyslog-gnutls)
fi
# systemd-analyze verifies the units in deploy/systemd (deploy_e2e); optional: without it those
# checks are reported as skipped.
test_optional_pkgs=()
if has_stage test && ! command -v systemd-analyze >/dev/null 2>&1; then
    test_optional_pkgs+=(systemd)
fi
optional_pkgs=()
if [ "$fuzz_selected" = 1 ] && ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 &&
    ! command -v clang++ >/dev/null 2>&1; then
    optional_pkgs+=(g++) # libfuzzer-sys compiles libFuzzer's C++ sources
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() {
    [ "$apt_updated" = 1 ] && return 0
    apt-get update && apt_updated=1
}
if [ "$plan_mode" = 1 ]; then
    if [ "${#need_pkgs[@]}" -gt 0 ]; then
        plan "would install (required; a failure stops the run): apt-get install ${need_pkgs[*]}"
    else
        plan "required packages: all present, nothing to install"
    fi
    if [ "${#optional_pkgs[@]}" -gt 0 ]; then
        plan "would install (optional, for fuzzing; a failure skips fuzzing): apt-get install ${optional_pkgs[*]}"
    fi
elif [ "${#need_pkgs[@]}" -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt_update || die "apt-get update failed; cannot install the required ${need_pkgs[*]}"
    apt-get install -y --no-install-recommends "${need_pkgs[@]}" ||
        die "apt-get install ${need_pkgs[*]} failed; the tests need them"
fi
if [ "${#test_optional_pkgs[@]}" -gt 0 ] && [ "$plan_mode" = 1 ]; then
    plan "would install (optional, for deploy_e2e; a failure skips those checks): apt-get install ${test_optional_pkgs[*]}"
elif [ "${#test_optional_pkgs[@]}" -gt 0 ]; then
    log "installing ${test_optional_pkgs[*]} (optional: systemd-analyze for deploy_e2e)"
    if ! { apt_update && apt-get install -y --no-install-recommends "${test_optional_pkgs[@]}"; }; then
        log "systemd unit verification will be skipped: apt-get install ${test_optional_pkgs[*]} failed"
        skipped+=("systemd unit verification (apt-get install ${test_optional_pkgs[*]} failed)")
    fi
fi
# kubernetes-validate (PyPI) validates deploy/kubernetes offline (fleet_e2e), from a venv under
# target/. Needed only when fleet_e2e runs; when it cannot be installed, the test is told to
# report itself skipped (SOCKWARDEN_KUBERNETES_VALIDATE=skip:REASON) and the summary lists it.
kv_version=1.37.0
kv_venv=$repo_root/target/kubernetes-validate-venv
kv_needed=0
if has_stage test; then
    if [ "$#" -eq 0 ]; then
        kv_needed=1
    else
        for arg in "$@"; do
            [ "$arg" = -- ] && break
            [ "$arg" = fleet_e2e ] && kv_needed=1
        done
    fi
fi
if [ "$kv_needed" = 1 ] && [ "$plan_mode" = 1 ]; then
    if [ -x "$kv_venv/bin/kubernetes-validate" ]; then
        plan "kubernetes-validate: present in $kv_venv"
    else
        plan "kubernetes-validate: would run python3 -m venv $kv_venv && pip install kubernetes-validate==$kv_version; if that fails, the Kubernetes validation is reported as skipped"
    fi
elif [ "$kv_needed" = 1 ]; then
    kv_skip=""
    if [ ! -x "$kv_venv/bin/kubernetes-validate" ]; then
        log "installing kubernetes-validate==$kv_version into $kv_venv"
        kv_log=$(mktemp)
        if ! python3 -m venv "$kv_venv" >/dev/null 2>&1; then
            rm -rf "$kv_venv"
            if { apt_update && apt-get install -y --no-install-recommends python3-venv; } >/dev/null 2>&1; then
                python3 -m venv "$kv_venv" >/dev/null 2>&1 || kv_skip="python3 -m venv failed"
            else
                kv_skip="python3 -m venv failed and python3-venv cannot be installed"
            fi
        fi
        if [ -z "$kv_skip" ] && ! "$kv_venv/bin/pip" install --quiet --disable-pip-version-check \
            "kubernetes-validate==$kv_version" >"$kv_log" 2>&1; then
            tail -n 5 "$kv_log" >&2 || true
            kv_skip="pip install kubernetes-validate==$kv_version failed (PyPI unreachable?)"
        fi
        if [ -z "$kv_skip" ] && [ ! -x "$kv_venv/bin/kubernetes-validate" ]; then
            kv_skip="kubernetes-validate not found after pip install"
        fi
        rm -f "$kv_log"
        [ -n "$kv_skip" ] && rm -rf "$kv_venv"
    fi
    if [ -n "$kv_skip" ]; then
        log "Kubernetes manifest validation will be skipped: $kv_skip"
        skipped+=("Kubernetes manifest validation ($kv_skip)")
        export SOCKWARDEN_KUBERNETES_VALIDATE="skip:$kv_skip"
    else
        export SOCKWARDEN_KUBERNETES_VALIDATE=$kv_venv/bin/kubernetes-validate
    fi
fi
# The static musl build of deploy/container/build.sh (fleet_e2e) needs musl-gcc (musl-tools)
# and the Rust target x86_64-unknown-linux-musl; when either cannot be installed, the test is
# told to report itself skipped (SOCKWARDEN_MUSL=skip:REASON) and the summary lists it.
if [ "$kv_needed" = 1 ] && [ "$plan_mode" = 1 ]; then
    command -v musl-gcc >/dev/null 2>&1 ||
        plan "would install (optional, for the musl build in fleet_e2e; a failure skips it): apt-get install musl-tools"
elif [ "$kv_needed" = 1 ]; then
    musl_skip=""
    if [ "$(uname -m)" != x86_64 ]; then
        musl_skip="not an x86_64 machine"
    elif ! command -v musl-gcc >/dev/null 2>&1; then
        log "installing musl-tools (optional: the musl build in fleet_e2e)"
        { apt_update && apt-get install -y --no-install-recommends musl-tools; } >/dev/null 2>&1 ||
            musl_skip="apt-get install musl-tools failed"
    fi
    if [ -z "$musl_skip" ] && ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
        rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 ||
            musl_skip="rustup target add x86_64-unknown-linux-musl failed"
    fi
    if [ -n "$musl_skip" ]; then
        log "the musl static build will be skipped: $musl_skip"
        skipped+=("musl static image build ($musl_skip)")
        export SOCKWARDEN_MUSL="skip:$musl_skip"
    else
        export SOCKWARDEN_MUSL=1
    fi
fi
fuzz_skip_reason=""
if [ "$fuzz_selected" = 1 ] && [ "${#optional_pkgs[@]}" -gt 0 ] && [ "$plan_mode" != 1 ]; then
    log "installing ${optional_pkgs[*]} (optional, for fuzzing)"
    if ! { apt_update && apt-get install -y --no-install-recommends "${optional_pkgs[@]}"; }; then
        fuzz_skip_reason="no C++ compiler, and apt-get install ${optional_pkgs[*]} failed"
        log "fuzzing will be skipped: $fuzz_skip_reason"
    fi
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH (install Rust via rustup; root's PATH may need ~/.cargo/bin)"

fuzz_targets=$(cd fuzz/fuzz_targets && ls -- *.rs | sed 's/\.rs$//' | tr '\n' ' ')
fuzz_seconds=${SOCKWARDEN_FUZZ_SECONDS:-15}
if [ "$plan_mode" = 1 ]; then
    if has_stage test; then
        plan "would start a private containerd and dockerd under a fresh /tmp/swt.XXXX and import sw-busybox:latest"
    fi
    if has_stage lint && [ "${SOCKWARDEN_SKIP_LINT:-0}" != 1 ]; then
        plan "would run cargo fmt --all -- --check and cargo clippy --all-targets -- -D warnings"
    fi
    if has_stage test; then
        plan "would run cargo test --no-fail-fast ${*:---all-targets}"
    fi
    if [ "$fuzz_selected" != 1 ]; then
        if [ "$#" -gt 0 ]; then
            plan "fuzz: not run (a test selection was given)"
        else
            plan "fuzz: not run (SOCKWARDEN_SKIP_FUZZ=1 or no fuzz stage)"
        fi
    else
        if cargo fuzz --version >/dev/null 2>&1; then
            plan "fuzz: cargo-fuzz present ($(cargo fuzz --version 2>/dev/null | head -n 1))"
        else
            plan "fuzz: cargo-fuzz missing: would run cargo install --locked cargo-fuzz; if that fails, fuzzing is skipped (not a failure)"
        fi
        if [ "${#optional_pkgs[@]}" -gt 0 ]; then
            plan "fuzz: no C++ compiler: if apt-get install ${optional_pkgs[*]} fails, fuzzing is skipped (not a failure)"
        fi
        plan "fuzz: would fetch the fuzz crate's dependencies (cargo fetch); if that fails, fuzzing is skipped (not a failure)"
        plan "fuzz: would run ${fuzz_targets% } for $fuzz_seconds s each; a target that fails to build or crashes fails the run"
    fi
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# 2. Private daemon, torn down by the trap on any exit
# ---------------------------------------------------------------------------------------------
# Short path: unix socket paths are limited to 108 bytes.
tmpd=$(mktemp -d /tmp/swt.XXXX)
: >"$tmpd/cargo-test.log"
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
    if [ -n "$dockerd_pid" ] && [ -S "${sock:-}" ]; then
        # Networks the tests left behind: their bridges live in the host's namespace and would
        # outlive the daemon, using up address pools for the next runs.
        docker -H "unix://$sock" ps -aq 2>/dev/null | xargs -r docker -H "unix://$sock" rm -f >/dev/null 2>&1
        docker -H "unix://$sock" network prune -f >/dev/null 2>&1
    fi
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
    # A step that could not be set up (not a test) is listed on the line before.
    if [ -f "$tmpd/cargo-test.log" ]; then
        {
            if [ "${#skipped[@]}" -gt 0 ]; then
                printf 'skipped: %s' "${skipped[0]}"
                for item in "${skipped[@]:1}"; do printf '; %s' "$item"; done
                printf '\n'
            fi
            awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
                 END { printf "summary: %d passed, %d failed\n", p, f }' "$tmpd/cargo-test.log"
        } >"$tmpd.summary"
    fi
    rm -rf --one-file-system "$tmpd"
    give_back
    if [ -f "$tmpd.summary" ]; then
        cat "$tmpd.summary"
        rm -f "$tmpd.summary"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if has_stage test; then
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
        --default-address-pool base=10.213.0.0/16,size=24 \
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
fi

# ---------------------------------------------------------------------------------------------
# 4. Lint and test
# ---------------------------------------------------------------------------------------------
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A clean build with the tests and the fuzz targets takes about 4 GB (the musl image build
# and the daemon's vfs storage more); a full disk shows up as a confusing rustc/LLVM error.
free_kib=$(df -Pk "$repo_root" | awk 'NR == 2 { print $4 }')
log "free disk under $repo_root: $((free_kib / 1024)) MiB"
[ "${free_kib:-0}" -ge $((4 * 1024 * 1024)) ] ||
    log "warning: under 4 GiB free; the build may fail with 'No space left on device'"
if has_stage lint && [ "${SOCKWARDEN_SKIP_LINT:-0}" != 1 ]; then
    log "cargo fmt --all -- --check"
    cargo fmt --all -- --check
    log "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
fi

rc=0
if has_stage test; then
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
fi

# ---------------------------------------------------------------------------------------------
# 5. Fuzz targets, briefly, on a copy of their corpus (full runs: see README). Only on a full
#    run (no test selection); SOCKWARDEN_SKIP_FUZZ=1 skips it. Setting fuzzing up (cargo-fuzz,
#    a C++ compiler, the fuzz crate's dependencies) is not a test: when it fails, fuzzing is
#    skipped and the summary says so. A target that does not build or crashes is a failure.
# ---------------------------------------------------------------------------------------------
fuzz_failed() {
    rc=1
    echo "test result: FAILED. 0 passed; 1 failed; $1" >>"$tmpd/cargo-test.log"
}
if [ "$fuzz_selected" = 1 ]; then
    if [ -z "$fuzz_skip_reason" ] && ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz (cargo install --locked cargo-fuzz)"
        set +e
        cargo install --locked cargo-fuzz >"$tmpd/cargo-install.log" 2>&1
        irc=$?
        set -e
        if [ "$irc" -ne 0 ] || ! cargo fuzz --version >/dev/null 2>&1; then
            tail -n 5 "$tmpd/cargo-install.log" >&2
            fuzz_skip_reason="cargo-fuzz is not installed and \`cargo install --locked cargo-fuzz\` failed (exit $irc; registry unreachable?)"
        fi
    fi
    if [ -z "$fuzz_skip_reason" ]; then
        log "cargo fetch (fuzz crate)"
        set +e
        cargo fetch --locked --manifest-path fuzz/Cargo.toml >"$tmpd/fuzz-fetch.log" 2>&1
        frc=$?
        set -e
        if [ "$frc" -ne 0 ] && grep -q "cannot update the lock file" "$tmpd/fuzz-fetch.log"; then
            # Not the network: fuzz/Cargo.lock is behind the crate's dependencies. That is a
            # defect of the checkout (refresh it with `cargo fetch --manifest-path
            # fuzz/Cargo.toml`), and fuzzing must not quietly stop running because of it.
            tail -n 5 "$tmpd/fuzz-fetch.log" >&2
            fuzz_failed "fuzz/Cargo.lock is out of date (cargo fetch --locked)"
            fuzz_skip_reason="fuzz/Cargo.lock is out of date"
        elif [ "$frc" -ne 0 ]; then
            tail -n 5 "$tmpd/fuzz-fetch.log" >&2
            fuzz_skip_reason="the fuzz crate's dependencies cannot be downloaded (cargo fetch exit $frc; registry unreachable?)"
        fi
    fi
    if [ -n "$fuzz_skip_reason" ]; then
        log "fuzzing skipped: $fuzz_skip_reason"
        skipped+=("fuzzing ($fuzz_skip_reason)")
    else
        log "cargo fuzz build"
        set +e
        # cargo-fuzz passes -Z flags; RUSTC_BOOTSTRAP lets the machine's stable compiler take them.
        RUSTC_BOOTSTRAP=1 cargo fuzz build >"$tmpd/fuzz-build.log" 2>&1
        brc=$?
        set -e
        if [ "$brc" -ne 0 ]; then
            tail -n 60 "$tmpd/fuzz-build.log" >&2
            log "fuzz targets failed to build (exit $brc)"
            fuzz_failed "fuzz build"
        else
            for target in $fuzz_targets; do
                mkdir -p "$tmpd/corpus-$target"
                cp fuzz/corpus/"$target"/* "$tmpd/corpus-$target/" 2>/dev/null || true
                log "cargo fuzz run $target ($fuzz_seconds s)"
                set +e
                RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$tmpd/corpus-$target" -- \
                    -max_total_time="$fuzz_seconds" >"$tmpd/fuzz-$target.log" 2>&1
                frc=$?
                set -e
                if [ "$frc" -ne 0 ]; then
                    tail -n 60 "$tmpd/fuzz-$target.log" >&2
                    log "fuzz target $target failed (exit $frc)"
                    fuzz_failed "fuzz target $target"
                else
                    echo "test result: ok. 1 passed; 0 failed; fuzz target $target: $(grep -Eo 'Done [0-9]+ runs' "$tmpd/fuzz-$target.log" || true)" |
                        tee -a "$tmpd/cargo-test.log"
                fi
            done
        fi
    fi
fi

if [ "$rc" -ne 0 ] && has_stage test; then
    log "tests failed (exit $rc); daemon log tail:"
    tail -n 40 "$tmpd/dockerd.log" >&2 || true
    # Last, so that a CI view of only the output's tail still shows why: the start of each
    # failed test's own section (its panic message first), repeated from far above.
    log "the failed tests' panics, repeated (their whole output is above):"
    awk '/^---- .* stdout ----$/ { p = 1; n = 0 } /^failures:$/ { p = 0 } p && n++ < 16' \
        "$tmpd/cargo-test.log" | tail -n 100 >&2 || true
fi
exit "$rc"
