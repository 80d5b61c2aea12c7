//! `ringsip-bench rtp --sip-rate`: SIP calls through ringsip while the RTP blasts, placed and
//! answered by `ringsip-bench stateful`'s load generator (`bench::loadgen`, its own thread on
//! the generator CPUs): INVITE with an SDP offer (`m=audio 6000`, `c=IN IP4` the UAC's address),
//! 100 Trying from the proxy (absorbed), 180, 200 with an SDP answer, ACK and BYE along the
//! route set, 200. With `config/examples/media.toml` ringsip record-routes and anchors every
//! one of these calls (two relay port pairs from the same pool as the ng calls' for the length
//! of the call), so the relay's CPU over the blast includes the SIP work.
//!
//! Besides the generator's figures (attempted, answered, failed, retransmissions, call setup
//! latency) the SDP ringsip anchored or could not anchor over the load is read from its
//! metrics (`ringsip_media_sdp_rewritten_total`, `ringsip_media_sdp_failed_total`) when its
//! configuration has a `metrics` address; they are scraped outside the relay's CPU window.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::loadgen::{Counters, GenConfig, GenHandle, LoadSpec, LoadStats};
use crate::bench::procfs;
use crate::bench::report::Latency;
use crate::bench::timer;

/// First retransmission interval of INVITE/BYE and the response timeout (`stateful`'s
/// defaults: sipp's `retrans="500"` and `-recv_timeout 8000`).
const T1_MS: u64 = 500;
const TIMEOUT_MS: u64 = 8_000;
/// Calls due within one tick start together (`stateful`'s `--tick-us` default).
const TICK_NS: u64 = 1_000_000;
/// The generator's socket buffers.
const SOCK_BUF: usize = 4 * 1024 * 1024;

/// The SIP load of one blast, from the generator's side (and ringsip's metrics).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct SipResult {
    /// offered calls/s
    pub rate_cps: f64,
    /// ringsip's SIP address, the UAS and the UAC
    pub target: String,
    pub uas: String,
    pub uac: String,
    /// where the generator thread runs (shared with the RTP sender)
    pub gen_cpus: String,
    /// rate x blast duration
    pub planned: u64,
    pub attempted: u64,
    /// calls completed: INVITE answered 200, ACK, BYE answered 200
    pub succeeded: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fail_reasons: BTreeMap<String, u64>,
    /// status -> count of unexpected final responses
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unexpected_statuses: BTreeMap<String, u64>,
    /// retransmissions: the UAC's INVITE and BYE, the UAS's 200 (until ACK) and answers to
    /// retransmitted requests
    pub retrans_uac_invite: u64,
    pub retrans_uac_bye: u64,
    pub retrans_uas: u64,
    pub acks_resent: u64,
    /// 100 Trying from ringsip (stateful: one per INVITE)
    pub trying_rx: u64,
    /// calls whose 200 carried ringsip's Record-Route
    pub route_set_calls: u64,
    /// INVITE -> 200 and BYE -> 200, µs
    pub setup_latency_us: Latency,
    pub bye_latency_us: Latency,
    /// first INVITE to the end of the last call
    pub load_s: f64,
    /// calls started per second (first to last INVITE)
    pub attempted_cps: f64,
    /// the generator thread's CPU over the load, and % of one core
    pub gen_cpu_s: f64,
    pub gen_cpu_pct: f64,
    /// worst lateness of a call start behind its schedule
    pub gen_max_lag_ms: f64,
    pub stray_msgs: u64,
    pub gen_send_errors: u64,
    /// drops at ringsip's SIP socket and at the generator's (/proc/net/udp)
    pub relay_sock_drops: u64,
    pub gen_sock_drops: u64,
    /// SDP bodies ringsip anchored (offers and answers: 2 per call) and could not anchor over
    /// the load (its metrics; absent without a metrics address)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdp_anchored: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdp_failed: Option<u64>,
    /// the load was cut short (interrupted, relay died, or calls still pending long after)
    pub aborted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SipResult {
    /// Did any SIP call fail (or the load not run as planned)?
    pub(crate) fn any_failed(&self) -> bool {
        self.failed > 0 || self.error.is_some() || self.aborted || self.attempted < self.planned
    }

    pub(crate) fn retrans(&self) -> u64 {
        self.retrans_uac_invite + self.retrans_uac_bye + self.retrans_uas
    }

    /// Why the load is not clean, for the rate search and the notes (`None`: every call ok).
    pub(crate) fn failure(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("SIP: {e}"));
        }
        if !self.any_failed() {
            return None;
        }
        let mut why = format!("{} of {} SIP calls failed ({} planned)", self.failed, self.attempted, self.planned);
        let mut parts: Vec<String> = self.fail_reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        parts.extend(self.unexpected_statuses.iter().map(|(k, v)| format!("status {k}: {v}")));
        if self.aborted {
            parts.push("load aborted".into());
        }
        if !parts.is_empty() {
            why.push_str(&format!(": {}", parts.join(", ")));
        }
        Some(why)
    }

    /// The generator's figures of one load (`c0`, `c1`: the counters around it).
    pub(crate) fn fill_from(&mut self, st: &LoadStats, c0: &Counters, c1: &Counters) {
        self.attempted = st.attempted;
        self.succeeded = st.succeeded;
        self.failed = st.failed;
        self.aborted |= st.aborted;
        self.fail_reasons.extend(st.fail_reasons());
        self.unexpected_statuses = st.unexpected_statuses();
        self.retrans_uac_invite = st.retrans_invite;
        self.retrans_uac_bye = st.retrans_bye;
        self.retrans_uas = c1.uas_retrans.saturating_sub(c0.uas_retrans);
        self.acks_resent = st.acks_resent;
        self.trying_rx = c1.uac_rx_100.saturating_sub(c0.uac_rx_100);
        self.route_set_calls = c1.uac_rx_route_set.saturating_sub(c0.uac_rx_route_set);
        self.stray_msgs =
            c1.uac_rx_stray.saturating_sub(c0.uac_rx_stray) + c1.uas_rx_stray.saturating_sub(c0.uas_rx_stray);
        self.gen_send_errors = c1.send_errors.saturating_sub(c0.send_errors);
        self.setup_latency_us = Latency::from(&st.setup);
        self.bye_latency_us = Latency::from(&st.bye);
        self.load_s = st.load_s;
        self.attempted_cps =
            if st.attempted > 1 && st.start_s > 0.0 { (st.attempted - 1) as f64 / st.start_s } else { f64::NAN };
        self.gen_cpu_s = st.gen_cpu_s;
        self.gen_cpu_pct = if st.load_s > 0.0 { 100.0 * st.gen_cpu_s / st.load_s } else { f64::NAN };
        self.gen_max_lag_ms = st.max_lag_ms;
    }
}

/// The SIP generator of the run (started once, used by every blast through ringsip).
pub(crate) struct SipGen {
    lg: GenHandle,
    pub target: SocketAddrV4,
    pub uas: SocketAddrV4,
    pub uac: SocketAddrV4,
    pub rate: f64,
    pub cpus: String,
    /// ringsip's metrics (from its configuration)
    pub metrics: Option<SocketAddr>,
}

/// Counters before a load.
pub(crate) struct Before {
    c0: Counters,
    m0: Option<(u64, u64)>,
    rdrops0: u64,
    gdrops0: u64,
    planned: u64,
}

impl SipGen {
    /// Bind the UAC and UAS sockets and start the generator thread on `cpus`.
    pub(crate) fn start(
        target: SocketAddrV4,
        uas: SocketAddrV4,
        uac: SocketAddrV4,
        rate: f64,
        cpus: &[usize],
        metrics: Option<SocketAddr>,
    ) -> std::io::Result<SipGen> {
        let lg = GenHandle::start(GenConfig {
            uac: vec![uac],
            uas: vec![uas],
            sock_buf: SOCK_BUF,
            t1_ms: T1_MS,
            timeout_ms: TIMEOUT_MS,
            cpus: cpus.to_vec(),
            dial: None,
        })?;
        Ok(SipGen { lg, target, uas, uac, rate, cpus: procfs::cpu_list_string(cpus), metrics })
    }

    /// Wait until an OPTIONS through ringsip reaches the UAS and its 200 comes back.
    pub(crate) fn wait_routing(&self, mut alive: impl FnMut() -> bool, stop: &AtomicBool) -> Result<(), String> {
        let k0 = self.lg.counters().probe_ok;
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            self.lg.probe(self.target);
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(10));
                if self.lg.counters().probe_ok > k0 {
                    return Ok(());
                }
            }
            if !alive() {
                return Err("the relay died".into());
            }
            if Instant::now() > end || stop.load(Ordering::Relaxed) {
                return Err(format!(
                    "ringsip did not route an OPTIONS from {} via {} to the UAS {} and back within 10 s",
                    self.uac, self.target, self.uas
                ));
            }
        }
    }

    /// Snapshot the counters (and ringsip's metrics: call this outside the CPU window).
    pub(crate) fn before(&self, duration_s: f64) -> Before {
        Before {
            c0: self.lg.counters(),
            m0: self.metrics.and_then(scrape_sdp),
            rdrops0: procfs::sock_drops(&[self.target.port()]),
            gdrops0: procfs::sock_drops(&[self.uas.port(), self.uac.port()]),
            planned: timer::calls_for(self.rate, duration_s),
        }
    }

    /// Start placing the calls (returns at once: the generator thread paces them).
    pub(crate) fn start_load(&self, b: &Before) {
        self.lg.start_load(LoadSpec {
            target: self.target,
            rate: self.rate,
            calls: b.planned,
            tick_ns: TICK_NS,
            samples: false,
        });
    }

    /// Wait for the load's end (aborting it when the relay dies, on interruption, or when calls
    /// are still pending two timeouts after the window) and collect the figures.
    pub(crate) fn finish(&self, b: Before, mut alive: impl FnMut() -> bool, stop: &AtomicBool) -> SipResult {
        let mut r = SipResult {
            rate_cps: self.rate,
            target: self.target.to_string(),
            uas: self.uas.to_string(),
            uac: self.uac.to_string(),
            gen_cpus: self.cpus.clone(),
            planned: b.planned,
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_millis(2 * TIMEOUT_MS + 2_000);
        let mut aborted_at: Option<Instant> = None;
        let stats = loop {
            match self.lg.wait_done(Duration::from_millis(100)) {
                Ok(s) => break Some(s),
                Err(RecvTimeoutError::Disconnected) => break None,
                Err(RecvTimeoutError::Timeout) => match aborted_at {
                    None if !alive() || stop.load(Ordering::Relaxed) || Instant::now() > deadline => {
                        self.lg.abort();
                        aborted_at = Some(Instant::now());
                        r.aborted = true;
                    }
                    Some(t) if t.elapsed() > Duration::from_secs(5) => break None,
                    _ => {}
                },
            }
        };
        let c1 = self.lg.counters();
        match stats {
            Some(st) => r.fill_from(&st, &b.c0, &c1),
            None => r.error = Some("the SIP generator did not report the load's end".into()),
        }
        r.relay_sock_drops = procfs::sock_drops(&[self.target.port()]).saturating_sub(b.rdrops0);
        r.gen_sock_drops = procfs::sock_drops(&[self.uas.port(), self.uac.port()]).saturating_sub(b.gdrops0);
        if let (Some(m0), Some(m1)) = (b.m0, self.metrics.and_then(scrape_sdp)) {
            r.sdp_anchored = Some(m1.0.saturating_sub(m0.0));
            r.sdp_failed = Some(m1.1.saturating_sub(m0.1));
        }
        r
    }
}

/// ringsip's (SDP anchored, SDP not anchored) counters, summed over its shards.
fn scrape_sdp(addr: SocketAddr) -> Option<(u64, u64)> {
    let text = scrape(addr).ok()?;
    Some((
        sum_metric(&text, "ringsip_media_sdp_rewritten_total")?,
        sum_metric(&text, "ringsip_media_sdp_failed_total").unwrap_or(0),
    ))
}

/// `GET /metrics` of a Prometheus text endpoint.
fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let t = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, t)?;
    s.set_read_timeout(Some(t))?;
    s.set_write_timeout(Some(t))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: ringsip\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The sum of every sample of metric `name` (any labels) in Prometheus text; `None` when
/// there is none.
pub(crate) fn sum_metric(text: &str, name: &str) -> Option<u64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        if &line[..end] != name {
            continue;
        }
        let v = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = v {
            *sum.get_or_insert(0) += v.max(0.0) as u64;
        }
    }
    sum
}

/// The value of the first `key = ...` line of a TOML text (`"..."` quotes removed, a
/// trailing comment dropped). Enough for the flat keys of ringsip's example configs.
pub(crate) fn config_value(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix(key) else { continue };
        let Some(v) = rest.trim_start().strip_prefix('=') else { continue };
        let v = v.trim();
        if let Some(q) = v.strip_prefix('"') {
            return q.split('"').next().map(str::to_string);
        }
        return Some(v.split('#').next().unwrap_or("").trim().to_string());
    }
    None
}

/// `"30000-39999"` as a range.
pub(crate) fn parse_port_range(s: &str) -> Option<RangeInclusive<u16>> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some(a..=b)
}

/// The named ports and port ranges of `reserved` that lie in the ports `legs` (our RTP legs).
pub(crate) fn clashes(legs: &RangeInclusive<u32>, reserved: &[(String, RangeInclusive<u32>)]) -> Vec<String> {
    reserved
        .iter()
        .filter(|(_, r)| r.start() <= legs.end() && legs.start() <= r.end())
        .map(|(name, r)| {
            if r.start() == r.end() {
                format!("{name} ({})", r.start())
            } else {
                format!("{name} ({}-{})", r.start(), r.end())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::hist::Histogram;

    #[test]
    fn rtp_sip_result_from_load_and_failure() {
        let mut setup = Histogram::new();
        for us in [900, 1000, 1100, 5000] {
            setup.record(us);
        }
        let st = LoadStats {
            attempted: 4,
            succeeded: 4,
            setup,
            retrans_invite: 1,
            load_s: 2.0,
            start_s: 1.5,
            gen_cpu_s: 0.02,
            ..Default::default()
        };
        let c0 = Counters { uac_rx_100: 10, uac_rx_route_set: 10, uas_retrans: 1, ..Default::default() };
        let c1 = Counters { uac_rx_100: 14, uac_rx_route_set: 14, uas_retrans: 3, ..Default::default() };
        let mut r = SipResult { planned: 4, ..Default::default() };
        r.fill_from(&st, &c0, &c1);
        assert_eq!((r.attempted, r.succeeded, r.failed, r.trying_rx, r.route_set_calls), (4, 4, 0, 4, 4));
        assert_eq!((r.retrans_uac_invite, r.retrans_uas, r.retrans()), (1, 2, 3));
        assert_eq!(r.setup_latency_us.n, 4);
        assert!(r.setup_latency_us.p50.unwrap() >= 1000 && r.setup_latency_us.p50.unwrap() < 1100);
        assert_eq!(r.setup_latency_us.max, Some(5000));
        assert!((r.gen_cpu_pct - 1.0).abs() < 1e-9 && (r.attempted_cps - 2.0).abs() < 1e-9);
        // retransmissions alone are not a failure
        assert!(!r.any_failed() && r.failure().is_none());

        let mut unexpected = BTreeMap::new();
        unexpected.insert(503u16, 1u64);
        let st = LoadStats {
            attempted: 3,
            succeeded: 1,
            failed: 2,
            fail_timeout_invite: 1,
            fail_unexpected: 1,
            unexpected,
            ..Default::default()
        };
        let mut r = SipResult { planned: 4, ..Default::default() };
        r.fill_from(&st, &Counters::default(), &Counters::default());
        assert!(r.any_failed());
        let why = r.failure().unwrap();
        assert!(why.starts_with("2 of 3 SIP calls failed (4 planned)"), "{why}");
        assert!(why.contains("timeout_invite 1") && why.contains("status 503: 1"), "{why}");
        // fewer calls than planned (cut short) fails too
        let mut r = SipResult { planned: 4, attempted: 3, succeeded: 3, ..Default::default() };
        assert!(r.any_failed());
        r.attempted = 4;
        r.succeeded = 4;
        assert!(!r.any_failed());
        r.error = Some("x".into());
        assert_eq!(r.failure().as_deref(), Some("SIP: x"));
        let j = serde_json::to_value(SipResult { sdp_anchored: Some(8), ..Default::default() }).unwrap();
        assert_eq!(j["sdp_anchored"].as_u64(), Some(8));
        assert!(j.get("sdp_failed").is_none() && j.get("error").is_none() && j.get("fail_reasons").is_none());
        assert!(j["setup_latency_us"].get("p99").is_some());
    }

    #[test]
    fn rtp_sip_metrics_and_config_parsing() {
        let m = "# HELP ringsip_media_sdp_rewritten_total x\n# TYPE ringsip_media_sdp_rewritten_total counter\n\
                 ringsip_media_sdp_rewritten_total{shard=\"0\"} 10\nringsip_media_sdp_rewritten_total{shard=\"1\"} 6\n\
                 ringsip_media_sdp_rewritten_totally 99\nringsip_media_sdp_failed_total 2\n";
        assert_eq!(sum_metric(m, "ringsip_media_sdp_rewritten_total"), Some(16));
        assert_eq!(sum_metric(m, "ringsip_media_sdp_failed_total"), Some(2));
        assert_eq!(sum_metric(m, "ringsip_media_calls"), None);

        let media = include_str!("../../../../config/examples/media.toml");
        assert_eq!(config_value(media, "metrics").as_deref(), Some("127.0.0.1:9090"));
        assert_eq!(config_value(media, "ports").as_deref(), Some("30000-39999"));
        assert!(media.contains("udp:127.0.0.1:5060") && media.contains("sip:127.0.0.1:5080"));
        assert_eq!(config_value("timeout = 60 # s\n", "timeout").as_deref(), Some("60"));
        assert_eq!(config_value("metricsx = \"a\"\n", "metrics"), None);
        assert_eq!(parse_port_range("30000-39999"), Some(30000..=39999));
        assert_eq!(parse_port_range("9-1"), None);
        assert_eq!(parse_port_range("x"), None);
    }

    #[test]
    fn rtp_port_clashes() {
        let reserved = vec![
            ("ng".to_string(), 2223..=2223),
            ("SIP".to_string(), 5060..=5060),
            ("UAS".to_string(), 5080..=5080),
            ("media".to_string(), 30000..=39999),
        ];
        // the defaults: 2500 calls from 40000
        assert!(clashes(&(40000..=49999), &reserved).is_empty());
        assert_eq!(clashes(&(5000..=5079), &reserved), vec!["SIP (5060)"]);
        assert_eq!(clashes(&(5080..=5080), &reserved), vec!["UAS (5080)"]);
        assert_eq!(clashes(&(39000..=40999), &reserved), vec!["media (30000-39999)"]);
        assert_eq!(clashes(&(1..=65535), &reserved).len(), 4);
    }
}
