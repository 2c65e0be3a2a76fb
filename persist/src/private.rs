//! Private files and directories: what hie keeps on disk holds patient data, so every
//! directory it creates is mode 0700 and every file 0600, whatever the process umask.
//!
//! Directories are created with mode 0700 and then set to exactly 0700 (a umask can only
//! remove bits, and a directory made by an earlier version may be 0755); files are
//! created with mode 0600 ([`FILE_MODE`], passed to `open`), and [`tighten_files`] takes
//! group and other bits off files left by an earlier version.

use std::{
    io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::Path,
};

/// Mode of every directory hie creates for its data.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file hie creates in its data directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700, and sets `dir` itself to 0700 if
/// it already existed with other bits.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Sets `path` to exactly `mode` unless it has it already.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Takes group and other permission bits off every regular file directly in `dir` (files
/// an earlier version created under a looser umask).
pub fn tighten_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_file() && mode & 0o077 != 0 {
            set_mode(&entry.path(), mode & !0o077)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_0700_even_when_it_existed_with_wider_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten_files(&dir).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}
