//! Answers the daemon cannot scope itself, filtered for a tenant: the image list (own images
//! plus shared base images, which a label filter cannot express) and disk usage (no filters at
//! all). Objects are judged by their owner label; an image's counts only when the image ledger
//! holds its ID for that tenant (see [`crate::isolation::ledger`]).

use std::collections::HashMap;

use serde_json::Value;

use super::owners::label;

/// Whose answer it is: the owner label key and the tenant's value.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The owner label key.
    pub owner_label: &'a str,
    /// The tenant's value of it.
    pub tenant: &'a str,
    /// Whether the image ID (first) was made by sockwarden for the tenant (second):
    /// [`crate::isolation::ledger::owned_by`] with the label's value.
    pub recorded: fn(&str, &str) -> bool,
}

impl Scope<'_> {
    /// Whether an object with these `Labels` is the tenant's.
    pub fn owns(&self, labels: Option<&Value>) -> bool {
        label(labels, self.owner_label).as_deref() == Some(self.tenant)
    }

    /// Whether an image (a list entry: `Id`, `Labels`) is the tenant's or shared (no owner).
    /// An owner label that is there but not a string is someone's, and one that names the
    /// tenant on an image the ledger does not hold for it is nobody's: not shown.
    pub fn sees_image(&self, image: &Value) -> bool {
        match image.get("Labels").and_then(|l| l.get(self.owner_label)) {
            None => true,
            Some(Value::String(owner)) => {
                owner == self.tenant
                    && image
                        .get("Id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| (self.recorded)(id, owner))
            }
            Some(_) => false,
        }
    }
}

/// `GET /images/json`: only the tenant's and shared images. An answer that is not a list is
/// replaced by an empty one.
pub fn images(document: &mut Value, scope: Scope<'_>) {
    match document {
        Value::Array(items) => items.retain(|image| scope.sees_image(image)),
        other => *other = Value::Array(Vec::new()),
    }
}

/// `GET /system/df`: only the tenant's containers and volumes, its own and shared images, and
/// no build cache (its records name no owner). The images' `Containers` counts and
/// `LayersSize` are recomputed from what is shown (`LayersSize` counts each shown image's own
/// layers once and the largest shared part once: exact when the shown images share at most
/// one base).
pub fn disk_usage(document: &mut Value, scope: Scope<'_>) {
    let Value::Object(map) = document else {
        *document = Value::Object(serde_json::Map::new());
        return;
    };
    let mut keep = |key: &str, judge: &dyn Fn(&Value) -> bool| {
        if let Some(section) = map.get_mut(key) {
            match section {
                Value::Array(items) => items.retain(|item| judge(item)),
                Value::Null => {}
                other => *other = Value::Array(Vec::new()),
            }
        }
    };
    keep("Containers", &|c| scope.owns(c.get("Labels")));
    keep("Volumes", &|v| scope.owns(v.get("Labels")));
    keep("Images", &|i| scope.sees_image(i));
    keep("BuildCache", &|_| false);
    // Each shown image's containers, among the shown containers only.
    let shown_containers = map.get("Containers").and_then(Value::as_array).map(|cs| {
        let mut uses: HashMap<String, i64> = HashMap::new();
        for c in cs {
            if let Some(id) = c.get("ImageID").and_then(Value::as_str) {
                *uses.entry(id.to_owned()).or_default() += 1;
            }
        }
        uses
    });
    let mut layers: i64 = 0;
    let mut largest_shared: i64 = 0;
    if let Some(Value::Array(images)) = map.get_mut("Images") {
        for image in images.iter_mut() {
            let size = image.get("Size").and_then(Value::as_i64).unwrap_or(0);
            let shared = image
                .get("SharedSize")
                .and_then(Value::as_i64)
                .filter(|s| *s >= 0)
                .unwrap_or(0);
            layers = layers.saturating_add(size.saturating_sub(shared).max(0));
            largest_shared = largest_shared.max(shared);
            if let (Some(uses), Some(Value::Object(fields))) = (&shown_containers, Some(image)) {
                let id = fields.get("Id").and_then(Value::as_str).unwrap_or_default();
                let count = uses.get(id).copied().unwrap_or(0);
                fields.insert("Containers".into(), Value::from(count));
            }
        }
    }
    if map.contains_key("LayersSize") {
        map.insert(
            "LayersSize".into(),
            Value::from(layers.saturating_add(largest_shared)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCOPE: Scope<'static> = Scope {
        owner_label: "sockwarden.owner",
        tenant: "uid:1001",
        recorded: |_, _| true,
    };

    #[test]
    fn images_the_ledger_does_not_hold_are_nobodys() {
        let scope = Scope {
            recorded: |id, tenant| id == "made" && tenant == "uid:1001",
            ..SCOPE
        };
        let mut list = json!([
            {"Id": "made", "Labels": {"sockwarden.owner": "uid:1001"}},
            {"Id": "forged", "Labels": {"sockwarden.owner": "uid:1001"}},
            {"Labels": {"sockwarden.owner": "uid:1001"}},
            {"Id": "shared", "Labels": {}},
        ]);
        images(&mut list, scope);
        assert_eq!(
            list,
            json!([
                {"Id": "made", "Labels": {"sockwarden.owner": "uid:1001"}},
                {"Id": "shared", "Labels": {}},
            ])
        );
        let mut df = json!({"Images": [
            {"Id": "forged", "Size": 1, "Labels": {"sockwarden.owner": "uid:1001"}},
            {"Id": "made", "Size": 1, "Labels": {"sockwarden.owner": "uid:1001"}},
        ]});
        disk_usage(&mut df, scope);
        assert_eq!(df["Images"].as_array().map(Vec::len), Some(1));
        assert_eq!(df["Images"][0]["Id"], "made");
    }

    #[test]
    fn image_list_keeps_own_and_shared_only() {
        let mut list = json!([
            {"Id": "mine", "Labels": {"sockwarden.owner": "uid:1001", "x": "1"}},
            {"Id": "theirs", "Labels": {"sockwarden.owner": "uid:1002"}},
            {"Id": "shared", "Labels": {"x": "1"}},
            {"Id": "shared-null", "Labels": null},
            {"Id": "shared-none"},
            {"Id": "odd", "Labels": {"sockwarden.owner": 1001}},
            {"Id": "prefix", "Labels": {"sockwarden.owner": "uid:10010"}},
            {"Id": "case", "Labels": {"Sockwarden.Owner": "uid:1002", "sockwarden.owner": "uid:1002"}},
        ]);
        images(&mut list, SCOPE);
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["Id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["mine", "shared", "shared-null", "shared-none"]);
        let mut odd = json!({"message": "x"});
        images(&mut odd, SCOPE);
        assert_eq!(odd, json!([]));
    }

    #[test]
    fn disk_usage_shows_the_tenant_and_consistent_totals() {
        let own = json!({"sockwarden.owner": "uid:1001"});
        let other = json!({"sockwarden.owner": "uid:1002"});
        let mut df = json!({
            "LayersSize": 999_999,
            "Images": [
                {"Id": "base", "Size": 100, "SharedSize": 100, "Containers": 7, "Labels": {}},
                {"Id": "mine", "Size": 130, "SharedSize": 100, "Containers": 3, "Labels": own},
                {"Id": "theirs", "Size": 500, "SharedSize": 100, "Containers": 4, "Labels": other},
            ],
            "Containers": [
                {"Id": "c1", "ImageID": "mine", "Labels": own},
                {"Id": "c2", "ImageID": "base", "Labels": other},
                {"Id": "c3", "ImageID": "base", "Labels": {}},
                {"Id": "c4", "ImageID": "base", "Labels": own},
            ],
            "Volumes": [
                {"Name": "v1", "Labels": own},
                {"Name": "v2", "Labels": other},
                {"Name": "v3", "Labels": null},
            ],
            "BuildCache": [{"ID": "b1"}],
        });
        disk_usage(&mut df, SCOPE);
        let names = |key: &str, field: &str| -> Vec<String> {
            df[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o[field].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("Images", "Id"), ["base", "mine"]);
        assert_eq!(names("Containers", "Id"), ["c1", "c4"]);
        assert_eq!(names("Volumes", "Name"), ["v1"]);
        assert_eq!(df["BuildCache"], json!([]));
        assert_eq!(df["Images"][0]["Containers"], 1);
        assert_eq!(df["Images"][1]["Containers"], 1);
        // base's 100 once, mine's own 30.
        assert_eq!(df["LayersSize"], 130);
        // Sections the daemon left out (API 1.42 `type=`) stay out; null stays null.
        let mut partial = json!({"Volumes": null, "Images": [{"Id": "theirs", "Labels": other}]});
        disk_usage(&mut partial, SCOPE);
        assert_eq!(partial, json!({"Volumes": null, "Images": []}));
    }
}
