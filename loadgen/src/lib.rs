//! hie-loadgen as a library: capacity testing for MLLP (HL7 v2) engines, the runs the
//! `hie-loadgen` binary and `hie demo` start.
//!
//! ```no_run
//! use std::time::Duration;
//! use hie_loadgen::{Executors, SendOptions, SinkOptions, run_send, run_sink};
//!
//! let sink = run_sink(SinkOptions { executors: Executors::pinned(&[1]), ..SinkOptions::default() })?;
//! let report = run_send(SendOptions {
//!     to: sink.addr(),
//!     connections: 8,
//!     duration: Some(Duration::from_secs(3)),
//!     executors: Executors::pinned(&[0]),
//!     ..SendOptions::default()
//! })?;
//! print!("{}", report.to_table());
//! let received = sink.stop_and_join()?.received;
//! assert_eq!(received, report.sent);
//! # Ok::<(), hie_loadgen::LoadgenError>(())
//! ```
//!
//! - [`run`]: the API ([`run_send`], [`run_sink`], [`run_e2e`]) and its options.
//! - [`send`], [`sink`], [`e2e`]: the sender's loops, the sink, end-to-end accounting.
//! - [`source`], [`template`], [`ids`], [`hl7io`]: the messages sent and the ids stamped
//!   into them (HL7 read and written through `hie-hl7`).
//! - [`stats`], [`runner`], [`histlog`], [`plot`]: counting, executors and the collector,
//!   reports.
//! - [`flood`]: connections that hold a slot on the target and never finish a message,
//!   held while a load runs.
//! - [`cli`]: the command line of the binary.

pub mod cli;
pub mod e2e;
pub mod error;
pub mod flood;
pub mod histlog;
pub mod hl7io;
pub mod ids;
pub mod plot;
pub mod run;
pub mod runner;
pub mod send;
pub mod sink;
pub mod source;
pub mod stats;
pub mod template;

pub use error::LoadgenError;
pub use flood::{FloodKind, FloodOptions, FloodReport};
pub use run::{
    E2eOptions, Executors, SendOptions, SinkHandle, SinkOptions, run_e2e, run_send, run_sink,
};
pub use sink::Behaviour;
pub use source::Source;
pub use stats::{AckCodes, Errors, LatencyUs, Report, SinkReport};
pub use template::TemplateKind;
