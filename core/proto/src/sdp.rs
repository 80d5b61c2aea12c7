//! SDP (RFC 4566) indexing: one pass, zero copies, no allocation.
//!
//! [`Sdp::parse`] checks an SDP body line by line (RFC 4566 §5, liberal where it costs
//! nothing: bare-LF line endings, a missing final line ending, trailing empty lines, trailing
//! blanks on structured lines, unknown line types and any order of the optional session
//! lines) and indexes what a media anchor needs: the `c=` addresses, the `m=` ports, the
//! `a=rtcp` ports, the stream directions, and the `rtpmap`/`fmtp`/`ptime`/`rtcp-mux`
//! attributes.
//!
//! Every value is a `&[u8]` borrowed from the body, so [`chars::offset_in`] turns it into a
//! byte range that a writer can replace (a new address, a new port) or delete (a whole
//! attribute line: [`Attribute::line`] includes its line ending).
//!
//! The attributes the parser understands are validated during [`Sdp::parse`]; the iterators
//! ([`Media::rtpmaps`], [`Media::fmtps`], [`Sdp::attributes`] …) re-read them on demand and
//! silently skip anything they cannot read.

use core::iter::FusedIterator;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arrayvec::ArrayVec;

use crate::chars::{self, offset_in};
use crate::error::{Error, ErrorKind, Place};

/// The most media sections (`m=` lines) one SDP may have; more is [`ErrorKind::SdpTooMany`].
pub const MAX_MEDIA: usize = 16;

// ------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------

/// An indexed SDP body. Built by [`Sdp::parse`]; every slice borrows from the body.
///
/// The media sections live inline ([`MAX_MEDIA`] of them, about 4.4 KiB on 64-bit
/// targets): keep an `Sdp` in one place and pass it by reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp<'a> {
    body: &'a [u8],
    session: &'a [u8],
    origin: Origin<'a>,
    session_name: &'a [u8],
    connection: Option<Connection<'a>>,
    direction: Option<Direction>,
    media: ArrayVec<Media<'a>, MAX_MEDIA>,
}

/// The `o=` line: `username sess-id sess-version nettype addrtype unicast-address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The user name (`-` when there is none).
    pub username: &'a [u8],
    /// The session id: digits.
    pub session_id: &'a [u8],
    /// The session version: digits.
    pub session_version: &'a [u8],
    /// The network type, normally `IN`.
    pub net_type: &'a [u8],
    /// The address type.
    pub addr_type: AddrType,
    /// The address of the originating host (an IP literal or a host name, not validated).
    pub address: &'a [u8],
    /// The line's value: everything after `o=`, without the line ending.
    pub line: &'a [u8],
}

/// The address type of a `c=`, `o=` or `a=rtcp` address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// Network type `IN`, address type `IP4`.
    Ip4,
    /// Network type `IN`, address type `IP6`.
    Ip6,
    /// Any other network or address type (kept, not validated).
    Other,
}

impl AddrType {
    /// The address type for a `nettype`/`addrtype` pair (compared case-insensitively).
    pub fn of(net_type: &[u8], addr_type: &[u8]) -> AddrType {
        match (net_type, addr_type) {
            ([b'I' | b'i', b'N' | b'n'], [b'I' | b'i', b'P' | b'p', b'4']) => AddrType::Ip4,
            ([b'I' | b'i', b'N' | b'n'], [b'I' | b'i', b'P' | b'p', b'6']) => AddrType::Ip6,
            _ => AddrType::Other,
        }
    }
}

/// A `c=` line: `nettype SP addrtype SP connection-address` (RFC 4566 §5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The network type, normally `IN`.
    pub net_type: &'a [u8],
    /// The address type.
    pub addr_type: AddrType,
    /// The address without any `/ttl` or `/count` suffix: a validated IPv4 dotted quad,
    /// IPv6 literal or host name for [`AddrType::Ip4`]/[`AddrType::Ip6`]; anything without
    /// whitespace for [`AddrType::Other`].
    pub address: &'a [u8],
    /// The multicast suffix after the address, without its first `/`: `127/3` (IPv4
    /// `ttl[/count]`) or `3` (IPv6 `count`). Always `None` for [`AddrType::Other`].
    pub suffix: Option<&'a [u8]>,
    /// The line's value: everything after `c=`, without the line ending.
    pub line: &'a [u8],
}

impl Connection<'_> {
    /// Is this the RFC 3264 §8.4 legacy hold address `0.0.0.0` (or `::` for IPv6)?
    pub fn is_hold(&self) -> bool {
        matches!(self.ip(), Some(ip) if ip.is_unspecified())
    }

    /// The address as an IP address; `None` for a host name or an [`AddrType::Other`]
    /// address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.addr_type {
            AddrType::Ip4 => parse_ipv4(self.address).map(IpAddr::V4),
            AddrType::Ip6 => parse_ipv6(self.address).map(IpAddr::V6),
            AddrType::Other => None,
        }
    }
}

/// A media section: the `m=` line and what the parser gathered from the lines under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Media<'a> {
    /// The media type: `audio`, `video`, `application`…
    pub media: &'a [u8],
    /// The transport port.
    pub port: u16,
    /// The port's digits in the body (without any `/count`), for rewriting.
    pub port_bytes: &'a [u8],
    /// The number of ports after `/`, if given (at least 1).
    pub port_count: Option<u16>,
    /// The transport protocol: `RTP/AVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`, `udp`…
    pub proto: &'a [u8],
    /// The media formats, separated by single spaces: `0 8 101`.
    pub formats: &'a [u8],
    /// The first media-level `c=` line (later ones are validated but not indexed).
    pub connection: Option<Connection<'a>>,
    /// The `a=rtcp` attribute (RFC 3605).
    pub rtcp: Option<Rtcp<'a>>,
    /// Is there an `a=rtcp-mux` attribute (RFC 5761)?
    pub rtcp_mux: bool,
    /// The media-level direction attribute; see [`Sdp::media_direction`] for the effective
    /// direction.
    pub direction: Option<Direction>,
    /// The first `a=ptime` value, in milliseconds.
    pub ptime: Option<u32>,
    /// The `m=` line's value: everything after `m=`, without the line ending.
    pub line: &'a [u8],
    /// The whole media section, from the `m` of its `m=` line to the end of its last line,
    /// including that line's ending (trailing empty lines of the body are not included).
    pub section: &'a [u8],
}

impl<'a> Media<'a> {
    /// The `a=` lines of this media section, in order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.section)
    }

    /// The `a=rtpmap` attributes of this media section, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'a>> {
        self.attributes().filter_map(|a| match (a.name, a.value) {
            (b"rtpmap", Some(v)) => parse_rtpmap(v, a.line),
            _ => None,
        })
    }

    /// The `a=rtpmap` attribute for payload type `payload`, if any.
    pub fn rtpmap(&self, payload: u8) -> Option<RtpMap<'a>> {
        self.rtpmaps().find(|r| r.payload == payload)
    }

    /// The `a=fmtp` attributes of this media section, in order.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp<'a>> {
        self.attributes().filter_map(|a| match (a.name, a.value) {
            (b"fmtp", Some(v)) => parse_fmtp(v, a.line),
            _ => None,
        })
    }

    /// The `a=fmtp` attribute for format `format` (e.g. `b"101"`), if any.
    pub fn fmtp(&self, format: &[u8]) -> Option<Fmtp<'a>> {
        self.fmtps().find(|f| f.format == format)
    }

    /// The formats of the `m=` line, one by one: `0`, `8`, `101`.
    pub fn formats(&self) -> impl Iterator<Item = &'a [u8]> {
        self.formats.split(|&b| b == b' ').filter(|f| !f.is_empty())
    }

    /// Is the transport RTP-based (its protocol contains `RTP/`)?
    pub fn is_rtp(&self) -> bool {
        self.proto.windows(4).any(|w| w.eq_ignore_ascii_case(b"RTP/"))
    }
}

/// An `a=rtcp:port [nettype SP addrtype SP address]` attribute (RFC 3605).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtcp<'a> {
    /// The RTCP port.
    pub port: u16,
    /// The port's digits in the body, for rewriting.
    pub port_bytes: &'a [u8],
    /// The optional address: network type, address type and address (without any
    /// multicast suffix), validated like a `c=` address.
    pub connection: Option<(&'a [u8], AddrType, &'a [u8])>,
    /// The whole attribute line, from `a=` to and including its line ending (as
    /// [`Attribute::line`]).
    pub line: &'a [u8],
}

/// A stream direction attribute (RFC 4566 §6, RFC 3264 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction named by an attribute name (`sendrecv`, `sendonly`, `recvonly`,
    /// `inactive`; case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<Direction> {
        match name {
            b"sendrecv" => Some(Direction::SendRecv),
            b"sendonly" => Some(Direction::SendOnly),
            b"recvonly" => Some(Direction::RecvOnly),
            b"inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name: `sendrecv`, `sendonly`, `recvonly` or `inactive`.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// An `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
/// attribute (RFC 4566 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// The payload type, 0–127.
    pub payload: u8,
    /// The encoding name: `PCMU`, `opus`, `telephone-event`…
    pub encoding: &'a [u8],
    /// The clock rate in Hz; `0` when the attribute has none (`a=rtpmap:31 LPC`, which
    /// RFC 4566 does not allow but RFC 4475's test messages use, is tolerated).
    pub clock_rate: u32,
    /// The encoding parameters (the channel count for audio): `2` in `opus/48000/2`.
    pub channels: Option<&'a [u8]>,
    /// The whole attribute line, from `a=` to and including its line ending (as
    /// [`Attribute::line`]).
    pub line: &'a [u8],
}

/// An `a=fmtp:<format> <format specific parameters>` attribute (RFC 4566 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmtp<'a> {
    /// The format (payload type) the parameters apply to.
    pub format: &'a [u8],
    /// The parameters, uninterpreted: `0-15`, `minptime=10;useinbandfec=1`.
    pub params: &'a [u8],
    /// The whole attribute line, from `a=` to and including its line ending (as
    /// [`Attribute::line`]).
    pub line: &'a [u8],
}

/// An `a=` line: `a=name` or `a=name:value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute name (an RFC 4566 token).
    pub name: &'a [u8],
    /// Everything after the first `:` up to the line ending, if there is a `:`.
    pub value: Option<&'a [u8]>,
    /// The whole line, from `a=` to and including its line ending (CRLF, LF or none for
    /// the body's last line): deleting these bytes removes the attribute.
    pub line: &'a [u8],
}

/// Iterator over the `a=` lines of an SDP section; see [`Sdp::attributes`] and
/// [`Media::attributes`].
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    /// Iterate over the `a=` lines of `section` (a piece of an SDP body made of whole
    /// lines); other lines are skipped.
    pub fn new(section: &'a [u8]) -> Self {
        Attributes { rest: section }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        while !self.rest.is_empty() {
            let len = match memchr::memchr(b'\n', self.rest) {
                Some(i) => i + 1,
                None => self.rest.len(),
            };
            let (line, rest) = self.rest.split_at(len.min(self.rest.len()));
            self.rest = rest;
            if let [b'a', b'=', content @ ..] = strip_eol(line) {
                let (name, value) = split_attribute(content);
                return Some(Attribute { name, value, line });
            }
        }
        None
    }
}

impl FusedIterator for Attributes<'_> {}

// ------------------------------------------------------------------------------------------
// Sdp
// ------------------------------------------------------------------------------------------

impl<'a> Sdp<'a> {
    /// Parse and index an SDP body. Offsets in errors are relative to the start of `body`.
    ///
    /// Lines end with CRLF or LF (the last one may have none; trailing empty lines are
    /// ignored) and read `x=value` with a lowercase type letter and no whitespace around
    /// `=` ([`ErrorKind::SdpBadLine`]; an empty line before the end is one too). The body
    /// starts with `v=0` ([`ErrorKind::SdpBadVersion`]), then exactly one `o=` and one `s=`
    /// ([`ErrorKind::SdpMissingLine`] when absent, [`ErrorKind::SdpBadOrder`] when repeated
    /// or misplaced), then the other session lines in any order, with at least one `t=`
    /// before the first `m=`. Unknown line types are ignored. `o=`, `c=`, `m=` and the
    /// attributes `rtpmap`, `fmtp`, `rtcp`, `rtcp-mux`, `ptime` and the four directions
    /// are validated (`SdpBadOrigin`, `SdpBadConnection`, `SdpBadMedia`,
    /// `SdpBadAttribute`); two directions or two `a=rtcp` in one section are
    /// `SdpBadOrder`. More than [`MAX_MEDIA`] media sections is `SdpTooMany`, and a media
    /// section without a `c=` of its own or at session level is `SdpNoConnection`.
    #[inline]
    pub fn parse(body: &'a [u8]) -> Result<Sdp<'a>, Error> {
        // The media array is large (several KiB): fill one value in place rather than
        // building the parts in locals and moving them together at the end.
        let mut sdp = Sdp {
            body,
            session: body,
            origin: Origin {
                username: &[],
                session_id: &[],
                session_version: &[],
                net_type: &[],
                addr_type: AddrType::Other,
                address: &[],
                line: &[],
            },
            session_name: &[],
            connection: None,
            direction: None,
            media: ArrayVec::new_const(),
        };
        sdp.index()?;
        Ok(sdp)
    }

    /// The single pass behind [`Sdp::parse`]: fills `self` from `self.body`.
    fn index(&mut self) -> Result<(), Error> {
        let body = self.body;
        let mut lines = Lines { body, pos: 0 };

        // v=0
        match lines.next() {
            Ok(Some(l)) if l.typ == b'v' && trim_end_ws(l.value) == b"0" => {}
            Ok(Some(l)) => return Err(err(ErrorKind::SdpBadVersion, b'v', l.start)),
            _ => return Err(err(ErrorKind::SdpBadVersion, b'v', 0)),
        }

        // o=
        self.origin = match lines.next()? {
            Some(l) if l.typ == b'o' => {
                parse_origin(l.value).map_err(|bad| bad_at(ErrorKind::SdpBadOrigin, b'o', body, bad))?
            }
            Some(l) if l.typ == b'v' => return Err(err(ErrorKind::SdpBadOrder, b'v', l.start)),
            Some(l) => return Err(err(ErrorKind::SdpMissingLine, b'o', l.start)),
            None => return Err(err(ErrorKind::SdpMissingLine, b'o', body.len())),
        };

        // s=
        self.session_name = match lines.next()? {
            Some(l) if l.typ == b's' => l.value,
            Some(l) if matches!(l.typ, b'v' | b'o') => return Err(err(ErrorKind::SdpBadOrder, l.typ, l.start)),
            Some(l) => return Err(err(ErrorKind::SdpMissingLine, b's', l.start)),
            None => return Err(err(ErrorKind::SdpMissingLine, b's', body.len())),
        };

        // The rest of the session section, in any order, up to the first m=.
        let mut seen_t = false;
        let mut next_m = None;
        while let Some(l) = lines.next()? {
            match l.typ {
                b'v' | b'o' | b's' => return Err(err(ErrorKind::SdpBadOrder, l.typ, l.start)),
                b't' => {
                    parse_timing(l.value).map_err(|bad| bad_at(ErrorKind::SdpBadLine, b't', body, bad))?;
                    seen_t = true;
                }
                b'c' => {
                    if self.connection.is_some() {
                        return Err(err(ErrorKind::SdpBadOrder, b'c', l.start));
                    }
                    self.connection = Some(connection_line(body, l.value)?);
                }
                b'a' => session_attribute(body, &l, &mut self.direction)?,
                b'm' => {
                    next_m = Some(l);
                    break;
                }
                _ => {}
            }
        }
        let session_end = next_m.map_or(body.len(), |l| l.start);
        if !seen_t {
            return Err(err(ErrorKind::SdpMissingLine, b't', session_end));
        }
        self.session = body.get(..session_end).unwrap_or_default();

        // Media sections.
        while let Some(ml) = next_m.take() {
            let m = parse_media(ml.value).map_err(|bad| bad_at(ErrorKind::SdpBadMedia, b'm', body, bad))?;
            if self.media.try_push(m).is_err() {
                return Err(err(ErrorKind::SdpTooMany, b'm', ml.start));
            }
            let Some(m) = self.media.last_mut() else {
                break;
            };
            let mut last_end = ml.end;
            while let Some(l) = lines.next()? {
                match l.typ {
                    b'm' => {
                        next_m = Some(l);
                        break;
                    }
                    b'v' | b'o' | b's' | b't' => return Err(err(ErrorKind::SdpBadOrder, l.typ, l.start)),
                    b'c' => {
                        let c = connection_line(body, l.value)?;
                        if m.connection.is_none() {
                            m.connection = Some(c);
                        }
                    }
                    b'a' => media_attribute(body, &l, m)?,
                    _ => {}
                }
                last_end = l.end;
            }
            m.section = body.get(ml.start..last_end).unwrap_or_default();
            if m.connection.is_none() && self.connection.is_none() {
                return Err(err(ErrorKind::SdpNoConnection, b'm', ml.start));
            }
        }
        Ok(())
    }

    /// The whole body that was parsed.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The session section: from `v=` up to the first `m=` line (or the end of the body).
    pub fn session_section(&self) -> &'a [u8] {
        self.session
    }

    /// The `o=` line.
    pub fn origin(&self) -> &Origin<'a> {
        &self.origin
    }

    /// The `s=` value (may be a single space, or even empty).
    pub fn session_name(&self) -> &'a [u8] {
        self.session_name
    }

    /// The session-level `c=` line.
    pub fn connection(&self) -> Option<&Connection<'a>> {
        self.connection.as_ref()
    }

    /// The session-level direction attribute.
    pub fn direction(&self) -> Option<Direction> {
        self.direction
    }

    /// The media sections, in order.
    pub fn media(&self) -> &[Media<'a>] {
        &self.media
    }

    /// The session-level `a=` lines, in order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.session)
    }

    /// The connection that applies to `m`: its own first `c=`, else the session's.
    pub fn media_connection<'s>(&'s self, m: &'s Media<'a>) -> Option<&'s Connection<'a>> {
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction that applies to `m`: its own, else the session's, else
    /// [`Direction::SendRecv`] (RFC 4566 §6). A hold address (`c=0.0.0.0`) is not taken
    /// into account; see [`Connection::is_hold`].
    pub fn media_direction(&self, m: &Media<'a>) -> Direction {
        m.direction.or(self.direction).unwrap_or(Direction::SendRecv)
    }
}

// ------------------------------------------------------------------------------------------
// Lines
// ------------------------------------------------------------------------------------------

/// One `x=value` line.
#[derive(Clone, Copy)]
struct Line<'a> {
    /// Offset of the type letter in the body.
    start: usize,
    /// Offset just past the line ending.
    end: usize,
    /// The type letter.
    typ: u8,
    /// After `=`, without the line ending.
    value: &'a [u8],
}

/// Splits a body into lines, checking `x=` and ending at trailing empty lines.
struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    // Inlined: returning the large `Result<Option<Line>>` through memory stalls on
    // store-to-load forwarding.
    #[inline(always)]
    fn next(&mut self) -> Result<Option<Line<'a>>, Error> {
        let start = self.pos;
        let rest = match self.body.get(start..) {
            Some(r) if !r.is_empty() => r,
            _ => return Ok(None),
        };
        let len = match memchr::memchr(b'\n', rest) {
            Some(i) => i + 1,
            None => rest.len(),
        };
        let content = strip_eol(rest.get(..len).unwrap_or_default());
        self.pos = start + len;
        match content {
            [typ @ b'a'..=b'z', b'=', value @ ..] => {
                // No whitespace after '=' on the lines whose grammar starts with a field.
                if matches!(typ, b'v' | b'o' | b't' | b'c' | b'm' | b'a') && matches!(value.first(), Some(b' ' | b'\t'))
                {
                    return Err(err(ErrorKind::SdpBadLine, *typ, start));
                }
                Ok(Some(Line { start, end: start + len, typ: *typ, value }))
            }
            [] if rest.iter().all(|&b| b == b'\r' || b == b'\n') => {
                // Trailing empty lines end the body.
                self.pos = self.body.len();
                Ok(None)
            }
            [typ, ..] if typ.is_ascii_lowercase() => Err(err(ErrorKind::SdpBadLine, *typ, start)),
            _ => Err(err(ErrorKind::SdpBadLine, 0, start)),
        }
    }
}

/// `line` without its CRLF or LF (or a lone CR at the very end).
#[inline]
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = match line {
        [head @ .., b'\n'] => head,
        _ => line,
    };
    match line {
        [head @ .., b'\r'] => head,
        _ => line,
    }
}

// ------------------------------------------------------------------------------------------
// Field helpers
// ------------------------------------------------------------------------------------------

#[cold]
#[inline(never)]
fn err(kind: ErrorKind, typ: u8, offset: usize) -> Error {
    Error::new(kind, Place::Sdp(typ), offset)
}

/// An error at the position of the sub-slice `bad` of `body`.
#[cold]
#[inline(never)]
fn bad_at(kind: ErrorKind, typ: u8, body: &[u8], bad: &[u8]) -> Error {
    err(kind, typ, offset_in(body, bad).min(body.len()))
}

/// RFC 4566 `token-char`: `%x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E`.
#[inline]
fn is_token_char(b: u8) -> bool {
    TOKEN_CHARS[b as usize]
}

static TOKEN_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E);
        b += 1;
    }
    t
};

/// Is `s` a non-empty RFC 4566 token?
#[inline]
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & is_token_char(b))
}

/// Is `s` a non-empty run of visible characters (RFC 4566 `non-ws-string`)?
#[inline]
fn is_non_ws(s: &[u8]) -> bool {
    // A branch-free fold vectorizes; `all` would stop at each byte.
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & (b > 0x20) & (b != 0x7f))
}

#[inline]
fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & b.is_ascii_digit())
}

/// A decimal number of at most `max` spanning all of `s`.
#[inline]
fn number(s: &[u8], max: u64) -> Option<u64> {
    chars::decimal(s, max).ok()
}

/// `s` without trailing SP and HTAB.
#[inline]
fn trim_end_ws(s: &[u8]) -> &[u8] {
    let mut s = s;
    while let [head @ .., b' ' | b'\t'] = s {
        s = head;
    }
    s
}

/// The empty slice at the end of `s` (an error position "after the last field").
#[inline]
fn end_of(s: &[u8]) -> &[u8] {
    s.get(s.len()..).unwrap_or_default()
}

/// Split at the first `sep`: the part before and, if `sep` was found, the part after.
#[inline]
fn split_once(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    // Fields are short: a plain loop beats a memchr call here.
    match s.iter().position(|&b| b == sep) {
        Some(i) => (s.get(..i).unwrap_or_default(), s.get(i + 1..)),
        None => (s, None),
    }
}

/// Scan `s` up to the first `sep` in one pass: the part before it, the part after it (if
/// `sep` was found), and whether every byte before it passes `ok`.
#[inline(always)]
fn scan(s: &[u8], sep: u8, ok: impl Fn(u8) -> bool) -> (&[u8], Option<&[u8]>, bool) {
    let mut good = true;
    for (i, &b) in s.iter().enumerate() {
        if b == sep {
            let (before, after) = s.split_at(i);
            return (before, after.get(1..), good);
        }
        good &= ok(b);
    }
    (s, None, good)
}

/// Take the next space-separated field of `rest`, which must be non-empty and made of bytes
/// passing `ok`; `Err` carries the error position (inside `whole`).
#[inline(always)]
fn field<'a>(rest: &mut Option<&'a [u8]>, whole: &'a [u8], ok: impl Fn(u8) -> bool) -> Result<&'a [u8], &'a [u8]> {
    let s = rest.take().ok_or_else(|| end_of(whole))?;
    let (f, r, good) = scan(s, b' ', ok);
    *rest = r;
    if good && !f.is_empty() { Ok(f) } else { Err(f) }
}

/// A visible character (RFC 4566 `non-ws-string` byte).
#[inline(always)]
fn is_visible(b: u8) -> bool {
    b > 0x20 && b != 0x7f
}

/// `name[:value]` of an attribute line's content (after `a=`).
#[inline]
fn split_attribute(content: &[u8]) -> (&[u8], Option<&[u8]>) {
    match split_once(content, b':') {
        (name, None) => (trim_end_ws(name), None),
        other => other,
    }
}

/// A dotted-quad IPv4 address (1–3 digits per octet; leading zeros are read as decimal).
#[inline(always)]
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    let mut value = 0u16;
    let mut digits = 0;
    for &b in s {
        match b {
            b'0'..=b'9' if digits < 3 => {
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
            }
            b'.' if digits > 0 => {
                *octets.get_mut(n)? = u8::try_from(value).ok()?;
                n += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if n != 3 || digits == 0 {
        return None;
    }
    *octets.get_mut(3)? = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// An IPv6 literal (no brackets, no zone).
fn parse_ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    core::str::from_utf8(s).ok()?.parse().ok()
}

/// A fully qualified domain name: letters, digits, `-` and `.`, with at least one letter.
fn is_fqdn(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| chars::is(b, chars::HOST)) && s.iter().any(u8::is_ascii_alphabetic)
}

/// Parse `nettype SP addrtype SP address[/suffix]` into its parts; `Err` is the position of
/// the bad field.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn parse_conn_fields(v: &[u8]) -> Result<(&[u8], AddrType, &[u8], Option<&[u8]>), &[u8]> {
    let v = trim_end_ws(v);
    let mut rest = Some(v);
    let net = field(&mut rest, v, is_token_char)?;
    let at = field(&mut rest, v, is_token_char)?;
    let full = rest.ok_or_else(|| end_of(v))?;
    if !is_non_ws(full) {
        return Err(full);
    }
    let addr_type = AddrType::of(net, at);
    let (address, suffix) = match addr_type {
        AddrType::Other => (full, None),
        AddrType::Ip4 | AddrType::Ip6 => split_once(full, b'/'),
    };
    match addr_type {
        AddrType::Ip4 => {
            // A host name needs a letter, so 999.1.1.1 is not one.
            if parse_ipv4(address).is_none() && !is_fqdn(address) {
                return Err(address);
            }
            if let Some(suffix) = suffix {
                // ttl[/count]
                let (ttl, count) = split_once(suffix, b'/');
                let ok =
                    number(ttl, 255).is_some() && count.is_none_or(|c| matches!(number(c, u32::MAX as u64), Some(1..)));
                if !ok {
                    return Err(suffix);
                }
            }
        }
        AddrType::Ip6 => {
            let ok = if address.contains(&b':') { parse_ipv6(address).is_some() } else { is_fqdn(address) };
            if !ok {
                return Err(address);
            }
            if let Some(suffix) = suffix {
                // count
                if !matches!(number(suffix, u32::MAX as u64), Some(1..)) {
                    return Err(suffix);
                }
            }
        }
        AddrType::Other => {}
    }
    Ok((net, addr_type, address, suffix))
}

// ------------------------------------------------------------------------------------------
// Line parsers
// ------------------------------------------------------------------------------------------

/// `o=` value.
#[inline(always)]
fn parse_origin(line: &[u8]) -> Result<Origin<'_>, &[u8]> {
    let v = trim_end_ws(line);
    let mut rest = Some(v);
    let username = field(&mut rest, v, is_visible)?;
    let session_id = field(&mut rest, v, |b| b.is_ascii_digit())?;
    let session_version = field(&mut rest, v, |b| b.is_ascii_digit())?;
    let net_type = field(&mut rest, v, is_token_char)?;
    let addr_type = field(&mut rest, v, is_token_char)?;
    let address = rest.ok_or_else(|| end_of(v))?;
    if !is_non_ws(address) {
        return Err(address);
    }
    Ok(Origin {
        username,
        session_id,
        session_version,
        net_type,
        addr_type: AddrType::of(net_type, addr_type),
        address,
        line,
    })
}

/// `t=` value: `start-time SP stop-time`.
fn parse_timing(line: &[u8]) -> Result<(), &[u8]> {
    let v = trim_end_ws(line);
    let mut rest = Some(v);
    field(&mut rest, v, |b| b.is_ascii_digit())?;
    let stop = rest.ok_or_else(|| end_of(v))?;
    if !is_digits(stop) {
        return Err(stop);
    }
    Ok(())
}

/// `c=` value, with errors located in `body`.
#[inline(always)]
fn connection_line<'a>(body: &[u8], line: &'a [u8]) -> Result<Connection<'a>, Error> {
    match parse_conn_fields(line) {
        Ok((net_type, addr_type, address, suffix)) => Ok(Connection { net_type, addr_type, address, suffix, line }),
        Err(bad) => Err(bad_at(ErrorKind::SdpBadConnection, b'c', body, bad)),
    }
}

/// `m=` value: `media SP port[/count] SP proto 1*(SP fmt)`.
#[inline(always)]
fn parse_media(line: &[u8]) -> Result<Media<'_>, &[u8]> {
    let v = trim_end_ws(line);
    let mut rest = Some(v);
    let media = field(&mut rest, v, is_token_char)?;
    let port_field = field(&mut rest, v, |b| b.is_ascii_digit() || b == b'/')?;
    let proto = field(&mut rest, v, |b| b == b'/' || is_token_char(b))?;
    let formats = rest.ok_or_else(|| end_of(v))?;
    let (port_bytes, count) = split_once(port_field, b'/');
    let port = number(port_bytes, u16::MAX as u64).ok_or(port_bytes)? as u16;
    let port_count = match count {
        None => None,
        Some(c) => match number(c, u16::MAX as u64) {
            Some(n @ 1..) => Some(n as u16),
            _ => return Err(c),
        },
    };
    // proto = token *("/" token): no empty part.
    if proto.first() == Some(&b'/') || proto.last() == Some(&b'/') || proto.windows(2).any(|w| w == b"//") {
        return Err(proto);
    }
    // fmt *(SP fmt): tokens separated by single spaces.
    let mut good = true;
    let mut after_space = true;
    for &b in formats {
        if b == b' ' {
            good &= !after_space;
            after_space = true;
        } else {
            good &= is_token_char(b);
            after_space = false;
        }
    }
    if !good || after_space {
        return Err(formats);
    }
    Ok(Media {
        media,
        port,
        port_bytes,
        port_count,
        proto,
        formats,
        connection: None,
        rtcp: None,
        rtcp_mux: false,
        direction: None,
        ptime: None,
        line,
        section: &[],
    })
}

/// `rtpmap` value: `pt SP encoding/clock[/params]`.
#[inline(always)]
fn parse_rtpmap<'a>(value: &'a [u8], line: &'a [u8]) -> Option<RtpMap<'a>> {
    let (pt, rest) = split_once(trim_end_ws(value), b' ');
    let payload = number(pt, 127)? as u8;
    let (encoding, rest, good) = scan(rest?, b'/', is_token_char);
    if !good || encoding.is_empty() {
        return None;
    }
    let (clock_rate, channels) = match rest {
        // `a=rtpmap:31 LPC` (RFC 4475's torture messages): tolerated, rate unknown.
        None => (0, None),
        Some(rest) => {
            let (clock, channels) = split_once(rest, b'/');
            (number(clock, u32::MAX as u64)? as u32, channels)
        }
    };
    if let Some(c) = channels {
        if !is_token(c) {
            return None;
        }
    }
    Some(RtpMap { payload, encoding, clock_rate, channels, line })
}

/// `fmtp` value: `format SP params`.
fn parse_fmtp<'a>(value: &'a [u8], line: &'a [u8]) -> Option<Fmtp<'a>> {
    let (format, params, good) = scan(value, b' ', is_token_char);
    let params = trim_end_ws(params?);
    if !good || format.is_empty() || params.is_empty() {
        return None;
    }
    Some(Fmtp { format, params, line })
}

/// `rtcp` value: `port [nettype SP addrtype SP address]`; `Err` is the bad position.
fn parse_rtcp<'a>(value: &'a [u8], line: &'a [u8]) -> Result<Rtcp<'a>, &'a [u8]> {
    let (port_bytes, rest) = split_once(trim_end_ws(value), b' ');
    let port = number(port_bytes, u16::MAX as u64).ok_or(port_bytes)? as u16;
    let connection = match rest {
        None => None,
        Some(r) => {
            let (net, at, addr, _suffix) = parse_conn_fields(r)?;
            Some((net, at, addr))
        }
    };
    Ok(Rtcp { port, port_bytes, connection, line })
}

/// Split an `a=` line into name and value, checking the name.
#[inline]
fn attribute_parts<'a>(body: &[u8], l: &Line<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), Error> {
    let (name, value, good) = scan(l.value, b':', is_token_char);
    // Same split as `split_attribute`, checking the name on the way.
    let (name, good) = match value {
        Some(_) => (name, good),
        None if good => (name, true),
        None => {
            let name = trim_end_ws(name);
            (name, is_token(name))
        }
    };
    if !good || name.is_empty() {
        return Err(bad_at(ErrorKind::SdpBadAttribute, b'a', body, l.value));
    }
    Ok((name, value))
}

/// Record a direction attribute; a second one in the same section is an error.
#[inline]
fn set_direction(
    slot: &mut Option<Direction>,
    d: Direction,
    value: Option<&[u8]>,
    body: &[u8],
    l: &Line<'_>,
) -> Result<(), Error> {
    if value.is_some() {
        return Err(bad_at(ErrorKind::SdpBadAttribute, b'a', body, l.value));
    }
    if slot.is_some() {
        return Err(err(ErrorKind::SdpBadOrder, b'a', l.start));
    }
    *slot = Some(d);
    Ok(())
}

/// A session-level `a=` line.
fn session_attribute(body: &[u8], l: &Line<'_>, direction: &mut Option<Direction>) -> Result<(), Error> {
    let (name, value) = attribute_parts(body, l)?;
    if let Some(d) = Direction::from_name(name) {
        set_direction(direction, d, value, body, l)?;
    }
    Ok(())
}

/// A media-level `a=` line.
#[inline(always)]
fn media_attribute<'a>(body: &'a [u8], l: &Line<'a>, m: &mut Media<'a>) -> Result<(), Error> {
    let (name, value) = attribute_parts(body, l)?;
    let full = body.get(l.start..l.end).unwrap_or_default();
    let bad = |at: &[u8]| bad_at(ErrorKind::SdpBadAttribute, b'a', body, at);
    match name {
        b"rtpmap" => {
            value.and_then(|v| parse_rtpmap(v, full)).ok_or_else(|| bad(l.value))?;
        }
        b"fmtp" => {
            value.and_then(|v| parse_fmtp(v, full)).ok_or_else(|| bad(l.value))?;
        }
        b"ptime" => {
            let p = value.and_then(|v| number(trim_end_ws(v), u32::MAX as u64)).ok_or_else(|| bad(l.value))?;
            if m.ptime.is_none() {
                m.ptime = Some(p as u32);
            }
        }
        b"rtcp" => {
            let rtcp = parse_rtcp(value.ok_or_else(|| bad(l.value))?, full).map_err(bad)?;
            if m.rtcp.is_some() {
                return Err(err(ErrorKind::SdpBadOrder, b'a', l.start));
            }
            m.rtcp = Some(rtcp);
        }
        b"rtcp-mux" => {
            if value.is_some() {
                return Err(bad(l.value));
            }
            m.rtcp_mux = true;
        }
        _ => {
            if let Some(d) = Direction::from_name(name) {
                set_direction(&mut m.direction, d, value, body, l)?;
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const OFFER: &str = "v=0\r\n\
        o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.101\r\n\
        t=0 0\r\n\
        m=audio 49172 RTP/AVP 0\r\n\
        a=rtpmap:0 PCMU/8000\r\n";

    fn parse(s: &str) -> Sdp<'_> {
        match Sdp::parse(s.as_bytes()) {
            Ok(sdp) => sdp,
            Err(e) => panic!("{e}\n{s}"),
        }
    }

    fn kind(s: &str) -> ErrorKind {
        match Sdp::parse(s.as_bytes()) {
            Ok(_) => panic!("parsed but should not:\n{s}"),
            Err(e) => e.kind(),
        }
    }

    fn error(s: &str) -> Error {
        Sdp::parse(s.as_bytes()).expect_err(s)
    }

    /// Build an SDP from `lines` with CRLF endings.
    fn crlf(lines: &[&str]) -> String {
        let mut s = String::new();
        for l in lines {
            s.push_str(l);
            s.push_str("\r\n");
        }
        s
    }

    #[test]
    fn rfc3665_offer() {
        let sdp = parse(OFFER);
        let body = OFFER.as_bytes();
        assert_eq!(sdp.body(), body);
        let o = sdp.origin();
        assert_eq!(o.username, b"alice");
        assert_eq!(o.session_id, b"2890844526");
        assert_eq!(o.session_version, b"2890844526");
        assert_eq!(o.net_type, b"IN");
        assert_eq!(o.addr_type, AddrType::Ip4);
        assert_eq!(o.address, b"client.atlanta.example.com");
        assert_eq!(o.line, b"alice 2890844526 2890844526 IN IP4 client.atlanta.example.com");
        assert_eq!(sdp.session_name(), b"-");
        let c = sdp.connection().unwrap();
        assert_eq!(c.net_type, b"IN");
        assert_eq!(c.addr_type, AddrType::Ip4);
        assert_eq!(c.address, b"192.0.2.101");
        assert_eq!(c.suffix, None);
        assert_eq!(c.line, b"IN IP4 192.0.2.101");
        assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 101))));
        assert!(!c.is_hold());
        assert_eq!(offset_in(body, c.address), OFFER.find("192.0.2.101").unwrap());
        assert_eq!(sdp.direction(), None);
        assert_eq!(sdp.attributes().count(), 0);

        assert_eq!(sdp.media().len(), 1);
        let m = &sdp.media()[0];
        assert_eq!(m.media, b"audio");
        assert_eq!(m.port, 49172);
        assert_eq!(m.port_bytes, b"49172");
        let at = OFFER.find("49172").unwrap();
        assert_eq!(offset_in(body, m.port_bytes), at);
        assert_eq!(&body[at..at + m.port_bytes.len()], b"49172");
        assert_eq!(m.port_count, None);
        assert_eq!(m.proto, b"RTP/AVP");
        assert_eq!(m.formats, b"0");
        assert_eq!(m.formats().collect::<Vec<_>>(), [b"0"]);
        assert!(m.is_rtp());
        assert_eq!(m.connection, None);
        assert_eq!(m.rtcp, None);
        assert!(!m.rtcp_mux);
        assert_eq!(m.direction, None);
        assert_eq!(m.ptime, None);
        assert_eq!(m.line, b"audio 49172 RTP/AVP 0");
        assert_eq!(m.section, b"m=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n");
        assert_eq!(offset_in(body, m.section), OFFER.find("m=").unwrap());
        assert_eq!(sdp.media_connection(m), Some(c));
        assert_eq!(sdp.media_direction(m), Direction::SendRecv);
        let maps: Vec<_> = m.rtpmaps().collect();
        assert_eq!(
            maps,
            [RtpMap {
                payload: 0,
                encoding: b"PCMU",
                clock_rate: 8000,
                channels: None,
                line: b"a=rtpmap:0 PCMU/8000\r\n"
            }]
        );
        assert_eq!(m.rtpmap(0).unwrap().encoding, b"PCMU");
        assert_eq!(m.rtpmap(8), None);
        assert_eq!(m.fmtps().count(), 0);
        assert_eq!(sdp.session_section(), &body[..OFFER.find("m=").unwrap()]);
    }

    #[test]
    fn rfc5118_ipv6_in_sdp() {
        let s = crlf(&[
            "v=0",
            "o=assistant 971731711378798081 0 IN IP6 2001:db8::20",
            "s=Live video feed for today's meeting",
            "c=IN IP6 2001:db8::20",
            "t=3338481189 3370017201",
            "m=audio 6000 RTP/AVP 2",
            "a=rtpmap:2 G726-32/8000",
            "m=video 6024 RTP/AVP 107",
            "a=rtpmap:107 H263-1998/90000",
        ]);
        let sdp = parse(&s);
        assert_eq!(sdp.origin().addr_type, AddrType::Ip6);
        assert_eq!(sdp.origin().address, b"2001:db8::20");
        assert_eq!(sdp.origin().session_id, b"971731711378798081");
        assert_eq!(sdp.session_name(), b"Live video feed for today's meeting");
        let c = sdp.connection().unwrap();
        assert_eq!(c.addr_type, AddrType::Ip6);
        assert_eq!(c.ip(), Some("2001:db8::20".parse().unwrap()));
        assert_eq!(sdp.media().len(), 2);
        let (a, v) = (&sdp.media()[0], &sdp.media()[1]);
        assert_eq!((a.media, a.port, a.formats), (&b"audio"[..], 6000, &b"2"[..]));
        assert_eq!((v.media, v.port, v.formats), (&b"video"[..], 6024, &b"107"[..]));
        assert_eq!(a.rtpmap(2).unwrap().encoding, b"G726-32");
        let r = v.rtpmap(107).unwrap();
        assert_eq!((r.encoding, r.clock_rate), (&b"H263-1998"[..], 90000));
        assert_eq!(sdp.media_connection(v), Some(c));
        assert_eq!(a.section, b"m=audio 6000 RTP/AVP 2\r\na=rtpmap:2 G726-32/8000\r\n");
    }

    #[test]
    fn rfc5118_mult_ip_in_sdp() {
        let s = crlf(&[
            "v=0",
            "o=bob 280744730 28977631 IN IP4 host.example.com",
            "s=",
            "t=0 0",
            "m=audio 22334 RTP/AVP 0",
            "c=IN IP4 192.0.2.1",
            "m=video 6024 RTP/AVP 107",
            "c=IN IP6 2001:db8::1",
            "a=rtpmap:107 H263-1998/90000",
        ]);
        let sdp = parse(&s);
        assert_eq!(sdp.session_name(), b"");
        assert_eq!(sdp.connection(), None);
        let (a, v) = (&sdp.media()[0], &sdp.media()[1]);
        let ca = a.connection.unwrap();
        assert_eq!((ca.addr_type, ca.address), (AddrType::Ip4, &b"192.0.2.1"[..]));
        assert_eq!(sdp.media_connection(a), Some(&ca));
        let cv = sdp.media_connection(v).unwrap();
        assert_eq!((cv.addr_type, cv.address), (AddrType::Ip6, &b"2001:db8::1"[..]));
        assert_eq!(cv.ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(offset_in(s.as_bytes(), cv.address), s.find("2001:db8::1").unwrap());
        assert_eq!(a.section, b"m=audio 22334 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\n");
    }

    #[test]
    fn ipv4_mapped_ipv6() {
        let s = crlf(&[
            "v=0",
            "o=assistant 971731711378798081 0 IN IP6 ::ffff:192.0.2.2",
            "s=Call me soon, please!",
            "c=IN IP6 ::ffff:192.0.2.2",
            "t=3338481189 3370017201",
            "m=audio 6000 RTP/AVP 2",
            "a=rtpmap:2 G726-32/8000",
            "m=video 6024 RTP/AVP 107",
            "a=rtpmap:107 H263-1998/90000",
        ]);
        let sdp = parse(&s);
        let c = sdp.connection().unwrap();
        assert_eq!(c.address, b"::ffff:192.0.2.2");
        assert_eq!(c.ip(), Some(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 2).to_ipv6_mapped())));
        assert!(!c.is_hold());
    }

    #[test]
    fn hold_and_directions() {
        // c=0.0.0.0 plus a=sendonly in the media section.
        let s = OFFER.replace("192.0.2.101", "0.0.0.0") + "a=sendonly\r\n";
        let sdp = parse(&s);
        assert!(sdp.connection().unwrap().is_hold());
        let m = &sdp.media()[0];
        assert_eq!(m.direction, Some(Direction::SendOnly));
        assert_eq!(sdp.media_direction(m), Direction::SendOnly);
        assert!(sdp.media_connection(m).unwrap().is_hold());

        // a=inactive.
        let s = OFFER.to_string() + "a=inactive\r\n";
        let sdp = parse(&s);
        assert!(!sdp.connection().unwrap().is_hold());
        assert_eq!(sdp.media_direction(&sdp.media()[0]), Direction::Inactive);

        // IPv6 hold address.
        let s = OFFER.replace("IN IP4 192.0.2.101", "IN IP6 ::");
        assert!(parse(&s).connection().unwrap().is_hold());

        // Session-level direction is inherited; media-level overrides it.
        let s = crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "a=recvonly",
            "m=audio 4000 RTP/AVP 0",
            "m=audio 4002 RTP/AVP 0",
            "a=sendrecv",
        ]);
        let sdp = parse(&s);
        assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
        assert_eq!(sdp.media()[0].direction, None);
        assert_eq!(sdp.media_direction(&sdp.media()[0]), Direction::RecvOnly);
        assert_eq!(sdp.media_direction(&sdp.media()[1]), Direction::SendRecv);
        let attrs: Vec<_> = sdp.attributes().collect();
        assert_eq!(attrs.len(), 1);
        assert_eq!((attrs[0].name, attrs[0].value), (&b"recvonly"[..], None));
        assert_eq!(Direction::from_name(Direction::Inactive.name().as_bytes()), Some(Direction::Inactive));
    }

    #[test]
    fn rtcp_mux_ptime_fmtp_channels() {
        let s = crlf(&[
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 101",
            "c=IN IP4 203.0.113.7",
            "a=rtcp:9 IN IP4 203.0.113.8",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=ptime:30",
            "m=video 49170/2 RTP/AVP 31",
            "c=IN IP6 2001:db8::7",
            "a=rtcp:53020",
            "m=audio 5000 RTP/AVP 0",
            "c=IN IP4 203.0.113.9",
            "a=rtcp:5001 IN IP6 2001:db8::9",
        ]);
        let body = s.as_bytes();
        let sdp = parse(&s);
        let [a, v, a2] = sdp.media() else { panic!("three media") };

        assert_eq!(a.proto, b"UDP/TLS/RTP/SAVPF");
        assert!(a.is_rtp());
        assert_eq!(a.formats().collect::<Vec<_>>(), [&b"111"[..], b"0", b"101"]);
        assert!(a.rtcp_mux);
        assert_eq!(a.ptime, Some(20));
        let rtcp = a.rtcp.unwrap();
        assert_eq!(rtcp.port, 9);
        assert_eq!(rtcp.connection, Some((&b"IN"[..], AddrType::Ip4, &b"203.0.113.8"[..])));
        assert_eq!(rtcp.line, b"a=rtcp:9 IN IP4 203.0.113.8\r\n");
        assert_eq!(offset_in(body, rtcp.port_bytes), s.find("a=rtcp:9").unwrap() + 7);
        assert_eq!(offset_in(body, rtcp.connection.unwrap().2), s.find("203.0.113.8").unwrap());

        let maps: Vec<_> = a.rtpmaps().collect();
        assert_eq!(maps.len(), 3);
        assert_eq!((maps[0].payload, maps[0].encoding, maps[0].clock_rate), (111, &b"opus"[..], 48000));
        assert_eq!(maps[0].channels, Some(&b"2"[..]));
        assert_eq!(maps[0].line, b"a=rtpmap:111 opus/48000/2\r\n");
        assert_eq!(maps[1].channels, None);
        assert_eq!(maps[2].encoding, b"telephone-event");
        let fmtps: Vec<_> = a.fmtps().collect();
        assert_eq!(fmtps.len(), 2);
        assert_eq!((fmtps[0].format, fmtps[0].params), (&b"111"[..], &b"minptime=10;useinbandfec=1"[..]));
        let te = a.fmtp(b"101").unwrap();
        assert_eq!(te.params, b"0-15");
        assert_eq!(te.line, b"a=fmtp:101 0-15\r\n");

        assert_eq!(v.port, 49170);
        assert_eq!(v.port_bytes, b"49170");
        assert_eq!(v.port_count, Some(2));
        assert!(!v.rtcp_mux);
        assert_eq!(v.ptime, None);
        let rtcp = v.rtcp.unwrap();
        assert_eq!((rtcp.port, rtcp.connection), (53020, None));
        assert_eq!(v.connection.unwrap().addr_type, AddrType::Ip6);

        let rtcp = a2.rtcp.unwrap();
        assert_eq!(rtcp.connection, Some((&b"IN"[..], AddrType::Ip6, &b"2001:db8::9"[..])));
        // The last section ends with the body.
        assert_eq!(offset_in(body, a2.section) + a2.section.len(), body.len());
    }

    #[test]
    fn connection_suffixes_and_other_types() {
        let c = |v: &'static str| {
            let s = OFFER.replace("IN IP4 192.0.2.101", v);
            Sdp::parse(s.leak().as_bytes()).map(|sdp| *sdp.connection().unwrap())
        };
        let m = c("IN IP4 224.2.1.1/127/3").unwrap();
        assert_eq!((m.address, m.suffix), (&b"224.2.1.1"[..], Some(&b"127/3"[..])));
        let m = c("IN IP6 ff15::101/3").unwrap();
        assert_eq!((m.address, m.suffix), (&b"ff15::101"[..], Some(&b"3"[..])));
        let m = c("IN IP4 media.example.com").unwrap();
        assert_eq!((m.address, m.ip()), (&b"media.example.com"[..], None));
        let m = c("in ip4 10.0.0.1").unwrap();
        assert_eq!(m.addr_type, AddrType::Ip4);
        let m = c("TN RFC2543 +1-555-0100").unwrap();
        assert_eq!((m.addr_type, m.address, m.suffix, m.ip()), (AddrType::Other, &b"+1-555-0100"[..], None, None));
        for bad in [
            "IN IP4 999.1.1.1",
            "IN IP4 1.2.3",
            "IN IP4 1.2.3.4.5",
            "IN IP4 ",
            "IN IP4",
            "IN  IP4 1.2.3.4",
            "IN IP4 1.2.3.4 x",
            "IN IP4 1.2.3.4/256",
            "IN IP4 1.2.3.4/1/0",
            "IN IP6 2001:db8::1::2",
            "IN IP6 1.2.3.4",
            "IN IP6 ::/1/2",
            "IN IP4 ex_ample.com",
        ] {
            assert_eq!(c(bad).unwrap_err().kind(), ErrorKind::SdpBadConnection, "{bad}");
        }
        let e = c("IN IP4 999.1.1.1").unwrap_err();
        assert_eq!(e.place(), Place::Sdp(b'c'));
        assert_eq!(e.offset(), OFFER.find("192.0.2.101").unwrap());
    }

    #[test]
    fn bare_lf_and_no_final_line_ending() {
        let s = OFFER.replace("\r\n", "\n");
        let sdp = parse(&s);
        let m = &sdp.media()[0];
        assert_eq!(m.section, b"m=audio 49172 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n");
        assert_eq!(m.rtpmap(0).unwrap().line, b"a=rtpmap:0 PCMU/8000\n");
        assert_eq!(sdp.connection().unwrap().address, b"192.0.2.101");

        let s = OFFER.trim_end();
        let sdp = parse(s);
        let m = &sdp.media()[0];
        assert_eq!(m.section, b"m=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000");
        assert_eq!(m.rtpmap(0).unwrap().clock_rate, 8000);
        assert_eq!(m.attributes().next().unwrap().line, b"a=rtpmap:0 PCMU/8000");

        // Trailing empty lines are ignored and are not part of the last section.
        let s = OFFER.to_string() + "\r\n\n\r\n";
        let sdp = parse(&s);
        assert_eq!(sdp.media()[0].section, b"m=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n");

        // Trailing blanks on structured lines are tolerated and not part of the values.
        let s = OFFER.replace("RTP/AVP 0\r\n", "RTP/AVP 0 \r\n").replace("192.0.2.101", "192.0.2.101\t");
        let sdp = parse(&s);
        assert_eq!(sdp.media()[0].formats, b"0");
        assert_eq!(sdp.connection().unwrap().address, b"192.0.2.101");
    }

    #[test]
    fn attributes_lines_include_line_ending() {
        let s = OFFER.to_string()
            + "a=candidate:1 1 UDP 2130706431 192.0.2.101 49172 typ host\r\na=ice-ufrag:F7gI\na=x-flag";
        let body = s.as_bytes();
        let sdp = parse(&s);
        let m = &sdp.media()[0];
        let attrs: Vec<_> = m.attributes().collect();
        assert_eq!(attrs.len(), 4);
        assert_eq!(attrs[0].name, b"rtpmap");
        assert_eq!(attrs[0].value, Some(&b"0 PCMU/8000"[..]));
        assert_eq!(attrs[1].name, b"candidate");
        assert_eq!(attrs[1].value, Some(&b"1 1 UDP 2130706431 192.0.2.101 49172 typ host"[..]));
        assert_eq!(attrs[1].line, b"a=candidate:1 1 UDP 2130706431 192.0.2.101 49172 typ host\r\n");
        assert_eq!(attrs[2].line, b"a=ice-ufrag:F7gI\n");
        assert_eq!((attrs[3].name, attrs[3].value, attrs[3].line), (&b"x-flag"[..], None, &b"a=x-flag"[..]));

        // Deleting the candidate line's bytes leaves a well-formed SDP.
        let at = offset_in(body, attrs[1].line);
        let mut cut = body[..at].to_vec();
        cut.extend_from_slice(&body[at + attrs[1].line.len()..]);
        let sdp2 = Sdp::parse(&cut).unwrap();
        assert_eq!(
            sdp2.media()[0].attributes().map(|a| a.name).collect::<Vec<_>>(),
            [&b"rtpmap"[..], b"ice-ufrag", b"x-flag"]
        );
    }

    #[test]
    fn liberal_order_and_unknown_lines() {
        let s = crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s= ",
            "a=group:BUNDLE 0",
            "t=0 0",
            "r=604800 3600 0 90000",
            "i=session info",
            "b=AS:64",
            "c=IN IP4 192.0.2.1",
            "t=3034423619 3042462419",
            "y=unknown line type",
            "m=audio 4000 RTP/AVP 0",
            "i=media title",
            "b=AS:64",
            "k=prompt",
            "c=IN IP4 192.0.2.2",
            "c=IN IP4 192.0.2.3",
        ]);
        let sdp = parse(&s);
        assert_eq!(sdp.session_name(), b" ");
        assert_eq!(sdp.attributes().next().unwrap().value, Some(&b"BUNDLE 0"[..]));
        assert_eq!(sdp.media()[0].connection.unwrap().address, b"192.0.2.2");
    }

    #[test]
    fn version_errors() {
        assert_eq!(kind(""), ErrorKind::SdpBadVersion);
        assert_eq!(kind("\r\n"), ErrorKind::SdpBadVersion);
        assert_eq!(kind(&OFFER[5..]), ErrorKind::SdpBadVersion); // no v=
        assert_eq!(kind(&OFFER.replace("v=0", "v=1")), ErrorKind::SdpBadVersion);
        assert_eq!(kind(&OFFER.replace("v=0", "v=01")), ErrorKind::SdpBadVersion);
        let e = error(&OFFER.replace("v=0", "v=1"));
        assert_eq!((e.place(), e.offset()), (Place::Sdp(b'v'), 0));
    }

    #[test]
    fn mandatory_lines_and_order() {
        let without = |prefix: &str| {
            let s: String = OFFER.split_inclusive("\r\n").filter(|l| !l.starts_with(prefix)).collect();
            error(&s)
        };
        let e = without("o=");
        assert_eq!((e.kind(), e.place(), e.offset()), (ErrorKind::SdpMissingLine, Place::Sdp(b'o'), 5));
        let e = without("s=");
        assert_eq!((e.kind(), e.place()), (ErrorKind::SdpMissingLine, Place::Sdp(b's')));
        let e = without("t=");
        assert_eq!((e.kind(), e.place()), (ErrorKind::SdpMissingLine, Place::Sdp(b't')));
        assert_eq!(e.offset(), OFFER.find("m=").unwrap() - "t=0 0\r\n".len());
        assert_eq!(kind("v=0\r\n"), ErrorKind::SdpMissingLine);
        assert_eq!(kind("v=0\r\no=- 1 1 IN IP4 h.example\r\ns=-\r\n"), ErrorKind::SdpMissingLine);
        // Repeats and misplaced session lines.
        assert_eq!(kind(&OFFER.replace("s=-\r\n", "s=-\r\ns=again\r\n")), ErrorKind::SdpBadOrder);
        assert_eq!(kind(&OFFER.replace("t=0 0\r\n", "t=0 0\r\no=- 1 1 IN IP4 h\r\n")), ErrorKind::SdpBadOrder);
        assert_eq!(kind(&(OFFER.to_string() + "t=0 0\r\n")), ErrorKind::SdpBadOrder);
        assert_eq!(kind(&OFFER.replace("t=0 0\r\n", "t=0 0\r\nc=IN IP4 192.0.2.1\r\n")), ErrorKind::SdpBadOrder);
        assert_eq!(kind(&OFFER.replace("v=0\r\n", "v=0\r\nv=0\r\n")), ErrorKind::SdpBadOrder);
        // s= before o=.
        let swapped = OFFER.replace("s=-\r\n", "").replace("v=0\r\n", "v=0\r\ns=-\r\n");
        assert_eq!(kind(&swapped), ErrorKind::SdpMissingLine);
        // Bad t= and o= lines.
        assert_eq!(kind(&OFFER.replace("t=0 0", "t=0")), ErrorKind::SdpBadLine);
        assert_eq!(kind(&OFFER.replace("t=0 0", "t=0 x")), ErrorKind::SdpBadLine);
        for bad in [
            "alice 2890844526 IN IP4 h",
            "alice x1 2 IN IP4 h",
            "alice 1 2 IN IP4 ",
            "alice  1 2 IN IP4 h",
            "alice 1 2 IN IP4 h h",
        ] {
            let s = OFFER.replace("alice 2890844526 2890844526 IN IP4 client.atlanta.example.com", bad);
            assert_eq!(kind(&s), ErrorKind::SdpBadOrigin, "{bad}");
        }
    }

    #[test]
    fn line_syntax_errors() {
        let e = error(&OFFER.replace("c=IN", "c =IN"));
        assert_eq!(
            (e.kind(), e.place(), e.offset()),
            (ErrorKind::SdpBadLine, Place::Sdp(b'c'), OFFER.find("c=").unwrap())
        );
        assert_eq!(kind(&OFFER.replace("c=IN", "c= IN")), ErrorKind::SdpBadLine);
        assert_eq!(kind(&OFFER.replace("m=audio", "m= audio")), ErrorKind::SdpBadLine);
        assert_eq!(kind(&OFFER.replace("c=IN", "C=IN")), ErrorKind::SdpBadLine);
        assert_eq!(error(&OFFER.replace("c=IN", "C=IN")).place(), Place::Sdp(0));
        assert_eq!(kind(&OFFER.replace("t=0 0\r\n", "t=0 0\r\n\r\n")), ErrorKind::SdpBadLine);
        assert_eq!(kind(&OFFER.replace("t=0 0\r\n", "t=0 0\r\nx\r\n")), ErrorKind::SdpBadLine);
        assert_eq!(kind(&(OFFER.to_string() + " \r\n")), ErrorKind::SdpBadLine);
    }

    #[test]
    fn media_errors() {
        let m = |v: &str| kind(&OFFER.replace("audio 49172 RTP/AVP 0", v));
        let e = error(&OFFER.replace("49172", "70000"));
        assert_eq!(
            (e.kind(), e.place(), e.offset()),
            (ErrorKind::SdpBadMedia, Place::Sdp(b'm'), OFFER.find("49172").unwrap())
        );
        for bad in [
            "audio 49172 RTP/AVP",
            "audio 49172 RTP/AVP ",
            "audio 49172",
            "audio 49172 RTP/AVP 0  8",
            "audio 65536 RTP/AVP 0",
            "audio -1 RTP/AVP 0",
            "audio 49172/0 RTP/AVP 0",
            "audio 49172/ RTP/AVP 0",
            "audio 49172 RTP//AVP 0",
            "audio 49172 /AVP 0",
            "au:dio 49172 RTP/AVP 0",
            "",
        ] {
            assert_eq!(m(bad), ErrorKind::SdpBadMedia, "{bad:?}");
        }
        let s = OFFER.replace("audio 49172 RTP/AVP 0", "audio 0 RTP/AVP 0");
        assert_eq!(parse(&s).media()[0].port, 0);
        let s = OFFER.replace("audio 49172 RTP/AVP 0", "audio 65535 udp t38 x");
        assert!(!parse(&s).media()[0].is_rtp());
    }

    #[test]
    fn attribute_errors() {
        let with = |a: &str| OFFER.to_string() + a + "\r\n";
        let e = error(&OFFER.replace("rtpmap:0", "rtpmap:200"));
        assert_eq!((e.kind(), e.place()), (ErrorKind::SdpBadAttribute, Place::Sdp(b'a')));
        assert_eq!(e.offset(), OFFER.find("rtpmap").unwrap());
        for bad in [
            "a=rtpmap:128 x/8000",
            "a=rtpmap:0 PCMU/",
            "a=rtpmap:0 PCMU/8k",
            "a=rtpmap:0 PCMU/8000/",
            "a=rtpmap:0",
            "a=rtpmap",
            "a=fmtp:101",
            "a=fmtp:101 ",
            "a=fmtp",
            "a=ptime:x",
            "a=ptime",
            "a=rtcp:70000",
            "a=rtcp:",
            "a=rtcp:9 IN IP4 999.0.0.1",
            "a=rtcp:9 IN IP4",
            "a=rtcp-mux:1",
            "a=sendonly:1",
            "a=",
            "a=:x",
            "a=bad name",
            "a=bad\x00name",
        ] {
            assert_eq!(kind(&with(bad)), ErrorKind::SdpBadAttribute, "{bad:?}");
        }
        // A second direction or a=rtcp in one section.
        let e = error(&with("a=sendonly\r\na=sendonly"));
        assert_eq!((e.kind(), e.place()), (ErrorKind::SdpBadOrder, Place::Sdp(b'a')));
        assert_eq!(kind(&with("a=sendonly\r\na=inactive")), ErrorKind::SdpBadOrder);
        assert_eq!(kind(&with("a=rtcp:1\r\na=rtcp:2")), ErrorKind::SdpBadOrder);
        let s = OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\na=recvonly\r\n");
        assert_eq!(kind(&s), ErrorKind::SdpBadOrder);
        // Directions may differ between sections.
        let s = OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n") + "a=sendonly\r\n";
        assert_eq!(parse(&s).direction(), Some(Direction::SendOnly));
        // Unknown attributes are free-form after the name; session-level rtpmap is not checked.
        parse(&with("a=x-anything:\x01 whatever /:"));
        parse(&OFFER.replace("t=0 0\r\n", "t=0 0\r\na=rtpmap:999\r\n"));
    }

    #[test]
    fn connection_required() {
        let s = OFFER.replace("c=IN IP4 192.0.2.101\r\n", "");
        let e = error(&s);
        assert_eq!(
            (e.kind(), e.place(), e.offset()),
            (ErrorKind::SdpNoConnection, Place::Sdp(b'm'), s.find("m=").unwrap())
        );
        // One media with and one without.
        let s = crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0",
            "c=IN IP4 192.0.2.1",
            "m=video 0 RTP/AVP 31",
        ]);
        assert_eq!(kind(&s), ErrorKind::SdpNoConnection);
        // No media at all needs no connection.
        parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n");
    }

    #[test]
    fn too_many_media() {
        let mut s = String::from(&OFFER[..OFFER.find("m=").unwrap()]);
        for i in 0..MAX_MEDIA {
            s.push_str(&std::format!("m=audio {} RTP/AVP 0\r\n", 4000 + 2 * i));
        }
        assert_eq!(parse(&s).media().len(), MAX_MEDIA);
        let at = s.len();
        s.push_str("m=audio 9 RTP/AVP 0\r\n");
        let e = error(&s);
        assert_eq!((e.kind(), e.place(), e.offset()), (ErrorKind::SdpTooMany, Place::Sdp(b'm'), at));
    }

    #[test]
    fn rfc4475_sdp01_rtpmap_without_clock_rate_is_tolerated() {
        // RFC 4475 sdp01 (and most of its other INVITEs, which are valid SIP) carry
        // "a=rtpmap:31 LPC": no clock rate, which RFC 4566 §6 requires. Tolerated.
        let s = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
                 m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
        let sdp = parse(s);
        let [a, v] = sdp.media() else { panic!("two media") };
        assert_eq!(a.formats().collect::<Vec<_>>(), [&b"0"[..], b"12"]);
        assert_eq!((a.port, v.port), (49217, 3227));
        let r = v.rtpmap(31).unwrap();
        assert_eq!((r.encoding, r.clock_rate, r.channels), (&b"LPC"[..], 0, None));
        // Still an error: an empty or non-numeric rate, an encoding that is not a token.
        for bad in ["LPC/", "LPC/x", "L:PC", "LPC/8000/"] {
            let s = s.replace("31 LPC", &std::format!("31 {bad}"));
            assert_eq!(kind(&s), ErrorKind::SdpBadAttribute, "{bad}");
        }
    }

    /// Every returned slice must lie inside the body.
    fn check_inside(sdp: &Sdp<'_>) {
        let body = sdp.body();
        let inside = |s: &[u8]| {
            let o = offset_in(body, s);
            assert!(o <= body.len() && o + s.len() <= body.len());
        };
        inside(sdp.origin().line);
        inside(sdp.session_name());
        for m in sdp.media() {
            inside(m.section);
            inside(m.port_bytes);
            inside(m.formats);
            if let Some(c) = sdp.media_connection(m) {
                inside(c.address);
                let _ = c.ip();
                let _ = c.is_hold();
            }
            for a in m.attributes() {
                inside(a.line);
            }
            let _ = m.rtpmaps().count() + m.fmtps().count() + m.formats().count();
        }
        for a in sdp.attributes() {
            inside(a.line);
        }
    }

    #[test]
    fn truncations_never_panic() {
        let full = crlf(&[
            "v=0",
            "o=- 4611731400430051336 2 IN IP6 ::1",
            "s=-",
            "c=IN IP6 2001:db8::1/2",
            "t=0 0",
            "a=sendonly",
            "m=audio 9/2 UDP/TLS/RTP/SAVPF 111 0 101",
            "c=IN IP4 224.2.1.1/127/3",
            "a=rtcp:9 IN IP4 203.0.113.8",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=inactive",
        ]);
        let body = full.as_bytes();
        let mut ok = 0;
        for n in 0..=body.len() {
            if let Ok(sdp) = Sdp::parse(&body[..n]) {
                check_inside(&sdp);
                ok += 1;
            }
        }
        // The full body and the prefixes cut inside or after the last line all parse.
        assert!(ok >= 2, "{ok}");
        check_inside(&parse(&full));
        // Every single-byte corruption either parses or errors.
        for i in 0..body.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b'/', b'=', 0xff] {
                let mut v = body.to_vec();
                v[i] = b;
                if let Ok(sdp) = Sdp::parse(&v) {
                    check_inside(&sdp);
                };
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(sdp) = Sdp::parse(&v) {
                check_inside(&sdp);
            };
        }

        #[test]
        fn arbitrary_lines_never_panic(lines in proptest::collection::vec("[a-z]=[ -~]{0,40}", 0..20)) {
            let mut s = String::from("v=0\r\no=- 1 1 IN IP4 h.example\r\ns=-\r\nt=0 0\r\n");
            for l in &lines {
                s.push_str(l);
                s.push('\n');
            }
            if let Ok(sdp) = Sdp::parse(s.as_bytes()) {
                check_inside(&sdp);
            };
        }
    }
}
