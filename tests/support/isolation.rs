//! Helpers for the isolation tests: sockwarden configured by `config/examples/multi-user.toml`
//! (its paths replaced), tenants as real unix users in the "users" group, and the daemon's own
//! view of an object.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::{daemon_socket, toml_str, Docker, Proxy, DEBIAN_DOCKER_CLI};

/// The "users" group the tenants run in.
pub const USERS_GID: u32 = 100;

/// The owner label the example keeps.
pub const LABEL: &str = "sockwarden.owner";

/// The multi-user example with its daemon socket and listener in `dir` (made reachable for
/// the tenants: the socket is 0666, its directory must be searchable), each `replace`
/// applied (each must be found).
pub fn multi_user_example(dir: &Path, replace: &[(&str, &str)]) -> String {
    let mut text = include_str!("../../config/examples/multi-user.toml")
        .replace(
            "socket = \"/var/run/docker.sock\"",
            &format!(
                "socket = {}",
                toml_str(&daemon_socket().display().to_string())
            ),
        )
        .replace(
            "unix = \"/run/sockwarden/docker.sock\"",
            &format!(
                "unix = {}",
                toml_str(&dir.join("proxy.sock").display().to_string())
            ),
        );
    for (from, to) in replace {
        assert!(text.contains(from), "{from} not in the example");
        text = text.replace(from, to);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    text
}

/// The start of a shared host's configuration in `dir`: the test daemon upstream, one 0666
/// socket (`dir/proxy.sock`) and root as the allow-all `admin` client, `dir` made searchable
/// so that other users reach the socket. Tests add their tenants' clients and policies.
pub fn shared_host_toml(dir: &Path) -> String {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!(
        r#"
[upstream]
socket = {up}

[[listen]]
unix = {sock}
mode = "0666"

[[client]]
name = "admin"
policy = "allow-all"
uids = [0]
"#,
        up = toml_str(&daemon_socket().display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
    )
}

/// The docker CLI through `proxy` as tenant `uid`.
pub fn tenant(proxy: &Proxy, uid: u32) -> Docker {
    proxy.docker().user(uid, USERS_GID)
}

/// Both CLIs as tenant `uid`, classic builds.
pub fn tenant_clis(proxy: &Proxy, uid: u32) -> [(&'static str, Docker); 2] {
    [
        (
            "cli28",
            tenant(proxy, uid)
                .env("DOCKER_BUILDKIT", "0")
                .timeout(Duration::from_secs(120)),
        ),
        (
            "cli20.10",
            tenant(proxy, uid)
                .bin(DEBIAN_DOCKER_CLI)
                .env("DOCKER_BUILDKIT", "0")
                .timeout(Duration::from_secs(120)),
        ),
    ]
}

/// The docker CLI on the daemon's own socket (an admin, past sockwarden).
pub fn direct() -> Docker {
    Docker::new(&daemon_socket())
}

/// The owner label of a container or image (`Config.Labels`) or volume or network (`Labels`),
/// read on the daemon directly.
pub fn owner_of(kind: &str, name: &str) -> String {
    let format = match kind {
        "container" | "image" => format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
        _ => format!("{{{{index .Labels \"{LABEL}\"}}}}"),
    };
    direct()
        .ok_str(&[kind, "inspect", "--format", &format, name])
        .trim()
        .to_owned()
}

/// Whether the daemon has the object.
pub fn exists(kind: &str, name: &str) -> bool {
    direct().run(&[kind, "inspect", name]).status.success()
}

/// The example's changes that turn BuildKit on for the tenants (off in the example: its RUN
/// steps get no caps) and open its session route.
pub const BUILDKIT_ON: [(&str, &str); 4] = [
    ("allow_buildkit = false", "allow_buildkit = true"),
    (
        "allow_uncapped_builds = false",
        "allow_uncapped_builds = true",
    ),
    (
        "\"image.prune\",\n]",
        "\"image.prune\", \"build.session\",\n]",
    ),
    (
        "\"container.attach.websocket\",\n]",
        "\"container.attach.websocket\", \"build.session\",\n]",
    ),
];

/// The full ID of an object, read on the daemon directly.
pub fn id_of(kind: &str, name: &str) -> String {
    direct()
        .ok_str(&[kind, "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_owned()
}

/// A build context the tenants can read, with `dockerfile` and a file `f` holding "data".
pub fn build_context(dockerfile: &str) -> tempfile::TempDir {
    build_context_with(dockerfile, "data")
}

/// A build context the tenants can read, with `dockerfile` and a file `f` holding `data`.
pub fn build_context_with(dockerfile: &str, data: &str) -> tempfile::TempDir {
    let ctx = tempfile::Builder::new()
        .prefix("swctx.")
        .tempdir_in("/tmp")
        .expect("tempdir");
    std::fs::set_permissions(ctx.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(ctx.path().join("f"), data).expect("write");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("write");
    ctx
}
