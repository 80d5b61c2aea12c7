//! Turning counters and snapshots into the result (the harness's `sip-report` definitions)
//! and printing it: a human table or one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::hist::Histogram;
use super::loadgen::{Counters, LoadStats};
use super::procfs::{TreeSnap, cpu_delta, slices_delta};

/// Latency summary in µs.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub n: u64,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub max: Option<u64>,
    pub mean: f64,
}

impl From<&Histogram> for Latency {
    fn from(h: &Histogram) -> Latency {
        Latency {
            n: h.count(),
            p50: h.percentile(50.0),
            p99: h.percentile(99.0),
            p999: h.percentile(99.9),
            max: (h.count() > 0).then(|| h.max()),
            mean: h.mean(),
        }
    }
}

/// One load through one router.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RunResult {
    pub router: String,
    pub shards: usize,
    pub rep: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub router_cpus: String,
    pub gen_cpus: String,
    pub offered_cps: f64,
    pub calls_planned: u64,
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// timeout_invite, timeout_bye, unexpected_response, aborted
    pub fail_reasons: BTreeMap<String, u64>,
    /// status code -> count of unexpected final responses
    pub unexpected_statuses: BTreeMap<String, u64>,
    /// calls started per second of the start phase (did the generator keep the pace?)
    pub attempted_cps: f64,
    /// succeeded calls per second of the load window
    pub achieved_cps: f64,
    /// first INVITE to the end of the last call
    pub load_s: f64,
    /// load window plus drain: the CPU accounting window
    pub window_s: f64,
    /// messages received by the UAC (except 100 Trying) and the UAS (except the router's
    /// OPTIONS probes), retransmissions and strays included
    pub msgs_routed: u64,
    pub msgs_nominal: u64,
    pub msgs_per_s: f64,
    pub router_user_s: f64,
    pub router_sys_s: f64,
    /// utime+stime over the window
    pub router_cpu_s: f64,
    /// schedstat sum_exec_runtime over the window
    pub router_cpu_sched_s: f64,
    /// router CPU before the load, % of one core (subtracted below)
    pub router_idle_cpu_pct: f64,
    /// (schedstat CPU - idle rate x window) / msgs_routed
    pub us_per_msg_sched: f64,
    /// (utime+stime - idle rate x window) / msgs_routed
    pub us_per_msg: f64,
    /// as the harness prints it: no idle subtraction
    pub us_per_msg_sched_raw: f64,
    pub us_per_msg_raw: f64,
    pub us_per_call_sched: f64,
    /// router CPU over the load window only, % of one core (schedstat)
    pub router_util_sched_pct: f64,
    pub router_util_pct: f64,
    pub setup_latency_us: Latency,
    pub bye_latency_us: Latency,
    pub retrans_uac: u64,
    pub retrans_uac_invite: u64,
    pub retrans_uac_bye: u64,
    pub retrans_uas: u64,
    pub acks_resent: u64,
    pub stray_msgs: u64,
    /// drops of the router's socket(s), /proc/net/udp
    pub router_sock_drops: u64,
    /// drops of the generator's sockets
    pub gen_sock_drops: u64,
    /// /proc/net/snmp Udp RcvbufErrors delta (whole machine)
    pub udp_rcvbuf_errors: u64,
    pub udp_in_errors: u64,
    pub gen_cpu_s: f64,
    /// the generator thread's CPU over the load, % of its core
    pub gen_cpu_pct: f64,
    pub gen_us_per_call: f64,
    pub gen_max_lag_ms: f64,
    pub gen_send_errors: u64,
    /// times the router's threads were scheduled in, per routed message (over the window)
    pub router_wakeups_per_msg: f64,
    /// times the generator thread was scheduled in, per call
    pub gen_wakeups_per_call: f64,
    /// CPU used by other processes during the load, % of one core (utime+stime of every
    /// process but ours and the router's): more than a few % means a noisy measurement
    pub other_cpu_pct: f64,
    pub router_alive: bool,
    /// `stateful`: 100 Trying received by the UAC (made by the router, not routed)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trying_rx: Option<u64>,
    /// `stateful`: answered calls whose 200 OK carried Record-Route (their ACK and BYE carried
    /// the route set); 0 for a router that does not record-route, like the floor
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_set_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_exit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything sampled around one load.
pub(crate) struct Samples<'a> {
    /// router idle CPU rate (schedstat, utime+stime), fraction of one core
    pub idle_rate: (f64, f64),
    pub t0: &'a TreeSnap,
    pub t1: &'a TreeSnap,
    pub t2: &'a TreeSnap,
    pub c0: Counters,
    pub c2: Counters,
    pub stats: &'a LoadStats,
    pub router_drops: u64,
    pub gen_drops: u64,
    pub rcvbuf_errors: u64,
    pub in_errors: u64,
    pub clk_tck: u64,
    /// CPU seconds of other processes during the load window
    pub other_cpu_s: f64,
}

/// Idle CPU rate between two snapshots: (schedstat, utime+stime) as fractions of a core.
pub(crate) fn idle_rate(a: &TreeSnap, b: &TreeSnap, clk_tck: u64) -> (f64, f64) {
    let dt = b.at.duration_since(a.at).as_secs_f64();
    if dt <= 0.0 {
        return (0.0, 0.0);
    }
    let (u, s, sc) = cpu_delta(a, b, clk_tck);
    (sc / dt, (u + s) / dt)
}

fn per(num: f64, den: u64) -> f64 {
    if den == 0 { f64::NAN } else { num / den as f64 }
}

/// Fill the measured fields of `r` from `s`.
pub(crate) fn compute(r: &mut RunResult, s: &Samples<'_>) {
    let st = s.stats;
    r.attempted = st.attempted;
    r.succeeded = st.succeeded;
    r.failed = st.failed;
    r.fail_reasons.extend(st.fail_reasons());
    r.unexpected_statuses = st.unexpected_statuses();
    r.load_s = st.load_s;
    r.attempted_cps =
        if st.attempted > 1 && st.start_s > 0.0 { (st.attempted - 1) as f64 / st.start_s } else { r.offered_cps };
    r.achieved_cps = if st.load_s > 0.0 { st.succeeded as f64 / st.load_s } else { f64::NAN };

    let (c0, c2) = (&s.c0, &s.c2);
    let uac = (c2.uac_rx - c0.uac_rx)
        .saturating_sub(c2.uac_rx_100 - c0.uac_rx_100)
        .saturating_sub(c2.uac_rx_probe - c0.uac_rx_probe);
    let uas = (c2.uas_rx - c0.uas_rx).saturating_sub(c2.uas_rx_options - c0.uas_rx_options);
    r.msgs_routed = uac + uas;
    r.msgs_nominal = st.succeeded * 6;
    r.stray_msgs = (c2.uac_rx_stray - c0.uac_rx_stray) + (c2.uas_rx_stray - c0.uas_rx_stray);
    r.retrans_uac_invite = st.retrans_invite;
    r.retrans_uac_bye = st.retrans_bye;
    r.retrans_uac = st.retrans_invite + st.retrans_bye;
    r.retrans_uas = c2.uas_retrans - c0.uas_retrans;
    r.acks_resent = st.acks_resent;
    r.gen_send_errors = c2.send_errors - c0.send_errors;

    let win_load = s.t1.at.duration_since(s.t0.at).as_secs_f64();
    let win_all = s.t2.at.duration_since(s.t0.at).as_secs_f64();
    r.window_s = win_all;
    r.msgs_per_s = if st.load_s > 0.0 { r.msgs_routed as f64 / st.load_s } else { f64::NAN };
    let (u, sy, sc) = cpu_delta(s.t0, s.t2, s.clk_tck);
    let (lu, ls, lsc) = cpu_delta(s.t0, s.t1, s.clk_tck);
    r.router_user_s = u;
    r.router_sys_s = sy;
    r.router_cpu_s = u + sy;
    r.router_cpu_sched_s = sc;
    r.router_idle_cpu_pct = 100.0 * s.idle_rate.0;
    let net_sched = (sc - s.idle_rate.0 * win_all).max(0.0);
    let net_ticks = (u + sy - s.idle_rate.1 * win_all).max(0.0);
    r.us_per_msg_sched = per(net_sched * 1e6, r.msgs_routed);
    r.us_per_msg = per(net_ticks * 1e6, r.msgs_routed);
    r.us_per_msg_sched_raw = per(sc * 1e6, r.msgs_routed);
    r.us_per_msg_raw = per((u + sy) * 1e6, r.msgs_routed);
    r.us_per_call_sched = per(net_sched * 1e6, st.succeeded);
    r.router_util_sched_pct = if win_load > 0.0 { 100.0 * lsc / win_load } else { f64::NAN };
    r.router_util_pct = if win_load > 0.0 { 100.0 * (lu + ls) / win_load } else { f64::NAN };
    r.setup_latency_us = Latency::from(&st.setup);
    r.bye_latency_us = Latency::from(&st.bye);
    r.router_sock_drops = s.router_drops;
    r.gen_sock_drops = s.gen_drops;
    r.udp_rcvbuf_errors = s.rcvbuf_errors;
    r.udp_in_errors = s.in_errors;
    r.gen_cpu_s = st.gen_cpu_s;
    r.gen_cpu_pct = if st.load_s > 0.0 { 100.0 * st.gen_cpu_s / st.load_s } else { f64::NAN };
    r.gen_us_per_call = per(st.gen_cpu_s * 1e6, st.attempted);
    r.gen_max_lag_ms = st.max_lag_ms;
    r.router_wakeups_per_msg = per(slices_delta(s.t0, s.t2) as f64, r.msgs_routed);
    r.gen_wakeups_per_call = per(st.gen_wakeups as f64, st.attempted);
    r.other_cpu_pct = if win_load > 0.0 { 100.0 * s.other_cpu_s / win_load } else { f64::NAN };
}

/// The transaction-stateful figures of a load (`stateful`): the 100 Trying the router sent and
/// the calls whose 200 OK carried a route set.
pub(crate) fn count_stateful(r: &mut RunResult, c0: &Counters, c2: &Counters) {
    r.trying_rx = Some(c2.uac_rx_100.saturating_sub(c0.uac_rx_100));
    r.route_set_calls = Some(c2.uac_rx_route_set.saturating_sub(c0.uac_rx_route_set));
}

/// Was the generator the bottleneck of this load? Its thread near 100 % of its core, or it
/// could not start calls at the offered pace.
pub(crate) fn generator_limited(r: &RunResult) -> bool {
    r.gen_cpu_pct >= 90.0 || (r.offered_cps > 0.0 && r.attempted_cps < 0.95 * r.offered_cps) || r.gen_max_lag_ms > 250.0
}

/// What limited a load that was not clean: the router if it died, dropped datagrams or ran
/// its CPUs at >= 90 %; else the generator if it was saturated; else the router (it failed
/// calls without being saturated).
pub(crate) fn limit_verdict(r: &RunResult) -> &'static str {
    let cpus = r.router_cpus.split(',').filter(|c| !c.is_empty() && *c != "-").count().max(1) as f64;
    let router_busy = r.router_sock_drops > 0 || r.router_util_sched_pct >= 90.0 * cpus;
    if !r.router_alive {
        "router died"
    } else if router_busy && generator_limited(r) && r.router_sock_drops == 0 {
        "router- and generator-limited (both near 100 % CPU)"
    } else if router_busy {
        "router-limited"
    } else if generator_limited(r) {
        "generator-limited"
    } else {
        "router-limited"
    }
}

/// Did this load run clean: no failure, no retransmission, router alive?
pub(crate) fn clean(r: &RunResult) -> bool {
    r.error.is_none() && r.router_alive && r.failed == 0 && r.retrans_uac == 0 && r.retrans_uas == 0 && r.attempted > 0
}

/// Outcome of a ramp.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RampResult {
    pub router: String,
    pub shards: usize,
    pub rep: u32,
    /// highest step rate without failures or retransmissions
    pub max_clean_cps: Option<f64>,
    /// the rate of the step that ended the ramp
    pub stopped_at_cps: Option<f64>,
    pub stop_reason: String,
    /// generator-limited | router-limited | router died | max rate reached | interrupted
    pub limit: String,
    pub steps: Vec<RunResult>,
}

/// µs/msg comparison between routers.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Comparison {
    pub shards: usize,
    /// router -> median schedstat µs/msg over the repetitions
    pub us_per_msg_sched: BTreeMap<String, f64>,
    /// "a/b" -> ratio of median µs/msg. [`Ratios::Lb`]: `main/floor` for a floor forwarder
    /// (how far above the floor `main` is), `other/main` for any other router (how much more
    /// it spends). [`Ratios::MainOverEach`]: `main/other` for every other router.
    pub ratios: BTreeMap<String, f64>,
    /// [`Ratios::MainOverEach`] only: router -> median schedstat µs per succeeded call
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub us_per_call_sched: BTreeMap<String, f64>,
    /// [`Ratios::MainOverEach`] only: `main/other` -> ratio of median µs per call
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ratios_per_call: BTreeMap<String, f64>,
}

/// Which way the ratios of a [`Comparison`] go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ratios {
    /// `lb`: `main/floor` and `other/main` (`kamailio/ringsip`), per message
    Lb,
    /// `stateful`: `main/other` for every router (`ringsip/kamailio`, `ringsip/sip-floor`),
    /// per message and per call
    MainOverEach,
}

/// The median of `v` (mean of the middle two for an even count); `v` is sorted in place.
fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Per router, the median of `value` over the rows of `shards` shards where it is finite.
fn medians(rows: &[RunResult], shards: usize, value: impl Fn(&RunResult) -> f64) -> BTreeMap<String, f64> {
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.shards == shards && value(r).is_finite() && r.error.is_none()) {
        samples.entry(r.router.clone()).or_default().push(value(r));
    }
    samples.into_iter().map(|(k, mut v)| (k, median(&mut v))).collect()
}

/// `main/other` for every other router of `medians` (both positive).
fn main_over_each(medians: &BTreeMap<String, f64>, main: &str) -> BTreeMap<String, f64> {
    let Some(&m) = medians.get(main) else { return BTreeMap::new() };
    medians
        .iter()
        .filter(|&(k, &v)| k != main && m > 0.0 && v > 0.0)
        .map(|(k, &v)| (format!("{main}/{k}"), m / v))
        .collect()
}

/// Build the comparisons: per shard count, median µs/msg per router over the repetitions
/// and the ratios between `main` and every other router.
pub(crate) fn compare(rows: &[RunResult], main: &str, style: Ratios) -> Vec<Comparison> {
    let mut shards: Vec<usize> = rows.iter().map(|r| r.shards).collect();
    shards.sort_unstable();
    shards.dedup();
    let mut out = Vec::new();
    for n in shards {
        let mut c = Comparison { shards: n, ..Default::default() };
        c.us_per_msg_sched = medians(rows, n, |r| r.us_per_msg_sched);
        match style {
            Ratios::Lb => {
                if let Some(&m) = c.us_per_msg_sched.get(main) {
                    for (k, &v) in &c.us_per_msg_sched {
                        if k == main || m <= 0.0 || v <= 0.0 {
                            continue;
                        }
                        if k.contains("floor") {
                            c.ratios.insert(format!("{main}/{k}"), m / v);
                        } else {
                            c.ratios.insert(format!("{k}/{main}"), v / m);
                        }
                    }
                }
            }
            Ratios::MainOverEach => {
                c.ratios = main_over_each(&c.us_per_msg_sched, main);
                c.us_per_call_sched = medians(rows, n, |r| r.us_per_call_sched);
                c.ratios_per_call = main_over_each(&c.us_per_call_sched, main);
            }
        }
        if c.us_per_msg_sched.len() > 1 {
            out.push(c);
        }
    }
    out
}

fn f(v: f64, prec: usize) -> String {
    if v.is_finite() { format!("{v:.prec$}") } else { "-".into() }
}

fn o(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// Render rows as an aligned text table; `per_call` adds a column of router CPU µs per call
/// (schedstat, idle subtracted) before the µs/msg ones (`stateful`).
pub(crate) fn table(rows: &[RunResult], per_call: bool) -> String {
    let head = [
        "router",
        "shards",
        "rep",
        "offered",
        "achieved",
        "attempted",
        "ok",
        "failed",
        "msgs/s",
        "us/msg",
        "us/msg",
        "router",
        "setup p50",
        "p99",
        "p99.9",
        "retrans",
        "drops",
        "gen",
    ];
    let head2 = [
        "",
        "",
        "",
        "calls/s",
        "calls/s",
        "",
        "",
        "",
        "",
        "sched",
        "u+s",
        "CPU %",
        "us",
        "us",
        "us",
        "uac/uas",
        "sock/rcvbuf",
        "CPU %",
    ];
    /// where the µs/call column goes: before the µs/msg ones
    const CALL_COL: usize = 9;
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    cells.push(head2.iter().map(|s| s.to_string()).collect());
    if per_call {
        cells[0].insert(CALL_COL, "us/call".into());
        cells[1].insert(CALL_COL, "sched".into());
    }
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let name = match r.step {
            Some(s) => format!("{} #{s}", r.router),
            None => r.router.clone(),
        };
        let mut row = vec![
            name,
            r.shards.to_string(),
            r.rep.to_string(),
            f(r.offered_cps, 0),
            f(r.achieved_cps, 1),
            r.attempted.to_string(),
            r.succeeded.to_string(),
            r.failed.to_string(),
            f(r.msgs_per_s, 0),
            f(r.us_per_msg_sched, 3),
            f(r.us_per_msg, 2),
            f(r.router_util_sched_pct, 1),
            o(r.setup_latency_us.p50),
            o(r.setup_latency_us.p99),
            o(r.setup_latency_us.p999),
            format!("{}/{}", r.retrans_uac, r.retrans_uas),
            format!("{}/{}", r.router_sock_drops, r.udp_rcvbuf_errors),
            f(r.gen_cpu_pct, 1),
        ];
        if per_call {
            row.insert(CALL_COL, f(r.us_per_call_sched, 2));
        }
        cells.push(row);
    }
    align(&cells)
}

/// Rows of cells as a text table: the first column left-aligned, the others right-aligned,
/// two spaces apart.
pub(crate) fn align(cells: &[Vec<String>]) -> String {
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let w: Vec<usize> =
        (0..cols).map(|i| cells.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{c:<w$}", w = w[i]);
            } else {
                let _ = write!(line, "  {c:>w$}", w = w[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Per-row notes: failures, router deaths, drops, generator.
pub(crate) fn notes(rows: &[RunResult]) -> String {
    let mut out = String::new();
    for r in rows {
        let label = match r.step {
            Some(s) => {
                format!("{} (shards {}, rep {}, step {s}, {} calls/s)", r.router, r.shards, r.rep, f(r.offered_cps, 0))
            }
            None => format!("{} (shards {}, rep {})", r.router, r.shards, r.rep),
        };
        if let Some(e) = &r.error {
            let _ = writeln!(out, "{label}: ERROR {e}");
            continue;
        }
        if r.other_cpu_pct > 10.0 {
            let _ = writeln!(
                out,
                "{label}: WARNING other processes used {:.0} % of a core during the load: the figures are disturbed",
                r.other_cpu_pct
            );
        }
        if !r.router_alive {
            let _ = writeln!(out, "{label}: ROUTER DIED during the run ({})", r.router_exit.as_deref().unwrap_or("?"));
        }
        if r.failed > 0 {
            let reasons: Vec<String> = r.fail_reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let codes: Vec<String> = r.unexpected_statuses.iter().map(|(k, v)| format!("{k}x{v}")).collect();
            let _ = writeln!(
                out,
                "{label}: {} failed calls: {}{}",
                r.failed,
                reasons.join(", "),
                if codes.is_empty() { String::new() } else { format!(" (status {})", codes.join(" ")) }
            );
        }
        let _ = writeln!(
            out,
            "{label}: {} msgs routed ({} nominal), router {:.3} s CPU sched / {:.2} s u+s over {:.1} s \
             (idle {:.3} %, subtracted; without: {} us/msg), setup mean {} us, BYE p50/p99 {}/{} us, \
             router wake-ups {}/msg, generator {} us/call CPU ({} wake-ups/call), max start lag {} ms, \
             {} stray msgs, {} gen socket drops, other processes {} % CPU",
            r.msgs_routed,
            r.msgs_nominal,
            r.router_cpu_sched_s,
            r.router_cpu_s,
            r.window_s,
            r.router_idle_cpu_pct,
            f(r.us_per_msg_sched_raw, 3),
            f(r.setup_latency_us.mean, 0),
            o(r.bye_latency_us.p50),
            o(r.bye_latency_us.p99),
            f(r.router_wakeups_per_msg, 3),
            f(r.gen_us_per_call, 2),
            f(r.gen_wakeups_per_call, 2),
            f(r.gen_max_lag_ms, 1),
            r.stray_msgs,
            r.gen_sock_drops,
            f(r.other_cpu_pct, 1),
        );
        if let (Some(trying), Some(rs)) = (r.trying_rx, r.route_set_calls) {
            let _ = writeln!(
                out,
                "{label}: {trying} 100 Trying from the router (not routed), route set (Record-Route) in the 200 OK \
                 of {rs} of {} answered calls, {} us router CPU per call (sched), {} ACKs re-sent",
                r.setup_latency_us.n,
                f(r.us_per_call_sched, 2),
                r.acks_resent,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::procfs::ProcCpu;
    use std::time::{Duration, Instant};

    fn snap(at: Instant, sched_ns: u64, ticks: u64) -> TreeSnap {
        TreeSnap {
            at,
            procs: [(7, ProcCpu { utime: ticks / 2, stime: ticks / 2, sched_ns, slices: sched_ns / 10_000 })].into(),
        }
    }

    #[test]
    fn harness_definitions() {
        let t = Instant::now();
        let idle0 = snap(t, 0, 0);
        let t0 = snap(t + Duration::from_secs(2), 2_000_000, 0); // 0.1 % idle
        let t1 = snap(t + Duration::from_secs(12), 2_002_000_000, 200);
        let t2 = snap(t + Duration::from_secs(14), 2_404_000_000, 240);
        let ir = idle_rate(&idle0, &t0, 100);
        assert!((ir.0 - 0.001).abs() < 1e-12);
        let mut stats =
            LoadStats { attempted: 80_000, succeeded: 80_000, load_s: 10.0, start_s: 9.999875, ..Default::default() };
        for v in 1..=1000 {
            stats.setup.record(v);
        }
        stats.gen_cpu_s = 1.0;
        let c0 = Counters { uac_rx: 10, uas_rx: 10, uas_rx_options: 2, ..Default::default() };
        let c2 = Counters {
            uac_rx: 10 + 240_000 + 5, // 5 x 100 Trying
            uac_rx_100: 5,
            uas_rx: 10 + 240_000 + 3, // 3 OPTIONS probes
            uas_rx_options: 2 + 3,
            uas_retrans: 0,
            ..Default::default()
        };
        let mut r = RunResult { offered_cps: 8000.0, ..Default::default() };
        let s = Samples {
            idle_rate: ir,
            t0: &t0,
            t1: &t1,
            t2: &t2,
            c0,
            c2,
            stats: &stats,
            router_drops: 0,
            gen_drops: 0,
            rcvbuf_errors: 0,
            in_errors: 0,
            clk_tck: 100,
            other_cpu_s: 0.5,
        };
        compute(&mut r, &s);
        assert_eq!(r.msgs_routed, 480_000);
        assert_eq!(r.msgs_nominal, 480_000);
        // 2.402 s sched over 12 s, minus 0.1 % x 12 s = 2.39 s
        assert!((r.us_per_msg_sched_raw - 2.402e6 / 480_000.0).abs() < 1e-9);
        assert!((r.us_per_msg_sched - 2.390e6 / 480_000.0).abs() < 1e-9, "{}", r.us_per_msg_sched);
        assert!((r.us_per_msg - 2.4e6 / 480_000.0).abs() < 1e-9);
        assert!((r.router_util_sched_pct - 20.0).abs() < 1e-9);
        assert!((r.achieved_cps - 8000.0).abs() < 1e-9);
        assert!((r.attempted_cps - 8000.0).abs() < 1e-6, "{}", r.attempted_cps);
        assert_eq!(r.setup_latency_us.p50, Some(500));
        assert_eq!(r.setup_latency_us.p999, Some(999));
        assert!((r.gen_cpu_pct - 10.0).abs() < 1e-9);
        assert!((r.other_cpu_pct - 5.0).abs() < 1e-9);
        assert!((r.router_wakeups_per_msg - 240_200.0 / 480_000.0).abs() < 1e-12);
        assert!(!generator_limited(&r));
        r.router_alive = true;
        assert!(clean(&r));
        r.retrans_uas = 1;
        assert!(!clean(&r));
        r.gen_cpu_pct = 97.0;
        assert!(generator_limited(&r));
        assert_eq!(limit_verdict(&r), "generator-limited");
        r.router_util_sched_pct = 95.0;
        r.router_cpus = "1".into();
        assert_eq!(limit_verdict(&r), "router- and generator-limited (both near 100 % CPU)");
        r.router_cpus = "1,0".into();
        assert_eq!(limit_verdict(&r), "generator-limited");
        r.router_sock_drops = 5;
        assert_eq!(limit_verdict(&r), "router-limited");
        r.router_alive = false;
        assert_eq!(limit_verdict(&r), "router died");
        let text = table(&[r.clone()], false);
        assert!(text.contains("us/msg"), "{text}");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["msgs_routed"], 480_000);
        assert_eq!(j["setup_latency_us"]["p99"], 990);
    }

    #[test]
    fn comparison_ratios() {
        let row = |router: &str, us| RunResult {
            router: router.into(),
            shards: 1,
            us_per_msg_sched: us,
            ..Default::default()
        };
        let rows = [
            row("ringsip", 3.0),
            row("kamailio", 7.0),
            row("ringsip", 5.0),
            row("sip-floor", 2.0),
            row("ringsip", 4.0),
            row("ringsip", 40.0), // one disturbed repetition does not move the median
        ];
        let c = compare(&rows, "ringsip", Ratios::Lb);
        assert_eq!(c.len(), 1);
        assert!((c[0].us_per_msg_sched["ringsip"] - 4.5).abs() < 1e-12);
        assert!((c[0].ratios["kamailio/ringsip"] - 7.0 / 4.5).abs() < 1e-12);
        assert!((c[0].ratios["ringsip/sip-floor"] - 2.25).abs() < 1e-12);
        assert_eq!(c[0].ratios.len(), 2);
        // lb's JSON has no per-call figures
        assert!(c[0].us_per_call_sched.is_empty() && c[0].ratios_per_call.is_empty());
        let j = serde_json::to_value(&c[0]).unwrap();
        assert_eq!(j.as_object().unwrap().keys().collect::<Vec<_>>(), ["ratios", "shards", "us_per_msg_sched"]);
    }

    #[test]
    fn stateful_comparison_is_main_over_each() {
        let row = |router: &str, shards, msg: f64, call: f64| RunResult {
            router: router.into(),
            shards,
            us_per_msg_sched: msg,
            us_per_call_sched: call,
            ..Default::default()
        };
        let rows = [
            row("sip-floor", 1, 2.0, 12.0),
            row("ringsip", 1, 6.0, 36.0),
            row("kamailio", 1, 12.0, 72.0),
            row("sip-floor", 1, 4.0, 24.0),
            row("ringsip", 1, 8.0, 48.0),
            row("kamailio", 1, f64::NAN, f64::NAN), // a died run is left out
            row("kamailio", 1, 16.0, 96.0),
            row("ringsip", 2, 9.0, 54.0), // alone in its shard count: no comparison
            RunResult { error: Some("did not start".into()), ..row("kamailio", 1, 1.0, 1.0) },
        ];
        let c = compare(&rows, "ringsip", Ratios::MainOverEach);
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!(c.shards, 1);
        assert_eq!(c.us_per_msg_sched["ringsip"], 7.0);
        assert_eq!(c.us_per_msg_sched["kamailio"], 14.0);
        assert_eq!(c.us_per_msg_sched["sip-floor"], 3.0);
        assert_eq!(c.ratios.keys().collect::<Vec<_>>(), ["ringsip/kamailio", "ringsip/sip-floor"]);
        assert!((c.ratios["ringsip/kamailio"] - 0.5).abs() < 1e-12);
        assert!((c.ratios["ringsip/sip-floor"] - 7.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.us_per_call_sched["ringsip"], 42.0);
        assert!((c.ratios_per_call["ringsip/kamailio"] - 0.5).abs() < 1e-12);
        assert!((c.ratios_per_call["ringsip/sip-floor"] - 42.0 / 18.0).abs() < 1e-12);
        let j = serde_json::to_value(c).unwrap();
        assert!((j["ratios_per_call"]["ringsip/kamailio"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        // without the main router's figure there is nothing to divide by
        let c =
            compare(&rows[..1].iter().chain(&rows[2..3]).cloned().collect::<Vec<_>>(), "ringsip", Ratios::MainOverEach);
        assert!(c[0].ratios.is_empty() && c[0].ratios_per_call.is_empty());
    }

    #[test]
    fn stateful_counts_table_and_notes() {
        let c0 = Counters { uac_rx_100: 7, uac_rx_route_set: 2, ..Default::default() };
        let c2 = Counters { uac_rx_100: 7 + 3000, uac_rx_route_set: 2 + 2990, ..Default::default() };
        let mut r = RunResult {
            router: "ringsip".into(),
            shards: 1,
            rep: 1,
            offered_cps: 3000.0,
            achieved_cps: 2999.5,
            attempted: 3000,
            succeeded: 2990,
            failed: 10,
            us_per_call_sched: 31.25,
            us_per_msg_sched: 5.208,
            router_alive: true,
            ..Default::default()
        };
        r.setup_latency_us.n = 2990;
        // lb rows carry no stateful keys
        let j = serde_json::to_value(&r).unwrap();
        assert!(j.get("trying_rx").is_none() && j.get("route_set_calls").is_none());
        assert!(!notes(&[r.clone()]).contains("100 Trying"));
        count_stateful(&mut r, &c0, &c2);
        assert_eq!((r.trying_rx, r.route_set_calls), (Some(3000), Some(2990)));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!((j["trying_rx"].as_u64(), j["route_set_calls"].as_u64()), (Some(3000), Some(2990)));
        let n = notes(&[r.clone()]);
        assert!(n.contains("3000 100 Trying from the router (not routed)"), "{n}");
        assert!(n.contains("of 2990 of 2990 answered calls, 31.25 us router CPU per call"), "{n}");

        // the stateful table has a us/call column before the us/msg ones; lb's has not
        let t = table(&[r.clone()], true);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        let head: Vec<&str> = lines[0].split_whitespace().collect();
        let sub: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(&head[8..11], ["msgs/s", "us/call", "us/msg"], "{t}");
        assert_eq!(&sub[2..5], ["sched", "sched", "u+s"], "{t}");
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(&cells[..10], ["ringsip", "1", "1", "3000", "2999.5", "3000", "2990", "10", "0", "31.25"], "{t}");
        assert_eq!(cells[10], "5.208");
        let lb = table(&[r], false);
        assert!(!lb.contains("us/call"), "{lb}");
        assert_eq!(lb.lines().next().unwrap().split_whitespace().count(), head.len() - 1);
    }

    #[test]
    fn routed_count_never_underflows() {
        // more 100s than datagrams (cannot happen, but must not panic or wrap)
        let c0 = Counters::default();
        let c2 =
            Counters { uac_rx: 2, uac_rx_100: 3, uac_rx_probe: 1, uas_rx: 1, uas_rx_options: 2, ..Default::default() };
        let t = Instant::now();
        let a = snap(t, 0, 0);
        let b = snap(t + Duration::from_secs(1), 1_000, 0);
        let stats = LoadStats::default();
        let s = Samples {
            idle_rate: (0.0, 0.0),
            t0: &a,
            t1: &b,
            t2: &b,
            c0,
            c2,
            stats: &stats,
            router_drops: 0,
            gen_drops: 0,
            rcvbuf_errors: 0,
            in_errors: 0,
            clk_tck: 100,
            other_cpu_s: 0.0,
        };
        let mut r = RunResult::default();
        compute(&mut r, &s);
        assert_eq!(r.msgs_routed, 0);
    }
}
