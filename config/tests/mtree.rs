//! `[[mtree]]`: prefix trees read from inline entries and CSV files, and every mistake in them
//! reported at the right place.

use std::path::{Path, PathBuf};

mod common;
use common::*;
use ringsip_config::{Errors, MtreeKind, MtreeValue};

/// A valid config with sets 1 and 2; the tests add `[[mtree]]` tables.
const BASE: &str = r#"[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080"]

[[dispatcher.set]]
id = 2
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5081"]

[[route.request]]
do = ["select 1", "forward"]
"#;

fn with_tree(tree: &str) -> String {
    format!("{BASE}\n[[mtree]]\n{tree}\n")
}

fn dir(name: &str) -> PathBuf {
    common::dir("ringsip-config-mtree", name)
}

/// The text has an error with exactly this message at `marker`'s position on the line of
/// `line_marker`.
#[track_caller]
fn expect(text: &str, line_marker: &str, marker: &str, message: &str) {
    expect_in(&errors(text), line_of(text, line_marker), col_on(text, line_marker, marker), message);
}

#[test]
fn trees_of_each_type_inline_and_csv() {
    let dir = dir("good");
    std::fs::write(dir.join("routes.csv"), "# carriers\nvalue,prefix\n\"2;1\",+4930\n 1 ; 2 , +44 \n").unwrap();
    std::fs::write(dir.join("names.csv"), "prefix,value\n49,Germany\n,anywhere\n").unwrap();
    std::fs::write(dir.join("limits.csv"), "prefix,value\n# comment\n1,-5\n").unwrap();
    let text = format!(
        r#"{BASE}
[[mtree]]
name = "routes"
type = "sets"
alphabet = "0123456789+"
file = "routes.csv"
entries = [
  {{ prefix = "+49", value = "1" }},
  {{ prefix = "+1", value = 2 }},
]

[[mtree]]
name = "names"
type = "text"
file = "names.csv"
entries = [{{ prefix = "4930", value = "Berlin" }}]

[[mtree]]
name = "limits"
type = "int"
entries = [{{ prefix = "0", value = 10 }}]
file = "limits.csv"
"#
    );
    let path = dir.join("ringsip.toml");
    std::fs::write(&path, &text).unwrap();
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let at = |marker: &str| format!("ringsip.toml:{}:{}", line_of(&text, marker), col_on(&text, marker, "{"));
    let got: Vec<_> = c.mtrees.iter().map(|t| (t.name.as_str(), t.kind, t.alphabet.as_str())).collect();
    assert_eq!(
        got,
        [
            ("routes", MtreeKind::Sets, "0123456789+"),
            ("names", MtreeKind::Text, "0123456789"),
            ("limits", MtreeKind::Int, "0123456789")
        ]
    );
    let entries = |i: usize| -> Vec<(String, MtreeValue, String)> {
        c.mtrees[i].entries.iter().map(|e| (e.prefix.clone(), e.value.clone(), e.origin.clone())).collect()
    };
    let s = |ids: &[u32]| MtreeValue::Sets(ids.to_vec());
    assert_eq!(
        entries(0),
        [
            ("+49".into(), s(&[1]), at("\"+49\"")),
            ("+1".into(), s(&[2]), at("\"+1\"")),
            ("+4930".into(), s(&[2, 1]), "routes.csv row 1".into()),
            ("+44".into(), s(&[1, 2]), "routes.csv row 2".into()),
        ]
    );
    let t = |s: &str| MtreeValue::Text(s.into());
    assert_eq!(
        entries(1),
        [
            ("4930".into(), t("Berlin"), at("Berlin")),
            ("49".into(), t("Germany"), "names.csv row 1".into()),
            ("".into(), t("anywhere"), "names.csv row 2".into()),
        ]
    );
    assert_eq!(
        entries(2),
        [
            ("0".into(), MtreeValue::Int(10), at("prefix = \"0\"")),
            ("1".into(), MtreeValue::Int(-5), "limits.csv row 1".into()),
        ]
    );
}

#[test]
fn no_mtree_is_fine() {
    assert!(ok(BASE, Path::new("t.toml")).mtrees.is_empty());
}

#[test]
fn unknown_keys() {
    let text = with_tree("name = \"a\"\ntype = \"int\"\nalphabt = \"01\"\nentries = [{ prefix = \"1\", valu = 2 }]");
    let errs = errors(&text);
    expect_in(
        &errs,
        line_of(&text, "alphabt"),
        1,
        "unknown key \"alphabt\" in [[mtree]] (did you mean \"alphabet\"? allowed: name, type, alphabet, file, entries)",
    );
    expect_in(
        &errs,
        line_of(&text, "valu ="),
        col_on(&text, "valu =", "valu"),
        "unknown key \"valu\" in an mtree entry (did you mean \"value\"? allowed: prefix, value)",
    );
}

#[test]
fn name_and_type_are_required() {
    let text = with_tree("entries = [{ prefix = \"1\", value = 1 }]");
    let errs = errors(&text);
    let header = line_of(&text, "[[mtree]]");
    expect_in(&errs, header, 1, "[[mtree]] needs a `name` (the name routes look it up by), like name = \"routes\"");
    expect_in(&errs, header, 1, "this tree needs a `type`: \"sets\" (dispatcher set ids), \"text\" or \"int\"");
}

#[test]
fn bad_names() {
    let text = with_tree("name = \"1st\"\ntype = \"int\"\nentries = [{ prefix = \"1\", value = 1 }]");
    expect(
        &text,
        "1st",
        "\"1st\"",
        "mtree name \"1st\" must start with a letter and have only letters, digits, _ and -",
    );

    let text = format!(
        "{}\n[[mtree]]\nname = \"a\"\ntype = \"text\"\nentries = [{{ prefix = \"2\", value = \"x\" }}]\n",
        with_tree("name = \"a\"\ntype = \"int\"\nentries = [{ prefix = \"1\", value = 1 }]")
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let second = text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "name = \"a\"").unwrap() + 1;
    let first = line_of(&text, "name = \"a\"");
    expect_in(&errs, second, 8, &format!("duplicate mtree name \"a\" (already used at line {first})"));

    let text = with_tree("name = 5\ntype = \"int\"\nentries = [{ prefix = \"1\", value = 1 }]");
    expect(&text, "name = 5", "5", "mtree name must be a string, not the integer 5");
}

#[test]
fn unknown_type() {
    let text = with_tree("name = \"a\"\ntype = \"set\"\nentries = [{ prefix = \"1\", value = 1 }]");
    expect(&text, "type =", "\"set\"", "unknown mtree type \"set\" (did you mean \"sets\"? types: sets, text, int)");
    let text = with_tree("name = \"a\"\ntype = \"number\"\nentries = [{ prefix = \"1\", value = 1 }]");
    expect(&text, "type =", "\"number\"", "unknown mtree type \"number\" (types: sets, text, int)");
}

#[test]
fn bad_alphabets() {
    let tree = |alphabet: &str| {
        with_tree(&format!(
            "name = \"a\"\ntype = \"int\"\nalphabet = {alphabet}\nentries = [{{ prefix = \"1\", value = 1 }}]"
        ))
    };
    let text = tree("\"\"");
    expect(&text, "alphabet", "\"", "alphabet is empty: give the characters prefixes are made of, like \"0123456789\"");
    let text = tree("\"01231\"");
    expect(&text, "alphabet", "1\"", "alphabet repeats '1' (characters 2 and 5)");
    let text = tree("\"01 2\"");
    expect(&text, "alphabet", " 2", "alphabet: ' ' (character 3) is not allowed: printable ASCII only, no space");
    let text = tree("\"01é\"");
    expect(&text, "alphabet", "é", "alphabet: 'é' (character 3) is not allowed: printable ASCII only, no space");
    let text = tree("\"0123456789abcdefghijklmnopqrstuvwxyz\"");
    expect(&text, "alphabet", "\"", "alphabet has 36 characters (at most 32)");
}

#[test]
fn prefixes_use_the_alphabet() {
    let text = with_tree("name = \"a\"\ntype = \"int\"\nentries = [{ prefix = \"+49\", value = 1 }]");
    expect(&text, "+49", "+49", "prefix \"+49\": '+' (character 1) is not in the alphabet \"0123456789\"");
    let text =
        with_tree("name = \"a\"\ntype = \"int\"\nalphabet = \"123*\"\nentries = [{ prefix = \"12*4\", value = 1 }]");
    expect(&text, "12*4", "4\"", "prefix \"12*4\": '4' (character 4) is not in the alphabet \"123*\"");
}

#[test]
fn prefixes_at_most_64_characters() {
    let long = "1".repeat(65);
    let text = with_tree(&format!(
        "name = \"a\"\ntype = \"int\"\nentries = [{{ prefix = \"{long}\", value = 1 }}, {{ prefix = \"{}\", value = 2 }}]",
        "2".repeat(64)
    ));
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    expect_in(
        &errs,
        line_of(&text, &long),
        col_on(&text, &long, &format!("\"{long}")),
        "prefix of 65 characters is too long (at most 64)",
    );
}

#[test]
fn duplicate_prefixes() {
    let dir = dir("dup");
    std::fs::write(dir.join("p.csv"), "prefix,value\n49,1\n49,2\n").unwrap();
    let text = with_tree(
        "name = \"a\"\ntype = \"int\"\nfile = \"p.csv\"\nentries = [\n  { prefix = \"49\", value = 1 },\n  { prefix = \"\", value = 2 },\n  { prefix = \"\", value = 3 },\n]",
    );
    let origin = dir.join("ringsip.toml");
    let errs = errors_in(&text, &origin);
    let first = line_of(&text, "\"49\"");
    let empty = first + 1;
    let e = &errs[0];
    assert_eq!((e.file.as_path(), e.line, e.col), (origin.as_path(), empty + 1, 3), "{e}");
    assert_eq!(
        e.message,
        format!("tree \"a\" has prefix \"\" twice: at ringsip.toml:{empty}:3 and at ringsip.toml:{}:3", empty + 1)
    );
    assert_eq!(
        csv_errors(&errs, &dir.join("p.csv")),
        [
            (2, Some(1), format!("tree \"a\" has prefix \"49\" twice: at ringsip.toml:{first}:3 and at p.csv row 1")),
            (3, Some(2), format!("tree \"a\" has prefix \"49\" twice: at ringsip.toml:{first}:3 and at p.csv row 2")),
        ]
    );
    assert_eq!(errs.len(), 3, "{}", Errors(errs.clone()));
}

#[test]
fn set_values() {
    let entry = |value: &str| {
        with_tree(&format!("name = \"r\"\ntype = \"sets\"\nentries = [{{ prefix = \"5\", value = {value} }}]"))
    };
    let text = entry("\"2;9\"");
    expect(&text, "value", "9\"", "set 9 in \"2;9\": there is no dispatcher set with id 9 (sets: 1, 2)");
    let text = entry("7");
    expect(&text, "value", "7", "set 7: there is no dispatcher set with id 7 (sets: 1, 2)");
    let text = entry("\"1; 2 ;1\"");
    expect(&text, "value", "1\"", "\"1; 2 ;1\": set 1 is listed twice");
    let text = entry("\"1;;2\"");
    expect(&text, "value", ";2\"", "\"1;;2\": an empty set id (set ids are separated by ';', like \"2;1\")");
    let text = entry("\"1;two\"");
    expect(&text, "value", "two", "\"1;two\": \"two\" is not a set id (a whole number 0-4294967295)");
    let text = entry("\" \"");
    expect(&text, "value", "\" \"", "the value is empty: give at least one set id, like \"1\" or \"2;1\"");
    let text = entry("-1");
    expect(&text, "value", "-1", "set id = -1 is out of range (0 to 4294967295)");
    let text = entry("[1, 2]");
    expect(
        &text,
        "value",
        "[1",
        "the value of a sets tree must be set ids like \"2;1\" or one id like 1, not an array",
    );
}

#[test]
fn set_ids_unchecked_when_a_set_id_is_unreadable() {
    let text = format!(
        "{}\n[[dispatcher.set]]\nid = \"x\"\nalgorithm = 4\ndestinations = [\"sip:127.0.0.1:5090\"]\n",
        with_tree("name = \"r\"\ntype = \"sets\"\nentries = [{ prefix = \"1\", value = \"9\" }]")
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "only the bad id: {}", Errors(errs.clone()));
    assert!(errs[0].message.starts_with("set id must be"), "{}", errs[0]);
}

#[test]
fn text_and_int_values() {
    let entry = |ty: &str, value: &str| {
        with_tree(&format!("name = \"v\"\ntype = \"{ty}\"\nentries = [{{ prefix = \"1\", value = {value} }}]"))
    };
    let text = entry("text", "\"\"");
    expect(&text, "value", "\"\"", "the value \"\" must be non-empty text on one line");
    let text = entry("text", "\"a\\nb\"");
    expect(&text, "value", "\"a", "the value \"a\\nb\" must be non-empty text on one line");
    let text = entry("text", "5");
    expect(&text, "value", "5", "the value of a text tree must be a string, not the integer 5");
    let text = entry("int", "\"5\"");
    expect(&text, "value", "\"5\"", "the value of an int tree must be an integer, not the string \"5\"");
}

#[test]
fn entries_need_prefix_and_value() {
    let text = with_tree("name = \"v\"\ntype = \"int\"\nentries = [{ value = 1 }, { prefix = \"2\" }, \"3\"]");
    let errs = errors(&text);
    let line = line_of(&text, "entries");
    expect_in(
        &errs,
        line,
        col_on(&text, "entries", "{ value"),
        "an mtree entry needs a `prefix` (\"\" matches every key), like { prefix = \"49\", ... }",
    );
    expect_in(&errs, line, col_on(&text, "entries", "{ prefix"), "an mtree entry needs a `value`, like value = 10");
    expect_in(
        &errs,
        line,
        col_on(&text, "entries", "\"3\""),
        "an mtree entry must be a table like { prefix = \"49\", value = ... }, not the string \"3\"",
    );
    assert_eq!(errs.len(), 3, "{}", Errors(errs.clone()));
}

#[test]
fn a_tree_needs_entries() {
    let text = with_tree("name = \"e\"\ntype = \"int\"");
    expect(
        &text,
        "[[mtree]]",
        "[",
        "tree \"e\" has no entries: add entries = [{ prefix = \"49\", value = ... }] or file = \"prefixes.csv\"",
    );
    let text = with_tree("name = \"e\"\ntype = \"int\"\nentries = []");
    expect(&text, "entries", "[]", "tree \"e\" has no entries: a tree that matches nothing is a mistake");

    let dir = dir("empty");
    std::fs::write(dir.join("e.csv"), "prefix,value\n# nothing yet\n").unwrap();
    let text = with_tree("name = \"e\"\ntype = \"int\"\nfile = \"e.csv\"");
    let errs = errors_in(&text, &dir.join("ringsip.toml"));
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert_eq!((errs[0].line, errs[0].col), (line_of(&text, "e.csv"), 8));
    assert_eq!(errs[0].message, "tree \"e\" has no entries: a tree that matches nothing is a mistake");
}

#[test]
fn csv_missing_file() {
    let dir = dir("missing");
    let _ = std::fs::remove_file(dir.join("gone.csv"));
    let origin = dir.join("ringsip.toml");
    let text = with_tree("name = \"m\"\ntype = \"int\"\nfile = \"gone.csv\"");
    let errs = errors_in(&text, &origin);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let e = &errs[0];
    assert_eq!((e.file.as_path(), e.line, e.col), (origin.as_path(), line_of(&text, "gone.csv"), 8));
    let want = format!("cannot read mtree file \"gone.csv\" (looked for {}): ", dir.join("gone.csv").display());
    assert!(e.message.starts_with(&want), "{e}");
}

#[test]
fn csv_bad_header() {
    let dir = dir("header");
    let csv = dir.join("h.csv");
    let text = with_tree("name = \"h\"\ntype = \"int\"\nfile = \"h.csv\"");
    let origin = dir.join("ringsip.toml");

    std::fs::write(&csv, "prefix,valu,weight\n1,2,3\n").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [
            (
                1,
                None,
                "unknown column \"valu\" in the header row (did you mean \"value\"? columns: prefix, value)"
                    .to_string()
            ),
            (1, None, "unknown column \"weight\" in the header row (columns: prefix, value)".to_string()),
        ]
    );
    std::fs::write(&csv, "prefix,prefix\n1,2\n").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [(1, None, "column \"prefix\" appears twice in the header row".to_string())]
    );
    std::fs::write(&csv, "prefix\n1\n").unwrap();
    let errs = errors_in(&text, &origin);
    assert_eq!(
        csv_errors(&errs, &csv),
        [(1, None, "the header row needs the columns prefix, value; found \"prefix\"".to_string())]
    );
    assert_eq!(errs.len(), 1, "no \"no entries\" error on top: {}", Errors(errs.clone()));
    std::fs::write(&csv, "# a comment\n\nprefix\n1\n").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [(3, None, "the header row needs the columns prefix, value; found \"prefix\"".to_string())]
    );
    std::fs::write(&csv, "").unwrap();
    assert_eq!(
        csv_errors(&errors_in(&text, &origin), &csv),
        [(1, None, "the file is empty: it needs a header row naming the columns (prefix, value)".to_string())]
    );
}

#[test]
fn csv_bad_rows() {
    let dir = dir("rows");
    let csv = dir.join("r.csv");
    std::fs::write(&csv, "prefix,value\n+49,1\n# comment\n49x,1\n44,9\n1,2;2\n7\n33,\n").unwrap();
    let text = with_tree("name = \"r\"\ntype = \"sets\"\nalphabet = \"0123456789+\"\nfile = \"r.csv\"");
    let errs = errors_in(&text, &dir.join("ringsip.toml"));
    let got = csv_errors(&errs, &csv);
    assert_eq!(got.len(), errs.len(), "only CSV errors: {}", Errors(errs.clone()));
    assert_eq!(
        got,
        [
            (4, Some(2), "prefix \"49x\": 'x' (character 3) is not in the alphabet \"0123456789+\"".to_string()),
            (5, Some(3), "set 9 in \"9\": there is no dispatcher set with id 9 (sets: 1, 2)".to_string()),
            (6, Some(4), "\"2;2\": set 2 is listed twice".to_string()),
            (7, Some(5), "this row has 1 field but the header row names 2 (prefix, value)".to_string()),
            (8, Some(6), "the value is empty: give at least one set id, like \"1\" or \"2;1\"".to_string()),
        ]
    );
    assert_eq!(
        errs[0].to_string(),
        format!(
            "{}:4:1: row 2: prefix \"49x\": 'x' (character 3) is not in the alphabet \"0123456789+\"",
            csv.display()
        )
    );
}

#[test]
fn csv_text_and_int_values() {
    let dir = dir("values");
    let origin = dir.join("ringsip.toml");
    std::fs::write(dir.join("i.csv"), "prefix,value\n1,ten\n2,\n3,99999999999999999999\n4,-7\n").unwrap();
    std::fs::write(dir.join("t.csv"), "prefix,value\n1,\n2,\"two\nlines\"\n3,ok\n").unwrap();
    let text = format!(
        "{}\n[[mtree]]\nname = \"t\"\ntype = \"text\"\nfile = \"t.csv\"\n",
        with_tree("name = \"i\"\ntype = \"int\"\nfile = \"i.csv\"")
    );
    let errs = errors_in(&text, &origin);
    assert_eq!(
        csv_errors(&errs, &dir.join("i.csv")),
        [
            (2, Some(1), "the value \"ten\" is not a whole number".to_string()),
            (3, Some(2), "the value is empty: an int tree needs a whole number".to_string()),
            (4, Some(3), "the value \"99999999999999999999\" is not a whole number".to_string()),
        ]
    );
    assert_eq!(
        csv_errors(&errs, &dir.join("t.csv")),
        [
            (2, Some(1), "the value \"\" must be non-empty text on one line".to_string()),
            (3, Some(2), "the value \"two\\nlines\" must be non-empty text on one line".to_string()),
        ]
    );
    assert_eq!(errs.len(), 5, "{}", Errors(errs.clone()));
}

#[test]
fn several_errors_reported_together() {
    let text = format!(
        "{}\n[[mtree]]\nname = \"b\"\ntype = \"sets\"\nentries = [{{ prefix = \"x\", value = \"3\" }}]\n",
        with_tree("name = \"a\"\ntype = \"txt\"\nalphabet = \"11\"\nentries = [{ prefix = \"1\", value = 1 }]")
    );
    let errs = errors(&text);
    let got: Vec<_> = errs.iter().map(|e| e.line).collect();
    let want = [line_of(&text, "txt"), line_of(&text, "\"11\""), line_of(&text, "\"x\""), line_of(&text, "\"x\"")];
    assert_eq!(got, want, "{}", Errors(errs.clone()));
    assert!(errs[3].message.starts_with("set 3 in \"3\""), "{}", errs[3]);
}

#[test]
fn weighted_set_values() {
    let text = with_tree(
        "name = \"routes\"\ntype = \"sets\"\nentries = [{ prefix = \"49\", value = \"1:70; 2:30\" }, { prefix = \"44\", value = \"2;1\" }]",
    );
    let c = ok(&text, Path::new("t.toml"));
    assert_eq!(c.mtrees[0].entries[0].value, MtreeValue::WeightedSets(vec![(1, 70), (2, 30)]));
    assert_eq!(c.mtrees[0].entries[1].value, MtreeValue::Sets(vec![2, 1]));
    for (value, message) in [
        ("1:70;2", "give every set a weight"),
        ("1;2:30", "give every set a weight"),
        ("1:0;2:5", "weight \\\"0\\\" of \\\"1:0\\\" must be a whole number 1-1000000"),
        ("1:x", "must be a whole number"),
        ("1:5;1:5", "set 1 is listed twice"),
        ("9:5", "there is no dispatcher set with id 9"),
    ] {
        let text = with_tree(&format!(
            "name = \"routes\"\ntype = \"sets\"\nentries = [{{ prefix = \"49\", value = \"{value}\" }}]"
        ));
        let errs = errors(&text);
        assert!(errs.iter().any(|e| e.message.contains(&message.replace("\\\"", "\""))), "{value}: {errs:?}");
    }
}
