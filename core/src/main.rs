//! The `hie` binary: parses the command line and hands over to `hie_core::cli`.

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hie_core::cli::main()
}
