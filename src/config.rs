//! Configuration: the TOML file as written (`Raw*`, unknown keys refused), and the validated
//! [`Config`] the rest of the program uses. Every error names the setting it is about, so a
//! typo is a one-line message and exit status 2, never a silent fallback to a default.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::identity::{ClientDef, ListenerClients, RawClient};
pub use crate::listener::ListenAddr;
use crate::policy::{Authority, RawPolicy, BUILTIN_DEFAULT_PROFILE};

/// Where the real Docker daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    /// A unix socket path (the usual `/var/run/docker.sock`).
    Unix(PathBuf),
    /// A plain-HTTP TCP endpoint, `host:port`.
    Tcp(String),
}

impl std::fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            UpstreamAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Settings for talking to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The daemon's address.
    pub addr: UpstreamAddr,
    /// Limit on establishing one upstream connection.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// How many idle pooled connections are kept.
    pub pool_max_idle: usize,
    /// Where classic builds' per-build cgroups are made (`crate::buildcgroup`): found by
    /// itself (the default), nowhere, or a directory.
    pub build_cgroup: crate::buildcgroup::Setting,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A listener and how it attributes connections to clients.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Where.
    pub addr: ListenAddr,
    /// Fixed client or fallback.
    pub clients: ListenerClients,
    /// The name a socket passed by systemd carries for this entry (`FileDescriptorName=`).
    pub name: Option<Arc<str>>,
    /// Whether the socket may, must or must not come from systemd.
    pub activation: crate::listener::activation::Activation,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The real daemon.
    pub upstream: UpstreamConfig,
    /// Where clients connect.
    pub listeners: Vec<Listen>,
    /// Clients and their policies.
    pub authority: Arc<Authority>,
    /// Limit on reading one request head.
    pub header_read_timeout: Duration,
    /// Longest wait for more of a request body (see [`crate::body::ReadDeadline`]).
    pub body_read_timeout: Duration,
    /// Most client connections open at once, all clients together (`None`: derived from the
    /// descriptor limit at start, see [`crate::limits::connection_budget`]).
    pub max_connections: Option<usize>,
    /// Connection worker threads (`None`: one per CPU this process may use; see `workers`).
    pub workers: Option<usize>,
    /// Pin each worker to its own CPU when there is one per CPU this process may use.
    pub pin_workers: bool,
    /// How long in-flight work may go on after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// The audit log.
    pub audit: crate::audit::AuditSettings,
    /// The admin listener (health, readiness, metrics, reload), if any.
    pub admin: Option<ListenAddr>,
    /// Per-client limits.
    pub limits: Arc<crate::limits::Limits>,
    /// Where the image IDs sockwarden made for tenants are recorded (`[isolation]
    /// image_ledger`; see [`crate::isolation::ledger`]).
    pub image_ledger: PathBuf,
}

impl Config {
    /// The listen entries as socket activation matches them.
    pub fn activation_entries(&self) -> Vec<crate::listener::activation::Entry<'_>> {
        self.listeners
            .iter()
            .map(|l| crate::listener::activation::Entry {
                addr: &l.addr,
                name: l.name.as_deref(),
                activation: l.activation,
            })
            .collect()
    }
}

// === raw file ===

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    audit: RawAudit,
    admin: Option<RawAdmin>,
    #[serde(default)]
    limits: crate::limits::RawLimits,
    #[serde(default)]
    listen: Vec<RawListen>,
    #[serde(default)]
    client: Vec<RawClient>,
    #[serde(default)]
    policy: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    isolation: RawIsolation,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIsolation {
    owner_label: Option<String>,
    image_ledger: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    socket: Option<PathBuf>,
    tcp: Option<String>,
    connect_timeout: Option<String>,
    pool_idle_timeout: Option<String>,
    pool_max_idle: Option<usize>,
    build_cgroup: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    max_connections: Option<usize>,
    workers: Option<usize>,
    pin_workers: Option<bool>,
    shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    unix: Option<PathBuf>,
    tcp: Option<String>,
    mode: Option<String>,
    group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    name: Option<String>,
    activation: Option<crate::listener::activation::Activation>,
    unix: Option<PathBuf>,
    tcp: Option<String>,
    mode: Option<String>,
    group: Option<String>,
    client: Option<String>,
    fallback: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
}

// === defaults ===

/// How long a client may send nothing while sockwarden waits for more of its request body.
/// A minute: far above any pause of a working upload (the CLI streams `docker load` archives
/// and build contexts as it reads them), short enough that a stalled connection's descriptor
/// and buffers come back quickly.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon socket used when neither the config nor `DOCKER_HOST` names one.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// The upstream when nothing is configured: `DOCKER_HOST`'s `unix://` path, else the standard socket.
pub fn default_upstream() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) => match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(DEFAULT_DOCKER_SOCKET),
        },
        Err(_) => PathBuf::from(DEFAULT_DOCKER_SOCKET),
    }
}

/// The listening socket when no config file is given. It must be somewhere the user running
/// sockwarden can create it: `$XDG_RUNTIME_DIR/sockwarden/docker.sock` when that is set,
/// `/run/sockwarden/docker.sock` for root, and `/tmp/sockwarden-<uid>/docker.sock` otherwise.
pub fn default_listen_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&dir).join("sockwarden").join("docker.sock");
    }
    let uid = nix::unistd::Uid::current();
    if uid.is_root() {
        PathBuf::from("/run/sockwarden/docker.sock")
    } else {
        PathBuf::from(format!("/tmp/sockwarden-{uid}/docker.sock"))
    }
}

/// The image ledger's path when `[isolation] image_ledger` is not set: under
/// `/var/lib/sockwarden` for root, under the user's state directory otherwise.
pub fn default_image_ledger() -> PathBuf {
    if nix::unistd::Uid::current().is_root() {
        return PathBuf::from("/var/lib/sockwarden/image-owners");
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&dir).join("sockwarden").join("image-owners");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Path::new(&home).join(".local/state/sockwarden/image-owners"),
        None => PathBuf::from(format!(
            "/tmp/sockwarden-{}/image-owners",
            nix::unistd::Uid::current()
        )),
    }
}

/// Mode of a unix socket nobody configured: only its owner may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

impl Config {
    /// The built-in configuration used without `--config`.
    pub fn builtin() -> Result<Config, ConfigError> {
        validate(RawConfig::default(), true)
    }

    /// The configuration that stands in for a docker-socket-proxy container: its environment
    /// switches become the policy of the client `docker-socket-proxy`, served on TCP
    /// `0.0.0.0:2375` like that image (or `SOCKWARDEN_LISTEN`), meant for a container network.
    pub fn docker_socket_proxy(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        const NAME: &str = "docker-socket-proxy";
        let mut raw = RawConfig::default();
        raw.policy
            .insert(NAME.to_owned(), crate::compat::docker_socket_proxy(env));
        raw.client.push(RawClient {
            name: NAME.to_owned(),
            policy: NAME.to_owned(),
            ..RawClient::default()
        });
        raw.listen.push(RawListen {
            tcp: Some(env("SOCKWARDEN_LISTEN").unwrap_or_else(|| "0.0.0.0:2375".to_owned())),
            client: Some(NAME.to_owned()),
            ..RawListen::default()
        });
        validate(raw, false)
            .map_err(|e| ConfigError(format!("docker-socket-proxy compatibility: {e}")))
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
        validate(raw, false).map_err(|e| {
            let setting = e.0.split(": ").next().unwrap_or_default();
            match locate_entry(text, setting).or_else(|| locate(text, setting)) {
                Some(line) => ConfigError(format!("{origin} line {line}: {e}")),
                None => ConfigError(format!("{origin}: {e}")),
            }
        })
    }
}

/// The line (1-based) where `setting` (`listen[1].group`, `policy.ci.allow`, ...) is written in
/// `text`, or where its table starts; `None` when it is not in the file (a default, a profile).
fn locate(text: &str, setting: &str) -> Option<usize> {
    let segments: Vec<(&str, usize)> = setting
        .split('.')
        .map(|seg| match seg.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse().unwrap_or(0)),
            None => (seg, 0),
        })
        .collect();
    if segments
        .iter()
        .any(|(name, _)| name.is_empty() || name.contains(' '))
    {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    for depth in (1..=segments.len()).rev() {
        let header: Vec<&str> = segments[..depth].iter().map(|(n, _)| *n).collect();
        let header = header.join(".");
        let occurrence = segments[depth - 1].1;
        let found = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let l = l.trim();
                l == format!("[{header}]") || l == format!("[[{header}]]")
            })
            .nth(occurrence);
        let Some((start, _)) = found else { continue };
        let Some((key, _)) = segments.get(depth) else {
            return Some(start + 1);
        };
        let key_line = lines
            .iter()
            .enumerate()
            .skip(start + 1)
            .take_while(|(_, l)| !l.trim_start().starts_with('['))
            .find(|(_, l)| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
        return Some(key_line.map_or(start, |(i, _)| i) + 1);
    }
    None
}

/// The line (1-based) where `setting` (`audit.path`, `listen[1].unix`, `policy.ci.allow[2]`)
/// is written in `text`, or where its table starts.
pub fn line_of(text: &str, setting: &str) -> Option<usize> {
    locate_entry(text, setting).or_else(|| locate(text, setting))
}

/// The line (1-based) of one entry of a policy's operation list: `policy.ci.allow[2]`,
/// `policy.ci.deny[0]`, `policy.ci.allow_dangerous[1]`, `policy.ci.rule[1].operations[0]` (or of the rule itself,
/// `policy.ci.rule[1]`), found from the TOML parser's spans; `None` for anything else.
fn locate_entry(text: &str, setting: &str) -> Option<usize> {
    use toml::Spanned;
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        policy: BTreeMap<String, Policy>,
    }
    #[derive(Deserialize)]
    struct Policy {
        #[serde(default)]
        allow: Vec<Spanned<String>>,
        #[serde(default)]
        deny: Vec<Spanned<String>>,
        #[serde(default)]
        allow_dangerous: Vec<Spanned<String>>,
        #[serde(default)]
        rule: Vec<Spanned<Rule>>,
    }
    #[derive(Deserialize)]
    struct Rule {
        #[serde(default)]
        operations: Vec<Spanned<String>>,
    }
    fn index(segment: &str, name: &str) -> Option<usize> {
        segment
            .strip_prefix(name)?
            .strip_prefix('[')?
            .strip_suffix(']')?
            .parse()
            .ok()
    }
    let rest = setting.strip_prefix("policy.")?;
    let (name, entry) = rest.split_once('.')?;
    let doc: Doc = toml::from_str(text).ok()?;
    let policy = doc.policy.get(name)?;
    let span = if let Some(i) = index(entry, "allow") {
        policy.allow.get(i)?.span()
    } else if let Some(i) = index(entry, "deny") {
        policy.deny.get(i)?.span()
    } else if let Some(i) = index(entry, "allow_dangerous") {
        policy.allow_dangerous.get(i)?.span()
    } else {
        let (rule, operation) = match entry.split_once('.') {
            Some((rule, operation)) => (rule, Some(operation)),
            None => (entry, None),
        };
        let rule = policy.rule.get(index(rule, "rule")?)?;
        match operation {
            Some(operation) => rule
                .get_ref()
                .operations
                .get(index(operation, "operations")?)?
                .span(),
            None => rule.span(),
        }
    };
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// One line for a TOML error: file, line, and what the parser said (which names the key).
fn toml_error(err: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            ConfigError(format!("{origin} line {line}: {message}"))
        }
        None => ConfigError(format!("{origin}: {message}")),
    }
}

fn validate(raw: RawConfig, builtin: bool) -> Result<Config, ConfigError> {
    let upstream = validate_upstream(raw.upstream)?;
    let catalogue = crate::policy::catalogue();
    let client_limits: Vec<(Arc<str>, String, Option<crate::limits::RawLimits>)> = raw
        .client
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                Arc::from(c.name.as_str()),
                format!("client[{i}]"),
                c.limits.clone(),
            )
        })
        .collect();
    let limits = crate::limits::Limits::compile(
        &raw.limits,
        client_limits
            .iter()
            .map(|(name, key, l)| (name.clone(), key.clone(), l.as_ref())),
    )?;
    let mut authority = Authority::compile(raw.client, &raw.policy, &catalogue)?;
    let limits = limits.with_per_user(|client| {
        authority
            .policy_for(client)
            .is_some_and(|p| p.isolation == crate::policy::Isolation::User)
    });
    if let Some(label) = &raw.isolation.owner_label {
        authority = authority.with_owner_label(validate_owner_label(label)?);
    }
    let image_ledger =
        match raw.isolation.image_ledger {
            Some(path) if path.is_absolute() && path.file_name().is_some() => path,
            Some(_) => return Err(ConfigError::setting(
                "isolation.image_ledger",
                "must be an absolute path to a file (e.g. \"/var/lib/sockwarden/image-owners\")",
            )),
            None => default_image_ledger(),
        };
    let listeners = if raw.listen.is_empty() {
        if !builtin {
            return Err(ConfigError::setting(
                "listen",
                "at least one [[listen]] entry is required",
            ));
        }
        // The built-in default: one socket that only its owner can open, under read-only rules.
        let owner = nix::unistd::Uid::current().as_raw();
        authority =
            authority.with_client(ClientDef::owner(owner, BUILTIN_DEFAULT_PROFILE), &catalogue)?;
        vec![Listen {
            addr: ListenAddr::Unix {
                path: default_listen_path(),
                mode: DEFAULT_SOCKET_MODE,
                group: None,
            },
            clients: ListenerClients::default(),
            name: None,
            activation: Default::default(),
        }]
    } else {
        raw.listen
            .into_iter()
            .enumerate()
            .map(|(i, l)| validate_listen(i, l, &authority))
            .collect::<Result<Vec<_>, _>>()?
    };
    let admin = raw.admin.map(validate_admin).transpose()?;
    let mut addrs: Vec<ListenAddr> = listeners.iter().map(|l| l.addr.clone()).collect();
    if let Some(admin) = &admin {
        addrs.push(admin.clone());
    }
    check_no_loop(&upstream.addr, &addrs)?;
    check_unique_listeners(&addrs)?;
    check_unique_names(&listeners)?;
    Ok(Config {
        upstream,
        listeners,
        authority: Arc::new(authority),
        header_read_timeout: duration(
            "server.header_read_timeout",
            raw.server.header_read_timeout,
            Duration::from_secs(30),
        )?,
        body_read_timeout: positive(
            duration(
                "server.body_read_timeout",
                raw.server.body_read_timeout,
                DEFAULT_BODY_READ_TIMEOUT,
            )?,
            "server.body_read_timeout",
        )?,
        max_connections: at_least_one(
            raw.server.max_connections,
            "server.max_connections",
            "to derive it from the descriptor limit",
        )?,
        workers: at_least_one(raw.server.workers, "server.workers", "for one per CPU")?,
        pin_workers: raw.server.pin_workers.unwrap_or(true),
        shutdown_grace: duration(
            "server.shutdown_grace",
            raw.server.shutdown_grace,
            Duration::from_secs(10),
        )?,
        log_format: raw.log.format.unwrap_or(LogFormat::Text),
        audit: validate_audit(raw.audit)?,
        admin,
        limits: Arc::new(limits),
        image_ledger,
    })
}

/// A label key the daemon stores as given and filters on exactly: printable ASCII without
/// `=` (a `label=KEY=VALUE` filter splits on the first one) or blanks.
fn validate_owner_label(label: &str) -> Result<&str, ConfigError> {
    let clean = !label.is_empty()
        && label.len() <= 128
        && label.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
    if clean {
        Ok(label)
    } else {
        Err(ConfigError::setting(
            "isolation.owner_label",
            "must be 1 to 128 printable ASCII characters, without `=` or blanks \
             (e.g. \"sockwarden.owner\")",
        ))
    }
}

fn validate_admin(raw: RawAdmin) -> Result<ListenAddr, ConfigError> {
    let none = (None, None, None);
    listen_addr("admin", raw.unix, raw.tcp, raw.mode, raw.group, none)
}

fn validate_upstream(raw: RawUpstream) -> Result<UpstreamConfig, ConfigError> {
    let addr = match (raw.socket, raw.tcp) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::setting(
                "upstream",
                "set either `socket` or `tcp`, not both",
            ))
        }
        (Some(path), None) => {
            if !path.is_absolute() {
                return Err(ConfigError::setting(
                    "upstream.socket",
                    "must be an absolute path",
                ));
            }
            UpstreamAddr::Unix(path)
        }
        (None, Some(tcp)) => {
            parse_host_port("upstream.tcp", &tcp)?;
            UpstreamAddr::Tcp(tcp)
        }
        (None, None) => UpstreamAddr::Unix(default_upstream()),
    };
    let pool_max_idle = raw.pool_max_idle.unwrap_or(64);
    let build_cgroup = match raw.build_cgroup.as_deref() {
        None => crate::buildcgroup::Setting::Auto,
        Some(text) => crate::buildcgroup::Setting::parse(text)
            .map_err(|e| ConfigError::setting("upstream.build_cgroup", e))?,
    };
    Ok(UpstreamConfig {
        addr,
        connect_timeout: duration(
            "upstream.connect_timeout",
            raw.connect_timeout,
            Duration::from_secs(5),
        )?,
        pool_idle_timeout: duration(
            "upstream.pool_idle_timeout",
            raw.pool_idle_timeout,
            Duration::from_secs(90),
        )?,
        pool_max_idle,
        build_cgroup,
    })
}

fn validate_listen(
    index: usize,
    raw: RawListen,
    authority: &Authority,
) -> Result<Listen, ConfigError> {
    let name = format!("listen[{index}]");
    let mut clients = ListenerClients::default();
    for (key, value, slot) in [
        ("client", &raw.client, &mut clients.fixed),
        ("fallback", &raw.fallback, &mut clients.fallback),
    ] {
        if let Some(client) = value {
            if !authority.has_client(client) {
                return Err(ConfigError::setting(
                    &format!("{name}.{key}"),
                    format!("no [[client]] named {client:?}"),
                ));
            }
            *slot = Some(Arc::from(client.as_str()));
        }
    }
    if clients.fixed.is_some() && clients.fallback.is_some() {
        return Err(ConfigError::setting(
            &name,
            "`client` and `fallback` exclude each other (a fixed client leaves nothing to fall back)",
        ));
    }
    let tls = (raw.tls_cert, raw.tls_key, raw.tls_client_ca);
    if let Some(fd_name) = &raw.name {
        crate::listener::activation::check_name(fd_name)
            .map_err(|reason| ConfigError::setting(&format!("{name}.name"), reason))?;
    }
    let addr = listen_addr(&name, raw.unix, raw.tcp, raw.mode, raw.group, tls)?;
    Ok(Listen {
        addr,
        clients,
        name: raw.name.map(Arc::from),
        activation: raw.activation.unwrap_or_default(),
    })
}

fn listen_addr(
    name: &str,
    unix: Option<PathBuf>,
    tcp: Option<String>,
    mode: Option<String>,
    group: Option<String>,
    (tls_cert, tls_key, tls_client_ca): (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>),
) -> Result<ListenAddr, ConfigError> {
    let name = name.to_owned();
    let tls_set = [
        ("tls_cert", tls_cert.is_some()),
        ("tls_key", tls_key.is_some()),
        ("tls_client_ca", tls_client_ca.is_some()),
    ];
    match (unix, tcp) {
        (Some(_), Some(_)) | (None, None) => Err(ConfigError::setting(
            &name,
            "set exactly one of `unix` or `tcp`",
        )),
        (Some(path), None) => {
            if !path.is_absolute() {
                return Err(ConfigError::setting(
                    &format!("{name}.unix"),
                    "must be an absolute path",
                ));
            }
            // sun_path holds 108 bytes including the terminating NUL.
            if path.as_os_str().len() > 107 {
                return Err(ConfigError::setting(
                    &format!("{name}.unix"),
                    "path is longer than a unix socket allows (107 bytes)",
                ));
            }
            let mode = match mode {
                Some(mode) => parse_mode(&format!("{name}.mode"), &mode)?,
                None => DEFAULT_SOCKET_MODE,
            };
            if let Some((key, _)) = tls_set.iter().find(|(_, set)| *set) {
                return Err(ConfigError::setting(
                    &format!("{name}.{key}"),
                    "only applies to tcp listeners",
                ));
            }
            let group = group
                .map(|g| resolve_group(&format!("{name}.group"), &g))
                .transpose()?;
            Ok(ListenAddr::Unix { path, mode, group })
        }
        (None, Some(tcp)) => {
            for (key, set) in [("mode", mode.is_some()), ("group", group.is_some())] {
                if set {
                    return Err(ConfigError::setting(
                        &format!("{name}.{key}"),
                        "only applies to unix listeners",
                    ));
                }
            }
            let addr = parse_host_port(&format!("{name}.tcp"), &tcp)?;
            match (tls_cert, tls_key, tls_client_ca) {
                (None, None, None) => Ok(ListenAddr::Tcp(addr)),
                (Some(cert), Some(key), Some(ca)) => Ok(ListenAddr::Tls {
                    addr,
                    tls: crate::listener::tls::load(&name, cert, key, ca)?,
                }),
                _ => {
                    let missing = tls_set
                        .iter()
                        .find(|(_, set)| !*set)
                        .map(|(key, _)| *key)
                        .unwrap_or("tls_cert");
                    Err(ConfigError::setting(
                        &format!("{name}.{missing}"),
                        "required on a TLS listener: set all of tls_cert, tls_key and \
                         tls_client_ca (client certificates are always required)",
                    ))
                }
            }
        }
    }
}

fn check_no_loop(upstream: &UpstreamAddr, listeners: &[ListenAddr]) -> Result<(), ConfigError> {
    if let UpstreamAddr::Unix(up) = upstream {
        for l in listeners {
            if let ListenAddr::Unix { path, .. } = l {
                if path == up {
                    return Err(ConfigError::setting(
                        "upstream.socket",
                        format!(
                            "{} is also a listener: sockwarden would forward to itself",
                            up.display()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_unique_names(listeners: &[Listen]) -> Result<(), ConfigError> {
    for (i, a) in listeners.iter().enumerate() {
        if let Some(name) = &a.name {
            if listeners[..i].iter().any(|b| b.name.as_ref() == Some(name)) {
                return Err(ConfigError::setting(
                    &format!("listen[{i}].name"),
                    format!("{name:?} is already the name of another [[listen]] entry"),
                ));
            }
        }
    }
    Ok(())
}

fn check_unique_listeners(listeners: &[ListenAddr]) -> Result<(), ConfigError> {
    for (i, a) in listeners.iter().enumerate() {
        if listeners[..i].iter().any(|b| same_place(a, b)) {
            return Err(ConfigError::setting(
                &format!("listen[{i}]"),
                format!("{a} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn same_place(a: &ListenAddr, b: &ListenAddr) -> bool {
    match (a, b) {
        (ListenAddr::Unix { path: p, .. }, ListenAddr::Unix { path: q, .. }) => p == q,
        (
            ListenAddr::Tcp(x) | ListenAddr::Tls { addr: x, .. },
            ListenAddr::Tcp(y) | ListenAddr::Tls { addr: y, .. },
        ) => x == y,
        _ => false,
    }
}

fn duration(name: &str, raw: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    match raw {
        None => Ok(default),
        Some(text) => humantime::parse_duration(&text).map_err(|e| {
            ConfigError::setting(
                name,
                format!("{text:?} is not a duration like \"30s\" ({e})"),
            )
        }),
    }
}

/// An optional count that may be left out (`default` says what that means) but not be 0.
fn at_least_one(
    value: Option<usize>,
    name: &str,
    default: &str,
) -> Result<Option<usize>, ConfigError> {
    if value == Some(0) {
        return Err(ConfigError::setting(
            name,
            format!("must be at least 1 (leave it out {default})"),
        ));
    }
    Ok(value)
}

fn positive(d: Duration, name: &str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::setting(name, "must be longer than zero"));
    }
    Ok(d)
}

fn parse_mode(name: &str, text: &str) -> Result<u32, ConfigError> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(ConfigError::setting(
            name,
            format!("{text:?} is not an octal file mode like \"0660\""),
        )),
    }
}

fn resolve_group(name: &str, text: &str) -> Result<u32, ConfigError> {
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(ConfigError::setting(
            name,
            format!("no group named {text:?}"),
        )),
        Err(e) => Err(ConfigError::setting(
            name,
            format!("cannot look up {text:?}: {e}"),
        )),
    }
}

fn parse_host_port(name: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    let mut addrs = text.to_socket_addrs().map_err(|e| {
        ConfigError::setting(name, format!("{text:?} is not a host:port address ({e})"))
    })?;
    addrs
        .next()
        .ok_or_else(|| ConfigError::setting(name, format!("{text:?} resolves to no address")))
}

mod audit;
#[cfg(test)]
mod tests;
mod warnings;

use self::audit::{validate_audit, RawAudit};

pub use warnings::exhaustion_warnings;
