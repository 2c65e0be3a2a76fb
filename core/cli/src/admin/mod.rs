//! The admin HTTP server of `hie run`: health probes, `/status`, Prometheus `/metrics`,
//! `/histograms`, item control and the held list (see [`http`] for the routes).
//!
//! It lives in the binary, not in the engine library, so that hyper and tokio are not
//! dependencies of the engine or of its benches. It runs on a thread of its own
//! (`hie-admin`) with a current-thread tokio runtime, never on a shard. Probes are
//! answered on that thread. A request that only reads (status, metrics, histograms, the
//! held list, one held message: [`api::ApiRequest::only_reads`]) runs on the runtime's
//! blocking pool through an [`hie_core::engine::reader::EngineReader`], up to
//! [`ADMIN_READS_AT_ONCE_MAX`] at once, so a scrape does not wait behind a slow request.
//! Every other request (item commands, resend, discard, stop) is handed to the main
//! thread, which owns the [`hie_core::engine::RunningEngine`] and answers them one at a
//! time. Both wait for the shards' answers ([`hie_core::engine::shard_call`]); the tokio
//! thread itself only awaits them, with the request's deadline, so a shard call never
//! blocks it (a timed-out request drops its receiver, and with it its waker).
//!
//! Address: `hie run --admin ADDR`, else the production's engine setting
//! `admin_address`, else [`ADMIN_ADDRESS_DEFAULT`]; `--admin none` turns it off. The
//! listener is bound before the production starts (so the probes answer during
//! recovery, and a port in use stops `hie run` at once with a clear error). The bound
//! address is printed (`admin ADDR`, before `ready`) and written to
//! `DATA_DIR/`[`ADMIN_ADDRESS_FILE`] for `hie ctl`.
//!
//! Token: `--admin-token-file FILE` or the engine setting `admin_token_file`; every
//! request but `/health/*` must then carry `Authorization: Bearer TOKEN` (the file's
//! content, surrounding whitespace trimmed).
//!
//! Limits (each named in [`http`]): connections at once, request header bytes, request
//! body bytes, header read timeout, per-request deadline, connection lifetime; requests
//! waiting for the main thread ([`ADMIN_REQUESTS_QUEUED_MAX`]; one more is answered 503);
//! reads answered at once ([`ADMIN_READS_AT_ONCE_MAX`]; more wait for a turn, within
//! their deadline, each on its own connection).

pub mod api;
pub mod client;
mod http;
pub mod prometheus;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Receiver;
use hie_core::config::{Diagnostic, Production, SettingTarget};

pub use api::{ApiRequest, ApiResponse};

/// The admin address when neither `--admin` nor the production sets one.
pub const ADMIN_ADDRESS_DEFAULT: &str = "127.0.0.1:9090";
/// The file in the data directory that holds the admin address while `hie run` runs.
pub const ADMIN_ADDRESS_FILE: &str = "admin.address";
/// Requests waiting for the main thread to answer them.
pub const ADMIN_REQUESTS_QUEUED_MAX: usize = 16;
/// Requests that only read answered at once (threads of the admin runtime's blocking
/// pool); more wait for one of them to finish.
pub const ADMIN_READS_AT_ONCE_MAX: usize = 4;

/// A request for the main thread and where its answer goes.
pub type Pending = (ApiRequest, tokio::sync::oneshot::Sender<ApiResponse>);

/// Where the production is, as the HTTP thread sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Recovering the WALs and opening the services.
    Starting = 0,
    Running = 1,
    Stopping = 2,
}

/// What the HTTP thread shares with the main thread.
#[derive(Debug)]
pub struct Shared {
    phase: AtomicU8,
    token: Option<String>,
    requests: crossbeam_channel::Sender<Pending>,
    /// The answers to requests that only read, once the production runs.
    reads: OnceLock<Arc<api::Reads>>,
    /// Turns to answer them ([`ADMIN_READS_AT_ONCE_MAX`]).
    reading: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Stopping,
        }
    }
}

/// The admin settings of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    pub address: SocketAddr,
    pub token_file: Option<PathBuf>,
}

/// The admin settings from `--admin` / `--admin-token-file` and the production;
/// `Ok(None)`: turned off.
pub fn settings(
    production: &Production,
    address: Option<&str>,
    token_file: Option<&Path>,
) -> Result<Option<AdminSettings>, String> {
    let address = match address {
        Some("none") => return Ok(None),
        Some(text) => text
            .parse()
            .map_err(|_| format!("--admin {text:?} is not an ip:port address or `none`"))?,
        None => match production.engine.admin_address {
            Some(address) => address,
            None => ADMIN_ADDRESS_DEFAULT.parse().expect("a valid constant"),
        },
    };
    let token_file = token_file
        .map(Path::to_path_buf)
        .or_else(|| production.engine.admin_token_file.clone());
    Ok(Some(AdminSettings {
        address,
        token_file,
    }))
}

/// Reads a bearer token file: its content, whitespace around it trimmed, not empty.
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the admin token file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the admin token file {} is empty", path.display()));
    }
    Ok(token.to_string())
}

/// What `hie check` can tell of the admin API now, as `hie run` would meet it (with its
/// default address unless the production names one): a token file that cannot be read
/// or is empty (an error: `hie run` refuses to start), and an address something listens
/// on now (a warning: it may be free by the time `hie run` starts).
pub fn check(production: &Production, file: &Path) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let diagnostic = |message: String| Diagnostic {
        file: file.to_path_buf(),
        line: 0,
        item: None,
        message,
    };
    let Ok(Some(settings)) = settings(production, None, None) else {
        return (errors, warnings);
    };
    if let Some(path) = &settings.token_file
        && let Err(e) = read_token(path)
    {
        errors.push(diagnostic(format!("admin_token_file: {e}")));
    }
    if production.engine.admin_address.is_none() {
        // validate.rs checks a port the production names; the default one is ours.
        warnings.extend(
            services_on(production, settings.address.port()).map(|(item, line)| Diagnostic {
                file: file.to_path_buf(),
                line,
                item: Some(item.to_string()),
                message: format!(
                    "port {} is the admin API's default port ({ADMIN_ADDRESS_DEFAULT}): \
                     hie run will not start unless admin_address or --admin names another",
                    settings.address.port()
                ),
            }),
        );
    }
    if in_use(settings.address) {
        warnings.push(diagnostic(format!(
            "something listens on the admin address {} now; hie run will not start \
             unless it is free by then or --admin names another",
            settings.address
        )));
    }
    (errors, warnings)
}

/// The enabled items whose adapter `Port` is `port`, with the setting's line.
fn services_on(production: &Production, port: u16) -> impl Iterator<Item = (&str, u32)> {
    production
        .items
        .iter()
        .filter(|i| i.enabled)
        .filter_map(move |item| {
            let value = item.raw(SettingTarget::Adapter).get("Port")?;
            (value.value.trim().parse::<u16>().ok()? == port)
                .then_some((item.name.as_str(), value.line))
        })
}

/// True when something accepts connections at `address` now (asked by connecting, so
/// that the check itself never holds the port).
fn in_use(address: SocketAddr) -> bool {
    if address.port() == 0 {
        return false;
    }
    let mut target = address;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    std::net::TcpStream::connect_timeout(&target, IN_USE_CONNECT_TIMEOUT).is_ok()
}

/// How long `hie check` waits to learn whether the admin address is in use.
const IN_USE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// The running admin server: its address and the requests for the main thread.
#[derive(Debug)]
pub struct AdminServer {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    requests: Receiver<Pending>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminServer {
    /// Binds `settings.address` and serves it on the `hie-admin` thread. `Err` says why
    /// (the port is in use, the token file cannot be read).
    pub fn start(settings: &AdminSettings) -> Result<AdminServer, String> {
        let token = settings.token_file.as_deref().map(read_token).transpose()?;
        let listener = std::net::TcpListener::bind(settings.address).map_err(|e| {
            format!(
                "cannot serve the admin API on {}: {e} (choose another with --admin ADDR or \
                 the engine setting admin_address, or turn it off with --admin none)",
                settings.address
            )
        })?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (requests_tx, requests) = crossbeam_channel::bounded(ADMIN_REQUESTS_QUEUED_MAX);
        let shared = Arc::new(Shared {
            phase: AtomicU8::new(Phase::Starting as u8),
            token,
            requests: requests_tx,
            reads: OnceLock::new(),
            reading: Arc::new(tokio::sync::Semaphore::new(ADMIN_READS_AT_ONCE_MAX)),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hie-admin".into())
            .spawn(move || http::run(listener, serving, stopped))
            .map_err(|e| format!("cannot start the admin thread: {e}"))?;
        Ok(AdminServer {
            address,
            shared,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Requests waiting for the main thread.
    pub fn requests(&self) -> &Receiver<Pending> {
        &self.requests
    }

    /// Answers requests that only read with `reads` from now on (before
    /// [`Phase::Running`]; once).
    pub fn serve_reads(&self, reads: Arc<api::Reads>) {
        let _ = self.shared.reads.set(reads);
    }

    pub fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as u8, Ordering::Release);
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.set_phase(Phase::Stopping);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
