//! IRIS routing rules (`Ens.Rule.Definition` classes), without I/O: the model
//! ([`model`]), readers of the `.cls`, `<Export>` and TOML forms ([`read`],
//! [`toml_form`]), the condition language ([`expr`]) and evaluation ([`eval`]).
//!
//! Loading is check-first: every condition and value is compiled when the class loads,
//! and one that hie cannot compile is a [`RuleError`] naming the file, class, rule and
//! line — never a silent false when a message arrives.

pub mod compile;
pub mod datetime;
pub mod eval;
pub mod expr;
pub mod func;
pub mod library;
pub mod lookup;
pub mod model;
pub mod msh;
pub mod pattern;
pub mod reach;
pub mod read;
pub mod toml_form;
pub mod value;
pub mod vpath;

use std::fmt;
use std::path::{Path, PathBuf};

pub use compile::{CompiledRules, NO_TRANSFORM, Resources};
pub use eval::{Decision, Fired, Input, Outcome};
pub use lookup::Lookups;
pub use model::{Action, Constraint, ConstraintKind, Rule, RuleClass, RuleSet, When};

/// A rule class that cannot load: where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct RuleError {
    /// The file read.
    pub file: PathBuf,
    /// 1-based line in that file.
    pub line: u32,
    /// The class, when known.
    pub class: Option<String>,
    /// The rule, when the error is inside one (its name; may be empty).
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(class) = &self.class {
            write!(f, "class {class}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Reads the rule classes of one file, by its form: `.cls` (UDL), `.toml` (hie's form),
/// anything else as XML (`<Export>`; a file with no rule class yields none).
pub fn read_rule_file(text: &str, file: &Path) -> Result<Vec<RuleClass>, RuleError> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("cls") => read::read_cls(text, file),
        Some("toml") => toml_form::read_toml(text, file).map(|c| vec![c]),
        _ => read::read_export(text, file),
    }
}

#[cfg(test)]
mod tests;
