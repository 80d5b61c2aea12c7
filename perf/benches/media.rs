//! The media relay's userspace work, in process (no sockets): what a shard spends per packet
//! and per call on top of the kernel's receive and send.
//!
//! * `media/packet`: [`Table::packet`] for packets of 2,500 calls (5,000 sessions, both
//!   directions, RTP and RTCP) arriving round robin: lookup by port, latching check,
//!   counters, the destination;
//! * `media/offer_answer_delete`: one call's control work over ng: parse the offer,
//!   allocate two port pairs, rewrite the SDP, the answer, the delete (the control path
//!   allocates a call's key; it is not on the packet path);
//! * `media/sdp_rewrite`: the anchoring rewrite of a typical audio offer alone.
//!
//! `cargo bench -p ringsip-perf --bench media -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use ringsip_media::anchor::{self, Anchor};
use ringsip_media::control::Control;
use ringsip_media::ports::Pool;
use ringsip_media::relay::{Mode, Table, Verdict};
use ringsip_proto::sdp::{MAX_MEDIA, Sdp};

const CALLS: usize = 2500;

fn offer_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 4711 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("media");

    // 2,500 calls: side A at 10.0.x.y:4000 sends on port p, side B at 10.1.x.y:5000 on p + 2
    let mut t = Table::new(30000..=39999);
    let mut packets: Vec<(u16, SocketAddr)> = Vec::new();
    for i in 0..CALLS {
        let pa = 30000 + 4 * i as u16;
        let id = t.add([pa, pa + 2], Mode::default(), 0).expect("room");
        let a: SocketAddr = format!("10.0.{}.{}:4000", i / 256, i % 256).parse().unwrap();
        let b: SocketAddr = format!("10.1.{}.{}:5000", i / 256, i % 256).parse().unwrap();
        let s = t.get_mut(id).unwrap();
        s.legs[0].expected = Some(a);
        s.legs[1].expected = Some(b);
        packets.push((pa, a));
        packets.push((pa + 2, b));
        packets.push((pa + 1, SocketAddr::new(a.ip(), 4001)));
    }
    let mut k = 0usize;
    let mut now = 0u64;
    g.bench_function("packet", |bench| {
        bench.iter(|| {
            let (port, src) = packets[k];
            k = (k + 1) % packets.len();
            now += 1;
            let v = t.packet(black_box(port), black_box(src), 172, now);
            debug_assert!(matches!(v, Verdict::Forward { .. }));
            black_box(v)
        })
    });

    let mut ctl =
        Control::new("127.0.0.1".parse().unwrap(), Pool::new(30000..=39999).unwrap(), Table::new(30000..=39999));
    let offer = ringsip_media::ng::request(
        "c1",
        &[("command", "offer"), ("call-id", "bench-1"), ("from-tag", "ft"), ("sdp", &offer_sdp(4000))],
    );
    let answer = ringsip_media::ng::request(
        "c2",
        &[
            ("command", "answer"),
            ("call-id", "bench-1"),
            ("from-tag", "ft"),
            ("to-tag", "tt"),
            ("sdp", &offer_sdp(5000)),
        ],
    );
    let delete = ringsip_media::ng::request("c3", &[("command", "delete"), ("call-id", "bench-1"), ("from-tag", "ft")]);
    let mut out = vec![0u8; 8192];
    g.bench_function("offer_answer_delete", |bench| {
        bench.iter(|| {
            let a = ctl.handle(black_box(&offer), 1, &mut out);
            let b = ctl.handle(black_box(&answer), 2, &mut out);
            let c = ctl.handle(black_box(&delete), 3, &mut out);
            black_box((a, b, c))
        })
    });

    let body = offer_sdp(4000);
    let sdp = Sdp::parse(body.as_bytes()).unwrap();
    let mut ports = [0u16; MAX_MEDIA];
    ports[0] = 30002;
    let anchor = Anchor { addr: "127.0.0.1".parse().unwrap(), ports, replace_origin: true, ice_remove: true };
    let mut buf = [0u8; 4096];
    g.bench_function("sdp_rewrite", |bench| {
        bench.iter(|| black_box(anchor::rewrite(black_box(body.as_bytes()), &sdp, &anchor, &mut buf)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
