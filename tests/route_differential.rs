#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Differential test of `route::normalize` + `route::classify` against the real daemon.
//!
//! Every case of the catalogue is sent, byte for byte, straight to the daemon over its unix
//! socket (`SOCKWARDEN_TEST_DOCKER_SOCK`, set by `scripts/test.sh`), and our reading of the
//! request is checked against how the daemon routed it:
//!
//! - classified as an operation: the daemon must not answer 404 "page not found" (another 404,
//!   "No such container: x", is fine, and when the daemon names an object in a 404 it must be
//!   the object we extracted);
//! - classified `unknown`: the daemon must answer "page not found" (or 405);
//! - refused by `normalize`: either the daemon treats the target specially too (301 redirect,
//!   400, "page not found") or the case says why we refuse it by design.
//!
//! The catalogue also pins our own answer for each case, so it doubles as a specification.
//! Only requests that cannot change the daemon's state are sent: object names that do not
//! exist, bodies or parameters that fail validation before anything happens (`{` as JSON,
//! `filters={` on prunes, `platform=!` on image create, invalid references), no `Upgrade`
//! headers, and no prune, create or swarm-init with a valid body.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use http::{Method, Uri};
use sockwarden::route::{self, ApiVersion};

/// What we expect our side to say.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This operation; the daemon routes it.
    Op(&'static str),
    /// This operation, added to the daemon in the given API version: a daemon older than that
    /// answers "page not found", a newer one routes it.
    OpSince(&'static str, (u16, u16)),
    /// This operation; whether the daemon routes it depends on its version in ways we do not
    /// model (versioned `/debug/*` is served by master, 404 on 20.10). Either answer is fine.
    OpEither(&'static str),
    /// `unknown`: the daemon answers "page not found".
    Unknown,
    /// Refused by `normalize`; the daemon also treats it specially (301, 400, page not found).
    Refused,
    /// Refused by `normalize` although the daemon would serve it: why.
    RefusedByDesign(&'static str),
}

struct Case {
    method: &'static str,
    target: &'static str,
    /// A JSON body (sent with `Content-Type: application/json`).
    body: Option<&'static str>,
    expect: Expect,
    /// Whether a 404 from the daemon names the route's object (false where it names something
    /// else, e.g. the container in a network connect body).
    names_object: bool,
}

impl Case {
    /// The daemon's 404 for this case does not name the route's object.
    const fn other_object(mut self) -> Case {
        self.names_object = false;
        self
    }
}

const fn case(method: &'static str, target: &'static str, expect: Expect) -> Case {
    Case {
        method,
        target,
        body: None,
        expect,
        names_object: true,
    }
}

const fn with_body(
    method: &'static str,
    target: &'static str,
    body: &'static str,
    expect: Expect,
) -> Case {
    Case {
        method,
        target,
        body: Some(body),
        expect,
        names_object: true,
    }
}

use Expect::{Op, OpEither, OpSince, Refused, RefusedByDesign, Unknown};

fn catalogue() -> Vec<Case> {
    vec![
        // ---- system
        case("GET", "/_ping", Op("system.ping")),
        case("HEAD", "/_ping", Op("system.ping")),
        case("GET", "/v1.41/_ping", Op("system.ping")),
        case("HEAD", "/v1.41/_ping", Op("system.ping")),
        case("GET", "/v1.24/_ping", Op("system.ping")),
        case("GET", "/v01.041/_ping", Op("system.ping")),
        case("GET", "/v1.41.0/_ping", Op("system.ping")),
        case("GET", "/v2.0/_ping", Op("system.ping")), // routed; the daemon says "too new"
        case("GET", "/%5Fping", Op("system.ping")),    // decoded before routing
        case("GET", "/%761.41/_ping", Op("system.ping")),
        case("GET", "/events?since=0&until=1", Op("system.events")),
        case("GET", "/info", Op("system.info")),
        case("GET", "/version", Op("system.version")),
        case("GET", "/v1.41/version", Op("system.version")),
        case("GET", "/system/df", Op("system.df")),
        with_body("POST", "/auth", "{", Op("system.auth")),
        case("OPTIONS", "/anything/at/all", Op("system.options")),
        case("OPTIONS", "/containers/json", Op("system.options")),
        case("OPTIONS", "/v1.41/nope", Op("system.options")),
        case("OPTIONS", "/debug/vars", Op("system.options")),
        case("GET", "/_PING", Unknown),
        case("GET", "/Info", Unknown),
        case("POST", "/_ping", Unknown),
        case("HEAD", "/version", Unknown),
        case("GET", "/_ping/x", Unknown),
        case("GET", "/nope", Unknown),
        case("GET", "/v1.41/nope", Unknown),
        case("HEAD", "/v1.41/nope", Unknown),
        case("GET", "/", Unknown),
        case("GET", "/v1.41/", Unknown),
        case("GET", "/v1.41/v1.41/_ping", Unknown),
        case("GET", "/vx/_ping", Unknown),
        case("GET", "/libpod/containers/json", Unknown),
        // ---- debug (20.10: unversioned, any method)
        case("GET", "/debug/vars", Op("system.debug")),
        case("POST", "/debug/vars", Op("system.debug")),
        case("GET", "/debug/pprof/", Op("system.debug")),
        case("HEAD", "/debug/pprof/", Op("system.debug")),
        case("GET", "/debug/pprof/cmdline", Op("system.debug")),
        case("PUT", "/debug/pprof/cmdline", Op("system.debug")),
        case("GET", "/debug/pprof/symbol", Op("system.debug")),
        case("GET", "/debug/pprof/heap", Op("system.debug")),
        case("DELETE", "/debug/pprof/heap", Op("system.debug")),
        case("GET", "/debug/pprof/goroutine", Op("system.debug")),
        case("GET", "/debug/pprof/profile?seconds=1", Op("system.debug")),
        case("GET", "/debug/pprof/trace?seconds=1", Op("system.debug")),
        case("GET", "/v1.41/debug/vars", OpEither("system.debug")),
        case("GET", "/v1.41/debug/pprof/", OpEither("system.debug")),
        case("GET", "/debug", Unknown),
        case("GET", "/debug/nope", Unknown),
        case("GET", "/debug/vars/x", Unknown),
        case("GET", "/debug/pprof/a/b", Unknown),
        case("GET", "/debug/pprof/heap/", Refused),
        case("GET", "/debug/vars/", Refused),
        case(
            "get",
            "/debug/vars",
            RefusedByDesign("the daemon serves /debug/* for any method token"),
        ),
        case(
            "PATCH",
            "/debug/vars",
            RefusedByDesign("the daemon serves /debug/* for any method token"),
        ),
        case(
            "FOO",
            "/debug/pprof/cmdline",
            RefusedByDesign("the daemon serves /debug/* for any method token"),
        ),
        // ---- containers (none of these names exist)
        case("GET", "/containers/json", Op("container.list")),
        case("GET", "/v1.41/containers/json?all=1", Op("container.list")),
        case("GET", "/v1.24/containers/json", Op("container.list")),
        case("GET", "/containers/%6Ason", Op("container.list")),
        with_body("POST", "/containers/create", "{", Op("container.create")),
        with_body(
            "POST",
            "/v1.41/containers/create?name=sw-nx",
            "{",
            Op("container.create"),
        ),
        case("GET", "/containers/sw-nx/json", Op("container.inspect")),
        case(
            "GET",
            "/v1.41/containers/sw-nx/json",
            Op("container.inspect"),
        ),
        case("GET", "/containers/json/json", Op("container.inspect")),
        case(
            "GET",
            "/containers/sw-nx/json/json",
            Op("container.inspect"),
        ),
        case("GET", "/containers/sw-nx/b/json", Op("container.inspect")),
        case(
            "GET",
            "/containers/sw-nx/create/json",
            Op("container.inspect"),
        ),
        case("GET", "/containers/sw-nx%20x/json", Op("container.inspect")),
        case("GET", "/containers/sw.nx/json", Op("container.inspect")),
        case("GET", "/containers/sw-nx/top", Op("container.top")),
        case(
            "GET",
            "/containers/sw-nx/logs?stdout=1",
            Op("container.logs"),
        ),
        case(
            "GET",
            "/containers/sw-nx/stats?stream=0",
            Op("container.stats"),
        ),
        case("GET", "/containers/sw-nx/changes", Op("container.changes")),
        case("GET", "/containers/sw-nx/export", Op("container.export")),
        case(
            "GET",
            "/containers/sw-nx/archive?path=/",
            Op("container.archive.get"),
        ),
        case(
            "HEAD",
            "/containers/sw-nx/archive?path=/",
            Op("container.archive.head"),
        ),
        case(
            "PUT",
            "/containers/sw-nx/archive?path=/",
            Op("container.archive.put"),
        ),
        case("POST", "/containers/sw-nx/start", Op("container.start")),
        case("POST", "/containers/json/start", Op("container.start")),
        case("POST", "/containers/sw-nx/stop", Op("container.stop")),
        case("POST", "/containers/sw-nx/restart", Op("container.restart")),
        case("POST", "/containers/sw-nx/kill", Op("container.kill")),
        case("POST", "/containers/sw-nx/pause", Op("container.pause")),
        case("POST", "/containers/sw-nx/unpause", Op("container.unpause")),
        case("POST", "/containers/sw-nx/wait", Op("container.wait")),
        case(
            "POST",
            "/containers/sw-nx/resize?h=10&w=10",
            Op("container.resize"),
        ),
        case(
            "POST",
            "/containers/sw-nx/attach?stream=0",
            Op("container.attach"),
        ),
        case(
            "POST",
            "/containers/sw-nx/b/attach?stream=0",
            Op("container.attach"),
        ),
        case(
            "GET",
            "/containers/sw-nx/attach/ws",
            Op("container.attach.websocket"),
        ),
        with_body(
            "POST",
            "/containers/sw-nx/exec",
            r#"{"Cmd":["true"]}"#,
            Op("exec.create"),
        ),
        case(
            "POST",
            "/containers/sw-nx/rename?name=sw-nx2",
            Op("container.rename"),
        ),
        with_body(
            "POST",
            "/containers/sw-nx/update",
            "{}",
            Op("container.update"),
        ),
        case(
            "POST",
            "/containers/prune?filters=%7B",
            Op("container.prune"),
        ),
        case("DELETE", "/containers/sw-nx", Op("container.delete")),
        case("DELETE", "/containers/sw-nx/b", Op("container.delete")),
        case("DELETE", "/containers/json", Op("container.delete")),
        case("POST", "/commit?container=sw-nx", Op("container.commit")),
        with_body(
            "POST",
            "/containers/sw-nx/copy",
            r#"{"Resource":"/"}"#,
            Op("container.copy"),
        ),
        case(
            "GET",
            "/containers/sw-nx/checkpoints",
            Op("container.checkpoint.list"),
        ),
        case(
            "POST",
            "/containers/sw-nx/checkpoints",
            Op("container.checkpoint.create"),
        ),
        case(
            "DELETE",
            "/containers/sw-nx/checkpoints/c1",
            Op("container.checkpoint.delete"),
        ),
        // `{name}` has no '/': a container delete of "sw-nx/b/checkpoints/c1".
        case(
            "DELETE",
            "/containers/sw-nx/b/checkpoints/c1",
            Op("container.delete"),
        ),
        case("GET", "/containers/create", Unknown),
        case("POST", "/containers/json", Unknown),
        case("HEAD", "/containers/json", Unknown),
        case("HEAD", "/containers/sw-nx/json", Unknown),
        case("PUT", "/containers/sw-nx/json", Unknown),
        case("GET", "/Containers/json", Unknown),
        case("GET", "/CONTAINERS/JSON", Unknown),
        case("GET", "/containers/JSON", Unknown),
        case("GET", "/containers", Unknown),
        case("GET", "/containers/sw-nx", Unknown),
        case("GET", "/v1.41/containers/sw-nx", Unknown),
        case("POST", "/containers/sw-nx/ATTACH", Unknown),
        // ---- exec
        case("GET", "/exec/sw-nx-exec/json", Op("exec.inspect")),
        with_body(
            "POST",
            "/exec/sw-nx-exec/start",
            r#"{"Detach":true}"#,
            Op("exec.start"),
        ),
        case("POST", "/exec/sw-nx-exec/resize?h=1&w=1", Op("exec.resize")),
        case("GET", "/exec/sw-nx-exec/start", Unknown),
        case("DELETE", "/exec/sw-nx-exec", Unknown),
        case("GET", "/exec/sw-nx-exec", Unknown),
        // ---- images
        case("GET", "/images/json", Op("image.list")),
        case(
            "GET",
            "/images/search?term=x&limit=notanumber",
            Op("image.search"),
        ),
        case("GET", "/images/get?names=sw-nx-img", Op("image.save")),
        case("GET", "/images/sw-nx-img/get", Op("image.save")),
        // 20.10 answers "reference does not exist" here.
        case("GET", "/images/sw-nx/a:b/get", Op("image.save")).other_object(),
        case("GET", "/images/sw-nx-img/history", Op("image.history")),
        case("GET", "/images/sw-nx-img/json", Op("image.inspect")),
        case("GET", "/images/a/b:c/json", Op("image.inspect")),
        case("GET", "/images/json/json", Op("image.inspect")),
        case("GET", "/images/sw-nx%40sha256:00/json", Op("image.inspect")),
        case(
            "GET",
            "/images/sw-nx-img/attestations",
            OpSince("image.attestations", (1, 55)),
        ),
        // An empty body is not a tar with a manifest: the load fails without loading anything.
        case("POST", "/images/load?quiet=1", Op("image.load")),
        case(
            "POST",
            "/images/create?fromImage=sw-nx-img&platform=%21",
            Op("image.pull"),
        ),
        case(
            "POST",
            "/images/create?fromSrc=-&platform=%21",
            Op("image.import"),
        ),
        case(
            "POST",
            "/images/create?fromImage=&platform=%21",
            Op("image.import"),
        ),
        case("POST", "/images/INVALID/push", Op("image.push")),
        case("POST", "/images/sw-nx-img/tag?repo=sw-nx2", Op("image.tag")),
        case("POST", "/images/prune?filters=%7B", Op("image.prune")),
        case("DELETE", "/images/sw-nx-img", Op("image.delete")),
        case("DELETE", "/images/a/b:c", Op("image.delete")),
        case("POST", "/build?version=99", Op("image.build")),
        case("POST", "/build/prune?filters=%7B", Op("build.prune")),
        case("POST", "/build/cancel?id=sw-nx-build", Op("build.cancel")),
        case("POST", "/session", Op("build.session")),
        case("POST", "/grpc", Op("build.grpc")),
        case("GET", "/images/sw-nx-img", Unknown),
        case("GET", "/images", Unknown),
        case("PUT", "/images/sw-nx-img/json", Unknown),
        case("GET", "/session", Unknown),
        case("GET", "/grpc", Unknown),
        case("GET", "/build", Unknown),
        case("POST", "/commit/x", Unknown),
        // ---- volumes
        case("GET", "/volumes", Op("volume.list")),
        case("GET", "/volumes/sw-nx-vol", Op("volume.inspect")),
        case("GET", "/volumes/sw-nx/b", Op("volume.inspect")),
        case("GET", "/volumes/create", Op("volume.inspect")),
        with_body("POST", "/volumes/create", "{", Op("volume.create")),
        case("POST", "/volumes/prune?filters=%7B", Op("volume.prune")),
        with_body(
            "PUT",
            "/volumes/sw-nx-vol",
            "{",
            OpSince("volume.update", (1, 42)),
        ),
        case("DELETE", "/volumes/sw-nx-vol", Op("volume.delete")),
        case("PUT", "/volumes", Unknown),
        case("POST", "/volumes", Unknown),
        // ---- networks
        case("GET", "/networks", Op("network.list")),
        case("GET", "/networks/", Op("network.list")),
        case("GET", "/v1.41/networks/", Op("network.list")),
        case("GET", "/networks/sw-nx-net", Op("network.inspect")),
        case("GET", "/networks/sw-nx/b", Op("network.inspect")),
        case("GET", "/networks/create", Op("network.inspect")),
        with_body("POST", "/networks/create", "{", Op("network.create")),
        with_body(
            "POST",
            "/networks/sw-nx-net/connect",
            r#"{"Container":"sw-nx"}"#,
            Op("network.connect"),
        )
        .other_object(), // the daemon looks the container up first
        with_body(
            "POST",
            "/networks/sw-nx-net/disconnect",
            r#"{"Container":"sw-nx"}"#,
            Op("network.disconnect"),
        )
        .other_object(),
        case("POST", "/networks/prune?filters=%7B", Op("network.prune")),
        case("DELETE", "/networks/sw-nx-net", Op("network.delete")),
        case("DELETE", "/networks", Unknown),
        case("POST", "/networks", Unknown),
        // ---- swarm (the test daemon is not in a swarm: 503 "not a swarm manager")
        with_body("POST", "/swarm/init", "{", Op("swarm.init")),
        with_body("POST", "/swarm/join", "{", Op("swarm.join")),
        case("POST", "/swarm/leave", Op("swarm.leave")),
        case("GET", "/swarm", Op("swarm.inspect")),
        case("GET", "/swarm/unlockkey", Op("swarm.unlockkey")),
        with_body("POST", "/swarm/update", "{", Op("swarm.update")),
        with_body("POST", "/swarm/unlock", "{", Op("swarm.unlock")),
        case("GET", "/services", Op("service.list")),
        case("GET", "/services/sw-nx-svc", Op("service.inspect")),
        with_body("POST", "/services/create", "{", Op("service.create")),
        with_body(
            "POST",
            "/services/sw-nx-svc/update",
            "{",
            Op("service.update"),
        ),
        case("DELETE", "/services/sw-nx-svc", Op("service.delete")),
        case("GET", "/services/sw-nx-svc/logs", Op("service.logs")),
        case("GET", "/nodes", Op("node.list")),
        case("GET", "/nodes/sw-nx-node", Op("node.inspect")),
        case("DELETE", "/nodes/sw-nx-node", Op("node.delete")),
        with_body("POST", "/nodes/sw-nx-node/update", "{", Op("node.update")),
        case("GET", "/tasks", Op("task.list")),
        case("GET", "/tasks/sw-nx-task", Op("task.inspect")),
        case("GET", "/tasks/sw-nx-task/logs", Op("task.logs")),
        case("GET", "/secrets", Op("secret.list")),
        with_body("POST", "/secrets/create", "{", Op("secret.create")),
        case("DELETE", "/secrets/sw-nx-sec", Op("secret.delete")),
        case("GET", "/secrets/sw-nx-sec", Op("secret.inspect")),
        with_body(
            "POST",
            "/secrets/sw-nx-sec/update",
            "{",
            Op("secret.update"),
        ),
        case("GET", "/configs", Op("config.list")),
        with_body("POST", "/configs/create", "{", Op("config.create")),
        case("DELETE", "/configs/sw-nx-cfg", Op("config.delete")),
        case("GET", "/configs/sw-nx-cfg", Op("config.inspect")),
        with_body(
            "POST",
            "/configs/sw-nx-cfg/update",
            "{",
            Op("config.update"),
        ),
        case("GET", "/swarm/init", Unknown),
        case("GET", "/services/a/b", Unknown),
        case("DELETE", "/services/a/b", Unknown),
        case("GET", "/nodes/a/b", Unknown),
        case("GET", "/tasks/a/b", Unknown),
        case("GET", "/secrets/a/b", Unknown),
        case("POST", "/configs/a/b/update", Unknown),
        // ---- plugins
        case("GET", "/plugins", Op("plugin.list")),
        case("GET", "/plugins/sw-nx-plugin/json", Op("plugin.inspect")),
        case("GET", "/plugins/a/b:c/json", Op("plugin.inspect")),
        case(
            "GET",
            "/plugins/privileges?remote=INVALID",
            Op("plugin.privileges"),
        ),
        case("DELETE", "/plugins/sw-nx-plugin", Op("plugin.delete")),
        case("POST", "/plugins/sw-nx-plugin/enable", Op("plugin.enable")),
        case(
            "POST",
            "/plugins/sw-nx-plugin/disable",
            Op("plugin.disable"),
        ),
        with_body(
            "POST",
            "/plugins/pull?remote=INVALID",
            "[]",
            Op("plugin.pull"),
        ),
        case("POST", "/plugins/sw-nx-plugin/push", Op("plugin.push")),
        with_body(
            "POST",
            "/plugins/sw-nx-plugin/upgrade?remote=INVALID",
            "[]",
            Op("plugin.upgrade"),
        ),
        with_body("POST", "/plugins/sw-nx-plugin/set", "[]", Op("plugin.set")),
        case("POST", "/plugins/create?name=INVALID", Op("plugin.create")),
        case("POST", "/plugins", Unknown),
        case("GET", "/plugins/sw-nx-plugin", Unknown),
        // ---- distribution
        case(
            "GET",
            "/distribution/INVALID/json",
            Op("distribution.inspect"),
        ),
        case("GET", "/distribution/INVALID", Unknown),
        // ---- refused, and the daemon agrees the target is not a plain route
        case("GET", "//containers/json", Refused),
        case("GET", "/containers//json", Refused),
        case("GET", "/containers/../_ping", Refused),
        case("GET", "/v1.41/containers/../_ping", Refused),
        case("GET", "/containers/./json", Refused),
        case("GET", "/containers/%2E%2E/_ping", Refused),
        case("GET", "/containers/%2e/json", Refused),
        case("GET", "/containers/%2Fweb/json", Refused),
        case("GET", "/containers/sw-nx/..", Refused),
        case("GET", "/containers/json/", Refused),
        case("GET", "/_ping/", Refused),
        case("GET", "/containers/%zz/json", Refused),
        case("GET", "/containers/%4/json", Refused),
        case("GET", "/containers/sw-nx%", Refused),
        case("GET", "/containers/json?all=1;x=y", Refused),
        case("GET", "/containers/json?all=%zz", Refused),
        case("GET", "/v/_ping", Refused),
        case("GET", "/V1.41/_ping", Refused),
        case("GET", "/v1.41", Refused),
        case("GET", "/v1..41/_ping", Refused),
        case("GET", "/v1.41.1/_ping", Refused),
        case("GET", "/v1/_ping", Refused),
        case("GET", "/v1.11/version", Refused),
        case("GET", "/v99999999999999999999.41/_ping", Refused),
        case("get", "/_ping", Refused),
        case("Get", "/containers/json", Refused),
        case("TRACE", "/_ping", Refused),
        // ---- refused by design: the daemon would serve these
        case(
            "GET",
            "/containers/sw-nx%2Fb/json",
            RefusedByDesign(
                "the daemon decodes %2F into the name (sw-nx/b); a raw / reaches the same name",
            ),
        ),
        case(
            "GET",
            "/containers/sw-nx%252Fb/json",
            RefusedByDesign(
                "double encoding: the daemon decodes once, the name would hold a literal %2F",
            ),
        ),
        case(
            "GET",
            "/containers/sw.%2Enx/json",
            RefusedByDesign("encoded dots are refused even inside a name"),
        ),
        case(
            "GET",
            "/containers/sw-nx%00x/json",
            RefusedByDesign("control bytes in names"),
        ),
        case(
            "GET",
            "/containers/sw-nx%0Ax/json",
            RefusedByDesign("control bytes in names"),
        ),
        case(
            "GET",
            "/containers/sw-nx%5Cx/json",
            RefusedByDesign("backslashes in names"),
        ),
        case(
            "GET",
            "/containers/sw-nx\\x/json",
            RefusedByDesign("backslashes in names"),
        ),
        case(
            "GET",
            "/containers/sw-nx%C3%A9/json",
            RefusedByDesign("non-ASCII: no Docker object name can hold it"),
        ),
        case(
            "GET",
            "/containers/sw-nx\u{e9}/json",
            RefusedByDesign("non-ASCII: no Docker object name can hold it"),
        ),
        case(
            "GET",
            "/volumes/",
            RefusedByDesign("a trailing / addresses the volume named \"\""),
        ),
        case(
            "GET",
            "/networks/sw-nx-net/",
            RefusedByDesign("a trailing / would be part of the network name"),
        ),
        case(
            "DELETE",
            "/containers/",
            RefusedByDesign("a trailing / addresses the container named \"\""),
        ),
        case(
            "DELETE",
            "/images/",
            RefusedByDesign("a trailing / addresses the image named \"\""),
        ),
        case(
            "GET",
            "/v1.23/_ping",
            RefusedByDesign("API versions below 1.24 turn on legacy behaviour"),
        ),
        case(
            "GET",
            "/v1.12/version",
            RefusedByDesign("API versions below 1.24 turn on legacy behaviour"),
        ),
        case(
            "GET",
            "/_ping?a;b",
            RefusedByDesign("a ';' in any query (ping ignores its query; most routes answer 400)"),
        ),
        case(
            "GET",
            "/containers/json?all=%00",
            RefusedByDesign("control bytes in query values"),
        ),
    ]
}

/// The daemon's answer, as far as routing is concerned.
#[derive(Debug)]
struct Answer {
    status: u16,
    api_version: Option<String>,
    location: Option<String>,
    /// The body of an error answer (not read for 1xx/2xx: they may stream forever).
    body: String,
}

impl Answer {
    /// The router's own "no route": 404 `{"message":"page not found"}` (never through the
    /// middlewares, so no `Api-Version`; a HEAD answer carries no body to check).
    fn page_not_found(&self, method: &str) -> bool {
        match self.status {
            405 => true,
            404 if method == "HEAD" => self.api_version.is_none(),
            404 => self.body.contains("page not found"),
            _ => false,
        }
    }

    fn summary(&self) -> String {
        let mut text = self.status.to_string();
        if let Some(location) = &self.location {
            text.push_str(&format!(" -> {location}"));
        }
        let body = self.body.trim();
        if self.status >= 300 && !body.is_empty() {
            let short: String = body
                .chars()
                .take(90)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            text.push_str(&format!(" {short}"));
        }
        text
    }
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// One request on a fresh connection, raw HTTP/1.1.
fn send(sock: &str, case: &Case) -> Answer {
    let mut stream = UnixStream::connect(sock)
        .unwrap_or_else(|e| panic!("cannot connect to the daemon at {sock}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "{} {} HTTP/1.1\r\nHost: docker\r\nUser-Agent: sockwarden-route-differential\r\nConnection: close\r\n",
        case.method, case.target
    );
    let body = case.body.unwrap_or("");
    if case.body.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    if case.body.is_some() || matches!(case.method, "POST" | "PUT") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();

    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_len = loop {
        if let Some(end) = header_end(&buf) {
            break end;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break buf.len(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{} {}: no HTTP status from the daemon: {head:?}",
                case.method, case.target
            )
        });
    let mut api_version = None;
    let mut location = None;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "api-version" => api_version = Some(value),
            "location" => location = Some(value),
            "content-length" => content_length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let mut body = buf[head_len..].to_vec();
    if status >= 300 && case.method != "HEAD" {
        let limit = content_length.unwrap_or(64 * 1024).min(64 * 1024);
        while body.len() < limit {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    }
    Answer {
        status,
        api_version,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Our reading of a case: `Ok(operation name, object)` or `Err(refusal message)`.
fn ours(case: &Case) -> Result<(String, Option<String>), String> {
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    let uri: Uri = case
        .target
        .parse()
        .unwrap_or_else(|e| panic!("{}: not a valid request target for http: {e}", case.target));
    let normalized = route::normalize(&method, &uri).map_err(|e| e.to_string())?;
    let op = route::classify(&method, &normalized.path, &normalized.query);
    Ok((op.name.to_owned(), op.object))
}

/// The daemon's API version (from `/_ping`).
fn daemon_api(sock: &str) -> ApiVersion {
    let answer = send(sock, &case("GET", "/_ping", Op("system.ping")));
    assert_eq!(answer.status, 200, "GET /_ping: {answer:?}");
    let text = answer
        .api_version
        .expect("the daemon's /_ping has no Api-Version");
    ApiVersion::parse(&text).unwrap_or_else(|e| panic!("daemon Api-Version {text:?}: {e}"))
}

#[test]
fn classifier_agrees_with_the_daemon() {
    let sock = std::env::var("SOCKWARDEN_TEST_DOCKER_SOCK").unwrap_or_else(|_| {
        panic!(
            "SOCKWARDEN_TEST_DOCKER_SOCK is not set: this test needs a real, throw-away Docker \
             daemon socket. Run it through scripts/test.sh (as root), which starts a private \
             dockerd and sets the variable, or point it at a daemon of your own."
        )
    });
    let daemon = daemon_api(&sock);
    let cases = catalogue();
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    println!("daemon API {daemon}; {} cases", cases.len());
    for case in &cases {
        let what = format!("{} {}", case.method, case.target);
        let mine = ours(case);
        let answer = send(&sock, case);
        let pnf = answer.page_not_found(case.method);
        let verdict = match (&mine, case.expect) {
            (Ok((name, object)), _) => format!("{name} {}", object.as_deref().unwrap_or("-")),
            (Err(_), RefusedByDesign(why)) => format!("refused by design ({why})"),
            (Err(_), _) => "refused".to_owned(),
        };
        println!("{what:<50} {verdict:<44} daemon: {}", answer.summary());

        // 1. Our own answer is the one the catalogue pins.
        let expected_name = match case.expect {
            Op(n) | OpSince(n, _) | OpEither(n) => Some(n),
            Unknown => Some(route::UNKNOWN),
            Refused | RefusedByDesign(_) => None,
        };
        match (&mine, expected_name) {
            (Ok((name, _)), Some(want)) if name == want => {}
            (Err(_), None) => {}
            _ => {
                failures.push(format!(
                    "{what}: we say {verdict}, the catalogue says {:?} ({:?})",
                    case.expect, mine
                ));
                continue;
            }
        }
        if let Some(name) = expected_name {
            covered.insert(name);
        }

        // 2. The daemon agrees.
        let routed_ok = !pnf;
        let problem = match case.expect {
            Op(_) if !routed_ok => Some("we classify an operation, the daemon says page not found"),
            OpSince(_, (major, minor)) => {
                let since = ApiVersion::new(major, minor);
                if daemon >= since && pnf {
                    Some("the daemon is new enough for this route but says page not found")
                } else if daemon < since && !pnf {
                    Some("the daemon predates this route but routed it")
                } else {
                    None
                }
            }
            Unknown if !pnf => Some("we classify unknown, the daemon routed it"),
            Refused if !(pnf || answer.status == 301 || answer.status == 400) => {
                Some("we refuse, but the daemon treats it as an ordinary route")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            failures.push(format!("{what}: {problem}: {}", answer.summary()));
            continue;
        }

        // 3. When the daemon names the object it could not find, it is the one we extracted.
        if let (Ok((_, Some(object))), true) =
            (&mine, case.names_object && answer.status == 404 && !pnf)
        {
            let body = answer.body.to_lowercase();
            if !body.trim().is_empty() && !body.contains(&object.to_lowercase()) {
                failures.push(format!(
                    "{what}: we read the object {object:?}, the daemon answered {}",
                    answer.summary()
                ));
            }
        }
    }

    assert!(
        failures.is_empty(),
        "{} disagreement(s) with the daemon:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every operation (and `unknown`) is exercised.
    let missing: Vec<&str> = route::OPERATIONS
        .iter()
        .copied()
        .filter(|name| !covered.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a differential case: {missing:?}"
    );
}
