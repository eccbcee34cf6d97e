//! Per-tenant isolation (a policy's `isolation`): on a shared host each user sees and touches
//! only the containers, volumes, networks, images and execs it made.
//!
//! Ownership lives on the objects themselves, as a label the daemon keeps (`[isolation]
//! owner_label`, default `sockwarden.owner`, value [`Tenant::label_value`]), so it survives a
//! restart of sockwarden and an admin sees it in `docker inspect`. The layer ([`layer`]) runs
//! after authorization and before inspection, so what it writes into a request (the owner
//! label, full IDs for names) is what the inspector judges and the daemon receives. What it
//! does per operation is the operation table's [`Tenancy`](crate::route::Tenancy) fact:
//! - `Owned`, `Creates`: [`objects`] — the named object must be the tenant's (another's
//!   answers as missing), names resolve among the tenant's own objects to full IDs, creates
//!   are labelled, forged owner labels and references to others' objects refused, quotas;
//! - `Lists`, `Events`, `DiskUsage`, `Prunes`: [`views`] — answers and prunes cover only the
//!   tenant's objects (plus shared base images);
//! - `Shared` passes; `Unavailable` (the default of the table) is refused.

use std::fmt;
use std::sync::Arc;

use crate::context::Caller;
use crate::listener::Peer;
use crate::policy::Isolation;

pub mod json;
pub mod layer;
pub mod ledger;
pub mod name_watch;
pub mod objects;
pub mod owners;
pub mod pins;
pub mod views;

/// One tenant: whose objects a request may see and touch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant of a request from `peer` (if known), matched as `client`, under
    /// `isolation`; `None` when the policy does not isolate.
    pub fn of(isolation: Isolation, client: &str, peer: Option<&Peer>) -> Option<Tenant> {
        match (isolation, peer) {
            (Isolation::None, _) => None,
            (Isolation::User, Some(Peer::Unix { uid, .. })) => {
                Some(Tenant(Arc::from(format!("uid:{uid}"))))
            }
            (Isolation::User | Isolation::Client, _) => {
                Some(Tenant(Arc::from(format!("client:{client}"))))
            }
        }
    }

    /// The tenant of a request from `peer` by `caller`, as its client's policy says, before
    /// any layer has looked at the request: every audit record of an isolated client carries
    /// its tenant, also of a request the rate limit or the policy refuses before the isolation
    /// layer runs.
    pub fn of_caller(caller: &Caller, peer: Option<&Peer>) -> Option<Tenant> {
        let client = caller.client.as_deref()?;
        let authority = &caller.runtime.authority;
        if !authority.isolates() {
            return None;
        }
        Tenant::of(authority.policy_for(client)?.isolation, client, peer)
    }

    /// The owner label's value, shared.
    pub fn into_value(self) -> Arc<str> {
        self.0
    }

    /// The owner label's value on the tenant's objects (`uid:1001`, `client:ci`).
    pub fn label_value(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_follow_the_isolation_setting() {
        let unix = |uid| Peer::Unix {
            uid,
            gid: uid,
            pid: None,
        };
        let tcp = Peer::Tcp("127.0.0.1:40000".parse().expect("address"));
        let value = |i, c, p: &Peer| Tenant::of(i, c, Some(p)).map(|t| t.label_value().to_owned());
        assert_eq!(value(Isolation::None, "dev", &unix(1001)), None);
        assert_eq!(
            value(Isolation::User, "dev", &unix(1001)).as_deref(),
            Some("uid:1001")
        );
        assert_ne!(
            value(Isolation::User, "dev", &unix(1001)),
            value(Isolation::User, "dev", &unix(1002))
        );
        // The same user is the same tenant whichever client it matched as.
        assert_eq!(
            value(Isolation::User, "a", &unix(7)),
            value(Isolation::User, "b", &unix(7))
        );
        assert_eq!(
            value(Isolation::User, "ci", &tcp).as_deref(),
            Some("client:ci")
        );
        assert_eq!(
            value(Isolation::Client, "dev", &unix(1001)).as_deref(),
            Some("client:dev")
        );
        assert_eq!(
            value(Isolation::Client, "dev", &unix(1001)),
            value(Isolation::Client, "dev", &unix(1002))
        );
    }
}
