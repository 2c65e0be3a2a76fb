//! Segment files: naming, listing, and the scanner that walks a segment's records.
//!
//! A WAL directory holds segment files named by the LSN of their first record,
//! `{first_lsn:020}.wal` (so lexical order is log order), preallocated to
//! `segment_bytes`. Records follow one another from offset 0; after the last record the
//! file holds zeros (the writer pads every group commit to a 4 KiB block and recovery
//! zeroes a torn tail).
//!
//! The scanner reads a segment in aligned chunks of [`SCAN_CHUNK_BYTES`] through a
//! glommio `BufferedFile` and yields each valid record with its offset. Where it finds something that
//! is not the next record (bad CRC, impossible length, LSN not increasing) it searches
//! forward, 8 bytes at a time, for the next CRC-valid record with a larger LSN; the bytes
//! in between are reported as a corrupt span, never as data. When nothing valid follows,
//! the segment ends there and the scanner reports how many non-zero bytes lie beyond it
//! (the torn tail). Limits: a record must fit in memory once (≤ 64 MiB payload).
//!
//! Reads are buffered (page cache) io_uring reads, not O_DIRECT: glommio 0.9's DMA reads
//! (`read_fixed`) fail with `EOPNOTSUPP` on the kernels we run on, and buffered reads
//! are coherent with O_DIRECT writes (the kernel invalidates the cached pages).

use std::path::{Path, PathBuf};

use glommio::io::BufferedFile;

use crate::{
    error::WalError,
    wal::record::{self, Check, HEADER_BYTES, RECORD_ALIGN, RecordHeader},
};

/// O_DIRECT block size used for every write and read position.
pub const BLOCK_BYTES: usize = 4096;
/// Bytes read from disk per scanner refill.
pub const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// Extension of segment files.
pub const SEGMENT_EXTENSION: &str = "wal";

/// Where a record lives: its segment (named by its first LSN) and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub segment: u64,
    pub offset: u64,
}

/// The file name of the segment whose first LSN is `first_lsn`.
pub fn segment_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.{SEGMENT_EXTENSION}")
}

/// The path of a segment in `dir`.
pub fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(segment_file_name(first_lsn))
}

/// Lists the segments in `dir` by first LSN, ascending. Other files are ignored, except
/// `*.wal` files whose name does not parse, which are an error (someone renamed them).
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io("listing", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("listing", dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXTENSION) {
            continue;
        }
        let first_lsn = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&lsn| lsn > 0)
            .ok_or_else(|| WalError::BadSegmentName { path: path.clone() })?;
        segments.push(first_lsn);
    }
    segments.sort_unstable();
    Ok(segments)
}

/// One thing the scanner found.
#[derive(Debug)]
pub enum Scanned<'a> {
    /// A valid record (header, and the whole record's bytes including the header).
    Record {
        offset: u64,
        header: RecordHeader,
        bytes: &'a [u8],
    },
    /// Bytes that are not valid records, followed by a valid record.
    Corrupt { offset: u64, span_bytes: u64 },
    /// End of the segment's records at `offset`; `dirty_bytes` non-zero bytes follow it
    /// (from `offset` to the last non-zero byte).
    End { offset: u64, dirty_bytes: u64 },
}

/// Reads a segment's records in order. See the module header.
#[derive(Debug)]
pub struct SegmentScanner {
    file: BufferedFile,
    path: PathBuf,
    file_len: u64,
    /// Bytes of the file starting at `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
    offset: u64,
    last_lsn: u64,
    /// Records above this LSN are not accepted (they end the segment like a torn tail).
    lsn_max: u64,
    done: bool,
}

impl SegmentScanner {
    /// Opens a segment for scanning; `last_lsn` is the LSN before its first record.
    pub async fn open(path: &Path, last_lsn: u64) -> Result<Self, WalError> {
        let file = BufferedFile::open(path)
            .await
            .map_err(|e| WalError::io("opening segment", path, e))?;
        let file_len = file
            .file_size()
            .await
            .map_err(|e| WalError::io("sizing segment", path, e))?;
        Ok(Self {
            file,
            path: path.to_owned(),
            file_len,
            buf: Vec::new(),
            buf_start: 0,
            offset: 0,
            last_lsn,
            lsn_max: u64::MAX,
            done: false,
        })
    }

    /// Starts scanning at `offset` (a record boundary found earlier), with `last_lsn`
    /// the LSN before the record there (0 to accept any).
    pub fn seek(&mut self, offset: u64, last_lsn: u64) {
        self.offset = offset;
        self.last_lsn = last_lsn;
        self.done = false;
    }

    /// Accepts no record above `lsn_max`: the WAL, resuming after a failed write, keeps
    /// only what was durable and treats later records as a torn tail.
    pub fn lsn_max(&mut self, lsn_max: u64) {
        self.lsn_max = lsn_max;
    }

    /// Scans no further than `end` (the written end of an active segment).
    pub fn limit(&mut self, end: u64) {
        self.file_len = self.file_len.min(end);
    }

    /// Size of the segment file (or the limit).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Closes the file.
    pub async fn close(self) {
        let _ = self.file.close().await;
    }

    /// Makes `buf` hold `[offset, offset + len)` or up to the end of the file.
    async fn fill(&mut self, offset: u64, len: usize) -> Result<(), WalError> {
        let end = (offset + len as u64).min(self.file_len);
        let have_end = self.buf_start + self.buf.len() as u64;
        if offset >= self.buf_start && end <= have_end {
            return Ok(());
        }
        // Keep the bytes from `offset` on, then read aligned chunks after them.
        if offset >= self.buf_start && offset <= have_end {
            self.buf.drain(..(offset - self.buf_start) as usize);
            self.buf_start = offset;
        } else {
            self.buf.clear();
            self.buf_start = offset;
        }
        while self.buf_start + (self.buf.len() as u64) < end {
            let at = self.buf_start + self.buf.len() as u64;
            let aligned = at / BLOCK_BYTES as u64 * BLOCK_BYTES as u64;
            let want = ((end - aligned) as usize).max(SCAN_CHUNK_BYTES);
            let want = want.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
            let read = self
                .file
                .read_at(aligned, want)
                .await
                .map_err(|e| WalError::io("reading segment", &self.path, e))?;
            let skip = (at - aligned) as usize;
            if read.len() <= skip {
                break;
            }
            self.buf.extend_from_slice(&read[skip..]);
        }
        let limit = self.file_len.saturating_sub(self.buf_start) as usize;
        self.buf.truncate(limit);
        Ok(())
    }

    fn window(&self, offset: u64) -> &[u8] {
        let start = (offset - self.buf_start) as usize;
        self.buf.get(start..).unwrap_or(&[])
    }

    /// Checks the record at `offset`, reading as much as it needs.
    async fn check_at(&mut self, offset: u64) -> Result<Check, WalError> {
        self.fill(offset, HEADER_BYTES).await?;
        let first = record::check(self.window(offset));
        if let Check::Truncated { header } = first {
            let total = record::record_bytes(header.payload_len as usize);
            self.fill(offset, total).await?;
            return Ok(record::check(self.window(offset)));
        }
        Ok(first)
    }

    /// The next thing in the segment, `None` after `End`.
    pub async fn next(&mut self) -> Result<Option<Scanned<'_>>, WalError> {
        if self.done {
            return Ok(None);
        }
        let offset = self.offset;
        if let Check::Valid { header, total } = self.check_at(offset).await?
            && self.wanted(header.lsn)
        {
            return Ok(Some(self.accept(offset, header, total)));
        }
        // Not the next record: look for one further on.
        match self.resync(offset).await? {
            Resync::Found(found) => {
                self.offset = found;
                Ok(Some(Scanned::Corrupt {
                    offset,
                    span_bytes: found - offset,
                }))
            }
            Resync::End { last_nonzero_end } => {
                self.done = true;
                Ok(Some(Scanned::End {
                    offset,
                    dirty_bytes: last_nonzero_end.saturating_sub(offset),
                }))
            }
        }
    }

    /// Whether a valid record with `lsn` is the next one: above the last, within the max.
    fn wanted(&self, lsn: u64) -> bool {
        lsn > self.last_lsn && lsn <= self.lsn_max
    }

    fn accept(&mut self, offset: u64, header: RecordHeader, total: usize) -> Scanned<'_> {
        self.last_lsn = header.lsn;
        self.offset = offset + total as u64;
        let start = (offset - self.buf_start) as usize;
        let len = HEADER_BYTES + header.payload_len as usize;
        Scanned::Record {
            offset,
            header,
            bytes: &self.buf[start..start + len],
        }
    }

    /// Searches after `failed_at` for a valid record with an LSN above `last_lsn`, tracking
    /// the end of the last non-zero byte seen (for the torn-tail count) when none is found.
    async fn resync(&mut self, failed_at: u64) -> Result<Resync, WalError> {
        let word_bytes = RECORD_ALIGN as u64;
        let mut last_nonzero_end = failed_at;
        let mut at = failed_at;
        while at + word_bytes <= self.file_len {
            self.fill(at, SCAN_CHUNK_BYTES).await?;
            let (words, candidate) = scan_words(self.window(at), at == failed_at);
            if words == 0 && candidate.is_none() {
                break;
            }
            if let Some((i, nonzero_end)) = candidate {
                last_nonzero_end = last_nonzero_end.max(at + nonzero_end as u64);
                let offset = at + i as u64;
                if let Check::Valid { header, .. } = self.check_at(offset).await?
                    && self.wanted(header.lsn)
                {
                    return Ok(Resync::Found(offset));
                }
                at = offset + word_bytes;
                continue;
            }
            let (consumed, nonzero_end) = words_summary(self.window(at), words);
            if let Some(end) = nonzero_end {
                last_nonzero_end = last_nonzero_end.max(at + end as u64);
            }
            at += consumed as u64;
        }
        Ok(Resync::End { last_nonzero_end })
    }
}

/// Scans the 8-byte words of `window` for a record magic (skipping the first word when
/// `skip_first`). Returns the number of words scanned without finding one, or the index
/// of the candidate with the end of the last non-zero word up to and including it.
fn scan_words(window: &[u8], skip_first: bool) -> (usize, Option<(usize, usize)>) {
    let magic = record::RECORD_MAGIC.to_le_bytes();
    let words = window.len() / RECORD_ALIGN;
    for w in 0..words {
        let i = w * RECORD_ALIGN;
        let word = &window[i..i + RECORD_ALIGN];
        if (w > 0 || !skip_first) && word[..4] == magic {
            return (w, Some((i, i + RECORD_ALIGN)));
        }
    }
    (words, None)
}

/// Bytes covered by the first `words` words of `window` and the end of the last non-zero
/// one among them.
fn words_summary(window: &[u8], words: usize) -> (usize, Option<usize>) {
    let bytes = words * RECORD_ALIGN;
    let nonzero_end = window[..bytes]
        .chunks_exact(RECORD_ALIGN)
        .rposition(|w| w.iter().any(|&b| b != 0))
        .map(|w| (w + 1) * RECORD_ALIGN);
    (bytes, nonzero_end)
}

enum Resync {
    Found(u64),
    End { last_nonzero_end: u64 },
}
