//! End-to-end helpers: run the real `ringsip` daemon on a config, scrape its metrics, and
//! drive it with sipp over loopback.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Serialises the tests that use fixed ports or measure (one at a time per test process).
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The `ringsip` binary of this build profile, built on first use (the tests of this crate do
/// not depend on it as a library, so cargo does not build it for them).
pub fn ringsip_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("ringsip", "ringsip")).clone()
}

/// The `ringsipctl` binary of this build profile, built on first use.
pub fn ringsipctl_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("ringsip-mgmt", "ringsipctl")).clone()
}

/// `cargo build -p <package> --bin <bin>` in this test's profile; the binary's path.
fn build_bin(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", package, "--bin", bin]).current_dir(workspace());
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("run cargo build for {bin}: {e}"));
    assert!(status.success(), "building {bin} failed");
    let path = profile_dir.join(bin);
    assert!(path.is_file(), "{} missing after the build", path.display());
    path
}

/// What a `ringsipctl` run printed.
#[derive(Debug, Clone)]
pub struct CtlOutput {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Run `ringsipctl --socket <socket> <args>`.
pub fn ctl(socket: &Path, args: &[&str]) -> CtlOutput {
    let out = Command::new(ringsipctl_bin())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ringsipctl");
    CtlOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Resident memory of process `pid` in KiB (from /proc).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The sipp binary, or `None` (with a loud message) outside CI when it is not installed.
/// Under `CI=true` a missing sipp fails the test: it never skips silently.
pub fn sipp() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("sipp")).find(|p| p.is_file()));
    match found {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("sipp is not installed (apt-get install -y sip-tester); CI requires it")
        }
        None => {
            eprintln!("SKIPPED: sipp is not installed (apt-get install -y sip-tester); this test needs it");
            None
        }
    }
}

/// A free UDP port on 127.0.0.1 (free when asked; the test binds it soon after).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ringsip-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon, stopped (SIGTERM, then waited for) on drop.
pub struct Daemon {
    child: Child,
    /// Its metrics endpoint, if configured.
    pub metrics: Option<SocketAddr>,
    /// Its log file (in a scratch dir: never beside the config, which may be in the source tree).
    pub log: PathBuf,
    _dir: Option<TempDir>,
    _log_dir: TempDir,
}

impl Daemon {
    /// Start `ringsip --config <file> <args>`; wait until its metrics endpoint answers (when
    /// `metrics` is given) or a short moment.
    pub fn start(config: &Path, args: &[&str], metrics: Option<SocketAddr>) -> Daemon {
        let log_dir = TempDir::new("log");
        let name = config.file_stem().map_or_else(|| "ringsip".into(), |s| s.to_string_lossy().into_owned());
        let log = log_dir.0.join(format!("{name}.log"));
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(ringsip_bin())
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RINGSIP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start ringsip");
        let mut d = Daemon { child, metrics, log, _dir: None, _log_dir: log_dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("ringsip exited at start ({status}):\n{}", d.log_text());
            }
            match metrics {
                Some(m) if scrape(m).is_some() => break,
                None if Instant::now() > deadline - Duration::from_secs(19) => break,
                _ => {}
            }
            assert!(Instant::now() < deadline, "ringsip did not come up:\n{}", d.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// Write `config_text` into a scratch dir and start on it.
    pub fn with_config(tag: &str, config_text: &str, args: &[&str], metrics: Option<SocketAddr>) -> Daemon {
        let dir = TempDir::new(tag);
        let file = dir.0.join("ringsip.toml");
        std::fs::write(&file, config_text).unwrap();
        let mut d = Daemon::start(&file, args, metrics);
        d._dir = Some(dir);
        d
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Is it still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Scrape its metrics (panics when it has no endpoint or it does not answer).
    pub fn metrics(&self) -> Metrics {
        scrape(self.metrics.expect("no metrics endpoint configured")).expect("metrics endpoint did not answer")
    }

    /// Send SIGTERM and wait for a clean exit; returns its exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        // signal by pid with the `kill` command (no unsafe libc call needed here)
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            self.stop();
        }
    }
}

/// Scraped metrics: series (name with labels, as printed) → value.
#[derive(Debug, Clone, Default)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Value of a series, e.g. `ringsip_drops_total{reason="unparsable"}`; 0 when absent.
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// Sum of every series of a metric name.
    pub fn sum(&self, name: &str) -> f64 {
        self.0.iter().filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{"))).map(|(_, v)| v).sum()
    }
}

/// GET /metrics from `addr`.
pub fn scrape(addr: SocketAddr) -> Option<Metrics> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    let mut m = BTreeMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (k, v) = line.rsplit_once(' ')?;
        m.insert(k.to_string(), v.parse().ok()?);
    }
    Some(Metrics(m))
}

/// A sipp process, killed on drop.
pub struct Sipp {
    child: Child,
    /// Its working directory (trace files).
    pub dir: PathBuf,
}

impl Sipp {
    /// Start a UAS (the shared `uas.xml`, answering OPTIONS too) on 127.0.0.1:`port`.
    pub fn uas(sipp: &Path, port: u16, dir: &Path) -> Sipp {
        let scen = crate::shared_dir().join("bench/sipp/uas.xml");
        let child = Command::new(sipp)
            .args(["-sf"])
            .arg(scen)
            .args([
                "-aa",
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "u1",
                "-nostdin",
                "-buff_size",
                "4194304",
                "-trace_err",
            ])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp uas");
        Sipp { child, dir: dir.to_path_buf() }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Result of a sipp UAC run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallResult {
    /// Calls completed.
    pub successful: u64,
    /// Calls failed.
    pub failed: u64,
    /// sipp's exit code (0: every call succeeded).
    pub exit: i32,
}

/// Run the shared `uac.xml` (INVITE, 180, 200, ACK, BYE, 200) against `target`: `calls` calls at
/// `rate` calls/s, from 127.0.0.1:`local_port`. Bounded: gives up after `timeout`.
pub fn run_uac(
    sipp: &Path,
    target: SocketAddr,
    local_port: u16,
    calls: u64,
    rate: u64,
    dir: &Path,
    timeout: Duration,
) -> CallResult {
    run_uac_calling(sipp, target, local_port, calls, rate, dir, timeout, "service")
}

/// [`run_uac`] calling `number` (sipp `-s`: the Request-URI and To user).
#[allow(clippy::too_many_arguments)]
pub fn run_uac_calling(
    sipp: &Path,
    target: SocketAddr,
    local_port: u16,
    calls: u64,
    rate: u64,
    dir: &Path,
    timeout: Duration,
    number: &str,
) -> CallResult {
    let scen = crate::shared_dir().join("bench/sipp/uac.xml");
    let mut child = Command::new(sipp)
        .arg("-sf")
        .arg(scen)
        .args(["-s", number])
        .args(["-i", "127.0.0.1", "-p", &local_port.to_string(), "-t", "u1", "-nostdin"])
        .args(["-m", &calls.to_string(), "-r", &rate.to_string(), "-l", &(rate * 10).max(100).to_string()])
        .args([
            "-buff_size",
            "4194304",
            "-recv_timeout",
            "5000",
            "-timeout",
            &format!("{}s", timeout.as_secs()),
            "-timeout_error",
        ])
        .args(["-trace_stat", "-stf", "uac_stat.csv", "-fd", "1", "-trace_err"])
        .arg(target.to_string())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp uac");
    let deadline = Instant::now() + timeout + Duration::from_secs(10);
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
    let stat = SippStat::read(&dir.join("uac_stat.csv"));
    CallResult {
        successful: stat.last("SuccessfulCall(C)"),
        failed: stat.last("FailedCall(C)"),
        exit: status.code().unwrap_or(-1),
    }
}

/// A sipp statistics file (`-trace_stat -stf FILE`): `;`-separated, a header line, one line
/// per period.
pub struct SippStat {
    header: Vec<String>,
    last: Vec<String>,
}

impl SippStat {
    /// Read `path` (an unreadable or empty file reads as no columns).
    pub fn read(path: &Path) -> SippStat {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = text.lines();
        let split = |l: &str| l.split(';').map(str::to_string).collect::<Vec<_>>();
        let header = split(lines.next().unwrap_or(""));
        let last = split(lines.rfind(|l| !l.trim().is_empty()).unwrap_or(""));
        SippStat { header, last }
    }

    /// Column `name` of the last line as a number (0 when absent).
    pub fn last(&self, name: &str) -> u64 {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|i| self.last.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Wait until `cond` holds (polling every 100 ms) or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
