//! Image names a request writes (`docker tag`, `build -t`, `commit`, `import`, `load`), held
//! to the policy's build `tags` rules and kept off the names the container `images`
//! allowlist trusts for running.
//!
//! Which parameter names the written image is the operation table's `writes_image` fact.
//! Names are read as the daemon reads them (`RepoTagReference`, `ParseNormalizedNamed`):
//! `docker.io/library/` prefixes, default tag `latest`, a separate `tag` replacing a tag in
//! `repo`. The rule:
//!
//! - with `[policy.NAME.build] tags` set, every written name must match it (`tags`);
//! - with `[policy.NAME.container] images` set, a written name that list allows to run is
//!   refused unless `[policy.NAME.build] allow_writing_run_images = true`: otherwise a client
//!   could put any content under an allowed name (`docker tag evil busybox`) and run it;
//! - `image.load` writes the names inside its archive, which is not read: under either rule it
//!   is refused.

use super::common::{all, first, image_matches, normalize_image, qdeny, qdeny_rule};
use super::docker_json::quote;
use super::rules::{BuildRules, ContainerRules};
use super::{Summary, Violation};
use crate::route::WritesImage;

use super::common::ImageRef;

/// The setting that lets a written name be one `images` allows to run.
pub const RUN_IMAGES_SETTING: &str = "allow_writing_run_images";

/// A reference as written, tolerating a hex-only repository with a separate tag.
fn parse(param: &str, text: &str) -> Result<ImageRef, Violation> {
    normalize_image(text)
        .or_else(|e| {
            // `repo=abcdef&tag=x`: a hex-only name is only ambiguous without a tag.
            if text.contains([':', '@']) {
                Err(e)
            } else {
                normalize_image(&format!("{text}:latest")).map_err(|_| e)
            }
        })
        .map_err(|m| qdeny(param, m))
}

/// The names `write` says this request writes, each with the parameter it came from.
/// `Ok(None)` for [`WritesImage::InBody`]: the names cannot be known.
pub(crate) fn written_names(
    write: WritesImage,
    query: &[(String, String)],
) -> Result<Option<Vec<(&'static str, ImageRef)>>, Violation> {
    let mut names = Vec::new();
    match write {
        WritesImage::InBody => return Ok(None),
        WritesImage::RepoTag { repo, tag } => {
            let repo_text = first(query, repo).unwrap_or("");
            let tag_text = first(query, tag).unwrap_or("");
            if repo_text.is_empty() {
                // No name is written (commit, import), or the daemon refuses (tag).
                return Ok(Some(names));
            }
            let own = parse(repo, repo_text)?;
            if own.digest.is_some() {
                return Err(qdeny(
                    repo,
                    format!("a digest reference {} cannot be written", quote(repo_text)),
                ));
            }
            if tag_text.is_empty() {
                names.push((repo, own));
            } else {
                let joined = format!("{}:{tag_text}", own.repo);
                let tagged = normalize_image(&joined).map_err(|m| qdeny(tag, m))?;
                // The daemon writes `repo` with `tag`; a tag in `repo` itself is held to the
                // rules too, whatever a daemon version makes of it.
                let explicit = repo_text
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':'));
                if explicit && own != tagged {
                    names.push((repo, own));
                }
                names.push((tag, tagged));
            }
        }
        WritesImage::References(param) => {
            for text in all(query, param).into_iter().filter(|t| !t.is_empty()) {
                names.push((param, parse(param, text)?));
            }
            // BuildKit's image exporter names images in `outputs` too.
            for name in output_names(query)? {
                names.push(("outputs", parse("outputs", &name)?));
            }
        }
    }
    Ok(Some(names))
}

/// The `name` attributes (comma-separated references) of a build's `outputs`.
fn output_names(query: &[(String, String)]) -> Result<Vec<String>, Violation> {
    let Some(text) = first(query, "outputs").filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| qdeny("outputs", format!("invalid JSON: {e}")))?;
    let mut names = Vec::new();
    for output in value.as_array().map(Vec::as_slice).unwrap_or_default() {
        let Some(attrs) = output
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("attrs")))
            .and_then(|(_, a)| a.as_object())
        else {
            continue;
        };
        for (key, v) in attrs {
            if key.eq_ignore_ascii_case("name") {
                let Some(list) = v.as_str() else {
                    return Err(qdeny("outputs", "an output name must be a string"));
                };
                names.extend(
                    list.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned),
                );
            }
        }
    }
    Ok(names)
}

/// Checks the names a request writes; the summary lists them (`tags`).
pub fn check(
    write: WritesImage,
    query: &[(String, String)],
    build: &BuildRules,
    container: &ContainerRules,
) -> Result<Summary, Violation> {
    let mut sum = Summary::new("image_write");
    let Some(names) = written_names(write, query)? else {
        if !build.tags.is_empty() {
            return Err(Violation {
                field: "(body)".into(),
                reason: "the image names inside a loaded archive are not read, so they cannot \
                         be held to the allowed tags (tags)"
                    .into(),
                setting: Some("tags".into()),
                value: None,
            });
        }
        if !container.images.is_empty() && !build.allow_writing_run_images {
            return Err(Violation {
                field: "(body)".into(),
                reason: format!(
                    "a loaded archive may write any image name, including the images allowed \
                     to run ({RUN_IMAGES_SETTING})"
                ),
                setting: Some(RUN_IMAGES_SETTING.into()),
                value: None,
            });
        }
        return Ok(sum);
    };
    for (param, name) in names {
        let full = name.full();
        if !build.tags.is_empty() && !image_matches(&name, &build.tags) {
            return Err(
                qdeny_rule(param, format!("tag {full} is not allowed"), "tags").with_value(full),
            );
        }
        if !container.images.is_empty()
            && image_matches(&name, &container.images)
            && !build.allow_writing_run_images
        {
            return Err(qdeny_rule(
                param,
                format!(
                    "{full} is an image the policy allows to run (images); writing it would \
                     let any content run under that name"
                ),
                RUN_IMAGES_SETTING,
            ));
        }
        sum.tags.push(full);
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const TAG: WritesImage = WritesImage::RepoTag {
        repo: "repo",
        tag: "tag",
    };

    fn rules() -> (BuildRules, ContainerRules) {
        let container = ContainerRules {
            images: vec!["busybox".into(), "ghcr.io/org/app:v1".into()],
            ..ContainerRules::default()
        };
        (BuildRules::default(), container)
    }

    #[test]
    fn names_the_images_allowlist_trusts_are_refused_in_every_spelling() {
        let (build, container) = rules();
        for pairs in [
            vec![("repo", "busybox")],
            vec![("repo", "busybox"), ("tag", "latest")],
            vec![("repo", "busybox:1.36")],
            vec![("repo", "docker.io/library/busybox"), ("tag", "x")],
            vec![("repo", "index.docker.io/library/busybox")],
            vec![("repo", "library/busybox"), ("tag", "")],
            vec![("repo", "ghcr.io/org/app"), ("tag", "v1")],
            // A tag in repo is held to the rules whatever the daemon makes of it.
            vec![("repo", "busybox:old"), ("tag", "new")],
        ] {
            let err = check(TAG, &q(&pairs), &build, &container).unwrap_err();
            assert_eq!(
                err.setting.as_deref(),
                Some(RUN_IMAGES_SETTING),
                "{pairs:?}"
            );
        }
        for pairs in [
            vec![("repo", "mine"), ("tag", "v1")],
            vec![("repo", "ghcr.io/org/app"), ("tag", "v2")],
            vec![("repo", "")],
            vec![],
        ] {
            assert!(
                check(TAG, &q(&pairs), &build, &container).is_ok(),
                "{pairs:?}"
            );
        }
        let t = WritesImage::References("t");
        assert!(check(t, &q(&[("t", "BusyBox")]), &build, &container).is_err());
        assert!(check(
            t,
            &q(&[("t", "ok:1"), ("t", "busybox:2")]),
            &build,
            &container
        )
        .is_err());
        let outputs =
            r#"[{"Type":"moby","Attrs":{"name":"ok:1,docker.io/library/busybox:latest"}}]"#;
        assert!(check(t, &q(&[("outputs", outputs)]), &build, &container).is_err());
        assert!(check(t, &q(&[("t", "ok:1")]), &build, &container).is_ok());
    }

    #[test]
    fn the_setting_opens_run_images_and_tags_still_apply() {
        let (mut build, container) = rules();
        build.allow_writing_run_images = true;
        assert!(check(TAG, &q(&[("repo", "busybox")]), &build, &container).is_ok());
        build.tags = vec!["docker.io/ci/*".into()];
        let err = check(TAG, &q(&[("repo", "busybox")]), &build, &container).unwrap_err();
        assert_eq!(err.setting.as_deref(), Some("tags"));
        assert!(check(
            TAG,
            &q(&[("repo", "ci/app"), ("tag", "1")]),
            &build,
            &container
        )
        .is_ok());
        // A load's names are unknown: refused under either rule, allowed under neither.
        assert!(check(WritesImage::InBody, &[], &build, &container).is_err());
        build.tags.clear();
        assert!(check(WritesImage::InBody, &[], &build, &container).is_ok());
        build.allow_writing_run_images = false;
        assert!(check(WritesImage::InBody, &[], &build, &container).is_err());
        let open = ContainerRules::default();
        assert!(check(WritesImage::InBody, &[], &build, &open).is_ok());
        assert!(check(TAG, &q(&[("repo", "busybox")]), &build, &open).is_ok());
    }
}
