//! `--hist FILE`: the latency histogram of a run in the standard HdrHistogram interval log
//! format (the format of Java's `HistogramLogWriter`, read by `HistogramLogAnalyzer`,
//! `hdrhistogram::serialization::interval_log::IntervalLogIterator` and wrk2 tooling).
//!
//! ```text
//! #[hie-loadgen latency, values in microseconds]
//! #[StartTime: 1735732800.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! 0.000,1.000,812.000,HISTFAAAA...        one line per interval (about one second):
//! 1.000,1.000,790.000,HISTFAAAA...        start s (since StartTime), length s, max µs,
//!                                         base64 of the V2 deflate-compressed histogram
//! ```
//!
//! Intervals are written as they arrive, so a run of any length holds one interval in
//! memory. Adding all intervals gives back the run's whole histogram, so the percentiles
//! of the final report can be checked against the file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

use crate::error::LoadgenError;

/// An open interval log.
pub struct HistLog {
    path: PathBuf,
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

impl std::fmt::Debug for HistLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HistLog {
    /// Creates `path` and writes the header; `start` is the wall-clock time of the run's
    /// start, from which interval timestamps count.
    pub fn create(path: &Path, start: SystemTime) -> Result<HistLog, LoadgenError> {
        let io_err = |source| LoadgenError::WriteReport {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let mut log = HistLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            serializer: V2DeflateSerializer::new(),
        };
        IntervalLogWriterBuilder::new()
            .add_comment("[hie-loadgen latency, values in microseconds]")
            .with_start_time(start)
            .begin_log_with(&mut log.out, &mut log.serializer)
            .map_err(io_err)?;
        log.out
            .write_all(b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n")
            .map_err(io_err)?;
        Ok(log)
    }

    /// Appends one interval: `hist` recorded from `since_start` for `length`.
    pub fn write_interval(
        &mut self,
        hist: &Histogram<u64>,
        since_start: Duration,
        length: Duration,
    ) -> Result<(), LoadgenError> {
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(|source| LoadgenError::WriteReport {
                path: self.path.clone(),
                source,
            })?;
        writer
            .write_histogram(hist, since_start, length, None)
            .map_err(|e| LoadgenError::HistogramLog {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<(), LoadgenError> {
        self.out
            .flush()
            .map_err(|source| LoadgenError::WriteReport {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{new_histogram, record};
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn intervals_read_back_sum_to_the_recorded_histogram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lat.hlog");
        let mut log = HistLog::create(&path, SystemTime::now()).unwrap();
        let mut total = new_histogram();
        for second in 0..3u64 {
            let mut h = new_histogram();
            for v in 1..=(100 * (second + 1)) {
                record(&mut h, v * 7);
            }
            total.add(&h).unwrap();
            log.write_interval(&h, Duration::from_secs(second), Duration::from_secs(1))
                .unwrap();
        }
        log.finish().unwrap();

        let text = std::fs::read(&path).unwrap();
        let mut back = new_histogram();
        let mut intervals = 0;
        let mut deserializer = Deserializer::new();
        for entry in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(ilh) = entry.unwrap() {
                let bytes = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    ilh.encoded_histogram(),
                )
                .expect("base64 histogram");
                let h: Histogram<u64> = deserializer.deserialize(&mut bytes.as_slice()).unwrap();
                back.add(&h).unwrap();
                intervals += 1;
            }
        }
        assert_eq!(intervals, 3);
        assert_eq!(back.len(), total.len());
        assert_eq!(back.value_at_quantile(0.99), total.value_at_quantile(0.99));
        assert_eq!(back.max(), total.max());
    }
}
