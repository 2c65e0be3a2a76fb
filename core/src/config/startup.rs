//! What would stop `hie run` from starting, or leave an item unable to do its work, found
//! before anything starts. `hie check` and `hie run` share this validation, so what the
//! engine would refuse, `hie check` refuses first, with file, line and item.
//!
//! Each kind of item owns its checks ([`HostKind::check`](crate::items::kind::HostKind::check),
//! in its file under `items/kinds/`); this module runs them and gives them
//! [`StartupChecks`] to report through. Today:
//! - `AckMode=Byte` (IRIS's single ACK byte) is not written by hie: an error on an enabled
//!   TCP service.
//! - `IPAddress` with IRIS's leading `!` makes an outbound adapter wait for the downstream
//!   system to connect in, instead of connecting out; hie only connects out: an error on an
//!   enabled TCP operation.
//! - `RetryInterval` below [`RETRY_INTERVAL_MIN_S`] would retry in a busy loop; hie waits
//!   the minimum and warns.
//! - A router with `BusinessRuleName` (hie does not run rules yet) would route nothing,
//!   and one with neither it nor `TargetConfigNames` (nor a `BadMessageHandler`) would
//!   complete every message with no target: errors on an enabled router.
//! - A router's `Validation` flag that hie does not check (only `d`, `m` and `z`): a
//!   warning naming it.
//! - A downstream host name is not resolved here: the operation resolves it each time it
//!   connects (as IRIS does), so a name that does not resolve now never stops the other
//!   items. `hie check` alone looks the names up ([`unresolved_hosts`], each kind's
//!   [`HostKind::connects_to`](crate::items::kind::HostKind::connects_to)) and warns.
//!
//! On a disabled item these problems are warnings: it does not run until enabled.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use super::Diagnostic;
use super::model::{Item, Production, SettingTarget};
use super::settings::RETRY_INTERVAL_MIN_S;
use super::validate::Findings;

/// Runs every check of this module: each running item's kind's
/// [`HostKind::check`](crate::items::kind::HostKind::check).
pub fn check(production: &Production, file: &Path, f: &mut Findings) {
    let mut checks = StartupChecks { file, f };
    for item in &production.items {
        if let Some((kind, settings)) = item.resolved() {
            kind.check(item, settings, &mut checks);
        }
    }
}

/// Where a kind's start-up checks report: file, line and item, an error on an enabled
/// item and a warning on a disabled one.
#[derive(Debug)]
pub struct StartupChecks<'a> {
    file: &'a Path,
    f: &'a mut Findings,
}

impl StartupChecks<'_> {
    /// An error at `setting`'s line (the item's line when it is not written) on an
    /// enabled item, a warning on a disabled one.
    pub fn report(&mut self, item: &Item, target: SettingTarget, setting: &str, message: String) {
        let line = item
            .raw(target)
            .get(setting)
            .map_or(item.source.line, |v| v.line);
        self.report_at(item, line, message);
    }

    /// A warning at `setting`'s line (the item's line when it is not written): the item
    /// runs, but not quite as configured.
    pub fn warn(&mut self, item: &Item, target: SettingTarget, setting: &str, message: String) {
        let line = item
            .raw(target)
            .get(setting)
            .map_or(item.source.line, |v| v.line);
        self.f.warn(self.file, line, Some(&item.name), message);
    }

    /// An error at the item's line on an enabled item, a warning on a disabled one.
    pub fn report_item(&mut self, item: &Item, message: String) {
        self.report_at(item, item.source.line, message);
    }

    fn report_at(&mut self, item: &Item, line: u32, message: String) {
        if item.enabled {
            self.f.error(self.file, line, Some(&item.name), message);
        } else {
            self.f.warn(self.file, line, Some(&item.name), message);
        }
    }

    /// A warning when an item that retries has a `RetryInterval` below
    /// [`RETRY_INTERVAL_MIN_S`]: it would retry in a busy loop, so hie waits the minimum.
    pub fn retry_interval(&mut self, item: &Item) {
        let Some(raw) = item.host_settings.get("RetryInterval") else {
            return;
        };
        if raw
            .value
            .trim()
            .parse::<i64>()
            .is_ok_and(|n| (0..i64::from(RETRY_INTERVAL_MIN_S)).contains(&n))
        {
            self.f.warn(
                self.file,
                raw.line,
                Some(&item.name),
                format!(
                    "RetryInterval {} would retry without pause; hie waits \
                     {RETRY_INTERVAL_MIN_S} s between attempts",
                    raw.value.trim()
                ),
            );
        }
    }
}

/// Warnings for the host names of enabled items that connect out that do not resolve now (each
/// name looked up once, blocking: for `hie check`, never for a shard). The operation
/// resolves its host each time it connects, so these are not errors.
pub fn unresolved_hosts(production: &Production, file: &Path) -> Vec<Diagnostic> {
    let mut resolved: HashMap<(&str, u16), bool> = HashMap::new();
    let mut warnings = Vec::new();
    for item in production.items.iter().filter(|i| i.enabled) {
        let Some((host, port)) = item.connects_to() else {
            continue;
        };
        let host = host.trim();
        if host.is_empty() || host.starts_with('!') || host.parse::<IpAddr>().is_ok() {
            continue;
        }
        let ok = *resolved.entry((host, port)).or_insert_with(|| {
            (host, port)
                .to_socket_addrs()
                .is_ok_and(|mut a| a.next().is_some())
        });
        if !ok {
            let line = item
                .adapter_settings
                .get("IPAddress")
                .map_or(item.source.line, |v| v.line);
            warnings.push(Diagnostic {
                file: file.to_path_buf(),
                line,
                item: Some(item.name.clone()),
                message: format!(
                    "IPAddress {host:?} does not resolve now; the operation looks it up each \
                     time it connects and retries per ReconnectRetry and ReplyCodeActions"
                ),
            });
        }
    }
    warnings
}
