//! End-to-end tests of `hie check` and `hie convert` on the IRIS productions of the corpus
//! and on small broken productions: exit statuses, the `--json` shape, precise file:line
//! diagnostics and stable round trips between the IRIS forms and TOML.
//!
//! The expected item names, classes and settings are read from the corpus files by a
//! deliberately naive text scan here (not by hie's XML reader), so the two must agree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn productions() -> Vec<PathBuf> {
    let dir = hie_tests::corpus_dir().join("iris/productions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("xml" | "cls")))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "corpus productions missing: {files:?}");
    files
}

fn corpus_file(prefix: &str) -> PathBuf {
    productions()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no corpus production {prefix}*"))
}

fn hie(args: &[&str]) -> Output {
    Command::new(hie_tests::bin("hie"))
        .args(args)
        .output()
        .expect("run hie")
}

fn check_json(path: &Path, flags: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(flags);
    let path = path.to_str().unwrap();
    args.push(path);
    let out = hie(&args);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json {path}: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

fn convert(input: &Path, output: &Path) {
    let out = hie(&["convert", input.to_str().unwrap(), output.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "convert {} {}: {}",
        input.display(),
        output.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Value of attribute `name` in the tag text `tag` (naive: `name="..."`).
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].to_owned())
}

/// (name, class, settings as (target, name, value or None when not plain text)) per
/// `<Item` in the file, by plain text search.
type Expected = Vec<(String, String, Vec<(String, String, Option<String>)>)>;

fn scan_items(text: &str) -> Expected {
    let mut items = Vec::new();
    for chunk in text.split("<Item ").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap()];
        let body = &chunk[..chunk.find("</Item>").unwrap_or(chunk.len())];
        let mut settings = Vec::new();
        for s in body.split("<Setting ").skip(1) {
            let stag = &s[..s.find('>').unwrap()];
            let value = &s[stag.len() + 1..s.find("</Setting>").unwrap()];
            let plain = !value.contains('&') && !value.contains('<') && !value.contains(']');
            settings.push((
                attr(&format!(" {stag}"), "Target").unwrap(),
                attr(&format!(" {stag}"), "Name").unwrap(),
                plain.then(|| value.to_owned()),
            ));
        }
        items.push((
            attr(&format!(" {tag}"), "Name").unwrap(),
            attr(&format!(" {tag}"), "ClassName").unwrap(),
            settings,
        ));
    }
    items
}

/// True when every error of `json` is an enabled router's `BusinessRuleName` naming a
/// rule class that is not beside the production (the corpus keeps its rule classes
/// apart, and most are not public).
fn only_rule_errors(json: &Value) -> bool {
    json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["message"].as_str().unwrap().contains("no rule class"))
}

#[test]
fn every_corpus_production_loads_with_allow_unknown_and_matches_the_file() {
    for path in productions() {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = scan_items(&text);
        let (code, json) = check_json(&path, &["--allow-unknown"]);
        let rules = json["errors"].as_array().unwrap().len();
        assert_eq!(code, i32::from(rules > 0), "{}: {json:#}", path.display());
        assert!(only_rule_errors(&json), "{}: {json:#}", path.display());
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), expected.len(), "{}", path.display());
        for (item, (name, class, settings)) in items.iter().zip(&expected) {
            assert_eq!(item["name"], name.as_str(), "{}", path.display());
            assert_eq!(item["class"], class.as_str(), "{}", path.display());
            let host = item["settings"]["host"].as_object().unwrap();
            let adapter = item["settings"]["adapter"].as_object().unwrap();
            assert_eq!(
                host.len() + adapter.len(),
                settings.len(),
                "{} {name}",
                path.display()
            );
            for (target, setting, value) in settings {
                let map = if target == "Host" { host } else { adapter };
                let got = map
                    .get(setting)
                    .unwrap_or_else(|| panic!("{} {name}: no {target} {setting}", path.display()));
                if let Some(value) = value {
                    assert_eq!(got, value.as_str(), "{} {name} {setting}", path.display());
                }
            }
        }
    }
}

#[test]
fn productions_with_custom_classes_fail_without_allow_unknown_naming_item_and_class() {
    for path in productions() {
        let (code, json) = check_json(&path, &[]);
        let unknown = json["unknown_classes"].as_array().unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("03_") {
            assert_eq!(code, 0, "{name}: {json:#}");
            assert!(unknown.is_empty(), "{name}");
            continue;
        }
        assert_eq!(code, 1, "{name}: {json:#}");
        assert!(!unknown.is_empty(), "{name}");
        let errors = json["errors"].as_array().unwrap();
        for u in unknown {
            let (item, class) = (u["item"].as_str().unwrap(), u["class"].as_str().unwrap());
            assert!(
                errors.iter().any(|e| e["item"] == item
                    && e["message"].as_str().unwrap().contains(class)
                    && e["line"].as_u64().unwrap() > 0),
                "{name}: no error for {item} ({class})"
            );
        }
    }
}

#[test]
fn ensdemo_cdata_split_value_and_lines_are_read_exactly() {
    let path = corpus_file("01_");
    let (_, json) = check_json(&path, &[]);
    let items = json["items"].as_array().unwrap();
    let op = items
        .iter()
        .find(|i| i["name"] == "ADT_A08_FileOperation")
        .unwrap();
    assert_eq!(op["settings"]["host"]["Separators"], "|^~\\&");
    assert_eq!(op["kind"], "operation");
    let router = items.iter().find(|i| i["name"] == "ABC_Router").unwrap();
    assert_eq!(router["targets"], serde_json::json!(["BadMessageHandler"]));
    assert_eq!(router["pool_size"], 0);
}

#[test]
fn check_json_has_exactly_the_documented_keys() {
    let (_, json) = check_json(&corpus_file("04_"), &["--allow-unknown"]);
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "errors",
            "items",
            "production",
            "unknown_classes",
            "unsupported_settings",
            "warnings"
        ]
    );
    assert_eq!(json["production"], "IRISDemo.Production");
    let mut item_keys: Vec<&str> = json["items"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    item_keys.sort_unstable();
    assert_eq!(
        item_keys,
        [
            "class",
            "enabled",
            "kind",
            "name",
            "pool_size",
            "settings",
            "targets"
        ]
    );
    let u = &json["unknown_classes"][0];
    assert_eq!(u.as_object().unwrap().len(), 2);
    assert!(u["item"].is_string() && u["class"].is_string());
    // Production 04's MessageSchemaCategory and Validation are supported (issue #17): it
    // has no unsupported setting; ENSDEMO has many.
    let unsupported: Vec<&str> = json["unsupported_settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["setting"].as_str().unwrap())
        .collect();
    assert!(unsupported.is_empty(), "{json:#}");
    let (_, ensdemo) = check_json(&corpus_file("01_"), &[]);
    let s = &ensdemo["unsupported_settings"][0];
    assert_eq!(s.as_object().unwrap().len(), 2);
    assert!(s["item"].is_string() && s["setting"].is_string());
    // The dangling HL7_SMS_Router target of this production is a warning with file and line.
    let w = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["message"].as_str().unwrap().contains("HL7_SMS_Router"))
        .unwrap();
    let mut w_keys: Vec<&str> = w.as_object().unwrap().keys().map(String::as_str).collect();
    w_keys.sort_unstable();
    assert_eq!(w_keys, ["file", "item", "line", "message"]);
    assert_eq!(w["item"], "EMR HL7 Feed");
    assert_eq!(w["line"], 17);
    assert!(w["message"].as_str().unwrap().contains("HL7_SMS_Router"));
}

#[test]
fn dangling_target_is_a_warning_and_an_error_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let text = TCP_PAIR
        .replace("PORT", "6000")
        .replace(">Out</Setting>", ">Out,HL7_SMS_Router</Setting>");
    let path = write(dir.path(), "p.xml", &text);
    let (code, json) = check_json(&path, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1, "{json:#}");
    let (code, json) = check_json(&path, &["--strict"]);
    assert_eq!(code, 1);
    assert!(json["warnings"].as_array().unwrap().is_empty());
    assert!(
        json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["line"] == 4 && e["message"].as_str().unwrap().contains("HL7_SMS_Router"))
    );
}

#[test]
fn iris_to_toml_to_model_and_toml_to_toml_round_trips_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    for path in productions() {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let a = dir.path().join(format!("{stem}.a.toml"));
        let b = dir.path().join(format!("{stem}.b.toml"));
        let xml = dir.path().join(format!("{stem}.c.xml"));
        let cls = dir.path().join(format!("{stem}.d.cls"));
        let from_xml = dir.path().join(format!("{stem}.e.toml"));
        let from_cls = dir.path().join(format!("{stem}.f.toml"));
        convert(&path, &a);
        convert(&a, &b);
        convert(&a, &xml);
        convert(&xml, &from_xml);
        convert(&a, &cls);
        convert(&cls, &from_cls);
        let a_text = std::fs::read_to_string(&a).unwrap();
        for other in [&b, &from_xml, &from_cls] {
            assert_eq!(
                a_text,
                std::fs::read_to_string(other).unwrap(),
                "{stem}: {} differs",
                other.display()
            );
        }
        // The model read from the IRIS file and from its TOML form is the same production.
        let (_, original) = check_json(&path, &["--allow-unknown"]);
        let (_, via_toml) = check_json(&a, &["--allow-unknown"]);
        assert_eq!(original["production"], via_toml["production"], "{stem}");
        assert_eq!(original["items"], via_toml["items"], "{stem}");
        assert_eq!(
            original["unsupported_settings"], via_toml["unsupported_settings"],
            "{stem}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn single_error(path: &Path) -> Value {
    let (code, json) = check_json(path, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json:#}");
    assert_eq!(errors[0]["file"], path.to_str().unwrap());
    errors[0].clone()
}

const TCP_PAIR: &str = r#"<Production Name="T.Production">
  <Item Name="In" ClassName="EnsLib.HL7.Service.TCPService" PoolSize="1">
    <Setting Target="Adapter" Name="Port">PORT</Setting>
    <Setting Target="Host" Name="TargetConfigNames">Out</Setting>
  </Item>
  <Item Name="Out" ClassName="EnsLib.HL7.Operation.TCPOperation" PoolSize="1">
    <Setting Target="Adapter" Name="IPAddress">127.0.0.1</Setting>
    <Setting Target="Adapter" Name="Port">6001</Setting>
  </Item>
</Production>
"#;

#[test]
fn malformed_xml_gives_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = TCP_PAIR.replace("PORT", "6000").replace(
        "</Item>\n  <Item Name=\"Out\"",
        "</Itm>\n  <Item Name=\"Out\"",
    );
    let path = write(dir.path(), "bad.xml", &text);
    let error = single_error(&path);
    assert_eq!(error["line"], 5, "{error:#}");
    assert!(error["message"].as_str().unwrap().contains("malformed XML"));
}

#[test]
fn missing_attribute_gives_file_line_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let text = TCP_PAIR
        .replace("PORT", "6000")
        .replace(" ClassName=\"EnsLib.HL7.Operation.TCPOperation\"", "");
    let path = write(dir.path(), "missing.xml", &text);
    let error = single_error(&path);
    assert_eq!(
        (error["line"].as_u64(), error["item"].as_str()),
        (Some(6), Some("Out"))
    );
    assert!(error["message"].as_str().unwrap().contains("ClassName"));
}

#[test]
fn bad_number_gives_the_line_of_the_setting_in_cls_and_toml() {
    let dir = tempfile::tempdir().unwrap();
    let cls = format!(
        "Class T.Production Extends Ens.Production\n{{\n\nXData ProductionDefinition\n{{\n{}}}\n\n}}\n",
        TCP_PAIR.replace("PORT", "60x0")
    );
    let path = write(dir.path(), "bad.cls", &cls);
    let error = single_error(&path);
    // <Production> is on line 6 of the class, so the Port setting (payload line 3) is line 8.
    assert_eq!(
        (error["line"].as_u64(), error["item"].as_str()),
        (Some(8), Some("In"))
    );
    assert!(error["message"].as_str().unwrap().contains("Port"));

    let toml = "[production]\nname = \"T\"\n\n[[item]]\nname = \"Out\"\nclass = \"EnsLib.HL7.Operation.TCPOperation\"\n[item.adapter]\nIPAddress = \"h\"\nPort = 6001\n[item.host]\nRetryInterval = \"often\"\n";
    let path = write(dir.path(), "bad.toml", toml);
    let error = single_error(&path);
    assert_eq!(
        (error["line"].as_u64(), error["item"].as_str()),
        (Some(11), Some("Out"))
    );
    assert!(error["message"].as_str().unwrap().contains("RetryInterval"));
}

#[test]
fn restart_settings_are_checked_at_their_line_and_take_fractional_delays() {
    let dir = tempfile::tempdir().unwrap();
    let toml = |delay: &str| {
        format!(
            "[production]\nname = \"T\"\n\n[[item]]\nname = \"Out\"\n\
             class = \"EnsLib.HL7.Operation.TCPOperation\"\n[item.adapter]\nIPAddress = \"h\"\n\
             Port = 6001\n[item.host]\nRestartPolicy = \"always\"\nRestartDelay = {delay}\n"
        )
    };
    let path = write(dir.path(), "soon.toml", &toml("\"soon\""));
    let error = single_error(&path);
    assert_eq!(
        (error["line"].as_u64(), error["item"].as_str()),
        (Some(12), Some("Out"))
    );
    assert!(error["message"].as_str().unwrap().contains("RestartDelay"));
    let path = write(dir.path(), "week.toml", &toml("604800"));
    let error = single_error(&path);
    assert!(
        error["message"].as_str().unwrap().contains("0..=86400"),
        "{error:#}"
    );
    for delay in ["0.5", "\"0.25\"", "2"] {
        let path = write(dir.path(), "ok.toml", &toml(delay));
        let (code, json) = check_json(&path, &[]);
        assert_eq!(code, 0, "RestartDelay = {delay}: {json:#}");
    }
    let cls = TCP_PAIR.replace("PORT", "6000").replace(
        "<Setting Target=\"Adapter\" Name=\"Port\">6001</Setting>",
        "<Setting Target=\"Adapter\" Name=\"Port\">6001</Setting>\n    \
         <Setting Target=\"Host\" Name=\"RestartPolicy\">sometimes</Setting>",
    );
    let path = write(dir.path(), "policy.xml", &cls);
    let error = single_error(&path);
    assert_eq!(
        (error["line"].as_u64(), error["item"].as_str()),
        (Some(9), Some("Out"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("never, on_failure, always")
    );
}

#[test]
fn port_clash_and_duplicate_names_are_all_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let text = TCP_PAIR.replace("PORT", "6000").replace(
        "</Production>",
        "  <Item Name=\"In\" ClassName=\"EnsLib.HL7.Service.TCPService\">\n    <Setting Target=\"Adapter\" Name=\"Port\">6000</Setting>\n  </Item>\n</Production>",
    );
    let path = write(dir.path(), "clash.xml", &text);
    let (code, json) = check_json(&path, &[]);
    assert_eq!(code, 1);
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{json:#}");
    assert!(
        errors
            .iter()
            .any(|e| e["line"] == 10 && e["message"].as_str().unwrap().contains("duplicate"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e["line"] == 11 && e["message"].as_str().unwrap().contains("6000"))
    );
}

#[test]
fn unreadable_file_exits_2_and_valid_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = hie(&["check", dir.path().join("absent.cls").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let (code, json) = check_json(&dir.path().join("absent.toml"), &[]);
    assert_eq!(code, 2);
    assert_eq!(json["errors"].as_array().unwrap().len(), 1);
    let path = write(dir.path(), "ok.xml", &TCP_PAIR.replace("PORT", "6000"));
    let out = hie(&["check", path.to_str().unwrap(), "--shards", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("In  [EnsLib.HL7.Service.TCPService]  pool 1  shards [0]  -> Out"),
        "{text}"
    );
    assert!(
        text.contains("Out  [EnsLib.HL7.Operation.TCPOperation]  pool 1  shards [1]"),
        "{text}"
    );
    assert!(
        text.contains("listens on: 0.0.0.0:6000 (In, every interface)"),
        "{text}"
    );
}

#[test]
fn toml_engine_settings_survive_toml_round_trip_and_are_noted_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let xml = write(dir.path(), "p.xml", &TCP_PAIR.replace("PORT", "6000"));
    let toml = dir.path().join("p.toml");
    convert(&xml, &toml);
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "wal_sync = \"fsync\"",
        "wal_sync = \"interval:5ms\"\nshards = 3",
    );
    std::fs::write(&toml, &text).unwrap();
    let again = dir.path().join("again.toml");
    convert(&toml, &again);
    let again_text = std::fs::read_to_string(&again).unwrap();
    assert!(again_text.contains("shards = 3"), "{again_text}");
    assert!(
        again_text.contains("wal_sync = \"interval:5ms\""),
        "{again_text}"
    );
    let out = hie(&[
        "convert",
        toml.to_str().unwrap(),
        dir.path().join("back.xml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[engine]"));
}

#[test]
fn convert_writes_stdout_with_to_and_exits_1_on_syntax_errors_and_2_on_unknown_output() {
    let dir = tempfile::tempdir().unwrap();
    let xml = write(dir.path(), "p.xml", &TCP_PAIR.replace("PORT", "6000"));
    let file = dir.path().join("p.toml");
    convert(&xml, &file);
    let out = hie(&["convert", xml.to_str().unwrap(), "-", "--to", "toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());

    let bad = write(dir.path(), "bad.xml", "<Production Name=\"P\">\n<Item\n");
    let out = hie(&[
        "convert",
        bad.to_str().unwrap(),
        dir.path().join("o.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.xml:"));
    assert!(!dir.path().join("o.toml").exists());

    let out = hie(&[
        "convert",
        xml.to_str().unwrap(),
        dir.path().join("o.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = hie(&[
        "convert",
        dir.path().join("absent.cls").to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
