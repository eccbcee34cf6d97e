//! sockwarden: a proxy between Docker clients and the Docker daemon's socket.
//!
//! The request path, outside in:
//!
//! ```text
//! listener (unix / tcp)  ->  hyper HTTP/1.1 connection (header timeout, upgrades)
//!   -> stack::build:  audit -> rescue (errors become {"message": ...}) -> rate limit -> authorize -> redact -> inspect -> Forward
//!   -> daemon (pooled connections; 101 responses bridge the two upgraded sockets)
//! ```

// Commands print through `cli::out`, which ends quietly on a closed pipe; `println!` panics.
#![deny(clippy::print_stdout)]

pub mod admin;
pub mod audit;
pub mod body;
pub mod buildcgroup;
pub mod cli;
pub mod compat;
pub mod config;
pub mod conn_timer;
pub mod context;
pub mod error;
pub mod explain;
pub mod fasthash;
pub mod forward;
pub mod hostpath;
pub mod identity;
pub mod inspect;
pub mod isolation;
pub mod layer_future;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod lookup;
pub mod metrics;
pub mod policy;
pub mod reach;
pub mod readiness;
pub mod redact;
pub mod refusal;
pub mod reload;
pub mod respond;
pub mod route;
pub mod server;
pub mod shutdown;
pub mod splice;
pub mod stack;
pub mod upstream;
pub mod workers;
