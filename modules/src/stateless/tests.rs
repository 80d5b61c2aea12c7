//! The stateless proxy driven without sockets: datagrams in, queued datagrams out.

use super::*;
use ringsip_runtime::{SendBatch, ShardPlace};
use std::path::Path;

const LB: &str = r#"
[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080", "sip:127.0.0.1:5081"]
probe = { interval = "2s", failure_threshold = 1, success_threshold = 1 }

[[route.request]]
name = "max-forwards"
if = "$hdr(Max-Forwards) == 0"
do = 'reply 483 "Too Many Hops"'

[[route.request]]
name = "in-dialog"
if = "has_totag and $rd != myself"
do = "forward"

[[route.request]]
name = "tag"
if = '$rU == "tagme"'
do = ['set_header X-Src "$si:$sp"', 'append_header X-Hop "ringsip"', 'remove_header Subject']

[[route.request]]
name = "dispatch"
do = ['select 1 else reply 503 "No destination"', "forward"]
"#;

pub(super) struct H {
    pub(super) proxy: StatelessProxy,
    shared: Arc<Shared>,
    current: Published,
    batches: Vec<SendBatch>,
    io: ShardStats,
    /// Leave out the 100 Trying a stateful `relay` answers with (tests of where requests go).
    pub(super) skip_trying: bool,
}

pub(super) const UAC: &str = "203.0.113.45:5060";

impl H {
    pub(super) fn new(cfg: &str) -> H {
        H::with_path(cfg, Path::new("t.toml"))
    }

    pub(super) fn with_path(cfg: &str, path: &Path) -> H {
        H::build(cfg, path, None)
    }

    /// A harness whose shard relays media on `ports` (sans-IO: no sockets are bound).
    pub(super) fn with_media(cfg: &str, ports: std::ops::RangeInclusive<u16>) -> H {
        H::build(cfg, Path::new("t.toml"), Some(ports))
    }

    fn build(cfg: &str, path: &Path, media_ports: Option<std::ops::RangeInclusive<u16>>) -> H {
        let cfg = ringsip_config::parse(cfg, path).unwrap_or_else(|e| panic!("{e}"));
        let shared = Arc::new(Shared::new(&cfg).unwrap());
        let f = Factory::new(shared.clone(), Arc::new(Mutex::new(Vec::new())));
        let info = ShardInfo {
            place: ShardPlace { shard: 0, cpu: 0, node: 0 },
            shards: 1,
            listen: vec!["127.0.0.1:5060".parse().unwrap()],
            media_addr: media_ports.as_ref().map(|_| "127.0.0.1".parse().unwrap()),
            media_ports,
        };
        let io = ShardStats::default();
        H {
            proxy: f.make(&info, Arc::new(ShardStats::default())),
            shared,
            current: f.current.clone(),
            batches: vec![SendBatch::new(64, 1 << 20)],
            io,
            skip_trying: false,
        }
    }

    pub(super) fn feed(&mut self, data: &[u8], src: &str) -> Vec<(SocketAddr, Vec<u8>)> {
        self.feed_at(data, src, Instant::now())
    }

    pub(super) fn feed_at(&mut self, data: &[u8], src: &str, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let d = Datagram { data, src: src.parse().unwrap(), local: "127.0.0.1:5060".parse().unwrap(), listen: 0, now };
        let fds = [-1];
        let mut out = Outbox::new(&mut self.batches, &fds, &self.io, 20_000);
        self.proxy.datagram(&d, &mut out);
        self.take()
    }

    pub(super) fn tick(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let fds = [-1];
        let mut out = Outbox::new(&mut self.batches, &fds, &self.io, 20_000);
        self.proxy.tick(now, &mut out);
        self.take()
    }

    pub(super) fn take(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let skip = self.skip_trying;
        let v = self.batches[0]
            .queued()
            .filter(|(_, b)| !(skip && b.starts_with(b"SIP/2.0 100 ")))
            .map(|(a, b)| (a, b.to_vec()))
            .collect();
        self.batches[0].clear();
        v
    }
}

pub(super) fn invite(call: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-{call}\r\n{extra}From: sipp <sip:sipp@203.0.113.45:5060>;tag=f-{call}\r\nTo: <sip:service@127.0.0.1:5060>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: sip:sipp@203.0.113.45:5060\r\nMax-Forwards: 70\r\nSubject: test\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub(super) fn one(out: Vec<(SocketAddr, Vec<u8>)>) -> (SocketAddr, Vec<u8>) {
    assert_eq!(out.len(), 1, "{:?}", out.iter().map(|(a, b)| (a, String::from_utf8_lossy(b))).collect::<Vec<_>>());
    out.into_iter().next().unwrap()
}

#[test]
fn initial_requests_are_dispatched_round_robin_with_our_via() {
    let mut h = H::new(LB);
    let (to, fwd) = one(h.feed(&invite("c1", ""), UAC));
    assert_eq!(to, "127.0.0.1:5080".parse::<std::net::SocketAddr>().unwrap());
    let m = Message::parse(&fwd).unwrap();
    m.validate().unwrap();
    let vias: Vec<_> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].host_bytes(), b"127.0.0.1");
    assert_eq!(vias[0].port(), Some(5060));
    assert!(Branch::is_ours(vias[0].branch().unwrap()));
    assert_eq!(vias[1].branch(), Some(&b"z9hG4bK-c1"[..]));
    assert_eq!(vias[1].received(), None, "sent-by equals the source: no received");
    assert_eq!(m.max_forwards().unwrap(), Some(69));
    assert_eq!(m.request_uri_bytes(), Some(&b"sip:service@127.0.0.1:5060"[..]));
    let (to2, _) = one(h.feed(&invite("c2", ""), UAC));
    assert_eq!(to2, "127.0.0.1:5081".parse::<std::net::SocketAddr>().unwrap());
    // a retransmission gets the same branch (stateless), and goes round the ring again
    let (_, again) = one(h.feed(&invite("c1", ""), UAC));
    let b1 = Message::parse(&fwd).unwrap().via().unwrap().branch().unwrap().to_vec();
    assert_eq!(Message::parse(&again).unwrap().via().unwrap().branch().unwrap(), &b1[..]);
}

#[test]
fn cancel_follows_its_invite_and_gets_the_same_branch() {
    let mut h = H::new(LB);
    let (to_a, fwd_a) = one(h.feed(&invite("a", ""), UAC));
    let cancel = String::from_utf8(invite("a", ""))
        .unwrap()
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("1 INVITE", "1 CANCEL");
    // round-robin alone would send it to the other destination
    let (to_c, fwd_c) = one(h.feed(cancel.as_bytes(), UAC));
    assert_eq!(to_c, to_a);
    let ba = Message::parse(&fwd_a).unwrap().via().unwrap().branch().unwrap().to_vec();
    assert_eq!(Message::parse(&fwd_c).unwrap().via().unwrap().branch().unwrap(), &ba[..]);
    // an in-dialog request addressed to ringsip (no route info) follows the INVITE too
    let bye = String::from_utf8(invite("a", ""))
        .unwrap()
        .replace("INVITE sip:", "BYE sip:")
        .replace("1 INVITE", "2 BYE")
        .replace("To: <sip:service@127.0.0.1:5060>", "To: <sip:service@127.0.0.1:5060>;tag=uas1");
    let (to_b, _) = one(h.feed(bye.as_bytes(), UAC));
    assert_eq!(to_b, to_a);
}

#[test]
fn responses_go_back_along_the_vias() {
    let mut h = H::new(LB);
    let (_, fwd) = one(h.feed(&invite("r1", ""), UAC));
    let m = Message::parse(&fwd).unwrap();
    let ours = m.via().unwrap().as_bytes();
    let ringing = format!(
        "SIP/2.0 180 Ringing\r\nVia: {}\r\nVia: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-r1\r\nFrom: sipp <sip:sipp@203.0.113.45:5060>;tag=f-r1\r\nTo: <sip:service@127.0.0.1:5060>;tag=t1\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        String::from_utf8_lossy(ours)
    );
    let (to, back) = one(h.feed(ringing.as_bytes(), "127.0.0.1:5080"));
    assert_eq!(to, UAC.parse::<std::net::SocketAddr>().unwrap());
    let r = Message::parse(&back).unwrap();
    assert_eq!(r.vias().count(), 1);
    assert_eq!(r.via().unwrap().branch(), Some(&b"z9hG4bK-r1"[..]));
    assert_eq!(r.status(), Some(180));
    // a response whose top Via is not ours is dropped
    let foreign =
        ringing.replacen(&String::from_utf8_lossy(ours).into_owned(), "SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKx", 1);
    assert!(h.feed(foreign.as_bytes(), "127.0.0.1:5080").is_empty());
    assert_eq!(h.proxy.stats.drops[DropReason::NotOurVia as usize].get(), 1);
    // our address but not our branch: dropped too
    let not_branch = ringing.replacen("branch=z9hG4bKrsL", "branch=z9hG4bKzzz", 1);
    assert!(h.feed(not_branch.as_bytes(), "127.0.0.1:5080").is_empty());
    // rport/received of the next Via decide where it goes
    let natted = ringing.replacen(
        "SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-r1",
        "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-r1;received=198.51.100.7;rport=40123",
        1,
    );
    let (to, _) = one(h.feed(natted.as_bytes(), "127.0.0.1:5080"));
    assert_eq!(to, "198.51.100.7:40123".parse::<std::net::SocketAddr>().unwrap());
}

#[test]
fn received_and_rport_are_set_on_the_previous_hop() {
    let mut h = H::new(LB);
    let inv = String::from_utf8(invite("n1", "")).unwrap().replace(
        "Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-n1",
        "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK-n1",
    );
    let (_, fwd) = one(h.feed(inv.as_bytes(), "198.51.100.7:40123"));
    let m = Message::parse(&fwd).unwrap();
    let prev = m.vias().nth(1).unwrap().unwrap();
    assert_eq!(prev.received(), Some("198.51.100.7".parse().unwrap()));
    assert_eq!(prev.rport(), Some(Some(40123)));
    assert_eq!(prev.branch(), Some(&b"z9hG4bK-n1"[..]));
}

#[test]
fn in_dialog_requests_follow_the_route_set_or_request_uri() {
    let mut h = H::new(LB);
    // R-URI = the UAS contact: forwarded there, not dispatched
    let bye = "BYE sip:uas@127.0.0.1:5081 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-b\r\nFrom: <sip:sipp@203.0.113.45>;tag=f\r\nTo: <sip:service@127.0.0.1>;tag=t\r\nCall-ID: d1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let (to, _) = one(h.feed(bye.as_bytes(), UAC));
    assert_eq!(to, "127.0.0.1:5081".parse::<std::net::SocketAddr>().unwrap());
    // loose routing: ringsip's own Route entry is removed, the next one is the next hop
    let routed = bye.replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr>, <sip:192.0.2.99:5099;lr>\r\n",
    );
    let (to, fwd) = one(h.feed(routed.as_bytes(), UAC));
    assert_eq!(to, "192.0.2.99:5099".parse::<std::net::SocketAddr>().unwrap());
    let m = Message::parse(&fwd).unwrap();
    let routes: Vec<_> = m.routes().map(|r| r.unwrap().uri().as_bytes().to_vec()).collect();
    assert_eq!(routes, [b"sip:192.0.2.99:5099;lr".to_vec()]);
    // a host name as next hop: dropped and counted (no DNS on the hot path)
    let named = bye.replace("BYE sip:uas@127.0.0.1:5081", "BYE sip:uas@uas.example.com");
    assert!(h.feed(named.as_bytes(), UAC).is_empty());
    assert_eq!(h.proxy.stats.drops[DropReason::Unresolvable as usize].get(), 1);
}

#[test]
fn generated_replies() {
    let mut h = H::new(LB);
    // Max-Forwards 0 → 483 from the route
    let inv = String::from_utf8(invite("m0", "")).unwrap().replace("Max-Forwards: 70", "Max-Forwards: 0");
    let (to, r) = one(h.feed(inv.as_bytes(), UAC));
    assert_eq!(to, UAC.parse::<std::net::SocketAddr>().unwrap());
    let r = Message::parse(&r).unwrap();
    assert_eq!(r.status(), Some(483));
    assert!(r.to().unwrap().tag().is_some());
    // malformed CSeq → 400 with the reason in a Warning
    let bad = String::from_utf8(invite("b1", "")).unwrap().replace("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE");
    let (_, r) = one(h.feed(bad.as_bytes(), UAC));
    let r = Message::parse(&r).unwrap();
    assert_eq!(r.status(), Some(400));
    let w = r.header(HeaderName::Warning).unwrap();
    assert!(w.starts_with(b"399 ringsip \"CSeq: number out of range"), "{}", String::from_utf8_lossy(w));
    // (that reply copies the request's CSeq, as RFC 3261 §8.2.6.2 requires, so it cannot validate)
    // CSeq method mismatch: the reply is a valid message
    let mm = String::from_utf8(invite("b2", "")).unwrap().replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    let (_, r) = one(h.feed(mm.as_bytes(), UAC));
    let r = Message::parse(&r).unwrap();
    assert_eq!(r.status(), Some(400));
    r.validate().unwrap();
    // garbage: nothing sent, counted
    assert!(h.feed(b"\x00\x01garbage", UAC).is_empty());
    assert!(h.feed(b"\r\n\r\n", UAC).is_empty(), "a keep-alive is not an error");
    assert_eq!(h.proxy.stats.drops[DropReason::Unparsable as usize].get(), 1);
    // every destination down → 503 No destination
    for d in &h.shared.dispatcher.sets[0].dests {
        d.set_disabled(true);
    }
    let (_, r) = one(h.feed(&invite("n1", ""), UAC));
    let r = Message::parse(&r).unwrap();
    assert_eq!(
        (r.status(), r.start_line()),
        (Some(503), &ringsip_proto::StartLine::Response { code: 503, reason: b"No destination" })
    );
    // an ACK is never answered
    let ack =
        String::from_utf8(invite("a1", "")).unwrap().replace("INVITE sip:", "ACK sip:").replace("1 INVITE", "1 ACK");
    assert!(h.feed(ack.as_bytes(), UAC).is_empty());
}

#[test]
fn loops_are_refused_with_482() {
    let mut h = H::new(LB);
    let (_, fwd) = one(h.feed(&invite("l1", ""), UAC));
    // the forwarded request comes back to us unchanged but for one more Via on top
    let back = String::from_utf8(fwd).unwrap().replacen(
        "Via: ",
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKuas\r\nVia: ",
        1,
    );
    let (to, r) = one(h.feed(back.as_bytes(), "127.0.0.1:5080"));
    assert_eq!(to, "127.0.0.1:5080".parse::<std::net::SocketAddr>().unwrap());
    assert_eq!(Message::parse(&r).unwrap().status(), Some(482));
}

#[test]
fn header_actions_are_applied() {
    let mut h = H::new(LB);
    let inv = String::from_utf8(invite("h1", ""))
        .unwrap()
        .replace("sip:service@127.0.0.1:5060 SIP", "sip:tagme@127.0.0.1:5060 SIP");
    let (_, fwd) = one(h.feed(inv.as_bytes(), UAC));
    let m = Message::parse(&fwd).unwrap();
    let src: Vec<_> = m.headers_by_raw_name(b"X-Src").map(|h| h.value).collect();
    assert_eq!(src, [&b"203.0.113.45:5060"[..]]);
    assert_eq!(m.headers_by_raw_name(b"X-Hop").count(), 1);
    assert_eq!(m.header(HeaderName::Subject), None);
    m.validate().unwrap();
}

#[test]
fn probes_go_out_and_answers_are_recorded() {
    let mut h = H::new(LB);
    let t0 = Instant::now();
    let out = h.tick(t0);
    assert_eq!(out.len(), 2);
    let (to, opt) = &out[0];
    assert_eq!(*to, "127.0.0.1:5080".parse::<std::net::SocketAddr>().unwrap());
    let m = Message::parse(opt).unwrap();
    m.validate().unwrap();
    assert_eq!(m.method(), Some(Method::Options));
    let branch = m.via().unwrap().branch().unwrap();
    assert!(branch.starts_with(PROBE_PREFIX));
    // the destination answers 200 to the first probe, the second stays silent
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=x\r\nCall-ID: {}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        String::from_utf8_lossy(m.via().unwrap().as_bytes()),
        String::from_utf8_lossy(m.header(HeaderName::From).unwrap()),
        String::from_utf8_lossy(m.header(HeaderName::To).unwrap()),
        String::from_utf8_lossy(m.call_id().unwrap()),
    );
    assert!(h.feed(ok.as_bytes(), "127.0.0.1:5080").is_empty(), "probe answers are not forwarded");
    assert_eq!(h.proxy.stats.probe_answers.get(), 1);
    // after the timeout (= interval, 2 s) the silent one is down, the other still up
    let _ = h.tick(t0 + Duration::from_millis(2100));
    let d = &h.shared.dispatcher.sets[0].dests;
    assert!(d[0].available());
    assert!(!d[1].available());
    // and new calls all go to the one that answers
    for i in 0..4 {
        let (to, _) = one(h.feed(&invite(&format!("p{i}"), ""), UAC));
        assert_eq!(to, "127.0.0.1:5080".parse::<std::net::SocketAddr>().unwrap());
    }
}

#[test]
fn every_broken_request_with_a_usable_via_is_answered() {
    let mut h = H::new(LB);
    let via = "SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bKhostile";
    let cases = [
        (
            "cseq",
            format!(
                "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h1\r\nCSeq: 99999999999 INVITE\r\n\r\n"
            ),
        ),
        (
            "mismatch",
            format!(
                "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h2\r\nCSeq: 1 OPTIONS\r\n\r\n"
            ),
        ),
        (
            "quote",
            format!(
                "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: \"open <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h3\r\nCSeq: 1 INVITE\r\n\r\n"
            ),
        ),
        (
            "maxfwd",
            format!(
                "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h4\r\nCSeq: 1 INVITE\r\nMax-Forwards: 300\r\n\r\n"
            ),
        ),
    ];
    for (name, raw) in cases {
        let out = h.feed(raw.as_bytes(), "127.0.0.1:40000");
        assert_eq!(out.len(), 1, "{name}: no answer");
        assert_eq!(out[0].0, "127.0.0.1:40000".parse::<std::net::SocketAddr>().unwrap(), "{name}");
        assert_eq!(Message::parse(&out[0].1).unwrap().status(), Some(400), "{name}");
    }
}

/// The LCR example: `lookup routes $rU` then `select $mt`.
fn lcr() -> H {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/lcr.toml"));
    let text = std::fs::read_to_string(path).unwrap();
    // the example relays statefully: these tests look at where requests go
    let mut h = H::with_path(&text, path);
    h.skip_trying = true;
    h.skip_trying = true;
    h
}

fn call_to(user: &str, call: &str) -> Vec<u8> {
    String::from_utf8(invite(call, ""))
        .unwrap()
        .replace("INVITE sip:service@", &format!("INVITE sip:{user}@"))
        .into_bytes()
}

#[test]
fn lcr_routes_by_the_longest_prefix_with_set_failover() {
    let mut h = lcr();
    let gw_a: SocketAddr = "127.0.0.1:5080".parse::<std::net::SocketAddr>().unwrap();
    let gw_b: SocketAddr = "127.0.0.1:5081".parse().unwrap();
    // +4930 -> sets 2;1, +49 -> 1;2, +1 -> 2 (inline), +44 -> 1
    assert_eq!(one(h.feed(&call_to("+4930123456", "l1"), UAC)).0, gw_b);
    assert_eq!(one(h.feed(&call_to("+4989123456", "l2"), UAC)).0, gw_a);
    assert_eq!(one(h.feed(&call_to("+12125550100", "l3"), UAC)).0, gw_b);
    assert_eq!(one(h.feed(&call_to("+442071234567", "l4"), UAC)).0, gw_a);
    // no prefix matches: 404 from the route's else
    let (to, r) = one(h.feed(&call_to("+33123456789", "l5"), UAC));
    assert_eq!(to, UAC.parse::<std::net::SocketAddr>().unwrap());
    assert_eq!(Message::parse(&r).unwrap().status(), Some(404));
    // set 2's gateway down: +4930 fails over to set 1
    let set2 = h.shared.dispatcher.set_index(2).unwrap();
    h.shared.dispatcher.sets[set2].dests[0].set_disabled(true);
    assert_eq!(one(h.feed(&call_to("+4930999", "l6"), UAC)).0, gw_a);
    // +1 lists only set 2: nothing available, 503
    let (_, r) = one(h.feed(&call_to("+13105550100", "l7"), UAC));
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.status(), Some(503));
    assert!(String::from_utf8_lossy(&r).contains("No available gateways"));
    // the rest of the number after a character outside the alphabet does not count
    h.shared.dispatcher.sets[set2].dests[0].set_disabled(false);
    assert_eq!(one(h.feed(&call_to("+4930123;npdi", "l8"), UAC)).0, gw_b);
}

#[test]
fn mt_reads_the_matched_value() {
    let cfg = format!(
        "{LB}\n[[mtree]]\nname = \"tags\"\ntype = \"text\"\nentries = [{{ prefix = \"555\", value = \"premium\" }}, {{ prefix = \"5\", value = \"five\" }}]\n"
    )
    .replace(
        "[[route.request]]\nname = \"tag\"\nif = '$rU == \"tagme\"'",
        "[[route.request]]\nname = \"tag\"\ndo = ['lookup tags $rU', 'set_header X-Class \"$mt\"']\n\n[[route.request]]\nname = \"tag2\"\nif = '$rU == \"tagme\"'",
    );
    let mut h = H::new(&cfg);
    let fwd = one(h.feed(&call_to("5551234", "m1"), UAC)).1;
    assert!(String::from_utf8_lossy(&fwd).contains("X-Class: premium\r\n"), "{}", String::from_utf8_lossy(&fwd));
    let fwd = one(h.feed(&call_to("5000", "m2"), UAC)).1;
    assert!(String::from_utf8_lossy(&fwd).contains("X-Class: five\r\n"));
    // no match: $mt is empty
    let fwd = one(h.feed(&call_to("4000", "m3"), UAC)).1;
    assert!(String::from_utf8_lossy(&fwd).contains("X-Class: \r\n"), "{}", String::from_utf8_lossy(&fwd));
}

#[test]
fn a_published_snapshot_is_taken_at_the_next_batch_and_health_carries_over() {
    let mut h = H::new(LB);
    let old = h.shared.clone();
    // probing found 5081 down; the operator pushes a config that keeps 5081 and adds 5082
    old.dispatcher.sets[0].dests[1].mark_active(false);
    let text = LB.replace(
        r#"destinations = ["sip:127.0.0.1:5080", "sip:127.0.0.1:5081"]"#,
        r#"destinations = ["sip:127.0.0.1:5081", "sip:127.0.0.1:5082"]"#,
    );
    let cfg = ringsip_config::parse(&text, Path::new("t.toml")).unwrap();
    let bytes = crate::snapshot::build(&cfg, 2, 0).unwrap();
    let new = Shared::from_snapshot(crate::snapshot::open(&bytes).unwrap(), Some(&old)).unwrap();
    assert_eq!(new.meta.version, 2);
    assert!(!new.dispatcher.sets[0].dests[0].is_active(), "5081 stays down across the push");
    h.current.store(Arc::new(new));
    // until its next batch the shard runs the old snapshot
    let (to, _) = one(h.feed(&invite("before", ""), UAC));
    assert_eq!(to, "127.0.0.1:5080".parse::<SocketAddr>().unwrap());
    h.proxy.batch_start();
    for i in 0..4 {
        let (to, _) = one(h.feed(&invite(&format!("after-{i}"), ""), UAC));
        assert_eq!(to, "127.0.0.1:5082".parse::<SocketAddr>().unwrap(), "only the active destination of the new set");
    }
    // the old snapshot is held only by this test now: the shard let go of it
    drop(h.shared);
    assert_eq!(Arc::strong_count(&old), 1);
    // counters carried by URI: 5081 had none, 5082 got 4; 5080 is gone
    let dests = h.proxy.stats.dests.load();
    assert_eq!(dests.selected[0].iter().map(|c| c.get()).collect::<Vec<_>>(), vec![0, 4]);
}

/// SAFEGUARD's ban flow (Kamailio: `if ($sht(ipban=>$si) != $null) drop;`, pike, then
/// `$sht(ipban=>$si) = 1;`): a source that sends more than 3 requests within `pike`'s
/// 2 s autoexpire is banned for 5 minutes.
const SAFEGUARD: &str = r#"
[server]
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
do = ['select 1 else reply 503 "No destination"', "forward"]
"#;

const OTHER: &str = "198.51.100.9:5060";

#[test]
fn safeguard_bans_a_flooding_source_until_the_ban_is_lifted() {
    use crate::htable::Value;
    let mut h = H::new(SAFEGUARD);
    let gw: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let t0 = Instant::now();
    let ip = b"203.0.113.45";
    let mut forwarded = 0;
    for i in 0..5 {
        let out = h.feed_at(&invite(&format!("flood-{i}"), ""), UAC, t0);
        match i {
            0..=2 => {
                assert_eq!(one(out).0, gw, "request {i} is forwarded");
                forwarded += 1;
            }
            _ => assert!(out.is_empty(), "request {i} is dropped"),
        }
    }
    assert_eq!(forwarded, 3);
    let ipban = h.shared.htables.by_name("ipban").unwrap().clone();
    let pike = h.shared.htables.by_name("pike").unwrap().clone();
    assert_eq!(ipban.get_int(ip, t0), Some(1), "the 4th request set the ban");
    assert_eq!(pike.get_int(ip, t0), Some(4), "the ban drops before counting");
    assert_eq!(h.proxy.stats.drops[DropReason::Route as usize].get(), 2);
    assert_eq!(h.proxy.stats.htable_write_errors.get(), 0);
    // another source is not affected
    assert_eq!(one(h.feed_at(&invite("other", ""), OTHER, t0)).0, gw);
    // the ban outlives the counter (300 s against 2 s)
    let t1 = t0 + Duration::from_secs(3);
    assert!(h.feed_at(&invite("later", ""), UAC, t1).is_empty());
    // `htable delete ipban 203.0.113.45` lifts it; the counter has expired: a fresh start
    assert!(ipban.delete(ip));
    assert_eq!(one(h.feed_at(&invite("lifted", ""), UAC, t1)).0, gw);
    assert_eq!(pike.get_int(ip, t1), Some(1));
    // `htable set ipban 198.51.100.9 1` bans the other source
    ipban.set(b"198.51.100.9", Value::Int(1), None, t1).unwrap();
    assert!(h.feed_at(&invite("banned-by-hand", ""), OTHER, t1).is_empty());
    // the ban expires by itself after 300 s
    let t2 = t1 + Duration::from_secs(301);
    assert_eq!(one(h.feed_at(&invite("expired", ""), OTHER, t2)).0, gw);
}

#[test]
fn failed_htable_writes_are_counted_and_the_route_goes_on() {
    let cfg = SAFEGUARD.replace("name = \"pike\"\nautoexpire = \"2s\"", "name = \"pike\"\nmax_entries = 1")
        + "\n[[route.reply]]\ndo = ['sht_inc ipban \"text\"', \"forward\"]\n";
    let cfg = cfg.replace(
        "[[htable]]\nname = \"ipban\"\nautoexpire = \"300s\"",
        "[[htable]]\nname = \"ipban\"\nautoexpire = \"300s\"\nentries = [{ key = \"text\", value = \"not a number\" }]",
    );
    let mut h = H::new(&cfg);
    let gw: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let (_, fwd) = one(h.feed(&invite("w1", ""), UAC));
    // the table is full (max_entries = 1): the second source's sht_inc fails, it is forwarded
    assert_eq!(one(h.feed(&invite("w2", ""), OTHER)).0, gw);
    assert_eq!(h.proxy.stats.htable_write_errors.get(), 1);
    // sht_inc on a text value fails in the reply route; the reply is still relayed
    let m = Message::parse(&fwd).unwrap();
    let ringing = format!(
        "SIP/2.0 180 Ringing\r\nVia: {}\r\nVia: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-w1\r\nFrom: sipp <sip:sipp@203.0.113.45:5060>;tag=f-w1\r\nTo: <sip:service@127.0.0.1:5060>;tag=t1\r\nCall-ID: w1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        String::from_utf8_lossy(m.via().unwrap().as_bytes())
    );
    assert_eq!(one(h.feed(ringing.as_bytes(), "127.0.0.1:5080")).0, UAC.parse::<SocketAddr>().unwrap());
    assert_eq!(h.proxy.stats.htable_write_errors.get(), 2);
    let mut exported = None;
    h.proxy.stats.visit(&mut |m| {
        if m.name == "ringsip_htable_write_errors_total" {
            exported = Some(m.value);
        }
    });
    assert_eq!(exported, Some(2));
}

#[test]
fn htable_routes_go_through_a_snapshot_and_a_push_keeps_the_bans() {
    let mut h = H::new(SAFEGUARD);
    let gw: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let t0 = Instant::now();
    for i in 0..4 {
        let _ = h.feed_at(&invite(&format!("s{i}"), ""), UAC, t0);
    }
    assert!(h.feed_at(&invite("s4", ""), UAC, t0).is_empty(), "banned");
    // the routes survive the archive: the same actions come back
    let cfg = ringsip_config::parse(SAFEGUARD, Path::new("t.toml")).unwrap();
    let bytes = crate::snapshot::build(&cfg, 2, 0).unwrap();
    let opened = crate::snapshot::open(&bytes).unwrap();
    for (a, b) in opened.config.routes.request.rules.iter().zip(&cfg.routes.request.rules) {
        assert_eq!(a.actions, b.actions);
    }
    let new = Shared::from_snapshot(opened, Some(&h.shared)).unwrap();
    assert_eq!(new.program.htable_names, ["ipban", "pike"]);
    h.current.store(Arc::new(new));
    h.proxy.batch_start();
    // the new snapshot's routes read the same tables: the ban holds, the other source passes
    assert!(h.feed_at(&invite("after-push", ""), UAC, t0).is_empty());
    assert_eq!(one(h.feed_at(&invite("other", ""), OTHER, t0)).0, gw);
}

#[test]
fn weighted_set_values_share_calls_in_proportion_and_fail_over() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/lcr.toml"));
    let text = std::fs::read_to_string(path).unwrap().replace(
        "entries = [\n  { prefix = \"+1\", value = \"2\" },",
        "entries = [\n  { prefix = \"+1\", value = \"2:3;1:1\" },",
    );
    assert!(text.contains("2:3;1:1"), "the example changed: update this test");
    let mut h = H::with_path(&text, path);
    h.skip_trying = true;
    let gw_a: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let gw_b: SocketAddr = "127.0.0.1:5081".parse().unwrap();
    let mut to_b = 0;
    for i in 0..4000 {
        if one(h.feed(&call_to("+12125550100", &format!("w{i}")), UAC)).0 == gw_b {
            to_b += 1;
        }
    }
    // 3:1 → 3,000 expected; a fair generator stays well within ±150
    assert!((2850..=3150).contains(&to_b), "{to_b} of 4000 to the weight-3 set");
    // the weight-3 set down: every call fails over to the other set
    let set2 = h.shared.dispatcher.set_index(2).unwrap();
    h.shared.dispatcher.sets[set2].dests[0].set_disabled(true);
    for i in 0..50 {
        assert_eq!(one(h.feed(&call_to("+12125550100", &format!("f{i}")), UAC)).0, gw_a);
    }
}

#[test]
fn lookup_all_falls_back_to_the_sets_of_shorter_prefixes() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/lcr.toml"));
    let base = std::fs::read_to_string(path).unwrap();
    let gw_a: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    // +1 lists only set 2 (inline); the empty prefix (a default route) lists set 1
    let with_default = base.replace(
        "entries = [\n  { prefix = \"+1\", value = \"2\" },",
        "entries = [\n  { prefix = \"+1\", value = \"2\" },\n  { prefix = \"\", value = \"1\" },",
    );
    assert!(with_default.contains("prefix = \"\""), "the example changed: update this test");
    let all = with_default.replace("'lookup routes $rU else", "'lookup routes $rU all else");
    assert!(all.contains("$rU all else"));
    for (text, want_503) in [(with_default, true), (all, false)] {
        let mut h = H::with_path(&text, path);
        h.skip_trying = true;
        let set2 = h.shared.dispatcher.set_index(2).unwrap();
        h.shared.dispatcher.sets[set2].dests[0].set_disabled(true);
        let (to, r) = one(h.feed(&call_to("+13105550100", "a1"), UAC));
        if want_503 {
            // longest match only: set 2 has nothing up
            assert_eq!(Message::parse(&r).unwrap().status(), Some(503));
        } else {
            // all matches: the default route's set 1 takes the call
            assert_eq!(to, gw_a);
        }
    }
}

#[test]
fn the_flood_detector_keeps_its_counts_across_a_push_that_keeps_its_settings() {
    let with_pike = |limit: u32| {
        format!("{LB}\n[pike]\nwindow = \"2s\"\nlimit = {limit}\n").replace(
            "[[route.request]]\n",
            "[[route.request]]\nif = \"flooding\"\ndo = \"drop\"\n\n[[route.request]]\n",
        )
    };
    let build = |text: &str, version: u64, old: Option<&Shared>| {
        let cfg = ringsip_config::parse(text, Path::new("t.toml")).unwrap();
        let bytes = crate::snapshot::build(&cfg, version, 0).unwrap();
        Shared::from_snapshot(crate::snapshot::open(&bytes).unwrap(), old).unwrap()
    };
    let first = build(&with_pike(5), 1, None);
    let pike = first.htables.pike.clone().expect("a detector");
    pike.hit("192.0.2.1".parse().unwrap(), Instant::now());
    let same = build(&with_pike(5), 2, Some(&first));
    assert!(Arc::ptr_eq(same.htables.pike.as_ref().unwrap(), &pike), "same settings: the same detector, counts kept");
    let changed = build(&with_pike(50), 3, Some(&same));
    assert!(!Arc::ptr_eq(changed.htables.pike.as_ref().unwrap(), &pike), "new settings: a new detector");
    let gone = build(LB, 4, Some(&changed));
    assert!(gone.htables.pike.is_none());
}
