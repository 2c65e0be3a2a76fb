//! `hie rules test RULECLASS MESSAGE…`: run a routing rule class on HL7 messages and print,
//! per message, the rule set that ran, the rules that fired, where the message goes and
//! the evaluation's trace. For an analyst moving a production: nothing is sent anywhere.
//!
//! RULECLASS is a file (`.cls`, an `<Export>` `.xml`, or hie's `.toml` form; its first
//! class, or `--class`) or a class name looked for in the folders of `--production` (its
//! file's folder and `[engine] rules_path`) and of `--rules-path` (default: the current
//! folder). Exit status: 0 when the rules ran on every message, 1 when the class does not
//! load (the error names file, class, rule and line), 2 when a message file cannot be
//! read or holds no HL7 message.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hie_core::rules::{CompiledRules, Input, Outcome, datetime};
use hie_hl7::Message;

use crate::class_library::{self, ClassArgs};
use crate::message_files::for_each_message;

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Run a rule class on HL7 messages and print what it decides for each.
    Test(TestArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The rule class: a .cls/.xml/.toml file, or a class name found in the rule folders.
    rule_class: String,
    /// HL7 files (each may hold several messages).
    #[arg(required = true)]
    messages: Vec<PathBuf>,
    #[command(flatten)]
    classes: ClassArgs,
    /// The sending item's name (the `source` constraint and `Source`).
    #[arg(long, default_value = "")]
    source: String,
    /// The schema category of the messages' DocType (default: each message's MSH-12).
    #[arg(long)]
    category: Option<String>,
    /// The time rule sets' effective dates are compared with (`YYYY-MM-DDTHH:MM:SS`;
    /// default: now).
    #[arg(long)]
    now: Option<String>,
}

/// Runs `hie rules`.
pub fn run(args: RulesArgs) -> ExitCode {
    match args.command {
        RulesCommand::Test(args) => test(&args),
    }
}

fn test(args: &TestArgs) -> ExitCode {
    let rules = match load(args) {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("hie: {e}");
            return ExitCode::from(1);
        }
    };
    let now = args.now.clone().unwrap_or_else(|| {
        let mut s = String::new();
        datetime::format(&datetime::now_local(), "%Y-%m-%dT%H:%M:%S", &mut s);
        s
    });
    let mut out = Outcome::new(true);
    let mut text = String::new();
    let each = |file: &Path, n: usize, m: &Message<'_>| {
        let version = String::from_utf8_lossy(m.version().unwrap_or_default()).into_owned();
        let category = args.category.as_deref().unwrap_or(&version);
        let input = Input {
            message: m,
            source: &args.source,
            category,
            now: &now,
        };
        rules.evaluate(&input, &mut out);
        let name = format!("{}#{n}", file.display());
        report(&mut text, &rules, m, &name, &out);
        Ok(())
    };
    if let Err(code) = for_each_message(&args.messages, each) {
        return code;
    }
    print!("{text}");
    ExitCode::SUCCESS
}

fn load(args: &TestArgs) -> Result<CompiledRules, String> {
    let (mut lib, _) = class_library::load(&args.classes)?;
    let class = class_library::class_named(&args.rule_class, &args.classes, "rule", |f| {
        lib.add_file(f).map_err(|e| e.to_string())
    })?;
    lib.compile(&class).map_err(|e| e.to_string())
}

fn report(text: &mut String, rules: &CompiledRules, m: &Message<'_>, name: &str, out: &Outcome) {
    let field = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let kind = m
        .segment(0)
        .and_then(|s| s.field(9))
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default();
    let _ = writeln!(text, "{name}  {kind}  {}", field(m.control_id()));
    match &out.rule_set {
        Some(set) => {
            let _ = writeln!(text, "  rule set: {set:?}");
        }
        None => {
            let _ = writeln!(text, "  rule set: none in force");
        }
    }
    let fired: Vec<String> = out
        .fired
        .iter()
        .map(|f| match f.when {
            Some(w) => format!("{:?} (when {w})", f.rule),
            None => format!("{:?} (otherwise)", f.rule),
        })
        .collect();
    let _ = writeln!(
        text,
        "  fired: {}",
        if fired.is_empty() {
            "none".into()
        } else {
            fired.join(", ")
        }
    );
    let sent: Vec<String> = out
        .decisions
        .iter()
        .map(|d| {
            let to = &rules.targets()[d.target as usize];
            match rules.transforms().get(d.transform as usize) {
                Some(dtl) => format!("{to} via {dtl}"),
                None => to.clone(),
            }
        })
        .collect();
    let decision = if out.deleted {
        "deleted (no route)".to_owned()
    } else if sent.is_empty() {
        "no route".to_owned()
    } else {
        sent.join(", ")
    };
    let _ = writeln!(text, "  send: {decision}");
    if !out.trace.is_empty() {
        let _ = writeln!(text, "  trace:");
        for line in &out.trace {
            let _ = writeln!(text, "    {line}");
        }
    }
}
