//! `name-addr` / `addr-spec` values with header parameters: From, To, Contact, Route,
//! Record-Route, Path, Reply-To, Refer-To… (RFC 3261 §20.10, §25.1).

use crate::chars::{self, TOKEN, is, is_ws, skip_ws};
use crate::error::{Error, ErrorKind, Result};
use crate::params::{self, Params, Unquote};
use crate::uri::Uri;

/// An address with optional display name and header parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display: Option<&'a [u8]>,
    uri: Uri<'a>,
    bracketed: bool,
    params: Params<'a>,
    /// The first `tag` parameter's value, picked out while the parameters are scanned:
    /// proxies read it several times per message (loop check, branch, stickiness).
    tag: Option<&'a [u8]>,
}

/// A parameter callback that keeps the first `tag` (`Some(None)` when it has no value).
fn pick_tag<'a, 't>(
    tag: &'t mut Option<Option<&'a [u8]>>,
) -> impl FnMut(&'a [u8], Option<&'a [u8]>, usize) -> Result<()> + 't {
    move |name, value, _| {
        if tag.is_none() && name.eq_ignore_ascii_case(b"tag") {
            *tag = Some(value);
        }
        Ok(())
    }
}

impl<'a> NameAddr<'a> {
    /// Parse one element (`name-addr` or `addr-spec`, then `*(;param)`) that is all of `s`.
    /// Leading and trailing whitespace is ignored.
    pub fn parse(s: &'a [u8]) -> Result<NameAddr<'a>> {
        Self::whole(s, false)
    }

    /// Parse one element that must be a `name-addr` (`<uri>`), as Route, Record-Route and
    /// Path require (RFC 3261 §20.30, §20.34; RFC 3327).
    pub fn parse_bracketed(s: &'a [u8]) -> Result<NameAddr<'a>> {
        Self::whole(s, true)
    }

    fn whole(s: &'a [u8], need_brackets: bool) -> Result<NameAddr<'a>> {
        let (a, end) = Self::parse_inner(s, need_brackets, false)?;
        debug_assert_eq!(end, s.len());
        Ok(a)
    }

    /// Parse the list element at the start of `s` and stop at the `,` that ends it (or at
    /// the end of `s`); returns the index where parsing stopped.
    pub fn parse_prefix(s: &'a [u8], need_brackets: bool) -> Result<(NameAddr<'a>, usize)> {
        Self::parse_inner(s, need_brackets, true)
    }

    fn parse_inner(s: &'a [u8], need_brackets: bool, list: bool) -> Result<(NameAddr<'a>, usize)> {
        let i = skip_ws(s, 0);
        if i == s.len() || (list && s[i] == b',') {
            return Err(Error::value(ErrorKind::EmptyValue, i));
        }
        // display-name = *(token LWS) / quoted-string, then optional LWS, then "<"
        let mut display = None;
        let mut j = i;
        if s[i] == b'"' {
            j = chars::quoted(s, i)?;
            display = Some(&s[i..j]);
            j = skip_ws(s, j);
            if j >= s.len() || s[j] != b'<' {
                return Err(Error::value(ErrorKind::BadNameAddr, j));
            }
        } else if s[i] != b'<' {
            // tokens separated by LWS up to '<' (RFC 4475 §3.1.1.6 lwsdisp: no LWS before
            // '<' is accepted), or the start of an addr-spec
            let mut k = i;
            let mut last_end = i;
            while k < s.len() && (is(s[k], TOKEN) || is_ws(s[k])) {
                if !is_ws(s[k]) {
                    last_end = k + 1;
                }
                k += 1;
            }
            if k < s.len() && s[k] == b'<' {
                display = Some(&s[i..last_end]);
                j = k;
            }
        }
        if j < s.len() && s[j] == b'<' {
            let open = j;
            let close = match memchr::memchr(b'>', &s[open..]) {
                Some(c) => open + c,
                None => return Err(Error::value(ErrorKind::UnterminatedAngle, open)),
            };
            let inner = &s[open + 1..close];
            if inner.first().is_some_and(|&b| is_ws(b)) || inner.last().is_some_and(|&b| is_ws(b)) {
                // RFC 4475 §3.1.2.13 badaspec: no LWS inside <> (whitespace further in
                // fails the URI grammar anyway)
                return Err(Error::value(ErrorKind::BadNameAddr, open + 1));
            }
            let uri = Uri::parse(inner).map_err(|e| e.shifted(open + 1))?;
            let mut tag = None;
            let (params, end) = params::scan_header_params(s, close + 1, list, pick_tag(&mut tag))?;
            return Ok((NameAddr { display, uri, bracketed: true, params, tag: tag.flatten() }, end));
        }
        if need_brackets {
            return Err(Error::value(ErrorKind::BadNameAddr, i));
        }
        // addr-spec: the URI ends at the first ';' or whitespace (or ',' in a list); what
        // follows are header parameters. ',', '?' (and ';') in the URI need brackets
        // (RFC 3261 §20).
        let mut e = i;
        while e < s.len() && s[e] != b';' && !is_ws(s[e]) && !(list && s[e] == b',') {
            e += 1;
        }
        let raw = &s[i..e];
        if let Some(p) = raw.iter().position(|&b| b == b',' || b == b'?') {
            return Err(Error::value(ErrorKind::UnbracketedUriSpecials, i + p));
        }
        let uri = Uri::parse(raw).map_err(|e| e.shifted(i))?;
        let mut tag = None;
        let (params, end) = params::scan_header_params(s, e, list, pick_tag(&mut tag))?;
        Ok((NameAddr { display: None, uri, bracketed: false, params, tag: tag.flatten() }, end))
    }

    /// The display name as written (quoted strings keep their quotes).
    pub fn display_name(&self) -> Option<&'a [u8]> {
        self.display
    }

    /// The display name without quotes, quoted-pairs resolved.
    pub fn display_name_unquoted(&self) -> Option<Unquote<'a>> {
        self.display.map(params::unquote)
    }

    /// The URI.
    pub fn uri(&self) -> &Uri<'a> {
        &self.uri
    }

    /// Was the URI written in `<>`?
    pub fn is_bracketed(&self) -> bool {
        self.bracketed
    }

    /// Header parameters after the address (`;tag=…`, `;expires=…`, `;q=…`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Host;
    use std::vec::Vec;

    fn ok(s: &str) -> NameAddr<'_> {
        NameAddr::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn err(s: &str) -> ErrorKind {
        NameAddr::parse(s.as_bytes()).expect_err(s).kind()
    }

    #[test]
    fn forms() {
        let a = ok("Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl");
        assert_eq!(a.display_name(), Some(&b"Alice"[..]));
        assert_eq!(a.tag(), Some(&b"9fxced76sl"[..]));
        assert!(a.is_bracketed());
        let a = ok(" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(a.display_name(), None);
        assert_eq!(a.tag(), Some(&b"1918181833n"[..]));
        assert_eq!(a.uri().host(), Some(Host::Name(b"chair-dnrc.example.com")));
        let a = ok("caller<sip:caller@example.com>;tag=323");
        assert_eq!(a.display_name(), Some(&b"caller"[..]));
        let a = ok("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.");
        assert_eq!(a.display_name(), Some(&b"token1~` token2'+_ token3*%!.-"[..]));
        assert_eq!(a.tag(), Some(&b"_token~1'+`*%!-."[..]));
        let a = ok("<sip:a@b>");
        assert_eq!(a.display_name(), None);
    }

    #[test]
    fn quoted_display_names() {
        let a = ok(r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#);
        let d: Vec<u8> = a.display_name_unquoted().unwrap().collect();
        assert_eq!(d, br#"J Rosenberg \""#);
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
        let a = NameAddr::parse(b"\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:x@example.com>").unwrap();
        let d: Vec<u8> = a.display_name_unquoted().unwrap().collect();
        assert_eq!(d, b"BEL:\x07 NUL:\x00 DEL:\x7f");
        let a = ok(r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33"#);
        assert_eq!(a.params().value(b"q"), Some(&b"0.33"[..]));
        assert_eq!(a.params().get(b"secondparam"), Some(None));
    }

    #[test]
    fn errors() {
        assert_eq!(err(r#""Mr. J. User <sip:j.user@example.com>"#), ErrorKind::UnterminatedQuote);
        assert_eq!(err(r#""Watson, Thomas" < sip:t.watson@example.org >"#), ErrorKind::BadNameAddr);
        assert_eq!(err("Bell, Alexander <sip:a.g.bell@example.com>;tag=43"), ErrorKind::UnbracketedUriSpecials);
        assert_eq!(err("sip:user@example.com?Route=%3Csip:sip.example.com%3E"), ErrorKind::UnbracketedUriSpecials);
        assert_eq!(err(r#""Joe" <sip:joe@example.org>;;;;"#), ErrorKind::EmptyParam);
        assert_eq!(err("<sip:a@b"), ErrorKind::UnterminatedAngle);
        assert_eq!(err("  "), ErrorKind::EmptyValue);
        assert_eq!(err(r#""x" sip:a@b"#), ErrorKind::BadNameAddr);
        assert_eq!(err("<sip:a@b> junk"), ErrorKind::TrailingGarbage);
        assert_eq!(NameAddr::parse_bracketed(b"sip:ss1.example.com;lr").unwrap_err().kind(), ErrorKind::BadNameAddr);
    }

    #[test]
    fn addr_spec_params_belong_to_header() {
        let a = ok("sip:+19725552222@gw1.example.net;unknownparam");
        assert!(a.uri().params().is_empty());
        assert!(a.params().contains(b"unknownparam"));
        let a = ok("<sip:+19725552222@gw1.example.net;unknownparam>");
        assert!(a.uri().params().contains(b"unknownparam"));
        assert!(a.params().is_empty());
        let a = ok("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>");
        assert_eq!(a.uri().headers(), Some(&b"Route=%3Csip:sip.example.com%3E"[..]));
        let a = ok("isbn:2983792873");
        assert!(a.uri().opaque().is_some());
    }
}
