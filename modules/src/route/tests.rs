use super::*;
use std::path::Path;

/// Compile the condition of a one-rule request route.
fn cond(expr: &str) -> Expr {
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:[::1]:5070\"]\n[[route.request]]\nif = '''{expr}'''\ndo = \"forward\"\n"
    );
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let p = Program::compile(&cfg.routes, &cfg.mtrees, |_| None).unwrap();
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
    let ctx = Ctx {
        msg: &m,
        src: src.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
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
    let p = Program::compile(&cfg.routes, &cfg.mtrees, |_| None).unwrap();
    let rule = &p.reply.as_ref().unwrap()[0];
    let m = Message::parse(ok).unwrap();
    let me = myself();
    let ctx = Ctx {
        msg: &m,
        src: "[2001:db8::1]:5099".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        du: None,
        myself: &me,
        trees: &[],
        mt: None,
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
    let p = Program::compile(&cfg.routes, &cfg.mtrees, |id| Some(id as usize - 1)).unwrap();
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
