//! Helpers shared by the socket tests: a server on its own glommio thread, blocking
//! loopback clients, sample messages.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use glommio::LocalExecutor;
use glommio::timer::Timer;
use hie_net::{AckOnlyHandler, FrameDecoder, MllpServer, ServerConfig, ServerStats};

/// A 300-byte ADT^A01 with control id `id`.
pub fn adt(id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A01^ADT_A01|{id}|P|2.5.1\r\
         EVN|A01|20240101120000\r\
         PID|1||123456^^^HOSP^MR||DOE^JOHN^A||19800101|M|||1 MAIN ST^^TOWN^ST^12345||555-0100\r\
         PV1|1|I|WARD^101^A|||||||MED||||||||V123456\r"
    )
    .into_bytes()
}

pub fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    hie_net::encode_frame(&mut out, msg);
    out
}

/// An ACK-only server on its own thread and glommio executor, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<ServerStats>>,
}

impl TestServer {
    pub fn start(mut config: ServerConfig) -> Self {
        config.local_address = "127.0.0.1".parse().unwrap();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_seen = stop.clone();
        let join = std::thread::spawn(move || {
            LocalExecutor::default().run(async move {
                let server = MllpServer::bind(config, AckOnlyHandler::default()).unwrap();
                tx.send(server.local_addr()).unwrap();
                let handle = server.handle();
                let watcher = handle.clone();
                glommio::spawn_local(async move {
                    while !stop_seen.load(Ordering::Acquire) {
                        Timer::new(Duration::from_millis(5)).await;
                    }
                    watcher.stop();
                })
                .detach();
                server.run().await.unwrap();
                handle.stats()
            })
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        Self {
            addr,
            stop,
            join: Some(join),
        }
    }

    /// Stops the server, waits for its connections to close, returns its counters.
    pub fn stop(mut self) -> ServerStats {
        self.stop.store(true, Ordering::Release);
        self.join.take().unwrap().join().expect("server thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until `n` frames arrived (panics after 10 s).
pub fn read_frames(stream: &mut TcpStream, n: usize) -> Vec<Vec<u8>> {
    let mut dec = FrameDecoder::new(1 << 20);
    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while frames.len() < n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} frames"
        );
        let got = stream.read(dec.read_buf()).unwrap();
        assert!(
            got > 0,
            "server closed after {} of {n} frames",
            frames.len()
        );
        dec.commit(got);
        while let Some(f) = dec.next_frame().unwrap() {
            frames.push(f.to_vec());
        }
    }
    frames
}

/// Reads until the peer closes (true) or 5 s pass (false), discarding bytes.
pub fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// (MSA-1, MSA-2) of an ACK.
pub fn msa(ack: &[u8]) -> (String, String) {
    let msg = hie_hl7::Message::scan(ack).expect("ACK scans");
    let code = msg
        .ack_code()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    let id = String::from_utf8_lossy(msg.acked_control_id().unwrap_or_default()).into_owned();
    (code, id)
}

pub fn send_all(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).unwrap();
}
