//! `EnsLib.HL7.Service.FileService`: polls `FilePath` every `CallInterval` seconds for
//! files matching `FileSpec`, stores every message of each file in the WAL, passes them to
//! `TargetConfigNames`, then moves the file to `ArchivePath` (or deletes it when no
//! archive is set).
//!
//! - `FileSpec` is one or more wildcard patterns separated by `;` (`*` any run of
//!   characters, `?` one character), matched case-sensitively against file names.
//! - Files are taken oldest name first. A file modified less than [`FILE_SETTLE`] ago is
//!   left for the next poll, so a file still being written is not read half-done.
//! - A file may hold one message, several back to back, or an FHS/BHS batch; each message
//!   is stored and routed on its own (`BatchHandling` `1Session`, `Batch` and `Indiv` alike,
//!   as in the TCP service). With `Whole`, a file that begins with `FHS`/`BHS` is one
//!   document: stored as one WAL record and routed as it is, headers and trailers included
//!   (IRIS: "accumulate and send the whole batch as one composite document"); one message
//!   of it that is refused refuses the whole file.
//! - A message whose bytes break the character set its MSH-18 declares
//!   (`CharsetValidation`) is handled as one that is not HL7.
//! - A file is archived or deleted only once all its messages are durable in the WAL; a
//!   crash in between means the file is read again at the next start (at-least-once).
//! - A message that is not HL7 is logged (ALERT with `AlertOnError`) and counted as
//!   rejected; the rest of the file is processed, and then the file is neither archived
//!   nor deleted but kept in `FilePath` renamed `<name>.rejected` (`<name>.<n>.rejected`
//!   if that name is taken), which this service never reads again: the operator's list
//!   of what was refused is that directory, and the log names each refused message by
//!   its place in the file and its error (with the byte offset where the scanner gives
//!   one). (IRIS sends such a message to the service's `BadMessageHandler`; hie's HL7
//!   services have no `BadMessageHandler`, and the held list holds only stored messages.)
//! - A `FilePath` that cannot be listed is logged at each poll; with `AlertOnError` it
//!   alerts once it has stayed so for `AlertGracePeriod` ([`error_spell`]), and the alert
//!   clears at the next poll that lists it.
//! - Directory listing and file reads run on glommio's blocking thread pool.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hie_hl7::{Batch, Envelope, Message, ScanIndex};

use crate::config::{BatchHandling, CharsetValidation};
use crate::engine::control::ItemState;
use crate::engine::ingest::envelope;
use crate::engine::runtime::{Phase, Shard, partition_key};
use crate::envelope::{ItemId, MessageId};
use crate::items::error_spell::{self, ErrorSpell};
use crate::items::filename::{LocalTime, expand};
use crate::items::hl7_tcp_service::check_charset;
use crate::items::kinds::hl7_file_service::FileServicePlan;

/// How long a file must be left alone before it is read.
pub const FILE_SETTLE: Duration = Duration::from_millis(250);

/// `*` and `?` wildcard match of a whole name.
pub fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut star_n) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            star_n = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            star_n += 1;
            n = star_n;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// True when `name` matches any pattern of `spec` (`;`-separated; empty means `*`).
pub fn file_spec_matches(spec: &str, name: &str) -> bool {
    let mut patterns = spec
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .peekable();
    if patterns.peek().is_none() {
        return true;
    }
    patterns.any(|p| wildcard_match(p.as_bytes(), name.as_bytes()))
}

/// The suffix of a file kept because a message of it was refused.
pub const REJECTED_SUFFIX: &str = ".rejected";

/// Files of `dir` matching `spec` and settled, by name (a kept `.rejected` file never).
fn list_ready(dir: &Path, spec: &str) -> std::io::Result<Vec<PathBuf>> {
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(REJECTED_SUFFIX) || !file_spec_matches(spec, name) {
            continue;
        }
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_none_or(|age| age >= FILE_SETTLE);
        if settled {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Moves `file` into `archive` (a new name if one of the same name is there), or deletes
/// it when there is no archive.
fn archive_or_delete(file: &Path, archive: Option<&Path>) -> std::io::Result<()> {
    let Some(archive) = archive else {
        return std::fs::remove_file(file);
    };
    std::fs::create_dir_all(archive)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = expand("%f%!+(_a)", &name, &LocalTime::now(), |candidate| {
        archive.join(candidate).exists()
    });
    std::fs::rename(file, archive.join(target))
}

/// Renames `file` to `<name>.rejected` in its directory (`<name>.<n>.rejected` when that
/// is taken); returns the new path.
fn keep_rejected(file: &Path) -> std::io::Result<PathBuf> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = file.with_file_name(format!("{name}{REJECTED_SUFFIX}"));
    let mut n = 1;
    while target.exists() {
        target = file.with_file_name(format!("{name}.{n}{REJECTED_SUFFIX}"));
        n += 1;
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}

/// Runs one file service instance until services stop.
pub async fn run(shard: Rc<Shard>, item: ItemId, plan: FileServicePlan) {
    let settings = &plan.settings;
    let dir = PathBuf::from(&settings.file_path);
    let archive = settings
        .archive_path
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let interval = Duration::from_secs(u64::from(settings.call_interval_s.max(1)));
    let name = shard.plan().item(item).name.clone();
    let mut spell = ErrorSpell::new(settings.alert_grace_s);
    loop {
        if shard.phase() >= Phase::StopServices {
            return;
        }
        if shard.states().get(item) == ItemState::Running {
            let dir_io = dir.clone();
            let spec = settings.file_spec.clone();
            match glommio::executor()
                .spawn_blocking(move || list_ready(&dir_io, &spec))
                .await
            {
                Ok(files) => {
                    if spell.cleared() {
                        error_spell::cleared(&shard, item);
                    }
                    for file in files {
                        if shard.phase() >= Phase::StopServices
                            || shard.states().get(item) != ItemState::Running
                        {
                            break;
                        }
                        let taken = take_file(
                            &shard,
                            item,
                            &file,
                            archive.as_deref(),
                            (settings.charset_validation, settings.batch_handling),
                        );
                        if !taken.await {
                            break;
                        }
                    }
                }
                Err(e) => {
                    let what = format!("cannot list {}: {e}", dir.display());
                    tracing::warn!(item = %name, "{what}");
                    if shard.plan().item(item).alert_on_error
                        && let Some(lasted) = spell.failed(Instant::now())
                    {
                        error_spell::raise(&shard, item, lasted, &what);
                    }
                }
            }
        }
        // Sleep until the next poll, waking early for a state or phase change.
        futures_lite::future::or(
            glommio::timer::sleep(interval),
            futures_lite::future::or(shard.states().changed(item), shard.phase_changed()),
        )
        .await;
    }
}

/// Reads, stores and routes one file, then archives it (or keeps it as `.rejected`).
/// False when the WAL failed (the file stays for the next poll).
async fn take_file(
    shard: &Rc<Shard>,
    item: ItemId,
    file: &Path,
    archive: Option<&Path>,
    (charset, batch): (CharsetValidation, BatchHandling),
) -> bool {
    let name = shard.plan().item(item).name.clone();
    let path = file.to_path_buf();
    let bytes = match glommio::executor()
        .spawn_blocking(move || std::fs::read(&path))
        .await
    {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(item = %name, "cannot read {}: {e}", file.display());
            return true;
        }
    };
    let origin: Arc<str> = Arc::from(
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let stored = if batch == BatchHandling::Whole && Batch::has_envelope(&bytes) {
        take_whole(shard, item, file, &bytes, &origin, charset).await
    } else {
        take_messages(shard, item, file, &bytes, &origin, charset).await
    };
    let Some(rejected) = stored else {
        return false;
    };
    let file_io = file.to_path_buf();
    let archive_io = archive.map(Path::to_path_buf);
    let done = glommio::executor()
        .spawn_blocking(move || {
            if rejected {
                keep_rejected(&file_io).map(Some)
            } else {
                archive_or_delete(&file_io, archive_io.as_deref()).map(|()| None)
            }
        })
        .await;
    match done {
        Ok(Some(kept)) => {
            tracing::warn!(item = %name, "{} kept as {}: it holds a refused message", file.display(), kept.display());
        }
        Ok(None) => {}
        Err(e) => {
            // It would be read again: better to stop polling than to duplicate every poll.
            tracing::error!(item = %name, "cannot archive, delete or keep {}: {e}; item stopped", file.display());
            shard.set_state(item, ItemState::Failed);
        }
    }
    true
}

/// Logs and counts message `index` (0-based) of `file`, refused for `e`.
fn reject(shard: &Shard, item: ItemId, file: &Path, index: usize, e: &dyn std::fmt::Display) {
    let c = &shard.counters(item).rejected;
    c.set(c.get() + 1);
    let name = &shard.plan().item(item).name;
    let what = format!("{} message {}: rejected: {e}", file.display(), index + 1);
    shard.metrics().note_error(item, &what);
    if shard.plan().item(item).alert_on_error {
        let alerts = &shard.counters(item).alerts;
        alerts.set(alerts.get() + 1);
        tracing::error!(target: "hie::alert", alert = "AlertOnError", item = %name, "ALERT {name}: {what}");
    } else {
        tracing::warn!(item = %name, "{what}");
    }
}

/// Each message of `bytes` stored and routed on its own. `Some(true)` when one was refused,
/// `None` when the WAL failed.
async fn take_messages(
    shard: &Rc<Shard>,
    item: ItemId,
    file: &Path,
    bytes: &[u8],
    origin: &Arc<str>,
    charset: CharsetValidation,
) -> Option<bool> {
    let mut rejected = false;
    for (index, raw) in Batch::new(bytes).enumerate() {
        let scanned = Message::scan(raw).and_then(|msg| {
            check_charset(&msg, charset)?;
            Ok(msg)
        });
        let msg = match scanned {
            Ok(msg) => msg,
            Err(e) => {
                reject(shard, item, file, index, &e);
                rejected = true;
                continue;
            }
        };
        let (id, targets) = match shard.receive(item, &msg).await {
            Ok(stored) => stored,
            Err(e) => {
                let name = &shard.plan().item(item).name;
                tracing::error!(item = %name, "cannot store {}: {e}; the file stays", file.display());
                return None;
            }
        };
        let scan = Some(Arc::new(msg.index()));
        let key = partition_key(&msg);
        route(shard, item, (id, targets), (raw, scan), origin, key).await;
    }
    Some(rejected)
}

/// `BatchHandling=Whole`: the file, a batch, stored and routed as one document once every
/// message of it is checked. `Some(true)` when one was refused (nothing stored), `None`
/// when the WAL failed.
async fn take_whole(
    shard: &Rc<Shard>,
    item: ItemId,
    file: &Path,
    bytes: &[u8],
    origin: &Arc<str>,
    charset: CharsetValidation,
) -> Option<bool> {
    for (index, raw) in Batch::new(bytes).enumerate() {
        let checked = Message::scan(raw).and_then(|msg| check_charset(&msg, charset));
        if let Err(e) = checked {
            let why = format!("{e}; the batch is taken whole, so none of it is stored");
            reject(shard, item, file, index, &why);
            return Some(true);
        }
    }
    let env = Envelope::of(bytes);
    let control_id = crate::engine::runtime::text_of(env.control_id());
    let meta = hie_persist::MessageMeta {
        message_type: env.header_id(),
        control_id: &control_id,
        partition_key: &control_id,
    };
    let stored = match shard.receive_document(item, bytes, meta).await {
        Ok(stored) => stored,
        Err(e) => {
            let name = &shard.plan().item(item).name;
            tracing::error!(item = %name, "cannot store {}: {e}; the file stays", file.display());
            return None;
        }
    };
    route(shard, item, stored, (bytes, None), origin, env.control_id()).await;
    Some(false)
}

/// Delivers stored document `id` (`raw`, with its `scan` when it is one message) to
/// `targets`.
async fn route(
    shard: &Rc<Shard>,
    item: ItemId,
    (id, targets): (MessageId, Vec<ItemId>),
    (raw, scan): (&[u8], Option<Arc<ScanIndex>>),
    origin: &Arc<str>,
    key: &[u8],
) {
    let Some(&first) = targets.first() else {
        return;
    };
    let bytes = (Arc::from(raw), scan);
    let env = envelope(id, bytes, item, Arc::clone(origin), first, key);
    shard.fan_out(env, &targets).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        assert!(wildcard_match(b"*.hl7", b"adt.hl7"));
        assert!(!wildcard_match(b"*.hl7", b"adt.hl7.tmp"));
        assert!(wildcard_match(b"a?c*", b"abcdef"));
        assert!(wildcard_match(b"*", b""));
        assert!(!wildcard_match(b"?", b""));
        assert!(wildcard_match(b"*a*b", b"xxaxxb"));
    }

    #[test]
    fn a_file_spec_lists_patterns_separated_by_semicolons() {
        assert!(file_spec_matches("*.hl7;*.txt", "x.txt"));
        assert!(!file_spec_matches("*.hl7;*.txt", "x.dat"));
        assert!(file_spec_matches("", "anything"));
    }

    #[test]
    fn archiving_never_overwrites_an_archived_file() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        for n in 0..2 {
            let file = dir.path().join("in.hl7");
            std::fs::write(&file, format!("MSH|{n}")).unwrap();
            archive_or_delete(&file, Some(&archive)).unwrap();
            assert!(!file.exists());
        }
        assert_eq!(
            std::fs::read_to_string(archive.join("in.hl7")).unwrap(),
            "MSH|0"
        );
        assert_eq!(
            std::fs::read_to_string(archive.join("in.hl7_a")).unwrap(),
            "MSH|1"
        );
    }
}
