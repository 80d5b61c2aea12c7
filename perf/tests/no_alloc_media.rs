//! Zero-allocation proof for a shard's media path: the io_uring media IO
//! (`ringsip_runtime::media::MediaIo`: multishot receives from the provided buffer ring, a
//! send per packet) with the `StatelessProxy` handler's `media_packet` (relay table lookup,
//! latching, counters) of `config/examples/media.toml`, over real loopback sockets.
//!
//! 50 calls are set up through the handler's ng control path (which allocates: a call's
//! key), media flows both ways for a warm-up, then 20,000 more packets are received,
//! looked up and sent while counting: none may allocate.

use std::net::{SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringsip_modules::stateless::{Factory, Shared};
use ringsip_runtime::media::{MediaIo, MediaIoConfig};
use ringsip_runtime::{Handler, HandlerFactory, MediaStats, ShardInfo, ShardPlace, ShardStats};

mod common;
use common::allocations_during;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const CALLS: usize = 50;

/// A free range of `n` ports on 127.0.0.1, the first even.
fn free_range(n: u16) -> RangeInclusive<u16> {
    let mut base = (24000 + (std::process::id() % 400) as u16 * 80) & !1;
    loop {
        let held: Vec<_> = (base..base + n).map_while(|p| UdpSocket::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == usize::from(n) {
            return base..=base + n - 1;
        }
        base += n + 2;
        assert!(base < 60000);
    }
}

fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
}

fn sdp_port(reply: &[u8]) -> u16 {
    let t = String::from_utf8_lossy(reply);
    let m = t.find("m=audio ").expect("SDP in the reply") + 8;
    t[m..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn relaying_media_does_not_allocate() {
    let ports = free_range(4 * CALLS as u16);
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/media.toml"))
        .unwrap()
        .replace("30000-39999", &format!("{}-{}", ports.start(), ports.end()));
    let cfg = ringsip_config::parse(&text, Path::new("media.toml")).unwrap_or_else(|e| panic!("{e}"));
    let shared = Arc::new(Shared::new(&cfg).unwrap());
    let f = Factory::new(shared, Arc::new(Mutex::new(Vec::new())));
    let info = ShardInfo {
        place: ShardPlace { shard: 0, cpu: 0, node: 0 },
        shards: 1,
        listen: vec!["127.0.0.1:5060".parse().unwrap()],
        media_ports: Some(ports.clone()),
        media_addr: Some("127.0.0.1".parse().unwrap()),
    };
    let mut h = f.make(&info, Arc::new(ShardStats::default()));
    let stats = Arc::new(MediaStats::default());
    let mut io = MediaIo::new(&MediaIoConfig::new("127.0.0.1".parse().unwrap(), ports), &[], stats.clone()).unwrap();

    // calls over ng: (A's socket, where A sends, B's socket, where B sends)
    let mut legs = Vec::new();
    let mut reply = vec![0u8; 65536];
    let now = Instant::now();
    for i in 0..CALLS {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let cid = format!("call-{i}");
        let pa = a.local_addr().unwrap().port().to_string();
        let pb = b.local_addr().unwrap().port().to_string();
        let n = h.media_control(
            &ringsip_media::ng::request(
                "c",
                &[("command", "offer"), ("call-id", &cid), ("from-tag", "f"), ("sdp", &sdp(pa.parse().unwrap()))],
            ),
            "127.0.0.1:9".parse().unwrap(),
            now,
            &mut reply,
        );
        let to_b = sdp_port(&reply[..n]);
        let n = h.media_control(
            &ringsip_media::ng::request(
                "c",
                &[
                    ("command", "answer"),
                    ("call-id", &cid),
                    ("from-tag", "f"),
                    ("to-tag", "t"),
                    ("sdp", &sdp(pb.parse().unwrap())),
                ],
            ),
            "127.0.0.1:9".parse().unwrap(),
            now,
            &mut reply,
        );
        let to_a = sdp_port(&reply[..n]);
        for s in [&a, &b] {
            s.set_nonblocking(true).unwrap();
        }
        let to = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        legs.push((a, to(to_a), b, to(to_b)));
    }

    let packet = [0x80u8; 172];
    let mut sink = [0u8; 2048];
    // send `rounds` packets per direction per call, relaying as they come; drain the sinks
    let mut run = |rounds: usize, h: &mut _, io: &mut MediaIo| {
        let h: &mut ringsip_modules::stateless::StatelessProxy = h;
        let mut relayed = 0usize;
        for _ in 0..rounds {
            for (a, to_a, b, to_b) in &legs {
                a.send_to(&packet, *to_a).unwrap();
                b.send_to(&packet, *to_b).unwrap();
            }
            let want = relayed + 2 * legs.len();
            let end = Instant::now() + Duration::from_secs(2);
            while relayed < want && Instant::now() < end {
                io.wait(Duration::from_millis(5)).unwrap();
                let now = Instant::now();
                relayed += io.complete(|port, src, data| h.media_packet(port, src, data, now)).forwarded;
            }
            io.wait(Duration::ZERO).unwrap();
            for (a, _, b, _) in &legs {
                while a.recv(&mut sink).is_ok() {}
                while b.recv(&mut sink).is_ok() {}
            }
        }
        relayed
    };
    let warm = run(50, &mut h, &mut io);
    assert_eq!(warm, 50 * 2 * CALLS, "every warm-up packet relayed");
    let (allocs, relayed) = allocations_during(|| run(200, &mut h, &mut io));
    assert_eq!(relayed, 200 * 2 * CALLS, "every packet relayed");
    assert_eq!(allocs, 0, "{allocs} allocations relaying {relayed} packets");
    assert_eq!(stats.send_full.get() + stats.no_buffers.get() + stats.truncated.get(), 0);
}
