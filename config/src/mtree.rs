//! `[[mtree]]`: named prefix trees (see `MtreeTable`), from inline `entries` and/or a CSV `file`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;

use toml::de::DeValue;

use crate::csvfile::CsvFile;
use crate::error::Diag;
use crate::routes::SetIds;
use crate::values::closest;
use crate::walk::{self, Table, Val};
use crate::{MtreeEntry, MtreeKind, MtreeTable, MtreeValue};

const KEYS: &[&str] = &["name", "type", "alphabet", "file", "entries"];
const ENTRY_KEYS: &[&str] = &["prefix", "value"];
const COLUMNS: &[&str] = &["prefix", "value"];
const TYPES: &[&str] = &["sets", "text", "int"];
/// The longest prefix (the runtime tree's `MAX_PREFIX`).
const MAX_PREFIX: usize = 64;
/// The most characters an alphabet may have.
const MAX_ALPHABET: usize = 32;
const DEFAULT_ALPHABET: &str = "0123456789";

/// What the routes need to know about the trees, even when some have errors.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// The trees that were read without errors, in file order.
    pub(crate) tables: Vec<MtreeTable>,
    /// Every tree name that was read (with its kind when that was read too), so routes can
    /// report unknown names and wrong kinds.
    pub(crate) names: BTreeMap<String, Option<MtreeKind>>,
    /// False when some tree's name could not be read (then unknown names are not reported).
    pub(crate) names_complete: bool,
}

/// Parse the `mtree` key of the top level (an array of tables, `[[mtree]]`).
pub(crate) fn parse(d: &mut Diag<'_>, v: &Val<'_>, base: &Path, sets: Option<&SetIds<'_>>) -> Parsed {
    let mut out = Parsed { names_complete: true, ..Parsed::default() };
    match v.get_ref() {
        DeValue::Array(a) if a.iter().all(|t| matches!(t.get_ref(), DeValue::Table(_))) => {}
        _ => out.names_complete = false,
    }
    let mut lines: HashMap<String, usize> = HashMap::new();
    for t in walk::tables(d, v, "mtree", "[[mtree]]") {
        if let Some(table) = parse_tree(d, &t, base, sets, &mut out, &mut lines) {
            out.tables.push(table);
        }
    }
    out
}

/// A tree being filled: what checks its entries and where they were first seen.
struct Tree<'a> {
    label: String,
    kind: Option<MtreeKind>,
    /// `None` when the alphabet was bad (then prefixes are not checked against it).
    alphabet: Option<String>,
    sets: Option<&'a SetIds<'a>>,
    entries: Vec<MtreeEntry>,
    seen: HashMap<String, String>,
    /// Entries written (valid or not), inline and in the file.
    written: usize,
}

fn parse_tree(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    base: &Path,
    sets: Option<&SetIds<'_>>,
    out: &mut Parsed,
    lines: &mut HashMap<String, usize>,
) -> Option<MtreeTable> {
    t.check_keys(d, KEYS);
    let errors_before = d.errors.len();

    let name = walk::entry_name(
        d,
        t,
        "mtree",
        "[[mtree]] needs a `name` (the name routes look it up by), like name = \"routes\"",
        lines,
    );
    if name.is_none() {
        out.names_complete = false;
    }
    let label = name.as_ref().map_or_else(|| "this tree".to_string(), |n| format!("tree \"{n}\""));

    let kind = match t.get("type") {
        None => {
            d.span(&t.span, format!("{label} needs a `type`: \"sets\" (dispatcher set ids), \"text\" or \"int\""));
            None
        }
        Some(v) => walk::string(d, v, "mtree type").and_then(|s| match s {
            "sets" => Some(MtreeKind::Sets),
            "text" => Some(MtreeKind::Text),
            "int" => Some(MtreeKind::Int),
            _ => {
                let msg = match closest(s, TYPES.iter().copied()) {
                    Some(c) => format!("unknown mtree type \"{s}\" (did you mean \"{c}\"? types: sets, text, int)"),
                    None => format!("unknown mtree type \"{s}\" (types: sets, text, int)"),
                };
                d.span(&v.span(), msg);
                None
            }
        }),
    };
    if let Some(n) = &name {
        let known = out.names.entry(n.clone()).or_insert(kind);
        if known.is_none() {
            *known = kind;
        }
    }

    let alphabet = match t.get("alphabet") {
        None => Some(DEFAULT_ALPHABET.to_string()),
        Some(v) => walk::string(d, v, "alphabet").and_then(|s| match check_alphabet(s) {
            Ok(()) => Some(s.to_string()),
            Err((at, msg)) => {
                report_in(d, v, s, at, msg);
                None
            }
        }),
    };

    let mut tree = Tree { label, kind, alphabet, sets, entries: Vec::new(), seen: HashMap::new(), written: 0 };
    let mut any_source = false;
    if let Some(v) = t.get("entries") {
        any_source = true;
        if let Some(items) = walk::array(d, v, "mtree entries") {
            for item in items {
                tree.written += 1;
                inline_entry(d, item, &mut tree);
            }
        }
    }
    let mut file_ok = true;
    if let Some(v) = t.get("file") {
        any_source = true;
        match walk::string(d, v, "mtree file") {
            Some(rel) => file_ok = csv_entries(d, v.span(), rel, base, &mut tree),
            None => file_ok = false,
        }
    }
    if !any_source {
        d.span(
            &t.span,
            format!(
                "{} has no entries: add entries = [{{ prefix = \"49\", value = ... }}] or file = \"prefixes.csv\"",
                tree.label
            ),
        );
    } else if tree.written == 0 && file_ok {
        let at = t.get("entries").or(t.get("file")).map_or(t.span.clone(), |v| v.span());
        d.span(&at, format!("{} has no entries: a tree that matches nothing is a mistake", tree.label));
    }

    if d.errors.len() != errors_before {
        return None;
    }
    Some(MtreeTable { name: name?, alphabet: tree.alphabet?, kind: kind?, entries: tree.entries })
}

/// An alphabet: 1 to 32 distinct printable ASCII characters, no space. On error, the byte
/// offset in `s` to point at (`None`: the whole value) and the message.
fn check_alphabet(s: &str) -> Result<(), (Option<usize>, String)> {
    if s.is_empty() {
        return Err((None, "alphabet is empty: give the characters prefixes are made of, like \"0123456789\"".into()));
    }
    let mut first: HashMap<char, usize> = HashMap::new();
    for (pos, (at, c)) in s.char_indices().enumerate() {
        if !c.is_ascii_graphic() {
            return Err((
                Some(at),
                format!("alphabet: {c:?} (character {}) is not allowed: printable ASCII only, no space", pos + 1),
            ));
        }
        if let Some(p) = first.get(&c) {
            return Err((Some(at), format!("alphabet repeats {c:?} (characters {p} and {})", pos + 1)));
        }
        first.insert(c, pos + 1);
    }
    if s.len() > MAX_ALPHABET {
        return Err((None, format!("alphabet has {} characters (at most {MAX_ALPHABET})", s.len())));
    }
    Ok(())
}

/// A prefix: made of the alphabet, at most 64 characters. On error, the byte offset in
/// `prefix` to point at (`None`: the whole prefix) and the message.
fn check_prefix(prefix: &str, alphabet: &str) -> Result<(), (Option<usize>, String)> {
    for (pos, (at, c)) in prefix.char_indices().enumerate() {
        if !alphabet.contains(c) {
            return Err((
                Some(at),
                format!("prefix \"{prefix}\": {c:?} (character {}) is not in the alphabet \"{alphabet}\"", pos + 1),
            ));
        }
    }
    let len = prefix.chars().count();
    if len > MAX_PREFIX {
        return Err((None, format!("prefix of {len} characters is too long (at most {MAX_PREFIX})")));
    }
    Ok(())
}

/// A `sets` value written as text: set ids separated by `;`. On error, the byte offset in
/// `s` to point at (`None`: the whole value) and the message.
fn parse_sets(s: &str, sets: Option<&SetIds<'_>>) -> Result<MtreeValue, (Option<usize>, String)> {
    if s.trim().is_empty() {
        return Err((None, "the value is empty: give at least one set id, like \"1\" or \"2;1\"".to_string()));
    }
    let mut ids: Vec<(u32, Option<u32>)> = Vec::new();
    let mut start = 0;
    for piece in s.split(';') {
        let at = Some(start + (piece.len() - piece.trim_start().len()));
        start += piece.len() + 1;
        let p = piece.trim();
        if p.is_empty() {
            return Err((at, format!("\"{s}\": an empty set id (set ids are separated by ';', like \"2;1\")")));
        }
        let (id_text, weight) = match p.split_once(':') {
            Some((i, w)) => {
                let w = w.trim();
                match w.parse::<u32>() {
                    Ok(n) if (1..=MAX_WEIGHT).contains(&n) => (i.trim(), Some(n)),
                    _ => {
                        return Err((
                            at,
                            format!("\"{s}\": weight \"{w}\" of \"{p}\" must be a whole number 1-{MAX_WEIGHT}"),
                        ));
                    }
                }
            }
            None => (p, None),
        };
        let Ok(id) = id_text.parse::<u32>() else {
            return Err((at, format!("\"{s}\": \"{id_text}\" is not a set id (a whole number 0-4294967295)")));
        };
        if ids.iter().any(|(x, _)| *x == id) {
            return Err((at, format!("\"{s}\": set {id} is listed twice")));
        }
        if let Some((_, first)) = ids.first() {
            if first.is_some() != weight.is_some() {
                return Err((
                    at,
                    format!(
                        "\"{s}\": give every set a weight (\"1:70;2:30\") or none (\"1;2\", failover order), not some"
                    ),
                ));
            }
        }
        check_set(id, sets).map_err(|e| (at, format!("set {id} in \"{s}\": {e}")))?;
        ids.push((id, weight));
    }
    Ok(if ids[0].1.is_some() {
        MtreeValue::WeightedSets(ids.into_iter().map(|(i, w)| (i, w.unwrap_or(1))).collect())
    } else {
        MtreeValue::Sets(ids.into_iter().map(|(i, _)| i).collect())
    })
}

/// Largest weight of a set in a weighted sets value.
const MAX_WEIGHT: u32 = 1_000_000;

/// Whether a set id exists (when every set id is known).
fn check_set(id: u32, sets: Option<&SetIds<'_>>) -> Result<(), String> {
    match sets {
        Some(s) if s.complete && !s.ids.contains(&id) => {
            let known = if s.ids.is_empty() {
                "no [[dispatcher.set]] is defined".to_string()
            } else {
                format!("sets: {}", s.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
            };
            Err(format!("there is no dispatcher set with id {id} ({known})"))
        }
        _ => Ok(()),
    }
}

/// A text value: non-empty, one line.
fn check_text(s: &str) -> Result<(), String> {
    if s.trim().is_empty() || s.chars().any(char::is_control) {
        return Err(format!("the value \"{}\" must be non-empty text on one line", s.escape_debug()));
    }
    Ok(())
}

/// Add an entry to the tree, or report it as a duplicate. `Err` carries the message.
fn add(tree: &mut Tree<'_>, prefix: &str, value: MtreeValue, origin: String) -> Result<(), String> {
    if let Some(first) = tree.seen.get(prefix) {
        return Err(format!("{} has prefix \"{prefix}\" twice: at {first} and at {origin}", tree.label));
    }
    tree.seen.insert(prefix.to_string(), origin.clone());
    tree.entries.push(MtreeEntry { prefix: prefix.to_string(), value, origin });
    Ok(())
}

/// Report a problem in a string value: at byte `at` of its content, or at the value.
fn report_in(d: &mut Diag<'_>, v: &Val<'_>, s: &str, at: Option<usize>, msg: String) {
    let at = at.map_or(v.span().start, |at| d.in_string(&v.span(), s, at));
    d.at(at, msg);
}

/// The config file's name, for origins (`lcr.toml:12:5`).
fn file_name(d: &Diag<'_>) -> String {
    d.src.file.file_name().map_or_else(|| d.src.file.display().to_string(), |f| f.to_string_lossy().into_owned())
}

fn inline_entry(d: &mut Diag<'_>, item: &Val<'_>, tree: &mut Tree<'_>) {
    let DeValue::Table(map) = item.get_ref() else {
        d.span(
            &item.span(),
            format!(
                "an mtree entry must be a table like {{ prefix = \"49\", value = ... }}, not {}",
                walk::describe(item.get_ref())
            ),
        );
        return;
    };
    let t = Table::new(map, item.span(), "an mtree entry");
    t.check_keys(d, ENTRY_KEYS);
    let before = d.errors.len();
    let prefix = match t.get("prefix") {
        None => {
            d.span(&t.span, "an mtree entry needs a `prefix` (\"\" matches every key), like { prefix = \"49\", ... }");
            None
        }
        Some(v) => walk::string(d, v, "prefix").and_then(|p| {
            if let Some(alphabet) = &tree.alphabet
                && let Err((at, msg)) = check_prefix(p, alphabet)
            {
                report_in(d, v, p, at, msg);
                return None;
            }
            Some(p)
        }),
    };
    let value = match t.get("value") {
        None => {
            d.span(&t.span, format!("an mtree entry needs a `value`, like {}", value_example(tree.kind)));
            None
        }
        Some(v) => tree.kind.and_then(|kind| inline_value(d, v, kind, tree.sets)),
    };
    let (Some(prefix), Some(value)) = (prefix, value) else {
        return;
    };
    if d.errors.len() != before {
        return;
    }
    let (line, col) = d.src.line_col(item.span().start);
    let origin = format!("{}:{line}:{col}", file_name(d));
    if let Err(msg) = add(tree, prefix, value, origin) {
        d.span(&item.span(), msg);
    }
}

fn value_example(kind: Option<MtreeKind>) -> &'static str {
    match kind {
        Some(MtreeKind::Sets) | None => {
            "value = \"2;1\" (set ids in failover order) or \"1:70;2:30\" (set ids with weights)"
        }
        Some(MtreeKind::Text) => "value = \"carrier-a\"",
        Some(MtreeKind::Int) => "value = 10",
    }
}

fn inline_value(d: &mut Diag<'_>, v: &Val<'_>, kind: MtreeKind, sets: Option<&SetIds<'_>>) -> Option<MtreeValue> {
    match (kind, v.get_ref()) {
        (MtreeKind::Sets, DeValue::Integer(_)) => {
            let id = walk::int_in(d, v, "set id", 0, i64::from(u32::MAX))? as u32;
            match check_set(id, sets) {
                Ok(()) => Some(MtreeValue::Sets(vec![id])),
                Err(e) => {
                    d.span(&v.span(), format!("set {id}: {e}"));
                    None
                }
            }
        }
        (MtreeKind::Sets, DeValue::String(s)) => match parse_sets(s, sets) {
            Ok(v) => Some(v),
            Err((at, msg)) => {
                report_in(d, v, s, at, msg);
                None
            }
        },
        (MtreeKind::Sets, other) => {
            d.span(
                &v.span(),
                format!(
                    "the value of a sets tree must be set ids like \"2;1\" or one id like 1, not {}",
                    walk::describe(other)
                ),
            );
            None
        }
        (MtreeKind::Text, _) => {
            let s = walk::string(d, v, "the value of a text tree")?;
            match check_text(s) {
                Ok(()) => Some(MtreeValue::Text(s.to_string())),
                Err(e) => {
                    d.span(&v.span(), e);
                    None
                }
            }
        }
        (MtreeKind::Int, _) => walk::integer(d, v, "the value of an int tree").map(MtreeValue::Int),
    }
}

/// A CSV value, as text.
fn csv_value(s: &str, kind: MtreeKind, sets: Option<&SetIds<'_>>) -> Result<MtreeValue, String> {
    match kind {
        MtreeKind::Sets => parse_sets(s, sets).map_err(|(_, e)| e),
        MtreeKind::Text => check_text(s).map(|()| MtreeValue::Text(s.to_string())),
        MtreeKind::Int => match s.parse::<i64>() {
            Ok(n) => Ok(MtreeValue::Int(n)),
            Err(_) if s.is_empty() => Err("the value is empty: an int tree needs a whole number".to_string()),
            Err(_) => Err(format!("the value \"{s}\" is not a whole number")),
        },
    }
}

/// Read a CSV file of `prefix,value` rows. Returns false when the file could not be used at all.
fn csv_entries(d: &mut Diag<'_>, span: Range<usize>, rel: &str, base: &Path, tree: &mut Tree<'_>) -> bool {
    let Some(f) = CsvFile::open(d, &span, "mtree file", rel, base) else {
        return false;
    };
    let mut rdr = f.reader();
    let Some((headers, header_line)) = f.headers(d, &mut rdr) else {
        return false;
    };
    let list = COLUMNS.join(", ");
    if headers.is_empty() {
        d.push(f.err(1, None, format!("the file is empty: it needs a header row naming the columns ({list})")));
        return false;
    }
    let found = f.columns(d, &headers, header_line, COLUMNS);
    let mut header_ok = found.is_some();
    let found = found.unwrap_or_default();
    if header_ok && found.len() != COLUMNS.len() {
        let found = headers.iter().collect::<Vec<_>>().join(",");
        d.push(f.err(header_line, None, format!("the header row needs the columns {list}; found \"{found}\"")));
        header_ok = false;
    }
    if !header_ok {
        return false;
    }
    let prefix_at = headers.iter().position(|h| h == "prefix").unwrap_or(0);
    let value_at = headers.iter().position(|h| h == "value").unwrap_or(1);
    let rows = f.rows(d, &mut rdr, &headers, |d, row, line, rec| {
        let prefix = &rec[prefix_at];
        if let Some(alphabet) = &tree.alphabet
            && let Err((_, msg)) = check_prefix(prefix, alphabet)
        {
            d.push(f.err(line, Some(row), msg));
            return;
        }
        let Some(kind) = tree.kind else {
            return;
        };
        let value = match csv_value(&rec[value_at], kind, tree.sets) {
            Ok(v) => v,
            Err(msg) => {
                d.push(f.err(line, Some(row), msg));
                return;
            }
        };
        if let Err(msg) = add(tree, prefix, value, format!("{rel} row {row}")) {
            d.push(f.err(line, Some(row), msg));
        }
    });
    tree.written += rows;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_values() {
        assert_eq!(parse_sets(" 2 ; 1", None), Ok(MtreeValue::Sets(vec![2, 1])));
        assert_eq!(parse_sets("2:3 ; 1:1", None), Ok(MtreeValue::WeightedSets(vec![(2, 3), (1, 1)])));
        assert_eq!(parse_sets("1:3;2", None).unwrap_err().0, Some(4));
        assert_eq!(parse_sets("1;;2", None).unwrap_err().0, Some(2));
        assert_eq!(parse_sets("1; x", None).unwrap_err().0, Some(3));
        let ids = std::collections::BTreeSet::from([1, 2]);
        let s = SetIds { ids: &ids, complete: true };
        let e = parse_sets("2;9", Some(&s)).unwrap_err();
        assert_eq!(e, (Some(2), "set 9 in \"2;9\": there is no dispatcher set with id 9 (sets: 1, 2)".to_string()));
    }
}
