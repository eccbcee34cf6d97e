//! Command line: `sockwarden serve`, `sockwarden check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ListenAddr, LogFormat};
use crate::server::Server;

/// A policy-enforcing, auditing proxy for the Docker daemon socket.
#[derive(Debug, Parser)]
#[command(name = "sockwarden", version, about, long_about = None)]
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
    /// /run/sockwarden/docker.sock; others: /tmp/sockwarden-UID/docker.sock).
    Serve {
        /// Configuration file (TOML); see config/sockwarden.toml for every setting.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log format; overrides the config's log.format. RUST_LOG sets the level.
        #[arg(long, value_enum, value_name = "FORMAT")]
        log_format: Option<LogFormat>,
    },
    /// Validate a configuration file and exit: 0 when valid, 2 otherwise.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
}

/// Exit status for a usage or configuration error (as clap uses for bad flags).
const EXIT_USAGE: u8 = 2;

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format),
        Command::Check { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&e),
        },
    }
}

fn usage_error(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("sockwarden: {err}");
    ExitCode::from(EXIT_USAGE)
}

fn serve(path: Option<PathBuf>, log_format: Option<LogFormat>) -> ExitCode {
    let config = match &path {
        Some(path) => Config::load(path),
        None => Config::builtin(),
    };
    let mut config = match config {
        Ok(config) => config,
        Err(e) => return usage_error(&e),
    };
    if let Some(format) = log_format {
        config.log_format = format;
    }
    crate::logging::init(config.log_format);
    if path.is_none() {
        for listener in &config.listeners {
            if let ListenAddr::Unix { path, .. } = &listener.addr {
                tracing::info!(
                    "no --config given: built-in defaults; try DOCKER_HOST=unix://{} docker ps",
                    path.display()
                );
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
        let server = match Server::bind(config).await {
            Ok(server) => server,
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
