//! The RTP relay in the config: the `[media]` section, its checks against `[server]`, the
//! `anchor_media` action and where it may be used, and the example that anchors every call.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::{col_on, errors, expect_in, expect_one, line_of, ok};
use ringsip_config::route::{Action, Expr};
use ringsip_config::{AnchorFlags, Config, Errors, Media, ProbeMode};

const SERVER: &str = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n";
const ROUTE: &str = "\n[[route.request]]\ndo = [\"anchor_media\", \"relay\"]\n";

/// A config with this `[media]` body (and a request route that anchors).
fn with_media(body: &str) -> String {
    format!("{SERVER}\n[media]\n{body}\n{ROUTE}")
}

fn parse(text: &str) -> Config {
    ok(text, Path::new("t.toml"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_full_section() {
    let c = parse(&with_media(
        r#"address = "127.0.0.1"
advertise = "203.0.113.5"
ports = "30000-39999"
control = "127.0.0.1:2223"
timeout = "90s"
latching = false
strict_source = false
batch_wait = "250us""#,
    ));
    let m = c.media.expect("[media]");
    assert_eq!(
        m,
        Media {
            address: ip("127.0.0.1"),
            advertise: ip("203.0.113.5"),
            port_min: 30000,
            port_max: 39999,
            control: Some(addr("127.0.0.1:2223")),
            timeout: Duration::from_secs(90),
            latching: false,
            strict_source: false,
            batch_wait: Duration::from_micros(250),
        }
    );
    assert_eq!(m.ports(), 30000..=39999);
    assert_eq!(m.pairs(), 5000);
    assert_eq!(
        m.to_string(),
        "127.0.0.1 (advertised 203.0.113.5), ports 30000-39999 (5000 pairs), ng control 127.0.0.1:2223, timeout 90s, no latching, any source, batch wait 250us"
    );
    // IPv6, and the limits
    let m = parse(&with_media(
        "address = \"2001:db8::10\"\nadvertise = \"2001:db8::99\"\nports = \"1024-1025\"\ntimeout = \"24h\"\nbatch_wait = \"1ms\"",
    ))
    .media
    .unwrap();
    assert_eq!((m.address, m.advertise), (ip("2001:db8::10"), ip("2001:db8::99")));
    assert_eq!((m.port_min, m.port_max, m.pairs()), (1024, 1025, 1));
    assert_eq!((m.timeout, m.batch_wait), (Duration::from_secs(86400), Duration::from_millis(1)));
    let m =
        parse(&with_media("address = \"127.0.0.1\"\nports = \"65534-65535\"\ntimeout = \"1s\"\nbatch_wait = \"0ms\""))
            .media
            .unwrap();
    assert_eq!((m.port_min, m.port_max), (65534, 65535));
    assert_eq!((m.timeout, m.batch_wait), (Duration::from_secs(1), Duration::ZERO));
    // µs is accepted as well as us
    let m =
        parse(&with_media("address = \"127.0.0.1\"\nports = \"30000-30009\"\nbatch_wait = \"50µs\"")).media.unwrap();
    assert_eq!(m.batch_wait, Duration::from_micros(50));
}

#[test]
fn defaults() {
    let m = parse(&with_media("address = \"192.0.2.10\"\nports = \"30000-39999\"")).media.unwrap();
    assert_eq!(
        m,
        Media {
            address: ip("192.0.2.10"),
            advertise: ip("192.0.2.10"),
            port_min: 30000,
            port_max: 39999,
            control: None,
            timeout: Duration::from_secs(60),
            latching: true,
            strict_source: true,
            batch_wait: Duration::ZERO,
        }
    );
    assert_eq!(
        m.to_string(),
        "192.0.2.10, ports 30000-39999 (5000 pairs), no ng control, timeout 60s, latching, strict source, batch wait 0s"
    );
    assert_eq!(ringsip_config::DEFAULT_MEDIA_TIMEOUT, Duration::from_secs(60));
    // no section: no relay (and no anchor_media)
    let c = parse(&format!("{SERVER}\n[[route.request]]\ndo = \"relay\"\n"));
    assert_eq!(c.media, None);
}

#[test]
fn address_and_ports_are_required() {
    let text = with_media("ports = \"30000-39999\"");
    expect_one(
        &text,
        "[media]",
        "[media]",
        "[media] needs `address`: the IP the media ports bind on, like address = \"192.0.2.10\"",
    );
    let text = with_media("address = \"127.0.0.1\"");
    expect_one(
        &text,
        "[media]",
        "[media]",
        "[media] needs `ports`: the relay's port range, like ports = \"30000-39999\"",
    );
    // both missing: both reported (and anchor_media does not complain: the section is there)
    let errs = errors(&with_media(""));
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));
}

#[test]
fn port_range_errors() {
    for (ports, message) in [
        (
            "\"30001-39999\"",
            "media.ports \"30001-39999\": the first port must be even (RTP on even ports, RTCP on the next odd one)",
        ),
        ("\"39999-30000\"", "media.ports \"39999-30000\" goes backwards (write \"30000-39999\")"),
        (
            "\"30000-30000\"",
            "media.ports \"30000-30000\" holds one port: RTP and RTCP need two (an even port and the odd one after it)",
        ),
        (
            "\"1000-2000\"",
            "media.ports \"1000-2000\": the first port must be at least 1024 (the ports below are for system services)",
        ),
        ("\"30000-65536\"", "media.ports \"30000-65536\": port 65536 is out of range (at most 65535)"),
        ("\"30000\"", "media.ports \"30000\": write the range as \"MIN-MAX\", like \"30000-39999\""),
        (
            "\"30000-x\"",
            "media.ports \"30000-x\": \"x\" is not a port number (write the range as \"MIN-MAX\", like \"30000-39999\")",
        ),
        ("30000", "media.ports must be a range \"MIN-MAX\" like \"30000-39999\", not the integer 30000"),
    ] {
        let text = with_media(&format!("address = \"127.0.0.1\"\nports = {ports}"));
        expect_one(&text, "ports = ", ports, message);
    }
}

#[test]
fn the_range_keeps_clear_of_the_other_ports() {
    // the SIP listen port, on the media address
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:30010\"]\n\n[media]\naddress = \"127.0.0.1\"\nports = \"30000-39999\"\n{ROUTE}"
    );
    expect_one(
        &text,
        "ports = ",
        "\"30000",
        "media.ports \"30000-39999\" includes port 30010, which server.listen \"udp:127.0.0.1:30010\" uses on the same address: leave it out of the range",
    );
    // on a wildcard, which covers the media address
    let text = text.replace("udp:127.0.0.1:30010", "udp:0.0.0.0:30010");
    expect_one(
        &text,
        "ports = ",
        "\"30000",
        "media.ports \"30000-39999\" includes port 30010, which server.listen \"udp:0.0.0.0:30010\" uses on the same address: leave it out of the range",
    );
    // another address: no clash
    let text = text.replace("udp:0.0.0.0:30010", "udp:127.0.0.2:30010");
    parse(&text);
    // the ng control port and the metrics port
    let text = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\nmetrics = \"127.0.0.1:30080\"\n\n[media]\naddress = \"127.0.0.1\"\nports = \"30000-39999\"\ncontrol = \"127.0.0.1:30002\"\n{ROUTE}"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));
    let (line, col) = (line_of(&text, "ports = "), col_on(&text, "ports = ", "\"30000"));
    expect_in(
        &errs,
        line,
        col,
        "media.ports \"30000-39999\" includes port 30002, which media.control 127.0.0.1:30002 uses on the same address: leave it out of the range",
    );
    expect_in(
        &errs,
        line,
        col,
        "media.ports \"30000-39999\" includes port 30080, which server.metrics 127.0.0.1:30080 uses on the same address: leave it out of the range",
    );
}

#[test]
fn control_is_not_a_sip_address() {
    let text = with_media("address = \"127.0.0.1\"\nports = \"30000-39999\"\ncontrol = \"127.0.0.1:5060\"");
    expect_one(
        &text,
        "control = ",
        "\"127",
        "media.control 127.0.0.1:5060 clashes with server.listen \"udp:127.0.0.1:5060\" (the same UDP port on the same address): the ng control port needs a port of its own",
    );
    // a wildcard ng port over the SIP port
    let text = text.replace("control = \"127.0.0.1:5060\"", "control = \"0.0.0.0:5060\"");
    expect_one(
        &text,
        "control = ",
        "\"0.0",
        "media.control 0.0.0.0:5060 clashes with server.listen \"udp:127.0.0.1:5060\" (the same UDP port on the same address): the ng control port needs a port of its own",
    );
    // the same port on another address is fine
    parse(&text.replace("control = \"0.0.0.0:5060\"", "control = \"127.0.0.2:5060\""));
    for (control, message) in [
        ("\"127.0.0.1\"", "media.control \"127.0.0.1\" needs a port, like \"127.0.0.1:9090\""),
        (
            "\"ng.example.net:2223\"",
            "media.control \"ng.example.net:2223\": \"ng.example.net\" is not an IP address (write it like \"127.0.0.1:9090\")",
        ),
        ("2223", "media.control must be a string, not the integer 2223"),
    ] {
        let text = with_media(&format!("address = \"127.0.0.1\"\nports = \"30000-39999\"\ncontrol = {control}"));
        expect_one(&text, "control = ", control, message);
    }
}

#[test]
fn addresses() {
    for (line, marker, message) in [
        (
            "address = \"0.0.0.0\"",
            "\"0.0",
            "media.address \"0.0.0.0\" is a wildcard: give the IP the media ports bind on, like \"192.0.2.10\"",
        ),
        (
            "address = \"::\"",
            "\"::",
            "media.address \"::\" is a wildcard: give the IP the media ports bind on, like \"192.0.2.10\"",
        ),
        (
            "address = \"media.example.net\"",
            "\"media",
            "media.address \"media.example.net\" is a host name: give the IP the media ports bind on, like \"192.0.2.10\"",
        ),
        (
            "address = \"127.0.0.1:30000\"",
            "\"127",
            "media.address \"127.0.0.1:30000\" is an address without a port (the ports are media.ports)",
        ),
        ("address = \"[::1]\"", "\"[", "media.address \"[::1]\": write the IPv6 address without brackets"),
        (
            "address = \"127.0.0.256\"",
            "\"127",
            "media.address \"127.0.0.256\" is not an IP address: give the IP the media ports bind on, like \"192.0.2.10\"",
        ),
        ("address = 127", "127", "media.address must be a string, not the integer 127"),
    ] {
        let text = with_media(&format!("{line}\nports = \"30000-39999\""));
        expect_one(&text, line, marker, message);
    }
    for (line, marker, message) in [
        (
            "advertise = \"0.0.0.0\"",
            "\"0.0",
            "media.advertise \"0.0.0.0\" is a wildcard: give the IP phones send media to, like \"203.0.113.5\"",
        ),
        (
            "advertise = \"2001:db8::5\"",
            "\"2001",
            "media.advertise 2001:db8::5 is IPv6 but media.address 127.0.0.1 is IPv4: phones would send media to an address family the relay does not receive on",
        ),
    ] {
        let text = with_media(&format!("address = \"127.0.0.1\"\nports = \"30000-39999\"\n{line}"));
        expect_one(&text, line, marker, message);
    }
}

#[test]
fn durations_and_flags() {
    for (line, marker, message) in [
        ("timeout = \"0s\"", "\"0s", "media.timeout \"0s\" is out of range (1s to 86400s)"),
        ("timeout = \"25h\"", "\"25h", "media.timeout \"25h\" is out of range (1s to 86400s)"),
        ("timeout = 60", "60", "media.timeout = 60 needs a unit, like \"60s\""),
        (
            "timeout = \"60\"",
            "\"60",
            "media.timeout: duration \"60\" needs a unit: \"60s\" or \"60ms\" (units: ms, s, m, h)",
        ),
        (
            "timeout = \"1 minute\"",
            "\"1",
            "media.timeout: unknown unit \"minute\" in duration \"1 minute\" (units: ms, s, m, h)",
        ),
        (
            "batch_wait = \"2ms\"",
            "\"2ms",
            "media.batch_wait \"2ms\" is out of range (0us to 1ms): a shard's wait lingers at most that long for more packets",
        ),
        (
            "batch_wait = \"1001us\"",
            "\"1001us",
            "media.batch_wait \"1001us\" is out of range (0us to 1ms): a shard's wait lingers at most that long for more packets",
        ),
        ("batch_wait = 0", "0", "media.batch_wait = 0 needs a unit, like \"0us\" or \"100us\""),
        (
            "batch_wait = \"100ns\"",
            "\"100ns",
            "media.batch_wait: unknown unit \"ns\" in duration \"100ns\" (units: us, ms, s, m, h)",
        ),
        ("latching = \"yes\"", "\"yes", "media.latching must be true or false, not the string \"yes\""),
        ("strict_source = 1", "1", "media.strict_source must be true or false, not the integer 1"),
    ] {
        let text = with_media(&format!("address = \"127.0.0.1\"\nports = \"30000-39999\"\n{line}"));
        expect_one(&text, line, marker, message);
    }
}

#[test]
fn unknown_keys_and_shape() {
    let text = with_media("address = \"127.0.0.1\"\nports = \"30000-39999\"\nlatchng = true");
    expect_one(
        &text,
        "latchng",
        "latchng",
        "unknown key \"latchng\" in [media] (did you mean \"latching\"? allowed: address, advertise, ports, control, timeout, latching, strict_source, batch_wait)",
    );
    let text = with_media("address = \"127.0.0.1\"\nports = \"30000-39999\"\nport_range = \"x\"");
    expect_one(
        &text,
        "port_range",
        "port_range",
        "unknown key \"port_range\" in [media] (allowed: address, advertise, ports, control, timeout, latching, strict_source, batch_wait)",
    );
    // the section must be a table; a broken one does not add "needs a [media] section"
    let text = format!("media = 5\n{SERVER}{ROUTE}");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    expect_in(&errs, 1, 9, "[media] must be a table, not the integer 5");
    // every problem of the section in one run
    let text = with_media(
        "address = \"0.0.0.0\"\nports = \"30001-39999\"\ncontrol = \"127.0.0.1:5060\"\ntimeout = \"0s\"\nbatch_wait = \"5ms\"\nlatching = 1\nbogus = 1",
    );
    assert_eq!(errors(&text).len(), 7, "{}", Errors(errors(&text)));
}

#[test]
fn anchor_media_in_routes() {
    let base =
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n[media]\naddress = \"127.0.0.1\"\nports = \"30000-39999\"\n";
    let text = format!(
        "{base}\n[[route.request]]\nif = \"has_totag\"\ndo = [\"anchor_media\", \"relay\"]\n\n\
[[route.request]]\ndo = [\"anchor_media ice_remove replace_origin\", \"on_failure next\", 'relay \"sip:127.0.0.1:5080\"']\n\n\
[[route.next]]\nif = \"timeout and not replied\"\ndo = [\"anchor_media trust_address asymmetric\", 'relay \"sip:127.0.0.1:5081\"']\n"
    );
    let c = parse(&text);
    let rules = &c.routes.request.rules;
    assert_eq!(rules[0].actions, vec![Action::AnchorMedia(AnchorFlags::default()), Action::Relay(None)]);
    assert_eq!(
        rules[1].actions[0],
        Action::AnchorMedia(AnchorFlags { ice_remove: true, replace_origin: true, ..AnchorFlags::default() })
    );
    let next = &c.routes.named["next"].rules[0];
    assert!(matches!(next.cond, Some(Expr::And(..))));
    assert_eq!(
        next.actions[0],
        Action::AnchorMedia(AnchorFlags { trust_address: true, asymmetric: true, ..AnchorFlags::default() })
    );
    // and in a route the request route calls
    parse(&format!(
        "{base}\n[[route.request]]\ndo = [\"route media\", \"relay\"]\n\n[[route.media]]\ndo = \"anchor_media\"\n"
    ));
}

#[test]
fn anchor_media_needs_the_media_section() {
    let text = format!("{SERVER}\n[[route.request]]\ndo = [\"anchor_media ice_remove\", \"relay\"]\n");
    expect_one(
        &text,
        "anchor_media",
        "anchor_media",
        "anchor_media needs a [media] section (the relay's address and port range)",
    );
    // every use is reported, in any route
    let text = format!(
        "{SERVER}\n[[route.request]]\ndo = [\"anchor_media\", \"on_failure f\", \"relay\"]\n\n[[route.f]]\ndo = [\"anchor_media\", \"relay\"]\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{}", Errors(errs.clone()));
    for e in &errs {
        assert_eq!(e.message, "anchor_media needs a [media] section (the relay's address and port range)");
    }
    assert_eq!((errs[0].line, errs[0].col, errs[1].line, errs[1].col), (5, 8, 8, 8));
    // a section with mistakes still counts as there: only its own errors are reported
    let text = with_media("address = \"127.0.0.1\"\nports = \"30001-39999\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.starts_with("media.ports"), "{}", errs[0]);
}

#[test]
fn anchor_media_is_refused_in_reply_routes() {
    let base = with_media("address = \"127.0.0.1\"\nports = \"30000-39999\"");
    let text = format!("{base}\n[[route.reply]]\ndo = \"anchor_media\"\n");
    expect_one(
        &text,
        "do = \"anchor_media\"",
        "anchor_media",
        "anchor_media is not allowed in the reply route: it acts on a request and its transaction",
    );
    let text = base.replace("do = [\"anchor_media\", \"relay\"]", "do = [\"on_reply replies\", \"relay\"]")
        + "\n[[route.replies]]\nif = \"$rs == 183\"\ndo = \"anchor_media asymmetric\"\n";
    expect_one(
        &text,
        "anchor_media asymmetric",
        "anchor_media",
        "anchor_media is not allowed in the reply route: it acts on a request and its transaction (route \"replies\" runs on replies: on_reply arms it)",
    );
}

#[test]
fn anchor_media_flag_errors_point_at_the_flag() {
    let base = with_media("address = \"127.0.0.1\"\nports = \"30000-39999\"");
    let text = base.replace("\"anchor_media\"", "\"anchor_media ice_remove trust_adress\"");
    expect_one(
        &text,
        "trust_adress",
        "trust_adress",
        "unknown anchor_media flag `trust_adress` (did you mean trust_address? flags: ice_remove, asymmetric, trust_address, replace_origin)",
    );
    let text = base.replace("\"anchor_media\"", "\"anchor_media loud\"");
    expect_one(
        &text,
        "loud",
        "loud",
        "unknown anchor_media flag `loud` (flags: ice_remove, asymmetric, trust_address, replace_origin)",
    );
    let text = base.replace("\"anchor_media\"", "\"anchor_media asymmetric asymmetric\"");
    expect_one(&text, "asymmetric asymmetric", "asymmetric\"", "anchor_media: asymmetric is given twice");
    let text = base.replace("\"anchor_media\"", "\"rtpengine_manage\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{}", Errors(errs.clone()));
    assert!(errs[0].message.contains("ringsip's is `anchor_media [flags]`"), "{}", errs[0]);
}

#[test]
fn the_media_example_is_a_contract() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media.toml");
    let c = ringsip_config::load(&path).unwrap_or_else(|e| panic!("the example must load:\n{e}"));
    let s = &c.server;
    assert_eq!(s.listen.len(), 1);
    assert_eq!(s.listen[0].addr, addr("127.0.0.1:5060"));
    assert_eq!(s.control_socket, None, "two of these may run at once: no shared control socket");
    assert_eq!(s.metrics, Some(addr("127.0.0.1:9090")));
    assert_eq!(
        c.media,
        Some(Media {
            address: ip("127.0.0.1"),
            advertise: ip("127.0.0.1"),
            port_min: 30000,
            port_max: 39999,
            control: Some(addr("127.0.0.1:2223")),
            timeout: Duration::from_secs(60),
            latching: true,
            strict_source: true,
            batch_wait: Duration::ZERO,
        })
    );
    let set = c.dispatcher.set(1).unwrap();
    let addrs: Vec<_> = set.destinations.iter().map(|d| d.addr).collect();
    assert_eq!(addrs, [addr("127.0.0.1:5080")]);
    assert_eq!(set.probe.mode, ProbeMode::None, "calls go to 5080 whether it answers OPTIONS or not");

    let rules = &c.routes.request.rules;
    let names: Vec<_> = rules.iter().map(|r| r.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["max-forwards", "in-dialog", "dispatch"]);
    assert_eq!(rules[0].actions, vec![Action::Reply { code: 483, reason: "Too Many Hops".into() }]);
    assert!(matches!(rules[1].cond, Some(Expr::And(..))));
    assert_eq!(rules[1].actions, vec![Action::AnchorMedia(AnchorFlags::default()), Action::Relay(None)]);
    assert_eq!(
        rules[2].actions,
        vec![
            Action::Select {
                set: 1,
                otherwise: Some(Box::new(Action::Reply { code: 503, reason: "No destination".into() }))
            },
            Action::RecordRoute,
            Action::AnchorMedia(AnchorFlags::default()),
            Action::Relay(None),
        ]
    );
    assert!(c.routes.reply.is_none() && c.routes.named.is_empty());
}
