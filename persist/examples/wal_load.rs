//! Load tool: `cargo run --release -p hie-persist --example wal_load -- [appenders] [records] [dir]`.
//!
//! Appends 1 KiB `MessageReceived` records from `appenders` tasks on one glommio executor
//! (fsync mode) and prints appends/s, MB/s, p50/p99/max time to durable, and the number
//! of commits and syncs. The WAL directory is a temporary one unless `dir` is given;
//! `WAL_ZERO_FILL=0` turns off zero-filled segments; `WAL_SPIN_US=N` lets the executor
//! spin N µs before parking (glommio `spin_before_park`; the engine does not).

use std::{cell::RefCell, rc::Rc, time::Instant};

use hie_persist::{MessageMeta, Record, SYNC_THREADS, Wal, WalConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let appenders: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(256);
    let records: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir_arg = args.next();
    let mut builder = glommio::LocalExecutorBuilder::default()
        .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(SYNC_THREADS));
    if let Some(spin_us) = std::env::var("WAL_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.spin_before_park(std::time::Duration::from_micros(spin_us));
    }
    builder
        .spawn(move || async move {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = dir_arg.map_or_else(|| tmp.path().to_owned(), Into::into);
            let opened = Instant::now();
            // WAL_ZERO_FILL=0 measures preallocated (unwritten-extent) segments instead.
            let zero_fill = std::env::var("WAL_ZERO_FILL").map_or(true, |v| v != "0");
            let config = WalConfig::default().with_zero_fill_segments(zero_fill);
            let (wal, recovery) = Wal::open(&dir, config).await.expect("open");
            println!(
                "open: {:?}, recovered {} records in {} segments, {} open messages",
                opened.elapsed(),
                recovery.stats.records,
                recovery.stats.segments,
                recovery.messages.len()
            );
            let wal = Rc::new(wal);
            let latencies = Rc::new(RefCell::new(Vec::with_capacity(records)));
            let bytes = Rc::new(vec![b'A'; 1024 - 32 - 8 - 4 * 2 - 2 - 7 - 1 - 1 - 4]);
            let per_task = records.div_ceil(appenders);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..appenders {
                let (wal, latencies, bytes) = (wal.clone(), latencies.clone(), bytes.clone());
                tasks.push(glommio::spawn_local(async move {
                    for _ in 0..per_task {
                        let message_id = wal.next_message_id();
                        let meta = MessageMeta {
                            message_type: "ADT^A01",
                            control_id: "1",
                            partition_key: "P",
                        };
                        let record = Record::MessageReceived {
                            message_id,
                            source: "In",
                            meta,
                            bytes: &bytes,
                        };
                        let t0 = Instant::now();
                        wal.append(&record).await.expect("append");
                        latencies.borrow_mut().push(t0.elapsed().as_micros() as u64);
                    }
                }));
            }
            for task in tasks {
                task.await;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let stats = wal.stats();
            wal.close().await.expect("close");
            let mut l = latencies.borrow().clone();
            l.sort_unstable();
            let q = |p: f64| l[((l.len() - 1) as f64 * p) as usize];
            let n = l.len() as f64;
            println!(
                "appenders {appenders}: {:.0} appends/s, {:.1} MB/s, durable p50 {} us p99 {} us max {} us; {} commits, {} syncs, {:.1} records/commit",
                n / elapsed,
                n * 1024.0 / elapsed / 1e6,
                q(0.5),
                q(0.99),
                q(1.0),
                stats.commits,
                stats.syncs,
                stats.records as f64 / stats.commits as f64
            );
        })
        .expect("executor")
        .join()
        .expect("executor thread");
}
