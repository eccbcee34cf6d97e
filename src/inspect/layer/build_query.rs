//! A classic build's query as the daemon gets it: the build's own cgroup (for the policy's
//! pids cap) and the policy's enforced container limits written in, and the request's
//! [`Authorized`] describing the rewritten query.

use std::sync::Arc;

use crate::buildcgroup::{BuildCgroup, BuildCgroups};
use crate::context::Trail;
use crate::error::ProxyError;
use crate::inspect;
use crate::lookup::Lookup;
use crate::policy::layer::Authorized;
use crate::route::Inspector;

/// The cgroup a classic build gets for the policy's pids cap (see `crate::buildcgroup`):
/// `Ok(None)` when the build needs none or `[upstream] build_cgroup = "off"` (then the
/// inspector refuses it unless `allow_uncapped_builds`). A cgroup that cannot be prepared
/// refuses the build, naming why, unless `allow_uncapped_builds` (then it goes on without,
/// as it would without the setting, and the reason is logged).
pub(super) async fn build_cgroup(
    authorized: &Authorized,
    build_cgroups: Option<&Arc<BuildCgroups>>,
    lookup: &Lookup,
) -> Result<Option<BuildCgroup>, inspect::Violation> {
    let rules = &authorized.policy.inspect;
    let query = authorized.normalized.query.pairs();
    let (Some(cgroups), Some(pids)) = (build_cgroups, inspect::build_pids(&rules.container)) else {
        return Ok(None);
    };
    if !authorized.policy.inspection
        || authorized.operation.info.inspector() != Some(Inspector::Build)
        || !inspect::wants_build_cgroup(query, &rules.container)
    {
        return Ok(None);
    }
    let prepared = match lookup.info().await {
        Ok(info) => cgroups.prepare(pids, &info),
        Err(e) => Err(e.to_string()),
    };
    match prepared {
        Ok(cgroup) => Ok(Some(cgroup)),
        Err(reason) if rules.build.allow_uncapped_builds => {
            crate::logging::request::in_span(|| {
                tracing::warn!(
                    client = %authorized.client,
                    %reason,
                    "a classic build runs without the pids limit (allow_uncapped_builds): its \
                     cgroup could not be prepared"
                )
            });
            Ok(None)
        }
        Err(reason) => {
            let place = match cgroups.setting() {
                crate::buildcgroup::Setting::Dir(dir) => format!("in {}", dir.display()),
                setting => format!("(build_cgroup = \"{setting}\")"),
            };
            Err(inspect::Violation {
                field: "(build)".into(),
                reason: format!(
                    "the cgroup that gives this build's RUN containers the policy's pids limit \
                     could not be prepared {place}: {reason}. {}",
                    inspect::UNCAPPED_BUILD_FIX
                ),
                setting: Some("build_cgroup".into()),
                value: None,
            })
        }
    }
}

/// The policy's container limits written into a build's query (see
/// [`inspect::build_defaults`]): the request's target is replaced, and the [`Authorized`]
/// that inner layers and the audit record read describes the rewritten query. `Ok(None)` when
/// nothing is written.
pub(super) fn apply_query_defaults(
    parts: &mut http::request::Parts,
    trail: Option<&Trail>,
    cgroup: Option<&BuildCgroup>,
) -> Result<Option<Authorized>, ProxyError> {
    let Some(authorized) = parts.extensions.get::<Authorized>() else {
        return Ok(None);
    };
    let placed = cgroup.map(|c| (c.name(), c.pids()));
    let Some((uri, normalized, applied)) = rewritten_build_query(authorized, &parts.uri, placed)?
    else {
        return Ok(None);
    };
    let rewritten = Authorized {
        normalized: Arc::new(normalized),
        build_cgroup: placed.map(|(name, _)| Arc::from(name)),
        ..authorized.clone()
    };
    if let Some(trail) = trail {
        trail.note_request(rewritten.normalized.clone(), rewritten.operation.clone());
        trail.note_defaults(applied);
    }
    parts.uri = uri;
    parts.extensions.insert(rewritten.clone());
    Ok(Some(rewritten))
}

/// The build query with the policy's limits written in: the new target, how the daemon reads
/// it, and what was written (`memory=2147483648`); `None` when nothing applies. A parameter
/// written replaces the query's own occurrences of it (which are unset: empty or 0), so the
/// daemon reads exactly the value inspected. `cgroup`: the build's own cgroup and its
/// `pids.max`, written as `cgroupparent` (recorded as `cgroupparent=...` and `pids.max=N`).
/// Also used by `explain`.
pub fn rewritten_build_query(
    authorized: &Authorized,
    uri: &http::Uri,
    cgroup: Option<(&str, i64)>,
) -> Result<Option<(http::Uri, crate::route::Normalized, Vec<String>)>, ProxyError> {
    if !authorized.policy.inspection
        || authorized.operation.info.inspector() != Some(Inspector::Build)
    {
        return Ok(None);
    }
    let rules = &authorized.policy.inspect;
    let mut additions = inspect::build_defaults(
        authorized.normalized.query.pairs(),
        &rules.build,
        &rules.container,
    );
    if let Some((name, _)) = cgroup {
        additions.push(("cgroupparent", name.to_owned()));
    }
    if additions.is_empty() {
        return Ok(None);
    }
    let mut pieces: Vec<String> = Vec::new();
    for piece in uri.query().unwrap_or("").split('&') {
        if piece.is_empty() {
            continue;
        }
        let replaced = crate::route::Query::parse(piece)
            .ok()
            .and_then(|q| q.pairs().first().map(|(k, _)| k.clone()))
            .is_some_and(|key| additions.iter().any(|(k, _)| *k == key));
        if !replaced {
            pieces.push(piece.to_owned());
        }
    }
    let mut applied: Vec<String> = additions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pieces.extend(applied.iter().cloned());
    if let Some((_, pids)) = cgroup {
        applied.push(format!("pids.max={pids}"));
    }
    let target = format!("{}?{}", uri.path(), pieces.join("&"));
    let uri: http::Uri = target
        .parse()
        .map_err(|e| ProxyError::BadRequest(format!("invalid request target: {e}")))?;
    let normalized = crate::route::normalize(&authorized.method, &uri)
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    Ok(Some((uri, normalized, applied)))
}
