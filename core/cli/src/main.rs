//! The `hie` binary: the command line over the engine library (`hie-core`), one file per
//! subcommand, each owning its arguments and its exit statuses. Exit status 2 is reserved
//! for "could not read the input" (and for usage errors, as clap reports them). The
//! binary, not the library, owns the allocator, the logging setup, signal handling and
//! the admin HTTP API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod alerts;
mod check;
mod class_library;
mod convert;
mod ctl;
mod demo;
mod inspect;
mod message_files;
mod rules;
mod run;
mod transform;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hie: an HL7 v2 integration engine.
#[derive(Debug, Parser)]
#[command(
    name = "hie",
    version,
    about = "hie: an HL7 v2 integration engine",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the header, segments or chosen field values of the messages in an HL7 file.
    Inspect(inspect::InspectArgs),
    /// Validate a production (.cls, .xml, .toml) and print the plan: items, pools, shards, ports.
    Check(check::CheckArgs),
    /// Convert a production between IRIS .cls/.xml and hie's TOML form.
    Convert(convert::ConvertArgs),
    /// Run a production until SIGTERM or SIGINT.
    Run(run::RunArgs),
    /// Run an embedded production under load for a few seconds and print what it did.
    Demo(demo::DemoArgs),
    /// Control a running production: status, items (enable, disable, restart, pause,
    /// resume) and held messages (held, show, resend, discard).
    Ctl(ctl::CtlArgs),
    /// Routing rules: `hie rules test RULECLASS MESSAGE…` prints, per message, the rules
    /// that fired, where it goes and the trace.
    Rules(rules::RulesArgs),
    /// Data transformations: `hie transform DTLCLASS MESSAGE… [--diff]` prints each
    /// output message, or the fields that changed.
    Transform(transform::TransformArgs),
}

/// Runs the command line and returns the process exit status.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Ctl(args) => ctl::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Transform(args) => transform::run(&args),
    }
}
