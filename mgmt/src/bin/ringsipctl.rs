//! `ringsipctl` — the operator's side of ringsip's management plane.
//!
//! ```text
//! ringsipctl [--socket PATH | --tcp IP:PORT (--token TOKEN | --token-file FILE)] [--json] <command>
//!
//!   push FILE [--version N]           validate a config (.toml) and build its snapshot here, or take a
//!                                     snapshot file written by `build`, and install it in the daemon
//!   build FILE -o OUT [--version N]   validate a config and write its snapshot to OUT (no daemon needed)
//!   status                            version, hash, source, build time, uptime, swaps, shards and load
//!   rollback                          go back to the snapshot that ran before the current one
//!   stats                             the Prometheus text (--json: the series as an object)
//!   dispatcher list                   sets and their destinations' states
//!   dispatcher set-state SET DEST STATE
//!                                     STATE: disabled | enabled | active | inactive
//!   htable get TABLE KEY              the value alone on stdout
//!   htable set TABLE KEY VALUE [--expires SECS] [--text]
//!   htable delete TABLE KEY
//!   htable dump [TABLE]               "key<TAB>value<TAB>expires_in" lines, or every table's size
//!   htable flush TABLE                remove every entry of a table
//!   mtree match TREE KEY [--all]      "prefix<TAB>value" lines, longest first
//!   mtree summary                     the trees: type, prefixes, nodes, memory
//! ```
//!
//! The control endpoint is `--socket PATH`, else `$RINGSIP_CONTROL`, else `/tmp/ringsip.sock`;
//! or `--tcp IP:PORT` with a token (`--token-file` reads the file's first line, trimmed).
//! The protocol is in [`ringsip_mgmt::control`].
//!
//! `push` numbers a config's snapshot with `--version N`, else one above the highest version
//! `status` reports (the running one and the previous one: a daemon that rolled back still
//! refuses versions it has installed before). A snapshot file keeps the version it was built
//! with unless `--version N` restamps its header (the content hash does not cover it).
//!
//! With `--json`, a success prints the response's `result` pretty-printed (`push` adds
//! `build_ms` and `round_trip_ms`; `stats` prints `result.series`), and a failure prints
//! `{"ok":false,"kind":...,"error":...}` on stdout as well as the message on stderr. Failures
//! found before any answer from the daemon use the kinds `unreachable`, `protocol` and
//! `invalid` (a local file is invalid; an invalid config adds `errors`, one per line).
//!
//! Exit status:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the daemon refused or failed the request (`bad_request`, `refused`, `internal`, `unauthorized`), or a local file is invalid (config errors are printed as `ringsip check` prints them) |
//! | 2 | usage error (bad arguments, unreadable token file) |
//! | 3 | cannot reach the daemon, or a protocol error |
//! | 4 | not found (`not_found`: no such key, table, tree, set or destination, no match, nothing to roll back to) |

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};
use ringsip_mgmt::control::{self, ClientError, Command, Endpoint, ErrorKind, Request, Response, Value};
use ringsip_modules::snapshot;
use serde_json::{Value as J, json};

/// The socket the examples configure (`control_socket`), used when nothing else is given.
const DEFAULT_SOCKET: &str = "/tmp/ringsip.sock";
/// The environment variable naming the control socket.
const SOCKET_ENV: &str = "RINGSIP_CONTROL";
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;
const EXIT_NOT_FOUND: u8 = 4;

const LONG_ABOUT: &str = "\
ringsipctl: the operator's CLI of ringsip's management plane.

It talks to a running ringsip over its control socket (--socket PATH, else $RINGSIP_CONTROL, \
else /tmp/ringsip.sock) or over TCP with a token (--tcp IP:PORT with --token-file FILE or \
--token TOKEN; prefer the file: a token on the command line shows in `ps`).

`push` validates a config and builds its snapshot here (the slow part: CSV files, prefix \
trees), so the daemon only checks, compiles and swaps it in. With --json, a success prints \
the response's result as JSON and a failure prints {\"ok\":false,\"kind\":...,\"error\":...} \
on stdout (messages always go to stderr).

Exit status:
  0  success
  1  the daemon refused or failed the request (bad_request, refused, internal,
     unauthorized), or a local file is invalid (config errors are printed as `ringsip check`
     prints them)
  2  usage error (bad arguments, unreadable token file)
  3  cannot reach the daemon, or a protocol error
  4  not found (no such key, table, tree, set or destination, no match, nothing to roll
     back to)";

#[derive(Parser, Debug)]
#[command(name = "ringsipctl", version, about = "Control a running ringsip: push configs, inspect and change run-time state", long_about = LONG_ABOUT)]
#[command(group(ArgGroup::new("auth").args(["token", "token_file"])))]
struct Cli {
    /// Unix control socket of the daemon [default: $RINGSIP_CONTROL, else /tmp/ringsip.sock].
    #[arg(long, value_name = "PATH", conflicts_with = "tcp")]
    socket: Option<PathBuf>,
    /// TCP control listener of the daemon (needs --token or --token-file).
    #[arg(long, value_name = "IP:PORT", requires = "auth")]
    tcp: Option<SocketAddr>,
    /// The TCP listener's token (visible in `ps`: prefer --token-file).
    #[arg(long, value_name = "TOKEN", requires = "tcp")]
    token: Option<String>,
    /// File whose first line is the TCP listener's token.
    #[arg(long, value_name = "FILE", requires = "tcp")]
    token_file: Option<PathBuf>,
    /// Print the result as JSON (failures too, as {"ok":false,...}).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Install a config (validated and built into a snapshot here) or a snapshot file.
    Push {
        /// A config (.toml), or a snapshot file written by `ringsipctl build`.
        file: PathBuf,
        /// Snapshot version [default: a config gets one above the daemon's highest; a
        /// snapshot file keeps its own].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        version: Option<u64>,
    },
    /// Validate a config and write its snapshot to a file, without a daemon.
    Build {
        /// The config (.toml).
        file: PathBuf,
        /// Where to write the snapshot.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// Snapshot version.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        version: u64,
    },
    /// Version, hash, source, build time, uptime, swaps and the shards' load.
    Status,
    /// Go back to the snapshot that ran before the current one.
    Rollback,
    /// Every counter and gauge, as Prometheus text (--json: the series as an object).
    Stats,
    /// Dispatcher sets and destination states.
    #[command(subcommand)]
    Dispatcher(DispatcherCmd),
    /// Run-time key/value tables.
    #[command(subcommand)]
    Htable(HtableCmd),
    /// Prefix trees.
    #[command(subcommand)]
    Mtree(MtreeCmd),
    /// Flood detection ([pike]): the busiest sources. Bans are an htable: `htable dump ipban`,
    /// `htable delete ipban IP` lifts one.
    #[command(subcommand)]
    Pike(PikeCmd),
}

#[derive(Subcommand, Debug)]
enum PikeCmd {
    /// The sources that sent the most requests in the last window, busiest first.
    Top {
        /// How many.
        #[arg(default_value_t = 20)]
        n: usize,
    },
}

#[derive(Subcommand, Debug)]
enum DispatcherCmd {
    /// Every set and its destinations: state, probe result, operator override, weight, priority.
    List,
    /// Force a destination's state (until the next set-state; it survives pushes).
    SetState {
        /// Set id.
        set: u32,
        /// Destination URI as configured, or its IP:port.
        destination: String,
        /// disabled/enabled: the operator's override; active/inactive: mark it up or down.
        #[arg(value_enum)]
        state: DestState,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DestState {
    /// Never select it (an operator override).
    Disabled,
    /// Lift the override: probing decides again.
    Enabled,
    /// Mark it up.
    Active,
    /// Mark it down.
    Inactive,
}

impl DestState {
    fn name(self) -> &'static str {
        match self {
            DestState::Disabled => "disabled",
            DestState::Enabled => "enabled",
            DestState::Active => "active",
            DestState::Inactive => "inactive",
        }
    }
}

#[derive(Subcommand, Debug)]
enum HtableCmd {
    /// Print one entry's value alone.
    Get {
        /// Table name.
        table: String,
        /// Key.
        key: String,
    },
    /// Write an entry.
    Set {
        /// Table name.
        table: String,
        /// Key.
        key: String,
        /// Value: sent as an integer when it is one (e.g. 42, -1), else as text.
        #[arg(allow_negative_numbers = true)]
        value: String,
        /// Lifetime in seconds (0: never expires) [default: the table's autoexpire].
        #[arg(long, value_name = "SECS")]
        expires: Option<u64>,
        /// Send VALUE as text even when it looks like an integer (e.g. "007").
        #[arg(long)]
        text: bool,
    },
    /// Remove an entry.
    Delete {
        /// Table name.
        table: String,
        /// Key.
        key: String,
    },
    /// A table's live entries (tab-separated lines: key, value, expires_in), or every table's size.
    Dump {
        /// Table name [default: list the tables and their sizes].
        table: Option<String>,
    },
    /// Remove every entry of a table.
    Flush {
        /// Table name.
        table: String,
    },
}

#[derive(Subcommand, Debug)]
enum MtreeCmd {
    /// The longest prefix of KEY in a tree (a tab-separated line: prefix, value).
    Match {
        /// Tree name.
        tree: String,
        /// The key (e.g. a dialled number).
        key: String,
        /// Every matching prefix, longest first.
        #[arg(long)]
        all: bool,
    },
    /// Every tree: type, alphabet, prefixes, nodes, distinct values, memory.
    Summary,
}

/// Why a command failed: the exit status, the text for stderr, the JSON for `--json`.
#[derive(Debug)]
struct Failure {
    code: u8,
    stderr: String,
    /// Pretty-printed, `ok` first.
    json: String,
}

/// A failure found before any answer from the daemon, shaped like a [`Response`].
#[derive(serde::Serialize)]
struct LocalFailure<'a> {
    ok: bool,
    kind: &'a str,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<String>>,
}

impl LocalFailure<'_> {
    fn render(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| format!("{{\"ok\":false,\"kind\":{:?}}}", self.kind))
    }
}

impl Failure {
    /// A failure found here, before or without the daemon.
    fn local(code: u8, kind: &str, message: impl Into<String>) -> Failure {
        let message = message.into();
        let json = LocalFailure { ok: false, kind, error: &message, errors: None }.render();
        Failure { code, stderr: format!("ringsipctl: {message}"), json }
    }

    /// A local file that is not valid input.
    fn invalid(message: impl Into<String>) -> Failure {
        Failure::local(EXIT_FAILED, "invalid", message)
    }

    /// The daemon answered with a failure.
    fn daemon(r: Response) -> Failure {
        let code = match r.kind {
            Some(ErrorKind::NotFound) => EXIT_NOT_FOUND,
            _ => EXIT_FAILED,
        };
        let message = r.error.clone().unwrap_or_else(|| "the daemon refused the request without saying why".into());
        let json = serde_json::to_string_pretty(&r).unwrap_or_else(|_| r#"{"ok":false}"#.to_string());
        Failure { code, stderr: format!("ringsipctl: {message}"), json }
    }

    /// No answer from the daemon.
    fn client(e: ClientError) -> Failure {
        let kind = match e {
            ClientError::Connect(..) => "unreachable",
            ClientError::Protocol(_) => "protocol",
        };
        Failure::local(EXIT_UNREACHABLE, kind, e.to_string())
    }

    /// A config with errors: each on its line, then a summary (as `ringsip check` prints them).
    fn config(file: &Path, errors: &ringsip_config::Errors) -> Failure {
        let n = errors.len();
        let summary = format!("{} invalid ({n} error{})", file.display(), if n == 1 { "" } else { "s" });
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        Failure {
            code: EXIT_FAILED,
            stderr: format!("{errors}\nringsipctl: {summary}"),
            json: LocalFailure { ok: false, kind: "invalid", error: &summary, errors: Some(lines) }.render(),
        }
    }
}

/// What a successful command prints: text for people, JSON for `--json`.
struct Output {
    human: String,
    json: J,
}

/// Where and how to send requests.
struct Ctx {
    endpoint: Endpoint,
    token: Option<String>,
}

impl Ctx {
    /// Send one request; `Ok` is the response's `result`.
    fn call(&self, command: Command, payload: Option<&[u8]>) -> Result<J, Failure> {
        let request = Request { token: self.token.clone(), command };
        match control::call(&self.endpoint, &request, payload) {
            Ok(r) if r.ok => Ok(r.result),
            Ok(r) => Err(Failure::daemon(r)),
            Err(e) => Err(Failure::client(e)),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    let json_mode = cli.json;
    let result = endpoint(&cli).and_then(|ctx| run(&ctx, cli.command));
    match result {
        Ok(out) => {
            let text = if json_mode { pretty(&out.json) } else { out.human };
            write_stdout(&text)
        }
        Err(f) => {
            eprintln!("{}", f.stderr);
            if json_mode {
                let _ = write_stdout(&format!("{}\n", f.json));
            }
            ExitCode::from(f.code)
        }
    }
}

/// JSON for people and machines, with a final newline.
fn pretty(v: &J) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Print `text`; a closed pipe (`| head`) is not an error, a full disk is.
fn write_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringsipctl: cannot write the output: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The endpoint and token the options name.
fn endpoint(cli: &Cli) -> Result<Ctx, Failure> {
    if let Some(addr) = cli.tcp {
        let token = match (&cli.token, &cli.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(file)) => read_token(file)?,
            (None, None) => return Err(Failure::local(EXIT_USAGE, "usage", "--tcp needs --token or --token-file")),
        };
        return Ok(Ctx { endpoint: Endpoint::Tcp(addr), token: Some(token) });
    }
    let path = cli
        .socket
        .clone()
        .or_else(|| std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    Ok(Ctx { endpoint: Endpoint::Unix(path), token: None })
}

/// The first line of a token file, trimmed.
fn read_token(file: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::local(EXIT_USAGE, "usage", format!("cannot read the token file {}: {e}", file.display()))
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(Failure::local(
            EXIT_USAGE,
            "usage",
            format!("the token file {} is empty (its first line is the token)", file.display()),
        ));
    }
    Ok(token.to_string())
}

fn run(ctx: &Ctx, cmd: Cmd) -> Result<Output, Failure> {
    match cmd {
        Cmd::Push { file, version } => push(ctx, &file, version),
        Cmd::Build { file, output, version } => build(&file, &output, version),
        Cmd::Status => {
            let r = ctx.call(Command::Status, None)?;
            Ok(Output { human: status_text(&r), json: r })
        }
        Cmd::Rollback => {
            let r = ctx.call(Command::Rollback, None)?;
            let mut human = format!(
                "rolled back: version {} (hash {}) from {} is running\n",
                text(&r["version"]),
                text(&r["hash"]),
                text(&r["source"])
            );
            human.push_str(&changes_text(&r));
            Ok(Output { human, json: r })
        }
        Cmd::Stats => {
            let r = ctx.call(Command::Stats, None)?;
            let mut human = r["text"].as_str().unwrap_or_default().to_string();
            if !human.is_empty() && !human.ends_with('\n') {
                human.push('\n');
            }
            Ok(Output { human, json: r["series"].clone() })
        }
        Cmd::Dispatcher(DispatcherCmd::List) => {
            let r = ctx.call(Command::DispatcherList, None)?;
            Ok(Output { human: dispatcher_text(&r), json: r })
        }
        Cmd::Dispatcher(DispatcherCmd::SetState { set, destination, state }) => {
            let r =
                ctx.call(Command::DispatcherSetState { set, destination, state: state.name().to_string() }, None)?;
            let human =
                format!("set {} destination {}: now {}\n", text(&r["set"]), text(&r["destination"]), text(&r["state"]));
            Ok(Output { human, json: r })
        }
        Cmd::Htable(c) => htable(ctx, c),
        Cmd::Mtree(MtreeCmd::Match { tree, key, all }) => {
            let r = ctx.call(Command::MtreeMatch { tree, key, all }, None)?;
            let human = lines(&r["matches"], |m| format!("{}\t{}", text(&m["prefix"]), text(&m["value"])));
            Ok(Output { human, json: r })
        }
        Cmd::Pike(PikeCmd::Top { n }) => {
            let r = ctx.call(Command::PikeTop { limit: Some(n) }, None)?;
            let rows: Vec<Vec<String>> = array(&r["top"])
                .iter()
                .map(|t| {
                    vec![
                        text(&t["source"]),
                        text(&t["requests"]),
                        if t["flooding"] == J::Bool(true) { "flooding".into() } else { String::new() },
                    ]
                })
                .collect();
            let head = format!(
                "{} sources tracked; more than {} requests per {} ms is a flood\n",
                text(&r["sources"]),
                text(&r["limit"]),
                text(&r["window_ms"])
            );
            Ok(Output { human: head + &table(&["source", "requests", ""], &rows), json: r })
        }
        Cmd::Mtree(MtreeCmd::Summary) => {
            let r = ctx.call(Command::MtreeSummary, None)?;
            Ok(Output { human: mtree_text(&r), json: r })
        }
    }
}

fn htable(ctx: &Ctx, cmd: HtableCmd) -> Result<Output, Failure> {
    match cmd {
        HtableCmd::Get { table, key } => {
            let r = ctx.call(Command::HtableGet { table, key }, None)?;
            Ok(Output { human: format!("{}\n", text(&r["value"])), json: r })
        }
        HtableCmd::Set { table, key, value, expires, text: as_text } => {
            let value = match value.parse::<i64>() {
                Ok(i) if !as_text => Value::Int(i),
                _ => Value::Text(value),
            };
            let r = ctx.call(Command::HtableSet { table, key, value, expires }, None)?;
            let lifetime = match expires {
                None => String::new(),
                Some(0) => " (never expires)".to_string(),
                Some(s) => format!(" (expires in {s} s)"),
            };
            let human =
                format!("htable {}: {} = {}{lifetime}\n", text(&r["table"]), text(&r["key"]), text(&r["value"]));
            Ok(Output { human, json: r })
        }
        HtableCmd::Delete { table, key } => {
            let r = ctx.call(Command::HtableDelete { table, key }, None)?;
            Ok(Output { human: format!("htable {}: {} deleted\n", text(&r["table"]), text(&r["key"])), json: r })
        }
        HtableCmd::Dump { table: Some(table) } => {
            let r = ctx.call(Command::HtableDump { table: Some(table) }, None)?;
            let human = lines(&r["entries"], |e| {
                format!("{}\t{}\t{}", text(&e["key"]), text(&e["value"]), text(&e["expires_in_s"]))
            });
            Ok(Output { human, json: r })
        }
        HtableCmd::Dump { table: None } => {
            let r = ctx.call(Command::HtableDump { table: None }, None)?;
            let rows: Vec<Vec<String>> = array(&r["tables"])
                .iter()
                .map(|t| {
                    vec![
                        text(&t["name"]),
                        text(&t["entries"]),
                        t["max_entries"].as_u64().map_or_else(|| "unlimited".to_string(), |m| m.to_string()),
                        t["autoexpire_s"].as_u64().map_or_else(|| "never".to_string(), |s| format!("{s}s")),
                    ]
                })
                .collect();
            let human = if rows.is_empty() {
                "no htables\n".to_string()
            } else {
                table(&["TABLE", "ENTRIES", "MAX", "AUTOEXPIRE"], &rows)
            };
            Ok(Output { human, json: r })
        }
        HtableCmd::Flush { table } => {
            let r = ctx.call(Command::HtableFlush { table }, None)?;
            let n = r["removed"].as_u64().unwrap_or(0);
            let human = format!("htable {}: removed {n} entr{}\n", text(&r["table"]), if n == 1 { "y" } else { "ies" });
            Ok(Output { human, json: r })
        }
    }
}

/// What FILE holds.
enum Input {
    /// Snapshot bytes (from `ringsipctl build`).
    Snapshot(Vec<u8>),
    /// A validated config.
    Config(Box<ringsip_config::Config>),
}

/// Read FILE: a snapshot (by its magic bytes) or a config, validated.
fn read_input(file: &Path) -> Result<Input, Failure> {
    let cannot = |e: std::io::Error| Failure::invalid(format!("cannot read {}: {e}", file.display()));
    let mut f = std::fs::File::open(file).map_err(cannot)?;
    let mut head = Vec::with_capacity(snapshot::MAGIC.len());
    (&mut f).take(snapshot::MAGIC.len() as u64).read_to_end(&mut head).map_err(cannot)?;
    if head == snapshot::MAGIC {
        f.read_to_end(&mut head).map_err(cannot)?;
        return Ok(Input::Snapshot(head));
    }
    drop(f);
    ringsip_config::load(file).map(|c| Input::Config(Box::new(c))).map_err(|errs| Failure::config(file, &errs))
}

/// Milliseconds with three decimals.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The version a pushed config gets: one above the highest the daemon installed. `status`
/// shows the running and the previous snapshot; after a rollback the higher one is the
/// previous, and the daemon refuses any version it has gone past.
fn next_version(ctx: &Ctx) -> Result<u64, Failure> {
    let st = ctx.call(Command::Status, None)?;
    let Some(running) = st["version"].as_u64() else {
        return Err(Failure::local(EXIT_UNREACHABLE, "protocol", "the daemon's status has no version"));
    };
    let highest =
        running.max(st["previous_version"].as_u64().unwrap_or(0)).max(st["highest_version"].as_u64().unwrap_or(0));
    Ok(highest.saturating_add(1))
}

fn push(ctx: &Ctx, file: &Path, version: Option<u64>) -> Result<Output, Failure> {
    let (bytes, build_ms) = match read_input(file)? {
        Input::Snapshot(mut bytes) => {
            snapshot::header(&bytes).map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
            if let Some(v) = version {
                restamp(&mut bytes, v).map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
            }
            (bytes, None)
        }
        Input::Config(cfg) => {
            let version = match version {
                Some(v) => v,
                None => next_version(ctx)?,
            };
            let started = Instant::now();
            let bytes = snapshot::build(&cfg, version, snapshot::unix_ms_now())
                .map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
            (bytes, Some(ms(started.elapsed())))
        }
    };
    let meta = snapshot::header(&bytes).map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
    let source = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()).display().to_string();
    let sent = Instant::now();
    let mut r = ctx.call(Command::Push { source, bytes: bytes.len() as u64 }, Some(&bytes))?;
    let round_trip_ms = ms(sent.elapsed());

    let mut human = format!(
        "pushed version {} (hash {}) from {}\n",
        r["version"].as_u64().unwrap_or(meta.version),
        r["hash"].as_str().map_or_else(|| meta.hash_hex(), str::to_string),
        file.display()
    );
    let built = build_ms.map_or_else(|| "none (snapshot file)".to_string(), |b| format!("{b} ms"));
    human.push_str(&format!(
        "timings: build {built}, transfer+install {round_trip_ms} ms (round trip); daemon: check {} ms, compile {} ms, swap {} ns\n",
        text(&r["check_ms"]),
        text(&r["compile_ms"]),
        text(&r["swap_ns"])
    ));
    human.push_str(&changes_text(&r));
    if let Some(o) = r.as_object_mut() {
        o.insert("build_ms".into(), json!(build_ms));
        o.insert("round_trip_ms".into(), json!(round_trip_ms));
    }
    Ok(Output { human, json: r })
}

/// Set a snapshot's version in its header (the content hash covers only the archive).
fn restamp(bytes: &mut [u8], version: u64) -> Result<(), snapshot::SnapshotError> {
    snapshot::restamp(bytes, version)
}

fn build(file: &Path, output: &Path, version: u64) -> Result<Output, Failure> {
    let cfg = match read_input(file)? {
        Input::Config(c) => c,
        Input::Snapshot(_) => {
            return Err(Failure::invalid(format!(
                "{} is already a snapshot: push it as it is (`ringsipctl push {0} [--version N]`)",
                file.display()
            )));
        }
    };
    let started = Instant::now();
    let bytes = snapshot::build(&cfg, version, snapshot::unix_ms_now())
        .map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
    let build_ms = ms(started.elapsed());
    let meta = snapshot::header(&bytes).map_err(|e| Failure::invalid(format!("{}: {e}", file.display())))?;
    write_atomically(output, &bytes)
        .map_err(|e| Failure::local(EXIT_FAILED, "io", format!("cannot write {}: {e}", output.display())))?;
    let human = format!(
        "built {} from {}: version {}, hash {}, {} bytes, in {build_ms} ms\n",
        output.display(),
        file.display(),
        meta.version,
        meta.hash_hex(),
        bytes.len()
    );
    let json = json!({
        "version": meta.version,
        "hash": meta.hash_hex(),
        "built_unix_ms": meta.built_unix_ms,
        "bytes": bytes.len(),
        "build_ms": build_ms,
        "source": file.display().to_string(),
        "output": output.display().to_string(),
    });
    Ok(Output { human, json })
}

/// Write `bytes` beside `path` and rename it into place: no half-written snapshot.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A JSON value for people: strings bare, null as "-".
fn text(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        J::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The elements of a JSON array (none when it is not one).
fn array(v: &J) -> &[J] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// One line per array element.
fn lines(v: &J, line: impl Fn(&J) -> String) -> String {
    array(v).iter().map(|e| line(e) + "\n").collect()
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The "changes:" and "warning:" lines of a push or rollback result.
fn changes_text(r: &J) -> String {
    let mut out = String::new();
    let changes = array(&r["changes"]);
    if !changes.is_empty() {
        out.push_str("changes:\n");
        for c in changes {
            out.push_str(&format!("  {}\n", text(c)));
        }
    }
    for w in array(&r["warnings"]) {
        out.push_str(&format!("warning: {}\n", text(w)));
    }
    out
}

fn status_text(r: &J) -> String {
    let built = r["built_unix_ms"].as_u64().map_or_else(|| "-".to_string(), utc);
    let uptime = r["uptime_s"].as_u64().map_or_else(|| "-".to_string(), uptime);
    let previous = r["previous_version"].as_u64().map_or_else(|| "none".to_string(), |v| v.to_string());
    let mut out = format!(
        "version:   {}\nhash:      {}\nsource:    {}\nbuilt:     {built}\nuptime:    {uptime}\nswaps:     {}\nrefused:   {}\nprevious:  {previous}\n",
        text(&r["version"]),
        text(&r["hash"]),
        text(&r["source"]),
        text(&r["swaps"]),
        text(&r["refused"]),
    );
    let rows: Vec<Vec<String>> = array(&r["shards"])
        .iter()
        .map(|s| {
            ["shard", "cpu", "node", "rx_per_s", "tx_per_s", "rx_datagrams"].iter().map(|k| text(&s[*k])).collect()
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&table(&["SHARD", "CPU", "NODE", "RX/S", "TX/S", "RX TOTAL"], &rows));
    }
    out
}

fn dispatcher_text(r: &J) -> String {
    let sets = array(&r["sets"]);
    if sets.is_empty() {
        return "no dispatcher sets\n".to_string();
    }
    let mut out = String::new();
    for (i, s) in sets.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "set {} name {} algorithm {}\n",
            text(&s["id"]),
            text(&s["name"]),
            text(&s["algorithm"])
        ));
        let rows: Vec<Vec<String>> = array(&s["destinations"])
            .iter()
            .map(|d| ["uri", "state", "probed", "forced", "weight", "priority"].iter().map(|k| text(&d[*k])).collect())
            .collect();
        if rows.is_empty() {
            out.push_str("  (no destinations)\n");
            continue;
        }
        for line in table(&["URI", "STATE", "PROBED", "FORCED", "WEIGHT", "PRIORITY"], &rows).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

fn mtree_text(r: &J) -> String {
    let rows: Vec<Vec<String>> = array(&r["trees"])
        .iter()
        .map(|t| {
            vec![
                text(&t["name"]),
                text(&t["type"]),
                text(&t["alphabet"]),
                text(&t["prefixes"]),
                text(&t["nodes"]),
                text(&t["distinct_values"]),
                t["memory_bytes"].as_u64().map_or_else(|| "-".to_string(), size),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no mtrees\n".to_string();
    }
    table(&["TREE", "TYPE", "ALPHABET", "PREFIXES", "NODES", "VALUES", "MEMORY"], &rows)
}

/// Bytes in a readable unit.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds as "2d 3h 4m 5s" (leading zero units left out).
fn uptime(s: u64) -> String {
    let parts = [(s / 86400, "d"), (s / 3600 % 24, "h"), (s / 60 % 60, "m"), (s % 60, "s")];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(parts.len() - 1);
    parts[first..].iter().map(|(n, u)| format!("{n}{u}")).collect::<Vec<_>>().join(" ")
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC time: `2024-05-01T12:34:56.789Z`.
fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let sod = secs % 86400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", sod / 3600, sod / 60 % 60, sod % 60, unix_ms % 1000)
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes_read_well() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_714_566_896_789), "2024-05-01T12:34:56.789Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(65), "1m 5s");
        assert_eq!(uptime(3600), "1h 0m 0s");
        assert_eq!(uptime(2 * 86400 + 3 * 3600 + 4 * 60 + 5), "2d 3h 4m 5s");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn tables_align_and_trim() {
        let t = table(&["A", "LONG"], &[vec!["xyz".into(), "1".into()], vec!["q".into(), "22".into()]]);
        assert_eq!(t, "A    LONG\nxyz  1\nq    22\n");
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
