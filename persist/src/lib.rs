//! hie-persist: one append-only write-ahead log per shard.
