//! The configs in docs/config.md are valid, and the reference routes mean what they say.

use std::path::Path;

use ringsip_config::route::{Action, CmpOp, Expr, Operand, Piece, Pv, Sht, ShtValue, Template};
use ringsip_config::{Algorithm, Config, parse};

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```toml blocks of the doc that are whole configs.
fn full_configs(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        match (&mut block, line.trim_start()) {
            (None, "```toml") => block = Some(String::new()),
            (Some(b), "```") => {
                if b.contains("[server]") && b.contains("[[route.request]]") {
                    out.push(b.clone());
                }
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

fn load_doc_config(marker: &str) -> Config {
    let text = full_configs(&doc()).into_iter().find(|c| c.contains(marker)).expect("config in the doc");
    parse(&text, Path::new("docs/config.md")).unwrap_or_else(|e| panic!("{e}\n--- config:\n{text}"))
}

#[test]
fn every_full_config_in_the_doc_is_valid() {
    let configs = full_configs(&doc());
    assert!(configs.len() >= 2, "the doc shows the example and the reference routes");
    for text in configs {
        parse(&text, Path::new("docs/config.md")).unwrap_or_else(|e| panic!("{e}\n--- config:\n{text}"));
    }
}

#[test]
fn the_walk_through_shows_the_example_file() {
    let strip = |s: &str| -> Vec<String> {
        s.lines().map(str::trim_end).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
    };
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stateless-lb.toml")).unwrap();
    let shown = full_configs(&doc()).into_iter().find(|c| c.contains("stateless") || c.contains("5081")).unwrap();
    assert_eq!(strip(&shown), strip(&example));
}

#[test]
fn reference_routes() {
    let c = load_doc_config("SAFEGUARD");

    // DISPATCH: a hashed set, select with a 503 fallback, then forward.
    let core = c.dispatcher.set(1).unwrap();
    assert_eq!(core.algorithm, Algorithm::HashCallId);
    assert_eq!(core.destinations.len(), 3);
    assert_eq!(core.probe.interval.as_secs(), 5);
    assert_eq!(core.probe.timeout.as_secs(), 2);
    assert_eq!((core.probe.failure_threshold, core.probe.success_threshold), (3, 2));
    let uk = c.dispatcher.set(44).unwrap();
    assert_eq!(uk.algorithm, Algorithm::Weight);
    assert_eq!(uk.probe.up_codes.len(), 2);
    assert_eq!(uk.probe.interval.as_secs(), 5, "dispatcher-level defaults apply key by key");
    assert_eq!(uk.destinations[1].attrs, "backup");

    let rules = &c.routes.request.rules;
    let rule = |name: &str| rules.iter().find(|r| r.name.as_deref() == Some(name)).unwrap();

    let dispatch = rule("dispatch");
    assert_eq!(
        dispatch.actions,
        vec![
            Action::SetHeader {
                name: "X-Received-From".into(),
                value: Template(vec![Piece::Pv(Pv::SrcIp), Piece::Text(":".into()), Piece::Pv(Pv::SrcPort)]),
            },
            Action::Select {
                set: 1,
                otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No destination".into() }))
            },
            Action::Forward(None),
        ]
    );

    // LCR-like: $rm == INVITE and $rU ^= "+1"
    match &rule("us").cond {
        Some(Expr::And(a, b)) => {
            assert!(matches!(&**a, Expr::Cmp(Operand::Pv(Pv::Method), CmpOp::Eq, Operand::Str(m)) if m == "INVITE"));
            assert!(matches!(&**b, Expr::Cmp(Operand::Pv(Pv::RUser), CmpOp::StartsWith, Operand::Str(p)) if p == "+1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&rule("uk").cond, Some(Expr::And(_, b)) if matches!(**b, Expr::Or(..))));

    // SAFEGUARD: untrusted sources go through it; scanners are dropped.
    match &rule("untrusted").cond {
        Some(Expr::Not(inner)) => match &**inner {
            Expr::InNet(Operand::Pv(Pv::SrcIp), nets) => assert_eq!(nets.len(), 3),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(rule("untrusted").actions, vec![Action::Route("SAFEGUARD".into())]);
    let safeguard = &c.routes.named["SAFEGUARD"].rules;
    match &safeguard[0].cond {
        Some(Expr::Match { left: Operand::Pv(Pv::UserAgent), regex, negated: false }) => {
            assert!(regex.is_match(b"Friendly-Scanner 1.0"));
            assert!(regex.is_match(b"sipvicious"));
            assert!(!regex.is_match(b"Linphone/5.0"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(safeguard[0].actions, vec![Action::Drop]);
    // ... banned sources are dropped, and a source over 30 requests in 2 s is banned
    let rule = |name: &str| safeguard.iter().find(|r| r.name.as_deref() == Some(name)).unwrap();
    let si = Template(vec![Piece::Pv(Pv::SrcIp)]);
    let ipban = Sht { table: "ipban".into(), key: si };
    assert!(matches!(&rule("banned").cond, Some(Expr::ShtExists(s)) if *s == ipban));
    assert!(matches!(&rule("flood").cond, Some(Expr::Flooding)));
    assert_eq!(
        rule("flood").actions,
        vec![Action::ShtSet { sht: ipban, value: ShtValue::Int(1), expires: None }, Action::Drop]
    );
    assert_eq!(c.htables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ipban"]);
    let pike = c.pike.as_ref().expect("[pike]");
    assert_eq!((pike.window, pike.limit), (std::time::Duration::from_secs(2), 30));

    let reply = c.routes.reply.as_ref().unwrap();
    assert!(matches!(&reply.rules[0].cond, Some(Expr::Exists(Pv::Hdr(h))) if h == "X-Received-From"));
    assert_eq!(reply.rules[0].actions, vec![Action::RemoveHeader("X-Received-From".into())]);
}

#[test]
fn the_htable_route_example_is_valid() {
    // the SAFEGUARD snippet of "Using a table in routes" is a whole config but for [server]
    let doc = doc();
    let start = doc.find("### Using a table in routes").expect("the section");
    let section = &doc[start..];
    let block = section.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    assert!(block.contains("sht_set ipban $si 1"), "{block}");
    let text = format!("[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n{block}");
    let c = parse(&text, Path::new("docs/config.md")).unwrap_or_else(|e| panic!("{e}\n--- config:\n{text}"));
    assert_eq!(c.htables.len(), 2);
    assert_eq!(c.routes.request.rules.len(), 3);
}
