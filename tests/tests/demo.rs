//! `hie demo`, the README's first command, works: it runs its production under load and
//! every acknowledged message arrives.

use std::process::Command;

use hie_tests::{bin, free_port};

#[test]
fn the_demo_runs_its_production_under_load_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let out = Command::new(bin("hie"))
        .args(["demo", "--seconds", "1", "--connections", "2"])
        .args([
            "--port",
            &port.to_string(),
            "--sink-port",
            &sink_port.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run hie demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(line("sent") > 0, "{stdout}");
    assert_eq!(line("acked"), line("sent"), "{stdout}");
    assert_eq!(line("lost"), 0, "{stdout}");
    assert_eq!(line("duplicates"), 0, "{stdout}");
    assert!(dir.path().join("demo.toml").exists());
    let files = std::fs::read_dir(dir.path().join("out")).unwrap().count();
    assert!(files > 0, "the file operation wrote nothing");
}
