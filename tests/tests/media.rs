//! The media relay end to end: the real daemon anchoring calls it routes (`anchor_media`),
//! relaying RTP between two user agents on loopback, and serving rtpengine's ng protocol to
//! real clients (Kamailio's `rtpengine` module, sipp through it).
//!
//! * a call with SDP: both sides are told to send to ringsip's ports, RTP from each side
//!   reaches the other intact and from the port it was told; the caller advertises a private
//!   address it cannot be reached at (a phone behind NAT) and is reached at the source of its
//!   own packets (latching); after the BYE the ports are free and a flood to them is dropped
//!   and counted;
//! * a call with no media ends after the inactivity timeout and its ports return;
//! * sipp calls with SDP through `anchor_media`: every offer and answer rewritten, every call
//!   ended by its BYE;
//! * the ng port: ping, offer, answer, RTP through the ports it gave, query, delete;
//! * Kamailio with its `rtpengine` module pointed at ringsip's ng port: a call through
//!   Kamailio has its SDP rewritten to ringsip's ports and its RTP relayed by ringsip.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringsip_tests::e2e::{self, Daemon, TempDir};
use ringsip_tests::ua::{Msg, Ua, rtp, sdp};

/// `n` consecutive free UDP ports on 127.0.0.1, the first even (checked by binding them).
fn free_range(n: u16) -> (u16, u16) {
    let start = 20000 + (std::process::id() % 500) as u16 * 64;
    let mut base = start & !1;
    loop {
        let held: Vec<_> = (base..base + n).map_while(|p| UdpSocket::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == usize::from(n) {
            return (base, base + n - 1);
        }
        base += n + 2;
        assert!(base < 60000, "no free port range");
    }
}

/// Addresses of one test.
struct Net {
    sip: SocketAddr,
    metrics: SocketAddr,
    ng: SocketAddr,
    ports: (u16, u16),
}

impl Net {
    fn new() -> Net {
        Net::with_ports(40)
    }

    fn with_ports(n: u16) -> Net {
        Net {
            sip: format!("127.0.0.1:{}", e2e::free_udp_port()).parse().unwrap(),
            metrics: format!("127.0.0.1:{}", e2e::free_tcp_port()).parse().unwrap(),
            ng: format!("127.0.0.1:{}", e2e::free_udp_port()).parse().unwrap(),
            ports: free_range(n),
        }
    }
}

/// `media.toml`'s shape on this test's addresses: stateful, record-routing, anchoring every
/// call, set 1 = `dest`.
fn config(net: &Net, dest: SocketAddr, timeout: &str) -> String {
    format!(
        r#"
[server]
listen = ["udp:{sip}"]
metrics = "{metrics}"

[media]
address = "127.0.0.1"
ports = "{lo}-{hi}"
control = "{ng}"
timeout = "{timeout}"

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:{dest}"]
probe = {{ mode = "none" }}

[[route.request]]
if = "has_totag"
do = ["anchor_media", "relay"]

[[route.request]]
do = ['select 1 else reply 503 "No destination"', "record_route", "anchor_media replace_origin", "relay"]
"#,
        sip = net.sip,
        metrics = net.metrics,
        ng = net.ng,
        lo = net.ports.0,
        hi = net.ports.1,
    )
}

fn start(tag: &str, text: &str, net: &Net) -> Daemon {
    Daemon::with_config(tag, text, &["--shards", "1"], Some(net.metrics))
}

fn in_range(a: SocketAddr, net: &Net) -> bool {
    a.ip().to_string() == "127.0.0.1" && (net.ports.0..=net.ports.1).contains(&a.port())
}

/// The caller's side of a call set up through ringsip: INVITE (SDP advertising
/// `caller_sdp_addr`), the callee answers 180 then 200 with SDP at its RTP socket; returns
/// (the INVITE as the callee saw it, the 200 as the caller saw it).
fn call(net: &Net, alice: &mut Ua, bob: &Ua, call_id: &str, caller_sdp: &str) -> (Msg, Msg) {
    alice.invite(net.sip, "bob", call_id, caller_sdp);
    let (inv, from) =
        bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("INVITE")).expect("the INVITE reaches bob");
    bob.respond(&inv, from, 180, "Ringing", None);
    let bob_sdp = sdp("127.0.0.1", bob.rtp_addr().port(), 2);
    bob.respond(&inv, from, 200, "OK", Some(&bob_sdp));
    let (ok, _) = alice.recv_until(Duration::from_secs(5), |m| m.status() == Some(200)).expect("the 200 reaches alice");
    alice.in_dialog(net.sip, &ok, "ACK");
    bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("ACK")).expect("the ACK reaches bob");
    (inv, ok)
}

/// Send `n` RTP packets from `from` to `to`, each with its sequence number; check that `at`
/// receives them all intact, in order, from `expect_src`.
fn rtp_flows(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, expect_src: SocketAddr, n: u16, fill: u8) {
    let mut buf = [0u8; 2048];
    for seq in 0..n {
        let p = rtp(seq, 0x1234_5678, fill, 160);
        from.send_to(&p, to).unwrap();
        let (len, src) = at.recv_from(&mut buf).unwrap_or_else(|e| panic!("packet {seq} of {n} lost: {e}"));
        assert_eq!(src, expect_src, "media comes from the port the receiver was told");
        assert_eq!(&buf[..len], &p[..], "packet {seq} relayed unchanged");
    }
}

fn metric(d: &Daemon, name: &str) -> f64 {
    d.metrics().sum(name)
}

#[test]
fn a_call_is_anchored_media_flows_both_ways_latching_finds_the_nated_caller_and_bye_frees_the_ports() {
    let _x = e2e::exclusive();
    let net = Net::new();
    let mut alice = Ua::new("alice");
    let bob = Ua::new("bob");
    let d = start("media-call", &config(&net, bob.sip_addr(), "60s"), &net);
    let total_free = metric(&d, "ringsip_media_ports_free");
    assert_eq!(total_free, 40.0, "every port of the range is in the pool");

    // alice is behind NAT: her SDP names a private address she cannot be reached at
    let (inv, ok) = call(&net, &mut alice, &bob, "media-call-1", &sdp("10.9.8.7", 4000, 1));
    let to_b = inv.sdp_media().expect("the INVITE bob gets has SDP");
    let to_a = ok.sdp_media().expect("the 200 alice gets has SDP");
    assert!(in_range(to_b, &net), "bob is told to send to ringsip: {to_b}\n{}", inv.0);
    assert!(in_range(to_a, &net), "alice is told to send to ringsip: {to_a}\n{}", ok.0);
    assert_ne!(to_a, to_b);
    assert!(
        !inv.body().contains("10.9.8.7"),
        "no trace of alice's address reaches bob (replace_origin):\n{}",
        inv.body()
    );
    assert!(!ok.body().contains(&bob.rtp_addr().port().to_string()), "bob's port is hidden from alice");
    assert_eq!(
        inv.header("Content-Length").and_then(|l| l.parse::<usize>().ok()),
        Some(inv.body().len()),
        "Content-Length follows the rewritten body"
    );
    assert_eq!(metric(&d, "ringsip_media_calls"), 1.0);

    // alice speaks first (from her real socket): bob hears her from the port he was told
    rtp_flows(&alice.rtp, to_a, &bob.rtp, to_b, 20, 0xA1);
    // bob answers: ringsip latched alice's real source, not the SDP's 10.9.8.7:4000
    rtp_flows(&bob.rtp, to_b, &alice.rtp, to_a, 20, 0xB0);
    // RTCP, from each side's RTP port + 1 to ringsip's RTP port + 1, goes both ways
    let rtcp_a = SocketAddr::new(to_a.ip(), to_a.port() + 1);
    let rtcp_b = SocketAddr::new(to_b.ip(), to_b.port() + 1);
    let sr = b"\x81\xc8\x00\x06rtcp-sender-report";
    let mut b = [0u8; 256];
    alice.rtcp.send_to(sr, rtcp_a).unwrap();
    let (n, src) = bob.rtcp.recv_from(&mut b).expect("alice's RTCP reaches bob's RTCP port");
    assert_eq!((&b[..n], src), (&sr[..], rtcp_b));
    bob.rtcp.send_to(sr, rtcp_b).unwrap();
    let (n, src) = alice.rtcp.recv_from(&mut b).expect("bob's RTCP reaches alice's latched RTCP port");
    assert_eq!((&b[..n], src), (&sr[..], rtcp_a));
    assert!(metric(&d, "ringsip_media_forwarded_total") >= 40.0);

    // a stranger sending to alice's port is not relayed (strict source after latching)
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(&rtp(1, 9, 0xEE, 160), to_a).unwrap();
    assert!(e2e::wait_for(Duration::from_secs(3), || metric(&d, "ringsip_media_dropped_wrong_source_total") >= 1.0));

    // BYE through ringsip ends the media
    alice.in_dialog(net.sip, &ok, "BYE");
    let (bye, from) = bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("BYE")).expect("BYE reaches bob");
    bob.respond(&bye, from, 200, "OK", None);
    alice.recv_until(Duration::from_secs(5), |m| m.status() == Some(200)).expect("the BYE's 200 reaches alice");
    assert!(
        e2e::wait_for(Duration::from_secs(3), || metric(&d, "ringsip_media_calls") == 0.0
            && metric(&d, "ringsip_media_ports_free") == total_free),
        "the call ended and its ports are back"
    );

    // a flood to the freed ports is dropped and counted; nothing reaches bob
    let before = metric(&d, "ringsip_media_dropped_no_session_total");
    for i in 0..500u16 {
        stranger.send_to(&rtp(i, 7, 0xFF, 160), to_b).unwrap();
    }
    assert!(
        e2e::wait_for(Duration::from_secs(5), || metric(&d, "ringsip_media_dropped_no_session_total")
            >= before + 500.0),
        "every flood packet counted: {}",
        metric(&d, "ringsip_media_dropped_no_session_total") - before
    );
    bob.rtp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 2048];
    assert!(bob.rtp.recv_from(&mut b).is_err(), "nothing relayed after the BYE");
}

#[test]
fn a_rejected_or_cancelled_invite_gives_its_ports_back() {
    let _x = e2e::exclusive();
    let net = Net::new();
    let mut alice = Ua::new("alice");
    let bob = Ua::new("bob");
    let d = start("media-fail", &config(&net, bob.sip_addr(), "60s"), &net);
    let offer = sdp("127.0.0.1", alice.rtp_addr().port(), 1);

    // bob is busy: 486 ends the call's media
    alice.invite(net.sip, "bob", "media-busy", &offer);
    let (inv, from) = bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("INVITE")).expect("INVITE");
    assert!(inv.sdp_media().is_some_and(|a| in_range(a, &net)), "anchored");
    assert_eq!(metric(&d, "ringsip_media_calls"), 1.0);
    bob.respond(&inv, from, 486, "Busy Here", None);
    alice.recv_until(Duration::from_secs(5), |m| m.status() == Some(486)).expect("the 486 reaches alice");
    assert!(e2e::wait_for(Duration::from_secs(3), || metric(&d, "ringsip_media_calls") == 0.0), "486 ended it");

    // alice gives up while it rings: CANCEL, 487, media ended
    alice.invite(net.sip, "bob", "media-cancel", &offer);
    let (inv, from) = bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("INVITE")).expect("INVITE");
    bob.respond(&inv, from, 180, "Ringing", None);
    alice.recv_until(Duration::from_secs(5), |m| m.status() == Some(180)).expect("180");
    assert_eq!(metric(&d, "ringsip_media_calls"), 1.0);
    alice.cancel(net.sip);
    let (cancel, cfrom) = bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("CANCEL")).expect("CANCEL");
    bob.respond(&cancel, cfrom, 200, "OK", None);
    bob.respond(&inv, from, 487, "Request Terminated", None);
    alice.recv_until(Duration::from_secs(5), |m| m.status() == Some(487)).expect("the 487 reaches alice");
    assert!(e2e::wait_for(Duration::from_secs(3), || metric(&d, "ringsip_media_calls") == 0.0), "CANCEL ended it");
    assert_eq!(metric(&d, "ringsip_media_ports_free"), 40.0);
    assert_eq!(metric(&d, "ringsip_media_calls_ended_total"), 2.0);
}

#[test]
fn a_call_without_media_ends_after_the_inactivity_timeout() {
    let _x = e2e::exclusive();
    let net = Net::new();
    let mut alice = Ua::new("alice");
    let bob = Ua::new("bob");
    let d = start("media-idle", &config(&net, bob.sip_addr(), "1s"), &net);
    let offer = sdp("127.0.0.1", alice.rtp_addr().port(), 1);
    let (_, ok) = call(&net, &mut alice, &bob, "media-idle-1", &offer);
    assert!(ok.sdp_media().is_some_and(|a| in_range(a, &net)));
    assert_eq!(metric(&d, "ringsip_media_calls"), 1.0);
    let t0 = Instant::now();
    assert!(e2e::wait_for(Duration::from_secs(6), || metric(&d, "ringsip_media_calls") == 0.0), "the idle call ended");
    assert!(t0.elapsed() >= Duration::from_millis(500), "not before its timeout");
    assert_eq!(metric(&d, "ringsip_media_calls_expired_total"), 1.0);
    assert_eq!(metric(&d, "ringsip_media_ports_free"), 40.0);
}

#[test]
fn with_two_shards_the_callees_requests_reach_the_shard_holding_the_media() {
    let _x = e2e::exclusive();
    // each shard gets half the range; any one of them may hold all 16 calls (4 ports each)
    let net = Net::with_ports(128);
    let mut bob = Ua::new("bob");
    let d = Daemon::with_config("media-2", &config(&net, bob.sip_addr(), "60s"), &["--shards", "2"], Some(net.metrics));
    // 16 callers on 16 source ports: the kernel spreads them over both shards, while every
    // request of bob's comes from one port, so about half of his land on the other shard
    let mut calls = Vec::new();
    for i in 0..16 {
        let mut alice = Ua::new("alice");
        let offer = sdp("127.0.0.1", alice.rtp_addr().port(), 1);
        let (inv, ok) = call(&net, &mut alice, &bob, &format!("media-2-{i}"), &offer);
        calls.push((alice, inv.clone(), ok.sdp_media().unwrap(), inv.sdp_media().unwrap()));
    }
    let m = d.metrics();
    assert_eq!(
        m.sum("ringsip_media_calls"),
        16.0,
        "{:?}",
        m.0.iter().filter(|(k, _)| k.contains("media") || k.contains("handoff")).collect::<Vec<_>>()
    );
    for (alice, inv, to_a, to_b) in &calls {
        // bob's re-INVITE (a new offer, same port) is anchored by the shard holding the call:
        // alice is told the port she already sends to, bob gets his port back in the answer
        bob.in_dialog_as_callee(net.sip, inv, "INVITE", Some(&sdp("127.0.0.1", bob.rtp_addr().port(), 3)));
        let (re, from) = alice
            .recv_until(Duration::from_secs(5), |m| m.method() == Some("INVITE"))
            .unwrap_or_else(|| panic!("bob's re-INVITE did not reach alice:\n{}", d.log_text()));
        assert_eq!(re.sdp_media(), Some(*to_a), "the re-offer points alice at her port:\n{}", re.0);
        alice.respond(&re, from, 200, "OK", Some(&sdp("127.0.0.1", alice.rtp_addr().port(), 4)));
        let (ok, _) = bob
            .recv_until(Duration::from_secs(5), |m| m.status() == Some(200))
            .expect("the re-INVITE's 200 reaches bob");
        assert_eq!(ok.sdp_media(), Some(*to_b), "the answer points bob at his port");
    }
    assert_eq!(metric(&d, "ringsip_media_calls"), 16.0, "no second call for a re-INVITE");
    assert!(metric(&d, "ringsip_handoffs_total") > 0.0, "some of bob's requests went to the other shard");
    for (alice, inv, _, _) in &calls {
        bob.in_dialog_as_callee(net.sip, inv, "BYE", None);
        let (bye, from) = alice.recv_until(Duration::from_secs(5), |m| m.method() == Some("BYE")).expect("bob's BYE");
        alice.respond(&bye, from, 200, "OK", None);
    }
    assert!(
        e2e::wait_for(Duration::from_secs(3), || metric(&d, "ringsip_media_calls") == 0.0),
        "bob's BYEs ended every call's media, on whichever shard held it"
    );
    assert_eq!(metric(&d, "ringsip_media_ports_free"), 128.0);
}

#[test]
fn a_push_cannot_add_or_remove_the_media_relay() {
    let _x = e2e::exclusive();
    let net = Net::new();
    let dir = TempDir::new("media-push");
    let sock = dir.0.join("ctl.sock");
    let with_media = config(&net, "127.0.0.1:9".parse().unwrap(), "60s")
        .replace("[server]\n", &format!("[server]\ncontrol_socket = \"{}\"\n", sock.display()));
    // the same config without [media] and without anchor_media
    let start_at = with_media.find("[media]").unwrap();
    let end_at = with_media.find("[[dispatcher.set]]").unwrap();
    let without = format!("{}{}", &with_media[..start_at], &with_media[end_at..])
        .replace("\"anchor_media replace_origin\", ", "")
        .replace("\"anchor_media\", ", "");
    let f_with = dir.0.join("with.toml");
    let f_without = dir.0.join("without.toml");
    std::fs::write(&f_with, &with_media).unwrap();
    std::fs::write(&f_without, &without).unwrap();
    let mut d = Daemon::start(&f_without, &["--shards", "1"], Some(net.metrics));
    let out = e2e::ctl(&sock, &["push", f_with.to_str().unwrap()]);
    assert_eq!(out.code, 1, "refused: {out:?}");
    assert!(out.stderr.contains("adds [media]") && out.stderr.contains("restart"), "{}", out.stderr);
    d.stop();
    let _d = Daemon::start(&f_with, &["--shards", "1"], Some(net.metrics));
    let out = e2e::ctl(&sock, &["push", f_without.to_str().unwrap()]);
    assert_eq!(out.code, 1, "refused: {out:?}");
    assert!(out.stderr.contains("removes [media]"), "{}", out.stderr);
    // a change inside [media] is taken (routes may change) and the relay keeps its settings
    let changed = dir.0.join("changed.toml");
    std::fs::write(&changed, with_media.replace("timeout = \"60s\"", "timeout = \"30s\"")).unwrap();
    let out = e2e::ctl(&sock, &["push", changed.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(ng_call(&c, net.ng, b"p d7:command4:pinge"), b"p d6:result4:ponge", "the relay still serves");
}

/// The string value of `key` in a flat bencoded reply (good enough for result/sdp).
fn ng_value(reply: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(reply);
    let pat = format!("{}:{}", key.len(), key);
    let rest = &text[text.find(&pat)? + pat.len()..];
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    rest.get(..len).map(str::to_string)
}

fn ng_call(sock: &UdpSocket, to: SocketAddr, req: &[u8]) -> Vec<u8> {
    sock.send_to(req, to).unwrap();
    let mut b = vec![0u8; 65536];
    let (n, _) = sock.recv_from(&mut b).expect("ng reply");
    b.truncate(n);
    b
}

#[test]
fn the_ng_port_speaks_rtpengine_offer_answer_media_query_delete() {
    let _x = e2e::exclusive();
    let net = Net::new();
    let d = start("media-ng", &config(&net, "127.0.0.1:9".parse().unwrap(), "60s"), &net);
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(ng_call(&c, net.ng, b"k1 d7:command4:pinge"), b"k1 d6:result4:ponge");
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let offer = ng_call(
        &c,
        net.ng,
        &ringsip_media::ng::request(
            "k2",
            &[
                ("command", "offer"),
                ("call-id", "ng-1"),
                ("from-tag", "ft"),
                ("sdp", &sdp("127.0.0.1", a.local_addr().unwrap().port(), 1)),
            ],
        ),
    );
    assert_eq!(ng_value(&offer, "result").as_deref(), Some("ok"), "{}", String::from_utf8_lossy(&offer));
    let to_b = Msg(format!("\r\n\r\n{}", ng_value(&offer, "sdp").unwrap())).sdp_media().unwrap();
    let answer = ng_call(
        &c,
        net.ng,
        &ringsip_media::ng::request(
            "k3",
            &[
                ("command", "answer"),
                ("call-id", "ng-1"),
                ("from-tag", "ft"),
                ("to-tag", "tt"),
                ("sdp", &sdp("127.0.0.1", b.local_addr().unwrap().port(), 2)),
            ],
        ),
    );
    assert_eq!(ng_value(&answer, "result").as_deref(), Some("ok"));
    let to_a = Msg(format!("\r\n\r\n{}", ng_value(&answer, "sdp").unwrap())).sdp_media().unwrap();
    assert!(in_range(to_a, &net) && in_range(to_b, &net) && to_a != to_b);
    rtp_flows(&a, to_a, &b, to_b, 10, 1);
    rtp_flows(&b, to_b, &a, to_a, 10, 2);
    let q = ng_call(&c, net.ng, &ringsip_media::ng::request("k4", &[("command", "query"), ("call-id", "ng-1")]));
    assert!(String::from_utf8_lossy(&q).contains("7:packetsi10e"), "{}", String::from_utf8_lossy(&q));
    let del = ng_call(
        &c,
        net.ng,
        &ringsip_media::ng::request("k5", &[("command", "delete"), ("call-id", "ng-1"), ("from-tag", "ft")]),
    );
    assert_eq!(ng_value(&del, "result").as_deref(), Some("ok"));
    let again = ng_call(&c, net.ng, &ringsip_media::ng::request("k6", &[("command", "delete"), ("call-id", "ng-1")]));
    assert_eq!(ng_value(&again, "result").as_deref(), Some("error"));
    assert_eq!(metric(&d, "ringsip_media_ports_free"), 40.0);
    // garbage gets an error reply or nothing, and the port keeps serving
    c.send_to(b"zz not bencode", net.ng).unwrap();
    let _ = c.recv_from(&mut [0u8; 512]);
    assert_eq!(ng_call(&c, net.ng, b"k7 d7:command4:pinge"), b"k7 d6:result4:ponge");
}

#[test]
fn sipp_calls_with_sdp_are_anchored_and_ended_by_their_bye() {
    let _x = e2e::exclusive();
    let Some(sipp) = e2e::sipp() else { return };
    let net = Net::new();
    let uas_port = e2e::free_udp_port();
    let d = start("media-sipp", &config(&net, format!("127.0.0.1:{uas_port}").parse().unwrap(), "60s"), &net);
    let uas_dir = TempDir::new("media-uas");
    let _uas = e2e::Sipp::uas(&sipp, uas_port, &uas_dir.0);
    std::thread::sleep(Duration::from_millis(300));
    let uac_dir = TempDir::new("media-uac");
    let r = e2e::run_uac(&sipp, net.sip, e2e::free_udp_port(), 50, 25, &uac_dir.0, Duration::from_secs(30));
    assert_eq!((r.successful, r.failed), (50, 0), "{r:?}\n{}", d.log_text());
    assert_eq!(metric(&d, "ringsip_media_sdp_rewritten_total"), 100.0, "50 offers and 50 answers");
    assert!(
        e2e::wait_for(Duration::from_secs(3), || metric(&d, "ringsip_media_calls") == 0.0),
        "every call's media ended with its BYE"
    );
    assert_eq!(metric(&d, "ringsip_media_calls_ended_total"), 50.0);
    assert_eq!(metric(&d, "ringsip_media_ports_free"), 40.0);
}

/// Kamailio, when installed (fails under CI=true when it is not).
fn kamailio() -> Option<std::path::PathBuf> {
    for p in ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"] {
        if std::path::Path::new(p).is_file() {
            return Some(p.into());
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("kamailio is not installed (apt-get install -y kamailio) and CI=true: this test needs it");
    }
    eprintln!("SKIPPED: kamailio is not installed (apt-get install -y kamailio); this test needs it");
    None
}

struct Kamailio(Child);

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kamailio_with_its_rtpengine_module_uses_ringsip_as_its_media_relay() {
    let _x = e2e::exclusive();
    let Some(kamailio) = kamailio() else { return };
    let net = Net::new();
    let bob = Ua::new("bob");
    let mut alice = Ua::new("alice");
    // ringsip only serves ng here (its SIP port is unused)
    let d = start("media-kam", &config(&net, "127.0.0.1:9".parse().unwrap(), "60s"), &net);
    let kport = e2e::free_udp_port();
    let dir = TempDir::new("kamailio");
    let cfg = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
listen=udp:127.0.0.1:{kport}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:{ng}")
request_route {{
    if (has_totag()) {{
        if (loose_route()) {{
            if (is_method("BYE")) {{ rtpengine_delete(); }}
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{ t_relay(); exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    record_route();
    if (is_method("INVITE") && has_body("application/sdp")) {{
        rtpengine_offer("replace-origin replace-session-connection ICE=remove");
    }}
    t_on_reply("MEDIA");
    $du = "sip:{bob}";
    t_relay();
}}
onreply_route[MEDIA] {{
    if (has_body("application/sdp")) {{
        rtpengine_answer("replace-origin replace-session-connection ICE=remove");
    }}
}}
"#,
        ng = net.ng,
        bob = bob.sip_addr(),
    );
    let file = dir.0.join("kamailio.cfg");
    std::fs::write(&file, cfg).unwrap();
    let log = std::fs::File::create(dir.0.join("kamailio.log")).unwrap();
    let child = Command::new(&kamailio)
        .arg("-f")
        .arg(&file)
        .args(["-DD", "-E", "-w"])
        .arg(&dir.0)
        .args(["-P", &dir.0.join("kamailio.pid").to_string_lossy()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start kamailio");
    let _k = Kamailio(child);
    let kam: SocketAddr = format!("127.0.0.1:{kport}").parse().unwrap();
    let klog = || std::fs::read_to_string(dir.0.join("kamailio.log")).unwrap_or_default();
    // Kamailio is up when it answers (a 404 to an out-of-dialog OPTIONS is not needed:
    // give it a moment and retry the INVITE until bob sees it)
    let mut inv = None;
    let end = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    while inv.is_none() && Instant::now() < end {
        n += 1;
        alice.invite(kam, "bob", &format!("kam-call-{n}"), &sdp("127.0.0.1", alice.rtp_addr().port(), 1));
        inv = bob.recv_until(Duration::from_secs(1), |m| m.method() == Some("INVITE"));
    }
    let (inv, from) = inv.unwrap_or_else(|| panic!("no INVITE through Kamailio:\n{}", klog()));
    let to_b = inv.sdp_media().expect("SDP in the INVITE");
    assert!(in_range(to_b, &net), "Kamailio rewrote the offer to ringsip's port: {to_b}\n{}\n{}", inv.0, klog());
    bob.respond(&inv, from, 200, "OK", Some(&sdp("127.0.0.1", bob.rtp_addr().port(), 2)));
    let call_id = inv.header("Call-ID").unwrap().to_string();
    let (ok, _) = alice
        .recv_until(Duration::from_secs(5), |m| m.status() == Some(200) && m.header("Call-ID") == Some(&call_id))
        .unwrap_or_else(|| panic!("no 200 through Kamailio:\n{}", klog()));
    let to_a = ok.sdp_media().expect("SDP in the 200");
    assert!(in_range(to_a, &net), "the answer points at ringsip: {to_a}");
    alice.in_dialog(kam, &ok, "ACK");
    rtp_flows(&alice.rtp, to_a, &bob.rtp, to_b, 10, 3);
    rtp_flows(&bob.rtp, to_b, &alice.rtp, to_a, 10, 4);
    assert!(metric(&d, "ringsip_media_ng_requests_total") >= 2.0);
    alice.in_dialog(kam, &ok, "BYE");
    let (bye, from) = bob.recv_until(Duration::from_secs(5), |m| m.method() == Some("BYE")).expect("BYE");
    bob.respond(&bye, from, 200, "OK", None);
    assert!(
        e2e::wait_for(Duration::from_secs(5), || metric(&d, "ringsip_media_calls") <= (n - 1) as f64),
        "Kamailio's rtpengine_delete ended the call on ringsip"
    );
}
