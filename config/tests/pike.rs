//! Flood detection in the config: the `[pike]` section and the `flooding` condition, which
//! needs it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{errors, expect_one, ok};
use ringsip_config::route::Expr;
use ringsip_config::{Config, Errors, Pike};

const SERVER: &str = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n";
const ROUTE: &str = "\n[[route.request]]\nif = \"flooding\"\ndo = \"drop\"\n\n[[route.request]]\ndo = \"forward \\\"udp:127.0.0.1:5080\\\"\"\n";

fn with_pike(body: &str) -> String {
    format!("{SERVER}\n[pike]\n{body}\n{ROUTE}")
}

fn parse(text: &str) -> Config {
    ok(text, Path::new("t.toml"))
}

#[test]
fn a_full_section_and_the_defaults() {
    let c = parse(&with_pike("window = \"500ms\"\nlimit = 50\nmax_sources = 20000"));
    assert_eq!(c.pike, Some(Pike { window: Duration::from_millis(500), limit: 50, max_sources: 20_000 }));
    assert_eq!(
        c.pike.unwrap().to_string(),
        "more than 50 requests per 500ms from one source, at most 20000 sources tracked"
    );
    assert!(matches!(c.routes.request.rules[0].cond, Some(Expr::Flooding)));
    let c = parse(&with_pike("limit = 200"));
    assert_eq!(c.pike, Some(Pike { window: Duration::from_secs(2), limit: 200, max_sources: 1_000_000 }));
}

#[test]
fn section_errors_name_the_key() {
    let t = with_pike("window = \"2s\"");
    let errs = errors(&t);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.contains("[pike] needs `limit`"), "{}", errs[0].message);
    let t = with_pike("window = \"90s\"\nlimit = 10");
    expect_one(&t, "window", "\"90s\"", "pike.window \"90s\" is out of range (100ms to 60s)");
    let t = with_pike("window = 2\nlimit = 10");
    expect_one(&t, "window", "2", "pike.window = 2 needs a unit, like \"2s\"");
    let t = with_pike("limit = 0");
    expect_one(&t, "limit", "0", "pike.limit = 0 is out of range (1 to 1000000)");
    let t = with_pike("limit = 10\nmax_source = 5000");
    expect_one(
        &t,
        "max_source",
        "max_source",
        "unknown key \"max_source\" in [pike] (did you mean \"max_sources\"? allowed: window, limit, max_sources)",
    );
}

#[test]
fn flooding_needs_the_section() {
    let t = format!("{SERVER}{ROUTE}");
    expect_one(
        &t,
        "flooding",
        "flooding",
        "flooding needs a [pike] section (how many requests per window one source may send: [pike] limit = 200)",
    );
}
