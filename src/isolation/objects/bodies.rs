//! The create bodies isolation rewrites (container, volume and network create, network
//! connect and disconnect): the owner label written in, forged ones refused, the objects a
//! body refers to held to the tenant's, implicit volumes created owned, quotas counted.

use super::*;

fn parse_top(isolating: &Isolating, bytes: &[u8]) -> Result<Members, ProxyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Members(Vec::new()));
    }
    Members::parse_struct(bytes, "the body").map_err(|p| json_refusal(isolating, p))
}

fn owner_labelled(isolating: &Isolating, top: &mut Members) -> Result<(), ProxyError> {
    let labels = json::with_owner(
        top.get("Labels"),
        "Labels",
        &isolating.owner_label,
        isolating.tenant.label_value(),
    )
    .map_err(|p| json_refusal(isolating, p))?;
    top.set("Labels", labels);
    Ok(())
}

/// `docker volume create`: labelled, within the quota.
pub(super) async fn volume_create(
    isolating: &Isolating,
    bytes: &[u8],
) -> Result<Vec<u8>, ProxyError> {
    let mut top = parse_top(isolating, bytes)?;
    owner_labelled(isolating, &mut top)?;
    let name = json::string(top.get("Name"), "Name").map_err(|p| json_refusal(isolating, p))?;
    // Creating a volume that exists answers the existing one: it must be the tenant's.
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        match owners(isolating).volume(&name).await.map_err(unchecked)? {
            VolumeOwner::Own => return top.to_vec().map_err(|p| json_refusal(isolating, p)),
            VolumeOwner::NotOwn => {
                return Err(isolating.refuse(Isolated::Held {
                    kind: ObjectKind::Volume,
                    name,
                }))
            }
            VolumeOwner::Missing => {}
        }
    }
    volume_quota(isolating, 1).await?;
    top.to_vec().map_err(|p| json_refusal(isolating, p))
}

async fn volume_quota(isolating: &Isolating, adding: u64) -> Result<(), ProxyError> {
    if adding == 0 {
        return Ok(());
    }
    let Some(limit) = isolating.authorized.policy.max_volumes else {
        return Ok(());
    };
    let have = owners(isolating).count_volumes().await.map_err(unchecked)?;
    if have + adding > limit {
        return Err(isolating.refuse(Isolated::Quota {
            kind: ObjectKind::Volume,
            limit,
        }));
    }
    Ok(())
}

/// `docker network create`: labelled; a network configured from another must be the
/// tenant's.
pub(super) async fn network_create(
    isolating: &Isolating,
    bytes: &[u8],
) -> Result<Vec<u8>, ProxyError> {
    let mut top = parse_top(isolating, bytes)?;
    owner_labelled(isolating, &mut top)?;
    let from = top
        .child("ConfigFrom", "ConfigFrom")
        .map_err(|p| json_refusal(isolating, p))?;
    if let Some(network) = json::string(from.get("Network"), "ConfigFrom.Network")
        .map_err(|p| json_refusal(isolating, p))?
    {
        if !network.is_empty() {
            let id = own_network(isolating, &network).await?;
            let mut from = from;
            from.set(
                "Network",
                json::to_raw(&id).map_err(|p| json_refusal(isolating, p))?,
            );
            top.set_object("ConfigFrom", &from)
                .map_err(|p| json_refusal(isolating, p))?;
        }
    }
    top.to_vec().map_err(|p| json_refusal(isolating, p))
}

/// `docker network connect/disconnect`: the network (path) and the container (body) must both
/// be the tenant's; both are addressed by full ID.
pub(super) async fn network_connect(
    isolating: &Isolating,
    parts: &mut http::request::Parts,
    bytes: &[u8],
) -> Result<Vec<u8>, ProxyError> {
    let network = isolating
        .authorized
        .operation
        .object
        .clone()
        .unwrap_or_default();
    let network_id = own_network(isolating, &network).await?;
    let mut top = parse_top(isolating, bytes)?;
    let container =
        json::string(top.get("Container"), "Container").map_err(|p| json_refusal(isolating, p))?;
    let container_id = own_container(isolating, container.as_deref().unwrap_or("")).await?;
    top.set(
        "Container",
        json::to_raw(&container_id).map_err(|p| json_refusal(isolating, p))?,
    );
    if isolating.authorized.operation.info.tenancy.admit() == Some(Admit::ConnectsNetwork) {
        parts.extensions.insert(PinnedNetworks {
            connect: Some(network_id.clone()),
            ..PinnedNetworks::default()
        });
    }
    readdress(parts, "/networks/", &network, &network_id)?;
    top.to_vec().map_err(|p| json_refusal(isolating, p))
}

/// A named volume a container create uses, and how it would be created.
#[derive(Clone)]
struct VolumeUse {
    name: String,
    labels: Vec<(String, String)>,
    /// The mount sets a driver or its options (sockwarden creates plain local volumes only).
    configured: bool,
}

/// `docker create`/`run`: labelled; its image must not be another tenant's; the containers,
/// volumes and networks it refers to must be the tenant's (containers re-addressed by full ID);
/// named volumes the daemon would create are created first, owned; quotas.
pub(super) async fn container_create(
    isolating: &Isolating,
    parts: &mut http::request::Parts,
    bytes: &[u8],
) -> Result<Vec<u8>, ProxyError> {
    let bad = |p: JsonProblem| json_refusal(isolating, p);
    let mut top = parse_top(isolating, bytes)?;
    owner_labelled(isolating, &mut top)?;
    if let Some(image) = json::string(top.get("Image"), "Image").map_err(bad)? {
        if !image.is_empty() {
            readable_image(isolating, &image).await?;
        }
    }
    let mut host = top.child("HostConfig", "HostConfig").map_err(bad)?;
    // The tenant's networks it names, pinned to their full IDs after inspection.
    let mut pins = PinnedNetworks::default();
    let host_changed = pin_joined(isolating, &mut host, &mut pins).await?;
    pin_endpoints(isolating, &mut top, &mut pins).await?;
    let to_create = volumes_to_create(isolating, &named_volumes(isolating, &host)?).await?;

    // Quotas, then the volumes.
    if let Some(limit) = isolating.authorized.policy.max_containers {
        let have = owners(isolating)
            .own_containers()
            .await
            .map_err(unchecked)?
            .len() as u64;
        if have >= limit {
            return Err(isolating.refuse(Isolated::Quota {
                kind: ObjectKind::Container,
                limit,
            }));
        }
    }
    volume_quota(isolating, to_create.len() as u64).await?;
    for volume in to_create {
        create_volume(isolating, &volume).await?;
    }

    if host_changed {
        top.set_object("HostConfig", &host).map_err(bad)?;
    }
    if pins.mode.is_some() || !pins.endpoints.is_empty() {
        parts.extensions.insert(pins);
    }
    top.to_vec().map_err(bad)
}

/// The containers a create's `HostConfig` joins or reads from (`VolumesFrom`, `Links`,
/// `container:X` modes) held to the tenant's and rewritten to their full IDs; a
/// `NetworkMode` naming a network is pinned. Whether `host` changed.
async fn pin_joined(
    isolating: &Isolating,
    host: &mut Members,
    pins: &mut PinnedNetworks,
) -> Result<bool, ProxyError> {
    let bad = |p: JsonProblem| json_refusal(isolating, p);
    let mut changed = false;
    let volumes_from =
        json::strings(host.get("VolumesFrom"), "HostConfig.VolumesFrom").map_err(bad)?;
    if !volumes_from.is_empty() {
        let mut rewritten = Vec::with_capacity(volumes_from.len());
        for spec in &volumes_from {
            let (name, mode) = match spec.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (spec.as_str(), None),
            };
            let id = own_container(isolating, name).await?;
            rewritten.push(match mode {
                Some(m) => format!("{id}:{m}"),
                None => id,
            });
        }
        host.set("VolumesFrom", json::to_raw(&rewritten).map_err(bad)?);
        changed = true;
    }
    let links = json::strings(host.get("Links"), "HostConfig.Links").map_err(bad)?;
    if !links.is_empty() {
        host.set(
            "Links",
            json::to_raw(&own_links(isolating, &links).await?).map_err(bad)?,
        );
        changed = true;
    }
    for field in [
        "NetworkMode",
        "PidMode",
        "IpcMode",
        "Cgroup",
        "UTSMode",
        "UsernsMode",
    ] {
        let what = format!("HostConfig.{field}");
        let Some(mode) = json::string(host.get(field), &what).map_err(bad)? else {
            continue;
        };
        if let Some(name) = mode.strip_prefix("container:") {
            let id = own_container(isolating, name).await?;
            host.set(
                field,
                json::to_raw(&format!("container:{id}")).map_err(bad)?,
            );
            changed = true;
        } else if field == "NetworkMode"
            && !mode.is_empty()
            && !SHARED_NETWORKS.contains(&mode.as_str())
        {
            // Forwarded as the full ID once inspected (see [`PinnedNetworks`]).
            let id = own_network(isolating, &mode).await?;
            pins.mode = Some((mode.clone(), id));
        }
    }
    Ok(changed)
}

/// Links (`name:alias`) to the tenant's containers, as `full-id:alias`.
async fn own_links(isolating: &Isolating, links: &[String]) -> Result<Vec<String>, ProxyError> {
    let mut ids = Vec::with_capacity(links.len());
    for link in links {
        let (name, alias) = link_parts(link);
        let id = own_container(isolating, &name).await?;
        ids.push(format!("{id}:{alias}"));
    }
    Ok(ids)
}

/// The networks a create joins (`NetworkingConfig.EndpointsConfig`) held to the tenant's and
/// pinned, and the containers linked there rewritten to their full IDs.
async fn pin_endpoints(
    isolating: &Isolating,
    top: &mut Members,
    pins: &mut PinnedNetworks,
) -> Result<(), ProxyError> {
    let bad = |p: JsonProblem| json_refusal(isolating, p);
    let mut networking = top
        .child("NetworkingConfig", "NetworkingConfig")
        .map_err(bad)?;
    let endpoints = match networking.get("EndpointsConfig") {
        Some(raw) if raw.get().trim() != "null" => {
            let map: Members = serde_json::from_str(raw.get()).map_err(|_| {
                bad(JsonProblem::Invalid(
                    "NetworkingConfig.EndpointsConfig is not an object".into(),
                ))
            })?;
            Some(map)
        }
        _ => None,
    };
    let mut links_changed = false;
    let mut rewritten = Members(Vec::new());
    for (network, settings) in endpoints.map(|m| m.0).unwrap_or_default() {
        let what = format!("EndpointsConfig.{network}");
        // A Go map keeps the last of two equal keys; each is checked, and none is given twice.
        if rewritten.0.iter().any(|(k, _)| *k == network) {
            return Err(bad(JsonProblem::Ambiguous(format!(
                "NetworkingConfig.EndpointsConfig: {network:?} is given twice"
            ))));
        }
        if !SHARED_NETWORKS.contains(&network.as_str()) {
            let id = own_network(isolating, &network).await?;
            pins.endpoints.push((network.clone(), id));
        }
        if settings.get().trim() == "null" {
            rewritten.0.push((network, settings));
            continue;
        }
        let mut members = Members::parse_struct(settings.get().as_bytes(), &what).map_err(bad)?;
        let links = json::strings(members.get("Links"), &what).map_err(bad)?;
        if links.is_empty() {
            rewritten.0.push((network, settings));
            continue;
        }
        members.set(
            "Links",
            json::to_raw(&own_links(isolating, &links).await?).map_err(bad)?,
        );
        links_changed = true;
        rewritten
            .0
            .push((network, json::to_raw(&members).map_err(bad)?));
    }
    if links_changed {
        networking
            .set_object("EndpointsConfig", &rewritten)
            .map_err(bad)?;
        top.set_object("NetworkingConfig", &networking)
            .map_err(bad)?;
    }
    Ok(())
}

/// The named volumes a create's `Binds` and `Mounts` use; a mount's own owner label is
/// refused.
fn named_volumes(isolating: &Isolating, host: &Members) -> Result<Vec<VolumeUse>, ProxyError> {
    let bad = |p: JsonProblem| json_refusal(isolating, p);
    let mut uses: Vec<VolumeUse> = Vec::new();
    let driver = json::string(host.get("VolumeDriver"), "HostConfig.VolumeDriver").map_err(bad)?;
    let custom_driver = driver
        .as_deref()
        .is_some_and(|d| !d.is_empty() && d != "local");
    for bind in json::strings(host.get("Binds"), "HostConfig.Binds").map_err(bad)? {
        let mut fields = bind.split(':');
        let (Some(source), Some(_)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !source.is_empty() && !source.starts_with('/') {
            uses.push(VolumeUse {
                name: source.to_owned(),
                labels: Vec::new(),
                configured: custom_driver,
            });
        }
    }
    for (i, mount) in json::objects(host.get("Mounts"), "HostConfig.Mounts")
        .map_err(bad)?
        .iter()
        .enumerate()
    {
        let what = format!("HostConfig.Mounts[{i}]");
        if json::string(mount.get("Type"), &what)
            .map_err(bad)?
            .as_deref()
            != Some("volume")
        {
            continue;
        }
        let options = mount.child("VolumeOptions", &what).map_err(bad)?;
        let labels_what = format!("{what}.VolumeOptions.Labels");
        let labels = json::string_map(options.get("Labels"), &labels_what).map_err(bad)?;
        if labels.iter().any(|(k, _)| **k == *isolating.owner_label) {
            return Err(isolating.refuse(Isolated::ForgedOwner { field: labels_what }));
        }
        let source = json::string(mount.get("Source"), &what)
            .map_err(bad)?
            .unwrap_or_default();
        if source.is_empty() {
            continue;
        }
        let configured = options
            .get("DriverConfig")
            .is_some_and(|d| d.get().trim() != "null")
            || custom_driver;
        uses.push(VolumeUse {
            name: source,
            labels,
            configured,
        });
    }
    Ok(uses)
}

/// Of the named volumes a create uses, those the daemon would create implicitly (sockwarden
/// creates them first, owned); another tenant's is refused, and so is a missing one the mount
/// configures (a driver or options sockwarden does not create).
async fn volumes_to_create(
    isolating: &Isolating,
    uses: &[VolumeUse],
) -> Result<Vec<VolumeUse>, ProxyError> {
    let mut to_create: Vec<VolumeUse> = Vec::new();
    for volume in uses {
        if to_create.iter().any(|v| v.name == volume.name) {
            continue;
        }
        match owners(isolating)
            .volume(&volume.name)
            .await
            .map_err(unchecked)?
        {
            VolumeOwner::Own => {}
            VolumeOwner::NotOwn => {
                return Err(isolating.refuse(Isolated::Held {
                    kind: ObjectKind::Volume,
                    name: volume.name.clone(),
                }))
            }
            VolumeOwner::Missing if volume.configured => {
                return Err(isolating.refuse(Isolated::ImplicitVolume {
                    name: volume.name.clone(),
                }))
            }
            VolumeOwner::Missing => to_create.push(volume.clone()),
        }
    }
    Ok(to_create)
}

/// A link's container and alias (`name`, `name:alias`, `/name:/self/alias`), as the daemon
/// reads it.
pub(super) fn link_parts(link: &str) -> (String, String) {
    match link.split_once(':') {
        None => (
            link.trim_start_matches('/').to_owned(),
            link.trim_start_matches('/').to_owned(),
        ),
        Some((name, alias)) => (
            name.trim_start_matches('/').to_owned(),
            alias.rsplit('/').next().unwrap_or(alias).to_owned(),
        ),
    }
}

/// Creates the tenant's volume `volume` on the daemon (plain `local`, labelled), as the
/// container create would have created it unowned.
async fn create_volume(isolating: &Isolating, volume: &VolumeUse) -> Result<(), ProxyError> {
    let mut labels = serde_json::Map::new();
    for (k, v) in &volume.labels {
        labels.insert(k.clone(), Value::String(v.clone()));
    }
    labels.insert(
        isolating.owner_label.to_string(),
        Value::String(isolating.tenant.label_value().to_owned()),
    );
    let body = serde_json::json!({ "Name": volume.name, "Labels": labels });
    let (status, answer) = isolating
        .lookup
        .post_json("/volumes/create", body.to_string().into_bytes())
        .await
        .map_err(unchecked)?;
    if !status.is_success() {
        let message = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        return Err(ProxyError::BadUpstream(format!(
            "isolation could not create volume {} for the container: {status} {message}",
            volume.name
        )));
    }
    // A volume of that name made in the meantime is answered as it is: it must be ours.
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    let owner =
        crate::isolation::owners::owner_label_value(answer.get("Labels"), &isolating.owner_label);
    if owner.as_deref() != Some(isolating.tenant.label_value()) {
        return Err(isolating.refuse(Isolated::Held {
            kind: ObjectKind::Volume,
            name: volume.name.clone(),
        }));
    }
    Ok(())
}

/// The tenant's networks a container create or a network connect names, pinned to their full
/// IDs once the body is inspected (the inspector judges the names the client gave against the
/// policy's `networks`; the daemon gets the IDs): each `EndpointsConfig` key becomes the
/// network's ID (an endpoint is added for a `HostConfig.NetworkMode` network when none is
/// given), and each endpoint's `NetworkID` is set to it, which the daemon prefers to the name
/// when it connects the container (at the connect, or at a stopped container's start; the
/// daemon stores the endpoint under the network's name, so `docker inspect` and `docker ps`
/// show names). A name another network takes in the meantime (the daemon allows two networks
/// of one name when asked) is not what the daemon connects.
#[derive(Debug, Clone, Default)]
pub struct PinnedNetworks {
    /// `HostConfig.NetworkMode`: the name given and the network's ID.
    mode: Option<(String, String)>,
    /// `NetworkingConfig.EndpointsConfig` keys given and their networks' IDs.
    endpoints: Vec<(String, String)>,
    /// `network.connect`: the network's ID (the path is already addressed by it).
    connect: Option<String>,
}

impl PinnedNetworks {
    /// The inspected body of a request admitted as `admit` with the networks pinned to their
    /// IDs.
    pub fn apply(&self, admit: Option<Admit>, bytes: &[u8]) -> Result<Vec<u8>, JsonProblem> {
        let mut top = Members::parse_struct(bytes, "the body")?;
        if admit == Some(Admit::ConnectsNetwork) {
            if let Some(id) = &self.connect {
                let mut endpoint = top.child("EndpointConfig", "EndpointConfig")?;
                endpoint.set("NetworkID", json::to_raw(id)?);
                top.set_object("EndpointConfig", &endpoint)?;
            }
            return top.to_vec();
        }
        if admit != Some(Admit::ContainerBody) {
            return top.to_vec();
        }
        if let Some((name, _)) = &self.mode {
            // `NetworkMode` keeps the name the policy judged (a stored ID would fail the
            // check of the stored configuration when the container is reached later); the
            // endpoint carries the ID, which is what the daemon connects.
            let host = top.child("HostConfig", "HostConfig")?;
            let mode = json::string(host.get("NetworkMode"), "HostConfig.NetworkMode")?;
            if mode.as_deref() != Some(name.as_str()) {
                return Err(JsonProblem::Invalid(
                    "HostConfig.NetworkMode changed after it was checked".into(),
                ));
            }
        }
        let mut networking = top.child("NetworkingConfig", "NetworkingConfig")?;
        let given: Members = match networking.get("EndpointsConfig") {
            Some(raw) if raw.get().trim() != "null" => {
                serde_json::from_str(raw.get()).map_err(|_| {
                    JsonProblem::Invalid("NetworkingConfig.EndpointsConfig is not an object".into())
                })?
            }
            _ => Members(Vec::new()),
        };
        let mut pinned = Members(Vec::new());
        for (network, settings) in given.0 {
            let Some((_, id)) = self.endpoints.iter().find(|(n, _)| *n == network) else {
                // The daemon's own networks (by name, as it connects them).
                pinned.0.push((network, settings));
                continue;
            };
            let mut members = if settings.get().trim() == "null" {
                Members(Vec::new())
            } else {
                Members::parse_struct(settings.get().as_bytes(), "EndpointSettings")?
            };
            members.set("NetworkID", json::to_raw(id)?);
            pinned.0.push((id.clone(), json::to_raw(&members)?));
        }
        if pinned.is_empty() {
            if let Some((_, id)) = &self.mode {
                let endpoint = serde_json::json!({ "NetworkID": id });
                pinned.0.push((id.clone(), json::to_raw(&endpoint)?));
            }
        }
        if !pinned.is_empty() {
            networking.set_object("EndpointsConfig", &pinned)?;
            top.set_object("NetworkingConfig", &networking)?;
        }
        top.to_vec()
    }
}
