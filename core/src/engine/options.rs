//! What a program that runs the engine (the `hie` binary, the engine benchmark, an
//! embedding program) needs before [`RunningEngine::start`](super::RunningEngine::start):
//! a production loaded for running, its problems logged ([`load_production`]), and the
//! [`EngineOptions`] from the production's engine settings with the caller's
//! [`EngineOverrides`] ([`engine_options`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hie_persist::{SyncMode, WalConfig};

use crate::config::{self, ConfigError, LoadOptions, Production, WalSync};
use crate::engine::EngineOptions;
use crate::shard::{IO_MEMORY_BYTES_DEFAULT, ShardLayout, online_cpus};

/// How long shutdown waits for queues to drain unless the caller says otherwise (IRIS
/// ShutdownTimeout's default).
pub const SHUTDOWN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(120);
/// How long start-up waits for every shard to recover and open its services.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings of the engine a caller sets over the production's `[engine]` table; `None`
/// keeps the production's (or the default, where it has none). The `hie` binary's
/// defaults are its `run` arguments'; [`EngineOverrides::single_shard`] is a start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOverrides {
    /// Data directory (WAL per shard, control socket). Default: the production's.
    pub data_dir: Option<PathBuf>,
    /// Number of shards. Default: the production's, else one per online CPU.
    pub shards: Option<usize>,
    /// CPUs to pin the shards to, at least one per shard. Default: CPUs 0..shards when
    /// there are enough online, else unpinned.
    pub cpus: Option<Vec<usize>>,
    /// Do not pin shards to CPUs (wins over `cpus`).
    pub no_pin: bool,
    /// WAL durability. Default: the production's.
    pub sync: Option<WalSync>,
    /// How long shutdown waits for queues to drain.
    pub shutdown_timeout: Duration,
}

impl EngineOverrides {
    /// One shard, pinned to `cpu` (unpinned when `None`), WAL in `data_dir`, the
    /// production's sync mode: how `hie demo` and the engine benchmark run.
    pub fn single_shard(data_dir: PathBuf, cpu: Option<usize>) -> EngineOverrides {
        EngineOverrides {
            data_dir: Some(data_dir),
            shards: Some(1),
            cpus: cpu.map(|c| vec![c]),
            no_pin: cpu.is_none(),
            sync: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Why [`engine_options`] refused the overrides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// Fewer CPUs to pin to than shards.
    #[error("{cpus} CPUs to pin {shards} shards to: at least one per shard")]
    TooFewCpus { cpus: usize, shards: usize },
}

/// The engine options for `production` with the caller's overrides.
pub fn engine_options(
    production: &Production,
    overrides: &EngineOverrides,
) -> Result<EngineOptions, OptionsError> {
    let engine = &production.engine;
    let shards = overrides
        .shards
        .or(engine.shards)
        .unwrap_or_else(|| online_cpus().len());
    let cpus = if overrides.no_pin {
        None
    } else if let Some(cpus) = &overrides.cpus {
        if cpus.len() < shards {
            return Err(OptionsError::TooFewCpus {
                cpus: cpus.len(),
                shards,
            });
        }
        Some(cpus.clone())
    } else {
        let online = online_cpus();
        (online.len() >= shards).then(|| online[..shards].to_vec())
    };
    let sync = overrides.sync.unwrap_or(engine.wal_sync);
    let wal = WalConfig::default()
        .with_segment_bytes(engine.wal_segment_bytes)
        .with_sync(wal_sync(sync));
    Ok(EngineOptions {
        data_dir: overrides
            .data_dir
            .clone()
            .unwrap_or_else(|| engine.data_dir.clone()),
        layout: ShardLayout {
            shards,
            cpus,
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
        },
        wal,
        shutdown_timeout: overrides.shutdown_timeout,
        start_timeout: START_TIMEOUT,
    })
}

fn wal_sync(sync: WalSync) -> SyncMode {
    match sync {
        WalSync::Fsync => SyncMode::Fsync,
        WalSync::Interval { interval_ms } => SyncMode::Interval {
            interval_ms: u64::from(interval_ms),
        },
        WalSync::None => SyncMode::None,
    }
}

/// Loads a production for running: its warnings, the classes hie does not run (with
/// `allow_unknown`; disabled) and the settings it ignores are logged; the error says
/// why it cannot run ([`ConfigError::is_unreadable`] tells a file that cannot be read).
pub fn load_production(path: &Path, allow_unknown: bool) -> Result<Production, ConfigError> {
    let opts = LoadOptions {
        allow_unknown,
        strict: false,
    };
    let loaded = config::load(path, &opts)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    for unknown in &loaded.unknown_classes {
        tracing::warn!(item = %unknown.item, "class {} is not run by hie; item disabled", unknown.class);
    }
    // Those set to other than their IRIS default are among the warnings above.
    for unsupported in loaded.unsupported_settings.iter().filter(|u| u.at_default) {
        tracing::debug!(item = %unsupported.item, "setting {} is not supported; at its IRIS default, ignoring it changes nothing", unsupported.setting);
    }
    Ok(loaded.production)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The production's engine settings, none overridden, not pinned.
    const KEEP: EngineOverrides = EngineOverrides {
        data_dir: None,
        shards: None,
        cpus: None,
        no_pin: true,
        sync: None,
        shutdown_timeout: Duration::from_secs(7),
    };

    fn production(dir: &Path) -> Production {
        let path = dir.join("p.toml");
        let text = "[production]\nname = \"P\"\n[engine]\nshards = 3\n\
                    data_dir = \"/var/lib/hie\"\nwal_sync = \"none\"\n";
        std::fs::write(&path, text).unwrap();
        load_production(&path, false).unwrap()
    }

    #[test]
    fn the_production_holds_where_nothing_is_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let options = engine_options(&production(dir.path()), &KEEP).unwrap();
        assert_eq!(options.data_dir, Path::new("/var/lib/hie"));
        assert_eq!(options.layout.shards, 3);
        assert_eq!(options.layout.cpus, None);
        assert_eq!(options.wal.sync, SyncMode::None);
        assert_eq!(options.shutdown_timeout, Duration::from_secs(7));
    }

    #[test]
    fn overrides_win_over_the_production() {
        let dir = tempfile::tempdir().unwrap();
        let overrides = EngineOverrides {
            data_dir: Some(dir.path().join("wal")),
            shards: Some(2),
            cpus: Some(vec![4, 6]),
            no_pin: false,
            sync: Some(WalSync::Fsync),
            ..KEEP
        };
        let options = engine_options(&production(dir.path()), &overrides).unwrap();
        assert_eq!(options.data_dir, dir.path().join("wal"));
        assert_eq!(options.layout.shards, 2);
        assert_eq!(options.layout.cpus, Some(vec![4, 6]));
        assert_eq!(options.wal.sync, SyncMode::Fsync);
    }

    #[test]
    fn fewer_cpus_than_shards_is_refused_unless_unpinned() {
        let dir = tempfile::tempdir().unwrap();
        let production = production(dir.path());
        let overrides = EngineOverrides {
            cpus: Some(vec![0, 1]),
            no_pin: false,
            ..KEEP
        };
        assert_eq!(
            engine_options(&production, &overrides).unwrap_err(),
            OptionsError::TooFewCpus { cpus: 2, shards: 3 }
        );
        let unpinned = EngineOverrides {
            no_pin: true,
            ..overrides
        };
        assert_eq!(
            engine_options(&production, &unpinned).unwrap().layout.cpus,
            None
        );
    }

    #[test]
    fn a_missing_production_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_production(&dir.path().join("none.toml"), false).unwrap_err();
        assert!(error.is_unreadable(), "{error}");
    }
}
