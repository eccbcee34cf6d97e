#!/usr/bin/env bash
# Builds sockwarden's container image with no registry: a `FROM scratch` image holding only the
# binary (and, for a dynamically linked one, exactly the shared libraries `ldd` lists), minimal
# /etc/passwd and /etc/group, and the default configuration (deploy/container/sockwarden.toml).
# No shell, no package manager; it runs as uid:gid 65532:65532.
#
#   deploy/container/build.sh [--tag NAME] [--binary PATH]
#
# It builds against whatever DOCKER_HOST (or the docker CLI's context) points at. Without
# --binary it builds the binary first: statically linked for x86_64-unknown-linux-musl when that
# Rust target is installed or `rustup target add` can install it and a musl C compiler is there
# for ring's C code (`musl-gcc`, Debian package musl-tools), otherwise the host's glibc-linked
# release build, whose libraries (exactly those ldd lists) are copied in. --binary uses a binary already
# built (static or dynamic, the same rules). --tag defaults to sockwarden:latest.
#
# Run it (the daemon socket mounted; its group given to the image's user, since the image is not
# root; its own socket exposed through a bind-mounted directory; no network needed for unix
# sockets):
#   docker run -d --name sockwarden --network none --read-only --cap-drop ALL \
#     --security-opt no-new-privileges \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /run/sockwarden:/run/sockwarden \
#     sockwarden:latest
#   DOCKER_HOST=unix:///run/sockwarden/docker.sock docker ps
# (/run/sockwarden on the host must be writable by uid 65532: install -d -o 65532 /run/sockwarden.)
set -euo pipefail

die() {
    printf 'build.sh: error: %s\n' "$*" >&2
    exit 1
}

tag=sockwarden:latest
binary=""
while [ "$#" -gt 0 ]; do
    case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --binary) binary=${2:?--binary needs a value}; shift 2 ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
command -v docker >/dev/null 2>&1 || die "the docker CLI is needed"

# Where cargo puts what it builds (CARGO_TARGET_DIR, relative to the repository, is honoured).
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac

if [ -z "$binary" ]; then
    musl=x86_64-unknown-linux-musl
    if [ "$(uname -m)" = x86_64 ] && command -v rustup >/dev/null 2>&1 && command -v musl-gcc >/dev/null 2>&1 &&
        { rustup target list --installed 2>/dev/null | grep -qx "$musl" || rustup target add "$musl" >&2; }; then
        echo "build.sh: building a static binary ($musl)" >&2
        (cd "$repo" && CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-musl-gcc} \
            cargo build --release --locked --target "$musl" --bin sockwarden >&2)
        binary=$target_dir/$musl/release/sockwarden
    else
        echo "build.sh: the musl target is not available: building for the host's glibc (its libraries are copied in)" >&2
        (cd "$repo" && cargo build --release --locked --bin sockwarden >&2)
        binary=$target_dir/release/sockwarden
    fi
fi
[ -x "$binary" ] || die "$binary is not an executable"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
install -d "$root/usr/local/bin" "$root/etc/sockwarden" "$root/run/sockwarden" "$root/tmp"
install -m 0755 "$binary" "$root/usr/local/bin/sockwarden"
install -m 0644 "$repo/deploy/container/sockwarden.toml" "$root/etc/sockwarden/sockwarden.toml"
printf 'root:x:0:0:root:/:/nonexistent\nsockwarden:x:65532:65532:sockwarden:/:/nonexistent\n' >"$root/etc/passwd"
printf 'root:x:0:\nsockwarden:x:65532:\n' >"$root/etc/group"

# A dynamically linked binary: every library ldd resolves, at the same path (the loader too).
# A static one: ldd says "not a dynamic executable" (glibc) or "statically linked".
if deps=$(LC_ALL=C ldd "$binary" 2>&1) && ! grep -qE 'not a dynamic executable|statically linked' <<<"$deps"; then
    if grep -q 'not found' <<<"$deps"; then
        die "ldd cannot resolve every library of $binary: $deps"
    fi
    while read -r lib; do
        install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done < <(grep -oE '/[^[:space:]()]+' <<<"$deps" | sort -u)
    echo "build.sh: dynamically linked: copied $(grep -oE '/[^[:space:]()]+' <<<"$deps" | sort -u | wc -l) libraries" >&2
else
    echo "build.sh: statically linked" >&2
fi

cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 rootfs/run/sockwarden/ /run/sockwarden/
COPY --chown=65532:65532 rootfs/tmp/ /tmp/
USER 65532:65532
EXPOSE 2375 9100
ENTRYPOINT ["/usr/local/bin/sockwarden"]
CMD ["serve", "--config", "/etc/sockwarden/sockwarden.toml"]
DOCKERFILE

docker build --label "org.opencontainers.image.title=sockwarden" \
    --label "org.opencontainers.image.version=$("$binary" --version | awk '{print $2}')" \
    -t "$tag" "$ctx" >&2
echo "$tag"
