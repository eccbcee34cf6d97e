//! `POST /plugins/pull` and `POST /plugins/{name}/upgrade`: which plugin, and which privileges
//! the client grants it.
//!
//! The body is the JSON array of `PluginPrivilege` (`Name`, `Description`, `Value`) the client
//! accepts; the daemon installs the plugin only if the array equals the privileges the plugin's
//! configuration asks for (moby `computePrivileges`: `network` = the plugin's network type,
//! `host pid namespace`, `host ipc namespace`, `mount` = host source paths, `device` = host
//! device paths, `allow-all-devices`, `capabilities`). So refusing a privilege here refuses every
//! plugin that needs it.

use super::common::{
    array, check_query_keys, deny, deny_rule, first, image_matches, normalize_image, parse_body,
    qdeny, qdeny_rule, str_list, string, strukt,
};
use super::docker_json::{quote, Path, Value};
use super::rules::PluginRules;
use super::table::Table;
use super::{Summary, Violation};

/// Inspects `POST /plugins/pull?remote=R[&name=N]` and its privileges body.
pub fn plugin_pull(
    body: &[u8],
    query: &[(String, String)],
    rules: &PluginRules,
) -> Result<Summary, Violation> {
    check_query_keys(query, &["remote", "name"], &[], None)?;
    let mut sum = Summary::new("plugin_pull");
    sum.image = Some(remote(query, rules)?);
    if let Some(name) = first(query, "name").filter(|n| !n.is_empty()) {
        sum.name = Some(
            plugin_name(name, rules)
                .map_err(|m| qdeny_rule("name", m, "names").with_value(name))?,
        );
    }
    privileges(body, rules, &mut sum)?;
    Ok(sum)
}

/// Inspects `POST /plugins/{name}/upgrade?remote=R`: both the installed plugin (`name`, from the
/// path) and the new reference must be allowed by `names`; then the privileges body.
pub fn plugin_upgrade(
    body: &[u8],
    query: &[(String, String)],
    name: Option<&str>,
    rules: &PluginRules,
) -> Result<Summary, Violation> {
    check_query_keys(query, &["remote"], &[], None)?;
    let mut sum = Summary::new("plugin_upgrade");
    let name = name.unwrap_or("");
    let checked = plugin_name(name, rules).map_err(|m| {
        Violation {
            field: "(path)".into(),
            reason: format!("{m} (names)"),
            setting: Some("names".into()),
            value: None,
        }
        .with_value(name)
    })?;
    sum.name = Some(checked);
    sum.image = Some(remote(query, rules)?);
    privileges(body, rules, &mut sum)?;
    Ok(sum)
}

/// `?remote=`: required, and allowed by `names`. Returns the normalized reference.
fn remote(query: &[(String, String)], rules: &PluginRules) -> Result<String, Violation> {
    match first(query, "remote").filter(|r| !r.is_empty()) {
        None => Err(qdeny("remote", "the plugin reference is required")),
        Some(r) => {
            plugin_name(r, rules).map_err(|m| qdeny_rule("remote", m, "names").with_value(r))
        }
    }
}

/// A plugin reference allowed by `names` (normalized like an image reference), or why not.
fn plugin_name(name: &str, rules: &PluginRules) -> Result<String, String> {
    let r = normalize_image(name)?;
    if rules.names.is_empty() || !image_matches(&r, &rules.names) {
        return Err(format!("plugin {} is not allowed", r.full()));
    }
    Ok(r.full())
}

/// What the fields of a `PluginPrivilege` leave for its check.
#[derive(Default)]
pub(crate) struct PrivilegeFields<'v> {
    name: &'v str,
    values: Vec<&'v str>,
}

/// The check of one field of a `PluginPrivilege`.
type PrivilegeCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut PrivilegeFields<'v>) -> Result<(), Violation>;

/// `types.PluginPrivilege`.
pub(crate) static PLUGIN_PRIVILEGE: Table<PrivilegeCheck> = Table::new(
    "PluginPrivilege",
    &[
        ("Name", |v, p, f| {
            f.name = string(v, p)?;
            Ok(())
        }),
        ("Description", |v, p, _| string(v, p).map(drop)),
        ("Value", |v, p, f| {
            f.values = str_list(v, p)?;
            Ok(())
        }),
    ],
);

/// The granted privileges: an array (or `null`) of `PluginPrivilege`. Unknown fields refused.
fn privileges(body: &[u8], rules: &PluginRules, sum: &mut Summary) -> Result<(), Violation> {
    let root = parse_body(body)?;
    if root.is_null() {
        return Ok(());
    }
    let p = Path::ROOT;
    for (i, item) in array(&root, &p)?.iter().enumerate() {
        let ip = p.index(i);
        if item.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(item, &ip)?;
        let mut f = PrivilegeFields::default();
        PLUGIN_PRIVILEGE.strict(&s, &ip, |check, v, fp| check(v, fp, &mut f))?;
        let PrivilegeFields { name, values } = f;
        let bare = rules.privileges.iter().any(|a| a == name);
        if values.is_empty() && !bare {
            return Err(deny_rule(
                &ip.field("Name"),
                format!("plugin privilege {} is not allowed", quote(name)),
                "privileges",
            )
            .with_value(name));
        }
        for (j, v) in values.iter().enumerate() {
            let listed = rules
                .privileges
                .iter()
                .any(|a| a.split_once('=') == Some((name, *v)));
            if !bare && !listed {
                return Err(deny_rule(
                    &ip.field("Value").index(j),
                    format!(
                        "plugin privilege {} with value {} is not allowed",
                        quote(name),
                        quote(v)
                    ),
                    "privileges",
                )
                .with_value(format!("{name}={v}")));
            }
            sum.plugin_privileges.push(format!("{name}={v}"));
        }
        if values.is_empty() {
            sum.plugin_privileges.push(name.to_string());
        }
    }
    Ok(())
}
