//! `[[acl]]`: named address groups read from inline entries and CSV files, `$si in acl NAME`
//! in routes, and every mistake in them reported at the right place.

use std::path::{Path, PathBuf};

mod common;
use common::*;
use ringsip_config::route::{Cidr, Expr};
use ringsip_config::{AclEntry, ConfigError, Errors};

/// A valid config; the tests add `[[acl]]` groups.
const BASE: &str = r#"[server]
listen = ["udp:127.0.0.1:5060"]

[[route.request]]
do = "forward"
"#;

fn with_group(group: &str) -> String {
    format!("{BASE}\n[[acl]]\n{group}\n")
}

fn dir(name: &str) -> PathBuf {
    common::dir("ringsip-config-acl", name)
}

/// The text has exactly one error: this message at `marker`'s position on the line of
/// `line_marker`.
#[track_caller]
fn expect(text: &str, line_marker: &str, marker: &str, message: &str) {
    let errs = errors(text);
    expect_in(&errs, line_of(text, line_marker), col_on(text, line_marker, marker), message);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
}

fn entry(net: &str, len: u8, port: Option<u16>, origin: String) -> AclEntry {
    AclEntry { net: Cidr { addr: net.parse().unwrap(), len }, port, origin }
}

#[test]
fn groups_with_entries_and_a_file() {
    let dir = dir("good");
    std::fs::write(
        dir.join("carriers.csv"),
        "# carrier signalling addresses\naddress,port,comment\n198.51.100.0/24,,carrier A\n\n 203.0.113.7 , 5080 , carrier B \n# more\n2001:db8:1::/48,,\n[2001:db8:2::1]:5070,,v6 with a port\n192.0.2.77:5062,,\n",
    )
    .unwrap();
    std::fs::write(dir.join("plain.csv"), "address\n192.0.2.200\n").unwrap();
    let text = format!(
        r#"{BASE}
[[route.request]]
if = "$si in acl trusted or $si in acl carriers"
do = "forward"

[[acl]]
name = "trusted"
entries = [
  "10.0.0.0/8",
  "192.0.2.10",
  "192.0.2.11:5060",
  "10.0.0.0/8:5070",
  "2001:db8::/32",
  "[2001:db8::1]:5060",
  "[2001:db8:ab::]/48:5061",
]

[[acl]]
name = "carriers"
file = "carriers.csv"
entries = ["0.0.0.0/0:5099"]

[[acl]]
name = "plain"
file = "plain.csv"
"#
    );
    let path = dir.join("ringsip.toml");
    std::fs::write(&path, &text).unwrap();
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let at = |marker: &str| format!("ringsip.toml:{}:{}", line_of(&text, marker), col_on(&text, marker, "\""));

    assert_eq!(c.acls.len(), 3);
    let trusted = &c.acls[0];
    assert_eq!(trusted.name, "trusted");
    assert_eq!(
        trusted.entries,
        [
            entry("10.0.0.0", 8, None, at("\"10.0.0.0/8\",")),
            entry("192.0.2.10", 32, None, at("\"192.0.2.10\"")),
            entry("192.0.2.11", 32, Some(5060), at("192.0.2.11:5060")),
            entry("10.0.0.0", 8, Some(5070), at("10.0.0.0/8:5070")),
            entry("2001:db8::", 32, None, at("2001:db8::/32")),
            entry("2001:db8::1", 128, Some(5060), at("[2001:db8::1]")),
            entry("2001:db8:ab::", 48, Some(5061), at("2001:db8:ab::")),
        ]
    );
    let carriers = &c.acls[1];
    assert_eq!(carriers.name, "carriers");
    assert_eq!(
        carriers.entries,
        [
            entry("0.0.0.0", 0, Some(5099), at("0.0.0.0/0:5099")),
            entry("198.51.100.0", 24, None, "carriers.csv row 1".into()),
            entry("203.0.113.7", 32, Some(5080), "carriers.csv row 2".into()),
            entry("2001:db8:1::", 48, None, "carriers.csv row 3".into()),
            entry("2001:db8:2::1", 128, Some(5070), "carriers.csv row 4".into()),
            entry("192.0.2.77", 32, Some(5062), "carriers.csv row 5".into()),
        ]
    );
    assert_eq!(c.acls[2].entries, [entry("192.0.2.200", 32, None, "plain.csv row 1".into())]);

    let cond = c.routes.request.rules[1].cond.as_ref().unwrap();
    let Expr::Or(a, b) = cond else { panic!("{cond:?}") };
    assert!(matches!((&**a, &**b), (Expr::InAcl(x), Expr::InAcl(y)) if x == "trusted" && y == "carriers"));
}

#[test]
fn no_acl_and_empty_groups_are_fine() {
    assert!(ok(BASE, Path::new("t.toml")).acls.is_empty());
    let c = ok(&with_group("name = \"later\"\nentries = []"), Path::new("t.toml"));
    assert_eq!((c.acls[0].name.as_str(), c.acls[0].entries.len()), ("later", 0));
    let dir = dir("header-only");
    std::fs::write(dir.join("a.csv"), "address,port\n# nothing yet\n").unwrap();
    let c = ok(&with_group("name = \"t\"\nfile = \"a.csv\""), &dir.join("ringsip.toml"));
    assert!(c.acls[0].entries.is_empty());
}

#[test]
fn unknown_keys() {
    let text = with_group("name = \"a\"\nentris = [\"10.0.0.0/8\"]\nfile = \"x.csv\"\nports = 5060");
    let dir = dir("unknown-keys");
    std::fs::write(dir.join("x.csv"), "address\n192.0.2.1\n").unwrap();
    let errs = errors_in(&text, &dir.join("t.toml"));
    let at = |e: &ConfigError| (e.line, e.col, e.message.clone());
    assert_eq!(
        errs.iter().map(at).collect::<Vec<_>>(),
        [
            (
                line_of(&text, "entris"),
                1,
                "unknown key \"entris\" in [[acl]] (did you mean \"entries\"? allowed: name, entries, file)"
                    .to_string()
            ),
            (line_of(&text, "ports"), 1, "unknown key \"ports\" in [[acl]] (allowed: name, entries, file)".to_string()),
        ]
    );

    let text = format!("{BASE}\n[[acls]]\nname = \"a\"\n");
    expect(
        &text,
        "[[acls]]",
        "acls",
        "unknown key \"acls\" in the top level (did you mean \"acl\"? allowed: server, dispatcher, mtree, htable, acl, route, transactions, media, pike)",
    );
}

#[test]
fn names() {
    let text = with_group("entries = [\"10.0.0.0/8\"]");
    expect(&text, "[[acl]]", "[", "[[acl]] needs a `name` (the name routes use), like name = \"trusted\"");

    for name in ["1st", "trusted peers", "", "a.b"] {
        let text = with_group(&format!("name = \"{name}\"\nentries = []"));
        expect(
            &text,
            "name =",
            "\"",
            &format!("acl name \"{name}\" must start with a letter and have only letters, digits, _ and -"),
        );
    }

    let text =
        format!("{}\n[[acl]]\nname = \"a\"\nentries = [\"10.0.0.1\"]\n", with_group("name = \"a\"\nentries = []"));
    let second = text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "name = \"a\"").unwrap() + 1;
    let first = line_of(&text, "name = \"a\"");
    let errs = errors(&text);
    expect_in(&errs, second, 8, &format!("duplicate acl name \"a\" (already used at line {first})"));
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));

    let text = with_group("name = 5\nentries = []");
    expect(&text, "name = 5", "5", "acl name must be a string, not the integer 5");
}

#[test]
fn a_group_needs_entries_or_a_file() {
    let text = with_group("name = \"trusted\"");
    expect(
        &text,
        "[[acl]]",
        "[",
        "acl \"trusted\" needs `entries` and/or `file`: the addresses of the group, like entries = [\"192.0.2.10\", \"10.0.0.0/8\"]",
    );
}

#[test]
fn not_an_array_of_tables() {
    let text = format!("acl = 5\n{BASE}");
    expect(&text, "acl = 5", "5", "acl must be an array of tables: write each one under [[acl]]");
}

#[test]
fn wrong_types() {
    let cases = [
        ("entries = \"10.0.0.0/8\"", "\"", "acl entries must be an array, not the string \"10.0.0.0/8\""),
        ("entries = [10]", "10", "an acl entry must be a string, not the integer 10"),
        ("entries = [{ address = \"10.0.0.1\" }]", "{", "an acl entry must be a string, not a table"),
        ("file = 5", "5", "acl file must be a string, not the integer 5"),
    ];
    for (line, marker, message) in cases {
        let text = with_group(&format!("name = \"t\"\n{line}"));
        expect(&text, line, marker, message);
    }
}

#[test]
fn bad_entries_all_in_one_run() {
    let text = with_group(
        r#"name = "t"
entries = [
  "10.1.2.3/8",
  "2001:db8::1/32",
  "192.0.2.10:0",
  "192.0.2.10:65536",
  "[2001:db8::1]:sip",
  "192.0.2.10:",
  "10.0.0.0/33",
  "gw.example.com",
  "",
  "[2001:db8::1",
  "[192.0.2.1]:5060",
  "10.1.2.3/8:5060",
  "2001:db8::/32:5060",
]"#,
    );
    let errs = errors(&text);
    let like =
        "like 192.0.2.10, 10.0.0.0/8 or 2001:db8::/32, optionally with a port: 192.0.2.10:5060, [2001:db8::1]:5060";
    let cases = [
        ("\"10.1.2.3/8\"", "10.1.2.3/8 has host bits set: did you mean 10.0.0.0/8?".to_string()),
        ("2001:db8::1/32", "2001:db8::1/32 has host bits set: did you mean 2001:db8::/32?".to_string()),
        ("192.0.2.10:0", "port 0 is out of range (1-65535)".to_string()),
        ("192.0.2.10:65536", "port 65536 is out of range (1-65535)".to_string()),
        (":sip", "\"sip\" is not a port (a number 1-65535)".to_string()),
        ("\"192.0.2.10:\"", "the port is missing after \":\" (1-65535)".to_string()),
        ("10.0.0.0/33", "prefix length \"33\" in \"10.0.0.0/33\" is out of range (0-32)".to_string()),
        ("gw.example", format!("\"gw.example.com\" is not an IP address or network ({like})")),
        ("\"\"", format!("the address is empty: give an address or a network, {like}")),
        (
            "\"[2001:db8::1\"",
            "\"[2001:db8::1\" has no closing ]: write IPv6 addresses with a port as [2001:db8::1]:5060".to_string(),
        ),
        (
            "[192.0.2.1]",
            "\"[192.0.2.1]:5060\": brackets are for IPv6 addresses; write IPv4 ones without them, like 192.0.2.10:5060"
                .to_string(),
        ),
        (
            "\"2001:db8::/32:5060",
            "\"2001:db8::/32:5060\": an IPv6 network with a port goes in brackets, like [2001:db8::]/32:5060"
                .to_string(),
        ),
    ];
    for (marker, message) in &cases {
        expect_in(&errs, line_of(&text, marker), 3, message);
    }
    // the same mistake twice: both reported, each at its line
    let host_bits: Vec<_> = errs
        .iter()
        .filter(|e| e.message == "10.1.2.3/8 has host bits set: did you mean 10.0.0.0/8?")
        .map(|e| (e.line, e.col))
        .collect();
    assert_eq!(host_bits, [(line_of(&text, "\"10.1.2.3/8\""), 3), (line_of(&text, "10.1.2.3/8:5060"), 3)]);
    assert_eq!(errs.len(), cases.len() + 1, "{}", Errors(errs.clone()));
}

#[test]
fn duplicate_entries_name_the_first_place() {
    let dir = dir("dup");
    std::fs::write(dir.join("a.csv"), "address,port\n10.0.0.0/8,\n192.0.2.1,5060\n192.0.2.1:5060,\n192.0.2.1,5061\n")
        .unwrap();
    let text = with_group(
        "name = \"peers\"\nfile = \"a.csv\"\nentries = [\n  \"10.0.0.0/8\",\n  \"[2001:db8::1]:5060\",\n  \"[2001:db8::1]:5060\",\n  \"192.0.2.1\",\n]",
    );
    let origin = dir.join("ringsip.toml");
    let errs = errors_in(&text, &origin);
    let first = line_of(&text, "[2001:db8::1]:5060");
    let e = &errs[0];
    assert_eq!((e.file.as_path(), e.line, e.col, e.row), (origin.as_path(), first + 1, 3, None), "{e}");
    assert_eq!(
        e.message,
        format!(
            "acl \"peers\" has [2001:db8::1]:5060 twice: at ringsip.toml:{first}:3 and at ringsip.toml:{}:3",
            first + 1
        )
    );
    let ten = line_of(&text, "\"10.0.0.0/8\"");
    assert_eq!(
        csv_errors(&errs, &dir.join("a.csv")),
        [
            (2, Some(1), format!("acl \"peers\" has 10.0.0.0/8 twice: at ringsip.toml:{ten}:3 and at a.csv row 1")),
            (4, Some(3), "acl \"peers\" has 192.0.2.1:5060 twice: at a.csv row 2 and at a.csv row 3".to_string()),
        ]
    );
    // 192.0.2.1 (any port) and 192.0.2.1:5061 are different entries
    assert_eq!(errs.len(), 3, "{}", Errors(errs.clone()));
}

#[test]
fn csv_missing_file() {
    let dir = dir("missing");
    let _ = std::fs::remove_file(dir.join("gone.csv"));
    let origin = dir.join("ringsip.toml");
    let text = with_group("name = \"m\"\nfile = \"gone.csv\"");
    let errs = errors_in(&text, &origin);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let e = &errs[0];
    assert_eq!((e.file.as_path(), e.line, e.col), (origin.as_path(), line_of(&text, "gone.csv"), 8));
    let want = format!("cannot read acl file \"gone.csv\" (looked for {}): ", dir.join("gone.csv").display());
    assert!(e.message.starts_with(&want), "{e}");
}

#[test]
fn csv_bad_header() {
    let dir = dir("header");
    let csv = dir.join("h.csv");
    let text = with_group("name = \"h\"\nfile = \"h.csv\"");
    let origin = dir.join("ringsip.toml");
    let one = |contents: &str| {
        std::fs::write(&csv, contents).unwrap();
        let errs = errors_in(&text, &origin);
        csv_errors(&errs, &csv)
    };
    assert_eq!(
        one("adress,port\n10.0.0.1,5060\n"),
        [(
            1,
            None,
            "unknown column \"adress\" in the header row (did you mean \"address\"? columns: address, port, comment)"
                .to_string()
        )]
    );
    assert_eq!(
        one("# peers\naddress,address\n10.0.0.1,10.0.0.2\n"),
        [(2, None, "column \"address\" appears twice in the header row".to_string())]
    );
    assert_eq!(
        one("port,comment\n5060,x\n"),
        [(
            1,
            None,
            "the header row needs the column address (port and comment are optional); found \"port,comment\""
                .to_string()
        )]
    );
    assert_eq!(
        one(""),
        [(
            1,
            None,
            "the file is empty: it needs a header row naming the columns (address and optionally port and comment)"
                .to_string()
        )]
    );
}

#[test]
fn csv_bad_rows_all_in_one_run() {
    let dir = dir("rows");
    let csv = dir.join("r.csv");
    std::fs::write(
        &csv,
        "address,port,comment\n10.1.0.0/8,,host bits\n192.0.2.1,0,\n# a comment line\n192.0.2.2,http,\n192.0.2.3:5060,5061,\n192.0.2.4\n,,empty\nnot-an-ip,,\n192.0.2.5,5060,ok\n",
    )
    .unwrap();
    let text = with_group("name = \"r\"\nfile = \"r.csv\"");
    let errs = errors_in(&text, &dir.join("ringsip.toml"));
    let like =
        "like 192.0.2.10, 10.0.0.0/8 or 2001:db8::/32, optionally with a port: 192.0.2.10:5060, [2001:db8::1]:5060";
    assert_eq!(
        csv_errors(&errs, &csv),
        [
            (2, Some(1), "10.1.0.0/8 has host bits set: did you mean 10.0.0.0/8?".to_string()),
            (3, Some(2), "port 0 is out of range (1-65535)".to_string()),
            (5, Some(3), "\"http\" is not a port (a number 1-65535)".to_string()),
            (
                6,
                Some(4),
                "the port is given twice: in the address \"192.0.2.3:5060\" and in the port column (leave one out)"
                    .to_string()
            ),
            (7, Some(5), "this row has 1 field but the header row names 3 (address, port, comment)".to_string()),
            (8, Some(6), format!("the address is empty: give an address or a network, {like}")),
            (9, Some(7), format!("\"not-an-ip\" is not an IP address or network ({like})")),
        ]
    );
    assert_eq!(errs.len(), 7, "{}", Errors(errs.clone()));
    let e = errs.iter().find(|e| e.row == Some(2)).unwrap();
    assert_eq!(e.to_string(), format!("{}:3:1: row 2: port 0 is out of range (1-65535)", csv.display()));
}

#[test]
fn routes_use_known_groups() {
    let groups = "\n[[acl]]\nname = \"trusted\"\nentries = [\"10.0.0.0/8\"]\n[[acl]]\nname = \"carriers\"\nentries = [\"192.0.2.0/24\"]\n";
    let text = format!(
        "{BASE}\n[[route.request]]\nif = \"not $si in acl trustd\"\ndo = \"drop\"\n[[route.request]]\nif = \"$si in acl peers\"\ndo = \"drop\"\n{groups}"
    );
    let errs = errors(&text);
    expect_in(
        &errs,
        line_of(&text, "trustd"),
        col_on(&text, "trustd", "trustd"),
        "unknown acl group \"trustd\" (did you mean \"trusted\"? acl groups: carriers, trusted)",
    );
    expect_in(
        &errs,
        line_of(&text, "acl peers"),
        col_on(&text, "acl peers", "peers"),
        "unknown acl group \"peers\" (acl groups: carriers, trusted)",
    );
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));

    let text = format!("{BASE}\n[[route.request]]\nif = \"$si in acl trusted\"\ndo = \"drop\"\n");
    expect(
        &text,
        "acl trusted",
        "trusted",
        "unknown acl group \"trusted\" (no [[acl]] is defined; add one with name = \"trusted\")",
    );

    // a group with errors is still known by name: only its own errors are reported
    let text = format!(
        "{BASE}\n[[route.request]]\nif = \"$si in acl trusted\"\ndo = \"drop\"\n[[acl]]\nname = \"trusted\"\nentries = [\"10.0.0.1/8\"]\n"
    );
    expect(&text, "10.0.0.1/8", "\"", "10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?");

    // a group whose name cannot be read: unknown names are not reported
    let text = format!(
        "{BASE}\n[[route.request]]\nif = \"$si in acl trusted\"\ndo = \"drop\"\n[[acl]]\nname = 5\nentries = []\n"
    );
    expect(&text, "name = 5", "5", "acl name must be a string, not the integer 5");
}

#[test]
fn only_the_source_address_is_matched() {
    let groups = "\n[[acl]]\nname = \"trusted\"\nentries = [\"10.0.0.0/8\"]\n";
    for (cond, marker) in [("$Ri in acl trusted", "$Ri"), ("$rm == INVITE and $fd in acl trusted", "$fd")] {
        let text = format!("{BASE}\n[[route.request]]\nif = \"{cond}\"\ndo = \"drop\"\n{groups}");
        expect(&text, "if =", marker, "acl groups match the source address: write $si in acl NAME");
    }
    let text = format!("{BASE}\n[[route.request]]\nif = \"$si in acl\"\ndo = \"drop\"\n{groups}");
    let errs = errors(&text);
    // at the end of the condition: the closing quote
    let col = "if = \"$si in acl\"".len();
    expect_in(&errs, line_of(&text, "if ="), col, "`in acl` needs a group name: $si in acl trusted");
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
}
