//! # ringsip-mgmt — the management plane
//!
//! For now: the Prometheus text endpoint ([`metrics`]), which sums the per-shard counters on
//! every scrape. The control socket, snapshot pushes and `ringsipctl` arrive with issue 4.

pub mod metrics;
