//! Classification of a normalized request into a named operation, following the daemon's
//! router: the routes of `routes.tsv` in registration order, gorilla/mux semantics (the first
//! route whose method and path both match wins; `{name:.*}` is greedy and may contain `/` or be
//! empty, `{name:.+}` likewise but non-empty, `{id}` is `[^/]+`).

use http::Method;

use super::query::Query;
use super::table::{operation_info, Access, OperationInfo, UNKNOWN, UNKNOWN_INFO};
use super::Hijack;

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
    /// Every fixed fact about the operation.
    pub info: &'static OperationInfo,
}

impl Operation {
    /// Whether the daemon does not route this request.
    pub fn is_unknown(&self) -> bool {
        self.name == UNKNOWN
    }

    /// Whether the operation is dangerous (see [`OperationInfo::danger`]).
    pub fn is_dangerous(&self) -> bool {
        self.info.dangerous()
    }

    fn new(name: &'static str, object: Option<String>, sub: Option<String>) -> Operation {
        Operation::with_info(operation_info(name).unwrap_or(&UNKNOWN_INFO), object, sub)
    }

    fn with_info(
        info: &'static OperationInfo,
        object: Option<String>,
        sub: Option<String>,
    ) -> Operation {
        Operation {
            name: info.name,
            object,
            sub,
            access: info.access,
            hijack: info.hijack,
            info,
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
    for route in compiled() {
        if route.method.as_ref().is_some_and(|m| m != method) || !path.starts_with(route.lead) {
            continue;
        }
        let mut captures: Vec<&str> = Vec::new();
        if !match_tokens(&route.tokens, path, &mut captures) {
            continue;
        }
        let info = if route.name == IMAGE_CREATE {
            let pull = query
                .get("fromImage")
                .is_some_and(|image| !image.is_empty())
                && !query.contains("fromSrc");
            if pull {
                route.info
            } else {
                route.import_info
            }
        } else {
            route.info
        };
        let mut captures = captures.into_iter().map(str::to_owned);
        let object = captures.next();
        let sub = captures.next();
        return Operation::with_info(info, object, sub);
    }
    Operation::new(UNKNOWN, None, None)
}

/// A route made ready for matching once, at first use: its literal lead (a cheap first test),
/// its tokens and its operation's facts, so classifying a request neither re-parses patterns
/// nor searches the operation table by name.
struct Compiled {
    method: Option<Method>,
    lead: &'static str,
    tokens: Vec<Token<'static>>,
    name: &'static str,
    info: &'static OperationInfo,
    /// For `POST /images/create` only: the facts of its import reading.
    import_info: &'static OperationInfo,
}

/// [`ROUTES`], compiled; a pattern this matcher does not support never matches (a test checks
/// there is none).
fn compiled() -> &'static [Compiled] {
    static COMPILED: std::sync::LazyLock<Vec<Compiled>> = std::sync::LazyLock::new(|| {
        ROUTES
            .iter()
            .filter_map(|route| {
                Some(Compiled {
                    method: route.method.clone(),
                    lead: route.pattern.split('{').next().unwrap_or(route.pattern),
                    tokens: tokens(route.pattern)?,
                    name: route.name,
                    info: operation_info(route.name).unwrap_or(&UNKNOWN_INFO),
                    import_info: operation_info("image.import").unwrap_or(&UNKNOWN_INFO),
                })
            })
            .collect()
    });
    &COMPILED
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

/// Matches `path` against a gorilla pattern's tokens (anchored at both ends), collecting the
/// variables. Variables are tried longest first, as Go's regexp (leftmost-first, greedy) would
/// bind them. One difference: Go's `.` does not match `\n` (the daemon answers "page not found"
/// to `/containers/a%0Ab/json`); normalized paths never hold control bytes, so it cannot matter.
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
