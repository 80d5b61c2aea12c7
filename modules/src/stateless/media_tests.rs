//! Media anchoring from the route (`anchor_media`), driven without sockets: the shard's relay
//! state is sans-IO, so a test feeds SIP datagrams and media "packets" (a port and a source)
//! and reads what would be sent.

use super::tests::{H, UAC, one};
use super::*;

const MEDIA: &str = r#"
[server]
listen = ["udp:127.0.0.1:5060"]

[media]
address = "127.0.0.1"
ports = "30000-30015"
timeout = "10s"

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080"]
probe = { mode = "none" }

[[route.request]]
if = "has_totag"
do = ["anchor_media", "relay"]

[[route.request]]
do = ['select 1 else reply 503 "No destination"', "record_route", "anchor_media ice_remove", "relay"]
"#;

const UAS: &str = "127.0.0.1:5080";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn harness() -> H {
    H::with_media(MEDIA, 30000..=30015)
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 7 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=ice-ufrag:abcd\r\na=candidate:1 1 UDP 2130706431 {ip} {port} typ host\r\na=sendrecv\r\n"
    )
}

fn with_body(msg: &str, body: &str) -> Vec<u8> {
    let (head, _) = msg.split_once("Content-Length: 0\r\n\r\n").expect("an empty message");
    format!("{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn invite_with(call: &str, body: &str) -> Vec<u8> {
    with_body(&text(&super::tests::invite(call, "")), body)
}

/// The response to `req` (as relayed) with `code`, a To tag and optionally SDP.
fn respond(req: &[u8], code: u16, body: Option<&str>) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut s = format!("SIP/2.0 {code} X\r\n");
    for h in m.headers() {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq | HeaderName::RecordRoute => {
                s.push_str(&format!("{}: {}\r\n", text(h.raw_name), text(h.value)));
            }
            HeaderName::To => s.push_str(&format!("To: {};tag=uas\r\n", text(h.value))),
            _ => {}
        }
    }
    s.push_str("Contact: <sip:uas@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n");
    match body {
        Some(b) => with_body(&s, b),
        None => s.into_bytes(),
    }
}

/// The media address and port of a message's SDP, and the message checked whole.
fn media_of(b: &[u8]) -> (String, u16) {
    let m = Message::parse(b).unwrap();
    m.validate().unwrap();
    let body = m.body();
    assert_eq!(m.content_length(), Some(body.len() as u32), "Content-Length follows the body");
    let sdp = m.sdp().unwrap().expect("SDP");
    let md = &sdp.media()[0];
    let ip = sdp.media_connection(md).and_then(|c| c.ip()).unwrap().to_string();
    (ip, md.port)
}

fn in_dialog(method: &str, call: &str, cseq: u32, to_tag: &str) -> Vec<u8> {
    text(&super::tests::invite(call, "Route: <sip:127.0.0.1:5060;lr>\r\n"))
        .replace("INVITE sip:service@127.0.0.1:5060", &format!("{method} sip:uas@127.0.0.1:5080"))
        .replace("1 INVITE", &format!("{cseq} {method}"))
        .replace("To: <sip:service@127.0.0.1:5060>", &format!("To: <sip:service@127.0.0.1:5060>;tag={to_tag}"))
        .into_bytes()
}

fn calls(h: &H) -> u64 {
    h.proxy.media.as_ref().unwrap().stats.calls.get()
}

fn ports_free(h: &H) -> u64 {
    h.proxy.media.as_ref().unwrap().stats.ports_free.get()
}

#[test]
fn an_anchored_call_is_rewritten_both_ways_relays_media_and_ends_with_its_bye() {
    let mut h = harness();
    h.skip_trying = true;
    let free = ports_free(&h);
    assert_eq!(free, 16);
    let (to, inv) = one(h.feed(&invite_with("m1", &sdp("192.0.2.10", 4000)), UAC));
    assert_eq!(to, addr(UAS));
    let (ip, to_b) = media_of(&inv);
    assert_eq!(ip, "127.0.0.1");
    assert!((30000..=30015).contains(&to_b));
    assert!(!text(&inv).contains("a=candidate"), "ice_remove: {}", text(&inv));
    assert_eq!(calls(&h), 1);
    assert_eq!(ports_free(&h), free - 4);

    let (to, ok) = one(h.feed(&respond(&inv, 200, Some(&sdp("198.51.100.20", 5000))), UAS));
    assert_eq!(to, addr(UAC));
    let (ip, to_a) = media_of(&ok);
    assert_eq!(ip, "127.0.0.1");
    assert_ne!(to_a, to_b);
    assert!(!text(&ok).contains("a=candidate"), "the answer takes its transaction's flags (ice_remove)");

    // media: each side is expected at the address its SIP message came from (no
    // trust_address: a phone behind NAT writes a private address into its SDP), at its SDP's
    // port: the caller at the INVITE's source, the callee at the 200's
    let now = Instant::now();
    let caller = addr("203.0.113.45:4000");
    let callee = addr("127.0.0.1:5000");
    assert_eq!(h.proxy.media_packet(to_a, caller, &[0; 172], now), Some((to_b, callee)));
    assert_eq!(h.proxy.media_packet(to_b, callee, &[0; 172], now), Some((to_a, caller)));
    // a stranger after latching, and a port with no session
    assert_eq!(h.proxy.media_packet(to_a, addr("203.0.113.99:1"), &[0; 172], now), None);
    assert_eq!(h.proxy.media_packet(30014, addr("203.0.113.99:1"), &[0; 172], now), None);
    let st = &h.proxy.media.as_ref().unwrap().stats;
    assert_eq!((st.forwarded.get(), st.wrong_source.get(), st.no_session.get()), (2, 1, 1));

    // the BYE ends it
    let (to, _) = one(h.feed(&in_dialog("BYE", "m1", 2, "uas"), UAC));
    assert_eq!(to, addr(UAS));
    assert_eq!((calls(&h), ports_free(&h)), (0, free));
    assert_eq!(h.proxy.media_packet(to_a, caller, &[0; 172], now), None);
}

#[test]
fn a_failed_invite_ends_its_media_and_sdp_that_cannot_be_anchored_passes_unchanged() {
    let mut h = harness();
    h.skip_trying = true;
    let (_, inv) = one(h.feed(&invite_with("f1", &sdp("192.0.2.10", 4000)), UAC));
    assert_eq!(calls(&h), 1);
    let out = h.feed(&respond(&inv, 486, None), UAS);
    assert!(out.iter().any(|(a, b)| *a == addr(UAC) && b.starts_with(b"SIP/2.0 486")));
    assert_eq!(calls(&h), 0, "the 486 upstream ended the call's media");

    // not SDP at all: relayed as it came, counted
    let junk = "v=0\r\nthis is not sdp\r\n";
    let (_, inv) = one(h.feed(&invite_with("f2", junk), UAC));
    assert!(text(&inv).ends_with(junk), "{}", text(&inv));
    assert_eq!(h.proxy.media.as_ref().unwrap().stats.sdp_failed.get(), 1);
    assert_eq!(calls(&h), 0);

    // the pool runs dry: 4 calls of 2 pairs each fill 16 ports; the 5th is relayed unanchored
    for i in 0..4 {
        one(h.feed(&invite_with(&format!("p{i}"), &sdp("192.0.2.10", 4000)), UAC));
    }
    assert_eq!((calls(&h), ports_free(&h)), (4, 0));
    let (_, inv) = one(h.feed(&invite_with("p4", &sdp("192.0.2.10", 4000)), UAC));
    assert_eq!(media_of(&inv), ("192.0.2.10".to_string(), 4000), "forwarded as offered");
    assert_eq!(h.proxy.media.as_ref().unwrap().stats.sdp_failed.get(), 2);
}

#[test]
fn a_late_offer_is_anchored_from_the_200_and_its_ack() {
    let mut h = harness();
    h.skip_trying = true;
    // an INVITE without SDP: the 200 carries the offer, the ACK the answer
    let (_, inv) = one(h.feed(&super::tests::invite("late", ""), UAC));
    assert_eq!(calls(&h), 0);
    let (_, ok) = one(h.feed(&respond(&inv, 200, Some(&sdp("198.51.100.20", 5000))), UAS));
    let (_, to_callee_side) = media_of(&ok);
    assert_eq!(calls(&h), 1, "the 200's offer started the call");
    let ack = with_body(&text(&in_dialog("ACK", "late", 1, "uas")), &sdp("192.0.2.10", 4000));
    let (to, ack_fwd) = one(h.feed(&ack, UAC));
    assert_eq!(to, addr(UAS));
    let (ip, to_caller_side) = media_of(&ack_fwd);
    assert_eq!(ip, "127.0.0.1");
    assert_ne!(to_caller_side, to_callee_side);
    // the callee (who offered) sends to the port in the ACK; it reaches the caller's SDP port
    let now = Instant::now();
    assert_eq!(
        h.proxy.media_packet(to_caller_side, addr("127.0.0.1:5000"), &[0; 100], now),
        Some((to_callee_side, addr("203.0.113.45:4000")))
    );
}

#[test]
fn idle_calls_end_after_the_timeout_on_the_shards_tick() {
    let mut h = harness();
    h.skip_trying = true;
    let t0 = Instant::now();
    one(h.feed_at(&invite_with("idle", &sdp("192.0.2.10", 4000)), UAC, t0));
    assert_eq!(calls(&h), 1);
    h.tick(t0 + Duration::from_secs(5));
    assert_eq!(calls(&h), 1, "not yet");
    h.tick(t0 + Duration::from_secs(12));
    assert_eq!(calls(&h), 0, "10 s without a packet");
    assert_eq!(h.proxy.media.as_ref().unwrap().stats.expired.get(), 1);
}
