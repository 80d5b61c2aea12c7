//! Errors as data: every problem found in a config, with where it is.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config, located in a file.
///
/// `line` and `col` are 1-based (`col` counts characters, not bytes). A problem that has
/// no position (the file cannot be read at all) has `line == 0` and `col == 0`. Problems in
/// a CSV table carry the data row in `row` (1-based, the header row not counted) and the
/// file line of that row in `line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (as given, or the CSV path as resolved).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no position.
    pub line: usize,
    /// 1-based column in characters; 0 when the problem has no position.
    pub col: usize,
    /// A plain, one-line explanation.
    pub message: String,
    /// For CSV tables: the 1-based data row (the header row is not counted).
    pub row: Option<usize>,
}

impl fmt::Display for ConfigError {
    /// `file:line:col: message`, or `file:line:col: row N: message` for CSV rows, or
    /// `file: message` when there is no position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if let Some(row) = self.row {
            write!(f, ": row {row}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All the problems found in a config. Never empty when returned by [`crate::load`] or
/// [`crate::parse`]. `Display` writes one line per problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Errors(pub Vec<ConfigError>);

impl Errors {
    /// The number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never true for a returned `Errors`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl std::error::Error for Errors {}

/// A source text with its line starts, to turn byte offsets into line:col.
pub(crate) struct Source<'s> {
    pub(crate) file: PathBuf,
    pub(crate) text: &'s str,
    line_starts: Vec<usize>,
}

impl<'s> Source<'s> {
    pub(crate) fn new(file: &Path, text: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { file: file.to_path_buf(), text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line + 1, col)
    }
}

/// Collects errors located in one TOML source.
pub(crate) struct Diag<'s> {
    pub(crate) src: Source<'s>,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'s> Diag<'s> {
    pub(crate) fn new(file: &Path, text: &'s str) -> Self {
        Diag { src: Source::new(file, text), errors: Vec::new() }
    }

    /// Report a problem at a byte offset of the TOML text.
    pub(crate) fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, col) = self.src.line_col(offset);
        self.errors.push(ConfigError {
            file: self.src.file.clone(),
            line,
            col,
            message: one_line(message.into()),
            row: None,
        });
    }

    /// Report a problem at the start of a span.
    pub(crate) fn span(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.at(span.start, message);
    }

    /// Report a problem found in another file (a CSV table).
    pub(crate) fn push(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    /// The byte offset in the TOML text of byte `offset` of a string value's decoded
    /// content. `span` is the span of the string value (quotes included). When the decoded
    /// content is not a verbatim copy of the text between the quotes (escapes, a trimmed
    /// first newline that cannot be accounted for), the string's start is returned.
    pub(crate) fn in_string(&self, span: &Range<usize>, decoded: &str, offset: usize) -> usize {
        let Some(raw) = self.src.text.get(span.clone()) else {
            return span.start;
        };
        let (open, close) = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            (3, 3)
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            (1, 1)
        } else {
            return span.start;
        };
        if raw.len() < open + close {
            return span.start;
        }
        let mut body_start = open;
        let body_end = raw.len() - close;
        if open == 3 {
            // A newline right after the opening delimiter is not part of the value.
            if raw[body_start..].starts_with("\r\n") {
                body_start += 2;
            } else if raw[body_start..].starts_with('\n') {
                body_start += 1;
            }
        }
        if body_start <= body_end && &raw[body_start..body_end] == decoded && offset <= decoded.len() {
            span.start + body_start + offset
        } else {
            span.start
        }
    }
}

/// Messages are one line each: `Errors` prints one line per problem.
fn one_line(s: String) -> String {
    if s.contains(['\n', '\r']) { s.split_whitespace().collect::<Vec<_>>().join(" ") } else { s }
}
