//! `[[htable]]`: named runtime key/value tables (see `HtableDef`), with optional seed entries
//! from inline `entries` and/or a CSV `file`.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use crate::csvfile::CsvFile;
use crate::error::Diag;
use crate::values::{self, show_duration};
use crate::walk::{self, Table, Val};
use crate::{HtableDef, HtableSeed, HtableValue};

const KEYS: &[&str] = &["name", "autoexpire", "max_entries", "entries", "file"];
const ENTRY_KEYS: &[&str] = &["key", "value", "expires"];
const COLUMNS: &[&str] = &["key", "value", "expires"];
/// The columns a seed file must have (`expires` is optional).
const REQUIRED_COLUMNS: &[&str] = &["key", "value"];
/// The longest key, in bytes.
const MAX_KEY: usize = 255;
/// The largest `max_entries` (2^32).
const MAX_ENTRIES: i64 = 1 << 32;
/// The shortest expiry (`autoexpire`, `expires`).
const MIN_EXPIRY: Duration = Duration::from_secs(1);
/// The longest expiry: 365 days. Longer is "never": leave the key out.
const MAX_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The parsed `[[htable]]` section.
pub(crate) type Parsed = walk::Named<HtableDef>;

/// Parse the `htable` key of the top level (an array of tables, `[[htable]]`).
pub(crate) fn parse(d: &mut Diag<'_>, v: &Val<'_>, base: &Path) -> Parsed {
    walk::named_sections(d, v, "htable", "[[htable]]", |d, t, out, lines| parse_table(d, t, base, out, lines))
}

/// A table being filled: its seeds and where each key was first seen.
struct Seeds {
    label: String,
    seeds: Vec<HtableSeed>,
    seen: HashMap<String, String>,
    /// Seeds written (valid or not), inline and in the file.
    written: usize,
}

fn parse_table(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    base: &Path,
    out: &mut Parsed,
    lines: &mut HashMap<String, usize>,
) -> Option<HtableDef> {
    t.check_keys(d, KEYS);
    let errors_before = d.errors.len();

    let name = walk::entry_name(
        d,
        t,
        "htable",
        "[[htable]] needs a `name` (the name routes use), like name = \"ipban\"",
        lines,
    );
    match &name {
        Some(n) => {
            out.names.insert(n.clone());
        }
        None => out.names_complete = false,
    }
    let label = name.as_ref().map_or_else(|| "this table".to_string(), |n| format!("table \"{n}\""));

    let max_entries = match t.get("max_entries") {
        None => Some(None),
        Some(v) => walk::int_in(d, v, "max_entries", 1, MAX_ENTRIES).map(|n| Some((n as usize, v.span()))),
    };
    let autoexpire = match t.get("autoexpire") {
        None => Some(None),
        Some(v) => toml_expiry(d, v, "autoexpire", "leave autoexpire out for entries that never expire").map(Some),
    };

    let mut seeds = Seeds { label, seeds: Vec::new(), seen: HashMap::new(), written: 0 };
    if let Some(v) = t.get("entries")
        && let Some(items) = walk::array(d, v, "htable entries")
    {
        for item in items {
            seeds.written += 1;
            inline_seed(d, item, &mut seeds);
        }
    }
    if let Some(v) = t.get("file")
        && let Some(rel) = walk::string(d, v, "htable file")
    {
        csv_seeds(d, v.span(), rel, base, &mut seeds);
    }
    if let Some(Some((max, span))) = &max_entries
        && seeds.written > *max
    {
        let n = seeds.written;
        d.span(
            span,
            format!(
                "{} has {n} seed entries but max_entries = {max}: raise max_entries or remove entries",
                seeds.label
            ),
        );
    }

    if d.errors.len() != errors_before {
        return None;
    }
    Some(HtableDef {
        name: name?,
        max_entries: max_entries?.map(|(n, _)| n),
        autoexpire: autoexpire?,
        seeds: seeds.seeds,
    })
}

/// An expiry written as text: a duration of whole seconds, 1s to 365 days. `zero` says what
/// to do instead of writing 0.
fn expiry(s: &str, what: &str, zero: &str) -> Result<Duration, String> {
    let x = values::duration(s).map_err(|e| format!("{what}: {e}"))?;
    if x.is_zero() {
        return Err(format!("{what} \"{s}\" is zero: {zero}"));
    }
    if x < MIN_EXPIRY {
        return Err(format!("{what} \"{s}\" is too short (at least {})", show_duration(MIN_EXPIRY)));
    }
    if x.subsec_nanos() != 0 {
        return Err(format!("{what} \"{s}\" is not a whole number of seconds (expiry is counted in seconds)"));
    }
    if x > MAX_EXPIRY {
        return Err(format!("{what} \"{s}\" is too long (at most 365 days, \"8760h\"); {zero}"));
    }
    Ok(x)
}

/// An expiry in the TOML file (a string; a bare integer asks for the unit).
fn toml_expiry(d: &mut Diag<'_>, v: &Val<'_>, what: &str, zero: &str) -> Option<Duration> {
    if let DeValue::Integer(i) = v.get_ref() {
        d.span(&v.span(), format!("{what} = {i} needs a unit: write \"{i}s\" (units: s, m, h)"));
        return None;
    }
    let s = walk::string(d, v, what)?;
    match expiry(s, what, zero) {
        Ok(x) => Some(x),
        Err(e) => {
            d.span(&v.span(), e);
            None
        }
    }
}

/// A key: not empty, at most 255 bytes.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty: give the key to store, like \"192.0.2.66\"".to_string());
    }
    if key.len() > MAX_KEY {
        return Err(format!("key of {} bytes is too long (at most {MAX_KEY})", key.len()));
    }
    Ok(())
}

/// A text value: non-empty, one line.
fn check_text(s: &str) -> Result<(), String> {
    if s.trim().is_empty() || s.chars().any(char::is_control) {
        return Err(format!("the value \"{}\" must be non-empty text on one line", s.escape_debug()));
    }
    Ok(())
}

/// A CSV value: a whole number in plain decimal (`0`, `42`, `-7`: no `+`, no leading zeros)
/// is an integer, anything else text.
fn csv_value(s: &str) -> Result<HtableValue, String> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain_number =
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (!digits.starts_with('0') || s == "0");
    if plain_number {
        return s.parse::<i64>().map(HtableValue::Int).map_err(|_| format!("the value {s} {TOO_LARGE}"));
    }
    check_text(s).map(|()| HtableValue::Text(s.to_string()))
}

const TOO_LARGE: &str = "is too large for an integer (-9223372036854775808 to 9223372036854775807)";

/// Add a seed to the table, or report it as a duplicate. `Err` carries the message.
fn add(
    seeds: &mut Seeds,
    key: &str,
    value: HtableValue,
    expires: Option<Duration>,
    origin: String,
) -> Result<(), String> {
    if let Some(first) = seeds.seen.get(key) {
        return Err(format!("{} has key \"{key}\" twice: at {first} and at {origin}", seeds.label));
    }
    seeds.seen.insert(key.to_string(), origin.clone());
    seeds.seeds.push(HtableSeed { key: key.to_string(), value, expires, origin });
    Ok(())
}

/// The config file's name, for origins (`ipban.toml:12:5`).
fn file_name(d: &Diag<'_>) -> String {
    d.src.file.file_name().map_or_else(|| d.src.file.display().to_string(), |f| f.to_string_lossy().into_owned())
}

const ENTRY_EXPIRES_ZERO: &str = "leave expires out for the table's autoexpire";

fn inline_seed(d: &mut Diag<'_>, item: &Val<'_>, seeds: &mut Seeds) {
    let DeValue::Table(map) = item.get_ref() else {
        d.span(
            &item.span(),
            format!(
                "an htable entry must be a table like {{ key = \"192.0.2.66\", value = 1 }}, not {}",
                walk::describe(item.get_ref())
            ),
        );
        return;
    };
    let t = Table::new(map, item.span(), "an htable entry");
    t.check_keys(d, ENTRY_KEYS);
    let before = d.errors.len();
    let key = match t.get("key") {
        None => {
            d.span(&t.span, "an htable entry needs a `key`, like { key = \"192.0.2.66\", value = 1 }");
            None
        }
        Some(v) => walk::string(d, v, "htable key").and_then(|k| match check_key(k) {
            Ok(()) => Some(k),
            Err(e) => {
                d.span(&v.span(), e);
                None
            }
        }),
    };
    let value = match t.get("value") {
        None => {
            d.span(&t.span, "an htable entry needs a `value` (an integer or a string), like value = 1");
            None
        }
        Some(v) => inline_value(d, v),
    };
    let expires = match t.get("expires") {
        None => Some(None),
        Some(v) => toml_expiry(d, v, "expires", ENTRY_EXPIRES_ZERO).map(Some),
    };
    let (Some(key), Some(value), Some(expires)) = (key, value, expires) else {
        return;
    };
    if d.errors.len() != before {
        return;
    }
    let (line, col) = d.src.line_col(item.span().start);
    let origin = format!("{}:{line}:{col}", file_name(d));
    if let Err(msg) = add(seeds, key, value, expires, origin) {
        d.span(&item.span(), msg);
    }
}

fn inline_value(d: &mut Diag<'_>, v: &Val<'_>) -> Option<HtableValue> {
    match v.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(HtableValue::Int(n)),
            Err(_) => {
                d.span(&v.span(), format!("the value {i} {TOO_LARGE}"));
                None
            }
        },
        DeValue::String(s) => match check_text(s) {
            Ok(()) => Some(HtableValue::Text(s.to_string())),
            Err(e) => {
                d.span(&v.span(), e);
                None
            }
        },
        other => {
            d.span(
                &v.span(),
                format!("the value of an htable entry must be an integer or a string, not {}", walk::describe(other)),
            );
            None
        }
    }
}

/// Read a CSV file of `key,value[,expires]` rows.
fn csv_seeds(d: &mut Diag<'_>, span: Range<usize>, rel: &str, base: &Path, seeds: &mut Seeds) {
    let Some(f) = CsvFile::open(d, &span, "htable file", rel, base) else {
        return;
    };
    let mut rdr = f.reader();
    let Some((headers, header_line)) = f.headers(d, &mut rdr) else {
        return;
    };
    if headers.is_empty() {
        let msg = "the file is empty: it needs a header row naming the columns (key, value and optionally expires)";
        d.push(f.err(1, None, msg.to_string()));
        return;
    }
    let found = f.columns(d, &headers, header_line, COLUMNS);
    let mut header_ok = found.is_some();
    let found = found.unwrap_or_default();
    if header_ok && !REQUIRED_COLUMNS.iter().all(|c| found.contains(c)) {
        let found = headers.iter().collect::<Vec<_>>().join(",");
        let msg = format!("the header row needs the columns key and value (expires is optional); found \"{found}\"");
        d.push(f.err(header_line, None, msg));
        header_ok = false;
    }
    if !header_ok {
        return;
    }
    let at = |name: &str| headers.iter().position(|h| h == name);
    let (key_at, value_at, expires_at) = (at("key").unwrap_or(0), at("value").unwrap_or(1), at("expires"));
    let rows = f.rows(d, &mut rdr, &headers, |d, row, line, rec| {
        let key = &rec[key_at];
        let checked = check_key(key).and_then(|()| {
            let value = csv_value(&rec[value_at])?;
            let expires = match expires_at.map(|i| &rec[i]) {
                None | Some("") => None,
                Some(s) => Some(expiry(s, "expires", "leave the cell empty for the table's autoexpire")?),
            };
            Ok((value, expires))
        });
        let result = checked.and_then(|(value, expires)| add(seeds, key, value, expires, format!("{rel} row {row}")));
        if let Err(msg) = result {
            d.push(f.err(line, Some(row), msg));
        }
    });
    seeds.written += rows;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Parsed, usize) {
        let mut d = Diag::new(Path::new("t.toml"), text);
        let root = toml::de::DeTable::parse(text).unwrap();
        let p = parse(&mut d, root.get_ref().get("htable").unwrap(), Path::new(""));
        (p, d.errors.len())
    }

    #[test]
    fn names_of_tables_with_errors_are_known() {
        let (p, errors) = parsed("[[htable]]\nname = \"a\"\nmax_entries = 0\n[[htable]]\nname = \"b\"\n");
        assert_eq!(errors, 1);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.names, std::collections::BTreeSet::from(["a".to_string(), "b".to_string()]));
        assert!(p.names_complete);

        let (p, errors) = parsed("[[htable]]\nname = 5\n[[htable]]\nname = \"b\"\n");
        assert_eq!(errors, 1);
        assert_eq!(p.names, std::collections::BTreeSet::from(["b".to_string()]));
        assert!(!p.names_complete);

        let (p, _) = parsed("htable = 5\n");
        assert!(p.names.is_empty() && !p.names_complete);
    }

    #[test]
    fn csv_values() {
        assert_eq!(csv_value("42"), Ok(HtableValue::Int(42)));
        assert_eq!(csv_value("-7"), Ok(HtableValue::Int(-7)));
        assert_eq!(csv_value("0"), Ok(HtableValue::Int(0)));
        assert_eq!(csv_value("0049"), Ok(HtableValue::Text("0049".into())));
        assert_eq!(csv_value("+5"), Ok(HtableValue::Text("+5".into())));
        assert_eq!(csv_value("-0"), Ok(HtableValue::Text("-0".into())));
        assert_eq!(csv_value("1.5"), Ok(HtableValue::Text("1.5".into())));
        assert!(csv_value("99999999999999999999").unwrap_err().contains("too large"));
        assert!(csv_value("").is_err());
    }

    #[test]
    fn expiries() {
        assert_eq!(expiry("5m", "autoexpire", ""), Ok(Duration::from_secs(300)));
        assert_eq!(expiry("1000ms", "autoexpire", ""), Ok(Duration::from_secs(1)));
        assert_eq!(expiry("8760h", "autoexpire", ""), Ok(MAX_EXPIRY));
        assert!(expiry("0s", "autoexpire", "x").unwrap_err().ends_with("is zero: x"));
        assert!(expiry("500ms", "autoexpire", "").unwrap_err().contains("too short"));
        assert!(expiry("1500ms", "autoexpire", "").unwrap_err().contains("whole number of seconds"));
        assert!(expiry("8761h", "autoexpire", "").unwrap_err().contains("too long"));
    }
}
