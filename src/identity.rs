//! Who is calling: a connection's peer, as the kernel reports it, matched to a named client.
//!
//! Identity is decided once per connection, from facts the client cannot forge: SO_PEERCRED
//! on unix sockets (uid, gid, pid; plus the process's supplementary groups, executable and
//! login uid from /proc, so `sudo docker ...` is still attributed to the person), the source
//! address on TCP, and on TLS listeners the client certificate the peer proved to hold (its
//! subject common name and subject alternative names; the chain was verified against the
//! listener's `tls_client_ca` during the handshake). A connection that matches no client gets
//! its listener's fallback, which by default is nobody: every request refused.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::listener::Peer;

pub mod deputy;

/// A `[[client]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// The client's name, used in listeners, decisions and the audit log.
    pub name: String,
    /// The policy that governs this client.
    pub policy: String,
    /// Unix peers with one of these user ids.
    #[serde(default)]
    pub uids: Vec<u32>,
    /// Unix peers running as one of these users (names resolved at start).
    #[serde(default)]
    pub users: Vec<String>,
    /// Unix peers whose primary or supplementary groups include one of these gids.
    #[serde(default)]
    pub gids: Vec<u32>,
    /// As `gids`, by group name (resolved at start).
    #[serde(default)]
    pub groups: Vec<String>,
    /// TCP (and TLS) peers from one of these addresses or CIDR ranges.
    #[serde(default)]
    pub sources: Vec<String>,
    /// TLS peers whose verified client certificate has one of these subject common names.
    #[serde(default)]
    pub cert_cn: Vec<String>,
    /// TLS peers whose verified client certificate has one of these subject alternative names
    /// (DNS name, email address, URI or IP address, compared exactly).
    #[serde(default)]
    pub cert_san: Vec<String>,
    /// `audit`: this client's would-be refusals are forwarded and recorded as would-deny,
    /// whatever its policy's mode.
    pub mode: Option<crate::policy::rules::Mode>,
    /// `[client.limits]`: this client's own limits, key by key over `[limits]`.
    pub limits: Option<crate::limits::RawLimits>,
}

/// A validated client definition.
#[derive(Debug, Clone)]
pub struct ClientDef {
    /// Name.
    pub name: Arc<str>,
    /// Policy name (checked to exist).
    pub policy: Arc<str>,
    /// The client's own mode, if set (`audit` overrides the policy's `enforce`).
    pub mode: Option<crate::policy::rules::Mode>,
    uids: Vec<u32>,
    gids: Vec<u32>,
    sources: Vec<IpNet>,
    cert_cn: Vec<String>,
    cert_san: Vec<String>,
}

impl ClientDef {
    /// Validates a raw entry; `key` names it in errors (`client[2]`).
    pub fn from_raw(key: &str, raw: RawClient) -> Result<ClientDef, ConfigError> {
        if raw.name.is_empty() {
            return Err(ConfigError(format!("{key}.name: must not be empty")));
        }
        let mut uids = raw.uids;
        for user in &raw.users {
            match nix::unistd::User::from_name(user) {
                Ok(Some(u)) => uids.push(u.uid.as_raw()),
                _ => return Err(ConfigError(format!("{key}.users: no user named {user:?}"))),
            }
        }
        let mut gids = raw.gids;
        for group in &raw.groups {
            match nix::unistd::Group::from_name(group) {
                Ok(Some(g)) => gids.push(g.gid.as_raw()),
                _ => {
                    return Err(ConfigError(format!(
                        "{key}.groups: no group named {group:?}"
                    )))
                }
            }
        }
        let sources = raw
            .sources
            .iter()
            .map(|s| parse_source(s).map_err(|e| ConfigError(format!("{key}.sources: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        for (field, names) in [("cert_cn", &raw.cert_cn), ("cert_san", &raw.cert_san)] {
            if names.iter().any(String::is_empty) {
                return Err(ConfigError(format!(
                    "{key}.{field}: names must not be empty"
                )));
            }
        }
        // A client with no matcher is only reachable as a listener's `client` or `fallback`.
        Ok(ClientDef {
            name: Arc::from(raw.name.as_str()),
            policy: Arc::from(raw.policy.as_str()),
            mode: raw.mode,
            uids,
            gids,
            sources,
            cert_cn: raw.cert_cn,
            cert_san: raw.cert_san,
        })
    }

    /// A client for the built-in default: the user who started sockwarden.
    pub fn owner(uid: u32, policy: &str) -> ClientDef {
        ClientDef {
            name: Arc::from("owner"),
            policy: Arc::from(policy),
            mode: None,
            uids: vec![uid],
            gids: Vec::new(),
            sources: Vec::new(),
            cert_cn: Vec::new(),
            cert_san: Vec::new(),
        }
    }

    fn matches(&self, peer: &Peer, groups: &dyn Fn() -> Vec<u32>) -> bool {
        match peer {
            Peer::Unix { uid, gid, .. } => {
                self.uids.contains(uid)
                    || self.gids.contains(gid)
                    || (!self.gids.is_empty() && groups().iter().any(|g| self.gids.contains(g)))
            }
            Peer::Tcp(addr) => self.matches_source(addr),
            Peer::Tls { addr, cert } => {
                self.matches_source(addr)
                    || cert.common_names.iter().any(|cn| self.cert_cn.contains(cn))
                    || cert.sans.iter().any(|san| self.cert_san.contains(san))
            }
        }
    }

    fn matches_source(&self, addr: &std::net::SocketAddr) -> bool {
        let ip = canonical_ip(addr.ip());
        self.sources.iter().any(|net| net.contains(&ip))
    }

    fn uses_groups(&self) -> bool {
        !self.gids.is_empty()
    }
}

fn parse_source(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))
}

/// `::ffff:127.0.0.1` is matched as `127.0.0.1`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// How a listener attributes its connections.
#[derive(Debug, Clone, Default)]
pub struct ListenerClients {
    /// Every connection is this client, whoever the peer is.
    pub fixed: Option<Arc<str>>,
    /// The client for peers that match no `[[client]]`; `None` refuses everything.
    pub fallback: Option<Arc<str>>,
}

/// Facts about the peer kept for the audit log.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Evidence {
    /// The peer's executable (`/proc/PID/exe`), when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<PathBuf>,
    /// The login uid (`/proc/PID/loginuid`): the person behind `sudo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
    /// A TLS peer's verified client certificate subject (`CN=ci-bot, O=example`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    /// A TLS peer's verified client certificate subject alternative names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cert_san: Vec<String>,
}

impl Evidence {
    /// Reads what /proc tells about `peer`. Best effort: a process may already be gone.
    pub fn collect(peer: &Peer) -> Evidence {
        if let Peer::Tls { cert, .. } = peer {
            return Evidence {
                cert_subject: Some(cert.subject.clone()),
                cert_san: cert.sans.clone(),
                ..Evidence::default()
            };
        }
        let Peer::Unix { pid: Some(pid), .. } = peer else {
            return Evidence::default();
        };
        let exe = std::fs::read_link(proc_path(*pid, "exe")).ok();
        let loginuid = read_loginuid(&proc_path(*pid, "loginuid"))
            // 4294967295 means "not set" (a daemon, or a session without login).
            .filter(|&uid| uid != u32::MAX);
        Evidence {
            exe,
            loginuid,
            ..Evidence::default()
        }
    }
}

/// `/proc/PID/FILE`, written without the formatting machinery: this runs for every
/// connection (the docker CLI opens one per command).
fn proc_path(pid: i32, file: &str) -> String {
    let mut path = String::with_capacity(24 + file.len());
    path.push_str("/proc/");
    path.push_str(itoa::Buffer::new().format(pid));
    path.push('/');
    path.push_str(file);
    path
}

/// A process's login uid (`/proc/PID/loginuid`: a decimal number), read into a small buffer.
fn read_loginuid(path: &str) -> Option<u32> {
    use std::io::Read as _;
    let mut text = [0u8; 16];
    let n = std::fs::File::open(path).ok()?.read(&mut text).ok()?;
    std::str::from_utf8(&text[..n]).ok()?.trim().parse().ok()
}

/// The supplementary groups of a process, from `/proc/PID/status`.
fn process_groups(peer: &Peer) -> Vec<u32> {
    let Peer::Unix { pid: Some(pid), .. } = peer else {
        return Vec::new();
    };
    let Ok(status) = std::fs::read_to_string(proc_path(*pid, "status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The named client a connection belongs to, or `None` for "refuse everything".
pub fn identify(
    clients: &[ClientDef],
    listener: &ListenerClients,
    peer: &Peer,
) -> Option<Arc<str>> {
    if let Some(fixed) = &listener.fixed {
        return Some(fixed.clone());
    }
    let need_groups = clients.iter().any(ClientDef::uses_groups);
    let groups = std::cell::OnceCell::new();
    let lookup = || {
        if need_groups {
            groups.get_or_init(|| process_groups(peer)).clone()
        } else {
            Vec::new()
        }
    };
    clients
        .iter()
        .find(|c| c.matches(peer, &lookup))
        .map(|c| c.name.clone())
        .or_else(|| listener.fallback.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, uids: &[u32], gids: &[u32], sources: &[&str]) -> ClientDef {
        ClientDef::from_raw(
            "client[0]",
            RawClient {
                name: name.into(),
                policy: "p".into(),
                uids: uids.to_vec(),
                users: vec![],
                gids: gids.to_vec(),
                groups: vec![],
                sources: sources.iter().map(|s| s.to_string()).collect(),
                cert_cn: vec![],
                cert_san: vec![],
                ..RawClient::default()
            },
        )
        .unwrap()
    }

    fn unix(uid: u32, gid: u32) -> Peer {
        Peer::Unix {
            uid,
            gid,
            pid: None,
        }
    }

    /// Our own process's evidence is what /proc says of it, read the same way.
    #[test]
    fn evidence_of_a_process_is_its_exe_and_login_uid() {
        let pid = std::process::id() as i32;
        assert_eq!(proc_path(pid, "exe"), format!("/proc/{pid}/exe"));
        let evidence = Evidence::collect(&Peer::Unix {
            uid: 0,
            gid: 0,
            pid: Some(pid),
        });
        assert_eq!(evidence.exe, std::env::current_exe().ok());
        let loginuid = std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|&uid| uid != u32::MAX);
        assert_eq!(evidence.loginuid, loginuid);
        assert_eq!(read_loginuid("/nonexistent/loginuid"), None);
    }

    #[test]
    fn first_matching_client_wins_else_fallback() {
        let clients = vec![
            client("alice", &[1000], &[], &[]),
            client("ci", &[], &[2000], &[]),
            client("lan", &[], &[], &["127.0.0.0/8", "::1"]),
        ];
        let open = ListenerClients::default();
        let name = |p: &Peer, l: &ListenerClients| identify(&clients, l, p).map(|s| s.to_string());
        assert_eq!(name(&unix(1000, 5), &open).as_deref(), Some("alice"));
        assert_eq!(name(&unix(7, 2000), &open).as_deref(), Some("ci"));
        assert_eq!(name(&unix(7, 7), &open), None);
        let tcp = |s: &str| Peer::Tcp(s.parse().unwrap());
        assert_eq!(name(&tcp("127.0.0.9:5"), &open).as_deref(), Some("lan"));
        assert_eq!(
            name(&tcp("[::ffff:127.0.0.1]:5"), &open).as_deref(),
            Some("lan")
        );
        assert_eq!(name(&tcp("[::1]:5"), &open).as_deref(), Some("lan"));
        assert_eq!(name(&tcp("10.0.0.1:5"), &open), None);
        let fallback = ListenerClients {
            fixed: None,
            fallback: Some(Arc::from("guest")),
        };
        assert_eq!(name(&unix(7, 7), &fallback).as_deref(), Some("guest"));
        let fixed = ListenerClients {
            fixed: Some(Arc::from("team")),
            fallback: None,
        };
        assert_eq!(name(&unix(1000, 5), &fixed).as_deref(), Some("team"));
    }

    #[test]
    fn bad_sources_and_names_are_config_errors() {
        let raw = RawClient {
            name: "x".into(),
            policy: "p".into(),
            uids: vec![],
            users: vec!["no-such-user-xyz".into()],
            gids: vec![],
            groups: vec![],
            sources: vec![],
            cert_cn: vec![],
            cert_san: vec![],
            ..RawClient::default()
        };
        let err = ClientDef::from_raw("client[3]", raw).unwrap_err();
        assert!(err.0.contains("client[3].users"), "{err}");
        assert!(parse_source("300.1.1.1").is_err());
        assert_eq!(
            parse_source("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn tls_peers_match_by_certificate_or_source() {
        let raw = |name: &str, cn: &[&str], san: &[&str], sources: &[&str]| RawClient {
            name: name.into(),
            policy: "p".into(),
            uids: vec![],
            users: vec![],
            gids: vec![],
            groups: vec![],
            sources: sources.iter().map(|s| s.to_string()).collect(),
            cert_cn: cn.iter().map(|s| s.to_string()).collect(),
            cert_san: san.iter().map(|s| s.to_string()).collect(),
            ..RawClient::default()
        };
        let clients = vec![
            ClientDef::from_raw("client[0]", raw("ci", &["ci-bot"], &[], &[])).unwrap(),
            ClientDef::from_raw("client[1]", raw("svc", &[], &["svc.example"], &[])).unwrap(),
            ClientDef::from_raw("client[2]", raw("net", &[], &[], &["10.0.0.0/8"])).unwrap(),
        ];
        let open = ListenerClients::default();
        let tls = |addr: &str, cn: &[&str], sans: &[&str]| Peer::Tls {
            addr: addr.parse().unwrap(),
            cert: Arc::new(crate::listener::ClientCert {
                subject: format!("CN={}", cn.first().copied().unwrap_or("")),
                common_names: cn.iter().map(|s| s.to_string()).collect(),
                sans: sans.iter().map(|s| s.to_string()).collect(),
            }),
        };
        let name = |p: &Peer| identify(&clients, &open, p).map(|s| s.to_string());
        assert_eq!(
            name(&tls("127.0.0.1:1", &["ci-bot"], &[])).as_deref(),
            Some("ci")
        );
        assert_eq!(
            name(&tls("127.0.0.1:1", &["x"], &["svc.example"])).as_deref(),
            Some("svc")
        );
        assert_eq!(
            name(&tls("10.1.1.1:1", &["x"], &[])).as_deref(),
            Some("net")
        );
        assert_eq!(name(&tls("127.0.0.1:1", &["dashboard"], &[])), None);
        // A certificate name never matches a plain TCP or unix peer.
        assert_eq!(name(&Peer::Tcp("127.0.0.1:1".parse().unwrap())), None);
        let evidence = Evidence::collect(&tls("127.0.0.1:1", &["ci-bot"], &["a.example"]));
        assert_eq!(evidence.cert_subject.as_deref(), Some("CN=ci-bot"));
        assert_eq!(evidence.cert_san, vec!["a.example".to_string()]);
    }

    #[test]
    fn own_process_groups_are_read() {
        let peer = Peer::Unix {
            uid: 0,
            gid: 0,
            pid: Some(std::process::id() as i32),
        };
        let evidence = Evidence::collect(&peer);
        assert!(evidence.exe.is_some());
        let _ = process_groups(&peer);
    }
}
