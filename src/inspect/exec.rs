//! `POST /containers/{id}/exec` (`ExecConfig`).

use super::common::{
    boolean, deny, deny_rule, int, parse_body, str_list, str_slice, string, strukt, user_is_root,
};
use super::container::working_dir;
use super::docker_json::{quote, GoInt, Path, Value};
use super::rules::ExecRules;
use super::table::Table;
use super::{Summary, Violation};

/// The state of one exec inspection: the rules, the user (checked once the body is read) and
/// the summary.
pub(crate) struct Exec<'v> {
    rules: &'v ExecRules,
    user: &'v str,
    sum: Summary,
}

/// The check of one field of an exec body.
pub(crate) type ExecCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut Exec<'v>) -> Result<(), Violation>;

/// `container.ExecOptions` (the exec create body).
pub(crate) static EXEC: Table<ExecCheck> = Table::new(
    "exec body",
    &[
        ("User", |v, p, e| {
            e.user = string(v, p)?;
            Ok(())
        }),
        ("Privileged", privileged),
        ("Tty", a_bool),
        ("ConsoleSize", |v, p, _| {
            for (i, n) in super::common::array(v, p)?.iter().enumerate() {
                int(n, &p.index(i), GoInt::Uint64)?;
            }
            Ok(())
        }),
        ("AttachStdin", a_bool),
        ("AttachStderr", a_bool),
        ("AttachStdout", a_bool),
        ("Detach", a_bool),
        ("DetachKeys", |v, p, _| string(v, p).map(drop)),
        ("Env", |v, p, _| str_list(v, p).map(drop)),
        ("WorkingDir", |v, p, _| working_dir(string(v, p)?, p)),
        ("Cmd", |v, p, _| str_slice(v, p).map(drop)),
    ],
);

fn a_bool(v: &Value<'_>, p: &Path<'_>, _: &mut Exec<'_>) -> Result<(), Violation> {
    boolean(v, p).map(drop)
}

fn privileged(v: &Value<'_>, fp: &Path<'_>, e: &mut Exec<'_>) -> Result<(), Violation> {
    if boolean(v, fp)? {
        if !e.rules.allow_privileged {
            return Err(deny_rule(
                fp,
                "privileged exec is not allowed",
                "allow_privileged",
            ));
        }
        e.sum.privileged = true;
    }
    Ok(())
}

/// Inspects the body of `POST /containers/{id}/exec`. Unknown fields are refused.
pub fn exec_create(body: &[u8], rules: &ExecRules) -> Result<Summary, Violation> {
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut e = Exec {
        rules,
        user: "",
        sum: Summary::new("exec_create"),
    };
    let unknown = |fp: &Path<'_>| Some(deny(fp, "unknown field in exec body refused"));
    EXEC.walk(&s, &p, false, unknown, |check, v, fp| check(v, fp, &mut e))?;
    let user = e.user;
    if !rules.allow_root_user && user_is_root(user) {
        let reason = if user.is_empty() {
            "no User: the exec runs as the container's user, which may be root".to_string()
        } else {
            format!("User {} runs as root", quote(user))
        };
        return Err(deny_rule(&p.field("User"), reason, "allow_root_user"));
    }
    if !user.is_empty() {
        e.sum.user = Some(user.to_string());
    }
    Ok(e.sum)
}

/// Checks an exec instance as the daemon stored it (`GET /exec/{id}/json`) against the rules
/// its create would face (`ProcessConfig.privileged`, `ProcessConfig.user`), and returns the
/// ID of the container it runs in (which the caller checks in turn). The daemon does not
/// report an exec's `WorkingDir` or `Env`: those of an exec someone else created stay unseen.
pub fn stored_exec(doc: &[u8], rules: &ExecRules) -> Result<String, Violation> {
    let root = parse_body(doc)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let cid = match s.get("ContainerID") {
        Some(v) if !v.is_null() => string(v, &p.field("ContainerID"))?,
        _ => "",
    };
    if cid.is_empty() {
        return Err(deny(&p.field("ContainerID"), "the exec names no container"));
    }
    let pp = p.field("ProcessConfig");
    let (privileged, user) = match s.get("ProcessConfig").filter(|v| !v.is_null()) {
        Some(pc) => {
            let pcs = strukt(pc, &pp)?;
            let privileged = match pcs.get("privileged").filter(|v| !v.is_null()) {
                Some(v) => boolean(v, &pp.field("privileged"))?,
                None => false,
            };
            let user = match pcs.get("user").filter(|v| !v.is_null()) {
                Some(v) => string(v, &pp.field("user"))?,
                None => "",
            };
            (privileged, user)
        }
        None => (false, ""),
    };
    if privileged && !rules.allow_privileged {
        return Err(deny_rule(
            &pp.field("privileged"),
            "privileged exec is not allowed",
            "allow_privileged",
        ));
    }
    if !rules.allow_root_user && user_is_root(user) {
        return Err(deny_rule(
            &pp.field("user"),
            format!("the exec runs as {}, which may be root", quote(user)),
            "allow_root_user",
        ));
    }
    Ok(cid.to_owned())
}
