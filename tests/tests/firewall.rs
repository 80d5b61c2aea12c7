//! The SIP firewall at the door (the reference SAFEGUARD route) end to end: the `[pike]` flood
//! detector shared by the shards, a ban table with autoexpire, an ACL of trusted peers.
//!
//! A source flooding from several ports (so its requests reach both shards) is let through up
//! to the limit, then banned and dropped silently, while a trusted peer sending as fast and an
//! ordinary source sending little are served completely.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ringsip_tests::e2e::{self, Daemon};

const LIMIT: usize = 100;
/// Requests each of the attacker and the trusted peer send in the burst.
const BURST: usize = 400;
/// The detector's window; the burst takes a fraction of it.
const WINDOW: Duration = Duration::from_secs(4);

fn config(sip: SocketAddr, metrics: SocketAddr, bob: SocketAddr, ctl: &std::path::Path) -> String {
    format!(
        r#"
[server]
listen = ["udp:{sip}"]
metrics = "{metrics}"
control_socket = "{ctl}"

[pike]
window = "{window}s"
limit = {LIMIT}

[[acl]]
name = "trusted"
entries = ["127.0.0.3"]

[[htable]]
name = "ipban"
autoexpire = "300s"

[[route.request]]
name = "banned"
if = "not $si in acl trusted and exists $sht(ipban=>$si)"
do = "drop"

[[route.request]]
name = "flood"
if = "not $si in acl trusted and flooding"
do = ["sht_set ipban $si 1", "drop"]

[[route.request]]
do = 'forward "udp:{bob}"'
"#,
        ctl = ctl.display(),
        window = WINDOW.as_secs()
    )
}

fn options(who: &str, i: usize, src: SocketAddr) -> Vec<u8> {
    format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK-{who}-{i}\r\nMax-Forwards: 70\r\nFrom: <sip:{who}@{src}>;tag=t{i}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {who}-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Bob reading in the background (its socket buffer would not hold a whole burst): counts
/// per sender name, read with [`Bob::take`] once 500 ms passed without anything.
struct Bob {
    rx: std::sync::mpsc::Receiver<String>,
}

impl Bob {
    fn start(sock: UdpSocket) -> Bob {
        let (tx, rx) = std::sync::mpsc::channel();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("Call-ID: ")) {
                            let who = id.rsplit_once('-').map_or(id, |(w, _)| w).to_string();
                            if tx.send(who).is_err() {
                                return;
                            }
                        }
                    }
                    Err(_) => continue,
                }
            }
        });
        Bob { rx }
    }

    fn take(&self) -> HashMap<String, usize> {
        let mut got: HashMap<String, usize> = HashMap::new();
        while let Ok(who) = self.rx.recv_timeout(Duration::from_millis(500)) {
            *got.entry(who).or_default() += 1;
        }
        got
    }
}

#[test]
fn a_flooding_source_is_banned_on_every_shard_while_others_are_served() {
    let _x = e2e::exclusive();
    // built now, not in the middle of the timed part (the first use builds it)
    e2e::ringsipctl_bin();
    let sip: SocketAddr = format!("127.0.0.1:{}", e2e::free_udp_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", e2e::free_tcp_port()).parse().unwrap();
    let bob_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bob_addr = bob_sock.local_addr().unwrap();
    let bob = Bob::start(bob_sock);
    let dir = e2e::TempDir::new("firewall-ctl");
    let ctl = dir.0.join("ctl.sock");
    let d = Daemon::with_config("firewall", &config(sip, metrics, bob_addr, &ctl), &["--shards", "2"], Some(metrics));

    // the attacker from 8 ports (the kernel spreads them over both shards), the trusted peer
    // and a quiet source, interleaved
    let attacker: Vec<UdpSocket> = (0..8).map(|_| UdpSocket::bind("127.0.0.2:0").unwrap()).collect();
    let trusted = UdpSocket::bind("127.0.0.3:0").unwrap();
    let quiet = UdpSocket::bind("127.0.0.4:0").unwrap();
    let t0 = Instant::now();
    for i in 0..BURST {
        let a = &attacker[i % attacker.len()];
        a.send_to(&options("attacker", i, a.local_addr().unwrap()), sip).unwrap();
        trusted.send_to(&options("trusted", i, trusted.local_addr().unwrap()), sip).unwrap();
        if i % 20 == 0 {
            quiet.send_to(&options("quiet", i, quiet.local_addr().unwrap()), sip).unwrap();
        }
        if i % 10 == 9 {
            // paced, so that no socket buffer on the way overflows on a busy machine; the
            // whole burst still takes a fraction of the window
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(t0.elapsed() < WINDOW / 2, "the burst must fit in the window: {:?}", t0.elapsed());
    let got = bob.take();
    let attacker_through = got.get("attacker").copied().unwrap_or(0);
    assert!(
        (LIMIT - 2..=LIMIT + 1).contains(&attacker_through),
        "about the limit of the flood got through, across both shards: {got:?}"
    );
    assert_eq!(got.get("trusted"), Some(&BURST), "the trusted peer is never limited: {got:?}");
    assert_eq!(got.get("quiet"), Some(&(BURST / 20)), "an ordinary source is not affected: {got:?}");
    // the operator's view of the detector: the flooding source on top, the trusted peer absent
    let top = e2e::ctl(&ctl, &["pike", "top", "5"]);
    assert_eq!(top.code, 0, "{top:?}");
    let first = top.stdout.lines().nth(2).unwrap_or("");
    assert!(first.starts_with("127.0.0.2") && first.ends_with("flooding"), "{}", top.stdout);
    assert!(!top.stdout.contains("127.0.0.3"), "the trusted peer is never counted: {}", top.stdout);

    // banned: even slow requests after the window has passed are dropped, from any port
    std::thread::sleep(WINDOW + Duration::from_millis(200));
    for (i, a) in attacker.iter().enumerate() {
        a.send_to(&options("attacker", 5000 + i, a.local_addr().unwrap()), sip).unwrap();
    }
    quiet.send_to(&options("quiet", 9999, quiet.local_addr().unwrap()), sip).unwrap();
    let got = bob.take();
    assert_eq!(got.get("attacker"), None, "the ban holds: {got:?}");
    assert_eq!(got.get("quiet"), Some(&1));

    let m = d.metrics();
    assert!(m.sum("ringsip_pike_flooding_total") >= 1.0);
    // the quiet source (and the attacker until idle sources are swept); the trusted peer's
    // requests are never counted (the ACL test comes first)
    let sources = m.sum("ringsip_pike_sources");
    assert!((1.0..=2.0).contains(&sources), "{sources}");
    // what reached the check: the attacker's passed requests, the one that tripped the limit
    // (and any the other shard checked before the ban was written), the quiet source's requests
    let counted = m.sum("ringsip_pike_requests_total") as usize;
    let least = attacker_through + 1 + BURST / 20 + 1;
    assert!((least..least + 16).contains(&counted), "{counted} counted, {least} at least");

    // the operator's view: its ban in the table; lifting the ban lets it through again
    let bans = e2e::ctl(&ctl, &["htable", "dump", "ipban"]);
    assert!(bans.stdout.contains("127.0.0.2") && !bans.stdout.contains("127.0.0.3"), "{}", bans.stdout);
    assert_eq!(e2e::ctl(&ctl, &["htable", "delete", "ipban", "127.0.0.2"]).code, 0);
    std::thread::sleep(WINDOW + Duration::from_millis(200));
    let a = &attacker[0];
    a.send_to(&options("attacker", 7777, a.local_addr().unwrap()), sip).unwrap();
    assert_eq!(bob.take().get("attacker"), Some(&1), "the ban was lifted");
}
