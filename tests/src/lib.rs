//! Shared helpers for ringsip's cross-crate tests: where the shared corpus lives and how to
//! read its `INDEX.tsv` files.

use std::path::PathBuf;

pub mod e2e;
pub mod ua;

/// The shared material (`../shared` from the project root), or `RINGSIP_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("RINGSIP_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")),
    }
}

/// The external SIP corpus (`../shared/corpus` from the project root), or the folder named by
/// `RINGSIP_CORPUS`. Panics with a clear message when it is missing: corpus tests never skip.
pub fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("RINGSIP_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => shared_dir().join("corpus"),
    };
    assert!(
        dir.join("rfc4475/INDEX.tsv").is_file(),
        "the shared SIP corpus is missing at {} (set RINGSIP_CORPUS to its folder)",
        dir.display()
    );
    dir
}

/// One row of an `INDEX.tsv`: the message name and its expected verdict.
#[derive(Debug, Clone)]
pub struct IndexRow {
    /// File name without `.sip`.
    pub name: String,
    /// `true` for `valid`, `false` for `invalid`.
    pub valid: bool,
    /// Path of the message file.
    pub path: PathBuf,
}

/// Read `<corpus>/<folder>/INDEX.tsv`; messages are in `<corpus>/<messages>/<name>.sip`.
pub fn read_index(folder: &str, messages: &str) -> Vec<IndexRow> {
    let dir = corpus_dir();
    let text = std::fs::read_to_string(dir.join(folder).join("INDEX.tsv")).expect("read INDEX.tsv");
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(name), Some(expected)) = (cols.next(), cols.next()) else { continue };
        let valid = match expected {
            "valid" => true,
            "invalid" => false,
            other => panic!("{folder}/INDEX.tsv: unknown verdict {other:?} for {name}"),
        };
        rows.push(IndexRow { name: name.to_string(), valid, path: dir.join(messages).join(format!("{name}.sip")) });
    }
    assert!(!rows.is_empty(), "{folder}/INDEX.tsv has no rows");
    rows
}
