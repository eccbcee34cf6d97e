//! Body inspection on arbitrary bytes: the Go-compatible JSON reader and every inspector must
//! never panic, whatever the input; the first byte picks the inspector.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockwarden::inspect::{
    self, BuildRules, ContainerRules, ExecRules, NetworkRules, PluginRules, VolumeRules,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let query = vec![("name".to_owned(), "fuzz".to_owned())];
    let none: Vec<(String, String)> = Vec::new();
    let plugin = vec![("remote".to_owned(), "vieux/sshfs:latest".to_owned())];
    match selector % 9 {
        0 => drop(inspect::container_create(body, &query, &ContainerRules::default())),
        1 => drop(inspect::container_update(body, &ContainerRules::default())),
        2 => drop(inspect::exec_create(body, &ExecRules::default())),
        3 => drop(inspect::volume_create(body, &VolumeRules::default())),
        4 => drop(inspect::network_create(body, &NetworkRules::default())),
        5 => drop(inspect::service_create(body, &none, &ContainerRules::default())),
        6 => drop(inspect::service_update(body, &none, &ContainerRules::default())),
        7 => drop(inspect::plugin_pull(body, &plugin, &PluginRules::default())),
        _ => {
            let text = String::from_utf8_lossy(body);
            let pairs: Vec<(String, String)> = text
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            drop(inspect::build_query(&pairs, &BuildRules::default()));
        }
    }
});
