//! The example config is a contract: it loads unchanged and means exactly this.

use std::path::Path;
use std::time::Duration;

use ringsip_config::route::{Action, CmpOp, Expr, Operand, Pv};
use ringsip_config::{Algorithm, CodeRange, ProbeMode, Transport};

fn example() -> ringsip_config::Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stateless-lb.toml");
    ringsip_config::load(&path).unwrap_or_else(|e| panic!("the example must load:\n{e}"))
}

#[test]
fn server_section() {
    let c = example();
    let s = &c.server;
    assert_eq!(s.listen.len(), 1);
    assert_eq!(s.listen[0].transport, Transport::Udp);
    assert_eq!(s.listen[0].addr, "127.0.0.1:5060".parse::<std::net::SocketAddr>().unwrap());
    assert_eq!(s.listen[0].text, "udp:127.0.0.1:5060");
    assert_eq!(s.control_socket.as_deref(), Some(Path::new("/tmp/ringsip.sock")));
    assert_eq!(s.metrics, Some("127.0.0.1:9090".parse().unwrap()));
    // Defaults.
    assert_eq!(s.advertise, None);
    assert_eq!(s.shards, None);
    assert_eq!(s.cpus, None);
    assert_eq!(s.log, "info");
    assert_eq!(s.rcvbuf, 8 << 20);
    assert_eq!(s.sndbuf, 4 << 20);
    assert_eq!(s.batch, 64);
    assert_eq!(s.sticky_entries, 65536);
    assert!(c.source.ends_with("examples/stateless-lb.toml"));
}

#[test]
fn dispatcher_section() {
    let c = example();
    assert_eq!(c.dispatcher.sets.len(), 1);
    let set = c.dispatcher.set(1).expect("set 1");
    assert_eq!(set.id, 1);
    assert_eq!(set.name, None);
    assert_eq!(set.algorithm, Algorithm::RoundRobin);
    assert_eq!(set.algorithm.number(), 4);
    assert_eq!(set.hash_pv, None);
    let addrs: Vec<_> = set.destinations.iter().map(|d| d.addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.1:5080", "127.0.0.1:5081"]);
    for d in &set.destinations {
        assert_eq!((d.weight, d.priority, d.attrs.as_str(), d.disabled), (1, 0, "", false));
    }
    assert_eq!(set.destinations[0].uri, "sip:127.0.0.1:5080");
    let p = &set.probe;
    assert_eq!(p.mode, ProbeMode::All);
    assert_eq!(p.method, "OPTIONS");
    assert_eq!(p.interval, Duration::from_secs(2));
    assert_eq!(p.timeout, Duration::from_secs(2), "timeout defaults to the interval");
    assert_eq!((p.failure_threshold, p.success_threshold), (1, 1));
    assert_eq!(p.up_codes, vec![CodeRange { lo: 200, hi: 299 }]);
    assert_eq!(p.from, "sip:ringsip@127.0.0.1");
}

#[test]
fn request_route() {
    let c = example();
    assert!(c.routes.reply.is_none());
    assert!(c.routes.named.is_empty());
    let rules = &c.routes.request.rules;
    assert_eq!(rules.len(), 3);

    // 1. max-forwards: $hdr(Max-Forwards) == 0 -> reply 483
    assert_eq!(rules[0].name.as_deref(), Some("max-forwards"));
    match &rules[0].cond {
        Some(Expr::Cmp(Operand::Pv(Pv::Hdr(h)), CmpOp::Eq, Operand::Int(0))) => assert_eq!(h, "Max-Forwards"),
        other => panic!("rule 1 condition: {other:?}"),
    }
    assert_eq!(rules[0].actions, vec![Action::Reply { code: 483, reason: "Too Many Hops".into() }]);

    // 2. in-dialog: has_totag and $rd != myself -> forward
    assert_eq!(rules[1].name.as_deref(), Some("in-dialog"));
    match &rules[1].cond {
        Some(Expr::And(a, b)) => {
            assert!(matches!(**a, Expr::HasToTag), "left of and: {a:?}");
            assert!(
                matches!(**b, Expr::Cmp(Operand::Pv(Pv::RDomain), CmpOp::Ne, Operand::Myself)),
                "right of and: {b:?}"
            );
        }
        other => panic!("rule 2 condition: {other:?}"),
    }
    assert_eq!(rules[1].actions, vec![Action::Forward(None)]);

    // 3. dispatch: select 1 else reply 503 "No destination"; forward
    assert_eq!(rules[2].name.as_deref(), Some("dispatch"));
    assert!(rules[2].cond.is_none());
    assert_eq!(
        rules[2].actions,
        vec![
            Action::Select {
                set: 1,
                otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No destination".into() }))
            },
            Action::Forward(None),
        ]
    );
}

#[test]
fn parse_and_load_agree() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stateless-lb.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = ringsip_config::parse(&text, &path).unwrap();
    assert_eq!(c.routes.request.rules.len(), example().routes.request.rules.len());
    assert_eq!(c.source, path);
}

/// Every config in `examples/` loads (the ones with a contract of their own are checked in
/// detail elsewhere: here, stateful.rs, media.rs).
#[test]
fn every_example_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            ringsip_config::load(&path).unwrap_or_else(|e| panic!("{} must load:\n{e}", path.display()));
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    for want in ["lcr.toml", "media.toml", "stateful-lb.toml", "stateless-lb.toml"] {
        assert!(names.iter().any(|n| n == want), "{want} is missing from {}", dir.display());
    }
}
