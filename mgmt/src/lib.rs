//! # ringsip-mgmt — the management plane
//!
//! - [`control`]: the control protocol (framing, requests, responses, the client call);
//! - [`listen`]: the daemon's control listeners (Unix socket mode 0600; TCP with a token);
//! - [`plane`]: what the daemon does with each request: snapshot pushes and rollbacks
//!   (check, compile against the running snapshot, one atomic pointer store), status,
//!   dispatcher and mtree views; [`htables`]: the htable commands;
//! - [`metrics`]: the Prometheus text endpoint, which sums the per-shard counters on every
//!   scrape.
//!
//! `ringsipctl` (src/bin/ringsipctl.rs) is the operator's side.

pub mod control;
pub mod htables;
pub mod listen;
pub mod metrics;
pub mod plane;
