//! The claim of the registry, checked: a kind of item is one file and one registry line.
//! This test module is that file for a kind hie does not have (`Test.EchoOperation`): its
//! class, setting group, typed settings, check and plan data are here and nowhere else,
//! and a registry slice of one line ([`REGISTRY`]) is all the generic paths are given.
//! Validation (what `hie check` and `hie run` share) resolves and checks it, and the run
//! plan places and plans it, without any other file naming it.

use std::sync::Arc;

use crate::config::catalog::{
    H, HOST_ALL, OPERATION_HOST, QUEUE_HOST, SettingSpec, TEXT, int, req, s,
};
use crate::config::model::{Item, ItemKind, Production, SettingTarget};
use crate::config::settings::{ItemSettings, Reader};
use crate::config::startup::StartupChecks;
use crate::config::validate::{Findings, validate_with};
use crate::config::{Format, LoadOptions, parse_str};
use crate::engine::plan::{KindPlan, Plan, Role};
use crate::items::kind::{ClassDef, HostKind, PlanContext, mismatched};
use std::path::Path;

/// The kind.
#[derive(Debug)]
struct EchoOperation;

/// Its registry entry.
static KIND: EchoOperation = EchoOperation;

/// The registry the generic paths are given: one line.
static REGISTRY: &[&dyn HostKind] = &[&KIND];

/// Its own setting group.
const ECHO_HOST: &[SettingSpec] = &[
    req("Greeting", H, TEXT, "what it says"),
    s("Loudness", H, int(0, 9), "3", "how loud"),
];

/// Its typed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EchoSettings {
    greeting: String,
    loudness: u32,
}

/// Its plan data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EchoPlan {
    shout: String,
}

impl HostKind for EchoOperation {
    fn classes(&self) -> &'static [ClassDef] {
        &[ClassDef {
            class: "Test.EchoOperation",
            kind: ItemKind::Operation,
            about: "says it again",
        }]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[ECHO_HOST, OPERATION_HOST, QUEUE_HOST, HOST_ALL]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        r.settings(|r| EchoSettings {
            greeting: r.string(H, "Greeting"),
            loudness: r.u32(H, "Loudness"),
        })
    }

    fn check(&self, item: &Item, settings: &ItemSettings, checks: &mut StartupChecks<'_>) {
        if settings
            .of::<EchoSettings>()
            .is_some_and(|s| s.greeting == "!")
        {
            let message = "Greeting \"!\" says nothing".to_owned();
            checks.report(item, SettingTarget::Host, "Greeting", message);
        }
    }

    fn plan(&self, settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Result<KindPlan, String> {
        let s = settings
            .of::<EchoSettings>()
            .ok_or_else(|| mismatched(self))?;
        let shout = s.greeting.repeat(s.loudness as usize);
        Ok(Arc::new(EchoPlan { shout }))
    }
}

fn production(items: &str) -> (Production, Findings) {
    let path = Path::new("echo.toml");
    let text = format!("[production]\nname = \"Echo\"\n\n{items}");
    let mut production = parse_str(&text, path, Format::Toml)
        .expect("the production reads")
        .production;
    let findings = validate_with(&mut production, path, &LoadOptions::default(), REGISTRY);
    (production, findings)
}

fn echo(name: &str, host: &str) -> String {
    format!("[[item]]\nname = \"{name}\"\nclass = \"Test.EchoOperation\"\n[item.host]\n{host}\n")
}

#[test]
fn a_kind_defined_in_one_file_resolves_validates_and_plans_through_the_generic_paths() {
    let (production, f) = production(&echo(
        "Echo",
        "Greeting = \"hi\"\nLoudness = \"2\"\nQueueSize = \"7\"",
    ));
    assert!(f.errors.is_empty() && f.warnings.is_empty(), "{f:?}");
    assert!(f.unknown_classes.is_empty(), "{f:?}");
    let item = &production.items[0];
    assert_eq!(
        item.kind,
        ItemKind::Operation,
        "its kind from its class definition"
    );
    let settings = item.settings.as_ref().expect("resolved");
    assert_eq!(
        settings.of::<EchoSettings>(),
        Some(&EchoSettings {
            greeting: "hi".to_owned(),
            loudness: 2
        })
    );
    assert_eq!(
        settings.common.queue_size, 7,
        "every host's settings, read generically"
    );

    let plan = Plan::new(&production, 2);
    let planned = plan.item_named("Echo").expect("planned");
    assert!(
        matches!(planned.role, Role::Operation(_)),
        "{:?}",
        planned.role
    );
    assert!(planned.role.has_queue());
    assert_eq!(
        planned.role.data::<EchoPlan>(),
        Some(&EchoPlan {
            shout: "hihi".to_owned()
        })
    );
    assert_eq!(planned.shards, [0], "placed round robin as an operation");
    assert_eq!(planned.queue_size, 7);
    assert!(std::ptr::addr_eq(
        planned.host.expect("its kind"),
        &KIND as &dyn HostKind
    ));
}

#[test]
fn its_settings_and_checks_report_file_line_and_item_through_the_generic_paths() {
    let items = [
        echo("Loud", "Greeting = \"hi\"\nLoudness = \"12\""),
        echo("Mute", "Loudness = \"1\""),
        echo("Bang", "Greeting = \"!\""),
        echo("Typo", "Greeting = \"hi\"\nLoudnes = \"1\""),
    ];
    let (_, f) = production(&items.concat());
    let found: Vec<(u32, &str, &str)> = f
        .errors
        .iter()
        .map(|d| (d.line, d.item.as_deref().unwrap_or(""), d.message.as_str()))
        .collect();
    assert!(f.errors.iter().all(|d| d.file == Path::new("echo.toml")));
    // "Loud" starts at line 4, its Loudness is line 9; "Bang"'s Greeting is line 19.
    assert!(
        found
            .iter()
            .any(|&(l, i, m)| l == 9 && i == "Loud" && m.contains("out of range 0..=9")),
        "a bad value at its line: {found:?}"
    );
    assert!(
        found
            .iter()
            .any(|&(_, i, m)| i == "Mute" && m.contains("Greeting")),
        "a required setting: {found:?}"
    );
    assert!(
        found
            .iter()
            .any(|&(l, i, m)| l == 19 && i == "Bang" && m.contains("says nothing")),
        "its own check at its setting's line: {found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        f.warnings
            .iter()
            .any(|d| d.item.as_deref() == Some("Typo") && d.message.contains("Loudness")),
        "a misspelt setting, with a did-you-mean from its spec: {:?}",
        f.warnings
    );
}

#[test]
fn a_class_missing_from_the_registry_given_is_not_run() {
    let text = "[[item]]\nname = \"In\"\nclass = \"EnsLib.HL7.Service.FileService\"\n\
                [item.adapter]\nFilePath = \"/in\"\n";
    let (production, f) = production(text);
    assert_eq!(f.unknown_classes.len(), 1, "{f:?}");
    assert!(production.items[0].settings.is_none());
}
