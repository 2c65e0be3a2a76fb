//! Finding DTL classes by name: the rules' [`Library`] reads the same folders (the
//! production's own folder, then `[engine] rules_path`) and hands every `.cls` with
//! `XData DTL`, XML file with `<transform` and TOML file with a top-level `transform =`
//! to [`Transforms::read`]. A file that holds one but does not read is kept as an error
//! and reported when its class is asked for. The first file (in name order) defining a
//! class wins; the second is reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::compile::{Env, compile_transform};
use super::model::Transform;
use super::{Compiled, TransformError, holds_transform, read_transform_file};
use crate::rules::library::{Library, RULE_FILE_BYTES_MAX};

/// The DTL classes of a set of folders.
#[derive(Debug, Default)]
pub struct Transforms {
    classes: HashMap<String, (PathBuf, Transform)>,
    broken: Vec<TransformError>,
}

impl Transforms {
    /// Reads the DTL classes of one file of a folder (called by [`Library::load`]).
    pub(crate) fn read(&mut self, file: &Path, text: &str, ext: &str, too_big: bool) {
        if !holds_transform(text, ext) {
            return;
        }
        if too_big {
            self.broken.push(TransformError {
                file: file.to_path_buf(),
                line: 1,
                class: None,
                action: None,
                message: format!(
                    "larger than the {RULE_FILE_BYTES_MAX}-byte limit for a class file"
                ),
            });
            return;
        }
        match read_transform_file(text, file) {
            Ok(list) => {
                for t in list {
                    if let Some((first, _)) = self.classes.get(&t.name) {
                        self.broken.push(TransformError {
                            file: file.to_path_buf(),
                            line: t.line,
                            class: Some(t.name.clone()),
                            action: None,
                            message: format!(
                                "the class is defined in {} too; hie uses that one",
                                first.display()
                            ),
                        });
                        continue;
                    }
                    self.classes.insert(t.name.clone(), (file.to_path_buf(), t));
                }
            }
            Err(e) => self.broken.push(e),
        }
    }

    /// Adds the DTL classes of one more file (`hie transform FILE`), replacing classes of
    /// the same name; their names.
    pub fn add_file(&mut self, file: &Path) -> Result<Vec<String>, TransformError> {
        let text = std::fs::read_to_string(file).map_err(|e| TransformError {
            file: file.to_path_buf(),
            line: 0,
            class: None,
            action: None,
            message: format!("cannot read: {e}"),
        })?;
        let list = read_transform_file(&text, file)?;
        let names = list.iter().map(|t| t.name.clone()).collect();
        for t in list {
            self.classes.insert(t.name.clone(), (file.to_path_buf(), t));
        }
        Ok(names)
    }

    /// The class named `name`, with its file.
    pub fn get(&self, name: &str) -> Option<&(PathBuf, Transform)> {
        self.classes.get(name)
    }
}

impl Library {
    /// The DTL classes read.
    pub fn transforms(&self) -> &Transforms {
        &self.transforms
    }

    /// The DTL classes read, to add a file to.
    pub fn transforms_mut(&mut self) -> &mut Transforms {
        &mut self.transforms
    }

    /// Compiles the DTL class named `name` (`skip_code`: load a class with `code` / `sql`
    /// blocks without them).
    pub fn compile_transform(
        &self,
        name: &str,
        skip_code: bool,
    ) -> Result<Compiled, TransformError> {
        let Some((file, t)) = self.transforms.classes.get(name) else {
            if let Some(e) = self
                .transforms
                .broken
                .iter()
                .find(|e| e.class.as_deref() == Some(name))
            {
                return Err(e.clone());
            }
            let mut message = format!(
                "no DTL class {name} in any .cls, .xml or .toml file of {}",
                self.folders
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for e in self.transforms.broken.iter().filter(|e| e.class.is_none()) {
                message.push_str(&format!("; unreadable: {e}"));
            }
            return Err(TransformError {
                file: PathBuf::new(),
                line: 0,
                class: Some(name.to_owned()),
                action: None,
                message,
            });
        };
        let find = |n: &str| self.transforms.classes.get(n).cloned();
        let env = Env {
            lookups: self.lookups(),
            find: &find,
            skip_code,
        };
        compile_transform(t, file, &env)
    }
}

/// Checks that every `send transform="X"` of rule class `class` (read from `file`) names a
/// DTL class that loads: an error names the rule file, the send's line and why the
/// transform does not load (its own file, line and action).
pub fn check_sends(
    lib: &Library,
    class: &crate::rules::RuleClass,
    file: &Path,
) -> Result<(), crate::rules::RuleError> {
    use crate::rules::{Action, Rule};
    fn sends<'r>(rules: &'r [Rule], out: &mut Vec<(&'r str, &'r str, u32)>) {
        for r in rules {
            let blocks = r.whens.iter().map(|w| &w.actions).chain(r.otherwise.iter());
            for actions in blocks {
                for a in actions {
                    match a {
                        Action::Send {
                            transform, line, ..
                        } if !transform.is_empty() => out.push((&r.name, transform, *line)),
                        Action::Foreach { rules, .. } => sends(rules, out),
                        _ => {}
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    for set in &class.rule_sets {
        sends(&set.rules, &mut found);
    }
    for (rule, transform, line) in found {
        for name in crate::rules::model::split_list(transform) {
            if let Err(e) = lib.compile_transform(&name, lib.transform_skip_code) {
                return Err(crate::rules::RuleError {
                    file: file.to_path_buf(),
                    line,
                    class: Some(class.name.clone()),
                    rule: Some(rule.to_owned()),
                    message: format!("send transform={name:?} does not load: {e}"),
                });
            }
        }
    }
    Ok(())
}

/// The DTL classes of each `send transform=` value of `rules` (in
/// [`crate::rules::CompiledRules::transforms`] order; a comma list is a chain, run in
/// order). [`check_sends`] has loaded each already; an error here names the rule file.
pub fn router_transforms(
    lib: &Library,
    rules: &crate::rules::CompiledRules,
) -> Result<Vec<Vec<Compiled>>, crate::rules::RuleError> {
    rules
        .transforms()
        .iter()
        .map(|value| {
            crate::rules::model::split_list(value)
                .iter()
                .map(|name| {
                    lib.compile_transform(name, lib.transform_skip_code)
                        .map_err(|e| crate::rules::RuleError {
                            file: rules.file.clone(),
                            line: 0,
                            class: Some(rules.class.clone()),
                            rule: None,
                            message: format!("send transform={name:?} does not load: {e}"),
                        })
                })
                .collect()
        })
        .collect()
}
