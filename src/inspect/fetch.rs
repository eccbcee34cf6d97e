//! Where the daemon fetches from on a client's behalf: registry hosts (pulls, pushes,
//! distribution lookups, plugin and service images, a Dockerfile's `FROM` and `COPY --from`)
//! and URLs (`fromSrc=`, build `remote=`, a Dockerfile's `ADD <url>`).
//!
//! The rule: the daemon must never be made to connect to a loopback, link-local or
//! unspecified address, nor to one of sockwarden's own TCP listeners on an address of this
//! host. A request there reaches services that trust the host (metadata endpoints, local admin
//! APIs, a local registry) with the daemon's rights, and through sockwarden's own listener it
//! would be attributed to that listener's client (a confused deputy).
//!
//! Pure functions: a host is classified here from its text; a DNS name is resolved by the
//! caller (`inspect::layer`), which then runs [`forbidden_addr`] on every address it gets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Violation;
use crate::route::Fetch;

/// A source the daemon would fetch from, with the request field that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `?fromImage`, `name` (the path's image), `Spec.TaskTemplate.ContainerSpec.Image`,
    /// `Dockerfile:3`.
    pub field: String,
    /// What it names (for messages: the reference or URL).
    pub text: String,
    /// Where the daemon connects.
    pub target: Target,
}

/// The sources a request names for an operation that fetches (`fetch`, from the operation
/// table): its query, the object in its path, a service spec's image (`image`, as the
/// service inspector read it). A classic build's Dockerfile is read from its context
/// (`inspect::dockerfile`). A reference whose host cannot be read is refused.
pub fn request_sources(
    fetch: Fetch,
    query: &[(String, String)],
    object: Option<&str>,
    image: Option<&str>,
) -> Result<Vec<Source>, Violation> {
    let first = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let registry = |field: String, text: &str| -> Result<Option<Source>, Violation> {
        let target = registry_target(text).map_err(|m| refusal(&field, m))?;
        Ok(target.map(|target| Source {
            field,
            text: text.to_owned(),
            target,
        }))
    };
    let url = |field: String, text: &str| -> Result<Source, Violation> {
        let target = url_target(text).map_err(|m| refusal(&field, m))?;
        Ok(Source {
            field,
            text: text.to_owned(),
            target,
        })
    };
    let mut out = Vec::new();
    match fetch {
        Fetch::RegistryQuery(key) => {
            if let Some(v) = first(key) {
                out.extend(registry(format!("?{key}"), v)?);
            }
        }
        Fetch::RegistryPath => {
            if let Some(v) = object {
                out.extend(registry("name".into(), v)?);
            }
        }
        Fetch::UrlQuery(key) => {
            // `fromSrc` without a scheme is fetched as `http://VALUE` (`url.Parse` then
            // `u.Scheme = "http"; u.Host = src`).
            if let Some(v) = first(key).filter(|v| *v != "-") {
                let full = if v.contains("://") {
                    v.to_owned()
                } else {
                    format!("http://{v}")
                };
                out.push(url(format!("?{key}"), &full)?);
            }
        }
        Fetch::ServiceImage => {
            if let Some(v) = image {
                out.extend(registry("Spec.TaskTemplate.ContainerSpec.Image".into(), v)?);
            }
        }
        Fetch::Build => {
            if super::build::fetches_remote_context(query) {
                if let Some(v) = first("remote") {
                    out.push(url("?remote".into(), v)?);
                }
            }
        }
    }
    Ok(out)
}

fn refusal(field: &str, reason: String) -> Violation {
    Violation {
        field: field.to_owned(),
        reason,
        setting: None,
        value: None,
    }
}

/// The refusal for a source the daemon may not fetch from, `why` saying what its address is.
pub fn forbidden(source: &Source, why: &str) -> Violation {
    refusal(
        &source.field,
        format!(
            "the daemon would fetch {} from {}, {why}",
            super::docker_json::quote(&source.text),
            source.target
        ),
    )
    .with_value(&source.target)
}

/// Refuses a source whose host is forbidden by its text; returns the DNS names left to
/// resolve.
pub fn check_literal(sources: Vec<Source>, local: &LocalFacts) -> Result<Vec<Source>, Violation> {
    let mut names = Vec::new();
    for source in sources {
        if let Some(why) = forbidden_literal(&source.target, local) {
            return Err(forbidden(&source, why));
        }
        if matches!(source.target.host, Host::Name(_)) {
            names.push(source);
        }
    }
    Ok(names)
}

/// A host the daemon would connect to, with the ports it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// An IP literal or a DNS name, as written (without brackets).
    pub host: Host,
    /// The ports the daemon may use (a registry without a port: 443, then 80).
    pub ports: Vec<u16>,
}

/// The host part of a [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP address literal.
    Ip(IpAddr),
    /// A name the daemon resolves (checked by resolving it too).
    Name(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
            Host::Name(name) => f.write_str(name)?,
        }
        if let [port] = self.ports.as_slice() {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// What this host is: its own addresses and sockwarden's TCP listeners (for the
/// own-listener part of the rule).
#[derive(Debug, Clone, Default)]
pub struct LocalFacts {
    /// Addresses of this host's interfaces.
    pub addrs: Vec<IpAddr>,
    /// sockwarden's bound TCP listeners.
    pub listeners: Vec<SocketAddr>,
}

/// Why the daemon may not connect to `ip:port`, if it may not.
pub fn forbidden_addr(ip: IpAddr, port: u16, local: &LocalFacts) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let why = match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        // 0.0.0.0/8 ("this network"): Linux connects to the host itself.
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("an unspecified address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("an unspecified address"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        _ => None,
    };
    if why.is_some() {
        return why;
    }
    let own_port = local.listeners.iter().any(|l| l.port() == port);
    let on_this_host = local.addrs.contains(&ip)
        || local
            .listeners
            .iter()
            .any(|l| l.ip() == ip || l.ip().is_unspecified());
    (own_port && on_this_host).then_some("one of sockwarden's own listeners")
}

/// Why a host is refused from its text alone (IP literals, `localhost`), if it is; a name
/// left for the caller to resolve passes.
pub fn forbidden_literal(target: &Target, local: &LocalFacts) -> Option<&'static str> {
    match &target.host {
        Host::Ip(ip) => target
            .ports
            .iter()
            .find_map(|port| forbidden_addr(*ip, *port, local)),
        Host::Name(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some("a loopback name")
        }
    }
}

/// The host text of `authority` (`host`, `host:port`, `[v6]:port`) as a target, with
/// `default_ports` when it names none.
fn target_of(authority: &str, default_ports: &[u16]) -> Option<Target> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let ports = match port {
        Some(p) => vec![p.parse::<u16>().ok()?],
        None => default_ports.to_vec(),
    };
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        // A zone (`fe80::1%eth0`) is link-local whatever it names.
        Err(_) if host.contains('%') => Host::Ip(IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0))),
        Err(_) => Host::Name(host.to_owned()),
    };
    Some(Target { host, ports })
}

/// The registry an image reference names (Docker's `splitDockerDomain`: the first path
/// component when it has a `.` or `:`, is `localhost`, or has upper case), or `None` for
/// Docker Hub (the daemon's configured default registry and mirrors).
pub fn registry_target(reference: &str) -> Result<Option<Target>, String> {
    let Some((first, _)) = reference.split_once('/') else {
        return Ok(None);
    };
    let is_domain = first.contains(['.', ':', '['])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase());
    if !is_domain {
        return Ok(None);
    }
    let lower = first.to_ascii_lowercase();
    if lower == "docker.io" || lower == "index.docker.io" {
        return Ok(None);
    }
    target_of(first, &[443, 80])
        .map(Some)
        .ok_or_else(|| format!("cannot read the registry host of {reference:?}"))
}

/// The host of a URL the daemon downloads (`http://`, `https://`, `git://`, `ssh://`,
/// `git@host:path`); an error for what it cannot read.
pub fn url_target(url: &str) -> Result<Target, String> {
    let lower = url.to_ascii_lowercase();
    let (rest, ports): (&str, &[u16]) = if let Some(i) = lower.find("://") {
        let scheme = lower.get(..i).unwrap_or("");
        let ports: &[u16] = match scheme {
            "http" => &[80],
            "https" => &[443],
            "git" => &[9418],
            "ssh" | "git+ssh" => &[22],
            _ => &[80, 443],
        };
        (url.get(i + 3..).unwrap_or(""), ports)
    } else if let Some((user_host, _)) = url.split_once(':') {
        // scp-like `git@host:path`.
        (user_host, &[22])
    } else {
        return Err(format!("cannot read the host of {url:?}"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    target_of(authority, ports).ok_or_else(|| format!("cannot read the host of {url:?}"))
}

/// Whether `s` is a URL the classic builder's `ADD` downloads (`urlutil.IsURL`: `http://` or
/// `https://`; compared without case here, to be safe).
pub fn is_download_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether text that continues with a value sockwarden cannot know could still become a
/// download URL (it is empty or a prefix of `http://` or `https://`).
pub fn could_become_url(prefix: &str) -> bool {
    let lower = prefix.to_ascii_lowercase();
    "http://".starts_with(&lower) || "https://".starts_with(&lower) || is_download_url(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalFacts {
        LocalFacts {
            addrs: vec!["10.1.2.3".parse().unwrap()],
            listeners: vec![
                "127.0.0.1:2375".parse().unwrap(),
                "0.0.0.0:2376".parse().unwrap(),
            ],
        }
    }

    fn refused(reference: &str) -> bool {
        registry_target(reference)
            .map(|t| t.is_some_and(|t| forbidden_literal(&t, &local()).is_some()))
            .unwrap_or(true)
    }

    #[test]
    fn registry_hosts_on_this_host_are_refused() {
        for r in [
            "127.0.0.1:5000/x",
            "localhost:5000/x",
            "localhost/x",
            "LOCALHOST/x",
            "[::1]:5000/x",
            "169.254.169.254/x",
            "[fe80::1]/x",
            "0.0.0.0:5000/x",
            "[::ffff:127.0.0.1]:5000/x",
            "10.1.2.3:2376/x",
            "a.localhost:5000/x",
        ] {
            assert!(refused(r), "{r}");
        }
        for r in [
            "busybox",
            "docker.io/library/busybox",
            "ghcr.io/o/x",
            "10.1.2.3:5000/x",
            "lib/x",
        ] {
            assert!(!refused(r), "{r}");
        }
        assert_eq!(
            registry_target("ghcr.io/o/x").unwrap().unwrap().ports,
            vec![443, 80]
        );
    }

    #[test]
    fn url_hosts() {
        let t = url_target("http://user:pw@127.0.0.1:8080/x?y#z").unwrap();
        assert_eq!(t.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(t.ports, vec![8080]);
        assert_eq!(url_target("https://[::1]/").unwrap().ports, vec![443]);
        assert_eq!(
            url_target("git@github.com:o/r.git").unwrap().host,
            Host::Name("github.com".into())
        );
        assert!(url_target("nonsense").is_err());
        assert!(url_target("http://[::1/").is_err());
        let t = url_target("http://[fe80::1%25eth0]/").unwrap();
        assert!(forbidden_literal(&t, &local()).is_some());
    }

    #[test]
    fn url_shapes() {
        assert!(is_download_url("HTTP://x"));
        assert!(!is_download_url("./http://x"));
        for p in ["", "h", "HTt", "http:/", "https://", "http://127"] {
            assert!(could_become_url(p), "{p}");
        }
        for p in ["./", "x", "/h", "httpx"] {
            assert!(!could_become_url(p), "{p}");
        }
    }
}
