//! A connection flood against an MLLP service, for measuring what a legitimate sender
//! sees meanwhile (run `hie-loadgen send` beside it): holds `--connections` connections
//! spread over `--addresses` loopback source addresses (127.0.0.2, 127.0.0.3, …; the
//! legitimate sender keeps 127.0.0.1), either
//! idle or as slow-loris senders (a start block, then one byte a second, never an end
//! block), and opens a new one for each the server closes. Prints once a second how many
//! are open and how many the server closed.
//!
//! ```text
//! cargo run --release -p hie-tests --example mllp_flood -- \
//!     --to 127.0.0.1:5000 --connections 4096 --addresses 16 --mode loris --seconds 30
//! ```
//!
//! Limits: one thread; every socket non-blocking; at most `--connections` open at once;
//! reconnects at most `--connections` per second.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Loris,
}

#[derive(Debug)]
struct Options {
    to: SocketAddr,
    connections: usize,
    addresses: u8,
    mode: Mode,
    seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        to: SocketAddr::from(([127, 0, 0, 1], 5000)),
        connections: 4096,
        addresses: 16,
        mode: Mode::Loris,
        seconds: 30,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [key, value] = pair else {
            return Err(format!("{pair:?}: every option takes a value"));
        };
        let bad = |e: &dyn std::fmt::Display| format!("{key} {value}: {e}");
        match key.as_str() {
            "--to" => o.to = value.parse().map_err(|e| bad(&e))?,
            "--connections" => o.connections = value.parse().map_err(|e| bad(&e))?,
            "--addresses" => o.addresses = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => o.seconds = value.parse().map_err(|e| bad(&e))?,
            "--mode" => {
                o.mode = match value.as_str() {
                    "idle" => Mode::Idle,
                    "loris" => Mode::Loris,
                    _ => return Err(bad(&"idle or loris")),
                }
            }
            _ => return Err(format!("unknown option {key}")),
        }
    }
    if !(1..=250).contains(&o.addresses) {
        return Err("--addresses must be in 1..=250".into());
    }
    Ok(o)
}

/// A connection from 127.0.0.`n` to `to`, non-blocking once connected.
fn open(n: u8, to: SocketAddr, mode: Mode) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket
        .bind(&SocketAddr::from(([127, 0, 0, n], 0)).into())
        .ok()?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(1))
        .ok()?;
    let mut stream: TcpStream = socket.into();
    stream.set_nonblocking(true).ok()?;
    if mode == Mode::Loris {
        stream.write_all(b"\x0bMSH|^~\\&|FLOOD|").ok()?;
    }
    Some(stream)
}

/// True while the server keeps `stream` open (a slow-loris one also gets its byte).
fn still_open(stream: &mut TcpStream, mode: Mode) -> bool {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => return false,
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(_) => return false,
    }
    mode == Mode::Idle || stream.write(b"x").is_ok()
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mllp_flood: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut conns: Vec<TcpStream> = Vec::with_capacity(o.connections);
    let mut closed_by_server = 0u64;
    let mut opened = 0usize;
    while started.elapsed() < Duration::from_secs(o.seconds) {
        let tick = Instant::now();
        while conns.len() < o.connections && tick.elapsed() < Duration::from_millis(900) {
            // In 2..=251: addresses ≤ 250.
            let n = 2 + (opened % usize::from(o.addresses)) as u8;
            opened += 1;
            if let Some(c) = open(n, o.to, o.mode) {
                conns.push(c);
            }
        }
        let before = conns.len();
        conns.retain_mut(|c| still_open(c, o.mode));
        closed_by_server += (before - conns.len()) as u64;
        println!(
            "[{:>4}s] open {:>5}  closed by the server {:>7}",
            started.elapsed().as_secs(),
            conns.len(),
            closed_by_server
        );
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
}
