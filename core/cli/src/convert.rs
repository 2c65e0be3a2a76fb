//! `hie convert IN OUT`: translates a production between its forms. The input form is
//! detected (`.cls`, `.xml` Export or bare `<Production>`, `.toml`); the output form is
//! OUT's extension: `.toml`, `.xml` (a bare `<Production>`) or `.cls`. `OUT` may be `-`
//! for standard output, with `--to`.
//!
//! The translation is of the production as written: nothing is disabled or defaulted, and
//! the output is deterministic. Validation problems do not stop it; they are summarised on
//! standard error with a pointer to `hie check`. IRIS forms have no place for hie's
//! `[engine]` settings: converting a TOML production with non-default engine settings to
//! XML or `.cls` says so on standard error.
//!
//! Exit status: 0 written, 1 the input has syntax errors, 2 unreadable input or
//! unwritable output.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use hie_core::config::{self, ConfigError, EngineSettings, Format, LoadOptions};

/// Output forms, for `--to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum To {
    /// hie's TOML form.
    Toml,
    /// A bare IRIS `<Production>` document.
    Xml,
    /// An IRIS `.cls` class.
    Cls,
}

/// Arguments of `hie convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Input production (.cls, .xml, .toml).
    pub input: PathBuf,
    /// Output file; its extension picks the form unless --to is given; `-` is stdout.
    pub output: PathBuf,
    /// Output form, overriding OUT's extension.
    #[arg(long, value_enum)]
    pub to: Option<To>,
}

/// Runs `hie convert`.
pub fn run(args: &ConvertArgs) -> ExitCode {
    let format = match args.to {
        Some(To::Toml) => Some(Format::Toml),
        Some(To::Xml) => Some(Format::Xml),
        Some(To::Cls) => Some(Format::Cls),
        None => Format::from_extension(&args.output),
    };
    let Some(format) = format else {
        eprintln!(
            "hie convert: {}",
            ConfigError::UnknownOutputFormat {
                path: args.output.clone()
            }
        );
        return ExitCode::from(2);
    };
    let (production, read_warnings) = match config::read(&args.input) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("hie convert: {e}");
            return ExitCode::from(if e.is_unreadable() { 2 } else { 1 });
        }
    };
    for w in &read_warnings {
        eprintln!("warning: {w}");
    }
    report_problems(&args.input, &production);
    if format != Format::Toml && production.engine != EngineSettings::default() {
        eprintln!(
            "warning: IRIS forms have no [engine] section; the engine settings are not written"
        );
    }
    let text = config::render(&production, format);
    let written = if args.output.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())
    } else {
        std::fs::write(&args.output, text)
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(source) => {
            eprintln!(
                "hie convert: {}",
                ConfigError::Write {
                    path: args.output.clone(),
                    source
                }
            );
            ExitCode::from(2)
        }
    }
}

/// Validates a copy (unknown classes allowed, nothing changed in what is written) and
/// summarises what `hie check` would report.
fn report_problems(input: &std::path::Path, production: &config::Production) {
    let mut copy = production.clone();
    let opts = LoadOptions {
        allow_unknown: true,
        strict: false,
    };
    let findings = config::validate::validate(&mut copy, input, &opts);
    if !findings.errors.is_empty() {
        eprintln!(
            "note: the production has {} error(s) and {} warning(s); `hie check {}` lists them",
            findings.errors.len(),
            findings.warnings.len(),
            input.display()
        );
    }
}
