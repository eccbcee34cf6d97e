use super::*;

/// Protobuf helpers: a varint, a key, a length-delimited field.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_varint(field: u64, v: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(v, out);
}

fn field_bytes(field: u64, data: &[u8], out: &mut Vec<u8>) {
    varint((field << 3) | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn stat(path: &str, mode: u32) -> Vec<u8> {
    let mut s = Vec::new();
    field_bytes(1, path.as_bytes(), &mut s);
    field_varint(2, u64::from(mode), &mut s);
    field_varint(5, 12, &mut s); // size: skipped
    s
}

fn packet(kind: u64, stat: Option<Vec<u8>>, id: u32, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    if kind != 0 {
        field_varint(1, kind, &mut p);
    }
    if let Some(s) = stat {
        field_bytes(2, &s, &mut p);
    }
    if id != 0 {
        field_varint(3, u64::from(id), &mut p);
    }
    if !data.is_empty() {
        field_bytes(4, data, &mut p);
    }
    p
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A whole stream as fsutil sends one file: its parent dir, the file, end of walk, the file's
/// data in two packets, its end, FIN.
fn stream(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(frame(&packet(0, Some(stat("sub", 0x8000_01ed)), 0, b"")));
    out.extend(frame(&packet(
        0,
        Some(stat("sub/Dockerfile", 0o644)),
        0,
        b"",
    )));
    out.extend(frame(&packet(0, None, 0, b"")));
    let (a, b) = content.split_at(content.len() / 2);
    out.extend(frame(&packet(2, None, 1, a)));
    out.extend(frame(&packet(2, None, 1, b)));
    out.extend(frame(&packet(2, None, 1, b"")));
    out.extend(frame(&packet(3, None, 0, b"")));
    out
}

fn run(capture: &mut Capture, bytes: &[u8], split: usize) -> Result<(Vec<File>, Vec<u8>), String> {
    let (mut files, mut released) = (Vec::new(), Vec::new());
    for chunk in bytes.chunks(split.max(1)) {
        let step = capture.push(chunk)?;
        files.extend(step.files);
        for r in step.release {
            released.extend_from_slice(&r);
        }
    }
    capture.finish()?;
    Ok((files, released))
}

#[test]
fn a_file_is_read_whatever_the_chunking_and_released_byte_for_byte() {
    let content = b"FROM scratch\nADD http://127.0.0.1:1/ /x\n";
    let bytes = stream(content);
    for split in [1, 2, 3, 5, 7, 64, bytes.len()] {
        let mut c = Capture::default();
        let (files, released) = run(&mut c, &bytes, split).unwrap();
        assert_eq!(
            files,
            vec![File {
                path: "sub/Dockerfile".into(),
                data: content.to_vec()
            }],
            "split {split}"
        );
        assert_eq!(released, bytes, "split {split}");
    }
}

#[test]
fn data_is_held_until_its_file_is_complete() {
    let bytes = stream(b"FROM scratch\n");
    let mut c = Capture::default();
    // Up to and including the first DATA packet: the stats pass, the data is held.
    let stats: usize = [
        frame(&packet(0, Some(stat("sub", 0x8000_01ed)), 0, b"")).len(),
        frame(&packet(0, Some(stat("sub/Dockerfile", 0o644)), 0, b"")).len(),
        frame(&packet(0, None, 0, b"")).len(),
    ]
    .iter()
    .sum();
    let first_data = frame(&packet(2, None, 1, b"FROM s")).len();
    let step = c.push(&bytes[..stats + first_data]).unwrap();
    let released: usize = step.release.iter().map(|b| b.len()).sum();
    assert_eq!(released, stats);
    assert!(step.files.is_empty());
}

#[test]
fn compressed_and_oversized_messages_are_refused() {
    let mut f = Framer::default();
    let (out, err) = f.push(&[1, 0, 0, 0, 1, 0]);
    assert!(out.is_empty() && err.unwrap().contains("compressed"));
    let mut f = Framer::default();
    let len = (MESSAGE_LIMIT as u32 + 1).to_be_bytes();
    let (_, err) = f.push(&[0, len[0], len[1], len[2], len[3]]);
    assert!(err.unwrap().contains("limit"));
    let mut f = Framer::default();
    let (out, err) = f.push(&[0, 0, 0, 0, 9, 1, 2]);
    assert!(out.is_empty() && err.is_none());
    assert!(f.finish().is_err(), "a body ending inside a message");
}

#[test]
fn malformed_packets_are_refused() {
    // A length running past the message.
    assert!(decode_packet(Bytes::from_static(&[0x22, 0x05, 1])).is_err());
    // A cut varint.
    assert!(decode_packet(Bytes::from_static(&[0x08, 0x80])).is_err());
    // A group wire type.
    assert!(decode_packet(Bytes::from_static(&[0x0b])).is_err());
    // A repeated field.
    assert!(decode_packet(Bytes::from_static(&[0x08, 0x02, 0x08, 0x02])).is_err());
    // A field of the wrong wire type.
    assert!(decode_packet(Bytes::from_static(&[0x0a, 0x00])).is_err());
    // Unknown fields are skipped.
    let p = decode_packet(Bytes::from_static(&[0x08, 0x02, 0x78, 0x01, 0x18, 0x04])).unwrap();
    assert_eq!((p.kind, p.id), (2, 4));
}

#[test]
fn stream_errors_are_refused() {
    let data = |id| frame(&packet(2, None, id, b"x"));
    let stats = || {
        let mut out = frame(&packet(0, Some(stat("Dockerfile", 0o644)), 0, b""));
        out.extend(frame(&packet(0, Some(stat("dir", 0x8000_01ed)), 0, b"")));
        out.extend(frame(&packet(0, None, 0, b"")));
        out
    };
    // Unknown ID, a directory's data, an unknown packet type, a request from the CLI.
    for bad in [
        data(7),
        data(1),
        frame(&packet(9, None, 0, b"")),
        frame(&packet(1, None, 0, b"")),
    ] {
        let mut bytes = stats();
        bytes.extend(bad);
        assert!(run(&mut Capture::default(), &bytes, 4096).is_err());
    }
    // A stat after the walk ended.
    let mut bytes = stats();
    bytes.extend(frame(&packet(0, Some(stat("late", 0o644)), 0, b"")));
    assert!(run(&mut Capture::default(), &bytes, 4096).is_err());
    // A stream that ends inside a file.
    let mut bytes = stats();
    bytes.extend(data(0));
    assert!(run(&mut Capture::default(), &bytes, 4096).is_err());
    // A file sent twice.
    let mut bytes = stats();
    for _ in 0..2 {
        bytes.extend(data(0));
        bytes.extend(frame(&packet(2, None, 0, b"")));
    }
    assert!(run(&mut Capture::default(), &bytes, 4096).is_err());
}

#[test]
fn a_file_over_the_bound_is_refused() {
    let mut bytes = frame(&packet(0, Some(stat("Dockerfile", 0o644)), 0, b""));
    bytes.extend(frame(&packet(0, None, 0, b"")));
    let chunk = vec![b'#'; 32 * 1024];
    for _ in 0..(FILE_LIMIT / chunk.len() + 1) {
        bytes.extend(frame(&packet(2, None, 0, &chunk)));
    }
    let err = run(&mut Capture::default(), &bytes, 65536).unwrap_err();
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn after_an_error_nothing_read_is_lost() {
    let mut bytes = frame(&packet(0, Some(stat("Dockerfile", 0o644)), 0, b""));
    bytes.extend(frame(&packet(0, None, 0, b"")));
    bytes.extend(frame(&packet(9, None, 0, b"")));
    bytes.extend(frame(&packet(3, None, 0, b"")));
    bytes.extend_from_slice(&[0, 0, 0]);
    let mut c = Capture::default();
    let err = c.push(&bytes);
    assert!(err.is_err());
    let held: Vec<u8> = c.into_held().iter().flat_map(|b| b.to_vec()).collect();
    assert_eq!(held, bytes);
}

/// A file announced and not asked for is one the daemon took from a copy it kept: the stream
/// is refused at its end, whichever file it is.
#[test]
fn a_file_announced_and_not_sent_is_refused() {
    for skipped in ["Dockerfile", ".dockerignore"] {
        let mut out = Vec::new();
        out.extend(frame(&packet(0, Some(stat("Dockerfile", 0o644)), 0, b"")));
        out.extend(frame(&packet(
            0,
            Some(stat(".dockerignore", 0o644)),
            0,
            b"",
        )));
        out.extend(frame(&packet(0, None, 0, b"")));
        // IDs: Dockerfile 0, .dockerignore 1; only the other one is sent.
        let sent = if skipped == "Dockerfile" { 1 } else { 0 };
        out.extend(frame(&packet(2, None, sent, b"x")));
        out.extend(frame(&packet(2, None, sent, b"")));
        out.extend(frame(&packet(3, None, 0, b"")));
        let err = run(&mut Capture::default(), &out, 7).unwrap_err();
        assert!(
            err.contains(skipped) && err.contains("not sent"),
            "{skipped}: {err}"
        );
    }
}

#[test]
fn an_error_packet_reads_back_as_fsutil_writes_it() {
    for text in [
        "",
        "sockwarden: refused",
        &"é".repeat(200),
        &"x".repeat(40_000),
    ] {
        let message = error_message(text);
        let (messages, error) = Framer::default().push(&message);
        assert_eq!(error, None);
        assert_eq!(messages.len(), 1, "one whole message");
        assert_eq!(messages[0].len(), message.len());
        let packet = decode_packet(message.slice(5..)).unwrap();
        assert_eq!(packet.kind, 4, "ERR");
        let kept = text.len().min(16 * 1024);
        assert!(
            text.as_bytes().starts_with(&packet.data),
            "a prefix of the text"
        );
        assert!(
            packet.data.len() + 1 >= kept,
            "cut only at a character boundary"
        );
        assert!(std::str::from_utf8(&packet.data).is_ok());
    }
}
