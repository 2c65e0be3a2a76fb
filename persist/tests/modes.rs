//! File modes: under umask 000 the WAL directory is still 0700 and every file in it 0600
//! (segments, spare, lock, synced-length marker). Its own test binary: the umask is
//! process-wide.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{body, received, run};
use hie_persist::{Wal, WalConfig};

#[test]
fn wal_directory_is_0700_and_its_files_0600_under_umask_000() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0) };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data/shard-0");
    let path = dir.clone();
    run(move || async move {
        let config = WalConfig::default().with_segment_bytes(1 << 20);
        let (wal, _) = Wal::open(&path, config).await.unwrap();
        // Past a sixteenth of the segment, so a spare is prepared too.
        for _ in 0..200 {
            let id = wal.next_message_id();
            wal.append(&received(id, "m", &body(id, 900)))
                .await
                .unwrap();
        }
        wal.close().await.unwrap();
    });
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&tmp.path().join("data")), 0o700);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert_eq!(mode(&entry.path()), 0o600, "{name}");
        names.push(name);
    }
    names.sort();
    for expect in ["LOCK", "SYNCED", "spare.zero"] {
        assert!(names.iter().any(|n| n == expect), "{expect} in {names:?}");
    }
}
