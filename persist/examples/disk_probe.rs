//! Disk probe: `cargo run --release -p hie-persist --example disk_probe -- [dir]`.
//!
//! Measures, with the same glommio DMA (O_DIRECT) files the WAL uses, what bounds a group
//! commit on the disk under `dir` (default: a temporary directory): sequential O_DIRECT
//! bandwidth at queue depth 1 and 4 (into a new file and over a zero-filled one), the
//! latency of one write per size, a write + `fdatasync` cycle per size, the same cycle
//! with the next write issued while the previous `fdatasync` runs (one write and one
//! sync in flight), with two `fdatasync`s in flight, and `rename` + directory `fsync`.
//! Every line prints p50/p99 in µs and, where it writes, MB/s.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    path::{Path, PathBuf},
    rc::Rc,
    time::{Duration, Instant},
};

use glommio::io::{DmaFile, OpenOptions};

const FILE_BYTES: u64 = 256 << 20;
const CYCLES: usize = 2000;

fn main() {
    let dir_arg = std::env::args().nth(1);
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = dir_arg.map_or_else(|| tmp.path().to_owned(), PathBuf::from);
            bandwidth(&dir).await;
            let file = Rc::new(zero_filled(&dir.join("probe.zero")).await);
            for size in [4 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20] {
                write_only(&file, size).await;
            }
            for size in [4 << 10, 64 << 10, 128 << 10, 256 << 10] {
                write_sync(&file, size).await;
            }
            for size in [4 << 10, 64 << 10, 128 << 10, 256 << 10] {
                pipelined(&file, size, 1, None).await;
                pipelined(&file, size, 2, None).await;
                pipelined(&file, size, 1, Some(&dir.join("probe.zero"))).await;
            }
            rename_and_sync_dir(&dir).await;
            for size in [64 << 10, 256 << 10] {
                threads(&dir.join("probe.zero"), size, 0);
                threads(&dir.join("probe.zero"), size, 1);
                threads(&dir.join("probe.zero"), size, 2);
            }
        })
        .expect("executor")
        .join()
        .expect("join");
}

fn report(what: &str, mut us: Vec<u64>, bytes: u64, elapsed: Duration) {
    us.sort_unstable();
    let q = |p: f64| us[((us.len() - 1) as f64 * p) as usize];
    let mb_s = if bytes > 0 {
        format!("{:8.1} MB/s", bytes as f64 / elapsed.as_secs_f64() / 1e6)
    } else {
        String::new()
    };
    println!(
        "{what:<44} p50 {:>6} us  p99 {:>6} us  {mb_s}",
        q(0.5),
        q(0.99)
    );
}

async fn open(path: &Path) -> DmaFile {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(path)
        .await
        .expect("open O_DIRECT")
}

async fn write(file: &DmaFile, size: usize, at: u64) {
    let mut buf = file.alloc_dma_buffer(size);
    buf.as_bytes_mut().fill(b'P');
    let written = file.write_at(buf, at).await.expect("write");
    assert_eq!(written, size);
}

async fn zero_filled(path: &Path) -> DmaFile {
    let file = open(path).await;
    let mut at = 0;
    while at < FILE_BYTES {
        let buf = file.alloc_dma_buffer(1 << 20);
        let mut buf = buf;
        buf.as_bytes_mut().fill(0);
        file.write_at(buf, at).await.expect("zero fill");
        at += 1 << 20;
    }
    file.fdatasync().await.expect("sync");
    file
}

/// 1 MiB sequential writes at queue depth `depth`, one `fdatasync` at the end.
async fn sequential(file: Rc<DmaFile>, depth: usize) -> Duration {
    let chunk = 1u64 << 20;
    let chunks = FILE_BYTES / chunk;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..depth as u64 {
        let file = file.clone();
        tasks.push(glommio::spawn_local(async move {
            let mut i = lane;
            while i < chunks {
                write(&file, chunk as usize, i * chunk).await;
                i += depth as u64;
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    file.fdatasync().await.expect("sync");
    start.elapsed()
}

async fn bandwidth(dir: &Path) {
    for depth in [1, 4] {
        let path = dir.join(format!("probe.new.{depth}"));
        let file = Rc::new(open(&path).await);
        let elapsed = sequential(file.clone(), depth).await;
        let what = format!("seq 1 MiB QD{depth}, new file, 1 sync");
        report(&what, vec![elapsed.as_micros() as u64], FILE_BYTES, elapsed);
        let elapsed = sequential(file.clone(), depth).await;
        let what = format!("seq 1 MiB QD{depth}, overwrite, 1 sync");
        report(&what, vec![elapsed.as_micros() as u64], FILE_BYTES, elapsed);
        let _ = std::fs::remove_file(&path);
    }
}

async fn write_only(file: &DmaFile, size: usize) {
    let mut us = Vec::with_capacity(CYCLES);
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..CYCLES {
        let t = Instant::now();
        write(file, size, at).await;
        us.push(t.elapsed().as_micros() as u64);
        at = (at + size as u64) % FILE_BYTES;
    }
    let what = format!("write {} KiB (no sync)", size >> 10);
    report(&what, us, (CYCLES * size) as u64, start.elapsed());
}

async fn write_sync(file: &DmaFile, size: usize) {
    let mut us = Vec::with_capacity(CYCLES);
    let mut sync_us = Vec::with_capacity(CYCLES);
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..CYCLES {
        let t = Instant::now();
        write(file, size, at).await;
        let s = Instant::now();
        file.fdatasync().await.expect("sync");
        sync_us.push(s.elapsed().as_micros() as u64);
        us.push(t.elapsed().as_micros() as u64);
        at = (at + size as u64) % FILE_BYTES;
    }
    let elapsed = start.elapsed();
    report(
        &format!("write {} KiB + fdatasync", size >> 10),
        us,
        (CYCLES * size) as u64,
        elapsed,
    );
    report("  of which fdatasync", sync_us, 0, elapsed);
}

/// Writes back to back; after each write a sync starts as soon as fewer than
/// `syncs_max` are running. A write's "durable" time runs from its start to the end of
/// the first sync that started after it completed. With `blocking`, the syncs are
/// `fdatasync` calls on glommio's blocking thread pool (through a second descriptor of
/// that file) instead of io_uring operations.
async fn pipelined(file: &Rc<DmaFile>, size: usize, syncs_max: usize, blocking: Option<&Path>) {
    let syncer = blocking.map(|p| std::sync::Arc::new(std::fs::File::open(p).expect("open")));
    let us = Rc::new(RefCell::new(Vec::with_capacity(CYCLES)));
    let running = Rc::new(Cell::new(0usize));
    let mut syncs = VecDeque::new();
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..CYCLES {
        let t = Instant::now();
        write(file, size, at).await;
        at = (at + size as u64) % FILE_BYTES;
        while running.get() >= syncs_max {
            let oldest: glommio::task::JoinHandle<()> = syncs.pop_front().expect("a sync runs");
            oldest.await;
        }
        running.set(running.get() + 1);
        let (f, us, running) = (file.clone(), us.clone(), running.clone());
        let syncer = syncer.clone();
        syncs.push_back(
            glommio::spawn_local(async move {
                match syncer {
                    Some(std_file) => glommio::executor()
                        .spawn_blocking(move || std_file.sync_data())
                        .await
                        .expect("sync"),
                    None => f.fdatasync().await.expect("sync"),
                }
                us.borrow_mut().push(t.elapsed().as_micros() as u64);
                running.set(running.get() - 1);
            })
            .detach(),
        );
    }
    for h in syncs {
        h.await;
    }
    let how = if blocking.is_some() {
        "blocking pool"
    } else {
        "io_uring"
    };
    let what = format!(
        "write {} KiB, next during sync, {syncs_max} sync(s), {how}",
        size >> 10
    );
    let us = us.borrow().clone();
    report(&what, us, (CYCLES * size) as u64, start.elapsed());
}

async fn rename_and_sync_dir(dir: &Path) {
    let mut us = Vec::new();
    let a = dir.join("probe.a");
    let b = dir.join("probe.b");
    std::fs::write(&a, b"x").expect("create");
    for i in 0..200 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let t = Instant::now();
        glommio::io::rename(from, to).await.expect("rename");
        let d = glommio::io::Directory::open(dir).await.expect("dir");
        d.sync().await.expect("dir sync");
        let _ = d.close().await;
        us.push(t.elapsed().as_micros() as u64);
    }
    report("rename + directory fsync", us, 0, Duration::from_secs(1));
}

/// The same cycles with plain threads and syscalls (no io_uring): one thread writes
/// (O_DIRECT `pwrite`) back to back and `syncers` threads each `fdatasync` whatever was
/// written before they started (0: the writer syncs after each write itself).
fn threads(path: &Path, size: usize, syncers: usize) {
    use std::{
        os::unix::fs::{FileExt, OpenOptionsExt},
        sync::{Arc, Mutex, mpsc},
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .expect("open O_DIRECT");
    let file = Arc::new(file);
    let mut backing = vec![b'T'; size + 4096];
    let skip = backing.as_ptr().align_offset(4096);
    let buf = &mut backing[skip..skip + size];
    let (tx, rx) = mpsc::channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let us = Arc::new(Mutex::new(Vec::with_capacity(CYCLES)));
    let mut handles = Vec::new();
    for _ in 0..syncers {
        let (file, rx, us) = (file.clone(), rx.clone(), us.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                // Take everything written so far, then sync it.
                let mut starts = Vec::new();
                {
                    let rx = rx.lock().expect("rx");
                    match rx.recv() {
                        Ok(s) => starts.push(s),
                        Err(_) => return,
                    }
                    starts.extend(rx.try_iter());
                }
                file.sync_data().expect("sync");
                let now = Instant::now();
                let mut us = us.lock().expect("us");
                us.extend(starts.iter().map(|s| (now - *s).as_micros() as u64));
            }
        }));
    }
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..CYCLES {
        let t = Instant::now();
        file.write_all_at(buf, at).expect("write");
        at = (at + size as u64) % FILE_BYTES;
        if syncers == 0 {
            file.sync_data().expect("sync");
            us.lock().expect("us").push(t.elapsed().as_micros() as u64);
        } else {
            tx.send(t).expect("send");
        }
    }
    drop(tx);
    for h in handles {
        h.join().expect("syncer");
    }
    let what = format!("threads: write {} KiB, {syncers} syncer(s)", size >> 10);
    let us = us.lock().expect("us").clone();
    report(&what, us, (CYCLES * size) as u64, start.elapsed());
}
