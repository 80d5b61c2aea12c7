use super::*;
use crate::htable::Tables;
use std::path::Path;

/// Compile the condition of a one-rule request route.
fn cond(expr: &str) -> Expr {
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:[::1]:5070\"]\n[[route.request]]\nif = '''{expr}'''\ndo = \"forward\"\n"
    );
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    p.request[0].cond.clone().unwrap()
}

const INVITE: &[u8] = b"INVITE sip:+14155550123@127.0.0.1:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK1\r\n\
Max-Forwards: 69\r\n\
From: \"Alice\" <sip:alice@carrier.example>;tag=a1\r\n\
To: <sip:+14155550123@ringsip.example>\r\n\
Call-ID: cid-1@203.0.113.45\r\n\
CSeq: 102 INVITE\r\n\
User-Agent: friendly-scanner 1.0\r\n\
X-Account: 4711\r\n\
Content-Length: 0\r\n\r\n";

fn myself() -> Myself {
    Myself {
        addrs: vec!["127.0.0.1:5060".parse().unwrap(), "[::1]:5070".parse().unwrap()],
        names: vec![b"ringsip.example".as_slice().into()],
    }
}

fn eval(expr: &str, raw: &[u8], src: &str) -> bool {
    let m = Message::parse(raw).unwrap();
    let me = myself();
    let no_tables = Tables::default();
    let ctx = Ctx {
        msg: &m,
        src: src.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
        htables: &no_tables,
        acls: &[],
        now: std::time::Instant::now(),
        failure: None,
    };
    let e = cond(expr);
    ctx.eval(&e)
}

#[test]
fn methods_uris_and_headers() {
    let src = "203.0.113.45:5060";
    for (expr, want) in [
        ("$rm == INVITE", true),
        ("$rm == \"ACK\"", false),
        ("$rm in [ACK, INVITE]", true),
        ("$rU ^= \"+1415\"", true),
        ("$rU ^= \"+44\"", false),
        ("$rU $= \"0123\"", true),
        ("$ru *= \"user=phone\"", true),
        ("$hdr(Max-Forwards) == 69", true),
        ("$hdr(Max-Forwards) < 70", true),
        ("$hdr(max-forwards) >= 70", false),
        ("$hdr(X-Account) == 4711", true),
        ("$hdr(x-account) == \"4711\"", true),
        ("exists $hdr(X-Account)", true),
        ("exists $hdr(X-Missing)", false),
        ("$hdr(X-Missing) == 1", false),
        ("$hdr(X-Missing) != 1", true),
        ("$ua =~ \"friendly-scanner|sipvicious|sipcli\"", true),
        ("$ua !~ \"sipvicious\"", true),
        ("$fU == alice", true),
        ("$fd == \"CARRIER.example\"", true),
        ("$ft == a1", true),
        ("exists $tt", false),
        ("has_totag", false),
        ("not has_totag and is_request", true),
        ("$cs == 102", true),
        ("$ci ^= \"cid-\"", true),
        ("$sp == 5060", true),
        ("$proto == udp", true),
    ] {
        assert_eq!(eval(expr, INVITE, src), want, "{expr}");
    }
}

#[test]
fn addresses_networks_and_myself() {
    let src = "203.0.113.45:5060";
    for (expr, want) in [
        ("$si == 203.0.113.45", true),
        ("$si == \"203.0.113.46\"", false),
        ("$si in 203.0.113.0/24", true),
        ("$si in [10.0.0.0/8, 192.0.2.1]", false),
        ("$si =~ \"^203\\.0\"", true),
        ("$si == myself", false),
        ("$rd == myself", true),
        ("$ru == myself", true),
        ("$rd != myself", false),
        ("$td == myself", true),
        ("$fd == myself", false),
        ("$Ri == 127.0.0.1", true),
        ("$Rp == 5060", true),
    ] {
        assert_eq!(eval(expr, INVITE, src), want, "{expr}");
    }
    // IPv6 source and IPv4-mapped sources in IPv4 networks
    assert!(eval("$si in 2001:db8::/32", INVITE, "[2001:db8::7]:5060"));
    assert!(eval("$si in 192.0.2.0/24", INVITE, "[::ffff:192.0.2.9]:5060"));
    // myself is port-aware for URIs: the same host on another port is not ringsip
    let other_port = b"BYE sip:uas@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\n\r\n";
    assert!(!eval("$rd == myself", other_port, src));
    assert!(eval("has_totag and $rd != myself", other_port, src));
    let no_port = b"OPTIONS sip:[::1]:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 2 OPTIONS\r\n\r\n";
    assert!(eval("$ru == myself", no_port, src));
}

#[test]
fn replies_and_templates() {
    let ok = b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKrsLx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 5 INVITE\r\n\r\n";
    let text = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[route.request]]\ndo = \"forward\"\n[[route.reply]]\nif = '$rs >= 400 and $rr == \"Busy Here\" and $rm == INVITE'\ndo = 'append_header X-Seen \"from $si:$sp code $rs ($rr) \\$1\"'\n";
    let cfg = ringsip_config::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    let rule = &p.reply.as_ref().unwrap()[0];
    let m = Message::parse(ok).unwrap();
    let me = myself();
    let no_tables = Tables::default();
    let ctx = Ctx {
        msg: &m,
        src: "[2001:db8::1]:5099".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
        htables: &no_tables,
        acls: &[],
        now: std::time::Instant::now(),
        failure: None,
    };
    assert!(ctx.eval(rule.cond.as_ref().unwrap()));
    let Action::AppendHeader(name, t) = &rule.actions[0] else { panic!() };
    assert_eq!(&**name, b"X-Seen");
    let mut out = [0u8; 128];
    let n = t.render(&ctx, &mut out).unwrap();
    assert_eq!(&out[..n], b"from 2001:db8::1:5099 code 486 (Busy Here) $1");
    assert_eq!(t.render(&ctx, &mut [0u8; 8]), None, "does not fit");
}

#[test]
fn numbers_and_cidrs_helpers() {
    assert_eq!(itoa(0, &mut [0; 20]), b"0");
    assert_eq!(itoa(-4711, &mut [0; 20]), b"-4711");
    assert_eq!(itoa(i64::MIN, &mut [0; 20]), b"-9223372036854775808");
    let net = Cidr { addr: "10.0.0.0".parse().unwrap(), len: 8 };
    assert!(in_net("10.255.0.1".parse().unwrap(), &net));
    assert!(!in_net("11.0.0.1".parse().unwrap(), &net));
    assert!(in_net("1.2.3.4".parse().unwrap(), &Cidr { addr: "0.0.0.0".parse().unwrap(), len: 0 }));
    assert!(!in_net("::1".parse().unwrap(), &net));
}

#[test]
fn tree_values_are_stored_once() {
    let mut text = String::from(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\
[[dispatcher.set]]\nid = 1\nalgorithm = \"round-robin\"\ndestinations = [\"sip:127.0.0.1:5080\"]\n\
[[dispatcher.set]]\nid = 2\nalgorithm = \"round-robin\"\ndestinations = [\"sip:127.0.0.1:5081\"]\n\
[[route.request]]\ndo = ['lookup routes $rU else drop', 'select $mt', 'forward']\n\
[[mtree]]\nname = \"routes\"\ntype = \"sets\"\nentries = [\n",
    );
    let lists = ["1", "2;1", "1;2"];
    for i in 0..1000 {
        text.push_str(&format!("{{ prefix = \"{}\", value = \"{}\" }},\n", 100_000 + i, lists[i % 3]));
    }
    text.push_str("]\n");
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |id| Some(id as usize - 1)).unwrap();
    let t = &p.trees[0];
    assert_eq!((t.len(), t.distinct_values()), (1000, 3));
    for i in [0usize, 1, 2, 500, 999] {
        let key = format!("{}777", 100_000 + i);
        let v = t.value(t.longest_index(key.as_bytes()).unwrap()).unwrap();
        assert_eq!(&*v.text, lists[i % 3].as_bytes());
        let want: Vec<usize> = lists[i % 3].split(';').map(|s| s.parse::<usize>().unwrap() - 1).collect();
        assert_eq!(&*v.sets, &want[..]);
    }
    assert!(t.longest_index(b"99999").is_none());
}

/// A program whose request route has these rules, over `[[htable]]` tables "t" (autoexpire
/// 10 s) and "u".
fn sht_program(rules: &str) -> (Program, crate::htable::Tables) {
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[htable]]\nname = \"t\"\nautoexpire = \"10s\"\n[[htable]]\nname = \"u\"\n{rules}"
    );
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    let specs: Vec<crate::htable::Spec> = cfg
        .htables
        .iter()
        .map(|t| crate::htable::Spec { name: t.name.clone(), max_entries: t.max_entries, autoexpire: t.autoexpire })
        .collect();
    (p, Tables::new(&specs))
}

fn sht_ctx<'m>(m: &'m Message<'m>, me: &'m Myself, tables: &'m Tables, now: std::time::Instant) -> Ctx<'m, 'm> {
    Ctx {
        msg: m,
        src: "203.0.113.45:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: me,
        trees: &[],
        mt: None,
        htables: tables,
        acls: &[],
        now,
        failure: None,
    }
}

#[test]
fn sht_reads_compare_ints_as_numbers_and_text_as_bytes() {
    use crate::htable::Value;
    let conds = [
        "exists $sht(t=>$si)",
        "$sht(t=>$si) > 3",
        "$sht(t=>$si) == 4",
        "$sht(t=>$si) != 4",
        "$sht(u=>$fU@$fd) == \"gw-a\"",
        "$sht(u=>$fU@$fd) ^= \"gw\"",
        "$sht(u=>$fU@$fd) =~ \"^gw-[a-z]$\"",
        "$sht(u=>$fU@$fd) in [\"gw-b\", \"gw-a\"]",
        "$sht(u=>acct-$hdr(X-Account)) >= 10",
    ];
    let rules: String = conds.iter().map(|c| format!("[[route.request]]\nif = '{c}'\ndo = \"drop\"\n")).collect();
    let (p, tables) = sht_program(&rules);
    let m = Message::parse(INVITE).unwrap();
    let me = myself();
    let t0 = std::time::Instant::now();
    let eval_all = |now| {
        let ctx = sht_ctx(&m, &me, &tables, now);
        p.request.iter().map(|r| ctx.eval(r.cond.as_ref().unwrap())).collect::<Vec<bool>>()
    };
    // nothing stored: every key is absent; only != holds
    assert_eq!(eval_all(t0), [false, false, false, true, false, false, false, false, false]);
    let t = tables.get(0).unwrap();
    let u = tables.get(1).unwrap();
    t.set(b"203.0.113.45", Value::Int(4), None, t0).unwrap();
    u.set(b"alice@carrier.example", Value::Text(b"gw-a".as_slice().into()), None, t0).unwrap();
    u.set(b"acct-4711", Value::Int(12), None, t0).unwrap();
    assert_eq!(eval_all(t0), [true, true, true, false, true, true, true, true, true]);
    // a text value that is not a number is not greater than anything
    t.set(b"203.0.113.45", Value::Text(b"four".as_slice().into()), None, t0).unwrap();
    assert_eq!(eval_all(t0)[..4], [true, false, false, true]);
    // expired (autoexpire 10 s): absent again
    assert_eq!(eval_all(t0 + std::time::Duration::from_secs(11))[..4], [false, false, false, true]);
}

#[test]
fn sht_keys_that_do_not_fit_read_as_absent_and_are_not_written() {
    let (p, tables) = sht_program(
        "[[route.request]]\nif = 'exists $sht(u=>$hdr(X-Long))'\ndo = ['sht_set u $hdr(X-Long) 1', 'sht_inc u \"$hdr(X-None)\"', 'drop']\n",
    );
    let long = "a".repeat(MAX_SHT_KEY + 1);
    let raw =
        String::from_utf8(INVITE.to_vec()).unwrap().replace("X-Account: 4711\r\n", &format!("X-Long: {long}\r\n"));
    let m = Message::parse(raw.as_bytes()).unwrap();
    let me = myself();
    let ctx = sht_ctx(&m, &me, &tables, std::time::Instant::now());
    let rule = &p.request[0];
    let mut scratch = [0u8; 64];
    let Action::Sht(set) = &rule.actions[0] else { panic!() };
    let Action::Sht(inc) = &rule.actions[1] else { panic!() };
    assert_eq!(ctx.write_sht(set, &mut scratch), Err(ShtWriteError::Key));
    assert_eq!(ctx.write_sht(inc, &mut scratch), Err(ShtWriteError::Key), "an empty key is not written");
    assert!(tables.get(1).unwrap().is_empty());
    // a key of exactly MAX_SHT_KEY bytes fits
    tables.get(1).unwrap().set(&long.as_bytes()[1..], crate::htable::Value::Int(1), None, ctx.now).unwrap();
    let raw = raw.replace(&long, &long[1..]);
    let m = Message::parse(raw.as_bytes()).unwrap();
    let ctx = sht_ctx(&m, &me, &tables, ctx.now);
    assert!(ctx.eval(rule.cond.as_ref().unwrap()));
}

#[test]
fn sht_writes() {
    use crate::htable::{HtError, Value};
    let (p, tables) = sht_program(
        "[[route.request]]\ndo = ['sht_set u $fU \"$si:$sp\" expires 1h', 'sht_set u \"port-$fU\" $sp', 'sht_set u \"ua\" $ua', 'sht_set u \"src\" $si', 'sht_inc t $si', 'sht_inc t $si -3', 'sht_set u \"missing\" $hdr(X-None)', 'sht_inc u $fU', 'sht_delete u \"ua\"', 'drop']\n",
    );
    let m = Message::parse(INVITE).unwrap();
    let me = myself();
    let now = std::time::Instant::now();
    let ctx = sht_ctx(&m, &me, &tables, now);
    let mut scratch = [0u8; 256];
    let results: Vec<_> = p.request[0]
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Sht(w) => Some(ctx.write_sht(w, &mut scratch)),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        [
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(ShtWriteError::Value),
            Err(ShtWriteError::Table(HtError::NotInteger)),
            Ok(()),
        ]
    );
    let (t, u) = (tables.get(0).unwrap(), tables.get(1).unwrap());
    assert_eq!(t.get_int(b"203.0.113.45", now), Some(-2));
    let text = |k: &[u8]| u.get(k, now, |v| v.clone());
    assert_eq!(text(b"alice"), Some(Value::Text(b"203.0.113.45:5060".as_slice().into())));
    assert_eq!(text(b"port-alice"), Some(Value::Int(5060)), "an integer pseudo-variable stores an integer");
    assert_eq!(text(b"src"), Some(Value::Text(b"203.0.113.45".as_slice().into())));
    assert_eq!(text(b"ua"), None, "deleted");
    assert_eq!(text(b"missing"), None);
    // expires 1h overrides the table (no autoexpire): gone after an hour, the others stay
    let later = now + std::time::Duration::from_secs(3601);
    assert!(!u.exists(b"alice", later));
    assert!(u.exists(b"port-alice", later));
    // t has autoexpire 10s
    assert!(!t.exists(b"203.0.113.45", now + std::time::Duration::from_secs(11)));
}

/// Evaluate `expr` (a request-route condition) for a message from `src`, over these
/// `[[acl]]` groups.
fn acl_eval(acls: &str, expr: &str, src: &str) -> bool {
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n{acls}\n[[route.request]]\nif = '''{expr}'''\ndo = \"forward\"\n"
    );
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    let m = Message::parse(INVITE).unwrap();
    let me = myself();
    let no_tables = Tables::default();
    let ctx = Ctx {
        msg: &m,
        src: src.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
        htables: &no_tables,
        acls: &p.acls,
        now: std::time::Instant::now(),
        failure: None,
    };
    ctx.eval(p.request[0].cond.as_ref().unwrap())
}

const ACLS: &str = r#"
[[acl]]
name = "trusted"
entries = ["10.0.0.0/8", "192.0.2.10", "198.51.100.7:5060", "203.0.113.0/24:5080", "2001:db8::/32", "[2001:db8:ffff::1]:5070"]

[[acl]]
name = "other"
entries = ["192.0.2.99"]
"#;

#[test]
fn acl_groups_match_the_source() {
    for (src, want) in [
        ("10.1.2.3:5060", true),
        ("10.255.255.255:1", true),
        ("192.0.2.10:5099", true),
        ("192.0.2.11:5060", false),
        ("11.0.0.1:5060", false),
        ("192.0.2.99:5060", false),
        // IPv4-mapped IPv6 sources match IPv4 entries
        ("[::ffff:10.0.0.1]:5060", true),
        ("[2001:db8::1]:5060", true),
        ("[2001:db8:1234::9]:1", true),
        ("[2001:db9::1]:5060", false),
        ("[::1]:5060", false),
    ] {
        assert_eq!(acl_eval(ACLS, "$si in acl trusted", src), want, "{src}");
        assert_eq!(acl_eval(ACLS, "not $si in acl trusted", src), !want, "not, {src}");
    }
    assert!(acl_eval(ACLS, "$si in acl other", "192.0.2.99:5060"));
    assert!(!acl_eval(ACLS, "$si in acl other", "192.0.2.10:5060"));
}

#[test]
fn acl_entries_with_a_port_match_only_that_port() {
    for (src, want) in [
        ("198.51.100.7:5060", true),
        ("198.51.100.7:5061", false),
        ("203.0.113.44:5080", true),
        ("203.0.113.44:5060", false),
        ("[2001:db8:ffff::1]:5070", true), // also inside 2001:db8::/32 (any port)
        ("[::ffff:198.51.100.7]:5060", true),
        ("[::ffff:198.51.100.7]:5061", false),
    ] {
        assert_eq!(acl_eval(ACLS, "$si in acl trusted", src), want, "{src}");
    }
    let v6 = "[[acl]]\nname = \"v6\"\nentries = [\"[2001:db8::1]:5070\", \"[2001:db8:1::]/48:5071\"]\n";
    assert!(acl_eval(v6, "$si in acl v6", "[2001:db8::1]:5070"));
    assert!(!acl_eval(v6, "$si in acl v6", "[2001:db8::1]:5071"));
    assert!(acl_eval(v6, "$si in acl v6", "[2001:db8:1:2::3]:5071"));
    assert!(!acl_eval(v6, "$si in acl v6", "[2001:db8:1:2::3]:5070"));
    assert!(!acl_eval(v6, "$si in acl v6", "[2001:db8::2]:5070"));
}

#[test]
fn acl_sets_and_compiled_indices() {
    let cfg = ringsip_config::parse(
        &format!("[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n{ACLS}\n[[route.request]]\nif = '$si in acl other or $si in acl trusted'\ndo = \"forward\"\n"),
        Path::new("t.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    assert_eq!(p.acl_names, ["trusted", "other"]);
    assert_eq!((p.acls[0].len(), p.acls[1].len()), (6, 1));
    let Some(Expr::Or(a, b)) = &p.request[0].cond else { panic!() };
    assert!(matches!((&**a, &**b), (Expr::InAcl(1), Expr::InAcl(0))));
    // an empty group matches nothing; a /0 matches every address of its family
    let empty = AclSet::default();
    assert!(empty.is_empty() && !empty.matches("10.0.0.1:5060".parse().unwrap()));
    let all = "[[acl]]\nname = \"all\"\nentries = [\"0.0.0.0/0\"]\n";
    assert!(acl_eval(all, "$si in acl all", "198.51.100.1:1"));
    assert!(!acl_eval(all, "$si in acl all", "[2001:db8::1]:1"));
    // a program compiled without the group refuses the route
    let e = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &[], |_| None).unwrap_err();
    assert_eq!(e, "acl other does not exist");
}

/// A program with a request route that arms `failover` and a failure route `failover` whose
/// first rule has this condition.
fn failure_program(cond: &str) -> Program {
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\
[[dispatcher.set]]\nid = 1\nalgorithm = \"round-robin\"\ndestinations = [\"sip:127.0.0.1:5080\"]\n\
[[route.request]]\ndo = ['select 1', 'record_route', 'on_reply replies', 'on_failure failover', 'relay']\n\
[[route.failover]]\nif = '''{cond}'''\ndo = ['mark_down', 'select next else reply 503 \"x\"', 'on_failure failover', 'relay \"sip:127.0.0.1:5090\"']\n\
[[route.replies]]\ndo = \"drop\"\n"
    );
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |id| Some(id as usize - 1)).unwrap()
}

/// Evaluate the failure route's condition for the INVITE with this failure (or none).
fn failure_eval(cond: &str, failure: Option<Failure>) -> bool {
    let p = failure_program(cond);
    let rule = &p.named[p.names.iter().position(|n| n == "failover").unwrap()][0];
    let m = Message::parse(INVITE).unwrap();
    let me = myself();
    let no_tables = Tables::default();
    let ctx = Ctx {
        msg: &m,
        src: "203.0.113.45:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
        htables: &no_tables,
        acls: &[],
        now: std::time::Instant::now(),
        failure,
    };
    ctx.eval(rule.cond.as_ref().unwrap())
}

#[test]
fn stateful_actions_compile_to_indexes() {
    let p = failure_program("true");
    assert_eq!(p.names, ["failover", "replies"]);
    let req = &p.request[0].actions;
    assert!(matches!(req[0], Action::Select(0, None)));
    assert!(matches!(req[1], Action::RecordRoute));
    assert!(matches!(req[2], Action::OnReply(1)));
    assert!(matches!(req[3], Action::OnFailure(0)));
    assert!(matches!(req[4], Action::Relay(None)));
    let failover = &p.named[0][0].actions;
    assert!(matches!(failover[0], Action::MarkDown));
    let Action::SelectNext(Some(o)) = &failover[1] else { panic!("{:?}", failover[1]) };
    assert!(matches!(**o, Action::Reply(503, ref r) if &**r == b"x"));
    assert!(matches!(failover[2], Action::OnFailure(0)));
    let Action::Relay(Some((addr, text))) = &failover[3] else { panic!("{:?}", failover[3]) };
    assert_eq!((*addr, text.as_str()), ("127.0.0.1:5090".parse().unwrap(), "sip:127.0.0.1:5090"));
}

#[test]
fn failure_conditions_read_the_failed_branch() {
    let timeout = Failure { timeout: true, code: 408, reason: b"Request Timeout", ..Failure::default() };
    let busy = Failure { replied: true, code: 486, reason: b"Busy Here", ..Failure::default() };
    let cancelled =
        Failure { cancelled: true, replied: true, code: 487, reason: b"Request Terminated", ..Failure::default() };
    for (cond, failure, want) in [
        ("cancelled", Some(cancelled), true),
        ("cancelled", Some(busy), false),
        ("cancelled", None, false),
        ("timeout", Some(timeout), true),
        ("timeout", Some(busy), false),
        ("timeout", None, false),
        ("replied", Some(busy), true),
        ("replied", Some(timeout), false),
        ("replied", None, false),
        ("timeout and not replied", Some(timeout), true),
        ("not timeout", None, true),
        // $rs / $rr read the failed branch, not the message (the request)
        ("$rs == 408 and $rr == \"Request Timeout\"", Some(timeout), true),
        ("$rs >= 500 and $rs < 600 or timeout and not replied", Some(timeout), true),
        ("$rs >= 500 and $rs < 600 or timeout and not replied", Some(busy), false),
        ("$rs >= 500 and $rs < 600", Some(Failure { replied: true, code: 503, ..Failure::default() }), true),
        ("$rs == 486", Some(busy), true),
        ("$rr =~ \"^Busy\"", Some(busy), true),
        ("$rs in [486, 600]", Some(busy), true),
        ("exists $rs", Some(busy), true),
        // outside a failure route the request has no status
        ("exists $rs", None, false),
        ("exists $rr", None, false),
        ("$rs == 486", None, false),
    ] {
        assert_eq!(failure_eval(cond, failure), want, "{cond} with {failure:?}");
    }
}

#[test]
fn failure_status_renders_in_templates() {
    let text = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[route.request]]\ndo = ['on_failure f', 'relay']\n\
[[route.f]]\ndo = 'append_header X-Failed \"$rs $rr\"'\n";
    let cfg = ringsip_config::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    let Action::AppendHeader(_, t) = &p.named[0][0].actions[0] else { panic!() };
    let m = Message::parse(INVITE).unwrap();
    let me = myself();
    let no_tables = Tables::default();
    let mut ctx = Ctx {
        msg: &m,
        src: "203.0.113.45:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
        htables: &no_tables,
        acls: &[],
        now: std::time::Instant::now(),
        failure: Some(Failure { replied: true, code: 503, reason: b"Service Unavailable", ..Failure::default() }),
    };
    let mut out = [0u8; 64];
    let n = t.render(&ctx, &mut out).unwrap();
    assert_eq!(&out[..n], b"503 Service Unavailable");
    ctx.failure = None;
    let n = t.render(&ctx, &mut out).unwrap();
    assert_eq!(&out[..n], b" ");
}

#[test]
fn anchor_media_compiles_with_its_flags() {
    let text = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\
[media]\naddress = \"127.0.0.1\"\nports = \"30000-30099\"\n\
[[route.request]]\nif = \"has_totag\"\ndo = ['anchor_media', 'relay']\n\
[[route.request]]\ndo = ['anchor_media ice_remove replace_origin', 'on_failure f', 'relay \"sip:127.0.0.1:5080\"']\n\
[[route.f]]\ndo = ['anchor_media trust_address asymmetric', 'relay \"sip:127.0.0.1:5081\"']\n";
    let cfg = ringsip_config::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |_| None).unwrap();
    let flags = |a: &Action| match a {
        Action::AnchorMedia(f) => *f,
        other => panic!("{other:?}"),
    };
    assert_eq!(flags(&p.request[0].actions[0]), ringsip_config::AnchorFlags::default());
    assert_eq!(
        flags(&p.request[1].actions[0]),
        ringsip_config::AnchorFlags { ice_remove: true, replace_origin: true, ..Default::default() }
    );
    assert_eq!(
        flags(&p.named[0][0].actions[0]),
        ringsip_config::AnchorFlags { trust_address: true, asymmetric: true, ..Default::default() }
    );
}
