//! An operator's enable and disable of items, kept across restarts in
//! `DATA_DIR/items-disabled.json` (`{"disabled": ["Main ADT Router", …]}`).
//!
//! Precedence: an item with `Enabled="false"` in the production is not run at all
//! (`hie ctl enable` is refused for it; change the production). An item the production
//! enables starts disabled when this file names it (`hie ctl disable`), until
//! `hie ctl enable` or `hie ctl restart` takes it off. A name the production no longer has
//! is reported at start and dropped at the next write.
//!
//! The file is written atomically: a temporary file created with mode 0600, written,
//! `fsync`ed, renamed over the old one, and the directory `fsync`ed. Only the main
//! thread writes it (never a shard).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name inside the data directory.
pub const OVERRIDES_FILE: &str = "items-disabled.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    disabled: BTreeSet<String>,
}

/// The items an operator disabled, and where they are kept.
#[derive(Debug)]
pub struct Overrides {
    path: PathBuf,
    disabled: BTreeSet<String>,
}

impl Overrides {
    /// Reads `data_dir/items-disabled.json` (none yet: nothing disabled). `Err` names the
    /// file and what is wrong with it.
    pub fn load(data_dir: &Path) -> Result<Overrides, String> {
        let path = data_dir.join(OVERRIDES_FILE);
        let disabled = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<OnDisk>(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .disabled
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Overrides { path, disabled })
    }

    /// The items kept disabled.
    pub fn disabled(&self) -> &BTreeSet<String> {
        &self.disabled
    }

    /// Keeps only the names `keep` accepts (items of the running production).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.disabled.retain(|name| keep(name));
    }

    /// Marks `item` disabled (or not) and writes the file if that changed anything.
    pub fn set_disabled(&mut self, item: &str, disabled: bool) -> Result<(), String> {
        let changed = if disabled {
            self.disabled.insert(item.to_string())
        } else {
            self.disabled.remove(item)
        };
        if !changed {
            return Ok(());
        }
        self.write().map_err(|e| {
            // Memory follows the file: what is not kept is not pretended.
            if disabled {
                self.disabled.remove(item);
            } else {
                self.disabled.insert(item.to_string());
            }
            format!("cannot write {}: {e}", self.path.display())
        })
    }

    fn write(&self) -> std::io::Result<()> {
        let on_disk = OnDisk {
            disabled: self.disabled.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&on_disk).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let tmp = self.path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn disabled_items_survive_a_reload_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut overrides = Overrides::load(dir.path()).unwrap();
        assert!(overrides.disabled().is_empty());
        overrides.set_disabled("Main ADT Router", true).unwrap();
        overrides.set_disabled("Out", true).unwrap();
        overrides.set_disabled("Out", false).unwrap();
        let again = Overrides::load(dir.path()).unwrap();
        let names: Vec<&str> = again.disabled().iter().map(String::as_str).collect();
        assert_eq!(names, ["Main ADT Router"]);
        let mode = std::fs::metadata(dir.path().join(OVERRIDES_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(OVERRIDES_FILE), b"{not json").unwrap();
        let err = Overrides::load(dir.path()).unwrap_err();
        assert!(err.contains(OVERRIDES_FILE), "{err}");
    }
}
