//! The `sipcheck` command line is a fixed interface: one line per file, in order,
//! `<file>\tvalid`, `<file>\tinvalid\t<reason>` or `<file>\terror\t<why>`; exit 0 when every
//! file was judged, 2 on a usage error; `-` reads stdin.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use ringsip_tests::{corpus_dir, read_index};

fn sipcheck(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipcheck"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipcheck");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn judges_the_whole_rfc4475_corpus_in_order() {
    let rows = read_index("rfc4475", "rfc4475");
    let paths: Vec<String> = rows.iter().map(|r| r.path.display().to_string()).collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let out = sipcheck(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols[0], row.path.display().to_string());
        if row.valid {
            assert_eq!(cols[1..], ["valid"], "{line}");
        } else {
            assert_eq!(cols.len(), 3, "{line}");
            assert_eq!(cols[1], "invalid", "{line}");
            assert!(!cols[2].is_empty());
        }
    }
    // a precise reason, e.g. for badinv01
    let bad = lines.iter().find(|l| l.contains("badinv01")).unwrap();
    assert!(bad.ends_with("\tinvalid\tVia: empty parameter (byte 217)"), "{bad}");
}

#[test]
fn reads_stdin_and_reports_unreadable_files() {
    let msg = std::fs::read(corpus_dir().join("rfc4475/lwsdisp.sip")).unwrap();
    let out = sipcheck(&["-"], Some(&msg));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "-\tvalid\n");

    let out = sipcheck(&["-"], Some(b"INVITE sip:x SIP/2.0\r\n"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "-\tinvalid\tmessage: header section has no terminating empty line (byte 22)\n"
    );

    let good = corpus_dir().join("rfc4475/lwsdisp.sip").display().to_string();
    let out = sipcheck(&["/nonexistent/x.sip", &good], None);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/nonexistent/x.sip\terror\t"), "{text}");
    assert!(lines[0].contains("No such file"), "{text}");
    assert_eq!(lines[1], format!("{good}\tvalid"));
}

#[test]
fn usage_errors_exit_2() {
    let out = sipcheck(&[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FILE"));
    let out = sipcheck(&["--no-such-flag", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    let out = sipcheck(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.starts_with(b"Judge SIP messages"));
}
