//! Production configuration: one model ([`Production`]), read from the IRIS forms (`.cls`
//! class text, `<Export>` XML, bare `<Production>` XML) or hie's TOML form, validated before
//! anything starts, and written back to any form by `hie convert`.
//!
//! Entry points:
//! - [`load`]: read + validate; what the engine calls. `Err` when the file cannot be read or
//!   the production is invalid; every diagnostic names file, line and item.
//! - [`analyze`]: read + validate, keeping everything found even when invalid (`hie check`).
//! - [`read`]: read only, raw model as written (`hie convert`).
//! - [`render`] / [`write`]: a production in any form, deterministically.
//!
//! Format detection ([`Format::detect`]): by extension (`.toml`, `.cls`, `.xml`), else by
//! content (a leading `<` is XML, `XData` is a class, anything else TOML). An `.xml` file is
//! an `<Export>` or a bare `<Production>` by its root element.
//!
//! Limits: the file is read whole and must be UTF-8 (IRIS exports are); files above
//! [`CONFIG_BYTES_MAX`] are refused as unreadable.

pub mod catalog;
pub mod iris;
pub mod model;
pub mod response_from;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod suggest;
pub mod toml;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::{
    EngineSettings, Item, ItemKind, Production, RawSettings, SettingTarget, SettingValue,
    SourceLocation, WalSync,
};
pub use settings::{
    AckMode, BatchHandling, CharsetValidation, CommonSettings, Framing, ItemSettings, KindSettings,
    OverflowStrategy, RETRY_INTERVAL_MIN_S, ReplyCodeActions, RestartPolicy, RestartWhen, Routes,
    StayConnected, Timeout,
};
pub use validate::{Findings, Placement, placement};

/// Largest configuration file read: 64 MiB (a large trust production is well under 1 MiB).
pub const CONFIG_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// One finding: where, which item, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as given.
    pub file: PathBuf,
    /// 1-based line; 0 when the finding is about the whole file.
    pub line: u32,
    /// The item concerned, if any.
    pub item: Option<String>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(item) = &self.item {
            write!(f, "item {item:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Options of [`load`] and [`analyze`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Load items of classes hie does not run, disabled, instead of failing.
    pub allow_unknown: bool,
    /// Turn warnings (dangling targets, …) into errors.
    pub strict: bool,
}

/// An item whose class hie does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownClass {
    /// Item name.
    pub item: String,
    /// Its class.
    pub class: String,
}

/// A setting hie records but does not honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedSetting {
    /// Item name.
    pub item: String,
    /// IRIS setting name.
    pub setting: String,
    /// Host or Adapter.
    pub target: SettingTarget,
    /// Line of the setting.
    pub line: u32,
    /// True when the value is the IRIS default, so ignoring it changes nothing.
    pub at_default: bool,
}

/// A valid production, ready for the engine.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The production; items of unknown classes are disabled, every other item has its
    /// typed [`ItemSettings`].
    pub production: Production,
    /// Warnings (empty under `strict`, where they are errors).
    pub warnings: Vec<Diagnostic>,
    /// Items of classes hie does not run (only with `allow_unknown`).
    pub unknown_classes: Vec<UnknownClass>,
    /// Settings hie does not honour.
    pub unsupported_settings: Vec<UnsupportedSetting>,
}

/// Everything `hie check` reports: the production when it could be read, and the findings.
#[derive(Debug)]
pub struct Analysis {
    /// `None` when the file is not a readable production (syntax errors).
    pub production: Option<Production>,
    /// Errors, warnings, unknown classes, unsupported settings.
    pub findings: Findings,
}

impl Analysis {
    /// True when the production may run.
    pub fn is_valid(&self) -> bool {
        self.production.is_some() && self.findings.errors.is_empty()
    }
}

/// Failures of the configuration layer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_BYTES_MAX`].
    #[error("{} is {bytes} bytes, above the {CONFIG_BYTES_MAX}-byte limit for a configuration", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{} is not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The production is invalid; every error found is listed.
    #[error("{} is not a valid production ({} error(s)):\n{}", path.display(), errors.len(), list(errors))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every error.
        errors: Vec<Diagnostic>,
        /// Warnings found on the way.
        warnings: Vec<Diagnostic>,
    },
    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output format cannot be told from the file name.
    #[error("{}: cannot tell the output format; use a .toml, .xml or .cls name", path.display())]
    UnknownOutputFormat {
        /// The file.
        path: PathBuf,
    },
    /// A `ReplyCodeActions` setting that does not follow the IRIS syntax.
    #[error("ReplyCodeActions entry {index} ({entry:?}): {reason}")]
    ReplyCodeActions {
        /// 0-based position of the entry in the comma-separated list.
        index: usize,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// True when the input could not be read at all (exit status 2), as opposed to read and
    /// found invalid (exit status 1).
    pub fn is_unreadable(&self) -> bool {
        !matches!(self, ConfigError::Invalid { .. })
    }
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A production file form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.cls` UDL class text with `XData ProductionDefinition`.
    Cls,
    /// XML: `<Export>` or bare `<Production>` (read); bare `<Production>` (written).
    Xml,
    /// hie's TOML form.
    Toml,
}

impl Format {
    /// The format of an output path, by extension.
    pub fn from_extension(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "cls" => Some(Format::Cls),
            "xml" => Some(Format::Xml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    /// The format of an input: by extension, else by content.
    pub fn detect(path: &Path, text: &str) -> Format {
        if let Some(format) = Format::from_extension(path) {
            return format;
        }
        let start = text.trim_start_matches('\u{feff}').trim_start();
        if start.starts_with('<') {
            Format::Xml
        } else if text.contains("XData") {
            Format::Cls
        } else {
            Format::Toml
        }
    }
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(read_err)?.len();
    if bytes > CONFIG_BYTES_MAX {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            bytes,
        });
    }
    let data = std::fs::read(path).map_err(read_err)?;
    let text = String::from_utf8(data).map_err(|e| ConfigError::NotText {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    // A byte-order mark is not part of any form.
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text))
}

/// Parses `text` (the content of `path`) in `format`: the raw production and the warnings of
/// reading, or every syntax error.
pub fn parse_str(text: &str, path: &Path, format: Format) -> iris::ReadResult {
    match format {
        Format::Cls => iris::read_cls(text, path),
        Format::Xml => iris::read_xml(text, path),
        Format::Toml => toml::read_toml(text, path),
    }
}

/// Reads `path` without validating it: the production exactly as written, and the warnings
/// of reading. `Err(Invalid)` on syntax errors.
pub fn read(path: &Path) -> Result<(Production, Vec<Diagnostic>), ConfigError> {
    let parsed = read_parsed(path)?;
    if parsed.errors.is_empty() {
        Ok((parsed.production, parsed.warnings))
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors: parsed.errors,
            warnings: parsed.warnings,
        })
    }
}

fn read_parsed(path: &Path) -> Result<iris::Parsed, ConfigError> {
    read_parsed_text(path).map(|mut parsed| {
        // Rule classes are found beside the production file (crate::rules::library).
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        parsed.production.engine.source_dir = Some(dir);
        parsed
    })
}

fn read_parsed_text(path: &Path) -> Result<iris::Parsed, ConfigError> {
    let text = read_text(path)?;
    parse_str(&text, path, Format::detect(path, &text)).map_err(|errors| ConfigError::Invalid {
        path: path.to_path_buf(),
        errors,
        warnings: Vec::new(),
    })
}

/// Reads and validates `path`, keeping everything found. `Err` only when unreadable.
pub fn analyze(path: &Path, opts: &LoadOptions) -> Result<Analysis, ConfigError> {
    match read_parsed(path) {
        Ok(parsed) => {
            let mut production = parsed.production;
            let mut findings = validate::validate(&mut production, path, opts);
            findings.errors.splice(0..0, parsed.errors);
            if opts.strict {
                findings.errors.extend(parsed.warnings);
            } else {
                findings.warnings.splice(0..0, parsed.warnings);
            }
            // In file order, so a reader sees them as they go down the file.
            findings.errors.sort_by_key(|d| d.line);
            findings.warnings.sort_by_key(|d| d.line);
            Ok(Analysis {
                production: Some(production),
                findings,
            })
        }
        Err(ConfigError::Invalid { errors, .. }) => Ok(Analysis {
            production: None,
            findings: Findings {
                errors,
                ..Findings::default()
            },
        }),
        Err(e) => Err(e),
    }
}

/// Reads and validates `path` for the engine.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let analysis = analyze(path, opts)?;
    let findings = analysis.findings;
    match analysis.production {
        Some(production) if findings.errors.is_empty() => Ok(Loaded {
            production,
            warnings: findings.warnings,
            unknown_classes: findings.unknown_classes,
            unsupported_settings: findings.unsupported_settings,
        }),
        _ => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors: findings.errors,
            warnings: findings.warnings,
        }),
    }
}

/// `production` in `format` (XML: a bare `<Production>` document).
pub fn render(production: &Production, format: Format) -> String {
    match format {
        Format::Cls => iris::to_cls(production),
        Format::Xml => iris::to_production_xml(production),
        Format::Toml => toml::to_toml(production),
    }
}

/// Writes `production` to `path` in the format its extension names.
pub fn write(production: &Production, path: &Path) -> Result<(), ConfigError> {
    let format = Format::from_extension(path).ok_or_else(|| ConfigError::UnknownOutputFormat {
        path: path.to_path_buf(),
    })?;
    std::fs::write(path, render(production, format)).map_err(|source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_detected_by_extension_then_content() {
        assert_eq!(Format::detect(Path::new("a.cls"), "<x"), Format::Cls);
        assert_eq!(Format::detect(Path::new("a"), "  <Production"), Format::Xml);
        assert_eq!(
            Format::detect(Path::new("a"), "Class A { XData P { } }"),
            Format::Cls
        );
        assert_eq!(Format::detect(Path::new("a"), "[production]"), Format::Toml);
    }

    #[test]
    fn missing_file_is_unreadable_and_invalid_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load(&dir.path().join("none.toml"), &LoadOptions::default()).unwrap_err();
        assert!(missing.is_unreadable());
        let bad = dir.path().join("bad.xml");
        std::fs::write(&bad, "<Production Name=\"P\"><Item").unwrap();
        let invalid = load(&bad, &LoadOptions::default()).unwrap_err();
        assert!(!invalid.is_unreadable(), "{invalid}");
    }

    #[test]
    fn non_utf8_file_is_unreadable_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.xml");
        std::fs::write(&path, b"<Production Name=\"\xe9\"/>").unwrap();
        match load(&path, &LoadOptions::default()) {
            Err(ConfigError::NotText { offset, .. }) => assert_eq!(offset, 18),
            other => panic!("{other:?}"),
        }
    }

    fn corpus_productions() -> Vec<(PathBuf, String)> {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/iris/productions");
        let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
            .expect("corpus productions")
            .map(|e| e.unwrap().path())
            .filter(|p| Format::from_extension(p).is_some())
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p, text)
            })
            .collect();
        files.sort();
        assert!(files.len() >= 8);
        files
    }

    /// Parses and validates, asserting only that it returns: no panic on any input.
    fn parse_and_validate(text: &str, path: &Path) -> bool {
        match parse_str(text, path, Format::detect(path, text)) {
            Ok(parsed) => {
                let mut production = parsed.production;
                let opts = LoadOptions {
                    allow_unknown: true,
                    strict: true,
                };
                let _ = validate::validate(&mut production, path, &opts);
                let _ = render(&production, Format::Toml);
                true
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                false
            }
        }
    }

    #[test]
    fn truncated_corpus_productions_never_panic_and_report_errors() {
        for (path, text) in corpus_productions() {
            let mut cut = 0;
            while cut < text.len() {
                if text.is_char_boundary(cut) {
                    parse_and_validate(&text[..cut], &path);
                }
                cut += 13;
            }
            assert!(parse_and_validate(&text, &path), "{}", path.display());
        }
    }

    #[test]
    fn mutated_corpus_productions_never_panic() {
        // xorshift: deterministic, so a failure reproduces.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const NASTY: &[u8] = b"<>&\"'/]![=\n{}#;";
        for (path, text) in corpus_productions() {
            for _ in 0..300 {
                let mut bytes = text.clone().into_bytes();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = NASTY[(next() % NASTY.len() as u64) as usize];
                }
                if let Ok(mutated) = String::from_utf8(bytes) {
                    parse_and_validate(&mutated, &path);
                }
            }
        }
    }

    #[test]
    fn every_corpus_production_converts_to_toml_and_back_to_the_same_model() {
        for (path, text) in corpus_productions() {
            let original = parse_str(&text, &path, Format::detect(&path, &text))
                .unwrap()
                .production;
            let toml_text = render(&original, Format::Toml);
            let back = parse_str(&toml_text, Path::new("x.toml"), Format::Toml)
                .unwrap()
                .production;
            assert!(original.same_definition(&back), "{}", path.display());
            assert_eq!(toml_text, render(&back, Format::Toml), "{}", path.display());
        }
    }

    #[test]
    fn reading_and_validation_errors_are_reported_together_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xml");
        let text = "<Production Name=\"P\">\n<Item Name=\"A\">\n</Item>\n<Item Name=\"B\" ClassName=\"EnsLib.HL7.Service.TCPService\" PoolSize=\"two\">\n<Setting Target=\"Adapter\" Name=\"Port\">0</Setting>\n</Item>\n</Production>";
        std::fs::write(&path, text).unwrap();
        let analysis = analyze(&path, &LoadOptions::default()).unwrap();
        let found: Vec<(u32, Option<&str>, &str)> = analysis
            .findings
            .errors
            .iter()
            .map(|d| (d.line, d.item.as_deref(), d.message.as_str()))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (2, Some("A")));
        assert!(found[0].2.contains("ClassName"));
        assert_eq!((found[1].0, found[1].1), (4, Some("B")));
        assert!(found[1].2.contains("PoolSize"));
        assert_eq!((found[2].0, found[2].1), (5, Some("B")));
        assert!(found[2].2.contains("Port"));
    }

    #[test]
    fn diagnostic_display_names_file_line_and_item() {
        let d = Diagnostic {
            file: PathBuf::from("p.cls"),
            line: 12,
            item: Some("ADT In".into()),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "p.cls:12: item \"ADT In\": bad");
    }
}
