//! Reading the CSV tables a config names (destinations, prefix trees): line numbers that
//! match the file, and plain messages.

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
pub(crate) fn real_line(bytes: &[u8], p: &csv::Position) -> usize {
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
