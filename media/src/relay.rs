//! A shard's relay table, sans-IO: which local port belongs to which leg of which call, where
//! each leg's media goes, and the latching that finds a NATed side's real address.
//!
//! A call has two legs (caller side `A`, callee side `B`), each with a local RTP port pair
//! from the shard's pool. The SDP tells where each side *says* it receives (`expected`);
//! with symmetric latching (the default, RFC 4961 symmetric RTP) the source of the first
//! packets a side sends becomes where it is sent to, because a phone behind NAT cannot know
//! its public address. A packet arriving on leg A's port goes out of leg B's port to B's
//! address, and the other way round. With `strict_source`, once a leg has latched, packets
//! from any other source are dropped and counted.
//!
//! Per packet: one array index by port and a few comparisons; no allocation, no hashing.
//! Sessions are created and removed by the control side (ng `offer`/`answer`/`delete`, or
//! the SIP route) — rarely compared to packets.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// Which side of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller's side (the offer came from it).
    A,
    /// The callee's side.
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// One side of a call as the relay sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leg {
    /// The local RTP port this side sends to (RTCP on the next).
    pub port: u16,
    /// Where the SDP says this side receives RTP.
    pub expected: Option<SocketAddr>,
    /// Where its media actually comes from, once latched.
    pub latched: Option<SocketAddr>,
    /// Packets and bytes received from this side.
    pub packets: u64,
    /// See `packets`.
    pub bytes: u64,
}

/// How a session's legs behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// Latch each side to the source of its packets (symmetric RTP). Off: send to the SDP's
    /// address whatever the source.
    pub latch: bool,
    /// After latching, drop packets from other sources.
    pub strict_source: bool,
}

impl Default for Mode {
    fn default() -> Self {
        Mode { latch: true, strict_source: true }
    }
}

/// One call's media session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The caller's and the callee's legs.
    pub legs: [Leg; 2],
    /// Latching and source checks.
    pub mode: Mode,
    /// When a packet last passed (the caller's clock, for the inactivity timeout).
    pub last_packet: u64,
}

/// What to do with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it from local port `from_port` to `to`.
    Forward {
        /// The local port it leaves from (the other leg's port, or its RTCP port).
        from_port: u16,
        /// Where it goes.
        to: SocketAddr,
    },
    /// Drop it, for this reason (counted by the caller).
    Drop(DropReason),
}

/// Why a packet is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No session on this port (a stray, a scan, or a call that ended).
    NoSession,
    /// From a source other than the latched one, with `strict_source`.
    WrongSource,
    /// The other side's address is not known yet (no SDP address, nothing latched).
    NoDestination,
}

/// A shard's sessions, indexed by local port.
#[derive(Debug)]
pub struct Table {
    first: u16,
    /// Per RTP/RTCP pair of the shard's range: the session slot and side, or none.
    by_pair: Vec<Option<(u32, Side)>>,
    sessions: Vec<Option<Session>>,
    free: Vec<u32>,
}

impl Table {
    /// A table for the shard's port range (the same range as its port pool).
    pub fn new(range: RangeInclusive<u16>) -> Table {
        let first = range.start() & !1;
        let pairs = (usize::from(*range.end()) + 1).saturating_sub(usize::from(first)).div_ceil(2);
        Table { first, by_pair: vec![None; pairs], sessions: Vec::new(), free: Vec::new() }
    }

    fn pair(&self, port: u16) -> Option<usize> {
        let k = usize::from(port.checked_sub(self.first)? / 2);
        (k < self.by_pair.len()).then_some(k)
    }

    /// Add a session whose legs use RTP ports `ports` (caller side, callee side); returns its
    /// id. `None` when a port is outside the range or already used.
    pub fn add(&mut self, ports: [u16; 2], mode: Mode, now: u64) -> Option<u32> {
        let pa = self.pair(ports[0])?;
        let pb = self.pair(ports[1])?;
        if pa == pb || self.by_pair[pa].is_some() || self.by_pair[pb].is_some() || ports.iter().any(|p| p % 2 == 1) {
            return None;
        }
        let legs = [Leg { port: ports[0], ..Leg::default() }, Leg { port: ports[1], ..Leg::default() }];
        let s = Session { legs, mode, last_packet: now };
        let id = match self.free.pop() {
            Some(id) => {
                self.sessions[id as usize] = Some(s);
                id
            }
            None => {
                self.sessions.push(Some(s));
                (self.sessions.len() - 1) as u32
            }
        };
        self.by_pair[pa] = Some((id, Side::A));
        self.by_pair[pb] = Some((id, Side::B));
        Some(id)
    }

    /// Session `id`.
    pub fn get(&self, id: u32) -> Option<&Session> {
        self.sessions.get(id as usize)?.as_ref()
    }

    /// Session `id`, to update what the SDP says (`expected`) or its mode.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Session> {
        self.sessions.get_mut(id as usize)?.as_mut()
    }

    /// Remove session `id`: its ports (to give back to the pool), or `None` if there is none.
    pub fn remove(&mut self, id: u32) -> Option<[u16; 2]> {
        let s = self.sessions.get_mut(id as usize)?.take()?;
        for leg in &s.legs {
            if let Some(k) = self.pair(leg.port) {
                self.by_pair[k] = None;
            }
        }
        self.free.push(id);
        Some([s.legs[0].port, s.legs[1].port])
    }

    /// Sessions with no packet since `idle_since` (for the inactivity timeout).
    pub fn idle(&self, idle_since: u64) -> impl Iterator<Item = u32> + '_ {
        self.sessions
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.is_some_and(|s| s.last_packet < idle_since))
            .map(|(i, _)| i as u32)
    }

    /// A packet of `len` bytes from `src` arrived on local port `port` at `now`.
    pub fn packet(&mut self, port: u16, src: SocketAddr, len: usize, now: u64) -> Verdict {
        let Some((id, side)) = self.pair(port).and_then(|k| self.by_pair[k]) else {
            return Verdict::Drop(DropReason::NoSession);
        };
        let Some(s) = self.sessions.get_mut(id as usize).and_then(Option::as_mut) else {
            return Verdict::Drop(DropReason::NoSession);
        };
        let rtcp = port % 2 == 1;
        let me = &mut s.legs[side.index()];
        // the RTP source decides the latch; RTCP comes from the RTP port + 1 (RFC 3550)
        let src_rtp = if rtcp { SocketAddr::new(src.ip(), src.port().wrapping_sub(1)) } else { src };
        if s.mode.latch {
            match me.latched {
                None => me.latched = Some(src_rtp),
                Some(l) if l != src_rtp && s.mode.strict_source => return Verdict::Drop(DropReason::WrongSource),
                Some(_) => {}
            }
        }
        me.packets += 1;
        me.bytes += len as u64;
        s.last_packet = now;
        let other = &s.legs[side.other().index()];
        let dest = if s.mode.latch { other.latched.or(other.expected) } else { other.expected };
        let Some(dest) = dest else { return Verdict::Drop(DropReason::NoDestination) };
        if rtcp {
            Verdict::Forward { from_port: other.port + 1, to: SocketAddr::new(dest.ip(), dest.port().wrapping_add(1)) }
        } else {
            Verdict::Forward { from_port: other.port, to: dest }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A call: A offered 192.0.2.10:4000, B answered 198.51.100.20:5000; relay ports 30000
    /// (A's side) and 30002 (B's side).
    fn call(t: &mut Table, mode: Mode) -> u32 {
        let id = t.add([30000, 30002], mode, 0).unwrap();
        let s = t.get_mut(id).unwrap();
        s.legs[0].expected = Some(a("192.0.2.10:4000"));
        s.legs[1].expected = Some(a("198.51.100.20:5000"));
        id
    }

    #[test]
    fn media_crosses_over_and_latches_to_a_natted_source() {
        let mut t = Table::new(30000..=30099);
        let id = call(&mut t, Mode::default());
        // A is behind NAT: its packets come from 203.0.113.5:61000, not the SDP's address
        assert_eq!(
            t.packet(30000, a("203.0.113.5:61000"), 172, 1),
            Verdict::Forward { from_port: 30002, to: a("198.51.100.20:5000") }
        );
        // B's media goes to where A's came from, not to A's SDP address
        assert_eq!(
            t.packet(30002, a("198.51.100.20:5000"), 172, 2),
            Verdict::Forward { from_port: 30000, to: a("203.0.113.5:61000") }
        );
        // RTCP: next ports both ways
        assert_eq!(
            t.packet(30003, a("198.51.100.20:5001"), 80, 3),
            Verdict::Forward { from_port: 30001, to: a("203.0.113.5:61001") }
        );
        // strict source: someone else sending to A's port is dropped
        assert_eq!(t.packet(30000, a("203.0.113.99:7000"), 172, 4), Verdict::Drop(DropReason::WrongSource));
        let s = t.get(id).unwrap();
        assert_eq!((s.legs[0].packets, s.legs[0].bytes, s.legs[1].packets), (1, 172, 2));
        assert_eq!(s.last_packet, 3);
    }

    #[test]
    fn without_latching_media_goes_to_the_sdp_address() {
        let mut t = Table::new(30000..=30099);
        call(&mut t, Mode { latch: false, strict_source: false });
        assert_eq!(
            t.packet(30002, a("198.51.100.20:5000"), 172, 1),
            Verdict::Forward { from_port: 30000, to: a("192.0.2.10:4000") }
        );
        assert!(matches!(t.packet(30000, a("203.0.113.99:7000"), 172, 2), Verdict::Forward { .. }));
    }

    #[test]
    fn strays_and_ended_calls_are_dropped_and_ports_come_back() {
        let mut t = Table::new(30000..=30099);
        assert_eq!(t.packet(30010, a("203.0.113.99:7000"), 172, 0), Verdict::Drop(DropReason::NoSession));
        assert_eq!(t.packet(40000, a("203.0.113.99:7000"), 172, 0), Verdict::Drop(DropReason::NoSession));
        let id = call(&mut t, Mode::default());
        assert!(t.add([30000, 30004], Mode::default(), 0).is_none(), "30000 is taken");
        assert!(t.add([30001, 30004], Mode::default(), 0).is_none(), "odd port");
        assert!(t.idle(1).any(|x| x == id), "no packet since 0");
        assert_eq!(t.remove(id), Some([30000, 30002]));
        assert_eq!(t.remove(id), None);
        assert_eq!(t.packet(30000, a("192.0.2.10:4000"), 172, 5), Verdict::Drop(DropReason::NoSession));
        // the slot and ports are reused
        assert_eq!(t.add([30000, 30002], Mode::default(), 6), Some(id));
        // B has no address yet (no answer): A's packets have nowhere to go
        let mut t = Table::new(30000..=30099);
        let id = t.add([30000, 30002], Mode::default(), 0).unwrap();
        t.get_mut(id).unwrap().legs[0].expected = Some(a("192.0.2.10:4000"));
        assert_eq!(t.packet(30000, a("192.0.2.10:4000"), 172, 1), Verdict::Drop(DropReason::NoDestination));
    }
}
