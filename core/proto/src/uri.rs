//! URIs: `sip:`/`sips:` (RFC 3261 §19.1, §25.1), `tel:` (RFC 3966) and any other absolute
//! URI (kept opaque), and hosts (names, IPv4, IPv6 references per RFC 5118).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::chars::{self, HNV, PASSWORD, TEL, URIC, USERINFO, is};
use crate::error::{Error, ErrorKind, Result};
use crate::params::{self, Params, Unescape};

/// URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other absolute URI scheme (parsed, kept opaque; a proxy answers 416 where it
    /// cannot route it, RFC 3261 §8.2.2.1).
    Other,
}

/// A host: a domain name, an IPv4 address or an IPv6 reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A host name as written (case-insensitive; compare with `eq_ignore_ascii_case`).
    Name(&'a [u8]),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets in SIP).
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// The address, if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
        }
    }
}

/// A parsed URI. All slices borrow the message buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a [u8],
    scheme: Scheme,
    user: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    host: Option<Host<'a>>,
    host_raw: &'a [u8],
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a [u8]>,
}

impl<'a> Uri<'a> {
    /// Parse a complete URI (no surrounding whitespace or brackets).
    pub fn parse(raw: &'a [u8]) -> Result<Uri<'a>> {
        let (scheme, colon) = scheme_of(raw)?;
        let mut uri = Uri {
            raw,
            scheme,
            user: None,
            password: None,
            host: None,
            host_raw: b"",
            port: None,
            params: Params::EMPTY,
            headers: None,
        };
        let rest = colon + 1;
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(rest)?,
            Scheme::Tel => uri.parse_tel(rest)?,
            Scheme::Other => {
                // absoluteURI = scheme ":" ( hier-part / opaque-part ), all uric chars
                if rest == raw.len() {
                    return Err(Error::value(ErrorKind::EmptyValue, rest));
                }
                chars::check_escaped(&raw[rest..], URIC, ErrorKind::UnexpectedChar).map_err(|e| e.shifted(rest))?;
            }
        }
        Ok(uri)
    }

    fn parse_sip(&mut self, start: usize) -> Result<()> {
        let s = self.raw;
        let mut i = start;
        // '@' appears nowhere else in a SIP URI: one SIMD search decides whether there is a
        // userinfo, so host-only URIs (Route, Record-Route targets) skip its scan; then one
        // scan over user, ':' and password characters must end exactly at the '@'
        if let Some(at) = memchr::memchr(b'@', &s[start..]) {
            let at = start + at;
            let e = params::escaped_run(s, start, at, USERINFO)?;
            if e != at {
                return Err(Error::value(ErrorKind::BadUser, e));
            }
            let (user_end, pw) = match memchr::memchr(b':', &s[start..at]) {
                Some(c) => (start + c, Some(start + c + 1)),
                None => (at, None),
            };
            if user_end == start {
                return Err(Error::value(ErrorKind::BadUser, start));
            }
            // the user part holds only USER chars: USERINFO minus ':' is USER
            self.user = Some(&s[start..user_end]);
            if let Some(p) = pw {
                let e = params::escaped_run(s, p, at, PASSWORD)?;
                if e != at {
                    return Err(Error::value(ErrorKind::BadUser, e));
                }
                self.password = Some(&s[p..at]);
            }
            i = at + 1;
        }
        self.parse_hostport(i)
    }

    fn parse_hostport(&mut self, mut i: usize) -> Result<()> {
        let s = self.raw;
        // hostport
        let (host, host_end) = parse_host(s, i)?;
        self.host = Some(host);
        self.host_raw = &s[i..host_end];
        i = host_end;
        if i < s.len() && s[i] == b':' {
            let p0 = i + 1;
            let mut p = p0;
            while p < s.len() && s[p].is_ascii_digit() {
                p += 1;
            }
            self.port = Some(parse_port(&s[p0..p]).map_err(|e| e.shifted(p0))?);
            i = p;
        }
        // uri-parameters, up to '?' or the end
        let params_end = params::scan_uri_params(s, i)?;
        self.params = Params::from_raw(&s[i..params_end]);
        i = params_end;
        // headers = "?" header *( "&" header ); header = hname "=" hvalue
        if i < s.len() {
            let h0 = i + 1;
            let mut j = h0;
            loop {
                let n = params::escaped_run(s, j, s.len(), HNV)?;
                if n == j {
                    return Err(Error::value(ErrorKind::EmptyParam, j));
                }
                if n >= s.len() || s[n] != b'=' {
                    return Err(Error::value(ErrorKind::UnexpectedChar, n));
                }
                j = params::escaped_run(s, n + 1, s.len(), HNV)?;
                if j == s.len() {
                    break;
                }
                if s[j] != b'&' {
                    return Err(Error::value(ErrorKind::UnexpectedChar, j));
                }
                j += 1;
            }
            self.headers = Some(&s[h0..]);
        }
        Ok(())
    }

    fn parse_tel(&mut self, start: usize) -> Result<()> {
        let s = self.raw;
        let end = memchr::memchr(b';', &s[start..]).map_or(s.len(), |p| start + p);
        let num = &s[start..end];
        let digits = num.iter().filter(|b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#')).count();
        if digits == 0
            || !num.iter().all(|&b| is(b, TEL))
            || (num[0] == b'+' && !num[1..].iter().any(u8::is_ascii_digit))
        {
            return Err(Error::value(ErrorKind::BadTelUri, start));
        }
        self.user = Some(num);
        params::check_uri_params(s, end, s.len())?;
        self.params = Params::from_raw(&s[end..]);
        Ok(())
    }

    /// The whole URI as written.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Is this a `sip:` or `sips:` URI?
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part as written (escapes not decoded; see [`Uri::user_unescaped`]). For
    /// `tel:` URIs, the number.
    pub fn user(&self) -> Option<&'a [u8]> {
        self.user
    }

    /// The user part with `%HH` escapes decoded once.
    pub fn user_unescaped(&self) -> Option<Unescape<'a>> {
        self.user.map(params::unescape)
    }

    /// The password as written.
    pub fn password(&self) -> Option<&'a [u8]> {
        self.password
    }

    /// The host (SIP/SIPS only).
    pub fn host(&self) -> Option<Host<'a>> {
        self.host
    }

    /// The host as written (IPv6 references include their brackets).
    pub fn host_bytes(&self) -> &'a [u8] {
        self.host_raw
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters (`;transport=udp;lr`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `?headers` part without the `?`.
    pub fn headers(&self) -> Option<&'a [u8]> {
        self.headers
    }

    /// Has the URI the `lr` parameter (RFC 3261 §19.1.1, loose routing)?
    pub fn is_loose_router(&self) -> bool {
        self.params.contains(b"lr")
    }

    /// For anything but `sip:`/`sips:`/`tel:`, everything after `scheme:`.
    pub fn opaque(&self) -> Option<&'a [u8]> {
        match self.scheme {
            Scheme::Other => {
                let c = memchr::memchr(b':', self.raw).unwrap_or(0);
                Some(&self.raw[c + 1..])
            }
            _ => None,
        }
    }
}

/// The scheme of an absolute URI and the index of its ':'. `sip:` and `sips:` are
/// recognised with one word compare each.
#[inline]
fn scheme_of(raw: &[u8]) -> Result<(Scheme, usize)> {
    if raw.len() >= 4 {
        let w = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) | 0x0020_2020;
        if w == u32::from_le_bytes(*b"sip:") {
            return Ok((Scheme::Sip, 3));
        }
        if raw.len() >= 5 && w == u32::from_le_bytes(*b"sips") && raw[4] == b':' {
            return Ok((Scheme::Sips, 4));
        }
    }
    let colon = match memchr::memchr(b':', raw) {
        Some(c) if c > 0 => c,
        _ => return Err(Error::value(ErrorKind::BadScheme, 0)),
    };
    let scheme_raw = &raw[..colon];
    if !scheme_raw[0].is_ascii_alphabetic()
        || !scheme_raw.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(Error::value(ErrorKind::BadScheme, 0));
    }
    let scheme = if scheme_raw.eq_ignore_ascii_case(b"sip") {
        Scheme::Sip
    } else if scheme_raw.eq_ignore_ascii_case(b"sips") {
        Scheme::Sips
    } else if scheme_raw.eq_ignore_ascii_case(b"tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    };
    Ok((scheme, colon))
}

/// Parse a port (1*DIGIT, at most 65535).
pub(crate) fn parse_port(s: &[u8]) -> Result<u16> {
    if s.is_empty() || s.len() > 5 {
        return Err(Error::value(ErrorKind::BadPort, 0));
    }
    match chars::decimal(s, 65535) {
        Ok(v) => Ok(v as u16),
        Err(_) => Err(Error::value(ErrorKind::BadPort, 0)),
    }
}

/// Parse a host starting at `s[i]`; returns it and the index just past it. A host name runs
/// over alphanumerics, `-`, `.` and (liberally) `_`, in labels that neither are empty nor
/// start or end with `-` (one trailing `.` allowed); an all-numeric host must be a valid
/// IPv4 address; `[...]` is an IPv6 reference. One pass, no copies.
#[inline]
pub fn parse_host(s: &[u8], i: usize) -> Result<(Host<'_>, usize)> {
    if i >= s.len() {
        return Err(Error::value(ErrorKind::MissingHost, i));
    }
    if s[i] == b'[' {
        let close = match memchr::memchr(b']', &s[i..]) {
            Some(c) => i + c,
            None => return Err(Error::value(ErrorKind::BadIpv6, i)),
        };
        let a = parse_ipv6(&s[i + 1..close]).ok_or(Error::value(ErrorKind::BadIpv6, i))?;
        return Ok((Host::V6(a), close + 1));
    }
    // an IPv4 literal is read directly, in one pass; anything else continues as a name
    if s[i].is_ascii_digit() {
        if let Some((a, e)) = ipv4_prefix(s, i) {
            if s.get(e).is_none_or(|&b| chars::HOST_CLASS[b as usize] == 0) {
                return Ok((Host::V4(a), e));
            }
        }
    }
    // one tight scan for the extent, or-ing the classes seen; structure is checked after
    let mut e = i;
    let mut seen = 0u8;
    while e < s.len() {
        let c = chars::HOST_CLASS[s[e] as usize];
        if c == 0 {
            break;
        }
        seen |= c;
        e += 1;
    }
    if e == i {
        return Err(Error::value(ErrorKind::MissingHost, i));
    }
    let name = &s[i..e];
    let bad = Error::value(ErrorKind::BadHost, i);
    if seen & (chars::H_ALPHA | chars::H_DASH) == 0 {
        // digits and dots only: must be an IPv4 address
        return parse_ipv4(name).map(|a| (Host::V4(a), e)).ok_or(bad);
    }
    // labels: not empty, not starting or ending with '-'; one trailing '.' allowed
    let (first, last) = (name[0], name[name.len() - 1]);
    if first == b'.' || first == b'-' || last == b'-' {
        return Err(bad);
    }
    if seen & chars::H_DOT != 0 {
        for d in memchr::memchr_iter(b'.', name) {
            let before = name[d - 1];
            let after = name.get(d + 1).copied().unwrap_or(b'x');
            if before == b'.' || before == b'-' || after == b'-' || after == b'.' {
                return Err(bad);
            }
        }
    }
    Ok((Host::Name(name), e))
}

/// An IPv4 address at `s[i..]` and the index just past it (it stops at the first byte that
/// is neither a digit nor a dot).
#[inline]
fn ipv4_prefix(s: &[u8], i: usize) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    let mut cur: u32 = 0;
    let mut digits = 0;
    let mut e = i;
    while e < s.len() {
        let b = s[e];
        if b.is_ascii_digit() {
            cur = cur * 10 + (b - b'0') as u32;
            digits += 1;
            if digits > 3 || cur > 255 {
                return None;
            }
        } else if b == b'.' && digits > 0 && n < 3 {
            octets[n] = cur as u8;
            n += 1;
            cur = 0;
            digits = 0;
        } else {
            break;
        }
        e += 1;
    }
    if n != 3 || digits == 0 {
        return None;
    }
    octets[3] = cur as u8;
    Some((Ipv4Addr::from(octets), e))
}

/// Parse a dotted-quad IPv4 address (four decimal octets 0–255, no leading `+`, at most
/// three digits each).
#[inline]
pub fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    match ipv4_prefix(s, 0) {
        Some((a, e)) if e == s.len() => Some(a),
        _ => None,
    }
}

/// Parse an IPv6 address (no brackets). Tolerates the `:::` form before an embedded IPv4
/// address that RFC 3261's ABNF admits (RFC 5118 §4.10), reading it as `::`.
pub fn parse_ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    if s.len() > 45 {
        return None;
    }
    if let Ok(a) = core::str::from_utf8(s).ok()?.parse() {
        return Some(a);
    }
    let p = memchr::memmem::find(s, b":::")?;
    let mut buf = [0u8; 45];
    buf[..p].copy_from_slice(&s[..p]);
    buf[p..s.len() - 1].copy_from_slice(&s[p + 1..]);
    let fixed = &buf[..s.len() - 1];
    // only when what follows is an embedded IPv4 address
    if !fixed.contains(&b'.') {
        return None;
    }
    core::str::from_utf8(fixed).ok()?.parse().ok()
}

/// Parse an IP address written bare or as an IPv6 reference (`[...]`), as in Via
/// `received` (RFC 3261 §18.2.1, RFC 5118 §4.5).
pub fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    if let Some(inner) = s.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) {
        return parse_ipv6(inner).map(IpAddr::V6);
    }
    if let Some(a) = parse_ipv4(s) {
        return Some(IpAddr::V4(a));
    }
    parse_ipv6(s).map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ok(s: &str) -> Uri<'_> {
        Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn err(s: &str) -> ErrorKind {
        Uri::parse(s.as_bytes()).expect_err(s).kind()
    }

    #[test]
    fn plain_sip() {
        let u = ok("sip:alice@atlanta.example.com:5070;transport=udp;lr?subject=x&h=");
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some(&b"alice"[..]));
        assert_eq!(u.host(), Some(Host::Name(b"atlanta.example.com")));
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.params().value(b"transport"), Some(&b"udp"[..]));
        assert!(u.is_loose_router());
        assert_eq!(u.headers(), Some(&b"subject=x&h="[..]));
        let u = ok("SIPS:ss2.biloxi.example.com");
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.user(), None);
        assert_eq!(u.port(), None);
    }

    #[test]
    fn unusual_user_and_password() {
        // RFC 4475 §3.1.1.2 intmeth
        let u = ok(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(u.user(), Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..]));
        assert_eq!(u.password(), Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..]));
        assert_eq!(u.host(), Some(Host::Name(b"example.com")));
        // RFC 4475 §3.1.1.9 semiuri
        let u = ok("sip:user;par=u%40example.net@example.com");
        let user: Vec<u8> = u.user_unescaped().unwrap().collect();
        assert_eq!(user, b"user;par=u@example.net");
        assert!(u.params().is_empty());
    }

    #[test]
    fn escapes_decoded_once() {
        // RFC 4475 §3.1.1.3 esc01
        let u = ok("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        let user: Vec<u8> = u.user_unescaped().unwrap().collect();
        assert_eq!(user, b"caller");
        let (n, v) = u.params().iter().nth(1).unwrap();
        assert!(params::eq_unescaped(n, b"name"));
        let v: Vec<u8> = params::unescape(v.unwrap()).collect();
        assert_eq!(v, b"value%41");
        let u = ok("sip:null-%00-null@example.com");
        assert_eq!(u.user_unescaped().unwrap().filter(|&b| b == 0).count(), 1);
        assert_eq!(err("sip:a%4@example.com"), ErrorKind::BadEscape);
        assert_eq!(err("sip:a%ZZ@example.com"), ErrorKind::BadEscape);
    }

    #[test]
    fn ipv6_hosts() {
        let u = ok("sip:[2001:db8::10]:5070");
        assert_eq!(u.host(), Some(Host::V6("2001:db8::10".parse().unwrap())));
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.host_bytes(), b"[2001:db8::10]");
        // RFC 5118 §4.3: the port is inside the brackets, so it is part of the address
        let u = ok("sip:[2001:db8::10:5070]");
        assert_eq!(u.host(), Some(Host::V6("2001:db8::10:5070".parse().unwrap())));
        assert_eq!(u.port(), None);
        // RFC 5118 §4.10: three colons tolerated
        let u = ok("sip:user@[2001:db8:::192.0.2.1]");
        assert_eq!(u.host(), Some(Host::V6("2001:db8::192.0.2.1".parse().unwrap())));
        let u = ok("sip:ted@[::ffff:192.0.2.2]");
        assert_eq!(u.host().unwrap().ip(), Some("::ffff:192.0.2.2".parse().unwrap()));
        // RFC 5118 §4.2: unbracketed IPv6 host
        assert_eq!(err("sip:2001:db8::10"), ErrorKind::BadHost);
        assert_eq!(err("sip:[2001:db8::10"), ErrorKind::BadIpv6);
        assert_eq!(err("sip:[2001:db8:::10]"), ErrorKind::BadIpv6);
        assert_eq!(err("sip:[1:2:3:4:5:6:7:8:9]"), ErrorKind::BadIpv6);
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(ok("sip:192.0.2.1:5060").host(), Some(Host::V4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(err("sip:192.0.2.256"), ErrorKind::BadHost);
        assert_eq!(err("sip:host:70000"), ErrorKind::BadPort);
        assert_eq!(err("sip:host:"), ErrorKind::BadPort);
        assert_eq!(err("sip:-bad.example.com"), ErrorKind::BadHost);
        assert_eq!(err("sip:a..b"), ErrorKind::BadHost);
        assert_eq!(err("sip:user@"), ErrorKind::MissingHost);
        assert_eq!(err("sip:@host"), ErrorKind::BadUser);
        assert_eq!(err("sip:us er@host"), ErrorKind::BadUser);
        assert_eq!(err("sip:host;;"), ErrorKind::EmptyParam);
        assert_eq!(err("sip:host x"), ErrorKind::UnexpectedChar);
        assert_eq!(err("sip:host?"), ErrorKind::EmptyParam);
        assert_eq!(err("sip:host?a"), ErrorKind::UnexpectedChar);
        assert!(ok("sip:host.example.com.").host().is_some());
    }

    #[test]
    fn other_schemes() {
        let u = ok("nobodyKnowsThisScheme:totallyopaquecontent");
        assert_eq!(u.scheme(), Scheme::Other);
        assert_eq!(u.opaque(), Some(&b"totallyopaquecontent"[..]));
        assert_eq!(ok("soap.beep://192.0.2.103:3002").scheme(), Scheme::Other);
        assert_eq!(ok("isbn:2983792873").scheme(), Scheme::Other);
        assert_eq!(ok("http://www.example.com").scheme(), Scheme::Other);
        assert_eq!(err("no-colon"), ErrorKind::BadScheme);
        assert_eq!(err(":x"), ErrorKind::BadScheme);
        assert_eq!(err("1abc:x"), ErrorKind::BadScheme);
        assert_eq!(err("http:a b"), ErrorKind::UnexpectedChar);
        assert_eq!(err("http:"), ErrorKind::EmptyValue);
    }

    #[test]
    fn tel_uris() {
        let u = ok("tel:+1-201-555-0123;ext=1234");
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some(&b"+1-201-555-0123"[..]));
        assert_eq!(u.params().value(b"ext"), Some(&b"1234"[..]));
        assert!(ok("tel:7042;phone-context=example.com").params().contains(b"phone-context"));
        assert_eq!(err("tel:"), ErrorKind::BadTelUri);
        assert_eq!(err("tel:+"), ErrorKind::BadTelUri);
        assert_eq!(err("tel:12 34"), ErrorKind::BadTelUri);
    }

    #[test]
    fn ipv4_literals() {
        assert_eq!(parse_ipv4(b"192.0.2.1"), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        for bad in
            ["256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "1234.1.1.1", "a.1.1.1", "", "1.2.3.4 "]
        {
            assert_eq!(parse_ipv4(bad.as_bytes()), None, "{bad}");
        }
        // an all-numeric host that is not an address is refused, not taken as a name
        assert_eq!(parse_host(b"10.0.0.256", 0).unwrap_err().kind(), ErrorKind::BadHost);
        assert_eq!(parse_host(b"1.2.3", 0).unwrap_err().kind(), ErrorKind::BadHost);
        assert_eq!(parse_host(b"a-.b", 0).unwrap_err().kind(), ErrorKind::BadHost);
        assert_eq!(parse_host(b"a.-b", 0).unwrap_err().kind(), ErrorKind::BadHost);
        assert_eq!(parse_host(b"ab-", 0).unwrap_err().kind(), ErrorKind::BadHost);
        assert_eq!(parse_host(b".", 0).unwrap_err().kind(), ErrorKind::BadHost);
        assert_eq!(parse_host(b"x_y.example.com:5060", 0).unwrap(), (Host::Name(b"x_y.example.com"), 15));
        assert_eq!(parse_host(b"3com.example.", 0).unwrap().1, 13);
    }

    #[test]
    fn received_ip_forms() {
        assert_eq!(parse_ip(b"[2001:db8::9:255]"), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(parse_ip(b"2001:db8::9:255"), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(parse_ip(b"192.0.2.200"), Some("192.0.2.200".parse().unwrap()));
        assert_eq!(parse_ip(b"example.com"), None);
    }
}
