//! The stateless load balancer end to end: the real daemon between a sipp UAC and two sipp
//! UAS on loopback, with one and with two shards; a destination that stops answering
//! probes is skipped and used again when it returns; hostile datagrams are dropped or
//! answered 400 and counted while routing goes on; the example config works as documented.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ringsip_tests::e2e::{self, CallResult, Daemon, Sipp, TempDir};
use ringsip_tests::{corpus_dir, read_index};

struct Setup {
    listen: SocketAddr,
    metrics: SocketAddr,
    uas: [u16; 2],
    text: String,
}

fn setup(probe_interval: &str) -> Setup {
    let listen: SocketAddr = format!("127.0.0.1:{}", e2e::free_udp_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", e2e::free_tcp_port()).parse().unwrap();
    let uas = [e2e::free_udp_port(), e2e::free_udp_port()];
    let text = format!(
        r#"
[server]
listen = ["udp:{listen}"]
metrics = "{metrics}"

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:{u0}", "sip:127.0.0.1:{u1}"]
probe = {{ method = "OPTIONS", interval = "{probe_interval}", failure_threshold = 1, success_threshold = 1 }}

[[route.request]]
if = "$hdr(Max-Forwards) == 0"
do = 'reply 483 "Too Many Hops"'

[[route.request]]
if = "has_totag and $rd != myself"
do = "forward"

[[route.request]]
do = ['select 1 else reply 503 "No destination"', "forward"]
"#,
        u0 = uas[0],
        u1 = uas[1]
    );
    Setup { listen, metrics, uas, text }
}

fn selected(d: &Daemon, port: u16) -> f64 {
    d.metrics().get(&format!("ringsip_dispatcher_selected_total{{set=\"1\",destination=\"sip:127.0.0.1:{port}\"}}"))
}

fn up(d: &Daemon, port: u16) -> f64 {
    d.metrics().get(&format!("ringsip_dispatcher_destination_up{{set=\"1\",destination=\"sip:127.0.0.1:{port}\"}}"))
}

fn calls(sipp: &std::path::Path, s: &Setup, n: u64, rate: u64, dir: &TempDir) -> CallResult {
    e2e::run_uac(sipp, s.listen, e2e::free_udp_port(), n, rate, &dir.0, Duration::from_secs(60))
}

fn even_split_with_shards(shards: &str) {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let s = setup("1s");
    let dir = TempDir::new("even");
    let _u0 = Sipp::uas(&sipp, s.uas[0], &dir.0);
    let _u1 = Sipp::uas(&sipp, s.uas[1], &dir.0);
    let mut d = Daemon::with_config("even", &s.text, &["--shards", shards], Some(s.metrics));
    assert!(
        e2e::wait_for(Duration::from_secs(10), || up(&d, s.uas[0]) == 1.0 && up(&d, s.uas[1]) == 1.0),
        "destinations up"
    );
    // enough calls that an ordering bug (a 200 overtaking its 180) would show as failures
    let r = calls(&sipp, &s, 2000, 500, &dir);
    assert_eq!((r.successful, r.failed, r.exit), (2000, 0, 0), "every call succeeds\n{}", d.log_text());
    let (a, b) = (selected(&d, s.uas[0]), selected(&d, s.uas[1]));
    assert_eq!(a + b, 2000.0);
    assert!((a - b).abs() <= 2.0, "round-robin shares calls evenly: {a} / {b}");
    let m = d.metrics();
    assert_eq!(m.get("ringsip_requests_forwarded_total{method=\"INVITE\"}"), 2000.0);
    assert_eq!(m.get("ringsip_requests_forwarded_total{method=\"ACK\"}"), 2000.0);
    assert_eq!(m.get("ringsip_requests_forwarded_total{method=\"BYE\"}"), 2000.0);
    assert_eq!(m.get("ringsip_responses_forwarded_total{class=\"2xx\"}"), 4000.0);
    assert_eq!(m.get("ringsip_shards"), shards.parse::<f64>().unwrap());
    assert_eq!(d.stop(), Some(0), "clean stop on SIGTERM");
}

#[test]
fn calls_share_destinations_evenly_with_one_shard() {
    even_split_with_shards("1");
}

#[test]
fn calls_share_destinations_evenly_with_two_shards_and_none_is_reordered() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        panic!("this test needs two CPUs");
    }
    even_split_with_shards("2");
}

#[test]
fn a_stopped_destination_is_skipped_and_used_again_when_it_returns() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let s = setup("500ms");
    let dir = TempDir::new("failover");
    let _u0 = Sipp::uas(&sipp, s.uas[0], &dir.0);
    let u1 = Sipp::uas(&sipp, s.uas[1], &dir.0);
    let d = Daemon::with_config("failover", &s.text, &["--shards", "2"], Some(s.metrics));
    assert!(e2e::wait_for(Duration::from_secs(10), || up(&d, s.uas[1]) == 1.0), "destination up at start");
    assert_eq!(calls(&sipp, &s, 100, 100, &dir).failed, 0);

    // stop one destination: probing marks it inactive within a few seconds
    drop(u1);
    assert!(e2e::wait_for(Duration::from_secs(5), || up(&d, s.uas[1]) == 0.0), "marked inactive\n{}", d.log_text());
    let before = (selected(&d, s.uas[0]), selected(&d, s.uas[1]));
    let r = calls(&sipp, &s, 200, 100, &dir);
    assert_eq!((r.successful, r.failed), (200, 0), "all new calls go to the other destination");
    assert_eq!(selected(&d, s.uas[1]), before.1, "none to the stopped one");
    assert_eq!(selected(&d, s.uas[0]), before.0 + 200.0);
    assert!(d.log_text().contains("destination is down"));

    // it returns: used again
    let _u1 = Sipp::uas(&sipp, s.uas[1], &dir.0);
    assert!(e2e::wait_for(Duration::from_secs(5), || up(&d, s.uas[1]) == 1.0), "active again");
    let before = selected(&d, s.uas[1]);
    assert_eq!(calls(&sipp, &s, 100, 100, &dir).failed, 0);
    assert!(selected(&d, s.uas[1]) >= before + 49.0, "used again");
}

#[test]
fn hostile_datagrams_are_counted_and_routing_goes_on() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let s = setup("1s");
    let dir = TempDir::new("hostile");
    let _u0 = Sipp::uas(&sipp, s.uas[0], &dir.0);
    let _u1 = Sipp::uas(&sipp, s.uas[1], &dir.0);
    let mut d = Daemon::with_config("hostile", &s.text, &["--shards", "2"], Some(s.metrics));
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut sent = 0u64;
    // the RFC 4475 invalid set, every prefix of a few of them, random bytes, oversize junk
    for row in read_index("rfc4475", "rfc4475").into_iter().filter(|r| !r.valid) {
        let bytes = std::fs::read(&row.path).unwrap();
        attacker.send_to(&bytes, s.listen).unwrap();
        sent += 1;
        for cut in (0..bytes.len()).step_by(37) {
            attacker.send_to(&bytes[..cut], s.listen).unwrap();
            sent += 1;
        }
    }
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..500 {
        let len = 1 + (i * 7919) % 1400;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        attacker.send_to(&junk, s.listen).unwrap();
        sent += 1;
    }
    attacker.send_to(&vec![b'A'; 20_000], s.listen).unwrap();
    sent += 1;
    // broken requests whose Via asks for the answer at the source (rport): each gets a 400
    // (a 505 for the unsupported version) back here; the corpus messages above carry other
    // hosts' Vias, so their answers go where those Vias say (RFC 3261 §18.2.2)
    let via = format!("SIP/2.0/UDP 127.0.0.1:{};rport;branch=z9hG4bKhostile", attacker.local_addr().unwrap().port());
    let broken = [
        format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h1\r\nCSeq: 99999999999 INVITE\r\n\r\n"
        ),
        format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h2\r\nCSeq: 1 OPTIONS\r\n\r\n"
        ),
        format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: \"open <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h3\r\nCSeq: 1 INVITE\r\n\r\n"
        ),
        format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: {via}\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: h4\r\nCSeq: 1 INVITE\r\nMax-Forwards: 300\r\n\r\n"
        ),
    ];
    for b in &broken {
        attacker.send_to(b.as_bytes(), s.listen).unwrap();
        sent += 1;
    }
    let mut answers = 0;
    let mut buf = [0u8; 4096];
    attacker.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while answers < broken.len() {
        let Ok((n, _)) = attacker.recv_from(&mut buf) else { break };
        let m = ringsip_proto::Message::parse(&buf[..n]).expect("ringsip's reply parses");
        assert_eq!(m.status(), Some(400));
        assert!(m.header(ringsip_proto::HeaderName::Warning).is_some(), "the reason is given");
        answers += 1;
    }
    assert_eq!(answers, broken.len());
    assert!(d.alive(), "still running\n{}", d.log_text());
    assert!(e2e::wait_for(Duration::from_secs(3), || {
        let m = d.metrics();
        m.sum("ringsip_udp_rx_datagrams_total") >= sent as f64 - 1.0
    }));
    let m = d.metrics();
    let dropped = m.sum("ringsip_drops_total");
    let replied =
        m.get("ringsip_replies_sent_total{code=\"400\"}") + m.get("ringsip_replies_sent_total{code=\"other\"}");
    assert!(m.get("ringsip_parse_errors_total") > 500.0, "{m:?}");
    assert!(m.get("ringsip_drops_total{reason=\"unparsable\"}") > 400.0);
    assert!(replied >= (answers + 5) as f64, "answers {answers}, counted {replied}");
    assert!(dropped + replied + m.sum("ringsip_udp_rx_truncated_total") >= 500.0);
    // routing goes on
    let r = calls(&sipp, &s, 200, 100, &dir);
    assert_eq!((r.successful, r.failed), (200, 0));
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn the_example_config_works_as_documented() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let example = e2e::workspace().join("config/examples/stateless-lb.toml");
    let dir = TempDir::new("example");
    let _u0 = Sipp::uas(&sipp, 5080, &dir.0);
    let _u1 = Sipp::uas(&sipp, 5081, &dir.0);
    let d = Daemon::start(&example, &[], Some("127.0.0.1:9090".parse().unwrap()));
    let s = Setup {
        listen: "127.0.0.1:5060".parse().unwrap(),
        metrics: "127.0.0.1:9090".parse().unwrap(),
        uas: [5080, 5081],
        text: String::new(),
    };
    assert!(e2e::wait_for(Duration::from_secs(10), || up(&d, 5080) == 1.0 && up(&d, 5081) == 1.0));
    let r = calls(&sipp, &s, 300, 150, &dir);
    assert_eq!((r.successful, r.failed), (300, 0), "{}", d.log_text());
    assert_eq!(selected(&d, 5080) + selected(&d, 5081), 300.0);
    // probing every 2 s (the contract): at least one probe per destination by now
    assert!(d.metrics().get("ringsip_probes_sent_total") >= 2.0);
    let _ = s.metrics;
}

#[test]
fn the_lcr_example_routes_by_prefix() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let example = e2e::workspace().join("config/examples/lcr.toml");
    let dir = TempDir::new("lcr");
    let _u0 = Sipp::uas(&sipp, 5080, &dir.0);
    let _u1 = Sipp::uas(&sipp, 5081, &dir.0);
    let d = Daemon::start(&example, &[], Some("127.0.0.1:9090".parse().unwrap()));
    let target: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let sel = |set: u32, port: u16| {
        d.metrics()
            .get(&format!("ringsip_dispatcher_selected_total{{set=\"{set}\",destination=\"sip:127.0.0.1:{port}\"}}"))
    };
    let up = |set: u32, port: u16| {
        d.metrics()
            .get(&format!("ringsip_dispatcher_destination_up{{set=\"{set}\",destination=\"sip:127.0.0.1:{port}\"}}"))
    };
    assert!(e2e::wait_for(Duration::from_secs(10), || up(1, 5080) == 1.0 && up(2, 5081) == 1.0));
    let call = |n: u64, number: &str| {
        e2e::run_uac_calling(&sipp, target, e2e::free_udp_port(), n, 100, &dir.0, Duration::from_secs(30), number)
    };
    // +4930... -> sets "2;1": carrier-b (5081)
    let r = call(50, "+4930123456");
    assert_eq!((r.successful, r.failed), (50, 0), "{}", d.log_text());
    assert_eq!((sel(2, 5081), sel(1, 5080)), (50.0, 0.0));
    // +4989... -> the +49 entry, sets "1;2": carrier-a (5080)
    let r = call(50, "+4989123456");
    assert_eq!((r.successful, r.failed), (50, 0));
    assert_eq!((sel(2, 5081), sel(1, 5080)), (50.0, 50.0));
    // nothing matches +33...: every INVITE is answered 404, the calls fail
    let r = call(10, "+33123456789");
    assert_eq!((r.successful, r.failed), (0, 10));
    assert_eq!(d.metrics().get("ringsip_replies_sent_total{code=\"404\"}"), 10.0);
}

#[test]
fn check_and_topology_commands() {
    let bin = e2e::ringsip_bin();
    let ok = std::process::Command::new(&bin)
        .args(["check"])
        .arg(e2e::workspace().join("config/examples/stateless-lb.toml"))
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid"));
    let dir = TempDir::new("check");
    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\nbogus = 1\n[[route.request]]\ndo = \"select 9\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(&bin).arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:1"), "{err}");
    assert!(err.contains("bogus"), "{err}");
    assert!(err.contains("bad.toml:5:14: select 9: there is no dispatcher set with id 9"), "{err}");
    assert!(err.contains("(2 errors)"), "{err}");
    let topo = std::process::Command::new(&bin).args(["topology", "--shards", "1"]).output().unwrap();
    assert_eq!(topo.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&topo.stdout).contains("shard 0 -> CPU"));
    let usage = std::process::Command::new(&bin).arg("--nonsense").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    // a config it cannot serve (port held by someone else) fails clearly, exit 1
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = dir.0.join("busy.toml");
    std::fs::write(
        &busy,
        format!("[server]\nlisten = [\"udp:{}\"]\n[[route.request]]\ndo = \"drop\"\n", holder.local_addr().unwrap()),
    )
    .unwrap();
    let out = std::process::Command::new(&bin).arg("--config").arg(&busy).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = corpus_dir();
}
