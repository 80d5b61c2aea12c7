//! Typed header values: Via, CSeq, numbers, Contact, media types, option tags, digest
//! credentials and challenges, Date, Call-ID, Retry-After, and the full-value checks that
//! `sipcheck` and a proxy's receive path run (RFC 3261 §20, §25.1).

use core::net::IpAddr;

use crate::addr::NameAddr;
use crate::chars::{self, CommaSplit, TOKEN, WORD, is, is_ws, skip_ws};
use crate::error::{Error, ErrorKind, Result};
use crate::params::{self, Params};
use crate::uri::{self, Host};

/// Via transport (RFC 3261 §20.42, RFC 7118 for WS/WSS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP
    Udp,
    /// TCP
    Tcp,
    /// TLS
    Tls,
    /// SCTP
    Sctp,
    /// TLS-SCTP
    TlsSctp,
    /// WebSocket
    Ws,
    /// Secure WebSocket
    Wss,
    /// Any other token
    Other,
}

impl Transport {
    /// Classify a transport token (case-insensitive).
    pub fn from_bytes(t: &[u8]) -> Transport {
        let eq = |s: &[u8]| t.eq_ignore_ascii_case(s);
        if eq(b"UDP") {
            Transport::Udp
        } else if eq(b"TCP") {
            Transport::Tcp
        } else if eq(b"TLS") {
            Transport::Tls
        } else if eq(b"SCTP") {
            Transport::Sctp
        } else if eq(b"TLS-SCTP") {
            Transport::TlsSctp
        } else if eq(b"WS") {
            Transport::Ws
        } else if eq(b"WSS") {
            Transport::Wss
        } else {
            Transport::Other
        }
    }

    /// Is this a reliable (stream or SCTP) transport?
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp | Transport::Other)
    }
}

/// One Via value (`via-parm`, RFC 3261 §20.42, §25.1; RFC 3581 rport).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    raw: &'a [u8],
    transport: Transport,
    transport_raw: &'a [u8],
    host: Host<'a>,
    host_raw: &'a [u8],
    port: Option<u16>,
    params: Params<'a>,
    branch: Option<&'a [u8]>,
    received: Option<IpAddr>,
    rport: Option<Option<u16>>,
    maddr: Option<Host<'a>>,
    ttl: Option<u8>,
}

/// `z9hG4bK`, the RFC 3261 branch magic cookie (§8.1.1.7).
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

impl<'a> Via<'a> {
    /// Parse one via-parm that is all of `s` (surrounding whitespace allowed).
    pub fn parse(s: &'a [u8]) -> Result<Via<'a>> {
        let (via, end) = Self::parse_prefix(s)?;
        if end != s.len() {
            return Err(Error::value(ErrorKind::TrailingGarbage, end));
        }
        Ok(via)
    }

    /// Parse the via-parm at the start of `s` and stop at the `,` that ends it (or at the
    /// end of `s`); returns the index where parsing stopped. Parameters are scanned once:
    /// validated and the known ones picked out in the same pass.
    pub fn parse_prefix(s: &'a [u8]) -> Result<(Via<'a>, usize)> {
        let p0 = skip_ws(s, 0);
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport,
        // SLASH = SWS "/" SWS (RFC 4475 §3.1.1.1 puts LWS everywhere here)
        let name_end = chars::token(s, p0).map_err(|_| Error::value(ErrorKind::BadViaProtocol, p0))?;
        let v0 = slash(s, name_end)?;
        let v_end = chars::token(s, v0).map_err(|_| Error::value(ErrorKind::BadViaProtocol, v0))?;
        let t0 = slash(s, v_end)?;
        let t_end = chars::token(s, t0).map_err(|_| Error::value(ErrorKind::BadViaProtocol, t0))?;
        if !s[p0..name_end].eq_ignore_ascii_case(b"SIP") {
            return Err(Error::value(ErrorKind::BadViaProtocol, p0));
        }
        if &s[v0..v_end] != b"2.0" {
            let well_formed = is_version_number(&s[v0..v_end]);
            let kind = if well_formed { ErrorKind::UnsupportedVersion } else { ErrorKind::BadViaProtocol };
            return Err(Error::value(kind, v0));
        }
        let h0 = skip_ws(s, t_end);
        if h0 == t_end {
            return Err(Error::value(ErrorKind::BadViaProtocol, t_end));
        }
        let (host, h_end) = uri::parse_host(s, h0)?;
        let mut i = skip_ws(s, h_end);
        let mut port = None;
        if i < s.len() && s[i] == b':' {
            let p = skip_ws(s, i + 1);
            let mut e = p;
            while e < s.len() && s[e].is_ascii_digit() {
                e += 1;
            }
            port = Some(uri::parse_port(&s[p..e]).map_err(|e| e.shifted(p))?);
            i = e;
        }
        let (mut branch, mut received, mut rport, mut maddr, mut ttl) = (None, None, None, None, None);
        let (params, end) = params::scan_header_params(s, i, true, |name, value, at| {
            let bad = || Error::value(ErrorKind::BadViaParam, at);
            if name.eq_ignore_ascii_case(b"branch") {
                branch = Some(value.filter(|v| chars::is_token(v)).ok_or_else(bad)?);
            } else if name.eq_ignore_ascii_case(b"received") {
                received = Some(value.and_then(uri::parse_ip).ok_or_else(bad)?);
            } else if name.eq_ignore_ascii_case(b"rport") {
                rport = Some(match value {
                    None => None,
                    Some(v) => Some(uri::parse_port(v).map_err(|_| bad())?),
                });
            } else if name.eq_ignore_ascii_case(b"maddr") {
                let v = value.ok_or_else(bad)?;
                match uri::parse_host(v, 0) {
                    Ok((h, e)) if e == v.len() => maddr = Some(h),
                    _ => return Err(bad()),
                }
            } else if name.eq_ignore_ascii_case(b"ttl") {
                ttl = Some(value.and_then(|v| chars::decimal(v, 255).ok()).ok_or_else(bad)? as u8);
            }
            Ok(())
        })?;
        let raw_end = if params.is_empty() {
            h_end.max(i)
        } else {
            chars::offset_in(s, params.as_bytes()) + params.as_bytes().len()
        };
        let via = Via {
            raw: &s[p0..raw_end],
            transport: Transport::from_bytes(&s[t0..t_end]),
            transport_raw: &s[t0..t_end],
            host,
            host_raw: &s[h0..h_end],
            port,
            params,
            branch,
            received,
            rport,
            maddr,
            ttl,
        };
        Ok((via, end))
    }

    /// The whole via-parm as written (trimmed).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
    /// Transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }
    /// Transport token as written.
    pub fn transport_bytes(&self) -> &'a [u8] {
        self.transport_raw
    }
    /// sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// sent-by host as written.
    pub fn host_bytes(&self) -> &'a [u8] {
        self.host_raw
    }
    /// sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// `branch` parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.branch
    }
    /// Does the branch start with the RFC 3261 magic cookie `z9hG4bK`?
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch.is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }
    /// `received` parameter.
    pub fn received(&self) -> Option<IpAddr> {
        self.received
    }
    /// `rport` parameter: `None` absent, `Some(None)` present without value (RFC 3581 §3).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.rport
    }
    /// `maddr` parameter.
    pub fn maddr(&self) -> Option<Host<'a>> {
        self.maddr
    }
    /// `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }
}

fn slash(s: &[u8], i: usize) -> Result<usize> {
    let j = skip_ws(s, i);
    if j < s.len() && s[j] == b'/' { Ok(skip_ws(s, j + 1)) } else { Err(Error::value(ErrorKind::BadViaProtocol, j)) }
}

fn is_version_number(v: &[u8]) -> bool {
    match v.iter().position(|&b| b == b'.') {
        Some(d) => {
            d > 0
                && d + 1 < v.len()
                && v[..d].iter().all(u8::is_ascii_digit)
                && v[d + 1..].iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// CSeq (RFC 3261 §20.16): sequence number and method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (< 2^31, RFC 3261 §8.1.1.5).
    pub number: u32,
    /// The method, case-sensitive.
    pub method: &'a [u8],
}

impl<'a> CSeq<'a> {
    /// Parse `1*DIGIT LWS Method`.
    pub fn parse(s: &'a [u8]) -> Result<CSeq<'a>> {
        let i = skip_ws(s, 0);
        let mut e = i;
        while e < s.len() && s[e].is_ascii_digit() {
            e += 1;
        }
        if e == i {
            return Err(Error::value(ErrorKind::ExpectedNumber, i));
        }
        let number = chars::decimal(&s[i..e], (1 << 31) - 1).map_err(|err| err.shifted(i))? as u32;
        let m = skip_ws(s, e);
        if m == e {
            return Err(Error::value(ErrorKind::UnexpectedChar, e));
        }
        let me = chars::token(s, m)?;
        if skip_ws(s, me) != s.len() {
            return Err(Error::value(ErrorKind::TrailingGarbage, me));
        }
        Ok(CSeq { number, method: &s[m..me] })
    }
}

/// Parse a whole value as a decimal number up to `max` (Max-Forwards, Content-Length,
/// Expires, Min-Expires…), ignoring surrounding whitespace.
pub fn parse_number(s: &[u8], max: u64) -> Result<u64> {
    let t = chars::trim(s);
    let at = chars::offset_in(s, t);
    if t.is_empty() {
        return Err(Error::value(ErrorKind::ExpectedNumber, at));
    }
    chars::decimal(t, max).map_err(|e| e.shifted(at))
}

/// Largest delta-seconds value (RFC 3261 §20.19: 2^32 - 1).
pub const MAX_DELTA_SECONDS: u64 = u32::MAX as u64;

/// A Contact header value (RFC 3261 §20.10): `*` or a list of addresses.
#[derive(Clone, Copy, Debug)]
pub enum ContactValue<'a> {
    /// `Contact: *` (only in REGISTER with `Expires: 0`, §10.2.2).
    Star,
    /// One address of the list.
    Addr(NameAddr<'a>),
}

/// Parse one Contact element that is all of `s` and check `q` (qvalue) and `expires`
/// (delta-seconds).
pub fn parse_contact(s: &[u8]) -> Result<ContactValue<'_>> {
    let (c, end) = parse_contact_prefix(s)?;
    if end != s.len() {
        return Err(Error::value(ErrorKind::TrailingGarbage, end));
    }
    Ok(c)
}

/// Parse the Contact list element at the start of `s`, stopping at the `,` that ends it.
pub fn parse_contact_prefix(s: &[u8]) -> Result<(ContactValue<'_>, usize)> {
    let i = skip_ws(s, 0);
    if s.get(i) == Some(&b'*') {
        let j = skip_ws(s, i + 1);
        if j == s.len() || s[j] == b',' {
            return Ok((ContactValue::Star, j));
        }
    }
    let (a, end) = NameAddr::parse_prefix(s, false)?;
    let at = chars::offset_in(s, a.params().as_bytes());
    if let Some(v) = a.params().get(b"q") {
        if !v.is_some_and(is_qvalue) {
            return Err(Error::value(ErrorKind::BadQValue, at));
        }
    }
    if let Some(v) = a.params().get(b"expires") {
        match v {
            Some(v) => {
                chars::decimal(v, MAX_DELTA_SECONDS).map_err(|e| e.shifted(at))?;
            }
            None => return Err(Error::value(ErrorKind::EmptyParamValue, at)),
        }
    }
    Ok((ContactValue::Addr(a), end))
}

/// Parse every element of one list-header value with a prefix parser (one that stops at
/// the `,` ending its element), calling `f` on each. Offsets in errors are relative to `s`.
pub fn parse_list<'a, T>(
    s: &'a [u8],
    parse: fn(&'a [u8]) -> Result<(T, usize)>,
    mut f: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut at = 0;
    loop {
        let (t, end) = parse(&s[at..]).map_err(|e| e.shifted(at))?;
        f(t).map_err(|e| e.shifted(at))?;
        let end = at + end;
        if end >= s.len() {
            return Ok(());
        }
        at = end + 1;
        if is_empty_element(s, at) {
            return Err(Error::value(ErrorKind::EmptyListItem, at));
        }
    }
}

/// Is the list element starting at `s[at]` (just after a comma) empty?
pub(crate) fn is_empty_element(s: &[u8], at: usize) -> bool {
    let j = skip_ws(s, at);
    j == s.len() || s[j] == b','
}

/// [`NameAddr::parse_prefix`] for lists whose elements must be in `<>`.
pub fn bracketed_prefix(s: &[u8]) -> Result<(NameAddr<'_>, usize)> {
    NameAddr::parse_prefix(s, true)
}

/// [`NameAddr::parse_prefix`] for lists whose elements may be addr-specs.
pub fn name_addr_prefix(s: &[u8]) -> Result<(NameAddr<'_>, usize)> {
    NameAddr::parse_prefix(s, false)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`
pub fn is_qvalue(v: &[u8]) -> bool {
    match v {
        [b'0'] | [b'1'] => true,
        [b'0', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit),
        [b'1', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(|&b| b == b'0'),
        _ => false,
    }
}

/// A media type with parameters (Content-Type, and each Accept element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Top-level type (`application`).
    pub kind: &'a [u8],
    /// Subtype (`sdp`).
    pub subtype: &'a [u8],
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parse `type SLASH subtype *(SEMI param)`.
    pub fn parse(s: &'a [u8]) -> Result<MediaType<'a>> {
        let i = skip_ws(s, 0);
        let te = chars::token(s, i).map_err(|_| Error::value(ErrorKind::BadMediaType, i))?;
        let j = skip_ws(s, te);
        if j >= s.len() || s[j] != b'/' {
            return Err(Error::value(ErrorKind::BadMediaType, j));
        }
        let k = skip_ws(s, j + 1);
        let se = chars::token(s, k).map_err(|_| Error::value(ErrorKind::BadMediaType, k))?;
        let params = params::parse_header_params(s, se)?;
        Ok(MediaType { kind: &s[i..te], subtype: &s[k..se], params })
    }

    /// Is this `application/sdp`?
    pub fn is_sdp(&self) -> bool {
        self.kind.eq_ignore_ascii_case(b"application") && self.subtype.eq_ignore_ascii_case(b"sdp")
    }
}

/// Check a comma list of tokens (option tags, methods, encodings). `allow_empty`: the whole
/// value may be empty (Supported, Allow, Accept-Encoding…).
pub fn check_token_list(s: &[u8], allow_empty: bool) -> Result<()> {
    if chars::trim(s).is_empty() {
        return if allow_empty { Ok(()) } else { Err(Error::value(ErrorKind::EmptyValue, 0)) };
    }
    for item in CommaSplit::new(s) {
        let item = item?;
        let t = chars::trim(item);
        let at = chars::offset_in(s, t);
        if t.is_empty() {
            return Err(Error::value(ErrorKind::EmptyListItem, at));
        }
        if !chars::is_token(t) {
            return Err(Error::value(ErrorKind::ExpectedToken, at));
        }
    }
    Ok(())
}

/// Iterate over the option tags of a Require / Proxy-Require / Supported value.
pub fn option_tags(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b',').map(chars::trim).filter(|t| !t.is_empty())
}

/// Digest credentials or a challenge (Authorization, Proxy-Authorization,
/// WWW-Authenticate, Proxy-Authenticate; RFC 3261 §20.7, §22.4, RFC 7616).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    /// The scheme (`Digest`).
    pub scheme: &'a [u8],
    params: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Parse `scheme LWS auth-param *(COMMA auth-param)`. Parameters are `token = (token /
    /// quoted-string)`. Liberal: a missing comma between two parameters is accepted (RFC
    /// 3665 §2.1 F3 prints one so), since the values still read unambiguously.
    pub fn parse(s: &'a [u8]) -> Result<Auth<'a>> {
        let i = skip_ws(s, 0);
        let se = chars::token(s, i).map_err(|_| Error::value(ErrorKind::BadAuth, i))?;
        let p0 = skip_ws(s, se);
        if p0 == se || p0 == s.len() {
            return Err(Error::value(ErrorKind::BadAuth, se));
        }
        let mut j = p0;
        loop {
            let ne = chars::token(s, j).map_err(|_| Error::value(ErrorKind::BadAuth, j))?;
            let k = skip_ws(s, ne);
            if k >= s.len() || s[k] != b'=' {
                return Err(Error::value(ErrorKind::BadAuth, k));
            }
            let v = skip_ws(s, k + 1);
            let ve = if v < s.len() && s[v] == b'"' {
                chars::quoted(s, v)?
            } else {
                let e = chars::run(s, v, TOKEN);
                if e == v {
                    return Err(Error::value(ErrorKind::EmptyParamValue, v));
                }
                e
            };
            j = skip_ws(s, ve);
            if j == s.len() {
                break;
            }
            if s[j] == b',' {
                j = skip_ws(s, j + 1);
                if j == s.len() {
                    return Err(Error::value(ErrorKind::EmptyListItem, j));
                }
            } else if j == ve {
                return Err(Error::value(ErrorKind::BadAuth, j));
            }
        }
        Ok(Auth { scheme: &s[i..se], params: chars::trim(&s[p0..]) })
    }

    /// Is the scheme `Digest`?
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// Iterate over `(name, raw value)`; quoted values keep their quotes.
    pub fn params(&self) -> AuthParams<'a> {
        AuthParams { s: self.params, i: 0 }
    }

    /// The raw value of `name` (case-insensitive); use [`params::unquote`] to read it.
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// Iterator over auth-params; see [`Auth::params`].
#[derive(Clone, Debug)]
pub struct AuthParams<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for AuthParams<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let mut i = skip_ws(s, self.i);
        if i < s.len() && s[i] == b',' {
            i = skip_ws(s, i + 1);
        }
        if i >= s.len() {
            return None;
        }
        let ne = chars::run(s, i, TOKEN);
        let k = skip_ws(s, ne);
        if k >= s.len() || s[k] != b'=' {
            self.i = s.len();
            return None;
        }
        let v = skip_ws(s, k + 1);
        let ve =
            if v < s.len() && s[v] == b'"' { chars::quoted(s, v).unwrap_or(s.len()) } else { chars::run(s, v, TOKEN) };
        self.i = ve;
        Some((&s[i..ne], &s[v..ve]))
    }
}

fn check_digest(a: &Auth<'_>, credentials: bool) -> Result<()> {
    if !a.is_digest() {
        return Ok(());
    }
    let required: &[&[u8]] =
        if credentials { &[b"username", b"realm", b"nonce", b"uri", b"response"] } else { &[b"realm", b"nonce"] };
    for name in required {
        if a.get(name).is_none() {
            return Err(Error::value(ErrorKind::BadAuth, 0));
        }
    }
    Ok(())
}

/// Check an RFC 1123 date in GMT: `Sat, 13 Nov 2010 23:29:00 GMT` (RFC 3261 §20.17).
pub fn check_date(s: &[u8]) -> Result<()> {
    let t = chars::trim(s);
    let bad = || Error::value(ErrorKind::BadDate, chars::offset_in(s, t));
    if t.len() != 29 {
        return Err(bad());
    }
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let digits = |r: core::ops::Range<usize>| t[r].iter().all(u8::is_ascii_digit);
    let ok = DAYS.contains(&&t[0..3])
        && &t[3..5] == b", "
        && digits(5..7)
        && t[7] == b' '
        && MONTHS.contains(&&t[8..11])
        && t[11] == b' '
        && digits(12..16)
        && t[16] == b' '
        && digits(17..19)
        && t[19] == b':'
        && digits(20..22)
        && t[22] == b':'
        && digits(23..25)
        && &t[25..] == b" GMT";
    if !ok {
        return Err(bad());
    }
    let num = |r: core::ops::Range<usize>| t[r].iter().fold(0u32, |a, &b| a * 10 + (b - b'0') as u32);
    if !(1..=31).contains(&num(5..7)) || num(17..19) > 23 || num(20..22) > 59 || num(23..25) > 60 {
        return Err(bad());
    }
    Ok(())
}

/// Check a Call-ID: `word [ "@" word ]` (RFC 3261 §25.1).
pub fn check_call_id(s: &[u8]) -> Result<()> {
    let t = chars::trim(s);
    let at = chars::offset_in(s, t);
    if t.is_empty() {
        return Err(Error::value(ErrorKind::EmptyValue, at));
    }
    let (a, b) = match memchr::memchr(b'@', t) {
        Some(p) => (&t[..p], Some(&t[p + 1..])),
        None => (t, None),
    };
    let word = |w: &[u8]| !w.is_empty() && w.iter().all(|&c| is(c, WORD));
    if !word(a) || !b.is_none_or(word) {
        return Err(Error::value(ErrorKind::UnexpectedChar, at));
    }
    Ok(())
}

/// Check free text (Subject, User-Agent, Server, extension headers): no control
/// characters but HTAB (and the CR LF of folded lines).
pub fn check_text(s: &[u8]) -> Result<()> {
    match s.iter().position(|&b| (b < 0x20 && !is_ws(b)) || b == 0x7f) {
        Some(p) => Err(Error::value(ErrorKind::UnexpectedChar, p)),
        None => Ok(()),
    }
}

/// Skip a `comment` (RFC 3261 §25.1: `( *(ctext / quoted-pair / comment) )`) at `s[i]`.
fn skip_comment(s: &[u8], i: usize) -> Result<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j < s.len() {
        match s[j] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            b'\\' => j += 1,
            _ => {}
        }
        j += 1;
    }
    Err(Error::value(ErrorKind::UnterminatedQuote, i))
}

/// Check a Retry-After value: `delta-seconds [ comment ] *( SEMI retry-param )`.
pub fn check_retry_after(s: &[u8]) -> Result<u32> {
    let i = skip_ws(s, 0);
    let mut e2 = i;
    while e2 < s.len() && s[e2].is_ascii_digit() {
        e2 += 1;
    }
    let v = chars::decimal(&s[i..e2], MAX_DELTA_SECONDS).map_err(|err| err.shifted(i))? as u32;
    let mut j = skip_ws(s, e2);
    if j < s.len() && s[j] == b'(' {
        j = skip_comment(s, j)?;
    }
    params::parse_header_params(s, j)?;
    Ok(v)
}

/// Check a Warning value: `3DIGIT SP warn-agent SP quoted-string` (RFC 3261 §20.43).
pub fn check_warning(s: &[u8]) -> Result<()> {
    let t = chars::trim(s);
    let at = chars::offset_in(s, t);
    let bad = |o: usize| Error::value(ErrorKind::UnexpectedChar, at + o);
    if t.len() < 4 || !t[..3].iter().all(u8::is_ascii_digit) || t[3] != b' ' {
        return Err(bad(0));
    }
    let agent_end = t[4..].iter().position(|&b| b == b' ').map(|p| p + 4).ok_or_else(|| bad(4))?;
    if agent_end == 4 {
        return Err(bad(4));
    }
    let q = agent_end + 1;
    if t.get(q) != Some(&b'"') || chars::quoted(t, q)? != t.len() {
        return Err(bad(q));
    }
    Ok(())
}

/// Check a `token *(SEMI generic-param)` value (Event, Content-Disposition,
/// Subscription-State, Priority).
fn check_token_params(s: &[u8]) -> Result<()> {
    let i = skip_ws(s, 0);
    let e = chars::token(s, i)?;
    params::parse_header_params(s, e)?;
    Ok(())
}

/// Check a `delta-seconds *(SEMI generic-param)` value (Session-Expires, Min-SE).
fn check_delta_params(s: &[u8]) -> Result<()> {
    let i = skip_ws(s, 0);
    let mut e = i;
    while e < s.len() && s[e].is_ascii_digit() {
        e += 1;
    }
    chars::decimal(&s[i..e], MAX_DELTA_SECONDS).map_err(|err| err.shifted(i))?;
    params::parse_header_params(s, e)?;
    Ok(())
}

/// Check `LAQUOT absoluteURI RAQUOT *( SEMI generic-param )` list elements (Alert-Info,
/// Call-Info, Error-Info).
fn check_info_uri(s: &[u8]) -> Result<()> {
    let a = NameAddr::parse_bracketed(s)?;
    if a.display_name().is_some() {
        return Err(Error::value(ErrorKind::BadNameAddr, 0));
    }
    Ok(())
}

/// Check each comma-separated element with `f`, rejecting empty elements.
fn each<'a>(s: &'a [u8], mut f: impl FnMut(&'a [u8]) -> Result<()>) -> Result<()> {
    for item in CommaSplit::new(s) {
        let item = item?;
        let at = chars::offset_in(s, item);
        if chars::trim(item).is_empty() {
            return Err(Error::value(ErrorKind::EmptyListItem, at));
        }
        f(item).map_err(|e| e.shifted(at))?;
    }
    Ok(())
}

/// Fully check one header value (one header line) by its name's grammar. Offsets in the
/// error are relative to `value`. Extension headers get the free-text check.
pub fn check_value(name: crate::HeaderName, value: &[u8]) -> Result<()> {
    use crate::HeaderName as H;
    match name {
        H::Via => parse_list(value, Via::parse_prefix, |_| Ok(())),
        H::From | H::To | H::ReplyTo | H::ReferTo | H::ReferredBy => {
            let a = NameAddr::parse(value)?;
            if let Some(tag) = a.params().get(b"tag") {
                if !tag.is_some_and(chars::is_token) {
                    return Err(Error::value(ErrorKind::ExpectedToken, chars::offset_in(value, a.params().as_bytes())));
                }
            }
            Ok(())
        }
        H::Contact => {
            let mut star = false;
            let mut n = 0;
            parse_list(value, parse_contact_prefix, |c| {
                n += 1;
                star |= matches!(c, ContactValue::Star);
                Ok(())
            })?;
            if star && n > 1 {
                return Err(Error::value(ErrorKind::BadContactStar, 0));
            }
            Ok(())
        }
        H::Route | H::RecordRoute | H::Path | H::ServiceRoute => parse_list(value, bracketed_prefix, |_| Ok(())),
        H::PAssertedIdentity | H::PPreferredIdentity | H::Diversion | H::HistoryInfo => {
            parse_list(value, name_addr_prefix, |_| Ok(()))
        }
        H::CallId => check_call_id(value),
        H::CSeq => CSeq::parse(value).map(|_| ()),
        H::MaxForwards => parse_number(value, 255).map(|_| ()),
        H::ContentLength => parse_number(value, u32::MAX as u64).map(|_| ()),
        H::Expires | H::MinExpires => parse_number(value, MAX_DELTA_SECONDS).map(|_| ()),
        H::RSeq => parse_number(value, MAX_DELTA_SECONDS).map(|_| ()),
        H::RAck => {
            let t = chars::trim(value);
            let mut parts = t.split(|&b| is_ws(b)).filter(|p| !p.is_empty());
            let ok = parts.next().is_some_and(|p| chars::decimal(p, MAX_DELTA_SECONDS).is_ok())
                && parts.next().is_some_and(|p| chars::decimal(p, (1 << 31) - 1).is_ok())
                && parts.next().is_some_and(chars::is_token)
                && parts.next().is_none();
            if ok { Ok(()) } else { Err(Error::value(ErrorKind::UnexpectedChar, 0)) }
        }
        H::ContentType => MediaType::parse(value).map(|_| ()),
        H::Accept => {
            if chars::trim(value).is_empty() {
                return Ok(());
            }
            each(value, |v| MediaType::parse(v).map(|_| ()))
        }
        H::Require | H::ProxyRequire | H::Unsupported => check_token_list(value, false),
        H::Supported | H::Allow | H::AllowEvents | H::ContentEncoding | H::ContentLanguage | H::RequestDisposition => {
            check_token_list(value, true)
        }
        H::AcceptEncoding | H::AcceptLanguage => {
            if chars::trim(value).is_empty() {
                return Ok(());
            }
            each(value, check_token_params)
        }
        H::Authorization | H::ProxyAuthorization => check_digest(&Auth::parse(value)?, true),
        H::WwwAuthenticate | H::ProxyAuthenticate => check_digest(&Auth::parse(value)?, false),
        H::Date => check_date(value),
        H::RetryAfter => check_retry_after(value).map(|_| ()),
        H::Warning => each(value, check_warning),
        H::Event | H::ContentDisposition | H::SubscriptionState | H::Priority => check_token_params(value),
        H::SessionExpires | H::MinSe => check_delta_params(value),
        H::AlertInfo | H::CallInfo | H::ErrorInfo => each(value, check_info_uri),
        H::InReplyTo => each(value, check_call_id),
        H::Replaces => {
            let t = chars::trim(value);
            let e = t.iter().position(|&b| b == b';' || is_ws(b)).unwrap_or(t.len());
            check_call_id(&t[..e])?;
            params::parse_header_params(t, e).map(|_| ())
        }
        H::MimeVersion => {
            if is_version_number(chars::trim(value)) {
                Ok(())
            } else {
                Err(Error::value(ErrorKind::UnexpectedChar, 0))
            }
        }
        H::Timestamp => {
            let t = chars::trim(value);
            let ok = t.split(|&b| is_ws(b)).filter(|p| !p.is_empty()).enumerate().all(|(i, p)| {
                i < 2
                    && p.iter().filter(|&&b| b == b'.').count() <= 1
                    && p.iter().all(|&b| b.is_ascii_digit() || b == b'.')
            }) && !t.is_empty();
            if ok { Ok(()) } else { Err(Error::value(ErrorKind::UnexpectedChar, 0)) }
        }
        H::AcceptContact | H::RejectContact => each(value, |v| {
            let i = skip_ws(v, 0);
            if v.get(i) != Some(&b'*') {
                return Err(Error::value(ErrorKind::UnexpectedChar, i));
            }
            params::parse_header_params(v, i + 1).map(|_| ())
        }),
        H::Reason => each(value, check_token_params),
        H::Privacy => {
            let t = chars::trim(value);
            if t.split(|&b| b == b';').all(|p| chars::is_token(chars::trim(p))) {
                Ok(())
            } else {
                Err(Error::value(ErrorKind::ExpectedToken, 0))
            }
        }
        H::AuthenticationInfo => {
            // ainfo *(COMMA ainfo), ainfo = token EQUAL (token / quoted-string)
            Auth::parse_params_only(value)
        }
        H::Subject | H::Organization | H::Server | H::UserAgent | H::Identity | H::IdentityInfo | H::Other => {
            check_text(value)
        }
    }
}

impl Auth<'_> {
    /// Authentication-Info has parameters without a scheme.
    fn parse_params_only(s: &[u8]) -> Result<()> {
        // Reuse the credentials grammar by checking with a synthetic scheme position: the
        // parameters of `Digest <value>` are exactly the value.
        let mut j = skip_ws(s, 0);
        if j == s.len() {
            return Err(Error::value(ErrorKind::EmptyValue, j));
        }
        loop {
            let ne = chars::token(s, j).map_err(|_| Error::value(ErrorKind::BadAuth, j))?;
            let k = skip_ws(s, ne);
            if k >= s.len() || s[k] != b'=' {
                return Err(Error::value(ErrorKind::BadAuth, k));
            }
            let v = skip_ws(s, k + 1);
            let ve = if v < s.len() && s[v] == b'"' { chars::quoted(s, v)? } else { chars::token(s, v)? };
            j = skip_ws(s, ve);
            if j == s.len() {
                return Ok(());
            }
            if s[j] != b',' {
                return Err(Error::value(ErrorKind::BadAuth, j));
            }
            j = skip_ws(s, j + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HeaderName as H;

    #[test]
    fn via_basic() {
        let v = Via::parse(b"SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060")
            .unwrap();
        assert_eq!(v.transport(), Transport::Udp);
        assert_eq!(v.host(), Host::Name(b"pc33.atlanta.com"));
        assert_eq!(v.port(), Some(5066));
        assert_eq!(v.branch(), Some(&b"z9hG4bK776asdhds"[..]));
        assert!(v.is_rfc3261_branch());
        assert_eq!(v.received(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(v.rport(), Some(Some(5060)));
    }

    #[test]
    fn via_lws_everywhere() {
        // RFC 4475 §3.1.1.1 wsinv
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.host(), Host::V4("192.0.2.2".parse().unwrap()));
        assert!(!v.is_rfc3261_branch());
        let v = Via::parse(b"  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ").unwrap();
        assert_eq!(v.transport(), Transport::Tcp);
        assert_eq!(v.branch(), Some(&b"z9hG4bK9ikj8"[..]));
        let v = Via::parse(b"SIP/2.0/UDP host : 5070 ;rport").unwrap();
        assert_eq!(v.port(), Some(5070));
        assert_eq!(v.rport(), Some(None));
    }

    #[test]
    fn via_ipv6() {
        let v = Via::parse(b"SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111").unwrap();
        assert_eq!(v.host(), Host::V6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(v.port(), Some(6050));
        assert_eq!(v.host_bytes(), b"[2001:db8::9:1]");
        let v = Via::parse(b"SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3").unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        let v = Via::parse(b"SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111").unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        let v = Via::parse(b"SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200").unwrap();
        assert_eq!(v.received(), Some("192.0.2.200".parse().unwrap()));
    }

    #[test]
    fn via_errors() {
        let e = |s: &[u8]| Via::parse(s).unwrap_err().kind();
        assert_eq!(e(b"SIP/2.0/UDP 192.0.2.15;;"), ErrorKind::EmptyParam);
        assert_eq!(e(b"SIP/7.0/UDP c.example.com"), ErrorKind::UnsupportedVersion);
        assert_eq!(e(b"SIP/2.0 host"), ErrorKind::BadViaProtocol);
        assert_eq!(e(b"SIP/2.0/UDP"), ErrorKind::BadViaProtocol);
        assert_eq!(e(b"SIP/2.0/UDPhost"), ErrorKind::BadViaProtocol);
        assert_eq!(e(b"HTTP/2.0/UDP h"), ErrorKind::BadViaProtocol);
        assert_eq!(e(b"SIP/2.0/UDP h:99999"), ErrorKind::BadPort);
        assert_eq!(e(b"SIP/2.0/UDP h;received=host.example.com"), ErrorKind::BadViaParam);
        assert_eq!(e(b"SIP/2.0/UDP h;ttl=256"), ErrorKind::BadViaParam);
        assert_eq!(e(b"SIP/2.0/UDP h;branch"), ErrorKind::BadViaParam);
        assert_eq!(e(b"SIP/2.0/UDP h;rport=x"), ErrorKind::BadViaParam);
        assert_eq!(e(b"SIP/2.0/UDP h;maddr=[::1"), ErrorKind::BadViaParam);
        assert_eq!(Via::parse(b"SIP/2.0/UDP h;maddr=224.2.0.1;ttl=16").unwrap().ttl(), Some(16));
    }

    #[test]
    fn cseq() {
        assert_eq!(CSeq::parse(b"0009\r\n  INVITE").unwrap(), CSeq { number: 9, method: b"INVITE" });
        assert_eq!(CSeq::parse(b" 2147483647 ACK ").unwrap().number, 2147483647);
        assert_eq!(CSeq::parse(b"2147483648 ACK").unwrap_err().kind(), ErrorKind::NumberOutOfRange);
        assert_eq!(CSeq::parse(b"36893488147419103232 REGISTER").unwrap_err().kind(), ErrorKind::NumberOutOfRange);
        assert_eq!(CSeq::parse(b"1INVITE").unwrap_err().kind(), ErrorKind::UnexpectedChar);
        assert_eq!(CSeq::parse(b"1 INVITE x").unwrap_err().kind(), ErrorKind::TrailingGarbage);
        assert_eq!(CSeq::parse(b"INVITE").unwrap_err().kind(), ErrorKind::ExpectedNumber);
    }

    #[test]
    fn contacts() {
        assert!(matches!(parse_contact(b" * ").unwrap(), ContactValue::Star));
        assert!(parse_contact(b"<sip:a@b>;q=0.7;expires=3600").is_ok());
        assert_eq!(parse_contact(b"<sip:a@b>;q=1.5").unwrap_err().kind(), ErrorKind::BadQValue);
        assert_eq!(parse_contact(b"<sip:a@b>;q=0.1234").unwrap_err().kind(), ErrorKind::BadQValue);
        assert_eq!(
            parse_contact(b"<sip:user@host129.example.com>\r\n  ;expires=280297596632815").unwrap_err().kind(),
            ErrorKind::NumberOutOfRange
        );
        assert_eq!(check_value(H::Contact, b"*, <sip:a@b>").unwrap_err().kind(), ErrorKind::BadContactStar);
        assert_eq!(check_value(H::Contact, b"<sip:a@b>,,<sip:c@d>").unwrap_err().kind(), ErrorKind::EmptyListItem);
        assert!(
            is_qvalue(b"0") && is_qvalue(b"1.000") && is_qvalue(b"0.33") && !is_qvalue(b"1.1") && !is_qvalue(b".5")
        );
    }

    #[test]
    fn media_types() {
        let m = MediaType::parse(b"application/sdp").unwrap();
        assert!(m.is_sdp());
        let m = MediaType::parse(
            b"multipart/signed;\r\n protocol=\"application/pkcs7-signature\";micalg=sha1; boundary=boundary42",
        )
        .unwrap();
        assert_eq!(m.subtype, b"signed");
        assert_eq!(m.params.value(b"micalg"), Some(&b"sha1"[..]));
        assert!(MediaType::parse(b"text").is_err());
        assert!(check_value(H::Accept, b"application/sdp, application/pkcs7-mime,\r\n        multipart/mixed").is_ok());
        assert!(check_value(H::Accept, b"*/*;q=0.5, text/*").is_ok());
        assert!(check_value(H::Accept, b"").is_ok());
    }

    #[test]
    fn auth() {
        let a = Auth::parse(b"Digest username=\"bob\", realm=\"atlanta.example.com\"\r\n nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", opaque=\"\",\r\n uri=\"sips:ss2.biloxi.example.com\",\r\n response=\"dfe56131d1958046689d83306477ecc\"").unwrap();
        assert!(a.is_digest());
        assert_eq!(a.get(b"nonce"), Some(&b"\"ea9c8e88df84f1cec4341ae6cbe5a359\""[..]));
        assert_eq!(a.get(b"OPAQUE"), Some(&b"\"\""[..]));
        assert_eq!(a.params().count(), 6);
        let a = Auth::parse(b"NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert!(!a.is_digest());
        assert!(check_value(H::Authorization, b"NoOneKnowsThisScheme opaque-data=here").is_ok());
        assert!(
            check_value(
                H::WwwAuthenticate,
                b"Digest realm=\"a\", qop=\"auth,auth-int\", nonce=\"x\", algorithm=SHA-256"
            )
            .is_ok()
        );
        assert_eq!(check_value(H::Authorization, b"Digest realm=\"a\"").unwrap_err().kind(), ErrorKind::BadAuth);
        assert_eq!(Auth::parse(b"Digest").unwrap_err().kind(), ErrorKind::BadAuth);
        assert_eq!(Auth::parse(b"Digest a=b,").unwrap_err().kind(), ErrorKind::EmptyListItem);
        assert_eq!(Auth::parse(b"Digest a").unwrap_err().kind(), ErrorKind::BadAuth);
        assert_eq!(Auth::parse(b"Digest a=\"b").unwrap_err().kind(), ErrorKind::UnterminatedQuote);
        assert!(check_value(H::AuthenticationInfo, b"nextnonce=\"47364c23432d2e131a5fb210812c\"").is_ok());
    }

    #[test]
    fn dates() {
        assert!(check_date(b"Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert_eq!(check_date(b"Fri, 01 Jan 2010 16:00:00 EST").unwrap_err().kind(), ErrorKind::BadDate);
        assert!(check_date(b"Sat, 13 Nov 2010 24:29:00 GMT").is_err());
        assert!(check_date(b"Xyz, 13 Nov 2010 23:29:00 GMT").is_err());
    }

    #[test]
    fn misc_values() {
        assert!(check_call_id(b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{").is_ok());
        assert!(check_call_id(b"a@b@c").is_err());
        assert!(check_call_id(b"a b").is_err());
        assert!(check_call_id(b"").is_err());
        assert_eq!(check_retry_after(b"18000;duration=3600"), Ok(18000));
        assert_eq!(check_retry_after(b"120 (I'm in a meeting)"), Ok(120));
        assert!(check_retry_after(b"949302838503028349304023988").is_err());
        assert!(check_warning(b"301 isi.edu \"Incompatible network address type 'E.164'\"").is_ok());
        assert!(check_warning(b"1812 overture \"In Progress\"").is_err());
        assert!(check_value(H::Warning, b"307 isi.edu \"a\", 330 x \"b\"").is_ok());
        assert!(check_value(H::Require, b"nothingSupportsThis, nothingSupportsThisEither").is_ok());
        assert!(check_value(H::Require, b"").is_err());
        assert!(check_value(H::Supported, b"").is_ok());
        assert_eq!(check_value(H::Supported, b"100rel,,timer").unwrap_err().kind(), ErrorKind::EmptyListItem);
        assert!(check_value(H::Route, b"<sip:ss1.atlanta.example.com;lr>,\r\n <sip:ss2;lr>").is_ok());
        assert!(check_value(H::Route, b"sip:ss1.atlanta.example.com;lr").is_err());
        assert!(check_value(H::MaxForwards, b" 0068").is_ok());
        assert_eq!(check_value(H::MaxForwards, b"300").unwrap_err().kind(), ErrorKind::NumberOutOfRange);
        assert!(check_value(H::Expires, b"10000000000000000000000000000000000000000000000000").is_err());
        assert!(check_value(H::Timestamp, b"54.0 1.5").is_ok());
        assert!(check_value(H::Event, b"presence;id=1").is_ok());
        assert!(check_value(H::SessionExpires, b"1800;refresher=uas").is_ok());
        assert!(check_value(H::RAck, b"776656 1 INVITE").is_ok());
        assert!(check_value(H::RAck, b"776656 INVITE").is_err());
        assert!(check_value(H::CallInfo, b"<http://wwww.example.com/alice/photo.jpg> ;purpose=icon").is_ok());
        assert!(check_value(H::Subject, b"").is_ok());
        assert!(check_value(H::Other, b";;,,;;,;").is_ok());
        assert!(check_value(H::Other, b"a\x01b").is_err());
        assert!(check_value(H::From, b"<sip:a@b>;tag=\"q\"").is_err());
    }
}
