//! IRIS data transformations (`Ens.DataTransformDTL` classes), without I/O: the model
//! ([`model`]), readers of the `.cls`, `<Export>` and TOML forms ([`read`],
//! [`toml_form`]), paths ([`path`]), compiling ([`compile`]) and running ([`exec`]) on
//! a message ([`doc`]).
//!
//! Loading is check-first: every path and value compiles when the class loads, and one
//! that hie cannot compile is a [`TransformError`] naming the file, class, action and
//! line. `code` and `sql` blocks (ObjectScript) cannot run in hie: a class holding one
//! loads only when the production says to skip them (`[engine] transform_skip_code`).

pub mod compile;
pub mod doc;
pub mod exec;
pub mod library;
pub mod model;
pub mod path;
pub mod read;
pub mod toml_form;

use std::fmt;
use std::path::{Path, PathBuf};

pub use compile::{Compiled, compile_transform};
pub use exec::{Output, RunError};
pub use model::{Action, AssignKind, Create, Transform};

/// A DTL class that cannot load: where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct TransformError {
    /// The file read.
    pub file: PathBuf,
    /// 1-based line in that file.
    pub line: u32,
    /// The class, when known.
    pub class: Option<String>,
    /// The action (element name) the error is in.
    pub action: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(class) = &self.class {
            write!(f, "class {class}: ")?;
        }
        if let Some(action) = &self.action {
            write!(f, "<{action}>: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Reads the DTL classes of one file, by its form: `.cls`, `.toml` (hie's form), anything
/// else as XML (`<Export>`; a file with no DTL class yields none).
pub fn read_transform_file(text: &str, file: &Path) -> Result<Vec<Transform>, TransformError> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("cls") => read::read_cls(text, file),
        Some("toml") => toml_form::read_toml(text, file).map(|t| vec![t]),
        _ => read::read_export(text, file),
    }
}

/// Whether a file's text can hold a DTL class (read only those).
pub fn holds_transform(text: &str, ext: &str) -> bool {
    match ext {
        "cls" => text.contains("XData DTL"),
        "xml" => text.contains("<transform"),
        _ => text
            .lines()
            .any(|l| l.trim_start().starts_with("transform") && l.contains('=')),
    }
}

#[cfg(test)]
mod tests;
