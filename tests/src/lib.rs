//! hie-tests: helpers shared by the end-to-end tests in `tests/tests/`.
//!
//! The tests run the real binaries (`hie`, `hie-loadgen`) as child processes. [`bin`] finds
//! a binary in the target directory this test was built into, building it first if it is
//! missing, so `cargo test --workspace` needs no extra step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared/corpus` beside the project, as the test data README asks.
pub fn corpus_dir() -> PathBuf {
    workspace_root().join("../shared/corpus")
}

/// The path of binary `name` (`hie`, `hie-loadgen`) built in the same profile as this test.
///
/// The first call in a test process runs `cargo build` for it, so a test never runs a
/// stale binary (cargo does not rebuild other packages' binaries for a test). Panics with
/// a clear message if it cannot be built: a test without its binary says nothing useful.
pub fn bin(name: &str) -> PathBuf {
    // current_exe is target/<profile>/deps/<test>-<hash>; binaries sit in target/<profile>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let release = profile_dir.file_name().is_some_and(|p| p == "release");
    built_bin(profile_dir, name, release)
}

/// The path of binary `name` built in release mode, built on first use: for tests whose
/// subject is the engine at a production rate (the soak test), which a debug build of
/// the engine and the load generator on two cores does not reach.
pub fn release_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("test binary lives in target/<profile>/deps");
    built_bin(&target_dir.join("release"), name, true)
}

fn built_bin(profile_dir: &Path, name: &str, release: bool) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, bool)>> = std::sync::Mutex::new(Vec::new());
    let path = profile_dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|(b, r)| b == name && *r == release) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "-p", name, "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building {name} failed");
        built.push((name.to_string(), release));
    }
    assert!(path.exists(), "{} not found after build", path.display());
    path
}

/// A free TCP port on 127.0.0.1 for a test's server, bound and released, taken below the
/// kernel's ephemeral range (`ip_local_port_range`) so that no client connection, open or
/// in TIME-WAIT, can hold it when the server binds it: a port the kernel handed out as
/// ephemeral was often taken again by the thousands of client connections the load
/// tests open, and the engine's bind then failed with "address in use". Ports are tried
/// from a per-process starting point, so parallel test processes rarely meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    let high = ephemeral_low().clamp(LOW + 1_000, u32::from(u16::MAX));
    let span = high - LOW;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = (LOW + offset) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port between {LOW} and {high}");
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Polls `done` every 10 ms until it is true or `timeout` passes; returns the last answer.
pub fn wait_until(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL after 10 s) when dropped, so a
/// failing test leaves nothing running.
#[derive(Debug)]
pub struct ChildGuard {
    pub child: Option<std::process::Child>,
}

impl ChildGuard {
    pub fn new(child: std::process::Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if it did not.
    pub fn wait_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait up to `timeout`, then SIGKILL; the exit status if it stopped by itself.
    pub fn stop(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        self.signal(libc::SIGTERM);
        let status = self.wait_timeout(timeout);
        if status.is_none() {
            self.kill();
        }
        status
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop(std::time::Duration::from_secs(10));
        }
    }
}

/// A running `hie run`.
#[derive(Debug)]
pub struct Hie {
    pub process: ChildGuard,
    /// Lines `listening ITEM ADDRESS` printed before `ready`.
    pub listening: Vec<(String, String)>,
    /// The admin API's address (line `admin ADDRESS`), unless it is off.
    pub admin: Option<String>,
    pub stderr_path: PathBuf,
}

impl Hie {
    /// Starts `hie run CONFIG --data-dir DATA [ARGS…]` and waits (up to 60 s) for `ready`.
    /// Its stderr (the log) goes to `DATA/../hie-N.log`. Unless ARGS name `--admin`, the
    /// admin API listens on a free port (`--admin 127.0.0.1:0`), so tests run side by side.
    pub fn start(config: &Path, data_dir: &Path, args: &[&str]) -> Hie {
        Hie::start_binary(&bin("hie"), config, data_dir, args)
    }

    /// [`Hie::start`] with the `hie` binary at `hie` (e.g. [`release_bin`]'s).
    pub fn start_binary(hie: &Path, config: &Path, data_dir: &Path, args: &[&str]) -> Hie {
        use std::io::BufRead;
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr_path = data_dir
            .parent()
            .unwrap_or(data_dir)
            .join(format!("hie-{}-{n}.log", std::process::id()));
        let stderr = std::fs::File::create(&stderr_path).expect("create log file");
        let admin: &[&str] = if args.iter().any(|a| a.starts_with("--admin")) {
            &[]
        } else {
            &["--admin", "127.0.0.1:0"]
        };
        let child = Command::new(hie)
            .arg("run")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .args(admin)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn hie run");
        let mut process = ChildGuard::new(child);
        let stdout = process.child.as_mut().unwrap().stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut listening = Vec::new();
            let mut admin = None;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "ready" {
                    let _ = tx.send((listening.clone(), admin.clone()));
                } else if let Some(address) = line.strip_prefix("admin ") {
                    admin = Some(address.to_string());
                } else if let Some(rest) = line.strip_prefix("listening ") {
                    let mut parts = rest.splitn(2, ' ');
                    listening.push((
                        parts.next().unwrap_or("").to_string(),
                        parts.next().unwrap_or("").to_string(),
                    ));
                }
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok((listening, admin)) => Hie {
                process,
                listening,
                admin,
                stderr_path,
            },
            Err(_) => {
                process.kill();
                panic!(
                    "hie run did not become ready; its log:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// A running `hie-loadgen sink` on a free port.
#[derive(Debug)]
pub struct Sink {
    pub process: ChildGuard,
    pub port: u16,
}

impl Sink {
    /// Starts `hie-loadgen sink --listen 127.0.0.1:PORT [ARGS…]` and waits until it
    /// accepts connections.
    pub fn start(port: u16, args: &[&str]) -> Sink {
        let child = Command::new(bin("hie-loadgen"))
            .args(["sink", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn hie-loadgen sink");
        let process = ChildGuard::new(child);
        let up = wait_until(std::time::Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "the sink did not start listening on {port}");
        Sink { process, port }
    }

    /// Stops the sink (SIGTERM) and returns its stdout (its report).
    pub fn finish(mut self) -> String {
        use std::io::Read;
        self.process.signal(libc::SIGTERM);
        let mut out = String::new();
        if let Some(child) = self.process.child.as_mut()
            && let Some(stdout) = child.stdout.as_mut()
        {
            let _ = stdout.read_to_string(&mut out);
        }
        self.process
            .wait_timeout(std::time::Duration::from_secs(10));
        self.process.kill();
        out
    }
}

/// A blocking MLLP client for tests: one frame out, one frame back.
#[derive(Debug)]
pub struct MllpConn {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl MllpConn {
    pub fn connect(addr: &str) -> std::io::Result<MllpConn> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(MllpConn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Wraps a stream already connected (from a chosen source address, say).
    pub fn from_stream(stream: std::net::TcpStream) -> MllpConn {
        MllpConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one framed message.
    pub fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut frame = Vec::with_capacity(msg.len() + 3);
        frame.push(0x0b);
        frame.extend_from_slice(msg);
        frame.extend_from_slice(&[0x1c, 0x0d]);
        self.stream.write_all(&frame)
    }

    /// Reads the next frame's payload.
    pub fn receive(&mut self) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        loop {
            if let Some(start) = self.buf.iter().position(|&b| b == 0x0b)
                && let Some(end) = self.buf[start..].windows(2).position(|w| w == [0x1c, 0x0d])
            {
                let payload = self.buf[start + 1..start + end].to_vec();
                self.buf.drain(..start + end + 2);
                return Ok(payload);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one message and returns the reply.
    pub fn exchange(&mut self, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        self.send(msg)?;
        self.receive()
    }
}

/// Field `n` (1-based, MSH-1 being the separator) of the first segment called `segment`,
/// read naively with the message's field separator (MSH's 4th byte) and CR/LF segment
/// ends; for checking ACKs in tests.
pub fn field(msg: &[u8], segment: &str, n: usize) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let sep = text.strip_prefix("MSH")?.chars().next()?;
    let line = text
        .split(['\r', '\n'])
        .find(|l| l.starts_with(segment) && l[3..].starts_with(sep))?;
    let fields: Vec<&str> = line.split(sep).collect();
    let index = if segment == "MSH" { n - 1 } else { n };
    fields.get(index).map(|f| f.to_string())
}

/// The Python interpreter of the shared venv `target/pyenv` with python-hl7 (PyPI `hl7`)
/// installed, creating the venv and installing the package when they are missing. `None`
/// when `python3` or the package index is unavailable. Idempotent, and shared by every
/// test that needs python-hl7 (its MLLP client and its asyncio MLLP server).
pub fn python_hl7() -> Option<PathBuf> {
    let venv = workspace_root().join("target/pyenv");
    let python = venv.join("bin/python");
    let has_hl7 = |py: &Path| {
        Command::new(py)
            .args(["-c", "import hl7.mllp"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.exists() && has_hl7(&python) {
        return Some(python);
    }
    if !python.exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !created {
            return None;
        }
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "hl7==0.4.5"])
        .status()
        .is_ok_and(|s| s.success());
    (installed && has_hl7(&python)).then_some(python)
}
