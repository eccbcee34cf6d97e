//! Filesystem mounts: `HostConfig.Binds`, `HostConfig.Mounts` (the `Mount` struct and its option
//! structs, also a service's `ContainerSpec.Mounts`), `HostConfig.Tmpfs` and `Config.Volumes`.

use super::super::common::{
    array, boolean, check_target, clean_path, deny, deny_rule, host_path_allowed, int, int64,
    kernel_size, local_tmpfs_opts_only, set_keys, str_list, str_map, string, strukt,
    valid_object_name,
};
use super::super::docker_json::{quote, GoInt, Path, Value};
use super::super::rules::ContainerRules;
use super::super::table::Table;
use super::super::{MountSummary, Summary, Violation};
use super::{a_bool, Check, Ctx};

/// What the fields of a `Mount` leave for the checks of the whole mount.
#[derive(Default)]
pub(crate) struct MountFields<'v> {
    typ: &'v str,
    source: &'v str,
    target: &'v str,
    read_only: bool,
    bind: Option<&'v Value<'v>>,
    volume: Option<&'v Value<'v>>,
    tmpfs: Option<&'v Value<'v>>,
}

/// The check of one field of a `Mount`: its type, and what it leaves for the whole.
pub(crate) type MountCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut MountFields<'v>) -> Result<(), Violation>;

/// `mount.Mount`.
pub(crate) static MOUNT: Table<MountCheck> = Table::new(
    "Mount",
    &[
        ("Type", |v, p, m| {
            m.typ = string(v, p)?;
            Ok(())
        }),
        ("Source", |v, p, m| {
            m.source = string(v, p)?;
            Ok(())
        }),
        ("Target", |v, p, m| {
            m.target = string(v, p)?;
            Ok(())
        }),
        ("ReadOnly", |v, p, m| {
            m.read_only = boolean(v, p)?;
            Ok(())
        }),
        ("Consistency", |v, p, _| string(v, p).map(drop)),
        // The option structs are checked with the mount type, once every field is read.
        ("BindOptions", |v, _, m| {
            m.bind = Some(v);
            Ok(())
        }),
        ("VolumeOptions", |v, _, m| {
            m.volume = Some(v);
            Ok(())
        }),
        ("ImageOptions", |_, p, _| {
            Err(deny(p, "image mounts are refused"))
        }),
        ("TmpfsOptions", |v, _, m| {
            m.tmpfs = Some(v);
            Ok(())
        }),
        ("ClusterOptions", |_, p, _| {
            Err(deny(p, "cluster (CSI) mounts are refused"))
        }),
    ],
);

/// `mount.BindOptions`.
pub(crate) static BIND_OPTIONS: Table<Check> = Table::new(
    "BindOptions",
    &[
        ("Propagation", |v, p, _| {
            let pr = string(v, p)?;
            if !["", "private", "rprivate"].contains(&pr) {
                return Err(deny(
                    p,
                    format!("mount propagation {} is refused", quote(pr)),
                ));
            }
            Ok(())
        }),
        ("NonRecursive", a_bool),
        ("CreateMountpoint", |v, p, _| {
            if boolean(v, p)? {
                return Err(deny(p, "CreateMountpoint creates directories on the host"));
            }
            Ok(())
        }),
        ("ReadOnlyNonRecursive", |v, p, _| {
            if boolean(v, p)? {
                return Err(deny(p, "ReadOnlyNonRecursive leaves submounts writable"));
            }
            Ok(())
        }),
        ("ReadOnlyForceRecursive", a_bool),
    ],
);

/// `mount.VolumeOptions`.
pub(crate) static VOLUME_OPTIONS: Table<Check> = Table::new(
    "VolumeOptions",
    &[
        ("NoCopy", a_bool),
        ("Labels", super::labels),
        ("DriverConfig", driver_config),
        ("Subpath", |v, p, _| {
            let sp = string(v, p)?;
            if sp.starts_with('/') || sp.split('/').any(|c| c == "..") {
                return Err(deny(
                    p,
                    "Subpath must be relative and must not contain '..'",
                ));
            }
            Ok(())
        }),
    ],
);

/// What the fields of a volume's `DriverConfig` leave for its check: the driver and options.
#[derive(Default)]
pub(crate) struct DriverFields<'v> {
    name: &'v str,
    opts: Vec<(&'v str, &'v str)>,
}

/// The check of one field of a `DriverConfig`.
type DriverCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut DriverFields<'v>) -> Result<(), Violation>;

/// `mount.Driver` as a volume mount's `DriverConfig`.
pub(crate) static DRIVER_CONFIG: Table<DriverCheck> = Table::new(
    "DriverConfig",
    &[
        ("Name", |v, p, d| {
            d.name = string(v, p)?;
            Ok(())
        }),
        ("Options", |v, p, d| {
            d.opts = str_map(v, p)?;
            Ok(())
        }),
    ],
);

/// The check of one field of `TmpfsOptions`; the size is left for the check of the whole.
type TmpfsCheck = fn(&Value<'_>, &Path<'_>, &mut i64) -> Result<(), Violation>;

/// `mount.TmpfsOptions`; the size is left for the check against `max_tmpfs_bytes`.
pub(crate) static TMPFS_OPTIONS: Table<TmpfsCheck> = Table::new(
    "TmpfsOptions",
    &[
        ("SizeBytes", |v, p, size| {
            *size = int64(v, p)?;
            if *size < 0 {
                return Err(deny(p, "negative tmpfs size"));
            }
            Ok(())
        }),
        ("Mode", |v, p, _| {
            let m = int(v, p, GoInt::Uint32)?;
            if m > 0o1777 {
                return Err(deny(
                    p,
                    format!("tmpfs mode {m:o} is above 1777 (setuid/setgid bits)"),
                ));
            }
            Ok(())
        }),
        ("Options", |v, p, _| {
            for (i, o) in array(v, p)?.iter().enumerate() {
                let op = p.index(i);
                let l = str_list(o, &op)?;
                match l.as_slice() {
                    [name] if ["noexec", "nosuid", "nodev"].contains(name) => {}
                    _ => {
                        return Err(deny(
                            &op,
                            "only noexec, nosuid and nodev tmpfs options are accepted",
                        ))
                    }
                }
            }
            Ok(())
        }),
    ],
);

// ---------------------------------------------------------------------------------------------
// Binds

#[derive(Default)]
struct BindMode<'a> {
    read_only: bool,
    relabel: bool,
    propagation: Option<&'a str>,
}

/// moby `linuxValidMountMode` + `ReadWrite`: comma list, at most one option per category.
fn bind_mode(mode: &str) -> Option<BindMode<'_>> {
    let mut m = BindMode::default();
    if mode.is_empty() {
        return Some(m);
    }
    let (mut rw, mut label, mut prop, mut copy, mut cons) = (0, 0, 0, 0, 0);
    for o in mode.split(',') {
        match o {
            "rw" | "ro" => {
                rw += 1;
                m.read_only |= o == "ro";
            }
            "z" | "Z" => {
                label += 1;
                m.relabel = true;
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                prop += 1;
                m.propagation = Some(o);
            }
            "nocopy" => copy += 1,
            "consistent" | "cached" | "delegated" => cons += 1,
            _ => return None,
        }
    }
    if rw > 1 || label > 1 || prop > 1 || copy > 1 || cons > 1 {
        return None;
    }
    Some(m)
}

/// `HostConfig.Binds`.
pub(super) fn binds(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, b) in str_list(v, fp)?.iter().enumerate() {
        bind(b, &fp.index(i), ctx.rules, &mut ctx.sum)?;
    }
    Ok(())
}

fn bind(
    spec: &str,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let parts: Vec<&str> = spec.splitn(4, ':').collect();
    let invalid = || deny(p, format!("invalid bind specification {}", quote(spec)));
    if parts.first().is_none_or(|s| s.is_empty()) {
        return Err(invalid());
    }
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => {
            if bind_mode(d).is_some() {
                return Err(invalid());
            }
            (Some(*s), *d, "")
        }
        [s, d, m] => (Some(*s), *d, *m),
        _ => return Err(invalid()),
    };
    let Some(m) = bind_mode(mode) else {
        return Err(deny(p, format!("invalid bind options {}", quote(mode))));
    };
    if m.relabel {
        return Err(deny(
            p,
            "SELinux relabeling (z/Z) is refused: it relabels the source on the host",
        ));
    }
    if let Some(pr) = m
        .propagation
        .filter(|pr| !["private", "rprivate"].contains(pr))
    {
        return Err(deny(p, format!("mount propagation {pr} is refused")));
    }
    let target = check_target(dst, p, rules.allow_special_mount_targets)?;
    let (kind, source) = match src {
        None => ("anonymous", None),
        Some(s) if s.starts_with('/') => ("bind", Some(host_bind(s, m.read_only, p, rules)?)),
        Some(s) => {
            named_volume(s, p, rules, sum)?;
            ("volume", Some(s.to_string()))
        }
    };
    sum.mounts.push(MountSummary {
        kind,
        source,
        target,
        read_only: m.read_only,
        from: "Binds",
    });
    Ok(())
}

/// Checks a host path; returns it cleaned.
pub(super) fn host_bind(
    src: &str,
    read_only: bool,
    p: &Path<'_>,
    rules: &ContainerRules,
) -> Result<String, Violation> {
    let c = clean_path(src);
    if !host_path_allowed(&c, &rules.bind_sources) {
        return Err(
            deny_rule(p, format!("host path {c} is not allowed"), "bind_sources").with_value(&c),
        );
    }
    if rules.require_read_only_binds && !read_only {
        return Err(deny_rule(
            p,
            format!("host path {c} must be mounted read-only"),
            "require_read_only_binds",
        )
        .with_value(&c));
    }
    Ok(c)
}

fn named_volume(
    name: &str,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    if !valid_object_name(name) {
        return Err(deny(p, format!("invalid volume name {}", quote(name))));
    }
    if !rules.allow_named_volumes {
        return Err(deny_rule(
            p,
            format!("named volume {name} is not allowed"),
            "allow_named_volumes",
        ));
    }
    if !sum.named_volumes.iter().any(|n| n == name) {
        sum.named_volumes.push(name.to_string());
    }
    Ok(())
}

/// `Config.Volumes`: anonymous volumes at the listed targets.
pub(super) fn volumes(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for k in set_keys(v, fp)? {
        let t = check_target(k, &fp.key(k), ctx.rules.allow_special_mount_targets)?;
        ctx.sum.mounts.push(MountSummary {
            kind: "anonymous",
            source: None,
            target: t,
            read_only: false,
            from: "Volumes",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Mounts

/// `HostConfig.Mounts` (and a service's `ContainerSpec.Mounts`).
pub(crate) fn mounts(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, m) in array(v, fp)?.iter().enumerate() {
        mount(m, &fp.index(i), ctx)?;
    }
    Ok(())
}

fn mount(v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    let mut m = MountFields::default();
    MOUNT.strict(&s, p, |check, val, fp| check(val, fp, &mut m))?;
    let misplaced = |name: &str| {
        deny(
            &p.field(name),
            format!("{name} is not valid for mount type {}", quote(m.typ)),
        )
    };
    let target = check_target(
        m.target,
        &p.field("Target"),
        ctx.rules.allow_special_mount_targets,
    )?;
    let (kind, source) = match m.typ {
        "bind" => {
            if m.volume.is_some() {
                return Err(misplaced("VolumeOptions"));
            }
            if m.tmpfs.is_some() {
                return Err(misplaced("TmpfsOptions"));
            }
            ("bind", Some(bind_mount(&m, p, ctx)?))
        }
        "volume" => {
            if m.bind.is_some() {
                return Err(misplaced("BindOptions"));
            }
            if m.tmpfs.is_some() {
                return Err(misplaced("TmpfsOptions"));
            }
            volume_mount(&m, p, ctx)?
        }
        "tmpfs" => {
            if m.bind.is_some() {
                return Err(misplaced("BindOptions"));
            }
            if m.volume.is_some() {
                return Err(misplaced("VolumeOptions"));
            }
            if !m.source.is_empty() {
                return Err(deny(&p.field("Source"), "a tmpfs mount has no source"));
            }
            tmpfs_options(m.tmpfs, &p.field("TmpfsOptions"), ctx.rules)?;
            ("tmpfs", None)
        }
        "" => return Err(deny(&p.field("Type"), "mount type is required")),
        other => {
            return Err(deny(
                &p.field("Type"),
                format!("mount type {} is refused", quote(other)),
            ))
        }
    };
    ctx.sum.mounts.push(MountSummary {
        kind,
        source,
        target,
        read_only: m.read_only,
        from: "Mounts",
    });
    Ok(())
}

/// A `bind` mount: an allowed absolute host path; returns it cleaned.
fn bind_mount(m: &MountFields<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<String, Violation> {
    let sp = p.field("Source");
    if !m.source.starts_with('/') {
        return Err(deny(&sp, "bind source must be an absolute host path"));
    }
    let c = host_bind(m.source, m.read_only, &sp, ctx.rules)?;
    if let Some(b) = m.bind {
        let bp = p.field("BindOptions");
        let s = strukt(b, &bp)?;
        BIND_OPTIONS.strict(&s, &bp, |check, val, fp| check(val, fp, ctx))?;
    }
    Ok(c)
}

/// A `volume` mount: named (checked as a named volume) or anonymous; returns its kind and name.
fn volume_mount(
    m: &MountFields<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(&'static str, Option<String>), Violation> {
    if !m.source.is_empty() {
        named_volume(m.source, &p.field("Source"), ctx.rules, &mut ctx.sum)?;
    }
    if let Some(vo) = m.volume {
        let vp = p.field("VolumeOptions");
        let s = strukt(vo, &vp)?;
        VOLUME_OPTIONS.strict(&s, &vp, |check, val, fp| check(val, fp, ctx))?;
    }
    Ok(if m.source.is_empty() {
        ("anonymous", None)
    } else {
        ("volume", Some(m.source.to_string()))
    })
}

/// `VolumeOptions.DriverConfig`: only with `allow_mount_driver_config`, only the `local`
/// driver, and only options of a tmpfs volume.
fn driver_config(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = strukt(v, fp)?;
    let mut d = DriverFields::default();
    DRIVER_CONFIG.strict(&s, fp, |check, val, p| check(val, p, &mut d))?;
    if d.name.is_empty() && d.opts.is_empty() {
        return Ok(());
    }
    if !ctx.rules.allow_mount_driver_config {
        return Err(deny_rule(
            fp,
            "volume driver configuration is refused (a local volume with o=bind is a host bind)",
            "allow_mount_driver_config",
        ));
    }
    if !d.name.is_empty() && d.name != "local" {
        return Err(deny(
            &fp.field("Name"),
            format!("volume driver {} is refused", quote(d.name)),
        ));
    }
    if !d.opts.is_empty() {
        local_tmpfs_opts_only(&d.opts).map_err(|m| deny(&fp.field("Options"), m))?;
    }
    Ok(())
}

fn tmpfs_options(v: Option<&Value>, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    let mut size: i64 = 0;
    if let Some(v) = v {
        let s = strukt(v, p)?;
        TMPFS_OPTIONS.strict(&s, p, |check, val, fp| check(val, fp, &mut size))?;
    }
    if let Some(max) = rules.max_tmpfs_bytes {
        if size == 0 || size > max {
            return Err(deny_rule(
                &p.field("SizeBytes"),
                format!("tmpfs size must be set and at most {max} bytes"),
                "max_tmpfs_bytes",
            )
            .with_value_if(size > 0, size));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tmpfs

/// `HostConfig.Tmpfs`: target → mount options.
pub(super) fn tmpfs(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (k, opts) in str_map(v, fp)? {
        let kp = fp.key(k);
        let t = check_target(k, &kp, ctx.rules.allow_special_mount_targets)?;
        tmpfs_map_options(opts, &kp, ctx.rules)?;
        ctx.sum.mounts.push(MountSummary {
            kind: "tmpfs",
            source: None,
            target: t,
            read_only: opts.split(',').any(|o| o == "ro"),
            from: "Tmpfs",
        });
    }
    Ok(())
}

/// Options of a `HostConfig.Tmpfs` entry (`size=64m,mode=1777,noexec`).
fn tmpfs_map_options(opts: &str, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    let mut size = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (name, val) = match o.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (o, None),
        };
        match (name, val) {
            ("size", Some(v)) => match kernel_size(v) {
                Some(n) => size = Some(n),
                None if rules.max_tmpfs_bytes.is_some() => {
                    return Err(deny_rule(
                        p,
                        format!("tmpfs size {} is not a byte count", quote(v)),
                        "max_tmpfs_bytes",
                    ))
                }
                None => size = Some(0),
            },
            ("mode", Some(v)) if !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
            }
            ("noexec" | "nosuid" | "nodev" | "ro" | "rw", None) => {}
            _ => return Err(deny(p, format!("tmpfs option {} is refused", quote(o)))),
        }
    }
    if let Some(max) = rules.max_tmpfs_bytes {
        match size {
            Some(n) if n > 0 && n <= max => {}
            _ => {
                return Err(deny_rule(
                    p,
                    format!("tmpfs size must be set and at most {max} bytes"),
                    "max_tmpfs_bytes",
                )
                .with_value_if(size.is_some_and(|n| n > 0), size.unwrap_or(0)))
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Named volumes as the daemon stored them

/// Judges a named volume as the daemon stored it (`GET /volumes/{name}`), mounted read-only or
/// not: a `local` volume without options (or with a tmpfs's only) is storage of the daemon's
/// own; one whose options bind a host directory (`device=/path` with `o=bind` or `type=none`)
/// is that host bind, checked against `bind_sources` and `require_read_only_binds` (its cleaned
/// path returned for the host checks); any other options (a device, a network filesystem) or
/// another driver reach outside the daemon's storage and are refused. `p` names the mount.
pub fn volume_as_mount(
    name: &str,
    doc: &[u8],
    read_only: bool,
    p: &Path<'_>,
    rules: &ContainerRules,
) -> Result<Option<String>, Violation> {
    let root = super::super::common::parse_body(doc)?;
    let vp = Path::ROOT;
    let s = strukt(&root, &vp)?;
    let driver = match s.get("Driver").filter(|v| !v.is_null()) {
        Some(v) => string(v, &vp.field("Driver"))?,
        None => "",
    };
    let opts = match s.get("Options").filter(|v| !v.is_null()) {
        Some(v) => str_map(v, &vp.field("Options"))?,
        None => Vec::new(),
    };
    if !driver.is_empty() && driver != "local" {
        return Err(deny(
            p,
            format!(
                "volume {} uses the driver {} (plugin-defined storage, possibly host paths)",
                quote(name),
                quote(driver)
            ),
        ));
    }
    if opts.is_empty() || local_tmpfs_opts_only(&opts).is_ok() {
        return Ok(None);
    }
    let get = |k: &str| opts.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let bind = get("type").is_some_and(|t| t == "none" || t.is_empty())
        || get("o").is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
    match get("device") {
        Some(device) if bind && device.starts_with('/') => {
            let read_only = read_only
                || get("o").is_some_and(|o| o.split(',').any(|x| x == "ro"));
            host_bind(device, read_only, p, rules)
                .map(Some)
                .map_err(|mut v| {
                    v.reason = format!("volume {} binds the host: {}", quote(name), v.reason);
                    v
                })
        }
        _ => Err(deny(
            p,
            format!(
                "volume {} has driver options that mount storage outside the daemon's own (a host device, directory or network share)",
                quote(name)
            ),
        )),
    }
}
