//! # ringsip-runtime — the shard runtime
//!
//! The part of ringsip that touches sockets, threads and the clock. One glommio executor per
//! shard, pinned to its CPU and placed node by node ([`topology`]); every shard binds its own
//! `SO_REUSEPORT` socket on each listen address and moves datagrams in batches with
//! `recvmmsg`/`sendmmsg` ([`udp`]); protocol logic plugs in as a per-shard [`shard::Handler`];
//! counters are per shard and never locked ([`counters`]).
//!
//! This is the only crate allowed `unsafe` (raw socket calls); each block says why it is
//! sound in a `SAFETY:` comment.

pub mod counters;
pub mod media;
pub mod priority;
pub mod shard;
pub mod topology;
pub mod udp;

pub use counters::{Counter, Kind, MediaStats, Metric, Metrics, ShardStats};
pub use shard::{
    Datagram, Handler, HandlerFactory, MediaSetup, Outbox, Running, RuntimeConfig, ShardInfo, ShardReady, start,
};
pub use topology::{Placement, ShardPlace, Topology, format_cpu_list, parse_cpu_list};
pub use udp::{RecvBatch, SendBatch};
