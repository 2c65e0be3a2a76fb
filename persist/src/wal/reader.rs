//! The read API: records of a time range, a message by id, a record by location.
//!
//! Reads go through their own read-only (buffered) files and never past the written end of a
//! segment, so they do not disturb the committer. Segments are selected by the time and
//! message-id ranges the WAL keeps per segment (built by recovery, extended by each
//! commit); within a segment the records are scanned in order, so finding one message
//! costs at most a scan of the segments whose id range contains it. Corrupt spans met
//! while reading are skipped with a warning, never returned.

use crate::{
    error::WalError,
    wal::{
        Wal,
        record::{self, Check, HEADER_BYTES, Record, RecordKind},
        segment::{Location, Scanned, SegmentScanner, segment_path},
    },
};

/// A record read back, with its place in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub lsn: u64,
    pub timestamp_us: u64,
    pub location: Location,
    /// Raw kind (may be one this version does not know).
    pub kind: u16,
    pub payload: Vec<u8>,
}

impl StoredRecord {
    /// The decoded record, `None` for an unknown kind or a malformed payload.
    pub fn record(&self) -> Option<Record<'_>> {
        Record::decode(RecordKind::from_u16(self.kind)?, &self.payload)
    }

    fn from_scan(segment: u64, offset: u64, header: &record::RecordHeader, bytes: &[u8]) -> Self {
        Self {
            lsn: header.lsn,
            timestamp_us: header.timestamp_us,
            location: Location { segment, offset },
            kind: header.kind,
            payload: record::payload_of(bytes).to_vec(),
        }
    }
}

/// Iterates the records whose timestamp lies in a range, in log order.
#[derive(Debug)]
pub struct RangeReader {
    dir: std::path::PathBuf,
    /// Segments left to scan, with their written end.
    segments: std::collections::VecDeque<(u64, u64)>,
    current: Option<(u64, SegmentScanner)>,
    from_us: u64,
    to_us: u64,
}

impl RangeReader {
    /// The next record in the range, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<StoredRecord>, WalError> {
        loop {
            if self.current.is_none() {
                let Some((segment, end)) = self.segments.pop_front() else {
                    return Ok(None);
                };
                let path = segment_path(&self.dir, segment);
                let mut scanner = SegmentScanner::open(&path, segment - 1).await?;
                scanner.limit(end);
                self.current = Some((segment, scanner));
            }
            let Some((segment, scanner)) = self.current.as_mut() else {
                continue;
            };
            let segment = *segment;
            match scanner.next().await? {
                Some(Scanned::Record {
                    offset,
                    header,
                    bytes,
                }) => {
                    if (self.from_us..=self.to_us).contains(&header.timestamp_us) {
                        return Ok(Some(StoredRecord::from_scan(
                            segment, offset, &header, bytes,
                        )));
                    }
                }
                Some(Scanned::Corrupt { offset, span_bytes }) => {
                    tracing::warn!(
                        segment,
                        offset,
                        span_bytes,
                        "corrupt WAL span skipped while reading"
                    );
                }
                Some(Scanned::End { .. }) | None => {
                    if let Some((_, scanner)) = self.current.take() {
                        scanner.close().await;
                    }
                }
            }
        }
    }
}

impl Wal {
    /// Records with `from_us <= timestamp_us <= to_us` (µs since the epoch), in log order.
    pub fn records_between(&self, from_us: u64, to_us: u64) -> RangeReader {
        let state = self.shared().state.borrow();
        let segments = state
            .segments
            .iter()
            .filter(|(_, m)| m.end_offset > 0 && m.ts_min_us <= to_us && m.ts_max_us >= from_us)
            .map(|(&first, m)| (first, m.end_offset))
            .collect();
        RangeReader {
            dir: self.dir().to_owned(),
            segments,
            current: None,
            from_us,
            to_us,
        }
    }

    /// The `MessageReceived` (or `Created`) record of `message_id`, if it is still in
    /// the WAL.
    pub async fn find_message(&self, message_id: u64) -> Result<Option<StoredRecord>, WalError> {
        let candidates: Vec<(u64, u64)> = {
            let state = self.shared().state.borrow();
            state
                .segments
                .iter()
                .filter(|(_, m)| (m.id_min..=m.id_max).contains(&message_id))
                .map(|(&first, m)| (first, m.end_offset))
                .collect()
        };
        for (segment, end) in candidates {
            let path = segment_path(self.dir(), segment);
            let mut scanner = SegmentScanner::open(&path, segment - 1).await?;
            scanner.limit(end);
            let mut found = None;
            while let Some(scanned) = scanner.next().await? {
                if let Scanned::Record {
                    offset,
                    header,
                    bytes,
                } = scanned
                    && opens_message(header.kind)
                    && record::payload_of(bytes).get(..8) == Some(&message_id.to_le_bytes()[..])
                {
                    found = Some(StoredRecord::from_scan(segment, offset, &header, bytes));
                    break;
                }
            }
            scanner.close().await;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The `Ruled` records of `message_id` (what a router's rules decided for it), in log
    /// order. A router writes them after the message's opening record, in its segment or
    /// any later one (a message may wait at a router for long: queued, the router
    /// disabled, a restart): this reads every segment still present whose range of
    /// `Ruled` message ids ([`crate::wal::recovery::SegmentMeta::may_hold_ruled`]) holds the message, and no
    /// other.
    pub async fn find_ruled(&self, message_id: u64) -> Result<Vec<StoredRecord>, WalError> {
        let candidates: Vec<(u64, u64)> = {
            let state = self.shared().state.borrow();
            state
                .segments
                .iter()
                .filter(|(_, m)| m.may_hold_ruled(message_id))
                .map(|(&first, m)| (first, m.end_offset))
                .collect()
        };
        let mut found = Vec::new();
        for (segment, end) in candidates {
            let path = segment_path(self.dir(), segment);
            let mut scanner = SegmentScanner::open(&path, segment - 1).await?;
            scanner.limit(end);
            while let Some(scanned) = scanner.next().await? {
                if let Scanned::Record {
                    offset,
                    header,
                    bytes,
                } = scanned
                    && header.kind == RecordKind::Ruled as u16
                    && record::payload_of(bytes).get(..8) == Some(&message_id.to_le_bytes()[..])
                {
                    found.push(StoredRecord::from_scan(segment, offset, &header, bytes));
                }
            }
            scanner.close().await;
        }
        Ok(found)
    }

    /// The record at `location` (from a [`StoredRecord`] or a recovered message).
    pub async fn read_at(&self, location: Location) -> Result<StoredRecord, WalError> {
        let missing = WalError::NoRecordAt {
            segment: location.segment,
            offset: location.offset,
        };
        let end = match self.shared().state.borrow().segments.get(&location.segment) {
            Some(meta) => meta.end_offset,
            None => return Err(missing),
        };
        if location.offset + HEADER_BYTES as u64 > end {
            return Err(missing);
        }
        let path = segment_path(self.dir(), location.segment);
        let file = glommio::io::BufferedFile::open(&path)
            .await
            .map_err(|e| WalError::io("opening segment", &path, e))?;
        let io = |e| WalError::io("reading segment", &path, e);
        let head = file
            .read_at(location.offset, HEADER_BYTES)
            .await
            .map_err(io)?;
        let payload_len = match record::check(&head) {
            Check::Truncated { header } => header.payload_len as usize,
            Check::Valid { header, .. } => header.payload_len as usize,
            Check::NoRecord | Check::Corrupt => return Err(missing),
        };
        let whole = file
            .read_at(location.offset, HEADER_BYTES + payload_len)
            .await
            .map_err(io)?;
        let _ = file.close().await;
        match record::check(&whole) {
            Check::Valid { header, .. } => Ok(StoredRecord::from_scan(
                location.segment,
                location.offset,
                &header,
                &whole,
            )),
            _ => Err(missing),
        }
    }
}

/// Whether a record of on-disk kind `kind` opens a message (carries its bytes).
fn opens_message(kind: u16) -> bool {
    kind == RecordKind::MessageReceived as u16 || kind == RecordKind::Created as u16
}
