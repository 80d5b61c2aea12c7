//! A shard's media relay state: its port pool and relay table (`ringsip_media::control`),
//! the packet path, the ng control port, anchoring from the SIP route, and the inactivity
//! timeout.
//!
//! The packet path ([`MediaState::packet`]) is one table lookup and a counter: no allocation,
//! no lock, no formatting. Control (ng requests, SDP rewrites) allocates a call's key.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringsip_media::control::{Control, OpError};
use ringsip_media::ng::{Command, Flags, Ice, Request};
use ringsip_media::ports::Pool;
use ringsip_media::relay::{DropReason as MediaDrop, Table, Verdict};
use ringsip_runtime::{Counter, Kind, Metric, Metrics};
use tracing::{debug, info};

/// How often idle calls are looked for.
const EXPIRY_SCAN: Duration = Duration::from_secs(1);

/// The media counters of one shard.
#[derive(Debug, Default)]
pub struct MediaRelayStats {
    /// The shard, as a label value.
    pub shard: String,
    /// Packets forwarded.
    pub forwarded: Counter,
    /// Packets to a port without a session.
    pub no_session: Counter,
    /// Packets from a source other than the latched one.
    pub wrong_source: Counter,
    /// Packets whose other side has no address yet.
    pub no_destination: Counter,
    /// Calls held (gauge).
    pub calls: Counter,
    /// Free ports (gauge).
    pub ports_free: Counter,
    /// ng requests handled.
    pub ng_requests: Counter,
    /// SDP bodies rewritten for the SIP route (offers and answers).
    pub sdp_rewritten: Counter,
    /// SDP the SIP route could not anchor (left as it was), by any reason.
    pub sdp_failed: Counter,
    /// Calls ended by BYE, CANCEL or a failed INVITE.
    pub ended: Counter,
    /// Calls ended by the inactivity timeout.
    pub expired: Counter,
}

impl Metrics for MediaRelayStats {
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
        let labels = [("shard", self.shard.as_str())];
        let mut put = |name: &str, help: &str, kind: Kind, v: u64| {
            sink(&Metric { name, help, kind, labels: &labels, value: v });
        };
        put("ringsip_media_forwarded_total", "media packets relayed", Kind::Counter, self.forwarded.get());
        put(
            "ringsip_media_dropped_no_session_total",
            "media packets to a port with no session (strays, scans, ended calls)",
            Kind::Counter,
            self.no_session.get(),
        );
        put(
            "ringsip_media_dropped_wrong_source_total",
            "media packets from another source than the latched one (strict source)",
            Kind::Counter,
            self.wrong_source.get(),
        );
        put(
            "ringsip_media_dropped_no_destination_total",
            "media packets whose other side has no known address yet",
            Kind::Counter,
            self.no_destination.get(),
        );
        put("ringsip_media_calls", "calls with anchored media", Kind::Gauge, self.calls.get());
        put("ringsip_media_ports_free", "free media ports", Kind::Gauge, self.ports_free.get());
        put("ringsip_media_ng_requests_total", "ng control requests handled", Kind::Counter, self.ng_requests.get());
        put(
            "ringsip_media_sdp_rewritten_total",
            "SDP bodies the SIP route anchored",
            Kind::Counter,
            self.sdp_rewritten.get(),
        );
        put(
            "ringsip_media_sdp_failed_total",
            "SDP bodies the SIP route could not anchor (forwarded unchanged)",
            Kind::Counter,
            self.sdp_failed.get(),
        );
        put("ringsip_media_calls_ended_total", "calls ended by signalling", Kind::Counter, self.ended.get());
        put(
            "ringsip_media_calls_expired_total",
            "calls ended by the inactivity timeout",
            Kind::Counter,
            self.expired.get(),
        );
    }
}

/// What the SIP route asks of an SDP body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SipSdp<'a> {
    pub call_id: &'a [u8],
    pub from_tag: &'a [u8],
    pub to_tag: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// Sent by the From party (a request) or the To party (a response).
    pub from_sender: bool,
    /// An offer that may start the call.
    pub create: bool,
    /// Where the SIP message came from (a NATed phone's real address).
    pub source: IpAddr,
    pub flags: ringsip_config::AnchorFlags,
}

/// One shard's media relay.
pub(crate) struct MediaState {
    control: Control,
    epoch: Instant,
    timeout: Duration,
    next_scan: Instant,
    default_asymmetric: bool,
    /// Rewritten SDP for the message being relayed (`body_len` bytes of it are current).
    pub body: Box<[u8]>,
    pub body_len: Option<usize>,
    pub stats: Arc<MediaRelayStats>,
}

impl MediaState {
    /// The relay of a shard owning `ports`, configured by `cfg`.
    pub fn new(
        cfg: &ringsip_config::Media,
        ports: RangeInclusive<u16>,
        now: Instant,
        stats: Arc<MediaRelayStats>,
    ) -> Result<MediaState, String> {
        let pool =
            Pool::new(ports.clone()).map_err(|e| format!("media ports {}-{}: {e}", ports.start(), ports.end()))?;
        stats.ports_free.set(2 * pool.available() as u64);
        let mut control = Control::new(cfg.advertise, pool, Table::new(ports));
        control.strict_source = cfg.strict_source;
        Ok(MediaState {
            control,
            epoch: now,
            timeout: cfg.timeout,
            next_scan: now + EXPIRY_SCAN,
            // strict source follows latching: without latching there is nothing to be strict about
            default_asymmetric: !cfg.latching,
            body: vec![0u8; 16 * 1024].into_boxed_slice(),
            body_len: None,
            stats,
        })
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// A media packet: where it goes, or `None` (dropped and counted).
    #[inline]
    pub fn packet(&mut self, port: u16, src: SocketAddr, len: usize, now: Instant) -> Option<(u16, SocketAddr)> {
        let now = self.ms(now);
        match self.control.table.packet(port, src, len, now) {
            Verdict::Forward { from_port, to } => {
                self.stats.forwarded.inc();
                Some((from_port, to))
            }
            Verdict::Drop(r) => {
                match r {
                    MediaDrop::NoSession => self.stats.no_session.inc(),
                    MediaDrop::WrongSource => self.stats.wrong_source.inc(),
                    MediaDrop::NoDestination => self.stats.no_destination.inc(),
                }
                None
            }
        }
    }

    /// Ports with no socket: their pairs are never handed out.
    pub fn withhold(&mut self, ports: &[u16]) {
        for &p in ports {
            self.control.withhold(p);
        }
        self.gauges();
    }

    /// An ng control datagram; the reply goes into `reply`.
    pub fn control(&mut self, data: &[u8], now: Instant, reply: &mut [u8]) -> usize {
        self.stats.ng_requests.inc();
        let n = self.control.handle(data, self.ms(now), reply);
        self.gauges();
        n
    }

    fn gauges(&self) {
        self.stats.calls.set(self.control.calls() as u64);
        self.stats.ports_free.set(self.control.ports_free() as u64);
    }

    /// Anchor an SDP body of a SIP message: on success the rewritten body is in
    /// `self.body[..self.body_len]`.
    pub fn sip(&mut self, s: &SipSdp<'_>, now: Instant) -> Result<usize, OpError> {
        self.body_len = None;
        let mut req = Request::new(if s.create { Command::Offer } else { Command::Answer });
        req.call_id = Some(s.call_id);
        req.from_tag = Some(s.from_tag);
        req.to_tag = s.to_tag;
        req.sdp = Some(s.body);
        req.received_from = Some(s.source);
        req.flags = Flags {
            replace_origin: s.flags.replace_origin,
            replace_session_connection: true,
            ice: if s.flags.ice_remove { Ice::Remove } else { Ice::Default },
            symmetric: !(s.flags.asymmetric || self.default_asymmetric),
            asymmetric: s.flags.asymmetric || self.default_asymmetric,
            trust_address: s.flags.trust_address,
            ..Flags::default()
        };
        let now = self.ms(now);
        let r = self.control.sip_sdp(&req, s.from_sender, s.create, now, &mut self.body);
        match r {
            Ok(n) => {
                self.stats.sdp_rewritten.inc();
                self.body_len = Some(n);
            }
            Err(e) => {
                self.stats.sdp_failed.inc();
                debug!(call_id = %String::from_utf8_lossy(s.call_id), error = %e, "SDP not anchored; forwarded as it was");
            }
        }
        self.gauges();
        r
    }

    /// The call's media ends (BYE, CANCEL, a failed INVITE).
    pub fn end(&mut self, call_id: &[u8]) {
        let n = self.control.delete_call(call_id, None);
        self.stats.ended.add(n as u64);
        self.gauges();
    }

    /// Timers: calls without media for the timeout end.
    pub fn tick(&mut self, now: Instant) {
        if now < self.next_scan {
            return;
        }
        self.next_scan = now + EXPIRY_SCAN;
        let Some(since) = self.ms(now).checked_sub(self.timeout.as_millis() as u64) else { return };
        let n = self.control.expire(since);
        if n > 0 {
            self.stats.expired.add(n as u64);
            info!(calls = n, timeout_s = self.timeout.as_secs(), "media of idle calls ended (no packets)");
        }
        self.gauges();
    }
}
