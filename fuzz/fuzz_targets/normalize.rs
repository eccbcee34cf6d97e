//! Request-target normalization and classification on arbitrary bytes: must never panic, and
//! whatever it accepts must be a clean path that normalizes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockwarden::route;

fuzz_target!(|data: &[u8]| {
    let methods = [
        http::Method::GET,
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
        http::Method::HEAD,
    ];
    let method = &methods[data.first().copied().unwrap_or(0) as usize % methods.len()];
    let Ok(uri) = http::Uri::try_from(data.get(1..).unwrap_or_default()) else {
        return;
    };
    let Ok(normalized) = route::normalize(method, &uri) else {
        return;
    };
    // An accepted path is clean: no empty or dot segments survive.
    assert!(normalized.path.starts_with('/'));
    assert!(!normalized.path.contains("//"));
    assert!(!normalized.path.split('/').any(|s| s == "." || s == ".."));
    let operation = route::classify(method, &normalized.path, &normalized.query);
    assert!(route::operation_info(operation.name).is_some() || operation.name == "unknown");
});
