//! `POST /volumes/create` (`VolumeCreateBody`).

use super::common::{
    check_labels, deny, deny_rule, local_tmpfs_opts_only, parse_body, str_map, string, strukt,
    valid_object_name,
};
use super::docker_json::{quote, Path, Value};
use super::rules::VolumeRules;
use super::table::Table;
use super::{Summary, Violation};

/// The state of one volume inspection: the rules, what the driver check needs, the summary.
pub(crate) struct Volume<'v> {
    rules: &'v VolumeRules,
    driver: &'v str,
    opts: Vec<(&'v str, &'v str)>,
    sum: Summary,
}

/// The check of one field of a volume create body.
pub(crate) type VolumeCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut Volume<'v>) -> Result<(), Violation>;

/// `volume.CreateOptions` (the volume create body).
pub(crate) static VOLUME: Table<VolumeCheck> = Table::new(
    "volume create body",
    &[
        ("Name", |v, p, vol| {
            let n = string(v, p)?;
            if !n.is_empty() {
                if !valid_object_name(n) {
                    return Err(deny(p, format!("invalid volume name {}", quote(n))));
                }
                vol.sum.name = Some(n.to_string());
            }
            Ok(())
        }),
        ("Driver", |v, p, vol| {
            vol.driver = string(v, p)?;
            Ok(())
        }),
        ("DriverOpts", |v, p, vol| {
            vol.opts = str_map(v, p)?;
            Ok(())
        }),
        ("Labels", |v, p, vol| {
            let m = str_map(v, p)?;
            check_labels(&m, p, &vol.rules.reserved_labels)
        }),
        ("ClusterVolumeSpec", |_, p, _| {
            Err(deny(p, "cluster (CSI) volumes are refused"))
        }),
    ],
);

/// Inspects the body of `POST /volumes/create`. Unknown fields are refused.
pub fn volume_create(body: &[u8], rules: &VolumeRules) -> Result<Summary, Violation> {
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut vol = Volume {
        rules,
        driver: "",
        opts: Vec::new(),
        sum: Summary::new("volume_create"),
    };
    let unknown = |fp: &Path<'_>| Some(deny(fp, "unknown field in volume create body refused"));
    VOLUME.walk(&s, &p, false, unknown, |check, v, fp| {
        check(v, fp, &mut vol)
    })?;
    let eff = if vol.driver.is_empty() {
        "local"
    } else {
        vol.driver
    };
    if !rules.drivers.iter().any(|d| d == eff) {
        return Err(deny_rule(
            &p.field("Driver"),
            format!("volume driver {} is not allowed", quote(eff)),
            "drivers",
        )
        .with_value(eff));
    }
    vol.sum.driver = Some(eff.to_string());
    if !vol.opts.is_empty() && !rules.allow_driver_opts {
        let op = p.field("DriverOpts");
        let tmpfs_ok = rules.allow_tmpfs_driver_opts && eff == "local";
        match (tmpfs_ok, local_tmpfs_opts_only(&vol.opts)) {
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
    Ok(vol.sum)
}
