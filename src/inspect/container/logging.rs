//! Logging drivers: `HostConfig.LogConfig` and a service's `TaskTemplate.LogDriver`.

use super::super::common::{deny, deny_rule, ram_in_bytes, str_map, string, strukt};
use super::super::docker_json::{quote, Path, Value};
use super::super::rules::ContainerRules;
use super::super::table::Table;
use super::super::Violation;
use super::Ctx;

/// What the fields of a log configuration leave for the checks of the whole: its options.
#[derive(Default)]
pub(crate) struct LogFields<'v> {
    opts: Vec<(&'v str, &'v str)>,
}

/// The check of one field of a log configuration.
pub(crate) type LogCheck = for<'v> fn(
    &'v Value<'v>,
    &Path<'_>,
    &mut LogFields<'v>,
    &ContainerRules,
) -> Result<(), Violation>;

/// `container.LogConfig`.
pub(crate) static LOG_CONFIG: Table<LogCheck> =
    Table::new("LogConfig", &[("Type", driver), ("Config", options)]);

/// `swarm.Driver` as a service's `TaskTemplate.LogDriver`.
pub(crate) static LOG_DRIVER: Table<LogCheck> =
    Table::new("LogDriver", &[("Name", driver), ("Options", options)]);

/// `HostConfig.LogConfig`.
pub(super) fn log_config(v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    log_driver(v, p, ctx, &LOG_CONFIG, "Config")
}

fn driver<'v>(
    v: &'v Value<'v>,
    fp: &Path<'_>,
    _: &mut LogFields<'v>,
    rules: &ContainerRules,
) -> Result<(), Violation> {
    let t = string(v, fp)?;
    if !t.is_empty() && !rules.log_drivers.iter().any(|d| d == t) {
        return Err(deny_rule(
            fp,
            format!("log driver {} is not allowed", quote(t)),
            "log_drivers",
        )
        .with_value(t));
    }
    Ok(())
}

fn options<'v>(
    v: &'v Value<'v>,
    fp: &Path<'_>,
    st: &mut LogFields<'v>,
    _: &ContainerRules,
) -> Result<(), Violation> {
    st.opts = str_map(v, fp)?;
    Ok(())
}

/// A logging driver and its options (`table` is [`LOG_CONFIG`] or [`LOG_DRIVER`], whose options
/// field is `options_field`): the driver must be listed in `log_drivers`, the options known, and
/// the size and file caps met.
pub(crate) fn log_driver(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
    table: &Table<LogCheck>,
    options_field: &'static str,
) -> Result<(), Violation> {
    let rules = ctx.rules;
    let s = strukt(v, p)?;
    let mut st = LogFields::default();
    table.strict(&s, p, |check, val, fp| check(val, fp, &mut st, rules))?;
    let cp = p.field(options_field);
    let mut size = None;
    let mut files = None;
    for (k, val) in &st.opts {
        let kp = cp.key(k);
        match *k {
            "max-size" => {
                size = Some(
                    ram_in_bytes(val)
                        .ok_or_else(|| deny(&kp, format!("invalid size {}", quote(val))))?,
                );
            }
            "max-file" => {
                let n = val
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| deny(&kp, format!("invalid max-file {}", quote(val))))?;
                files = Some(n);
            }
            "compress" | "mode" | "max-buffer-size" => {}
            _ => return Err(deny(&kp, format!("log option {} is refused", quote(k)))),
        }
    }
    if let Some(max) = rules.max_log_size_bytes {
        if size.is_none_or(|n| n <= 0 || n > max) {
            return Err(deny_rule(
                &cp.key("max-size"),
                format!("max-size must be set and at most {max} bytes"),
                "max_log_size_bytes",
            )
            .with_value_if(size.is_some_and(|n| n > 0), size.unwrap_or(0)));
        }
    }
    if let Some(max) = rules.max_log_files {
        if files.is_none_or(|n| n > max) {
            return Err(deny_rule(
                &cp.key("max-file"),
                format!("max-file must be set and at most {max}"),
                "max_log_files",
            )
            .with_value_if(files.is_some(), files.unwrap_or(0)));
        }
    }
    Ok(())
}
