//! Networking: `NetworkingConfig` with its `EndpointSettings` (also network connect's
//! `EndpointConfig`), `HostConfig.PortBindings`, and the `MacAddress` and `Links` fields that
//! `Config`, `HostConfig` and `EndpointSettings` share.

use super::super::common::{
    array, deny, deny_rule, int64, object, str_list, str_map, string, strukt,
};
use super::super::docker_json::{quote, Path, Value};
use super::super::rules::ContainerRules;
use super::super::table::Table;
use super::super::Violation;
use super::{namespaces::network_name, Check, Ctx};

/// The check of one field of a struct that needs only the rules.
pub(crate) type RulesCheck = fn(&Value<'_>, &Path<'_>, &ContainerRules) -> Result<(), Violation>;

/// `network.NetworkingConfig`.
pub(crate) static NETWORKING_CONFIG: Table<Check> =
    Table::new("NetworkingConfig", &[("EndpointsConfig", endpoints_config)]);

/// `network.EndpointSettings`. The fields the daemon fills in (`NetworkID`, `EndpointID`,
/// addresses) must be empty.
pub(crate) static ENDPOINT_SETTINGS: Table<RulesCheck> = Table::new(
    "EndpointSettings",
    &[
        ("IPAMConfig", ipam_config),
        ("Links", links_rule),
        ("Aliases", |v, p, _| str_list(v, p).map(drop)),
        ("DNSNames", |v, p, _| str_list(v, p).map(drop)),
        ("MacAddress", mac_address_rule),
        ("DriverOpts", |v, p, _| {
            if let Some((k, _)) = str_map(v, p)?.first() {
                return Err(deny(&p.key(k), "endpoint driver options are refused"));
            }
            Ok(())
        }),
        ("GwPriority", |v, p, _| int64(v, p).map(drop)),
        ("NetworkID", read_only_string),
        ("EndpointID", read_only_string),
        ("Gateway", read_only_string),
        ("IPAddress", read_only_string),
        ("IPPrefixLen", read_only_int),
        ("IPv6Gateway", read_only_string),
        ("GlobalIPv6Address", read_only_string),
        ("GlobalIPv6PrefixLen", read_only_int),
    ],
);

/// `network.EndpointIPAMConfig`: static addresses need `allow_static_ips`.
pub(crate) static IPAM_CONFIG: Table<RulesCheck> = Table::new(
    "IPAMConfig",
    &[
        ("IPv4Address", |v, p, rules| {
            static_ip(!string(v, p)?.is_empty(), p, rules)
        }),
        ("IPv6Address", |v, p, rules| {
            static_ip(!string(v, p)?.is_empty(), p, rules)
        }),
        ("LinkLocalIPs", |v, p, rules| {
            static_ip(!str_list(v, p)?.is_empty(), p, rules)
        }),
    ],
);

/// What the fields of a `PortBinding` leave for its check.
#[derive(Default)]
pub(crate) struct PortFields<'v> {
    ip: &'v str,
    port: &'v str,
}

/// The check of one field of a `PortBinding`.
type PortCheck = for<'v> fn(&'v Value<'v>, &Path<'_>, &mut PortFields<'v>) -> Result<(), Violation>;

/// `nat.PortBinding`.
pub(crate) static PORT_BINDING: Table<PortCheck> = Table::new(
    "PortBinding",
    &[
        ("HostIp", |v, p, b| {
            b.ip = string(v, p)?;
            Ok(())
        }),
        ("HostPort", |v, p, b| {
            b.port = string(v, p)?;
            Ok(())
        }),
    ],
);

/// `MacAddress` (`Config`): needs `allow_mac_address`.
pub(super) fn mac_address(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    mac_address_rule(v, fp, ctx.rules)
}

fn mac_address_rule(v: &Value<'_>, fp: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    if !string(v, fp)?.is_empty() && !rules.allow_mac_address {
        return Err(deny_rule(
            fp,
            "setting a MAC address is not allowed",
            "allow_mac_address",
        ));
    }
    Ok(())
}

/// `Links` (`HostConfig`): needs `allow_links`.
pub(super) fn links(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    links_rule(v, fp, ctx.rules)
}

fn links_rule(v: &Value<'_>, fp: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    if !str_list(v, fp)?.is_empty() && !rules.allow_links {
        return Err(deny_rule(
            &fp.index(0),
            "container links are not allowed",
            "allow_links",
        ));
    }
    Ok(())
}

/// `NetworkingConfig` (create).
pub(super) fn networking_config(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    NETWORKING_CONFIG.strict(&s, p, |check, val, fp| check(val, fp, ctx))
}

/// `NetworkingConfig.EndpointsConfig`: network name → `EndpointSettings`.
fn endpoints_config(v: &Value<'_>, ep: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let o = object(v, ep)?;
    for (name, es) in o.map_entries() {
        let np = ep.key(name);
        network_name(name, &np, ctx.rules, &mut ctx.sum, false)?;
        if es.is_null() {
            return Err(deny(&np, "null endpoint settings refused"));
        }
        endpoint_settings(es, &np, ctx.rules)?;
    }
    Ok(())
}

/// `EndpointSettings` (create's `NetworkingConfig` entries and network connect's `EndpointConfig`).
pub(crate) fn endpoint_settings(
    v: &Value<'_>,
    p: &Path<'_>,
    rules: &ContainerRules,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    ENDPOINT_SETTINGS.strict(&s, p, |check, val, fp| check(val, fp, rules))
}

fn ipam_config(v: &Value<'_>, fp: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    let s = strukt(v, fp)?;
    IPAM_CONFIG.strict(&s, fp, |check, val, p| check(val, p, rules))
}

fn static_ip(set: bool, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    if set && !rules.allow_static_ips {
        return Err(deny_rule(
            p,
            "static IP addresses are not allowed",
            "allow_static_ips",
        ));
    }
    Ok(())
}

fn read_only_string(v: &Value<'_>, fp: &Path<'_>, _: &ContainerRules) -> Result<(), Violation> {
    if !string(v, fp)?.is_empty() {
        return Err(deny(fp, "read-only endpoint field must not be set"));
    }
    Ok(())
}

fn read_only_int(v: &Value<'_>, fp: &Path<'_>, _: &ContainerRules) -> Result<(), Violation> {
    if int64(v, fp)? != 0 {
        return Err(deny(fp, "read-only endpoint field must not be set"));
    }
    Ok(())
}

/// `HostConfig.PortBindings`: port → list of `PortBinding`.
pub(super) fn port_bindings(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let o = object(v, p)?;
    for (port, list) in o.map_entries() {
        let kp = p.key(port);
        if list.is_null() {
            continue;
        }
        for (i, b) in array(list, &kp)?.iter().enumerate() {
            let bp = kp.index(i);
            if b.is_null() {
                return Err(deny(&bp, "null port binding refused"));
            }
            let s = strukt(b, &bp)?;
            let mut f = PortFields::default();
            PORT_BINDING.strict(&s, &bp, |check, val, fp| check(val, fp, &mut f))?;
            port_binding(port, &f, &bp, ctx)?;
        }
    }
    Ok(())
}

/// One binding of `port`: allowed at all, on an allowed address, at or above `min_host_port`.
fn port_binding(
    port: &str,
    f: &PortFields<'_>,
    bp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let rules = ctx.rules;
    if !rules.allow_port_bindings {
        return Err(deny_rule(
            bp,
            "publishing ports on the host is not allowed",
            "allow_port_bindings",
        ));
    }
    let eff_ip = if f.ip.is_empty() { "0.0.0.0" } else { f.ip };
    if !rules.port_host_ips.iter().any(|a| a == eff_ip) {
        return Err(deny_rule(
            &bp.field("HostIp"),
            format!("host address {eff_ip} is not allowed"),
            "port_host_ips",
        )
        .with_value(eff_ip));
    }
    let hport = f.port;
    if !hport.is_empty() {
        let (lo, hi) = hport.split_once('-').unwrap_or((hport, hport));
        for part in [lo, hi] {
            match part.parse::<u16>() {
                Ok(n) if n >= rules.min_host_port => {}
                Ok(n) => {
                    return Err(deny_rule(
                        &bp.field("HostPort"),
                        format!("host port {n} is below {}", rules.min_host_port),
                        "min_host_port",
                    )
                    .with_value(n))
                }
                Err(_) => {
                    return Err(deny(
                        &bp.field("HostPort"),
                        format!("invalid host port {}", quote(hport)),
                    ))
                }
            }
        }
    }
    ctx.sum
        .port_bindings
        .push(format!("{eff_ip}:{hport}->{port}"));
    Ok(())
}
