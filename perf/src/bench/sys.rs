//! The few Linux calls the generator needs that std has no safe form of: batched UDP IO
//! (`recvmmsg`/`sendmmsg`), `ppoll` with a nanosecond timeout, CPU affinity, `kill` and
//! `sysconf`. This is the one module of `ringsip-perf` allowed `unsafe` (the workspace denies
//! it); every block says why it is sound. Everything exported here is a safe function.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::time::Duration;

/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub(crate) const BATCH: usize = 64;
/// Receive slot size: a SIP datagram of this benchmark is < 1 KB; larger ones are truncated
/// (flagged, counted and dropped).
pub(crate) const SLOT: usize = 4096;

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

fn from_sockaddr_in(s: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)), u16::from_be(s.sin_port))
}

/// Receive buffers for one `recvmmsg` call: [`BATCH`] slots of [`SLOT`] bytes.
pub(crate) struct RecvBatch {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    addrs: [libc::sockaddr_in; BATCH],
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            truncated: [false; BATCH],
            addrs: [sockaddr_in(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); BATCH],
        }
    }

    /// Non-blocking `recvmmsg` of up to [`BATCH`] datagrams from `fd`; `Ok(0)` when none is
    /// queued.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero is a valid value.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            // `wrapping_add` keeps this safe; i * SLOT < bufs.len() so it stays in bounds.
            iov[i].iov_base = base.wrapping_add(i * SLOT).cast();
            iov[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
        // SAFETY: every header points at a live iovec describing SLOT writable bytes inside
        // `self.bufs` (disjoint per header) and at a live sockaddr_in of the size given; all of
        // them outlive the call, which writes only within those bounds. BATCH fits in c_uint.
        let n = unsafe {
            libc::recvmmsg(fd, hdrs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (h, (len, trunc)) in hdrs[..n].iter().zip(self.lens.iter_mut().zip(self.truncated.iter_mut())) {
            *len = (h.msg_len as usize).min(SLOT);
            *trunc = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: bytes, source, truncated?
    pub(crate) fn get(&self, i: usize) -> (&[u8], SocketAddrV4, bool) {
        let start = i * SLOT;
        (&self.bufs[start..start + self.lens[i]], from_sockaddr_in(&self.addrs[i]), self.truncated[i])
    }
}

/// `sendmmsg` of up to [`BATCH`] datagrams: `msgs[i]` is a byte range of `data` and its
/// destination. Returns how many went out (the first `n`); an error is returned only when the
/// very first one failed.
pub(crate) fn sendmmsg(fd: RawFd, data: &[u8], msgs: &[(u32, u32, SocketAddrV4)]) -> io::Result<usize> {
    let k = msgs.len().min(BATCH);
    if k == 0 {
        return Ok(0);
    }
    // SAFETY: iovec, mmsghdr and sockaddr_in are plain C structs; all-zero is valid.
    let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut addrs: [libc::sockaddr_in; BATCH] = unsafe { zeroed() };
    for (i, &(start, len, dst)) in msgs[..k].iter().enumerate() {
        let bytes = &data[start as usize..(start + len) as usize]; // bounds-checked here
        iov[i].iov_base = bytes.as_ptr() as *mut libc::c_void;
        iov[i].iov_len = bytes.len();
        addrs[i] = sockaddr_in(dst);
        hdrs[i].msg_hdr.msg_iov = &mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
        hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
        hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    }
    // SAFETY: the first k headers point at live iovecs over in-bounds ranges of `data` (only
    // read by the kernel) and at live sockaddr_in values of the given size; everything
    // outlives the call. k <= BATCH fits in c_uint.
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), k as libc::c_uint, 0) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// `ppoll` for POLLIN on `fds`; `ready[i]` tells which have data. `None` waits forever.
pub(crate) fn poll_in(fds: &[RawFd], ready: &mut [bool], timeout: Option<Duration>) -> io::Result<usize> {
    let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 8];
    let n = fds.len().min(pfds.len());
    for i in 0..n {
        pfds[i] = libc::pollfd { fd: fds[i], events: libc::POLLIN, revents: 0 };
    }
    let ts = timeout
        .map(|d| libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `pfds` holds n initialised pollfd entries; `tsp` is null or points at a live
    // timespec; a null signal mask leaves the mask unchanged.
    let r = unsafe { libc::ppoll(pfds.as_mut_ptr(), n as libc::nfds_t, tsp, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            ready.iter_mut().for_each(|r| *r = false);
            return Ok(0);
        }
        return Err(e);
    }
    for i in 0..n.min(ready.len()) {
        ready[i] = pfds[i].revents & (libc::POLLIN | libc::POLLERR) != 0;
    }
    Ok(r as usize)
}

/// Pin the calling thread to `cpus` (children it spawns afterwards inherit the mask).
pub(crate) fn set_thread_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { zeroed() };
    for &c in cpus {
        if c >= 8 * size_of::<libc::cpu_set_t>() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("CPU {c} out of range")));
        }
        // SAFETY: c is below the set's capacity in bits (checked above).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The calling thread's CPU mask.
#[cfg(test)]
pub(crate) fn thread_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 = this thread.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: every c is below the set's capacity in bits.
    Ok((0..8 * size_of::<libc::cpu_set_t>()).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Send `sig` to process `pid`.
pub(crate) fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and has no memory effects in this process.
    let r = unsafe { libc::kill(pid, sig) };
    if r != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Clock ticks per second of /proc/PID/stat utime/stime.
pub(crate) fn clk_tck() -> u64 {
    // SAFETY: sysconf takes an integer and has no memory effects.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// Effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no memory effects.
    unsafe { libc::geteuid() }
}

/// Timer slack of the calling thread in ns (default 50 µs): a smaller slack makes `ppoll`
/// wake closer to the pacing deadline.
pub(crate) fn set_timer_slack(ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            ns as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}

pub(crate) use libc::{SIGKILL, SIGTERM};

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn mmsg_round_trip_on_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let SocketAddr::V4(dst) = b.local_addr().unwrap() else { panic!() };
        let data = b"helloworld!";
        let n = sendmmsg(a.as_raw_fd(), data, &[(0, 5, dst), (5, 6, dst)]).unwrap();
        assert_eq!(n, 2);
        let mut ready = [false];
        poll_in(&[b.as_raw_fd()], &mut ready, Some(Duration::from_secs(2))).unwrap();
        assert!(ready[0]);
        let mut rb = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 2 {
            let k = rb.recv(b.as_raw_fd()).unwrap();
            for i in 0..k {
                let (bytes, from, trunc) = rb.get(i);
                assert!(!trunc);
                assert_eq!(SocketAddr::V4(from), a.local_addr().unwrap());
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"world!".to_vec()]);
        assert_eq!(rb.recv(b.as_raw_fd()).unwrap(), 0);
    }

    use std::net::SocketAddr;

    #[test]
    fn affinity_round_trip() {
        let mine = thread_affinity().unwrap();
        assert!(!mine.is_empty());
        set_thread_affinity(&mine[..1]).unwrap();
        assert_eq!(thread_affinity().unwrap(), mine[..1].to_vec());
        set_thread_affinity(&mine).unwrap();
        assert!(clk_tck() > 0);
    }
}
