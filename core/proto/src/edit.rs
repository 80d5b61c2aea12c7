//! The edit-list writer: a forwarded message is the original buffer plus an ordered list of
//! replacements, written in one pass into a caller-provided buffer (Kamailio's "lumps",
//! without the allocation). Nothing is re-serialised: bytes that are not edited go out
//! exactly as they came in.
//!
//! ```
//! use ringsip_proto::{Edits, HeaderName, Message};
//!
//! let raw = b"INVITE sip:bob@b.example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n\
//!             Max-Forwards: 70\r\nTo: <sip:bob@b.example.com>\r\nFrom: <sip:alice@a.example.com>;tag=1\r\n\
//!             Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
//! let msg = Message::parse(raw).unwrap();
//! let mut edits = Edits::new();
//! edits.insert_header_first(&msg, HeaderName::Via, b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx").unwrap();
//! edits.set_max_forwards(&msg, 69).unwrap();
//! let mut out = [0u8; 1500];
//! let n = edits.write(&msg, &mut out).unwrap();
//! let fwd = Message::parse(&out[..n]).unwrap();
//! assert_eq!(fwd.via().unwrap().branch(), Some(&b"z9hG4bKx"[..]));
//! assert_eq!(fwd.vias().count(), 2);
//! assert_eq!(fwd.max_forwards().unwrap(), Some(69));
//! ```

use core::fmt;
use core::ops::Range;

use arrayvec::ArrayVec;

use crate::chars::{self, CommaSplit};
use crate::header::HeaderName;
use crate::message::Message;

/// Most edits one list holds.
pub const MAX_EDITS: usize = 32;

/// Why an edit list could not be built or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// More than [`MAX_EDITS`] edits.
    TooManyEdits,
    /// Two edits change overlapping bytes.
    Overlap,
    /// An edit lies outside the message.
    OutOfRange,
    /// The output buffer is too small; the message needs this many bytes.
    OutputTooSmall(usize),
    /// The header to edit is not in the message.
    NoSuchHeader,
    /// The header's value cannot be split (unbalanced quote or angle bracket).
    Malformed,
    /// The edited message would have more header lines than a parser indexes
    /// ([`crate::MAX_HEADERS`]), so the next hop could not read it.
    TooManyHeaders,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::TooManyEdits => write!(f, "more than {MAX_EDITS} edits"),
            WriteError::Overlap => f.write_str("edits overlap"),
            WriteError::OutOfRange => f.write_str("edit outside the message"),
            WriteError::OutputTooSmall(n) => write!(f, "output buffer too small: {n} bytes needed"),
            WriteError::NoSuchHeader => f.write_str("no such header"),
            WriteError::Malformed => f.write_str("header value cannot be split"),
            WriteError::TooManyHeaders => write!(f, "more than {} header lines", crate::MAX_HEADERS),
        }
    }
}

impl core::error::Error for WriteError {}

/// A piece of replacement text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'e> {
    /// Bytes copied as they are.
    Bytes(&'e [u8]),
    /// A decimal number, rendered at write time.
    Num(u32),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Num(n) => decimal_len(*n),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Op<'e> {
    start: u32,
    end: u32,
    pieces: [Option<Piece<'e>>; 4],
}

/// An ordered list of edits against one parsed message. The replacement bytes borrow the
/// caller's storage for `'e`.
#[derive(Clone, Debug, Default)]
pub struct Edits<'e> {
    ops: ArrayVec<Op<'e>, MAX_EDITS>,
    /// Header lines added minus lines removed by the helpers.
    lines: i32,
}

impl<'e> Edits<'e> {
    /// An empty list.
    pub fn new() -> Self {
        Edits { ops: ArrayVec::new(), lines: 0 }
    }

    /// Number of edits.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no edits.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Forget all edits (to reuse the list).
    pub fn clear(&mut self) {
        self.ops.clear();
        self.lines = 0;
    }

    /// Replace `range` (offsets into [`Message::buffer`]) with up to four pieces. An empty
    /// range inserts; no pieces delete.
    pub fn replace_pieces(&mut self, range: Range<usize>, pieces: &[Piece<'e>]) -> Result<(), WriteError> {
        let mut p = [None; 4];
        if pieces.len() > 4 {
            return Err(WriteError::TooManyEdits);
        }
        for (slot, piece) in p.iter_mut().zip(pieces) {
            *slot = Some(*piece);
        }
        self.ops
            .try_push(Op { start: range.start as u32, end: range.end as u32, pieces: p })
            .map_err(|_| WriteError::TooManyEdits)
    }

    /// Replace `range` with `bytes`.
    pub fn replace(&mut self, range: Range<usize>, bytes: &'e [u8]) -> Result<(), WriteError> {
        self.replace_pieces(range, &[Piece::Bytes(bytes)])
    }

    /// Insert `bytes` at offset `at`.
    pub fn insert(&mut self, at: usize, bytes: &'e [u8]) -> Result<(), WriteError> {
        self.replace(at..at, bytes)
    }

    /// Delete `range`.
    pub fn delete(&mut self, range: Range<usize>) -> Result<(), WriteError> {
        self.replace_pieces(range, &[])
    }

    fn header_line_pieces(name: &'static str, value: Piece<'e>) -> [Piece<'e>; 4] {
        [Piece::Bytes(name.as_bytes()), Piece::Bytes(b": "), value, Piece::Bytes(b"\r\n")]
    }

    /// Insert a header line `Name: value` just before the first line of `name` (so a new
    /// Via or Record-Route becomes the topmost value, RFC 3261 §16.6), or at the end of the
    /// header section when the message has none.
    pub fn insert_header_first(
        &mut self,
        msg: &Message<'_>,
        name: HeaderName,
        value: &'e [u8],
    ) -> Result<(), WriteError> {
        let at = match msg.first_index(name) {
            Some(i) if name != HeaderName::Other => msg.entries()[i].start(),
            _ => msg.header_end(),
        };
        self.replace_pieces(at..at, &Self::header_line_pieces(name.as_str(), Piece::Bytes(value)))?;
        self.lines += 1;
        Ok(())
    }

    /// Append a header line `name: value` at the end of the header section. `name` is
    /// written as given, so extension headers can be added.
    pub fn append_header(&mut self, msg: &Message<'_>, name: &'e [u8], value: &'e [u8]) -> Result<(), WriteError> {
        let at = msg.header_end();
        self.replace_pieces(
            at..at,
            &[Piece::Bytes(name), Piece::Bytes(b": "), Piece::Bytes(value), Piece::Bytes(b"\r\n")],
        )?;
        self.lines += 1;
        Ok(())
    }

    /// Remove header line number `index`.
    pub fn remove_header_at(&mut self, msg: &Message<'_>, index: usize) -> Result<(), WriteError> {
        if index >= msg.header_count() {
            return Err(WriteError::NoSuchHeader);
        }
        self.delete(msg.line_range(index))?;
        self.lines -= 1;
        Ok(())
    }

    /// Remove every line of header `name`; returns how many.
    pub fn remove_header(&mut self, msg: &Message<'_>, name: HeaderName) -> Result<usize, WriteError> {
        let mut n = 0;
        for (i, _) in msg.entries().iter().enumerate().filter(|(_, e)| e.name() == name) {
            self.delete(msg.line_range(i))?;
            self.lines -= 1;
            n += 1;
        }
        Ok(n)
    }

    /// Replace the value of header line number `index` (the name is kept as written).
    pub fn replace_header_value(&mut self, msg: &Message<'_>, index: usize, value: &'e [u8]) -> Result<(), WriteError> {
        let e = msg.entries().get(index).ok_or(WriteError::NoSuchHeader)?;
        self.replace(e.value_range(), value)
    }

    /// Remove the first value of a list header: the whole first line when it holds one
    /// value, else that value and its comma. Used to pop ringsip's own Via from a response
    /// (RFC 3261 §16.7 step 3) and the first Route when loose routing (§16.4).
    pub fn remove_first_value(&mut self, msg: &Message<'_>, name: HeaderName) -> Result<(), WriteError> {
        let i = msg.first_index(name).ok_or(WriteError::NoSuchHeader)?;
        let e = msg.entries()[i];
        let value = &msg.buffer()[e.value_range()];
        let mut split = CommaSplit::new(value);
        let _first = split.next().ok_or(WriteError::Malformed)?.map_err(|_| WriteError::Malformed)?;
        match split.next() {
            None => {
                self.delete(msg.line_range(i))?;
                self.lines -= 1;
                Ok(())
            }
            Some(Ok(second)) => {
                let second = chars::trim(second);
                let cut = e.value_range().start + chars::offset_in(value, second);
                self.delete(e.value_range().start..cut)
            }
            Some(Err(_)) => Err(WriteError::Malformed),
        }
    }

    /// Remove the first `n` values of a list header, across its lines in order (a line whose
    /// values all go is removed whole). Used to pop every one of ringsip's own entries from
    /// the top of a Route set (a double Record-Route leaves two, RFC 3261 §16.4).
    pub fn remove_first_values(&mut self, msg: &Message<'_>, name: HeaderName, n: usize) -> Result<(), WriteError> {
        let mut left = n;
        for i in 0..msg.header_count() {
            if left == 0 {
                break;
            }
            let e = msg.entries()[i];
            if e.name() != name {
                continue;
            }
            let value = &msg.buffer()[e.value_range()];
            let mut split = CommaSplit::new(value);
            let mut gone = 0;
            let mut keep_from = None;
            for v in split.by_ref() {
                let v = v.map_err(|_| WriteError::Malformed)?;
                if gone < left {
                    gone += 1;
                } else {
                    keep_from = Some(chars::trim(v));
                    break;
                }
            }
            left -= gone;
            match keep_from {
                None => {
                    self.delete(msg.line_range(i))?;
                    self.lines -= 1;
                }
                Some(rest) => {
                    let cut = e.value_range().start + chars::offset_in(value, rest);
                    self.delete(e.value_range().start..cut)?;
                }
            }
        }
        if left > 0 { Err(WriteError::NoSuchHeader) } else { Ok(()) }
    }

    /// Remove the last value of a list header: its whole line when the line holds only that
    /// value, else the value and the comma before it (RFC 3261 §16.4: a strict router's
    /// Request-URI comes back from the last Route value).
    pub fn remove_last_value(&mut self, msg: &Message<'_>, name: HeaderName) -> Result<(), WriteError> {
        let i =
            (0..msg.header_count()).rev().find(|&i| msg.entries()[i].name() == name).ok_or(WriteError::NoSuchHeader)?;
        let e = msg.entries()[i];
        let value = &msg.buffer()[e.value_range()];
        let mut prev_end = None;
        let mut last = None;
        for v in CommaSplit::new(value) {
            let v = chars::trim(v.map_err(|_| WriteError::Malformed)?);
            if let Some(l) = last {
                prev_end = Some(chars::offset_in(value, l) + l.len());
            }
            last = Some(v);
        }
        let last = last.ok_or(WriteError::Malformed)?;
        match prev_end {
            None => {
                self.delete(msg.line_range(i))?;
                self.lines -= 1;
                Ok(())
            }
            Some(end) => {
                let start = e.value_range().start;
                self.delete(start + end..start + chars::offset_in(value, last) + last.len())
            }
        }
    }

    /// Remove the topmost Via value.
    pub fn remove_top_via(&mut self, msg: &Message<'_>) -> Result<(), WriteError> {
        self.remove_first_value(msg, HeaderName::Via)
    }

    /// Set Max-Forwards to `n`, adding the header when missing (RFC 3261 §16.6 step 3).
    pub fn set_max_forwards(&mut self, msg: &Message<'_>, n: u8) -> Result<(), WriteError> {
        match msg.first_index(HeaderName::MaxForwards) {
            Some(i) => self.replace_pieces(msg.entries()[i].value_range(), &[Piece::Num(n as u32)]),
            None => {
                let at = msg.header_end();
                self.replace_pieces(at..at, &Self::header_line_pieces("Max-Forwards", Piece::Num(n as u32)))?;
                self.lines += 1;
                Ok(())
            }
        }
    }

    /// Replace the Request-URI (requests only).
    pub fn set_request_uri(&mut self, msg: &Message<'_>, uri: &'e [u8]) -> Result<(), WriteError> {
        let raw = msg.request_uri_bytes().ok_or(WriteError::NoSuchHeader)?;
        let at = chars::offset_in(msg.buffer(), raw);
        self.replace(at..at + raw.len(), uri)
    }

    /// Replace the body and set Content-Length to its length (adding the header when the
    /// message had none).
    pub fn replace_body(&mut self, msg: &Message<'_>, body: &'e [u8]) -> Result<(), WriteError> {
        let len = body.len() as u32;
        match msg.first_index(HeaderName::ContentLength) {
            Some(i) => self.replace_pieces(msg.entries()[i].value_range(), &[Piece::Num(len)])?,
            None => {
                let at = msg.header_end();
                self.replace_pieces(at..at, &Self::header_line_pieces("Content-Length", Piece::Num(len)))?;
                self.lines += 1;
            }
        }
        self.replace(msg.body_offset()..msg.end_offset(), body)
    }

    /// The length of the written message.
    pub fn output_len(&self, msg: &Message<'_>) -> Result<usize, WriteError> {
        if msg.header_count() as i32 + self.lines > crate::MAX_HEADERS as i32 {
            return Err(WriteError::TooManyHeaders);
        }
        let order = self.ordered(msg)?;
        let mut len = msg.end_offset() - msg.start_offset();
        for &i in &order {
            let op = &self.ops[i];
            len = len - (op.end - op.start) as usize + op.pieces.iter().flatten().map(Piece::len).sum::<usize>();
        }
        Ok(len)
    }

    /// Edits in write order (by start, inserts before replacements at the same place, then
    /// in the order they were added), checked for overlap and range.
    fn ordered(&self, msg: &Message<'_>) -> Result<ArrayVec<usize, MAX_EDITS>, WriteError> {
        let mut order: ArrayVec<usize, MAX_EDITS> = (0..self.ops.len()).collect();
        let key = |i: usize| {
            let op = &self.ops[i];
            (op.start, op.end, i)
        };
        // insertion sort: a handful of edits
        for a in 1..order.len() {
            let mut b = a;
            while b > 0 && key(order[b - 1]) > key(order[b]) {
                order.swap(b - 1, b);
                b -= 1;
            }
        }
        let (lo, hi) = (msg.start_offset() as u32, msg.end_offset() as u32);
        let mut cursor = lo;
        for &i in &order {
            let op = &self.ops[i];
            if op.start < lo || op.end > hi || op.start > op.end {
                return Err(WriteError::OutOfRange);
            }
            if op.start < cursor {
                return Err(WriteError::Overlap);
            }
            cursor = op.end;
        }
        Ok(order)
    }

    /// Write the edited message into `out`; returns its length.
    pub fn write(&self, msg: &Message<'_>, out: &mut [u8]) -> Result<usize, WriteError> {
        let need = self.output_len(msg)?;
        if need > out.len() {
            return Err(WriteError::OutputTooSmall(need));
        }
        let order = self.ordered(msg)?;
        let buf = msg.buffer();
        let mut w = 0;
        let mut cursor = msg.start_offset();
        for &i in &order {
            let op = &self.ops[i];
            let s = op.start as usize;
            out[w..w + (s - cursor)].copy_from_slice(&buf[cursor..s]);
            w += s - cursor;
            for piece in op.pieces.iter().flatten() {
                match *piece {
                    Piece::Bytes(b) => {
                        out[w..w + b.len()].copy_from_slice(b);
                        w += b.len();
                    }
                    Piece::Num(n) => w += write_decimal(n, &mut out[w..]),
                }
            }
            cursor = op.end as usize;
        }
        let end = msg.end_offset();
        out[w..w + (end - cursor)].copy_from_slice(&buf[cursor..end]);
        w += end - cursor;
        debug_assert_eq!(w, need);
        Ok(w)
    }
}

fn decimal_len(mut n: u32) -> usize {
    let mut l = 1;
    while n >= 10 {
        n /= 10;
        l += 1;
    }
    l
}

fn write_decimal(n: u32, out: &mut [u8]) -> usize {
    let l = decimal_len(n);
    let mut v = n;
    for i in (0..l).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8, SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2\r\n\
Via: SIP/2.0/UDP third.example.com;branch=z9hG4bK3\r\n\
Max-Forwards: 70\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r";

    fn write(edits: &Edits<'_>, msg: &Message<'_>) -> Vec<u8> {
        let mut out = [0u8; 4096];
        let n = edits.write(msg, &mut out).unwrap();
        assert_eq!(n, edits.output_len(msg).unwrap());
        out[..n].to_vec()
    }

    #[test]
    fn no_edits_is_identity() {
        let msg = Message::parse(INVITE).unwrap();
        assert_eq!(write(&Edits::new(), &msg), INVITE);
    }

    #[test]
    fn proxy_forwarding_edits() {
        let msg = Message::parse(INVITE).unwrap();
        let mut e = Edits::new();
        e.insert_header_first(&msg, HeaderName::Via, b"SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew").unwrap();
        e.set_max_forwards(&msg, 69).unwrap();
        e.insert_header_first(&msg, HeaderName::RecordRoute, b"<sip:192.0.2.9;lr>").unwrap();
        e.remove_first_value(&msg, HeaderName::Route).unwrap();
        e.set_request_uri(&msg, b"sip:bob@192.0.2.20:5070").unwrap();
        let out = write(&e, &msg);
        let fwd = Message::parse(&out).unwrap();
        fwd.validate().unwrap();
        assert_eq!(fwd.request_uri().unwrap().port(), Some(5070));
        let branches: Vec<_> = fwd.vias().map(|v| v.unwrap().branch().unwrap()).collect();
        assert_eq!(branches, [&b"z9hG4bKnew"[..], b"z9hG4bKnashds8", b"z9hG4bK2", b"z9hG4bK3"]);
        assert_eq!(fwd.max_forwards().unwrap(), Some(69));
        let routes: Vec<_> = fwd.routes().map(|r| r.unwrap().uri().as_bytes()).collect();
        assert_eq!(routes, [&b"sip:p2.example.com;lr"[..]]);
        assert_eq!(fwd.record_routes().count(), 1);
        assert_eq!(fwd.body(), b"v=0\r");
    }

    #[test]
    fn remove_top_via_in_multi_value_line_and_single_line() {
        let msg = Message::parse(INVITE).unwrap();
        let mut e = Edits::new();
        e.remove_top_via(&msg).unwrap();
        let out = write(&e, &msg);
        assert!(out.windows(30).any(|w| w == b"Via: SIP/2.0/UDP proxy.example"));
        let m2 = Message::parse(&out).unwrap();
        assert_eq!(m2.vias().count(), 2);
        let mut e = Edits::new();
        e.remove_top_via(&m2).unwrap();
        let out = write(&e, &m2);
        let m3 = Message::parse(&out).unwrap();
        assert_eq!(m3.vias().count(), 1);
        assert_eq!(m3.header_count(), m2.header_count() - 1);
    }

    #[test]
    fn replace_body_updates_content_length() {
        let msg = Message::parse(INVITE).unwrap();
        let mut e = Edits::new();
        let body =
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";
        e.replace_body(&msg, body).unwrap();
        let out = write(&e, &msg);
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.content_length(), Some(body.len() as u32));
        assert_eq!(m.body(), body);
        assert_eq!(m.sdp().unwrap().unwrap().media()[0].port, 30000);
        // without Content-Length (UDP): the header is added
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\n\r\nhello";
        let msg = Message::parse(raw).unwrap();
        assert_eq!(msg.body(), b"hello");
        let mut e = Edits::new();
        e.replace_body(&msg, b"bye").unwrap();
        let m = write(&e, &msg);
        let m = Message::parse(&m).unwrap();
        assert_eq!((m.content_length(), m.body()), (Some(3), &b"bye"[..]));
    }

    #[test]
    fn trailing_octets_are_never_forwarded() {
        // RFC 4475 §3.1.1.8 dblreq: Content-Length 0 then junk in the same datagram
        let raw = b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@x>\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\nINVITE sip:evil SIP/2.0\r\n\r\n";
        let msg = Message::parse(raw).unwrap();
        let out = write(&Edits::new(), &msg);
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn max_forwards_added_when_missing_and_errors() {
        let raw = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@x>\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let msg = Message::parse(raw).unwrap();
        let mut e = Edits::new();
        e.set_max_forwards(&msg, 70).unwrap();
        let m = write(&e, &msg);
        assert_eq!(Message::parse(&m).unwrap().max_forwards().unwrap(), Some(70));
        // overlapping edits are refused
        let mut e = Edits::new();
        e.delete(10..20).unwrap();
        e.delete(15..25).unwrap();
        assert_eq!(e.write(&msg, &mut [0u8; 1024]), Err(WriteError::Overlap));
        let mut e = Edits::new();
        e.delete(0..(raw.len() + 1)).unwrap();
        assert_eq!(e.write(&msg, &mut [0u8; 1024]), Err(WriteError::OutOfRange));
        let e = Edits::new();
        assert_eq!(e.write(&msg, &mut [0u8; 10]), Err(WriteError::OutputTooSmall(raw.len())));
        let mut e = Edits::new();
        for _ in 0..MAX_EDITS {
            e.insert(30, b"x").unwrap();
        }
        assert_eq!(e.insert(30, b"x"), Err(WriteError::TooManyEdits));
        assert_eq!(Edits::new().remove_first_value(&msg, HeaderName::Route), Err(WriteError::NoSuchHeader));
    }

    #[test]
    fn inserts_at_same_place_keep_their_order() {
        let msg = Message::parse(INVITE).unwrap();
        let mut e = Edits::new();
        e.insert_header_first(&msg, HeaderName::Via, b"SIP/2.0/UDP a;branch=z9hG4bKa").unwrap();
        e.insert_header_first(&msg, HeaderName::Via, b"SIP/2.0/UDP b;branch=z9hG4bKb").unwrap();
        e.remove_top_via(&msg).unwrap();
        let out = write(&e, &msg);
        let m = Message::parse(&out).unwrap();
        let hosts: Vec<_> = m.vias().map(|v| v.unwrap().host_bytes()).collect();
        assert_eq!(hosts, [&b"a"[..], b"b", b"proxy.example.com", b"third.example.com"]);
    }

    #[test]
    fn edits_never_exceed_the_header_limit() {
        // found by fuzzing: a message at the limit plus an inserted Via could not be read by
        // the next hop
        let mut raw = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@x>\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n".to_vec();
        for _ in 5..crate::MAX_HEADERS {
            raw.extend_from_slice(b"X-Pad: 1\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        let msg = Message::parse(&raw).unwrap();
        assert_eq!(msg.header_count(), crate::MAX_HEADERS);
        let mut e = Edits::new();
        e.insert_header_first(&msg, HeaderName::Via, b"SIP/2.0/UDP p;branch=z9hG4bK2").unwrap();
        assert_eq!(e.write(&msg, &mut [0u8; 4096]), Err(WriteError::TooManyHeaders));
        // removing a line first makes room
        e.remove_header(&msg, HeaderName::To).unwrap();
        let mut out = [0u8; 4096];
        let n = e.write(&msg, &mut out).unwrap();
        assert_eq!(Message::parse(&out[..n]).unwrap().header_count(), crate::MAX_HEADERS);
    }

    #[test]
    fn numbers() {
        let mut b = [0u8; 10];
        for n in [0u32, 9, 10, 69, 255, 65535, u32::MAX] {
            let l = write_decimal(n, &mut b);
            assert_eq!(core::str::from_utf8(&b[..l]).unwrap().parse::<u32>().unwrap(), n);
        }
    }
}
