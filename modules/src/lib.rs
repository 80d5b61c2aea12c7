//! # ringsip-modules — routing logic and tables
//!
//! Pure data and logic, no sockets: the [`dispatcher`] (sets, Kamailio's selection
//! algorithms, health probing shared lock-free by every shard), the [`route`] engine (the
//! config's route language compiled to an allocation-free evaluator), the per-shard CANCEL/ACK
//! [`sticky`] table, and the [`stateless`] proxy that plugs them into the shard runtime.

pub mod dispatcher;
pub mod htable;
pub mod mtree;
pub mod pike;
pub mod route;
pub mod snapshot;
pub mod stateless;
pub mod stats;
pub mod sticky;
