//! Shards: one glommio executor per core, each owning its sockets and its handler.
//!
//! A shard binds one socket per listen address (`SO_REUSEPORT`), then loops: wait for
//! datagrams and take a batch in the same call (`recvmmsg` with `MSG_WAITFORONE`, up to
//! `batch` datagrams, no allocation), hand each datagram to the shard's [`Handler`], send
//! what it produced with one `sendmmsg`, run the handler's timers when due, and yield to the
//! glommio executor (which hosts the shard, pinned to its CPU). A shard with several listen
//! sockets waits with `poll` and drains each ready socket instead.
//!
//! Why not glommio's own IO for this: its UDP socket moves one datagram per call and hides
//! readiness, and waiting through its io_uring reactor (a `MSG_PEEK` receive, then draining
//! with `recvmmsg`) measured 11.1–11.6 µs of CPU per routed message at 8,000 calls/s against
//! 7.2 µs for this loop and 5.9–6.3 µs for the floor forwarder, in one run of the shared
//! harness (docs/tuning.md). The receive timeout (the tick) bounds how late timers run and
//! how long a stop request waits.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement as GPlacement};
use tracing::{debug, info, warn};

use crate::counters::{MediaStats, ShardStats};
use crate::media::{MediaIo, MediaIoConfig};
use crate::topology::{Placement, ShardPlace};
use crate::udp::{self, BufferSizes, RecvBatch, SendBatch};

/// What the runtime needs to start shards.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Listen addresses (UDP); every shard binds each one.
    pub listen: Vec<SocketAddr>,
    /// Shard placement (one shard per entry).
    pub placement: Placement,
    /// Receive buffer to request per socket.
    pub rcvbuf: usize,
    /// Send buffer to request per socket.
    pub sndbuf: usize,
    /// Datagrams per `recvmmsg`/`sendmmsg` batch.
    pub batch: usize,
    /// Largest datagram accepted; longer ones are dropped and counted as truncated.
    pub max_datagram: usize,
    /// How often [`Handler::tick`] runs.
    pub tick: Duration,
    /// The media relay, when configured: the shards then wait in an io_uring
    /// ([`crate::media`]) that carries media, the SIP sockets and the control port together.
    pub media: Option<MediaSetup>,
}

/// Media relay settings for the runtime.
#[derive(Clone, Debug)]
pub struct MediaSetup {
    /// The address media ports bind.
    pub addr: IpAddr,
    /// Each shard's port range, in shard order (disjoint).
    pub shard_ports: Vec<RangeInclusive<u16>>,
    /// The ng control port (UDP, bound by every shard with `SO_REUSEPORT`).
    pub control: Option<SocketAddr>,
    /// How long a wait lingers for more completions once one is there.
    pub min_wait: Duration,
}

/// One received datagram.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// The bytes.
    pub data: &'a [u8],
    /// Sender.
    pub src: SocketAddr,
    /// The listen address it arrived on.
    pub local: SocketAddr,
    /// Index of that listen address.
    pub listen: usize,
    /// When its batch was received.
    pub now: Instant,
}

/// Where a handler queues outgoing datagrams; they go out with the batch's `sendmmsg`.
pub struct Outbox<'a> {
    batches: &'a mut [SendBatch],
    fds: &'a [RawFd],
    stats: &'a ShardStats,
    reserve: usize,
}

impl<'a> Outbox<'a> {
    /// An outbox over send batches, one per listen socket. The runtime builds these; tests and
    /// harnesses that drive a [`Handler`] without sockets build one too and read what was
    /// queued with [`SendBatch::queued`] (a batch only flushes to its fd when it is full).
    pub fn new(batches: &'a mut [SendBatch], fds: &'a [RawFd], stats: &'a ShardStats, reserve: usize) -> Outbox<'a> {
        Outbox { batches, fds, stats, reserve }
    }

    /// Queue a datagram to `dest` from listen socket `listen`, written by `write` into the
    /// buffer it is given (return the length, or `None` to send nothing). Flushes the batch
    /// first when it is full. Returns whether a datagram was queued.
    pub fn send(&mut self, listen: usize, dest: SocketAddr, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let Some(b) = self.batches.get_mut(listen) else { return false };
        if b.room() < self.reserve {
            flush(b, self.fds[listen], self.stats);
        }
        b.push(dest, write)
    }

    /// Number of listen sockets.
    pub fn listeners(&self) -> usize {
        self.batches.len()
    }
}

fn flush(b: &mut SendBatch, fd: RawFd, stats: &ShardStats) {
    if b.is_empty() {
        return;
    }
    let f = b.flush(fd, |dest, e| debug!(%dest, error = %e, "send refused"));
    stats.tx_datagrams.add(f.sent as u64);
    stats.tx_errors.add(f.failed as u64);
    stats.tx_calls.add(f.calls as u64);
}

/// The per-shard protocol logic. Created on the shard's own thread; never shared.
pub trait Handler {
    /// A batch is about to be processed (load the current config snapshot here).
    fn batch_start(&mut self) {}
    /// Handle one datagram.
    fn datagram(&mut self, d: &Datagram<'_>, out: &mut Outbox<'_>);
    /// Run timers (health probes, expiries).
    fn tick(&mut self, now: Instant, out: &mut Outbox<'_>);
    /// A media packet arrived on local port `port` from `src`: where to send it (from which
    /// local media port, to which address), or `None` to drop it. Per packet: no allocation.
    fn media_packet(&mut self, _port: u16, _src: SocketAddr, _data: &[u8], _now: Instant) -> Option<(u16, SocketAddr)> {
        None
    }
    /// Media ports of this shard's range that have no socket (another program held them at
    /// start): never hand them out.
    fn media_ports_unavailable(&mut self, _ports: &[u16]) {}
    /// A datagram on the media control port (rtpengine's ng protocol): write the reply into
    /// `reply` and return its length (0: no reply).
    fn media_control(&mut self, _data: &[u8], _src: SocketAddr, _now: Instant, _reply: &mut [u8]) -> usize {
        0
    }
}

/// What a shard is told about itself.
#[derive(Clone, Debug)]
pub struct ShardInfo {
    /// Its placement.
    pub place: ShardPlace,
    /// How many shards run.
    pub shards: usize,
    /// The listen addresses, in order (actual addresses, port 0 resolved).
    pub listen: Vec<SocketAddr>,
    /// This shard's media ports (its port pool), when the relay is configured.
    pub media_ports: Option<RangeInclusive<u16>>,
    /// The media address.
    pub media_addr: Option<IpAddr>,
}

/// Builds one [`Handler`] per shard.
pub trait HandlerFactory: Send + Sync + 'static {
    /// The handler type.
    type Handler: Handler + 'static;
    /// Build the handler of a shard, on that shard's thread.
    fn make(&self, shard: &ShardInfo, stats: Arc<ShardStats>) -> Self::Handler;
}

/// Socket setup a shard reports once it is ready.
#[derive(Clone, Debug)]
pub struct ShardReady {
    /// Shard index.
    pub shard: usize,
    /// Per listen address: the bound address and its buffer sizes.
    pub sockets: Vec<(SocketAddr, BufferSizes)>,
}

/// Running shards.
pub struct Running {
    /// IO counters of every shard, in shard order.
    pub stats: Vec<Arc<ShardStats>>,
    /// What each shard bound.
    pub ready: Vec<ShardReady>,
    stop: Arc<AtomicBool>,
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
}

impl Running {
    /// Ask every shard to stop (returns at once).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Wait for every shard to finish.
    pub fn join(self) -> Result<(), String> {
        let mut err = None;
        for h in self.handles {
            if let Err(e) = h.join() {
                err.get_or_insert_with(|| format!("a shard failed: {e}"));
            }
        }
        err.map_or(Ok(()), Err)
    }
}

/// Start one shard per placement entry and wait until every shard has bound its sockets.
/// Fails (after stopping the shards that did start) when any shard cannot bind.
pub fn start<F: HandlerFactory>(cfg: RuntimeConfig, factory: Arc<F>, stop: Arc<AtomicBool>) -> Result<Running, String> {
    let shards = cfg.placement.shards.len();
    let (tx, rx) = mpsc::channel::<Result<ShardReady, String>>();
    let mut handles = Vec::with_capacity(shards);
    let mut stats = Vec::with_capacity(shards);
    let cfg = Arc::new(cfg);
    for place in cfg.placement.shards.clone() {
        let st = Arc::new(ShardStats {
            shard: place.shard,
            media: Arc::new(MediaStats { shard: place.shard, ..MediaStats::default() }),
            media_on: cfg.media.is_some(),
            ..ShardStats::default()
        });
        stats.push(st.clone());
        let (cfg, factory, stop, tx) = (cfg.clone(), factory.clone(), stop.clone(), tx.clone());
        let builder = LocalExecutorBuilder::new(GPlacement::Fixed(place.cpu))
            .name(&format!("ringsip-shard-{}", place.shard))
            // the SIP path does its own batched IO, so glommio's rings stay small
            .io_memory(1 << 20)
            .ring_depth(128);
        let h = builder
            .spawn(move || async move {
                if let Err(e) = shard_main(place, shards, cfg, factory, st, stop.clone(), &tx).await {
                    stop.store(true, Ordering::Release);
                    let _ = tx.send(Err(format!("shard {}: {e}", place.shard)));
                }
            })
            .map_err(|e| format!("cannot start shard {} on CPU {}: {e}", place.shard, place.cpu))?;
        handles.push(h);
    }
    drop(tx);
    let mut ready = Vec::with_capacity(shards);
    let mut failure = None;
    for _ in 0..shards {
        match rx.recv() {
            Ok(Ok(r)) => ready.push(r),
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(_) => {
                failure = Some("a shard exited before it was ready".to_string());
                break;
            }
        }
    }
    let running = Running { stats, ready, stop: stop.clone(), handles };
    if let Some(e) = failure {
        running.stop();
        let _ = running.join();
        return Err(e);
    }
    let mut running = running;
    running.ready.sort_by_key(|r| r.shard);
    Ok(running)
}

async fn shard_main<F: HandlerFactory>(
    place: ShardPlace,
    shards: usize,
    cfg: Arc<RuntimeConfig>,
    factory: Arc<F>,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
    ready: &mpsc::Sender<Result<ShardReady, String>>,
) -> io::Result<()> {
    let mut sockets: Vec<OwnedFd> = Vec::with_capacity(cfg.listen.len());
    let mut bound = Vec::with_capacity(cfg.listen.len());
    for addr in &cfg.listen {
        let (fd, sizes) = udp::bind_reuseport(*addr, cfg.rcvbuf, cfg.sndbuf)
            .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
        bound.push((udp::local_addr(&fd)?, sizes));
        sockets.push(fd);
    }
    // one socket: block in recvmmsg itself; several: poll, then drain without blocking (with
    // media, the io_uring wait covers every socket)
    let single = sockets.len() == 1 && cfg.media.is_none();
    if single {
        udp::set_recv_timeout(sockets[0].as_raw_fd(), cfg.tick)?;
    }
    let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let media_ports = cfg.media.as_ref().and_then(|m| m.shard_ports.get(place.shard).cloned());
    let info = ShardInfo {
        place,
        shards,
        listen: bound.iter().map(|(a, _)| *a).collect(),
        media_ports: media_ports.clone(),
        media_addr: cfg.media.as_ref().map(|m| m.addr),
    };
    let mut handler = factory.make(&info, stats.clone());
    let reserve = cfg.max_datagram + 4096;
    let arena = (cfg.batch * 2048).max(4 * reserve);
    let mut batches: Vec<SendBatch> = (0..fds.len()).map(|_| SendBatch::new(cfg.batch, arena)).collect();
    let mut recvs: Vec<RecvBatch> = (0..fds.len()).map(|_| RecvBatch::new(cfg.batch, cfg.max_datagram)).collect();
    let mut readable = vec![false; fds.len()];

    if let Some(media) = &cfg.media {
        let ports = media_ports.ok_or_else(|| io::Error::other("no media port range for this shard"))?;
        return media_loop(
            MediaLoop { cfg: &cfg, media, ports, place, bound: &bound, fds: &fds, reserve },
            &mut handler,
            &mut batches,
            &mut recvs,
            &stats,
            &stop,
            ready,
        )
        .await;
    }
    let _ = ready.send(Ok(ShardReady { shard: place.shard, sockets: bound.clone() }));
    info!(shard = place.shard, cpu = place.cpu, node = place.node, "shard running");

    let mut next_tick = Instant::now() + cfg.tick;
    while !stop.load(Ordering::Acquire) {
        if single {
            match recvs[0].recv_wait(fds[0]) {
                Ok(n) => {
                    if n > 0 {
                        process(0, n, &recvs[0], &bound, &mut handler, &mut batches, &fds, &stats, reserve);
                    }
                }
                Err(e) => receive_error(&stats, bound[0].0, &e),
            }
        } else {
            match udp::wait_readable(&fds, &mut readable, cfg.tick) {
                Ok(0) => {}
                Ok(_) => {
                    for i in 0..fds.len() {
                        if !readable[i] {
                            continue;
                        }
                        // drain this socket, a batch at a time
                        loop {
                            match recvs[i].recv(fds[i]) {
                                Ok(0) => break,
                                Ok(n) => {
                                    process(i, n, &recvs[i], &bound, &mut handler, &mut batches, &fds, &stats, reserve);
                                    if n < recvs[i].capacity() {
                                        break;
                                    }
                                }
                                Err(e) => {
                                    receive_error(&stats, bound[i].0, &e);
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => receive_error(&stats, bound[0].0, &e),
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            let mut out = Outbox { batches: &mut batches, fds: &fds, stats: &stats, reserve };
            handler.tick(now, &mut out);
            for (b, fd) in batches.iter_mut().zip(fds.iter()) {
                flush(b, *fd, &stats);
            }
            next_tick = now + cfg.tick;
        }
        // let other tasks of this shard's executor run when it asks for the CPU
        glommio::yield_if_needed().await;
    }
    info!(shard = place.shard, "shard stopped");
    Ok(())
}

/// What the media loop works with besides the handler and the SIP batches.
struct MediaLoop<'a> {
    cfg: &'a RuntimeConfig,
    media: &'a MediaSetup,
    ports: RangeInclusive<u16>,
    place: ShardPlace,
    bound: &'a [(SocketAddr, BufferSizes)],
    fds: &'a [RawFd],
    reserve: usize,
}

/// The shard loop when it relays media: one io_uring wait for media completions, the SIP
/// sockets' readiness and the control port's; then media forwarding, SIP batches, control
/// requests and timers, in that order.
async fn media_loop<H: Handler>(
    l: MediaLoop<'_>,
    handler: &mut H,
    batches: &mut [SendBatch],
    recvs: &mut [RecvBatch],
    stats: &Arc<ShardStats>,
    stop: &AtomicBool,
    ready: &mpsc::Sender<Result<ShardReady, String>>,
) -> io::Result<()> {
    let control = match l.media.control {
        Some(addr) => Some(
            udp::bind_reuseport(addr, 1 << 20, 1 << 20)
                .map_err(|e| io::Error::new(e.kind(), format!("media control {addr}: {e}")))?
                .0,
        ),
        None => None,
    };
    let mut polled: Vec<RawFd> = l.fds.to_vec();
    if let Some(c) = &control {
        polled.push(c.as_raw_fd());
    }
    let mut io_cfg = MediaIoConfig::new(l.media.addr, l.ports.clone());
    io_cfg.min_wait = l.media.min_wait;
    let mut media = MediaIo::new(&io_cfg, &polled, stats.media.clone())?;
    if !media.unavailable().is_empty() {
        warn!(
            shard = l.place.shard,
            ports = media.unavailable().len(),
            first = media.unavailable()[0],
            "media ports held by another program are left out (reserve the range: sysctl net.ipv4.ip_local_reserved_ports)"
        );
        handler.media_ports_unavailable(media.unavailable());
    }
    let _ = ready.send(Ok(ShardReady { shard: l.place.shard, sockets: l.bound.to_vec() }));
    info!(
        shard = l.place.shard,
        cpu = l.place.cpu,
        node = l.place.node,
        media_ports = %format!("{}-{}", l.ports.start(), l.ports.end()),
        control = ?l.media.control,
        "shard running with the media relay"
    );
    let control_index = l.fds.len();
    let mut control_recv = RecvBatch::new(32, 64 * 1024);
    let mut control_send = SendBatch::new(32, 32 * 64 * 1024);
    let mut reply = vec![0u8; 64 * 1024];
    let mut next_tick = Instant::now() + l.cfg.tick;
    while !stop.load(Ordering::Acquire) {
        let timeout = next_tick.saturating_duration_since(Instant::now());
        if let Err(e) = media.wait(timeout) {
            stats.media.rx_errors.inc();
            warn!(error = %e, "media wait failed");
        }
        let now = Instant::now();
        let done = media.complete(|port, src, data| handler.media_packet(port, src, data, now));
        for (i, recv) in recvs.iter_mut().enumerate() {
            if done.ready & (1 << i) == 0 {
                continue;
            }
            loop {
                match recv.recv(l.fds[i]) {
                    Ok(0) => break,
                    Ok(n) => {
                        process(i, n, recv, l.bound, handler, batches, l.fds, stats, l.reserve);
                        if n < recv.capacity() {
                            break;
                        }
                    }
                    Err(e) => {
                        receive_error(stats, l.bound[i].0, &e);
                        break;
                    }
                }
            }
        }
        if let Some(c) = &control
            && done.ready & (1 << control_index) != 0
        {
            let fd = c.as_raw_fd();
            loop {
                let n = match control_recv.recv(fd) {
                    Ok(n) => n,
                    Err(e) => {
                        warn!(error = %e, "media control receive failed");
                        break;
                    }
                };
                for k in 0..n {
                    let Some(r) = control_recv.get(k) else { continue };
                    if r.truncated {
                        debug!(src = %r.src, "oversize control datagram dropped");
                        continue;
                    }
                    let len = handler.media_control(r.data, r.src, Instant::now(), &mut reply);
                    if len > 0 {
                        let reply = &reply[..len];
                        control_send.push(r.src, |b| {
                            let room = b.get_mut(..reply.len())?;
                            room.copy_from_slice(reply);
                            Some(reply.len())
                        });
                    }
                }
                control_send.flush(fd, |dest, e| debug!(%dest, error = %e, "control reply refused"));
                if n < control_recv.capacity() {
                    break;
                }
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            let mut out = Outbox { batches: &mut *batches, fds: l.fds, stats, reserve: l.reserve };
            handler.tick(now, &mut out);
            for (b, fd) in batches.iter_mut().zip(l.fds.iter()) {
                flush(b, *fd, stats);
            }
            next_tick = now + l.cfg.tick;
        }
        glommio::yield_if_needed().await;
    }
    info!(shard = l.place.shard, "shard stopped");
    Ok(())
}

fn receive_error(stats: &ShardStats, local: SocketAddr, e: &io::Error) {
    stats.rx_errors.inc();
    warn!(%local, error = %e, "receive failed");
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn process<H: Handler>(
    listen: usize,
    n: usize,
    recv: &RecvBatch,
    bound: &[(SocketAddr, BufferSizes)],
    handler: &mut H,
    batches: &mut [SendBatch],
    fds: &[RawFd],
    stats: &ShardStats,
    reserve: usize,
) {
    stats.rx_batches.inc();
    stats.rx_datagrams.add(n as u64);
    let now = Instant::now();
    let local = bound[listen].0;
    handler.batch_start();
    let mut out = Outbox { batches, fds, stats, reserve };
    for i in 0..n {
        let Some(r) = recv.get(i) else { continue };
        if r.truncated {
            stats.rx_truncated.inc();
            debug!(src = %r.src, "datagram larger than the receive slot dropped");
            continue;
        }
        handler.datagram(&Datagram { data: r.data, src: r.src, local, listen, now }, &mut out);
    }
    for (b, fd) in batches.iter_mut().zip(fds.iter()) {
        flush(b, *fd, stats);
    }
}
