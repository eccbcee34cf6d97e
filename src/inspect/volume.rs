//! `POST /volumes/create` (`VolumeCreateBody`).

use super::common::{
    canon, check_labels, deny, deny_rule, local_tmpfs_opts_only, parse_body, str_map, string,
    strukt, valid_object_name,
};
use super::docker_json::{quote, Path};
use super::rules::VolumeRules;
use super::{Summary, Violation};

const VOLUME_FIELDS: &[&str] = &[
    "Name",
    "Driver",
    "DriverOpts",
    "Labels",
    "ClusterVolumeSpec",
];

/// Inspects the body of `POST /volumes/create`. Unknown fields are refused.
pub fn volume_create(body: &[u8], rules: &VolumeRules) -> Result<Summary, Violation> {
    let mut sum = Summary::new("volume_create");
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut driver = "";
    let mut opts: Vec<(&str, &str)> = Vec::new();
    for (key, v) in s.entries() {
        let Some(c) = canon(key, VOLUME_FIELDS) else {
            return Err(deny(
                &p.field(key),
                "unknown field in volume create body refused",
            ));
        };
        if v.is_null() {
            continue;
        }
        let fp = p.field(c);
        match c {
            "Name" => {
                let n = string(v, &fp)?;
                if !n.is_empty() {
                    if !valid_object_name(n) {
                        return Err(deny(&fp, format!("invalid volume name {}", quote(n))));
                    }
                    sum.name = Some(n.to_string());
                }
            }
            "Driver" => driver = string(v, &fp)?,
            "DriverOpts" => opts = str_map(v, &fp)?,
            "Labels" => {
                let m = str_map(v, &fp)?;
                check_labels(&m, &fp, &rules.reserved_labels)?;
            }
            "ClusterVolumeSpec" => return Err(deny(&fp, "cluster (CSI) volumes are refused")),
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    let eff = if driver.is_empty() { "local" } else { driver };
    if !rules.drivers.iter().any(|d| d == eff) {
        return Err(deny_rule(
            &p.field("Driver"),
            format!("volume driver {} is not allowed", quote(eff)),
            "drivers",
        )
        .with_value(eff));
    }
    sum.driver = Some(eff.to_string());
    if !opts.is_empty() && !rules.allow_driver_opts {
        let op = p.field("DriverOpts");
        let tmpfs_ok = rules.allow_tmpfs_driver_opts && eff == "local";
        match (tmpfs_ok, local_tmpfs_opts_only(&opts)) {
            (true, Ok(())) => {}
            (true, Err(m)) => {
                return Err(deny_rule(
                    &op,
                    format!("{m}; only local tmpfs options are accepted"),
                    "allow_driver_opts",
                ))
            }
            (false, _) => {
                return Err(deny_rule(
                    &op,
                    "volume driver options are not allowed",
                    "allow_driver_opts",
                ))
            }
        }
    }
    Ok(sum)
}
