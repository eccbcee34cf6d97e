//! The kinds of object the daemon keeps, as routes name them and operations create them.

/// The kind of object a route's path variable names, or an operation creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A container (name, `/name`, ID or ID prefix).
    Container,
    /// An exec instance (its ID).
    Exec,
    /// An image (reference or ID).
    Image,
    /// A volume.
    Volume,
    /// A network.
    Network,
    /// A swarm service.
    Service,
    /// A swarm node.
    Node,
    /// A swarm task.
    Task,
    /// A swarm secret.
    Secret,
    /// A swarm config.
    Config,
    /// A plugin.
    Plugin,
}

impl ObjectKind {
    /// The name the audit log uses for the kind (`container`, `image`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Container => "container",
            ObjectKind::Exec => "exec",
            ObjectKind::Image => "image",
            ObjectKind::Volume => "volume",
            ObjectKind::Network => "network",
            ObjectKind::Service => "service",
            ObjectKind::Node => "node",
            ObjectKind::Task => "task",
            ObjectKind::Secret => "secret",
            ObjectKind::Config => "config",
            ObjectKind::Plugin => "plugin",
        }
    }
}
