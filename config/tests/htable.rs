//! `[[htable]]`: runtime key/value tables with seed entries read from inline entries and CSV
//! files, and every mistake in them reported at the right place.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::*;
use ringsip_config::{Errors, HtableSeed, HtableValue};

/// A valid config; the tests add `[[htable]]` tables.
const BASE: &str = r#"[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080"]

[[route.request]]
do = ["select 1", "forward"]
"#;

fn with_table(table: &str) -> String {
    format!("{BASE}\n[[htable]]\n{table}\n")
}

fn dir(name: &str) -> PathBuf {
    common::dir("ringsip-config-htable", name)
}

/// The text has exactly one error: this message at `marker`'s position on the line of
/// `line_marker`.
#[track_caller]
fn expect(text: &str, line_marker: &str, marker: &str, message: &str) {
    let errs = errors(text);
    expect_in(&errs, line_of(text, line_marker), col_on(text, line_marker, marker), message);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn tables_with_entries_and_a_file() {
    let dir = dir("good");
    std::fs::write(
        dir.join("ipban-seed.csv"),
        "# seeded bans\nkey,value,expires\n198.51.100.7,1,\n\n 198.51.100.8 , -3 , 2h \n# more\nacct-7,0049,90s\nacct-8,some text,\n",
    )
    .unwrap();
    std::fs::write(dir.join("gw.csv"), "value,key\ncarrier-b,gw-b\n").unwrap();
    let text = format!(
        r#"{BASE}
[[htable]]
name = "ipban"
autoexpire = "5m"
max_entries = 100000
entries = [
  {{ key = "192.0.2.66", value = 1 }},
  {{ key = "gw-a", value = "carrier-a", expires = "1h" }},
]
file = "ipban-seed.csv"

[[htable]]
name = "gateways"
file = "gw.csv"
entries = [{{ key = "gw-z", value = -9223372036854775808 }}]
"#
    );
    let path = dir.join("ringsip.toml");
    std::fs::write(&path, &text).unwrap();
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let at = |marker: &str| format!("ringsip.toml:{}:{}", line_of(&text, marker), col_on(&text, marker, "{"));
    let seed = |key: &str, value: HtableValue, expires: Option<Duration>, origin: String| HtableSeed {
        key: key.into(),
        value,
        expires,
        origin,
    };
    let t = |s: &str| HtableValue::Text(s.into());

    assert_eq!(c.htables.len(), 2);
    let ipban = &c.htables[0];
    assert_eq!(
        (ipban.name.as_str(), ipban.autoexpire, ipban.max_entries),
        ("ipban", Some(Duration::from_secs(300)), Some(100_000))
    );
    assert_eq!(
        ipban.seeds,
        [
            seed("192.0.2.66", HtableValue::Int(1), None, at("192.0.2.66")),
            seed("gw-a", t("carrier-a"), secs(3600), at("gw-a")),
            seed("198.51.100.7", HtableValue::Int(1), None, "ipban-seed.csv row 1".into()),
            seed("198.51.100.8", HtableValue::Int(-3), secs(7200), "ipban-seed.csv row 2".into()),
            seed("acct-7", t("0049"), secs(90), "ipban-seed.csv row 3".into()),
            seed("acct-8", t("some text"), None, "ipban-seed.csv row 4".into()),
        ]
    );
    let gw = &c.htables[1];
    assert_eq!((gw.name.as_str(), gw.autoexpire, gw.max_entries), ("gateways", None, None));
    assert_eq!(
        gw.seeds,
        [
            seed("gw-z", HtableValue::Int(i64::MIN), None, at("gw-z")),
            seed("gw-b", t("carrier-b"), None, "gw.csv row 1".into()),
        ]
    );
}

#[test]
fn defaults() {
    let c = ok(&with_table("name = \"ipban\""), Path::new("t.toml"));
    assert_eq!(c.htables.len(), 1);
    let h = &c.htables[0];
    assert_eq!((h.name.as_str(), h.autoexpire, h.max_entries, h.seeds.len()), ("ipban", None, None, 0));

    let c = ok(&with_table("name = \"t\"\nentries = []"), Path::new("t.toml"));
    assert!(c.htables[0].seeds.is_empty());

    let dir = dir("header-only");
    std::fs::write(dir.join("s.csv"), "key,value\n# nothing yet\n").unwrap();
    let c = ok(&with_table("name = \"t\"\nfile = \"s.csv\""), &dir.join("ringsip.toml"));
    assert!(c.htables[0].seeds.is_empty());
}

#[test]
fn limits_at_the_edges() {
    let c = ok(
        &with_table(&format!(
            "name = \"t\"\nmax_entries = 4294967296\nautoexpire = \"8760h\"\nentries = [{{ key = \"{}\", value = 1, expires = \"1000ms\" }}]",
            "k".repeat(255)
        )),
        Path::new("t.toml"),
    );
    let h = &c.htables[0];
    assert_eq!((h.max_entries, h.autoexpire), (Some(1 << 32), secs(365 * 24 * 3600)));
    assert_eq!(h.seeds[0].expires, secs(1));
    let c =
        ok(&with_table("name = \"t\"\nmax_entries = 1\nentries = [{ key = \"a\", value = 1 }]"), Path::new("t.toml"));
    assert_eq!(c.htables[0].max_entries, Some(1));
}

#[test]
fn no_htable_is_fine() {
    assert!(ok(BASE, Path::new("t.toml")).htables.is_empty());
}

#[test]
fn unknown_keys() {
    let text = with_table("name = \"a\"\nautoexpre = \"5m\"\nentries = [{ key = \"k\", valu = 2 }]");
    let errs = errors(&text);
    expect_in(
        &errs,
        line_of(&text, "autoexpre"),
        1,
        "unknown key \"autoexpre\" in [[htable]] (did you mean \"autoexpire\"? allowed: name, autoexpire, max_entries, entries, file)",
    );
    expect_in(
        &errs,
        line_of(&text, "valu ="),
        col_on(&text, "valu =", "valu"),
        "unknown key \"valu\" in an htable entry (did you mean \"value\"? allowed: key, value, expires)",
    );
    expect_in(
        &errs,
        line_of(&text, "valu ="),
        col_on(&text, "valu =", "{"),
        "an htable entry needs a `value` (an integer or a string), like value = 1",
    );
    assert_eq!(errs.len(), 3, "{}", Errors(errs.clone()));

    let text = format!("{BASE}\n[[htabel]]\nname = \"a\"\n");
    expect(
        &text,
        "[[htabel]]",
        "htabel",
        "unknown key \"htabel\" in the top level (did you mean \"htable\"? allowed: server, dispatcher, mtree, htable, acl, route, transactions, media, pike)",
    );
}

#[test]
fn name_is_required() {
    let text = with_table("autoexpire = \"5m\"");
    expect(&text, "[[htable]]", "[", "[[htable]] needs a `name` (the name routes use), like name = \"ipban\"");
}

#[test]
fn bad_names() {
    for name in ["1st", "ip ban", "", "ban.list"] {
        let text = with_table(&format!("name = \"{name}\""));
        expect(
            &text,
            "name =",
            "\"",
            &format!("htable name \"{name}\" must start with a letter and have only letters, digits, _ and -"),
        );
    }

    let text = format!("{}\n[[htable]]\nname = \"a\"\nautoexpire = \"1m\"\n", with_table("name = \"a\""));
    let second = text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "name = \"a\"").unwrap() + 1;
    let first = line_of(&text, "name = \"a\"");
    let errs = errors(&text);
    expect_in(&errs, second, 8, &format!("duplicate htable name \"a\" (already used at line {first})"));
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));

    let text = with_table("name = 5");
    expect(&text, "name = 5", "5", "htable name must be a string, not the integer 5");
}

#[test]
fn not_an_array_of_tables() {
    let text = format!("htable = 5\n{BASE}");
    expect(&text, "htable = 5", "5", "htable must be an array of tables: write each one under [[htable]]");
}

#[test]
fn wrong_types() {
    let cases = [
        ("max_entries = \"100\"", "\"100\"", "max_entries must be an integer, not the string \"100\""),
        ("autoexpire = true", "true", "autoexpire must be a string, not the boolean true"),
        ("autoexpire = 300", "300", "autoexpire = 300 needs a unit: write \"300s\" (units: s, m, h)"),
        ("entries = 5", "5", "htable entries must be an array, not the integer 5"),
        ("file = [\"a.csv\"]", "[", "htable file must be a string, not an array"),
        (
            "entries = [\"k\"]",
            "\"k\"",
            "an htable entry must be a table like { key = \"192.0.2.66\", value = 1 }, not the string \"k\"",
        ),
        ("entries = [{ key = 5, value = 1 }]", "5,", "htable key must be a string, not the integer 5"),
        (
            "entries = [{ key = \"k\", value = 1.5 }]",
            "1.5",
            "the value of an htable entry must be an integer or a string, not the float 1.5",
        ),
        (
            "entries = [{ key = \"k\", value = [1] }]",
            "[1]",
            "the value of an htable entry must be an integer or a string, not an array",
        ),
        (
            "entries = [{ key = \"k\", value = 1, expires = 60 }]",
            "60",
            "expires = 60 needs a unit: write \"60s\" (units: s, m, h)",
        ),
        ("entries = [{ key = \"k\", value = \"\" }]", "\"\"", "the value \"\" must be non-empty text on one line"),
        (
            "entries = [{ key = \"k\", value = \"a\\nb\" }]",
            "\"a",
            "the value \"a\\nb\" must be non-empty text on one line",
        ),
        (
            "entries = [{ key = \"k\", value = 99999999999999999999 }]",
            "999",
            "the value 99999999999999999999 is too large for an integer (-9223372036854775808 to 9223372036854775807)",
        ),
    ];
    for (line, marker, message) in cases {
        let text = with_table(&format!("name = \"t\"\n{line}"));
        expect(&text, line, marker, message);
    }
}

#[test]
fn entries_need_key_and_value() {
    let text = with_table("name = \"t\"\nentries = [{ value = 1 }, { key = \"b\" }]");
    let errs = errors(&text);
    let line = line_of(&text, "entries");
    expect_in(
        &errs,
        line,
        col_on(&text, "entries", "{ value"),
        "an htable entry needs a `key`, like { key = \"192.0.2.66\", value = 1 }",
    );
    expect_in(
        &errs,
        line,
        col_on(&text, "entries", "{ key"),
        "an htable entry needs a `value` (an integer or a string), like value = 1",
    );
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));
}

#[test]
fn max_entries_out_of_range() {
    let text = with_table("name = \"t\"\nmax_entries = 0");
    expect(&text, "max_entries", "0", "max_entries = 0 is out of range (1 to 4294967296)");
    let text = with_table("name = \"t\"\nmax_entries = 4294967297");
    expect(&text, "max_entries", "4294967297", "max_entries = 4294967297 is out of range (1 to 4294967296)");
    let text = with_table("name = \"t\"\nmax_entries = -5");
    expect(&text, "max_entries", "-5", "max_entries = -5 is out of range (1 to 4294967296)");
}

#[test]
fn bad_durations() {
    let cases = [
        ("0s", "autoexpire \"0s\" is zero: leave autoexpire out for entries that never expire"),
        ("0m", "autoexpire \"0m\" is zero: leave autoexpire out for entries that never expire"),
        ("500ms", "autoexpire \"500ms\" is too short (at least 1s)"),
        ("1500ms", "autoexpire \"1500ms\" is not a whole number of seconds (expiry is counted in seconds)"),
        (
            "8761h",
            "autoexpire \"8761h\" is too long (at most 365 days, \"8760h\"); leave autoexpire out for entries that never expire",
        ),
        ("5", "autoexpire: duration \"5\" needs a unit: \"5s\" or \"5ms\" (units: ms, s, m, h)"),
        ("2 weeks", "autoexpire: unknown unit \"weeks\" in duration \"2 weeks\" (units: ms, s, m, h)"),
        (
            "soon",
            "autoexpire: \"soon\" is not a duration (write a whole number and a unit: \"500ms\", \"2s\", \"1m\", \"1h\")",
        ),
    ];
    for (value, message) in cases {
        let text = with_table(&format!("name = \"t\"\nautoexpire = \"{value}\""));
        expect(&text, "autoexpire", "\"", message);
    }

    let text = with_table("name = \"t\"\nentries = [{ key = \"k\", value = 1, expires = \"0s\" }]");
    expect(&text, "expires", "\"0s\"", "expires \"0s\" is zero: leave expires out for the table's autoexpire");
    let text = with_table("name = \"t\"\nentries = [{ key = \"k\", value = 1, expires = \"1 fortnight\" }]");
    expect(
        &text,
        "expires",
        "\"1 f",
        "expires: unknown unit \"fortnight\" in duration \"1 fortnight\" (units: ms, s, m, h)",
    );
}

#[test]
fn bad_keys() {
    let long = "x".repeat(256);
    let text = with_table(&format!(
        "name = \"t\"\nentries = [\n  {{ key = \"\", value = 1 }},\n  {{ key = \"{long}\", value = 1 }},\n  {{ key = \"é{}\", value = 1 }},\n]",
        "x".repeat(254)
    ));
    let errs = errors(&text);
    expect_in(
        &errs,
        line_of(&text, "key = \"\""),
        col_on(&text, "key = \"\"", "\"\""),
        "the key is empty: give the key to store, like \"192.0.2.66\"",
    );
    let too_long: Vec<_> = errs
        .iter()
        .filter(|e| e.message == "key of 256 bytes is too long (at most 255)")
        .map(|e| (e.line, e.col))
        .collect();
    assert_eq!(too_long, [(line_of(&text, &long), 11), (line_of(&text, "\"é"), 11)]);
    assert_eq!(errs.len(), 3, "{}", Errors(errs.clone()));
}

#[test]
fn duplicate_keys() {
    let dir = dir("dup");
    std::fs::write(dir.join("s.csv"), "key,value\na,1\nb,2\nb,3\n").unwrap();
    let text = with_table(
        "name = \"bans\"\nfile = \"s.csv\"\nentries = [\n  { key = \"a\", value = 1 },\n  { key = \"c\", value = 2 },\n  { key = \"c\", value = 3 },\n]",
    );
    let origin = dir.join("ringsip.toml");
    let errs = errors_in(&text, &origin);
    let a = line_of(&text, "\"a\"");
    let c = a + 1;
    let e = &errs[0];
    assert_eq!((e.file.as_path(), e.line, e.col, e.row), (origin.as_path(), c + 1, 3, None), "{e}");
    assert_eq!(
        e.message,
        format!("table \"bans\" has key \"c\" twice: at ringsip.toml:{c}:3 and at ringsip.toml:{}:3", c + 1)
    );
    assert_eq!(
        csv_errors(&errs, &dir.join("s.csv")),
        [
            (2, Some(1), format!("table \"bans\" has key \"a\" twice: at ringsip.toml:{a}:3 and at s.csv row 1")),
            (4, Some(3), "table \"bans\" has key \"b\" twice: at s.csv row 2 and at s.csv row 3".to_string()),
        ]
    );
    assert_eq!(errs.len(), 3, "{}", Errors(errs.clone()));
}

#[test]
fn more_seeds_than_max_entries() {
    let dir = dir("max");
    std::fs::write(dir.join("s.csv"), "key,value\nb,1\nc,1\n").unwrap();
    let text =
        with_table("name = \"small\"\nmax_entries = 2\nfile = \"s.csv\"\nentries = [{ key = \"a\", value = 1 }]");
    let errs = errors_in(&text, &dir.join("ringsip.toml"));
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert_eq!((errs[0].line, errs[0].col), (line_of(&text, "max_entries"), 15));
    assert_eq!(
        errs[0].message,
        "table \"small\" has 3 seed entries but max_entries = 2: raise max_entries or remove entries"
    );
}

#[test]
fn csv_missing_file() {
    let dir = dir("missing");
    let _ = std::fs::remove_file(dir.join("gone.csv"));
    let origin = dir.join("ringsip.toml");
    let text = with_table("name = \"m\"\nfile = \"gone.csv\"");
    let errs = errors_in(&text, &origin);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let e = &errs[0];
    assert_eq!((e.file.as_path(), e.line, e.col), (origin.as_path(), line_of(&text, "gone.csv"), 8));
    let want = format!("cannot read htable file \"gone.csv\" (looked for {}): ", dir.join("gone.csv").display());
    assert!(e.message.starts_with(&want), "{e}");
}

#[test]
fn csv_bad_header() {
    let dir = dir("header");
    let csv = dir.join("h.csv");
    let text = with_table("name = \"h\"\nfile = \"h.csv\"");
    let origin = dir.join("ringsip.toml");

    std::fs::write(&csv, "key,valu,ttl\n1,2,3\n").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [
            (
                1,
                None,
                "unknown column \"valu\" in the header row (did you mean \"value\"? columns: key, value, expires)"
                    .to_string()
            ),
            (1, None, "unknown column \"ttl\" in the header row (columns: key, value, expires)".to_string()),
        ]
    );
    std::fs::write(&csv, "key,key,value\n1,2,3\n").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [(1, None, "column \"key\" appears twice in the header row".to_string())]
    );
    std::fs::write(&csv, "# seeds\n\nkey,expires\n1,5s\n").unwrap();
    let errs = errors_in(&text, &origin);
    assert_eq!(
        csv_errors(&errs, &csv),
        [(
            3,
            None,
            "the header row needs the columns key and value (expires is optional); found \"key,expires\"".into()
        )]
    );
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    std::fs::write(&csv, "").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [(
            1,
            None,
            "the file is empty: it needs a header row naming the columns (key, value and optionally expires)"
                .to_string()
        )]
    );
}

#[test]
fn csv_bad_rows() {
    let dir = dir("rows");
    let csv = dir.join("r.csv");
    std::fs::write(
        &csv,
        "key,value,expires\nok,1,\n# comment\nshort,1\n,1,\nlate,1,soon\nzero,1,0s\nfrac,1,1500ms\nbig,99999999999999999999,\nempty,,\nnl,\"a\nb\",\nfine,2,1m\n",
    )
    .unwrap();
    let text = with_table("name = \"r\"\nautoexpire = \"1h\"\nfile = \"r.csv\"");
    let errs = errors_in(&text, &dir.join("ringsip.toml"));
    let got = csv_errors(&errs, &csv);
    assert_eq!(got.len(), errs.len(), "only CSV errors: {}", Errors(errs.clone()));
    assert_eq!(
        got,
        [
            (4, Some(2), "this row has 2 fields but the header row names 3 (key, value, expires)".to_string()),
            (5, Some(3), "the key is empty: give the key to store, like \"192.0.2.66\"".to_string()),
            (
                6,
                Some(4),
                "expires: \"soon\" is not a duration (write a whole number and a unit: \"500ms\", \"2s\", \"1m\", \"1h\")"
                    .to_string()
            ),
            (7, Some(5), "expires \"0s\" is zero: leave the cell empty for the table's autoexpire".to_string()),
            (
                8,
                Some(6),
                "expires \"1500ms\" is not a whole number of seconds (expiry is counted in seconds)".to_string()
            ),
            (
                9,
                Some(7),
                "the value 99999999999999999999 is too large for an integer (-9223372036854775808 to 9223372036854775807)"
                    .to_string()
            ),
            (10, Some(8), "the value \"\" must be non-empty text on one line".to_string()),
            (11, Some(9), "the value \"a\\nb\" must be non-empty text on one line".to_string()),
        ]
    );
    assert_eq!(
        errs[0].to_string(),
        format!("{}:4:1: row 2: this row has 2 fields but the header row names 3 (key, value, expires)", csv.display())
    );
}

#[test]
fn csv_long_key() {
    let dir = dir("long");
    let csv = dir.join("l.csv");
    std::fs::write(&csv, format!("key,value\n{},1\n{},1\n", "k".repeat(255), "k".repeat(256))).unwrap();
    let errs = errors_in(&with_table("name = \"l\"\nfile = \"l.csv\""), &dir.join("ringsip.toml"));
    assert_eq!(csv_errors(&errs, &csv), [(3, Some(2), "key of 256 bytes is too long (at most 255)".to_string())]);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
}

#[test]
fn several_errors_reported_together() {
    let text = format!(
        "{}\n[[htable]]\nname = \"b\"\nmax_entries = 0\nentries = [{{ key = \"\", value = 1 }}]\n",
        with_table("name = \"a\"\nautoexpire = \"0s\"\nfile = 7")
    );
    let errs = errors(&text);
    let got: Vec<_> = errs.iter().map(|e| e.line).collect();
    let want = [
        line_of(&text, "\"0s\""),
        line_of(&text, "file = 7"),
        line_of(&text, "max_entries = 0"),
        line_of(&text, "key = \"\""),
    ];
    assert_eq!(got, want, "{}", Errors(errs.clone()));
}
