//! `EnsLib.HL7.Operation.FileOperation`: writes each message of its queue to a file in
//! `FilePath`, named by `Filename` (IRIS tokens, see [`super::filename`]).
//!
//! Each message is written as received (segments end in CR), then ended as `Framing`
//! says (IRIS's default `AsciiLF`: a line feed after the last segment's CR), so messages
//! written back to back in one file stay apart. A message whose sender left off the last
//! segment's CR gets one first, so no message is glued onto the next. Framings written:
//! `None` (nothing added), `AsciiLF`, `AsciiCR`, `AsciiCRLF`, `Ascii<n>[/<n>]` (those
//! bytes), `MLLP` and `MLLP<n>/<n>` (a start byte before, an end byte and CR after).
//! `Overwrite` false (the IRIS default) appends to an existing file
//! of the same name, true replaces it. A message is recorded `Completed` only after its
//! file is synced to disk (`fdatasync`): an acknowledged message is never lost between the
//! WAL and the output file. Messages are written in batches (up to [`WRITE_BATCH_MAX`]),
//! one sync per file per batch. File I/O runs on glommio's blocking thread pool, never on
//! the shard. A write error is retried every `RetryInterval` until `FailureTimeout`, then
//! the message is recorded `Failed`.
//!
//! At each start the instance makes sure `FilePath` exists (creating it) and is a
//! directory. If not (a path through a regular file, a mount that is missing and cannot
//! be created) it takes no message and ends with [`WorkerExit::Failed`]: its restart
//! policy starts it again after `RestartDelay`, and the messages wait in its queue.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Framing;
use crate::engine::metrics::Stage;
use crate::engine::runtime::{Phase, Shard};
use crate::envelope::{Envelope, ItemId, OriginRecord};
use crate::items::error_spell::{self, ErrorSpell};
use crate::items::filename::{LocalTime, expand};
use crate::items::kinds::hl7_file_operation::FileOperationPlan;
use crate::items::{WorkerExit, alert, next_entry, requeue};
use crate::queue::LocalQueue;

/// Most messages written per batch.
pub const WRITE_BATCH_MAX: usize = 256;

/// The bytes written before and after a message (after its last segment's CR).
fn frame_bytes(framing: Framing) -> (Option<u8>, Vec<u8>) {
    match framing {
        Framing::AsciiLf => (None, vec![b'\n']),
        Framing::AsciiCr => (None, vec![b'\r']),
        Framing::AsciiCrLf => (None, vec![b'\r', b'\n']),
        Framing::AsciiBytes { first, second } => {
            (None, [Some(first), second].into_iter().flatten().collect())
        }
        Framing::Mllp => (Some(0x0b), vec![0x1c, b'\r']),
        Framing::MllpBytes { start, end } => (Some(start), vec![end, b'\r']),
        // Validation admits only the framings above and `None` for a file operation.
        _ => (None, Vec::new()),
    }
}

/// Writes one message to `out` between `start` and `end` (see [`frame_bytes`]).
fn write_framed(
    out: &mut impl Write,
    (start, end): (Option<u8>, &[u8]),
    bytes: &[u8],
) -> std::io::Result<()> {
    if let Some(start) = start {
        out.write_all(&[start])?;
    }
    out.write_all(bytes)?;
    if !bytes.ends_with(b"\r") {
        out.write_all(b"\r")?;
    }
    out.write_all(end)
}

/// Writes `files` (name → message bytes in order) under `dir`, each message framed,
/// syncing each file once.
fn write_files(
    dir: &Path,
    files: &BTreeMap<String, Vec<Arc<[u8]>>>,
    overwrite: bool,
    framing: Framing,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (start, end) = frame_bytes(framing);
    for (name, messages) in files {
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!overwrite)
            .truncate(overwrite)
            .open(&path)?;
        let mut out = std::io::BufWriter::new(file);
        for bytes in messages {
            write_framed(&mut out, (start, &end), bytes)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
    }
    // A new file's name is durable only once its directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

/// The messages of `batch` grouped by the file each goes to, in order.
fn plan_files(dir: &Path, spec: &str, batch: &[Envelope]) -> BTreeMap<String, Vec<Arc<[u8]>>> {
    let now = LocalTime::now();
    let mut files: BTreeMap<String, Vec<Arc<[u8]>>> = BTreeMap::new();
    for env in batch {
        // A counter (`%+`, `%!+`) gives each message of the batch a name of its own.
        let name = expand(spec, &env.origin_name, &now, |n| {
            files.contains_key(n) || dir.join(n).exists()
        });
        files.entry(name).or_default().push(Arc::clone(&env.bytes));
    }
    files
}

/// Creates `dir` if it is missing; `Err` when it cannot be made or is not a directory.
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if std::fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::other("not a directory"))
    }
}

/// Runs one file operation instance until its queue is closed at shutdown, or fails at
/// its start when `FilePath` is not a directory it can make.
pub async fn run(
    shard: Rc<Shard>,
    item: ItemId,
    queue: Rc<LocalQueue<Envelope>>,
    plan: FileOperationPlan,
) -> WorkerExit {
    let dir = PathBuf::from(&plan.settings.file_path);
    let dir_for_io = dir.clone();
    let prepared = glommio::executor()
        .spawn_blocking(move || prepare_dir(&dir_for_io))
        .await;
    if let Err(e) = prepared {
        return WorkerExit::Failed {
            reason: format!("FilePath {} cannot be used: {e}", dir.display()),
            worked: false,
        };
    }
    let spec = if plan.settings.filename.is_empty() {
        "%f_%Q".to_string()
    } else {
        plan.settings.filename.clone()
    };
    let mut batch: Vec<Envelope> = Vec::with_capacity(WRITE_BATCH_MAX);
    let mut spell = ErrorSpell::new(plan.settings.alert_retry_grace_s);
    loop {
        let Some(first) = next_entry(&shard, item, &queue).await else {
            return WorkerExit::Stopped;
        };
        batch.push(first);
        while batch.len() < WRITE_BATCH_MAX {
            match queue.try_pop() {
                Some(env) => batch.push(env),
                None => break,
            }
        }
        let taken = batch.len();
        shard.work_started(taken);
        let processed = &shard.counters(item).processed;
        processed.set(processed.get() + taken as u64);
        for env in &batch {
            shard.hook_before(item, env);
        }
        let first_attempt = Instant::now();
        loop {
            let files = plan_files(&dir, &spec, &batch);
            let dir_for_io = dir.clone();
            let (overwrite, framing) = (plan.settings.overwrite, plan.settings.framing);
            let started = Instant::now();
            let written = glommio::executor()
                .spawn_blocking(move || write_files(&dir_for_io, &files, overwrite, framing))
                .await;
            match written {
                Ok(()) => {
                    if spell.cleared() {
                        error_spell::cleared(&shard, item);
                    }
                    for env in batch.drain(..) {
                        shard
                            .metrics()
                            .record_since(item, Stage::RoundTrip, started);
                        shard.record(&env, OriginRecord::Completed);
                    }
                    break;
                }
                Err(e) => {
                    let expired = plan
                        .failure_timeout
                        .is_some_and(|limit| first_attempt.elapsed() >= limit);
                    let what = format!("cannot write to {}: {e}", dir.display());
                    if expired {
                        for env in batch.drain(..) {
                            alert(&shard, item, &env, &what);
                            shard.record(
                                &env,
                                OriginRecord::Failed {
                                    reason: what.clone(),
                                },
                            );
                        }
                        break;
                    }
                    for env in &batch {
                        shard.hook_error(item, env, &what);
                    }
                    if shard.plan().item(item).alert_on_error
                        && let Some(lasted) = spell.failed(Instant::now())
                    {
                        error_spell::raise(&shard, item, lasted, &format!("retrying: {what}"));
                    }
                    let retries = &shard.counters(item).retries;
                    retries.set(retries.get() + 1);
                    tracing::warn!(item = %shard.plan().item(item).name, "{what}; retrying in {:?}", plan.retry_interval);
                    let interrupted = futures_lite::future::or(
                        async {
                            glommio::timer::sleep(plan.retry_interval).await;
                            false
                        },
                        async {
                            futures_lite::future::or(
                                shard.states().changed(item),
                                shard.until_phase(Phase::Stop),
                            )
                            .await;
                            true
                        },
                    )
                    .await;
                    if interrupted {
                        // Back at the head of the queue, in order (at shutdown they stay
                        // open in the WAL for the next start).
                        for env in batch.drain(..).rev() {
                            requeue(&shard, &queue, env);
                        }
                        break;
                    }
                }
            }
        }
        shard.work_ended(taken);
        if shard.phase() >= Phase::Stop {
            return WorkerExit::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(framing: Framing, bytes: &[u8]) -> Vec<u8> {
        let (start, end) = frame_bytes(framing);
        let mut out = Vec::new();
        write_framed(&mut out, (start, &end), bytes).unwrap();
        out
    }

    #[test]
    fn every_message_ends_with_its_segment_cr_and_the_framing() {
        assert_eq!(
            framed(Framing::AsciiLf, b"MSH|a\rPID|b"),
            b"MSH|a\rPID|b\r\n"
        );
        assert_eq!(framed(Framing::AsciiLf, b"MSH|a\r"), b"MSH|a\r\n");
        assert_eq!(framed(Framing::None, b"MSH|a"), b"MSH|a\r");
        assert_eq!(framed(Framing::AsciiCrLf, b"MSH|a\r"), b"MSH|a\r\r\n");
        let bytes = Framing::AsciiBytes {
            first: 28,
            second: Some(13),
        };
        assert_eq!(framed(bytes, b"MSH|a\r"), b"MSH|a\r\x1c\r");
        assert_eq!(framed(Framing::Mllp, b"MSH|a"), b"\x0bMSH|a\r\x1c\r");
    }
}
