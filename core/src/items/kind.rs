//! What defines one kind of item (a business host): the IRIS classes it runs, its setting
//! groups (spec, default, range, doc line), how its raw settings become typed settings,
//! and the checks it adds before anything starts. One file under `items/kinds/` per kind
//! implements [`HostKind`]; [`registry`](super::registry) lists them, and the catalog,
//! validation (so `hie check` and `hie run`), `hie convert`, the generated settings table
//! of `docs/configuration.md` and the run plan all read them from there.
//!
//! Not to be confused with [`ItemKind`] (service, process, operation): that is the role
//! each class of a kind has.
//!
//! Invariants:
//! - A class name belongs to at most one kind, and a kind has at least one class (a
//!   registry test checks both).
//! - [`HostKind::settings`] lists groups most specific first (see `config::catalog`).
//! - [`HostKind::check`] reports through [`StartupChecks`], which names file, line and
//!   item, and makes the finding an error on an enabled item and a warning on a disabled
//!   one: whatever it finds would stop `hie run` or leave the item unable to work.

use std::fmt;

use crate::config::catalog::SettingSpec;
use crate::config::model::{Item, ItemKind};
use crate::config::settings::{ItemSettings, Reader};
use crate::config::startup::StartupChecks;

/// One IRIS class of a kind.
#[derive(Debug, Clone, Copy)]
pub struct ClassDef {
    /// Exact IRIS class name.
    pub class: &'static str,
    /// Service, process or operation.
    pub kind: ItemKind,
    /// One line for `hie check` and the docs.
    pub about: &'static str,
}

/// One kind of item hie runs; see the module header.
pub trait HostKind: Sync {
    /// Its IRIS classes, in the order the docs list them.
    fn classes(&self) -> &'static [ClassDef];

    /// Its setting groups, most specific first.
    fn settings(&self) -> &'static [&'static [SettingSpec]];

    /// Its typed settings, read through `r` (which applies the defaults of
    /// [`HostKind::settings`] and reports bad values at their line).
    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings;

    /// Checks of its resolved settings that would stop `hie run` from starting or leave
    /// the item unable to work (none by default).
    fn check(&self, _item: &Item, _settings: &ItemSettings, _checks: &mut StartupChecks<'_>) {}
}

impl fmt::Debug for dyn HostKind + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes: Vec<&str> = self.classes().iter().map(|c| c.class).collect();
        write!(f, "HostKind({})", classes.join(", "))
    }
}
