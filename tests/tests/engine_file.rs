//! HL7 file service → router → HL7 file operation, end to end: files dropped in
//! `FilePath` that match `FileSpec` are read (a batch file split into its messages),
//! archived to `ArchivePath` or deleted, and every message lands in the output directory
//! byte-identical, ended by the default `Framing` (`AsciiLF`); `Filename` tokens (`%f`, `%#f`, `%Q`, `%+(nnn)`, `%!+(_a)`) name the
//! output files. A file holding a refused message is kept as `<name>.rejected` and not read
//! again; with `BatchHandling=Whole` a batch file is one document, written as one entry.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{adt, counter, head, router, wait_status};
use hie_tests::{corpus_dir, wait_until};

fn file_service(name: &str, dir: &Path, spec: &str, archive: Option<&Path>) -> String {
    let mut s = format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Service.FileService\"\n[item.host]\nTargetConfigNames = \"Router\"\n[item.adapter]\nFilePath = \"{}\"\nFileSpec = \"{spec}\"\nCallInterval = \"1\"\n",
        dir.display()
    );
    if let Some(archive) = archive {
        s.push_str(&format!("ArchivePath = \"{}\"\n", archive.display()));
    }
    s
}

fn file_operation(name: &str, dir: &Path, filename: &str) -> String {
    format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n[item.host]\nFilename = \"{filename}\"\n[item.adapter]\nFilePath = \"{}\"\n",
        dir.display()
    )
}

/// `msg` as the file operation writes it with the default `Framing` (`AsciiLF`): its last
/// segment ended with CR, then LF.
fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    if !out.ends_with(b"\r") {
        out.push(b'\r');
    }
    out.push(b'\n');
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes `bytes` to `dir/name` through a temporary name, so the service never sees a
/// half-written file.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

struct Dirs {
    _root: tempfile::TempDir,
    root: PathBuf,
    input: PathBuf,
    archive: PathBuf,
    out: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().to_path_buf();
    let d = Dirs {
        input: path.join("in"),
        archive: path.join("archive"),
        out: path.join("out"),
        root: path,
        _root: root,
    };
    std::fs::create_dir_all(&d.input).unwrap();
    d
}

#[test]
fn dropped_files_are_split_archived_and_every_message_lands_byte_identical() {
    let d = dirs();
    let production = head("Files", 1)
        + &file_service("FilesIn", &d.input, "*.hl7;*.txt", Some(&d.archive))
        + &router("Router", "FileOut", &[])
        + &file_operation("FileOut", &d.out, "msg%+(000).hl7");
    let (hie, data) = common::start_hie(&d.root, &production);

    let single = adt("F-1", "P1");
    let batch = std::fs::read(corpus_dir().join("hl7/040_er7_batch.hl7")).unwrap();
    let ignored = adt("F-IGNORED", "P1");
    drop_file(&d.input, "a.hl7", &single);
    drop_file(&d.input, "b.txt", &batch);
    drop_file(&d.input, "c.dat", &ignored);

    let mut expected: Vec<Vec<u8>> = vec![single.clone()];
    expected.extend(hie_hl7::Batch::new(&batch).map(<[u8]>::to_vec));
    assert!(expected.len() >= 3, "the batch holds several messages");
    let n = expected.len();
    wait_status(&hie, &data, Duration::from_secs(20), "all written", |s| {
        counter(s, "FileOut", "completed") == n as u64
    });
    let written = names(&d.out);
    let wanted: Vec<String> = (1..=n).map(|k| format!("msg{k:03}.hl7")).collect();
    assert_eq!(written, wanted);
    for (name, msg) in written.iter().zip(&expected) {
        let got = std::fs::read(d.out.join(name)).unwrap();
        assert!(got == framed(msg), "{name} is not byte-identical");
    }
    assert_eq!(
        names(&d.archive),
        ["a.hl7", "b.txt"],
        "read files are archived"
    );
    assert_eq!(std::fs::read(d.archive.join("b.txt")).unwrap(), batch);
    assert_eq!(
        names(&d.input),
        ["c.dat"],
        "a file not matching FileSpec stays"
    );
    let status = common::status(&data);
    assert_eq!(counter(&status, "FilesIn", "received"), n as u64);
}

#[test]
fn without_an_archive_path_read_files_are_deleted() {
    let d = dirs();
    let production = head("FilesDelete", 1)
        + &file_service("FilesIn", &d.input, "*.hl7", None)
        + &router("Router", "FileOut", &[])
        + &file_operation("FileOut", &d.out, "%f");
    let (hie, _data) = common::start_hie(&d.root, &production);
    let msg = adt("DEL-1", "P1");
    drop_file(&d.input, "x.hl7", &msg);
    assert!(
        wait_until(Duration::from_secs(20), || names(&d.input).is_empty()
            && names(&d.out) == ["x.hl7"]),
        "in {:?}, out {:?}; log:\n{}",
        names(&d.input),
        names(&d.out),
        hie.log()
    );
    assert_eq!(std::fs::read(d.out.join("x.hl7")).unwrap(), framed(&msg));
    assert!(!d.archive.exists());
}

#[test]
fn filename_tokens_name_the_output_files() {
    let d = dirs();
    let (append, unique, timed) = (
        d.root.join("append"),
        d.root.join("unique"),
        d.root.join("timed"),
    );
    let production = head("FileTokens", 1)
        + &file_service("FilesIn", &d.input, "*.hl7", Some(&d.archive))
        + &router("Router", "Append,Unique,Timed", &[])
        + &file_operation("Append", &append, "%f.out")
        + &file_operation("Unique", &unique, "%f%!+(_a)")
        + &file_operation("Timed", &timed, "%#f_%Q.hl7");
    let (hie, data) = common::start_hie(&d.root, &production);

    let msgs: Vec<Vec<u8>> = (1..=3).map(|k| adt(&format!("T-{k}"), "P1")).collect();
    drop_file(&d.input, "feed.hl7", &msgs.concat());
    wait_status(&hie, &data, Duration::from_secs(20), "all written", |s| {
        ["Append", "Unique", "Timed"]
            .iter()
            .all(|item| counter(s, item, "completed") == 3)
    });

    // %f: the source file's name; without a counter, messages append to one file.
    assert_eq!(names(&append), ["feed.hl7.out"]);
    assert_eq!(
        std::fs::read(append.join("feed.hl7.out")).unwrap(),
        msgs.iter().map(|m| framed(m)).collect::<Vec<_>>().concat()
    );
    // %!+(_a): a counter only once the plain name is taken.
    assert_eq!(names(&unique), ["feed.hl7", "feed.hl7_a", "feed.hl7_b"]);
    for (name, msg) in names(&unique).iter().zip(&msgs) {
        assert_eq!(
            std::fs::read(unique.join(name)).unwrap(),
            framed(msg),
            "{name}"
        );
    }
    // %#f without its extension, %Q the ODBC time as IRIS writes it in file names.
    let timed_names = names(&timed);
    assert!(!timed_names.is_empty());
    let mut all = Vec::new();
    for name in &timed_names {
        let stamp = name
            .strip_prefix("feed_")
            .and_then(|rest| rest.strip_suffix(".hl7"))
            .unwrap_or_else(|| panic!("{name}"));
        let shape: String = stamp
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99_99.99.99.999", "{name}");
        all.extend(std::fs::read(timed.join(name)).unwrap());
    }
    let want: Vec<u8> = msgs.iter().flat_map(|m| framed(m)).collect();
    assert!(all == want, "every message once, in time order");
}

#[test]
fn a_file_message_that_breaks_its_declared_charset_is_rejected_and_the_rest_delivered() {
    let d = dirs();
    let production = head("FilesCharset", 1)
        + &file_service("FilesIn", &d.input, "*.hl7", Some(&d.archive))
        + &router("Router", "FileOut", &[])
        + &file_operation("FileOut", &d.out, "%f_%+(0)");
    let (hie, data) = common::start_hie(&d.root, &production);
    let bad = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|BAD1|P|2.5||||||UNICODE UTF-8\r\
PID|1||P2||J\xC3\xA9r\xFFme\r";
    let three = b"MSH|^~\\|S|F|R|F|20260101||ADT^A01|THREE|P|2.3\rPID|1||P3\r";
    let mut file = b"FHS|^~\\&|S\rBHS|^~\\&|S\r".to_vec();
    file.extend_from_slice(&adt("GOOD1", "P1"));
    file.extend_from_slice(bad);
    file.extend_from_slice(three);
    file.extend_from_slice(b"BTS|3\rFTS|1\r");
    drop_file(&d.input, "mixed.hl7", &file);
    let status = wait_status(&hie, &data, Duration::from_secs(20), "two written", |s| {
        counter(s, "FileOut", "completed") == 2 && names(&d.input) == ["mixed.hl7.rejected"]
    });
    assert_eq!(counter(&status, "FilesIn", "rejected"), 1);
    assert_eq!(counter(&status, "FilesIn", "received"), 2);
    // The file holding the refused message is kept, whole, where an operator sees it; it
    // is neither archived nor read again.
    assert!(names(&d.archive).is_empty(), "{:?}", names(&d.archive));
    assert!(std::fs::read(d.input.join("mixed.hl7.rejected")).unwrap() == file);
    let written: Vec<Vec<u8>> = names(&d.out)
        .iter()
        .map(|n| std::fs::read(d.out.join(n)).unwrap())
        .collect();
    assert!(
        written.contains(&framed(&adt("GOOD1", "P1"))),
        "{:?}",
        names(&d.out)
    );
    assert!(written.contains(&framed(three)), "{:?}", names(&d.out));
    assert!(
        hie.log().contains("invalid UTF-8 at byte offset"),
        "the log names the offset: {}",
        hie.log()
    );
    assert!(
        hie.log().contains("mixed.hl7.rejected"),
        "the log names the kept file: {}",
        hie.log()
    );
    // A second file of the same name is kept beside it; the service reads neither again.
    drop_file(&d.input, "mixed.hl7", &file);
    let status = wait_status(&hie, &data, Duration::from_secs(20), "kept again", |s| {
        counter(s, "FilesIn", "rejected") == 2
            && names(&d.input) == ["mixed.hl7.1.rejected", "mixed.hl7.rejected"]
    });
    std::thread::sleep(Duration::from_millis(2500));
    let again = common::status(&data);
    assert_eq!(counter(&again, "FilesIn", "received"), 4);
    assert_eq!(counter(&again, "FilesIn", "rejected"), 2, "{status:#}");
}

#[test]
fn a_whole_batch_file_is_written_as_one_entry_and_one_with_a_bad_message_is_kept() {
    let d = dirs();
    let whole = |item: String| {
        item.replacen(
            "[item.host]\n",
            "[item.host]\nBatchHandling = \"Whole\"\n",
            1,
        )
    };
    let production = head("FilesWhole", 1)
        + &whole(file_service("FilesIn", &d.input, "*.hl7", Some(&d.archive)))
        + &router("Router", "FileOut", &[])
        + &file_operation("FileOut", &d.out, "%f");
    let (hie, data) = common::start_hie(&d.root, &production);
    let mut batch =
        b"FHS|^~\\&|S|F|R|F|20260101||||F-FW\rBHS|^~\\&|S|F|R|F|20260101||||B-FW\r".to_vec();
    batch.extend_from_slice(&adt("FW-1", "P1"));
    batch.extend_from_slice(&adt("FW-2", "P2"));
    batch.extend_from_slice(b"BTS|2\rFTS|1\r");
    drop_file(&d.input, "whole.hl7", &batch);
    let status = wait_status(&hie, &data, Duration::from_secs(20), "written", |s| {
        counter(s, "FileOut", "completed") == 1 && names(&d.archive) == ["whole.hl7"]
    });
    assert_eq!(counter(&status, "FilesIn", "received"), 1, "one document");
    assert_eq!(names(&d.out), ["whole.hl7"]);
    assert!(
        std::fs::read(d.out.join("whole.hl7")).unwrap() == framed(&batch),
        "the batch written as one entry, byte-identical, with the framing"
    );

    // One bad message refuses the whole file: nothing stored, the file kept.
    let bad = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|BAD1|P|2.5||||||UNICODE UTF-8\r\
PID|1||P2||J\xC3\xA9r\xFFme\r";
    let mut refused = b"BHS|^~\\&|S|F|R|F|20260101||||B-FX\r".to_vec();
    refused.extend_from_slice(&adt("FX-1", "P1"));
    refused.extend_from_slice(bad);
    refused.extend_from_slice(b"BTS|2\r");
    drop_file(&d.input, "refused.hl7", &refused);
    let status = wait_status(&hie, &data, Duration::from_secs(20), "kept", |s| {
        counter(s, "FilesIn", "rejected") == 1 && names(&d.input) == ["refused.hl7.rejected"]
    });
    assert_eq!(
        counter(&status, "FilesIn", "received"),
        1,
        "nothing more stored"
    );
    assert_eq!(names(&d.out), ["whole.hl7"]);
    assert!(
        hie.log().contains("refused.hl7 message 2: rejected"),
        "{}",
        hie.log()
    );
}
