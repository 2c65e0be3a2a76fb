//! `hie ctl`: talks to a running `hie run` through its control socket
//! (`DATA_DIR/hie.sock`).
//!
//! - `hie ctl --data-dir DIR status`: the JSON status of every item on every shard, with
//!   suspended messages.
//! - `hie ctl --data-dir DIR enable|disable|restart|pause|resume ITEM`.
//!
//! Exit status: 0 when the engine answered `ok` (or with a status), 1 when it refused the
//! request, 2 when no engine answers at that data directory.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::cli::run::CONTROL_SOCKET;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The data directory of the running production.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// `status`, or a command (`enable`, `disable`, `restart`, `pause`, `resume`).
    pub command: String,
    /// The item a command is for.
    pub item: Option<String>,
}

pub fn run(args: CtlArgs) -> ExitCode {
    let socket = args.data_dir.join(CONTROL_SOCKET);
    let request = match &args.item {
        Some(item) => format!("{} {item}\n", args.command),
        None => format!("{}\n", args.command),
    };
    let reply = UnixStream::connect(&socket).and_then(|mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request.as_bytes())?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    });
    match reply {
        Ok(line) if !line.is_empty() => {
            print!("{line}");
            let refused = serde_json::from_str::<serde_json::Value>(&line)
                .is_ok_and(|v| v.get("ok") == Some(&serde_json::Value::Bool(false)));
            if refused {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(_) => {
            eprintln!(
                "hie ctl: the engine at {} closed the connection",
                socket.display()
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("hie ctl: no engine answers at {}: {e}", socket.display());
            ExitCode::from(2)
        }
    }
}
