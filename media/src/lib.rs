//! ringsip's media plane (issue 6, in progress).
//!
//! * [`bencode`]: a bounded, zero-copy bencode reader and a writer into a caller's buffer.
//! * [`ng`]: rtpengine's "ng" control protocol on top of it: a request datagram
//!   (`cookie SP dictionary`) read into a typed [`ng::Request`], and replies written back.
//! * [`anchor`]: the SDP rewrite that points each side's media at the relay.
//! * [`ports`]: per-shard pools of RTP/RTCP port pairs.
//! * [`control`]: the ng commands over one shard's pool and relay table.
//! * [`relay`]: a shard's relay table: ports to call legs, latching, where each packet goes.
//!
//! All of it is sans-IO: bytes in, values or bytes out; no clock, and no allocation after
//! setup.

pub mod anchor;
pub mod bencode;
pub mod control;
pub mod ng;
pub mod ports;
pub mod relay;
