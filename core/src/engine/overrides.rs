//! An operator's enable and disable of items, kept across restarts in
//! `DATA_DIR/items-disabled.json` (`{"disabled": ["Main ADT Router", …], "enabled": […]}`).
//!
//! Precedence: the operator's last word wins over the production's `Enabled`. An item
//! starts disabled when this file lists it as disabled (`hie ctl disable`), until
//! `hie ctl enable` or `hie ctl restart` takes it off; an item the production disables
//! (`Enabled="false"`: its messages wait in its queue) starts enabled once an operator
//! enabled it, until `hie ctl disable` (as enabling it in IRIS's portal changes the
//! production). A name the production no longer has is reported at start and dropped at
//! the next write.
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
    /// Absent in files written before enables were kept.
    #[serde(default)]
    enabled: BTreeSet<String>,
}

/// The items an operator disabled or enabled, and where they are kept.
#[derive(Debug)]
pub struct Overrides {
    path: PathBuf,
    disabled: BTreeSet<String>,
    enabled: BTreeSet<String>,
}

impl Overrides {
    /// Reads `data_dir/items-disabled.json` (none yet: nothing disabled). `Err` names the
    /// file and what is wrong with it.
    pub fn load(data_dir: &Path) -> Result<Overrides, String> {
        let path = data_dir.join(OVERRIDES_FILE);
        let on_disk = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<OnDisk>(&bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OnDisk::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Overrides {
            path,
            disabled: on_disk.disabled,
            enabled: on_disk.enabled,
        })
    }

    /// Whether `item` starts disabled, given the production's `Enabled`.
    pub fn starts_disabled(&self, item: &str, enabled_in_production: bool) -> bool {
        if self.disabled.contains(item) {
            return true;
        }
        !enabled_in_production && !self.enabled.contains(item)
    }

    /// The items kept disabled.
    pub fn disabled(&self) -> &BTreeSet<String> {
        &self.disabled
    }

    /// Keeps only the names `keep` accepts (items of the running production).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.disabled.retain(|name| keep(name));
        self.enabled.retain(|name| keep(name));
    }

    /// Keeps `item` disabled, or enabled, and writes the file if that changed anything.
    pub fn set_disabled(&mut self, item: &str, disabled: bool) -> Result<(), String> {
        let before = (self.disabled.clone(), self.enabled.clone());
        let (into, out_of) = if disabled {
            (&mut self.disabled, &mut self.enabled)
        } else {
            (&mut self.enabled, &mut self.disabled)
        };
        let changed = into.insert(item.to_string()) | out_of.remove(item);
        if !changed {
            return Ok(());
        }
        self.write().map_err(|e| {
            // Memory follows the file: what is not kept is not pretended.
            (self.disabled, self.enabled) = before;
            format!("cannot write {}: {e}", self.path.display())
        })
    }

    fn write(&self) -> std::io::Result<()> {
        let on_disk = OnDisk {
            disabled: self.disabled.clone(),
            enabled: self.enabled.clone(),
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
        assert!(again.starts_disabled("Main ADT Router", true));
        assert!(!again.starts_disabled("Out", true));
        assert!(
            !again.starts_disabled("Out", false),
            "enabled by the operator"
        );
        assert!(
            again.starts_disabled("Other", false),
            "disabled in the production"
        );
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
