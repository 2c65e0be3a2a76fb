//! `hie transform DTLCLASS MESSAGE… [--diff]`: run a DTL class on HL7 messages and print
//! each output message (segments one per line; `--raw` writes the bytes as produced), or
//! with `--diff` the fields that changed. For an analyst moving a production: nothing is
//! sent anywhere.
//!
//! DTLCLASS is a file (`.cls`, an `<Export>` `.xml`, or hie's `.toml` form; its first
//! class, or `--class`) or a class name looked for in the folders of `--production` (its
//! file's folder and `[engine] rules_path`) and of `--rules-path` (default: the current
//! folder); subtransforms and lookup tables are found there too. Exit status: 0 when the
//! transform ran on every message, 1 when the class does not load (the error names file,
//! class, action and line), 2 when a message file cannot be read or holds no HL7 message,
//! 3 when the transform failed on a message (the error names the class and line).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use hie_core::rules::library::Library;
use hie_core::transform::Compiled;
use hie_hl7::Message;

use crate::class_library::{self, ClassArgs};
use crate::message_files::for_each_message;

#[derive(Debug, Args)]
pub struct TransformArgs {
    /// The DTL class: a .cls/.xml/.toml file, or a class name found in the folders.
    dtl_class: String,
    /// HL7 files (each may hold several messages).
    #[arg(required = true)]
    messages: Vec<PathBuf>,
    /// Print the fields that changed instead of the output message.
    #[arg(long)]
    diff: bool,
    /// Write the output messages' bytes as produced (segment terminators included).
    #[arg(long, conflicts_with = "diff")]
    raw: bool,
    #[command(flatten)]
    classes: ClassArgs,
    /// Load a class with `code` / `sql` blocks, skipping them (as `[engine]
    /// transform_skip_code = true`).
    #[arg(long)]
    skip_code: bool,
}

/// Runs `hie transform`.
pub fn run(args: &TransformArgs) -> ExitCode {
    let (lib, t) = match load(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("hie: {e}");
            return ExitCode::from(1);
        }
    };
    for (element, line) in &t.skipped {
        eprintln!("hie: class {}: <{element}> at line {line} skipped", t.name);
    }
    let mut out: Vec<u8> = Vec::new();
    let each = |file: &Path, n: usize, m: &Message<'_>| {
        let result = t.run(m, lib.lookups()).map_err(|e| {
            let _ = std::io::stdout().write_all(&out);
            eprintln!("hie: {} message {n}: {e}", file.display());
            ExitCode::from(3)
        })?;
        let name = format!("{}#{n}", file.display());
        if args.raw {
            out.extend_from_slice(&result.message);
        } else if args.diff {
            let mut text = format!("{name}\n");
            diff(m, &result.message, &mut text);
            out.extend_from_slice(text.as_bytes());
        } else {
            for seg in result.message.split(|&b| b == b'\r' || b == b'\n') {
                if !seg.is_empty() {
                    out.extend_from_slice(seg);
                    out.push(b'\n');
                }
            }
        }
        for line in &result.trace {
            eprintln!("hie: {name}: trace: {line}");
        }
        Ok(())
    };
    if let Err(code) = for_each_message(&args.messages, each) {
        return code;
    }
    let _ = std::io::stdout().write_all(&out);
    ExitCode::SUCCESS
}

fn load(args: &TransformArgs) -> Result<(Library, Compiled), String> {
    let (mut lib, skip_code) = class_library::load(&args.classes)?;
    let class = class_library::class_named(&args.dtl_class, &args.classes, "DTL", |f| {
        let transforms = lib.transforms_mut();
        transforms.add_file(f).map_err(|e| e.to_string())
    })?;
    let t = lib
        .compile_transform(&class, skip_code || args.skip_code)
        .map_err(|e| e.to_string())?;
    Ok((lib, t))
}

/// The changed fields, segment by segment (segments matched by id and occurrence):
/// `PID(1)-5: "old" -> "new"`, `+ NTE(2): ...` for an added segment, `- SFT(1)` for a
/// removed one.
fn diff(before: &Message<'_>, after: &[u8], text: &mut String) {
    let Ok(after) = Message::scan(after) else {
        let _ = writeln!(text, "  (the output does not scan as HL7)");
        return;
    };
    let occ = |m: &Message<'_>| -> Vec<(String, usize)> {
        let mut seen: Vec<(String, usize)> = Vec::new();
        m.segments()
            .map(|s| {
                let id = String::from_utf8_lossy(s.id()).into_owned();
                let n = seen.iter().filter(|(i, _)| *i == id).count() + 1;
                seen.push((id.clone(), n));
                (id, n)
            })
            .collect()
    };
    let (keys_a, keys_b) = (occ(before), occ(&after));
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut changed = false;
    for (i, key) in keys_a.iter().enumerate() {
        let Some(seg_a) = before.segment(i) else {
            continue;
        };
        let Some(j) = keys_b.iter().position(|k| k == key) else {
            let _ = writeln!(text, "  - {}({})", key.0, key.1);
            changed = true;
            continue;
        };
        let Some(seg_b) = after.segment(j) else {
            continue;
        };
        let n = seg_a.field_count().max(seg_b.field_count()) as u32;
        for f in 1..=n {
            let (a, b) = (
                seg_a.field(f).unwrap_or_default(),
                seg_b.field(f).unwrap_or_default(),
            );
            if a != b {
                let _ = writeln!(
                    text,
                    "  {}({})-{f}: {:?} -> {:?}",
                    key.0,
                    key.1,
                    lossy(a),
                    lossy(b)
                );
                changed = true;
            }
        }
    }
    for (j, key) in keys_b.iter().enumerate() {
        if !keys_a.contains(key)
            && let Some(s) = after.segment(j)
        {
            let _ = writeln!(text, "  + {}({}): {}", key.0, key.1, lossy(s.as_bytes()));
            changed = true;
        }
    }
    if !changed {
        let _ = writeln!(text, "  (no change)");
    }
}
