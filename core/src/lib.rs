//! hie-core: the engine library. Shard runtime, items, queues, rules, configuration and
//! admin; what the `hie` binary (`core/cli`), the benchmarks and an embedding program link.

pub mod config;
pub mod engine;
pub mod envelope;
pub mod iris_class;
pub mod item;
pub mod items;
pub mod notify;
pub mod priority;
pub mod queue;
pub mod reply_code_actions;
pub mod ring;
pub mod rules;
pub mod shard;
pub mod transform;
