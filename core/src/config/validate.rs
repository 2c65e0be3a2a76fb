//! Validation of a read production, before anything starts, and the shard placement plan.
//!
//! Every check runs and every finding is collected, so one `hie check` shows all problems:
//! - item names: present, free of the characters IRIS forbids (`| ; , : [ < > \ / & "`),
//!   unique (an error names both lines);
//! - classes: a class hie does not run is an error naming item and class, unless
//!   `allow_unknown`, in which case the item is disabled and listed;
//! - settings: bad values and missing required settings of enabled items are errors at the
//!   setting's (or item's) line; settings hie does not honour are listed as unsupported, and
//!   one set to other than its IRIS default (or a name hie does not know for the class, with
//!   a "did you mean") is also a warning at its line, since ignoring it changes behaviour;
//! - where messages go: targets, routing cycles, routers ([`super::routes`]);
//! - what would stop `hie run` from starting or leave an item unable to work
//!   ([`super::startup`]): `hie check` and `hie run` share this validation, so they agree;
//! - two enabled services listening on one port, or on the admin port, are errors;
//! - `strict` turns every warning into an error.
//!
//! Cost: linear in the number of items and settings (names are looked up in maps).
//!
//! Placement (ADR 0001): services and operations are dealt round-robin over the shards, in
//! item order, one counter for the whole production: the k-th such instance (counting from
//! 0) runs on shard `k % shards`; an item runs `PoolSize` instances (0: none). Routers and
//! other processes run one instance on every shard that runs a service instance (a message
//! is routed on the shard that received it), so their `PoolSize` has no effect; `hie check`
//! says so. The engine follows this plan exactly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use super::catalog;
use super::model::Item;
use super::model::{ItemKind, Production, SettingTarget};
use super::settings;
use super::{Diagnostic, LoadOptions, UnknownClass, UnsupportedSetting, routes, startup, suggest};
use crate::items::kind::HostKind;
use crate::items::kinds;

/// Characters IRIS does not allow in a config item name.
pub const NAME_FORBIDDEN: &[char] = &['|', ';', ',', ':', '[', '<', '>', '\\', '/', '&', '"'];

/// What validation found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Errors: the production must not run.
    pub errors: Vec<Diagnostic>,
    /// Warnings (already moved to errors under `strict`).
    pub warnings: Vec<Diagnostic>,
    /// Items of classes hie does not run.
    pub unknown_classes: Vec<UnknownClass>,
    /// Settings hie records but does not honour.
    pub unsupported_settings: Vec<UnsupportedSetting>,
}

impl Findings {
    pub(super) fn error(&mut self, file: &Path, line: u32, item: Option<&str>, message: String) {
        self.errors.push(diag(file, line, item, message));
    }

    pub(super) fn warn(&mut self, file: &Path, line: u32, item: Option<&str>, message: String) {
        self.warnings.push(diag(file, line, item, message));
    }
}

fn diag(file: &Path, line: u32, item: Option<&str>, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line,
        item: item.map(str::to_owned),
        message,
    }
}

/// Validates `production` read from `file`, resolving each runnable item's typed settings
/// and disabling items of unknown classes when `opts.allow_unknown`.
pub fn validate(production: &mut Production, file: &Path, opts: &LoadOptions) -> Findings {
    validate_with(production, file, opts, kinds::KINDS)
}

/// [`validate`] with the kinds of `registry` (hie's is [`kinds::KINDS`]): a class runs
/// when a kind of `registry` names it, and each item's kind comes from there. Everything
/// after reads the kind from the item's settings ([`ItemSettings::host`]).
///
/// [`ItemSettings::host`]: super::ItemSettings::host
pub fn validate_with(
    production: &mut Production,
    file: &Path,
    opts: &LoadOptions,
    registry: &[&'static dyn HostKind],
) -> Findings {
    let mut f = Findings::default();
    // An empty production name is reported by the readers, which know its line.
    check_names(production, file, &mut f);
    for item in &mut production.items {
        if item.class.trim().is_empty() {
            // Reported by check_names; there is no class to look up.
            item.enabled = false;
            continue;
        }
        let info = catalog::class_info(&item.class);
        let Some((kind, class)) = kinds::class_in(registry, &item.class) else {
            f.unknown_classes.push(UnknownClass {
                item: item.name.clone(),
                class: item.class.clone(),
            });
            let what = match info {
                Some(info) => format!(
                    "class {} is an IRIS class hie does not run: {}",
                    item.class, info.about
                ),
                None => format!("class {} is not known to hie (a custom class?)", item.class),
            };
            if opts.allow_unknown {
                // Listed in `unknown_classes`, not warned about: the caller allowed them, so
                // `--strict --allow-unknown` still passes.
                item.enabled = false;
            } else {
                f.error(
                    file,
                    item.source.line,
                    Some(&item.name),
                    format!("{what}; use --allow-unknown to load the rest with this item disabled"),
                );
            }
            item.settings = None;
            continue;
        };
        item.kind = class.kind;
        check_raw_settings(item, kind, file, &mut f);
        if !item.schedule.trim().is_empty() {
            // hie runs enabled items all the time; a schedule is recorded, not followed.
            f.unsupported_settings.push(UnsupportedSetting {
                item: item.name.clone(),
                setting: "Schedule".to_owned(),
                target: SettingTarget::Host,
                line: item.source.line,
                at_default: false,
            });
            f.warn(
                file,
                item.source.line,
                Some(&item.name),
                "Schedule is ignored: hie runs an enabled item all the time".into(),
            );
        }
        item.settings = Some(settings::resolve(item, kind, file, &mut f.errors));
        check_queue_order(item, file, &mut f);
        if item.enabled && item.pool_size == 0 && item.kind != ItemKind::Process {
            f.warn(
                file,
                item.source.line,
                Some(&item.name),
                "PoolSize 0: this item runs no instance".into(),
            );
        }
    }
    routes::check(production, file, &mut f);
    super::response_from::check(production, file, &mut f);
    startup::check(production, file, &mut f);
    f.warnings
        .extend(crate::engine::validation::check_categories(
            production, file,
        ));
    check_ports(production, file, &mut f);
    check_inbound_budget(production, file, &mut f);
    if opts.strict {
        let warnings = std::mem::take(&mut f.warnings);
        f.errors.extend(warnings);
    }
    f
}

fn check_names(production: &Production, file: &Path, f: &mut Findings) {
    let mut first_line: HashMap<&str, u32> = HashMap::new();
    for item in &production.items {
        let line = item.source.line;
        if item.class.trim().is_empty() {
            let name = Some(item.name.as_str()).filter(|n| !n.trim().is_empty());
            f.error(file, line, name, "the item has no ClassName".into());
        }
        if item.name.trim().is_empty() {
            f.error(file, line, None, "the item has no Name".into());
            continue;
        }
        if let Some(c) = item.name.chars().find(|c| NAME_FORBIDDEN.contains(c)) {
            f.error(
                file,
                line,
                Some(&item.name),
                format!("item name contains {c:?}, which IRIS does not allow"),
            );
        }
        match first_line.get(item.name.as_str()) {
            Some(&first) => f.error(
                file,
                line,
                Some(&item.name),
                format!("duplicate item name (first defined at line {first})"),
            ),
            None => {
                first_line.insert(&item.name, line);
            }
        }
    }
}

fn check_raw_settings(
    item: &super::model::Item,
    kind: &dyn HostKind,
    file: &Path,
    f: &mut Findings,
) {
    for target in [SettingTarget::Host, SettingTarget::Adapter] {
        for (name, raw) in item.raw(target) {
            let spec = catalog::spec(kind, target, name);
            let supported = spec.is_some_and(|s| s.supported);
            if !supported {
                let at_default = spec.is_some_and(|s| s.default == raw.value);
                f.unsupported_settings.push(UnsupportedSetting {
                    item: item.name.clone(),
                    setting: name.clone(),
                    target,
                    line: raw.line,
                    at_default,
                });
                if !at_default {
                    let why = ignored_because(kind, target, name, spec.is_some());
                    f.warn(file, raw.line, Some(&item.name), why);
                }
            }
            // Supported values are checked (and reported as errors) when resolved; a bad
            // value of a setting hie ignores is worth a warning only.
            if let Some(spec) = spec.filter(|s| !s.supported)
                && let Err(why) = settings::check_value(spec, &raw.value)
            {
                f.warn(
                    file,
                    raw.line,
                    Some(&item.name),
                    format!("setting {name} (not used by hie): {why}"),
                );
            }
        }
    }
    if !item.enabled {
        return;
    }
    for spec in catalog::specs(kind).into_iter().filter(|s| s.required) {
        if item
            .raw_value(spec.target, spec.name)
            .is_none_or(|v| v.trim().is_empty())
        {
            f.error(
                file,
                item.source.line,
                Some(&item.name),
                format!(
                    "missing required setting {} {} ({})",
                    spec.target.as_str(),
                    spec.name,
                    spec.about
                ),
            );
        }
    }
}

/// Why setting `name` of `target` is ignored, for a warning: hie does not use it, or does
/// not know it for this kind of item (with the closest name it knows, or the target
/// it belongs to).
fn ignored_because(kind: &dyn HostKind, target: SettingTarget, name: &str, known: bool) -> String {
    let what = format!("setting {} {name}", target.as_str());
    if known {
        return format!("{what} is ignored: hie does not use it (see docs/configuration.md)");
    }
    let other = match target {
        SettingTarget::Host => SettingTarget::Adapter,
        SettingTarget::Adapter => SettingTarget::Host,
    };
    if catalog::spec(kind, other, name).is_some() {
        let article = match other {
            SettingTarget::Host => "a",
            SettingTarget::Adapter => "an",
        };
        let other = other.as_str();
        return format!(
            "{what} is ignored: {name} is {article} {other} setting (Target=\"{other}\")"
        );
    }
    let specs = catalog::specs(kind);
    let names = specs.iter().filter(|s| s.target == target).map(|s| s.name);
    let hint = suggest::did_you_mean(name, names);
    format!("{what} is ignored: it is not a setting hie knows for this class{hint}")
}

/// `PriorityMessageTypes` without `QueueOrder=priority` changes nothing: a warning (an
/// operator may switch priority off this way and keep the list).
fn check_queue_order(item: &super::model::Item, file: &Path, f: &mut Findings) {
    let Some(raw) = item.host_settings.get("PriorityMessageTypes") else {
        return;
    };
    // Services have no queue: the setting is listed as not used there.
    let fifo = item.kind != ItemKind::Service
        && item
            .settings
            .as_ref()
            .is_some_and(|s| s.common.queue_order == crate::priority::QueueOrder::Fifo);
    if fifo && !raw.value.trim().is_empty() {
        f.warn(
            file,
            raw.line,
            Some(&item.name),
            "PriorityMessageTypes has no effect while QueueOrder is fifo (the default); \
             set QueueOrder to priority"
                .into(),
        );
    }
}

/// Two enabled services may share a port only on two different specific interfaces
/// (`LocalInterface`); every interface (0.0.0.0) clashes with any other on that port.
fn check_ports(production: &Production, file: &Path, f: &mut Findings) {
    let mut listeners: HashMap<u16, Vec<(IpAddr, &str, u32)>> = HashMap::new();
    for item in production.items.iter().filter(|i| i.enabled) {
        let Some(listening) = item.listens() else {
            continue;
        };
        let (port, ip) = (listening.address.port(), listening.address.ip());
        if port == 0 {
            continue;
        }
        let line = item
            .adapter_settings
            .get("Port")
            .map_or(item.source.line, |v| v.line);
        let on_port = listeners.entry(port).or_default();
        let clash = on_port
            .iter()
            .find(|(other, _, _)| *other == ip || other.is_unspecified() || ip.is_unspecified());
        if let Some(&(_, other, other_line)) = clash {
            f.error(
                file,
                line,
                Some(&item.name),
                format!("port {port} is also listened on by {other:?} (line {other_line})"),
            );
        } else {
            on_port.push((ip, &item.name, line));
        }
        if production
            .engine
            .admin_address
            .is_some_and(|a| a.port() == port)
        {
            f.error(
                file,
                line,
                Some(&item.name),
                format!("port {port} is the admin_address port"),
            );
        }
    }
}

/// A message a service accepts must fit one sender's share of the process's inbound
/// buffer budget (see `hie_net::tcp::limits`).
fn check_inbound_budget(production: &Production, file: &Path, f: &mut Findings) {
    let budget = production.engine.inbound_buffer_bytes_max;
    let share = budget / hie_net::PEER_SHARE_DIVISOR as u64;
    for item in production.items.iter().filter(|i| i.enabled) {
        let Some(listening) = item.listens() else {
            continue;
        };
        // The read buffer holds the frame's three block bytes too.
        if u64::from(listening.message_bytes_max) + 3 > share {
            let line = item
                .adapter_settings
                .get("MaxMessageSize")
                .map_or(item.source.line, |v| v.line);
            f.error(
                file,
                line,
                Some(&item.name),
                format!(
                    "MaxMessageSize {} (+ 3 framing bytes) does not fit one sender's share \
                     ({share} bytes, 1/{}) of [engine] inbound_buffer_bytes_max {budget}",
                    listening.message_bytes_max,
                    hie_net::PEER_SHARE_DIVISOR
                ),
            );
        }
    }
}

/// Where one item's instances run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Index of the item in `Production::items`.
    pub item: usize,
    /// Shard of each instance, in instance order.
    pub shards: Vec<usize>,
}

/// True when `item` runs at all: enabled, of a class hie runs.
fn runs(item: &Item) -> bool {
    item.enabled && item.settings.is_some()
}

/// The placement of every running item's instances over `shards` shards (`shards` ≥ 1; 0
/// is treated as 1), in item order; see the module header for the rule.
pub fn placement(production: &Production, shards: usize) -> Vec<Placement> {
    let shards = shards.max(1);
    let mut next = 0usize;
    let mut placed: Vec<Option<Vec<usize>>> = vec![None; production.items.len()];
    for (index, item) in production.items.iter().enumerate() {
        if !runs(item) || item.kind == ItemKind::Process {
            continue;
        }
        let n = item.pool_size as usize;
        placed[index] = Some((0..n).map(|k| (next + k) % shards).collect());
        next += n;
    }
    let mut service_shards: Vec<usize> = production
        .items
        .iter()
        .zip(&placed)
        .filter(|(item, _)| item.kind == ItemKind::Service)
        .flat_map(|(_, shards)| shards.iter().flatten().copied())
        .collect();
    service_shards.sort_unstable();
    service_shards.dedup();
    for (index, item) in production.items.iter().enumerate() {
        if runs(item) && item.kind == ItemKind::Process {
            placed[index] = Some(service_shards.clone());
        }
    }
    placed
        .into_iter()
        .enumerate()
        .filter_map(|(item, shards)| {
            shards
                .filter(|s| !s.is_empty())
                .map(|shards| Placement { item, shards })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{EngineSettings, Item, SettingValue};

    fn production(items: Vec<Item>) -> Production {
        Production {
            name: "P".into(),
            description: String::new(),
            testing_enabled: None,
            log_general_trace_events: None,
            actor_pool_size: Some(2),
            engine: EngineSettings::default(),
            items,
        }
    }

    fn with(mut item: Item, line: u32, settings: &[(SettingTarget, &str, &str)]) -> Item {
        item.source.line = line;
        for (target, name, value) in settings {
            let v = SettingValue {
                value: (*value).into(),
                line: line + 1,
            };
            match target {
                SettingTarget::Host => item.host_settings.insert((*name).into(), v),
                SettingTarget::Adapter => item.adapter_settings.insert((*name).into(), v),
            };
        }
        item
    }

    fn tcp_in(name: &str, line: u32, port: &str, target: &str) -> Item {
        with(
            Item::new(name, "EnsLib.HL7.Service.TCPService"),
            line,
            &[
                (SettingTarget::Adapter, "Port", port),
                (SettingTarget::Host, "TargetConfigNames", target),
            ],
        )
    }

    #[test]
    fn duplicate_names_and_port_clashes_are_errors_naming_both_lines() {
        let mut p = production(vec![tcp_in("A", 3, "5000", ""), tcp_in("A", 9, "5000", "")]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        let messages: Vec<_> = f
            .errors
            .iter()
            .map(|d| (d.line, d.message.clone()))
            .collect();
        assert!(
            messages
                .iter()
                .any(|(l, m)| *l == 9 && m.contains("line 3")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|(l, m)| *l == 10 && m.contains("port 5000")),
            "{messages:?}"
        );
    }

    #[test]
    fn a_max_message_size_past_the_inbound_budget_is_an_error_at_its_line() {
        let item = with(
            tcp_in("In", 3, "5000", ""),
            7,
            &[(SettingTarget::Adapter, "MaxMessageSize", "2097152")],
        );
        let mut p = production(vec![item]);
        p.engine.inbound_buffer_bytes_max = 16 << 20;
        let f = validate(&mut p.clone(), Path::new("p.xml"), &LoadOptions::default());
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert_eq!(f.errors[0].line, 8);
        assert!(f.errors[0].message.contains("inbound_buffer_bytes_max"));
        p.engine.inbound_buffer_bytes_max = 32 << 20;
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert!(f.errors.is_empty(), "{:?}", f.errors);
    }

    #[test]
    fn one_port_on_two_local_interfaces_is_no_clash_but_every_interface_clashes() {
        let on = |name: &str, line: u32, interface: &str| {
            let mut item = tcp_in(name, line, "5000", "Out");
            let v = SettingValue {
                value: interface.into(),
                line: line + 1,
            };
            item.adapter_settings.insert("LocalInterface".into(), v);
            item
        };
        let errors = |items: Vec<Item>| {
            let mut items = items;
            items.push(with(
                Item::new("Out", "EnsLib.HL7.Operation.FileOperation"),
                40,
                &[(SettingTarget::Adapter, "FilePath", "/tmp/x")],
            ));
            let mut p = production(items);
            validate(&mut p, Path::new("p.xml"), &LoadOptions::default()).errors
        };
        assert!(errors(vec![on("A", 1, "127.0.0.1"), on("B", 5, "127.0.0.2")]).is_empty());
        let clash = errors(vec![on("A", 1, "127.0.0.1"), on("B", 5, "")]);
        assert_eq!(clash.len(), 1, "{clash:?}");
        assert!(clash[0].message.contains("port 5000"));
    }

    #[test]
    fn dangling_target_is_a_warning_and_an_error_when_strict() {
        let mut p = production(vec![tcp_in("A", 3, "5000", "Nowhere")]);
        let f = validate(&mut p.clone(), Path::new("p.xml"), &LoadOptions::default());
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.warnings.len(), 1);
        assert_eq!(f.warnings[0].line, 4);
        let strict = LoadOptions {
            strict: true,
            ..LoadOptions::default()
        };
        let f = validate(&mut p, Path::new("p.xml"), &strict);
        assert_eq!(f.errors.len(), 1);
        assert!(f.errors[0].message.contains("Nowhere"));
    }

    #[test]
    fn unknown_class_is_an_error_unless_allowed_and_then_disabled() {
        let custom = with(Item::new("C", "My.Custom.Operation"), 5, &[]);
        let mut p = production(vec![custom]);
        let f = validate(&mut p.clone(), Path::new("p.xml"), &LoadOptions::default());
        assert_eq!(f.errors.len(), 1);
        assert!(f.errors[0].message.contains("My.Custom.Operation"));
        let allow = LoadOptions {
            allow_unknown: true,
            ..LoadOptions::default()
        };
        let strict_allow = LoadOptions {
            strict: true,
            ..allow
        };
        let f = validate(&mut p, Path::new("p.xml"), &strict_allow);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.unknown_classes.len(), 1);
        assert!(!p.items[0].enabled);
    }

    #[test]
    fn enabled_item_targeting_a_disabled_item_is_warned_about() {
        let mut off = with(
            Item::new("Off", "EnsLib.HL7.MsgRouter.RoutingEngine"),
            8,
            &[(SettingTarget::Host, "BusinessRuleName", "R")],
        );
        off.enabled = false;
        let mut p = production(vec![tcp_in("In", 3, "5000", "Off"), off]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        // The disabled router's BusinessRuleName is a warning, not an error.
        let lines: Vec<(u32, bool)> = f
            .warnings
            .iter()
            .map(|w| (w.line, w.message.contains("which is disabled")))
            .collect();
        assert_eq!(lines, vec![(4, true), (9, false)], "{:?}", f.warnings);
    }

    fn router(name: &str, line: u32, targets: &str) -> Item {
        with(
            Item::new(name, "EnsLib.HL7.MsgRouter.RoutingEngine"),
            line,
            &[(SettingTarget::Host, "TargetConfigNames", targets)],
        )
    }

    fn out(name: &str, line: u32) -> Item {
        with(
            Item::new(name, "EnsLib.HL7.Operation.TCPOperation"),
            line,
            &[
                (SettingTarget::Adapter, "IPAddress", "127.0.0.1"),
                (SettingTarget::Adapter, "Port", "6000"),
            ],
        )
    }

    fn errors_of(items: Vec<Item>) -> Vec<(u32, String)> {
        let mut p = production(items);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        f.errors.into_iter().map(|d| (d.line, d.message)).collect()
    }

    #[test]
    fn a_router_targeting_itself_is_a_cycle_error_at_its_target_line() {
        let errors = errors_of(vec![tcp_in("In", 1, "5000", "R"), router("R", 5, "R")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, 6);
        assert!(errors[0].1.contains("routing cycle"), "{errors:?}");
    }

    #[test]
    fn a_loop_of_routers_is_one_cycle_error_naming_its_items_in_order() {
        let errors = errors_of(vec![
            router("A", 1, "B,Out"),
            router("B", 3, "C"),
            router("C", 5, "A"),
            out("Out", 7),
        ]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, 6);
        assert!(errors[0].1.contains("A -> B -> C -> A"), "{errors:?}");
    }

    #[test]
    fn a_diamond_is_not_a_cycle() {
        let errors = errors_of(vec![
            router("A", 1, "B,C"),
            router("B", 3, "D"),
            router("C", 5, "D"),
            router("D", 7, "Out"),
            out("Out", 9),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn a_long_chain_is_checked_without_recursion() {
        let mut items: Vec<Item> = (0..50_000)
            .map(|i| router(&format!("R{i}"), 1 + 2 * i, &format!("R{}", i + 1)))
            .collect();
        items.push(router("R50000", 100_001, "R0"));
        let errors = errors_of(items);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.contains("routing cycle: R0 -> R1 -> "));
    }

    #[test]
    fn a_router_or_service_targeting_a_service_is_an_error() {
        let errors = errors_of(vec![
            tcp_in("In", 1, "5000", "R"),
            router("R", 3, "In2"),
            tcp_in("In2", 5, "5001", "In"),
        ]);
        let lines: Vec<u32> = errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, vec![4, 6], "{errors:?}");
        assert!(errors.iter().all(|e| e.1.contains("business service")));
    }

    #[test]
    fn a_router_with_a_rule_or_with_no_route_at_all_is_an_error() {
        let ruled = with(
            Item::new("Ruled", "EnsLib.HL7.MsgRouter.RoutingEngine"),
            3,
            &[
                (SettingTarget::Host, "BusinessRuleName", "X.Rule"),
                (SettingTarget::Host, "TargetConfigNames", "Out"),
            ],
        );
        let bare = Item::new("Bare", "EnsLib.MsgRouter.RoutingEngine");
        let errors = errors_of(vec![ruled, bare, out("Out", 9)]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 4);
        assert!(errors[0].1.contains("BusinessRuleName \"X.Rule\""));
        assert!(
            errors[1]
                .1
                .contains("neither BusinessRuleName nor TargetConfigNames")
        );
        assert!(errors_of(vec![router("R", 1, "Out"), out("Out", 3)]).is_empty());
    }

    #[test]
    fn missing_required_setting_is_an_error_only_for_enabled_items() {
        let mut op = Item::new("Out", "EnsLib.HL7.Operation.TCPOperation");
        op.source.line = 7;
        let mut disabled = op.clone();
        disabled.name = "Off".into();
        disabled.enabled = false;
        let mut p = production(vec![op, disabled]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert_eq!(f.errors.len(), 2, "{:?}", f.errors);
        assert!(
            f.errors
                .iter()
                .all(|d| d.item.as_deref() == Some("Out") && d.line == 7)
        );
    }

    #[test]
    fn unsupported_settings_are_listed_by_item_and_name() {
        let item = with(
            Item::new("In", "EnsLib.HL7.Service.TCPService"),
            2,
            &[
                (SettingTarget::Adapter, "Port", "5000"),
                (SettingTarget::Adapter, "SSLConfig", "tls"),
                (SettingTarget::Host, "MadeUp", "1"),
            ],
        );
        let mut p = production(vec![item]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        let names: Vec<_> = f
            .unsupported_settings
            .iter()
            .map(|u| u.setting.as_str())
            .collect();
        assert_eq!(names, vec!["MadeUp", "SSLConfig"]);
        p.items[0].schedule = "START:2026-01-01T00:00:00".into();
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert!(
            f.unsupported_settings
                .iter()
                .any(|u| u.setting == "Schedule")
        );
    }

    #[test]
    fn priority_message_types_under_fifo_are_a_warning_at_their_line() {
        let out = |host: &[(SettingTarget, &str, &str)]| {
            let mut settings = vec![
                (SettingTarget::Adapter, "IPAddress", "127.0.0.1"),
                (SettingTarget::Adapter, "Port", "6000"),
            ];
            settings.extend_from_slice(host);
            with(
                Item::new("Out", "EnsLib.HL7.Operation.TCPOperation"),
                6,
                &settings,
            )
        };
        let types = (SettingTarget::Host, "PriorityMessageTypes", "ADT^A40");
        let mut p = production(vec![out(&[types])]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        assert_eq!(f.warnings[0].line, 7);
        assert!(f.warnings[0].message.contains("QueueOrder"));
        let priority = (SettingTarget::Host, "QueueOrder", "priority");
        let mut p = production(vec![out(&[types, priority])]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert!(f.errors.is_empty() && f.warnings.is_empty(), "{f:?}");
    }

    #[test]
    fn placement_deals_services_and_operations_round_robin_and_routers_follow_services() {
        let mut router = with(
            Item::new("R", "EnsLib.HL7.MsgRouter.RoutingEngine"),
            4,
            &[(SettingTarget::Host, "TargetConfigNames", "Out")],
        );
        router.pool_size = 0;
        let mut input = tcp_in("In", 1, "5000", "R");
        input.pool_size = 2;
        let out = with(
            Item::new("Out", "EnsLib.HL7.Operation.TCPOperation"),
            6,
            &[
                (SettingTarget::Adapter, "IPAddress", "127.0.0.1"),
                (SettingTarget::Adapter, "Port", "6000"),
            ],
        );
        let mut p = production(vec![input, router, out]);
        let f = validate(&mut p, Path::new("p.xml"), &LoadOptions::default());
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let plan = placement(&p, 3);
        let shards: Vec<(usize, Vec<usize>)> =
            plan.into_iter().map(|pl| (pl.item, pl.shards)).collect();
        assert_eq!(shards, vec![(0, vec![0, 1]), (1, vec![0, 1]), (2, vec![2])]);
    }
}
