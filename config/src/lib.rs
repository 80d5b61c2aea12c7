//! ringsip's configuration: a TOML file for people (with CSV files for large destination
//! tables), the route language, and validation that reports every problem it can find with
//! `file:line:col` and a plain explanation.
//!
//! Everything here runs once, at load time: it may allocate freely. The result, [`Config`],
//! is the validated model the runtime builds its snapshot from.
//!
//! ```no_run
//! let config = match ringsip_config::load(std::path::Path::new("ringsip.toml")) {
//!     Ok(c) => c,
//!     Err(errors) => {
//!         eprintln!("{errors}"); // one line per problem: file:line:col: message
//!         std::process::exit(1);
//!     }
//! };
//! # let _ = config;
//! ```
//!
//! The TOML schema and the route language are documented in `docs/config.md`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod acl;
mod csvfile;
mod dispatcher;
mod error;
mod htable;
mod lang;
mod media;
mod mtree;
mod pike;
mod routes;
mod server;
mod transactions;
mod values;
mod walk;

pub mod route;

pub use error::{ConfigError, Errors};
pub use route::AnchorFlags;

/// Default socket receive buffer requested (`server.rcvbuf`): 8 MiB.
pub const DEFAULT_RCVBUF: usize = 8 << 20;
/// Default socket send buffer requested (`server.sndbuf`): 4 MiB.
pub const DEFAULT_SNDBUF: usize = 4 << 20;
/// Default datagrams per `recvmmsg`/`sendmmsg` batch (`server.batch`).
pub const DEFAULT_BATCH: usize = 64;
/// Largest allowed `server.batch`.
pub const MAX_BATCH: usize = 1024;
/// Default per-shard CANCEL/ACK stickiness table size (`server.sticky_entries`).
pub const DEFAULT_STICKY_ENTRIES: usize = 65536;
/// Largest allowed `server.sticky_entries` (2^24).
pub const MAX_STICKY_ENTRIES: usize = 1 << 24;
/// Default tracing filter (`server.log`).
pub const DEFAULT_LOG: &str = "info";
/// Default probe interval.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// Shortest allowed probe interval.
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Default RFC 3261 T1 (`transactions.t1`): the round-trip estimate, 500 ms.
pub const DEFAULT_T1: Duration = Duration::from_millis(500);
/// Default RFC 3261 T2 (`transactions.t2`): the longest retransmission interval of non-INVITE
/// requests and INVITE responses, 4 s (or T1 when T1 is longer).
pub const DEFAULT_T2: Duration = Duration::from_secs(4);
/// Default RFC 3261 T4 (`transactions.t4`): how long the network may hold a message, 5 s.
pub const DEFAULT_T4: Duration = Duration::from_secs(5);
/// Default proxy INVITE Timer C (`transactions.timer_c`): 180 s (RFC 3261 §16.6: more than 3
/// minutes).
pub const DEFAULT_TIMER_C: Duration = Duration::from_secs(180);
/// Default live transactions per shard (`transactions.max_per_shard`).
pub const DEFAULT_MAX_TRANSACTIONS_PER_SHARD: usize = 65536;
/// Default seconds of the `Retry-After` of the 503 sent when a shard's transactions are full
/// (`transactions.retry_after`).
pub const DEFAULT_RETRY_AFTER: u32 = 5;
/// Default `media.timeout`: a call whose media has been silent this long ends, 60 s.
pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest allowed `media.batch_wait`: 1 ms.
pub const MAX_MEDIA_BATCH_WAIT: Duration = Duration::from_millis(1);

/// A validated configuration.
#[derive(Debug, Clone, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Config {
    /// `[server]`: sockets, threads, buffers, management endpoints.
    pub server: Server,
    /// `[dispatcher]`: destination sets and their health probes.
    pub dispatcher: Dispatcher,
    /// `[[route.*]]`: the request route, the optional reply route and named routes.
    pub routes: Routes,
    /// `[[mtree]]`: named prefix trees, in file order.
    pub mtrees: Vec<MtreeTable>,
    /// `[[htable]]`: named runtime key/value tables, in file order.
    pub htables: Vec<HtableDef>,
    /// `[[acl]]`: named address groups, in file order.
    pub acls: Vec<AclGroup>,
    /// `[transactions]`: the timers and limits of the transaction-stateful proxy (`relay`).
    pub transactions: Transactions,
    /// `[media]`: the built-in RTP relay (`anchor_media`); `None` when the section is absent
    /// (then no route may use `anchor_media`).
    pub media: Option<Media>,
    /// `[pike]`: flood detection per source IP, for the `flooding` condition.
    pub pike: Option<Pike>,
    /// The file the config was read from (the `origin` given to [`parse`]).
    #[rkyv(with = rkyv::with::AsString)]
    pub source: PathBuf,
}

/// `[server]`.
#[derive(Debug, Clone, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Server {
    /// Addresses to receive on; at least one, no duplicates.
    pub listen: Vec<Listen>,
    /// `host[:port]` written in Via (and used for `myself`) instead of the listen address.
    pub advertise: Option<String>,
    /// Number of shards (worker threads); `None`: one per CPU in `cpus`, or the runtime's choice.
    pub shards: Option<usize>,
    /// CPUs to pin shards to, in order; no duplicates.
    pub cpus: Option<Vec<usize>>,
    /// Path of the control socket (`ringsip ctl`); `None`: no control socket.
    #[rkyv(with = rkyv::with::Map<rkyv::with::AsString>)]
    pub control_socket: Option<PathBuf>,
    /// Address of the TCP control listener; requires `control_token_file`.
    pub control_tcp: Option<SocketAddr>,
    /// File whose first line is the token TCP control requests must carry (read by the
    /// daemon at start; the token itself never enters a snapshot).
    #[rkyv(with = rkyv::with::Map<rkyv::with::AsString>)]
    pub control_token_file: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint; `None`: no endpoint.
    pub metrics: Option<SocketAddr>,
    /// `tracing` filter (`RUST_LOG` syntax); default `"info"`.
    pub log: String,
    /// Socket receive buffer to request, in bytes; default 8 MiB.
    pub rcvbuf: usize,
    /// Socket send buffer to request, in bytes; default 4 MiB.
    pub sndbuf: usize,
    /// Datagrams per `recvmmsg`/`sendmmsg` call; default 64, 1..=1024.
    pub batch: usize,
    /// Entries of the per-shard CANCEL/ACK stickiness table; a power of two; default 65536.
    pub sticky_entries: usize,
}

/// `[transactions]`: RFC 3261 timers and the limits of the transaction-stateful proxy (used by
/// `relay`). Every key is optional; durations are kept as [`Duration`]s (whole milliseconds).
/// Validated: `t1` 10 ms to 10 s, `t2` from `t1` to 60 s, `t4` 1 s to 60 s, `timer_c` 1 s to
/// 24 h, `no_reply_timeout` 100 ms to 64*`t1`, `max_per_shard` 16 to 10,000,000,
/// `retry_after` 0 to 3600.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Transactions {
    /// T1, the round-trip time estimate: the first retransmission interval over UDP (Timers
    /// A, E and G start at T1 and double). Default 500 ms.
    pub t1: Duration,
    /// T2, the cap of the doubling retransmission intervals (non-INVITE requests, INVITE final
    /// responses). Default 4 s, or `t1` when `t1` is longer.
    pub t2: Duration,
    /// T4, how long the network may hold a message: Timers I and K (how long a completed
    /// transaction absorbs retransmissions). Default 5 s.
    pub t4: Duration,
    /// The proxy's INVITE Timer C (RFC 3261 §16.6 step 11, §16.8): how long an INVITE branch
    /// may stay without a final response once it has had a provisional one, before it is
    /// CANCELled and treated as a 408. Default 180 s.
    pub timer_c: Duration,
    /// Timers B and F: how long a branch waits for any response before it ends with a local
    /// timeout (408). Default 64*`t1` (32 s with the default `t1`); at most 64*`t1`.
    pub no_reply_timeout: Duration,
    /// The most live transactions a shard holds; when it is full, new requests that would
    /// create one are answered 503 (with `Retry-After`). Default 65536.
    pub max_per_shard: usize,
    /// Seconds in the `Retry-After` header of that 503; 0: no `Retry-After`. Default 5.
    pub retry_after: u32,
}

impl Default for Transactions {
    fn default() -> Self {
        Transactions {
            t1: DEFAULT_T1,
            t2: DEFAULT_T2,
            t4: DEFAULT_T4,
            timer_c: DEFAULT_TIMER_C,
            no_reply_timeout: DEFAULT_T1 * 64,
            max_per_shard: DEFAULT_MAX_TRANSACTIONS_PER_SHARD,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

impl std::fmt::Display for Transactions {
    /// One line for `ringsip check`: `t1 500ms, t2 4s, t4 5s, timer C 180s, no-reply 32s, 65536
    /// per shard, Retry-After 5s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use values::show_duration as d;
        write!(
            f,
            "t1 {}, t2 {}, t4 {}, timer C {}, no-reply {}, {} per shard, ",
            d(self.t1),
            d(self.t2),
            d(self.t4),
            d(self.timer_c),
            d(self.no_reply_timeout),
            self.max_per_shard
        )?;
        match self.retry_after {
            0 => f.write_str("no Retry-After"),
            s => write!(f, "Retry-After {s}s"),
        }
    }
}

/// `[media]`: the built-in RTP relay that `anchor_media` puts calls through, and its
/// rtpengine-compatible ng control port. Validated: `address` and `advertise` concrete IPs
/// (not `0.0.0.0`/`::`) of the same family; `ports` an even first port of at least 1024 below
/// the last, at most 65535, clear of the SIP listen ports, the ng port and the metrics and TCP
/// control ports on the same address; `control` not a SIP listen address; `timeout` 1 s to 24 h; `batch_wait`
/// 0 to 1 ms. How the range is split between shards (at least 4 ports each) is checked when
/// the shards start.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Media {
    /// The IP the media ports bind on.
    pub address: IpAddr,
    /// The IP written into rewritten SDP (`c=`, and `o=` with `replace_origin`): the public
    /// address of a relay behind 1:1 NAT. Default: `address`.
    pub advertise: IpAddr,
    /// The first port of the range: even (RTP on even ports, RTCP on the next odd one), at
    /// least 1024.
    pub port_min: u16,
    /// The last port of the range (inclusive), above `port_min`.
    pub port_max: u16,
    /// Where the rtpengine ng control protocol listens (UDP, bencode); `None`: no ng port.
    pub control: Option<SocketAddr>,
    /// A call with no media in either direction for this long ends and its ports return to
    /// the pool. Default 60 s; 1 s to 24 h.
    pub timeout: Duration,
    /// Symmetric RTP: send each side's media to where that side's media comes from (latch to
    /// the source of its first packets), for phones behind NAT. Default on; `anchor_media
    /// asymmetric` turns it off for one call.
    pub latching: bool,
    /// Once a side has latched, drop packets to its ports from any other source. Default on.
    pub strict_source: bool,
    /// How long a shard's wait lingers for more completions once one has arrived: more
    /// packets per wake-up at the cost of that much latency. Default 0; at most 1 ms.
    pub batch_wait: Duration,
}

impl Media {
    /// The media ports, `port_min..=port_max`.
    pub fn ports(&self) -> std::ops::RangeInclusive<u16> {
        self.port_min..=self.port_max
    }

    /// RTP/RTCP port pairs in the range (an even port and the odd one after it): the most
    /// media streams the relay can hold at once.
    pub fn pairs(&self) -> u32 {
        let ports = u32::from(self.port_max) - u32::from(self.port_min) + 1;
        ports / 2
    }
}

impl std::fmt::Display for Media {
    /// One line for `ringsip check`: `127.0.0.1 (advertised 203.0.113.5), ports 30000-39999
    /// (5000 pairs), ng control 127.0.0.1:2223, timeout 60s, latching, strict source, batch
    /// wait 0s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use values::show_duration as d;
        write!(f, "{}", self.address)?;
        if self.advertise != self.address {
            write!(f, " (advertised {})", self.advertise)?;
        }
        write!(f, ", ports {}-{} ({} pairs), ", self.port_min, self.port_max, self.pairs())?;
        match self.control {
            Some(c) => write!(f, "ng control {c}")?,
            None => f.write_str("no ng control")?,
        }
        write!(
            f,
            ", timeout {}, {}, {}, batch wait {}",
            d(self.timeout),
            if self.latching { "latching" } else { "no latching" },
            if self.strict_source { "strict source" } else { "any source" },
            d(self.batch_wait)
        )
    }
}

/// `[pike]`: flood detection per source IP (Kamailio's pike). A source that sends more than
/// `limit` requests within a sliding `window` is *flooding* (the `flooding` condition counts
/// the request and is true then). Validated: `window` 100 ms to 60 s (default 2 s), `limit` 1
/// to 1,000,000 (required), `max_sources` 1,000 to 100,000,000 (default 1,000,000).
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Pike {
    /// The sliding window requests are counted over.
    pub window: Duration,
    /// The most requests one source may send per window.
    pub limit: u32,
    /// The most sources tracked at once; a new source beyond that is not tracked (never
    /// flooding), so a flood from spoofed sources cannot grow the table without bound.
    pub max_sources: usize,
}

impl std::fmt::Display for Pike {
    /// One line for `ringsip check`: `more than 200 requests per 2s from one source, at most
    /// 1000000 sources tracked`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "more than {} requests per {} from one source, at most {} sources tracked",
            self.limit,
            values::show_duration(self.window),
            self.max_sources
        )
    }
}

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Transport {
    /// UDP.
    Udp,
}

impl Transport {
    /// The lowercase name used in configs (`udp`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
        }
    }
}

/// One `server.listen` entry.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Listen {
    /// The transport (only UDP for now).
    pub transport: Transport,
    /// Local IP and port.
    pub addr: SocketAddr,
    /// The entry as written (`"udp:127.0.0.1:5060"`).
    pub text: String,
}

/// `[[mtree]]`: a named prefix tree (Kamailio's mtree), read from `entries` and/or a CSV
/// `file`. Validated: name unique, alphabet 1–32 distinct printable ASCII characters, every
/// prefix made of the alphabet, at most 64 characters, no duplicates, values of the tree's
/// type (set ids that exist).
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct MtreeTable {
    /// The name routes use (`lookup <name> ...`).
    pub name: String,
    /// The characters prefixes are made of (default `0123456789`).
    pub alphabet: String,
    /// What the values are.
    pub kind: MtreeKind,
    /// The prefixes and their values, inline entries first, then the file's rows.
    pub entries: Vec<MtreeEntry>,
}

/// The type of an mtree's values (`type = "sets" | "text" | "int"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum MtreeKind {
    /// An ordered list of dispatcher set ids (LCR: the first set with an available
    /// destination is used).
    Sets,
    /// Text.
    Text,
    /// A whole number.
    Int,
}

/// One prefix of an mtree.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct MtreeEntry {
    /// The prefix (may be empty: matches every key).
    pub prefix: String,
    /// Its value.
    pub value: MtreeValue,
    /// Where it was written, for messages: `lcr.toml:12:5` or `routes.csv row 7`.
    pub origin: String,
}

/// An mtree value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum MtreeValue {
    /// Dispatcher set ids, in failover order (`"2;1"`).
    Sets(Vec<u32>),
    /// Dispatcher set ids with weights (`"1:70;2:30"`): the first set tried is chosen at
    /// random in proportion to the weights; the others follow by descending weight.
    WeightedSets(Vec<(u32, u32)>),
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

/// `[[htable]]`: a named key/value table shared by every shard (Kamailio's htable), filled
/// and read by routes at run time, optionally seeded at load. Validated: name unique,
/// `max_entries` 1–2^32, expiries whole seconds from 1s to 365 days, seed keys non-empty, at
/// most 255 bytes and unique, no more seeds than `max_entries`.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct HtableDef {
    /// The name routes use. A letter, then letters, digits, `_` and `-`; unique among htables.
    pub name: String,
    /// The most entries the table holds (`max_entries`, 1–2^32); `None`: no limit.
    pub max_entries: Option<usize>,
    /// How long an entry lives after it was last written (`autoexpire`): whole seconds, 1s to
    /// 365 days; `None`: entries never expire.
    pub autoexpire: Option<Duration>,
    /// The entries written at load: inline `entries` first, then the `file` rows.
    pub seeds: Vec<HtableSeed>,
}

/// One seed entry of an htable.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct HtableSeed {
    /// The key: not empty, at most 255 bytes; unique in the table.
    pub key: String,
    /// Its value.
    pub value: HtableValue,
    /// This entry's lifetime (`expires`, same rules as `autoexpire`), overriding the table's
    /// `autoexpire`; `None`: the table's `autoexpire` (which may be none).
    pub expires: Option<Duration>,
    /// Where it was written, for messages: `ipban.toml:12:5` or `seed.csv row 7`.
    pub origin: String,
}

/// An htable value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum HtableValue {
    /// A whole number.
    Int(i64),
    /// Text (non-empty, one line).
    Text(String),
}

/// `[[acl]]`: a named group of addresses and networks (Kamailio's `permissions` address
/// groups), matched by routes with `$si in acl NAME`. Validated: name unique, every entry an
/// IP address or network without host bits set, ports 1–65535, no entry twice.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AclGroup {
    /// The name routes use. A letter, then letters, digits, `_` and `-`; unique among acls.
    pub name: String,
    /// The entries: inline `entries` first, then the `file` rows.
    pub entries: Vec<AclEntry>,
}

/// One entry of an `[[acl]]` group.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AclEntry {
    /// The network (a plain address is a /32 or /128); no host bits set.
    pub net: route::Cidr,
    /// The source port the entry is limited to; `None`: any port.
    pub port: Option<u16>,
    /// Where it was written, for messages: `ringsip.toml:12:5` or `peers.csv row 7`.
    pub origin: String,
}

/// `[dispatcher]`.
#[derive(Debug, Clone, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Dispatcher {
    /// The destination sets, sorted by id.
    pub sets: Vec<Set>,
}

impl Dispatcher {
    /// The set with this id.
    pub fn set(&self, id: u32) -> Option<&Set> {
        self.sets.binary_search_by_key(&id, |s| s.id).ok().map(|i| &self.sets[i])
    }
}

/// One `[[dispatcher.set]]`.
#[derive(Debug, Clone, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Set {
    /// The id `select <id>` refers to; unique.
    pub id: u32,
    /// Optional name, for logs and metrics.
    pub name: Option<String>,
    /// How a destination is chosen.
    pub algorithm: Algorithm,
    /// The value hashed by [`Algorithm::HashPv`]; `Some` exactly for that algorithm.
    pub hash_pv: Option<route::Pv>,
    /// The destinations, inline ones first (in order), then the CSV rows (in order).
    pub destinations: Vec<Destination>,
    /// Health probing of the destinations.
    pub probe: Probe,
}

/// A dispatcher algorithm, with Kamailio's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Algorithm {
    /// 0: hash over the Call-ID.
    HashCallId,
    /// 1: hash over the From URI.
    HashFromUri,
    /// 2: hash over the To URI.
    HashToUri,
    /// 3: hash over the Request-URI user.
    HashRUriUser,
    /// 4: round-robin.
    RoundRobin,
    /// 5: hash over the authentication user name.
    HashAuthUser,
    /// 6: random.
    Random,
    /// 7: hash over a pseudo-variable (`hash_pv`).
    HashPv,
    /// 8: the first active destination by priority.
    Priority,
    /// 9: weighted random; the weights of a set add up to 100.
    Weight,
    /// 11: relative weight (weights in proportion to each other).
    RelativeWeight,
}

impl Algorithm {
    /// Every supported algorithm, in number order.
    pub const ALL: [Algorithm; 11] = [
        Algorithm::HashCallId,
        Algorithm::HashFromUri,
        Algorithm::HashToUri,
        Algorithm::HashRUriUser,
        Algorithm::RoundRobin,
        Algorithm::HashAuthUser,
        Algorithm::Random,
        Algorithm::HashPv,
        Algorithm::Priority,
        Algorithm::Weight,
        Algorithm::RelativeWeight,
    ];

    /// Kamailio's number for the algorithm (`ds_select_dst(set, alg)`).
    pub fn number(self) -> u8 {
        match self {
            Algorithm::HashCallId => 0,
            Algorithm::HashFromUri => 1,
            Algorithm::HashToUri => 2,
            Algorithm::HashRUriUser => 3,
            Algorithm::RoundRobin => 4,
            Algorithm::HashAuthUser => 5,
            Algorithm::Random => 6,
            Algorithm::HashPv => 7,
            Algorithm::Priority => 8,
            Algorithm::Weight => 9,
            Algorithm::RelativeWeight => 11,
        }
    }

    /// The name used in configs (`"round-robin"`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HashCallId => "hash-callid",
            Algorithm::HashFromUri => "hash-from",
            Algorithm::HashToUri => "hash-to",
            Algorithm::HashRUriUser => "hash-ruri-user",
            Algorithm::RoundRobin => "round-robin",
            Algorithm::HashAuthUser => "hash-auth-user",
            Algorithm::Random => "random",
            Algorithm::HashPv => "hash-pv",
            Algorithm::Priority => "priority",
            Algorithm::Weight => "weight",
            Algorithm::RelativeWeight => "relative-weight",
        }
    }

    /// The algorithm with this Kamailio number.
    pub fn from_number(n: i64) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| i64::from(a.number()) == n)
    }

    /// The algorithm with this name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A destination of a set.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Destination {
    /// The URI as written (`"sip:192.0.2.10:5060;transport=udp"`).
    pub uri: String,
    /// Where to send (port 5060 when the URI has none).
    pub addr: SocketAddr,
    /// Weight (algorithms 9 and 11); default 1.
    pub weight: u32,
    /// Priority (algorithm 8: higher first; also the order of the failover list); default 0.
    pub priority: i32,
    /// Free-form attributes (`"dc=east;max=100"`); default empty.
    pub attrs: String,
    /// `state = "disabled"`: configured but never selected nor probed until enabled.
    pub disabled: bool,
}

/// Which destinations are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum ProbeMode {
    /// Probe every destination (Kamailio `ds_probing_mode=1`); the default.
    #[default]
    All,
    /// Probe only destinations marked inactive, to bring them back (`ds_probing_mode=0`).
    Inactive,
    /// Do not probe.
    None,
}

/// An inclusive range of SIP status codes (`"2xx"` is 200..=299).
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CodeRange {
    /// Lowest code.
    pub lo: u16,
    /// Highest code.
    pub hi: u16,
}

impl CodeRange {
    /// Whether `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        self.lo <= code && code <= self.hi
    }
}

/// Health probing of a set's destinations.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Probe {
    /// Which destinations are probed; default all.
    pub mode: ProbeMode,
    /// The request method sent; default `OPTIONS`.
    pub method: String,
    /// Time between probes of a destination; default 10 s, at least 100 ms.
    pub interval: Duration,
    /// How long to wait for an answer; default the interval, at most the interval.
    pub timeout: Duration,
    /// Failed probes in a row that make an active destination inactive; default 3.
    pub failure_threshold: u32,
    /// Answered probes in a row that make an inactive destination active; default 1.
    pub success_threshold: u32,
    /// Status codes that count as an answer; default `["2xx"]`.
    pub up_codes: Vec<CodeRange>,
    /// The From URI of probes; default `sip:ringsip@<first listen IP>`.
    pub from: String,
}

/// `[[route.*]]`.
#[derive(Debug, Clone, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Routes {
    /// `[[route.request]]`: runs for every request that parsed.
    pub request: route::Route,
    /// `[[route.reply]]`: runs for every reply before it is relayed; `None` when absent.
    pub reply: Option<route::Route>,
    /// `[[route.<name>]]`: named routes, run by `route <name>`.
    pub named: BTreeMap<String, route::Route>,
}

/// Read and validate a config file. Paths of CSV tables are relative to the file's folder.
pub fn load(path: &Path) -> Result<Config, Errors> {
    let bytes = std::fs::read(path).map_err(|e| {
        Errors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("cannot read the config file: {e}"),
            row: None,
        }])
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(e) => {
            let bad = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes());
            let mut d = error::Diag::new(path, &text);
            d.at(bad, "the file is not valid UTF-8 here");
            Err(Errors(d.errors))
        }
    }
}

/// Validate config text. `origin` names the file in messages and is the base for CSV paths
/// (relative to its folder).
pub fn parse(text: &str, origin: &Path) -> Result<Config, Errors> {
    let mut d = error::Diag::new(origin, text);
    let config = build(&mut d, origin);
    if d.errors.is_empty() {
        if let Some(c) = config {
            return Ok(c);
        }
        d.at(0, "the config is incomplete");
    }
    let mut errors = d.errors;
    let main = origin.to_path_buf();
    // Main file first, then other files; by position within each; stable otherwise.
    errors.sort_by(|a, b| {
        (a.file != main, &a.file, a.line, a.col, a.row).cmp(&(b.file != main, &b.file, b.line, b.col, b.row))
    });
    errors.dedup();
    Err(Errors(errors))
}

fn build(d: &mut error::Diag<'_>, origin: &Path) -> Option<Config> {
    let text = d.src.text;
    let (root, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // One per line: later problems on a line usually follow from the first.
        let mut lines = std::collections::BTreeSet::new();
        for e in syntax {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            if lines.insert(d.src.line_col(at).0) {
                d.at(at, format!("TOML syntax: {}", e.message().trim()));
            }
        }
        return None;
    }
    let root = walk::Table::new(root.get_ref(), 0..0, "the top level");
    root.check_keys(d, &["server", "dispatcher", "mtree", "htable", "acl", "route", "transactions", "media", "pike"]);

    let server = match root.get("server") {
        Some(v) => walk::table(d, v, "[server]").and_then(|t| server::parse(d, &t)),
        None => {
            d.at(0, "missing [server] section (it needs at least `listen = [\"udp:IP:PORT\"]`)");
            None
        }
    };
    let first_ip = server.as_ref().and_then(|s| s.listen.first()).map(|l| l.addr.ip());
    let base = origin.parent().map(Path::to_path_buf).unwrap_or_default();
    let dispatcher = match root.get("dispatcher") {
        Some(v) => walk::table(d, v, "[dispatcher]").map(|t| dispatcher::parse(d, &t, first_ip, &base)),
        None => Some(dispatcher::Parsed { ids_complete: true, ..dispatcher::Parsed::default() }),
    };
    let set_ids = dispatcher.as_ref().map(|p| routes::SetIds { ids: &p.ids, complete: p.ids_complete });
    let mtrees = match root.get("mtree") {
        Some(v) => mtree::parse(d, v, &base, set_ids.as_ref()),
        None => mtree::Parsed { names_complete: true, ..mtree::Parsed::default() },
    };
    let htables = match root.get("htable") {
        Some(v) => htable::parse(d, v, &base),
        None => htable::Parsed::default(),
    };
    let acls = match root.get("acl") {
        Some(v) => acl::parse(d, v, &base),
        None => acl::Parsed::default(),
    };
    let transactions = match root.get("transactions") {
        Some(v) => walk::table(d, v, "[transactions]").and_then(|t| transactions::parse(d, &t)),
        None => Some(Transactions::default()),
    };
    // Before the routes: `anchor_media` needs the section (its presence, not its validity:
    // a section with mistakes does not add "needs a [media] section" to every route).
    let media = match root.get("media") {
        Some(v) => walk::table(d, v, "[media]").and_then(|t| media::parse(d, &t, server.as_ref())).map(Some),
        None => Some(None),
    };
    let pike = match root.get("pike") {
        Some(v) => walk::table(d, v, "[pike]").and_then(|t| pike::parse(d, &t)).map(Some),
        None => Some(None),
    };
    let sections = routes::Sections { media: root.get("media").is_some(), pike: root.get("pike").is_some() };
    let routes = match root.get("route") {
        Some(v) => walk::table(d, v, "[route]").and_then(|t| {
            routes::parse(
                d,
                &t,
                sections,
                set_ids,
                routes::TreeNames { names: &mtrees.names, complete: mtrees.names_complete },
                routes::KnownNames { names: &htables.names, complete: htables.names_complete },
                routes::KnownNames { names: &acls.names, complete: acls.names_complete },
            )
        }),
        None => {
            d.at(0, "missing [[route.request]]: a config needs at least one request rule");
            None
        }
    };
    Some(Config {
        server: server?,
        dispatcher: dispatcher?.dispatcher,
        routes: routes?,
        mtrees: mtrees.tables,
        htables: htables.items,
        acls: acls.items,
        transactions: transactions?,
        media: media?,
        pike: pike?,
        source: origin.to_path_buf(),
    })
}
