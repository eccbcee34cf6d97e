# Sourced by scripts/bench.sh, scripts/audit-callgrind.sh and scripts/callgrind_requests.sh: the
# one sockwarden configuration every benchmark measures, so that their figures compare.
#
#   bench_config UPSTREAM_SOCKET LISTEN_SOCKET AUDIT [POLICY_EXTRA] > FILE
#
# The load generator's user is the client "bench", whose policy opens what the HAProxy front's
# switches open (docker-socket-proxy): its defaults (PING, VERSION, EVENTS) plus CONTAINERS,
# IMAGES, EXEC and POST (the dangerous image.save/load, container.archive.*, exec.* included).
# AUDIT is the body of the [audit] table (`sink = "off"`, a file sink, or [[audit.sinks]]
# entries); POLICY_EXTRA more lines of the policy (e.g. `isolation = "user"`).
bench_config() {
    cat <<CONFIG
[upstream]
socket = "$1"

[[client]]
name = "bench"
policy = "bench"
uids = [$(id -u)]

[policy.bench]
allow = ["system.ping", "system.version", "system.events", "container.*", "image.*", "exec.*"]
allow_dangerous = ["container.*", "image.*", "exec.*"]
${4:-}

[audit]
$3

# A benchmark measures throughput: the default per-client request rate is lifted.
[limits]
requests_per_second = 0

[[listen]]
unix = "$2"
mode = "0600"
CONFIG
}
