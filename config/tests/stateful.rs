//! The transaction-stateful proxy in the config: `relay`, `record_route`, `on_failure`,
//! `on_reply`, `select next`, `mark_down`, the failure-route conditions, where each may be
//! used, the `[transactions]` section, and the examples that use them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{col_on, errors, expect_in, expect_one, line_of, ok};
use ringsip_config::route::{Action, CmpOp, Expr, Operand, Pv, Target};
use ringsip_config::{Config, Errors, Transactions};

/// A failover config: the request route arms `failover`, which retries on the next
/// destination and re-arms itself.
const FAILOVER: &str = r#"[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080", "sip:127.0.0.1:5081"]

[[route.request]]
name = "dispatch"
do = ['select 1 else reply 503 "No destination"', "record_route", "on_failure failover", "relay"]

[[route.failover]]
name = "cancelled"
if = "cancelled"
do = "return"

[[route.failover]]
name = "next"
if = "$rs >= 500 and $rs < 600 or timeout and not replied"
do = ['select next else reply 503 "x"', "on_failure failover", "relay"]
"#;

fn parse(text: &str) -> Config {
    ok(text, Path::new("t.toml"))
}

#[test]
fn failover_routes_parse_and_a_failure_route_may_arm_itself() {
    let c = parse(FAILOVER);
    let dispatch = &c.routes.request.rules[0].actions;
    assert_eq!(
        dispatch,
        &vec![
            Action::Select {
                set: 1,
                otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No destination".into() })),
            },
            Action::RecordRoute,
            Action::OnFailure("failover".into()),
            Action::Relay(None),
        ]
    );
    let failover = &c.routes.named["failover"].rules;
    assert!(matches!(failover[0].cond, Some(Expr::Cancelled)));
    assert_eq!(failover[0].actions, vec![Action::Return]);
    // $rs >= 500 and $rs < 600 or timeout and not replied
    let Some(Expr::Or(a, b)) = &failover[1].cond else { panic!("{:?}", failover[1].cond) };
    assert!(
        matches!(&**a, Expr::And(x, _) if matches!(&**x, Expr::Cmp(Operand::Pv(Pv::Status), CmpOp::Ge, Operand::Int(500))))
    );
    assert!(
        matches!(&**b, Expr::And(t, n) if matches!(**t, Expr::Timeout) && matches!(&**n, Expr::Not(r) if matches!(**r, Expr::Replied)))
    );
    assert_eq!(
        failover[1].actions,
        vec![
            Action::SelectNext { otherwise: Some(Box::new(Action::Reply { code: 503, reason: "x".into() })) },
            Action::OnFailure("failover".into()),
            Action::Relay(None),
        ]
    );
}

#[test]
fn every_new_action_and_condition_parses_in_a_config() {
    let text = FAILOVER.to_string()
        + r#"
[[route.failover]]
name = "dead"
if = "timeout and not replied"
do = ["mark_down", "select next", 'relay "udp:127.0.0.1:5082"']

[[route.replies]]
if = "$rs == 180"
do = "append_header X-Ringing 'yes'"

[[route.other]]
do = ["on_reply replies", "on_failure failover", 'relay "sip:127.0.0.1:5083"']
"#;
    let c = parse(&text);
    let dead = &c.routes.named["failover"].rules[2];
    assert_eq!(
        dead.actions,
        vec![
            Action::MarkDown,
            Action::SelectNext { otherwise: None },
            Action::Relay(Some(Target { text: "udp:127.0.0.1:5082".into(), addr: "127.0.0.1:5082".parse().unwrap() })),
        ]
    );
    let other = &c.routes.named["other"].rules[0].actions;
    assert_eq!(other[0], Action::OnReply("replies".into()));
    assert!(matches!(&other[2], Action::Relay(Some(t)) if t.addr.port() == 5083));
    // `select next else <action>` in the request route, after a select
    let text = FAILOVER.replace(
        r#"'select 1 else reply 503 "No destination"', "record_route""#,
        r#"'select 1', 'select next else reply 503 "x"', "record_route""#,
    );
    let c = parse(&text);
    assert_eq!(
        c.routes.request.rules[0].actions[1],
        Action::SelectNext { otherwise: Some(Box::new(Action::Reply { code: 503, reason: "x".into() })) }
    );
}

#[test]
fn on_failure_and_on_reply_need_an_existing_route() {
    let text = FAILOVER.replace(
        "\"on_failure failover\", \"relay\"]\n\n[[route.failover]]\nname = \"cancelled\"",
        "\"on_failure failovr\", \"relay\"]\n\n[[route.failover]]\nname = \"cancelled\"",
    );
    expect_one(
        &text,
        "on_failure failovr",
        "failovr",
        "unknown route \"failovr\" (did you mean \"failover\"? named routes: failover)",
    );
    let text = FAILOVER.replace(
        "\"on_failure failover\", \"relay\"]\n\n[[route.failover]]\nname = \"cancelled\"",
        "\"on_reply nothing-like-it\", \"relay\"]\n\n[[route.failover]]\nname = \"cancelled\"",
    );
    expect_one(&text, "on_reply nothing", "nothing", "unknown route \"nothing-like-it\" (named routes: failover)");
    let text = FAILOVER.replace("[[route.failover]]", "[[route.failovr]]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));
    for e in &errs {
        assert_eq!(e.message, "unknown route \"failover\" (did you mean \"failovr\"? named routes: failovr)");
    }
    let text = FAILOVER.replace(
        "\"on_failure failover\", \"relay\"]\n\n[[route.failover]]\nname = \"cancelled\"",
        "\"on_failure request\", \"relay\"]\n\n[[route.failover]]\nname = \"cancelled\"",
    );
    expect_one(
        &text,
        "on_failure request",
        "request\"",
        "on_failure request: route request runs by itself and cannot be armed; put the rules in a named route",
    );
    // no named routes at all
    let text = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[route.request]]\ndo = [\"on_reply seen\", \"relay\"]\n";
    expect_one(text, "on_reply", "seen", "unknown route \"seen\" (no named routes are defined; add [[route.seen]])");
}

#[test]
fn arming_is_not_calling() {
    // a failure route that calls itself with `route` is a loop; arming itself is not
    let text = FAILOVER.replace(
        "do = ['select next else reply 503 \"x\"', \"on_failure failover\", \"relay\"]",
        "do = ['select next else reply 503 \"x\"', \"on_failure failover\", \"route failover\"]",
    );
    expect_one(&text, "route failover\"]", "failover\"]", "route \"failover\" calls itself (routes may not recurse)");
    // two failure routes arming each other: fine
    let text = FAILOVER.replace("\"on_failure failover\", \"relay\"]\n", "\"on_failure other\", \"relay\"]\n")
        + "\n[[route.other]]\ndo = [\"select next\", \"on_failure failover\", \"relay\"]\n";
    parse(&text);
}

#[test]
fn failure_routes_read_the_failed_status_but_request_routes_do_not() {
    // $rs is allowed in a failure route (above) and in what it calls
    let text = FAILOVER.replace("if = \"cancelled\"\ndo = \"return\"", "if = \"cancelled\"\ndo = \"route log\"")
        + "\n[[route.log]]\nif = \"$rs == 487\"\ndo = \"append_header X-Why '$rr'\"\n";
    parse(&text);
    // but not in a route the request route also calls
    let text = text.replace("name = \"dispatch\"\ndo = [", "name = \"dispatch\"\ndo = [\"route log\", ");
    let errs = errors(&text);
    let e = errs.iter().find(|e| e.message.starts_with("$rs ")).unwrap_or_else(|| panic!("{}", Errors(errs.clone())));
    assert_eq!(
        e.message,
        "$rs is only set on replies and in failure routes; use it in [[route.reply]], or in a route armed by on_reply or on_failure (route \"log\" is called from the request route)"
    );
}

#[test]
fn where_each_stateful_action_may_be_used() {
    let base = FAILOVER;
    // relay, record_route, on_failure, on_reply: not in the reply route
    for (action, name) in [
        ("relay", "relay"),
        ("record_route", "record_route"),
        ("on_failure failover", "on_failure"),
        ("on_reply quiet", "on_reply"),
    ] {
        let text = format!("{base}\n[[route.reply]]\ndo = \"{action}\"\n\n[[route.quiet]]\ndo = \"drop\"\n");
        expect_one(
            &text,
            &format!("do = \"{action}\""),
            action,
            &format!("{name} is not allowed in the reply route: it acts on a request and its transaction"),
        );
    }
    // an on_reply route is a reply route, and so is what it calls
    let text = format!("{base}\n[[route.replies]]\ndo = \"route helper\"\n\n[[route.helper]]\ndo = \"relay\"\n")
        .replace(
            "\"on_failure failover\", \"relay\"]\n\n",
            "\"on_reply replies\", \"on_failure failover\", \"relay\"]\n\n",
        );
    expect_one(
        &text,
        "do = \"relay\"",
        "relay",
        "relay is not allowed in the reply route: it acts on a request and its transaction (route \"helper\" is called from route \"replies\", which on_reply arms)",
    );
    let text = format!("{base}\n[[route.replies]]\ndo = 'reply 500 \"x\"'\n").replace(
        "\"on_failure failover\", \"relay\"]\n\n",
        "\"on_reply replies\", \"on_failure failover\", \"relay\"]\n\n",
    );
    expect_one(
        &text,
        "reply 500",
        "reply 500",
        "reply is not allowed in the reply route: a reply cannot be answered (route \"replies\" runs on replies: on_reply arms it)",
    );
    let text = format!("{base}\n[[route.replies]]\ndo = 'select next'\n").replace(
        "\"on_failure failover\", \"relay\"]\n\n",
        "\"on_reply replies\", \"on_failure failover\", \"relay\"]\n\n",
    );
    expect_one(
        &text,
        "select next'",
        "select next",
        "select is not allowed in the reply route: replies go back along their Via headers (route \"replies\" runs on replies: on_reply arms it)",
    );
    // $rs in an on_reply route is fine
    let text = format!("{base}\n[[route.replies]]\nif = \"$rs == 183\"\ndo = 'drop'\n").replace(
        "\"on_failure failover\", \"relay\"]\n\n",
        "\"on_reply replies\", \"on_failure failover\", \"relay\"]\n\n",
    );
    parse(&text);
    // a failure route relays; a stateless forward there is refused
    let text = FAILOVER.replace("\"on_failure failover\", \"relay\"]\n\"#", "\"forward\"]\n\"#");
    let text = text.replace(
        "do = ['select next else reply 503 \"x\"', \"on_failure failover\", \"relay\"]",
        "do = ['select next else reply 503 \"x\"', \"forward\"]",
    );
    expect_one(
        &text,
        "\"forward\"]",
        "forward",
        "forward is not allowed in a failure route: use relay to try a new branch, or reply to answer (route \"failover\" is a failure route: on_failure arms it)",
    );
    // mark_down: failure routes only
    let text = FAILOVER.replace("\"record_route\", \"on_failure", "\"mark_down\", \"on_failure");
    expect_one(
        &text,
        "\"mark_down\"",
        "mark_down",
        "mark_down only works in a failure route (a route armed by on_failure): it marks the destination of the branch that failed",
    );
    let text = format!("{base}\n[[route.reply]]\ndo = \"mark_down\"\n");
    expect_one(
        &text,
        "do = \"mark_down\"",
        "mark_down",
        "mark_down only works in a failure route (a route armed by on_failure): it marks the destination of the branch that failed",
    );
    let text = FAILOVER.replace("do = \"return\"", "do = [\"mark_down\", \"return\"]");
    parse(&text);
    // a `do` list ends at relay
    let text = FAILOVER
        .replace("\"on_failure failover\", \"relay\"]\n\n", "\"on_failure failover\", \"relay\", \"drop\"]\n\n");
    expect_one(
        &text,
        "\"relay\", \"drop\"",
        "\"drop\"",
        "unreachable action after relay (relay ends the rule; nothing after it runs)",
    );
}

const SERVER: &str = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n[[route.request]]\ndo = \"relay\"\n";

fn transactions(body: &str) -> String {
    format!("{SERVER}\n[transactions]\n{body}\n")
}

#[test]
fn transactions_defaults() {
    let c = parse(SERVER);
    let t = &c.transactions;
    assert_eq!(*t, Transactions::default());
    assert_eq!(t.t1, Duration::from_millis(500));
    assert_eq!(t.t2, Duration::from_secs(4));
    assert_eq!(t.t4, Duration::from_secs(5));
    assert_eq!(t.timer_c, Duration::from_secs(180));
    assert_eq!(t.no_reply_timeout, Duration::from_secs(32));
    assert_eq!(t.max_per_shard, 65536);
    assert_eq!(t.retry_after, 5);
    assert_eq!(t.to_string(), "t1 500ms, t2 4s, t4 5s, timer C 180s, no-reply 32s, 65536 per shard, Retry-After 5s");
    // an empty section is the defaults too
    assert_eq!(parse(&transactions("")).transactions, Transactions::default());
}

#[test]
fn transactions_every_key() {
    let c = parse(&transactions(
        "t1 = \"250ms\"\nt2 = \"2s\"\nt4 = \"1s\"\ntimer_c = \"90s\"\nno_reply_timeout = \"16s\"\nmax_per_shard = 16\nretry_after = 0",
    ));
    let t = c.transactions;
    assert_eq!(
        t,
        Transactions {
            t1: Duration::from_millis(250),
            t2: Duration::from_secs(2),
            t4: Duration::from_secs(1),
            timer_c: Duration::from_secs(90),
            no_reply_timeout: Duration::from_secs(16),
            max_per_shard: 16,
            retry_after: 0,
        }
    );
    assert_eq!(t.to_string(), "t1 250ms, t2 2s, t4 1s, timer C 90s, no-reply 16s, 16 per shard, no Retry-After");
    // no_reply_timeout follows t1 when not given; t2 is at least t1
    let t = parse(&transactions("t1 = \"100ms\"")).transactions;
    assert_eq!((t.no_reply_timeout, t.t2), (Duration::from_millis(6400), Duration::from_secs(4)));
    let t = parse(&transactions("t1 = \"10s\"")).transactions;
    assert_eq!((t.no_reply_timeout, t.t2), (Duration::from_secs(640), Duration::from_secs(10)));
    // the limits themselves
    let t = parse(&transactions(
        "t1 = \"10ms\"\nt2 = \"60s\"\nt4 = \"60s\"\ntimer_c = \"24h\"\nno_reply_timeout = \"100ms\"\nmax_per_shard = 10000000\nretry_after = 3600",
    ))
    .transactions;
    assert_eq!((t.t1, t.t2, t.t4), (Duration::from_millis(10), Duration::from_secs(60), Duration::from_secs(60)));
    assert_eq!((t.timer_c, t.no_reply_timeout), (Duration::from_secs(86400), Duration::from_millis(100)));
    assert_eq!((t.max_per_shard, t.retry_after), (10_000_000, 3600));
    let t = parse(&transactions("t1 = \"1s\"\nno_reply_timeout = \"64s\"\ntimer_c = \"1s\"\nt4 = \"1s\"")).transactions;
    assert_eq!(t.no_reply_timeout, Duration::from_secs(64));
}

#[test]
fn transactions_errors() {
    for (body, marker, message) in [
        ("t1 = \"5ms\"", "\"5ms\"", "transactions.t1 \"5ms\" is out of range (10ms to 10s)"),
        ("t1 = \"11s\"", "\"11s\"", "transactions.t1 \"11s\" is out of range (10ms to 10s)"),
        ("t1 = 500", "500", "transactions.t1 = 500 needs a unit: write \"500ms\" or \"500s\""),
        (
            "t1 = \"half\"",
            "\"half\"",
            "transactions.t1: \"half\" is not a duration (write a whole number and a unit: \"500ms\", \"2s\", \"1m\", \"1h\")",
        ),
        (
            "t1 = \"500\"",
            "\"500\"",
            "transactions.t1: duration \"500\" needs a unit: \"500s\" or \"500ms\" (units: ms, s, m, h)",
        ),
        ("t1 = true", "true", "transactions.t1 must be a string, not the boolean true"),
        ("t2 = \"61s\"", "\"61s\"", "transactions.t2 \"61s\" is out of range (at most 60s)"),
        (
            "t2 = \"400ms\"",
            "\"400ms\"",
            "transactions.t2 \"400ms\" is shorter than t1 (500ms): T2 caps retransmission intervals that start at T1, so it must be at least t1",
        ),
        (
            "t1 = \"2s\"\nt2 = \"1s\"",
            "\"1s\"",
            "transactions.t2 \"1s\" is shorter than t1 (2s): T2 caps retransmission intervals that start at T1, so it must be at least t1",
        ),
        ("t4 = \"0s\"", "\"0s\"", "transactions.t4 \"0s\" is out of range (1s to 60s)"),
        ("t4 = \"61s\"", "\"61s\"", "transactions.t4 \"61s\" is out of range (1s to 60s)"),
        ("timer_c = \"999ms\"", "\"999ms\"", "transactions.timer_c \"999ms\" is out of range (1s to 86400s)"),
        ("timer_c = \"25h\"", "\"25h\"", "transactions.timer_c \"25h\" is out of range (1s to 86400s)"),
        (
            "no_reply_timeout = \"99ms\"",
            "\"99ms\"",
            "transactions.no_reply_timeout \"99ms\" is too short (at least 100ms)",
        ),
        (
            "no_reply_timeout = \"33s\"",
            "\"33s\"",
            "transactions.no_reply_timeout \"33s\" is longer than 64*t1 (32s): RFC 3261's Timers B and F are 64*T1, so a longer wait needs a longer t1",
        ),
        (
            "t1 = \"100ms\"\nno_reply_timeout = \"7s\"",
            "\"7s\"",
            "transactions.no_reply_timeout \"7s\" is longer than 64*t1 (6400ms): RFC 3261's Timers B and F are 64*T1, so a longer wait needs a longer t1",
        ),
        ("max_per_shard = 15", "15", "transactions.max_per_shard = 15 is out of range (16 to 10000000)"),
        (
            "max_per_shard = 10000001",
            "10000001",
            "transactions.max_per_shard = 10000001 is out of range (16 to 10000000)",
        ),
        ("max_per_shard = \"64k\"", "\"64k\"", "transactions.max_per_shard must be an integer, not the string \"64k\""),
        ("retry_after = -1", "-1", "transactions.retry_after = -1 is out of range (0 to 3600)"),
        ("retry_after = 3601", "3601", "transactions.retry_after = 3601 is out of range (0 to 3600)"),
        ("retry_after = \"5s\"", "\"5s\"", "transactions.retry_after must be an integer, not the string \"5s\""),
        (
            "timer_b = \"32s\"",
            "timer_b",
            "unknown key \"timer_b\" in [transactions] (did you mean \"timer_c\"? allowed: t1, t2, t4, timer_c, no_reply_timeout, max_per_shard, retry_after)",
        ),
        (
            "no_reply = \"32s\"",
            "no_reply",
            "unknown key \"no_reply\" in [transactions] (allowed: t1, t2, t4, timer_c, no_reply_timeout, max_per_shard, retry_after)",
        ),
    ] {
        let text = transactions(body);
        let line_marker = body.lines().last().unwrap();
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{body}: {}", Errors(errs.clone()));
        expect_in(&errs, line_of(&text, line_marker), col_on(&text, line_marker, marker), message);
    }
    // a t1 out of range reports only itself (t2 and no_reply_timeout are not measured against it)
    let text = transactions("t1 = \"20s\"\nt2 = \"5s\"\nno_reply_timeout = \"60s\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    // every problem in the section at once
    let text = transactions("t1 = \"1ms\"\nt4 = \"0s\"\nmax_per_shard = 1\nretry_after = 9999\nbogus = 1");
    assert_eq!(errors(&text).len(), 5);
    // the section must be a table
    let text = format!("transactions = 5\n{SERVER}");
    let errs = errors(&text);
    expect_in(&errs, 1, 16, "[transactions] must be a table, not the integer 5");
}

#[test]
fn the_stateful_example_is_a_contract() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stateful-lb.toml");
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("the example must load:\n{e}"));
    let s = &c.server;
    assert_eq!(s.listen[0].addr, "127.0.0.1:5060".parse::<std::net::SocketAddr>().unwrap());
    assert_eq!(s.listen.len(), 1);
    assert_eq!(s.control_socket.as_deref(), Some(Path::new("/tmp/ringsip.sock")));
    assert_eq!(s.metrics, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(c.transactions, Transactions::default());
    let set = c.dispatcher.set(1).unwrap();
    assert_eq!(set.algorithm, ringsip_config::Algorithm::RoundRobin);
    let addrs: Vec<_> = set.destinations.iter().map(|d| d.addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.1:5080", "127.0.0.1:5081"]);
    assert_eq!(set.probe.method, "OPTIONS");
    assert_eq!(set.probe.interval, Duration::from_secs(2));
    assert_eq!((set.probe.failure_threshold, set.probe.success_threshold), (1, 1));

    let rules = &c.routes.request.rules;
    let names: Vec<_> = rules.iter().map(|r| r.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["max-forwards", "in-dialog", "dispatch"]);
    assert_eq!(rules[0].actions, vec![Action::Reply { code: 483, reason: "Too Many Hops".into() }]);
    assert!(matches!(rules[1].cond, Some(Expr::And(..))));
    assert_eq!(rules[1].actions, vec![Action::Relay(None)]);
    assert_eq!(
        rules[2].actions,
        vec![
            Action::Select {
                set: 1,
                otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No destination".into() }))
            },
            Action::RecordRoute,
            Action::OnFailure("failover".into()),
            Action::Relay(None),
        ]
    );
    assert_eq!(c.routes.named.keys().collect::<Vec<_>>(), ["failover"]);
    let failover = &c.routes.named["failover"].rules;
    assert!(matches!(failover[0].cond, Some(Expr::Cancelled)));
    assert_eq!(failover[0].actions, vec![Action::Return]);
    assert!(matches!(failover[1].cond, Some(Expr::Or(..))));
    assert_eq!(
        failover[1].actions,
        vec![
            Action::SelectNext {
                otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No destination".into() }))
            },
            Action::OnFailure("failover".into()),
            Action::Relay(None),
        ]
    );
}

#[test]
fn the_lcr_example_relays_and_fails_over_to_the_next_gateway() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lcr.toml");
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("the example must load:\n{e}"));
    let rule = |name: &str| c.routes.request.rules.iter().find(|r| r.name.as_deref() == Some(name)).unwrap();
    assert_eq!(rule("in-dialog").actions, vec![Action::Relay(None)]);
    let lcr = &rule("lcr").actions;
    assert!(matches!(lcr[0], Action::Lookup { .. }));
    assert!(matches!(lcr[1], Action::SelectLookup { otherwise: Some(_) }));
    assert_eq!(lcr[2..], [Action::RecordRoute, Action::OnFailure("next-gateway".into()), Action::Relay(None)]);
    let next = &c.routes.named["next-gateway"].rules;
    assert!(matches!(next[0].cond, Some(Expr::Cancelled)));
    assert_eq!(
        next[1].actions[0],
        Action::SelectNext {
            otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No available gateways".into() }))
        }
    );
    assert_eq!(next[1].actions[1..], [Action::OnFailure("next-gateway".into()), Action::Relay(None)]);
}

#[test]
fn the_doc_shows_the_stateful_example_routes() {
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split(" #").next().unwrap().trim_end())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/config.md")).unwrap();
    let section = &doc[doc.find("## Stateful proxying").expect("the section")..];
    let block = &section[section.find("```toml\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let example = std::fs::read_to_string(root.join("examples/stateful-lb.toml")).unwrap();
    let (shown, whole) = (strip(block), strip(&example));
    assert!(whole.ends_with(&shown), "the doc's routes are not the end of the example:\n{}", shown.join("\n"));
}
