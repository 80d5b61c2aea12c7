//! The stateless load balancer's per-message work without sockets: one shard's
//! [`StatelessProxy`] built from `config/examples/stateless-lb.toml`, driven with the six
//! messages of a call (INVITE, 180, 200, ACK, BYE, 200) the way sipp's uac/uas exchange them
//! through the router. The UAS side answers what the router really forwarded (its Via
//! headers copied back), so the replies take the real response path (own Via check, pop,
//! `received`/`rport` next hop).
//!
//! Shared by `benches/lb.rs` (nanoseconds per routed message, per message kind) and
//! `tests/no_alloc_lb.rs` (no allocation over many calls in steady state), so both measure
//! the same code the shards run: route evaluation, dispatcher selection, the CANCEL/ACK
//! stickiness table, the Via/Max-Forwards edits, the writer and the send arena.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringsip_modules::stateless::{Factory, Shared, StatelessProxy};
use ringsip_runtime::{Datagram, Handler, HandlerFactory, Outbox, SendBatch, ShardInfo, ShardPlace, ShardStats};

/// The example configuration the harness runs (the same file `ringsip-bench` embeds).
pub const CONFIG: &str = include_str!("../../config/examples/stateless-lb.toml");

/// The UAC's address (a carrier trunk; responses are queued to it, never sent).
pub const UAC: &str = "203.0.113.45:5060";

const LISTEN: &str = "127.0.0.1:5060";
const MAX: usize = 4096;

/// One message of a call as the router receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// INVITE from the UAC.
    Invite,
    /// 180 Ringing from the UAS.
    Ringing,
    /// 200 OK (INVITE) from the UAS.
    Ok,
    /// ACK from the UAC.
    Ack,
    /// BYE from the UAC.
    Bye,
    /// 200 OK (BYE) from the UAS.
    ByeOk,
}

impl Step {
    /// The six messages of a call, in order.
    pub const ALL: [Step; 6] = [Step::Invite, Step::Ringing, Step::Ok, Step::Ack, Step::Bye, Step::ByeOk];

    /// Whether the UAC sends it (a request).
    pub fn is_request(self) -> bool {
        matches!(self, Step::Invite | Step::Ack | Step::Bye)
    }

    /// A short name (benchmark ids).
    pub fn name(self) -> &'static str {
        match self {
            Step::Invite => "INVITE",
            Step::Ringing => "180",
            Step::Ok => "200-INVITE",
            Step::Ack => "ACK",
            Step::Bye => "BYE",
            Step::ByeOk => "200-BYE",
        }
    }
}

/// What went wrong in a driven call (the router did not forward exactly one datagram where
/// the flow expects it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected {
    /// The message.
    pub step: Step,
    /// Datagrams the router queued for it.
    pub queued: usize,
    /// Where the (first) one went, if any.
    pub dest: Option<SocketAddr>,
}

/// A message ready to feed: bytes and the address it comes from.
#[derive(Clone)]
pub struct Prepared {
    buf: Box<[u8; MAX]>,
    len: usize,
    /// Sender.
    pub src: SocketAddr,
}

impl Prepared {
    fn new() -> Prepared {
        Prepared { buf: Box::new([0; MAX]), len: 0, src: SocketAddr::from(([0, 0, 0, 0], 0)) }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One shard's stateless proxy and everything needed to drive it without sockets.
pub struct Lb {
    shard: Driver,
    uac: SocketAddr,
    call: u64,
    msg: Prepared,
    fwd: Prepared,
    fwd_dest: Option<SocketAddr>,
    uas: SocketAddr,
}

/// The proxy with its send arena, fed one datagram at a time.
struct Driver {
    proxy: StatelessProxy,
    batches: Vec<SendBatch>,
    io: ShardStats,
    local: SocketAddr,
    now: Instant,
}

impl Driver {
    /// Feed one datagram; returns how many datagrams were queued, and the first of them
    /// (copied into `keep` when given) with its destination.
    fn feed(&mut self, data: &[u8], src: SocketAddr, keep: Option<&mut Prepared>) -> (usize, Option<SocketAddr>) {
        let d = Datagram { data, src, local: self.local, listen: 0, now: self.now };
        {
            let fds = [-1];
            let mut out = Outbox::new(&mut self.batches, &fds, &self.io, 20_000);
            self.proxy.datagram(&d, &mut out);
        }
        let b = &mut self.batches[0];
        let n = b.len();
        let mut dest = None;
        if let Some((to, bytes)) = b.queued().next() {
            dest = Some(to);
            if let Some(k) = keep {
                let len = bytes.len().min(MAX);
                k.buf[..len].copy_from_slice(&bytes[..len]);
                k.len = len;
            }
        }
        b.clear();
        (n, dest)
    }
}

impl Lb {
    /// Shard 0 of the example configuration (round-robin over 127.0.0.1:5080 and :5081).
    pub fn new() -> Lb {
        Lb::with_config(CONFIG)
    }

    /// Shard 0 of `config` (TOML). Panics on an invalid config: this is a benchmark fixture.
    pub fn with_config(config: &str) -> Lb {
        Lb::with_config_at(config, Path::new("bench.toml"))
    }

    /// Shard 0 of the config file at `path` (CSV tables it names are read beside it).
    pub fn from_file(path: &Path) -> Lb {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Lb::with_config_at(&text, path)
    }

    fn with_config_at(config: &str, origin: &Path) -> Lb {
        let cfg = ringsip_config::parse(config, origin).unwrap_or_else(|e| panic!("{e}"));
        let shared = Arc::new(Shared::new(&cfg).unwrap_or_else(|e| panic!("{e}")));
        let factory = Factory::new(shared, Arc::new(Mutex::new(Vec::new())));
        let local: SocketAddr = LISTEN.parse().expect("address");
        let info = ShardInfo {
            place: ShardPlace { shard: 0, cpu: 0, node: 0 },
            shards: 1,
            listen: vec![local],
            media_ports: None,
            media_addr: None,
        };
        Lb {
            shard: Driver {
                proxy: factory.make(&info, Arc::new(ShardStats::default())),
                batches: vec![SendBatch::new(64, 1 << 20)],
                io: ShardStats::default(),
                local,
                now: Instant::now(),
            },
            uac: UAC.parse().expect("address"),
            call: 0,
            msg: Prepared::new(),
            fwd: Prepared::new(),
            fwd_dest: None,
            uas: SocketAddr::from(([127, 0, 0, 1], 5080)),
        }
    }

    /// Feed one datagram; return how many datagrams the router queued, keeping a copy of the
    /// first (and where it goes); a request's copy is what the next replies answer.
    pub fn feed(&mut self, data: &[u8], src: SocketAddr) -> usize {
        let (n, dest) = self.shard.feed(data, src, Some(&mut self.fwd));
        self.fwd_dest = dest;
        n
    }

    /// Feed a prepared message; return how many datagrams were queued (which are discarded).
    pub fn feed_prepared(&mut self, p: &Prepared) -> usize {
        self.shard.feed(p.bytes(), p.src, None).0
    }

    /// Drive one whole call with a new Call-ID; returns the datagrams forwarded (6 when all
    /// went where they should). Time advances 100 µs per call.
    pub fn call(&mut self) -> Result<usize, Unexpected> {
        self.call += 1;
        self.shard.now += Duration::from_micros(100);
        let mut forwarded = 0;
        for step in Step::ALL {
            self.prepare(step);
            // the UAS answers the request the router forwarded: keep requests only
            let keep = step.is_request().then_some(&mut self.fwd);
            let (queued, dest) = self.shard.feed(self.msg.bytes(), self.msg.src, keep);
            self.fwd_dest = dest;
            let want = match step {
                Step::Invite => None,
                Step::Ack | Step::Bye => Some(self.uas),
                Step::Ringing | Step::Ok | Step::ByeOk => Some(self.uac),
            };
            let ok = queued == 1 && (want.is_none() || self.fwd_dest == want);
            if !ok {
                return Err(Unexpected { step, queued, dest: self.fwd_dest });
            }
            if step == Step::Invite {
                // the destination the dispatcher chose is the UAS of this call
                self.uas = self.fwd_dest.unwrap_or(self.uas);
            }
            forwarded += queued;
        }
        Ok(forwarded)
    }

    /// The six messages of one call exactly as the router receives them (run through the
    /// router once to learn its Via headers), for benchmarks that feed them again and again.
    pub fn one_call(&mut self) -> Vec<(Step, Prepared)> {
        self.call += 1;
        let mut out = Vec::with_capacity(6);
        for step in Step::ALL {
            self.prepare(step);
            let p = self.msg.clone();
            let keep = step.is_request().then_some(&mut self.fwd);
            let (queued, dest) = self.shard.feed(p.bytes(), p.src, keep);
            self.fwd_dest = dest;
            assert_eq!(queued, 1, "{}: the router forwarded {queued} datagrams", step.name());
            if step == Step::Invite {
                self.uas = self.fwd_dest.unwrap_or(self.uas);
            }
            out.push((step, p));
        }
        out
    }

    /// Write message `step` of the current call into `self.msg` (responses answer the last
    /// forwarded request).
    fn prepare(&mut self, step: Step) {
        let call = self.call;
        let uas = self.uas;
        let fwd = &self.fwd.buf[..self.fwd.len];
        let buf = &mut self.msg.buf[..];
        let cap = buf.len();
        let mut w: &mut [u8] = buf;
        let r = match step {
            Step::Invite => request(&mut w, "INVITE", call, 1, &"sip:+14155550123@127.0.0.1:5060", None, true),
            Step::Ack => request(&mut w, "ACK", call, 1, &UasUri(uas), Some(call), false),
            Step::Bye => request(&mut w, "BYE", call, 2, &UasUri(uas), Some(call), false),
            Step::Ringing => response(&mut w, fwd, "180 Ringing", call),
            Step::Ok | Step::ByeOk => response(&mut w, fwd, "200 OK", call),
        };
        r.expect("message fits its buffer");
        self.msg.len = cap - w.len();
        self.msg.src = if step.is_request() { self.uac } else { uas };
    }
}

impl Default for Lb {
    fn default() -> Self {
        Lb::new()
    }
}

struct UasUri(SocketAddr);

impl std::fmt::Display for UasUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sip:uas@{}", self.0)
    }
}

const SDP: &str = "v=0\r\no=- 3912841163 3912841163 IN IP4 203.0.113.45\r\ns=-\r\nc=IN IP4 203.0.113.46\r\n\
t=0 0\r\nm=audio 16384 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

/// A UAC request like sipp's built-in uac sends (INVITE with SDP; ACK and BYE in dialog).
fn request(
    w: &mut &mut [u8],
    method: &str,
    call: u64,
    cseq: u32,
    ruri: &dyn std::fmt::Display,
    to_tag: Option<u64>,
    sdp: bool,
) -> std::io::Result<()> {
    write!(w, "{method} {ruri} SIP/2.0\r\n")?;
    write!(w, "Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-{call}-{cseq}-{method};rport\r\n")?;
    write!(w, "From: sipp <sip:sipp@{UAC}>;tag={call}SIPpTag00\r\n")?;
    match to_tag {
        Some(t) => write!(w, "To: <sip:+14155550123@127.0.0.1:5060>;tag=uas{t}\r\n")?,
        None => write!(w, "To: <sip:+14155550123@127.0.0.1:5060>\r\n")?,
    }
    write!(w, "Call-ID: {call}-bench@203.0.113.45\r\n")?;
    write!(w, "CSeq: {cseq} {method}\r\n")?;
    write!(w, "Contact: <sip:sipp@{UAC}>\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n")?;
    if sdp {
        write!(w, "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
    } else {
        write!(w, "Content-Length: 0\r\n\r\n")
    }
}

/// A UAS response to the request the router forwarded: its Via, From, Call-ID and CSeq lines
/// copied as received, To with the UAS's tag.
fn response(w: &mut &mut [u8], fwd: &[u8], status: &str, call: u64) -> std::io::Result<()> {
    write!(w, "SIP/2.0 {status}\r\n")?;
    let mut to = None;
    for line in fwd.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if eq(name, "via")
            || eq(name, "v")
            || eq(name, "from")
            || eq(name, "f")
            || eq(name, "call-id")
            || eq(name, "i")
            || eq(name, "cseq")
        {
            w.write_all(line)?;
            w.write_all(b"\r\n")?;
        } else if eq(name, "to") || eq(name, "t") {
            to = Some(line);
        }
    }
    if let Some(to) = to {
        w.write_all(to)?;
        if !to.windows(5).any(|x| x.eq_ignore_ascii_case(b";tag=")) {
            write!(w, ";tag=uas{call}")?;
        }
        w.write_all(b"\r\n")?;
    }
    write!(w, "Contact: <sip:uas@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n")
}

/// Is header name `name` (as written, maybe padded) `want`, case-insensitively?
pub(crate) fn eq(name: &[u8], want: &str) -> bool {
    name.trim_ascii().eq_ignore_ascii_case(want.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_take_the_real_path() {
        let mut lb = Lb::new();
        let mut per_uas = [0usize; 2];
        for _ in 0..10 {
            assert_eq!(lb.call(), Ok(6));
            per_uas[usize::from(lb.uas.port() == 5081)] += 1;
        }
        assert_eq!(per_uas, [5, 5], "round-robin over both destinations");
        // a response whose top Via is not the router's is dropped, not forwarded
        let stray = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKx\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(lb.feed(stray, "127.0.0.1:5080".parse().unwrap()), 0);
        // the prepared messages replay
        let msgs = lb.one_call();
        assert_eq!(msgs.len(), 6);
        for (step, p) in &msgs {
            assert_eq!(lb.feed_prepared(p), 1, "{}", step.name());
        }
    }
}
