//! The transaction-stateful proxy end to end: the real daemon relaying statefully (`relay`,
//! `record_route`, failure routes) between sipp UACs and sipp UASs on loopback.
//!
//! * whole calls through a record-routing ringsip, with one and two shards: the UAS sees
//!   ringsip's Record-Route, the caller follows the route set, so ACK and BYE come through
//!   ringsip, and the transaction table drains once the timers have run;
//! * a destination answering 503 and one that never answers are failed over to the other
//!   destination: every call completes and the caller never sees the failure;
//! * a call cancelled while it rings ends 487 on the same destination (no failover) and
//!   leaves no transaction behind;
//! * 10 % packet loss at the caller and the callees is recovered by retransmissions, ringsip
//!   absorbing the caller's and forwarding the callees' 2xx retransmissions (the loss is
//!   sipp's `lost="10"` on sends: `-lost`, which also drops on receive, breaks sipp's own
//!   retransmission handling; see `tests/sipp/uas-lossy.xml`);
//! * with two shards, responses the kernel delivers to the shard that does not own their
//!   transaction are handed to the owner.
//!
//! The scenarios are the shared `bench/sipp/uac.xml` / `uas.xml` (route sets followed and
//! Record-Route copied) and this crate's `tests/sipp/*.xml`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringsip_tests::e2e::{self, Daemon, Metrics, TempDir};
use ringsip_tests::shared_dir;

// ---------------------------------------------------------------------------------------
// scenarios, configs
// ---------------------------------------------------------------------------------------

/// A scenario of this crate (`tests/sipp/NAME`).
fn scenario(name: &str) -> PathBuf {
    let p = e2e::workspace().join("tests/sipp").join(name);
    assert!(p.is_file(), "scenario {} missing", p.display());
    p
}

/// A shared scenario (`../shared/bench/sipp/NAME`): uac.xml follows the route set, uas.xml
/// copies Record-Route into its 180 and 200.
fn shared_scenario(name: &str) -> PathBuf {
    let p = shared_dir().join("bench/sipp").join(name);
    assert!(p.is_file(), "shared scenario {} missing (set RINGSIP_SHARED)", p.display());
    p
}

/// Addresses of one test: ringsip's SIP and metrics addresses.
struct Net {
    listen: SocketAddr,
    metrics: SocketAddr,
}

impl Net {
    fn new() -> Net {
        Net {
            listen: format!("127.0.0.1:{}", e2e::free_udp_port()).parse().unwrap(),
            metrics: format!("127.0.0.1:{}", e2e::free_tcp_port()).parse().unwrap(),
        }
    }
}

/// The failure route's condition for trying the next destination: 5xx, or no answer.
const FAILOVER_IF: &str = "$rs >= 500 and $rs < 600 or timeout and not replied";

/// The stateful load balancer of the feature (the reference DISPATCH route with failover)
/// over set 1 = `destinations` (TOML array items), with `algorithm`, the given
/// `[transactions]` keys and the probe interval.
fn config(net: &Net, transactions: &str, algorithm: &str, destinations: &str, probe_interval: &str) -> String {
    config_failing_over_if(net, transactions, algorithm, destinations, probe_interval, FAILOVER_IF)
}

/// [`config`] whose failure route fails over when `failover_if` holds (after the
/// `cancelled` rule, which returns).
fn config_failing_over_if(
    net: &Net,
    transactions: &str,
    algorithm: &str,
    destinations: &str,
    probe_interval: &str,
    failover_if: &str,
) -> String {
    format!(
        r#"
[server]
listen = ["udp:{listen}"]
metrics = "{metrics}"

[transactions]
{transactions}

[[dispatcher.set]]
id = 1
algorithm = "{algorithm}"
destinations = [{destinations}]
probe = {{ method = "OPTIONS", interval = "{probe_interval}", failure_threshold = 3, success_threshold = 1 }}

[[route.request]]
if = "$hdr(Max-Forwards) == 0"
do = 'reply 483 "Too Many Hops"'

[[route.request]]
if = "has_totag and $rd != myself"
do = "relay"

[[route.request]]
do = ['select 1 else reply 503 "No destination"', "record_route", "on_failure failover", "relay"]

[[route.failover]]
if = "cancelled"
do = "return"

[[route.failover]]
if = "{failover_if}"
do = ['select next else reply 503 "No destination"', "on_failure failover", "relay"]
"#,
        listen = net.listen,
        metrics = net.metrics,
    )
}

/// Two round-robin destinations on 127.0.0.1.
fn two(a: u16, b: u16) -> String {
    format!(r#""sip:127.0.0.1:{a}", "sip:127.0.0.1:{b}""#)
}

// ---------------------------------------------------------------------------------------
// sipp processes and their message logs
// ---------------------------------------------------------------------------------------

/// A sipp UAS on 127.0.0.1:`port` running `scenario`, tracing every message to
/// `<dir>/messages.log`; answers OPTIONS probes (`-aa`). Stopped on drop.
struct Uas {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl Uas {
    fn start(sipp: &Path, scenario: &Path, port: u16) -> Uas {
        let dir = TempDir::new(&format!("uas{port}"));
        let child = Command::new(sipp)
            .arg("-sf")
            .arg(scenario)
            .args(["-aa", "-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1", "-nostdin"])
            .args(["-buff_size", "4194304", "-trace_err", "-error_file", "errors.log"])
            .args(["-trace_msg", "-message_file", "messages.log"])
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp uas");
        Uas { child: Some(child), dir, port }
    }

    /// Stop it (SIGTERM, so it flushes its logs; SIGKILL after 5 s) and read what it
    /// received.
    fn finish(&mut self) -> Trace {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
        Trace::read(&self.dir.0.join("messages.log"))
    }

    fn errors(&self) -> String {
        head(&self.dir.0.join("errors.log"), 40)
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stop(c: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// The first `n` lines of a file (for failure messages).
fn head(path: &Path, n: usize) -> String {
    std::fs::read_to_string(path).unwrap_or_default().lines().take(n).collect::<Vec<_>>().join("\n")
}

/// The last `n` lines of a text.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Seconds since midnight of a sipp log time stamp (`2026-11-24 21:42:46.235663`).
fn seconds(stamp: &str) -> f64 {
    let time = stamp.split_whitespace().nth(1).unwrap_or("");
    time.split(':').fold(0.0, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap_or(0.0))
}

/// One message of a sipp message log.
#[derive(Debug, Clone)]
struct Logged {
    time: String,
    received: bool,
    start: String,
    headers: Vec<(String, String)>,
}

impl Logged {
    fn is_request(&self, method: &str) -> bool {
        self.start.starts_with(&format!("{method} "))
    }

    fn is_response(&self, code: u16) -> bool {
        self.start.starts_with(&format!("SIP/2.0 {code} "))
    }

    /// Every value of a header (full names only: sipp and ringsip write those).
    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    fn call_id(&self) -> &str {
        self.first("Call-ID").unwrap_or("")
    }

    fn text(&self) -> String {
        let mut s = self.start.clone();
        for (n, v) in &self.headers {
            s.push_str(&format!("\n{n}: {v}"));
        }
        s
    }
}

/// A sipp `-trace_msg` log: the messages sent and received, in order.
struct Trace(Vec<Logged>);

impl Trace {
    fn read(path: &Path) -> Trace {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut out = Vec::new();
        // blocks: "----...---- <time>\nUDP message received [N] bytes :\n\n<message>"
        for block in text.split("----------------------------------------------- ").skip(1) {
            let mut lines = block.lines();
            let time = lines.next().unwrap_or("").trim().to_string();
            let Some(what) = lines.next() else { continue };
            let received = what.contains("message received");
            if !received && !what.contains("message sent") {
                continue; // "voluntary lost" and other notes
            }
            let mut lines = lines.skip_while(|l| l.trim().is_empty());
            let Some(start) = lines.next() else { continue };
            let mut headers = Vec::new();
            for l in lines {
                if l.trim().is_empty() {
                    break;
                }
                if let Some((n, v)) = l.split_once(':') {
                    headers.push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            out.push(Logged { time, received, start: start.trim().to_string(), headers });
        }
        Trace(out)
    }

    /// Received requests of `method`, one per Call-ID (retransmissions folded).
    fn requests(&self, method: &str) -> Vec<&Logged> {
        let mut seen = BTreeSet::new();
        self.0.iter().filter(|m| m.received && m.is_request(method) && seen.insert(m.call_id().to_string())).collect()
    }

    /// Every received request of `method`, retransmissions included.
    fn all_requests(&self, method: &str) -> Vec<&Logged> {
        self.0.iter().filter(|m| m.received && m.is_request(method)).collect()
    }

    fn received_responses(&self, code: u16) -> Vec<&Logged> {
        self.0.iter().filter(|m| m.received && m.is_response(code)).collect()
    }

    /// Every `code` response to `method` sent or received (retransmissions included; a
    /// message sipp "lost" on purpose is not in the log).
    fn responses(&self, received: bool, code: u16, method: &str) -> usize {
        self.0
            .iter()
            .filter(|m| {
                m.received == received && m.is_response(code) && m.first("CSeq").is_some_and(|c| c.ends_with(method))
            })
            .count()
    }

    fn sent_requests(&self, method: &str) -> Vec<&Logged> {
        self.0.iter().filter(|m| !m.received && m.is_request(method)).collect()
    }
}

/// How a UAC run went.
struct UacRun {
    successful: u64,
    failed: u64,
    retransmissions: u64,
    exit: i32,
    dir: TempDir,
}

impl std::fmt::Debug for UacRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "successful {}, failed {}, retransmissions {}, exit {} ({})",
            self.successful,
            self.failed,
            self.retransmissions,
            self.exit,
            self.dir.0.display()
        )
    }
}

impl UacRun {
    fn trace(&self) -> Trace {
        Trace::read(&self.dir.0.join("messages.log"))
    }
}

/// Options of a UAC run.
struct Uac<'a> {
    scenario: PathBuf,
    calls: u64,
    rate: u64,
    /// `u1` (one socket) or `un` (one socket, so one source port, per call).
    transport: &'a str,
    recv_timeout: Duration,
    /// Bound on the whole run.
    timeout: Duration,
    extra: &'a [&'a str],
}

impl Uac<'_> {
    fn new(scenario: PathBuf, calls: u64, rate: u64) -> Uac<'static> {
        Uac {
            scenario,
            calls,
            rate,
            transport: "u1",
            recv_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            extra: &[],
        }
    }

    /// Run it against `target` and wait (bounded) for it to end.
    fn run(&self, sipp: &Path, target: SocketAddr) -> UacRun {
        let dir = TempDir::new("uac");
        let port = e2e::free_udp_port();
        let mut child = Command::new(sipp)
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-s", "service", "-i", "127.0.0.1", "-p", &port.to_string(), "-t", self.transport, "-nostdin"])
            .args(["-m", &self.calls.to_string(), "-r", &self.rate.to_string()])
            .args(["-l", &(self.rate * 20).max(100).to_string()])
            .args(["-buff_size", "4194304", "-recv_timeout", &self.recv_timeout.as_millis().to_string()])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs()), "-timeout_error"])
            .args(["-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_err", "-error_file", "errors.log"])
            .args(["-trace_msg", "-message_file", "messages.log"])
            .args(self.extra)
            .arg(target.to_string())
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp uac");
        let deadline = Instant::now() + self.timeout + Duration::from_secs(10);
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stat = e2e::SippStat::read(&dir.0.join("stat.csv"));
        let col = |name: &str| stat.last(name);
        UacRun {
            successful: col("SuccessfulCall(C)"),
            failed: col("FailedCall(C)"),
            retransmissions: col("Retransmissions(C)"),
            exit: status.code().unwrap_or(-1),
            dir,
        }
    }
}

// ---------------------------------------------------------------------------------------
// ringsip
// ---------------------------------------------------------------------------------------

/// Scrape the daemon's metrics, retrying a scrape that fails (up to 5 s) before giving up.
fn metrics(d: &Daemon) -> Metrics {
    let addr = d.metrics.expect("metrics address");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(m) = e2e::scrape(addr) {
            return m;
        }
        assert!(Instant::now() < deadline, "the metrics endpoint {addr} does not answer\n{}", tail(&d.log_text(), 40));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many series of a metric the daemon exports (0: it does not have it).
fn series(m: &Metrics, name: &str) -> usize {
    m.0.keys().filter(|k| k.as_str() == name || k.starts_with(&format!("{name}{{"))).count()
}

fn up(d: &Daemon, port: u16) -> f64 {
    metrics(d).get(&format!("ringsip_dispatcher_destination_up{{set=\"1\",destination=\"sip:127.0.0.1:{port}\"}}"))
}

fn selected(m: &Metrics, port: u16) -> f64 {
    m.get(&format!("ringsip_dispatcher_selected_total{{set=\"1\",destination=\"sip:127.0.0.1:{port}\"}}"))
}

fn wait_up(d: &Daemon, ports: &[u16]) {
    assert!(
        e2e::wait_for(Duration::from_secs(10), || ports.iter().all(|p| up(d, *p) == 1.0)),
        "destinations {ports:?} up\n{}",
        tail(&d.log_text(), 40)
    );
}

/// The transaction-layer figures, for failure messages.
fn txn_figures(m: &Metrics) -> String {
    m.0.iter()
        .filter(|(k, _)| {
            k.contains("transaction")
                || k.contains("retransmission")
                || k.contains("handoff")
                || k.contains("branch")
                || k.contains("cancel")
                || k.contains("failure_route")
                || k.contains("stray")
                || k.starts_with("ringsip_requests_")
                || k.starts_with("ringsip_responses_")
                || k.starts_with("ringsip_replies_")
                || k.starts_with("ringsip_drops_")
                || k.starts_with("ringsip_dispatcher_selected")
        })
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything useful when a call assertion fails: the UAC's errors, ringsip's figures and
/// log, and the story (every message each sipp sent or received) of the first failed calls.
/// Stops the UASs to read their traces.
fn diag(d: &Daemon, uac: &UacRun, uas: &mut [&mut Uas]) -> String {
    let errors = std::fs::read_to_string(uac.dir.0.join("errors.log")).unwrap_or_default();
    let mut failed: Vec<String> = Vec::new();
    for pat in ["Call-Id '", "Call-Id: ", "Dead call "] {
        for piece in errors.split(pat).skip(1) {
            let id: String = piece.chars().take_while(|c| !matches!(c, '\'' | ',' | ' ' | '\n' | '\r')).collect();
            if !id.is_empty() && !failed.contains(&id) && failed.len() < 3 {
                failed.push(id);
            }
        }
    }
    let mut traces = vec![("uac".to_string(), uac.trace())];
    for u in uas.iter_mut() {
        traces.push((format!("uas:{}", u.port), u.finish()));
    }
    let mut story = String::new();
    for id in &failed {
        story.push_str(&format!("\n--- call {id}:\n"));
        let mut lines: Vec<String> = Vec::new();
        for (who, t) in &traces {
            for m in t.0.iter().filter(|m| m.call_id() == id) {
                lines.push(format!(
                    "{} {who} {} {} | CSeq {} | top Via {}",
                    m.time,
                    if m.received { "<-" } else { "->" },
                    m.start,
                    m.first("CSeq").unwrap_or(""),
                    m.first("Via").unwrap_or("")
                ));
            }
        }
        lines.sort();
        story.push_str(&lines.join("\n"));
    }
    format!(
        "\n--- uac: {uac:?}\n--- uac errors:\n{}\n--- ringsip metrics:\n{}\n--- ringsip log (tail):\n{}{story}",
        head(&uac.dir.0.join("errors.log"), 30),
        d.metrics.and_then(e2e::scrape).map(|m| txn_figures(&m)).unwrap_or_default(),
        tail(&d.log_text(), 30)
    )
}

/// Assert that all `calls` of the run succeeded, with [`diag`] when not.
fn assert_all_pass(d: &Daemon, r: &UacRun, calls: u64, uas: &mut [&mut Uas], what: &str) {
    if (r.successful, r.failed, r.exit) != (calls, 0, 0) {
        panic!("{what}: {} of {calls} calls succeeded, {} failed{}", r.successful, r.failed, diag(d, r, uas));
    }
}

/// Wait (up to `within`) until no transaction is live; panics with the figures when they do
/// not drain. The gauge must exist, one series per shard.
fn assert_drains(d: &mut Daemon, shards: usize, within: Duration) {
    let m = metrics(d);
    assert_eq!(
        series(&m, "ringsip_transactions"),
        shards,
        "ringsip_transactions{{shard}} per shard\n{}",
        txn_figures(&m)
    );
    let start = Instant::now();
    let addr = d.metrics.expect("metrics address");
    let (mut last, mut failed_scrapes) = (None, 0);
    let drained = e2e::wait_for(within, || match e2e::scrape(addr) {
        Some(m) => {
            let zero = m.sum("ringsip_transactions") == 0.0;
            last = Some(m);
            zero
        }
        None => {
            failed_scrapes += 1;
            false
        }
    });
    let m = last.unwrap_or_default();
    assert!(
        drained,
        "ringsip_transactions still {} after {:?} ({failed_scrapes} scrapes failed; ringsip running: {})\n{}\n{}",
        m.sum("ringsip_transactions"),
        start.elapsed(),
        d.alive(),
        txn_figures(&m),
        tail(&d.log_text(), 40)
    );
    eprintln!("transactions drained in {:.1} s", start.elapsed().as_secs_f64());
}

fn need_two_cpus() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        panic!("this test needs two CPUs");
    }
}

/// With t1 = 100 ms every timer of a 2xx-answered call and its BYE is over within 6.4 s
/// (Timer J = 64*T1, K = T4 = 5 s).
const DRAIN_2XX: Duration = Duration::from_secs(15);
/// A leg that got a non-2xx final response waits for Timer D, 32 s on UDP whatever T1 is
/// (RFC 3261 Table 4: "at least 32 s"; ringsip-proto's client transaction keeps it).
const DRAIN_NON_2XX: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------------------
// 1. whole calls through record-route
// ---------------------------------------------------------------------------------------

fn record_routed_calls(shards: usize) {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let net = Net::new();
    let (pa, pb) = (e2e::free_udp_port(), e2e::free_udp_port());
    let text = config(&net, "t1 = \"100ms\"\nno_reply_timeout = \"2s\"", "round-robin", &two(pa, pb), "1s");
    let uas = shared_scenario("uas.xml");
    let mut a = Uas::start(&sipp, &uas, pa);
    let mut b = Uas::start(&sipp, &uas, pb);
    let mut d = Daemon::with_config("rr", &text, &["--shards", &shards.to_string()], Some(net.metrics));
    wait_up(&d, &[pa, pb]);

    const CALLS: u64 = 200;
    let r = Uac::new(shared_scenario("uac.xml"), CALLS, 100).run(&sipp, net.listen);
    assert_all_pass(&d, &r, CALLS, &mut [&mut a, &mut b], "every call succeeds");

    // the caller followed the route set: its ACKs and BYEs name ringsip in Route
    let me = format!("127.0.0.1:{}", net.listen.port());
    let uac = r.trace();
    for method in ["ACK", "BYE"] {
        let sent = uac.sent_requests(method);
        assert!(sent.len() as u64 >= CALLS, "UAC sent {} {method}s", sent.len());
        for m in &sent {
            assert!(
                m.all("Route").any(|v| v.contains(&me)),
                "the UAC's {method} follows the route set (Route: ringsip):\n{}",
                m.text()
            );
        }
    }

    let (ta, tb) = (a.finish(), b.finish());
    let mut invites = 0;
    for (t, u) in [(&ta, &a), (&tb, &b)] {
        let inv = t.requests("INVITE");
        invites += inv.len() as u64;
        assert!(!inv.is_empty(), "round-robin: UAS {} got INVITEs\n{}", u.port, u.errors());
        for m in &inv {
            // RFC 3261 §16.6 step 4: ringsip's URI, with lr, in Record-Route
            assert!(
                m.all("Record-Route").any(|v| v.contains(&me) && v.contains(";lr")),
                "INVITE at UAS {} carries ringsip's Record-Route ({me};lr):\n{}",
                u.port,
                m.text()
            );
            assert!(m.first("Via").is_some_and(|v| v.contains(&me)), "top Via is ringsip's:\n{}", m.text());
        }
        // ACK and BYE came through ringsip: its Via on top, its Route entry consumed
        for method in ["ACK", "BYE"] {
            let got = t.requests(method);
            assert_eq!(got.len(), inv.len(), "UAS {} got one {method} per INVITE", u.port);
            for m in got {
                assert!(
                    m.first("Via").is_some_and(|v| v.contains(&me)),
                    "{method} at UAS {} came through ringsip (its Via on top):\n{}",
                    u.port,
                    m.text()
                );
                assert!(
                    !m.all("Route").any(|v| v.contains(&me)),
                    "ringsip removed its own Route entry (§16.4):\n{}",
                    m.text()
                );
            }
        }
    }
    assert_eq!(invites, CALLS, "one INVITE per call reached the destinations");

    let m = metrics(&d);
    for method in ["INVITE", "ACK", "BYE"] {
        assert_eq!(
            m.get(&format!("ringsip_requests_received_total{{method=\"{method}\"}}")),
            CALLS as f64,
            "{method} received\n{}",
            txn_figures(&m)
        );
        assert_eq!(
            m.get(&format!("ringsip_requests_forwarded_total{{method=\"{method}\"}}")),
            CALLS as f64,
            "{method} relayed\n{}",
            txn_figures(&m)
        );
    }
    // a server transaction per INVITE and per BYE (the 2xx ACK has none)
    assert!(
        m.sum("ringsip_transactions_created_total") >= 2.0 * CALLS as f64,
        "transactions created\n{}",
        txn_figures(&m)
    );
    assert_eq!(m.sum("ringsip_transactions_refused_total"), 0.0);
    assert_drains(&mut d, shards, DRAIN_2XX);
    assert_eq!(d.stop(), Some(0), "clean stop");
}

#[test]
fn record_routed_calls_go_through_ringsip_with_one_shard() {
    record_routed_calls(1);
}

#[test]
fn record_routed_calls_go_through_ringsip_with_two_shards() {
    need_two_cpus();
    record_routed_calls(2);
}

// ---------------------------------------------------------------------------------------
// 2. failover on 503
// ---------------------------------------------------------------------------------------

#[test]
fn a_destination_answering_503_is_failed_over_and_the_caller_never_sees_it() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let net = Net::new();
    let (p503, pok) = (e2e::free_udp_port(), e2e::free_udp_port());
    let text = config(&net, "t1 = \"100ms\"\nno_reply_timeout = \"2s\"", "round-robin", &two(p503, pok), "1s");
    let mut bad = Uas::start(&sipp, &scenario("uas-503.xml"), p503);
    let mut good = Uas::start(&sipp, &shared_scenario("uas.xml"), pok);
    let mut d = Daemon::with_config("503", &text, &["--shards", "2"], Some(net.metrics));
    wait_up(&d, &[p503, pok]);

    const CALLS: u64 = 100;
    let r = Uac::new(shared_scenario("uac.xml"), CALLS, 50).run(&sipp, net.listen);
    assert_all_pass(&d, &r, CALLS, &mut [&mut bad, &mut good], "every call succeeds");
    let uac = r.trace();
    for code in [503, 500] {
        let seen = uac.received_responses(code);
        assert!(seen.is_empty(), "the caller saw a {code}:\n{}", seen[0].text());
    }

    let (tb, tg) = (bad.finish(), good.finish());
    let refused = tb.requests("INVITE").len() as u64;
    assert!(
        (CALLS * 4 / 10..=CALLS * 6 / 10).contains(&refused),
        "round-robin sends about half of the calls to the 503 destination first: {refused} of {CALLS}\n{}",
        bad.errors()
    );
    // ringsip ACKs the 503 hop by hop (RFC 3261 §17.1.1.3), so the refusing UAS ends its calls
    assert_eq!(tb.requests("ACK").len() as u64, refused, "every 503 ACKed by ringsip\n{}", bad.errors());
    assert_eq!(tg.requests("INVITE").len() as u64, CALLS, "every call ends up on the good destination");
    let m = metrics(&d);
    assert_eq!(selected(&m, p503), refused as f64, "{}", txn_figures(&m));
    assert_drains(&mut d, 2, DRAIN_NON_2XX);
    assert_eq!(d.stop(), Some(0), "clean stop");
}

// ---------------------------------------------------------------------------------------
// 3. failover on no answer
// ---------------------------------------------------------------------------------------

#[test]
fn a_silent_destination_times_out_and_is_failed_over() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let net = Net::new();
    // nothing listens on the silent port; a long probe interval keeps it "up" for the whole
    // test, so every call sent there has to time out (no_reply_timeout) and fail over
    let (silent, pok) = (e2e::free_udp_port(), e2e::free_udp_port());
    let text = config(&net, "t1 = \"100ms\"\nno_reply_timeout = \"1s\"", "round-robin", &two(silent, pok), "120s");
    let mut good = Uas::start(&sipp, &shared_scenario("uas.xml"), pok);
    let mut d = Daemon::with_config("silent", &text, &["--shards", "1"], Some(net.metrics));
    wait_up(&d, &[pok]);
    let silent_up = up(&d, silent);

    const CALLS: u64 = 20;
    let mut uac = Uac::new(shared_scenario("uac.xml"), CALLS, 5);
    uac.recv_timeout = Duration::from_secs(10);
    let r = uac.run(&sipp, net.listen);
    assert_all_pass(
        &d,
        &r,
        CALLS,
        &mut [&mut good],
        &format!("every call succeeds after the failover (silent destination up at the start: {silent_up})"),
    );
    let m = metrics(&d);
    let timed_out = selected(&m, silent);
    assert!(
        timed_out >= (CALLS / 4) as f64,
        "calls were sent to the silent destination first: {timed_out}\n{}",
        txn_figures(&m)
    );
    assert_eq!(selected(&m, pok), CALLS as f64, "and every call ended on the good one\n{}", txn_figures(&m));
    assert_eq!(m.sum("ringsip_branch_timeouts_total"), timed_out, "one local timeout per silent branch");
    // the calls sent to the silent destination were answered only after the timeout (1 s);
    // the others at once
    let uac = r.trace();
    let mut slow = 0;
    for invite in uac.0.iter().filter(|m| !m.received && m.is_request("INVITE")) {
        let answered = uac.0.iter().find(|m| m.received && m.is_response(200) && m.call_id() == invite.call_id());
        let setup = answered.map(|a| seconds(&a.time) - seconds(&invite.time)).expect("every call answered");
        if setup >= 0.95 {
            assert!(setup < 3.0, "answered {setup:.2} s after its INVITE: one timeout, then the other destination");
            slow += 1;
        }
    }
    assert_eq!(slow as f64, timed_out, "one call waited for the timeout per INVITE sent to the silent destination");
    assert_eq!(good.finish().requests("INVITE").len() as u64, CALLS);
    assert_eq!(d.stop(), Some(0), "clean stop");
}

// ---------------------------------------------------------------------------------------
// 4. CANCEL before the answer
// ---------------------------------------------------------------------------------------

#[test]
fn a_call_cancelled_while_ringing_ends_487_without_failover_or_leak() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let net = Net::new();
    let (pcancel, pother) = (e2e::free_udp_port(), e2e::free_udp_port());
    // priority: every call goes to the cancelling UAS first; the other is only a failover
    // target, so an INVITE there would be a failover after the CANCEL
    let dests = format!(
        r#"{{ uri = "sip:127.0.0.1:{pcancel}", priority = 10 }}, {{ uri = "sip:127.0.0.1:{pother}", priority = 5 }}"#
    );
    // any failure fails over, 487 included, unless the `cancelled` rule returns first: so a
    // failover here means ringsip did not see the branch as cancelled
    let text = config_failing_over_if(
        &net,
        "t1 = \"100ms\"\nno_reply_timeout = \"2s\"",
        "priority",
        &dests,
        "1s",
        "$rs >= 300 or timeout",
    );
    let mut callee = Uas::start(&sipp, &scenario("uas-cancel.xml"), pcancel);
    let mut other = Uas::start(&sipp, &shared_scenario("uas.xml"), pother);
    let mut d = Daemon::with_config("cancel", &text, &["--shards", "2"], Some(net.metrics));
    wait_up(&d, &[pcancel, pother]);

    const CALLS: u64 = 50;
    let r = Uac::new(scenario("uac-cancel.xml"), CALLS, 10).run(&sipp, net.listen);
    assert_all_pass(&d, &r, CALLS, &mut [&mut callee, &mut other], "every call is cancelled cleanly");
    let uac = r.trace();
    assert_eq!(uac.received_responses(487).len() as u64, CALLS, "the caller got the callee's 487");

    let (tc, to) = (callee.finish(), other.finish());
    assert_eq!(tc.requests("INVITE").len() as u64, CALLS, "{}", callee.errors());
    assert_eq!(tc.requests("CANCEL").len() as u64, CALLS, "ringsip passed every CANCEL on (§16.10)");
    for m in tc.requests("CANCEL") {
        assert!(
            m.first("Via").is_some_and(|v| v.contains(&format!("127.0.0.1:{}", net.listen.port()))),
            "ringsip's own CANCEL, with its Via:\n{}",
            m.text()
        );
    }
    assert_eq!(tc.requests("ACK").len() as u64, CALLS, "ringsip ACKed every 487 hop by hop\n{}", callee.errors());
    let leaked = to.all_requests("INVITE");
    assert!(
        leaked.is_empty(),
        "no failover after a CANCEL, yet {} INVITEs reached the other destination",
        leaked.len()
    );
    let m = metrics(&d);
    assert_eq!(selected(&m, pother), 0.0, "{}", txn_figures(&m));
    assert_eq!(m.sum("ringsip_cancels_total"), CALLS as f64, "{}", txn_figures(&m));
    assert_drains(&mut d, 2, DRAIN_NON_2XX);
    assert_eq!(d.stop(), Some(0), "clean stop");
}

// ---------------------------------------------------------------------------------------
// 5. packet loss
// ---------------------------------------------------------------------------------------

#[test]
fn calls_complete_through_ten_percent_packet_loss() {
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let net = Net::new();
    let (pa, pb) = (e2e::free_udp_port(), e2e::free_udp_port());
    // the default T1 (500 ms, sipp's too): ringsip's Timer E and the caller's BYE retransmission
    // run alike, so a BYE whose 200 was lost is retransmitted by both and ringsip absorbs
    // the caller's copy
    let text = config(&net, "t1 = \"500ms\"\nno_reply_timeout = \"8s\"", "round-robin", &two(pa, pb), "1s");
    let uas = scenario("uas-lossy.xml");
    let mut a = Uas::start(&sipp, &uas, pa);
    let mut b = Uas::start(&sipp, &uas, pb);
    let mut d = Daemon::with_config("lossy", &text, &["--shards", "2"], Some(net.metrics));
    wait_up(&d, &[pa, pb]);

    const CALLS: u64 = 100;
    let mut uac = Uac::new(scenario("uac-lossy.xml"), CALLS, 20);
    uac.recv_timeout = Duration::from_secs(30);
    uac.timeout = Duration::from_secs(90);
    let r = uac.run(&sipp, net.listen);
    assert_all_pass(&d, &r, CALLS, &mut [&mut a, &mut b], "every call completes despite the loss");
    assert!(r.retransmissions > 0, "the caller had to retransmit: {r:?}");
    let (ta, tb) = (a.finish(), b.finish());
    // A 2xx retransmitted by the UAS (its ACK was lost) must reach the caller: the caller's
    // ACK is the only thing that stops it (RFC 3261 §13.3.1.4), and a proxy forwards every
    // 2xx upstream, retransmissions included (§16.7; RFC 6026 §7.2, the Accepted state).
    // Nothing is lost between ringsip and the caller here, so the caller gets them all.
    let sent_2xx = ta.responses(false, 200, "INVITE") + tb.responses(false, 200, "INVITE");
    let got_2xx = r.trace().responses(true, 200, "INVITE");
    assert!(sent_2xx > CALLS as usize, "some 200s were retransmitted (lost ACKs or lost 200s): {sent_2xx}");
    assert_eq!(
        got_2xx,
        sent_2xx,
        "every 200 to INVITE the callees sent, retransmissions included, reached the caller\n{}",
        txn_figures(&metrics(&d))
    );
    let lost = |t: &Trace| t.all_requests("BYE").len() - t.requests("BYE").len();
    eprintln!(
        "uac retransmissions {}, 200s to INVITE sent by the UASs {sent_2xx}, BYE retransmissions at the UAS: {} + {}",
        r.retransmissions,
        lost(&ta),
        lost(&tb)
    );
    let m = metrics(&d);
    eprintln!("{}", txn_figures(&m));
    assert!(m.get("ringsip_requests_received_total{method=\"INVITE\"}") >= CALLS as f64, "{}", txn_figures(&m));
    assert!(
        m.sum("ringsip_retransmissions_absorbed_total") > 0.0,
        "ringsip absorbed the caller's retransmissions\n{}",
        txn_figures(&m)
    );
    assert!(
        m.sum("ringsip_retransmissions_sent_total") > 0.0,
        "ringsip retransmitted requests whose answer was lost\n{}",
        txn_figures(&m)
    );
    assert_eq!(d.stop(), Some(0), "clean stop");
}

// ---------------------------------------------------------------------------------------
// 6. hand-offs between shards
// ---------------------------------------------------------------------------------------

/// With two shards each has its own SO_REUSEPORT socket on the listen address, and the
/// kernel picks the socket by a hash of the 4-tuple. A transaction belongs to the shard that
/// received its request (from the caller's address); the callee's responses come from the
/// UAS's address, a different 4-tuple, so they land on whichever shard that hashes to. With
/// one source port per call (`-t un`) the callers' ports spread over both shards while each
/// UAS's responses always reach one shard: some responses necessarily arrive at the shard
/// that does not own their transaction, which must pass them on.
#[test]
fn responses_landing_on_the_other_shard_are_handed_to_the_owner() {
    need_two_cpus();
    let Some(sipp) = e2e::sipp() else { return };
    let _x = e2e::exclusive();
    let net = Net::new();
    let (pa, pb) = (e2e::free_udp_port(), e2e::free_udp_port());
    let text = config(&net, "t1 = \"100ms\"\nno_reply_timeout = \"2s\"", "round-robin", &two(pa, pb), "1s");
    let uas = shared_scenario("uas.xml");
    let mut a = Uas::start(&sipp, &uas, pa);
    let mut b = Uas::start(&sipp, &uas, pb);
    let mut d = Daemon::with_config("handoff", &text, &["--shards", "2"], Some(net.metrics));
    wait_up(&d, &[pa, pb]);

    const CALLS: u64 = 200;
    let mut uac = Uac::new(shared_scenario("uac.xml"), CALLS, 100);
    uac.transport = "un";
    uac.extra = &["-max_socket", "1000"]; // sipp's default (50000) exceeds the open-file limit
    let r = uac.run(&sipp, net.listen);
    assert_all_pass(&d, &r, CALLS, &mut [&mut a, &mut b], "every call succeeds");
    let m = metrics(&d);
    assert_eq!(series(&m, "ringsip_handoffs_total"), 2, "one series per shard\n{}", txn_figures(&m));
    assert!(m.sum("ringsip_handoffs_total") > 0.0, "responses were handed to the owning shard\n{}", txn_figures(&m));
    // both shards took calls (the callers' ports spread over them)
    let per_shard: Vec<f64> =
        (0..2).map(|s| m.get(&format!("ringsip_transactions_created_total{{shard=\"{s}\"}}"))).collect();
    assert!(per_shard.iter().all(|n| *n > 0.0), "both shards own transactions: {per_shard:?}\n{}", txn_figures(&m));
    assert!(
        e2e::wait_for(Duration::from_secs(2), || {
            let m = metrics(&d);
            m.sum("ringsip_handoffs_received_total") == m.sum("ringsip_handoffs_total")
        }),
        "every message passed on was taken by its owner\n{}",
        txn_figures(&metrics(&d))
    );
    assert_drains(&mut d, 2, DRAIN_2XX);
    assert_eq!(d.stop(), Some(0), "clean stop");
}
