//! The HL7 messages of files named on the command line, for `hie rules test` and
//! `hie transform`: each file read whole, split as a batch and each message scanned. A
//! file that cannot be read, holds a message that does not scan or holds none ends the
//! command with exit status 2, said on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hie_hl7::{Batch, Message};

/// Calls `each` with every message of `files` in order, with its file and its place in
/// it (from 1); stops at the first `Err`, `each`'s own or one of the files'.
pub fn for_each_message(
    files: &[PathBuf],
    mut each: impl FnMut(&Path, usize, &Message<'_>) -> Result<(), ExitCode>,
) -> Result<(), ExitCode> {
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| {
            eprintln!("hie: cannot read {}: {e}", file.display());
            ExitCode::from(2)
        })?;
        let mut count = 0;
        for (n, raw) in Batch::new(&bytes).enumerate() {
            let m = Message::scan(raw).map_err(|e| {
                eprintln!("hie: {} message {}: {e}", file.display(), n + 1);
                ExitCode::from(2)
            })?;
            count += 1;
            each(file, n + 1, &m)?;
        }
        if count == 0 {
            eprintln!("hie: {} holds no HL7 message", file.display());
            return Err(ExitCode::from(2));
        }
    }
    Ok(())
}
