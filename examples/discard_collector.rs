//! A syslog collector that takes RFC 6587 octet-counted frames over TCP and discards them, for
//! the benchmark's remote-audit cell (`scripts/bench.sh`): it costs the machine as little as a
//! collector can, so what the cell measures is sockwarden's side of shipping.
//!
//! ```text
//! discard_collector 127.0.0.1:0 PORT_FILE   # listens, writes its port to PORT_FILE
//! ```
//!
//! On SIGTERM it just ends; the bytes received are printed to stderr every 10 s.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = TcpListener::bind(&addr)?;
    let port = listener.local_addr()?.port();
    match args.next() {
        Some(file) => std::fs::write(file, format!("{port}\n"))?,
        None => println!("{port}"),
    }
    let received = Arc::new(AtomicU64::new(0));
    {
        let received = received.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(10));
            eprintln!("received {} bytes", received.load(Ordering::Relaxed));
        });
    }
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let received = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    Ok(())
}
