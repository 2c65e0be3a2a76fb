//! The contract between the engine and the items it runs: lifecycle hooks and per-message
//! hooks, called on the shard of each item instance.
//!
//! Lifecycle, per instance:
//! - `on_init` once, when its shard has created it (its queue exists, nothing runs yet);
//! - `on_start` whenever it starts taking work (start-up, enable, resume, restart);
//! - `on_stop` whenever it stops taking work (disable, pause, failure, shutdown);
//! - `on_teardown` once, when its shard shuts down, after its last message.
//!
//! Per message:
//! - `before` when a router or operation takes the message from its queue (a service:
//!   when the message is stored);
//! - `after` with the message's outcome at the item (completed, failed, suspended,
//!   discarded);
//! - `on_error` for every failed attempt and every failure (a retry, an error reply, a
//!   write error), with its reason.
//!
//! Hooks are synchronous and run on the shard thread between awaits: they must not block
//! or do I/O of their own (logging is fine). The built-in [`TraceEvents`] is installed on
//! items with IRIS's `LogTraceEvents` setting.

use std::fmt::Debug;

use crate::envelope::{Envelope, OriginRecord};

/// Which instance a hook is called for.
#[derive(Debug, Clone, Copy)]
pub struct HookContext<'a> {
    pub item: &'a str,
    pub shard: usize,
}

/// Hooks an item kind may implement; every method does nothing by default.
pub trait ItemHooks: Debug {
    fn on_init(&self, _ctx: &HookContext<'_>) {}
    fn on_start(&self, _ctx: &HookContext<'_>) {}
    fn on_stop(&self, _ctx: &HookContext<'_>) {}
    fn on_teardown(&self, _ctx: &HookContext<'_>) {}
    fn before(&self, _ctx: &HookContext<'_>, _env: &Envelope) {}
    fn after(&self, _ctx: &HookContext<'_>, _env: &Envelope, _outcome: &OriginRecord) {}
    fn on_error(&self, _ctx: &HookContext<'_>, _env: &Envelope, _error: &str) {}
}

/// IRIS `LogTraceEvents`: one log line (target `hie::trace`, level info) for every
/// lifecycle change and every message an item takes, finishes or fails.
#[derive(Debug, Default)]
pub struct TraceEvents;

impl ItemHooks for TraceEvents {
    fn on_init(&self, ctx: &HookContext<'_>) {
        tracing::info!(target: "hie::trace", item = %ctx.item, shard = ctx.shard, "init");
    }

    fn on_start(&self, ctx: &HookContext<'_>) {
        tracing::info!(target: "hie::trace", item = %ctx.item, shard = ctx.shard, "start");
    }

    fn on_stop(&self, ctx: &HookContext<'_>) {
        tracing::info!(target: "hie::trace", item = %ctx.item, shard = ctx.shard, "stop");
    }

    fn on_teardown(&self, ctx: &HookContext<'_>) {
        tracing::info!(target: "hie::trace", item = %ctx.item, shard = ctx.shard, "teardown");
    }

    fn before(&self, ctx: &HookContext<'_>, env: &Envelope) {
        tracing::info!(
            target: "hie::trace",
            item = %ctx.item,
            shard = ctx.shard,
            id = %env.id,
            bytes = env.bytes.len(),
            attempt = env.attempts + 1,
            "take"
        );
    }

    fn after(&self, ctx: &HookContext<'_>, env: &Envelope, outcome: &OriginRecord) {
        let outcome = match outcome {
            OriginRecord::Completed => "completed",
            OriginRecord::Failed { .. } => "failed",
            OriginRecord::Suspended { .. } => "suspended",
            OriginRecord::Discarded { .. } => "discarded",
        };
        let latency_us = env.received_at.elapsed().as_micros() as u64;
        tracing::info!(
            target: "hie::trace",
            item = %ctx.item,
            shard = ctx.shard,
            id = %env.id,
            latency_us,
            "{outcome}"
        );
    }

    fn on_error(&self, ctx: &HookContext<'_>, env: &Envelope, error: &str) {
        tracing::info!(
            target: "hie::trace",
            item = %ctx.item,
            shard = ctx.shard,
            id = %env.id,
            "error: {error}"
        );
    }
}
