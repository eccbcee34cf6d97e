//! `POST /networks/create` (`NetworkCreateRequest`).

use super::common::{
    array, boolean, canon, check_labels, deny, deny_rule, is_hex, known_fields, parse_body,
    str_map, string, strukt,
};
use super::container::endpoint_settings;
use super::docker_json::{quote, Path, Value};
use super::rules::{ContainerRules, NetworkRules};
use super::{Summary, Violation};

const NETWORK_FIELDS: &[&str] = &[
    "Name",
    "CheckDuplicate",
    "Driver",
    "Scope",
    "EnableIPv4",
    "EnableIPv6",
    "IPAM",
    "Internal",
    "Attachable",
    "Ingress",
    "ConfigOnly",
    "ConfigFrom",
    "Options",
    "Labels",
];

/// Inspects the body of `POST /networks/create`. Unknown fields are refused.
pub fn network_create(body: &[u8], rules: &NetworkRules) -> Result<Summary, Violation> {
    let mut sum = Summary::new("network_create");
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut driver = "";
    for (key, v) in s.entries() {
        let Some(c) = canon(key, NETWORK_FIELDS) else {
            return Err(deny(
                &p.field(key),
                "unknown field in network create body refused",
            ));
        };
        if v.is_null() {
            continue;
        }
        let fp = p.field(c);
        match c {
            "Name" => {
                let n = string(v, &fp)?;
                if n.len() >= 4 && is_hex(n) {
                    return Err(deny(
                        &fp,
                        format!("network name {} looks like an ID prefix", quote(n)),
                    ));
                }
                sum.name = Some(n.to_string());
            }
            "Driver" => driver = string(v, &fp)?,
            "Scope" => {
                let sc = string(v, &fp)?;
                if !sc.is_empty() && sc != "local" {
                    return Err(deny(&fp, format!("network scope {} is refused", quote(sc))));
                }
            }
            "CheckDuplicate" | "Internal" | "Attachable" | "EnableIPv4" => {
                boolean(v, &fp)?;
            }
            "EnableIPv6" => {
                if boolean(v, &fp)? && !rules.allow_ipv6 {
                    return Err(deny_rule(
                        &fp,
                        "IPv6 networks are not allowed",
                        "allow_ipv6",
                    ));
                }
            }
            "Ingress" => {
                if boolean(v, &fp)? {
                    return Err(deny(
                        &fp,
                        "ingress networks (the swarm routing mesh) are refused",
                    ));
                }
            }
            "ConfigOnly" => {
                if boolean(v, &fp)? && !rules.allow_config_networks {
                    return Err(deny_rule(
                        &fp,
                        "config-only networks are not allowed",
                        "allow_config_networks",
                    ));
                }
            }
            "ConfigFrom" => {
                let cf = strukt(v, &fp)?;
                for (_, nv) in known_fields(&cf, &fp, &["Network"], "ConfigFrom")? {
                    let n = string(nv, &fp.field("Network"))?;
                    if !n.is_empty() && !rules.allow_config_networks {
                        return Err(deny_rule(
                            &fp,
                            "reusing another network's configuration is not allowed",
                            "allow_config_networks",
                        ));
                    }
                }
            }
            "IPAM" => ipam(v, &fp, rules)?,
            "Options" => {
                if let Some((k, _)) = str_map(v, &fp)?.first() {
                    if !rules.allow_options {
                        return Err(deny_rule(
                            &fp.key(k),
                            "network driver options are not allowed",
                            "allow_options",
                        ));
                    }
                }
            }
            "Labels" => {
                let m = str_map(v, &fp)?;
                check_labels(&m, &fp, &rules.reserved_labels)?;
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    let eff = if driver.is_empty() { "bridge" } else { driver };
    if !rules.drivers.iter().any(|d| d == eff) {
        return Err(deny_rule(
            &p.field("Driver"),
            format!("network driver {} is not allowed", quote(eff)),
            "drivers",
        )
        .with_value(eff));
    }
    sum.driver = Some(eff.to_string());
    Ok(sum)
}

fn ipam(v: &Value, p: &Path<'_>, rules: &NetworkRules) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, &["Driver", "Config", "Options"], "IPAM")? {
        let fp = p.field(c);
        match c {
            "Driver" => {
                let d = string(val, &fp)?;
                if !d.is_empty() && d != "default" {
                    return Err(deny(&fp, format!("IPAM driver {} is refused", quote(d))));
                }
            }
            "Options" => {
                if let Some((k, _)) = str_map(val, &fp)?.first() {
                    if !rules.allow_ipam_config {
                        return Err(deny_rule(
                            &fp.key(k),
                            "IPAM options are not allowed",
                            "allow_ipam_config",
                        ));
                    }
                }
            }
            _ => {
                for (i, cfg) in array(val, &fp)?.iter().enumerate() {
                    let ip = fp.index(i);
                    if cfg.is_null() {
                        return Err(deny(&ip, "null element refused"));
                    }
                    let cs = strukt(cfg, &ip)?;
                    for (cc, cv) in known_fields(
                        &cs,
                        &ip,
                        &["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"],
                        "IPAMConfig",
                    )? {
                        if cc == "AuxiliaryAddresses" {
                            str_map(cv, &ip.field(cc))?;
                        } else {
                            string(cv, &ip.field(cc))?;
                        }
                    }
                    if !rules.allow_ipam_config {
                        return Err(deny_rule(
                            &ip,
                            "explicit subnets / gateways are not allowed",
                            "allow_ipam_config",
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Inspects the body of `POST /networks/{id}/connect`: `Container` (returned as
/// `Summary::name` for the caller's ownership check) and `EndpointConfig`, checked like
/// `NetworkingConfig` entries of a create body with the container rules. The network itself
/// (path parameter) is the caller's to resolve.
pub fn network_connect(body: &[u8], rules: &ContainerRules) -> Result<Summary, Violation> {
    let mut sum = Summary::new("network_connect");
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    for (key, v) in s.entries() {
        let Some(c) = canon(key, &["Container", "EndpointConfig"]) else {
            return Err(deny(
                &p.field(key),
                "unknown field in network connect body refused",
            ));
        };
        if v.is_null() {
            continue;
        }
        let fp = p.field(c);
        if c == "Container" {
            sum.name = Some(string(v, &fp)?.to_string());
        } else {
            endpoint_settings(v, &fp, rules)?;
        }
    }
    if sum.name.as_deref().is_none_or(str::is_empty) {
        return Err(deny(&p.field("Container"), "Container is required"));
    }
    Ok(sum)
}
