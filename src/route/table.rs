//! The operation table: every operation the daemon's API offers, by name, with every fixed
//! fact the rest of the program needs about it (access class, why it is dangerous, hijack,
//! body use and inspector, object kinds, what it creates, redaction). The guardrails, the
//! inspection dispatch, the redaction, the audit record, `audit suggest`, `operations` and
//! `explain` all read it; nothing else keeps a list of operation names.

use std::fmt;

use super::object::ObjectKind;
use super::tenancy::{Admit, ImageMaker, Tenancy};
use super::Hijack;

/// What an operation does, coarsely (the `access` column of `routes.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Reads state (possibly secrets or file contents: see [`OperationInfo::dangerous`]).
    Read,
    /// Changes state.
    Write,
    /// Runs or feeds a process inside a container (exec, attach: carries stdin).
    Exec,
    /// Opens an opaque tunnel the proxy cannot inspect (BuildKit h2c sessions).
    Tunnel,
}

impl Access {
    /// `read`, `write`, `exec` or `tunnel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Exec => "exec",
            Access::Tunnel => "tunnel",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inspector that reads an operation's request (see `crate::inspect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspector {
    /// `container.create`: the create body and its `name`/`platform` query.
    ContainerCreate,
    /// `container.update`: the update body.
    ContainerUpdate,
    /// `container.start`: no body at all (a legacy HostConfig would replace the container's)
    /// and the checkpoint query.
    ContainerStart,
    /// `exec.create`: the exec config.
    ExecCreate,
    /// `volume.create`: driver and options.
    VolumeCreate,
    /// `network.create`: driver, options, IPAM.
    NetworkCreate,
    /// `network.connect`: the endpoint config.
    NetworkConnect,
    /// `image.build`: the query only; the build context streams.
    Build,
    /// `service.create`: the service spec.
    ServiceCreate,
    /// `service.update`: the service spec.
    ServiceUpdate,
    /// `plugin.pull`: the privileges granted.
    PluginPull,
    /// `plugin.upgrade`: the privileges granted.
    PluginUpgrade,
}

impl Inspector {
    /// The policy section (`[policy.NAME.SECTION]`) whose settings this inspector applies.
    pub fn section(self) -> Section {
        match self {
            Inspector::ExecCreate => Section::Exec,
            Inspector::VolumeCreate => Section::Volume,
            Inspector::NetworkCreate => Section::Network,
            Inspector::Build => Section::Build,
            Inspector::PluginPull | Inspector::PluginUpgrade => Section::Plugin,
            Inspector::ContainerCreate
            | Inspector::ContainerUpdate
            | Inspector::ContainerStart
            | Inspector::NetworkConnect
            | Inspector::ServiceCreate
            | Inspector::ServiceUpdate => Section::Container,
        }
    }

    /// Whether the request body is read and inspected (as opposed to the query alone, with
    /// the body streaming: builds).
    pub fn reads_body(self) -> bool {
        self != Inspector::Build
    }
}

/// A policy's inspection section: `[policy.NAME.container]`, `.exec`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// Container creates, updates, starts, network connects and service specs.
    Container,
    /// Exec creates.
    Exec,
    /// Volume creates.
    Volume,
    /// Network creates.
    Network,
    /// Build queries.
    Build,
    /// Plugin privileges.
    Plugin,
}

impl Section {
    /// The section's name in a policy (`container`, `exec`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Container => "container",
            Section::Exec => "exec",
            Section::Volume => "volume",
            Section::Network => "network",
            Section::Build => "build",
            Section::Plugin => "plugin",
        }
    }
}

/// What an operation's request body is, and how sockwarden treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyUse {
    /// The operation takes no body: a non-empty one is refused, since parsers (and old daemons,
    /// as on `start`) read a body where none belongs differently.
    None,
    /// A body (a tar stream, an uninspected document) streams to the daemon as it comes.
    Streamed,
    /// The request is read and checked by this inspector before it is forwarded.
    Inspected(Inspector),
}

/// What an operation makes the daemon fetch on the client's behalf, and the part of the
/// request that names it. Every source is held to one rule (`inspect::fetch`): never a
/// loopback, link-local or unspecified address, nor one of sockwarden's own listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// A query parameter holding an image or plugin reference: the daemon contacts its
    /// registry (`fromImage`, `remote`).
    RegistryQuery(&'static str),
    /// The image reference in the route's path (`{name}`): push, distribution lookup.
    RegistryPath,
    /// A query parameter holding a URL the daemon downloads (`fromSrc`; `-` is the body).
    UrlQuery(&'static str),
    /// The image a service spec names (read by the service inspector).
    ServiceImage,
    /// A classic build: the `remote` context URL, and in the context's Dockerfile `ADD`
    /// URLs and `FROM` / `COPY --from` images.
    Build,
}

/// The object a request creates, for the audit record: its kind, and the query parameter
/// that names it (else the name the inspector read from the body, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creates {
    /// What is created.
    pub kind: ObjectKind,
    /// The query parameter holding its name (`name`, `t`, `fromImage`, `repo`).
    pub query: Option<&'static str>,
}

/// The secret values an operation's answer can carry, and how a policy with `redact_env` keeps
/// them from the client (the rules themselves are in `crate::redact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redaction {
    /// A JSON answer (one object or a list of them) of this shape: the values are replaced,
    /// names and shape stay.
    Answer(Answer),
    /// A stream of JSON events, one per line: each is rewritten as it passes (exec command
    /// lines in `exec_create: ...` actions).
    Events,
    /// `ps` output cannot be redacted (an environment is not told apart from arguments in it):
    /// the request's `ps_args` must name only `ps` options that cannot show environments.
    PsArgs,
}

/// The shape of a JSON answer whose secret values are redacted (see [`Redaction::Answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Container inspect: `Config.Env`, `HostConfig.LogConfig.Config`, volume driver options
    /// of `HostConfig.Mounts`.
    Container,
    /// Image inspect: `Env`, and `ENV`/`ARG` values in the builder's `Cmd` records and
    /// `OnBuild`, of `Config` and `ContainerConfig`.
    Image,
    /// Image history: `ENV`/`ARG` and build-argument values in `CreatedBy`.
    History,
    /// Volume inspect, or a volume list (`{"Volumes": [...]}`): `Options` values.
    Volume,
    /// Plugin inspect or list: `Settings.Env`.
    Plugin,
    /// Service inspect or list: the task template's `ContainerSpec.Env` and `PluginSpec.Env`,
    /// log driver options and volume driver options (in `Spec` and `PreviousSpec`).
    Service,
    /// Task inspect or list: the same in the task's `Spec`.
    Task,
    /// `GET /system/df`: volumes' `Options`, build cache descriptions.
    DiskUsage,
    /// Exec inspect: the command's arguments.
    Exec,
}

/// Where an operation writes an image name, for the build `tags` rules and the names the
/// container `images` allowlist trusts (see `crate::inspect::image_names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritesImage {
    /// A reference in `repo` with an optional separate `tag`, read as the daemon's
    /// `RepoTagReference` (`tag`, when given, replaces a tag in `repo`).
    RepoTag {
        /// The parameter holding the repository (and maybe a tag).
        repo: &'static str,
        /// The parameter holding the tag.
        tag: &'static str,
    },
    /// Every value of this repeatable parameter is a reference (build `t`; BuildKit's image
    /// outputs name more).
    References(&'static str),
    /// The names are inside the streamed body, which sockwarden does not read (`image.load`:
    /// the archive's `manifest.json` and `repositories`).
    InBody,
}

/// One named operation and every fixed fact about it: the one table the guardrails, the
/// inspection dispatch, the redaction, the audit record, `audit suggest`, `operations` and
/// `explain` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationInfo {
    /// The name policies use (`container.inspect`).
    pub name: &'static str,
    /// Its access class.
    pub access: Access,
    /// Why it exfiltrates data, escalates privileges or tunnels past inspection, if it does,
    /// so that no policy rule opens it without an explicit acknowledgement (`allow_dangerous`).
    pub danger: Option<&'static str>,
    /// The daemon routes it stands for, for documentation and messages.
    pub routes: &'static str,
    /// Whether (and how) the daemon may take over the connection.
    pub hijack: Option<Hijack>,
    /// What its request body is and whether it is inspected.
    pub body: BodyUse,
    /// The kind of object the route's first path variable names, if it has one.
    pub object: Option<ObjectKind>,
    /// Whether the operation reaches into that object (runs or feeds a process in it, starts
    /// it, moves files through its mounts): then the object's stored configuration is held to
    /// the rules a create of it would face (see `crate::reach`). Only a container or an exec.
    pub reaches: bool,
    /// What it creates, for the audit record.
    pub creates: Option<Creates>,
    /// Which secret values its answer can carry, redacted (or refused) under `redact_env`.
    pub redacts: Option<Redaction>,
    /// Where it writes an image name, if it does.
    pub writes_image: Option<WritesImage>,
    /// What it makes the daemon fetch from elsewhere, if anything.
    pub fetch: Option<Fetch>,
    /// What it does to an isolated tenant's objects.
    pub tenancy: Tenancy,
}

impl OperationInfo {
    /// Whether the operation is dangerous (see [`OperationInfo::danger`]).
    pub const fn dangerous(&self) -> bool {
        self.danger.is_some()
    }

    /// The inspector that reads its requests, if any.
    pub const fn inspector(&self) -> Option<Inspector> {
        match self.body {
            BodyUse::Inspected(inspector) => Some(inspector),
            BodyUse::None | BodyUse::Streamed => None,
        }
    }

    const fn dangerous_because(mut self, why: &'static str) -> Self {
        self.danger = Some(why);
        self
    }

    const fn hijacks(mut self, hijack: Hijack) -> Self {
        self.hijack = Some(hijack);
        self
    }

    const fn streams_body(mut self) -> Self {
        self.body = BodyUse::Streamed;
        self
    }

    const fn inspected_by(mut self, inspector: Inspector) -> Self {
        self.body = BodyUse::Inspected(inspector);
        self
    }

    const fn names(mut self, kind: ObjectKind) -> Self {
        self.object = Some(kind);
        self
    }

    /// The route's object is reached (see [`OperationInfo::reaches`]).
    const fn reaches_object(mut self) -> Self {
        self.reaches = true;
        self
    }

    const fn creates(mut self, kind: ObjectKind, query: Option<&'static str>) -> Self {
        self.creates = Some(Creates { kind, query });
        self
    }

    const fn redacts(mut self, redaction: Redaction) -> Self {
        self.redacts = Some(redaction);
        self
    }

    const fn redacts_answer(self, answer: Answer) -> Self {
        self.redacts(Redaction::Answer(answer))
    }

    const fn writes_image(mut self, write: WritesImage) -> Self {
        self.writes_image = Some(write);
        self
    }

    const fn fetches(mut self, fetch: Fetch) -> Self {
        self.fetch = Some(fetch);
        self
    }

    const fn tenancy(mut self, tenancy: Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }
}

/// An operation with no body, object or danger; the builder methods above add those facts.
const fn op(name: &'static str, access: Access, routes: &'static str) -> OperationInfo {
    OperationInfo {
        name,
        access,
        danger: None,
        routes,
        hijack: None,
        body: BodyUse::None,
        object: None,
        reaches: false,
        creates: None,
        redacts: None,
        writes_image: None,
        fetch: None,
        tenancy: Tenancy::Unavailable,
    }
}

use Access::{Exec as X, Read as R, Tunnel as T, Write as W};

/// Names an object its path names, checked as the tenant's ([`Admit::PathObject`]).
const OWNED: Tenancy = Tenancy::Owned(Admit::PathObject);

/// The name of the operation for anything the daemon does not route (it answers 404 "page not
/// found"), including a known path with the wrong method.
pub const UNKNOWN: &str = "unknown";

/// The entry for [`UNKNOWN`] (last in [`OPERATION_TABLE`]).
pub(super) const UNKNOWN_INFO: OperationInfo = op(UNKNOWN, W, "anything the daemon does not route")
    .dangerous_because("is a route sockwarden cannot classify or inspect")
    .streams_body();

/// Every operation, in the order `sockwarden operations` lists them, with every fact the
/// rest of the program needs about it (see [`OperationInfo`]).
///
/// Dangerous (each entry says why):
/// - file and image contents leave the daemon: `container.archive.get`/`.head` (file metadata),
///   `container.export`, `container.copy`, `container.commit` (also writes a tag),
///   `image.save`, `image.push`, `plugin.push`;
/// - stdin or a process inside a container: `exec.create`, `exec.start`, `container.attach`,
///   `container.attach.websocket`;
/// - writes the proxy cannot inspect or that hijack names others use: `container.archive.put`
///   (files into a container), `container.update` (limits and restart policy of a running
///   container), `volume.update`, `image.load`, `image.import` (also `fromSrc=URL`: the daemon
///   downloads), `image.tag` (can re-point `busybox:latest` at anything), `image.build` (runs
///   build steps configured by query parameters, fetches `remote=` URLs);
/// - tunnels: `build.session`, `build.grpc` (BuildKit entitlements travel inside);
/// - the daemon itself: `system.debug` (pprof, expvar with the daemon's command line),
///   `system.auth` (the daemon logs in to a registry with client credentials);
/// - host paths: `container.checkpoint.*` (`CheckpointDir` / `dir=` name host directories the
///   daemon writes, lists or deletes);
/// - the swarm: `swarm.inspect` (returns the manager and worker join tokens),
///   `swarm.unlockkey`, every swarm write (`init`, `join`, `leave`, `update`, `unlock`),
///   `node.update` (role promotion), `node.delete`, `service.create`, `service.update` (the spec is
///   inspected like a container's, but its tasks run on every node of the swarm), secret and
///   config writes;
/// - every plugin write (`pull`, `create`, `enable`, `set`, `upgrade` install or configure code
///   running as root; `disable`/`delete` can remove an authorization plugin);
/// - `unknown`: a route this table does not know may be newer than it.
///
/// Reaching their object (`reaches`, see `crate::reach`): `container.start`, `.restart`,
/// `.attach`, `.attach.websocket` (run or feed its processes, mount its binds), `exec.create`
/// (a process in it), `exec.start` (the exec, then its container), `container.archive.get`,
/// `.head`, `.put`, `container.copy` (files through its mounts). Not reaching: stop, kill,
/// pause, wait, logs, inspect, resize, rename, delete (nothing runs or mounts), `unpause` (it
/// resumes what already ran), `export` and `commit` (the container's own layer, no mounts).
///
/// Not dangerous on purpose: `container.create`, `volume.create`, `network.create`/`connect`
/// (their bodies are inspected field by field), the prunes and deletes (destructive but scoped
/// by the policy's owner filters), `secret.inspect` (the daemon never returns secret data),
/// `config.inspect`, `distribution.inspect`, `image.pull`.
pub const OPERATION_TABLE: &[OperationInfo] = &[
    op("container.list", R, "GET /containers/json")
        .tenancy(Tenancy::Lists(ObjectKind::Container)),
    op("container.create", W, "POST /containers/create")
        .tenancy(Tenancy::Creates(Admit::ContainerBody))
        .inspected_by(Inspector::ContainerCreate)
        .creates(ObjectKind::Container, Some("name")),
    op("container.inspect", R, "GET /containers/{name}/json")
        .tenancy(OWNED)
        .names(ObjectKind::Container)
        .redacts_answer(Answer::Container),
    op("container.top", R, "GET /containers/{name}/top")
        .tenancy(OWNED)
        .names(ObjectKind::Container)
        .redacts(Redaction::PsArgs),
    op("container.logs", R, "GET /containers/{name}/logs")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.stats", R, "GET /containers/{name}/stats")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.changes", R, "GET /containers/{name}/changes")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.export", R, "GET /containers/{name}/export")
        .tenancy(OWNED)
        .dangerous_because("reads a container's whole filesystem")
        .names(ObjectKind::Container),
    op("container.archive.get", R, "GET /containers/{name}/archive")
        .tenancy(OWNED)
        .dangerous_because("reads files out of a container")
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.archive.head", R, "HEAD /containers/{name}/archive")
        .tenancy(OWNED)
        .dangerous_because("probes files inside a container")
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.archive.put", W, "PUT /containers/{name}/archive")
        .tenancy(OWNED)
        .dangerous_because("writes files into a container")
        .streams_body()
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.start", W, "POST /containers/{name}/start")
        .tenancy(OWNED)
        .inspected_by(Inspector::ContainerStart)
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.stop", W, "POST /containers/{name}/stop")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.restart", W, "POST /containers/{name}/restart")
        .tenancy(OWNED)
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.kill", W, "POST /containers/{name}/kill")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.pause", W, "POST /containers/{name}/pause")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.unpause", W, "POST /containers/{name}/unpause")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.wait", R, "POST /containers/{name}/wait")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.resize", W, "POST /containers/{name}/resize")
        .tenancy(OWNED)
        .names(ObjectKind::Container),
    op("container.attach", X, "POST /containers/{name}/attach")
        .tenancy(OWNED)
        .dangerous_because("writes to a container's stdin and reads its output")
        .hijacks(Hijack::Attach)
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.attach.websocket", X, "GET /containers/{name}/attach/ws")
        .tenancy(OWNED)
        .dangerous_because("writes to a container's stdin and reads its output")
        .hijacks(Hijack::AttachWebsocket)
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.rename", W, "POST /containers/{name}/rename")
        .tenancy(Tenancy::Owned(Admit::Renames))
        .names(ObjectKind::Container),
    op("container.update", W, "POST /containers/{name}/update")
        .tenancy(OWNED)
        .dangerous_because("changes a running container's limits and restart policy")
        .inspected_by(Inspector::ContainerUpdate)
        .names(ObjectKind::Container),
    op("container.prune", W, "POST /containers/prune")
        .tenancy(Tenancy::Prunes(ObjectKind::Container)),
    op("container.delete", W, "DELETE /containers/{name}")
        .tenancy(Tenancy::Owned(Admit::FreesName))
        .names(ObjectKind::Container),
    op("container.commit", W, "POST /commit")
        .tenancy(Tenancy::Creates(Admit::MakesImage(ImageMaker::Commit)))
        .dangerous_because("turns a container's files into an image")
        .streams_body()
        .creates(ObjectKind::Image, Some("repo"))
        .writes_image(WritesImage::RepoTag { repo: "repo", tag: "tag" }),
    op("container.copy", R, "POST /containers/{name}/copy (API < 1.24)")
        .tenancy(OWNED)
        .dangerous_because("reads files out of a container (legacy API)")
        .names(ObjectKind::Container)
        .reaches_object(),
    op("container.checkpoint.list", R, "GET /containers/{name}/checkpoints")
        .dangerous_because("lists a host directory the client names (dir=)")
        .names(ObjectKind::Container),
    op("container.checkpoint.create", W, "POST /containers/{name}/checkpoints")
        .dangerous_because("dumps a container's memory to disk")
        .streams_body()
        .names(ObjectKind::Container),
    op("container.checkpoint.delete", W, "DELETE /containers/{name}/checkpoints/{checkpoint}")
        .dangerous_because("is experimental and uninspected")
        .names(ObjectKind::Container),
    op("exec.create", X, "POST /containers/{name}/exec")
        .tenancy(OWNED)
        .dangerous_because("runs commands inside a container")
        .inspected_by(Inspector::ExecCreate)
        .names(ObjectKind::Container)
        .reaches_object(),
    op("exec.start", X, "POST /exec/{id}/start")
        .tenancy(OWNED)
        .dangerous_because("runs commands inside a container")
        .hijacks(Hijack::ExecStart)
        .streams_body()
        .names(ObjectKind::Exec)
        .reaches_object(),
    op("exec.resize", W, "POST /exec/{id}/resize")
        .tenancy(OWNED)
        .names(ObjectKind::Exec),
    op("exec.inspect", R, "GET /exec/{id}/json")
        .tenancy(OWNED)
        .names(ObjectKind::Exec)
        .redacts_answer(Answer::Exec),
    op("image.list", R, "GET /images/json")
        .tenancy(Tenancy::Lists(ObjectKind::Image)),
    op("image.search", R, "GET /images/search")
        .tenancy(Tenancy::Shared),
    op("image.save", R, "GET /images/get, GET /images/{name}/get")
        .tenancy(Tenancy::Owned(Admit::SavesImages))
        .dangerous_because("exports images, layers and all")
        .names(ObjectKind::Image),
    op("image.history", R, "GET /images/{name}/history")
        .tenancy(Tenancy::Owned(Admit::ReadsImage { probed: true }))
        .names(ObjectKind::Image)
        .redacts_answer(Answer::History),
    op("image.inspect", R, "GET /images/{name}/json")
        .tenancy(Tenancy::Owned(Admit::ReadsImage { probed: true }))
        .names(ObjectKind::Image)
        .redacts_answer(Answer::Image),
    op("image.attestations", R, "GET /images/{name}/attestations (API 1.55)")
        .tenancy(Tenancy::Owned(Admit::ReadsImage { probed: false }))
        .names(ObjectKind::Image),
    op("image.load", W, "POST /images/load")
        .dangerous_because("loads arbitrary image content and retags silently")
        .streams_body()
        .writes_image(WritesImage::InBody),
    op("image.pull", W, "POST /images/create?fromImage=... (no fromSrc)")
        .tenancy(Tenancy::Creates(Admit::Pull))
        .creates(ObjectKind::Image, Some("fromImage"))
        .fetches(Fetch::RegistryQuery("fromImage")),
    op("image.import", W, "POST /images/create otherwise (fromSrc=...)")
        .tenancy(Tenancy::Creates(Admit::MakesImage(ImageMaker::Import)))
        .dangerous_because("imports an arbitrary root filesystem (or fetches a URL)")
        .streams_body()
        .creates(ObjectKind::Image, Some("repo"))
        .writes_image(WritesImage::RepoTag { repo: "repo", tag: "tag" })
        .fetches(Fetch::UrlQuery("fromSrc")),
    op("image.push", W, "POST /images/{name}/push")
        .tenancy(Tenancy::Owned(Admit::PushesImage))
        .dangerous_because("sends images to a registry")
        .names(ObjectKind::Image)
        .fetches(Fetch::RegistryPath),
    op("image.tag", W, "POST /images/{name}/tag")
        .tenancy(Tenancy::Owned(Admit::TagsImage))
        .dangerous_because("can re-point a name others use (busybox:latest) at any image")
        .names(ObjectKind::Image)
        .writes_image(WritesImage::RepoTag { repo: "repo", tag: "tag" }),
    op("image.prune", W, "POST /images/prune")
        .tenancy(Tenancy::Prunes(ObjectKind::Image)),
    op("image.delete", W, "DELETE /images/{name}")
        .tenancy(Tenancy::Owned(Admit::RemovesImage))
        .names(ObjectKind::Image),
    op("image.build", W, "POST /build")
        .tenancy(Tenancy::Creates(Admit::MakesImage(ImageMaker::Build)))
        .dangerous_because("runs build steps and makes the daemon fetch remote contexts")
        .inspected_by(Inspector::Build)
        .creates(ObjectKind::Image, Some("t"))
        .writes_image(WritesImage::References("t"))
        .fetches(Fetch::Build),
    op("build.prune", W, "POST /build/prune")
        .tenancy(Tenancy::AnsweredEmpty(r#"{"CachesDeleted":null,"SpaceReclaimed":0}"#)),
    op("build.cancel", W, "POST /build/cancel"),
    op("build.session", T, "POST /session")
        .tenancy(Tenancy::Shared)
        .dangerous_because("opens a BuildKit session (host network, secrets, SSH): only its Dockerfile is read and checked (ADD <url>, FROM and COPY --from as a classic build's; custom frontends refused), everything else it carries passes unread, and its RUN steps get no container limits")
        .hijacks(Hijack::Session),
    op("build.grpc", T, "POST /grpc")
        .dangerous_because("opens an uninspected BuildKit tunnel (host network, secrets, SSH): its Dockerfile is never seen, so the daemon fetches ADD <url> sources and FROM images for it unchecked (loopback, link-local and sockwarden's own listeners included: the fetch rule cannot apply), and its RUN steps get no container limits")
        .hijacks(Hijack::Grpc),
    op("system.ping", R, "GET /_ping, HEAD /_ping")
        .tenancy(Tenancy::Shared),
    op("system.events", R, "GET /events")
        .tenancy(Tenancy::Events)
        .redacts(Redaction::Events),
    op("system.info", R, "GET /info")
        .tenancy(Tenancy::Shared),
    op("system.version", R, "GET /version")
        .tenancy(Tenancy::Shared),
    op("system.df", R, "GET /system/df")
        .tenancy(Tenancy::DiskUsage)
        .redacts_answer(Answer::DiskUsage),
    op("system.auth", W, "POST /auth")
        .tenancy(Tenancy::Shared)
        .dangerous_because("makes the daemon log in to a registry of the client's choosing")
        .streams_body(),
    op("system.options", R, "OPTIONS (any path)")
        .tenancy(Tenancy::Shared),
    op("system.debug", R, "any method /debug/vars, /debug/pprof/, /debug/pprof/{name}")
        .dangerous_because("exposes the daemon's profiler and internal state")
        .streams_body(),
    op("volume.list", R, "GET /volumes")
        .tenancy(Tenancy::Lists(ObjectKind::Volume))
        .redacts_answer(Answer::Volume),
    op("volume.inspect", R, "GET /volumes/{name}")
        .tenancy(OWNED)
        .names(ObjectKind::Volume)
        .redacts_answer(Answer::Volume),
    op("volume.create", W, "POST /volumes/create")
        .tenancy(Tenancy::Creates(Admit::VolumeBody))
        .inspected_by(Inspector::VolumeCreate)
        .creates(ObjectKind::Volume, None),
    op("volume.prune", W, "POST /volumes/prune")
        .tenancy(Tenancy::Prunes(ObjectKind::Volume)),
    op("volume.update", W, "PUT /volumes/{name} (API 1.42)")
        .tenancy(OWNED)
        .dangerous_because("changes cluster volumes without body inspection")
        .streams_body()
        .names(ObjectKind::Volume),
    op("volume.delete", W, "DELETE /volumes/{name}")
        .tenancy(OWNED)
        .names(ObjectKind::Volume),
    op("network.list", R, "GET /networks, GET /networks/")
        .tenancy(Tenancy::Lists(ObjectKind::Network)),
    op("network.inspect", R, "GET /networks/{id}")
        .tenancy(OWNED)
        .names(ObjectKind::Network),
    op("network.create", W, "POST /networks/create")
        .tenancy(Tenancy::Creates(Admit::NetworkBody))
        .inspected_by(Inspector::NetworkCreate)
        .creates(ObjectKind::Network, None),
    op("network.connect", W, "POST /networks/{id}/connect")
        .tenancy(Tenancy::Owned(Admit::ConnectsNetwork))
        .inspected_by(Inspector::NetworkConnect)
        .names(ObjectKind::Network),
    op("network.disconnect", W, "POST /networks/{id}/disconnect")
        .tenancy(Tenancy::Owned(Admit::DisconnectsNetwork))
        .streams_body()
        .names(ObjectKind::Network),
    op("network.prune", W, "POST /networks/prune")
        .tenancy(Tenancy::Prunes(ObjectKind::Network)),
    op("network.delete", W, "DELETE /networks/{id}")
        .tenancy(OWNED)
        .names(ObjectKind::Network),
    op("swarm.init", W, "POST /swarm/init")
        .dangerous_because("changes the host's cluster membership")
        .streams_body(),
    op("swarm.join", W, "POST /swarm/join")
        .dangerous_because("joins the host to a cluster of the client's choosing")
        .streams_body(),
    op("swarm.leave", W, "POST /swarm/leave")
        .dangerous_because("changes the host's cluster membership"),
    op("swarm.inspect", R, "GET /swarm")
        .dangerous_because("returns the swarm's join tokens"),
    op("swarm.unlockkey", R, "GET /swarm/unlockkey")
        .dangerous_because("reveals the swarm unlock key"),
    op("swarm.update", W, "POST /swarm/update")
        .dangerous_because("changes cluster settings and tokens")
        .streams_body(),
    op("swarm.unlock", W, "POST /swarm/unlock")
        .dangerous_because("handles the swarm unlock key")
        .streams_body(),
    op("service.list", R, "GET /services")
        .redacts_answer(Answer::Service),
    op("service.inspect", R, "GET /services/{id}")
        .names(ObjectKind::Service)
        .redacts_answer(Answer::Service),
    op("service.create", W, "POST /services/create")
        .dangerous_because("runs containers on every node of a swarm (their spec is inspected, but a swarm reaches other hosts)")
        .inspected_by(Inspector::ServiceCreate)
        .creates(ObjectKind::Service, None)
        .fetches(Fetch::ServiceImage),
    op("service.update", W, "POST /services/{id}/update")
        .dangerous_because("changes services on every node of a swarm (their spec is inspected, but a swarm reaches other hosts)")
        .inspected_by(Inspector::ServiceUpdate)
        .names(ObjectKind::Service)
        .fetches(Fetch::ServiceImage),
    op("service.delete", W, "DELETE /services/{id}")
        .names(ObjectKind::Service),
    op("service.logs", R, "GET /services/{id}/logs")
        .names(ObjectKind::Service),
    op("node.list", R, "GET /nodes"),
    op("node.inspect", R, "GET /nodes/{id}")
        .names(ObjectKind::Node),
    op("node.delete", W, "DELETE /nodes/{id}")
        .dangerous_because("removes nodes from the swarm")
        .names(ObjectKind::Node),
    op("node.update", W, "POST /nodes/{id}/update")
        .dangerous_because("changes node roles and placement")
        .streams_body()
        .names(ObjectKind::Node),
    op("task.list", R, "GET /tasks")
        .redacts_answer(Answer::Task),
    op("task.inspect", R, "GET /tasks/{id}")
        .names(ObjectKind::Task)
        .redacts_answer(Answer::Task),
    op("task.logs", R, "GET /tasks/{id}/logs")
        .names(ObjectKind::Task),
    op("secret.list", R, "GET /secrets"),
    op("secret.create", W, "POST /secrets/create")
        .dangerous_because("writes swarm secrets")
        .streams_body()
        .creates(ObjectKind::Secret, None),
    op("secret.delete", W, "DELETE /secrets/{id}")
        .names(ObjectKind::Secret),
    op("secret.inspect", R, "GET /secrets/{id}")
        .names(ObjectKind::Secret),
    op("secret.update", W, "POST /secrets/{id}/update")
        .dangerous_because("writes swarm secrets")
        .streams_body()
        .names(ObjectKind::Secret),
    op("config.list", R, "GET /configs"),
    op("config.create", W, "POST /configs/create")
        .dangerous_because("writes swarm configs")
        .streams_body()
        .creates(ObjectKind::Config, None),
    op("config.delete", W, "DELETE /configs/{id}")
        .names(ObjectKind::Config),
    op("config.inspect", R, "GET /configs/{id}")
        .names(ObjectKind::Config),
    op("config.update", W, "POST /configs/{id}/update")
        .dangerous_because("writes swarm configs")
        .streams_body()
        .names(ObjectKind::Config),
    op("plugin.list", R, "GET /plugins")
        .redacts_answer(Answer::Plugin),
    op("plugin.inspect", R, "GET /plugins/{name}/json")
        .names(ObjectKind::Plugin)
        .redacts_answer(Answer::Plugin),
    op("plugin.privileges", R, "GET /plugins/privileges"),
    op("plugin.delete", W, "DELETE /plugins/{name}")
        .dangerous_because("removes plugins")
        .names(ObjectKind::Plugin),
    op("plugin.enable", W, "POST /plugins/{name}/enable")
        .dangerous_because("starts plugins, which run as root")
        .names(ObjectKind::Plugin),
    op("plugin.disable", W, "POST /plugins/{name}/disable")
        .dangerous_because("can remove an authorization or storage plugin")
        .names(ObjectKind::Plugin),
    op("plugin.pull", W, "POST /plugins/pull")
        .dangerous_because("installs plugins, which run as root")
        .inspected_by(Inspector::PluginPull)
        .creates(ObjectKind::Plugin, None)
        .fetches(Fetch::RegistryQuery("remote")),
    op("plugin.push", W, "POST /plugins/{name}/push")
        .dangerous_because("sends plugins to a registry")
        .names(ObjectKind::Plugin),
    op("plugin.upgrade", W, "POST /plugins/{name}/upgrade")
        .dangerous_because("replaces plugins, which run as root")
        .inspected_by(Inspector::PluginUpgrade)
        .names(ObjectKind::Plugin)
        .fetches(Fetch::RegistryQuery("remote")),
    op("plugin.set", W, "POST /plugins/{name}/set")
        .dangerous_because("changes plugin mounts, devices and arguments")
        .streams_body()
        .names(ObjectKind::Plugin),
    op("plugin.create", W, "POST /plugins/create")
        .dangerous_because("installs plugins, which run as root")
        .streams_body()
        .creates(ObjectKind::Plugin, Some("name")),
    op("distribution.inspect", R, "GET /distribution/{name}/json")
        .tenancy(Tenancy::Shared)
        .names(ObjectKind::Image)
        .fetches(Fetch::RegistryPath),
    UNKNOWN_INFO,
];

const OPERATION_COUNT: usize = OPERATION_TABLE.len();

const OPERATION_NAMES: [&str; OPERATION_COUNT] = {
    let mut names = [""; OPERATION_COUNT];
    let mut i = 0;
    while i < OPERATION_COUNT {
        names[i] = OPERATION_TABLE[i].name;
        i += 1;
    }
    names
};

/// Every operation name, in [`OPERATION_TABLE`] order (`unknown` last).
pub const OPERATIONS: &[&str] = &OPERATION_NAMES;

/// Every operation name, in [`OPERATION_TABLE`] order (`unknown` last).
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().copied()
}

/// The table entry for `name`.
pub fn operation_info(name: &str) -> Option<&'static OperationInfo> {
    OPERATION_TABLE.iter().find(|info| info.name == name)
}
