//! Reading the files a BuildKit session sends for its `dockerfile` directory: gRPC messages
//! (a 5-byte prefix, a compressed flag and a big-endian length, then the message) that carry
//! fsutil `Packet`s (`tonistiigi/fsutil` `types/wire.proto`), as `fsutil.Send` writes them on
//! the CLI's side of `/moby.filesync.v1.FileSync/DiffCopy`:
//!
//! - `STAT` packets, one per walked path (its index in the walk is its `ID`), then an empty
//!   `STAT` that ends the walk;
//! - for each file the daemon asks for (`REQ`, the other way), `DATA` packets with its `ID` and
//!   bytes, then an empty `DATA` that ends that file;
//! - `FIN` (the answer to the daemon's), or `ERR`.
//!
//! [`Capture`] reads those messages as they stream and holds every message back from the first
//! `DATA` until each file begun is complete, so that the caller checks a file before any byte
//! that completes it moves on. Anything it cannot read as fsutil writes it (a compressed
//! message, a malformed or repeated field, an unknown packet type, data for a path never
//! announced, more than the bounds) is an error: the caller refuses the stream.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes, BytesMut};

/// Largest file read whole (a Dockerfile).
pub const FILE_LIMIT: usize = crate::inspect::dockerfile::DOCKERFILE_LIMIT;

/// Largest gRPC message on a `dockerfile` stream (fsutil sends 32 KiB of data at most).
pub const MESSAGE_LIMIT: usize = FILE_LIMIT + 4096;

/// Most paths a `dockerfile` walk may announce (it is the Dockerfile and its parents).
const STAT_LIMIT: usize = 4096;

/// Most bytes held back at once (the files being sent, framed).
const HELD_LIMIT: usize = 2 * FILE_LIMIT + 64 * 1024;

/// Most bytes of text in an `ERR` packet sockwarden writes (a refusal names an image or a line).
const ERROR_TEXT_LIMIT: usize = 16 * 1024;

/// `Packet.PacketType`.
const PACKET_STAT: u64 = 0;
const PACKET_REQ: u64 = 1;
const PACKET_DATA: u64 = 2;
const PACKET_FIN: u64 = 3;
const PACKET_ERR: u64 = 4;

/// Splits a gRPC body into its messages (each returned whole, prefix included, as it came).
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
}

impl Framer {
    /// Adds a chunk; returns the messages it completed, and an error that stops the reading
    /// (the bytes from the failing message on stay in the buffer).
    pub fn push(&mut self, chunk: &[u8]) -> (Vec<Bytes>, Option<String>) {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(head) = self.buf.get(..5) {
            let flag = head.first().copied().unwrap_or(0);
            if flag != 0 {
                return (out, Some("a compressed gRPC message cannot be read".into()));
            }
            let mut len_bytes = [0u8; 4];
            len_bytes.copy_from_slice(head.get(1..5).unwrap_or(&[0; 4]));
            let len = u32::from_be_bytes(len_bytes) as usize;
            if len > MESSAGE_LIMIT {
                let e =
                    format!("a gRPC message of {len} bytes is over the {MESSAGE_LIMIT}-byte limit");
                return (out, Some(e));
            }
            if self.buf.len() < 5 + len {
                break;
            }
            out.push(self.buf.split_to(5 + len).freeze());
        }
        (out, None)
    }

    /// The body ended: nothing may be left over.
    pub fn finish(&self) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the gRPC body ended inside a message ({} bytes left)",
                self.buf.len()
            ))
        }
    }
}

/// One fsutil packet, as far as it matters here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// `type` (0 when absent, as proto3 reads it).
    pub kind: u64,
    /// `stat`, when present: its `path` and `mode`.
    pub stat: Option<(String, u32)>,
    /// `ID`.
    pub id: u32,
    /// `data`.
    pub data: Bytes,
}

/// Reads a protobuf varint.
fn varint(buf: &mut Bytes) -> Result<u64, String> {
    let mut value: u64 = 0;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err("a protobuf varint is cut short".into());
        }
        let b = buf.get_u8();
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a protobuf varint is too long".into())
}

/// Reads a length-delimited field's bytes.
fn delimited(buf: &mut Bytes) -> Result<Bytes, String> {
    let len = varint(buf)?;
    let len = usize::try_from(len).map_err(|_| "a protobuf length is too large".to_owned())?;
    if len > buf.remaining() {
        return Err("a protobuf field runs past its message".into());
    }
    Ok(buf.split_to(len))
}

/// Skips a field of `wire` type that is not read.
fn skip(buf: &mut Bytes, wire: u64) -> Result<(), String> {
    let n = match wire {
        0 => {
            varint(buf)?;
            return Ok(());
        }
        1 => 8,
        2 => {
            delimited(buf)?;
            return Ok(());
        }
        5 => 4,
        other => return Err(format!("protobuf wire type {other} cannot be read")),
    };
    if buf.remaining() < n {
        return Err("a protobuf field runs past its message".into());
    }
    buf.advance(n);
    Ok(())
}

/// Field numbers seen so far in one message: a known field given twice is refused (Go's
/// reader would take the last, or merge; fsutil never repeats one).
struct Seen(u32);

impl Seen {
    fn once(&mut self, field: u64) -> Result<(), String> {
        let bit = 1u32 << (field & 31);
        if self.0 & bit != 0 {
            return Err(format!("protobuf field {field} is repeated"));
        }
        self.0 |= bit;
        Ok(())
    }
}

fn key(buf: &mut Bytes) -> Result<(u64, u64), String> {
    let k = varint(buf)?;
    let field = k >> 3;
    if field == 0 {
        return Err("protobuf field number 0".into());
    }
    Ok((field, k & 7))
}

fn expect_wire(field: u64, wire: u64, want: u64) -> Result<(), String> {
    if wire == want {
        Ok(())
    } else {
        Err(format!(
            "protobuf field {field} has wire type {wire}, not {want}"
        ))
    }
}

/// Decodes `Stat`: its `path` (1) and `mode` (2).
fn decode_stat(mut buf: Bytes) -> Result<(String, u32), String> {
    let mut seen = Seen(0);
    let (mut path, mut mode) = (String::new(), 0u32);
    while buf.has_remaining() {
        let (field, wire) = key(&mut buf)?;
        match field {
            1 => {
                expect_wire(field, wire, 2)?;
                seen.once(field)?;
                let bytes = delimited(&mut buf)?;
                path = String::from_utf8(bytes.to_vec())
                    .map_err(|_| "a path is not UTF-8".to_owned())?;
            }
            2 => {
                expect_wire(field, wire, 0)?;
                seen.once(field)?;
                mode = u32::try_from(varint(&mut buf)?)
                    .map_err(|_| "a mode is out of range".to_owned())?;
            }
            _ => skip(&mut buf, wire)?,
        }
    }
    Ok((path, mode))
}

/// An `ERR` packet carrying `text`, framed as a gRPC message: what fsutil's sender writes when
/// it fails, and what the daemon's receiver returns as the read's error as soon as it reads
/// it (`error from sender: TEXT`).
pub fn error_message(text: &str) -> Bytes {
    let mut end = text.len().min(ERROR_TEXT_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text.as_bytes()[..end];
    let mut packet = Vec::with_capacity(text.len() + 16);
    packet.extend_from_slice(&[0x08, PACKET_ERR as u8, 0x22]);
    put_varint(text.len() as u64, &mut packet);
    packet.extend_from_slice(text);
    let mut out = BytesMut::with_capacity(packet.len() + 5);
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(packet.len() as u32).to_be_bytes());
    out.extend_from_slice(&packet);
    out.freeze()
}

/// Writes a protobuf varint.
fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes one `Packet` (the message without its gRPC prefix).
pub fn decode_packet(mut buf: Bytes) -> Result<Packet, String> {
    let mut seen = Seen(0);
    let mut packet = Packet::default();
    while buf.has_remaining() {
        let (field, wire) = key(&mut buf)?;
        match field {
            1 => {
                expect_wire(field, wire, 0)?;
                seen.once(field)?;
                packet.kind = varint(&mut buf)?;
            }
            2 => {
                expect_wire(field, wire, 2)?;
                seen.once(field)?;
                packet.stat = Some(decode_stat(delimited(&mut buf)?)?);
            }
            3 => {
                expect_wire(field, wire, 0)?;
                seen.once(field)?;
                packet.id = u32::try_from(varint(&mut buf)?)
                    .map_err(|_| "a packet ID is out of range".to_owned())?;
            }
            4 => {
                expect_wire(field, wire, 2)?;
                seen.once(field)?;
                packet.data = delimited(&mut buf)?;
            }
            _ => skip(&mut buf, wire)?,
        }
    }
    Ok(packet)
}

pub use crate::inspect::layer::session::File;

/// What to do after a chunk.
#[derive(Debug, Default)]
pub struct Step {
    /// Files completed by this chunk: to be checked before `release` is sent.
    pub files: Vec<File>,
    /// Messages that may move on (once `files` passed), in order.
    pub release: Vec<Bytes>,
}

/// Reads a `dockerfile` DiffCopy stream from the CLI (see the module documentation).
#[derive(Debug, Default)]
pub struct Capture {
    framer: Framer,
    /// The announced paths, by ID, and whether each is a regular file.
    stats: Vec<(String, bool)>,
    walked: bool,
    /// Files begun and not yet complete.
    open: BTreeMap<u32, Vec<u8>>,
    /// IDs already complete (a file is sent once).
    done: std::collections::BTreeSet<u32>,
    held: Vec<Bytes>,
    held_bytes: usize,
}

impl Capture {
    /// Reads one more chunk of the stream. After an error, [`Capture::into_held`] has every
    /// byte not released, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Step, String> {
        let mut step = Step::default();
        let (messages, framing) = self.framer.push(chunk);
        let mut messages = messages.into_iter();
        let mut failed = framing;
        for message in messages.by_ref() {
            self.held_bytes += message.len();
            self.held.push(message.clone());
            if let Err(e) =
                decode_packet(message.slice(5..)).and_then(|p| self.packet(p, &mut step))
            {
                failed = Some(e);
                break;
            }
            if self.held_bytes > HELD_LIMIT {
                failed = Some(format!(
                    "more than {HELD_LIMIT} bytes of files are in flight at once"
                ));
                break;
            }
            if self.open.is_empty() {
                step.release.append(&mut self.held);
                self.held_bytes = 0;
            }
        }
        if let Some(e) = failed {
            // Nothing is lost: what this chunk released goes back in front of what is held,
            // the messages after the failing one behind it.
            let mut all = std::mem::take(&mut step.release);
            all.append(&mut self.held);
            all.extend(messages);
            self.held = all;
            return Err(e);
        }
        Ok(step)
    }

    /// The stream ended (its trailers came): nothing may be left unread or incomplete.
    pub fn finish(&self) -> Result<(), String> {
        self.framer.finish()?;
        if let Some(id) = self.open.keys().next() {
            return Err(format!("the stream ended inside file ID {id}"));
        }
        // A file the daemon did not ask for is one it took from a copy it kept: never read
        // here (each session has a fresh shared key, so this should not happen).
        let unsent = self
            .stats
            .iter()
            .enumerate()
            .find(|(id, (_, regular))| *regular && !self.done.contains(&(*id as u32)));
        if let Some((_, (path, _))) = unsent {
            return Err(format!(
                "{path} was announced but not sent: the daemon used a copy sockwarden did not read"
            ));
        }
        Ok(())
    }

    /// Everything read and not released, in order (the messages held back, then the bytes of
    /// an incomplete message), for when reading stops and the stream passes on unread.
    pub fn into_held(self) -> Vec<Bytes> {
        let mut out = self.held;
        if !self.framer.buf.is_empty() {
            out.push(self.framer.buf.freeze());
        }
        out
    }

    fn packet(&mut self, packet: Packet, step: &mut Step) -> Result<(), String> {
        match packet.kind {
            PACKET_STAT => match packet.stat {
                None => {
                    self.walked = true;
                    Ok(())
                }
                Some(_) if self.walked => Err("a path was announced after the walk ended".into()),
                Some((path, mode)) => {
                    if self.stats.len() >= STAT_LIMIT {
                        return Err(format!("more than {STAT_LIMIT} paths were announced"));
                    }
                    // `fileCanRequestData`: no type bits (os.ModeType) set.
                    let regular = mode & 0x8F28_0000 == 0;
                    self.stats.push((path, regular));
                    Ok(())
                }
            },
            PACKET_DATA => self.data(packet.id, packet.data, step),
            PACKET_FIN | PACKET_ERR => Ok(()),
            PACKET_REQ => Err("a file request came from the wrong side".into()),
            other => Err(format!("unknown fsutil packet type {other}")),
        }
    }

    fn data(&mut self, id: u32, data: Bytes, step: &mut Step) -> Result<(), String> {
        let path = match self.stats.get(id as usize) {
            Some((path, true)) => path.clone(),
            Some((path, false)) => {
                return Err(format!("data was sent for {path}, which is not a file"))
            }
            None => return Err(format!("data was sent for unknown file ID {id}")),
        };
        if self.done.contains(&id) {
            return Err(format!("{path} was sent twice"));
        }
        if data.is_empty() {
            let data = self.open.remove(&id).unwrap_or_default();
            self.done.insert(id);
            step.files.push(File { path, data });
            return Ok(());
        }
        let file = self.open.entry(id).or_default();
        if file.len() + data.len() > FILE_LIMIT {
            return Err(format!(
                "{path} is larger than {FILE_LIMIT} bytes, more than sockwarden reads"
            ));
        }
        file.extend_from_slice(&data);
        Ok(())
    }
}

#[cfg(test)]
#[path = "fsutil_tests.rs"]
mod tests;
