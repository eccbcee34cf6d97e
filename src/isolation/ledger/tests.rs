use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::lookup::Lookup;

fn id(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn line(c: char, tenant: &str) -> String {
    format!(
        "{{\"id\":\"{}\",\"tenant\":\"{tenant}\",\"op\":\"image.build\"}}\n",
        id(c)
    )
}

/// A lookup through a daemon socket that does not exist (an open ledger never asks).
fn lookup() -> Lookup {
    Lookup::unreachable()
}

#[test]
fn records_parse_and_bad_lines_are_named() {
    let text = format!("{}\n{}", line('a', "uid:1"), line('b', "client:ci"));
    let parsed = parse(text.as_bytes(), "t").expect("parses");
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.tail, Tail::Whole);
    assert_eq!(parsed.records[1].tenant, "client:ci");
    for (bad, why) in [
        ("not json\n", "not a ledger record"),
        (
            "{\"id\":\"sha256:ab\",\"tenant\":\"uid:1\",\"op\":\"x\"}\n",
            "not an image ID",
        ),
        (
            "{\"id\":\"x\",\"tenant\":\"uid:1\"}\n",
            "not a ledger record",
        ),
        (
            "{\"id\":\"x\",\"tenant\":\"uid:1\",\"op\":\"x\",\"extra\":1}\n",
            "not a ledger record",
        ),
    ] {
        let text = format!("{}{bad}{}", line('a', "uid:1"), line('b', "uid:2"));
        let e = parse(text.as_bytes(), "/x/ledger").expect_err(bad).0;
        assert!(e.contains("/x/ledger line 2") && e.contains(why), "{e}");
    }
    let upper = format!(
        "{{\"id\":\"sha256:{}\",\"tenant\":\"uid:1\",\"op\":\"x\"}}\n",
        "A".repeat(64)
    );
    assert!(parse(upper.as_bytes(), "t").is_err());
    let empty_tenant = format!("{{\"id\":\"{}\",\"tenant\":\"\",\"op\":\"x\"}}\n", id('a'));
    assert!(parse(empty_tenant.as_bytes(), "t").is_err());
    assert_eq!(parse(b"", "t").expect("empty").records, vec![]);
}

#[test]
fn a_cut_short_last_line_is_dropped_and_a_whole_one_kept() {
    let first = line('a', "uid:1");
    let torn = format!("{first}{{\"id\":\"sha256:bb");
    let parsed = parse(torn.as_bytes(), "t").expect("torn tail is no error");
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.tail, Tail::Torn(first.len()));
    let unterminated = format!("{first}{}", line('b', "uid:1").trim_end());
    let parsed = parse(unterminated.as_bytes(), "t").expect("parses");
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.tail, Tail::Unterminated);
}

#[tokio::test]
async fn appended_records_are_read_back_and_corrupt_files_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state/image-owners");
    // Missing: created (0700 directory, 0600 file) with what is adopted.
    let file = create(
        &path,
        &[Record {
            id: id('a'),
            tenant: "uid:1".into(),
            op: "adopted".into(),
        }],
    )
    .expect("create");
    drop(file);
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("dir")), 0o700);
    let ledger = Arc::new(Ledger::open(&path).expect("open"));
    assert!(ledger.has(&id('a'), "uid:1"));
    assert!(ledger.has(&"a".repeat(64), "uid:1"), "without sha256:");
    assert!(!ledger.has(&id('a'), "uid:2"), "another tenant");
    assert!(!ledger.has(&id('b'), "uid:1"));
    assert!(!ledger.has("aaaa", "uid:1"), "a prefix is no ID");
    let lookup = lookup();
    adopt::record(
        &ledger,
        &lookup,
        "sockwarden.owner",
        &id('b'),
        "uid:2",
        "container.commit",
    )
    .await
    .expect("record");
    assert!(ledger.has(&id('b'), "uid:2"));
    assert!(adopt::record(
        &ledger,
        &lookup,
        "sockwarden.owner",
        "sha256:b",
        "uid:2",
        "x"
    )
    .await
    .is_err());
    // Read again (a restart): both there.
    let again = Ledger::open(&path).expect("reopen");
    assert!(again.has(&id('a'), "uid:1") && again.has(&id('b'), "uid:2"));
    assert_eq!(again.len(), 2);
    // A torn last line is dropped from the file; the next append is whole.
    let mut text = std::fs::read(&path).expect("read");
    text.extend_from_slice(b"{\"id\":\"sha2");
    std::fs::write(&path, &text).expect("write");
    let torn = Arc::new(Ledger::open(&path).expect("open torn"));
    adopt::record(&torn, &lookup, "l", &id('c'), "uid:3", "image.import")
        .await
        .expect("record");
    let reread = Ledger::open(&path).expect("reopen");
    assert!(reread.has(&id('c'), "uid:3") && reread.has(&id('b'), "uid:2"));
    // A corrupt line refuses: open fails and says where.
    let mut text = std::fs::read(&path).expect("read");
    text.extend_from_slice(b"garbage\n");
    std::fs::write(&path, &text).expect("write");
    let e = Ledger::open(&path).expect_err("corrupt").0;
    assert!(e.contains("line 4"), "{e}");
    assert!(preflight(&path).is_err());
}

#[test]
fn preflight_says_what_is_unusable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Missing under a writable directory: fine (it is created at start).
    assert_eq!(preflight(&dir.path().join("a/b/image-owners")), Ok(()));
    // A directory where the file should be.
    assert!(preflight(dir.path()).is_err());
    // Under a file.
    let file = dir.path().join("f");
    std::fs::write(&file, b"").expect("write");
    assert!(preflight(&file.join("image-owners")).is_err());
    // An empty file is an empty ledger.
    assert_eq!(preflight(&file), Ok(()));
}

#[test]
fn ids_are_image_ids() {
    assert!(is_image_id(&id('a')));
    assert!(!is_image_id(&"a".repeat(64)));
    assert!(!is_image_id(&format!("sha256:{}", "A".repeat(64))));
    assert!(!is_image_id("sha256:"));
}
