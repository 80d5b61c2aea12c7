//! Reading the CSV tables a config names (destinations, prefix trees): line numbers that
//! match the file, and plain messages.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Diag};

/// A CSV table file read into memory: `#` comments, trimmed cells, errors located by the
/// file's own line numbers.
pub(crate) struct CsvFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl CsvFile {
    /// Read `rel` (relative to `base`); a file that cannot be read is reported at `span` of
    /// the TOML key `what`, with the path looked for.
    pub(crate) fn open(d: &mut Diag<'_>, span: &Range<usize>, what: &str, rel: &str, base: &Path) -> Option<CsvFile> {
        let path = base.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => Some(CsvFile { path, bytes }),
            Err(why) => {
                d.span(span, format!("cannot read {what} \"{rel}\" (looked for {}): {why}", path.display()));
                None
            }
        }
    }

    /// A reader over the file.
    pub(crate) fn reader(&self) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).flexible(true).from_reader(&self.bytes[..])
    }

    /// The header row and its line; an unreadable header row is reported.
    pub(crate) fn headers(&self, d: &mut Diag<'_>, rdr: &mut csv::Reader<&[u8]>) -> Option<(csv::StringRecord, usize)> {
        match rdr.headers() {
            Ok(h) => Some((h.clone(), self.line_of(h.position()).max(1))),
            Err(e) => {
                let line = self.line_of(e.position()).max(1);
                d.push(self.err(line, None, format!("cannot read the header row: {}", csv_msg(&e))));
                None
            }
        }
    }

    /// The data rows, each with its row number (from 1) and file line, after the checks every
    /// table makes: the row reads, and it has exactly as many fields as the header row names.
    /// Rows that fail them are reported and skipped. Returns how many data rows there were.
    pub(crate) fn rows(
        &self,
        d: &mut Diag<'_>,
        rdr: &mut csv::Reader<&[u8]>,
        headers: &csv::StringRecord,
        mut each: impl FnMut(&mut Diag<'_>, usize, usize, &csv::StringRecord),
    ) -> usize {
        let names = headers.iter().collect::<Vec<_>>().join(", ");
        let mut rows = 0;
        for (i, rec) in rdr.records().enumerate() {
            let row = i + 1;
            rows = row;
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    d.push(self.err(self.line_of(e.position()), Some(row), csv_msg(&e)));
                    continue;
                }
            };
            let line = self.line_of(rec.position());
            if rec.len() != headers.len() {
                let n = rec.len();
                let fields = if n == 1 { "field" } else { "fields" };
                let msg = format!("this row has {n} {fields} but the header row names {} ({names})", headers.len());
                d.push(self.err(line, Some(row), msg));
                continue;
            }
            each(d, row, line, &rec);
        }
        rows
    }

    /// Check the header row's column names against `allowed`: each unknown name (with a
    /// did-you-mean) and each repeated one is reported at `line`. The names found, or `None`
    /// when any was reported (callers then check which columns they require).
    pub(crate) fn columns<'h>(
        &self,
        d: &mut Diag<'_>,
        headers: &'h csv::StringRecord,
        line: usize,
        allowed: &[&str],
    ) -> Option<std::collections::BTreeSet<&'h str>> {
        let list = allowed.join(", ");
        let mut ok = true;
        let mut found = std::collections::BTreeSet::new();
        for h in headers.iter() {
            if !allowed.contains(&h) {
                let msg = match crate::values::closest(h, allowed.iter().copied()) {
                    Some(c) => {
                        format!("unknown column \"{h}\" in the header row (did you mean \"{c}\"? columns: {list})")
                    }
                    None => format!("unknown column \"{h}\" in the header row (columns: {list})"),
                };
                d.push(self.err(line, None, msg));
                ok = false;
            } else if !found.insert(h) {
                d.push(self.err(line, None, format!("column \"{h}\" appears twice in the header row")));
                ok = false;
            }
        }
        ok.then_some(found)
    }

    /// The file line of a reader position (the reader's positions are where it started
    /// reading, before skipped comment lines).
    pub(crate) fn line_of(&self, p: Option<&csv::Position>) -> usize {
        p.map_or(0, |p| real_line(&self.bytes, p))
    }

    /// An error at `line` (and data `row`) of this file.
    pub(crate) fn err(&self, line: usize, row: Option<usize>, message: String) -> ConfigError {
        ConfigError { file: self.path.clone(), line, col: usize::from(line > 0), message, row }
    }
}

/// A csv error as one plain line.
pub(crate) fn csv_msg(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("this row has {len} fields but the header row names {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "this row is not valid UTF-8".to_string(),
        csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

/// The file line a record starts on. The csv reader's position is where it started reading
/// the record, before the comment and empty lines it skipped: skip them here too.
fn real_line(bytes: &[u8], p: &csv::Position) -> usize {
    let (mut at, mut line) = (p.byte() as usize, p.line() as usize);
    while at < bytes.len() {
        let rest = &bytes[at..];
        let skip = if rest[0] == b'#' {
            rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1)
        } else if rest.starts_with(b"\r\n") {
            2
        } else if rest[0] == b'\n' || rest[0] == b'\r' {
            1
        } else {
            break;
        };
        at += skip;
        line += 1;
    }
    line
}
