//! Command line: `sockwarden serve`, `check`, `explain`, `reload`, `compat`, `operations`,
//! `audit`, and `completions`/`man` (generated from this definition).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{Config, ListenAddr, LogFormat};
use crate::server::Server;

/// The version `--version` shows: the crate's, and the git commit it was built from (`unknown`
/// when built outside a git checkout without SOCKWARDEN_GIT_COMMIT).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SOCKWARDEN_GIT_COMMIT"),
    ")"
);

/// A policy-enforcing proxy for the Docker daemon socket.
#[derive(Debug, Parser)]
#[command(name = "sockwarden", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the configured listeners, forwarding to the Docker daemon.
    ///
    /// Without --config: upstream is DOCKER_HOST's unix:// path or /var/run/docker.sock, and one
    /// socket, mode 0600, at $XDG_RUNTIME_DIR/sockwarden/docker.sock (root:
    /// /run/sockwarden/docker.sock; others: /tmp/sockwarden-UID/docker.sock); the user who
    /// started sockwarden gets the read-only profile, everyone else is refused; audit records
    /// (one JSON line per request) go to stdout.
    ///
    /// Signals: SIGHUP reloads the configuration (--watch-config: so does a changed file), SIGUSR1 reopens the audit file, SIGTERM and
    /// SIGINT stop gracefully.
    Serve {
        /// Configuration file (TOML); see config/sockwarden.toml for every setting.
        #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "compat")]
        config: Option<PathBuf>,
        /// Stand in for another proxy: `docker-socket-proxy` reads that image's environment
        /// switches (CONTAINERS=1, POST=0, ALLOW_START=1, ...) and listens on TCP 0.0.0.0:2375
        /// (SOCKWARDEN_LISTEN overrides) as that image does.
        #[arg(long, value_enum, value_name = "PROXY")]
        compat: Option<Compat>,
        /// Log format; overrides the config's log.format. RUST_LOG sets the level.
        #[arg(long, value_enum, value_name = "FORMAT")]
        log_format: Option<LogFormat>,
        /// Reload the configuration file when its content changes, as SIGHUP does (an invalid
        /// file keeps the configuration in force): edits in place, editors' renames and
        /// Kubernetes ConfigMap updates (a symlink swap) are all seen. Needs --config.
        #[arg(long, requires = "config")]
        watch_config: bool,
    },
    /// Validate a configuration file and exit: 0 when valid, 2 otherwise.
    ///
    /// Besides the file itself, check tests what `serve` needs from this machine at start,
    /// without creating anything, and reports it as serve would: the audit file's directory
    /// (writable) or syslog socket, each unix socket's directory (existing or creatable, and
    /// writable) and group, each TCP address (bindable; an address in use is not reported, as
    /// it may be the running server's), and whether classic builds under a pids cap can get a
    /// build cgroup ([upstream] build_cgroup: found in this machine's cgroup mounts, root and
    /// writable; a warning, since the daemon's cgroup driver is not asked), and, when a policy
    /// isolates, the image ledger ([isolation] image_ledger: readable, writable and parsing,
    /// or its directory creatable and writable). These are checked
    /// as the user running check: run it as the user serve runs as, or give --no-fs for a file
    /// meant for another host or user.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Check the file only, not this machine's directories, sockets, addresses and cgroups.
        #[arg(long)]
        no_fs: bool,
    },
    /// Show what sockwarden would do with one request, without contacting the daemon: the
    /// decision, the policy and rule, why, and for a refusal what in the configuration would
    /// allow it (a `change:` line; `change` in --json), marking dangerous changes.
    Explain {
        /// Configuration file (TOML).
        #[arg(
            long,
            short = 'c',
            value_name = "FILE",
            required_unless_present = "compat"
        )]
        config: Option<PathBuf>,
        /// Use another proxy's environment switches instead of a file (client `docker-socket-proxy`).
        #[arg(long, value_enum, value_name = "PROXY", conflicts_with = "config")]
        compat: Option<Compat>,
        /// The client to decide for (a [[client]] name); without it, a connection that matches
        /// no client.
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// A file holding the request body. Operations whose body is inspected
        /// (container.create, container.update, exec.create, volume.create, network.create,
        /// network.connect, service.create/update, plugin.pull/upgrade) are only decided with it.
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// HTTP method, e.g. POST.
        method: String,
        /// Request target, e.g. /v1.41/containers/create?name=x
        target: String,
    },
    /// Print the policy equivalent to another proxy's environment switches, as TOML.
    Compat {
        /// The proxy whose switches to read from the environment.
        #[arg(value_enum)]
        proxy: Compat,
    },
    /// List every operation name with its routes, access class and whether it is dangerous.
    Operations {
        /// Print every fact of the operation table as JSON (an array, one object per
        /// operation): why it is dangerous, hijack, body use and inspector, the object its
        /// path names, whether it reaches it, what it creates, redacts, fetches, which image
        /// names it writes and what isolation does with it.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running sockwarden to re-read its configuration, through the admin listener
    /// configured in FILE (`kill -HUP PID` does the same without one). Prints the new
    /// configuration generation; exit 1 when the reload was refused (the old configuration
    /// stays in force) or the admin listener cannot be reached.
    Reload {
        /// The configuration file the server runs with (its [admin] section is used).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Read audit logs: summarize them, suggest the smallest policy for a client, verify a
    /// sealed log (and make a seal seed).
    Audit {
        #[command(subcommand)]
        command: crate::audit::report::AuditCommand,
    },
    /// Print a shell completion script, generated from this command line's definition.
    ///
    /// bash: `sockwarden completions bash > /etc/bash_completion.d/sockwarden`;
    /// zsh: `sockwarden completions zsh > "${fpath[1]}/_sockwarden"`;
    /// fish: `sockwarden completions fish > ~/.config/fish/completions/sockwarden.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff), generated from this command line's definition:
    /// `sockwarden man > /usr/local/share/man/man1/sockwarden.1`.
    Man,
}

/// Shells `completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Proxies sockwarden can stand in for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Compat {
    /// The HAProxy-based docker-socket-proxy images (Tecnativa and derivatives).
    DockerSocketProxy,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Exit status for a usage or configuration error (as clap uses for bad flags).
const EXIT_USAGE: u8 = 2;

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Sockets passed by systemd are taken (and LISTEN_* cleared) before any thread starts, by
    // the two commands that use them.
    let inherited = match &cli.command {
        Command::Serve { .. } | Command::Check { .. } => {
            match crate::listener::activation::Inherited::from_env() {
                Ok(inherited) => inherited,
                Err(e) => {
                    eprintln!("sockwarden: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => crate::listener::activation::Inherited::none(),
    };
    match cli.command {
        Command::Serve {
            config,
            compat,
            log_format,
            watch_config,
        } => serve(config, compat, log_format, watch_config, inherited),
        Command::Reload { config } => reload(&config),
        Command::Check { config, no_fs } => check(&config, no_fs, inherited),
        Command::Explain {
            config,
            compat,
            client,
            body,
            json,
            method,
            target,
        } => explain(
            config,
            compat,
            client.as_deref(),
            body,
            json,
            &method,
            &target,
        ),
        Command::Compat { proxy } => match proxy {
            Compat::DockerSocketProxy => {
                let policy = crate::compat::docker_socket_proxy(&env_var);
                out(format_args!(
                    "# From the environment switches: {}\n{}",
                    crate::compat::variables().join(", "),
                    crate::compat::to_toml(&policy, "docker-socket-proxy")
                ));
                ExitCode::SUCCESS
            }
        },
        Command::Operations { json: true } => {
            let facts: Vec<serde_json::Value> = crate::route::OPERATION_TABLE
                .iter()
                .map(operation_facts)
                .collect();
            out(format_args!(
                "{}\n",
                serde_json::to_string_pretty(&facts).unwrap_or_default()
            ));
            ExitCode::SUCCESS
        }
        Command::Operations { json: false } => {
            for info in crate::route::OPERATION_TABLE {
                let danger = if info.dangerous() { "dangerous" } else { "-" };
                out(format_args!(
                    "{:<28} {:<7} {:<10} {}\n",
                    info.name,
                    format!("{:?}", info.access),
                    danger,
                    info.routes
                ));
            }
            ExitCode::SUCCESS
        }
        Command::Audit { command } => crate::audit::report::run(command),
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sockwarden", &mut script);
            out(format_args!("{}", String::from_utf8_lossy(&script)));
            ExitCode::SUCCESS
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => {
                    out(format_args!("{}", String::from_utf8_lossy(&page)));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sockwarden: cannot render the manual page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(
    path: &std::path::Path,
    no_fs: bool,
    inherited: crate::listener::activation::Inherited,
) -> ExitCode {
    use crate::listener::activation::Activation;
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    // With sockets passed (check run the way serve is started), they must fit as serve
    // needs; without (ExecStartPre= gets none), entries requiring one are systemd's to create.
    let mut notes = String::new();
    let (passed, admin_passed) = if inherited.is_empty() {
        (Vec::new(), false)
    } else {
        match inherited.assign(&config.activation_entries(), config.admin.as_ref()) {
            Ok(assigned) => (
                assigned.listeners.iter().map(Option::is_some).collect(),
                assigned.admin.is_some(),
            ),
            Err(e) => return usage_error(&format!("{}: {e}", path.display())),
        }
    };
    for (i, listen) in config.listeners.iter().enumerate() {
        if passed.get(i).copied().unwrap_or(false) {
            notes.push_str(&format!(
                "listen[{i}] {}: socket passed by systemd\n",
                listen.addr
            ));
        } else if listen.activation == Activation::Required {
            notes.push_str(&format!(
                "listen[{i}] {}: socket to be passed by systemd (activation = \"required\")\n",
                listen.addr
            ));
        }
    }
    if admin_passed {
        notes.push_str("admin: socket passed by systemd\n");
    }
    if config.authority.isolates() {
        let ledger = &config.image_ledger;
        let state = if no_fs {
            "not looked at (--no-fs)"
        } else if ledger.exists() {
            "in use"
        } else {
            "created at start, adopting the images that carry the owner label then"
        };
        notes.push_str(&format!(
            "isolation.image_ledger {}: {state}\n",
            ledger.display()
        ));
    }
    if !no_fs {
        if let Err(refused) = Server::preflight_except(&config, &passed, admin_passed) {
            let (setting, e) = *refused;
            let origin = path.display();
            let line = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| crate::config::line_of(&text, &setting));
            return match line {
                Some(line) => usage_error(&format!("{origin} line {line}: {setting}: {e}")),
                None => usage_error(&format!("{origin}: {setting}: {e}")),
            };
        }
    }
    if !no_fs {
        for warning in crate::hostpath::source_warnings(&config.authority) {
            eprintln!("sockwarden: warning: {}: {warning}", path.display());
        }
    }
    // Settings that invite one client to exhaust what all share, or let builds escape the
    // rules: warnings, not errors.
    for warning in crate::config::exhaustion_warnings(&config, !no_fs) {
        eprintln!("warning: {warning}");
    }
    out(format_args!("{notes}{}: ok\n", path.display()));
    ExitCode::SUCCESS
}

fn load(
    config: Option<PathBuf>,
    compat: Option<Compat>,
) -> Result<Config, crate::error::ConfigError> {
    match (config, compat) {
        (Some(path), _) => Config::load(&path),
        (None, Some(Compat::DockerSocketProxy)) => Config::docker_socket_proxy(&env_var),
        (None, None) => Config::builtin(),
    }
}

fn explain(
    config: Option<PathBuf>,
    compat: Option<Compat>,
    client: Option<&str>,
    body: Option<PathBuf>,
    json: bool,
    method: &str,
    target: &str,
) -> ExitCode {
    let config = match load(config, compat) {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    let body = match body.map(std::fs::read).transpose() {
        Ok(body) => body,
        Err(e) => return usage_error(&format!("--body: {e}")),
    };
    match crate::explain::explain(&config, client, method, target, body.as_deref()) {
        Ok(explanation) if json => match serde_json::to_string_pretty(&explanation) {
            Ok(text) => {
                out(format_args!("{text}\n"));
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&e),
        },
        Ok(explanation) => {
            out(format_args!("{explanation}\n"));
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e),
    }
}

/// Writes a command's output to stdout. When the reader has gone away (`sockwarden operations |
/// head -2` closes the pipe), the process ends quietly with status 0, as a command killed by
/// SIGPIPE would in C: Rust ignores SIGPIPE, so `println!` would panic (exit 101) instead. Only
/// the one-shot commands print through this; `serve` never does (a client closing its socket
/// must never end the server, and its stdout audit sink handles its own write errors). Every
/// command prints its output only once its outcome is known, so status 0 is its status.
pub(crate) fn out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("sockwarden: cannot write to stdout: {e}");
            std::process::exit(1)
        }
    }
}

fn usage_error(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("sockwarden: {err}");
    ExitCode::from(EXIT_USAGE)
}

fn reload(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    let Some(admin) = &config.admin else {
        eprintln!(
            "sockwarden: {} has no [admin] listener; send SIGHUP to the sockwarden process instead",
            path.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };
    match crate::admin::request_reload(admin) {
        Ok(answer) => {
            out(format_args!("{answer}\n"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sockwarden: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    path: Option<PathBuf>,
    compat: Option<Compat>,
    log_format: Option<LogFormat>,
    watch_config: bool,
    inherited: crate::listener::activation::Inherited,
) -> ExitCode {
    let builtin = path.is_none() && compat.is_none();
    let source = match (&path, compat) {
        (Some(path), _) => crate::reload::ConfigSource::File(path.clone()),
        (None, Some(Compat::DockerSocketProxy)) => crate::reload::ConfigSource::DockerSocketProxy,
        (None, None) => crate::reload::ConfigSource::Builtin,
    };
    let mut config = match load(path, compat) {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    if let Some(format) = log_format {
        config.log_format = format;
    }
    crate::logging::init(config.log_format);
    if builtin {
        for listener in &config.listeners {
            if let ListenAddr::Unix { path, .. } = &listener.addr {
                tracing::info!(
                    "no --config given: built-in defaults; try DOCKER_HOST=unix://{} docker ps",
                    path.display()
                );
            }
        }
    }
    // This thread accepts connections and runs the admin listener, signals and reloads;
    // clients are served on the connection workers (`workers`), one thread per CPU.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sockwarden: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match Server::bind_with(config, source, inherited).await {
            Ok(server) => server.watch_config(watch_config),
            Err(e) => {
                eprintln!("sockwarden: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stop = async {
            match crate::shutdown::signal().await {
                Ok(name) => tracing::info!(signal = name, "received"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot install signal handlers");
                    std::future::pending::<()>().await;
                }
            }
        };
        match server.run(stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sockwarden: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// One operation's facts as JSON (`sockwarden operations --json`). Enumerated facts are their
/// names as the table spells them (`Lists(Container)`); absent ones are `null`.
fn operation_facts(info: &crate::route::OperationInfo) -> serde_json::Value {
    let debug = |value: &dyn std::fmt::Debug| serde_json::Value::String(format!("{value:?}"));
    let opt = |value: Option<&dyn std::fmt::Debug>| value.map_or(serde_json::Value::Null, debug);
    serde_json::json!({
        "name": info.name,
        "routes": info.routes,
        "access": debug(&info.access),
        "dangerous": info.danger,
        "hijack": opt(info.hijack.as_ref().map(|h| h as &dyn std::fmt::Debug)),
        "body": debug(&info.body),
        "object": info.object.map(|kind| kind.as_str()),
        "reaches": info.reaches,
        "creates": info.creates.map(|c| c.kind.as_str()),
        "redacts": opt(info.redacts.as_ref().map(|r| r as &dyn std::fmt::Debug)),
        "writes_image": opt(info.writes_image.as_ref().map(|w| w as &dyn std::fmt::Debug)),
        "fetches": opt(info.fetch.as_ref().map(|f| f as &dyn std::fmt::Debug)),
        "isolation": info.tenancy.name(),
    })
}

#[cfg(test)]
mod operation_facts_tests {
    use super::operation_facts;
    use crate::route::{operation_info, OPERATION_TABLE};

    #[test]
    fn json_facts_are_the_tables() {
        let facts = |name: &str| operation_facts(operation_info(name).expect(name));
        for info in OPERATION_TABLE {
            let f = operation_facts(info);
            assert_eq!(f["name"], info.name);
            assert_eq!(
                f["dangerous"].is_string(),
                info.dangerous(),
                "{}",
                info.name
            );
            assert_eq!(f["reaches"], info.reaches, "{}", info.name);
        }
        let start = facts("exec.start");
        assert_eq!(start["hijack"], "ExecStart");
        assert_eq!(start["object"], "exec");
        assert_eq!(start["isolation"], "Owned");
        let create = facts("container.create");
        assert_eq!(create["body"], "Inspected(ContainerCreate)");
        assert_eq!(create["creates"], "container");
        assert_eq!(create["isolation"], "Creates");
        assert_eq!(facts("swarm.init")["isolation"], "Unavailable");
        assert!(facts("image.pull")["fetches"].is_string());
        assert!(facts("container.inspect")["redacts"].is_string());
    }
}
