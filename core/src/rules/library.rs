//! Finding rule classes by name: every `.cls`, `.xml` and `.toml` file of the folders a
//! production names (its own file's folder, then `[engine] rules_path`), read once at
//! load. Lookup tables (`<lookupTable>` exports, TOML `[lookup.NAME]`) found there are
//! loaded too, for `Lookup` and `Exists`.
//!
//! A file is read only when it can hold a rule class or a lookup table (a `.cls` with
//! `XData RuleDefinition`, an XML file with `<ruleDefinition` or `<lookupTable`, a TOML
//! file with a top-level `class =` or a `[lookup.` table): production files beside the
//! rules are skipped. A file that holds one but does not read is kept as an error and
//! reported when its class is asked for (or by name of the file when no class matches).
//! Files are read in name order, so a class defined twice resolves the same way every
//! time (the first file wins, and the second is reported).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::compile::{CompiledRules, Resources};
use super::lookup::Lookups;
use super::model::RuleClass;
use super::{RuleError, read_rule_file};

/// Largest rule or lookup file read, in bytes (as for a production file).
pub const RULE_FILE_BYTES_MAX: u64 = crate::config::CONFIG_BYTES_MAX;

/// Files read from one folder, at most (a folder of a million files is a mistake).
pub const RULE_FOLDER_FILES_MAX: usize = 10_000;

/// The rule classes and lookup tables of a set of folders.
#[derive(Debug, Default)]
pub struct Library {
    pub(crate) folders: Vec<PathBuf>,
    classes: HashMap<String, (PathBuf, RuleClass)>,
    lookups: Lookups,
    /// Files that could not be read, or classes defined twice.
    broken: Vec<RuleError>,
    /// The DTL classes found in the same folders ([`crate::transform::library`]).
    pub(crate) transforms: crate::transform::library::Transforms,
    /// `[engine] transform_skip_code`, for the transforms rules name.
    pub transform_skip_code: bool,
}

impl Library {
    /// Reads the folders (a folder that does not exist holds nothing).
    pub fn load(folders: &[PathBuf]) -> Library {
        let mut lib = Library {
            folders: folders.to_vec(),
            ..Library::default()
        };
        for folder in folders {
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("cls" | "xml" | "toml")
                    )
                })
                .collect();
            files.sort();
            files.truncate(RULE_FOLDER_FILES_MAX);
            for file in files {
                lib.read_file(&file);
            }
        }
        lib
    }

    fn read_file(&mut self, file: &Path) {
        let too_big = std::fs::metadata(file).is_ok_and(|m| m.len() > RULE_FILE_BYTES_MAX);
        let Ok(text) = std::fs::read_to_string(file) else {
            return;
        };
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let (rules, tables) = match ext {
            "cls" => (text.contains("XData RuleDefinition"), false),
            "xml" => (
                text.contains("<ruleDefinition"),
                text.contains("<lookupTable"),
            ),
            _ => (
                text.lines().any(|l| l.trim_start().starts_with("class")),
                text.contains("[lookup."),
            ),
        };
        self.transforms.read(file, &text, ext, too_big);
        if !(rules || tables) {
            return;
        }
        if too_big {
            self.broken.push(RuleError {
                file: file.to_path_buf(),
                line: 1,
                class: None,
                rule: None,
                message: format!(
                    "larger than the {RULE_FILE_BYTES_MAX}-byte limit for a rule file"
                ),
            });
            return;
        }
        if tables {
            let read = if ext == "xml" {
                self.lookups.read_xml(&text, file)
            } else {
                self.lookups.read_toml(&text, file)
            };
            if let Err(e) = read {
                self.broken.push(e);
            }
        }
        if rules {
            match read_rule_file(&text, file) {
                Ok(classes) => {
                    for class in classes {
                        self.add(file, class);
                    }
                }
                Err(e) => self.broken.push(e),
            }
        }
    }

    fn add(&mut self, file: &Path, class: RuleClass) {
        if let Some((first, _)) = self.classes.get(&class.name) {
            self.broken.push(RuleError {
                file: file.to_path_buf(),
                line: class.line,
                class: Some(class.name.clone()),
                rule: None,
                message: format!(
                    "the class is defined in {} too; hie uses that one",
                    first.display()
                ),
            });
            return;
        }
        self.classes
            .insert(class.name.clone(), (file.to_path_buf(), class));
    }

    /// The lookup tables read.
    pub fn lookups(&self) -> &Lookups {
        &self.lookups
    }

    /// Adds the classes and tables of one more file (`hie rules test FILE`); its rule
    /// classes, by name. A class of the same name read before is replaced.
    pub fn add_file(&mut self, file: &Path) -> Result<Vec<String>, RuleError> {
        let text = std::fs::read_to_string(file).map_err(|e| RuleError {
            file: file.to_path_buf(),
            line: 0,
            class: None,
            rule: None,
            message: format!("cannot read: {e}"),
        })?;
        let toml = file.extension().is_some_and(|e| e == "toml");
        if toml && text.contains("[lookup.") {
            self.lookups.read_toml(&text, file)?;
            return Ok(Vec::new());
        }
        if !toml && text.contains("<lookupTable") {
            self.lookups.read_xml(&text, file)?;
        }
        let classes = read_rule_file(&text, file)?;
        let names = classes.iter().map(|c| c.name.clone()).collect();
        for c in classes {
            self.classes.insert(c.name.clone(), (file.to_path_buf(), c));
        }
        Ok(names)
    }

    /// Compiles the class named `name`.
    pub fn compile(&self, name: &str) -> Result<CompiledRules, RuleError> {
        let Some((file, class)) = self.classes.get(name) else {
            if let Some(e) = self
                .broken
                .iter()
                .find(|e| e.class.as_deref() == Some(name))
            {
                return Err(e.clone());
            }
            let mut message = format!(
                "no rule class {name} in any .cls, .xml or .toml file of {}",
                self.folders
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for e in self.broken.iter().filter(|e| e.class.is_none()) {
                message.push_str(&format!("; unreadable: {e}"));
            }
            return Err(RuleError {
                file: PathBuf::new(),
                line: 0,
                class: Some(name.to_owned()),
                rule: None,
                message,
            });
        };
        crate::transform::library::check_sends(self, class, file)?;
        let folders = &self.folders;
        CompiledRules::compile(
            class,
            file,
            Resources {
                lookups: &self.lookups,
                folders,
            },
        )
    }
}

/// The folders a production's rule classes are looked for in: its file's folder, then
/// each `rules_path` entry (relative ones taken from that folder).
pub fn rule_folders(production_dir: &Path, rules_path: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![production_dir.to_path_buf()];
    out.extend(rules_path.iter().map(|p| production_dir.join(p)));
    out
}

/// A router's rule class compiled, with the DTL classes of each of its `send transform=`
/// values (by [`CompiledRules::transforms`] index; a comma list is several, run in order).
pub type RouterClass = (CompiledRules, Vec<Vec<crate::transform::Compiled>>);

/// The compiled rules of every router of `production` that names a `BusinessRuleName`,
/// by item name (one library read for them all). Routers without one are not listed.
pub fn production_rules(
    production: &crate::config::Production,
) -> Vec<(String, Result<RouterClass, RuleError>)> {
    use crate::items::kinds::routing_engine::RouterSettings;
    let named: Vec<(&str, &str)> = production
        .items
        .iter()
        .filter_map(|item| {
            let router = item.settings.as_ref()?.of::<RouterSettings>()?;
            let class = router.business_rule_name.trim();
            (!class.is_empty()).then_some((item.name.as_str(), class))
        })
        .collect();
    if named.is_empty() {
        return Vec::new();
    }
    let engine = &production.engine;
    let folders = match &engine.source_dir {
        Some(dir) => rule_folders(dir, &engine.rules_path),
        None => engine.rules_path.clone(),
    };
    let mut lib = Library::load(&folders);
    lib.transform_skip_code = engine.transform_skip_code;
    named
        .into_iter()
        .map(|(item, class)| {
            let compiled = lib.compile(class).and_then(|rules| {
                let dtls = crate::transform::library::router_transforms(&lib, &rules)?;
                Ok((rules, dtls))
            });
            (item.to_owned(), compiled)
        })
        .collect()
}
