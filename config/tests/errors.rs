//! Every class of mistake gives the right message at the right place.

use std::path::{Path, PathBuf};

use ringsip_config::{ConfigError, Errors, parse};

/// A valid config the tests change one piece of.
const BASE: &str = r#"[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080"]

[[route.request]]
do = ["select 1", "forward"]
"#;

fn errors_in(text: &str, origin: &Path) -> Vec<ConfigError> {
    match parse(text, origin) {
        Ok(_) => panic!("expected errors, but this parsed:\n{text}"),
        Err(e) => {
            assert!(!e.0.is_empty(), "Errors must never be empty");
            e.0
        }
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    errors_in(text, Path::new("t.toml"))
}

/// 1-based line of the first line containing `marker`.
fn line_of(text: &str, marker: &str) -> usize {
    text.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("marker {marker:?} not in text")) + 1
}

/// The error on the line of `marker` whose message contains `needle`.
#[track_caller]
fn expect(text: &str, marker: &str, needle: &str) -> ConfigError {
    let errs = errors(text);
    let line = line_of(text, marker);
    errs.iter().find(|e| e.line == line && e.message.contains(needle)).cloned().unwrap_or_else(|| {
        panic!("no error on line {line} containing {needle:?}; got:\n{}\n--- in:\n{text}", Errors(errs.clone()))
    })
}

/// Column (1-based) of `marker` on its line.
fn col_of(text: &str, marker: &str) -> usize {
    let line = text.lines().find(|l| l.contains(marker)).unwrap();
    line[..line.find(marker).unwrap()].chars().count() + 1
}

/// Column (1-based) of `marker` on the first line containing `line_marker`.
fn col_on(text: &str, line_marker: &str, marker: &str) -> usize {
    let line = text.lines().find(|l| l.contains(line_marker)).unwrap();
    line[..line.find(marker).unwrap()].chars().count() + 1
}

fn with_server(extra: &str) -> String {
    BASE.replace("listen = [\"udp:127.0.0.1:5060\"]\n", &format!("listen = [\"udp:127.0.0.1:5060\"]\n{extra}\n"))
}

fn with_set(extra: &str) -> String {
    format!("{BASE}\n[[dispatcher.set]]\n{extra}\n")
}

fn with_rules(extra: &str) -> String {
    format!("{BASE}\n{extra}\n")
}

#[test]
fn base_is_valid() {
    parse(BASE, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unknown_key_top_level() {
    let text = format!("{BASE}\n[logging]\nlevel = 1\n");
    let e = expect(&text, "[logging]", "unknown key \"logging\"");
    assert!(e.message.contains("allowed: server, dispatcher, mtree, htable, acl, route"), "{}", e.message);
    assert_eq!(e.col, 2);
}

#[test]
fn unknown_key_nested() {
    let text = with_server("lisen_backlog = 5");
    let e = expect(&text, "lisen_backlog", "unknown key \"lisen_backlog\" in [server]");
    assert!(e.message.contains("allowed: listen, advertise,"), "{}", e.message);
    assert_eq!(e.col, 1);

    let text = with_server("contol_socket = \"/tmp/x\"");
    expect(&text, "contol_socket", "did you mean \"control_socket\"?");

    let text = with_set("id = 2\nalgorithm = 4\ndestinations = [\"sip:10.0.0.1\"]\nprobe = { intervall = \"1s\" }");
    let e = expect(&text, "intervall", "unknown key \"intervall\"");
    assert!(e.message.contains("did you mean \"interval\"?"), "{}", e.message);
    assert_eq!(e.col, col_of(&text, "intervall"));

    let text = with_set("id = 2\nalgorithm = 4\ndestinations = [{ uri = \"sip:10.0.0.1\", wieght = 2 }]");
    expect(&text, "wieght", "unknown key \"wieght\" in a destination (did you mean \"weight\"?");

    let text = with_set("id = 2\nalgorithm = 4\ndestinations = [\"sip:10.0.0.1\"]\ncolor = \"red\"");
    expect(&text, "color", "unknown key \"color\" in [[dispatcher.set]]");

    let text = with_rules("[[route.request]]\ndo = \"forward\"\nthen = \"drop\"");
    expect(&text, "then =", "unknown key \"then\" in [[route.request]] (allowed: name, if, do)");
}

#[test]
fn wrong_types() {
    let text = BASE.replace("listen = [\"udp:127.0.0.1:5060\"]", "listen = 5060");
    expect(&text, "listen = 5060", "server.listen must be an array, not the integer 5060");

    let text = with_server("batch = \"64\"");
    expect(&text, "batch =", "server.batch must be an integer, not the string \"64\"");

    let text = BASE.replace("id = 1", "id = \"one\"");
    expect(&text, "id = \"one\"", "set id must be an integer");

    let text = BASE.replace("do = [\"select 1\", \"forward\"]", "do = 42");
    expect(&text, "do = 42", "`do` must be an action string or a list of them, not the integer 42");

    let text = with_server("log = true");
    expect(&text, "log = true", "server.log must be a string, not the boolean true");

    let text = BASE.replace("[[route.request]]", "[route.request]");
    expect(&text, "[route.request]", "write each rule under [[route.request]] (double brackets)");
}

#[test]
fn bad_listen() {
    for (listen, needle) in [
        ("tcp:127.0.0.1:5060", "tcp is not supported yet"),
        ("tls:127.0.0.1:5061", "tls is not supported yet"),
        ("udp:sip.example.com:5060", "is a host name; listen needs an IP address"),
        ("udp:127.0.0.1", "needs a port"),
        ("udp:127.0.0.1:0", "port 0 out of range"),
        ("udp:127.0.0.1:65536", "port 65536 out of range"),
        ("127.0.0.1:5060", "must start with a transport"),
        ("udp:::1:5060", "goes in brackets"),
    ] {
        let text = BASE.replace("udp:127.0.0.1:5060", listen);
        let e = expect(&text, "listen =", needle);
        assert_eq!(e.col, 11, "{listen}: {e}");
    }
    let text = BASE.replace("udp:127.0.0.1:5060", "udp:[2001:db8::1]:5060");
    let c = parse(&text, Path::new("t.toml")).unwrap();
    assert_eq!(c.server.listen[0].addr, "[2001:db8::1]:5060".parse::<std::net::SocketAddr>().unwrap());
    assert_eq!(c.dispatcher.sets[0].probe.from, "sip:ringsip@[2001:db8::1]");
}

#[test]
fn duplicate_listen() {
    let text = BASE.replace(
        "listen = [\"udp:127.0.0.1:5060\"]",
        "listen = [\n  \"udp:127.0.0.1:5060\",\n  \"udp:10.0.0.1:5060\",\n  \"udp:127.0.0.1:5060\", # again\n]",
    );
    let e = expect(&text, "# again", "duplicate listen address 127.0.0.1:5060");
    assert!(e.message.contains(&format!("already at line {}", line_of(&text, "udp:127.0.0.1:5060"))), "{e}");
    assert_eq!(errors(&text).len(), 1);
}

#[test]
fn host_name_in_destination() {
    let text = BASE.replace("sip:127.0.0.1:5080", "sip:gw1.example.com:5080");
    let e = expect(
        &text,
        "gw1.example.com",
        "host names need DNS, which ringsip does not do on the hot path; use an IP address",
    );
    assert_eq!(e.col, col_of(&text, "\"sip:gw1"));
    for (uri, needle) in [
        ("sips:127.0.0.1", "sips needs TLS"),
        ("tel:+15551234567", "tel URI"),
        ("sip:127.0.0.1;transport=tcp", "transport=tcp is not supported yet"),
        ("sip:alice@127.0.0.1", "without a user part"),
    ] {
        let text = BASE.replace("sip:127.0.0.1:5080", uri);
        expect(&text, "destinations =", needle);
    }
}

#[test]
fn bad_port() {
    let text = BASE.replace("sip:127.0.0.1:5080", "sip:127.0.0.1:70000");
    let e = expect(&text, "destinations =", "port 70000 out of range (1-65535)");
    assert_eq!(
        e.to_string(),
        format!("t.toml:{}:17: \"sip:127.0.0.1:70000\": port 70000 out of range (1-65535)", e.line)
    );
}

#[test]
fn unknown_algorithm() {
    let text = BASE.replace("\"round-robin\"", "\"round-robbin\"");
    let e = expect(&text, "round-robbin", "unknown algorithm");
    assert_eq!(e.message, "unknown algorithm \"round-robbin\" (expected a name like \"round-robin\" or a number 0-11)");
    assert_eq!((e.line, e.col), (6, 13));
    assert_eq!(
        e.to_string(),
        "t.toml:6:13: unknown algorithm \"round-robbin\" (expected a name like \"round-robin\" or a number 0-11)"
    );

    let text = BASE.replace("\"round-robin\"", "\"fastest\"");
    expect(&text, "fastest", "expected one of hash-callid, hash-from,");
    let text = BASE.replace("\"round-robin\"", "14");
    expect(&text, "algorithm = 14", "unknown algorithm 14");
    let text = BASE.replace("\"round-robin\"", "[4]");
    expect(&text, "algorithm = [4]", "algorithm must be a name like \"round-robin\" or a number 0-11, not an array");
}

#[test]
fn algorithm_numbers_and_names() {
    for (alg, num) in [
        ("\"hash-callid\"", 0),
        ("1", 1),
        ("\"hash-to\"", 2),
        ("\"hash-ruri-user\"", 3),
        ("4", 4),
        ("\"hash-auth-user\"", 5),
        ("\"random\"", 6),
        ("\"priority\"", 8),
        ("\"relative-weight\"", 11),
        ("\"11\"", 11),
    ] {
        let text = BASE.replace("\"round-robin\"", alg);
        let c = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(c.dispatcher.sets[0].algorithm.number(), num, "{alg}");
        let a = c.dispatcher.sets[0].algorithm;
        assert_eq!(ringsip_config::Algorithm::from_name(a.name()), Some(a));
    }
}

#[test]
fn algorithms_ringsip_does_not_have_say_what_to_do_instead() {
    let text = BASE.replace("\"round-robin\"", "10");
    let e = expect(&text, "algorithm = 10", "algorithm 10 (call load) is not available yet");
    assert_eq!(e.col, 13);
    let text = BASE.replace("\"round-robin\"", "\"call-load\"");
    expect(&text, "call-load", "algorithm 10 (call load) is not available yet");
    let text = BASE.replace("\"round-robin\"", "12");
    expect(&text, "algorithm = 12", "algorithm 12 (parallel forking to every destination) is the `fork` action");
    let text = BASE.replace("\"round-robin\"", "13");
    expect(&text, "algorithm = 13", "algorithm 13 (latency-optimized)");
}

#[test]
fn hash_pv_missing_and_extra() {
    let text = BASE.replace("\"round-robin\"", "\"hash-pv\"");
    expect(&text, "hash-pv", "algorithm hash-pv (7) needs hash_pv");
    let text = BASE.replace("\"round-robin\"", "7");
    expect(&text, "algorithm = 7", "needs hash_pv");

    let text =
        BASE.replace("algorithm = \"round-robin\"", "algorithm = \"round-robin\"\nhash_pv = \"$hdr(X-Account)\"");
    let e = expect(&text, "hash_pv", "hash_pv is only used by algorithm hash-pv (7); set 1 uses round-robin (4)");
    assert_eq!(e.col, 1);

    let text = BASE.replace("algorithm = \"round-robin\"", "algorithm = \"hash-pv\"\nhash_pv = \"$hdr(X-Account)\"");
    let c = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dispatcher.sets[0].hash_pv, Some(ringsip_config::route::Pv::Hdr("X-Account".into())));

    let text = BASE.replace("algorithm = \"round-robin\"", "algorithm = \"hash-pv\"\nhash_pv = \"$hdr(X-Account) x\"");
    expect(&text, "hash_pv", "nothing after it");
    let text = BASE.replace("algorithm = \"round-robin\"", "algorithm = \"hash-pv\"\nhash_pv = \"$foo\"");
    let e = expect(&text, "hash_pv", "unknown pseudo-variable $foo");
    assert_eq!(e.col, col_of(&text, "$foo"));
}

#[test]
fn weights_must_add_up_to_100_for_algorithm_9() {
    let set = "id = 2\nalgorithm = \"weight\"\ndestinations = [\n  { uri = \"sip:10.0.0.1\", weight = 50 },\n  { uri = \"sip:10.0.0.2\", weight = 40 },\n]";
    let text = with_set(set);
    let e = expect(&text, "algorithm = \"weight\"", "weights of set 2 must add up to 100");
    assert!(e.message.contains("they add up to 90"), "{e}");

    let text = with_set(&set.replace("weight = 40", "weight = 50"));
    let c = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let s = c.dispatcher.set(2).unwrap();
    assert_eq!(s.destinations.iter().map(|d| d.weight).collect::<Vec<_>>(), [50, 50]);

    // Relative weights have no such rule.
    let text = with_set(&set.replace("\"weight\"", "\"relative-weight\""));
    parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn duplicate_set_id() {
    let text = with_set("id = 1\nalgorithm = 4\ndestinations = [\"sip:10.0.0.1\"]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let second = text.lines().enumerate().filter(|(_, l)| *l == "id = 1").nth(1).unwrap().0 + 1;
    assert_eq!(errs[0].line, second);
    assert_eq!(errs[0].message, "duplicate set id 1 (already used at line 5)");
}

#[test]
fn set_without_destinations() {
    let text = with_set("id = 2\nalgorithm = 4");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.starts_with("set 2 has no destinations: add destinations ="), "{}", errs[0]);
    assert_eq!(errs[0].line, line_of(&text, "id = 2") - 1, "at the set's [[dispatcher.set]] header");
    let text = with_set("id = 2\nalgorithm = 4\ndestinations = []");
    expect(&text, "destinations = []", "set 2 has no destinations");
    let text = with_set("id = 2\ndestinations = [\"sip:10.0.0.1\"]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.starts_with("set 2 needs an `algorithm`"), "{}", errs[0]);
    assert_eq!(errs[0].line, line_of(&text, "id = 2") - 1);
    let text = with_set("algorithm = 4\ndestinations = [\"sip:10.0.0.1\"]");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.message.contains("needs an `id`")), "{}", Errors(errs));
}

#[test]
fn route_referencing_unknown_set() {
    let text = BASE.replace("select 1", "select 7");
    let e = expect(&text, "select 7", "select 7: there is no dispatcher set with id 7 (sets: 1)");
    assert_eq!(e.col, col_of(&text, "7\""));
}

#[test]
fn route_referencing_unknown_mtree() {
    let text =
        BASE.replace("do = [\"select 1\", \"forward\"]", "do = [\"lookup routes $rU\", \"select $mt\", \"forward\"]");
    let e = expect(
        &text,
        "lookup routes",
        "lookup routes: there is no [[mtree]] named \"routes\" (no [[mtree]] is defined)",
    );
    assert_eq!(e.col, col_of(&text, "routes $rU"));
}

#[test]
fn unknown_named_route() {
    let text = with_rules("[[route.request]]\ndo = \"route SAFEGAURD\"\n\n[[route.SAFEGUARD]]\ndo = \"drop\"");
    let e = expect(
        &text,
        "route SAFEGAURD",
        "unknown route \"SAFEGAURD\" (did you mean \"SAFEGUARD\"? named routes: SAFEGUARD)",
    );
    assert_eq!(e.col, col_of(&text, "SAFEGAURD"));
    let text = with_rules("[[route.request]]\ndo = \"route nowhere\"");
    expect(&text, "route nowhere", "no named routes are defined");
    let text = with_rules("[[route.request]]\ndo = \"route reply\"");
    expect(&text, "route reply", "cannot be called");
}

#[test]
fn recursive_routes() {
    let text = with_rules("[[route.request]]\ndo = \"route A\"\n\n[[route.A]]\ndo = \"route A\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert_eq!(errs[0].message, "route \"A\" calls itself (routes may not recurse)");
    assert_eq!(
        errs[0].line,
        text.lines().collect::<Vec<_>>().iter().rposition(|l| *l == "do = \"route A\"").unwrap() + 1
    );

    let text = with_rules(
        "[[route.request]]\ndo = \"route A\"\n\n[[route.A]]\ndo = \"route B\"\n\n[[route.B]]\nif = \"true\"\ndo = [\"route C\", \"return\"]\n\n[[route.C]]\ndo = \"route A\" # back",
    );
    let e = expect(&text, "# back", "routes call each other in a loop: A -> B -> C -> A");
    assert_eq!(errors(&text).len(), 1);
    assert_eq!(e.col, col_of(&text, "A\" # back"));

    // A route called twice without a loop is fine.
    let text = with_rules(
        "[[route.request]]\ndo = [\"route A\", \"route B\"]\n\n[[route.A]]\ndo = \"route B\"\n\n[[route.B]]\ndo = \"return\"",
    );
    parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unknown_pseudo_variable() {
    let text = with_rules("[[route.request]]\nif = \"$rU == 1 or $fX == 'a'\"\ndo = \"drop\"");
    let e = expect(&text, "$fX", "unknown pseudo-variable $fX");
    assert!(e.message.contains("known: $si $sp $Ri"), "{e}");
    assert!(e.message.contains("$hdr(Name)"), "{e}");
    assert_eq!(e.col, col_of(&text, "$fX"));
    let text = with_rules("[[route.request]]\ndo = \"append_header X-Src '$si $zz'\"");
    let e = expect(&text, "$zz", "unknown pseudo-variable $zz");
    assert_eq!(e.col, col_of(&text, "$zz"));
}

#[test]
fn bad_regex() {
    let text = with_rules("[[route.request]]\nif = '$ua =~ \"friendly-(scanner\"'\ndo = \"drop\"");
    let e = expect(&text, "friendly-", "bad regular expression \"friendly-(scanner\": unclosed group");
    assert_eq!(e.col, col_of(&text, "\"friendly"));
    assert!(!e.message.contains('\n'));
}

#[test]
fn myself_misuse() {
    for (cond, needle) in [
        ("$rU == myself", "myself compares with $rd, $ru, $si, $fd or $td, not $rU"),
        ("$rd ^= myself", "myself only works with == and != (not ^=)"),
        ("myself == $rd", "myself goes on the right"),
        ("$rm in [myself]", "myself cannot be a list item"),
    ] {
        let text = with_rules(&format!("[[route.request]]\nif = '{cond}'\ndo = \"drop\""));
        expect(&text, cond, needle);
    }
    for ok in ["$rd == myself", "$ru != myself", "$si == myself", "$fd == myself", "$td != myself"] {
        let text = with_rules(&format!("[[route.request]]\nif = '{ok}'\ndo = \"drop\""));
        parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn unreachable_action() {
    let text = with_rules("[[route.request]]\ndo = [\"forward\", 'reply 200 \"OK\"', \"drop\"]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "only the first unreachable action is reported: {}", Errors(errs.clone()));
    assert_eq!(errs[0].message, "unreachable action after forward (forward ends the rule; nothing after it runs)");
    assert_eq!(errs[0].col, col_of(&text, "'reply"));
    for first in ["drop", "return", "reply 404 \\\"Not Found\\\""] {
        let text = with_rules(&format!("[[route.request]]\ndo = [\"{first}\", \"forward\"]"));
        let word = first.split(' ').next().unwrap();
        expect(&text, &format!("[\"{first}"), &format!("unreachable action after {word}"));
    }
    // select with else is not terminal.
    let text = with_rules("[[route.request]]\ndo = ['select 1 else reply 503 \"None\"', \"forward\"]");
    parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn reply_route_restrictions() {
    let text = with_rules("[[route.reply]]\ndo = 'reply 200 \"OK\"'");
    let e = expect(&text, "reply 200", "reply is not allowed in the reply route");
    assert_eq!(e.col, col_of(&text, "reply 200"));

    let text = with_rules("[[route.reply]]\ndo = [\"remove_header X-A\", \"select 1\", \"forward\"]");
    let e = expect(&text, "remove_header X-A", "select is not allowed in the reply route");
    assert_eq!(e.col, col_on(&text, "remove_header X-A", "select 1"));

    let text = with_rules("[[route.reply]]\ndo = 'forward \"udp:10.0.0.1:5060\"'");
    expect(&text, "udp:10.0.0.1", "forward takes no target in the reply route");

    // Through a named route: the message says where it is called from.
    let text = with_rules("[[route.reply]]\ndo = \"route fix\"\n\n[[route.fix]]\ndo = 'reply 500 \"x\"'");
    expect(&text, "reply 500", "(route \"fix\" is called from the reply route)");

    // $rs/$rr belong to replies.
    let text = with_rules("[[route.request]]\nif = \"$rs >= 500\"\ndo = \"drop\"");
    expect(&text, "$rs >= 500", "$rs is only set on replies");
    let text = with_rules("[[route.request]]\ndo = 'set_header X-R \"$rr\"'");
    expect(&text, "$rr", "$rr is only set on replies");

    // What a reply route may do.
    let text = with_rules(
        "[[route.reply]]\nif = \"$rs >= 500 and $rr *= 'Busy'\"\ndo = [\"remove_header X-Internal\", 'set_header X-Code \"$rs\"', 'append_header X-Seen \"yes\"', \"route tag\", \"forward\"]\n\n[[route.reply]]\ndo = \"drop\"\n\n[[route.tag]]\ndo = [\"return\"]",
    );
    let c = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.routes.reply.as_ref().unwrap().rules.len(), 2);
    assert!(c.routes.named.contains_key("tag"));
}

#[test]
fn managed_headers() {
    for name in ["Via", "from", "t", "Call-ID", "CSeq", "l", "Max-Forwards"] {
        let text = with_rules(&format!("[[route.request]]\ndo = 'set_header {name} \"x\"'"));
        expect(&text, "set_header", "itself; set_header cannot change it");
    }
    let text = with_rules("[[route.request]]\ndo = \"remove_header Content-Length\"");
    expect(&text, "remove_header", "ringsip manages Content-Length itself");
}

#[test]
fn bad_duration() {
    for (interval, needle) in [
        ("2", "probe.interval = 2 needs a unit: write \"2s\" or \"2ms\""),
        ("\"2\"", "needs a unit"),
        ("\"2 weeks\"", "unknown unit \"weeks\""),
        ("\"50ms\"", "too short (at least 100ms)"),
        ("\"soon\"", "is not a duration"),
    ] {
        let text = BASE.replace(
            "destinations = [\"sip:127.0.0.1:5080\"]",
            &format!("destinations = [\"sip:127.0.0.1:5080\"]\nprobe = {{ interval = {interval} }}"),
        );
        let e = expect(&text, "probe =", needle);
        assert_eq!(e.col, col_of(&text, &format!("= {interval} }}")) + 2, "{interval}");
    }
    let text = BASE.replace(
        "destinations = [\"sip:127.0.0.1:5080\"]",
        "destinations = [\"sip:127.0.0.1:5080\"]\nprobe = { interval = \"1s\", timeout = \"2s\" }",
    );
    expect(&text, "probe =", "probe timeout 2s is longer than the probe interval 1s");
}

#[test]
fn server_values() {
    for (line, needle) in [
        ("sticky_entries = 1000", "must be a power of two (try 1024, or 512)"),
        ("batch = 2000", "server.batch = 2000 is out of range (1 to 1024)"),
        ("shards = 0", "server.shards = 0 is out of range"),
        ("cpus = \"0-3,3\"", "lists CPU 3 twice"),
        ("cpus = \"3-0\"", "goes backwards"),
        ("rcvbuf = \"8MB\"", "unknown unit \"MB\""),
        ("rcvbuf = 0", "out of range"),
        ("metrics = \"localhost:9090\"", "is not an IP address"),
        ("metrics = \"127.0.0.1\"", "needs a port"),
        ("advertise = \"not a host\"", "neither an IP address nor a host name"),
        ("advertise = \"sip.example.com:0\"", "port 0 out of range"),
    ] {
        let text = with_server(line);
        expect(&text, line, needle);
    }
    let text = with_server(
        "advertise = \"sip.example.com:5070\"\nshards = 2\ncpus = [2, 3]\nlog = \"warn,ringsip=debug\"\nrcvbuf = \"16MiB\"\nsndbuf = 1048576\nbatch = 32\nsticky_entries = 1024",
    );
    let c = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let s = &c.server;
    assert_eq!(s.advertise.as_deref(), Some("sip.example.com:5070"));
    assert_eq!((s.shards, s.cpus.clone()), (Some(2), Some(vec![2, 3])));
    assert_eq!(s.log, "warn,ringsip=debug");
    assert_eq!((s.rcvbuf, s.sndbuf, s.batch, s.sticky_entries), (16 << 20, 1 << 20, 32, 1024));
    let c = parse(&with_server("cpus = \"0-2,6\""), Path::new("t.toml")).unwrap();
    assert_eq!(c.server.cpus, Some(vec![0, 1, 2, 6]));
}

#[test]
fn missing_sections() {
    let errs = errors("[[route.request]]\ndo = \"forward\"\n");
    assert!(errs.iter().any(|e| e.message.contains("missing [server]")), "{}", Errors(errs));
    let errs = errors("[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n");
    assert!(errs.iter().any(|e| e.message.contains("missing [[route.request]]")), "{}", Errors(errs));
    let text = BASE.replace("do = [\"select 1\", \"forward\"]", "name = \"x\"");
    expect(&text, "[[route.request]]", "needs `do`");
}

#[test]
fn toml_syntax_error() {
    let text = BASE.replace("id = 1", "id = = 1");
    let errs = errors(&text);
    assert_eq!(errs[0].line, line_of(&text, "id = = 1"));
    assert!(errs[0].message.starts_with("TOML syntax:"), "{}", errs[0]);
}

fn csv_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ringsip-config-tests").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CSV_SET: &str = "id = 5\nalgorithm = \"priority\"\ndestinations_csv = \"gw.csv\"";

#[test]
fn csv_missing_file() {
    let dir = csv_dir("missing");
    let _ = std::fs::remove_file(dir.join("gw.csv"));
    let origin = dir.join("ringsip.toml");
    let text = with_set(CSV_SET);
    let errs = errors_in(&text, &origin);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    let e = &errs[0];
    assert_eq!(e.file, origin);
    assert_eq!(e.line, line_of(&text, "gw.csv"));
    assert!(e.message.starts_with("cannot read destinations_csv \"gw.csv\""), "{e}");
    assert!(e.message.contains(&dir.join("gw.csv").display().to_string()), "the resolved path: {e}");
}

#[test]
fn csv_destinations_load() {
    let dir = csv_dir("good");
    std::fs::write(
        dir.join("gw.csv"),
        "uri,weight,priority,attrs,state\n# a comment\nsip:10.0.0.1:5060,1,10,dc=east,active\n sip:10.0.0.2 , 2 , 5 , , disabled\nsip:10.0.0.3\n",
    )
    .unwrap();
    let text = with_set(&format!("{CSV_SET}\ndestinations = [\"sip:10.0.0.9\"]"));
    let path = dir.join("ringsip.toml");
    std::fs::write(&path, &text).unwrap();
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let s = c.dispatcher.set(5).unwrap();
    let got: Vec<_> = s
        .destinations
        .iter()
        .map(|d| (d.addr.to_string(), d.weight, d.priority, d.attrs.as_str(), d.disabled))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.9:5060".to_string(), 1, 0, "", false),
            ("10.0.0.1:5060".to_string(), 1, 10, "dc=east", false),
            ("10.0.0.2:5060".to_string(), 2, 5, "", true),
            ("10.0.0.3:5060".to_string(), 1, 0, "", false),
        ]
    );
}

#[test]
fn csv_bad_rows() {
    let dir = csv_dir("bad");
    std::fs::write(
        dir.join("gw.csv"),
        "uri,weight,state\nsip:10.0.0.1,1,active\nsip:10.0.0.2,2,active\nsip:10.0.0.3:70000,1,active\nsip:10.0.0.4,heavy\nsip:10.0.0.5,1,asleep\nsip:10.0.0.1\n",
    )
    .unwrap();
    let origin = dir.join("ringsip.toml");
    let errs = errors_in(&with_set(CSV_SET), &origin);
    let csv = dir.join("gw.csv");
    let rows: Vec<_> = errs.iter().map(|e| (e.file == csv, e.row, e.line)).collect();
    assert_eq!(
        rows,
        [(true, Some(3), 4), (true, Some(4), 5), (true, Some(5), 6), (true, Some(6), 7)],
        "{}",
        Errors(errs.clone())
    );
    assert!(errs[0].message.contains("port 70000 out of range"), "{}", errs[0]);
    assert!(errs[1].message.contains("weight \"heavy\" is not a whole number"), "{}", errs[1]);
    assert!(errs[2].message.contains("state \"asleep\""), "{}", errs[2]);
    assert!(errs[3].message.contains("lists 10.0.0.1:5060 twice (first at gw.csv row 1)"), "{}", errs[3]);
    assert_eq!(
        errs[0].to_string(),
        format!("{}:4:1: row 3: \"sip:10.0.0.3:70000\": port 70000 out of range (1-65535)", csv.display())
    );
}

#[test]
fn csv_lines_count_comments_and_blank_lines() {
    let dir = csv_dir("comments");
    std::fs::write(
        dir.join("gw.csv"),
        "# gateways of carrier A\n\nuri,weight\n# east\nsip:10.0.0.1,1\n\n# west\nsip:10.0.0.2,heavy\n",
    )
    .unwrap();
    let errs = errors_in(&with_set(CSV_SET), &dir.join("ringsip.toml"));
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert_eq!((errs[0].line, errs[0].row), (8, Some(2)), "the file's own line: {}", errs[0]);
    std::fs::write(dir.join("gw.csv"), "# header below\nurl\nsip:10.0.0.1\n").unwrap();
    let errs = errors_in(&with_set(CSV_SET), &dir.join("ringsip.toml"));
    assert_eq!((errs[0].line, errs[0].row), (2, None), "{}", errs[0]);
}

#[test]
fn csv_bad_header() {
    let dir = csv_dir("header");
    std::fs::write(dir.join("gw.csv"), "url,wieght\nsip:10.0.0.1,1\n").unwrap();
    let errs = errors_in(&with_set(CSV_SET), &dir.join("ringsip.toml"));
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));
    assert!(errs[0].message.contains("unknown column \"url\" in the header row (did you mean \"uri\"?"), "{}", errs[0]);
    assert!(errs[1].message.contains("unknown column \"wieght\""), "{}", errs[1]);
    assert_eq!((errs[0].line, errs[0].row), (1, None));

    std::fs::write(dir.join("gw.csv"), "weight\n1\n").unwrap();
    let errs = errors_in(&with_set(CSV_SET), &dir.join("ringsip.toml"));
    assert!(errs[0].message.contains("needs a `uri` column"), "{}", errs[0]);
}

#[test]
fn several_errors_reported_together() {
    let text = r#"[server]
listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
colour = "blue"

[[dispatcher.set]]
id = 1
algorithm = "round-robbin"
destinations = ["sip:gw.example.com"]

[[route.request]]
if = "$xx == 1"
do = ["select 2", "forward", "drop"]
"#;
    let errs = errors(text);
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.message.as_str())).collect();
    let want_lines = [2, 3, 7, 8, 11, 12, 12];
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want_lines, "{}", Errors(errs.clone()));
    assert!(got[0].1.contains("tcp is not supported yet"));
    assert!(got[1].1.contains("unknown key \"colour\""));
    assert!(got[2].1.contains("unknown algorithm"));
    assert!(got[3].1.contains("host names need DNS"));
    assert!(got[4].1.contains("unknown pseudo-variable $xx"));
    assert!(got[5].1.contains("select 2: there is no dispatcher set"));
    assert!(got[6].1.contains("unreachable action after forward"));
    // Display: one line per error, "file:line:col: message".
    let shown = Errors(errs.clone()).to_string();
    assert_eq!(shown.lines().count(), errs.len());
    for (line, e) in shown.lines().zip(&errs) {
        assert!(line.starts_with(&format!("t.toml:{}:{}: ", e.line, e.col)), "{line}");
    }
}

#[test]
fn positions_inside_strings() {
    // Plain single-line strings map exactly: the column of the offending token.
    let text = with_rules("[[route.request]]\nif = \"$rU ^= '+1' and $rd = 'x'\"\ndo = \"drop\"");
    let e = expect(&text, "$rd = 'x'", "use ==");
    assert_eq!(e.col, col_of(&text, "= 'x'"));
    // A string with TOML escapes: the string's start.
    let text = with_rules("[[route.request]]\nif = \"$rU ^= \\\"+1\\\" and $rd = 'x'\"\ndo = \"drop\"");
    let e = expect(&text, "$rd = 'x'", "use ==");
    assert_eq!(e.col, col_of(&text, "\"$rU"));
    // A multi-line literal string maps exactly, lines included.
    let text = with_rules("[[route.request]]\nif = '''\n$rU ^= \"+1\"\n  and $fd == bogus bogus'''\ndo = \"drop\"");
    let e = expect(&text, "bogus bogus", "unexpected `bogus` after the condition");
    assert_eq!(e.col, col_of(&text, "bogus'''"));
}

#[test]
fn load_reports_missing_file() {
    let err = ringsip_config::load(Path::new("/nonexistent/ringsip.toml")).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err.to_string().starts_with("/nonexistent/ringsip.toml: cannot read the config file:"), "{err}");
}
