//! A service's networks (`TaskTemplate.Networks`, the deprecated top-level `Networks`) and its
//! `EndpointSpec`.

use super::super::common::{array, deny, deny_rule, int, str_list, str_map, string, strukt};
use super::super::container::{network_name, walk, Check, Ctx};
use super::super::docker_json::{quote, GoInt, Path, Value};
use super::super::table::Table;
use super::super::Violation;

/// What the fields of a network attachment leave for its check: the network.
type AttachmentCheck = for<'v> fn(&'v Value<'v>, &Path<'_>, &mut &'v str) -> Result<(), Violation>;

/// `swarm.NetworkAttachmentConfig`.
pub(crate) static NETWORK_ATTACHMENT: Table<AttachmentCheck> = Table::new(
    "NetworkAttachmentConfig",
    &[
        ("Target", |v, p, target| {
            *target = string(v, p)?;
            Ok(())
        }),
        ("Aliases", |v, p, _| str_list(v, p).map(drop)),
        ("DriverOpts", |v, p, _| {
            if let Some((k, _)) = str_map(v, p)?.first() {
                return Err(deny(&p.key(k), "network driver options are refused"));
            }
            Ok(())
        }),
    ],
);

/// `swarm.EndpointSpec`.
pub(crate) static ENDPOINT_SPEC: Table<Check> = Table::new(
    "EndpointSpec",
    &[
        ("Mode", |v, p, _| {
            let m = string(v, p)?;
            if !["", "vip", "dnsrr"].contains(&m) {
                return Err(deny(p, format!("unknown endpoint mode {}", quote(m))));
            }
            Ok(())
        }),
        ("Ports", ports),
    ],
);

/// What the fields of a `PortConfig` leave for its check.
#[derive(Default)]
pub(crate) struct PortFields<'v> {
    protocol: &'v str,
    target: i128,
    published: i128,
}

/// The check of one field of a `PortConfig`.
type PortCheck = for<'v> fn(&'v Value<'v>, &Path<'_>, &mut PortFields<'v>) -> Result<(), Violation>;

/// `swarm.PortConfig`.
pub(crate) static PORT_CONFIG: Table<PortCheck> = Table::new(
    "PortConfig",
    &[
        ("Name", |v, p, _| string(v, p).map(drop)),
        ("Protocol", |v, p, f| {
            f.protocol = string(v, p)?;
            if !["", "tcp", "udp", "sctp"].contains(&f.protocol) {
                return Err(deny(p, format!("unknown protocol {}", quote(f.protocol))));
            }
            Ok(())
        }),
        ("TargetPort", |v, p, f| {
            f.target = int(v, p, GoInt::Uint32)?;
            Ok(())
        }),
        ("PublishedPort", |v, p, f| {
            f.published = int(v, p, GoInt::Uint32)?;
            Ok(())
        }),
        ("PublishMode", |v, p, _| {
            let m = string(v, p)?;
            if !["", "ingress", "host"].contains(&m) {
                return Err(deny(p, format!("unknown publish mode {}", quote(m))));
            }
            Ok(())
        }),
    ],
);

/// `TaskTemplate.Networks` / `Networks`: each `Target` under the container network rules
/// (`host` needs `allow_host_namespaces`); driver options refused.
pub(super) fn networks(v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, n) in array(v, p)?.iter().enumerate() {
        let ip = p.index(i);
        if n.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(n, &ip)?;
        let mut target = "";
        NETWORK_ATTACHMENT.strict(&s, &ip, |check, val, fp| check(val, fp, &mut target))?;
        network_name(target, &ip.field("Target"), ctx.rules, &mut ctx.sum, false)?;
    }
    Ok(())
}

/// `EndpointSpec`: every port entry publishes on all interfaces of every node (ingress picks a
/// port when `PublishedPort` is 0; host mode an ephemeral one), so each needs
/// `allow_port_bindings` and `0.0.0.0` in `port_host_ips`; a set `PublishedPort` must be at
/// least `min_host_port`.
pub(super) fn endpoint_spec(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    walk(&ENDPOINT_SPEC, v, p, ctx)
}

fn ports(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let rules = ctx.rules;
    for (i, port) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if port.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let ps = strukt(port, &ip)?;
        let mut f = PortFields::default();
        PORT_CONFIG.strict(&ps, &ip, |check, val, pp| check(val, pp, &mut f))?;
        if !rules.allow_port_bindings {
            return Err(deny_rule(
                &ip,
                "publishing ports on the host is not allowed",
                "allow_port_bindings",
            ));
        }
        if !rules.port_host_ips.iter().any(|a| a == "0.0.0.0") {
            return Err(deny_rule(
                &ip,
                "a service publishes on all interfaces (0.0.0.0), which is not allowed",
                "port_host_ips",
            )
            .with_value("0.0.0.0"));
        }
        if f.published != 0 && f.published < i128::from(rules.min_host_port) {
            return Err(deny_rule(
                &ip.field("PublishedPort"),
                format!("host port {} is below {}", f.published, rules.min_host_port),
                "min_host_port",
            )
            .with_value(f.published));
        }
        let proto = if f.protocol.is_empty() {
            "tcp"
        } else {
            f.protocol
        };
        ctx.sum
            .port_bindings
            .push(format!("0.0.0.0:{}->{}/{proto}", f.published, f.target));
    }
    Ok(())
}
