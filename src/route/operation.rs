//! Classification of a normalized request into a named operation, following the daemon's
//! router: the routes of `routes.tsv` in registration order, gorilla/mux semantics (the first
//! route whose method and path both match wins; `{name:.*}` is greedy and may contain `/` or be
//! empty, `{name:.+}` likewise but non-empty, `{id}` is `[^/]+`).

use std::fmt;

use http::Method;

use super::query::Query;
use super::Hijack;

/// What an operation does, coarsely (the `access` column of `routes.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Reads state (possibly secrets or file contents: see [`OperationInfo::dangerous`]).
    Read,
    /// Changes state.
    Write,
    /// Runs or feeds a process inside a container (exec, attach: carries stdin).
    Exec,
    /// Opens an opaque tunnel the proxy cannot inspect (BuildKit h2c sessions).
    Tunnel,
}

impl Access {
    /// `read`, `write`, `exec` or `tunnel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Exec => "exec",
            Access::Tunnel => "tunnel",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One named operation and its fixed properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationInfo {
    /// The name policies use (`container.inspect`).
    pub name: &'static str,
    /// Its access class.
    pub access: Access,
    /// Whether it exfiltrates data, escalates privileges or tunnels past inspection, so that a
    /// wildcard policy rule must not open it without an explicit acknowledgement.
    pub dangerous: bool,
    /// The daemon routes it stands for, for documentation and messages.
    pub routes: &'static str,
}

const fn op(
    name: &'static str,
    access: Access,
    dangerous: bool,
    routes: &'static str,
) -> OperationInfo {
    OperationInfo {
        name,
        access,
        dangerous,
        routes,
    }
}

use Access::{Exec as X, Read as R, Tunnel as T, Write as W};

/// The name of the operation for anything the daemon does not route (it answers 404 "page not
/// found"), including a known path with the wrong method.
pub const UNKNOWN: &str = "unknown";

/// Every operation name, with its access class and whether it is dangerous.
///
/// Dangerous, and why:
/// - file and image contents leave the daemon: `container.archive.get`/`.head` (file metadata),
///   `container.export`, `container.copy`, `container.commit` (also writes a tag),
///   `image.save`, `image.push`, `plugin.push`;
/// - stdin or a process inside a container: `exec.create`, `exec.start`, `container.attach`,
///   `container.attach.websocket`;
/// - writes the proxy cannot inspect or that hijack names others use: `container.archive.put`
///   (files into a container), `image.load`, `image.import` (also `fromSrc=URL`: the daemon
///   downloads), `image.tag` (can re-point `busybox:latest` at anything), `image.build` (runs
///   build steps configured by query parameters, fetches `remote=` URLs);
/// - tunnels: `build.session`, `build.grpc` (BuildKit entitlements travel inside);
/// - the daemon itself: `system.debug` (pprof, expvar with the daemon's command line),
///   `system.auth` (the daemon logs in to a registry with client credentials);
/// - host paths: `container.checkpoint.*` (`CheckpointDir` / `dir=` name host directories the
///   daemon writes, lists or deletes);
/// - the swarm: `swarm.inspect` (returns the manager and worker join tokens),
///   `swarm.unlockkey`, every swarm write (`init`, `join`, `leave`, `update`, `unlock`),
///   `node.update` (role promotion), `node.delete`, `service.create`, `service.update` (the spec is
///   inspected like a container's, but its tasks run on every node of the swarm);
/// - every plugin write (`pull`, `create`, `enable`, `set`, `upgrade` install or configure code
///   running as root; `disable`/`delete` can remove an authorization plugin);
/// - `unknown`: a route this table does not know may be newer than it.
///
/// Not dangerous on purpose: `container.create`, `container.update`, `volume.create`,
/// `network.create`/`connect` (their bodies are inspected field by field), the prunes and
/// deletes (destructive but scoped by the policy's owner filters), `secret.inspect` (the daemon
/// never returns secret data), `config.inspect`, `distribution.inspect`, `image.pull`.
pub const OPERATION_TABLE: &[OperationInfo] = &[
    op("container.list", R, false, "GET /containers/json"),
    op("container.create", W, false, "POST /containers/create"),
    op("container.inspect", R, false, "GET /containers/{name}/json"),
    op("container.top", R, false, "GET /containers/{name}/top"),
    op("container.logs", R, false, "GET /containers/{name}/logs"),
    op("container.stats", R, false, "GET /containers/{name}/stats"),
    op(
        "container.changes",
        R,
        false,
        "GET /containers/{name}/changes",
    ),
    op("container.export", R, true, "GET /containers/{name}/export"),
    op(
        "container.archive.get",
        R,
        true,
        "GET /containers/{name}/archive",
    ),
    op(
        "container.archive.head",
        R,
        true,
        "HEAD /containers/{name}/archive",
    ),
    op(
        "container.archive.put",
        W,
        true,
        "PUT /containers/{name}/archive",
    ),
    op("container.start", W, false, "POST /containers/{name}/start"),
    op("container.stop", W, false, "POST /containers/{name}/stop"),
    op(
        "container.restart",
        W,
        false,
        "POST /containers/{name}/restart",
    ),
    op("container.kill", W, false, "POST /containers/{name}/kill"),
    op("container.pause", W, false, "POST /containers/{name}/pause"),
    op(
        "container.unpause",
        W,
        false,
        "POST /containers/{name}/unpause",
    ),
    op("container.wait", R, false, "POST /containers/{name}/wait"),
    op(
        "container.resize",
        W,
        false,
        "POST /containers/{name}/resize",
    ),
    op(
        "container.attach",
        X,
        true,
        "POST /containers/{name}/attach",
    ),
    op(
        "container.attach.websocket",
        X,
        true,
        "GET /containers/{name}/attach/ws",
    ),
    op(
        "container.rename",
        W,
        false,
        "POST /containers/{name}/rename",
    ),
    op(
        "container.update",
        W,
        false,
        "POST /containers/{name}/update",
    ),
    op("container.prune", W, false, "POST /containers/prune"),
    op("container.delete", W, false, "DELETE /containers/{name}"),
    op("container.commit", W, true, "POST /commit"),
    op(
        "container.copy",
        R,
        true,
        "POST /containers/{name}/copy (API < 1.24)",
    ),
    op(
        "container.checkpoint.list",
        R,
        true,
        "GET /containers/{name}/checkpoints",
    ),
    op(
        "container.checkpoint.create",
        W,
        true,
        "POST /containers/{name}/checkpoints",
    ),
    op(
        "container.checkpoint.delete",
        W,
        true,
        "DELETE /containers/{name}/checkpoints/{checkpoint}",
    ),
    op("exec.create", X, true, "POST /containers/{name}/exec"),
    op("exec.start", X, true, "POST /exec/{id}/start"),
    op("exec.resize", W, false, "POST /exec/{id}/resize"),
    op("exec.inspect", R, false, "GET /exec/{id}/json"),
    op("image.list", R, false, "GET /images/json"),
    op("image.search", R, false, "GET /images/search"),
    op(
        "image.save",
        R,
        true,
        "GET /images/get, GET /images/{name}/get",
    ),
    op("image.history", R, false, "GET /images/{name}/history"),
    op("image.inspect", R, false, "GET /images/{name}/json"),
    op(
        "image.attestations",
        R,
        false,
        "GET /images/{name}/attestations (API 1.55)",
    ),
    op("image.load", W, true, "POST /images/load"),
    op(
        "image.pull",
        W,
        false,
        "POST /images/create?fromImage=... (no fromSrc)",
    ),
    op(
        "image.import",
        W,
        true,
        "POST /images/create otherwise (fromSrc=...)",
    ),
    op("image.push", W, true, "POST /images/{name}/push"),
    op("image.tag", W, true, "POST /images/{name}/tag"),
    op("image.prune", W, false, "POST /images/prune"),
    op("image.delete", W, false, "DELETE /images/{name}"),
    op("image.build", W, true, "POST /build"),
    op("build.prune", W, false, "POST /build/prune"),
    op("build.cancel", W, false, "POST /build/cancel"),
    op("build.session", T, true, "POST /session"),
    op("build.grpc", T, true, "POST /grpc"),
    op("system.ping", R, false, "GET /_ping, HEAD /_ping"),
    op("system.events", R, false, "GET /events"),
    op("system.info", R, false, "GET /info"),
    op("system.version", R, false, "GET /version"),
    op("system.df", R, false, "GET /system/df"),
    op("system.auth", W, true, "POST /auth"),
    op("system.options", R, false, "OPTIONS (any path)"),
    op(
        "system.debug",
        R,
        true,
        "any method /debug/vars, /debug/pprof/, /debug/pprof/{name}",
    ),
    op("volume.list", R, false, "GET /volumes"),
    op("volume.inspect", R, false, "GET /volumes/{name}"),
    op("volume.create", W, false, "POST /volumes/create"),
    op("volume.prune", W, false, "POST /volumes/prune"),
    op("volume.update", W, false, "PUT /volumes/{name} (API 1.42)"),
    op("volume.delete", W, false, "DELETE /volumes/{name}"),
    op("network.list", R, false, "GET /networks, GET /networks/"),
    op("network.inspect", R, false, "GET /networks/{id}"),
    op("network.create", W, false, "POST /networks/create"),
    op("network.connect", W, false, "POST /networks/{id}/connect"),
    op(
        "network.disconnect",
        W,
        false,
        "POST /networks/{id}/disconnect",
    ),
    op("network.prune", W, false, "POST /networks/prune"),
    op("network.delete", W, false, "DELETE /networks/{id}"),
    op("swarm.init", W, true, "POST /swarm/init"),
    op("swarm.join", W, true, "POST /swarm/join"),
    op("swarm.leave", W, true, "POST /swarm/leave"),
    op("swarm.inspect", R, true, "GET /swarm"),
    op("swarm.unlockkey", R, true, "GET /swarm/unlockkey"),
    op("swarm.update", W, true, "POST /swarm/update"),
    op("swarm.unlock", W, true, "POST /swarm/unlock"),
    op("service.list", R, false, "GET /services"),
    op("service.inspect", R, false, "GET /services/{id}"),
    op("service.create", W, true, "POST /services/create"),
    op("service.update", W, true, "POST /services/{id}/update"),
    op("service.delete", W, false, "DELETE /services/{id}"),
    op("service.logs", R, false, "GET /services/{id}/logs"),
    op("node.list", R, false, "GET /nodes"),
    op("node.inspect", R, false, "GET /nodes/{id}"),
    op("node.delete", W, true, "DELETE /nodes/{id}"),
    op("node.update", W, true, "POST /nodes/{id}/update"),
    op("task.list", R, false, "GET /tasks"),
    op("task.inspect", R, false, "GET /tasks/{id}"),
    op("task.logs", R, false, "GET /tasks/{id}/logs"),
    op("secret.list", R, false, "GET /secrets"),
    op("secret.create", W, false, "POST /secrets/create"),
    op("secret.delete", W, false, "DELETE /secrets/{id}"),
    op("secret.inspect", R, false, "GET /secrets/{id}"),
    op("secret.update", W, false, "POST /secrets/{id}/update"),
    op("config.list", R, false, "GET /configs"),
    op("config.create", W, false, "POST /configs/create"),
    op("config.delete", W, false, "DELETE /configs/{id}"),
    op("config.inspect", R, false, "GET /configs/{id}"),
    op("config.update", W, false, "POST /configs/{id}/update"),
    op("plugin.list", R, false, "GET /plugins"),
    op("plugin.inspect", R, false, "GET /plugins/{name}/json"),
    op("plugin.privileges", R, false, "GET /plugins/privileges"),
    op("plugin.delete", W, true, "DELETE /plugins/{name}"),
    op("plugin.enable", W, true, "POST /plugins/{name}/enable"),
    op("plugin.disable", W, true, "POST /plugins/{name}/disable"),
    op("plugin.pull", W, true, "POST /plugins/pull"),
    op("plugin.push", W, true, "POST /plugins/{name}/push"),
    op("plugin.upgrade", W, true, "POST /plugins/{name}/upgrade"),
    op("plugin.set", W, true, "POST /plugins/{name}/set"),
    op("plugin.create", W, true, "POST /plugins/create"),
    op(
        "distribution.inspect",
        R,
        false,
        "GET /distribution/{name}/json",
    ),
    op(UNKNOWN, W, true, "anything the daemon does not route"),
];

const OPERATION_COUNT: usize = OPERATION_TABLE.len();

const OPERATION_NAMES: [&str; OPERATION_COUNT] = {
    let mut names = [""; OPERATION_COUNT];
    let mut i = 0;
    while i < OPERATION_COUNT {
        names[i] = OPERATION_TABLE[i].name;
        i += 1;
    }
    names
};

/// Every operation name, in [`OPERATION_TABLE`] order (`unknown` last).
pub const OPERATIONS: &[&str] = &OPERATION_NAMES;

/// Every operation name, in [`OPERATION_TABLE`] order (`unknown` last).
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().copied()
}

/// The table entry for `name`.
pub fn operation_info(name: &str) -> Option<&'static OperationInfo> {
    OPERATION_TABLE.iter().find(|info| info.name == name)
}

/// What a request does, by the daemon's routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// One of [`OPERATIONS`].
    pub name: &'static str,
    /// The route's first variable, percent-decoded (`{name}`, `{id}`; `a/b` in
    /// `/containers/a/b/json`). Use [`super::escape_object`] to put it back into a path.
    pub object: Option<String>,
    /// The second variable (the checkpoint of `container.checkpoint.delete`).
    pub sub: Option<String>,
    /// The access class.
    pub access: Access,
    /// Whether the daemon may take over the connection.
    pub hijack: Option<Hijack>,
}

impl Operation {
    /// Whether the daemon does not route this request.
    pub fn is_unknown(&self) -> bool {
        self.name == UNKNOWN
    }

    /// Whether the operation is dangerous (see [`OPERATION_TABLE`]).
    pub fn is_dangerous(&self) -> bool {
        operation_info(self.name).is_none_or(|info| info.dangerous)
    }

    fn new(name: &'static str, object: Option<String>, sub: Option<String>) -> Operation {
        let access = operation_info(name).map_or(Access::Write, |info| info.access);
        let hijack = match name {
            "container.attach" => Some(Hijack::Attach),
            "container.attach.websocket" => Some(Hijack::AttachWebsocket),
            "exec.start" => Some(Hijack::ExecStart),
            "build.session" => Some(Hijack::Session),
            "build.grpc" => Some(Hijack::Grpc),
            _ => None,
        };
        Operation {
            name,
            object,
            sub,
            access,
            hijack,
        }
    }
}

/// A route as the daemon registers it.
struct Route {
    /// The method, or `None` for any method (the 20.10 debug routes).
    method: Option<Method>,
    pattern: &'static str,
    name: &'static str,
}

const fn route(method: Method, pattern: &'static str, name: &'static str) -> Route {
    Route {
        method: Some(method),
        pattern,
        name,
    }
}

const GET: Method = Method::GET;
const HEAD: Method = Method::HEAD;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

/// Marks `POST /images/create`, which is a pull or an import depending on the query.
const IMAGE_CREATE: &str = "image.pull";

/// Every route, in the daemon's match order (`routes.tsv`). `OPTIONS /{anyroute:.*}` is handled
/// before this table: no other route takes OPTIONS, so its position does not matter.
const ROUTES: &[Route] = &[
    // checkpoints: registered before the container router, or its DELETE would be masked.
    route(
        GET,
        "/containers/{name:.*}/checkpoints",
        "container.checkpoint.list",
    ),
    route(
        POST,
        "/containers/{name:.*}/checkpoints",
        "container.checkpoint.create",
    ),
    route(
        DELETE,
        "/containers/{name}/checkpoints/{checkpoint}",
        "container.checkpoint.delete",
    ),
    // containers
    route(
        HEAD,
        "/containers/{name:.*}/archive",
        "container.archive.head",
    ),
    route(GET, "/containers/json", "container.list"),
    route(GET, "/containers/{name:.*}/export", "container.export"),
    route(GET, "/containers/{name:.*}/changes", "container.changes"),
    route(GET, "/containers/{name:.*}/json", "container.inspect"),
    route(GET, "/containers/{name:.*}/top", "container.top"),
    route(GET, "/containers/{name:.*}/logs", "container.logs"),
    route(GET, "/containers/{name:.*}/stats", "container.stats"),
    route(
        GET,
        "/containers/{name:.*}/attach/ws",
        "container.attach.websocket",
    ),
    route(GET, "/exec/{id:.*}/json", "exec.inspect"),
    route(
        GET,
        "/containers/{name:.*}/archive",
        "container.archive.get",
    ),
    route(POST, "/containers/create", "container.create"),
    route(POST, "/containers/{name:.*}/kill", "container.kill"),
    route(POST, "/containers/{name:.*}/pause", "container.pause"),
    route(POST, "/containers/{name:.*}/unpause", "container.unpause"),
    route(POST, "/containers/{name:.*}/restart", "container.restart"),
    route(POST, "/containers/{name:.*}/start", "container.start"),
    route(POST, "/containers/{name:.*}/stop", "container.stop"),
    route(POST, "/containers/{name:.*}/wait", "container.wait"),
    route(POST, "/containers/{name:.*}/resize", "container.resize"),
    route(POST, "/containers/{name:.*}/attach", "container.attach"),
    route(POST, "/containers/{name:.*}/exec", "exec.create"),
    route(POST, "/exec/{name:.*}/start", "exec.start"),
    route(POST, "/exec/{name:.*}/resize", "exec.resize"),
    route(POST, "/containers/{name:.*}/rename", "container.rename"),
    route(POST, "/containers/{name:.*}/update", "container.update"),
    route(POST, "/containers/prune", "container.prune"),
    route(POST, "/commit", "container.commit"),
    route(
        PUT,
        "/containers/{name:.*}/archive",
        "container.archive.put",
    ),
    route(DELETE, "/containers/{name:.*}", "container.delete"),
    // images
    route(GET, "/images/json", "image.list"),
    route(GET, "/images/search", "image.search"),
    route(GET, "/images/get", "image.save"),
    route(GET, "/images/{name:.*}/get", "image.save"),
    route(GET, "/images/{name:.*}/history", "image.history"),
    route(GET, "/images/{name:.*}/json", "image.inspect"),
    route(GET, "/images/{name:.*}/attestations", "image.attestations"),
    route(POST, "/images/load", "image.load"),
    route(POST, "/images/create", IMAGE_CREATE),
    route(POST, "/images/{name:.*}/push", "image.push"),
    route(POST, "/images/{name:.*}/tag", "image.tag"),
    route(POST, "/images/prune", "image.prune"),
    route(DELETE, "/images/{name:.*}", "image.delete"),
    // system
    route(GET, "/_ping", "system.ping"),
    route(HEAD, "/_ping", "system.ping"),
    route(GET, "/events", "system.events"),
    route(GET, "/info", "system.info"),
    route(GET, "/version", "system.version"),
    route(GET, "/system/df", "system.df"),
    route(POST, "/auth", "system.auth"),
    // volumes
    route(GET, "/volumes", "volume.list"),
    route(GET, "/volumes/{name:.*}", "volume.inspect"),
    route(POST, "/volumes/create", "volume.create"),
    route(POST, "/volumes/prune", "volume.prune"),
    route(PUT, "/volumes/{name:.*}", "volume.update"),
    route(DELETE, "/volumes/{name:.*}", "volume.delete"),
    // build
    route(POST, "/build", "image.build"),
    route(POST, "/build/prune", "build.prune"),
    route(POST, "/build/cancel", "build.cancel"),
    // session
    route(POST, "/session", "build.session"),
    // swarm
    route(POST, "/swarm/init", "swarm.init"),
    route(POST, "/swarm/join", "swarm.join"),
    route(POST, "/swarm/leave", "swarm.leave"),
    route(GET, "/swarm", "swarm.inspect"),
    route(GET, "/swarm/unlockkey", "swarm.unlockkey"),
    route(POST, "/swarm/update", "swarm.update"),
    route(POST, "/swarm/unlock", "swarm.unlock"),
    route(GET, "/services", "service.list"),
    route(GET, "/services/{id}", "service.inspect"),
    route(POST, "/services/create", "service.create"),
    route(POST, "/services/{id}/update", "service.update"),
    route(DELETE, "/services/{id}", "service.delete"),
    route(GET, "/services/{id}/logs", "service.logs"),
    route(GET, "/nodes", "node.list"),
    route(GET, "/nodes/{id}", "node.inspect"),
    route(DELETE, "/nodes/{id}", "node.delete"),
    route(POST, "/nodes/{id}/update", "node.update"),
    route(GET, "/tasks", "task.list"),
    route(GET, "/tasks/{id}", "task.inspect"),
    route(GET, "/tasks/{id}/logs", "task.logs"),
    route(GET, "/secrets", "secret.list"),
    route(POST, "/secrets/create", "secret.create"),
    route(DELETE, "/secrets/{id}", "secret.delete"),
    route(GET, "/secrets/{id}", "secret.inspect"),
    route(POST, "/secrets/{id}/update", "secret.update"),
    route(GET, "/configs", "config.list"),
    route(POST, "/configs/create", "config.create"),
    route(DELETE, "/configs/{id}", "config.delete"),
    route(GET, "/configs/{id}", "config.inspect"),
    route(POST, "/configs/{id}/update", "config.update"),
    // plugins
    route(GET, "/plugins", "plugin.list"),
    route(GET, "/plugins/{name:.*}/json", "plugin.inspect"),
    route(GET, "/plugins/privileges", "plugin.privileges"),
    route(DELETE, "/plugins/{name:.*}", "plugin.delete"),
    route(POST, "/plugins/{name:.*}/enable", "plugin.enable"),
    route(POST, "/plugins/{name:.*}/disable", "plugin.disable"),
    route(POST, "/plugins/pull", "plugin.pull"),
    route(POST, "/plugins/{name:.*}/push", "plugin.push"),
    route(POST, "/plugins/{name:.*}/upgrade", "plugin.upgrade"),
    route(POST, "/plugins/{name:.*}/set", "plugin.set"),
    route(POST, "/plugins/create", "plugin.create"),
    // distribution
    route(GET, "/distribution/{name:.*}/json", "distribution.inspect"),
    // networks
    route(GET, "/networks", "network.list"),
    route(GET, "/networks/", "network.list"),
    route(GET, "/networks/{id:.+}", "network.inspect"),
    route(POST, "/networks/create", "network.create"),
    route(POST, "/networks/{id:.*}/connect", "network.connect"),
    route(POST, "/networks/{id:.*}/disconnect", "network.disconnect"),
    route(POST, "/networks/prune", "network.prune"),
    route(DELETE, "/networks/{id:.*}", "network.delete"),
    // debug: 20.10 registers these unversioned and for any method, after every API route;
    // master under both prefixes. A versioned debug path is classified as debug too (the safe
    // reading), although 20.10 answers it 404.
    Route {
        method: None,
        pattern: "/debug/vars",
        name: "system.debug",
    },
    Route {
        method: None,
        pattern: "/debug/pprof/",
        name: "system.debug",
    },
    Route {
        method: None,
        pattern: "/debug/pprof/{name}",
        name: "system.debug",
    },
    // grpc
    route(POST, "/grpc", "build.grpc"),
    // API < 1.24 only (normalize refuses those versions); the route still exists on 20.10.
    route(POST, "/containers/{name:.*}/copy", "container.copy"),
];

/// Classifies a request. `path` is [`super::Normalized::path`] (decoded, version prefix
/// removed); the query only matters for `POST /images/create`, which the daemon treats as a
/// pull when `fromImage` is non-empty and as an import otherwise: it is `image.pull` only when
/// `fromImage` is non-empty and there is no `fromSrc` at all, and `image.import` in every other
/// case (the more dangerous reading of an odd mix).
pub fn classify(method: &Method, path: &str, query: &Query) -> Operation {
    if *method == Method::OPTIONS {
        return Operation::new("system.options", None, None);
    }
    for route in ROUTES {
        if route.method.as_ref().is_some_and(|m| m != method) {
            continue;
        }
        let lead = route.pattern.split('{').next().unwrap_or(route.pattern);
        if !path.starts_with(lead) {
            continue;
        }
        let Some(mut captures) = match_pattern(route.pattern, path) else {
            continue;
        };
        let mut name = route.name;
        if name == IMAGE_CREATE {
            let pull = query
                .get("fromImage")
                .is_some_and(|image| !image.is_empty())
                && !query.contains("fromSrc");
            name = if pull { "image.pull" } else { "image.import" };
        }
        let sub = if captures.len() > 1 {
            captures.pop()
        } else {
            None
        };
        let object = captures.pop();
        return Operation::new(name, object, sub);
    }
    Operation::new(UNKNOWN, None, None)
}

/// A piece of a route pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'p> {
    Literal(&'p str),
    /// `{x:.*}`: anything, `/` included, possibly empty.
    Any,
    /// `{x:.+}`: anything, `/` included, not empty.
    AnyNonEmpty,
    /// `{x}`: `[^/]+`.
    Segment,
}

/// Splits a gorilla pattern into tokens; `None` for a pattern this matcher does not support.
fn tokens(pattern: &str) -> Option<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}')?;
                let var = rest.get(1..end)?;
                let token = match var.split_once(':') {
                    None => Token::Segment,
                    Some((_, ".*")) => Token::Any,
                    Some((_, ".+")) => Token::AnyNonEmpty,
                    Some(_) => return None,
                };
                out.push(token);
                rest = rest.get(end + 1..)?;
            }
            Some(start) => {
                out.push(Token::Literal(rest.get(..start)?));
                rest = rest.get(start..)?;
            }
            None => {
                out.push(Token::Literal(rest));
                rest = "";
            }
        }
    }
    Some(out)
}

/// Matches `path` against a gorilla pattern (anchored at both ends), returning the variables.
/// Variables are tried longest first, as Go's regexp (leftmost-first, greedy) would bind them.
/// One difference: Go's `.` does not match `\n` (the daemon answers "page not found" to
/// `/containers/a%0Ab/json`); normalized paths never hold control bytes, so it cannot matter.
fn match_pattern<'a>(pattern: &str, path: &'a str) -> Option<Vec<String>> {
    let tokens = tokens(pattern)?;
    let mut captures: Vec<&'a str> = Vec::new();
    if match_tokens(&tokens, path, &mut captures) {
        Some(captures.into_iter().map(str::to_owned).collect())
    } else {
        None
    }
}

fn match_tokens<'a>(tokens: &[Token<'_>], path: &'a str, captures: &mut Vec<&'a str>) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return path.is_empty();
    };
    match *first {
        Token::Literal(literal) => path
            .strip_prefix(literal)
            .is_some_and(|remaining| match_tokens(rest, remaining, captures)),
        Token::Any | Token::AnyNonEmpty | Token::Segment => {
            let longest = match first {
                Token::Segment => path.find('/').unwrap_or(path.len()),
                _ => path.len(),
            };
            let shortest = usize::from(*first != Token::Any);
            for end in (shortest..=longest).rev() {
                let (Some(value), Some(remaining)) = (path.get(..end), path.get(end..)) else {
                    continue;
                };
                captures.push(value);
                if match_tokens(rest, remaining, captures) {
                    return true;
                }
                captures.pop();
            }
            false
        }
    }
}

#[cfg(test)]
pub(super) fn route_table() -> Vec<(Option<Method>, &'static str, &'static str)> {
    ROUTES
        .iter()
        .map(|r| (r.method.clone(), r.pattern, r.name))
        .collect()
}

#[cfg(test)]
pub(super) fn pattern_tokens_ok(pattern: &str) -> bool {
    tokens(pattern).is_some()
}
