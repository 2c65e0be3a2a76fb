//! hie-core: the engine. Shard runtime, items, queues, rules, configuration and admin;
//! the `hie` command line lives in [`cli`].

pub mod cli;
pub mod config;
pub mod engine;
pub mod envelope;
pub mod item;
pub mod items;
pub mod notify;
pub mod priority;
pub mod queue;
pub mod reply_code_actions;
pub mod ring;
pub mod shard;
