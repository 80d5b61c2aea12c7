//! UDP sockets for the shards and batched datagram IO (`recvmmsg`/`sendmmsg`).
//!
//! Every shard binds its own socket on each listen address with `SO_REUSEPORT`; the kernel
//! then spreads flows over the shards by a hash of the 4-tuple, so all datagrams of one
//! source reach the same shard in order. Buffers and headers are allocated once per socket;
//! receiving and sending a batch allocates nothing.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// What a socket asked the kernel for and what it got (Linux doubles the value it grants and
/// caps it at `net.core.{r,w}mem_max` unless the process may override).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// Receive buffer requested.
    pub rcv_requested: usize,
    /// Receive buffer granted (`SO_RCVBUF` read back).
    pub rcv_granted: usize,
    /// Send buffer requested.
    pub snd_requested: usize,
    /// Send buffer granted.
    pub snd_granted: usize,
}

/// Bind a non-blocking UDP socket on `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`) and the
/// requested buffer sizes. Tries `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` first (granted to root or
/// `CAP_NET_ADMIN`, ignores `rmem_max`), then the normal options.
pub fn bind_reuseport(addr: SocketAddr, rcvbuf: usize, sndbuf: usize) -> io::Result<(OwnedFd, BufferSizes)> {
    let domain = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::DGRAM.nonblocking().cloexec(), Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if setsockopt_int(s.as_raw_fd(), libc::SO_RCVBUFFORCE, rcvbuf).is_err() {
        s.set_recv_buffer_size(rcvbuf)?;
    }
    if setsockopt_int(s.as_raw_fd(), libc::SO_SNDBUFFORCE, sndbuf).is_err() {
        s.set_send_buffer_size(sndbuf)?;
    }
    s.bind(&addr.into())?;
    let sizes = BufferSizes {
        rcv_requested: rcvbuf,
        rcv_granted: s.recv_buffer_size()?,
        snd_requested: sndbuf,
        snd_granted: s.send_buffer_size()?,
    };
    Ok((s.into(), sizes))
}

fn setsockopt_int(fd: RawFd, opt: libc::c_int, value: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: `v` is a live c_int and its size is passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

pub(crate) fn to_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in;
            // we write one sockaddr_in at its start.
            unsafe { std::ptr::write(out as *mut _ as *mut libc::sockaddr_in, sin) };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write(out as *mut _ as *mut libc::sockaddr_in6, sin6) };
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

pub(crate) fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in written by the kernel.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6 written by the kernel.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

pub(crate) fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data (pointers and integers); all-zero is valid.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

/// One received datagram of a [`RecvBatch`].
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The bytes (at most the slot size).
    pub data: &'a [u8],
    /// Where it came from.
    pub src: SocketAddr,
    /// The datagram was larger than the slot and was cut (count it, don't parse it).
    pub truncated: bool,
}

/// Reusable receive state for `recvmmsg`: `batch` slots of `slot` bytes each.
pub struct RecvBatch {
    slot: usize,
    bufs: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
    hdrs: Box<[libc::mmsghdr]>,
    n: usize,
}

// SAFETY: the raw pointers inside point into the boxes this struct owns; moving the struct to
// another thread moves them along, and nothing else aliases them.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Room for `batch` datagrams of up to `slot` bytes.
    pub fn new(batch: usize, slot: usize) -> RecvBatch {
        let batch = batch.max(1);
        let mut r = RecvBatch {
            slot,
            bufs: vec![0u8; batch * slot].into_boxed_slice(),
            iovs: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; batch].into_boxed_slice(),
            addrs: vec![zeroed_storage(); batch].into_boxed_slice(),
            hdrs: (0..batch).map(|_| zeroed_mmsghdr()).collect::<Vec<_>>().into_boxed_slice(),
            n: 0,
        };
        // the boxes never move their contents, so the pointers set here stay valid
        for i in 0..batch {
            r.iovs[i].iov_base = r.bufs[i * slot..].as_mut_ptr().cast();
            r.iovs[i].iov_len = slot;
        }
        r
    }

    /// Capacity in datagrams.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receive up to a batch without blocking. `Ok(0)` when nothing is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.recv_with(fd, libc::MSG_DONTWAIT)
    }

    /// Wait for at least one datagram (up to the socket's receive timeout, see
    /// [`set_recv_timeout`]), then take whatever else is already queued, up to a batch
    /// (`MSG_WAITFORONE`). `Ok(0)` when the timeout passed. The socket must be blocking.
    pub fn recv_wait(&mut self, fd: RawFd) -> io::Result<usize> {
        self.recv_with(fd, libc::MSG_WAITFORONE)
    }

    fn recv_with(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        let batch = self.hdrs.len();
        for i in 0..batch {
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: `hdrs` holds `batch` initialised mmsghdr whose name and iov pointers point
        // into `addrs`, `iovs` and `bufs`, all owned by `self`, alive and large enough for
        // the lengths given; the kernel writes at most those lengths.
        let r =
            unsafe { libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), batch as libc::c_uint, flags, std::ptr::null_mut()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            self.n = 0;
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.n = r as usize;
        Ok(self.n)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`].
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.n {
            return None;
        }
        let len = (self.hdrs[i].msg_len as usize).min(self.slot);
        let src = from_sockaddr(&self.addrs[i])?;
        let truncated = self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        Some(Received { data: &self.bufs[i * self.slot..i * self.slot + len], src, truncated })
    }
}

/// Reusable send state for `sendmmsg`: an arena the outgoing datagrams are written into.
pub struct SendBatch {
    arena: Box<[u8]>,
    used: usize,
    msgs: Vec<(usize, usize)>,
    addrs: Box<[libc::sockaddr_storage]>,
    addr_lens: Box<[libc::socklen_t]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
}

// SAFETY: as for RecvBatch, the raw pointers only ever point into boxes this struct owns.
unsafe impl Send for SendBatch {}

/// Result of a flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Datagrams the kernel accepted.
    pub sent: usize,
    /// Datagrams refused (the error of the last one is logged by the caller).
    pub failed: usize,
    /// `sendmmsg` calls made.
    pub calls: usize,
}

impl SendBatch {
    /// Room for `batch` datagrams sharing an `arena`-byte buffer.
    pub fn new(batch: usize, arena: usize) -> SendBatch {
        let batch = batch.max(1);
        SendBatch {
            arena: vec![0u8; arena].into_boxed_slice(),
            used: 0,
            msgs: Vec::with_capacity(batch),
            addrs: vec![zeroed_storage(); batch].into_boxed_slice(),
            addr_lens: vec![0; batch].into_boxed_slice(),
            iovs: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; batch].into_boxed_slice(),
            hdrs: (0..batch).map(|_| zeroed_mmsghdr()).collect::<Vec<_>>().into_boxed_slice(),
        }
    }

    /// Queued datagrams.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Nothing queued?
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Free arena bytes for the next datagram.
    pub fn room(&self) -> usize {
        if self.msgs.len() == self.hdrs.len() { 0 } else { self.arena.len() - self.used }
    }

    /// Queue a datagram to `dest`, written by `write` into the free arena space; `write`
    /// returns the length, or `None` to queue nothing. Returns `false` when the batch or the
    /// arena is full (flush and retry) or `write` declined.
    pub fn push(&mut self, dest: SocketAddr, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let i = self.msgs.len();
        if i == self.hdrs.len() {
            return false;
        }
        let free = &mut self.arena[self.used..];
        let Some(n) = write(free) else { return false };
        debug_assert!(n <= free.len());
        let n = n.min(free.len());
        self.addr_lens[i] = to_sockaddr(&dest, &mut self.addrs[i]);
        self.msgs.push((self.used, n));
        self.used += n;
        true
    }

    /// The queued datagrams: destination and bytes.
    pub fn queued(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.msgs
            .iter()
            .enumerate()
            .filter_map(|(i, &(off, len))| from_sockaddr(&self.addrs[i]).map(|a| (a, &self.arena[off..off + len])))
    }

    /// Forget what is queued without sending it.
    pub fn clear(&mut self) {
        self.msgs.clear();
        self.used = 0;
    }

    /// Send everything queued with as few `sendmmsg` calls as the kernel allows, then empty
    /// the batch. A datagram the kernel refuses is counted as failed and skipped; `on_error`
    /// sees each refusal.
    pub fn flush(&mut self, fd: RawFd, mut on_error: impl FnMut(SocketAddr, io::Error)) -> Flushed {
        let n = self.msgs.len();
        let mut out = Flushed::default();
        if n == 0 {
            return out;
        }
        for i in 0..n {
            let (off, len) = self.msgs[i];
            self.iovs[i] = libc::iovec { iov_base: self.arena[off..].as_mut_ptr().cast(), iov_len: len };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = self.addr_lens[i];
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        let mut start = 0;
        while start < n {
            // SAFETY: hdrs[start..n] are initialised mmsghdr pointing into `addrs`, `iovs` and
            // `arena`, owned by `self` and alive for the call; the kernel only reads them.
            let r = unsafe {
                libc::sendmmsg(fd, self.hdrs[start..].as_mut_ptr(), (n - start) as libc::c_uint, libc::MSG_DONTWAIT)
            };
            out.calls += 1;
            if r > 0 {
                out.sent += r as usize;
                start += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // the datagram at `start` is refused (e.g. EAGAIN on a full send buffer,
            // ENETUNREACH, EPERM from a firewall): skip it, keep the rest going
            if let Some(dest) = from_sockaddr(&self.addrs[start]) {
                on_error(dest, e);
            }
            out.failed += 1;
            start += 1;
        }
        self.msgs.clear();
        self.used = 0;
        out
    }
}

/// Make a socket blocking with a receive timeout (so a blocked shard still runs its timers
/// and notices a stop request).
pub fn set_recv_timeout(fd: RawFd, timeout: std::time::Duration) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no memory is passed.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `tv` is a live timeval and its size is passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Wait until one of `fds` is readable or `timeout` passes; `ready[i]` says which.
pub fn wait_readable(fds: &[RawFd], ready: &mut [bool], timeout: std::time::Duration) -> io::Result<usize> {
    let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 16];
    let n = fds.len().min(pfds.len());
    for (p, &fd) in pfds.iter_mut().zip(fds) {
        *p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    }
    // SAFETY: `pfds[..n]` are initialised pollfd entries we own; the kernel writes revents.
    let r = unsafe {
        libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout.as_millis().min(i32::MAX as u128) as libc::c_int)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
    }
    for (i, p) in pfds[..n].iter().enumerate() {
        ready[i] = p.revents & (libc::POLLIN | libc::POLLERR) != 0;
    }
    Ok(r as usize)
}

/// The local address a socket is bound to.
pub fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let mut ss = zeroed_storage();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` is a valid, writable sockaddr_storage and `len` holds its size.
    let r = unsafe { libc::getsockname(fd.as_raw_fd(), (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    from_sockaddr(&ss).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))
}

/// Drops counted by the kernel for this socket (the `drops` column of `/proc/net/udp{,6}`).
pub fn kernel_drops(local: SocketAddr) -> Option<u64> {
    let (path, hex) = match local {
        SocketAddr::V4(a) => ("/proc/net/udp", format!("{:08X}:{:04X}", u32::from_ne_bytes(a.ip().octets()), a.port())),
        SocketAddr::V6(a) => {
            let o = a.ip().octets();
            let words: String =
                o.chunks(4).map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))).collect();
            ("/proc/net/udp6", format!("{words}:{:04X}", a.port()))
        }
    };
    let text = std::fs::read_to_string(path).ok()?;
    let mut total = 0u64;
    let mut found = false;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(1) == Some(&hex.as_str()) {
            found = true;
            total += cols.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    found.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn reuseport_sockets_share_a_port_and_batch_io_round_trips() {
        let (a, sizes) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1 << 20, 1 << 20).unwrap();
        let addr = local_addr(&a).unwrap();
        assert!(sizes.rcv_granted >= 1 << 20, "{sizes:?}");
        // a second socket on the same address joins the group
        let (_b, _) = bind_reuseport(addr, 1 << 16, 1 << 16).unwrap();

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut send = SendBatch::new(8, 4096);
        for i in 0..5u8 {
            assert!(send.push(addr, |buf| {
                buf[..3].copy_from_slice(&[b'm', b'0' + i, b'\n']);
                Some(3)
            }));
        }
        assert_eq!(send.len(), 5);
        // send from the client side through a batch to the reuseport group
        let cfd = client.as_raw_fd();
        let f = send.flush(cfd, |_, e| panic!("{e}"));
        assert_eq!((f.sent, f.failed), (5, 0));
        assert!(send.is_empty());

        // with two sockets in the group one of them got everything (same 4-tuple)
        let mut recv = RecvBatch::new(16, 2048);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = recv.recv(a.as_raw_fd()).unwrap() + recv_other(&_b);
        assert_eq!(n, 5);
        fn recv_other(b: &OwnedFd) -> usize {
            RecvBatch::new(16, 2048).recv(b.as_raw_fd()).unwrap()
        }
    }

    #[test]
    fn truncation_and_sources_are_reported() {
        let (a, _) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1 << 20, 1 << 20).unwrap();
        let addr = local_addr(&a).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(&[7u8; 100], addr).unwrap();
        client.send_to(b"hi", addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut recv = RecvBatch::new(4, 64);
        assert_eq!(recv.recv(a.as_raw_fd()).unwrap(), 2);
        let d0 = recv.get(0).unwrap();
        assert!(d0.truncated);
        assert_eq!(d0.data.len(), 64);
        assert_eq!(d0.src, client.local_addr().unwrap());
        let d1 = recv.get(1).unwrap();
        assert_eq!((d1.data, d1.truncated), (&b"hi"[..], false));
        assert!(recv.get(2).is_none());
        // nothing more queued: Ok(0), not an error
        assert_eq!(recv.recv(a.as_raw_fd()).unwrap(), 0);
        assert_eq!(kernel_drops(addr), Some(0));
    }

    #[test]
    fn full_batches_refuse_and_ipv6_works() {
        let mut send = SendBatch::new(2, 10);
        let dst: SocketAddr = "[::1]:9".parse().unwrap();
        assert!(send.push(dst, |b| {
            b[..4].copy_from_slice(b"abcd");
            Some(4)
        }));
        assert!(!send.push(dst, |_| None), "declined write queues nothing");
        assert!(!send.push(dst, |b| (b.len() >= 20).then_some(20)), "arena too small");
        assert!(send.push(dst, |b| Some(b.len().min(6))));
        assert_eq!(send.room(), 0);
        assert!(!send.push(dst, |_| Some(1)), "batch full");
        let mut ss = zeroed_storage();
        to_sockaddr(&dst, &mut ss);
        assert_eq!(from_sockaddr(&ss), Some(dst));
    }
}
