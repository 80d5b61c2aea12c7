//! `ringsipctl`'s contract: arguments and usage errors, exit statuses, the JSON requests each
//! command sends, and what it prints, against a fake daemon (a listener thread that speaks
//! the control framing and answers canned responses).

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ringsip_mgmt::control::{self, MAX_FRAME, MAX_REQUEST, ReadWrite};
use ringsip_modules::snapshot;
use serde_json::{Value as J, json};

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        // short: Unix socket paths are limited to 108 bytes
        let dir = std::env::temp_dir().join(format!("rsctl-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the fake daemon answers to a request.
enum Answer {
    /// This response JSON, framed.
    Json(J),
    /// These bytes, framed (not a response).
    Raw(Vec<u8>),
    /// Close the connection without answering.
    Hangup,
}

fn ok(result: J) -> Answer {
    Answer::Json(json!({ "ok": true, "result": result }))
}

fn err(kind: &str, error: &str) -> Answer {
    Answer::Json(json!({ "ok": false, "kind": kind, "error": error }))
}

/// One request the fake daemon received.
#[derive(Clone, Debug)]
struct Seen {
    request: J,
    payload: Option<Vec<u8>>,
}

type Handler = Arc<dyn Fn(&J) -> Answer + Send + Sync>;

/// A fake daemon: reads each connection's request (and a push's snapshot frame), records
/// them, and answers what the handler says.
struct Fake {
    socket: PathBuf,
    tcp: Option<std::net::SocketAddr>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    _dir: Option<TempDir>,
}

impl Fake {
    /// On a Unix socket in a fresh temp dir.
    fn unix(handler: impl Fn(&J) -> Answer + Send + Sync + 'static) -> Fake {
        let dir = TempDir::new("fake");
        let socket = dir.0.join("ctl.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let mut fake = Fake::new(Arc::new(handler), move || {
            listener.accept().map(|(s, _)| Box::new(s) as Box<dyn ReadWrite + Send>)
        });
        fake.socket = socket;
        fake._dir = Some(dir);
        fake
    }

    /// On 127.0.0.1, an ephemeral TCP port.
    fn tcp(handler: impl Fn(&J) -> Answer + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fake = Fake::new(Arc::new(handler), move || {
            listener.accept().map(|(s, _)| Box::new(s) as Box<dyn ReadWrite + Send>)
        });
        fake.tcp = Some(addr);
        fake
    }

    fn new(
        handler: Handler,
        mut accept: impl FnMut() -> io::Result<Box<dyn ReadWrite + Send>> + Send + 'static,
    ) -> Fake {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while let Ok(mut s) = accept() {
                if stop2.load(Ordering::Acquire) {
                    break;
                }
                serve(&mut *s, &handler, &seen2);
            }
        });
        Fake { socket: PathBuf::new(), tcp: None, seen, stop, _dir: None }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<J> {
        self.seen().into_iter().map(|s| s.request).collect()
    }

    /// Run ringsipctl against this daemon's Unix socket.
    fn ctl(&self, args: &[&str]) -> Out {
        let mut all = vec!["--socket", self.socket.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&all)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // wake the accept loop so the thread ends
        if let Some(a) = self.tcp {
            let _ = std::net::TcpStream::connect(a);
        } else {
            let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        }
    }
}

fn serve(s: &mut dyn ReadWrite, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let Ok(frame) = control::read_frame(s, MAX_REQUEST) else { return };
    let request: J = serde_json::from_slice(&frame).expect("ringsipctl sent a JSON request");
    let payload = if request["cmd"] == "push" {
        Some(control::read_frame(s, MAX_FRAME).expect("a push is followed by the snapshot frame"))
    } else {
        None
    };
    let answer = handler(&request);
    seen.lock().unwrap().push(Seen { request, payload });
    match answer {
        Answer::Json(j) => {
            let _ = control::write_frame(s, &serde_json::to_vec(&j).unwrap());
        }
        Answer::Raw(b) => {
            let _ = control::write_frame(s, &b);
        }
        Answer::Hangup => {}
    }
}

/// What a ringsipctl run printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> J {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    fn success(&self) -> &Out {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

fn run(args: &[&str]) -> Out {
    run_env(args, None)
}

fn run_env(args: &[&str], control_env: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringsipctl"));
    cmd.args(args).stdin(Stdio::null()).env_remove("RINGSIP_CONTROL");
    if let Some(v) = control_env {
        cmd.env("RINGSIP_CONTROL", v);
    }
    let out = cmd.output().expect("run ringsipctl");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const GOOD_CONFIG: &str = r#"
[server]
listen = ["udp:127.0.0.1:5060"]

[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080"]

[[mtree]]
name = "routes"
type = "sets"
entries = [{ prefix = "49", value = "1" }, { prefix = "4930", value = "1" }]

[[route.request]]
do = ['select 1 else reply 503 "No destination"', "forward"]
"#;

fn status_result(version: u64, previous: Option<u64>) -> J {
    json!({
        "version": version,
        "hash": "00112233445566778899aabbccddeeff",
        "built_unix_ms": 1_714_566_896_789u64,
        "source": "/etc/ringsip/ringsip.toml",
        "previous_version": previous,
        "uptime_s": 93_784,
        "swaps": 4,
        "refused": 1,
        "shards": [
            { "shard": 0, "cpu": 2, "node": 0, "rx_datagrams": 123456, "tx_datagrams": 120000,
              "rx_per_s": 812.0, "tx_per_s": 800.0, "rx_batches": 4000 },
            { "shard": 1, "cpu": 3, "node": 1, "rx_datagrams": 7, "tx_datagrams": 7,
              "rx_per_s": 0.0, "tx_per_s": 0.0, "rx_batches": 7 },
        ],
    })
}

/// The install result the daemon returns for a push of `version`.
fn installed(version: u64, source: &str) -> J {
    json!({
        "version": version,
        "hash": "ffeeddccbbaa99887766554433221100",
        "built_unix_ms": 1_714_566_896_789u64,
        "source": source,
        "bytes": 1234,
        "check_ms": 0.412,
        "compile_ms": 1.5,
        "swap_ns": 310,
        "changes": ["dispatcher set 1: destination sip:127.0.0.1:5081 added", "mtree routes: 2 → 3 prefixes"],
        "warnings": ["server.listen changed: it takes effect at the next restart; the running value stays"],
    })
}

#[test]
fn help_exits_0_and_documents_the_commands_and_exit_statuses() {
    let h = run(&["--help"]);
    h.success();
    for needle in [
        "Exit status",
        "0  success",
        "1  the daemon refused",
        "2  usage error",
        "3  cannot reach the daemon",
        "4  not found",
        "push",
        "build",
        "status",
        "rollback",
        "stats",
        "dispatcher",
        "htable",
        "mtree",
        "--socket",
        "--tcp",
        "--token-file",
        "--json",
        "RINGSIP_CONTROL",
    ] {
        assert!(h.stdout.contains(needle), "--help lacks {needle:?}:\n{}", h.stdout);
    }
    assert!(h.stderr.is_empty(), "{h:?}");
    let sub = run(&["htable", "set", "--help"]);
    sub.success();
    assert!(sub.stdout.contains("--expires") && sub.stdout.contains("--text"), "{sub:?}");
    run(&["--version"]).success();
}

#[test]
fn usage_errors_exit_2_with_a_precise_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&[], "Usage: ringsipctl"),
        (&["--tcp", "127.0.0.1:9", "status"], "--token"),
        (&["--token", "secret", "status"], "--tcp"),
        (&["--socket", "/tmp/x", "--tcp", "127.0.0.1:9", "--token", "t", "status"], "cannot be used with"),
        (&["--tcp", "127.0.0.1:9", "--token", "a", "--token-file", "f", "status"], "cannot be used with"),
        (&["--tcp", "not-an-address", "--token", "t", "status"], "invalid value 'not-an-address'"),
        (&["dispatcher", "set-state", "1", "sip:a", "up"], "invalid value 'up' for '<STATE>'"),
        (&["dispatcher", "set-state", "one", "sip:a", "disabled"], "invalid value 'one' for '<SET>'"),
        (&["dispatcher", "frob"], "unrecognized subcommand 'frob'"),
        (&["build", "a.toml"], "--output <OUT>"),
        (&["push"], "<FILE>"),
        (&["push", "a.toml", "--version", "0"], "invalid value '0' for '--version <N>'"),
        (&["htable", "set", "t", "k"], "<VALUE>"),
        (&["htable", "get", "t"], "<KEY>"),
        (&["htable", "set", "t", "k", "v", "--expires", "soon"], "invalid value 'soon' for '--expires <SECS>'"),
        (&["mtree", "match", "routes"], "<KEY>"),
        (&["status", "extra"], "unexpected argument 'extra'"),
    ];
    for (args, needle) in cases {
        let o = run(args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(o.stderr.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}: {o:?}");
    }
    // the STATE error lists the valid states
    let o = run(&["dispatcher", "set-state", "1", "sip:a", "up"]);
    assert!(o.stderr.contains("[possible values: disabled, enabled, active, inactive]"), "{}", o.stderr);
}

#[test]
fn an_unreadable_token_file_is_a_usage_error() {
    let dir = TempDir::new("tok");
    let missing = dir.0.join("nope");
    let o = run(&["--tcp", "127.0.0.1:9", "--token-file", missing.to_str().unwrap(), "status"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.starts_with("ringsipctl: cannot read the token file "), "{o:?}");
    assert!(o.stderr.contains(missing.to_str().unwrap()), "{o:?}");
    let empty = dir.write("empty", "\n  \nsecond");
    let o = run(&["--tcp", "127.0.0.1:9", "--token-file", empty.to_str().unwrap(), "status"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("is empty"), "{o:?}");
}

#[test]
fn a_missing_socket_exits_3_naming_the_path() {
    let dir = TempDir::new("nosock");
    let path = dir.0.join("missing.sock");
    let p = path.to_str().unwrap();
    let o = run(&["--socket", p, "status"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.starts_with("ringsipctl: cannot connect to the control socket "), "{o:?}");
    assert!(o.stderr.contains(p), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    // --json: a machine-readable failure on stdout too
    let o = run(&["--socket", p, "--json", "htable", "get", "t", "k"]);
    assert_eq!(o.code, 3, "{o:?}");
    let j = o.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["kind"], "unreachable");
    assert!(j["error"].as_str().unwrap().contains(p), "{j}");
    assert!(o.stdout.trim_start().starts_with("{\n  \"ok\": false"), "ok comes first: {}", o.stdout);
    // $RINGSIP_CONTROL when --socket is absent; --socket wins over it
    let o = run_env(&["status"], Some(p));
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.contains(p), "{o:?}");
    let other = dir.0.join("other.sock");
    let o = run_env(&["--socket", other.to_str().unwrap(), "status"], Some(p));
    assert!(o.stderr.contains(other.to_str().unwrap()), "{o:?}");
    // neither: the examples' /tmp/ringsip.sock
    if !Path::new("/tmp/ringsip.sock").exists() {
        let o = run(&["status"]);
        assert_eq!(o.code, 3, "{o:?}");
        assert!(o.stderr.contains("/tmp/ringsip.sock"), "{o:?}");
    }
    // push of a config asks the daemon for the version: unreachable too
    let cfg = dir.write("c.toml", GOOD_CONFIG);
    let o = run(&["--socket", p, "push", cfg.to_str().unwrap()]);
    assert_eq!(o.code, 3, "{o:?}");
}

#[test]
fn status_prints_every_field_and_the_shard_table() {
    let d = Fake::unix(|_| ok(status_result(7, Some(6))));
    let o = d.ctl(&["status"]);
    o.success();
    assert_eq!(d.requests(), [json!({ "cmd": "status" })]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    for (key, value) in [
        ("version:", "7"),
        ("hash:", "00112233445566778899aabbccddeeff"),
        ("source:", "/etc/ringsip/ringsip.toml"),
        ("built:", "2024-05-01T12:34:56.789Z"),
        ("uptime:", "1d 2h 3m 4s"),
        ("swaps:", "4"),
        ("refused:", "1"),
        ("previous:", "6"),
    ] {
        assert!(
            lines.iter().any(|l| l.strip_prefix(key).map(str::trim) == Some(value)),
            "no {key} {value}:\n{}",
            o.stdout
        );
    }
    let header = lines.iter().position(|l| l.starts_with("SHARD")).expect("a shard table");
    let cols: Vec<&str> = lines[header].split("  ").filter(|c| !c.is_empty()).map(str::trim).collect();
    assert_eq!(cols, ["SHARD", "CPU", "NODE", "RX/S", "TX/S", "RX TOTAL"]);
    let row: Vec<&str> = lines[header + 1].split_whitespace().collect();
    assert_eq!(row, ["0", "2", "0", "812.0", "800.0", "123456"]);
    let row: Vec<&str> = lines[header + 2].split_whitespace().collect();
    assert_eq!(row, ["1", "3", "1", "0.0", "0.0", "7"]);

    // --json: the result as it came, before or after the command
    for args in [&["--json", "status"][..], &["status", "--json"][..]] {
        let o = d.ctl(args);
        o.success();
        assert_eq!(o.json(), status_result(7, Some(6)));
    }
    // no previous snapshot
    let d = Fake::unix(|_| ok(status_result(1, None)));
    let o = d.ctl(&["status"]);
    assert!(o.success().stdout.lines().any(|l| l.starts_with("previous:") && l.ends_with("none")), "{o:?}");
}

#[test]
fn push_of_a_config_builds_locally_numbers_from_status_and_reports() {
    let dir = TempDir::new("push");
    let cfg = dir.write("lb.toml", GOOD_CONFIG);
    let abs = cfg.to_str().unwrap().to_string();
    let source = abs.clone();
    // running 6, previous 9 (a rollback happened): the daemon refuses anything up to 9
    let d = Fake::unix(move |r| match r["cmd"].as_str() {
        Some("status") => ok(status_result(6, Some(9))),
        Some("push") => ok(installed(10, &source)),
        _ => err("bad_request", "unexpected"),
    });
    // relative FILE, run from the temp dir
    let o = Command::new(env!("CARGO_BIN_EXE_ringsipctl"))
        .args(["--socket", d.socket.to_str().unwrap(), "push", "lb.toml"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let o = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    o.success();
    let seen = d.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].request, json!({ "cmd": "status" }));
    let push = &seen[1];
    assert_eq!(push.request["cmd"], "push");
    // the daemon logs where it came from: an absolute path
    let source = Path::new(push.request["source"].as_str().unwrap());
    assert!(source.is_absolute(), "{source:?}");
    assert_eq!(source.canonicalize().unwrap(), cfg.canonicalize().unwrap());
    let payload = push.payload.as_ref().unwrap();
    assert_eq!(push.request["bytes"], payload.len() as u64);
    assert_eq!(&payload[..8], snapshot::MAGIC);
    let meta = snapshot::header(payload).unwrap();
    assert_eq!(meta.version, 10, "one above the highest of running and previous");
    // the snapshot is exactly what `build` makes of the same config (hash of the content)
    assert!(snapshot::open(payload).is_ok());

    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "pushed version 10 (hash ffeeddccbbaa99887766554433221100) from lb.toml");
    assert!(lines[1].starts_with("timings: build "), "{}", o.stdout);
    for needle in ["transfer+install", "check 0.412 ms", "compile 1.5 ms", "swap 310 ns"] {
        assert!(lines[1].contains(needle), "{needle}: {}", lines[1]);
    }
    assert_eq!(
        &lines[2..],
        [
            "changes:",
            "  dispatcher set 1: destination sip:127.0.0.1:5081 added",
            "  mtree routes: 2 → 3 prefixes",
            "warning: server.listen changed: it takes effect at the next restart; the running value stays",
        ]
    );

    // --json: the result plus build_ms and round_trip_ms
    let o = d.ctl(&["--json", "push", &abs]);
    let j = o.success().json();
    let mut expected = installed(10, &abs);
    for k in ["build_ms", "round_trip_ms"] {
        assert!(j[k].as_f64().is_some_and(|v| v >= 0.0), "{k}: {j}");
        expected[k] = j[k].clone();
    }
    assert_eq!(j, expected);
}

#[test]
fn push_with_a_version_does_not_ask_the_daemon_for_one() {
    let dir = TempDir::new("pushv");
    let cfg = dir.write("c.toml", GOOD_CONFIG);
    let d = Fake::unix(|_| ok(installed(42, "c.toml")));
    d.ctl(&["push", cfg.to_str().unwrap(), "--version", "42"]).success();
    let seen = d.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(snapshot::header(seen[0].payload.as_ref().unwrap()).unwrap().version, 42);
}

#[test]
fn an_invalid_config_is_reported_like_ringsip_check_and_nothing_is_sent() {
    let dir = TempDir::new("bad");
    let text = GOOD_CONFIG.replace("select 1 else", "select 9 else").replace("\"round-robin\"", "\"no-such-algo\"");
    let bad = dir.write("bad.toml", &text);
    let d = Fake::unix(|_| ok(status_result(1, None)));
    let o = d.ctl(&["push", bad.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    let errs: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(errs.len(), 3, "two errors and the summary: {}", o.stderr);
    let algo = text.lines().position(|l| l.contains("no-such-algo")).unwrap() + 1;
    let select = text.lines().position(|l| l.contains("select 9")).unwrap() + 1;
    let prefix = bad.to_str().unwrap();
    assert!(errs[0].starts_with(&format!("{prefix}:{algo}:")), "{}", o.stderr);
    assert!(
        errs[1].starts_with(&format!("{prefix}:{select}:")) && errs[1].contains("no dispatcher set with id 9"),
        "{}",
        o.stderr
    );
    assert_eq!(errs[2], format!("ringsipctl: {prefix} invalid (2 errors)"));
    assert!(d.seen().is_empty(), "nothing may be sent for an invalid config");

    // one error: singular; --json: the errors on stdout too
    let one = dir.write("one.toml", GOOD_CONFIG.replace("select 1 else", "select 9 else"));
    let o = d.ctl(&["--json", "push", one.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.ends_with(&format!("ringsipctl: {} invalid (1 error)\n", one.display())), "{o:?}");
    let j = o.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["kind"], "invalid");
    assert_eq!(j["errors"].as_array().unwrap().len(), 1);
    // build refuses it the same way
    let out = dir.0.join("x.snap");
    let o = run(&["build", one.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("no dispatcher set with id 9"), "{o:?}");
    assert!(!out.exists());
    // a missing file
    let o = d.ctl(&["push", dir.0.join("nope.toml").to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.starts_with("ringsipctl: cannot read ") && o.stderr.contains("nope.toml"), "{o:?}");
    assert!(d.seen().is_empty());
}

#[test]
fn build_writes_a_snapshot_that_push_sends_as_it_is() {
    let dir = TempDir::new("build");
    let cfg = dir.write("c.toml", GOOD_CONFIG);
    let snap = dir.0.join("c.snap");
    // no daemon needed
    let o = run(&["build", cfg.to_str().unwrap(), "-o", snap.to_str().unwrap(), "--version", "5"]);
    o.success();
    let bytes = std::fs::read(&snap).unwrap();
    let meta = snapshot::header(&bytes).unwrap();
    assert_eq!(meta.version, 5);
    assert!(snapshot::open(&bytes).is_ok());
    let first = o.stdout.lines().next().unwrap();
    for needle in ["version 5", &format!("hash {}", meta.hash_hex()), &format!("{} bytes", bytes.len()), " ms"] {
        assert!(first.contains(needle), "{needle}: {first}");
    }
    // default version 1; --json
    let snap1 = dir.0.join("one.snap");
    let j = run(&["--json", "build", cfg.to_str().unwrap(), "--output", snap1.to_str().unwrap()]).success().json();
    assert_eq!(j["version"], 1);
    assert_eq!(j["hash"], meta.hash_hex(), "same config, same hash");
    assert_eq!(j["bytes"], bytes.len() as u64);
    assert!(j["build_ms"].is_number(), "{j}");
    assert_eq!(snapshot::header(&std::fs::read(&snap1).unwrap()).unwrap().version, 1);

    // push of the snapshot file: its own version, no status request, the bytes unchanged
    let d = Fake::unix(|_| ok(installed(5, "c.snap")));
    let o = d.ctl(&["push", snap.to_str().unwrap()]);
    o.success();
    assert!(o.stdout.contains("build none (snapshot file)"), "{o:?}");
    let seen = d.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].payload.as_deref(), Some(&bytes[..]));
    let j = d.ctl(&["--json", "push", snap.to_str().unwrap()]).success().json();
    assert_eq!(j["build_ms"], J::Null);
    assert!(j["round_trip_ms"].is_number());
    // --version restamps the header only
    d.ctl(&["push", snap.to_str().unwrap(), "--version", "8"]).success();
    let sent = d.seen().last().unwrap().payload.clone().unwrap();
    assert_eq!(snapshot::header(&sent).unwrap().version, 8);
    assert_eq!(sent[..16], bytes[..16]);
    assert_eq!(sent[24..], bytes[24..]);
    assert!(snapshot::open(&sent).is_ok(), "the restamped snapshot still checks");

    // a file with the magic but no snapshot: refused here, nothing sent
    let n = d.seen().len();
    let junk = dir.write("junk.snap", b"RSNAPv1\0 this is not a snapshot");
    let o = d.ctl(&["push", junk.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.starts_with(&format!("ringsipctl: {}: not a snapshot", junk.display())), "{o:?}");
    assert_eq!(d.seen().len(), n);
    // build of a snapshot: refused
    let o = run(&["build", snap.to_str().unwrap(), "-o", dir.0.join("y").to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("already a snapshot"), "{o:?}");
}

#[test]
fn error_kinds_map_to_exit_statuses() {
    for (kind, code) in [("not_found", 4), ("bad_request", 1), ("refused", 1), ("internal", 1), ("unauthorized", 1)] {
        let message = format!("the {kind} message");
        let m = message.clone();
        let d = Fake::unix(move |_| err(kind, &m));
        let o = d.ctl(&["htable", "get", "ipban", "10.0.0.1"]);
        assert_eq!(o.code, code, "{kind}: {o:?}");
        assert_eq!(o.stderr, format!("ringsipctl: {message}\n"), "{kind}");
        assert!(o.stdout.is_empty(), "{kind}: {o:?}");
        // --json: the response itself on stdout, ok first
        let o = d.ctl(&["--json", "htable", "get", "ipban", "10.0.0.1"]);
        assert_eq!(o.code, code, "{kind}: {o:?}");
        assert_eq!(o.json(), json!({ "ok": false, "kind": kind, "error": message }));
        assert!(o.stdout.starts_with("{\n  \"ok\": false"), "{}", o.stdout);
        assert_eq!(o.stderr, format!("ringsipctl: {message}\n"), "{kind}");
    }
    // a push refused by the daemon
    let dir = TempDir::new("refuse");
    let cfg = dir.write("c.toml", GOOD_CONFIG);
    let d = Fake::unix(|_| err("refused", "version 2 is not newer than version 5 already installed"));
    let o = d.ctl(&["push", cfg.to_str().unwrap(), "--version", "2"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not newer"), "{o:?}");
    // nothing to roll back to
    let d = Fake::unix(|_| err("not_found", "nothing to roll back to: no snapshot ran before this one"));
    assert_eq!(d.ctl(&["rollback"]).code, 4);
}

#[test]
fn protocol_errors_exit_3() {
    for (what, answer) in [
        ("not JSON", (|_: &J| Answer::Raw(b"<html>".to_vec())) as fn(&J) -> Answer),
        ("not a response", |_: &J| Answer::Raw(br#"{"hello":1}"#.to_vec())),
        ("no answer", |_: &J| Answer::Hangup),
    ] {
        let d = Fake::unix(answer);
        let o = d.ctl(&["status"]);
        assert_eq!(o.code, 3, "{what}: {o:?}");
        assert!(o.stderr.starts_with("ringsipctl: control protocol error"), "{what}: {o:?}");
        let o = d.ctl(&["--json", "status"]);
        assert_eq!(o.json()["kind"], "protocol", "{what}");
    }
}

#[test]
fn rollback_prints_the_version_running_and_its_changes() {
    let d = Fake::unix(|_| ok(installed(3, "/etc/ringsip/old.toml")));
    let o = d.ctl(&["rollback"]);
    o.success();
    assert_eq!(d.requests(), [json!({ "cmd": "rollback" })]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines[0].contains("version 3") && lines[0].contains("/etc/ringsip/old.toml"), "{}", o.stdout);
    assert_eq!(lines[1], "changes:");
    assert!(lines.iter().any(|l| l.starts_with("warning: server.listen changed")), "{}", o.stdout);
    assert_eq!(d.ctl(&["--json", "rollback"]).success().json(), installed(3, "/etc/ringsip/old.toml"));
}

#[test]
fn stats_prints_the_prometheus_text_and_json_the_series() {
    let text =
        "# HELP ringsip_snapshot_version version\n# TYPE ringsip_snapshot_version gauge\nringsip_snapshot_version 3\n";
    let t = text.to_string();
    let d = Fake::unix(move |_| ok(json!({ "series": { "ringsip_snapshot_version": 3 }, "text": t })));
    let o = d.ctl(&["stats"]);
    assert_eq!(o.success().stdout, text);
    assert_eq!(d.requests(), [json!({ "cmd": "stats" })]);
    assert_eq!(d.ctl(&["--json", "stats"]).success().json(), json!({ "ringsip_snapshot_version": 3 }));
}

#[test]
fn dispatcher_commands() {
    let list = json!({ "sets": [
        { "id": 1, "name": "core", "algorithm": "round-robin", "destinations": [
            { "uri": "sip:10.0.0.1:5060", "address": "10.0.0.1:5060", "state": "active", "probed": "up",
              "forced": null, "weight": 1, "priority": 0, "attrs": "" },
            { "uri": "sip:10.0.0.2:5060", "address": "10.0.0.2:5060", "state": "disabled", "probed": "down",
              "forced": "disabled", "weight": 2, "priority": 5, "attrs": "" },
        ]},
        { "id": 2, "name": null, "algorithm": "hash-callid", "destinations": [] },
    ]});
    let l = list.clone();
    let d = Fake::unix(move |r| match r["cmd"].as_str() {
        Some("dispatcher_list") => ok(l.clone()),
        Some("dispatcher_set_state") => {
            ok(json!({ "set": r["set"], "destination": r["destination"], "state": r["state"] }))
        }
        _ => err("bad_request", "unexpected"),
    });
    let o = d.ctl(&["dispatcher", "list"]);
    o.success();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "set 1 name core algorithm round-robin");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(header, ["URI", "STATE", "PROBED", "FORCED", "WEIGHT", "PRIORITY"]);
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["sip:10.0.0.1:5060", "active", "up", "-", "1", "0"]);
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["sip:10.0.0.2:5060", "disabled", "down", "disabled", "2", "5"]
    );
    assert!(lines.contains(&"set 2 name - algorithm hash-callid"), "{}", o.stdout);
    assert!(lines.contains(&"  (no destinations)"), "{}", o.stdout);
    assert_eq!(d.ctl(&["--json", "dispatcher", "list"]).success().json(), list);

    for state in ["disabled", "enabled", "active", "inactive"] {
        let o = d.ctl(&["dispatcher", "set-state", "1", "10.0.0.2:5060", state]);
        assert_eq!(o.success().stdout, format!("set 1 destination 10.0.0.2:5060: now {state}\n"));
        let r = d.requests().pop().unwrap();
        assert_eq!(
            r,
            json!({ "cmd": "dispatcher_set_state", "set": 1, "destination": "10.0.0.2:5060", "state": state })
        );
    }
}

#[test]
fn htable_commands_send_the_right_requests_and_print_script_friendly_output() {
    let d = Fake::unix(|r| match r["cmd"].as_str() {
        Some("htable_get") if r["key"] == "n" => ok(json!({ "table": r["table"], "key": "n", "value": 42 })),
        Some("htable_get") => ok(json!({ "table": r["table"], "key": r["key"], "value": "scanner bot" })),
        Some("htable_set") => ok(json!({ "table": r["table"], "key": r["key"], "value": r["value"] })),
        Some("htable_delete") => ok(json!({ "table": r["table"], "key": r["key"], "deleted": true })),
        Some("htable_dump") if r.get("table").is_some() => ok(json!({ "table": r["table"], "entries": [
            { "key": "10.0.0.1", "value": 1, "expires_in_s": 60 },
            { "key": "10.0.0.2", "value": "scanner", "expires_in_s": null },
        ]})),
        Some("htable_dump") => ok(json!({ "tables": [
            { "name": "ipban", "entries": 2, "max_entries": 1000, "autoexpire_s": 300 },
            { "name": "seen", "entries": 0, "max_entries": null, "autoexpire_s": null },
        ]})),
        Some("htable_flush") => ok(json!({ "table": r["table"], "removed": 2 })),
        _ => err("bad_request", "unexpected"),
    });
    let last = |d: &Fake| d.requests().pop().unwrap();

    // get: the value alone
    assert_eq!(d.ctl(&["htable", "get", "ipban", "10.0.0.2"]).success().stdout, "scanner bot\n");
    assert_eq!(last(&d), json!({ "cmd": "htable_get", "table": "ipban", "key": "10.0.0.2" }));
    assert_eq!(d.ctl(&["htable", "get", "ipban", "n"]).success().stdout, "42\n");
    assert_eq!(
        d.ctl(&["--json", "htable", "get", "ipban", "n"]).success().json(),
        json!({ "table": "ipban", "key": "n", "value": 42 })
    );

    // set: integers as numbers, the rest (or --text) as strings
    for (args, value, expires) in [
        (&["1"][..], json!(1), None),
        (&["-5"][..], json!(-5), None),
        (&["9223372036854775807"][..], json!(i64::MAX), None),
        (&["9223372036854775808"][..], json!("9223372036854775808"), None),
        (&["scanner"][..], json!("scanner"), None),
        (&["1.5"][..], json!("1.5"), None),
        (&["007", "--text"][..], json!("007"), None),
        (&["1", "--expires", "60"][..], json!(1), Some(60)),
        (&["1", "--expires", "0"][..], json!(1), Some(0)),
    ] {
        let mut a = vec!["htable", "set", "ipban", "10.0.0.1"];
        a.extend_from_slice(args);
        d.ctl(&a).success();
        let mut want = json!({ "cmd": "htable_set", "table": "ipban", "key": "10.0.0.1", "value": value });
        if let Some(e) = expires {
            want["expires"] = json!(e);
        }
        assert_eq!(last(&d), want, "{args:?}");
    }
    let o = d.ctl(&["htable", "set", "ipban", "10.0.0.1", "1", "--expires", "60"]);
    assert_eq!(o.success().stdout, "htable ipban: 10.0.0.1 = 1 (expires in 60 s)\n");

    // delete
    assert_eq!(d.ctl(&["htable", "delete", "ipban", "10.0.0.1"]).success().stdout, "htable ipban: 10.0.0.1 deleted\n");
    assert_eq!(last(&d), json!({ "cmd": "htable_delete", "table": "ipban", "key": "10.0.0.1" }));

    // dump TABLE: key<TAB>value<TAB>expires_in
    let o = d.ctl(&["htable", "dump", "ipban"]);
    assert_eq!(o.success().stdout, "10.0.0.1\t1\t60\n10.0.0.2\tscanner\t-\n");
    assert_eq!(last(&d), json!({ "cmd": "htable_dump", "table": "ipban" }));
    // dump: the tables' sizes
    let o = d.ctl(&["htable", "dump"]);
    o.success();
    assert_eq!(last(&d), json!({ "cmd": "htable_dump" }));
    let rows: Vec<Vec<&str>> = o.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["TABLE", "ENTRIES", "MAX", "AUTOEXPIRE"]);
    assert_eq!(rows[1], ["ipban", "2", "1000", "300s"]);
    assert_eq!(rows[2], ["seen", "0", "unlimited", "never"]);

    // flush
    assert_eq!(d.ctl(&["htable", "flush", "ipban"]).success().stdout, "htable ipban: removed 2 entries\n");
    assert_eq!(last(&d), json!({ "cmd": "htable_flush", "table": "ipban" }));
    assert_eq!(d.ctl(&["--json", "htable", "flush", "ipban"]).success().json()["removed"], 2);
}

#[test]
fn mtree_commands() {
    let d = Fake::unix(|r| match r["cmd"].as_str() {
        Some("mtree_match") => ok(json!({ "tree": r["tree"], "key": r["key"], "matches": [
            { "prefix": "4930", "value": "1" }, { "prefix": "49", "value": "2;3" },
        ]})),
        Some("mtree_summary") => ok(json!({ "version": 3, "trees": [
            { "name": "routes", "type": "sets", "alphabet": "0123456789+", "prefixes": 2, "nodes": 5,
              "distinct_values": 2, "memory_bytes": 3 << 20 },
        ]})),
        _ => err("bad_request", "unexpected"),
    });
    let o = d.ctl(&["mtree", "match", "routes", "4930123", "--all"]);
    assert_eq!(o.success().stdout, "4930\t1\n49\t2;3\n");
    assert_eq!(d.requests(), [json!({ "cmd": "mtree_match", "tree": "routes", "key": "4930123", "all": true })]);
    d.ctl(&["mtree", "match", "routes", "+4930"]).success();
    assert_eq!(
        d.requests().pop().unwrap(),
        json!({ "cmd": "mtree_match", "tree": "routes", "key": "+4930", "all": false })
    );
    let o = d.ctl(&["mtree", "summary"]);
    o.success();
    assert_eq!(d.requests().pop().unwrap(), json!({ "cmd": "mtree_summary" }));
    let rows: Vec<Vec<&str>> = o.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["TREE", "TYPE", "ALPHABET", "PREFIXES", "NODES", "VALUES", "MEMORY"]);
    assert_eq!(rows[1], ["routes", "sets", "0123456789+", "2", "5", "2", "3.0", "MiB"]);
    assert_eq!(d.ctl(&["--json", "mtree", "summary"]).success().json()["trees"][0]["memory_bytes"], 3 << 20);
}

#[test]
fn tcp_requests_carry_the_token() {
    let d = Fake::tcp(|r| {
        if r["token"] == "s3cret-token-0123456789" {
            ok(status_result(2, Some(1)))
        } else {
            err("unauthorized", "missing or wrong token")
        }
    });
    let addr = d.tcp.unwrap().to_string();
    let dir = TempDir::new("tcp");
    let file = dir.write("token", "  s3cret-token-0123456789  \nignored second line\n");
    let o = run(&["--tcp", &addr, "--token-file", file.to_str().unwrap(), "--json", "status"]);
    assert_eq!(o.success().json()["version"], 2);
    assert_eq!(d.requests(), [json!({ "cmd": "status", "token": "s3cret-token-0123456789" })]);
    run(&["--tcp", &addr, "--token", "s3cret-token-0123456789", "status"]).success();
    let o = run(&["--tcp", &addr, "--token", "wrong", "status"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr, "ringsipctl: missing or wrong token\n");
    // a push over TCP: the status and the push both carry it
    let cfg = dir.write("c.toml", GOOD_CONFIG);
    run(&["--tcp", &addr, "--token-file", file.to_str().unwrap(), "push", cfg.to_str().unwrap()]).success();
    let reqs = d.requests();
    let n = reqs.len();
    assert_eq!(reqs[n - 2]["cmd"], "status");
    assert_eq!(reqs[n - 1]["cmd"], "push");
    assert!(reqs[n - 2..].iter().all(|r| r["token"] == "s3cret-token-0123456789"), "{reqs:?}");
    // nothing listens: exit 3 naming the address
    drop(d);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let o = run(&["--tcp", &closed, "--token", "t", "status"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.contains(&format!("tcp:{closed}")), "{o:?}");
}
