//! The transaction-stateful load balancer's per-message work without sockets: one shard's
//! [`StatelessProxy`] built from `config/examples/stateful-lb.toml` (the route action
//! `relay`: a proxy transaction per request, `record_route` on new calls), driven with whole
//! calls the way sipp's `uac.xml` (with `rrs="true"`) and `uas.xml` make them through a
//! record-routing proxy:
//!
//! 1. INVITE from the UAC: the router answers `100 Trying` upstream itself and relays the
//!    INVITE to a dispatcher destination (the UAS) with a stateful branch (`z9hG4bKrsT…`)
//!    and `Record-Route: <sip:127.0.0.1:5060;lr>`;
//! 2. 180 and 3. 200 from the UAS, which copies Via, From, To (with its tag), Call-ID, CSeq
//!    and Record-Route from the INVITE the router relayed and adds its Contact
//!    (`sip:uas@<its address>`); the router matches them to the transaction and passes them
//!    up (after the 2xx the INVITE transaction only waits, 64·T1, for retransmitted 2xx:
//!    RFC 6026's Accepted state);
//! 4. ACK and 5. BYE from the UAC, built from the 200 it got: Request-URI = the UAS Contact,
//!    `Route:` = the Record-Route set (reversed); the router pops its own Route entry, the
//!    ACK goes on statelessly, the BYE gets a transaction;
//! 6. 200 to the BYE from the UAS; the BYE transaction lives on after it until Timer J
//!    (64·T1 = 32 s) to absorb retransmissions.
//!
//! Every output of every step is checked (how many datagrams, where they went, what they
//! are: status or method, branch kind, Via count, Record-Route, Route, Request-URI,
//! Call-ID), so a misbehaving router fails the run loudly instead of being measured.
//!
//! Time is virtual: the harness passes its own `Instant`s in [`Datagram::now`] and to
//! [`Handler::tick`], advancing 1 ms per call ([`CALL_SPACING`]) and ticking every 10 ms
//! ([`TICK`], the runtime's default). So after 32 s of virtual time (32,000 calls)
//! transactions expire as fast as they are created and the transaction table holds a steady
//! number of them (the BYE and accepted INVITE transactions of the last 32 s: ~64,000), in
//! a second or two of real time. The dispatcher's health probes
//! (OPTIONS every 2 s, sent from `tick`) are answered `200 OK` by the destination they went
//! to, as a UAS would, so both destinations stay up; anything else a tick sends (a
//! retransmission, a timeout's response) is an error: every request is answered at once.
//!
//! Calls run one at a time ([`Stateful::call`]) or `n` at once, message kind by message
//! kind ([`Stateful::calls`]): the `n` INVITEs, then the `n` 180s, and so on, like a shard's
//! receive batch. The second form lets `benches/stateful.rs` time each message kind over a
//! batch (one clock read per batch, not per message), and `tests/no_alloc_stateful.rs`
//! checks that neither allocates in steady state.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lb::eq;
use ringsip_modules::stateless::{Factory, Registry, Shared, StatelessProxy};
use ringsip_proto::{ContactValue, HeaderName, Message};
use ringsip_runtime::{Datagram, Handler, HandlerFactory, Outbox, SendBatch, ShardInfo, ShardPlace, ShardStats};

pub use crate::lb::Step;

/// The example configuration the harness runs.
pub const CONFIG: &str = include_str!("../../config/examples/stateful-lb.toml");

/// The UAC's address (a carrier trunk; what the router sends it is checked, then dropped).
pub const UAC: &str = "203.0.113.45:5060";

/// The example's dispatcher destinations (the UASs), in set order.
pub const DESTINATIONS: [&str; 2] = ["127.0.0.1:5080", "127.0.0.1:5081"];

/// The Record-Route the router inserts into new calls (and the Route of in-dialog requests).
pub const RECORD_ROUTE: &[u8] = b"<sip:127.0.0.1:5060;lr>";

/// Virtual time between two calls (1,000 calls per second).
pub const CALL_SPACING: Duration = Duration::from_millis(1);

/// How often the router's timers run, in virtual time (the runtime's default tick).
pub const TICK: Duration = Duration::from_millis(10);

/// Timer J with the example's T1 (500 ms): how long a BYE transaction outlives its 200.
pub const TIMER_J: Duration = Duration::from_secs(32);

/// Most calls [`Stateful::calls`] runs at once.
pub const MAX_BATCH: usize = 64;

/// Calls a warm-up should run before measuring: more than [`TIMER_J`] of virtual time (40 s),
/// so the transaction table holds its steady number of transactions.
pub const WARM_UP_CALLS: usize = 40_000;

/// Calls after which, measured with the proxy as it is now, nothing of the table grows any
/// more (400 s of virtual time): the pooled message buffers have all grown to the largest
/// role they get (which takes several Timer J periods, see `tests/no_alloc_stateful.rs`) and
/// the match map has made its last resize (at about 340,000–360,000 calls).
pub const SETTLED_CALLS: usize = 400_000;

const LISTEN: &str = "127.0.0.1:5060";
/// Room for one message (the harness's own buffers never grow past it).
const MAX: usize = 4096;
/// Branch prefix of a transaction-stateful request (`table::TXN_PREFIX`).
const TXN_BRANCH: &[u8] = b"z9hG4bKrsT";
/// Branch prefix of a dispatcher health probe.
const PROBE_BRANCH: &[u8] = b"z9hG4bKrsP";
/// What the router must leave free in its send batch before it queues one more datagram.
const RESERVE: usize = 20_000;

/// What went wrong: the router did not do what the call flow expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected {
    /// The message being handled (`INVITE`, `180`, …, `tick`, `probe answer`).
    pub step: &'static str,
    /// The call's number.
    pub call: u64,
    /// What was wrong.
    pub why: &'static str,
    /// Datagrams the router queued for it.
    pub queued: usize,
    /// The offending datagram, where it went and its text (`None` when none was queued).
    pub got: Option<(SocketAddr, String)>,
}

impl fmt::Display for Unexpected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {} {}: {} ({} datagrams queued)", self.call, self.step, self.why, self.queued)?;
        if let Some((to, text)) = &self.got {
            write!(f, "; to {to}:\n{text}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unexpected {}

/// Time spent inside the router, by what it handled (filled by [`Stateful::calls`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    /// Per message kind, in [`Step::ALL`] order: the router's `datagram` for every message
    /// of that kind (and one `batch_start` per batch).
    pub step: [Duration; 6],
    /// The router's `tick` (transaction timers: Timer K trims, Timer J frees; health probes).
    pub tick: Duration,
    /// Calls timed.
    pub calls: u64,
}

impl Times {
    /// The time spent on messages of kind `step`.
    pub fn of(&self, step: Step) -> Duration {
        self.step[index(step)]
    }

    /// Everything: six messages a call and the timers.
    pub fn total(&self) -> Duration {
        self.step.iter().sum::<Duration>() + self.tick
    }

    /// Nanoseconds per message of kind `step`.
    pub fn ns_per(&self, step: Step) -> f64 {
        self.of(step).as_nanos() as f64 / self.calls.max(1) as f64
    }

    /// Nanoseconds of timer work per call.
    pub fn tick_ns_per_call(&self) -> f64 {
        self.tick.as_nanos() as f64 / self.calls.max(1) as f64
    }

    /// Nanoseconds per call (six messages and the timers).
    pub fn ns_per_call(&self) -> f64 {
        self.total().as_nanos() as f64 / self.calls.max(1) as f64
    }
}

fn index(step: Step) -> usize {
    Step::ALL.iter().position(|&s| s == step).unwrap_or(0)
}

/// One call in flight and what each side kept of it.
struct Call {
    no: u64,
    /// The destination the router chose for the INVITE (the UAS of this call).
    uas: SocketAddr,
    /// The message to feed next and who sends it.
    msg: Vec<u8>,
    src: SocketAddr,
    /// The INVITE as the UAS got it (its 180 and 200 answer it).
    invite: Vec<u8>,
    /// The 200 as the UAC got it (its ACK and BYE follow its Contact and Record-Route).
    ok: Vec<u8>,
    /// The BYE as the UAS got it.
    bye: Vec<u8>,
    /// Its datagrams in the send batch: [start, end).
    out: (usize, usize),
}

impl Call {
    fn new() -> Call {
        let unset = SocketAddr::from(([0, 0, 0, 0], 0));
        Call {
            no: 0,
            uas: unset,
            msg: Vec::with_capacity(MAX),
            src: unset,
            invite: Vec::with_capacity(MAX),
            ok: Vec::with_capacity(MAX),
            bye: Vec::with_capacity(MAX),
            out: (0, 0),
        }
    }
}

/// The proxy with its send arena.
struct Driver {
    proxy: StatelessProxy,
    batches: Vec<SendBatch>,
    io: ShardStats,
    local: SocketAddr,
    now: Instant,
}

impl Driver {
    /// Feed one datagram; returns how many datagrams are queued now.
    fn feed(&mut self, data: &[u8], src: SocketAddr) -> usize {
        let d = Datagram { data, src, local: self.local, listen: 0, now: self.now };
        let fds = [-1];
        let mut out = Outbox::new(&mut self.batches, &fds, &self.io, RESERVE);
        self.proxy.datagram(&d, &mut out);
        self.batches[0].len()
    }

    fn tick(&mut self) {
        let fds = [-1];
        let mut out = Outbox::new(&mut self.batches, &fds, &self.io, RESERVE);
        self.proxy.tick(self.now, &mut out);
    }
}

/// One shard's transaction-stateful proxy and the UAC and UASs around it, without sockets,
/// on a virtual clock.
pub struct Stateful {
    drv: Driver,
    registry: Registry,
    t0: Instant,
    next_tick: Instant,
    uac: SocketAddr,
    dests: [SocketAddr; 2],
    calls: Vec<Call>,
    next_no: u64,
    per_dest: [u64; 2],
    /// The destinations' answers to the router's health probes, queued here and fed back.
    answers: SendBatch,
    probes: u64,
}

impl Default for Stateful {
    fn default() -> Self {
        Stateful::new()
    }
}

impl Stateful {
    /// Shard 0 of the example configuration (round-robin over 127.0.0.1:5080 and :5081,
    /// OPTIONS probes every 2 s, failover, record-routing).
    pub fn new() -> Stateful {
        Stateful::with_config(CONFIG)
    }

    /// Shard 0 of `config` (TOML with the example's destinations). Panics on an invalid
    /// config: this is a benchmark fixture.
    pub fn with_config(config: &str) -> Stateful {
        let cfg = ringsip_config::parse(config, std::path::Path::new("bench.toml")).unwrap_or_else(|e| panic!("{e}"));
        let shared = Arc::new(Shared::new(&cfg).unwrap_or_else(|e| panic!("{e}")));
        let registry: Registry = Arc::new(Mutex::new(Vec::new()));
        let factory = Factory::new(shared, registry.clone());
        let local: SocketAddr = LISTEN.parse().expect("address");
        let info = ShardInfo {
            place: ShardPlace { shard: 0, cpu: 0, node: 0 },
            shards: 1,
            listen: vec![local],
            media_ports: None,
            media_addr: None,
        };
        let proxy = factory.make(&info, Arc::new(ShardStats::default()));
        // virtual time starts now: after the transaction table's epoch and the prober's start
        let t0 = Instant::now();
        Stateful {
            drv: Driver {
                proxy,
                batches: vec![SendBatch::new(4 * MAX_BATCH, 1 << 20)],
                io: ShardStats::default(),
                local,
                now: t0,
            },
            registry,
            t0,
            next_tick: t0,
            uac: UAC.parse().expect("address"),
            dests: DESTINATIONS.map(|d| d.parse().expect("address")),
            calls: (0..MAX_BATCH).map(|_| Call::new()).collect(),
            next_no: 0,
            per_dest: [0; 2],
            answers: SendBatch::new(64, 64 * MAX),
            probes: 0,
        }
    }

    /// Drive one whole call (a new Call-ID); returns the messages routed (6 when every one
    /// went where it should).
    pub fn call(&mut self) -> Result<usize, Unexpected> {
        self.calls(1, None)
    }

    /// Drive `n` calls (1 ..= [`MAX_BATCH`]) at once, message kind by message kind: their
    /// INVITEs, then their 180s, … then their 200s to the BYE, each kind fed as one receive
    /// batch. With `times`, the router's time per kind and in `tick` is added to it. Virtual
    /// time then advances `n` × [`CALL_SPACING`], and the timers run when a [`TICK`] is due.
    /// Returns the messages routed (6·n).
    pub fn calls(&mut self, n: usize, mut times: Option<&mut Times>) -> Result<usize, Unexpected> {
        assert!((1..=MAX_BATCH).contains(&n), "1 ..= {MAX_BATCH} calls at once, not {n}");
        for c in &mut self.calls[..n] {
            self.next_no += 1;
            c.no = self.next_no;
        }
        let mut routed = 0;
        for (k, step) in Step::ALL.into_iter().enumerate() {
            for c in &mut self.calls[..n] {
                prepare(step, c, self.uac).map_err(|why| fail(step.name(), c.no, why, 0, None))?;
            }
            let started = Instant::now();
            self.drv.proxy.batch_start();
            for c in &mut self.calls[..n] {
                let start = self.drv.batches[0].len();
                let end = self.drv.feed(&c.msg, c.src);
                c.out = (start, end);
            }
            let took = started.elapsed();
            if let Some(t) = times.as_deref_mut() {
                t.step[k] += took;
            }
            let checked = self.check(step, n);
            self.drv.batches[0].clear();
            routed += checked?;
        }
        if let Some(t) = times.as_deref_mut() {
            t.calls += n as u64;
        }
        self.drv.now += CALL_SPACING * n as u32;
        if self.drv.now >= self.next_tick {
            self.tick(times)?;
        }
        Ok(routed)
    }

    /// Run `calls` calls in batches of `batch` (a warm-up: [`WARM_UP_CALLS`] reach the steady
    /// state).
    pub fn run(&mut self, calls: usize, batch: usize) -> Result<usize, Unexpected> {
        let mut left = calls;
        let mut routed = 0;
        while left > 0 {
            let n = left.min(batch);
            routed += self.calls(n, None)?;
            left -= n;
        }
        Ok(routed)
    }

    /// Let `d` of virtual time pass without calls (the timers run every [`TICK`]).
    pub fn idle(&mut self, d: Duration) -> Result<(), Unexpected> {
        let until = self.drv.now + d;
        while self.drv.now < until {
            self.drv.now = (self.drv.now + TICK).min(until);
            if self.drv.now >= self.next_tick {
                self.tick(None)?;
            }
        }
        Ok(())
    }

    /// Run the router's timers now; answer its health probes as their destination would.
    fn tick(&mut self, times: Option<&mut Times>) -> Result<(), Unexpected> {
        self.next_tick = self.drv.now + TICK;
        let started = Instant::now();
        self.drv.tick();
        if let Some(t) = times {
            t.tick += started.elapsed();
        }
        // everything a timer sends must be a probe: every request was answered at once, so
        // there is nothing to retransmit and nothing times out
        let call = self.next_no;
        let mut bad = None;
        self.answers.clear();
        let queued = self.drv.batches[0].len();
        for (to, bytes) in self.drv.batches[0].queued() {
            let Ok(m) = Message::parse(bytes) else {
                bad = Some(fail("tick", call, "unparsable datagram", queued, Some((to, bytes))));
                break;
            };
            let probe = m.method_bytes() == Some(&b"OPTIONS"[..])
                && m.via().is_ok_and(|v| v.branch().is_some_and(|b| b.starts_with(PROBE_BRANCH)))
                && self.dests.contains(&to);
            if !probe {
                bad = Some(fail(
                    "tick",
                    call,
                    "a timer sent something that is not a health probe",
                    queued,
                    Some((to, bytes)),
                ));
                break;
            }
            self.probes += 1;
            let ok = self.answers.push(to, |b| {
                let mut w: &mut [u8] = b;
                let cap = w.len();
                response(&mut w, bytes, "200 OK", 0, None, false).ok()?;
                Some(cap - w.len())
            });
            if !ok {
                bad = Some(fail("tick", call, "no room for the probe answer", queued, Some((to, bytes))));
                break;
            }
        }
        self.drv.batches[0].clear();
        if let Some(e) = bad {
            return Err(e);
        }
        for (from, answer) in self.answers.queued() {
            let queued = self.drv.feed(answer, from);
            if queued != 0 {
                let e = fail("probe answer", call, "the router forwarded a probe answer", queued, None);
                self.drv.batches[0].clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Check what the router queued for message `step` of the first `n` calls; returns the
    /// messages routed.
    fn check(&mut self, step: Step, n: usize) -> Result<usize, Unexpected> {
        let batch = &self.drv.batches[0];
        let name = step.name();
        for c in &mut self.calls[..n] {
            let (start, end) = c.out;
            let queued = end - start;
            let want = if step == Step::Invite { 2 } else { 1 };
            let mut out = batch.queued().skip(start).take(queued);
            if queued != want {
                return Err(fail(name, c.no, "wrong number of datagrams", queued, out.next()));
            }
            let mut cid = [0u8; 64];
            let cid = call_id(c.no, &mut cid);
            if step == Step::Invite {
                // 100 Trying upstream first, then the INVITE downstream
                let (to, trying) = out.next().unwrap_or((self.uac, b""));
                let m = parse(name, c.no, queued, to, trying)?;
                let why = if to != self.uac {
                    Some("100 Trying not sent to the UAC")
                } else if m.status() != Some(100) {
                    Some("the router did not answer 100 Trying first")
                } else if m.call_id().ok() != Some(cid) {
                    Some("100 Trying for another call")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(fail(name, c.no, why, queued, Some((to, trying))));
                }
            }
            let Some((to, bytes)) = out.next() else {
                return Err(fail(name, c.no, "nothing queued", queued, None));
            };
            let m = parse(name, c.no, queued, to, bytes)?;
            let branch = m.via().ok().and_then(|v| v.branch()).unwrap_or(b"");
            let stateful = branch.starts_with(TXN_BRANCH);
            let cid_ok = m.call_id().ok() == Some(cid);
            let why = match step {
                Step::Invite => {
                    let d = self.dests.iter().position(|&d| d == to);
                    if let Some(d) = d {
                        self.per_dest[d] += 1;
                        c.uas = to;
                    }
                    if d.is_none() {
                        Some("INVITE not relayed to a dispatcher destination")
                    } else if m.method_bytes() != Some(&b"INVITE"[..]) {
                        Some("not the INVITE")
                    } else if !stateful {
                        Some("INVITE relayed without a transaction branch (z9hG4bKrsT)")
                    } else if m.vias().count() != 2 {
                        Some("INVITE relayed without exactly the router's Via on top of the UAC's")
                    } else if m.header(HeaderName::RecordRoute) != Some(RECORD_ROUTE) {
                        Some("INVITE relayed without the router's Record-Route")
                    } else if m.max_forwards().ok().flatten() != Some(69) {
                        Some("Max-Forwards not decremented")
                    } else {
                        None
                    }
                }
                Step::Ringing | Step::Ok | Step::ByeOk => {
                    let code = if step == Step::Ringing { 180 } else { 200 };
                    let method: &[u8] = if step == Step::ByeOk { b"BYE" } else { b"INVITE" };
                    if to != self.uac {
                        Some("response not sent to the UAC")
                    } else if m.status() != Some(code) {
                        Some("wrong status")
                    } else if m.cseq().ok().map(|x| x.method) != Some(method) {
                        Some("response to the wrong method")
                    } else if m.vias().count() != 1 || branch.starts_with(TXN_BRANCH) {
                        Some("the router's Via was not removed")
                    } else if step == Step::Ok && m.header(HeaderName::RecordRoute) != Some(RECORD_ROUTE) {
                        Some("the 200 lost its Record-Route")
                    } else if step == Step::Ok && !contact_is(&m, c.uas) {
                        Some("the 200 lost the UAS's Contact")
                    } else {
                        None
                    }
                }
                Step::Ack | Step::Bye => {
                    let method: &[u8] = if step == Step::Ack { b"ACK" } else { b"BYE" };
                    let mut uri = [0u8; 64];
                    let uri = uas_uri(c.uas, &mut uri);
                    if to != c.uas {
                        Some("in-dialog request not sent to the UAS of the call")
                    } else if m.method_bytes() != Some(method) {
                        Some("wrong method")
                    } else if m.request_uri_bytes() != Some(uri) {
                        Some("Request-URI is not the UAS Contact")
                    } else if m.header(HeaderName::Route).is_some() {
                        Some("the router's Route entry was not popped")
                    } else if m.header(HeaderName::RecordRoute).is_some() {
                        Some("in-dialog request record-routed")
                    } else if m.vias().count() != 2 {
                        Some("relayed without exactly the router's Via on top of the UAC's")
                    } else if step == Step::Ack && stateful {
                        Some("the 2xx ACK got a transaction (it is end to end)")
                    } else if step == Step::Ack && !branch.starts_with(b"z9hG4bK") {
                        Some("the ACK has no RFC 3261 branch")
                    } else if step == Step::Bye && !stateful {
                        Some("BYE relayed without a transaction branch (z9hG4bKrsT)")
                    } else {
                        None
                    }
                }
            };
            let why = why.or((!cid_ok).then_some("another call's Call-ID"));
            if let Some(why) = why {
                return Err(fail(name, c.no, why, queued, Some((to, bytes))));
            }
            let keep = match step {
                Step::Invite => Some(&mut c.invite),
                Step::Ok => Some(&mut c.ok),
                Step::Bye => Some(&mut c.bye),
                _ => None,
            };
            if let Some(k) = keep {
                if bytes.len() > MAX {
                    return Err(fail(name, c.no, "longer than the harness keeps", queued, Some((to, bytes))));
                }
                k.clear();
                k.extend_from_slice(bytes);
            }
        }
        Ok(n)
    }

    /// The sum of a metric of this shard over all its labels (`ringsip_transactions`,
    /// `ringsip_retransmissions_sent_total`, `ringsip_drops_total`, …).
    pub fn metric(&self, name: &str) -> u64 {
        let mut sum = 0;
        if let Ok(r) = self.registry.lock() {
            for m in r.iter() {
                m.visit(&mut |x| {
                    if x.name == name {
                        sum += x.value;
                    }
                });
            }
        }
        sum
    }

    /// Live transactions.
    pub fn live(&self) -> u64 {
        self.metric("ringsip_transactions") + self.metric("ringsip_transactions_lingering")
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.drv.now - self.t0
    }

    /// Calls made so far.
    pub fn calls_made(&self) -> u64 {
        self.next_no
    }

    /// INVITEs relayed to each destination ([`DESTINATIONS`] order).
    pub fn per_destination(&self) -> [u64; 2] {
        self.per_dest
    }

    /// Health probes the router sent (and the harness answered).
    pub fn probes(&self) -> u64 {
        self.probes
    }
}

fn fail(
    step: &'static str,
    call: u64,
    why: &'static str,
    queued: usize,
    got: Option<(SocketAddr, &[u8])>,
) -> Unexpected {
    Unexpected { step, call, why, queued, got: got.map(|(to, b)| (to, String::from_utf8_lossy(b).into_owned())) }
}

fn parse<'a>(
    step: &'static str,
    call: u64,
    queued: usize,
    to: SocketAddr,
    b: &'a [u8],
) -> Result<Message<'a>, Unexpected> {
    Message::parse(b).map_err(|_| fail(step, call, "unparsable datagram", queued, Some((to, b))))
}

/// Call `no`'s Call-ID, written into `buf`.
fn call_id(no: u64, buf: &mut [u8; 64]) -> &[u8] {
    let mut w: &mut [u8] = buf;
    let _ = write!(w, "{no}-stateful@203.0.113.45");
    let n = 64 - w.len();
    &buf[..n]
}

/// The UAS Contact URI of `uas`, written into `buf`.
fn uas_uri(uas: SocketAddr, buf: &mut [u8; 64]) -> &[u8] {
    let mut w: &mut [u8] = buf;
    let _ = write!(w, "sip:uas@{uas}");
    let n = 64 - w.len();
    &buf[..n]
}

fn contact_is(m: &Message<'_>, uas: SocketAddr) -> bool {
    let mut buf = [0u8; 64];
    let want = uas_uri(uas, &mut buf);
    matches!(m.contacts().next(), Some(Ok(ContactValue::Addr(a))) if a.uri().as_bytes() == want)
}

/// Write message `step` of call `c` into `c.msg` (and set who sends it).
fn prepare(step: Step, c: &mut Call, uac: SocketAddr) -> Result<(), &'static str> {
    let w = &mut c.msg;
    w.clear();
    let r = match step {
        Step::Invite => {
            c.src = uac;
            invite(w, c.no)
        }
        Step::Ringing => {
            c.src = c.uas;
            response(w, &c.invite, "180 Ringing", c.no, Some(c.uas), false)
        }
        Step::Ok => {
            c.src = c.uas;
            response(w, &c.invite, "200 OK", c.no, Some(c.uas), true)
        }
        Step::Ack | Step::Bye => {
            c.src = uac;
            in_dialog(w, step, c.no, &c.ok)?
        }
        Step::ByeOk => {
            c.src = c.uas;
            response(w, &c.bye, "200 OK", c.no, Some(c.uas), false)
        }
    };
    r.map_err(|_| "the message does not fit")?;
    if w.len() > MAX { Err("the message does not fit") } else { Ok(()) }
}

const SDP: &str = "v=0\r\no=- 3912841163 3912841163 IN IP4 203.0.113.45\r\ns=-\r\nc=IN IP4 203.0.113.46\r\n\
t=0 0\r\nm=audio 16384 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

const UAS_SDP: &str = "v=0\r\no=- 3912841170 3912841170 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// The UAC's INVITE (sipp's uac.xml: a new Call-ID, From tag and branch per call, SDP).
fn invite(w: &mut impl Write, no: u64) -> std::io::Result<()> {
    write!(w, "INVITE sip:+14155550123@127.0.0.1:5060 SIP/2.0\r\n")?;
    write!(w, "Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-{no}-1-INVITE;rport\r\n")?;
    write!(w, "From: sipp <sip:sipp@{UAC}>;tag={no}SIPpTag00\r\n")?;
    write!(w, "To: <sip:+14155550123@127.0.0.1:5060>\r\n")?;
    write!(w, "Call-ID: {no}-stateful@203.0.113.45\r\n")?;
    write!(w, "CSeq: 1 INVITE\r\n")?;
    write!(w, "Contact: <sip:sipp@{UAC}>\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n")?;
    write!(w, "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
}

/// The UAC's ACK or BYE, from the 200 it got (sipp's `rrs="true"`): Request-URI = the
/// Contact, Route = the Record-Route set reversed, To with the UAS's tag; a new branch.
fn in_dialog(w: &mut Vec<u8>, step: Step, no: u64, ok: &[u8]) -> Result<std::io::Result<()>, &'static str> {
    let m = Message::parse(ok).map_err(|_| "the UAC cannot parse the 200 it got")?;
    let Some(Ok(ContactValue::Addr(contact))) = m.contacts().next() else { return Err("the 200 has no Contact") };
    let to = m.header(HeaderName::To).ok_or("the 200 has no To")?;
    let mut rr: [&[u8]; 8] = [b""; 8];
    let mut n = 0;
    for r in m.record_routes() {
        let r = r.map_err(|_| "the 200 has a malformed Record-Route")?;
        *rr.get_mut(n).ok_or("more than 8 Record-Route entries")? = r.uri().as_bytes();
        n += 1;
    }
    let (method, cseq) = if step == Step::Ack { ("ACK", 1) } else { ("BYE", 2) };
    Ok((|| {
        w.write_all(method.as_bytes())?;
        w.write_all(b" ")?;
        w.write_all(contact.uri().as_bytes())?;
        w.write_all(b" SIP/2.0\r\n")?;
        write!(w, "Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-{no}-{cseq}-{method};rport\r\n")?;
        write!(w, "From: sipp <sip:sipp@{UAC}>;tag={no}SIPpTag00\r\n")?;
        w.write_all(b"To: ")?;
        w.write_all(to)?;
        w.write_all(b"\r\n")?;
        write!(w, "Call-ID: {no}-stateful@203.0.113.45\r\n")?;
        write!(w, "CSeq: {cseq} {method}\r\n")?;
        for (k, uri) in rr[..n].iter().rev().enumerate() {
            w.write_all(if k == 0 { b"Route: <" } else { b", <" })?;
            w.write_all(uri)?;
            w.write_all(b">")?;
        }
        if n > 0 {
            w.write_all(b"\r\n")?;
        }
        write!(
            w,
            "Contact: <sip:sipp@{UAC}>\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\nContent-Length: 0\r\n\r\n"
        )
    })())
}

/// A UAS response to the request it got (`req`, as the router relayed it): Via, From, To
/// (with the UAS's tag), Call-ID, CSeq and Record-Route copied; its Contact; SDP or none.
fn response(
    w: &mut impl Write,
    req: &[u8],
    status: &str,
    no: u64,
    contact: Option<SocketAddr>,
    sdp: bool,
) -> std::io::Result<()> {
    write!(w, "SIP/2.0 {status}\r\n")?;
    for line in req.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let copied = ["via", "v", "from", "f", "call-id", "i", "cseq", "record-route"];
        if copied.iter().any(|n| eq(name, n)) {
            w.write_all(line)?;
            w.write_all(b"\r\n")?;
        } else if eq(name, "to") || eq(name, "t") {
            w.write_all(line)?;
            if !line.windows(5).any(|x| x.eq_ignore_ascii_case(b";tag=")) {
                write!(w, ";tag=uas{no}")?;
            }
            w.write_all(b"\r\n")?;
        }
    }
    if let Some(c) = contact {
        write!(w, "Contact: <sip:uas@{c}>\r\n")?;
    }
    if sdp {
        write!(w, "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{UAS_SDP}", UAS_SDP.len())
    } else {
        write!(w, "Content-Length: 0\r\n\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_take_the_real_stateful_path() {
        let mut s = Stateful::new();
        for _ in 0..10 {
            assert_eq!(s.call(), Ok(6));
        }
        assert_eq!(s.per_destination(), [5, 5], "round-robin over both destinations");
        assert_eq!(s.metric("ringsip_transactions_created_total"), 20, "one per INVITE and per BYE");
        // the BYE transactions live on until Timer J (and the INVITE ones, when the proxy
        // keeps an accepted INVITE for 64·T1 too, RFC 6026)
        let live = s.live();
        assert!(live == 10 || live == 20, "{live} live transactions after 10 calls");
        // a batch goes through the same checks
        assert_eq!(s.calls(MAX_BATCH, None), Ok(6 * MAX_BATCH));
        assert!(s.live() >= 10 + MAX_BATCH as u64);
        // 5 s later Timer K has ended the BYE legs, but Timer J (32 s) holds the transactions
        s.idle(Duration::from_secs(6)).unwrap();
        assert!(s.live() >= 10 + MAX_BATCH as u64);
        s.idle(TIMER_J - Duration::from_secs(6) + 2 * TICK).unwrap();
        assert_eq!(s.live(), 0, "every transaction ended by Timer J");
        // the probes went out every 2 s and were answered: the destinations are still up
        assert!(s.probes() >= 2 * 16, "{} probes", s.probes());
        assert_eq!(s.call(), Ok(6));
        assert_eq!(s.per_destination().iter().sum::<u64>(), 11 + MAX_BATCH as u64);
        for m in [
            "ringsip_retransmissions_sent_total",
            "ringsip_branch_timeouts_total",
            "ringsip_drops_total",
            "ringsip_stray_responses_total",
        ] {
            assert_eq!(s.metric(m), 0, "{m}");
        }
    }

    #[test]
    fn a_router_that_misbehaves_fails_the_call() {
        // no record_route: the INVITE goes out without it, and the harness says so
        let mut s = Stateful::with_config(&CONFIG.replace("  \"record_route\",", ""));
        let e = s.call().unwrap_err();
        assert_eq!((e.step, e.why), ("INVITE", "INVITE relayed without the router's Record-Route"), "{e}");
        assert!(e.to_string().contains("INVITE sip:+14155550123@127.0.0.1:5060 SIP/2.0"), "{e}");
        // stateless forwarding of new calls instead of relay: no 100 Trying
        let mut s = Stateful::with_config(&CONFIG.replacen("  \"on_failure failover\",", "", 1).replacen(
            "  \"relay\",\n]",
            "  \"forward\",\n]",
            1,
        ));
        let e = s.call().unwrap_err();
        assert_eq!((e.step, e.why, e.queued), ("INVITE", "wrong number of datagrams", 1), "{e}");
        // a health probe nobody answers takes its destination down: no destination is left,
        // and the router answers 503 itself
        let mut s = Stateful::new();
        s.calls(1, None).unwrap();
        let mut failed = None;
        for _ in 0..10 {
            // the router's timers run, but nobody answers its probes
            s.drv.tick();
            s.drv.batches[0].clear();
            s.drv.now += Duration::from_secs(1);
            s.next_tick = s.drv.now + Duration::from_secs(3600);
            if let Err(e) = s.call() {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("both destinations went down within 10 s of unanswered probes");
        assert_eq!((e.step, e.why), ("INVITE", "wrong number of datagrams"), "{e}");
        assert!(e.got.as_ref().is_some_and(|(_, text)| text.starts_with("SIP/2.0 503 ")), "{e}");
    }
}
