//! `POST /networks/create` (`NetworkCreateRequest`) and `POST /networks/{id}/connect`.

use super::common::{
    array, boolean, check_labels, deny, deny_rule, is_hex, parse_body, str_map, string, strukt,
};
use super::container::endpoint_settings;
use super::docker_json::{quote, Path, Value};
use super::rules::{ContainerRules, NetworkRules};
use super::table::Table;
use super::{Summary, Violation};

/// The state of one network create inspection: the rules, the driver (checked once the body is
/// read) and the summary.
pub(crate) struct Network<'v> {
    rules: &'v NetworkRules,
    driver: &'v str,
    sum: Summary,
}

/// The check of one field of a network create body.
pub(crate) type NetworkCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut Network<'v>) -> Result<(), Violation>;

/// `network.CreateRequest` (the network create body).
pub(crate) static NETWORK: Table<NetworkCheck> = Table::new(
    "network create body",
    &[
        ("Name", |v, p, n| {
            let name = string(v, p)?;
            if name.len() >= 4 && is_hex(name) {
                return Err(deny(
                    p,
                    format!("network name {} looks like an ID prefix", quote(name)),
                ));
            }
            n.sum.name = Some(name.to_string());
            Ok(())
        }),
        ("CheckDuplicate", a_bool),
        ("Driver", |v, p, n| {
            n.driver = string(v, p)?;
            Ok(())
        }),
        ("Scope", |v, p, _| {
            let sc = string(v, p)?;
            if !sc.is_empty() && sc != "local" {
                return Err(deny(p, format!("network scope {} is refused", quote(sc))));
            }
            Ok(())
        }),
        ("EnableIPv4", a_bool),
        ("EnableIPv6", |v, p, n| {
            if boolean(v, p)? && !n.rules.allow_ipv6 {
                return Err(deny_rule(p, "IPv6 networks are not allowed", "allow_ipv6"));
            }
            Ok(())
        }),
        ("IPAM", |v, p, n| {
            let s = strukt(v, p)?;
            IPAM.strict(&s, p, |check, val, fp| check(val, fp, n.rules))
        }),
        ("Internal", a_bool),
        ("Attachable", a_bool),
        ("Ingress", |v, p, _| {
            if boolean(v, p)? {
                return Err(deny(
                    p,
                    "ingress networks (the swarm routing mesh) are refused",
                ));
            }
            Ok(())
        }),
        ("ConfigOnly", |v, p, n| {
            if boolean(v, p)? && !n.rules.allow_config_networks {
                return Err(deny_rule(
                    p,
                    "config-only networks are not allowed",
                    "allow_config_networks",
                ));
            }
            Ok(())
        }),
        ("ConfigFrom", config_from),
        ("Options", |v, p, n| {
            if let Some((k, _)) = str_map(v, p)?.first() {
                if !n.rules.allow_options {
                    return Err(deny_rule(
                        &p.key(k),
                        "network driver options are not allowed",
                        "allow_options",
                    ));
                }
            }
            Ok(())
        }),
        ("Labels", |v, p, n| {
            let m = str_map(v, p)?;
            check_labels(&m, p, &n.rules.reserved_labels)
        }),
    ],
);

/// The check of one field of a struct below a network create body.
pub(crate) type RulesCheck = fn(&Value<'_>, &Path<'_>, &NetworkRules) -> Result<(), Violation>;

/// The check of one field of `ConfigFrom`: it leaves the network's name.
type ConfigFromCheck = for<'v> fn(&'v Value<'v>, &Path<'_>, &mut &'v str) -> Result<(), Violation>;

/// `network.ConfigReference`.
pub(crate) static CONFIG_FROM: Table<ConfigFromCheck> = Table::new(
    "ConfigFrom",
    &[("Network", |v, p, network| {
        *network = string(v, p)?;
        Ok(())
    })],
);

/// `network.IPAM`.
pub(crate) static IPAM: Table<RulesCheck> = Table::new(
    "IPAM",
    &[
        ("Driver", |v, p, _| {
            let d = string(v, p)?;
            if !d.is_empty() && d != "default" {
                return Err(deny(p, format!("IPAM driver {} is refused", quote(d))));
            }
            Ok(())
        }),
        ("Config", ipam_pools),
        ("Options", |v, p, rules| {
            if let Some((k, _)) = str_map(v, p)?.first() {
                if !rules.allow_ipam_config {
                    return Err(deny_rule(
                        &p.key(k),
                        "IPAM options are not allowed",
                        "allow_ipam_config",
                    ));
                }
            }
            Ok(())
        }),
    ],
);

/// `network.IPAMConfig` (one address pool).
pub(crate) static IPAM_POOL: Table<RulesCheck> = Table::new(
    "IPAMConfig",
    &[
        ("Subnet", a_string),
        ("IPRange", a_string),
        ("Gateway", a_string),
        ("AuxiliaryAddresses", |v, p, _| str_map(v, p).map(drop)),
    ],
);

fn a_bool(v: &Value<'_>, p: &Path<'_>, _: &mut Network<'_>) -> Result<(), Violation> {
    boolean(v, p).map(drop)
}

fn a_string(v: &Value<'_>, p: &Path<'_>, _: &NetworkRules) -> Result<(), Violation> {
    string(v, p).map(drop)
}

/// `ConfigFrom`: reusing another network's configuration needs `allow_config_networks`.
fn config_from(v: &Value<'_>, fp: &Path<'_>, n: &mut Network<'_>) -> Result<(), Violation> {
    let s = strukt(v, fp)?;
    let mut network = "";
    CONFIG_FROM.strict(&s, fp, |check, val, p| check(val, p, &mut network))?;
    if !network.is_empty() && !n.rules.allow_config_networks {
        return Err(deny_rule(
            fp,
            "reusing another network's configuration is not allowed",
            "allow_config_networks",
        ));
    }
    Ok(())
}

/// `IPAM.Config`: explicit pools need `allow_ipam_config`.
fn ipam_pools(v: &Value<'_>, fp: &Path<'_>, rules: &NetworkRules) -> Result<(), Violation> {
    for (i, cfg) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if cfg.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let cs = strukt(cfg, &ip)?;
        IPAM_POOL.strict(&cs, &ip, |check, val, p| check(val, p, rules))?;
        if !rules.allow_ipam_config {
            return Err(deny_rule(
                &ip,
                "explicit subnets / gateways are not allowed",
                "allow_ipam_config",
            ));
        }
    }
    Ok(())
}

/// Inspects the body of `POST /networks/create`. Unknown fields are refused.
pub fn network_create(body: &[u8], rules: &NetworkRules) -> Result<Summary, Violation> {
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut n = Network {
        rules,
        driver: "",
        sum: Summary::new("network_create"),
    };
    let unknown = |fp: &Path<'_>| Some(deny(fp, "unknown field in network create body refused"));
    NETWORK.walk(&s, &p, false, unknown, |check, v, fp| check(v, fp, &mut n))?;
    let eff = if n.driver.is_empty() {
        "bridge"
    } else {
        n.driver
    };
    if !rules.drivers.iter().any(|d| d == eff) {
        return Err(deny_rule(
            &p.field("Driver"),
            format!("network driver {} is not allowed", quote(eff)),
            "drivers",
        )
        .with_value(eff));
    }
    n.sum.driver = Some(eff.to_string());
    Ok(n.sum)
}

/// The state of one network connect inspection.
pub(crate) struct Connect<'r> {
    rules: &'r ContainerRules,
    sum: Summary,
}

/// The check of one field of a network connect body.
pub(crate) type ConnectCheck = fn(&Value<'_>, &Path<'_>, &mut Connect<'_>) -> Result<(), Violation>;

/// `network.ConnectOptions` (the network connect body).
pub(crate) static CONNECT: Table<ConnectCheck> = Table::new(
    "network connect body",
    &[
        ("Container", |v, p, c| {
            c.sum.name = Some(string(v, p)?.to_string());
            Ok(())
        }),
        ("EndpointConfig", |v, p, c| endpoint_settings(v, p, c.rules)),
    ],
);

/// Inspects the body of `POST /networks/{id}/connect`: `Container` (returned as
/// `Summary::name` for the caller's ownership check) and `EndpointConfig`, checked like
/// `NetworkingConfig` entries of a create body with the container rules. The network itself
/// (path parameter) is the caller's to resolve.
pub fn network_connect(body: &[u8], rules: &ContainerRules) -> Result<Summary, Violation> {
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut c = Connect {
        rules,
        sum: Summary::new("network_connect"),
    };
    let unknown = |fp: &Path<'_>| Some(deny(fp, "unknown field in network connect body refused"));
    CONNECT.walk(&s, &p, false, unknown, |check, v, fp| check(v, fp, &mut c))?;
    if c.sum.name.as_deref().is_none_or(str::is_empty) {
        return Err(deny(&p.field("Container"), "Container is required"));
    }
    Ok(c.sum)
}
