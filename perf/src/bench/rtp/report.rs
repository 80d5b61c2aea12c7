//! The RTP benchmark's result (rtp_bench.py's `RESULT` keys, plus order, jitter and the idle
//! subtraction of `lb`), the comparison of the relays, and the human table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::super::report::align;
use super::sipload::SipResult;
use super::stats::RxSummary;

/// One blast through one relay.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RtpResult {
    pub relay: String,
    pub rep: u32,
    /// rate search step (1-based)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub relay_cpus: String,
    pub gen_cpus: String,
    pub sink: String,
    pub calls: usize,
    pub streams: usize,
    pub pps_per_stream: f64,
    /// calls x 2 x pps
    pub offered_pps: f64,
    pub duration_s: f64,
    pub rtp_bytes: usize,
    pub tick_ms: f64,
    /// ng offer + answer of every call, s
    pub setup_s: f64,
    pub sent: u64,
    /// the receive side: received, lost, loss %, reordered, duplicates, latency, jitter
    #[serde(flatten)]
    pub rx: RxSummary,
    /// sent / time the sender took
    pub achieved_send_pps: f64,
    pub sender_max_lag_ms: f64,
    pub send_errors: u64,
    pub gen_send_cpu_s: f64,
    /// the sending thread's CPU over the blast, % of its core
    pub gen_send_cpu_pct: f64,
    pub gen_sink_cpu_s: f64,
    /// blast + drain: the relay CPU window, s
    pub window_s: f64,
    pub relay_user_s: f64,
    pub relay_sys_s: f64,
    /// utime + stime over the window
    pub relay_cpu_s: f64,
    /// schedstat sum_exec_runtime over the window
    pub relay_cpu_sched_s: f64,
    pub relay_threads: usize,
    /// relay CPU with the calls up and no media, % of one core (subtracted below)
    pub relay_idle_cpu_pct: f64,
    /// (schedstat CPU - idle rate x window) / received
    pub us_per_pkt_sched: f64,
    /// (utime+stime - idle rate x window) / received
    pub us_per_pkt: f64,
    /// as rtp_bench.py prints them: no idle subtraction
    pub us_per_pkt_sched_raw: f64,
    pub us_per_pkt_raw: f64,
    /// relay CPU over the window, % of one core (schedstat)
    pub relay_util_sched_pct: f64,
    /// times the relay's threads were scheduled in, per received packet
    pub relay_wakeups_per_pkt: f64,
    /// /proc/net/snmp Udp RcvbufErrors and InErrors deltas over the window (whole machine)
    pub udp_rcvbuf_errors: u64,
    pub udp_in_errors: u64,
    /// drops of the relay's media sockets and of ours (/proc/net/udp)
    pub relay_sock_drops: u64,
    pub gen_sock_drops: u64,
    /// CPU of other processes during the blast, % of one core
    pub other_cpu_pct: f64,
    pub deleted: u64,
    pub delete_errors: Vec<String>,
    pub sink_errors: Vec<String>,
    pub relay_alive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_exit: Option<String>,
    /// `--sip-rate`: the SIP calls placed through the relay during the blast (ringsip only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RtpResult {
    /// Did the sender keep the offered rate (within 3 %, all packets sent)?
    pub(crate) fn generator_limited(&self) -> bool {
        let planned = (self.offered_pps * self.duration_s) as u64;
        self.sent < planned || self.achieved_send_pps < 0.97 * self.offered_pps
    }

    /// Loss-free, complete, not generator-limited, and (with `--sip-rate`) no SIP call failed.
    pub(crate) fn clean(&self) -> bool {
        self.error.is_none()
            && self.relay_alive
            && self.sent > 0
            && self.rx.lost == 0
            && !self.generator_limited()
            && !self.sip_failed()
    }

    /// With `--sip-rate`: did a SIP call fail (or the SIP load not run as planned)?
    pub(crate) fn sip_failed(&self) -> bool {
        self.sip.as_ref().is_some_and(SipResult::any_failed)
    }
}

/// A rate search through one relay: calls stepped up until a step loses packets.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RateSearch {
    pub relay: String,
    pub rep: u32,
    pub steps: Vec<RtpResult>,
    /// the highest loss-free step
    pub max_clean_calls: Option<usize>,
    pub max_clean_pps: Option<f64>,
    pub stopped_at_calls: Option<usize>,
    pub stop_reason: String,
    /// relay CPUs (ringsip: one shard each) and the highest loss-free rate per one
    pub relay_shards: usize,
    pub max_clean_pps_per_shard: Option<f64>,
    /// `--sip-rate`: SIP calls/s placed through the relay during every step (a step passes only
    /// when no SIP call failed)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_rate_cps: Option<f64>,
}

/// The relays side by side: median µs per packet over the repetitions, and the main relay's
/// ratio to each other one (`ringsip/rtpengine`, `ringsip/rtp-floor`).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Comparison {
    pub us_per_pkt_sched: BTreeMap<String, f64>,
    pub ratios: BTreeMap<String, f64>,
    /// rate search: highest loss-free packets/s (median over the repetitions)
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub max_clean_pps: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub max_clean_pps_ratios: BTreeMap<String, f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

fn medians(items: impl Iterator<Item = (String, f64)>) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (k, v) in items {
        by.entry(k).or_default().push(v);
    }
    by.into_iter().filter_map(|(k, v)| median(v).map(|m| (k, m))).collect()
}

fn ratios(m: &BTreeMap<String, f64>, main: &str) -> BTreeMap<String, f64> {
    let Some(&x) = m.get(main) else { return BTreeMap::new() };
    m.iter().filter(|(k, v)| k.as_str() != main && **v > 0.0).map(|(k, v)| (format!("{main}/{k}"), x / v)).collect()
}

/// Compare the runs (clean or not: CPU per packet is meaningful with some loss; runs with an
/// error or a dead relay are left out) and the rate searches.
pub(crate) fn compare(runs: &[RtpResult], searches: &[RateSearch], main: &str) -> Comparison {
    let us = medians(
        runs.iter().filter(|r| r.error.is_none() && r.relay_alive).map(|r| (r.relay.clone(), r.us_per_pkt_sched)),
    );
    let pps = medians(searches.iter().filter_map(|s| s.max_clean_pps.map(|p| (s.relay.clone(), p))));
    Comparison {
        ratios: ratios(&us, main),
        max_clean_pps_ratios: ratios(&pps, main),
        us_per_pkt_sched: us,
        max_clean_pps: pps,
    }
}

fn f(v: f64, prec: usize) -> String {
    if v.is_finite() { format!("{v:.prec$}") } else { "-".into() }
}

fn of(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |v| f(v, prec))
}

/// The aligned table of `rows`.
pub(crate) fn table(rows: &[RtpResult]) -> String {
    let head = [
        "relay", "calls", "offered", "sent", "received", "lost", "loss", "reord", "dup", "lat p50", "p99", "max",
        "jitter", "us/pkt", "us/pkt", "relay", "drops", "gen",
    ];
    let head2 =
        ["", "", "pps", "", "", "", "%", "", "", "us", "us", "us", "us", "sched", "u+s", "CPU %", "rcvbuf", "CPU %"];
    let mut cells: Vec<Vec<String>> =
        vec![head.iter().map(|s| s.to_string()).collect(), head2.iter().map(|s| s.to_string()).collect()];
    for r in rows.iter().filter(|r| r.error.is_none()) {
        cells.push(vec![
            row_name(r),
            r.calls.to_string(),
            f(r.offered_pps, 0),
            r.sent.to_string(),
            r.rx.received.to_string(),
            r.rx.lost.to_string(),
            f(r.rx.loss_pct, 3),
            r.rx.reordered.to_string(),
            r.rx.duplicates.to_string(),
            of(r.rx.lat_p50_us, 1),
            of(r.rx.lat_p99_us, 1),
            of(r.rx.lat_max_us, 0),
            of(r.rx.jitter_mean_us, 1),
            f(r.us_per_pkt_sched, 3),
            f(r.us_per_pkt, 2),
            f(r.relay_util_sched_pct, 1),
            r.udp_rcvbuf_errors.to_string(),
            f(r.gen_send_cpu_pct, 1),
        ]);
    }
    align(&cells)
}

fn row_name(r: &RtpResult) -> String {
    match r.step {
        Some(s) => format!("{} #{s}", r.relay),
        None if r.rep > 1 => format!("{} ({})", r.relay, r.rep),
        None => r.relay.clone(),
    }
}

fn lat(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// `--sip-rate`: the SIP calls of the rows that placed them (empty when none did).
pub(crate) fn sip_table(rows: &[RtpResult]) -> String {
    let head = [
        "relay",
        "calls",
        "SIP",
        "planned",
        "attempted",
        "ok",
        "failed",
        "retrans",
        "setup p50",
        "p99",
        "max",
        "BYE p99",
        "SDP",
        "gen",
        "",
    ];
    let head2 = ["", "(RTP)", "calls/s", "", "", "", "", "uac/uas", "us", "us", "us", "us", "anchored", "CPU %", ""];
    let mut cells: Vec<Vec<String>> =
        vec![head.iter().map(|s| s.to_string()).collect(), head2.iter().map(|s| s.to_string()).collect()];
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let Some(s) = &r.sip else { continue };
        cells.push(vec![
            row_name(r),
            r.calls.to_string(),
            f(s.rate_cps, 0),
            s.planned.to_string(),
            s.attempted.to_string(),
            s.succeeded.to_string(),
            s.failed.to_string(),
            format!("{}/{}", s.retrans_uac_invite + s.retrans_uac_bye, s.retrans_uas),
            lat(s.setup_latency_us.p50),
            lat(s.setup_latency_us.p99),
            lat(s.setup_latency_us.max),
            lat(s.bye_latency_us.p99),
            s.sdp_anchored.map_or("-".into(), |v| v.to_string()),
            f(s.gen_cpu_pct, 1),
            if s.any_failed() { "FAILED".into() } else { String::new() },
        ]);
    }
    if cells.len() == 2 {
        return String::new();
    }
    align(&cells)
}

/// Per-row details and warnings.
pub(crate) fn notes(rows: &[RtpResult]) -> String {
    let mut out = String::new();
    for r in rows {
        let mut label = format!("{} (rep {}", r.relay, r.rep);
        if let Some(s) = r.step {
            let _ = write!(label, ", step {s}");
        }
        let _ = write!(label, ", {} calls)", r.calls);
        if let Some(e) = &r.error {
            let _ = writeln!(out, "{label}: ERROR {e}");
            continue;
        }
        if !r.relay_alive {
            let _ = writeln!(out, "{label}: RELAY DIED during the run ({})", r.relay_exit.as_deref().unwrap_or("?"));
        }
        if r.other_cpu_pct > 10.0 {
            let _ = writeln!(
                out,
                "{label}: WARNING other processes used {:.0} % of a core during the blast: the figures are disturbed",
                r.other_cpu_pct
            );
        }
        if r.generator_limited() {
            let _ = writeln!(
                out,
                "{label}: WARNING the sender did not keep the offered rate ({} of {} pps, {} packets): \
                 generator-limited",
                f(r.achieved_send_pps, 0),
                f(r.offered_pps, 0),
                r.sent
            );
        }
        if r.gen_sock_drops > 0 {
            let _ = writeln!(
                out,
                "{label}: WARNING {} packets dropped at the benchmark's own sockets (receive buffers full): \
                 that loss is not the relay's; use a larger --sock-buf, a shorter --duration or --sink live",
                r.gen_sock_drops
            );
        }
        let _ = writeln!(
            out,
            "{label}: relay {:.3} s CPU sched / {:.2} s u+s over {:.2} s, {} threads, idle {:.3} % (subtracted; \
             without: {} us/pkt sched, {} u+s), {} wake-ups/pkt; {} unique, {} stray, {} misdirected, lat p99.9 {} us, \
             jitter max {} us; sender {} pps achieved, max lag {} ms, {} send errors, {} us CPU/pkt; sink {:.3} s CPU; \
             relay socket drops {}, InErrors {}; setup {:.2} s, deleted {}/{}; other processes {} % CPU",
            r.relay_cpu_sched_s,
            r.relay_cpu_s,
            r.window_s,
            r.relay_threads,
            r.relay_idle_cpu_pct,
            f(r.us_per_pkt_sched_raw, 3),
            f(r.us_per_pkt_raw, 2),
            f(r.relay_wakeups_per_pkt, 3),
            r.rx.unique,
            r.rx.stray,
            r.rx.misdirected,
            of(r.rx.lat_p999_us, 1),
            of(r.rx.jitter_max_us, 1),
            f(r.achieved_send_pps, 0),
            f(r.sender_max_lag_ms, 2),
            r.send_errors,
            f(if r.sent > 0 { r.gen_send_cpu_s * 1e6 / r.sent as f64 } else { f64::NAN }, 2),
            r.gen_sink_cpu_s,
            r.relay_sock_drops,
            r.udp_in_errors,
            r.setup_s,
            r.deleted,
            r.calls,
            f(r.other_cpu_pct, 1),
        );
        if let Some(s) = &r.sip {
            sip_notes(&mut out, &label, s);
        }
        for e in r.delete_errors.iter().take(3) {
            let _ = writeln!(out, "{label}: delete failed: {e}");
        }
        for e in r.sink_errors.iter().take(3) {
            let _ = writeln!(out, "{label}: receive error: {e}");
        }
    }
    out
}

/// The SIP calls of one row: the figures, and warnings.
fn sip_notes(out: &mut String, label: &str, s: &SipResult) {
    if let Some(why) = s.failure() {
        let _ = writeln!(out, "{label}: WARNING SIP calls failed: {why}");
    }
    let _ = writeln!(
        out,
        "{label}: SIP {} attempted ({} planned, {} calls/s through {}, UAS {}, UAC {}), {} ok, {} failed; \
         retransmissions INVITE {} BYE {} UAS {}, ACKs re-sent {}; 100 Trying {}, route sets {}; setup p50/p99/max \
         {}/{}/{} us, BYE p50/p99 {}/{} us; SDP anchored {}, not anchored {}; generator thread on CPUs {} (shared \
         with the RTP sender) {} % CPU, max lag {} ms; SIP socket drops relay {} generator {}, {} stray; us per \
         packet includes the SIP calls' work",
        s.attempted,
        s.planned,
        f(s.rate_cps, 0),
        s.target,
        s.uas,
        s.uac,
        s.succeeded,
        s.failed,
        s.retrans_uac_invite,
        s.retrans_uac_bye,
        s.retrans_uas,
        s.acks_resent,
        s.trying_rx,
        s.route_set_calls,
        lat(s.setup_latency_us.p50),
        lat(s.setup_latency_us.p99),
        lat(s.setup_latency_us.max),
        lat(s.bye_latency_us.p50),
        lat(s.bye_latency_us.p99),
        s.sdp_anchored.map_or("-".into(), |v| v.to_string()),
        s.sdp_failed.map_or("-".into(), |v| v.to_string()),
        s.gen_cpus,
        f(s.gen_cpu_pct, 1),
        f(s.gen_max_lag_ms, 2),
        s.relay_sock_drops,
        s.gen_sock_drops,
        s.stray_msgs,
    );
    if let Some(n) = s.sdp_anchored {
        // an offer and an answer per answered call
        if n < 2 * s.succeeded {
            let _ = writeln!(
                out,
                "{label}: WARNING ringsip anchored {n} SDP bodies for {} answered calls (2 each expected): not every \
                 call's media went through the relay",
                s.succeeded
            );
        }
    }
    if let Some(n) = s.sdp_failed.filter(|&n| n > 0) {
        let _ =
            writeln!(out, "{label}: WARNING ringsip could not anchor {n} SDP bodies (ringsip_media_sdp_failed_total)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(relay: &str, us: f64) -> RtpResult {
        RtpResult {
            relay: relay.into(),
            rep: 1,
            calls: 250,
            offered_pps: 25_000.0,
            duration_s: 10.0,
            sent: 250_000,
            achieved_send_pps: 25_000.0,
            us_per_pkt_sched: us,
            relay_alive: true,
            ..Default::default()
        }
    }

    #[test]
    fn rtp_compare_main_over_each() {
        let mut dead = row("rtpengine", 1.0);
        dead.relay_alive = false;
        let runs = [
            row("rtp-floor", 1.0),
            row("ringsip", 2.0),
            row("rtpengine", 4.0),
            row("ringsip", 3.0),
            row("rtpengine", 6.0),
            dead,
            RtpResult { error: Some("x".into()), ..row("rtp-floor", 100.0) },
        ];
        let c = compare(&runs, &[], "ringsip");
        assert_eq!(c.us_per_pkt_sched["ringsip"], 2.5);
        assert_eq!(c.us_per_pkt_sched["rtpengine"], 5.0);
        assert_eq!(c.us_per_pkt_sched["rtp-floor"], 1.0);
        assert_eq!(c.ratios.keys().collect::<Vec<_>>(), ["ringsip/rtp-floor", "ringsip/rtpengine"]);
        assert!((c.ratios["ringsip/rtpengine"] - 0.5).abs() < 1e-12);
        assert!((c.ratios["ringsip/rtp-floor"] - 2.5).abs() < 1e-12);
        let searches = [
            RateSearch { relay: "ringsip".into(), max_clean_pps: Some(100_000.0), ..Default::default() },
            RateSearch { relay: "rtpengine".into(), max_clean_pps: Some(50_000.0), ..Default::default() },
            RateSearch { relay: "rtp-floor".into(), max_clean_pps: None, ..Default::default() },
        ];
        let c = compare(&[], &searches, "ringsip");
        assert!(c.ratios.is_empty());
        assert_eq!(c.max_clean_pps_ratios.keys().collect::<Vec<_>>(), ["ringsip/rtpengine"]);
        assert_eq!(c.max_clean_pps_ratios["ringsip/rtpengine"], 2.0);
        let j = serde_json::to_value(&c).unwrap();
        assert!(j.get("max_clean_pps").is_some());
        let j = serde_json::to_value(compare(&runs, &[], "ringsip")).unwrap();
        assert!(j.get("max_clean_pps").is_none());
    }

    #[test]
    fn rtp_clean_and_table() {
        let mut r = row("ringsip", 1.234);
        assert!(r.clean() && !r.generator_limited());
        r.rx.lost = 1;
        assert!(!r.clean());
        r.rx.lost = 0;
        r.achieved_send_pps = 20_000.0;
        assert!(r.generator_limited() && !r.clean());
        let t = table(&[row("ringsip", 1.234), RtpResult { error: Some("x".into()), ..row("e", 0.0) }]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[2].starts_with("ringsip") && lines[2].contains("1.234"), "{t}");
        let j = serde_json::to_value(row("ringsip", 1.0)).unwrap();
        // the receive side is flattened into the run, as rtp_bench.py's keys
        for k in ["received", "lost", "loss_pct", "reordered", "jitter_mean_us", "us_per_pkt_sched", "relay_cpu_s"] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert!(notes(&[r]).contains("generator-limited"));
    }

    #[test]
    fn rtp_sip_calls_in_clean_table_and_notes() {
        let ok = SipResult { rate_cps: 200.0, planned: 1000, attempted: 1000, succeeded: 1000, ..Default::default() };
        let with_sip = |s: SipResult| RtpResult { sip: Some(s), ..row("ringsip", 1.0) };
        // no SIP: nothing changes, no SIP table
        assert!(row("ringsip", 1.0).clean() && sip_table(&[row("ringsip", 1.0)]).is_empty());
        let r = with_sip(SipResult { sdp_anchored: Some(2000), retrans_uac_invite: 2, ..ok.clone() });
        assert!(r.clean() && !r.sip_failed(), "retransmissions alone pass");
        let t = sip_table(&[r.clone(), row("rtpengine", 1.0)]);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.lines().nth(2).unwrap().contains("2/0") && !t.contains("FAILED"), "{t}");
        let n = notes(&[r]);
        assert!(n.contains("SIP 1000 attempted") && n.contains("includes the SIP calls' work"), "{n}");
        assert!(!n.contains("WARNING"), "{n}");
        // one failed call: the step fails, the table and notes say so
        let bad = with_sip(SipResult { succeeded: 999, failed: 1, sdp_anchored: Some(1998), ..ok.clone() });
        assert!(bad.sip_failed() && !bad.clean());
        assert!(sip_table(std::slice::from_ref(&bad)).contains("FAILED"));
        assert!(notes(&[bad]).contains("WARNING SIP calls failed: 1 of 1000 SIP calls failed"));
        // SDP not anchored is warned about
        let n = notes(&[with_sip(SipResult { sdp_anchored: Some(10), sdp_failed: Some(3), ..ok })]);
        assert!(n.contains("anchored 10 SDP bodies for 1000") && n.contains("could not anchor 3"), "{n}");
        let j = serde_json::to_value(row("ringsip", 1.0)).unwrap();
        assert!(j.get("sip").is_none());
    }
}
