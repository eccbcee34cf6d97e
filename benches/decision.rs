//! Cost of deciding one request: normalization, classification and the policy decision
//! (route-only rules), and the same plus inspection of a 16 KiB container-create body.
//! Targets (issue 3): under 20 µs and under 100 µs median.
//!
//!     cargo bench --bench decision

#![allow(clippy::expect_used)] // a benchmark with a broken setup should stop loudly

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method, Uri};
use sockwarden::config::Config;
use sockwarden::inspect::layer::check_request;
use sockwarden::policy::layer::authorize;

const CONFIG: &str = r#"
[[client]]
name = "ci"
policy = "ci"
[[listen]]
unix = "/tmp/sockwarden-bench.sock"
client = "ci"
"#;

fn decide(c: &mut Criterion) {
    let config = Config::parse(CONFIG, "bench").expect("bench config");
    let authority = config.authority.clone();
    let client: Arc<str> = Arc::from("ci");
    let headers = HeaderMap::new();
    let list: Uri = "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
        .parse()
        .expect("uri");
    c.bench_function("route-only decision (GET /containers/json)", |b| {
        b.iter(|| {
            let authorized = authorize(
                &authority,
                Some(client.clone()),
                &Method::GET,
                black_box(&list),
                &headers,
            );
            black_box(authorized.is_ok())
        })
    });
    let create: Uri = "/v1.41/containers/create?name=bench".parse().expect("uri");
    let body = sockwarden::inspect::samples::large_create_body(16 * 1024);
    c.bench_function("decision + inspection of a 16 KiB container create", |b| {
        b.iter(|| {
            let authorized = authorize(
                &authority,
                Some(client.clone()),
                &Method::POST,
                black_box(&create),
                &headers,
            )
            .expect("allowed");
            black_box(check_request(&authorized, black_box(&body)).is_ok())
        })
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
