//! Hot reload: the parts of the configuration that decide requests (clients, policies, which
//! client a listener falls back to, limits) live in a [`Runtime`] that can be swapped while
//! sockwarden serves.
//!
//! A reload (SIGHUP, `sockwarden reload`, or `POST /reload` on the admin listener) reads and
//! validates the whole file first; an invalid file changes nothing and the error is logged,
//! audited and returned. A valid one is swapped in atomically: each request takes a snapshot of
//! the runtime when it arrives (its [`Caller`]) and finishes under it, so no request is refused
//! or dropped because of a reload. Connections already open are attributed again under the new
//! configuration from their next request on, so taking a client's access away takes effect on
//! its keep-alive connections too. Settings that bind resources (listeners, upstream, admin
//! listener, audit sink, server timeouts) need a restart, and `[log]` is read at start only: a reload that changes
//! them applies everything else and says so.
//!
//! With `serve --watch-config`, a change of the file's content reloads it too ([`watch`]).

use crate::fasthash::NameMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::Audit;
use crate::config::Config;
use crate::error::ConfigError;
use crate::identity::{self, ListenerClients};
use crate::limits::Limits;
use crate::listener::Peer;
use crate::policy::Authority;

pub mod watch;

/// Everything that decides a request, for one configuration generation.
#[derive(Debug)]
pub struct Runtime {
    /// 1 at start, +1 per successful reload.
    pub generation: u64,
    /// Clients and policies.
    pub authority: Arc<Authority>,
    /// Per-client limits and their rate buckets.
    pub limits: Arc<Limits>,
    /// Fixed client or fallback per listener, by the listener's name (looked up for each
    /// connection; names come from the configuration, hence the fast hasher).
    listeners: NameMap<Arc<str>, ListenerClients>,
}

impl Runtime {
    /// The runtime of a validated configuration.
    pub fn from_config(config: &Config, generation: u64) -> Runtime {
        let listeners = config
            .listeners
            .iter()
            .map(|l| (Arc::from(l.addr.to_string()), l.clients.clone()))
            .collect();
        Runtime {
            generation,
            authority: config.authority.clone(),
            limits: config.limits.clone(),
            listeners,
        }
    }

    /// The client a peer of `listener` is under this configuration.
    pub fn identify(&self, listener: &str, peer: &Peer) -> Option<Arc<str>> {
        let none = ListenerClients::default();
        let clients = self.listeners.get(listener).unwrap_or(&none);
        identity::identify(self.authority.clients(), clients, peer)
    }
}

/// Where the configuration comes from, to read it again.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file.
    File(PathBuf),
    /// The built-in default.
    Builtin,
    /// docker-socket-proxy environment switches.
    DockerSocketProxy,
}

impl ConfigSource {
    /// Reads and validates the configuration.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::File(path) => Config::load(path),
            ConfigSource::Builtin => Config::builtin(),
            ConfigSource::DockerSocketProxy => {
                Config::docker_socket_proxy(&|name| std::env::var(name).ok())
            }
        }
    }
}

/// The runtime in force, and how to replace it.
#[derive(Clone)]
pub struct Live {
    current: Arc<ArcSwap<Runtime>>,
    source: Arc<ConfigSource>,
    started_with: Arc<Config>,
    generation: Arc<AtomicU64>,
    audit: Audit,
    serial: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("source", &self.source)
            .finish()
    }
}

/// The outcome of a successful reload.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The new generation.
    pub generation: u64,
    /// Changed settings that take effect only after a restart.
    pub restart_needed: Vec<String>,
}

impl Live {
    /// The file the configuration is read from, if it comes from one.
    pub fn config_file(&self) -> Option<&std::path::Path> {
        match self.source.as_ref() {
            ConfigSource::File(path) => Some(path),
            ConfigSource::Builtin | ConfigSource::DockerSocketProxy => None,
        }
    }

    /// Starts with `config` (generation 1), reloading from `source`.
    pub fn new(config: Config, source: ConfigSource, audit: Audit) -> Live {
        let runtime = Runtime::from_config(&config, 1);
        Live {
            current: Arc::new(ArcSwap::from_pointee(runtime)),
            source: Arc::new(source),
            started_with: Arc::new(config),
            generation: Arc::new(AtomicU64::new(1)),
            audit,
            serial: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The runtime in force now.
    pub fn current(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Re-reads the configuration and swaps it in, or keeps the old one and returns why not.
    /// `trigger` (`SIGHUP`, `admin`, `file watch`) goes into the log and the audit record.
    pub async fn reload(&self, trigger: &str) -> Result<Reloaded, String> {
        // One reload at a time, so generations are not skipped or swapped out of order.
        let _serial = self.serial.lock().await;
        let source = self.source.clone();
        let loaded = tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| format!("reload task failed: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(trigger, error = %e, "reload refused; the configuration in force is kept");
                self.audit.metrics().reload(false, 0);
                self.audit.reload(trigger, Err(&e), &[]);
                return Err(e);
            }
        };
        if let Err(e) =
            crate::isolation::ledger::open_for(config.authority.isolates(), &config.image_ledger)
        {
            let e = format!("isolation.image_ledger: {e}");
            tracing::error!(trigger, error = %e, "reload refused; the configuration in force is kept");
            self.audit.metrics().reload(false, 0);
            self.audit.reload(trigger, Err(&e), &[]);
            return Err(e);
        }
        let restart_needed = restart_only_changes(&self.started_with, &config);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut runtime = Runtime::from_config(&config, generation);
        // A listener that is gone from the file still serves until a restart: keep its clients.
        let old = self.current();
        for (name, clients) in &old.listeners {
            runtime
                .listeners
                .entry(name.clone())
                .or_insert_with(|| clients.clone());
        }
        self.current.store(Arc::new(runtime));
        if restart_needed.is_empty() {
            tracing::info!(trigger, generation, "configuration reloaded");
        } else {
            tracing::warn!(
                trigger,
                generation,
                restart_needed = restart_needed.join(", "),
                "configuration reloaded; some changed settings take effect only after a restart"
            );
        }
        self.audit.metrics().reload(true, generation);
        self.audit.reload(trigger, Ok(generation), &restart_needed);
        Ok(Reloaded {
            generation,
            restart_needed,
        })
    }
}

/// The settings `new` changes that a running server cannot apply.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    if old.upstream != new.upstream {
        changed.push("upstream".to_owned());
    }
    let addrs = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| l.addr.clone())
            .collect::<Vec<_>>()
    };
    if addrs(old) != addrs(new) {
        changed.push("listen (addresses)".to_owned());
    }
    if old.admin != new.admin {
        changed.push("admin".to_owned());
    }
    if old.audit != new.audit {
        changed.push("audit".to_owned());
    }
    // The ledger open (if any) stays the one in use until a restart.
    let open = crate::isolation::ledger::global().map(|l| l.path().to_owned());
    let in_use = open.as_ref().unwrap_or(&old.image_ledger);
    if new.authority.isolates() && *in_use != new.image_ledger {
        changed.push("isolation.image_ledger".to_owned());
    }
    if old.header_read_timeout != new.header_read_timeout
        || old.body_read_timeout != new.body_read_timeout
        || old.max_connections != new.max_connections
        || old.workers != new.workers
        || old.pin_workers != new.pin_workers
        || old.shutdown_grace != new.shutdown_grace
    {
        changed.push("server".to_owned());
    }
    changed
}
