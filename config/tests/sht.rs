//! htables in routes: `$sht(table=>key)`, `exists $sht(...)`, `sht_set`, `sht_inc` and
//! `sht_delete` parse into the AST, and mistakes are reported at the right place.

use std::path::Path;
use std::time::Duration;

use ringsip_config::route::{Action, CmpOp, Expr, Operand, Piece, Pv, Sht, ShtValue, Template};
use ringsip_config::{ConfigError, Errors, parse};

/// The SAFEGUARD ban flow, as in docs/config.md.
const SAFEGUARD: &str = r#"[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080"]

[[htable]]
name = "ipban"
autoexpire = "300s"

[[htable]]
name = "pike"
autoexpire = "2s"

[[route.request]]
name = "banned"
if = "exists $sht(ipban=>$si)"
do = "drop"

[[route.request]]
name = "count"
do = ["sht_inc pike $si"]

[[route.request]]
name = "flood"
if = "$sht(pike=>$si) > 3"
do = ["sht_set ipban $si 1", "drop"]

[[route.request]]
name = "dispatch"
do = ["select 1", "forward"]
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected errors, but this parsed:\n{text}"),
        Err(e) => e.0,
    }
}

/// The only error is `message` at `marker` (1-based line and column of its first occurrence).
#[track_caller]
fn expect_one(text: &str, marker: &str, message: &str) {
    let errs = errors(text);
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(marker).map(|at| (i + 1, l[..at].chars().count() + 1)))
        .unwrap_or_else(|| panic!("marker {marker:?} not in text"));
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let e = &errs[0];
    assert_eq!((e.line, e.col, e.message.as_str()), (line, col, message), "{e}");
}

fn si() -> Template {
    Template(vec![Piece::Pv(Pv::SrcIp)])
}

#[test]
fn the_safeguard_ban_flow_parses() {
    let c = parse(SAFEGUARD, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let rules = &c.routes.request.rules;
    let ipban = Sht { table: "ipban".into(), key: si() };
    let pike = Sht { table: "pike".into(), key: si() };
    assert!(matches!(&rules[0].cond, Some(Expr::ShtExists(s)) if *s == ipban));
    assert_eq!(rules[0].actions, vec![Action::Drop]);
    assert_eq!(rules[1].actions, vec![Action::ShtInc { sht: pike.clone(), by: 1 }]);
    assert!(matches!(&rules[2].cond, Some(Expr::Cmp(Operand::Sht(s), CmpOp::Gt, Operand::Int(3))) if *s == pike));
    assert_eq!(
        rules[2].actions,
        vec![Action::ShtSet { sht: ipban, value: ShtValue::Int(1), expires: None }, Action::Drop]
    );
    assert_eq!(c.htables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ipban", "pike"]);
}

#[test]
fn writes_with_expiry_and_templates() {
    let text = SAFEGUARD.replace(
        r#"do = ["sht_set ipban $si 1", "drop"]"#,
        r#"do = ['sht_set ipban "$si" "flood from $si:$sp" expires 1h', 'sht_delete pike $si', "drop"]"#,
    );
    let c = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let Action::ShtSet { sht, value: ShtValue::Text(v), expires } = &c.routes.request.rules[2].actions[0] else {
        panic!("{:?}", c.routes.request.rules[2].actions)
    };
    assert_eq!(sht.key, si());
    assert_eq!(v.0.len(), 4);
    assert_eq!(*expires, Some(Duration::from_secs(3600)));
    assert_eq!(c.routes.request.rules[2].actions[1], Action::ShtDelete(Sht { table: "pike".into(), key: si() }));
}

#[test]
fn an_unknown_table_in_a_condition_is_reported_at_its_name() {
    let text = SAFEGUARD.replace("exists $sht(ipban=>$si)", "exists $sht(ipbn=>$si)");
    expect_one(&text, "ipbn=>", r#"unknown htable "ipbn" (did you mean "ipban"? htables: ipban, pike)"#);
}

#[test]
fn an_unknown_table_in_an_action_is_reported_at_its_name() {
    let text = SAFEGUARD.replace("sht_inc pike $si", "sht_inc pikes $si");
    expect_one(&text, "pikes", r#"unknown htable "pikes" (did you mean "pike"? htables: ipban, pike)"#);
    let text = SAFEGUARD.replace("sht_set ipban $si 1", "sht_set blocked $si 1");
    expect_one(&text, "blocked", r#"unknown htable "blocked" (htables: ipban, pike)"#);
}

#[test]
fn a_table_without_any_htable_defined() {
    let start = SAFEGUARD.find("[[htable]]").unwrap();
    let end = SAFEGUARD.find("[[route.request]]").unwrap();
    let text = format!("{}{}", &SAFEGUARD[..start], &SAFEGUARD[end..]);
    let errs = errors(&text);
    let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            r#"unknown htable "ipban" (no [[htable]] is defined; add one with name = "ipban")"#,
            r#"unknown htable "pike" (no [[htable]] is defined; add one with name = "pike")"#,
            r#"unknown htable "pike" (no [[htable]] is defined; add one with name = "pike")"#,
            r#"unknown htable "ipban" (no [[htable]] is defined; add one with name = "ipban")"#,
        ],
        "{}",
        Errors(errs.clone())
    );
}

#[test]
fn unknown_tables_are_not_reported_when_a_table_name_could_not_be_read() {
    // the unnamed table may be the one the route means: only its own error is reported
    let text = SAFEGUARD.replace("[[htable]]\nname = \"pike\"\n", "[[htable]]\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.contains("needs a `name`"), "{}", errs[0]);
}

#[test]
fn sht_in_a_header_value_is_refused() {
    let text = SAFEGUARD.replace(
        r#"do = ["select 1", "forward"]"#,
        r#"do = ['set_header X-Ban "banned: $sht(ipban=>$si)"', "select 1", "forward"]"#,
    );
    expect_one(
        &text,
        "$sht(ipban=>$si)\"'",
        "$sht(...) cannot be used here: htables are read in conditions (exists $sht(ipban=>$si), $sht(pike=>$si) > 10), not inside a quoted value, an htable key or hash_pv",
    );
}

#[test]
fn sht_syntax_errors_point_into_the_string() {
    let text = SAFEGUARD.replace("$sht(pike=>$si) > 3", "$sht(pike=>) > 3");
    expect_one(&text, ") > 3", "$sht(pike=>...) needs a key after =>, like $sht(pike=>$si)");
    let text = SAFEGUARD.replace("sht_set ipban $si 1", "sht_set ipban $si banned");
    expect_one(&text, "banned\", ", "put text values in quotes: sht_set ipban $si \"banned\"");
    let text = SAFEGUARD.replace("sht_set ipban $si 1", "sht_set ipban $si 1 expires 90");
    expect_one(&text, "90\"", "expires: duration \"90\" needs a unit: \"90s\" or \"90ms\" (units: ms, s, m, h)");
}

#[test]
fn reply_pseudo_variables_in_a_key_are_checked_like_elsewhere() {
    let text = SAFEGUARD.replace("sht_inc pike $si", "sht_inc pike '$rs'");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.starts_with("$rs is only set on replies"), "{}", errs[0]);
    // in the reply route an htable may be read and written
    let text = format!(
        "{SAFEGUARD}\n[[route.reply]]\nif = \"$rs >= 500 and exists $sht(pike=>$si)\"\ndo = ['sht_inc pike \"$si-$rs\" 10']\n"
    );
    parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
}
