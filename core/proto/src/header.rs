//! Header names: case-insensitive lookup of long and compact forms in one hash probe.
//!
//! Compact forms are those of RFC 3261 §7.3.3 and the IANA "Header Fields" registry
//! (a, b, c, d, e, f, i, j, k, l, m, n, o, r, s, t, u, v, x, y). Every compact form maps to
//! its long form, so `v:` and `Via:` are the same [`HeaderName::Via`].

macro_rules! headers {
    ($( $(#[$doc:meta])* $var:ident = $name:literal, compact: $compact:expr, kind: $kind:ident; )*) => {
        /// A header name known to ringsip. Extension headers are [`HeaderName::Other`]: their
        /// values are indexed and forwarded untouched, never parsed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum HeaderName {
            $( $(#[$doc])* $var, )*
            /// Any header not listed above.
            Other,
        }

        /// Every known header, in declaration order (excludes [`HeaderName::Other`]).
        pub const ALL: &[HeaderName] = &[ $( HeaderName::$var, )* ];

        const NAMES: &[&str] = &[ $( $name, )* ];
        const COMPACT: &[u8] = &[ $( $compact, )* ];
        const KINDS: &[Kind] = &[ $( Kind::$kind, )* ];
    };
}

/// How many values a header may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Exactly one value, in one header line (a second line is an error).
    Single,
    /// A comma-separated list; may also repeat over several lines (RFC 3261 §7.3.1).
    List,
    /// May repeat over several lines, but each line is one value that may contain commas
    /// (credentials, challenges, dates, free text).
    Repeat,
}

headers! {
    /// `Accept` (RFC 3261 §20.1)
    Accept = "Accept", compact: 0, kind: List;
    /// `Accept-Contact` (RFC 3841), compact `a`
    AcceptContact = "Accept-Contact", compact: b'a', kind: List;
    /// `Accept-Encoding`
    AcceptEncoding = "Accept-Encoding", compact: 0, kind: List;
    /// `Accept-Language`
    AcceptLanguage = "Accept-Language", compact: 0, kind: List;
    /// `Alert-Info`
    AlertInfo = "Alert-Info", compact: 0, kind: List;
    /// `Allow`
    Allow = "Allow", compact: 0, kind: List;
    /// `Allow-Events` (RFC 6665), compact `u`
    AllowEvents = "Allow-Events", compact: b'u', kind: List;
    /// `Authentication-Info`
    AuthenticationInfo = "Authentication-Info", compact: 0, kind: Single;
    /// `Authorization` (RFC 3261 §20.7)
    Authorization = "Authorization", compact: 0, kind: Repeat;
    /// `Call-ID`, compact `i`
    CallId = "Call-ID", compact: b'i', kind: Single;
    /// `Call-Info`
    CallInfo = "Call-Info", compact: 0, kind: List;
    /// `Contact`, compact `m`
    Contact = "Contact", compact: b'm', kind: List;
    /// `Content-Disposition`
    ContentDisposition = "Content-Disposition", compact: 0, kind: Single;
    /// `Content-Encoding`, compact `e`
    ContentEncoding = "Content-Encoding", compact: b'e', kind: List;
    /// `Content-Language`
    ContentLanguage = "Content-Language", compact: 0, kind: List;
    /// `Content-Length`, compact `l`
    ContentLength = "Content-Length", compact: b'l', kind: Single;
    /// `Content-Type`, compact `c`
    ContentType = "Content-Type", compact: b'c', kind: Single;
    /// `CSeq`
    CSeq = "CSeq", compact: 0, kind: Single;
    /// `Date`
    Date = "Date", compact: 0, kind: Single;
    /// `Diversion` (RFC 5806)
    Diversion = "Diversion", compact: 0, kind: List;
    /// `Error-Info`
    ErrorInfo = "Error-Info", compact: 0, kind: List;
    /// `Event` (RFC 6665), compact `o`
    Event = "Event", compact: b'o', kind: Single;
    /// `Expires`
    Expires = "Expires", compact: 0, kind: Single;
    /// `From`, compact `f`
    From = "From", compact: b'f', kind: Single;
    /// `History-Info` (RFC 7044)
    HistoryInfo = "History-Info", compact: 0, kind: List;
    /// `Identity` (RFC 8224), compact `y`
    Identity = "Identity", compact: b'y', kind: Repeat;
    /// `Identity-Info` (RFC 4474, obsolete), compact `n`
    IdentityInfo = "Identity-Info", compact: b'n', kind: Single;
    /// `In-Reply-To`
    InReplyTo = "In-Reply-To", compact: 0, kind: List;
    /// `Max-Forwards`
    MaxForwards = "Max-Forwards", compact: 0, kind: Single;
    /// `MIME-Version`
    MimeVersion = "MIME-Version", compact: 0, kind: Single;
    /// `Min-Expires`
    MinExpires = "Min-Expires", compact: 0, kind: Single;
    /// `Min-SE` (RFC 4028)
    MinSe = "Min-SE", compact: 0, kind: Single;
    /// `Organization`
    Organization = "Organization", compact: 0, kind: Single;
    /// `P-Asserted-Identity` (RFC 3325)
    PAssertedIdentity = "P-Asserted-Identity", compact: 0, kind: List;
    /// `P-Preferred-Identity` (RFC 3325)
    PPreferredIdentity = "P-Preferred-Identity", compact: 0, kind: List;
    /// `Path` (RFC 3327)
    Path = "Path", compact: 0, kind: List;
    /// `Priority`
    Priority = "Priority", compact: 0, kind: Single;
    /// `Privacy` (RFC 3323)
    Privacy = "Privacy", compact: 0, kind: Single;
    /// `Proxy-Authenticate`
    ProxyAuthenticate = "Proxy-Authenticate", compact: 0, kind: Repeat;
    /// `Proxy-Authorization`
    ProxyAuthorization = "Proxy-Authorization", compact: 0, kind: Repeat;
    /// `Proxy-Require`
    ProxyRequire = "Proxy-Require", compact: 0, kind: List;
    /// `RAck` (RFC 3262)
    RAck = "RAck", compact: 0, kind: Single;
    /// `Reason` (RFC 3326)
    Reason = "Reason", compact: 0, kind: List;
    /// `Record-Route`
    RecordRoute = "Record-Route", compact: 0, kind: List;
    /// `Refer-To` (RFC 3515), compact `r`
    ReferTo = "Refer-To", compact: b'r', kind: Single;
    /// `Referred-By` (RFC 3892), compact `b`
    ReferredBy = "Referred-By", compact: b'b', kind: Single;
    /// `Reject-Contact` (RFC 3841), compact `j`
    RejectContact = "Reject-Contact", compact: b'j', kind: List;
    /// `Replaces` (RFC 3891)
    Replaces = "Replaces", compact: 0, kind: Single;
    /// `Reply-To`
    ReplyTo = "Reply-To", compact: 0, kind: Single;
    /// `Request-Disposition` (RFC 3841), compact `d`
    RequestDisposition = "Request-Disposition", compact: b'd', kind: List;
    /// `Require`
    Require = "Require", compact: 0, kind: List;
    /// `Retry-After`
    RetryAfter = "Retry-After", compact: 0, kind: Single;
    /// `Route`
    Route = "Route", compact: 0, kind: List;
    /// `RSeq` (RFC 3262)
    RSeq = "RSeq", compact: 0, kind: Single;
    /// `Server`
    Server = "Server", compact: 0, kind: Single;
    /// `Service-Route` (RFC 3608)
    ServiceRoute = "Service-Route", compact: 0, kind: List;
    /// `Session-Expires` (RFC 4028), compact `x`
    SessionExpires = "Session-Expires", compact: b'x', kind: Single;
    /// `Subject`, compact `s`
    Subject = "Subject", compact: b's', kind: Single;
    /// `Subscription-State` (RFC 6665)
    SubscriptionState = "Subscription-State", compact: 0, kind: Single;
    /// `Supported`, compact `k`
    Supported = "Supported", compact: b'k', kind: List;
    /// `Timestamp`
    Timestamp = "Timestamp", compact: 0, kind: Single;
    /// `To`, compact `t`
    To = "To", compact: b't', kind: Single;
    /// `Unsupported`
    Unsupported = "Unsupported", compact: 0, kind: List;
    /// `User-Agent`
    UserAgent = "User-Agent", compact: 0, kind: Single;
    /// `Via`, compact `v`
    Via = "Via", compact: b'v', kind: List;
    /// `Warning`
    Warning = "Warning", compact: 0, kind: List;
    /// `WWW-Authenticate`
    WwwAuthenticate = "WWW-Authenticate", compact: 0, kind: Repeat;
}

/// Number of known header names (the discriminant of [`HeaderName::Other`]).
pub const KNOWN: usize = HeaderName::Other as usize;

const TABLE_BITS: u32 = 8;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const EMPTY: u8 = 0xff;
const LOWER: u64 = 0x2020_2020_2020_2020;

/// A name as up to three little-endian words (ASCII letters lowercased by or-ing 0x20):
/// bytes `0..8` (zero-padded when shorter), the last eight bytes, and bytes `8..16`.
/// Or-ing 0x20 maps each letter to its lowercase form and leaves digits, `-`, `.`, `!`,
/// `%`, `*`, `+`, `'`, `` ` `` and `~` unchanged; on token bytes (which exclude every byte
/// whose or-with-0x20 equals a byte of the known names without being the same letter) the
/// comparison is therefore exact. Callers guarantee token input.
#[derive(Clone, Copy)]
struct Key {
    len: usize,
    w0: u64,
    wt: u64,
    w1: u64,
}

#[inline(always)]
const fn load_le(s: &[u8], at: usize, n: usize) -> u64 {
    // n <= 8 bytes from s[at..at+n], little-endian, zero-padded
    let mut v = 0u64;
    let mut i = 0;
    while i < n {
        v |= (s[at + i] as u64) << (8 * i);
        i += 1;
    }
    v
}

#[inline(always)]
fn load8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn load_short(s: &[u8]) -> u64 {
    // 2..=7 bytes without a loop: two overlapping loads or-ed together
    let n = s.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]) as u64;
        lo | (hi << (8 * (n - 4)))
    } else {
        let lo = u16::from_le_bytes([s[0], s[1]]) as u64;
        let hi = u16::from_le_bytes([s[n - 2], s[n - 1]]) as u64;
        lo | (hi << (8 * (n - 2)))
    }
}

const fn mask(n: usize) -> u64 {
    if n >= 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 }
}

impl Key {
    const fn of_const(name: &[u8]) -> Key {
        let n = name.len();
        let w0 = load_le(name, 0, if n < 8 { n } else { 8 }) | (LOWER & mask(n));
        let wt = if n > 8 { load_le(name, n - 8, 8) | LOWER } else { 0 };
        let w1 = if n > 16 { load_le(name, 8, 8) | LOWER } else { 0 };
        Key { len: n, w0, wt, w1 }
    }

    #[inline(always)]
    fn of(name: &[u8]) -> Key {
        let n = name.len();
        if n >= 8 {
            let w0 = load8(name, 0) | LOWER;
            let wt = if n > 8 { load8(name, n - 8) | LOWER } else { 0 };
            let w1 = if n > 16 { load8(name, 8) | LOWER } else { 0 };
            Key { len: n, w0, wt, w1 }
        } else {
            Key { len: n, w0: load_short(name) | (LOWER & mask(n)), wt: 0, w1: 0 }
        }
    }

    /// Equality without short-circuit branches: one compare of or-ed differences.
    #[inline(always)]
    fn same(&self, o: &Key) -> bool {
        ((self.len ^ o.len) as u64 | (self.w0 ^ o.w0) | (self.wt ^ o.wt) | (self.w1 ^ o.w1)) == 0
    }

    #[inline(always)]
    const fn hash(&self) -> usize {
        let h = (self.w0 ^ self.wt.rotate_left(29) ^ self.len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> (64 - TABLE_BITS)) as usize
    }
}

/// The longest known name ("P-Preferred-Identity"); three words cover up to 24 bytes.
const MAX_LEN: usize = 24;

/// Keys of the known names, plus at index [`KNOWN`] a sentinel (length 0) that matches no
/// name, so an empty slot compares unequal without a separate branch.
const fn build_keys() -> [Key; KNOWN + 1] {
    let mut k = [Key { len: 0, w0: 0, wt: 0, w1: 0 }; KNOWN + 1];
    let mut i = 0;
    while i < KNOWN {
        assert!(NAMES[i].len() >= 2 && NAMES[i].len() <= MAX_LEN);
        k[i] = Key::of_const(NAMES[i].as_bytes());
        i += 1;
    }
    k
}

const fn build_long() -> [u8; TABLE_SIZE] {
    let mut t = [KNOWN as u8; TABLE_SIZE];
    let mut i = 0;
    while i < NAMES.len() {
        let mut h = KEYS[i].hash();
        while t[h] != KNOWN as u8 {
            h = (h + 1) & (TABLE_SIZE - 1);
        }
        t[h] = i as u8;
        i += 1;
    }
    t
}

const fn build_compact() -> [u8; 32] {
    let mut t = [EMPTY; 32];
    let mut i = 0;
    while i < COMPACT.len() {
        if COMPACT[i] != 0 {
            t[(COMPACT[i] & 0x1f) as usize] = i as u8;
        }
        i += 1;
    }
    t
}

static KEYS: [Key; KNOWN + 1] = build_keys();
static LONG: [u8; TABLE_SIZE] = build_long();
static SHORT: [u8; 32] = build_compact();

impl HeaderName {
    /// Look a header name up, case-insensitively, long or compact form. Anything that is
    /// not a known name (including bytes that are not a token) is [`HeaderName::Other`].
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        if !crate::chars::is_token(name) {
            return HeaderName::Other;
        }
        Self::from_token(name)
    }

    /// [`HeaderName::from_bytes`] for a name already known to be a non-empty token (the
    /// indexer checks every name): one hash probe and up to three word compares.
    #[inline(always)]
    pub(crate) fn from_token(name: &[u8]) -> HeaderName {
        let n = name.len();
        if n == 1 {
            let b = name[0];
            if !b.is_ascii_alphabetic() {
                return HeaderName::Other;
            }
            return Self::from_index(SHORT[(b & 0x1f) as usize]);
        }
        if n > MAX_LEN {
            return HeaderName::Other;
        }
        let key = Key::of(name);
        let mut h = key.hash();
        // the first probe almost always decides; empty slots hold the sentinel index
        loop {
            let idx = LONG[h] as usize;
            if KEYS[idx].same(&key) {
                return ALL[idx];
            }
            if idx == KNOWN {
                return HeaderName::Other;
            }
            h = (h + 1) & (TABLE_SIZE - 1);
        }
    }

    #[inline(always)]
    fn from_index(idx: u8) -> HeaderName {
        if idx == EMPTY { HeaderName::Other } else { ALL[idx as usize] }
    }

    /// The canonical long form, e.g. `"Call-ID"`. `"(other)"` for [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        NAMES.get(self as usize).copied().unwrap_or("(other)")
    }

    /// The compact form, if the header has one.
    pub fn compact(self) -> Option<u8> {
        match COMPACT.get(self as usize) {
            Some(&0) | None => None,
            Some(&c) => Some(c),
        }
    }

    /// How many values the header may carry.
    pub fn kind(self) -> Option<Kind> {
        KINDS.get(self as usize).copied()
    }

    /// Is this a comma-separated list header (RFC 3261 §7.3.1)?
    pub fn is_list(self) -> bool {
        self.kind() == Some(Kind::List)
    }

    /// Must this header appear at most once?
    pub fn is_single(self) -> bool {
        self.kind() == Some(Kind::Single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_long_name_round_trips_in_any_case() {
        for &h in ALL {
            let name = h.as_str();
            assert_eq!(HeaderName::from_bytes(name.as_bytes()), h, "{name}");
            let upper: std::vec::Vec<u8> = name.bytes().map(|b| b.to_ascii_uppercase()).collect();
            assert_eq!(HeaderName::from_bytes(&upper), h, "{name}");
            let lower: std::vec::Vec<u8> = name.bytes().map(|b| b.to_ascii_lowercase()).collect();
            assert_eq!(HeaderName::from_bytes(&lower), h, "{name}");
        }
    }

    #[test]
    fn compact_forms() {
        let pairs: &[(&[u8], HeaderName)] = &[
            (b"a", HeaderName::AcceptContact),
            (b"b", HeaderName::ReferredBy),
            (b"c", HeaderName::ContentType),
            (b"C", HeaderName::ContentType),
            (b"d", HeaderName::RequestDisposition),
            (b"e", HeaderName::ContentEncoding),
            (b"f", HeaderName::From),
            (b"i", HeaderName::CallId),
            (b"j", HeaderName::RejectContact),
            (b"k", HeaderName::Supported),
            (b"l", HeaderName::ContentLength),
            (b"L", HeaderName::ContentLength),
            (b"m", HeaderName::Contact),
            (b"M", HeaderName::Contact),
            (b"n", HeaderName::IdentityInfo),
            (b"o", HeaderName::Event),
            (b"r", HeaderName::ReferTo),
            (b"s", HeaderName::Subject),
            (b"t", HeaderName::To),
            (b"u", HeaderName::AllowEvents),
            (b"v", HeaderName::Via),
            (b"x", HeaderName::SessionExpires),
            (b"y", HeaderName::Identity),
        ];
        for (n, h) in pairs {
            assert_eq!(HeaderName::from_bytes(n), *h, "{}", n[0] as char);
            assert_eq!(h.compact().map(|c| c.to_ascii_lowercase()), Some(n[0].to_ascii_lowercase()));
        }
        for n in [b"g", b"h", b"q", b"w", b"z", b"1", b"-"] {
            assert_eq!(HeaderName::from_bytes(n), HeaderName::Other);
        }
    }

    #[test]
    fn probes_are_short() {
        // every known name is found within a few slots of its hash
        for (i, k) in KEYS.iter().enumerate() {
            let mut h = k.hash();
            let mut probes = 1;
            while LONG[h] as usize != i {
                assert_ne!(LONG[h] as usize, KNOWN, "{} not in the table", NAMES[i]);
                h = (h + 1) & (TABLE_SIZE - 1);
                probes += 1;
            }
            assert!(probes <= 3, "{} needs {probes} probes", NAMES[i]);
        }
    }

    #[test]
    fn non_tokens_never_match() {
        // CR or-ed with 0x20 is '-': only token input may take the fast path
        assert_eq!(HeaderName::from_bytes(b"Call\rID"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"Max\rForwards"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"Via "), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b""), HeaderName::Other);
    }

    #[test]
    fn unknown_and_near_misses() {
        for n in [&b"C%6Fntact"[..], b"Vias", b"Vi", b"Content-Lengthx", b"X-Foo", b"To-", b"NewFangledHeader"] {
            assert_eq!(HeaderName::from_bytes(n), HeaderName::Other, "{:?}", core::str::from_utf8(n));
        }
    }
}
