//! Helpers shared by the config tests: parse expecting success or errors, and find where a
//! marker sits in a config text (errors are checked at exact lines and columns).
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

use ringsip_config::{Config, ConfigError, Errors, parse};

/// Parse, or fail the test with the errors and the text.
pub fn ok(text: &str, origin: &Path) -> Config {
    parse(text, origin).unwrap_or_else(|e| panic!("{e}\n--- in:\n{text}"))
}

/// Parse expecting errors.
pub fn errors_in(text: &str, origin: &Path) -> Vec<ConfigError> {
    match parse(text, origin) {
        Ok(_) => panic!("expected errors, but this parsed:\n{text}"),
        Err(e) => e.0,
    }
}

/// [`errors_in`] for a text named `t.toml`.
pub fn errors(text: &str) -> Vec<ConfigError> {
    errors_in(text, Path::new("t.toml"))
}

/// 1-based line of the first line containing `marker`.
pub fn line_of(text: &str, marker: &str) -> usize {
    text.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("marker {marker:?} not in text")) + 1
}

/// Column (1-based) of `marker` on the first line containing `line_marker`.
pub fn col_on(text: &str, line_marker: &str, marker: &str) -> usize {
    let line = text.lines().find(|l| l.contains(line_marker)).unwrap();
    line[..line.find(marker).unwrap()].chars().count() + 1
}

/// Among `errs`, the one with exactly this message; it must be at `line:col` of t.toml.
#[track_caller]
pub fn expect_in(errs: &[ConfigError], line: usize, col: usize, message: &str) {
    let e = errs.iter().find(|e| e.message == message).unwrap_or_else(|| {
        panic!("no error with message {message:?}; got:\n{}", Errors(errs.to_vec()));
    });
    assert_eq!((e.file.as_path(), e.line, e.col, e.row), (Path::new("t.toml"), line, col, None), "{e}");
}

/// A scratch folder for CSV files, under cargo's per-test-target temp dir.
pub fn dir(suite: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(suite).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The errors in file `csv` as (line, row, message).
pub fn csv_errors(errs: &[ConfigError], csv: &Path) -> Vec<(usize, Option<usize>, String)> {
    errs.iter().filter(|e| e.file == csv).map(|e| (e.line, e.row, e.message.clone())).collect()
}

/// The only error of `text` is `message`, at the first `marker` on the first line holding
/// `line_marker`.
#[track_caller]
pub fn expect_one(text: &str, line_marker: &str, marker: &str, message: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{}", ringsip_config::Errors(errs.clone()));
    expect_in(&errs, line_of(text, line_marker), col_on(text, line_marker, marker), message);
}
