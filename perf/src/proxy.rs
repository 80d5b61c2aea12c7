//! The per-message work of a stateless proxy (RFC 3261 §16.11), as measured by the
//! `proxy_fields` and `forward` benchmark groups and checked by the zero-allocation test.
//!
//! Everything here borrows the message buffer and the caller's output buffer; nothing is
//! allocated.

use core::fmt;

use ringsip_proto::{CSeq, Edits, Error, HeaderName, Message, NameAddr, Uri, WriteError};

use crate::samples::PROXY_HOST;

/// Start of the Via value this proxy inserts; the branch suffix is 16 hex digits.
pub const VIA_PREFIX: &[u8] = b"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK";

/// The Record-Route value this proxy inserts into dialog-creating INVITEs.
pub const RECORD_ROUTE: &[u8] = b"<sip:192.0.2.10;lr>";

/// Max-Forwards for a request that has none (RFC 3261 §16.6 step 3).
pub const DEFAULT_MAX_FORWARDS: u8 = 70;

/// What a stateless proxy reads from a message before deciding where it goes.
#[derive(Clone, Copy, Debug)]
pub struct ProxyFields<'a> {
    /// Top Via `branch`.
    pub via_branch: Option<&'a [u8]>,
    /// Top Via sent-by host as written.
    pub via_host: &'a [u8],
    /// Top Via sent-by port.
    pub via_port: Option<u16>,
    /// Top Via `rport` (RFC 3581): `Some(None)` when present without a value.
    pub via_rport: Option<Option<u16>>,
    /// Max-Forwards, `None` when absent.
    pub max_forwards: Option<u8>,
    /// The parsed Request-URI (requests only).
    pub request_uri: Option<Uri<'a>>,
    /// The first Route value, if any.
    pub first_route: Option<NameAddr<'a>>,
    /// Call-ID.
    pub call_id: &'a [u8],
    /// CSeq.
    pub cseq: CSeq<'a>,
}

/// Read the fields a stateless proxy needs: top Via (branch, host, port, rport),
/// Max-Forwards, Request-URI (requests), first Route, Call-ID and CSeq.
pub fn proxy_fields<'a>(msg: &Message<'a>) -> Result<ProxyFields<'a>, Error> {
    let via = msg.via()?;
    let request_uri = if msg.is_request() { Some(*msg.request_uri()?) } else { None };
    Ok(ProxyFields {
        via_branch: via.branch(),
        via_host: via.host_bytes(),
        via_port: via.port(),
        via_rport: via.rport(),
        max_forwards: msg.max_forwards()?,
        request_uri,
        first_route: msg.routes().next().transpose()?,
        call_id: msg.call_id()?,
        cseq: *msg.cseq()?,
    })
}

/// Why a message was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardError {
    /// Max-Forwards reached 0 (the proxy would answer 483).
    TooManyHops,
    /// A response whose top Via is not this proxy's.
    NotOurVia,
    /// The edit list could not be built or written.
    Write(WriteError),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::TooManyHops => f.write_str("Max-Forwards is 0"),
            ForwardError::NotOurVia => f.write_str("top Via is not ours"),
            ForwardError::Write(e) => write!(f, "write: {e}"),
        }
    }
}

impl std::error::Error for ForwardError {}

impl From<WriteError> for ForwardError {
    fn from(e: WriteError) -> Self {
        ForwardError::Write(e)
    }
}

/// Build the forwarding edit list and write the forwarded message into `out`; returns its
/// length.
///
/// Requests: insert this proxy's Via with a branch derived from the incoming branch and
/// Request-URI (stateless, RFC 3261 §16.11), set Max-Forwards to n-1 (70 when missing), add a
/// Record-Route to INVITEs, pop the first Route when it is this proxy (loose routing, §16.4).
/// Responses: remove the top Via, which must be this proxy's (§16.7 step 3).
pub fn forward(msg: &Message<'_>, fields: &ProxyFields<'_>, out: &mut [u8]) -> Result<usize, ForwardError> {
    let mut via = [0u8; VIA_PREFIX.len() + 16];
    let mut edits = Edits::new();
    if msg.is_request() {
        via[..VIA_PREFIX.len()].copy_from_slice(VIA_PREFIX);
        let mut h = Fnv1a::new();
        h.write(fields.via_branch.unwrap_or(b""));
        h.write(msg.request_uri_bytes().unwrap_or(b""));
        hex16(h.0, &mut via[VIA_PREFIX.len()..]);
        let max_forwards = match fields.max_forwards {
            None => DEFAULT_MAX_FORWARDS,
            Some(0) => return Err(ForwardError::TooManyHops),
            Some(n) => n - 1,
        };
        edits.insert_header_first(msg, HeaderName::Via, &via)?;
        edits.set_max_forwards(msg, max_forwards)?;
        if fields.cseq.method == b"INVITE" {
            edits.insert_header_first(msg, HeaderName::RecordRoute, RECORD_ROUTE)?;
        }
        if fields.first_route.is_some_and(|r| r.uri().host_bytes() == PROXY_HOST) {
            edits.remove_first_value(msg, HeaderName::Route)?;
        }
    } else {
        if fields.via_host != PROXY_HOST {
            return Err(ForwardError::NotOurVia);
        }
        edits.remove_top_via(msg)?;
    }
    Ok(edits.write(msg, out)?)
}

/// 64-bit FNV-1a, enough to derive a branch deterministically.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn hex16(v: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out[..16].iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}
