//! The native TOML form of a production: read with serde, written by hand so the output is
//! deterministic (fixed key order, settings sorted by name, defaults omitted the same way
//! every time) and diffs cleanly in git.
//!
//! ```text
//! [production]                      name (required), description, testing_enabled,
//! name = "Trust.ADT.Production"     log_general_trace_events, actor_pool_size
//!
//! [engine]                          all optional: shards (1..=1024; absent = online cores),
//! wal_sync = "fsync"                data_dir, wal_sync ("fsync" | "none" | "interval:<ms>ms"),
//!                                   wal_segment_bytes, admin_address ("ip:port"),
//!                                   inbound_buffer_bytes_max, rules_path (folders of
//!                                   rule classes, beside the production's own),
//!                                   transform_skip_code (load DTLs without code blocks)
//! [[item]]                          one per item, in production order: name, class
//! name = "ADT_In"                   (required), category, comment, pool_size (default 1),
//! class = "EnsLib.HL7.Service.TCPService"   enabled (default true), foreground,
//!                                   log_trace_events, schedule
//! [item.host]                       Host settings by IRIS name; values are strings,
//! TargetConfigNames = "ADT_Router"  integers or booleans (true/false become "1"/"0")
//! [item.adapter]
//! Port = "5000"                     Adapter settings by IRIS name
//! ```
//!
//! Invariants: the writer writes every value as a string, so `model → TOML → model` keeps
//! every raw value byte for byte. Unknown keys are errors (a typo must not pass silently).
//! Lines are those of the TOML file (from the parser's byte spans).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::Diagnostic;
use super::iris::{Lines, Parsed, line_of};
use super::model::{
    EngineSettings, INBOUND_BUFFER_BYTES_MAX, INBOUND_BUFFER_BYTES_MIN, Item, POOL_SIZE_MAX,
    Production, RawSettings, SHARDS_MAX, SettingValue, SourceLocation, WAL_SEGMENT_ALIGN_BYTES,
    WAL_SEGMENT_BYTES_MAX, WAL_SEGMENT_BYTES_MIN, WalSync,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    production: ProductionForm,
    #[serde(default)]
    engine: EngineForm,
    #[serde(default, rename = "item")]
    items: Vec<ItemForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductionForm {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    testing_enabled: Option<bool>,
    log_general_trace_events: Option<bool>,
    actor_pool_size: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EngineForm {
    shards: Option<Spanned<usize>>,
    data_dir: Option<PathBuf>,
    wal_sync: Option<Spanned<String>>,
    wal_segment_bytes: Option<Spanned<u64>>,
    admin_address: Option<Spanned<String>>,
    admin_token_file: Option<PathBuf>,
    inbound_buffer_bytes_max: Option<Spanned<u64>>,
    #[serde(default)]
    rules_path: Vec<PathBuf>,
    #[serde(default)]
    transform_skip_code: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemForm {
    name: Spanned<String>,
    class: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    comment: String,
    pool_size: Option<Spanned<u32>>,
    enabled: Option<bool>,
    #[serde(default)]
    foreground: bool,
    #[serde(default)]
    log_trace_events: bool,
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    host: BTreeMap<String, Spanned<ValueForm>>,
    #[serde(default)]
    adapter: BTreeMap<String, Spanned<ValueForm>>,
}

/// A setting value: a string, a number or a boolean (anything else is an error that says
/// so, rather than serde's "did not match any variant").
enum ValueForm {
    Text(String),
    Integer(i64),
    /// A fraction, such as a `RestartDelay` of `0.5` (an integer setting rejects it).
    Float(f64),
    Boolean(bool),
}

impl<'de> Deserialize<'de> for ValueForm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ValueForm;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a setting value: a string, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ValueForm, E> {
                Ok(ValueForm::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ValueForm, E> {
                Ok(ValueForm::Text(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ValueForm, E> {
                Ok(ValueForm::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ValueForm, E> {
                i64::try_from(v)
                    .map(ValueForm::Integer)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ValueForm, E> {
                Ok(ValueForm::Float(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ValueForm, E> {
                Ok(ValueForm::Boolean(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl ValueForm {
    fn into_text(self) -> String {
        match self {
            ValueForm::Text(s) => s,
            ValueForm::Integer(n) => n.to_string(),
            // Debug writes the shortest decimal that reads back as the same value, and
            // keeps a fraction point (`1.5e3` is `1500.0`), so a float never passes for an
            // integer: `Port = 1.5e3` is an error, `RestartDelay = 1.5e3` is 1500 s.
            ValueForm::Float(x) => format!("{x:?}"),
            ValueForm::Boolean(b) => if b { "1" } else { "0" }.to_owned(),
        }
    }
}

/// Reads the TOML form. Returns the production and no warnings, or every error found.
pub fn read_toml(text: &str, file: &Path) -> super::iris::ReadResult {
    let form: FileForm = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(text, span.start));
        vec![Diagnostic {
            file: file.to_path_buf(),
            line,
            item: None,
            message: format!(
                "TOML: {}{}",
                e.message().trim_end(),
                unknown_key_hint(e.message())
            ),
        }]
    })?;
    Ok(from_form(form, &Lines::new(text, 1), file))
}

/// `" (did you mean X?)"` for serde's "unknown field `k`, expected one of `a`, `b`, …" when
/// one of the expected keys is close to `k`; empty otherwise.
fn unknown_key_hint(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return String::new();
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let known = expected.split('`').skip(1).step_by(2);
    super::suggest::did_you_mean(key, known)
}

fn from_form(form: FileForm, lines: &Lines, file: &Path) -> Parsed {
    let mut errors = Vec::new();
    let mut error = |span: std::ops::Range<usize>, item: Option<&str>, message: String| {
        errors.push(Diagnostic {
            file: file.to_path_buf(),
            line: lines.line(span.start as u64),
            item: item.map(str::to_owned),
            message,
        });
    };
    if form.production.name.get_ref().trim().is_empty() {
        error(
            form.production.name.span(),
            None,
            "the production has no name".into(),
        );
    }
    let actor_pool_size = form.production.actor_pool_size.map(|n| {
        if *n.get_ref() > POOL_SIZE_MAX {
            error(
                n.span(),
                None,
                format!("actor_pool_size {} is above {POOL_SIZE_MAX}", n.get_ref()),
            );
        }
        n.into_inner()
    });
    let engine = engine(form.engine, &mut error);
    let items = form
        .items
        .into_iter()
        .map(|form| item(form, lines, file, &mut error))
        .collect();
    let production = Production {
        name: form.production.name.into_inner(),
        description: form.production.description,
        testing_enabled: form.production.testing_enabled,
        log_general_trace_events: form.production.log_general_trace_events,
        actor_pool_size,
        engine,
        items,
    };
    Parsed {
        production,
        warnings: Vec::new(),
        errors,
    }
}

fn engine(
    form: EngineForm,
    error: &mut impl FnMut(std::ops::Range<usize>, Option<&str>, String),
) -> EngineSettings {
    let mut engine = EngineSettings::default();
    if let Some(shards) = form.shards {
        let n = *shards.get_ref();
        if !(1..=SHARDS_MAX).contains(&n) {
            error(
                shards.span(),
                None,
                format!("shards {n} is not in 1..={SHARDS_MAX}"),
            );
        }
        engine.shards = Some(n);
    }
    if let Some(dir) = form.data_dir {
        engine.data_dir = dir;
    }
    if let Some(sync) = form.wal_sync {
        match WalSync::parse(sync.get_ref()) {
            Ok(mode) => engine.wal_sync = mode,
            Err(why) => error(sync.span(), None, why),
        }
    }
    if let Some(bytes) = form.wal_segment_bytes {
        let n = *bytes.get_ref();
        if !(WAL_SEGMENT_BYTES_MIN..=WAL_SEGMENT_BYTES_MAX).contains(&n)
            || n % WAL_SEGMENT_ALIGN_BYTES != 0
        {
            error(
                bytes.span(),
                None,
                format!(
                    "wal_segment_bytes {n} is not a multiple of {WAL_SEGMENT_ALIGN_BYTES} in \
                     {WAL_SEGMENT_BYTES_MIN}..={WAL_SEGMENT_BYTES_MAX}"
                ),
            );
        }
        engine.wal_segment_bytes = n;
    }
    if let Some(bytes) = form.inbound_buffer_bytes_max {
        let n = *bytes.get_ref();
        if (INBOUND_BUFFER_BYTES_MIN..=INBOUND_BUFFER_BYTES_MAX).contains(&n) {
            engine.inbound_buffer_bytes_max = n;
        } else {
            error(
                bytes.span(),
                None,
                format!(
                    "inbound_buffer_bytes_max {n} is not in \
                     {INBOUND_BUFFER_BYTES_MIN}..={INBOUND_BUFFER_BYTES_MAX}"
                ),
            );
        }
    }
    engine.rules_path = form.rules_path;
    engine.transform_skip_code = form.transform_skip_code;
    if let Some(address) = form.admin_address {
        match address.get_ref().parse::<SocketAddr>() {
            Ok(addr) => engine.admin_address = Some(addr),
            Err(_) => error(
                address.span(),
                None,
                format!(
                    "admin_address {:?} is not an ip:port address",
                    address.get_ref()
                ),
            ),
        }
    }
    engine.admin_token_file = form.admin_token_file;
    engine
}

fn item(
    form: ItemForm,
    lines: &Lines,
    file: &Path,
    error: &mut impl FnMut(std::ops::Range<usize>, Option<&str>, String),
) -> Item {
    let line = lines.line(form.name.span().start as u64);
    let name = form.name.into_inner();
    let mut item = Item::new(name.clone(), form.class);
    item.category = form.category;
    item.comment = form.comment;
    item.schedule = form.schedule;
    if let Some(pool) = form.pool_size {
        if *pool.get_ref() > POOL_SIZE_MAX {
            error(
                pool.span(),
                Some(&name),
                format!("pool_size {} is above {POOL_SIZE_MAX}", pool.get_ref()),
            );
        }
        item.pool_size = pool.into_inner();
    }
    item.enabled = form.enabled.unwrap_or(true);
    item.foreground = form.foreground;
    item.log_trace_events = form.log_trace_events;
    item.host_settings = settings(form.host, lines);
    item.adapter_settings = settings(form.adapter, lines);
    item.source = SourceLocation {
        file: file.to_path_buf(),
        line,
    };
    item
}

fn settings(form: BTreeMap<String, Spanned<ValueForm>>, lines: &Lines) -> RawSettings {
    form.into_iter()
        .map(|(name, value)| {
            let line = lines.line(value.span().start as u64);
            (
                name,
                SettingValue {
                    value: value.into_inner().into_text(),
                    line,
                },
            )
        })
        .collect()
}

/// Writes the TOML form of `production`. Deterministic: the same model always gives the
/// same bytes.
pub fn to_toml(production: &Production) -> String {
    let mut out = String::new();
    out.push_str("# hie production definition (TOML form). Check with `hie check`.\n\n");
    out.push_str("[production]\n");
    kv(&mut out, "name", &string(&production.name));
    if !production.description.is_empty() {
        kv(&mut out, "description", &string(&production.description));
    }
    if let Some(v) = production.testing_enabled {
        kv(&mut out, "testing_enabled", &v.to_string());
    }
    if let Some(v) = production.log_general_trace_events {
        kv(&mut out, "log_general_trace_events", &v.to_string());
    }
    if let Some(n) = production.actor_pool_size {
        kv(&mut out, "actor_pool_size", &n.to_string());
    }
    write_engine(&mut out, &production.engine);
    for item in &production.items {
        write_item(&mut out, item);
    }
    out
}

fn write_engine(out: &mut String, engine: &EngineSettings) {
    out.push_str("\n[engine]\n");
    match engine.shards {
        Some(n) => kv(out, "shards", &n.to_string()),
        None => out.push_str("# shards = <one per online core>\n"),
    }
    kv(out, "data_dir", &string(&engine.data_dir.to_string_lossy()));
    kv(out, "wal_sync", &string(&engine.wal_sync.to_text()));
    kv(
        out,
        "wal_segment_bytes",
        &engine.wal_segment_bytes.to_string(),
    );
    match engine.admin_address {
        Some(addr) => kv(out, "admin_address", &string(&addr.to_string())),
        None => out.push_str("# admin_address = \"127.0.0.1:9090\"\n"),
    }
    if let Some(path) = &engine.admin_token_file {
        kv(out, "admin_token_file", &string(&path.to_string_lossy()));
    }
    kv(
        out,
        "inbound_buffer_bytes_max",
        &engine.inbound_buffer_bytes_max.to_string(),
    );
    if !engine.rules_path.is_empty() {
        let dirs: Vec<String> = engine
            .rules_path
            .iter()
            .map(|d| string(&d.to_string_lossy()))
            .collect();
        kv(out, "rules_path", &format!("[{}]", dirs.join(", ")));
    }
    if engine.transform_skip_code {
        kv(out, "transform_skip_code", "true");
    }
}

fn write_item(out: &mut String, item: &Item) {
    out.push_str("\n[[item]]\n");
    kv(out, "name", &string(&item.name));
    kv(out, "class", &string(&item.class));
    if !item.category.is_empty() {
        kv(out, "category", &string(&item.category));
    }
    if !item.comment.is_empty() {
        kv(out, "comment", &string(&item.comment));
    }
    kv(out, "pool_size", &item.pool_size.to_string());
    kv(out, "enabled", &item.enabled.to_string());
    if item.foreground {
        kv(out, "foreground", "true");
    }
    if item.log_trace_events {
        kv(out, "log_trace_events", "true");
    }
    if !item.schedule.is_empty() {
        kv(out, "schedule", &string(&item.schedule));
    }
    for (table, settings) in [
        ("host", &item.host_settings),
        ("adapter", &item.adapter_settings),
    ] {
        if settings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "[item.{table}]");
        for (name, value) in settings {
            kv(out, &key(name), &string(&value.value));
        }
    }
}

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

/// A TOML string literal for `s` (the toml crate picks the quoting, deterministically).
fn string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `name` as a TOML key: bare when it can be, quoted otherwise.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare { name.to_owned() } else { string(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_an_error_at_its_line_with_the_key_meant() {
        let text =
            "[production]\nname = \"P\"\n\n[[item]]\nname = \"A\"\nclass = \"X\"\nenabld = false\n";
        let errors = read_toml(text, Path::new("p.toml")).unwrap_err();
        assert_eq!(errors[0].line, 7, "{errors:?}");
        assert!(
            errors[0].message.contains("did you mean enabled?"),
            "{errors:?}"
        );
    }
    use crate::config::model::SettingTarget;

    const SAMPLE: &str = r#"
[production]
name = "T.Production"
actor_pool_size = 2

[engine]
shards = 4
wal_sync = "interval:5ms"
admin_address = "127.0.0.1:9180"

[[item]]
name = "ADT In"
class = "EnsLib.HL7.Service.TCPService"
pool_size = 2
[item.host]
TargetConfigNames = "Router"
AlertOnError = true
"%odd name" = "x"
[item.adapter]
Port = 5000

[[item]]
name = "Router"
class = "EnsLib.HL7.MsgRouter.RoutingEngine"
[item.host]
BusinessRuleName = "T.Rule"
"#;

    #[test]
    fn toml_reads_items_settings_engine_and_lines() {
        let p = read_toml(SAMPLE, Path::new("t.toml")).unwrap().production;
        assert_eq!(p.engine.shards, Some(4));
        assert_eq!(p.engine.wal_sync, WalSync::Interval { interval_ms: 5 });
        assert_eq!(p.items.len(), 2);
        let item = &p.items[0];
        assert_eq!(
            (item.name.as_str(), item.pool_size, item.source.line),
            ("ADT In", 2, 12)
        );
        assert_eq!(item.raw_value(SettingTarget::Adapter, "Port"), Some("5000"));
        assert_eq!(
            item.raw_value(SettingTarget::Host, "AlertOnError"),
            Some("1")
        );
        assert_eq!(item.adapter_settings["Port"].line, 20);
        assert!(p.items[1].enabled);
    }

    #[test]
    fn toml_written_reads_back_identically_and_is_a_fixed_point() {
        let p = read_toml(SAMPLE, Path::new("t.toml")).unwrap().production;
        let text = to_toml(&p);
        let back = read_toml(&text, Path::new("u.toml")).unwrap().production;
        assert!(p.same_definition(&back));
        assert_eq!(text, to_toml(&back));
        assert!(text.contains("\"%odd name\" = \"x\""), "{text}");
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let bad =
            "[production]\nname = \"P\"\n\n[[item]]\nname = \"A\"\nclass = \"X\"\npoolsize = 3\n";
        let errors = read_toml(bad, Path::new("b.toml")).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("poolsize"),
            "{}",
            errors[0].message
        );
        assert!((4..=7).contains(&errors[0].line), "line {}", errors[0].line);
    }

    #[test]
    fn bad_engine_values_are_all_reported() {
        let bad = "[production]\nname = \"P\"\n[engine]\nshards = 0\nwal_sync = \"sometimes\"\nwal_segment_bytes = 1000\nadmin_address = \"nowhere\"\n";
        let errors = read_toml(bad, Path::new("b.toml")).unwrap().errors;
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7], "{errors:?}");
    }

    #[test]
    fn inbound_buffer_bytes_max_is_read_range_checked_and_written_back() {
        let good = "[production]\nname = \"P\"\n[engine]\ninbound_buffer_bytes_max = 2097152\n";
        let p = read_toml(good, Path::new("g.toml")).unwrap().production;
        assert_eq!(p.engine.inbound_buffer_bytes_max, 2 << 20);
        let text = to_toml(&p);
        assert!(
            text.contains("inbound_buffer_bytes_max = 2097152"),
            "{text}"
        );
        let bad = "[production]\nname = \"P\"\n[engine]\ninbound_buffer_bytes_max = 1000\n";
        let errors = read_toml(bad, Path::new("b.toml")).unwrap().errors;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 4);
        assert!(errors[0].message.contains("inbound_buffer_bytes_max"));
    }

    #[test]
    fn a_setting_that_is_an_array_is_an_error_saying_what_is_expected() {
        let bad = "[production]\nname = \"P\"\n[[item]]\nname = \"A\"\nclass = \"X\"\n[item.adapter]\nPort = [1, 2]\n";
        let errors = read_toml(bad, Path::new("b.toml")).unwrap_err();
        assert_eq!(errors[0].line, 7, "{errors:?}");
        assert!(
            errors[0]
                .message
                .contains("a string, a number or a boolean"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_bad_number_type_is_reported_at_its_line() {
        let bad = "[production]\nname = \"P\"\n[[item]]\nname = \"A\"\nclass = \"X\"\npool_size = \"two\"\n";
        let errors = read_toml(bad, Path::new("b.toml")).unwrap_err();
        assert_eq!(errors[0].line, 6, "{errors:?}");
    }
}
