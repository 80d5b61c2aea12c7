//! Media IO: one io_uring per shard that receives RTP/RTCP on every port of the shard's range
//! and sends what the relay decides, batched across flows.
//!
//! Why its own ring and not glommio's: glommio's UDP socket moves one datagram per call and
//! hides readiness, and a relay's work is thousands of sockets with one packet each per
//! 20 ms. Here every media socket has one *multishot* `RECVMSG` armed for its lifetime that
//! takes its buffers from a *provided buffer ring* (no buffer waits on an idle socket), the
//! ring runs with `DEFER_TASKRUN` (completions are produced when the shard asks, in one go),
//! and each loop iteration is one `io_uring_enter` that both submits the sends of the last
//! batch (one `SEND` entry per packet, to any socket) and waits for the next completions.
//! Per packet that is no system call at all; a relay that owns one socket per port and uses
//! `epoll` + `recvmmsg`/`sendmmsg` pays two per packet at 50 packets/s per stream, because
//! each socket only ever has one packet queued (docs/media.md has the figures).
//!
//! The shard's other sockets (SIP listeners, the ng control port) join the same wait as
//! multishot `POLL_ADD` entries and are drained with `recvmmsg` by the shard loop as before.
//!
//! Ports: every port of the shard's range is bound when the shard starts and stays bound
//! (registered as fixed files, index = port − first port). Call setup then needs no system
//! call, a port's socket cannot be taken by another program between calls, and packets to a
//! port without a session are seen and counted (rather than answered with ICMP by the kernel).
//! Allocation of ports to calls is the handler's business (its port pool).
//!
//! Memory is allocated once: the buffer ring, the receive buffers, the send slots. A packet
//! is copied once, from its receive buffer into a send slot (≤ 1.5 KB; it lets the receive
//! buffer go straight back to the kernel); the send slot is free again at its completion.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use socket2::{Domain, Protocol, Socket, Type};

use crate::counters::MediaStats;
use crate::udp::{from_sockaddr, to_sockaddr, zeroed_storage};

/// Media IO settings of a shard.
#[derive(Clone, Debug)]
pub struct MediaIoConfig {
    /// The address the media sockets bind.
    pub addr: IpAddr,
    /// This shard's ports (each bound once, for the shard's lifetime).
    pub ports: RangeInclusive<u16>,
    /// Provided receive buffers (a power of two, at most 32768).
    pub buffers: u16,
    /// Bytes per receive buffer, headers included (the largest packet is this minus 44).
    pub buffer_size: usize,
    /// Sends in flight at most (each holds a copy of its packet until it completes). One
    /// round of [`MediaIo::complete`] receives at most `buffers` packets; with fewer slots
    /// than that a large round drops packets (counted as `send_full`).
    pub send_slots: usize,
    /// Receive buffer of each media socket (bytes requested).
    pub rcvbuf: usize,
    /// How long a wait may linger for more completions once one is there (0: return at once).
    /// Trades latency for larger batches.
    pub min_wait: Duration,
}

impl MediaIoConfig {
    /// Defaults for `ports` on `addr`.
    pub fn new(addr: IpAddr, ports: RangeInclusive<u16>) -> MediaIoConfig {
        MediaIoConfig {
            addr,
            ports,
            buffers: 4096,
            buffer_size: 2048,
            // a round receives at most `buffers` packets: twice that leaves room for sends
            // still in flight from the round before
            send_slots: 8192,
            rcvbuf: 256 * 1024,
            min_wait: Duration::ZERO,
        }
    }
}

/// What to do with a received media packet: send it from local port `from_port` to `to`.
pub type Forward = Option<(u16, SocketAddr)>;

const KIND_SHIFT: u32 = 56;
const KIND_RECV: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_POLL: u64 = 3;
/// Room for the sender's address in each receive buffer (a `sockaddr_in6`).
const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_in6>();
/// The header the kernel writes before the name and the payload of a multishot receive.
const RECVMSG_OUT: usize = 16;
const BUFFER_GROUP: u16 = 0;
/// Completions a wait with a minimum wait asks for.
const BATCH_WANT: usize = 64;

fn tag(kind: u64, index: usize) -> u64 {
    (kind << KIND_SHIFT) | index as u64
}

/// The provided buffer ring: `entries` descriptors the kernel takes receive buffers from.
struct BufRing {
    base: *mut u8,
    layout: std::alloc::Layout,
    entries: u16,
    tail: u16,
}

impl BufRing {
    fn new(entries: u16) -> io::Result<BufRing> {
        let layout = std::alloc::Layout::from_size_align(usize::from(entries) * 16, 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries ≥ 1 is checked by the caller).
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        if base.is_null() {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer ring"));
        }
        Ok(BufRing { base, layout, entries, tail: 0 })
    }

    /// Queue buffer `bid` (at `addr`, `len` bytes) for the kernel; visible after `publish`.
    fn push(&mut self, bid: u16, addr: *mut u8, len: u32) {
        let slot = usize::from(self.tail & (self.entries - 1));
        // a `struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv; }` without its
        // `resv`: descriptor 0's `resv` is the ring's tail, which this write leaves alone
        let mut d = [0u8; 14];
        d[..8].copy_from_slice(&(addr as u64).to_ne_bytes());
        d[8..12].copy_from_slice(&len.to_ne_bytes());
        d[12..].copy_from_slice(&bid.to_ne_bytes());
        let at = self.base.wrapping_add(slot * 16).cast::<[u8; 14]>();
        // SAFETY: `slot < entries`, so the 14 bytes lie inside the allocation; the kernel only
        // reads descriptors at or past the head, which never passes the published tail.
        unsafe { std::ptr::write_unaligned(at, d) };
        self.tail = self.tail.wrapping_add(1);
    }

    /// Make the pushed buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: offset 14 is descriptor 0's `resv`, the shared tail, 2-byte aligned inside
        // the page-aligned allocation; the kernel reads it concurrently, hence an atomic
        // release store (orders the descriptor writes before it).
        let at = self.base.wrapping_add(14).cast::<AtomicU16>();
        // SAFETY: see above.
        let tail = unsafe { &*at };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring that used it is gone (the
        // owner drops the io_uring first).
        unsafe { std::alloc::dealloc(self.base, self.layout) };
    }
}

/// Counts of one [`MediaIo::complete`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completed {
    /// Packets received.
    pub received: usize,
    /// Packets queued for sending.
    pub forwarded: usize,
    /// Ready polled sockets (bit `i` = socket `i` of [`MediaIo::new`]'s `polled`).
    pub ready: u64,
}

/// A shard's media sockets and their ring.
pub struct MediaIo {
    // field order = drop order: the ring goes before the memory it points into
    ring: IoUring,
    bufring: BufRing,
    bufs: Box<[u8]>,
    buffer_size: usize,
    /// Template for the multishot receives (only its name and control lengths are read).
    msghdr: Box<libc::msghdr>,
    socks: Vec<Option<OwnedFd>>,
    unavailable: Vec<u16>,
    first: u16,
    polled: Vec<RawFd>,
    send_bufs: Box<[u8]>,
    send_addrs: Box<[libc::sockaddr_storage]>,
    send_free: Vec<u32>,
    rearm: Vec<u32>,
    rearm_polls: u64,
    min_wait: Duration,
    stats: std::sync::Arc<MediaStats>,
    local: Vec<SocketAddr>,
}

/// Send slots are the size of a receive buffer's payload room.
fn slot_size(buffer_size: usize) -> usize {
    buffer_size - RECVMSG_OUT - NAME_LEN
}

impl MediaIo {
    /// Bind every port of `cfg.ports` on `cfg.addr`, set up the ring, arm a receive on each
    /// port and a readiness poll on each of `polled` (at most 64; the shard drains those).
    pub fn new(cfg: &MediaIoConfig, polled: &[RawFd], stats: std::sync::Arc<MediaStats>) -> io::Result<MediaIo> {
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
        if !cfg.buffers.is_power_of_two() || cfg.buffers > 32768 {
            return Err(invalid("media buffers must be a power of two ≤ 32768"));
        }
        if cfg.buffer_size < 256 || cfg.buffer_size > 65536 {
            return Err(invalid("media buffer size must be 256..=65536 bytes"));
        }
        if polled.len() > 64 {
            return Err(invalid("at most 64 polled sockets"));
        }
        if cfg.ports.is_empty() {
            return Err(invalid("no media ports"));
        }
        let mut socks = Vec::with_capacity(cfg.ports.len());
        let mut local = Vec::with_capacity(cfg.ports.len());
        let mut unavailable = Vec::new();
        for port in cfg.ports.clone() {
            let addr = SocketAddr::new(cfg.addr, port);
            match bind_media(addr, cfg.rcvbuf) {
                Ok(s) => socks.push(Some(s)),
                // another program holds it (often an ephemeral port of an outgoing
                // connection: reserve the range with net.ipv4.ip_local_reserved_ports)
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    socks.push(None);
                    unavailable.push(port);
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("media port {addr}: {e}"))),
            }
            local.push(addr);
        }
        if unavailable.len() == socks.len() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("every media port of {}-{} is in use", cfg.ports.start(), cfg.ports.end()),
            ));
        }
        let sq = 4096u32;
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(sq * 8)
            .build(sq)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring setup: {e}")))?;
        // a port another program holds is a sparse entry (-1)
        let fds: Vec<RawFd> = socks.iter().map(|s| s.as_ref().map_or(-1, |s| s.as_raw_fd())).collect();
        ring.submitter()
            .register_files(&fds)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring: registering {} media sockets: {e}", fds.len())))?;
        let mut bufring = BufRing::new(cfg.buffers)?;
        // SAFETY: the ring memory lives in `bufring`, owned by the returned MediaIo, dropped
        // after `ring` (field order), so it outlives the registration.
        unsafe { ring.submitter().register_buf_ring_with_flags(bufring.base as u64, cfg.buffers, BUFFER_GROUP, 0) }
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring: provided buffer ring: {e}")))?;
        let mut bufs = vec![0u8; usize::from(cfg.buffers) * cfg.buffer_size].into_boxed_slice();
        for bid in 0..cfg.buffers {
            let p = bufs[usize::from(bid) * cfg.buffer_size..].as_mut_ptr();
            bufring.push(bid, p, cfg.buffer_size as u32);
        }
        bufring.publish();
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_namelen = NAME_LEN as libc::socklen_t;
        let slots = cfg.send_slots.max(1);
        let slot = slot_size(cfg.buffer_size);
        let mut io = MediaIo {
            ring,
            bufring,
            bufs,
            buffer_size: cfg.buffer_size,
            msghdr,
            first: *cfg.ports.start(),
            polled: polled.to_vec(),
            send_bufs: vec![0u8; slots * slot].into_boxed_slice(),
            send_addrs: vec![zeroed_storage(); slots].into_boxed_slice(),
            send_free: (0..slots as u32).rev().collect(),
            rearm: Vec::with_capacity(socks.len()),
            rearm_polls: 0,
            min_wait: cfg.min_wait,
            stats,
            socks,
            unavailable,
            local,
        };
        for i in 0..io.socks.len() {
            if io.socks[i].is_some() {
                io.arm_recv(i as u32)?;
            }
        }
        for i in 0..io.polled.len() {
            io.arm_poll(i)?;
        }
        io.ring.submit()?;
        Ok(io)
    }

    /// The media addresses, in port order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Ports of the range another program held at start: they have no socket, and the
    /// handler must not hand them out.
    pub fn unavailable(&self) -> &[u16] {
        &self.unavailable
    }

    fn push_sqe(&mut self, e: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed points only into memory owned by `self` that lives
            // as long as the ring (buffers, send slots, the msghdr template), or carries no
            // pointer at all.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return Ok(());
            }
            // the submission queue is full: hand it to the kernel and retry
            self.ring.submit()?;
        }
    }

    fn arm_recv(&mut self, i: u32) -> io::Result<()> {
        let e = opcode::RecvMsgMulti::new(types::Fixed(i), &*self.msghdr, BUFFER_GROUP)
            .build()
            .user_data(tag(KIND_RECV, i as usize));
        self.push_sqe(&e)
    }

    fn arm_poll(&mut self, i: usize) -> io::Result<()> {
        let e = opcode::PollAdd::new(types::Fd(self.polled[i]), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(tag(KIND_POLL, i));
        self.push_sqe(&e)
    }

    /// Submit what is queued and wait until at least one completion is there or `timeout`
    /// passes (then linger up to the configured `min_wait` for more).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        // re-arm what ended in the last round (buffers are back by now)
        while let Some(i) = self.rearm.pop() {
            self.arm_recv(i)?;
        }
        let polls = std::mem::take(&mut self.rearm_polls);
        for i in 0..self.polled.len() {
            if polls & (1 << i) != 0 {
                self.arm_poll(i)?;
            }
        }
        self.stats.waits.inc();
        let ts = types::Timespec::from(timeout);
        let mut args = types::SubmitArgs::new().timespec(&ts);
        if !self.min_wait.is_zero() {
            args = args.min_wait_usec(self.min_wait.as_micros().min(u128::from(u32::MAX)) as u32);
        }
        // with a minimum wait, ask for a batch: the kernel waits up to `min_wait` for it, then
        // returns with whatever has arrived (at least one), or waits on for the first
        let want = if self.min_wait.is_zero() { 1 } else { BATCH_WANT };
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Take every completion: each received packet goes to `on_packet(port, source, bytes)`,
    /// and what it returns is queued for sending (it leaves with the next [`MediaIo::wait`]).
    /// Returns the counts and which polled sockets are readable.
    pub fn complete(&mut self, mut on_packet: impl FnMut(u16, SocketAddr, &[u8]) -> Forward) -> Completed {
        let mut done = Completed::default();
        let mut returned = false;
        loop {
            // take a bounded run of completions, then act on them (sends need `&mut self`)
            let mut cqes = [(0u64, 0i32, 0u32); 64];
            let mut n = 0;
            {
                let mut cq = self.ring.completion();
                for c in &mut cq {
                    cqes[n] = (c.user_data(), c.result(), c.flags());
                    n += 1;
                    if n == cqes.len() {
                        break;
                    }
                }
                cq.sync();
            }
            if n == 0 {
                break;
            }
            for &(ud, res, flags) in &cqes[..n] {
                let index = (ud & ((1 << KIND_SHIFT) - 1)) as usize;
                match ud >> KIND_SHIFT {
                    KIND_RECV => {
                        if !cqueue::more(flags) {
                            self.rearm.push(index as u32);
                        }
                        let Some(bid) = cqueue::buffer_select(flags) else {
                            // no buffer: an error (ENOBUFS when the ring ran dry)
                            if res == -libc::ENOBUFS {
                                self.stats.no_buffers.inc();
                            } else if res < 0 {
                                self.stats.rx_errors.inc();
                            }
                            continue;
                        };
                        returned = true;
                        if res >= 0 {
                            done.received += 1;
                            if self.packet(index, bid, res as usize, &mut on_packet) {
                                done.forwarded += 1;
                            }
                        }
                        let p = self.bufs[usize::from(bid) * self.buffer_size..].as_mut_ptr();
                        self.bufring.push(bid, p, self.buffer_size as u32);
                    }
                    KIND_SEND => {
                        self.send_free.push(index as u32);
                        if res < 0 {
                            self.stats.tx_errors.inc();
                        }
                    }
                    KIND_POLL if index < 64 => {
                        done.ready |= 1 << index;
                        if !cqueue::more(flags) {
                            self.rearm_polls |= 1 << index;
                        }
                    }
                    _ => {}
                }
            }
            if n < cqes.len() {
                break;
            }
        }
        if returned {
            self.bufring.publish();
        }
        self.stats.rx_packets.add(done.received as u64);
        self.stats.tx_packets.add(done.forwarded as u64);
        done
    }

    /// One received packet in buffer `bid`: ask, and queue the send. True when queued.
    fn packet(
        &mut self,
        index: usize,
        bid: u16,
        len: usize,
        on_packet: &mut impl FnMut(u16, SocketAddr, &[u8]) -> Forward,
    ) -> bool {
        let start = usize::from(bid) * self.buffer_size;
        let buf = &self.bufs[start..start + len.min(self.buffer_size)];
        let Ok(out) = types::RecvMsgOut::parse(buf, &self.msghdr) else {
            self.stats.truncated.inc();
            return false;
        };
        if out.is_payload_truncated() || out.is_name_data_truncated() {
            self.stats.truncated.inc();
            return false;
        }
        let mut ss = zeroed_storage();
        let name = out.name_data();
        // SAFETY: `name` is at most NAME_LEN bytes and sockaddr_storage is larger; the bytes
        // are a sockaddr the kernel wrote; copying them is a plain byte copy.
        unsafe {
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                (&mut ss as *mut libc::sockaddr_storage).cast::<u8>(),
                name.len().min(NAME_LEN),
            )
        };
        let Some(src) = from_sockaddr(&ss) else {
            self.stats.rx_errors.inc();
            return false;
        };
        let port = self.first.wrapping_add(index as u16);
        let payload = out.payload_data();
        let Some((from_port, to)) = on_packet(port, src, payload) else { return false };
        let Some(from) = from_port
            .checked_sub(self.first)
            .map(usize::from)
            .filter(|&i| self.socks.get(i).is_some_and(Option::is_some))
        else {
            self.stats.tx_errors.inc();
            return false;
        };
        let Some(slot) = self.send_free.pop() else {
            self.stats.send_full.inc();
            return false;
        };
        let size = slot_size(self.buffer_size);
        let s = slot as usize;
        let n = payload.len();
        self.send_bufs[s * size..s * size + n].copy_from_slice(payload);
        let alen = to_sockaddr(&to, &mut self.send_addrs[s]);
        let e = opcode::Send::new(types::Fixed(from as u32), self.send_bufs[s * size..].as_ptr(), n as u32)
            .dest_addr((&self.send_addrs[s] as *const libc::sockaddr_storage).cast())
            .dest_addr_len(alen)
            .build()
            .user_data(tag(KIND_SEND, s));
        if self.push_sqe(&e).is_err() {
            self.send_free.push(slot);
            self.stats.tx_errors.inc();
            return false;
        }
        true
    }

    /// Sends queued and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.send_bufs.len() / slot_size(self.buffer_size) - self.send_free.len()
    }
}

/// Raise the soft limit of open files to at least `want` (up to the hard limit): every media
/// port is a socket. Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if r.rlim_cur >= want {
        return Ok(r.rlim_cur);
    }
    let new = libc::rlimit { rlim_cur: want.min(r.rlim_max), rlim_max: r.rlim_max };
    // SAFETY: `new` is a valid rlimit, only read.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(new.rlim_cur)
}

fn bind_media(addr: SocketAddr, rcvbuf: usize) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::DGRAM.nonblocking().cloexec(), Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_recv_buffer_size(rcvbuf)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::time::Instant;

    fn free_range(n: u16) -> RangeInclusive<u16> {
        // n consecutive free ports (loopback only); tests run in parallel, so each call starts
        // its search somewhere else
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let offset = (std::process::id() % 97) as u16 * 64 + NEXT.fetch_add(1, Ordering::Relaxed) * 16;
        'outer: for base in ((42000u16 + offset)..60000).step_by(usize::from(n) + 7) {
            let mut held = Vec::new();
            for p in base..base + n {
                match UdpSocket::bind(("127.0.0.1", p)) {
                    Ok(s) => held.push(s),
                    Err(_) => continue 'outer,
                }
            }
            return base..=base + n - 1;
        }
        panic!("no free port range");
    }

    fn io(ports: RangeInclusive<u16>, polled: &[RawFd]) -> MediaIo {
        let mut cfg = MediaIoConfig::new("127.0.0.1".parse().unwrap(), ports);
        cfg.buffers = 64;
        cfg.send_slots = 128;
        MediaIo::new(&cfg, polled, Arc::new(MediaStats::default())).unwrap()
    }

    /// Run the loop until `want` packets were received or 2 s passed.
    fn pump(m: &mut MediaIo, want: usize, mut f: impl FnMut(u16, SocketAddr, &[u8]) -> Forward) -> Completed {
        let mut total = Completed::default();
        let end = Instant::now() + Duration::from_secs(2);
        while total.received < want && Instant::now() < end {
            m.wait(Duration::from_millis(50)).unwrap();
            let c = m.complete(&mut f);
            total.received += c.received;
            total.forwarded += c.forwarded;
            total.ready |= c.ready;
        }
        total
    }

    #[test]
    fn packets_are_received_on_every_port_and_forwarded_from_the_chosen_port() {
        let ports = free_range(4);
        let first = *ports.start();
        let mut m = io(ports, &[]);
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // a → port first: relay to b from port first+2; each of 100 packets, distinct bytes
        for i in 0..100u8 {
            a.send_to(&[i; 172], ("127.0.0.1", first)).unwrap();
        }
        let a_addr = a.local_addr().unwrap();
        let b_addr = b.local_addr().unwrap();
        let c = pump(&mut m, 100, |port, src, data| {
            assert_eq!((port, src, data.len()), (first, a_addr, 172));
            Some((first + 2, b_addr))
        });
        assert_eq!((c.received, c.forwarded), (100, 100));
        // the sends leave with the next wait
        m.wait(Duration::from_millis(1)).unwrap();
        let mut buf = [0u8; 2048];
        for i in 0..100u8 {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(from, SocketAddr::from(([127, 0, 0, 1], first + 2)));
            assert_eq!(&buf[..n], &[i; 172][..], "order and bytes kept");
        }
        // send completions free the slots
        let end = Instant::now() + Duration::from_secs(2);
        while m.in_flight() > 0 && Instant::now() < end {
            m.wait(Duration::from_millis(10)).unwrap();
            m.complete(|_, _, _| None);
        }
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn more_packets_than_buffers_and_send_slots_are_survived_and_counted() {
        let ports = free_range(2);
        let first = *ports.start();
        let stats = Arc::new(MediaStats::default());
        let mut cfg = MediaIoConfig::new("127.0.0.1".parse().unwrap(), ports);
        cfg.buffers = 8;
        cfg.send_slots = 4;
        let mut m = MediaIo::new(&cfg, &[], stats.clone()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink_addr = sink.local_addr().unwrap();
        // 200 packets queue in the socket while nobody completes: the 8 buffers run dry
        for i in 0..200u16 {
            a.send_to(&i.to_be_bytes(), ("127.0.0.1", first + 1)).unwrap();
        }
        let mut got = 0usize;
        let end = Instant::now() + Duration::from_secs(3);
        while got < 200 && Instant::now() < end {
            m.wait(Duration::from_millis(20)).unwrap();
            got += m.complete(|_, _, _| Some((first, sink_addr))).received;
        }
        assert_eq!(got, 200, "every packet received in the end (the receive re-armed after ENOBUFS)");
        assert!(stats.no_buffers.get() > 0, "the dry buffer ring was seen");
        assert!(stats.send_full.get() > 0, "4 send slots cannot take a batch of 8");
        // the last sends leave with the next wait
        m.wait(Duration::from_millis(1)).unwrap();
        let delivered = {
            sink.set_nonblocking(true).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut n = 0;
            let mut b = [0u8; 64];
            while sink.recv(&mut b).is_ok() {
                n += 1;
            }
            n
        };
        assert_eq!(delivered as u64, stats.tx_packets.get());
        assert_eq!(stats.tx_packets.get() + stats.send_full.get(), 200);
    }

    #[test]
    fn polled_sockets_report_readiness_and_oversize_packets_are_dropped() {
        let ports = free_range(2);
        let first = *ports.start();
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_nonblocking(true).unwrap();
        let stats = Arc::new(MediaStats::default());
        let mut cfg = MediaIoConfig::new("127.0.0.1".parse().unwrap(), ports);
        cfg.buffers = 16;
        cfg.buffer_size = 256;
        let mut m = MediaIo::new(&cfg, &[sip.as_raw_fd()], stats.clone()).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"OPTIONS", sip.local_addr().unwrap()).unwrap();
        c.send_to(&[0u8; 1000], ("127.0.0.1", first)).unwrap();
        c.send_to(&[1u8; 100], ("127.0.0.1", first)).unwrap();
        let mut ready = 0;
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(2);
        while (ready == 0 || seen.is_empty()) && Instant::now() < end {
            m.wait(Duration::from_millis(20)).unwrap();
            ready |= m
                .complete(|_, _, d| {
                    seen.push(d.len());
                    None
                })
                .ready;
        }
        assert_eq!(ready, 1, "the polled socket is readable");
        assert_eq!(seen, vec![100], "the 1000-byte packet did not fit a 256-byte buffer");
        assert_eq!(stats.truncated.get(), 1);
        // drained: the poll fires again on the next datagram
        let mut b = [0u8; 64];
        while sip.recv(&mut b).is_ok() {}
        c.send_to(b"OPTIONS", sip.local_addr().unwrap()).unwrap();
        let mut again = 0;
        let end = Instant::now() + Duration::from_secs(2);
        while again == 0 && Instant::now() < end {
            m.wait(Duration::from_millis(20)).unwrap();
            again |= m.complete(|_, _, _| None).ready;
        }
        assert_eq!(again, 1);
    }

    #[test]
    fn ports_another_program_holds_are_left_out_and_reported() {
        let ports = free_range(4);
        let first = *ports.start();
        let held = UdpSocket::bind(("127.0.0.1", first + 1)).unwrap();
        let cfg = MediaIoConfig::new("127.0.0.1".parse().unwrap(), ports.clone());
        let mut m = MediaIo::new(&cfg, &[], Arc::new(MediaStats::default())).unwrap();
        assert_eq!(m.unavailable(), &[first + 1]);
        // the others work
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"x", ("127.0.0.1", first + 2)).unwrap();
        let c = pump(&mut m, 1, |port, _, _| {
            assert_eq!(port, first + 2);
            Some((first + 1, a.local_addr().unwrap()))
        });
        assert_eq!((c.received, c.forwarded), (1, 0), "nothing is sent from a port ringsip does not hold");
        // all of them taken: a clear error
        let one = free_range(1);
        let _held2 = UdpSocket::bind(("127.0.0.1", *one.start())).unwrap();
        let err =
            MediaIo::new(&MediaIoConfig::new("127.0.0.1".parse().unwrap(), one), &[], Arc::new(MediaStats::default()))
                .err()
                .expect("no port at all");
        assert!(err.to_string().contains("in use"), "{err}");
        drop(held);
    }
}
