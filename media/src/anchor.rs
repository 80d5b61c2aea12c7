//! The SDP rewrite of media anchoring: each side of a call is told to send its media to the
//! relay (RFC 4566 lines rewritten in place, everything else kept byte for byte).
//!
//! [`rewrite`] takes an SDP body indexed by `ringsip_proto::sdp`, the relay's address and one
//! port per media section, and writes the body with:
//!
//! * every `c=` line (session and media level) pointing at the relay — except the legacy hold
//!   address `0.0.0.0`/`::` (RFC 3264 §8.4), which stays so the hold still reads as one;
//! * every active `m=` line's port set to the relay's port for that section (a port of 0, a
//!   disabled stream, stays 0);
//! * `a=rtcp` (RFC 3605) set to the relay's port + 1 and address;
//! * with `replace_origin`, the `o=` address set to the relay's;
//! * with [`Ice::Remove`](crate::ng::Ice::Remove), the ICE attributes (`candidate`,
//!   `ice-ufrag`, `ice-pwd`, `ice-options`, `ice-lite`, `ice-mismatch`, `remote-candidates`,
//!   `end-of-candidates`) removed.
//!
//! Codecs, `ptime`, directions and every other line are untouched. No allocation: the
//! replacement texts go into a fixed arena, the edits into a fixed list.

use core::fmt;
use core::net::IpAddr;

use arrayvec::ArrayVec;
use ringsip_proto::chars::offset_in;
use ringsip_proto::sdp::{AddrType, Connection, MAX_MEDIA, Sdp};

/// Where the relay receives a call's media: its address and the RTP port of each media
/// section, in `m=` order (RTCP on the next port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The relay's address as the other side must reach it.
    pub addr: IpAddr,
    /// RTP port per media section.
    pub ports: [u16; MAX_MEDIA],
    /// Rewrite the `o=` address too (ng `replace: origin`).
    pub replace_origin: bool,
    /// Remove ICE attributes (ng `ICE: remove`).
    pub ice_remove: bool,
}

/// Why a body was not rewritten (a media section without any `c=` address never gets here:
/// `Sdp::parse` refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The result does not fit the output buffer, or too many edits.
    TooBig,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooBig => f.write_str("the rewritten SDP does not fit"),
        }
    }
}

impl std::error::Error for Error {}

/// ICE attributes removed by [`Anchor::ice_remove`].
const ICE: [&[u8]; 8] = [
    b"candidate",
    b"ice-ufrag",
    b"ice-pwd",
    b"ice-options",
    b"ice-lite",
    b"ice-mismatch",
    b"remote-candidates",
    b"end-of-candidates",
];

/// One replacement: body range → arena range.
#[derive(Clone, Copy)]
struct Edit {
    start: usize,
    end: usize,
    text: (usize, usize),
}

struct Edits {
    list: ArrayVec<Edit, 96>,
    arena: ArrayVec<u8, 4096>,
}

impl Edits {
    fn replace(&mut self, body: &[u8], part: &[u8], text: &[&[u8]]) -> Result<(), Error> {
        let start = offset_in(body, part);
        let t0 = self.arena.len();
        for t in text {
            self.arena.try_extend_from_slice(t).map_err(|_| Error::TooBig)?;
        }
        self.list
            .try_push(Edit { start, end: start + part.len(), text: (t0, self.arena.len()) })
            .map_err(|_| Error::TooBig)
    }

    fn write(&mut self, body: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        self.list.sort_unstable_by_key(|e| e.start);
        let mut n = 0;
        let mut at = 0;
        let mut put = |b: &[u8], n: &mut usize| -> Result<(), Error> {
            out.get_mut(*n..*n + b.len()).ok_or(Error::TooBig)?.copy_from_slice(b);
            *n += b.len();
            Ok(())
        };
        for e in &self.list {
            if e.start < at {
                continue; // overlapping edits never happen; ignore rather than corrupt
            }
            put(&body[at..e.start], &mut n)?;
            put(&self.arena[e.text.0..e.text.1], &mut n)?;
            at = e.end;
        }
        put(&body[at..], &mut n)?;
        Ok(n)
    }
}

fn addr_text(ip: IpAddr, buf: &mut [u8; 48]) -> (&'static [u8], &[u8]) {
    let kind: &'static [u8] = if ip.is_ipv4() { b"IP4" } else { b"IP6" };
    (kind, ringsip_proto::proxy::ip_text(ip, buf))
}

/// Rewrite `sdp` (indexed from `body`) for `anchor` into `out`; returns the length.
pub fn rewrite(body: &[u8], sdp: &Sdp<'_>, anchor: &Anchor, out: &mut [u8]) -> Result<usize, Error> {
    let mut e = Edits { list: ArrayVec::new(), arena: ArrayVec::new() };
    let mut ab = [0u8; 48];
    let (kind, addr) = addr_text(anchor.addr, &mut ab);
    let conn = |e: &mut Edits, c: &Connection<'_>| -> Result<(), Error> {
        if c.is_hold() {
            return Ok(());
        }
        e.replace(body, c.line, &[c.net_type, b" ", kind, b" ", addr])
    };
    if let Some(c) = sdp.connection() {
        conn(&mut e, c)?;
    }
    if anchor.replace_origin {
        let o = sdp.origin();
        if o.addr_type != AddrType::Other {
            e.replace(body, o.address, &[addr])?;
            // the address family may change with the address
            let ty_at = offset_in(body, o.address);
            if let Some(ty) = body.get(ty_at.saturating_sub(4)..ty_at.saturating_sub(1))
                && (ty.eq_ignore_ascii_case(b"IP4") || ty.eq_ignore_ascii_case(b"IP6"))
            {
                e.replace(body, ty, &[kind])?;
            }
        }
    }
    for (k, m) in sdp.media().iter().enumerate() {
        if let Some(c) = &m.connection {
            conn(&mut e, c)?;
        }
        let port = anchor.ports.get(k).copied().unwrap_or(0);
        if m.port != 0 && port != 0 {
            let mut pb = [0u8; 20];
            e.replace(body, m.port_bytes, &[dec(u64::from(port), &mut pb)])?;
            if let Some(r) = &m.rtcp {
                let mut rb = [0u8; 20];
                let rtcp = dec(u64::from(port) + 1, &mut rb);
                let ending = line_ending(r.line);
                e.replace(body, r.line, &[b"a=rtcp:", rtcp, b" IN ", kind, b" ", addr, ending])?;
            }
        }
        if anchor.ice_remove {
            for a in m.attributes() {
                if ICE.contains(&a.name) {
                    e.replace(body, a.line, &[])?;
                }
            }
        }
    }
    if anchor.ice_remove {
        for a in sdp.attributes() {
            if ICE.contains(&a.name) {
                e.replace(body, a.line, &[])?;
            }
        }
    }
    e.write(body, out)
}

fn line_ending(line: &[u8]) -> &'static [u8] {
    if line.ends_with(b"\r\n") {
        b"\r\n"
    } else if line.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

fn dec(v: u64, buf: &mut [u8; 20]) -> &[u8] {
    ringsip_proto::proxy::dec(v, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &[u8] = b"v=0\r\no=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\na=ice-ufrag:F7gI\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtcp:49171 IN IP4 198.51.100.7\r\na=candidate:1 1 UDP 2130706431 10.0.1.1 8998 typ host\r\na=ptime:20\r\nm=video 0 RTP/AVP 31\r\n";

    fn anchor(ports: &[u16], origin: bool, ice: bool) -> Anchor {
        let mut p = [0u16; MAX_MEDIA];
        p[..ports.len()].copy_from_slice(ports);
        Anchor { addr: "127.0.0.1".parse().unwrap(), ports: p, replace_origin: origin, ice_remove: ice }
    }

    fn run(body: &[u8], a: &Anchor) -> String {
        let sdp = Sdp::parse(body).unwrap();
        let mut out = [0u8; 2048];
        let n = rewrite(body, &sdp, a, &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn connection_ports_rtcp_origin_and_ice_point_at_the_relay() {
        let s = run(OFFER, &anchor(&[30000, 30002], true, true));
        assert!(s.contains("o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n"), "{s}");
        assert!(s.contains("\r\nc=IN IP4 127.0.0.1\r\n"), "{s}");
        assert!(s.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{s}");
        assert!(s.contains("a=rtcp:30001 IN IP4 127.0.0.1\r\n"), "{s}");
        assert!(!s.contains("candidate") && !s.contains("ice-ufrag"), "{s}");
        // the disabled stream stays disabled; codecs and ptime untouched
        assert!(
            s.contains("m=video 0 RTP/AVP 31\r\n")
                && s.contains("a=rtpmap:0 PCMU/8000\r\na=")
                && s.contains("a=ptime:20")
        );
        // the result is still SDP ringsip reads
        let again = Sdp::parse(s.as_bytes()).unwrap();
        assert_eq!(again.media()[0].port, 30000);
        assert_eq!(again.connection().unwrap().ip(), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn without_flags_origin_and_ice_stay() {
        let s = run(OFFER, &anchor(&[30000], false, false));
        assert!(s.contains("IN IP4 198.51.100.7\r\ns=-"), "o= kept: {s}");
        assert!(s.contains("a=candidate:1") && s.contains("a=ice-ufrag:F7gI"));
    }

    #[test]
    fn hold_stays_hold_and_ipv6_relays_change_the_address_type() {
        let hold = b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=sendonly\r\n";
        let s = run(hold, &anchor(&[30000], true, false));
        assert!(s.contains("c=IN IP4 0.0.0.0\r\n") && s.contains("m=audio 30000 "), "{s}");
        let mut a = anchor(&[30010], true, false);
        a.addr = "2001:db8::1".parse().unwrap();
        let s = run(OFFER, &a);
        assert!(s.contains("c=IN IP6 2001:db8::1\r\n") && s.contains("IN IP6 2001:db8::1\r\ns=-"), "{s}");
        assert!(s.contains("a=rtcp:30011 IN IP6 2001:db8::1\r\n"), "{s}");
    }

    #[test]
    fn a_buffer_too_small_is_an_error() {
        let sdp = Sdp::parse(OFFER).unwrap();
        assert_eq!(rewrite(OFFER, &sdp, &anchor(&[30000], true, true), &mut [0u8; 64]), Err(Error::TooBig));
    }

    /// Well-formed SDP with 1 to 4 media sections, some disabled, some on hold, with and
    /// without a session-level c= and a=rtcp.
    fn arb_sdp() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (any::<bool>(), proptest::collection::vec((0u16..65535, any::<bool>(), any::<bool>(), 0u8..3), 1..=4), 1u8..255)
            .prop_map(|(session_c, media, last)| {
                let mut s = format!("v=0\r\no=- 1 1 IN IP4 192.0.2.{last}\r\ns=-\r\n");
                if session_c {
                    s += &format!("c=IN IP4 192.0.2.{last}\r\n");
                }
                s += "t=0 0\r\n";
                for (port, media_c, rtcp, hold) in media {
                    s += &format!("m=audio {port} RTP/AVP 0\r\n");
                    if media_c || !session_c {
                        let ip = if hold == 2 { "0.0.0.0".to_string() } else { format!("198.51.100.{last}") };
                        s += &format!("c=IN IP4 {ip}\r\n");
                    }
                    if rtcp {
                        s += &format!("a=rtcp:{}\r\n", port.wrapping_add(1));
                    }
                    s += if hold == 1 { "a=sendonly\r\n" } else { "a=sendrecv\r\n" };
                }
                s
            })
    }

    proptest::proptest! {
        #[test]
        fn every_active_stream_points_at_the_relay(body in arb_sdp(), base in 512u16..30000) {
            let base = base * 2;
            let sdp = Sdp::parse(body.as_bytes()).unwrap();
            let ports: Vec<u16> = (0..sdp.media().len()).map(|k| base + 2 * k as u16).collect();
            let s = run(body.as_bytes(), &anchor(&ports, true, false));
            let again = Sdp::parse(s.as_bytes()).unwrap();
            proptest::prop_assert_eq!(again.media().len(), sdp.media().len());
            for (k, (before, after)) in sdp.media().iter().zip(again.media()).enumerate() {
                if before.port == 0 {
                    proptest::prop_assert_eq!(after.port, 0, "a disabled stream stays disabled");
                    continue;
                }
                proptest::prop_assert_eq!(after.port, ports[k]);
                let c = again.media_connection(after).and_then(|c| c.ip());
                let was_hold = sdp.media_connection(before).and_then(|c| c.ip()).is_some_and(|ip| ip.is_unspecified());
                if !was_hold {
                    proptest::prop_assert_eq!(c, Some("127.0.0.1".parse().unwrap()), "{}", s);
                }
            }
            proptest::prop_assert!(!s.contains("192.0.2."), "origin replaced: {}", s);
        }

        #[test]
        fn mutated_sdp_is_rewritten_or_refused_never_a_panic(
            body in arb_sdp(),
            cut in 0usize..400,
            flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..6),
        ) {
            let mut b = body.into_bytes();
            for (at, byte) in flips {
                if let Some(x) = b.get_mut(at) {
                    *x = byte;
                }
            }
            b.truncate(cut.max(1));
            if let Ok(sdp) = Sdp::parse(&b) {
                let mut small = [0u8; 64];
                let mut out = [0u8; 4096];
                let a = anchor(&[30000, 30002, 30004, 30006], true, true);
                let _ = rewrite(&b, &sdp, &a, &mut small);
                if let Ok(n) = rewrite(&b, &sdp, &a, &mut out) {
                    proptest::prop_assert!(n <= out.len());
                }
            }
        }
    }
}
