use super::*;

fn header(name: &str, typeflag: u8, size: u64, link: &str) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    let sz = format!("{size:011o}");
    h[124..135].copy_from_slice(sz.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn entry(out: &mut Vec<u8>, name: &str, typeflag: u8, data: &[u8]) {
    out.extend(header(name, typeflag, data.len() as u64, ""));
    out.extend_from_slice(data);
    out.resize(out.len() + pad_of(data.len() as u64) as usize, 0);
}

fn end(out: &mut Vec<u8>) {
    out.resize(out.len() + 1024, 0);
}

fn scan_all(bytes: &[u8], chunk: usize) -> Result<Vec<Found>, String> {
    let mut s = ContextScanner::new(vec!["Dockerfile".into(), "dockerfile".into()]);
    let mut found = Vec::new();
    for c in bytes.chunks(chunk) {
        found.extend(s.push(c)?);
    }
    found.extend(s.finish()?);
    Ok(found)
}

#[test]
fn finds_the_dockerfile_in_any_chunking() {
    let mut t = Vec::new();
    entry(&mut t, "a.txt", b'0', &vec![7u8; 3000]);
    entry(&mut t, "./Dockerfile", b'0', b"FROM x\n");
    end(&mut t);
    for chunk in [1, 7, 512, 100_000] {
        let f = scan_all(&t, chunk).unwrap();
        assert_eq!(f.len(), 1, "{chunk}");
        assert_eq!(f[0].path, "Dockerfile");
        assert_eq!(f[0].data, b"FROM x\n");
    }
}

#[test]
fn every_copy_is_read_and_nothing_after_the_end() {
    let mut t = Vec::new();
    entry(&mut t, "Dockerfile", b'0', b"FROM a\n");
    entry(&mut t, "dockerfile", b'0', b"FROM b\n");
    entry(&mut t, "/Dockerfile", b'0', b"FROM c\n");
    end(&mut t);
    entry(&mut t, "Dockerfile", b'0', b"FROM d\n");
    let f = scan_all(&t, 300).unwrap();
    let texts: Vec<_> = f.iter().map(|f| f.data.clone()).collect();
    assert_eq!(
        texts,
        vec![
            b"FROM a\n".to_vec(),
            b"FROM b\n".to_vec(),
            b"FROM c\n".to_vec()
        ]
    );
}

#[test]
fn header_only_types_carry_no_data_as_in_go() {
    // A directory whose size field says 1024: Go skips no data, so the Dockerfile header
    // follows at once. A reader that skipped 1024 bytes would miss it.
    let mut t = Vec::new();
    t.extend(header("d/", b'5', 1024, ""));
    t.extend(header("sneaky/", 0, 512, ""));
    entry(&mut t, "Dockerfile", b'0', b"FROM evil\n");
    end(&mut t);
    let f = scan_all(&t, 64).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].data, b"FROM evil\n");
}

#[test]
fn long_names_and_pax_paths_are_followed() {
    let mut t = Vec::new();
    entry(&mut t, "././@LongLink", b'L', b"Dockerfile\0");
    entry(&mut t, "innocent", b'0', b"FROM l\n");
    let rec = b"17 path=innocent\n";
    let mut pax = Vec::new();
    entry(&mut pax, "pax", b'x', rec);
    t.extend(pax);
    entry(&mut t, "x", b'0', b"ignored\n");
    let rec = b"19 path=Dockerfile\n";
    entry(&mut t, "pax", b'x', rec);
    entry(&mut t, "other", b'0', b"FROM p\n");
    end(&mut t);
    let f = scan_all(&t, 5).unwrap();
    let texts: Vec<_> = f.iter().map(|f| f.data.clone()).collect();
    assert_eq!(texts, vec![b"FROM l\n".to_vec(), b"FROM p\n".to_vec()]);
}

#[test]
fn links_and_non_directories_above_are_refused() {
    let mut t = Vec::new();
    t.extend(header("Dockerfile", b'2', 0, "other"));
    end(&mut t);
    assert!(scan_all(&t, 512).is_err());
    let mut s = ContextScanner::new(vec!["sub/Dockerfile".into()]);
    let mut t = Vec::new();
    t.extend(header("sub", b'2', 0, "elsewhere"));
    assert!(s.push(&t).is_err());
}

#[test]
fn compressed_contexts_are_read() {
    use std::io::Write as _;
    let mut t = Vec::new();
    entry(&mut t, "big", b'0', &vec![1u8; 200_000]);
    entry(&mut t, "Dockerfile", b'0', b"FROM z\n");
    end(&mut t);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    let f = scan_all(&gz, 1000).unwrap();
    assert_eq!(f.len(), 1);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&t).unwrap();
    let f = scan_all(&bz.finish().unwrap(), 999).unwrap();
    assert_eq!(f.len(), 1);
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&t).unwrap();
    let f = scan_all(&xz.finish().unwrap(), 4096).unwrap();
    assert_eq!(f.len(), 1);
}

#[test]
fn broken_headers_are_refused() {
    let mut t = header("Dockerfile", b'0', 5, "");
    t[0] = b'X';
    assert!(scan_all(&t, 512).is_err());
    let mut t = vec![0; 512];
    entry(&mut t, "Dockerfile", b'0', b"FROM q\n");
    assert!(scan_all(&t, 512).is_err());
}
