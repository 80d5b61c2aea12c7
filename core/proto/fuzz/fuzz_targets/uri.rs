//! `Uri::parse`, `parse_host`, `parse_ip` on arbitrary bytes. Any panic is a finding.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use ringsip_proto::uri::{parse_host, parse_ip, parse_ipv4, parse_ipv6};
use ringsip_proto::{Host, Scheme, Uri};

/// Is `inner` a sub-slice of `outer` (by address)? Empty slices may point anywhere.
fn check_in(outer: &[u8], inner: &[u8], what: &str) {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    assert!(inner.is_empty() || (i.start >= o.start && i.end <= o.end), "{what}: slice not inside the input");
}

fn check_uri(data: &[u8], u: &Uri<'_>) {
    assert_eq!(u.as_bytes(), data);
    check_in(data, u.as_bytes(), "as_bytes");
    let scheme = u.scheme();
    assert_eq!(u.is_sip(), matches!(scheme, Scheme::Sip | Scheme::Sips));
    let colon = data.iter().position(|&b| b == b':').expect("a parsed URI has a colon");
    let name = &data[..colon];
    match scheme {
        Scheme::Sip => assert!(name.eq_ignore_ascii_case(b"sip")),
        Scheme::Sips => assert!(name.eq_ignore_ascii_case(b"sips")),
        Scheme::Tel => assert!(name.eq_ignore_ascii_case(b"tel")),
        Scheme::Other => assert!(!name.is_empty()),
    }
    if let Some(x) = u.user() {
        check_in(data, x, "user");
        assert!(!x.is_empty(), "empty user");
    }
    if let Some(it) = u.user_unescaped() {
        let n = it.count();
        assert!(n <= u.user().unwrap().len(), "unescaping grew the user");
    }
    if let Some(x) = u.password() {
        check_in(data, x, "password");
        assert!(u.user().is_some(), "password without user");
    }
    let hb = u.host_bytes();
    check_in(data, hb, "host_bytes");
    match u.host() {
        Some(h) => {
            assert!(u.is_sip(), "host on a non-SIP URI");
            assert!(!hb.is_empty());
            // host_bytes parses back to the same host
            let (h2, end) = parse_host(hb, 0).expect("host_bytes does not parse as a host");
            assert_eq!(end, hb.len());
            assert_eq!(h, h2);
            match h {
                Host::V6(a) => {
                    assert!(hb.starts_with(b"[") && hb.ends_with(b"]"));
                    assert_eq!(h.ip(), Some(IpAddr::V6(a)));
                }
                Host::V4(a) => assert_eq!(h.ip(), Some(IpAddr::V4(a))),
                Host::Name(n) => {
                    check_in(data, n, "host name");
                    assert!(h.ip().is_none());
                }
            }
        }
        None => assert!(!u.is_sip(), "SIP URI without host"),
    }
    if u.port().is_some() {
        assert!(u.is_sip());
    }
    let p = u.params();
    check_in(data, p.as_bytes(), "params");
    if !p.is_empty() {
        assert_eq!(p.as_bytes()[0], b';');
    }
    for (n, v) in p.iter() {
        check_in(data, n, "param name");
        if let Some(v) = v {
            check_in(data, v, "param value");
        }
    }
    let _ = p.get(b"transport");
    let _ = p.value(b"maddr");
    assert_eq!(u.is_loose_router(), p.contains(b"lr"));
    if let Some(hd) = u.headers() {
        check_in(data, hd, "headers");
        assert!(u.is_sip());
        assert!(!hd.is_empty());
    }
    match u.opaque() {
        Some(o) => {
            assert_eq!(scheme, Scheme::Other);
            check_in(data, o, "opaque");
            assert!(!o.is_empty());
            assert_eq!(o.len() + colon + 1, data.len());
        }
        None => assert_ne!(scheme, Scheme::Other),
    }
    // copy: parsing is a function of the bytes only
    let copy = data.to_vec();
    let u2 = Uri::parse(&copy).expect("copy does not parse");
    assert_eq!(u2.scheme(), scheme);
    assert_eq!(u2.user(), u.user());
    assert_eq!(u2.port(), u.port());
    assert_eq!(u2.host_bytes(), u.host_bytes());
}

fn check_ip(data: &[u8]) {
    if let Some(ip) = parse_ip(data) {
        // the address written back parses to itself
        let s = ip.to_string();
        assert_eq!(parse_ip(s.as_bytes()), Some(ip), "{s} does not parse back");
        if let IpAddr::V6(a) = ip {
            let b = format!("[{a}]");
            assert_eq!(parse_ip(b.as_bytes()), Some(ip));
        }
    }
    if let Some(a) = parse_ipv4(data) {
        assert_eq!(parse_ip(data), Some(IpAddr::V4(a)));
    }
    let _ = parse_ipv6(data);
}

fn check_host(data: &[u8], i: usize) {
    match parse_host(data, i) {
        Ok((h, end)) => {
            assert!(end > i && end <= data.len(), "host end out of range");
            if let Host::Name(n) = h {
                check_in(data, n, "host name");
                assert_eq!(n, &data[i..end]);
            }
            if let Host::V6(_) = h {
                assert_eq!(data[i], b'[');
                assert_eq!(data[end - 1], b']');
            }
        }
        Err(e) => assert!(e.offset() <= data.len() + 1, "error offset out of range"),
    }
}

fuzz_target!(|data: &[u8]| {
    match Uri::parse(data) {
        Ok(u) => check_uri(data, &u),
        Err(e) => assert!(e.offset() <= data.len(), "error offset {} past the input ({})", e.offset(), data.len()),
    }
    check_host(data, 0);
    if let Some(c) = data.iter().position(|&b| b == b':') {
        check_host(data, c + 1);
    }
    if let Some(at) = data.iter().position(|&b| b == b'@') {
        check_host(data, at + 1);
    }
    check_ip(data);
});
