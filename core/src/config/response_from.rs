//! A router's response settings, as written: `ResponseFrom` (which targets' responses
//! answer the caller, and how many), `ResponseTimeout`, `ResponseTargetConfigNames` and
//! `ForwardGeneratedResponseToTarget`; what hie does with them is
//! [`crate::engine::responses`].
//!
//! `ResponseFrom` grammar (IRIS): blank (no response), `*` (the first from any target),
//! `a,b` (the first from `a` or `b`), a leading `+` (all of them together: `+a,b`, `+*`),
//! a leading `-` (errors only: `-a,b`, `-*`). A sign with no names (`+`, `-`) means every
//! target, as `*` does.
//!
//! Checks (`hie check` and `hie run` alike, via [`check`]): a `ResponseFrom` name that is
//! no item of the production is an error at the setting's line on an enabled router (a
//! warning on a disabled one): the router would wait for a response that cannot come.
//! `ResponseTargetConfigNames` is checked with the other target settings
//! (`config::routes`). `ResponseTargetConfigNames` on a router whose `ResponseFrom` is
//! blank is a warning: IRIS forwards responses only when `ResponseFrom` has a value.

use std::collections::HashSet;
use std::path::Path;

use super::model::{Item, Production};
use super::settings::{Timeout, split_list};
use super::validate::Findings;

/// How many of the listed targets' responses answer the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// The first response from any listed target.
    First,
    /// `+`: every listed target's response; the worst answers.
    All,
    /// `-`: the first error response; none when every listed target accepted.
    Errors,
}

/// A `ResponseFrom` value that is not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrom {
    pub gather: Gather,
    /// The listed items; `None` for `*` (every target the message was sent to).
    pub items: Option<Vec<String>>,
}

impl ResponseFrom {
    /// Reads a `ResponseFrom` value; `None` when blank.
    pub fn parse(value: &str) -> Option<ResponseFrom> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let (gather, rest) = match value.as_bytes()[0] {
            b'+' => (Gather::All, &value[1..]),
            b'-' => (Gather::Errors, &value[1..]),
            _ => (Gather::First, value),
        };
        let names = split_list(rest, false);
        let items = (!names.is_empty() && !names.iter().any(|n| n == "*")).then_some(names);
        Some(ResponseFrom { gather, items })
    }
}

/// A router's response settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSettings {
    /// `ResponseFrom`; `None` when blank.
    pub from: Option<ResponseFrom>,
    /// `ResponseTimeout` (-1: forever, bounded by the caller's own wait).
    pub timeout: Timeout,
    /// `ResponseTargetConfigNames`.
    pub targets: Vec<String>,
    /// `ForwardGeneratedResponseToTarget`.
    pub forward_generated: bool,
}

/// The checks of the module header, for every router.
pub fn check(production: &Production, file: &Path, f: &mut Findings) {
    let names: HashSet<&str> = production.items.iter().map(|i| i.name.as_str()).collect();
    for item in production.items.iter().filter(|i| is_router(i)) {
        check_router(item, &names, file, f);
    }
}

fn is_router(item: &Item) -> bool {
    item.resolved().is_some_and(|(kind, _)| {
        crate::config::catalog::spec(kind, super::SettingTarget::Host, "ResponseFrom")
            .is_some_and(|s| s.supported)
    })
}

fn check_router(item: &Item, names: &HashSet<&str>, file: &Path, f: &mut Findings) {
    let from = item.host_settings.get("ResponseFrom");
    let parsed = from.and_then(|raw| ResponseFrom::parse(&raw.value));
    if let (Some(raw), Some(listed)) = (from, parsed.as_ref().and_then(|p| p.items.as_ref())) {
        for name in listed.iter().filter(|n| !names.contains(n.as_str())) {
            let message = format!(
                "ResponseFrom names {name:?}, which is no item of this production: the \
                 router would wait for a response that cannot come"
            );
            if item.enabled {
                f.error(file, raw.line, Some(&item.name), message);
            } else {
                f.warn(file, raw.line, Some(&item.name), message);
            }
        }
    }
    let forwards = item.host_settings.get("ResponseTargetConfigNames");
    if let (Some(raw), None) = (forwards, parsed) {
        if !split_list(&raw.value, false).is_empty() {
            let message = "ResponseTargetConfigNames has no effect: ResponseFrom is blank, \
                           so the router returns no response to forward"
                .to_owned();
            f.warn(file, raw.line, Some(&item.name), message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn response_from_reads_every_form_of_the_setting() {
        assert_eq!(ResponseFrom::parse(""), None);
        assert_eq!(ResponseFrom::parse("  "), None);
        let cases = [
            ("*", Gather::First, None),
            ("A", Gather::First, items(&["A"])),
            (" A , B ", Gather::First, items(&["A", "B"])),
            ("+A,B", Gather::All, items(&["A", "B"])),
            ("+*", Gather::All, None),
            ("+", Gather::All, None),
            ("-A", Gather::Errors, items(&["A"])),
            ("-*", Gather::Errors, None),
            ("A,*", Gather::First, None),
        ];
        for (value, gather, items) in cases {
            assert_eq!(
                ResponseFrom::parse(value),
                Some(ResponseFrom { gather, items }),
                "{value:?}"
            );
        }
    }
}
