//! Labels (reserved keys) and the options of a `local` volume driver.

use super::json::deny;
use crate::inspect::docker_json::{quote, Path};
use crate::inspect::Violation;

fn label_skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Refuses label keys that imitate a reserved (proxy-owned) label.
pub(crate) fn check_labels(
    labels: &[(&str, &str)],
    p: &Path<'_>,
    reserved: &[String],
) -> Result<(), Violation> {
    if reserved.is_empty() {
        return Ok(());
    }
    let skeletons: Vec<String> = reserved.iter().map(|r| label_skeleton(r)).collect();
    for (k, _) in labels {
        if !k.is_ascii() {
            return Err(deny(
                &p.key(k),
                "non-ASCII label key refused while reserved labels are configured (lookalike risk)",
            ));
        }
        let sk = label_skeleton(k);
        if skeletons.contains(&sk) {
            return Err(deny(&p.key(k), "label key is reserved for the proxy"));
        }
    }
    Ok(())
}

// `local` volume driver options

/// Whether `opts` only describe a `local` tmpfs volume: keys `type` (= `tmpfs`), `device`
/// (= `tmpfs`), `o` (comma list of `size=`, `uid=`, `gid=`, `mode=`, `nr_inodes=`). Anything
/// else (`o=bind`, `type=none`, devices, nfs) can reach host files.
pub(crate) fn local_tmpfs_opts_only(opts: &[(&str, &str)]) -> Result<(), String> {
    let mut has_type = false;
    for (k, v) in opts {
        match *k {
            "type" => {
                if *v != "tmpfs" {
                    return Err(format!("type={v} is not a tmpfs volume"));
                }
                has_type = true;
            }
            "device" => {
                if *v != "tmpfs" {
                    return Err(format!("device={v} is refused (only device=tmpfs)"));
                }
            }
            "o" => {
                for o in v.split(',') {
                    let name = o.split('=').next().unwrap_or("");
                    let value_ok = o.split_once('=').is_some_and(|(_, val)| !val.is_empty());
                    if !["size", "uid", "gid", "mode", "nr_inodes"].contains(&name) || !value_ok {
                        return Err(format!("mount option {} is refused", quote(o)));
                    }
                }
            }
            other => return Err(format!("driver option {} is refused", quote(other))),
        }
    }
    if !has_type {
        return Err("driver options without type=tmpfs are refused".into());
    }
    Ok(())
}
