//! What each operation does to an isolated tenant's objects: the operation table's
//! [`Tenancy`] fact, and for a request that names or creates an object, which check or
//! rewrite it gets ([`Admit`]). `crate::isolation` dispatches on these facts alone.

use super::object::ObjectKind;

/// What an operation does to the objects of an isolated policy's tenant (`isolation`, see
/// `crate::isolation`): which check or rewrite a tenant's request gets. Deny by default: an
/// operation without one is [`Tenancy::Unavailable`] to isolated clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    /// Touches no object a tenant owns (`_ping`, `version`, `info`, a registry search).
    Shared,
    /// Names an object in its path (see `OperationInfo::object`; an exec through its
    /// container): it must be the tenant's, else it is answered as a missing one. How it is
    /// checked: the [`Admit`].
    Owned(Admit),
    /// Creates an object (see `OperationInfo::creates`): it is labelled as the tenant's, and
    /// the objects its body refers to must be the tenant's. How: the [`Admit`].
    Creates(Admit),
    /// Lists objects of this kind: the answer shows only the tenant's.
    Lists(ObjectKind),
    /// `GET /events`: only events about the tenant's objects.
    Events,
    /// `GET /system/df`: only the tenant's objects.
    DiskUsage,
    /// Prunes objects of this kind: only the tenant's.
    Prunes(ObjectKind),
    /// Acts on what tenants share and cannot be scoped to one (the build cache's prune):
    /// answered as though the tenant had none of it, without forwarding: with this body,
    /// what the daemon answers when it has nothing of the kind.
    AnsweredEmpty(&'static str),
    /// Not available to isolated clients (swarm, plugins, the build cache, checkpoints).
    Unavailable,
}

/// How isolation admits one request that names or creates an object
/// (`crate::isolation::objects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The object the path names must be the tenant's (an image: one it may change, its own);
    /// a container or network is then addressed by its full ID.
    PathObject,
    /// As [`Admit::PathObject`] for a container the request renames: names resolved for
    /// tenants are out of date afterwards, and a name conflict (409) may name another
    /// tenant's container.
    Renames,
    /// As [`Admit::PathObject`] for a container the request removes (its name is free
    /// afterwards).
    FreesName,
    /// An image the tenant may read: its own or a shared one. `probed`: another tenant's is
    /// answered in the daemon's own words for a missing image of this request (asked of the
    /// daemon, since they vary by operation and version).
    ReadsImage {
        /// Whether the daemon is asked for its words.
        probed: bool,
    },
    /// `image.save`: the image the path names, or each one its `names` parameter lists, must
    /// be readable.
    SavesImages,
    /// Sends the image the push names (with its `tag`): the tenant's own.
    PushesImage,
    /// Writes a name (`repo`, `tag`) for the path's image: the image the tenant's own, the
    /// name not held by another's or a shared image.
    TagsImage,
    /// Removes the path's image: the tenant's own, and held by none of its running builds.
    RemovesImage,
    /// Network connect: the network and the body's container the tenant's; the endpoint is
    /// pinned to the network's ID.
    ConnectsNetwork,
    /// Network disconnect: the network and the body's container the tenant's.
    DisconnectsNetwork,
    /// A container create's body: labelled, every object it refers to the tenant's, implicit
    /// volumes created owned first, quotas.
    ContainerBody,
    /// A volume create's body: labelled, quotas.
    VolumeBody,
    /// A network create's body: labelled.
    NetworkBody,
    /// Pulls an image: the name it writes not held by another's image.
    Pull,
    /// Makes an image that is labelled and recorded in the image ledger as the tenant's.
    MakesImage(ImageMaker),
}

/// What makes an image a tenant owns (its answer names the image's ID differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageMaker {
    /// `POST /build`.
    Build,
    /// `POST /commit`.
    Commit,
    /// `POST /images/create?fromSrc=`.
    Import,
}

impl Tenancy {
    /// How a request that names or creates an object is admitted; `None` for the rest.
    pub const fn admit(self) -> Option<Admit> {
        match self {
            Tenancy::Owned(admit) | Tenancy::Creates(admit) => Some(admit),
            _ => None,
        }
    }

    /// Whether a container create or rename may answer a name conflict (409) that names the
    /// container holding the name.
    pub const fn conflicts_on_container_name(self) -> bool {
        matches!(
            self,
            Tenancy::Creates(Admit::ContainerBody) | Tenancy::Owned(Admit::Renames)
        )
    }

    /// Whether the request creates, renames or removes containers (whoever sends it), which
    /// makes the container names resolved for tenants out of date.
    pub const fn changes_container_names(self) -> bool {
        matches!(
            self,
            Tenancy::Creates(Admit::ContainerBody)
                | Tenancy::Owned(Admit::Renames | Admit::FreesName)
                | Tenancy::Prunes(ObjectKind::Container)
        )
    }

    /// Its name in `sockwarden operations --json` (`Owned`, `Lists(Container)`): the kind of
    /// tenancy, without how an object is admitted or the empty answer's body.
    pub fn name(self) -> String {
        match self {
            Tenancy::Owned(_) => "Owned".into(),
            Tenancy::Creates(_) => "Creates".into(),
            Tenancy::AnsweredEmpty(_) => "AnsweredEmpty".into(),
            other => format!("{other:?}"),
        }
    }
}
