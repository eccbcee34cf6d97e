//! For tests: what a `tracing` subscriber like the one `super::init` installs (no time, no
//! colours) writes while `run` runs.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines written while `run` runs, as text or JSON, at `level` and above.
pub(crate) fn captured(json: bool, level: tracing::Level, run: impl FnOnce()) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone());
    if json {
        tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), run);
    } else {
        tracing::subscriber::with_default(builder.finish(), run);
    }
    let bytes = out.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}
