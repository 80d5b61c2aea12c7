//! `;name[=value]` parameter lists, for URIs (RFC 3261 §19.1.1) and headers (generic-param,
//! §25.1), plus the escaping and quoting helpers that go with them.

use crate::chars::{self, HEX, PARAM, TOKEN, is, skip_ws};
use crate::error::{Error, ErrorKind, Result};

/// A parameter list as it appears on the wire, starting at its first `;` (empty when there
/// are no parameters). Iterating it yields `(name, value)` pairs with whitespace around `;`
/// and `=` removed; quoted values keep their quotes (see [`unquote`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// No parameters.
    pub const EMPTY: Params<'static> = Params { raw: b"" };

    /// Wrap an already validated raw list (starting with `;`, or empty).
    pub(crate) fn from_raw(raw: &'a [u8]) -> Self {
        Params { raw }
    }

    /// The raw bytes, from the first `;` to the end of the list.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterate over `(name, value)` pairs.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { s: self.raw, i: 0 }
    }

    /// Look a parameter up by name, case-insensitively (RFC 3261 §19.1.4, §7.3.1).
    /// `None`: absent. `Some(None)`: present without a value. `Some(Some(v))`: `name=v`.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The value of `name`, if present with a value.
    pub fn value(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.get(name).flatten()
    }

    /// Is `name` present (with or without a value)?
    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }
}

/// Iterator over a [`Params`] list.
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        // find the next ';'
        while self.i < s.len() && s[self.i] != b';' {
            self.i += 1;
        }
        if self.i >= s.len() {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        let mut eq = None;
        while j < s.len() && s[j] != b';' {
            match s[j] {
                b'"' => {
                    j = chars::quoted(s, j).unwrap_or(s.len());
                    continue;
                }
                b'=' if eq.is_none() => eq = Some(j),
                _ => {}
            }
            j += 1;
        }
        self.i = j;
        Some(match eq {
            Some(e) => (chars::trim(&s[start..e]), Some(chars::trim(&s[e + 1..j]))),
            None => (chars::trim(&s[start..j]), None),
        })
    }
}

/// Validate URI parameters `s[i..end]` (each `;pname[=pvalue]`, paramchar or escapes, no
/// whitespace). Returns `end` on success.
pub(crate) fn check_uri_params(s: &[u8], mut i: usize, end: usize) -> Result<usize> {
    while i < end {
        if s[i] != b';' {
            return Err(Error::value(ErrorKind::UnexpectedChar, i));
        }
        i += 1;
        let n = escaped_run(s, i, end, PARAM)?;
        if n == i {
            return Err(Error::value(ErrorKind::EmptyParam, i));
        }
        i = n;
        if i < end && s[i] == b'=' {
            let v = escaped_run(s, i + 1, end, PARAM)?;
            if v == i + 1 {
                return Err(Error::value(ErrorKind::EmptyParamValue, i));
            }
            i = v;
        }
    }
    Ok(end)
}

/// Validate URI parameters from `s[i]` (each `;pname[=pvalue]`, paramchar or escapes, no
/// whitespace) up to a `?` or the end of `s`; returns where they end.
#[inline]
pub(crate) fn scan_uri_params(s: &[u8], mut i: usize) -> Result<usize> {
    while i < s.len() {
        match s[i] {
            b';' => {}
            b'?' => return Ok(i),
            _ => return Err(Error::value(ErrorKind::UnexpectedChar, i)),
        }
        i += 1;
        let n = escaped_run(s, i, s.len(), PARAM)?;
        if n == i {
            return Err(Error::value(ErrorKind::EmptyParam, i));
        }
        i = n;
        if i < s.len() && s[i] == b'=' {
            let v = escaped_run(s, i + 1, s.len(), PARAM)?;
            if v == i + 1 {
                return Err(Error::value(ErrorKind::EmptyParamValue, i));
            }
            i = v;
        }
    }
    Ok(i)
}

/// End of a run of `class` characters or `%HH` escapes starting at `i`, before `end`.
pub(crate) fn escaped_run(s: &[u8], mut i: usize, end: usize, class: u16) -> Result<usize> {
    while i < end {
        let b = s[i];
        if b == b'%' {
            if i + 2 < end && is(s[i + 1], HEX) && is(s[i + 2], HEX) {
                i += 3;
                continue;
            }
            return Err(Error::value(ErrorKind::BadEscape, i));
        }
        if !is(b, class) {
            break;
        }
        i += 1;
    }
    Ok(i)
}

/// Parse and validate header parameters (`*( SEMI generic-param )`, RFC 3261 §25.1) in
/// `s[i..]`, allowing LWS around `;` and `=`. A value is a token, a host (IPv6 references
/// included, and bare IPv6 addresses for `received`, RFC 5118 §4.5) or a quoted string.
/// The whole of `s[i..]` must be consumed.
pub fn parse_header_params(s: &[u8], i: usize) -> Result<Params<'_>> {
    scan_header_params(s, i, false, |_, _, _| Ok(())).map(|(p, _)| p)
}

/// The one header-parameter scanner: validates `*( SEMI generic-param )` from `s[i..]`,
/// calls `f(name, value, name_offset)` for each parameter, and stops at the end of `s` or,
/// when `list` is set, at a `,` that ends this list element. Returns the parameters and the
/// index where scanning stopped (`s.len()` or the `,`).
#[inline]
pub(crate) fn scan_header_params<'a, F>(s: &'a [u8], i: usize, list: bool, mut f: F) -> Result<(Params<'a>, usize)>
where
    F: FnMut(&'a [u8], Option<&'a [u8]>, usize) -> Result<()>,
{
    let start = skip_ws(s, i);
    let mut i = start;
    let mut last = start;
    while i < s.len() {
        match s[i] {
            b';' => {}
            b',' if list => break,
            _ => return Err(Error::value(ErrorKind::TrailingGarbage, i)),
        }
        i = skip_ws(s, i + 1);
        let n = chars::run(s, i, TOKEN);
        if n == i {
            return Err(Error::value(ErrorKind::EmptyParam, i));
        }
        let name = &s[i..n];
        let name_at = i;
        let mut end = n;
        let mut value = None;
        i = skip_ws(s, n);
        if i < s.len() && s[i] == b'=' {
            i = skip_ws(s, i + 1);
            let v = if i < s.len() && s[i] == b'"' { chars::quoted(s, i)? } else { gen_value_end(s, i) };
            if v == i {
                return Err(Error::value(ErrorKind::EmptyParamValue, i));
            }
            value = Some(&s[i..v]);
            end = v;
            i = skip_ws(s, v);
        }
        f(name, value, name_at)?;
        last = end;
    }
    Ok((Params::from_raw(&s[start..last]), i))
}

fn gen_value_end(s: &[u8], i: usize) -> usize {
    chars::run(s, i, chars::GENVAL)
}

/// Decode `%HH` escapes exactly once (RFC 3261 §19.1.4): `v%61lue%25%34%31` yields
/// `value%41`. Invalid escapes are passed through unchanged (validation rejects them first).
pub fn unescape(raw: &[u8]) -> Unescape<'_> {
    Unescape { s: raw, i: 0 }
}

/// Iterator returned by [`unescape`].
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    s: &'a [u8],
    i: usize,
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let s = self.s;
        let b = *s.get(self.i)?;
        if b == b'%' && self.i + 2 < s.len() && is(s[self.i + 1], HEX) && is(s[self.i + 2], HEX) {
            self.i += 3;
            return Some(chars::hexval(s[self.i - 2]) << 4 | chars::hexval(s[self.i - 1]));
        }
        self.i += 1;
        Some(b)
    }
}

/// Compare two escaped strings after decoding each once (RFC 3261 §19.1.4), case-sensitively.
pub fn eq_unescaped(a: &[u8], b: &[u8]) -> bool {
    unescape(a).eq(unescape(b))
}

/// The content of a quoted string (`"..."`) with quoted-pairs resolved; other values pass
/// through unchanged.
pub fn unquote(raw: &[u8]) -> Unquote<'_> {
    if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
        Unquote { s: &raw[1..raw.len() - 1], i: 0, quoted: true }
    } else {
        Unquote { s: raw, i: 0, quoted: false }
    }
}

/// Iterator returned by [`unquote`].
#[derive(Clone, Debug)]
pub struct Unquote<'a> {
    s: &'a [u8],
    i: usize,
    quoted: bool,
}

impl Iterator for Unquote<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.s.get(self.i)?;
        if self.quoted && b == b'\\' {
            if let Some(&c) = self.s.get(self.i + 1) {
                self.i += 2;
                return Some(c);
            }
        }
        self.i += 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn header_params_with_lws_and_quotes() {
        let s = b" ;   tag    = 1918181833n ; x=\"a;b\" ;lr";
        let p = parse_header_params(s, 0).unwrap();
        assert_eq!(p.value(b"TAG"), Some(&b"1918181833n"[..]));
        assert_eq!(p.value(b"x"), Some(&b"\"a;b\""[..]));
        assert_eq!(p.get(b"lr"), Some(None));
        assert_eq!(p.get(b"nope"), None);
        assert_eq!(p.iter().count(), 3);
    }

    #[test]
    fn header_params_folded_lines() {
        let s = b" ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33";
        let p = parse_header_params(s, 0).unwrap();
        let v: Vec<_> = p.iter().collect();
        assert_eq!(v, [(&b"newparam"[..], Some(&b"newvalue"[..])), (b"secondparam", None), (b"q", Some(b"0.33"))]);
    }

    #[test]
    fn header_params_errors() {
        let e = |s: &[u8]| parse_header_params(s, 0).unwrap_err().kind();
        assert_eq!(e(b";;;;"), ErrorKind::EmptyParam);
        assert_eq!(e(b";a="), ErrorKind::EmptyParamValue);
        assert_eq!(e(b";a=\"open"), ErrorKind::UnterminatedQuote);
        assert_eq!(e(b" junk"), ErrorKind::TrailingGarbage);
        assert_eq!(e(b";a=b c"), ErrorKind::TrailingGarbage);
        assert!(parse_header_params(b"", 0).unwrap().is_empty());
        assert!(parse_header_params(b"  ", 0).unwrap().is_empty());
        // bare IPv6 received (RFC 5118 §4.5)
        let p = parse_header_params(b";received=2001:db8::9:255;branch=z9hG4bKas3", 0).unwrap();
        assert_eq!(p.value(b"received"), Some(&b"2001:db8::9:255"[..]));
    }

    #[test]
    fn uri_params() {
        let s = b";lr;unknownwith=value;unknown-no-value";
        assert_eq!(check_uri_params(s, 0, s.len()), Ok(s.len()));
        let s = b";%6C%72;n%61me=v%61lue%25%34%31";
        assert_eq!(check_uri_params(s, 0, s.len()), Ok(s.len()));
        let s = b";;";
        assert_eq!(check_uri_params(s, 0, s.len()).unwrap_err().kind(), ErrorKind::EmptyParam);
        let s = b";a=";
        assert_eq!(check_uri_params(s, 0, s.len()).unwrap_err().kind(), ErrorKind::EmptyParamValue);
        let s = b"; lr";
        assert_eq!(check_uri_params(s, 0, s.len()).unwrap_err().kind(), ErrorKind::EmptyParam);
    }

    #[test]
    fn unescape_exactly_once() {
        let v: Vec<u8> = unescape(b"v%61lue%25%34%31").collect();
        assert_eq!(v, b"value%41");
        let v: Vec<u8> = unescape(b"null-%00-null").collect();
        assert_eq!(v, b"null-\0-null");
        assert!(eq_unescaped(b"%75se%72", b"user"));
        assert!(!eq_unescaped(b"%75se%72", b"USER"));
        let v: Vec<u8> = unescape(b"50%").collect();
        assert_eq!(v, b"50%");
    }

    #[test]
    fn unquote_pairs() {
        let v: Vec<u8> = unquote(br#""J Rosenberg \\\"""#).collect();
        assert_eq!(v, br#"J Rosenberg \""#);
        let v: Vec<u8> = unquote(b"token").collect();
        assert_eq!(v, b"token");
    }
}
