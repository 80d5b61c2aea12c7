//! Walking the spanned TOML tree: key checks and typed reads that report every problem
//! instead of stopping at the first (serde's derive stops at the first per struct).

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::Diag;
use crate::values::closest;

/// A TOML value with its span.
pub(crate) type Val<'i> = Spanned<DeValue<'i>>;

/// A table being read: its entries, its span and how to name it in messages.
pub(crate) struct Table<'a, 'i> {
    pub(crate) map: &'a DeTable<'i>,
    pub(crate) span: Range<usize>,
    pub(crate) what: String,
}

impl<'a, 'i> Table<'a, 'i> {
    pub(crate) fn new(map: &'a DeTable<'i>, span: Range<usize>, what: impl Into<String>) -> Self {
        Table { map, span, what: what.into() }
    }

    /// Report every key not in `allowed` (as `deny_unknown_fields` would, but all of them),
    /// with a suggestion when one is close and the list of allowed keys.
    pub(crate) fn check_keys(&self, d: &mut Diag<'_>, allowed: &[&str]) {
        for (k, _) in self.map.iter() {
            let key: &str = k.get_ref();
            if allowed.contains(&key) {
                continue;
            }
            let list = allowed.join(", ");
            let msg = match closest(key, allowed.iter().copied()) {
                Some(s) => format!("unknown key \"{key}\" in {} (did you mean \"{s}\"? allowed: {list})", self.what),
                None => format!("unknown key \"{key}\" in {} (allowed: {list})", self.what),
            };
            d.span(&k.span(), msg);
        }
    }

    /// The value of a key.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Val<'i>> {
        self.map.get(key)
    }

    /// The span of a key (or of the table when absent).
    pub(crate) fn key_span(&self, key: &str) -> Range<usize> {
        self.map.get_key_value(key).map(|(k, _)| k.span()).unwrap_or_else(|| self.span.clone())
    }
}

/// How a value is named in "must be a string, not ..." messages.
pub(crate) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(f) => format!("the float {f}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(t) => format!("the date-time {t}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

fn wrong(d: &mut Diag<'_>, v: &Val<'_>, what: &str, expected: &str) {
    d.span(&v.span(), format!("{what} must be {expected}, not {}", describe(v.get_ref())));
}

/// A string value.
pub(crate) fn string<'a>(d: &mut Diag<'_>, v: &'a Val<'_>, what: &str) -> Option<&'a str> {
    match v.get_ref() {
        DeValue::String(s) => Some(s),
        _ => {
            wrong(d, v, what, "a string");
            None
        }
    }
}

/// A boolean value.
pub(crate) fn boolean(d: &mut Diag<'_>, v: &Val<'_>, what: &str) -> Option<bool> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            wrong(d, v, what, "true or false");
            None
        }
    }
}

/// An integer value (in i64).
pub(crate) fn integer(d: &mut Diag<'_>, v: &Val<'_>, what: &str) -> Option<i64> {
    match v.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(n),
            Err(_) => {
                d.span(&v.span(), format!("{what}: {i} is too large"));
                None
            }
        },
        _ => {
            wrong(d, v, what, "an integer");
            None
        }
    }
}

/// An integer in `lo..=hi`.
pub(crate) fn int_in(d: &mut Diag<'_>, v: &Val<'_>, what: &str, lo: i64, hi: i64) -> Option<i64> {
    let n = integer(d, v, what)?;
    if n < lo || n > hi {
        let range = if hi == i64::MAX { format!("at least {lo}") } else { format!("{lo} to {hi}") };
        d.span(&v.span(), format!("{what} = {n} is out of range ({range})"));
        return None;
    }
    Some(n)
}

/// An array value.
pub(crate) fn array<'a, 'i>(d: &mut Diag<'_>, v: &'a Val<'i>, what: &str) -> Option<&'a [Val<'i>]> {
    match v.get_ref() {
        DeValue::Array(a) => Some(a.as_ref()),
        _ => {
            wrong(d, v, what, "an array");
            None
        }
    }
}

/// A table value.
pub(crate) fn table<'a, 'i>(d: &mut Diag<'_>, v: &'a Val<'i>, what: &str) -> Option<Table<'a, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(Table::new(t, v.span(), what)),
        _ => {
            wrong(d, v, what, "a table");
            None
        }
    }
}

/// An array of tables (`[[name]]`), each with its index.
pub(crate) fn tables<'a, 'i>(d: &mut Diag<'_>, v: &'a Val<'i>, what: &str, header: &str) -> Vec<Table<'a, 'i>> {
    let DeValue::Array(a) = v.get_ref() else {
        d.span(&v.span(), format!("{what} must be an array of tables: write each one under {header}"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in a.iter() {
        if let Some(t) = table(d, item, &format!("each entry of {what}")) {
            out.push(Table::new(t.map, t.span, header));
        }
    }
    out
}

/// Whether `s` is a table or tree name: a letter, then letters, digits, `_` and `-`.
pub(crate) fn is_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `name` of one entry of an array of tables (`[[mtree]]`, `[[htable]]`): required (else
/// `missing` is reported), a name per [`is_name`], and unique among the entries (`lines`
/// remembers the line each name was first used on). `what` starts the messages (`"mtree"`).
/// `None` when the name could not be read; a name with errors is still returned, so that
/// routes can tell "unknown" from "broken".
pub(crate) fn entry_name(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    what: &str,
    missing: &str,
    lines: &mut std::collections::HashMap<String, usize>,
) -> Option<String> {
    let (name, span) = match t.get("name") {
        None => {
            d.span(&t.span, missing);
            return None;
        }
        Some(v) => string(d, v, &format!("{what} name")).map(|s| (s.to_string(), v.span()))?,
    };
    if !is_name(&name) {
        d.span(
            &span,
            format!("{what} name \"{name}\" must start with a letter and have only letters, digits, _ and -"),
        );
    }
    let (line, _) = d.src.line_col(span.start);
    if let Some(first) = lines.get(&name) {
        d.span(&span, format!("duplicate {what} name \"{name}\" (already used at line {first})"));
    } else {
        lines.insert(name.clone(), line);
    }
    Some(name)
}

/// The entries of an array-of-tables section whose entries routes refer to by name
/// (`[[htable]]`, `[[acl]]`): the entries read without errors, and every name read (even of an
/// entry with other errors) so that routes can report unknown names.
#[derive(Debug)]
pub(crate) struct Named<T> {
    /// Entries read without errors, in file order.
    pub(crate) items: Vec<T>,
    /// Every name that was read.
    pub(crate) names: std::collections::BTreeSet<String>,
    /// False when some entry's name could not be read (then unknown names are not reported).
    pub(crate) names_complete: bool,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named { items: Vec::new(), names: std::collections::BTreeSet::new(), names_complete: true }
    }
}

/// Parse the array of tables under top-level `key` (shown as `label`), one entry at a time
/// with `one` (which gets the names seen so far, for duplicate checks).
pub(crate) fn named_sections<T>(
    d: &mut Diag<'_>,
    v: &Val<'_>,
    key: &str,
    label: &str,
    mut one: impl FnMut(
        &mut Diag<'_>,
        &Table<'_, '_>,
        &mut Named<T>,
        &mut std::collections::HashMap<String, usize>,
    ) -> Option<T>,
) -> Named<T> {
    let mut out = Named::default();
    match v.get_ref() {
        DeValue::Array(a) if a.iter().all(|t| matches!(t.get_ref(), DeValue::Table(_))) => {}
        _ => out.names_complete = false,
    }
    let mut lines = std::collections::HashMap::new();
    for t in tables(d, v, key, label) {
        if let Some(item) = one(d, &t, &mut out, &mut lines) {
            out.items.push(item);
        }
    }
    out
}

/// Duration key `key` of section `section`: `None` when absent; when present but unreadable
/// (a bare number asks for a unit, like `example`), the problem is reported, `ok` is cleared
/// and `None` returned. Otherwise the duration (read by `read`), its span and the text.
pub(crate) fn duration_key<'t>(
    d: &mut Diag<'_>,
    t: &Table<'t, '_>,
    section: &str,
    key: &str,
    read: fn(&str) -> Result<std::time::Duration, String>,
    example: &str,
    ok: &mut bool,
) -> Option<(std::time::Duration, std::ops::Range<usize>, &'t str)> {
    let v = t.get(key)?;
    let what = format!("{section}.{key}");
    let r = match v.get_ref() {
        toml::de::DeValue::Integer(i) => {
            d.span(&v.span(), format!("{what} = {i} needs a unit, like {example}"));
            None
        }
        _ => string(d, v, &what).and_then(|s| match read(s) {
            Ok(x) => Some((x, v.span(), s)),
            Err(e) => {
                d.span(&v.span(), format!("{what}: {e}"));
                None
            }
        }),
    };
    *ok &= r.is_some();
    r
}
