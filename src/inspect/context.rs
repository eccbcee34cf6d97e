//! A classic build's context (the `POST /build` body), read as it streams: decompressed as the
//! daemon's `archive.DecompressStream` does (gzip, bzip2, xz, or plain), its tar entries read
//! as Go's `archive/tar` `Reader.Next` reads them, and the Dockerfile's bytes handed back
//! when complete. Memory stays flat: only tar headers, PAX/GNU long-name records and the
//! Dockerfile candidates (each up to [`DOCKERFILE_LIMIT`]) are kept.
//!
//! Push model: the caller feeds each chunk before forwarding it ([`ContextScanner::push`]), so
//! a verdict on a Dockerfile is reached before the daemon has the bytes that complete it.
//!
//! Why tar is read here rather than with a crate: the `tar` crates pull from a `Read`, and
//! they differ from Go's reader where it matters for smuggling (Go skips no data for link,
//! directory, device and FIFO entries whatever their size field says, and turns a `'\0'`
//! entry whose name ends in `/` into a data-less directory; a GNU long name wins over a PAX
//! `path`). Anything this reader does not follow exactly (sparse files, a broken header or
//! compressed stream) is refused: the daemon would fail on most of it, and refusing the rest
//! never lets a Dockerfile through unread.

use std::io::{self, Write};

use super::dockerfile::DOCKERFILE_LIMIT;

/// Largest PAX or GNU long-name record (Go's `maxSpecialFileSize`).
const SPECIAL_LIMIT: u64 = 1 << 20;

/// A Dockerfile candidate, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path in the context, cleaned (`Dockerfile`, `sub/Dockerfile`).
    pub path: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Reads a build context as it streams (see the module documentation).
pub struct ContextScanner {
    decode: Decode,
    failed: Option<String>,
}

enum Decode {
    Sniff(Vec<u8>, Box<TarScanner>),
    Plain(Box<TarScanner>),
    Gzip(Box<flate2::write::MultiGzDecoder<TarScanner>>),
    Bzip2(Box<bzip2::write::BzDecoder<TarScanner>>),
    Xz(Box<xz2::write::XzDecoder<TarScanner>>),
    Gone,
}

impl std::fmt::Debug for ContextScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextScanner").finish_non_exhaustive()
    }
}

impl ContextScanner {
    /// A scanner for the Dockerfile paths `candidates` (cleaned, relative).
    pub fn new(candidates: Vec<String>) -> ContextScanner {
        ContextScanner {
            decode: Decode::Sniff(Vec::new(), Box::new(TarScanner::new(candidates))),
            failed: None,
        }
    }

    /// Reads one more chunk of the (compressed) context; returns the Dockerfile candidates it
    /// completed. An error is final: the context cannot be read as the daemon reads it.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Found>, String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.push_inner(chunk);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn push_inner(&mut self, chunk: &[u8]) -> Result<Vec<Found>, String> {
        if let Decode::Sniff(buf, _) = &mut self.decode {
            buf.extend_from_slice(chunk);
            if buf.len() < 6 {
                return Ok(Vec::new());
            }
            let head = std::mem::take(buf);
            self.start(&head);
            return self.feed(&head);
        }
        self.feed(chunk)
    }

    /// `DetectCompression` on the first bytes.
    fn start(&mut self, head: &[u8]) {
        let Decode::Sniff(_, tar) = std::mem::replace(&mut self.decode, Decode::Gone) else {
            return;
        };
        self.decode = if head.starts_with(&[0x42, 0x5a, 0x68]) {
            Decode::Bzip2(Box::new(bzip2::write::BzDecoder::new(*tar)))
        } else if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Decode::Gzip(Box::new(flate2::write::MultiGzDecoder::new(*tar)))
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Decode::Xz(Box::new(xz2::write::XzDecoder::new_multi_decoder(*tar)))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            // zstd: newer daemons read it; sockwarden cannot.
            Decode::Gone
        } else {
            Decode::Plain(tar)
        };
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Found>, String> {
        let io = |e: io::Error| format!("the build context cannot be read: {e}");
        match &mut self.decode {
            Decode::Sniff(..) => Ok(Vec::new()),
            Decode::Plain(tar) => {
                tar.write_all(chunk).map_err(io)?;
                Ok(tar.take_found())
            }
            Decode::Gzip(d) => {
                d.write_all(chunk).map_err(io)?;
                d.flush().map_err(io)?;
                Ok(d.get_mut().take_found())
            }
            Decode::Bzip2(d) => {
                d.write_all(chunk).map_err(io)?;
                // Everything the bytes so far decode to, not only what fit the buffer.
                loop {
                    let before = d.total_out();
                    d.write(&[]).map_err(io)?;
                    d.flush().map_err(io)?;
                    if d.total_out() == before {
                        break;
                    }
                }
                Ok(d.get_mut().take_found())
            }
            Decode::Xz(d) => {
                d.write_all(chunk).map_err(io)?;
                loop {
                    let before = d.total_out();
                    d.write(&[]).map_err(io)?;
                    d.flush().map_err(io)?;
                    if d.total_out() == before {
                        break;
                    }
                }
                Ok(d.get_mut().take_found())
            }
            Decode::Gone => Err(
                "the build context is compressed in a format sockwarden cannot \
                 read (zstd); send it uncompressed or gzip-compressed"
                    .into(),
            ),
        }
    }

    /// The end of the body: reads what a short body left undecided.
    pub fn finish(&mut self) -> Result<Vec<Found>, String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Decode::Sniff(buf, _) = &mut self.decode {
            let head = std::mem::take(buf);
            self.start(&head);
            return self.feed(&head);
        }
        Ok(Vec::new())
    }
}

/// Go's `archive/tar` reader, pushed into: entries, PAX and GNU records, Dockerfile capture.
struct TarScanner {
    candidates: Vec<String>,
    block: Vec<u8>,
    state: TarState,
    pax: Vec<(String, String)>,
    long_name: Option<String>,
    found: Vec<Found>,
    zero_seen: bool,
}

enum TarState {
    Header,
    /// Skipping `left` bytes (data and padding) of an entry nobody reads.
    Skip {
        left: u64,
    },
    /// Reading a PAX (`x`/`g`) or GNU long name (`L`/`K`) record of `size` bytes.
    Special {
        kind: u8,
        size: u64,
        pad: u64,
        data: Vec<u8>,
    },
    /// Reading a Dockerfile candidate.
    Capture {
        path: String,
        size: u64,
        pad: u64,
        data: Vec<u8>,
    },
    /// After the end-of-archive marker: the daemon reads no further.
    End,
}

fn pad_of(size: u64) -> u64 {
    (512 - size % 512) % 512
}

impl TarScanner {
    fn new(candidates: Vec<String>) -> TarScanner {
        TarScanner {
            candidates,
            block: Vec::with_capacity(512),
            state: TarState::Header,
            pax: Vec::new(),
            long_name: None,
            found: Vec::new(),
            zero_seen: false,
        }
    }

    fn take_found(&mut self) -> Vec<Found> {
        std::mem::take(&mut self.found)
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            match &mut self.state {
                TarState::End => return Ok(()),
                TarState::Header => {
                    let want = 512 - self.block.len();
                    let n = want.min(data.len());
                    self.block.extend_from_slice(data.get(..n).unwrap_or(&[]));
                    data = data.get(n..).unwrap_or(&[]);
                    if self.block.len() == 512 {
                        let block = std::mem::take(&mut self.block);
                        self.header(&block)?;
                    }
                }
                TarState::Skip { left } => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    data = data.get(n as usize..).unwrap_or(&[]);
                    if *left == 0 {
                        self.state = TarState::Header;
                    }
                }
                TarState::Special {
                    size, data: buf, ..
                }
                | TarState::Capture {
                    size, data: buf, ..
                } => {
                    let want = (*size - buf.len() as u64).min(data.len() as u64) as usize;
                    buf.extend_from_slice(data.get(..want).unwrap_or(&[]));
                    data = data.get(want..).unwrap_or(&[]);
                    if buf.len() as u64 == *size {
                        self.complete()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A special record or a candidate is complete: use it, then skip its padding.
    fn complete(&mut self) -> Result<(), String> {
        match std::mem::replace(&mut self.state, TarState::Header) {
            TarState::Special {
                kind, pad, data, ..
            } => {
                match kind {
                    b'x' => self.pax = parse_pax(&data)?,
                    // A global header is an entry of its own: what it says applies to no other.
                    b'g' => {
                        self.pax.clear();
                        self.long_name = None;
                    }
                    b'L' => self.long_name = Some(c_string(&data)),
                    _ => {}
                }
                self.state = TarState::Skip { left: pad };
            }
            TarState::Capture {
                path, pad, data, ..
            } => {
                self.found.push(Found { path, data });
                self.state = TarState::Skip { left: pad };
            }
            other => self.state = other,
        }
        if matches!(self.state, TarState::Skip { left: 0 }) {
            self.state = TarState::Header;
        }
        Ok(())
    }

    fn header(&mut self, b: &[u8]) -> Result<(), String> {
        if b.iter().all(|&x| x == 0) {
            if self.zero_seen {
                self.state = TarState::End;
            }
            self.zero_seen = true;
            return Ok(());
        }
        if self.zero_seen {
            return Err("the build context has a broken tar end marker".into());
        }
        verify_checksum(b)?;
        let field = |from: usize, to: usize| b.get(from..to).unwrap_or(&[]);
        let typeflag = b.get(156).copied().unwrap_or(0);
        let mut size = parse_numeric(field(124, 136)).ok_or("a tar header has a broken size")?;
        let mut name = c_string(field(0, 100));
        let prefix = name_prefix(b);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        match typeflag {
            b'x' | b'g' | b'L' | b'K' => {
                if size > SPECIAL_LIMIT {
                    return Err("a tar PAX or long-name record is too large".into());
                }
                self.state = TarState::Special {
                    kind: typeflag,
                    size,
                    pad: pad_of(size),
                    data: Vec::new(),
                };
                if typeflag == b'g' {
                    self.pax.clear();
                    self.long_name = None;
                }
                return self.empty_special();
            }
            b'S' => return Err("the build context has a GNU sparse file".into()),
            _ => {}
        }
        self.apply_overrides(&mut name, &mut size)?;
        let typeflag = match typeflag {
            0 if name.ends_with('/') => b'5',
            0 => b'0',
            t => t,
        };
        let header_only = matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
        let data = if header_only { 0 } else { size };
        let path = clean(&name);
        if self.candidates.contains(&path) {
            if typeflag != b'0' {
                return Err(format!(
                    "the Dockerfile {path:?} in the build context is not a regular file"
                ));
            }
            if data > DOCKERFILE_LIMIT as u64 {
                return Err(format!(
                    "the Dockerfile {path:?} is larger than {DOCKERFILE_LIMIT} bytes"
                ));
            }
            self.state = TarState::Capture {
                path,
                size: data,
                pad: pad_of(data),
                data: Vec::new(),
            };
            if data == 0 {
                self.complete()?;
            }
            return Ok(());
        }
        if typeflag != b'5'
            && self
                .candidates
                .iter()
                .any(|c| c.starts_with(&format!("{path}/")) || path.is_empty())
        {
            return Err(format!(
                "{path:?} in the build context is not a directory, above the Dockerfile"
            ));
        }
        let left = data + pad_of(data);
        self.state = if left == 0 {
            TarState::Header
        } else {
            TarState::Skip { left }
        };
        Ok(())
    }

    /// The PAX records and GNU long name that came before this header: its path and size.
    fn apply_overrides(&mut self, name: &mut String, size: &mut u64) -> Result<(), String> {
        for (k, v) in std::mem::take(&mut self.pax) {
            match k.as_str() {
                "path" => *name = v,
                "size" => {
                    *size = v
                        .parse::<i64>()
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or("a tar PAX size is invalid")?
                }
                k if k.starts_with("GNU.sparse.") => {
                    return Err("the build context has a sparse file".into())
                }
                _ => {}
            }
        }
        if let Some(long) = self.long_name.take() {
            *name = long;
        }
        Ok(())
    }

    /// A special record of size 0 completes at once.
    fn empty_special(&mut self) -> Result<(), String> {
        if matches!(self.state, TarState::Special { size: 0, .. }) {
            self.complete()?;
        }
        Ok(())
    }
}

impl Write for TarScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.consume(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Go's `parser.parseString`: up to the first NUL.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or(&[])).into_owned()
}

/// Go's `parseNumeric`: base-256 when the high bit is set, else octal with spaces and NULs
/// trimmed. `None` where Go reports `ErrHeader` (or the number is negative).
fn parse_numeric(b: &[u8]) -> Option<u64> {
    if b.first().is_some_and(|x| x & 0x80 != 0) {
        if b.first().is_some_and(|x| x & 0x40 != 0) {
            return None; // negative
        }
        let mut x: u64 = 0;
        for (i, &c) in b.iter().enumerate() {
            let c = if i == 0 { c & 0x7f } else { c };
            if x >> 56 > 0 {
                return None;
            }
            x = (x << 8) | u64::from(c);
        }
        return (x >> 63 == 0).then_some(x);
    }
    parse_octal(b)
}

fn parse_octal(b: &[u8]) -> Option<u64> {
    let start = b
        .iter()
        .position(|&x| x != b' ' && x != 0)
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&x| x != b' ' && x != 0)
        .map_or(start, |i| i + 1);
    let t = b.get(start..end.max(start)).unwrap_or(&[]);
    if t.is_empty() {
        return Some(0);
    }
    let s = c_string(t);
    u64::from_str_radix(&s, 8)
        .ok()
        .filter(|_| !s.starts_with('+'))
}

/// Go's `getFormat` checksum test (unsigned or signed sum, the field read as spaces).
fn verify_checksum(b: &[u8]) -> Result<(), String> {
    let stored =
        parse_octal(b.get(148..156).unwrap_or(&[])).ok_or("a tar header checksum is broken")?;
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &c) in b.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += i64::from(c);
        signed += i64::from(c as i8);
    }
    if stored as i64 == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err("a tar header checksum does not match".into())
    }
}

/// Go's `parsePAX`: `"%d %s=%s\n"` records; a broken one is refused.
fn parse_pax(data: &[u8]) -> Result<Vec<(String, String)>, String> {
    let bad = || "a tar PAX record is broken".to_string();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&x| x == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(rest.get(..sp).ok_or_else(bad)?)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > rest.len() {
            return Err(bad());
        }
        let rec = rest.get(sp + 1..len).ok_or_else(bad)?;
        rest = rest.get(len..).unwrap_or(&[]);
        let rec = rec.strip_suffix(b"\n").ok_or_else(bad)?;
        let eq = rec.iter().position(|&x| x == b'=').ok_or_else(bad)?;
        let key = String::from_utf8_lossy(rec.get(..eq).unwrap_or(&[])).into_owned();
        let value = String::from_utf8_lossy(rec.get(eq + 1..).unwrap_or(&[])).into_owned();
        if key.is_empty() || (matches!(key.as_str(), "path" | "linkpath") && value.contains('\0')) {
            return Err(bad());
        }
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    Ok(out)
}

/// The path an entry lands on below the context root: `filepath.Clean` of `/` + name, without
/// the leading `/` (`./Dockerfile`, `/Dockerfile` and `a/../Dockerfile` are `Dockerfile`).
pub fn clean(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The name prefix of a tar header `b` as Go's archive/tar reads it: USTAR's and star's
/// prefix fields, and an old GNU header's only when Go would take it for a USTAR one.
fn name_prefix(b: &[u8]) -> String {
    let field = |from: usize, to: usize| b.get(from..to).unwrap_or(&[]);
    let magic = field(257, 263);
    let version = field(263, 265);
    let trailer = field(508, 512);
    if magic == b"ustar\0" && trailer == b"tar\0" {
        c_string(field(345, 476))
    } else if magic == b"ustar\0" {
        c_string(field(345, 500))
    } else if magic == b"ustar " && version == b" \0" {
        // Go reads a GNU header whose times do not parse as an old Go writer's USTAR one.
        let times_ok = [field(345, 357), field(357, 369)]
            .iter()
            .all(|t| t.first() == Some(&0) || parse_numeric(t).is_some());
        let p = c_string(field(345, 500));
        if times_ok || !p.is_ascii() {
            String::new()
        } else {
            p
        }
    } else {
        String::new()
    }
}

#[cfg(test)]
#[path = "context/tests.rs"]
mod tests;
