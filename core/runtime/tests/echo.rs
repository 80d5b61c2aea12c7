//! Two shards on one SO_REUSEPORT address echo datagrams back in batches, every source is
//! served by exactly one shard (so its datagrams stay in order), ticks run, and stop works.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringsip_runtime::{Datagram, Handler, HandlerFactory, Outbox, RuntimeConfig, ShardInfo, ShardStats, Topology};

struct Echo {
    shard: usize,
    ticks: Arc<AtomicUsize>,
}

impl Handler for Echo {
    fn datagram(&mut self, d: &Datagram<'_>, out: &mut Outbox<'_>) {
        let shard = self.shard as u8;
        out.send(d.listen, d.src, |buf| {
            buf[0] = b'0' + shard;
            buf[1..1 + d.data.len()].copy_from_slice(d.data);
            Some(1 + d.data.len())
        });
    }
    fn tick(&mut self, _now: Instant, _out: &mut Outbox<'_>) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

struct Factory(Arc<AtomicUsize>);

impl HandlerFactory for Factory {
    type Handler = Echo;
    fn make(&self, shard: &ShardInfo, _stats: Arc<ShardStats>) -> Echo {
        Echo { shard: shard.place.shard, ticks: self.0.clone() }
    }
}

#[test]
fn shards_echo_in_order_and_stop() {
    let topo = Topology::read().unwrap();
    let shards = topo.online.len().min(2);
    let placement = topo.place(None, Some(shards)).unwrap();
    // pick a free port, then let every shard bind it with SO_REUSEPORT
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = RuntimeConfig {
        listen: vec![addr],
        placement,
        rcvbuf: 1 << 20,
        sndbuf: 1 << 20,
        batch: 8,
        max_datagram: 2048,
        tick: Duration::from_millis(10),
        media: None,
    };
    let ticks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let running = ringsip_runtime::start(cfg, Arc::new(Factory(ticks.clone())), stop).unwrap();
    assert_eq!(running.ready.len(), shards);
    assert!(running.ready.iter().all(|r| r.sockets[0].0 == addr));

    // several clients, 50 datagrams each; every client's replies come from one shard, in order
    let mut by_shard = vec![0usize; shards];
    for c in 0..6 {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..50u32 {
            client.send_to(format!("{c}:{i}").as_bytes(), addr).unwrap();
        }
        let mut shard_seen = None;
        let mut buf = [0u8; 64];
        for i in 0..50u32 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            let shard = (buf[0] - b'0') as usize;
            assert_eq!(*shard_seen.get_or_insert(shard), shard, "one source, one shard");
            assert_eq!(&buf[1..n], format!("{c}:{i}").as_bytes(), "in order");
        }
        by_shard[shard_seen.unwrap()] += 1;
    }
    let rx: u64 = running.stats.iter().map(|s| s.rx_datagrams.get()).sum();
    let tx: u64 = running.stats.iter().map(|s| s.tx_datagrams.get()).sum();
    assert_eq!((rx, tx), (300, 300));
    assert!(running.stats.iter().map(|s| s.rx_batches.get()).sum::<u64>() <= 300);
    std::thread::sleep(Duration::from_millis(50));
    assert!(ticks.load(Ordering::Relaxed) > 0);
    running.stop();
    running.join().unwrap();
    eprintln!("clients per shard: {by_shard:?}");
}

#[test]
fn bind_failure_is_reported_and_nothing_leaks() {
    // a port another (non-reuseport) socket holds
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let topo = Topology::read().unwrap();
    let cfg = RuntimeConfig {
        listen: vec![addr],
        placement: topo.place(None, Some(1)).unwrap(),
        rcvbuf: 1 << 16,
        sndbuf: 1 << 16,
        batch: 4,
        max_datagram: 2048,
        tick: Duration::from_millis(10),
        media: None,
    };
    let err =
        ringsip_runtime::start(cfg, Arc::new(Factory(Arc::new(AtomicUsize::new(0)))), Arc::new(AtomicBool::new(false)))
            .err()
            .expect("bind must fail");
    assert!(err.contains("bind 127.0.0.1"), "{err}");
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn a_shard_serves_several_listen_sockets() {
    let topo = Topology::read().unwrap();
    let free = || UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (p1, p2) = (free(), free());
    let a1: SocketAddr = format!("127.0.0.1:{p1}").parse().unwrap();
    let a2: SocketAddr = format!("127.0.0.1:{p2}").parse().unwrap();
    let cfg = RuntimeConfig {
        listen: vec![a1, a2],
        placement: topo.place(None, Some(1)).unwrap(),
        rcvbuf: 1 << 20,
        sndbuf: 1 << 20,
        batch: 4,
        max_datagram: 2048,
        tick: Duration::from_millis(10),
        media: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let running = ringsip_runtime::start(cfg, Arc::new(Factory(Arc::new(AtomicUsize::new(0)))), stop).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..20u32 {
        let dst = if i % 2 == 0 { a1 } else { a2 };
        client.send_to(format!("x{i}").as_bytes(), dst).unwrap();
        let mut buf = [0u8; 32];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, dst, "answered from the socket it arrived on");
        assert_eq!(&buf[1..n], format!("x{i}").as_bytes());
    }
    running.stop();
    running.join().unwrap();
}
