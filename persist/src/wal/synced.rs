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
//! hie-wal-synced 3
//! closed-below <lsn>
//! <first_lsn> <end_offset> <last_lsn> <received> <ts_min> <ts_max> <id_min> <id_max> <ruled_min> <ruled_max>
//! ```
//!
//! one segment line per segment, in log order. `end_offset` is the end of the segment's
//! last durable record, `last_lsn` its LSN, `received` the `MessageReceived` records
//! (acknowledged messages) durable in it, then the oldest and newest record times (µs) and
//! the smallest and largest message ids received in it (`u64::MAX` and 0 when none), and
//! the smallest and largest message ids its `Ruled` records name (likewise).
//!
//! `closed-below` is the first LSN of the oldest segment that held an open message, or of
//! the active segment when none did, when the marker was written: every message received
//! in a segment below it was closed (delivered everywhere, or discarded), and those
//! segments were sealed, so their facts above are final. Recovery takes such a segment's
//! facts from the marker instead of reading it (see `recovery::recover`), so start-up reads
//! only the log from the oldest open message on, however long retention keeps the rest.
//! The close records behind `closed-below` may be less durable than the marker (a
//! delivery's `Completed` is appended after the downstream's ACK): a crash in between skips
//! a message that was delivered, where a full scan would have delivered it again.
//! Version 1 markers (four numbers a line, no `closed-below`) are still read; they skip
//! nothing. Version 2 markers (eight numbers a line) are read with the `Ruled` id range
//! unknown (any id: `Wal::find_ruled` reads such a segment for every message).
//! Segments retention removed are left out of the next marker; a marker naming a segment
//! older than the oldest one present is about a segment retention removed. A marker that
//! does not parse is reported and ignored (it only adds checks).

use std::{collections::BTreeMap, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use crate::{error::WalError, private::FILE_MODE, wal::recovery::SegmentMeta};

/// Name of the marker file in the WAL directory.
pub const SYNCED_FILE_NAME: &str = "SYNCED";
const SYNCED_TMP_FILE_NAME: &str = "SYNCED.tmp";
const FIRST_LINE: &str = "hie-wal-synced 3";
const FIRST_LINE_V2: &str = "hie-wal-synced 2";
const FIRST_LINE_V1: &str = "hie-wal-synced 1";
const CLOSED_BELOW: &str = "closed-below ";

/// What the marker says about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncedSegment {
    pub first_lsn: u64,
    pub end_offset: u64,
    pub last_lsn: u64,
    pub received: u64,
    /// The rest of the segment's facts (version 2), for a segment recovery need not read.
    pub span: Option<SegmentSpan>,
}

/// Record times and message ids of a segment (as in [`SegmentMeta`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpan {
    pub ts_min_us: u64,
    pub ts_max_us: u64,
    pub id_min: u64,
    pub id_max: u64,
    /// The message ids of the segment's `Ruled` records (0 and `u64::MAX`, any id, from a
    /// version 2 marker).
    pub ruled_id_min: u64,
    pub ruled_id_max: u64,
}

/// A parsed marker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marker {
    /// Every message received in a segment whose first LSN is below this was closed (0:
    /// nothing known closed).
    pub closed_below: u64,
    pub segments: Vec<SyncedSegment>,
}

impl Marker {
    /// The facts of sealed segment `first_lsn` if every message received in it was closed
    /// and the marker holds all its facts: recovery may take them instead of reading it.
    pub fn closed_segment(&self, first_lsn: u64) -> Option<SegmentMeta> {
        if first_lsn >= self.closed_below {
            return None;
        }
        let synced = self.segments.iter().find(|s| s.first_lsn == first_lsn)?;
        let span = synced.span?;
        Some(SegmentMeta {
            end_offset: synced.end_offset,
            file_bytes: 0,
            ts_min_us: span.ts_min_us,
            ts_max_us: span.ts_max_us,
            id_min: span.id_min,
            id_max: span.id_max,
            ruled_id_min: span.ruled_id_min,
            ruled_id_max: span.ruled_id_max,
            last_lsn: synced.last_lsn,
            received: synced.received,
        })
    }
}

/// The marker's text for `segments` (durable facts, as the writer keeps them), with every
/// message received below LSN `closed_below` closed.
pub fn encode(segments: &BTreeMap<u64, SegmentMeta>, closed_below: u64) -> String {
    let mut text = format!("{FIRST_LINE}\n{CLOSED_BELOW}{closed_below}\n");
    for (first_lsn, meta) in segments {
        text.push_str(&format!(
            "{first_lsn} {} {} {} {} {} {} {} {} {}\n",
            meta.end_offset,
            meta.last_lsn,
            meta.received,
            meta.ts_min_us,
            meta.ts_max_us,
            meta.id_min,
            meta.id_max,
            meta.ruled_id_min,
            meta.ruled_id_max
        ));
    }
    text
}

/// Parses a marker (version 3; version 2, which does not know `Ruled` ids; or version 1,
/// which closes nothing); `None` if it is not one.
pub fn decode(text: &str) -> Option<Marker> {
    let mut lines = text.lines();
    let (closed_below, fields) = match lines.next()? {
        FIRST_LINE => (lines.next()?.strip_prefix(CLOSED_BELOW)?.parse().ok()?, 10),
        FIRST_LINE_V2 => (lines.next()?.strip_prefix(CLOSED_BELOW)?.parse().ok()?, 8),
        FIRST_LINE_V1 => (0, 4),
        _ => return None,
    };
    let segments = lines
        .map(|line| {
            let n: Vec<u64> = line
                .split(' ')
                .map(|v| v.parse::<u64>().ok())
                .collect::<Option<_>>()?;
            (n.len() == fields).then(|| SyncedSegment {
                first_lsn: n[0],
                end_offset: n[1],
                last_lsn: n[2],
                received: n[3],
                span: (fields >= 8).then(|| SegmentSpan {
                    ts_min_us: n[4],
                    ts_max_us: n[5],
                    id_min: n[6],
                    id_max: n[7],
                    ruled_id_min: n.get(8).copied().unwrap_or(0),
                    ruled_id_max: n.get(9).copied().unwrap_or(u64::MAX),
                }),
            })
        })
        .collect::<Option<_>>()?;
    Some(Marker {
        closed_below,
        segments,
    })
}

/// Reads the marker in `dir`: `Ok(None)` when there is none, `Err` with a reason when it
/// cannot be read or parsed.
pub fn read(dir: &Path) -> Result<Option<Marker>, String> {
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
        meta.note_ruled(2);
        segments.insert(1, meta);
        let text = encode(&segments, 9);
        let expect = SyncedSegment {
            first_lsn: 1,
            end_offset: 4096,
            last_lsn: 7,
            received: 1,
            span: Some(SegmentSpan {
                ts_min_us: 1,
                ts_max_us: 1,
                id_min: 3,
                id_max: 3,
                ruled_id_min: 2,
                ruled_id_max: 2,
            }),
        };
        let marker = decode(&text).unwrap();
        assert_eq!(marker.closed_below, 9);
        assert_eq!(marker.segments, vec![expect]);
        let file_bytes = 0; // the marker does not say; recovery takes the file's
        assert_eq!(
            marker.closed_segment(1),
            Some(SegmentMeta { file_bytes, ..meta })
        );
        assert_eq!(decode(""), None);
        assert_eq!(decode("hie-wal-synced 1\n1 2 3\n"), None);
        assert_eq!(decode("hie-wal-synced 1\n1 2 3 4 5\n"), None);
        assert_eq!(decode("hie-wal-synced 2\n"), None);
        assert_eq!(decode("hie-wal-synced 2\nclosed-below 1\n1 2 3 4\n"), None);
        assert_eq!(decode("hie-wal-synced 3\n"), None);
        assert_eq!(
            decode("hie-wal-synced 3\nclosed-below 1\n1 2 3 4 5 6 7 8\n"),
            None
        );
        assert_eq!(decode("hie-wal-synced 4\n"), None);
    }

    #[test]
    fn a_version_2_marker_is_read_with_any_ruled_id_possible() {
        let marker = decode("hie-wal-synced 2\nclosed-below 9\n1 4096 7 1 1 1 3 3\n").unwrap();
        let meta = marker.closed_segment(1).unwrap();
        assert_eq!((meta.id_min, meta.id_max), (3, 3));
        assert!(meta.may_hold_ruled(3) && meta.may_hold_ruled(u64::MAX));
    }

    #[test]
    fn a_version_1_marker_is_read_and_closes_nothing() {
        let marker = decode("hie-wal-synced 1\n1 4096 7 1\n").unwrap();
        assert_eq!(marker.closed_below, 0);
        assert_eq!(marker.segments[0].span, None);
        assert_eq!(marker.closed_segment(1), None);
    }

    #[test]
    fn only_segments_below_closed_below_are_taken_from_the_marker() {
        let mut segments = BTreeMap::new();
        for first in [1, 10, 20] {
            let mut meta = SegmentMeta::empty(1 << 20);
            meta.note(4096, first + 5, 1, Some(first));
            segments.insert(first, meta);
        }
        let marker = decode(&encode(&segments, 10)).unwrap();
        assert!(marker.closed_segment(1).is_some());
        assert_eq!(marker.closed_segment(10), None);
        assert_eq!(marker.closed_segment(20), None);
        assert_eq!(marker.closed_segment(5), None, "not in the marker");
    }
}
