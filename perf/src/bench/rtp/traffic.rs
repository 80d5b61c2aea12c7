//! The calls and their media, as `shared/bench/rtp/rtp_bench.py`: per call two UDP sockets on
//! 127.0.0.1 (leg A and leg B) set up through the relay with ng `offer`/`answer`, each
//! `connect()`ed to the relay port facing it (so only media from that port is accepted:
//! symmetric RTP); a paced sender of 12-byte-header RTP packets carrying (send time, stream id,
//! counter); and the two sinks: deferred (drain the socket buffers after the window, latency
//! from the kernel receive timestamp) and live (an epoll thread reading during the blast).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::ng::{Bval, Ng, random_seed, sdp, sdp_media, xorshift};
use super::stats::{META, RTP_HDR, Rx};
use super::sys as rsys;
use crate::bench::procfs;

/// One side of a call: our socket and the relay port it sends to (and accepts media from).
pub(crate) struct Leg {
    pub sock: UdpSocket,
    pub port: u16,
    pub relay: SocketAddrV4,
}

/// One call set up on the relay.
pub(crate) struct Call {
    pub id: String,
    pub from_tag: String,
    /// the caller (its SDP in the offer); sends stream 2i
    pub a: Leg,
    /// the callee (its SDP in the answer); sends stream 2i+1
    pub b: Leg,
}

impl Call {
    /// The legs and the stream each one receives: B gets A's stream and vice versa.
    pub(crate) fn receivers(calls: &[Call]) -> impl Iterator<Item = (&Leg, u32)> {
        calls.iter().enumerate().flat_map(|(i, c)| [(&c.b, 2 * i as u32), (&c.a, 2 * i as u32 + 1)])
    }

    /// The sockets that send, in stream order (stream 2i = call i's A, 2i+1 = its B).
    pub(crate) fn senders(calls: &[Call]) -> Vec<&UdpSocket> {
        calls.iter().flat_map(|c| [&c.a.sock, &c.b.sock]).collect()
    }
}

/// How the calls' sockets are made.
pub(crate) struct SetupOpts {
    /// leg A of call i binds base_port + 4i, leg B base_port + 4i + 2 (as the script)
    pub base_port: u16,
    pub sock_buf: usize,
    /// SO_TIMESTAMPNS (the deferred sink)
    pub timestamps: bool,
    /// distinguishes the call-ids of the runs of one invocation
    pub run_tag: String,
}

fn leg_socket(port: u16, buf: usize, timestamps: bool) -> Result<UdpSocket, String> {
    let what = |e: std::io::Error| format!("UDP 127.0.0.1:{port}: {e}");
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(what)?;
    s.set_recv_buffer_size(buf).map_err(what)?;
    s.set_send_buffer_size(buf).map_err(what)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into()).map_err(what)?;
    if timestamps {
        rsys::set_timestampns(s.as_raw_fd()).map_err(what)?;
    }
    Ok(s.into())
}

fn ok_result(r: &Bval, what: &str) -> Result<(), String> {
    match r.text("result").as_str() {
        "ok" => Ok(()),
        other => {
            let reason = r.text("error-reason");
            Err(format!(
                "{what}: result {other:?}{}",
                if reason.is_empty() { String::new() } else { format!(": {reason}") }
            ))
        }
    }
}

const NG_TRIES: u32 = 3;
const NG_TIMEOUT: Duration = Duration::from_secs(2);

/// Set up `n` calls (rtp_bench.py's call setup). On an error, the calls set up so far are
/// returned with it (to be deleted).
pub(crate) fn setup_calls(ng: &mut Ng, n: usize, o: &SetupOpts, stop: &AtomicBool) -> (Vec<Call>, Option<String>) {
    let mut calls = Vec::with_capacity(n);
    if u32::from(o.base_port) + 4 * n as u32 > 65536 {
        return (calls, Some(format!("{n} calls do not fit above --base-port {} (4 ports per call)", o.base_port)));
    }
    // leg ports from --base-port up, 4 per call; a pair another program holds (an ephemeral
    // port of some connection) is skipped
    let mut next = u32::from(o.base_port);
    for i in 0..n {
        if stop.load(Ordering::Relaxed) {
            return (calls, Some("interrupted".into()));
        }
        let (sa, sb, pa, pb) = loop {
            if next + 2 > 65535 {
                return (calls, Some(format!("no free leg ports left above --base-port {}", o.base_port)));
            }
            let (pa, pb) = (next as u16, next as u16 + 2);
            next += 4;
            match (leg_socket(pa, o.sock_buf, o.timestamps), leg_socket(pb, o.sock_buf, o.timestamps)) {
                (Ok(a), Ok(b)) => break (a, b, pa, pb),
                (Err(e), _) | (_, Err(e)) if !e.contains("in use") => return (calls, Some(e)),
                _ => continue,
            }
        };
        match setup_one(ng, i, (sa, pa), (sb, pb), o) {
            Ok(c) => calls.push(c),
            Err(e) => return (calls, Some(e)),
        }
    }
    (calls, None)
}

fn setup_one(
    ng: &mut Ng,
    i: usize,
    (sa, pa): (UdpSocket, u16),
    (sb, pb): (UdpSocket, u16),
    o: &SetupOpts,
) -> Result<Call, String> {
    let id = format!("bench-{}-{}-{i}@127.0.0.1", std::process::id(), o.run_tag);
    let ft = format!("ft{i}");
    match offer_answer(ng, i, &id, &ft, pa, pb) {
        Ok((to_a_side, to_b_side)) => {
            let conn = sa
                .connect(to_a_side)
                .and_then(|()| sb.connect(to_b_side))
                .map_err(|e| format!("connect to the relay ports {to_a_side}/{to_b_side}: {e}"));
            if let Err(e) = conn {
                let _ = delete_one(ng, &id, &ft);
                return Err(e);
            }
            Ok(Call {
                id,
                from_tag: ft,
                a: Leg { sock: sa, port: pa, relay: to_a_side },
                b: Leg { sock: sb, port: pb, relay: to_b_side },
            })
        }
        Err(e) => {
            // the call may exist on the relay (a lost reply, a bad SDP): delete it, quietly
            let _ = delete_one(ng, &id, &ft);
            Err(e)
        }
    }
}

/// `offer` and `answer` of call `i`: (the relay port A sends to, the one B sends to).
fn offer_answer(
    ng: &mut Ng,
    i: usize,
    id: &str,
    ft: &str,
    pa: u16,
    pb: u16,
) -> Result<(SocketAddrV4, SocketAddrV4), String> {
    let replace = || Bval::List(vec![Bval::s("origin"), Bval::s("session-connection")]);
    let off = ng.cmd(
        &Bval::dict([
            ("command", Bval::s("offer")),
            ("call-id", Bval::s(id)),
            ("from-tag", Bval::s(ft)),
            ("sdp", Bval::s(sdp(pa, 1000 + i as u64))),
            ("replace", replace()),
            ("ICE", Bval::s("remove")),
        ]),
        NG_TRIES,
        NG_TIMEOUT,
    )?;
    ok_result(&off, &format!("offer of call {i}"))?;
    let ans = ng.cmd(
        &Bval::dict([
            ("command", Bval::s("answer")),
            ("call-id", Bval::s(id)),
            ("from-tag", Bval::s(ft)),
            ("to-tag", Bval::s(format!("tt{i}"))),
            ("sdp", Bval::s(sdp(pb, 2000 + i as u64))),
            ("replace", replace()),
            ("ICE", Bval::s("remove")),
        ]),
        NG_TRIES,
        NG_TIMEOUT,
    )?;
    ok_result(&ans, &format!("answer of call {i}"))?;
    let media = |r: &Bval, what: &str| {
        sdp_media(r.get("sdp").and_then(Bval::as_bytes).unwrap_or_default())
            .map_err(|e| format!("{what} of call {i}: {e}"))
    };
    // B sends to the port in the offer's SDP (the relay port facing B), A to the answer's
    let to_b_side = media(&off, "offer")?;
    let to_a_side = media(&ans, "answer")?;
    Ok((to_a_side, to_b_side))
}

fn delete_one(ng: &mut Ng, id: &str, from_tag: &str) -> Result<(), String> {
    let r = ng.cmd(
        &Bval::dict([("command", Bval::s("delete")), ("call-id", Bval::s(id)), ("from-tag", Bval::s(from_tag))]),
        NG_TRIES,
        NG_TIMEOUT,
    )?;
    ok_result(&r, "delete")
}

/// `delete` every call; (deleted, the errors of the others).
pub(crate) fn delete_calls(ng: &mut Ng, calls: &[Call]) -> (u64, Vec<String>) {
    let mut ok = 0;
    let mut errors = Vec::new();
    for c in calls {
        match delete_one(ng, &c.id, &c.from_tag) {
            Ok(()) => ok += 1,
            Err(e) => errors.push(format!("{}: {e}", c.id)),
        }
    }
    (ok, errors)
}

/// What the sender does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendPlan {
    /// all streams together, packets/s
    pub pps: f64,
    pub duration_s: f64,
    /// when nothing is due, sleep at least this long: packets leave in bursts of pps x tick
    pub tick: Duration,
    /// RTP payload bytes (>= [`META`])
    pub payload: usize,
}

impl SendPlan {
    /// Packets the run sends (rtp_bench.py's `end_k`).
    pub(crate) fn packets(&self) -> u64 {
        (self.pps * self.duration_s) as u64
    }
}

/// What the sender did.
#[derive(Clone, Debug, Default)]
pub(crate) struct SendStats {
    pub sent: u64,
    pub send_s: f64,
    /// how far behind its schedule the sender was at the start of a burst, worst case
    pub max_lag_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// the sending thread's CPU (schedstat)
    pub cpu_s: f64,
    pub interrupted: bool,
}

/// Nanoseconds since the epoch (`CLOCK_REALTIME`, the clock of SO_TIMESTAMPNS).
pub(crate) fn realtime_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Send `plan` round-robin over `socks` (rtp_bench.py's `sender`): packet k goes at k/pps
/// seconds on stream k mod n; a burst sends everything due.
pub(crate) fn blast(socks: &[&UdpSocket], plan: &SendPlan, stop: &AtomicBool) -> SendStats {
    let n = socks.len();
    let mut st = SendStats::default();
    if n == 0 {
        return st;
    }
    let len = RTP_HDR + plan.payload.max(META);
    let mut rng = random_seed();
    let mut next = || {
        rng = xorshift(rng);
        rng
    };
    // per stream: packet buffer (PCMU silence after the data), seq, ssrc, counter
    let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0xffu8; len]).collect();
    let mut seqs: Vec<u16> = (0..n).map(|_| next() as u16).collect();
    let ssrcs: Vec<u32> = (0..n).map(|_| next() as u32).collect();
    let mut counters = vec![0u32; n];
    let end_k = plan.packets();
    let period_ns = 1e9 / plan.pps;
    let cpu0 = procfs::thread_sched().0;
    let t0 = Instant::now();
    let mut k = 0u64;
    let mut max_lag = 0f64;
    while k < end_k {
        if stop.load(Ordering::Relaxed) {
            st.interrupted = true;
            break;
        }
        let now = t0.elapsed().as_nanos() as f64;
        let due = end_k.min((now / period_ns) as u64 + 1);
        if due <= k {
            let until_next = Duration::from_nanos((k as f64 * period_ns - now).max(0.0) as u64);
            std::thread::sleep(plan.tick.max(until_next));
            continue;
        }
        max_lag = max_lag.max(now - k as f64 * period_ns);
        while k < due {
            let i = (k % n as u64) as usize;
            let b = &mut bufs[i];
            let c = counters[i];
            seqs[i] = seqs[i].wrapping_add(1);
            b[0] = 0x80;
            b[1] = 0;
            b[2..4].copy_from_slice(&seqs[i].to_be_bytes());
            b[4..8].copy_from_slice(&c.wrapping_mul(160).to_be_bytes());
            b[8..12].copy_from_slice(&ssrcs[i].to_be_bytes());
            b[12..20].copy_from_slice(&(realtime_ns() as u64).to_be_bytes());
            b[20..24].copy_from_slice(&(i as u32).to_be_bytes());
            b[24..28].copy_from_slice(&c.to_be_bytes());
            if let Err(e) = socks[i].send(b) {
                st.errors += 1;
                st.first_error.get_or_insert_with(|| format!("stream {i}: {e}"));
            }
            counters[i] = c.wrapping_add(1);
            k += 1;
        }
    }
    st.send_s = t0.elapsed().as_secs_f64();
    st.cpu_s = procfs::thread_sched().0.saturating_sub(cpu0) as f64 / 1e9;
    st.sent = k;
    st.max_lag_ms = max_lag / 1e6;
    st
}

/// The largest per-stream counter a plan sends.
pub(crate) fn max_counter(plan: &SendPlan, streams: usize) -> u32 {
    (plan.packets() / streams.max(1) as u64).min(u64::from(u32::MAX - 1)) as u32 + 1
}

/// Slot for one datagram: larger ones are truncated (and then counted as what they start with).
const RX_BUF: usize = 2048;

/// Read everything queued on the legs (rtp_bench.py's `drain_deferred`), latency from the
/// kernel receive timestamp. Returns the errors met (a socket error ends that socket's drain).
pub(crate) fn drain(calls: &[Call], rx: &mut Rx) -> Vec<String> {
    let mut buf = [0u8; RX_BUF];
    let mut errors = Vec::new();
    for (leg, expect) in Call::receivers(calls) {
        loop {
            match rsys::recv_timestamped(leg.sock.as_raw_fd(), &mut buf) {
                Ok(Some((n, ts))) => rx.on_datagram(&buf[..n.min(RX_BUF)], expect, ts),
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ECONNREFUSED (an ICMP error queued on a connected socket) is reported once
                    // and the read retried
                    if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        if errors.len() < 10 {
                            errors.push(format!("127.0.0.1:{}: {e}", leg.port));
                        }
                        continue;
                    }
                    errors.push(format!("127.0.0.1:{}: {e}", leg.port));
                    break;
                }
            }
        }
    }
    errors
}

/// The live sink (rtp_bench.py's `sink`): read the legs with epoll until `stop`, then once
/// more everything left; latency from the time of the read. Returns the errors met.
pub(crate) fn live_sink(calls: &[Call], rx: &mut Rx, ready: &AtomicBool, stop: &AtomicBool) -> Vec<String> {
    let legs: Vec<(&Leg, u32)> = Call::receivers(calls).collect();
    let mut errors = Vec::new();
    let mut ep = match rsys::Epoll::new(legs.len()) {
        Ok(e) => e,
        Err(e) => {
            ready.store(true, Ordering::Release);
            return vec![format!("epoll: {e}")];
        }
    };
    for (k, (leg, _)) in legs.iter().enumerate() {
        if let Err(e) = ep.add(leg.sock.as_raw_fd(), k as u64) {
            errors.push(format!("epoll_ctl 127.0.0.1:{}: {e}", leg.port));
        }
    }
    ready.store(true, Ordering::Release);
    let mut buf = [0u8; RX_BUF];
    let mut read_leg = |k: usize, rx: &mut Rx, errors: &mut Vec<String>| {
        let (leg, expect) = legs[k];
        loop {
            match rsys::recv_timestamped(leg.sock.as_raw_fd(), &mut buf) {
                Ok(Some((n, _))) => rx.on_datagram(&buf[..n.min(RX_BUF)], expect, Some(realtime_ns())),
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if errors.len() < 10 {
                        errors.push(format!("127.0.0.1:{}: {e}", leg.port));
                    }
                    if e.kind() != std::io::ErrorKind::ConnectionRefused {
                        break;
                    }
                }
            }
        }
    };
    let mut ready_now = Vec::with_capacity(legs.len());
    while !stop.load(Ordering::Acquire) {
        ready_now.clear();
        match ep.wait(Duration::from_millis(50)) {
            Ok(it) => ready_now.extend(it),
            Err(e) => {
                errors.push(format!("epoll_wait: {e}"));
                break;
            }
        }
        for &k in &ready_now {
            read_leg(k as usize, rx, &mut errors);
        }
    }
    for k in 0..legs.len() {
        read_leg(k, rx, &mut errors);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two "calls" looped back on themselves (no relay): each leg sends to the other leg's
    /// socket, so the stream ids arrive where the relay would deliver them.
    fn looped_calls(n: usize, timestamps: bool) -> Vec<Call> {
        (0..n)
            .map(|i| {
                let sa = leg_socket(0, 1 << 20, timestamps).unwrap();
                let sb = leg_socket(0, 1 << 20, timestamps).unwrap();
                let addr = |s: &UdpSocket| match s.local_addr().unwrap() {
                    std::net::SocketAddr::V4(a) => a,
                    _ => unreachable!(),
                };
                let (aa, ab) = (addr(&sa), addr(&sb));
                sa.connect(ab).unwrap();
                sb.connect(aa).unwrap();
                Call {
                    id: format!("c{i}"),
                    from_tag: "f".into(),
                    a: Leg { sock: sa, port: aa.port(), relay: ab },
                    b: Leg { sock: sb, port: ab.port(), relay: aa },
                }
            })
            .collect()
    }

    #[test]
    fn rtp_blast_and_deferred_drain_on_loopback() {
        let calls = looped_calls(3, true);
        let plan = SendPlan { pps: 6000.0, duration_s: 0.1, tick: Duration::from_millis(1), payload: 160 };
        let stop = AtomicBool::new(false);
        let st = blast(&Call::senders(&calls), &plan, &stop);
        assert_eq!(st.sent, 600);
        assert_eq!(st.errors, 0);
        assert!(st.send_s >= 0.09, "{}", st.send_s);
        let mut rx = Rx::new(6, max_counter(&plan, 6));
        assert!(drain(&calls, &mut rx).is_empty());
        let s = rx.summary(st.sent);
        assert_eq!((s.received, s.unique, s.lost, s.duplicates, s.reordered), (600, 600, 0, 0, 0));
        assert_eq!((s.misdirected, s.stray, s.streams_seen), (0, 0, 6));
        assert_eq!(s.rx_bytes, 600 * 172);
        assert_eq!(s.lat_n, 600);
        assert!(s.lat_p50_us.unwrap() >= 0.0 && s.lat_p50_us.unwrap() < 1e6);
    }

    #[test]
    fn rtp_live_sink_reads_during_the_blast() {
        let calls = looped_calls(2, false);
        let plan = SendPlan { pps: 4000.0, duration_s: 0.1, tick: Duration::from_millis(1), payload: 160 };
        let (ready, stop, quit) = (AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false));
        let mut rx = Rx::new(4, max_counter(&plan, 4));
        let st = std::thread::scope(|s| {
            let h = s.spawn(|| live_sink(&calls, &mut rx, &ready, &stop));
            while !ready.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let st = blast(&Call::senders(&calls), &plan, &quit);
            std::thread::sleep(Duration::from_millis(50));
            stop.store(true, Ordering::Release);
            assert!(h.join().unwrap().is_empty());
            st
        });
        let s = rx.summary(st.sent);
        assert_eq!((st.sent, s.unique, s.lost, s.streams_seen), (400, 400, 0, 4));
        assert_eq!(s.lat_n, 400);
    }
}
