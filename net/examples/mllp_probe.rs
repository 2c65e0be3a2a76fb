//! A repeatable MLLP round-trip probe for profiling (strace -c, perf stat, callgrind):
//! an ACK-only `MllpServer` on one glommio executor and a closed-loop load client on
//! another, a fixed number of messages, then the rate.
//!
//! ```text
//! mllp_probe [connections=8] [messages=200000] [server_spin_us=0] [client_spin_us=0]
//!            [server_cpu=0] [client_cpu=1] [busy_poll_us=50]
//! ```

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt as _;
use glommio::net::TcpStream;
use glommio::{LocalExecutorBuilder, Placement};
use hie_net::{AckOnlyHandler, FrameDecoder, MllpServer, ServerConfig};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn builder(cpu: u64, spin_us: u64, name: &str) -> LocalExecutorBuilder {
    let b = LocalExecutorBuilder::new(Placement::Fixed(cpu as usize)).name(name);
    if spin_us > 0 {
        b.spin_before_park(Duration::from_micros(spin_us))
    } else {
        b
    }
}

/// This thread's user and system CPU time so far.
fn thread_cpu() -> String {
    // SAFETY: getrusage writes into the zeroed struct we pass, nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    format!(
        "user {:.0} ms, sys {:.0} ms, voluntary switches {}",
        us(ru.ru_utime) / 1e3,
        us(ru.ru_stime) / 1e3,
        ru.ru_nvcsw
    )
}

fn main() {
    let connections = arg(1, 8);
    let messages = arg(2, 200_000);
    let (server_spin, client_spin) = (arg(3, 0), arg(4, 0));
    let (server_cpu, client_cpu) = (arg(5, 0), arg(6, 1));
    let busy = Duration::from_micros(arg(7, 50));
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let server = builder(server_cpu, server_spin, "probe-server")
        .spawn(move || async move {
            let config = ServerConfig {
                local_address: "127.0.0.1".parse().unwrap(),
                busy_poll: busy,
                ..ServerConfig::default()
            };
            let server = MllpServer::bind(config, AckOnlyHandler::default()).unwrap();
            addr_tx.send(server.local_addr()).unwrap();
            let handle = server.handle();
            glommio::spawn_local(async move {
                while stop_rx.try_recv().is_err() {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
                handle.stop();
            })
            .detach();
            server.run().await.unwrap();
            eprintln!("server thread: {}", thread_cpu());
        })
        .unwrap();
    let addr = addr_rx.recv().unwrap();
    let client = builder(client_cpu, client_spin, "probe-client")
        .spawn(move || async move {
            let per_conn = messages / connections;
            let mut conns = Vec::new();
            for _ in 0..connections {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                conns.push(s);
            }
            let start = Instant::now();
            let tasks: Vec<_> = conns
                .into_iter()
                .enumerate()
                .map(|(c, mut s)| {
                    glommio::spawn_local(async move {
                        let mut msg = Vec::new();
                        let text = format!(
                            "MSH|^~\\&|SND|FAC|RCV|RFAC|20240101120000||ADT^A01^ADT_A01|P{c:05}|P|2.5.1\r\
                             EVN|A01|20240101120000\r\
                             PID|1||123456^^^HOSP^MR||DOE^JOHN^A||19800101|M|||1 MAIN ST^^TOWN^ST^12345||555-0100\r\
                             PV1|1|I|WARD^101^A|||||||MED||||||||V1234567890\r"
                        );
                        hie_net::encode_frame(&mut msg, text.as_bytes());
                        let mut dec = FrameDecoder::new(1 << 20);
                        let mut reader = hie_net::BusyReader::new(busy);
                        for _ in 0..per_conn {
                            s.write_all(&msg).await.unwrap();
                            loop {
                                if dec.next_frame().unwrap().is_some() {
                                    break;
                                }
                                let n = reader.read(&mut s, dec.read_buf()).await.unwrap();
                                assert!(n > 0);
                                dec.commit(n);
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{connections} connections, {} messages in {secs:.3} s: {:.0} msg/s",
                per_conn * connections,
                (per_conn * connections) as f64 / secs
            );
            eprintln!("client thread: {}", thread_cpu());
        })
        .unwrap();
    client.join().unwrap();
    stop_tx.send(()).unwrap();
    server.join().unwrap();
}
