//! The stateful proxy driven without sockets under a virtual clock: every datagram and tick
//! carries an `Instant` the test chooses, so timer behaviour is asserted in virtual
//! milliseconds.

use super::tests::{H, UAC, invite, one};
use super::*;
use ringsip_runtime::{SendBatch, ShardPlace};
use std::time::Duration;

const STATEFUL: &str = r#"
[server]
listen = ["udp:127.0.0.1:5060"]

[transactions]
t1 = "500ms"
no_reply_timeout = "4s"
timer_c = "60s"
max_per_shard = 64

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080", "sip:127.0.0.1:5081"]

[[route.request]]
if = "has_totag and $rd != myself"
do = "relay"

[[route.request]]
do = ['select 1 else reply 503 "No destination"', "record_route", "on_failure failover", "relay"]

[[route.failover]]
if = "cancelled"
do = "return"

[[route.failover]]
if = "$rs >= 500 and $rs < 600 or timeout and not replied"
do = ['select next else reply 503 "No destination"', "on_failure failover", "relay"]
"#;

const A: &str = "127.0.0.1:5080";
const B: &str = "127.0.0.1:5081";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A response to the request `req` (as ringsip relayed it): every Via copied, a To tag.
fn answer(req: &[u8], code: u16, reason: &str, to_tag: &str) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for h in m.headers() {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq | HeaderName::RecordRoute => {
                s.push_str(&format!("{}: {}\r\n", text(h.raw_name), text(h.value)));
            }
            HeaderName::To => {
                let v = text(h.value);
                if v.contains("tag=") || code == 100 {
                    s.push_str(&format!("To: {v}\r\n"));
                } else {
                    s.push_str(&format!("To: {v};tag={to_tag}\r\n"));
                }
            }
            _ => {}
        }
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s.into_bytes()
}

fn status(b: &[u8]) -> u16 {
    Message::parse(b).unwrap().status().unwrap_or(0)
}

fn method(b: &[u8]) -> String {
    text(Message::parse(b).unwrap().method_bytes().unwrap_or(b""))
}

fn branch(b: &[u8]) -> Vec<u8> {
    Message::parse(b).unwrap().via().unwrap().branch().unwrap().to_vec()
}

fn cancel_of(call: &str) -> Vec<u8> {
    text(&invite(call, "")).replace("INVITE sip:", "CANCEL sip:").replace("1 INVITE", "1 CANCEL").into_bytes()
}

struct Clock {
    t0: Instant,
}

impl Clock {
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
}

/// A new harness and its virtual clock (the proxy's transaction clock starts at `t0`).
fn stateful() -> (H, Clock) {
    let h = H::new(STATEFUL);
    let t0 = h.proxy.txns.instant(0);
    (h, Clock { t0 })
}

/// The proxy's timers at `at`, without the dispatcher's health probes.
fn tick(h: &mut H, at: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    no_probes(h.tick(at))
}

fn no_probes(v: Vec<(SocketAddr, Vec<u8>)>) -> Vec<(SocketAddr, Vec<u8>)> {
    v.into_iter()
        .filter(|(_, b)| {
            !Message::parse(b)
                .is_ok_and(|m| m.via().is_ok_and(|v| v.branch().is_some_and(|b| b.starts_with(PROBE_PREFIX))))
        })
        .collect()
}

/// Transactions held: live and lingering.
fn live(h: &H) -> usize {
    h.proxy.txns.held()
}

#[test]
fn a_call_is_relayed_statefully_with_100_trying_record_route_and_absorbed_retransmissions() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("c1", ""), UAC, c.at(0));
    assert_eq!(out.len(), 2, "100 Trying upstream and the INVITE downstream");
    assert_eq!((out[0].0, status(&out[0].1)), (addr(UAC), 100));
    let (to, fwd) = out[1].clone();
    assert_eq!(to, addr(A));
    let m = Message::parse(&fwd).unwrap();
    assert!(table::parse_branch(m.via().unwrap().branch().unwrap()).is_some(), "{}", text(&fwd));
    assert_eq!(m.header(HeaderName::RecordRoute), Some(&b"<sip:127.0.0.1:5060;lr>"[..]));
    assert_eq!(live(&h), 1);
    // the caller retransmits: the 100 again, nothing downstream
    let again = h.feed_at(&invite("c1", ""), UAC, c.at(400));
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].0, status(&again[0].1)), (addr(UAC), 100));
    assert_eq!(h.proxy.txn_stats.absorbed.get(), 1);
    // Timer A: the INVITE goes again at T1 (500 ms virtual) with the same branch
    assert!(tick(&mut h, c.at(499)).is_empty());
    let (to, re) = one(tick(&mut h, c.at(500)));
    assert_eq!((to, branch(&re)), (addr(A), branch(&fwd)));
    // 100 from the UAS stops it; 180 goes up, with ringsip's Via gone
    assert!(h.feed_at(&answer(&fwd, 100, "Trying", "u1"), A, c.at(600)).is_empty());
    assert!(tick(&mut h, c.at(1500)).is_empty(), "no retransmission after a provisional response");
    let (to, ringing) = one(h.feed_at(&answer(&fwd, 180, "Ringing", "u1"), A, c.at(700)));
    assert_eq!((to, status(&ringing)), (addr(UAC), 180));
    assert_eq!(Message::parse(&ringing).unwrap().vias().count(), 1);
    // a retransmitted INVITE now gets the 180
    let (_, r) = one(h.feed_at(&invite("c1", ""), UAC, c.at(800)));
    assert_eq!(status(&r), 180);
    // 200 goes up and the transaction is over (§17.2.1: a 2xx terminates the INVITE server)
    let ok = answer(&fwd, 200, "OK", "u1");
    let (to, r) = one(h.feed_at(&ok, A, c.at(900)));
    assert_eq!((to, status(&r)), (addr(UAC), 200));
    // RFC 6026 Accepted: a late retransmission of the INVITE is absorbed, not relayed again
    assert!(h.feed_at(&invite("c1", ""), UAC, c.at(1000)).is_empty());
    // a retransmitted 200 from the UAS still goes up (every 2xx does, §16.7)
    let (to, r) = one(h.feed_at(&ok, A, c.at(1400)));
    assert_eq!((to, status(&r)), (addr(UAC), 200));
    // Timer L = 64·T1 after the 2xx, then the transaction is gone
    assert!(tick(&mut h, c.at(32_899)).is_empty());
    assert_eq!(live(&h), 1);
    tick(&mut h, c.at(32_900));
    assert_eq!(live(&h), 0);
}

#[test]
fn a_503_fails_over_to_the_next_destination_and_the_caller_never_sees_it() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("f1", ""), UAC, c.at(0));
    let fwd_a = out[1].1.clone();
    assert_eq!(out[1].0, addr(A));
    let out = h.feed_at(&answer(&fwd_a, 503, "Service Unavailable", "a1"), A, c.at(10));
    // the hop-by-hop ACK to A (same branch), and the INVITE to B on a new branch
    assert_eq!(out.len(), 2, "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!((out[0].0, method(&out[0].1)), (addr(A), "ACK".to_string()));
    assert_eq!(branch(&out[0].1), branch(&fwd_a));
    assert!(text(&out[0].1).contains("tag=a1"), "the ACK carries the response's To tag");
    let (to, fwd_b) = out[1].clone();
    assert_eq!((to, method(&fwd_b)), (addr(B), "INVITE".to_string()));
    assert_ne!(branch(&fwd_b), branch(&fwd_a));
    assert_eq!(Message::parse(&fwd_b).unwrap().header(HeaderName::RecordRoute), Some(&b"<sip:127.0.0.1:5060;lr>"[..]));
    // the retransmitted 503 is ACKed again and goes nowhere else
    let out = h.feed_at(&answer(&fwd_a, 503, "Service Unavailable", "a1"), A, c.at(20));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, method(&out[0].1)), (addr(A), "ACK".to_string()));
    // B answers
    let (to, r) = one(h.feed_at(&answer(&fwd_b, 200, "OK", "b1"), B, c.at(30)));
    assert_eq!((to, status(&r)), (addr(UAC), 200));
    assert_eq!(h.proxy.txn_stats.branches.get(), 2);
    assert_eq!(h.proxy.txn_stats.failure_routes.get(), 1);
}

#[test]
fn a_silent_destination_times_out_after_the_no_reply_timeout_and_the_call_goes_on() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("s1", ""), UAC, c.at(0));
    assert_eq!(out[1].0, addr(A));
    // Timer A doubles: 500, 1500, 3500 ms virtual
    let mut sent_at = Vec::new();
    for ms in (0..=3990).step_by(10) {
        if !tick(&mut h, c.at(ms)).is_empty() {
            sent_at.push(ms);
        }
    }
    assert_eq!(sent_at, vec![500, 1500, 3500]);
    // Timer B (no_reply_timeout = 4 s): a local 408, timeout and not replied: next destination
    let (to, fwd_b) = one(tick(&mut h, c.at(4000)));
    assert_eq!((to, method(&fwd_b)), (addr(B), "INVITE".to_string()));
    assert_eq!(h.proxy.txn_stats.timeouts.get(), 1);
    // B times out too: nothing left to try, the failure route replies 503
    let mut last = Vec::new();
    for ms in (4010..=8100).step_by(10) {
        last.extend(tick(&mut h, c.at(ms)));
    }
    let finals: Vec<_> = last.iter().filter(|(a, _)| *a == addr(UAC)).collect();
    assert_eq!(finals.len(), 1, "{:?}", last.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!(status(&finals[0].1), 503);
    // the caller's ACK of the 503 is absorbed
    let ack = text(&invite("s1", "")).replace("INVITE sip:", "ACK sip:").replace("1 INVITE", "1 ACK");
    assert!(h.feed_at(ack.as_bytes(), UAC, c.at(8200)).is_empty());
    for ms in (8200..=60_000).step_by(100) {
        tick(&mut h, c.at(ms));
    }
    assert_eq!(live(&h), 0, "every transaction ends");
}

#[test]
fn cancel_is_answered_sent_on_the_pending_branch_and_never_retried() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("x1", ""), UAC, c.at(0));
    let fwd = out[1].1.clone();
    let (_, r) = one(h.feed_at(&answer(&fwd, 180, "Ringing", "u1"), A, c.at(10)));
    assert_eq!(status(&r), 180);
    let out = h.feed_at(&cancel_of("x1"), UAC, c.at(20));
    assert_eq!(out.len(), 2, "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!((out[0].0, status(&out[0].1)), (addr(UAC), 200));
    let (to, cancel) = out[1].clone();
    assert_eq!((to, method(&cancel)), (addr(A), "CANCEL".to_string()));
    assert_eq!(branch(&cancel), branch(&fwd), "§9.1: the CANCEL has the INVITE's branch");
    assert_eq!(h.proxy.txn_stats.cancels.get(), 1);
    // 200 to the CANCEL goes nowhere; 487 goes up (and is ACKed), no failover
    assert!(h.feed_at(&answer(&cancel, 200, "OK", "u1"), A, c.at(30)).is_empty());
    let out = h.feed_at(&answer(&fwd, 487, "Request Terminated", "u1"), A, c.at(40));
    assert_eq!(out.len(), 2, "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!((out[0].0, method(&out[0].1)), (addr(A), "ACK".to_string()));
    assert_eq!((out[1].0, status(&out[1].1)), (addr(UAC), 487));
    assert_eq!(h.proxy.txn_stats.branches.get(), 1);
    let ack = text(&invite("x1", "")).replace("INVITE sip:", "ACK sip:").replace("1 INVITE", "1 ACK");
    assert!(h.feed_at(ack.as_bytes(), UAC, c.at(50)).is_empty());
    for ms in (50..=40_000).step_by(100) {
        tick(&mut h, c.at(ms));
    }
    assert_eq!(live(&h), 0);
}

#[test]
fn a_cancel_before_any_provisional_response_waits_for_one() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("w1", ""), UAC, c.at(0));
    let fwd = out[1].1.clone();
    let out = h.feed_at(&cancel_of("w1"), UAC, c.at(5));
    assert_eq!(out.len(), 1, "only the 200 to the CANCEL (§9.1: no CANCEL before a provisional)");
    let out = h.feed_at(&answer(&fwd, 100, "Trying", "u1"), A, c.at(10));
    let (to, cancel) = one(out);
    assert_eq!((to, method(&cancel)), (addr(A), "CANCEL".to_string()));
}

#[test]
fn timer_c_cancels_a_ringing_branch_and_answers_408() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("tc", ""), UAC, c.at(0));
    let fwd = out[1].1.clone();
    one(h.feed_at(&answer(&fwd, 180, "Ringing", "u1"), A, c.at(100)));
    // Timer C = 60 s after the last provisional response
    assert!(tick(&mut h, c.at(60_099)).is_empty());
    let out = tick(&mut h, c.at(60_100));
    let cancel = out.iter().find(|(a, b)| *a == addr(A) && method(b) == "CANCEL");
    assert!(cancel.is_some(), "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    // it replied (180), so the failure route does not retry: 408 upstream
    let up: Vec<_> = out.iter().filter(|(a, _)| *a == addr(UAC)).collect();
    assert_eq!(up.len(), 1);
    assert_eq!(status(&up[0].1), 408);
}

#[test]
fn a_full_table_answers_503_with_retry_after() {
    let (mut h, c) = stateful();
    for i in 0..64 {
        let out = h.feed_at(&invite(&format!("m{i}"), ""), UAC, c.at(0));
        assert_eq!(out.len(), 2);
    }
    let (to, r) = one(h.feed_at(&invite("m64", ""), UAC, c.at(0)));
    assert_eq!((to, status(&r)), (addr(UAC), 503));
    assert!(text(&r).contains("Retry-After: 5\r\n"), "{}", text(&r));
    assert_eq!(h.proxy.txn_stats.refused.get(), 1);
    assert_eq!(live(&h), 64);
}

#[test]
fn a_non_invite_transaction_absorbs_retransmissions_until_timer_j() {
    let (mut h, c) = stateful();
    let bye = text(&invite("b1", ""))
        .replace("INVITE sip:service@127.0.0.1:5060", "BYE sip:uas@127.0.0.1:5081")
        .replace("1 INVITE", "2 BYE")
        .replace("To: <sip:service@127.0.0.1:5060>", "To: <sip:service@127.0.0.1:5060>;tag=u9");
    let (to, fwd) = one(h.feed_at(bye.as_bytes(), UAC, c.at(0)));
    assert_eq!(to, addr(B), "in-dialog: follows the Request-URI");
    assert!(Message::parse(&fwd).unwrap().header(HeaderName::RecordRoute).is_none());
    // Timer E: 500, then 1000 (doubling up to T2)
    assert_eq!(one(tick(&mut h, c.at(500))).0, addr(B));
    let (to, r) = one(h.feed_at(&answer(&fwd, 200, "OK", "u9"), B, c.at(600)));
    assert_eq!((to, status(&r)), (addr(UAC), 200));
    // the caller did not get it and sends the BYE again: the 200 again, nothing downstream
    let (to, r) = one(h.feed_at(bye.as_bytes(), UAC, c.at(700)));
    assert_eq!((to, status(&r)), (addr(UAC), 200));
    // Timer J = 64·T1 = 32 s after the response; then it is gone
    tick(&mut h, c.at(32_599));
    assert_eq!(live(&h), 1);
    tick(&mut h, c.at(32_600));
    assert_eq!(live(&h), 0);
}

#[test]
fn the_2xx_ack_goes_end_to_end_along_the_route_set() {
    let (mut h, c) = stateful();
    let ack = text(&invite("k1", ""))
        .replace("INVITE sip:service@127.0.0.1:5060", "ACK sip:uas@127.0.0.1:5081")
        .replace("1 INVITE", "1 ACK")
        .replace("To: <sip:service@127.0.0.1:5060>", "To: <sip:service@127.0.0.1:5060>;tag=u1")
        .replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr>\r\n");
    let (to, fwd) = one(h.feed_at(ack.as_bytes(), UAC, c.at(0)));
    assert_eq!(to, addr(B));
    let m = Message::parse(&fwd).unwrap();
    assert!(m.header(HeaderName::Route).is_none(), "ringsip's own Route entry popped");
    assert!(Branch::is_ours(m.via().unwrap().branch().unwrap()), "stateless");
    assert_eq!(live(&h), 0);
}

#[test]
fn a_strict_router_upstream_is_understood() {
    // in-dialog requests relayed whatever their Request-URI says
    let mut h = H::new(&STATEFUL.replace("has_totag and $rd != myself", "has_totag"));
    let c = Clock { t0: h.proxy.txns.instant(0) };
    // the previous hop put our Record-Route URI in the Request-URI and the target last in Route
    let bye = text(&invite("sr", ""))
        .replace("INVITE sip:service@127.0.0.1:5060", "BYE sip:127.0.0.1:5060")
        .replace("1 INVITE", "2 BYE")
        .replace("To: <sip:service@127.0.0.1:5060>", "To: <sip:service@127.0.0.1:5060>;tag=u1")
        .replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nRoute: <sip:uas@127.0.0.1:5081>\r\n");
    let (to, fwd) = one(h.feed_at(bye.as_bytes(), UAC, c.at(0)));
    assert_eq!(to, addr(B));
    let m = Message::parse(&fwd).unwrap();
    assert_eq!(m.request_uri_bytes(), Some(&b"sip:uas@127.0.0.1:5081"[..]));
    assert!(m.header(HeaderName::Route).is_none());
}

#[test]
fn responses_delivered_to_another_shard_reach_the_owner_in_order() {
    let cfg = ringsip_config::parse(STATEFUL, std::path::Path::new("t.toml")).unwrap();
    let shared = Arc::new(Shared::new(&cfg).unwrap());
    let f = Factory::new(shared, Arc::new(Mutex::new(Vec::new())));
    let info = |shard| ShardInfo {
        place: ShardPlace { shard, cpu: shard, node: 0 },
        shards: 2,
        listen: vec!["127.0.0.1:5060".parse().unwrap()],
        media_ports: None,
        media_addr: None,
    };
    let mut p0 = f.make(&info(0), Arc::new(ShardStats::default()));
    let mut p1 = f.make(&info(1), Arc::new(ShardStats::default()));
    let io = ShardStats::default();
    let mut batches = vec![SendBatch::new(64, 1 << 20)];
    let fds = [-1];
    let now = p0.txns.instant(0);
    let mut run = |p: &mut StatelessProxy, data: Option<(&[u8], &str)>| -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Outbox::new(&mut batches, &fds, &io, 20_000);
        match data {
            Some((data, src)) => {
                p.batch_start();
                let d = Datagram { data, src: src.parse().unwrap(), local: addr("127.0.0.1:5060"), listen: 0, now };
                p.datagram(&d, &mut out);
            }
            None => p.tick(now, &mut out),
        }
        let v = batches[0].queued().map(|(a, b)| (a, b.to_vec())).collect();
        batches[0].clear();
        no_probes(v)
    };
    let out = run(&mut p0, Some((&invite("h1", ""), UAC)));
    let fwd = out[1].1.clone();
    // the kernel hands the UAS's responses to shard 1
    assert!(run(&mut p1, Some((&answer(&fwd, 180, "Ringing", "u1"), A))).is_empty());
    assert!(run(&mut p1, Some((&answer(&fwd, 200, "OK", "u1"), A))).is_empty());
    assert_eq!(p1.txn_stats.handoffs.get(), 2);
    // shard 0 takes them, in order
    let out = run(&mut p0, None);
    let codes: Vec<u16> = out.iter().map(|(_, b)| status(b)).collect();
    assert_eq!(codes, vec![180, 200]);
    assert_eq!(p0.txn_stats.handoffs_in.get(), 2);
    assert_eq!((p0.txns.live, p0.txns.lingering()), (0, 1), "accepted (RFC 6026) until Timer L");
}

#[test]
fn fork_rings_every_destination_and_the_first_2xx_cancels_the_others() {
    let mut h = H::new(&STATEFUL.replace("\"record_route\", \"on_failure failover\", \"relay\"", "\"fork\""));
    let c = Clock { t0: h.proxy.txns.instant(0) };
    let out = h.feed_at(&invite("p1", ""), UAC, c.at(0));
    assert_eq!(out.len(), 3, "100 Trying and one INVITE per destination");
    let (fa, fb) = (out[1].1.clone(), out[2].1.clone());
    let (sa, sb) = (out[1].0.to_string(), out[2].0.to_string());
    let mut dests = [out[1].0, out[2].0];
    dests.sort();
    assert_eq!(dests, [addr(A), addr(B)]);
    assert_ne!(branch(&fa), branch(&fb));
    // both ring: both 180s go up
    assert_eq!(status(&one(h.feed_at(&answer(&fa, 180, "Ringing", "a"), &sa, c.at(10))).1), 180);
    assert_eq!(status(&one(h.feed_at(&answer(&fb, 180, "Ringing", "b"), &sb, c.at(11))).1), 180);
    // the second answers: its 200 goes up and the first is cancelled
    let out2 = h.feed_at(&answer(&fb, 200, "OK", "b"), &sb, c.at(20));
    assert_eq!(out2.len(), 2, "{:?}", out2.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!((out2[0].0, status(&out2[0].1)), (addr(UAC), 200));
    assert_eq!((out2[1].0, method(&out2[1].1)), (out[1].0, "CANCEL".to_string()));
    assert_eq!(branch(&out2[1].1), branch(&fa));
    // the cancelled branch's 487 is acknowledged and goes nowhere else
    let out3 = h.feed_at(&answer(&fa, 487, "Request Terminated", "a"), &sa, c.at(30));
    assert_eq!(out3.len(), 1);
    assert_eq!(method(&out3[0].1), "ACK");
}

#[test]
fn the_lcr_example_fails_over_to_the_next_gateway_on_503() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/lcr.toml"));
    let config = std::fs::read_to_string(path).unwrap();
    let mut h = H::with_path(&config, path);
    let c = Clock { t0: h.proxy.txns.instant(0) };
    // +4930 lists sets 2;1: set 2's gateway (5081) first, set 1's (5080) next
    let inv = text_of_call("+4930123456", "g1");
    let out = no_probes(h.feed_at(&inv, UAC, c.at(0)));
    assert_eq!(out.len(), 2, "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    let (to, first) = out[1].clone();
    assert_eq!(to, addr(B));
    let out = no_probes(h.feed_at(&answer(&first, 503, "Service Unavailable", "g"), B, c.at(10)));
    assert_eq!(out.len(), 2, "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!((out[0].0, method(&out[0].1)), (addr(B), "ACK".to_string()));
    let (to, second) = out[1].clone();
    assert_eq!((to, method(&second)), (addr(A), "INVITE".to_string()));
    // the next gateway fails too: nothing left, "503 No available gateways" to the caller
    let out = no_probes(h.feed_at(&answer(&second, 500, "Server Internal Error", "h"), A, c.at(20)));
    let up: Vec<_> = out.iter().filter(|(a, _)| *a == addr(UAC)).collect();
    assert_eq!(up.len(), 1, "{:?}", out.iter().map(|(a, b)| (a, text(b))).collect::<Vec<_>>());
    assert_eq!(status(&up[0].1), 503);
    assert!(text(&up[0].1).contains("No available gateways"));
    // a 486 is the callee's answer: it goes back, no failover
    let inv = text_of_call("+4930999", "g2");
    let out = no_probes(h.feed_at(&inv, UAC, c.at(100)));
    let first = out[1].1.clone();
    let out = no_probes(h.feed_at(&answer(&first, 486, "Busy Here", "b"), B, c.at(110)));
    assert_eq!(out.len(), 2);
    assert_eq!((out[1].0, status(&out[1].1)), (addr(UAC), 486));
}

fn text_of_call(user: &str, call: &str) -> Vec<u8> {
    text(&invite(call, "")).replace("INVITE sip:service@", &format!("INVITE sip:{user}@")).into_bytes()
}

#[test]
fn a_request_leaving_on_another_listener_is_record_routed_twice() {
    let cfg = ringsip_config::parse(
        &STATEFUL
            .replace("listen = [\"udp:127.0.0.1:5060\"]", "listen = [\"udp:127.0.0.1:5060\", \"udp:[::1]:5060\"]")
            .replace(
                "'select 1 else reply 503 \"No destination\"', \"record_route\", \"on_failure failover\", \"relay\"",
                "\"record_route\", 'relay \"udp:[::1]:5090\"'",
            ),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let shared = Arc::new(Shared::new(&cfg).unwrap());
    let f = Factory::new(shared, Arc::new(Mutex::new(Vec::new())));
    let info = ShardInfo {
        place: ShardPlace { shard: 0, cpu: 0, node: 0 },
        shards: 1,
        listen: vec!["127.0.0.1:5060".parse().unwrap(), "[::1]:5060".parse().unwrap()],
        media_ports: None,
        media_addr: None,
    };
    let mut p = f.make(&info, Arc::new(ShardStats::default()));
    let io = ShardStats::default();
    let mut batches = vec![SendBatch::new(64, 1 << 20), SendBatch::new(64, 1 << 20)];
    let fds = [-1, -1];
    let now = p.txns.instant(0);
    {
        let mut out = Outbox::new(&mut batches, &fds, &io, 20_000);
        let inv = invite("d1", "");
        let d = Datagram { data: &inv, src: UAC.parse().unwrap(), local: addr("127.0.0.1:5060"), listen: 0, now };
        p.datagram(&d, &mut out);
    }
    let v6: Vec<_> = batches[1].queued().map(|(a, b)| (a, b.to_vec())).collect();
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0].0, addr("[::1]:5090"));
    let m = Message::parse(&v6[0].1).unwrap();
    // RFC 5658: the socket it leaves on first (the UAS's side), then the one it came in on
    assert_eq!(m.header(HeaderName::RecordRoute), Some(&b"<sip:[::1]:5060;lr>, <sip:127.0.0.1:5060;lr>"[..]));
    assert_eq!(m.via().unwrap().host_bytes(), b"[::1]");
}

#[test]
fn a_relayed_request_that_comes_back_is_a_loop() {
    let (mut h, c) = stateful();
    let out = h.feed_at(&invite("lp", ""), UAC, c.at(0));
    let fwd = out[1].1.clone();
    // the destination sends it straight back: ringsip's stateful Via with the same loop hash
    let (_, r) = one(h.feed_at(&fwd, A, c.at(5)));
    assert_eq!(status(&r), 482, "{}", text(&r));
    assert_eq!(live(&h), 1, "no second transaction");
}
