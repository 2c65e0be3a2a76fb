//! Re-placing the open messages of shards that no longer run.
//!
//! A data directory keeps a `shard-N` WAL for every shard that ever ran. When the engine
//! starts on fewer shards (`--shards`, `[engine] shards`, or a machine with fewer cores),
//! shard `k` adopts the WAL of every missing shard `N` with `N % shards == k`: it copies
//! each open message, in that WAL's order, into its own WAL under a new id
//! (`MessageReceived`, then `Enqueued` for every delivery still owed, and `Suspended` for
//! a suspended one), durably, and only then closes the message in the old WAL with
//! `Discarded` records whose reason names the shard it moved to. The copies join this
//! shard's recovery, so they are delivered as if received here (the operation instance
//! still follows the partition key). Each target's deliveries keep the order of each WAL
//! and are merged by the time their messages were received, so a patient's message that
//! a shared port took on the missing shard before the next one on this shard stays ahead
//! of it.
//!
//! A crash between the two appends leaves a message open in both WALs: the next start
//! adopts it again (delivered at least once, never lost). A WAL that cannot be opened or
//! read stops the start with its directory named. The old directory stays (its closed
//! records are history for `hie inspect`); starting again on more shards finds it with
//! nothing open.
//!
//! Limits: at most [`ADOPT_BATCH_MAX`] messages per append.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hie_persist::{
    DeliveryState, MessageMeta, PendingDelivery, Record, RecoveredMessage, Recovery, Wal, WalConfig,
};

/// Most messages copied per append to the adopting WAL.
pub const ADOPT_BATCH_MAX: usize = 256;

/// The `shard-N` directories of `data_dir` with `N >= shards`, for each current shard
/// the ones it adopts (`N % shards`), in increasing `N`.
pub fn orphans(data_dir: &Path, shards: usize) -> std::io::Result<Vec<Vec<PathBuf>>> {
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shard-"))
            .and_then(|n| n.parse::<usize>().ok().filter(|k| k.to_string() == n))
        else {
            continue;
        };
        if n >= shards && entry.file_type()?.is_dir() {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    let mut by_shard = vec![Vec::new(); shards];
    for (n, path) in found {
        by_shard[n % shards].push(path);
    }
    Ok(by_shard)
}

/// One open message of an old WAL and the deliveries it is owed, in enqueue order.
struct Owed<'r> {
    message: &'r RecoveredMessage,
    deliveries: Vec<(&'r str, &'r PendingDelivery)>,
}

/// Moves every open message of the WAL in `dir` into `wal` (shard `index`) and adds the
/// copies to `recovery`; returns how many moved. `Err` names the directory.
pub async fn adopt(
    wal: &Wal,
    recovery: &mut Recovery,
    index: usize,
    dir: &Path,
    config: WalConfig,
) -> Result<usize, String> {
    let what = |e: &dyn std::fmt::Display| {
        format!(
            "shard {index}: cannot re-place the messages of {}, a shard that does not run \
             now: {e} (start with as many shards as there are shard-N directories to \
             deliver them from where they are)",
            dir.display()
        )
    };
    let (old, old_recovery) = Wal::open(dir, config).await.map_err(|e| what(&e))?;
    let owed = owed_in_order(&old_recovery);
    let reason = format!("moved to shard {index}: the engine runs on fewer shards now");
    let mut adopted = BTreeMap::new();
    for chunk in owed.chunks(ADOPT_BATCH_MAX) {
        copy(wal, recovery, &mut adopted, chunk)
            .await
            .map_err(|e| what(&e))?;
        close(&old, chunk, &reason).await.map_err(|e| what(&e))?;
    }
    old.close().await.map_err(|e| what(&e))?;
    for (target, theirs) in adopted {
        let ours = recovery.targets.remove(&target).unwrap_or_default();
        let merged = merge_by_receipt(ours, theirs, |id| {
            recovery.messages.get(&id).map_or(0, |m| m.timestamp_us)
        });
        recovery.targets.insert(target, merged);
    }
    Ok(owed.len())
}

/// Merges two lists of deliveries, each in its WAL's order, taking at each step the
/// one whose message was received first (`received_us` of its message id; ours on a
/// tie).
fn merge_by_receipt(
    ours: Vec<PendingDelivery>,
    theirs: Vec<PendingDelivery>,
    received_us: impl Fn(u64) -> u64,
) -> Vec<PendingDelivery> {
    let mut merged = Vec::with_capacity(ours.len() + theirs.len());
    let mut ours = ours.into_iter().peekable();
    let mut theirs = theirs.into_iter().peekable();
    loop {
        let take_ours = match (ours.peek(), theirs.peek()) {
            (Some(a), Some(b)) => received_us(a.message_id) <= received_us(b.message_id),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        let next = if take_ours {
            ours.next()
        } else {
            theirs.next()
        };
        merged.extend(next);
    }
}

/// The open messages of `recovery` in WAL order, each with its owed deliveries.
fn owed_in_order(recovery: &Recovery) -> Vec<Owed<'_>> {
    let mut deliveries: HashMap<u64, Vec<(&str, &PendingDelivery)>> = HashMap::new();
    for (target, pending) in &recovery.targets {
        for d in pending {
            deliveries
                .entry(d.message_id)
                .or_default()
                .push((target.as_str(), d));
        }
    }
    let mut owed: Vec<Owed<'_>> = recovery
        .messages
        .values()
        .map(|message| {
            let mut deliveries = deliveries.remove(&message.message_id).unwrap_or_default();
            deliveries.sort_by_key(|&(_, d)| d.enqueued_lsn);
            Owed {
                message,
                deliveries,
            }
        })
        .collect();
    owed.sort_by_key(|o| o.message.lsn);
    owed
}

/// Appends copies of `chunk` to `wal`, durably, and adds them to `recovery` (their
/// deliveries to `adopted`, per target, for [`merge_by_receipt`]).
async fn copy(
    wal: &Wal,
    recovery: &mut Recovery,
    adopted: &mut BTreeMap<String, Vec<PendingDelivery>>,
    chunk: &[Owed<'_>],
) -> Result<(), hie_persist::WalError> {
    let ids: Vec<u64> = chunk.iter().map(|_| wal.next_message_id()).collect();
    let mut records = Vec::new();
    for (owed, &message_id) in chunk.iter().zip(&ids) {
        let m = owed.message;
        records.push(Record::MessageReceived {
            message_id,
            source: &m.source,
            meta: MessageMeta {
                message_type: &m.message_type,
                control_id: &m.control_id,
                partition_key: &m.partition_key,
            },
            bytes: &m.bytes,
        });
        for &(target, _) in &owed.deliveries {
            records.push(Record::Enqueued { message_id, target });
        }
        for &(target, d) in &owed.deliveries {
            match &d.state {
                DeliveryState::Suspended { reason } => records.push(Record::Suspended {
                    message_id,
                    target,
                    reason,
                }),
                DeliveryState::Failed { reason } => records.push(Record::Failed {
                    message_id,
                    target,
                    reason,
                }),
                DeliveryState::Queued => {}
            }
        }
    }
    wal.append_many(&records).await?;
    for (owed, &message_id) in chunk.iter().zip(&ids) {
        let mut message = owed.message.clone();
        message.message_id = message_id;
        // Copied as received here: its parent's id was the old WAL's.
        message.parent = None;
        recovery.messages.insert(message_id, message);
        if owed.deliveries.is_empty() {
            recovery.unrouted.push(message_id);
        }
        for &(target, d) in &owed.deliveries {
            adopted
                .entry(target.to_string())
                .or_default()
                .push(PendingDelivery {
                    message_id,
                    enqueued_lsn: 0,
                    state: d.state.clone(),
                    state_us: d.state_us,
                });
        }
    }
    Ok(())
}

/// Closes the messages of `chunk` in their old WAL: `Discarded` for every owed delivery
/// (for the empty target of a message never routed), with `reason`.
async fn close(old: &Wal, chunk: &[Owed<'_>], reason: &str) -> Result<(), hie_persist::WalError> {
    let mut records = Vec::new();
    for owed in chunk {
        let message_id = owed.message.message_id;
        if owed.deliveries.is_empty() {
            records.push(Record::Discarded {
                message_id,
                target: "",
                reason,
            });
        }
        for &(target, _) in &owed.deliveries {
            records.push(Record::Discarded {
                message_id,
                target,
                reason,
            });
        }
    }
    old.append_many(&records).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(message_id: u64) -> PendingDelivery {
        PendingDelivery {
            message_id,
            enqueued_lsn: 0,
            state: DeliveryState::Queued,
            state_us: 0,
        }
    }

    #[test]
    fn merging_keeps_each_wal_order_and_interleaves_by_receipt() {
        // Ours: ids 1, 2, 3 received at 10, 30, 50; theirs: 101, 102 at 20, 60.
        let received = |id: u64| match id {
            1 => 10,
            2 => 30,
            3 => 50,
            101 => 20,
            102 => 60,
            _ => unreachable!(),
        };
        let merged = merge_by_receipt(
            vec![pending(1), pending(2), pending(3)],
            vec![pending(101), pending(102)],
            received,
        );
        let ids: Vec<u64> = merged.iter().map(|d| d.message_id).collect();
        assert_eq!(ids, [1, 101, 2, 3, 102]);
        // A WAL's own order wins over its times: 2 stays before 1 even if received later.
        let merged = merge_by_receipt(vec![pending(2), pending(1)], Vec::new(), received);
        let ids: Vec<u64> = merged.iter().map(|d| d.message_id).collect();
        assert_eq!(ids, [2, 1]);
    }

    fn received<'a>(message_id: u64, bytes: &'a [u8]) -> Record<'a> {
        Record::MessageReceived {
            message_id,
            source: "In",
            meta: MessageMeta {
                message_type: "ADT^A01",
                control_id: "C",
                partition_key: "P1",
            },
            bytes,
        }
    }

    #[test]
    fn adoption_moves_open_messages_with_their_state_and_closes_them_in_the_old_wal() {
        let root = tempfile::tempdir().unwrap();
        let (old_dir, new_dir) = (root.path().join("shard-1"), root.path().join("shard-0"));
        let config = WalConfig::default().with_segment_bytes(1 << 20);
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let (old, _) = Wal::open(&old_dir, config.clone()).await.unwrap();
                let (never_routed, suspended, done) = (
                    old.next_message_id(),
                    old.next_message_id(),
                    old.next_message_id(),
                );
                let enqueued = |message_id, target| Record::Enqueued { message_id, target };
                old.append_many(&[
                    received(never_routed, b"one"),
                    received(suspended, b"two"),
                    enqueued(suspended, "Out"),
                    enqueued(suspended, "Held"),
                    Record::Suspended {
                        message_id: suspended,
                        target: "Out",
                        reason: "AE",
                    },
                    received(done, b"three"),
                    enqueued(done, "Out"),
                    Record::Completed {
                        message_id: done,
                        target: "Out",
                    },
                ])
                .await
                .unwrap();
                old.close().await.unwrap();

                let (wal, mut recovery) = Wal::open(&new_dir, config.clone()).await.unwrap();
                let moved = adopt(&wal, &mut recovery, 0, &old_dir, config.clone())
                    .await
                    .unwrap();
                assert_eq!(moved, 2, "the completed message stays where it is");
                assert_eq!(wal.open_messages(), 2, "durable in the adopting WAL");
                let bytes: Vec<&[u8]> = recovery
                    .unrouted
                    .iter()
                    .map(|id| &recovery.messages[id].bytes[..])
                    .collect();
                assert_eq!(bytes, [b"one"]);
                let out = &recovery.targets["Out"];
                assert_eq!(out.len(), 1);
                assert_eq!(recovery.messages[&out[0].message_id].bytes, b"two");
                assert_eq!(
                    out[0].state,
                    DeliveryState::Suspended {
                        reason: "AE".into()
                    }
                );
                assert_eq!(recovery.targets["Held"][0].state, DeliveryState::Queued);
                wal.close().await.unwrap();

                let (old, again) = Wal::open(&old_dir, config.clone()).await.unwrap();
                assert!(again.messages.is_empty(), "nothing open in the old WAL");
                old.close().await.unwrap();
                let (wal, recovered) = Wal::open(&new_dir, config).await.unwrap();
                assert_eq!(recovered.messages.len(), 2, "the copies survive a restart");
                assert_eq!(recovered.unrouted.len(), 1);
                wal.close().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn orphans_go_to_the_shard_of_their_number_modulo_the_shards() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0, 1, 2, 3, 4, 7] {
            std::fs::create_dir(dir.path().join(format!("shard-{n}"))).unwrap();
        }
        std::fs::create_dir(dir.path().join("shard-x")).unwrap();
        std::fs::create_dir(dir.path().join("shard-05")).unwrap();
        std::fs::write(dir.path().join("shard-9"), b"not a directory").unwrap();
        let by_shard = orphans(dir.path(), 2).unwrap();
        let names = |v: &Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(&by_shard[0]), ["shard-2", "shard-4"]);
        assert_eq!(names(&by_shard[1]), ["shard-3", "shard-7"]);
        assert!(orphans(dir.path(), 8).unwrap().iter().all(Vec::is_empty));
    }
}
