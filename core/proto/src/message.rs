//! The SIP message: one-pass framing and indexing, typed access on first use, validation.
//!
//! [`Message::parse`] frames a UDP datagram (RFC 3261 §18.3: Content-Length if present,
//! else the rest of the datagram; octets after the body are ignored and never forwarded)
//! and indexes the start line and every header as byte ranges into the caller's buffer.
//! Nothing is copied and nothing is allocated: the index lives inline in the [`Message`].
//! Typed values (top Via, CSeq, From, To, Request-URI, Max-Forwards, Content-Type) are
//! parsed the first time they are asked for and cached. [`Message::validate`] runs the
//! checks a proxy needs before it acts (RFC 3261 §16.3) plus the full grammar of every
//! header ringsip knows; this is what `sipcheck` reports.

use core::cell::OnceCell;

use arrayvec::ArrayVec;

use crate::addr::NameAddr;
use crate::chars::{self, CommaSplit, TOKEN};
use crate::error::{Error, ErrorKind, Place, Result};
use crate::header::{self, HeaderName, Kind};
use crate::sdp::Sdp;
use crate::uri::{Scheme, Uri};
use crate::values::{self, Auth, CSeq, ContactValue, MediaType, Via};

/// Most header lines one message may have.
pub const MAX_HEADERS: usize = 128;

/// Largest header section (start line included) the index addresses.
pub const MAX_HEADER_SECTION: usize = u16::MAX as usize;

const NONE: u8 = 0xff;

/// SIP request methods (RFC 3261 §7.1 and extensions). Methods are case-sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// UPDATE (RFC 3311)
    Update,
    /// MESSAGE (RFC 3428)
    Message,
    /// REFER (RFC 3515)
    Refer,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other extension method.
    Other,
}

impl Method {
    /// Classify a method token (case-sensitive, RFC 3261 §7.1).
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"INFO" => Method::Info,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"UPDATE" => Method::Update,
            b"MESSAGE" => Method::Message,
            b"REFER" => Method::Refer,
            b"PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }
}

/// The first line of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP/2.0`
    Request {
        /// Method.
        method: Method,
        /// Method as written.
        method_bytes: &'a [u8],
        /// Request-URI as written (parse it with [`Message::request_uri`]).
        uri: &'a [u8],
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`
    Response {
        /// Status code, 100–699.
        code: u16,
        /// Reason phrase as written (may be empty).
        reason: &'a [u8],
    },
}

/// One indexed header line: 8 bytes, positions into the parsed buffer. A line ends where
/// the next one starts (or at the empty line); see [`Message::line_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderEntry {
    name: HeaderName,
    start: u16,
    value_start: u16,
    value_end: u16,
}

impl HeaderEntry {
    /// Which header.
    pub fn name(&self) -> HeaderName {
        self.name
    }
    /// Offset of the line's first byte (the name).
    pub fn start(&self) -> usize {
        self.start as usize
    }
    /// Range of the value, without the leading and trailing whitespace.
    pub fn value_range(&self) -> core::ops::Range<usize> {
        self.value_start as usize..self.value_end as usize
    }
}

/// A header line as slices of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Which header (compact forms map to the long form).
    pub name: HeaderName,
    /// The name as written.
    pub raw_name: &'a [u8],
    /// The value, trimmed; folded lines keep their CR LF and whitespace.
    pub value: &'a [u8],
    /// Index of the line in the message.
    pub index: usize,
}

/// Result of [`Message::parse_stream`].
#[derive(Debug)]
pub enum Status<T> {
    /// A whole message was framed.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Incomplete,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Datagram,
    Stream,
}

#[derive(Default)]
struct Cache<'a> {
    ruri: OnceCell<Result<Uri<'a>>>,
    /// The top Via and where its element ends in the first Via line's value.
    via: OnceCell<Result<(Via<'a>, usize)>>,
    cseq: OnceCell<Result<CSeq<'a>>>,
    from: OnceCell<Result<NameAddr<'a>>>,
    to: OnceCell<Result<NameAddr<'a>>>,
    max_forwards: OnceCell<Result<Option<u8>>>,
    content_type: OnceCell<Result<Option<MediaType<'a>>>>,
}

impl Cache<'_> {
    fn reset(&mut self) {
        self.ruri.take();
        self.via.take();
        self.cseq.take();
        self.from.take();
        self.to.take();
        self.max_forwards.take();
        self.content_type.take();
    }
}

/// An indexed SIP message borrowing the caller's buffer.
pub struct Message<'a> {
    buf: &'a [u8],
    start: usize,
    end: usize,
    start_line: StartLine<'a>,
    headers: ArrayVec<HeaderEntry, MAX_HEADERS>,
    first: [u8; header::KNOWN],
    header_end: usize,
    body_start: usize,
    content_length: Option<u32>,
    cache: Cache<'a>,
}

impl Default for Message<'_> {
    fn default() -> Self {
        Message::new()
    }
}

impl core::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("start_line", &self.start_line)
            .field("headers", &self.headers.len())
            .field("body_len", &(self.end - self.body_start))
            .finish()
    }
}

impl<'a> Message<'a> {
    /// Frame and index one UDP datagram (RFC 3261 §18.3). Leading CR LF are skipped (§7.5).
    #[inline]
    pub fn parse(datagram: &'a [u8]) -> Result<Message<'a>> {
        let mut m = Message::new();
        m.parse_into(datagram)?;
        Ok(m)
    }

    /// An empty message (a request line `- - SIP/2.0` with no headers), to parse into.
    pub fn new() -> Message<'a> {
        Message {
            buf: b"",
            start: 0,
            end: 0,
            start_line: StartLine::Request { method: Method::Other, method_bytes: b"", uri: b"" },
            headers: ArrayVec::new_const(),
            first: [NONE; header::KNOWN],
            header_end: 0,
            body_start: 0,
            content_length: None,
            cache: Cache::default(),
        }
    }

    /// [`Message::parse`] into this message, reusing its storage: the index is filled in
    /// place and nothing is moved, which is how a receive loop should parse (the index is
    /// about 1 KiB). On error the message is left empty.
    #[inline]
    pub fn parse_into(&mut self, datagram: &'a [u8]) -> Result<()> {
        let r = self.index(datagram, Mode::Datagram);
        if r.is_err() {
            self.headers.clear();
        }
        r
    }

    /// Check-then-parse for stream transports (TCP, TLS): returns
    /// [`Status::Incomplete`] with no side effects until a whole message is in `buf`, then
    /// the message and the number of bytes it used (leading CR LF keep-alives included).
    /// Content-Length is mandatory on streams (RFC 3261 §18.3, §20.14).
    pub fn parse_stream(buf: &'a [u8]) -> Result<Status<(Message<'a>, usize)>> {
        let mut i = 0;
        while i < buf.len() && (buf[i] == b'\r' || buf[i] == b'\n') {
            i += 1;
        }
        // the header section must be complete before we judge it
        let rest = &buf[i..];
        if !has_empty_line(rest) {
            if rest.len() > MAX_HEADER_SECTION {
                return Err(Error::new(ErrorKind::HeadersTooLarge, Place::Message, buf.len()));
            }
            return Ok(Status::Incomplete);
        }
        let mut m = Message::new();
        match m.index(buf, Mode::Stream) {
            Ok(()) => {
                let used = m.end;
                Ok(Status::Complete((m, used)))
            }
            // the header section is complete; only the body is still arriving
            Err(e) if e.kind() == ErrorKind::BodyTooShort => Ok(Status::Incomplete),
            Err(e) => Err(e),
        }
    }

    #[inline(always)]
    fn index(&mut self, input: &'a [u8], mode: Mode) -> Result<()> {
        self.headers.clear();
        self.first = [NONE; header::KNOWN];
        self.content_length = None;
        self.cache.reset();
        self.buf = input;
        let len = input.len();
        let mut pos = 0;
        while pos < len && (input[pos] == b'\r' || input[pos] == b'\n') {
            pos += 1;
        }
        if pos == len {
            return Err(Error::new(ErrorKind::Empty, Place::Message, pos));
        }
        let start = pos;
        let nl = match memchr::memchr(b'\n', &input[pos..]) {
            Some(n) => pos + n,
            None => return Err(Error::new(ErrorKind::NoEndOfHeaders, Place::Message, len)),
        };
        let line_end = if nl > pos && input[nl - 1] == b'\r' { nl - 1 } else { nl };
        let start_line = parse_start_line(&input[pos..line_end]).map_err(|e| e.located(Place::StartLine, pos))?;
        pos = nl + 1;

        self.start = start;
        self.end = len;
        self.start_line = start_line;
        self.header_end = len;
        self.body_start = len;
        let msg = self;

        loop {
            if pos >= len {
                return Err(Error::new(ErrorKind::NoEndOfHeaders, Place::Message, len));
            }
            let c = input[pos];
            if c == b'\n' {
                msg.header_end = pos;
                msg.body_start = pos + 1;
                break;
            }
            if c == b'\r' {
                if input.get(pos + 1) == Some(&b'\n') {
                    msg.header_end = pos;
                    msg.body_start = pos + 2;
                    break;
                }
                return Err(Error::new(ErrorKind::BareCr, Place::Message, pos));
            }
            let name_end = chars::run(input, pos, TOKEN);
            if name_end == pos {
                return Err(Error::new(ErrorKind::BadHeaderName, Place::Message, pos));
            }
            let name = HeaderName::from_token(&input[pos..name_end]);
            let mut colon = name_end;
            while colon < len && (input[colon] == b' ' || input[colon] == b'\t') {
                colon += 1;
            }
            if colon >= len || input[colon] != b':' {
                return Err(Error::new(ErrorKind::MissingColon, Place::Header(name), colon));
            }
            // the logical line ends at the first LF not followed by SP/HTAB (folding)
            let mut e = colon + 1;
            let line_end = loop {
                match memchr::memchr(b'\n', &input[e..]) {
                    Some(n) => {
                        e += n + 1;
                        if e < len && (input[e] == b' ' || input[e] == b'\t') {
                            continue;
                        }
                        break e;
                    }
                    None => return Err(Error::new(ErrorKind::NoEndOfHeaders, Place::Message, len)),
                }
            };
            if line_end > MAX_HEADER_SECTION {
                return Err(Error::new(ErrorKind::HeadersTooLarge, Place::Message, pos));
            }
            // value: after ':' and its whitespace (a fold's CR LF included), before the line
            // ending and trailing whitespace; the common `: value\r\n` takes no loop turn
            let mut value_end = line_end - 1;
            if value_end > colon + 1 && input[value_end - 1] == b'\r' {
                value_end -= 1;
            }
            let mut value_start = colon + 1;
            if value_start < value_end && input[value_start] == b' ' {
                value_start += 1;
            }
            while value_start < value_end && chars::is_ws(input[value_start]) {
                value_start += 1;
            }
            while value_end > value_start && chars::is_ws(input[value_end - 1]) {
                value_end -= 1;
            }
            if name == HeaderName::ContentLength {
                if msg.content_length.is_some() {
                    // RFC 4475 §3.1.2.11 mcl01: framing is ambiguous
                    return Err(Error::new(ErrorKind::DuplicateHeader, Place::Header(name), pos));
                }
                let v = chars::decimal(&input[value_start..value_end], u32::MAX as u64)
                    .map_err(|e| e.located(Place::Header(name), value_start))?;
                msg.content_length = Some(v as u32);
            }
            let idx = msg.headers.len();
            let entry =
                HeaderEntry { name, start: pos as u16, value_start: value_start as u16, value_end: value_end as u16 };
            if msg.headers.try_push(entry).is_err() {
                return Err(Error::new(ErrorKind::TooManyHeaders, Place::Message, pos));
            }
            if name != HeaderName::Other && msg.first[name as usize] == NONE {
                msg.first[name as usize] = idx as u8;
            }
            pos = line_end;
        }

        let available = len - msg.body_start;
        let body_len = match msg.content_length {
            Some(cl) if cl as usize <= available => cl as usize,
            Some(_) => return Err(Error::new(ErrorKind::BodyTooShort, Place::Body, len)),
            None if mode == Mode::Stream => {
                return Err(Error::new(ErrorKind::MissingContentLengthOnStream, Place::Message, msg.body_start));
            }
            None => available,
        };
        msg.end = msg.body_start + body_len;
        Ok(())
    }

    // ----- raw access -----

    /// The message bytes: start line to the end of the body (leading CR LF and octets after
    /// the body excluded).
    pub fn as_bytes(&self) -> &'a [u8] {
        &self.buf[self.start..self.end]
    }

    /// The buffer given to the parser; every range of this API indexes it.
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// Offset of the start line in [`Message::buffer`].
    pub fn start_offset(&self) -> usize {
        self.start
    }

    /// Offset just past the body in [`Message::buffer`].
    pub fn end_offset(&self) -> usize {
        self.end
    }

    /// Offset of the body (just past the empty line).
    pub fn body_offset(&self) -> usize {
        self.body_start
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start_line
    }

    /// Is this a request?
    pub fn is_request(&self) -> bool {
        matches!(self.start_line, StartLine::Request { .. })
    }

    /// Request method, `None` for responses.
    pub fn method(&self) -> Option<Method> {
        match self.start_line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// Request method as written, `None` for responses.
    pub fn method_bytes(&self) -> Option<&'a [u8]> {
        match self.start_line {
            StartLine::Request { method_bytes, .. } => Some(method_bytes),
            StartLine::Response { .. } => None,
        }
    }

    /// Status code, `None` for requests.
    pub fn status(&self) -> Option<u16> {
        match self.start_line {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI as written, `None` for responses.
    pub fn request_uri_bytes(&self) -> Option<&'a [u8]> {
        match self.start_line {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The body (exactly Content-Length octets when the header is present).
    pub fn body(&self) -> &'a [u8] {
        &self.buf[self.body_start..self.end]
    }

    /// The Content-Length value, if the header is present.
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The index entries of all header lines, in order.
    pub fn entries(&self) -> &[HeaderEntry] {
        &self.headers
    }

    /// Range of header line `index`, from its name to just past its line ending.
    pub fn line_range(&self, index: usize) -> core::ops::Range<usize> {
        let end = match self.headers.get(index + 1) {
            Some(next) => next.start as usize,
            None => self.header_end,
        };
        self.headers[index].start as usize..end
    }

    /// Offset of the empty line that ends the header section.
    pub fn header_end(&self) -> usize {
        self.header_end
    }

    /// The name of header line `index` as written.
    pub fn raw_name(&self, index: usize) -> &'a [u8] {
        let s = self.headers[index].start as usize;
        &self.buf[s..chars::run(self.buf, s, TOKEN)]
    }

    fn header_at(&self, index: usize) -> Header<'a> {
        let e = &self.headers[index];
        Header { name: e.name, raw_name: self.raw_name(index), value: &self.buf[e.value_range()], index }
    }

    /// All header lines, in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'a>> + '_ {
        (0..self.headers.len()).map(move |i| self.header_at(i))
    }

    /// All lines of header `name`, in order. For [`HeaderName::Other`] this yields every
    /// extension header; use [`Message::headers_by_raw_name`] to find one by name.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = Header<'a>> + '_ {
        let from = self.first_index(name).unwrap_or(self.headers.len());
        (from..self.headers.len()).filter(move |&i| self.headers[i].name == name).map(move |i| self.header_at(i))
    }

    /// Extension headers by name, case-insensitively.
    pub fn headers_by_raw_name<'s>(&'s self, raw: &'s [u8]) -> impl Iterator<Item = Header<'a>> + 's {
        let known = HeaderName::from_bytes(raw);
        self.headers().filter(move |h| {
            if known != HeaderName::Other { h.name == known } else { h.raw_name.eq_ignore_ascii_case(raw) }
        })
    }

    /// Index of the first line of header `name`.
    pub fn first_index(&self, name: HeaderName) -> Option<usize> {
        if name == HeaderName::Other {
            return self.headers.iter().position(|e| e.name == HeaderName::Other);
        }
        match self.first[name as usize] {
            NONE => None,
            i => Some(i as usize),
        }
    }

    /// The value of the first line of header `name` (trimmed).
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        self.first_index(name).map(|i| &self.buf[self.headers[i].value_range()])
    }

    /// Every comma-separated element of header `name` over all its lines, untrimmed
    /// (RFC 3261 §7.3.1).
    pub fn values(&self, name: HeaderName) -> Values<'a, '_> {
        Values {
            msg: self,
            name,
            next_line: self.first_index(name).unwrap_or(self.headers.len()),
            split: None,
            base: 0,
        }
    }

    fn located<T>(&self, r: Result<T>, name: HeaderName, base: usize) -> Result<T> {
        r.map_err(|e| e.located(Place::Header(name), base))
    }

    fn missing(&self, name: HeaderName) -> Error {
        Error::new(ErrorKind::MissingHeader, Place::Header(name), self.body_start)
    }

    fn single(&self, name: HeaderName) -> Result<(&'a [u8], usize)> {
        let i = self.first_index(name).ok_or_else(|| self.missing(name))?;
        let r = self.headers[i].value_range();
        Ok((&self.buf[r.clone()], r.start))
    }

    // ----- typed access, parsed on first use and cached -----

    /// The parsed Request-URI (requests only). Headers in it are refused (RFC 3261 §19.1.1).
    pub fn request_uri(&self) -> Result<&Uri<'a>> {
        self.cache
            .ruri
            .get_or_init(|| {
                let raw = self.request_uri_bytes().ok_or(Error::new(
                    ErrorKind::BadStartLine,
                    Place::StartLine,
                    self.start,
                ))?;
                let at = chars::offset_in(self.buf, raw);
                let uri = Uri::parse(raw).map_err(|e| e.located(Place::StartLine, at))?;
                if uri.is_sip() && uri.headers().is_some() {
                    return Err(Error::new(ErrorKind::HeadersInRequestUri, Place::StartLine, at));
                }
                Ok(uri)
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// The topmost Via value.
    pub fn via(&self) -> Result<&Via<'a>> {
        self.top_via().map(|(v, _)| v)
    }

    fn top_via(&self) -> Result<&(Via<'a>, usize)> {
        self.cache
            .via
            .get_or_init(|| {
                let (v, at) = self.single(HeaderName::Via)?;
                // parse the first element in place; it stops at the comma that ends it
                self.located(Via::parse_prefix(v), HeaderName::Via, at)
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Elements<'a, '_, Via<'a>> {
        self.elements(HeaderName::Via, Via::parse_prefix)
    }

    /// Every Via value after the top one: what `vias().skip(1)` yields, without parsing the
    /// top Via again when [`Message::via`] has it (a proxy reads the second Via of every
    /// response it forwards).
    pub fn vias_after_top(&self) -> Elements<'a, '_, Via<'a>> {
        let mut it = self.vias();
        let (Some(first), Ok((_, end))) = (self.first_index(HeaderName::Via), self.top_via()) else {
            it.next();
            return it;
        };
        let r = self.headers[first].value_range();
        let v = &self.buf[r.clone()];
        if *end < v.len() {
            if values::is_empty_element(v, end + 1) {
                // the slow path reports the empty element exactly as `vias()` does
                it.next();
                return it;
            }
            it.rest = Some(&v[end + 1..]);
            it.base = r.start + end + 1;
        }
        it.next_line = first + 1;
        it
    }

    /// Call-ID value (trimmed).
    pub fn call_id(&self) -> Result<&'a [u8]> {
        self.single(HeaderName::CallId).map(|(v, _)| v)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<&CSeq<'a>> {
        self.cache
            .cseq
            .get_or_init(|| {
                let (v, at) = self.single(HeaderName::CSeq)?;
                self.located(CSeq::parse(v), HeaderName::CSeq, at)
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// From.
    pub fn from(&self) -> Result<&NameAddr<'a>> {
        self.cache.from.get_or_init(|| self.name_addr(HeaderName::From)).as_ref().map_err(|e| *e)
    }

    /// To.
    pub fn to(&self) -> Result<&NameAddr<'a>> {
        self.cache.to.get_or_init(|| self.name_addr(HeaderName::To)).as_ref().map_err(|e| *e)
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr<'a>> {
        let (v, at) = self.single(name)?;
        self.located(NameAddr::parse(v), name, at)
    }

    /// Max-Forwards (0–255), `None` when absent (a proxy then adds one, RFC 3261 §16.6).
    pub fn max_forwards(&self) -> Result<Option<u8>> {
        *self.cache.max_forwards.get_or_init(|| match self.first_index(HeaderName::MaxForwards) {
            None => Ok(None),
            Some(i) => {
                let r = self.headers[i].value_range();
                let v = values::parse_number(&self.buf[r.clone()], 255);
                self.located(v, HeaderName::MaxForwards, r.start).map(|v| Some(v as u8))
            }
        })
    }

    /// Expires header (delta-seconds), `None` when absent.
    pub fn expires(&self) -> Result<Option<u32>> {
        match self.first_index(HeaderName::Expires) {
            None => Ok(None),
            Some(i) => {
                let r = self.headers[i].value_range();
                let v = values::parse_number(&self.buf[r.clone()], values::MAX_DELTA_SECONDS);
                self.located(v, HeaderName::Expires, r.start).map(|v| Some(v as u32))
            }
        }
    }

    /// Content-Type, `None` when absent.
    pub fn content_type(&self) -> Result<Option<&MediaType<'a>>> {
        self.cache
            .content_type
            .get_or_init(|| match self.first_index(HeaderName::ContentType) {
                None => Ok(None),
                Some(i) => {
                    let r = self.headers[i].value_range();
                    self.located(MediaType::parse(&self.buf[r.clone()]), HeaderName::ContentType, r.start).map(Some)
                }
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(|e| *e)
    }

    /// The SDP body, when Content-Type is `application/sdp` and the body is not empty.
    pub fn sdp(&self) -> Result<Option<Sdp<'a>>> {
        match self.content_type()? {
            Some(ct) if ct.is_sdp() && !self.body().is_empty() => {
                Sdp::parse(self.body()).map(Some).map_err(|e| e.shifted(self.body_start))
            }
            _ => Ok(None),
        }
    }

    /// Contact values (`*` or addresses), over all Contact lines.
    pub fn contacts(&self) -> Elements<'a, '_, ContactValue<'a>> {
        self.elements(HeaderName::Contact, values::parse_contact_prefix)
    }

    /// Route values, top first.
    pub fn routes(&self) -> Elements<'a, '_, NameAddr<'a>> {
        self.elements(HeaderName::Route, values::bracketed_prefix)
    }

    /// Record-Route values, top first.
    pub fn record_routes(&self) -> Elements<'a, '_, NameAddr<'a>> {
        self.elements(HeaderName::RecordRoute, values::bracketed_prefix)
    }

    /// The elements of list header `name` over all its lines, each parsed in place by a
    /// prefix parser that stops at the comma ending it (no separate comma-splitting pass).
    pub fn elements<T>(&self, name: HeaderName, parse: fn(&'a [u8]) -> Result<(T, usize)>) -> Elements<'a, '_, T> {
        Elements {
            msg: self,
            name,
            next_line: self.first_index(name).unwrap_or(self.headers.len()),
            rest: None,
            base: 0,
            parse,
        }
    }

    /// Credentials or challenges of `name` (Authorization, Proxy-Authorization,
    /// WWW-Authenticate, Proxy-Authenticate), one per header line.
    pub fn auth(&self, name: HeaderName) -> impl Iterator<Item = Result<Auth<'a>>> + '_ {
        self.headers_named(name).map(move |h| {
            Auth::parse(h.value).map_err(|e| e.located(Place::Header(name), chars::offset_in(self.buf, h.value)))
        })
    }

    /// The option tags of Require, Proxy-Require, Supported or Unsupported, over all lines.
    pub fn option_tags(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.headers_named(name).flat_map(|h| values::option_tags(h.value))
    }

    /// Is there a To tag (an in-dialog request, RFC 3261 §12.2)?
    pub fn has_to_tag(&self) -> Result<bool> {
        Ok(self.to()?.tag().is_some())
    }

    // ----- validation -----

    /// Everything a proxy checks before acting on a message (RFC 3261 §16.3, §8.1.1,
    /// §8.2.2) and the full grammar of every header ringsip knows:
    /// the Request-URI; every header value; mandatory headers (Via, From, To, Call-ID, CSeq;
    /// Max-Forwards is added by a proxy when missing, §16.6); no second line of a
    /// single-value header; the CSeq method equal to the request method; no bare CR.
    pub fn validate(&self) -> Result<()> {
        if self.is_request() {
            self.request_uri()?;
        }
        let mut counts = [0u8; header::KNOWN];
        for (i, e) in self.headers.iter().enumerate() {
            let value = &self.buf[e.value_range()];
            if let Some(p) = bare_cr(&self.buf[e.value_start as usize..self.line_range(i).end]) {
                return Err(Error::new(ErrorKind::BareCr, Place::Header(e.name), e.value_start as usize + p));
            }
            values::check_value(e.name, value)
                .map_err(|err| err.located(Place::Header(e.name), e.value_start as usize))?;
            if e.name != HeaderName::Other {
                let c = &mut counts[e.name as usize];
                *c = c.saturating_add(1);
                if *c > 1 && e.name.kind() == Some(Kind::Single) {
                    return Err(Error::new(
                        ErrorKind::DuplicateHeader,
                        Place::Header(e.name),
                        self.headers[i].start as usize,
                    ));
                }
            }
        }
        for name in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            if counts[name as usize] == 0 {
                return Err(self.missing(name));
            }
        }
        if let StartLine::Request { method_bytes, .. } = self.start_line {
            let cseq = self.cseq()?;
            if cseq.method != method_bytes {
                let (_, at) = self.single(HeaderName::CSeq)?;
                return Err(Error::new(ErrorKind::CSeqMethodMismatch, Place::Header(HeaderName::CSeq), at));
            }
        }
        Ok(())
    }

    /// The Request-URI scheme, for the 416 decision (RFC 3261 §8.2.2.1).
    pub fn request_uri_scheme(&self) -> Result<Scheme> {
        Ok(self.request_uri()?.scheme())
    }
}

/// Does `s` hold an empty line after a line ending: `\n\n` or `\n\r\n` (the indexer
/// accepts LF and CR LF line endings, mixed)?
fn has_empty_line(s: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', s).any(|p| match s.get(p + 1) {
        Some(b'\n') => true,
        Some(b'\r') => s.get(p + 2) == Some(&b'\n'),
        _ => false,
    })
}

fn bare_cr(v: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'\r', &v[from..]) {
        let p = from + p;
        if v.get(p + 1) != Some(&b'\n') {
            return Some(p);
        }
        from = p + 1;
    }
    None
}

/// Parsed elements of one list header across all its lines; see [`Message::elements`].
pub struct Elements<'a, 'm, T> {
    msg: &'m Message<'a>,
    name: HeaderName,
    next_line: usize,
    rest: Option<&'a [u8]>,
    base: usize,
    parse: fn(&'a [u8]) -> Result<(T, usize)>,
}

impl<'a, T> Iterator for Elements<'a, '_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(rest) = self.rest.take() {
                return Some(match (self.parse)(rest) {
                    Ok((t, end)) => {
                        if end < rest.len() {
                            // at the ',' that ends this element
                            if values::is_empty_element(rest, end + 1) {
                                self.next_line = self.msg.headers.len();
                                let at = self.base + end + 1;
                                return Some(Err(Error::new(ErrorKind::EmptyListItem, Place::Header(self.name), at)));
                            }
                            self.rest = Some(&rest[end + 1..]);
                            self.base += end + 1;
                        }
                        Ok(t)
                    }
                    Err(e) => {
                        self.next_line = self.msg.headers.len();
                        Err(e.located(Place::Header(self.name), self.base))
                    }
                });
            }
            let hs = &self.msg.headers;
            while self.next_line < hs.len() && hs[self.next_line].name != self.name {
                self.next_line += 1;
            }
            if self.next_line >= hs.len() {
                return None;
            }
            let r = hs[self.next_line].value_range();
            self.next_line += 1;
            self.base = r.start;
            self.rest = Some(&self.msg.buf[r]);
        }
    }
}

/// Iterator over comma-separated values across all lines of one header; see
/// [`Message::values`].
pub struct Values<'a, 'm> {
    msg: &'m Message<'a>,
    name: HeaderName,
    next_line: usize,
    split: Option<CommaSplit<'a>>,
    base: usize,
}

impl<'a> Iterator for Values<'a, '_> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(split) = &mut self.split {
                match split.next() {
                    Some(Ok(v)) => return Some(Ok(v)),
                    Some(Err(e)) => {
                        self.split = None;
                        self.next_line = self.msg.headers.len();
                        return Some(Err(e.located(Place::Header(self.name), self.base)));
                    }
                    None => self.split = None,
                }
            }
            let hs = &self.msg.headers;
            while self.next_line < hs.len() && hs[self.next_line].name != self.name {
                self.next_line += 1;
            }
            if self.next_line >= hs.len() {
                return None;
            }
            let r = hs[self.next_line].value_range();
            self.next_line += 1;
            self.base = r.start;
            let v = &self.msg.buf[r];
            if self.name.is_list() {
                self.split = Some(CommaSplit::new(v));
            } else {
                return Some(Ok(v));
            }
        }
    }
}

/// Parse a start line (without its line ending). Offsets are relative to the line.
#[inline]
fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(line);
    }
    if let Some(&b) = line.last() {
        if b == b' ' || b == b'\t' {
            // RFC 4475 §3.1.2.7 trws: trailing whitespace is not in the grammar. We reject
            // rather than strip, so such a line is never forwarded.
            return Err(Error::value(ErrorKind::ExtraWhitespace, line.len() - 1));
        }
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (exactly one SP each)
    let sp1 = chars::run(line, 0, TOKEN);
    if sp1 == line.len() {
        return Err(Error::value(ErrorKind::BadStartLine, sp1));
    }
    if sp1 == 0 || line[sp1] != b' ' {
        return Err(Error::value(ErrorKind::BadMethod, sp1));
    }
    const VERSION: &[u8] = b" SIP/2.0";
    // fast path for the usual ` SIP/2.0` ending; it needs at least one URI byte between
    // the two spaces (an empty URI takes the general path and is refused there)
    let sp2 = if line.len() > sp1 + VERSION.len() && line.ends_with(VERSION) {
        line.len() - VERSION.len()
    } else {
        memchr::memrchr(b' ', line).filter(|&p| p > sp1).ok_or(Error::value(ErrorKind::BadStartLine, sp1))?
    };
    let method_bytes = &line[..sp1];
    let uri = &line[sp1 + 1..sp2];
    if uri.is_empty() || uri[0] == b' ' || uri[uri.len() - 1] == b' ' {
        // RFC 4475 §3.1.2.6 lwsstart: a second SP is not in the grammar. Rejected (the RFC
        // lets an element choose), so the extra SP is never forwarded.
        return Err(Error::value(ErrorKind::ExtraWhitespace, sp1 + 1));
    }
    if let Some(p) = memchr::memchr2(b' ', b'\t', uri) {
        // RFC 4475 §3.1.2.5 lwsruri: LWS inside the Request-URI
        return Err(Error::value(ErrorKind::ExtraWhitespace, sp1 + 1 + p));
    }
    if uri[0] == b'<' {
        return Err(Error::value(ErrorKind::BracketedRequestUri, sp1 + 1));
    }
    check_version(&line[sp2 + 1..]).map_err(|e| e.shifted(sp2 + 1))?;
    Ok(StartLine::Request { method: Method::from_bytes(method_bytes), method_bytes, uri })
}

#[inline]
fn check_version(v: &[u8]) -> Result<()> {
    if v == b"SIP/2.0" {
        return Ok(());
    }
    check_version_slow(v)
}

fn check_version_slow(v: &[u8]) -> Result<()> {
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT ("SIP" is case-insensitive in ABNF)
    if v.len() < 4 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(Error::value(ErrorKind::BadVersion, 0));
    }
    let n = &v[4..];
    let dot = n.iter().position(|&b| b == b'.').ok_or(Error::value(ErrorKind::BadVersion, 4))?;
    let (major, minor) = (&n[..dot], &n[dot + 1..]);
    if major.is_empty() || minor.is_empty() || !major.iter().chain(minor).all(u8::is_ascii_digit) {
        return Err(Error::value(ErrorKind::BadVersion, 4));
    }
    if n != b"2.0" {
        return Err(Error::value(ErrorKind::UnsupportedVersion, 0));
    }
    Ok(())
}

fn parse_status_line(line: &[u8]) -> Result<StartLine<'_>> {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    let sp1 = memchr::memchr(b' ', line).ok_or(Error::value(ErrorKind::BadStartLine, line.len()))?;
    check_version(&line[..sp1])?;
    let rest = &line[sp1 + 1..];
    if rest.first() == Some(&b' ') {
        return Err(Error::value(ErrorKind::ExtraWhitespace, sp1 + 1));
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 {
        let kind = if digits > 3 { ErrorKind::StatusCodeOutOfRange } else { ErrorKind::BadStatusCode };
        return Err(Error::value(kind, sp1 + 1));
    }
    let code = rest[..3].iter().fold(0u16, |a, &b| a * 10 + (b - b'0') as u16);
    if !(100..=699).contains(&code) {
        return Err(Error::value(ErrorKind::StatusCodeOutOfRange, sp1 + 1));
    }
    // Liberal: a status line that ends right after the code has an empty reason phrase.
    let reason = match rest.get(3) {
        None => &rest[3..],
        Some(b' ') => &rest[4..],
        Some(_) => return Err(Error::value(ErrorKind::BadStartLine, sp1 + 4)),
    };
    if let Some(p) = reason.iter().position(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Error::value(ErrorKind::BadReasonPhrase, sp1 + 5 + p));
    }
    Ok(StartLine::Response { code, reason })
}

#[cfg(test)]
mod tests;
