//! The I/O half of the fetch rule (`inspect::fetch` is the pure half): this host's addresses,
//! sockwarden's own TCP listeners, and DNS names resolved at check time.
//!
//! A name is resolved with the system resolver (`getaddrinfo`, which also reads `/etc/hosts`
//! and accepts the numeric shorthands `127.1` and `2130706433`), within [`RESOLVE_TIME`];
//! any address it yields that the rule forbids refuses the request. A name that does not
//! resolve here passes: the daemon, on the same host, fails the same way. The daemon
//! resolves again when it fetches, so a name whose answer changes in between (DNS
//! rebinding, a short TTL) is not covered: that is the residual risk the README states.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::inspect::fetch::{forbidden, forbidden_addr, Host, LocalFacts, Source};
use crate::inspect::Violation;

/// How long a name may take to resolve before it is let through unresolved.
const RESOLVE_TIME: Duration = Duration::from_secs(2);

fn listeners() -> &'static ArcSwap<Vec<SocketAddr>> {
    static OWN: OnceLock<ArcSwap<Vec<SocketAddr>>> = OnceLock::new();
    OWN.get_or_init(|| ArcSwap::from_pointee(Vec::new()))
}

/// Records sockwarden's bound TCP listeners (the server, once they are bound).
pub fn set_own_listeners(addrs: Vec<SocketAddr>) {
    listeners().store(Arc::new(addrs));
}

/// This host's interface addresses and sockwarden's listeners, as they are now.
pub fn local_facts() -> LocalFacts {
    let addrs = nix::ifaddrs::getifaddrs()
        .map(|ifs| {
            ifs.filter_map(|i| i.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| std::net::IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())))
                })
                .collect()
        })
        .unwrap_or_default();
    LocalFacts {
        addrs,
        listeners: listeners().load().as_ref().clone(),
    }
}

/// Resolves each source on a DNS name and refuses the first whose name yields a forbidden
/// address.
pub async fn check_names(sources: &[Source], local: &LocalFacts) -> Result<(), Violation> {
    for source in sources {
        let Host::Name(name) = &source.target.host else {
            continue;
        };
        for &port in &source.target.ports {
            let lookup = tokio::net::lookup_host((name.as_str(), port));
            let Ok(Ok(addrs)) = tokio::time::timeout(RESOLVE_TIME, lookup).await else {
                tracing::debug!(name = %name, "name does not resolve; let through to the daemon");
                continue;
            };
            for addr in addrs {
                if let Some(why) = forbidden_addr(addr.ip(), port, local) {
                    let why = format!("which resolves to {}, {why}", addr.ip());
                    return Err(forbidden(source, &why));
                }
            }
        }
    }
    Ok(())
}
