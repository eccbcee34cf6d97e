//! `POST /containers/{id}/exec` (`ExecConfig`).

use super::common::{
    boolean, canon, deny, deny_rule, int, parse_body, str_list, str_slice, string, strukt,
    user_is_root,
};
use super::container::working_dir;
use super::docker_json::{quote, GoInt, Path};
use super::rules::ExecRules;
use super::{Summary, Violation};

const EXEC_FIELDS: &[&str] = &[
    "User",
    "Privileged",
    "Tty",
    "ConsoleSize",
    "AttachStdin",
    "AttachStderr",
    "AttachStdout",
    "Detach",
    "DetachKeys",
    "Env",
    "WorkingDir",
    "Cmd",
];

/// Inspects the body of `POST /containers/{id}/exec`. Unknown fields are refused.
pub fn exec_create(body: &[u8], rules: &ExecRules) -> Result<Summary, Violation> {
    let mut sum = Summary::new("exec_create");
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let s = strukt(&root, &p)?;
    let mut user = "";
    for (key, v) in s.entries() {
        let Some(c) = canon(key, EXEC_FIELDS) else {
            return Err(deny(&p.field(key), "unknown field in exec body refused"));
        };
        if v.is_null() {
            continue;
        }
        let fp = p.field(c);
        match c {
            "User" => user = string(v, &fp)?,
            "Privileged" => {
                if boolean(v, &fp)? {
                    if !rules.allow_privileged {
                        return Err(deny_rule(
                            &fp,
                            "privileged exec is not allowed",
                            "allow_privileged",
                        ));
                    }
                    sum.privileged = true;
                }
            }
            "Tty" | "AttachStdin" | "AttachStderr" | "AttachStdout" | "Detach" => {
                boolean(v, &fp)?;
            }
            "ConsoleSize" => {
                for (i, n) in super::common::array(v, &fp)?.iter().enumerate() {
                    int(n, &fp.index(i), GoInt::Uint64)?;
                }
            }
            "DetachKeys" => {
                string(v, &fp)?;
            }
            "Env" => {
                str_list(v, &fp)?;
            }
            "WorkingDir" => working_dir(string(v, &fp)?, &fp)?,
            "Cmd" => {
                str_slice(v, &fp)?;
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    if !rules.allow_root_user && user_is_root(user) {
        let reason = if user.is_empty() {
            "no User: the exec runs as the container's user, which may be root".to_string()
        } else {
            format!("User {} runs as root", quote(user))
        };
        return Err(deny_rule(&p.field("User"), reason, "allow_root_user"));
    }
    if !user.is_empty() {
        sum.user = Some(user.to_string());
    }
    Ok(sum)
}
