//! The class library `hie rules test` and `hie transform` load: the folders of
//! `--production` (its file's folder and `[engine] rules_path`) and of `--rules-path`
//! (the current folder when neither names one), more lookup files (`--lookup`), and the
//! class named on the command line, as a file or as a class name.

use std::path::{Path, PathBuf};

use clap::Args;
use hie_core::rules::library::{Library, rule_folders};

/// Where the classes come from: the options both commands take.
#[derive(Debug, Args)]
pub struct ClassArgs {
    /// The class to take from a class file holding several.
    #[arg(long)]
    pub class: Option<String>,
    /// A production file whose folder and `[engine] rules_path` hold the classes (its
    /// `[engine] transform_skip_code` applies to `hie transform`).
    #[arg(long)]
    pub production: Option<PathBuf>,
    /// A folder of classes and lookup tables (repeatable; default: the current folder).
    #[arg(long = "rules-path")]
    pub rules_path: Vec<PathBuf>,
    /// A lookup table file (`<lookupTable>` export or TOML `[lookup.NAME]`), repeatable.
    #[arg(long)]
    pub lookup: Vec<PathBuf>,
}

/// The library of the folders `args` names with its lookup files added, and the
/// production's `[engine] transform_skip_code` (false without one).
pub fn load(args: &ClassArgs) -> Result<(Library, bool), String> {
    let mut folders = Vec::new();
    let mut skip_code = false;
    if let Some(p) = &args.production {
        let (production, _) = hie_core::config::read(p).map_err(|e| e.to_string())?;
        let dir = production
            .engine
            .source_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        folders.extend(rule_folders(&dir, &production.engine.rules_path));
        skip_code = production.engine.transform_skip_code;
    }
    folders.extend(args.rules_path.iter().cloned());
    if folders.is_empty() {
        folders.push(PathBuf::from("."));
    }
    let mut lib = Library::load(&folders);
    for file in &args.lookup {
        lib.add_file(file).map_err(|e| e.to_string())?;
    }
    Ok((lib, skip_code))
}

/// The class the command runs: `arg` names a file (added with `add_file`, which answers
/// the classes it holds; `--class` picks one, else the first) or is a class name. `kind`
/// names the classes in the error for a file that holds none ("rule", "DTL").
pub fn class_named(
    arg: &str,
    args: &ClassArgs,
    kind: &str,
    add_file: impl FnOnce(&Path) -> Result<Vec<String>, String>,
) -> Result<String, String> {
    let as_file = Path::new(arg);
    if !as_file.is_file() {
        return Ok(arg.to_owned());
    }
    let names = add_file(as_file)?;
    match &args.class {
        Some(c) => Ok(c.clone()),
        None => names
            .into_iter()
            .next()
            .ok_or_else(|| format!("{} holds no {kind} class", as_file.display())),
    }
}
