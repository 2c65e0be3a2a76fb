//! hie-tests: helpers shared by the end-to-end tests in `tests/tests/`.
//!
//! The tests run the real binaries (`hie`, `hie-loadgen`) as child processes. [`bin`] finds
//! a binary in the target directory this test was built into, building it first if it is
//! missing, so `cargo test --workspace` needs no extra step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared/corpus` beside the project, as the test data README asks.
pub fn corpus_dir() -> PathBuf {
    workspace_root().join("../shared/corpus")
}

/// The path of binary `name` (`hie`, `hie-loadgen`) built in the same profile as this test.
///
/// Panics with a clear message if it is missing and cannot be built: a test without its
/// binary cannot say anything useful.
pub fn bin(name: &str) -> PathBuf {
    // current_exe is target/<profile>/deps/<test>-<hash>; binaries sit in target/<profile>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    if !path.exists() {
        let package = match name {
            "hie" => "hie-core",
            other => other,
        };
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "-p", package, "--bin", name]);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building {name} failed");
    }
    assert!(path.exists(), "{} not found after build", path.display());
    path
}

/// The Python interpreter of the shared venv `target/pyenv` with python-hl7 (PyPI `hl7`)
/// installed, creating the venv and installing the package when they are missing. `None`
/// when `python3` or the package index is unavailable. Idempotent, and shared by every
/// test that needs python-hl7 (its MLLP client and its asyncio MLLP server).
pub fn python_hl7() -> Option<PathBuf> {
    let venv = workspace_root().join("target/pyenv");
    let python = venv.join("bin/python");
    let has_hl7 = |py: &Path| {
        Command::new(py)
            .args(["-c", "import hl7.mllp"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.exists() && has_hl7(&python) {
        return Some(python);
    }
    if !python.exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !created {
            return None;
        }
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "hl7==0.4.5"])
        .status()
        .is_ok_and(|s| s.success());
    (installed && has_hl7(&python)).then_some(python)
}
