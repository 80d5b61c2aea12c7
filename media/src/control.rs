//! The ng control commands over one shard's media state, sans-IO: a request datagram in, the
//! reply out, the relay table and port pool updated.
//!
//! * `offer`: a relay session per active media section of the offer (one RTP/RTCP pair facing
//!   the caller, one facing the callee); the caller's side expects media where the offer says;
//!   the offer goes back rewritten to the callee-facing ports. A repeated offer of the same
//!   call (a retransmission, a re-INVITE) keeps the ports and updates the addresses.
//! * `answer`: the callee's side expects media where the answer says; the answer goes back
//!   rewritten to the caller-facing ports.
//! * `delete`: the sessions end, the ports go back to the pool.
//! * `query`: the call's per-side packet and byte counts; `list`: the call-ids;
//!   `statistics`: totals; `ping`: `pong`.
//!
//! Calls are keyed by call-id and from-tag. The control path allocates (a call's key), the
//! packet path ([`relay::Table::packet`]) never does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use arrayvec::ArrayVec;
use ringsip_proto::sdp::{MAX_MEDIA, Sdp};

use crate::anchor::{self, Anchor};
use crate::bencode::Writer;
use crate::ng::{Command, Ice, Reply, Request, reply_error, reply_ok};
use crate::ports::Pool;
use crate::relay::{Mode, Side, Table};

/// One call's relay sessions, one per media section.
#[derive(Debug)]
struct Call {
    sessions: ArrayVec<Option<u32>, MAX_MEDIA>,
}

/// Totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Offers handled.
    pub offers: u64,
    /// Answers handled.
    pub answers: u64,
    /// Calls deleted.
    pub deletes: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Offers refused because the port pool was empty.
    pub no_ports: u64,
    /// Calls ended by the inactivity timeout.
    pub expired: u64,
}

/// Why an offer or answer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    /// No call-id, from-tag or SDP.
    Missing,
    /// The SDP does not parse.
    BadSdp,
    /// An answer for a call with no offer.
    UnknownCall,
    /// The port pool is empty.
    NoPorts,
    /// The rewritten SDP does not fit, or the SDP cannot be rewritten.
    Rewrite(anchor::Error),
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Missing => f.write_str("missing call-id, from-tag or sdp"),
            OpError::BadSdp => f.write_str("the SDP is not valid"),
            OpError::UnknownCall => f.write_str("unknown call"),
            OpError::NoPorts => f.write_str("no free media ports"),
            OpError::Rewrite(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OpError {}

/// One shard's media control state.
pub struct Control {
    /// Once latched, drop packets from other sources (unless a call is asymmetric).
    pub strict_source: bool,
    advertise: IpAddr,
    pool: Pool,
    /// The relay table the packet path uses.
    pub table: Table,
    calls: HashMap<Vec<u8>, Call>,
    totals: Totals,
}

/// Largest rewritten SDP.
const SDP_MAX: usize = 16 * 1024;

impl Control {
    /// Media advertised at `advertise` (written into rewritten SDP) with the ports of `pool`
    /// (the table covers the same range).
    pub fn new(advertise: IpAddr, pool: Pool, table: Table) -> Control {
        Control { strict_source: true, advertise, pool, table, calls: HashMap::new(), totals: Totals::default() }
    }

    /// Totals since start.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Calls held.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Handle one control datagram at `now`; the reply is written into `out` (its length is
    /// returned; 0 when even an error reply does not fit, or the datagram has no cookie).
    pub fn handle(&mut self, datagram: &[u8], now: u64, out: &mut [u8]) -> usize {
        let req = match Request::parse(datagram) {
            Ok(r) => r,
            Err(e) => {
                self.totals.errors += 1;
                let cookie = datagram.split(|&b| b == b' ').next().filter(|c| c.len() < datagram.len());
                return cookie.and_then(|c| reply_error(out, c, e.to_string().as_bytes())).unwrap_or(0);
            }
        };
        let r = match req.command {
            Command::Offer => self.offer(&req, now, out),
            Command::Answer => self.answer(&req, out),
            Command::Delete => self.delete(&req, out),
            Command::Query => self.query(&req, out),
            Command::List => {
                let mut r = Reply::new(out, req.cookie, b"ok");
                let limit = req.limit.unwrap_or(32).clamp(0, 1000) as usize;
                let w = r.writer();
                w.bytes(b"calls").list();
                for key in self.calls.keys().take(limit) {
                    w.bytes(call_id_of(key));
                }
                w.end();
                r.finish()
            }
            Command::Statistics => {
                let t = self.totals;
                let mut r = Reply::new(out, req.cookie, b"ok");
                let w = r.writer();
                w.bytes(b"calls").int(self.calls.len() as i64);
                w.bytes(b"offers").int(t.offers as i64).bytes(b"answers").int(t.answers as i64);
                w.bytes(b"deletes").int(t.deletes as i64).bytes(b"errors").int(t.errors as i64);
                w.bytes(b"ports-free").int(self.pool.available() as i64);
                r.finish()
            }
            Command::Ping => reply_ok(out, req.cookie, Command::Ping),
        };
        r.unwrap_or(0)
    }

    fn error(&mut self, out: &mut [u8], cookie: &[u8], why: &str) -> Option<usize> {
        self.totals.errors += 1;
        reply_error(out, cookie, why.as_bytes())
    }

    /// `ok` with the SDP `op` wrote, or `error` with its reason.
    fn sdp_reply(
        &mut self,
        req: &Request<'_>,
        out: &mut [u8],
        op: impl FnOnce(&mut Control, &mut [u8]) -> Result<usize, OpError>,
    ) -> Option<usize> {
        let mut sdp_out = [0u8; SDP_MAX];
        match op(self, &mut sdp_out) {
            Ok(n) => {
                let mut r = Reply::new(out, req.cookie, b"ok");
                r.writer().entry(b"sdp", &sdp_out[..n]);
                r.finish()
            }
            Err(e) => self.error(out, req.cookie, &e.to_string()),
        }
    }

    fn offer(&mut self, req: &Request<'_>, now: u64, out: &mut [u8]) -> Option<usize> {
        self.sdp_reply(req, out, |c, sdp_out| c.offer_sdp(req, now, sdp_out))
    }

    fn answer(&mut self, req: &Request<'_>, out: &mut [u8]) -> Option<usize> {
        self.sdp_reply(req, out, |c, sdp_out| c.answer_sdp(req, sdp_out))
    }

    /// An offer (ng's): the call's sessions (made on its first offer, one per active media
    /// section; kept by later ones), the caller's side expected where the offer says, and the
    /// offer rewritten to the callee-facing ports written into `sdp_out` (its length returned).
    pub fn offer_sdp(&mut self, req: &Request<'_>, now: u64, sdp_out: &mut [u8]) -> Result<usize, OpError> {
        let (Some(call_id), Some(from_tag)) = (req.call_id, req.from_tag) else { return Err(OpError::Missing) };
        let key = call_key(call_id, from_tag);
        if !self.calls.contains_key(&key) {
            self.create(key.clone(), req, now)?;
        }
        self.totals.offers += 1;
        self.apply(&key, Side::A, req, true, sdp_out)
    }

    /// An answer (ng's): the callee's side expected where the answer says, and the answer
    /// rewritten to the caller-facing ports written into `sdp_out`.
    pub fn answer_sdp(&mut self, req: &Request<'_>, sdp_out: &mut [u8]) -> Result<usize, OpError> {
        let (Some(call_id), Some(from_tag)) = (req.call_id, req.from_tag) else { return Err(OpError::Missing) };
        let key = call_key(call_id, from_tag);
        if !self.calls.contains_key(&key) {
            return Err(OpError::UnknownCall);
        }
        self.totals.answers += 1;
        self.apply(&key, Side::B, req, false, sdp_out)
    }

    /// SDP in a SIP message of an anchored call, in either direction: `from_sender` says
    /// whether the message was sent by the party in its From header (a request) or by the one
    /// in its To header (a response). The call is found by call-id and the tag of the party
    /// that started it (the From tag of the first INVITE, which is the To tag of the other
    /// party's in-dialog requests), so a re-INVITE from the callee updates the same sessions;
    /// with `create`, a call not found is made (an initial INVITE's offer, or the offer in
    /// its response when the INVITE had none). The sender's side is expected where its SDP
    /// says, and the SDP is rewritten to the ports facing the other party.
    pub fn sip_sdp(
        &mut self,
        req: &Request<'_>,
        from_sender: bool,
        create: bool,
        now: u64,
        sdp_out: &mut [u8],
    ) -> Result<usize, OpError> {
        let (Some(call_id), Some(from_tag)) = (req.call_id, req.from_tag) else { return Err(OpError::Missing) };
        // the party that started the call is side A
        let (key, starter_sent) = match call_key(call_id, from_tag) {
            k if self.calls.contains_key(&k) => (k, from_sender),
            k => match req.to_tag.map(|t| call_key(call_id, t)).filter(|t| self.calls.contains_key(t)) {
                Some(t) => (t, !from_sender),
                None if create => {
                    self.create(k.clone(), req, now)?;
                    (k, from_sender)
                }
                None => return Err(OpError::UnknownCall),
            },
        };
        let sender = if starter_sent { Side::A } else { Side::B };
        if create {
            self.totals.offers += 1;
        } else {
            self.totals.answers += 1;
        }
        self.apply(&key, sender, req, create, sdp_out)
    }

    /// A new call under `key`: a relay session per active media section of `req`'s SDP.
    fn create(&mut self, key: Vec<u8>, req: &Request<'_>, now: u64) -> Result<(), OpError> {
        let body = req.sdp.ok_or(OpError::Missing)?;
        let sdp = Sdp::parse(body).map_err(|_| OpError::BadSdp)?;
        let mode = Mode { latch: !req.flags.asymmetric, strict_source: !req.flags.asymmetric && self.strict_source };
        let mut call = Call { sessions: ArrayVec::new() };
        for m in sdp.media() {
            if m.port == 0 {
                call.sessions.push(None);
                continue;
            }
            let (Some(pa), Some(pb)) = (self.pool.take(), self.pool.take()) else {
                // give back what this offer took
                self.release(&call);
                self.totals.no_ports += 1;
                return Err(OpError::NoPorts);
            };
            call.sessions.push(self.table.add([pa, pb], mode, now));
        }
        self.calls.insert(key, call);
        Ok(())
    }

    /// SDP from `sender` for the call under `key`: that side is expected where the SDP says
    /// (and, for an offer, takes its flags), and the SDP is rewritten to the other side's
    /// ports into `sdp_out`.
    fn apply(
        &mut self,
        key: &[u8],
        sender: Side,
        req: &Request<'_>,
        offer: bool,
        sdp_out: &mut [u8],
    ) -> Result<usize, OpError> {
        let body = req.sdp.ok_or(OpError::Missing)?;
        let sdp = Sdp::parse(body).map_err(|_| OpError::BadSdp)?;
        let call = self.calls.get(key).ok_or(OpError::UnknownCall)?;
        let mode = Mode { latch: !req.flags.asymmetric, strict_source: !req.flags.asymmetric && self.strict_source };
        let other = if sender == Side::A { Side::B } else { Side::A };
        let mut ports = [0u16; MAX_MEDIA];
        for (k, m) in sdp.media().iter().enumerate() {
            let Some(Some(id)) = call.sessions.get(k) else { continue };
            let expected = expected_addr(req, &sdp, m);
            if let Some(s) = self.table.get_mut(*id) {
                s.legs[sender as usize].expected = expected;
                if offer {
                    s.mode = mode;
                }
                ports[k] = s.legs[other as usize].port;
            }
        }
        self.rewrite(req, body, &sdp, ports, sdp_out)
    }

    fn rewrite(
        &mut self,
        req: &Request<'_>,
        body: &[u8],
        sdp: &Sdp<'_>,
        ports: [u16; MAX_MEDIA],
        sdp_out: &mut [u8],
    ) -> Result<usize, OpError> {
        let a = Anchor {
            addr: self.advertise,
            ports,
            replace_origin: req.flags.replace_origin,
            ice_remove: req.flags.ice == Ice::Remove,
        };
        anchor::rewrite(body, sdp, &a, sdp_out).map_err(OpError::Rewrite)
    }

    fn release(&mut self, call: &Call) {
        for id in call.sessions.iter().flatten() {
            if let Some(ports) = self.table.remove(*id) {
                for p in ports {
                    self.pool.give(p);
                }
            }
        }
    }

    /// End the calls with `call_id` (only the one with `from_tag` when given): their ports
    /// go back to the pool. Returns how many ended.
    pub fn delete_call(&mut self, call_id: &[u8], from_tag: Option<&[u8]>) -> usize {
        let keys: Vec<Vec<u8>> = self
            .calls
            .keys()
            .filter(|k| call_id_of(k) == call_id && from_tag.is_none_or(|t| tag_of(k) == t))
            .cloned()
            .collect();
        for k in &keys {
            if let Some(call) = self.calls.remove(k) {
                self.release(&call);
                self.totals.deletes += 1;
            }
        }
        keys.len()
    }

    /// End the calls none of whose sessions passed a packet since `idle_since` (sessions
    /// count from their creation). Returns how many ended.
    pub fn expire(&mut self, idle_since: u64) -> usize {
        let table = &self.table;
        let idle: Vec<Vec<u8>> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.sessions.iter().flatten().all(|id| table.get(*id).is_none_or(|s| s.last_packet < idle_since))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &idle {
            if let Some(call) = self.calls.remove(k) {
                self.release(&call);
                self.totals.expired += 1;
            }
        }
        idle.len()
    }

    /// Never hand out the pair of `port` (it has no socket). False when it was already out of
    /// the pool (or is not in its range).
    pub fn withhold(&mut self, port: u16) -> bool {
        self.pool.withhold(port)
    }

    /// Ports free in the pool (RTP and RTCP: two per free pair).
    pub fn ports_free(&self) -> usize {
        2 * self.pool.available()
    }

    fn delete(&mut self, req: &Request<'_>, out: &mut [u8]) -> Option<usize> {
        let Some(call_id) = req.call_id else { return self.error(out, req.cookie, "missing call-id") };
        // with a from-tag, that call; without, every call with this call-id
        if self.delete_call(call_id, req.from_tag) == 0 {
            return self.error(out, req.cookie, "unknown call");
        }
        reply_ok(out, req.cookie, Command::Delete)
    }

    fn query(&mut self, req: &Request<'_>, out: &mut [u8]) -> Option<usize> {
        let Some(call_id) = req.call_id else { return self.error(out, req.cookie, "missing call-id") };
        let Some((_, call)) = self.calls.iter().find(|(k, _)| call_id_of(k) == call_id) else {
            return self.error(out, req.cookie, "unknown call");
        };
        let mut totals = [[0u64; 2]; 2];
        for id in call.sessions.iter().flatten() {
            if let Some(s) = self.table.get(*id) {
                for (t, leg) in totals.iter_mut().zip(&s.legs) {
                    t[0] += leg.packets;
                    t[1] += leg.bytes;
                }
            }
        }
        let mut r = Reply::new(out, req.cookie, b"ok");
        let w: &mut Writer<'_> = r.writer();
        for (name, t) in [(&b"caller"[..], totals[0]), (b"callee", totals[1])] {
            w.bytes(name).dict().bytes(b"bytes").int(t[1] as i64).bytes(b"packets").int(t[0] as i64).end();
        }
        r.finish()
    }
}

/// Where a side says it receives a media section: the SDP's address, or, without
/// `trust-address` and with `received-from`, the address the SIP message came from (a phone
/// behind NAT writes its private address into the SDP), at the SDP's port.
fn expected_addr(req: &Request<'_>, sdp: &Sdp<'_>, m: &ringsip_proto::sdp::Media<'_>) -> Option<SocketAddr> {
    let sdp_ip = sdp.media_connection(m).and_then(|c| c.ip());
    let ip = if req.flags.trust_address { sdp_ip } else { req.received_from.or(sdp_ip) };
    ip.map(|ip| SocketAddr::new(ip, m.port))
}

/// `call-id NUL from-tag`.
fn call_key(call_id: &[u8], from_tag: &[u8]) -> Vec<u8> {
    [call_id, b"\0", from_tag].concat()
}

fn call_id_of(key: &[u8]) -> &[u8] {
    key.split(|&b| b == 0).next().unwrap_or(key)
}

fn tag_of(key: &[u8]) -> &[u8] {
    key.iter().position(|&b| b == 0).map_or(b"", |i| &key[i + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Doc;
    use crate::ports;
    use crate::relay::Verdict;

    fn control() -> Control {
        Control::new("127.0.0.1".parse().unwrap(), ports::Pool::new(30000..=30009).unwrap(), Table::new(30000..=30009))
    }

    fn request(cmd: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut w = Writer::new(&mut buf);
        w.raw(b"c1 ").dict().entry(b"call-id", b"call1").entry(b"command", cmd.as_bytes());
        for (k, v) in extra {
            w.entry(k.as_bytes(), v.as_bytes());
        }
        w.end();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    fn sdp(ip: &str, port: u16) -> String {
        format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
    }

    fn reply(c: &mut Control, req: &[u8], now: u64) -> (String, Option<Vec<u8>>) {
        let mut out = vec![0u8; 8192];
        let n = c.handle(req, now, &mut out);
        let body = &out[3..n];
        let d = Doc::parse(body).unwrap();
        let result = String::from_utf8(d.root().get(b"result").unwrap().bytes().unwrap().to_vec()).unwrap();
        (result, d.root().get(b"sdp").and_then(|s| s.bytes()).map(<[u8]>::to_vec))
    }

    fn port_of(sdp: &[u8]) -> u16 {
        Sdp::parse(sdp).unwrap().media()[0].port
    }

    #[test]
    fn offer_answer_relay_and_delete() {
        let mut c = control();
        let (r, offer) = reply(&mut c, &request("offer", &[("from-tag", "ft"), ("sdp", &sdp("192.0.2.10", 4000))]), 0);
        assert_eq!(r, "ok");
        let offer = offer.unwrap();
        let to_b = port_of(&offer);
        assert!(String::from_utf8_lossy(&offer).contains("c=IN IP4 127.0.0.1"));
        // a retransmitted offer keeps the ports
        let (_, again) = reply(&mut c, &request("offer", &[("from-tag", "ft"), ("sdp", &sdp("192.0.2.10", 4000))]), 1);
        assert_eq!(port_of(&again.unwrap()), to_b);
        let (r, answer) = reply(
            &mut c,
            &request("answer", &[("from-tag", "ft"), ("to-tag", "tt"), ("sdp", &sdp("198.51.100.20", 5000))]),
            2,
        );
        assert_eq!(r, "ok");
        let to_a = port_of(&answer.unwrap());
        assert_ne!(to_a, to_b);
        // media: A sends to its port, it reaches B's SDP address from B's port
        assert_eq!(
            c.table.packet(to_a, "192.0.2.10:4000".parse().unwrap(), 172, 3),
            Verdict::Forward { from_port: to_b, to: "198.51.100.20:5000".parse().unwrap() }
        );
        assert_eq!(reply(&mut c, &request("query", &[]), 4).0, "ok");
        assert_eq!(reply(&mut c, &request("delete", &[("from-tag", "ft")]), 5).0, "ok");
        assert_eq!(c.calls(), 0);
        assert!(matches!(c.table.packet(to_a, "192.0.2.10:4000".parse().unwrap(), 172, 6), Verdict::Drop(_)));
        assert_eq!(reply(&mut c, &request("delete", &[]), 7).0, "error", "already gone");
        assert_eq!(c.totals().deletes, 1);
    }

    #[test]
    fn sip_sdp_finds_the_call_from_either_party() {
        let mut c = control();
        let mut out = [0u8; 2048];
        let caller = sdp("192.0.2.10", 4000);
        let callee = sdp("198.51.100.20", 5000);
        let mut req = Request::new(Command::Offer);
        req.call_id = Some(b"c");
        req.from_tag = Some(b"alice");
        req.sdp = Some(caller.as_bytes());
        // the INVITE's offer creates the call; caller = side A
        let n = c.sip_sdp(&req, true, true, 0, &mut out).unwrap();
        let to_b = port_of(&out[..n]);
        // the 200's answer: sent by the To party
        req.to_tag = Some(b"bob");
        req.sdp = Some(callee.as_bytes());
        let n = c.sip_sdp(&req, false, false, 1, &mut out).unwrap();
        let to_a = port_of(&out[..n]);
        assert_ne!(to_a, to_b);
        // a re-INVITE from the callee: From = bob, To = alice, moving bob to port 6000
        let moved = sdp("198.51.100.20", 6000);
        let mut re = Request::new(Command::Offer);
        re.call_id = Some(b"c");
        re.from_tag = Some(b"bob");
        re.to_tag = Some(b"alice");
        re.sdp = Some(moved.as_bytes());
        let n = c.sip_sdp(&re, true, true, 2, &mut out).unwrap();
        assert_eq!(port_of(&out[..n]), to_a, "bob's new SDP still tells alice to send to her port");
        assert_eq!(c.calls(), 1, "no second call");
        assert_eq!(
            c.table.packet(to_a, "192.0.2.10:4000".parse().unwrap(), 172, 3),
            Verdict::Forward { from_port: to_b, to: "198.51.100.20:6000".parse().unwrap() }
        );
        // an answer for a call nobody offered is refused; a BYE ends the call
        let mut stray = Request::new(Command::Answer);
        stray.call_id = Some(b"other");
        stray.from_tag = Some(b"x");
        stray.sdp = Some(callee.as_bytes());
        assert_eq!(c.sip_sdp(&stray, false, false, 4, &mut out), Err(OpError::UnknownCall));
        assert_eq!(c.delete_call(b"c", None), 1);
    }

    #[test]
    fn idle_calls_expire_and_active_ones_stay() {
        let mut c = control();
        for (i, at) in [(1, 0), (2, 0)] {
            let req = request("offer", &[("from-tag", &format!("f{i}")), ("sdp", &sdp("192.0.2.10", 4000))]);
            assert_eq!(reply(&mut c, &req, at).0, "ok");
        }
        let free = c.ports_free();
        // call f1's sessions see a packet at 50; f2's never do
        let id = c.calls[&call_key(b"call1", b"f1")].sessions[0].unwrap();
        let port = c.table.get(id).unwrap().legs[0].port;
        let _ = c.table.packet(port, "192.0.2.10:4000".parse().unwrap(), 172, 50);
        assert_eq!(c.expire(10), 1, "f2 idle since its offer at 0");
        assert_eq!(c.calls(), 1);
        assert_eq!(c.ports_free(), free + 4, "two pairs (caller and callee side) back");
        assert_eq!(c.expire(40), 0, "f1 had a packet at 50");
        assert_eq!(c.expire(60), 1);
        assert_eq!(c.totals().expired, 2);
        assert_eq!(c.delete_call(b"call1", None), 0);
    }

    #[test]
    fn ports_run_out_cleanly_and_come_back() {
        let mut c = control(); // 5 pairs: two calls need 4
        for (i, want) in [(1, "ok"), (2, "ok"), (3, "error")] {
            let req = request("offer", &[("from-tag", &format!("f{i}")), ("sdp", &sdp("192.0.2.10", 4000))]);
            assert_eq!(reply(&mut c, &req, 0).0, want, "offer {i}");
        }
        assert_eq!(c.totals().no_ports, 1);
        assert_eq!(reply(&mut c, &request("delete", &[("from-tag", "f1")]), 1).0, "ok");
        assert_eq!(
            reply(&mut c, &request("offer", &[("from-tag", "f3"), ("sdp", &sdp("192.0.2.10", 4000))]), 2).0,
            "ok"
        );
    }

    #[test]
    fn bad_requests_get_error_replies() {
        let mut c = control();
        assert_eq!(
            reply(&mut c, &request("answer", &[("from-tag", "x"), ("to-tag", "y"), ("sdp", &sdp("192.0.2.1", 1))]), 0)
                .0,
            "error"
        );
        assert_eq!(reply(&mut c, &request("offer", &[("from-tag", "x"), ("sdp", "not sdp")]), 0).0, "error");
        let mut out = [0u8; 256];
        let n = c.handle(b"7 garbage", 0, &mut out);
        assert!(out[..n].starts_with(b"7 d6:result5:error"));
        assert_eq!(c.handle(b"nocookie", 0, &mut out), 0);
        assert_eq!(reply(&mut c, b"c1 d7:command4:pinge", 0).0, "pong");
        assert!(c.totals().errors >= 3);
    }

    proptest::proptest! {
        #[test]
        fn any_datagram_gets_a_reply_or_nothing_never_a_panic(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            cut in 0usize..400,
        ) {
            let mut c = control();
            let mut out = [0u8; 4096];
            let _ = c.handle(&data, 0, &mut out);
            let offer = request("offer", &[("from-tag", "ft"), ("sdp", &sdp("192.0.2.10", 4000))]);
            let _ = c.handle(&offer[..cut.min(offer.len())], 1, &mut out);
        }
    }
}
