//! Generic TCP machinery of the servers and clients, whatever protocol they speak (MLLP
//! today; HTTP and TLS adapters later): the accept loop with its connection limits and
//! displacement, the inbound byte budget, busy-polling reads and the shard's readiness
//! set, and the wake gate for long glommio waits.

pub mod accept;
pub mod busy;
pub(crate) mod conns;
pub mod limits;
pub mod readiness;
#[cfg(test)]
mod test_support;
pub mod wake_gate;
