//! Character classes of RFC 3261 §25.1 as one 256-entry table, and the small scanning
//! primitives every value parser shares (LWS, tokens, quoted strings, list splitting).
//!
//! Inside a header value the indexer has already checked that every CR LF is followed by
//! whitespace (a folded line, RFC 3261 §7.3.1), so value parsers treat CR and LF as plain
//! whitespace: `LWS = [*WSP CRLF] 1*WSP` collapses to "a run of SP, HTAB, CR, LF".

use crate::error::{Error, ErrorKind, Result};

/// `token` (RFC 3261 §25.1): alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
pub const TOKEN: u16 = 1 << 0;
/// `word`: token chars plus `( ) < > : \ " / [ ] ? { }`
pub const WORD: u16 = 1 << 1;
/// `unreserved` = alphanum / mark
pub const UNRESERVED: u16 = 1 << 2;
/// characters allowed unescaped in the user part: unreserved / user-unreserved
pub const USER: u16 = 1 << 3;
/// characters allowed unescaped in the password: unreserved / & = + $ ,
pub const PASSWORD: u16 = 1 << 4;
/// `paramchar` minus escapes: param-unreserved / unreserved
pub const PARAM: u16 = 1 << 5;
/// header name/value chars in a URI: hnv-unreserved / unreserved
pub const HNV: u16 = 1 << 6;
/// `uric` minus escapes: reserved / unreserved
pub const URIC: u16 = 1 << 7;
/// host name chars: alphanum / "-" / "."
pub const HOST: u16 = 1 << 8;
/// whitespace inside a value: SP, HTAB, CR, LF (folding already validated)
pub const WS: u16 = 1 << 9;
/// hexadecimal digit
pub const HEX: u16 = 1 << 10;
/// characters of a tel URI number and its params (RFC 3966, liberal)
pub const TEL: u16 = 1 << 11;
/// characters of a SIP URI's userinfo before `@`: [`USER`], [`PASSWORD`] and `:`
pub const USERINFO: u16 = 1 << 12;
/// a header parameter value without quotes: token chars plus `:`, `[`, `]` (a host, an
/// IPv6 reference, or a bare IPv6 `received`, RFC 5118 §4.5)
pub const GENVAL: u16 = 1 << 13;

const fn build() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut v = 0u16;
        let mark = matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')');
        let token = alnum || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        if token {
            v |= TOKEN | WORD | GENVAL;
        }
        if matches!(b, b':' | b'[' | b']') {
            v |= GENVAL;
        }
        if matches!(b, b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}') {
            v |= WORD;
        }
        let unreserved = alnum || mark;
        if unreserved {
            v |= UNRESERVED | USER | PASSWORD | PARAM | HNV | URIC;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            v |= USER;
        }
        if unreserved || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b':') {
            v |= USERINFO;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            v |= PASSWORD;
        }
        if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            v |= PARAM;
        }
        if matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            v |= HNV;
        }
        if matches!(b, b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b',') {
            v |= URIC;
        }
        if alnum || b == b'-' || b == b'.' {
            v |= HOST;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            v |= WS;
        }
        if b.is_ascii_hexdigit() {
            v |= HEX;
        }
        if b.is_ascii_hexdigit()
            || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#' | b'p' | b'w' | b'P' | b'W')
        {
            v |= TEL;
        }
        t[c] = v;
        c += 1;
    }
    t
}

/// Host-name byte classes for [`crate::uri::parse_host`]: 0 ends the host.
pub const H_DIGIT: u8 = 1;
/// A letter or `_`.
pub const H_ALPHA: u8 = 2;
/// `-`
pub const H_DASH: u8 = 4;
/// `.`
pub const H_DOT: u8 = 8;

const fn build_host() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            H_DIGIT
        } else if b.is_ascii_alphabetic() || b == b'_' {
            H_ALPHA
        } else if b == b'-' {
            H_DASH
        } else if b == b'.' {
            H_DOT
        } else {
            0
        };
        c += 1;
    }
    t
}

/// Host-name class table (see [`H_DIGIT`]).
pub static HOST_CLASS: [u8; 256] = build_host();

/// The class table.
pub static CLASS: [u16; 256] = build();

/// Does byte `b` belong to class `class`?
#[inline(always)]
pub fn is(b: u8, class: u16) -> bool {
    CLASS[b as usize] & class != 0
}

/// Is `b` whitespace inside a value (SP, HTAB, or a fold's CR/LF)?
#[inline(always)]
pub fn is_ws(b: u8) -> bool {
    is(b, WS)
}

/// Position of the first non-whitespace byte at or after `i`.
#[inline(always)]
pub fn skip_ws(s: &[u8], i: usize) -> usize {
    run(s, i, WS)
}

/// `s` without leading and trailing whitespace (SP, HTAB, CR, LF).
#[inline]
pub fn trim(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && is_ws(s[a]) {
        a += 1;
    }
    while b > a && is_ws(s[b - 1]) {
        b -= 1;
    }
    &s[a..b]
}

/// Offset of `inner` inside `outer` (both must be the same allocation).
#[inline]
pub fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

/// End of the run of bytes of `class` starting at `i`.
#[inline(always)]
pub fn run(s: &[u8], i: usize, class: u16) -> usize {
    match s.get(i..) {
        // iterator form: no per-byte bounds check, so LLVM can unroll the table lookups
        Some(rest) => i + rest.iter().position(|&b| !is(b, class)).unwrap_or(rest.len()),
        None => i,
    }
}

/// Parse a token at `i`; returns its end. Error if empty.
#[inline]
pub fn token(s: &[u8], i: usize) -> Result<usize> {
    let e = run(s, i, TOKEN);
    if e == i { Err(Error::value(ErrorKind::ExpectedToken, i)) } else { Ok(e) }
}

/// Is `s` a non-empty token?
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is(b, TOKEN))
}

/// `s[i]` is `"`: return the index just past the closing quote. Handles quoted-pairs
/// (`\` followed by any octet except CR and LF, RFC 3261 §25.1 quoted-pair).
pub fn quoted(s: &[u8], i: usize) -> Result<usize> {
    debug_assert_eq!(s.get(i), Some(&b'"'));
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'"' => return Ok(j + 1),
            b'\\' => {
                match s.get(j + 1) {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    Some(&c) if c != b'\r' && c != b'\n' && c < 0x80 => j += 2,
                    _ => return Err(Error::value(ErrorKind::UnexpectedChar, j)),
                }
            }
            // qdtext excludes control characters other than LWS
            c if c < 0x20 && c != b'\t' && c != b'\r' && c != b'\n' => {
                return Err(Error::value(ErrorKind::UnexpectedChar, j));
            }
            0x7f => return Err(Error::value(ErrorKind::UnexpectedChar, j)),
            _ => j += 1,
        }
    }
    Err(Error::value(ErrorKind::UnterminatedQuote, i))
}

/// Split a header value into its comma-separated elements, ignoring commas inside quoted
/// strings and angle brackets (RFC 3261 §7.3.1). Yields untrimmed slices.
#[derive(Clone, Debug)]
pub struct CommaSplit<'a> {
    s: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> CommaSplit<'a> {
    /// Split `s`.
    pub fn new(s: &'a [u8]) -> Self {
        CommaSplit { s, pos: 0, done: false }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    /// Element, or an error for an unterminated quote/angle.
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let s = self.s;
        let start = self.pos;
        let mut i = start;
        let mut angle = false;
        while i < s.len() {
            match s[i] {
                b'"' => match quoted(s, i) {
                    Ok(e) => {
                        i = e;
                        continue;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    self.pos = i + 1;
                    return Some(Ok(&s[start..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.done = true;
        if angle {
            return Some(Err(Error::value(ErrorKind::UnterminatedAngle, start)));
        }
        Some(Ok(&s[start..]))
    }
}

/// Parse a decimal number of at most `max` (inclusive) from all of `s`.
pub fn decimal(s: &[u8], max: u64) -> Result<u64> {
    if s.is_empty() {
        return Err(Error::value(ErrorKind::ExpectedNumber, 0));
    }
    let mut v: u64 = 0;
    for (i, &b) in s.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(Error::value(ErrorKind::ExpectedNumber, i));
        }
        v = match v.checked_mul(10).and_then(|v| v.checked_add((b - b'0') as u64)) {
            Some(v) if v <= max => v,
            _ => return Err(Error::value(ErrorKind::NumberOutOfRange, 0)),
        };
    }
    Ok(v)
}

/// Value of a hex digit.
#[inline]
pub fn hexval(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Check a run of URI characters of `class` (plus `%HH` escapes) over all of `s`.
pub fn check_escaped(s: &[u8], class: u16, err: ErrorKind) -> Result<()> {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            if i + 2 < s.len() && is(s[i + 1], HEX) && is(s[i + 2], HEX) {
                i += 3;
                continue;
            }
            return Err(Error::value(ErrorKind::BadEscape, i));
        }
        if !is(b, class) {
            return Err(Error::value(err, i));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(is(b'a', TOKEN) && is(b'~', TOKEN) && !is(b'(', TOKEN) && is(b'(', WORD));
        assert!(is(b'?', USER) && !is(b'@', USER) && !is(b':', USER));
        assert!(is(b':', PARAM) && !is(b';', PARAM) && !is(b'?', PARAM));
        assert!(is(b'\n', WS) && !is(b'x', WS));
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted(br#""abc" x"#, 0), Ok(5));
        assert_eq!(quoted(br#""a\"b""#, 0), Ok(6));
        assert_eq!(quoted(br#""J Rosenberg \\\"""#, 0), Ok(18));
        assert_eq!(quoted(b"\"NUL:\\\x00\"", 0), Ok(8));
        assert_eq!(quoted(br#""open"#, 0).unwrap_err().kind(), ErrorKind::UnterminatedQuote);
        assert_eq!(quoted(b"\"a\x01\"", 0).unwrap_err().kind(), ErrorKind::UnexpectedChar);
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Result<std::vec::Vec<&[u8]>> =
            CommaSplit::new(br#""Bell, A" <sip:a@b>;x=1, <sip:c,d@e>, sip:f"#).collect();
        let v = v.unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], br#""Bell, A" <sip:a@b>;x=1"#);
        assert_eq!(v[1], b" <sip:c,d@e>");
        assert_eq!(v[2], b" sip:f");
        let bad: std::vec::Vec<_> = CommaSplit::new(b"<sip:a, b").collect();
        assert!(bad[0].is_err());
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal(b"0068", 255), Ok(68));
        assert_eq!(decimal(b"256", 255).unwrap_err().kind(), ErrorKind::NumberOutOfRange);
        assert_eq!(decimal(b"99999999999999999999999999", u64::MAX).unwrap_err().kind(), ErrorKind::NumberOutOfRange);
        assert_eq!(decimal(b"", 9).unwrap_err().kind(), ErrorKind::ExpectedNumber);
        assert_eq!(decimal(b"-1", 9).unwrap_err().kind(), ErrorKind::ExpectedNumber);
    }

    #[test]
    fn escapes() {
        assert!(check_escaped(b"a%20b", USER, ErrorKind::BadUser).is_ok());
        assert_eq!(check_escaped(b"a%2", USER, ErrorKind::BadUser).unwrap_err().kind(), ErrorKind::BadEscape);
        assert_eq!(check_escaped(b"a%zz", USER, ErrorKind::BadEscape).unwrap_err().kind(), ErrorKind::BadEscape);
        assert_eq!(check_escaped(b"a b", USER, ErrorKind::BadUser).unwrap_err().kind(), ErrorKind::BadUser);
    }
}
