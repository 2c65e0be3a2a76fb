//! The synced-length marker `SYNCED`: how far each segment was durable when the WAL last
//! wrote it down, so that recovery can tell a torn tail (normal after a crash: records
//! written and never acknowledged) from a segment that lost acknowledged records (cut
//! short, emptied, removed).
//!
//! The WAL writes the marker whole whenever a segment fills up, when it closes, and in
//! fsync mode after a commit once the marker is `MARKER_INTERVAL_S` (5 s) old: into
//! `SYNCED.tmp` (mode 0600), synced, renamed over `SYNCED`, directory synced, on the
//! blocking pool. Recovery reads it once. It is a lower bound: records appended after it
//! was written are not in it, so after a crash a segment may hold more than it says,
//! never less; a segment that holds less lost records that were durable. With
//! `SyncMode::None` nothing is durable and no marker is written. The format is text:
//!
//! ```text
//! hie-wal-synced 1
//! <first_lsn> <end_offset> <last_lsn> <received>      one line per segment, log order
//! ```
//!
//! `end_offset` is the end of the segment's last durable record, `last_lsn` its LSN,
//! `received` the `MessageReceived` records (acknowledged messages) durable in it.
//! Segments retention removed are left out of the next marker; a marker naming a segment
//! older than the oldest one present is about a segment retention removed. A marker that
//! does not parse is reported and ignored (it only adds checks).

use std::{collections::BTreeMap, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use crate::{error::WalError, private::FILE_MODE, wal::recovery::SegmentMeta};

/// Name of the marker file in the WAL directory.
pub const SYNCED_FILE_NAME: &str = "SYNCED";
const SYNCED_TMP_FILE_NAME: &str = "SYNCED.tmp";
const FIRST_LINE: &str = "hie-wal-synced 1";

/// What the marker says about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncedSegment {
    pub first_lsn: u64,
    pub end_offset: u64,
    pub last_lsn: u64,
    pub received: u64,
}

/// The marker's text for `segments` (durable facts, as the writer keeps them).
pub fn encode(segments: &BTreeMap<u64, SegmentMeta>) -> String {
    let mut text = format!("{FIRST_LINE}\n");
    for (first_lsn, meta) in segments {
        text.push_str(&format!(
            "{first_lsn} {} {} {}\n",
            meta.end_offset, meta.last_lsn, meta.received
        ));
    }
    text
}

/// Parses a marker; `None` if it is not one.
pub fn decode(text: &str) -> Option<Vec<SyncedSegment>> {
    let mut lines = text.lines();
    if lines.next()? != FIRST_LINE {
        return None;
    }
    lines
        .map(|line| {
            let mut n = line.split(' ').map(|v| v.parse::<u64>().ok());
            let segment = SyncedSegment {
                first_lsn: n.next()??,
                end_offset: n.next()??,
                last_lsn: n.next()??,
                received: n.next()??,
            };
            n.next().is_none().then_some(segment)
        })
        .collect()
}

/// Reads the marker in `dir`: `Ok(None)` when there is none, `Err` with a reason when it
/// cannot be read or parsed.
pub fn read(dir: &Path) -> Result<Option<Vec<SyncedSegment>>, String> {
    let path = dir.join(SYNCED_FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text)
            .map(Some)
            .ok_or_else(|| format!("{} is not a synced-length marker", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces the marker in `dir` with `text`, durably, on the blocking pool.
pub async fn write(dir: &Path, text: String) -> Result<(), WalError> {
    let dir = dir.to_owned();
    glommio::executor()
        .spawn_blocking(move || write_now(&dir, &text))
        .await
}

fn write_now(dir: &Path, text: &str) -> Result<(), WalError> {
    let tmp = dir.join(SYNCED_TMP_FILE_NAME);
    let io = |e| WalError::io("writing the synced-length marker", &tmp, e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, dir.join(SYNCED_FILE_NAME)).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("syncing WAL directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_rejects_what_is_not_one() {
        let mut segments = BTreeMap::new();
        let mut meta = SegmentMeta::empty(1 << 20);
        meta.note(4096, 7, 1, Some(3));
        segments.insert(1, meta);
        let text = encode(&segments);
        let expect = SyncedSegment {
            first_lsn: 1,
            end_offset: 4096,
            last_lsn: 7,
            received: 1,
        };
        assert_eq!(decode(&text), Some(vec![expect]));
        assert_eq!(decode(""), None);
        assert_eq!(decode("hie-wal-synced 1\n1 2 3\n"), None);
        assert_eq!(decode("hie-wal-synced 1\n1 2 3 4 5\n"), None);
        assert_eq!(decode("hie-wal-synced 2\n"), None);
    }
}
