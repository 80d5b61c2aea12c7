//! The Linux calls `ringsip-bench rtp` needs beyond std and `bench::sys`: kernel receive
//! timestamps (`SO_TIMESTAMPNS` and `recvmsg` with its control message), an epoll set for the
//! live sink, and the open-files limit. Like `bench::sys`, the only `unsafe` of the RTP
//! benchmark; every block says why it is sound and everything exported is a safe function.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Ask the kernel for a receive timestamp (`CLOCK_REALTIME`, ns) on every datagram of `fd`.
pub(crate) fn set_timestampns(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed; setsockopt only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Room for one `SCM_TIMESTAMPNS` control message (and a spare one).
const CMSG_BUF: usize = 128;

/// Non-blocking `recvmsg` of one datagram into `buf`: `Ok(None)` when none is queued, else
/// its length and the kernel receive timestamp (ns since the epoch) when the socket has
/// [`set_timestampns`]. A datagram longer than `buf` is truncated to it.
pub(crate) fn recv_timestamped(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Option<i64>)>> {
    // u64 elements: the control buffer must be aligned for cmsghdr
    let mut ctrl = [0u64; CMSG_BUF / 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF as _;
    // SAFETY: `msg` points at a live iovec describing `buf` (writable, its length) and at a
    // live, aligned control buffer of the size given; no name buffer. All outlive the call,
    // which writes only within those bounds.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(e),
        };
    }
    let mut ts = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled, within
    // msg_controllen (which the kernel set to what it wrote); each header they return lies
    // inside `ctrl`. The timestamp is read unaligned-safe with read_unaligned after checking
    // that the message is long enough to hold it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_SOCKET
                && h.cmsg_type == libc::SCM_TIMESTAMPNS
                && h.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::timespec>() as u32) as usize
            {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                ts = Some(t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Some((n as usize, ts)))
}

/// A level-triggered epoll set of readable sockets, each registered with a `u64` token.
pub(crate) struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    pub(crate) fn new(capacity: usize) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd, events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.clamp(1, 1024)] })
    }

    /// Watch `fd` for input; [`Epoll::wait`] reports it as `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: `ev` is a live epoll_event; both descriptors are plain integers.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// Wait up to `timeout` and return the tokens of the ready sockets.
    pub(crate) fn wait(&mut self, timeout: Duration) -> io::Result<impl Iterator<Item = u64> + '_> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `events` holds `len` writable epoll_event slots; the kernel writes at most
        // that many.
        let n = unsafe {
            libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), self.events.len() as libc::c_int, ms)
        };
        let n = if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            0
        } else {
            n as usize
        };
        Ok(self.events[..n].iter().map(|e| e.u64))
    }
}

/// Raise the soft limit of open files to at least `want` (up to the hard limit); returns the
/// soft limit now in force.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    // SAFETY: rlimit is a plain C struct; all-zero is valid.
    let mut rl: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `rl` is a live, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 0;
    }
    let cur = rl.rlim_cur as u64;
    if cur >= want {
        return cur;
    }
    rl.rlim_cur = (want as libc::rlim_t).min(rl.rlim_max);
    // SAFETY: `rl` is a live rlimit; setrlimit only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return cur;
    }
    rl.rlim_cur as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn rtp_kernel_timestamp_and_epoll() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_timestampns(b.as_raw_fd()).unwrap();
        let mut ep = Epoll::new(4).unwrap();
        ep.add(b.as_raw_fd(), 7).unwrap();
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        a.send_to(b"hello", b.local_addr().unwrap()).unwrap();
        let ready: Vec<u64> = ep.wait(Duration::from_secs(2)).unwrap().collect();
        assert_eq!(ready, vec![7]);
        let mut buf = [0u8; 64];
        let (n, ts) = recv_timestamped(b.as_raw_fd(), &mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"hello");
        let ts = ts.expect("SO_TIMESTAMPNS control message");
        assert!(ts >= before - 1_000_000 && ts < before + 5_000_000_000, "{ts} vs {before}");
        assert!(recv_timestamped(b.as_raw_fd(), &mut buf).unwrap().is_none());
        assert!(raise_nofile(16) >= 16);
    }
}
