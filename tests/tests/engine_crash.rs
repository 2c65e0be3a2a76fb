//! Crash: a production under load is SIGKILLed at random moments and restarted, several
//! times. Every message the engine ACKed must arrive at the sink at least once; duplicates
//! are counted and printed; per patient, the first arrivals keep the send order.
//!
//! Production (2 shards): `In` (TCP service, shard 0) → `ADT Router` (on shard 0) →
//! `EPR Out` (TCP operation, shard 1) → the in-test sink. The router's name sorts before
//! the operation's, so recovery re-enqueues the router's backlog first: a reordering bug
//! between the two would show here. A second run puts `EPR Out` on both shards
//! (PoolSize 2): each patient's messages go to one instance by partition key (PID-3.1),
//! through the rings and through recovery.
//!
//! Load: two sender threads, each with its own five patients, one message in flight at a
//! time; a message that gets no ACK (the engine died) is sent again on a new connection
//! with the same control id, as an upstream system would.
//!
//! Bounds: 8 kills (5 in the pooled run), each 0.5–2.5 s after the engine is ready (a seeded generator; the seed
//! is printed); at most 10,000 messages per sender; 60 s for the last deliveries.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Answer, TestSink, adt, control_id, head, patient, router, tcp_operation, tcp_service,
};
use hie_tests::{Hie, MllpConn, field, free_port, wait_until};

const KILLS: usize = 8;
const KILLS_POOLED: usize = 5;
const SENDERS: usize = 2;
const PATIENTS_PER_SENDER: usize = 5;
const MESSAGES_PER_SENDER_MAX: usize = 10_000;

/// A small xorshift generator: reproducible from the printed seed, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration between `lo` and `hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// Sends messages `S{sender}-{seq}` until `stop`, resending each until it is ACKed.
/// Returns the control ids ACKed, in order.
fn sender(sender: usize, port: u16, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut conn: Option<MllpConn> = None;
    for seq in 0..MESSAGES_PER_SENDER_MAX {
        let id = format!("S{sender}-{seq:05}");
        let msg = adt(&id, &format!("P{sender}-{}", seq % PATIENTS_PER_SENDER));
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            if conn.is_none() {
                match MllpConn::connect(&format!("127.0.0.1:{port}")) {
                    Ok(c) => conn = Some(c),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connected");
            match c.exchange(&msg) {
                Ok(ack) if field(&ack, "MSA", 1).as_deref() == Some("AA") => {
                    assert_eq!(field(&ack, "MSA", 2).as_deref(), Some(id.as_str()));
                    acked.lock().unwrap().push(id);
                    break;
                }
                // A NAK or a broken connection: send it again on a new connection.
                _ => conn = None,
            }
        }
    }
}

#[test]
fn every_acked_message_arrives_and_patients_keep_their_order_across_repeated_sigkills() {
    crash_test(1, KILLS);
}

#[test]
fn with_the_operation_on_both_shards_patients_keep_their_order_across_sigkills() {
    crash_test(2, KILLS_POOLED);
}

/// Runs the crash test with `pool_size` instances of `EPR Out` and `kills` SIGKILLs.
fn crash_test(pool_size: usize, kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let production = head("Crash", 2)
        + &tcp_service("In", in_port, "ADT Router", &[])
        + &router("ADT Router", "EPR Out", &[])
        + &tcp_operation("EPR Out", out_port, &[("RetryInterval", "1")], &[]).replacen(
            "[item.host]",
            &format!("pool_size = {pool_size}\n[item.host]"),
            1,
        );
    let config = common::write_production(dir.path(), &production);
    let data = dir.path().join("data");
    let args = ["--no-pin", "--log", "warn"];
    let mut hie = Hie::start(&config, &data, &args);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test (EPR Out pool size {pool_size}) seed {seed}");
    let mut rng = XorShift(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || sender(s, in_port, stop, acked))
        })
        .collect();

    let started = Instant::now();
    for kill in 0..kills {
        std::thread::sleep(rng.millis(500, 2_500));
        let before = acked.lock().unwrap().len();
        hie.process.kill();
        println!("kill {kill}: {before} ACKed so far");
        let restart = Instant::now();
        hie = Hie::start(&config, &data, &args);
        println!("restarted in {:?}", restart.elapsed());
    }
    std::thread::sleep(Duration::from_millis(1_000));
    stop.store(true, Ordering::Release);
    for s in senders {
        s.join().expect("sender thread");
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "only {} messages ACKed in {:?}; log:\n{}",
        acked.len(),
        started.elapsed(),
        hie.log()
    );

    let wanted: HashSet<&str> = acked.iter().map(String::as_str).collect();
    let all_arrived = wait_until(Duration::from_secs(60), || {
        let got: HashSet<String> = sink.control_ids().into_iter().collect();
        wanted.iter().all(|id| got.contains(*id))
    });
    println!("all arrived at {:?}", started.elapsed());
    let arrivals = sink.arrivals();
    let ids: Vec<String> = arrivals.iter().map(|m| control_id(m)).collect();
    let unique: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let missing: Vec<&&str> = wanted.iter().filter(|id| !unique.contains(**id)).collect();
    assert!(
        all_arrived,
        "{} ACKed messages never arrived (e.g. {:?}); log:\n{}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        hie.log()
    );
    println!(
        "{} ACKed, {} arrivals, {} distinct, {} duplicates, {} kills in {:?}",
        acked.len(),
        ids.len(),
        unique.len(),
        ids.len() - unique.len(),
        kills,
        started.elapsed()
    );

    // Per patient, the first arrival of each control id is in send (sequence) order.
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<String, (usize, String)> = HashMap::new();
    for msg in &arrivals {
        let id = control_id(msg);
        if !seen.insert(id.clone()) {
            continue;
        }
        let seq: usize = id.rsplit('-').next().unwrap().parse().unwrap();
        let pid = patient(msg);
        if let Some((prev, prev_id)) = last_seq.get(&pid) {
            assert!(
                seq > *prev,
                "patient {pid}: {id} arrived first after {prev_id}"
            );
        }
        last_seq.insert(pid, (seq, id));
    }

    // Every delivery is recorded complete: nothing stays open in any WAL.
    common::wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "no open message",
        |s| {
            s["shards"]
                .as_array()
                .is_some_and(|shards| shards.iter().all(|sh| sh["wal_open_messages"] == 0))
        },
    );
    let stopping = Instant::now();
    let status = hie.process.stop(Duration::from_secs(30));
    println!("stopped in {:?}", stopping.elapsed());
    assert!(
        status.is_some_and(|s| s.success()),
        "clean shutdown; log:\n{}",
        hie.log()
    );
    drop(sink);
}
