//! `hie check CONFIG [--json] [--strict] [--allow-unknown] [--shards N]`: validates a
//! production and prints the plan the engine would run.
//!
//! Text output: items by kind with pool sizes, shard placement and targets; the address each
//! service listens on (its `LocalInterface`, else every interface) and the hosts operations
//! connect to; unknown classes; unsupported settings; warnings; errors.
//!
//! Beyond the validation `hie run` shares, `hie check` looks up the host names of enabled
//! TCP operations and warns about any that does not resolve now (not an error, even under
//! `--strict`: the operation resolves it each time it connects), and checks the admin
//! API as `hie run` would start it (see [`crate::admin::check`]).
//!
//! Cost: linear in items and settings, so a production of tens of thousands of items is
//! checked in seconds.
//!
//! `--json` prints one object, exactly:
//! ```text
//! {"production": NAME|null,
//!  "items": [{"name", "class", "kind", "pool_size", "enabled", "targets": [..],
//!             "settings": {"host": {NAME: VALUE..}, "adapter": {NAME: VALUE..}}}..],
//!  "unknown_classes": [{"item", "class"}..],
//!  "unsupported_settings": [{"item", "setting"}..],
//!  "warnings": [{"file", "line", "item", "message"}..],
//!  "errors":   [{"file", "line", "item", "message"}..]}
//! ```
//! `enabled` is as loaded: items of unknown classes show `false` under `--allow-unknown`.
//!
//! Exit status: 0 valid, 1 invalid, 2 unreadable (missing, not UTF-8, too large).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use hie_core::config::{
    self, Analysis, ConfigError, Diagnostic, ItemKind, LoadOptions, Production, RawSettings,
    SettingTarget, UnsupportedSetting, placement,
};
use serde_json::{Map, Value, json};

/// `writeln!` into a `String`, which cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Writes to stdout; a closed pipe (`hie check … | head`) is not an error worth a panic.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Arguments of `hie check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Production file: .cls class, .xml (IRIS <Export> or bare <Production>) or .toml.
    pub config: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Treat warnings (such as targets naming no item) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Load items of classes hie does not run, disabled, instead of failing.
    #[arg(long)]
    pub allow_unknown: bool,
    /// Shards to plan for (default: engine.shards of the production, else the online cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub shards: Option<u16>,
}

/// Runs `hie check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let opts = LoadOptions {
        allow_unknown: args.allow_unknown,
        strict: args.strict,
    };
    let mut analysis = match config::analyze(&args.config, &opts) {
        Ok(analysis) => analysis,
        Err(e) => return unreadable(args, &e),
    };
    if let Some(production) = &analysis.production {
        let warnings = &mut analysis.findings.warnings;
        warnings.extend(config::startup::unresolved_hosts(production, &args.config));
        let (admin_errors, admin_warnings) = crate::admin::check(production, &args.config);
        warnings.extend(admin_warnings);
        warnings.sort_by_key(|d| d.line);
        analysis.findings.errors.extend(admin_errors);
        analysis
            .findings
            .errors
            .extend(crate::alerts::check(production));
    }
    if args.json {
        emit(&format!("{}\n", to_json(&analysis)));
    } else {
        let mut out = String::new();
        print_text(&mut out, args, &analysis);
    }
    if analysis.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn unreadable(args: &CheckArgs, e: &ConfigError) -> ExitCode {
    if args.json {
        let error = Diagnostic {
            file: args.config.clone(),
            line: 0,
            item: None,
            message: e.to_string(),
        };
        let out = json!({
            "production": null, "items": [], "unknown_classes": [],
            "unsupported_settings": [], "warnings": [], "errors": [diagnostic_json(&error)],
        });
        emit(&format!("{out}\n"));
    } else {
        eprintln!("hie check: {e}");
    }
    ExitCode::from(2)
}

fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "file": d.file.display().to_string(),
        "line": d.line,
        "item": d.item,
        "message": d.message,
    })
}

fn raw_json(raw: &RawSettings) -> Value {
    Value::Object(
        raw.iter()
            .map(|(name, value)| (name.clone(), Value::String(value.value.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Targets of an item: typed when resolved, else its raw `TargetConfigNames`.
fn targets(item: &config::Item) -> Vec<String> {
    match &item.settings {
        None => item
            .raw_value(SettingTarget::Host, "TargetConfigNames")
            .map(|v| config::settings::split_list(v, false))
            .unwrap_or_default(),
        Some(resolved) => resolved.targets().into_iter().map(str::to_owned).collect(),
    }
}

fn to_json(analysis: &Analysis) -> Value {
    let f = &analysis.findings;
    let items: Vec<Value> = analysis
        .production
        .iter()
        .flat_map(|p| p.items.iter())
        .map(|item| {
            json!({
                "name": item.name,
                "class": item.class,
                "kind": item.kind.as_str(),
                "pool_size": item.pool_size,
                "enabled": item.enabled,
                "targets": targets(item),
                "settings": {
                    "host": raw_json(&item.host_settings),
                    "adapter": raw_json(&item.adapter_settings),
                },
            })
        })
        .collect();
    json!({
        "production": analysis.production.as_ref().map(|p| p.name.clone()),
        "items": items,
        "unknown_classes": f.unknown_classes.iter()
            .map(|u| json!({"item": u.item, "class": u.class})).collect::<Vec<_>>(),
        "unsupported_settings": f.unsupported_settings.iter()
            .map(|u| json!({"item": u.item, "setting": u.setting})).collect::<Vec<_>>(),
        "warnings": f.warnings.iter().map(diagnostic_json).collect::<Vec<_>>(),
        "errors": f.errors.iter().map(diagnostic_json).collect::<Vec<_>>(),
    })
}

fn shard_count(args: &CheckArgs, production: &Production) -> usize {
    args.shards
        .map(usize::from)
        .or(production.engine.shards)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn print_text(out: &mut String, args: &CheckArgs, analysis: &Analysis) {
    let f = &analysis.findings;
    if let Some(p) = &analysis.production {
        print_plan(out, args, p);
    }
    if !f.unknown_classes.is_empty() {
        w!(out, "\nunknown classes ({}):", f.unknown_classes.len());
        for u in &f.unknown_classes {
            w!(out, "  {}  ({})", u.item, u.class);
        }
    }
    print_unsupported(out, &f.unsupported_settings);
    if !f.warnings.is_empty() {
        w!(out, "\nwarnings ({}):", f.warnings.len());
        for w in &f.warnings {
            w!(out, "  {w}");
        }
    }
    if analysis.is_valid() {
        w!(out, "\nvalid");
    }
    emit(out);
    for e in &f.errors {
        eprintln!("error: {e}");
    }
    if !analysis.is_valid() {
        eprintln!("invalid: {} error(s)", f.errors.len());
    }
}

/// Unsupported settings, one line per item; those left at their IRIS default (ignoring
/// them changes nothing) apart from those that matter.
fn print_unsupported(out: &mut String, unsupported: &[UnsupportedSetting]) {
    if unsupported.is_empty() {
        return;
    }
    let matter = unsupported.iter().filter(|u| !u.at_default).count();
    w!(
        out,
        "\nunsupported settings, recorded but not used: {} ({matter} not at their IRIS default):",
        unsupported.len()
    );
    // One pass: each item's (set, at default) names, items in order of first mention.
    let mut order: Vec<&str> = Vec::new();
    let mut by_item: HashMap<&str, (Vec<String>, Vec<String>)> = HashMap::new();
    for u in unsupported {
        let entry = by_item.entry(u.item.as_str()).or_insert_with(|| {
            order.push(u.item.as_str());
            (Vec::new(), Vec::new())
        });
        let names = if u.at_default {
            &mut entry.1
        } else {
            &mut entry.0
        };
        names.push(format!("{} {}", u.target.as_str(), u.setting));
    }
    for item in order {
        let (set, default) = &by_item[item];
        let (set, default) = (set.join(", "), default.join(", "));
        let mut line = format!("  {item}:");
        if !set.is_empty() {
            line.push_str(&format!(" {set}"));
        }
        if !default.is_empty() {
            line.push_str(&format!(" (at default: {default})"));
        }
        w!(out, "{line}");
    }
}

fn print_plan(out: &mut String, args: &CheckArgs, p: &Production) {
    let shards = shard_count(args, p);
    let plan: HashMap<usize, Vec<usize>> = placement(p, shards)
        .into_iter()
        .map(|pl| (pl.item, pl.shards))
        .collect();
    w!(
        out,
        "production {} ({}): {} items, planned on {shards} shard(s)",
        p.name,
        args.config.display(),
        p.items.len()
    );
    for kind in [
        ItemKind::Service,
        ItemKind::Process,
        ItemKind::Operation,
        ItemKind::Unknown,
    ] {
        let of_kind: Vec<(usize, &config::Item)> = p
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.kind == kind)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let heading = match kind {
            ItemKind::Service => "services",
            ItemKind::Process => "processes",
            ItemKind::Operation => "operations",
            ItemKind::Unknown => "items of unknown kind",
        };
        w!(out, "\n{heading} ({}):", of_kind.len());
        for (index, item) in of_kind {
            let placed = plan.get(&index);
            let where_ = match placed {
                Some(shards) => format!("shards {shards:?}"),
                None if !item.enabled => "disabled".to_owned(),
                None => "no instance".to_owned(),
            };
            let to = targets(item);
            let arrow = if to.is_empty() {
                String::new()
            } else {
                format!("  -> {}", to.join(", "))
            };
            let note = if kind == ItemKind::Process && item.pool_size != 1 && placed.is_some() {
                " (no effect: processes run on every service shard)"
            } else {
                ""
            };
            w!(
                out,
                "  {}  [{}]  pool {}{note}  {where_}{arrow}",
                item.name,
                item.class,
                item.pool_size
            );
        }
    }
    let enabled = || p.items.iter().filter(|i| i.enabled);
    let listening: Vec<String> = enabled()
        .filter_map(|i| {
            let at = i.listens()?.address;
            if at.port() == 0 {
                return None;
            }
            let which = if at.ip().is_unspecified() {
                "every interface"
            } else {
                "LocalInterface"
            };
            Some(format!("{}:{} ({}, {which})", at.ip(), at.port(), i.name))
        })
        .collect();
    if !listening.is_empty() {
        w!(out, "\nlistens on: {}", listening.join(", "));
    }
    let connecting: Vec<String> = enabled()
        .filter_map(|i| {
            i.connects_to()
                .map(|(host, port)| format!("{host}:{port} ({})", i.name))
        })
        .collect();
    if !connecting.is_empty() {
        w!(out, "connects to: {}", connecting.join(", "));
    }
}
