//! Stateless proxy mechanics (RFC 3261 §16.11, §16.3, §16.6, §18.2; RFC 3581), sans IO.
//!
//! * [`Branch`]: the Via branch a stateless proxy puts on a forwarded request. It is a pure
//!   function of the request, so a retransmission, the CANCEL of an INVITE and the ACK of a
//!   non-2xx response get the same branch as the request they belong to (§16.11). It has two
//!   halves: a *loop* half over the fields a loop leaves unchanged (Request-URI as received,
//!   From tag, To tag, Call-ID, CSeq number) and a *transaction* half that adds the topmost
//!   Via. A request that comes back carrying one of ringsip's Vias with the same loop half has
//!   looped (§16.3 step 4); a different loop half is a spiral.
//! * [`next_hop`]: where a response goes: the Via's `received`/`rport`, else its sent-by
//!   (§18.2.2, RFC 3581 §4).
//! * [`write_reply`]: a stateless response to a request (§8.2.6).

use core::net::{IpAddr, SocketAddr};

use crate::HeaderName;
use crate::chars;
use crate::message::Message;
use crate::uri::Host;
use crate::values::{Transport, Via};

/// Prefix of every branch ringsip generates: the RFC 3261 magic cookie, `rs` for ringsip and
/// `L` for a stateless (loop-detecting) branch.
pub const BRANCH_PREFIX: &[u8] = b"z9hG4bKrsL";

/// Length of a branch: prefix + 16 hex digits (loop half) + 16 hex digits (transaction half).
pub const BRANCH_LEN: usize = BRANCH_PREFIX.len() + 32;

/// A 64-bit hash for branches, stickiness keys and dispatcher selection: FNV-1a's
/// xor-multiply step applied to little-endian 8-byte words (the tail zero-padded, then a
/// length-tagged separator), with MurmurHash3's `fmix64` finalizer so that every output bit
/// depends on every input bit (`finish() % n` picks destinations evenly). Word-at-a-time is
/// about 8x fewer multiplies than byte-wise FNV on Call-IDs and tags. Enough to make
/// branches unique per transaction; not a security boundary (no key, not collision-hard).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv {
    /// A fresh hash.
    pub const fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    /// Add bytes, then a separator carrying their length, so that ("ab","c") and ("a","bc")
    /// differ and a zero-padded tail differs from real zero bytes.
    #[inline]
    pub fn mix(mut self, bytes: &[u8]) -> Fnv {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.0 = (self.0 ^ u64::from_le_bytes(a)).wrapping_mul(PRIME).rotate_left(29);
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut a = [0u8; 8];
            a[..tail.len()].copy_from_slice(tail);
            self.0 = (self.0 ^ u64::from_le_bytes(a)).wrapping_mul(PRIME).rotate_left(29);
        }
        self.0 = (self.0 ^ (0xff00 | bytes.len() as u64)).wrapping_mul(PRIME).rotate_left(29);
        self
    }
    /// Add a number.
    #[inline]
    pub fn mix_u64(mut self, v: u64) -> Fnv {
        self.0 = (self.0 ^ v).wrapping_mul(PRIME).rotate_left(29);
        self.0 = (self.0 ^ 0xfe08).wrapping_mul(PRIME).rotate_left(29);
        self
    }
    /// The hash value.
    pub fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

/// A stateless branch, rendered into a fixed buffer (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    bytes: [u8; BRANCH_LEN],
}

impl core::fmt::Debug for Branch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(core::str::from_utf8(&self.bytes).unwrap_or("?"))
    }
}

fn hex16(v: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out[..16].iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl Branch {
    /// The branch for forwarding `msg` (a request), per the module docs. Needs the top Via,
    /// From, To, Call-ID and CSeq to have parsed (the caller has read them already).
    pub fn for_request(msg: &Message<'_>) -> Option<Branch> {
        let ruri = msg.request_uri_bytes()?;
        let from_tag = msg.from().ok()?.tag().unwrap_or(b"");
        let to_tag = msg.to().ok()?.tag().unwrap_or(b"");
        let call_id = msg.call_id().ok()?;
        let cseq = msg.cseq().ok()?.number;
        let via = msg.via().ok()?;
        let loop_half = Fnv::new().mix(ruri).mix(from_tag).mix(to_tag).mix(call_id).mix_u64(cseq as u64).finish();
        // RFC 3261 branches identify the upstream transaction on their own; for RFC 2543
        // requests the whole top Via stands in (§17.2.3).
        let txn = if via.is_rfc3261_branch() { via.branch().unwrap_or(b"") } else { via.as_bytes() };
        let txn_half = Fnv::new().mix_u64(loop_half).mix(txn).finish();
        let mut bytes = [0u8; BRANCH_LEN];
        bytes[..BRANCH_PREFIX.len()].copy_from_slice(BRANCH_PREFIX);
        hex16(loop_half, &mut bytes[BRANCH_PREFIX.len()..]);
        hex16(txn_half, &mut bytes[BRANCH_PREFIX.len() + 16..]);
        Some(Branch { bytes })
    }

    /// The branch as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The loop half (prefix + 16 hex digits).
    pub fn loop_part(&self) -> &[u8] {
        &self.bytes[..BRANCH_PREFIX.len() + 16]
    }

    /// Is `branch` one ringsip generated statelessly?
    pub fn is_ours(branch: &[u8]) -> bool {
        branch.len() == BRANCH_LEN && branch.starts_with(BRANCH_PREFIX)
    }
}

/// Does `msg` carry a Via from `me` (one of ringsip's sent-by values) whose branch has the
/// same loop half as `branch`? Then the request has looped (RFC 3261 §16.3 step 4).
pub fn has_looped(msg: &Message<'_>, branch: &Branch, me: impl Fn(&Via<'_>) -> bool) -> bool {
    let looped =
        |v: &Via<'_>| me(v) && v.branch().is_some_and(|b| Branch::is_ours(b) && b.starts_with(branch.loop_part()));
    // the top Via is already parsed (cached); only the ones below it are parsed here
    msg.via().is_ok_and(looped) || msg.vias_after_top().filter_map(Result::ok).any(|v| looped(&v))
}

/// Where a response with `via` as its (new) top Via goes (RFC 3261 §18.2.2, RFC 3581 §4):
/// the `received` address if present, else the sent-by host when it is an IP literal; the
/// `rport` value if present, else the sent-by port, else 5060 (5061 for TLS). `None` when
/// the host is a name: resolving it would need DNS, which the hot path never does.
pub fn next_hop(via: &Via<'_>) -> Option<SocketAddr> {
    let ip = match via.received() {
        Some(ip) => ip,
        None => via.host().ip()?,
    };
    let default_port = if via.transport() == Transport::Tls { 5061 } else { 5060 };
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port().unwrap_or(default_port),
    };
    Some(SocketAddr::new(ip, port))
}

/// Where a locally generated response to a request goes: its top Via with `received` set to
/// the source address and `rport` honoured (RFC 3581 §4), as if the Via had been fixed.
pub fn reply_hop(via: &Via<'_>, src: SocketAddr) -> SocketAddr {
    let port = match via.rport() {
        Some(_) => src.port(),
        None => via.port().unwrap_or(if via.transport() == Transport::Tls { 5061 } else { 5060 }),
    };
    SocketAddr::new(src.ip(), port)
}

/// Does the sent-by of `via` need a `received` parameter for a request from `src`
/// (RFC 3261 §18.2.1: the sent-by host differs from the source IP)?
pub fn needs_received(via: &Via<'_>, src: IpAddr) -> bool {
    match via.host() {
        Host::V4(a) => IpAddr::V4(a) != src,
        Host::V6(a) => IpAddr::V6(a) != src,
        Host::Name(_) => true,
    }
}

/// Decimal text of `v` in `buf` (no formatting machinery, no allocation).
pub fn dec(v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Text of an IP address in `buf`, exactly as `Display` writes it (dotted quad; RFC 5952 for
/// IPv6: lowercase, no leading zeros, the longest run of two or more zero groups as `::`,
/// `::ffff:a.b.c.d` for IPv4-mapped), without the formatting machinery: it runs for every
/// forwarded request that gets `received`.
pub fn ip_text(ip: IpAddr, buf: &mut [u8; 48]) -> &[u8] {
    let mut n = 0;
    match ip {
        IpAddr::V4(a) => n = put_v4(a.octets(), buf, 0),
        IpAddr::V6(a) => {
            let g = a.segments();
            if g[..5] == [0; 5] && g[5] == 0xffff {
                buf[..7].copy_from_slice(b"::ffff:");
                let o = a.octets();
                n = put_v4([o[12], o[13], o[14], o[15]], buf, 7);
                return &buf[..n];
            }
            // the longest run of zero groups (first on ties), if at least two long
            let (mut best, mut best_len, mut i) = (8, 0, 0);
            while i < 8 {
                if g[i] == 0 {
                    let start = i;
                    while i < 8 && g[i] == 0 {
                        i += 1;
                    }
                    if i - start > best_len {
                        (best, best_len) = (start, i - start);
                    }
                } else {
                    i += 1;
                }
            }
            if best_len < 2 {
                best = 8;
            }
            let mut k = 0;
            while k < 8 {
                if k == best {
                    buf[n..n + 2].copy_from_slice(b"::");
                    n += 2;
                    k += best_len;
                    continue;
                }
                if k > 0 && k != best + best_len {
                    buf[n] = b':';
                    n += 1;
                }
                let v = g[k];
                let digits = if v >= 0x1000 {
                    4
                } else if v >= 0x100 {
                    3
                } else if v >= 0x10 {
                    2
                } else {
                    1
                };
                for d in (0..digits).rev() {
                    buf[n] = b"0123456789abcdef"[usize::from((v >> (4 * d)) & 0xf)];
                    n += 1;
                }
                k += 1;
            }
        }
    }
    &buf[..n]
}

fn put_v4(o: [u8; 4], buf: &mut [u8; 48], mut n: usize) -> usize {
    for (i, &b) in o.iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        let mut t = [0u8; 20];
        let d = dec(u64::from(b), &mut t);
        buf[n..n + d.len()].copy_from_slice(d);
        n += d.len();
    }
    n
}

/// A tiny bounded writer over a byte buffer (no allocation); overflow is remembered and
/// reported by [`write_reply`].
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) {
        if self.len + b.len() > self.buf.len() {
            self.overflow = true;
            return;
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

/// Write a stateless response to `req` into `out` (RFC 3261 §8.2.6.2): the status line, every
/// Via (the top one with `received`/`rport` fixed for `src`), From, To (with `to_tag` added
/// when the request has none and the code is above 100), Call-ID, CSeq, any `extra` header
/// lines (each a full `Name: value` without line ending), `Content-Length: 0`. Returns the
/// length, or `None` if `out` is too small or the request lacks the headers a response
/// copies.
pub fn write_reply(
    req: &Message<'_>,
    src: SocketAddr,
    code: u16,
    reason: &[u8],
    to_tag: &[u8],
    extra: &[&[u8]],
    out: &mut [u8],
) -> Option<usize> {
    let mut w = Out { buf: out, len: 0, overflow: false };
    w.put(b"SIP/2.0 ");
    let mut t = [0u8; 20];
    w.put(dec(u64::from(code), &mut t));
    w.put(b" ");
    w.put(reason);
    w.put(b"\r\n");
    let buf = req.buffer();
    let mut first_via = true;
    for (i, e) in req.entries().iter().enumerate() {
        let value = &buf[e.value_range()];
        match e.name() {
            HeaderName::Via => {
                w.put(b"Via: ");
                if first_via {
                    first_via = false;
                    // the first element of the first Via line gets received, and a valueless
                    // rport gets its value (RFC 3581 §4)
                    let top = req.via().ok()?;
                    let raw = top.as_bytes();
                    let end = chars::offset_in(value, raw) + raw.len();
                    let mut cursor = 0;
                    if let Some((name, None)) = top.params().iter().find(|(n, _)| n.eq_ignore_ascii_case(b"rport")) {
                        let pos = chars::offset_in(value, name) + name.len();
                        w.put(&value[..pos]);
                        w.put(b"=");
                        let mut t = [0u8; 20];
                        w.put(dec(u64::from(src.port()), &mut t));
                        cursor = pos;
                    }
                    w.put(&value[cursor..end]);
                    w.put(b";received=");
                    let mut t = [0u8; 48];
                    w.put(ip_text(src.ip(), &mut t));
                    w.put(&value[end..]);
                } else {
                    w.put(value);
                }
                w.put(b"\r\n");
            }
            HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                w.put(req.raw_name(i));
                w.put(b": ");
                w.put(value);
                w.put(b"\r\n");
            }
            HeaderName::To => {
                w.put(b"To: ");
                w.put(value);
                // a To that cannot be read is copied as it came, without a tag
                if code > 100 && !to_tag.is_empty() && req.to().is_ok_and(|t| t.tag().is_none()) {
                    w.put(b";tag=");
                    w.put(to_tag);
                }
                w.put(b"\r\n");
            }
            _ => {}
        }
    }
    for line in extra {
        w.put(line);
        w.put(b"\r\n");
    }
    w.put(b"Content-Length: 0\r\n\r\n");
    if w.overflow { None } else { Some(w.len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn ip_text_matches_display() {
        use core::net::{Ipv4Addr, Ipv6Addr};
        use std::string::ToString;
        let mut cases: Vec<IpAddr> = [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.4",
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "fe80::1:2:3:4",
            "1:2:3:4:5:6:7:8",
            "1:0:3:0:5:0:7:0",
            "::ffff:192.0.2.33",
            "::192.0.2.33",
            "0:0:0:0:0:ffff:0:0",
            "64:ff9b::c000:221",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // every zero/non-zero pattern of the eight groups, with varying digit counts
        for mask in 0u32..256 {
            let mut g = [0u16; 8];
            for (i, x) in g.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *x = [0x1, 0x2f, 0x3a0, 0xbeef][i % 4];
                }
            }
            cases.push(IpAddr::V6(Ipv6Addr::new(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7])));
            cases.push(IpAddr::V4(Ipv4Addr::from(mask.wrapping_mul(0x9E37_79B9))));
        }
        for ip in cases {
            let mut b = [0u8; 48];
            assert_eq!(core::str::from_utf8(ip_text(ip, &mut b)).unwrap(), ip.to_string(), "{ip:?}");
        }
        let mut t = [0u8; 20];
        assert_eq!(dec(0, &mut t), b"0");
        assert_eq!(dec(u64::MAX, &mut t), b"18446744073709551615");
    }

    #[test]
    fn hash_separates_fields_and_spreads() {
        let h = |parts: &[&[u8]]| parts.iter().fold(Fnv::new(), |h, p| h.mix(p)).finish();
        assert_ne!(h(&[b"ab", b"c"]), h(&[b"a", b"bc"]));
        assert_ne!(h(&[b"abc"]), h(&[b"abc\0"]), "zero padding is not data");
        assert_ne!(h(&[b"12345678"]), h(&[b"12345678", b""]));
        assert_eq!(h(&[b"same-call-id@host"]), h(&[b"same-call-id@host"]));
        assert_ne!(Fnv::new().mix_u64(1).finish(), Fnv::new().mix_u64(2).finish());
        // sequential Call-IDs (as load generators and many UACs make them) spread evenly
        for n in [2u64, 3, 5, 8] {
            let mut buckets = [0u32; 8];
            let mut id = [0u8; 32];
            for i in 0..8000u32 {
                let len = {
                    use core::fmt::Write;
                    struct W<'a>(&'a mut [u8], usize);
                    impl Write for W<'_> {
                        fn write_str(&mut self, s: &str) -> core::fmt::Result {
                            self.0[self.1..self.1 + s.len()].copy_from_slice(s.as_bytes());
                            self.1 += s.len();
                            Ok(())
                        }
                    }
                    let mut w = W(&mut id, 0);
                    write!(w, "{i}-1234@127.0.0.1").unwrap();
                    w.1
                };
                buckets[(Fnv::new().mix(&id[..len]).finish() % n) as usize] += 1;
            }
            let expect = 8000 / n as u32;
            for &b in &buckets[..n as usize] {
                assert!(b.abs_diff(expect) < expect / 10, "mod {n}: {buckets:?}");
            }
        }
    }

    const INVITE: &[u8] = b"INVITE sip:bob@192.0.2.20 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKdown\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=f1\r\n\
Call-ID: c1@10.0.0.1\r\n\
CSeq: 7 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    fn with(raw: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let s = std::string::String::from_utf8_lossy(raw).into_owned();
        s.replacen(core::str::from_utf8(from).unwrap(), core::str::from_utf8(to).unwrap(), 1).into_bytes()
    }

    #[test]
    fn branch_is_a_function_of_the_transaction() {
        let a = Message::parse(INVITE).unwrap();
        let b1 = Branch::for_request(&a).unwrap();
        assert!(Branch::is_ours(b1.as_bytes()));
        assert!(b1.as_bytes().starts_with(b"z9hG4bKrsL"));
        // a retransmission gets the same branch
        assert_eq!(Branch::for_request(&Message::parse(INVITE).unwrap()).unwrap(), b1);
        // so does the CANCEL of this INVITE (same top Via branch, R-URI, tags, Call-ID, CSeq number)
        let cancel = with(INVITE, b"INVITE sip", b"CANCEL sip");
        let cancel = with(&cancel, b"7 INVITE", b"7 CANCEL");
        assert_eq!(Branch::for_request(&Message::parse(&cancel).unwrap()).unwrap(), b1);
        // a new transaction (new upstream branch) differs, in the transaction half only
        let other = with(INVITE, b"z9hG4bKabc", b"z9hG4bKxyz");
        let b2 = Branch::for_request(&Message::parse(&other).unwrap()).unwrap();
        assert_ne!(b2, b1);
        assert_eq!(b2.loop_part(), b1.loop_part());
        // a different Request-URI (a spiral after translation) changes the loop half
        let spiral = with(INVITE, b"sip:bob@192.0.2.20", b"sip:bob@192.0.2.21");
        assert_ne!(Branch::for_request(&Message::parse(&spiral).unwrap()).unwrap().loop_part(), b1.loop_part());
    }

    #[test]
    fn loops_are_detected_spirals_are_not() {
        let m = Message::parse(INVITE).unwrap();
        let b = Branch::for_request(&m).unwrap();
        // the same request comes back with our Via below a downstream one
        let mut looped = std::string::String::from_utf8_lossy(INVITE).into_owned();
        let ours = std::format!("Via: SIP/2.0/UDP 192.0.2.1:5060;branch={:?}\r\n", b);
        looped = looped.replacen("Via: SIP/2.0/UDP 10.0.0.9", &(ours + "Via: SIP/2.0/UDP 10.0.0.9"), 1);
        looped = looped.replacen("z9hG4bKabc", "z9hG4bKdownstream", 1);
        let lm = Message::parse(looped.as_bytes()).unwrap();
        let lb = Branch::for_request(&lm).unwrap();
        let me = |v: &Via<'_>| v.host_bytes() == b"192.0.2.1" && v.port() == Some(5060);
        assert!(has_looped(&lm, &lb, me));
        assert!(!has_looped(&m, &b, me));
        // spiral: the Request-URI changed since we saw it
        let spiral = looped.replacen("sip:bob@192.0.2.20", "sip:bob@192.0.2.30", 1);
        let sm = Message::parse(spiral.as_bytes()).unwrap();
        assert!(!has_looped(&sm, &Branch::for_request(&sm).unwrap(), me));
    }

    #[test]
    fn response_next_hop() {
        let via = |s: &'static [u8]| Via::parse(s).unwrap();
        assert_eq!(
            next_hop(&via(b"SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1")),
            Some("10.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(next_hop(&via(b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1")), Some("10.0.0.1:5060".parse().unwrap()));
        assert_eq!(next_hop(&via(b"SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK1")), Some("10.0.0.1:5061".parse().unwrap()));
        assert_eq!(
            next_hop(&via(b"SIP/2.0/UDP host.example.com:5070;received=192.0.2.7;rport=40000")),
            Some("192.0.2.7:40000".parse().unwrap())
        );
        assert_eq!(next_hop(&via(b"SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK1")), None);
        assert_eq!(
            next_hop(&via(b"SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK1")),
            Some("[2001:db8::1]:5070".parse().unwrap())
        );
        let src: SocketAddr = "203.0.113.9:34567".parse().unwrap();
        assert_eq!(reply_hop(&via(b"SIP/2.0/UDP 10.0.0.1:5070;rport"), src), "203.0.113.9:34567".parse().unwrap());
        assert_eq!(reply_hop(&via(b"SIP/2.0/UDP 10.0.0.1:5070"), src), "203.0.113.9:5070".parse().unwrap());
        assert!(needs_received(&via(b"SIP/2.0/UDP 10.0.0.1"), "203.0.113.9".parse().unwrap()));
        assert!(!needs_received(&via(b"SIP/2.0/UDP 10.0.0.1"), "10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn stateless_reply() {
        let m = Message::parse(INVITE).unwrap();
        let mut out = [0u8; 1024];
        let src: SocketAddr = "203.0.113.9:34567".parse().unwrap();
        let n = write_reply(&m, src, 503, b"No destination", b"rs1", &[b"Retry-After: 5"], &mut out).unwrap();
        let r = Message::parse(&out[..n]).unwrap();
        r.validate().unwrap();
        assert_eq!(r.status(), Some(503));
        let top = r.via().unwrap();
        assert_eq!(top.received(), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(top.rport(), Some(Some(34567)));
        assert_eq!(top.params().iter().filter(|(n, _)| *n == b"rport").count(), 1);
        assert_eq!(top.branch(), Some(&b"z9hG4bKabc"[..]));
        assert_eq!(r.vias().count(), 2);
        assert_eq!(r.to().unwrap().tag(), Some(&b"rs1"[..]));
        assert_eq!(r.cseq().unwrap().method, b"INVITE");
        assert_eq!(r.header(HeaderName::RetryAfter), Some(&b"5"[..]));
        assert_eq!(r.content_length(), Some(0));
        assert_eq!(write_reply(&m, src, 503, b"x", b"t", &[], &mut [0u8; 40]), None);
        // a request whose To is broken still gets its answer (To copied as it came)
        let broken = with(INVITE, b"To: <sip:bob@example.com>", b"To: \"open <sip:bob@example.com>");
        let b = Message::parse(&broken).unwrap();
        let n = write_reply(&b, src, 400, b"Bad Request", b"t", &[], &mut out).unwrap();
        assert!(out[..n].windows(9).any(|w| w == b"To: \"open"));
    }
}
