//! `hie inspect` against the real-world corpus: every file in `../shared/corpus/hl7/`
//! gives the values that six independent HL7 libraries agree on (`expected.json`), through
//! the binary's `--json` output; and the error cases give the documented exit statuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use hie_tests::{bin, corpus_dir};
use serde_json::Value;

fn inspect(args: &[&str]) -> Output {
    Command::new(bin("hie"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run hie inspect")
}

fn expected() -> serde_json::Map<String, Value> {
    let path = corpus_dir().join("hl7/expected.json");
    let text = std::fs::read_to_string(&path).expect("read expected.json");
    let json: Value = serde_json::from_str(&text).expect("expected.json is JSON");
    json["messages"]
        .as_object()
        .expect("messages object")
        .clone()
}

#[test]
fn every_corpus_value_matches_the_libraries_majority_through_inspect_json() {
    let expected = expected();
    assert!(
        expected.len() >= 60,
        "the corpus lists {} files",
        expected.len()
    );
    let mut checked = 0;
    for (file, entry) in &expected {
        let values = entry["values"].as_object().expect("values object");
        // "PID-3 repetitions": n is checked as PID-3[n] present and PID-3[n+1] absent.
        let repetitions = values.get("PID-3 repetitions").and_then(Value::as_u64);
        let repetition_paths = repetitions
            .map(|n| vec![format!("PID-3[{}]", n.max(1)), format!("PID-3[{}]", n + 1)])
            .unwrap_or_default();
        let path = corpus_dir().join("hl7").join(file);
        let mut args = vec!["--json", path.to_str().unwrap()];
        args.extend(
            values
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "segments" && *k != "PID-3 repetitions"),
        );
        args.extend(repetition_paths.iter().map(String::as_str));
        let out = inspect(&args);
        assert!(
            out.status.success(),
            "{file}: exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).expect("inspect --json is JSON");
        // For a batch file the expected values are those of its first message.
        let first = &json[0];
        assert_eq!(first["index"], 0, "{file}");
        for (key, want) in values {
            if key == "PID-3 repetitions" {
                let n = want.as_u64().expect("a count");
                let (last, beyond) = (&repetition_paths[0], &repetition_paths[1]);
                assert_eq!(first["values"][last].is_null(), n == 0, "{file}: {last}");
                assert!(first["values"][beyond].is_null(), "{file}: {beyond}");
            } else if key == "segments" {
                assert_eq!(&first["segments"], want, "{file}: segments");
            } else {
                // The libraries report an absent value as "", hie as null (absent and
                // present-but-empty are both "no value" in HL7; hie keeps them apart).
                let got = &first["values"][key];
                let absent_as_empty = got.is_null() && want == "";
                assert!(
                    got == want || absent_as_empty,
                    "{file}: {key}: {got} != {want}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} values checked");
}

#[test]
fn a_batch_file_gives_one_entry_per_message() {
    let path = corpus_dir().join("hl7/040_er7_batch.hl7");
    let out = inspect(&["--json", path.to_str().unwrap(), "MSH-10"]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = json.as_array().unwrap();
    assert!(entries.len() > 1, "a batch holds several messages");
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry["index"], n);
        assert_eq!(entry["segments"][0], "MSH");
    }
}

#[test]
fn paths_print_one_value_per_line_and_decode_on_request() {
    let mut child = Command::new(bin("hie"))
        .args(["inspect", "-", "MSH-10", "PID-5", "OBX-5", "ZZZ-1"])
        .arg("--decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|CTRL1|P|2.5\rPID|||1||Smith\\T\\Jones\rOBX|1|TX|||a\\F\\b\r")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "CTRL1\nSmith&Jones\na|b\n\n"
    );
}

#[test]
fn the_summary_lists_header_and_segments() {
    let path = corpus_dir().join("hl7/001_msfc_ADT-A01-01.hl7");
    let out = inspect(&[path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ADT^A01 control id MSG00001"), "{text}");
    assert!(text.contains("MSH SFT EVN PID"), "{text}");
}

#[test]
fn input_that_is_not_hl7_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "shopping list\neggs\n").unwrap();
    let out = inspect(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");

    let out = inspect(&["/nonexistent/file.hl7"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn a_malformed_path_exits_1_naming_it() {
    let path = corpus_dir().join("hl7/001_msfc_ADT-A01-01.hl7");
    let out = inspect(&[path.to_str().unwrap(), "PID-x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PID-x"));
}
