//! `swarm.Privileges`, checked as the `SecurityOpt` entries the daemon's swarm executor derives
//! from them (`label=disable`, `label=type:T`, `seccomp=unconfined`, `apparmor=unconfined`,
//! `no-new-privileges=true`), so `security_opt` governs both.

use super::super::common::{boolean, deny, string, strukt};
use super::super::container::{security_opt, walk, Check, Ctx};
use super::super::docker_json::{quote, Path, Value};
use super::super::table::Table;
use super::super::Violation;

/// `swarm.Privileges` (`Seccomp`, `AppArmor`, `NoNewPrivileges`: API 1.44+).
pub(crate) static PRIVILEGES: Table<Check> = Table::new(
    "Privileges",
    &[
        ("CredentialSpec", |v, p, ctx| {
            walk(&CREDENTIAL_SPEC, v, p, ctx)
        }),
        ("SELinuxContext", |v, p, ctx| {
            walk(&SELINUX_CONTEXT, v, p, ctx)
        }),
        ("Seccomp", seccomp),
        ("AppArmor", |v, p, ctx| walk(&APPARMOR, v, p, ctx)),
        ("NoNewPrivileges", |v, p, ctx| {
            if boolean(v, p)? {
                ctx.sum.security_opt.push("no-new-privileges=true".into());
            }
            Ok(())
        }),
    ],
);

/// `swarm.CredentialSpec` (Windows): every field must be empty.
pub(crate) static CREDENTIAL_SPEC: Table<Check> = Table::new(
    "CredentialSpec",
    &[
        ("Config", no_credential_spec),
        ("File", no_credential_spec),
        ("Registry", no_credential_spec),
    ],
);

/// `swarm.SELinuxContext`: each field is the `label=` option it becomes.
pub(crate) static SELINUX_CONTEXT: Table<Check> = Table::new(
    "SELinuxContext",
    &[
        ("Disable", |v, p, ctx| {
            if boolean(v, p)? {
                label_opt("label=disable".to_string(), p, ctx)?;
            }
            Ok(())
        }),
        ("User", |v, p, ctx| label_part("user", v, p, ctx)),
        ("Role", |v, p, ctx| label_part("role", v, p, ctx)),
        ("Type", |v, p, ctx| label_part("type", v, p, ctx)),
        ("Level", |v, p, ctx| label_part("level", v, p, ctx)),
    ],
);

/// What the fields of `Seccomp` leave for its check.
#[derive(Default)]
pub(crate) struct SeccompFields<'v> {
    mode: &'v str,
    profile: bool,
}

/// The check of one field of `Seccomp`.
type SeccompCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut SeccompFields<'v>) -> Result<(), Violation>;

/// `swarm.SeccompOpts`.
pub(crate) static SECCOMP: Table<SeccompCheck> = Table::new(
    "Seccomp",
    &[
        ("Mode", |v, p, s| {
            s.mode = string(v, p)?;
            Ok(())
        }),
        ("Profile", |v, p, s| {
            s.profile = !string(v, p)?.is_empty();
            Ok(())
        }),
    ],
);

/// `swarm.AppArmorOpts`.
pub(crate) static APPARMOR: Table<Check> = Table::new(
    "AppArmor",
    &[("Mode", |v, p, ctx| match string(v, p)? {
        "" | "default" => Ok(()),
        "disabled" => {
            security_opt("apparmor=unconfined", p, ctx.rules)?;
            ctx.sum.security_opt.push("apparmor=unconfined".into());
            Ok(())
        }
        other => Err(deny(p, format!("unknown AppArmor mode {}", quote(other)))),
    })],
);

/// `Privileges` of a `ContainerSpec`.
pub(super) fn privileges(v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    walk(&PRIVILEGES, v, p, ctx)
}

fn no_credential_spec(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if !string(v, p)?.is_empty() {
        return Err(deny(p, "credential specs (Windows) are refused"));
    }
    Ok(())
}

/// A non-empty `SELinuxContext` part: the option `label=PART:VALUE`.
fn label_part(part: &str, v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let x = string(v, p)?;
    if x.is_empty() {
        return Ok(());
    }
    label_opt(format!("label={part}:{x}"), p, ctx)
}

fn label_opt(o: String, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    security_opt(&o, p, ctx.rules)?;
    ctx.sum.security_opt.push(o);
    Ok(())
}

/// `Seccomp`: `unconfined` is the option `seccomp=unconfined`; custom profiles are refused.
fn seccomp(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = strukt(v, fp)?;
    let mut f = SeccompFields::default();
    SECCOMP.strict(&s, fp, |check, val, p| check(val, p, &mut f))?;
    let mp = fp.field("Mode");
    match f.mode {
        "" | "default" => {
            if f.profile {
                return Err(deny(
                    &fp.field("Profile"),
                    "a seccomp Profile is only read with Mode custom; refused",
                ));
            }
        }
        "unconfined" => {
            security_opt("seccomp=unconfined", &mp, ctx.rules)?;
            ctx.sum.security_opt.push("seccomp=unconfined".into());
        }
        "custom" => {
            return Err(deny(
                &mp,
                "custom seccomp profiles are refused for services",
            ))
        }
        other => return Err(deny(&mp, format!("unknown seccomp mode {}", quote(other)))),
    }
    Ok(())
}
